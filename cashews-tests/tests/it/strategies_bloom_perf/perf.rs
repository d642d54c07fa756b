//! `perf`: degradation detection on a paused Tokio clock, so latencies are exact and nobody
//! sleeps for real.

use std::sync::atomic::Ordering;
use std::time::Duration;

use cashews::backend::Expiry;
use cashews::strategy::{PerfOptions, perf};
use cashews::{Cache, Clock, Error};

use super::{Runs, Spy};
use crate::support::{manual_cache as cache_on_manual_clock, ms, secs};

/// The caller's own error type: refusals reach it through `From<cashews::Error>`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum AppError {
    Degraded(String, Option<Duration>),
    Cache(String),
    Upstream,
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::PerformanceDegraded { key, retry_after } => Self::Degraded(key, retry_after),
            other => Self::Cache(other.to_string()),
        }
    }
}

fn is_degraded<T>(result: &Result<T, AppError>) -> bool {
    matches!(result, Err(AppError::Degraded(..)))
}

#[tokio::test(start_paused = true)]
async fn perf_detects_degradation_refuses_for_ttl_then_recovers() {
    let (cache, clock) = cache_on_manual_clock();
    let options = PerfOptions::new(secs(10)).trace_size(3);
    let runs = Runs::default();
    let key = "perf:search";
    for _ in 0..3 {
        perf(&cache, key, &options, runs.slow(ms(10), Ok(1)))
            .await
            .unwrap();
    }
    // Over twice the mean of the trace: this call still returns its own result…
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(100), Ok(2))).await,
        Ok(2)
    );
    assert_eq!(runs.count(), 4);
    // …and the following calls are refused, without running.
    let refused = perf(&cache, key, &options, runs.slow(ms(10), Ok(3))).await;
    assert_eq!(
        refused,
        Err(AppError::Degraded(key.to_owned(), Some(secs(10))))
    );
    clock.advance(secs(4));
    let refused = perf(&cache, key, &options, runs.slow(ms(10), Ok(3))).await;
    assert_eq!(
        refused,
        Err(AppError::Degraded(key.to_owned(), Some(secs(6))))
    );
    assert_eq!(runs.count(), 4);
    assert_eq!(
        cache.get_expire("perf:search:lock").await.unwrap(),
        Expiry::In(secs(6))
    );

    // After ttl, calls run again, on a fresh trace: a slow call is not judged until the
    // trace is full again.
    clock.advance(secs(6));
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(100), Ok(4))).await,
        Ok(4)
    );
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(10), Ok(5))).await,
        Ok(5)
    );
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(10), Ok(6))).await,
        Ok(6)
    );
    assert_eq!(runs.count(), 7);
    // Trace 100, 10, 10 (mean 40): 70 ms is not over 80 ms; 90 ms over the mean of
    // 10, 10, 70 (30) is.
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(70), Ok(7))).await,
        Ok(7)
    );
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(10), Ok(8))).await,
        Ok(8)
    );
    assert_eq!(
        perf(&cache, key, &options, runs.slow(ms(90), Ok(9))).await,
        Ok(9)
    );
    assert!(is_degraded(
        &perf(&cache, key, &options, runs.slow(ms(1), Ok(10))).await
    ));
    assert_eq!(runs.count(), 10);
}

