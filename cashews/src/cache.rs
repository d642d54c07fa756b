//! [`Cache`]: the user-facing handle: setup by URL, routing by key prefix, typed commands,
//! enable/disable, safe mode.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;

use crate::backend::{Expiry, LocalTier};
use crate::command::Command;
use crate::error::{Error, Result, shorten};
#[cfg(doc)]
use crate::ttl::IntoTtl;

mod admin;
mod control;
mod default;
mod extensions;
mod flight;
mod further;
mod locks;
mod patterns;
mod reads;
mod retire;
mod route;
mod router;
mod routes;
mod setup;
mod structures;
mod switch;
mod tags;
pub(crate) mod transactions;
mod writes;

pub use default::cache;
pub use further::invalidate_further;
use route::{ALL_COMMANDS, Route};
use router::Router;
pub use tags::{TAG_PREFIX, tagged};

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A cache: one or more backends routed by key prefix, with typed async commands.
///
/// A cheap-clone handle (`Arc` inside): clone it to share; never wrap it in a `Mutex`. Values
/// are any `Serialize` / `DeserializeOwned` type, encoded by the route's codec. TTLs accept
/// every [`IntoTtl`] form: `"1h30m"`, a [`Duration`](std::time::Duration), or whole seconds.
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
    routes: routes::Routes,
    /// The time strategies read (windows, early and soft expiry): the system clock, or the
    /// manual clock of a memory backend given to `setup_backend`.
    clock: ArcSwap<crate::Clock>,
    /// Registered tags: which tag sets a deleted key leaves.
    tag_registry: tags::Registry,
    /// Replaced routes being closed.
    retirements: retire::Retirements,
    /// What the layers above keep per cache (coalescing flights, re-entry markers, lock
    /// wake-ups), by type: the cache does not know them.
    extensions: extensions::Extensions,
    /// The flights of the caching strategies (`cache`, `early`, `soft`), whose followers
    /// learn whether the leader stored: kept here rather than among the extensions, so a
    /// miss reaches them without a lookup, and a hit reads their count of ended flights
    /// without following a pointer.
    stored_flights: crate::coalesce::Flights<bool>,
    /// What [`Cache::transaction`] starts with, unless told otherwise.
    transaction_defaults: parking_lot::Mutex<crate::backend::TransactionOptions>,
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
/// failure: a miss, `false`, zero or nothing.
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

/// A handle on a [`Cache`] that does not keep it alive: for parts the cache itself holds
/// (a route's observer), which would otherwise keep their own cache from being dropped.
#[cfg(feature = "metrics")]
#[derive(Clone)]
pub(crate) struct WeakCache(std::sync::Weak<Shared>);

#[cfg(feature = "metrics")]
impl WeakCache {
    /// The cache, while a handle on it is alive.
    pub(crate) fn upgrade(&self) -> Option<Cache> {
        self.0.upgrade().map(|inner| Cache { inner })
    }
}

