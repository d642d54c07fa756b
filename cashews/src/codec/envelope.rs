//! The 5-byte envelope header: magic, version, format tag, compression tag.

use super::{Compression, Format};

/// The first two bytes of every enveloped value. `0xC1` never occurs in UTF-8 text (so never in
/// JSON, integer text, a digest name or a Python `bytes:` value) and is the one byte MessagePack
/// never uses; pickles start with `0x80`.
pub(super) const MAGIC: [u8; 2] = [0xC1, 0xCA];

/// The envelope version this build writes and the only one it reads.
pub(super) const VERSION: u8 = 1;

/// Magic (2) + version (1) + format tag (1) + compression tag (1).
pub(super) const HEADER_LEN: usize = 5;

/// Why bytes are not an envelope this build can read. None of these carries the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EnvelopeMiss {
    /// The bytes do not start with the magic.
    NoMagic,
    /// The magic is there but the header is cut short.
    Truncated,
    /// Written by a newer (or unknown) envelope version.
    UnknownVersion(u8),
    /// A format tag this build does not know.
    UnknownFormat(u8),
    /// A compression tag this build does not know.
    UnknownCompression(u8),
}

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) format: Format,
    pub(super) compression: Compression,
}

fn format_tag(format: Format) -> u8 {
    match format {
        Format::MsgPack => 0x01,
        Format::Json => 0x02,
    }
}

fn format_from_tag(tag: u8) -> Option<Format> {
    match tag {
        0x01 => Some(Format::MsgPack),
        0x02 => Some(Format::Json),
        _ => None,
    }
}

fn compression_tag(compression: Compression) -> u8 {
    match compression {
        Compression::None => 0x00,
        Compression::Gzip => 0x01,
        Compression::Zlib => 0x02,
        Compression::Zstd => 0x03,
    }
}

fn compression_from_tag(tag: u8) -> Option<Compression> {
    match tag {
        0x00 => Some(Compression::None),
        0x01 => Some(Compression::Gzip),
        0x02 => Some(Compression::Zlib),
        0x03 => Some(Compression::Zstd),
        _ => None,
    }
}

/// Appends the header to `out`; the body (compressed as the header says) follows it.
pub(super) fn write_header(out: &mut Vec<u8>, header: Header) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(format_tag(header.format));
    out.push(compression_tag(header.compression));
}

/// Splits an envelope into its header and body.
pub(super) fn unwrap(bytes: &[u8]) -> Result<(Header, &[u8]), EnvelopeMiss> {
    if !bytes.starts_with(&MAGIC) {
        return Err(EnvelopeMiss::NoMagic);
    }
    let Some((head, body)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(EnvelopeMiss::Truncated);
    };
    // The version comes first so that a newer writer may change everything after it.
    let version = head[2];
    if version != VERSION {
        return Err(EnvelopeMiss::UnknownVersion(version));
    }
    let format = format_from_tag(head[3]).ok_or(EnvelopeMiss::UnknownFormat(head[3]))?;
    let compression =
        compression_from_tag(head[4]).ok_or(EnvelopeMiss::UnknownCompression(head[4]))?;
    Ok((
        Header {
            format,
            compression,
        },
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejections() {
        let h = Header {
            format: Format::Json,
            compression: Compression::Zlib,
        };
        let mut bytes = Vec::new();
        write_header(&mut bytes, h);
        bytes.extend_from_slice(b"body");
        assert_eq!(&bytes[..HEADER_LEN], &[0xC1, 0xCA, 1, 2, 2]);
        assert_eq!(unwrap(&bytes), Ok((h, &b"body"[..])));
        assert_eq!(unwrap(b"\xC1\xCA\x01\x01"), Err(EnvelopeMiss::Truncated));
        assert_eq!(
            unwrap(b"\xC1\xCA\x02\x01\x00"),
            Err(EnvelopeMiss::UnknownVersion(2))
        );
        assert_eq!(
            unwrap(b"\xC1\xCA\x01\x09\x00"),
            Err(EnvelopeMiss::UnknownFormat(9))
        );
        assert_eq!(
            unwrap(b"\xC1\xCA\x01\x01\x09"),
            Err(EnvelopeMiss::UnknownCompression(9))
        );
        assert_eq!(unwrap(b"{\"a\":1}"), Err(EnvelopeMiss::NoMagic));
    }
}
