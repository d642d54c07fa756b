//! Compression of envelope bodies, with bounded decompression.

#[cfg(any(feature = "compression-gzip", feature = "compression-zstd"))]
use std::io::Read;

use super::Compression;

/// The zstd level used to write (zstd's own default).
#[cfg(feature = "compression-zstd")]
const ZSTD_LEVEL: i32 = 3;

/// The largest zstd window a reader accepts (2^24 = 16 MiB). Our writer's level uses 2 MiB at
/// most; the cap keeps a hostile frame from making the decoder allocate zstd's default 128 MiB.
#[cfg(feature = "compression-zstd")]
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Why a compressed body gave no bytes. None of these carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(any(feature = "compression-gzip", feature = "compression-zstd")),
    allow(dead_code)
)]
pub(super) enum CompressMiss {
    /// The body needs a cargo feature that is off.
    FeatureOff(&'static str),
    /// The compressed stream is corrupt or truncated.
    Corrupt,
    /// The decompressed body would exceed the limit.
    TooLarge,
    /// Bytes follow the end of the compressed stream.
    Trailing,
}

/// The cargo feature that provides `compression`, if it is off in this build.
pub(super) fn missing_feature(compression: Compression) -> Option<&'static str> {
    match compression {
        Compression::None => None,
        Compression::Gzip | Compression::Zlib => {
            (!cfg!(feature = "compression-gzip")).then_some("compression-gzip")
        }
        Compression::Zstd => (!cfg!(feature = "compression-zstd")).then_some("compression-zstd"),
    }
}

/// Compresses `body`. `Compression::None` returns it unchanged.
#[cfg_attr(
    not(any(feature = "compression-gzip", feature = "compression-zstd")),
    allow(clippy::unnecessary_wraps)
)]
pub(super) fn compress(compression: Compression, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(body.to_vec()),
        #[cfg(feature = "compression-gzip")]
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(body)?;
            enc.finish()
        }
        #[cfg(feature = "compression-gzip")]
        Compression::Zlib => {
            use std::io::Write;
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(body)?;
            enc.finish()
        }
        #[cfg(feature = "compression-zstd")]
        Compression::Zstd => zstd::bulk::compress(body, ZSTD_LEVEL),
        #[allow(unreachable_patterns)]
        other => Err(std::io::Error::other(format!(
            "{other:?} compression needs the `{}` feature",
            missing_feature(other).unwrap_or("?")
        ))),
    }
}

/// Decompresses `body`, refusing output over `limit` bytes and bytes after the stream's end.
pub(super) fn decompress(
    compression: Compression,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CompressMiss> {
    let _ = limit;
    match compression {
        Compression::None => Ok(body.to_vec()),
        #[cfg(feature = "compression-gzip")]
        Compression::Gzip => {
            let mut dec = flate2::bufread::GzDecoder::new(body);
            let out = read_bounded(&mut dec, limit)?;
            ensure_consumed(dec.into_inner())?;
            Ok(out)
        }
        #[cfg(feature = "compression-gzip")]
        Compression::Zlib => {
            let mut dec = flate2::bufread::ZlibDecoder::new(body);
            let out = read_bounded(&mut dec, limit)?;
            ensure_consumed(dec.into_inner())?;
            Ok(out)
        }
        #[cfg(feature = "compression-zstd")]
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|_| CompressMiss::Corrupt)?
                .single_frame();
            dec.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|_| CompressMiss::Corrupt)?;
            let out = read_bounded(&mut dec, limit)?;
            ensure_consumed(dec.finish())?;
            Ok(out)
        }
        #[allow(unreachable_patterns)]
        other => Err(CompressMiss::FeatureOff(
            missing_feature(other).unwrap_or("?"),
        )),
    }
}

#[cfg(any(feature = "compression-gzip", feature = "compression-zstd"))]
fn read_bounded(reader: &mut impl Read, limit: usize) -> Result<Vec<u8>, CompressMiss> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    match reader.take(cap).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(CompressMiss::TooLarge),
        Ok(_) => Ok(out),
        Err(_) => Err(CompressMiss::Corrupt),
    }
}

#[cfg(any(feature = "compression-gzip", feature = "compression-zstd"))]
fn ensure_consumed(rest: &[u8]) -> Result<(), CompressMiss> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(CompressMiss::Trailing)
    }
}

#[cfg(all(test, feature = "compression-gzip"))]
mod tests {
    use super::*;

    #[test]
    fn a_bomb_is_refused() {
        let zeros = vec![0u8; 1 << 20];
        for c in [Compression::Gzip, Compression::Zlib] {
            let packed = compress(c, &zeros).unwrap();
            assert!(packed.len() < 4096);
            assert_eq!(decompress(c, &packed, 1 << 20).unwrap().len(), 1 << 20);
            assert_eq!(
                decompress(c, &packed, (1 << 20) - 1),
                Err(CompressMiss::TooLarge)
            );
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_refused() {
        let body = b"hello hello hello hello hello hello".repeat(10);
        for c in [Compression::Gzip, Compression::Zlib] {
            let packed = compress(c, &body).unwrap();
            for len in 0..packed.len() {
                assert!(
                    decompress(c, &packed[..len], 1 << 20).is_err(),
                    "{c:?} {len}"
                );
            }
            let mut longer = packed.clone();
            longer.push(0);
            assert!(decompress(c, &longer, 1 << 20).is_err());
        }
    }
}
