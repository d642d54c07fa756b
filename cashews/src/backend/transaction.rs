//! Transactions at the backend level: [`Transactional`], a backend wrapper that keeps a
//! transaction's writes and deletes to itself until [`Transactional::commit`].
//!
//! Every command sent through a `Transactional` sees the transaction's own writes and deletes
//! over the backend's data (a merged view); nothing reaches the backend until the commit,
//! which sends every pending delete and write in one [`Batch`] ([`Backend::apply`]: atomic on
//! a single Redis server, per slot on a cluster, per shard on disk). A rollback, or dropping
//! the wrapper, discards them.
//!
//! # Commands
//!
//! | command | inside the transaction |
//! | --- | --- |
//! | `set`, `set_many`, `apply` | pending writes (a write after a delete revives the key); a [`Condition`] is checked against the pending writes first, then the backend |
//! | `incr` | on the pending value; a key not touched yet first takes the backend's value and TTL (or starts from 0); after a delete it starts from 0 |
//! | `delete`, `delete_many` | pending deletes; they answer whether the key existed in the merged view (one `exists` on the backend per key not touched yet) |
//! | `delete_match` | deletes the pending writes matching, and every backend key a scan finds |
//! | `expire` | on the pending value; a key not touched yet is copied from the backend with the new TTL; deleted keys stay deleted (`false`); `None` persists |
//! | `get`, `get_many`, `exists`, `get_expire`, `scan`, `get_size` | the merged view: deleted keys are absent, pending values win, the backend fills the gaps |
//! | `keys_count` | the backend's count, adjusted for pending writes and deletes (one `exists` per pending key) |
//! | `clear` | **not transactional**: clears the backend at once, and drops every pending write and delete |
//! | locks, bits, windows, sets, `ping` | **not transactional**: sent straight to the backend, and seen at once by the transaction too (a key the transaction deleted and such a command creates again is the backend's again). `set_lock` on a key holding a pending value answers `false` (taken); `set_add`, `set_remove`, `set_pop`, `slice_incr` and `slice_incr_now` on it fail with [`Error::WrongType`](crate::Error::WrongType), as the backend would once the value is committed |
//!
//! Pending values expire on the transaction's [`Clock`] (give the clock the backend reads,
//! e.g. a memory backend's manual clock in tests), and the commit writes each one with its
//! exact remaining TTL, in milliseconds. A value whose TTL ran out before the commit is
//! deleted, not written. The wrapper declares no [local tier](Backend::local_tier): inside a
//! transaction, every command takes the async path.
//!
//! # Modes
//!
//! - [`TransactionMode::Fast`]: no locks. Two transactions that read, change and write the
//!   same key can lose one of the updates.
//! - [`TransactionMode::Locked`] (the default): before the first write to a key, the
//!   transaction takes the lock `:tx_lock:<key>` ([`crate::key::tx_lock_key`]) on the backend,
//!   with the transaction's id as token and its timeout as TTL, and waits for it up to the
//!   timeout; then the command fails with
//!   [`Error::TransactionLocked`](crate::Error::TransactionLocked). Reads take no lock.
//! - [`TransactionMode::Serializable`]: like locked, with one lock for the whole backend,
//!   [`SERIALIZABLE_LOCK_KEY`](crate::key::SERIALIZABLE_LOCK_KEY), taken before the first
//!   write.
//!
//! Waiting for a lock wakes on the backend's [lock release feed](Backend::lock_releases)
//! when it has one (Redis), and polls every 100 ms otherwise. Locks are released by
//! [`Transactional::commit`] and [`Transactional::rollback`].
//!
//! # Cancellation and panics
//!
//! Dropping the last clone of a `Transactional` (a cancelled task, a panic) discards what is
//! pending, so nothing is committed. Locks it still holds are released by a task spawned on
//! the current Tokio runtime; without a runtime they expire after the transaction's timeout.
//!
//! ```
//! use std::time::Duration;
//! use cashews::{Clock, MemoryBackend};
//! use cashews::backend::{Backend, SetOptions, TransactionOptions, Transactional};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! let mem = MemoryBackend::new(Default::default());
//! mem.set("stock", "10".into(), SetOptions::default()).await?;
//!
//! let tx = Transactional::new(mem.clone(), Clock::system(), TransactionOptions::default());
//! assert_eq!(tx.incr("stock", -3, None).await?, 7);
//! tx.set("order:1", "3 items".into(), SetOptions::ttl(Some(Duration::from_secs(60)))).await?;
//! // Outside the transaction, nothing has changed yet.
//! assert_eq!(mem.get("stock").await?.as_deref(), Some(&b"10"[..]));
//! assert!(!mem.exists("order:1").await?);
//!
//! tx.commit().await?;
//! assert_eq!(mem.get("stock").await?.as_deref(), Some(&b"7"[..]));
//! assert!(mem.exists("order:1").await?);
//! # Ok(()) }
//! ```

