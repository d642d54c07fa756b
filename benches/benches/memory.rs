//! `mem://` against moka (`future::Cache`) and quick_cache, in the same groups so ratios come
//! from one run: `cargo bench -p cashews-benches --bench memory`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use cashews::Cache;
use cashews_benches::{User, kib_value, runtime};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const KEYS: u64 = 1_000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("user:{i:08}")).collect()
}

fn cashews_mem() -> Cache {
    let cache = Cache::new();
    cache.setup("mem://?size=100000&check_interval=0").unwrap();
    cache
}

fn moka_cache<V: Clone + Send + Sync + 'static>() -> moka::future::Cache<String, V> {
    moka::future::Cache::new(100_000)
}

fn quick<V: Clone>() -> quick_cache::sync::Cache<String, V> {
    quick_cache::sync::Cache::new(100_000)
}

fn hit_and_miss(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();
    for (label, small) in [("struct", true), ("1KiB", false)] {
        let mut group = c.benchmark_group(format!("mem/get_hit/{label}"));
        let cache = cashews_mem();
        let moka = moka_cache::<Arc<()>>();
        drop(moka);
        if small {
            let moka = moka_cache::<User>();
            let quick = quick::<User>();
            rt.block_on(async {
                for (i, k) in keys.iter().enumerate() {
                    let u = User::sample(i as u64);
                    cache.set(k, &u, None::<u64>).await.unwrap();
                    moka.insert(k.clone(), u.clone()).await;
                    quick.insert(k.clone(), u);
                }
            });
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new("cashews-mem", "hit"), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % keys.len();
                    let k = &keys[i];
                    let cache = &cache;
                    async move { black_box(cache.get::<User>(k).await.unwrap()) }
                });
            });
            group.bench_function(BenchmarkId::new("cashews-mem", "get_shared"), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % keys.len();
                    let k = &keys[i];
                    let cache = &cache;
                    async move { black_box(cache.get_shared::<User>(k).await.unwrap()) }
                });
            });
            group.bench_function(BenchmarkId::new("moka", "hit"), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % keys.len();
                    let k = &keys[i];
                    let moka = &moka;
                    async move { black_box(moka.get(k).await) }
                });
            });
            group.bench_function(BenchmarkId::new("quick_cache", "hit"), |b| {
                b.iter(|| {
                    i = (i + 1) % keys.len();
                    black_box(quick.get(keys[i].as_str()))
                });
            });
        } else {
            let value = kib_value();
            let moka = moka_cache::<serde_bytes::ByteBuf>();
            let quick = quick::<serde_bytes::ByteBuf>();
            rt.block_on(async {
                for k in &keys {
                    cache.set(k, &value, None::<u64>).await.unwrap();
                    moka.insert(k.clone(), value.clone()).await;
                    quick.insert(k.clone(), value.clone());
                }
            });
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new("cashews-mem", "hit"), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % keys.len();
                    let k = &keys[i];
                    let cache = &cache;
                    async move { black_box(cache.get::<serde_bytes::ByteBuf>(k).await.unwrap()) }
                });
            });
            group.bench_function(BenchmarkId::new("cashews-mem", "get_shared"), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % keys.len();
                    let k = &keys[i];
                    let cache = &cache;
                    async move { black_box(cache.get_shared::<serde_bytes::ByteBuf>(k).await.unwrap()) }
                });
            });
            group.bench_function(BenchmarkId::new("moka", "hit"), |b| {
                b.to_async(&rt).iter(|| {
                    i = (i + 1) % keys.len();
                    let k = &keys[i];
                    let moka = &moka;
                    async move { black_box(moka.get(k).await) }
                });
            });
            group.bench_function(BenchmarkId::new("quick_cache", "hit"), |b| {
                b.iter(|| {
                    i = (i + 1) % keys.len();
                    black_box(quick.get(keys[i].as_str()))
                });
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("mem/get_miss");
    let cache = cashews_mem();
    let moka = moka_cache::<User>();
    let quick = quick::<User>();
    let mut i = 0usize;
    group.bench_function(BenchmarkId::new("cashews-mem", "miss"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let cache = &cache;
            async move { black_box(cache.get::<User>(k).await.unwrap()) }
        });
    });
    group.bench_function(BenchmarkId::new("moka", "miss"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let moka = &moka;
            async move { black_box(moka.get(k).await) }
        });
    });
    group.bench_function(BenchmarkId::new("quick_cache", "miss"), |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(quick.get(keys[i].as_str()))
        });
    });
    group.finish();
}

