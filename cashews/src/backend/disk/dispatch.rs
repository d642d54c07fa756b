//! Where a command of the disk backend runs: on its shard's thread (every command that may
//! write), on the caller's thread or a reader thread (pure reads, see `readers.rs`), or on
//! every shard at once.

use std::sync::Arc;

use bytes::Bytes;

use super::DiskBackend;
use super::shard::{self, Fail, Row, Shard};
use super::value::{self, Kind};
use super::worker::Worker;
use crate::command::Command;
use crate::error::Result;

impl DiskBackend {
    /// The worker of `key`'s shard. `new` starts at least one worker, and `shard_of` answers
    /// below the count it is given, so the index is always in range.
    pub(super) fn worker(&self, key: &str) -> &Worker {
        &self.inner.workers[value::shard_of(key, self.inner.workers.len())]
    }

    /// Runs a read of `key` on its shard.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        command: Command,
        key: &str,
        f: impl FnMut(&rusqlite::Connection, &str, i64) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T> {
        let owned = key.to_owned();
        let mut f = f;
        self.worker(key)
            .call(command, move |shard| {
                shard.read(command, |conn, now| f(conn, &owned, now))
            })
            .await
    }

    /// The answer of a `get` of `key` that read `row`; a live entry owing an access-time
    /// refresh gets it, on the shard's thread, which nobody waits for (a refresh is a write).
    pub(super) fn answer_get(&self, key: &str, row: Option<Row>) -> Option<Bytes> {
        let row = row?;
        let accessed_at = row.accessed_at;
        if shard::owes_touch(self.inner.options.eviction, accessed_at, shard::now_ms())
            && self.inner.touching.lock().insert(key.to_owned())
        {
            let (owned, touching) = (key.to_owned(), Arc::clone(&self.inner.touching));
            self.worker(key).send(move |shard| {
                shard.touch(&owned, accessed_at, shard::now_ms());
                touching.lock().remove(&owned);
            });
        }
        (row.kind == Some(Kind::Bytes)).then(|| Bytes::from(row.value))
    }

    /// Runs a pure read of `key` (on shard `index`) on this thread, if its data is in memory
    /// and an inline connection is free (see `readers.rs`); `None` otherwise.
    pub(super) fn read_inline<T>(
        &self,
        command: Command,
        index: usize,
        key: &str,
        f: &impl Fn(&rusqlite::Connection, &str, i64) -> Result<T, Fail>,
    ) -> Option<Result<T>> {
        self.inner.readers.inline(index, |shard| {
            shard.read(command, |conn, now| f(conn, key, now))
        })
    }

    /// Runs a pure read of `key` on this thread or a reader thread (see `readers.rs`); on any
    /// failure, runs it again on the key's shard thread, which reports the failure or
    /// recovers from it.
    pub(super) async fn read_only<T: Send + 'static>(
        &self,
        command: Command,
        key: &str,
        f: impl Fn(&rusqlite::Connection, &str, i64) -> Result<T, Fail> + Send + Clone + 'static,
    ) -> Result<T> {
        let index = value::shard_of(key, self.inner.workers.len());
        let answer = match self.read_inline(command, index, key, &f) {
            Some(answer) => {
                // A read answered on this thread never awaited: spend the task's cooperative
                // budget as tokio's own resources do, so a task reading in a loop yields to
                // the other tasks of its thread now and then instead of holding it.
                tokio::task::coop::consume_budget().await;
                Some(answer)
            }
            None => {
                let (owned, g) = (key.to_owned(), f.clone());
                self.inner
                    .readers
                    .call(index, move |shard| {
                        shard.read(command, |conn, now| g(conn, &owned, now))
                    })
                    .await
            }
        };
        match answer {
            Some(Ok(value)) => Ok(value),
            Some(Err(_)) | None => self.read(command, key, f).await,
        }
    }

    /// Runs a read-modify-write of `key` on its shard, in one IMMEDIATE transaction.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        command: Command,
        key: &str,
        f: impl FnMut(&rusqlite::Transaction<'_>, &str, i64) -> Result<T, Fail> + Send + 'static,
    ) -> Result<T> {
        let owned = key.to_owned();
        let mut f = f;
        self.worker(key)
            .call(command, move |shard| {
                shard.write(command, Some(&owned), |tx, now| f(tx, &owned, now))
            })
            .await
    }

    /// Groups `items` by the shard of their key: one list per shard, in shard order, of
    /// `(position in items, key, item)`.
    pub(super) fn by_shard<T>(
        &self,
        items: impl IntoIterator<Item = (String, T)>,
    ) -> Vec<Vec<(usize, String, T)>> {
        let mut groups: Vec<Vec<(usize, String, T)>> =
            (0..self.inner.workers.len()).map(|_| Vec::new()).collect();
        for (position, (key, item)) in items.into_iter().enumerate() {
            let shard = value::shard_of(&key, groups.len());
            groups[shard].push((position, key, item));
        }
        groups
    }

    /// Runs `f` on every shard at once and collects the answers in shard order.
    pub(super) async fn on_every_shard<T: Send + 'static>(
        &self,
        command: Command,
        f: impl Fn(&mut Shard) -> Result<T> + Send + Sync + Clone + 'static,
    ) -> Result<Vec<T>> {
        let calls = self.inner.workers.iter().map(|worker| {
            let f = f.clone();
            worker.call(command, move |shard| f(shard))
        });
        futures_util::future::try_join_all(calls).await
    }
}
