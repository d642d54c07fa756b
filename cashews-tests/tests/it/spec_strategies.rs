//! SPEC §9 acceptance scenarios "Keys", "TTL" and "Strategies" (52-111) that no other test
//! module covered, or covered only in part: each test names its scenario number. Memory
//! backends on a manual clock; counts, not timings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cashews::key::{KeyPart, KeyTemplate};
use cashews::strategy::{
    self, CacheOptions, EarlyOptions, FailoverOptions, Fallible, HitOptions, IteratorOptions,
    Plain, SoftOptions, When, WithErrors, any_error, cache_locked, early, failover, hit, iterator,
    locked_always, soft,
};
use cashews::{Cache, IntoTtl, Ttl};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::support::{Clocked, clocked, manual_cache, ms};

/// Counts origin runs.
#[derive(Debug, Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// An origin returning `value`, counted when it runs.
    fn returning<T: Send + 'static>(&self, value: T) -> impl Future<Output = T> + Send + 'static {
        let runs = Arc::clone(&self.0);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            value
        }
    }

    /// An origin that takes `took` (Tokio time) and returns its length in milliseconds.
    fn taking(&self, took: u64) -> impl Future<Output = u64> + Send + 'static {
        let runs = Arc::clone(&self.0);
        async move {
            tokio::time::sleep(ms(took)).await;
            runs.fetch_add(1, Ordering::SeqCst);
            took
        }
    }
}

/// Python's `CustomError`: cacheable, so `with_errors` shapes can store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CustomError;

/// The error type of the refusal strategies driven through the macros.
#[derive(Debug, PartialEq)]
enum ApiError {
    Refused(String),
}

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self::Refused(error.to_string())
    }
}

fn render(template: &str, args: &[(&str, &dyn KeyPart)]) -> String {
    KeyTemplate::parse(template).unwrap().render(args).unwrap()
}

// ----- Keys ----------------------------------------------------------------------------------

static METHOD_KEYS: LazyLock<Clocked> = LazyLock::new(clocked);

struct K;

impl K {
    #[cashews::cache(ttl = "1h", cache = METHOD_KEYS.cache)]
    async fn m(&self, a: u32) -> u32 {
        a
    }
}

/// SPEC §9 #52 (methods): with `noself` (the Rust default) the key of `K.m(self, a)` is
/// `<module>:K.m:a:{a}`. (The function form `<module>:f:a:{a}:b:{b}` is covered by
/// `macros::the_default_key_names_module_function_and_arguments`.)
#[tokio::test]
async fn spec_52_method_default_key_leaves_self_out() {
    assert_eq!(K.m(1).await, 1);
    let keys: Vec<String> = METHOD_KEYS
        .cache
        .scan("*")
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(keys, [format!("{}:K.m:a:1", module_path!())]);
}

/// SPEC §9 #54: `{arg1}:{kwarg1}-{kwarg3}` with ("A1", "a2", "a3") and {kwarg1: "k1",
/// kwarg3: true} renders `A1:k1-true`.
#[test]
fn spec_54_named_fields_from_arguments() {
    assert_eq!(
        render(
            "{arg1}:{kwarg1}-{kwarg3}",
            &[
                ("arg1", &"A1"),
                ("arg2", &"a2"),
                ("kwarg1", &"k1"),
                ("kwarg3", &true)
            ]
        ),
        "A1:k1-true"
    );
}

static NAMES: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::cache(ttl = "1h", key = "k", prefix = "v2", cache = NAMES.cache)]
async fn names_cache() -> u32 {
    1
}

#[cashews::failover(ttl = "1h", key = "k", cache = NAMES.cache)]
async fn names_failover() -> Result<u32, ApiError> {
    Ok(1)
}

#[cashews::early(ttl = "1h", key = "k", cache = NAMES.cache)]
async fn names_early() -> u32 {
    1
}

#[cashews::soft(ttl = "1h", key = "k", cache = NAMES.cache)]
async fn names_soft() -> u32 {
    1
}

