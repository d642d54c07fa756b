//! Value codec: serde format, optional compression, optional HMAC signature bound to the key.
//!
//! Every value stored through a [`Cache`](crate::Cache) goes through this codec, configured per
//! backend by [`CodecOptions`]. [`ValueCodec`] exposes the same codec to custom backends and
//! tools.
//!
//! # Write pipeline
//!
//! 1. **Integers bypass everything.** A value that serializes as one integer (`i8`..`i64`,
//!    `u8`..`u64`; not `bool`, floats, `i128`/`u128`, `Option`s or newtype structs) is stored as
//!    its decimal text: `0`, `42`, `-5`. It is never compressed nor signed, so Redis `INCR` and
//!    Python cashews read and update it.
//! 2. **Serialize** with the configured [`Format`]: MessagePack with structs as maps (field names
//!    are in the data), or JSON.
//! 3. **Compress** the body with the configured [`Compression`] when it is at least
//!    [`CodecOptions::compress_min_size`] bytes (and at most [`MAX_DECOMPRESSED_SIZE`], so that
//!    every compressed value can be read back).
//! 4. **Envelope**: prepend the 5-byte header below.
//! 5. **Sign** when a [`Secret`] is set.
//!
//! # Wire layout
//!
//! ## Integers
//!
//! An optional `-` followed by ASCII digits, fitting `i64` (negative) or `u64`. Nothing else.
//!
//! ## Envelope (every other value)
//!
//! | Offset | Size | Field | Values |
//! | --- | --- | --- | --- |
//! | 0 | 2 | magic | `C1 CA` |
//! | 2 | 1 | envelope version | `01` |
//! | 3 | 1 | format | `01` MessagePack, `02` JSON |
//! | 4 | 1 | compression | `00` none, `01` gzip, `02` zlib, `03` zstd |
//! | 5 | rest | body | the serialized value, compressed as byte 4 says |
//!
//! The byte `0xC1` never occurs in UTF-8 text and is the one byte MessagePack never uses, so an
//! envelope is never all digits (text `"1"` stays text, bytes `b"0"` stay bytes), never valid
//! JSON, never a pickle (those start with `0x80`) and never a signed value (those start with an
//! ASCII digest name). It also makes the key/payload boundary of a signature unambiguous: no
//! UTF-8 key can end inside the magic.
//!
//! Examples:
//!
//! | Value | Options | Stored bytes (hex) |
//! | --- | --- | --- |
//! | `42u32` | any | `34 32` (the text `42`) |
//! | `"hi"` | JSON | `C1 CA 01 02 00` `22 68 69 22` (`"hi"`) |
//! | `"hi"` | MessagePack | `C1 CA 01 01 00` `A2 68 69` |
//! | `"hi"` | JSON, zlib, `compress_min_size = 0` | `C1 CA 01 02 02` `78 9C …` |
//!
//! ```
//! use cashews::codec::{CodecOptions, Format, ValueCodec};
//! let mut options = CodecOptions::default();
//! options.format = Format::Json;
//! let codec = ValueCodec::new(options)?;
//! assert_eq!(&codec.encode("k", "hi")?[..], b"\xC1\xCA\x01\x02\x00\"hi\"");
//! assert_eq!(&codec.encode("k", &42u32)?[..], b"42");
//! # Ok::<(), cashews::Error>(())
//! ```
//!
//! ## Signed values (with a secret)
//!
//! ```text
//! <digest name ASCII> ":" <lowercase hex HMAC> "_" <envelope>
//! ```
//!
//! The digest name is `md5`, `sha1` or `sha256`; the HMAC's key is the secret's bytes and its
//! message is the cache key's UTF-8 bytes followed by the envelope, so a value copied to another
//! key fails verification. This is Python cashews' layout: with secret `s3cr3t`, key `k1` and
//! MD5, the JSON string `"hi"` is stored as
//! `md5:f4333e38749594e4808981d752109bdc_` followed by `C1 CA 01 02 00 22 68 69 22`.
//!
//! ```
//! use cashews::codec::{CodecOptions, Digest, Format, Secret, ValueCodec};
//! let mut options = CodecOptions::default();
//! options.format = Format::Json;
//! options.secret = Some(Secret::new("s3cr3t"));
//! options.digest = Digest::Md5;
//! let codec = ValueCodec::new(options)?;
//! let stored = codec.encode("k1", "hi")?;
//! assert_eq!(
//!     &stored[..],
//!     b"md5:f4333e38749594e4808981d752109bdc_\xC1\xCA\x01\x02\x00\"hi\""
//! );
//! assert_eq!(codec.decode::<String>("k1", "mem", &stored).as_deref(), Some("hi"));
//! assert_eq!(codec.decode::<String>("k2", "mem", &stored), None); // copied to another key
//! # Ok::<(), cashews::Error>(())
//! ```
//!
//! # Read pipeline: everything unexpected is a miss
//!
//! Decoding never fails and never panics: each problem below makes the read a **miss** (`None`)
//! and logs one `tracing::warn!` with the key, the backend, the requested type and the reason,
//! never the value.
//!
//! - Integer text that does not fit `i64`/`u64`, or a `T` that does not read an integer. With
//!   a secret, integer text (the one unsigned value a signed cache reads: `incr` counters) reads
//!   only as the integer types `i8`..`i64` and `u8`..`u64`; as any other type (`f64`, `u128`,
//!   `serde_json::Value`, `Option<i64>`) it is a miss, so an unsigned `0` written over a signed
//!   price never reads as `0.0`.
//! - With a secret: a value that is not signed; no `_`; a digest name other than the configured
//!   [`CodecOptions::digest`] and [`CodecOptions::accept_digests`] (the stored value does not
//!   get to pick a weaker digest); a signature that is empty, not lowercase hex, or wrong
//!   (tampered payload, value copied from another key). A signature part without `:` is Python's
//!   legacy layout and is checked with the configured digest.
//! - Without a secret: a signed value.
//! - No magic, a short header, an unknown envelope version, format tag or compression tag: a
//!   value written by a newer version of cashews is a miss for an older one, never garbage.
//! - A compression whose cargo feature is off in this build; a corrupt or truncated compressed
//!   body; bytes after its end; a body that would decompress to more than
//!   [`MAX_DECOMPRESSED_SIZE`].
//! - A body that does not deserialize as `T`: wrong type, missing field, trailing bytes, and
//!   **schema changes**: a stored field that `T` does not have (a renamed field, even one that
//!   `T` would fill with `#[serde(default)]`) would be silently dropped, so it is a miss too,
//!   at any depth (inside options, sequences, enum variants, and maps whatever their keys).
//!   A field that is serialized but marked `#[serde(skip_deserializing)]` is such a
//!   stored-but-ignored field: mark it `#[serde(skip)]` instead, or every read of that type is
//!   a miss.
//!   The schema check guards values that outlive the code that wrote them (Redis, disk); a
//!   `Cache` skips it on `mem://` routes, whose values die with the process, and saves about a
//!   third of a decode there.
//!
//! The header, not the codec's options, says how to read a body: a JSON codec reads MessagePack
//! values, and a codec configured without compression reads compressed values (Python cashews
//! misses on those), as long as the build has the compression's feature.
//!
//! # Compatibility with Python cashews
//!
//! Integers and the signature layout are shared. Python's pickled values are not readable (they
//! are a miss), and Python cannot read enveloped values.

