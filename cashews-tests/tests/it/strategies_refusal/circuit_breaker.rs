//! `circuit_breaker`: opening at the error rate, half-open trials, what counts as a failure, and
//! the commands one call sends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashews::backend::{Backend, BoxStream, Expiry, SetOptions};
use cashews::config::CacheConfig;
use cashews::strategy::{CircuitBreakerOptions, circuit_breaker};
use cashews::{Bytes, Cache, Clock, Command, Error, MemoryBackend};

use super::{AppError, Runs};
use crate::support::{manual_cache as cache_on_manual_clock, ms, secs};

/// One call through the breaker: `fail` picks the origin's result.
async fn breaker_call(
    cache: &Cache,
    key: &str,
    options: &CircuitBreakerOptions,
    runs: &Runs,
    fail: Option<AppError>,
) -> Result<&'static str, AppError> {
    let result = match fail {
        None => Ok("ok"),
        Some(error) => Err(error),
    };
    circuit_breaker(
        cache,
        key,
        options,
        |e: &AppError| *e != AppError::NotFound,
        runs.origin(result),
    )
    .await
}

fn is_open(result: &Result<&'static str, AppError>) -> bool {
    matches!(result, Err(AppError::Open(_)))
}

#[tokio::test]
async fn circuit_opens_at_the_error_rate_once_min_calls_are_reached() {
    let (cache, _clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = CircuitBreakerOptions::new(5, secs(1), ms(200)).min_calls(10);
    for _ in 0..9 {
        breaker_call(&cache, "cb", &options, &runs, None)
            .await
            .unwrap();
    }
    let failed = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert_eq!(failed, Err(AppError::Upstream)); // 1 failure in 10 calls: 10 % >= 5 %
    for fail in [None, Some(AppError::Upstream), None] {
        let refused = breaker_call(&cache, "cb", &options, &runs, fail).await;
        assert_eq!(refused, Err(AppError::Open(Some(ms(200)))));
    }
    assert_eq!(runs.count(), 10);
}

#[tokio::test]
async fn circuit_opens_on_the_fourth_call_then_closes_after_ttl() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let key = "circuit_breaker:pay";
    let options = CircuitBreakerOptions::new(50, secs(10), ms(300)).min_calls(4);
    let up = Some(AppError::Upstream);
    let results = [
        breaker_call(&cache, key, &options, &runs, None).await,
        breaker_call(&cache, key, &options, &runs, up.clone()).await,
        breaker_call(&cache, key, &options, &runs, None).await,
        breaker_call(&cache, key, &options, &runs, up.clone()).await,
        breaker_call(&cache, key, &options, &runs, None).await,
    ];
    assert_eq!(
        results,
        [
            Ok("ok"),
            Err(AppError::Upstream), // 50 % of 2 calls, below min_calls
            Ok("ok"),
            Err(AppError::Upstream), // 50 % of 4 calls: opens
            Err(AppError::Open(Some(ms(300)))),
        ]
    );
    assert_eq!(runs.count(), 4);
    for part in ["total", "fails", "open"] {
        assert!(
            cache.exists(&format!("{key}:{part}")).await.unwrap(),
            "{part}"
        );
    }
    assert!(!cache.exists(&format!("{key}:halfopen")).await.unwrap());

    clock.advance(ms(100));
    let refused = breaker_call(&cache, key, &options, &runs, None).await;
    assert_eq!(refused, Err(AppError::Open(Some(ms(200)))));
    clock.advance(ms(250));
    assert_eq!(
        breaker_call(&cache, key, &options, &runs, None).await,
        Ok("ok")
    );
    assert_eq!(runs.count(), 5);
}

#[tokio::test]
async fn half_open_draws_a_probe_whose_success_closes() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = CircuitBreakerOptions::new(1, secs(1), ms(20))
        .min_calls(0)
        .half_open_ttl(ms(100));
    let failed = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert_eq!(failed, Err(AppError::Upstream));
    assert!(is_open(
        &breaker_call(&cache, "cb", &options, &runs, None).await
    ));
    assert!(cache.exists("cb:halfopen").await.unwrap());

    clock.advance(ms(20)); // open time over: half-open
    let mut passed = Vec::new();
    for _ in 0..100 {
        match breaker_call(&cache, "cb", &options, &runs, None).await {
            Ok(_) => passed.push(true),
            Err(AppError::Open(None)) => passed.push(false),
            other => panic!("unexpected {other:?}"),
        }
    }
    // The draw refuses calls until one wins it: that call probes, succeeds and closes the
    // circuit, so every call after it runs.
    let first = passed.iter().position(|p| *p).expect("100 lost draws");
    assert!(passed[first..].iter().all(|p| *p), "{passed:?}");
    assert!(!cache.exists("cb:halfopen").await.unwrap());
    assert_eq!(runs.count(), 1 + 100 - first);
}

