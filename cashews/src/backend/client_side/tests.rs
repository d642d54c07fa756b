//! Unit tests of the client-side tier: fills against invalidations, and the memory
//! commands the tier relies on.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use redis::{PushInfo, PushKind, Value};

use bytes::Bytes;

use super::ClientSideRedis;
use super::tier::local_ttl;
use crate::MemoryBackend;
use crate::backend::{Backend, SetOptions};
use crate::config::RedisOptions;

fn backend() -> ClientSideRedis {
    // Nothing listens on port 1; these tests never connect.
    ClientSideRedis::new(RedisOptions::new("redis://127.0.0.1:1/0")).unwrap()
}

fn invalidate(backend: &ClientSideRedis, key: &str) {
    backend.shared.on_push(
        0,
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(vec![Value::BulkString(
                key.as_bytes().to_vec(),
            )])],
        },
    );
}

fn reply(value: &str) -> Vec<Value> {
    vec![Value::BulkString(value.as_bytes().to_vec()), Value::Int(-1)]
}

fn local(backend: &ClientSideRedis, key: &str) -> Option<Bytes> {
    backend.shared.tier.read_now(key, Bytes::copy_from_slice)
}

/// The fill race, held open deterministically: the reply of a read sent before another
/// client's write is handled after that write's invalidation. The caller gets what it
/// read, but the tier must not keep it.
#[test]
fn a_reply_older_than_an_invalidation_is_not_cached() {
    let backend = backend();
    let ticket = backend.shared.fences.ticket("k");
    invalidate(&backend, "k");
    let out = backend.apply_fill(&["k"], &[ticket], reply("old"), Instant::now());
    assert_eq!(out, Some(vec![Some(Bytes::from("old"))]));
    assert_eq!(local(&backend, "k"), None);
    let c = &backend.shared.counters;
    assert_eq!(c.fills_skipped.load(Ordering::Relaxed), 1);
    assert_eq!(c.invalidations.load(Ordering::Relaxed), 1);
    // A read sent after the invalidation fills.
    let ticket = backend.shared.fences.ticket("k");
    backend.apply_fill(&["k"], &[ticket], reply("new"), Instant::now());
    assert_eq!(local(&backend, "k"), Some(Bytes::from("new")));
    // And the next invalidation removes it.
    invalidate(&backend, "k");
    assert_eq!(local(&backend, "k"), None);
}

#[test]
fn a_null_invalidation_or_a_link_drop_fences_every_fill() {
    let backend = backend();
    let ticket = backend.shared.fences.ticket("a");
    backend.shared.on_push(
        0,
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Nil],
        },
    );
    backend.apply_fill(&["a"], &[ticket], reply("old"), Instant::now());
    assert_eq!(local(&backend, "a"), None);
    assert_eq!(backend.stats().flushes, 1);
}

#[test]
fn unexpected_replies_fill_nothing() {
    let backend = backend();
    let ticket = backend.shared.fences.ticket("k");
    let odd = vec![Value::Int(3), Value::Int(-1)];
    assert_eq!(
        backend.apply_fill(&["k"], &[ticket], odd, Instant::now()),
        None
    );
    assert_eq!(local(&backend, "k"), None);
}

/// The tier's removals run inside the connection driver, synchronously: they rely on every
/// memory command finishing on its first poll.
#[test]
fn memory_commands_used_by_the_tier_finish_at_once() {
    let mem = MemoryBackend::new(Default::default());
    assert!(mem.set_now("k", b"v", SetOptions::default()).unwrap());
    assert_eq!(
        mem.delete("k").now_or_never().map(|r| r.ok()),
        Some(Some(true))
    );
    assert!(mem.set_now("a1", b"v", SetOptions::default()).unwrap());
    assert_eq!(
        mem.delete_match("a*").now_or_never().map(|r| r.ok()),
        Some(Some(1))
    );
    assert!(mem.set_now("k", b"v", SetOptions::default()).unwrap());
    assert!(mem.clear().now_or_never().is_some_and(|r| r.is_ok()));
    assert!(mem.is_empty());
}

#[test]
fn local_ttl_never_outlives_the_key() {
    let sent = std::time::Instant::now();
    assert_eq!(local_ttl(-1, sent), Some(None));
    assert_eq!(local_ttl(-2, sent), None);
    assert_eq!(local_ttl(0, sent), None);
    let ttl = local_ttl(60_000, sent).flatten().unwrap();
    assert!(ttl <= Duration::from_secs(60));
}
