//! Configuration by URL: the scheme picks the backend, the query holds typed, validated options.
//!
//! [`CacheConfig::parse`] (also `str::parse`) reads a URL such as
//! `mem://?size=10000&max_bytes=64MiB&check_interval=1s&secret=k` once, at setup, into a
//! [`CacheConfig`]. [`Cache::setup`](crate::Cache::setup) calls it; build a [`CacheConfig`] by hand
//! and pass it to [`Cache::setup_config`](crate::Cache::setup_config) to configure without a URL.
//!
//! ```
//! use std::time::Duration;
//! use cashews::config::{BackendConfig, CacheConfig};
//!
//! let config = CacheConfig::parse("mem://?size=10&check_interval=0.01&safe=yes")?;
//! let BackendConfig::Memory(mem) = &config.backend else { unreachable!() };
//! assert_eq!(mem.size, 10);
//! assert_eq!(mem.check_interval, Duration::from_millis(10));
//! assert_eq!(config.suppress, Some(true));
//!
//! let err = CacheConfig::parse("mem://?size=lots").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid value `lots` for option `size`: expected a positive whole number of entries"
//! );
//! # Ok::<(), cashews::Error>(())
//! ```
//!
//! # URL syntax
//!
//! `scheme://?name=value&name=value`. Names are case-insensitive; values are percent-decoded
//! (`+` is a space). Each option may be given once (an alias and its option count as the same
//! one). An option the scheme does not know is an error that lists the accepted names: nothing
//! is silently ignored. Errors name the option, the value and what is accepted; the value of
//! `secret` and any `user:password@` part of a URL are shown as `***`.
//!
//! # Schemes
//!
//! | URL | Backend |
//! |---|---|
//! | `mem://`, `mem://?size=…` | in-process memory ([`BackendConfig::Memory`]); takes no host or path |
//! | `://` or the empty string | memory, **disabled** at start: as if `disable=true` were given (an explicit `disable` overrides it, `enable` has no effect); takes the same options as `mem://` |
//! | `redis://[user:password@]host[:port][/db]` | Redis ([`BackendConfig::Redis`], cargo feature `redis`; without it [`Error::FeatureDisabled`]) |
//! | `rediss://[user:password@]host[:port][/db]` | Redis over TLS ([`BackendConfig::Redis`], cargo feature `redis-tls`: rustls, trusting the platform's root certificates or `tls_ca_file`; without the feature [`Error::FeatureDisabled`]) |
//! | `disk://`, `disk://?directory=…` | sharded SQLite files shared by several processes ([`BackendConfig::Disk`], cargo feature `disk`; without it [`Error::FeatureDisabled`]); takes no host or path |
//! | anything else | [`Error::UnknownScheme`]: "wrong backend alias `…`" |
//!
//! The scheme is case-insensitive. There is no `prefix` option: the prefix that routes keys to
//! a backend is the first argument of [`Cache::setup_prefix`](crate::Cache::setup_prefix).
//!
//! # Memory options (`mem://` and `://`)
//!
//! | Option | Default | Accepted values |
//! |---|---|---|
//! | `size` | `1000` | the maximum number of entries: a positive whole number. Past it, entries are evicted by quick_cache's S3-FIFO-like policy (scan resistant: an entry read again since it came in outlives one-time entries), not strictly least recently used |
//! | `max_bytes` (alias `max_size`) | none (no byte bound) | a positive [size](#sizes): a bound on the bytes held by keys and values |
//! | `check_interval` | `1s` | how often expired entries are purged in the background: seconds as a whole or decimal number (`1`, `0.01`) or a [TTL string](cashews_syntax::parse_ttl) (`500ms`, `1s`, `1m30s`); `0` turns the purge off (expired entries are still dropped when read) |
//!
//! # Redis options (`redis://`, `rediss://`; cargo features `redis`, `redis-tls`)
//!
//! The part before `?` is the server address, read by redis-rs; an empty host means
//! `127.0.0.1:6379`. Safe mode (`suppress`) is **on** by default for Redis.
//!
//! | Option | Default | Accepted values |
//! |---|---|---|
//! | `db` | the address's path, else `0` | a database number from 0 to 65535 |
//! | `username`, `password` | the address's | non-empty strings (ACL user and password); the password is never shown |
//! | `connect_timeout` (aliases `socket_connect_timeout`, `create_connection_timeout`) | `1s` | a positive duration: seconds (`1`, `0.5`) or `500ms`, `2s` |
//! | `command_timeout` (alias `socket_timeout`) | `1s` | a positive duration: how long a command waits for its reply |
//! | `max_connections` (alias `maxsize`) | `1` | 1 to 64 multiplexed connections, used in turn |
//! | `min_connections` (alias `minsize`) | `1` | 1 to `max_connections`: connections opened on the first command; given without `max_connections`, a larger minimum raises the maximum to it |
//! | `key_prefix` (alias `client_side_prefix`) | empty | a prefix the backend adds to every key; with one, `clear` and `keys_count` cover only its keys, and `client_side=true` tracks only its keys |
//! | `client_side` | `false` | a boolean: a bounded local tier in front of Redis, invalidated by server-assisted tracking (see `cashews::backend::ClientSideRedis`); single server only, refused with `cluster=true` |
//! | `client_side_size` | `10000` | 1 to 100,000,000: entries the local tier of `client_side=true` keeps |
//! | `cluster` | `false` | a boolean: the address is a node of a Redis Cluster (keys routed by slot; scans, `clear` and `keys_count` over every primary); `db` must then be 0, and the pool options do not apply |
//! | `nodes` | none | with `cluster=true` only: more seed nodes, comma-separated `host:port` (`[v6]:port` for IPv6), sharing the address's scheme and credentials |
//! | `down_after` | `3` | 0 to 1000 connection failures or timeouts in a row after which the backend is marked down: commands then fail at once ([`Error::BackendDown`]; in safe mode, their neutral replies) while a background probe reconnects; `0` never marks it down |
//! | `probe_interval` | `100ms` | a positive duration: the wait before the first probe (`PING` over a fresh connection) of a backend that is down; it doubles after each failed probe |
//! | `probe_max_interval` | `1s` | a positive duration, at least `probe_interval`: the longest wait between probes, so about the longest a recovered server waits to be used again |
//! | `tls_ca_file` | the platform's root certificates | `rediss://` only: a PEM file of the root certificates to trust (read when the backend is built; a missing or unreadable file, or one without a certificate, is an error naming it) |
//! | `tls_cert_file`, `tls_key_file` | none | `rediss://` only, both or neither: the PEM certificate chain and private key this client presents to a server that authenticates clients |
//!
//! # Disk options (`disk://`; cargo feature `disk`)
//!
//! Safe mode (`suppress`) is **off** by default for disk, as for memory.
//!
//! | Option | Default | Accepted values |
//! |---|---|---|
//! | `directory` | `$XDG_CACHE_HOME/cashews`, else `$HOME/.cache/cashews`, else `cashews` in the temporary folder | the folder of the shard files, created when missing; processes sharing it share the cache |
//! | `shards` | `8` | 0 to 256 SQLite files keys are spread over; 0 and 1 mean one file; every process on a folder must use the same number |
//! | `size_limit` | `1GiB` | a positive [size](#sizes): the bytes the store aims to stay under, split evenly over the shards |
//! | `timeout` | `5s` | how long a command waits for another process's write on the same shard (SQLite busy timeout): seconds or a duration such as `500ms` |
//! | `eviction` (alias `eviction_policy`) | `least-recently-used` | `least-recently-used` (alias `lru`): past `size_limit`, expired then least recently used entries go; `none`: never evict |
//! | `on_corruption` | `error` | `error`: commands on a corrupt shard file fail with an error naming it; `rebuild`: the file is renamed aside and the shard starts empty |
//! | `inline_reads` | `off` | `off`: every point read runs on the backend's reader threads; `nowait` (Linux): point reads of data in memory run on the calling thread, faster and in parallel across threads, with file reads that never wait for the disk (`RWF_NOWAIT`; a read that would wait goes to a reader thread). `nowait` replaces `pread` in SQLite's process-wide VFS, which the application's own SQLite connections share: see `InlineReads::Nowait` before choosing it |
//!
//! # Options of every scheme
//!
//! | Option | Default | Accepted values |
//! |---|---|---|
//! | `disable` | absent | a [boolean](#booleans); when given, it alone decides whether the cache starts disabled |
//! | `enable` | `true` | a boolean; used only when `disable` is absent: the cache starts disabled if `enable` is false |
//! | `suppress` (alias `safe`) | the backend's: false for memory and disk, true for Redis | a boolean: safe mode, backend failures become neutral replies plus a `tracing::error!` |
//! | `secret` (alias `hash_key`) | none (values are not signed) | any non-empty string: signs every value with an HMAC; never shown in errors or `Debug` |
//! | `digestmod` | `sha256` | the HMAC used with `secret`: `md5`, `sha1` or `sha256`. `sum` and the xxhash digests (`xxh32`, `xxh64`, `xxh3_64`, `xxh3_128`) are rejected: they are not MACs |
//! | `accept_digestmods` | empty | a comma-separated list of the same names (`md5,sha1`): more digests accepted on read, to migrate from one `digestmod` to another |
//! | `compress_type` | `null` | `null` or `none` (no compression), `gzip` or `zlib` (cargo feature `compression-gzip`, on by default), `zstd` (feature `compression-zstd`); a compression whose feature is off is [`Error::FeatureDisabled`] |
//! | `compress_min_size` | `1024` | a [size](#sizes): values encoded smaller than this are not compressed; `0` compresses every value |
//! | `pickle_type` (alias `format`) | `msgpack` | `msgpack`, `json`, `default` (= `msgpack`); `null` for `mem://` and `://` only, meaning the default. `dill`, `sqlalchemy` and `pickle` are Python-only and rejected |
//! | `max_key_length` | `1024` | a positive whole number of bytes; a longer key is [`Error::KeyTooLong`] |
//! | `max_value_size` | none (no limit); for Redis `512MiB` | a positive [size](#sizes); a larger encoded value is [`Error::ValueTooLarge`]. Redis also checks every value, set member, lock token and ping message it sends against it, by default against Redis' own 512 MiB (`proto-max-bulk-len`), so an oversized one fails alone instead of making the server drop the connection and every command in flight on it; set it to the server's `proto-max-bulk-len` when that is lower |
//!
//! ## Booleans
//!
//! `true`, `1`, `yes`, `on` and `false`, `0`, `no`, `off`, in any case. Anything else, the
//! empty value included, is an error. (Python cashews reads anything but `1` and `true` as
//! false, so its `safe=t` is false; here it is an error.)
//!
//! ## Sizes
//!
//! A whole number of bytes with an optional suffix, in any case, optionally after a space:
//! `B`; `KB`, `MB`, `GB` (powers of 1000); `KiB`, `MiB`, `GiB` (powers of 1024). For example
//! `4096`, `512KiB`, `1MB`, `64MiB`. Fractions and negative numbers are errors.
//!
//! # Aliases
//!
//! The names of cashews 2.x are accepted everywhere the new name is:
//!
//! | Old name | Same as |
//! |---|---|
//! | `safe` | `suppress` |
//! | `hash_key` | `secret` |
//! | `format` | `pickle_type` (either spelling) |
//! | `max_size` | `max_bytes` |
//! | `create_connection_timeout` | `connect_timeout` (Redis) |
//! | `minsize`, `maxsize` | `min_connections`, `max_connections` (Redis) |
//!
//! # Differences from Python cashews
//!
//! - Options are checked against a typed schema per scheme; Python passes unknown names on to
//!   the backend's client. `check_repr` (a Python object-shape check) is not an option here.
//! - Booleans are strict (see above).
//! - The default `digestmod` is `sha256` (Python: `md5`), and `sum`/`xxh*` are refused.
//! - `pickle_type=null` cannot store objects unencoded: it means the default format.

