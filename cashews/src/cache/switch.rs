//! Switching commands off and on: globally, per backend, or for one task.

use std::future::Future;

use super::route::{ALL_COMMANDS, Route};
use super::{Cache, control, mask_of};
use crate::command::Command;
use crate::error::Result;

impl Cache {
    /// Disables commands on every backend, for every task, until [`Cache::enable`]. An empty
    /// list disables everything. Disabled reads miss; disabled writes do nothing.
    ///
    /// Calling it on an unconfigured cache does nothing.
    ///
    /// ```
    /// use cashews::Command;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", &10, 60).await?;
    /// cache.disable(&[Command::Incr]);
    /// assert_eq!(cache.incr("k").await?, 0); // disabled: nothing happens
    /// cache.enable(&[Command::Incr]);
    /// assert_eq!(cache.incr("k").await?, 11);
    /// # Ok(()) }
    /// ```
    pub fn disable(&self, commands: &[Command]) {
        for route in self.router().routes() {
            route.disable(mask_of(commands));
        }
    }

    /// Re-enables commands on every backend; an empty list enables everything.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("://")?; // starts disabled
    /// cache.enable(&[]);
    /// assert!(!cache.is_disabled(&[]));
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn enable(&self, commands: &[Command]) {
        for route in self.router().routes() {
            route.enable(mask_of(commands));
        }
    }

    /// Disables commands on the backend that serves `prefix` only.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`](crate::Error::NotConfigured)(crate::Error::NotConfigured) when no backend serves `prefix`.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.setup_prefix("-", "mem://")?;
    /// cache.disable_prefix("-", &[])?;
    /// assert!(cache.is_disabled_prefix("-", &[])?);
    /// assert!(!cache.is_disabled_prefix("", &[])?);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn disable_prefix(&self, prefix: &str, commands: &[Command]) -> Result<()> {
        self.route_for(prefix)?.disable(mask_of(commands));
        Ok(())
    }

    /// Re-enables commands on the backend that serves `prefix` only.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`](crate::Error::NotConfigured)(crate::Error::NotConfigured) when no backend serves `prefix`.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup_prefix("-", "://")?;
    /// cache.enable_prefix("-", &[])?;
    /// assert!(!cache.is_disabled_prefix("-", &[])?);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn enable_prefix(&self, prefix: &str, commands: &[Command]) -> Result<()> {
        self.route_for(prefix)?.enable(mask_of(commands));
        Ok(())
    }

    /// Whether any of `commands` (any command, for an empty list) is disabled on any backend,
    /// counting the current task's [`Cache::disabling`] scopes.
    ///
    /// ```
    /// use cashews::Command;
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.disable(&[Command::Get]);
    /// assert!(cache.is_disabled(&[]) && cache.is_disabled(&[Command::Get]));
    /// assert!(!cache.is_disabled(&[Command::Set]));
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn is_disabled(&self, commands: &[Command]) -> bool {
        let scoped = control::scoped_mask(self.inner.id);
        self.router()
            .routes()
            .iter()
            .any(|r| (r.disabled_mask() | scoped) & mask_of(commands) != 0)
    }

    /// Whether any of `commands` is disabled on the backend serving `prefix`.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`](crate::Error::NotConfigured)(crate::Error::NotConfigured) when no backend serves `prefix`.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://?disable=1")?;
    /// assert!(cache.is_disabled_prefix("", &[])?);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn is_disabled_prefix(&self, prefix: &str, commands: &[Command]) -> Result<bool> {
        let route = self.route_for(prefix)?;
        Ok(self.is_off_mask(&route, mask_of(commands)))
    }

    fn is_off_mask(&self, route: &Route, mask: u32) -> bool {
        (route.disabled_mask() | control::scoped_mask(self.inner.id)) & mask != 0
    }

    /// Whether every command is disabled on every backend (then strategies call the function
    /// directly). False for an unconfigured cache.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.disable(&[]);
    /// assert!(cache.is_full_disabled());
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn is_full_disabled(&self) -> bool {
        let router = self.router();
        let scoped = control::scoped_mask(self.inner.id);
        !router.is_empty()
            && router
                .routes()
                .iter()
                .all(|r| (r.disabled_mask() | scoped) & ALL_COMMANDS == ALL_COMMANDS)
    }

    /// Runs `fut` with `commands` (all, for an empty list) disabled for this cache in the
    /// current task only; other tasks and the caller after `fut` completes are unaffected.
    /// Scopes nest. Tasks started with `tokio::spawn` inside do not inherit the scope (Tokio
    /// task-locals are not inherited); tasks started with [`cashews::spawn`](crate::spawn) do.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", 60).await?;
    /// let inside = cache.disabling(&[], async { cache.get::<String>("k").await }).await?;
    /// assert_eq!(inside, None);
    /// assert_eq!(cache.get::<String>("k").await?.as_deref(), Some("v"));
    /// # Ok(()) }
    /// ```
    pub async fn disabling<F: Future>(&self, commands: &[Command], fut: F) -> F::Output {
        control::disabling(self.inner.id, mask_of(commands), fut).await
    }
}
