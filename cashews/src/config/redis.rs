//! Options of the `redis://` and `rediss://` backends (cargo feature `redis`).

use std::path::PathBuf;
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
        // Python cashews' client-side prefix; here one prefix serves every mode, so processes
        // with and without `client_side` share their keys.
        aliases: &["client_side_prefix"],
    },
    OptionSpec {
        name: "client_side",
        aliases: &[],
    },
    OptionSpec {
        name: "client_side_size",
        aliases: &[],
    },
    OptionSpec {
        name: "cluster",
        aliases: &[],
    },
    OptionSpec {
        name: "nodes",
        aliases: &[],
    },
    OptionSpec {
        name: "down_after",
        aliases: &[],
    },
    OptionSpec {
        name: "probe_interval",
        aliases: &[],
    },
    OptionSpec {
        name: "probe_max_interval",
        aliases: &[],
    },
    OptionSpec {
        name: "tls_ca_file",
        aliases: &[],
    },
    OptionSpec {
        name: "tls_cert_file",
        aliases: &[],
    },
    OptionSpec {
        name: "tls_key_file",
        aliases: &[],
    },
];

/// The default of [`RedisOptions::connect_timeout`] and [`RedisOptions::command_timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The most connections a pool may hold.
const MAX_POOL: usize = 64;

/// The default of [`RedisOptions::max_value_size`]: Redis' own limit on one argument
/// (`proto-max-bulk-len`, 512 MiB by default).
pub(crate) const DEFAULT_MAX_VALUE_SIZE: usize = 512 << 20;

/// The default of [`RedisOptions::down_after`].
const DEFAULT_DOWN_AFTER: u32 = 3;

/// The largest [`RedisOptions::down_after`].
const MAX_DOWN_AFTER: u32 = 1000;

