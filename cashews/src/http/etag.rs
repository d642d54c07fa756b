//! Entity tags: computed from the body, matched against `If-None-Match`.

use http::HeaderMap;
use http::header::IF_NONE_MATCH;
use sha2::{Digest, Sha256};

/// The strong entity tag of `body`, quoted as the `ETag` header carries it: the first 16
/// bytes of its SHA-256 in hex.
///
/// ```
/// let tag = cashews::http::etag_of(b"hello");
/// assert_eq!(tag, "\"2cf24dba5fb0a30e26e83b2ac5b9e29e\"");
/// assert_eq!(tag.len(), 34);
/// ```
#[must_use]
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    tag.push_str(&hex::encode(&digest[..16]));
    tag.push('"');
    tag
}

/// Whether the request's `If-None-Match` matches `etag` (weak comparison, as a `GET` or
/// `HEAD` uses: `W/` prefixes are ignored; `*` matches any stored response).
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let wanted = opaque(etag);
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque(tag) == wanted)
}

/// The opaque part of an entity tag: without `W/` and quotes.
fn opaque(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn if_none_match_lists_weak_tags_and_wildcards() {
        let mut headers = HeaderMap::new();
        assert!(!none_match(&headers, "\"a\""));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"a\""));
        assert!(none_match(&headers, "\"a\""));
        assert!(!none_match(&headers, "\"b\""));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("a"));
        assert!(none_match(&headers, "\"a\""));
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&headers, "\"b\""));
    }
}
