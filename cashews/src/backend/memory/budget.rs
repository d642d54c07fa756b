//! The byte budget of a `mem://` cache: how an entry is weighed, and which entries can never
//! be kept.
//!
//! Each entry weighs 1 unit against `size`. With `max_bytes`, an entry weighs
//! `ceil(bytes × size / max_bytes)` (at least 1), so both bounds hold at once: the total weight
//! stays under `size`, hence the entry count under `size` and the bytes under `max_bytes`.
//!
//! quick_cache splits the weight capacity evenly over its shards and admits no entry heavier
//! than a fixed share of its shard ([`HOT_ALLOCATION`]): such an entry would be dropped on
//! insert, silently. [`Budget::check`] refuses it first, with [`Error::ValueOverBudget`].
//!
//! An entry that grows in place is re-admitted (see `MemoryBackend::rmw`), so the map evicts
//! others to make room; [`Readmission`] keeps the map from evicting that very entry then
//! (a hot rate-limit window would otherwise start over, letting calls through).

use std::cell::Cell;

use quick_cache::{Lifecycle, Weighter};

use super::entry::{ENTRY_OVERHEAD, Entry, Value};
use crate::error::{Error, Result, shorten};

/// The share of a shard's weight capacity that its "hot" queue targets: quick_cache admits no
/// entry heavier than that. Set explicitly on the map (it is quick_cache's default), so the
/// admission bound computed here is the one the map applies.
pub(super) const HOT_ALLOCATION: f64 = 0.97;

/// Weighs entries for quick_cache (see the module docs).
#[derive(Clone)]
pub(super) struct EntryWeighter {
    /// `(size, max_bytes)` when bounded by bytes too.
    pub(super) bytes_bound: Option<(u64, u64)>,
}

impl EntryWeighter {
    /// The weight of an entry taking `bytes` (key, value and overhead).
    pub(super) fn weight_of(&self, bytes: u64) -> u64 {
        match self.bytes_bound {
            None => 1,
            Some((size, max_bytes)) => {
                let weight =
                    (u128::from(bytes) * u128::from(size)).div_ceil(u128::from(max_bytes.max(1)));
                u64::try_from(weight).unwrap_or(u64::MAX).max(1)
            }
        }
    }
}

impl Weighter<String, Entry> for EntryWeighter {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        self.weight_of(footprint(key, entry))
    }
}

thread_local! {
    /// The identity ([`identity`]) of the entry this thread is re-admitting; 0 when none.
    static READMITTING: Cell<usize> = const { Cell::new(0) };
}

/// The address of an entry's value allocation: clones of an entry share it, other entries
/// never do while it lives.
fn identity(entry: &Entry) -> usize {
    match &entry.value {
        Value::Bytes(text) => triomphe::Arc::as_ptr(text).cast::<u8>() as usize,
        Value::Structured(structured) => std::sync::Arc::as_ptr(structured).cast::<u8>() as usize,
    }
}

/// Runs `insert` (the re-admission of `entry`) with `entry` pinned: the evictions it makes
/// room with take other entries. Eviction runs on the inserting thread, under the shard lock,
/// so a thread-local names the entry to the map's [`Readmission`] lifecycle.
pub(super) fn readmit<R>(entry: Entry, insert: impl FnOnce(Entry) -> R) -> R {
    struct Unpin;
    impl Drop for Unpin {
        fn drop(&mut self) {
            READMITTING.with(|pinned| pinned.set(0));
        }
    }
    READMITTING.with(|pinned| pinned.set(identity(&entry)));
    let _unpin = Unpin;
    insert(entry)
}

/// The map's lifecycle: quick_cache's default (evicted entries are dropped after the shard
/// lock is released), plus the pin of [`readmit`].
///
/// Entries grow in weight only when weighed by bytes, so only a byte-bounded map re-admits
/// and pins; the others skip the pin check on every eviction.
#[derive(Clone, Default)]
pub(super) struct Readmission {
    bytes_bounded: bool,
}

impl Readmission {
    /// The lifecycle of a map weighed by bytes (`max_bytes`) or by entries only.
    pub(super) const fn new(bytes_bounded: bool) -> Self {
        Self { bytes_bounded }
    }
}

impl Lifecycle<String, Entry> for Readmission {
    type RequestState = [Option<(String, Entry)>; 2];

