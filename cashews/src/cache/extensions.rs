//! State that features layered on a [`Cache`](super::Cache) keep per cache (the strategies'
//! flights and re-entry markers, the lock wake-ups), without the `Cache` knowing their types.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

/// A type map: one value of each type, created on first use and dropped with the cache.
/// Read on the miss paths only (a read lock and one hash lookup), and by the one strategy
/// whose callers read inside a flight (`cache_locked` on an asynchronous backend).
#[derive(Default)]
pub(super) struct Extensions(RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.0.read().len())
            .finish()
    }
}

impl Extensions {
    /// The value of type `T`, created with `T::default()` by the first call.
    pub(super) fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        if let Some(value) = self.0.read().get(&TypeId::of::<T>())
            && let Ok(value) = Arc::clone(value).downcast::<T>()
        {
            return value;
        }
        let mut map = self.0.write();
        let value = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        // Keyed by the type: the downcast cannot fail; if it did, a fresh value is only
        // unshared state, never a wrong one.
        Arc::clone(value).downcast::<T>().unwrap_or_default()
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
