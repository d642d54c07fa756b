//! The flight of [`Cache::get_or_set`](crate::Cache::get_or_set) on the one coalescer
//! (`crate::coalesce`): what its followers share, and the detached task that loads.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::Cache;
use super::route::Route;
use crate::coalesce::Leader;
use crate::error::{Error, shorten};

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
    leader: Leader<Landed>,
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
