//! Attribute options computed from the call: a TTL from the result (SPEC §3.0.3), error
//! caching filtered by a predicate (§3.0.4 `with_exceptions(Type)`), and `action` for the
//! rate limits (§3.9, §3.10). Counts, not timings; a manual clock moves time.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use cashews::backend::Expiry;
use serde::{Deserialize, Serialize};

use crate::support::{Clocked, clocked, secs};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Answer {
    text: String,
    vip: bool,
}

static TTL_OF: LazyLock<Clocked> = LazyLock::new(clocked);
static TTL_RUNS: AtomicUsize = AtomicUsize::new(0);

// SPEC: `ttl(resp)` returns a short TTL for one result and "2h" otherwise.
#[cashews::cache(
    ttl = |answer: &Answer| if answer.vip { "2h" } else { "10s" },
    key = "answer:{name}",
    cache = TTL_OF.cache
)]
async fn answer(name: &str) -> Result<Answer, std::io::Error> {
    TTL_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(Answer {
        text: format!("hi {name}"),
        vip: name == "ada",
    })
}

#[tokio::test]
async fn cache_ttl_computed_from_the_result() {
    answer("ada").await.unwrap();
    answer("bob").await.unwrap();
    assert_eq!(
        TTL_OF.cache.get_expire("answer:ada").await.unwrap(),
        Expiry::In(secs(7200))
    );
    assert_eq!(
        TTL_OF.cache.get_expire("answer:bob").await.unwrap(),
        Expiry::In(secs(10))
    );
    TTL_OF.clock.advance(secs(11));
    answer("ada").await.unwrap();
    answer("bob").await.unwrap();
    assert_eq!(
        TTL_RUNS.load(Ordering::SeqCst),
        3,
        "ada served from the cache, bob expired and recomputed"
    );
}

static SOFT_TTL_OF: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::soft(ttl = |n: &u64| *n, soft_ttl = "1s", key = "soft:{n}", prefix = "", cache = SOFT_TTL_OF.cache)]
async fn soft_seconds(n: u64) -> u64 {
    n
}

static HIT_TTL_OF: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::hit(ttl = |n: &Option<u64>| n.map_or(5, |n| n * 60), cache_hits = 3, key = "hit:{n}", prefix = "", cache = HIT_TTL_OF.cache)]
async fn hit_minutes(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

#[tokio::test]
async fn soft_and_hit_store_for_the_computed_ttl() {
    assert_eq!(soft_seconds(90).await, 90);
    assert_eq!(
        SOFT_TTL_OF.cache.get_expire("soft:90").await.unwrap(),
        Expiry::In(secs(90))
    );
    assert_eq!(hit_minutes(2).await, Some(2));
    assert_eq!(hit_minutes(0).await, None);
    assert_eq!(
        HIT_TTL_OF.cache.get_expire("hit:2").await.unwrap(),
        Expiry::In(secs(120))
    );
    assert_eq!(
        HIT_TTL_OF.cache.get_expire("hit:0").await.unwrap(),
        Expiry::In(secs(5))
    );
}

static BAD_TTL: LazyLock<Clocked> = LazyLock::new(clocked);
static BAD_TTL_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = |_: &String| "5x", key = "bad", cache = BAD_TTL.cache)]
async fn bad_ttl() -> String {
    BAD_TTL_RUNS.fetch_add(1, Ordering::SeqCst);
    "value".to_owned()
}

