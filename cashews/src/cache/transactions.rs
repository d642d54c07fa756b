//! The task-scoped state behind [`Cache::transaction`](crate::Cache::transaction).
//!
//! An open transaction is an [`Open`] in a task-local list (one per cache), which tasks
//! spawned with [`cashews::spawn`](crate::spawn) inherit. While it is open, the cache's
//! commands in those tasks use the transaction's *view* of the router: every route seen
//! through a [`Transactional`] wrapper of its backend, made on the route's first use and kept
//! for the transaction. A process-wide count of open scopes makes the common case (no
//! transaction anywhere) one relaxed load per command.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::route::Route;
use super::router::Router;
use crate::Cache;
use crate::backend::{DynBackend, TransactionOptions, Transactional};
use crate::clock::Clock;
use crate::error::Result;

/// How many task scopes hold a transaction list, in the whole process.
static OPEN_SCOPES: AtomicUsize = AtomicUsize::new(0);

tokio::task_local! {
    static TRANSACTIONS: Vec<Arc<Open>>;
}

/// One open transaction of one cache.
pub(crate) struct Open {
    cache_id: usize,
    clock: Clock,
    options: TransactionOptions,
    /// Set when the scope that opened it ends (commit, rollback, drop): from then on, tasks
    /// that inherited it use the cache directly.
    closed: AtomicBool,
    /// Short, synchronous sections only.
    views: Mutex<Views>,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("cache", &self.cache_id)
            .field("options", &self.options)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Views {
    /// The cache router the current view was made from, and the view.
    router: Option<(Arc<Router>, Arc<Router>)>,
    /// One wrapper per route the transaction has seen.
    parts: Vec<Part>,
}

/// A route of the cache, the same route seen through the transaction, and its wrapper.
struct Part {
    /// Kept so that its address, which identifies it, stays its own.
    route: Arc<Route>,
    twin: Arc<Route>,
    wrapper: Transactional,
}

impl Open {
    pub(crate) fn new(cache: &Cache, options: TransactionOptions) -> Self {
        Self {
            cache_id: cache.inner.id,
            clock: cache.clock(),
            options,
            closed: AtomicBool::new(false),
            views: Mutex::new(Views::default()),
        }
    }

