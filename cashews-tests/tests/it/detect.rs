//! Detect (SPEC §6.3) and `upper` (§3.0.1): what the cache served, and stacked caches.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::detect::Extra;
use cashews::strategy::{
    self, CacheOptions, EarlyOptions, FailoverOptions, Fallible, HitOptions, IteratorOptions,
    Plain, Shared, SoftOptions, any_error, early, failover, hit, iterator, soft,
};
use cashews::{Cache, Clock, Ttl, detect};
use futures_util::future::join_all;

use crate::support::manual_cache;

static CACHES: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "10s", key = "key", cache = CACHES.0)]
async fn simple() -> u32 {
    1
}

#[cashews::cache(ttl = "10s", key = "other", cache = CACHES.0)]
async fn other() -> u32 {
    2
}

#[tokio::test]
async fn a_scope_sees_hits_not_misses_and_nested_scopes_see_their_own() {
    let (_, first) = detect(simple()).await;
    assert!(first.is_empty(), "a miss records nothing");
    let (_, second) = detect(simple()).await;
    assert_eq!(second.keys(), vec!["key".to_owned()]);
    assert_eq!(second.served()[0].strategy, "simple");
    CACHES.1.advance(Duration::from_secs(11));
    let (_, third) = detect(async {
        simple().await;
        simple().await
    })
    .await;
    assert_eq!(
        third.served().len(),
        1,
        "after expiry: a recompute, then one hit"
    );

    other().await;
    let (inner, outer) = detect(async {
        let (_, inner) = detect(simple()).await;
        other().await;
        inner
    })
    .await;
    assert_eq!(inner.keys(), vec!["key".to_owned()]);
    assert_eq!(
        outer.keys(),
        vec!["key".to_owned(), "other".to_owned()],
        "enclosing scopes see inner hits"
    );
}

static STACK: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);
static INNER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1h", key = "key2", cache = STACK.0)]
async fn inner() -> String {
    INNER_RUNS.fetch_add(1, Ordering::SeqCst);
    "fresh".to_owned()
}

#[cashews::cache(ttl = "1h", key = "key1", upper = true, cache = STACK.0)]
async fn outer() -> String {
    inner().await
}

#[tokio::test]
async fn upper_does_not_store_what_an_inner_cache_served() {
    STACK.0.set("key2", "test2", "1h").await.unwrap();
    assert_eq!(outer().await, "test2");
    assert!(
        !STACK.0.exists("key1").await.unwrap(),
        "served by the inner cache: not stored"
    );
    STACK.0.delete("key2").await.unwrap();
    assert_eq!(outer().await, "fresh");
    assert!(STACK.0.exists("key1").await.unwrap(), "computed: stored");
    assert_eq!(INNER_RUNS.load(Ordering::SeqCst), 1);
}

static FAILOVER: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "1h", key = "source", cache = FAILOVER.0)]
async fn source() -> u32 {
    5
}

#[cashews::failover(ttl = "1h", key = "wrapped", cache = FAILOVER.0)]
async fn wrapped() -> Result<u32, String> {
    Ok(source().await)
}

#[tokio::test]
async fn failover_behaves_as_upper() {
    wrapped().await.unwrap();
    assert!(
        FAILOVER.0.exists("fail:wrapped").await.unwrap(),
        "computed by the inner function: stored"
    );
    FAILOVER.0.delete("fail:wrapped").await.unwrap();
    wrapped().await.unwrap();
    assert!(
        !FAILOVER.0.exists("fail:wrapped").await.unwrap(),
        "served by the inner cache: not stored"
    );
}

