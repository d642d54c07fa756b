//! Detect (SPEC §6.3): which results of a piece of work came from the cache.
//!
//! [`detect`] runs a future inside a detection scope and returns, with its output, every
//! `(key, strategy)` a strategy served from the cache while it ran (a miss records nothing).
//! Scopes nest: a hit is recorded into the innermost scope and every enclosing one. The scope
//! is task-scoped: a task spawned inside it records nothing into it unless it runs its own
//! future under [`detect`] (tokio task-locals do not propagate, unlike Python's context
//! variables). This is also the per-call detector of SPEC Appendix B.4: run one call under
//! [`detect`] and read what served it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! #[cashews::cache(ttl = "1h", key = "answer")]
//! async fn answer() -> u32 { 42 }
//!
//! cashews::cache().setup("mem://")?;
//! let (_, first) = cashews::detect(answer()).await;
//! assert!(first.is_empty()); // computed
//! let (_, second) = cashews::detect(answer()).await;
//! assert_eq!(second.keys(), vec!["answer".to_owned()]);
//! assert_eq!(second.served()[0].strategy, "simple");
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

/// One result served from the cache.
///
/// ```
/// let served = cashews::detect::Served::new("k", "simple");
/// assert_eq!(served.key, "k");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Served {
    /// The key that served the result.
    pub key: String,
    /// The strategy: `simple` (cache), `failover`, `soft`, `early`, `hit`, `iterator`.
    pub strategy: &'static str,
}

impl Served {
    /// A record.
    #[must_use]
    pub fn new(key: impl Into<String>, strategy: &'static str) -> Self {
        Self {
            key: key.into(),
            strategy,
        }
    }
}

/// What one [`detect`] scope saw, in order.
///
/// ```
/// let report = cashews::detect::Detected::default();
/// assert!(report.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Detected {
    served: Arc<Mutex<Vec<Served>>>,
}

impl Detected {
    /// Every result served from the cache, in order (`calls_list` in Python).
    #[must_use]
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().clone()
    }

    /// The distinct keys that served results, in first-served order (`calls` in Python).
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for served in self.served.lock().iter() {
            if !keys.contains(&served.key) {
                keys.push(served.key.clone());
            }
        }
        keys
    }

    /// Whether nothing was served from the cache.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.served.lock().is_empty()
    }
}

tokio::task_local! {
    static SCOPES: Vec<Detected>;
}

/// Runs `fut` in a new detection scope; returns its output and what the cache served.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (value, detected) = cashews::detect(async { 1 }).await;
/// assert_eq!(value, 1);
/// assert!(detected.is_empty());
/// # }
/// ```
pub async fn detect<F: Future>(fut: F) -> (F::Output, Detected) {
    let detected = Detected::default();
    let mut scopes = SCOPES.try_with(Clone::clone).unwrap_or_default();
    scopes.push(detected.clone());
    let output = SCOPES.scope(scopes, fut).await;
    (output, detected)
}

/// Records a result served from the cache into every enclosing scope of this task.
pub(crate) fn record(key: &str, strategy: &'static str) {
    let _ = SCOPES.try_with(|scopes| {
        for scope in scopes {
            scope.served.lock().push(Served::new(key, strategy));
        }
    });
}