/// The default of [`RedisOptions::probe_interval`].
const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The default of [`RedisOptions::probe_max_interval`].
const DEFAULT_PROBE_MAX_INTERVAL: Duration = Duration::from_secs(1);

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
    /// default 1); the others open when first used. A minimum above the default maximum
    /// raises the maximum (`minsize=3` alone opens 3 of 3).
    pub min_connections: usize,
    /// A prefix added to every key this backend stores (`key_prefix`, default empty) and taken
    /// off the keys it scans. With a prefix, `clear` and `keys_count` cover only the keys under
    /// it (SCAN and UNLINK) instead of the whole database (FLUSHDB and DBSIZE).
    ///
    /// On a cluster, keep `{` and `}` out of the prefix: Redis would hash only the part between
    /// them, putting every key in one slot.
    pub key_prefix: String,
    /// Whether a bounded local tier sits in front of Redis, kept coherent by server-assisted
    /// invalidation (`client_side`, default false; see
    /// [`ClientSideRedis`](crate::backend::ClientSideRedis)). Single server only.
    pub client_side: bool,
    /// How many entries the local tier of `client_side=true` keeps (`client_side_size`,
    /// default 10,000, at least 1).
    pub client_side_size: usize,
    /// Whether the address is one node of a Redis Cluster (`cluster`, default false): keys are
    /// then routed by hash slot, multi-key commands split by slot, and scans, `clear` and
    /// `keys_count` cover every primary. A cluster has database 0 only, and
    /// `max_connections`/`min_connections` do not apply (one multiplexed connection per node).
    pub cluster: bool,
    /// More seed nodes of the cluster besides the address (`nodes`, comma-separated
    /// `host:port`, `[v6]:port` for IPv6; only with `cluster=true`). They share the address's
    /// scheme and credentials; any one that answers is enough to discover the others.
    pub nodes: Vec<String>,
    /// The largest value, set member, lock token or ping message sent, in bytes (the
    /// `max_value_size` option of every scheme, which for Redis also sets this; default
    /// 512 MiB, Redis' default `proto-max-bulk-len`). A larger one fails alone with
    /// [`Error::ValueTooLarge`] before anything is sent: Redis would drop the connection, and
    /// with it every other command in flight on it. Keep it at or below the server's
    /// `proto-max-bulk-len`.
    pub max_value_size: usize,
    /// Connection failures or timeouts in a row after which the backend is marked down
    /// (`down_after`, default 3, at most 1000; 0 never marks it down). While down, every
    /// command fails at once with [`Error::BackendDown`] (in safe mode: its neutral reply)
    /// instead of waiting for a connection, and a background probe reconnects.
    pub down_after: u32,
    /// How long after the backend went down the first probe (a `PING` over a fresh
    /// connection) is sent (`probe_interval`, default 100 ms); each failed probe doubles the
    /// wait, up to `probe_max_interval`.
    pub probe_interval: Duration,
    /// The longest wait between two probes (`probe_max_interval`, default 1 s, at least
    /// `probe_interval`): after an outage, commands reach the server again at most about this
    /// long after it is back.
    pub probe_max_interval: Duration,
    /// `rediss://` only: a PEM file of the root certificates to trust (`tls_ca_file`) instead of
    /// the platform's. Read and checked when the backend is built.
    pub tls_ca_file: Option<PathBuf>,
    /// `rediss://` only: the PEM certificate chain this client presents (`tls_cert_file`), for
    /// servers that authenticate clients; needs `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `rediss://` only: the PEM private key of `tls_cert_file` (`tls_key_file`).
    pub tls_key_file: Option<PathBuf>,
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
            .field("client_side", &self.client_side)
            .field("client_side_size", &self.client_side_size)
            .field("cluster", &self.cluster)
            .field("nodes", &self.nodes)
            .field("max_value_size", &self.max_value_size)
            .field("down_after", &self.down_after)
            .field("probe_interval", &self.probe_interval)
            .field("probe_max_interval", &self.probe_max_interval)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
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
            client_side: false,
            client_side_size: DEFAULT_CLIENT_SIDE_SIZE,
            cluster: false,
            nodes: Vec::new(),
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            down_after: DEFAULT_DOWN_AFTER,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            probe_max_interval: DEFAULT_PROBE_MAX_INTERVAL,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
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

    /// Checks the options as a whole, however they were built: [`CacheConfig::parse`], a
    /// struct literal, or fields set by hand. Parsing and every constructor of a Redis backend
    /// ([`RedisBackend::new`], [`ClientSideRedis::new`], [`Cache::setup_config`]) call it, so
    /// an invalid value never reaches a connection.
    ///
    /// [`CacheConfig::parse`]: crate::config::CacheConfig::parse
    /// [`RedisBackend::new`]: crate::backend::RedisBackend::new
    /// [`ClientSideRedis::new`]: crate::backend::ClientSideRedis::new
    /// [`Cache::setup_config`]: crate::Cache::setup_config
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option out of range (a zero timeout or
    /// pool, `min_connections` above `max_connections`, …) or two that do not go together
    /// (`client_side` with `cluster`, TLS files on `redis://`, `nodes` without `cluster`).
    ///
    /// ```
    /// let mut opts = cashews::config::RedisOptions::new("redis://127.0.0.1");
    /// assert!(opts.validate().is_ok());
    /// opts.max_connections = 0;
    /// assert!(opts.validate().unwrap_err().to_string().contains("max_connections"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        let invalid = |option: &str, value: String, expected: String| {
            Err(Error::InvalidOption {
                option: option.to_owned(),
                value,
                expected,
            })
        };
        for (name, duration) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("probe_interval", self.probe_interval),
            ("probe_max_interval", self.probe_max_interval),
        ] {
            if duration.is_zero() {
                return invalid(name, "0".to_owned(), "a positive duration".to_owned());
            }
        }
        for (name, n) in [
            ("max_connections", self.max_connections),
            ("min_connections", self.min_connections),
        ] {
            if !(1..=MAX_POOL).contains(&n) {
                return invalid(
                    name,
                    n.to_string(),
                    format!("a number of connections from 1 to {MAX_POOL}"),
                );
            }
        }
        if self.min_connections > self.max_connections {
            return invalid(
                "min_connections",
                self.min_connections.to_string(),
                format!(
                    "at most `max_connections` ({}): raise max_connections or lower \
                     min_connections",
                    self.max_connections
                ),
            );
        }
        if self.probe_max_interval < self.probe_interval {
            return invalid(
                "probe_max_interval",
                format!("{:?}", self.probe_max_interval),
                format!(
                    "at least `probe_interval` ({:?}): raise probe_max_interval or lower \
                     probe_interval",
                    self.probe_interval
                ),
            );
        }
        if !(1..=MAX_CLIENT_SIDE_SIZE).contains(&self.client_side_size) {
            return invalid(
                "client_side_size",
                self.client_side_size.to_string(),
                format!("a number of local entries from 1 to {MAX_CLIENT_SIDE_SIZE}"),
            );
        }
        if self.max_value_size == 0 {
            return invalid(
                "max_value_size",
                "0".to_owned(),
                "a positive size in bytes".to_owned(),
            );
        }
        if self.down_after > MAX_DOWN_AFTER {
            return invalid(
                "down_after",
                self.down_after.to_string(),
                format!("at most {MAX_DOWN_AFTER}, or 0 to never mark the backend down"),
            );
        }
        if !self.nodes.is_empty() && !self.cluster {
            return invalid(
                "nodes",
                self.nodes.join(","),
                "seed nodes of a Redis Cluster, which needs `cluster=true` too: add it, or \
                 remove `nodes` for a single server"
                    .to_owned(),
            );
        }
        if self.cluster {
            check_cluster_db(self)?;
        }
        check_client_side(self)?;
        check_tls(self)
    }

    /// Builds the options from the Redis options of a URL query, already resolved against
    /// [`OPTIONS`] and checked for repeats by the caller.
    pub(crate) fn parse(address: String, options: &[RawOption]) -> Result<Self> {
        if let Err(e) = ::redis::Client::open(address.as_str()) {
            return Err(unreadable_address(&address, &e));
        }
        let mut opts = Self::new(address);
        let mut min_given = false;
        let mut max_given = false;
        let mut nodes_option = None;
        let mut probe_max_given = false;
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
                "max_connections" => {
                    opts.max_connections = pool_size(option)?;
                    max_given = true;
                }
                "min_connections" => {
                    opts.min_connections = pool_size(option)?;
                    min_given = true;
                }
                "key_prefix" => opts.key_prefix.clone_from(&option.value),
                "client_side" => opts.client_side = option.bool()?,
                "client_side_size" => opts.client_side_size = client_side_size(option)?,
                "cluster" => opts.cluster = option.bool()?,
                "nodes" => {
                    opts.nodes = seed_nodes(option)?;
                    nodes_option = Some(option);
                }
                "down_after" => opts.down_after = down_after(option)?,
                "probe_interval" => opts.probe_interval = positive_interval(option)?,
                "probe_max_interval" => {
                    opts.probe_max_interval = positive_interval(option)?;
                    probe_max_given = true;
                }
                "tls_ca_file" => opts.tls_ca_file = Some(non_empty(option, "a file path")?.into()),
                "tls_cert_file" => {
                    opts.tls_cert_file = Some(non_empty(option, "a file path")?.into());
                }
                "tls_key_file" => {
                    opts.tls_key_file = Some(non_empty(option, "a file path")?.into());
                }
                // The caller only hands over names from `OPTIONS`.
                _ => {}
            }
        }
        if opts.min_connections > opts.max_connections {
            if !max_given {
                // A minimum above the default maximum raises the maximum.
                opts.max_connections = opts.min_connections;
            } else if min_given {
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
        if opts.probe_max_interval < opts.probe_interval {
            if probe_max_given {
                return Err(Error::InvalidOption {
                    option: "probe_max_interval".to_owned(),
                    value: format!("{:?}", opts.probe_max_interval),
                    expected: format!(
                        "at least `probe_interval` ({:?}): raise probe_max_interval or lower \
                         probe_interval",
                        opts.probe_interval
                    ),
                });
            }
            opts.probe_max_interval = opts.probe_interval;
        }
        if let Some(option) = nodes_option
            && !opts.cluster
        {
            return Err(option.invalid(
                "seed nodes of a Redis Cluster, which needs `cluster=true` too: add it, or \
                 remove `nodes` for a single server",
            ));
        }
        opts.validate()?;
        Ok(opts)
    }
}

