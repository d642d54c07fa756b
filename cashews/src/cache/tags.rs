//! Tags: named groups of keys, deleted together with [`Cache::delete_tags`].
//!
//! Membership is a set at `_tag:<tag>`, routed like any key (so `setup_prefix("_tag:", url)`
//! gives tags a backend of their own). A key joins its tags when it is written: by
//! [`Cache::set_tagged`] or [`Cache::incr_tagged`], or by a strategy running inside
//! [`tagged`] (what the attribute macros' `tags = [...]` expands to), which tags exactly the
//! strategy's own key and not the keys of other cached calls made inside it. A tag set lives
//! as long as its longest-lived member ([PORT]: Python keeps the latest member's TTL).
//!
//! # Cleanup on delete
//!
//! Tags need not be registered to be written. Registering them ([`Cache::register_tag`]; the
//! attribute macros register theirs) tells the cache which tags a key belongs to
//! ([`Cache::get_key_tags`]), so [`Cache::delete`], [`Cache::delete_many`] and
//! [`Cache::delete_match`] take deleted keys out of their tag sets. Without that, a key
//! deleted and then stored again *untagged* would still be deleted by its old tag. With
//! nothing registered, a delete pays one atomic load for this.
//!
//! Keys that *expire* stay in their tag sets until the set itself expires (it lives as long
//! as its longest member): Redis does not report expiries, and the memory backend drops an
//! expired entry on read without calling back into the cache. That is harmless except in the
//! case above: a tagged key that expired and was then stored again untagged is deleted by its
//! old tag. Delete the key explicitly (or store it tagged again) if that matters.
//!
//! # Recipe: invalidate a group by an index field
//!
//! To drop every cached value of one user (or tenant, or order) at once, whatever function
//! cached it, tag each key whose template holds the field with one tag per value of the field,
//! and delete that tag. This serves what Python cashews 2.x did with `IndexRedis`
//! (`index_name` and `index_field`), on every backend:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! static CACHE: std::sync::LazyLock<cashews::Cache> = std::sync::LazyLock::new(|| {
//!     let cache = cashews::Cache::new();
//!     cache.setup("mem://").expect("a valid URL");
//!     cache
//! });
//!
//! // index_name = "user", index_field = "user_uid"
//! #[cashews::cache(ttl = "1h", key = "profile:{user_uid}", tags = ["user:{user_uid}"], cache = CACHE)]
//! async fn profile(user_uid: &str) -> String {
//!     format!("profile of {user_uid}")
//! }
//!
//! #[cashews::cache(ttl = "1h", key = "orders:{user_uid}:{page}", tags = ["user:{user_uid}"], cache = CACHE)]
//! async fn orders(user_uid: &str, page: u32) -> Vec<u32> {
//!     vec![page]
//! }
//!
//! profile("42").await;
//! orders("42", 1).await;
//! orders("7", 1).await;
//! // Every cached value of user 42, and only those.
//! assert_eq!(CACHE.delete_tags(&["user:42"]).await?, 2);
//! assert!(CACHE.exists("orders:7:1").await?);
//! # Ok(())
//! # }
//! ```
//!
//! The tag set lives at `_tag:user:42` on the backend that holds the keys (or on the one
//! `setup_prefix("_tag:", url)` names), so the group is shared by every process on Redis or
//! disk.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use foldhash::fast::FixedState;
use futures_util::StreamExt;
use futures_util::future::Either;
use serde::Serialize;

use super::Cache;
use super::route::Route;
use crate::backend::Expiry;
use crate::command::Command;
use crate::error::{Result, shorten};
use crate::ttl::IntoTtl;

mod registry;

pub(crate) use registry::Registry;

/// The prefix of tag sets.
pub const TAG_PREFIX: &str = "_tag:";

/// The TTL of a tag set holding a key without expiry (the command set has no "persist").
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Keys deleted per round by [`Cache::delete_tags`].
const BATCH: usize = 100;

#[derive(Debug, Clone)]
struct Tagging {
    key: String,
    tags: Vec<String>,
}

tokio::task_local! {
    static TAGGING: Tagging;
}

