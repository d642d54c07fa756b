//! Signing: Python cashews' layout, tampering, digest migration, and integer text on a signed
//! cache.

use cashews::codec::{Compression, Digest, Format, Secret, ValueCodec};
use serde::Deserialize;

use super::{FORMATS, SECRET, capture, codec, compressions, options};

fn hmac_md5_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<md5::Md5>::new_from_slice(secret).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn signing_function_matches_python_cashews() {
    // SPEC §5.5: b"test" under key "key" and secret "test" is stored as
    // md5:aa47dd7b9ec8a973cdea43bce56cd34c_bytes:test.
    let sig = Digest::Md5
        .sign(&Secret::new("test"), "key", b"bytes:test")
        .unwrap();
    assert_eq!(sig, "aa47dd7b9ec8a973cdea43bce56cd34c");
    assert_eq!(sig, hmac_md5_hex(b"test", &[b"key", b"bytes:test"]));
}

#[test]
fn signed_layout_is_digest_colon_hex_underscore_payload() {
    for compression in compressions() {
        for format in FORMATS {
            let plain = codec(format, None, compression);
            let signed = codec(format, Some(Digest::Md5), compression);
            let payload = plain.encode("k1", "hello").unwrap();
            let stored = signed.encode("k1", "hello").unwrap();
            let expected = [
                b"md5:".as_slice(),
                hmac_md5_hex(SECRET.as_bytes(), &[b"k1", &payload]).as_bytes(),
                b"_",
                &payload,
            ]
            .concat();
            assert_eq!(&stored[..], &expected[..], "{format:?}/{compression:?}");
        }
    }
    for (digest, name, hex_len) in [(Digest::Sha1, "sha1:", 40), (Digest::Sha256, "sha256:", 64)] {
        let stored = codec(Format::Json, Some(digest), Compression::None)
            .encode("k", "v")
            .unwrap();
        assert!(stored.starts_with(name.as_bytes()));
        assert_eq!(stored[name.len() + hex_len], b'_');
    }
}

#[test]
fn legacy_signature_without_digest_name_uses_the_configured_digest() {
    let plain = codec(Format::Json, None, Compression::None);
    let signed = codec(Format::Json, Some(Digest::Md5), Compression::None);
    let payload = plain.encode("k", "v").unwrap();
    let sig = Digest::Md5
        .sign(&Secret::new(SECRET), "k", &payload)
        .unwrap();
    let stored = [sig.as_bytes(), b"_", &payload].concat();
    assert_eq!(
        signed.decode::<String>("k", "test", &stored).as_deref(),
        Some("v")
    );
}

#[test]
fn tampered_signed_values_are_a_miss_with_a_warning() {
    let codec = codec(Format::Json, Some(Digest::Md5), Compression::None);
    let good = codec.encode("k", "hunter2-value").unwrap().to_vec();
    let sep = good.iter().position(|&b| b == b'_').unwrap();
    let payload = &good[sep + 1..];
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    let mut upper = good.clone();
    upper[4..sep].make_ascii_uppercase();
    let sha256 = Digest::Sha256
        .sign(&Secret::new(SECRET), "k", payload)
        .unwrap();
    let md5_hex = std::str::from_utf8(&good[4..sep]).unwrap().to_owned();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("no separator", b"md5abc".to_vec()),
        (":_x", b":_x".to_vec()),
        ("md5:_x", b"md5:_x".to_vec()),
        ("sha1:_x", b"sha1:_x".to_vec()),
        ("__x", b"__x".to_vec()),
        ("_x", b"_x".to_vec()),
        ("unknown digest", [b"zzz:abc_".as_slice(), payload].concat()),
        ("sum digest", [b"sum:40a_".as_slice(), payload].concat()),
        (
            "right hex, wrong digest name",
            [b"sha1:", md5_hex.as_bytes(), b"_", payload].concat(),
        ),
        (
            "digest not accepted",
            [b"sha256:", sha256.as_bytes(), b"_", payload].concat(),
        ),
        ("empty signature", [b"md5:_".as_slice(), payload].concat()),
        ("flipped payload byte", flipped),
        ("uppercase hex", upper),
        ("unsigned", payload.to_vec()),
    ];
    for (what, bytes) in cases {
        let (out, warnings) = capture(|| codec.decode::<String>("k", "test", &bytes));
        assert_eq!(out, None, "{what}");
        assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
        assert!(warnings[0].contains("key=k "), "{what}: {warnings:?}");
        assert!(warnings[0].contains("backend=test"), "{what}: {warnings:?}");
        assert!(!warnings[0].contains("hunter2"), "{what}: {warnings:?}");
    }
    let (out, warnings) = capture(|| codec.decode::<String>("other", "test", &good));
    assert_eq!(out, None, "copied to another key");
    assert!(warnings[0].contains("tampered"), "{warnings:?}");
    assert_eq!(
        codec.decode::<String>("k", "test", &good).as_deref(),
        Some("hunter2-value")
    );
}

#[test]
fn accept_digests_allows_a_migration() {
    let old = codec(Format::MsgPack, Some(Digest::Md5), Compression::None);
    let stored = old.encode("k", "v").unwrap();
    let new = codec(Format::MsgPack, Some(Digest::Sha256), Compression::None);
    assert_eq!(new.decode::<String>("k", "test", &stored), None);
    let mut opts = options(Format::MsgPack, Some(Digest::Sha256), Compression::None);
    opts.accept_digests = vec![Digest::Md5];
    let migrating = ValueCodec::new(opts).unwrap();
    assert_eq!(
        migrating.decode::<String>("k", "test", &stored).as_deref(),
        Some("v")
    );
    assert!(migrating.encode("k", "v").unwrap().starts_with(b"sha256:"));
}

