//! [`soft`]: serve a value until a soft TTL, then recompute, falling back to the stale value
//! when the recomputation fails (`#[cashews::soft]`).
//!
//! Also home of what the timed strategies share ([`early`](super::early) reads it too): the
//! stamped entry layout, the reading of "now", and the store options.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::Outcome;
use super::cache::{CacheOptions, StoreCondition, compute};
use crate::coalesce;
use crate::detect::{Extra, Served};
use crate::error::shorten;
use crate::observe::{Call, StrategyResult};
use crate::{Cache, IntoTtl, Ttl};

/// Options of the [`soft`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{SoftOptions, StoreCondition};
/// const OPTIONS: SoftOptions = SoftOptions::new()
///     .soft_ttl(Duration::from_secs(60))
///     .condition(StoreCondition::NotNone);
/// assert_eq!(OPTIONS.soft_ttl, Some(Duration::from_secs(60)));
/// assert!(OPTIONS.protected);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SoftOptions {
    /// How long a stored value is served without recomputing (`soft_ttl`); `None` means a
    /// third of the call's TTL (`ttl × 0.33`), and never when the TTL is "no expiry".
    pub soft_ttl: Option<Duration>,
    /// Which results are stored.
    pub store_condition: StoreCondition,
    /// Store only results whose computation took longer than this (`time_condition`).
    pub time_condition: Option<Duration>,
    /// Coalesce concurrent recomputations of one key in this process (`protected`, on by
    /// default).
    pub protected: bool,
    /// The key template the keys are rendered from, for [`detect`](crate::detect()) records
    /// (the attribute macros set it).
    pub template: Option<&'static str>,
}

impl Default for SoftOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftOptions {
    /// The defaults: soft TTL a third of the TTL, store every storable result, coalesce.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            soft_ttl: None,
            store_condition: StoreCondition::Always,
            time_condition: None,
            protected: true,
            template: None,
        }
    }

    /// Serve a stored value for `soft_ttl` before recomputing it.
    #[must_use]
    pub const fn soft_ttl(mut self, soft_ttl: Duration) -> Self {
        self.soft_ttl = Some(soft_ttl);
        self
    }
}

option_builders!(SoftOptions = SoftOptions::new(); condition, time_condition, protected, template);

/// Returns the stored value for `key` while it is younger than the soft TTL; after that runs
/// `origin`: a storable result replaces the entry (for `ttl`) and is returned, a failure
/// (a result `shape` will not store, i.e. an `Err`) returns the stale value if there is one,
/// else the failure itself.
///
/// This is what `#[cashews::soft]` expands to (the macro adds the `soft:` prefix to the key);
/// [`soft_when`] falls back only for the failures a predicate accepts.
///
/// # Storage
///
/// `key` holds the map `{"soft_expire_at_ms": <u64>, "value": <stored value>}` for `ttl`
/// (the hard TTL). The instant is in milliseconds since the Unix epoch (UTC), so processes
/// sharing a backend agree on it; when the cache reads a manual [`Clock`](crate::Clock)
/// (tests), it is that clock's [`now`](crate::Clock::now) in milliseconds instead. An entry
/// of any other shape at `key` (written by another strategy, tampered, older) is a miss.
///
/// # Errors and safe behaviour
///
/// The cache never breaks the function: a backend failure on read is a miss (no stale value)
/// and on write is skipped, each logged with `tracing::error!`.
///
/// # Concurrent calls
///
/// Soft runs no background work. With `protected` (the default), concurrent callers that find
/// the entry missing or soft-expired in this process run `origin` once: the first leads, the
/// others wait and then read what it stored; when the leader's result is not stored (a
/// failure, a condition), each waiter runs its own `origin`, so every caller gets a real
/// result (or its own stale fallback). Without `protected` each of them runs `origin`. The
/// rules, re-entry included, are the ones every coalescing strategy shares: see
/// [Coalescing](super#coalescing).
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is stored. If it was leading,
/// one of the waiters leads next.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{soft, Fallible, SoftOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = SoftOptions::new().soft_ttl(Duration::ZERO); // always past soft expiry
/// let shape = Fallible::<u32, String>::new();
/// let first = soft(&store, "soft:rate", ttl, &options, shape, async { Ok(42) }).await;
/// // The recomputation fails: the stale value answers instead.
/// let failed = soft(&store, "soft:rate", ttl, &options, shape, async { Err("down".to_owned()) }).await;
/// assert_eq!((first, failed), (Ok(42), Ok(42)));
/// # Ok(()) }
/// ```
pub fn soft<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &SoftOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    soft_when(cache, key, ttl, options, shape, |_: &R| true, origin)
}

