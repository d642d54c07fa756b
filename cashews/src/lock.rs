//! [`LockGuard`]: a distributed lock held on a cache backend, released on drop or explicitly;
//! and how this process waits for locks without polling.
//!
//! Waiting is driven by wake-ups. Every lock key that someone in this process holds or waits
//! for has a *slot* here (per [`Cache`], by key): a release through [`Cache::unlock`] (which
//! [`LockGuard`] uses) signals it, and a holder in this process writes down when its TTL
//! lapses, so a waiter sleeps until the release or that instant, whichever comes first.
//!
//! A lock held by another process (or another `Cache` handle on the same backend) is heard
//! about through the backend's release feed ([`Backend::lock_releases`]; Redis: `unlock`
//! publishes the key, and one pub/sub connection per backend listens). The feed is opened
//! lazily, by the first waiter that waits for a holder elsewhere, in a task that feeds the
//! same slots and ends when the `Cache` is dropped. While the feed is live, such a waiter
//! sleeps until the release, the lock's remaining TTL (`get_expire`) or [`HEARD_PAUSE`],
//! whichever comes first; the pause is the safety net for releases nobody announces (a key
//! deleted by hand, a holder that does not publish, such as Python cashews). Without a feed
//! (memory, Redis Cluster, a subscription not yet confirmed or broken) the waiter sleeps
//! until the remaining TTL, at most a bounded backoff ([`FIRST_BACKOFF`] doubling up to
//! [`MAX_BACKOFF`]), as before; a feed that breaks wakes its waiters so they fall back to that
//! backoff at once, and is opened again [`RESUBSCRIBE_AFTER`] later.
//!
//! [`Backend::lock_releases`]: crate::backend::Backend::lock_releases

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::backend::{BoxStream, Expiry, LockEvent};
use crate::cache::Cache;
use crate::error::Result;

/// The first pause of a waiter on a lock this process cannot be told about.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(2);
/// The longest pause of a waiter on a lock this process cannot be told about.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// The shortest pause: a lock that vanished between two commands is retried almost at once,
/// without spinning if a backend keeps answering so.
const MIN_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause of a waiter on a lock held elsewhere while the backend's release feed is
/// live: releases wake it, so this only bounds the wait for a release nobody announced.
pub(crate) const HEARD_PAUSE: Duration = Duration::from_secs(2);
/// How long after a release feed broke (or could not be opened) it is opened again.
pub(crate) const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// A held lock: a random token stored at the lock key with a TTL.
///
/// Released by [`LockGuard::release`], or on drop (in a background task on the current Tokio
/// runtime). Release is compare-and-delete: it never frees a lock that expired and was taken
/// by someone else. When the backend is down (safe mode) or disabled, the guard is *degraded*:
/// the caller runs without a lock, as Python cashews does.
///
/// Releasing wakes the callers of this process waiting for the lock ([`Cache::lock`],
/// [`Cache::lock_wait`], [`Cache::is_locked_wait`] and the locking strategies) at once; they
/// do not poll.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let guard = cache.lock("job:42", "10s").await?;
/// assert!(cache.is_locked("job:42").await?);
/// guard.release().await?;
/// assert!(!cache.is_locked("job:42").await?);
/// # Ok(()) }
/// ```
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    cache: Cache,
    key: String,
    token: String,
    degraded: bool,
    released: bool,
    /// This holder, written in the key's slot (none when degraded).
    interest: Option<Interest>,
}

impl LockGuard {
    /// A guard for a lock just taken (`interest` set: the holder is written down in the slot
    /// until release, with the instant its TTL lapses) or a degraded one (`interest` unset).
    pub(crate) fn new(
        cache: Cache,
        key: String,
        token: String,
        held: Option<(Interest, Duration)>,
    ) -> Self {
        let degraded = held.is_none();
        let interest = held.map(|(interest, ttl)| {
            interest.hold(&token, Instant::now() + ttl);
            interest
        });
        Self {
            cache,
            key,
            token,
            degraded,
            released: false,
            interest,
        }
    }