    #[inline]
    fn is_pinned(&self, _key: &String, entry: &Entry) -> bool {
        if !self.bytes_bounded {
            return false;
        }
        let pinned = READMITTING.with(Cell::get);
        pinned != 0 && pinned == identity(entry)
    }

    #[inline]
    fn on_evict(&self, state: &mut Self::RequestState, key: String, entry: Entry) {
        if let Some(slot) = state.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some((key, entry));
        }
    }
}

/// The bytes an entry takes in the budget: key, value and the fixed per-entry overhead.
pub(super) fn footprint(key: &str, entry: &Entry) -> u64 {
    key.len() as u64 + entry.size() + ENTRY_OVERHEAD
}

/// What one entry may weigh in a cache, and the errors for entries that weigh more.
pub(super) struct Budget {
    weighter: EntryWeighter,
    /// The heaviest entry the map admits (see [`HOT_ALLOCATION`]).
    max_entry_weight: u64,
}

impl Budget {
    /// The budget of a map with `shard_capacity` weight units per shard.
    pub(super) fn new(weighter: EntryWeighter, shard_capacity: u64) -> Self {
        // quick_cache's own formula for the hot target, with the allocation we gave it.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "quick_cache computes its admission bound exactly so; a positive product"
        )]
        let hot = ((shard_capacity as f64 * HOT_ALLOCATION) as u64)
            .clamp(shard_capacity.min(1), shard_capacity);
        Self {
            weighter,
            max_entry_weight: hot,
        }
    }

    /// Whether entries are weighed by bytes (`max_bytes` is set).
    pub(super) const fn bytes_bounded(&self) -> bool {
        self.weighter.bytes_bound.is_some()
    }

    /// The weight of `entry` under `key`.
    pub(super) fn weight(&self, key: &str, entry: &Entry) -> u64 {
        self.weighter.weight_of(footprint(key, entry))
    }

    /// Refuses an entry of `bytes` (its [`footprint`]) that the map would never keep.
    pub(super) fn check(&self, key: &str, bytes: u64) -> Result<()> {
        if self.weighter.weight_of(bytes) <= self.max_entry_weight {
            return Ok(());
        }
        Err(self.over(key, bytes))
    }

    /// Refuses `entry` under `key` if the map would never keep it.
    pub(super) fn check_entry(&self, key: &str, entry: &Entry) -> Result<()> {
        // Weighed by entries only, every entry weighs 1, which every shard admits.
        if !self.bytes_bounded() {
            return Ok(());
        }
        self.check(key, footprint(key, entry))
    }

    #[cold]
    fn over(&self, key: &str, bytes: u64) -> Error {
        let (size, max_bytes) = self.weighter.bytes_bound.unwrap_or((1, 0));
        // The largest footprint whose weight fits: `ceil(b × size / max) <= w`.
        let limit = u128::from(self.max_entry_weight) * u128::from(max_bytes) / u128::from(size);
        Error::ValueOverBudget {
            backend: "mem",
            key: shorten(key),
            size: bytes,
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
            option: "max_bytes",
            budget: max_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::{Text, Value};
    use super::*;

    #[test]
    fn weight_bounds_bytes_and_entries() {
        let w = EntryWeighter {
            bytes_bound: Some((100, 10_000)),
        };
        let entry = Entry::new(Value::Bytes(Text::from(vec![0; 36])), None, 0);
        // 36 value + 0 key + 64 overhead = 100 bytes = 1% of max_bytes = 1 of 100 units.
        assert_eq!(w.weight(&String::new(), &entry), 1);
        let big = Entry::new(Value::Bytes(Text::from(vec![0; 936])), None, 0);
        assert_eq!(w.weight(&String::new(), &big), 10);
    }

    #[test]
    fn the_limit_is_the_largest_footprint_that_fits() {
        let weighter = EntryWeighter {
            bytes_bound: Some((1000, 1 << 20)),
        };
        let budget = Budget::new(weighter, 1000);
        let Err(Error::ValueOverBudget { limit, .. }) = budget.check("k", 1 << 20) else {
            panic!("a value of the whole budget is refused");
        };
        assert!(budget.check("k", limit).is_ok());
        assert!(budget.check("k", limit + 1).is_err());
    }
}
