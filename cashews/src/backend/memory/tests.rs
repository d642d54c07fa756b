//! Unit tests of the memory backend's private invariants.

use std::time::Duration;

use super::MemoryBackend;
use super::entry::{Entry, Lookup, Value};
use crate::backend::SetOptions;
use crate::backend::layout::{read_field, write_field};
use crate::clock::Clock;
use crate::config::MemoryOptions;

#[test]
fn bit_fields_follow_redis_layout() {
    let mut bits = Vec::new();
    write_field(&mut bits, 0, 1, 1);
    assert_eq!(bits, vec![0b1000_0000]);
    write_field(&mut bits, 4, 4, 0b1011);
    assert_eq!(bits, vec![0b1000_1011]);
    assert_eq!(read_field(&bits, 4, 4), 0b1011);
    assert_eq!(read_field(&bits, 100, 8), 0);
    write_field(&mut bits, 14, 5, 0b10101);
    assert_eq!(read_field(&bits, 14, 5), 0b10101);
}

#[test]
fn lookup_keys_compare_and_hash_as_the_stored_strings() {
    use quick_cache::Equivalent;
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::RandomState::default();
    let keys = [
        "",
        "a",
        "user:1",
        "user:123",
        "user:1234",
        "module::path:fn:arg:42:x",
    ];
    for a in keys {
        assert_eq!(hasher.hash_one(Lookup(a)), hasher.hash_one(a.to_owned()));
        for b in keys {
            assert_eq!(
                Lookup(a).equivalent(&b.to_owned()),
                a == b,
                "{a:?} vs {b:?}"
            );
        }
    }
    // Same length, differing in the last word or in the tail.
    assert!(!Lookup("user:123456789").equivalent(&"user:123456780".to_owned()));
    assert!(!Lookup("user:12345678").equivalent(&"user:02345678".to_owned()));
    assert!(!Lookup("abcdefghij").equivalent(&"abcdefghiz".to_owned()));
}

#[test]
fn entries_stay_small() {
    assert_eq!(std::mem::size_of::<Value>(), 16);
    assert_eq!(std::mem::size_of::<Entry>(), 24);
}

/// The hit path's expiry check (`live`, through `now_unless_before`) is exact: present
/// one nanosecond before the deadline, gone at it, on both synchronous reads.
#[test]
fn the_hit_path_expires_an_entry_at_exactly_its_deadline() {
    let clock = Clock::manual();
    let mem = MemoryBackend::with_clock(MemoryOptions::with_size(10), clock.clone());
    let ttl = Duration::from_secs(60);
    assert!(mem.set_now("k", b"v", SetOptions::ttl(Some(ttl))).unwrap());
    assert!(mem.set_now("s", b"v", SetOptions::ttl(Some(ttl))).unwrap());
    let read = |key: &str| mem.read_now(key, <[u8]>::to_vec);
    let shared =
        |key: &str| mem.read_shared_with(key, 1, |b| Some(b.to_vec()), |v: &Vec<u8>, _| v.clone());
    clock.advance(ttl - Duration::from_nanos(1));
    assert_eq!(read("k"), Some(b"v".to_vec()));
    assert_eq!(shared("s"), Some(b"v".to_vec()));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(read("k"), None);
    assert_eq!(shared("s"), None);
    assert_eq!(
        mem.inner.map.len(),
        0,
        "an expired entry is dropped when read"
    );
}