pub(crate) mod redact;
mod value;
mod wrapper;

#[cfg(feature = "disk")]
pub mod disk;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

#[cfg(feature = "disk")]
pub use disk::{DiskOptions, Eviction, InlineReads, OnCorruption};
pub use memory::MemoryOptions;
#[cfg(feature = "redis")]
pub use redis::RedisOptions;

use self::redact::{is_scheme, redact_url};
use self::value::{OptionSpec, RawOption};
use self::wrapper::Wrapper;
use crate::codec::CodecOptions;
use crate::error::{Error, Result, shorten};

/// The default of [`CacheConfig::max_key_length`].
const DEFAULT_MAX_KEY_LENGTH: usize = 1024;

/// A parsed, validated cache configuration: the backend and its options, plus the wrapper-level
/// options every backend takes (disable, safe mode, codec, limits).
///
/// Parse one from a URL with [`CacheConfig::parse`] or `str::parse`; the [module docs](self)
/// list every option. The `Debug` output never shows the signing secret.
///
/// ```
/// use cashews::config::CacheConfig;
///
/// let config: CacheConfig = "mem://?secret=hunter2&max_value_size=1MiB".parse()?;
/// assert!(config.codec.secret.is_some());
/// assert_eq!(config.max_value_size, Some(1 << 20));
/// assert!(!format!("{config:?}").contains("hunter2"));
///
/// let mut by_hand = CacheConfig::default();
/// by_hand.max_key_length = 256;
/// cashews::Cache::new().setup_config("", by_hand)?;
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// The backend and its own options.
    pub backend: BackendConfig,
    /// Whether every command starts disabled (options `disable` and `enable`; `://` starts
    /// disabled).
    pub disable: bool,
    /// Safe mode (option `suppress`, alias `safe`): `None` leaves the backend's default, which
    /// is off for memory.
    pub suppress: Option<bool>,
    /// How values are encoded: format, signing, compression.
    pub codec: CodecOptions,
    /// The longest key accepted, in bytes (option `max_key_length`, default 1024).
    pub max_key_length: usize,
    /// The largest encoded value accepted, in bytes (option `max_value_size`); `None`, the
    /// default, means no limit.
    pub max_value_size: Option<usize>,
}