static FURTHER: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);
static FURTHER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1h", key = "further", cache = FURTHER.0)]
async fn counted() -> usize {
    FURTHER_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn invalidate_further_recomputes_inside_and_keeps_the_fresh_value() {
    use futures_util::StreamExt;
    let cache = &FURTHER.0;
    assert_eq!(counted().await, 0);
    assert_eq!(counted().await, 0);
    let fresh = cashews::invalidate_further(counted()).await;
    assert_eq!(fresh, 1, "inside: recomputed");
    assert_eq!(
        counted().await,
        1,
        "afterwards the fresh value stays cached"
    );

    cache.set("key", "value", "1h").await.unwrap();
    let inside = cashews::invalidate_further(async {
        cache.set("key", "value2", "1h").await.unwrap();
        cache.set("key2", "value2", "1h").await.unwrap();
        let got: Option<String> = cache.get("key").await.unwrap();
        let many: Vec<Option<String>> = cache.get_many(&["key"]).await.unwrap();
        let matched: Vec<_> = cache.get_match::<String>("key2*").collect().await;
        (got, many, matched.len())
    })
    .await;
    assert_eq!(inside, (None, vec![None], 0));
    let after: Vec<Option<String>> = cache.get_many(&["key", "key2"]).await.unwrap();
    assert_eq!(after, vec![None, None], "every key read inside was deleted");
    cache.set("key3", "value3", "1h").await.unwrap();
    assert_eq!(
        cache.get::<String>("key3").await.unwrap(),
        Some("value3".to_owned()),
        "outside: normal reads"
    );
}

// ----- SPEC §6.3 tests ---------------------------------------------------------------------

static SPEC: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "10s", key = "key", cache = SPEC.0)]
async fn spec_simple() -> String {
    "ok".to_owned()
}

#[tokio::test]
async fn first_call_records_nothing_a_hit_records_its_key_and_a_recompute_adds_none() {
    let (_, first) = detect(spec_simple()).await;
    assert!(first.calls().is_empty(), "computed");
    let (_, detected) = detect(async {
        spec_simple().await; // a hit
        SPEC.1.advance(Duration::from_secs(11));
        spec_simple().await // expired: recomputed, records nothing
    })
    .await;
    assert_eq!(detected.keys(), ["key"]);
    assert_eq!(detected.calls().len(), 1);
    assert_eq!(detected.served().len(), 1);
}

static JOINED: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "1h", key = "key1", cache = JOINED.0)]
async fn joined_one() -> u32 {
    1
}

#[cashews::cache(ttl = "1h", key = "key2", cache = JOINED.0)]
async fn joined_two() -> u32 {
    2
}

#[tokio::test]
async fn two_cached_functions_joined_give_two_entries() {
    let both = || futures_util::future::join(joined_one(), joined_two());
    let (_, first) = detect(both()).await;
    assert!(first.calls().is_empty(), "both computed");
    let (_, detected) = detect(both()).await;
    let calls = detected.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.contains_key("key1") && calls.contains_key("key2"));
}

static TASKS: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "1h", key = "key1", cache = TASKS.0)]
async fn task_one() -> String {
    "computed".to_owned()
}

#[cashews::cache(ttl = "1h", key = "key2", cache = TASKS.0)]
async fn task_two() -> String {
    "computed".to_owned()
}

/// Runs `ones` calls of `task_one` and `twos` of `task_two` concurrently in a scope of its own;
/// returns (distinct keys, records) that scope saw.
async fn in_own_scope(ones: usize, twos: usize) -> (usize, usize) {
    let (_, detected) = detect(async {
        let ones = join_all((0..ones).map(|_| task_one()));
        let twos = join_all((0..twos).map(|_| task_two()));
        futures_util::future::join(ones, twos).await
    })
    .await;
    (detected.calls().len(), detected.served().len())
}

