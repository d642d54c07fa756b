//! The Redis backend against raw redis-rs on the same connection settings, in the same groups
//! so ratios come from one run: `cargo bench -p cashews-benches --bench redis`.
//!
//! Needs a Redis server (`CASHEWS_REDIS_URL`, default `redis://127.0.0.1:6379/0`); without one
//! every bench prints why and is skipped. Keys live under `cashews-bench:<pid>:` and are
//! unlinked at the end; nothing is flushed.
//!
//! - `redis/sequential/{get,set}`: one command at a time, so latency per command.
//! - `redis/in_flight_64/get`: 64 commands in flight on one multiplexed connection per
//!   iteration, so throughput (criterion reports elements per second).
//! - `redis/decorated_hit`: a `#[cache]` hit served by Redis, and the same function on
//!   `mem://` for scale.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cashews::Cache;
use cashews::backend::{Backend, RedisBackend, SetOptions};
use cashews::config::RedisOptions;
use cashews_benches::{User, redis_up, redis_url, runtime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

const KEYS: u64 = 1_000;
const IN_FLIGHT: u64 = 64;

fn prefix() -> String {
    format!("cashews-bench:{}:", std::process::id())
}

/// The backend under test, with the default options (one multiplexed connection, 1 s
/// timeouts) and the bench key prefix.
fn backend() -> RedisBackend {
    RedisBackend::new(RedisOptions::new(redis_url()).with_key_prefix(prefix())).unwrap()
}

/// Raw redis-rs on the settings `RedisBackend` uses: a `ConnectionManager` with the same
/// timeouts. Keys carry the prefix by hand.
async fn raw() -> ConnectionManager {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1);
    redis::Client::open(redis_url())
        .unwrap()
        .get_connection_manager_with_config(config)
        .await
        .unwrap()
}

fn raw_key(i: u64) -> String {
    format!("{}k:{i}", prefix())
}

fn key(i: u64) -> String {
    format!("k:{i}")
}

static REDIS_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache
        .setup(&format!("{}?key_prefix={}", redis_url(), prefix()))
        .unwrap();
    cache
});

static CLIENT_SIDE_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?key_prefix={}cs:&client_side=true",
            redis_url(),
            prefix()
        ))
        .unwrap();
    cache
});

static MEM_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://?size=200000&check_interval=0").unwrap();
    cache
});

#[cashews::cache(ttl = "1h", key = "user:{id}", cache = REDIS_CACHE)]
async fn on_redis(id: u64) -> User {
    User::sample(id)
}

#[cashews::cache(ttl = "1h", key = "user:{id}", cache = CLIENT_SIDE_CACHE)]
async fn on_client_side(id: u64) -> User {
    User::sample(id)
}

#[cashews::cache(ttl = "1h", key = "user:{id}", cache = MEM_CACHE)]
async fn on_mem(id: u64) -> User {
    User::sample(id)
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

fn sequential(c: &mut Criterion) {
    if !redis_up("the Redis benches") {
        return;
    }
    let rt = runtime();
    let ours = backend();
    let mut conn = rt.block_on(raw());
    let value = Bytes::from(rmp_serde::to_vec(&User::sample(7)).unwrap());
    rt.block_on(async {
        for i in 0..KEYS {
            ours.set(&key(i), value.clone(), SetOptions::default())
                .await
                .unwrap();
        }
    });

    let mut group = c.benchmark_group("redis/sequential/get");
    group.bench_function(BenchmarkId::new("cashews", "backend_get"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| ours.get(&key(n % KEYS)).await.unwrap()));
    });
    group.bench_function(BenchmarkId::new("cashews", "cache_get_typed"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| REDIS_CACHE
                .get::<User>(&key(n % KEYS))
                .await
                .unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("redis-rs", "get"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| {
                let got: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(raw_key(n % KEYS))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                got
            })
        });
    });
    group.finish();

    let mut group = c.benchmark_group("redis/sequential/set");
    group.bench_function(BenchmarkId::new("cashews", "backend_set"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| {
                let options = SetOptions::ttl(Some(Duration::from_secs(3600)));
                ours.set(&key(n % KEYS), value.clone(), options)
                    .await
                    .unwrap()
            })
        });
    });
    group.bench_function(BenchmarkId::new("redis-rs", "set_px"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| {
                let reply: redis::Value = redis::cmd("SET")
                    .arg(raw_key(n % KEYS))
                    .arg(value.as_ref())
                    .arg("PX")
                    .arg(3_600_000)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                reply
            })
        });
    });
    group.finish();
}

fn in_flight(c: &mut Criterion) {
    if !redis_up("the Redis benches") {
        return;
    }
    let rt = runtime();
    let ours = backend();
    let conn = rt.block_on(raw());
    let value = Bytes::from(rmp_serde::to_vec(&User::sample(7)).unwrap());
    rt.block_on(async {
        for i in 0..KEYS {
            ours.set(&key(i), value.clone(), SetOptions::default())
                .await
                .unwrap();
        }
    });

    let mut group = c.benchmark_group("redis/in_flight_64/get");
    group.throughput(Throughput::Elements(IN_FLIGHT));
    group.bench_function(BenchmarkId::new("cashews", "backend_get"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| {
                let batch = (0..IN_FLIGHT).map(|j| {
                    let ours = &ours;
                    async move { ours.get(&key((n * IN_FLIGHT + j) % KEYS)).await.unwrap() }
                });
                join_all(batch).await
            })
        });
    });
    group.bench_function(BenchmarkId::new("redis-rs", "get"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |n| {
                let batch = (0..IN_FLIGHT).map(|j| {
                    let mut conn = conn.clone();
                    async move {
                        let got: Option<Vec<u8>> = redis::cmd("GET")
                            .arg(raw_key((n * IN_FLIGHT + j) % KEYS))
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        got
                    }
                });
                join_all(batch).await
            })
        });
    });
    group.finish();
}

fn decorated_hit(c: &mut Criterion) {
    if !redis_up("the Redis benches") {
        return;
    }
    let rt = runtime();
    rt.block_on(async {
        for id in 0..KEYS {
            on_redis(id).await;
            on_mem(id).await;
        }
        // The tracking link opens in the background: wait until hits are served locally.
        for _ in 0..200 {
            for id in 0..KEYS {
                on_client_side(id).await;
            }
            if CLIENT_SIDE_CACHE.ping().await.is_ok() && local_hits_served().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut group = c.benchmark_group("redis/decorated_hit");
    group.bench_function(BenchmarkId::new("cashews", "redis"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| on_redis(n % KEYS).await));
    });
    group.bench_function(BenchmarkId::new("cashews", "client_side"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| on_client_side(n % KEYS).await));
    });
    group.bench_function(BenchmarkId::new("cashews", "mem"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |n| on_mem(n % KEYS).await));
    });
    group.finish();
}

/// Whether a read of a warm key is now a local hit of the client-side tier (the link is up
/// and the tier is filled): 100 reads take far less than one round trip each.
async fn local_hits_served() -> bool {
    let start = Instant::now();
    for id in 0..100 {
        on_client_side(id).await;
    }
    start.elapsed() < Duration::from_micros(500)
}

/// Unlinks the bench keys.
fn cleanup(_: &mut Criterion) {
    if !redis_up("the Redis benches") {
        return;
    }
    let rt = runtime();
    rt.block_on(async {
        backend().clear().await.unwrap();
    });
}

criterion_group!(benches, sequential, in_flight, decorated_hit, cleanup);
criterion_main!(benches);
