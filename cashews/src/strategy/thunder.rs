//! [`thunder_protection`]: concurrent calls with one key in this process share one run of the
//! function and all get its result (`#[cashews::thunder_protection]`).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::locked::reentry::{self, Held};
use crate::Cache;
use crate::error::shorten;

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
/// `Clone`, wrap it in an [`Arc`]. (The `protected` option of the caching strategies
/// coalesces without `Clone`: the waiters read what the first call stored.) `R: Send +
/// 'static` because the run is found through a process-wide map; the origin itself need not
/// be `Send` or `'static`: it runs in the caller, and may borrow its arguments.
///
/// # Concurrent calls
///
/// One run per key at a time in this process, whatever the number of callers, on any
/// runtime or thread (the map is per `Cache`, not per runtime). Other processes run their
/// own: use [`locked`](super::locked()) or [`cache_locked`](super::cache_locked()) for
/// exclusion across processes. A call from inside `origin` (the same task) with the same key
/// runs `origin` itself instead of waiting for itself. Calls with the same key and another
/// result type do not share the run.
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
    if reentry::is_inside(cache, Held::Thunder, key) {
        return origin.await;
    }
    let flights = cache.thunder_flights();
    loop {
        match enter::<R>(flights, key) {
            Turn::Lead(leader) => {
                let result = reentry::inside(cache, Held::Thunder, key, origin).await;
                leader.finish(&result);
                return result;
            }
            Turn::Follow(flight, receiver) => {
                if let Some(result) = follow(&flight, receiver).await {
                    return result;
                }
                // The leader was cancelled or panicked: take a turn again.
            }
            Turn::Alone => {
                tracing::debug!(key = %shorten(key), "thunder_protection: the key is being computed with another result type; running alone");
                return origin.await;
            }
        }
    }
}

/// One cache's runs in flight in this process, by key (owned by the `Cache`); each value is
/// an `Arc<Flight<R>>` for the caller's `R`. A plain mutex: held for a map operation only.
#[derive(Default)]
pub(crate) struct Flights(Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>);

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("keys", &self.0.lock().len())
            .finish()
    }
}

/// One run of an origin, as its waiters see it.
struct Flight<R> {
    state: Mutex<State<R>>,
    /// Signalled once the state is final.
    ended: watch::Sender<()>,
}

enum State<R> {
    Running,
    /// The result, for the waiters (only set when there were any).
    Done(R),
    /// The leader was dropped without a result (cancelled or panicked).
    Abandoned,
}

enum Turn<R> {
    /// Run the origin; the guard hands the result over, or the turn when dropped.
    Lead(Leader<R>),
    /// Wait for the run in flight (subscribed while it was registered).
    Follow(Arc<Flight<R>>, watch::Receiver<()>),
    /// The key is in flight with another result type.
    Alone,
}

struct Leader<R> {
    flights: Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>,
    key: String,
    flight: Arc<Flight<R>>,
}

fn enter<R: Send + 'static>(flights: &Flights, key: &str) -> Turn<R> {
    let mut keys = flights.0.lock();
    if let Some(flight) = keys.get(key) {
        return match Arc::clone(flight).downcast::<Flight<R>>() {
            Ok(flight) => {
                let receiver = flight.ended.subscribe();
                Turn::Follow(flight, receiver)
            }
            Err(_) => Turn::Alone,
        };
    }
    let flight = Arc::new(Flight {
        state: Mutex::new(State::Running),
        ended: watch::Sender::new(()),
    });
    keys.insert(
        key.to_owned(),
        Arc::clone(&flight) as Arc<dyn Any + Send + Sync>,
    );
    drop(keys);
    Turn::Lead(Leader {
        flights: Arc::clone(&flights.0),
        key: key.to_owned(),
        flight,
    })
}

impl<R: Clone> Leader<R> {
    /// Hands `result` to the waiters (a clone, and only if there are any).
    fn finish(self, result: &R) {
        // No new waiter can join once the run is out of the map, so the count is final.
        self.unregister();
        if self.flight.ended.receiver_count() > 0 {
            *self.flight.state.lock() = State::Done(result.clone());
        }
        // Drop signals the end.
    }
}

impl<R> Leader<R> {
    /// Takes the run out of the map (if it is still this one).
    fn unregister(&self) {
        let mut keys = self.flights.lock();
        let ours = keys.get(&self.key).is_some_and(|flight| {
            std::ptr::addr_eq(Arc::as_ptr(flight), Arc::as_ptr(&self.flight))
        });
        if ours {
            keys.remove(&self.key);
        }
    }
}

impl<R> Drop for Leader<R> {
    fn drop(&mut self) {
        self.unregister();
        {
            let mut state = self.flight.state.lock();
            if matches!(*state, State::Running) {
                *state = State::Abandoned;
            }
        }
        self.flight.ended.send_replace(());
    }
}

/// Waits for the run; its result, or `None` when it was abandoned.
async fn follow<R: Clone>(flight: &Flight<R>, mut receiver: watch::Receiver<()>) -> Option<R> {
    loop {
        match &*flight.state.lock() {
            State::Done(result) => return Some(result.clone()),
            State::Abandoned => return None,
            State::Running => {}
        }
        // The sender lives in `flight`, which we hold: `changed` cannot fail; if it did, the
        // run is as good as abandoned.
        if receiver.changed().await.is_err() {
            return None;
        }
    }
}
