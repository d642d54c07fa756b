//! The built-in middlewares: [`add_prefix`], [`all_keys_lower`], [`size_limit`].

use std::borrow::Cow;
use std::ops::{Bound, RangeBounds};

use super::{BoxFuture, Middleware, Next, Reply, Request, Stage};
use crate::error::Result;
use crate::pattern;

/// Puts `prefix` before every key the route's backend sees: keys, patterns (escaped, so glob
/// characters in the prefix match themselves), the keys of `get_many`, `set_many` and
/// `delete_many`. Keys coming back (scan results, lock releases) lose it again, so callers
/// never see it. `clear` deletes only the keys under the prefix and `get_keys_count` counts
/// only them (by a scan, which reads every key of the prefix); `ping` is unchanged.
///
/// Use it to share one Redis database between services or versions of a service.
///
/// ```
/// use cashews::middleware;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let backend = cashews::MemoryBackend::new(Default::default());
/// let cache = cashews::Cache::new();
/// let config = cashews::config::CacheConfig::default();
/// cache.setup_backend_with("", backend.clone(), config, [middleware::add_prefix("v2!")])?;
/// cache.set("user:1", "ada", "1h").await?;
/// // The backend holds the prefixed key; the cache's callers never see the prefix.
/// use cashews::Backend;
/// assert!(backend.exists("v2!user:1").await?);
/// let keys: Vec<String> = futures_util::TryStreamExt::try_collect(cache.scan("user:*")).await?;
/// assert_eq!(keys, ["user:1"]);
/// # Ok(()) }
/// ```
#[must_use]
pub fn add_prefix(prefix: impl Into<String>) -> Stage {
    let prefix = prefix.into();
    Stage::intercept(AddPrefix {
        escaped: pattern::escape(&prefix),
        prefix,
    })
}

struct AddPrefix {
    prefix: String,
    /// The prefix as a glob pattern matching itself.
    escaped: String,
}

impl Middleware for AddPrefix {
    fn call<'a>(&'a self, mut request: Request, next: Next) -> BoxFuture<'a, Result<Reply>> {
        match &mut request {
            Request::Clear => {
                let pattern = format!("{}*", self.escaped);
                return Box::pin(async move {
                    next.run(Request::DeleteMatch { pattern }).await?;
                    Ok(Reply::Done)
                });
            }
            Request::GetKeysCount => {
                let pattern = format!("{}*", self.escaped);
                return Box::pin(async move {
                    let request = Request::Scan {
                        pattern,
                        batch_size: 1000,
                    };
                    match next.run(request).await? {
                        Reply::Keys(keys) => {
                            let count = futures_util::TryStreamExt::try_fold(
                                keys,
                                0_u64,
                                |n, _| async move { Ok(n + 1) },
                            )
                            .await?;
                            Ok(Reply::Count(count))
                        }
                        other => Err(other.mismatch(crate::Command::Scan)),
                    }
                });
            }
            Request::Scan { pattern, .. } | Request::DeleteMatch { pattern } => {
                pattern.insert_str(0, &self.escaped);
            }
            other => {
                for key in other.keys_mut() {
                    key.insert_str(0, &self.prefix);
                }
            }
        }
        next.run(request)
    }

    fn key_back<'k>(&self, key: &'k str) -> Option<Cow<'k, str>> {
        key.strip_prefix(self.prefix.as_str()).map(Cow::Borrowed)
    }
}

/// Lower-cases every key and pattern the route's backend sees (ASCII letters only, so the
/// byte length of a key never changes), making keys case-insensitive.
///
/// ```
/// use cashews::middleware;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup_with("mem://", [middleware::all_keys_lower()])?;
/// cache.set("User:1", "ada", "1h").await?;
/// assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("ada"));
/// # Ok(()) }
/// ```
#[must_use]
pub fn all_keys_lower() -> Stage {
    Stage::intercept(AllKeysLower)
}

struct AllKeysLower;

impl Middleware for AllKeysLower {
    fn call<'a>(&'a self, mut request: Request, next: Next) -> BoxFuture<'a, Result<Reply>> {
        request
            .keys_mut()
            .for_each(|key| key.make_ascii_lowercase());
        next.run(request)
    }
}

/// Stores only values whose encoded size (bytes, after serialization, signing and
/// compression) is within `sizes`: a `set` outside it is skipped and answers `false` (not
/// stored), and `set_many` (and a transaction's commit, `apply`) stores only the pairs
/// within it. Skips are logged with
/// `tracing::debug!`. Compare the `max_value_size` option, which fails an oversized `set`
/// with an error instead.
///
/// ```
/// use cashews::middleware;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup_with("mem://", [middleware::size_limit(2..=8)])?;
/// assert!(cache.set_raw("small", "abcd".into(), "1m").await?);
/// assert!(!cache.set_raw("large", "abcdefghijk".into(), "1m").await?);
/// assert!(!cache.set_raw("tiny", "a".into(), "1m").await?);
/// # Ok(()) }
/// ```
#[must_use]
pub fn size_limit(sizes: impl RangeBounds<usize>) -> Stage {
    let min = match sizes.start_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let max = match sizes.end_bound() {
        Bound::Included(&n) => Some(n),
        Bound::Excluded(&n) => Some(n.saturating_sub(1)),
        Bound::Unbounded => None,
    };
    Stage::intercept(SizeLimit { min, max })
}

struct SizeLimit {
    min: usize,
    max: Option<usize>,
}

impl SizeLimit {
    fn admits(&self, key: &str, size: usize) -> bool {
        let fits = size >= self.min && self.max.is_none_or(|max| size <= max);
        if !fits {
            tracing::debug!(
                key = %crate::error::shorten(key),
                size,
                min = self.min,
                max = ?self.max,
                "size_limit middleware skipped a value outside its sizes"
            );
        }
        fits
    }
}

impl Middleware for SizeLimit {
    fn call<'a>(&'a self, mut request: Request, next: Next) -> BoxFuture<'a, Result<Reply>> {
        match &mut request {
            Request::Set { key, value, .. } if !self.admits(key, value.len()) => {
                Box::pin(async { Ok(Reply::Flag(false)) })
            }
            Request::SetMany { pairs, .. } => {
                pairs.retain(|(key, value)| self.admits(key, value.len()));
                if pairs.is_empty() {
                    Box::pin(async { Ok(Reply::Done) })
                } else {
                    next.run(request)
                }
            }
            Request::Apply { batch } => {
                batch.retain_writes(|key, value| self.admits(key, value.len()));
                next.run(request)
            }
            _ => next.run(request),
        }
    }
}
