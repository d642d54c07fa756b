//! Middlewares and observers on a `Cache` route: what reaches the backend, short circuits,
//! order, the built-ins, callbacks on both the local and the chained path, and strategies on a
//! route with a middleware.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cashews::backend::SetOptions;
use cashews::config::CacheConfig;
use cashews::middleware::{self, Event, Layered, Next, Reply, Request, Stage};
use cashews::{Backend, Bytes, Cache, Command, Error, MemoryBackend};
use futures_util::TryStreamExt;

/// A cache over a shared memory backend, with `stages`: the backend is returned to look at
/// what was stored, keys as the backend holds them.
fn cache_with(stages: Vec<Stage>) -> (Cache, MemoryBackend) {
    let backend = MemoryBackend::new(Default::default());
    let cache = Cache::new();
    cache
        .setup_backend_with("", backend.clone(), CacheConfig::default(), stages)
        .unwrap();
    (cache, backend)
}

/// A middleware recording each request's command and key, passing it on.
fn recorder(log: &Arc<Mutex<Vec<(Command, Option<String>)>>>) -> Stage {
    let log = Arc::clone(log);
    middleware::from_fn(move |request: Request, next: Next| {
        let entry = (request.command(), request.key().map(str::to_owned));
        log.lock().unwrap().push(entry);
        next.run(request)
    })
}

/// Every event an observer gets, owned.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    command: Command,
    key: Option<String>,
    outcome: String,
    local: bool,
}

fn watcher(log: &Arc<Mutex<Vec<Seen>>>) -> Stage {
    let log = Arc::clone(log);
    middleware::observe(move |event: &Event<'_>| {
        log.lock().unwrap().push(Seen {
            command: event.command,
            key: event.key.map(str::to_owned),
            outcome: format!("{:?}", event.outcome),
            local: event.local,
        });
    })
}

