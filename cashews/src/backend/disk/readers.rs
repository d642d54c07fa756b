//! Point reads (`get`, `exists`, `get_expire`, `get_size`, `get_bits`): on a small pool of
//! reader threads, or with `inline_reads=nowait` on the caller's own thread when their data is
//! in memory. Both read through their own connections, which WAL lets read while a shard's
//! thread writes.
//!
//! # On the caller's thread (`inline_reads=nowait`, opt-in)
//!
//! A read of pages in memory is a few microseconds of SQLite, about as long as handing it to
//! another thread and waiting for the answer awake (which a hop has to do, see
//! [`super::worker::spin`]), but on one core instead of two. So the caller runs it itself, on
//! one of a few connection sets (one per core, each a connection per shard opened on first
//! use), each behind a mutex only ever tried, never waited for: a runtime thread keeps to
//! its own set, so reads on several threads run in parallel (measured on 2 cores: 8 tasks
//! read 1.15 to 1.55 times as fast as one; through reader threads they read slower than one,
//! the wake-ups between threads costing more than the reads). These connections wait for
//! no lock (busy timeout 0), and no disk: every file read they make is refused at once when
//! its data is not in the kernel's page cache (see `nowait.rs`). A read so refused goes to
//! a reader thread, which waits for the disk off the runtime; a read that fails in any
//! other way goes to the shard's thread. A read answered inline spends tokio's cooperative
//! budget, as tokio's own resources do, so a task reading in a loop still yields to the
//! other tasks of its thread (costing one task alone about 5% of its reads per second).
//!
//! # On reader threads
//!
//! By default (`inline_reads=off`) every read goes to a reader thread, one per core (at most
//! 4); with `nowait`, so does a read whose data is not in memory, a read made while every
//! inline set is in use (more threads reading at once than cores), and every read where
//! reads cannot be made without waiting (not Linux, or a filesystem such as tmpfs that
//! refuses `RWF_NOWAIT`; noticed at the first refusal, and logged).
//! A read sent while no other is in flight always goes to the first reader: that thread just
//! answered and is still awake (see [`super::worker::spin`]), so a steady stream of reads
//! never wakes a sleeping thread; reads sent while others are in flight go to the other
//! readers.
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

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::nowait::{self, Refusal};
use super::shard::{READER_BUSY, Shard};
use super::worker::{self, InFlight, Job, serve, spin_answer};
use crate::config::{DiskOptions, InlineReads, OnCorruption};

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
    /// `inline_reads=off`. Only ever `try_lock`ed.
    inline: Box<[parking_lot::Mutex<Vec<Shard>>]>,
    /// Set once the filesystem refused a read without waiting as unsupported: inline reads
    /// are off from then on.
    inline_off: AtomicBool,
    /// Reads sent to the reader threads, for tests.
    #[cfg(test)]
    sent: AtomicUsize,
    /// Inline reads refused because their data was not in memory, for tests.
    #[cfg(test)]
    refused: AtomicUsize,
}

/// The next inline slot a new thread starts from.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The inline set this thread tries first: the last one it got (at first, the next slot
    /// of the process), so threads reading at once settle on sets of their own instead of
    /// trading them (a set used by another core costs its connections' cache lines).
    static SLOT: Cell<usize> = Cell::new(NEXT_SLOT.fetch_add(1, Ordering::Relaxed));
}

