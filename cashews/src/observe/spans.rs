//! The `tracing` feature: a span around every backend command of a route.
//!
//! Built in rather than an [`Observer`](crate::middleware::Observer) (which is told after the
//! command, so cannot parent what the backend logs) or a
//! [`Middleware`](crate::middleware::Middleware) (which would turn the route's synchronous
//! local tier off): [`Traced`] wraps the route's backend, and returns the backend's own
//! future untouched when no subscriber wants the span.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::Command;
use crate::backend::erased::{BoxFuture, DynBackend};
use crate::backend::{BackendHealth, Batch, BoxStream, Expiry, LockEvent, SetOptions};
use crate::error::Result;

static KEYS: AtomicBool = AtomicBool::new(false);

/// Whether command spans carry the `key` field (off by default: keys may hold personal data
/// and make every span unique). Process-wide.
///
/// ```
/// cashews::observe::trace_keys(true);
/// // spans named `cashews.command` now have a `key` field
/// cashews::observe::trace_keys(false);
/// ```
pub fn trace_keys(on: bool) {
    KEYS.store(on, Ordering::Relaxed);
}

/// A route's backend whose commands run in `cashews.command` spans.
pub(crate) struct Traced {
    inner: Arc<dyn DynBackend>,
    name: &'static str,
    prefix: Box<str>,
}

impl Traced {
    pub(crate) fn new(inner: Arc<dyn DynBackend>, name: &'static str, prefix: &str) -> Self {
        Self {
            inner,
            name,
            prefix: prefix.into(),
        }
    }

    /// `fut` inside a command span, or `fut` itself when no subscriber wants the span.
    #[inline]
    fn wrap<'a, T: Send + 'a>(
        &'a self,
        command: Command,
        key: Option<&str>,
        fut: BoxFuture<'a, Result<T>>,
        outcome: fn(&T) -> &'static str,
    ) -> BoxFuture<'a, Result<T>> {
        match command_span(self.name, &self.prefix, command, key) {
            None => fut,
            Some(span) => in_span(span, fut, outcome),
        }
    }
}

/// The `cashews.command` span of one command on the route `name` under `prefix`, or `None`
/// when no subscriber wants it (then nothing was created). The one place the span is
/// declared: [`Traced`] and the routes that call their backend without it share its
/// callsite, so a filter sees one span whichever path a command took.
#[inline]
pub(crate) fn command_span(
    name: &'static str,
    prefix: &str,
    command: Command,
    key: Option<&str>,
) -> Option<Span> {
    let span = tracing::debug_span!(
        "cashews.command",
        backend = name,
        prefix = prefix,
        command = command.as_str(),
        key = Empty,
        outcome = Empty,
    );
    if span.is_disabled() {
        return None;
    }
    if let Some(key) = key
        && KEYS.load(Ordering::Relaxed)
    {
        span.record("key", key);
    }
    Some(span)
}

/// `fut` run inside `span`, whose `outcome` field is recorded from the result. Boxed: only
/// commands a subscriber traces take it.
pub(crate) fn in_span<'a, T: Send + 'a>(
    span: Span,
    fut: impl Future<Output = Result<T>> + Send + 'a,
    outcome: fn(&T) -> &'static str,
) -> BoxFuture<'a, Result<T>> {
    Box::pin(async move {
        let result = fut.instrument(span.clone()).await;
        span.record(
            "outcome",
            match &result {
                Ok(value) => outcome(value),
                Err(_) => "error",
            },
        );
        result
    })
}

pub(crate) fn hit_or_miss<T>(value: &Option<T>) -> &'static str {
    if value.is_some() { "hit" } else { "miss" }
}

fn flag(found: &bool) -> &'static str {
    if *found { "hit" } else { "miss" }
}

fn ok<T>(_: &T) -> &'static str {
    "ok"
}

