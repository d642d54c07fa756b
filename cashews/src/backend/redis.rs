//! `redis://`: a single Redis server through redis-rs (cargo feature `redis`).
//!
//! # Connections
//!
//! Commands go over `max_connections` multiplexed connections (redis-rs `ConnectionManager`,
//! which reconnects by itself), used in turn. Nothing connects before the first command;
//! `min_connections` of them open then, the others when first used. A connection attempt is
//! bounded by `connect_timeout`, a reply by `command_timeout`, so a server that is down or
//! stuck costs at most that before the command fails (and, in safe mode, the `Cache` answers
//! its neutral reply).
//!
//! # Atomicity
//!
//! Single commands where Redis has one: `SET PX NX|XX` for conditional sets and locks,
//! `BITFIELD … OVERFLOW SAT INCRBY` for bit fields, `SPOP count`, `SREM`. `MULTI` for `set_add`
//! with a TTL (SADD + PEXPIRE). Lua scripts (loaded once, then sent by SHA) for `incr` with a TTL (the TTL only
//! when the call creates the key), `unlock` (compare and delete) and `slice_incr` (an exact
//! sliding window: events sharing an instant get distinct members). Batch commands (`MGET`,
//! `UNLINK k…`, a pipeline of `SET`s) take one round trip.
//!
//! # Keys
//!
//! With a `key_prefix`, every key is stored under it and scans strip it again; `clear` and
//! `keys_count` then cover only that prefix (SCAN + UNLINK, SCAN + count) rather than the whole
//! database (FLUSHDB, DBSIZE). Patterns always go through `SCAN MATCH … COUNT batch_size`,
//! never `KEYS`.

mod scripts;

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};

use super::{Backend, BoxStream, Condition, Expiry, SetOptions, pong};
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
            .field("connections", &self.inner.slots.len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: redis::Client,
    options: RedisOptions,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

/// One multiplexed connection, opened on first use.
#[derive(Default)]
struct Slot {
    conn: ArcSwapOption<ConnectionManager>,
    opening: tokio::sync::Mutex<()>,
}

impl RedisBackend {
    /// A Redis backend for these options. Does not connect.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] when redis-rs cannot read the address (the message hides its
    /// password).
    ///
    /// ```no_run
    /// use cashews::{backend::RedisBackend, config::RedisOptions};
    /// let redis = RedisBackend::new(RedisOptions::new("redis://localhost:6379/1"))?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn new(options: RedisOptions) -> Result<Self> {
        let client =
            redis::Client::open(options.address.as_str()).map_err(|e| Error::InvalidUrl {
                url: redact_url(&options.address),
                reason: format!("redis-rs cannot read this address ({})", e.category()),
            })?;
        let info = client.get_connection_info().clone();
        let mut settings = info.redis_settings().clone();
        if let Some(db) = options.db {
            settings = settings.set_db(db);
        }
        if let Some(user) = &options.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &options.password {
            settings = settings.set_password(password);
        }
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|e| {
            Error::InvalidUrl {
                url: redact_url(&options.address),
                reason: format!("redis-rs refuses these settings ({})", e.category()),
            }
        })?;
        let slots = (0..options.max_connections.max(1))
            .map(|_| Slot::default())
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                options,
                slots,
                next: AtomicUsize::new(0),
            }),
        })
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

    /// A connection for one command: the next slot in turn, opened if needed.
    async fn conn(&self, command: Command) -> Result<ConnectionManager> {
        let inner = &self.inner;
        let first_use = inner.slots.first().is_none_or(|s| s.conn.load().is_none());
        if first_use {
            // Open `min_connections` at once on the first command.
            for slot in inner
                .slots
                .iter()
                .take(inner.options.min_connections.max(1))
            {
                inner.open(slot, command).await?;
            }
        }
        let n = inner.next.fetch_add(1, Ordering::Relaxed) % inner.slots.len().max(1);
        match inner.slots.get(n) {
            Some(slot) => inner.open(slot, command).await,
            None => Err(Error::backend("redis", command, "no connection slot")),
        }
    }

    fn fail(&self, command: Command, key: &str, error: RedisError) -> Error {
        map_error(command, key, error)
    }
}