#[tokio::test]
async fn an_invalid_computed_ttl_is_not_stored_and_the_call_still_answers() {
    assert_eq!(bad_ttl().await, "value");
    assert_eq!(bad_ttl().await, "value");
    assert_eq!(BAD_TTL_RUNS.load(Ordering::SeqCst), 2);
    assert!(!BAD_TTL.cache.exists("bad").await.unwrap());
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LookupError {
    NotFound,
    Timeout,
}

impl LookupError {
    fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}

static ERRORS: LazyLock<Clocked> = LazyLock::new(clocked);
static ERROR_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1m", key = "user:{id}", condition = with_errors(LookupError::is_not_found), cache = ERRORS.cache)]
async fn user(id: u32) -> Result<String, LookupError> {
    ERROR_RUNS.fetch_add(1, Ordering::SeqCst);
    match id {
        0 => Err(LookupError::NotFound),
        1 => Err(LookupError::Timeout),
        _ => Ok(format!("user {id}")),
    }
}

static ONLY: LazyLock<Clocked> = LazyLock::new(clocked);
static ONLY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1m", key = "only:{id}", condition = only_errors(|e: &LookupError| *e == LookupError::NotFound), cache = ONLY.cache)]
async fn only_not_found(id: u32) -> Result<String, LookupError> {
    ONLY_RUNS.fetch_add(1, Ordering::SeqCst);
    match id {
        0 => Err(LookupError::NotFound),
        1 => Err(LookupError::Timeout),
        _ => Ok(format!("user {id}")),
    }
}

#[tokio::test]
async fn with_errors_caches_only_the_errors_the_predicate_names() {
    for _ in 0..2 {
        assert_eq!(user(0).await, Err(LookupError::NotFound));
        assert_eq!(user(1).await, Err(LookupError::Timeout));
        assert_eq!(user(2).await, Ok("user 2".to_owned()));
    }
    assert_eq!(
        ERROR_RUNS.load(Ordering::SeqCst),
        4,
        "not-found and the value cached once each; the timeout runs every time"
    );
    for _ in 0..2 {
        assert_eq!(only_not_found(0).await, Err(LookupError::NotFound));
        assert_eq!(only_not_found(1).await, Err(LookupError::Timeout));
        assert_eq!(only_not_found(2).await, Ok("user 2".to_owned()));
    }
    assert_eq!(
        ONLY_RUNS.load(Ordering::SeqCst),
        5,
        "only the not-found error is cached"
    );
}

static LIMITS: LazyLock<Clocked> = LazyLock::new(clocked);
static LIMITED_RUNS: AtomicUsize = AtomicUsize::new(0);
static ACTIONS: AtomicUsize = AtomicUsize::new(0);

fn too_many(user: String, attempt: u32) -> String {
    ACTIONS.fetch_add(1, Ordering::SeqCst);
    format!("slow down, {user} (attempt {attempt})")
}

// The result is a plain `String`: with `action` a refusal needs no error type.
#[cashews::rate_limit(limit = 2, period = "1m", action = too_many, key = "login:{user}", cache = LIMITS.cache)]
async fn login(user: String, attempt: u32) -> String {
    LIMITED_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("welcome {user} ({attempt})")
}

static SLICES: LazyLock<Clocked> = LazyLock::new(clocked);

struct Search {
    refusals: AtomicUsize,
}

impl Search {
    fn busy(&self, query: &str) -> Result<Vec<String>, std::io::Error> {
        self.refusals.fetch_add(1, Ordering::SeqCst);
        Ok(vec![format!("busy: {query}")])
    }

    #[cashews::slice_rate_limit(limit = 1, period = "10s", action = Self::busy, key = "search", cache = SLICES.cache)]
    async fn search(&self, query: &str) -> Result<Vec<String>, std::io::Error> {
        Ok(vec![query.to_owned()])
    }
}

#[tokio::test]
async fn action_answers_refused_calls_with_the_same_arguments() {
    assert_eq!(login("ada".to_owned(), 1).await, "welcome ada (1)");
    assert_eq!(login("ada".to_owned(), 2).await, "welcome ada (2)");
    assert_eq!(
        login("ada".to_owned(), 3).await,
        "slow down, ada (attempt 3)"
    );
    assert_eq!(login("bob".to_owned(), 1).await, "welcome bob (1)");
    assert_eq!(LIMITED_RUNS.load(Ordering::SeqCst), 3);
    assert_eq!(ACTIONS.load(Ordering::SeqCst), 1);
    LIMITS.clock.advance(secs(61));
    assert_eq!(login("ada".to_owned(), 4).await, "welcome ada (4)");

    let search = Search {
        refusals: AtomicUsize::new(0),
    };
    assert_eq!(search.search("a").await.unwrap(), vec!["a"]);
    assert_eq!(search.search("b").await.unwrap(), vec!["busy: b"]);
    assert_eq!(search.refusals.load(Ordering::SeqCst), 1);
    SLICES.clock.advance(secs(11));
    assert_eq!(search.search("c").await.unwrap(), vec!["c"]);
}

static TAGGED: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::cache(ttl = "1h", key = "post:{id}", tags = ["posts", "post:{id}"], cache = TAGGED.cache)]
async fn post(id: u32) -> String {
    format!("post {id}")
}

struct Shelf;

