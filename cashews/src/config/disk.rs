//! Options of the `disk://` backend (cargo feature `disk`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::value::{OptionSpec, RawOption};
use crate::error::Result;

/// The options of `disk://`, in the order the docs list them.
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "directory",
        aliases: &[],
    },
    OptionSpec {
        name: "shards",
        aliases: &[],
    },
    OptionSpec {
        name: "size_limit",
        aliases: &[],
    },
    OptionSpec {
        name: "timeout",
        aliases: &[],
    },
    OptionSpec {
        name: "eviction",
        aliases: &["eviction_policy"],
    },
    OptionSpec {
        name: "on_corruption",
        aliases: &[],
    },
    OptionSpec {
        name: "inline_reads",
        aliases: &[],
    },
];

/// The default of [`DiskOptions::shards`].
const DEFAULT_SHARDS: usize = 8;

/// The most shard files a store may have.
const MAX_SHARDS: usize = 256;

/// The default of [`DiskOptions::size_limit`]: 1 GiB, as Python's diskcache.
const DEFAULT_SIZE_LIMIT: u64 = 1 << 30;

/// The default of [`DiskOptions::timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a disk store does when it holds more than [`DiskOptions::size_limit`] bytes.
///
/// ```
/// use cashews::config::Eviction;
/// assert_eq!(Eviction::default(), Eviction::LeastRecentlyUsed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Eviction {
    /// Drop expired entries, then the least recently used ones (`least-recently-used`).
    #[default]
    LeastRecentlyUsed,
    /// Never evict (`none`): the store grows past `size_limit`.
    None,
}

/// What a disk store does with a shard file SQLite reports as corrupt (or not a database).
///
/// ```
/// use cashews::config::OnCorruption;
/// assert_eq!(OnCorruption::default(), OnCorruption::Error);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum OnCorruption {
    /// Every command on that shard fails with an error naming the file and the fix
    /// (`error`); the other shards keep working.
    #[default]
    Error,
    /// The file is renamed aside (`<file>.corrupt-<unix ms>`, kept for inspection) and the
    /// shard starts empty (`rebuild`), with a `tracing::error!`.
    Rebuild,
}

/// Where the disk backend runs point reads (`get`, `exists`, `get_expire`, `get_size`,
/// `get_bits`, and the keys of `get_many`) of data in memory (`inline_reads`).
///
/// ```
/// use cashews::config::{DiskOptions, InlineReads};
/// assert_eq!(InlineReads::default(), InlineReads::Off);
/// let mut opts = DiskOptions::new("/tmp/app-cache");
/// opts.inline_reads = InlineReads::Nowait;
/// assert_eq!(opts.inline_reads, InlineReads::Nowait);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum InlineReads {
    /// Every read runs on the backend's reader threads (`off`, the default): no SQLite code
    /// runs on the caller's thread, and the backend leaves SQLite's process-wide state alone.
    /// About 3.5 µs per get hit; parallel readers add no throughput on 2 cores.
    #[default]
    Off,
    /// Reads of data in the kernel's page cache run on the calling thread, with every file
    /// read made without waiting for the disk (Linux `preadv2` with `RWF_NOWAIT`), `nowait`.
    ///
    /// A hit then takes about 2 µs and reads on several runtime threads run in parallel; a
    /// read that would wait for the disk is refused at once and goes to a reader thread, so a
    /// slow disk still never holds a runtime thread. Outside Linux, and on a filesystem that
    /// cannot read so (tmpfs), every read goes to reader threads as with [`Self::Off`].
    ///
    /// # Caveat: a process-wide change to SQLite
    ///
    /// To read without waiting, the first backend built with this value replaces `pread` in
    /// the system-call table of SQLite's default (unix) VFS, once, for the whole process and
    /// for good. That table is shared by every SQLite connection of the process, the
    /// application's own rusqlite connections included: they then read through the
    /// replacement, which calls the original `pread` with the same arguments on any thread
    /// not inside a cashews inline read, so they read as before. SQLite asks that this table
    /// be changed before other threads use SQLite, which a library cannot ensure: choose
    /// `nowait` only when the process's own SQLite use allows it, and build the first such
    /// backend (or call `Cache::setup` with it) before other threads open SQLite
    /// connections, for instance at the start of `main`.
    Nowait,
}

/// Options of the disk backend
/// (`disk://?directory=/var/cache/app&shards=8&size_limit=1GiB&timeout=5s`).
///
/// ```
/// use std::time::Duration;
/// let opts = cashews::config::DiskOptions::new("/tmp/app-cache");
/// assert_eq!(opts.shards, 8);
/// assert_eq!(opts.timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskOptions {
    /// The folder holding the shard files (`directory`; default
    /// [`DiskOptions::default_directory`]). Created when missing. Every process that opens
    /// the same folder shares the same cache.
    pub directory: PathBuf,
    /// How many SQLite files keys are spread over (`shards`, default 8, at most 256); 0 and
    /// 1 both mean one file. Every process sharing a folder must use the same number: a
    /// different one is refused when the shard is opened.
    pub shards: usize,
    /// The bytes (keys, values and a fixed overhead per entry) the store aims to stay under
    /// (`size_limit`, default 1 GiB), split evenly over the shards; see [`Eviction`].
    pub size_limit: u64,
    /// How long a command waits for another connection's write transaction on the same
    /// shard file (`timeout`, SQLite's busy timeout; default 5 s).
    pub timeout: Duration,
    /// What happens past `size_limit` (`eviction`, alias `eviction_policy`:
    /// `least-recently-used`, the default, or `none`).
    pub eviction: Eviction,
    /// What happens to a corrupt shard file (`on_corruption`: `error`, the default, or
    /// `rebuild`).
    pub on_corruption: OnCorruption,
    /// Where point reads of data in memory run (`inline_reads`: `off`, the default, or
    /// `nowait`); see [`InlineReads`], whose docs give the process-wide caveat of `nowait`.
    pub inline_reads: InlineReads,
}

