//! Reading one claim from a JWT's payload, for the `jwt(claim)` filter. The signature is not
//! checked: the claim only names a cache entry.
//!
//! Base64 is decoded by hand (a few lines) rather than with a dependency: both alphabets,
//! padded or not, as real tokens and the Python original's tests use.

/// The claim's value as text: a string as is, other JSON values as JSON text; `None` when the
/// token has no payload segment, the payload is not base64 JSON object, or the claim is
/// missing.
pub(super) fn claim(token: &str, claim: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = decode_base64(payload)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match json.as_object()?.get(claim)? {
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// Decodes standard (`+/`) or URL-safe (`-_`) base64, with or without `=` padding.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = ((acc << 6) | u32::from(value)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn decodes_both_alphabets_with_and_without_padding() {
        let cases: &[(&str, &[u8])] = &[
            ("", b""),
            ("Zg", b"f"),
            ("Zg==", b"f"),
            ("Zm8", b"fo"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYmFy", b"foobar"),
            ("-_8", b"\xfb\xff"),
            ("+/8=", b"\xfb\xff"),
        ];
        for (text, bytes) in cases {
            assert_eq!(decode_base64(text).as_deref(), Some(*bytes), "{text}");
        }
        assert_eq!(decode_base64("Z"), None);
        assert_eq!(decode_base64("Zm9v!"), None);
    }
}
