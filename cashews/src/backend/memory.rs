//! `mem://`: the in-process backend, bounded by entries (and optionally bytes), with TTLs.
//!
//! Storage is a sharded [`quick_cache`] map (S3-FIFO-like eviction, scan resistant, lock-free
//! reads per shard) holding, per key, the value and its deadline on the backend's [`Clock`].
//! Expiry is lazy on read and by a periodic purge task that stops when the last handle drops.
//!
//! # Atomicity
//!
//! Every read-modify-write command (`set` with a condition, `incr`, `unlock`, `incr_bits`,
//! `slice_incr`, `slice_incr_now`, `set_add`, `set_remove`, `set_pop`) runs under the write lock
//! of the key's shard through quick_cache's entry API, so it is atomic per key; plain reads take
//! the shard's read lock only. `slice_incr_now` reads the clock for its stamp under that lock.
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

mod budget;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use quick_cache::OptionsBuilder;
use quick_cache::sync::{EntryAction, EntryResult};

use self::budget::{Budget, EntryWeighter, HOT_ALLOCATION, Readmission};
use super::layout::{parse_int, read_field, write_field};
use super::{Backend, BoxStream, Condition, Expiry, SetOptions};
use crate::clock::Clock;

/// A string value: `triomphe`'s `Arc` has no weak count, so each value's allocation is 8 bytes
/// smaller than with `std::sync::Arc` (measured: 251 MB to 235 MB for 1M entries of 100
/// bytes, `--bench footprint`).
type Text = triomphe::Arc<[u8]>;
use crate::command::Command;
use crate::config::MemoryOptions;
use crate::error::{Error, Result};
use crate::pattern;

type Map = quick_cache::sync::Cache<
    String,
    Entry,
    EntryWeighter,
    foldhash::fast::RandomState,
    Readmission,
>;

/// Fixed bytes counted per entry on top of key and value, for the `max_bytes` bound and
/// `get_size`: the map slot, the entry header and allocator rounding (measured, see benches).
const ENTRY_OVERHEAD: u64 = 64;

/// The in-memory backend (`mem://`).
///
/// A cheap-clone handle: clones share the same storage. Built from [`MemoryOptions`], with the
/// system clock ([`MemoryBackend::new`]) or an injected one ([`MemoryBackend::with_clock`]) so
/// tests move time instead of sleeping.
///
/// ```
/// use std::time::Duration;
/// use cashews::backend::{Backend, MemoryBackend, SetOptions};
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

#[derive(Clone)]
struct Entry {
    value: Value,
    /// Deadline in clock nanoseconds; 0 means no expiry.
    expires_at: u64,
}

/// Strings are `Text` (`triomphe::Arc<[u8]>`): one allocation holding a count and the bytes,
/// cloned on every read by
/// an atomic increment. (`Bytes` built from a `Vec` allocates a second header on its first
/// clone, which costs both time and ~32 bytes per entry.) Two variants, so the non-null
/// pointer holds the tag: an entry is 24 bytes.
#[derive(Clone)]
enum Value {
    Bytes(Text),
    Structured(Arc<Structured>),
}

#[derive(Clone)]
enum Structured {
    Set(HashSet<String, foldhash::fast::RandomState>),
    /// Sorted event instants of a sliding window.
    Window(VecDeque<u64>),
    /// A string value that a typed read has decoded: the bytes stay the truth for every
    /// command; the object serves later typed reads through the same codec.
    Shared(Shared),
}

/// A decoded object as kept beside its bytes, and as detect records it.
pub(crate) type SharedObject = Arc<dyn std::any::Any + Send + Sync>;

/// The decoded object kept beside a string value (see `MemoryBackend::read_shared`).
#[derive(Clone)]
struct Shared {
    bytes: Text,
    /// The identity of the codec that decoded (and verified) `object`.
    codec: u64,
    object: SharedObject,
}

impl Value {
    /// The bytes of a string value; `None` for sets and windows.
    fn string(&self) -> Option<&Text> {
        match self {
            Self::Bytes(b) => Some(b),
            Self::Structured(s) => match &**s {
                Structured::Shared(shared) => Some(&shared.bytes),
                Structured::Set(_) | Structured::Window(_) => None,
            },
        }
    }
}

