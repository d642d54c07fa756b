//! [`locked`] and [`locked_always`]: one caller at a time per key, across every process
//! sharing the backend (`#[cashews::locked]`); [`cache_locked`]: the `cache` strategy under a
//! distributed lock (`#[cashews::cache(lock = true)]`).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::Outcome;
use super::cache::{CacheOptions, compute};
use crate::coalesce::{self, Flights, Marker, Then};
use crate::error::{Error, shorten};
use crate::lock::{LockGuard, LockWaiter};
use crate::observe::{Call, StrategyResult};
use crate::{Cache, IntoTtl, Ttl};

/// Options of the [`locked`] strategy; the attribute macro builds them as a constant.
///
/// Python's `check_interval` has no counterpart: waiters are woken when the lock is released
/// (see [`Cache::lock`] for how, and for locks held by other processes).
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::LockedOptions;
/// const WAIT_5S: LockedOptions = LockedOptions::new().wait(Duration::from_secs(5));
/// const NO_WAIT: LockedOptions = LockedOptions::new().no_wait();
/// assert_eq!(WAIT_5S.wait, Some(Duration::from_secs(5)));
/// assert_eq!(NO_WAIT.wait, Some(Duration::ZERO));
/// assert_eq!(LockedOptions::new().wait, None); // as long as it takes
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct LockedOptions {
    /// How long a call waits for the lock before it is refused with [`Error::Locked`]:
    /// `None` (the default, Python cashews' `wait=true`) waits as long as it takes; zero (Python cashews'
    /// `wait=false`) refuses at once when the lock is held.
    pub wait: Option<Duration>,
}

impl LockedOptions {
    /// The prefix `#[cashews::locked]` puts before its keys unless told otherwise
    /// (`locked:<key>`).
    ///
    /// Defined by [`Strategy::Locked`](crate::key::Strategy::Locked), with every default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::LockedOptions::DEFAULT_PREFIX, "locked");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::Locked.prefix();

    /// The prefix of the lock [`cache_locked`] takes: `lock:<cache key>`.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::LockedOptions::CACHE_LOCK_PREFIX, "lock");
    /// ```
    pub const CACHE_LOCK_PREFIX: &'static str = "lock";

    /// The lock TTL used when the call's TTL is "no expiry": a lock always expires, so that a
    /// holder that crashed cannot keep it forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(cashews::strategy::LockedOptions::DEFAULT_TTL, Duration::from_secs(60));
    /// ```
    pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

    /// The defaults: wait for the lock as long as it takes.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::LockedOptions::new().wait, None);
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self { wait: None }
    }

    /// Wait at most `wait` for the lock, then refuse the call (zero: do not wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::LockedOptions::new().wait(Duration::from_millis(500));
    /// assert_eq!(options.wait, Some(Duration::from_millis(500)));
    /// ```
    #[must_use]
    pub const fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Refuse the call at once when the lock is held (Python cashews' `wait=false`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::LockedOptions::new().no_wait();
    /// assert_eq!(options.wait, Some(Duration::ZERO));
    /// ```
    #[must_use]
    pub const fn no_wait(self) -> Self {
        self.wait(Duration::ZERO)
    }
}

/// The lock TTL of a call: its TTL, or [`LockedOptions::DEFAULT_TTL`] for "no expiry".
fn lock_ttl(ttl: Ttl) -> Duration {
    ttl.duration()
        .filter(|ttl| !ttl.is_zero())
        .unwrap_or(LockedOptions::DEFAULT_TTL)
}

