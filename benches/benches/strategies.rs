//! Decorated functions against the same work by hand and against peers, in the same groups so
//! ratios come from one run: `cargo bench -p cashews-benches --bench strategies`.
//!
//! Each async iteration loops inside one `block_on` (`iter_custom`), so the runtime's entry
//! cost is not counted for anyone.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cashews::Cache;
use cashews::backend::Expiry;
use cashews_benches::{User, runtime};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const KEYS: u64 = 1_000;

static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://?size=200000&check_interval=0").unwrap();
    cache
});

#[cashews::cache(ttl = "1h", key = "user:{id}", cache = CACHE)]
async fn decorated(id: u64) -> User {
    User::sample(id)
}

#[cashews::cache(ttl = "1h", key = "miss:{id}", cache = CACHE, protected = false)]
async fn decorated_miss(id: u64) -> User {
    User::sample(id)
}

#[cached::macros::cached(max_size = 200000)]
async fn with_cached(id: u64) -> User {
    User::sample(id)
}

/// Runs `op` `iters` times inside one `block_on` and returns the elapsed time.
macro_rules! timed {
    ($rt:expr, $iters:expr, |$i:ident| $op:expr) => {{
        $rt.block_on(async {
            let start = Instant::now();
            for n in 0..$iters {
                let $i = n % KEYS;
                black_box($op);
            }
            start.elapsed()
        })
    }};
}

fn hit(c: &mut Criterion) {
    let rt = runtime();
    let moka: moka::future::Cache<u64, User> = moka::future::Cache::new(200_000);
    rt.block_on(async {
        for id in 0..KEYS {
            decorated(id).await;
            with_cached(id).await;
            moka.insert(id, User::sample(id)).await;
        }
    });
    let mut group = c.benchmark_group("strategy/cache_hit/struct");
    group.bench_function(BenchmarkId::new("cashews", "decorated"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |id| decorated(id).await));
    });
    group.bench_function(BenchmarkId::new("cashews", "by_hand_get"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |id| {
                let key = format!("user:{id}");
                CACHE.get::<User>(&key).await.unwrap()
            })
        });
    });
    group.bench_function(BenchmarkId::new("cached", "decorated"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |id| with_cached(id).await));
    });
    group.bench_function(BenchmarkId::new("moka", "get_with"), |b| {
        b.iter_custom(|iters| {
            timed!(rt, iters, |id| moka
                .get_with(id, async move { User::sample(id) })
                .await)
        });
    });
    group.finish();
}

fn miss(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("strategy/cache_miss/struct");
    let mut next = 0u64;
    group.bench_function(BenchmarkId::new("cashews", "decorated"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    next += 1;
                    black_box(decorated_miss(next).await);
                }
                start.elapsed()
            })
        });
    });
    group.bench_function(BenchmarkId::new("cashews", "by_hand_get_set"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    next += 1;
                    let key = format!("miss:{next}");
                    let got = CACHE.get::<User>(&key).await.unwrap();
                    if got.is_none() {
                        let user = User::sample(next);
                        CACHE.set(&key, &user, "1h").await.unwrap();
                        black_box(user);
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

#[derive(Debug)]
struct Refused;

impl From<cashews::Error> for Refused {
    fn from(_: cashews::Error) -> Self {
        Self
    }
}

#[cashews::rate_limit(limit = 1_000_000_000, period = "1h", key = "rl", cache = CACHE)]
async fn limited() -> Result<u64, Refused> {
    Ok(1)
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", cache = CACHE)]
async fn guarded() -> Result<u64, Refused> {
    Ok(1)
}

fn refusal(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("strategy/refusal_pass");
    group.bench_function(BenchmarkId::new("cashews", "bare_incr"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |_i| CACHE.incr("bare").await.unwrap()));
    });
    group.bench_function(BenchmarkId::new("cashews", "rate_limit"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |_i| limited().await.unwrap()));
    });
    group.bench_function(BenchmarkId::new("cashews", "circuit_breaker"), |b| {
        b.iter_custom(|iters| timed!(rt, iters, |_i| guarded().await.unwrap()));
    });
    // The floor a breaker's pass sits on: its two commands (read `K:open`, count in the
    // `K:total` window over Unix milliseconds), nothing else.
    group.bench_function(
        BenchmarkId::new("cashews", "circuit_breaker_by_hand"),
        |b| {
            b.iter_custom(|iters| {
                timed!(rt, iters, |_i| {
                    let open = CACHE.get_expire("by_hand:guarded:open").await.unwrap();
                    assert_eq!(open, Expiry::Missing);
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                    let now = u64::try_from(now.as_millis()).unwrap();
                    let (start, period) = (now + 1 - 60_000, Duration::from_secs(60));
                    CACHE
                        .slice_incr("by_hand:guarded:total", start, now, 9999, period)
                        .await
                        .unwrap()
                })
            });
        },
    );
    group.finish();
}

criterion_group!(benches, hit, miss, refusal);
criterion_main!(benches);
