//! The value codec: round trips, integer bypass, envelope, signing, compression, schema changes,
//! tampering and truncation (a miss, never a panic).

// clippy's allow-*-in-tests covers `#[test]` functions only, not the helpers here.
#![allow(clippy::unwrap_used, clippy::panic)]

mod signing;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use cashews::Error;
use cashews::codec::{CodecOptions, Compression, Digest, Format, Secret, ValueCodec};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

const SECRET: &str = "s3cr3t";

fn options(format: Format, digest: Option<Digest>, compression: Compression) -> CodecOptions {
    let mut o = CodecOptions::default();
    o.format = format;
    o.compression = compression;
    o.compress_min_size = 0;
    if let Some(d) = digest {
        o.secret = Some(Secret::new(SECRET));
        o.digest = d;
    }
    o
}

fn codec(format: Format, digest: Option<Digest>, compression: Compression) -> ValueCodec {
    ValueCodec::new(options(format, digest, compression)).unwrap()
}

fn compressions() -> Vec<Compression> {
    let mut all = vec![Compression::None];
    if cfg!(feature = "compression-gzip") {
        all.extend([Compression::Gzip, Compression::Zlib]);
    }
    if cfg!(feature = "compression-zstd") {
        all.push(Compression::Zstd);
    }
    all
}

const DIGESTS: [Option<Digest>; 4] = [
    None,
    Some(Digest::Md5),
    Some(Digest::Sha1),
    Some(Digest::Sha256),
];
const FORMATS: [Format; 2] = [Format::MsgPack, Format::Json];

/// Every {no secret, md5, sha1, sha256} × {none, gzip, zlib, zstd} × {MsgPack, JSON} codec
/// that this build supports, compressing everything.
fn all_codecs() -> Vec<(String, ValueCodec)> {
    let mut out = Vec::new();
    for digest in DIGESTS {
        for compression in compressions() {
            for format in FORMATS {
                let name = format!("{format:?}/{digest:?}/{compression:?}");
                out.push((name, codec(format, digest, compression)));
            }
        }
    }
    out
}

#[track_caller]
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    for (name, codec) in all_codecs() {
        let bytes = codec.encode("key", value).unwrap();
        let back: Option<T> = codec.decode("key", "test", &bytes);
        assert_eq!(back.as_ref(), Some(value), "{name}: {bytes:?}");
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Newtype(i32),
    Tuple(i32, String),
    Struct { w: u32, h: u32 },
}

#[test]
fn text_and_bytes_round_trip() {
    round_trip(&"test".to_owned());
    round_trip(&"1_1".to_owned());
    round_trip(&"1".to_owned());
    round_trip(&"-5".to_owned());
    round_trip(&String::new());
    round_trip(&ByteBuf::from(b"test".to_vec()));
    round_trip(&ByteBuf::from(b"0".to_vec()));
    round_trip(&ByteBuf::from(b"1_1".to_vec()));
    round_trip(&ByteBuf::from(b"1_1_1".to_vec()));
    round_trip(&ByteBuf::new());
}

#[test]
fn scalars_round_trip() {
    round_trip(&0i32);
    round_trip(&1u8);
    round_trip(&2i64);
    round_trip(&-5i64);
    round_trip(&i64::MIN);
    round_trip(&i64::MAX);
    round_trip(&u64::MAX);
    round_trip(&1.234f64);
    round_trip(&-0.5f32);
    round_trip(&true);
    round_trip(&false);
    round_trip(&());
    round_trip(&Option::<i32>::None);
    round_trip(&Some(5i32));
    round_trip(&Some("x".to_owned()));
    round_trip(&'c');
    round_trip(&u128::MAX);
}

