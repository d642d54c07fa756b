//! `mem://`: the in-process backend, bounded by entries (and optionally bytes), with TTLs.
//!
//! Storage is a sharded [`quick_cache`] map (S3-FIFO-like eviction, scan resistant, lock-free
//! reads per shard) holding, per key, the value and its deadline on the backend's [`Clock`].
//! Expiry is lazy on read and by a periodic purge task that stops when the last handle drops.
//!
//! # Expiry precision
//!
//! A `set` (conditional or not) with a TTL of one second or more counts its deadline from the coarse
//! monotonic clock, which lags the precise one by at most a tick (1 to 10 ms): such an entry
//! may expire up to a tick before its full TTL, never after (a precise reading costs a visible
//! share of a write on a virtual machine). Shorter TTLs, the other writes (`incr`, `expire`,
//! ...) and the manual clock count from the precise reading. A read compares exactly (see
//! [`Clock`]).
//!
//! # Atomicity
//!
//! Every read-modify-write command (`set` with a condition, `incr`, `unlock`, `incr_bits`,
//! `slice_incr`, `slice_incr_now`, `set_add`, `set_remove`, `set_pop`) runs under the write lock
//! of the key's shard through quick_cache's entry API, so it is atomic per key; plain reads take
//! the shard's read lock only. `slice_incr_now` reads the clock for its stamp under that lock.
//!
//! # What a hit writes
//!
//! A hit reads the map and the clock and writes two things only, both inside quick_cache's
//! `get`: the shard's read lock word (acquire and release: shared by every reader of that
//! shard) and the reference count of the entry's value (the clone `get` returns: shared by
//! every reader of that key). Nothing of cashews' own is written on a hit: routing, the
//! disable switches and the scope checks are loads, and the client-side tier counts its
//! hits in per-thread cells. The guide's performance page (`docs/guide/performance.md`)
//! lists every write per hit path and what removing the last two would cost.
//!
//! # Memory bound
//!
//! Each entry weighs 1 unit against `size`. With `max_bytes`, an entry weighs
//! `ceil(bytes × size / max_bytes)` (at least 1), so both bounds hold at once: the total weight
//! stays under `size`, hence the entry count under `size` and the bytes under `max_bytes`.
//!
//! The bound holds for every command. A write, and a command that grows an entry in place (a
//! set's `set_add`, a window's `slice_incr`, `incr`, `incr_bits`), evicts other entries when
//! the entry gets heavier: the entry is then re-admitted, through the map's own admission. An
//! entry that could never be kept (heavier than one entry may be, see `budget.rs`) is refused
//! with [`Error::ValueOverBudget`], and the key keeps its previous value. While an entry is
//! re-admitted (once per weight unit it grows by, i.e. per `max_bytes / size` bytes), a plain
//! read of that key on another thread may miss, as if it had been evicted; commands on it wait.
//!
//! [`Error::ValueOverBudget`]: crate::Error::ValueOverBudget

mod access;
mod budget;
mod commands;
mod entry;

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use quick_cache::OptionsBuilder;

use self::budget::{Budget, EntryWeighter, HOT_ALLOCATION, Readmission};
use self::entry::Entry;
pub(crate) use self::entry::SharedObject;
use crate::clock::Clock;
use crate::config::MemoryOptions;

type Map = quick_cache::sync::Cache<
    String,
    Entry,
    EntryWeighter,
    foldhash::fast::RandomState,
    Readmission,
>;

/// The in-memory backend (`mem://`).
///
/// A cheap-clone handle: clones share the same storage. Built from [`MemoryOptions`], with the
/// system clock ([`MemoryBackend::new`]) or an injected one ([`MemoryBackend::with_clock`]) so
/// tests move time instead of sleeping.
///
/// ```
/// use std::time::Duration;
/// use cashews::MemoryBackend;
/// use cashews::backend::{Backend, SetOptions};
/// use cashews::{config::MemoryOptions, Clock};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let clock = Clock::manual();
/// let mem = MemoryBackend::with_clock(MemoryOptions::with_size(100), clock.clone());
/// mem.set("k", "v".into(), SetOptions::ttl(Some(Duration::from_secs(1)))).await?;
/// assert!(mem.exists("k").await?);
/// clock.advance(Duration::from_secs(2));
/// assert!(!mem.exists("k").await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("len", &self.inner.map.len())
            .field("capacity", &self.inner.map.capacity())
            .finish_non_exhaustive()
    }
}

struct Inner {
    map: Map,
    clock: Clock,
    /// What an entry may weigh. When entries are bounded by bytes, decoded objects are not
    /// kept beside the bytes, since the bound could not count them.
    budget: Budget,
    purge: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.purge.get_mut().take() {
            task.abort();
        }
    }
}

impl MemoryBackend {
    /// A memory backend on the system clock.
    ///
    /// When called inside a Tokio runtime and `check_interval` is not zero, a purge task drops
    /// expired entries every `check_interval`; it stops when the last handle is dropped or on
    /// [`Backend::close`]. Outside a runtime, expired entries are dropped when read or by
    /// [`MemoryBackend::purge_expired`].
    ///
    /// [`Backend::close`]: super::Backend::close
    ///
    /// ```
    /// let mem = cashews::MemoryBackend::new(cashews::config::MemoryOptions::with_size(10));
    /// assert_eq!(mem.len(), 0);
    /// ```
    #[must_use]
    pub fn new(options: MemoryOptions) -> Self {
        Self::with_clock(options, Clock::system())
    }

