//! Values larger than Redis accepts (`proto-max-bulk-len`): Redis drops the connection on one,
//! failing every command in flight on that multiplexed connection, so the backend refuses it
//! before sending, and it fails alone with `Error::ValueTooLarge`. Each test spawns its own
//! `redis-server` (killed at the end).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cashews::Bytes;
use cashews::backend::{Backend, RedisBackend, SetOptions};
use cashews::config::{BackendConfig, CacheConfig, RedisOptions};
use cashews::{Cache, Error};

use crate::support::SpawnedRedis;

/// Small commands running alongside the oversized one.
const TASKS: usize = 32;
/// Set-then-get rounds each of them makes.
const ROUNDS: u64 = 20;

/// The hang guard of every test: far above a normal run.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn spawn(case: &str, extra: &[&str]) -> Option<SpawnedRedis> {
    let port = SpawnedRedis::free_port();
    let mut args = vec!["--port".to_owned(), port.to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    match SpawnedRedis::start(port, args) {
        Ok(redis) => Some(redis),
        Err(e) => cashews_testkit::skip_unless_ci(case, &e),
    }
}

fn redis_options(url: &str) -> RedisOptions {
    match CacheConfig::parse(url).unwrap().backend {
        BackendConfig::Redis(options) => options,
        other => panic!("{url}: {other:?}"),
    }
}

/// `oversized` set on `backend` (one multiplexed connection) while 32 tasks run small sets and
/// gets on it, all released together: the oversized one fails with `ValueTooLarge`, and every
/// small command succeeds (counted).
async fn one_oversized_among_small(backend: RedisBackend, oversized: Bytes) -> Error {
    // Open the connection first, so every command below shares it.
    assert!(
        backend
            .set("warm", Bytes::from_static(b"w"), SetOptions::default())
            .await
            .unwrap()
    );
    let start = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
    let ok = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (backend, start, ok) = (backend.clone(), Arc::clone(&start), Arc::clone(&ok));
            tokio::spawn(async move {
                start.wait().await;
                for round in 0..ROUNDS {
                    let key = format!("small:{t}:{round}");
                    let value = Bytes::from(format!("v{t}/{round}"));
                    match backend
                        .set(&key, value.clone(), SetOptions::default())
                        .await
                    {
                        Ok(true) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        other => eprintln!("set {key}: {other:?}"),
                    }
                    match backend.get(&key).await {
                        Ok(Some(read)) if read == value => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        other => eprintln!("get {key}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    start.wait().await;
    let refused = backend
        .set("big", oversized, SetOptions::default())
        .await
        .unwrap_err();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        ok.load(Ordering::SeqCst),
        TASKS as u64 * ROUNDS * 2,
        "every small command succeeded beside the oversized one"
    );
    refused
}

/// A server whose `proto-max-bulk-len` is 1 MB, and `max_value_size=1MiB` on the URL: a
/// 2 MiB value fails alone with an error naming the limit and the option, and the Cache
/// refuses an oversized set member the same way (its own value check does not see members).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_value_fails_alone_under_load() {
    let Some(server) = spawn("oversized_value", &["--proto-max-bulk-len", "1mb"]) else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let url = format!("redis://127.0.0.1:{}/0?max_value_size=1MiB", server.port);
        let options = redis_options(&url);
        assert_eq!(options.max_value_size, 1 << 20);
        let backend = RedisBackend::new(options).unwrap();
        let refused =
            one_oversized_among_small(backend.clone(), Bytes::from(vec![7; 2 << 20])).await;
        assert!(
            matches!(refused, Error::ValueTooLarge { size, limit, .. } if size == 2 << 20 && limit == 1 << 20),
            "{refused:?}"
        );
        let message = refused.to_string();
        assert!(
            message.contains("`big`") && message.contains("max_value_size"),
            "{message}"
        );
        // At the limit it is sent (and Redis takes it).
        let at_limit = Bytes::from(vec![7; 1 << 20]);
        assert!(
            backend
                .set("at-limit", at_limit, SetOptions::default())
                .await
                .unwrap()
        );

        let cache = Cache::new();
        cache.setup(&url).unwrap();
        let member = "m".repeat(2 << 20);
        let refused = cache.set_add("set", &[&member], "1m").await.unwrap_err();
        assert!(matches!(refused, Error::ValueTooLarge { .. }), "{refused:?}");
        assert_eq!(cache.set_add("set", &["small"], "1m").await.unwrap(), 1);
        cache.close().await.unwrap();
    })
    .await
    .expect("hang guard: the test hung");
}

/// Without any option the limit is Redis' own default (512 MiB): one byte more fails alone,
/// before a byte is sent (the value is zeroed memory the check never touches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limit_is_redis_own() {
    let Some(server) = spawn("default_value_limit", &[]) else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let url = format!("redis://127.0.0.1:{}/0", server.port);
        let options = redis_options(&url);
        assert_eq!(options.max_value_size, 512 << 20);
        assert_eq!(
            RedisOptions::new(url.clone()).max_value_size,
            options.max_value_size
        );
        let backend = RedisBackend::new(options).unwrap();
        let refused =
            one_oversized_among_small(backend, Bytes::from(vec![0; (512 << 20) + 1])).await;
        assert!(
            matches!(refused, Error::ValueTooLarge { limit, .. } if limit == 512 << 20),
            "{refused:?}"
        );
    })
    .await
    .expect("hang guard: the test hung");
}