/// Which backend to build, with its options.
///
/// ```
/// use cashews::config::{BackendConfig, CacheConfig};
///
/// let config = CacheConfig::parse("mem://?size=10")?;
/// assert!(matches!(config.backend, BackendConfig::Memory(ref m) if m.size == 10));
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    feature = "redis",
    allow(
        clippy::large_enum_variant,
        reason = "built once at setup and then consumed: its size costs nothing, while boxing \
                  the Redis options would make users write `Box` when building it by hand"
    )
)]
pub enum BackendConfig {
    /// The in-process memory backend (`mem://`, `://`).
    Memory(MemoryOptions),
    /// A Redis server (`redis://`, cargo feature `redis`).
    #[cfg(feature = "redis")]
    Redis(RedisOptions),
    /// Sharded SQLite files on disk, shared by several processes (`disk://`, cargo feature
    /// `disk`).
    #[cfg(feature = "disk")]
    Disk(DiskOptions),
}

impl BackendConfig {
    /// Whether safe mode is on when the URL does not say: off for memory and disk, on for Redis.
    ///
    /// ```
    /// assert!(!cashews::config::BackendConfig::default().default_suppress());
    /// ```
    #[must_use]
    pub fn default_suppress(&self) -> bool {
        match self {
            Self::Memory(_) => false,
            #[cfg(feature = "redis")]
            Self::Redis(_) => true,
            #[cfg(feature = "disk")]
            Self::Disk(_) => false,
        }
    }
}

