//! The properties the fuzz targets check (`fuzz/` at the repository root), as plain functions,
//! so that the fuzz corpora replay as ordinary tests on the stable toolchain.
//!
//! Each function takes the fuzzer's bytes, never panics on its own, and panics with a message
//! naming the input when the property fails:
//!
//! - [`url`]: no URL, however malformed, shows its password, secret or hash key in an error or
//!   a `Debug`.
//! - [`ttl`]: the TTL grammar never panics, and what it accepts reads back the same.
//! - [`template`]: a run-time key template rendered as a pattern never matches more than the
//!   key it renders for the same values.
//! - [`decode`]: the value decoder never panics, on every codec setting, and a cache with a
//!   secret reads nothing without a valid signature.
//!
//! ```
//! cashews_testkit::fuzz::url(b"\x01redis://:secret?@host");
//! cashews_testkit::fuzz::ttl(b"1h30m");
//! cashews_testkit::fuzz::template(b"user:{a}:x\x00*");
//! cashews_testkit::fuzz::decode(b"\xC1\xCA\x01\x01\x00\xA2hi");
//! ```

use cashews::codec::{CodecOptions, Compression, Digest, Format, Secret, ValueCodec};
use cashews::config::CacheConfig;
use cashews::key::KeyTemplate;
use cashews::pattern::matches;

/// The letters a generated secret is made of; the rest of a generated URL never holds them,
/// so any of them in an error comes from the secret.
const SECRET_LETTERS: &[u8] = b"QWXZJKV";

/// Characters of a secret besides its letters: everything with a meaning in a URL.
const SECRET_SYMBOLS: &[u8] = b"0123456789?#/@&=:%.+ ";

/// Checks that a URL built from `data` never shows its secret.
///
/// The first byte picks where the secret goes (a password, `secret=`, `hash_key=` or
/// `password=`) and the scheme; the next bytes up to a `0x00` make the secret (mapped onto
/// `QWXZJKV` and URL symbols); the rest is free text after it, with the secret's
/// letters (and `%`) taken out.
///
/// # Panics
///
/// When an error or a `Debug` shows four characters of the secret in a row.
pub fn url(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let (secret_bytes, tail) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let mut secret = String::from("Q");
    for &b in secret_bytes.iter().take(24) {
        let pool = if b % 2 == 0 {
            SECRET_LETTERS
        } else {
            SECRET_SYMBOLS
        };
        secret.push(char::from(pool[usize::from(b / 2) % pool.len()]));
    }
    let tail: String = String::from_utf8_lossy(tail)
        .chars()
        // `%` too: a percent-escape in the text could spell the secret's letters.
        .filter(|&c| c != '%' && !(c.is_ascii() && SECRET_LETTERS.contains(&(c.to_ascii_uppercase() as u8))))
        .take(64)
        .collect();
    let scheme =
        ["redis", "rediss", "mem", "disk", "", "redis?", "REDIS"][usize::from(shape >> 4) % 7];
    let url = match shape % 5 {
        0 => format!("{scheme}://:{secret}@127.0.0.1:6379{tail}"),
        1 => format!("{scheme}://user:{secret}@localhost/0{tail}"),
        2 => format!("{scheme}://?secret={secret}{tail}"),
        3 => format!("{scheme}://127.0.0.1?password={secret}{tail}"),
        _ => format!("{scheme}://?hash_key={secret}&size=1{tail}"),
    };
    let shown = match CacheConfig::parse(&url) {
        Ok(config) => vec![format!("{config:?}")],
        Err(e) => vec![e.to_string(), format!("{e:?}")],
    };
    let secret_lower: Vec<char> = secret.to_lowercase().chars().collect();
    for text in shown {
        let text = text.to_lowercase();
        for window in secret_lower.windows(4) {
            let window: String = window.iter().collect();
            let marked = window
                .bytes()
                .any(|b| SECRET_LETTERS.contains(&b.to_ascii_uppercase()));
            assert!(
                !(marked && text.contains(&window)),
                "`{url}` shows `{window}` of its secret `{secret}` in: {text}"
            );
        }
    }
}

/// Checks the TTL grammar on `data` as text: no panic, and an accepted TTL written back in
/// milliseconds reads as the same duration.
///
/// # Panics
///
/// When an accepted TTL does not read back the same.
pub fn ttl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(duration) = cashews_syntax_parse(text) else {
        return;
    };
    let again = format!("{}ms", duration.as_millis());
    // Only when the milliseconds fit the grammar's numbers (`u64`).
    if duration.subsec_nanos() % 1_000_000 == 0 && u64::try_from(duration.as_millis()).is_ok() {
        assert_eq!(
            cashews_syntax_parse(&again).ok(),
            Some(duration),
            "`{text}` reads as {duration:?}, but `{again}` does not"
        );
    }
}

