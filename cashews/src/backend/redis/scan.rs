//! [`Scan`]: the state of a `SCAN` stream, on one server or over every primary of a cluster.

use std::collections::{HashSet, VecDeque};

use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError};

use super::cluster::{self, Node};
use super::conn::{Conn, Link};
use super::{RedisBackend, map_error};
use crate::command::Command;
use crate::error::Result;

/// The state of a SCAN stream.
pub(super) struct Scan {
    backend: RedisBackend,
    conn: Option<Conn>,
    pattern: String,
    batch: usize,
    cursor: u64,
    started: bool,
    buffered: VecDeque<String>,
    /// Keys already yielded: SCAN may return a key twice while the table is rehashed.
    seen: HashSet<String>,
    done: bool,
    /// On a cluster: the primary being scanned (`None` before the first step)...
    node: Option<Node>,
    /// ... and those still to scan, each from cursor 0.
    nodes: VecDeque<Node>,
}

impl Scan {
    /// A scan of the keys matching `pattern` (already under the key prefix), `batch` per step.
    pub(super) fn new(backend: RedisBackend, pattern: String, batch: usize) -> Self {
        Self {
            backend,
            conn: None,
            pattern,
            batch,
            cursor: 0,
            started: false,
            buffered: VecDeque::new(),
            seen: HashSet::new(),
            done: false,
            node: None,
            nodes: VecDeque::new(),
        }
    }

    /// The next key, and the state after it; `None` at the end.
    pub(super) async fn next(mut self) -> Option<(Result<String>, Self)> {
        loop {
            if let Some(key) = self.buffered.pop_front() {
                return Some((Ok(key), self));
            }
            if self.done {
                return None;
            }
            if self.started && self.cursor == 0 {
                // This server (or cluster primary) is done; a cluster goes on with the next.
                match self.nodes.pop_front() {
                    Some(node) => {
                        self.node = Some(node);
                        self.started = false;
                    }
                    None => return None,
                }
            }
            let mut conn = match self.conn.take() {
                Some(conn) => conn,
                None => match self.backend.conn(Command::Scan).await {
                    Ok(conn) => conn,
                    Err(e) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                },
            };
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(self.cursor)
                .arg("MATCH")
                .arg(&self.pattern)
                .arg("COUNT")
                .arg(self.batch.max(1));
            let reply: redis::RedisResult<(u64, Vec<Vec<u8>>)> = match &mut conn.link {
                Link::Cluster(cluster) => {
                    let reply = Box::pin(self.scan_cluster(cluster, cmd)).await;
                    conn.health.record(&reply);
                    reply
                }
                _ => cmd.query_async(&mut conn).await,
            };
            self.conn = Some(conn);
            self.started = true;
            match reply {
                Ok((cursor, keys)) => {
                    self.cursor = cursor;
                    let prefix_len = self.backend.inner.options.key_prefix.len();
                    for raw in keys {
                        let key = String::from_utf8_lossy(raw.get(prefix_len..).unwrap_or(&raw))
                            .into_owned();
                        if self.seen.insert(key.clone()) {
                            self.buffered.push_back(key);
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(map_error(Command::Scan, &self.pattern, e)), self));
                }
            }
        }
    }
}

impl Scan {
    /// One SCAN step on a cluster, sent to the primary being scanned; the first step lists the
    /// primaries. A cluster without primaries ends the scan (cursor 0, no keys).
    async fn scan_cluster(
        &mut self,
        cluster: &mut ClusterConnection,
        cmd: Cmd,
    ) -> redis::RedisResult<(u64, Vec<Vec<u8>>)> {
        if self.node.is_none() {
            self.nodes = cluster::primaries(cluster).await?.into();
            self.node = self.nodes.pop_front();
        }
        let Some(node) = &self.node else {
            return Ok((0, Vec::new()));
        };
        let reply = cluster.route_command(cmd, node.routing()).await?;
        redis::from_redis_value(reply).map_err(RedisError::from)
    }
}
