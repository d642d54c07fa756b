//! [`Cache`]: the user-facing handle: setup by URL, routing by key prefix, typed commands,
//! enable/disable, safe mode.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Backend, BoxStream, Condition, Expiry, MemoryBackend, SetOptions};
use crate::codec::Codec;
use crate::command::Command;
use crate::config::{BackendConfig, CacheConfig};
use crate::error::{Error, Result, shorten};
use crate::lock::LockGuard;
use crate::ttl::IntoTtl;

mod control;
mod default;
mod flight;
mod router;

pub use default::cache;
use router::{ALL_COMMANDS, Engine, Route, Router};

/// Calls a backend method on a route's engine: statically for memory, through the erased
/// twin otherwise.
macro_rules! call {
    ($route:expr, $method:ident ( $($arg:expr),* $(,)? )) => {
        match &$route.engine {
            Engine::Memory(b) => Backend::$method(b, $($arg),*).await,
            Engine::Dyn(b) => crate::backend::DynBackend::$method(&**b, $($arg),*).await,
        }
    };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A cache: one or more backends routed by key prefix, with typed async commands.
///
/// A cheap-clone handle (`Arc` inside): clone it to share; never wrap it in a `Mutex`. Values
/// are any `Serialize` / `DeserializeOwned` type, encoded by the route's codec. TTLs accept
/// every [`IntoTtl`] form: `"1h30m"`, a [`Duration`], or whole seconds.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct User { id: u64, name: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://?size=10000")?;
/// let user = User { id: 1, name: "ada".into() };
/// cache.set("user:1", &user, "2h").await?;
/// assert_eq!(cache.get::<User>("user:1").await?, Some(user));
/// assert_eq!(cache.incr("hits").await?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Shared>,
}

