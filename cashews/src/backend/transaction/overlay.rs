//! The overlay of a transaction: its pending writes (each with its exact deadline on the
//! transaction's clock) and pending deletes, over the backend's data. Plain synchronous data,
//! kept behind a short mutex by [`Transactional`](super::Transactional).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;

use crate::backend::layout::parse_int;
use crate::backend::{Batch, Expiry};
use crate::command::Command;
use crate::error::{Error, Result, shorten};
use crate::pattern;

/// A pending write: the value and when it expires (`None`: never), on the transaction's clock.
#[derive(Debug, Clone)]
struct Pending {
    value: Bytes,
    deadline: Option<Duration>,
}

impl Pending {
    fn is_live(&self, now: Duration) -> bool {
        self.deadline.is_none_or(|deadline| deadline > now)
    }
}

/// What the transaction knows of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Look {
    /// Written by the transaction and not expired: the value and its deadline.
    Live(Bytes, Option<Duration>),
    /// Deleted by the transaction, or written and expired since: absent, whatever the
    /// backend holds.
    Gone,
    /// Untouched: the backend answers.
    Backend,
}

/// The pending writes and deletes. A key is in at most one of the two.
#[derive(Debug, Default, Clone)]
pub(super) struct Overlay {
    writes: HashMap<String, Pending>,
    deleted: HashSet<String>,
}

/// The deadline of a TTL given at `now`; a TTL too long to represent never expires.
pub(super) fn deadline(ttl: Option<Duration>, now: Duration) -> Option<Duration> {
    ttl.and_then(|ttl| now.checked_add(ttl))
}

