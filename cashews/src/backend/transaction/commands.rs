//! The [`Backend`] commands of [`Transactional`]: the merged view, pending writes, and the
//! commands passed straight to the backend.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, future, stream};

use super::Transactional;
use super::overlay::{Look, deadline};
use crate::backend::{
    Backend, BackendHealth, Batch, BoxStream, Condition, Expiry, LockEvent, SetOptions,
};
use crate::command::Command;
use crate::error::{Error, Result, shorten};

impl Transactional {
    fn now(&self) -> Duration {
        self.shared.clock.now()
    }

    fn look(&self, key: &str) -> Look {
        let now = self.now();
        self.shared.overlay.lock().look(key, now)
    }

    /// Whether `key` exists in the merged view.
    async fn present(&self, key: &str) -> Result<bool> {
        match self.look(key) {
            Look::Live(..) => Ok(true),
            Look::Gone => Ok(false),
            Look::Backend => self.shared.backend.exists(key).await,
        }
    }

    /// The backend's value of a key of another type than a string is not copied into the
    /// overlay: this fails a string command on it as the backend would.
    fn refuse_pending(&self, key: &str, command: Command, expected: &'static str) -> Result<()> {
        match self.look(key) {
            Look::Live(..) => Err(Error::WrongType {
                command,
                key: shorten(key),
                expected,
            }),
            Look::Gone | Look::Backend => Ok(()),
        }
    }

    /// After a command outside the transaction that may have created `key` on the backend:
    /// the backend answers for the key again if the transaction saw it absent.
    fn created(&self, key: &str) {
        let now = self.now();
        self.shared.overlay.lock().forget_gone(key, now);
    }

    /// The backend's value and deadline (on the transaction's clock) of a key the
    /// transaction has not touched: `Ok(None)` when absent, `Err(WrongType)` for a key of
    /// another type (a set, a window), which has no string value to copy.
    async fn backend_base(
        &self,
        key: &str,
        command: Command,
    ) -> Result<Option<(Bytes, Option<Duration>)>> {
        let backend = &self.shared.backend;
        let (value, expiry) = future::try_join(backend.get(key), backend.get_expire(key)).await?;
        let now = self.now();
        match (value, expiry) {
            (Some(value), Expiry::In(left)) => Ok(Some((value, deadline(Some(left), now)))),
            (Some(value), _) => Ok(Some((value, None))),
            (None, Expiry::Missing) => Ok(None),
            (None, _) => Err(Error::WrongType {
                command,
                key: shorten(key),
                expected: "a string value",
            }),
        }
    }
}

impl Backend for Transactional {
    fn name(&self) -> &'static str {
        self.shared.name
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.look(key) {
            Look::Live(value, _) => Ok(Some(value)),
            Look::Gone => Ok(None),
            Look::Backend => self.shared.backend.get(key).await,
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let looks: Vec<Look> = {
            let now = self.now();
            let overlay = self.shared.overlay.lock();
            keys.iter().map(|key| overlay.look(key, now)).collect()
        };
        let asked: Vec<&str> = keys
            .iter()
            .zip(&looks)
            .filter(|(_, look)| matches!(look, Look::Backend))
            .map(|(key, _)| *key)
            .collect();
        let mut fetched = if asked.is_empty() {
            Vec::new()
        } else {
            self.shared.backend.get_many(&asked).await?
        }
        .into_iter();
        Ok(looks
            .into_iter()
            .map(|look| match look {
                Look::Live(value, _) => Some(value),
                Look::Gone => None,
                Look::Backend => fetched.next().flatten(),
            })
            .collect())
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.lock_for([key]).await?;
        let present = match options.condition {
            Condition::Always => None,
            Condition::IfAbsent | Condition::IfPresent => Some(self.present(key).await?),
        };
        let now = self.now();
        let mut overlay = self.shared.overlay.lock();
        // What the transaction learnt about the key while the backend answered wins.
        let present = match (overlay.look(key, now), present) {
            (_, None) => None,
            (Look::Live(..), Some(_)) => Some(true),
            (Look::Gone, Some(_)) => Some(false),
            (Look::Backend, Some(present)) => Some(present),
        };
        let write = match (options.condition, present) {
            (Condition::IfAbsent, Some(present)) => !present,
            (Condition::IfPresent, Some(present)) => present,
            _ => true,
        };
        if write {
            overlay.write(key, value, deadline(options.ttl, now));
        }
        Ok(write)
    }