#[tokio::test]
async fn half_open_starts_when_the_open_time_ends() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    // Half-open shorter than open: it still follows the open time in full.
    let options = CircuitBreakerOptions::new(50, secs(1), secs(10))
        .half_open_ttl(secs(5))
        .half_open_share(0);
    let _ = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    clock.advance(secs(1));
    let refused = breaker_call(&cache, "cb", &options, &runs, None).await;
    assert_eq!(refused, Err(AppError::Open(Some(secs(9)))));
    clock.advance(secs(9)); // half-open, letting nothing through
    let refused = breaker_call(&cache, "cb", &options, &runs, None).await;
    assert_eq!(refused, Err(AppError::Open(None)));
    clock.advance(ms(4999));
    assert!(is_open(
        &breaker_call(&cache, "cb", &options, &runs, None).await
    ));
    clock.advance(ms(1)); // closed
    assert_eq!(
        breaker_call(&cache, "cb", &options, &runs, None).await,
        Ok("ok")
    );
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn a_failed_trial_reopens_whatever_min_calls_says() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = CircuitBreakerOptions::new(50, ms(500), secs(1))
        .min_calls(2)
        .half_open_ttl(secs(1))
        .half_open_share(100);
    let _ = breaker_call(&cache, "cb", &options, &runs, None).await;
    let _ = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert!(is_open(
        &breaker_call(&cache, "cb", &options, &runs, None).await
    ));

    clock.advance(secs(1)); // half-open; the window (500 ms) has forgotten the first calls
    let trial = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert_eq!(trial, Err(AppError::Upstream)); // 1 call, below min_calls, yet it re-opens
    let refused = breaker_call(&cache, "cb", &options, &runs, None).await;
    assert_eq!(refused, Err(AppError::Open(Some(secs(1)))));

    clock.advance(secs(1)); // half-open again: a successful probe closes it
    for _ in 0..3 {
        assert_eq!(
            breaker_call(&cache, "cb", &options, &runs, None).await,
            Ok("ok")
        );
    }
    assert!(!cache.exists("cb:halfopen").await.unwrap());
    // Closed: 1 failure in 4 calls is below the rate.
    let _ = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert_eq!(
        breaker_call(&cache, "cb", &options, &runs, None).await,
        Ok("ok")
    );
}

