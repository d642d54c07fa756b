//! Bloom filters (`bloom`, `dual_bloom`) and performance degradation detection (`perf`), on a
//! memory backend with a manual clock; `perf` runs on a paused Tokio clock, so latencies are
//! exact and nobody sleeps for real.

mod perf;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::manual_cache as cache_on_manual_clock;
use cashews::backend::{Backend, BoxStream, Expiry, SetOptions};
use cashews::strategy::{
    BloomOptions, DualBloomOptions, bloom, bloom_add, bloom_contains, bloom_set, dual_bloom,
};
use cashews::{Bytes, Cache, Clock, Command, Error, MemoryBackend};

use self::perf::AppError;

/// Counts how often an origin ran.
#[derive(Debug, Default, Clone)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// An origin answering `answer`, counting its run.
    fn answer(&self, answer: bool) -> impl Future<Output = bool> + use<> {
        let runs = Arc::clone(&self.0);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            answer
        }
    }

    /// An origin taking `took` (on Tokio's clock), counting its run.
    fn slow<T>(
        &self,
        took: Duration,
        result: Result<T, AppError>,
    ) -> impl Future<Output = Result<T, AppError>> + use<T> {
        let runs = Arc::clone(&self.0);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(took).await;
            result
        }
    }
}

/// A memory backend that counts the bit commands and can fail on demand.
#[derive(Clone)]
struct Spy {
    inner: MemoryBackend,
    bit_reads: Arc<AtomicUsize>,
    bit_writes: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Spy {
    fn new(clock: Clock) -> Self {
        Self {
            inner: MemoryBackend::with_clock(Default::default(), clock),
            bit_reads: Arc::default(),
            bit_writes: Arc::default(),
            down: Arc::default(),
        }
    }

    /// A cache on this spy, reading `clock`.
    fn cache(&self, clock: Clock) -> Cache {
        let cache = Cache::new();
        cache
            .setup_backend("", self.clone(), Default::default())
            .unwrap();
        cache.set_clock(clock);
        cache
    }

    fn bit_commands(&self) -> usize {
        self.bit_reads.load(Ordering::SeqCst) + self.bit_writes.load(Ordering::SeqCst)
    }

    fn up(&self, command: Command) -> cashews::Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                backend: "spy",
                command,
                source: "connection refused".into(),
            });
        }
        Ok(())
    }
}

