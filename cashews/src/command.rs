//! [`Command`]: the names of the backend operations, used to disable commands and in errors.

use std::fmt;

/// One backend operation, as named in the command set.
///
/// Used to disable single commands ([`Cache::disable`](crate::Cache::disable)), in errors and in
/// logs. [`Command::Exists`] also answers to the Python alias `EXIST` in [`Command::parse`].
///
/// ```
/// use cashews::Command;
/// assert_eq!(Command::parse("get_many"), Some(Command::GetMany));
/// assert_eq!(Command::GetMany.to_string(), "get_many");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Command {
    /// Read one value.
    Get,
    /// Read several values in one call.
    GetMany,
    /// Read stored bytes without decoding.
    GetRaw,
    /// Stream the keys and values matching a pattern.
    GetMatch,
    /// Store one value.
    Set,
    /// Store bytes without encoding.
    SetRaw,
    /// Store several values.
    SetMany,
    /// Delete one key.
    Delete,
    /// Delete several keys.
    DeleteMany,
    /// Delete every key matching a pattern.
    DeleteMatch,
    /// Whether a key exists.
    Exists,
    /// Stream the keys matching a pattern.
    Scan,
    /// Add to an integer counter.
    Incr,
    /// Set a new TTL on an existing key.
    Expire,
    /// Read the remaining TTL.
    GetExpire,
    /// Remove every key of the backend.
    Clear,
    /// Take a lock (set if absent, with a token and a TTL).
    SetLock,
    /// Release a lock if the token matches.
    Unlock,
    /// Whether a lock is held.
    IsLocked,
    /// Read bit fields.
    GetBits,
    /// Add to bit fields, saturating.
    IncrBits,
    /// Count and record an event in a sliding window.
    SliceIncr,
    /// Count and record an event in a sliding window ending now, stamped by the backend: what
    /// `slice_rate_limit` and the circuit breaker send (not [`Command::SliceIncr`]: disable
    /// this command to turn them off).
    SliceIncrNow,
    /// Add members to a set.
    SetAdd,
    /// Remove members from a set.
    SetRemove,
    /// Remove and return members of a set.
    SetPop,
    /// Check that the backend answers.
    Ping,
    /// Approximate size of one stored value.
    GetSize,
    /// Number of keys.
    GetKeysCount,
    /// Apply a batch of deletes and writes (a transaction's commit).
    Apply,
}

impl Command {
    /// Every command, in declaration order.
    pub const ALL: [Self; 30] = [
        Self::Get,
        Self::GetMany,
        Self::GetRaw,
        Self::GetMatch,
        Self::Set,
        Self::SetRaw,
        Self::SetMany,
        Self::Delete,
        Self::DeleteMany,
        Self::DeleteMatch,
        Self::Exists,
        Self::Scan,
        Self::Incr,
        Self::Expire,
        Self::GetExpire,
        Self::Clear,
        Self::SetLock,
        Self::Unlock,
        Self::IsLocked,
        Self::GetBits,
        Self::IncrBits,
        Self::SliceIncr,
        Self::SliceIncrNow,
        Self::SetAdd,
        Self::SetRemove,
        Self::SetPop,
        Self::Ping,
        Self::GetSize,
        Self::GetKeysCount,
        Self::Apply,
    ];

    /// The snake_case name (`get_many`), as in Python cashews.
    ///
    /// ```
    /// assert_eq!(cashews::Command::SliceIncr.as_str(), "slice_incr");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::GetMany => "get_many",
            Self::GetRaw => "get_raw",
            Self::GetMatch => "get_match",
            Self::Set => "set",
            Self::SetRaw => "set_raw",
            Self::SetMany => "set_many",
            Self::Delete => "delete",
            Self::DeleteMany => "delete_many",
            Self::DeleteMatch => "delete_match",
            Self::Exists => "exists",
            Self::Scan => "scan",
            Self::Incr => "incr",
            Self::Expire => "expire",
            Self::GetExpire => "get_expire",
            Self::Clear => "clear",
            Self::SetLock => "set_lock",
            Self::Unlock => "unlock",
            Self::IsLocked => "is_locked",
            Self::GetBits => "get_bits",
            Self::IncrBits => "incr_bits",
            Self::SliceIncr => "slice_incr",
            Self::SliceIncrNow => "slice_incr_now",
            Self::SetAdd => "set_add",
            Self::SetRemove => "set_remove",
            Self::SetPop => "set_pop",
            Self::Ping => "ping",
            Self::GetSize => "get_size",
            Self::GetKeysCount => "get_keys_count",
            Self::Apply => "apply",
        }
    }

    /// Parses a name, case-insensitively; `exist` and `keys_match` are accepted aliases.
    ///
    /// ```
    /// use cashews::Command;
    /// assert_eq!(Command::parse("EXIST"), Some(Command::Exists));
    /// assert_eq!(Command::parse("nope"), None);
    /// ```
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "exist" => Some(Self::Exists),
            "keys_match" => Some(Self::Scan),
            other => Self::ALL.into_iter().find(|c| c.as_str() == other),
        }
    }

    pub(crate) const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