impl Default for DiskOptions {
    fn default() -> Self {
        Self::new(Self::default_directory())
    }
}

impl DiskOptions {
    /// Options for this folder with every default.
    ///
    /// ```
    /// let opts = cashews::config::DiskOptions::new("/tmp/app-cache").with_shards(0);
    /// assert_eq!(opts.shard_count(), 1);
    /// ```
    #[must_use]
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            shards: DEFAULT_SHARDS,
            size_limit: DEFAULT_SIZE_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            eviction: Eviction::default(),
            on_corruption: OnCorruption::default(),
            inline_reads: InlineReads::Off,
        }
    }

    /// The same options with another shard count (0 or 1: one file).
    ///
    /// ```
    /// assert_eq!(cashews::config::DiskOptions::new("/tmp/c").with_shards(4).shards, 4);
    /// ```
    #[must_use]
    pub const fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// The number of shard files: `shards`, with 0 counted as 1.
    ///
    /// ```
    /// assert_eq!(cashews::config::DiskOptions::new("/tmp/c").shard_count(), 8);
    /// ```
    #[must_use]
    pub fn shard_count(&self) -> usize {
        self.shards.max(1)
    }

    /// The default folder: `$XDG_CACHE_HOME/cashews`, else `$HOME/.cache/cashews`, else
    /// `cashews` under the system's temporary folder. A per-user folder, so by default every
    /// process of one user shares one disk cache.
    ///
    /// ```
    /// let dir = cashews::config::DiskOptions::default_directory();
    /// assert!(dir.ends_with("cashews"));
    /// ```
    #[must_use]
    pub fn default_directory() -> PathBuf {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        if let Some(cache) = from_env("XDG_CACHE_HOME") {
            return cache.join("cashews");
        }
        if let Some(home) = from_env("HOME") {
            return home.join(".cache").join("cashews");
        }
        std::env::temp_dir().join("cashews")
    }

    /// Checks the options however they were built (parsed, or set by hand): a folder, at
    /// most 256 shards, a positive `size_limit`. Parsing, [`DiskBackend::new`] and
    /// [`Cache::setup_config`] call it.
    ///
    /// [`DiskBackend::new`]: crate::backend::DiskBackend::new
    /// [`Cache::setup_config`]: crate::Cache::setup_config
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for `directory`, `shards` or
    /// `size_limit`.
    ///
    /// ```
    /// use cashews::config::DiskOptions;
    /// assert!(DiskOptions::new("/tmp/c").validate().is_ok());
    /// assert!(DiskOptions::new("/tmp/c").with_shards(1000).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let invalid = |option: &str, value: String, expected: String| {
            Err(crate::Error::InvalidOption {
                option: option.to_owned(),
                value,
                expected,
            })
        };
        if self.directory.as_os_str().is_empty() {
            return invalid(
                "directory",
                String::new(),
                "a folder path, such as `/var/cache/app`".to_owned(),
            );
        }
        if self.shards > MAX_SHARDS {
            return invalid(
                "shards",
                self.shards.to_string(),
                format!(
                    "a whole number of shard files from 0 to {MAX_SHARDS} (0 and 1 mean one file)"
                ),
            );
        }
        if self.size_limit == 0 {
            return invalid(
                "size_limit",
                "0".to_owned(),
                "a positive size in bytes".to_owned(),
            );
        }
        Ok(())
    }

    /// Builds the options from the disk options of a URL query, already resolved against
    /// [`OPTIONS`] and checked for repeats by the caller; absent options keep their defaults.
    pub(crate) fn parse(options: &[RawOption]) -> Result<Self> {
        let mut opts = Self::default();
        for option in options {
            match option.canonical {
                "directory" => {
                    if option.value.trim().is_empty() {
                        return Err(option.invalid("a folder path, such as `/var/cache/app`"));
                    }
                    opts.directory = Path::new(&option.value).to_path_buf();
                }
                "shards" => {
                    opts.shards = option
                        .value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_SHARDS)
                        .ok_or_else(|| {
                            option.invalid(format!(
                                "a whole number of shard files from 0 to {MAX_SHARDS} \
                                 (0 and 1 mean one file)"
                            ))
                        })?;
                }
                "size_limit" => opts.size_limit = option.size(true)?,
                "timeout" => opts.timeout = option.interval()?,
                "eviction" => {
                    opts.eviction = match option.value.to_ascii_lowercase().as_str() {
                        "least-recently-used" | "lru" => Eviction::LeastRecentlyUsed,
                        "none" => Eviction::None,
                        _ => return Err(option.invalid("`least-recently-used` or `none`")),
                    };
                }
                "on_corruption" => {
                    opts.on_corruption = match option.value.to_ascii_lowercase().as_str() {
                        "error" => OnCorruption::Error,
                        "rebuild" => OnCorruption::Rebuild,
                        _ => return Err(option.invalid("`error` or `rebuild`")),
                    };
                }
                "inline_reads" => {
                    opts.inline_reads = match option.value.to_ascii_lowercase().as_str() {
                        "off" => InlineReads::Off,
                        "nowait" => InlineReads::Nowait,
                        _ => {
                            return Err(option.invalid(
                                "`off` (the default: reads run on reader threads) or `nowait` \
                                 (reads of data in memory run on the calling thread, through a \
                                 process-wide SQLite hook: see `InlineReads::Nowait`); drop the \
                                 option to keep the default",
                            ));
                        }
                    };
                }
                // The caller only hands over names from `OPTIONS`.
                _ => {}
            }
        }
        opts.validate()?;
        Ok(opts)
    }
}
