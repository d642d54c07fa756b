//! [`LocalTier`]: the part of a backend that lives in this process and answers without a
//! future, as a backend declares it through [`Backend::local_tier`](super::Backend::local_tier).
//!
//! A [`Cache`](crate::Cache) asks each backend for its local tier once, when the route is
//! installed, and then serves reads from it synchronously (no boxed future, no reference
//! count on the route): a memory hit is one map lookup and one decode, or no decode at all for
//! [`Cache::get_shared`](crate::Cache::get_shared).
//!
//! Two kinds exist:
//! - a **whole** tier holds every key of its backend (`mem://`): its miss is the backend's
//!   miss, and plain writes ([`Cache::set`](crate::Cache::set)) complete in it;
//! - a **front** tier holds copies of some keys of a remote store (the client-side tier of
//!   `redis://…?client_side=true`) while it is switched on: its hit is the answer, its miss
//!   asks the backend, and writes always go to the backend.
//!
//! A wrapper backend forwards its inner backend's tier only when it need not see the reads
//! and plain writes the tier serves (a pass-through that counts or logs other commands, say);
//! a wrapper that must see every read or write (a transaction, a filter) declares none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::memory::SharedObject;
use super::{MemoryBackend, SetOptions};
use crate::clock::Clock;
use crate::error::Result;

/// A backend's in-process tier, read synchronously by [`Cache`](crate::Cache): a *whole* tier
/// holds every key of its backend (`mem://`), a *front* tier holds copies of some keys of a
/// remote store while it is switched on (the client-side Redis tier); see
/// [`Backend::local_tier`](super::Backend::local_tier).
///
/// ```
/// use cashews::backend::{Backend, LocalTier};
/// use cashews::MemoryBackend;
///
/// // A memory backend is its own whole tier.
/// let mem = MemoryBackend::new(Default::default());
/// assert!(mem.local_tier().is_some_and(|tier| tier.is_whole()));
///
/// // A wrapper that keeps its data in a memory backend declares it as its tier.
/// let tier = LocalTier::whole(mem.clone());
/// assert!(tier.is_whole());
/// ```
#[derive(Clone)]
pub struct LocalTier {
    store: MemoryBackend,
    /// `None` for a whole tier; the switch and hit counter of a front tier.
    front: Option<Arc<FrontGate>>,
}

impl std::fmt::Debug for LocalTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTier")
            .field("whole", &self.is_whole())
            .field("entries", &self.store.len())
            .finish()
    }
}

/// The switch and hit counter of a front tier: its owner turns it on while its copies are
/// kept up to date (the client-side tier: while its invalidation link is up).
///
/// Every local hit reads `up` and counts itself, so the two live apart: `up` is written only
/// when the link goes up or down, and the hits go to [`Striped`] cells of their own. A single
/// counter next to `up` made every hit, on every thread, write the cache line every other
/// hit then had to read `up` from.
#[derive(Debug, Default)]
pub(crate) struct FrontGate {
    pub(crate) up: AtomicBool,
    hits: Striped,
}

impl FrontGate {
    /// Whether the tier may answer now.
    #[inline]
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Counts one local hit.
    #[inline]
    pub(crate) fn hit(&self) {
        self.hits.add(1);
    }

    /// Counts `n` local hits.
    #[inline]
    #[cfg_attr(
        not(feature = "redis"),
        expect(dead_code, reason = "only the client-side Redis tier reads its hits")
    )]
    pub(crate) fn hit_many(&self, n: u64) {
        self.hits.add(n);
    }

    /// The local hits so far.
    #[cfg_attr(
        not(feature = "redis"),
        expect(dead_code, reason = "only the client-side Redis tier reads its hits")
    )]
    pub(crate) fn hits(&self) -> u64 {
        self.hits.sum()
    }
}

/// How many cells a [`Striped`] counter has: a power of two, more than the threads that
/// usually serve hits at once.
const STRIPES: usize = 16;

/// A counter that many threads add to without writing one shared cache line: each thread
/// adds to its own cell (threads are given cells round-robin the first time they count, so
/// up to [`STRIPES`] threads never share one), and a read sums the cells. A sum read while
/// others add is a count that was true at some point during the read, as a single relaxed
/// counter would give.
#[derive(Debug, Default)]
pub(crate) struct Striped {
    cells: Box<[Cell; STRIPES]>,
}

