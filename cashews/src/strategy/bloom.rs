//! [`bloom`] and [`dual_bloom`]: Bloom filters in the cache's bit fields
//! (`#[cashews::bloom]`, `#[cashews::dual_bloom]`).
//!
//! A Bloom filter answers "is this member in the set?" with *definitely not* or *maybe*; its
//! bit array lives in the cache, shared by every process using the backend. Sizing and bit
//! positions are documented on [`BloomOptions`].

mod dual;
mod hash;

use std::future::Future;

use super::invalid::{self, Invalid, Value};
use crate::error::{Result, shorten};
use crate::observe::{Call, StrategyResult};
use crate::{Cache, Command};

use self::hash::{positions, raw_params};

pub use self::dual::{DualBloomOptions, dual_bloom};

/// The most bits a filter may have: 2³² (512 MiB), the largest bit array Redis holds.
const MAX_BITS: u64 = 1 << 32;

/// Options of the [`bloom`] strategy (and of each filter of [`dual_bloom`]); the attribute
/// macro builds them as a constant.
///
/// A Bloom filter answers "is this member in the set?" with *definitely not* or *maybe*. It
/// is a bit array of `m` bits; a member sets `k` of them, and a member whose `k` bits are not
/// all set was never added. The array lives in the cache ([`Cache::incr_bits`],
/// [`Cache::get_bits`]), so every process sharing the backend shares the filter.
///
/// # Sizing
///
/// With `n` the capacity (how many members are expected) and `p` the false-positive
/// probability wanted (`false_positives / 100`):
///
/// - `m = ceil(−n · ln p / (ln 2)²)` bits ([`BloomOptions::bits`]),
/// - `k = round(m / n · ln 2)` bit positions per member, ties to even
///   ([`BloomOptions::hashes`]).
///
/// For `p` = 1 %: `n` = 100 gives `m` = 959 and `k` = 7; `n` = 10,000 gives `m` = 95,851; `n` =
/// 1,000,000 gives `m` = 9,585,059 (1.2 MB). With `n` members added, about `p` of the
/// non-members are answered *maybe*; past `n`, the rate grows.
///
/// # Positions
///
/// The `k` positions of a member ([`BloomOptions::positions`]) are CRC-32 (IEEE, as zlib) of
/// the UTF-8 text `<member>_<i>` modulo `m`, for `i` = 0, 1, …; a position already chosen is
/// skipped and `i` goes on, so the `k` positions are distinct. The hash is fixed, not seeded
/// per process: every process (and cashews for Python, without its `speedup` extra) finds the
/// same bits for the same member.
///
/// ```
/// use cashews::strategy::BloomOptions;
/// const OPTIONS: BloomOptions = BloomOptions::new(10_000).false_positives(0.1);
/// assert_eq!((OPTIONS.capacity, OPTIONS.false_positives), (10_000, 0.1));
/// assert_eq!((OPTIONS.bits(), OPTIONS.hashes()), (143_776, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BloomOptions {
    /// How many members the filter is sized for (`n`).
    pub capacity: u64,
    /// The false-positive rate wanted at `capacity` members, in percent (default 1), strictly
    /// between 0 and 100.
    pub false_positives: f64,
    /// When the filter answers *maybe*, run the function to confirm (the default); `false`
    /// answers `true` without running it, accepting false positives.
    pub check_false_positive: bool,
}

impl BloomOptions {
    /// The prefix `#[cashews::bloom]` puts before its key unless told otherwise
    /// (`bloom:<name>:<m>`).
    ///
    /// Defined by [`Strategy::Bloom`](crate::key::Strategy::Bloom), with every default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::BloomOptions::DEFAULT_PREFIX, "bloom");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::Bloom.prefix();

    /// A filter for `capacity` members with 1 % false positives, confirming every *maybe*.
    ///
    /// Never fails: a `capacity` of zero, or one so large that the filter would need more
    /// than 2³² bits, is reported by [`BloomOptions::validate`] (a compile error when the
    /// attribute macro builds the options; an error, or a logged warning and the function
    /// run, when [`bloom`] gets them).
    ///
    /// ```
    /// let options = cashews::strategy::BloomOptions::new(100);
    /// assert_eq!((options.bits(), options.hashes()), (959, 7));
    /// assert!(options.check_false_positive);
    /// ```
    #[must_use]
    pub const fn new(capacity: u64) -> Self {
        Self {
            capacity,
            false_positives: 1.0,
            check_false_positive: true,
        }
    }

