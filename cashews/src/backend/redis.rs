//! `redis://`: a Redis server or a Redis Cluster through redis-rs (cargo feature `redis`).
//!
//! # Connections
//!
//! Commands go over `max_connections` multiplexed connections (redis-rs
//! `MultiplexedConnection`), used in turn. A connection that drops (the server restarted, or
//! closed it: its idle `timeout`, `CLIENT KILL`, a proxy) fails the commands in flight on it
//! and is replaced by the next command; a `get` that finds its connection dropped is sent
//! once more on the new one, so a read after an idle drop does not fail (a write, which might
//! have run, is not resent). Nothing connects before the first command;
//! `min_connections` of them open then, the others when first used. A connection attempt is
//! bounded by `connect_timeout`, a reply by `command_timeout`, so a server that is down or
//! stuck costs at most that before the command fails (and, in safe mode, the `Cache` answers
//! its neutral reply).
//!
//! # Sizes
//!
//! Redis drops the connection on an argument over its `proto-max-bulk-len` (512 MiB by
//! default), failing every command in flight on that multiplexed connection. So values, set
//! members, lock tokens and ping messages are checked against `max_value_size` (default 512
//! MiB) before anything is sent, and an oversized one fails alone with
//! [`Error::ValueTooLarge`].
//!
//! # Health
//!
//! After `down_after` connection failures or timeouts in a row (default 3) the backend is
//! marked down: every command then fails at once with [`Error::BackendDown`] (safe mode: the
//! neutral reply, in microseconds) without touching the network, while one background task
//! probes the server (`PING` over a fresh connection, after `probe_interval`, then doubling up
//! to `probe_max_interval`). The first probe that answers marks it up, and commands open fresh
//! connections. One `tracing::warn!` per transition;
//! [`Backend::health`](super::Backend::health) reports the state. This holds for a single
//! server, a cluster (probed through its seeds) and the pool of the client-side tier.
//!
//! # Atomicity
//!
//! Single commands where Redis has one: `SET PX NX|XX` for conditional sets and locks,
//! `BITFIELD … OVERFLOW SAT INCRBY` for bit fields, `SPOP count`, `SREM`. `MULTI` for `set_add`
//! with a TTL (SADD + PEXPIRE). Lua scripts (loaded once, then sent by SHA) for `incr` with a TTL (the TTL only
//! when the call creates the key), `unlock` (compare and delete), `slice_incr` (an exact
//! sliding window: events sharing an instant get distinct members) and `slice_incr_now` (the
//! same, stamped with the server's `TIME` inside the script). Batch commands (`MGET`,
//! `UNLINK k…`, a pipeline of `SET`s) take one round trip. A transaction's commit
//! ([`Backend::apply`](crate::backend::Backend::apply)) is one `MULTI`/`EXEC` pipeline (its
//! deletes, then a `SET … PX` per write with the exact remaining TTL): atomic, one round trip.
//!
//! # Keys
//!
//! With a `key_prefix`, every key is stored under it and scans strip it again; `clear` and
//! `keys_count` then cover only that prefix (SCAN + UNLINK, SCAN + count) rather than the whole
//! database (FLUSHDB, DBSIZE). Patterns always go through `SCAN MATCH … COUNT batch_size`,
//! never `KEYS`.
//!
//! # Cluster
//!
//! With `cluster=true` the address (plus any `nodes`) seeds a redis-rs cluster connection,
//! opened by the first command like the pool, which follows the slot map by itself (`MOVED`,
//! `ASK`, failovers). Every command that names one key goes to the primary of that key's
//! slot, Lua scripts included (each touches only its `KEYS[1]`), as does `set_add`'s `MULTI`
//! (one key). `MGET` and `UNLINK` are split by slot by redis-rs, which puts `MGET`'s values back
//! in the order of the keys; the `SET`s of `set_many` are pipelined per slot, the pipelines sent
//! concurrently. Scans (and so `delete_match`, and `clear`/`keys_count` under a key prefix) walk
//! every primary in turn; without a prefix `clear` and `keys_count` send `FLUSHDB` and `DBSIZE`
//! to every primary (the counts summed). Atomicity is per command as above; a batch over many
//! slots is not atomic as a whole (nor is it on one server). A transaction's commit
//! ([`Backend::apply`](crate::backend::Backend::apply)) is one `MULTI`/`EXEC` per slot: atomic
//! per slot, not across slots (give related keys one `{hash tag}` to commit them together).

