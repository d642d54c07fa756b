//! Keys are the runtime's: each strategy called by hand, with its key built by
//! `cashews::key::Strategy` and `KeyBuf` (what the attribute expands to), writes exactly the
//! keys its attribute writes. Each case runs the attribute on one memory cache and the hand
//! call on another, then compares every key in the two.

use std::sync::LazyLock;
use std::time::Duration;

use cashews::key::{KeyBuf, Strategy};
use cashews::strategy::{
    self, CacheOptions, CircuitBreakerOptions, EarlyOptions, FailoverOptions, HitOptions,
    PerfOptions, Plain, RateLimitOptions, SliceRateLimitOptions, SoftOptions, any_error,
};
use cashews::{Cache, Ttl};
use futures_util::StreamExt;

use crate::support::{Clocked, clocked, manual_cache};

#[derive(Debug)]
#[allow(dead_code)]
struct ApiError(String);

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self(error.to_string())
    }
}

/// Every key in `cache`, sorted.
async fn keys(cache: &Cache) -> Vec<String> {
    let mut keys: Vec<String> = cache.scan("*").map(|k| k.unwrap()).collect().await;
    keys.sort();
    keys
}

fn hour() -> Ttl {
    Ttl::parse("1h").unwrap()
}

/// The default key of a function of this module with one argument `id`, as `strategy`'s
/// attribute renders it.
fn default_key(strategy: Strategy, function: &str, id: u32) -> String {
    let mut key = strategy.key_buf();
    key.function(module_path!(), function);
    key.arg("id", &id);
    key.finish()
}

// ----- cache ---------------------------------------------------------------------------------

static CACHE: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::cache(ttl = "1h", cache = CACHE.cache)]
async fn cached(id: u32) -> u32 {
    id
}

#[cashews::cache(ttl = "1h", key = "user:{id}", prefix = "v2", cache = CACHE.cache)]
async fn cached_prefixed(id: u32) -> u32 {
    id
}

#[tokio::test]
async fn cache_keys_by_hand_equal_the_attributes() {
    assert_eq!(cached(7).await, 7);
    assert_eq!(cached_prefixed(7).await, 7);
    let (hand, _) = manual_cache();
    let options = CacheOptions::new();
    let key = default_key(Strategy::Cache, "cached", 7);
    strategy::cache(&hand, &key, hour(), &options, Plain::<u32>::new(), async {
        7
    })
    .await;
    let mut key = KeyBuf::with_prefix("v2");
    key.literal("user:");
    key.part(&7);
    let key = key.finish();
    strategy::cache(&hand, &key, hour(), &options, Plain::<u32>::new(), async {
        7
    })
    .await;
    assert_eq!(keys(&CACHE.cache).await, keys(&hand).await);
    assert!(keys(&hand).await.contains(&"v2:user:7".to_owned()));
}

// ----- failover, soft, early, hit --------------------------------------------------------------

static FAILOVER: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::failover(ttl = "1h", cache = FAILOVER.cache)]
async fn failing_over(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[cashews::failover(ttl = "1h", key = "status:{id}", cache = FAILOVER.cache)]
async fn failing_over_keyed(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[tokio::test]
async fn failover_keys_by_hand_equal_the_attributes() {
    failing_over(3).await.unwrap();
    failing_over_keyed(3).await.unwrap();
    let (hand, _) = manual_cache();
    let options = FailoverOptions::new();
    let key = default_key(Strategy::Failover, "failing_over", 3);
    strategy::failover(&hand, &key, hour(), &options, any_error, async {
        Ok::<u32, ApiError>(3)
    })
    .await
    .unwrap();
    let key = Strategy::Failover.key(&format!("status:{}", 3));
    strategy::failover(&hand, &key, hour(), &options, any_error, async {
        Ok::<u32, ApiError>(3)
    })
    .await
    .unwrap();
    assert_eq!(keys(&FAILOVER.cache).await, keys(&hand).await);
    assert!(keys(&hand).await.contains(&"fail:status:3".to_owned()));
}

static SOFT: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::soft(ttl = "1h", cache = SOFT.cache)]
async fn softly(id: u32) -> u32 {
    id
}

#[tokio::test]
async fn soft_keys_by_hand_equal_the_attribute() {
    softly(4).await;
    let (hand, _) = manual_cache();
    let key = default_key(Strategy::Soft, "softly", 4);
    let shape = Plain::<u32>::new();
    strategy::soft(&hand, &key, hour(), &SoftOptions::new(), shape, async { 4 }).await;
    assert_eq!(keys(&SOFT.cache).await, keys(&hand).await);
    assert_eq!(keys(&hand).await.len(), 1);
}

static EARLY: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::early(ttl = "1h", cache = EARLY.cache)]
async fn early_report(id: u32) -> u32 {
    id
}

