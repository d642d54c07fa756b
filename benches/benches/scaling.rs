//! Do the hit paths scale with cores? Every hit path run with 1 thread and with 2 threads, next
//! to a pure-arithmetic ceiling, in one process; one command prints the table:
//!
//! ```text
//! cargo bench -p cashews-benches --bench scaling --locked
//! ROUNDS=21 ITERS=400000 cargo bench -p cashews-benches --bench scaling --locked   # longer
//! PATHS=ceiling,mem cargo bench -p cashews-benches --bench scaling --locked         # some paths
//! ```
//!
//! What it runs: each *path* is one way to read a cached value, run on one hot key and on 1,000
//! keys: the `#[cashews::cache]` decorated hit, `Cache::get::<User>` and `Cache::get_shared::<User>`
//! on `mem://`, the same three through the client-side tier of `redis://…?client_side=true`
//! (skipped, with the reason printed, when Redis does not answer), and two peers for context:
//! quick_cache's `get` (the map `mem://` sits on) and moka's `get`. The *ceiling* is a loop of
//! integer operations touching no shared memory: what two threads can do at best here.
//!
//! How it measures: a trial runs a path on `T` threads (`std::thread`, each with its own
//! current-thread Tokio runtime), each thread doing `ITERS` operations after a common start
//! (a barrier); its throughput is `T × ITERS` over the time from the first thread's start to the
//! last one's end. A warm-up trial of each path runs first and is not counted. Then `ROUNDS`
//! rounds run every path once with 1 thread and once with 2, the order of the paths rotated
//! every round and the 1T/2T order flipped every round, so machine noise lands on all alike.
//! A path's figure is the per-round ratio of throughputs 2T/1T, printed as its median and
//! min–max over the rounds, next to the median time per operation (per thread) of each.
//!
//! The ceiling decides what the ratios mean: when its median 2T/1T is below 1.8, the machine did
//! not give this process a second core (other processes ran on it), the table says so and
//! prints no hit-path ratio (`FORCE_RATIOS=1` prints them anyway, marked as not scaling
//! figures). A ratio near the ceiling's means the path scales as far as the machine lets it
//! measure; a ratio well below it means the threads contend (a shared cache line written on
//! every hit, see the performance guide).
//!
//! Every result is checked (the expected value; a decorated hit never runs the body; a
//! client-side hit is served locally) and passed through [`std::hint::black_box`]; a failed
//! check aborts the run.
//!
//! Knobs (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ROUNDS` | 11 | measured rounds |
//! | `ITERS` | 200000 | operations per thread per trial |
//! | `PATHS` | all | comma-separated groups: `ceiling,mem,client_side,peers` |
//! | `FORCE_RATIOS` | 0 | 1: print the hit-path ratios even when the ceiling shows no second core |
//! | `CASHEWS_REDIS_URL` | `redis://127.0.0.1:6379/0` | the Redis of the client-side paths |
//!
//! The client-side keys live under `cashews-scaling:<pid>:` and are deleted at the end; nothing
//! is flushed.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::{Duration, Instant};

use cashews::Cache;
use cashews::backend::ClientSideRedis;
use cashews::config::{CacheConfig, RedisOptions};
use cashews_benches::{User, env_or, median, redis_up, redis_url, selected, warm_client_side};
use tokio::runtime::Runtime;

const KEYS: u64 = 1_000;
const HOUR: Duration = Duration::from_secs(3600);
/// Below this median 2T/1T of the ceiling, the machine gave no second core.
const SECOND_CORE: f64 = 1.8;

// ---------------------------------------------------------------------------------------------
// The harness.

/// Runs `ops` operations on the calling thread; `first` is the thread's first key index (the
/// threads start half the keys apart, so they do not walk the keys in lockstep).
type Run = Arc<dyn Fn(&Runtime, u64, u64) + Send + Sync>;

struct Path {
    group: &'static str,
    name: &'static str,
    keys: &'static str,
    run: Run,
}

