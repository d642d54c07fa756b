#![doc = include_str!("../docs/overview.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
mod cache;
pub mod clock;
pub mod codec;
pub mod command;
pub mod config;
pub mod error;
pub mod key;
mod lock;
pub mod pattern;
pub mod strategy;
pub mod ttl;

pub use backend::{Backend, MemoryBackend};
pub use bytes::Bytes;
pub use cache::{Cache, cache};
pub use clock::Clock;
pub use command::Command;
pub use error::{Error, Result};
pub use lock::LockGuard;
pub use ttl::{IntoTtl, Ttl};

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Caches an async function's result: `#[cashews::cache(ttl = ..., key = ...)]`.
///
/// Expands to a call of [`strategy::cache()`]: the key is rendered once per call, a hit returns
/// the stored result without running the body, a miss runs the body and stores what its
/// result type allows ([`strategy::Outcome`]: any `T`; `Ok` of a `Result`, never `Err`;
/// `Option` whole). A cache failure never fails the call.
///
/// Arguments:
///
/// | argument | value |
/// |---|---|
/// | `ttl` (required) | `"1h30m"` (checked at compile time), whole seconds, or any expression of the arguments implementing [`IntoTtl`] |
/// | `key` | a template such as `"user:{user.id}:{lang:lower}"`, checked at compile time against the arguments; default: module path, function name and every argument |
/// | `prefix` | text put before the key, with a `:` |
/// | `condition` | `not_none`: do not store `None` |
/// | `time_condition` | store only results that took at least this long |
/// | `cache` | a [`Cache`] to use instead of the default [`cache()`](fn@cache) (an expression, e.g. a `static`) |
/// | `filters` | custom key filters the template uses (registered with [`key::filter::register_filter`]) |
/// | `protected` | `true` (default): concurrent misses of one key in this process run the body once |
/// | `crate` | the path to this crate, for re-exporters |
///
/// Arguments are rendered into keys with [`key::KeyPart`]; `self` is left out of the default
/// key (the type name stands in for it).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Profile {
///     name: String,
/// }
///
/// #[cashews::cache(ttl = "1h", key = "profile:{user_id}")]
/// async fn profile(user_id: u64) -> Result<Profile, std::io::Error> {
///     Ok(Profile { name: format!("user {user_id}") })
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(profile(7).await.unwrap().name, "user 7");
/// let stored: Option<Profile> = cashews::cache().get("profile:7").await?;
/// assert_eq!(stored.map(|p| p.name).as_deref(), Some("user 7"));
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::cache;
