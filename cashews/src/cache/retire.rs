//! Releasing backends: a route replaced by a later setup, and every route on
//! [`Cache::close`], releases its backend's connections, tasks and threads.
//!
//! A replaced route is closed once no command holds it any more: commands that await their
//! backend own a reference to the route, so the retirement waits (polling with a backoff, for
//! at most [`GRACE`]) until only the references that stay for the cache's life remain (the
//! routers kept for borrowing reads, see `routes.rs`). A command that started before the
//! replacing setup therefore finishes on the backend it started on. The route's memory (and a
//! memory backend's entries) stays while a kept router holds it; its connections and threads
//! do not.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use super::route::Route;
use super::{Cache, Shared};

/// The longest a retirement waits for commands in flight on the replaced route.
const GRACE: Duration = Duration::from_secs(30);

/// Retirements under way, and routes replaced where no Tokio runtime ran (closed by the next
/// [`Cache::close`]).
#[derive(Default)]
pub(super) struct Retirements {
    running: Mutex<Vec<JoinHandle<()>>>,
    waiting: Mutex<Vec<Arc<Route>>>,
}

impl Cache {
    /// Closes `route`'s backend once no command holds it (see the module docs).
    pub(super) fn retire(&self, route: Arc<Route>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.retirements.waiting.lock().push(route);
            return;
        };
        let shared = Arc::downgrade(&self.inner);
        let task = runtime.spawn(async move {
            wait_until_idle(&shared, &route).await;
            // A failure is logged inside; nobody waits for this task's result.
            let _ = close_route(shared.upgrade().as_deref(), &route).await;
        });
        let mut running = self.inner.retirements.running.lock();
        running.retain(|task| !task.is_finished());
        running.push(task);
    }

    /// Waits for every retirement under way and closes the routes replaced outside a
    /// runtime; part of [`Cache::close`].
    pub(super) async fn finish_retirements(&self) {
        let running = std::mem::take(&mut *self.inner.retirements.running.lock());
        for task in running {
            // A retirement task never panics; a cancelled one (runtime shutting down) has
            // nothing left to report.
            let _ = task.await;
        }
        let waiting = std::mem::take(&mut *self.inner.retirements.waiting.lock());
        for route in waiting {
            // Logged inside; these routes were replaced, their errors reach no caller.
            let _ = close_route(Some(&self.inner), &route).await;
        }
    }

    /// Closes `route`'s backend now (once per route), and stops its lock release feed.
    pub(super) async fn close_route(&self, route: &Route) -> crate::Result<()> {
        close_route(Some(&self.inner), route).await
    }
}

/// Waits until only the cache's kept routers hold `route` (and this task), or [`GRACE`].
async fn wait_until_idle(shared: &Weak<Shared>, route: &Arc<Route>) {
    let mut pause = Duration::from_millis(1);
    let started = tokio::time::Instant::now();
    loop {
        let kept = shared
            .upgrade()
            .map_or(0, |shared| shared.routes.kept_references(route));
        if Arc::strong_count(route) <= kept + 1 {
            return;
        }
        if started.elapsed() >= GRACE {
            tracing::warn!(
                backend = route.name(),
                prefix = %route.prefix,
                "a replaced backend is still in use after {GRACE:?}; closing it anyway"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

async fn close_route(shared: Option<&Shared>, route: &Route) -> crate::Result<()> {
    if !route.begin_close() {
        return Ok(());
    }
    if let Some(shared) = shared {
        shared
            .extensions
            .get::<crate::lock::Slots>()
            .drop_feed(route.backend_id());
    }
    let result = route.backend.close().await;
    if let Err(error) = &result {
        tracing::warn!(backend = route.name(), %error, "closing a backend failed");
    }
    result
}
