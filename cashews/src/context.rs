//! The task context of cashews, inherited by spawned tasks as Python's context variables are.
//!
//! cashews keeps per-task state in Tokio task-locals:
//!
//! | State | Set by |
//! |---|---|
//! | detect scopes | [`detect`](crate::detect()) |
//! | key context | [`with_key_context`](crate::key::context::with_key_context), [`key::context::scope`](crate::key::context::scope) |
//! | commands disabled for the task | [`Cache::disabling`](crate::Cache::disabling) |
//! | the invalidate-further flag | [`invalidate_further`](crate::invalidate_further()) |
//! | the tagging scope | [`tagged`](crate::tagged()) |
//! | open transactions | [`Transaction::run`](crate::transaction::Transaction::run) |
//!
//! A task started with `tokio::spawn` starts with none of them. [`spawn`] (also
//! [`cashews::spawn`](crate::spawn)) starts it with a copy of the spawning task's, as
//! `asyncio.create_task` does in Python; [`Context::current`] and [`Context::scope`] do the
//! same by hand, for other spawners (`JoinSet`, `spawn_local`, a runtime handle).
//!
//! # Semantics
//!
//! - **A copy at spawn.** The child sees the values the parent had when [`Context::current`]
//!   ran (for [`spawn`]: when it was called). Scopes the parent enters or leaves afterwards
//!   are not seen by the child, and scopes the child enters are not seen by the parent.
//! - **Detect scopes are shared, not copied.** A child records its hits into the parent's
//!   [`Detected`] lists (they are shared handles), so the parent sees them, as in Python
//!   where the child writes into the same detector.
//! - **The child keeps what it inherited** for as long as it runs, also after the parent's
//!   scope has ended: a child spawned inside `cache.disabling(...)` stays disabled.
//! - **Not inherited: re-entry markers.** cashews also marks, per task, the keys a task holds
//!   a lock on, leads a thunder-protected run of, or is loading through
//!   [`Cache::get_or_set`](crate::Cache::get_or_set), so that a nested call of the same key
//!   in that task runs at once instead of waiting for itself. Those say "this task holds
//!   it"; a spawned task does not hold it, so it waits like any other caller (as in Python,
//!   which has no such markers). A task that holds a key and awaits a child calling the
//!   same key therefore waits on itself: make that call in the task itself.
//!
//! ```
//! use cashews::key::context::{get, with_key_context};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! with_key_context([("tenant", "acme")], async {
//!     let inherited = cashews::spawn(async { get("tenant") });
//!     let plain = tokio::spawn(async { get("tenant") });
//!     assert_eq!(inherited.await.unwrap().as_deref(), Some("acme"));
//!     assert_eq!(plain.await.unwrap(), None);
//! })
//! .await;
//! # }
//! ```

use std::future::Future;

use futures_util::future::Either;
use tokio::task::JoinHandle;

use crate::detect::Detected;
use crate::key::context::KeyContext;

/// A copy of the current task's cashews state, to run a future under elsewhere.
///
/// Take it with [`Context::current`], run a future under it with [`Context::scope`]. Parts the
/// spawning task did not have are left alone where the future runs: in a fresh task, absent.
/// Cheap to clone (shared handles and short lists).
///
/// ```
/// use cashews::context::Context;
/// use cashews::key::context::{get, with_key_context};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let context = with_key_context([("region", "eu")], async { Context::current() }).await;
/// let mut tasks = tokio::task::JoinSet::new();
/// for _ in 0..2 {
///     tasks.spawn(context.clone().scope(async { get("region") }));
/// }
/// while let Some(region) = tasks.join_next().await {
///     assert_eq!(region.unwrap().as_deref(), Some("eu"));
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context {
    detect: Option<Vec<Detected>>,
    key: Option<KeyContext>,
    disabled: Option<Disabled>,
    further: Option<Further>,
    tagging: Option<Tagging>,
    transactions: Option<Transactions>,
}