#[tokio::test(start_paused = true)]
async fn perf_judges_only_once_the_trace_is_full() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = PerfOptions::new(secs(60)); // trace_size 10
    let runs = Runs::default();
    for _ in 0..9 {
        perf(&cache, "perf:k", &options, runs.slow(ms(10), Ok(())))
            .await
            .unwrap();
    }
    // The 10th call fills the trace: slow, but nothing to compare with yet.
    perf(&cache, "perf:k", &options, runs.slow(ms(500), Ok(())))
        .await
        .unwrap();
    perf(&cache, "perf:k", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    // Trace: 8 × 10 ms, 500 ms, 10 ms: mean 59 ms. 118 ms is not over twice the mean.
    perf(&cache, "perf:k", &options, runs.slow(ms(118), Ok(())))
        .await
        .unwrap();
    perf(&cache, "perf:k", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    assert_eq!(runs.count(), 13);
    // Trace now: 6 × 10, 500, 10, 118, 10 → mean 70.8 ms; 142 ms is over twice that.
    perf(&cache, "perf:k", &options, runs.slow(ms(142), Ok(())))
        .await
        .unwrap();
    assert!(is_degraded(
        &perf(&cache, "perf:k", &options, runs.slow(ms(10), Ok(()))).await
    ));
    assert_eq!(runs.count(), 14);
}

#[tokio::test(start_paused = true)]
async fn perf_measures_failures_too_and_passes_them_through() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = PerfOptions::new(secs(60)).trace_size(2);
    let runs = Runs::default();
    let fast: Result<(), AppError> = perf(
        &cache,
        "perf:f",
        &options,
        runs.slow(ms(10), Err(AppError::Upstream)),
    )
    .await;
    assert_eq!(fast, Err(AppError::Upstream));
    perf(&cache, "perf:f", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    // A slow timeout is a degradation too.
    let slow: Result<(), AppError> = perf(
        &cache,
        "perf:f",
        &options,
        runs.slow(ms(1000), Err(AppError::Upstream)),
    )
    .await;
    assert_eq!(slow, Err(AppError::Upstream));
    assert!(is_degraded(
        &perf(&cache, "perf:f", &options, runs.slow(ms(10), Ok(()))).await
    ));
    assert_eq!(runs.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn perf_forgets_latencies_older_than_the_window() {
    let (cache, clock) = cache_on_manual_clock();
    let options = PerfOptions::new(secs(60)).trace_size(3).window(secs(30));
    let runs = Runs::default();
    for _ in 0..3 {
        perf(&cache, "perf:w", &options, runs.slow(ms(10), Ok(())))
            .await
            .unwrap();
    }
    clock.advance(secs(30));
    // The trace is gone: this slow call starts a new one instead of being judged.
    perf(&cache, "perf:w", &options, runs.slow(ms(500), Ok(())))
        .await
        .unwrap();
    perf(&cache, "perf:w", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    assert_eq!(runs.count(), 5);

    // Latencies age one by one: the two recorded 20 s apart leave at different times.
    let (cache, clock) = cache_on_manual_clock();
    perf(&cache, "perf:w", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    clock.advance(secs(20));
    perf(&cache, "perf:w", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    perf(&cache, "perf:w", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    clock.advance(secs(10)); // the first latency is 30 s old: two are left
    perf(&cache, "perf:w", &options, runs.slow(ms(500), Ok(())))
        .await
        .unwrap();
    perf(&cache, "perf:w", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    assert_eq!(runs.count(), 10);
}

#[tokio::test(start_paused = true)]
async fn perf_takes_a_custom_condition() {
    fn over_50ms(latency: Duration, trace: &[Duration]) -> bool {
        assert_eq!(trace.len(), 2, "the condition sees the full trace");
        latency > Duration::from_millis(50)
    }
    let (cache, _clock) = cache_on_manual_clock();
    let options = PerfOptions::new(secs(60))
        .trace_size(2)
        .condition(over_50ms);
    let runs = Runs::default();
    for took in [100, 100, 50] {
        perf(&cache, "perf:c", &options, runs.slow(ms(took), Ok(())))
            .await
            .unwrap();
    }
    perf(&cache, "perf:c", &options, runs.slow(ms(51), Ok(())))
        .await
        .unwrap();
    assert!(is_degraded(
        &perf(&cache, "perf:c", &options, runs.slow(ms(1), Ok(()))).await
    ));
    assert_eq!(runs.count(), 4);
}

#[test]
fn perf_default_condition_is_strictly_over_twice_the_mean() {
    let trace = [ms(10), ms(20), ms(30)];
    assert!(!PerfOptions::twice_the_mean(ms(40), &trace));
    assert!(PerfOptions::twice_the_mean(
        ms(40) + Duration::from_nanos(1),
        &trace
    ));
    assert!(!PerfOptions::twice_the_mean(secs(100), &[]));
    let options = PerfOptions::new(secs(1));
    assert_eq!(
        (
            options.trace_size,
            options.window,
            PerfOptions::DEFAULT_PREFIX
        ),
        (10, secs(3600), "perf")
    );
}

#[test]
fn perf_rejects_an_empty_trace() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = PerfOptions::new(secs(1))
        .trace_size(0)
        .problem()
        .unwrap_or_default();
    assert!(
        problem.contains("trace_size must be at least 1"),
        "{problem}"
    );
}

#[test]
fn perf_rejects_a_zero_ttl() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = PerfOptions::new(Duration::ZERO)
        .problem()
        .unwrap_or_default();
    assert!(
        problem.contains("ttl must be longer than zero"),
        "{problem}"
    );
}

#[tokio::test(start_paused = true)]
async fn perf_keys_and_degradations_are_per_key() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = PerfOptions::new(secs(60)).trace_size(1);
    let runs = Runs::default();
    perf(&cache, "perf:q:a", &options, runs.slow(ms(10), Ok(())))
        .await
        .unwrap();
    assert!(cache.exists("perf:q:a:trace").await.unwrap());
    perf(&cache, "perf:q:a", &options, runs.slow(ms(30), Ok(())))
        .await
        .unwrap();
    assert!(cache.exists("perf:q:a:lock").await.unwrap());
    assert!(
        !cache.exists("perf:q:a:trace").await.unwrap(),
        "the trace is cleared"
    );
    assert_eq!(
        cache.get_raw("perf:q:a:lock").await.unwrap().as_deref(),
        Some(&b"30000"[..])
    );
    assert!(is_degraded(
        &perf(&cache, "perf:q:a", &options, runs.slow(ms(1), Ok(()))).await
    ));
    perf(&cache, "perf:q:b", &options, runs.slow(ms(1), Ok(())))
        .await
        .unwrap();
    assert_eq!(runs.count(), 3);
    let err = Error::PerformanceDegraded {
        key: "perf:q:a".into(),
        retry_after: None,
    };
    assert!(err.is_refusal() && err.is_transient());
    assert!(err.to_string().contains("perf:q:a"));
}

#[tokio::test(start_paused = true)]
async fn perf_never_breaks_the_call_on_cache_trouble() {
    let options = PerfOptions::new(secs(60)).trace_size(1);
    let runs = Runs::default();

    // Fully disabled: no refusal, even with a lock in place.
    let (cache, _clock) = cache_on_manual_clock();
    cache.set_lock("perf:d:lock", "1", secs(60)).await.unwrap();
    cache.disable(&[]);
    perf(&cache, "perf:d", &options, runs.slow(ms(1), Ok(())))
        .await
        .unwrap();
    cache.enable(&[]);
    assert!(is_degraded(
        &perf(&cache, "perf:d", &options, runs.slow(ms(1), Ok(()))).await
    ));

    // A failing backend: the call runs, unmeasured.
    let clock = Clock::manual();
    let spy = Spy::new(clock.clone());
    let cache = spy.cache(clock);
    spy.down.store(true, Ordering::SeqCst);
    for took in [10, 1000] {
        assert_eq!(
            perf(&cache, "perf:s", &options, runs.slow(ms(took), Ok(took))).await,
            Ok(took)
        );
    }
    assert_eq!(runs.count(), 3);

    // No backend configured: nothing can be checked; the error comes back, the function
    // does not run.
    let unconfigured = Cache::new();
    let result = perf(&unconfigured, "perf:u", &options, runs.slow(ms(1), Ok(()))).await;
    assert!(matches!(result, Err(AppError::Cache(_))));
    assert_eq!(runs.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn perf_lock_without_expiry_is_given_one() {
    let (cache, _clock) = cache_on_manual_clock();
    cache
        .set("perf:p:lock", "stale", None::<u64>)
        .await
        .unwrap();
    let options = PerfOptions::new(secs(5));
    let refused = perf(&cache, "perf:p", &options, async { Ok::<_, AppError>(()) }).await;
    assert_eq!(
        refused,
        Err(AppError::Degraded("perf:p".to_owned(), Some(secs(5))))
    );
    assert_eq!(
        cache.get_expire("perf:p:lock").await.unwrap(),
        Expiry::In(secs(5))
    );
}
