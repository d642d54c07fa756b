//! Longest-prefix routing of keys to configured backends.

use std::sync::Arc;

use super::route::Route;

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

    /// A router of `map(route)` for each route, in the same order.
    pub(crate) fn mapped(&self, map: impl FnMut(&Arc<Route>) -> Arc<Route>) -> Self {
        Self {
            routes: self.routes.iter().map(map).collect(),
        }
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