impl Readers {
    /// Starts the reader threads, one per core, at most [`MAX_READERS`], and at most
    /// [`READER_CONNECTIONS`] connections in all (one reader from 32 shards up); and makes
    /// the inline sets (with `inline_reads=nowait`), one per core, at most
    /// [`INLINE_CONNECTIONS`] connections in all. Every connection opens on first use.
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
        let sets = if options.inline_reads == InlineReads::Nowait && nowait::install() {
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
            inline_off: AtomicBool::new(false),
            #[cfg(test)]
            sent: AtomicUsize::new(0),
            #[cfg(test)]
            refused: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on this thread, on a free inline connection to shard `index`, with every
    /// file read made without waiting for the disk (see `nowait.rs`); `None` when there is
    /// no free connection (every set in use, `inline_reads=off`, or closed), when a read
    /// was refused because its data is not in memory, or when `f` panicked: the caller then
    /// asks a reader thread.
    pub(super) fn inline<T>(&self, index: usize, f: impl FnOnce(&mut Shard) -> T) -> Option<T> {
        let count = self.inline.len();
        if count == 0 || self.inline_off.load(Ordering::Relaxed) {
            return None;
        }
        let first = SLOT.get();
        let mut shards = (0..count).find_map(|i| {
            let slot = (first + i) % count;
            let set = self.inline[slot].try_lock()?;
            if i > 0 {
                SLOT.set(slot);
            }
            Some(set)
        })?;
        let shard = shards.get_mut(index)?;
        // A panic must not reach the caller's task: the thread path catches it too.
        let run = std::panic::AssertUnwindSafe(|| nowait::without_waiting(|| f(shard)));
        let (out, refused) = std::panic::catch_unwind(run)
            .inspect_err(|_| tracing::error!("cashews disk: an inline read panicked"))
            .ok()??;
        match refused {
            None => Some(out),
            Some(Refusal::NotCached) => {
                #[cfg(test)]
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(shard = index, "cashews disk: data not in memory, read sent");
                None
            }
            Some(Refusal::Unsupported) => {
                if !self.inline_off.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "cashews disk: this filesystem cannot read without waiting \
                         (RWF_NOWAIT), so reads run on reader threads"
                    );
                }
                None
            }
        }
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

    /// Reads sent to the reader threads so far, for tests.
    #[cfg(test)]
    pub(super) fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;

    use super::super::DiskBackend;
    use crate::backend::{Backend, SetOptions};
    use crate::config::{DiskOptions, InlineReads};

    /// A two-shard store at `dir` holding `k` = `v`.
    async fn two_shards_holding_k(dir: &std::path::Path, inline_reads: InlineReads) -> DiskBackend {
        let mut options = DiskOptions::new(dir).with_shards(2);
        options.inline_reads = inline_reads;
        let disk = DiskBackend::new(options).unwrap();
        disk.set("k", Bytes::from_static(b"v"), SetOptions::ttl(None))
            .await
            .unwrap();
        disk
    }

