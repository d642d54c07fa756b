//! [`early`]: refresh ahead: serve the stored value while one caller recomputes it before it
//! expires (`#[cashews::early]`); [`early_detached`] refreshes in a background task.

use std::future::Future;
use std::time::Duration;

use super::Outcome;
use super::cache::{CacheOptions, StoreCondition, compute};
use super::soft::{Stamp, StampName, now_ms, read_stamped, store_options, third};
use crate::coalesce;
use crate::detect::{Extra, Served};
use crate::error::shorten;
use crate::observe::{Call, StrategyResult};
use crate::{Cache, IntoTtl, Ttl};

/// Options of the [`early`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::EarlyOptions;
/// const OPTIONS: EarlyOptions = EarlyOptions::new().early_ttl(Duration::from_secs(300));
/// assert_eq!(OPTIONS.early_ttl, Some(Duration::from_secs(300)));
/// assert!(OPTIONS.protected);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EarlyOptions {
    /// How long after it is stored a value is due for a refresh (`early_ttl`), and how long
    /// the refresh lock lives; `None` means a third of the call's TTL (`ttl × 0.33`), and
    /// never when the TTL is "no expiry".
    pub early_ttl: Option<Duration>,
    /// Which results are stored.
    pub store_condition: StoreCondition,
    /// Store only results whose computation took longer than this (`time_condition`).
    pub time_condition: Option<Duration>,
    /// Coalesce concurrent cold misses of one key in this process (`protected`, on by
    /// default). Refreshes need no coalescing: the refresh lock admits one.
    pub protected: bool,
    /// The key template the keys are rendered from, for [`detect`](crate::detect()) records
    /// (the attribute macros set it).
    pub template: Option<&'static str>,
}

impl Default for EarlyOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl EarlyOptions {
    /// The defaults: refresh after a third of the TTL, store every storable result,
    /// coalesce cold misses.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            early_ttl: None,
            store_condition: StoreCondition::Always,
            time_condition: None,
            protected: true,
            template: None,
        }
    }

    /// Refresh a value once it is `early_ttl` old.
    #[must_use]
    pub const fn early_ttl(mut self, early_ttl: Duration) -> Self {
        self.early_ttl = Some(early_ttl);
        self
    }

    /// What a hit records in a detect scope, for an entry due at `refresh_at_ms`.
    fn served(&self, cache: &Cache, key: &str, ttl: Ttl, refresh_at_ms: u64) -> Served {
        Served::new(key, "early")
            .with_backend(cache.backend_name(key))
            .with_ttl(ttl.duration())
            .with_template(self.template)
            .with_extra(Extra::early(self.early_ttl_for(ttl), refresh_at_ms))
    }

    fn early_ttl_for(&self, ttl: Ttl) -> Option<Duration> {
        self.early_ttl.or_else(|| ttl.duration().map(third))
    }
}

option_builders!(EarlyOptions = EarlyOptions::new(); condition, time_condition, protected, template);

