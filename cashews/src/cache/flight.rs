//! In-process single flight for [`Cache::get_or_set`](crate::Cache::get_or_set): concurrent
//! misses on one key run the origin once.
//!
//! The origin runs in its own Tokio task, detached from the caller that started it, so a caller
//! that is cancelled or times out neither loses the load nor leaves the others hanging
//! (moka#240); each waiter awaits a shared handle with its own deadline. A panicking origin
//! gives every waiter [`Error::OriginFailed`] and the next call starts afresh.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Shared;
use parking_lot::Mutex;

use crate::error::Error;

/// What waiters receive: the encoded value, or why there is none. Cloneable, unlike [`Error`].
#[derive(Clone, Debug)]
pub(crate) enum Landed {
    Value(Bytes),
    Encode(String),
    Panicked,
    Cancelled,
}

impl Landed {
    pub(crate) fn into_result(self, key: &str) -> Result<Bytes, Error> {
        match self {
            Self::Value(b) => Ok(b),
            Self::Encode(reason) => Err(Error::Encode {
                key: key.to_owned(),
                source: reason.into(),
            }),
            Self::Panicked => Err(Error::OriginFailed {
                key: key.to_owned(),
                reason: "it panicked".to_owned(),
            }),
            Self::Cancelled => Err(Error::OriginFailed {
                key: key.to_owned(),
                reason: "its task was cancelled (runtime shutting down?)".to_owned(),
            }),
        }
    }
}

tokio::task_local! {
    /// The `(cache id, key)` loads that the current task is computing, outermost first.
    static LOADING: Vec<(usize, String)>;
}

/// Whether the current task is itself computing `key` for this cache: a re-entrant call, which
/// must not wait for its own flight (cachebox#54).
pub(crate) fn is_reentrant(cache_id: usize, key: &str) -> bool {
    LOADING
        .try_with(|loading| loading.iter().any(|(id, k)| *id == cache_id && k == key))
        .unwrap_or(false)
}

/// Runs `load` marked as computing `key`, so nested calls for the same key see the re-entry.
pub(crate) async fn loading<F: Future>(cache_id: usize, key: String, load: F) -> F::Output {
    let mut keys = LOADING.try_with(Clone::clone).unwrap_or_default();
    keys.push((cache_id, key));
    LOADING.scope(keys, load).await
}

pub(crate) type Flight = Shared<Pin<Box<dyn Future<Output = Landed> + Send>>>;

#[derive(Default)]
pub(crate) struct Flights {
    next_id: AtomicU64,
    map: Mutex<HashMap<String, (u64, Flight)>>,
}

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights")
            .field("in_flight", &self.map.lock().len())
            .finish()
    }
}

impl Flights {
    /// Joins the flight for `key`, or starts one with `start(id)` (which must spawn the load and
    /// call [`Flights::land`] with the same id when it is done, also on panic).
    pub(crate) fn join_or_start(
        &self,
        key: &str,
        start: impl FnOnce(u64) -> Pin<Box<dyn Future<Output = Landed> + Send>>,
    ) -> Flight {
        let mut map = self.map.lock();
        if let Some((_, flight)) = map.get(key) {
            return flight.clone();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let flight = start(id).shared();
        map.insert(key.to_owned(), (id, flight.clone()));
        flight
    }

    /// Forgets the flight `id` of `key`, if it is still the registered one.
    pub(crate) fn land(&self, key: &str, id: u64) {
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|(current, _)| *current == id) {
            map.remove(key);
        }
    }
}