impl Backend for Spy {
    fn name(&self) -> &'static str {
        "spy"
    }

    async fn get(&self, key: &str) -> cashews::Result<Option<Bytes>> {
        self.up(Command::Get)?;
        self.inner.get(key).await
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> cashews::Result<bool> {
        self.up(Command::Set)?;
        self.inner.set(key, value, options).await
    }

    async fn delete(&self, key: &str) -> cashews::Result<bool> {
        self.up(Command::Delete)?;
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &str) -> cashews::Result<bool> {
        self.up(Command::Exists)?;
        self.inner.exists(key).await
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> cashews::Result<bool> {
        self.up(Command::Expire)?;
        self.inner.expire(key, ttl).await
    }

    async fn get_expire(&self, key: &str) -> cashews::Result<Expiry> {
        self.up(Command::GetExpire)?;
        self.inner.get_expire(key).await
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> cashews::Result<i64> {
        self.up(Command::Incr)?;
        self.inner.incr(key, by, ttl).await
    }

    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<cashews::Result<String>> {
        self.inner.scan(pattern, batch_size)
    }

    async fn unlock(&self, key: &str, token: &str) -> cashews::Result<bool> {
        self.up(Command::Unlock)?;
        self.inner.unlock(key, token).await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> cashews::Result<Vec<u64>> {
        self.bit_reads.fetch_add(1, Ordering::SeqCst);
        self.up(Command::GetBits)?;
        self.inner.get_bits(key, indexes, size).await
    }

    async fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> cashews::Result<Vec<u64>> {
        self.bit_writes.fetch_add(1, Ordering::SeqCst);
        self.up(Command::IncrBits)?;
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
        self.up(Command::SliceIncr)?;
        self.inner.slice_incr(key, start, end, max, ttl).await
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.up(Command::SliceIncrNow)?;
        self.inner.slice_incr_now(key, period, max, ttl).await
    }

    async fn set_add(
        &self,
        key: &str,
        members: &[&str],
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.up(Command::SetAdd)?;
        self.inner.set_add(key, members, ttl).await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> cashews::Result<u64> {
        self.up(Command::SetRemove)?;
        self.inner.set_remove(key, members).await
    }

    async fn set_pop(&self, key: &str, count: usize) -> cashews::Result<Vec<String>> {
        self.up(Command::SetPop)?;
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

// ----- bloom: sizing and positions ----------------------------------------------------------

#[test]
fn bloom_sizes_follow_the_standard_formulas() {
    let cases = [
        (100, 1.0, 959, 7),
        (10, 1.0, 96, 7),
        (10_000, 1.0, 95_851, 7),
        (1_000_000, 1.0, 9_585_059, 7),
        (100, 50.0, 145, 1),
    ];
    for (capacity, percent, bits, hashes) in cases {
        let options = BloomOptions::new(capacity).false_positives(percent);
        assert_eq!(
            (options.bits(), options.hashes()),
            (bits, hashes),
            "capacity {capacity}, {percent} %"
        );
    }
    // The constant-time logarithm agrees with the formula computed by `f64::ln`.
    let ln2 = std::f64::consts::LN_2;
    for capacity in [
        1u64, 2, 3, 7, 10, 99, 100, 1000, 12_345, 1_000_000, 50_000_000,
    ] {
        for percent in [0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 33.3, 50.0, 65.0] {
            let n = capacity as f64;
            let m = (-(n * (percent / 100.0_f64).ln()) / (ln2 * ln2)).ceil();
            let k = (m / n * ln2).round_ties_even();
            let options = BloomOptions::new(capacity).false_positives(percent);
            assert_eq!(
                (options.bits(), options.hashes()),
                (m as u64, k as u32),
                "capacity {capacity}, {percent} %"
            );
        }
    }
}

#[test]
fn bloom_options_default_to_one_percent_and_confirming() {
    // Built as a constant, as the attribute macros do.
    const OPTIONS: BloomOptions = BloomOptions::new(100);
    let options = OPTIONS;
    assert_eq!(options.false_positives, 1.0);
    assert!(options.check_false_positive);
    assert_eq!(BloomOptions::DEFAULT_PREFIX, "bloom");
    assert_eq!(DualBloomOptions::DEFAULT_PREFIX, "dual_bloom");
    assert_eq!(options.filter_key("bloom:name:{n}"), "bloom:name:{n}:959");
}

#[test]
fn bloom_rejects_a_rate_that_sets_no_bit() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = BloomOptions::new(100)
        .false_positives(80.0)
        .problem()
        .unwrap_or_default();
    assert!(
        problem.contains("too high false positive value"),
        "{problem}"
    );
}

#[test]
fn bloom_rejects_a_zero_rate() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = BloomOptions::new(100)
        .false_positives(0.0)
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("strictly between 0 and 100"), "{problem}");
}

#[test]
fn bloom_rejects_a_rate_of_100() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = BloomOptions::new(100)
        .false_positives(100.0)
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("strictly between 0 and 100"), "{problem}");
}

#[test]
fn bloom_rejects_a_zero_capacity() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = BloomOptions::new(0).problem().unwrap_or_default();
    assert!(problem.contains("capacity must be at least 1"), "{problem}");
}

#[test]
fn bloom_rejects_a_filter_redis_cannot_hold() {
    // Built at run time: no panic, `problem()` (and `validate()`) name the value.
    let problem = BloomOptions::new(1_000_000_000)
        .problem()
        .unwrap_or_default();
    assert!(problem.contains("more than 2^32 bits"), "{problem}");
}

#[test]
fn bloom_options_written_by_hand_stay_usable() {
    let mut options = BloomOptions::new(100);
    options.capacity = 0;
    options.false_positives = 250.0;
    assert!(options.bits() >= 1 && options.hashes() >= 1);
    assert!(options.validate().is_err(), "the strategies refuse them");
    assert_eq!(
        options.positions("x").len(),
        usize::try_from(options.hashes()).unwrap()
    );
}

