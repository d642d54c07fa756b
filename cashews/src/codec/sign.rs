//! Key-bound HMAC signatures in Python cashews' layout: `<digest>:<hex>_<payload>`.

use hmac::{Hmac, KeyInit, Mac};

use super::Digest;

/// What a signed value failed on. None of these carries the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SignMiss {
    /// No `_` separates a signature from a payload.
    NoSeparator,
    /// The digest name is not `md5`, `sha1` or `sha256` (kept short and printable for the log).
    UnknownDigest(String),
    /// The digest is known but neither the configured one nor in `accept_digests`.
    NotAccepted(Digest),
    /// The signature is not lowercase hex, or does not match key ‖ payload.
    BadSignature(Digest),
}

/// Computes `HMAC-<digest>(secret, key ‖ payload)` and hands it to `finish`.
fn with_mac<R>(
    digest: Digest,
    secret: &[u8],
    key: &str,
    payload: &[u8],
    finish: impl FnOnce(Macs) -> R,
) -> Option<R> {
    // `new_from_slice` cannot fail for HMAC (any key length is accepted); the `Option`
    // only keeps that promise out of the panic path.
    let mut macs = match digest {
        Digest::Md5 => Macs::Md5(Hmac::<md5::Md5>::new_from_slice(secret).ok()?),
        Digest::Sha1 => Macs::Sha1(Hmac::<sha1::Sha1>::new_from_slice(secret).ok()?),
        Digest::Sha256 => Macs::Sha256(Hmac::<sha2::Sha256>::new_from_slice(secret).ok()?),
    };
    macs.update(key.as_bytes());
    macs.update(payload);
    Some(finish(macs))
}

enum Macs {
    Md5(Hmac<md5::Md5>),
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
}

impl Macs {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(m) => m.update(data),
            Self::Sha1(m) => m.update(data),
            Self::Sha256(m) => m.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            Self::Md5(m) => hex::encode(m.finalize().into_bytes()),
            Self::Sha1(m) => hex::encode(m.finalize().into_bytes()),
            Self::Sha256(m) => hex::encode(m.finalize().into_bytes()),
        }
    }

    /// Constant-time comparison with the expected tag.
    fn verify(self, tag: &[u8]) -> bool {
        match self {
            Self::Md5(m) => m.verify_slice(tag).is_ok(),
            Self::Sha1(m) => m.verify_slice(tag).is_ok(),
            Self::Sha256(m) => m.verify_slice(tag).is_ok(),
        }
    }
}

/// The lowercase hex HMAC of key ‖ payload, or `None` if the MAC refused the secret (it never does).
pub(super) fn signature_hex(
    digest: Digest,
    secret: &[u8],
    key: &str,
    payload: &[u8],
) -> Option<String> {
    with_mac(digest, secret, key, payload, Macs::hex)
}

/// Prepends `<digest>:<hex>_` to `payload`.
pub(super) fn sign(digest: Digest, secret: &[u8], key: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let sig = signature_hex(digest, secret, key, payload)?;
    let name = digest.name();
    let mut out = Vec::with_capacity(name.len() + 2 + sig.len() + payload.len());
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    out.extend_from_slice(sig.as_bytes());
    out.push(b'_');
    out.extend_from_slice(payload);
    Some(out)
}

/// Checks the signature of `stored` and returns the payload.
///
/// `stored` splits at its first `_` into a signature part and the payload. A signature part
/// with a `:` names its digest, which must be `configured` or in `accepted`; one without a
/// `:` is the legacy layout, checked with `configured`.
pub(super) fn verify<'a>(
    configured: Digest,
    accepted: &[Digest],
    secret: &[u8],
    key: &str,
    stored: &'a [u8],
) -> Result<&'a [u8], SignMiss> {
    let split = stored
        .iter()
        .position(|&b| b == b'_')
        .ok_or(SignMiss::NoSeparator)?;
    let (sig_part, payload) = (&stored[..split], &stored[split + 1..]);
    let (digest, hex_sig) = match sig_part.iter().position(|&b| b == b':') {
        Some(colon) => {
            let name = &sig_part[..colon];
            let digest = Digest::from_name_bytes(name)
                .ok_or_else(|| SignMiss::UnknownDigest(printable_prefix(name)))?;
            if digest != configured && !accepted.contains(&digest) {
                return Err(SignMiss::NotAccepted(digest));
            }
            (digest, &sig_part[colon + 1..])
        }
        None => (configured, sig_part),
    };
    // Python writes lowercase hex; anything else (including empty) cannot be a signature we wrote.
    if hex_sig.is_empty()
        || !hex_sig
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(SignMiss::BadSignature(digest));
    }
    let tag = hex::decode(hex_sig).map_err(|_| SignMiss::BadSignature(digest))?;
    let ok = with_mac(digest, secret, key, payload, |m| m.verify(&tag)).unwrap_or(false);
    if ok {
        Ok(payload)
    } else {
        Err(SignMiss::BadSignature(digest))
    }
}

/// A log-safe rendering of an unknown digest name: at most 16 printable ASCII characters.
fn printable_prefix(name: &[u8]) -> String {
    name.iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_worked_example_bytes_under_md5() {
        let sig = signature_hex(Digest::Md5, b"test", "key", b"bytes:test").unwrap();
        assert_eq!(sig, "aa47dd7b9ec8a973cdea43bce56cd34c");
    }

    #[test]
    fn sign_then_verify() {
        let signed = sign(Digest::Sha256, b"s", "k", b"payload").unwrap();
        assert!(signed.starts_with(b"sha256:"));
        assert_eq!(
            verify(Digest::Sha256, &[], b"s", "k", &signed),
            Ok(&b"payload"[..])
        );
        assert_eq!(
            verify(Digest::Sha256, &[], b"s", "k2", &signed),
            Err(SignMiss::BadSignature(Digest::Sha256))
        );
        assert_eq!(
            verify(Digest::Md5, &[], b"s", "k", &signed),
            Err(SignMiss::NotAccepted(Digest::Sha256))
        );
        assert_eq!(
            verify(Digest::Md5, &[Digest::Sha256], b"s", "k", &signed),
            Ok(&b"payload"[..])
        );
    }
}