/// [`soft`], falling back to the stale value only for the failures `when` accepts (the
/// `exceptions` of `#[cashews::soft]`); any other failure is returned as it is.
///
/// `when` sees the whole result, and is asked only about results `shape` will not store; for
/// `Result<T, E>` write `|r: &Result<T, E>| matches!(r, Err(e) if e.is_transient())`.
///
/// # Concurrent calls
///
/// As [`soft`].
///
/// # Cancellation
///
/// As [`soft`].
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{soft_when, Fallible, SoftOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = SoftOptions::new().soft_ttl(Duration::ZERO);
/// let shape = Fallible::<u32, &str>::new();
/// let retryable = |r: &Result<u32, &str>| matches!(r, Err(e) if *e == "timeout");
/// soft_when(&store, "soft:n", ttl, &options, shape, retryable, async { Ok(1) }).await.unwrap();
/// let stale = soft_when(&store, "soft:n", ttl, &options, shape, retryable, async { Err("timeout") }).await;
/// let fatal = soft_when(&store, "soft:n", ttl, &options, shape, retryable, async { Err("denied") }).await;
/// assert_eq!((stale, fatal), (Ok(1), Err("denied")));
/// # Ok(()) }
/// ```
pub fn soft_when<R, S, W, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &SoftOptions,
    shape: S,
    when: W,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    W: FnOnce(&R) -> bool,
    F: Future<Output = R>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice. Here it is held once, and boxed when it is about to run, so that the
    // futures below hold a pointer to it (a fresh hit allocates nothing).
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let soft_ttl = options.soft_ttl.or_else(|| ttl.duration().map(third));
        // What a fresh hit records in a detect scope; built only inside one.
        let served = |expire_at_ms| {
            Served::new(key, "soft")
                .with_ttl(ttl.duration())
                .with_template(options.template)
                .with_extra(Extra::soft(soft_ttl, expire_at_ms))
                .with_backend(cache.backend_name(key))
        };
        let call = Call::start("soft", options.template);
        let stale = match call.within(look(cache, key, &shape, &served)).await {
            Look::Fresh(hit) => {
                call.finish(StrategyResult::Hit);
                return hit;
            }
            Look::Stale(stale) => stale,
        };
        let renew = Renew {
            cache,
            key,
            ttl,
            soft_ttl,
            store: store_options(options.store_condition, options.time_condition),
            shape: &shape,
        };
        // Past a fresh hit: the origin and the work around it are boxed (two allocations), so
        // that this future holds neither.
        let renewed = call
            .within(Box::pin(renew.coalesced(
                options.protected,
                stale,
                &served,
                when,
                Box::pin(origin),
            )))
            .await;
        call.finish(StrategyResult::Miss);
        renewed
    }
}

/// What a read of a soft entry found.
enum Look<R, T> {
    /// Within the soft TTL: the restored result.
    Fresh(R),
    /// Past the soft TTL (the stale value), or missing (`None`).
    Stale(Option<T>),
}

async fn look<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    shape: &S,
    served: &impl Fn(u64) -> Served,
) -> Look<R, S::Stored> {
    match read_stamped::<SoftStamp, S::Stored>(cache, key).await {
        Some(entry) if entry.at_ms > now_ms(cache) => {
            let at_ms = entry.at_ms;
            Look::Fresh(crate::detect::restore(shape, entry.value, || served(at_ms)))
        }
        Some(entry) => Look::Stale(Some(entry.value)),
        None => Look::Stale(None),
    }
}

