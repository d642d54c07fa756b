//! `scan` over every shard: pages of keys in key order, shard after shard.
//!
//! A page reads the key range of the pattern's literal start (see `value::key_range`) through
//! the unique index, then matches the whole glob in Rust with `crate::pattern`, the same
//! matcher as every backend: SQLite's `GLOB` differs from Redis's in escapes (`\*`) and
//! classes (`[^a]`), so it is not used.

use std::collections::VecDeque;
use std::sync::Arc;

use rusqlite::params;

use super::shard::Fail;
use super::{DiskBackend, sql, value};
use crate::command::Command;
use crate::error::Result;
use crate::pattern;

/// Keys of one shard matching `pattern`, in pages of `batch` keys after `after`.
pub(super) fn scan_page(
    conn: &rusqlite::Connection,
    pattern: &str,
    after: Option<&str>,
    batch: usize,
    now: i64,
) -> Result<(Vec<String>, Option<String>, bool), Fail> {
    let (low, high) = value::key_range(pattern);
    let from = after.unwrap_or(&low);
    let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(sql::scan_page(after.is_none(), high.is_some()))?;
    let keys: Vec<String> = match &high {
        Some(high) => stmt
            .query_map(params![from, now, high, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        None => stmt
            .query_map(params![from, now, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
    };
    let done = keys.len() < batch.max(1);
    let last = keys.last().cloned();
    let matching = keys
        .into_iter()
        .filter(|k| pattern::matches(pattern, k))
        .collect();
    Ok((matching, last, done))
}

/// Where a scan is: the shard it reads, the last key it read there, keys not yet yielded.
pub(super) struct ScanState {
    backend: DiskBackend,
    pattern: Arc<str>,
    batch: usize,
    shard: usize,
    after: Option<String>,
    ready: VecDeque<String>,
}

impl ScanState {
    /// A scan of every shard of `backend` for `pattern`, `batch` keys per page.
    pub(super) fn new(backend: DiskBackend, pattern: &str, batch: usize) -> Self {
        Self {
            backend,
            pattern: Arc::from(pattern),
            batch: batch.clamp(1, 10_000),
            shard: 0,
            after: None,
            ready: VecDeque::new(),
        }
    }

    /// The next key, fetching pages shard by shard; `None` at the end.
    pub(super) async fn next(mut self) -> Option<(Result<String>, Self)> {
        loop {
            if let Some(key) = self.ready.pop_front() {
                return Some((Ok(key), self));
            }
            let worker = self.backend.inner.workers.get(self.shard)?;
            let (pattern, after, batch) =
                (Arc::clone(&self.pattern), self.after.take(), self.batch);
            let page = worker
                .call(Command::Scan, move |shard| {
                    shard.read(Command::Scan, |conn, now| {
                        scan_page(conn, &pattern, after.as_deref(), batch, now)
                    })
                })
                .await;
            match page {
                Ok((keys, last, done)) => {
                    self.ready.extend(keys);
                    if done {
                        self.shard += 1;
                        self.after = None;
                    } else {
                        self.after = last;
                    }
                }
                Err(e) => {
                    // Report the failing shard, then go on with the next one.
                    self.shard += 1;
                    self.after = None;
                    return Some((Err(e), self));
                }
            }
        }
    }
}
