//! [`Request`] and [`Reply`]: one backend command as data, and its answer.

use std::time::Duration;

use bytes::Bytes;

use crate::Command;
use crate::backend::{Batch, BoxStream, Expiry, SetOptions};
use crate::error::{Error, Result};

/// One backend command with its arguments, as a middleware sees it.
///
/// Values are the encoded bytes the backend stores (after the codec), keys are the full keys
/// (route prefix included). A middleware may change any field, answer without calling
/// [`Next::run`](super::Next::run), or pass the request on unchanged.
///
/// ```
/// use cashews::Command;
/// use cashews::middleware::Request;
///
/// let mut request = Request::Get { key: "user:1".to_owned() };
/// assert_eq!(request.command(), Command::Get);
/// for key in request.keys_mut() {
///     key.insert_str(0, "app!");
/// }
/// assert_eq!(request.key(), Some("app!user:1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// [`Backend::get`](crate::Backend::get) (also what `get_raw` and the strategies send).
    Get {
        /// The key.
        key: String,
    },
    /// [`Backend::get_many`](crate::Backend::get_many).
    GetMany {
        /// The keys, in the order of the reply.
        keys: Vec<String>,
    },
    /// [`Backend::set`](crate::Backend::set).
    Set {
        /// The key.
        key: String,
        /// The encoded value.
        value: Bytes,
        /// TTL and condition.
        options: SetOptions,
    },
    /// [`Backend::set_many`](crate::Backend::set_many).
    SetMany {
        /// Keys and encoded values.
        pairs: Vec<(String, Bytes)>,
        /// The TTL of every pair.
        ttl: Option<Duration>,
    },
    /// [`Backend::delete`](crate::Backend::delete).
    Delete {
        /// The key.
        key: String,
    },
    /// [`Backend::delete_many`](crate::Backend::delete_many).
    DeleteMany {
        /// The keys.
        keys: Vec<String>,
    },
    /// [`Backend::delete_match`](crate::Backend::delete_match).
    DeleteMatch {
        /// A glob pattern over full keys.
        pattern: String,
    },
    /// [`Backend::exists`](crate::Backend::exists) (also what `is_locked` sends).
    Exists {
        /// The key.
        key: String,
    },
    /// [`Backend::scan`](crate::Backend::scan) (also what `get_match` sends).
    Scan {
        /// A glob pattern over full keys.
        pattern: String,
        /// Keys asked per round trip.
        batch_size: usize,
    },
    /// [`Backend::incr`](crate::Backend::incr).
    Incr {
        /// The key.
        key: String,
        /// The amount added.
        by: i64,
        /// The TTL set when the counter is created.
        ttl: Option<Duration>,
    },
    /// [`Backend::expire`](crate::Backend::expire).
    Expire {
        /// The key.
        key: String,
        /// The new TTL; `None` removes it (the key persists).
        ttl: Option<Duration>,
    },
    /// [`Backend::get_expire`](crate::Backend::get_expire).
    GetExpire {
        /// The key.
        key: String,
    },
    /// [`Backend::set_lock`](crate::Backend::set_lock).
    SetLock {
        /// The lock's key.
        key: String,
        /// The holder's token.
        token: String,
        /// How long the lock lives.
        ttl: Duration,
    },
    /// [`Backend::unlock`](crate::Backend::unlock).
    Unlock {
        /// The lock's key.
        key: String,
        /// The holder's token.
        token: String,
    },
    /// [`Backend::get_bits`](crate::Backend::get_bits).
    GetBits {
        /// The key.
        key: String,
        /// Field indexes.
        indexes: Vec<u64>,
        /// Field width in bits.
        size: u8,
    },
    /// [`Backend::incr_bits`](crate::Backend::incr_bits).
    IncrBits {
        /// The key.
        key: String,
        /// Field indexes.
        indexes: Vec<u64>,
        /// Field width in bits.
        size: u8,
        /// The amount added to each field.
        by: i64,
    },
    /// [`Backend::slice_incr`](crate::Backend::slice_incr).
    SliceIncr {
        /// The window's key.
        key: String,
        /// Window start, in milliseconds.
        start: u64,
        /// Window end (the event's time), in milliseconds.
        end: u64,
        /// Events allowed in the window.
        max: u64,
        /// The window's TTL.
        ttl: Option<Duration>,
    },
    /// [`Backend::slice_incr_now`](crate::Backend::slice_incr_now).
    SliceIncrNow {
        /// The window's key.
        key: String,
        /// The window's length.
        period: Duration,
        /// Events allowed in the window.
        max: u64,
        /// The window's TTL.
        ttl: Option<Duration>,
    },
    /// [`Backend::set_add`](crate::Backend::set_add).
    SetAdd {
        /// The set's key.
        key: String,
        /// Members added.
        members: Vec<String>,
        /// The set's TTL.
        ttl: Option<Duration>,
    },
    /// [`Backend::set_remove`](crate::Backend::set_remove).
    SetRemove {
        /// The set's key.
        key: String,
        /// Members removed.
        members: Vec<String>,
    },
    /// [`Backend::set_pop`](crate::Backend::set_pop).
    SetPop {
        /// The set's key.
        key: String,
        /// How many members to pop.
        count: usize,
    },
    /// [`Backend::ping`](crate::Backend::ping).
    Ping {
        /// The message echoed (empty: `PONG`).
        message: Bytes,
    },
    /// [`Backend::get_size`](crate::Backend::get_size).
    GetSize {
        /// The key.
        key: String,
    },
    /// [`Backend::clear`](crate::Backend::clear).
    Clear,
    /// [`Backend::keys_count`](crate::Backend::keys_count).
    GetKeysCount,
    /// [`Backend::apply`](crate::Backend::apply): a transaction's commit. Its keys (deletes
    /// and writes) are in [`Request::keys_mut`], so key-rewriting middlewares see them.
    Apply {
        /// The deletes and writes.
        batch: Batch,
    },
}

