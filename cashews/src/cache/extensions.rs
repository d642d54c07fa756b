//! State that features layered on a [`Cache`](super::Cache) keep per cache (the strategies'
//! flights and re-entry markers, the lock wake-ups), without the `Cache` knowing their types.

use std::any::{Any, TypeId};
use std::sync::Arc;

use arc_swap::ArcSwap;

type Slot = (TypeId, Arc<dyn Any + Send + Sync>);

/// A type map: one value of each type, created on first use and dropped with the cache. Read
/// on the miss paths, and by the one strategy whose callers read inside a flight
/// (`cache_locked` on an asynchronous backend): a list swapped whole on the rare insert, so a
/// read takes no lock and hashes nothing (a scan of a few `TypeId`s).
#[derive(Default)]
pub(super) struct Extensions(ArcSwap<Vec<Slot>>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.0.load().len())
            .finish()
    }
}

impl Extensions {
    /// The value of type `T`, made with `T::default()` by the first caller.
    pub(super) fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        if let Some(value) = Self::find::<T>(&self.0.load()) {
            return value;
        }
        let fresh: Arc<dyn Any + Send + Sync> = Arc::new(T::default());
        let mut found = None;
        self.0.rcu(|slots| {
            found = Self::find::<T>(slots);
            let mut slots = Vec::clone(slots);
            if found.is_none() {
                slots.push((TypeId::of::<T>(), Arc::clone(&fresh)));
            }
            slots
        });
        // Keyed by the type: the downcast cannot fail; if it did, a fresh value is only
        // unshared state, never a wrong one.
        found.unwrap_or_else(|| fresh.downcast::<T>().unwrap_or_default())
    }

    fn find<T: Send + Sync + 'static>(slots: &[Slot]) -> Option<Arc<T>> {
        let (_, value) = slots.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
        Arc::clone(value).downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type() {
        let extensions = Extensions::default();
        let a = extensions.get::<std::sync::Mutex<u32>>();
        *a.lock().unwrap() = 5;
        assert_eq!(
            *extensions.get::<std::sync::Mutex<u32>>().lock().unwrap(),
            5
        );
        assert_eq!(
            *extensions.get::<std::sync::Mutex<u64>>().lock().unwrap(),
            0
        );
    }
}