impl Shelf {
    // A default key (module, type, method, arguments) registered as a template too.
    #[cashews::cache(ttl = "1h", tags = ["shelf"], cache = TAGGED.cache)]
    async fn book(&self, id: u32) -> String {
        format!("book {id}")
    }
}

#[tokio::test]
async fn tagged_attributes_register_their_key_template_so_deletes_clean_tag_sets() {
    let cache = &TAGGED.cache;
    post(1).await;
    assert_eq!(
        cache.get_key_tags("post:1"),
        ["posts".to_owned(), "post:1".to_owned()]
    );
    // SPEC §6.1: tagged, deleted, rewritten untagged: the old tag no longer reaches it.
    cache.delete("post:1").await.unwrap();
    cache.set("post:1", "untagged", "1h").await.unwrap();
    cache.delete_tags(&["posts"]).await.unwrap();
    assert_eq!(
        cache.get::<String>("post:1").await.unwrap().as_deref(),
        Some("untagged")
    );

    Shelf.book(7).await;
    let key = format!("{}:Shelf.book:id:7", module_path!());
    assert!(cache.exists(&key).await.unwrap());
    assert_eq!(cache.get_key_tags(&key), ["shelf".to_owned()]);
    cache.delete_tags(&["shelf"]).await.unwrap();
    assert!(!cache.exists(&key).await.unwrap());
}

#[tokio::test]
async fn detect_reports_the_template_ttl_and_value_of_a_decorated_hit() {
    post(5).await;
    let (_, detected) = cashews::detect(post(5)).await;
    let served = detected.served();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].key, "post:5");
    assert_eq!(served[0].template, Some("post:{id}"));
    assert_eq!(served[0].ttl, Some(secs(3600)));
    assert_eq!(
        served[0].value::<String>().map(String::as_str),
        Some("post 5")
    );

    Shelf.book(9).await;
    let (_, detected) = cashews::detect(Shelf.book(9)).await;
    assert_eq!(
        detected.served()[0].template,
        Some(concat!(module_path!(), ":{__type}.book:id:{id}"))
    );
}

static STREAMS: LazyLock<Clocked> = LazyLock::new(clocked);
static STREAM_CALLS: AtomicUsize = AtomicUsize::new(0);

// SPEC §9 #93 through the attribute: the error item is cached and replayed, ending the pass.
#[cashews::iterator(ttl = "1m", key = "export", condition = with_errors, cache = STREAMS.cache)]
fn export() -> impl futures_core::Stream<Item = Result<String, LookupError>> {
    use futures_util::StreamExt;
    let items = vec![
        Ok("a".to_owned()),
        Ok("b".to_owned()),
        Err(LookupError::Timeout),
    ];
    futures_util::stream::iter(items).inspect(|_| {
        STREAM_CALLS.fetch_add(1, Ordering::SeqCst);
    })
}

#[tokio::test]
async fn iterator_with_errors_replays_the_error_item() {
    use futures_util::StreamExt;
    let expected = vec![
        Ok("a".to_owned()),
        Ok("b".to_owned()),
        Err(LookupError::Timeout),
    ];
    let first: Vec<_> = export().collect().await;
    assert_eq!(first, expected);
    let second: Vec<_> = export().collect().await;
    assert_eq!(second, expected);
    assert_eq!(
        STREAM_CALLS.load(Ordering::SeqCst),
        3,
        "the second pass is replayed"
    );
}

static PULLED: AtomicUsize = AtomicUsize::new(0);

// A source that goes on after its error: the cached pass ends at the error all the same.
#[cashews::iterator(ttl = "1m", key = "rows", condition = with_errors, cache = STREAMS.cache)]
fn rows() -> impl futures_core::Stream<Item = Result<String, LookupError>> {
    use futures_util::StreamExt;
    let items = vec![
        Ok("a".to_owned()),
        Ok("b".to_owned()),
        Err(LookupError::Timeout),
        Ok("c".to_owned()),
    ];
    futures_util::stream::iter(items).inspect(|_| {
        PULLED.fetch_add(1, Ordering::SeqCst);
    })
}

/// A consumer that stops at the first error, as `?` does.
async fn read_rows() -> Result<Vec<String>, LookupError> {
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(rows());
    let mut out = Vec::new();
    while let Some(row) = stream.next().await {
        out.push(row?);
    }
    Ok(out)
}