impl Cache {
    /// A handle that does not keep this cache alive.
    #[cfg(feature = "metrics")]
    pub(crate) fn downgrade(&self) -> WeakCache {
        WeakCache(Arc::downgrade(&self.inner))
    }

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
                routes: routes::Routes::default(),
                clock: ArcSwap::from_pointee(crate::Clock::system()),
                tag_registry: tags::Registry::default(),
                retirements: retire::Retirements::default(),
                extensions: extensions::Extensions::default(),
                stored_flights: crate::coalesce::Flights::default(),
                transaction_defaults: parking_lot::Mutex::default(),
            }),
        }
    }

    /// The clock time-based strategies read (sliding windows, early and soft expiry, circuit
    /// breakers): the system clock unless [`Cache::set_clock`] or
    /// [`Cache::setup_backend`] with a memory backend on a manual clock chose another.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// assert!(!cache.clock().is_manual());
    /// ```
    #[must_use]
    pub fn clock(&self) -> crate::Clock {
        crate::Clock::clone(&self.inner.clock.load())
    }

    /// This cache's value of type `T`, created with `T::default()` on first use and dropped
    /// with the cache: how the layers above keep per-cache state (the strategies' coalescing
    /// flights and re-entry markers, the lock wake-ups) without the cache knowing their types.
    /// For miss paths: a read lock and a hash lookup.
    pub(crate) fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        self.inner.extensions.get::<T>()
    }

    /// The flights of the caching strategies (`cache`, `early`, `soft`): one per cache, as an
    /// extension would be, without the lookup.
    pub(crate) fn stored_flights(&self) -> &crate::coalesce::Flights<bool> {
        &self.inner.stored_flights
    }

    /// Makes strategies read `clock` (a manual clock lets tests move time without sleeping).
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.set_clock(cashews::Clock::manual());
    /// assert!(cache.clock().is_manual());
    /// ```
    pub fn set_clock(&self, clock: crate::Clock) {
        self.inner.clock.store(Arc::new(clock));
    }

    // ----- routing, disable, safe mode -------------------------------------------------

    /// The router commands use, owned: inside a transaction of this cache (in this task), the
    /// transaction's view of the current router.
    fn router(&self) -> Arc<Router> {
        match transactions::router(self) {
            Some(router) => router,
            None => self.inner.routes.load_full(),
        }
    }

    /// The router commands use, for the length of one command: [`Cache::router`], borrowed
    /// from its slot when no transaction is open anywhere (one relaxed load more).
    #[inline]
    fn routes(&self) -> routes::Loaded<'_> {
        match transactions::router(self) {
            Some(router) => routes::Loaded::Owned(router),
            None => self.inner.routes.load(),
        }
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

    /// The name of the backend `key` routes to (`"mem"`, `"redis"`, `"disk"`), for detect
    /// records; `None` when no route takes it.
    pub(crate) fn backend_name(&self, key: &str) -> Option<&'static str> {
        self.routes().find(key).map(|route| route.name())
    }

    /// Whether `command` is disabled on `route`, globally or in the current task's scope.
    #[inline]
    fn is_off(&self, route: &Route, command: Command) -> bool {
        (route.disabled_mask() | control::scoped_mask(self.inner.id)) & command.bit() != 0
    }

    /// A valid key is one length check on every command; the errors are built out of line.
    #[inline]
    fn check_key(route: &Route, key: &str) -> Result<()> {
        if key.is_empty() || key.len() > route.max_key_length {
            return Err(Self::invalid_key(route, key));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn invalid_key(route: &Route, key: &str) -> Error {
        if key.is_empty() {
            return Error::InvalidKey {
                key: String::new(),
                reason: "a key cannot be empty",
            };
        }
        Error::KeyTooLong {
            key: shorten(key),
            len: key.len(),
            limit: route.max_key_length,
        }
    }

    /// Safe mode: a backend failure becomes the neutral reply plus an error log. Inlined, so
    /// that a success (every local-tier write) costs one branch; the log is out of line.
    #[inline]
    fn settle<T: Neutral>(
        route: &Route,
        command: Command,
        key: &str,
        result: Result<T>,
    ) -> Result<T> {
        match result {
            Err(error) if route.suppress && error.is_backend() => {
                Self::swallowed(route, command, key, &error);
                Ok(T::neutral())
            }
            other => other,
        }
    }

    #[cold]
    #[inline(never)]
    fn swallowed(route: &Route, command: Command, key: &str, error: &Error) {
        crate::error::log_swallowed!(error, backend = route.name(), %command, key = %shorten(key), %error, "cache backend failed; safe mode returns a neutral reply");
    }

    fn encode<T: Serialize + ?Sized>(route: &Route, key: &str, value: &T) -> Result<Bytes> {
        let bytes = route.codec.encode(key, value)?;
        Self::check_size(route, key, &bytes)?;
        Ok(bytes)
    }

    /// [`Cache::encode`] into this thread's scratch buffer, handing the bytes to `write`: for a
    /// backend that copies them anyway (a whole local tier), a write then allocates once
    /// instead of twice. The buffer is kept between writes up to 64 KiB of capacity.
    fn with_encoded<T: Serialize + ?Sized, R>(
        route: &Route,
        key: &str,
        value: &T,
        write: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        const KEEP: usize = 64 * 1024;
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(Vec::with_capacity(256));
        }
        SCRATCH.with(|scratch| {
            // A `Serialize` impl that writes to a cache on this thread finds it borrowed.
            let Ok(mut buf) = scratch.try_borrow_mut() else {
                let bytes = Self::encode(route, key, value)?;
                return Ok(write(&bytes));
            };
            let encoded = route
                .codec
                .encode_into(key, value, &mut buf)
                .and_then(|()| Self::check_size(route, key, &buf));
            let result = encoded.map(|()| write(&buf));
            if buf.capacity() > KEEP {
                *buf = Vec::with_capacity(256);
            }
            result
        })
    }

    fn check_size(route: &Route, key: &str, bytes: &[u8]) -> Result<()> {
        match route.max_value_size {
            Some(limit) if bytes.len() > limit => Err(Error::ValueTooLarge {
                key: shorten(key),
                size: bytes.len(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// The preamble of every keyed command, written once: the route of `key`, the key
    /// check, the disable mask. `Ok(None)` when `command` is disabled (the caller replies
    /// neutrally).
    #[inline]
    fn enter<'r>(
        &self,
        router: &'r Router,
        key: &str,
        command: Command,
    ) -> Result<Option<&'r Arc<Route>>> {
        let Some(route) = router.find(key) else {
            return Err(Self::not_configured(router, key));
        };
        Self::check_key(route, key)?;
        if self.is_off(route, command) {
            return Ok(None);
        }
        Ok(Some(route))
    }

    /// The route of a command that will await its backend: [`Cache::enter`] with the route
    /// owned (it lives across the await).
    #[inline]
    fn enter_owned(&self, key: &str, command: Command) -> Result<Option<Arc<Route>>> {
        let router = self.routes();
        Ok(self.enter(&router, key, command)?.cloned())
    }

    /// Runs one keyed command on its backend: the preamble, the run, safe mode.
    async fn keyed<T, F, Fut>(&self, command: Command, key: &str, run: F) -> Result<T>
    where
        T: Neutral,
        F: FnOnce(Arc<Route>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(route) = self.enter_owned(key, command)? else {
            return Ok(T::neutral());
        };
        let result = run(Arc::clone(&route)).await;
        Self::settle(&route, command, key, result)
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
