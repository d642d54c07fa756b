//! Point reads (`get`, `exists`, `get_expire`, `get_size`, `get_bits`): on the caller's own
//! thread when they can, else on a small pool of reader threads. Both read through their own
//! connections, which WAL lets read while a shard's thread writes.
//!
//! # On the caller's thread (`inline_reads=true`)
//!
//! A read of pages in memory is a few microseconds of SQLite, about as long as handing it to
//! another thread and waiting for the answer awake (which a hop has to do, see
//! [`super::worker::spin`]), but on one core instead of two. So the caller runs it itself, on
//! one of a few connection sets (one per core, each a connection per shard opened on first
//! use), each behind a mutex only ever tried, never waited for: a runtime thread keeps to
//! its own set, so reads on several threads run in parallel (measured on 2 cores: 8 tasks
//! read 1.5 times as fast as one; bare rusqlite with two threads on one file reads slower
//! than with one, as SQLite's locks on a file are shared by the threads of a process, which
//! the shards spread). These connections wait for no lock (busy timeout 0): a read that
//! would wait, or fails in any way, goes to the shard's thread.
//!
//! The cost: a read of a page that is not in memory waits for the disk on the caller's
//! thread, 0.1 ms on an SSD, far more on a spinning disk. So it is an option, for a store on
//! a local SSD that fits in memory; by default every read stays off the runtime threads.
//!
//! # On reader threads (the default)
//!
//! With `inline_reads=false`, or when every inline set is in use (more threads reading at
//! once than cores), a read goes to a reader thread, one per core (at most 4). A read sent
//! while no other is in flight always goes to the first reader: that thread just answered
//! and is still awake (see [`super::worker::spin`]), so a steady stream of reads never wakes
//! a sleeping thread; reads sent while others are in flight go to the other readers.
//!
//! # What a reader does not do
//!
//! A reader (inline set or thread) only reads. Everything else stays with the shard's thread:
//! - any failure (a file that cannot be opened, corruption, a wrong type, a lock): the
//!   command is run again on the shard's thread, which owns the full fault handling (errors
//!   naming the file, `on_corruption=rebuild`), so readers answer only clean reads;
//! - the access-time refresh a `get` may owe (a write, at most once a second per key) is sent
//!   to the shard's thread without waiting for it.
//!
//! A reader notices a shard file replaced under its name and reopens it, as a shard thread
//! does (the same [`Shard`] code), within a millisecond (a shard thread checks before every
//! command; a reader at most once a millisecond, as the check costs a third of a read). It
//! opens only files the shard thread created, without the schema step or the write lock; a
//! shard it cannot open is left to the shard's thread for a second before it tries again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::shard::{READER_BUSY, Shard};
use super::worker::{self, InFlight, Job, serve, spin_answer};
use crate::config::{DiskOptions, OnCorruption};

/// What a reader receives: jobs on its shards, indexed by shard.
type Message = worker::Message<[Shard]>;

/// The most reader threads a backend starts, whatever the core count: reads are short, and
/// each reader holds a connection (three file descriptors) per shard.
const MAX_READERS: usize = 4;

/// The most reader-thread connections a backend opens in all (fewer readers with many
/// shards): 32 connections are 96 file descriptors beside the shard threads' own.
const READER_CONNECTIONS: usize = 32;

/// The most inline connections a backend opens in all (fewer sets with many shards), beside
/// the reader threads' own: each set opens a shard's connection only once it reads that shard.
const INLINE_CONNECTIONS: usize = 64;