/// One trial: `threads` threads run `ops` operations each after a common start; returns the
/// throughput (operations per second) and the time per operation per thread (ns).
fn trial(run: &Run, threads: u64, ops: u64) -> (f64, f64) {
    let barrier = Barrier::new(threads as usize);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (run, barrier) = (Arc::clone(run), &barrier);
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    barrier.wait();
                    let start = Instant::now();
                    run(&rt, ops, t * KEYS / 2);
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    let wall = last.duration_since(first).as_secs_f64();
    let per_op = spans
        .iter()
        .map(|(a, b)| b.duration_since(*a).as_nanos() as f64)
        .sum::<f64>()
        / (threads * ops) as f64;
    ((threads * ops) as f64 / wall, per_op)
}

struct Row {
    name: &'static str,
    keys: &'static str,
    one_ns: f64,
    two_ns: f64,
    ratio: f64,
    ratio_min: f64,
    ratio_max: f64,
}

/// Every path with 1 and 2 threads, interleaved round by round (paths rotated, 1T/2T flipped).
fn measure(paths: &[Path], rounds: usize, ops: u64) -> Vec<Row> {
    for p in paths {
        black_box(trial(&p.run, 2, (ops / 10).max(1)));
    }
    let n = paths.len();
    let mut one = vec![Vec::with_capacity(rounds); n];
    let mut two = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let idx = (round + k) % n;
            let run = &paths[idx].run;
            let (a, b) = if round % 2 == 0 {
                let a = trial(run, 1, ops);
                (a, trial(run, 2, ops))
            } else {
                let b = trial(run, 2, ops);
                (trial(run, 1, ops), b)
            };
            one[idx].push(a);
            two[idx].push(b);
        }
        eprintln!("scaling: round {}/{rounds}", round + 1);
    }
    (0..n)
        .map(|i| {
            let mut ratios: Vec<f64> = (0..rounds).map(|r| two[i][r].0 / one[i][r].0).collect();
            let ratio = median(&mut ratios);
            Row {
                name: paths[i].name,
                keys: paths[i].keys,
                one_ns: median(&mut one[i].iter().map(|x| x.1).collect::<Vec<_>>()),
                two_ns: median(&mut two[i].iter().map(|x| x.1).collect::<Vec<_>>()),
                ratio,
                ratio_min: ratios[0],
                ratio_max: ratios[rounds - 1],
            }
        })
        .collect()
}

fn print_table(rows: &[Row], ceiling: Option<f64>, force: bool) {
    let second_core = ceiling.is_some_and(|c| c >= SECOND_CORE);
    println!();
    match ceiling {
        Some(c) if c < SECOND_CORE => println!(
            "The ceiling's 2T/1T is {c:.2} (< {SECOND_CORE}): the machine gave no second core \
             to this process, so the hit-path ratios are not scaling figures{}.",
            if force {
                " (printed anyway: FORCE_RATIOS=1)"
            } else {
                " and are not printed (FORCE_RATIOS=1 prints them)"
            }
        ),
        Some(c) => println!("The ceiling's 2T/1T is {c:.2}: two cores were there."),
        None => println!("No ceiling ran (PATHS without `ceiling`): no ratio is a scaling figure."),
    }
    println!();
    println!(
        "| path | keys | 1T ns/op | 2T ns/op (per thread) | throughput 2T/1T | min–max over rounds |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let is_ceiling = r.name.starts_with("ceiling");
        let ratio = if is_ceiling || second_core || force {
            let mark = if !is_ceiling && !second_core {
                " (not scaling)"
            } else {
                ""
            };
            (
                format!("{:.2}x{mark}", r.ratio),
                format!("{:.2}–{:.2}", r.ratio_min, r.ratio_max),
            )
        } else {
            ("—".to_owned(), "—".to_owned())
        };
        println!(
            "| {} | {} | {:.1} | {:.1} | {} | {} |",
            r.name, r.keys, r.one_ns, r.two_ns, ratio.0, ratio.1
        );
    }
}

/// Whether the group `id` is selected by `PATHS` (all when unset).
fn enabled(id: &str) -> bool {
    selected("PATHS", id)
}

/// Aborts the run when `ok` is false: a path returned a wrong result.
fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("scaling: check failed: {what}");
        std::process::exit(1);
    }
}

/// The key index of operation `n` of a thread starting at `first`: always 0 on the hot key.
fn index(hot: bool, first: u64, n: u64) -> usize {
    if hot {
        0
    } else {
        ((first + n) % KEYS) as usize
    }
}