    /// A memory backend on the given clock (see [`MemoryBackend::new`]).
    ///
    /// ```
    /// use cashews::{config::MemoryOptions, Clock, MemoryBackend};
    /// let mem = MemoryBackend::with_clock(MemoryOptions::default(), Clock::manual());
    /// assert!(mem.is_empty());
    /// ```
    #[must_use]
    pub fn with_clock(options: MemoryOptions, clock: Clock) -> Self {
        let size = options.size.max(1) as u64;
        let weighter = EntryWeighter {
            bytes_bound: options.max_bytes.map(|max| (size, max)),
        };
        let map = Map::with_options(
            map_options(size),
            weighter.clone(),
            foldhash::fast::RandomState::default(),
            Readmission::new(options.max_bytes.is_some()),
        );
        let budget = Budget::new(weighter, map.shard_capacity());
        let inner = Arc::new(Inner {
            map,
            clock,
            budget,
            purge: Mutex::new(None),
        });
        if !options.check_interval.is_zero()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let task = runtime.spawn(purge_loop(Arc::downgrade(&inner), options.check_interval));
            *inner.purge.lock() = Some(task);
        }
        Self { inner }
    }

    /// The number of entries, including expired ones not purged yet.
    ///
    /// ```
    /// assert_eq!(cashews::MemoryBackend::new(Default::default()).len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// assert!(cashews::MemoryBackend::new(Default::default()).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// Drops every expired entry now; returns how many were dropped. The purge task calls this.
    ///
    /// ```
    /// assert_eq!(cashews::MemoryBackend::new(Default::default()).purge_expired(), 0);
    /// ```
    pub fn purge_expired(&self) -> u64 {
        self.inner.purge_expired()
    }

    fn now(&self) -> u64 {
        self.inner.now()
    }

    /// The clock this backend reads.
    ///
    /// ```
    /// use cashews::{Clock, MemoryBackend};
    /// let mem = MemoryBackend::with_clock(Default::default(), Clock::manual());
    /// assert!(mem.clock().is_manual());
    /// ```
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.inner.clock.clone()
    }
}

impl Inner {
    /// Nanoseconds on the clock, plus one: 0 is reserved for "never expires", so a deadline of
    /// "now" (a zero TTL) is always in the past.
    fn now(&self) -> u64 {
        Self::ticks(self.clock.now())
    }

    /// What a deadline `ttl` from now counts from (see [`Clock::now_for_deadline`]).
    #[inline]
    fn now_for_deadline(&self, ttl: Duration) -> u64 {
        Self::ticks(self.clock.now_for_deadline(ttl))
    }

    /// [`Inner::now`] when `deadline` (a non-zero `expires_at`) may have passed; `None` when
    /// the clock is certainly before it, often known without a precise reading (see
    /// [`Clock::now_unless_before`]): the hit path's expiry check.
    #[inline]
    fn now_unless_before(&self, deadline: u64) -> Option<u64> {
        // Expired when `deadline <= clock + 1`, i.e. when the clock reaches `deadline - 1`.
        let on_clock = Duration::from_nanos(deadline.saturating_sub(1));
        self.clock.now_unless_before(on_clock).map(Self::ticks)
    }

    fn ticks(elapsed: Duration) -> u64 {
        u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn purge_expired(&self) -> u64 {
        let now = self.now();
        let dropped = std::sync::atomic::AtomicU64::new(0);
        self.map.retain(|_, entry| {
            let keep = !entry.is_expired(now);
            if !keep {
                dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            keep
        });
        dropped.into_inner()
    }
}

async fn purge_loop(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match inner.upgrade() {
            Some(inner) => {
                inner.purge_expired();
            }
            None => break,
        }
    }
}

fn map_options(size: u64) -> quick_cache::Options {
    // Few shards for small caches, so eviction is close to global (a size-10 cache evicts as
    // one unit); more for big ones, so concurrent callers rarely share a shard lock.
    let parallel_shards = std::thread::available_parallelism()
        .map_or(4, std::num::NonZero::get)
        .saturating_mul(4)
        .next_power_of_two();
    let by_size = usize::try_from(size / 1024)
        .unwrap_or(usize::MAX)
        .max(1)
        .next_power_of_two();
    let shards = by_size.min(parallel_shards).max(1);
    let estimated = usize::try_from(size.min(1 << 20)).unwrap_or(1 << 20);
    let mut builder = OptionsBuilder::new();
    builder
        .shards(shards)
        .estimated_items_capacity(estimated)
        .hot_allocation(HOT_ALLOCATION)
        .weight_capacity(size);
    match builder.build() {
        Ok(options) => options,
        // Unreachable: both required settings are given above. Fall back to a plain builder
        // rather than panicking in library code.
        Err(_) => fallback_options(size),
    }
}

fn fallback_options(size: u64) -> quick_cache::Options {
    let mut builder = OptionsBuilder::new();
    builder
        .estimated_items_capacity(1024)
        .weight_capacity(size.max(1));
    builder.build().unwrap_or_else(|_| fallback_options(1024))
}

#[cfg(test)]
mod tests;
