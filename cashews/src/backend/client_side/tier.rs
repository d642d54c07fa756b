//! The local tier: filling it from Redis replies that nothing invalidated meanwhile, and
//! dropping from it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt as _;
use redis::Value;

use super::fence::Ticket;
use super::link::Link;
use super::route::link_failure;
use super::{ClientSideRedis, Shared};
use crate::backend::{Backend, RedisBackend, SetOptions};
use crate::command::Command;
use crate::error::{Error, Result};

impl ClientSideRedis {
    /// Reads `keys` from Redis over the link (`GET` and `PTTL` each, one round trip) and fills
    /// the tier with the values nothing invalidated meanwhile.
    pub(super) async fn fill(
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
            // (A pipeline reports its commands' errors as server errors, without a code.)
            Err(e) if e.code().is_some() || e.clone().into_server_errors().is_some() => {
                return uncached(&link.backend, keys).await;
            }
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
    pub(super) fn apply_fill(
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
pub(super) fn local_ttl(pttl: i64, sent: Instant) -> Option<Option<Duration>> {
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
    pub(super) fn remove_local(&self, key: &str) {
        if self.tier.delete(key).now_or_never().is_none() {
            // An empty value always fits the tier's budget.
            let _ = self
                .tier
                .set_now(key, b"", SetOptions::ttl(Some(Duration::ZERO)));
        }
    }

    /// Keeps `value` in the local tier; a value the tier refuses (heavier than its budget
    /// lets one entry be) is not kept, and no older copy stays either.
    pub(super) fn fill_local(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        if self.tier.set_now(key, value, SetOptions::ttl(ttl)).is_err() {
            self.remove_local(key);
        }
    }

    /// Drops every local entry (see [`Shared::remove_local`] on finishing at once).
    pub(super) fn flush_local(&self) {
        if self.tier.clear().now_or_never().is_none() {
            self.local_flush_failed();
        }
    }

    /// Drops the local entries matching `pattern`.
    pub(super) fn flush_local_matching(&self, pattern: &str) {
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
