//! The writing commands of [`Cache`]: `set` and its conditional forms, `set_raw`,
//! `set_many`, `incr`, `exists`, `delete`, `delete_many`, `expire`, `get_expire`.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::{Cache, Command};
use crate::backend::{Condition, Expiry, SetOptions};
use crate::error::{Error, Result, shorten};
use crate::middleware::{Observers, Outcome};
use crate::ttl::IntoTtl;

impl Cache {
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
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> impl Future<Output = Result<bool>> {
        // Not an `async fn`, which copies its arguments into its own state before it starts:
        // the copy of the key, read back at once as one 16-byte load, stalled store
        // forwarding and was a visible share of a `set` on `mem://`.
        self.set_with(key, value, ttl, Condition::Always)
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
    pub fn set_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> impl Future<Output = Result<bool>> {
        // Not an `async fn`, as `set` (its arguments would be copied once more).
        self.set_with(key, value, ttl, Condition::IfAbsent)
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
    pub fn set_if_present<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
    ) -> impl Future<Output = Result<bool>> {
        // Not an `async fn`, as `set` (its arguments would be copied once more).
        self.set_with(key, value, ttl, Condition::IfPresent)
    }

    /// Not an `async fn` (see [`Cache::set`]).
    #[allow(clippy::manual_async_fn)]
    fn set_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
        condition: Condition,
    ) -> impl Future<Output = Result<bool>> {
        async move {
            let ttl = ttl.into_ttl()?;
            let written = self.set_untagged(key, value, ttl, condition).await?;
            if written {
                self.tag_if_scoped(key, ttl.duration()).await;
            }
            Ok(written)
        }
    }

    /// Not an `async fn` (see [`Cache::set`]).
    #[allow(clippy::manual_async_fn)]
    fn set_untagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: crate::Ttl,
        condition: Condition,
    ) -> impl Future<Output = Result<bool>> {
        async move {
            let options = SetOptions::ttl(ttl.duration()).condition(condition);
            let (route, bytes) = {
                let router = self.routes();
                let Some(route) = self.enter(&router, key, Command::Set)? else {
                    return Ok(false);
                };
                // The synchronous try: a whole local tier completes the write, from the scratch
                // buffer (it copies the bytes). Written out rather than through `set_local`:
                // called, it cost `set` on `mem://` about a tenth.
                if let Some(tier) = route.local.as_ref().filter(|tier| tier.is_whole()) {
                    let started = route.observers.as_ref().and_then(Observers::start);
                    if let Some(result) = Self::with_encoded(route, key, value, |bytes| {
                        tier.write(key, bytes, options)
                    })? {
                        if let Some(observers) = &route.observers {
                            Self::observe_local_set(observers, route, key, &result, started);
                        }
                        return Self::settle(route, Command::Set, key, result);
                    }
                }
                (Arc::clone(route), Self::encode(route, key, value)?)
            };
            let result = route.backend.set(key, bytes, options).await;
            Self::settle(&route, Command::Set, key, result)
        }
    }

    /// [`Cache::set`] without a future, when the key's route writes synchronously (a whole
    /// local tier: `mem://`) and no tagging scope asks for the key; `None` when only the
    /// async write can do it. The caching strategies try this first, so that their futures
    /// hold no write future for a memory route.
    pub(crate) fn set_now<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: crate::Ttl,
    ) -> Option<Result<bool>> {
        if super::tags::is_scoped(key) {
            return None;
        }
        let router = self.routes();
        match self.enter(&router, key, Command::Set) {
            Err(error) => Some(Err(error)),
            Ok(None) => Some(Ok(false)),
            Ok(Some(route)) => Self::set_local(route, key, value, SetOptions::ttl(ttl.duration())),
        }
    }

    /// The synchronous write: a whole local tier completes it, from the scratch buffer (the
    /// tier copies the bytes). `None` when the route has no such tier.
    fn set_local<T: Serialize + ?Sized>(
        route: &super::Route,
        key: &str,
        value: &T,
        options: SetOptions,
    ) -> Option<Result<bool>> {
        let tier = route.local.as_ref().filter(|tier| tier.is_whole())?;
        let started = route.observers.as_ref().and_then(Observers::start);
        let result =
            match Self::with_encoded(route, key, value, |bytes| tier.write(key, bytes, options)) {
                Err(error) => return Some(Err(error)),
                Ok(None) => return None,
                Ok(Some(result)) => result,
            };
        if let Some(observers) = &route.observers {
            Self::observe_local_set(observers, route, key, &result, started);
        }
        Some(Self::settle(route, Command::Set, key, result))
    }

    /// Tells the route's observers of a write its local tier did.
    #[cold]
    fn observe_local_set(
        observers: &Observers,
        route: &super::Route,
        key: &str,
        result: &Result<bool>,
        started: Option<std::time::Instant>,
    ) {
        let outcome = match result {
            Ok(_) => Outcome::Done,
            Err(error) => Outcome::Failed(error),
        };
        observers.local(
            route.name(),
            &route.prefix,
            Command::Set,
            Some(key),
            outcome,
            started,
        );
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

    /// Sets a new TTL on an existing key; returns whether it existed. A TTL meaning "no
    /// expiry" (`0`, `None`, [`Ttl::NONE`](crate::Ttl::NONE)) removes the key's TTL, keeping
    /// the value, in one atomic step on every backend (Redis `PERSIST`), as in
    /// [`Cache::set`].
    ///
    /// # Errors
    ///
    /// A bad TTL, and as [`Cache::get`].
    ///
    /// ```
    /// use cashews::backend::Expiry;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("k", "v", None::<u64>).await?;
    /// assert!(cache.expire("k", "1m").await?);
    /// assert!(cache.expire("k", 0).await?);
    /// assert_eq!(cache.get_expire("k").await?, Expiry::Persistent);
    /// assert!(!cache.expire("missing", "1m").await?);
    /// # Ok(()) }
    /// ```
    pub async fn expire(&self, key: &str, ttl: impl IntoTtl) -> Result<bool> {
        let ttl = ttl.into_ttl()?;
        self.keyed(Command::Expire, key, |route| async move {
            // A zero TTL is "no expiry" (`Ttl` holds `None`): the backend removes the key's TTL.
            route.backend.expire(key, ttl.duration()).await
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