#[cashews::hit(ttl = "1h", cache_hits = 3, key = "k", cache = NAMES.cache)]
async fn names_hit() -> u32 {
    1
}

#[cashews::locked(ttl = "1h", key = "k", cache = NAMES.cache)]
async fn names_locked() -> bool {
    NAMES.cache.is_locked("locked:k").await.unwrap()
}

#[cashews::rate_limit(limit = 5, period = "1m", key = "k", cache = NAMES.cache)]
async fn names_rate_limit() -> Result<u32, ApiError> {
    Ok(1)
}

#[cashews::slice_rate_limit(limit = 5, period = "1m", key = "k", cache = NAMES.cache)]
async fn names_slice_rate_limit() -> Result<u32, ApiError> {
    Ok(1)
}

/// SPEC §9 #66: the key each strategy stores for key "k".
#[tokio::test]
async fn spec_66_stored_key_names_per_strategy() {
    let cache = &NAMES.cache;
    names_cache().await;
    names_failover().await.unwrap();
    names_early().await;
    names_soft().await;
    names_hit().await;
    names_hit().await; // a hit: the counter appears beside the value
    assert!(
        names_locked().await,
        "locked holds `locked:k` while it runs"
    );
    names_rate_limit().await.unwrap();
    names_slice_rate_limit().await.unwrap();
    for key in [
        "v2:k",
        "fail:k",
        "early:v2:k",
        "soft:k",
        "hit:k",
        "hit:k:counter",
        "rate_limit:k",
        "srl:k",
    ] {
        assert!(cache.exists(key).await.unwrap(), "{key}");
    }
    assert!(!cache.is_locked("locked:k").await.unwrap(), "released");
}

// ----- TTL -----------------------------------------------------------------------------------

/// SPEC §9 #67: every TTL form, through the public conversion.
#[test]
fn spec_67_ttl_forms() {
    fn secs_of(ttl: impl IntoTtl) -> f64 {
        ttl.into_ttl().unwrap().duration().unwrap().as_secs_f64()
    }
    assert_eq!(secs_of(Duration::from_secs(10)), 10.0);
    assert_eq!(secs_of(10), 10.0);
    assert_eq!(secs_of(Duration::from_secs_f64(100.1)), 100.1);
    for (text, expected) in [
        ("10s", 10.0),
        ("1m10s", 70.0),
        ("10m1s", 601.0),
        ("1", 1.0),
        ("80", 80.0),
        ("1d2h3m50s", 93_830.0),
        ("2H", 7_200.0),
    ] {
        assert_eq!(secs_of(text), expected, "{text:?}");
    }
}

