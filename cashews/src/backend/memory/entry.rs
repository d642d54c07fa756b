//! What the map stores: entries, their values, and the key type reads look up with.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// A string value: `triomphe`'s `Arc` has no weak count, so each value's allocation is 8 bytes
/// smaller than with `std::sync::Arc` (measured: 251 MB to 235 MB for 1M entries of 100
/// bytes, `--bench footprint`).
pub(super) type Text = triomphe::Arc<[u8]>;

/// Fixed bytes counted per entry on top of key and value, for the `max_bytes` bound and
/// `get_size`: the map slot, the entry header and allocator rounding (measured, see benches).
pub(super) const ENTRY_OVERHEAD: u64 = 64;

#[derive(Clone)]
pub(super) struct Entry {
    pub(super) value: Value,
    /// Deadline in clock nanoseconds; 0 means no expiry.
    pub(super) expires_at: u64,
}

/// Strings are `Text` (`triomphe::Arc<[u8]>`): one allocation holding a count and the bytes,
/// cloned on every read by
/// an atomic increment. (`Bytes` built from a `Vec` allocates a second header on its first
/// clone, which costs both time and ~32 bytes per entry.) Two variants, so the non-null
/// pointer holds the tag: an entry is 24 bytes.
#[derive(Clone)]
pub(super) enum Value {
    Bytes(Text),
    Structured(Arc<Structured>),
}

#[derive(Clone)]
pub(super) enum Structured {
    Set(HashSet<String, foldhash::fast::RandomState>),
    /// Sorted event instants of a sliding window.
    Window(VecDeque<u64>),
    /// A string value that a typed read has decoded: the bytes stay the truth for every
    /// command; the object serves later typed reads through the same codec.
    Shared(Shared),
}

/// A decoded object as kept beside its bytes, and as detect records it.
pub(crate) type SharedObject = Arc<dyn std::any::Any + Send + Sync>;

/// The decoded object kept beside a string value (see `MemoryBackend::read_shared`).
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) bytes: Text,
    /// The identity of the codec that decoded (and verified) `object`.
    pub(super) codec: u64,
    pub(super) object: SharedObject,
}

impl Value {
    /// The bytes of a string value; `None` for sets and windows.
    pub(super) fn string(&self) -> Option<&Text> {
        match self {
            Self::Bytes(b) => Some(b),
            Self::Structured(s) => match &**s {
                Structured::Shared(shared) => Some(&shared.bytes),
                Structured::Set(_) | Structured::Window(_) => None,
            },
        }
    }
}

impl Entry {
    pub(super) fn new(value: Value, ttl: Option<Duration>, now: u64) -> Self {
        Self {
            value,
            expires_at: deadline(ttl, now),
        }
    }

    pub(super) fn is_expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }

    pub(super) fn size(&self) -> u64 {
        match &self.value {
            Value::Bytes(b) => b.len() as u64,
            Value::Structured(s) => match &**s {
                Structured::Set(set) => set.iter().map(|m| m.len() as u64 + 24).sum(),
                Structured::Window(events) => events.len() as u64 * 8,
                Structured::Shared(shared) => shared.bytes.len() as u64,
            },
        }
    }
}

/// A key as reads look it up: hashes as the stored `String` does (both hash as `str`), and
/// compares in 8-byte words inline, where `str` equality calls `memcmp` (a libc call that
/// was ~5% of a ~100 ns memory hit, for keys of a few words).
pub(super) struct Lookup<'a>(pub(super) &'a str);

impl std::hash::Hash for Lookup<'_> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl quick_cache::Equivalent<String> for Lookup<'_> {
    #[inline]
    fn equivalent(&self, key: &String) -> bool {
        same_bytes(self.0.as_bytes(), key.as_bytes())
    }
}

/// `a == b`, word by word, then byte by byte for the tail.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some((word_a, rest_a)), Some((word_b, rest_b))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if u64::from_ne_bytes(*word_a) != u64::from_ne_bytes(*word_b) {
            return false;
        }
        (a, b) = (rest_a, rest_b);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

pub(super) fn deadline(ttl: Option<Duration>, now: u64) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => now
            .saturating_add(u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX))
            .max(1),
    }
}
