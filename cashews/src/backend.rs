//! The [`Backend`] trait: the contract every storage engine and every wrapper fulfils.
//!
//! Bytes in, bytes out: keys are `&str`, values are [`Bytes`]. Serialization happens above the
//! trait, once, in the codec. The shared conformance suite (`cashews-testkit`) checks every
//! implementation against the same cases, including the atomic commands hammered by concurrent
//! callers.
//!
//! # Atomicity
//!
//! These methods must be atomic per key, on every backend: [`Backend::set`] with a
//! [`Condition`], [`Backend::incr`], [`Backend::set_lock`], [`Backend::unlock`] (compare and
//! delete), [`Backend::incr_bits`], [`Backend::slice_incr`], [`Backend::slice_incr_now`],
//! [`Backend::set_add`], [`Backend::set_remove`] and [`Backend::set_pop`].
//!
//! # Expiry
//!
//! An expired key is absent for every command, whether or not it has been purged yet.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use crate::error::Result;

mod batch;
#[cfg(feature = "redis")]
pub mod client_side;
#[cfg(feature = "disk")]
pub mod disk;
pub(crate) mod erased;
mod layout;
mod local;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
pub use batch::{Batch, BatchWrite};
pub(crate) use erased::DynBackend;
#[cfg(feature = "redis")]
pub(crate) use local::FrontGate;
pub use local::LocalTier;
pub mod transaction;
pub use transaction::{TransactionMode, TransactionOptions, Transactional};

/// A boxed, `Send` stream, as returned by [`Backend::scan`].
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// When a [`Backend::set`] writes.
///
/// ```
/// use cashews::backend::Condition;
/// assert_eq!(Condition::default(), Condition::Always);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Condition {
    /// Always write (plain SET).
    #[default]
    Always,
    /// Only if the key is absent or expired (SET NX).
    IfAbsent,
    /// Only if the key is present (SET XX).
    IfPresent,
}

/// How a [`Backend::set`] writes.
///
/// `ttl: None` stores without expiry and removes any previous expiry (as Redis `SET` does).
///
/// ```
/// use std::time::Duration;
/// use cashews::backend::{Condition, SetOptions};
/// let opts = SetOptions::ttl(Some(Duration::from_secs(5))).condition(Condition::IfAbsent);
/// assert_eq!(opts.condition, Condition::IfAbsent);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub struct SetOptions {
    /// Time to live; `None` means no expiry.
    pub ttl: Option<Duration>,
    /// When to write.
    pub condition: Condition,
}

impl SetOptions {
    /// Options with this TTL and [`Condition::Always`].
    ///
    /// ```
    /// let opts = cashews::backend::SetOptions::ttl(None);
    /// assert!(opts.ttl.is_none());
    /// ```
    #[must_use]
    pub const fn ttl(ttl: Option<Duration>) -> Self {
        Self {
            ttl,
            condition: Condition::Always,
        }
    }

    /// The same options with another condition.
    ///
    /// ```
    /// use cashews::backend::{Condition, SetOptions};
    /// assert_eq!(SetOptions::ttl(None).condition(Condition::IfPresent).condition, Condition::IfPresent);
    /// ```
    #[must_use]
    pub const fn condition(mut self, condition: Condition) -> Self {
        self.condition = condition;
        self
    }
}

/// The remaining lifetime of a key: a typed answer instead of Python's -2 / -1 / seconds.
///
/// ```
/// use std::time::Duration;
/// use cashews::backend::Expiry;
/// assert_eq!(Expiry::In(Duration::from_millis(1_400)).as_secs_rounded(), Some(1));
/// assert_eq!(Expiry::Missing.as_secs_rounded(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expiry {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this duration.
    In(Duration),
}

impl Expiry {
    /// The remaining whole seconds, rounded to the nearest (0.5 s rounds up), or `None` when the
    /// key is missing or persistent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::backend::Expiry;
    /// assert_eq!(Expiry::In(Duration::from_millis(500)).as_secs_rounded(), Some(1));
    /// ```
    #[must_use]
    pub fn as_secs_rounded(self) -> Option<u64> {
        match self {
            Self::In(d) => Some((d.as_millis() as u64 + 500) / 1000),
            _ => None,
        }
    }
}