/// SPEC §9 scenario 110: CRC-32 of `name:5_<i>` modulo 959.
#[tokio::test]
async fn bloom_positions_are_crc32_of_the_member_and_counter() {
    let options = BloomOptions::new(100);
    let mut positions = options.positions("name:5");
    positions.sort_unstable();
    assert_eq!(positions, [92, 179, 359, 497, 617, 684, 770]);

    // The same bits, and only those, are set in the cache.
    let (cache, _clock) = cache_on_manual_clock();
    bloom_add(&cache, "bloom:name:{n}", "name:5", &options)
        .await
        .unwrap();
    let all: Vec<u64> = (0..959).collect();
    let bits = cache.get_bits("bloom:name:{n}:959", &all, 1).await.unwrap();
    let set: Vec<u64> = (0..959).filter(|&i| bits[i as usize] == 1).collect();
    assert_eq!(set, [92, 179, 359, 497, 617, 684, 770]);
}

#[test]
fn bloom_positions_are_distinct_even_in_a_tiny_filter() {
    // m = 3, k = 2: collisions between draws are common; the counter moves on.
    let options = BloomOptions::new(1).false_positives(25.0);
    assert_eq!((options.bits(), options.hashes()), (3, 2));
    for i in 0..200 {
        let mut positions = options.positions(&format!("m:{i}"));
        positions.sort_unstable();
        positions.dedup();
        assert_eq!(positions.len(), 2);
        assert!(positions.iter().all(|&p| p < 3));
    }
}

// ----- bloom: accuracy ----------------------------------------------------------------------

#[tokio::test]
async fn bloom_has_no_false_negatives_and_the_configured_false_positive_rate() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = BloomOptions::new(10_000);
    for i in 0..10_000 {
        bloom_add(&cache, "bloom:members", &format!("member:{i}"), &options)
            .await
            .unwrap();
    }
    for i in 0..10_000 {
        assert!(
            bloom_contains(&cache, "bloom:members", &format!("member:{i}"), &options)
                .await
                .unwrap(),
            "member:{i} was added"
        );
    }
    let mut false_positives = 0;
    for i in 0..10_000 {
        if bloom_contains(&cache, "bloom:members", &format!("other:{i}"), &options)
            .await
            .unwrap()
        {
            false_positives += 1;
        }
    }
    // 1 % configured: 100 expected out of 10,000; the hashes are fixed, so the count is too.
    assert!(
        (50..=200).contains(&false_positives),
        "{false_positives} false positives out of 10,000"
    );
}

// ----- bloom: the strategy (SPEC §9 scenarios 107, 108, 111) -------------------------------

/// Scenario 107: after `set(i)` for 0..99 with f(i) = i > 50, every call is right and the
/// function runs only for i > 50.
#[tokio::test]
async fn bloom_answers_false_without_calling_and_confirms_maybes() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = BloomOptions::new(100);
    let runs = Runs::default();
    let key = "bloom:name:{n}";
    for i in 0..100 {
        let answer = bloom_set(
            &cache,
            key,
            &format!("name:{i}"),
            &options,
            runs.answer(i > 50),
        )
        .await;
        assert_eq!(answer, i > 50);
    }
    assert_eq!(runs.count(), 100);
    runs.reset();
    for i in 0..100 {
        let answer = bloom(
            &cache,
            key,
            &format!("name:{i}"),
            &options,
            runs.answer(i > 50),
        )
        .await;
        assert_eq!(answer, i > 50, "f({i})");
    }
    assert_eq!(runs.count(), 49, "runs only for 51..=99");
    assert!(cache.exists("bloom:name:{n}:959").await.unwrap());
}

/// Scenario 108: capacity 1,000,000; set(900000) and set(1000).
#[tokio::test]
async fn bloom_with_a_large_capacity() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = BloomOptions::new(1_000_000);
    let runs = Runs::default();
    let f = |i: u32| runs.answer(i > 50_000);
    assert!(bloom_set(&cache, "bloom:big:{n}", "big:900000", &options, f(900_000)).await);
    assert!(!bloom_set(&cache, "bloom:big:{n}", "big:1000", &options, f(1000)).await);
    runs.reset();
    assert!(bloom(&cache, "bloom:big:{n}", "big:900000", &options, f(900_000)).await);
    assert_eq!(runs.count(), 1);
    assert!(!bloom(&cache, "bloom:big:{n}", "big:1000", &options, f(1000)).await);
    assert_eq!(
        runs.count(),
        1,
        "a member never added is answered without a call"
    );
}

#[tokio::test]
async fn bloom_origin_is_not_called_for_members_never_added() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = BloomOptions::new(1000);
    let runs = Runs::default();
    for i in 0..1000 {
        let answer = bloom(
            &cache,
            "bloom:empty",
            &format!("m:{i}"),
            &options,
            runs.answer(true),
        )
        .await;
        assert!(!answer);
    }
    assert_eq!(runs.count(), 0);
}