/// One counter cell, alone on its cache lines (128 bytes: adjacent-line prefetchers pull
/// pairs of 64-byte lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Cell(AtomicU64);

impl Striped {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.cells[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.cells.iter().fold(0, |sum, cell| {
            sum.wrapping_add(cell.0.load(Ordering::Relaxed))
        })
    }
}

/// This thread's cell index: given once per thread, round-robin.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        let mut index = stripe.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            stripe.set(index);
        }
        index
    })
}

impl LocalTier {
    /// A tier that holds every key of its backend: the backend keeps its data in `store`.
    ///
    /// ```
    /// let tier = cashews::backend::LocalTier::whole(cashews::MemoryBackend::new(Default::default()));
    /// assert!(tier.is_whole());
    /// ```
    #[must_use]
    pub fn whole(store: MemoryBackend) -> Self {
        Self { store, front: None }
    }

    /// A front tier over `store`, answering only while `gate` is up.
    #[cfg_attr(
        not(feature = "redis"),
        expect(
            dead_code,
            reason = "the client-side Redis tier is the only front tier"
        )
    )]
    pub(crate) fn front(store: MemoryBackend, gate: Arc<FrontGate>) -> Self {
        Self {
            store,
            front: Some(gate),
        }
    }

    /// Whether the tier holds every key of its backend (its miss is a miss), rather than
    /// copies of some keys of a remote store.
    ///
    /// ```
    /// use cashews::backend::Backend;
    /// let mem = cashews::MemoryBackend::new(Default::default());
    /// assert!(mem.local_tier().unwrap().is_whole());
    /// ```
    #[must_use]
    pub fn is_whole(&self) -> bool {
        self.front.is_none()
    }

    /// The clock of the tier's store.
    pub(crate) fn clock(&self) -> Clock {
        self.store.clock()
    }

    /// `read` applied to the stored bytes of `key`: `Some(Some(_))` on a hit, `Some(None)` when
    /// a whole tier misses (the answer), `None` when only the backend can answer (a front tier
    /// that misses or is switched off).
    #[inline]
    pub(crate) fn read<R>(&self, key: &str, read: impl FnOnce(&[u8]) -> R) -> Option<Option<R>> {
        match &self.front {
            None => Some(self.store.read_now(key, read)),
            Some(gate) => {
                if !gate.is_up() {
                    return None;
                }
                let hit = self.store.read_now(key, read)?;
                gate.hit();
                Some(Some(hit))
            }
        }
    }

    /// The shared object of `key` handed to `read`, decoded once per write by `decode` and
    /// kept beside the bytes (see [`Cache::get_shared`](crate::Cache::get_shared)); the
    /// answers as in [`LocalTier::read`].
    #[inline]
    pub(crate) fn read_shared<T: std::any::Any + Send + Sync, R>(
        &self,
        key: &str,
        codec: u64,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        read: impl FnOnce(&T, &SharedObject) -> R,
    ) -> Option<Option<R>> {
        match &self.front {
            None => Some(self.store.read_shared_with(key, codec, decode, read)),
            Some(gate) => {
                if !gate.is_up() {
                    return None;
                }
                let hit = self.store.read_shared_with(key, codec, decode, read)?;
                gate.hit();
                Some(Some(hit))
            }
        }
    }

    /// A plain write completed in the tier: `Some` for a whole tier, `None` when the write
    /// must go to the backend.
    #[inline]
    pub(crate) fn write(
        &self,
        key: &str,
        value: &[u8],
        options: SetOptions,
    ) -> Option<Result<bool>> {
        match self.front {
            None => Some(self.store.set_now(key, value, options)),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{STRIPES, Striped};

    /// Adds from more threads than there are cells (so some share one) all land in the sum.
    #[test]
    fn a_striped_count_sums_every_thread() {
        let counter = Striped::default();
        std::thread::scope(|s| {
            for t in 0..STRIPES as u64 + 3 {
                let counter = &counter;
                s.spawn(move || {
                    for _ in 0..1000 {
                        counter.add(1);
                    }
                    counter.add(t);
                });
            }
        });
        let threads = STRIPES as u64 + 3;
        assert_eq!(counter.sum(), threads * 1000 + (0..threads).sum::<u64>());
    }
}
