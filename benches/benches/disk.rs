//! The disk backend (`disk://`) against bare rusqlite prepared statements on a file with the
//! same settings, in the same groups so ratios come from one run:
//! `cargo bench -p cashews-benches --bench disk -- --warm-up-time 1 --measurement-time 3`.
//!
//! Files live in `<temp dir>/cashews-bench-disk-<pid>/`, removed at the end.
//!
//! - `disk/{get_hit,set,incr}`: one command at a time, so latency per command. Bare rusqlite
//!   runs the backend's statements (same schema, same SQL, same transactions) twice: called
//!   directly on the bench thread, and through the same hop as the backend (a thread owning
//!   the connection, fed boxed jobs by a std channel, answering through a tokio oneshot), so
//!   the table shows what the hop costs and what the backend adds on top of it. The hop is
//!   measured twice: as the backend does it (`through_hop`: the caller spins up to 50 µs for
//!   the answer before parking) and parking at once (`through_parking_hop`), to show what the
//!   spin saves.
//!   `backend_get` is the backend as configured by default (`inline_reads=off`: every read
//!   through a reader thread); `backend_get_nowait` is the backend with
//!   `inline_reads=nowait` (a read of data in memory runs on the caller's thread, no hop).
//! - `disk/parallel_get`: the same 1,024 gets by 1 task or by 8 concurrent tasks on a
//!   2-worker multi-thread runtime, with reads on reader threads (the default) or on the
//!   caller's thread (`inline_reads=nowait`), and by bare rusqlite on 1 or 2 OS threads with
//!   a connection each,
//!   the ceiling (criterion reports elements per second).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cashews::Cache;
use cashews::backend::{Backend, DiskBackend, SetOptions};
use cashews::config::{DiskOptions, InlineReads};
use cashews_benches::{User, runtime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Statement, params};

const KEYS: u64 = 1_000;
const SHARDS: usize = 8;
const TTL: Duration = Duration::from_secs(3600);
const PARALLEL_GETS: u64 = 1024;

const ROW: &str = "SELECT kind, value, expires_at, accessed_at FROM entries WHERE key = ?1";
const UPDATE: &str = "UPDATE entries SET kind = ?2, value = ?3, expires_at = ?4, \
     accessed_at = ?5, size = ?6 WHERE key = ?1";
const INSERT: &str = "INSERT INTO entries \
     (key, kind, value, expires_at, accessed_at, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// `Kind::Bytes` in the backend's encoding.
const KIND_BYTES: i64 = 0;

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("cashews-bench-disk-{}", std::process::id()))
}

