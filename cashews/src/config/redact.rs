//! Removing credentials from URLs before they appear in errors.

use crate::error::shorten;

/// Query options whose values are credentials, in any scheme (known or not).
const SECRET_QUERY_NAMES: &[&str] = &["secret", "hash_key", "password"];

/// The URL with its `user:password@` part and credential-like query values replaced by `***`,
/// shortened if long.
///
/// Errs on the side of hiding: everything before the last `@` of the part before `?` is taken
/// as user information, and the query is read up to its end, `#` included, so a secret holding
/// an unescaped `#` is still hidden.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, url),
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    match location.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                // Keep a user name, unless it looks like more than a name.
                Some((user, _)) if !user.contains(['/', '@']) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                _ => out.push_str("***"),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(location),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(n, _)| n.to_lowercase())
                .collect();
            if SECRET_QUERY_NAMES.contains(&decoded.as_str()) {
                out.push_str(name);
                out.push_str("=***");
            } else {
                out.push_str(pair);
            }
        }
    }
    shorten(&out)
}

/// Whether `text` can be a URL scheme (letters, digits, `+`, `-`, `.`; empty allowed).
pub(crate) fn is_scheme(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn hides_passwords_and_secrets() {
        assert_eq!(
            redact_url("redis://:pw@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://user:pw@host"), "redis://user:***@host");
        assert_eq!(redact_url("redis://token@host"), "redis://***@host");
        assert_eq!(redact_url("redis://u:p@ss@host"), "redis://u:***@host");
        assert_eq!(
            redact_url("mem://?size=1&SECRET=abc#d&hash_key=x&password=y"),
            "mem://?size=1&SECRET=***&hash_key=***&password=***"
        );
        assert_eq!(redact_url("mem://?size=1"), "mem://?size=1");
        assert_eq!(redact_url("u:pw@host"), "u:***@host");
        assert_eq!(redact_url("u:pw@host://x"), "u:***@host://x");
    }
}