#[tokio::test]
async fn early_keys_by_hand_equal_the_attribute() {
    early_report(5).await;
    let (hand, _) = manual_cache();
    let key = default_key(Strategy::Early, "early_report", 5);
    assert!(key.starts_with("early:v2:"), "{key}");
    let shape = Plain::<u32>::new();
    strategy::early(&hand, &key, hour(), &EarlyOptions::new(), shape, async {
        5
    })
    .await;
    assert_eq!(keys(&EARLY.cache).await, keys(&hand).await);
}

static HIT: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::hit(ttl = "1h", cache_hits = 3, cache = HIT.cache)]
async fn hits(id: u32) -> u32 {
    id
}

#[tokio::test]
async fn hit_keys_by_hand_equal_the_attribute() {
    hits(6).await;
    hits(6).await; // a hit: the counter appears beside the value
    let (hand, _) = manual_cache();
    let key = default_key(Strategy::Hit, "hits", 6);
    let options = HitOptions::new(3);
    for _ in 0..2 {
        strategy::hit(&hand, &key, hour(), &options, Plain::<u32>::new(), async {
            6
        })
        .await;
    }
    let stored = keys(&hand).await;
    assert_eq!(keys(&HIT.cache).await, stored);
    assert_eq!(stored, [key.clone(), format!("{key}:counter")]);
}

// ----- locked ----------------------------------------------------------------------------------

static LOCKED: LazyLock<Clocked> = LazyLock::new(clocked);

/// The keys present while the body runs (the lock is released after it).
#[cashews::locked(ttl = "1m", cache = LOCKED.cache)]
async fn locked_job(id: u32) -> Vec<String> {
    let _ = id;
    keys(&LOCKED.cache).await
}

#[tokio::test]
async fn locked_keys_by_hand_equal_the_attribute() {
    let by_macro = locked_job(8).await;
    let (hand, _) = manual_cache();
    let key = default_key(Strategy::Locked, "locked_job", 8);
    let ttl = Ttl::parse("1m").unwrap();
    let by_hand = strategy::locked_always(&hand, &key, ttl, keys(&hand)).await;
    assert_eq!(by_macro, by_hand);
    assert_eq!(by_hand, [key]);
}

// ----- rate limits and the circuit breaker -------------------------------------------------------