/// The two key sets every cached path runs on.
const KEY_SETS: [(bool, &str); 2] = [(true, "1 (hot)"), (false, "1,000")];

// ---------------------------------------------------------------------------------------------
// The paths.

static EXPECTED: LazyLock<Vec<User>> = LazyLock::new(|| (0..KEYS).map(User::sample).collect());
static KEY_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..KEYS).map(|i| format!("user:{i}")).collect());

static MEM: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://?size=200000&check_interval=0").unwrap();
    cache
});
static CLIENT_SIDE: LazyLock<Cache> = LazyLock::new(Cache::new);

static MEM_BODY: AtomicU64 = AtomicU64::new(0);
static CS_BODY: AtomicU64 = AtomicU64::new(0);

// The same key template as the hand-written reads use (`user:{id}`), so that both read the same
// entries.
#[cashews::cache(ttl = "1h", key = "user:{id}", cache = MEM)]
async fn on_mem(id: u64) -> User {
    MEM_BODY.fetch_add(1, Ordering::Relaxed);
    User::sample(id)
}

#[cashews::cache(ttl = "1h", key = "user:{id}", cache = CLIENT_SIDE)]
async fn on_client_side(id: u64) -> User {
    CS_BODY.fetch_add(1, Ordering::Relaxed);
    User::sample(id)
}

/// A loop of integer operations on registers only: one "operation" is 16 rounds of xorshift.
fn ceiling() -> Path {
    Path {
        group: "ceiling",
        name: "ceiling: integer arithmetic",
        keys: "—",
        run: Arc::new(|_, ops, first| {
            let mut x = black_box(first | 1);
            for _ in 0..ops {
                for _ in 0..16 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                }
                x = black_box(x);
            }
            check(x != 0, "xorshift never reaches 0");
        }),
    }
}

