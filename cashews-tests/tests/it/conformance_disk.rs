//! The shared conformance suite (`cashews-testkit`) on the disk backend, unchanged: on a
//! single SQLite file (`shards=0`), on eight shards, so pattern commands and batches are
//! checked across files (both with the default `inline_reads=off`, so every read runs on the
//! reader threads), and on eight shards with `inline_reads=nowait`, so reads of data in
//! memory run on the caller's own connections; and inside one open transaction on eight
//! shards (`transactional`). Every case gets a fresh temporary folder, removed when the case's
//! backend is dropped.

use std::sync::Arc;
use std::time::Duration;

use cashews::backend::{Batch, BoxStream, DiskBackend, Expiry, SetOptions};
use cashews::config::{DiskOptions, InlineReads};
use cashews::{Backend, Bytes, Result};
use cashews_testkit::{Harness, Setup, Time};

/// A disk backend that owns its temporary folder: the folder lives as long as any clone.
/// Every method delegates, the batch and pattern ones included, so the disk backend's own
/// versions are the ones tested.
#[derive(Debug, Clone)]
struct TempDisk {
    backend: DiskBackend,
    _dir: Arc<tempfile::TempDir>,
}

impl TempDisk {
    fn new(shards: usize, inline_reads: InlineReads) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cashews-disk-")
            .tempdir()
            .expect("a temporary folder");
        let mut options = DiskOptions::new(dir.path()).with_shards(shards);
        options.inline_reads = inline_reads;
        let backend = DiskBackend::new(options).expect("a disk backend");
        Self {
            backend,
            _dir: Arc::new(dir),
        }
    }
}

impl Backend for TempDisk {
    fn name(&self) -> &'static str {
        self.backend.name()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.backend.get(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.backend.get_many(keys).await
    }
    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.backend.set(key, value, options).await
    }
    async fn set_many(&self, pairs: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        self.backend.set_many(pairs, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.backend.delete(key).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        self.backend.delete_many(keys).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.backend.exists(key).await
    }
    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        self.backend.expire(key, ttl).await
    }
    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.backend.get_expire(key).await
    }
    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.backend.incr(key, by, ttl).await
    }
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        self.backend.scan(pattern, batch_size)
    }
    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        self.backend.delete_match(pattern).await
    }
    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        self.backend.set_lock(key, token, ttl).await
    }
    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.backend.unlock(key, token).await
    }
    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        self.backend.get_bits(key, indexes, size).await
    }
    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        self.backend.incr_bits(key, indexes, size, by).await
    }
    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.backend.slice_incr(key, start, end, max, ttl).await
    }
    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.backend.slice_incr_now(key, period, max, ttl).await
    }
    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.backend.set_add(key, members, ttl).await
    }
    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.backend.set_remove(key, members).await
    }
    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.backend.set_pop(key, count).await
    }
    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        self.backend.ping(message).await
    }
    async fn clear(&self) -> Result<()> {
        self.backend.clear().await
    }
    async fn keys_count(&self) -> Result<u64> {
        self.backend.keys_count().await
    }
    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.backend.get_size(key).await
    }
    async fn close(&self) -> Result<()> {
        self.backend.close().await
    }
    async fn apply(&self, batch: &Batch) -> Result<()> {
        self.backend.apply(batch).await
    }
}

mod one_file {
    use super::*;

    async fn disk(_setup: Setup) -> Option<Harness<TempDisk>> {
        Some(Harness::new(TempDisk::new(0, InlineReads::Off), Time::Real))
    }

    cashews_testkit::conformance_suite!(disk);
}

mod eight_shards {
    use super::*;

    async fn disk(_setup: Setup) -> Option<Harness<TempDisk>> {
        Some(Harness::new(TempDisk::new(8, InlineReads::Off), Time::Real))
    }

    cashews_testkit::conformance_suite!(disk);
}

mod inline_nowait {
    use super::*;

    async fn disk(_setup: Setup) -> Option<Harness<TempDisk>> {
        Some(Harness::new(
            TempDisk::new(8, InlineReads::Nowait),
            Time::Real,
        ))
    }

    cashews_testkit::conformance_suite!(disk);
}

/// Inside one open, never committed transaction (fast mode), on eight shards: every write of
/// a case stays pending and every read is the transaction's merged view over the disk.
mod transactional {
    use super::*;
    use cashews::Clock;
    use cashews::backend::{TransactionMode, TransactionOptions, Transactional};

    async fn disk(_setup: Setup) -> Option<Harness<Transactional>> {
        let options = TransactionOptions::new(TransactionMode::Fast);
        let backend = TempDisk::new(8, InlineReads::Off);
        Some(Harness::new(
            Transactional::new(backend, Clock::system(), options),
            Time::Real,
        ))
    }

    cashews_testkit::conformance_suite!(disk);
}

/// A commit on eight shards: deletes and writes land together, each write with its exact TTL.
#[tokio::test]
async fn commit_applies_deletes_and_writes_on_every_shard() -> Result<()> {
    use cashews::Clock;
    use cashews::backend::{TransactionMode, TransactionOptions, Transactional};

    let disk = TempDisk::new(8, InlineReads::Off);
    for i in 0..10 {
        disk.set(&format!("old{i}"), "x".into(), SetOptions::default())
            .await?;
    }
    let options = TransactionOptions::new(TransactionMode::Locked);
    let tx = Transactional::new(disk.clone(), Clock::system(), options);
    assert_eq!(tx.delete_match("old*").await?, 10);
    for i in 0..10 {
        let ttl = Some(Duration::from_secs(600));
        tx.set(&format!("new{i}"), "v".into(), SetOptions::ttl(ttl))
            .await?;
    }
    assert_eq!(
        disk.keys_count().await?,
        30,
        "10 old keys, a lock on each, 10 new locks"
    );
    tx.commit().await?;
    assert_eq!(
        disk.keys_count().await?,
        10,
        "the old keys and the locks are gone"
    );
    for i in 0..10 {
        match disk.get_expire(&format!("new{i}")).await? {
            Expiry::In(left) => assert!(left > Duration::from_secs(590), "{left:?}"),
            other => panic!("new{i}: {other:?}"),
        }
    }
    Ok(())
}