struct Shared {
    id: usize,
    routes: ArcSwap<Router>,
    setup_lock: Mutex<()>,
    flights: flight::Flights,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("routes", &self.inner.routes.load().routes())
            .finish_non_exhaustive()
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

/// The value a command returns when it is disabled, or when safe mode swallows a backend
/// failure (SPEC §1.7): a miss, `false`, zero or nothing.
trait Neutral {
    fn neutral() -> Self;
}

impl<T> Neutral for Option<T> {
    fn neutral() -> Self {
        None
    }
}
impl Neutral for bool {
    fn neutral() -> Self {
        false
    }
}
impl Neutral for i64 {
    fn neutral() -> Self {
        0
    }
}
impl Neutral for u64 {
    fn neutral() -> Self {
        0
    }
}
impl Neutral for () {
    fn neutral() -> Self {}
}
impl<T> Neutral for Vec<T> {
    fn neutral() -> Self {
        Self::new()
    }
}
impl Neutral for Expiry {
    fn neutral() -> Self {
        Self::Missing
    }
}

impl Cache {
    /// A new cache with no backend: commands fail with [`Error::NotConfigured`] until
    /// [`Cache::setup`].
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// assert!(!cache.is_configured());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                routes: ArcSwap::from_pointee(Router::default()),
                setup_lock: Mutex::new(()),
                flights: flight::Flights::default(),
            }),
        }
    }

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
        let config = CacheConfig::parse(url)?;
        self.setup_config(prefix, config)
    }

    /// Configures a backend for `prefix` from typed options.
    ///
    /// # Errors
    ///
    /// A configuration error (for example a compression whose cargo feature is off).
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// let config: cashews::config::CacheConfig = "mem://?size=10".parse()?;
    /// cache.setup_config("", config)?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn setup_config(&self, prefix: &str, config: CacheConfig) -> Result<()> {
        let engine = match &config.backend {
            BackendConfig::Memory(options) => Engine::Memory(MemoryBackend::new(options.clone())),
        };
        self.install(prefix, engine, config)
    }

    /// Configures any [`Backend`] for `prefix`, with the wrapper-level options of `config`
    /// (codec, disable, suppress, limits); the backend part of `config` is ignored. This is how
    /// a custom backend, or a memory backend on a manual [`Clock`](crate::Clock), is plugged in.
    ///
    /// # Errors
    ///
    /// A configuration error from the codec options.
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
        let any: &dyn std::any::Any = &backend;
        let engine = match any.downcast_ref::<MemoryBackend>() {
            Some(mem) => Engine::Memory(mem.clone()),
            None => Engine::Dyn(Arc::new(backend)),
        };
        self.install(prefix, engine, config)
    }

    fn install(&self, prefix: &str, engine: Engine, config: CacheConfig) -> Result<()> {
        let codec = Codec::new(config.codec)?;
        let route = Arc::new(Route {
            prefix: prefix.to_owned(),
            engine,
            codec,
            disabled: AtomicU32::new(if config.disable { ALL_COMMANDS } else { 0 }),
            suppress: config.suppress.unwrap_or(false),
            max_key_length: config.max_key_length,
            max_value_size: config.max_value_size,
        });
        let _guard = self.inner.setup_lock.lock();
        let (router, _old) = self.inner.routes.load().with(route);
        self.inner.routes.store(Arc::new(router));
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

    /// Closes every backend (stops purge tasks, drops connections).
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
            let result = call!(route, close());
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    // ----- routing, disable, safe mode -------------------------------------------------

    fn router(&self) -> Arc<Router> {
        self.inner.routes.load_full()
    }

    fn not_configured(router: &Router, key: &str) -> Error {
        Error::NotConfigured {
            key: (!router.is_empty()).then(|| shorten(key)),
        }
    }

    fn route_for(&self, key: &str) -> Result<Arc<Route>> {
        let router = self.router();
        router
            .find(key)
            .cloned()
            .ok_or_else(|| Self::not_configured(&router, key))
    }

    /// Whether `command` is disabled on `route`, globally or in the current task's scope.
    fn is_off(&self, route: &Route, command: Command) -> bool {
        (route.disabled_mask() | control::scoped_mask(self.inner.id)) & command.bit() != 0
    }

    fn check_key(route: &Route, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::InvalidKey {
                key: String::new(),
                reason: "a key cannot be empty",
            });
        }
        if key.len() > route.max_key_length {
            return Err(Error::KeyTooLong {
                key: shorten(key),
                len: key.len(),
                limit: route.max_key_length,
            });
        }
        Ok(())
    }

    /// Safe mode: a backend failure becomes the neutral reply plus an error log.
    fn settle<T: Neutral>(
        route: &Route,
        command: Command,
        key: &str,
        result: Result<T>,
    ) -> Result<T> {
        match result {
            Err(error) if route.suppress && error.is_backend() => {
                tracing::error!(backend = route.name(), %command, key = %shorten(key), %error, "cache backend failed; safe mode returns a neutral reply");
                Ok(T::neutral())
            }
            other => other,
        }
    }

    fn encode<T: Serialize + ?Sized>(route: &Route, key: &str, value: &T) -> Result<Bytes> {
        let bytes = route.codec.encode(key, value)?;
        if let Some(limit) = route.max_value_size
            && bytes.len() > limit
        {
            return Err(Error::ValueTooLarge {
                key: shorten(key),
                size: bytes.len(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Runs one keyed command: route, validate the key, honour disable, settle in safe mode.
    async fn keyed<T, F, Fut>(&self, command: Command, key: &str, run: F) -> Result<T>
    where
        T: Neutral,
        F: FnOnce(Arc<Route>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let route = self.route_for(key)?;
        Self::check_key(&route, key)?;
        if self.is_off(&route, command) {
            return Ok(T::neutral());
        }
        let result = run(Arc::clone(&route)).await;
        Self::settle(&route, command, key, result)
    }

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
    /// [`Error::NotConfigured`] when no backend serves `prefix`.
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
    /// [`Error::NotConfigured`] when no backend serves `prefix`.
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
    /// [`Error::NotConfigured`] when no backend serves `prefix`.
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
    /// Scopes nest. Tasks spawned inside do not inherit the scope (Tokio task-locals are not
    /// inherited); wrap them in their own `disabling`.
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

    // ----- key/value commands --------------------------------------------------------------

    /// Reads and decodes a value: `None` when missing, expired, disabled, or undecodable (a
    /// tampered, corrupted or older-schema value is a miss, logged with `tracing::warn!`).
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`], an invalid key, or a backend failure outside safe mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.get::<String>("absent").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        // Fast path: a memory route answers synchronously, with no boxed future and no
        // reference-count traffic on the route.
        let raw = {
            let router = self.inner.routes.load();
            let Some(route) = router.find(key) else {
                return Err(Self::not_configured(&router, key));
            };
            Self::check_key(route, key)?;
            if self.is_off(route, Command::Get) {
                return Ok(None);
            }
            match &route.engine {
                Engine::Memory(mem) => {
                    let raw = mem.get_now(key);
                    return Ok(raw.and_then(|b| route.codec.decode(key, "mem", &b)));
                }
                Engine::Dyn(_) => Arc::clone(route),
            }
        };
        let route = raw;
        let result = call!(route, get(key));
        let raw = Self::settle(&route, Command::Get, key, result)?;
        Ok(raw.and_then(|b| route.codec.decode(key, route.name(), &b)))
    }

    /// Reads the stored bytes without decoding.
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
    /// cache.set_raw("k", "raw".into(), 60).await?;
    /// assert_eq!(cache.get_raw("k").await?.as_deref(), Some(&b"raw"[..]));
    /// # Ok(()) }
    /// ```
    pub async fn get_raw(&self, key: &str) -> Result<Option<Bytes>> {
        self.keyed(Command::GetRaw, key, |route| async move {
            call!(route, get(key))
        })
        .await
    }

    /// Reads several values, in the order of `keys`; each is `None` when missing or
    /// undecodable. Keys are split per backend, one call each.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`], for any of the keys.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("a", &1, 60).await?;
    /// assert_eq!(cache.get_many::<i32>(&["a", "b"]).await?, vec![Some(1), None]);
    /// # Ok(()) }
    /// ```
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        let mut out: Vec<Option<T>> = keys.iter().map(|_| None).collect();
        for (route, indexes) in self.split(keys)? {
            if self.is_off(&route, Command::GetMany) {
                continue;
            }
            let group: Vec<&str> = indexes.iter().map(|&i| keys[i]).collect();
            let result = call!(route, get_many(&group));
            let values = Self::settle(&route, Command::GetMany, group[0], result.map(Some))?
                .unwrap_or_default();
            for (&i, raw) in indexes.iter().zip(values) {
                out[i] = raw.and_then(|b| route.codec.decode(keys[i], route.name(), &b));
            }
        }
        Ok(out)
    }

    /// Groups keys per route, keeping the caller's indexes.
    fn split(&self, keys: &[&str]) -> Result<Vec<(Arc<Route>, Vec<usize>)>> {
        let router = self.router();
        let mut groups: Vec<(Arc<Route>, Vec<usize>)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let route = router
                .find(key)
                .ok_or_else(|| Self::not_configured(&router, key))?;
            Self::check_key(route, key)?;
            match groups.iter_mut().find(|(r, _)| Arc::ptr_eq(r, route)) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((Arc::clone(route), vec![i])),
            }
        }
        Ok(groups)
    }

    /// Encodes and stores a value with a TTL; returns whether it was stored.
    ///
    /// # Errors
    ///
    /// A bad TTL, an invalid key, an encoding failure, a value over `max_value_size`, or a
    /// backend failure outside safe mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert!(cache.set("k", &vec![1, 2, 3], "1m").await?);
    /// assert!(cache.set("forever", "v", None::<u64>).await?);
    /// # Ok(()) }
    /// ```
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> Result<bool> {
        self.set_with(key, value, ttl, Condition::Always).await
    }

    /// Stores a value only if the key is absent (SET NX); returns whether it was stored.
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
    /// assert!(cache.set_if_absent("k", "first", 60).await?);
    /// assert!(!cache.set_if_absent("k", "second", 60).await?);
    /// # Ok(()) }
    /// ```
    pub async fn set_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> Result<bool> {
        self.set_with(key, value, ttl, Condition::IfAbsent).await
    }

    /// Stores a value only if the key exists (SET XX); returns whether it was stored.
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
    /// assert!(!cache.set_if_present("k", "v", 60).await?);
    /// # Ok(()) }
    /// ```
    pub async fn set_if_present<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> Result<bool> {
        self.set_with(key, value, ttl, Condition::IfPresent).await
    }

    async fn set_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
        condition: Condition,
    ) -> Result<bool> {
        let ttl = ttl.into_ttl()?;
        let options = SetOptions::ttl(ttl.duration()).condition(condition);
        {
            let router = self.inner.routes.load();
            let Some(route) = router.find(key) else {
                return Err(Self::not_configured(&router, key));
            };
            Self::check_key(route, key)?;
            if self.is_off(route, Command::Set) {
                return Ok(false);
            }
            if let Engine::Memory(mem) = &route.engine {
                let bytes = Self::encode(route, key, value)?;
                return Ok(mem.set_now(key, bytes, options));
            }
        }
        let route = self.route_for(key)?;
        let bytes = Self::encode(&route, key, value)?;
        let result = call!(route, set(key, bytes, options));
        Self::settle(&route, Command::Set, key, result)
    }

    /// Stores bytes as they are, without encoding (they read back with [`Cache::get_raw`]).
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
    /// assert!(cache.set_raw("k", cashews::Bytes::from_static(b"x"), 60).await?);
    /// # Ok(()) }
    /// ```
    pub async fn set_raw(&self, key: &str, value: Bytes, ttl: impl IntoTtl) -> Result<bool> {
        let ttl = ttl.into_ttl()?;
        self.keyed(Command::SetRaw, key, |route| async move {
            if let Some(limit) = route.max_value_size
                && value.len() > limit
            {
                return Err(Error::ValueTooLarge {
                    key: shorten(key),
                    size: value.len(),
                    limit,
                });
            }
            call!(route, set(key, value, SetOptions::ttl(ttl.duration())))
        })
        .await
    }

    /// Stores several values with the same TTL. Not atomic as a whole.
    ///
    /// # Errors
    ///
    /// As [`Cache::set`], for any pair (nothing is stored if a value fails to encode).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set_many(&[("a", &1), ("b", &2)], "1m").await?;
    /// assert_eq!(cache.get::<i32>("b").await?, Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn set_many<T: Serialize>(
        &self,
        pairs: &[(&str, &T)],
        ttl: impl IntoTtl,
    ) -> Result<()> {
        let ttl = ttl.into_ttl()?.duration();
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        let groups = self.split(&keys)?;
        let mut encoded = Vec::with_capacity(groups.len());
        for (route, indexes) in &groups {
            let mut group = Vec::with_capacity(indexes.len());
            for &i in indexes {
                let (key, value) = pairs[i];
                group.push((key, Self::encode(route, key, value)?));
            }
            encoded.push(group);
        }
        for ((route, _), group) in groups.iter().zip(encoded) {
            if self.is_off(route, Command::SetMany) || group.is_empty() {
                continue;
            }
            let result = call!(route, set_many(&group, ttl));
            Self::settle(route, Command::SetMany, group[0].0, result)?;
        }
        Ok(())
    }

    /// Returns the cached value, or runs `init`, stores its result with `ttl` and returns it.
    ///
    /// # Concurrent calls
    ///
    /// Concurrent misses on the same key in this process run `init` once; the others wait
    /// for its result (single flight). Other processes may compute too: use a lock strategy
    /// for cross-process exclusion.
    ///
    /// # Cancellation
    ///
    /// `init`'s future runs in its own Tokio task: if the caller that started it is dropped
    /// or times out, the load still completes, is stored, and the other waiters get it.
    ///
    /// # Panics
    ///
    /// Never in the caller: if `init` panics, every waiter gets [`Error::OriginFailed`] and
    /// the next call runs `init` again.
    ///
    /// # Re-entry
    ///
    /// An `init` that calls `get_or_set` with its own key (directly or through other calls)
    /// does not deadlock: the nested call computes without single flight.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`] and [`Cache::set`]; [`Error::OriginFailed`] as above. A failure to
    /// *store* the fresh value is logged, not returned: the caller still gets the value.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let v: u32 = cache.get_or_set("answer", "1h", || async { 42 }).await?;
    /// let again: u32 = cache.get_or_set("answer", "1h", || async { 0 }).await?;
    /// assert_eq!((v, again), (42, 42));
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set<T, F, Fut>(&self, key: &str, ttl: impl IntoTtl, init: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let ttl = ttl.into_ttl()?;
        if let Some(hit) = self.get::<T>(key).await? {
            return Ok(hit);
        }
        let route = self.route_for(key)?;
        if flight::is_reentrant(self.inner.id, key) {
            // The origin calls itself with its own key: compute directly instead of waiting
            // for our own flight, which would never land.
            let value = init().await;
            self.set(key, &value, ttl).await?;
            return Ok(value);
        }
        let flight = self.inner.flights.join_or_start(key, |id| {
            let cache = self.clone();
            let owned_key = key.to_owned();
            let load = flight::loading(self.inner.id, owned_key.clone(), init());
            let task = tokio::spawn(async move {
                // Forget the flight when the task ends, even by panic.
                let _landing = Landing {
                    cache: cache.clone(),
                    key: owned_key.clone(),
                    id,
                };
                let value = load.await;
                let bytes = match Self::encode(&route, &owned_key, &value) {
                    Ok(b) => b,
                    Err(e) => return flight::Landed::Encode(e.to_string()),
                };
                if let Err(error) = cache.set_raw(&owned_key, bytes.clone(), ttl).await {
                    tracing::error!(key = %shorten(&owned_key), %error, "get_or_set could not store the fresh value");
                }
                flight::Landed::Value(bytes)
            });
            Box::pin(async move {
                match task.await {
                    Ok(landed) => landed,
                    Err(e) if e.is_panic() => flight::Landed::Panicked,
                    Err(_) => flight::Landed::Cancelled,
                }
            })
        });
        let bytes = flight.await.into_result(key)?;
        let route = self.route_for(key)?;
        route
            .codec
            .decode(key, route.name(), &bytes)
            .ok_or_else(|| Error::Encode {
                key: shorten(key),
                source: "the fresh value does not decode as the requested type".into(),
            })
    }

    /// Atomically adds 1 to the integer at `key` (missing counts as 0); returns the new value.
    ///
    /// # Errors
    ///
    /// [`Error::WrongType`] if the key holds something other than an integer (outside safe
    /// mode), and as [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.incr("n").await?, 1);
    /// assert_eq!(cache.incr("n").await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn incr(&self, key: &str) -> Result<i64> {
        self.incr_by(key, 1, None::<u64>).await
    }

    /// Atomically adds `by` to the integer at `key`; `ttl` applies when this call creates the
    /// key. Returns the new value (0 when disabled or swallowed by safe mode).
    ///
    /// # Errors
    ///
    /// As [`Cache::incr`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.incr_by("n", 5, "1m").await?, 5);
    /// assert_eq!(cache.get::<i64>("n").await?, Some(5));
    /// # Ok(()) }
    /// ```
    pub async fn incr_by(&self, key: &str, by: i64, ttl: impl IntoTtl) -> Result<i64> {
        let ttl = ttl.into_ttl()?.duration();
        self.keyed(Command::Incr, key, |route| async move {
            call!(route, incr(key, by, ttl))
        })
        .await
    }

    /// Whether a key exists (and has not expired).
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
    /// assert!(!cache.exists("k").await?);
    /// # Ok(()) }
    /// ```
    pub async fn exists(&self, key: &str) -> Result<bool> {
        self.keyed(Command::Exists, key, |route| async move {
            call!(route, exists(key))
        })
        .await
    }

    /// Deletes a key; returns whether it existed.
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
    /// assert!(cache.delete("k").await?);
    /// assert!(!cache.delete("k").await?);
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.keyed(Command::Delete, key, |route| async move {
            call!(route, delete(key))
        })
        .await
    }

    /// Deletes several keys; returns how many existed.
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
    /// cache.set("a", "v", 60).await?;
    /// assert_eq!(cache.delete_many(&["a", "b"]).await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let mut deleted = 0;
        for (route, indexes) in self.split(keys)? {
            if self.is_off(&route, Command::DeleteMany) {
                continue;
            }
            let group: Vec<&str> = indexes.iter().map(|&i| keys[i]).collect();
            let result = call!(route, delete_many(&group));
            deleted += Self::settle(&route, Command::DeleteMany, group[0], result)?;
        }
        Ok(deleted)
    }

    /// Deletes every key matching a Redis glob pattern (`*`, `?`, `[a-z]`, `\` escapes) on the
    /// backend that serves the pattern; returns how many were deleted.
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
    /// cache.set("user:1", "a", 60).await?;
    /// cache.set("user:2", "b", 60).await?;
    /// assert_eq!(cache.delete_match("user:*").await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn delete_match(&self, pattern: &str) -> Result<u64> {
        self.keyed(Command::DeleteMatch, pattern, |route| async move {
            call!(route, delete_match(pattern))
        })
        .await
    }

    /// Streams the keys matching a Redis glob pattern, on the backend that serves the pattern.
    ///
    /// # Errors
    ///
    /// The stream yields backend failures (none in safe mode: it ends instead).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("user:1", "a", 60).await?;
    /// let keys: Vec<String> = cache.scan("user:*").map(|k| k.unwrap()).collect().await;
    /// assert_eq!(keys, vec!["user:1".to_owned()]);
    /// # Ok(()) }
    /// ```
    pub fn scan(&self, pattern: &str) -> BoxStream<Result<String>> {
        let route = match self.route_for(pattern) {
            Ok(route) => route,
            Err(e) => return Box::pin(futures_util::stream::iter([Err(e)])),
        };
        if self.is_off(&route, Command::Scan) {
            return Box::pin(futures_util::stream::empty());
        }
        let stream = match &route.engine {
            Engine::Memory(b) => Backend::scan(b, pattern, 100),
            Engine::Dyn(b) => b.scan(pattern, 100),
        };
        if !route.suppress {
            return stream;
        }
        let pattern = pattern.to_owned();
        Box::pin(stream.scan((), move |(), item| {
            let next = match item {
                Err(error) if error.is_backend() => {
                    tracing::error!(backend = route.name(), command = %Command::Scan, %pattern, %error, "cache backend failed; safe mode ends the scan");
                    None
                }
                other => Some(other),
            };
            std::future::ready(next)
        }))
    }

    /// Alias of [`Cache::scan`] (the cashews 2.x name).
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let _keys = cache.keys_match("user:*");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn keys_match(&self, pattern: &str) -> BoxStream<Result<String>> {
        self.scan(pattern)
    }

    /// Streams `(key, value)` pairs for the keys matching a pattern, skipping keys that vanish
    /// during the scan and values that do not decode as `T`.
    ///
    /// # Errors
    ///
    /// The stream yields backend failures (outside safe mode).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("n:1", &1, 60).await?;
    /// let pairs: Vec<(String, i32)> = cache.get_match("n:*").map(|p| p.unwrap()).collect().await;
    /// assert_eq!(pairs, vec![("n:1".to_owned(), 1)]);
    /// # Ok(()) }
    /// ```
    pub fn get_match<T: DeserializeOwned + Send + 'static>(
        &self,
        pattern: &str,
    ) -> BoxStream<Result<(String, T)>> {
        let route = match self.route_for(pattern) {
            Ok(route) => route,
            Err(e) => return Box::pin(futures_util::stream::iter([Err(e)])),
        };
        if self.is_off(&route, Command::GetMatch) {
            return Box::pin(futures_util::stream::empty());
        }
        let keys = self.scan(pattern);
        Box::pin(
            keys.chunks(100)
                .then(move |chunk| {
                    let route = Arc::clone(&route);
                    async move {
                        let keys: Vec<String> = chunk.into_iter().collect::<Result<_>>()?;
                        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                        let result = call!(route, get_many(&refs));
                        let Some(values) =
                            Self::settle(&route, Command::GetMatch, "", result.map(Some))?
                        else {
                            return Ok(Vec::new());
                        };
                        Ok(keys
                            .into_iter()
                            .zip(values)
                            .filter_map(|(key, raw)| {
                                let value = route.codec.decode::<T>(&key, route.name(), &raw?)?;
                                Some((key, value))
                            })
                            .collect::<Vec<_>>())
                    }
                })
                .flat_map(|batch: Result<Vec<(String, T)>>| {
                    futures_util::stream::iter(match batch {
                        Ok(pairs) => pairs.into_iter().map(Ok).collect::<Vec<_>>(),
                        Err(e) => vec![Err(e)],
                    })
                }),
        )
    }

    /// Sets a new TTL on an existing key; returns whether it existed.
    ///
    /// # Errors
    ///
    /// A bad TTL, and as [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", None::<u64>).await?;
    /// assert!(cache.expire("k", "1m").await?);
    /// # Ok(()) }
    /// ```
    pub async fn expire(&self, key: &str, ttl: impl IntoTtl) -> Result<bool> {
        let ttl = ttl.into_ttl()?;
        self.keyed(Command::Expire, key, |route| async move {
            match ttl.duration() {
                Some(d) => call!(route, expire(key, d)),
                // No expiry: rewrite the value without a TTL, keeping it.
                None => match call!(route, get(key))? {
                    Some(v) => call!(route, set(key, v, SetOptions::ttl(None))),
                    None => Ok(false),
                },
            }
        })
        .await
    }

    /// The remaining lifetime of a key: [`Expiry::Missing`], [`Expiry::Persistent`] or
    /// [`Expiry::In`].
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// use cashews::backend::Expiry;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.get_expire("k").await?, Expiry::Missing);
    /// cache.set("k", "v", "1m").await?;
    /// assert_eq!(cache.get_expire("k").await?.as_secs_rounded(), Some(60));
    /// # Ok(()) }
    /// ```
    pub async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.keyed(Command::GetExpire, key, |route| async move {
            call!(route, get_expire(key))
        })
        .await
    }

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

    // ----- bits, windows, sets -----------------------------------------------------------------

    /// Reads unsigned `size`-bit fields (1 to 63 bits) at positions `index * size`; a missing
    /// key reads zeros.
    ///
    /// # Errors
    ///
    /// A bad size or offset; as [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.get_bits("bloom", &[0, 2, 10], 1).await?, vec![0, 0, 0]);
    /// # Ok(()) }
    /// ```
    pub async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let n = indexes.len();
        let bits = self
            .keyed(Command::GetBits, key, |route| async move {
                call!(route, get_bits(key, indexes, size))
            })
            .await?;
        Ok(if bits.len() == n { bits } else { vec![0; n] })
    }

    /// Adds `by` to each `size`-bit field, saturating within `[0, 2^size - 1]`; returns the new
    /// values. Atomic.
    ///
    /// # Errors
    ///
    /// As [`Cache::get_bits`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.incr_bits("b", &[0], 2, 5).await?, vec![3]);
    /// # Ok(()) }
    /// ```
    pub async fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> Result<Vec<u64>> {
        self.keyed(Command::IncrBits, key, |route| async move {
            call!(route, incr_bits(key, indexes, size, by))
        })
        .await
    }

    /// Sliding-window counter: forgets events before `start`, and if fewer than `max` events
    /// lie in `[start, end]`, records one at `end`. Returns the count including it. Atomic.
    ///
    /// # Errors
    ///
    /// A bad TTL; as [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.slice_incr("w", 0, 5, 10, "1m").await?, 1);
    /// assert_eq!(cache.slice_incr("w", 1, 6, 10, "1m").await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: impl IntoTtl,
    ) -> Result<u64> {
        let ttl = ttl.into_ttl()?.duration();
        self.keyed(Command::SliceIncr, key, |route| async move {
            call!(route, slice_incr(key, start, end, max, ttl))
        })
        .await
    }

    /// Adds members to the set at `key`; with a TTL, the set's TTL is reset to it. Returns how
    /// many were new.
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
    /// assert_eq!(cache.set_add("s", &["a", "b"], None::<u64>).await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn set_add(&self, key: &str, members: &[&str], ttl: impl IntoTtl) -> Result<u64> {
        let ttl = ttl.into_ttl()?.duration();
        self.keyed(Command::SetAdd, key, |route| async move {
            call!(route, set_add(key, members, ttl))
        })
        .await
    }

    /// Removes members from the set at `key`; returns how many were removed.
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
    /// cache.set_add("s", &["a"], None::<u64>).await?;
    /// assert_eq!(cache.set_remove("s", &["a", "z"]).await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.keyed(Command::SetRemove, key, |route| async move {
            call!(route, set_remove(key, members))
        })
        .await
    }

    /// Removes and returns up to `count` arbitrary members of the set at `key`.
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
    /// cache.set_add("s", &["a"], None::<u64>).await?;
    /// assert_eq!(cache.set_pop("s", 10).await?, vec!["a".to_owned()]);
    /// # Ok(()) }
    /// ```
    pub async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.keyed(Command::SetPop, key, |route| async move {
            call!(route, set_pop(key, count))
        })
        .await
    }

    // ----- admin ---------------------------------------------------------------------------------

    /// Checks that every backend answers; returns `PONG`. Never swallowed by safe mode: this is
    /// how callers (and locks) learn that a backend is down.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`], or the first backend failure.
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
            reply = call!(route, ping(message))?;
        }
        Ok(reply)
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
            let result = call!(route, clear());
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
            let result = call!(route, keys_count());
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
            call!(route, get_size(key))
        })
        .await
    }
}

/// Removes a finished flight from the map, also when its task panics.
struct Landing {
    cache: Cache,
    key: String,
    id: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.cache.inner.flights.land(&self.key, self.id);
    }
}

fn mask_of(commands: &[Command]) -> u32 {
    if commands.is_empty() {
        ALL_COMMANDS
    } else {
        commands.iter().fold(0, |acc, c| acc | c.bit())
    }
}

fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