impl BackendConfig {
    /// Checks the backend's options: [`MemoryOptions::validate`],
    /// [`RedisOptions::validate`] or [`DiskOptions::validate`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option out of range.
    ///
    /// ```
    /// use cashews::config::{BackendConfig, MemoryOptions};
    /// assert!(BackendConfig::Memory(MemoryOptions::with_size(0)).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Memory(options) => options.validate(),
            #[cfg(feature = "redis")]
            Self::Redis(options) => options.validate(),
            #[cfg(feature = "disk")]
            Self::Disk(options) => options.validate(),
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self::Memory(MemoryOptions::default())
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            backend: BackendConfig::default(),
            disable: false,
            suppress: None,
            codec: CodecOptions::default(),
            max_key_length: DEFAULT_MAX_KEY_LENGTH,
            max_value_size: None,
        }
    }
}

/// The schemes this version can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `mem://`
    Memory,
    /// `://` or the empty string: memory, disabled.
    DisabledMemory,
    /// `redis://`
    #[cfg(feature = "redis")]
    Redis,
    /// `disk://`
    #[cfg(feature = "disk")]
    Disk,
}

impl CacheConfig {
    /// Parses and validates a cache URL; the [module docs](self) list every scheme and option.
    ///
    /// # Errors
    ///
    /// - [`Error::UnknownScheme`] for a scheme that names no backend (`foo://`);
    /// - [`Error::InvalidUrl`] for a URL without `://`, a host or path after `mem://` or
    ///   `disk://`, a `#` fragment, or a Redis address redis-rs cannot read;
    /// - [`Error::UnknownOption`] for an option the scheme does not take, listing those it takes;
    /// - [`Error::InvalidOption`] for a bad value or an option given twice;
    /// - [`Error::FeatureDisabled`] for a `compress_type` whose cargo feature is off,
    ///   `redis://` without the `redis` feature, `rediss://` without `redis-tls`, or `disk://`
    ///   without `disk`.
    ///
    /// Credentials never appear in the message.
    ///
    /// # Panics
    ///
    /// Never, whatever the input.
    ///
    /// ```
    /// use cashews::{config::CacheConfig, Error};
    ///
    /// assert!(CacheConfig::parse("://")?.disable);
    /// assert!(CacheConfig::parse("mem://?disable=1")?.disable);
    /// assert!(matches!(
    ///     CacheConfig::parse("mem://?sise=10"),
    ///     Err(Error::UnknownOption { .. })
    /// ));
    /// let err = CacheConfig::parse("rediss://:pw@localhost:no-port").unwrap_err();
    /// assert!(!err.to_string().contains("pw"));
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<Self> {
        let text = url.trim();
        if text.is_empty() {
            return Self::build(Scheme::DisabledMemory, "", "", "");
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(invalid_url(
                text,
                "there is no `://` after the scheme: write for example `mem://`, \
                 `mem://?size=1000`, or `://` for a disabled cache",
            ));
        };
        if !is_scheme(scheme) {
            return Err(invalid_url(
                text,
                "the part before `://` is not a scheme: use mem://, or :// for a disabled cache",
            ));
        }
        let written = scheme;
        let scheme = scheme.to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "mem" => Scheme::Memory,
            "" => Scheme::DisabledMemory,
            #[cfg(feature = "redis")]
            "redis" => Scheme::Redis,
            #[cfg(feature = "redis-tls")]
            "rediss" => Scheme::Redis,
            #[cfg(not(feature = "redis"))]
            "redis" => {
                return Err(Error::FeatureDisabled {
                    scheme,
                    feature: "redis",
                });
            }
            #[cfg(not(feature = "redis-tls"))]
            "rediss" => {
                return Err(Error::FeatureDisabled {
                    scheme,
                    feature: "redis-tls",
                });
            }
            #[cfg(feature = "disk")]
            "disk" => Scheme::Disk,
            #[cfg(not(feature = "disk"))]
            "disk" => {
                return Err(Error::FeatureDisabled {
                    scheme,
                    feature: "disk",
                });
            }
            _ => {
                return Err(Error::UnknownScheme {
                    scheme: written.to_owned(),
                });
            }
        };
        if rest.contains('#') {
            return Err(invalid_url(
                text,
                "a URL fragment (`#…`) is not used: remove it, or write `#` in a value as `%23`",
            ));
        }
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        if query_holds_userinfo(query, kind_specs(kind)) {
            return Err(invalid_url(
                text,
                "there is an `@` after the `?` that is not in a known option's value: a user \
                 name or password holding `?`, `#`, `/` or `@` must be percent-encoded (`%3F`, \
                 `%23`, `%2F`, `%40`), as in `redis://:pa%3Fss@host:6379`",
            ));
        }
        if kind_takes_location(kind) {
            return Self::build(kind, &scheme, location, query);
        }
        if !(location.is_empty() || location == "/") {
            return Err(invalid_url(
                text,
                &format!(
                    "{scheme}:// takes no host, user or path: put options after `?`, as in \
                     `{scheme}://?size=1000`"
                ),
            ));
        }
        Self::build(kind, &scheme, location, query)
    }

    /// Reads the query of a URL whose scheme is `scheme` (lower-cased) into a configuration;
    /// `location` is the part between `://` and `?`.
    #[cfg_attr(
        not(feature = "redis"),
        expect(unused_variables, reason = "only Redis reads the location")
    )]
    fn build(kind: Scheme, scheme: &str, location: &str, query: &str) -> Result<Self> {
        let specs = kind_specs(kind);
        let (backend_options, wrapper_options) = read_query(scheme, query, specs)?;
        let wrapper = Wrapper::parse(scheme, &wrapper_options)?;
        #[cfg_attr(
            not(feature = "redis"),
            expect(unused_mut, reason = "only Redis reads max_value_size")
        )]
        let mut backend = match kind {
            Scheme::Memory | Scheme::DisabledMemory => {
                BackendConfig::Memory(MemoryOptions::parse(&backend_options)?)
            }
            #[cfg(feature = "redis")]
            Scheme::Redis => {
                let location = if location.is_empty() || location.starts_with('/') {
                    format!("127.0.0.1:6379{location}")
                } else {
                    location.to_owned()
                };
                let address = format!("{scheme}://{location}");
                BackendConfig::Redis(RedisOptions::parse(address, &backend_options)?)
            }
            #[cfg(feature = "disk")]
            Scheme::Disk => BackendConfig::Disk(DiskOptions::parse(&backend_options)?),
        };
        // Redis checks every argument it sends against the same limit (default: the server's).
        #[cfg(feature = "redis")]
        if let (BackendConfig::Redis(options), Some(limit)) = (&mut backend, wrapper.max_value_size)
        {
            options.max_value_size = limit;
        }
        let default_disable =
            matches!(kind, Scheme::DisabledMemory) || !wrapper.enable.unwrap_or(true);
        let config = Self {
            backend,
            disable: wrapper.disable.unwrap_or(default_disable),
            suppress: wrapper.suppress,
            codec: wrapper.codec,
            max_key_length: wrapper.max_key_length.unwrap_or(DEFAULT_MAX_KEY_LENGTH),
            max_value_size: wrapper.max_value_size,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration as a whole, however it was built (parsed, or fields set by
    /// hand): the wrapper-level limits here, the backend's options with
    /// [`BackendConfig::validate`]. [`CacheConfig::parse`] and [`Cache::setup_config`] call
    /// it, and [`Cache::setup_backend`] checks the wrapper-level part; the codec options are
    /// checked when the codec is built.
    ///
    /// [`Cache::setup_config`]: crate::Cache::setup_config
    /// [`Cache::setup_backend`]: crate::Cache::setup_backend
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option out of range, such as a
    /// `max_key_length` of 0 or a memory `size` of 0.
    ///
    /// ```
    /// let mut config = cashews::config::CacheConfig::default();
    /// assert!(config.validate().is_ok());
    /// config.max_key_length = 0;
    /// assert!(config.validate().unwrap_err().to_string().contains("max_key_length"));
    /// assert!(cashews::Cache::new().setup_config("", config).is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.validate_limits()?;
        self.backend.validate()
    }

    /// The wrapper-level part of [`CacheConfig::validate`].
    pub(crate) fn validate_limits(&self) -> Result<()> {
        if self.max_key_length == 0 {
            return Err(Error::InvalidOption {
                option: "max_key_length".to_owned(),
                value: "0".to_owned(),
                expected: "a positive number of bytes".to_owned(),
            });
        }
        if self.max_value_size == Some(0) {
            return Err(Error::InvalidOption {
                option: "max_value_size".to_owned(),
                value: "0".to_owned(),
                expected: "a positive size, or no limit (`None`)".to_owned(),
            });
        }
        Ok(())
    }
}