/// A fresh folder for one bench function.
fn fresh(name: &str) -> PathBuf {
    let dir = root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key(i: u64) -> String {
    format!("k:{i}")
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn value() -> Bytes {
    Bytes::from(rmp_serde::to_vec(&User::sample(7)).unwrap())
}

/// The backend under test: `shards=8`, every other option at its default.
fn backend(dir: &Path) -> DiskBackend {
    DiskBackend::new(DiskOptions::new(dir.join("backend")).with_shards(SHARDS)).unwrap()
}

/// A second backend on the same folder with `inline_reads=nowait`. Built before any other
/// backend of the process, as its docs ask: it changes SQLite's `pread` for the process.
fn nowait_backend(dir: &Path) -> DiskBackend {
    let mut options = DiskOptions::new(dir.join("backend")).with_shards(SHARDS);
    options.inline_reads = InlineReads::Nowait;
    DiskBackend::new(options).unwrap()
}

/// A `Cache` on `disk://?directory=…&shards=8`.
fn cache(dir: &Path) -> Cache {
    let cache = Cache::new();
    let url = format!(
        "disk://?directory={}&shards={SHARDS}",
        dir.join("cache").display()
    );
    cache.setup(&url).unwrap();
    cache
}

/// A connection opened as the backend opens its shards: same flags, busy timeout (the 5 s
/// default), WAL, `synchronous=NORMAL`, on a one-file store the backend itself created, so
/// the schema and its triggers are the backend's own.
fn open(dir: &Path) -> Connection {
    let store = dir.join("bare");
    let creator = DiskBackend::new(DiskOptions::new(store.clone()).with_shards(0)).unwrap();
    runtime().block_on(creator.exists("created")).unwrap();
    drop(creator);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(store.join("shard-000.sqlite3"), flags).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn
}

/// The backend's statements, prepared once.
struct Prepared<'c> {
    row: Statement<'c>,
    update: Statement<'c>,
    insert: Statement<'c>,
    begin: Statement<'c>,
    commit: Statement<'c>,
}

impl<'c> Prepared<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            row: conn.prepare(ROW).unwrap(),
            update: conn.prepare(UPDATE).unwrap(),
            insert: conn.prepare(INSERT).unwrap(),
            begin: conn.prepare("BEGIN IMMEDIATE").unwrap(),
            commit: conn.prepare("COMMIT").unwrap(),
        }
    }

    /// The live value of `key`, as the backend's `get` reads it.
    fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let now = now_ms();
        self.row
            .query_row([key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()
            .unwrap()
            .filter(|(kind, _, at, _)| *kind == KIND_BYTES && at.is_none_or(|at| at > now))
            .map(|(_, value, _, _)| value)
    }

    /// The backend's upsert: UPDATE, then INSERT when there was no row.
    fn put(&mut self, key: &str, value: &[u8], expires_at: Option<i64>, now: i64) {
        let size = i64::try_from(key.len() * 2 + value.len()).unwrap() + 32;
        let args = params![key, KIND_BYTES, value, expires_at, now, size];
        if self.update.execute(args).unwrap() == 0 {
            self.insert.execute(args).unwrap();
        }
    }

    /// `set` with a TTL: `BEGIN IMMEDIATE; UPDATE (or INSERT); COMMIT`.
    fn set(&mut self, key: &str, value: &[u8], ttl: Duration) {
        let now = now_ms();
        self.begin.execute([]).unwrap();
        let at = now + i64::try_from(ttl.as_millis()).unwrap();
        self.put(key, value, Some(at), now);
        self.commit.execute([]).unwrap();
    }

    /// `incr`: `BEGIN IMMEDIATE; SELECT; UPDATE (or INSERT); COMMIT`.
    fn incr(&mut self, key: &str, by: i64) -> i64 {
        let now = now_ms();
        self.begin.execute([]).unwrap();
        let row = self
            .row
            .query_row([key], |r| {
                Ok((r.get::<_, Vec<u8>>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .optional()
            .unwrap()
            .filter(|(_, at)| at.is_none_or(|at| at > now));
        let (current, expires_at) = row.map_or((0, None), |(bytes, at)| {
            (std::str::from_utf8(&bytes).unwrap().parse().unwrap(), at)
        });
        let next: i64 = current + by;
        self.put(key, next.to_string().as_bytes(), expires_at, now);
        self.commit.execute([]).unwrap();
        next
    }
}

type Job = Box<dyn for<'c> FnOnce(&mut Prepared<'c>) + Send>;

/// How long the backend's caller spins for its answer before parking (its `worker::SPIN`).
const SPIN: Duration = Duration::from_micros(50);
/// A yield this long means the machine is busy: park (the backend's `worker::CONTENDED`).
const CONTENDED: Duration = Duration::from_micros(5);

/// Bare rusqlite behind the backend's hop: a thread owns the connection and its prepared
/// statements, jobs arrive on a std channel, answers go back through a tokio oneshot. With
/// `spin`, the caller polls for the answer for up to [`SPIN`] before parking (sooner when a
/// yield shows a busy machine), as the backend does for a caller alone on its shard (always
/// the case here: one command at a time); without, it parks at once (the backend before it
/// learnt to spin).
struct Hop {
    jobs: mpsc::Sender<Job>,
    spin: bool,
}

impl Hop {
    fn spawn(dir: PathBuf, spin: bool) -> (Self, std::thread::JoinHandle<()>) {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            let conn = open(&dir);
            let mut prepared = Prepared::new(&conn);
            loop {
                let next = if spin {
                    // As the backend's shard threads: wait for the next job awake first.
                    let start = Instant::now();
                    loop {
                        match inbox.try_recv() {
                            Ok(job) => break Some(job),
                            Err(mpsc::TryRecvError::Disconnected) => return,
                            Err(mpsc::TryRecvError::Empty) => {}
                        }
                        let before = Instant::now();
                        if before.duration_since(start) >= SPIN {
                            break None;
                        }
                        std::thread::yield_now();
                        if before.elapsed() > CONTENDED {
                            break None;
                        }
                    }
                } else {
                    None
                };
                let Some(job) = next.or_else(|| inbox.recv().ok()) else {
                    return;
                };
                job(&mut prepared);
            }
        });
        (Self { jobs, spin }, thread)
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl for<'c> FnOnce(&mut Prepared<'c>) -> T + Send + 'static,
    ) -> T {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |prepared| {
            let _ = reply.send(f(prepared));
        });
        self.jobs.send(job).unwrap();
        if self.spin {
            let start = Instant::now();
            loop {
                if let Ok(answer) = answer.try_recv() {
                    return answer;
                }
                let before = Instant::now();
                if before.duration_since(start) >= SPIN {
                    break;
                }
                std::thread::yield_now();
                if before.elapsed() > CONTENDED {
                    break;
                }
            }
        }
        answer.await.unwrap()
    }
}