mod batch;
mod bound;
mod cluster;
mod commands;
mod conn;
mod health;
mod releases;
mod scan;
mod scripts;
#[cfg(feature = "redis-tls")]
mod tls;

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionLike as _, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, Pipeline, RedisError, RedisResult, RedisWrite, ToRedisArgs, ToSingleRedisArg, Value,
};

use self::bound::Bound;
use self::cluster::ClusterSource;
use self::conn::{Conn, Link, Slot, dropped};
use self::health::{Health, Target};

use crate::command::Command;
use crate::config::RedisOptions;
use crate::config::redact::redact_url;
use crate::error::{Error, Result, shorten};

/// The longest TTL sent, in milliseconds (about 142,000 years): Redis refuses expiries that
/// overflow its clock.
const MAX_TTL_MS: u64 = 1 << 52;

/// The Redis backend (`redis://`).
///
/// A cheap-clone handle: clones share the connections. Building one does not connect; the
/// first command does.
///
/// ```no_run
/// use cashews::backend::{Backend, RedisBackend, SetOptions};
/// use cashews::config::RedisOptions;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let redis = RedisBackend::new(RedisOptions::new("redis://127.0.0.1:6379/0"))?;
/// redis.set("k", "v".into(), SetOptions::default()).await?;
/// assert_eq!(redis.get("k").await?.as_deref(), Some(&b"v"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("address", &redact_url(&self.inner.options.address))
            .field("db", &self.inner.options.db)
            .field("key_prefix", &self.inner.options.key_prefix)
            .field("cluster", &self.inner.options.cluster)
            .field("connections", &self.inner.source.len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: redis::Client,
    options: RedisOptions,
    source: Source,
    /// Up or down; shared with the pinned views of this backend.
    health: Arc<Health>,
}

/// Where a backend's commands go.
enum Source {
    /// A pool of multiplexed connections, used in turn and replaced when they drop (the usual
    /// case).
    Pool { slots: Vec<Slot>, next: AtomicUsize },
    /// One given connection, for every command (the client-side tier's tracking connection,
    /// whose own writes must not invalidate it).
    Pinned(MultiplexedConnection),
    /// A Redis Cluster (`cluster=true`): one cluster connection, routing by slot. Boxed: the
    /// cluster client is large, and its variant should not widen the others.
    Cluster(Box<ClusterSource>),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Self::Pool { slots, .. } => slots.len(),
            Self::Pinned(_) | Self::Cluster(_) => 1,
        }
    }
}