/// Runs `origin` while holding the distributed lock `key` for at most `ttl`, waiting for it
/// as `options` says; when the wait runs out, the call is refused with
/// `E::from(Error::Locked { .. })` and `origin` does not run.
///
/// This is what `#[cashews::locked(wait = ...)]` expands to (the macro adds the `locked:`
/// prefix to the key); [`locked_always`] is the variant for any result type, waiting as long
/// as it takes. Nothing is cached: calls are serialised, not deduplicated (every caller runs
/// `origin`, one at a time). The lock is `key` = a random token, taken if absent for `ttl`
/// ("no expiry" means [`LockedOptions::DEFAULT_TTL`]) and deleted, only if it still holds
/// that token, when `origin` ends.
///
/// # Errors
///
/// `E::from(Error::Locked { .. })` when the lock is still held after `options.wait`;
/// `origin`'s result unchanged otherwise. Errors of the lock itself come back through
/// `E::from` without running `origin`: no backend configured, a bad key, a backend failure
/// outside safe mode. In safe mode (backend down) and when the cache is disabled, `origin`
/// runs without the lock, as Python cashews does. A failure to release is logged; the lock
/// then lapses with its TTL.
///
/// # Concurrent calls
///
/// At most one call per key runs `origin` at a time, across every process sharing the
/// backend, as long as `origin` ends within `ttl` (after that the lock lapses and the next
/// waiter takes it). Waiters do not poll: see [`Cache::lock`] for how they are woken, in this
/// process and across processes. Who gets the lock next is not first-come, first-served.
///
/// A call made from inside `origin` (the same task) with the same key runs at once: it
/// already holds the lock, so it neither waits for itself nor is refused.
///
/// # Cancellation
///
/// Dropping the returned future while it waits takes nothing; while `origin` runs, it drops
/// `origin` and releases the lock (from a spawned task), which wakes the next waiter.
///
/// # Panics
///
/// A panic in `origin` unwinds through this call; the lock is released on the way, as for a
/// cancellation.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{locked, LockedOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("10s")?;
/// let options = LockedOptions::new().no_wait();
/// let job: cashews::Result<u32> = locked(&cache, "locked:report", ttl, &options, async { Ok(1) }).await;
/// assert_eq!(job?, 1);
///
/// // While someone holds the lock, a call that does not wait is refused.
/// let _held = cache.lock("locked:report", "10s").await?;
/// let refused: cashews::Result<u32> = locked(&cache, "locked:report", ttl, &options, async { Ok(2) }).await;
/// assert!(matches!(refused, Err(cashews::Error::Locked { .. })));
/// # Ok(()) }
/// ```
pub async fn locked<T, E, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &LockedOptions,
    origin: F,
) -> Result<T, E>
where
    E: From<Error>,
    F: Future<Output = Result<T, E>>,
{
    // Boxed once: the origin then takes its own size in this future, not a multiple of it
    // (one allocation, beside two backend round trips).
    let origin = Box::pin(origin);
    let call = Call::start("locked", None);
    let held = cache.extension::<Held>();
    if held.0.is_inside(key) {
        let result = call.within(origin).await;
        call.finish(StrategyResult::Ok);
        return result;
    }
    let ttl = match ttl.into_ttl() {
        Ok(ttl) => lock_ttl(ttl),
        Err(error) => {
            call.finish(StrategyResult::Error);
            return Err(E::from(error));
        }
    };
    // Boxed: the lock's futures would otherwise sit beside the call's state in this one
    // (one allocation, beside the backend round trips).
    let taken = call
        .within(Box::pin(async {
            match options.wait {
                None => cache.lock(key, ttl).await,
                Some(wait) => cache.lock_wait(key, ttl, wait).await,
            }
        }))
        .await;
    let guard = match taken {
        Ok(guard) => guard,
        Err(error) => {
            call.finish(match error {
                Error::Locked { .. } => {
                    crate::observe::refused("locked");
                    StrategyResult::Refused
                }
                _ => StrategyResult::Error,
            });
            return Err(E::from(error));
        }
    };
    let result = call.within(held.0.inside(key, origin)).await;
    call.within(release(guard)).await;
    call.finish(StrategyResult::Ok);
    result
}

