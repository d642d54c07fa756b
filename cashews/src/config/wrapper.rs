//! Wrapper-level options: accepted by every scheme, taken out before the backend is built.

use super::value::{OptionSpec, RawOption};
use crate::codec::{CodecOptions, Compression, Digest, Format, Secret};
use crate::error::{Error, Result, shorten};

/// The wrapper-level options, in the order the docs list them.
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "disable",
        aliases: &[],
    },
    OptionSpec {
        name: "enable",
        aliases: &[],
    },
    OptionSpec {
        name: "suppress",
        aliases: &["safe"],
    },
    OptionSpec {
        name: "secret",
        aliases: &["hash_key"],
    },
    OptionSpec {
        name: "digestmod",
        aliases: &[],
    },
    OptionSpec {
        name: "accept_digestmods",
        aliases: &[],
    },
    OptionSpec {
        name: "compress_type",
        aliases: &[],
    },
    OptionSpec {
        name: "compress_min_size",
        aliases: &[],
    },
    OptionSpec {
        name: "pickle_type",
        aliases: &["format"],
    },
    OptionSpec {
        name: "max_key_length",
        aliases: &[],
    },
    OptionSpec {
        name: "max_value_size",
        aliases: &[],
    },
];

/// The wrapper options read from a URL, before defaults that depend on the scheme are applied.
#[derive(Debug, Default)]
pub(crate) struct Wrapper {
    pub(crate) disable: Option<bool>,
    pub(crate) enable: Option<bool>,
    pub(crate) suppress: Option<bool>,
    pub(crate) codec: CodecOptions,
    pub(crate) max_key_length: Option<usize>,
    pub(crate) max_value_size: Option<usize>,
}

impl Wrapper {
    /// Reads the wrapper options of a URL whose scheme is `scheme` (lower-cased), already
    /// resolved against [`OPTIONS`] and checked for repeats by the caller.
    pub(crate) fn parse(scheme: &str, options: &[RawOption]) -> Result<Self> {
        let mut out = Self::default();
        for option in options {
            match option.canonical {
                "disable" => out.disable = Some(option.bool()?),
                "enable" => out.enable = Some(option.bool()?),
                "suppress" => out.suppress = Some(option.bool()?),
                "secret" => {
                    if option.value.is_empty() {
                        return Err(option.invalid("a non-empty secret"));
                    }
                    out.codec.secret = Some(Secret::new(option.value.clone()));
                }
                "digestmod" => {
                    out.codec.digest = digest(option, &option.value, DIGEST_EXPECTED)?;
                }
                "accept_digestmods" => out.codec.accept_digests = digest_list(option)?,
                "compress_type" => out.codec.compression = compression(option)?,
                "compress_min_size" => out.codec.compress_min_size = option.size_usize(false)?,
                "pickle_type" => out.codec.format = format(scheme, option)?,
                "max_key_length" => out.max_key_length = Some(option.positive("bytes")?),
                "max_value_size" => out.max_value_size = Some(option.size_usize(true)?),
                // The caller only hands over names from `OPTIONS`.
                _ => {}
            }
        }
        Ok(out)
    }
}

const DIGEST_EXPECTED: &str = "md5, sha1 or sha256";
const DIGEST_LIST_EXPECTED: &str = "a comma-separated list of md5, sha1 and sha256";

/// Reads one digest name; `expected` says what the option takes.
fn digest(option: &RawOption, name: &str, expected: &str) -> Result<Digest> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "md5" => Ok(Digest::Md5),
        "sha1" => Ok(Digest::Sha1),
        "sha256" => Ok(Digest::Sha256),
        "sum" => Err(option.invalid(format!(
            "{expected}: `sum` is a plain checksum, not a MAC, so anyone who can write to the \
             cache could forge a valid signature; it is not supported"
        ))),
        other if other.starts_with("xxh") => Err(option.invalid(format!(
            "{expected}: `{}` is a fast non-cryptographic hash, not a MAC, so it cannot sign \
             values; it is not supported",
            shorten(other)
        ))),
        _ => Err(option.invalid(expected)),
    }
}

/// Reads `accept_digestmods`: a comma-separated list, possibly empty.
fn digest_list(option: &RawOption) -> Result<Vec<Digest>> {
    if option.value.trim().is_empty() {
        return Ok(Vec::new());
    }
    option
        .value
        .split(',')
        .map(|name| digest(option, name, DIGEST_LIST_EXPECTED))
        .collect()
}

/// Reads `compress_type`, checking that this build has the cargo feature it needs.
fn compression(option: &RawOption) -> Result<Compression> {
    let (compression, feature) = match option.value.to_ascii_lowercase().as_str() {
        "null" | "none" => (Compression::None, ""),
        "gzip" => (Compression::Gzip, "compression-gzip"),
        "zlib" => (Compression::Zlib, "compression-gzip"),
        "zstd" => (Compression::Zstd, "compression-zstd"),
        _ => {
            return Err(option.invalid(
                "one of null, none, gzip, zlib (feature `compression-gzip`) or zstd (feature \
                 `compression-zstd`)",
            ));
        }
    };
    if compression.is_available() {
        Ok(compression)
    } else {
        Err(Error::FeatureDisabled {
            scheme: format!("compress_type={}", compression.name()),
            feature,
        })
    }
}

/// Reads `pickle_type` (alias `format`).
fn format(scheme: &str, option: &RawOption) -> Result<Format> {
    let value = option.value.to_ascii_lowercase();
    match value.as_str() {
        "msgpack" | "default" => Ok(Format::MsgPack),
        "json" => Ok(Format::Json),
        // Python's `null` pickler stores objects as they are in memory; here values are always
        // encoded, so `null` means the default format, and only where Python accepts it.
        "null" if matches!(scheme, "mem" | "") => Ok(Format::MsgPack),
        "dill" | "sqlalchemy" | "pickle" => Err(option.invalid(format!(
            "msgpack, json or default: `{value}` is a Python-only pickler with no Rust equivalent"
        ))),
        _ => Err(option.invalid(
            "msgpack, json, default (msgpack) or, for mem:// only, null (the default format)",
        )),
    }
}