async fn stored_keys(backend: &MemoryBackend) -> Vec<String> {
    let mut keys: Vec<String> = backend.scan("*", 100).try_collect().await.unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn add_prefix_reaches_the_backend_on_every_keyed_command() {
    let (cache, backend) = cache_with(vec![middleware::add_prefix("prefix!")]);
    cache.set("key", "value", "1h").await.unwrap();
    assert_eq!(
        cache.get::<String>("key").await.unwrap().as_deref(),
        Some("value")
    );
    assert!(backend.exists("prefix!key").await.unwrap());
    assert!(!backend.exists("key").await.unwrap());

    cache.set_many(&[("a", &1), ("b", &2)], "1h").await.unwrap();
    assert_eq!(
        cache.get_many::<i32>(&["a", "b", "c"]).await.unwrap(),
        vec![Some(1), Some(2), None]
    );
    assert_eq!(
        stored_keys(&backend).await,
        ["prefix!a", "prefix!b", "prefix!key"]
    );

    // Scans find the keys without the prefix, so get_match reads them back.
    let mut matched: Vec<(String, i32)> =
        cache.get_match::<i32>("[ab]").try_collect().await.unwrap();
    matched.sort();
    assert_eq!(matched, [("a".to_owned(), 1), ("b".to_owned(), 2)]);

    assert!(cache.delete("key").await.unwrap());
    cache.delete_many(&["a"]).await.unwrap();
    assert_eq!(stored_keys(&backend).await, ["prefix!b"]);
    cache.delete_match("b*").await.unwrap();
    assert!(stored_keys(&backend).await.is_empty());

    // ping is not keyed: unchanged.
    assert_eq!(cache.ping().await.unwrap(), Bytes::from_static(b"PONG"));
}

#[tokio::test]
async fn add_prefix_clear_and_count_keep_to_the_prefix() {
    let (cache, backend) = cache_with(vec![middleware::add_prefix("mine!")]);
    // A key of someone else sharing the backend.
    backend
        .set("theirs", Bytes::from_static(b"x"), SetOptions::default())
        .await
        .unwrap();
    cache.set("k1", &1, "1h").await.unwrap();
    cache.set("k2", &2, "1h").await.unwrap();
    assert_eq!(cache.get_keys_count().await.unwrap(), 2);
    cache.clear().await.unwrap();
    assert_eq!(cache.get_keys_count().await.unwrap(), 0);
    assert_eq!(stored_keys(&backend).await, ["theirs"]);
}

#[tokio::test]
async fn add_prefix_escapes_glob_characters_of_the_prefix() {
    let (cache, backend) = cache_with(vec![middleware::add_prefix("a*")]);
    backend
        .set("ab:other", Bytes::from_static(b"x"), SetOptions::default())
        .await
        .unwrap();
    cache.set("k", &1, "1h").await.unwrap();
    let keys: Vec<String> = cache.scan("*").try_collect().await.unwrap();
    assert_eq!(keys, ["k"]);
    cache.delete_match("*").await.unwrap();
    assert_eq!(stored_keys(&backend).await, ["ab:other"]);
}

#[tokio::test]
async fn all_keys_lower_makes_keys_case_insensitive() {
    let (cache, backend) = cache_with(vec![middleware::all_keys_lower()]);
    cache.set("User:ADA", "x", "1h").await.unwrap();
    assert!(cache.exists("user:ada").await.unwrap());
    assert_eq!(stored_keys(&backend).await, ["user:ada"]);
}

#[tokio::test]
async fn size_limit_stores_sizes_within_the_bounds_inclusive() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (cache, backend) = cache_with(vec![middleware::size_limit(3..=5), recorder(&log)]);
    for (key, len) in [("s2", 2), ("s3", 3), ("s5", 5), ("s6", 6)] {
        let stored = cache
            .set_raw(key, Bytes::from(vec![b'x'; len]), "1h")
            .await
            .unwrap();
        assert_eq!(stored, (3..=5).contains(&len), "{key}");
    }
    assert_eq!(stored_keys(&backend).await, ["s3", "s5"]);
    // Only the admitted sets went on down the chain.
    assert_eq!(log.lock().unwrap().len(), 2);

    // set_many keeps the pairs within bounds (encoded sizes: a short string is well under
    // 32 bytes, a 100-character one over); with none left, it does not run.
    let log = Arc::new(Mutex::new(Vec::new()));
    let (cache, backend) = cache_with(vec![middleware::size_limit(..=32), recorder(&log)]);
    let long = "x".repeat(100);
    cache
        .set_many(&[("m1", &"a"), ("m2", &long.as_str())], "1h")
        .await
        .unwrap();
    assert_eq!(stored_keys(&backend).await, ["m1"]);
    cache
        .set_many(&[("m3", &long.as_str())], "1h")
        .await
        .unwrap();
    assert_eq!(stored_keys(&backend).await, ["m1"]);
    assert_eq!(log.lock().unwrap().len(), 1, "only the first set_many ran");
}

#[tokio::test]
async fn every_command_passes_through_a_middleware() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (cache, _backend) = cache_with(vec![recorder(&log)]);
    let guard = cache.lock("job", "1m").await.unwrap();
    cache.ping().await.unwrap();
    drop(guard.release().await);
    cache.incr("n").await.unwrap();
    let commands: Vec<Command> = log.lock().unwrap().iter().map(|(c, _)| *c).collect();
    assert_eq!(
        commands,
        [
            Command::SetLock,
            Command::Ping,
            Command::Unlock,
            Command::Incr
        ]
    );
}

#[tokio::test]
async fn stages_run_in_order_the_first_outermost() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let stage = |name: &'static str| {
        let order = Arc::clone(&order);
        middleware::from_fn(move |request: Request, next: Next| {
            let order = Arc::clone(&order);
            async move {
                order.lock().unwrap().push(format!("{name} in"));
                let reply = next.run(request).await;
                order.lock().unwrap().push(format!("{name} out"));
                reply
            }
        })
    };
    let (cache, _backend) = cache_with(vec![stage("a"), stage("b")]);
    cache.get::<i32>("k").await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["a in", "b in", "b out", "a out"]);
}

