//! Longest-prefix routing of keys to configured backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::backend::{DynBackend, MemoryBackend};
use crate::codec::Codec;
use crate::command::Command;

/// The storage engine of one route. Memory gets a static variant so the hottest path (a
/// memory hit) pays no boxed future; everything else is erased once, here.
#[derive(Clone)]
pub(crate) enum Engine {
    Memory(MemoryBackend),
    Dyn(Arc<dyn DynBackend>),
}

impl Engine {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "mem",
            Self::Dyn(b) => b.name(),
        }
    }
}

/// One configured backend: its engine, codec and wrapper-level settings.
pub(crate) struct Route {
    pub(crate) prefix: String,
    pub(crate) engine: Engine,
    pub(crate) codec: Codec,
    /// Bit set of globally disabled commands (`Command::bit`).
    pub(crate) disabled: AtomicU32,
    pub(crate) suppress: bool,
    pub(crate) max_key_length: usize,
    pub(crate) max_value_size: Option<usize>,
    /// The client-side tier behind `engine`, for typed local hits without a decode
    /// ([`Cache::get_shared`](crate::Cache::get_shared)); `None` for other backends.
    #[cfg(feature = "redis")]
    pub(crate) client_side: Option<crate::backend::ClientSideRedis>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("prefix", &self.prefix)
            .field("backend", &self.engine.name())
            .field("suppress", &self.suppress)
            .field("disabled", &self.disabled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

pub(crate) const ALL_COMMANDS: u32 = (1 << Command::ALL.len()) - 1;

impl Route {
    pub(crate) fn name(&self) -> &'static str {
        self.engine.name()
    }

    #[inline]
    pub(crate) fn disabled_mask(&self) -> u32 {
        self.disabled.load(Ordering::Relaxed)
    }

    pub(crate) fn disable(&self, mask: u32) {
        self.disabled.fetch_or(mask, Ordering::Relaxed);
    }

    pub(crate) fn enable(&self, mask: u32) {
        self.disabled.fetch_and(!mask, Ordering::Relaxed);
    }
}

/// The routes, longest prefix first. Replaced as a whole on every setup (copy on write), so
/// readers never lock; and nothing about routing is memoised elsewhere (cashews#119).
#[derive(Debug, Default)]
pub(crate) struct Router {
    routes: Vec<Arc<Route>>,
}

impl Router {
    #[inline]
    pub(crate) fn find(&self, key: &str) -> Option<&Arc<Route>> {
        match self.routes.as_slice() {
            // The common case: one default route.
            [only] if only.prefix.is_empty() => Some(only),
            routes => routes.iter().find(|r| key.starts_with(r.prefix.as_str())),
        }
    }

    pub(crate) fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// A new router with `route` added, replacing any route with the same prefix.
    pub(crate) fn with(&self, route: Arc<Route>) -> (Self, Option<Arc<Route>>) {
        let mut routes = self.routes.clone();
        let old = routes
            .iter()
            .position(|r| r.prefix == route.prefix)
            .map(|i| routes.remove(i));
        routes.push(route);
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| b.prefix.cmp(&a.prefix))
        });
        (Self { routes }, old)
    }
}
