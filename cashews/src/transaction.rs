//! Transactions: a scope whose cache writes are applied together when it succeeds and
//! discarded when it fails.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! let cache = cashews::Cache::new();
//! cache.setup("mem://")?;
//! cache.set("stock:apple", &10, "1h").await?;
//!
//! let sold = cache
//!     .transaction()
//!     .run(async {
//!         let left = cache.incr_by("stock:apple", -3, cashews::Ttl::NONE).await?;
//!         cache.set("order:1", "3 apples", "1d").await?;
//!         // Inside: the transaction's own writes.
//!         assert_eq!(cache.get::<i64>("stock:apple").await?, Some(7));
//!         Ok::<_, cashews::Error>(left)
//!     })
//!     .await?;
//! assert_eq!(sold, 7);
//! assert_eq!(cache.get::<i64>("stock:apple").await?, Some(7)); // committed
//!
//! let failed: Result<(), cashews::Error> = cache
//!     .transaction()
//!     .run(async {
//!         cache.delete("order:1").await?;
//!         Err(cashews::Error::Locked { key: "payment".into() }) // any error rolls back
//!     })
//!     .await;
//! assert!(failed.is_err());
//! assert!(cache.exists("order:1").await?); // rolled back
//! # Ok(()) }
//! ```
//!
//! # Scope
//!
//! [`Transaction::run`] runs a future inside the transaction; [`Transaction::run_with`] also
//! hands it a [`TransactionHandle`] to commit or roll back early. The transaction covers the
//! commands of *this cache* made by the task running the scope, and by the tasks it spawns
//! with [`cashews::spawn`](crate::spawn) (or under a captured
//! [`Context`](crate::context::Context)): their writes join the transaction. Commands of other
//! tasks, other caches and other processes do not see the transaction's writes until the
//! commit. A task spawned inside the scope that is still running when the scope ends goes on
//! outside the transaction: its later commands use the cache directly.
//!
//! When the future returns `Ok`, the transaction commits; on `Err` it rolls back and the error
//! is returned. A panic or a cancellation (the scope's future dropped) rolls it back too:
//! nothing pending is written, and its locks are released from a spawned task.
//!
//! A transaction opened inside another transaction of the same cache, in the same task,
//! *is* the outer one: the inner scope neither commits nor rolls back when it ends (its
//! mode and timeout are ignored), and a [`TransactionHandle`] it gets acts on the outer one.
//!
//! # What is transactional
//!
//! Inside a transaction, `set`, `set_many`, `get`, `get_many`, `get_or_set`, `incr`,
//! `delete`, `delete_many`, `delete_match`, `get_match`, `scan`, `exists`, `expire`,
//! `get_expire` and `get_size` work on the transaction's own writes and deletes over the
//! backend's data: they see what the transaction wrote, hide what it deleted, and fill the
//! rest from the backend. The strategies (`#[cashews::cache]`, `early`, …) use those
//! commands, so their stores join the transaction too.
//!
//! Not transactional, sent straight to the backend and seen by everyone at once: locks
//! (`set_lock`, `unlock`, the `locked` strategy), bit fields (`incr_bits`, `get_bits`, the
//! Bloom strategies), sliding windows (`slice_incr`, the rate limits and circuit breakers),
//! sets (including the tag sets a tagged `set` writes), `ping`, `get_keys_count` (adjusted
//! for the pending writes) and `clear` (which also drops everything pending).
//!
//! # Commit
//!
//! Per backend, the commit sends every pending delete, then every pending write, as one
//! [`Batch`](crate::backend::Batch), each write with its exact remaining TTL (milliseconds);
//! a write whose TTL ran out before the commit is dropped. How atomic that is depends on the
//! backend:
//!
//! | backend | one commit is applied |
//! |---|---|
//! | `mem://` | key by key, in one pass: a reader in another task may see part of a commit while it is applied |
//! | `redis://` (one server), client-side caching | atomically, in one `MULTI`/`EXEC` round trip |
//! | `redis://` cluster | atomically per hash slot; slots one after another |
//! | `disk://` | atomically per shard (one SQLite transaction each); shards one after another |
//!
//! A cache routing keys to several backends commits them one after another: there is no
//! atomicity across backends. In safe mode a backend that fails the commit is logged and its
//! writes dropped; otherwise the commit's error is returned (converted with `E::from`).
//!
//! # Modes
//!
//! - [`TransactionMode::Fast`]: no locks. Two transactions that read, change and write the
//!   same key can lose one update.
//! - [`TransactionMode::Locked`] (the default): before its first write to a key, the
//!   transaction takes the lock `:tx_lock:<key>` on the backend, waiting up to the timeout
//!   (10 s by default), then fails with [`Error::TransactionLocked`] (a likely deadlock, or a
//!   transaction running too long). Reads take no lock. Two locked transactions that write
//!   the same keys therefore run one after the other, across processes.
//! - [`TransactionMode::Serializable`]: like locked, with a single lock per backend,
//!   `:serializable:lock`, taken before the first write: writing transactions run one at a
//!   time.
//!
//! Locks are released at the commit, at a rollback, and when the transaction ends by a panic
//! or a cancellation. [`Cache::set_transaction_options`] changes the defaults of a cache.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::Cache;
use crate::cache::transactions::{self, Open, Unfinished};
use crate::error::{Error, Result};