/// The pattern of every request naming one key (or a pattern), binding it to `$key`.
macro_rules! single_key {
    ($key:ident) => {
        Request::Get { key: $key }
            | Request::Set { key: $key, .. }
            | Request::Delete { key: $key }
            | Request::Exists { key: $key }
            | Request::Incr { key: $key, .. }
            | Request::Expire { key: $key, .. }
            | Request::GetExpire { key: $key }
            | Request::SetLock { key: $key, .. }
            | Request::Unlock { key: $key, .. }
            | Request::GetBits { key: $key, .. }
            | Request::IncrBits { key: $key, .. }
            | Request::SliceIncr { key: $key, .. }
            | Request::SliceIncrNow { key: $key, .. }
            | Request::SetAdd { key: $key, .. }
            | Request::SetRemove { key: $key, .. }
            | Request::SetPop { key: $key, .. }
            | Request::GetSize { key: $key }
            | Request::DeleteMatch { pattern: $key }
            | Request::Scan { pattern: $key, .. }
    };
}

impl Request {
    /// The backend operation this request runs.
    ///
    /// ```
    /// use cashews::{Command, middleware::Request};
    /// assert_eq!(Request::Clear.command(), Command::Clear);
    /// ```
    #[must_use]
    pub fn command(&self) -> Command {
        match self {
            Self::Get { .. } => Command::Get,
            Self::GetMany { .. } => Command::GetMany,
            Self::Set { .. } => Command::Set,
            Self::SetMany { .. } => Command::SetMany,
            Self::Delete { .. } => Command::Delete,
            Self::DeleteMany { .. } => Command::DeleteMany,
            Self::DeleteMatch { .. } => Command::DeleteMatch,
            Self::Exists { .. } => Command::Exists,
            Self::Scan { .. } => Command::Scan,
            Self::Incr { .. } => Command::Incr,
            Self::Expire { .. } => Command::Expire,
            Self::GetExpire { .. } => Command::GetExpire,
            Self::SetLock { .. } => Command::SetLock,
            Self::Unlock { .. } => Command::Unlock,
            Self::GetBits { .. } => Command::GetBits,
            Self::IncrBits { .. } => Command::IncrBits,
            Self::SliceIncr { .. } => Command::SliceIncr,
            Self::SliceIncrNow { .. } => Command::SliceIncrNow,
            Self::SetAdd { .. } => Command::SetAdd,
            Self::SetRemove { .. } => Command::SetRemove,
            Self::SetPop { .. } => Command::SetPop,
            Self::Ping { .. } => Command::Ping,
            Self::GetSize { .. } => Command::GetSize,
            Self::Clear => Command::Clear,
            Self::GetKeysCount => Command::GetKeysCount,
            Self::Apply { .. } => Command::Apply,
        }
    }

    /// The key of a single-key command, or the pattern of `scan` and `delete_match`; `None` for
    /// multi-key and keyless commands.
    ///
    /// ```
    /// use cashews::middleware::Request;
    /// let request = Request::DeleteMatch { pattern: "user:*".to_owned() };
    /// assert_eq!(request.key(), Some("user:*"));
    /// ```
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            single_key!(key) => Some(key),
            Self::GetMany { .. }
            | Self::SetMany { .. }
            | Self::DeleteMany { .. }
            | Self::Ping { .. }
            | Self::Clear
            | Self::GetKeysCount
            | Self::Apply { .. } => None,
        }
    }

    /// Every key (and pattern) the request names, mutably: what a middleware that rewrites
    /// keys (a prefix, lower case) changes. Set members and lock tokens are not keys.
    ///
    /// ```
    /// use cashews::middleware::Request;
    /// let mut request = Request::GetMany { keys: vec!["A".to_owned(), "B".to_owned()] };
    /// request.keys_mut().for_each(|key| key.make_ascii_lowercase());
    /// assert_eq!(request, Request::GetMany { keys: vec!["a".to_owned(), "b".to_owned()] });
    /// ```
    pub fn keys_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let (one, many): (Option<&mut String>, &mut [String]) = match self {
            Self::GetMany { keys } | Self::DeleteMany { keys } => (None, keys.as_mut_slice()),
            Self::SetMany { pairs, .. } => {
                return KeysMut::Pairs(pairs.iter_mut());
            }
            Self::Apply { batch } => return KeysMut::Batch(Box::new(batch.keys_mut())),
            single_key!(key) => (Some(key), &mut []),
            Self::Ping { .. } | Self::Clear | Self::GetKeysCount => (None, &mut []),
        };
        KeysMut::Keys(one.into_iter().chain(many.iter_mut()))
    }
}

