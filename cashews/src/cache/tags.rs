//! Tags (SPEC §6.1): named groups of keys, deleted together with [`Cache::delete_tags`].
//!
//! Membership is a set at `_tag:<tag>`, routed like any key (so `setup_prefix("_tag:", url)`
//! gives tags a backend of their own). A key joins its tags when it is written: by
//! [`Cache::set_tagged`], or by a strategy running inside [`tagged`] (what the attribute
//! macros' `tags = [...]` expands to), which tags exactly the strategy's own key and not the
//! keys of other cached calls made inside it. A tag set lives as long as its longest-lived
//! member ([PORT]: Python keeps the latest member's TTL).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::Cache;
use crate::backend::Expiry;
use crate::error::{Result, shorten};
use crate::ttl::IntoTtl;

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
pub async fn tagged<F: Future>(key: impl Into<String>, tags: Vec<String>, fut: F) -> F::Output {
    if tags.is_empty() {
        return fut.await;
    }
    let tagging = Tagging {
        key: key.into(),
        tags,
    };
    TAGGING.scope(tagging, fut).await
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

    /// After a write of `key` inside [`tagged`]: add it to the scope's tags.
    pub(crate) async fn tag_if_scoped(&self, key: &str, ttl: Option<Duration>) {
        let Some(tags) = scoped(key) else {
            return;
        };
        if let Err(error) = self
            .add_to_tags(key, tags.iter().map(String::as_str), ttl)
            .await
        {
            tracing::error!(key = %shorten(key), %error, "could not add a key to its tags");
        }
    }
}