#[test]
fn containers_and_structs_round_trip() {
    round_trip(&HashMap::from([("hi".to_owned(), true)]));
    round_trip(&User {
        id: 7,
        name: "ann".into(),
        tags: vec!["a".into(), "b".into()],
        score: Some(0.5),
    });
    round_trip(&vec![(1i32, 2i32), (3, 4)]);
    round_trip(&Vec::<i32>::new());
    round_trip(&BTreeSet::from([3i32, 1, 2]));
    round_trip(&vec![
        HashMap::from([("a".to_owned(), vec![1i32, 2])]),
        HashMap::new(),
    ]);
    round_trip(&vec![
        Shape::Unit,
        Shape::Newtype(-1),
        Shape::Tuple(2, "t".into()),
        Shape::Struct { w: 3, h: 4 },
    ]);
    round_trip(&Shape::Unit);
    round_trip(&Shape::Struct { w: 1, h: 2 });
    round_trip(&(1u8, "two".to_owned(), 3.0f64));
    round_trip(&"long text ".repeat(500));
}

#[test]
fn integers_are_plain_decimal_text_never_signed_nor_compressed() {
    for (name, codec) in all_codecs() {
        assert_eq!(&codec.encode("k", &0u8).unwrap()[..], b"0", "{name}");
        assert_eq!(&codec.encode("k", &42i16).unwrap()[..], b"42", "{name}");
        assert_eq!(&codec.encode("k", &-5i64).unwrap()[..], b"-5", "{name}");
        assert_eq!(
            &codec.encode("k", &u64::MAX).unwrap()[..],
            b"18446744073709551615"
        );
        // What Redis INCR or Python cashews wrote reads back whatever the codec.
        assert_eq!(codec.decode::<i64>("k", "test", b"-17"), Some(-17));
        assert_eq!(codec.decode::<u32>("k", "test", b"17"), Some(17));
    }
}

#[test]
fn things_that_look_like_integers_are_not_bypassed() {
    let codec = ValueCodec::new(CodecOptions::default()).unwrap();
    for bytes in [
        codec.encode("k", "1").unwrap(),
        codec.encode("k", &ByteBuf::from(b"0".to_vec())).unwrap(),
        codec.encode("k", &true).unwrap(),
        codec.encode("k", &1.0f64).unwrap(),
        codec.encode("k", &Some(1)).unwrap(),
    ] {
        assert!(bytes.starts_with(b"\xC1\xCA"), "{bytes:?}");
    }
    // Text "1" does not read as a number, and integer text does not read as text or bytes.
    let one = codec.encode("k", "1").unwrap();
    assert_eq!(codec.decode::<u32>("k", "test", &one), None);
    assert_eq!(codec.decode::<String>("k", "test", b"1"), None);
    assert_eq!(codec.decode::<ByteBuf>("k", "test", b"0"), None);
    assert_eq!(codec.decode::<bool>("k", "test", b"1"), None);
}

#[test]
fn integer_text_out_of_range_or_of_the_wrong_type_is_a_miss() {
    let codec = ValueCodec::new(CodecOptions::default()).unwrap();
    assert_eq!(codec.decode::<u8>("k", "test", b"300"), None);
    assert_eq!(codec.decode::<u32>("k", "test", b"-1"), None);
    assert_eq!(
        codec.decode::<u64>("k", "test", b"18446744073709551616"),
        None
    );
    assert_eq!(
        codec.decode::<i64>("k", "test", b"-9223372036854775809"),
        None
    );
    assert_eq!(
        codec.decode::<i64>("k", "test", b"-9223372036854775808"),
        Some(i64::MIN)
    );
    assert_eq!(codec.decode::<User>("k", "test", b"5"), None);
    assert_eq!(codec.decode::<Option<i32>>("k", "test", b"5"), None);
}

#[test]
fn envelope_header_is_exact() {
    let json = codec(Format::Json, None, Compression::None);
    assert_eq!(
        &json.encode("k", "hi").unwrap()[..],
        b"\xC1\xCA\x01\x02\x00\"hi\""
    );
    let msgpack = codec(Format::MsgPack, None, Compression::None);
    assert_eq!(
        &msgpack.encode("k", "hi").unwrap()[..],
        b"\xC1\xCA\x01\x01\x00\xA2hi"
    );
    // Structs are maps: the field names are in the data.
    let user = msgpack
        .encode(
            "k",
            &User {
                id: 1,
                name: "n".into(),
                tags: vec![],
                score: None,
            },
        )
        .unwrap();
    assert!(user.windows(4).any(|w| w == b"name"));
}