/// Runs `origin` while holding the distributed lock `key` for at most `ttl`, waiting for the
/// lock as long as it takes; `origin` always runs and its result is returned as it is.
///
/// This is what `#[cashews::locked]` without `wait` expands to, for any result type (use
/// [`locked`] to refuse calls that would wait too long; that needs a `Result`). Storage and
/// [`LockedOptions::DEFAULT_TTL`] as in [`locked`].
///
/// # Errors and safe behaviour
///
/// The lock never fails the call: when it cannot be taken (no backend configured, a backend
/// failure, a disabled cache), the error is logged with `tracing::error!` and `origin` runs
/// without it.
///
/// # Concurrent calls
///
/// As [`locked`]: one call per key at a time, across processes, each waiting its turn (for a
/// holder that crashed, until its lock's TTL lapses).
///
/// # Cancellation
///
/// As [`locked`].
///
/// # Panics
///
/// As [`locked`].
///
/// ```
/// use cashews::strategy::locked_always;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("10s")?;
/// let total = locked_always(&cache, "locked:ledger", ttl, async { 40 + 2 }).await;
/// assert_eq!(total, 42);
/// assert!(!cache.is_locked("locked:ledger").await?);
/// # Ok(()) }
/// ```
pub fn locked_always<R, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    origin: F,
) -> impl Future<Output = R>
where
    F: Future<Output = R>,
{
    // Converted before the future, so that it holds no conversion error across its awaits.
    let ttl = match ttl.into_ttl() {
        Ok(ttl) => Some(lock_ttl(ttl)),
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "invalid lock TTL; the function runs without the lock");
            None
        }
    };
    async move {
        // Boxed once, as in `locked`.
        let origin = Box::pin(origin);
        let call = Call::start("locked", None);
        let held = cache.extension::<Held>();
        if held.0.is_inside(key) {
            let result = call.within(origin).await;
            call.finish(StrategyResult::Ok);
            return result;
        }
        let guard = match ttl {
            // Boxed, as in `locked`.
            Some(ttl) => match call.within(Box::pin(cache.lock(key, ttl))).await {
                Ok(guard) => Some(guard),
                Err(error) => {
                    tracing::error!(key = %shorten(key), %error, "taking the lock failed; the function runs without it");
                    None
                }
            },
            None => None,
        };
        let result = call.within(held.0.inside(key, origin)).await;
        if let Some(guard) = guard {
            call.within(release(guard)).await;
        }
        call.finish(StrategyResult::Ok);
        result
    }
}

/// [`cache`](super::cache()) under a distributed lock: a miss takes the lock
/// `lock:<key>` for `ttl`, looks in the cache again, runs `origin`, stores what `shape`
/// allows, and releases the lock; callers waiting for the lock are woken by the release and
/// read the stored value.
///
/// This is what `#[cashews::cache(lock = true)]` expands to: `origin`
/// runs once per miss across every process sharing the backend, not only in this one. A hit
/// takes no lock (Python cashews locks every call, hits included; the answer is the same).
/// Options, shapes and storage as in [`cache`](super::cache()); the lock is
/// `lock:<key>` ([`LockedOptions::CACHE_LOCK_PREFIX`]) = a random token, for `ttl` ("no
/// expiry" means [`LockedOptions::DEFAULT_TTL`]; the attribute rejects it).
///
/// # Errors and safe behaviour
///
/// The cache never breaks the function, as in [`cache`](super::cache()); a lock that cannot
/// be taken (a backend failure, a disabled cache) is logged and `origin` runs without it.
///
/// # Concurrent calls
///
/// Layered outermost first. With `protected` (the default), concurrent calls of one key in
/// this process coalesce first, reads included (on a backend that answers asynchronously,
/// such as Redis; a memory read is made by each caller before): one caller reads the cache
/// and, on a miss, goes for the lock, and the others wait for it and decode the value it
/// found or stored, without a read of their own. A storm of cold callers thus costs the
/// backend the commands of one caller (a read, the lock, a read, the write, the release),
/// however many callers there are. The lock holder runs `origin`; the waiters in other
/// processes sharing the backend wake when it releases the lock and read the value it
/// stored, without running `origin`. If it stored nothing (an `Err`, a condition), the next
/// waiter takes the lock and runs `origin` itself, so every caller gets a real result and
/// nothing needs to be `Clone`. A waiter on a holder in another process wakes after the
/// lock's remaining TTL or a backoff (see [`Cache::lock`]); a holder that crashed makes
/// waiters wait until its lock lapses, that is up to `ttl`.
///
/// A call from inside `origin` (the same task) with the same key computes directly instead
/// of waiting for itself.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is stored and the lock is
/// released (from a spawned task), so a waiter takes over and none hangs.
///
/// # Panics
///
/// A panic in `origin` unwinds through the caller that ran it; the lock is released on the
/// way and a waiter runs `origin` again.
///
/// ```
/// use cashews::strategy::{cache_locked, CacheOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let shape = Plain::<u32>::new();
/// let first = cache_locked(&store, "rates", ttl, &CacheOptions::new(), shape, async { 7 }).await;
/// let hit = cache_locked(&store, "rates", ttl, &CacheOptions::new(), shape, async { 0 }).await;
/// assert_eq!((first, hit), (7, 7));
/// assert!(!store.is_locked("lock:rates").await?); // released
/// # Ok(()) }
/// ```
pub fn cache_locked<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &CacheOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future (the argument, and the local held across the read).
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let call = Call::start("cache_locked", options.template);
        // A route that answers at once (memory) is read first: its hit takes no flight.
        let known = lookup_now(cache, key, &shape, ttl, options);
        if let Some(Some(hit)) = known {
            call.finish(StrategyResult::Hit);
            return hit;
        }
        let lock_key = format!("{}:{key}", LockedOptions::CACHE_LOCK_PREFIX);
        let run = LockedRun {
            cache,
            key,
            // Looked up only in a task that is inside some computation (rarely): the
            // extension map is not read per caller.
            reentrant: coalesce::marked() && cache.extension::<Held>().0.is_inside(&lock_key),
            lock_key,
            ttl,
            options,
            shape: &shape,
        };
        // Coalesced callers read in their flight (its leader reads for all of them); the
        // others read here first.
        if known.is_none()
            && !run.reads_in_flight()
            && let Some(hit) = call.within(lookup(cache, key, &shape, ttl, options)).await
        {
            call.finish(StrategyResult::Hit);
            return hit;
        }
        // The flight: the origin and the work around it are boxed (two allocations), so
        // that this future holds neither.
        let (result, hit) = call.within(Box::pin(run.coalesced(Box::pin(origin)))).await;
        call.finish(if hit {
            StrategyResult::Hit
        } else {
            StrategyResult::Miss
        });
        result
    }
}

