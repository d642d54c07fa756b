//! The other strategy attributes, end to end through the macros: failover, soft, early, hit,
//! dynamic, rate_limit, slice_rate_limit, circuit_breaker (the runtime functions have their own
//! detailed tests in `strategies_caching` and `strategies_refusal`).

use crate::support::{Clocked, clocked};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

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

static STREAMS: LazyLock<Clocked> = LazyLock::new(clocked);
static POLLED: AtomicUsize = AtomicUsize::new(0);

#[cashews::iterator(ttl = "10m", key = "rows:{n}", cache = STREAMS.cache)]
fn rows(n: u32) -> impl futures_core::Stream<Item = Result<u32, ApiError>> {
    futures_util::stream::iter(0..n).map(|i| {
        POLLED.fetch_add(1, Ordering::SeqCst);
        if i == 99 { Err(ApiError::Down) } else { Ok(i) }
    })
}

#[tokio::test]
async fn iterator_replays_a_complete_stream_without_polling_the_source() {
    let first: Vec<_> = rows(3).collect().await;
    assert_eq!(first, vec![Ok(0), Ok(1), Ok(2)]);
    let replay: Vec<_> = rows(3).collect().await;
    assert_eq!(replay, first);
    assert_eq!(
        POLLED.load(Ordering::SeqCst),
        3,
        "the replay polled nothing"
    );
    let half: Vec<_> = rows(5).take(2).collect().await;
    assert_eq!(half.len(), 2);
    let full: Vec<_> = rows(5).collect().await;
    assert_eq!(full.len(), 5, "a half-read stream left no marker");
    assert_eq!(POLLED.load(Ordering::SeqCst), 3 + 2 + 5);
    STREAMS.clock.advance(Duration::from_secs(601));
    let _: Vec<_> = rows(3).collect().await;
    assert_eq!(POLLED.load(Ordering::SeqCst), 13, "expired: streamed again");
}

static BLOOMS: LazyLock<Clocked> = LazyLock::new(clocked);
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

#[cashews::bloom(capacity = 1000, name = "{email}", cache = BLOOMS.cache)]
async fn known(email: &str) -> bool {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    email.starts_with("ann")
}

#[tokio::test]
async fn bloom_answers_definitely_not_without_calling() {
    // Nothing is in the filter yet: every member is "definitely not".
    assert!(!known("ann@example.com").await);
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 0);
    let key = concat!("bloom:", module_path!(), ":known");
    cashews::strategy::bloom_add(
        &BLOOMS.cache,
        key,
        "ann@example.com",
        &cashews::strategy::BloomOptions::new(1000),
    )
    .await
    .unwrap();
    assert!(known("ann@example.com").await, "a member asks the function");
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 1);
}

static PERF: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::perf(ttl = "1m", key = "slow:{id}", trace_size = 3, cache = PERF.cache)]
async fn sometimes_slow(id: u32, ms: u64) -> Result<u32, ApiError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(id)
}

#[tokio::test(start_paused = true)]
async fn perf_refuses_after_a_slow_call_then_recovers() {
    for _ in 0..3 {
        assert_eq!(sometimes_slow(1, 10).await, Ok(1));
    }
    assert_eq!(
        sometimes_slow(1, 500).await,
        Ok(1),
        "the slow call itself returns"
    );
    let refused = sometimes_slow(1, 10).await;
    assert!(matches!(refused, Err(ApiError::Refused(_))), "{refused:?}");
    assert_eq!(
        sometimes_slow(2, 10).await,
        Ok(2),
        "another key is not refused"
    );
    PERF.clock.advance(Duration::from_secs(61));
    assert_eq!(sometimes_slow(1, 10).await, Ok(1), "the lock expired");
}

static LOCKS: LazyLock<Clocked> = LazyLock::new(clocked);
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MAX_RUNNING: AtomicUsize = AtomicUsize::new(0);
static COLD_RUNS: AtomicUsize = AtomicUsize::new(0);
static SHARED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::locked(ttl = "30s", key = "job", cache = LOCKS.cache)]
async fn job() -> u32 {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_RUNNING.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    7
}

#[cashews::locked(ttl = "30s", key = "exclusive", wait = false, cache = LOCKS.cache)]
async fn exclusive() -> Result<u32, ApiError> {
    Ok(1)
}

