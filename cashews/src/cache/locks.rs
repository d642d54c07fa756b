//! Locks: guards that wait, try or give up, and the raw `set_lock` / `unlock` primitives.

use std::time::Duration;

use super::{Cache, new_token};
use crate::command::Command;
use crate::error::{Error, Result, shorten};
use crate::lock::{Interest, LockGuard, LockWaiter, Slots};
use crate::ttl::IntoTtl;

impl Cache {
    // ----- locks -----------------------------------------------------------------------------

    /// Takes the lock `key` for `ttl`, waiting as long as someone else holds it.
    ///
    /// A TTL of "no expiry" means 60 seconds: a lock always expires, so a crashed holder
    /// cannot keep it forever.
    ///
    /// # Concurrent calls
    ///
    /// Waiters do not poll. A lock held in this process (through this `Cache` or a clone of
    /// it) wakes its waiters when its guard releases it, or when its TTL lapses; they then
    /// race for it, and one wins. A lock held by another process (or another `Cache` handle
    /// on the same backend) cannot signal its release in-process: without a release feed its
    /// waiters sleep until its remaining TTL, at most a backoff that starts at 2 ms and
    /// doubles up to 250 ms, and try again.
    /// Each attempt is one `set_lock`, plus a `ping` when it fails (which tells a held lock
    /// from a backend that is down). On Redis, releases by other processes are heard too:
    /// `unlock` publishes the key, and the first waiter for a holder elsewhere subscribes (one
    /// pub/sub connection per backend, closed with the `Cache`); while subscribed, waiters
    /// sleep until the release, the lock's TTL, or at most 2 s (for releases nobody
    /// announces), instead of backing off.
    ///
    /// Locks are not re-entrant: a task that takes a lock it already holds waits for its own
    /// release, until the TTL lapses.
    ///
    /// # Safe mode and disabled caches
    ///
    /// When the backend is disabled, or down in safe mode, the guard is
    /// [degraded](LockGuard::is_degraded): the caller runs without the lock.
    ///
    /// # Cancellation
    ///
    /// Dropping the future while waiting takes nothing; dropping the guard releases the lock.
    ///
    /// # Errors
    ///
    /// A bad TTL or key; a backend failure outside safe mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let guard = cache.lock("job:42", "10s").await?;
    /// assert!(cache.try_lock("job:42", "10s").await.is_err());
    /// drop(guard);
    /// # Ok(()) }
    /// ```
    pub async fn lock(&self, key: &str, ttl: impl IntoTtl) -> Result<LockGuard> {
        self.lock_inner(key, ttl.into_ttl()?, None).await
    }

    /// Takes the lock `key` for `ttl`, waiting at most `wait` (zero: do not wait, as
    /// [`Cache::try_lock`]).
    ///
    /// Waiters are woken, not polling, as described on [`Cache::lock`]; when `wait` runs out
    /// the lock is tried once more before giving up.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] when `wait` runs out; otherwise as [`Cache::lock`].
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let _held = cache.lock("job", "10s").await?;
    /// let err = cache.lock_wait("job", "10s", Duration::from_millis(20)).await.unwrap_err();
    /// assert!(err.is_refusal());
    /// # Ok(()) }
    /// ```
    pub async fn lock_wait(
        &self,
        key: &str,
        ttl: impl IntoTtl,
        wait: Duration,
    ) -> Result<LockGuard> {
        self.lock_inner(key, ttl.into_ttl()?, Some(wait)).await
    }

    /// Takes the lock `key` for `ttl` if it is free, without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] when someone holds it; otherwise as [`Cache::lock`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let guard = cache.try_lock("job", 5).await?;
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn try_lock(&self, key: &str, ttl: impl IntoTtl) -> Result<LockGuard> {
        self.lock_inner(key, ttl.into_ttl()?, Some(Duration::ZERO))
            .await
    }

    async fn lock_inner(
        &self,
        key: &str,
        ttl: crate::Ttl,
        wait: Option<Duration>,
    ) -> Result<LockGuard> {
        let ttl = ttl.duration().unwrap_or(Duration::from_secs(60));
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        let mut waiter = LockWaiter::new(self, key);
        loop {
            if let Some(guard) = waiter.attempt(ttl).await? {
                return Ok(guard);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Err(Error::Locked { key: shorten(key) });
            }
            waiter.wait(deadline).await;
        }
    }