/// One recomputation of a soft entry.
struct Renew<'a, S> {
    cache: &'a Cache,
    key: &'a str,
    ttl: Ttl,
    soft_ttl: Option<Duration>,
    store: CacheOptions,
    shape: &'a S,
}

impl<S> Renew<'_, S> {
    /// Renews the entry, once per key in this process when `protected` (the others read what
    /// the leader stored, or renew on their own when it stored nothing).
    async fn coalesced<R, W, F>(
        &self,
        protected: bool,
        stale: Option<S::Stored>,
        served: &impl Fn(u64) -> Served,
        when: W,
        origin: F,
    ) -> R
    where
        S: Outcome<R>,
        W: FnOnce(&R) -> bool,
        F: Future<Output = R>,
    {
        let (cache, key, shape) = (self.cache, self.key, self.shape);
        if !protected {
            return self.run(stale, when, origin).await.0;
        }
        coalesce::run(
            cache.stored_flights(),
            key,
            (None, stale),
            move || async move {
                match look(cache, key, shape, served).await {
                    Look::Fresh(hit) => Ok(hit),
                    Look::Stale(stale) => Err(stale),
                }
            },
            move |stale| self.run(stale, when, origin),
            coalesce::stored::share,
            coalesce::stored::then,
        )
        .await
    }

    /// Runs `origin`; stores a storable result, answers a failure `when` accepts with the
    /// stale value. Returns the result and whether it was stored.
    async fn run<R, W, F>(&self, stale: Option<S::Stored>, when: W, origin: F) -> (R, bool)
    where
        S: Outcome<R>,
        W: FnOnce(&R) -> bool,
        F: Future<Output = R>,
    {
        let entry = Some(Stamp::after::<SoftStamp>(self.soft_ttl));
        let (result, stored) = compute(
            self.cache,
            self.key,
            self.ttl,
            &self.store,
            self.shape,
            entry,
            origin,
        )
        .await;
        if self.shape.stored(&result).is_some() {
            return (result, stored);
        }
        match stale {
            Some(value) if when(&result) => {
                tracing::debug!(key = %shorten(self.key), "the function failed; serving the stale value");
                (self.shape.restore(value), false)
            }
            _ => (result, false),
        }
    }
}

// ----- shared by the timed strategies (soft, early) ---------------------------------------

/// The store options of `cache` that the other caching strategies honour too.
pub(super) fn store_options(
    condition: StoreCondition,
    time_condition: Option<Duration>,
) -> CacheOptions {
    let options = CacheOptions::new().condition(condition);
    match time_condition {
        Some(at_least) => options.time_condition(at_least),
        None => options,
    }
}

/// A third of a TTL (`ttl × 0.33`): the default soft and early TTLs.
pub(super) fn third(ttl: Duration) -> Duration {
    ttl.mul_f64(0.33)
}

/// "Now" for stored instants, in milliseconds: since the Unix epoch (UTC) on the system
/// clock, so that processes sharing a backend agree (a [`Clock`](crate::Clock) counts from
/// its own creation, which differs per process); the manual clock's reading in tests.
pub(crate) fn now_ms(cache: &Cache) -> u64 {
    let clock = cache.clock();
    let now = if clock.is_manual() {
        clock.now()
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    };
    millis(now)
}

