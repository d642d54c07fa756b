//! The Redis backend's feed of lock releases ([`Backend::lock_releases`]): `unlock` publishes
//! each released key on [`RELEASED_CHANNEL`], and this feed listens on a dedicated pub/sub
//! connection, so waiters in every process sharing the server wake at once.
//!
//! One connection per feed (the `Cache` opens one feed per backend, when a waiter first waits
//! for a lock held elsewhere). The feed ends when the connection drops or cannot be opened
//! within `connect_timeout`; waiters then keep their backoff and the `Cache` subscribes again
//! later. Redis Cluster has no feed yet (`None`): waiters there back off as before.
//!
//! [`Backend::lock_releases`]: crate::backend::Backend::lock_releases

use futures_util::StreamExt;
use futures_util::stream;

use super::RedisBackend;
use super::scripts::RELEASED_CHANNEL;
use crate::backend::{BoxStream, LockEvent};
use crate::config::redact::redact_url;

/// The release feed of `backend`, or `None` on a cluster.
pub(super) fn feed(backend: &RedisBackend) -> Option<BoxStream<LockEvent>> {
    let options = &backend.inner.options;
    if options.cluster {
        return None;
    }
    let client = backend.inner.client.clone();
    let prefix = options.key_prefix.clone();
    let timeout = options.connect_timeout;
    let address = redact_url(&options.address);
    let subscribe = async move {
        let subscribed = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(RELEASED_CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => Some(pubsub.into_on_message()),
            Ok(Err(error)) => {
                tracing::warn!(%address, %error, "cannot subscribe to lock releases; lock waiters back off instead");
                None
            }
            Err(_) => {
                tracing::warn!(%address, ?timeout, "subscribing to lock releases timed out; lock waiters back off instead");
                None
            }
        }
    };
    let events = stream::once(subscribe).flat_map(move |messages| match messages {
        Some(messages) => {
            let prefix = prefix.clone();
            let released = messages.filter_map(move |message| {
                // Keys stored under another prefix belong to other backends: not ours.
                let key = message
                    .get_payload_bytes()
                    .strip_prefix(prefix.as_bytes())
                    .map(|key| LockEvent::Released(String::from_utf8_lossy(key).into_owned()));
                std::future::ready(key)
            });
            stream::once(std::future::ready(LockEvent::Subscribed))
                .chain(released)
                .boxed()
        }
        None => stream::empty().boxed(),
    });
    Some(events.boxed())
}