    /// One attempt at the lock `key` for `ttl`: `set_lock`, and on refusal a `ping` to tell a
    /// held lock from a backend that is down or disabled (then the guard is degraded, as in
    /// Python cashews). `None` when someone else holds the lock.
    pub(crate) async fn lock_attempt(
        &self,
        key: &str,
        ttl: Duration,
        interest: &Interest,
    ) -> Result<Option<LockGuard>> {
        let token = new_token();
        let degraded = || LockGuard::new(self.clone(), key.to_owned(), token.clone(), None);
        let Some(route) = self.enter_owned(key, Command::SetLock)? else {
            return Ok(Some(degraded()));
        };
        match route.backend.set_lock(key, &token, ttl).await {
            Ok(true) => {
                let held = Some((interest.share(), ttl));
                return Ok(Some(LockGuard::new(
                    self.clone(),
                    key.to_owned(),
                    token.clone(),
                    held,
                )));
            }
            Ok(false) => {}
            Err(error) if route.suppress && error.is_backend() => {
                crate::error::log_swallowed!(error, backend = route.name(), %key, %error, "lock backend failed; safe mode runs without the lock");
                return Ok(Some(degraded()));
            }
            Err(error) => return Err(error),
        }
        if let Err(error) = route.backend.ping(b"LOCK").await {
            if route.suppress {
                crate::error::log_swallowed!(error, backend = route.name(), %key, %error, "lock backend is down; safe mode runs without the lock");
                return Ok(Some(degraded()));
            }
            return Err(error);
        }
        Ok(None)
    }

    /// Whether releases of `key` by other processes are heard right now: its backend has a
    /// release feed and the feed is live (opened on the first call; see `crate::lock`).
    pub(crate) fn hears_releases(&self, key: &str) -> bool {
        let Ok(route) = self.route_for(key) else {
            return false;
        };
        // The backend's identity: its address, shared by every route using it. A backend
        // with no release feed (in-process ones: this cache's own releases already wake its
        // waiters) hears none.
        let id = route.backend_id();
        self.extension::<Slots>()
            .hears_releases(id, || route.backend.lock_releases())
    }

    /// Stores `token` at `key` with `ttl` if the key is absent (the lock primitive).
    ///
    /// # Errors
    ///
    /// As [`Cache::set`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(cache.set_lock("lock", "me", 10).await?);
    /// assert!(!cache.set_lock("lock", "you", 10).await?);
    /// # Ok(()) }
    /// ```
    pub async fn set_lock(&self, key: &str, token: &str, ttl: impl IntoTtl) -> Result<bool> {
        let ttl = ttl
            .into_ttl()?
            .duration()
            .unwrap_or(Duration::from_secs(60));
        self.keyed(Command::SetLock, key, |route| async move {
            route.backend.set_lock(key, token, ttl).await
        })
        .await
    }

    /// Deletes `key` only if it holds `token` (compare and delete); returns whether it did.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set_lock("lock", "me", 10).await?;
    /// assert!(!cache.unlock("lock", "you").await?);
    /// assert!(cache.unlock("lock", "me").await?);
    /// # Ok(()) }
    /// ```
    pub async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let unlocked = self
            .keyed(Command::Unlock, key, |route| async move {
                route.backend.unlock(key, token).await
            })
            .await;
        // Waiters of this process look again, whatever the answer: a wasted look is cheap,
        // a missed release is not.
        self.extension::<Slots>().signal_released(key);
        unlocked
    }

    /// Whether the lock `key` is held.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(!cache.is_locked("nolock").await?);
    /// # Ok(()) }
    /// ```
    pub async fn is_locked(&self, key: &str) -> Result<bool> {
        self.keyed(Command::IsLocked, key, |route| async move {
            route.backend.exists(key).await
        })
        .await
    }

    /// Waits up to `wait` for the lock `key` to be released; returns whether it is still held.
    ///
    /// Wakes when a holder in this process releases the lock or its TTL lapses; a lock held
    /// elsewhere is looked at again after its remaining TTL or a backoff (see [`Cache::lock`]).
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(!cache.is_locked_wait("nolock", Duration::from_millis(200)).await?);
    /// # Ok(()) }
    /// ```
    pub async fn is_locked_wait(&self, key: &str, wait: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut waiter = LockWaiter::new(self, key);
        loop {
            waiter.arm();
            if !self.is_locked(key).await? {
                return Ok(false);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(true);
            }
            waiter.wait(Some(deadline)).await;
        }
    }
}
