//! How values that are not plain bytes sit in a row's `value` column: sets, sliding windows,
//! and the bit fields and counters stored as plain bytes.
//!
//! Hand-written little formats rather than a serializer: they are tiny, fixed, and must read
//! the same in every process and version that shares a folder.

use std::collections::BTreeSet;

/// What a row holds (`kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Plain bytes: values, counters, bit fields, lock tokens.
    Bytes,
    /// A set of strings ([`encode_set`]).
    Set,
    /// The sorted event instants of a sliding window ([`encode_window`]).
    Window,
}

impl Kind {
    pub(super) const fn code(self) -> i64 {
        match self {
            Self::Bytes => 0,
            Self::Set => 1,
            Self::Window => 2,
        }
    }

    /// The kind of a `kind` column; `None` for a code this version does not know.
    pub(super) const fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::Bytes),
            1 => Some(Self::Set),
            2 => Some(Self::Window),
            _ => None,
        }
    }
}

/// A set: each member as a little-endian `u32` length and its UTF-8 bytes, in sorted order.
pub(super) fn encode_set(set: &BTreeSet<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.iter().map(|m| m.len() + 4).sum());
    for member in set {
        let len = u32::try_from(member.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(member.as_bytes());
    }
    out
}

/// The set written by [`encode_set`]; `None` when the bytes are not one.
pub(super) fn decode_set(mut bytes: &[u8]) -> Option<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (member, rest) = rest.split_at(len);
        set.insert(String::from_utf8(member.to_vec()).ok()?);
        bytes = rest;
    }
    Some(set)
}

/// A window: each instant as a little-endian `u64`, sorted.
pub(super) fn encode_window(events: &[u64]) -> Vec<u8> {
    events.iter().flat_map(|t| t.to_le_bytes()).collect()
}

/// The window written by [`encode_window`]; `None` when the bytes are not one.
pub(super) fn decode_window(bytes: &[u8]) -> Option<Vec<u64>> {
    let (chunks, rest) = bytes.as_chunks::<8>();
    if !rest.is_empty() {
        return None;
    }
    Some(chunks.iter().map(|c| u64::from_le_bytes(*c)).collect())
}

/// The shard of a key: FNV-1a (64 bits) of its bytes modulo the shard count. A fixed
/// function, not a per-process random hasher: every process sharing a folder must send a key
/// to the same file.
pub(super) fn shard_of(key: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let shards = u64::try_from(shards.max(1)).unwrap_or(1);
    usize::try_from(hash % shards).unwrap_or(0)
}

/// The literal start of a glob pattern (up to its first `*`, `?` or `[`, with `\x` read as
/// `x`) and an exclusive upper bound for keys starting with it, so a scan reads one key range
/// of the index instead of the whole table. The range is a superset: keys in it are still
/// matched against the whole pattern.
pub(super) fn key_range(pattern: &str) -> (String, Option<String>) {
    let bytes = pattern.as_bytes();
    let mut prefix = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'*' | b'?' | b'[' => break,
            b'\\' if i + 1 < bytes.len() => {
                prefix.push(bytes[i + 1]);
                i += 2;
            }
            b => {
                prefix.push(b);
                i += 1;
            }
        }
    }
    // Cutting after an escaped byte can split a multi-byte character: keep whole characters.
    let prefix = match String::from_utf8(prefix) {
        Ok(p) => p,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    let upper = upper_bound(&prefix);
    (prefix, upper)
}

/// The least string greater than every string starting with `prefix` (UTF-8 byte order is
/// code point order), or `None` when there is none (empty prefix, or only `char::MAX`).
fn upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_windows_round_trip() {
        let set: BTreeSet<String> = ["a", "", "caf\u{e9}"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(decode_set(&encode_set(&set)), Some(set));
        assert_eq!(decode_set(&[1, 0, 0]), None);
        assert_eq!(decode_set(&[5, 0, 0, 0, b'a']), None);
        let events = vec![0, 5, u64::MAX];
        assert_eq!(decode_window(&encode_window(&events)), Some(events));
        assert_eq!(decode_window(&[1, 2, 3]), None);
    }

    #[test]
    fn key_ranges_cover_the_matches() {
        assert_eq!(
            key_range("user:*"),
            ("user:".to_owned(), Some("user;".to_owned()))
        );
        assert_eq!(key_range("*"), (String::new(), None));
        assert_eq!(
            key_range("a\\*b?"),
            ("a*b".to_owned(), Some("a*c".to_owned()))
        );
        assert_eq!(
            key_range("x\u{10FFFF}"),
            ("x\u{10FFFF}".to_owned(), Some("y".to_owned()))
        );
        assert_eq!(upper_bound("\u{D7FF}"), Some("\u{E000}".to_owned()));
    }

    #[test]
    fn shards_are_stable() {
        // Fixed values: changing the hash would send existing keys to other files.
        assert_eq!(shard_of("", 8), 0xcbf2_9ce4_8422_2325_u64 as usize % 8);
        assert_eq!(shard_of("user:1", 1), 0);
        let spread: BTreeSet<usize> = (0..100).map(|i| shard_of(&format!("k{i}"), 8)).collect();
        assert_eq!(spread.len(), 8);
    }
}