static RATE: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::rate_limit(limit = 5, period = "1m", cache = RATE.cache)]
async fn limited(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[cashews::slice_rate_limit(limit = 5, period = "1m", cache = RATE.cache)]
async fn slice_limited(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[tokio::test]
async fn rate_limit_keys_by_hand_equal_the_attributes() {
    limited(1).await.unwrap();
    slice_limited(1).await.unwrap();
    let (hand, _) = manual_cache();
    let minute = Duration::from_secs(60);
    let key = default_key(Strategy::RateLimit, "limited", 1);
    let options = RateLimitOptions::new(5, minute);
    strategy::rate_limited(&hand, &key, &options, async { Ok::<u32, ApiError>(1) })
        .await
        .unwrap();
    let key = default_key(Strategy::SliceRateLimit, "slice_limited", 1);
    let options = SliceRateLimitOptions::new(5, minute);
    strategy::slice_rate_limited(&hand, &key, &options, async { Ok::<u32, ApiError>(1) })
        .await
        .unwrap();
    let stored = keys(&hand).await;
    assert_eq!(keys(&RATE.cache).await, stored);
    assert!(stored.iter().any(|k| k.starts_with("srl:")), "{stored:?}");
    assert!(
        stored.iter().any(|k| k.starts_with("rate_limit:")),
        "{stored:?}"
    );
}

static CIRCUIT: LazyLock<Clocked> = LazyLock::new(clocked);

/// A circuit is per function: the default key names no argument.
#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "5m", cache = CIRCUIT.cache)]
async fn guarded(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[tokio::test]
async fn circuit_breaker_keys_by_hand_equal_the_attribute() {
    guarded(1).await.unwrap();
    guarded(2).await.unwrap();
    let (hand, _) = manual_cache();
    assert!(!Strategy::CircuitBreaker.keys_arguments());
    let key = Strategy::CircuitBreaker.function_key(module_path!(), "guarded");
    let minute = Duration::from_secs(60);
    let options = CircuitBreakerOptions::new(50, minute, 5 * minute);
    for id in [1, 2] {
        strategy::circuit_breaker(&hand, &key, &options, |_: &ApiError| true, async move {
            Ok::<u32, ApiError>(id)
        })
        .await
        .unwrap();
    }
    let stored = keys(&hand).await;
    assert!(!stored.is_empty());
    assert_eq!(keys(&CIRCUIT.cache).await, stored);
}

// ----- bloom and perf ----------------------------------------------------------------------------

static BLOOM: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::bloom(capacity = 100, cache = BLOOM.cache)]
async fn known(name: &str) -> bool {
    name == "ada"
}

/// A Bloom filter call only reads, so the filter is trained by hand under the keys the runtime
/// builds: the attribute then finds the member (it runs its body) exactly when its keys are
/// those.
#[tokio::test]
async fn bloom_keys_by_hand_equal_the_attribute() {
    let cache = &BLOOM.cache;
    assert!(!known("ada").await, "an untrained filter answers `false`");
    let filter = Strategy::Bloom.function_key(module_path!(), "known");
    let mut member = KeyBuf::new();
    member.function(module_path!(), "known");
    member.arg("name", "ada");
    let member = member.finish();
    let options = strategy::BloomOptions::new(100);
    assert!(strategy::bloom_set(cache, &filter, &member, &options, async { true }).await);
    assert!(known("ada").await, "trained under the hand-built keys");
    assert!(!known("bob").await);
    assert_eq!(keys(cache).await, [options.filter_key(&filter)]);
}

static PERF: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::perf(ttl = "1m", cache = PERF.cache)]
async fn timed(id: u32) -> Result<u32, ApiError> {
    Ok(id)
}

#[tokio::test]
async fn perf_keys_by_hand_equal_the_attribute() {
    timed(9).await.unwrap();
    let (hand, _) = manual_cache();
    let key = default_key(Strategy::Perf, "timed", 9);
    let options = PerfOptions::new(Duration::from_secs(60));
    strategy::perf(&hand, &key, &options, async { Ok::<u32, ApiError>(9) })
        .await
        .unwrap();
    let stored = keys(&hand).await;
    assert!(!stored.is_empty());
    assert_eq!(keys(&PERF.cache).await, stored);
}

// ----- methods ---------------------------------------------------------------------------------

static METHODS: LazyLock<Clocked> = LazyLock::new(clocked);

struct Repo;

impl Repo {
    #[cashews::early(ttl = "1h", cache = METHODS.cache)]
    async fn load(&self, id: u32) -> u32 {
        id
    }
}

#[tokio::test]
async fn method_keys_by_hand_equal_the_attribute() {
    Repo.load(2).await;
    let (hand, _) = manual_cache();
    let mut key = Strategy::Early.key_buf();
    key.method(module_path!(), std::any::type_name::<Repo>(), "load");
    key.arg("id", &2);
    let key = key.finish();
    assert_eq!(key, format!("early:v2:{}:Repo.load:id:2", module_path!()));
    let shape = Plain::<u32>::new();
    strategy::early(&hand, &key, hour(), &EarlyOptions::new(), shape, async {
        2
    })
    .await;
    assert_eq!(keys(&METHODS.cache).await, keys(&hand).await);
}
