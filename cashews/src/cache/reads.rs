//! The reading commands of [`Cache`]: `get`, `get_shared`, `get_raw`, `get_many`, and the
//! synchronous tries the strategies use on their hit path.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{Cache, Command, LocalTier, Result, Route, further};
#[cfg(doc)]
use crate::Error;
use crate::middleware::{Observers, Outcome};

/// The body of [`Cache::get`] and `Cache::get_boxed`, which differ only in how they await
/// the backend (`$remote`, given the route). A macro rather than a shared function: the body
/// must stay inline in each read's future; moving the synchronous part into a function that
/// returns its answer made `get::<T>` on a memory route about 5% slower, measured
/// interleaved.
macro_rules! typed_read {
    ($cache:expr, $key:expr, |$route:ident| $remote:expr) => {{
        let (cache, key) = ($cache, $key);
        if further::active() {
            cache.forget(&[key]).await;
            return Ok(None);
        }
        // The synchronous try: a local tier answers with no boxed future and no
        // reference-count traffic on the route.
        let $route = {
            let router = cache.routes();
            let Some(route) = cache.enter(&router, key, Command::Get)? else {
                return Ok(None);
            };
            if let Some(tier) = &route.local {
                let started = route.observers.as_ref().and_then(Observers::start);
                if let Some(answer) = tier.read(key, |b| route.codec.decode(key, route.name(), b)) {
                    if let Some(observers) = &route.observers {
                        let found = Outcome::found(answer.is_some());
                        observers.local(
                            route.name(),
                            &route.prefix,
                            Command::Get,
                            Some(key),
                            found,
                            started,
                        );
                    }
                    return Ok(answer.flatten());
                }
            }
            Arc::clone(route)
        };
        let result = $remote.await;
        let raw = Self::settle(&$route, Command::Get, key, result)?;
        Ok(raw.and_then(|b| $route.codec.decode(key, $route.name(), &b)))
    }};
}

impl Cache {
    /// Reads and decodes a value: `None` when missing, expired, disabled, or undecodable (a
    /// tampered, corrupted or older-schema value is a miss, logged with `tracing::warn!`).
    ///
    /// A memory route answers without awaiting anything. On a route whose backend is the
    /// built-in Redis backend (with no middleware), the read is awaited inside this future
    /// rather than in a box of its own (with many reads in flight, that allocation shows);
    /// with the `redis` feature this future is about 500 bytes. Box it yourself
    /// (`Box::pin(cache.get(key))`) where a small future matters more.
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
        // In place: on the built-in Redis backend, no box (see `Route::get`).
        typed_read!(self, key, |route| route.get(key))
    }

    /// [`Cache::get`] with the backend's read boxed, as every other command's is: for the
    /// strategies, whose futures must stay small (a Redis read held in place is about 400
    /// bytes) and which await a remote read at most once per call.
    pub(crate) async fn get_boxed<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        typed_read!(self, key, |route| route.backend.get(key))
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
            let router = self.routes();
            let Some(route) = self.enter(&router, key, Command::Get)? else {
                return Ok(None);
            };
            if let Some(tier) = &route.local {
                let codec = &route.codec;
                let started = route.observers.as_ref().and_then(Observers::start);
                let answer = tier.read_shared(
                    key,
                    codec.id(),
                    |b| codec.decode(key, route.name(), b),
                    |_: &T, object| Arc::clone(object).downcast::<T>().ok(),
                );
                if let Some(answer) = answer {
                    if let Some(observers) = &route.observers {
                        let found = Outcome::found(answer.is_some());
                        observers.local(
                            route.name(),
                            &route.prefix,
                            Command::Get,
                            Some(key),
                            found,
                            started,
                        );
                    }
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
    #[inline]
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
    #[inline]
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
        let router = self.routes();
        match self.enter(&router, key, Command::Get) {
            Err(error) => Some(Err(error)),
            Ok(None) => Some(Ok(None)),
            Ok(Some(route)) => {
                let tier = route.local.as_ref()?;
                let Some(observers) = &route.observers else {
                    return read(route, tier).map(Ok);
                };
                let started = observers.start();
                let answer = read(route, tier)?;
                observers.local(
                    route.name(),
                    &route.prefix,
                    Command::Get,
                    Some(key),
                    Outcome::found(answer.is_some()),
                    started,
                );
                Some(Ok(answer))
            }
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
                let started = route.observers.as_ref().and_then(Observers::start);
                // Synchronous reads, decoded in place: no copies of the stored bytes.
                let mut hits = 0;
                for &i in &indexes {
                    let key = keys[i];
                    let found = tier.read(key, |b| route.codec.decode(key, route.name(), b));
                    hits += usize::from(found.as_ref().is_some_and(Option::is_some));
                    out[i] = found.flatten().flatten();
                }
                if let Some(observers) = &route.observers {
                    let misses = indexes.len() - hits;
                    let found = Outcome::Found { hits, misses };
                    observers.local(
                        route.name(),
                        &route.prefix,
                        Command::GetMany,
                        None,
                        found,
                        started,
                    );
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
    pub(super) fn split(&self, keys: &[&str]) -> Result<Vec<(Arc<Route>, Vec<usize>)>> {
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
}
