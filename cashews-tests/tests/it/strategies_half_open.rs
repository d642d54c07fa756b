//! `circuit_breaker` while half-open: a bounded number of probes reach the upstream (one by
//! default), the other callers are refused until a probe ends; a failed probe opens the
//! circuit again, a successful one closes it. On memory with a manual clock, and on Redis
//! through two `Cache` handles (two connections), where the probe slot is a backend counter.
//!
//! The burst is deterministic: 16 callers start together; the upstream fails, but only once
//! every caller has either been refused or reached it (a gate the test opens after counting
//! those 16 events), so every probe is in flight with every other caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use tokio::sync::{mpsc, watch};

use crate::support::{manual_cache, secs};
use cashews::strategy::{CircuitBreakerOptions, circuit_breaker};
use cashews::{Cache, Error};

#[derive(Debug, Clone, PartialEq)]
enum AppError {
    Open,
    Upstream,
    Cache(String),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::CircuitOpen { .. } => Self::Open,
            other => Self::Cache(other.to_string()),
        }
    }
}

fn upstream_failure(error: &AppError) -> bool {
    *error == AppError::Upstream
}

const CALLERS: usize = 16;

/// Opens at one failure in two calls, for 10 s, then half-open for a minute; every half-open
/// call wins the draw, so only the probe bound decides (the default: one probe).
fn options() -> CircuitBreakerOptions {
    CircuitBreakerOptions::new(50, secs(60), secs(10))
        .half_open_ttl(secs(60))
        .half_open_share(100)
}

/// One failed call: opens the circuit of `key` (1 failure in 1 call).
async fn open(cache: &Cache, key: &str, options: &CircuitBreakerOptions) {
    let failed = circuit_breaker(cache, key, options, upstream_failure, async {
        Err::<(), _>(AppError::Upstream)
    })
    .await;
    assert_eq!(failed, Err(AppError::Upstream));
    assert!(cache.exists(&format!("{key}:open")).await.unwrap());
}

/// [`CALLERS`] concurrent calls, spread over `caches`, against an upstream that fails once
/// the gate opens; the gate opens when each caller was refused or reached the upstream.
/// Returns how many reached it and how many were refused.
async fn burst(caches: &[Cache], key: &str, options: &CircuitBreakerOptions) -> (usize, usize) {
    let reached = Arc::new(AtomicUsize::new(0));
    let (events, mut seen) = mpsc::unbounded_channel::<()>();
    let (open_gate, gate) = watch::channel(false);
    let calls = (0..CALLERS).map(|n| {
        let cache = &caches[n % caches.len()];
        let events = events.clone();
        let reached = Arc::clone(&reached);
        let mut gate = gate.clone();
        async move {
            let arrived = events.clone();
            let origin = async move {
                reached.fetch_add(1, Ordering::SeqCst);
                arrived.send(()).unwrap();
                gate.wait_for(|open| *open).await.unwrap();
                Err::<(), _>(AppError::Upstream)
            };
            let result = circuit_breaker(cache, key, options, upstream_failure, origin).await;
            if result == Err(AppError::Open) {
                events.send(()).unwrap();
            }
            result
        }
    });
    let gatekeeper = async {
        for _ in 0..CALLERS {
            seen.recv().await.unwrap();
        }
        open_gate.send(true).unwrap();
    };
    let (results, ()) = tokio::join!(join_all(calls), gatekeeper);
    let refused = results
        .iter()
        .filter(|r| **r == Err(AppError::Open))
        .count();
    let failed = results
        .iter()
        .filter(|r| **r == Err(AppError::Upstream))
        .count();
    assert_eq!(refused + failed, CALLERS, "{results:?}");
    (reached.load(Ordering::SeqCst), refused)
}

/// While half-open: a successful probe closes the circuit, and the calls after it all run.
async fn a_successful_probe_closes(cache: &Cache, key: &str, options: &CircuitBreakerOptions) {
    let probe = circuit_breaker(cache, key, options, upstream_failure, async {
        Ok::<_, AppError>(1)
    })
    .await;
    assert_eq!(probe, Ok(1));
    assert!(!cache.exists(&format!("{key}:halfopen")).await.unwrap());
    let runs = AtomicUsize::new(0);
    for _ in 0..5 {
        let call = circuit_breaker(cache, key, options, upstream_failure, async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, AppError>(2)
        })
        .await;
        assert_eq!(call, Ok(2));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 5, "closed: every call runs");
}