/// SPEC §9 #68: "1w", "1.5s", "5x" and ([PORT]) "1m10", "" are rejected, quoting the string.
#[test]
fn spec_68_bad_ttl_strings_are_rejected() {
    for bad in ["1w", "1.5s", "5x", "1m10", ""] {
        let err = Ttl::parse(bad).unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{bad}`")),
            "{bad:?}: {err}"
        );
    }
}

static TTL_BY_ARGS: LazyLock<Clocked> = LazyLock::new(clocked);
static TTL_BY_ARGS_RUNS: AtomicUsize = AtomicUsize::new(0);

fn ttl_of_resp(resp: &str) -> &'static str {
    if resp == "ok" { "10ms" } else { "2h" }
}

#[cashews::cache(ttl = ttl_of_resp(resp), cache = TTL_BY_ARGS.cache)]
async fn by_args(resp: &str) -> String {
    TTL_BY_ARGS_RUNS.fetch_add(1, Ordering::SeqCst);
    resp.to_owned()
}

static TTL_BY_RESULT: LazyLock<Clocked> = LazyLock::new(clocked);
static TTL_BY_RESULT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(
    ttl = |result: &String| if result == "ok" { "10ms" } else { "2h" },
    cache = TTL_BY_RESULT.cache
)]
async fn by_result(resp: &str) -> String {
    TTL_BY_RESULT_RUNS.fetch_add(1, Ordering::SeqCst);
    resp.to_owned()
}

/// SPEC §9 #69: a TTL computed per call, 0.01 s for "ok" and "2h" otherwise, from the
/// arguments and from the result. (Keyword calls sharing an entry are N/A in Rust.)
#[tokio::test]
async fn spec_69_ttl_computed_per_call() {
    by_args("ok").await;
    by_args("ok").await;
    assert_eq!(TTL_BY_ARGS_RUNS.load(Ordering::SeqCst), 1);
    TTL_BY_ARGS.clock.advance(ms(20));
    by_args("ok").await;
    assert_eq!(TTL_BY_ARGS_RUNS.load(Ordering::SeqCst), 2);
    by_args("notok").await;
    assert_eq!(TTL_BY_ARGS_RUNS.load(Ordering::SeqCst), 3);
    TTL_BY_ARGS.clock.advance(ms(20));
    by_args("notok").await;
    assert_eq!(TTL_BY_ARGS_RUNS.load(Ordering::SeqCst), 3);

    by_result("ok").await;
    by_result("ok").await;
    assert_eq!(TTL_BY_RESULT_RUNS.load(Ordering::SeqCst), 1);
    TTL_BY_RESULT.clock.advance(ms(20));
    by_result("ok").await;
    assert_eq!(TTL_BY_RESULT_RUNS.load(Ordering::SeqCst), 2);
    by_result("notok").await;
    assert_eq!(TTL_BY_RESULT_RUNS.load(Ordering::SeqCst), 3);
    TTL_BY_RESULT.clock.advance(ms(20));
    by_result("notok").await;
    assert_eq!(TTL_BY_RESULT_RUNS.load(Ordering::SeqCst), 3);
}

// ----- Strategies: cache ---------------------------------------------------------------------

/// SPEC §9 #70: cache(ttl 0.02, key "key"): "ok"; "notok" at once → "ok"; after 0.022 s,
/// "notok" → "notok".
#[tokio::test]
async fn spec_70_cache_expires_with_its_ttl() {
    let (cache, clock) = manual_cache();
    let runs = Runs::default();
    let options = CacheOptions::new();
    let call = |resp: &str| {
        strategy::cache(
            &cache,
            "key",
            Ttl::new(ms(20)),
            &options,
            Plain::new(),
            runs.returning(resp.to_owned()),
        )
    };
    assert_eq!(call("ok").await, "ok");
    assert_eq!(call("notok").await, "ok");
    clock.advance(ms(22));
    assert_eq!(call("notok").await, "notok");
    assert_eq!(runs.count(), 2);
}

/// SPEC §9 #72: condition `result == "hit"`: "ok", "notok", "hit", "hit" → 1, 2, 3, 3 runs.
#[tokio::test]
async fn spec_72_custom_condition_on_a_static_key() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let options = CacheOptions::new();
    let shape = When(Plain::<String>::new(), |result: &String| result == "hit");
    let mut counts = Vec::new();
    for resp in ["ok", "notok", "hit", "hit"] {
        let got = strategy::cache(
            &cache,
            "key",
            Ttl::secs(10),
            &options,
            shape,
            runs.returning(resp.to_owned()),
        )
        .await;
        assert_eq!(got, resp);
        counts.push(runs.count());
    }
    assert_eq!(counts, [1, 2, 3, 3]);
}

/// SPEC §9 #75 (early and hit): `only_exceptions(CustomError)`: two raising calls → 1 run.
#[tokio::test]
async fn spec_75_only_errors_on_early_and_hit() {
    let (cache, _clock) = manual_cache();
    let shape = WithErrors::<String, CustomError>::new(true);

    let runs = Runs::default();
    for _ in 0..2 {
        let got = early(
            &cache,
            "early:v2:key",
            Ttl::secs(10),
            &EarlyOptions::new(),
            shape,
            runs.returning(Err(CustomError)),
        )
        .await;
        assert_eq!(got, Err(CustomError));
    }
    assert_eq!(runs.count(), 1, "early replays the cached error");

    let runs = Runs::default();
    for _ in 0..2 {
        let got = hit(
            &cache,
            "hit:key",
            Ttl::secs(10),
            &HitOptions::new(10),
            shape,
            runs.returning(Err(CustomError)),
        )
        .await;
        assert_eq!(got, Err(CustomError));
    }
    assert_eq!(runs.count(), 1, "hit replays the cached error");
}

/// Five calls with arguments 0..5 on the static key "p", concurrently on one task: each
/// origin yields long enough for the other calls to reach the cache first.
async fn five_on_static_key(cache: &Cache, options: &CacheOptions, runs: &Runs) -> Vec<u32> {
    let calls = (0..5u32).map(|n| {
        let origin = runs.returning(n);
        strategy::cache(
            cache,
            "p",
            Ttl::secs(60),
            options,
            Plain::new(),
            async move {
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
                origin.await
            },
        )
    });
    futures_util::future::join_all(calls).await
}

/// SPEC §9 #76: protected (the default): 5 concurrent calls with different arguments on the
/// static key "p" → 1 run, and all 5 get the first result; protected=false → 5 runs.
#[tokio::test]
async fn spec_76_protected_coalesces_concurrent_misses() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let got = five_on_static_key(&cache, &CacheOptions::new(), &runs).await;
    assert_eq!(got, [0; 5]);
    assert_eq!(runs.count(), 1);

    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let got = five_on_static_key(&cache, &CacheOptions::new().protected(false), &runs).await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(runs.count(), 5);
}

/// SPEC §9 #78: outer cache(key1, upper, lock) over inner cache(key2), key2 preset to
/// "test2": the call returns "test2" and key1 stays empty; after setting key1 to "test1",
/// the call returns "test1" and key2 is still "test2".
#[tokio::test]
async fn spec_78_upper_with_lock_does_not_store_an_inner_hit() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let ttl = Ttl::secs(60);
    let (outer_options, inner_options) = (CacheOptions::new().upper(true), CacheOptions::new());
    let call = || {
        let inner = strategy::cache(
            &cache,
            "key2",
            ttl,
            &inner_options,
            Plain::<String>::new(),
            runs.returning("fresh".to_owned()),
        );
        cache_locked(&cache, "key1", ttl, &outer_options, Plain::new(), inner)
    };
    cache.set("key2", "test2", 60).await.unwrap();
    assert_eq!(call().await, "test2");
    assert_eq!(
        cache.get::<String>("key1").await.unwrap(),
        None,
        "served by the inner cache: not stored"
    );
    cache.set("key1", "test1", 60).await.unwrap();
    assert_eq!(call().await, "test1");
    assert_eq!(
        cache.get::<String>("key2").await.unwrap().as_deref(),
        Some("test2")
    );
    assert_eq!(runs.count(), 0);
}

type Res = Result<String, CustomError>;

/// SPEC §9 #79: outer failover(key "fail", prefix "") over inner cache("key"), "fail" preset
/// to "test_fail".
#[tokio::test]
async fn spec_79_failover_over_cache() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let ttl = Ttl::secs(60);
    let (failover_options, inner_options) = (FailoverOptions::new(), CacheOptions::new());
    let call = |fail: bool| {
        let result: Res = if fail {
            Err(CustomError)
        } else {
            Ok("fresh".to_owned())
        };
        let inner = strategy::cache(
            &cache,
            "key",
            ttl,
            &inner_options,
            Fallible::new(),
            runs.returning(result),
        );
        failover(&cache, "fail", ttl, &failover_options, any_error, inner)
    };
    cache.set("fail", "test_fail", 60).await.unwrap();
    assert_eq!(call(true).await, Ok("test_fail".to_owned()));
    assert!(!cache.exists("key").await.unwrap(), "errors are not cached");

    cache.delete("fail").await.unwrap();
    cache.set("key", "val", 60).await.unwrap();
    assert_eq!(call(false).await, Ok("val".to_owned()));
    assert!(
        !cache.exists("fail").await.unwrap(),
        "failover does not store what the inner cache served"
    );
    assert_eq!(runs.count(), 1);
}

/// SPEC §9 #80: outer cache(key "key", upper) over inner failover(key "fail"), "fail" preset:
/// func(fail=True) → "test_fail" and "key" stays empty.
#[tokio::test]
async fn spec_80_upper_cache_over_failover() {
    let (cache, _clock) = manual_cache();
    let ttl = Ttl::secs(60);
    let (outer_options, failover_options) =
        (CacheOptions::new().upper(true), FailoverOptions::new());
    cache.set("fail:key", "test_fail", 60).await.unwrap();
    let inner: Res = failover(
        &cache,
        "fail:key",
        ttl,
        &failover_options,
        any_error,
        async { Err(CustomError) },
    )
    .await;
    assert_eq!(inner, Ok("test_fail".to_owned()), "the failover alone");
    let got = strategy::cache(
        &cache,
        "key",
        ttl,
        &outer_options,
        Fallible::<String, CustomError>::new(),
        failover(
            &cache,
            "fail:key",
            ttl,
            &failover_options,
            any_error,
            async { Err(CustomError) },
        ),
    )
    .await;
    assert_eq!(got, Ok("test_fail".to_owned()));
    assert!(
        !cache.exists("key").await.unwrap(),
        "served by the inner failover: not stored"
    );
}

/// SPEC §9 #81: time_condition 0.1 s on key "test" (protected=false, as in Python), for one
/// strategy: `call(ms)` runs an origin taking `ms` and returns what it got.
async fn time_condition_scenario<F, Fut>(cache: &Cache, runs: &Runs, call: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    call(10).await;
    futures_util::join!(call(10), call(10), call(10));
    assert_eq!(runs.count(), 4, "fast results are not stored");
    futures_util::join!(call(150), call(10), call(100));
    assert_eq!(runs.count(), 7);
    assert_eq!(call(150).await, 150, "the slow result was stored");
    assert_eq!(call(10).await, 150);
    assert_eq!(runs.count(), 7);
    cache.clear().await.unwrap();
    call(10).await;
    assert_eq!(runs.count(), 8);
}

/// SPEC §9 #81 for cache.
#[tokio::test(start_paused = true)]
async fn spec_81_time_condition_cache() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let options = CacheOptions::new().time_condition(ms(100)).protected(false);
    let call = |took: u64| {
        strategy::cache(
            &cache,
            "test",
            Ttl::secs(10),
            &options,
            Plain::new(),
            runs.taking(took),
        )
    };
    time_condition_scenario(&cache, &runs, call).await;
}

/// SPEC §9 #81 for early.
#[tokio::test(start_paused = true)]
async fn spec_81_time_condition_early() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let options = EarlyOptions::new().time_condition(ms(100)).protected(false);
    let call = |took: u64| {
        early(
            &cache,
            "early:v2:test",
            Ttl::secs(10),
            &options,
            Plain::new(),
            runs.taking(took),
        )
    };
    time_condition_scenario(&cache, &runs, call).await;
}

/// SPEC §9 #81 for soft.
#[tokio::test(start_paused = true)]
async fn spec_81_time_condition_soft() {
    let (cache, _clock) = manual_cache();
    let runs = Runs::default();
    let options = SoftOptions::new().time_condition(ms(100)).protected(false);
    let call = |took: u64| {
        soft(
            &cache,
            "soft:test",
            Ttl::secs(10),
            &options,
            Plain::new(),
            runs.taking(took),
        )
    };
    time_condition_scenario(&cache, &runs, call).await;
}

// ----- Strategies: iterator, locked, rate limits ----------------------------------------------

/// SPEC §9 #93: iterator with `with_exceptions(MyErr)` over a source yielding "a", "b", then
/// raising: pass 1 yields "a", "b" and the error (3 source calls); pass 2 replays them with
/// 0 calls.
#[tokio::test]
async fn spec_93_iterator_with_errors_replays_the_error() {
    let (cache, _clock) = manual_cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let source = || {
        let calls = Arc::clone(&calls);
        let script: Vec<Res> = vec![Ok("a".to_owned()), Ok("b".to_owned()), Err(CustomError)];
        // A raising generator: the error ends the stream.
        stream::iter(script).scan(false, move |failed, item| {
            let next = if *failed {
                None
            } else {
                calls.fetch_add(1, Ordering::SeqCst);
                *failed = item.is_err();
                Some(item)
            };
            std::future::ready(next)
        })
    };
    let shape = WithErrors::<String, CustomError>::new(false);
    let expected: Vec<Res> = vec![Ok("a".to_owned()), Ok("b".to_owned()), Err(CustomError)];
    let options = IteratorOptions::new();

    let first: Vec<Res> = iterator(&cache, "iterator", Ttl::secs(10), &options, shape, source())
        .collect()
        .await;
    assert_eq!(first, expected);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let second: Vec<Res> = iterator(&cache, "iterator", Ttl::secs(10), &options, shape, source())
        .collect()
        .await;
    assert_eq!(second, expected);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "replayed, error included");
}

/// SPEC §9 #97 (first half): a stream consumed under the lock yields all 10 chunks, and the
/// lock is held while it is consumed. (There is no locked-stream adapter: the stream is
/// consumed inside the locked future.)
#[tokio::test]
async fn spec_97_a_stream_consumed_under_the_lock_yields_every_chunk() {
    let (cache, _clock) = manual_cache();
    let consumed = locked_always(&cache, "locked:gen", Ttl::secs(10), async {
        stream::iter(0..10u32)
            .then(|chunk| {
                let cache = cache.clone();
                async move {
                    assert!(cache.is_locked("locked:gen").await.unwrap());
                    chunk
                }
            })
            .collect::<Vec<_>>()
            .await
    })
    .await;
    assert_eq!(consumed, (0..10).collect::<Vec<_>>());
    assert!(!cache.is_locked("locked:gen").await.unwrap());
}

#[derive(Debug)]
struct User {
    name: String,
}

static PER_USER: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::rate_limit(limit = 1, period = "1m", key = "user:{user.name}", cache = PER_USER.cache)]
async fn fixed_per_user(user: &User) -> Result<(), ApiError> {
    let _ = user;
    Ok(())
}

#[cashews::slice_rate_limit(limit = 1, period = "1m", key = "user:{user.name}", cache = PER_USER.cache)]
async fn sliding_per_user(user: &User) -> Result<(), ApiError> {
    let _ = user;
    Ok(())
}

/// SPEC §9 #102: rate_limit and slice_rate_limit with key `user:{user.name}`: user "test" →
/// ok, "test" → refused, "new" → ok.
#[tokio::test]
async fn spec_102_rate_limits_per_user_field() {
    let test = User {
        name: "test".to_owned(),
    };
    let new = User {
        name: "new".to_owned(),
    };
    assert_eq!(fixed_per_user(&test).await, Ok(()));
    assert!(matches!(
        fixed_per_user(&test).await,
        Err(ApiError::Refused(_))
    ));
    assert_eq!(fixed_per_user(&new).await, Ok(()));
    assert!(PER_USER.cache.exists("rate_limit:user:test").await.unwrap());

    assert_eq!(sliding_per_user(&test).await, Ok(()));
    assert!(matches!(
        sliding_per_user(&test).await,
        Err(ApiError::Refused(_))
    ));
    assert_eq!(sliding_per_user(&new).await, Ok(()));
    assert!(PER_USER.cache.exists("srl:user:new").await.unwrap());
}