/// One call of [`cache_locked`] past its synchronous read.
struct LockedRun<'a, S> {
    cache: &'a Cache,
    key: &'a str,
    lock_key: String,
    /// Made from inside the origin of its own key (which holds the lock).
    reentrant: bool,
    ttl: Ttl,
    options: &'a CacheOptions,
    shape: &'a S,
}

/// What the leader of a [`cache_locked`] flight hands its followers.
#[derive(Clone, Debug)]
enum Handed {
    /// The value is in the cache (`hit`: it was there already; otherwise the leader stored
    /// it), with the bytes it is stored as when the leader could give them: followers decode
    /// those instead of reading the cache, so a storm costs the backend the leader's commands
    /// only.
    Stored { bytes: Option<Bytes>, hit: bool },
    /// Nothing was stored (an `Err`, a condition, a write failure): each follower takes the
    /// lock and computes its own.
    Unstored,
}

impl<S> LockedRun<'_, S> {
    /// Whether this call reads the cache inside its flight rather than before it: coalesced
    /// (`protected`) and not made from inside its own key's origin.
    fn reads_in_flight(&self) -> bool {
        self.options.protected && !self.reentrant
    }

    /// The read and the miss: once per key in this process when `protected` (one caller reads
    /// and, on a miss, computes under the lock; the others get what it found or stored), and
    /// under the lock. Returns the result and whether it was a hit.
    async fn coalesced<R, F>(&self, origin: F) -> (R, bool)
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        let (cache, key, ttl, options, shape) =
            (self.cache, self.key, self.ttl, self.options, self.shape);
        if self.reentrant {
            return (self.compute(origin).await.0, false);
        }
        if !options.protected {
            let (result, _, hit) = self.run(origin).await;
            return (result, hit);
        }
        coalesce::run(
            &cache.extension::<Flights<Handed>>(),
            key,
            (None, None::<()>),
            move || async move {
                lookup(cache, key, shape, ttl, options)
                    .await
                    .map(|hit| (hit, true))
                    .ok_or(None)
            },
            move |_| async move {
                let (result, stored, hit) = self.run(origin).await;
                ((result, hit), stored)
            },
            move |(result, hit): &(R, bool), stored| self.hand(result, *hit, stored),
            move |handed| self.take(handed),
        )
        .await
    }

    /// What the leader hands over (built only when someone follows): whether its result is
    /// stored, and then its bytes.
    fn hand<R>(&self, result: &R, hit: bool, stored: bool) -> Handed
    where
        S: Outcome<R>,
    {
        if !stored {
            return Handed::Unstored;
        }
        let bytes = self
            .shape
            .stored(result)
            .and_then(|value| self.cache.encode_for_followers(self.key, value));
        Handed::Stored { bytes, hit }
    }

    /// What a follower does with what its leader handed over: decode the stored value as its
    /// own read would (recorded for detect as a hit), read it when it cannot, or compute.
    fn take<R>(&self, handed: Handed) -> Then<(R, bool)>
    where
        S: Outcome<R>,
    {
        match handed {
            Handed::Unstored => Then::Compute,
            Handed::Stored {
                bytes: Some(bytes),
                hit,
            } => match self.cache.decode_from_leader(self.key, &bytes) {
                Some(stored) => Then::Take((
                    crate::detect::restore(
                        self.shape,
                        stored,
                        served(self.cache, self.key, self.ttl, self.options),
                    ),
                    hit,
                )),
                None => Then::Look,
            },
            Handed::Stored { bytes: None, .. } => Then::Look,
        }
    }

    /// Takes the lock (or waits for the holder's result), then computes and stores; returns
    /// the result, whether it is in the cache, and whether it was found there (a hit).
    async fn run<R, F>(&self, origin: F) -> (R, bool, bool)
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        let mut waiter = LockWaiter::new(self.cache, &self.lock_key);
        loop {
            match waiter.attempt(lock_ttl(self.ttl)).await {
                Ok(Some(guard)) => {
                    drop(waiter);
                    // The holder we waited for (or raced) may have stored the value.
                    if let Some(hit) =
                        lookup(self.cache, self.key, self.shape, self.ttl, self.options).await
                    {
                        release(guard).await;
                        return (hit, true, true);
                    }
                    let (result, stored) = self
                        .cache
                        .extension::<Held>()
                        .0
                        .inside(&self.lock_key, self.compute(origin))
                        .await;
                    release(guard).await;
                    return (result, stored, false);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(key = %shorten(&self.lock_key), %error, "taking the cache lock failed; the function runs without it");
                    let (result, stored) = self.compute(origin).await;
                    return (result, stored, false);
                }
            }
            waiter.wait(None).await;
            if let Some(hit) =
                lookup(self.cache, self.key, self.shape, self.ttl, self.options).await
            {
                return (hit, true, true);
            }
        }
    }

    /// Runs the origin and stores what may be stored; returns the result and whether it was
    /// stored.
    async fn compute<R, F>(&self, origin: F) -> (R, bool)
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        compute(
            self.cache,
            self.key,
            self.ttl,
            self.options,
            self.shape,
            None,
            origin,
        )
        .await
    }
}

