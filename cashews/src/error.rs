//! The crate's error type.
//!
//! Variants are grouped by who must act: configuration (fix the URL, option or TTL), keys and
//! values (fix the call), backend (the store failed), and refusals that callers match on.
//! Messages name the problem and the fix; credentials never appear in them.

use std::time::Duration;

use crate::command::Command;

/// A boxed error from a storage engine or another foreign source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in cashews.
///
/// Foreign errors (from redis-rs, rusqlite, serde formats) only appear as [`std::error::Error::source`],
/// so a major bump of a dependency is not a breaking change here.
///
/// ```
/// let err = cashews::Ttl::parse("1m10").unwrap_err();
/// assert!(err.to_string().contains("1m10"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to `setup` cannot be used.
    #[error("invalid cache url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The URL scheme names no backend.
    #[error(
        "wrong backend alias `{scheme}`: use one of mem://, redis://, rediss://, disk:// or :// (a disabled memory cache)"
    )]
    UnknownScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// The URL scheme is known but the cargo feature that builds it is off.
    #[error("`{scheme}://` needs the `{feature}` feature of cashews: enable it in Cargo.toml")]
    FeatureDisabled {
        /// The scheme, or the option value, that needs the feature.
        scheme: String,
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// An option is not known for this scheme.
    #[error("unknown option `{option}` for {scheme}://; accepted options: {accepted}")]
    UnknownOption {
        /// The scheme whose options were read.
        scheme: String,
        /// The option as written.
        option: String,
        /// The accepted option names.
        accepted: String,
    },
    /// An option has a value that cannot be used.
    #[error("invalid value `{value}` for option `{option}`: expected {expected}")]
    InvalidOption {
        /// The option name.
        option: String,
        /// The value as written (secrets are redacted).
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A TTL string or value cannot be parsed.
    #[error(transparent)]
    InvalidTtl(#[from] cashews_syntax::TtlError),
    /// A key is empty or otherwise unusable.
    #[error("invalid key `{key}`: {reason}")]
    InvalidKey {
        /// The key (shortened if long).
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key is longer than the configured limit (`max_key_length`).
    #[error(
        "key `{key}` is {len} bytes long, over the limit of {limit}: shorten it, hash it, or raise `max_key_length`"
    )]
    KeyTooLong {
        /// The start of the key.
        key: String,
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An encoded value is larger than the configured limit (`max_value_size`).
    #[error(
        "value for key `{key}` is {size} bytes once encoded, over the limit of {limit}: store less, enable compression, or raise `max_value_size`"
    )]
    ValueTooLarge {
        /// The key.
        key: String,
        /// The encoded size in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A value cannot be kept by the backend: stored, it would take more than one entry may
    /// take under the backend's byte budget (`max_bytes` of `mem://`, `size_limit` of
    /// `disk://`). Nothing was written: the key keeps its previous value and the other keys
    /// stay. Safe mode does not hide it (it is a refused call, not a failed backend).
    #[error(
        "value for key `{key}` needs {size} bytes in the {backend} cache, larger than the cache's byte budget lets one entry take ({limit} bytes under `{option}` = {budget}): store less, enable compression, or raise `{option}`"
    )]
    ValueOverBudget {
        /// The backend name (`mem`, `disk`).
        backend: &'static str,
        /// The key (shortened if long).
        key: String,
        /// The bytes the entry would take: key, value and the backend's per-entry overhead.
        size: u64,
        /// The most bytes one entry may take in this cache.
        limit: u64,
        /// The option that sets the budget (`max_bytes`, `size_limit`).
        option: &'static str,
        /// The option's value, in bytes.
        budget: u64,
    },
    /// A value could not be serialized.
    #[error("cannot encode the value for key `{key}`: {source}")]
    Encode {
        /// The key.
        key: String,
        /// The serializer's error.
        source: BoxError,
    },
    /// A backend command failed (connection, timeout, server error).
    #[error("{backend} backend failed on {command}: {source}")]
    Backend {
        /// The backend name (`mem`, `redis`, `disk`).
        backend: &'static str,
        /// The command that failed.
        command: Command,
        /// The engine's error.
        source: BoxError,
    },
    /// A backend is marked down after repeated connection failures: the command was not sent,
    /// and a background probe reconnects the backend (see
    /// [`Backend::health`](crate::backend::Backend::health)). Safe mode answers the neutral
    /// reply instead, as for [`Error::Backend`].
    #[error(
        "{backend} backend at {address} is down (connection failures in a row), so {command} was not sent; a background probe reconnects it, next in {}ms: check that the server runs and is reachable, or keep safe mode on (`suppress=true`) to answer neutral replies meanwhile",
        .retry_in.as_millis()
    )]
    BackendDown {
        /// The backend name (`redis`).
        backend: &'static str,
        /// The backend's address, with any password replaced by `***`.
        address: String,
        /// The command that was refused.
        command: Command,
        /// When the next probe is due.
        retry_in: Duration,
    },
    /// A command met a value of another kind (e.g. `incr` on a non-integer).
    #[error("{command} on key `{key}` holds the wrong kind of value: {expected}")]
    WrongType {
        /// The command.
        command: Command,
        /// The key.
        key: String,
        /// What the command needs.
        expected: &'static str,
    },
    /// A route's middleware failed a command: it answered with a reply of the wrong kind, or
    /// refused the command itself. Not a backend failure, so safe mode does not hide it.
    #[error("a middleware failed {command}: {reason}")]
    Middleware {
        /// The backend command.
        command: Command,
        /// What went wrong, and how to fix it.
        reason: String,
    },
    /// No backend is configured for a key.
    #[error("{}", not_configured_message(.key))]
    NotConfigured {
        /// The key that found no backend, or `None` when no backend is configured at all.
        key: Option<String>,
    },
    /// A lock is held by someone else and the caller asked not to wait (or waited too long).
    #[error("key `{key}` is already locked")]
    Locked {
        /// The lock key.
        key: String,
    },
    /// A [locked or serializable](crate::backend::TransactionMode) transaction waited its
    /// whole timeout for a lock another transaction holds: probably two transactions waiting
    /// for each other (a deadlock), or a long running one. Nothing was written for the
    /// command that waited; roll the transaction back and retry.
    #[error(
        "the transaction lock `{key}` is still held by another transaction after {}ms: \
         probably a deadlock or a long running transaction",
        .waited.as_millis()
    )]
    TransactionLocked {
        /// The lock key (`:tx_lock:<key>` or `:serializable:lock`), shortened if long.
        key: String,
        /// How long the transaction waited (its timeout).
        waited: Duration,
    },
    /// A rate limit refused the call.
    ///
    /// The fields are the numbers of an HTTP `429 Too Many Requests` answer: `Retry-After`
    /// from `retry_after`, `X-RateLimit-Limit` from `limit`, `X-RateLimit-Remaining` from
    /// `remaining` and `X-RateLimit-Reset` from `reset` (the `axum` feature's
    /// `cashews::http::ErrorResponse` builds that answer).
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = cashews::Error::RateLimited {
    ///     retry_after: Some(Duration::from_secs(3)),
    ///     limit: 10,
    ///     remaining: 0,
    ///     reset: Some(Duration::from_secs(3)),
    /// };
    /// assert_eq!(err.to_string(), "rate limit exceeded: all 10 calls of the window are used, retry after 3000ms");
    /// ```
    #[error("rate limit exceeded: all {limit} calls of the window are used{}", retry_message(.retry_after))]
    RateLimited {
        /// When a new call may succeed, if known.
        retry_after: Option<Duration>,
        /// How many calls the limit lets through per window.
        limit: u64,
        /// How many calls the window still lets through: always 0 in a refusal.
        remaining: u64,
        /// When the current window (or ban) ends and the count starts again, if known. The
        /// fixed window refuses until then, so it equals `retry_after`; the sliding window
        /// may let a call through earlier, as its oldest calls slide out.
        reset: Option<Duration>,
    },
    /// A circuit breaker is open.
    #[error("circuit breaker is open{}", retry_message(.retry_after))]
    CircuitOpen {
        /// When the circuit may close again, if known.
        retry_after: Option<Duration>,
    },
    /// The function that computes a value panicked or was cancelled while others waited on it.
    #[error("the origin computing key `{key}` did not finish: {reason}")]
    OriginFailed {
        /// The key being computed.
        key: String,
        /// Why: panicked or cancelled.
        reason: String,
    },
    /// A key template or a key filter cannot be used: bad syntax, an unknown filter, hash
    /// algorithm or argument, or a field access that only the attribute macros can do.
    #[error("invalid key template `{template}`: {reason}")]
    InvalidKeyTemplate {
        /// The template as written; for a filter applied on its own, the filter call
        /// (`:hash(sha512)`).
        template: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The `perf` strategy detected a latency degradation of this key and refuses calls for a
    /// while.
    #[error("performance of `{key}` degraded; calls are refused{}", retry_message(.retry_after))]
    PerformanceDegraded {
        /// The key whose calls degraded (as given to the strategy, shortened if long).
        key: String,
        /// When calls may run again, if known.
        retry_after: Option<Duration>,
    },
}

fn not_configured_message(key: &Option<String>) -> String {
    match key {
        None => {
            "no backend is configured: run `cache.setup(url)` before using the cache".to_owned()
        }
        Some(key) => format!(
            "no backend is configured for key `{key}`: set one up for its prefix, or a default one with prefix \"\""
        ),
    }
}

fn retry_message(after: &Option<Duration>) -> String {
    match after {
        Some(d) => format!(", retry after {}ms", d.as_millis()),
        None => String::new(),
    }
}

impl Error {
    /// Whether retrying the same call later may succeed (backend trouble, timeouts, refusals).
    ///
    /// ```
    /// let err = cashews::Error::CircuitOpen { retry_after: None };
    /// assert!(err.is_transient());
    /// ```
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Backend { .. }
                | Self::BackendDown { .. }
                | Self::Locked { .. }
                | Self::TransactionLocked { .. }
                | Self::RateLimited { .. }
                | Self::CircuitOpen { .. }
                | Self::OriginFailed { .. }
                | Self::PerformanceDegraded { .. }
        )
    }

    /// Whether this is a refusal by a strategy (locked, rate limited, circuit open, performance
    /// degraded) rather than a failure.
    ///
    /// ```
    /// let err = cashews::Error::Locked { key: "job".into() };
    /// assert!(err.is_refusal());
    /// ```
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Locked { .. }
                | Self::TransactionLocked { .. }
                | Self::RateLimited { .. }
                | Self::CircuitOpen { .. }
                | Self::PerformanceDegraded { .. }
        )
    }

    /// Whether this error comes from the configuration (URL, option, TTL, key template): fix the
    /// setup, not the call.
    ///
    /// ```
    /// let err = cashews::Cache::new().setup("foo://").unwrap_err();
    /// assert!(err.is_config());
    /// ```
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl { .. }
                | Self::UnknownScheme { .. }
                | Self::FeatureDisabled { .. }
                | Self::UnknownOption { .. }
                | Self::InvalidOption { .. }
                | Self::InvalidTtl(_)
                | Self::InvalidKeyTemplate { .. }
        )
    }

    /// Whether the backend itself failed: the errors that safe mode swallows.
    ///
    /// ```
    /// let err = cashews::Error::NotConfigured { key: None };
    /// assert!(!err.is_backend());
    /// ```
    #[must_use]
    pub fn is_backend(&self) -> bool {
        matches!(
            self,
            Self::Backend { .. } | Self::BackendDown { .. } | Self::WrongType { .. }
        )
    }

    /// Whether this is [`Error::BackendDown`]: the backend was already known to be down, and
    /// the command was refused without being sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = cashews::Error::BackendDown {
    ///     backend: "redis",
    ///     address: "redis://127.0.0.1:6379".into(),
    ///     command: cashews::Command::Get,
    ///     retry_in: Duration::from_millis(100),
    /// };
    /// assert!(err.is_down() && err.is_backend());
    /// assert!(err.to_string().contains("is down"));
    /// ```
    #[must_use]
    pub fn is_down(&self) -> bool {
        matches!(self, Self::BackendDown { .. })
    }

    pub(crate) fn backend(
        backend: &'static str,
        command: Command,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Backend {
            backend,
            command,
            source: source.into(),
        }
    }
}

/// Logs a backend failure that is swallowed (safe mode, a strategy letting the call through):
/// `tracing::error!`, or `tracing::debug!` when the backend is known to be down (its going
/// down was logged once already; one line per command would flood the logs).
macro_rules! log_swallowed {
    ($error:expr, $($rest:tt)+) => {
        if $error.is_down() {
            tracing::debug!($($rest)+);
        } else {
            tracing::error!($($rest)+);
        }
    };
}
pub(crate) use log_swallowed;

/// Shortens a key for error messages so a huge key does not flood logs.
pub(crate) fn shorten(key: &str) -> String {
    const MAX: usize = 120;
    if key.len() <= MAX {
        return key.to_owned();
    }
    let mut end = MAX;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &key[..end])
}
