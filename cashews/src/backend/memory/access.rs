//! How commands reach entries: the synchronous hot path (`read_now`, `read_shared_with`,
//! `set_now`, `live`) and the atomic read-modify-write every other write goes through.

use std::sync::Arc;

use quick_cache::sync::{EntryAction, EntryResult};

use super::MemoryBackend;
use super::budget;
use super::entry::{Entry, Lookup, Shared, SharedObject, Structured, Text, Value};
use crate::backend::{Condition, SetOptions};
use crate::error::Result;

/// What a read-modify-write callback decides.
pub(super) enum Op<T> {
    /// Leave the entry as it is (an expired entry is dropped).
    Keep(T),
    /// Remove the entry.
    Remove(T),
    /// Store this entry.
    Put(Entry, T),
}

impl MemoryBackend {
    /// Reads a string value and hands it to `read` without copying it: `Cache`'s synchronous
    /// fast path. Sets and windows are not string values: a plain read is a miss, as MGET gives.
    pub(crate) fn read_now<R>(&self, key: &str, read: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.live(key)
            .and_then(|entry| entry.value.string().map(|b| read(b)))
    }

    /// A typed read that keeps the decoded object, handed to `read` by reference (typed, and
    /// as the shared `Arc`): the first read of a value decodes it with `decode` and keeps the
    /// object beside the bytes; later reads by the same `codec` (an identity: objects decoded
    /// under one secret never serve another) and the same type get the kept object without
    /// decoding. A read of another type decodes the bytes again. Any write replaces the entry,
    /// object and all. Byte-bounded caches keep no objects.
    ///
    /// A hit then costs no reference count beyond the entry's own clone (quick_cache has no
    /// borrowing read), since the caller mostly clones the value out and only a detect scope
    /// needs the `Arc` itself.
    pub(crate) fn read_shared_with<T: std::any::Any + Send + Sync, R>(
        &self,
        key: &str,
        codec: u64,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        read: impl FnOnce(&T, &SharedObject) -> R,
    ) -> Option<R> {
        let entry = self.live(key)?;
        let bytes = match &entry.value {
            Value::Bytes(b) => Text::clone(b),
            Value::Structured(s) => match &**s {
                Structured::Shared(shared) => {
                    if shared.codec == codec
                        && let Some(object) = shared.object.downcast_ref::<T>()
                    {
                        return Some(read(object, &shared.object));
                    }
                    let object: SharedObject = Arc::new(decode(&shared.bytes)?);
                    return object.downcast_ref::<T>().map(|typed| read(typed, &object));
                }
                Structured::Set(_) | Structured::Window(_) => return None,
            },
        };
        drop(entry);
        let object: SharedObject = Arc::new(decode(&bytes)?);
        if !self.inner.budget.bytes_bounded() {
            let kept = Arc::clone(&object);
            // Attach only if the entry still holds these very bytes: a write in between wins.
            let _ = self.inner.map.entry(key, None, |_, entry| {
                if let Value::Bytes(current) = &entry.value
                    && Text::ptr_eq(current, &bytes)
                {
                    entry.value = Value::Structured(Arc::new(Structured::Shared(Shared {
                        bytes: Text::clone(&bytes),
                        codec,
                        object: kept,
                    })));
                }
                EntryAction::Retain(())
            });
        }
        object.downcast_ref::<T>().map(|typed| read(typed, &object))
    }

    /// [`Backend::set`] without the future, for `Cache`'s synchronous fast path.
    ///
    /// A value the cache could never keep is refused with [`Error::ValueOverBudget`] and the
    /// key keeps its previous value (quick_cache would drop it on insert, and the old one too).
    ///
    /// [`Backend::set`]: crate::backend::Backend::set
    /// [`Error::ValueOverBudget`]: crate::Error::ValueOverBudget
    pub(crate) fn set_now(&self, key: &str, value: &[u8], options: SetOptions) -> Result<bool> {
        let now = match options.ttl {
            Some(ttl) => self.inner.now_for_deadline(ttl),
            None => 0,
        };
        let entry = Entry::new(Value::Bytes(Text::from(value)), options.ttl, now);
        self.inner.budget.check_entry(key, &entry)?;
        match options.condition {
            Condition::Always => {
                // An insert over an existing key evicts others when the new value is heavier.
                // (An in-place overwrite through `entry` saves the key's allocation on an
                // existing key but costs a placeholder on a new one, the common write after a
                // miss: measured slower overall.)
                self.inner.map.insert(key.to_owned(), entry);
                Ok(true)
            }
            Condition::IfAbsent => self.rmw(key, |current, _| match current {
                Some(_) => Op::Keep(false),
                None => Op::Put(entry.clone(), true),
            }),
            Condition::IfPresent => self.rmw(key, |current, _| match current {
                Some(_) => Op::Put(entry.clone(), true),
                None => Op::Keep(false),
            }),
        }
    }

