//! How SQLite work leaves the async runtime: one worker thread per shard, fed by a channel,
//! answering through a oneshot.
//!
//! Why a thread per shard rather than `spawn_blocking` with a connection pool:
//!
//! - SQLite has one writer per file. Several connections to one shard in one process would
//!   only queue on the file lock inside SQLite's busy handler (sleeping 1 to 100 ms between
//!   tries), where a channel queues them in order at no cost; different shards run in
//!   parallel. (Pure reads use connections of their own instead, see `readers.rs`.)
//! - The thread owns its `Connection` (`Send`, not `Sync`): no mutex, no pool, and its
//!   prepared-statement cache stays warm.
//! - A slow or stalled disk blocks that shard's writes only: runtime threads never run a
//!   write, and `spawn_blocking`'s pool cannot fill up with threads all waiting on one file
//!   lock. (With `inline_reads=nowait`, opt-in, reads of data in memory do run on runtime
//!   threads, with file reads that never wait for the disk: see `readers.rs`.)
//!
//! The cost is one idle OS thread per shard (8 by default), beside the readers'. A thread
//! ends when the backend's last handle is dropped or on `close`, closing its connection
//! (which checkpoints the WAL).
//!
//! # Waiting awake: spin, then park
//!
//! A command on a warm shard takes a few microseconds, but parking a thread and waking it
//! costs far more on a VM whose idle virtual CPUs halt: about 50 µs per hop here (measured
//! by `benches/benches/disk.rs`, `through_parking_hop`), which made a get hit 15 times slower
//! than the SQL it runs. So both ends wait awake for a while first, with [`spin`]:
//! - a caller alone on its shard (no other command of this process queued or running there)
//!   polls for its answer for up to [`SPIN`] before parking its task; callers that find the
//!   shard busy park at once, their runtime thread being better spent on other tasks;
//! - a shard thread that has answered polls for its next command for up to [`SPIN`] before
//!   sleeping, so a burst never wakes it.
//!
//! Spinning yields the core between polls, and stops as soon as a yield shows that another
//! thread wanted the core: on a machine that busy the cores never sleep, a wake is cheap,
//! and spinning would only slow the threads doing the work. The spin is bounded, so a stalled
//! disk holds a runtime thread for at most [`SPIN`], never for the stall.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::shard::Shard;
use crate::command::Command;
use crate::error::{Error, Result};

/// A job for a disk thread whose state is `S` (a shard thread's [`Shard`], a reader's shards).
pub(super) type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// What a disk thread receives.
pub(super) enum Message<S: ?Sized> {
    Run(Job<S>),
    /// Stop after the jobs sent before; answer once the thread's connections are closed.
    Stop(Option<tokio::sync::oneshot::Sender<()>>),
}

impl<S: ?Sized> std::fmt::Debug for Message<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Run(_) => "Run",
            Self::Stop(_) => "Stop",
        })
    }
}

/// The loop of a disk thread (a shard thread or a reader): runs the jobs of `inbox` on
/// `state` until a `Stop` (whose sender it returns) or until every sender is gone. Between
/// jobs it waits awake first ([`spin`]): the next job of a burst often comes within
/// microseconds, and waiting for it awake saves its caller a thread wake-up. A panic in a job
/// does not end the thread: the job's caller sees its answer dropped, and `thread` is logged.
pub(super) fn serve<S: ?Sized>(
    state: &mut S,
    inbox: &crossbeam_channel::Receiver<Message<S>>,
    thread: &str,
) -> Option<tokio::sync::oneshot::Sender<()>> {
    loop {
        let next = spin(|| match inbox.try_recv() {
            Ok(message) => Some(Some(message)),
            Err(crossbeam_channel::TryRecvError::Disconnected) => Some(None),
            Err(crossbeam_channel::TryRecvError::Empty) => None,
        });
        match next.unwrap_or_else(|| inbox.recv().ok()) {
            Some(Message::Run(job)) => {
                let run = std::panic::AssertUnwindSafe(|| job(state));
                if std::panic::catch_unwind(run).is_err() {
                    tracing::error!(thread, "cashews disk: a command panicked");
                }
            }
            Some(Message::Stop(done)) => return done,
            // Every handle is gone.
            None => return None,
        }
    }
}

/// How long a caller alone on its shard polls for its answer before parking (see the module
/// docs): long enough for a read or a small write on a warm file (3 to 40 µs measured),
/// short enough to stay well under what a task may block its runtime thread for.
pub(super) const SPIN: Duration = Duration::from_micros(50);