impl RedisBackend {
    /// A Redis backend for these options. Does not connect.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for options out of range or that do not go together
    /// ([`RedisOptions::validate`]); [`Error::InvalidUrl`] when redis-rs cannot read the
    /// address (the message hides its password).
    ///
    /// ```no_run
    /// use cashews::{backend::RedisBackend, config::RedisOptions};
    /// let redis = RedisBackend::new(RedisOptions::new("redis://localhost:6379/1"))?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn new(options: RedisOptions) -> Result<Self> {
        options.validate()?;
        let tls = tls_files(&options)?;
        let client = redis::Client::open(options.address.as_str())
            .map_err(|e| crate::config::redis::unreadable_address(&options.address, &e))?;
        let info = client.get_connection_info().clone();
        let mut settings = info.redis_settings().clone();
        if let Some(db) = options.db
            && !options.cluster
        {
            settings = settings.set_db(db);
        }
        if let Some(user) = &options.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &options.password {
            settings = settings.set_password(password);
        }
        let client = open_client(info.set_redis_settings(settings), &tls).map_err(|e| {
            Error::InvalidUrl {
                url: redact_url(&options.address),
                reason: format!("redis-rs refuses these settings ({})", e.category()),
            }
        })?;
        let (source, target) = if options.cluster {
            let cluster = ClusterSource::new(&options, client.get_connection_info(), tls)?;
            let target = Target::Cluster(Box::new(cluster.client()));
            (Source::Cluster(Box::new(cluster)), target)
        } else {
            let pool = Source::Pool {
                slots: (0..options.max_connections.max(1))
                    .map(|_| Slot::default())
                    .collect(),
                next: AtomicUsize::new(0),
            };
            (pool, Target::Server(Box::new(client.clone())))
        };
        let health = Arc::new(Health::new(&options, target));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                options,
                source,
                health,
            }),
        })
    }

    /// The same server and options, with every command sent over `conn` (no pool, no
    /// reconnection: the owner of `conn` replaces the view when the connection drops).
    pub(crate) fn pinned(&self, conn: MultiplexedConnection) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: self.inner.client.clone(),
                options: self.inner.options.clone(),
                source: Source::Pinned(conn),
                health: Arc::clone(&self.inner.health),
            }),
        }
    }

    /// The redis-rs client (server address and credentials) this backend connects with.
    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// The options this backend was built with.
    ///
    /// ```no_run
    /// use cashews::{backend::RedisBackend, config::RedisOptions};
    /// let redis = RedisBackend::new(RedisOptions::new("redis://localhost").with_key_prefix("t:"))?;
    /// assert_eq!(redis.options().key_prefix, "t:");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn options(&self) -> &RedisOptions {
        &self.inner.options
    }

    /// The key as stored: with the backend's key prefix.
    fn key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        let prefix = &self.inner.options.key_prefix;
        if prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(format!("{prefix}{key}"))
        }
    }

    /// The key as stored, written into a command as one argument without building a
    /// `String` (see [`Stored`]).
    fn stored<'a>(&'a self, key: &'a str) -> Stored<'a> {
        Stored {
            prefix: &self.inner.options.key_prefix,
            key,
        }
    }

    /// A connection for one command: the pinned one, the cluster's, or the next slot of the
    /// pool in turn, opened if needed. While the backend is down, [`Error::BackendDown`] at
    /// once.
    async fn conn(&self, command: Command) -> Result<Conn> {
        let inner = &self.inner;
        inner.health.check(command)?;
        let link = match &inner.source {
            Source::Pool { slots, next } => self.pooled(slots, next, command).await?,
            Source::Pinned(conn) => Link::Multiplexed(conn.clone()),
            Source::Cluster(cluster) => {
                Link::Cluster(cluster.get(&inner.options, &inner.health, command).await?)
            }
        };
        Ok(Conn {
            link,
            health: Arc::clone(&inner.health),
        })
    }

    /// The next connection of the pool, opened if needed.
    async fn pooled(&self, slots: &[Slot], next: &AtomicUsize, command: Command) -> Result<Link> {
        let slot = next_slot(slots, next, command)?;
        // The usual case: the slot's connection is open.
        if let Some(conn) = slot.alive(self.inner.health.epoch()) {
            return Ok(Link::Pooled(conn));
        }
        // Boxed: opening a connection is a large future (kilobytes), which would otherwise
        // widen the future of every command.
        Box::pin(self.open_pooled(slots, slot, command))
            .await
            .map(Link::Pooled)
    }

    /// Opens the connection of `slot`, and first `min_connections` of the pool on its first
    /// command.
    async fn open_pooled(
        &self,
        slots: &[Slot],
        slot: &Slot,
        command: Command,
    ) -> Result<Arc<Bound<MultiplexedConnection>>> {
        let inner = &self.inner;
        let epoch = inner.health.epoch();
        let first_use = slots.first().is_none_or(|s| s.alive(epoch).is_none());
        if first_use {
            // Open `min_connections` at once on the first command.
            for slot in slots.iter().take(inner.options.min_connections.max(1)) {
                inner.open(slot, command).await?;
            }
        }
        inner.open(slot, command).await
    }

    /// Sends one read and records its outcome, as [`Conn::send`] does, on a lean path: on the
    /// pool no [`Conn`] is built and no reference count is taken on the slot's entry (one
    /// atomic load finds the connection; the only clone is the connection handle redis-rs
    /// sends on, as any caller of redis-rs makes).
    ///
    /// A read whose pooled connection turns out dropped (the server closed it: its idle
    /// `timeout`, `CLIENT KILL`, a proxy, a restart) is sent once more on a new connection,
    /// as redis-rs's `ConnectionManager` reconnected by itself: only for commands that can
    /// safely run twice.
    ///
    /// # Errors
    ///
    /// The outer error when no connection could be had ([`Error::BackendDown`], a failed
    /// connection attempt); the inner one is the command's.
    async fn read(&self, command: Command, cmd: &Cmd) -> Result<RedisResult<Value>> {
        let inner = &self.inner;
        let Source::Pool { slots, next } = &inner.source else {
            // Boxed: a pinned or cluster connection's path would otherwise widen the future
            // of every pooled read (464 bytes instead of 168).
            return Box::pin(self.read_unpooled(command, cmd)).await;
        };
        inner.health.check(command)?;
        let slot = next_slot(slots, next, command)?;
        let epoch = inner.health.epoch();
        let open = slot
            .conn
            .load()
            .as_ref()
            .filter(|bound| bound.is_alive(epoch))
            .map(|bound| (bound.value().clone(), bound.id()));
        let (mut conn, id) = match open {
            Some(open) => open,
            None => {
                let bound = Box::pin(self.open_pooled(slots, slot, command)).await?;
                (bound.value().clone(), bound.id())
            }
        };
        inner.health.sent();
        let result = conn.req_packed_command(cmd).await;
        if let Err(e) = &result
            && dropped(e)
        {
            slot.broken(id);
            if e.is_connection_dropped() {
                // Cold, and boxed so that it does not widen this future.
                return Box::pin(self.read_again(slots, slot, command, cmd)).await;
            }
        }
        inner.health.record(&result);
        Ok(result)
    }

    /// [`RedisBackend::read`] on a pinned connection or a cluster.
    async fn read_unpooled(&self, command: Command, cmd: &Cmd) -> Result<RedisResult<Value>> {
        let mut conn = self.conn(command).await?;
        Ok(conn.send(cmd).await)
    }

    /// [`RedisBackend::read`] once more, on a new connection of `slot`.
    async fn read_again(
        &self,
        slots: &[Slot],
        slot: &Slot,
        command: Command,
        cmd: &Cmd,
    ) -> Result<RedisResult<Value>> {
        let health = &self.inner.health;
        let bound = self.open_pooled(slots, slot, command).await?;
        let mut conn = bound.value().clone();
        health.sent();
        let result = conn.req_packed_command(cmd).await;
        if let Err(e) = &result
            && dropped(e)
        {
            bound.mark_broken();
        }
        health.record(&result);
        Ok(result)
    }

    /// [`Error::ValueTooLarge`] for the first of `sizes` (bytes of values, members, tokens)
    /// over `max_value_size`: Redis would drop the connection on it, failing every other
    /// command in flight there, so it is refused before anything is sent.
    fn check_sizes(&self, key: &str, sizes: impl IntoIterator<Item = usize>) -> Result<()> {
        let limit = self.inner.options.max_value_size;
        match sizes.into_iter().find(|size| *size > limit) {
            None => Ok(()),
            Some(size) => Err(Error::ValueTooLarge {
                key: shorten(key),
                size,
                limit,
            }),
        }
    }

    fn fail(&self, command: Command, key: &str, error: RedisError) -> Error {
        map_error(command, key, error)
    }

    /// Adds `SET key value [PX ttl]` to a pipeline, its reply ignored.
    fn push_set(&self, pipe: &mut Pipeline, key: &str, value: &Bytes, ttl: Option<Duration>) {
        let cmd = pipe.cmd("SET").arg(self.stored(key)).arg(value.as_ref());
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        cmd.ignore();
    }

    /// `set_many` on a cluster: redis-rs sends a pipeline to one node and refuses one that
    /// crosses slots, so the `SET`s are pipelined per slot and the pipelines sent concurrently.
    async fn set_many_by_slot(
        &self,
        cluster: &ClusterConnection,
        pairs: &[(&str, Bytes)],
        ttl: Option<Duration>,
    ) -> Result<()> {
        let stored: Vec<Cow<'_, str>> = pairs.iter().map(|(key, _)| self.key(key)).collect();
        let groups = cluster::by_slot(stored.iter().map(|key| key.as_bytes()));
        let sends = groups.into_iter().map(|group| {
            let mut pipe = redis::pipe();
            let mut first = "";
            for pair in group.iter().filter_map(|&i| pairs.get(i)) {
                if first.is_empty() {
                    first = pair.0;
                }
                self.push_set(&mut pipe, pair.0, &pair.1, ttl);
            }
            let mut conn = Conn {
                link: Link::Cluster(cluster.clone()),
                health: Arc::clone(&self.inner.health),
            };
            async move {
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.fail(Command::SetMany, first, e))
            }
        });
        futures_util::future::try_join_all(sends).await.map(|_| ())
    }
}