    pub(crate) fn options(&self) -> TransactionOptions {
        self.options
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The transaction's view of `base`, the cache's current router. The same route keeps
    /// the same wrapper for the whole transaction, also across a `setup` that adds others.
    fn view(&self, base: &Arc<Router>) -> Arc<Router> {
        let mut views = self.views.lock();
        if let Some((of, view)) = &views.router
            && Arc::ptr_eq(of, base)
        {
            return Arc::clone(view);
        }
        let Views { router, parts } = &mut *views;
        let view = Arc::new(base.mapped(|route| {
            if let Some(part) = parts.iter().find(|part| Arc::ptr_eq(&part.route, route)) {
                return Arc::clone(&part.twin);
            }
            let wrapper = Transactional::over(
                Arc::clone(&route.backend),
                route.name(),
                self.clock.clone(),
                self.options,
            );
            let backend: Arc<dyn DynBackend> = Arc::new(wrapper.clone());
            let twin = Arc::new(route.in_transaction(backend));
            parts.push(Part {
                route: Arc::clone(route),
                twin: Arc::clone(&twin),
                wrapper,
            });
            twin
        }));
        *router = Some((Arc::clone(base), Arc::clone(&view)));
        view
    }

    /// The wrappers made so far, with their route's safe mode and backend name.
    fn wrappers(&self) -> Vec<(Transactional, bool, &'static str)> {
        self.views
            .lock()
            .parts
            .iter()
            .map(|part| (part.wrapper.clone(), part.route.suppress, part.route.name()))
            .collect()
    }

    /// Commits every route's pending writes, one route after another (each one batch). In
    /// safe mode a backend failure is logged and the other routes still commit; otherwise the
    /// first failure is returned, after every route was tried.
    pub(crate) async fn commit(&self) -> Result<()> {
        let mut first = Ok(());
        for (wrapper, suppress, backend) in self.wrappers() {
            match wrapper.commit().await {
                Ok(()) => {}
                Err(error) if suppress && error.is_backend() => {
                    crate::error::log_swallowed!(error, backend, %error, "transaction commit failed; safe mode drops its writes");
                }
                Err(error) => {
                    if first.is_ok() {
                        first = Err(error);
                    }
                }
            }
        }
        first
    }

    /// Discards every route's pending writes and releases the locks.
    pub(crate) async fn rollback(&self) {
        for (wrapper, _, backend) in self.wrappers() {
            if let Err(error) = wrapper.rollback().await {
                tracing::error!(backend, %error, "transaction rollback failed; its locks expire after the timeout");
            }
        }
    }
}

/// The router `cache`'s commands use in this task, if a transaction of it is open here.
#[inline]
pub(super) fn router(cache: &Cache) -> Option<Arc<Router>> {
    if OPEN_SCOPES.load(Ordering::Relaxed) == 0 {
        return None;
    }
    router_slow(cache)
}

#[cold]
#[inline(never)]
fn router_slow(cache: &Cache) -> Option<Arc<Router>> {
    let open = current(cache.inner.id)?;
    Some(open.view(&cache.inner.routes.load_full()))
}

/// The transaction of cache `cache_id` open in this task (the innermost), if any.
pub(crate) fn current(cache_id: usize) -> Option<Arc<Open>> {
    if OPEN_SCOPES.load(Ordering::Relaxed) == 0 {
        return None;
    }
    TRANSACTIONS
        .try_with(|open| {
            open.iter()
                .rev()
                .find(|open| open.cache_id == cache_id && !open.is_closed())
                .cloned()
        })
        .ok()
        .flatten()
}

/// A scope counted in [`OPEN_SCOPES`] while it lives.
struct Counted;

impl Counted {
    fn new() -> Self {
        OPEN_SCOPES.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN_SCOPES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `fut` with `open` added to the task's transactions.
pub(crate) async fn scope<F: Future>(open: Arc<Open>, fut: F) -> F::Output {
    let mut list = TRANSACTIONS.try_with(Clone::clone).unwrap_or_default();
    list.push(open);
    let _counted = Counted::new();
    TRANSACTIONS.scope(list, fut).await
}

/// Ends a transaction whose scope did not finish (a panic, a dropped future): closes it and
/// rolls it back from a spawned task, so that its locks are released at once.
pub(crate) struct Unfinished(Option<Arc<Open>>);

impl Unfinished {
    pub(crate) fn new(open: &Arc<Open>) -> Self {
        Self(Some(Arc::clone(open)))
    }

    /// The scope finished: nothing to do on drop.
    pub(crate) fn finished(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(open) = self.0.take() else {
            return;
        };
        open.close();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { open.rollback().await });
            }
            // Without a runtime the wrappers' own drop lets the locks expire.
            Err(_) => drop(open),
        }
    }
}

impl Cache {
    /// This cache's identity: clones share it, two caches never do.
    pub(crate) fn id(&self) -> usize {
        self.inner.id
    }

    /// A transaction on this cache, with the cache's default mode and timeout (locked, 10 s,
    /// unless [`Cache::set_transaction_options`] changed them). See the
    /// [`transaction`](mod@crate::transaction) module.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let n = cache.transaction().run(async {
    ///     cache.incr("visits").await
    /// }).await?;
    /// assert_eq!(n, 1);
    /// # Ok(()) }
    /// ```
    pub fn transaction(&self) -> crate::transaction::Transaction {
        crate::transaction::Transaction::new(self, self.transaction_options())
    }

    /// Sets the mode and timeout [`Cache::transaction`] starts with.
    ///
    /// ```
    /// use cashews::transaction::{TransactionMode, TransactionOptions};
    /// let cache = cashews::Cache::new();
    /// cache.set_transaction_options(TransactionOptions::new(TransactionMode::Fast));
    /// assert_eq!(cache.transaction().options().mode, TransactionMode::Fast);
    /// ```
    pub fn set_transaction_options(&self, options: TransactionOptions) {
        *self.inner.transaction_defaults.lock() = options;
    }

    /// The mode and timeout [`Cache::transaction`] starts with.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// assert_eq!(cache.transaction_options().timeout.as_secs(), 10);
    /// ```
    #[must_use]
    pub fn transaction_options(&self) -> TransactionOptions {
        *self.inner.transaction_defaults.lock()
    }
}

// ----- Inherited at spawn (crate::context) ------------------------------------------------

impl crate::context::Transactions {
    /// The current task's open transactions; `None` outside any.
    pub(crate) fn capture() -> Option<Self> {
        if OPEN_SCOPES.load(Ordering::Relaxed) == 0 {
            return None;
        }
        TRANSACTIONS
            .try_with(|open| Self(open.clone()))
            .ok()
            .filter(|captured| !captured.0.is_empty())
    }

    /// Runs `fut` inside these transactions (until each is closed by its own scope).
    pub(crate) fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        let counted = Counted::new();
        futures_util::FutureExt::map(TRANSACTIONS.scope(self.0, fut), move |output| {
            drop(counted);
            output
        })
    }
}
