//! [`dual_bloom`]: two filters, one of the `true` answers and one of the `false` answers,
//! learnt from the calls.

use std::future::Future;

use super::{BloomOptions, Filter, all_set, none_set};
use crate::Cache;
use crate::error::Result;
use crate::observe::{Call, StrategyResult};

/// Whether `options` can be used; when not, logs why.
fn usable(options: &DualBloomOptions) -> bool {
    match options.validate() {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(strategy = "dual_bloom", %error, "bloom options cannot be used; the function runs without the filters");
            false
        }
    }
}

/// Options of the [`dual_bloom`] strategy; the attribute macro builds them as a constant.
///
/// Two filters: one of the members whose answer was `true`, one of those whose answer was
/// `false`, each sized as a [`BloomOptions`] (their `check_false_positive` is not used).
///
/// ```
/// use cashews::strategy::{BloomOptions, DualBloomOptions};
/// const OPTIONS: DualBloomOptions = DualBloomOptions::new(1000).no_collisions(true);
/// assert_eq!(OPTIONS.true_filter, BloomOptions::new(1000));
/// const PAIR: DualBloomOptions =
///     DualBloomOptions::with_filters(BloomOptions::new(100), BloomOptions::new(10_000));
/// assert_eq!(PAIR.false_filter.capacity, 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DualBloomOptions {
    /// The filter of members answered `true` (stored at `<key>:true`).
    pub true_filter: BloomOptions,
    /// The filter of members answered `false` (stored at `<key>:false`).
    pub false_filter: BloomOptions,
    /// Record a `true` answer only when none of its bits was set yet, so members never share
    /// bits in the true filter (default `false`).
    pub no_collisions: bool,
}

impl DualBloomOptions {
    /// The prefix `#[cashews::dual_bloom]` puts before its key unless told otherwise
    /// (`dual_bloom:<name>:true`, `…:false`).
    ///
    /// Defined by [`Strategy::DualBloom`](crate::key::Strategy::DualBloom), with every default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::DualBloomOptions::DEFAULT_PREFIX, "dual_bloom");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::DualBloom.prefix();

    /// Two filters for `capacity` members each, 1 % false positives.
    ///
    /// Never fails: unusable values are reported by [`DualBloomOptions::validate`], as for
    /// [`BloomOptions::new`].
    ///
    /// ```
    /// let options = cashews::strategy::DualBloomOptions::new(100);
    /// assert_eq!(options.false_filter.bits(), 959);
    /// ```
    #[must_use]
    pub const fn new(capacity: u64) -> Self {
        Self::with_filters(BloomOptions::new(capacity), BloomOptions::new(capacity))
    }

    /// Filters sized apart (Python cashews' pairs of `capacity` and `false`).
    ///
    /// ```
    /// use cashews::strategy::{BloomOptions, DualBloomOptions};
    /// let options = DualBloomOptions::with_filters(
    ///     BloomOptions::new(100),
    ///     BloomOptions::new(1000).false_positives(5.0),
    /// );
    /// assert_eq!(options.true_filter.capacity, 100);
    /// ```
    #[must_use]
    pub const fn with_filters(true_filter: BloomOptions, false_filter: BloomOptions) -> Self {
        Self {
            true_filter,
            false_filter,
            no_collisions: false,
        }
    }

    /// The same false-positive rate, in percent, for both filters.
    ///
    /// Never fails: unusable values are reported by [`DualBloomOptions::validate`], as for
    /// [`BloomOptions::false_positives`].
    ///
    /// ```
    /// let options = cashews::strategy::DualBloomOptions::new(100).false_positives(0.1);
    /// assert_eq!(options.true_filter.false_positives, 0.1);
    /// ```
    #[must_use]
    pub const fn false_positives(mut self, percent: f64) -> Self {
        self.true_filter = self.true_filter.false_positives(percent);
        self.false_filter = self.false_filter.false_positives(percent);
        self
    }

    /// Whether a `true` answer is recorded only when its bits were all clear.
    ///
    /// ```
    /// let options = cashews::strategy::DualBloomOptions::new(100).no_collisions(true);
    /// assert!(options.no_collisions);
    /// ```
    #[must_use]
    pub const fn no_collisions(mut self, no_collisions: bool) -> Self {
        self.no_collisions = no_collisions;
        self
    }

    /// Checks both filters' options as [`BloomOptions::validate`] does, the true filter
    /// first. [`dual_bloom`] runs the function without the filters (and logs why) when this
    /// fails; the attribute macro refuses such options at compile time.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) naming the first option that
    /// cannot be used.
    ///
    /// ```
    /// use cashews::strategy::DualBloomOptions;
    /// assert!(DualBloomOptions::new(100).validate().is_ok());
    /// assert!(DualBloomOptions::new(100).false_positives(0.0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.true_filter.validate()?;
        self.false_filter.validate()
    }

    /// [`DualBloomOptions::validate`] as a `const fn`: the first problem as a sentence, `None`
    /// when both filters are usable.
    ///
    /// ```
    /// use cashews::strategy::DualBloomOptions;
    /// const _: () = assert!(DualBloomOptions::new(1000).problem().is_none());
    /// assert!(DualBloomOptions::new(0).problem().is_some());
    /// ```
    #[must_use]
    pub const fn problem(&self) -> Option<&'static str> {
        match self.true_filter.problem() {
            Some(problem) => Some(problem),
            None => self.false_filter.problem(),
        }
    }
}

