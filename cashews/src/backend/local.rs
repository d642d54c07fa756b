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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
#[derive(Debug, Default)]
pub(crate) struct FrontGate {
    pub(crate) up: AtomicBool,
    pub(crate) hits: AtomicU64,
}

impl FrontGate {
    /// Whether the tier may answer now.
    #[inline]
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    #[inline]
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
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