/// A storage engine: the commands of the cashews command set over bytes.
///
/// Implementors write plain `async fn`s; every future is `Send`. Handles are cheap to clone
/// (`Arc` inside) and every method takes `&self`. Batch methods have loop-over-singles defaults
/// that network backends override with one round trip.
///
/// See the [module docs](self) for which methods must be atomic.
///
/// ```
/// use cashews::MemoryBackend;
/// use cashews::backend::{Backend, SetOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let mem = MemoryBackend::new(Default::default());
/// assert!(mem.set("k", "v".into(), SetOptions::default()).await?);
/// assert_eq!(mem.get("k").await?.as_deref(), Some(&b"v"[..]));
/// # Ok(()) }
/// ```
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and errors: `mem`, `redis`, `disk`.
    fn name(&self) -> &'static str;

    /// Reads a value; `None` when missing or expired.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>>> + Send;

    /// Reads several values, in the order of `keys`.
    fn get_many(&self, keys: &[&str]) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        }
    }

    /// Stores a value; returns whether it was written (false when the condition was not met).
    fn set(
        &self,
        key: &str,
        value: Bytes,
        options: SetOptions,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Stores several values with the same TTL. Not atomic as a whole.
    fn set_many(
        &self,
        pairs: &[(&str, Bytes)],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (key, value) in pairs {
                self.set(key, value.clone(), SetOptions::ttl(ttl)).await?;
            }
            Ok(())
        }
    }

    /// Deletes a key; returns whether it existed.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes several keys; returns how many existed.
    fn delete_many(&self, keys: &[&str]) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let mut n = 0;
            for key in keys {
                n += u64::from(self.delete(key).await?);
            }
            Ok(n)
        }
    }

    /// Whether a key exists (and has not expired).
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Sets a new TTL on an existing key, or with `None` removes its TTL (the key then lives
    /// until deleted, as Redis `PERSIST`); returns whether the key existed. The value is
    /// untouched and the change is atomic. [`Cache`](crate::Cache) never passes a zero
    /// duration (a zero TTL means "no expiry" there, so it arrives as `None`); a backend given
    /// `Some(Duration::ZERO)` expires the key at once, as Redis `PEXPIRE k 0`.
    fn expire(&self, key: &str, ttl: Option<Duration>)
    -> impl Future<Output = Result<bool>> + Send;

    /// The remaining lifetime of a key.
    fn get_expire(&self, key: &str) -> impl Future<Output = Result<Expiry>> + Send;

    /// Atomically adds `by` to the integer at `key` (a missing key counts as 0) and returns the
    /// new value. `ttl` is applied when this call creates the key. A value that is not a decimal
    /// integer is an [`Error::WrongType`](crate::Error::WrongType) and stays unchanged.
    fn incr(
        &self,
        key: &str,
        by: i64,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Streams the keys matching a glob `pattern` (`*`, `?`, `[abc]`, `[^a-z]`, `\` escapes, as
    /// Redis), in no particular order. `batch_size` is a hint for how many keys to fetch at once.
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>>;

    /// Deletes every key matching a glob `pattern`; returns how many were deleted.
    ///
    /// The default scans and deletes in batches of 100 keys.
    fn delete_match(&self, pattern: &str) -> impl Future<Output = Result<u64>> + Send {
        let mut keys = self.scan(pattern, 100);
        async move {
            use futures_util::StreamExt;
            let mut deleted = 0;
            let mut batch: Vec<String> = Vec::with_capacity(100);
            while let Some(key) = keys.next().await {
                batch.push(key?);
                if batch.len() == 100 {
                    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                    deleted += self.delete_many(&refs).await?;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                deleted += self.delete_many(&refs).await?;
            }
            Ok(deleted)
        }
    }

    /// Applies a [`Batch`]: its deletes, then its writes, each write with its own TTL. What a
    /// [`transaction`] commits.
    ///
    /// The default runs `delete_many`, then one `set_many` per distinct TTL: not atomic. The
    /// built-in backends do better:
    ///
    /// - Redis, single server: one `MULTI`/`EXEC` pipeline, in one round trip: atomic;
    /// - Redis cluster: one `MULTI`/`EXEC` pipeline per hash slot, sent concurrently: atomic
    ///   per slot, not across slots (keys sharing a `{hash tag}` share a slot);
    /// - client-side Redis: its Redis backend's `apply`, with the local copies of the keys
    ///   invalidated as for any write;
    /// - disk: one SQL transaction per shard: atomic per shard, not across shards;
    /// - memory: the default (each key's write is atomic, the batch is not).
    ///
    /// Wrappers forward it ([`Layered`](crate::middleware::Layered) sends it down the chain as
    /// [`Request::Apply`](crate::middleware::Request::Apply)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::MemoryBackend;
    /// use cashews::backend::{Backend, Batch, Expiry, SetOptions};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let mem = MemoryBackend::new(Default::default());
    /// mem.set("old", "x".into(), SetOptions::default()).await?;
    /// let mut batch = Batch::new();
    /// batch.delete("old").set("new", "v".into(), Some(Duration::from_secs(60)));
    /// mem.apply(&batch).await?;
    /// assert!(!mem.exists("old").await?);
    /// assert!(matches!(mem.get_expire("new").await?, Expiry::In(_)));
    /// # Ok(()) }
    /// ```
    fn apply(&self, batch: &Batch) -> impl Future<Output = Result<()>> + Send {
        async move {
            if !batch.deletes().is_empty() {
                let keys: Vec<&str> = batch.deletes().iter().map(String::as_str).collect();
                self.delete_many(&keys).await?;
            }
            for (ttl, pairs) in batch.writes_by_ttl() {
                self.set_many(&pairs, ttl).await?;
            }
            Ok(())
        }
    }

    /// Takes a lock: stores `token` at `key` with `ttl` only if the key is absent. Atomic.
    fn set_lock(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool>> + Send {
        let value = Bytes::copy_from_slice(token.as_bytes());
        async move {
            self.set(
                key,
                value,
                SetOptions::ttl(Some(ttl)).condition(Condition::IfAbsent),
            )
            .await
        }
    }

    /// Releases a lock: deletes `key` only if it holds `token`. Atomic (compare and delete).
    fn unlock(&self, key: &str, token: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Reads unsigned `size`-bit fields at positions `index * size` (Redis `BITFIELD GET u{size}
    /// #{index}`). A missing key reads zeros. `size` is 1 to 63.
    fn get_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
    ) -> impl Future<Output = Result<Vec<u64>>> + Send;

    /// Adds `by` to each field, saturating within `[0, 2^size - 1]`, and returns the new values.
    /// Atomic.
    fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> impl Future<Output = Result<Vec<u64>>> + Send;

    /// Sliding-window counter. Atomically: forgets events before `start`, counts the events in
    /// `[start, end]`, and if that count is below `max` records one more event at `end` (and
    /// resets the key's TTL to `ttl` when given). Returns the count, including the new event.
    /// Events at the same instant are counted separately.
    fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Sliding-window counter stamped by the backend: [`Backend::slice_incr`] over the window
    /// `(now − period, now]`, where `now` is read by the backend itself, inside the atomic
    /// section that counts and records (in milliseconds, the unit of `slice_incr` stamps).
    /// Atomically: forgets events older than the window, counts the events in it, and if that
    /// count is below `max` records one more at `now` (and resets the key's TTL to `ttl` when
    /// given). Returns the count, including the new event. `period` is taken in whole
    /// milliseconds, at least 1.
    ///
    /// # Exact across processes
    ///
    /// With `slice_incr`, each caller stamps its event before sending the command, so a command
    /// that reaches the backend after a later-stamped one does not count that event, and more
    /// than `max` events can end up in one window. Here the stamp is taken where the command
    /// runs, in the order the commands run: every event already recorded is at or before
    /// `now`, so at most `max` events ever lie in any window, whatever the number of callers
    /// and processes. Where `now` comes from:
    ///
    /// - memory: the backend's [`Clock`](crate::Clock) (manual in tests), read under the key's
    ///   entry guard;
    /// - Redis (and the client-side tier, which forwards it): the server's `TIME`, read by the
    ///   script, so every process shares one clock; one key, so it works on a cluster;
    /// - disk: the wall clock (Unix time), read inside the shard's `BEGIN IMMEDIATE`
    ///   transaction.
    ///
    /// Wrappers must forward this method to the backend they wrap, not rebuild it from
    /// `slice_incr` with their own clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::{Clock, MemoryBackend, backend::Backend};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let clock = Clock::manual();
    /// let mem = MemoryBackend::with_clock(Default::default(), clock.clone());
    /// let second = Duration::from_secs(1);
    /// assert_eq!(mem.slice_incr_now("w", second, 2, Some(second)).await?, 1);
    /// assert_eq!(mem.slice_incr_now("w", second, 2, Some(second)).await?, 2);
    /// assert_eq!(mem.slice_incr_now("w", second, 2, Some(second)).await?, 2); // full: not recorded
    /// clock.advance(second);
    /// assert_eq!(mem.slice_incr_now("w", second, 2, Some(second)).await?, 1);
    /// # Ok(()) }
    /// ```
    fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Adds members to the set at `key`; with `ttl`, the set's TTL is reset to it. Returns how
    /// many members were new.
    fn set_add(
        &self,
        key: &str,
        members: &[&str],
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Removes members from the set at `key`, keeping its TTL. Returns how many were removed.
    fn set_remove(&self, key: &str, members: &[&str]) -> impl Future<Output = Result<u64>> + Send;

    /// Removes and returns up to `count` arbitrary members of the set at `key`.
    fn set_pop(&self, key: &str, count: usize) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Checks that the backend answers: returns `PONG` for an empty message or `PING`, else the
    /// message itself.
    fn ping(&self, message: &[u8]) -> impl Future<Output = Result<Bytes>> + Send;

    /// Removes every key of this backend.
    fn clear(&self) -> impl Future<Output = Result<()>> + Send;

    /// The number of keys.
    fn keys_count(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Approximate bytes used by one key (0 when missing), or `None` when the backend cannot tell.
    fn get_size(&self, key: &str) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Releases connections and stops background tasks. Commands after `close` may fail.
    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// A feed of lock releases made by every client of this backend, in any process, for
    /// waiters to wake at once instead of polling; `None` (the default) when the backend has
    /// none. The Redis backend has one: its `unlock` publishes the released key.
    ///
    /// The feed yields [`LockEvent::Subscribed`] once it hears every release, then
    /// [`LockEvent::Released`] per release (a key as given to [`Backend::unlock`]). It ends
    /// when the subscription breaks; nothing is lost but latency, since waiters keep a
    /// bounded backoff as a safety net.
    ///
    /// ```
    /// use cashews::{MemoryBackend, backend::Backend};
    /// // In-process backends have no feed: `Cache` wakes its own waiters.
    /// assert!(MemoryBackend::new(Default::default()).lock_releases().is_none());
    /// ```
    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        None
    }

    /// Whether the backend is reachable, for backends that track it (`None`, the default,
    /// for the others). The Redis backend marks itself down after `down_after` connection
    /// failures in a row, fails every command at once with
    /// [`Error::BackendDown`](crate::Error::BackendDown) while down, and probes the server in
    /// the background until it answers.
    ///
    /// ```
    /// use cashews::{MemoryBackend, backend::Backend};
    /// assert!(MemoryBackend::new(Default::default()).health().is_none());
    /// ```
    fn health(&self) -> Option<BackendHealth> {
        None
    }

    /// The part of this backend that lives in this process and answers synchronously, if any
    /// (`None`, the default). [`Cache`](crate::Cache) serves reads (and, for a
    /// [whole](LocalTier::is_whole) tier, plain writes) from it without a future. The memory
    /// backend is its own whole tier; the client-side Redis backend declares its local copies
    /// as a front tier. A wrapper forwards its inner backend's tier only when it need not see
    /// the reads and plain writes the tier serves (see [`LocalTier`]).
    ///
    /// ```
    /// use cashews::{MemoryBackend, backend::Backend};
    /// assert!(MemoryBackend::new(Default::default()).local_tier().is_some());
    /// ```
    fn local_tier(&self) -> Option<LocalTier> {
        None
    }
}

/// The health of a backend that tracks it, from [`Backend::health`] or
/// [`Cache::health`](crate::Cache::health).
///
/// ```
/// use cashews::backend::BackendHealth;
/// let health = BackendHealth::default();
/// assert!(!health.down);
/// assert_eq!(health.downs, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BackendHealth {
    /// Whether the backend is marked down: commands fail at once while a background probe
    /// tries to reach it.
    pub down: bool,
    /// Connection failures and timeouts in a row (any answer resets it).
    pub consecutive_failures: u32,
    /// How many times the backend was marked down.
    pub downs: u64,
    /// Probes sent while down.
    pub probes: u64,
    /// Connections attempted for commands (the probes' own are counted in `probes`).
    pub connection_attempts: u64,
    /// Commands (or pipelines) handed to a connection.
    pub commands_sent: u64,
}

/// What a [`Backend::lock_releases`] feed reports.
///
/// ```
/// use cashews::backend::LockEvent;
/// let event = LockEvent::Released("locked:job".to_owned());
/// assert!(matches!(event, LockEvent::Released(key) if key == "locked:job"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockEvent {
    /// The feed now hears every release (sent once, before any release).
    Subscribed,
    /// A lock was released: its key, as given to [`Backend::unlock`].
    Released(String),
}

/// `PONG`, or the message echoed: the reply every backend's [`Backend::ping`] gives.
pub(crate) fn pong(message: &[u8]) -> Bytes {
    if message.is_empty() || message.eq_ignore_ascii_case(b"PING") {
        Bytes::from_static(b"PONG")
    } else {
        Bytes::copy_from_slice(message)
    }
}

#[cfg(feature = "redis")]
pub use self::redis::RedisBackend;
#[cfg(feature = "redis")]
pub use client_side::{ClientSideRedis, ClientSideStats};
#[cfg(feature = "disk")]
pub use disk::DiskBackend;
// At `backend::memory` and the crate root (`cashews::MemoryBackend`), not here too.
use memory::MemoryBackend;

/// The inclusive millisecond bounds `[start, end]` of the window `(now − period, now]` that
/// [`Backend::slice_incr_now`] counts: events exactly `period` old have left it. `period` is
/// taken in whole milliseconds, at least 1.
pub(crate) fn window_at(now_ms: u64, period: Duration) -> (u64, u64) {
    let period = window_ms(period);
    (now_ms.saturating_add(1).saturating_sub(period), now_ms)
}

/// A window length in whole milliseconds, at least 1 (what [`Backend::slice_incr_now`] uses).
pub(crate) fn window_ms(period: Duration) -> u64 {
    u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Bit offsets beyond this are refused, as Redis refuses offsets past 2^32 bits.
const MAX_BIT_OFFSET: u64 = 1 << 32;

/// The bit-field checks every backend applies before `get_bits` / `incr_bits` (the same
/// errors on every backend): a width of 1 to 63 bits and fields ending within 2^32 bits.
pub(crate) fn check_bits(
    key: &str,
    command: crate::Command,
    indexes: &[u64],
    size: u8,
) -> Result<()> {
    if !(1..=63).contains(&size) {
        return Err(crate::Error::InvalidOption {
            option: "size".to_owned(),
            value: size.to_string(),
            expected: "a bit field width from 1 to 63".to_owned(),
        });
    }
    for &index in indexes {
        let end = index
            .checked_mul(u64::from(size))
            .and_then(|o| o.checked_add(u64::from(size)));
        if end.is_none_or(|end| end > MAX_BIT_OFFSET) {
            return Err(crate::Error::InvalidOption {
                option: format!("{command} index for key `{}`", crate::error::shorten(key)),
                value: index.to_string(),
                expected: "a field that ends within the first 2^32 bits".to_owned(),
            });
        }
    }
    Ok(())
}