impl std::str::FromStr for CacheConfig {
    type Err = Error;

    /// Same as [`CacheConfig::parse`].
    ///
    /// ```
    /// let config: cashews::config::CacheConfig = "mem://?size=10".parse()?;
    /// assert!(!config.disable);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// The options a scheme takes (besides the wrapper's).
fn kind_specs(kind: Scheme) -> &'static [OptionSpec] {
    match kind {
        Scheme::Memory | Scheme::DisabledMemory => memory::OPTIONS,
        #[cfg(feature = "redis")]
        Scheme::Redis => redis::OPTIONS,
        #[cfg(feature = "disk")]
        Scheme::Disk => disk::OPTIONS,
    }
}

/// Whether `name` (decoded, lower-cased) spells an option of any scheme this build reads.
pub(crate) fn is_known_option(name: &str) -> bool {
    #[cfg(feature = "redis")]
    let redis = redis::OPTIONS;
    #[cfg(not(feature = "redis"))]
    let redis: &[OptionSpec] = &[];
    #[cfg(feature = "disk")]
    let disk = disk::OPTIONS;
    #[cfg(not(feature = "disk"))]
    let disk: &[OptionSpec] = &[];
    [memory::OPTIONS, wrapper::OPTIONS, redis, disk]
        .iter()
        .any(|specs| find(specs, name).is_some())
}