#[cashews::cache(ttl = "1h", key = "cold", lock = true, protected = false, cache = LOCKS.cache)]
async fn cold() -> u32 {
    COLD_RUNS.fetch_add(1, Ordering::SeqCst);
    // Long enough that every caller has arrived while the first one runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    3
}

#[cashews::thunder_protection(key = "shared:{n}", cache = LOCKS.cache)]
async fn shared(n: u32) -> Result<u32, String> {
    SHARED_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Err(format!("failed {n}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_runs_one_at_a_time_and_refuses_without_wait() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        tasks.spawn(job());
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), 7);
    }
    assert_eq!(MAX_RUNNING.load(Ordering::SeqCst), 1);
    let guard = LOCKS.cache.lock("locked:exclusive", "30s").await.unwrap();
    assert!(matches!(exclusive().await, Err(ApiError::Refused(_))));
    guard.release().await.unwrap();
    assert_eq!(exclusive().await, Ok(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_true_and_thunder_protection_run_the_body_once() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        tasks.spawn(cold());
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), 3);
    }
    assert_eq!(
        COLD_RUNS.load(Ordering::SeqCst),
        1,
        "lock = true without in-process coalescing"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        tasks.spawn(shared(1));
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(
            done.unwrap(),
            Err("failed 1".to_owned()),
            "every caller gets the one run's error"
        );
    }
    assert_eq!(SHARED_RUNS.load(Ordering::SeqCst), 1);
}

static ERRORS: LazyLock<Clocked> = LazyLock::new(clocked);
static ERROR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum LookupError {
    NotFound(u32),
}

#[cashews::cache(ttl = "1m", key = "user:{id}", condition = with_errors, cache = ERRORS.cache)]
async fn find_user(id: u32) -> Result<String, LookupError> {
    ERROR_RUNS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        Err(LookupError::NotFound(id))
    } else {
        Ok(format!("user {id}"))
    }
}

#[cashews::cache(ttl = "1m", key = "only:{id}", condition = only_errors, cache = ERRORS.cache)]
async fn only_errors(id: u32) -> Result<String, LookupError> {
    ERROR_RUNS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        Err(LookupError::NotFound(id))
    } else {
        Ok(format!("user {id}"))
    }
}

#[tokio::test]
async fn with_errors_replays_a_cached_error_and_only_errors_skips_values() {
    assert_eq!(find_user(0).await, Err(LookupError::NotFound(0)));
    assert_eq!(
        find_user(0).await,
        Err(LookupError::NotFound(0)),
        "replayed from the cache"
    );
    assert_eq!(find_user(1).await, Ok("user 1".to_owned()));
    assert_eq!(find_user(1).await, Ok("user 1".to_owned()));
    assert_eq!(ERROR_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(only_errors(0).await, Err(LookupError::NotFound(0)));
    assert_eq!(only_errors(0).await, Err(LookupError::NotFound(0)));
    assert_eq!(only_errors(1).await, Ok("user 1".to_owned()));
    assert_eq!(only_errors(1).await, Ok("user 1".to_owned()));
    assert_eq!(
        ERROR_RUNS.load(Ordering::SeqCst),
        5,
        "errors cached once, values never"
    );
}

static CONDITIONS: LazyLock<Clocked> = LazyLock::new(clocked);
static CONDITION_RUNS: AtomicUsize = AtomicUsize::new(0);

fn worth_keeping(result: &Result<u32, ApiError>) -> bool {
    matches!(result, Ok(n) if *n >= 10)
}

#[cashews::cache(ttl = "1h", key = "score:{n}", condition = worth_keeping, cache = CONDITIONS.cache)]
async fn score(n: u32) -> Result<u32, ApiError> {
    CONDITION_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(n)
}

#[tokio::test]
async fn a_custom_condition_decides_what_is_stored() {
    score(5).await.unwrap();
    score(5).await.unwrap();
    assert_eq!(
        CONDITION_RUNS.load(Ordering::SeqCst),
        2,
        "5 is not worth keeping"
    );
    score(50).await.unwrap();
    score(50).await.unwrap();
    assert_eq!(CONDITION_RUNS.load(Ordering::SeqCst), 3, "50 is stored");
}