/// A remaining TTL rounded up to whole milliseconds (the unit backends store), so that keys
/// written with the same deadline share one TTL in a batch.
fn whole_millis(left: Duration) -> Duration {
    let millis = left.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

impl Overlay {
    pub(super) fn look(&self, key: &str, now: Duration) -> Look {
        match self.writes.get(key) {
            Some(pending) if pending.is_live(now) => {
                Look::Live(pending.value.clone(), pending.deadline)
            }
            Some(_) => Look::Gone,
            None if self.deleted.contains(key) => Look::Gone,
            None => Look::Backend,
        }
    }

    /// Whether the transaction has written or deleted `key`.
    pub(super) fn knows(&self, key: &str) -> bool {
        self.writes.contains_key(key) || self.deleted.contains(key)
    }

    /// Whether nothing is pending.
    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.deleted.is_empty()
    }

    pub(super) fn write(&mut self, key: &str, value: Bytes, deadline: Option<Duration>) {
        self.deleted.remove(key);
        self.writes
            .insert(key.to_owned(), Pending { value, deadline });
    }

    pub(super) fn delete(&mut self, key: &str) {
        self.writes.remove(key);
        self.deleted.insert(key.to_owned());
    }

    /// Forgets what the transaction decided about a key it sees as absent (deleted, or
    /// written and expired): a command outside the transaction has just created it on the
    /// backend, which then answers for it again.
    pub(super) fn forget_gone(&mut self, key: &str, now: Duration) {
        if self.look(key, now) == Look::Gone {
            self.writes.remove(key);
            self.deleted.remove(key);
        }
    }

    /// Takes what the backend holds for a key the transaction has not touched yet: its value
    /// and deadline, or `None` when the backend has no such key.
    pub(super) fn seed(&mut self, key: &str, base: Option<(Bytes, Option<Duration>)>) {
        if self.knows(key) {
            return;
        }
        match base {
            Some((value, deadline)) => self.write(key, value, deadline),
            None => {
                self.deleted.insert(key.to_owned());
            }
        }
    }

    /// `incr` on a key the transaction knows; `None` when the backend's value is needed first
    /// (see [`Overlay::seed`]).
    pub(super) fn incr(
        &mut self,
        backend: &'static str,
        key: &str,
        by: i64,
        ttl: Option<Duration>,
        now: Duration,
    ) -> Option<Result<i64>> {
        match self.look(key, now) {
            Look::Backend => None,
            Look::Gone => {
                self.write(key, Bytes::from(by.to_string()), deadline(ttl, now));
                Some(Ok(by))
            }
            Look::Live(value, deadline) => {
                let Some(current) = parse_int(&value) else {
                    return Some(Err(Error::WrongType {
                        command: Command::Incr,
                        key: shorten(key),
                        expected: "a decimal integer value",
                    }));
                };
                let Some(next) = current.checked_add(by) else {
                    return Some(Err(Error::backend(
                        backend,
                        Command::Incr,
                        "increment or decrement would overflow",
                    )));
                };
                self.write(key, Bytes::from(next.to_string()), deadline);
                Some(Ok(next))
            }
        }
    }

    /// `expire` on a key the transaction knows (`None`: ask the backend first). A deleted key
    /// is not revived.
    pub(super) fn expire(
        &mut self,
        key: &str,
        ttl: Option<Duration>,
        now: Duration,
    ) -> Option<bool> {
        match self.look(key, now) {
            Look::Backend => None,
            Look::Gone => Some(false),
            Look::Live(value, _) => {
                self.write(key, value, deadline(ttl, now));
                Some(true)
            }
        }
    }

    /// The remaining lifetime of a key the transaction knows (`None`: ask the backend).
    pub(super) fn get_expire(&self, key: &str, now: Duration) -> Option<Expiry> {
        match self.look(key, now) {
            Look::Backend => None,
            Look::Gone => Some(Expiry::Missing),
            Look::Live(_, None) => Some(Expiry::Persistent),
            Look::Live(_, Some(deadline)) => Some(Expiry::In(deadline.saturating_sub(now))),
        }
    }

    /// Every written key matching `pattern`, live or expired.
    pub(super) fn written_matching(&self, pattern: &str) -> Vec<String> {
        self.writes
            .keys()
            .filter(|key| pattern::matches(pattern, key))
            .cloned()
            .collect()
    }

    /// What a scan of `pattern` sees of the overlay: the live written keys matching it (the
    /// transaction's own answers), and every key the overlay decides (written or deleted),
    /// which the backend's scan must not report.
    pub(super) fn scan_view(&self, pattern: &str, now: Duration) -> (Vec<String>, HashSet<String>) {
        let live = self
            .writes
            .iter()
            .filter(|(key, pending)| pending.is_live(now) && pattern::matches(pattern, key))
            .map(|(key, _)| key.clone())
            .collect();
        let decided = self
            .writes
            .keys()
            .chain(self.deleted.iter())
            .cloned()
            .collect();
        (live, decided)
    }

    /// `delete_match`: deletes the written keys matching `pattern` and every `backend` key
    /// (a scan's result); returns how many of them the transaction saw as present.
    pub(super) fn delete_match(
        &mut self,
        pattern: &str,
        backend: Vec<String>,
        now: Duration,
    ) -> u64 {
        let mut deleted = 0;
        for key in self.written_matching(pattern) {
            if matches!(self.look(&key, now), Look::Live(..)) {
                deleted += 1;
            }
            self.delete(&key);
        }
        for key in backend {
            if !self.knows(&key) {
                deleted += 1;
                self.deleted.insert(key);
            }
        }
        deleted
    }

    /// The keys the overlay makes present, and those it makes absent (deleted or expired):
    /// what adjusts the backend's key count.
    pub(super) fn pending_keys(&self, now: Duration) -> (Vec<String>, Vec<String>) {
        let mut present = Vec::new();
        let mut absent: Vec<String> = self.deleted.iter().cloned().collect();
        for (key, pending) in &self.writes {
            if pending.is_live(now) {
                present.push(key.clone());
            } else {
                absent.push(key.clone());
            }
        }
        (present, absent)
    }

    /// The commit: every pending delete, every live write with its remaining TTL (rounded up
    /// to whole milliseconds), and a delete for every write whose TTL ran out before the
    /// commit (the transaction saw that key absent, so the backend must not keep an older
    /// value). Keys in sorted order, so a commit's order does not depend on hashing.
    pub(super) fn into_batch(self, now: Duration) -> Batch {
        let mut batch = Batch::new();
        let mut deletes: Vec<String> = self.deleted.into_iter().collect();
        let mut writes: Vec<(String, Pending)> = Vec::with_capacity(self.writes.len());
        for (key, pending) in self.writes {
            if pending.is_live(now) {
                writes.push((key, pending));
            } else {
                deletes.push(key);
            }
        }
        deletes.sort_unstable();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for key in deletes {
            batch.delete(key);
        }
        for (key, pending) in writes {
            let ttl = pending
                .deadline
                .map(|deadline| whole_millis(deadline.saturating_sub(now)));
            batch.set(key, pending.value, ttl);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_secs(100);

    #[test]
    fn writes_hide_deletes_and_expire() {
        let mut o = Overlay::default();
        assert_eq!(o.look("k", NOW), Look::Backend);
        o.delete("k");
        assert_eq!(o.look("k", NOW), Look::Gone);
        o.write("k", "v".into(), Some(NOW + Duration::from_secs(1)));
        assert!(matches!(o.look("k", NOW), Look::Live(..)));
        assert_eq!(o.look("k", NOW + Duration::from_secs(1)), Look::Gone);
    }

    #[test]
    fn batch_has_exact_remaining_ttls_and_drops_expired_writes() {
        let mut o = Overlay::default();
        o.write(
            "a",
            "1".into(),
            Some(NOW + Duration::from_micros(2_500_100)),
        );
        o.write("b", "2".into(), None);
        o.write("c", "3".into(), Some(NOW));
        o.delete("d");
        let batch = o.into_batch(NOW);
        assert_eq!(batch.deletes(), ["c", "d"]);
        let writes: Vec<(&str, Option<Duration>)> =
            batch.writes().iter().map(|w| (w.key(), w.ttl())).collect();
        assert_eq!(
            writes,
            [("a", Some(Duration::from_millis(2_501))), ("b", None)]
        );
    }

    #[test]
    fn incr_restarts_after_delete_and_keeps_deadline() {
        let mut o = Overlay::default();
        let later = Some(NOW + Duration::from_secs(5));
        assert!(o.incr("mem", "k", 1, None, NOW).is_none());
        o.seed("k", Some(("41".into(), later)));
        assert_eq!(
            o.incr("mem", "k", 1, None, NOW).and_then(Result::ok),
            Some(42)
        );
        assert_eq!(
            o.get_expire("k", NOW),
            Some(Expiry::In(Duration::from_secs(5)))
        );
        o.delete("k");
        assert_eq!(
            o.incr("mem", "k", 1, None, NOW).and_then(Result::ok),
            Some(1)
        );
        assert_eq!(o.get_expire("k", NOW), Some(Expiry::Persistent));
    }
}
