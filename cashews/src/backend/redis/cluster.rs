//! Redis Cluster (`cluster=true`): the lazily opened cluster connection, the primaries a scan
//! walks, and the per-slot split of pipelines.
//!
//! redis-rs routes each command by the slot of its key, and splits `MGET` and `UNLINK` by slot
//! itself, reassembling `MGET`'s replies in the order of the keys (`combine_and_sort_array_results`
//! in its `cluster_routing`) and summing `UNLINK`'s counts. It does not split a pipeline: one
//! whose commands touch several slots fails with `CROSSSLOT`, so [`by_slot`] groups pipelined
//! commands by slot first. `FLUSHDB` and `DBSIZE` go to every primary (replies: all must succeed;
//! the sum). `SCAN` has no key and is not routed, so a scan asks for the primaries and walks each
//! by address.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{RedisResult, Value};

use super::bound::Bound;
use super::health::Health;
use crate::command::Command;
use crate::config::RedisOptions;
use crate::config::redact::redact_url;
use crate::error::{Error, Result};

/// How many times redis-rs retries a command on a cluster (after a redirection, a refused or
/// dropped connection). Small, so a cluster that is down fails commands, and safe mode answers,
/// within a few timeouts.
const RETRIES: u32 = 2;

/// The cluster connection of a backend, opened by the first command.
pub(super) struct ClusterSource {
    client: ClusterClient,
    conn: ArcSwapOption<Bound<ClusterConnection>>,
    opening: tokio::sync::Mutex<()>,
}

impl ClusterSource {
    /// A cluster client for these options: the address and `nodes` are the seeds, credentials
    /// are those of `info` (the address's, overridden by the options). Does not connect.
    pub(super) fn new(
        options: &RedisOptions,
        info: &redis::ConnectionInfo,
        tls: super::TlsFiles,
    ) -> Result<Self> {
        let scheme = options
            .address
            .split_once("://")
            .map_or("redis", |(scheme, _)| scheme);
        let mut seeds = vec![options.address.clone()];
        seeds.extend(
            options
                .nodes
                .iter()
                .map(|node| format!("{scheme}://{node}")),
        );
        let settings = info.redis_settings();
        let mut builder = ClusterClientBuilder::new(seeds)
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.command_timeout)
            .retries(RETRIES)
            .min_retry_wait(10)
            .max_retry_wait(100);
        // Given explicitly, the credentials apply to every seed (redis-rs otherwise insists that
        // each seed URL repeats the first one's).
        if let Some(user) = settings.username() {
            builder = builder.username(user);
        }
        if let Some(password) = settings.password() {
            builder = builder.password(password);
        }
        // `rediss://` seeds give the TLS mode; the certificates, if any, apply to every node.
        #[cfg(feature = "redis-tls")]
        if let Some(certificates) = tls {
            builder = builder.certs(certificates);
        }
        #[cfg(not(feature = "redis-tls"))]
        let _ = tls;
        let client = builder.build().map_err(|e| Error::InvalidUrl {
            url: redact_url(&options.address),
            reason: crate::config::redis::redis_reason(
                &e,
                "give `host:port` seed nodes that share the address's scheme",
            ),
        })?;
        Ok(Self {
            client,
            conn: ArcSwapOption::empty(),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// A client for the probes of a backend that is down (a clone shares nothing live).
    pub(super) fn client(&self) -> ClusterClient {
        self.client.clone()
    }

    /// The cluster connection, opened on first use (it reconnects by itself afterwards) and
    /// again after the backend was down (`health`'s epoch moved on).
    pub(super) async fn get(
        &self,
        options: &RedisOptions,
        health: &Arc<Health>,
        command: Command,
    ) -> Result<ClusterConnection> {
        if let Some(conn) = self
            .conn
            .load()
            .as_ref()
            .and_then(|c| c.get(health.epoch()))
        {
            return Ok(conn);
        }
        // Boxed: opening a cluster connection is a large future, which would otherwise widen
        // the future of every command, the single-server ones included.
        Box::pin(self.open(options, health, command)).await
    }

    async fn open(
        &self,
        options: &RedisOptions,
        health: &Arc<Health>,
        command: Command,
    ) -> Result<ClusterConnection> {
        let _opening = self.opening.lock().await;
        let epoch = health.epoch();
        if let Some(conn) = self.conn.load().as_ref().and_then(|c| c.get(epoch)) {
            return Ok(conn);
        }
        health.check(command)?;
        // Opening connects to a seed, reads the slot map, then connects to every node.
        let conn = health
            .connect(
                command,
                options.connect_timeout.saturating_mul(3),
                || format!("the cluster at {}", redact_url(&options.address)),
                self.client.get_async_connection(),
            )
            .await?;
        self.conn
            .store(Some(Arc::new(Bound::new(conn.clone(), epoch))));
        Ok(conn)
    }

    /// Forgets the connection; the next command opens a new one.
    pub(super) fn close(&self) {
        self.conn.store(None);
    }
}

/// A node address, as redis-rs names it in its slot map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub(super) host: String,
    pub(super) port: u16,
}

impl Node {
    /// Routing to exactly this node (a SCAN cursor is only valid on the node that issued it).
    pub(super) fn routing(&self) -> RoutingInfo {
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: self.host.clone(),
            port: self.port,
        })
    }
}

/// The primaries that serve slots, as redis-rs's slot map has them: a `PING` sent to all
/// primaries without a response policy answers with one entry per node address, which are
/// exactly the addresses [`Node::routing`] can reach.
pub(super) async fn primaries(conn: &mut ClusterConnection) -> RedisResult<Vec<Node>> {
    let reply = conn
        .route_command(
            redis::cmd("PING"),
            RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
        )
        .await?;
    let entries = match reply {
        Value::Map(entries) => entries,
        other => {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "PING to every primary did not answer per node",
                format!("{other:?}"),
            )));
        }
    };
    let mut nodes = Vec::with_capacity(entries.len());
    for (address, answer) in entries {
        if let Value::ServerError(e) = answer {
            return Err(e.into());
        }
        let address = match address {
            Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Value::SimpleString(text) => text,
            _ => continue,
        };
        if let Some((host, port)) = address.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            nodes.push(Node {
                host: host.to_owned(),
                port,
            });
        }
    }
    // A stable order: the same scan visits nodes in the same order.
    nodes.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    Ok(nodes)
}

/// Indexes of `keys` grouped by hash slot, in first-seen order, each group in key order: one
/// pipeline per group then never crosses slots.
pub(super) fn by_slot<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<Slot, usize> = HashMap::new();
    for (i, key) in keys.enumerate() {
        let slot = Slot::for_key(key);
        let group = *index.entry(slot).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        if let Some(members) = groups.get_mut(group) {
            members.push(i);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::by_slot;

    #[test]
    fn groups_keys_by_slot_in_order() {
        let keys: [&[u8]; 5] = [b"{a}1", b"{b}1", b"{a}2", b"{c}1", b"{b}2"];
        assert_eq!(
            by_slot(keys.iter().copied()),
            vec![vec![0, 2], vec![1, 4], vec![3]]
        );
    }
}