/// [`Error::InvalidUrl`] for an address redis-rs refuses, with its reason (a wildcard host, a
/// bad database number, …) and the fix for that reason; the address's password is hidden.
pub(crate) fn unreadable_address(address: &str, e: &::redis::RedisError) -> Error {
    Error::InvalidUrl {
        url: redact_url(address),
        reason: redis_reason(e, "write it as `redis://[user:password@]host[:port][/db]`"),
    }
}

/// What redis-rs says is wrong with an address or a seed (its description, without its error
/// kind; these never quote the URL), and the fix: `fallback` unless the reason has its own.
pub(crate) fn redis_reason(e: &::redis::RedisError, fallback: &str) -> String {
    let text = e.to_string();
    let reason = text.split(" - ").next().unwrap_or(&text).trim();
    let fix = if reason.contains("wildcard") {
        "connect to an address the server is reachable at, such as `127.0.0.1` or its host \
         name: `0.0.0.0` and `::` are addresses a server listens on, not one to connect to"
    } else {
        fallback
    };
    format!("redis-rs cannot use this address ({reason}): {fix}")
}

/// The default of [`RedisOptions::client_side_size`].
const DEFAULT_CLIENT_SIDE_SIZE: usize = 10_000;

/// The most entries a client-side tier may hold.
const MAX_CLIENT_SIDE_SIZE: usize = 100_000_000;

