//! [`thunder_protection`]: concurrent calls with one key in this process share one run of the
//! function and all get its result (`#[cashews::thunder_protection]`).

use std::future::Future;

use crate::Cache;
use crate::coalesce::{self, Flights, Then};
use crate::observe::{Call, StrategyResult};

/// Runs `origin` once for all the concurrent calls with `key` in this process, and gives each
/// of them a clone of its result.
///
/// This is what `#[cashews::thunder_protection]` expands to (the key has no prefix: it
/// never reaches a backend). A call whose key is already being computed waits for that run
/// and returns a clone of its result, `Ok` or `Err`; otherwise it runs `origin` itself and
/// the others wait for it. The run is forgotten as soon as it ends: the next call runs
/// `origin` again (nothing is cached; stack a caching strategy for that). `cache` only scopes
/// the runs: two [`Cache`]s never share one, the clones of one always do; nothing is read or
/// written.
///
/// `R: Clone` because every waiter gets the same result: for a `Result` whose error is not
/// `Clone`, wrap it in an [`Arc`](std::sync::Arc). (The `protected` option of the caching
/// strategies coalesces without `Clone`: the waiters read what the first call stored.) `R:
/// Send + 'static` because the run is found through a map the cache keeps; the origin itself
/// need not be `Send` or `'static`: it runs in the caller, and may borrow its arguments.
///
/// This is the in-process coalescer the caching strategies share, with the result itself as
/// what the waiters get (see [the semantics](super#coalescing)).
///
/// # Concurrent calls
///
/// One run per key at a time in this process, whatever the number of callers, on any
/// runtime or thread (the map is per `Cache`, not per runtime). Other processes run their
/// own: use [`locked`](super::locked()) or [`cache_locked`](super::cache_locked()) for
/// exclusion across processes. A call from inside `origin` (the same task) with the same key
/// runs `origin` itself instead of waiting for itself. Calls with the same key and another
/// result type do not share the run (each result type has its own runs).
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` if this call was running it; the waiters are
/// woken and one of them runs `origin` in its place (none hangs, and none gets a result that
/// was never computed). A waiter that is dropped just stops waiting.
///
/// # Panics
///
/// A panic in `origin` unwinds through the caller that ran it; the waiters are released as
/// for a cancellation, and one of them runs `origin` again (so each caller gets its own run,
/// or its own panic).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use cashews::strategy::thunder_protection;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = cashews::Cache::new();
/// let runs = AtomicUsize::new(0);
/// let fetch = || thunder_protection(&cache, "rates:eur", async {
///     runs.fetch_add(1, Ordering::SeqCst);
///     tokio::task::yield_now().await; // a slow upstream
///     Ok::<_, String>(1.08)
/// });
/// let (a, b, c) = tokio::join!(fetch(), fetch(), fetch());
/// assert_eq!((a, b, c), (Ok(1.08), Ok(1.08), Ok(1.08)));
/// assert_eq!(runs.load(Ordering::SeqCst), 1);
/// # }
/// ```
pub async fn thunder_protection<R, F>(cache: &Cache, key: &str, origin: F) -> R
where
    R: Clone + Send + 'static,
    F: Future<Output = R>,
{
    // Boxed once: the origin then takes its own size in this future, not a multiple of it.
    let origin = Box::pin(origin);
    let call = Call::start("thunder_protection", None);
    let result = call
        .within(coalesce::run(
            &cache.extension::<Flights<R>>(),
            key,
            (None, None::<()>),
            // Nothing is read: a run's result lives only as long as the run.
            || std::future::ready(Err(None)),
            |_| async { (origin.await, true) },
            |result, _| result.clone(),
            Then::Take,
        ))
        .await;
    call.finish(StrategyResult::Ok);
    result
}