/// A key as stored (the backend's key prefix, then the key), as a command argument: the two
/// parts are copied straight into the command's buffer, with no `String` in between.
#[derive(Clone, Copy)]
struct Stored<'a> {
    prefix: &'a str,
    key: &'a str,
}

impl Stored<'_> {
    /// Its length in bytes.
    fn len(self) -> usize {
        self.prefix.len() + self.key.len()
    }
}

impl ToRedisArgs for Stored<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        if self.prefix.is_empty() {
            out.write_arg(self.key.as_bytes());
            return;
        }
        let mut arg = out.writer_for_next_arg();
        // Writing into a command's buffer cannot fail (it extends a `Vec`).
        let _ = arg.write_all(self.prefix.as_bytes());
        let _ = arg.write_all(self.key.as_bytes());
    }
}

impl ToSingleRedisArg for Stored<'_> {}

/// The slot the next pooled command goes to: the only one, or the next in turn. A plain load
/// and store rather than an atomic increment: two commands that race may share a connection,
/// which is harmless, and the hot path pays no locked instruction.
fn next_slot<'s>(slots: &'s [Slot], next: &AtomicUsize, command: Command) -> Result<&'s Slot> {
    let slot = match slots {
        [only] => Some(only),
        _ => {
            let n = next.load(Ordering::Relaxed);
            next.store(n.wrapping_add(1), Ordering::Relaxed);
            slots.get(n % slots.len().max(1))
        }
    };
    slot.ok_or_else(|| Error::backend("redis", command, "no connection slot"))
}

