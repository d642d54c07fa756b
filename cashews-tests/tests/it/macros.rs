//! `#[cashews::cache]`: what it stores, under which key, for how long, on which cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, Command, MemoryBackend};
use serde::{Deserialize, Serialize};

static CALLS: LazyLock<parking_lot::Mutex<HashMap<&'static str, usize>>> =
    LazyLock::new(Default::default);

fn count(name: &'static str) {
    *CALLS.lock().entry(name).or_default() += 1;
}

fn calls(name: &'static str) -> usize {
    CALLS.lock().get(name).copied().unwrap_or(0)
}

/// Each test uses a cache of its own, passed with `cache = ...`.
macro_rules! test_cache {
    ($name:ident) => {
        static $name: LazyLock<Cache> = LazyLock::new(|| {
            let cache = Cache::new();
            cache.setup("mem://").unwrap();
            cache
        });
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
}

#[derive(Debug, PartialEq)]
struct ApiError(String);

test_cache!(RESULTS);

#[cashews::cache(ttl = "1h", key = "profile:{id}", cache = RESULTS)]
async fn profile(id: u64, fail: bool) -> Result<Profile, ApiError> {
    count("profile");
    if fail {
        return Err(ApiError("down".to_owned()));
    }
    Ok(Profile {
        id,
        name: format!("user {id}"),
    })
}

#[tokio::test]
async fn ok_is_stored_err_is_not() {
    assert_eq!(profile(1, true).await, Err(ApiError("down".to_owned())));
    assert_eq!(RESULTS.get::<Profile>("profile:1").await.unwrap(), None);
    let first = profile(1, false).await.unwrap();
    let again = profile(1, true).await.unwrap();
    assert_eq!(first, again, "the hit must not run the body");
    assert_eq!(calls("profile"), 2);
    assert_eq!(
        RESULTS.get::<Profile>("profile:1").await.unwrap(),
        Some(first)
    );
    assert!(matches!(
        RESULTS.get_expire("profile:1").await.unwrap(),
        cashews::backend::Expiry::In(left) if left > Duration::from_secs(3590)
    ));
}

test_cache!(OPTIONS);

#[cashews::cache(ttl = 60, key = "find:{name}", cache = OPTIONS)]
async fn find(name: &str) -> Option<u32> {
    count("find");
    name.parse().ok()
}

#[cashews::cache(ttl = 60, key = "find_some:{name}", condition = not_none, cache = OPTIONS)]
async fn find_some(name: &str) -> Option<u32> {
    count("find_some");
    name.parse().ok()
}

#[tokio::test]
async fn none_is_stored_unless_not_none() {
    assert_eq!(find("x").await, None);
    assert_eq!(find("x").await, None);
    assert_eq!(calls("find"), 1, "a cached None is a hit");
    assert_eq!(find_some("x").await, None);
    assert_eq!(find_some("x").await, None);
    assert_eq!(calls("find_some"), 2, "not_none does not store None");
    assert_eq!(find_some("7").await, Some(7));
    assert_eq!(find_some("7").await, Some(7));
    assert_eq!(calls("find_some"), 3);
}

test_cache!(DEFAULT_KEYS);

#[cashews::cache(ttl = "10m", cache = DEFAULT_KEYS)]
async fn plain(a: u32, b: Option<&str>, tags: Vec<&str>) -> String {
    count("plain");
    format!("{a}{b:?}{}", tags.len())
}

#[tokio::test]
async fn the_default_key_names_module_function_and_arguments() {
    let value = plain(1, None, vec!["x", "y"]).await;
    let key = "it::macros:plain:a:1:b::tags:x:y";
    assert_eq!(DEFAULT_KEYS.get::<String>(key).await.unwrap(), Some(value));
    plain(1, None, vec!["x", "y"]).await;
    assert_eq!(calls("plain"), 1);
    plain(1, Some("b"), vec![]).await;
    assert_eq!(calls("plain"), 2);
}

#[derive(Debug, Serialize)]
struct User {
    id: u64,
    email: String,
    roles: Vec<String>,
    attrs: HashMap<String, String>,
}

test_cache!(TEMPLATES);

#[cashews::cache(
    ttl = "1h",
    prefix = "v2",
    key = "user:{user.id}:{user.email:lower:hash}:{user.roles[0]}:{user.roles[5]}:{user.attrs[plan]}",
    cache = TEMPLATES
)]
async fn permissions(user: &User) -> Vec<String> {
    count("permissions");
    user.roles.clone()
}