impl Entry {
    fn new(value: Value, ttl: Option<Duration>, now: u64) -> Self {
        Self {
            value,
            expires_at: deadline(ttl, now),
        }
    }

    fn is_expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }

    fn size(&self) -> u64 {
        match &self.value {
            Value::Bytes(b) => b.len() as u64,
            Value::Structured(s) => match &**s {
                Structured::Set(set) => set.iter().map(|m| m.len() as u64 + 24).sum(),
                Structured::Window(events) => events.len() as u64 * 8,
                Structured::Shared(shared) => shared.bytes.len() as u64,
            },
        }
    }
}

/// A key as reads look it up: hashes as the stored `String` does (both hash as `str`), and
/// compares in 8-byte words inline, where `str` equality calls `memcmp` (a libc call that
/// was ~5% of a ~100 ns memory hit, for keys of a few words).
struct Lookup<'a>(&'a str);

impl std::hash::Hash for Lookup<'_> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl quick_cache::Equivalent<String> for Lookup<'_> {
    #[inline]
    fn equivalent(&self, key: &String) -> bool {
        same_bytes(self.0.as_bytes(), key.as_bytes())
    }
}

/// `a == b`, word by word, then byte by byte for the tail.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some((word_a, rest_a)), Some((word_b, rest_b))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if u64::from_ne_bytes(*word_a) != u64::from_ne_bytes(*word_b) {
            return false;
        }
        (a, b) = (rest_a, rest_b);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

fn deadline(ttl: Option<Duration>, now: u64) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => now
            .saturating_add(u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX))
            .max(1),
    }
}

/// What a read-modify-write callback decides.
enum Op<T> {
    /// Leave the entry as it is (an expired entry is dropped).
    Keep(T),
    /// Remove the entry.
    Remove(T),
    /// Store this entry.
    Put(Entry, T),
}

impl MemoryBackend {
    /// A memory backend on the system clock.
    ///
    /// When called inside a Tokio runtime and `check_interval` is not zero, a purge task drops
    /// expired entries every `check_interval`; it stops when the last handle is dropped or on
    /// [`Backend::close`]. Outside a runtime, expired entries are dropped when read or by
    /// [`MemoryBackend::purge_expired`].
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

    /// Reads a string value and hands it to `read` without copying it: `Cache`'s synchronous
    /// fast path. Sets and windows are not string values: a plain read is a miss, as MGET gives.
    pub(crate) fn read_now<R>(&self, key: &str, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.live(key)
            .and_then(|entry| entry.value.string().map(|b| read(b)))
    }

    /// A typed read that keeps the decoded object, handed to `read` by reference (typed, and
    /// as the shared `Arc`): the first read of a value decodes it with `decode` and keeps the
    /// object beside the bytes; later reads by the same `codec` (an identity: objects decoded
    /// under one secret never serve another) and the same type get the kept object without
    /// decoding. A read of another type decodes the bytes again. Any write replaces the entry,
    /// object and all. Byte-bounded caches keep no objects.
    ///
    /// A hit then costs no reference count beyond the entry's own clone (quick_cache has no
    /// borrowing read), since the caller mostly clones the value out and only a detect scope
    /// needs the `Arc` itself.
    pub(crate) fn read_shared_with<T: std::any::Any + Send + Sync, R>(
        &self,
        key: &str,
        codec: u64,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        read: impl FnOnce(&T, &SharedObject) -> R,
    ) -> Option<R> {
        let entry = self.live(key)?;
        let bytes = match &entry.value {
            Value::Bytes(b) => Text::clone(b),
            Value::Structured(s) => match &**s {
                Structured::Shared(shared) => {
                    if shared.codec == codec
                        && let Some(object) = shared.object.downcast_ref::<T>()
                    {
                        return Some(read(object, &shared.object));
                    }
                    let object: SharedObject = Arc::new(decode(&shared.bytes)?);
                    return object.downcast_ref::<T>().map(|typed| read(typed, &object));
                }
                Structured::Set(_) | Structured::Window(_) => return None,
            },
        };
        drop(entry);
        let object: SharedObject = Arc::new(decode(&bytes)?);
        if !self.inner.budget.bytes_bounded() {
            let kept = Arc::clone(&object);
            // Attach only if the entry still holds these very bytes: a write in between wins.
            let _ = self.inner.map.entry(key, None, |_, entry| {
                if let Value::Bytes(current) = &entry.value
                    && Text::ptr_eq(current, &bytes)
                {
                    entry.value = Value::Structured(Arc::new(Structured::Shared(Shared {
                        bytes: Text::clone(&bytes),
                        codec,
                        object: kept,
                    })));
                }
                EntryAction::Retain(())
            });
        }
        object.downcast_ref::<T>().map(|typed| read(typed, &object))
    }