/// Runs `op` `iters` times inside one `block_on` (so the runtime's entry cost is not
/// counted) and returns the elapsed time.
macro_rules! timed {
    ($rt:expr, $iters:expr, |$n:ident| $op:expr) => {{
        $rt.block_on(async {
            let start = Instant::now();
            for $n in 0..$iters {
                black_box($op);
            }
            start.elapsed()
        })
    }};
}

/// The four contenders of one group, filled with the same `KEYS` entries.
struct Fixture {
    dir: PathBuf,
    ours: DiskBackend,
    nowait: DiskBackend,
    cache: Cache,
    conn: Connection,
    hop: Hop,
    parked: Hop,
    threads: [std::thread::JoinHandle<()>; 2],
}

impl Fixture {
    fn new(rt: &tokio::runtime::Runtime, name: &str) -> Self {
        let dir = fresh(name);
        let nowait = nowait_backend(&dir);
        let ours = backend(&dir);
        let cache = cache(&dir);
        let conn = open(&dir);
        let (hop, thread) = Hop::spawn(dir.clone(), true);
        let (parked, parked_thread) = Hop::spawn(dir.clone(), false);
        let value = value();
        rt.block_on(async {
            for i in 0..KEYS {
                ours.set(&key(i), value.clone(), SetOptions::ttl(Some(TTL)))
                    .await
                    .unwrap();
                cache.set(&key(i), &User::sample(7), TTL).await.unwrap();
            }
        });
        let mut prepared = Prepared::new(&conn);
        for i in 0..KEYS {
            prepared.set(&key(i), &value, TTL);
        }
        drop(prepared);
        Self {
            dir,
            ours,
            nowait,
            cache,
            conn,
            hop,
            parked,
            threads: [thread, parked_thread],
        }
    }

    /// The two hops, named for their bench functions.
    fn hops(&self) -> [(&'static str, &Hop); 2] {
        [
            ("through_hop", &self.hop),
            ("through_parking_hop", &self.parked),
        ]
    }

    /// Closes every connection, then removes the folder.
    fn close(self, rt: &tokio::runtime::Runtime) {
        rt.block_on(async {
            self.ours.close().await.unwrap();
            self.nowait.close().await.unwrap();
            self.cache.close().await.unwrap();
        });
        drop(self.hop);
        drop(self.parked);
        for thread in self.threads {
            thread.join().unwrap();
        }
        drop(self.conn);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn get_hit(c: &mut Criterion) {
    let rt = runtime();
    let f = Fixture::new(&rt, "get_hit");
    let mut prepared = Prepared::new(&f.conn);
    let mut group = c.benchmark_group("disk/get_hit");
    group.bench_function(BenchmarkId::new("cashews", "backend_get"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| f.ours.get(&key(n % KEYS)).await.unwrap()));
    });
    group.bench_function(BenchmarkId::new("cashews", "backend_get_nowait"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| f.nowait.get(&key(n % KEYS)).await.unwrap()));
    });
    group.bench_function(BenchmarkId::new("cashews", "cache_get_typed"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| f
                .cache
                .get::<User>(&key(n % KEYS))
                .await
                .unwrap()
                .unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("rusqlite", "direct"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| prepared.get(&key(n % KEYS)).unwrap()));
    });
    for (name, hop) in f.hops() {
        group.bench_function(BenchmarkId::new("rusqlite", name), |b| {
            b.iter_custom(|iters| {
                timed!(rt, iters, |n| {
                    let key = key(n % KEYS);
                    hop.call(move |p| p.get(&key).unwrap()).await
                })
            });
        });
    }
    group.finish();
    drop(prepared);
    f.close(&rt);
}

fn set(c: &mut Criterion) {
    let rt = runtime();
    let f = Fixture::new(&rt, "set");
    let mut prepared = Prepared::new(&f.conn);
    let value = value();
    let user = User::sample(7);
    let mut group = c.benchmark_group("disk/set");
    group.bench_function(BenchmarkId::new("cashews", "backend_set"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| f
                .ours
                .set(&key(n % KEYS), value.clone(), SetOptions::ttl(Some(TTL)))
                .await
                .unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("cashews", "cache_set_typed"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| f
                .cache
                .set(&key(n % KEYS), &user, TTL)
                .await
                .unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("rusqlite", "direct"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| prepared.set(&key(n % KEYS), &value, TTL)));
    });
    for (name, hop) in f.hops() {
        group.bench_function(BenchmarkId::new("rusqlite", name), |b| {
            b.iter_custom(|iters| {
                timed!(rt, iters, |n| {
                    let key = key(n % KEYS);
                    let value = value.clone();
                    hop.call(move |p| p.set(&key, &value, TTL)).await;
                })
            });
        });
    }
    group.finish();
    drop(prepared);
    f.close(&rt);
}