pub use crate::backend::{TransactionMode, TransactionOptions};

/// A transaction about to start, made by [`Cache::transaction`]: choose its mode and
/// timeout, then [`run`](Self::run) a future inside it. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use cashews::transaction::TransactionMode;
/// let cache = cashews::Cache::new();
/// let tx = cache
///     .transaction()
///     .mode(TransactionMode::Serializable)
///     .timeout(Duration::from_secs(2));
/// assert_eq!(tx.options().mode, TransactionMode::Serializable);
/// assert_eq!(tx.options().timeout, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a transaction does nothing until `run`"]
pub struct Transaction {
    cache: Cache,
    options: TransactionOptions,
}

impl Transaction {
    pub(crate) fn new(cache: &Cache, options: TransactionOptions) -> Self {
        Self {
            cache: cache.clone(),
            options,
        }
    }

    /// With `mode` instead of the cache's default.
    ///
    /// ```
    /// use cashews::transaction::TransactionMode;
    /// let tx = cashews::Cache::new().transaction().mode(TransactionMode::Fast);
    /// assert_eq!(tx.options().mode, TransactionMode::Fast);
    /// ```
    pub fn mode(mut self, mode: TransactionMode) -> Self {
        self.options.mode = mode;
        self
    }

    /// With `timeout` instead of the cache's default: how long a lock is waited for, and how
    /// long a lock taken lives (a zero timeout counts as one millisecond).
    ///
    /// ```
    /// use std::time::Duration;
    /// let tx = cashews::Cache::new().transaction().timeout(Duration::from_millis(500));
    /// assert_eq!(tx.options().timeout, Duration::from_millis(500));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options = self.options.timeout(timeout);
        self
    }

    /// The mode and timeout it will run with.
    ///
    /// ```
    /// let options = cashews::Cache::new().transaction().options();
    /// assert_eq!(options, cashews::transaction::TransactionOptions::default());
    /// ```
    #[must_use]
    pub fn options(&self) -> TransactionOptions {
        self.options
    }

    /// Runs `fut` inside the transaction: commits when it returns `Ok`, rolls back when it
    /// returns `Err`, panics or is dropped. Inside a transaction of the same cache in this
    /// task, runs `fut` inside that one, which this scope neither commits nor rolls back.
    ///
    /// # Errors
    ///
    /// `fut`'s error, after the rollback; or the commit's error (a backend failure outside
    /// safe mode), converted with `E::from`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache
    ///     .transaction()
    ///     .run(async {
    ///         cache.set("a", &1, "1h").await?;
    ///         cache.set("b", &2, "1h").await?;
    ///         Ok::<_, cashews::Error>(())
    ///     })
    ///     .await?;
    /// assert_eq!(cache.get::<u8>("b").await?, Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn run<T, E, F>(self, fut: F) -> std::result::Result<T, E>
    where
        F: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        self.run_with(|_| fut).await
    }

    /// [`run`](Self::run), handing the scope a [`TransactionHandle`] to commit or roll back
    /// before it ends.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let cache = &cache; // borrowed by the scope, moved into it as a reference
    /// cache
    ///     .transaction()
    ///     .run_with(|tx| async move {
    ///         cache.set("draft", "v1", "1h").await?;
    ///         tx.rollback().await?; // forget the draft; the transaction goes on, empty
    ///         assert!(!cache.exists("draft").await?);
    ///         cache.set("final", "v2", "1h").await?;
    ///         Ok::<_, cashews::Error>(())
    ///     })
    ///     .await?;
    /// assert!(!cache.exists("draft").await? && cache.exists("final").await?);
    /// # Ok(()) }
    /// ```
    pub async fn run_with<T, E, F, Fut>(self, scope: F) -> std::result::Result<T, E>
    where
        F: FnOnce(TransactionHandle) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        if let Some(outer) = transactions::current(self.cache.id()) {
            return scope(TransactionHandle { open: outer }).await;
        }
        let open = Arc::new(Open::new(&self.cache, self.options));
        let unfinished = Unfinished::new(&open);
        let handle = TransactionHandle {
            open: Arc::clone(&open),
        };
        let result = transactions::scope(Arc::clone(&open), scope(handle)).await;
        // Tasks that inherited the transaction use the cache directly from now on: nothing
        // they write can land in a transaction nobody commits.
        open.close();
        let ended = match result {
            Ok(value) => open.commit().await.map(|()| value).map_err(E::from),
            Err(error) => {
                open.rollback().await;
                Err(error)
            }
        };
        unfinished.finished();
        ended
    }
}

