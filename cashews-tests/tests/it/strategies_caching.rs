//! The caching family of strategies: `failover`, `soft`, `early`, `hit` / `dynamic`.
//!
//! Every cache runs on a manual clock: tests move time instead of sleeping, and assert how
//! many times the origin ran, never how long anything took.

mod early;
mod failover;
mod hit;
mod soft;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::ms;
use cashews::strategy::{
    EarlyOptions, FailoverOptions, Fallible, HitOptions, Plain, SoftOptions, any_error, early,
    early_detached, failover, hit, hit_detached, soft,
};
use cashews::{Cache, Ttl};

fn ttl_ms(n: u64) -> Ttl {
    Ttl::new(ms(n))
}

#[derive(Debug, Clone, PartialEq)]
struct CustomError;

#[derive(Debug, Clone, PartialEq)]
struct OtherError;

/// Counts origin runs.
#[derive(Debug, Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// An origin returning `value`, counted when it runs.
    fn returning<T>(&self, value: T) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
    {
        let runs = Arc::clone(&self.0);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            value
        }
    }
}

/// Waits (in real time, bounded) until `done` holds: for work spawned in the background.
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(ms(1)).await;
    }
    panic!("the background work did not finish");
}

type Res = Result<String, CustomError>;

fn ok(s: &str) -> Res {
    Ok(s.to_owned())
}

// ----- all of them --------------------------------------------------------------------------

/// A cache failure never fails the call: with no backend at all, every strategy runs the
/// function and returns its own result.
#[tokio::test]
async fn a_broken_cache_never_fails_the_call() {
    let cache = Cache::new(); // not configured: every command fails
    let ttl = Ttl::secs(60);
    let runs = Runs::default();
    let r: Res = failover(
        &cache,
        "fail:k",
        ttl,
        &FailoverOptions::new(),
        any_error,
        runs.returning(ok("f")),
    )
    .await;
    assert_eq!(r, ok("f"));
    let r: Res = failover(
        &cache,
        "fail:k",
        ttl,
        &FailoverOptions::new(),
        any_error,
        runs.returning(Err(CustomError)),
    )
    .await;
    assert_eq!(r, Err(CustomError));
    let shape = Fallible::<String, CustomError>::new();
    assert_eq!(
        soft(
            &cache,
            "soft:k",
            ttl,
            &SoftOptions::new(),
            shape,
            runs.returning(ok("s"))
        )
        .await,
        ok("s")
    );
    assert_eq!(
        early(
            &cache,
            "early:v2:k",
            ttl,
            &EarlyOptions::new(),
            shape,
            runs.returning(ok("e"))
        )
        .await,
        ok("e")
    );
    assert_eq!(
        hit(
            &cache,
            "hit:k",
            ttl,
            &HitOptions::new(3),
            shape,
            runs.returning(ok("h"))
        )
        .await,
        ok("h")
    );
    assert_eq!(runs.count(), 5);
}

/// The strategies' futures are `Send` when their inputs are, so they run in spawned tasks
/// and web handlers.
#[test]
fn strategy_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let cache = Cache::new();
    let ttl = Ttl::secs(1);
    let shape = Plain::<u32>::new();
    let (soft_opts, early_opts) = (SoftOptions::new(), EarlyOptions::new());
    let (hit_opts, failover_opts) = (HitOptions::new(1), FailoverOptions::new());
    let f = soft(&cache, "k", ttl, &soft_opts, shape, async { 1 });
    send(&f);
    let f = early(&cache, "k", ttl, &early_opts, shape, async { 1 });
    send(&f);
    let f = early_detached(&cache, "k", ttl, &early_opts, shape, async { 1 });
    send(&f);
    let f = hit(&cache, "k", ttl, &hit_opts, shape, async { 1 });
    send(&f);
    let f = hit_detached(&cache, "k", ttl, &hit_opts, shape, async { 1 });
    send(&f);
    let f = failover(&cache, "k", ttl, &failover_opts, any_error, async {
        Ok::<u32, String>(1)
    });
    send(&f);
}

/// A strategy takes its TTL in any `IntoTtl` form (`"1h"`, seconds, a `Duration`, a `Ttl`);
/// an invalid one is logged and the call runs its function without the cache, every time.
#[tokio::test]
async fn strategies_take_any_ttl_form_and_skip_the_cache_on_a_bad_one() -> cashews::Result<()> {
    use cashews::strategy::{CacheOptions, cache, cache_locked, iterator, locked_always};
    use futures_util::StreamExt;
    let store = Cache::new();
    store.setup("mem://")?;
    let runs = Runs::default();
    let shape = Plain::<u32>::new();
    let options = CacheOptions::new();
    for _ in 0..2 {
        assert_eq!(
            cache(&store, "ttl:str", "1h", &options, shape, runs.returning(1)).await,
            1
        );
        assert_eq!(
            cache(
                &store,
                "ttl:secs",
                60_u64,
                &options,
                shape,
                runs.returning(2)
            )
            .await,
            2
        );
    }
    assert_eq!(runs.count(), 2, "the valid TTLs cached");
    for _ in 0..2 {
        assert_eq!(
            cache(&store, "ttl:bad", "5x", &options, shape, runs.returning(3)).await,
            3
        );
        let hits = HitOptions::new(3);
        let h = hit(
            &store,
            "ttl:bad:hit",
            -1_i64,
            &hits,
            shape,
            runs.returning(4),
        );
        assert_eq!(h.await, 4);
        let locked = cache_locked(
            &store,
            "ttl:bad:l",
            "5x",
            &options,
            shape,
            runs.returning(5),
        );
        assert_eq!(locked.await, 5);
        let items: Vec<u32> = iterator(
            &store,
            "ttl:bad:it",
            "5x",
            &Default::default(),
            shape,
            futures_util::stream::iter([6, 7]),
        )
        .collect()
        .await;
        assert_eq!(items, [6, 7]);
    }
    assert_eq!(
        runs.count(),
        8,
        "every call with a bad TTL ran its function"
    );
    for key in ["ttl:bad", "ttl:bad:hit", "ttl:bad:l", "ttl:bad:it"] {
        assert!(!store.exists(key).await?, "{key} was not cached");
    }
    // The lock of `locked_always` runs its function without the lock on a bad TTL.
    assert_eq!(
        locked_always(&store, "ttl:bad:lock", "5x", runs.returning(9)).await,
        9
    );
    Ok(())
}