impl DynBackend for Traced {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        self.wrap(Command::Get, Some(key), self.inner.get(key), hit_or_miss)
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        self.wrap(Command::GetMany, None, self.inner.get_many(keys), ok)
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        options: SetOptions,
    ) -> BoxFuture<'a, Result<bool>> {
        self.wrap(
            Command::Set,
            Some(key),
            self.inner.set(key, value, options),
            ok,
        )
    }
    fn set_many<'a>(
        &'a self,
        pairs: &'a [(&'a str, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.wrap(Command::SetMany, None, self.inner.set_many(pairs, ttl), ok)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.wrap(Command::Delete, Some(key), self.inner.delete(key), ok)
    }
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        self.wrap(Command::DeleteMany, None, self.inner.delete_many(keys), ok)
    }
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.wrap(Command::Exists, Some(key), self.inner.exists(key), flag)
    }
    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool>> {
        self.wrap(Command::Expire, Some(key), self.inner.expire(key, ttl), ok)
    }
    fn get_expire<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Expiry>> {
        self.wrap(
            Command::GetExpire,
            Some(key),
            self.inner.get_expire(key),
            ok,
        )
    }
    fn incr<'a>(
        &'a self,
        key: &'a str,
        by: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        self.wrap(Command::Incr, Some(key), self.inner.incr(key, by, ttl), ok)
    }
    fn delete_match<'a>(&'a self, pattern: &'a str) -> BoxFuture<'a, Result<u64>> {
        self.wrap(
            Command::DeleteMatch,
            Some(pattern),
            self.inner.delete_match(pattern),
            ok,
        )
    }
    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<()>> {
        self.wrap(Command::Apply, None, self.inner.apply(batch), ok)
    }
    fn set_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        self.wrap(
            Command::SetLock,
            Some(key),
            self.inner.set_lock(key, token, ttl),
            ok,
        )
    }
    fn unlock<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.wrap(
            Command::Unlock,
            Some(key),
            self.inner.unlock(key, token),
            ok,
        )
    }
    fn get_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        self.wrap(
            Command::GetBits,
            Some(key),
            self.inner.get_bits(key, indexes, size),
            ok,
        )
    }
    fn incr_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
        by: i64,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        self.wrap(
            Command::IncrBits,
            Some(key),
            self.inner.incr_bits(key, indexes, size, by),
            ok,
        )
    }
    fn slice_incr<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        self.wrap(
            Command::SliceIncr,
            Some(key),
            self.inner.slice_incr(key, start, end, max, ttl),
            ok,
        )
    }
    fn slice_incr_now<'a>(
        &'a self,
        key: &'a str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        self.wrap(
            Command::SliceIncrNow,
            Some(key),
            self.inner.slice_incr_now(key, period, max, ttl),
            ok,
        )
    }
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        self.wrap(
            Command::SetAdd,
            Some(key),
            self.inner.set_add(key, members, ttl),
            ok,
        )
    }
    fn set_remove<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
    ) -> BoxFuture<'a, Result<u64>> {
        self.wrap(
            Command::SetRemove,
            Some(key),
            self.inner.set_remove(key, members),
            ok,
        )
    }
    fn set_pop<'a>(&'a self, key: &'a str, count: usize) -> BoxFuture<'a, Result<Vec<String>>> {
        self.wrap(
            Command::SetPop,
            Some(key),
            self.inner.set_pop(key, count),
            ok,
        )
    }
    fn ping<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Bytes>> {
        self.wrap(Command::Ping, None, self.inner.ping(message), ok)
    }
    fn clear(&self) -> BoxFuture<'_, Result<()>> {
        self.wrap(Command::Clear, None, self.inner.clear(), ok)
    }
    fn keys_count(&self) -> BoxFuture<'_, Result<u64>> {
        self.wrap(Command::GetKeysCount, None, self.inner.keys_count(), ok)
    }
    fn get_size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>>> {
        self.wrap(
            Command::GetSize,
            Some(key),
            self.inner.get_size(key),
            hit_or_miss,
        )
    }
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        self.inner.scan(pattern, batch_size)
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.close()
    }
    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        self.inner.lock_releases()
    }
    fn health(&self) -> Option<BackendHealth> {
        self.inner.health()
    }
}
