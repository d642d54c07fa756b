//! The connections commands run on: [`Conn`] (a connection and the health its outcomes are
//! recorded in) and the pool's [`Slot`]s, opened by [`Inner::open`].
//!
//! # Why plain multiplexed connections
//!
//! A slot holds a redis-rs `MultiplexedConnection`, not a `ConnectionManager`. The manager
//! keeps its connection in an `ArcSwap` and holds a guard of it across every command's round
//! trip; with more commands in flight than arc-swap's few fast slots per thread, every load
//! takes its slow path, and each command also clones and polls a shared future and is boxed
//! once more. Measured with 64 gets in flight on one connection, that was about 0.3 µs of the
//! 0.6 µs a get cost over a bare multiplexed connection. What the manager gave is kept here:
//! a connection that drops (a command fails with a broken connection, or its driver ended) is
//! marked broken, and the next command on that slot opens a new one; a read that finds its
//! connection dropped is sent again on the new one (`RedisBackend::read`).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::Inner;
use super::bound::Bound;
use super::health::Health;
use crate::command::Command;
use crate::config::redact::redact_url;
use crate::error::Result;

/// A connection one command runs on, with the health its outcomes are recorded in.
#[derive(Clone)]
pub(super) struct Conn {
    pub(super) link: Link,
    pub(super) health: Arc<Health>,
}

/// The connection itself.
#[derive(Clone)]
pub(super) enum Link {
    /// A connection of the pool: marked broken when it drops, so the slot opens another.
    Pooled(Arc<Bound<MultiplexedConnection>>),
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Sends one command and records its outcome (the hot path of `get`: one boxed future,
    /// redis-rs's own, and this one stays small for the callers that move it).
    pub(super) async fn send(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.health.sent();
        // Through `req_packed_command`, which boxes the send: redis-rs's send future is over a
        // kilobyte, and inline it would be copied with every move of the command's future.
        let result = match &mut self.link {
            Link::Pooled(bound) => {
                let mut conn = bound.value().clone();
                let result = conn.req_packed_command(cmd).await;
                broken_if_dropped(bound, &result);
                result
            }
            Link::Multiplexed(conn) => conn.req_packed_command(cmd).await,
            Link::Cluster(conn) => conn.req_packed_command(cmd).await,
        };
        self.health.record(&result);
        result
    }
}

/// Whether a command's error says its connection dropped: the errors after which redis-rs's
/// own `ConnectionManager` reconnects.
pub(super) fn dropped(e: &redis::RedisError) -> bool {
    e.is_unrecoverable_error() || e.is_connection_dropped()
}

/// Marks a pooled connection broken when `result` says it dropped, so that the next command
/// opens another.
fn broken_if_dropped<T>(bound: &Bound<MultiplexedConnection>, result: &RedisResult<T>) {
    if let Err(e) = result
        && dropped(e)
    {
        bound.mark_broken();
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.send(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.health.sent();
        Box::pin(async move {
            let result = match &mut self.link {
                Link::Pooled(bound) => {
                    let result = bound
                        .value()
                        .clone()
                        .req_packed_commands(pipeline, offset, count)
                        .await;
                    broken_if_dropped(bound, &result);
                    result
                }
                Link::Multiplexed(conn) => conn.req_packed_commands(pipeline, offset, count).await,
                Link::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count).await,
            };
            self.health.record(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Pooled(bound) => bound.value().get_db(),
            Link::Multiplexed(conn) => conn.get_db(),
            Link::Cluster(conn) => conn.get_db(),
        }
    }
}

/// One multiplexed connection, opened on first use and again after it broke.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) conn: ArcSwapOption<Bound<MultiplexedConnection>>,
    opening: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The connection of the slot if it is usable in `epoch`: one atomic load, no lock.
    #[inline]
    pub(super) fn alive(&self, epoch: u64) -> Option<Arc<Bound<MultiplexedConnection>>> {
        self.conn.load_full().filter(|c| c.is_alive(epoch))
    }

    /// Marks the slot's connection broken if it is still the one numbered `id` (a command on
    /// it found it dropped; a connection opened since is left alone).
    pub(super) fn broken(&self, id: u64) {
        if let Some(bound) = self.conn.load().as_ref()
            && bound.id() == id
        {
            bound.mark_broken();
        }
    }
}

impl Inner {
    /// The connection of `slot`, opened if it has none alive in the current health epoch.
    pub(super) async fn open(
        &self,
        slot: &Slot,
        command: Command,
    ) -> Result<Arc<Bound<MultiplexedConnection>>> {
        let health = &self.health;
        if let Some(conn) = slot.alive(health.epoch()) {
            return Ok(conn);
        }
        let _opening = slot.opening.lock().await;
        let epoch = health.epoch();
        if let Some(conn) = slot.alive(epoch) {
            return Ok(conn);
        }
        // Callers that queued behind an attempt that marked the backend down stop here.
        health.check(command)?;
        let timeout = self.options.connect_timeout;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(self.options.command_timeout));
        let conn = health
            .connect(
                command,
                timeout.saturating_mul(2),
                || redact_url(&self.options.address),
                self.client
                    .get_multiplexed_async_connection_with_config(&config),
            )
            .await?;
        let bound = Arc::new(Bound::new(conn, epoch));
        slot.conn.store(Some(Arc::clone(&bound)));
        Ok(bound)
    }
}