fn writes(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();
    let mut group = c.benchmark_group("mem/set/struct");
    let cache = cashews_mem();
    let moka = moka_cache::<User>();
    let quick = quick::<User>();
    let user = User::sample(42);
    let mut i = 0usize;
    group.bench_function(BenchmarkId::new("cashews-mem", "set"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let (cache, user) = (&cache, &user);
            async move { black_box(cache.set(k, user, None::<u64>).await.unwrap()) }
        });
    });
    group.bench_function(BenchmarkId::new("moka", "insert"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = keys[i].clone();
            let (moka, user) = (&moka, user.clone());
            async move { moka.insert(k, user).await }
        });
    });
    group.bench_function(BenchmarkId::new("quick_cache", "insert"), |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            quick.insert(keys[i].clone(), user.clone());
        });
    });
    group.finish();

    let mut group = c.benchmark_group("mem/incr");
    let cache = cashews_mem();
    let counters = moka_cache::<Arc<std::sync::atomic::AtomicI64>>();
    group.bench_function(BenchmarkId::new("cashews-mem", "incr"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = &keys[i];
            let cache = &cache;
            async move { black_box(cache.incr(k).await.unwrap()) }
        });
    });
    group.bench_function(BenchmarkId::new("moka", "entry_and_modify"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let k = keys[i].clone();
            let counters = &counters;
            async move {
                let v = counters
                    .get_with(k, async { Arc::new(std::sync::atomic::AtomicI64::new(0)) })
                    .await;
                black_box(v.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
            }
        });
    });
    group.finish();
}

fn get_many(c: &mut Criterion) {
    let rt = runtime();
    let keys = keys();
    let mut group = c.benchmark_group("mem/get_many_10/struct");
    let cache = cashews_mem();
    let moka = moka_cache::<User>();
    let quick = quick::<User>();
    rt.block_on(async {
        for (i, k) in keys.iter().enumerate() {
            let u = User::sample(i as u64);
            cache.set(k, &u, None::<u64>).await.unwrap();
            moka.insert(k.clone(), u.clone()).await;
            quick.insert(k.clone(), u);
        }
    });
    let mut i = 0usize;
    group.bench_function(BenchmarkId::new("cashews-mem", "get_many"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 10) % (keys.len() - 10);
            let batch: Vec<&str> = keys[i..i + 10].iter().map(String::as_str).collect();
            let cache = &cache;
            async move { black_box(cache.get_many::<User>(&batch).await.unwrap()) }
        });
    });
    group.bench_function(BenchmarkId::new("moka", "get_x10"), |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 10) % (keys.len() - 10);
            let batch = &keys[i..i + 10];
            let moka = &moka;
            async move {
                let mut out = Vec::with_capacity(10);
                for k in batch {
                    out.push(moka.get(k).await);
                }
                black_box(out)
            }
        });
    });
    group.bench_function(BenchmarkId::new("quick_cache", "get_x10"), |b| {
        b.iter(|| {
            i = (i + 10) % (keys.len() - 10);
            let out: Vec<_> = keys[i..i + 10]
                .iter()
                .map(|k| quick.get(k.as_str()))
                .collect();
            black_box(out)
        });
    });
    group.finish();
}

/// Which keys the threads of a scaling run read.
#[derive(Clone, Copy)]
enum Spread {
    /// Every thread cycles over all keys, a few keys apart: hot entries are shared, so the
    /// cache lines they write on a hit (reference counts, lock words) travel between cores.
    Shared,
    /// Each thread cycles over its own slice of the keys.
    Disjoint,
}

impl Spread {
    fn pick(self, n: usize, thread: usize, threads: usize, len: usize) -> usize {
        match self {
            Self::Shared => (n + thread * 7) % len,
            Self::Disjoint => {
                let slice = len / threads;
                thread * slice + n % slice
            }
        }
    }
}