/// Now plus `after` in milliseconds; `u64::MAX` (never) when `after` is `None`.
pub(super) fn deadline_ms(cache: &Cache, after: Option<Duration>) -> u64 {
    after.map_or(u64::MAX, |after| {
        now_ms(cache).saturating_add(millis(after))
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Names the instant field of a [`Stamped`] entry, one name per strategy.
pub(super) trait StampName {
    /// The field holding the instant.
    const AT: &'static str;
    /// The struct name given to serializers.
    const NAME: &'static str;
}

/// The soft entry: `{"soft_expire_at_ms", "value"}`.
pub(super) enum SoftStamp {}

impl StampName for SoftStamp {
    const AT: &'static str = "soft_expire_at_ms";
    const NAME: &'static str = "SoftEntry";
}

/// A value with an instant: serialized as a map of exactly two fields, the instant (named by
/// `M`) and `"value"`. Reading accepts only such a map, so a value of another shape (a plain
/// value, a sequence, a map with other fields) is a decode failure, i.e. a miss, never a
/// wrong value.
pub(super) struct Stamped<M, T> {
    /// The instant, in the milliseconds of [`now_ms`].
    pub(super) at_ms: u64,
    /// The stored value.
    pub(super) value: T,
    name: PhantomData<fn() -> M>,
}

impl<M, T> Stamped<M, T> {
    pub(super) fn new(at_ms: u64, value: T) -> Self {
        Self {
            at_ms,
            value,
            name: PhantomData,
        }
    }
}

impl<M: StampName, T: Serialize> Serialize for Stamped<M, T> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        StampedRef {
            at: M::AT,
            name: M::NAME,
            at_ms: self.at_ms,
            value: &self.value,
        }
        .serialize(serializer)
    }
}

impl<'de, M: StampName, T: Deserialize<'de>> Deserialize<'de> for Stamped<M, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StampedVisitor(PhantomData))
    }
}

struct StampedVisitor<M, T>(PhantomData<fn() -> (M, T)>);

impl<'de, M: StampName, T: Deserialize<'de>> Visitor<'de> for StampedVisitor<M, T> {
    type Value = Stamped<M, T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map with the fields `{}` and `value`", M::AT)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut at_ms = None;
        let mut value = None;
        while let Some(field) = map.next_key::<String>()? {
            if field == M::AT {
                if at_ms.is_some() {
                    return Err(de::Error::duplicate_field(M::AT));
                }
                at_ms = Some(map.next_value()?);
            } else if field == "value" {
                if value.is_some() {
                    return Err(de::Error::duplicate_field("value"));
                }
                value = Some(map.next_value()?);
            } else {
                return Err(de::Error::unknown_field(&field, &[M::AT, "value"]));
            }
        }
        let at_ms = at_ms.ok_or_else(|| de::Error::missing_field(M::AT))?;
        let value = value.ok_or_else(|| de::Error::missing_field("value"))?;
        Ok(Stamped::new(at_ms, value))
    }
}

/// Reads a stamped entry; `None` on a miss, a wrong shape (logged by the codec) or a backend
/// failure (logged here).
pub(super) async fn read_stamped<M: StampName, T: DeserializeOwned>(
    cache: &Cache,
    key: &str,
) -> Option<Stamped<M, T>> {
    match cache.get_boxed::<Stamped<M, T>>(key).await {
        Ok(entry) => entry,
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "cache read failed; running the function");
            None
        }
    }
}

/// The stamp of a timed strategy's entry: the instant `after` the write (never, for `None`),
/// under the field names of `M`. [`compute`] writes the value inside it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp {
    at: &'static str,
    name: &'static str,
    after: Option<Duration>,
}

impl Stamp {
    pub(super) fn after<M: StampName>(after: Option<Duration>) -> Self {
        Self {
            at: M::AT,
            name: M::NAME,
            after,
        }
    }

    /// How long after the write the stamp's instant is (`None`: never).
    pub(super) fn due(&self) -> Option<Duration> {
        self.after
    }

    /// The same stamp, due `after` the write instead.
    pub(super) fn due_after(self, after: Option<Duration>) -> Self {
        Self { after, ..self }
    }

    /// `value`, stamped now: what [`compute`] stores.
    pub(super) fn entry<'a, T: ?Sized>(&self, cache: &Cache, value: &'a T) -> StampedRef<'a, T> {
        StampedRef {
            at: self.at,
            name: self.name,
            at_ms: deadline_ms(cache, self.after),
            value,
        }
    }
}

/// A [`Stamped`] entry as written: the names given at run time, the value borrowed.
pub(super) struct StampedRef<'a, T: ?Sized> {
    at: &'static str,
    name: &'static str,
    at_ms: u64,
    value: &'a T,
}

impl<T: Serialize + ?Sized> Serialize for StampedRef<'_, T> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut entry = serializer.serialize_struct(self.name, 2)?;
        entry.serialize_field(self.at, &self.at_ms)?;
        entry.serialize_field("value", self.value)?;
        entry.end()
    }
}