/// Runs `fut` so that a write of `key` inside it (by a strategy) also adds `key` to `tags`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// cashews::tagged("user:1", vec!["users".to_owned()], cache.set("user:1", "ann", "1h")).await?;
/// cache.delete_tags(&["users"]).await?;
/// assert!(!cache.exists("user:1").await?);
/// # Ok(()) }
/// ```
pub fn tagged<F: Future>(
    key: impl Into<String>,
    tags: Vec<String>,
    fut: F,
) -> impl Future<Output = F::Output> {
    // Not an `async fn`: `fut` (a whole strategy's future) is held once, not moved again into
    // a second copy held across its own await.
    if tags.is_empty() {
        return Either::Left(fut);
    }
    let tagging = Tagging {
        key: key.into(),
        tags,
    };
    Either::Right(TAGGING.scope(tagging, fut))
}

/// Whether the current task asks for tags when `key` is written ([`scoped`] without the
/// copy).
pub(crate) fn is_scoped(key: &str) -> bool {
    TAGGING.try_with(|t| t.key == key).unwrap_or(false)
}

/// The tags the current task asks for when `key` is written.
pub(crate) fn scoped(key: &str) -> Option<Vec<String>> {
    TAGGING
        .try_with(|t| (t.key == key).then(|| t.tags.clone()))
        .ok()
        .flatten()
}

