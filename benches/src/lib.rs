//! Shared fixtures of the cashews benchmarks: the value types and the peers' setup, so every
//! bench target compares the same data.

use serde::{Deserialize, Serialize};

/// The small value: a 3-field struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// An id.
    pub id: u64,
    /// A short name.
    pub name: String,
    /// A flag.
    pub active: bool,
}

impl User {
    /// A user numbered `i`.
    #[must_use]
    pub fn sample(i: u64) -> Self {
        Self {
            id: i,
            name: format!("user-{i}"),
            active: i.is_multiple_of(2),
        }
    }
}

/// The big value: 1 KiB of bytes.
#[must_use]
pub fn kib_value() -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(vec![7u8; 1024])
}

/// A current-thread Tokio runtime for async benches.
///
/// # Panics
///
/// If Tokio cannot build a runtime (no benchmark can run then).
#[must_use]
#[allow(clippy::expect_used)]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The median of `values` (sorted in place); the upper middle for an even count.
///
/// ```
/// assert_eq!(cashews_benches::median(&mut [3.0, 1.0, 2.0]), 2.0);
/// ```
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The number in the environment variable `name`, or `default` when it is unset or not a
/// number (`ROUNDS=61 cargo bench ...`).
///
/// ```
/// assert_eq!(cashews_benches::env_or("CASHEWS_BENCHES_UNSET_VARIABLE", 7), 7);
/// ```
pub fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The Redis the benches use: `CASHEWS_REDIS_URL`, or the local default.
///
/// ```
/// assert!(cashews_benches::redis_url().starts_with("redis"));
/// ```
#[must_use]
pub fn redis_url() -> String {
    std::env::var("CASHEWS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Whether Redis answers a `PING` at [`redis_url`] within a second; when it does not, prints
/// that `what` is skipped, and why.
///
/// ```
/// let _up: bool = cashews_benches::redis_up("this example");
/// ```
#[must_use]
pub fn redis_up(what: &str) -> bool {
    let up = redis::Client::open(redis_url())
        .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(1)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok();
    if !up {
        #[expect(clippy::print_stderr, reason = "a bench tells why it skips")]
        {
            eprintln!(
                "skipping {what}: nothing answers at {} (set CASHEWS_REDIS_URL)",
                redis_url()
            );
        }
    }
    up
}

/// Whether `id` is in the comma-separated list of the environment variable `var` (every id
/// is, when `var` is unset): how a bench's `SHAPES` or `PATHS` selects what runs.
///
/// ```
/// assert!(cashews_benches::selected("CASHEWS_BENCHES_UNSET_VARIABLE", "get"));
/// ```
#[must_use]
pub fn selected(var: &str, id: &str) -> bool {
    std::env::var(var).map_or(true, |s| s.split(',').any(|x| x.trim() == id))
}

/// Reads keys `0..keys` through `hit` until one whole pass is served by the client-side
/// `tier` itself (its tracking link up, no miss, a local hit per key), waiting 10 ms between
/// passes and giving up after 200: whether the tier got there. The fills of a client-side
/// tier, and its tracking link, complete in the background.
///
/// ```no_run
/// # async fn warm(tier: cashews::backend::ClientSideRedis) {
/// let local = cashews_benches::warm_client_side(&tier, 10, |_id| async {}).await;
/// # }
/// ```
pub async fn warm_client_side<F: std::future::Future>(
    tier: &cashews::backend::ClientSideRedis,
    keys: u64,
    hit: impl Fn(u64) -> F,
) -> bool {
    for _ in 0..200 {
        let before = tier.stats();
        for id in 0..keys {
            hit(id).await;
        }
        let after = tier.stats();
        if after.linked && after.misses == before.misses && after.hits - before.hits >= keys {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}