#[tokio::test]
async fn templates_read_fields_indexes_maps_and_filters() {
    let user = User {
        id: 9,
        email: "Ann@Example.COM".to_owned(),
        roles: vec!["admin".to_owned()],
        attrs: HashMap::from([("plan".to_owned(), "pro".to_owned())]),
    };
    permissions(&user).await;
    // md5("ann@example.com"); a missing index renders empty.
    let key = "v2:user:9:3e4d2e6e4bbf0d62c3bd2d1b1b3d2a4b:admin::pro";
    let keys: Vec<String> = {
        use futures_util::StreamExt;
        TEMPLATES.scan("v2:*").map(Result::unwrap).collect().await
    };
    assert_eq!(keys.len(), 1);
    let md5 = md5_of("ann@example.com");
    assert_eq!(
        keys[0],
        key.replace("3e4d2e6e4bbf0d62c3bd2d1b1b3d2a4b", &md5)
    );
    permissions(&user).await;
    assert_eq!(calls("permissions"), 1);
}

fn md5_of(text: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(text.as_bytes()))
}

test_cache!(TTLS);

fn ttl_for(premium: bool) -> &'static str {
    if premium { "1h" } else { "bad ttl" }
}

#[cashews::cache(ttl = ttl_for(premium), key = "ttl:{premium}", cache = TTLS)]
async fn priced(premium: bool) -> u32 {
    count(if premium {
        "priced:premium"
    } else {
        "priced:basic"
    });
    1
}

#[tokio::test]
async fn a_ttl_expression_of_the_arguments_and_a_bad_one_skips_the_cache() {
    priced(true).await;
    priced(true).await;
    assert_eq!(calls("priced:premium"), 1);
    priced(false).await;
    priced(false).await;
    assert_eq!(
        calls("priced:basic"),
        2,
        "an invalid run-time TTL is not cached"
    );
    assert!(!TTLS.exists("ttl:false").await.unwrap());
}

test_cache!(METHODS);

struct Repo {
    name: &'static str,
}

struct Other;

impl Repo {
    #[cashews::cache(ttl = "1h", cache = METHODS)]
    async fn get(&self, id: u32) -> String {
        count("Repo::get");
        format!("{}:{id}", self.name)
    }

    #[cashews::cache(ttl = "1h", key = "repo:{self.name}:{id}", cache = METHODS)]
    async fn named(&self, id: u32) -> String {
        count("Repo::named");
        format!("{}:{id}", self.name)
    }
}

impl Other {
    #[cashews::cache(ttl = "1h", cache = METHODS)]
    async fn get(&self, id: u32) -> String {
        count("Other::get");
        format!("other:{id}")
    }
}

#[tokio::test]
async fn methods_leave_self_out_of_the_default_key_but_not_their_type() {
    let repo = Repo { name: "r" };
    assert_eq!(repo.get(1).await, "r:1");
    assert_eq!(
        Other.get(1).await,
        "other:1",
        "another type's method has its own key"
    );
    assert_eq!(repo.get(1).await, "r:1");
    assert_eq!((calls("Repo::get"), calls("Other::get")), (1, 1));
    assert_eq!(repo.named(2).await, "r:2");
    assert!(METHODS.exists("repo:r:2").await.unwrap());
}

test_cache!(GENERIC);

#[cashews::cache(ttl = "1h", key = "generic:{value}", cache = GENERIC)]
async fn describe<T: cashews::key::KeyPart + std::fmt::Display + Sync>(value: T) -> String {
    count("describe");
    format!("<{value}>")
}

#[tokio::test]
async fn generic_functions_are_cached_per_rendered_key() {
    assert_eq!(describe(5_u8).await, "<5>");
    assert_eq!(describe("5").await, "<5>", "same key, a hit");
    assert_eq!(calls("describe"), 1);
}

test_cache!(FLOW);