#[tokio::test]
async fn a_middleware_may_answer_without_the_backend() {
    let (cache, backend) = cache_with(vec![middleware::from_fn(
        |request: Request, next: Next| async move {
            match request {
                Request::Get { key } if key == "virtual" => {
                    Ok(Reply::Value(Some(Bytes::from_static(b"raw"))))
                }
                Request::Set { .. } => Ok(Reply::Flag(false)),
                other => next.run(other).await,
            }
        },
    )]);
    assert_eq!(
        cache.get_raw("virtual").await.unwrap().as_deref(),
        Some(&b"raw"[..])
    );
    assert!(!cache.set("k", &1, "1h").await.unwrap());
    assert!(stored_keys(&backend).await.is_empty());
}

#[tokio::test]
async fn a_wrong_reply_is_a_clear_error_that_safe_mode_does_not_hide() {
    let stage = middleware::from_fn(|_request: Request, _next: Next| async { Ok(Reply::Done) });
    let backend = MemoryBackend::new(Default::default());
    let cache = Cache::new();
    let config: CacheConfig = "mem://?suppress=true".parse().unwrap();
    cache
        .setup_backend_with("", backend, config, [stage])
        .unwrap();
    let error = cache.get::<i32>("k").await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Middleware {
                command: Command::Get,
                ..
            }
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("Reply::Done") && message.contains("Reply docs"),
        "{message}"
    );
}

#[tokio::test]
async fn a_get_many_reply_of_the_wrong_length_is_refused() {
    let stage = middleware::from_fn(|request: Request, next: Next| async move {
        match request {
            Request::GetMany { .. } => Ok(Reply::Values(vec![None])),
            other => next.run(other).await,
        }
    });
    let (cache, _backend) = cache_with(vec![stage]);
    let error = cache.get_many::<i32>(&["a", "b"]).await.unwrap_err();
    assert!(
        error.to_string().contains("1 values answered for 2 keys"),
        "{error}"
    );
}

#[tokio::test]
async fn callbacks_see_set_but_not_get_python_scenario() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let cache = Cache::new();
    cache
        .setup_with(
            "mem://",
            [middleware::on(Command::Set, move |event| {
                seen.lock()
                    .unwrap()
                    .push((event.key.map(str::to_owned), format!("{:?}", event.outcome)));
            })],
        )
        .unwrap();
    cache.set("test", "value", "1m").await.unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        [(Some("test".to_owned()), "Done".to_owned())]
    );
    cache.get::<String>("test").await.unwrap();
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn observers_keep_the_local_path_and_are_told_of_its_answers() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let cache = Cache::new();
    cache.setup_with("mem://", [watcher(&log)]).unwrap();
    cache.set("a", &1, "1m").await.unwrap();
    assert_eq!(cache.get::<i32>("a").await.unwrap(), Some(1));
    assert_eq!(cache.get::<i32>("b").await.unwrap(), None);
    let shared: Option<Arc<i32>> = cache.get_shared("a").await.unwrap();
    assert_eq!(shared.as_deref(), Some(&1));
    assert_eq!(
        cache.get_many::<i32>(&["a", "b"]).await.unwrap(),
        [Some(1), None]
    );
    let seen = log.lock().unwrap().clone();
    let local = |command, key: Option<&str>, outcome: &str| Seen {
        command,
        key: key.map(str::to_owned),
        outcome: outcome.to_owned(),
        local: true,
    };
    assert_eq!(
        seen,
        [
            local(Command::Set, Some("a"), "Done"),
            local(Command::Get, Some("a"), "Hit"),
            local(Command::Get, Some("b"), "Miss"),
            local(Command::Get, Some("a"), "Hit"),
            local(Command::GetMany, None, "Found { hits: 1, misses: 1 }"),
        ]
    );
}