/// A yield that takes longer than this gave the core to another thread: the machine has
/// more runnable threads than cores (an idle core yields in well under a microsecond).
const CONTENDED: Duration = Duration::from_micros(5);

/// The handle to one shard's thread.
#[derive(Debug)]
pub(super) struct Worker {
    jobs: crossbeam_channel::Sender<Message<Shard>>,
    /// Commands of this process sent to the shard and not answered yet.
    in_flight: Arc<AtomicUsize>,
}

impl Worker {
    /// Starts the thread of `shard`, which opens its file at once.
    pub(super) fn spawn(mut shard: Shard, index: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = crossbeam_channel::unbounded::<Message<Shard>>();
        let name = format!("cashews-disk-{index}");
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                shard.warm_up();
                let done = serve(&mut shard, &inbox, &name);
                // Closes the connection (the last one on a file checkpoints the WAL).
                drop(shard);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            })?;
        Ok(Self {
            jobs,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` on the shard's thread and waits for its answer without blocking the runtime.
    ///
    /// Dropping the future does not cancel `f` once sent: it completes (or not) as a whole,
    /// as each command is one transaction.
    pub(super) async fn call<T: Send + 'static>(
        &self,
        command: Command,
        f: impl FnOnce(&mut Shard) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        // Counted out before the answer goes (so the caller's next command may spin again),
        // if `f` panics, or when the job is dropped unrun.
        let counted = InFlight::new(Arc::clone(&self.in_flight));
        let job: Job<Shard> = Box::new(move |shard| {
            let result = f(shard);
            drop(counted);
            // The caller may have gone away: nobody to answer then.
            let _ = reply.send(result);
        });
        if self.jobs.send(Message::Run(job)).is_err() {
            return Err(stopped(command));
        }
        if alone && let Some(answer) = spin_answer(&mut answer) {
            return answer.ok_or_else(|| stopped(command))?;
        }
        answer.await.map_err(|_| stopped(command))?
    }

    /// Runs `f` on the shard's thread without waiting for it (nor counting it as a command a
    /// caller waits for): for work nobody waits on, like an access-time refresh.
    pub(super) fn send(&self, f: impl FnOnce(&mut Shard) + Send + 'static) {
        // A stopped thread has nothing left to refresh.
        let _ = self.jobs.send(Message::Run(Box::new(f)));
    }

    /// Asks the thread to finish the jobs already sent and stop, without waiting.
    pub(super) fn stop(&self) {
        // Already stopped is fine.
        let _ = self.jobs.send(Message::Stop(None));
    }

    /// Stops the thread and waits until its connection is closed.
    pub(super) async fn close(&self) {
        let (done, closed) = tokio::sync::oneshot::channel();
        if self.jobs.send(Message::Stop(Some(done))).is_ok() {
            // An error means the thread had already stopped: closed either way.
            let _ = closed.await;
        }
    }
}

/// Calls `poll` until it gives a value, for up to [`SPIN`], yielding the core between
/// calls; `None` when time is up, or as soon as a yield shows that other threads wait for
/// this core (it took longer than [`CONTENDED`]): on a machine that busy, waking a parked
/// thread is cheap and spinning only delays the threads that do the work.
pub(super) fn spin<T>(mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = poll() {
            return Some(value);
        }
        let before = Instant::now();
        if before.duration_since(start) >= SPIN {
            return None;
        }
        std::thread::yield_now();
        if before.elapsed() > CONTENDED {
            return poll();
        }
    }
}

/// [`spin`] on a oneshot: `Some(Some(_))` with the answer, `Some(None)` when the sender was
/// dropped unanswered, `None` when it is not there yet.
pub(super) fn spin_answer<T>(answer: &mut tokio::sync::oneshot::Receiver<T>) -> Option<Option<T>> {
    spin(|| match answer.try_recv() {
        Ok(value) => Some(Some(value)),
        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Some(None),
        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
    })
}

/// One command counted in [`Worker::in_flight`] until dropped.
pub(super) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Wraps a counter the caller has already increased.
    pub(super) const fn new(count: Arc<AtomicUsize>) -> Self {
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

fn stopped(command: Command) -> Error {
    Error::backend(
        "disk",
        command,
        "the disk backend is closed (or its shard thread stopped): set the cache up again",
    )
}
