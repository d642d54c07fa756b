//! The one in-process coalescer, through every user of it: `get_or_set`, `#[cache]` and
//! `cache`, `early` (cold misses), `soft`; `cache_locked` and `thunder_protection` have their
//! own 1,000-caller tests in `strategies_locking`.
//!
//! Counts, never clocks: the origin waits behind a gate that the test opens only once every
//! caller's future has gone pending (the leader inside its origin, the others waiting for
//! it), so "ran once" is proven for callers that were all there at the same time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::strategy::{self, CacheOptions, EarlyOptions, Plain, SoftOptions};
use cashews::{Cache, Error, Ttl};
use tokio::sync::{Notify, watch};

use crate::support::{LineUp, manual_cache};

const HOUR: Ttl = Ttl::secs(3_600);
const CALLERS: usize = 1_000;

/// An origin that counts its runs and waits behind a gate until the test opens it.
#[derive(Clone)]
struct Origin {
    runs: Arc<AtomicUsize>,
    opened: watch::Receiver<bool>,
}

impl Origin {
    /// A closed gate, and the origin behind it.
    fn gated() -> (watch::Sender<bool>, Self) {
        let (open, opened) = watch::channel(false);
        let origin = Self {
            runs: Arc::default(),
            opened,
        };
        (open, origin)
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    async fn run(mut self, value: u32) -> u32 {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let _open = self.opened.wait_for(|open| *open).await;
        value
    }
}

/// A guard against a waiter that never wakes (or a deadlock): generous, never reached when
/// all is well.
async fn in_time<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("a caller was never woken")
}

/// Runs `call` from [`CALLERS`] tasks at once, opens the gate once all of them are pending,
/// and returns the origin's runs and every caller's answer.
async fn thousand<Fut>(call: impl Fn(Origin) -> Fut) -> (usize, Vec<u32>)
where
    Fut: Future<Output = u32> + Send + 'static,
{
    let (open, origin) = Origin::gated();
    let line = LineUp::new(CALLERS);
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| tokio::spawn(line.join(call(origin.clone()))))
        .collect();
    in_time(line.all()).await;
    open.send_replace(true);
    let mut got = Vec::with_capacity(CALLERS);
    for task in tasks {
        got.push(in_time(task).await.unwrap());
    }
    (origin.runs(), got)
}

