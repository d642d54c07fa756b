//! Cache keys at run time: rendering values ([`KeyPart`]), building keys ([`KeyBuf`]),
//! filters ([`filter`]), the task-scoped key context ([`context`]), templates parsed at run
//! time ([`KeyTemplate`]) and the keys each strategy uses by default ([`Strategy`]: its prefix
//! and the default key of a function, which the attribute macros expand to).
//!
//! The attribute macros turn a key template such as `user:{user.id}:{email:lower:hash}` into
//! calls to this module at compile time; [`KeyTemplate`] does the same at run time for code
//! that cannot use the macros.
//!
//! ```
//! use cashews::key::{KeyBuf, KeyTemplate, filter, render};
//!
//! // What `key = "user:{user_id}:{email:lower:hash}"` expands to, roughly:
//! let (user_id, email) = (7, "Ada@Example.com");
//! let mut key = KeyBuf::new();
//! key.literal("user:");
//! key.part(&user_id);
//! key.literal(":");
//! key.text(&filter::hash(&filter::lower(&render(email)), "md5")?);
//! let key = key.finish();
//!
//! // The same at run time.
//! let template = KeyTemplate::parse("user:{user_id}:{email:lower:hash}")?;
//! assert_eq!(template.render(&[("user_id", &user_id), ("email", &email)])?, key);
//! # Ok::<(), cashews::Error>(())
//! ```

mod buf;
pub mod context;
mod defaults;
pub mod filter;
mod jwt;
mod part;
mod template;

pub use buf::KeyBuf;
pub use defaults::{SEPARATOR, Strategy};
pub use part::{KeyBytes, KeyError, KeyPart, render};
pub use template::KeyTemplate;

/// The prefix of the lock a [locked](crate::backend::TransactionMode::Locked) transaction
/// takes on each key before its first write: `:tx_lock:<key>`.
///
/// ```
/// assert_eq!(cashews::key::tx_lock_key("user:1"), ":tx_lock:user:1");
/// ```
pub const TX_LOCK_PREFIX: &str = ":tx_lock:";

/// The one lock a [serializable](crate::backend::TransactionMode::Serializable) transaction
/// takes before its first write, shared by every serializable transaction on the backend.
///
/// ```
/// assert_eq!(cashews::key::SERIALIZABLE_LOCK_KEY, ":serializable:lock");
/// ```
pub const SERIALIZABLE_LOCK_KEY: &str = ":serializable:lock";

/// The key of a locked transaction's lock on `key`: [`TX_LOCK_PREFIX`] then the key.
///
/// ```
/// assert_eq!(cashews::key::tx_lock_key("k"), ":tx_lock:k");
/// ```
#[must_use]
pub fn tx_lock_key(key: &str) -> String {
    format!("{TX_LOCK_PREFIX}{key}")
}