#[tokio::test]
async fn nested_scopes_in_spawned_tasks_count_their_own_hits_and_the_outer_sees_all() {
    TASKS.0.set("key1", "test", "1h").await.unwrap();
    TASKS.0.set("key2", "test", "1h").await.unwrap();
    assert_eq!(task_one().await, "test");
    assert_eq!(task_two().await, "test");

    let (counts, outer) = detect(async {
        let mut counts = Vec::new();
        for (ones, twos) in [(1, 0), (1, 1), (0, 1), (0, 2)] {
            counts.push(cashews::spawn(in_own_scope(ones, twos)).await.unwrap());
        }
        counts
    })
    .await;
    let keys: Vec<usize> = counts.iter().map(|(keys, _)| *keys).collect();
    assert_eq!(
        keys,
        [1, 2, 1, 1],
        "distinct keys per task's scope (Python `keys`)"
    );
    let records: Vec<usize> = counts.iter().map(|(_, records)| *records).collect();
    assert_eq!(records, [1, 2, 1, 2], "every hit per task's scope");
    assert_eq!(outer.calls().len(), 2, "the outer scope sees both keys");
    assert_eq!(outer.served().len(), 6, "and every hit of its child tasks");
}

#[tokio::test]
async fn a_closed_scope_receives_nothing_more() {
    let (cache, _clock) = manual_cache();
    let options = CacheOptions::new();
    let ttl = Ttl::parse("1h").unwrap();
    let call = || strategy::cache(&cache, "k", ttl, &options, Plain::<u32>::new(), async { 1 });
    call().await;
    let (_, closed) = detect(call()).await;
    assert_eq!(closed.served().len(), 1);
    call().await;
    let (_, again) = detect(call()).await;
    assert_eq!(
        closed.served().len(),
        1,
        "hits after the scope ended are not recorded"
    );
    assert_eq!(again.served().len(), 1);
}

// ----- what each strategy records -------------------------------------------------------------

fn hour() -> Ttl {
    Ttl::parse("1h").unwrap()
}

#[tokio::test]
async fn cache_records_ttl_template_and_the_shared_object_itself() {
    let (cache, _clock) = manual_cache();
    let options = CacheOptions::new().template("user:{id}");
    let shape = Shared(Plain::<String>::new());
    let call = || {
        strategy::cache(&cache, "user:7", hour(), &options, shape, async {
            "ann".to_owned()
        })
    };
    call().await;
    let (hit, detected) = detect(call()).await;
    assert_eq!(hit, "ann");
    let served = &detected.served()[0];
    assert_eq!((served.key.as_str(), served.strategy), ("user:7", "simple"));
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
    assert_eq!(served.template, Some("user:{id}"));
    assert_eq!(served.extra, Extra::Empty);
    let recorded = served.value::<String>().unwrap();
    let shared = cache.get_shared::<String>("user:7").await.unwrap().unwrap();
    assert!(
        std::ptr::eq(recorded, &*shared),
        "the shared object, not a copy"
    );

    // A shape that decodes per hit keeps no value.
    let plain = strategy::cache(
        &cache,
        "user:7",
        hour(),
        &options,
        Plain::<String>::new(),
        async { String::new() },
    );
    let (_, detected) = detect(plain).await;
    assert!(detected.served()[0].value.is_none());
}

#[tokio::test]
async fn soft_records_its_soft_ttl_and_expiry() {
    let (cache, clock) = manual_cache();
    clock.advance(Duration::from_secs(5));
    let options = SoftOptions::new()
        .soft_ttl(Duration::from_secs(60))
        .template("rate:{c}");
    let shape = Shared(Fallible::<u32, String>::new());
    let call = |n: u32| {
        soft(
            &cache,
            "soft:rate:eur",
            hour(),
            &options,
            shape,
            async move { Ok(n) },
        )
    };
    call(108).await.unwrap();
    let (hit, detected) = detect(call(0)).await;
    assert_eq!(hit, Ok(108));
    let served = &detected.served()[0];
    assert_eq!(served.strategy, "soft");
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
    assert_eq!(served.template, Some("rate:{c}"));
    assert_eq!(
        served.value::<u32>(),
        Some(&108),
        "the stored part of `Ok(108)`"
    );
    let Extra::Soft {
        soft_ttl,
        soft_expire_at,
        ..
    } = served.extra
    else {
        panic!("not a soft record: {:?}", served.extra);
    };
    assert_eq!(soft_ttl, Some(Duration::from_secs(60)));
    assert_eq!(
        soft_expire_at,
        Some(Duration::from_secs(65)),
        "written at 5 s on the clock"
    );

    // The default soft TTL (a third of the TTL) and a shape without values.
    let defaults = SoftOptions::new();
    let plain = Fallible::<u32, String>::new();
    soft(&cache, "soft:n", hour(), &defaults, plain, async { Ok(1) })
        .await
        .unwrap();
    let (_, detected) = detect(soft(&cache, "soft:n", hour(), &defaults, plain, async {
        Ok(2)
    }))
    .await;
    let served = &detected.served()[0];
    assert!(served.value.is_none() && served.template.is_none());
    assert!(
        matches!(served.extra, Extra::Soft { soft_ttl: Some(t), .. } if t == Duration::from_secs(3600).mul_f64(0.33))
    );
}