/// Returns the stored value for `key`; once it is `early_ttl` old, one caller recomputes it
/// while the others keep getting the stored value. A miss runs `origin`, stores what `shape`
/// allows for `ttl` and returns it.
///
/// This is what `#[cashews::early]` expands to (the macro adds the `early:v2:` prefix to the
/// key). The caller that refreshes waits for `origin` and still returns the **stored** (old)
/// value, like every other caller of that moment; the next call gets the new one. A failed
/// refresh is returned to nobody: the old value keeps being served until its TTL, and the
/// next call past `early_ttl` retries. Because `origin` may borrow the function's arguments,
/// the refresh runs in the caller; [`early_detached`] runs it in a background task for
/// `'static` futures, so that no caller waits.
///
/// # Storage
///
/// `key` holds the map `{"refresh_at_ms": <u64>, "value": <stored value>}` for `ttl`, where
/// the instant is `early_ttl` after the write, in milliseconds since the Unix epoch (UTC), so
/// processes sharing a backend agree on it; when the cache reads a manual
/// [`Clock`](crate::Clock) (tests), it is that clock's [`now`](crate::Clock::now) in
/// milliseconds instead. An entry of any other shape is a miss. The refresh lock is
/// `<key>:lock`, taken if absent with a random token for `early_ttl`, and deleted (only if it
/// still holds that token) when the refresh ends.
///
/// # Errors and safe behaviour
///
/// The cache never breaks the function: a backend failure on read is a miss, on write is
/// skipped, and on taking the lock means no refresh this time; each is logged with
/// `tracing::error!`.
///
/// # Concurrent calls
///
/// Past `early_ttl`, concurrent callers (in any process sharing the backend) race for the
/// refresh lock: exactly one runs `origin` and waits for it; the others return the stored
/// value at once. On a cold miss, with `protected` (the default), concurrent callers in this
/// process run `origin` once (the first leads, the others read what it stored; if it stored
/// nothing, each runs its own); without it, each runs `origin`. The cold-miss rules,
/// re-entry included, are the ones every coalescing strategy shares: see
/// [Coalescing](super#coalescing).
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is stored. A dropped refresh
/// releases its lock from a spawned task when a Tokio runtime is running (otherwise the lock
/// expires after `early_ttl`), so the next stale call refreshes.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{early, EarlyOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let clock = cashews::Clock::manual(); // so that the example moves time
/// store.set_clock(clock.clone());
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = EarlyOptions::new().early_ttl(Duration::from_secs(600));
/// let shape = Plain::<u32>::new();
/// assert_eq!(early(&store, "early:v2:n", ttl, &options, shape, async { 1 }).await, 1);
/// clock.advance(Duration::from_secs(601));
/// // Due: this call refreshes, and returns the value it found; the next gets the new one.
/// assert_eq!(early(&store, "early:v2:n", ttl, &options, shape, async { 2 }).await, 1);
/// assert_eq!(early(&store, "early:v2:n", ttl, &options, shape, async { 3 }).await, 2);
/// assert!(!store.exists("early:v2:n:lock").await?);
/// # Ok(()) }
/// ```
pub fn early<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &EarlyOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice. Here it is held once; when it is about to run, it and the work
    // around it are boxed (two allocations), so that this future holds neither (a fresh hit
    // allocates nothing).
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let refresh = Refresh::new(key, ttl, options);
        let call = Call::start("early", options.template);
        match call
            .within(read_stamped::<EarlyStamp, S::Stored>(cache, key))
            .await
        {
            Some(entry) if entry.at_ms >= now_ms(cache) => {
                let at_ms = entry.at_ms;
                call.finish(StrategyResult::Hit);
                crate::detect::restore(&shape, entry.value, || {
                    options.served(cache, key, ttl, at_ms)
                })
            }
            Some(entry) => {
                let at_ms = entry.at_ms;
                let old = crate::detect::restore(&shape, entry.value, || {
                    options.served(cache, key, ttl, at_ms)
                });
                let refreshing = async {
                    if let Some(lock) = RefreshLock::take(cache, key, refresh.early_ttl).await {
                        Box::pin(refresh.run(cache, &shape, Box::pin(origin))).await;
                        lock.release().await;
                    }
                };
                call.within(Box::pin(refreshing)).await;
                call.finish(StrategyResult::Hit);
                old
            }
            None => {
                let computed = call
                    .within(Box::pin(cold(
                        cache,
                        &refresh,
                        options.protected,
                        &shape,
                        Box::pin(origin),
                    )))
                    .await;
                call.finish(StrategyResult::Miss);
                computed
            }
        }
    }
}