impl Cache {
    /// Stores a value and adds its key to each tag's set (`_tag:<tag>`).
    ///
    /// # Errors
    ///
    /// As [`Cache::set`], for the value or for a tag set.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set_tagged("post:1", "hello", "1h", &["posts", "author:7"]).await?;
    /// cache.delete_tags(&["author:7"]).await?;
    /// assert_eq!(cache.get::<String>("post:1").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: impl IntoTtl,
        tags: &[&str],
    ) -> Result<bool> {
        let ttl = ttl.into_ttl()?;
        let written = self.set(key, value, ttl).await?;
        if written {
            self.add_to_tags(key, tags.iter().copied(), ttl.duration())
                .await?;
        }
        Ok(written)
    }

    /// Adds `by` to the integer at `key` (as [`Cache::incr_by`]) and adds the key to each
    /// tag's set, as [`Cache::set_tagged`] does for a value.
    ///
    /// # Errors
    ///
    /// As [`Cache::incr_by`], or a failure to update a tag set.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.incr_tagged("visits:home", 1, "1h", &["visits"]).await?, 1);
    /// cache.delete_tags(&["visits"]).await?;
    /// assert_eq!(cache.get::<i64>("visits:home").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn incr_tagged(
        &self,
        key: &str,
        by: i64,
        ttl: impl IntoTtl,
        tags: &[&str],
    ) -> Result<i64> {
        let ttl = ttl.into_ttl()?;
        let value = self.incr_by(key, by, ttl).await?;
        // A disabled `incr` changed nothing, so it joins no tag either.
        if !tags.is_empty() && self.runs(key, Command::Incr) {
            self.add_to_tags(key, tags.iter().copied(), ttl.duration())
                .await?;
        }
        Ok(value)
    }

    /// Registers `tag_template` for the keys that match `key_template`, so that deleting such
    /// a key also takes it out of that tag's set (see [`Cache::get_key_tags`] for how a key
    /// is matched and the tag rendered). Registering the same pair again does nothing.
    ///
    /// Tags do not have to be registered to be written or deleted with
    /// [`Cache::delete_tags`]; registration only serves this cleanup. The attribute macros
    /// register their `tags = [...]` against their full key template by themselves.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKeyTemplate`](crate::Error::InvalidKeyTemplate) when either template
    /// does not parse, or the tag uses a filter that is neither built in nor registered
    /// (register custom filters first).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.register_tag("user:{id}", "profile:{id}")?;
    /// cache.set_tagged("profile:7", "ann", "1h", &["user:7"]).await?;
    /// cache.delete("profile:7").await?; // also leaves the set `_tag:user:7`
    /// cache.set("profile:7", "bob", "1h").await?; // stored again, untagged
    /// cache.delete_tags(&["user:7"]).await?;
    /// assert_eq!(cache.get::<String>("profile:7").await?.as_deref(), Some("bob"));
    ///
    /// assert!(cache.register_tag("user:{id", "profile:{id}").is_err());
    /// assert!(cache.register_tag("user:{id:nope}", "profile:{id}").is_err());
    /// # Ok(()) }
    /// ```
    pub fn register_tag(&self, tag_template: &str, key_template: &str) -> Result<()> {
        self.inner
            .tag_registry
            .register(tag_template, key_template, true)
    }

    /// The registered tags `key` belongs to, rendered, in registration order (grouped by
    /// tag, in the order tags were first registered), without repeats.
    ///
    /// Each key template is matched against the whole key:
    ///
    /// - literal text matches exactly (\[PORT\]: Python leaves `.` unescaped, so there it
    ///   matches any character; here it is a dot);
    /// - a field matches any text, possibly none; of several ways to split a key, the earlier
    ///   field takes the most. A field is known by its name and path (`{data.first}` and
    ///   `{data.second}` are distinct; `{m:get(k)}` is `m[k]`); its filters do not matter, so
    ///   `{i:len}` captures what the key holds at that place as `i`;
    /// - a key-context field (`{@:get(name)}`) matches any text and captures nothing.
    ///
    /// The tag template is then rendered: a field takes the text captured under its name
    /// (empty when the field matched nothing) and applies the tag's own filters to it. A
    /// field the key template does not have reads the key context: `{@:get(name)}`, and
    /// also a plain `{name}` (as Python does); otherwise it renders empty.
    ///
    /// With nothing registered this is one atomic load.
    ///
    /// ```
    /// use cashews::key::context::with_key_context;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.register_tag("tag", "key")?;
    /// cache.register_tag("tag_template", "key{i}")?;
    /// cache.register_tag("tag_test:{i}", "key{i:len}:test")?;
    /// cache.register_tag("tag_func:{i:hash}", "key{i}:test")?;
    /// cache.register_tag("tag_context:{@:get(val)}", "key{i}:test")?;
    ///
    /// let tags = with_key_context([("val", 10)], async { cache.get_key_tags("key1:test") }).await;
    /// assert_eq!(tags, [
    ///     "tag_template",
    ///     "tag_test:1",
    ///     "tag_func:c4ca4238a0b923820dcc509a6f75849b",
    ///     "tag_context:10",
    /// ]);
    /// assert_eq!(cache.get_key_tags("key"), ["tag", "tag_template"]);
    /// assert!(cache.get_key_tags("prefixkey").is_empty());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn get_key_tags(&self, key: &str) -> Vec<String> {
        self.inner.tag_registry.key_tags(key)
    }

    /// Deletes every key of these tags, and the tag sets; returns how many keys existed.
    ///
    /// Members are popped 100 at a time, so a tag with millions of keys never loads them at
    /// once. A tag never used deletes nothing.
    ///
    /// # Errors
    ///
    /// A backend failure outside safe mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set_tagged("a", &1, "1h", &["even", "all"]).await?;
    /// cache.set_tagged("b", &2, "1h", &["all"]).await?;
    /// assert_eq!(cache.delete_tags(&["even"]).await?, 1);
    /// assert_eq!(cache.get::<i32>("b").await?, Some(2));
    /// # Ok(()) }
    /// ```
    pub async fn delete_tags(&self, tags: &[&str]) -> Result<u64> {
        let mut deleted = 0;
        for tag in tags {
            let set = format!("{TAG_PREFIX}{tag}");
            loop {
                let keys = self.set_pop(&set, BATCH).await?;
                if !keys.is_empty() {
                    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                    deleted += self.delete_many(&refs).await?;
                }
                if keys.len() < BATCH {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Adds `key` to each tag's set; the set lives at least `ttl` more (or forever with none).
    pub(crate) async fn add_to_tags<'a>(
        &self,
        key: &str,
        tags: impl IntoIterator<Item = &'a str>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        for tag in tags {
            let set = format!("{TAG_PREFIX}{tag}");
            let current = self.get_expire(&set).await?;
            let keep = match (ttl, current) {
                (None, _) | (_, Expiry::Persistent) => None,
                (Some(new), Expiry::In(left)) => Some(new.max(left)),
                (Some(new), _) => Some(new),
            };
            match keep {
                Some(ttl) => {
                    self.set_add(&set, &[key], crate::Ttl::new(ttl)).await?;
                }
                None => {
                    self.set_add(&set, &[key], crate::Ttl::NONE).await?;
                    if let Expiry::In(_) = current {
                        // A member without expiry: the set must outlive every TTL.
                        self.expire(&set, FOREVER).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The macros' registration hook: `tags` against `key`, once per cache and call site.
    #[inline]
    pub(crate) fn register_static_tags(&self, key: &'static str, tags: &'static [&'static str]) {
        self.inner.tag_registry.register_static(key, tags);
    }

    /// Whether `command` on `key` would run (routed and not disabled): a disabled delete or
    /// incr must not touch tag sets either.
    pub(crate) fn runs(&self, key: &str, command: Command) -> bool {
        self.route_for(key)
            .is_ok_and(|route| !self.is_off(&route, command))
    }

    /// After a delete: takes `keys` out of the sets of their registered tags, one
    /// `set_remove` per tag. Failures are logged; the delete has happened either way.
    pub(crate) async fn untag(&self, keys: &[&str]) {
        let registry = &self.inner.tag_registry;
        if keys.is_empty() || !registry.is_active() {
            return;
        }
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        let mut index: HashMap<String, usize, FixedState> = HashMap::default();
        for &key in keys {
            for tag in registry.key_tags(key) {
                match index.get(&tag) {
                    Some(&i) => groups[i].1.push(key),
                    None => {
                        index.insert(tag.clone(), groups.len());
                        groups.push((tag, vec![key]));
                    }
                }
            }
        }
        for (tag, members) in groups {
            let set = format!("{TAG_PREFIX}{tag}");
            if let Err(error) = self.set_remove(&set, &members).await {
                tracing::error!(tag = %shorten(&tag), %error, "could not remove deleted keys from their tag set");
            }
        }
    }

    /// `delete_match` with registered tags: the matched keys are needed for cleanup, so scan
    /// them and delete them in batches (deleting during a scan is safe on every backend: the
    /// memory backend scans a snapshot, Redis SCAN tolerates deletes).
    pub(crate) async fn delete_match_untagging(&self, pattern: &str) -> Result<u64> {
        let Some(route) = self.enter_owned(pattern, Command::DeleteMatch)? else {
            return Ok(0);
        };
        let result = self.delete_scanned(&route, pattern).await;
        Self::settle(&route, Command::DeleteMatch, pattern, result)
    }

    async fn delete_scanned(&self, route: &Route, pattern: &str) -> Result<u64> {
        let mut keys = route.backend.scan(pattern, BATCH);
        let mut deleted = 0;
        let mut batch: Vec<String> = Vec::with_capacity(BATCH);
        loop {
            let next = keys.next().await.transpose()?;
            let done = next.is_none();
            batch.extend(next);
            if batch.len() == BATCH || (done && !batch.is_empty()) {
                let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                deleted += route.backend.delete_many(&refs).await?;
                self.untag(&refs).await;
                batch.clear();
            }
            if done {
                return Ok(deleted);
            }
        }
    }

    /// After a write of `key` inside [`tagged`]: add it to the scope's tags.
    pub(crate) async fn tag_if_scoped(&self, key: &str, ttl: Option<Duration>) {
        let Some(tags) = scoped(key) else {
            return;
        };
        // Boxed: every write holds this future, and tagged writes are the rare ones.
        if let Err(error) =
            Box::pin(self.add_to_tags(key, tags.iter().map(String::as_str), ttl)).await
        {
            tracing::error!(key = %shorten(key), %error, "could not add a key to its tags");
        }
    }
}

// ----- Inherited at spawn (crate::context) ------------------------------------------------

impl crate::context::Tagging {
    /// The current task's tagging scope; `None` outside [`tagged`].
    pub(crate) fn capture() -> Option<Self> {
        TAGGING
            .try_with(|tagging| Self {
                key: tagging.key.clone(),
                tags: tagging.tags.clone(),
            })
            .ok()
    }

    /// Runs `fut` inside this tagging scope.
    pub(crate) fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        let tagging = Tagging {
            key: self.key,
            tags: self.tags,
        };
        TAGGING.scope(tagging, fut)
    }
}