#[tokio::test]
async fn early_records_its_early_ttl_and_refresh_instant_also_when_refreshing() {
    let (cache, clock) = manual_cache();
    let options = EarlyOptions::new()
        .early_ttl(Duration::from_secs(600))
        .template("report:{day}");
    let shape = Shared(Plain::<u32>::new());
    let call = |n: u32| {
        early(
            &cache,
            "early:v2:report:3",
            hour(),
            &options,
            shape,
            async move { n },
        )
    };
    call(1).await;
    let (hit, detected) = detect(call(2)).await;
    assert_eq!(hit, 1);
    let served = &detected.served()[0];
    assert_eq!(served.strategy, "early");
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
    assert_eq!(served.template, Some("report:{day}"));
    assert_eq!(served.value::<u32>(), Some(&1));
    let Extra::Early {
        early_ttl,
        early_expire_at,
        ..
    } = served.extra
    else {
        panic!("not an early record: {:?}", served.extra);
    };
    assert_eq!(early_ttl, Some(Duration::from_secs(600)));
    assert_eq!(early_expire_at, Some(Duration::from_secs(600)));

    clock.advance(Duration::from_secs(601));
    let (old, detected) = detect(call(3)).await;
    assert_eq!(old, 1, "the refreshing call returns the stored value");
    let served = &detected.served()[0];
    assert_eq!(served.value::<u32>(), Some(&1));
    assert!(
        matches!(served.extra, Extra::Early { early_expire_at: Some(at), .. } if at == Duration::from_secs(600))
    );
}

#[tokio::test]
async fn hit_records_cache_hits_also_for_the_hit_that_updates() {
    let (cache, _clock) = manual_cache();
    let options = HitOptions::new(5).update_after(2).template("page:{n}");
    let shape = Shared(Plain::<u32>::new());
    let call = |n: u32| {
        hit(
            &cache,
            "hit:page:1",
            hour(),
            &options,
            shape,
            async move { n },
        )
    };
    call(1).await;
    let (first, detected) = detect(call(2)).await;
    assert_eq!(first, 1);
    let served = &detected.served()[0];
    assert_eq!(served.strategy, "hit");
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
    assert_eq!(served.template, Some("page:{n}"));
    assert_eq!(served.value::<u32>(), Some(&1));
    assert!(matches!(served.extra, Extra::Hit { cache_hits: 5, .. }));
    let (updating, detected) = detect(call(3)).await;
    assert_eq!(
        updating, 1,
        "the second hit updates and still serves the stored value"
    );
    assert_eq!(
        detected.keys(),
        ["hit:page:1"],
        "a served value, so recorded"
    );
}

