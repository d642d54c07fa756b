//! Whole-cache commands: `ping`, `clear`, `get_keys_count`, and `get_size`.

use bytes::Bytes;

use super::Cache;
use crate::backend::BackendHealth;
use crate::command::Command;
use crate::error::Result;

impl Cache {
    // ----- admin ---------------------------------------------------------------------------------

    /// Checks that every backend answers; returns `PONG`. Never swallowed by safe mode: this is
    /// how callers (and locks) learn that a backend is down.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`](crate::Error::NotConfigured)(crate::Error::NotConfigured), or the first backend failure.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(&cache.ping().await?[..], b"PONG");
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self) -> Result<Bytes> {
        self.ping_message(b"PING").await
    }

    /// Pings every backend with `message`; returns the echo (`PONG` for `PING`).
    ///
    /// # Errors
    ///
    /// As [`Cache::ping`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(&cache.ping_message(b"hi").await?[..], b"hi");
    /// # Ok(()) }
    /// ```
    pub async fn ping_message(&self, message: &[u8]) -> Result<Bytes> {
        let router = self.router();
        if router.is_empty() {
            return Err(Self::not_configured(&router, ""));
        }
        let mut reply = Bytes::new();
        for route in router.routes() {
            reply = route.backend.ping(message).await?;
        }
        Ok(reply)
    }

    /// The health of the backend that serves `key` (`""` for the default one), for backends
    /// that track it (Redis: whether it is marked down, and its connection counters); `None`
    /// for the others. Reads a few counters: no command is sent.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`](crate::Error::NotConfigured) when no backend serves `key`.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(cache.health("")?.is_none()); // memory is always there
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn health(&self, key: &str) -> Result<Option<BackendHealth>> {
        let route = self.route_for(key)?;
        Ok(route.backend.health())
    }

    /// Removes every key of every backend.
    ///
    /// # Errors
    ///
    /// The first backend failure outside safe mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", 60).await?;
    /// cache.clear().await?;
    /// assert_eq!(cache.get_keys_count().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn clear(&self) -> Result<()> {
        for route in self.router().routes() {
            if self.is_off(route, Command::Clear) {
                continue;
            }
            let result = route.backend.clear().await;
            Self::settle(route, Command::Clear, "", result)?;
        }
        Ok(())
    }

    /// The number of keys over every backend (a backend may count expired keys not yet
    /// purged, as Redis `DBSIZE` does).
    ///
    /// # Errors
    ///
    /// The first backend failure outside safe mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", 60).await?;
    /// assert_eq!(cache.get_keys_count().await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn get_keys_count(&self) -> Result<u64> {
        let mut total = 0;
        for route in self.router().routes() {
            if self.is_off(route, Command::GetKeysCount) {
                continue;
            }
            let result = route.backend.keys_count().await;
            total += Self::settle(route, Command::GetKeysCount, "", result)?;
        }
        Ok(total)
    }

    /// Approximate bytes used by one key (0 when missing), or `None` when the backend cannot
    /// tell.
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
    /// cache.set("k", "v", 60).await?;
    /// assert!(cache.get_size("k").await?.unwrap() > 0);
    /// # Ok(()) }
    /// ```
    pub async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.keyed(Command::GetSize, key, |route| async move {
            route.backend.get_size(key).await
        })
        .await
    }
}
