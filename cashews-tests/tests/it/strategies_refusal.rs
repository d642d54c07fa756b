//! Refusal strategies: `rate_limit` (fixed window), `slice_rate_limit` (sliding window) and
//! `circuit_breaker`, on a memory backend with a manual clock (time moves, nobody sleeps).

mod circuit_breaker;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{manual_cache as cache_on_manual_clock, ms, secs};
use cashews::backend::Expiry;
use cashews::config::CacheConfig;
use cashews::strategy::{
    CircuitBreakerOptions, RateLimitOptions, SliceRateLimitOptions, circuit_breaker, rate_limit,
    rate_limited, slice_rate_limit, slice_rate_limited,
};
use cashews::{Cache, Clock, Error, MemoryBackend};

/// The caller's own error type: refusals reach it through `From<cashews::Error>`.
#[derive(Debug, Clone, PartialEq)]
enum AppError {
    Limited(Option<Duration>),
    Open(Option<Duration>),
    Cache(String),
    /// A failure the circuit breaker counts.
    Upstream,
    /// A failure the circuit breaker is told to ignore.
    NotFound,
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::RateLimited { retry_after, .. } => Self::Limited(retry_after),
            Error::CircuitOpen { retry_after } => Self::Open(retry_after),
            other => Self::Cache(other.to_string()),
        }
    }
}

/// Counts how often an origin ran.
#[derive(Debug, Default, Clone)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// An origin that counts its run and returns `result`.
    fn origin<T>(
        &self,
        result: Result<T, AppError>,
    ) -> impl Future<Output = Result<T, AppError>> + use<T> {
        let runs = Arc::clone(&self.0);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            result
        }
    }
}

fn is_limited(result: &Result<(), Error>) -> bool {
    matches!(result, Err(Error::RateLimited { .. }))
}

// ----- rate_limit (fixed window) ----------------------------------------------------------

#[tokio::test]
async fn rate_limit_lets_limit_calls_through_then_refuses() {
    let (cache, _clock) = cache_on_manual_clock();
    for limit in 1..=9 {
        let key = format!("rate_limit:n{limit}");
        let options = RateLimitOptions::new(limit, secs(1));
        for _ in 0..limit {
            rate_limit(&cache, &key, &options).await.unwrap();
        }
        assert!(
            is_limited(&rate_limit(&cache, &key, &options).await),
            "call {} with limit {limit}",
            limit + 1
        );
    }
}

#[tokio::test]
async fn rate_limit_window_ends_exactly_after_period() {
    let (cache, clock) = cache_on_manual_clock();
    let options = RateLimitOptions::new(1, secs(1));
    rate_limit(&cache, "k", &options).await.unwrap();
    assert!(is_limited(&rate_limit(&cache, "k", &options).await));
    clock.advance(ms(10));
    assert!(is_limited(&rate_limit(&cache, "k", &options).await));
    clock.advance(ms(989)); // 999 ms after the first call: same window
    assert!(is_limited(&rate_limit(&cache, "k", &options).await));
    clock.advance(ms(1)); // exactly one period: a new window
    rate_limit(&cache, "k", &options).await.unwrap();
    assert!(is_limited(&rate_limit(&cache, "k", &options).await));
}

#[tokio::test]
async fn rate_limit_refusal_tells_what_is_left_of_the_window_without_extending_it() {
    let (cache, clock) = cache_on_manual_clock();
    let options = RateLimitOptions::new(1, secs(10));
    rate_limit(&cache, "k", &options).await.unwrap();
    clock.advance(secs(4));
    let err = rate_limit(&cache, "k", &options).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == secs(6)));
    clock.advance(secs(3));
    let err = rate_limit(&cache, "k", &options).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == secs(3)));
    clock.advance(secs(3)); // refusals did not push the window's end
    rate_limit(&cache, "k", &options).await.unwrap();
}