/// The certificates of the TLS options (cargo feature `redis-tls`), read at setup so that a bad
/// file fails there rather than at the first command.
#[cfg(feature = "redis-tls")]
type TlsFiles = Option<redis::TlsCertificates>;
/// Without the `redis-tls` feature there are no certificates.
#[cfg(not(feature = "redis-tls"))]
type TlsFiles = Option<std::convert::Infallible>;

#[cfg(feature = "redis-tls")]
fn tls_files(options: &RedisOptions) -> Result<TlsFiles> {
    if !is_tls(&options.address) {
        return Ok(None);
    }
    tls::install_provider();
    tls::certificates(options)
}

#[cfg(not(feature = "redis-tls"))]
fn tls_files(options: &RedisOptions) -> Result<TlsFiles> {
    if is_tls(&options.address) {
        return Err(Error::FeatureDisabled {
            scheme: "rediss".to_owned(),
            feature: "redis-tls",
        });
    }
    Ok(None)
}

/// Whether the address asks for TLS (`rediss://`).
fn is_tls(address: &str) -> bool {
    address
        .get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
}

/// The redis-rs client for `info`, with the certificates of the TLS options if any.
fn open_client(info: redis::ConnectionInfo, tls: &TlsFiles) -> redis::RedisResult<redis::Client> {
    match tls {
        #[cfg(feature = "redis-tls")]
        Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
        #[cfg(not(feature = "redis-tls"))]
        Some(never) => match *never {},
        None => redis::Client::open(info),
    }
}

/// Maps a redis-rs error: a type mismatch becomes [`Error::WrongType`], everything else
/// [`Error::Backend`].
fn map_error(command: Command, key: &str, error: RedisError) -> Error {
    // A transaction's errors (`set_add` under MULTI) are reported per command, not as `code`.
    let wrong_kind = error.code() == Some("WRONGTYPE")
        || error
            .clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == "WRONGTYPE"));
    let not_integer = command == Command::Incr
        && error
            .detail()
            .is_some_and(|d| d.contains("not an integer") || d.contains("wrong kind"));
    if wrong_kind || not_integer {
        let expected = match command {
            Command::Incr => "a decimal integer (a string of digits)",
            Command::SetAdd | Command::SetRemove | Command::SetPop => "a set",
            Command::SliceIncr | Command::SliceIncrNow => "a sliding window (a sorted set)",
            Command::GetBits | Command::IncrBits => "a bit array (a string)",
            _ => "another kind of value",
        };
        return Error::WrongType {
            command,
            key: shorten(key),
            expected,
        };
    }
    Error::backend("redis", command, error)
}

/// A TTL in whole milliseconds, at least 1 (Redis refuses `PX 0`).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_TTL_MS)
}
