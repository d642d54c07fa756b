//! The task context inherited at spawn (SPEC §0.2): `cashews::spawn`, `cashews::context`.

use std::time::Duration;

use cashews::context::Context;
use cashews::key::context::{get, with_key_context};
use cashews::strategy::{self, CacheOptions, Plain};
use cashews::{Command, Ttl, detect};
use tokio::sync::oneshot;

use crate::support::manual_cache;

#[tokio::test]
async fn a_spawned_task_records_its_hits_into_the_parents_scope() {
    let (cache, _clock) = manual_cache();
    cache.set("k", &1_u32, "1h").await.unwrap();
    let hit_in = |cache: cashews::Cache| async move {
        let ttl = Ttl::parse("1h").unwrap();
        strategy::cache(
            &cache,
            "k",
            ttl,
            &CacheOptions::new(),
            Plain::<u32>::new(),
            async { 0 },
        )
        .await
    };
    // `spawn` copies the context when it is called: inside the scope.
    let (_, inherited) = detect(async { cashews::spawn(hit_in(cache.clone())).await }).await;
    assert_eq!(inherited.keys(), ["k"]);
    let (_, plain) = detect(async { tokio::spawn(hit_in(cache.clone())).await }).await;
    assert!(plain.is_empty(), "plain tokio::spawn inherits nothing");

    // Nested scopes: the child's hit reaches every scope open at spawn.
    let (inner, outer) = detect(async {
        let child = || cashews::spawn(hit_in(cache.clone()));
        detect(async { child().await }).await.1
    })
    .await;
    assert_eq!((inner.served().len(), outer.served().len()), (1, 1));
}

#[tokio::test]
async fn the_key_context_is_copied_at_spawn() {
    let (go, wait) = oneshot::channel::<()>();
    let seen = with_key_context([("tenant", "acme")], async {
        let child = cashews::spawn(async move {
            wait.await.unwrap();
            get("tenant")
        });
        // A scope the parent enters after the spawn is not seen by the child.
        with_key_context([("tenant", "other")], async move {
            go.send(()).unwrap();
            child.await.unwrap()
        })
        .await
    })
    .await;
    assert_eq!(seen.as_deref(), Some("acme"));
    assert_eq!(cashews::spawn(async { get("tenant") }).await.unwrap(), None);
}

#[tokio::test]
async fn disabled_commands_are_inherited_and_outlive_the_parents_scope() {
    let (cache, _clock) = manual_cache();
    cache.set("k", "v", "1h").await.unwrap();
    let (go, wait) = oneshot::channel::<()>();
    let mut child = None;
    cache
        .disabling(&[Command::Get], async {
            let cache = cache.clone();
            child = Some(cashews::spawn(async move {
                wait.await.unwrap();
                cache.get::<String>("k").await.unwrap()
            }));
        })
        .await;
    let child = child.unwrap();
    // The parent left its scope before the child reads.
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    go.send(()).unwrap();
    assert_eq!(child.await.unwrap(), None, "still disabled in the child");
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn a_child_disabling_commands_does_not_affect_its_parent() {
    // SPEC §6.5: set, disable SET, set again in a child; the parent still writes.
    let (cache, _clock) = manual_cache();
    let child = cache.clone();
    cashews::spawn(async move {
        child.set("test", "1", "1h").await.unwrap();
        child
            .disabling(&[Command::Set], child.set("test", "2", "1h"))
            .await
            .unwrap();
    })
    .await
    .unwrap();
    assert_eq!(
        cache.get::<String>("test").await.unwrap().as_deref(),
        Some("1")
    );
    cache.set("test", "3", "1h").await.unwrap();
    assert_eq!(
        cache.get::<String>("test").await.unwrap().as_deref(),
        Some("3")
    );
}

#[tokio::test]
async fn invalidate_further_is_inherited() {
    let (cache, _clock) = manual_cache();
    cache.set("k", "v", "1h").await.unwrap();
    let child = cache.clone();
    let seen = cashews::invalidate_further(async {
        cashews::spawn(async move { child.get::<String>("k").await.unwrap() }).await
    })
    .await
    .unwrap();
    assert_eq!(seen, None);
    assert!(
        !cache.exists("k").await.unwrap(),
        "the child's read forgot the key"
    );
}

#[tokio::test]
async fn the_tagging_scope_is_inherited() {
    let (cache, _clock) = manual_cache();
    let child = cache.clone();
    cashews::tagged("user:1", vec!["users".to_owned()], async {
        cashews::spawn(async move { child.set("user:1", "ann", "1h").await.unwrap() }).await
    })
    .await
    .unwrap();
    cache.delete_tags(&["users"]).await.unwrap();
    assert!(!cache.exists("user:1").await.unwrap());
}

#[tokio::test]
async fn a_captured_context_runs_futures_anywhere_and_is_empty_outside_scopes() {
    let (cache, _clock) = manual_cache();
    cache.set("k", &1_u32, "1h").await.unwrap();
    let ((context, _), detected) = detect(with_key_context([("region", "eu")], async {
        (Context::current(), ())
    }))
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let cache = cache.clone();
        tasks.spawn(context.clone().scope(async move {
            let ttl = Ttl::parse("1h").unwrap();
            strategy::cache(
                &cache,
                "k",
                ttl,
                &CacheOptions::new(),
                Plain::<u32>::new(),
                async { 0 },
            )
            .await;
            get("region")
        }));
    }
    while let Some(region) = tasks.join_next().await {
        assert_eq!(region.unwrap().as_deref(), Some("eu"));
    }
    assert_eq!(
        detected.served().len(),
        3,
        "recorded into the scope that was captured"
    );

    let empty = Context::current();
    assert_eq!(empty.scope(async { get("region") }).await, None);
    tokio::time::timeout(Duration::from_secs(5), Context::default().scope(async {}))
        .await
        .unwrap();
}
