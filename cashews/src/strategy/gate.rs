//! In-process coalescing ("thunder protection") for strategies whose origin borrows the
//! caller's arguments and so cannot run detached: one caller per key leads, the others wait
//! for it and then look in the cache again.
//!
//! Written by hand because the followers must not need the leader's result (`R` may be a
//! `Result` whose error is not `Clone`): they re-read the cache, which the leader filled.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// How a leader's turn ended, as its followers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Still running (or dropped without saying: cancelled or panicked).
    Running,
    /// The result was stored: followers will find it in the cache.
    Stored,
    /// The result was not stored (a failure, a condition, a write error): followers run the
    /// origin themselves, so each sees its own real result.
    NotStored,
}

/// The keys being computed in this process, for one [`Cache`](crate::Cache).
#[derive(Debug, Default)]
pub(crate) struct Gates {
    running: Mutex<HashMap<String, Arc<watch::Sender<Ended>>>>,
}

/// A caller's turn at a key.
pub(crate) enum Turn<'a> {
    /// Compute; followers wait until the guard reports or drops.
    Lead(Leader<'a>),
    /// Wait for the leader.
    Follow(watch::Receiver<Ended>),
}

/// The leader's guard: reports how the turn ended; dropping it unreported (cancellation,
/// panic) wakes the followers so one of them leads next.
pub(crate) struct Leader<'a> {
    gates: &'a Gates,
    key: String,
    sender: Arc<watch::Sender<Ended>>,
}

impl Gates {
    pub(crate) fn enter(&self, key: &str) -> Turn<'_> {
        let mut running = self.running.lock();
        if let Some(sender) = running.get(key) {
            return Turn::Follow(sender.subscribe());
        }
        let sender = Arc::new(watch::Sender::new(Ended::Running));
        running.insert(key.to_owned(), Arc::clone(&sender));
        Turn::Lead(Leader {
            gates: self,
            key: key.to_owned(),
            sender,
        })
    }
}

impl Leader<'_> {
    /// Reports the end of the turn and lets the followers go.
    pub(crate) fn finish(self, ended: Ended) {
        self.sender.send_replace(ended);
        // Drop removes the entry.
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut running = self.gates.running.lock();
        if running
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.sender))
        {
            running.remove(&self.key);
        }
        drop(running);
        // Wakes followers whether or not `finish` ran: a dropped turn reads as `Running`.
        self.sender.send_modify(|_| {});
    }
}

/// Waits for the leader; returns how its turn ended.
pub(crate) async fn follow(mut receiver: watch::Receiver<Ended>) -> Ended {
    match receiver.changed().await {
        Ok(()) => *receiver.borrow_and_update(),
        // The leader's sender is gone without a word: treat as cancelled.
        Err(_) => Ended::Running,
    }
}
