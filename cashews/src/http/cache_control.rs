//! The `Cache-Control` directives the layer reads, from requests and from responses.

use std::time::Duration;

use http::HeaderMap;
use http::header::CACHE_CONTROL;

/// What a request's `Cache-Control` asks of the layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    /// `no-cache`: do not answer from the cache (the new response is still stored).
    pub(crate) no_cache: bool,
    /// `no-store`, or `max-age=0`: neither read nor store.
    pub(crate) no_store: bool,
}

impl RequestDirectives {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut directives = Self::default();
        for (name, value) in items(headers) {
            match name.as_str() {
                "no-cache" => directives.no_cache = true,
                "no-store" => directives.no_store = true,
                "max-age" if seconds(value) == Some(0) => directives.no_store = true,
                _ => {}
            }
        }
        directives
    }
}

/// What a response's `Cache-Control` says about storing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ResponseDirectives {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    /// `public`, `s-maxage` or `must-revalidate`: a shared cache may store the response to
    /// a request with `Authorization`.
    pub(crate) shareable: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) s_maxage: Option<Duration>,
    pub(crate) stale_while_revalidate: Option<Duration>,
}

impl ResponseDirectives {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut directives = Self::default();
        for (name, value) in items(headers) {
            match name.as_str() {
                "no-store" => directives.no_store = true,
                "no-cache" => directives.no_cache = true,
                "private" => directives.private = true,
                "public" | "must-revalidate" => directives.shareable = true,
                "max-age" => directives.max_age = seconds(value).map(Duration::from_secs),
                "s-maxage" => {
                    directives.shareable = true;
                    directives.s_maxage = seconds(value).map(Duration::from_secs);
                }
                "stale-while-revalidate" => {
                    directives.stale_while_revalidate = seconds(value).map(Duration::from_secs);
                }
                _ => {}
            }
        }
        directives
    }

    /// How long the response is fresh, by its own word: `s-maxage` (a shared cache's),
    /// else `max-age`.
    pub(crate) fn freshness(&self) -> Option<Duration> {
        self.s_maxage.or(self.max_age)
    }
}

/// The directives of every `Cache-Control` header: lower-cased names, with their values
/// (quotes removed). Unreadable headers are skipped.
fn items(headers: &HeaderMap) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| {
            let item = item.trim();
            if item.is_empty() {
                return None;
            }
            let (name, value) = match item.split_once('=') {
                Some((name, value)) => (name, Some(value.trim().trim_matches('"').to_owned())),
                None => (item, None),
            };
            Some((name.trim().to_ascii_lowercase(), value))
        })
}

/// A delta-seconds value; bad values are ignored (`None`).
fn seconds(value: Option<String>) -> Option<u64> {
    value?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn request_directives() {
        let parsed = RequestDirectives::parse(&headers("No-Cache"));
        assert_eq!((parsed.no_cache, parsed.no_store), (true, false));
        let parsed = RequestDirectives::parse(&headers("public, max-age=0"));
        assert_eq!((parsed.no_cache, parsed.no_store), (false, true));
        let parsed = RequestDirectives::parse(&headers("max-age=600, max-age=x"));
        assert_eq!(parsed, RequestDirectives::default());
        let parsed = RequestDirectives::parse(&headers("no-store"));
        assert!(parsed.no_store);
    }

    #[test]
    fn response_directives() {
        let parsed =
            ResponseDirectives::parse(&headers("public, max-age=60, stale-while-revalidate=30"));
        assert_eq!(parsed.freshness(), Some(Duration::from_secs(60)));
        assert_eq!(parsed.stale_while_revalidate, Some(Duration::from_secs(30)));
        let parsed = ResponseDirectives::parse(&headers("max-age=60, s-maxage=\"5\", private"));
        assert_eq!(parsed.freshness(), Some(Duration::from_secs(5)));
        assert!(parsed.private && !parsed.no_store && parsed.shareable);
        assert!(!ResponseDirectives::parse(&headers("max-age=60")).shareable);
        assert!(ResponseDirectives::parse(&headers("Public")).shareable);
    }
}