    /// The lock key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert_eq!(guard.key(), "job");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The random token stored at the key while the lock is held.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert_eq!(guard.token().len(), 32);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the lock could not be taken because the backend is down or disabled, so the
    /// holder runs without mutual exclusion.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// assert!(!cache.lock("job", 5).await?.is_degraded());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// Extends the lock's TTL, if it is still ours. Returns whether it was.
    ///
    /// # Errors
    ///
    /// Backend failures (outside safe mode).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert!(guard.extend("1m").await?);
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self, ttl: impl crate::IntoTtl) -> Result<bool> {
        if self.degraded {
            return Ok(false);
        }
        let ttl = ttl
            .into_ttl()?
            .duration()
            .unwrap_or(Duration::from_secs(60));
        let held: Option<bytes::Bytes> = self.cache.get_raw(&self.key).await?;
        if held.as_deref() != Some(self.token.as_bytes()) {
            return Ok(false);
        }
        let extended = self.cache.expire(&self.key, ttl).await?;
        if extended && let Some(interest) = &self.interest {
            // Waiters in this process now sleep until the new expiry.
            interest.hold(&self.token, Instant::now() + ttl);
        }
        Ok(extended)
    }

    /// Releases the lock now; returns whether it was still held by this guard.
    ///
    /// # Errors
    ///
    /// Backend failures (outside safe mode).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// # let cache = cashews::Cache::new(); cache.setup("mem://")?;
    /// let guard = cache.lock("job", 5).await?;
    /// assert!(guard.release().await?);
    /// # Ok(()) }
    /// ```
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        if self.degraded {
            return Ok(false);
        }
        // Forget the holder first: a waiter woken by the release must not wait for its TTL.
        if let Some(interest) = &self.interest {
            interest.forget(&self.token);
        }
        // `unlock` wakes this process's waiters, whatever it answers.
        self.cache.unlock(&self.key, &self.token).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released || self.degraded {
            return;
        }
        if let Some(interest) = &self.interest {
            interest.forget(&self.token);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, "lock guard dropped outside a Tokio runtime: the lock is freed by its TTL");
            // Waiters in this process stop counting on a release and wait for the TTL.
            if let Some(interest) = &self.interest {
                interest.signal();
            }
            return;
        };
        let cache = self.cache.clone();
        let key = std::mem::take(&mut self.key);
        let token = std::mem::take(&mut self.token);
        // The slot stays alive until the release is done, so it is not recreated meanwhile.
        let interest = self.interest.take();
        runtime.spawn(async move {
            if let Err(error) = cache.unlock(&key, &token).await {
                tracing::error!(%key, %error, "releasing a dropped lock failed: it is freed by its TTL");
            }
            drop(interest);
        });
    }
}

// ----- wake-ups ----------------------------------------------------------------------------

/// One cache's lock slots in this process, by lock key (kept among the `Cache`'s extensions),
/// and the release feeds of its backends. A slot exists while someone holds a guard on the key
/// or waits for it, so the map stays as small as the number of contended keys. Plain mutexes:
/// each is held for a map operation, never across an await.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots(Arc<Registry>);

#[derive(Debug, Default)]
struct Registry {
    keys: Mutex<HashMap<String, Arc<Slot>>>,
    /// Release feeds, by backend identity (the address of the shared backend).
    feeds: Mutex<HashMap<usize, Feed>>,
}

impl Slots {
    /// Wakes the waiters of `key`, if any (after a release).
    pub(crate) fn signal_released(&self, key: &str) {
        if let Some(slot) = self.0.keys.lock().get(key) {
            slot.released.send_replace(());
        }
    }

    /// Wakes every waiter (a release feed broke: they go back to backing off).
    fn signal_all(&self) {
        for slot in self.0.keys.lock().values() {
            slot.released.send_replace(());
        }
    }

    /// Stops the release feed of the backend `id` (a retired backend): its subscription
    /// closes as the listener task ends.
    pub(crate) fn drop_feed(&self, id: usize) {
        self.0.feeds.lock().remove(&id);
    }