mod body;
mod compress;
mod envelope;
mod ignored;
mod int;
mod miss;
mod sign;

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, shorten};

use self::body::deserialize;
use self::envelope::{EnvelopeMiss, Header};
use self::miss::Miss;

/// The largest body a compressed value may decompress to (64 MiB); a larger one is a miss.
///
/// This bounds the memory a small hostile value can claim. Bodies larger than this are stored
/// uncompressed whatever the options say, so that they can still be read.
///
/// ```
/// assert_eq!(cashews::codec::MAX_DECOMPRESSED_SIZE, 64 * 1024 * 1024);
/// ```
pub const MAX_DECOMPRESSED_SIZE: usize = 64 * 1024 * 1024;

/// The serde format of cached values.
///
/// The format a value was written in is recorded in its envelope, so a codec reads both formats
/// whatever it is configured to write.
///
/// ```
/// assert_eq!(cashews::codec::Format::default(), cashews::codec::Format::MsgPack);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Format {
    /// MessagePack (rmp-serde, structs as maps): self-describing, compact. The default.
    #[default]
    MsgPack,
    /// JSON (serde_json): readable, shareable with other languages.
    Json,
}

impl Format {
    /// The format's short name: `msgpack` or `json`.
    ///
    /// ```
    /// assert_eq!(cashews::codec::Format::Json.name(), "json");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::MsgPack => "msgpack",
            Self::Json => "json",
        }
    }
}

