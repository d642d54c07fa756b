//! [`Routes`]: a cache's current [`Router`], read on every command.
//!
//! The router is swapped by `setup` (rarely) and read by every command, so it lives in an
//! [`ArcSwap`]. Loading from an `ArcSwap` costs two atomic read-modify-writes (taking and
//! paying back a debt slot), about 13 ns of a ~100 ns memory hit measured by
//! `benches/benches/strategies.rs`. So the routers a cache installs are also kept, each in a
//! slot it never leaves, and reads borrow the current one from its slot with two plain loads.
//!
//! The cost: a router replaced by a later `setup` stays alive (with the backends only it
//! holds) until the cache is dropped, for the first [`KEPT`] setups of a cache; from the
//! next one on, no router is kept any more and reads go through the `ArcSwap`. A cache is
//! set up a few times at start, so this keeps little; one set up again and again in a loop
//! stops keeping after [`KEPT`] routers.
//!
//! Written by hand because no crate offers this trade (arc-swap's own `Cache` needs `&mut`
//! per reader); it is safe code: a slot is a `OnceLock`, set once and never emptied.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwap, Guard};
use parking_lot::Mutex;

use super::router::Router;

/// How many installed routers a cache keeps for borrowing reads.
const KEPT: usize = 16;

/// `current` when no slot holds the current router.
const NONE: usize = usize::MAX;

/// A cache's current router (see the module docs).
pub(super) struct Routes {
    swap: ArcSwap<Router>,
    /// The routers installed so far, in order; `current` indexes the current one.
    kept: [OnceLock<Arc<Router>>; KEPT],
    current: AtomicUsize,
    /// Serializes installs; counts them.
    installs: Mutex<usize>,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            swap: ArcSwap::from_pointee(Router::default()),
            kept: std::array::from_fn(|_| OnceLock::new()),
            current: AtomicUsize::new(NONE),
            installs: Mutex::new(0),
        }
    }
}

/// The current router, borrowed from its slot or loaded from the `ArcSwap`; or, inside a
/// transaction, the transaction's view of it.
pub(super) enum Loaded<'a> {
    Kept(&'a Router),
    Swapped(Guard<Arc<Router>>),
    Owned(Arc<Router>),
}

impl std::ops::Deref for Loaded<'_> {
    type Target = Router;

    #[inline]
    fn deref(&self) -> &Router {
        match self {
            Self::Kept(router) => router,
            Self::Swapped(guard) => guard,
            Self::Owned(router) => router,
        }
    }
}

impl Routes {
    /// The current router, for the length of one command.
    #[inline]
    pub(super) fn load(&self) -> Loaded<'_> {
        let current = self.current.load(Ordering::SeqCst);
        match self.kept.get(current).and_then(OnceLock::get) {
            Some(router) => Loaded::Kept(router),
            None => Loaded::Swapped(self.swap.load()),
        }
    }

    /// The current router, owned.
    pub(super) fn load_full(&self) -> Arc<Router> {
        self.swap.load_full()
    }

    /// Replaces the router by `change` of the current one; installs never run at once.
    /// Returns what `change` returns beside the router (the routes it replaced).
    pub(super) fn update<R>(&self, change: impl FnOnce(&Router) -> (Router, R)) -> R {
        let mut installs = self.installs.lock();
        let (router, replaced) = change(&self.swap.load());
        let router = Arc::new(router);
        self.swap.store(Arc::clone(&router));
        let slot = *installs;
        *installs = installs.saturating_add(1);
        // A slot is set once: no reader ever sees it change under a borrow. Past the last
        // slot, reads go through the swap.
        let current = match self.kept.get(slot) {
            Some(kept) if kept.set(router).is_ok() => slot,
            _ => NONE,
        };
        self.current.store(current, Ordering::SeqCst);
        replaced
    }

    /// How many kept routers hold `route`: references that stay while the cache lives, not
    /// commands in flight.
    pub(super) fn kept_references(&self, route: &Arc<super::route::Route>) -> usize {
        self.kept
            .iter()
            .filter_map(OnceLock::get)
            .filter(|router| router.routes().iter().any(|r| Arc::ptr_eq(r, route)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::KEPT;
    use crate::Cache;

    /// Every setup takes effect at once, through the kept slots and past them: each `mem://`
    /// setup replaces the backend, so a key written before it is gone after it.
    #[tokio::test]
    async fn reads_follow_every_setup_past_the_kept_slots() {
        let cache = Cache::new();
        for round in 0..KEPT + 4 {
            cache.setup("mem://").unwrap();
            assert_eq!(
                cache.get::<usize>("k").await.unwrap(),
                None,
                "round {round}"
            );
            cache.set("k", &round, "1h").await.unwrap();
            assert_eq!(cache.get::<usize>("k").await.unwrap(), Some(round));
            assert_eq!(
                cache.get_shared::<usize>("k").await.unwrap().as_deref(),
                Some(&round)
            );
        }
        assert_eq!(*cache.inner.routes.installs.lock(), KEPT + 4);
        assert!(matches!(
            cache.inner.routes.load(),
            super::Loaded::Swapped(_)
        ));
    }

    /// A prefix route added by a later setup is seen by the next read.
    #[tokio::test]
    async fn a_prefix_setup_routes_the_next_read() {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        cache.set("user:1", &1, "1h").await.unwrap();
        assert!(matches!(cache.inner.routes.load(), super::Loaded::Kept(_)));
        cache.setup_prefix("user:", "mem://").unwrap();
        assert_eq!(cache.get::<i32>("user:1").await.unwrap(), None);
        assert!(matches!(cache.inner.routes.load(), super::Loaded::Kept(_)));
    }
}