#[tokio::test]
async fn rate_limit_ban_starts_at_the_first_refusal_and_refusals_keep_counting() {
    let (cache, clock) = cache_on_manual_clock();
    let options = RateLimitOptions::new(2, secs(1)).ttl(secs(3));
    let key = "rate_limit:ban";
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(rate_limit(&cache, key, &options).await);
    }
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    assert!(
        matches!(outcomes[2], Err(Error::RateLimited { retry_after: Some(d), .. }) if d == secs(3))
    );
    assert!(
        matches!(outcomes[3], Err(Error::RateLimited { retry_after: Some(d), .. }) if d == secs(3))
    );
    assert_eq!(cache.get::<i64>(key).await.unwrap(), Some(4));
    assert_eq!(cache.get_expire(key).await.unwrap(), Expiry::In(secs(3)));

    clock.advance(secs(1)); // the window would have ended; the ban has not
    let err = rate_limit(&cache, key, &options).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == secs(2)));
    assert_eq!(cache.get::<i64>(key).await.unwrap(), Some(5));
    clock.advance(secs(2));
    rate_limit(&cache, key, &options).await.unwrap();
    assert_eq!(cache.get::<i64>(key).await.unwrap(), Some(1));
    assert_eq!(cache.get_expire(key).await.unwrap(), Expiry::In(secs(1)));
}

#[tokio::test]
async fn rate_limit_of_zero_refuses_every_call() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = RateLimitOptions::new(0, secs(1));
    assert!(is_limited(&rate_limit(&cache, "k", &options).await));
}

#[tokio::test]
async fn rate_limited_does_not_run_the_origin_when_refused() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = RateLimitOptions::new(2, secs(60));
    let mut results = Vec::new();
    for i in 0..5 {
        results.push(rate_limited(&cache, "k", &options, runs.origin(Ok(i))).await);
    }
    assert_eq!(runs.count(), 2);
    assert_eq!(results[..2], [Ok(0), Ok(1)]);
    for refused in &results[2..] {
        assert_eq!(refused, &Err(AppError::Limited(Some(secs(60)))));
    }
    // The origin's own errors pass through unchanged.
    clock.advance(secs(60));
    let failed: Result<u8, AppError> =
        rate_limited(&cache, "k", &options, runs.origin(Err(AppError::Upstream))).await;
    assert_eq!(failed, Err(AppError::Upstream));
    assert_eq!(runs.count(), 3);
}

