//! The shared conformance suite (`cashews-testkit`) on the Redis backend, against the server at
//! `CASHEWS_REDIS_URL` (default `redis://127.0.0.1:6379/0`).
//!
//! Isolation without flushing the shared server: every case gets a fresh backend (each case runs
//! on its own Tokio runtime, which owns the connections) and touches only the keys of its
//! harness's namespace. The exclusive cases (`clear`, `keys_count`) get a backend scoped to a
//! `key_prefix` unique to the case, so `clear` unlinks only that prefix's keys (SCAN + UNLINK)
//! and `keys_count` counts only them: the database, shared with other tests, is never flushed.
//!
//! When Redis does not answer, each case prints why and is skipped; with `CI=true` it fails.

use cashews::backend::RedisBackend;
use cashews::config::RedisOptions;
use cashews::{Backend, Bytes};
use cashews_testkit::{Harness, Setup, Time, skip_unless_ci};

use crate::support::{redis_url as url, salt};

async fn redis(setup: Setup) -> Option<Harness<RedisBackend>> {
    let mut options = RedisOptions::new(url());
    if setup.exclusive() {
        let salt: u64 = salt();
        options =
            options.with_key_prefix(format!("cashews-ct:{}-{salt:016x}:", std::process::id()));
    }
    let backend = match RedisBackend::new(options) {
        Ok(backend) => backend,
        Err(e) => return skip_unless_ci(setup.case(), &format!("bad CASHEWS_REDIS_URL: {e}")),
    };
    match backend.ping(b"").await {
        Ok(pong) if pong == Bytes::from_static(b"PONG") => {}
        other => {
            return skip_unless_ci(
                setup.case(),
                &format!("Redis does not answer at {}: {other:?}", url()),
            );
        }
    }
    Some(Harness::new(backend, Time::Real))
}

cashews_testkit::conformance_suite!(redis);

/// Behind a middleware chain: `add_prefix` with a prefix unique to the case isolates every
/// case, the exclusive ones too (`clear` deletes only the prefix's keys, `keys_count` counts
/// only them), and an observer and a pass-through middleware see every command.
mod layered {
    use cashews::backend::RedisBackend;
    use cashews::config::RedisOptions;
    use cashews::middleware::{self, Layered, Next, Request};
    use cashews_testkit::{Harness, Setup, Time, skip_unless_ci};

    use super::{salt, url};

    async fn redis(setup: Setup) -> Option<Harness<Layered>> {
        let backend = match RedisBackend::new(RedisOptions::new(url())) {
            Ok(backend) => backend,
            Err(e) => return skip_unless_ci(setup.case(), &format!("bad CASHEWS_REDIS_URL: {e}")),
        };
        let prefix = format!("cashews-layered:{}-{:016x}:", std::process::id(), salt());
        let stages = [
            middleware::observe(|_| {}),
            middleware::add_prefix(prefix),
            middleware::from_fn(|request: Request, next: Next| next.run(request)),
        ];
        let layered = Layered::new(backend, stages);
        if let Err(e) = cashews::Backend::ping(&layered, b"").await {
            return skip_unless_ci(
                setup.case(),
                &format!("Redis does not answer at {}: {e}", url()),
            );
        }
        Some(Harness::new(layered, Time::Real))
    }

    cashews_testkit::conformance_suite!(redis);
}

/// Inside one open, never committed transaction (fast mode): every write of a case stays
/// pending and every read is the transaction's merged view over Redis.
mod transactional {
    use cashews::Clock;
    use cashews::backend::{TransactionMode, TransactionOptions, Transactional};
    use cashews_testkit::{Harness, Setup, Time};

    async fn redis(setup: Setup) -> Option<Harness<Transactional>> {
        let harness = super::redis(setup).await?;
        let options = TransactionOptions::new(TransactionMode::Fast);
        let tx = Transactional::new(harness.backend().clone(), Clock::system(), options);
        Some(Harness::new(tx, Time::Real))
    }

    cashews_testkit::conformance_suite!(redis);
}

/// `Cache::setup("redis://…")`: URL options, typed round trips, safe mode.
mod setup {
    use std::time::{Duration, Instant};

    use cashews::{Cache, Error};

    use super::url;

    fn key(name: &str) -> String {
        format!(
            "cashews-it:{}-{:016x}:{name}",
            std::process::id(),
            super::salt()
        )
    }

    #[tokio::test]
    async fn setup_by_url_round_trips_values() -> cashews::Result<()> {
        let cache = Cache::new();
        cache.setup(&format!(
            "{}?command_timeout=2s&max_connections=2&minsize=1",
            url()
        ))?;
        if let Err(e) = cache.ping().await {
            return cashews_testkit::skip_unless_ci("setup_by_url", &e.to_string())
                .unwrap_or(Ok(()));
        }
        let (text, number, negative) = (key("text"), key("n"), key("neg"));
        assert!(cache.set(&text, "héllo", 60).await?);
        assert_eq!(cache.get::<String>(&text).await?.as_deref(), Some("héllo"));
        cache.set(&negative, &-5_i64, 60).await?;
        assert_eq!(
            cache.get::<i64>(&negative).await?,
            Some(-5),
            "negative integers round-trip"
        );
        assert_eq!(cache.incr_by(&number, -3, 60).await?, -3);
        assert_eq!(cache.get::<i64>(&number).await?, Some(-3));
        let got: Vec<Option<String>> = cache.get_many(&[&text, &key("missing")]).await?;
        assert_eq!(got, vec![Some("héllo".to_owned()), None]);
        cache.delete_many(&[&text, &number, &negative]).await?;
        cache.close().await
    }

    #[test]
    fn unknown_option_names_it_and_the_accepted_ones() {
        let e = Cache::new()
            .setup("redis://localhost/0?timeout=1")
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::UnknownOption { .. }), "{e:?}");
        assert!(
            msg.contains("`timeout`") && msg.contains("command_timeout"),
            "{msg}"
        );
        let e = Cache::new()
            .setup("redis://:pw@localhost/0?max_connections=0")
            .unwrap_err();
        assert!(
            e.to_string().contains("max_connections") && !e.to_string().contains("pw"),
            "{e}"
        );
    }

    /// SPEC §1.7: with Redis down and `suppress` on (the default for Redis), commands answer
    /// their neutral replies within the connect timeout, and only `ping` reports the failure.
    #[tokio::test]
    async fn safe_mode_when_redis_is_down() -> cashews::Result<()> {
        let cache = Cache::new();
        // Port 1 on localhost: nothing listens there, so the connection is refused at once.
        cache.setup("redis://127.0.0.1:1/0?connect_timeout=200ms&command_timeout=200ms")?;
        let started = Instant::now();
        assert!(!cache.set("k", "v", 60).await?);
        assert_eq!(cache.get::<String>("k").await?, None);
        assert!(!cache.exists("k").await?);
        assert!(!cache.delete("k").await?);
        assert!(cache.ping().await.is_err(), "ping always reports");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        let strict = Cache::new();
        strict.setup("redis://127.0.0.1:1/0?connect_timeout=200ms&suppress=false")?;
        assert!(matches!(
            strict.get::<String>("k").await,
            Err(Error::Backend { .. })
        ));
        Ok(())
    }
}