#[tokio::test]
async fn iterator_with_errors_completes_the_pass_at_the_error_a_consumer_stops_at() {
    use futures_util::StreamExt;
    assert_eq!(read_rows().await, Err(LookupError::Timeout));
    assert_eq!(PULLED.load(Ordering::SeqCst), 3, "a, b and the error");
    assert_eq!(read_rows().await, Err(LookupError::Timeout));
    assert_eq!(
        PULLED.load(Ordering::SeqCst),
        3,
        "the second call replays: the source does not run again"
    );
    let replay: Vec<_> = rows().collect().await;
    assert_eq!(
        replay,
        [
            Ok("a".to_owned()),
            Ok("b".to_owned()),
            Err(LookupError::Timeout)
        ]
    );
    assert_eq!(PULLED.load(Ordering::SeqCst), 3);
}

static FAILOVER: LazyLock<Clocked> = LazyLock::new(clocked);

fn worth_keeping(items: &[u32]) -> bool {
    !items.is_empty()
}

// SPEC §9 #83 (its Rust form): failover keeps as fallback only the values `condition` accepts.
#[cashews::failover(ttl = "1h", key = "items:{page}", condition = worth_keeping, cache = FAILOVER.cache)]
async fn items(page: u32, fail: bool) -> Result<Vec<u32>, String> {
    if fail {
        Err("down".to_owned())
    } else if page == 0 {
        Ok(Vec::new())
    } else {
        Ok(vec![page])
    }
}

#[tokio::test]
async fn failover_condition_chooses_which_values_become_the_fallback() {
    assert_eq!(items(0, false).await, Ok(vec![]));
    assert_eq!(
        items(0, true).await,
        Err("down".to_owned()),
        "an empty list is no fallback"
    );
    assert_eq!(items(1, false).await, Ok(vec![1]));
    assert_eq!(
        items(1, true).await,
        Ok(vec![1]),
        "served from the fallback"
    );
}

// ----- hit(update_before = N) (2.x spelling of update_after = cache_hits - N) -------------

static UPDATE: LazyLock<Clocked> = LazyLock::new(clocked);
static AFTER_RUNS: AtomicUsize = AtomicUsize::new(0);
static BEFORE_RUNS: AtomicUsize = AtomicUsize::new(0);
static FIRST_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::hit(ttl = "1h", cache_hits = 5, update_after = 2, key = "upd:after", cache = UPDATE.cache)]
async fn update_after_two() -> usize {
    AFTER_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[cashews::hit(ttl = "1h", cache_hits = 5, update_before = 3, key = "upd:before", cache = UPDATE.cache)]
async fn update_before_three() -> usize {
    BEFORE_RUNS.fetch_add(1, Ordering::SeqCst)
}

// The whole budget: every hit qualifies, so the first one recomputes.
#[cashews::hit(ttl = "1h", cache_hits = 5, update_before = 5, key = "upd:first", cache = UPDATE.cache)]
async fn update_before_all() -> usize {
    FIRST_RUNS.fetch_add(1, Ordering::SeqCst)
}

/// The value and the origin runs after each of 8 calls.
async fn trace<F: Future<Output = usize>>(
    runs: &AtomicUsize,
    call: impl Fn() -> F,
) -> Vec<(usize, usize)> {
    let mut seen = Vec::new();
    for _ in 0..8 {
        let value = call().await;
        seen.push((value, runs.load(Ordering::SeqCst)));
    }
    seen
}

#[tokio::test]
async fn hit_update_before_refreshes_at_the_same_hit_as_update_after() {
    let after = trace(&AFTER_RUNS, update_after_two).await;
    let before = trace(&BEFORE_RUNS, update_before_three).await;
    // Computed (run 1), hit 1, hit 2 = cache_hits - 3: the stored value, and a recompute
    // (run 2); that store resets the count: hits 1, 2 (run 3) ...
    assert_eq!(
        after,
        [
            (0, 1),
            (0, 1),
            (0, 2),
            (1, 2),
            (1, 3),
            (2, 3),
            (2, 4),
            (3, 4)
        ]
    );
    assert_eq!(before, after, "update_before = 3 is update_after = 5 - 3");
    let first = trace(&FIRST_RUNS, update_before_all).await;
    assert_eq!(
        first,
        [
            (0, 1),
            (0, 2),
            (1, 3),
            (2, 4),
            (3, 5),
            (4, 6),
            (5, 7),
            (6, 8)
        ],
        "update_before = cache_hits recomputes at the first hit"
    );
}
