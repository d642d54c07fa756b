//! `redis://…?client_side=true`: a bounded in-process tier in front of Redis, kept coherent by
//! Redis server-assisted client-side caching (cargo feature `redis`).
//!
//! # How it works
//!
//! [`ClientSideRedis`] keeps recently read values in a [`MemoryBackend`] of `client_side_size`
//! entries (default 10,000), each with the TTL Redis reported (minus the round trip, so a local
//! entry never outlives its Redis key). A local hit costs one map lookup and no round trip; a
//! miss reads `GET` and `PTTL` in one pipeline and fills the tier.
//!
//! Coherence comes from one RESP3 connection, the *tracking link*, on which the backend sends
//! `CLIENT TRACKING ON BCAST [PREFIX key_prefix] NOLOOP`: Redis then pushes an invalidation for
//! every write by any client to a key under the prefix (all keys without a `key_prefix`), and
//! each push removes the key from the tier. While the link is up **every command goes over
//! it**, so `NOLOOP` spares us the invalidations of our own writes: our `set` and `set_many`
//! write the value through to the tier (no round trip on the next read), and every other
//! command that changes a key (`delete`, `incr`, `expire`, locks, bits, sets, windows) drops
//! the local copy; `delete_match` and `clear` drop the matching local entries.
//!
//! # The guarantee, exactly
//!
//! *Once another client's write has been acknowledged and its invalidation delivered to us,
//! we never serve the old value.* Pushes are applied inside the connection's reader before any
//! later reply on that connection reaches its caller, and Redis queues a write's invalidation
//! before the replies of commands that arrive after the write. So after another client's write
//! is acknowledged, any command of ours that completes over the link afterwards (a `ping` will
//! do) proves the invalidation has been applied. Reads concurrent with that write may return
//! either value, as with plain Redis.
//!
//! A reply and the invalidation of its key travel on different code paths, so a value read
//! *before* a write could otherwise land in the tier *after* the write's invalidation: each
//! fill records a per-key-stripe invalidation sequence before sending its read and inserts only
//! if nothing moved meanwhile (a false positive only skips a fill). Our own overlapping writes
//! to one key are settled the same way: once both have returned, neither is in the tier.
//!
//! # Cancellation
//!
//! A command dropped mid-flight leaves the tier safe: a write drops the local copy before it is
//! sent and inserts only at its end, and a fill inserts only after its reply, so a cancelled
//! one merely caches nothing.
//!
//! # Limits
//!
//! - **Link drop.** When the tracking connection drops (server restart, `CLIENT KILL`, network
//!   error) or a command on it fails for a reason other than a Redis error reply (a timeout, a
//!   broken pipe), invalidations may be lost: the tier is flushed at once, and until a new
//!   link has tracking on, every command goes straight to Redis over the pooled connections
//!   with no local caching at all. The link is reopened in the background with backoff
//!   (50 ms doubling to 1 s), and the tier refills only after that.
//! - **Undetected silence.** A link that stays open but stops delivering (a partition without
//!   a TCP reset) is only noticed when a command on it fails or times out (`command_timeout`);
//!   until then, local hits (which send nothing) may serve values changed on the far side. The
//!   same holds between a link's death and the moment its reader notices it.
//! - **Own writes race other clients'.** If another client writes a key while our write to it
//!   is in flight, the tier drops the key rather than guess which write Redis applied last.
//! - **Broadcast mode** sends us every write under the prefix, cached locally or not: use a
//!   `key_prefix` to narrow it on a busy server.
//! - Not available on Redis Cluster yet.
//!
//! # Observability
//!
//! [`ClientSideRedis::stats`] counts local hits, misses, invalidations, flushes and link
//! (re)openings; `tracing` debug events mark the link going up and down.

mod fence;
mod link;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use futures_util::FutureExt as _;
use redis::Value;
use tokio::sync::{Notify, watch};

