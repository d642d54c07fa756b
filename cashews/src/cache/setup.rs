//! Configuring a [`Cache`]: setup by URL, typed config or custom backend; close.

use std::sync::Arc;

use super::Cache;
use super::route::Route;
use crate::MemoryBackend;
use crate::backend::{Backend, LocalTier};
use crate::config::{BackendConfig, CacheConfig};
use crate::error::Result;
use crate::middleware::Stage;

impl Cache {
    // ----- setup ---------------------------------------------------------------------------

    /// Configures the default backend (prefix `""`, every key) from a URL such as `mem://`,
    /// `mem://?size=10000` or `://` (a disabled memory cache). See [`crate::config`] for
    /// every option. Replaces a previous default backend.
    ///
    /// Does not connect: network backends connect on first use.
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad part of the URL and what is accepted.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://?size=100")?;
    /// let err = cache.setup("mem://?size=lots").unwrap_err();
    /// assert!(err.to_string().contains("size"));
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn setup(&self, url: &str) -> Result<()> {
        self.setup_prefix("", url)
    }

    /// Configures a backend for keys starting with `prefix` (longest prefix wins; the prefix
    /// stays part of the stored key).
    ///
    /// A backend this replaces (a second setup of the same prefix) is no longer used: once no
    /// command holds it, it is closed (its connections, tasks and threads are released, and a
    /// memory backend's entries are dropped).
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad part of the URL.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.setup_prefix("user:", "mem://?size=10")?;
    /// cache.set("user:1", "ada", 60).await?;
    /// assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("ada"));
    /// # Ok(()) }
    /// ```
    pub fn setup_prefix(&self, prefix: &str, url: &str) -> Result<()> {
        self.setup_prefix_with(prefix, url, [])
    }

    /// [`Cache::setup`] with a chain of [middlewares and observers](crate::middleware) around
    /// the backend, the first outermost.
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad part of the URL.
    ///
    /// ```
    /// use cashews::middleware;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup_with("mem://", [middleware::add_prefix("svc!"), middleware::size_limit(..=1024)])?;
    /// cache.set("k", "v", "1m").await?;
    /// assert_eq!(cache.get::<String>("k").await?.as_deref(), Some("v"));
    /// # Ok(()) }
    /// ```
    pub fn setup_with(&self, url: &str, stages: impl IntoIterator<Item = Stage>) -> Result<()> {
        self.setup_prefix_with("", url, stages)
    }

    /// [`Cache::setup_prefix`] with a chain of [middlewares and observers](crate::middleware)
    /// around the backend, the first outermost.
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad part of the URL.
    ///
    /// ```
    /// use cashews::middleware;
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.setup_prefix_with("user:", "mem://", [middleware::observe(|e| println!("{e:?}"))])?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn setup_prefix_with(
        &self,
        prefix: &str,
        url: &str,
        stages: impl IntoIterator<Item = Stage>,
    ) -> Result<()> {
        let config = CacheConfig::parse(url)?;
        self.build(prefix, config, stages.into_iter().collect())
    }

    /// Configures the default backend from `url` on a [`Clock`](crate::Clock) of your choice,
    /// usually [`Clock::manual`](crate::Clock::manual) so tests and demos move time instead of
    /// sleeping; the clock also becomes [`Cache::clock`], so time-based strategies see it too.
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad part of the URL; a URL of a backend that keeps time
    /// itself (anything but `mem://`) is refused, as it cannot follow this clock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// use std::time::Duration;
    /// let cache = cashews::Cache::new();
    /// let clock = cashews::Clock::manual();
    /// cache.setup_with_clock("mem://?size=1000", clock.clone())?;
    /// cache.set("k", "v", "1m").await?;
    /// clock.advance(Duration::from_secs(61));
    /// assert!(!cache.exists("k").await?);
    /// # Ok(()) }
    /// ```
    pub fn setup_with_clock(&self, url: &str, clock: crate::Clock) -> Result<()> {
        let config = CacheConfig::parse(url)?;
        let backend = match &config.backend {
            BackendConfig::Memory(options) => MemoryBackend::with_clock(options.clone(), clock),
            #[cfg(feature = "redis")]
            BackendConfig::Redis(_) => {
                return Err(crate::Error::InvalidUrl {
                    url: crate::config::redact::redact_url(url),
                    reason: "Redis keeps time itself and cannot follow a manual clock: use \
                             Cache::setup"
                        .to_owned(),
                });
            }
            #[cfg(feature = "disk")]
            BackendConfig::Disk(_) => {
                return Err(crate::Error::InvalidUrl {
                    url: crate::config::redact::redact_url(url),
                    reason: "disk keeps wall-clock time (processes share its files) and cannot \
                             follow a manual clock: use Cache::setup"
                        .to_owned(),
                });
            }
        };
        self.setup_backend_with("", backend, config, [])
    }

