//! The shared conformance suite (`cashews-testkit`) on Redis behind the client-side tier
//! (`client_side=true`), against the server at `CASHEWS_REDIS_URL` (default
//! `redis://127.0.0.1:6379/0`).
//!
//! Same isolation as `conformance_redis.rs`: a fresh backend per case, keys under the harness's
//! namespace, and for the exclusive cases (`clear`, `keys_count`) a `key_prefix` unique to the
//! case, which is then also the tracking `PREFIX`. Each case waits for the tracking link before
//! it starts, so the cases run against the local tier, not around it.
//!
//! When Redis does not answer, each case prints why and is skipped; with `CI=true` it fails.

use cashews::backend::ClientSideRedis;
use cashews::config::RedisOptions;
use cashews::{Backend, Bytes};
use cashews_testkit::{Harness, Setup, Time, skip_unless_ci};

use crate::support::{redis_url as url, salt};

async fn client_side(setup: Setup) -> Option<Harness<ClientSideRedis>> {
    let mut options = RedisOptions::new(url());
    if setup.exclusive() {
        options = options.with_key_prefix(format!(
            "cashews-cs:{}-{:016x}:",
            std::process::id(),
            salt()
        ));
    }
    let backend = match ClientSideRedis::new(options) {
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
    if let Err(e) = backend.connect().await {
        return skip_unless_ci(setup.case(), &format!("no tracking link: {e}"));
    }
    Some(Harness::new(backend, Time::Real))
}

cashews_testkit::conformance_suite!(client_side);

/// Inside one open, never committed transaction (fast mode) over the client-side backend.
mod transactional {
    use cashews::Clock;
    use cashews::backend::{TransactionMode, TransactionOptions, Transactional};
    use cashews_testkit::{Harness, Setup, Time};

    async fn client_side(setup: Setup) -> Option<Harness<Transactional>> {
        let harness = super::client_side(setup).await?;
        let options = TransactionOptions::new(TransactionMode::Fast);
        let tx = Transactional::new(harness.backend().clone(), Clock::system(), options);
        Some(Harness::new(tx, Time::Real))
    }

    cashews_testkit::conformance_suite!(client_side);
}
