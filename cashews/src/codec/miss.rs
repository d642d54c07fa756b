//! Why a stored value was read as a miss, worded for the log.

use std::fmt;

use super::compress::CompressMiss;
use super::envelope::EnvelopeMiss;
use super::int::IntMiss;
use super::sign::SignMiss;
use super::{Compression, Format, MAX_DECOMPRESSED_SIZE};

/// Why a stored value was read as a miss. `Display` never includes the value.
#[derive(Debug)]
pub(super) enum Miss {
    Int(IntMiss),
    Unsigned,
    SignedWithoutSecret,
    Sign(SignMiss),
    Envelope(EnvelopeMiss),
    Compress(Compression, CompressMiss),
    Body(Format, String),
    Trailing(Format),
    SchemaChanged,
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(IntMiss::OutOfRange) => f.write_str("integer out of the i64/u64 range"),
            Self::Int(IntMiss::WrongType) => {
                f.write_str("an integer is stored but the requested type is not an integer")
            }
            Self::Unsigned => f.write_str("value is not signed but this cache has a secret"),
            Self::SignedWithoutSecret => {
                f.write_str("value is signed but this cache has no secret")
            }
            Self::Sign(SignMiss::NoSeparator) => {
                f.write_str("tampered value: no signature separator `_`")
            }
            Self::Sign(SignMiss::UnknownDigest(name)) => {
                write!(f, "tampered value: unknown digest `{name}`")
            }
            Self::Sign(SignMiss::NotAccepted(d)) => write!(
                f,
                "tampered value: digest `{}` is not the configured one nor in accept_digests",
                d.name()
            ),
            Self::Sign(SignMiss::BadSignature(d)) => write!(
                f,
                "tampered value: {} signature does not match the key and payload",
                d.name()
            ),
            Self::Envelope(EnvelopeMiss::NoMagic) => {
                f.write_str("not a cashews envelope (written by another tool or version?)")
            }
            Self::Envelope(EnvelopeMiss::Truncated) => f.write_str("envelope header is truncated"),
            Self::Envelope(EnvelopeMiss::UnknownVersion(v)) => write!(
                f,
                "unknown envelope version {v} (written by a newer cashews?)"
            ),
            Self::Envelope(EnvelopeMiss::UnknownFormat(t)) => {
                write!(
                    f,
                    "unknown format tag {t:#04x} (written by a newer cashews?)"
                )
            }
            Self::Envelope(EnvelopeMiss::UnknownCompression(t)) => write!(
                f,
                "unknown compression tag {t:#04x} (written by a newer cashews?)"
            ),
            Self::Compress(c, CompressMiss::FeatureOff(feature)) => write!(
                f,
                "value is {} compressed: enable the `{feature}` feature to read it",
                c.name()
            ),
            Self::Compress(c, CompressMiss::Corrupt) => {
                write!(f, "{} body is corrupt or truncated", c.name())
            }
            Self::Compress(c, CompressMiss::TooLarge) => write!(
                f,
                "{} body decompresses to more than {MAX_DECOMPRESSED_SIZE} bytes",
                c.name()
            ),
            Self::Compress(c, CompressMiss::Trailing) => {
                write!(f, "bytes follow the end of the {} stream", c.name())
            }
            Self::Body(format, reason) => write!(f, "{} body: {reason}", format.name()),
            Self::Trailing(format) => write!(f, "{} body has trailing bytes", format.name()),
            Self::SchemaChanged => f.write_str(
                "schema changed: the stored value has a field the requested type does not have",
            ),
        }
    }
}