#[tokio::test]
async fn errors_that_when_rejects_do_not_count_as_failures() {
    let (cache, _clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = CircuitBreakerOptions::new(50, secs(10), secs(10));
    for _ in 0..10 {
        let ignored = breaker_call(&cache, "cb", &options, &runs, Some(AppError::NotFound)).await;
        assert_eq!(ignored, Err(AppError::NotFound));
    }
    // 1 counted failure in 11 calls: 9 %, closed.
    let _ = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert_eq!(
        breaker_call(&cache, "cb", &options, &runs, None).await,
        Ok("ok")
    );
    assert_eq!(runs.count(), 12);

    // The same with every error counted opens at once.
    let count_all = |_: &AppError| true;
    let failed: Result<(), AppError> = circuit_breaker(
        &cache,
        "cb2",
        &options,
        count_all,
        runs.origin(Err(AppError::NotFound)),
    )
    .await;
    assert_eq!(failed, Err(AppError::NotFound));
    let refused: Result<(), AppError> =
        circuit_breaker(&cache, "cb2", &options, count_all, runs.origin(Ok(()))).await;
    assert_eq!(refused, Err(AppError::Open(Some(secs(10)))));
}

#[tokio::test]
async fn failures_older_than_the_period_leave_the_rate() {
    let (cache, clock) = cache_on_manual_clock();
    let runs = Runs::default();
    let options = CircuitBreakerOptions::new(60, secs(1), secs(10)).min_calls(2);
    let _ = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await; // below min_calls
    clock.advance(secs(1));
    breaker_call(&cache, "cb", &options, &runs, None)
        .await
        .unwrap();
    // With the old failure this would be 2 of 3 (66 %); within the period it is 1 of 2.
    let _ = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
    assert_eq!(
        breaker_call(&cache, "cb", &options, &runs, None).await,
        Ok("ok")
    );
    assert_eq!(runs.count(), 4);
}

#[tokio::test]
async fn a_failing_or_disabled_backend_never_opens_the_circuit() {
    let (cache, _clock) = cache_on_manual_clock();
    cache
        .set("cb:total", "not a window", None::<u64>)
        .await
        .unwrap();
    let runs = Runs::default();
    let options = CircuitBreakerOptions::new(1, secs(10), secs(10));
    for _ in 0..5 {
        let failed = breaker_call(&cache, "cb", &options, &runs, Some(AppError::Upstream)).await;
        assert_eq!(failed, Err(AppError::Upstream));
    }
    assert_eq!(
        breaker_call(&cache, "cb", &options, &runs, None).await,
        Ok("ok")
    );

    let (disabled, _clock) = cache_on_manual_clock();
    disabled.disable(&[]);
    for _ in 0..5 {
        let failed = breaker_call(&disabled, "cb", &options, &runs, Some(AppError::Upstream)).await;
        assert_eq!(failed, Err(AppError::Upstream));
    }
    assert_eq!(
        breaker_call(&disabled, "cb", &options, &runs, None).await,
        Ok("ok")
    );
    assert_eq!(runs.count(), 12);
}

/// A memory backend that logs each command with its key: what one breaker call costs.
#[derive(Clone)]
struct Logged {
    inner: MemoryBackend,
    log: Arc<Mutex<Vec<(Command, String)>>>,
}

impl Logged {
    /// A cache on a logged memory backend, both on one manual clock.
    fn cache() -> (Cache, Clock, Self) {
        let clock = Clock::manual();
        let logged = Self {
            inner: MemoryBackend::with_clock(Default::default(), clock.clone()),
            log: Arc::default(),
        };
        let cache = Cache::new();
        cache
            .setup_backend("", logged.clone(), CacheConfig::default())
            .unwrap();
        cache.set_clock(clock.clone());
        (cache, clock, logged)
    }

    fn note(&self, command: Command, key: &str) {
        self.log.lock().unwrap().push((command, key.to_owned()));
    }

    /// The commands sent since the last call, as `(command, key)`.
    fn take(&self) -> Vec<(Command, String)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Backend for Logged {
    fn name(&self) -> &'static str {
        "logged"
    }

    async fn get(&self, key: &str) -> cashews::Result<Option<Bytes>> {
        self.note(Command::Get, key);
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> cashews::Result<bool> {
        self.note(Command::Set, key);
        self.inner.set(key, value, options).await
    }

    async fn delete(&self, key: &str) -> cashews::Result<bool> {
        self.note(Command::Delete, key);
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &str) -> cashews::Result<bool> {
        self.note(Command::Exists, key);
        self.inner.exists(key).await
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> cashews::Result<bool> {
        self.note(Command::Expire, key);
        self.inner.expire(key, ttl).await
    }

    async fn get_expire(&self, key: &str) -> cashews::Result<Expiry> {
        self.note(Command::GetExpire, key);
        self.inner.get_expire(key).await
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> cashews::Result<i64> {
        self.note(Command::Incr, key);
        self.inner.incr(key, by, ttl).await
    }

    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<cashews::Result<String>> {
        self.inner.scan(pattern, batch_size)
    }

    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> cashews::Result<bool> {
        self.note(Command::SetLock, key);
        self.inner.set_lock(key, token, ttl).await
    }

    async fn unlock(&self, key: &str, token: &str) -> cashews::Result<bool> {
        self.note(Command::Unlock, key);
        self.inner.unlock(key, token).await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> cashews::Result<Vec<u64>> {
        self.note(Command::GetBits, key);
        self.inner.get_bits(key, indexes, size).await
    }

    async fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> cashews::Result<Vec<u64>> {
        self.note(Command::IncrBits, key);
        self.inner.incr_bits(key, indexes, size, by).await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.note(Command::SliceIncr, key);
        self.inner.slice_incr(key, start, end, max, ttl).await
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.note(Command::SliceIncrNow, key);
        self.inner.slice_incr_now(key, period, max, ttl).await
    }

    async fn set_add(
        &self,
        key: &str,
        members: &[&str],
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.note(Command::SetAdd, key);
        self.inner.set_add(key, members, ttl).await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> cashews::Result<u64> {
        self.note(Command::SetRemove, key);
        self.inner.set_remove(key, members).await
    }

    async fn set_pop(&self, key: &str, count: usize) -> cashews::Result<Vec<String>> {
        self.note(Command::SetPop, key);
        self.inner.set_pop(key, count).await
    }

    async fn ping(&self, message: &[u8]) -> cashews::Result<Bytes> {
        self.inner.ping(message).await
    }

    async fn clear(&self) -> cashews::Result<()> {
        self.inner.clear().await
    }

    async fn keys_count(&self) -> cashews::Result<u64> {
        self.inner.keys_count().await
    }

    async fn get_size(&self, key: &str) -> cashews::Result<Option<u64>> {
        self.inner.get_size(key).await
    }
}

/// `(command, key)` pairs, for comparing with [`Logged::take`].
fn sent(commands: &[(Command, &str)]) -> Vec<(Command, String)> {
    commands
        .iter()
        .map(|&(command, key)| (command, key.to_owned()))
        .collect()
}

#[tokio::test]
async fn circuit_breaker_sends_one_command_per_step() {
    use Command::{Delete, Exists, GetExpire, Incr, Set, SetLock, SliceIncrNow};
    let (cache, clock, logged) = Logged::cache();
    let runs = Runs::default();
    let up = || Some(AppError::Upstream);

    // Closed, no half-open time: a pass reads `K:open` and counts in `K:total`, nothing else.
    let options = CircuitBreakerOptions::new(50, secs(10), secs(1)).min_calls(3);
    let pass = [(GetExpire, "cb:open"), (SliceIncrNow, "cb:total")];
    breaker_call(&cache, "cb", &options, &runs, None)
        .await
        .unwrap();
    assert_eq!(logged.take(), sent(&pass));
    let ignored = breaker_call(&cache, "cb", &options, &runs, Some(AppError::NotFound)).await;
    assert_eq!(ignored, Err(AppError::NotFound));
    assert_eq!(logged.take(), sent(&pass)); // an error `when` rejects is a plain call
    let _ = breaker_call(&cache, "cb", &options, &runs, up()).await; // 1 of 3, closed
    let fail = [pass[0], pass[1], (SliceIncrNow, "cb:fails")];
    assert_eq!(logged.take(), sent(&fail));
    let _ = breaker_call(&cache, "cb", &options, &runs, up()).await; // 2 of 4: opens
    assert_eq!(
        logged.take(),
        sent(&[fail[0], fail[1], fail[2], (SetLock, "cb:open")])
    );
    let refused = breaker_call(&cache, "cb", &options, &runs, None).await;
    assert_eq!(refused, Err(AppError::Open(Some(secs(1)))));
    assert_eq!(logged.take(), sent(&[(GetExpire, "cb:open")]));

    // With a half-open time, a pass also reads `K:halfopen`; opening sets it.
    let options = CircuitBreakerOptions::new(50, secs(10), secs(1))
        .half_open_ttl(secs(5))
        .half_open_share(100);
    let pass = [
        (GetExpire, "ho:open"),
        (Exists, "ho:halfopen"),
        (SliceIncrNow, "ho:total"),
    ];
    breaker_call(&cache, "ho", &options, &runs, None)
        .await
        .unwrap();
    assert_eq!(logged.take(), sent(&pass));
    let _ = breaker_call(&cache, "ho", &options, &runs, up()).await; // 1 of 2: opens
    assert_eq!(
        logged.take(),
        sent(&[
            pass[0],
            pass[1],
            pass[2],
            (SliceIncrNow, "ho:fails"),
            (SetLock, "ho:open"),
            (Set, "ho:halfopen"),
            (Delete, "ho:probes"),
        ])
    );
    clock.advance(secs(1)); // half-open: a probe also takes its slot, and closes on success
    breaker_call(&cache, "ho", &options, &runs, None)
        .await
        .unwrap();
    assert_eq!(
        logged.take(),
        sent(&[
            pass[0],
            pass[1],
            (Incr, "ho:probes"),
            pass[2],
            (Delete, "ho:halfopen"),
            (Delete, "ho:probes"),
        ])
    );
    assert_eq!(runs.count(), 7);
}

#[tokio::test]
async fn cashews_errors_work_as_the_callers_error_type() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = CircuitBreakerOptions::new(50, secs(10), secs(10));
    let failed: cashews::Result<()> =
        circuit_breaker(&cache, "cb", &options, |e: &Error| !e.is_refusal(), async {
            Err(Error::Locked { key: "x".into() })
        })
        .await;
    assert!(matches!(failed, Err(Error::Locked { .. })));
    let ok: cashews::Result<u8> =
        circuit_breaker(&cache, "cb", &options, |_: &Error| true, async { Ok(1) }).await;
    assert_eq!(ok.unwrap(), 1); // a refusal error was not counted
}

#[test]
fn circuit_breaker_rejects_an_errors_rate_of_zero() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = CircuitBreakerOptions::new(0, secs(1), secs(1))
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("errors_rate"), "{problem}");
}

#[test]
fn circuit_breaker_rejects_an_errors_rate_of_100() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = CircuitBreakerOptions::new(100, secs(1), secs(1))
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("errors_rate"), "{problem}");
}
