//! Options of the `mem://` backend.

use std::time::Duration;

use super::value::{OptionSpec, RawOption};
use crate::error::Result;

/// The options of `mem://` (and of `://`), in the order the docs list them.
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "size",
        aliases: &[],
    },
    OptionSpec {
        name: "max_bytes",
        aliases: &["max_size"],
    },
    OptionSpec {
        name: "check_interval",
        aliases: &[],
    },
];

/// Options of the in-memory backend (`mem://?size=10000&max_bytes=64MiB&check_interval=1s`).
///
/// ```
/// let opts = cashews::config::MemoryOptions::default();
/// assert_eq!(opts.size, 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// The maximum number of entries (`size`, default 1000).
    pub size: usize,
    /// An optional bound on the bytes held by keys and values (`max_bytes`).
    pub max_bytes: Option<u64>,
    /// How often a background task purges expired entries (`check_interval`, default 1 s);
    /// zero disables the purge (expired entries are still dropped when read).
    pub check_interval: Duration,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            size: 1000,
            max_bytes: None,
            check_interval: Duration::from_secs(1),
        }
    }
}

impl MemoryOptions {
    /// Options with this many entries and the other defaults.
    ///
    /// ```
    /// assert_eq!(cashews::config::MemoryOptions::with_size(10).size, 10);
    /// ```
    #[must_use]
    pub fn with_size(size: usize) -> Self {
        Self {
            size,
            ..Self::default()
        }
    }

    /// Checks the options however they were built (parsed, or set by hand): at least one
    /// entry, and a byte bound, when given, above zero. [`Cache::setup_config`] calls it;
    /// [`MemoryBackend::new`] cannot fail, and counts a `size` of 0 as 1.
    ///
    /// [`Cache::setup_config`]: crate::Cache::setup_config
    /// [`MemoryBackend::new`]: crate::MemoryBackend::new
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for `size` or `max_bytes`.
    ///
    /// ```
    /// use cashews::config::MemoryOptions;
    /// assert!(MemoryOptions::default().validate().is_ok());
    /// assert!(MemoryOptions::with_size(0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let invalid = |option: &str, expected: &str| {
            Err(crate::Error::InvalidOption {
                option: option.to_owned(),
                value: "0".to_owned(),
                expected: expected.to_owned(),
            })
        };
        if self.size == 0 {
            return invalid("size", "a positive number of entries");
        }
        if self.max_bytes == Some(0) {
            return invalid("max_bytes", "a positive size, or no bound (`None`)");
        }
        Ok(())
    }

    /// Builds the options from the memory options of a URL query, already resolved against
    /// [`OPTIONS`] and checked for repeats by the caller; absent options keep their defaults.
    pub(crate) fn parse(options: &[RawOption]) -> Result<Self> {
        let mut opts = Self::default();
        for option in options {
            match option.canonical {
                "size" => opts.size = option.positive("entries")?,
                "max_bytes" => opts.max_bytes = Some(option.size(true)?),
                "check_interval" => opts.check_interval = option.interval()?,
                // The caller only hands over names from `OPTIONS`.
                _ => {}
            }
        }
        Ok(opts)
    }
}