    /// Configures a backend for `prefix` from typed options.
    ///
    /// # Errors
    ///
    /// A configuration error: an option out of range ([`CacheConfig::validate`]), or a
    /// compression whose cargo feature is off.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// let config: cashews::config::CacheConfig = "mem://?size=10".parse()?;
    /// cache.setup_config("", config)?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn setup_config(&self, prefix: &str, config: CacheConfig) -> Result<()> {
        config.validate()?;
        self.build(prefix, config, Vec::new())
    }

    /// Builds the backend `config` names and installs its route.
    fn build(&self, prefix: &str, config: CacheConfig, stages: Vec<Stage>) -> Result<()> {
        match &config.backend {
            BackendConfig::Memory(options) => {
                let backend = MemoryBackend::new(options.clone());
                self.install(Route::new(prefix, backend, &config, stages)?)
            }
            #[cfg(feature = "redis")]
            BackendConfig::Redis(options) if options.client_side => {
                let backend = crate::backend::ClientSideRedis::new(options.clone())?;
                self.install(Route::new(prefix, backend, &config, stages)?)
            }
            #[cfg(feature = "redis")]
            BackendConfig::Redis(options) => {
                let backend = crate::backend::RedisBackend::new(options.clone())?;
                self.install(Route::new(prefix, backend, &config, stages)?)
            }
            #[cfg(feature = "disk")]
            BackendConfig::Disk(options) => {
                let backend = crate::backend::DiskBackend::new(options.clone())?;
                self.install(Route::new(prefix, backend, &config, stages)?)
            }
        }
    }

    /// Configures any [`Backend`] for `prefix`, with the wrapper-level options of `config`
    /// (codec, disable, suppress, limits); the backend part of `config` is ignored. This is how
    /// a custom backend, or a memory backend on a manual [`Clock`](crate::Clock), is plugged in.
    /// A memory backend on a manual clock also becomes the cache's [`Cache::clock`], so
    /// time-based strategies and the backend see the same time.
    ///
    /// # Errors
    ///
    /// A configuration error from the codec options or the limits
    /// ([`CacheConfig::validate`]).
    ///
    /// ```
    /// use cashews::{config::{CacheConfig, MemoryOptions}, Clock, MemoryBackend};
    /// let cache = cashews::Cache::new();
    /// let mem = MemoryBackend::with_clock(MemoryOptions::default(), Clock::manual());
    /// cache.setup_backend("", mem, CacheConfig::default())?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn setup_backend<B: Backend>(
        &self,
        prefix: &str,
        backend: B,
        config: CacheConfig,
    ) -> Result<()> {
        self.setup_backend_with(prefix, backend, config, [])
    }

    /// [`Cache::setup_backend`] with a chain of [middlewares and observers](crate::middleware)
    /// around the backend, the first outermost.
    ///
    /// # Errors
    ///
    /// A configuration error from the codec options.
    ///
    /// ```
    /// use cashews::{config::CacheConfig, middleware, MemoryBackend};
    /// let cache = cashews::Cache::new();
    /// let mem = MemoryBackend::new(Default::default());
    /// cache.setup_backend_with("", mem, CacheConfig::default(), [middleware::all_keys_lower()])?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn setup_backend_with<B: Backend>(
        &self,
        prefix: &str,
        backend: B,
        config: CacheConfig,
        stages: impl IntoIterator<Item = Stage>,
    ) -> Result<()> {
        // A whole local tier on a manual clock (a memory backend) sets the strategies' time.
        if let Some(tier) = backend.local_tier().filter(LocalTier::is_whole)
            && tier.clock().is_manual()
        {
            self.set_clock(tier.clock());
        }
        let route = Route::new(prefix, backend, &config, stages.into_iter().collect())?;
        self.install(route)
    }

    /// Installs a route, replacing any route with the same prefix.
    fn install(&self, route: Route) -> Result<()> {
        let route = Arc::new(route);
        if let Some(replaced) = self.inner.routes.update(|router| router.with(route)) {
            self.retire(replaced);
        }
        Ok(())
    }

    /// Whether at least one backend is configured.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(cache.is_configured());
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn is_configured(&self) -> bool {
        !self.inner.routes.load().is_empty()
    }

    /// Closes every backend (stops purge tasks and background tasks, drops connections,
    /// joins threads), the current ones and those replaced by a later setup (which are also
    /// closed on their own once no command uses them). Commands after `close` may fail.
    ///
    /// # Errors
    ///
    /// The first backend failure; every backend is still asked to close.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) -> Result<()> {
        let router = self.inner.routes.load_full();
        let mut first = Ok(());
        for route in router.routes() {
            let result = self.close_route(route).await;
            if first.is_ok() {
                first = result;
            }
        }
        self.finish_retirements().await;
        first
    }
}
