//! The tracking link: one RESP3 connection with `CLIENT TRACKING ON BCAST … NOLOOP`, the
//! handling of its invalidation pushes, its loss and its reconnection.
//!
//! Pushes are handled inside redis-rs's connection driver, before any later reply on the same
//! connection is handed to its caller: once a command sent over the link after another
//! client's acknowledged write has answered, that write's invalidation has been applied to the
//! tier (Redis queues a BCAST invalidation before the replies of later commands).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use super::Shared;
use crate::backend::RedisBackend;
use crate::command::Command;
use crate::config::redact::redact_url;
use crate::error::{Error, Result};

/// The first wait before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A live tracking link: the connection and the backend view pinned to it.
pub(super) struct Link {
    /// Every command goes over the tracking connection while the link is up, so `NOLOOP`
    /// keeps our own writes from invalidating us.
    pub(super) backend: RedisBackend,
    pub(super) conn: MultiplexedConnection,
    /// Which link this is: pushes of a dead link must not touch its successor.
    pub(super) generation: u64,
    /// The Redis `CLIENT ID` of the connection.
    pub(super) client_id: i64,
}

impl Shared {
    /// Starts the background link task, once, if a Tokio runtime is at hand.
    pub(super) fn start(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = runtime.spawn(run_link(Arc::downgrade(self), Arc::clone(&self.wake)));
        *self.task.lock() = Some(task);
    }

    /// Opens a tracking connection and, once tracking is on, installs it as the link.
    async fn open_link(self: &Arc<Self>) -> Result<()> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let weak = Arc::downgrade(self);
        // Runs inside the connection driver: no blocking, no await (see the module docs).
        let on_push = move |info: PushInfo| -> std::result::Result<(), ()> {
            match weak.upgrade() {
                Some(shared) => {
                    shared.on_push(generation, info);
                    Ok(())
                }
                None => Err(()),
            }
        };
        let options = self.pooled.options();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            .set_push_sender(on_push);
        let fail = |e: String| Error::backend("redis", Command::Ping, e);
        let mut conn = match tokio::time::timeout(
            options.connect_timeout.saturating_mul(2),
            self.resp3
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(fail(format!("client-side tracking connection: {e}"))),
            Err(_) => {
                return Err(fail(format!(
                    "client-side tracking connection to {} not open within {:?}",
                    redact_url(&options.address),
                    options.connect_timeout
                )));
            }
        };
        let client_id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await
            .map_err(|e| fail(format!("CLIENT ID on the tracking connection: {e}")))?;
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON").arg("BCAST");
        if !options.key_prefix.is_empty() {
            tracking.arg("PREFIX").arg(&options.key_prefix);
        }
        tracking.arg("NOLOOP");
        tracking.query_async::<()>(&mut conn).await.map_err(|e| {
            fail(format!(
                "CLIENT TRACKING (Redis 6 or later is needed for client_side=true): {e}"
            ))
        })?;

        let _transition = self.transition.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(fail("the backend is closed".to_owned()));
        }
        if self.lost.load(Ordering::SeqCst) >= generation {
            return Err(fail(
                "the tracking connection dropped while it was set up".to_owned(),
            ));
        }
        // The tier must start empty: nothing may have been cached without tracking.
        self.fences.new_epoch(|| self.flush_local());
        let link = Link {
            backend: self.pooled.pinned(conn.clone()),
            conn,
            generation,
            client_id,
        };
        self.link.store(Some(Arc::new(link)));
        self.gate.up.store(true, Ordering::SeqCst);
        self.counters.links.fetch_add(1, Ordering::Relaxed);
        self.linked.send_replace(true);
        tracing::debug!(
            address = %redact_url(&options.address),
            key_prefix = %options.key_prefix,
            client_id,
            generation,
            "client-side cache: tracking link up, local tier enabled"
        );
        Ok(())
    }

    /// A push from the tracking connection of link `generation`.
    pub(super) fn on_push(&self, generation: u64, info: PushInfo) {
        match info.kind {
            PushKind::Invalidate => match info.data.first() {
                Some(Value::Array(keys) | Value::Set(keys)) => {
                    let prefix = &self.pooled.options().key_prefix;
                    for key in keys {
                        let Value::BulkString(raw) = key else {
                            continue;
                        };
                        // Keys that are not UTF-8 or lack the prefix cannot be in the tier.
                        let Some(key) = std::str::from_utf8(raw)
                            .ok()
                            .and_then(|k| k.strip_prefix(prefix.as_str()))
                        else {
                            continue;
                        };
                        self.fences.invalidate(key, || self.remove_local(key));
                        self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // A null invalidation (FLUSHDB, FLUSHALL, tracking table overflow): drop all.
                _ => {
                    self.fences.new_epoch(|| self.flush_local());
                    self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                }
            },
            PushKind::Disconnection => self.link_lost(generation, "connection closed"),
            _ => {}
        }
    }

    /// The link `generation` is gone: stop serving locally, flush, and wake the reconnect task.
    pub(super) fn link_lost(&self, generation: u64, why: &str) {
        let _transition = self.transition.lock();
        self.lost.fetch_max(generation, Ordering::SeqCst);
        let current = self.link.load().as_ref().map(|link| link.generation);
        if current != Some(generation) {
            return;
        }
        self.gate.up.store(false, Ordering::SeqCst);
        self.link.store(None);
        self.fences.new_epoch(|| self.flush_local());
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.linked.send_replace(false);
        tracing::debug!(
            address = %redact_url(&self.pooled.options().address),
            generation,
            reason = why,
            "client-side cache: tracking link down, local tier flushed and bypassed"
        );
        self.wake.notify_one();
    }
}

/// The link task: opens the link, waits until it drops, reopens it with backoff. Holds only a
/// `Weak` between steps, and the backend aborts it when its last handle drops.
/// Marks the link lost when the link task ends for any reason, above all when it is dropped
/// with the runtime it was spawned on (a `Cache` in a `static` outliving a `#[tokio::test]`
/// runtime): that runtime also drove the tracking connection, so invalidations stop arriving
/// with no `Disconnection` push to say so. The tier is flushed and bypassed, and the next
/// command starts a new link task on the runtime it runs on.
struct TaskEnded(Weak<Shared>);

impl Drop for TaskEnded {
    fn drop(&mut self) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let generation = shared.link.load().as_ref().map(|link| link.generation);
        if let Some(generation) = generation {
            shared.link_lost(generation, "the link task ended (its runtime shut down)");
        }
        shared.started.store(false, Ordering::Release);
    }
}

async fn run_link(shared: Weak<Shared>, wake: Arc<Notify>) {
    let _ended = TaskEnded(shared.clone());
    let mut backoff = MIN_BACKOFF;
    loop {
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.closed.load(Ordering::Acquire) {
                return;
            }
            if !shared.gate.up.load(Ordering::SeqCst) {
                match shared.open_link().await {
                    Ok(()) => backoff = MIN_BACKOFF,
                    Err(e) => {
                        tracing::debug!(
                            error = %e,
                            retry_in = ?backoff,
                            "client-side cache: tracking link not up"
                        );
                        *shared.last_error.lock() = Some(e.to_string());
                        drop(shared);
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            () = wake.notified() => {}
                        }
                        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
        }
        wake.notified().await;
    }
}