#[tokio::test]
async fn bloom_without_confirmation_answers_true_without_calling() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = BloomOptions::new(100).check_false_positive(false);
    let runs = Runs::default();
    assert!(bloom_set(&cache, "bloom:k", "ada", &options, runs.answer(true)).await);
    assert!(bloom(&cache, "bloom:k", "ada", &options, runs.answer(false)).await);
    assert!(!bloom(&cache, "bloom:k", "bob", &options, runs.answer(true)).await);
    assert_eq!(runs.count(), 1, "only the set ran");
}

/// Scenario 111: a fully disabled cache issues no bit command, and the call returns the
/// function's answer.
#[tokio::test]
async fn bloom_on_a_disabled_cache_issues_no_bit_command() {
    let clock = Clock::manual();
    let spy = Spy::new(clock.clone());
    let cache = spy.cache(clock);
    let options = BloomOptions::new(100);
    let runs = Runs::default();
    cache.disable(&[]);
    assert!(bloom_set(&cache, "bloom:f", "f", &options, runs.answer(true)).await);
    assert!(bloom(&cache, "bloom:f", "f", &options, runs.answer(true)).await);
    let dual = DualBloomOptions::new(100);
    assert!(
        dual_bloom(
            &cache,
            "dual_bloom:f",
            "dual_bloom:f",
            &dual,
            runs.answer(true)
        )
        .await
    );
    assert_eq!(runs.count(), 3);
    assert_eq!(spy.bit_commands(), 0);
    assert!(
        bloom_contains(&cache, "bloom:f", "f", &options)
            .await
            .unwrap()
    );
    assert_eq!(spy.bit_commands(), 0);

    cache.enable(&[]);
    assert!(
        !bloom_contains(&cache, "bloom:f", "f", &options)
            .await
            .unwrap(),
        "nothing was recorded"
    );
    assert_eq!(spy.bit_commands(), 1);
}

#[tokio::test]
async fn bloom_runs_the_function_when_the_filter_cannot_be_read() {
    let clock = Clock::manual();
    let spy = Spy::new(clock.clone());
    let cache = spy.cache(clock);
    let options = BloomOptions::new(100);
    let runs = Runs::default();

    // A disabled `get_bits` cannot rule anything out.
    cache.disable(&[Command::GetBits]);
    assert!(
        bloom(
            &cache,
            "bloom:f",
            "never-added",
            &options,
            runs.answer(true)
        )
        .await
    );
    assert!(
        bloom_contains(&cache, "bloom:f", "never-added", &options)
            .await
            .unwrap()
    );
    cache.enable(&[]);

    // A failing backend: the function answers, and recording failures are swallowed.
    spy.down.store(true, Ordering::SeqCst);
    assert!(
        bloom(
            &cache,
            "bloom:f",
            "never-added",
            &options,
            runs.answer(true)
        )
        .await
    );
    assert!(bloom_set(&cache, "bloom:f", "x", &options, runs.answer(true)).await);
    let dual = DualBloomOptions::new(100);
    assert!(
        !dual_bloom(
            &cache,
            "dual_bloom:f",
            "dual_bloom:x",
            &dual,
            runs.answer(false)
        )
        .await
    );
    assert!(
        bloom_contains(&cache, "bloom:f", "x", &options)
            .await
            .is_err()
    );
    assert!(matches!(
        bloom_add(&cache, "bloom:f", "x", &options).await,
        Err(Error::Backend { .. })
    ));
    assert_eq!(runs.count(), 4);

    // No backend at all: the function still answers; the helpers say why they cannot.
    let unconfigured = Cache::new();
    assert!(bloom(&unconfigured, "bloom:f", "x", &options, runs.answer(true)).await);
    assert!(matches!(
        bloom_contains(&unconfigured, "bloom:f", "x", &options).await,
        Err(Error::NotConfigured { .. })
    ));
}

// ----- dual_bloom (SPEC §9 scenario 109) ------------------------------------------------------

