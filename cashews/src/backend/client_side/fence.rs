//! Fences against the fill race: a value read from Redis (or written by us) must not land in
//! the local tier after an invalidation of its key has been handled.
//!
//! A reply and the invalidation push for the same key are handled by different code paths
//! (the caller's task and the connection driver), so a reply read before another client's
//! write may reach the tier after that write's invalidation was processed. Each key hashes to
//! one of [`STRIPES`] stripes holding an invalidation sequence; a global epoch covers whole-tier
//! flushes (link drop, `clear`, `delete_match`, a null invalidation). A fill takes a [`Ticket`]
//! before it sends its command and inserts only if, under the stripe's lock, neither the stripe
//! nor the epoch moved meanwhile. Insert and invalidation run under the same stripe lock, so an
//! invalidation either comes first (the fill sees the moved sequence and skips) or comes after
//! the insert (and removes it). Keys sharing a stripe only cost a skipped fill.
//!
//! The locks are held for a few map operations on the memory tier, never across an `.await`
//! (the invalidation path runs inside redis-rs's connection driver, which must not block).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// How many stripes keys hash to: enough that unrelated keys rarely share one on a busy tier.
/// A power of two, so a masked hash is always a valid index.
pub(super) const STRIPES: usize = 256;

/// What a fill or a write saw before it sent its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket {
    stripe: usize,
    epoch: u64,
    seq: u64,
}

/// The stripes and the epoch.
pub(super) struct Fences {
    epoch: AtomicU64,
    stripes: Box<[Mutex<u64>; STRIPES]>,
    hasher: foldhash::fast::FixedState,
}