    /// Reads a live entry without touching its recency.
    pub(super) fn live(&self, key: &str) -> Option<Entry> {
        let entry = self.inner.map.get(&Lookup(key))?;
        if entry.expires_at != 0
            && let Some(now) = self.inner.now_unless_before(entry.expires_at)
            && entry.is_expired(now)
        {
            self.inner.map.remove_if(key, |e| e.is_expired(now));
            return None;
        }
        Some(entry)
    }

    /// Atomic read-modify-write of one key. `f` sees the live entry (`None` when absent or
    /// expired) and may mutate it in place before returning [`Op::Keep`].
    ///
    /// The byte budget holds: an [`Op::Put`] of an entry the cache could never keep is refused
    /// with [`Error::ValueOverBudget`] (nothing changes), and an entry that got heavier, by a
    /// put or in place, is re-admitted so the map evicts others to make room. A command that
    /// grows an entry in place checks the budget itself before growing it.
    ///
    /// [`Error::ValueOverBudget`]: crate::Error::ValueOverBudget
    pub(super) fn rmw<T>(
        &self,
        key: &str,
        mut f: impl FnMut(Option<&mut Entry>, u64) -> Op<T>,
    ) -> Result<T> {
        let budget = &self.inner.budget;
        loop {
            let now = self.now();
            let mut out = None;
            let result = self.inner.map.entry(key, None, |_, entry| {
                let expired = entry.is_expired(now);
                let before = budget.bytes_bounded().then(|| budget.weight(key, entry));
                let op = f(if expired { None } else { Some(entry) }, now);
                let action = match op {
                    Op::Keep(t) => {
                        out = Some(Ok(t));
                        if expired {
                            return EntryAction::Remove;
                        }
                        EntryAction::Retain(())
                    }
                    Op::Remove(t) => {
                        out = Some(Ok(t));
                        return EntryAction::Remove;
                    }
                    Op::Put(new, t) => {
                        if let Err(refused) = budget.check_entry(key, &new) {
                            out = Some(Err(refused));
                            return EntryAction::Retain(());
                        }
                        *entry = new;
                        out = Some(Ok(t));
                        EntryAction::Retain(())
                    }
                };
                match before {
                    // Heavier now: quick_cache re-weighs a retained entry but evicts nothing,
                    // so hand it back to be inserted again, which evicts (see `Replaced`).
                    Some(before) if budget.weight(key, entry) > before => {
                        EntryAction::ReplaceWithGuard
                    }
                    _ => action,
                }
            });
            match result {
                EntryResult::Retained(()) | EntryResult::Removed(..) => {
                    if let Some(t) = out {
                        return t;
                    }
                }
                EntryResult::Replaced(guard, entry) => {
                    // Insert it again: the map evicts others to make room (never this
                    // entry). A plain insert of the key in between wins (it came later),
                    // which `insert` reports as Err.
                    let _ = budget::readmit(entry, |entry| guard.insert(entry));
                    if let Some(t) = out {
                        return t;
                    }
                }
                EntryResult::Vacant(guard) => match f(None, now) {
                    Op::Keep(t) | Op::Remove(t) => return Ok(t),
                    Op::Put(new, t) => {
                        budget.check_entry(key, &new)?;
                        if guard.insert(new).is_ok() {
                            return Ok(t);
                        }
                        // A plain insert raced us; recompute against the new value.
                    }
                },
                EntryResult::Timeout => {}
            }
        }
    }

    /// [`MemoryBackend::rmw`] for commands whose callback may fail.
    pub(super) fn rmw_fallible<T>(
        &self,
        key: &str,
        f: impl FnMut(Option<&mut Entry>, u64) -> Op<Result<T>>,
    ) -> Result<T> {
        self.rmw(key, f)?
    }
}
