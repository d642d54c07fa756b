//! [`LockGuard`]: a distributed lock held on a cache backend, released on drop or explicitly.

use std::time::Duration;

use crate::cache::Cache;
use crate::error::Result;

/// A held lock: a random token stored at the lock key with a TTL.
///
/// Released by [`LockGuard::release`], or on drop (in a background task on the current Tokio
/// runtime). Release is compare-and-delete: it never frees a lock that expired and was taken
/// by someone else. When the backend is down (safe mode) or disabled, the guard is *degraded*:
/// the caller runs without a lock, as Python cashews does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let guard = cache.lock("job:42", "10s").await?;
/// assert!(cache.is_locked("job:42").await?);
/// guard.release().await?;
/// assert!(!cache.is_locked("job:42").await?);
/// # Ok(()) }
/// ```
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    cache: Cache,
    key: String,
    token: String,
    degraded: bool,
    released: bool,
}

impl LockGuard {
    pub(crate) fn new(cache: Cache, key: String, token: String, degraded: bool) -> Self {
        Self {
            cache,
            key,
            token,
            degraded,
            released: false,
        }
    }

    /// The lock key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert_eq!(guard.key(), "job");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The random token stored at the key while the lock is held.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert_eq!(guard.token().len(), 32);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the lock could not be taken because the backend is down or disabled, so the
    /// holder runs without mutual exclusion.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// assert!(!cache.lock("job", 5).await?.is_degraded());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// Extends the lock's TTL, if it is still ours. Returns whether it was.
    ///
    /// # Errors
    ///
    /// Backend failures (outside safe mode).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert!(guard.extend("1m").await?);
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self, ttl: impl crate::IntoTtl) -> Result<bool> {
        if self.degraded {
            return Ok(false);
        }
        let ttl = ttl
            .into_ttl()?
            .duration()
            .unwrap_or(Duration::from_secs(60));
        let held: Option<bytes::Bytes> = self.cache.get_raw(&self.key).await?;
        if held.as_deref() != Some(self.token.as_bytes()) {
            return Ok(false);
        }
        self.cache.expire(&self.key, ttl).await
    }

    /// Releases the lock now; returns whether it was still held by this guard.
    ///
    /// # Errors
    ///
    /// Backend failures (outside safe mode).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert!(guard.release().await?);
    /// # Ok(()) }
    /// ```
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        if self.degraded {
            return Ok(false);
        }
        self.cache.unlock(&self.key, &self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released || self.degraded {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, "lock guard dropped outside a Tokio runtime: the lock is freed by its TTL");
            return;
        };
        let cache = self.cache.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        runtime.spawn(async move {
            if let Err(error) = cache.unlock(&key, &token).await {
                tracing::error!(%key, %error, "releasing a dropped lock failed: it is freed by its TTL");
            }
        });
    }
}