mod commands;
mod locks;
mod overlay;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

#[cfg(doc)]
use super::Condition;
use super::{Backend, Batch, DynBackend};
use crate::clock::Clock;
use crate::error::Result;
use overlay::Overlay;

/// How a transaction protects its writes from other transactions. See the
/// [module docs](self#modes).
///
/// ```
/// use cashews::backend::TransactionMode;
/// assert_eq!(TransactionMode::default(), TransactionMode::Locked);
/// assert_eq!(TransactionMode::parse("serializable"), Some(TransactionMode::Serializable));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TransactionMode {
    /// No locks: lost updates are possible.
    Fast,
    /// A lock per written key (`:tx_lock:<key>`), taken before the first write to it.
    #[default]
    Locked,
    /// One lock for the whole backend (`:serializable:lock`), taken before the first write.
    Serializable,
}

impl TransactionMode {
    /// Parses `fast`, `locked` or `serializable` (case-insensitive).
    ///
    /// ```
    /// use cashews::backend::TransactionMode;
    /// assert_eq!(TransactionMode::parse("FAST"), Some(TransactionMode::Fast));
    /// assert_eq!(TransactionMode::parse("eventual"), None);
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "fast" => Some(Self::Fast),
            "locked" => Some(Self::Locked),
            "serializable" => Some(Self::Serializable),
            _ => None,
        }
    }

    /// The mode's name, as [`TransactionMode::parse`] reads it.
    ///
    /// ```
    /// assert_eq!(cashews::backend::TransactionMode::Locked.as_str(), "locked");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Locked => "locked",
            Self::Serializable => "serializable",
        }
    }
}

/// A transaction's mode and timeout (how long it waits for a lock, and how long its locks
/// live). Defaults: [`TransactionMode::Locked`], 10 seconds.
///
/// ```
/// use std::time::Duration;
/// use cashews::backend::{TransactionMode, TransactionOptions};
/// let options = TransactionOptions::new(TransactionMode::Fast).timeout(Duration::from_secs(2));
/// assert_eq!(options.mode, TransactionMode::Fast);
/// assert_eq!(options.timeout, Duration::from_secs(2));
/// assert_eq!(TransactionOptions::default().timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TransactionOptions {
    /// How writes are protected from other transactions.
    pub mode: TransactionMode,
    /// How long a lock is waited for, and how long a lock taken lives.
    pub timeout: Duration,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        Self::new(TransactionMode::Locked)
    }
}

