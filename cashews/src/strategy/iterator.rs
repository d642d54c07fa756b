//! [`iterator`]: caching a stream item by item (`#[cashews::iterator]`).
//!
//! A full pass of the origin stream stores each item under `<key>:<n>` (from 0) and, once the
//! origin has ended, a marker under `<key>` holding the number of items. A later call that
//! finds the marker and every item replays them in order without touching the origin.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use futures_core::stream::FusedStream;
use futures_util::StreamExt;
use futures_util::stream;

use super::{Outcome, StoreCondition};
use crate::detect::Served;
use crate::error::shorten;
use crate::observe::{Call, StrategyResult};
use crate::{Cache, IntoTtl, Ttl};

/// How many chunk keys one read asks for (one `get_many` per page).
const PAGE: usize = 512;

/// Options of the [`iterator`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use cashews::strategy::{IteratorOptions, StoreCondition};
/// const OPTIONS: IteratorOptions = IteratorOptions::new().condition(StoreCondition::NotNone);
/// assert_eq!(OPTIONS.store_condition, StoreCondition::NotNone);
/// assert_eq!(IteratorOptions::default().store_condition, StoreCondition::Always);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IteratorOptions {
    /// Which items are stored: with [`StoreCondition::NotNone`], `None` items of an
    /// `Option` stream are passed through but left out of the cached sequence.
    pub store_condition: StoreCondition,
    /// The key template the keys are rendered from, for [`detect`](crate::detect()) records
    /// (the attribute macros set it).
    pub template: Option<&'static str>,
}

impl Default for IteratorOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl IteratorOptions {
    /// The defaults: store every storable item.
    ///
    /// ```
    /// use cashews::strategy::IteratorOptions;
    /// assert_eq!(IteratorOptions::new(), IteratorOptions::default());
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self {
            store_condition: StoreCondition::Always,
            template: None,
        }
    }
}

option_builders!(IteratorOptions = IteratorOptions::new(); condition, template);

/// Replays the items cached under `key`, or passes `origin`'s items through while storing
/// them, so that the next call replays them.
///
/// This is what `#[cashews::iterator]` expands to; call it directly for closures, trait
/// methods or generic code. The returned stream owns a clone of the [`Cache`] handle and a
/// copy of the key, so it borrows nothing from the arguments: it is `'static` (and `Send`)
/// when `origin` and `shape` are.
///
/// - **Hit**: the marker `<key>` is present and every item `<key>:0` … `<key>:<count − 1>`
///   reads back. The stream yields them in order and `origin` is never polled.
/// - **Miss**: the stream polls `origin` and yields each of its items as it comes. Before an
///   item is yielded, the part `shape` says is storable is written to `<key>:<n>` with `ttl`
///   ([`Outcome`]: any `T`; the `Ok` of a `Result`; an `Option` whole). When `origin` ends,
///   the marker is written with the item count and a TTL of `ttl` minus the time the stream
///   took since its first poll, so it never outlives the first item. An empty `origin` is
///   cached too: a later call replays an empty stream.
///
/// Items are read and written with the cache's codec, so `T: Serialize + DeserializeOwned`.
/// A hit reads every item (in pages of 512 keys, one `get_many` each) before yielding the
/// first, so a replay is all or nothing; it holds the decoded items in memory.
///
/// # Errors and safe behaviour
///
/// The cache never breaks the stream:
///
/// - An item that is not storable (an `Err` of a `Result` stream) is yielded and ends caching
///   for that run: later items are passed through unstored and no marker is written, so the
///   next call runs `origin` again. Errors are never cached, unless the shape stores them
///   ([`WithErrors`](super::WithErrors), `condition = with_errors`): then the error is stored,
///   the marker is written before it is yielded (the pass ends there, so a consumer that
///   stops at the error, as `?` does, still completes it) and the items after it pass through
///   unstored; a replay ends with the error.
/// - With [`StoreCondition::NotNone`], a `None` item is yielded and skipped: the replay has
///   the other items.
/// - A backend failure on read is a miss; on write it ends caching for that run (no marker).
///   Each is logged with `tracing::error!` (key and error, never the value). An item that
///   cannot be decoded counts as missing.
/// - A missing item under a present marker (evicted or deleted) makes the call a miss: the
///   stale marker is deleted and `origin` is served and stored again.
/// - A stream that took longer than `ttl` writes no marker: its first items may have expired.
///
/// # Concurrent calls
///
/// There is no coalescing: concurrent misses of one key each poll their own `origin` and each
/// write the items and, at their end, the marker. They write the same keys, so when two runs
/// of `origin` yield different items at the same time, the cached sequence may mix them until
/// it expires; runs of an origin that yields the same items agree. For the same reason, a
/// replay that reads while another run rewrites the items may get some of each.
///
/// # Cancellation
///
/// Dropping the stream before `origin` has ended (a consumer that stops early, a timeout)
/// drops `origin` and writes no marker, so the next call recomputes; the items already
/// written stay until their TTL and are never replayed without a marker.
///
/// # Panics
///
/// Never by itself; a panic in `origin` unwinds through the consumer polling the stream and
/// leaves no marker.
///
/// ```
/// use cashews::strategy::{iterator, IteratorOptions, Plain};
/// use futures_util::{StreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = IteratorOptions::new();
/// let shape = Plain::<String>::new();
///
/// let words = stream::iter(["a", "b", "c"].map(str::to_owned));
/// let first: Vec<String> = iterator(&store, "words", ttl, &options, shape, words).collect().await;
///
/// // A hit replays the stored items; this origin is never polled.
/// let hit: Vec<String> =
///     iterator(&store, "words", ttl, &options, shape, stream::pending()).collect().await;
/// assert_eq!(first, ["a", "b", "c"]);
/// assert_eq!(hit, first);
/// assert_eq!(store.get::<String>("words:1").await?.as_deref(), Some("b"));
/// # Ok(()) }
/// ```
///
/// A stream of `Result`s stores its `Ok` items; an `Err` is passed through and the run is not
/// cached:
///
/// ```
/// use cashews::strategy::{iterator, Fallible, IteratorOptions};
/// use futures_util::{StreamExt, stream};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let shape = Fallible::<u32, String>::new();
/// let failing = stream::iter([Ok(1), Err("down".to_owned())]);
/// let got: Vec<_> = iterator(&store, "n", ttl, &IteratorOptions::new(), shape, failing)
///     .collect()
///     .await;
/// assert_eq!(got, [Ok(1), Err("down".to_owned())]);
/// assert!(!store.exists("n").await?); // no marker: the next call runs the origin again
/// # Ok(()) }
/// ```
pub fn iterator<R, S, O, T>(
    cache: &Cache,
    key: &str,
    ttl: T,
    options: &IteratorOptions,
    shape: S,
    origin: O,
) -> impl FusedStream<Item = R> + use<R, S, O, T>
where
    S: Outcome<R>,
    O: Stream<Item = R>,
    T: IntoTtl,
{
    let valid = crate::ttl::strategy_ttl(ttl, key);
    let run = Run {
        cache: cache.clone(),
        key: key.to_owned(),
        ttl: valid.unwrap_or(Ttl::NONE),
        options: *options,
        shape,
    };
    let state = if valid.is_some() {
        State::Start { run, origin }
    } else {
        // An invalid TTL: the origin's items pass through, the cache is neither read nor written.
        State::Live {
            run,
            origin: Box::pin(origin),
            progress: None,
        }
    };
    stream::unfold(state, step).fuse()
}