    /// With a false-positive rate of `percent` at full capacity.
    ///
    /// Never fails: a `percent` not strictly between 0 and 100, so high that a member would
    /// set no bit ("too high false positive value": `k` would be 0, from about 71 % up), or so
    /// low that the filter would need more than 2³² bits, is reported by
    /// [`BloomOptions::validate`].
    ///
    /// ```
    /// let options = cashews::strategy::BloomOptions::new(100).false_positives(50.0);
    /// assert_eq!((options.bits(), options.hashes()), (145, 1));
    /// assert!(cashews::strategy::BloomOptions::new(100).false_positives(80.0).validate().is_err());
    /// ```
    #[must_use]
    pub const fn false_positives(mut self, percent: f64) -> Self {
        self.false_positives = percent;
        self
    }

    /// Whether a *maybe* runs the function to confirm (`true`, the default) or answers `true`
    /// at once.
    ///
    /// ```
    /// let options = cashews::strategy::BloomOptions::new(100).check_false_positive(false);
    /// assert!(!options.check_false_positive);
    /// ```
    #[must_use]
    pub const fn check_false_positive(mut self, check: bool) -> Self {
        self.check_false_positive = check;
        self
    }

    /// The size of the bit array, `m = ceil(−n · ln p / (ln 2)²)`.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::BloomOptions::new(1_000_000).bits(), 9_585_059);
    /// ```
    #[must_use]
    pub const fn bits(&self) -> u64 {
        self.params().0
    }

    /// How many bits each member sets, `k = round(m / n · ln 2)`.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::BloomOptions::new(10).hashes(), 7);
    /// ```
    #[must_use]
    pub const fn hashes(&self) -> u32 {
        self.params().1
    }

    /// The bit positions of `member`, in the order they are chosen (see
    /// [Positions](BloomOptions#positions)): the same in every process.
    ///
    /// ```
    /// let options = cashews::strategy::BloomOptions::new(100);
    /// let mut positions = options.positions("name:5");
    /// positions.sort_unstable();
    /// assert_eq!(positions, [92, 179, 359, 497, 617, 684, 770]);
    /// ```
    #[must_use]
    pub fn positions(&self, member: &str) -> Vec<u64> {
        let (m, k) = self.params();
        positions(member.as_bytes(), m, k)
    }

    /// The key of the bit array for the key `key` as given: `<key>:<m>`, so a filter resized
    /// by new options starts empty instead of reading bits laid out for another size.
    ///
    /// ```
    /// let options = cashews::strategy::BloomOptions::new(100);
    /// assert_eq!(options.filter_key("bloom:users"), "bloom:users:959");
    /// ```
    #[must_use]
    pub fn filter_key(&self, key: &str) -> String {
        format!("{key}:{}", self.bits())
    }

    /// Checks the options however they were built (by the builders, or through the public
    /// fields): a capacity of at least 1, a false-positive rate strictly between 0 and 100 %
    /// that sets at least one bit per member, and at most 2³² bits. The strategy functions
    /// check their options with it; [`BloomOptions::problem`] is the same check as a `const
    /// fn`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) naming the first option that
    /// cannot be used (`bloom.capacity`, `bloom.false_positives`).
    ///
    /// ```
    /// use cashews::strategy::BloomOptions;
    /// assert!(BloomOptions::new(100).validate().is_ok());
    /// let err = BloomOptions::new(0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value `0` for option `bloom.capacity`: expected at least 1");
    /// ```
    pub fn validate(&self) -> Result<()> {
        invalid::check(self.invalid())
    }