#[tokio::test]
async fn failover_records_the_error_type_and_no_value() {
    let (cache, _clock) = manual_cache();
    let options = FailoverOptions::new().template("status:{name}");
    let call = |result: Result<u32, String>| {
        failover(
            &cache,
            "fail:status:db",
            hour(),
            &options,
            any_error,
            async move { result },
        )
    };
    assert_eq!(call(Ok(7)).await, Ok(7));
    let (ok, detected) = detect(call(Ok(8))).await;
    assert_eq!(ok, Ok(8));
    assert!(
        detected.is_empty(),
        "a success is not served from the cache"
    );
    let (fallback, detected) = detect(call(Err("down".to_owned()))).await;
    assert_eq!(fallback, Ok(8));
    let served = &detected.served()[0];
    assert_eq!(
        (served.key.as_str(), served.strategy),
        ("fail:status:db", "failover")
    );
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
    assert_eq!(served.template, Some("status:{name}"));
    assert!(served.value.is_none());
    assert!(
        matches!(served.extra, Extra::Failover { error_type, .. } if error_type == std::any::type_name::<String>())
    );
}

#[tokio::test]
async fn iterator_records_the_replayed_items_for_shared_shapes() {
    use futures_util::{StreamExt, stream};
    let (cache, _clock) = manual_cache();
    let options = IteratorOptions::new().template("words:{n}");
    let shape = Shared(Plain::<String>::new());
    let words = || stream::iter(["a", "b"].map(str::to_owned));
    let first: Vec<String> = iterator(&cache, "words:2", hour(), &options, shape, words())
        .collect()
        .await;
    let (replay, detected) = detect(
        iterator(&cache, "words:2", hour(), &options, shape, words()).collect::<Vec<String>>(),
    )
    .await;
    assert_eq!(replay, first);
    let served = &detected.served()[0];
    assert_eq!(
        (served.key.as_str(), served.strategy),
        ("words:2", "iterator")
    );
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
    assert_eq!(served.template, Some("words:{n}"));
    assert_eq!(served.value::<Vec<String>>(), Some(&first));
    assert_eq!(served.extra, Extra::Empty);

    let plain = Plain::<String>::new();
    let (_, detected) = detect(
        iterator(&cache, "words:2", hour(), &options, plain, words()).collect::<Vec<String>>(),
    )
    .await;
    assert!(detected.served()[0].value.is_none());
}

static VALUES: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "1h", key = "profile:{id}", cache = VALUES.0)]
async fn profile(id: u64) -> Result<String, std::io::Error> {
    Ok(format!("user {id}"))
}

#[tokio::test]
async fn decorated_functions_with_clone_results_record_their_values() {
    profile(1).await.unwrap();
    let (_, detected) = detect(profile(1)).await;
    let served = &detected.calls()["profile:1"];
    assert_eq!(served.value::<String>().map(String::as_str), Some("user 1"));
    assert_eq!(served.ttl, Some(Duration::from_secs(3600)));
}

// ----- the backend that served a record ---------------------------------------------------

/// Every strategy that records a hit, called twice on keys under `prefix` (a miss that
/// stores, then a hit; for `failover`, a success then a failure served by the fallback),
/// with the second calls inside one detect scope: their records, in call order.
async fn served_by_every_strategy(cache: &Cache, prefix: &str) -> Vec<cashews::detect::Served> {
    use futures_util::{StreamExt, stream};
    let ttl = hour();
    let key = |name: &str| format!("{prefix}{name}");
    let keys = ["cache", "locked", "soft", "early", "hit", "fail", "iter"].map(key);
    let [
        cache_key,
        locked_key,
        soft_key,
        early_key,
        hit_key,
        fail_key,
        iter_key,
    ] = &keys;
    let plain = Plain::<u32>::new();
    let fallible = Fallible::<u32, String>::new();
    let cache_options = &CacheOptions::new();
    let (soft_options, early_options) = (&SoftOptions::new(), &EarlyOptions::new());
    let (hit_options, fail_options) = (&HitOptions::new(5), &FailoverOptions::new());
    let iter_options = &IteratorOptions::new();
    let calls = |fail: bool| async move {
        strategy::cache(cache, cache_key, ttl, cache_options, plain, async { 1 }).await;
        strategy::cache_locked(cache, locked_key, ttl, cache_options, plain, async { 1 }).await;
        soft(cache, soft_key, ttl, soft_options, fallible, async {
            Ok(1)
        })
        .await
        .unwrap();
        early(cache, early_key, ttl, early_options, plain, async { 1 }).await;
        hit(cache, hit_key, ttl, hit_options, plain, async { 1 }).await;
        let result = if fail { Err("down".to_owned()) } else { Ok(1) };
        failover(cache, fail_key, ttl, fail_options, any_error, async move {
            result
        })
        .await
        .unwrap();
        let items = stream::iter([1_u32, 2]);
        let items: Vec<u32> = iterator(cache, iter_key, ttl, iter_options, plain, items)
            .collect()
            .await;
        assert_eq!(items, [1, 2]);
    };
    calls(false).await;
    let ((), detected) = detect(calls(true)).await;
    detected.served()
}