    /// Whether releases on the backend `id` are heard right now (its feed is live). The first
    /// call opens the feed with `open` and starts its listener; a feed that ended is opened
    /// again [`RESUBSCRIBE_AFTER`] later. Needs a Tokio runtime (false without one).
    pub(crate) fn hears_releases(
        &self,
        id: usize,
        open: impl FnOnce() -> Option<BoxStream<LockEvent>>,
    ) -> bool {
        let mut feeds = self.0.feeds.lock();
        if let Some(feed) = feeds.get(&id) {
            match feed.state.status.load(Ordering::Acquire) {
                LIVE => return true,
                ENDED if feed.state.ended_long_ago() => {}
                _ => return false,
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let state = Arc::new(FeedState::default());
        let Some(events) = open() else {
            state.status.store(NONE, Ordering::Release);
            feeds.insert(id, Feed { state, _stop: None });
            return false;
        };
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(listen(
            Arc::downgrade(&self.0),
            events,
            stopped,
            Arc::clone(&state),
        ));
        feeds.insert(
            id,
            Feed {
                state,
                _stop: Some(stop),
            },
        );
        false
    }
}

/// A feed is being opened.
const STARTING: u8 = 0;
/// A feed hears every release.
const LIVE: u8 = 1;
/// A feed broke or could not be opened.
const ENDED: u8 = 2;
/// The backend has no feed.
const NONE: u8 = 3;

/// One backend's release feed, as the cache keeps it.
#[derive(Debug)]
struct Feed {
    state: Arc<FeedState>,
    /// Dropped with the cache (or a replaced feed): the listener task ends.
    _stop: Option<oneshot::Sender<()>>,
}

/// What a feed's listener tells the waiters.
#[derive(Debug)]
struct FeedState {
    status: AtomicU8,
    ended_at: Mutex<Option<Instant>>,
}

impl Default for FeedState {
    fn default() -> Self {
        Self {
            status: AtomicU8::new(STARTING),
            ended_at: Mutex::new(None),
        }
    }
}

impl FeedState {
    fn ended_long_ago(&self) -> bool {
        self.ended_at
            .lock()
            .is_none_or(|at| at.elapsed() >= RESUBSCRIBE_AFTER)
    }
}

/// The listener task of a release feed: wakes the waiters of each released key, until the
/// feed ends or the cache is dropped.
async fn listen(
    registry: Weak<Registry>,
    mut events: BoxStream<LockEvent>,
    mut stopped: oneshot::Receiver<()>,
    state: Arc<FeedState>,
) {
    // Marks the feed ended however the task stops, including when its runtime shuts down
    // (a cache used from several runtimes then opens a new feed on the next one).
    let _ended = Ended {
        registry: registry.clone(),
        state: Arc::clone(&state),
    };
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            event = events.next() => match event {
                Some(LockEvent::Subscribed) => state.status.store(LIVE, Ordering::Release),
                Some(LockEvent::Released(key)) => match registry.upgrade() {
                    Some(registry) => Slots(registry).signal_released(&key),
                    None => return,
                },
                None => return,
            },
        }
    }
}

/// Marks a feed ended when its listener stops, and wakes every waiter so that those
/// sleeping on the feed's promise go back to backing off at once.
struct Ended {
    registry: Weak<Registry>,
    state: Arc<FeedState>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        *self.state.ended_at.lock() = Some(Instant::now());
        self.state.status.store(ENDED, Ordering::Release);
        tracing::debug!("lock release feed ended; lock waiters back off until it is opened again");
        if let Some(registry) = self.registry.upgrade() {
            Slots(registry).signal_all();
        }
    }
}

/// One lock key of one cache, as this process sees it.
#[derive(Debug)]
struct Slot {
    /// Bumped on every release: waiters subscribed before their attempt see it.
    released: watch::Sender<()>,
    /// The guards of this process holding the key (token, instant their TTL lapses). Usually
    /// one; two when a lock lapsed and was taken again before its old guard was dropped.
    holders: Mutex<Vec<(String, Instant)>>,
}

/// A share in a slot: creating it makes the slot exist, dropping the last one removes it.
#[derive(Debug)]
pub(crate) struct Interest {
    slots: Slots,
    key: String,
    /// Always `Some` until dropped (taken out so the last share is seen under the map lock).
    slot: Option<Arc<Slot>>,
}

impl Interest {
    /// A share in the slot of `key` among `slots`, creating it if needed.
    pub(crate) fn new(slots: &Slots, key: &str) -> Self {
        let mut keys = slots.0.keys.lock();
        let slot = match keys.get(key) {
            Some(slot) => Arc::clone(slot),
            None => {
                let slot = Arc::new(Slot {
                    released: watch::Sender::new(()),
                    holders: Mutex::new(Vec::new()),
                });
                keys.insert(key.to_owned(), Arc::clone(&slot));
                slot
            }
        };
        drop(keys);
        Self {
            slots: slots.clone(),
            key: key.to_owned(),
            slot: Some(slot),
        }
    }

    /// Another share in the same slot.
    pub(crate) fn share(&self) -> Self {
        // No map lock needed: this share keeps the count above 2 while it is copied, and
        // counts only fall under the map lock (see `drop`).
        Self {
            slots: self.slots.clone(),
            key: self.key.clone(),
            slot: self.slot.clone(),
        }
    }

    fn slot(&self) -> Option<&Slot> {
        self.slot.as_deref()
    }

    /// A receiver of release signals; [`watch::Receiver::borrow_and_update`] marks the
    /// signals so far as seen.
    pub(crate) fn subscribe(&self) -> Option<watch::Receiver<()>> {
        self.slot().map(|slot| slot.released.subscribe())
    }