    /// [`BloomOptions::validate`] as a `const fn`: the first problem as a sentence, `None`
    /// when the options are usable. The attribute macros turn it into a compile error, and so
    /// can a constant of yours.
    ///
    /// ```
    /// use cashews::strategy::BloomOptions;
    /// const OPTIONS: BloomOptions = BloomOptions::new(1000).false_positives(0.5);
    /// const _: () = assert!(OPTIONS.problem().is_none());
    /// assert_eq!(
    ///     BloomOptions::new(10).false_positives(100.0).problem(),
    ///     Some("bloom: false_positives is a percentage strictly between 0 and 100"),
    /// );
    /// ```
    #[must_use]
    pub const fn problem(&self) -> Option<&'static str> {
        invalid::message(self.invalid())
    }

    /// The first option that cannot be used.
    pub(crate) const fn invalid(&self) -> Option<Invalid> {
        let percent = self.false_positives;
        let in_range = percent > 0.0 && percent < 100.0;
        let (m, k) = if self.capacity > 0 && in_range {
            raw_params(self.capacity, percent)
        } else {
            (1.0, 1.0)
        };
        Invalid::first([
            Invalid::when(
                self.capacity == 0,
                "bloom.capacity",
                Value::Integer(self.capacity),
                "at least 1",
                "bloom: the capacity must be at least 1",
            ),
            Invalid::when(
                !in_range,
                "bloom.false_positives",
                Value::Float(percent),
                "a percentage strictly between 0 and 100",
                "bloom: false_positives is a percentage strictly between 0 and 100",
            ),
            Invalid::when(
                k < 1.0,
                "bloom.false_positives",
                Value::Float(percent),
                "a rate low enough that a member sets at least one bit (below about 71 %)",
                "bloom: too high false positive value: a member would set no bit (k = 0)",
            ),
            Invalid::when(
                m > MAX_BITS as f64,
                "bloom.capacity",
                Value::Integer(self.capacity),
                "a filter of at most 2^32 bits: lower the capacity or raise false_positives",
                "bloom: the filter would need more than 2^32 bits; lower the capacity or raise false_positives",
            ),
        ])
    }

    /// `(m, k)`, kept usable whatever was written into the public fields.
    const fn params(&self) -> (u64, u32) {
        let capacity = if self.capacity == 0 { 1 } else { self.capacity };
        let percent = if self.false_positives > 0.0 && self.false_positives < 100.0 {
            self.false_positives
        } else {
            1.0
        };
        let (m, k) = raw_params(capacity, percent);
        let m = if m < 1.0 {
            1
        } else if m > MAX_BITS as f64 {
            MAX_BITS
        } else {
            m as u64
        };
        let k = if k < 1.0 {
            1
        } else if k > m as f64 {
            m as u32
        } else {
            k as u32
        };
        (m, k)
    }
}

/// One filter: the key of its bit array and a member's positions in it.
struct Filter {
    key: String,
    positions: Vec<u64>,
}

impl Filter {
    fn new(key: String, member: &str, options: &BloomOptions) -> Self {
        Self {
            key,
            positions: options.positions(member),
        }
    }

    /// The member's bits; `None` when the filter cannot be read (its `get_bits` disabled, or
    /// the backend failed: logged), so the caller must not conclude anything.
    async fn read(&self, cache: &Cache, strategy: &'static str) -> Option<Vec<u64>> {
        match cache.is_disabled_prefix(&self.key, &[Command::GetBits]) {
            Ok(false) => {}
            Ok(true) => return None,
            Err(error) => {
                tracing::error!(strategy, key = %shorten(&self.key), %error, "bloom filter cannot be read; the function runs");
                return None;
            }
        }
        match cache.get_bits(&self.key, &self.positions, 1).await {
            Ok(bits) => Some(bits),
            Err(error) => {
                tracing::error!(strategy, key = %shorten(&self.key), %error, "bloom filter cannot be read; the function runs");
                None
            }
        }
    }

    /// Sets the member's bits (saturating: a set bit stays 1).
    async fn add(&self, cache: &Cache) -> Result<()> {
        cache
            .incr_bits(&self.key, &self.positions, 1, 1)
            .await
            .map(drop)
    }

    /// [`Filter::add`], logging a failure instead of returning it.
    async fn record(&self, cache: &Cache, strategy: &'static str) {
        if let Err(error) = self.add(cache).await {
            tracing::error!(strategy, key = %shorten(&self.key), %error, "bloom filter could not record a member");
        }
    }
}