    /// [`Backend::set`] without the future, for `Cache`'s synchronous fast path.
    ///
    /// A value the cache could never keep is refused with [`Error::ValueOverBudget`] and the
    /// key keeps its previous value (quick_cache would drop it on insert, and the old one too).
    pub(crate) fn set_now(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        let now = self.now();
        let entry = Entry::new(Value::Bytes(Text::from(value)), options.ttl, now);
        self.inner.budget.check_entry(key, &entry)?;
        match options.condition {
            Condition::Always => {
                // An insert over an existing key evicts others when the new value is heavier.
                self.inner.map.insert(key.to_owned(), entry);
                Ok(true)
            }
            Condition::IfAbsent => self.rmw(key, |current, _| match current {
                Some(_) => Op::Keep(false),
                None => Op::Put(entry.clone(), true),
            }),
            Condition::IfPresent => self.rmw(key, |current, _| match current {
                Some(_) => Op::Put(entry.clone(), true),
                None => Op::Keep(false),
            }),
        }
    }

    /// Reads a live entry without touching its recency.
    fn live(&self, key: &str) -> Option<Entry> {
        let entry = self.inner.map.get(&Lookup(key))?;
        if entry.expires_at != 0
            && let Some(now) = self.inner.now_unless_before(entry.expires_at)
            && entry.is_expired(now)
        {
            self.inner.map.remove_if(key, |e| e.is_expired(now));
            return None;
        }
        Some(entry)
    }

    /// Atomic read-modify-write of one key. `f` sees the live entry (`None` when absent or
    /// expired) and may mutate it in place before returning [`Op::Keep`].
    ///
    /// The byte budget holds: an [`Op::Put`] of an entry the cache could never keep is refused
    /// with [`Error::ValueOverBudget`] (nothing changes), and an entry that got heavier, by a
    /// put or in place, is re-admitted so the map evicts others to make room. A command that
    /// grows an entry in place checks the budget itself before growing it.
    fn rmw<T>(&self, key: &str, mut f: impl FnMut(Option<&mut Entry>, u64) -> Op<T>) -> Result<T> {
        let budget = &self.inner.budget;
        loop {
            let now = self.now();
            let mut out = None;
            let result = self.inner.map.entry(key, None, |_, entry| {
                let expired = entry.is_expired(now);
                let before = budget.bytes_bounded().then(|| budget.weight(key, entry));
                let op = f(if expired { None } else { Some(entry) }, now);
                let action = match op {
                    Op::Keep(t) => {
                        out = Some(Ok(t));
                        if expired {
                            return EntryAction::Remove;
                        }
                        EntryAction::Retain(())
                    }
                    Op::Remove(t) => {
                        out = Some(Ok(t));
                        return EntryAction::Remove;
                    }
                    Op::Put(new, t) => {
                        if let Err(refused) = budget.check_entry(key, &new) {
                            out = Some(Err(refused));
                            return EntryAction::Retain(());
                        }
                        *entry = new;
                        out = Some(Ok(t));
                        EntryAction::Retain(())
                    }
                };
                match before {
                    // Heavier now: quick_cache re-weighs a retained entry but evicts nothing,
                    // so hand it back to be inserted again, which evicts (see `Replaced`).
                    Some(before) if budget.weight(key, entry) > before => {
                        EntryAction::ReplaceWithGuard
                    }
                    _ => action,
                }
            });
            match result {
                EntryResult::Retained(()) | EntryResult::Removed(..) => {
                    if let Some(t) = out {
                        return t;
                    }
                }
                EntryResult::Replaced(guard, entry) => {
                    // Insert it again: the map evicts others to make room (never this
                    // entry). A plain insert of the key in between wins (it came later),
                    // which `insert` reports as Err.
                    let _ = budget::readmit(entry, |entry| guard.insert(entry));
                    if let Some(t) = out {
                        return t;
                    }
                }
                EntryResult::Vacant(guard) => match f(None, now) {
                    Op::Keep(t) | Op::Remove(t) => return Ok(t),
                    Op::Put(new, t) => {
                        budget.check_entry(key, &new)?;
                        if guard.insert(new).is_ok() {
                            return Ok(t);
                        }
                        // A plain insert raced us; recompute against the new value.
                    }
                },
                EntryResult::Timeout => {}
            }
        }
    }