use self::fence::{Fences, Ticket};
use self::link::Link;
use super::{
    Backend, BoxStream, Expiry, FrontGate, LockEvent, MemoryBackend, RedisBackend, SetOptions,
};
use crate::command::Command;
use crate::config::redact::redact_url;
use crate::config::{MemoryOptions, RedisOptions};
use crate::error::{Error, Result};

/// Redis with a local, invalidation-tracked tier (`redis://…?client_side=true`).
///
/// A cheap-clone handle: clones share the tier, the link and the pool. Building one does not
/// connect; the first command starts the tracking link in the background (commands go straight
/// to Redis until it is up), or [`ClientSideRedis::connect`] opens it and waits. See the
/// [module docs](self) for the guarantee and its limits.
///
/// ```no_run
/// use cashews::backend::{Backend, ClientSideRedis, SetOptions};
/// use cashews::config::RedisOptions;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let redis = ClientSideRedis::new(RedisOptions::new("redis://127.0.0.1:6379/0"))?;
/// redis.connect().await?;
/// redis.set("k", "v".into(), SetOptions::default()).await?;
/// assert_eq!(redis.get("k").await?.as_deref(), Some(&b"v"[..])); // served locally
/// assert_eq!(redis.stats().hits, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientSideRedis {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ClientSideRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.shared.pooled.options();
        f.debug_struct("ClientSideRedis")
            .field("address", &redact_url(&options.address))
            .field("key_prefix", &options.key_prefix)
            .field("linked", &self.shared.gate.up.load(Ordering::Relaxed))
            .field("local_entries", &self.shared.tier.len())
            .finish_non_exhaustive()
    }
}

/// Counters of a [`ClientSideRedis`], from [`ClientSideRedis::stats`].
///
/// ```
/// # use cashews::{backend::ClientSideRedis, config::RedisOptions};
/// let redis = ClientSideRedis::new(RedisOptions::new("redis://127.0.0.1"))?;
/// let stats = redis.stats();
/// assert_eq!((stats.hits, stats.misses), (0, 0));
/// assert!(!stats.linked);
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientSideStats {
    /// Reads (`get`, `get_many` keys, `exists`) served by the local tier.
    pub hits: u64,
    /// Reads that went to Redis while the link was up (and tried to fill the tier).
    pub misses: u64,
    /// Keys removed from the tier by invalidation pushes.
    pub invalidations: u64,
    /// Whole-tier flushes: link drops, null invalidations, `clear`.
    pub flushes: u64,
    /// Fills (or write-throughs) skipped because the key was invalidated while in flight.
    pub fills_skipped: u64,
    /// How many times the tracking link came up.
    pub links: u64,
    /// Whether the tracking link is up now (local reads happen only then).
    pub linked: bool,
    /// The Redis `CLIENT ID` of the tracking connection while it is up.
    pub link_client_id: Option<i64>,
    /// The entries in the local tier now (including expired ones not purged yet).
    pub local_entries: usize,
}

#[derive(Default)]
struct Counters {
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
    fills_skipped: AtomicU64,
    links: AtomicU64,
}

struct Shared {
    /// The plain backend: commands while the link is down, and the source of pinned views.
    pooled: RedisBackend,
    /// The client of `pooled`, speaking RESP3 (pushes need it).
    resp3: redis::Client,
    tier: MemoryBackend,
    fences: Fences,
    /// Whether the link is up (the local hit path's only check besides the lookup), and the
    /// local hits: the switch of the front tier `Cache` reads synchronously.
    gate: Arc<FrontGate>,
    link: ArcSwapOption<Link>,
    /// The generation of the newest link attempt.
    generation: AtomicU64,
    /// The newest generation whose connection dropped.
    lost: AtomicU64,
    /// Serializes the link going up and down.
    transition: parking_lot::Mutex<()>,
    /// Mirrors `up` for [`ClientSideRedis::connect`] to wait on.
    linked: watch::Sender<bool>,
    /// Wakes the link task: the link dropped, or a caller wants it now.
    wake: Arc<Notify>,
    started: AtomicBool,
    closed: AtomicBool,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_error: parking_lot::Mutex<Option<String>>,
    counters: Counters,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().take() {
            task.abort();
        }
    }
}