fn incr(c: &mut Criterion) {
    let rt = runtime();
    let f = Fixture::new(&rt, "incr");
    let mut prepared = Prepared::new(&f.conn);
    let mut group = c.benchmark_group("disk/incr");
    group.bench_function(BenchmarkId::new("cashews", "backend_incr"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| f
                .ours
                .incr(&format!("n:{}", n % KEYS), 1, Some(TTL))
                .await
                .unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("cashews", "cache_incr"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| f
                .cache
                .incr(&format!("n:{}", n % KEYS))
                .await
                .unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("rusqlite", "direct"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| prepared.incr(&format!("n:{}", n % KEYS), 1)));
    });
    for (name, hop) in f.hops() {
        group.bench_function(BenchmarkId::new("rusqlite", name), |b| {
            b.iter_custom(|iters| {
                timed!(rt, iters, |n| {
                    let key = format!("n:{}", n % KEYS);
                    hop.call(move |p| p.incr(&key, 1)).await
                })
            });
        });
    }
    group.finish();
    drop(prepared);
    f.close(&rt);
}

fn parallel_get(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = fresh("parallel_get");
    // The same store read on the caller's thread when its data is in memory.
    let nowait = nowait_backend(&dir);
    let ours = backend(&dir);
    let value = value();
    rt.block_on(async {
        for i in 0..KEYS {
            ours.set(&key(i), value.clone(), SetOptions::ttl(Some(TTL)))
                .await
                .unwrap();
        }
    });
    let mut group = c.benchmark_group("disk/parallel_get");
    group.throughput(Throughput::Elements(PARALLEL_GETS));
    for (name, tasks, ours) in [
        ("cashews", 1, &ours),
        ("cashews", 8, &ours),
        ("cashews_nowait", 1, &nowait),
        ("cashews_nowait", 8, &nowait),
    ] {
        group.bench_function(BenchmarkId::new(name, format!("{tasks}_tasks")), |b| {
            b.iter_custom(|iters| {
                timed!(rt, iters, |n| {
                    let per_task = PARALLEL_GETS / tasks;
                    let handles: Vec<_> = (0..tasks)
                        .map(|t| {
                            let ours = ours.clone();
                            tokio::spawn(async move {
                                for j in 0..per_task {
                                    let i = (n * PARALLEL_GETS + t * per_task + j) % KEYS;
                                    black_box(ours.get(&key(i)).await.unwrap().unwrap());
                                }
                            })
                        })
                        .collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                })
            });
        });
    }
    // The ceiling: bare rusqlite on 1 or 2 OS threads, each with its own connection to one
    // file, the same reads split between them (SQLite's own locks are what two readers of
    // one process share).
    let mut conns = [open(&dir), open(&dir)];
    let mut prepared = Prepared::new(&conns[0]);
    for i in 0..KEYS {
        prepared.set(&key(i), &value, TTL);
    }
    drop(prepared);
    for threads in [1, 2] {
        group.bench_function(
            BenchmarkId::new("rusqlite", format!("{threads}_threads")),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for n in 0..iters {
                        let per_thread = PARALLEL_GETS / threads;
                        std::thread::scope(|scope| {
                            for (t, conn) in conns.iter_mut().take(threads as usize).enumerate() {
                                scope.spawn(move || {
                                    let mut prepared = Prepared::new(&*conn);
                                    for j in 0..per_thread {
                                        let t = t as u64;
                                        let i = (n * PARALLEL_GETS + t * per_thread + j) % KEYS;
                                        black_box(prepared.get(&key(i)).unwrap());
                                    }
                                });
                            }
                        });
                    }
                    start.elapsed()
                });
            },
        );
    }
    group.finish();
    drop(conns);
    rt.block_on(async {
        ours.close().await.unwrap();
        nowait.close().await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes the bench folder.
fn cleanup(_: &mut Criterion) {
    let _ = std::fs::remove_dir_all(root());
}

criterion_group!(benches, get_hit, set, incr, parallel_get, cleanup);
criterion_main!(benches);