/// What the stream does next.
enum State<R, S, O> {
    /// Not polled yet: the cache has not been read.
    Start { run: Run<S>, origin: O },
    /// A hit: the stored items left to yield.
    Replay(std::vec::IntoIter<R>),
    /// A miss: passing `origin` through; `progress` is `None` once this run stopped caching.
    Live {
        run: Run<S>,
        origin: Pin<Box<O>>,
        progress: Option<Progress>,
    },
}

/// The call's arguments, owned by the stream.
struct Run<S> {
    cache: Cache,
    key: String,
    ttl: Ttl,
    options: IteratorOptions,
    shape: S,
}

/// How far a caching run has got.
struct Progress {
    /// Items stored so far: the index of the next one.
    stored: u64,
    /// The clock's reading when the origin was first polled.
    started: Duration,
}

/// One step of the stream: the next item and the state after it, or `None` at the end.
async fn step<R, S, O>(state: State<R, S, O>) -> Option<(R, State<R, S, O>)>
where
    S: Outcome<R>,
    O: Stream<Item = R>,
{
    let mut state = state;
    loop {
        match state {
            State::Start { run, origin } => {
                // Observed up to the decision: the items then arrive as the consumer pulls.
                let call = Call::start("iterator", run.options.template);
                if let Some(items) = call.within(run.replay()).await {
                    call.finish(StrategyResult::Hit);
                    state = State::Replay(items.into_iter());
                    continue;
                }
                call.finish(StrategyResult::Miss);
                let started = run.cache.clock().now();
                // Boxed once per miss, so that the origin stays pinned across steps.
                state = State::Live {
                    run,
                    origin: Box::pin(origin),
                    progress: Some(Progress { stored: 0, started }),
                };
            }
            State::Replay(mut items) => {
                return items.next().map(|item| (item, State::Replay(items)));
            }
            State::Live {
                run,
                mut origin,
                mut progress,
            } => {
                let Some(item) = origin.next().await else {
                    if let Some(progress) = progress {
                        run.finish(&progress).await;
                    }
                    return None;
                };
                if let Some(so_far) = progress.as_mut() {
                    if !run.store(so_far, &item).await {
                        progress = None;
                    } else if run.shape.is_error(&item) {
                        // A stored error ends the pass, as it ends the replay: the marker is
                        // written before the error is yielded, since a consumer that stops at
                        // it (`?`) never polls the stream again. Later items pass unstored.
                        run.finish(so_far).await;
                        progress = None;
                    }
                }
                let next = State::Live {
                    run,
                    origin,
                    progress,
                };
                return Some((item, next));
            }
        }
    }
}

