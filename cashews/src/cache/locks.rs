//! Locks: guards that wait, try or give up, and the raw `set_lock` / `unlock` primitives.

use std::time::Duration;

use super::router::Engine;
use super::{Cache, new_token};
use crate::backend::Backend;
use crate::command::Command;
use crate::error::{Error, Result, shorten};
use crate::lock::LockGuard;
use crate::ttl::IntoTtl;

impl Cache {
    // ----- locks -----------------------------------------------------------------------------

    /// Takes the lock `key` for `ttl`, waiting (with backoff) while someone else holds it.
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

    /// Takes the lock `key` for `ttl`, waiting at most `wait`.
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
        let token = new_token();
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        let mut pause = Duration::from_millis(2);
        loop {
            let route = self.route_for(key)?;
            Self::check_key(&route, key)?;
            if self.is_off(&route, Command::SetLock) {
                return Ok(LockGuard::new(self.clone(), key.to_owned(), token, true));
            }
            match call!(route, set_lock(key, &token, ttl)) {
                Ok(true) => return Ok(LockGuard::new(self.clone(), key.to_owned(), token, false)),
                Ok(false) => {}
                Err(error) if route.suppress && error.is_backend() => {
                    tracing::error!(backend = route.name(), %key, %error, "lock backend failed; safe mode runs without the lock");
                    return Ok(LockGuard::new(self.clone(), key.to_owned(), token, true));
                }
                Err(error) => return Err(error),
            }
            if let Err(error) = call!(route, ping(b"LOCK")) {
                if route.suppress {
                    tracing::error!(backend = route.name(), %key, %error, "lock backend is down; safe mode runs without the lock");
                    return Ok(LockGuard::new(self.clone(), key.to_owned(), token, true));
                }
                return Err(error);
            }
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Locked { key: shorten(key) });
            }
            let sleep = deadline.map_or(pause, |d| pause.min(d - now));
            tokio::time::sleep(sleep).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
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
            call!(route, set_lock(key, token, ttl))
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
        self.keyed(Command::Unlock, key, |route| async move {
            call!(route, unlock(key, token))
        })
        .await
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
            call!(route, exists(key))
        })
        .await
    }

    /// Waits up to `wait` for the lock `key` to be released; returns whether it is still held.
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
        let mut pause = Duration::from_millis(2);
        loop {
            if !self.is_locked(key).await? {
                return Ok(false);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(true);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
