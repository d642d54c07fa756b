//! Measures the length of one MessagePack value without decoding it.
//!
//! rmp-serde's zero-copy deserializer (`from_read_ref`, which borrows strings instead of
//! copying them through a buffer) does not report how many bytes it consumed; this scan gives
//! the trailing-bytes check that the buffered deserializer would, at a fraction of its cost.
//! Hand-written because no maintained crate exposes it.

/// The byte length of the first MessagePack value in `buf`, or `None` if it is truncated or
/// uses the reserved marker `0xC1`. Iterative: a hostile nesting depth costs no stack.
pub(super) fn value_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    // How many values are still to be read (maps count two per entry).
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *buf.get(pos)?;
        pos += 1;
        let (skip, children): (usize, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (usize::from(*buf.get(pos)?) + 1, 0),
            0xc5 | 0xda => (be(buf, pos, 2)? + 2, 0),
            0xc6 | 0xdb => (be(buf, pos, 4)? + 4, 0),
            0xc7 => (usize::from(*buf.get(pos)?) + 2, 0),
            0xc8 => (be(buf, pos, 2)? + 3, 0),
            0xc9 => (be(buf, pos, 4)? + 5, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (2, be(buf, pos, 2)? as u64),
            0xdd => (4, be(buf, pos, 4)? as u64),
            0xde => (2, 2 * be(buf, pos, 2)? as u64),
            0xdf => (4, 2 * be(buf, pos, 4)? as u64),
            0xc1 => return None,
        };
        pos = pos.checked_add(skip)?;
        if pos > buf.len() {
            return None;
        }
        pending = pending.checked_add(children)?;
        // Every pending value needs at least one byte: a count beyond the buffer is a lie.
        if pending > (buf.len() - pos) as u64 {
            return None;
        }
    }
    Some(pos)
}

fn be(buf: &[u8], pos: usize, width: usize) -> Option<usize> {
    let bytes = buf.get(pos..pos + width)?;
    Some(
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
    )
}

#[cfg(test)]
mod tests {
    use super::value_len;

    #[test]
    fn measures_what_rmp_serde_writes() {
        #[derive(serde::Serialize)]
        struct Deep {
            a: Vec<Option<String>>,
            b: std::collections::BTreeMap<String, (i64, f64, bool)>,
            c: Vec<u8>,
            d: u64,
            e: i8,
        }
        let value = Deep {
            a: vec![Some("x".repeat(40)), None, Some("y".repeat(300))],
            b: [("k".to_owned(), (-70_000, 1.5, true))]
                .into_iter()
                .collect(),
            c: vec![1; 70_000],
            d: u64::MAX,
            e: -3,
        };
        let bytes = rmp_serde::to_vec_named(&value).unwrap();
        assert_eq!(value_len(&bytes), Some(bytes.len()));
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"tail");
        assert_eq!(value_len(&longer), Some(bytes.len()));
        for cut in 0..bytes.len() {
            assert_eq!(value_len(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn hostile_counts_are_refused_quickly() {
        assert_eq!(value_len(&[0xdf, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(value_len(&[0xc1]), None);
        assert_eq!(value_len(&[0x91; 100_000]), None);
    }
}