/// Answers from two filters, learning from the calls it makes: `true` without running
/// `origin` when only the true filter knows `member`, `false` when only the false filter
/// does; otherwise `origin` runs.
///
/// This is what `#[cashews::dual_bloom]` expands to, for a function returning `bool`. The bit
/// arrays are at `<key>:true` and `<key>:false`, `key` as given (the macro passes
/// `dual_bloom:<name template>`, unrendered); `member` is the rendered name *with* the
/// prefix (`dual_bloom:<rendered name>`, as cashews for Python). The positions are those of
/// `<member>true` in the true filter and `<member>false` in the false filter.
///
/// Per call, after reading both filters:
///
/// - neither knows `member`: `origin` runs; a `true` answer is added to the true filter
///   (with [`DualBloomOptions::no_collisions`], only if none of its bits was set), a `false`
///   answer to the false filter;
/// - only the true filter knows it: `true`, `origin` not run;
/// - only the false filter knows it: `false`, `origin` not run;
/// - both know it (a false positive in one): `origin` runs, nothing is recorded.
///
/// # Safe behaviour
///
/// When a filter cannot be read (backend failure, missing backend: logged; `get_bits`
/// disabled), `origin` runs and nothing is recorded. A failure to record is logged and the
/// answer returned. When the cache is fully disabled, or the options are refused by
/// [`DualBloomOptions::validate`] (logged), no bit command is issued and `origin` runs.
///
/// # Concurrent calls
///
/// The two filters are read together, then written with one atomic command; concurrent
/// first calls for a member may each run `origin` and record it. With `no_collisions`, the
/// check of the bits and the write are two commands: two concurrent members may still share
/// bits.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is recorded.
///
/// ```
/// use cashews::strategy::{dual_bloom, DualBloomOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = DualBloomOptions::new(100);
/// let key = "dual_bloom:is_prime:{n}";
/// assert!(dual_bloom(&cache, key, "dual_bloom:is_prime:7", &options, async { true }).await);
/// assert!(!dual_bloom(&cache, key, "dual_bloom:is_prime:8", &options, async { false }).await);
/// // Learnt: the answers come from the filters.
/// let not_run = async { unreachable!() };
/// assert!(dual_bloom(&cache, key, "dual_bloom:is_prime:7", &options, not_run).await);
/// let not_run = async { unreachable!() };
/// assert!(!dual_bloom(&cache, key, "dual_bloom:is_prime:8", &options, not_run).await);
/// # Ok(()) }
/// ```
pub fn dual_bloom<F>(
    cache: &Cache,
    key: &str,
    member: &str,
    options: &DualBloomOptions,
    origin: F,
) -> impl Future<Output = bool>
where
    F: Future<Output = bool>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        let call = Call::start("dual_bloom", None);
        if cache.is_full_disabled() || !usable(options) {
            let answer = call.within(Box::pin(origin)).await;
            call.finish(StrategyResult::Miss);
            return answer;
        }
        let trues = Filter::new(
            format!("{key}:true"),
            &format!("{member}true"),
            &options.true_filter,
        );
        let falses = Filter::new(
            format!("{key}:false"),
            &format!("{member}false"),
            &options.false_filter,
        );
        let (true_bits, false_bits) = call
            .within(async {
                tokio::join!(
                    trues.read(cache, "dual_bloom"),
                    falses.read(cache, "dual_bloom")
                )
            })
            .await;
        let (Some(true_bits), Some(false_bits)) = (true_bits, false_bits) else {
            let answer = call.within(Box::pin(origin)).await;
            call.finish(StrategyResult::Miss);
            return answer;
        };
        let answer = match (all_set(&true_bits), all_set(&false_bits)) {
            (true, false) => true,
            (false, true) => false,
            (true, true) => {
                let answer = call.within(Box::pin(origin)).await;
                call.finish(StrategyResult::Miss);
                return answer;
            }
            (false, false) => {
                let answer = call.within(Box::pin(origin)).await;
                call.within(async {
                    if answer {
                        if !options.no_collisions || none_set(&true_bits) {
                            trues.record(cache, "dual_bloom").await;
                        }
                    } else {
                        falses.record(cache, "dual_bloom").await;
                    }
                })
                .await;
                call.finish(StrategyResult::Miss);
                return answer;
            }
        };
        call.finish(StrategyResult::Hit);
        answer
    }
}