/// Runs `iters` operations on each of `threads` threads, each with its own clone of `$handle`
/// and its own current-thread runtime; returns the wall time of the slowest.
macro_rules! threaded {
    ($threads:expr, $iters:expr, $keys:expr, $handle:expr, $spread:expr, |$h:ident, $k:ident| $op:expr) => {{
        let barrier = Arc::new(std::sync::Barrier::new($threads + 1));
        let handles: Vec<_> = (0..$threads)
            .map(|t| {
                let barrier = Arc::clone(&barrier);
                let keys: Vec<String> = $keys.to_vec();
                let $h = $handle.clone();
                let iters = $iters;
                std::thread::spawn(move || {
                    let rt = runtime();
                    barrier.wait();
                    rt.block_on(async {
                        let mut hits = 0u64;
                        for n in 0..iters {
                            let $k =
                                keys[$spread.pick(n as usize, t, $threads, keys.len())].as_str();
                            hits += u64::from($op.is_some());
                        }
                        hits
                    })
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            black_box(h.join().unwrap());
        }
        start.elapsed()
    }};
}

/// Get-hit throughput with 1 and 2 threads: `iters` gets per thread, so the same time per
/// iteration with 2 threads as with 1 means twice the throughput.
fn scaling(c: &mut Criterion) {
    let keys = keys();
    let cache = cashews_mem();
    let moka = moka_cache::<User>();
    let quick = Arc::new(quick::<User>());
    runtime().block_on(async {
        for (i, k) in keys.iter().enumerate() {
            cache
                .set(k, &User::sample(i as u64), None::<u64>)
                .await
                .unwrap();
            moka.insert(k.clone(), User::sample(i as u64)).await;
            quick.insert(k.clone(), User::sample(i as u64));
        }
    });
    for (name, spread) in [
        ("shared_keys", Spread::Shared),
        ("disjoint_keys", Spread::Disjoint),
    ] {
        let mut group = c.benchmark_group(format!("mem/get_hit_threads/{name}"));
        for threads in [1usize, 2] {
            group.bench_function(BenchmarkId::new("cashews-mem", threads), |b| {
                b.iter_custom(|iters| {
                    threaded!(threads, iters, keys, cache, spread, |h, k| h
                        .get::<User>(k)
                        .await
                        .unwrap())
                });
            });
            group.bench_function(BenchmarkId::new("cashews-mem-shared", threads), |b| {
                b.iter_custom(|iters| {
                    threaded!(threads, iters, keys, cache, spread, |h, k| h
                        .get_shared::<User>(k)
                        .await
                        .unwrap())
                });
            });
            group.bench_function(BenchmarkId::new("moka", threads), |b| {
                b.iter_custom(|iters| {
                    threaded!(threads, iters, keys, moka, spread, |h, k| h.get(k).await)
                });
            });
            group.bench_function(BenchmarkId::new("quick_cache", threads), |b| {
                b.iter_custom(|iters| {
                    threaded!(threads, iters, keys, quick, spread, |h, k| h.get(k))
                });
            });
        }
        group.finish();
    }
}

/// What a memory hit pays beyond the map lookup: decoding the stored bytes, against cloning a
/// stored object (the alternative design of STYLE.md §2.12).
fn decode_cost(c: &mut Criterion) {
    use cashews::codec::{CodecOptions, ValueCodec};
    let mut group = c.benchmark_group("mem/value_on_hit/struct");
    let user = User::sample(7);
    let codec = ValueCodec::new(CodecOptions::default()).unwrap();
    let bytes = codec.encode("k", &user).unwrap();
    let raw = rmp_serde::to_vec_named(&user).unwrap();
    group.bench_function(BenchmarkId::new("cashews-codec", "decode"), |b| {
        b.iter(|| black_box(codec.decode::<User>("k", "mem", black_box(&bytes))));
    });
    group.bench_function(BenchmarkId::new("rmp-serde", "from_slice"), |b| {
        b.iter(|| black_box(rmp_serde::from_slice::<User>(black_box(&raw)).unwrap()));
    });
    group.bench_function(BenchmarkId::new("object", "clone"), |b| {
        b.iter(|| black_box(black_box(&user).clone()));
    });
    group.finish();
}

criterion_group!(
    benches,
    hit_and_miss,
    writes,
    get_many,
    scaling,
    decode_cost
);
criterion_main!(benches);
