//! `background = true` on `#[cashews::early]` and `#[cashews::hit]`, through the macros: the
//! caller that triggers a refresh returns the stored value at once while the refresh runs in a
//! spawned task. Each origin run is counted; an origin that is handed a [`Gate`] reports that
//! it started and then waits until the test releases it, so the test orders the events with
//! channels, never with time.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::support::{Clocked, clocked};

/// Holds an origin run until the test releases it.
#[derive(Clone)]
struct Gate {
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

impl Gate {
    /// A gate, the receiver of its "started" signals, and its release.
    fn new() -> (Self, mpsc::UnboundedReceiver<()>, Arc<Notify>) {
        let (started, receiver) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let gate = Self {
            started,
            release: Arc::clone(&release),
        };
        (gate, receiver, release)
    }

    async fn pass(&self) {
        self.started.send(()).unwrap();
        self.release.notified().await;
    }
}

/// A guard against a hang, not a timing assertion: a caller that waited for the refresh
/// would wait for a release that only comes after it returned.
async fn at_once<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("the caller waited for the refresh: it must return the stored value at once")
}

/// Calls `call` until it returns `wanted` (the refresh is stored), yielding to the spawned
/// refresh in between; bounded.
async fn until<T: PartialEq + std::fmt::Debug, F: Future<Output = T>>(
    wanted: T,
    mut call: impl FnMut() -> F,
) {
    for _ in 0..10_000 {
        if call().await == wanted {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the background refresh never stored {wanted:?}");
}

static EARLY: LazyLock<Clocked> = LazyLock::new(clocked);
static EARLY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::early(ttl = "10m", early_ttl = "7m", key = "bg:report:{day}", background = true, cache = EARLY.cache)]
async fn report(day: u32, gate: Option<Gate>) -> String {
    let n = EARLY_RUNS.fetch_add(1, Ordering::SeqCst);
    if let Some(gate) = gate {
        gate.pass().await;
    }
    format!("report {day} #{n}")
}

#[tokio::test]
async fn early_background_returns_the_stored_value_while_the_refresh_runs() {
    assert_eq!(report(1, None).await, "report 1 #0");
    EARLY.clock.advance(Duration::from_secs(7 * 60 + 1));
    let (gate, mut started, release) = Gate::new();
    assert_eq!(
        at_once(report(1, Some(gate))).await,
        "report 1 #0",
        "past early_ttl: the stored value, at once"
    );
    started.recv().await.unwrap();
    assert_eq!(
        EARLY_RUNS.load(Ordering::SeqCst),
        2,
        "the refresh runs after the caller returned"
    );
    assert_eq!(
        report(1, None).await,
        "report 1 #0",
        "while the refresh runs, callers get the stored value and start no other refresh"
    );
    release.notify_one();
    until("report 1 #1".to_owned(), || report(1, None)).await;
    assert_eq!(EARLY_RUNS.load(Ordering::SeqCst), 2, "one refresh");
}

static HITS: LazyLock<Clocked> = LazyLock::new(clocked);
static HIT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::hit(ttl = "1h", cache_hits = 1000, update_after = 2, key = "bg:popular", background = true, cache = HITS.cache)]
async fn popular(gate: Option<Gate>) -> usize {
    let n = HIT_RUNS.fetch_add(1, Ordering::SeqCst);
    if let Some(gate) = gate {
        gate.pass().await;
    }
    n
}

#[tokio::test]
async fn hit_background_returns_the_stored_value_while_the_recompute_runs() {
    assert_eq!(popular(None).await, 0, "computed");
    assert_eq!(popular(None).await, 0, "hit 1");
    let (gate, mut started, release) = Gate::new();
    assert_eq!(
        at_once(popular(Some(gate))).await,
        0,
        "hit 2 (update_after): the stored value, at once"
    );
    started.recv().await.unwrap();
    assert_eq!(
        HIT_RUNS.load(Ordering::SeqCst),
        2,
        "the recompute runs after the caller returned"
    );
    release.notify_one();
    until(1, || popular(None)).await;
    assert_eq!(HIT_RUNS.load(Ordering::SeqCst), 2, "one recompute");
}