/// [`early`] with the refresh in a background Tokio task: every caller past `early_ttl`
/// returns the stored value at once, and the one that took the refresh lock spawns `origin`.
///
/// This is `background = true` of `#[cashews::early]`, for functions whose future is `Send`
/// and `'static` (it borrows nothing: owned arguments, no `&self`). Outside a Tokio runtime
/// the refresh runs in the caller, as in [`early`].
///
/// # Concurrent calls
///
/// As [`early`], except that no caller waits for a refresh.
///
/// # Cancellation
///
/// A refresh, once spawned, runs to its end even if the caller is dropped; it releases the
/// lock when it ends. A cold miss runs in the caller, as in [`early`].
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{early_detached, EarlyOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let clock = cashews::Clock::manual();
/// store.set_clock(clock.clone());
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = EarlyOptions::new().early_ttl(Duration::from_secs(600));
/// let shape = Plain::<u32>::new();
/// assert_eq!(early_detached(&store, "early:v2:n", ttl, &options, shape, async { 1 }).await, 1);
/// clock.advance(Duration::from_secs(601));
/// // Due: the refresh is spawned; this call returns the stored value at once.
/// assert_eq!(early_detached(&store, "early:v2:n", ttl, &options, shape, async { 2 }).await, 1);
/// # Ok(()) }
/// ```
pub fn early_detached<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &EarlyOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    R: Send + 'static,
    S: Outcome<R> + Send + Sync + 'static,
    F: Future<Output = R> + Send + 'static,
{
    // Held once, boxed when it is about to run, as in [`early`].
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let refresh = Refresh::new(key, ttl, options);
        let call = Call::start("early", options.template);
        let Some(entry) = call
            .within(read_stamped::<EarlyStamp, S::Stored>(cache, key))
            .await
        else {
            let computed = call
                .within(Box::pin(cold(
                    cache,
                    &refresh,
                    options.protected,
                    &shape,
                    Box::pin(origin),
                )))
                .await;
            call.finish(StrategyResult::Miss);
            return computed;
        };
        let at_ms = entry.at_ms;
        let old = crate::detect::restore(&shape, entry.value, || {
            options.served(cache, key, ttl, at_ms)
        });
        if at_ms >= now_ms(cache) {
            call.finish(StrategyResult::Hit);
            return old;
        }
        if let Some(lock) = call
            .within(RefreshLock::take(cache, key, refresh.early_ttl))
            .await
        {
            let origin = Box::pin(origin);
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let cache = cache.clone();
                    let key = key.to_owned();
                    let (early_ttl, store) = (refresh.early_ttl, refresh.store);
                    // The refresh runs with the caller's context (key context, disabled
                    // commands, detect scopes), as a task the caller spawned would, and in
                    // this call's span.
                    runtime.spawn(call.detached(crate::context::Context::current().scope(
                        async move {
                            let refresh = Refresh {
                                key: &key,
                                ttl,
                                early_ttl,
                                store,
                            };
                            refresh.run(&cache, &shape, origin).await;
                            lock.release().await;
                        },
                    )));
                }
                Err(_) => {
                    call.within(Box::pin(async {
                        refresh.run(cache, &shape, origin).await;
                        lock.release().await;
                    }))
                    .await;
                }
            }
        }
        call.finish(StrategyResult::Hit);
        old
    }
}

/// The early entry: `{"refresh_at_ms", "value"}`.
enum EarlyStamp {}

impl StampName for EarlyStamp {
    const AT: &'static str = "refresh_at_ms";
    const NAME: &'static str = "EarlyEntry";
}

/// How an early entry is (re)computed.
struct Refresh<'a> {
    key: &'a str,
    ttl: Ttl,
    early_ttl: Option<Duration>,
    store: CacheOptions,
}

impl<'a> Refresh<'a> {
    /// The refresh of `key` under `options`.
    fn new(key: &'a str, ttl: Ttl, options: &EarlyOptions) -> Self {
        Self {
            key,
            ttl,
            early_ttl: options.early_ttl_for(ttl),
            store: store_options(options.store_condition, options.time_condition),
        }
    }

    /// Runs `origin` and stores what may be stored, due `early_ttl` after the write; returns
    /// the result and whether it was stored.
    async fn compute<R, S, F>(&self, cache: &Cache, shape: &S, origin: F) -> (R, bool)
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        let entry = Some(Stamp::after::<EarlyStamp>(self.early_ttl));
        compute(cache, self.key, self.ttl, &self.store, shape, entry, origin).await
    }

    /// A refresh: computes and stores; the result goes to nobody (a failure is logged).
    async fn run<R, S, F>(&self, cache: &Cache, shape: &S, origin: F)
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        let (result, _) = self.compute(cache, shape, origin).await;
        if shape.stored(&result).is_none() {
            tracing::warn!(key = %shorten(self.key), "early refresh failed; the stored value is served until its TTL");
        }
    }
}

