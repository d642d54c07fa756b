//! How SQLite work leaves the async runtime: one worker thread per shard, fed by a channel,
//! answering through a oneshot.
//!
//! Why a thread per shard rather than `spawn_blocking` with a connection pool:
//!
//! - SQLite has one writer per file. Several connections to one shard in one process would
//!   only queue on the file lock inside SQLite's busy handler (sleeping 1 to 100 ms between
//!   tries), where a channel queues them in order at no cost. Reads are microseconds on a
//!   warm page cache, so running them one at a time per shard costs little, and different
//!   shards run in parallel.
//! - The thread owns its `Connection` (`Send`, not `Sync`): no mutex, no pool, and its
//!   prepared-statement cache stays warm.
//! - A slow or stalled disk blocks that shard's thread only: runtime threads never run SQLite,
//!   and `spawn_blocking`'s pool cannot fill up with threads all waiting on one file lock.
//!
//! The cost is one idle OS thread per shard (8 by default). A thread ends when the backend's
//! last handle is dropped or on `close`, closing its connection (which checkpoints the WAL).

use std::sync::mpsc;

use super::shard::Shard;
use crate::command::Command;
use crate::error::{Error, Result};

type Job = Box<dyn FnOnce(&mut Shard) + Send>;

enum Message {
    Run(Job),
    /// Stop after the jobs sent before; answer once the connection is closed.
    Stop(Option<tokio::sync::oneshot::Sender<()>>),
}

/// The handle to one shard's thread.
#[derive(Debug)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Run(_) => "Run",
            Self::Stop(_) => "Stop",
        })
    }
}

impl Worker {
    /// Starts the thread of `shard`, which opens its file at once.
    pub(super) fn spawn(mut shard: Shard, index: usize) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::channel::<Message>();
        std::thread::Builder::new()
            .name(format!("cashews-disk-{index}"))
            .spawn(move || {
                shard.warm_up();
                let done = loop {
                    match inbox.recv() {
                        Ok(Message::Run(job)) => {
                            // A panic in a job must not take the shard down with it: the
                            // caller's oneshot is dropped (it sees "stopped") and the thread
                            // goes on.
                            let run = std::panic::AssertUnwindSafe(|| job(&mut shard));
                            if std::panic::catch_unwind(run).is_err() {
                                tracing::error!(shard = index, "cashews disk: a command panicked");
                            }
                        }
                        Ok(Message::Stop(done)) => break done,
                        // Every handle is gone.
                        Err(_) => break None,
                    }
                };
                // Closes the connection (the last one on a file checkpoints the WAL).
                drop(shard);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            })?;
        Ok(Self { jobs })
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
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |shard| {
            // The caller may have gone away: nobody to answer then.
            let _ = reply.send(f(shard));
        });
        if self.jobs.send(Message::Run(job)).is_err() {
            return Err(stopped(command));
        }
        answer.await.map_err(|_| stopped(command))?
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

fn stopped(command: Command) -> Error {
    Error::backend(
        "disk",
        command,
        "the disk backend is closed (or its shard thread stopped): set the cache up again",
    )
}