/// The signature algorithm used with a secret.
///
/// ```
/// assert_eq!(cashews::codec::Digest::default(), cashews::codec::Digest::Sha256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Digest {
    /// HMAC-SHA256. The default.
    #[default]
    Sha256,
    /// HMAC-SHA1, for parity with Python cashews.
    Sha1,
    /// HMAC-MD5, Python cashews' default, for parity.
    Md5,
}

impl Digest {
    /// The name written before the signature, as in Python cashews: `md5`, `sha1` or `sha256`.
    ///
    /// ```
    /// assert_eq!(cashews::codec::Digest::Md5.name(), "md5");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha1 => "sha1",
            Self::Md5 => "md5",
        }
    }

    /// The digest named `name` in a signed value, if it is one of ours.
    fn from_name_bytes(name: &[u8]) -> Option<Self> {
        match name {
            b"sha256" => Some(Self::Sha256),
            b"sha1" => Some(Self::Sha1),
            b"md5" => Some(Self::Md5),
            _ => None,
        }
    }

    /// The lowercase hex HMAC of `key`'s UTF-8 bytes followed by `payload`, keyed by `secret`:
    /// the signature that a signed value carries before its `_`.
    ///
    /// This is the same function as Python cashews' signer, so tools can check or produce
    /// signatures for either side.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if the MAC refuses the secret; HMAC accepts secrets of any
    /// length, so this does not happen.
    ///
    /// ```
    /// use cashews::codec::{Digest, Secret};
    /// let sig = Digest::Md5.sign(&Secret::new("test"), "key", b"bytes:test")?;
    /// assert_eq!(sig, "aa47dd7b9ec8a973cdea43bce56cd34c");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn sign(self, secret: &Secret, key: &str, payload: &[u8]) -> Result<String> {
        sign::signature_hex(self, secret.as_bytes(), key, payload).ok_or_else(refused_secret)
    }
}

fn refused_secret() -> Error {
    Error::InvalidOption {
        option: "secret".to_owned(),
        value: "***".to_owned(),
        expected: "a secret the HMAC accepts".to_owned(),
    }
}

/// Compression applied to encoded values above a size threshold.
///
/// The compression a value was written with is recorded in its envelope: any codec of a build
/// with the right feature reads it, whatever compression it is configured to write.
///
/// ```
/// assert_eq!(cashews::codec::Compression::default(), cashews::codec::Compression::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// No compression. The default.
    #[default]
    None,
    /// gzip (feature `compression-gzip`).
    Gzip,
    /// zlib (feature `compression-gzip`).
    Zlib,
    /// zstd (feature `compression-zstd`).
    Zstd,
}

impl Compression {
    /// The `compress_type` value naming this compression: `null`, `gzip`, `zlib` or `zstd`.
    ///
    /// ```
    /// assert_eq!(cashews::codec::Compression::Zstd.name(), "zstd");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "null",
            Self::Gzip => "gzip",
            Self::Zlib => "zlib",
            Self::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress with it (its cargo feature is on).
    ///
    /// ```
    /// assert!(cashews::codec::Compression::None.is_available());
    /// ```
    #[must_use]
    pub fn is_available(self) -> bool {
        compress::missing_feature(self).is_none()
    }
}

/// A signing secret. Its `Debug` never shows the secret.
///
/// ```
/// let s = cashews::codec::Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    ///
    /// ```
    /// let _ = cashews::codec::Secret::new("k");
    /// ```
    #[must_use]
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How values are encoded: format, signing, compression.
///
/// ```
/// let opts = cashews::codec::CodecOptions::default();
/// assert!(opts.secret.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodecOptions {
    /// The serde format.
    pub format: Format,
    /// Signing secret; `None` disables signing.
    pub secret: Option<Secret>,
    /// The digest used to sign, and the only one accepted on read besides `accept_digests`.
    pub digest: Digest,
    /// Extra digests accepted on read, to migrate from one digest to another.
    pub accept_digests: Vec<Digest>,
    /// The compression algorithm.
    pub compression: Compression,
    /// Values whose serialized size is below this many bytes are not compressed.
    pub compress_min_size: usize,
}