fn cashews_syntax_parse(text: &str) -> Result<std::time::Duration, cashews::Error> {
    match cashews::Ttl::parse(text)?.duration() {
        Some(d) => Ok(d),
        None => Ok(std::time::Duration::ZERO),
    }
}

/// Checks run-time key templates: `data` up to its first `0x00` is the template, the rest the
/// values of its fields `a`, `b` and `c` (split at `0x00`). When the template's own text holds
/// no glob character, the pattern it renders matches the rendered key and nothing that
/// differs from it by one character.
///
/// # Panics
///
/// When such a pattern misses the key or matches another.
pub fn template(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let Some(text) = parts.next().and_then(|t| std::str::from_utf8(t).ok()) else {
        return;
    };
    let Ok(template) = KeyTemplate::parse(text) else {
        return;
    };
    let values: Vec<String> = parts
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .chain(std::iter::repeat(String::new()))
        .take(3)
        .collect();
    let args: Vec<(&str, &dyn cashews::key::KeyPart)> =
        vec![("a", &values[0]), ("b", &values[1]), ("c", &values[2])];
    let (Ok(key), Ok(pattern)) = (template.render(&args), template.render_pattern(&args)) else {
        return;
    };
    // The template's own text: everything outside `{…}` fields.
    let literal_glob = literal_text(text).chars().any(|c| "*?[]\\".contains(c));
    if literal_glob {
        return;
    }
    assert!(
        matches(&pattern, &key),
        "template `{text}`: pattern `{pattern}` misses its key `{key}`"
    );
    for other in near(&key) {
        assert!(
            !matches(&pattern, &other),
            "template `{text}` with {values:?}: pattern `{pattern}` matches `{other}` besides `{key}`"
        );
    }
}

/// The text of a template outside its `{…}` fields (`{{` and `}}` are text).
fn literal_text(template: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if depth == 0 && chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if depth == 0 && chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Keys one edit away from `key`: a character more, fewer, or changed.
fn near(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut out = vec![format!("{key}x"), format!("x{key}")];
    for i in 0..chars.len().min(16) {
        let mut fewer = chars.clone();
        fewer.remove(i);
        out.push(fewer.iter().collect());
        let mut changed = chars.clone();
        changed[i] = if chars[i] == 'x' { 'y' } else { 'x' };
        out.push(changed.iter().collect());
    }
    out.retain(|k| k != key);
    out
}

/// Every codec setting: both formats, each compression this build has, unsigned and signed
/// with each digest.
fn codecs() -> Vec<(bool, ValueCodec)> {
    let mut all = Vec::new();
    for format in [Format::MsgPack, Format::Json] {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Zlib,
            Compression::Zstd,
        ] {
            if !compression.is_available() {
                continue;
            }
            for digest in [
                None,
                Some(Digest::Sha256),
                Some(Digest::Md5),
                Some(Digest::Sha1),
            ] {
                let mut options = CodecOptions::default();
                options.format = format;
                options.compression = compression;
                options.compress_min_size = 0;
                if let Some(digest) = digest {
                    options.secret = Some(Secret::new("fuzz-secret"));
                    options.digest = digest;
                }
                if let Ok(codec) = ValueCodec::new(options) {
                    all.push((digest.is_some(), codec));
                }
            }
        }
    }
    all
}

/// Decodes `data` with every codec setting as several types: never a panic, and a codec with a
/// secret reads nothing but integer text (counters, as integer types only) without a valid
/// signature, which a fuzzer cannot forge.
///
/// # Panics
///
/// When a signed codec reads a value from unsigned bytes.
pub fn decode(data: &[u8]) {
    let integer_text = {
        let digits = data.strip_prefix(b"-").unwrap_or(data);
        !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
    };
    for (signed, codec) in codecs() {
        let json = codec.decode::<serde_json::Value>("k", "fuzz", data);
        let text = codec.decode::<String>("k", "fuzz", data);
        let bytes = codec.decode::<Vec<u8>>("k", "fuzz", data);
        let float = codec.decode::<f64>("k", "fuzz", data);
        let int = codec.decode::<i64>("k", "fuzz", data);
        if signed {
            assert!(
                json.is_none() && text.is_none() && bytes.is_none() && float.is_none(),
                "a signed codec read unsigned bytes {data:?}: {json:?} {text:?} {float:?}"
            );
            assert!(
                int.is_none() || integer_text,
                "a signed codec read {int:?} from {data:?}"
            );
        }
    }
}