#[test]
fn unknown_version_format_or_compression_tag_is_a_miss() {
    let codec = codec(Format::Json, None, Compression::None);
    let good = codec.encode("k", "hi").unwrap().to_vec();
    assert_eq!(
        codec.decode::<String>("k", "test", &good).as_deref(),
        Some("hi")
    );
    for (at, byte) in [(2, 2u8), (2, 0), (3, 0), (3, 0x7F), (4, 0x7F)] {
        let mut bad = good.clone();
        bad[at] = byte;
        let (out, warnings) = capture(|| codec.decode::<String>("k", "test", &bad));
        assert_eq!(out, None, "byte {at} = {byte}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
    for len in 0..5 {
        assert_eq!(codec.decode::<String>("k", "test", &good[..len]), None);
    }
}

#[test]
fn a_value_written_in_one_format_reads_in_the_other() {
    let value = User {
        id: 9,
        name: "bob".into(),
        tags: vec!["x".into()],
        score: None,
    };
    for digest in DIGESTS {
        let msgpack = codec(Format::MsgPack, digest, Compression::None);
        let json = codec(Format::Json, digest, Compression::None);
        let from_msgpack = msgpack.encode("k", &value).unwrap();
        let from_json = json.encode("k", &value).unwrap();
        assert_ne!(from_msgpack, from_json);
        assert_eq!(
            json.decode::<User>("k", "test", &from_msgpack),
            Some(value.clone())
        );
        assert_eq!(
            msgpack.decode::<User>("k", "test", &from_json),
            Some(value.clone())
        );
    }
}

mod schema {
    use super::*;

    pub(super) mod v1 {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub(crate) struct Schema {
            pub(crate) test: String,
        }
    }

    pub(super) mod v2 {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub(crate) struct Schema {
            #[serde(default)]
            pub(crate) name: String,
        }
    }

    pub(super) mod renamed {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub(crate) struct Schema {
            pub(crate) title: String,
        }
    }

    #[test]
    fn an_old_struct_never_decodes_into_the_new_one() {
        for (name, codec) in all_codecs() {
            let old = codec
                .encode(
                    "k",
                    &v1::Schema {
                        test: "test".into(),
                    },
                )
                .unwrap();
            let (out, warnings) = capture(|| codec.decode::<v2::Schema>("k", "test", &old));
            assert_eq!(
                out, None,
                "{name}: a defaulted field must not hide a rename"
            );
            assert_eq!(warnings.len(), 1);
            assert!(warnings[0].contains("schema changed"), "{warnings:?}");
            assert_eq!(
                codec.decode::<renamed::Schema>("k", "test", &old),
                None,
                "{name}: missing field"
            );
            let new = codec.encode("k", &v2::Schema { name: "n".into() }).unwrap();
            assert_eq!(
                codec.decode::<v2::Schema>("k", "test", &new),
                Some(v2::Schema { name: "n".into() }),
                "{name}"
            );
        }
    }

    #[test]
    fn a_nested_extra_field_is_a_schema_change_too() {
        let codec = codec(Format::MsgPack, None, Compression::None);
        let old = codec
            .encode(
                "k",
                &vec![HashMap::from([(
                    "a".to_owned(),
                    v1::Schema { test: "t".into() },
                )])],
            )
            .unwrap();
        assert_eq!(
            codec.decode::<Vec<HashMap<String, v2::Schema>>>("k", "test", &old),
            None
        );
    }

    #[test]
    fn maps_keyed_by_tuples_are_checked_too() {
        let codec = codec(Format::MsgPack, None, Compression::None);
        let old = codec
            .encode(
                "k",
                &HashMap::from([((1u8, 2u8), v1::Schema { test: "t".into() })]),
            )
            .unwrap();
        let (out, warnings) =
            capture(|| codec.decode::<HashMap<(u8, u8), v2::Schema>>("k", "test", &old));
        assert_eq!(out, None);
        assert!(warnings[0].contains("schema changed"), "{warnings:?}");
        let new = codec
            .encode(
                "k",
                &HashMap::from([((1u8, 2u8), v2::Schema { name: "n".into() })]),
            )
            .unwrap();
        assert_eq!(
            codec.decode::<HashMap<(u8, u8), v2::Schema>>("k", "test", &new),
            Some(HashMap::from([(
                (1u8, 2u8),
                v2::Schema { name: "n".into() }
            )]))
        );
    }
}

#[test]
fn decode_warnings_never_contain_the_value() {
    let codec = codec(Format::Json, None, Compression::None);
    let stored = codec.encode("user:1", "hunter2-secret").unwrap();
    let (out, warnings) = capture(|| codec.decode::<u32>("user:1", "mem", &stored));
    assert_eq!(out, None);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("user:1"), "{warnings:?}");
    assert!(warnings[0].contains("expected u32"), "{warnings:?}");
    assert!(!warnings[0].contains("hunter2"), "{warnings:?}");
    let msgpack = self::codec(Format::MsgPack, None, Compression::None);
    let stored = msgpack.encode("user:1", "hunter2-secret").unwrap();
    let (out, warnings) = capture(|| msgpack.decode::<u32>("user:1", "mem", &stored));
    assert_eq!(out, None);
    assert!(!warnings[0].contains("hunter2"), "{warnings:?}");
    // A hit logs nothing.
    let (out, warnings) = capture(|| msgpack.decode::<String>("user:1", "mem", &stored));
    assert!(out.is_some());
    assert!(warnings.is_empty(), "{warnings:?}");
}

// ---------------------------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------------------------

#[test]
fn compression_is_recorded_and_applied_above_the_threshold_only() {
    for compression in compressions() {
        let mut opts = options(Format::Json, None, compression);
        opts.compress_min_size = 100;
        let codec = ValueCodec::new(opts).unwrap();
        let small = codec.encode("k", "short").unwrap();
        assert_eq!(small[4], 0, "{compression:?}");
        let long = "x".repeat(5000);
        let big = codec.encode("k", &long).unwrap();
        let tag = match compression {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Zlib => 2,
            _ => 3,
        };
        assert_eq!(big[4], tag, "{compression:?}");
        if compression != Compression::None {
            assert!(big.len() < 1000, "{compression:?}: {}", big.len());
        }
        assert_eq!(codec.decode::<String>("k", "test", &big), Some(long));
    }
}

#[test]
fn the_header_not_the_options_says_how_to_decompress() {
    // Python cashews misses on a compressed value read by a non-compressing cache; the tag lets
    // us read it.
    let value = "compress me ".repeat(100);
    for compression in compressions() {
        for digest in DIGESTS {
            let writer = codec(Format::MsgPack, digest, compression);
            let plain_reader = codec(Format::MsgPack, digest, Compression::None);
            let stored = writer.encode("k", &value).unwrap();
            assert_eq!(
                plain_reader.decode::<String>("k", "test", &stored),
                Some(value.clone())
            );
            let unpacked = plain_reader.encode("k", &value).unwrap();
            assert_eq!(
                writer.decode::<String>("k", "test", &unpacked),
                Some(value.clone())
            );
            for other in compressions() {
                let reader = codec(Format::Json, digest, other);
                assert_eq!(
                    reader.decode::<String>("k", "test", &stored),
                    Some(value.clone())
                );
            }
        }
    }
}

#[cfg(not(feature = "compression-zstd"))]
#[test]
fn zstd_without_its_feature_is_a_config_error() {
    let mut opts = CodecOptions::default();
    opts.compression = Compression::Zstd;
    match ValueCodec::new(opts) {
        Err(Error::FeatureDisabled { scheme, feature }) => {
            assert_eq!(scheme, "compress_type=zstd");
            assert_eq!(feature, "compression-zstd");
        }
        other => panic!("{other:?}"),
    }
    // A zstd value from a build with the feature is a miss here.
    let codec = ValueCodec::new(CodecOptions::default()).unwrap();
    let (out, warnings) =
        capture(|| codec.decode::<String>("k", "test", b"\xC1\xCA\x01\x01\x03\x28\xb5\x2f\xfd"));
    assert_eq!(out, None);
    assert!(warnings[0].contains("compression-zstd"), "{warnings:?}");
}

#[cfg(not(feature = "compression-gzip"))]
#[test]
fn gzip_without_its_feature_is_a_config_error() {
    for c in [Compression::Gzip, Compression::Zlib] {
        let mut opts = CodecOptions::default();
        opts.compression = c;
        assert!(matches!(
            ValueCodec::new(opts),
            Err(Error::FeatureDisabled {
                feature: "compression-gzip",
                ..
            })
        ));
    }
}

#[cfg(feature = "compression-gzip")]
#[test]
fn a_decompression_bomb_is_a_miss() {
    use std::io::Write;
    // 65 MiB of zeros (a JSON body would never be zeros, but the limit is checked first).
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..65 {
        enc.write_all(&chunk).unwrap();
    }
    let body = enc.finish().unwrap();
    assert!(body.len() < 1 << 20);
    let bomb = [b"\xC1\xCA\x01\x02\x02".as_slice(), &body].concat();
    let codec = codec(Format::Json, None, Compression::None);
    let (out, warnings) = capture(|| codec.decode::<String>("k", "test", &bomb));
    assert_eq!(out, None);
    assert!(
        warnings[0].contains("decompresses to more than"),
        "{warnings:?}"
    );
}

#[test]
fn truncating_a_signed_or_compressed_value_is_always_a_miss() {
    let value = User {
        id: 1,
        name: "truncate me".repeat(20),
        tags: vec!["a".into(); 10],
        score: Some(1.5),
    };
    for (name, codec) in all_codecs() {
        let o = codec.options();
        if o.secret.is_none() && o.compression == Compression::None {
            continue;
        }
        let stored = codec.encode("k", &value).unwrap();
        for len in 0..stored.len() {
            assert_eq!(
                codec.decode::<User>("k", "test", &stored[..len]),
                None,
                "{name} at {len}"
            );
        }
        let mut longer = stored.to_vec();
        longer.push(b' ');
        assert_eq!(codec.decode::<User>("k", "test", &longer), None, "{name}");
    }
}

#[test]
fn trailing_bytes_after_an_uncompressed_body_are_a_miss() {
    for format in FORMATS {
        let codec = codec(format, None, Compression::None);
        let mut stored = codec.encode("k", "v").unwrap().to_vec();
        stored.push(b'!');
        assert_eq!(codec.decode::<String>("k", "test", &stored), None);
    }
}

#[test]
fn deeply_nested_bodies_are_a_miss_not_a_stack_overflow() {
    // Run on a thread with a known (default-sized) stack, as a Tokio worker would.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let codec = ValueCodec::new(CodecOptions::default()).unwrap();
            let msgpack = [
                b"\xC1\xCA\x01\x01\x00".as_slice(),
                &[0x91; 100_000],
                &[0xC0],
            ]
            .concat();
            let json = [b"\xC1\xCA\x01\x02\x00".as_slice(), &[b'['; 100_000]].concat();
            for bytes in [msgpack, json] {
                assert_eq!(codec.decode::<serde_json::Value>("k", "test", &bytes), None);
            }
            // 100 levels are fine.
            let nested = [&[0x91; 100][..], &[0xC0]].concat();
            let bytes = [b"\xC1\xCA\x01\x01\x00".as_slice(), &nested].concat();
            assert!(
                codec
                    .decode::<serde_json::Value>("k", "test", &bytes)
                    .is_some()
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Encode errors
// ---------------------------------------------------------------------------------------------

struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot"))
    }
}

#[test]
fn serializer_failures_are_encode_errors() {
    for format in FORMATS {
        let codec = codec(format, None, Compression::None);
        match codec.encode("the-key", &Unserializable) {
            Err(Error::Encode { key, .. }) => assert_eq!(key, "the-key"),
            other => panic!("{other:?}"),
        }
    }
    // JSON maps need string keys.
    let json = codec(Format::Json, None, Compression::None);
    let map = HashMap::from([((1, 2), 3)]);
    assert!(matches!(json.encode("k", &map), Err(Error::Encode { .. })));
    // MessagePack does not.
    let msgpack = codec(Format::MsgPack, None, Compression::None);
    let stored = msgpack.encode("k", &map).unwrap();
    assert_eq!(msgpack.decode("k", "test", &stored), Some(map));
}

// ---------------------------------------------------------------------------------------------
// Properties: decode never panics, and signed values never decode to something else
// ---------------------------------------------------------------------------------------------

fn fuzz_codecs() -> Vec<ValueCodec> {
    let mut out = vec![
        codec(Format::MsgPack, None, Compression::None),
        codec(Format::Json, Some(Digest::Md5), Compression::None),
    ];
    for c in compressions() {
        out.push(codec(Format::MsgPack, None, c));
        out.push(codec(Format::Json, Some(Digest::Sha256), c));
    }
    out
}

/// Decodes `bytes` as several types; only checks that nothing panics.
fn decode_all(codec: &ValueCodec, bytes: &[u8]) {
    let _ = codec.decode::<String>("k", "fuzz", bytes);
    let _ = codec.decode::<u64>("k", "fuzz", bytes);
    let _ = codec.decode::<i8>("k", "fuzz", bytes);
    let _ = codec.decode::<ByteBuf>("k", "fuzz", bytes);
    let _ = codec.decode::<User>("k", "fuzz", bytes);
    let _ = codec.decode::<Shape>("k", "fuzz", bytes);
    let _ = codec.decode::<HashMap<String, Vec<Option<f64>>>>("k", "fuzz", bytes);
    let _ = codec.decode::<()>("k", "fuzz", bytes);
    let _ = codec.decode::<serde_json::Value>("k", "fuzz", bytes);
}

fn header() -> impl Strategy<Value = Vec<u8>> {
    (0u8..4, 0u8..4, 0u8..5).prop_map(|(v, f, c)| vec![0xC1, 0xCA, v, f, c])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for codec in fuzz_codecs() {
            decode_all(&codec, &bytes);
        }
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        head in header(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes = [head, body].concat();
        for codec in fuzz_codecs() {
            decode_all(&codec, &bytes);
        }
    }

    #[test]
    fn tampering_gives_a_miss_or_the_original(
        id in any::<u64>(),
        name in ".{0,40}",
        index in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        cut in any::<prop::sample::Index>(),
    ) {
        let value = User { id, name, tags: vec!["t".into()], score: None };
        for (label, codec) in all_codecs() {
            let stored = codec.encode("k", &value).unwrap();
            let mut flipped = stored.to_vec();
            let i = index.index(flipped.len());
            flipped[i] ^= mask;
            let out = codec.decode::<User>("k", "fuzz", &flipped);
            decode_all(&codec, &flipped);
            let truncated = &stored[..cut.index(stored.len())];
            decode_all(&codec, truncated);
            if codec.options().secret.is_some() {
                prop_assert!(out.is_none() || out.as_ref() == Some(&value), "{}", label);
                prop_assert_eq!(codec.decode::<User>("k", "fuzz", truncated), None);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Capturing warnings
// ---------------------------------------------------------------------------------------------

/// Runs `f` with a subscriber that records every WARN event as `field=value ...` text.
fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    use tracing_subscriber::layer::SubscriberExt;
    let events = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Recorder(Arc::clone(&events)));
    let out = tracing::subscriber::with_default(subscriber, f);
    let events = events.lock().unwrap().clone();
    (out, events)
}

struct Recorder(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push_str(&format!("{}={value} ", field.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
}