/// Whether an `@` in the query is anywhere but in the value of a known option: then the
/// `?` before it is most likely inside a password (`redis://:pa?ss@host`), and reading the
/// query would quote a piece of that password as an unknown option's name.
fn query_holds_userinfo(query: &str, specs: &[OptionSpec]) -> bool {
    query
        .split('&')
        .filter(|pair| pair.contains('@'))
        .any(|pair| {
            let Some((name, _)) = pair.split_once('=') else {
                return true;
            };
            let name: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(n, _)| n.to_lowercase())
                .collect();
            name.contains('@')
                || (find(specs, &name).is_none() && find(wrapper::OPTIONS, &name).is_none())
        })
}

/// An [`Error::InvalidUrl`] quoting the URL with its credentials redacted.
fn invalid_url(url: &str, reason: &str) -> Error {
    Error::InvalidUrl {
        url: redact_url(url),
        reason: reason.to_owned(),
    }
}

/// Whether the part between `://` and `?` is the backend's address (Redis) rather than empty.
fn kind_takes_location(kind: Scheme) -> bool {
    match kind {
        Scheme::Memory | Scheme::DisabledMemory => false,
        #[cfg(feature = "redis")]
        Scheme::Redis => true,
        #[cfg(feature = "disk")]
        Scheme::Disk => false,
    }
}