#[tokio::test]
async fn rate_limits_are_per_key() {
    let (cache, _clock) = cache_on_manual_clock();
    let fixed = RateLimitOptions::new(1, secs(1));
    rate_limit(&cache, "rate_limit:user:test", &fixed)
        .await
        .unwrap();
    assert!(is_limited(
        &rate_limit(&cache, "rate_limit:user:test", &fixed).await
    ));
    rate_limit(&cache, "rate_limit:user:new", &fixed)
        .await
        .unwrap();

    let sliding = SliceRateLimitOptions::new(1, secs(1));
    slice_rate_limit(&cache, "srl:user:test", &sliding)
        .await
        .unwrap();
    assert!(is_limited(
        &slice_rate_limit(&cache, "srl:user:test", &sliding).await
    ));
    slice_rate_limit(&cache, "srl:user:new", &sliding)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_backend_lets_rate_limited_calls_through() {
    let (cache, _clock) = cache_on_manual_clock();
    // A key holding text makes `incr` and `slice_incr` fail with a backend error.
    cache
        .set("broken", "not a counter", None::<u64>)
        .await
        .unwrap();
    let runs = Runs::default();
    let fixed = RateLimitOptions::new(0, secs(1));
    let sliding = SliceRateLimitOptions::new(0, secs(1));
    for _ in 0..3 {
        rate_limited(&cache, "broken", &fixed, runs.origin(Ok(())))
            .await
            .unwrap();
        slice_rate_limited(&cache, "broken", &sliding, runs.origin(Ok(())))
            .await
            .unwrap();
    }
    assert_eq!(runs.count(), 6);
}

#[tokio::test]
async fn safe_mode_and_disabled_caches_let_rate_limited_calls_through() {
    let clock = Clock::manual();
    let safe = Cache::new();
    safe.setup_backend(
        "",
        MemoryBackend::with_clock(Default::default(), clock.clone()),
        CacheConfig::parse("mem://?suppress=true").unwrap(),
    )
    .unwrap();
    safe.set("broken", "not a counter", None::<u64>)
        .await
        .unwrap();
    rate_limit(&safe, "broken", &RateLimitOptions::new(0, secs(1)))
        .await
        .unwrap();

    let (disabled, _clock) = cache_on_manual_clock();
    disabled.disable(&[]);
    let fixed = RateLimitOptions::new(0, secs(1));
    let sliding = SliceRateLimitOptions::new(0, secs(1));
    for _ in 0..3 {
        rate_limit(&disabled, "k", &fixed).await.unwrap();
        slice_rate_limit(&disabled, "k", &sliding).await.unwrap();
    }
}

#[tokio::test]
async fn an_unconfigured_cache_refuses_to_guess_and_runs_nothing() {
    let cache = Cache::new();
    let runs = Runs::default();
    let fixed: Result<(), AppError> = rate_limited(
        &cache,
        "k",
        &RateLimitOptions::new(1, secs(1)),
        runs.origin(Ok(())),
    )
    .await;
    let sliding: Result<(), AppError> = slice_rate_limited(
        &cache,
        "k",
        &SliceRateLimitOptions::new(1, secs(1)),
        runs.origin(Ok(())),
    )
    .await;
    let breaker: Result<(), AppError> = circuit_breaker(
        &cache,
        "k",
        &CircuitBreakerOptions::new(50, secs(1), secs(1)),
        |_| true,
        runs.origin(Ok(())),
    )
    .await;
    for result in [fixed, sliding, breaker] {
        assert!(matches!(result, Err(AppError::Cache(ref m)) if m.contains("setup")));
    }
    assert_eq!(runs.count(), 0);
}

/// 200 callers released at once against a limit of 50, on two worker threads.
async fn race_200_callers<F, Fut>(call: F) -> (usize, usize)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), AppError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let call = call();
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let (mut passed, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => passed += 1,
            Err(AppError::Limited(_)) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    (passed, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_lets_exactly_limit_of_200_concurrent_callers_through() {
    let (cache, _clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = RateLimitOptions::new(50, secs(60));
    let (passed, refused) = race_200_callers(|| {
        let cache = cache.clone();
        let origin = runs.origin(Ok(()));
        async move { rate_limited(&cache, "rate_limit:race", &options, origin).await }
    })
    .await;
    assert_eq!((passed, refused, runs.count()), (50, 150, 50));
    assert_eq!(
        cache.get::<i64>("rate_limit:race").await.unwrap(),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slice_rate_limit_lets_exactly_limit_of_200_concurrent_callers_through() {
    let (cache, _clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = SliceRateLimitOptions::new(50, secs(60));
    // The clock stands still: all 200 events share one millisecond and still count apart.
    let (passed, refused) = race_200_callers(|| {
        let cache = cache.clone();
        let origin = runs.origin(Ok(()));
        async move { slice_rate_limited(&cache, "srl:race", &options, origin).await }
    })
    .await;
    assert_eq!((passed, refused, runs.count()), (50, 150, 50));
}

#[test]
fn rate_limit_rejects_a_zero_period() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = RateLimitOptions::new(1, Duration::ZERO)
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("period"), "{problem}");
}

#[test]
fn rate_limit_rejects_a_zero_ban() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = RateLimitOptions::new(1, secs(1))
        .ttl(Duration::ZERO)
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("ban ttl"), "{problem}");
}

#[test]
fn slice_rate_limit_rejects_a_zero_period() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = SliceRateLimitOptions::new(1, Duration::ZERO)
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("period"), "{problem}");
}

// ----- slice_rate_limit (sliding window) --------------------------------------------------

#[tokio::test]
async fn slice_rate_limit_lets_limit_calls_through_then_refuses() {
    let (cache, _clock) = cache_on_manual_clock();
    for limit in 1..=9 {
        let key = format!("srl:n{limit}");
        let options = SliceRateLimitOptions::new(limit, secs(10));
        for _ in 0..limit {
            slice_rate_limit(&cache, &key, &options).await.unwrap();
        }
        assert!(
            is_limited(&slice_rate_limit(&cache, &key, &options).await),
            "call {} with limit {limit}",
            limit + 1
        );
    }
}