/// The iterator of [`Request::keys_mut`].
enum KeysMut<'a, I> {
    Keys(I),
    Pairs(std::slice::IterMut<'a, (String, Bytes)>),
    Batch(Box<dyn Iterator<Item = &'a mut String> + 'a>),
}

impl<'a, I: Iterator<Item = &'a mut String>> Iterator for KeysMut<'a, I> {
    type Item = &'a mut String;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Keys(keys) => keys.next(),
            Self::Pairs(pairs) => pairs.next().map(|(key, _)| key),
            Self::Batch(keys) => keys.next(),
        }
    }
}

/// The answer to a [`Request`]: the variant matches the command (a middleware that answers
/// by itself must use that variant; another one fails the command with a clear error).
///
/// | command | reply |
/// |---|---|
/// | `get` | [`Reply::Value`] |
/// | `get_many` | [`Reply::Values`] |
/// | `set`, `delete`, `exists`, `expire`, `set_lock`, `unlock` | [`Reply::Flag`] |
/// | `set_many`, `clear`, `apply` | [`Reply::Done`] |
/// | `delete_many`, `delete_match`, `slice_incr*`, `set_add`, `set_remove`, `get_keys_count` | [`Reply::Count`] |
/// | `incr` | [`Reply::Number`] |
/// | `get_expire` | [`Reply::Expiry`] |
/// | `get_bits`, `incr_bits` | [`Reply::Fields`] |
/// | `set_pop` | [`Reply::Members`] |
/// | `ping` | [`Reply::Pong`] |
/// | `get_size` | [`Reply::Size`] |
/// | `scan` | [`Reply::Keys`] |
///
/// ```
/// use cashews::middleware::Reply;
/// let reply = Reply::Value(None);
/// assert!(matches!(reply, Reply::Value(None)));
/// ```
#[non_exhaustive]
pub enum Reply {
    /// A value, or `None` when missing.
    Value(Option<Bytes>),
    /// Values in the order of the keys asked.
    Values(Vec<Option<Bytes>>),
    /// Whether the command took effect (or, for `exists`, whether the key exists).
    Flag(bool),
    /// A count (keys deleted, events in a window, members changed, keys stored).
    Count(u64),
    /// A counter's new value.
    Number(i64),
    /// A key's remaining lifetime.
    Expiry(Expiry),
    /// Bit-field values.
    Fields(Vec<u64>),
    /// Set members.
    Members(Vec<String>),
    /// The ping's answer.
    Pong(Bytes),
    /// A stored value's size in bytes, `None` when missing.
    Size(Option<u64>),
    /// The keys a scan found, as the backend stores them.
    Keys(BoxStream<Result<String>>),
    /// The command completed and has nothing to say.
    Done,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Self::Values(v) => f.debug_tuple("Values").field(v).finish(),
            Self::Flag(v) => f.debug_tuple("Flag").field(v).finish(),
            Self::Count(v) => f.debug_tuple("Count").field(v).finish(),
            Self::Number(v) => f.debug_tuple("Number").field(v).finish(),
            Self::Expiry(v) => f.debug_tuple("Expiry").field(v).finish(),
            Self::Fields(v) => f.debug_tuple("Fields").field(v).finish(),
            Self::Members(v) => f.debug_tuple("Members").field(v).finish(),
            Self::Pong(v) => f.debug_tuple("Pong").field(v).finish(),
            Self::Size(v) => f.debug_tuple("Size").field(v).finish(),
            Self::Keys(_) => f.write_str("Keys(..)"),
            Self::Done => f.write_str("Done"),
        }
    }
}

impl Reply {
    /// The variant's name, for errors.
    fn kind(&self) -> &'static str {
        match self {
            Self::Value(_) => "Value",
            Self::Values(_) => "Values",
            Self::Flag(_) => "Flag",
            Self::Count(_) => "Count",
            Self::Number(_) => "Number",
            Self::Expiry(_) => "Expiry",
            Self::Fields(_) => "Fields",
            Self::Members(_) => "Members",
            Self::Pong(_) => "Pong",
            Self::Size(_) => "Size",
            Self::Keys(_) => "Keys",
            Self::Done => "Done",
        }
    }

    /// The error for a reply of the wrong variant: a middleware bug, named as such.
    pub(crate) fn mismatch(self, command: Command) -> Error {
        Error::Middleware {
            command,
            reason: format!(
                "a middleware answered with Reply::{} (see the table in the Reply docs for the \
                 variant this command needs)",
                self.kind()
            ),
        }
    }
}