    /// Wakes every waiter of the slot.
    pub(crate) fn signal(&self) {
        if let Some(slot) = self.slot() {
            slot.released.send_replace(());
        }
    }

    /// Writes down (or moves) the expiry of the holder `token`.
    fn hold(&self, token: &str, expires: Instant) {
        if let Some(slot) = self.slot() {
            let mut holders = slot.holders.lock();
            match holders.iter_mut().find(|(t, _)| t == token) {
                Some(holder) => holder.1 = expires,
                None => holders.push((token.to_owned(), expires)),
            }
        }
    }

    /// Forgets the holder `token`.
    fn forget(&self, token: &str) {
        if let Some(slot) = self.slot() {
            slot.holders.lock().retain(|(t, _)| t != token);
        }
    }

    /// When the lock held in this process lapses, if a holder here has a TTL still running.
    pub(crate) fn held_until(&self, now: Instant) -> Option<Instant> {
        let slot = self.slot()?;
        let holders = slot.holders.lock();
        holders
            .iter()
            .map(|(_, expires)| *expires)
            .filter(|expires| *expires > now)
            .max()
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut keys = self.slots.0.keys.lock();
        let Some(slot) = self.slot.take() else {
            return;
        };
        // The map holds one reference and this share another: nobody else is interested.
        if Arc::strong_count(&slot) == 2 {
            keys.remove(&self.key);
        }
        drop(slot);
        drop(keys);
    }
}

/// A caller waiting for a lock key: attempts and waits alternate, each wait ending on a
/// release in this process, the lapse of a holder's TTL, or a backoff for holders elsewhere.
#[derive(Debug)]
pub(crate) struct LockWaiter {
    cache: Cache,
    key: String,
    interest: Interest,
    receiver: Option<watch::Receiver<()>>,
    backoff: Duration,
}

impl LockWaiter {
    /// A waiter on `key`; it shares the key's slot until dropped.
    pub(crate) fn new(cache: &Cache, key: &str) -> Self {
        let interest = Interest::new(&cache.extension::<Slots>(), key);
        let receiver = interest.subscribe();
        Self {
            cache: cache.clone(),
            key: key.to_owned(),
            interest,
            receiver,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Marks the releases so far as seen: call it just before looking at the lock, so that a
    /// release after the look ends the next [`LockWaiter::wait`] at once.
    pub(crate) fn arm(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            receiver.borrow_and_update();
        }
    }

    /// One attempt at the lock for `ttl` (armed first): the guard, or `None` when someone else
    /// holds it.
    ///
    /// # Errors
    ///
    /// As [`Cache::lock`].
    pub(crate) async fn attempt(&mut self, ttl: Duration) -> Result<Option<LockGuard>> {
        self.arm();
        self.cache
            .lock_attempt(&self.key, ttl, &self.interest)
            .await
    }

    /// Sleeps until the lock is released in this process, a holder's TTL lapses, the backoff
    /// for a holder elsewhere runs out, or `deadline` comes, whichever is first.
    pub(crate) async fn wait(&mut self, deadline: Option<Instant>) {
        let now = Instant::now();
        let until = match self.interest.held_until(now) {
            Some(expires) => {
                self.backoff = FIRST_BACKOFF;
                expires
            }
            None => now + self.elsewhere().await,
        };
        let until = deadline.map_or(until, |deadline| deadline.min(until));
        let sleep = tokio::time::sleep_until(until);
        let mut sleep = std::pin::pin!(sleep);
        if let Some(receiver) = &mut self.receiver {
            tokio::select! {
                changed = receiver.changed() => {
                    if changed.is_ok() {
                        return;
                    }
                    // The slot's sender is gone (it cannot be while we share the slot):
                    // sleep instead of spinning.
                }
                () = sleep.as_mut() => return,
            }
        }
        sleep.await;
    }

    /// How long to sleep for a holder elsewhere: the lock's remaining TTL, at most
    /// [`HEARD_PAUSE`] when the backend's release feed will wake us, else at most the current
    /// backoff (which then doubles).
    async fn elsewhere(&mut self) -> Duration {
        let backoff = if self.cache.hears_releases(&self.key) {
            // Heard before the look below: a release after it is announced to us.
            self.backoff = FIRST_BACKOFF;
            HEARD_PAUSE
        } else {
            let backoff = self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            backoff
        };
        let pause = match self.cache.get_expire(&self.key).await {
            Ok(Expiry::In(left)) => left.min(backoff),
            // Released meanwhile: try again almost at once.
            Ok(Expiry::Missing) => Duration::ZERO,
            Ok(Expiry::Persistent) | Err(_) => backoff,
        };
        pause.max(MIN_PAUSE)
    }
}