#[tokio::test]
async fn dual_bloom_learns_both_answers_from_the_calls() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = DualBloomOptions::new(100);
    let runs = Runs::default();
    let key = "dual_bloom:name:{n}";
    let member = |i: u32| format!("dual_bloom:name:{i}");
    for i in 0..99 {
        assert_eq!(
            dual_bloom(&cache, key, &member(i), &options, runs.answer(i > 50)).await,
            i > 50
        );
    }
    // Training runs the function unless a filter already answers (a false positive whose
    // answer happens to be right; deterministic, as the hashes are fixed).
    assert!(runs.count() >= 95, "{} training runs", runs.count());
    runs.reset();
    for i in 0..99 {
        assert_eq!(
            dual_bloom(&cache, key, &member(i), &options, runs.answer(i > 50)).await,
            i > 50,
            "f({i})"
        );
    }
    assert_eq!(runs.count(), 0, "the second pass comes from the filters");
    assert!(dual_bloom(&cache, key, &member(100), &options, runs.answer(true)).await);
    assert_eq!(runs.count(), 1);
    assert!(cache.exists("dual_bloom:name:{n}:true").await.unwrap());
    assert!(cache.exists("dual_bloom:name:{n}:false").await.unwrap());
}

#[tokio::test]
async fn dual_bloom_positions_come_from_the_member_and_the_filter_name() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = DualBloomOptions::new(100);
    assert!(
        dual_bloom(&cache, "dual_bloom:f", "dual_bloom:f:1", &options, async {
            true
        })
        .await
    );
    assert!(
        !dual_bloom(&cache, "dual_bloom:f", "dual_bloom:f:2", &options, async {
            false
        })
        .await
    );
    let trues = BloomOptions::new(100).positions("dual_bloom:f:1true");
    let falses = BloomOptions::new(100).positions("dual_bloom:f:2false");
    let read = |key: &'static str, positions: Vec<u64>| {
        let cache = cache.clone();
        async move { cache.get_bits(key, &positions, 1).await.unwrap() }
    };
    assert!(
        read("dual_bloom:f:true", trues)
            .await
            .iter()
            .all(|&b| b == 1)
    );
    assert!(
        read("dual_bloom:f:false", falses)
            .await
            .iter()
            .all(|&b| b == 1)
    );
}

#[tokio::test]
async fn dual_bloom_runs_the_function_when_both_filters_know_the_member() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = DualBloomOptions::new(100);
    let member = "dual_bloom:f:1";
    // Both filters claim the member (a false positive in one of them).
    let trues = options.true_filter.positions(&format!("{member}true"));
    let falses = options.false_filter.positions(&format!("{member}false"));
    cache
        .incr_bits("dual_bloom:f:true", &trues, 1, 1)
        .await
        .unwrap();
    cache
        .incr_bits("dual_bloom:f:false", &falses, 1, 1)
        .await
        .unwrap();
    let runs = Runs::default();
    for _ in 0..2 {
        assert!(dual_bloom(&cache, "dual_bloom:f", member, &options, runs.answer(true)).await);
    }
    assert_eq!(runs.count(), 2, "the function decides every time");
}

/// With `no_collisions`, a `true` answer whose bits partly overlap another member's is not
/// recorded, so it is asked again.
#[tokio::test]
async fn dual_bloom_no_collisions_skips_overlapping_true_answers() {
    // A tiny true filter (m = 3, k = 2): find two members sharing exactly one bit.
    let tiny = BloomOptions::new(1).false_positives(25.0);
    let first = "dual_bloom:m:0";
    let first_bits = tiny.positions(&format!("{first}true"));
    let second = (1..1000)
        .map(|i| format!("dual_bloom:m:{i}"))
        .find(|m| {
            let bits = tiny.positions(&format!("{m}true"));
            bits.iter().filter(|b| first_bits.contains(b)).count() == 1
        })
        .unwrap();
    let wide = BloomOptions::new(1000);

    for (no_collisions, runs_expected) in [(true, 2), (false, 1)] {
        let (cache, _clock) = cache_on_manual_clock();
        let options = DualBloomOptions::with_filters(tiny, wide).no_collisions(no_collisions);
        let runs = Runs::default();
        assert!(dual_bloom(&cache, "dual_bloom:m", first, &options, runs.answer(true)).await);
        runs.reset();
        for _ in 0..2 {
            assert!(dual_bloom(&cache, "dual_bloom:m", &second, &options, runs.answer(true)).await);
        }
        assert_eq!(runs.count(), runs_expected, "no_collisions {no_collisions}");
    }
}
