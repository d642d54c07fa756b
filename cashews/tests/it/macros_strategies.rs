//! The other strategy attributes, end to end through the macros: failover, soft, early, hit,
//! dynamic, rate_limit, slice_rate_limit, circuit_breaker (the runtime functions have their own
//! detailed tests in `strategies_caching` and `strategies_refusal`).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, MemoryBackend};

/// A cache on a manual clock, shared by the strategies and the backend.
struct Clocked {
    cache: Cache,
    clock: Clock,
}

fn clocked() -> Clocked {
    let clock = Clock::manual();
    let cache = Cache::new();
    cache
        .setup_backend(
            "",
            MemoryBackend::with_clock(MemoryOptions::default(), clock.clone()),
            CacheConfig::default(),
        )
        .unwrap();
    Clocked { cache, clock }
}

#[derive(Debug, PartialEq)]
enum ApiError {
    Down,
    Refused(String),
}

impl ApiError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Down)
    }
}

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self::Refused(error.to_string())
    }
}

static FAILOVER: LazyLock<Clocked> = LazyLock::new(clocked);
static FAILING: AtomicBool = AtomicBool::new(false);

#[cashews::failover(ttl = "1h", key = "status:{name}", when = ApiError::is_transient, cache = FAILOVER.cache)]
async fn status(name: &str) -> Result<String, ApiError> {
    if FAILING.load(Ordering::SeqCst) {
        return Err(ApiError::Down);
    }
    Ok(format!("{name} ok"))
}

#[tokio::test]
async fn failover_serves_the_last_good_result() {
    assert_eq!(status("db").await, Ok("db ok".to_owned()));
    assert!(
        FAILOVER.cache.exists("fail:status:db").await.unwrap(),
        "default prefix `fail`"
    );
    FAILING.store(true, Ordering::SeqCst);
    assert_eq!(status("db").await, Ok("db ok".to_owned()), "the fallback");
    assert_eq!(
        status("cache").await,
        Err(ApiError::Down),
        "no fallback stored"
    );
    FAILING.store(false, Ordering::SeqCst);
}

static SOFT: LazyLock<Clocked> = LazyLock::new(clocked);
static SOFT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::soft(ttl = "1h", soft_ttl = "1m", key = "rate", cache = SOFT.cache)]
async fn exchange_rate() -> Result<u32, ApiError> {
    let n = SOFT_RUNS.fetch_add(1, Ordering::SeqCst);
    if n == 2 {
        return Err(ApiError::Down);
    }
    Ok(100 + u32::try_from(n).unwrap())
}

#[tokio::test]
async fn soft_recomputes_after_the_soft_ttl_and_serves_stale_on_failure() {
    assert_eq!(exchange_rate().await, Ok(100));
    assert_eq!(exchange_rate().await, Ok(100), "fresh: a hit");
    SOFT.clock.advance(Duration::from_secs(61));
    assert_eq!(exchange_rate().await, Ok(101), "soft-expired: recomputed");
    SOFT.clock.advance(Duration::from_secs(61));
    assert_eq!(
        exchange_rate().await,
        Ok(101),
        "the recompute failed: the stale value"
    );
    assert_eq!(SOFT_RUNS.load(Ordering::SeqCst), 3);
}

static EARLY: LazyLock<Clocked> = LazyLock::new(clocked);
static EARLY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::early(ttl = "10m", early_ttl = "7m", key = "report:{day}", cache = EARLY.cache)]
async fn report(day: u32) -> String {
    let n = EARLY_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("report {day} #{n}")
}

#[tokio::test]
async fn early_refreshes_ahead_of_expiry() {
    assert_eq!(report(1).await, "report 1 #0");
    EARLY.clock.advance(Duration::from_secs(60));
    assert_eq!(report(1).await, "report 1 #0", "before early_ttl: a hit");
    EARLY.clock.advance(Duration::from_secs(7 * 60));
    let refreshed = report(1).await;
    assert_eq!(
        EARLY_RUNS.load(Ordering::SeqCst),
        2,
        "past early_ttl: one refresh ({refreshed})"
    );
    assert_eq!(report(1).await, "report 1 #1");
}

static HITS: LazyLock<Clocked> = LazyLock::new(clocked);
static HIT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::hit(ttl = "1h", cache_hits = 2, key = "popular", cache = HITS.cache)]
async fn popular() -> usize {
    HIT_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn hit_recomputes_after_cache_hits() {
    let first = popular().await;
    popular().await;
    popular().await;
    let runs_after_three = HIT_RUNS.load(Ordering::SeqCst);
    assert_eq!(first, 0);
    assert!(runs_after_three >= 1);
    for _ in 0..6 {
        popular().await;
    }
    assert!(
        HIT_RUNS.load(Ordering::SeqCst) > runs_after_three,
        "after cache_hits hits the value is computed again"
    );
}

static LIMITS: LazyLock<Clocked> = LazyLock::new(clocked);
static LIMITED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::rate_limit(limit = 3, period = "1m", key = "api:{user}", cache = LIMITS.cache)]
async fn api_call(user: u32) -> Result<u32, ApiError> {
    LIMITED_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(user)
}