// ----- 1,000 concurrent callers, one run ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_runs_once_for_1000_callers_all_waiting() {
    let (cache, _clock) = manual_cache();
    let (runs, got) = thousand(|origin| {
        let cache = cache.clone();
        async move {
            cache
                .get_or_set("cold", HOUR, move || origin.run(42))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(runs, 1);
    assert!(got.iter().all(|v| *v == 42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_runs_once_for_1000_callers() {
    let (cache, _clock) = manual_cache();
    let (runs, got) = thousand(|origin| {
        let cache = cache.clone();
        async move {
            strategy::cache(
                &cache,
                "cold",
                HOUR,
                &CacheOptions::new(),
                Plain::new(),
                origin.run(42),
            )
            .await
        }
    })
    .await;
    assert_eq!(runs, 1);
    assert!(got.iter().all(|v| *v == 42));
    assert_eq!(cache.get::<u32>("cold").await.unwrap(), Some(42));
}

#[cfg(feature = "macros")]
static MACRO_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(|| manual_cache().0);

#[cfg(feature = "macros")]
#[cashews::cache(ttl = "1h", key = "coalesce:{id}", cache = MACRO_CACHE)]
async fn cached(id: u32, origin: Origin) -> u32 {
    origin.run(id).await
}

#[cfg(feature = "macros")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_attribute_runs_once_for_1000_callers() {
    let (runs, got) = thousand(|origin| cached(7, origin)).await;
    assert_eq!(runs, 1);
    assert!(got.iter().all(|v| *v == 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_runs_a_cold_miss_once_for_1000_callers() {
    let (cache, _clock) = manual_cache();
    let (runs, got) = thousand(|origin| {
        let cache = cache.clone();
        async move {
            strategy::early(
                &cache,
                "early:v2:cold",
                HOUR,
                &EarlyOptions::new(),
                Plain::new(),
                origin.run(42),
            )
            .await
        }
    })
    .await;
    assert_eq!(runs, 1);
    assert!(got.iter().all(|v| *v == 42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_runs_a_cold_miss_once_for_1000_callers() {
    let (cache, _clock) = manual_cache();
    let (runs, got) = thousand(|origin| {
        let cache = cache.clone();
        async move {
            strategy::soft(
                &cache,
                "soft:cold",
                HOUR,
                &SoftOptions::new(),
                Plain::new(),
                origin.run(42),
            )
            .await
        }
    })
    .await;
    assert_eq!(runs, 1);
    assert!(got.iter().all(|v| *v == 42));
}

// ----- cancelled and panicking leaders -----------------------------------------------------

/// A leader whose origin waits forever (until aborted) or panics, once `followers` callers
/// are waiting for it; returns its task once it is inside its origin.
async fn leader(
    cache: &Cache,
    key: &'static str,
    followers: &Arc<LineUp>,
    panics: bool,
) -> tokio::task::JoinHandle<u32> {
    let inside = Arc::new(Notify::new());
    let task = tokio::spawn({
        let (cache, inside, followers) =
            (cache.clone(), Arc::clone(&inside), Arc::clone(followers));
        async move {
            strategy::cache(
                &cache,
                key,
                HOUR,
                &CacheOptions::new(),
                Plain::new(),
                async {
                    inside.notify_one();
                    followers.all().await;
                    if panics {
                        panic!("the origin failed");
                    }
                    std::future::pending::<u32>().await
                },
            )
            .await
        }
    });
    inside.notified().await;
    task
}

/// Ten followers of `key`, lined up on `line`, each with an origin that answers 7.
fn followers(
    cache: &Cache,
    key: &'static str,
    line: &Arc<LineUp>,
) -> (Origin, Vec<tokio::task::JoinHandle<u32>>) {
    let (open, origin) = Origin::gated();
    open.send_replace(true);
    let tasks = (0..10)
        .map(|_| {
            let (cache, origin) = (cache.clone(), origin.clone());
            tokio::spawn(line.join(async move {
                strategy::cache(
                    &cache,
                    key,
                    HOUR,
                    &CacheOptions::new(),
                    Plain::new(),
                    origin.run(7),
                )
                .await
            }))
        })
        .collect();
    (origin, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_cache_leader_hands_over_to_exactly_one_follower() {
    let (cache, _clock) = manual_cache();
    let line = LineUp::new(10);
    let leader = leader(&cache, "cancelled", &line, false).await;
    let (origin, followers) = followers(&cache, "cancelled", &line);
    line.all().await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for follower in followers {
        assert_eq!(in_time(follower).await.unwrap(), 7);
    }
    // One follower led in its place and stored; the others read what it stored.
    assert_eq!(origin.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_cache_leader_hands_over_to_exactly_one_follower() {
    let (cache, _clock) = manual_cache();
    let line = LineUp::new(10);
    let leader = leader(&cache, "panicked", &line, true).await;
    let (origin, followers) = followers(&cache, "panicked", &line);
    assert!(in_time(leader).await.unwrap_err().is_panic());
    for follower in followers {
        assert_eq!(in_time(follower).await.unwrap(), 7);
    }
    assert_eq!(origin.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_a_panicking_load_fails_only_its_own_caller() {
    let (cache, _clock) = manual_cache();
    let line = LineUp::new(11);
    let inside = Arc::new(Notify::new());
    let first = tokio::spawn(line.join({
        let (cache, line, inside) = (cache.clone(), Arc::clone(&line), Arc::clone(&inside));
        async move {
            cache
                .get_or_set("boom", HOUR, move || async move {
                    inside.notify_one();
                    line.all().await;
                    if true {
                        panic!("the load failed");
                    }
                    0_u32
                })
                .await
        }
    }));
    // The first caller leads: its load is running before anyone else calls.
    inside.notified().await;
    let (open, origin) = Origin::gated();
    open.send_replace(true);
    let followers: Vec<_> =
        (0..10)
            .map(|_| {
                let (cache, origin) = (cache.clone(), origin.clone());
                tokio::spawn(line.join(async move {
                    cache.get_or_set("boom", HOUR, move || origin.run(7)).await
                }))
            })
            .collect();
    let err = in_time(first).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::OriginFailed { .. }), "{err}");
    for follower in followers {
        assert_eq!(in_time(follower).await.unwrap().unwrap(), 7);
    }
    // One follower ran its own load in place of the panicked one; the others shared it.
    assert_eq!(origin.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_a_cancelled_caller_leaves_its_load_to_the_followers() {
    let (cache, _clock) = manual_cache();
    let (open, origin) = Origin::gated();
    let line = LineUp::new(11);
    let tasks: Vec<_> =
        (0..11)
            .map(|_| {
                let (cache, origin) = (cache.clone(), origin.clone());
                tokio::spawn(line.join(async move {
                    cache.get_or_set("cold", HOUR, move || origin.run(5)).await
                }))
            })
            .collect();
    line.all().await;
    // Cancel every caller but the last: whichever led, its load goes on.
    let mut tasks = tasks;
    let last = tasks.pop().unwrap();
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    open.send_replace(true);
    assert_eq!(in_time(last).await.unwrap().unwrap(), 5);
    assert_eq!(origin.runs(), 1);
    assert_eq!(cache.get::<u32>("cold").await.unwrap(), Some(5));
}

// ----- re-entry ----------------------------------------------------------------------------

#[tokio::test]
async fn a_cache_call_inside_its_own_origin_runs_at_once() {
    let (cache, _clock) = manual_cache();
    let options = CacheOptions::new();
    let outer = in_time(strategy::cache(
        &cache,
        "self",
        HOUR,
        &options,
        Plain::new(),
        async {
            strategy::cache(&cache, "self", HOUR, &options, Plain::new(), async {
                1_u32
            })
            .await
                + 1
        },
    ))
    .await;
    assert_eq!(outer, 2);
    assert_eq!(cache.get::<u32>("self").await.unwrap(), Some(2));
}

#[tokio::test]
async fn an_early_cold_miss_inside_its_own_origin_runs_at_once() {
    let (cache, _clock) = manual_cache();
    let options = EarlyOptions::new();
    let outer = in_time(strategy::early(
        &cache,
        "early:v2:self",
        HOUR,
        &options,
        Plain::new(),
        async {
            strategy::early(
                &cache,
                "early:v2:self",
                HOUR,
                &options,
                Plain::new(),
                async { 1_u32 },
            )
            .await
                + 1
        },
    ))
    .await;
    assert_eq!(outer, 2);
}

#[tokio::test]
async fn a_soft_renewal_inside_its_own_origin_runs_at_once() {
    let (cache, _clock) = manual_cache();
    let options = SoftOptions::new();
    let outer = in_time(strategy::soft(
        &cache,
        "soft:self",
        HOUR,
        &options,
        Plain::new(),
        async {
            strategy::soft(&cache, "soft:self", HOUR, &options, Plain::new(), async {
                1_u32
            })
            .await
                + 1
        },
    ))
    .await;
    assert_eq!(outer, 2);
}

#[tokio::test]
async fn re_entry_is_per_cache() {
    // The same key on another cache is another flight: the nested call leads its own.
    let (cache, _clock) = manual_cache();
    let (other, _other_clock) = manual_cache();
    let options = CacheOptions::new();
    let outer = in_time(strategy::cache(
        &cache,
        "k",
        HOUR,
        &options,
        Plain::new(),
        async {
            strategy::cache(&other, "k", HOUR, &options, Plain::new(), async { 1_u32 }).await + 1
        },
    ))
    .await;
    assert_eq!(outer, 2);
    assert_eq!(other.get::<u32>("k").await.unwrap(), Some(1));
}
