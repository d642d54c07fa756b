//! Options of the `mem://` backend.

use std::time::Duration;

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
}