impl TransactionOptions {
    /// The default timeout: 10 seconds.
    ///
    /// ```
    /// assert_eq!(cashews::backend::TransactionOptions::DEFAULT_TIMEOUT.as_secs(), 10);
    /// ```
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Options with this mode and the default timeout.
    ///
    /// ```
    /// use cashews::backend::{TransactionMode, TransactionOptions};
    /// assert_eq!(TransactionOptions::new(TransactionMode::Fast).mode, TransactionMode::Fast);
    /// ```
    #[must_use]
    pub const fn new(mode: TransactionMode) -> Self {
        Self {
            mode,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The same options with another timeout (a zero timeout is raised to one millisecond:
    /// a lock must live a little).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::backend::TransactionOptions;
    /// let options = TransactionOptions::default().timeout(Duration::ZERO);
    /// assert_eq!(options.timeout, Duration::from_millis(1));
    /// ```
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = if timeout.is_zero() {
            Duration::from_millis(1)
        } else {
            timeout
        };
        self
    }
}

/// A backend seen through an open transaction: reads see the transaction's own writes and
/// deletes, [`commit`](Self::commit) applies them to the backend in one [`Batch`],
/// [`rollback`](Self::rollback) discards them. See the [module docs](self) for what each
/// command does and which are not transactional.
///
/// Cheap to clone: clones share the transaction (tasks a transaction spawns use clones).
///
/// ```
/// use cashews::{Clock, MemoryBackend};
/// use cashews::backend::{Backend, SetOptions, TransactionMode, TransactionOptions, Transactional};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let mem = MemoryBackend::new(Default::default());
/// mem.set("k", "before".into(), SetOptions::default()).await?;
/// let tx = Transactional::new(mem.clone(), Clock::system(), TransactionOptions::new(TransactionMode::Fast));
/// tx.delete("k").await?;
/// assert!(!tx.exists("k").await?);
/// tx.rollback().await?;
/// assert_eq!(mem.get("k").await?.as_deref(), Some(&b"before"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Transactional {
    shared: Arc<Shared>,
}

/// One transaction's state, shared by the clones of its [`Transactional`].
struct Shared {
    backend: Arc<dyn DynBackend>,
    name: &'static str,
    clock: Clock,
    options: TransactionOptions,
    /// The token of every lock the transaction takes.
    id: String,
    /// Short, synchronous sections only: never held across an await.
    overlay: Mutex<Overlay>,
    /// Lock keys the transaction may hold (`true` once the backend confirmed): every one of
    /// them is released at the end, even one whose `set_lock` reply was lost.
    held: Mutex<HashMap<String, bool>>,
    /// Serializes lock taking within the transaction, so that two of its tasks writing the
    /// same key wait for one `set_lock`, not for each other.
    acquiring: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Transactional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactional")
            .field("backend", &self.shared.name)
            .field("id", &self.shared.id)
            .field("mode", &self.shared.options.mode)
            .field("timeout", &self.shared.options.timeout)
            .finish_non_exhaustive()
    }
}

impl Transactional {
    /// Opens a transaction over `backend`. Pending values expire on `clock`: give the clock
    /// the backend reads (the system clock for Redis and disk, a memory backend's own clock).
    ///
    /// ```
    /// use cashews::{Clock, MemoryBackend, backend::{TransactionOptions, Transactional}};
    /// let clock = Clock::manual();
    /// let mem = MemoryBackend::with_clock(Default::default(), clock.clone());
    /// let tx = Transactional::new(mem, clock, TransactionOptions::default());
    /// assert_eq!(tx.id().len(), 32);
    /// ```
    #[must_use]
    pub fn new<B: Backend>(backend: B, clock: Clock, options: TransactionOptions) -> Self {
        let name = backend.name();
        Self::over(Arc::new(backend), name, clock, options)
    }