/// The strategy and backend of each record.
fn backends(served: &[cashews::detect::Served]) -> Vec<(&'static str, Option<&'static str>)> {
    served.iter().map(|s| (s.strategy, s.backend)).collect()
}

/// What [`served_by_every_strategy`] records when every key is served by `backend`.
fn all_from(backend: &'static str) -> Vec<(&'static str, Option<&'static str>)> {
    [
        "simple", "simple", "soft", "early", "hit", "failover", "iterator",
    ]
    .into_iter()
    .map(|strategy| (strategy, Some(backend)))
    .collect()
}

#[tokio::test]
async fn every_record_names_the_memory_backend() {
    let (cache, _clock) = manual_cache();
    let served = served_by_every_strategy(&cache, "backend:").await;
    assert_eq!(backends(&served), all_from("mem"));
}

#[cfg(feature = "disk")]
#[tokio::test]
async fn every_record_names_the_disk_backend() {
    let dir = tempfile::Builder::new()
        .prefix("cashews-detect-")
        .tempdir()
        .unwrap();
    let cache = Cache::new();
    cache
        .setup(&format!("disk://?directory={}", dir.path().display()))
        .unwrap();
    let served = served_by_every_strategy(&cache, "backend:").await;
    assert_eq!(backends(&served), all_from("disk"));
    cache.close().await.unwrap();
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn every_record_names_the_redis_backend() {
    let cache = Cache::new();
    cache.setup(&crate::support::redis_url()).unwrap();
    let prefix = crate::support::unique_prefix("detect");
    let served = served_by_every_strategy(&cache, &prefix).await;
    assert_eq!(backends(&served), all_from("redis"));
    cache.delete_match(&format!("{prefix}*")).await.unwrap();
}

/// Two prefixes routed to two backends: each record names the backend of its own key.
#[cfg(feature = "disk")]
#[tokio::test]
async fn records_of_two_routes_name_their_own_backends() {
    let dir = tempfile::Builder::new()
        .prefix("cashews-detect-")
        .tempdir()
        .unwrap();
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
        .setup_prefix(
            "on-disk:",
            &format!("disk://?directory={}", dir.path().display()),
        )
        .unwrap();
    let in_memory = served_by_every_strategy(&cache, "in-memory:").await;
    let on_disk = served_by_every_strategy(&cache, "on-disk:").await;
    assert_eq!(backends(&in_memory), all_from("mem"));
    assert_eq!(backends(&on_disk), all_from("disk"));
    let ((), both) = detect(async {
        strategy::cache(
            &cache,
            "in-memory:cache",
            hour(),
            &CacheOptions::new(),
            Plain::<u32>::new(),
            async { 1 },
        )
        .await;
        strategy::cache(
            &cache,
            "on-disk:cache",
            hour(),
            &CacheOptions::new(),
            Plain::<u32>::new(),
            async { 1 },
        )
        .await;
    })
    .await;
    let named: Vec<(String, Option<&str>)> = both
        .served()
        .iter()
        .map(|s| (s.key.clone(), s.backend))
        .collect();
    assert_eq!(
        named,
        [
            ("in-memory:cache".to_owned(), Some("mem")),
            ("on-disk:cache".to_owned(), Some("disk"))
        ]
    );
    cache.close().await.unwrap();
}