    /// With every inline set in use (more threads reading at once than sets), reads go to
    /// the reader threads and still answer right.
    #[tokio::test]
    async fn reads_go_to_the_reader_threads_when_every_inline_set_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let disk = two_shards_holding_k(dir.path(), InlineReads::Nowait).await;
        let readers = &disk.inner.readers;
        assert!(!readers.inline.is_empty(), "inline reads are on");
        let held: Vec<_> = readers.inline.iter().map(|set| set.lock()).collect();
        assert!(readers.inline(0, |_| ()).is_none(), "every set is in use");
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert!(disk.exists("k").await.unwrap());
        assert!(!disk.exists("missing").await.unwrap());
        assert_eq!(readers.sent(), 3, "the threads read");
        drop(held);
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(readers.sent(), 3, "read inline again");
        disk.close().await.unwrap();
    }

    /// A one-shard store of 300 entries of 2 KB (many pages) at `dir`, written and closed (so
    /// checkpointed into the file), opened again with `inline_reads=nowait`, its shard thread
    /// ready; and the value of every entry.
    #[cfg(target_os = "linux")]
    async fn filled(dir: &std::path::Path) -> (DiskBackend, Bytes) {
        let options = || {
            let mut options = DiskOptions::new(dir).with_shards(1);
            options.inline_reads = InlineReads::Nowait;
            options
        };
        let filler = DiskBackend::new(options()).unwrap();
        let value = Bytes::from(vec![7_u8; 2000]);
        for i in 0..300 {
            filler
                .set(&format!("k:{i}"), value.clone(), SetOptions::ttl(None))
                .await
                .unwrap();
        }
        filler.close().await.unwrap();
        let disk = DiskBackend::new(options()).unwrap();
        disk.incr("warm", 1, None).await.unwrap();
        (disk, value)
    }

    /// Drops the store's file and WAL from the kernel's page cache.
    #[cfg(target_os = "linux")]
    fn drop_cached(dir: &std::path::Path) {
        for file in ["shard-000.sqlite3", "shard-000.sqlite3-wal"] {
            super::nowait::drop_cached(&dir.join(file));
        }
    }

    /// A read whose data is not in memory is not waited for on the caller's thread: it goes
    /// to a reader thread, and answers right; the next read of the same data, in memory now,
    /// runs on the caller's thread again.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_read_of_data_not_in_memory_goes_to_a_reader_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, value) = filled(dir.path()).await;
        // The inline connection opens, and reads from memory.
        assert!(disk.get("k:0").await.unwrap().is_some());
        let readers = &disk.inner.readers;
        assert_eq!(readers.sent(), 0, "read inline");
        drop_cached(dir.path());
        assert_eq!(disk.get("k:299").await.unwrap(), Some(value.clone()));
        assert_eq!(readers.sent(), 1, "a reader thread read");
        assert_eq!(disk.get("k:299").await.unwrap(), Some(value));
        assert_eq!(readers.sent(), 1, "read inline again");
        disk.close().await.unwrap();
    }

    /// The same when the inline connection opens on a file not in memory: the open is
    /// refused, the read goes to a reader thread, and the next read opens the connection
    /// (no waiting a second, as after a real failure to open).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_inline_open_of_a_file_not_in_memory_is_tried_again_at_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, value) = filled(dir.path()).await;
        drop_cached(dir.path());
        let readers = &disk.inner.readers;
        let open = || readers.inline.iter().any(|set| set.lock()[0].is_open());
        assert_eq!(disk.get("k:150").await.unwrap(), Some(value.clone()));
        assert_eq!(readers.sent(), 1, "a reader thread read");
        assert!(!open(), "the inline open was refused");
        assert_eq!(disk.get("k:150").await.unwrap(), Some(value));
        assert_eq!(readers.sent(), 1, "read inline");
        assert!(open(), "the inline connection is open");
        disk.close().await.unwrap();
    }

    /// `get_many` reads keys whose data is in memory on the caller's thread and the others
    /// on their shard's thread: a batch over a file dropped from the page cache answers every
    /// key right, refusing (not waiting for) what is not in memory, then reads it all inline.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn get_many_reads_what_is_in_memory_inline_and_the_rest_on_the_shard_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (disk, value) = filled(dir.path()).await;
        assert!(
            disk.get("k:0").await.unwrap().is_some(),
            "inline connection open"
        );
        drop_cached(dir.path());
        let keys: Vec<String> = (0..300).step_by(30).map(|i| format!("k:{i}")).collect();
        let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
        asked.push("missing");
        let mut expected = vec![Some(value); keys.len()];
        expected.push(None);
        let readers = &disk.inner.readers;
        assert_eq!(disk.get_many(&asked).await.unwrap(), expected);
        let refused = readers.refused.load(Ordering::Relaxed);
        assert!(refused > 0, "data not in memory was refused inline");
        assert_eq!(disk.get_many(&asked).await.unwrap(), expected);
        assert_eq!(
            readers.refused.load(Ordering::Relaxed),
            refused,
            "in memory now: every key read inline"
        );
        assert_eq!(readers.sent(), 0, "no reader thread");
        disk.close().await.unwrap();
    }

    /// While one task rewrites a key 1,500 times (2 KB values, so the WAL checkpoints several
    /// times) and drops the file from the page cache every 100 writes, four tasks on two
    /// runtime threads read it, through inline sets, reader threads and refusals (counted)
    /// alike: every
    /// read answers a value that was written, whole, and no task ever reads an older value
    /// after a newer one.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_during_writes_and_evictions_see_whole_values_in_order() {
        const WRITES: usize = 1500;
        let dir = tempfile::tempdir().unwrap();
        let mut options = DiskOptions::new(dir.path()).with_shards(1);
        options.inline_reads = InlineReads::Nowait;
        let disk = DiskBackend::new(options).unwrap();
        let value = |n: usize| Bytes::from(format!("{n:08}").repeat(256));
        disk.set("k", value(0), SetOptions::ttl(None))
            .await
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (disk, done) = (disk.clone(), Arc::clone(&done));
                tokio::spawn(async move {
                    let (mut last, mut reads) = (0, 0_usize);
                    while !done.load(Ordering::Acquire) {
                        let got = disk.get("k").await.unwrap().unwrap();
                        let n: usize = std::str::from_utf8(&got[..8]).unwrap().parse().unwrap();
                        assert_eq!(got, value(n), "a whole written value");
                        assert!(n >= last, "read {n} after {last}");
                        (last, reads) = (n, reads + 1);
                        tokio::task::yield_now().await;
                    }
                    reads
                })
            })
            .collect();
        for n in 1..=WRITES {
            disk.set("k", value(n), SetOptions::ttl(None))
                .await
                .unwrap();
            if n % 100 == 0 {
                drop_cached(dir.path());
            }
        }
        done.store(true, Ordering::Release);
        for reader in readers {
            assert!(reader.await.unwrap() > 0, "every task read");
        }
        // About 30 per run: the evictions did make inline reads meet data not in memory.
        let refused = disk.inner.readers.refused.load(Ordering::Relaxed);
        assert!(refused > 0, "no inline read was refused");
        assert_eq!(disk.get("k").await.unwrap(), Some(value(WRITES)));
        disk.close().await.unwrap();
    }

    /// A task reading in a loop, every read answered on its own thread, still lets the other
    /// tasks of that thread run: inline reads spend tokio's cooperative budget.
    #[tokio::test(flavor = "current_thread")]
    async fn a_task_reading_in_a_loop_lets_other_tasks_run() {
        let dir = tempfile::tempdir().unwrap();
        let disk = two_shards_holding_k(dir.path(), InlineReads::Nowait).await;
        let ran = Arc::new(AtomicBool::new(false));
        let other = {
            let ran = Arc::clone(&ran);
            tokio::spawn(async move { ran.store(true, Ordering::Relaxed) })
        };
        for _ in 0..1000 {
            assert!(disk.get("k").await.unwrap().is_some());
        }
        assert_eq!(disk.inner.readers.sent(), 0, "read inline");
        assert!(
            ran.load(Ordering::Relaxed),
            "the other task ran during the loop"
        );
        other.await.unwrap();
        disk.close().await.unwrap();
    }

    /// On a filesystem that cannot read without waiting (tmpfs answers `EOPNOTSUPP`), inline
    /// reads turn off for the backend at the first refusal: every read goes to the reader
    /// threads, and answers right.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn reads_go_to_reader_threads_where_the_filesystem_cannot_read_without_waiting() {
        let shm = std::path::Path::new("/dev/shm");
        if !shm.is_dir() {
            let case =
                "reads_go_to_reader_threads_where_the_filesystem_cannot_read_without_waiting";
            let _: Option<()> = cashews_testkit::skip_unless_ci(case, "no tmpfs at /dev/shm");
            return;
        }
        let dir = tempfile::tempdir_in(shm).unwrap();
        let disk = two_shards_holding_k(dir.path(), InlineReads::Nowait).await;
        let readers = &disk.inner.readers;
        assert!(!readers.inline.is_empty(), "inline reads are on");
        for sent in 1..=3 {
            assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
            assert_eq!(readers.sent(), sent, "a reader thread read");
        }
        assert!(
            readers.inline_off.load(Ordering::Relaxed),
            "inline reads turned off"
        );
        disk.close().await.unwrap();
    }

    /// With `inline_reads=off` no read runs on the caller's thread.
    #[tokio::test]
    async fn reads_stay_off_the_caller_with_inline_reads_off() {
        let dir = tempfile::tempdir().unwrap();
        let disk = two_shards_holding_k(dir.path(), InlineReads::Off).await;
        assert!(disk.inner.readers.inline.is_empty());
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(disk.inner.readers.sent(), 1);
        disk.close().await.unwrap();
    }
}