#[test]
fn signed_and_unsigned_do_not_mix() {
    let plain = codec(Format::MsgPack, None, Compression::None);
    let signed = codec(Format::MsgPack, Some(Digest::Sha256), Compression::None);
    let s = signed.encode("k", "v").unwrap();
    let p = plain.encode("k", "v").unwrap();
    let (out, warnings) = capture(|| plain.decode::<String>("k", "test", &s));
    assert_eq!(out, None);
    assert!(warnings[0].contains("signed"), "{warnings:?}");
    let (out, warnings) = capture(|| signed.decode::<String>("k", "test", &p));
    assert_eq!(out, None);
    assert!(warnings[0].contains("not signed"), "{warnings:?}");
    // A different secret is a different signature.
    let mut other = options(Format::MsgPack, Some(Digest::Sha256), Compression::None);
    other.secret = Some(Secret::new("another"));
    let other = ValueCodec::new(other).unwrap();
    assert_eq!(other.decode::<String>("k", "test", &s), None);
}

#[test]
fn signed_codecs_read_integer_text_only_as_integer_types() {
    let signed = codec(Format::MsgPack, Some(Digest::Sha256), Compression::None);
    let plain = codec(Format::MsgPack, None, Compression::None);
    // Counters (never signed) read on a signed codec as every integer type that fits.
    assert_eq!(signed.decode::<i64>("k", "test", b"-3"), Some(-3));
    assert_eq!(signed.decode::<u8>("k", "test", b"7"), Some(7));
    assert_eq!(signed.decode::<u64>("k", "test", b"0"), Some(0));
    assert_eq!(signed.decode::<u8>("k", "test", b"300"), None);
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(transparent)]
    struct Hits(u32);
    assert_eq!(signed.decode::<Hits>("k", "test", b"9"), Some(Hits(9)));
    // Anything else that would accept an integer is a miss with a warning.
    let (out, warnings) = capture(|| signed.decode::<f64>("k", "test", b"0"));
    assert_eq!(out, None);
    assert!(warnings[0].contains("integer"), "{warnings:?}");
    assert_eq!(signed.decode::<serde_json::Value>("k", "test", b"1"), None);
    assert_eq!(signed.decode::<u128>("k", "test", b"1"), None);
    assert_eq!(signed.decode::<i128>("k", "test", b"-1"), None);
    assert_eq!(signed.decode::<f32>("k", "test", b"1"), None);
    assert_eq!(signed.decode::<Option<i64>>("k", "test", b"1"), None);
    assert_eq!(signed.decode::<String>("k", "test", b"1"), None);
    // Without a secret nothing is signed, and integer text reads as any type that takes it.
    assert_eq!(plain.decode::<f64>("k", "test", b"0"), Some(0.0));
    assert_eq!(
        plain.decode::<serde_json::Value>("k", "test", b"1"),
        Some(serde_json::json!(1))
    );
    assert_eq!(plain.decode::<u128>("k", "test", b"1"), Some(1));
}

/// On every backend with a secret, an unsigned `0` written over a signed value is a miss for
/// every type but the integer ones.
async fn unsigned_integer_text_is_a_miss_on_a_signed_cache(url: &str, prefix: &str) {
    let cache = cashews::Cache::new();
    cache.setup(url).unwrap();
    let key = |name: &str| format!("{prefix}{name}");
    cache.set(&key("price"), &9.99_f64, 60).await.unwrap();
    assert_eq!(cache.get::<f64>(&key("price")).await.unwrap(), Some(9.99));
    cache
        .set_raw(&key("price"), cashews::Bytes::from_static(b"0"), 60)
        .await
        .unwrap();
    assert_eq!(cache.get::<f64>(&key("price")).await.unwrap(), None);
    cache
        .set(&key("doc"), &serde_json::json!({"a": 1}), 60)
        .await
        .unwrap();
    cache
        .set_raw(&key("doc"), cashews::Bytes::from_static(b"1"), 60)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<serde_json::Value>(&key("doc")).await.unwrap(),
        None
    );
    cache.set(&key("big"), &(u128::MAX), 60).await.unwrap();
    cache
        .set_raw(&key("big"), cashews::Bytes::from_static(b"1"), 60)
        .await
        .unwrap();
    assert_eq!(cache.get::<u128>(&key("big")).await.unwrap(), None);
    // The integer commands' own values still read as integers.
    assert_eq!(cache.incr(&key("hits")).await.unwrap(), 1);
    assert_eq!(cache.get::<i64>(&key("hits")).await.unwrap(), Some(1));
    assert_eq!(cache.get::<u32>(&key("hits")).await.unwrap(), Some(1));
    assert_eq!(cache.get::<f64>(&key("hits")).await.unwrap(), None);
    cache.delete_match(&format!("{prefix}*")).await.unwrap();
}

#[tokio::test]
async fn signed_mem_reads_integer_text_only_as_integers() {
    unsigned_integer_text_is_a_miss_on_a_signed_cache("mem://?secret=k", "signed-int:").await;
}

#[cfg(feature = "disk")]
#[tokio::test]
async fn signed_disk_reads_integer_text_only_as_integers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("disk://?directory={}&secret=k", dir.path().display());
    unsigned_integer_text_is_a_miss_on_a_signed_cache(&url, "signed-int:").await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn signed_redis_reads_integer_text_only_as_integers() {
    let prefix = crate::support::unique_prefix("signed-int");
    let url = format!("{}?secret=k", crate::support::redis_url());
    let probe = cashews::Cache::new();
    probe.setup(&url).unwrap();
    if let Err(e) = probe.ping().await {
        cashews_testkit::skip_unless_ci::<()>("signed_redis", &e.to_string());
        return;
    }
    unsigned_integer_text_is_a_miss_on_a_signed_cache(&url, &prefix).await;
}
