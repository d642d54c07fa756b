//! Point reads (`get`, `exists`, `get_expire`, `get_size`, `get_bits`) on a small pool of
//! reader threads, each with its own read connection to every shard.
//!
//! The cost: one thread per reader, and a connection (three file descriptors) per reader and
//! shard, at most 32 connections in all.
//!
//! Why not on the shard threads, as writes: a read is a few microseconds of SQLite, but
//! waking the one thread that owns its shard (8 of them, mostly asleep) costs 10 to 50 µs on
//! a VM, several times the read. The pool has as many threads as cores (at most 4), and a
//! read sent while no other is in flight always goes to the first reader, whatever its
//! shard: that thread just answered and is still awake (see [`super::worker::spin`]), so a
//! steady stream of reads never wakes a sleeping thread. Reads sent while others are in
//! flight go to the other readers. Readers run in parallel with each other and with the
//! writer (WAL: readers never wait for the writer).
//!
//! A reader only reads. Everything else stays with the shard's thread:
//! - any failure (a file that cannot be opened, corruption, a wrong type): the command is run
//!   again on the shard's thread, which owns the full fault handling (errors naming the
//!   file, `on_corruption=rebuild`), so readers answer only clean reads;
//! - the access-time refresh a `get` may owe (a write, at most once a second per key) is sent
//!   to the shard's thread without waiting for it.
//!
//! A reader notices a shard file replaced under its name and reopens it, as a shard thread
//! does (the same [`Shard`] code), within a millisecond (a shard thread checks before every
//! command; a reader at most once a millisecond, as the check costs a third of a read). It
//! opens only files the shard thread created, without the schema step or the write lock and
//! with a 10 ms busy timeout, so it waits for nobody longer than that (WAL readers don't wait
//! for writers); a shard it cannot open is left to the shard's thread for a second before it
//! tries again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::shard::Shard;
use super::worker::{self, InFlight, Job, serve, spin_answer};
use crate::config::{DiskOptions, OnCorruption};

/// What a reader receives: jobs on its shards, indexed by shard.
type Message = worker::Message<[Shard]>;

/// The most reader threads a backend starts, whatever the core count: reads are short, and
/// each reader holds a connection (three file descriptors) per shard.
const MAX_READERS: usize = 4;

/// The most reader connections a backend opens in all (fewer readers with many shards):
/// 32 connections are 96 file descriptors beside the shard threads' own.
const READER_CONNECTIONS: usize = 32;

/// The reader pool of one backend.
///
/// Two queues: a read sent while no other read is in flight goes to the first reader's own
/// queue, so a stream of one read at a time always finds the same thread, awake; a read sent
/// while others are in flight goes to the queue the other readers share. (Sending to the
/// first reader whenever it alone is idle measured worse with 8 concurrent tasks on 2 cores:
/// 87 K reads/s against 104 to 146 K.) One shared queue for
/// all would wake a sleeping reader on every send (measured: 9.4 µs per get hit with two
/// readers on one queue, 7 µs with one reader alone).
#[derive(Debug)]
pub(super) struct Readers {
    first: crossbeam_channel::Sender<Message>,
    /// `None` with a single reader.
    others: Option<crossbeam_channel::Sender<Message>>,
    count: usize,
    /// Reads sent and not answered yet.
    in_flight: Arc<AtomicUsize>,
}

impl Readers {
    /// Starts the readers: one per core, at most [`MAX_READERS`], and at most
    /// [`READER_CONNECTIONS`] connections in all (one reader from 32 shards up). Their
    /// connections open on first use.
    pub(super) fn spawn(options: &DiskOptions) -> std::io::Result<Self> {
        let count = std::thread::available_parallelism()
            .map_or(1, usize::from)
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
        Ok(Self {
            first,
            others,
            count,
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` on the reader connection of shard `index`; `None` when the readers are
    /// stopped or `f` panicked (the caller then asks the shard's thread).
    pub(super) async fn call<T: Send + 'static>(
        &self,
        index: usize,
        f: impl FnOnce(&mut Shard) -> T + Send + 'static,
    ) -> Option<T> {
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
        .map(|index| Shard::reader(options, index))
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