impl std::fmt::Debug for Fences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fences")
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Fences {
    pub(super) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(0),
            stripes: Box::new(std::array::from_fn(|_| Mutex::new(0))),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    fn stripe(&self, key: &str) -> (usize, &Mutex<u64>) {
        // Masked by a power of two below the array's length: always in bounds.
        let i = (self.hasher.hash_one(key) as usize) & (STRIPES - 1);
        (i, &self.stripes[i])
    }

    /// What a fill records before it sends its read. The epoch is read first: a flush that
    /// happens after this point is then always seen by [`Fences::fill`].
    pub(super) fn ticket(&self, key: &str) -> Ticket {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let (stripe, lock) = self.stripe(key);
        let seq = *lock.lock();
        Ticket { stripe, epoch, seq }
    }

    /// Runs `insert` only if nothing invalidated the ticket's key (or flushed the tier) since
    /// the ticket was taken; returns whether it ran.
    pub(super) fn fill(&self, ticket: &Ticket, insert: impl FnOnce()) -> bool {
        let seq = self.stripes[ticket.stripe & (STRIPES - 1)].lock();
        if *seq == ticket.seq && self.epoch.load(Ordering::SeqCst) == ticket.epoch {
            insert();
            true
        } else {
            false
        }
    }

    /// An invalidation of `key`: moves its stripe, then runs `remove`, under the stripe lock.
    pub(super) fn invalidate(&self, key: &str, remove: impl FnOnce()) {
        let (_, lock) = self.stripe(key);
        let mut seq = lock.lock();
        *seq = seq.wrapping_add(1);
        remove();
    }

    /// The start of one of our own writes to `key`: invalidates it (so a fill in flight or an
    /// earlier write of ours cannot insert) and returns the ticket its end checks.
    pub(super) fn begin_write(&self, key: &str, remove: impl FnOnce()) -> Ticket {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let (stripe, lock) = self.stripe(key);
        let mut seq = lock.lock();
        *seq = seq.wrapping_add(1);
        remove();
        Ticket {
            stripe,
            epoch,
            seq: *seq,
        }
    }

    /// The end of one of our own writes, once Redis acknowledged (or refused) it: `settle` runs
    /// under the stripe lock with `true` when nothing else touched the key since
    /// [`Fences::begin_write`] (the reply is then the key's latest state as far as we know),
    /// `false` otherwise (another write of ours, an invalidation or a flush came in between:
    /// the caller must then only remove). The stripe moves afterwards either way, so a fill that
    /// read the key while the write was in flight cannot insert its older value.
    pub(super) fn end_write(&self, ticket: &Ticket, settle: impl FnOnce(bool)) {
        let mut seq = self.stripes[ticket.stripe & (STRIPES - 1)].lock();
        let current = *seq == ticket.seq && self.epoch.load(Ordering::SeqCst) == ticket.epoch;
        settle(current);
        *seq = seq.wrapping_add(1);
    }

    /// A whole-tier invalidation: moves the epoch, waits for every insert that saw the old
    /// epoch to finish (by passing through each stripe lock), then runs `flush`.
    pub(super) fn new_epoch(&self, flush: impl FnOnce()) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for stripe in self.stripes.iter() {
            drop(stripe.lock());
        }
        flush();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::Fences;

    #[test]
    fn fill_after_invalidation_is_skipped() {
        let fences = Fences::new();
        let ticket = fences.ticket("k");
        // Another client's write is invalidated while our read is in flight.
        fences.invalidate("k", || {});
        assert!(!fences.fill(&ticket, || panic!("a stale fill must not insert")));
        // A fresh read after the invalidation fills.
        let ticket = fences.ticket("k");
        assert!(fences.fill(&ticket, || {}));
    }

    #[test]
    fn flush_skips_every_fill_in_flight() {
        let fences = Fences::new();
        let tickets: Vec<_> = (0..100).map(|i| fences.ticket(&format!("k{i}"))).collect();
        let flushed = Cell::new(false);
        fences.new_epoch(|| flushed.set(true));
        assert!(flushed.get());
        for ticket in &tickets {
            assert!(!fences.fill(ticket, || {}));
        }
    }

    #[test]
    fn invalidating_another_key_mostly_keeps_the_fill() {
        let fences = Fences::new();
        let ticket = fences.ticket("k");
        let other = (0..1000)
            .map(|i| format!("o{i}"))
            .find(|o| fences.ticket(o).stripe != ticket.stripe)
            .unwrap();
        fences.invalidate(&other, || {});
        assert!(fences.fill(&ticket, || {}));
    }

    #[test]
    fn own_writes_in_flight_together_leave_nothing_behind() {
        let fences = Fences::new();
        // Two of our writes to one key overlap, and Redis may apply them in either order.
        // Whichever ends first under the newest ticket may insert; the other one's end then
        // finds the stripe moved and removes, so nothing is left once both have returned.
        for newest_ends_first in [true, false] {
            let a = fences.begin_write("k", || {});
            let b = fences.begin_write("k", || {});
            let mut settled = Vec::new();
            let order = if newest_ends_first { [b, a] } else { [a, b] };
            for ticket in &order {
                fences.end_write(ticket, |current| settled.push(current));
            }
            let expected = if newest_ends_first {
                vec![true, false]
            } else {
                vec![false, false]
            };
            assert_eq!(settled, expected);
        }
        // A lone write inserts.
        let c = fences.begin_write("k", || {});
        fences.end_write(&c, |current| assert!(current));
    }

    #[test]
    fn fill_in_flight_during_own_write_is_skipped() {
        let fences = Fences::new();
        // A read sent before our write was acknowledged may carry the value before the write.
        let write = fences.begin_write("k", || {});
        let fill = fences.ticket("k");
        fences.end_write(&write, |current| assert!(current));
        assert!(!fences.fill(&fill, || {}));
    }

    #[test]
    fn invalidation_during_own_write_only_removes() {
        let fences = Fences::new();
        let write = fences.begin_write("k", || {});
        fences.invalidate("k", || {});
        fences.end_write(&write, |current| assert!(!current));
        let write = fences.begin_write("k", || {});
        fences.new_epoch(|| {});
        fences.end_write(&write, |current| assert!(!current));
    }
}
