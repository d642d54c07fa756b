//! Bit fields, sliding windows and sets: the building blocks of bloom filters, rate limits and
//! tags.

use std::time::Duration;

use super::Cache;
use crate::command::Command;
use crate::error::Result;
use crate::ttl::IntoTtl;

impl Cache {
    // ----- bits, windows, sets -----------------------------------------------------------------

    /// Reads unsigned `size`-bit fields (1 to 63 bits) at positions `index * size`; a missing
    /// key reads zeros.
    ///
    /// # Errors
    ///
    /// A bad size or offset; as [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.get_bits("bloom", &[0, 2, 10], 1).await?, vec![0, 0, 0]);
    /// # Ok(()) }
    /// ```
    pub async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let n = indexes.len();
        let bits = self
            .keyed(Command::GetBits, key, |route| async move {
                route.backend.get_bits(key, indexes, size).await
            })
            .await?;
        Ok(if bits.len() == n { bits } else { vec![0; n] })
    }

    /// Adds `by` to each `size`-bit field, saturating within `[0, 2^size - 1]`; returns the new
    /// values. Atomic.
    ///
    /// # Errors
    ///
    /// As [`Cache::get_bits`]; [`Error::ValueOverBudget`](crate::Error::ValueOverBudget) when
    /// the grown field would be more than the backend's byte budget lets one entry take.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.incr_bits("b", &[0], 2, 5).await?, vec![3]);
    /// # Ok(()) }
    /// ```
    pub async fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> Result<Vec<u64>> {
        self.keyed(Command::IncrBits, key, |route| async move {
            route.backend.incr_bits(key, indexes, size, by).await
        })
        .await
    }

    /// Sliding-window counter: forgets events before `start`, and if fewer than `max` events
    /// lie in `[start, end]`, records one at `end`. Returns the count including it. Atomic.
    /// The caller picks the stamps; for a window ending at the backend's own "now", exact
    /// across concurrent callers and processes, use [`Cache::slice_incr_now`].
    ///
    /// # Errors
    ///
    /// A bad TTL; as [`Cache::get`]; [`Error::ValueOverBudget`](crate::Error::ValueOverBudget)
    /// when one more event would make the window more than the backend's byte budget lets one
    /// entry take (the event is not recorded).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.slice_incr("w", 0, 5, 10, "1m").await?, 1);
    /// assert_eq!(cache.slice_incr("w", 1, 6, 10, "1m").await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: impl IntoTtl,
    ) -> Result<u64> {
        let ttl = ttl.into_ttl()?.duration();
        self.keyed(Command::SliceIncr, key, |route| async move {
            route.backend.slice_incr(key, start, end, max, ttl).await
        })
        .await
    }

    /// Sliding-window counter stamped by the backend: if fewer than `max` events lie in the
    /// window `(now − period, now]` (whole milliseconds, at least 1), records one at `now`.
    /// Returns the count including it.
    /// Atomic, and `now` is read by the backend inside the same atomic step (its own clock,
    /// Redis's `TIME`, or the wall clock for disk), so at most `max` events are ever recorded
    /// in any window, however many processes call at once; see
    /// [`Backend::slice_incr_now`](crate::backend::Backend::slice_incr_now). Disabled as
    /// [`Command::SliceIncrNow`].
    ///
    /// # Errors
    ///
    /// A bad TTL; as [`Cache::get`]; [`Error::ValueOverBudget`](crate::Error::ValueOverBudget)
    /// when one more event would make the window more than the backend's byte budget lets one
    /// entry take (the event is not recorded).
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let minute = Duration::from_secs(60);
    /// assert_eq!(cache.slice_incr_now("w", minute, 2, minute).await?, 1);
    /// assert_eq!(cache.slice_incr_now("w", minute, 2, minute).await?, 2);
    /// assert_eq!(cache.slice_incr_now("w", minute, 2, minute).await?, 2); // full: not recorded
    /// # Ok(()) }
    /// ```
    pub async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: impl IntoTtl,
    ) -> Result<u64> {
        let ttl = ttl.into_ttl()?.duration();
        self.keyed(Command::SliceIncrNow, key, |route| async move {
            route.backend.slice_incr_now(key, period, max, ttl).await
        })
        .await
    }

    /// Adds members to the set at `key`; with a TTL, the set's TTL is reset to it. Returns how
    /// many were new.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`]; [`Error::ValueOverBudget`](crate::Error::ValueOverBudget) when the
    /// grown set would be more than the backend's byte budget lets one entry take (nothing is
    /// added).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// assert_eq!(cache.set_add("s", &["a", "b"], None::<u64>).await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn set_add(&self, key: &str, members: &[&str], ttl: impl IntoTtl) -> Result<u64> {
        let ttl = ttl.into_ttl()?.duration();
        self.keyed(Command::SetAdd, key, |route| async move {
            route.backend.set_add(key, members, ttl).await
        })
        .await
    }

    /// Removes members from the set at `key`; returns how many were removed.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set_add("s", &["a"], None::<u64>).await?;
    /// assert_eq!(cache.set_remove("s", &["a", "z"]).await?, 1);
    /// # Ok(()) }
    /// ```
    pub async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.keyed(Command::SetRemove, key, |route| async move {
            route.backend.set_remove(key, members).await
        })
        .await
    }

    /// Removes and returns up to `count` arbitrary members of the set at `key`.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set_add("s", &["a"], None::<u64>).await?;
    /// assert_eq!(cache.set_pop("s", 10).await?, vec!["a".to_owned()]);
    /// # Ok(()) }
    /// ```
    pub async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.keyed(Command::SetPop, key, |route| async move {
            route.backend.set_pop(key, count).await
        })
        .await
    }
}