    /// Opens a transaction over a route's backend object (what a cache holds per route).
    pub(crate) fn over(
        backend: Arc<dyn DynBackend>,
        name: &'static str,
        clock: Clock,
        options: TransactionOptions,
    ) -> Self {
        let id: [u8; 16] = rand::random();
        Self {
            shared: Arc::new(Shared {
                backend,
                name,
                clock,
                options,
                id: hex::encode(id),
                overlay: Mutex::new(Overlay::default()),
                held: Mutex::new(HashMap::new()),
                acquiring: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The transaction's id: the token of the locks it takes (32 hex digits).
    ///
    /// ```
    /// # use cashews::{Clock, MemoryBackend, backend::{TransactionOptions, Transactional}};
    /// let tx = Transactional::new(MemoryBackend::new(Default::default()), Clock::system(), TransactionOptions::default());
    /// assert!(tx.id().chars().all(|c| c.is_ascii_hexdigit()));
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The transaction's mode and timeout.
    ///
    /// ```
    /// # use cashews::{Clock, MemoryBackend, backend::{TransactionMode, TransactionOptions, Transactional}};
    /// let options = TransactionOptions::new(TransactionMode::Serializable);
    /// let tx = Transactional::new(MemoryBackend::new(Default::default()), Clock::system(), options);
    /// assert_eq!(tx.options().mode, TransactionMode::Serializable);
    /// ```
    #[must_use]
    pub fn options(&self) -> TransactionOptions {
        self.shared.options
    }

    /// Whether no write or delete is pending.
    ///
    /// ```
    /// # use cashews::{Clock, MemoryBackend, backend::{TransactionOptions, Transactional}};
    /// let tx = Transactional::new(MemoryBackend::new(Default::default()), Clock::system(), TransactionOptions::default());
    /// assert!(tx.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shared.overlay.lock().is_empty()
    }

    /// The batch a commit now would apply: every pending delete, and every pending write with
    /// its remaining TTL (writes whose TTL ran out become deletes).
    ///
    /// ```
    /// # use cashews::{Clock, MemoryBackend, backend::{Backend, TransactionMode, TransactionOptions, Transactional}};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let options = TransactionOptions::new(TransactionMode::Fast);
    /// let tx = Transactional::new(MemoryBackend::new(Default::default()), Clock::system(), options);
    /// tx.delete("gone").await?;
    /// assert_eq!(tx.pending().deletes(), ["gone"]);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn pending(&self) -> Batch {
        let overlay = self.shared.overlay.lock();
        overlay.clone().into_batch(self.shared.clock.now())
    }

    /// Applies every pending delete and write to the backend in one [`Batch`]
    /// ([`Backend::apply`]), then releases the transaction's locks. The transaction stays
    /// usable, empty, for further commands.
    ///
    /// # Errors
    ///
    /// The backend's error from `apply`. What was pending is discarded and the locks released
    /// either way; what reached the backend depends on its atomicity (see [`Backend::apply`]).
    ///
    /// ```
    /// # use cashews::{Clock, MemoryBackend, backend::{Backend, SetOptions, TransactionOptions, Transactional}};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let mem = MemoryBackend::new(Default::default());
    /// let tx = Transactional::new(mem.clone(), Clock::system(), TransactionOptions::default());
    /// tx.set("k", "v".into(), SetOptions::default()).await?;
    /// tx.commit().await?;
    /// assert!(mem.exists("k").await?);
    /// assert!(!mem.exists(&cashews::key::tx_lock_key("k")).await?, "the lock is released");
    /// # Ok(()) }
    /// ```
    pub async fn commit(&self) -> Result<()> {
        let batch = {
            let mut overlay = self.shared.overlay.lock();
            std::mem::take(&mut *overlay).into_batch(self.shared.clock.now())
        };
        let applied = if batch.is_empty() {
            Ok(())
        } else {
            self.shared.backend.apply(&batch).await
        };
        self.release().await;
        applied
    }

    /// Discards every pending delete and write, and releases the transaction's locks. The
    /// transaction stays usable, empty.
    ///
    /// # Errors
    ///
    /// None today: a lock that cannot be released is logged and expires after the timeout.
    ///
    /// ```
    /// # use cashews::{Clock, MemoryBackend, backend::{Backend, SetOptions, TransactionOptions, Transactional}};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let mem = MemoryBackend::new(Default::default());
    /// let tx = Transactional::new(mem.clone(), Clock::system(), TransactionOptions::default());
    /// tx.set("k", "v".into(), SetOptions::default()).await?;
    /// tx.rollback().await?;
    /// assert!(!mem.exists("k").await?);
    /// assert!(tx.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn rollback(&self) -> Result<()> {
        *self.shared.overlay.lock() = Overlay::default();
        self.release().await;
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let held: Vec<String> = self.held.get_mut().drain().map(|(key, _)| key).collect();
        if held.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let backend = Arc::clone(&self.backend);
                let id = std::mem::take(&mut self.id);
                runtime.spawn(async move {
                    locks::unlock_all(&*backend, &held, &id).await;
                });
            }
            Err(_) => tracing::warn!(
                locks = held.len(),
                "a transaction was dropped outside a Tokio runtime: its locks expire after its timeout"
            ),
        }
    }
}