/// The readers of one backend: inline connection sets, and reader threads.
///
/// The threads have two queues: a read sent while no other read is in flight goes to the
/// first reader's own queue, so a stream of one read at a time always finds the same thread,
/// awake; a read sent while others are in flight goes to the queue the other readers share.
/// (Measured worse with 8 concurrent tasks on 2 cores: sending to the first reader whenever
/// it alone is idle, 87 K reads/s against 104 to 146 K; and, with 1,024 reads per run,
/// spreading them over both readers by turn or by shard, 108 to 155 K against about 200 K.)
/// One shared queue for all would wake a sleeping reader on every send (measured: 9.4 µs per
/// get hit with two readers on one queue, 7 µs with one reader alone).
#[derive(Debug)]
pub(super) struct Readers {
    first: crossbeam_channel::Sender<Message>,
    /// `None` with a single reader.
    others: Option<crossbeam_channel::Sender<Message>>,
    count: usize,
    /// Reads sent and not answered yet.
    in_flight: Arc<AtomicUsize>,
    /// Connection sets for reads run on the caller's own thread, one per core; none with
    /// `inline_reads=false`. Only ever `try_lock`ed.
    inline: Box<[parking_lot::Mutex<Vec<Shard>>]>,
    /// Reads sent to the reader threads, for tests.
    #[cfg(test)]
    sent: AtomicUsize,
}

/// The next inline slot a new thread starts from.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The inline slot this thread tries first: each runtime thread keeps to its own.
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
}