impl Context {
    /// A copy of the current task's cashews state (empty outside any scope, or outside a
    /// Tokio task).
    ///
    /// ```
    /// use cashews::context::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", "1h").await?;
    /// let context = cashews::invalidate_further(async { Context::current() }).await;
    /// let reader = cache.clone();
    /// let read = tokio::spawn(context.scope(async move { reader.get::<String>("k").await }));
    /// assert_eq!(read.await.unwrap()?, None); // inside invalidate_further: the read forgets
    /// assert!(!cache.exists("k").await?);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn current() -> Self {
        Self {
            detect: crate::detect::capture(),
            key: Some(crate::key::context::snapshot()).filter(|key| !key.is_empty()),
            disabled: Disabled::capture(),
            further: Further::capture(),
            tagging: Tagging::capture(),
            transactions: Transactions::capture(),
        }
    }

    /// Runs `fut` with this context's state re-established around it, on every poll.
    ///
    /// The state is what [`Context::current`] captured; parts it did not capture are not
    /// touched. Hold-while-running parts (commands disabled for the task, the
    /// invalidate-further flag) count as open from this call until the returned future
    /// completes or is dropped.
    ///
    /// ```
    /// use cashews::context::Context;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", "1h").await?;
    /// let context = cache.disabling(&[], async { Context::current() }).await;
    /// // Outside the `disabling` scope, but under its captured context: still disabled.
    /// let got: Option<String> = context.scope(cache.get("k")).await?;
    /// assert_eq!(got, None);
    /// assert_eq!(cache.get::<String>("k").await?.as_deref(), Some("v"));
    /// # Ok(()) }
    /// ```
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        // One layer per part, each either the part's own task-local scope or the future as
        // it is: the layers add the captured values to the future's size, nothing more.
        let fut = layer(self.transactions, fut, Transactions::scope);
        let fut = layer(self.tagging, fut, Tagging::scope);
        let fut = layer(self.further, fut, Further::scope);
        let fut = layer(self.disabled, fut, Disabled::scope);
        let fut = layer(self.detect, fut, crate::detect::scope_captured);
        layer(self.key, fut, crate::key::context::scope)
    }
}

/// `fut` inside `scope(value, fut)` when there is a value, else `fut` itself.
fn layer<T, F, G>(value: Option<T>, fut: F, scope: impl FnOnce(T, F) -> G) -> Either<G, F>
where
    F: Future,
    G: Future<Output = F::Output>,
{
    match value {
        Some(value) => Either::Left(scope(value, fut)),
        None => Either::Right(fut),
    }
}

/// Spawns `fut` on the current Tokio runtime with a copy of the current task's cashews state:
/// `tokio::spawn(Context::current().scope(fut))`. See the [module docs](self) for what is
/// inherited and when.
///
/// The copy is taken when `spawn` is called, so call it inside the scope you mean:
/// `detect(cashews::spawn(fut))` spawns *before* `detect` opens its scope (the argument is
/// evaluated first); write `detect(async { cashews::spawn(fut).await })`, as below.
///
/// # Panics
///
/// Outside a Tokio runtime, as `tokio::spawn` does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// cache.set("k", &1, "1h").await?;
/// let (_, detected) = cashews::detect(async {
///     let shape = cashews::strategy::Plain::<i32>::new();
///     let options = cashews::strategy::CacheOptions::new();
///     let ttl = cashews::Ttl::parse("1h").unwrap();
///     let cache = cache.clone();
///     cashews::spawn(async move {
///         cashews::strategy::cache(&cache, "k", ttl, &options, shape, async { 0 }).await
///     })
///     .await
///     .unwrap()
/// })
/// .await;
/// assert_eq!(detected.keys(), ["k"]); // the child's hit, seen by the parent's scope
/// # Ok(()) }
/// ```
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Context::current().scope(fut))
}

// The captured parts of state whose task-locals are private to their modules. Each module
// fills and re-establishes its own part, in a block at its end (`impl ... { capture, scope }`):
// `cache/control.rs`, `cache/further.rs`, `cache/tags.rs`, `cache/transactions.rs`.

/// The commands disabled for the task: `(cache id, command mask)` per open scope.
#[derive(Debug, Clone)]
pub(crate) struct Disabled(pub(crate) Vec<(usize, u32)>);

/// The transactions open in the task (`cache/transactions.rs`): a child shares them, so its
/// writes join the parent's transaction until the parent's scope ends.
#[derive(Debug, Clone)]
pub(crate) struct Transactions(pub(crate) Vec<std::sync::Arc<crate::cache::transactions::Open>>);

/// The invalidate-further flag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Further;

/// The tagging scope: a write of `key` also adds it to `tags`.
#[derive(Debug, Clone)]
pub(crate) struct Tagging {
    pub(crate) key: String,
    pub(crate) tags: Vec<String>,
}
