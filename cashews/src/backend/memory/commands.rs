//! The [`Backend`] commands of [`MemoryBackend`].

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::MemoryBackend;
use super::access::Op;
use super::budget::Budget;
use super::entry::{ENTRY_OVERHEAD, Entry, Structured, Text, Value, deadline};
use crate::backend::layout::{parse_int, read_field, write_field};
use crate::backend::{
    Backend, BoxStream, Expiry, LocalTier, SetOptions, check_bits, pong, window_at,
};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::pattern;

impl MemoryBackend {
    fn bytes_of(entry: &Entry, command: Command, key: &str) -> Result<Text> {
        match entry.value.string() {
            Some(b) => Ok(Text::clone(b)),
            None => Err(wrong_type(command, key, "a string value")),
        }
    }
}

fn wrong_type(command: Command, key: &str, expected: &'static str) -> Error {
    Error::WrongType {
        command,
        key: crate::error::shorten(key),
        expected,
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "mem"
    }

    fn local_tier(&self) -> Option<LocalTier> {
        Some(LocalTier::whole(self.clone()))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.read_now(key, Bytes::copy_from_slice))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.set_now(key, &value, options)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let now = self.now();
        Ok(self
            .inner
            .map
            .remove(key)
            .is_some_and(|(_, entry)| !entry.is_expired(now)))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.live(key).is_some())
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        self.rmw(key, |current, now| match current {
            Some(entry) => {
                entry.expires_at = deadline(ttl, now);
                Op::Keep(true)
            }
            None => Op::Keep(false),
        })
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let Some(entry) = self.live(key) else {
            return Ok(Expiry::Missing);
        };
        if entry.expires_at == 0 {
            return Ok(Expiry::Persistent);
        }
        let now = self.now();
        Ok(Expiry::In(Duration::from_nanos(
            entry.expires_at.saturating_sub(now),
        )))
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.rmw_fallible(key, |current, now| match current {
            None => Op::Put(
                Entry::new(
                    Value::Bytes(Text::from(by.to_string().as_bytes())),
                    ttl,
                    now,
                ),
                Ok(by),
            ),
            Some(entry) => {
                let current = match Self::bytes_of(entry, Command::Incr, key) {
                    Ok(b) => b,
                    Err(e) => return Op::Keep(Err(e)),
                };
                let Some(n) = parse_int(&current) else {
                    return Op::Keep(Err(wrong_type(
                        Command::Incr,
                        key,
                        "a decimal integer value",
                    )));
                };
                match n.checked_add(by) {
                    Some(next) => {
                        // A put, not a change in place: a longer number is checked against
                        // the budget before it replaces the old one.
                        let value = Value::Bytes(Text::from(next.to_string().as_bytes()));
                        let entry = Entry {
                            value,
                            expires_at: entry.expires_at,
                        };
                        Op::Put(entry, Ok(next))
                    }
                    None => Op::Keep(Err(Error::backend(
                        "mem",
                        Command::Incr,
                        "increment or decrement would overflow",
                    ))),
                }
            }
        })
    }

    fn scan(&self, pattern: &str, _batch_size: usize) -> BoxStream<Result<String>> {
        let now = self.now();
        let keys: Vec<Result<String>> = if pattern::is_literal(pattern) {
            self.live(pattern)
                .map(|_| Ok(pattern.to_owned()))
                .into_iter()
                .collect()
        } else {
            self.inner
                .map
                .iter()
                .filter(|(key, entry)| !entry.is_expired(now) && pattern::matches(pattern, key))
                .map(|(key, _)| Ok(key))
                .collect()
        };
        Box::pin(futures_util::stream::iter(keys))
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        if pattern::is_literal(pattern) {
            return Ok(u64::from(self.delete(pattern).await?));
        }
        let now = self.now();
        let deleted = std::sync::atomic::AtomicU64::new(0);
        self.inner.map.retain(|key, entry| {
            let hit = pattern::matches(pattern, key);
            if hit && !entry.is_expired(now) {
                deleted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            !hit
        });
        Ok(deleted.into_inner())
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.rmw(key, |current, _| match current {
            Some(entry)
                if entry
                    .value
                    .string()
                    .is_some_and(|b| **b == *token.as_bytes()) =>
            {
                Op::Remove(true)
            }
            _ => Op::Keep(false),
        })
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        check_bits(key, Command::GetBits, indexes, size)?;
        let bits = match self.live(key) {
            None => Text::from(&[][..]),
            Some(entry) => Self::bytes_of(&entry, Command::GetBits, key)?,
        };
        Ok(indexes
            .iter()
            .map(|&i| read_field(&bits, i * u64::from(size), size))
            .collect())
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        check_bits(key, Command::IncrBits, indexes, size)?;
        let max = (1u64 << size) - 1;
        self.rmw_fallible(key, |current, now| {
            let (mut bits, ttl_at) = match &current {
                None => (Vec::new(), 0),
                Some(entry) => match Self::bytes_of(entry, Command::IncrBits, key) {
                    Ok(b) => (b.to_vec(), entry.expires_at),
                    Err(e) => return Op::Keep(Err(e)),
                },
            };
            let mut out = Vec::with_capacity(indexes.len());
            for &index in indexes {
                let offset = index * u64::from(size);
                let old = read_field(&bits, offset, size);
                let new = if by >= 0 {
                    old.saturating_add(by.unsigned_abs()).min(max)
                } else {
                    old.saturating_sub(by.unsigned_abs())
                };
                write_field(&mut bits, offset, size, new);
                out.push(new);
            }
            let entry = Entry {
                value: Value::Bytes(Text::from(bits)),
                expires_at: if current.is_some() {
                    ttl_at
                } else {
                    deadline(None, now)
                },
            };
            Op::Put(entry, Ok(out))
        })
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.rmw_fallible(key, |current, now| {
            slice_step(
                current,
                now,
                (Command::SliceIncr, key),
                (start, end),
                max,
                ttl,
                &self.inner.budget,
            )
        })
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.rmw_fallible(key, |current, now| {
            // The stamp is read here, under the key's entry guard, so events are recorded in
            // the order of their stamps: no caller can count a window that misses an earlier
            // one (see `Backend::slice_incr_now`).
            let stamp = u64::try_from(self.inner.clock.now().as_millis()).unwrap_or(u64::MAX);
            let window = window_at(stamp, period);
            let budget = &self.inner.budget;
            let command = (Command::SliceIncrNow, key);
            slice_step(current, now, command, window, max, ttl, budget)
        })
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.rmw_fallible(key, |current, now| {
            let (mut set, expires_at) = match current {
                None => (HashSet::default(), 0),
                Some(entry) => match &entry.value {
                    Value::Structured(s) => match &**s {
                        Structured::Set(set) => (set.clone(), entry.expires_at),
                        Structured::Window(_) | Structured::Shared(_) => {
                            return Op::Keep(Err(wrong_type(Command::SetAdd, key, "a set")));
                        }
                    },
                    Value::Bytes(_) => {
                        return Op::Keep(Err(wrong_type(Command::SetAdd, key, "a set")));
                    }
                },
            };
            let added = members
                .iter()
                .filter(|m| set.insert((**m).to_owned()))
                .count() as u64;
            if set.is_empty() {
                return Op::Keep(Ok(0));
            }
            let expires_at = match ttl {
                Some(ttl) => deadline(Some(ttl), now),
                None => expires_at,
            };
            let entry = Entry {
                value: Value::Structured(Arc::new(Structured::Set(set))),
                expires_at,
            };
            Op::Put(entry, Ok(added))
        })
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.rmw_fallible(key, |current, _| {
            let Some(entry) = current else {
                return Op::Keep(Ok(0));
            };
            let Value::Structured(s) = &mut entry.value else {
                return Op::Keep(Err(wrong_type(Command::SetRemove, key, "a set")));
            };
            let Structured::Set(set) = Arc::make_mut(s) else {
                return Op::Keep(Err(wrong_type(Command::SetRemove, key, "a set")));
            };
            let removed = members.iter().filter(|m| set.remove(**m)).count() as u64;
            if set.is_empty() {
                Op::Remove(Ok(removed))
            } else {
                Op::Keep(Ok(removed))
            }
        })
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.rmw_fallible(key, |current, _| {
            let Some(entry) = current else {
                return Op::Keep(Ok(Vec::new()));
            };
            let Value::Structured(s) = &mut entry.value else {
                return Op::Keep(Err(wrong_type(Command::SetPop, key, "a set")));
            };
            let Structured::Set(set) = Arc::make_mut(s) else {
                return Op::Keep(Err(wrong_type(Command::SetPop, key, "a set")));
            };
            let popped: Vec<String> = set.iter().take(count).cloned().collect();
            for member in &popped {
                set.remove(member);
            }
            if set.is_empty() {
                Op::Remove(Ok(popped))
            } else {
                Op::Keep(Ok(popped))
            }
        })
    }

    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        Ok(pong(message))
    }

    async fn clear(&self) -> Result<()> {
        self.inner.map.clear();
        Ok(())
    }

    async fn keys_count(&self) -> Result<u64> {
        Ok(self.inner.map.len() as u64)
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        Ok(Some(self.live(key).map_or(0, |entry| {
            key.len() as u64 + entry.size() + ENTRY_OVERHEAD
        })))
    }

    async fn close(&self) -> Result<()> {
        if let Some(task) = self.inner.purge.lock().take() {
            task.abort();
        }
        Ok(())
    }
}

