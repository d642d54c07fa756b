//! The [`Backend`] commands of [`RedisBackend`]: one Redis command, script or pipeline each.

use std::time::Duration;

use bytes::Bytes;
use redis::{Cmd, Value};

use super::conn::Link;
use super::scan::Scan;
use super::{RedisBackend, Source, millis, releases, scripts};
use crate::backend::{
    Backend, BackendHealth, Batch, BoxStream, Condition, Expiry, LockEvent, SetOptions, pong,
};
use crate::command::Command;
use crate::error::{Error, Result};

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let stored = self.stored(key);
        // Sized once: the name and the key, no regrowth.
        let mut cmd = Cmd::with_capacity(2, 3 + stored.len());
        cmd.arg("GET").arg(stored);
        // `read` rather than `query_async` on a `Conn`: one boxed future and a few reference
        // counts less per get.
        let value: Option<Vec<u8>> = self
            .read(Command::Get, &cmd)
            .await?
            .and_then(|reply| Ok(redis::from_redis_value(reply.extract_error()?)?))
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
            cmd.arg(self.stored(key));
        }
        let values: Vec<Option<Vec<u8>>> = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetMany, keys.first().copied().unwrap_or(""), e))?;
        Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.check_sizes(key, [value.len()])?;
        let mut conn = self.conn(Command::Set).await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.stored(key)).arg(value.as_ref());
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
        if let Some((key, value)) = pairs
            .iter()
            .find(|(_, value)| value.len() > self.inner.options.max_value_size)
        {
            return self.check_sizes(key, [value.len()]);
        }
        let mut conn = self.conn(Command::SetMany).await?;
        let first = pairs.first().map_or("", |p| p.0);
        if let Link::Cluster(cluster) = &conn.link {
            // Boxed so that the single-server future stays as small as it was.
            return Box::pin(self.set_many_by_slot(cluster, pairs, ttl)).await;
        }
        let mut pipe = redis::pipe();
        for (key, value) in pairs {
            self.push_set(&mut pipe, key, value, ttl);
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetMany, first, e))
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        self.apply_batch(batch).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn(Command::Delete).await?;
        let n: u64 = redis::cmd("UNLINK")
            .arg(self.stored(key))
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
            cmd.arg(self.stored(key));
        }
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::DeleteMany, keys.first().copied().unwrap_or(""), e))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn(Command::Exists).await?;
        let n: u64 = redis::cmd("EXISTS")
            .arg(self.stored(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Exists, key, e))?;
        Ok(n > 0)
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        let mut conn = self.conn(Command::Expire).await?;
        let Some(ttl) = ttl else {
            // PERSIST answers 0 for a key without a TTL too: the script tells that from a
            // missing key, in one atomic step.
            let n: u64 = scripts::PERSIST
                .key(self.stored(key))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.fail(Command::Expire, key, e))?;
            return Ok(n > 0);
        };
        let ms = if ttl.is_zero() { 0 } else { millis(ttl) };
        let n: u64 = redis::cmd("PEXPIRE")
            .arg(self.stored(key))
            .arg(ms)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Expire, key, e))?;
        Ok(n > 0)
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let mut conn = self.conn(Command::GetExpire).await?;
        let ms: i64 = redis::cmd("PTTL")
            .arg(self.stored(key))
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
        let stored = self.stored(key);
        match ttl {
            None => redis::cmd("INCRBY")
                .arg(stored)
                .arg(by)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.fail(Command::Incr, key, e)),
            Some(ttl) => {
                let text: Vec<u8> = scripts::INCR_WITH_TTL
                    .key(stored)
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
        let state = Scan::new(self.clone(), pattern, batch_size);
        Box::pin(futures_util::stream::unfold(state, Scan::next))
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        self.check_sizes(key, [token.len()])?;
        let mut conn = self.conn(Command::SetLock).await?;
        let reply: Value = redis::cmd("SET")
            .arg(self.stored(key))
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
        self.check_sizes(key, [token.len()])?;
        let mut conn = self.conn(Command::Unlock).await?;
        let n: u64 = scripts::UNLOCK
            .key(self.stored(key))
            .arg(token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Unlock, key, e))?;
        Ok(n > 0)
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        crate::backend::check_bits(key, Command::GetBits, indexes, size)?;
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn(Command::GetBits).await?;
        let mut cmd = redis::cmd("BITFIELD_RO");
        cmd.arg(self.stored(key));
        let width = format!("u{size}");
        for index in indexes {
            cmd.arg("GET").arg(&width).arg(format!("#{index}"));
        }
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetBits, key, e))
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        crate::backend::check_bits(key, Command::IncrBits, indexes, size)?;
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn(Command::IncrBits).await?;
        let mut cmd = redis::cmd("BITFIELD");
        cmd.arg(self.stored(key)).arg("OVERFLOW").arg("SAT");
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
            .key(self.stored(key))
            .arg(start)
            .arg(end)
            .arg(max)
            .arg(ttl.map_or(0, millis))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SliceIncr, key, e))
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        let mut conn = self.conn(Command::SliceIncrNow).await?;
        scripts::SLICE_INCR_NOW
            .key(self.stored(key))
            .arg(crate::backend::window_ms(period))
            .arg(max)
            .arg(ttl.map_or(0, millis))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SliceIncrNow, key, e))
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.check_sizes(key, members.iter().map(|m| m.len()))?;
        let mut conn = self.conn(Command::SetAdd).await?;
        let stored = self.stored(key);
        if members.is_empty() {
            // SADD needs a member; only the TTL may change, and only on an existing set.
            if let Some(ttl) = ttl {
                redis::cmd("PEXPIRE")
                    .arg(stored)
                    .arg(millis(ttl))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.fail(Command::SetAdd, key, e))?;
            }
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("SADD").arg(stored).arg(members);
        if let Some(ttl) = ttl {
            pipe.cmd("PEXPIRE").arg(stored).arg(millis(ttl)).ignore();
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
        self.check_sizes(key, members.iter().map(|m| m.len()))?;
        let mut conn = self.conn(Command::SetRemove).await?;
        redis::cmd("SREM")
            .arg(self.stored(key))
            .arg(members)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::SetRemove, key, e))
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let mut conn = self.conn(Command::SetPop).await?;
        let members: Vec<Vec<u8>> = redis::cmd("SPOP")
            .arg(self.stored(key))
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
        self.check_sizes("", [message.len()])?;
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
            .arg(self.stored(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fail(Command::GetSize, key, e))?;
        Ok(Some(size.unwrap_or(0)))
    }

    async fn close(&self) -> Result<()> {
        self.inner.health.stop_probe();
        match &self.inner.source {
            Source::Pool { slots, .. } => {
                for slot in slots {
                    slot.conn.store(None);
                }
            }
            Source::Cluster(cluster) => cluster.close(),
            Source::Pinned(_) => {}
        }
        Ok(())
    }

    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        releases::feed(self)
    }

    fn health(&self) -> Option<BackendHealth> {
        Some(self.inner.health.snapshot())
    }
}
