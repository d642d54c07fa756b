//! [`Backend::apply`](crate::backend::Backend::apply) on Redis: one `MULTI`/`EXEC` pipeline
//! (one round trip) on a single server, one per hash slot on a cluster.

use std::borrow::Cow;
use std::sync::Arc;

use redis::Pipeline;
use redis::cluster_async::ClusterConnection;

use super::conn::{Conn, Link};
use super::{RedisBackend, cluster};
use crate::backend::Batch;
use crate::command::Command;
use crate::error::Result;

impl RedisBackend {
    /// Applies `batch` atomically: `MULTI`, `UNLINK` of the deletes, a `SET … PX` per write,
    /// `EXEC`, in one pipeline. On a cluster, per slot (see [`Self::apply_by_slot`]).
    pub(super) async fn apply_batch(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(write) = batch
            .writes()
            .iter()
            .find(|write| write.value().len() > self.inner.options.max_value_size)
        {
            return self.check_sizes(write.key(), [write.value().len()]);
        }
        let mut conn = self.conn(Command::Apply).await?;
        if let Link::Cluster(cluster) = &conn.link {
            // Boxed so that the single-server future stays small.
            return Box::pin(self.apply_by_slot(cluster, batch)).await;
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.push_deletes(&mut pipe, batch.deletes().iter().map(String::as_str));
        for write in batch.writes() {
            self.push_set(&mut pipe, write.key(), write.value(), write.ttl());
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.fail(Command::Apply, first_key(batch), e))
    }

    /// Adds `UNLINK keys…` to a pipeline (nothing for no keys), its reply ignored.
    fn push_deletes<'k>(&self, pipe: &mut Pipeline, keys: impl Iterator<Item = &'k str>) {
        let mut keys = keys.peekable();
        if keys.peek().is_none() {
            return;
        }
        let cmd = pipe.cmd("UNLINK");
        for key in keys {
            cmd.arg(self.stored(key));
        }
        cmd.ignore();
    }

    /// `apply` on a cluster: a `MULTI`/`EXEC` transaction cannot cross hash slots, so the
    /// batch is split by slot, each part one atomic pipeline, the pipelines sent concurrently.
    /// Atomic per slot, not across slots.
    async fn apply_by_slot(&self, cluster: &ClusterConnection, batch: &Batch) -> Result<()> {
        let deletes = batch.deletes().len();
        let keys: Vec<&str> = batch
            .deletes()
            .iter()
            .map(String::as_str)
            .chain(batch.writes().iter().map(|write| write.key()))
            .collect();
        let stored: Vec<Cow<'_, str>> = keys.iter().map(|key| self.key(key)).collect();
        let groups = cluster::by_slot(stored.iter().map(|key| key.as_bytes()));
        let sends = groups.into_iter().map(|group| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            let first = group
                .first()
                .and_then(|&i| keys.get(i))
                .copied()
                .unwrap_or("");
            let (dels, sets): (Vec<usize>, Vec<usize>) = group.iter().partition(|&&i| i < deletes);
            self.push_deletes(&mut pipe, dels.iter().filter_map(|&i| keys.get(i).copied()));
            for write in sets.iter().filter_map(|&i| batch.writes().get(i - deletes)) {
                self.push_set(&mut pipe, write.key(), write.value(), write.ttl());
            }
            let mut conn = Conn {
                link: Link::Cluster(cluster.clone()),
                health: Arc::clone(&self.inner.health),
            };
            async move {
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.fail(Command::Apply, first, e))
            }
        });
        futures_util::future::try_join_all(sends).await.map(|_| ())
    }
}

/// The batch's first key, for errors.
fn first_key(batch: &Batch) -> &str {
    batch
        .deletes()
        .first()
        .map(String::as_str)
        .or_else(|| batch.writes().first().map(|write| write.key()))
        .unwrap_or("")
}
