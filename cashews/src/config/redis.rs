//! Options of the `redis://` and `rediss://` backends (cargo feature `redis`).

use std::time::Duration;

use super::redact::redact_url;
use super::value::{OptionSpec, RawOption};
use crate::error::{Error, Result};

/// The options of `redis://`, in the order the docs list them.
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "db",
        aliases: &[],
    },
    OptionSpec {
        name: "username",
        aliases: &[],
    },
    OptionSpec {
        name: "password",
        aliases: &[],
    },
    OptionSpec {
        name: "connect_timeout",
        aliases: &["socket_connect_timeout", "create_connection_timeout"],
    },
    OptionSpec {
        name: "command_timeout",
        aliases: &["socket_timeout"],
    },
    OptionSpec {
        name: "max_connections",
        aliases: &["maxsize"],
    },
    OptionSpec {
        name: "min_connections",
        aliases: &["minsize"],
    },
    OptionSpec {
        name: "key_prefix",
        aliases: &[],
    },
];

/// The default of [`RedisOptions::connect_timeout`] and [`RedisOptions::command_timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The most connections a pool may hold.
const MAX_POOL: usize = 64;

/// Options of the Redis backend (`redis://user:password@host:6379/0?command_timeout=500ms`).
///
/// `address` is the URL without its query: redis-rs reads host, port, user, password and
/// database number from it. The options `db`, `username` and `password` override what the
/// address says. `Debug` never shows a password.
///
/// ```
/// use std::time::Duration;
/// let opts = cashews::config::RedisOptions::new("redis://:hunter2@localhost:6379/2");
/// assert_eq!(opts.command_timeout, Duration::from_secs(1));
/// assert!(!format!("{opts:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// The server address, `redis://[user[:password]@]host[:port][/db]` (or `rediss://`).
    pub address: String,
    /// The database number (`db`); overrides the path of the address.
    pub db: Option<i64>,
    /// The ACL user name (`username`); overrides the address's.
    pub username: Option<String>,
    /// The password (`password`); overrides the address's. Never shown.
    pub password: Option<String>,
    /// How long a connection attempt may take (`connect_timeout`, aliases
    /// `socket_connect_timeout` and `create_connection_timeout`; default 1 s).
    pub connect_timeout: Duration,
    /// How long a command may wait for its reply (`command_timeout`, alias `socket_timeout`;
    /// default 1 s).
    pub command_timeout: Duration,
    /// How many multiplexed connections commands are spread over (`max_connections`, alias
    /// `maxsize`; default 1, at most 64). Each one carries any number of concurrent commands.
    pub max_connections: usize,
    /// How many of them are opened on the first command (`min_connections`, alias `minsize`;
    /// default 1); the others open when first used.
    pub min_connections: usize,
    /// A prefix added to every key this backend stores (`key_prefix`, default empty) and taken
    /// off the keys it scans. With a prefix, `clear` and `keys_count` cover only the keys under
    /// it (SCAN and UNLINK) instead of the whole database (FLUSHDB and DBSIZE).
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("address", &redact_url(&self.address))
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisOptions {
    /// Options for this address with every default.
    ///
    /// ```
    /// let opts = cashews::config::RedisOptions::new("redis://127.0.0.1:6379");
    /// assert_eq!(opts.max_connections, 1);
    /// assert!(opts.key_prefix.is_empty());
    /// ```
    #[must_use]
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            db: None,
            username: None,
            password: None,
            connect_timeout: DEFAULT_TIMEOUT,
            command_timeout: DEFAULT_TIMEOUT,
            max_connections: 1,
            min_connections: 1,
            key_prefix: String::new(),
        }
    }

    /// The same options with another key prefix (see [`RedisOptions::key_prefix`]).
    ///
    /// ```
    /// let opts = cashews::config::RedisOptions::new("redis://127.0.0.1").with_key_prefix("app:");
    /// assert_eq!(opts.key_prefix, "app:");
    /// ```
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Builds the options from the Redis options of a URL query, already resolved against
    /// [`OPTIONS`] and checked for repeats by the caller.
    pub(crate) fn parse(address: String, options: &[RawOption]) -> Result<Self> {
        if let Err(e) = ::redis::Client::open(address.as_str()) {
            return Err(Error::InvalidUrl {
                url: redact_url(&address),
                reason: format!(
                    "redis-rs cannot read this address ({}): write it as \
                     `redis://[user:password@]host[:port][/db]`",
                    e.category()
                ),
            });
        }
        let mut opts = Self::new(address);
        let mut min_given = false;
        for option in options {
            match option.canonical {
                "db" => {
                    opts.db = Some(
                        option
                            .value
                            .parse::<u16>()
                            .map(i64::from)
                            .map_err(|_| option.invalid("a database number from 0 to 65535"))?,
                    );
                }
                "username" => opts.username = Some(non_empty(option, "a user name")?),
                "password" => opts.password = Some(non_empty(option, "a password")?),
                "connect_timeout" => opts.connect_timeout = positive_interval(option)?,
                "command_timeout" => opts.command_timeout = positive_interval(option)?,
                "max_connections" => opts.max_connections = pool_size(option)?,
                "min_connections" => {
                    opts.min_connections = pool_size(option)?;
                    min_given = true;
                }
                "key_prefix" => opts.key_prefix.clone_from(&option.value),
                // The caller only hands over names from `OPTIONS`.
                _ => {}
            }
        }
        if opts.min_connections > opts.max_connections {
            if min_given {
                return Err(Error::InvalidOption {
                    option: "min_connections".to_owned(),
                    value: opts.min_connections.to_string(),
                    expected: format!(
                        "at most `max_connections` ({}): raise max_connections or lower \
                         min_connections",
                        opts.max_connections
                    ),
                });
            }
            opts.min_connections = opts.max_connections;
        }
        Ok(opts)
    }
}

fn non_empty(option: &RawOption, what: &str) -> Result<String> {
    if option.value.is_empty() {
        Err(option.invalid(format!("{what}, not empty")))
    } else {
        Ok(option.value.clone())
    }
}

fn positive_interval(option: &RawOption) -> Result<Duration> {
    let duration = option.interval()?;
    if duration.is_zero() {
        return Err(option
            .invalid("a positive duration: seconds as a number (`1`, `0.5`) or `500ms`, `2s`"));
    }
    Ok(duration)
}

fn pool_size(option: &RawOption) -> Result<usize> {
    option
        .value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_POOL).contains(n))
        .ok_or_else(|| option.invalid(format!("a number of connections from 1 to {MAX_POOL}")))
}