    /// [`MemoryBackend::rmw`] for commands whose callback may fail.
    fn rmw_fallible<T>(
        &self,
        key: &str,
        f: impl FnMut(Option<&mut Entry>, u64) -> Op<Result<T>>,
    ) -> Result<T> {
        self.rmw(key, f)?
    }

    fn bytes_of(entry: &Entry, command: Command, key: &str) -> Result<Text> {
        match entry.value.string() {
            Some(b) => Ok(Text::clone(b)),
            None => Err(wrong_type(command, key, "a string value")),
        }
    }
}

impl Inner {
    /// Nanoseconds on the clock, plus one: 0 is reserved for "never expires", so a deadline of
    /// "now" (a zero TTL) is always in the past.
    fn now(&self) -> u64 {
        Self::ticks(self.clock.now())
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

fn wrong_type(command: Command, key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        command,
        key: crate::error::shorten(key),
        expected,
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "mem"
    }

    fn local_tier(&self) -> Option<super::LocalTier> {
        Some(super::LocalTier::whole(self.clone()))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.read_now(key, Bytes::copy_from_slice))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.set_now(key, &value, options)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let now = self.now();
        Ok(self
            .inner
            .map
            .remove(key)
            .is_some_and(|(_, entry)| !entry.is_expired(now)))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.live(key).is_some())
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.rmw(key, |current, now| match current {
            Some(entry) => {
                entry.expires_at = deadline(Some(ttl), now);
                Op::Keep(true)
            }
            None => Op::Keep(false),
        })
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let Some(entry) = self.live(key) else {
            return Ok(Expiry::Missing);
        };
        if entry.expires_at == 0 {
            return Ok(Expiry::Persistent);
        }
        let now = self.now();
        Ok(Expiry::In(Duration::from_nanos(
            entry.expires_at.saturating_sub(now),
        )))
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.rmw_fallible(key, |current, now| match current {
            None => Op::Put(
                Entry::new(
                    Value::Bytes(Text::from(by.to_string().as_bytes())),
                    ttl,
                    now,
                ),
                Ok(by),
            ),
            Some(entry) => {
                let current = match Self::bytes_of(entry, Command::Incr, key) {
                    Ok(b) => b,
                    Err(e) => return Op::Keep(Err(e)),
                };
                let Some(n) = parse_int(&current) else {
                    return Op::Keep(Err(wrong_type(
                        Command::Incr,
                        key,
                        "a decimal integer value",
                    )));
                };
                match n.checked_add(by) {
                    Some(next) => {
                        // A put, not a change in place: a longer number is checked against
                        // the budget before it replaces the old one.
                        let value = Value::Bytes(Text::from(next.to_string().as_bytes()));
                        let entry = Entry {
                            value,
                            expires_at: entry.expires_at,
                        };
                        Op::Put(entry, Ok(next))
                    }
                    None => Op::Keep(Err(Error::backend(
                        "mem",
                        Command::Incr,
                        "increment or decrement would overflow",
                    ))),
                }
            }
        })
    }

    fn scan(&self, pattern: &str, _batch_size: usize) -> BoxStream<Result<String>> {
        let now = self.now();
        let keys: Vec<Result<String>> = if pattern::is_literal(pattern) {
            self.live(pattern)
                .map(|_| Ok(pattern.to_owned()))
                .into_iter()
                .collect()
        } else {
            self.inner
                .map
                .iter()
                .filter(|(key, entry)| !entry.is_expired(now) && pattern::matches(pattern, key))
                .map(|(key, _)| Ok(key))
                .collect()
        };
        Box::pin(futures_util::stream::iter(keys))
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        if pattern::is_literal(pattern) {
            return Ok(u64::from(self.delete(pattern).await?));
        }
        let now = self.now();
        let deleted = std::sync::atomic::AtomicU64::new(0);
        self.inner.map.retain(|key, entry| {
            let hit = pattern::matches(pattern, key);
            if hit && !entry.is_expired(now) {
                deleted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            !hit
        });
        Ok(deleted.into_inner())
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.rmw(key, |current, _| match current {
            Some(entry)
                if entry
                    .value
                    .string()
                    .is_some_and(|b| **b == *token.as_bytes()) =>
            {
                Op::Remove(true)
            }
            _ => Op::Keep(false),
        })
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        super::check_bits(key, Command::GetBits, indexes, size)?;
        let bits = match self.live(key) {
            None => Text::from(&[][..]),
            Some(entry) => Self::bytes_of(&entry, Command::GetBits, key)?,
        };
        Ok(indexes
            .iter()
            .map(|&i| read_field(&bits, i * u64::from(size), size))
            .collect())
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        super::check_bits(key, Command::IncrBits, indexes, size)?;
        let max = (1u64 << size) - 1;
        self.rmw_fallible(key, |current, now| {
            let (mut bits, ttl_at) = match &current {
                None => (Vec::new(), 0),
                Some(entry) => match Self::bytes_of(entry, Command::IncrBits, key) {
                    Ok(b) => (b.to_vec(), entry.expires_at),
                    Err(e) => return Op::Keep(Err(e)),
                },
            };
            let mut out = Vec::with_capacity(indexes.len());
            for &index in indexes {
                let offset = index * u64::from(size);
                let old = read_field(&bits, offset, size);
                let new = if by >= 0 {
                    old.saturating_add(by.unsigned_abs()).min(max)
                } else {
                    old.saturating_sub(by.unsigned_abs())
                };
                write_field(&mut bits, offset, size, new);
                out.push(new);
            }
            let entry = Entry {
                value: Value::Bytes(Text::from(bits)),
                expires_at: if current.is_some() {
                    ttl_at
                } else {
                    deadline(None, now)
                },
            };
            Op::Put(entry, Ok(out))
        })
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.rmw_fallible(key, |current, now| {
            slice_step(
                current,
                now,
                (Command::SliceIncr, key),
                (start, end),
                max,
                ttl,
                &self.inner.budget,
            )
        })
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.rmw_fallible(key, |current, now| {
            // The stamp is read here, under the key's entry guard, so events are recorded in
            // the order of their stamps: no caller can count a window that misses an earlier
            // one (see `Backend::slice_incr_now`).
            let stamp = u64::try_from(self.inner.clock.now().as_millis()).unwrap_or(u64::MAX);
            let window = super::window_at(stamp, period);
            let budget = &self.inner.budget;
            let command = (Command::SliceIncrNow, key);
            slice_step(current, now, command, window, max, ttl, budget)
        })
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.rmw_fallible(key, |current, now| {
            let (mut set, expires_at) = match current {
                None => (HashSet::default(), 0),
                Some(entry) => match &entry.value {
                    Value::Structured(s) => match &**s {
                        Structured::Set(set) => (set.clone(), entry.expires_at),
                        Structured::Window(_) | Structured::Shared(_) => {
                            return Op::Keep(Err(wrong_type(Command::SetAdd, key, "a set")));
                        }
                    },
                    Value::Bytes(_) => {
                        return Op::Keep(Err(wrong_type(Command::SetAdd, key, "a set")));
                    }
                },
            };
            let added = members
                .iter()
                .filter(|m| set.insert((**m).to_owned()))
                .count() as u64;
            if set.is_empty() {
                return Op::Keep(Ok(0));
            }
            let expires_at = match ttl {
                Some(ttl) => deadline(Some(ttl), now),
                None => expires_at,
            };
            let entry = Entry {
                value: Value::Structured(Arc::new(Structured::Set(set))),
                expires_at,
            };
            Op::Put(entry, Ok(added))
        })
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.rmw_fallible(key, |current, _| {
            let Some(entry) = current else {
                return Op::Keep(Ok(0));
            };
            let Value::Structured(s) = &mut entry.value else {
                return Op::Keep(Err(wrong_type(Command::SetRemove, key, "a set")));
            };
            let Structured::Set(set) = Arc::make_mut(s) else {
                return Op::Keep(Err(wrong_type(Command::SetRemove, key, "a set")));
            };
            let removed = members.iter().filter(|m| set.remove(**m)).count() as u64;
            if set.is_empty() {
                Op::Remove(Ok(removed))
            } else {
                Op::Keep(Ok(removed))
            }
        })
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.rmw_fallible(key, |current, _| {
            let Some(entry) = current else {
                return Op::Keep(Ok(Vec::new()));
            };
            let Value::Structured(s) = &mut entry.value else {
                return Op::Keep(Err(wrong_type(Command::SetPop, key, "a set")));
            };
            let Structured::Set(set) = Arc::make_mut(s) else {
                return Op::Keep(Err(wrong_type(Command::SetPop, key, "a set")));
            };
            let popped: Vec<String> = set.iter().take(count).cloned().collect();
            for member in &popped {
                set.remove(member);
            }
            if set.is_empty() {
                Op::Remove(Ok(popped))
            } else {
                Op::Keep(Ok(popped))
            }
        })
    }

    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        Ok(super::pong(message))
    }

    async fn clear(&self) -> Result<()> {
        self.inner.map.clear();
        Ok(())
    }

    async fn keys_count(&self) -> Result<u64> {
        Ok(self.inner.map.len() as u64)
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        Ok(Some(self.live(key).map_or(0, |entry| {
            key.len() as u64 + entry.size() + ENTRY_OVERHEAD
        })))
    }

    async fn close(&self) -> Result<()> {
        if let Some(task) = self.inner.purge.lock().take() {
            task.abort();
        }
        Ok(())
    }
}

