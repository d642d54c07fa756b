//! [`Health`]: whether a Redis backend is reachable, so that commands to a server that is down
//! fail at once instead of each waiting for its own connection attempt.
//!
//! # States
//!
//! **Up**: commands go to their connection. Every answer (a reply or a Redis error reply)
//! resets a count of consecutive connection failures; every connection failure or timeout
//! (a connection that cannot be opened, drops or does not answer in time) adds one.
//!
//! **Down**, after `down_after` failures in a row: every command fails at once with
//! [`Error::BackendDown`] (safe mode turns it into the neutral reply, like any backend
//! failure), without touching a connection. The connections opened before are given up (the
//! next command after the outage opens fresh ones), and one background task probes the server
//! with a `PING` over a fresh connection, first after `probe_interval`, then with the wait
//! doubling up to `probe_max_interval`. The first probe that succeeds marks the backend up.
//!
//! One `tracing::warn!` per transition; none per command while down.
//!
//! # The probe task
//!
//! It runs only while the backend is down, on the runtime of the command that found it down,
//! and ends when the backend is marked up, when the backend is dropped or closed (its stop
//! channel closes), or with its runtime. A command that finds the backend down with no probe
//! running (its runtime ended) starts a new one.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::RedisResult;
use redis::cluster::ClusterClient;
use tokio::sync::oneshot;

use crate::backend::BackendHealth;
use crate::command::Command;
use crate::config::RedisOptions;
use crate::config::redact::redact_url;
use crate::error::Error;

