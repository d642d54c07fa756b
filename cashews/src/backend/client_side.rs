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

mod commands;
mod fence;
mod link;
mod route;
mod tier;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{Notify, watch};

use self::fence::Fences;
use self::link::Link;
use super::{FrontGate, MemoryBackend, RedisBackend};
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
            hits: shared.gate.hits(),
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
}

#[cfg(test)]
mod tests;