impl<S> Run<S> {
    /// The stored items on a hit; `None` on a miss, a read failure (logged) or a missing
    /// item (the stale marker is then deleted).
    async fn replay<R>(&self) -> Option<Vec<R>>
    where
        S: Outcome<R>,
    {
        let count = match self.cache.get_boxed::<u64>(&self.key).await {
            Ok(Some(count)) => count,
            Ok(None) => return None,
            Err(error) => {
                tracing::error!(key = %shorten(&self.key), %error, "cache read failed; running the stream");
                return None;
            }
        };
        let count = usize::try_from(count).ok()?;
        let mut items = Vec::with_capacity(count.min(PAGE));
        // Inside a detect scope, a shape whose stored type is `Clone` keeps the stored items
        // for the record, and the items returned are restored from clones.
        let keep = S::SHARED && crate::detect::active();
        let mut kept: Vec<S::Stored> = Vec::new();
        let mut start = 0;
        while start < count {
            let end = count.min(start.saturating_add(PAGE));
            let keys: Vec<String> = (start..end).map(|n| chunk_key(&self.key, n)).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let page = match self.cache.get_many::<S::Stored>(&keys).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(key = %shorten(&self.key), %error, "cache read failed; running the stream");
                    return None;
                }
            };
            for stored in page {
                let Some(stored) = stored else {
                    tracing::debug!(key = %shorten(&self.key), "a cached item is missing; running the stream");
                    self.forget_marker().await;
                    return None;
                };
                match keep.then(|| self.shape.restore_shared(&stored)).flatten() {
                    Some(item) => {
                        items.push(item);
                        kept.push(stored);
                    }
                    None => items.push(self.shape.restore(stored)),
                }
            }
            start = end;
        }
        crate::detect::record_with(|| {
            let served = Served::new(&self.key, "iterator")
                .with_ttl(self.ttl.duration())
                .with_template(self.options.template)
                .with_backend(self.cache.backend_name(&self.key));
            if keep {
                served.with_value(Arc::new(kept))
            } else {
                served
            }
        });
        Some(items)
    }

    /// Stores `item` as the next chunk; returns whether this run still caches.
    async fn store<R>(&self, progress: &mut Progress, item: &R) -> bool
    where
        S: Outcome<R>,
    {
        let Some(stored) = self.shape.stored(item) else {
            tracing::debug!(key = %shorten(&self.key), "the stream yielded an error; this run is not cached");
            return false;
        };
        let skip = match self.options.store_condition {
            StoreCondition::Always => false,
            StoreCondition::NotNone => self.shape.is_none(item),
        };
        if skip {
            return true;
        }
        let key = chunk_key(&self.key, progress.stored);
        match self.cache.set(&key, stored, self.ttl).await {
            Ok(true) => {
                progress.stored += 1;
                true
            }
            Ok(false) => {
                tracing::debug!(key = %shorten(&key), "the cache did not store an item; this run is not cached");
                false
            }
            Err(error) => {
                tracing::error!(key = %shorten(&key), %error, "cache write failed; the stream is served unstored");
                false
            }
        }
    }

    /// Writes the marker after a complete run, with the TTL left since the run started.
    async fn finish(&self, progress: &Progress) {
        let ttl = match self.ttl.duration() {
            None => Ttl::NONE,
            Some(ttl) => {
                let took = self.cache.clock().now().saturating_sub(progress.started);
                match ttl.checked_sub(took) {
                    // Never `Ttl::new(ZERO)`: that would mean no expiry.
                    Some(left) if !left.is_zero() => Ttl::new(left),
                    _ => {
                        tracing::debug!(key = %shorten(&self.key), "the stream took longer than its TTL; not cached");
                        return;
                    }
                }
            }
        };
        if let Err(error) = self.cache.set(&self.key, &progress.stored, ttl).await {
            tracing::error!(key = %shorten(&self.key), %error, "cache write failed; the stream is not cached");
        }
    }

    /// Deletes a marker whose items are incomplete, so that a partial rewrite by a later run
    /// that fails cannot make it look complete again.
    async fn forget_marker(&self) {
        if let Err(error) = self.cache.delete(&self.key).await {
            tracing::error!(key = %shorten(&self.key), %error, "cache delete failed");
        }
    }
}

/// The key of the `n`-th item: `<key>:<n>`.
fn chunk_key(key: &str, n: impl std::fmt::Display) -> String {
    format!("{key}:{n}")
}
