//! Steps on typed entries (sliding windows, sets, plain bytes) inside a shard transaction,
//! and the errors about an entry of the wrong kind or with malformed bytes.

use std::collections::BTreeSet;
use std::time::Duration;

use super::shard::{self, Fail, Row, live, put, remove};
use super::value::{self, Kind};
use crate::command::Command;
use crate::error::{Error, Result};

/// Bad stored bytes in a row this version wrote: only a foreign writer or a damaged file
/// produces them.
pub(super) fn malformed(command: Command, key: &str) -> Error {
    Error::backend(
        "disk",
        command,
        format!(
            "the entry of key `{}` is malformed: delete the key",
            crate::error::shorten(key)
        ),
    )
}

/// One sliding-window step (`slice_incr`, `slice_incr_now`) inside a write transaction:
/// forgets events before `start`, counts those in `[start, end]` (both ends included, as
/// Redis's ZCOUNT), and below `max` records one at `end`, resetting the TTL when one is given.
pub(super) fn slice_step(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    now: i64,
    command: Command,
    window: impl FnOnce(Option<u64>) -> (u64, u64),
    max: u64,
    ttl: Option<Duration>,
) -> Result<u64, Fail> {
    let (mut events, expires_at) = match live(tx, key, now)? {
        None => (Vec::new(), None),
        Some(row) if row.kind == Some(Kind::Window) => {
            let events = value::decode_window(&row.value)
                .ok_or_else(|| Fail::Cashews(malformed(command, key)))?;
            (events, row.expires_at)
        }
        Some(_) => return Err(wrong_type(command, key, "a sliding window")),
    };
    let (start, end) = window(events.last().copied());
    events.retain(|&t| t >= start);
    let at = events.partition_point(|&t| t <= end);
    let count = at as u64;
    let admitted = count < max;
    let expires_at = if admitted {
        events.insert(at, end);
        match ttl {
            Some(_) => shard::deadline(ttl, now),
            None => expires_at,
        }
    } else {
        expires_at
    };
    // A refusal still writes back the window without the forgotten events (unless nothing is
    // left of it).
    if !events.is_empty() {
        put(
            tx,
            key,
            Kind::Window,
            &value::encode_window(&events),
            expires_at,
            now,
        )?;
    }
    Ok(count + u64::from(admitted))
}

pub(super) fn wrong_type(command: Command, key: &str, expected: &'static str) -> Fail {
    Fail::Cashews(Error::WrongType {
        command,
        key: crate::error::shorten(key),
        expected,
    })
}

/// The value of a live row that must hold plain bytes.
pub(super) fn bytes_of(row: &Row, command: Command, key: &str) -> Result<Vec<u8>, Fail> {
    match row.kind {
        Some(Kind::Bytes) => Ok(row.value.clone()),
        _ => Err(wrong_type(command, key, "a string value")),
    }
}

/// The live set at `key` (empty when missing) and its expiry; a key of another kind is a
/// wrong type.
pub(super) fn read_set(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    now: i64,
    command: Command,
) -> Result<(BTreeSet<String>, Option<i64>), Fail> {
    match live(tx, key, now)? {
        None => Ok((BTreeSet::new(), None)),
        Some(row) if row.kind == Some(Kind::Set) => {
            let set = value::decode_set(&row.value)
                .ok_or_else(|| Fail::Cashews(malformed(command, key)))?;
            Ok((set, row.expires_at))
        }
        Some(_) => Err(wrong_type(command, key, "a set")),
    }
}

/// Writes a set back after removals (`changed`), deleting it when empty, as Redis does.
pub(super) fn store_set(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    set: &BTreeSet<String>,
    expires_at: Option<i64>,
    now: i64,
    changed: bool,
) -> Result<(), Fail> {
    if !changed {
        return Ok(());
    }
    if set.is_empty() {
        remove(tx, key, now)?;
    } else {
        put(tx, key, Kind::Set, &value::encode_set(set), expires_at, now)?;
    }
    Ok(())
}
