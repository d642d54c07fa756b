//! Removing credentials from URLs before they appear in errors.

use crate::error::shorten;

/// Query options whose values are credentials, in any scheme (known or not).
const SECRET_QUERY_NAMES: &[&str] = &["secret", "hash_key", "password"];

/// The URL with its `user:password@` part and credential-like query values replaced by `***`,
/// shortened if long.
///
/// Errs on the side of hiding, because a malformed URL cannot say where its password ends:
/// - everything between `://` (or the start, when there is no scheme) and the **last** `@` of
///   the whole text is user information, even when it holds a `?`, `#`, `/` or `&` (a password
///   with an unescaped `?`, or a query value with an `@`). Only a plain user name (letters,
///   digits, `.`, `_`, `-`) before its `:` in a URL with a scheme is kept;
/// - when that user information reached into the query, the rest of the query value it cut
///   (up to the next `&`) is hidden too;
/// - the query is read up to its end, `#` included, and the values of `secret`, `hash_key`
///   and `password` are hidden, so a secret holding an unescaped `#` is still hidden.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
        _ => (None, url),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    let (after_userinfo, in_query) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            match userinfo.split_once(':') {
                // Keep a user name, unless it looks like more than a name.
                Some((user, _))
                    if scheme.is_some()
                        && user.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
                        }) =>
                {
                    out.push_str(user);
                    out.push_str(":***");
                }
                _ => out.push_str("***"),
            }
            out.push('@');
            // `?name=value@…`: the `@` sits in a query value, and what follows continues
            // that query; otherwise (`:pa?ss@host`) a host follows.
            let in_query = userinfo
                .split_once('?')
                .is_some_and(|(_, tail)| tail.contains('='));
            (after, in_query)
        }
        None => (rest, false),
    };
    let query = if in_query {
        // The `@` was inside the query: the pair it cut belongs to a hidden name.
        match after_userinfo.split_once('&') {
            Some((_, query)) => {
                out.push_str("***&");
                Some(query)
            }
            None => {
                out.push_str("***");
                None
            }
        }
    } else {
        match after_userinfo.split_once('?') {
            Some((location, query)) => {
                out.push_str(location);
                out.push('?');
                Some(query)
            }
            None => {
                out.push_str(after_userinfo);
                None
            }
        }
    };
    if let Some(query) = query {
        // After a secret's pair, the pairs up to the next known option may be the rest of a
        // secret holding an unescaped `&` (`secret=a&b`): they are hidden too.
        let mut after_secret = in_query;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(n, _)| n.to_lowercase())
                .collect();
            // The name's last word, so that junk before it (`//?secret` in a URL whose `?`
            // came before its `://`) does not hide a secret.
            let word = decoded
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default();
            if SECRET_QUERY_NAMES.contains(&word) {
                // Junk before the name may be the rest of a secret before it.
                out.push_str(if decoded == word { name } else { "***" });
                out.push_str("=***");
                after_secret = true;
            } else if after_secret && !(pair.contains('=') && super::is_known_option(&decoded)) {
                out.push_str("***");
            } else {
                after_secret = false;
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
        // Without a scheme, nothing before the `@` is known to be a user name.
        assert_eq!(redact_url("u:pw@host"), "***@host");
        assert_eq!(redact_url("u:pw@host://x"), "***@host://x");
        // A `?` or `#` inside the password: everything up to the last `@` is hidden.
        assert_eq!(
            redact_url("redis://:pa?ssWord@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis?://:hunter2@127.0.0.1:6379"),
            "***@127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://u:p#w@h/0"), "redis://u:***@h/0");
        // An `@` inside a query value hides the pair it is in, and secrets after it.
        assert_eq!(
            redact_url("mem://?size=1&secret=a@b&hash_key=c&size=2"),
            "mem://***@***&hash_key=***&size=2"
        );
        // Pairs after a secret that are not known options may be the rest of the secret.
        assert_eq!(
            redact_url("mem://?secret=a&b&c=d&size=1&e"),
            "mem://?secret=***&***&***&size=1&e"
        );
        assert_eq!(redact_url("mem://?key_prefix=a@b"), "mem://***@***");
        assert_eq!(redact_url("x?//?secret=a"), "x?***=***");
    }
}