impl Default for CodecOptions {
    fn default() -> Self {
        Self {
            format: Format::MsgPack,
            secret: None,
            digest: Digest::Sha256,
            accept_digests: Vec::new(),
            compression: Compression::None,
            compress_min_size: 1024,
        }
    }
}

/// A standalone value codec: the one every [`Cache`](crate::Cache) backend uses, for custom
/// backends and tools that read or write cached values themselves.
///
/// Cloning is cheap enough for setup code (it clones the options).
///
/// ```
/// use cashews::codec::{CodecOptions, ValueCodec};
/// let codec = ValueCodec::new(CodecOptions::default())?;
/// let bytes = codec.encode("user:1", &vec!["a", "b"])?;
/// let back: Option<Vec<String>> = codec.decode("user:1", "tool", &bytes);
/// assert_eq!(back, Some(vec!["a".to_owned(), "b".to_owned()]));
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ValueCodec {
    inner: Codec,
}

impl ValueCodec {
    /// Builds a codec from its options.
    ///
    /// # Errors
    ///
    /// [`Error::FeatureDisabled`] when the chosen compression's cargo feature is off.
    ///
    /// ```
    /// let codec = cashews::codec::ValueCodec::new(Default::default())?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn new(options: CodecOptions) -> Result<Self> {
        Ok(Self {
            inner: Codec::new(options)?,
        })
    }

    /// Encodes `value` for storage under `key` (the key matters only for signing).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the value cannot be serialized in the configured format (for
    /// example a map with non-string keys in JSON).
    ///
    /// ```
    /// let codec = cashews::codec::ValueCodec::new(Default::default())?;
    /// assert_eq!(&codec.encode("hits", &7u64)?[..], b"7");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        self.inner.encode(key, value)
    }

    /// Decodes bytes stored under `key`; `None` (a miss) for anything that is not a valid value
    /// of type `T` for this codec, with one `tracing::warn!` naming `key` and `backend`.
    ///
    /// # Panics
    ///
    /// Never, whatever the bytes.
    ///
    /// ```
    /// let codec = cashews::codec::ValueCodec::new(Default::default())?;
    /// let bytes = codec.encode("k", "text")?;
    /// assert_eq!(codec.decode::<String>("k", "tool", &bytes).as_deref(), Some("text"));
    /// assert_eq!(codec.decode::<u32>("k", "tool", &bytes), None); // wrong type: a miss
    /// assert_eq!(codec.decode::<String>("k", "tool", b"garbage"), None);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn decode<T: DeserializeOwned>(
        &self,
        key: &str,
        backend: &'static str,
        bytes: &[u8],
    ) -> Option<T> {
        self.inner.decode(key, backend, bytes)
    }

    /// The options this codec was built with.
    ///
    /// ```
    /// let codec = cashews::codec::ValueCodec::new(Default::default())?;
    /// assert_eq!(codec.options().compress_min_size, 1024);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn options(&self) -> &CodecOptions {
        self.inner.options()
    }
}

/// The codec built from [`CodecOptions`].
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    options: CodecOptions,
    /// Whether to refuse values with fields the reader's type would ignore (code-change
    /// safety). Off for in-process backends: their values cannot outlive the code that wrote
    /// them.
    check_schema: bool,
    /// An identity, so a decoded object kept by the memory backend only serves reads through
    /// this very codec (same secret, same checks).
    id: u64,
}