/// Whether `options` can be used; when not, logs why (the caller then runs the function
/// without the filter).
fn usable(options: &BloomOptions, strategy: &'static str) -> bool {
    match options.validate() {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(strategy, %error, "bloom options cannot be used; the function runs without the filter");
            false
        }
    }
}

/// Whether every bit read is set.
fn all_set(bits: &[u64]) -> bool {
    bits.iter().all(|&bit| bit != 0)
}

/// Whether every bit read is clear.
fn none_set(bits: &[u64]) -> bool {
    bits.iter().all(|&bit| bit == 0)
}

/// Answers `false` without running `origin` when the filter at `key` says `member` was never
/// added; otherwise runs `origin` to confirm (or answers `true` at once without
/// [`BloomOptions::check_false_positive`]).
///
/// This is what `#[cashews::bloom]` expands to, for a function returning `bool`. The bit
/// array is at `<key>:<m>` ([`BloomOptions::filter_key`]), `key` as given (the macro passes
/// `bloom:<name template>`, unrendered: one filter per function) and `member` the rendered
/// name. Only [`bloom_set`] (the macro's `set`) adds members: a call records nothing, so a
/// filter nobody trained answers `false` to everything.
///
/// Per call: read the member's `k` bits ([`Cache::get_bits`]); one clear → `false`, `origin`
/// not run; all set → `origin` runs and its answer is returned (a false positive comes back
/// `false` from `origin`).
///
/// # Safe behaviour
///
/// The cache never breaks the function: when the filter cannot be read, `origin` runs and its
/// answer is returned. That covers a backend failure and a missing backend (logged with
/// `tracing::error!`) and a disabled `get_bits`. When the cache is fully disabled, no bit
/// command is issued and `origin` runs. So do options that
/// [`BloomOptions::validate`] refuses (logged with `tracing::error!`; the attribute macro
/// refuses them at compile time).
///
/// # Concurrent calls
///
/// Calls only read; concurrent calls, in this process or others sharing the backend, see the
/// members added before their read. No coalescing: each *maybe* runs its own `origin`.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is written either way.
///
/// ```
/// use cashews::strategy::{bloom, bloom_set, BloomOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = BloomOptions::new(1000);
/// let is_user = |name: &str| { let known = name == "ada"; async move { known } };
/// assert!(bloom_set(&cache, "bloom:users", "ada", &options, is_user("ada")).await);
///
/// assert!(bloom(&cache, "bloom:users", "ada", &options, is_user("ada")).await); // confirmed
/// let not_run = async { unreachable!("the filter answers alone") };
/// assert!(!bloom(&cache, "bloom:users", "bob", &options, not_run).await);
/// # Ok(()) }
/// ```
pub fn bloom<F>(
    cache: &Cache,
    key: &str,
    member: &str,
    options: &BloomOptions,
    origin: F,
) -> impl Future<Output = bool>
where
    F: Future<Output = bool>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        let call = Call::start("bloom", None);
        if cache.is_full_disabled() || !usable(options, "bloom") {
            let answer = call.within(Box::pin(origin)).await;
            call.finish(StrategyResult::Miss);
            return answer;
        }
        let filter = Filter::new(options.filter_key(key), member, options);
        let answer = match call.within(filter.read(cache, "bloom")).await {
            Some(bits) if !all_set(&bits) => false,
            Some(_) if !options.check_false_positive => true,
            _ => {
                let answer = call.within(Box::pin(origin)).await;
                call.finish(StrategyResult::Miss);
                return answer;
            }
        };
        call.finish(StrategyResult::Hit);
        answer
    }
}

