//! `#[cashews::locked]`: one call at a time per key, across every process sharing the
//! cache: `cargo run --example locked`.
//!
//! Deploying a project twice at once would interleave two rollouts. The lock lives in the
//! cache (`locked:deploy:<project>`), so with a shared backend (Redis) it also holds across
//! servers; its TTL frees it if the holder crashes. Callers wait their turn, or, with
//! `wait = false`, are refused at once.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cashews::strategy::LockedOptions;

static RUNNING: AtomicU32 = AtomicU32::new(0);
static MAX_RUNNING: AtomicU32 = AtomicU32::new(0);
static DEPLOYS: AtomicU32 = AtomicU32::new(0);

/// Callers of one project queue up; different projects deploy in parallel.
#[cashews::locked(ttl = "5m", key = "deploy:{project}")]
async fn deploy(project: &'static str) -> u32 {
    deploy_now(project).await
}

/// The rollout itself; returns the deploy's number.
async fn deploy_now(project: &'static str) -> u32 {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_RUNNING.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await; // the rollout
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    let _ = project;
    DEPLOYS.fetch_add(1, Ordering::SeqCst) + 1
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let cache = cashews::cache();
    cache.setup("mem://")?;

    let deploys: Vec<_> = (0..3).map(|_| tokio::spawn(deploy("shop"))).collect();
    for d in deploys {
        let _ = d.await;
    }
    println!(
        "3 concurrent deploys: {} ran, at most {} at a time",
        DEPLOYS.load(Ordering::SeqCst),
        MAX_RUNNING.load(Ordering::SeqCst)
    );
    assert_eq!(DEPLOYS.load(Ordering::SeqCst), 3);
    assert_eq!(MAX_RUNNING.load(Ordering::SeqCst), 1);

    // Another server starts a deploy of the shop: it holds the lock `deploy` takes
    // (`Cache::lock` is the lock the strategy uses).
    let other_server = cache.lock("locked:deploy:shop", "5m").await?;

    // The attribute expands to `cashews::strategy::locked_always` (wait as long as it
    // takes); with `wait = false` or `wait = "5s"`, to `cashews::strategy::locked`, which
    // refuses with `cashews::Error::Locked`. By hand, on the key `deploy` uses:
    let ttl = cashews::Ttl::parse("5m")?;
    let hotfix: cashews::Result<&str> = cashews::strategy::locked(
        cache,
        "locked:deploy:shop",
        ttl,
        &LockedOptions::new().no_wait(),
        async { Ok("hotfix deployed") },
    )
    .await;
    println!("hotfix while another server deploys, no wait: {hotfix:?}");
    assert!(matches!(hotfix, Err(cashews::Error::Locked { .. })));

    // `locked_always` (what `deploy` runs) waits for the release instead.
    let queued = tokio::spawn(cashews::strategy::locked_always(
        cache,
        "locked:deploy:shop",
        ttl,
        deploy_now("shop"),
    ));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(DEPLOYS.load(Ordering::SeqCst), 3); // still waiting
    other_server.release().await?;
    let deploy_number = queued.await.unwrap_or(0);
    println!("queued deploy, after the release: deploy #{deploy_number}");
    assert_eq!(deploy_number, 4);
    assert!(!cache.is_locked("locked:deploy:shop").await?);
    Ok(())
}