#[cashews::cache(ttl = "1h", key = "parse:{text}", cache = FLOW)]
async fn parse(text: &str) -> Result<i64, std::num::ParseIntError> {
    count("parse");
    if text.is_empty() {
        return Ok(0);
    }
    let n: i64 = text.trim().parse()?;
    Ok(n * 2)
}

#[tokio::test]
async fn return_and_question_mark_keep_their_meaning() {
    assert_eq!(parse("").await, Ok(0));
    assert_eq!(parse("21").await, Ok(42));
    assert!(parse("x").await.is_err());
    assert!(parse("x").await.is_err());
    assert_eq!(calls("parse"), 4, "errors are not cached; each call ran");
    assert_eq!(parse("21").await, Ok(42));
    assert_eq!(calls("parse"), 4);
}

#[cashews::cache(ttl = "1h", key = "tenant:{@:get(tenant)}:{id}", cache = FLOW)]
async fn tenant_item(id: u32) -> u32 {
    count("tenant_item");
    id
}

#[tokio::test]
async fn the_key_context_reaches_templates() {
    cashews::key::context::with_key_context([("tenant".to_owned(), "acme".to_owned())], async {
        tenant_item(1).await;
    })
    .await;
    assert!(FLOW.exists("tenant:acme:1").await.unwrap());
    tenant_item(1).await;
    assert!(
        FLOW.exists("tenant::1").await.unwrap(),
        "no context renders empty"
    );
}

#[tokio::test]
async fn a_disabled_cache_runs_the_body_every_time() {
    static OFF: LazyLock<Cache> = LazyLock::new(|| {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        cache.disable(&[Command::Get, Command::Set]);
        cache
    });
    #[cashews::cache(ttl = "1h", key = "off", cache = OFF)]
    async fn off() -> u8 {
        count("off");
        1
    }
    off().await;
    off().await;
    assert_eq!(calls("off"), 2);
}

#[tokio::test(start_paused = true)]
async fn time_condition_stores_only_slow_results() {
    static SLOW: LazyLock<Cache> = LazyLock::new(|| {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        cache
    });
    #[cashews::cache(ttl = "1h", key = "slow:{ms}", time_condition = "1s", cache = SLOW)]
    async fn work(ms: u64) -> u64 {
        count("work");
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
    work(10).await;
    work(10).await;
    assert_eq!(calls("work"), 2, "fast results are not stored");
    work(2_000).await;
    work(2_000).await;
    assert_eq!(calls("work"), 3);
}

#[tokio::test]
async fn a_manual_clock_cache_expires_entries() {
    let clock = Clock::manual();
    let cache = Cache::new();
    cache
        .setup_backend(
            "",
            MemoryBackend::with_clock(MemoryOptions::default(), clock.clone()),
            CacheConfig::default(),
        )
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let run = |runs: Arc<AtomicUsize>| async move { runs.fetch_add(1, Ordering::SeqCst) };
    for _ in 0..2 {
        cashews::strategy::cache(
            &cache,
            "k",
            cashews::Ttl::parse("10s").unwrap(),
            &cashews::strategy::CacheOptions::new(),
            cashews::strategy::Plain::<usize>::new(),
            run(runs.clone()),
        )
        .await;
    }
    clock.advance(Duration::from_secs(11));
    cashews::strategy::cache(
        &cache,
        "k",
        cashews::Ttl::parse("10s").unwrap(),
        &cashews::strategy::CacheOptions::new(),
        cashews::strategy::Plain::<usize>::new(),
        run(runs.clone()),
    )
    .await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "a hit, then an expiry");
}

test_cache!(STAMPEDE);

static STAMPEDE_RUNS: AtomicUsize = AtomicUsize::new(0);
static UNPROTECTED_RUNS: AtomicUsize = AtomicUsize::new(0);
static FAILING_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Callers of `report` and `failing` that have started their call.
static STAMPEDE_ARRIVED: AtomicUsize = AtomicUsize::new(0);
static FAILING_ARRIVED: AtomicUsize = AtomicUsize::new(0);

/// Yields until `ready` holds: orders events between tasks without a timed sleep.
async fn until(ready: impl Fn() -> bool) {
    while !ready() {
        tokio::task::yield_now().await;
    }
}