#[cashews::slice_rate_limit(limit = 2, period = "10s", key = "slice:{user}", cache = LIMITS.cache)]
async fn sliced(user: u32) -> Result<u32, ApiError> {
    Ok(user)
}

#[tokio::test]
async fn rate_limits_refuse_through_the_error_type() {
    for _ in 0..3 {
        assert_eq!(api_call(1).await, Ok(1));
    }
    let refused = api_call(1).await;
    assert!(
        matches!(refused, Err(ApiError::Refused(ref m)) if m.contains("rate limit")),
        "{refused:?}"
    );
    assert_eq!(
        LIMITED_RUNS.load(Ordering::SeqCst),
        3,
        "a refused call does not run the body"
    );
    assert_eq!(api_call(2).await, Ok(2), "another key, another window");
    LIMITS.clock.advance(Duration::from_secs(61));
    assert_eq!(api_call(1).await, Ok(1), "a new window");

    assert_eq!(sliced(1).await, Ok(1));
    assert_eq!(sliced(1).await, Ok(1));
    assert!(sliced(1).await.is_err());
    LIMITS.clock.advance(Duration::from_secs(11));
    assert_eq!(sliced(1).await, Ok(1));
}

static BREAKER: LazyLock<Clocked> = LazyLock::new(clocked);
static BREAKER_FAILING: AtomicBool = AtomicBool::new(true);
static BREAKER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::circuit_breaker(
    errors_rate = 50,
    period = "1m",
    ttl = "5m",
    min_calls = 4,
    when = ApiError::is_transient,
    cache = BREAKER.cache
)]
async fn upstream(id: u32) -> Result<u32, ApiError> {
    BREAKER_RUNS.fetch_add(1, Ordering::SeqCst);
    if BREAKER_FAILING.load(Ordering::SeqCst) {
        return Err(ApiError::Down);
    }
    Ok(id)
}

#[tokio::test]
async fn the_circuit_opens_on_errors_and_closes_after_ttl() {
    for id in 0..4 {
        assert_eq!(upstream(id).await, Err(ApiError::Down));
    }
    let runs = BREAKER_RUNS.load(Ordering::SeqCst);
    let refused = upstream(9).await;
    assert!(
        matches!(refused, Err(ApiError::Refused(ref m)) if m.contains("circuit")),
        "{refused:?}"
    );
    assert_eq!(
        BREAKER_RUNS.load(Ordering::SeqCst),
        runs,
        "an open circuit does not call"
    );
    BREAKER_FAILING.store(false, Ordering::SeqCst);
    BREAKER.clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(upstream(5).await, Ok(5), "closed again after ttl");
}

static INVALIDATE: LazyLock<Clocked> = LazyLock::new(clocked);
static PROFILE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1h", key = "user:{id}:profile", cache = INVALIDATE.cache)]
async fn user_profile(id: &str) -> String {
    PROFILE_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("profile {id}")
}

#[cashews::invalidate(key = "user:{id}:*", cache = INVALIDATE.cache)]
async fn rename(id: &str, fail: bool) -> Result<(), ApiError> {
    if fail {
        return Err(ApiError::Down);
    }
    Ok(())
}

#[tokio::test]
async fn invalidate_deletes_after_success_and_escapes_argument_values() {
    user_profile("1").await;
    user_profile("2").await;
    assert!(rename("1", true).await.is_err());
    assert!(
        INVALIDATE.cache.exists("user:1:profile").await.unwrap(),
        "an error invalidates nothing"
    );
    rename("1", false).await.unwrap();
    assert!(!INVALIDATE.cache.exists("user:1:profile").await.unwrap());
    assert!(INVALIDATE.cache.exists("user:2:profile").await.unwrap());
    user_profile("1").await;
    assert_eq!(
        PROFILE_RUNS.load(Ordering::SeqCst),
        3,
        "recomputed after invalidation"
    );
    // A hostile id: `*` from the caller must not widen the delete to every user.
    rename("*", false).await.unwrap();
    assert!(INVALIDATE.cache.exists("user:1:profile").await.unwrap());
    assert!(INVALIDATE.cache.exists("user:2:profile").await.unwrap());
}