impl ClientSideRedis {
    /// A client-side cached Redis backend for these options (`client_side_size` bounds the
    /// local tier). Does not connect.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when redis-rs cannot read the address.
    ///
    /// ```
    /// use cashews::{backend::ClientSideRedis, config::RedisOptions};
    /// let redis = ClientSideRedis::new(RedisOptions::new("redis://localhost:6379/1"))?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn new(options: RedisOptions) -> Result<Self> {
        let size = options.client_side_size.max(1);
        let pooled = RedisBackend::new(options)?;
        let info = pooled.client().get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let resp3 = redis::Client::open(info.set_redis_settings(settings)).map_err(|e| {
            Error::InvalidUrl {
                url: redact_url(&pooled.options().address),
                reason: format!("redis-rs refuses RESP3 for this address ({})", e.category()),
            }
        })?;
        let (linked, _) = watch::channel(false);
        Ok(Self {
            shared: Arc::new(Shared {
                pooled,
                resp3,
                tier: MemoryBackend::new(MemoryOptions::with_size(size)),
                fences: Fences::new(),
                gate: Arc::new(FrontGate::default()),
                link: ArcSwapOption::empty(),
                generation: AtomicU64::new(0),
                lost: AtomicU64::new(0),
                transition: parking_lot::Mutex::new(()),
                linked,
                wake: Arc::new(Notify::new()),
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                task: parking_lot::Mutex::new(None),
                last_error: parking_lot::Mutex::new(None),
                counters: Counters::default(),
            }),
        })
    }

    /// Starts the tracking link if needed and waits until it is up (at most twice
    /// `connect_timeout`, plus the reconnection backoff).
    ///
    /// Optional: the first command starts the link anyway, and commands work (uncached) while
    /// it is down.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] naming the last connection error when the link is not up in time.
    ///
    /// ```no_run
    /// # use cashews::{backend::ClientSideRedis, config::RedisOptions};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let redis = ClientSideRedis::new(RedisOptions::new("redis://127.0.0.1"))?;
    /// redis.connect().await?;
    /// assert!(redis.stats().linked);
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<()> {
        let shared = &self.shared;
        let mut linked = shared.linked.subscribe();
        shared.start();
        shared.wake.notify_one();
        let wait = shared
            .pooled
            .options()
            .connect_timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(2));
        match tokio::time::timeout(wait, linked.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let last = shared.last_error.lock().clone();
                Err(Error::backend(
                    "redis",
                    Command::Ping,
                    format!(
                        "the client-side tracking link is not up after {wait:?}: {}",
                        last.as_deref().unwrap_or("no answer yet")
                    ),
                ))
            }
        }
    }

    /// The counters of the local tier and the state of the link.
    ///
    /// ```
    /// # use cashews::{backend::ClientSideRedis, config::RedisOptions};
    /// let redis = ClientSideRedis::new(RedisOptions::new("redis://127.0.0.1"))?;
    /// assert_eq!(redis.stats().local_entries, 0);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> ClientSideStats {
        let shared = &self.shared;
        let c = &shared.counters;
        let link = shared.link.load();
        ClientSideStats {
            hits: shared.gate.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            fills_skipped: c.fills_skipped.load(Ordering::Relaxed),
            links: c.links.load(Ordering::Relaxed),
            linked: link.is_some(),
            link_client_id: link.as_ref().map(|l| l.client_id),
            local_entries: shared.tier.len(),
        }
    }

    /// The options this backend was built with.
    ///
    /// ```
    /// # use cashews::{backend::ClientSideRedis, config::RedisOptions};
    /// let options = RedisOptions::new("redis://127.0.0.1").with_key_prefix("a:");
    /// let redis = ClientSideRedis::new(options)?;
    /// assert_eq!(redis.options().key_prefix, "a:");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn options(&self) -> &RedisOptions {
        self.shared.pooled.options()
    }

    /// The link while it is up; otherwise `None` (and the link task is started if it was not).
    fn link(&self) -> Option<Arc<Link>> {
        let link = self.shared.link.load_full();
        if link.is_none() {
            self.shared.start();
        }
        link
    }

    /// A read that changes nothing: over the link when up, else over the pool.
    fn route(&self) -> (Option<Arc<Link>>, &RedisBackend) {
        let link = self.link();
        (link, &self.shared.pooled)
    }

    /// One of our own commands that changes `key` without telling us its new value: the local
    /// copy is dropped before the command is sent and again once it is answered.
    async fn mutate<T, F, Fut>(&self, key: &str, op: F) -> Result<T>
    where
        F: FnOnce(RedisBackend) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let shared = &self.shared;
        // The ticket comes first: a link that drops after this point moves the epoch.
        let ticket = shared.fences.begin_write(key, || shared.remove_local(key));
        let Some(link) = self.link() else {
            return op(shared.pooled.clone()).await;
        };
        let out = self.checked(&link, op(link.backend.clone()).await);
        shared
            .fences
            .end_write(&ticket, |_| shared.remove_local(key));
        out
    }

    /// Several keys' version of [`ClientSideRedis::mutate`].
    async fn mutate_many<T, F, Fut>(&self, keys: &[&str], op: F) -> Result<T>
    where
        F: FnOnce(RedisBackend) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let shared = &self.shared;
        let tickets: Vec<Ticket> = keys
            .iter()
            .map(|key| shared.fences.begin_write(key, || shared.remove_local(key)))
            .collect();
        let Some(link) = self.link() else {
            return op(shared.pooled.clone()).await;
        };
        let out = self.checked(&link, op(link.backend.clone()).await);
        for (ticket, key) in tickets.iter().zip(keys) {
            shared
                .fences
                .end_write(ticket, |_| shared.remove_local(key));
        }
        out
    }

    /// Reads `keys` from Redis over the link (`GET` and `PTTL` each, one round trip) and fills
    /// the tier with the values nothing invalidated meanwhile.
    async fn fill(
        &self,
        link: &Link,
        keys: &[&str],
        tickets: &[Ticket],
    ) -> Result<Vec<Option<Bytes>>> {
        let shared = &self.shared;
        shared
            .counters
            .misses
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        let prefix = &shared.pooled.options().key_prefix;
        let mut pipe = redis::pipe();
        for key in keys {
            let stored = format!("{prefix}{key}");
            pipe.cmd("GET").arg(&stored).cmd("PTTL").arg(&stored);
        }
        let sent = Instant::now();
        let command = if keys.len() == 1 {
            Command::Get
        } else {
            Command::GetMany
        };
        let mut conn = link.conn.clone();
        let replies: Vec<Value> = match pipe.query_async(&mut conn).await {
            Ok(replies) => replies,
            // A server error (WRONGTYPE on a set, say): let the plain command report it
            // exactly as the Redis backend does.
            Err(e) if e.code().is_some() => return uncached(&link.backend, keys).await,
            Err(e) => {
                if link_failure(&e) {
                    self.shared
                        .link_lost(link.generation, "a command on it failed");
                }
                return Err(Error::backend("redis", command, e));
            }
        };
        match self.apply_fill(keys, tickets, replies, sent) {
            Some(values) => Ok(values),
            None => uncached(&link.backend, keys).await,
        }
    }

    /// Reads the `GET`/`PTTL` replies of a fill and fills the tier with each value whose
    /// ticket still holds. `None` when a reply is not a plain string (the caller then asks
    /// again without filling, so errors read exactly as the Redis backend's).
    fn apply_fill(
        &self,
        keys: &[&str],
        tickets: &[Ticket],
        replies: Vec<Value>,
        sent: Instant,
    ) -> Option<Vec<Option<Bytes>>> {
        let shared = &self.shared;
        let mut parsed = Vec::with_capacity(keys.len());
        let mut replies = replies.into_iter();
        for _ in keys {
            let (Some(value), Some(Value::Int(pttl))) = (replies.next(), replies.next()) else {
                return None;
            };
            match value {
                Value::BulkString(bytes) => parsed.push(Some((Bytes::from(bytes), pttl))),
                Value::Nil => parsed.push(None),
                _ => return None,
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for ((key, ticket), reply) in keys.iter().zip(tickets).zip(parsed) {
            let Some((value, pttl)) = reply else {
                out.push(None);
                continue;
            };
            if let Some(ttl) = local_ttl(pttl, sent) {
                let filled = shared.fences.fill(ticket, || {
                    shared.fill_local(key, &value, ttl);
                });
                if !filled {
                    shared
                        .counters
                        .fills_skipped
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            out.push(Some(value));
        }
        Some(out)
    }

    /// Passes a result of a command on the link through; a failure of the link itself (a
    /// dropped connection, a timeout) means invalidations may be lost too, so the link is given
    /// up (flushed, bypassed, reopened), as when it drops.
    fn checked<T>(&self, link: &Link, result: Result<T>) -> Result<T> {
        if let Err(Error::Backend { source, .. }) = &result
            && source
                .downcast_ref::<redis::RedisError>()
                .is_some_and(link_failure)
        {
            self.shared
                .link_lost(link.generation, "a command on it failed");
        }
        result
    }

    /// A whole-prefix change of ours (`delete_match`, `clear`): once Redis answered, every fill
    /// and write in flight is fenced off and `flush` drops the local entries concerned.
    fn settle_wide(&self, flush: impl FnOnce()) {
        self.shared.fences.new_epoch(flush);
    }
}

/// Whether an error means the link itself failed (rather than Redis refusing one command).
fn link_failure(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// Reads without filling (the fallback when a fill's reply is not a plain string).
async fn uncached(backend: &RedisBackend, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
    match keys {
        [key] => Ok(vec![backend.get(key).await?]),
        _ => backend.get_many(keys).await,
    }
}

/// The TTL a local copy gets from a `PTTL` reply: the remaining time minus the time since the
/// read was sent (so the copy never outlives the key), `Some(None)` for a key without expiry,
/// `None` when the copy must not be kept (the key expired or vanished meanwhile).
fn local_ttl(pttl: i64, sent: Instant) -> Option<Option<Duration>> {
    match pttl {
        -1 => Some(None),
        ms if ms > 0 => Duration::from_millis(ms.unsigned_abs())
            .checked_sub(sent.elapsed())
            .filter(|left| !left.is_zero())
            .map(Some),
        _ => None,
    }
}

impl Shared {
    /// Drops one local entry. Every `MemoryBackend` command finishes on its first poll (there
    /// is no await point inside), which the unit tests check; should that ever change, a
    /// zero-TTL entry still reads as absent.
    fn remove_local(&self, key: &str) {
        if self.tier.delete(key).now_or_never().is_none() {
            // An empty value always fits the tier's budget.
            let _ = self
                .tier
                .set_now(key, b"", SetOptions::ttl(Some(Duration::ZERO)));
        }
    }

    /// Keeps `value` in the local tier; a value the tier refuses (heavier than its budget
    /// lets one entry be) is not kept, and no older copy stays either.
    fn fill_local(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        if self.tier.set_now(key, value, SetOptions::ttl(ttl)).is_err() {
            self.remove_local(key);
        }
    }

    /// Drops every local entry (see [`Shared::remove_local`] on finishing at once).
    fn flush_local(&self) {
        if self.tier.clear().now_or_never().is_none() {
            self.local_flush_failed();
        }
    }

    /// Drops the local entries matching `pattern`.
    fn flush_local_matching(&self, pattern: &str) {
        if self.tier.delete_match(pattern).now_or_never().is_none() {
            self.local_flush_failed();
        }
    }

    /// A flush that could not finish synchronously: never serve locally again.
    fn local_flush_failed(&self) {
        tracing::error!("client-side cache: the local tier could not be flushed; disabling it");
        self.closed.store(true, Ordering::SeqCst);
        self.gate.up.store(false, Ordering::SeqCst);
        self.link.store(None);
    }
}

impl Backend for ClientSideRedis {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let shared = &self.shared;
        if shared.gate.up.load(Ordering::SeqCst)
            && let Some(value) = shared.tier.read_now(key, Bytes::copy_from_slice)
        {
            shared.gate.hit();
            return Ok(Some(value));
        }
        // The ticket before the link: a drop after this point is seen by the fill.
        let ticket = shared.fences.ticket(key);
        let Some(link) = self.link() else {
            return shared.pooled.get(key).await;
        };
        let mut values = self.fill(&link, &[key], &[ticket]).await?;
        Ok(values.pop().flatten())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let shared = &self.shared;
        if !shared.gate.up.load(Ordering::SeqCst) {
            let (link, pooled) = self.route();
            return match link {
                Some(link) => self.checked(&link, link.backend.get_many(keys).await),
                None => pooled.get_many(keys).await,
            };
        }
        let mut out = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let value = shared.tier.read_now(key, Bytes::copy_from_slice);
            if value.is_none() {
                missing.push(i);
            }
            out.push(value);
        }
        let hits = keys.len() - missing.len();
        shared.gate.hits.fetch_add(hits as u64, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(out);
        }
        let missing_keys: Vec<&str> = missing
            .iter()
            .filter_map(|&i| keys.get(i).copied())
            .collect();
        let tickets: Vec<Ticket> = missing_keys
            .iter()
            .map(|key| shared.fences.ticket(key))
            .collect();
        let fetched = match self.link() {
            Some(link) => self.fill(&link, &missing_keys, &tickets).await?,
            None => shared.pooled.get_many(&missing_keys).await?,
        };
        for (i, value) in missing.into_iter().zip(fetched) {
            if let Some(slot) = out.get_mut(i) {
                *slot = value;
            }
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        let shared = &self.shared;
        let ticket = shared.fences.begin_write(key, || shared.remove_local(key));
        let Some(link) = self.link() else {
            return shared.pooled.set(key, value, options).await;
        };
        let sent = Instant::now();
        let written = self.checked(&link, link.backend.set(key, value.clone(), options).await);
        // The local copy expires no later than the Redis key.
        let ttl = match options.ttl {
            None => Some(None),
            Some(ttl) => ttl
                .checked_sub(sent.elapsed())
                .filter(|left| !left.is_zero())
                .map(Some),
        };
        let through = matches!(written, Ok(true)).then_some(ttl).flatten();
        shared.fences.end_write(&ticket, |current| match through {
            Some(ttl) if current => {
                shared.fill_local(key, &value, ttl);
            }
            _ => {
                if through.is_some() {
                    shared
                        .counters
                        .fills_skipped
                        .fetch_add(1, Ordering::Relaxed);
                }
                shared.remove_local(key);
            }
        });
        written
    }

    async fn set_many(&self, pairs: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let shared = &self.shared;
        let tickets: Vec<Ticket> = pairs
            .iter()
            .map(|(key, _)| shared.fences.begin_write(key, || shared.remove_local(key)))
            .collect();
        let Some(link) = self.link() else {
            return shared.pooled.set_many(pairs, ttl).await;
        };
        let sent = Instant::now();
        let written = self.checked(&link, link.backend.set_many(pairs, ttl).await);
        let local = match ttl {
            None => Some(None),
            Some(ttl) => ttl
                .checked_sub(sent.elapsed())
                .filter(|left| !left.is_zero())
                .map(Some),
        };
        let through = written.is_ok().then_some(local).flatten();
        for (ticket, (key, value)) in tickets.iter().zip(pairs) {
            shared.fences.end_write(ticket, |current| match through {
                Some(ttl) if current => {
                    shared.fill_local(key, value, ttl);
                }
                _ => shared.remove_local(key),
            });
        }
        written
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.mutate(key, |b| async move { b.delete(key).await })
            .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.mutate_many(keys, |b| async move { b.delete_many(keys).await })
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let shared = &self.shared;
        // A local copy exists only while its Redis key does (same invalidations, shorter TTL).
        if shared.gate.up.load(Ordering::SeqCst) && shared.tier.read_now(key, |_| ()).is_some() {
            shared.gate.hit();
            return Ok(true);
        }
        match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.exists(key).await),
            (None, pooled) => pooled.exists(key).await,
        }
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.mutate(key, |b| async move { b.expire(key, ttl).await })
            .await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.get_expire(key).await),
            (None, pooled) => pooled.get_expire(key).await,
        }
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.mutate(key, |b| async move { b.incr(key, by, ttl).await })
            .await
    }

    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        match self.route() {
            (Some(link), _) => link.backend.scan(pattern, batch_size),
            (None, pooled) => pooled.scan(pattern, batch_size),
        }
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        let deleted = match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.delete_match(pattern).await),
            (None, pooled) => pooled.delete_match(pattern).await,
        };
        self.settle_wide(|| self.shared.flush_local_matching(pattern));
        deleted
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        self.mutate(key, |b| async move { b.set_lock(key, token, ttl).await })
            .await
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.mutate(key, |b| async move { b.unlock(key, token).await })
            .await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.get_bits(key, indexes, size).await),
            (None, pooled) => pooled.get_bits(key, indexes, size).await,
        }
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        self.mutate(
            key,
            |b| async move { b.incr_bits(key, indexes, size, by).await },
        )
        .await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.mutate(key, |b| async move {
            b.slice_incr(key, start, end, max, ttl).await
        })
        .await
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        // Forwarded as is: the server stamps the event (see `Backend::slice_incr_now`).
        self.mutate(key, |b| async move {
            b.slice_incr_now(key, period, max, ttl).await
        })
        .await
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.mutate(key, |b| async move { b.set_add(key, members, ttl).await })
            .await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.mutate(key, |b| async move { b.set_remove(key, members).await })
            .await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.mutate(key, |b| async move { b.set_pop(key, count).await })
            .await
    }

    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.ping(message).await),
            (None, pooled) => pooled.ping(message).await,
        }
    }

    async fn clear(&self) -> Result<()> {
        let cleared = match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.clear().await),
            (None, pooled) => pooled.clear().await,
        };
        self.settle_wide(|| self.shared.flush_local());
        self.shared.counters.flushes.fetch_add(1, Ordering::Relaxed);
        cleared
    }

    async fn keys_count(&self) -> Result<u64> {
        match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.keys_count().await),
            (None, pooled) => pooled.keys_count().await,
        }
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        match self.route() {
            (Some(link), _) => self.checked(&link, link.backend.get_size(key).await),
            (None, pooled) => pooled.get_size(key).await,
        }
    }

    async fn close(&self) -> Result<()> {
        let shared = &self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        let generation = shared.link.load().as_ref().map(|link| link.generation);
        if let Some(generation) = generation {
            shared.link_lost(generation, "closed");
        }
        if let Some(task) = shared.task.lock().take() {
            task.abort();
        }
        shared.fences.new_epoch(|| shared.flush_local());
        shared.tier.close().await?;
        shared.pooled.close().await
    }

    /// The local copies, served while the invalidation link is up.
    fn local_tier(&self) -> Option<super::LocalTier> {
        Some(super::LocalTier::front(
            self.shared.tier.clone(),
            Arc::clone(&self.shared.gate),
        ))
    }

    /// The Redis backend's feed of lock releases: `unlock` publishes the same way over the
    /// link as over the pool, and the feed has its own subscription.
    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        self.shared.pooled.lock_releases()
    }

    /// The Redis backend's health: the tracking link shares it with the pool.
    fn health(&self) -> Option<super::BackendHealth> {
        self.shared.pooled.health()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use futures_util::FutureExt as _;
    use redis::{PushInfo, PushKind, Value};

    use super::{Backend, Bytes, ClientSideRedis, MemoryBackend, SetOptions, local_ttl};
    use crate::config::RedisOptions;

    fn backend() -> ClientSideRedis {
        // Nothing listens on port 1; these tests never connect.
        ClientSideRedis::new(RedisOptions::new("redis://127.0.0.1:1/0")).unwrap()
    }

    fn invalidate(backend: &ClientSideRedis, key: &str) {
        backend.shared.on_push(
            0,
            PushInfo {
                kind: PushKind::Invalidate,
                data: vec![Value::Array(vec![Value::BulkString(
                    key.as_bytes().to_vec(),
                )])],
            },
        );
    }

    fn reply(value: &str) -> Vec<Value> {
        vec![Value::BulkString(value.as_bytes().to_vec()), Value::Int(-1)]
    }

    fn local(backend: &ClientSideRedis, key: &str) -> Option<Bytes> {
        backend.shared.tier.read_now(key, Bytes::copy_from_slice)
    }

    /// The fill race, held open deterministically: the reply of a read sent before another
    /// client's write is handled after that write's invalidation. The caller gets what it
    /// read, but the tier must not keep it.
    #[test]
    fn a_reply_older_than_an_invalidation_is_not_cached() {
        let backend = backend();
        let ticket = backend.shared.fences.ticket("k");
        invalidate(&backend, "k");
        let out = backend.apply_fill(&["k"], &[ticket], reply("old"), Instant::now());
        assert_eq!(out, Some(vec![Some(Bytes::from("old"))]));
        assert_eq!(local(&backend, "k"), None);
        let c = &backend.shared.counters;
        assert_eq!(c.fills_skipped.load(Ordering::Relaxed), 1);
        assert_eq!(c.invalidations.load(Ordering::Relaxed), 1);
        // A read sent after the invalidation fills.
        let ticket = backend.shared.fences.ticket("k");
        backend.apply_fill(&["k"], &[ticket], reply("new"), Instant::now());
        assert_eq!(local(&backend, "k"), Some(Bytes::from("new")));
        // And the next invalidation removes it.
        invalidate(&backend, "k");
        assert_eq!(local(&backend, "k"), None);
    }

    #[test]
    fn a_null_invalidation_or_a_link_drop_fences_every_fill() {
        let backend = backend();
        let ticket = backend.shared.fences.ticket("a");
        backend.shared.on_push(
            0,
            PushInfo {
                kind: PushKind::Invalidate,
                data: vec![Value::Nil],
            },
        );
        backend.apply_fill(&["a"], &[ticket], reply("old"), Instant::now());
        assert_eq!(local(&backend, "a"), None);
        assert_eq!(backend.stats().flushes, 1);
    }

    #[test]
    fn unexpected_replies_fill_nothing() {
        let backend = backend();
        let ticket = backend.shared.fences.ticket("k");
        let odd = vec![Value::Int(3), Value::Int(-1)];
        assert_eq!(
            backend.apply_fill(&["k"], &[ticket], odd, Instant::now()),
            None
        );
        assert_eq!(local(&backend, "k"), None);
    }

    /// The tier's removals run inside the connection driver, synchronously: they rely on every
    /// memory command finishing on its first poll.
    #[test]
    fn memory_commands_used_by_the_tier_finish_at_once() {
        let mem = MemoryBackend::new(Default::default());
        assert!(mem.set_now("k", b"v", SetOptions::default()).unwrap());
        assert_eq!(
            mem.delete("k").now_or_never().map(|r| r.ok()),
            Some(Some(true))
        );
        assert!(mem.set_now("a1", b"v", SetOptions::default()).unwrap());
        assert_eq!(
            mem.delete_match("a*").now_or_never().map(|r| r.ok()),
            Some(Some(1))
        );
        assert!(mem.set_now("k", b"v", SetOptions::default()).unwrap());
        assert!(mem.clear().now_or_never().is_some_and(|r| r.is_ok()));
        assert!(mem.is_empty());
    }

    #[test]
    fn local_ttl_never_outlives_the_key() {
        let sent = std::time::Instant::now();
        assert_eq!(local_ttl(-1, sent), Some(None));
        assert_eq!(local_ttl(-2, sent), None);
        assert_eq!(local_ttl(0, sent), None);
        let ttl = local_ttl(60_000, sent).flatten().unwrap();
        assert!(ttl <= Duration::from_secs(60));
    }
}