impl Inner {
    async fn open(&self, slot: &Slot, command: Command) -> Result<ConnectionManager> {
        if let Some(conn) = slot.conn.load_full() {
            return Ok((*conn).clone());
        }
        let _opening = slot.opening.lock().await;
        if let Some(conn) = slot.conn.load_full() {
            return Ok((*conn).clone());
        }
        let timeout = self.options.connect_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(self.options.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = match tokio::time::timeout(
            timeout.saturating_mul(2),
            self.client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(Error::backend("redis", command, e)),
            Err(_) => {
                return Err(Error::backend(
                    "redis",
                    command,
                    format!(
                        "could not connect to {} within {timeout:?}",
                        redact_url(&self.options.address)
                    ),
                ));
            }
        };
        slot.conn.store(Some(Arc::new(conn.clone())));
        Ok(conn)
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
            Command::SliceIncr => "a sliding window (a sorted set)",
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

/// The state of a SCAN stream.
struct Scan {
    backend: RedisBackend,
    conn: Option<ConnectionManager>,
    pattern: String,
    batch: usize,
    cursor: u64,
    started: bool,
    buffered: VecDeque<String>,
    /// Keys already yielded: SCAN may return a key twice while the table is rehashed.
    seen: HashSet<String>,
    done: bool,
}

impl Scan {
    async fn next(mut self) -> Option<(Result<String>, Self)> {
        loop {
            if let Some(key) = self.buffered.pop_front() {
                return Some((Ok(key), self));
            }
            if self.done || (self.started && self.cursor == 0) {
                return None;
            }
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => match self.backend.conn(Command::Scan).await {
                    Ok(conn) => conn,
                    Err(e) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                },
            };
            let reply: redis::RedisResult<(u64, Vec<Vec<u8>>)> = redis::cmd("SCAN")
                .arg(self.cursor)
                .arg("MATCH")
                .arg(&self.pattern)
                .arg("COUNT")
                .arg(self.batch.max(1))
                .query_async(&mut conn)
                .await;
            self.conn = Some(conn);
            self.started = true;
            match reply {
                Ok((cursor, keys)) => {
                    self.cursor = cursor;
                    let prefix_len = self.backend.inner.options.key_prefix.len();
                    for raw in keys {
                        let key = String::from_utf8_lossy(raw.get(prefix_len..).unwrap_or(&raw))
                            .into_owned();
                        if self.seen.insert(key.clone()) {
                            self.buffered.push_back(key);
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(map_error(Command::Scan, &self.pattern, e)), self));
                }
            }
        }
    }
}

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut conn = self.conn(Command::Get).await?;
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(key).as_ref())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Get, key, e))?;
        Ok(value.map(Bytes::from))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn(Command::GetMany).await?;
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key).as_ref());
        }
        let values: Vec<Option<Vec<u8>>> = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetMany, keys.first().copied().unwrap_or(""), e))?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        let mut conn = self.conn(Command::Set).await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key).as_ref()).arg(value.as_ref());
        if let Some(ttl) = options.ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        match options.condition {
            Condition::Always => {}
            Condition::IfAbsent => {
                cmd.arg("NX");
            }
            Condition::IfPresent => {
                cmd.arg("XX");
            }
        }
        let reply: Value = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Set, key, e))?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn set_many(&self, pairs: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn(Command::SetMany).await?;
        let mut pipe = redis::pipe();
        for (key, value) in pairs {
            let cmd = pipe
                .cmd("SET")
                .arg(self.key(key).as_ref())
                .arg(value.as_ref());
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(millis(ttl));
            }
            cmd.ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetMany, pairs.first().map_or("", |p| p.0), e))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn(Command::Delete).await?;
        let n: u64 = redis::cmd("UNLINK")
            .arg(self.key(key).as_ref())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Delete, key, e))?;
        Ok(n > 0)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn(Command::DeleteMany).await?;
        let mut cmd = redis::cmd("UNLINK");
        for key in keys {
            cmd.arg(self.key(key).as_ref());
        }
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::DeleteMany, keys.first().copied().unwrap_or(""), e))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn(Command::Exists).await?;
        let n: u64 = redis::cmd("EXISTS")
            .arg(self.key(key).as_ref())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Exists, key, e))?;
        Ok(n > 0)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn(Command::Expire).await?;
        let ms = if ttl.is_zero() { 0 } else { millis(ttl) };
        let n: u64 = redis::cmd("PEXPIRE")
            .arg(self.key(key).as_ref())
            .arg(ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Expire, key, e))?;
        Ok(n > 0)
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let mut conn = self.conn(Command::GetExpire).await?;
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.key(key).as_ref())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetExpire, key, e))?;
        Ok(match ms {
            -1 => Expiry::Persistent,
            ms if ms < 0 => Expiry::Missing,
            ms => Expiry::In(Duration::from_millis(ms.unsigned_abs())),
        })
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        let mut conn = self.conn(Command::Incr).await?;
        let stored = self.key(key);
        match ttl {
            None => redis::cmd("INCRBY")
                .arg(stored.as_ref())
                .arg(by)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.fail(Command::Incr, key, e)),
            Some(ttl) => {
                let text: Vec<u8> = scripts::INCR_WITH_TTL
                    .key(stored.as_ref())
                    .arg(by)
                    .arg(millis(ttl))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| self.fail(Command::Incr, key, e))?;
                std::str::from_utf8(&text)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| {
                        Error::backend("redis", Command::Incr, "INCRBY left a non-integer value")
                    })
            }
        }
    }

    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        let prefix = &self.inner.options.key_prefix;
        let pattern = if prefix.is_empty() {
            pattern.to_owned()
        } else {
            format!("{}{pattern}", crate::pattern::escape(prefix))
        };
        let state = Scan {
            backend: self.clone(),
            conn: None,
            pattern,
            batch: batch_size,
            cursor: 0,
            started: false,
            buffered: VecDeque::new(),
            seen: HashSet::new(),
            done: false,
        };
        Box::pin(futures_util::stream::unfold(state, Scan::next))
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn(Command::SetLock).await?;
        let reply: Value = redis::cmd("SET")
            .arg(self.key(key).as_ref())
            .arg(token)
            .arg("PX")
            .arg(millis(ttl))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetLock, key, e))?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let mut conn = self.conn(Command::Unlock).await?;
        let n: u64 = scripts::UNLOCK
            .key(self.key(key).as_ref())
            .arg(token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Unlock, key, e))?;
        Ok(n > 0)
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        super::check_bits(key, Command::GetBits, indexes, size)?;
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn(Command::GetBits).await?;
        let mut cmd = redis::cmd("BITFIELD_RO");
        cmd.arg(self.key(key).as_ref());
        let width = format!("u{size}");
        for index in indexes {
            cmd.arg("GET").arg(&width).arg(format!("#{index}"));
        }
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetBits, key, e))
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        super::check_bits(key, Command::IncrBits, indexes, size)?;
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn(Command::IncrBits).await?;
        let mut cmd = redis::cmd("BITFIELD");
        cmd.arg(self.key(key).as_ref()).arg("OVERFLOW").arg("SAT");
        let width = format!("u{size}");
        for index in indexes {
            cmd.arg("INCRBY")
                .arg(&width)
                .arg(format!("#{index}"))
                .arg(by);
        }
        let values: Vec<Option<u64>> = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::IncrBits, key, e))?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        let mut conn = self.conn(Command::SliceIncr).await?;
        scripts::SLICE_INCR
            .key(self.key(key).as_ref())
            .arg(start)
            .arg(end)
            .arg(max)
            .arg(ttl.map_or(0, millis))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SliceIncr, key, e))
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        let mut conn = self.conn(Command::SetAdd).await?;
        let stored = self.key(key);
        if members.is_empty() {
            // SADD needs a member; only the TTL may change, and only on an existing set.
            if let Some(ttl) = ttl {
                redis::cmd("PEXPIRE")
                    .arg(stored.as_ref())
                    .arg(millis(ttl))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.fail(Command::SetAdd, key, e))?;
            }
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("SADD").arg(stored.as_ref()).arg(members);
        if let Some(ttl) = ttl {
            pipe.cmd("PEXPIRE")
                .arg(stored.as_ref())
                .arg(millis(ttl))
                .ignore();
        }
        let (added,): (u64,) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetAdd, key, e))?;
        Ok(added)
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        if members.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn(Command::SetRemove).await?;
        redis::cmd("SREM")
            .arg(self.key(key).as_ref())
            .arg(members)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetRemove, key, e))
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let mut conn = self.conn(Command::SetPop).await?;
        let members: Vec<Vec<u8>> = redis::cmd("SPOP")
            .arg(self.key(key).as_ref())
            .arg(count)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetPop, key, e))?;
        Ok(members
            .into_iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .collect())
    }

    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        let mut conn = self.conn(Command::Ping).await?;
        if message.is_empty() || message.eq_ignore_ascii_case(b"PING") {
            redis::cmd("PING")
                .query_async::<Value>(&mut conn)
                .await
                .map_err(|e| Error::backend("redis", Command::Ping, e))?;
            return Ok(pong(message));
        }
        let echoed: Vec<u8> = redis::cmd("PING")
            .arg(message)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::backend("redis", Command::Ping, e))?;
        Ok(Bytes::from(echoed))
    }

    async fn clear(&self) -> Result<()> {
        if self.inner.options.key_prefix.is_empty() {
            let mut conn = self.conn(Command::Clear).await?;
            return redis::cmd("FLUSHDB")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| Error::backend("redis", Command::Clear, e));
        }
        self.delete_match("*").await.map(|_| ())
    }

    async fn keys_count(&self) -> Result<u64> {
        if self.inner.options.key_prefix.is_empty() {
            let mut conn = self.conn(Command::GetKeysCount).await?;
            return redis::cmd("DBSIZE")
                .query_async(&mut conn)
                .await
                .map_err(|e| Error::backend("redis", Command::GetKeysCount, e));
        }
        use futures_util::StreamExt;
        let mut keys = self.scan("*", 1000);
        let mut n = 0;
        while let Some(key) = keys.next().await {
            key?;
            n += 1;
        }
        Ok(n)
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        let mut conn = self.conn(Command::GetSize).await?;
        let size: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(self.key(key).as_ref())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetSize, key, e))?;
        Ok(Some(size.unwrap_or(0)))
    }

    async fn close(&self) -> Result<()> {
        for slot in &self.inner.slots {
            slot.conn.store(None);
        }
        Ok(())
    }
}
