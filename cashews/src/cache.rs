//! [`Cache`]: the user-facing handle: setup by URL, routing by key prefix, typed commands,
//! enable/disable, safe mode.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Condition, Expiry, LocalTier, SetOptions};
use crate::coalesce::{Flights, Turn};
use crate::command::Command;
use crate::error::{Error, Result, shorten};
use crate::ttl::IntoTtl;

mod admin;
mod control;
mod default;
mod extensions;
mod flight;
mod further;
mod locks;
mod patterns;
mod retire;
mod route;
mod router;
mod routes;
mod setup;
mod structures;
mod switch;
mod tags;

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
                routes: routes::Routes::default(),
                clock: ArcSwap::from_pointee(crate::Clock::system()),
                tag_registry: tags::Registry::default(),
                retirements: retire::Retirements::default(),
                extensions: extensions::Extensions::default(),
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

    /// The name of the backend `key` routes to (`"mem"`, `"redis"`, `"disk"`), for detect
    /// records; `None` when no route takes it.
    pub(crate) fn backend_name(&self, key: &str) -> Option<&'static str> {
        self.inner.routes.load().find(key).map(|route| route.name())
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

    /// Safe mode: a backend failure becomes the neutral reply plus an error log.
    fn settle<T: Neutral>(
        route: &Route,
        command: Command,
        key: &str,
        result: Result<T>,
    ) -> Result<T> {
        match result {
            Err(error) if route.suppress && error.is_backend() => {
                crate::error::log_swallowed!(error, backend = route.name(), %command, key = %shorten(key), %error, "cache backend failed; safe mode returns a neutral reply");
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
        let router = self.inner.routes.load();
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
        if further::active() {
            self.forget(&[key]).await;
            return Ok(None);
        }
        // The synchronous try: a local tier answers with no boxed future and no
        // reference-count traffic on the route.
        let route = {
            let router = self.inner.routes.load();
            let Some(route) = self.enter(&router, key, Command::Get)? else {
                return Ok(None);
            };
            if let Some(tier) = &route.local
                && let Some(answer) = tier.read(key, |b| route.codec.decode(key, route.name(), b))
            {
                return Ok(answer.flatten());
            }
            Arc::clone(route)
        };
        let result = route.backend.get(key).await;
        let raw = Self::settle(&route, Command::Get, key, result)?;
        Ok(raw.and_then(|b| route.codec.decode(key, route.name(), &b)))
    }

    /// Reads a value as a shared, immutable object: on `mem://` the fastest typed read.
    ///
    /// The memory backend keeps the object decoded by the first `get_shared` beside the stored
    /// bytes, so later reads of the same key and type return a clone of the same [`Arc`]
    /// without decoding (a reference-count increment instead of a deserialization). The bytes
    /// stay the truth: any write replaces the object, a read of another type decodes the bytes,
    /// and an object decoded by one cache's codec never serves another cache sharing the
    /// backend (a different secret must still verify). Byte-bounded memory backends
    /// (`max_bytes`) keep no objects, since the bound could not count them. Other backends
    /// decode on every call, as [`Cache::get`] does.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// use std::sync::Arc;
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("greeting", "hello", "1h").await?;
    /// let first: Arc<String> = cache.get_shared("greeting").await?.unwrap();
    /// let again: Arc<String> = cache.get_shared("greeting").await?.unwrap();
    /// assert!(Arc::ptr_eq(&first, &again)); // decoded once
    /// # Ok(()) }
    /// ```
    pub async fn get_shared<T>(&self, key: &str) -> Result<Option<Arc<T>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        if further::active() {
            self.forget(&[key]).await;
            return Ok(None);
        }
        let route = {
            let router = self.inner.routes.load();
            let Some(route) = self.enter(&router, key, Command::Get)? else {
                return Ok(None);
            };
            if let Some(tier) = &route.local {
                let codec = &route.codec;
                let answer = tier.read_shared(
                    key,
                    codec.id(),
                    |b| codec.decode(key, route.name(), b),
                    |_: &T, object| Arc::clone(object).downcast::<T>().ok(),
                );
                if let Some(answer) = answer {
                    return Ok(answer.flatten());
                }
            }
            Arc::clone(route)
        };
        let result = route.backend.get(key).await;
        let raw = Self::settle(&route, Command::Get, key, result)?;
        Ok(raw
            .and_then(|b| route.codec.decode(key, route.name(), &b))
            .map(Arc::new))
    }

    /// [`Cache::get_shared`] without a future, when the answer is known synchronously: a
    /// memory route's read (hit, miss or disabled), or an unknown or invalid key. `None` when
    /// only the async path can answer: inside [`invalidate_further`] (which deletes) or on
    /// another backend. The strategies try this first, so a memory hit is one plain call.
    ///
    /// A hit hands the shared object to `read` by reference (typed, and as the `Arc` detect
    /// records) rather than returning a clone of its `Arc`: the strategies clone the value
    /// out, so the hit pays no reference count for the object.
    pub(crate) fn get_shared_now<T, R>(
        &self,
        key: &str,
        read: impl FnOnce(&T, &crate::backend::memory::SharedObject) -> R,
    ) -> Option<Result<Option<R>>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.local_read_now(key, |route, tier| {
            let codec = &route.codec;
            tier.read_shared(
                key,
                codec.id(),
                |b| codec.decode(key, route.name(), b),
                read,
            )
        })
    }

    /// [`Cache::get`] without a future, when the answer is known synchronously (as
    /// [`Cache::get_shared_now`]).
    pub(crate) fn get_now<T: DeserializeOwned>(&self, key: &str) -> Option<Result<Option<T>>> {
        self.local_read_now(key, |route, tier| {
            tier.read(key, |b| route.codec.decode(key, route.name(), b))
                .map(Option::flatten)
        })
    }

    /// The synchronous part of a read: the preamble, then `read` on the route's local tier.
    /// In the order the async reads check them, with the same replies; `None` when only the
    /// backend can answer.
    #[inline]
    fn local_read_now<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Route, &LocalTier) -> Option<Option<T>>,
    ) -> Option<Result<Option<T>>> {
        if further::active() {
            return None;
        }
        let router = self.inner.routes.load();
        match self.enter(&router, key, Command::Get) {
            Err(error) => Some(Err(error)),
            Ok(None) => Some(Ok(None)),
            Ok(Some(route)) => read(route, route.local.as_ref()?).map(Ok),
        }
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
            route.backend.get(key).await
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
        if further::active() {
            self.forget(keys).await;
            return Ok(out);
        }
        for (route, indexes) in self.split(keys)? {
            if self.is_off(&route, Command::GetMany) {
                continue;
            }
            if let Some(tier) = route.whole_tier() {
                // Synchronous reads, decoded in place: no copies of the stored bytes.
                for &i in &indexes {
                    let key = keys[i];
                    out[i] = tier
                        .read(key, |b| route.codec.decode(key, route.name(), b))
                        .flatten()
                        .flatten();
                }
                continue;
            }
            let group: Vec<&str> = indexes.iter().map(|&i| keys[i]).collect();
            let result = route.backend.get_many(&group).await;
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
    /// A bad TTL, an invalid key, an encoding failure, a value over `max_value_size`, a value
    /// the backend's byte budget cannot keep ([`Error::ValueOverBudget`]: `max_bytes` of
    /// `mem://`, `size_limit` of `disk://`; in safe mode too, as it is not a backend failure:
    /// nothing was stored), or a backend failure outside safe mode.
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
        let written = self.set_untagged(key, value, ttl, condition).await?;
        if written {
            self.tag_if_scoped(key, ttl.duration()).await;
        }
        Ok(written)
    }

    async fn set_untagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: crate::Ttl,
        condition: Condition,
    ) -> Result<bool> {
        let options = SetOptions::ttl(ttl.duration()).condition(condition);
        let route = {
            let router = self.inner.routes.load();
            let Some(route) = self.enter(&router, key, Command::Set)? else {
                return Ok(false);
            };
            let bytes = Self::encode(route, key, value)?;
            // The synchronous try: a whole local tier completes the write.
            if let Some(tier) = &route.local
                && let Some(result) = tier.write(key, &bytes, options)
            {
                return Self::settle(route, Command::Set, key, result);
            }
            (Arc::clone(route), bytes)
        };
        let (route, bytes) = route;
        let result = route.backend.set(key, bytes, options).await;
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
            route
                .backend
                .set(key, value, SetOptions::ttl(ttl.duration()))
                .await
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
            let result = route.backend.set_many(&group, ttl).await;
            Self::settle(route, Command::SetMany, group[0].0, result)?;
        }
        Ok(())
    }

    /// Returns the cached value, or runs `init`, stores its result with `ttl` and returns it.
    ///
    /// # Concurrent calls
    ///
    /// Concurrent misses on the same key in this process run `init` once; the others wait
    /// for its result (single flight, with the semantics every coalescing strategy shares:
    /// see [`strategy`](crate::strategy#coalescing)). Other processes may compute too: use a
    /// lock strategy for cross-process exclusion.
    ///
    /// # Cancellation
    ///
    /// `init`'s future runs in its own Tokio task: if the caller that started it is dropped
    /// or times out, the load still completes, is stored, and the other waiters get it.
    ///
    /// # Panics
    ///
    /// Never in the caller: if `init` panics, the caller whose `init` it was gets
    /// [`Error::OriginFailed`]; the callers waiting for it are released and one of them runs
    /// its own `init` (a panic reaches only the caller whose `init` panicked). The next call
    /// after that runs `init` again.
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
        let flights = self.extension::<Flights<flight::Landed>>();
        if flights.marker().is_inside(key) {
            // The origin calls itself with its own key: compute directly instead of waiting
            // for our own flight, which would never land.
            let value = init().await;
            self.set(key, &value, ttl).await?;
            return Ok(value);
        }
        let bytes = loop {
            match flights.enter(key) {
                Turn::Lead(leader) => {
                    // The load runs in its own task, which owns the lead (a cancelled caller
                    // neither loses the load nor strands the followers), marked as computing
                    // `key` and with the caller's context (key context, disabled commands,
                    // detect scopes), as a task the caller spawned would have.
                    let load = crate::context::Context::current()
                        .scope(flights.marker().inside(key, init()));
                    let task = tokio::spawn(flight::load(
                        self.clone(),
                        route,
                        key.to_owned(),
                        ttl,
                        leader,
                        load,
                    ));
                    break match task.await {
                        Ok(landed) => landed,
                        Err(e) if e.is_panic() => flight::Landed::Panicked,
                        Err(_) => flight::Landed::Cancelled,
                    }
                    .into_result(key)?;
                }
                Turn::Follow(follower) => {
                    if let Some(landed) = follower.wait().await {
                        break landed.into_result(key)?;
                    }
                    // The load panicked or its task was cancelled: take a turn ourselves.
                }
            }
        };
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
            route.backend.incr(key, by, ttl).await
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
            route.backend.exists(key).await
        })
        .await
    }

    /// Deletes a key; returns whether it existed.
    ///
    /// When tags are registered ([`Cache::register_tag`]), the key also leaves the sets of
    /// the tags [`Cache::get_key_tags`] gives for it; a failure there is logged and does not
    /// fail the delete.
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
        let deleted = self
            .keyed(Command::Delete, key, |route| async move {
                route.backend.delete(key).await
            })
            .await?;
        if self.inner.tag_registry.is_active() && self.runs(key, Command::Delete) {
            // Boxed: keeps the tag-less delete's future small.
            Box::pin(self.untag(&[key])).await;
        }
        Ok(deleted)
    }

    /// Deletes several keys; returns how many existed.
    ///
    /// With registered tags, the keys leave their tag sets as with [`Cache::delete`].
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
        let untag = self.inner.tag_registry.is_active();
        let mut untagged: Vec<&str> = Vec::new();
        let mut deleted = 0;
        for (route, indexes) in self.split(keys)? {
            if self.is_off(&route, Command::DeleteMany) {
                continue;
            }
            let group: Vec<&str> = indexes.iter().map(|&i| keys[i]).collect();
            let result = route.backend.delete_many(&group).await;
            match Self::settle(&route, Command::DeleteMany, group[0], result) {
                Ok(n) => deleted += n,
                Err(error) => {
                    // The groups deleted before this one still leave their tags.
                    if untag {
                        Box::pin(self.untag(&untagged)).await;
                    }
                    return Err(error);
                }
            }
            if untag {
                untagged.extend(group);
            }
        }
        if untag {
            // Boxed: keeps the tag-less delete's future small.
            Box::pin(self.untag(&untagged)).await;
        }
        Ok(deleted)
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
                Some(d) => route.backend.expire(key, d).await,
                // No expiry: rewrite the value without a TTL, keeping it.
                None => match route.backend.get(key).await? {
                    Some(v) => route.backend.set(key, v, SetOptions::ttl(None)).await,
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
            route.backend.get_expire(key).await
        })
        .await
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