    async fn set_many(&self, pairs: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.lock_for(pairs.iter().map(|(key, _)| *key)).await?;
        let now = self.now();
        let mut overlay = self.shared.overlay.lock();
        for (key, value) in pairs {
            overlay.write(key, value.clone(), deadline(ttl, now));
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.lock_for([key]).await?;
        let existed = self.present(key).await?;
        self.shared.overlay.lock().delete(key);
        Ok(existed)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let mut distinct: Vec<&str> = keys.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        self.lock_for(distinct.iter().copied()).await?;
        let present = future::try_join_all(distinct.iter().map(|key| self.present(key))).await?;
        let mut overlay = self.shared.overlay.lock();
        for key in &distinct {
            overlay.delete(key);
        }
        Ok(present.into_iter().map(u64::from).sum())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.present(key).await
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        self.lock_for([key]).await?;
        let now = self.now();
        if let Some(existed) = self.shared.overlay.lock().expire(key, ttl, now) {
            return Ok(existed);
        }
        let base = match self.backend_base(key, Command::Expire).await {
            Ok(base) => base,
            // A set or a window: not transactional, its TTL changes at once.
            Err(Error::WrongType { .. }) => return self.shared.backend.expire(key, ttl).await,
            Err(error) => return Err(error),
        };
        let now = self.now();
        let mut overlay = self.shared.overlay.lock();
        let existed = base.is_some();
        overlay.seed(key, base);
        Ok(overlay.expire(key, ttl, now).unwrap_or(existed))
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let now = self.now();
        let local = self.shared.overlay.lock().get_expire(key, now);
        match local {
            Some(expiry) => Ok(expiry),
            None => self.shared.backend.get_expire(key).await,
        }
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.lock_for([key]).await?;
        let name = self.shared.name;
        let now = self.now();
        if let Some(result) = self.shared.overlay.lock().incr(name, key, by, ttl, now) {
            return result;
        }
        let base = self
            .backend_base(key, Command::Incr)
            .await
            .map_err(|e| match e {
                Error::WrongType { command, key, .. } => Error::WrongType {
                    command,
                    key,
                    expected: "a decimal integer value",
                },
                other => other,
            })?;
        let now = self.now();
        let mut overlay = self.shared.overlay.lock();
        overlay.seed(key, base);
        overlay.incr(name, key, by, ttl, now).unwrap_or_else(|| {
            Err(Error::backend(
                name,
                Command::Incr,
                "transaction state lost",
            ))
        })
    }

    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        let now = self.now();
        let (local, decided) = self.shared.overlay.lock().scan_view(pattern, now);
        let backend = self
            .shared
            .backend
            .scan(pattern, batch_size)
            .filter(move |key| {
                future::ready(match key {
                    Ok(key) => !decided.contains(key),
                    Err(_) => true,
                })
            });
        Box::pin(stream::iter(local.into_iter().map(Ok)).chain(backend))
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        let found: Vec<String> = self.shared.backend.scan(pattern, 100).try_collect().await?;
        let written = self.shared.overlay.lock().written_matching(pattern);
        self.lock_for(found.iter().chain(&written).map(String::as_str))
            .await?;
        let now = self.now();
        Ok(self.shared.overlay.lock().delete_match(pattern, found, now))
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        let keys = batch.deletes().iter().map(String::as_str);
        self.lock_for(keys.chain(batch.writes().iter().map(|w| w.key())))
            .await?;
        let now = self.now();
        let mut overlay = self.shared.overlay.lock();
        for key in batch.deletes() {
            overlay.delete(key);
        }
        for write in batch.writes() {
            overlay.write(
                write.key(),
                write.value().clone(),
                deadline(write.ttl(), now),
            );
        }
        Ok(())
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        if matches!(self.look(key), Look::Live(..)) {
            // A pending value holds the key: taken, as it will be once committed.
            return Ok(false);
        }
        let taken = self.shared.backend.set_lock(key, token, ttl).await?;
        if taken {
            self.created(key);
        }
        Ok(taken)
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.shared.backend.unlock(key, token).await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        self.shared.backend.get_bits(key, indexes, size).await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let fields = self
            .shared
            .backend
            .incr_bits(key, indexes, size, by)
            .await?;
        self.created(key);
        Ok(fields)
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.refuse_pending(key, Command::SliceIncr, WINDOW)?;
        let count = self
            .shared
            .backend
            .slice_incr(key, start, end, max, ttl)
            .await?;
        self.created(key);
        Ok(count)
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.refuse_pending(key, Command::SliceIncrNow, WINDOW)?;
        let count = self
            .shared
            .backend
            .slice_incr_now(key, period, max, ttl)
            .await?;
        self.created(key);
        Ok(count)
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.refuse_pending(key, Command::SetAdd, SET)?;
        let added = self.shared.backend.set_add(key, members, ttl).await?;
        self.created(key);
        Ok(added)
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.refuse_pending(key, Command::SetRemove, SET)?;
        self.shared.backend.set_remove(key, members).await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.refuse_pending(key, Command::SetPop, SET)?;
        self.shared.backend.set_pop(key, count).await
    }

    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        self.shared.backend.ping(message).await
    }

    async fn clear(&self) -> Result<()> {
        self.shared.backend.clear().await?;
        *self.shared.overlay.lock() = super::Overlay::default();
        Ok(())
    }

    async fn keys_count(&self) -> Result<u64> {
        let counted = self.shared.backend.keys_count().await?;
        let now = self.now();
        let (present, absent) = self.shared.overlay.lock().pending_keys(now);
        let backend = &self.shared.backend;
        let (added, removed) = future::try_join(
            future::try_join_all(present.iter().map(|key| backend.exists(key))),
            future::try_join_all(absent.iter().map(|key| backend.exists(key))),
        )
        .await?;
        let added = added.into_iter().filter(|exists| !exists).count() as u64;
        let removed = removed.into_iter().filter(|exists| *exists).count() as u64;
        Ok((counted + added).saturating_sub(removed))
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        let look = self.look(key);
        let Some(size) = self.shared.backend.get_size(key).await? else {
            return Ok(None);
        };
        Ok(Some(match look {
            Look::Live(value, _) => (key.len() + value.len()) as u64,
            Look::Gone => 0,
            Look::Backend => size,
        }))
    }

    /// Closes nothing: the backend belongs to whoever opened the transaction.
    async fn close(&self) -> Result<()> {
        Ok(())
    }

    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        self.shared.backend.lock_releases()
    }

    fn health(&self) -> Option<BackendHealth> {
        self.shared.backend.health()
    }
}

const SET: &str = "a set";
const WINDOW: &str = "a sliding window (a sorted set)";