/// One sliding-window step (`slice_incr`, `slice_incr_now`) on the entry under its guard:
/// forgets events before `start`, counts those in `[start, end]`, and below `max` records one
/// at `end`, resetting the TTL when one is given.
///
/// In place: the window is sorted, so forgetting old events drains a prefix and a new event
/// (time moves forward) lands at the end; no copy of the window per call.
///
/// A window that one more event would make heavier than an entry may be is refused
/// ([`Error::ValueOverBudget`]); events it forgot stay forgotten.
fn slice_step(
    current: Option<&mut Entry>,
    now: u64,
    (command, key): (Command, &str),
    (start, end): (u64, u64),
    max: u64,
    ttl: Option<Duration>,
    budget: &Budget,
) -> Op<Result<u64>> {
    let Some(entry) = current else {
        if max == 0 {
            return Op::Keep(Ok(0));
        }
        let window = Structured::Window(VecDeque::from([end]));
        let entry = Entry {
            value: Value::Structured(Arc::new(window)),
            expires_at: deadline(ttl, now),
        };
        return Op::Put(entry, Ok(1));
    };
    let is_window =
        matches!(&entry.value, Value::Structured(s) if matches!(**s, Structured::Window(_)));
    let Value::Structured(s) = &mut entry.value else {
        return Op::Keep(Err(wrong_type(command, key, "a sliding window")));
    };
    if !is_window {
        return Op::Keep(Err(wrong_type(command, key, "a sliding window")));
    }
    let Structured::Window(events) = Arc::make_mut(s) else {
        return Op::Keep(Err(wrong_type(command, key, "a sliding window")));
    };
    // A ring buffer: forgetting the oldest events is O(forgotten), not a shift of the whole
    // window; the common cases (nothing to forget, the new event is the latest) skip the
    // searches.
    if events.front().is_some_and(|&t| t < start) {
        let forgotten = events.partition_point(|&t| t < start);
        events.drain(..forgotten);
    }
    let at = if events.back().is_none_or(|&t| t <= end) {
        events.len()
    } else {
        events.partition_point(|&t| t <= end)
    };
    let count = at as u64;
    if count >= max {
        return Op::Keep(Ok(count));
    }
    if budget.bytes_bounded() {
        let grown = key.len() as u64 + (events.len() as u64 + 1) * 8 + ENTRY_OVERHEAD;
        if let Err(refused) = budget.check(key, grown) {
            return Op::Keep(Err(refused));
        }
    }
    events.insert(at, end);
    if let Some(ttl) = ttl {
        entry.expires_at = deadline(Some(ttl), now);
    }
    Op::Keep(Ok(count + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_follow_redis_layout() {
        let mut bits = Vec::new();
        write_field(&mut bits, 0, 1, 1);
        assert_eq!(bits, vec![0b1000_0000]);
        write_field(&mut bits, 4, 4, 0b1011);
        assert_eq!(bits, vec![0b1000_1011]);
        assert_eq!(read_field(&bits, 4, 4), 0b1011);
        assert_eq!(read_field(&bits, 100, 8), 0);
        write_field(&mut bits, 14, 5, 0b10101);
        assert_eq!(read_field(&bits, 14, 5), 0b10101);
    }

    #[test]
    fn lookup_keys_compare_and_hash_as_the_stored_strings() {
        use quick_cache::Equivalent;
        use std::hash::BuildHasher;
        let hasher = foldhash::fast::RandomState::default();
        let keys = [
            "",
            "a",
            "user:1",
            "user:123",
            "user:1234",
            "module::path:fn:arg:42:x",
        ];
        for a in keys {
            assert_eq!(hasher.hash_one(Lookup(a)), hasher.hash_one(a.to_owned()));
            for b in keys {
                assert_eq!(
                    Lookup(a).equivalent(&b.to_owned()),
                    a == b,
                    "{a:?} vs {b:?}"
                );
            }
        }
        // Same length, differing in the last word or in the tail.
        assert!(!Lookup("user:123456789").equivalent(&"user:123456780".to_owned()));
        assert!(!Lookup("user:12345678").equivalent(&"user:02345678".to_owned()));
        assert!(!Lookup("abcdefghij").equivalent(&"abcdefghiz".to_owned()));
    }

    #[test]
    fn entries_stay_small() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }

    /// The hit path's expiry check (`live`, through `now_unless_before`) is exact: present
    /// one nanosecond before the deadline, gone at it, on both synchronous reads.
    #[test]
    fn the_hit_path_expires_an_entry_at_exactly_its_deadline() {
        let clock = Clock::manual();
        let mem = MemoryBackend::with_clock(MemoryOptions::with_size(10), clock.clone());
        let ttl = Duration::from_secs(60);
        assert!(mem.set_now("k", b"v", SetOptions::ttl(Some(ttl))).unwrap());
        assert!(mem.set_now("s", b"v", SetOptions::ttl(Some(ttl))).unwrap());
        let read = |key: &str| mem.read_now(key, <[u8]>::to_vec);
        let shared = |key: &str| {
            mem.read_shared_with(key, 1, |b| Some(b.to_vec()), |v: &Vec<u8>, _| v.clone())
        };
        clock.advance(ttl - Duration::from_nanos(1));
        assert_eq!(read("k"), Some(b"v".to_vec()));
        assert_eq!(shared("s"), Some(b"v".to_vec()));
        clock.advance(Duration::from_nanos(1));
        assert_eq!(read("k"), None);
        assert_eq!(shared("s"), None);
        assert_eq!(
            mem.inner.map.len(),
            0,
            "an expired entry is dropped when read"
        );
    }
}
