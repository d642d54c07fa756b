//! The locking family: `locked` / `locked_always` (one caller at a time per key),
//! `cache_locked` (`cache(lock = true)`) and `thunder_protection` (one shared run per key in
//! this process); and the wake-ups behind `Cache::lock`, `lock_wait` and `is_locked_wait`.
//!
//! Counts, never clocks: callers are lined up by watching their futures go pending, the
//! backend reads a manual clock that only moves when a test says so, and the tests that look
//! at elapsed time run on paused Tokio time, where a sleep that should not happen would show
//! as a jump to the lock's TTL.

mod cache_lock;
mod lock_primitive;
mod locked;
mod spec_scenarios;
mod thunder_protection;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::{Error, Ttl};

use crate::support::LineUp;

const HOUR: Ttl = Ttl::secs(3_600);

/// The caller's own error type: refusals reach it through `From<cashews::Error>`.
#[derive(Debug, Clone, PartialEq)]
enum AppError {
    Locked(String),
    Cache(String),
    Upstream,
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::Locked { key } => Self::Locked(key),
            other => Self::Cache(other.to_string()),
        }
    }
}

/// Counts origin runs, and the most that ran at the same time.
#[derive(Debug, Default)]
struct Bodies {
    runs: AtomicUsize,
    inside: AtomicUsize,
    max_inside: AtomicUsize,
}

impl Bodies {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn max_inside(&self) -> usize {
        self.max_inside.load(Ordering::SeqCst)
    }

    /// Enters a body; the returned guard leaves it.
    fn enter(self: &Arc<Self>) -> Inside {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_inside.fetch_max(now, Ordering::SeqCst);
        Inside(Arc::clone(self))
    }
}

struct Inside(Arc<Bodies>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// A guard against a waiter that never wakes: generous, and never reached when all is well.
async fn in_time<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("a waiter was not woken")
}