/// Splits a query into its backend options (`specs`) and its wrapper options, resolving aliases
/// and rejecting unknown names and repeats.
fn read_query(
    scheme: &str,
    query: &str,
    specs: &[OptionSpec],
) -> Result<(Vec<RawOption>, Vec<RawOption>)> {
    let mut memory = Vec::new();
    let mut wrapper = Vec::new();
    // The option just read, when it holds a secret.
    let mut last_secret: Option<RawOption> = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let name = name.to_lowercase();
        let (spec, is_memory) = if let Some(spec) = find(specs, &name) {
            (spec, true)
        } else if let Some(spec) = find(wrapper::OPTIONS, &name) {
            (spec, false)
        } else {
            if let Some(secret) = &last_secret {
                // What follows a secret may be the rest of it: never quote it.
                return Err(secret.invalid(
                    "a value with every `&` in it percent-encoded as `%26`: an option that is not \
                     known follows it, and it may be the rest of the value (not shown)",
                ));
            }
            return Err(Error::UnknownOption {
                scheme: scheme.to_owned(),
                option: shorten(&name),
                accepted: accepted_names(specs),
            });
        };
        let option = RawOption {
            canonical: spec.name,
            name,
            value: value.into_owned(),
        };
        if let Some(first) = memory
            .iter()
            .chain(&wrapper)
            .find(|o: &&RawOption| o.canonical == option.canonical)
        {
            let spellings = if first.name == option.name {
                String::new()
            } else {
                format!(
                    " (as `{}` and `{}`, which are the same option)",
                    first.name, option.name
                )
            };
            return Err(option.invalid(format!(
                "one value only, but the option is given twice{spellings}: keep one"
            )));
        }
        last_secret = option.is_secret().then(|| option.clone());
        if is_memory {
            memory.push(option);
        } else {
            wrapper.push(option);
        }
    }
    Ok((memory, wrapper))
}

fn find(specs: &[OptionSpec], name: &str) -> Option<OptionSpec> {
    specs.iter().find(|spec| spec.matches(name)).copied()
}

/// Every option name a scheme takes (its `specs` and the wrapper's), with aliases, for
/// [`Error::UnknownOption`].
fn accepted_names(specs: &[OptionSpec]) -> String {
    specs
        .iter()
        .chain(wrapper::OPTIONS)
        .map(OptionSpec::describe)
        .collect::<Vec<_>>()
        .join(", ")
}
