//! The flight of [`Cache::get_or_set`](crate::Cache::get_or_set) on the one coalescer
//! (`crate::coalesce`): what its followers share, and the detached task that loads.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::Cache;
use super::route::Route;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::coalesce::{Flights, Leader, Turn};
use crate::error::{Error, Result, shorten};
use crate::ttl::IntoTtl;

/// What waiters receive: the encoded value, or why there is none. Cloneable, unlike [`Error`].
#[derive(Clone, Debug)]
pub(super) enum Landed {
    Value(Bytes),
    Encode(String),
    /// Only for the leader, whose load task panicked (followers are released instead).
    Panicked,
    /// Only for the leader, whose load task was cancelled (runtime shutting down).
    Cancelled,
}

impl Landed {
    pub(super) fn into_result(self, key: &str) -> Result<Bytes, Error> {
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

/// The load task: owns the lead, so that a cancelled caller neither stops the load nor
/// strands the followers; a panic drops the lead unshared, which releases them.
pub(super) async fn load<T, Fut>(
    cache: Cache,
    route: Arc<Route>,
    key: String,
    ttl: crate::Ttl,
    leader: Leader<'static, Landed>,
    load: Fut,
) -> Landed
where
    T: serde::Serialize,
    Fut: Future<Output = T>,
{
    let landed = 'landed: {
        // A caller whose miss raced a flight that had just stored the value and landed
        // starts a new flight: read once more before running the origin.
        if let Ok(Some(bytes)) = cache.get_raw(&key).await {
            break 'landed Landed::Value(bytes);
        }
        let value = load.await;
        let bytes = match Cache::encode(&route, &key, &value) {
            Ok(b) => b,
            Err(e) => break 'landed Landed::Encode(e.to_string()),
        };
        if let Err(error) = cache.set_raw(&key, bytes.clone(), ttl).await {
            tracing::error!(key = %shorten(&key), %error, "get_or_set could not store the fresh value");
        }
        Landed::Value(bytes)
    };
    leader.share(|| landed.clone());
    landed
}

impl Cache {
    /// `value` encoded as [`Cache::set`] stores it under `key`, for a coalescing leader that
    /// stored it to hand to its followers, which then need no read; `None` when it cannot be
    /// (no route, an encoding failure, a value over `max_value_size`) or must not (the leader
    /// wrote inside a transaction, which others cannot see yet): the followers read.
    pub(crate) fn encode_for_followers<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Option<Bytes> {
        if super::transactions::current(self.id()).is_some() {
            return None;
        }
        let route = self.route_for(key).ok()?;
        Self::encode(&route, key, value).ok()
    }

    /// Bytes a leader handed over ([`Cache::encode_for_followers`]), decoded as this task's
    /// read of `key` would decode them; `None` when that read would not see them as they are
    /// (a read disabled for this task or on the route, an `invalidate_further` scope, an open
    /// transaction) or they do not decode (logged by the codec): the follower then reads.
    pub(crate) fn decode_from_leader<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> Option<T> {
        if super::further::active() || super::transactions::current(self.id()).is_some() {
            return None;
        }
        let route = self.route_for(key).ok()?;
        if self.is_off(&route, crate::command::Command::Get) {
            return None;
        }
        route.codec.decode(key, route.name(), bytes)
    }
}

impl Cache {
    /// Returns the cached value, or runs `init`, stores its result with `ttl` and returns it.
    ///
    /// # Concurrent calls
    ///
    /// Concurrent misses on the same key in this process run `init` once; the others wait
    /// for its result (single flight, with the semantics every coalescing strategy shares:
    /// see [`strategy`](crate::strategy#coalescing)). Other processes may compute too: use a
    /// lock strategy for cross-process exclusion. Inside a
    /// [transaction](mod@crate::transaction), `init` runs in the caller, uncoalesced, and its
    /// value is stored in the transaction.
    ///
    /// # Cancellation
    ///
    /// `init`'s future runs in its own Tokio task: if the caller that started it is dropped
    /// or times out, the load still completes, is stored, and the other waiters get it.
    ///
    /// # Panics
    ///
    /// Never in the caller: if `init` panics, the caller whose `init` it was gets
    /// [`Error::OriginFailed`]; the callers waiting for it are released and one of them runs
    /// its own `init` (a panic reaches only the caller whose `init` panicked). The next call
    /// after that runs `init` again.
    ///
    /// # Re-entry
    ///
    /// An `init` that calls `get_or_set` with its own key (directly or through other calls)
    /// does not deadlock: the nested call computes without single flight.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`] and [`Cache::set`]; [`Error::OriginFailed`] as above. A failure to
    /// *store* the fresh value is logged, not returned: the caller still gets the value.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let v: u32 = cache.get_or_set("answer", "1h", || async { 42 }).await?;
    /// let again: u32 = cache.get_or_set("answer", "1h", || async { 0 }).await?;
    /// assert_eq!((v, again), (42, 42));
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set<T, F, Fut>(&self, key: &str, ttl: impl IntoTtl, init: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let ttl = ttl.into_ttl()?;
        if let Some(hit) = self.get::<T>(key).await? {
            return Ok(hit);
        }
        let route = self.route_for(key)?;
        let flights = self.extension::<Flights<Landed>>();
        if flights.marker().is_inside(key) || super::transactions::current(self.id()).is_some() {
            // The origin calls itself with its own key: compute directly instead of waiting
            // for our own flight, which would never land. Inside a transaction, too: its
            // value is the transaction's until the commit, so it leads no flight that callers
            // outside could share, and follows none.
            let value = init().await;
            self.set(key, &value, ttl).await?;
            return Ok(value);
        }
        let bytes = loop {
            match flights.enter(key) {
                Turn::Lead(leader) => {
                    // The load runs in its own task, which owns the lead (a cancelled caller
                    // neither loses the load nor strands the followers), marked as computing
                    // `key` and with the caller's context (key context, disabled commands,
                    // detect scopes), as a task the caller spawned would have.
                    let load = crate::context::Context::current()
                        .scope(flights.marker().inside(key, init()));
                    let task = tokio::spawn(self::load(
                        self.clone(),
                        route,
                        key.to_owned(),
                        ttl,
                        leader,
                        load,
                    ));
                    break match task.await {
                        Ok(landed) => landed,
                        Err(e) if e.is_panic() => Landed::Panicked,
                        Err(_) => Landed::Cancelled,
                    }
                    .into_result(key)?;
                }
                Turn::Follow(follower) => {
                    if let Some(landed) = follower.wait().await {
                        break landed.into_result(key)?;
                    }
                    // The load panicked or its task was cancelled: take a turn ourselves.
                }
            }
        };
        let route = self.route_for(key)?;
        route
            .codec
            .decode(key, route.name(), &bytes)
            .ok_or_else(|| Error::Encode {
                key: shorten(key),
                source: "the fresh value does not decode as the requested type".into(),
            })
    }
}