/// The open transaction, as [`Transaction::run_with`] hands it to its scope: commit or roll
/// back what is pending so far. The transaction goes on after either, empty.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let cache = &cache;
/// cache
///     .transaction()
///     .run_with(|tx| async move {
///         cache.set("step:1", "done", "1h").await?;
///         tx.commit().await?; // visible to everyone from here
///         cache.set("step:2", "done", "1h").await?;
///         Err::<(), _>(cashews::Error::Locked { key: "step:3".into() })
///     })
///     .await
///     .unwrap_err();
/// assert!(cache.exists("step:1").await?);
/// assert!(!cache.exists("step:2").await?); // rolled back with the error
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TransactionHandle {
    open: Arc<Open>,
}

impl TransactionHandle {
    /// Applies what is pending now, as the end of the scope would, and releases the locks.
    ///
    /// # Errors
    ///
    /// A backend's failure to apply its batch (outside safe mode); every backend is tried.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let other = cache.clone();
    /// cache.transaction().run_with(|tx| async move {
    ///     cache.set("k", "v", "1h").await?;
    ///     tx.commit().await?;
    ///     // `other` is used by another task below: it sees the committed value.
    ///     let seen = tokio::spawn(async move { other.exists("k").await }).await.unwrap()?;
    ///     assert!(seen);
    ///     Ok::<_, cashews::Error>(())
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit(&self) -> Result<()> {
        self.open.commit().await
    }

    /// Discards what is pending and releases the locks.
    ///
    /// # Errors
    ///
    /// None today: a lock that cannot be released is logged and expires after the timeout.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let cache = &cache;
    /// cache.transaction().run_with(|tx| async move {
    ///     cache.set("k", "v", "1h").await?;
    ///     tx.rollback().await?;
    ///     assert!(!cache.exists("k").await?);
    ///     Ok::<_, cashews::Error>(())
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback(&self) -> Result<()> {
        self.open.rollback().await;
        Ok(())
    }

    /// The mode and timeout of the transaction (the outer one's, in a nested scope).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// use cashews::transaction::TransactionMode;
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let mode = cache.transaction().mode(TransactionMode::Fast).run_with(|tx| async move {
    ///     Ok::<_, cashews::Error>(tx.options().mode)
    /// }).await?;
    /// assert_eq!(mode, TransactionMode::Fast);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn options(&self) -> TransactionOptions {
        self.open.options()
    }
}
