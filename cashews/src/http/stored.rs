//! The stored form of a response: status, headers with their raw bytes, body, entity tag and
//! the instants that give its age.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, ETAG, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

/// A response as the cache holds it. Header values are kept as bytes, so values that are not
/// UTF-8 come back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, Bytes)>,
    pub(crate) body: Bytes,
    /// The `ETag` value, quoted: the handler's own, or computed from the body.
    pub(crate) etag: String,
    /// When it was stored, in the milliseconds of the cache's clock for stored instants.
    pub(crate) stored_at_ms: u64,
    /// How long it is fresh after `stored_at_ms`.
    pub(crate) fresh_ms: u64,
    /// How long past freshness it may still be served while one request refreshes it.
    pub(crate) stale_ms: u64,
}

/// Headers that describe one connection, not the response: never stored.
fn per_connection(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

impl StoredResponse {
    /// The stored form of a response's parts and whole body.
    pub(crate) fn new(
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        stored_at_ms: u64,
        fresh: Duration,
        stale: Duration,
    ) -> Self {
        let etag = headers
            .get(ETAG)
            .and_then(|value| value.to_str().ok())
            .map_or_else(|| super::etag::etag_of(&body), str::to_owned);
        Self {
            status: status.as_u16(),
            headers: headers
                .iter()
                .filter(|(name, _)| !per_connection(name))
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        Bytes::copy_from_slice(value.as_bytes()),
                    )
                })
                .collect(),
            body,
            etag,
            stored_at_ms,
            fresh_ms: millis(fresh),
            stale_ms: millis(stale),
        }
    }

    /// How long the entry lives in the cache: fresh, then stale.
    pub(crate) fn lifetime(&self) -> Duration {
        Duration::from_millis(self.fresh_ms.saturating_add(self.stale_ms))
    }

    /// The freshness still left at `now_ms` (zero once stale).
    pub(crate) fn remaining(&self, now_ms: u64) -> Duration {
        let until = self.stored_at_ms.saturating_add(self.fresh_ms);
        Duration::from_millis(until.saturating_sub(now_ms))
    }

    /// How old it is at `now_ms`.
    pub(crate) fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.stored_at_ms))
    }

    /// The status; a stored code that no longer parses (a corrupt entry) reads as 500.
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stored headers; an entry that does not parse is skipped (a corrupt entry).
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_maybe_shared(value.clone()),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_header_values_survive_a_round_trip_through_msgpack() {
        let mut headers = HeaderMap::new();
        let raw = HeaderValue::from_bytes(b"caf\xe9; q=\"1\"").unwrap();
        headers.insert("x-latin1", raw.clone());
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let stored = StoredResponse::new(
            StatusCode::CREATED,
            &headers,
            Bytes::from_static(b"body"),
            1_000,
            Duration::from_secs(10),
            Duration::ZERO,
        );
        let encoded = rmp_serde::to_vec_named(&stored).unwrap();
        let back: StoredResponse = rmp_serde::from_slice(&encoded).unwrap();
        assert_eq!(back, stored);
        let map = back.header_map();
        assert_eq!(map.get("x-latin1"), Some(&raw));
        assert_eq!(map.get_all("x-multi").iter().count(), 2);
        assert!(map.get(TRANSFER_ENCODING).is_none());
        assert_eq!(back.status(), StatusCode::CREATED);
        assert_eq!(back.remaining(4_000), Duration::from_secs(7));
        assert_eq!(back.age(4_000), Duration::from_secs(3));
    }
}