impl Codec {
    pub(crate) fn new(options: CodecOptions) -> Result<Self> {
        if let Some(feature) = compress::missing_feature(options.compression) {
            return Err(Error::FeatureDisabled {
                scheme: format!("compress_type={}", options.compression.name()),
                feature,
            });
        }
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Self {
            options,
            check_schema: true,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The same codec for a backend that lives in this process (`mem://`): values there cannot
    /// have been written by another version of the code, so the schema-change check, which
    /// costs about a third of a decode, is skipped.
    pub(crate) fn in_process(mut self) -> Self {
        self.check_schema = false;
        self
    }

    pub(crate) const fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn options(&self) -> &CodecOptions {
        &self.options
    }

    pub(crate) fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(key, value, &mut out)?;
        Ok(Bytes::from(out))
    }

    /// [`Codec::encode`] into `out` (cleared first), so a caller that copies the bytes anyway
    /// (the memory backend) can reuse one buffer instead of allocating one per write.
    pub(crate) fn encode_into<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.clear();
        if let Some(text) = int::probe(value) {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
        let encode_error = |source: crate::error::BoxError| Error::Encode {
            key: shorten(key),
            source,
        };
        let format = self.options.format;
        // Serialize straight after a header, so an uncompressed value is written once.
        envelope::write_header(
            out,
            Header {
                format,
                compression: Compression::None,
            },
        );
        match format {
            Format::MsgPack => {
                rmp_serde::encode::write_named(out, value)
                    .map_err(|e| encode_error(Box::new(e)))?;
            }
            Format::Json => {
                serde_json::to_writer(&mut *out, value).map_err(|e| encode_error(Box::new(e)))?;
            }
        }
        let body_len = out.len() - envelope::HEADER_LEN;
        let wanted = self.options.compression;
        if wanted != Compression::None
            && body_len >= self.options.compress_min_size
            && body_len <= MAX_DECOMPRESSED_SIZE
        {
            let packed = compress::compress(wanted, &out[envelope::HEADER_LEN..])
                .map_err(|e| encode_error(Box::new(e)))?;
            out.clear();
            envelope::write_header(
                out,
                Header {
                    format,
                    compression: wanted,
                },
            );
            out.extend_from_slice(&packed);
        }
        let Some(secret) = &self.options.secret else {
            return Ok(());
        };
        *out = sign::sign(self.options.digest, secret.as_bytes(), key, out)
            .ok_or_else(refused_secret)?;
        Ok(())
    }

    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        key: &str,
        backend: &'static str,
        bytes: &[u8],
    ) -> Option<T> {
        match self.try_decode(key, bytes) {
            Ok(value) => Some(value),
            Err(reason) => {
                tracing::warn!(
                    key = %shorten(key),
                    backend,
                    value_type = std::any::type_name::<T>(),
                    %reason,
                    "cached value not usable: read as a miss"
                );
                None
            }
        }
    }

    fn try_decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T, Miss> {
        if int::looks_like_integer(bytes) {
            // Counters are never signed, so on a signed cache integer text is the one value
            // read without a signature: only as an integer type, never as a float, a `u128`
            // or a `serde_json::Value` that a signed value of that type was replaced with.
            return int::decode(bytes, self.options.secret.is_some()).map_err(Miss::Int);
        }
        let payload = match &self.options.secret {
            Some(_) if bytes.starts_with(&envelope::MAGIC) => return Err(Miss::Unsigned),
            Some(secret) => sign::verify(
                self.options.digest,
                &self.options.accept_digests,
                secret.as_bytes(),
                key,
                bytes,
            )
            .map_err(Miss::Sign)?,
            None => bytes,
        };
        let (header, body) = envelope::unwrap(payload).map_err(|e| match e {
            EnvelopeMiss::NoMagic if looks_signed(payload) => Miss::SignedWithoutSecret,
            other => Miss::Envelope(other),
        })?;
        let body: Cow<'_, [u8]> = match header.compression {
            Compression::None => Cow::Borrowed(body),
            other => Cow::Owned(
                compress::decompress(other, body, MAX_DECOMPRESSED_SIZE)
                    .map_err(|e| Miss::Compress(other, e))?,
            ),
        };
        deserialize(header.format, &body, self.check_schema)
    }
}

/// Whether `bytes` starts like a signed value (`md5:`, `sha1:`, `sha256:`).
fn looks_signed(bytes: &[u8]) -> bool {
    [Digest::Md5, Digest::Sha1, Digest::Sha256]
        .iter()
        .any(|d| bytes.starts_with(d.name().as_bytes()) && bytes.get(d.name().len()) == Some(&b':'))
}