/// The three reads of `cache` (the decorated function of `group`, `get`, `get_shared`) on both
/// key sets.
fn cache_paths(
    group: &'static str,
    names: [&'static str; 3],
    cache: &'static Cache,
    body: &'static AtomicU64,
) -> Vec<Path> {
    let mut paths = Vec::new();
    for (hot, keys) in KEY_SETS {
        paths.push(Path {
            group,
            name: names[0],
            keys,
            run: Arc::new(move |rt, ops, first| {
                let before = body.load(Ordering::Relaxed);
                rt.block_on(async {
                    for n in 0..ops {
                        let i = index(hot, first, n);
                        let u = if group == "mem" {
                            on_mem(i as u64).await
                        } else {
                            on_client_side(i as u64).await
                        };
                        check(u == EXPECTED[i], "decorated hit value");
                        black_box(u);
                    }
                });
                check(
                    body.load(Ordering::Relaxed) == before,
                    "a decorated hit ran the body",
                );
            }),
        });
        paths.push(Path {
            group,
            name: names[1],
            keys,
            run: Arc::new(move |rt, ops, first| {
                rt.block_on(async {
                    for n in 0..ops {
                        let i = index(hot, first, n);
                        let u = cache.get::<User>(&KEY_NAMES[i]).await.unwrap();
                        check(u.as_ref() == Some(&EXPECTED[i]), "get hit value");
                        black_box(u);
                    }
                });
            }),
        });
        paths.push(Path {
            group,
            name: names[2],
            keys,
            run: Arc::new(move |rt, ops, first| {
                rt.block_on(async {
                    for n in 0..ops {
                        let i = index(hot, first, n);
                        let u = cache.get_shared::<User>(&KEY_NAMES[i]).await.unwrap();
                        check(u.as_deref() == Some(&EXPECTED[i]), "get_shared hit value");
                        black_box(u);
                    }
                });
            }),
        });
    }
    paths
}

fn mem_paths(rt: &Runtime) -> Vec<Path> {
    rt.block_on(async {
        for id in 0..KEYS {
            on_mem(id).await;
        }
    });
    cache_paths(
        "mem",
        [
            "mem: #[cashews::cache] hit",
            "mem: Cache::get::<User>",
            "mem: Cache::get_shared::<User>",
        ],
        &MEM,
        &MEM_BODY,
    )
}

fn peer_paths() -> Vec<Path> {
    let quick = Arc::new(quick_cache::sync::Cache::<String, User>::new(200_000));
    let moka = moka::future::Cache::<String, User>::builder()
        .max_capacity(200_000)
        .time_to_live(HOUR)
        .build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (key, user) in KEY_NAMES.iter().zip(EXPECTED.iter()) {
        quick.insert(key.clone(), user.clone());
        rt.block_on(moka.insert(key.clone(), user.clone()));
    }
    let mut paths = Vec::new();
    for (hot, keys) in KEY_SETS {
        let quick = Arc::clone(&quick);
        paths.push(Path {
            group: "peers",
            name: "peer: quick_cache get",
            keys,
            run: Arc::new(move |_, ops, first| {
                for n in 0..ops {
                    let i = index(hot, first, n);
                    let u = quick.get(KEY_NAMES[i].as_str());
                    check(u.as_ref() == Some(&EXPECTED[i]), "quick_cache get value");
                    black_box(u);
                }
            }),
        });
        let moka = moka.clone();
        paths.push(Path {
            group: "peers",
            name: "peer: moka get ttl",
            keys,
            run: Arc::new(move |rt, ops, first| {
                rt.block_on(async {
                    for n in 0..ops {
                        let i = index(hot, first, n);
                        let u = moka.get(&KEY_NAMES[i]).await;
                        check(u.as_ref() == Some(&EXPECTED[i]), "moka get value");
                        black_box(u);
                    }
                });
            }),
        });
    }
    paths
}

fn prefix() -> String {
    format!("cashews-scaling:{}:", std::process::id())
}

/// The client-side paths, each wrapped to check that every hit was served locally.
fn client_side_paths(rt: &Runtime) -> (Vec<Path>, ClientSideRedis) {
    let tier =
        ClientSideRedis::new(RedisOptions::new(redis_url()).with_key_prefix(prefix())).unwrap();
    CLIENT_SIDE
        .setup_backend("", tier.clone(), CacheConfig::default())
        .unwrap();
    rt.block_on(async {
        tier.connect().await.unwrap();
        let local = warm_client_side(&tier, KEYS, on_client_side).await;
        check(local, "the client-side tier never served a pass locally");
    });
    let paths = cache_paths(
        "client_side",
        [
            "client-side: #[cashews::cache] hit",
            "client-side: Cache::get::<User>",
            "client-side: Cache::get_shared::<User>",
        ],
        &CLIENT_SIDE,
        &CS_BODY,
    )
    .into_iter()
    .map(|p| {
        let (inner, tier) = (p.run, tier.clone());
        Path {
            run: Arc::new(move |rt, ops, first| {
                let misses = tier.stats().misses;
                inner(rt, ops, first);
                check(
                    tier.stats().misses == misses,
                    "a client-side hit went to Redis",
                );
            }),
            ..p
        }
    })
    .collect();
    (paths, tier)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported (use PATHS).
    let rounds = env_or("ROUNDS", 11).max(1) as usize;
    let ops = u64::from(env_or("ITERS", 200_000).max(1));
    let force = env_or("FORCE_RATIOS", 0) == 1;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!(
        "scaling: ROUNDS={rounds} ITERS={ops} cores={cores} load: {}",
        load.trim()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut paths = Vec::new();
    if enabled("ceiling") {
        paths.push(ceiling());
    }
    if enabled("mem") {
        paths.extend(mem_paths(&rt));
    }
    let mut tier = None;
    if enabled("client_side") && redis_up("the client-side paths") {
        let (cs, t) = client_side_paths(&rt);
        paths.extend(cs);
        tier = Some(t);
    }
    if enabled("peers") {
        paths.extend(peer_paths());
    }
    let rows = measure(&paths, rounds, ops);
    let ceiling = paths
        .iter()
        .position(|p| p.group == "ceiling")
        .map(|i| rows[i].ratio);
    print_table(&rows, ceiling, force);
    println!(
        "\n{rounds} rounds of {ops} operations per thread, paths rotated and 1T/2T flipped each \
         round; ns/op are medians per thread; ran in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if tier.is_some() {
        let cleanup = Cache::new();
        cleanup
            .setup(&format!("{}?key_prefix={}", redis_url(), prefix()))
            .unwrap();
        rt.block_on(async { cleanup.clear().await.unwrap() });
    }
}
