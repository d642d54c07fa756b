//! The [`Backend`] commands of [`ClientSideRedis`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ClientSideRedis;
use super::fence::Ticket;
use crate::backend::{
    Backend, BackendHealth, Batch, BoxStream, Expiry, LocalTier, LockEvent, SetOptions,
};
use crate::error::Result;

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
        shared.gate.hit_many(hits as u64);
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

    /// Through its Redis backend (one `MULTI`/`EXEC`), the local copies of the batch's keys
    /// invalidated as for any write.
    async fn apply(&self, batch: &Batch) -> Result<()> {
        let keys: Vec<&str> = batch
            .deletes()
            .iter()
            .map(String::as_str)
            .chain(batch.writes().iter().map(|write| write.key()))
            .collect();
        self.mutate_many(&keys, |b| async move { b.apply(batch).await })
            .await
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

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
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
    fn local_tier(&self) -> Option<LocalTier> {
        Some(LocalTier::front(
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
    fn health(&self) -> Option<BackendHealth> {
        self.shared.pooled.health()
    }
}