#[tokio::test]
async fn observers_behind_a_middleware_see_the_chained_path() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (cache, _backend) = cache_with(vec![middleware::add_prefix("p:"), watcher(&log)]);
    cache.set("a", &1, "1m").await.unwrap();
    cache.get::<i32>("a").await.unwrap();
    cache.exists("zz").await.unwrap();
    let seen = log.lock().unwrap().clone();
    let chained = |command, key: &str, outcome: &str| Seen {
        command,
        key: Some(key.to_owned()),
        outcome: outcome.to_owned(),
        local: false,
    };
    // The observer is inside add_prefix: it sees the keys as the backend does.
    assert_eq!(
        seen,
        [
            chained(Command::Set, "p:a", "Done"),
            chained(Command::Get, "p:a", "Hit"),
            chained(Command::Exists, "p:zz", "Miss"),
        ]
    );
}

/// An observer logging `tag command key outcome` for each event.
fn tagged(log: &Arc<Mutex<Vec<String>>>, tag: &'static str) -> Stage {
    let log = Arc::clone(log);
    middleware::observe(move |event: &Event<'_>| {
        let line = format!(
            "{tag} {:?} {:?} {:?}",
            event.command, event.key, event.outcome
        );
        log.lock().unwrap().push(line);
    })
}

#[tokio::test]
async fn chained_observers_see_their_own_keys_innermost_first() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (cache, backend) = cache_with(vec![
        tagged(&log, "outer"),
        middleware::add_prefix("p:"),
        tagged(&log, "inner"),
        tagged(&log, "innermost"),
    ]);
    cache.set("a", &1, "1m").await.unwrap();
    assert_eq!(cache.get::<i32>("a").await.unwrap(), Some(1));
    assert_eq!(stored_keys(&backend).await, ["p:a"]);
    // The observers after the middleware see the prefixed key; the one before it, the
    // caller's. Inner stages finish first.
    assert_eq!(
        *log.lock().unwrap(),
        [
            r#"innermost Set Some("p:a") Done"#,
            r#"inner Set Some("p:a") Done"#,
            r#"outer Set Some("a") Done"#,
            r#"innermost Get Some("p:a") Hit"#,
            r#"inner Get Some("p:a") Hit"#,
            r#"outer Get Some("a") Hit"#,
        ]
    );
}

#[tokio::test]
async fn a_chain_of_observers_passes_requests_unchanged() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mem = MemoryBackend::new(Default::default());
    // A `Layered` declares no local tier: every command goes down the chain.
    let layered = Layered::new(mem.clone(), [tagged(&log, "a"), tagged(&log, "b")]);
    let value = Bytes::from_static(b"v");
    assert!(
        layered
            .set("k", value, SetOptions::default())
            .await
            .unwrap()
    );
    assert_eq!(mem.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(layered.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(layered.get_many(&["k", "x"]).await.unwrap().len(), 2);
    assert!(!layered.exists("x").await.unwrap());
    assert_eq!(
        *log.lock().unwrap(),
        [
            r#"b Set Some("k") Done"#,
            r#"a Set Some("k") Done"#,
            r#"b Get Some("k") Hit"#,
            r#"a Get Some("k") Hit"#,
            "b GetMany None Found { hits: 1, misses: 1 }",
            "a GetMany None Found { hits: 1, misses: 1 }",
            r#"b Exists Some("x") Miss"#,
            r#"a Exists Some("x") Miss"#,
        ]
    );
}

#[tokio::test]
async fn failures_reach_observers_before_safe_mode_answers() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let failing = middleware::from_fn(|request: Request, _next: Next| async move {
        Err(Error::Backend {
            backend: "mem",
            command: request.command(),
            source: "injected".into(),
        })
    });
    let backend = MemoryBackend::new(Default::default());
    let cache = Cache::new();
    let config: CacheConfig = "mem://?suppress=true".parse().unwrap();
    cache
        .setup_backend_with("", backend, config, [watcher(&log), failing])
        .unwrap();
    // Safe mode answers neutrally, and the observer was told of the failure.
    assert_eq!(cache.get::<i32>("k").await.unwrap(), None);
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].outcome.starts_with("Failed"), "{:?}", seen[0]);
}

