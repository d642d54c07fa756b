//! [`Bound`]: a connection together with a sign of life of the Tokio runtime that drives it.
//!
//! redis-rs drives a connection (its reader and writer, a `ConnectionManager`'s reconnects)
//! from tasks spawned on the runtime that opened it. When that runtime shuts down, those tasks
//! are gone and every command on the connection fails, although the handle looks fine. A
//! `Cache` in a `static` used by several `#[tokio::test]`s, each with its own runtime, hits this
//! on the first commands of every test but the first (in safe mode: misses for no visible
//! reason). So each connection is stored with a [`Weak`] whose only strong owner is a task
//! parked on the opening runtime: when the runtime goes, the task is dropped, and the next
//! command sees a dead connection and opens a new one on the runtime it runs on. The check is
//! one atomic load per command. The parked task ends when the [`Bound`] is dropped, so it
//! outlives neither the connection nor the backend.
//!
//! A [`Bound`] also carries the health epoch it was opened in: when the backend is marked down
//! the epoch moves on, and connections of an earlier epoch are given up (see `health`). And it
//! can be marked broken, when a command found the connection dropped (see `conn`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// A value (a connection) usable while the runtime that opened it runs.
pub(super) struct Bound<T> {
    value: T,
    /// Unique among the values bound in this process: tells a slot's current connection from
    /// one it held before.
    id: u64,
    alive: Weak<()>,
    /// The health epoch the value was opened in.
    epoch: u64,
    /// Set when a command found the connection dropped: the next command opens another.
    broken: AtomicBool,
    /// Dropping it ends the parked task.
    _park: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<T: Clone> Bound<T> {
    /// Binds `value` to the current runtime (call it from the task that opened `value`) and
    /// to the health `epoch` it was opened in.
    pub(super) fn new(value: T, epoch: u64) -> Self {
        let token = Arc::new(());
        let alive = Arc::downgrade(&token);
        let park = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (park, parked) = tokio::sync::oneshot::channel::<()>();
            // Parked until this `Bound` is dropped; dropped earlier with its runtime, and
            // `token` with it.
            runtime.spawn(async move {
                let _token = token;
                let _ = parked.await;
            });
            park
        });
        // Without a runtime `token` has dropped here and the value counts as dead at once,
        // which is right: nothing drives it.
        static IDS: AtomicU64 = AtomicU64::new(0);
        Self {
            value,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            alive,
            epoch,
            broken: AtomicBool::new(false),
            _park: park,
        }
    }

    /// Whether the runtime that drives the value still runs, the value belongs to `epoch` and
    /// was not marked broken.
    #[inline]
    pub(super) fn is_alive(&self, epoch: u64) -> bool {
        self.epoch == epoch && !self.broken.load(Ordering::Relaxed) && self.alive.strong_count() > 0
    }

    /// The number of this value (see the field).
    #[inline]
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// The value, alive or not (check [`Bound::is_alive`] first).
    #[inline]
    pub(super) fn value(&self) -> &T {
        &self.value
    }

    /// Gives the value up: it is not alive from now on, and its slot opens another.
    pub(super) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    /// A clone of the value if it is alive in `epoch` (see [`Bound::is_alive`]).
    pub(super) fn get(&self, epoch: u64) -> Option<T> {
        self.is_alive(epoch).then(|| self.value.clone())
    }
}