/// What a hit of [`cache_locked`] records in a detect scope: the plain cache strategy's
/// record (`lock = true` is an option of it); built only inside one.
fn served<'a>(
    cache: &'a Cache,
    key: &'a str,
    ttl: Ttl,
    options: &'a CacheOptions,
) -> impl Fn() -> crate::detect::Served + 'a {
    move || {
        crate::detect::Served::new(key, "simple")
            .with_ttl(ttl.duration())
            .with_template(options.template)
            .with_backend(cache.backend_name(key))
    }
}

/// A hit, restored; `None` on a miss or a read failure (logged).
async fn lookup<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    shape: &S,
    ttl: Ttl,
    options: &CacheOptions,
) -> Option<R> {
    super::cache::lookup(cache, key, shape, &served(cache, key, ttl, options)).await
}

/// [`lookup`] when the route answers at once (memory): `Some(decided)`, or `None` when
/// only the async read can tell.
fn lookup_now<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    shape: &S,
    ttl: Ttl,
    options: &CacheOptions,
) -> Option<Option<R>> {
    super::cache::lookup_now(cache, key, shape, &served(cache, key, ttl, options))
}

/// Releases a lock at the end of a call; a failure is logged (the lock lapses with its TTL).
async fn release(guard: LockGuard) {
    let key = shorten(guard.key());
    if let Err(error) = guard.release().await {
        tracing::error!(%key, %error, "releasing the lock failed; it lapses with its TTL");
    }
}

/// The lock keys the current task holds through a locking strategy, on one cache: a nested
/// call with the same key runs at once instead of waiting for itself (cachebox#54). The one
/// re-entry marker of the coalescer, kept per cache among its extensions.
#[derive(Debug, Default)]
struct Held(Marker);
