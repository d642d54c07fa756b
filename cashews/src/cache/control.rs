//! Disabling commands for one task and the tasks it awaits: [`Cache::disabling`](crate::Cache::disabling).
//!
//! Global switches live on each route as an atomic bit set; this module adds the task-scoped
//! layer, with a process-wide count of open scopes so the common case (no scope anywhere)
//! costs one relaxed load.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

static OPEN_SCOPES: AtomicUsize = AtomicUsize::new(0);

tokio::task_local! {
    static SCOPE: Vec<(usize, u32)>;
}

/// The extra commands disabled for `cache_id` in the current task, as a bit set: one relaxed
/// load when no scope is open anywhere, the task-local only when one is.
#[inline]
pub(crate) fn scoped_mask(cache_id: usize) -> u32 {
    if OPEN_SCOPES.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    scoped_mask_slow(cache_id)
}

#[cold]
#[inline(never)]
fn scoped_mask_slow(cache_id: usize) -> u32 {
    SCOPE
        .try_with(|scopes| {
            scopes
                .iter()
                .filter(|(id, _)| *id == cache_id)
                .fold(0, |acc, (_, mask)| acc | mask)
        })
        .unwrap_or(0)
}

struct OpenScope;

impl OpenScope {
    fn new() -> Self {
        OPEN_SCOPES.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for OpenScope {
    fn drop(&mut self) {
        OPEN_SCOPES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `fut` with `mask` disabled for `cache_id`, on top of any enclosing scope.
pub(crate) async fn disabling<F: Future>(cache_id: usize, mask: u32, fut: F) -> F::Output {
    let mut scopes = SCOPE.try_with(Clone::clone).unwrap_or_default();
    scopes.push((cache_id, mask));
    let _open = OpenScope::new();
    SCOPE.scope(scopes, fut).await
}

// ----- Inherited at spawn (crate::context) ------------------------------------------------

impl crate::context::Disabled {
    /// The current task's disabled-command scopes; `None` outside any.
    pub(crate) fn capture() -> Option<Self> {
        if OPEN_SCOPES.load(Ordering::Relaxed) == 0 {
            return None;
        }
        SCOPE.try_with(|scopes| Self(scopes.clone())).ok()
    }

    /// Runs `fut` with these scopes, counted as open from now until it completes or is
    /// dropped (so they hold after the scope they were captured in has ended).
    pub(crate) fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        let open = OpenScope::new();
        futures_util::FutureExt::map(SCOPE.scope(self.0, fut), move |output| {
            drop(open);
            output
        })
    }
}