/// What a probe connects to: the server, or the cluster (through its seeds). Boxed: the
/// cluster client is large.
pub(super) enum Target {
    Server(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

/// The health of one backend (shared by its pinned views).
pub(super) struct Health {
    /// Failures in a row that mark the backend down; 0 never does.
    down_after: u32,
    probe_interval: Duration,
    probe_max_interval: Duration,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// The address, password hidden, for logs and errors.
    address: String,
    target: Target,
    down: AtomicBool,
    failures: AtomicU32,
    /// Bumped when the backend goes down: connections opened in an earlier epoch are given up.
    epoch: AtomicU64,
    /// The origin of `next_probe` and `since`.
    base: Instant,
    /// When the next probe is due, in nanoseconds after `base`.
    next_probe: AtomicU64,
    /// When the backend went down, in nanoseconds after `base`.
    since: AtomicU64,
    /// Held while a probe task runs; dropping it stops the task.
    probe: parking_lot::Mutex<Option<oneshot::Sender<()>>>,
    downs: AtomicU64,
    probes: AtomicU64,
    attempts: AtomicU64,
    sent: AtomicU64,
}

impl Health {
    pub(super) fn new(options: &RedisOptions, target: Target) -> Self {
        let address = redact_url(&options.address);
        // A new backend starts up: the gauge says so before any transition.
        crate::observe::backend_up("redis", &address);
        Self {
            down_after: options.down_after,
            probe_interval: options.probe_interval,
            probe_max_interval: options.probe_max_interval.max(options.probe_interval),
            connect_timeout: options.connect_timeout,
            command_timeout: options.command_timeout,
            address,
            target,
            down: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            epoch: AtomicU64::new(0),
            base: Instant::now(),
            next_probe: AtomicU64::new(0),
            since: AtomicU64::new(0),
            probe: parking_lot::Mutex::new(None),
            downs: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }

    /// The connection epoch: a connection opened in another one is given up.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// `Ok` while up (one atomic load); while down, [`Error::BackendDown`] at once, and a probe
    /// is started if none runs.
    #[inline]
    pub(super) fn check(self: &Arc<Self>, command: Command) -> Result<(), Error> {
        if !self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(self.refuse(command))
    }

    #[cold]
    fn refuse(self: &Arc<Self>, command: Command) -> Error {
        self.ensure_probe();
        let due = self.next_probe.load(Ordering::Relaxed);
        let retry_in = Duration::from_nanos(due.saturating_sub(self.nanos_now()));
        Error::BackendDown {
            backend: "redis",
            address: self.address.clone(),
            command,
            retry_in,
        }
    }

    /// Counts a connection attempt made for a command.
    pub(super) fn attempted(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a command (or pipeline) handed to a connection.
    pub(super) fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the outcome of a command on a connection.
    pub(super) fn record<T>(self: &Arc<Self>, result: &RedisResult<T>) {
        match result {
            Ok(_) => self.success(),
            Err(e) => self.record_error(e),
        }
    }

    /// Records a failed command or connection attempt: a connection failure counts, an error
    /// reply is an answer.
    pub(super) fn record_error(self: &Arc<Self>, e: &redis::RedisError) {
        if connection_failure(e) {
            self.failure();
        } else {
            self.success();
        }
    }

    /// Opens a connection with `open`, within `limit`, and records the outcome: an error or a
    /// timeout counts as a failure (`what` names what could not be reached, for the error), a
    /// connection as a success.
    pub(super) async fn connect<C>(
        self: &Arc<Self>,
        command: crate::command::Command,
        limit: Duration,
        what: impl FnOnce() -> String,
        open: impl std::future::Future<Output = RedisResult<C>>,
    ) -> Result<C, crate::error::Error> {
        self.attempted();
        match tokio::time::timeout(limit, open).await {
            Ok(Ok(conn)) => {
                self.success();
                Ok(conn)
            }
            Ok(Err(e)) => {
                self.record_error(&e);
                Err(crate::error::Error::backend("redis", command, e))
            }
            Err(_) => {
                self.failure();
                Err(crate::error::Error::backend(
                    "redis",
                    command,
                    format!("could not connect to {} within {limit:?}", what()),
                ))
            }
        }
    }

    /// The server answered: the count of failures in a row starts again.
    pub(super) fn success(&self) {
        // A load first: the hot path writes nothing shared.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A connection failed or timed out; the `down_after`-th in a row marks the backend down.
    pub(super) fn failure(self: &Arc<Self>) {
        if self.down_after == 0 {
            return;
        }
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures < self.down_after || self.down.load(Ordering::Acquire) {
            return;
        }
        let now = self.nanos_now();
        self.since.store(now, Ordering::Relaxed);
        self.next_probe.store(
            now.saturating_add(nanos(self.probe_interval)),
            Ordering::Relaxed,
        );
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.downs.fetch_add(1, Ordering::Relaxed);
        crate::observe::health("redis", &self.address, false);
        tracing::warn!(
            backend = "redis",
            address = %self.address,
            failures,
            probe_interval = ?self.probe_interval,
            "redis backend is down: commands fail at once (safe mode answers neutral replies) \
             while a background probe reconnects"
        );
        self.ensure_probe();
    }

    /// The counters and state, for [`Backend::health`](crate::backend::Backend::health).
    pub(super) fn snapshot(&self) -> BackendHealth {
        BackendHealth {
            down: self.down.load(Ordering::Acquire),
            consecutive_failures: self.failures.load(Ordering::Relaxed),
            downs: self.downs.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            connection_attempts: self.attempts.load(Ordering::Relaxed),
            commands_sent: self.sent.load(Ordering::Relaxed),
        }
    }

    /// Stops the probe task, if any (a later command starts another while the backend is
    /// down).
    pub(super) fn stop_probe(&self) {
        self.probe.lock().take();
    }

    /// Starts the probe task unless one runs (or its runtime is gone, or another caller is
    /// deciding right now).
    fn ensure_probe(self: &Arc<Self>) {
        let Some(mut probe) = self.probe.try_lock() else {
            return;
        };
        if probe.as_ref().is_some_and(|stop| !stop.is_closed()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (stop, stopped) = oneshot::channel();
        *probe = Some(stop);
        let target = match &self.target {
            Target::Server(client) => Target::Server(client.clone()),
            Target::Cluster(client) => Target::Cluster(client.clone()),
        };
        runtime.spawn(run_probe(Arc::downgrade(self), target, stopped));
    }

    /// A probe succeeded: the backend is up.
    fn mark_up(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.probe.lock().take();
        if !self.down.swap(false, Ordering::AcqRel) {
            return;
        }
        crate::observe::health("redis", &self.address, true);
        let down_for = Duration::from_nanos(
            self.nanos_now()
                .saturating_sub(self.since.load(Ordering::Relaxed)),
        );
        tracing::warn!(
            backend = "redis",
            address = %self.address,
            ?down_for,
            "redis backend is up again: commands go to the server"
        );
    }

    fn nanos_now(&self) -> u64 {
        nanos(self.base.elapsed())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether a redis-rs error means the server could not be reached or did not answer (rather
/// than a reply, error replies included).
pub(super) fn connection_failure(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
}

/// The probe loop: wait, `PING` over a fresh connection, until one answers or `stop` closes.
async fn run_probe(health: Weak<Health>, target: Target, mut stop: oneshot::Receiver<()>) {
    let Some((mut wait, max, connect, command)) = health.upgrade().map(|h| {
        (
            h.probe_interval,
            h.probe_max_interval,
            h.connect_timeout,
            h.command_timeout,
        )
    }) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
        match health.upgrade() {
            Some(h) => {
                h.probes.fetch_add(1, Ordering::Relaxed);
            }
            None => return,
        }
        let answered = tokio::select! {
            _ = &mut stop => return,
            answered = ping(&target, connect, command) => answered,
        };
        let Some(h) = health.upgrade() else {
            return;
        };
        match answered {
            Ok(()) => {
                h.mark_up();
                return;
            }
            Err(error) => {
                wait = wait.saturating_mul(2).min(max);
                h.next_probe
                    .store(h.nanos_now().saturating_add(nanos(wait)), Ordering::Relaxed);
                tracing::debug!(backend = "redis", address = %h.address, %error, next_in = ?wait, "redis probe failed");
            }
        }
    }
}

/// One `PING` over a fresh connection, bounded by the connect and command timeouts.
async fn ping(target: &Target, connect: Duration, command: Duration) -> Result<(), String> {
    let limit = connect.saturating_add(command);
    let attempt = async {
        match target {
            Target::Server(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect))
                    .set_response_timeout(Some(command));
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                redis::cmd("PING").query_async::<()>(&mut conn).await
            }
            Target::Cluster(client) => {
                let mut conn = client.get_async_connection().await?;
                redis::cmd("PING").query_async::<()>(&mut conn).await
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}
