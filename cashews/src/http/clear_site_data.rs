//! The `Clear-Site-Data` request header: `"cache"` asks the layer to recompute.

use http::HeaderMap;
use http::header::HeaderName;

/// The `Clear-Site-Data` header.
pub(crate) const CLEAR_SITE_DATA: HeaderName = HeaderName::from_static("clear-site-data");

/// Whether `headers` carry `Clear-Site-Data` naming the `cache` type: quoted as the
/// standard writes it (`"cache"`), or bare (`cache`), alone or in a list (`"cache", "cookies"`),
/// or the wildcard `"*"`.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use cashews::http::requests_cache_clear;
///
/// let mut headers = HeaderMap::new();
/// assert!(!requests_cache_clear(&headers));
/// headers.insert("clear-site-data", HeaderValue::from_static("\"cookies\", \"cache\""));
/// assert!(requests_cache_clear(&headers));
/// headers.insert("clear-site-data", HeaderValue::from_static("cache"));
/// assert!(requests_cache_clear(&headers));
/// headers.insert("clear-site-data", HeaderValue::from_static("\"storage\""));
/// assert!(!requests_cache_clear(&headers));
/// ```
#[must_use]
pub fn requests_cache_clear(headers: &HeaderMap) -> bool {
    headers
        .get_all(CLEAR_SITE_DATA)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.trim().trim_matches('"'))
        .any(|item| item.eq_ignore_ascii_case("cache") || item == "*")
}