/// A cold miss: computes in the caller, coalesced in this process when `protected`.
async fn cold<R, S, F>(
    cache: &Cache,
    refresh: &Refresh<'_>,
    protected: bool,
    shape: &S,
    origin: F,
) -> R
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    if !protected {
        return refresh.compute(cache, shape, origin).await.0;
    }
    let key = refresh.key;
    coalesce::run(
        cache.stored_flights(),
        key,
        (None, None::<()>),
        move || async move { any_hit(cache, key, shape).await.ok_or(None) },
        move |_| refresh.compute(cache, shape, origin),
        coalesce::stored::share,
        coalesce::stored::then,
    )
    .await
}

/// Any entry, restored: one found after waiting was just written, so it needs no refresh
/// check.
async fn any_hit<R, S: Outcome<R>>(cache: &Cache, key: &str, shape: &S) -> Option<R> {
    read_stamped::<EarlyStamp, S::Stored>(cache, key)
        .await
        .map(|entry| shape.restore(entry.value))
}

/// The refresh lock `<key>:lock`, held with a random token; released by
/// [`RefreshLock::release`], or from a spawned task when dropped unreleased (cancellation).
struct RefreshLock {
    cache: Cache,
    key: String,
    token: String,
    held: bool,
}

impl RefreshLock {
    /// Takes the lock for `early_ttl` if it is free and the entry is still due; `None` when
    /// someone holds it, the entry was refreshed meanwhile, or the backend failed (logged).
    ///
    /// The second look matters: a caller that read the entry while it was due can reach the
    /// lock only after another caller refreshed the entry and released the lock, and would
    /// refresh a second time. So, holding the lock, it reads the entry's stamp again (the value
    /// itself is skipped, not decoded) and lets go when the stamp is no longer due.
    async fn take(cache: &Cache, key: &str, early_ttl: Option<Duration>) -> Option<Self> {
        let lock_key = format!("{key}:lock");
        let token = hex::encode(rand::random::<[u8; 16]>());
        let ttl = early_ttl.map_or(Ttl::NONE, Ttl::new);
        let lock = match cache.set_lock(&lock_key, &token, ttl).await {
            Ok(true) => Self {
                cache: cache.clone(),
                key: lock_key,
                token,
                held: true,
            },
            Ok(false) => return None,
            Err(error) => {
                tracing::error!(key = %shorten(&lock_key), %error, "early refresh lock failed; serving the stored value");
                return None;
            }
        };
        match read_stamped::<EarlyStamp, serde::de::IgnoredAny>(cache, key).await {
            Some(entry) if entry.at_ms >= now_ms(cache) => {
                lock.release().await;
                None
            }
            _ => Some(lock),
        }
    }

    async fn release(mut self) {
        self.held = false;
        if let Err(error) = self.cache.unlock(&self.key, &self.token).await {
            tracing::error!(key = %shorten(&self.key), %error, "early refresh lock release failed; it expires by itself");
        }
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cache = self.cache.clone();
            let key = std::mem::take(&mut self.key);
            let token = std::mem::take(&mut self.token);
            runtime.spawn(async move {
                // Best effort: a lock left behind expires after `early_ttl`.
                let _released = cache.unlock(&key, &token).await;
            });
        }
    }
}

impl std::fmt::Debug for RefreshLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::soft::Stamped;
    use super::*;

    #[test]
    fn stamps_are_only_read_back_as_their_own_shape() {
        let early = serde_json::to_string(&Stamped::<EarlyStamp, _>::new(5, "v")).unwrap();
        assert_eq!(early, r#"{"refresh_at_ms":5,"value":"v"}"#);
        let back: Stamped<EarlyStamp, String> = serde_json::from_str(&early).unwrap();
        assert_eq!((back.at_ms, back.value.as_str()), (5, "v"));
        for wrong in [
            r#"[5,"v"]"#,
            r#""v""#,
            r#"{"soft_expire_at_ms":5,"value":"v"}"#,
            r#"{"refresh_at_ms":5,"value":"v","extra":1}"#,
            r#"{"refresh_at_ms":5}"#,
        ] {
            assert!(
                serde_json::from_str::<Stamped<EarlyStamp, String>>(wrong).is_err(),
                "{wrong}"
            );
        }
    }
}