/// One sliding-window step (`slice_incr`, `slice_incr_now`) on the entry under its guard:
/// forgets events before `start`, counts those in `[start, end]`, and below `max` records one
/// at `end`, resetting the TTL when one is given.
///
/// In place: the window is sorted, so forgetting old events drains a prefix and a new event
/// (time moves forward) lands at the end; no copy of the window per call.
///
/// A window that one more event would make heavier than an entry may be is refused
/// ([`Error::ValueOverBudget`]); events it forgot stay forgotten.
fn slice_step(
    current: Option<&mut Entry>,
    now: u64,
    (command, key): (Command, &str),
    (start, end): (u64, u64),
    max: u64,
    ttl: Option<Duration>,
    budget: &Budget,
) -> Op<Result<u64>> {
    let Some(entry) = current else {
        if max == 0 {
            return Op::Keep(Ok(0));
        }
        let window = Structured::Window(VecDeque::from([end]));
        let entry = Entry {
            value: Value::Structured(Arc::new(window)),
            expires_at: deadline(ttl, now),
        };
        return Op::Put(entry, Ok(1));
    };
    let is_window =
        matches!(&entry.value, Value::Structured(s) if matches!(**s, Structured::Window(_)));
    let Value::Structured(s) = &mut entry.value else {
        return Op::Keep(Err(wrong_type(command, key, "a sliding window")));
    };
    if !is_window {
        return Op::Keep(Err(wrong_type(command, key, "a sliding window")));
    }
    let Structured::Window(events) = Arc::make_mut(s) else {
        return Op::Keep(Err(wrong_type(command, key, "a sliding window")));
    };
    // A ring buffer: forgetting the oldest events is O(forgotten), not a shift of the whole
    // window; the common cases (nothing to forget, the new event is the latest) skip the
    // searches.
    if events.front().is_some_and(|&t| t < start) {
        let forgotten = events.partition_point(|&t| t < start);
        events.drain(..forgotten);
    }
    let at = if events.back().is_none_or(|&t| t <= end) {
        events.len()
    } else {
        events.partition_point(|&t| t <= end)
    };
    let count = at as u64;
    if count >= max {
        return Op::Keep(Ok(count));
    }
    if budget.bytes_bounded() {
        let grown = key.len() as u64 + (events.len() as u64 + 1) * 8 + ENTRY_OVERHEAD;
        if let Err(refused) = budget.check(key, grown) {
            return Op::Keep(Err(refused));
        }
    }
    events.insert(at, end);
    if let Some(ttl) = ttl {
        entry.expires_at = deadline(Some(ttl), now);
    }
    Op::Keep(Ok(count + 1))
}