/// Runs `origin` and, when it answers `true`, adds `member` to the filter at `key`; returns
/// the answer.
///
/// This is the `set` of a `#[cashews::bloom]` function: train the filter with it. Keys and
/// members as for [`bloom`].
///
/// # Safe behaviour
///
/// The answer is returned even when it cannot be recorded (logged with `tracing::error!`),
/// which includes options that [`BloomOptions::validate`] refuses. When the cache is fully
/// disabled, no bit command is issued.
///
/// # Concurrent calls
///
/// Adding is one atomic [`Cache::incr_bits`] of the `k` bits (saturating at 1), so
/// concurrent adders never lose a member.
///
/// # Cancellation
///
/// Dropping the returned future before `origin` finishes records nothing.
///
/// ```
/// use cashews::strategy::{bloom_contains, bloom_set, BloomOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = BloomOptions::new(100);
/// assert!(!bloom_set(&cache, "bloom:even", "3", &options, async { false }).await);
/// assert!(bloom_set(&cache, "bloom:even", "4", &options, async { true }).await);
/// assert!(bloom_contains(&cache, "bloom:even", "4", &options).await?);
/// assert!(!bloom_contains(&cache, "bloom:even", "3", &options).await?);
/// # Ok(()) }
/// ```
pub fn bloom_set<F>(
    cache: &Cache,
    key: &str,
    member: &str,
    options: &BloomOptions,
    origin: F,
) -> impl Future<Output = bool>
where
    F: Future<Output = bool>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        let call = Call::start("bloom_set", None);
        let answer = call.within(Box::pin(origin)).await;
        if answer && !cache.is_full_disabled() && usable(options, "bloom") {
            call.within(
                Filter::new(options.filter_key(key), member, options).record(cache, "bloom"),
            )
            .await;
        }
        call.finish(StrategyResult::Ok);
        answer
    }
}

/// Adds `member` to the filter at `key` (the bit array `<key>:<m>`), without a function.
///
/// # Errors
///
/// [`Error::InvalidOption`](crate::Error::InvalidOption) for options that
/// [`BloomOptions::validate`] refuses; otherwise as [`Cache::incr_bits`]: no backend
/// configured, a bad key, a backend failure outside safe mode, or a key holding something
/// other than bits. A disabled `incr_bits` adds nothing and
/// returns `Ok`.
///
/// # Concurrent calls
///
/// One atomic command: concurrent adders, in any process, never lose a member.
///
/// # Cancellation
///
/// Dropping the future before the command is sent adds nothing; once sent, the `k` bits are
/// set together or not at all.
///
/// ```
/// use cashews::strategy::{bloom_add, bloom_contains, BloomOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = BloomOptions::new(10_000).false_positives(0.1);
/// bloom_add(&cache, "seen", "https://example.org/", &options).await?;
/// assert!(bloom_contains(&cache, "seen", "https://example.org/", &options).await?);
/// # Ok(()) }
/// ```
pub async fn bloom_add(
    cache: &Cache,
    key: &str,
    member: &str,
    options: &BloomOptions,
) -> Result<()> {
    options.validate()?;
    Filter::new(options.filter_key(key), member, options)
        .add(cache)
        .await
}

/// Whether `member` may be in the filter at `key`: `false` means it was never added, `true`
/// means it probably was (about [`BloomOptions::false_positives`] percent of non-members
/// answer `true` at full capacity).
///
/// A filter that cannot be read answers `true` (maybe), never a wrong `false`: when
/// `get_bits` is disabled, or the cache fully disabled.
///
/// # Errors
///
/// [`Error::InvalidOption`](crate::Error::InvalidOption) for options that
/// [`BloomOptions::validate`] refuses; otherwise as [`Cache::get_bits`]: no backend
/// configured, a bad key, a backend failure outside safe mode.
///
/// # Concurrent calls
///
/// A read: it sees the members added before it.
///
/// # Cancellation
///
/// Nothing is written; dropping the future is harmless.
///
/// ```
/// use cashews::strategy::{bloom_contains, BloomOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// assert!(!bloom_contains(&cache, "seen", "anything", &BloomOptions::new(100)).await?);
/// # Ok(()) }
/// ```
pub async fn bloom_contains(
    cache: &Cache,
    key: &str,
    member: &str,
    options: &BloomOptions,
) -> Result<bool> {
    options.validate()?;
    let filter = Filter::new(options.filter_key(key), member, options);
    if cache.is_full_disabled() || cache.is_disabled_prefix(&filter.key, &[Command::GetBits])? {
        return Ok(true);
    }
    let bits = cache.get_bits(&filter.key, &filter.positions, 1).await?;
    Ok(all_set(&bits))
}