#[tokio::test]
async fn half_open_lets_one_probe_reach_a_failing_upstream_in_memory() {
    let (cache, clock) = manual_cache();
    let options = options();
    open(&cache, "cb", &options).await;

    clock.advance(secs(10)); // the open time is over: half-open
    let (reached, refused) = burst(std::slice::from_ref(&cache), "cb", &options).await;
    assert_eq!(
        (reached, refused),
        (1, CALLERS - 1),
        "one probe reached the upstream"
    );
    assert!(
        cache.exists("cb:open").await.unwrap(),
        "the failed probe opened the circuit again"
    );

    clock.advance(secs(10)); // half-open again, with a fresh slot
    a_successful_probe_closes(&cache, "cb", &options).await;
}

#[tokio::test]
async fn half_open_probes_bound_how_many_calls_run_at_once() {
    let (cache, clock) = manual_cache();
    let options = options().half_open_probes(3);
    open(&cache, "cb", &options).await;
    clock.advance(secs(10));
    let (reached, refused) = burst(std::slice::from_ref(&cache), "cb", &options).await;
    assert_eq!((reached, refused), (3, CALLERS - 3));
}

/// The probe slot lives in Redis: callers on two connections share one bound.
#[cfg(feature = "redis")]
#[tokio::test]
async fn half_open_probes_are_shared_by_every_client_of_redis() {
    use crate::support::{redis_url, unique_prefix};
    let url = redis_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}key_prefix={}", unique_prefix("half-open"));
    let (a, b) = (Cache::new(), Cache::new());
    a.setup(&url).unwrap();
    b.setup(&url).unwrap();
    if !a.set("alive", &1u8, "1m").await.unwrap_or(false) {
        let _: Option<()> = cashews_testkit::skip_unless_ci(
            "half_open_probes_are_shared_by_every_client_of_redis",
            &format!("Redis does not answer at {}", redis_url()),
        );
        return;
    }
    let options = options();
    open(&a, "cb", &options).await;
    assert!(b.exists("cb:halfopen").await.unwrap());

    // The open time is over (what the expiry of `cb:open` does): half-open.
    a.delete("cb:open").await.unwrap();
    let (reached, refused) = burst(&[a.clone(), b.clone()], "cb", &options).await;
    assert_eq!(
        (reached, refused),
        (1, CALLERS - 1),
        "one probe over both clients"
    );
    assert!(
        b.exists("cb:open").await.unwrap(),
        "the failed probe opened the circuit again"
    );

    a.delete("cb:open").await.unwrap();
    a_successful_probe_closes(&b, "cb", &options).await;
    a.delete_many(&[
        "alive",
        "cb:open",
        "cb:halfopen",
        "cb:probes",
        "cb:total",
        "cb:fails",
    ])
    .await
    .unwrap();
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "10s", half_open_ttl = "1m", half_open_probes = 2, key = "macro", cache = MACRO.cache)]
async fn guarded(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Upstream) } else { Ok(7) }
}

static MACRO: std::sync::LazyLock<crate::support::Clocked> =
    std::sync::LazyLock::new(crate::support::clocked);

#[tokio::test]
async fn the_attribute_takes_half_open_probes() {
    assert_eq!(guarded(true).await, Err(AppError::Upstream));
    assert_eq!(guarded(false).await, Err(AppError::Open));
    MACRO.clock.advance(secs(10));
    // Half-open: the draw lets about half the calls through; a successful probe closes.
    let mut closed = false;
    for _ in 0..64 {
        if guarded(false).await == Ok(7) {
            closed = true;
            break;
        }
    }
    assert!(closed, "64 refused draws in a row");
    assert!(
        !MACRO
            .cache
            .exists("circuit_breaker:macro:halfopen")
            .await
            .unwrap()
    );
    assert_eq!(guarded(false).await, Ok(7));
}