#[cashews::cache(ttl = "1h", key = "stampede:{id}", cache = STAMPEDE)]
async fn report(id: u32) -> Result<String, String> {
    STAMPEDE_RUNS.fetch_add(1, Ordering::SeqCst);
    // The body finishes only once every caller has started its call, so they all overlap.
    until(|| STAMPEDE_ARRIVED.load(Ordering::SeqCst) == 1_000).await;
    Ok(format!("report {id}"))
}

/// Set when two bodies of `unprotected` have run at once.
static UNPROTECTED_OVERLAP: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[cashews::cache(ttl = "1h", key = "unprotected:{id}", protected = false, cache = STAMPEDE)]
async fn unprotected(id: u32) -> u32 {
    let n = UNPROTECTED_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    // The first body waits for a second one: it can only come without protection.
    if n == 1 {
        let overlap = UNPROTECTED_OVERLAP.notified();
        if UNPROTECTED_RUNS.load(Ordering::SeqCst) < 2 {
            overlap.await;
        }
    } else if n == 2 {
        UNPROTECTED_OVERLAP.notify_waiters();
    }
    id
}

#[cashews::cache(ttl = "1h", key = "failing:{id}", cache = STAMPEDE)]
async fn failing(id: u32) -> Result<u32, String> {
    FAILING_RUNS.fetch_add(1, Ordering::SeqCst);
    until(|| FAILING_ARRIVED.load(Ordering::SeqCst) == 50).await;
    Err(format!("origin {id} failed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_run_the_body_once() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        tasks.spawn(async {
            STAMPEDE_ARRIVED.fetch_add(1, Ordering::SeqCst);
            report(1).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), "report 1");
    }
    assert_eq!(STAMPEDE_RUNS.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_protection_concurrent_misses_each_run() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        tasks.spawn(unprotected(1));
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), 1);
    }
    // Two bodies overlapped (the first waited for the second), so the count is at least 2.
    assert!(UNPROTECTED_RUNS.load(Ordering::SeqCst) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_of_a_failed_leader_get_their_own_real_error() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        tasks.spawn(async {
            FAILING_ARRIVED.fetch_add(1, Ordering::SeqCst);
            failing(3).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), Err("origin 3 failed".to_owned()));
    }
    let runs = FAILING_RUNS.load(Ordering::SeqCst);
    assert!((1..=50).contains(&runs), "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_over_and_nobody_hangs() {
    static HANDOVER: AtomicUsize = AtomicUsize::new(0);
    #[cashews::cache(ttl = "1h", key = "handover", cache = STAMPEDE)]
    async fn slow() -> u32 {
        let n = HANDOVER.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            // The first leader never finishes: its caller gives up.
            std::future::pending::<()>().await;
        }
        7
    }
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    let leader = tokio::spawn(slow());
    // The leader is the one running the body that never finishes.
    while HANDOVER.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..10 {
        waiters.spawn(async {
            WAITING.fetch_add(1, Ordering::SeqCst);
            slow().await
        });
    }
    // Every waiter has started its call (and found the leader's load) before the cancel.
    until(|| WAITING.load(Ordering::SeqCst) == 10).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    leader.abort();
    while let Some(done) = waiters.join_next().await {
        assert_eq!(done.unwrap(), 7);
    }
    assert_eq!(
        HANDOVER.load(Ordering::SeqCst),
        2,
        "one new leader ran after the cancel"
    );
}

test_cache!(PATTERNS);

// An argument written as a pattern: the default key names the names it binds.
#[cashews::cache(ttl = "1h", cache = PATTERNS)]
async fn distance((x, y): (i64, i64), _: u8) -> i64 {
    count("distance");
    x * x + y * y
}

#[tokio::test]
async fn default_key_names_what_patterns_bind() {
    assert_eq!(distance((3, 4), 1).await, 25);
    // `_` binds nothing the body could read, so it is not part of the key.
    assert_eq!(distance((3, 4), 2).await, 25);
    assert_eq!(calls("distance"), 1);
    assert_eq!(distance((4, 3), 1).await, 25);
    assert_eq!(calls("distance"), 2);
    let mut key = cashews::key::Strategy::Cache.key_buf();
    key.function(module_path!(), "distance");
    key.arg("x", &3_i64);
    key.arg("y", &4_i64);
    assert_eq!(PATTERNS.get::<i64>(&key.finish()).await.unwrap(), Some(25));
}
