//! The object-safe twin of [`Backend`], with a blanket impl: the one place where futures are boxed.
//!
//! `Cache` routes keys to backends chosen at run time (by URL), so it stores `Arc<dyn DynBackend>`.
//! Written by hand rather than generated (`dynosaur`): it is one screen, and the `Backend` docs stay
//! plain Rust.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BackendHealth, Batch, BoxStream, Expiry, LockEvent, SetOptions};
use crate::error::Result;

/// A boxed, `Send` future: what middlewares and the object-safe backend twin return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) trait DynBackend: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>>;
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>>;
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        options: SetOptions,
    ) -> BoxFuture<'a, Result<bool>>;
    fn set_many<'a>(
        &'a self,
        pairs: &'a [(&'a str, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>>;
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;
    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool>>;
    fn get_expire<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Expiry>>;
    fn incr<'a>(
        &'a self,
        key: &'a str,
        by: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>>;
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>>;
    fn delete_match<'a>(&'a self, pattern: &'a str) -> BoxFuture<'a, Result<u64>>;
    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<()>>;
    fn set_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>>;
    fn unlock<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool>>;
    fn get_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
    ) -> BoxFuture<'a, Result<Vec<u64>>>;
    fn incr_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
        by: i64,
    ) -> BoxFuture<'a, Result<Vec<u64>>>;
    fn slice_incr<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>>;
    fn slice_incr_now<'a>(
        &'a self,
        key: &'a str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>>;
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>>;
    fn set_remove<'a>(&'a self, key: &'a str, members: &'a [&'a str])
    -> BoxFuture<'a, Result<u64>>;
    fn set_pop<'a>(&'a self, key: &'a str, count: usize) -> BoxFuture<'a, Result<Vec<String>>>;
    fn ping<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Bytes>>;
    fn clear(&self) -> BoxFuture<'_, Result<()>>;
    fn keys_count(&self) -> BoxFuture<'_, Result<u64>>;
    fn get_size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>>>;
    fn close(&self) -> BoxFuture<'_, Result<()>>;
    fn lock_releases(&self) -> Option<BoxStream<LockEvent>>;
    fn health(&self) -> Option<BackendHealth>;
}

impl<B: Backend> DynBackend for B {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>>> {
        Box::pin(Backend::get(self, key))
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        Box::pin(Backend::get_many(self, keys))
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        options: SetOptions,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Backend::set(self, key, value, options))
    }
    fn set_many<'a>(
        &'a self,
        pairs: &'a [(&'a str, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(Backend::set_many(self, pairs, ttl))
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Backend::delete(self, key))
    }
    fn delete_many<'a>(&'a self, keys: &'a [&'a str]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Backend::delete_many(self, keys))
    }
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Backend::exists(self, key))
    }
    fn expire<'a>(&'a self, key: &'a str, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Backend::expire(self, key, ttl))
    }
    fn get_expire<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Expiry>> {
        Box::pin(Backend::get_expire(self, key))
    }
    fn incr<'a>(
        &'a self,
        key: &'a str,
        by: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        Box::pin(Backend::incr(self, key, by, ttl))
    }
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        Backend::scan(self, pattern, batch_size)
    }
    fn delete_match<'a>(&'a self, pattern: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Backend::delete_match(self, pattern))
    }
    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<()>> {
        Box::pin(Backend::apply(self, batch))
    }
    fn set_lock<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Backend::set_lock(self, key, token, ttl))
    }
    fn unlock<'a>(&'a self, key: &'a str, token: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(Backend::unlock(self, key, token))
    }
    fn get_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        Box::pin(Backend::get_bits(self, key, indexes, size))
    }
    fn incr_bits<'a>(
        &'a self,
        key: &'a str,
        indexes: &'a [u64],
        size: u8,
        by: i64,
    ) -> BoxFuture<'a, Result<Vec<u64>>> {
        Box::pin(Backend::incr_bits(self, key, indexes, size, by))
    }
    fn slice_incr<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Backend::slice_incr(self, key, start, end, max, ttl))
    }
    fn slice_incr_now<'a>(
        &'a self,
        key: &'a str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Backend::slice_incr_now(self, key, period, max, ttl))
    }
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Backend::set_add(self, key, members, ttl))
    }
    fn set_remove<'a>(
        &'a self,
        key: &'a str,
        members: &'a [&'a str],
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(Backend::set_remove(self, key, members))
    }
    fn set_pop<'a>(&'a self, key: &'a str, count: usize) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(Backend::set_pop(self, key, count))
    }
    fn ping<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Bytes>> {
        Box::pin(Backend::ping(self, message))
    }
    fn clear(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(Backend::clear(self))
    }
    fn keys_count(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(Backend::keys_count(self))
    }
    fn get_size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>>> {
        Box::pin(Backend::get_size(self, key))
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(Backend::close(self))
    }
    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        Backend::lock_releases(self)
    }
    fn health(&self) -> Option<BackendHealth> {
        Backend::health(self)
    }
}
