//! The locks of locked and serializable transactions: taken before the first write to a key,
//! waited for up to the timeout, released at the end.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{TransactionMode, Transactional};
use crate::backend::{BoxStream, DynBackend, LockEvent};
use crate::error::{Error, Result, shorten};
use crate::key::{SERIALIZABLE_LOCK_KEY, tx_lock_key};

/// How long a waiter sleeps between two tries when no release wakes it sooner.
const POLL: Duration = Duration::from_millis(100);

impl Transactional {
    /// Takes the locks the mode asks for before writing `keys` (none in fast mode).
    pub(super) async fn lock_for<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Result<()> {
        match self.shared.options.mode {
            TransactionMode::Fast => Ok(()),
            TransactionMode::Serializable => self.acquire(SERIALIZABLE_LOCK_KEY).await,
            TransactionMode::Locked => {
                // In key order, so two transactions writing the same keys in one command
                // cannot deadlock on each other.
                let mut locks: Vec<String> = keys.into_iter().map(tx_lock_key).collect();
                locks.sort_unstable();
                locks.dedup();
                for lock in locks {
                    self.acquire(&lock).await?;
                }
                Ok(())
            }
        }
    }

    /// Takes `lock` for this transaction, waiting up to the timeout for another holder.
    async fn acquire(&self, lock: &str) -> Result<()> {
        let shared = &*self.shared;
        if shared.held.lock().get(lock) == Some(&true) {
            return Ok(());
        }
        let _one_at_a_time = shared.acquiring.lock().await;
        if shared.held.lock().get(lock) == Some(&true) {
            return Ok(());
        }
        let timeout = shared.options.timeout;
        let started = Instant::now();
        let mut releases: Option<BoxStream<LockEvent>> = None;
        let mut subscribed = false;
        loop {
            // Recorded before asking: if this future is dropped while the answer is on its
            // way, the lock is still released at the end (an unlock with our token is
            // harmless when the lock is not ours).
            shared.held.lock().insert(lock.to_owned(), false);
            if shared.backend.set_lock(lock, &shared.id, timeout).await? {
                shared.held.lock().insert(lock.to_owned(), true);
                return Ok(());
            }
            shared.held.lock().remove(lock);
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Error::TransactionLocked {
                    key: shorten(lock),
                    waited: timeout,
                });
            }
            if !subscribed {
                subscribed = true;
                releases = shared.backend.lock_releases();
            }
            if !wait_release(&mut releases, lock, left.min(POLL)).await {
                releases = None;
            }
        }
    }

    /// Releases every lock the transaction may hold.
    pub(super) async fn release(&self) {
        let held: Vec<String> = self
            .shared
            .held
            .lock()
            .drain()
            .map(|(lock, _)| lock)
            .collect();
        unlock_all(&*self.shared.backend, &held, &self.shared.id).await;
    }
}

/// Waits up to `nap` for `lock` to be released (or, without a feed, sleeps `nap`). Returns
/// `false` when the feed has ended (the caller then polls).
async fn wait_release(
    releases: &mut Option<BoxStream<LockEvent>>,
    lock: &str,
    nap: Duration,
) -> bool {
    let Some(feed) = releases else {
        tokio::time::sleep(nap).await;
        return true;
    };
    let heard = async {
        while let Some(event) = feed.next().await {
            if matches!(&event, LockEvent::Released(key) if key == lock) {
                return true;
            }
        }
        false
    };
    // A nap that runs out means the feed is still there.
    tokio::time::timeout(nap, heard).await.unwrap_or(true)
}

/// Releases `locks` held with token `id`; failures are logged (the locks then expire).
pub(super) async fn unlock_all(backend: &dyn DynBackend, locks: &[String], id: &str) {
    for lock in locks {
        if let Err(error) = backend.unlock(lock, id).await {
            tracing::warn!(
                lock = %shorten(lock),
                %error,
                "a transaction lock was not released; it expires after the transaction's timeout"
            );
        }
    }
}