#[tokio::test]
async fn untimed_observers_read_no_clock() {
    struct Untimed(Arc<Mutex<Vec<Duration>>>);
    impl middleware::Observer for Untimed {
        fn observe(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(event.elapsed);
        }
        fn timed(&self) -> bool {
            false
        }
    }
    let elapsed = Arc::new(Mutex::new(Vec::new()));
    let cache = Cache::new();
    cache
        .setup_with("mem://", [Stage::observe(Untimed(Arc::clone(&elapsed)))])
        .unwrap();
    cache.set("k", &1, "1m").await.unwrap();
    cache.get::<i32>("k").await.unwrap();
    assert_eq!(*elapsed.lock().unwrap(), [Duration::ZERO, Duration::ZERO]);
}

#[tokio::test]
async fn disabled_commands_reach_no_stage() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (cache, _backend) = cache_with(vec![watcher(&seen), recorder(&log)]);
    cache.disable(&[Command::Get]);
    cache.get::<i32>("k").await.unwrap();
    assert!(log.lock().unwrap().is_empty());
    assert!(seen.lock().unwrap().is_empty());
}

#[cfg(feature = "macros")]
mod strategies {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static CACHE: std::sync::LazyLock<(Cache, MemoryBackend)> =
        std::sync::LazyLock::new(|| cache_with(vec![middleware::add_prefix("svc!")]));

    #[cashews::cache(ttl = "1h", key = "square:{n}", cache = &CACHE.0)]
    async fn square(n: u64) -> u64 {
        CALLS.fetch_add(1, Ordering::SeqCst);
        n * n
    }

    #[tokio::test]
    async fn a_cached_function_on_a_prefixed_route_hits_and_stores_prefixed() {
        assert_eq!(square(3).await, 9);
        assert_eq!(square(3).await, 9);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert!(CACHE.1.exists("svc!square:3").await.unwrap());
    }
}

#[cfg(feature = "redis")]
mod redis {
    use cashews::backend::RedisBackend;
    use cashews::config::RedisOptions;

    use super::*;
    use crate::support::{redis_url, unique_prefix};

    /// On Redis, `add_prefix` composes with the cache's own behaviour: round trips, scans,
    /// tags, and the lock-release feed (its keys come back without the prefix).
    #[tokio::test]
    async fn add_prefix_on_redis() {
        let backend = match RedisBackend::new(RedisOptions::new(redis_url())) {
            Ok(backend) => backend,
            Err(e) => {
                let _: Option<()> =
                    cashews_testkit::skip_unless_ci("add_prefix_on_redis", &e.to_string());
                return;
            }
        };
        if let Err(e) = backend.ping(b"").await {
            let _: Option<()> =
                cashews_testkit::skip_unless_ci("add_prefix_on_redis", &e.to_string());
            return;
        }
        let prefix = unique_prefix("mw");
        let cache = Cache::new();
        cache
            .setup_backend_with(
                "",
                backend.clone(),
                CacheConfig::default(),
                [middleware::add_prefix(prefix.clone())],
            )
            .unwrap();
        cache
            .set_tagged("user:1", &"ada", "1m", &["users"])
            .await
            .unwrap();
        cache.set("user:2", &"bob", "1m").await.unwrap();
        assert!(backend.exists(&format!("{prefix}user:1")).await.unwrap());
        let mut keys: Vec<String> = cache.scan("user:*").try_collect().await.unwrap();
        keys.sort();
        assert_eq!(keys, ["user:1", "user:2"]);
        cache.delete_tags(&["users"]).await.unwrap();
        assert!(!cache.exists("user:1").await.unwrap());
        assert!(cache.exists("user:2").await.unwrap());

        // A waiter hears the release of a lock taken on the prefixed route.
        let guard = cache.lock("job", "1m").await.unwrap();
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.lock_wait("job", "1m", Duration::from_secs(30)).await })
        };
        guard.release().await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        second.release().await.unwrap();
        cache.delete_match("*").await.unwrap();
        assert!(!backend.exists(&format!("{prefix}user:2")).await.unwrap());
    }
}