#[tokio::test]
async fn slice_rate_limit_frees_the_window_after_period() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = SliceRateLimitOptions::new(2, ms(300));
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(slice_rate_limited(&cache, "srl:k", &options, runs.origin(Ok(()))).await);
    }
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    assert!(matches!(outcomes[2], Err(AppError::Limited(_))));
    assert!(matches!(outcomes[3], Err(AppError::Limited(_))));
    assert_eq!(runs.count(), 2);
    clock.advance(ms(350));
    slice_rate_limited(&cache, "srl:k", &options, runs.origin(Ok(())))
        .await
        .unwrap();
    assert_eq!(runs.count(), 3);
}

#[tokio::test]
async fn slice_rate_limit_window_slides_by_the_millisecond() {
    let (cache, clock) = cache_on_manual_clock();
    let options = SliceRateLimitOptions::new(2, secs(1));
    slice_rate_limit(&cache, "w", &options).await.unwrap(); // t = 0
    clock.advance(ms(600));
    slice_rate_limit(&cache, "w", &options).await.unwrap(); // t = 600
    clock.advance(ms(400));
    // t = 1000: the event at 0 is exactly one period old and has left the window; the one at
    // 600 is still in it (a fixed window would have reset both).
    slice_rate_limit(&cache, "w", &options).await.unwrap();
    assert!(is_limited(&slice_rate_limit(&cache, "w", &options).await));
}

#[tokio::test]
async fn slice_rate_limit_records_only_the_first_refusal() {
    let (cache, clock) = cache_on_manual_clock();
    let options = SliceRateLimitOptions::new(2, secs(1));
    slice_rate_limit(&cache, "w", &options).await.unwrap(); // t = 0
    slice_rate_limit(&cache, "w", &options).await.unwrap(); // t = 0
    clock.advance(ms(500));
    for _ in 0..5 {
        // The first refusal (t = 500) takes the window's spare slot; the others add nothing.
        assert!(is_limited(&slice_rate_limit(&cache, "w", &options).await));
    }
    clock.advance(ms(500));
    // t = 1000: the two passes left; the recorded refusal at 500 remains: one slot is free.
    slice_rate_limit(&cache, "w", &options).await.unwrap();
    assert!(is_limited(&slice_rate_limit(&cache, "w", &options).await));
}

#[tokio::test]
async fn slice_rate_limit_retry_after_is_when_the_window_is_surely_empty() {
    let (cache, clock) = cache_on_manual_clock();
    let options = SliceRateLimitOptions::new(1, secs(10));
    slice_rate_limit(&cache, "w", &options).await.unwrap(); // t = 0
    clock.advance(secs(4));
    let err = slice_rate_limit(&cache, "w", &options).await.unwrap_err(); // recorded at 4 s
    assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == secs(10)));
    clock.advance(secs(1));
    let err = slice_rate_limit(&cache, "w", &options).await.unwrap_err(); // not recorded
    assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == secs(9)));
    clock.advance(secs(9));
    slice_rate_limit(&cache, "w", &options).await.unwrap(); // t = 14 s
}

#[test]
fn options_build_as_constants() {
    const FIXED: RateLimitOptions = RateLimitOptions::new(5, Duration::from_secs(1));
    const SLIDING: SliceRateLimitOptions = SliceRateLimitOptions::new(5, Duration::from_secs(1));
    const BREAKER: CircuitBreakerOptions =
        CircuitBreakerOptions::new(50, Duration::from_secs(1), Duration::from_secs(1))
            .min_calls(3)
            .half_open_ttl(Duration::from_secs(1))
            .half_open_share(100);
    assert_eq!((FIXED.limit, FIXED.ttl), (5, None));
    assert_eq!(SLIDING.period, secs(1));
    assert_eq!((BREAKER.min_calls, BREAKER.half_open_share), (3, 100));
    assert_eq!(
        [
            RateLimitOptions::DEFAULT_PREFIX,
            SliceRateLimitOptions::DEFAULT_PREFIX,
            CircuitBreakerOptions::DEFAULT_PREFIX
        ],
        ["rate_limit", "srl", "circuit_breaker"]
    );
}