impl Readers {
    /// Starts the reader threads, one per core, at most [`MAX_READERS`], and at most
    /// [`READER_CONNECTIONS`] connections in all (one reader from 32 shards up); and makes
    /// the inline sets (with `inline_reads`), one per core, at most [`INLINE_CONNECTIONS`]
    /// connections in all. Every connection opens on first use.
    pub(super) fn spawn(options: &DiskOptions) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let count = cores
            .min(MAX_READERS)
            .min((READER_CONNECTIONS / options.shard_count()).max(1));
        // A reader never quarantines a file: on any failure the shard's thread runs the
        // command again and applies `on_corruption` itself.
        let mut reading = options.clone();
        reading.on_corruption = OnCorruption::Error;
        let (first, inbox) = crossbeam_channel::unbounded::<Message>();
        start(&reading, 0, inbox)?;
        let others = if count > 1 {
            let (others, inbox) = crossbeam_channel::unbounded::<Message>();
            for n in 1..count {
                start(&reading, n, inbox.clone())?;
            }
            Some(others)
        } else {
            None
        };
        let sets = if options.inline_reads {
            cores.min((INLINE_CONNECTIONS / options.shard_count()).max(1))
        } else {
            0
        };
        let inline = (0..sets)
            .map(|_| {
                parking_lot::Mutex::new(
                    (0..reading.shard_count())
                        .map(|index| Shard::reader(&reading, index, Duration::ZERO))
                        .collect(),
                )
            })
            .collect();
        Ok(Self {
            first,
            others,
            count,
            in_flight: Arc::new(AtomicUsize::new(0)),
            inline,
            #[cfg(test)]
            sent: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on this thread, on a free inline connection to shard `index`; `None` when
    /// there is none (every set in use, `inline_reads=false`, or closed) or `f` panicked
    /// (the caller then asks a reader thread, as when `f` panics there).
    pub(super) fn inline<T>(&self, index: usize, f: impl FnOnce(&mut Shard) -> T) -> Option<T> {
        let count = self.inline.len();
        if count == 0 {
            return None;
        }
        let first = SLOT.with(|slot| *slot);
        let mut shards = (0..count).find_map(|i| self.inline[(first + i) % count].try_lock())?;
        let shard = shards.get_mut(index)?;
        // A panic must not reach the caller's task: the thread path catches it too.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(shard)))
            .inspect_err(|_| tracing::error!("cashews disk: an inline read panicked"))
            .ok()
    }

    /// Runs `f` on the reader connection of shard `index`; `None` when the readers are
    /// stopped or `f` panicked (the caller then asks the shard's thread).
    pub(super) async fn call<T: Send + 'static>(
        &self,
        index: usize,
        f: impl FnOnce(&mut Shard) -> T + Send + 'static,
    ) -> Option<T> {
        #[cfg(test)]
        self.sent.fetch_add(1, Ordering::Relaxed);
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        // Alone: the first reader takes the read (it is most likely awake, having just
        // answered the last one); otherwise the other readers do.
        let queue = match &self.others {
            Some(others) if before > 0 => others,
            _ => &self.first,
        };
        // Counted out when the read is done, or when the job is dropped unrun.
        let counted = InFlight::new(Arc::clone(&self.in_flight));
        let job: Job<[Shard]> = Box::new(move |shards| {
            let Some(shard) = shards.get_mut(index) else {
                return;
            };
            let result = f(shard);
            drop(counted);
            let _ = reply.send(result);
        });
        // Alone: the answer is a read away, worth waiting for awake. With other reads in
        // flight this task is one of many, and its runtime thread is better spent on them.
        let idle = before == 0;
        if queue.send(Message::Run(job)).is_err() {
            // The unsent job is dropped here, which counts it out.
            return None;
        }
        if idle && let Some(answer) = spin_answer(&mut answer) {
            return answer;
        }
        answer.await.ok()
    }

    /// Asks every reader to stop, without waiting.
    pub(super) fn stop(&self) {
        for queue in self.queues() {
            let _ = queue.send(Message::Stop(None));
        }
    }

    /// The queue of each reader (the shared one once per reader on it), so one `Stop` per
    /// entry stops them all.
    fn queues(&self) -> impl Iterator<Item = &crossbeam_channel::Sender<Message>> {
        std::iter::once(&self.first).chain(
            self.others
                .iter()
                .flat_map(|others| std::iter::repeat_n(others, self.count - 1)),
        )
    }

    /// Stops every reader and waits until their connections are closed.
    pub(super) async fn close(&self) {
        // No set left: later reads go to the stopped threads, which refuse them clearly.
        for set in &self.inline {
            set.lock().clear();
        }
        let mut closed = Vec::with_capacity(self.count);
        for queue in self.queues() {
            let (done, wait) = tokio::sync::oneshot::channel();
            if queue.send(Message::Stop(Some(done))).is_ok() {
                closed.push(wait);
            }
        }
        // An error means that reader had already stopped: closed either way.
        futures_util::future::join_all(closed).await;
    }
}

/// Starts reader `n` on `inbox`, with a connection to every shard of `options` opened on
/// first use.
fn start(
    options: &DiskOptions,
    n: usize,
    inbox: crossbeam_channel::Receiver<Message>,
) -> std::io::Result<()> {
    let mut shards: Vec<Shard> = (0..options.shard_count())
        .map(|index| Shard::reader(options, index, READER_BUSY))
        .collect();
    let name = format!("cashews-disk-read-{n}");
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let done = serve(&mut shards[..], &inbox, &name);
            // Closes this reader's connections.
            drop(shards);
            if let Some(done) = done {
                let _ = done.send(());
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use bytes::Bytes;

    use super::super::DiskBackend;
    use crate::backend::{Backend, SetOptions};
    use crate::config::DiskOptions;

    /// With every inline set in use (more threads reading at once than sets), reads go to
    /// the reader threads and still answer right.
    #[tokio::test]
    async fn reads_go_to_the_reader_threads_when_every_inline_set_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = DiskOptions::new(dir.path()).with_shards(2);
        options.inline_reads = true;
        let disk = DiskBackend::new(options).unwrap();
        disk.set("k", Bytes::from_static(b"v"), SetOptions::ttl(None))
            .await
            .unwrap();
        let readers = &disk.inner.readers;
        assert!(!readers.inline.is_empty(), "inline reads are on");
        let held: Vec<_> = readers.inline.iter().map(|set| set.lock()).collect();
        assert!(readers.inline(0, |_| ()).is_none(), "every set is in use");
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert!(disk.exists("k").await.unwrap());
        assert!(!disk.exists("missing").await.unwrap());
        assert_eq!(readers.sent.load(Ordering::Relaxed), 3, "the threads read");
        drop(held);
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(readers.sent.load(Ordering::Relaxed), 3, "read inline again");
        disk.close().await.unwrap();
    }

    /// By default no read runs on the caller's thread.
    #[tokio::test]
    async fn reads_stay_off_the_caller_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskBackend::new(DiskOptions::new(dir.path()).with_shards(2)).unwrap();
        disk.set("k", Bytes::from_static(b"v"), SetOptions::ttl(None))
            .await
            .unwrap();
        assert!(disk.inner.readers.inline.is_empty());
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(disk.inner.readers.sent.load(Ordering::Relaxed), 1);
        disk.close().await.unwrap();
    }
}
