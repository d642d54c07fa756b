//! The connections commands run on: [`Conn`] (a connection and the health its outcomes are
//! recorded in) and the pool's [`Slot`]s, opened by [`Inner::open`].

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

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
    Managed(ConnectionManager),
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.health.sent();
        Box::pin(async move {
            let result = match &mut self.link {
                Link::Managed(conn) => conn.req_packed_command(cmd).await,
                Link::Multiplexed(conn) => conn.req_packed_command(cmd).await,
                Link::Cluster(conn) => conn.req_packed_command(cmd).await,
            };
            self.health.record(&result);
            result
        })
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
                Link::Managed(conn) => conn.req_packed_commands(pipeline, offset, count).await,
                Link::Multiplexed(conn) => conn.req_packed_commands(pipeline, offset, count).await,
                Link::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count).await,
            };
            self.health.record(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Managed(conn) => conn.get_db(),
            Link::Multiplexed(conn) => conn.get_db(),
            Link::Cluster(conn) => conn.get_db(),
        }
    }
}

/// One multiplexed connection, opened on first use.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) conn: ArcSwapOption<Bound<ConnectionManager>>,
    opening: tokio::sync::Mutex<()>,
}

impl Inner {
    /// The connection of `slot`, opened if it has none alive in the current health epoch.
    pub(super) async fn open(&self, slot: &Slot, command: Command) -> Result<ConnectionManager> {
        let health = &self.health;
        if let Some(conn) = slot
            .conn
            .load()
            .as_ref()
            .and_then(|c| c.get(health.epoch()))
        {
            return Ok(conn);
        }
        let _opening = slot.opening.lock().await;
        let epoch = health.epoch();
        if let Some(conn) = slot.conn.load().as_ref().and_then(|c| c.get(epoch)) {
            return Ok(conn);
        }
        // Callers that queued behind an attempt that marked the backend down stop here.
        health.check(command)?;
        let timeout = self.options.connect_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(self.options.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = health
            .connect(
                command,
                timeout.saturating_mul(2),
                || redact_url(&self.options.address),
                self.client.get_connection_manager_with_config(config),
            )
            .await?;
        slot.conn
            .store(Some(Arc::new(Bound::new(conn.clone(), epoch))));
        Ok(conn)
    }
}