fn client_side_size(option: &RawOption) -> Result<usize> {
    option
        .value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_CLIENT_SIDE_SIZE).contains(n))
        .ok_or_else(|| {
            option.invalid(format!(
                "a number of local entries from 1 to {MAX_CLIENT_SIDE_SIZE}"
            ))
        })
}

/// `client_side=true` needs one server: tracking a cluster needs a link per node.
fn check_client_side(opts: &RedisOptions) -> Result<()> {
    if opts.client_side && opts.cluster {
        return Err(Error::InvalidOption {
            option: "client_side".to_owned(),
            value: "true".to_owned(),
            expected: "false with `cluster=true`: client_side is not available on a cluster \
                       yet; drop one of the two options"
                .to_owned(),
        });
    }
    Ok(())
}

/// The TLS options need `rediss://`, and a client certificate needs its key (and the reverse).
fn check_tls(opts: &RedisOptions) -> Result<()> {
    let tls = opts
        .address
        .get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"));
    let given = [
        ("tls_ca_file", &opts.tls_ca_file),
        ("tls_cert_file", &opts.tls_cert_file),
        ("tls_key_file", &opts.tls_key_file),
    ];
    if !tls && let Some((name, Some(path))) = given.iter().find(|(_, path)| path.is_some()) {
        return Err(Error::InvalidOption {
            option: (*name).to_owned(),
            value: path.display().to_string(),
            expected: "a TLS file for a `rediss://` URL: write the address as `rediss://…`, or \
                       remove the TLS options for plain `redis://`"
                .to_owned(),
        });
    }
    match (&opts.tls_cert_file, &opts.tls_key_file) {
        (Some(path), None) | (None, Some(path)) => Err(Error::InvalidOption {
            option: if opts.tls_cert_file.is_some() {
                "tls_cert_file"
            } else {
                "tls_key_file"
            }
            .to_owned(),
            value: path.display().to_string(),
            expected: "`tls_cert_file` and `tls_key_file` together (a client certificate and its \
                       private key): give both, or neither"
                .to_owned(),
        }),
        _ => Ok(()),
    }
}

/// A cluster has only database 0 (`SELECT` is refused in cluster mode): reject any other,
/// whether from the `db` option or the address's path.
fn check_cluster_db(opts: &RedisOptions) -> Result<()> {
    let db = match opts.db {
        Some(db) => db,
        None => ::redis::Client::open(opts.address.as_str()).map_or(0, |client| {
            client.get_connection_info().redis_settings().db()
        }),
    };
    if db == 0 {
        return Ok(());
    }
    Err(Error::InvalidOption {
        option: "db".to_owned(),
        value: db.to_string(),
        expected: "0 with `cluster=true` (a Redis Cluster has database 0 only): remove `db` \
                   and the `/N` path of the address, or drop `cluster=true` for a single server"
            .to_owned(),
    })
}

/// Reads `nodes`: comma-separated `host:port` (`[v6]:port` for IPv6), each checked.
fn seed_nodes(option: &RawOption) -> Result<Vec<String>> {
    let invalid = |node: &str, why: &str| Error::InvalidOption {
        option: option.name.clone(),
        value: redact_url(node),
        expected: format!(
            "comma-separated `host:port` seed nodes such as `10.0.0.2:7001,10.0.0.3:7002` \
             ({why})"
        ),
    };
    let mut nodes = Vec::new();
    for node in option.value.split(',').map(str::trim) {
        if node.is_empty() {
            return Err(invalid(
                &option.value,
                "an empty entry: remove the extra comma",
            ));
        }
        let Some((host, port)) = node.rsplit_once(':') else {
            return Err(invalid(node, "the port is missing"));
        };
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(invalid(node, "the port must be a number from 1 to 65535"));
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host_ok = !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
            && (bare.len() == host.len() || bare.contains(':'))
            && (bare.len() != host.len() || !bare.contains(':'));
        if !host_ok {
            return Err(invalid(
                node,
                "the host must be a name or an IP address, with no scheme, user or path; \
                 write IPv6 addresses in brackets",
            ));
        }
        nodes.push(node.to_owned());
    }
    Ok(nodes)
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

fn down_after(option: &RawOption) -> Result<u32> {
    option
        .value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_DOWN_AFTER)
        .ok_or_else(|| {
            option.invalid(format!(
                "a number of connection failures in a row from 1 to {MAX_DOWN_AFTER}, or 0 to \
                 never mark the backend down"
            ))
        })
}

fn pool_size(option: &RawOption) -> Result<usize> {
    option
        .value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_POOL).contains(n))
        .ok_or_else(|| option.invalid(format!("a number of connections from 1 to {MAX_POOL}")))
}
