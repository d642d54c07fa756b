//! [`Batch`]: deletes and writes applied together by [`Backend::apply`](super::Backend::apply),
//! each write with its own exact TTL.

use std::time::Duration;

use bytes::Bytes;

/// A set of deletes and writes for [`Backend::apply`](super::Backend::apply): what a
/// transaction commits. Deletes run before writes, so a key in both ends written.
///
/// ```
/// use std::time::Duration;
/// use cashews::backend::Batch;
///
/// let mut batch = Batch::new();
/// batch.delete("old").set("new", "v".into(), Some(Duration::from_millis(1_500)));
/// assert_eq!(batch.deletes(), ["old"]);
/// assert_eq!(batch.writes()[0].key(), "new");
/// assert_eq!(batch.writes()[0].ttl(), Some(Duration::from_millis(1_500)));
/// assert!(!batch.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    deletes: Vec<String>,
    writes: Vec<BatchWrite>,
}

/// One write of a [`Batch`]: a key, its value and its TTL (`None`: no expiry).
///
/// ```
/// let mut batch = cashews::backend::Batch::new();
/// batch.set("k", "v".into(), None);
/// let write = &batch.writes()[0];
/// assert_eq!((write.key(), write.value().as_ref(), write.ttl()), ("k", &b"v"[..], None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchWrite {
    key: String,
    value: Bytes,
    ttl: Option<Duration>,
}

impl BatchWrite {
    /// The key written.
    ///
    /// ```
    /// let mut batch = cashews::backend::Batch::new();
    /// assert_eq!(batch.set("k", "v".into(), None).writes()[0].key(), "k");
    /// ```
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value written.
    ///
    /// ```
    /// let mut batch = cashews::backend::Batch::new();
    /// assert_eq!(batch.set("k", "v".into(), None).writes()[0].value().as_ref(), b"v");
    /// ```
    #[must_use]
    pub const fn value(&self) -> &Bytes {
        &self.value
    }

    /// The TTL the key gets; `None` for no expiry.
    ///
    /// ```
    /// let mut batch = cashews::backend::Batch::new();
    /// assert_eq!(batch.set("k", "v".into(), None).writes()[0].ttl(), None);
    /// ```
    #[must_use]
    pub const fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}

impl Batch {
    /// An empty batch.
    ///
    /// ```
    /// assert!(cashews::backend::Batch::new().is_empty());
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self {
            deletes: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// Adds a delete of `key`.
    ///
    /// ```
    /// let mut batch = cashews::backend::Batch::new();
    /// batch.delete("a").delete("b");
    /// assert_eq!(batch.deletes(), ["a", "b"]);
    /// ```
    pub fn delete(&mut self, key: impl Into<String>) -> &mut Self {
        self.deletes.push(key.into());
        self
    }

    /// Adds a write of `value` at `key` with `ttl` (`None`: no expiry).
    ///
    /// ```
    /// let mut batch = cashews::backend::Batch::new();
    /// batch.set("a", "1".into(), None);
    /// assert_eq!(batch.writes().len(), 1);
    /// ```
    pub fn set(
        &mut self,
        key: impl Into<String>,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> &mut Self {
        self.writes.push(BatchWrite {
            key: key.into(),
            value,
            ttl,
        });
        self
    }

    /// The keys deleted, in the order added.
    ///
    /// ```
    /// assert!(cashews::backend::Batch::new().deletes().is_empty());
    /// ```
    #[must_use]
    pub fn deletes(&self) -> &[String] {
        &self.deletes
    }

    /// The writes, in the order added.
    ///
    /// ```
    /// assert!(cashews::backend::Batch::new().writes().is_empty());
    /// ```
    #[must_use]
    pub fn writes(&self) -> &[BatchWrite] {
        &self.writes
    }

    /// Whether the batch has neither deletes nor writes.
    ///
    /// ```
    /// let mut batch = cashews::backend::Batch::new();
    /// batch.delete("k");
    /// assert!(!batch.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.writes.is_empty()
    }

    /// Every key the batch names (deletes, then writes), mutably: what a middleware that
    /// rewrites keys changes.
    pub(crate) fn keys_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.deletes
            .iter_mut()
            .chain(self.writes.iter_mut().map(|write| &mut write.key))
    }

    /// Keeps only the writes `keep` admits (by key and value).
    pub(crate) fn retain_writes(&mut self, mut keep: impl FnMut(&str, &Bytes) -> bool) {
        self.writes.retain(|write| keep(&write.key, &write.value));
    }

    /// The writes grouped by TTL (exact, to the nanosecond), each group in the order added:
    /// one `set_many` per group.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut batch = cashews::backend::Batch::new();
    /// let sec = Some(Duration::from_secs(1));
    /// batch.set("a", "1".into(), sec).set("b", "2".into(), None).set("c", "3".into(), sec);
    /// let groups = batch.writes_by_ttl();
    /// assert_eq!(groups.len(), 2);
    /// assert_eq!(groups[0].0, sec);
    /// assert_eq!(groups[0].1.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["a", "c"]);
    /// ```
    #[must_use]
    pub fn writes_by_ttl(&self) -> Vec<(Option<Duration>, Vec<(&str, Bytes)>)> {
        let mut groups: Vec<(Option<Duration>, Vec<(&str, Bytes)>)> = Vec::new();
        for write in &self.writes {
            let pair = (write.key.as_str(), write.value.clone());
            match groups.iter_mut().find(|(ttl, _)| *ttl == write.ttl) {
                Some((_, pairs)) => pairs.push(pair),
                None => groups.push((write.ttl, vec![pair])),
            }
        }
        groups
    }
}
