//! No password, secret or hash key from a URL ever shows in an error or a `Debug`, however
//! malformed the URL: the cases the parser and the redactor once split at the wrong `?`, and a
//! property test over generated malformed URLs.

use cashews::Cache;
use cashews::config::CacheConfig;
use proptest::prelude::*;

/// The pieces of `secret` that would count as a leak: every 4-character window holding one of
/// the letters a generated secret is made of (case-insensitive, as option names are
/// lower-cased), so that incidental text (`6379`, `://`) never counts.
fn leaks(text: &str, secret: &str) -> Option<String> {
    let text = text.to_lowercase();
    let secret: Vec<char> = secret.to_lowercase().chars().collect();
    secret
        .windows(4)
        .map(|w| w.iter().collect::<String>())
        .filter(|w| w.chars().any(|c| "qwxzjkv".contains(c)))
        .find(|w| text.contains(w.as_str()))
}

/// Every text the URL's parse and setup can show: errors (`Display` and `Debug`) and the
/// parsed configuration's `Debug`.
fn shown_texts(url: &str) -> Vec<String> {
    let mut texts = Vec::new();
    match CacheConfig::parse(url) {
        Ok(config) => texts.push(format!("{config:?}")),
        Err(e) => {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
        }
    }
    // `setup` never connects, so it is safe to call on any URL but a disk directory.
    if !url.to_lowercase().contains("disk") {
        let cache = Cache::new();
        match cache.setup(url) {
            Ok(()) => texts.push(format!("{cache:?}")),
            Err(e) => {
                texts.push(e.to_string());
                texts.push(format!("{e:?}"));
            }
        }
    }
    texts
}

fn assert_hidden(url: &str, secret: &str) {
    for text in shown_texts(url) {
        assert!(
            leaks(&text, secret).is_none(),
            "`{url}` shows {:?} of its secret {secret:?} in: {text}",
            leaks(&text, secret)
        );
    }
}

#[test]
fn a_question_mark_or_hash_in_a_password_never_shows_it() {
    let cases = [
        ("redis://:pa?ssWQrdK@127.0.0.1:6379", "pa?ssWQrdK"),
        ("redis?://:huntQK2@127.0.0.1:6379", "huntQK2"),
        ("redis://:pa?ss=WQrdK@127.0.0.1:6379", "pa?ss=WQrdK"),
        ("redis://us:pa#sWQK@127.0.0.1:6379/0", "pa#sWQK"),
        ("redis://us:pa/sWQK@127.0.0.1:6379/0", "pa/sWQK"),
        ("redis://us:pa&s=WQK@127.0.0.1:6379/0?db=1", "pa&s=WQK"),
        ("mem://?size=10&secret=WQK@xjz&size=3", "WQK@xjz"),
        ("mem://?hash_key=WQKx#jz", "WQKx#jz"),
        ("mem://us:WQKxjz@host", "WQKxjz"),
        ("redis://:WQKxjz@127.0.0.1:6379?bogus=1", "WQKxjz"),
        ("redis://:WQKxjz@127.0.0.1:6379?db=nope", "WQKxjz"),
        ("redis://:WQKxjz@127.0.0.1:99999", "WQKxjz"),
    ];
    for (url, secret) in cases {
        assert_hidden(url, secret);
    }
    // The error says what to do.
    let e = CacheConfig::parse("redis://:pa?ssWQrdK@127.0.0.1:6379").unwrap_err();
    assert!(e.to_string().contains("percent-encoded"), "{e}");
    // An `@` inside a known option's value is still read.
    let config = CacheConfig::parse("mem://?size=10&secret=a@b").unwrap();
    assert!(config.codec.secret.is_some());
}

/// A secret made of the letters [`leaks`] looks for, digits and every character that has a
/// meaning in a URL.
fn secret() -> impl Strategy<Value = String> {
    "[QWXZJKV][QWXZJKV0-9?#/@&=:%.+ ]{5,14}"
}

/// Where a URL may carry a secret.
fn url_with(secret: &str, shape: u8, scheme: &str, tail: &str) -> String {
    match shape % 6 {
        0 => format!("{scheme}://:{secret}@127.0.0.1:6379{tail}"),
        1 => format!("{scheme}://user:{secret}@localhost/0{tail}"),
        2 => format!("{scheme}://?secret={secret}{tail}"),
        3 => format!("{scheme}://127.0.0.1?password={secret}{tail}"),
        4 => format!("{scheme}://?hash_key={secret}&size=1{tail}"),
        // A slash missing after the scheme.
        _ => format!("{scheme}:/{secret}@127.0.0.1{tail}"),
    }
}

proptest! {
    #![proptest_config(crate::support::fixed_seed(2000))]

    #[test]
    fn no_generated_url_shows_its_secret(
        secret in secret(),
        shape in any::<u8>(),
        scheme in prop::sample::select(vec![
            "redis", "rediss", "mem", "disk", "", "redis?", "re dis", "REDIS", "mem:",
        ]),
        tail in prop::sample::select(vec![
            "", "?db=1", "?bogus=1", "?size=x", "#frag", "/0?db=99999", "?cluster=true",
            "?max_connections=0", "?suppress=maybe", "&x=1", "?secret=", "?compress_type=lz",
        ]),
    ) {
        let url = url_with(&secret, shape, scheme, tail);
        for text in shown_texts(&url) {
            prop_assert!(
                leaks(&text, &secret).is_none(),
                "`{}` shows {:?} in: {}", url, leaks(&text, &secret), text
            );
        }
    }
}
