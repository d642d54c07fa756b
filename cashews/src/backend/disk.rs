//! `disk://`: sharded SQLite files that several processes share (cargo feature `disk`).
//!
//! A store is a folder of `shard-NNN.sqlite3` files (one with `shards=0` or `1`). A key lives
//! in the file chosen by a fixed hash of its bytes (FNV-1a), so every process sends it to the
//! same file. Each file has one table, one row per key: kind (bytes, set or sliding window),
//! value, expiry and last access in wall-clock Unix milliseconds, and size.
//!
//! # Guarantees across processes
//!
//! Every read-modify-write command (`set` with a condition, `incr` with its TTL on creation,
//! `set_lock`, `unlock` (compare and delete), `incr_bits`, `slice_incr`, `slice_incr_now`,
//! `set_add`, `set_remove`, `set_pop`) is one `BEGIN IMMEDIATE` transaction on its shard: atomic
//! across threads and processes, as the `Backend` contract asks. `slice_incr_now` reads the wall
//! clock for its stamp inside that transaction. An expired key is absent for every
//! command, whoever wrote it; expired rows are purged by writes, at most once a second per
//! shard. `scan`, `get_match` and `delete_match` cover every shard (Python cashews cannot
//! scan a sharded store); they are not a snapshot across shards.
//!
//! # Size limit and eviction
//!
//! With `eviction=least-recently-used` (the default), a write that takes a shard over its
//! share of `size_limit` evicts expired entries, then the least recently used ones, in the
//! same transaction. An entry larger than that share alone (key twice, value and a row
//! overhead) could never be kept: it is refused with [`Error::ValueOverBudget`] and the other
//! keys stay (a `set` before writing anything; a set, window or bit field that grows past it,
//! by rolling the command back). Reads refresh an entry's access time at most once a second (a refresh is a
//! write), so recency is exact to one second.
//!
//! # Threads
//!
//! Writes (and every command that may write) run on one thread per shard (see `worker.rs`
//! for why not `spawn_blocking`), never on a runtime thread; a caller waits for the answer
//! awake for at most 50 µs before parking, because waking a parked thread costs more than a
//! small write. Pure reads (`get`, `exists`, `get_expire`, `get_size`, `get_bits`) run on
//! reader threads (about 3.5 µs per get hit), through connections of their own, which WAL
//! lets read while a shard writes; `get_many` reads on its keys' shard threads. See
//! `readers.rs` and `dispatch.rs`.
//!
//! # Inline reads (`inline_reads=nowait`, opt-in)
//!
//! With [`InlineReads::Nowait`], pure reads of data in memory run on the caller's thread
//! instead (about 2 µs per get hit, in parallel across threads), with file reads that never
//! wait for the disk (`nowait.rs`); a read whose data is not in memory still runs on a reader
//! thread. It is off by default because it changes SQLite for the whole process: the first
//! backend built with it replaces `pread` in the system-call table of SQLite's default VFS,
//! which every SQLite connection of the process shares (the application's own rusqlite
//! connections included; they read through the replacement, which behaves as the original
//! outside a cashews inline read), and SQLite asks that this table be changed before other
//! threads use SQLite, which a library cannot ensure. A default backend never touches it.
//!
//! # Faults
//!
//! A full disk does not stop deletes and evictions: each shard keeps a small reserve file and
//! a log bounded between checkpoints; on "disk full" it releases the reserve, checkpoints,
//! and tries again (see `space.rs`). A write that does not fit still fails with an error
//! that says the disk is full.
//!
//! A failing shard fails only the commands on its keys (the error names the file and the
//! fix); the others keep working. A corrupt file is an error, or with
//! `on_corruption=rebuild` is moved aside and the shard starts empty. A shard file replaced
//! under its name (rebuilt by another process, or deleted by hand) is noticed before the next
//! command and reopened, so no process keeps serving the old file's values.

mod dispatch;
mod nowait;
mod readers;
mod scan;
mod shard;
mod space;
mod sql;
mod typed;
mod value;
mod worker;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rusqlite::params;

use self::readers::Readers;
use self::scan::{ScanState, scan_page};
use self::shard::{Fail, Shard, is_live, live, live_meta, put, remove};
use self::typed::{bytes_of, read_set, slice_step, store_set, wrong_type};
use self::value::Kind;
use self::worker::Worker;
use super::{Backend, Batch, BoxStream, Condition, Expiry, SetOptions};
use crate::command::Command;
use crate::config::{DiskOptions, InlineReads};
use crate::error::{Error, Result};
use crate::pattern;

/// The disk backend (`disk://`): sharded SQLite files shared by every process that opens the
/// same folder.
///
/// A cheap-clone handle: clones share the shard threads. Building one creates the folder if
/// needed and checks that it is writable; each shard file is opened by its thread (errors then
/// come with the first command on that shard). See the [module docs](self) for the guarantees.
///
/// ```no_run
/// use cashews::backend::{Backend, DiskBackend, SetOptions};
/// use cashews::config::DiskOptions;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let disk = DiskBackend::new(DiskOptions::new("/tmp/app-cache"))?;
/// disk.set("k", "v".into(), SetOptions::default()).await?;
/// assert_eq!(disk.get("k").await?.as_deref(), Some(&b"v"[..]));
/// assert_eq!(disk.incr("hits", 1, None).await?, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DiskBackend {
    inner: Arc<Inner>,
}

struct Inner {
    options: DiskOptions,
    workers: Vec<Worker>,
    readers: Readers,
    /// Keys whose access-time refresh is queued on their shard's thread: one refresh per key
    /// at a time, however many reads of it owe one (a hot key read while its shard is busy
    /// would otherwise queue a refresh per read).
    touching: Arc<parking_lot::Mutex<HashSet<String>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.readers.stop();
        for worker in &self.workers {
            worker.stop();
        }
    }
}

impl std::fmt::Debug for DiskBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskBackend")
            .field("directory", &self.inner.options.directory)
            .field("shards", &self.inner.workers.len())
            .finish_non_exhaustive()
    }
}

impl DiskBackend {
    /// A disk backend on `options.directory`, created when missing.
    ///
    /// Creating the folder and starting the shard threads are quick blocking calls made here;
    /// the shard files are opened by their threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for options out of range ([`DiskOptions::validate`]), for
    /// `directory` when the folder cannot be created or written (the message names the folder
    /// and the fix), or [`Error::Backend`] when a shard thread
    /// cannot start.
    ///
    /// ```no_run
    /// let disk = cashews::backend::DiskBackend::new(
    ///     cashews::config::DiskOptions::new("/tmp/app-cache").with_shards(0),
    /// )?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn new(options: DiskOptions) -> Result<Self> {
        options.validate()?;
        let directory = &options.directory;
        let unusable = |e: std::io::Error, what: &str| Error::InvalidOption {
            option: "directory".to_owned(),
            value: directory.display().to_string(),
            expected: format!(
                "a folder this process can {what} ({e}): fix its permissions, or set \
                 `directory` to another folder"
            ),
        };
        std::fs::create_dir_all(directory).map_err(|e| unusable(e, "create"))?;
        // SQLite needs to create the WAL and shared-memory files beside each shard: a folder
        // it cannot write fails every command, so say it once, here, clearly.
        let probe = directory.join(format!(".cashews-probe-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| unusable(e, "write"))?;
        let _ = std::fs::remove_file(&probe);
        if options.inline_reads == InlineReads::Nowait {
            // Only on request: the hook is process-wide (see `InlineReads::Nowait`). Before
            // this backend starts threads that use SQLite (see `nowait::install`).
            nowait::install();
        }
        let workers = (0..options.shard_count())
            .map(|index| Worker::spawn(Shard::new(&options, index), index))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::backend("disk", Command::Ping, e))?;
        let readers =
            Readers::spawn(&options).map_err(|e| Error::backend("disk", Command::Ping, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                options,
                workers,
                readers,
                touching: Arc::default(),
            }),
        })
    }

    /// The options this backend was built with.
    ///
    /// ```no_run
    /// let disk = cashews::backend::DiskBackend::new(cashews::config::DiskOptions::new("/tmp/c"))?;
    /// assert_eq!(disk.options().shards, 8);
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn options(&self) -> &DiskOptions {
        &self.inner.options
    }
}

impl Backend for DiskBackend {
    fn name(&self) -> &'static str {
        "disk"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let row = self.read_only(Command::Get, key, live).await?;
        Ok(self.answer_get(key, row))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        // Keys whose data is in memory are read on this thread, the others on their shards'
        // threads (which refresh access times themselves).
        let mut values = vec![None; keys.len()];
        let mut rest = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            let index = value::shard_of(key, self.inner.workers.len());
            match self.read_inline(Command::GetMany, index, key, &live) {
                Some(Ok(row)) => values[position] = self.answer_get(key, row),
                _ => rest.push(((*key).to_owned(), position)),
            }
        }
        if rest.len() < keys.len() {
            tokio::task::coop::consume_budget().await;
        }
        if rest.is_empty() {
            return Ok(values);
        }
        let groups = self.by_shard(rest);
        let calls = groups
            .into_iter()
            .zip(&self.inner.workers)
            .filter(|(group, _)| !group.is_empty())
            .map(|(group, worker)| {
                worker.call(Command::GetMany, move |shard| {
                    let mut out = Vec::with_capacity(group.len());
                    for (_, key, position) in &group {
                        let row = shard.read(Command::GetMany, |conn, now| live(conn, key, now))?;
                        if let Some(row) = &row {
                            shard.touch(key, row.accessed_at, shard::now_ms());
                        }
                        let value = row
                            .filter(|row| row.kind == Some(Kind::Bytes))
                            .map(|row| Bytes::from(row.value));
                        out.push((*position, value));
                    }
                    Ok(out)
                })
            });
        let answers = futures_util::future::try_join_all(calls).await?;
        for (position, value) in answers.into_iter().flatten() {
            values[position] = value;
        }
        Ok(values)
    }

    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        // Before the transaction: a huge value would be written (to the WAL) to be rolled back.
        shard::check_fits(&self.inner.options, key, shard::entry_size(key, &value))?;
        self.write(Command::Set, key, move |tx, key, now| {
            let write = match options.condition {
                Condition::Always => true,
                Condition::IfAbsent => !is_live(tx, key, now)?,
                Condition::IfPresent => is_live(tx, key, now)?,
            };
            if write {
                put(
                    tx,
                    key,
                    Kind::Bytes,
                    &value,
                    shard::deadline(options.ttl, now),
                    now,
                )?;
            }
            Ok(write)
        })
        .await
    }

    async fn set_many(&self, pairs: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        for (key, value) in pairs {
            shard::check_fits(&self.inner.options, key, shard::entry_size(key, value))?;
        }
        let groups = self.by_shard(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let calls = groups
            .into_iter()
            .zip(&self.inner.workers)
            .filter(|(group, _)| !group.is_empty())
            .map(|(group, worker)| {
                worker.call(Command::SetMany, move |shard| {
                    // One transaction per shard: one commit for the whole group, and one
                    // eviction pass, which spares the last key written.
                    let last = group.last().map(|(_, key, _)| key.as_str());
                    shard.write(Command::SetMany, last, |tx, now| {
                        for (_, key, value) in &group {
                            put(tx, key, Kind::Bytes, value, shard::deadline(ttl, now), now)?;
                        }
                        Ok(())
                    })
                })
            });
        futures_util::future::try_join_all(calls).await?;
        Ok(())
    }

    /// One SQL transaction per shard (its deletes, then its writes): atomic per shard, not
    /// across shards.
    async fn apply(&self, batch: &Batch) -> Result<()> {
        for write in batch.writes() {
            let size = shard::entry_size(write.key(), write.value());
            shard::check_fits(&self.inner.options, write.key(), size)?;
        }
        let deletes = batch.deletes().iter().map(|key| (key.clone(), None));
        let writes = batch.writes().iter().map(|write| {
            let op = (write.value().clone(), write.ttl());
            (write.key().to_owned(), Some(op))
        });
        let groups = self.by_shard(deletes.chain(writes));
        let calls = groups
            .into_iter()
            .zip(&self.inner.workers)
            .filter(|(group, _)| !group.is_empty())
            .map(|(group, worker)| {
                worker.call(Command::Apply, move |shard| {
                    let last = group
                        .iter()
                        .rev()
                        .find(|(_, _, op)| op.is_some())
                        .map(|(_, key, _)| key.as_str());
                    shard.write(Command::Apply, last, |tx, now| {
                        // Deletes come first in each group (they were given first).
                        for (_, key, op) in &group {
                            match op {
                                None => {
                                    remove(tx, key, now)?;
                                }
                                Some((value, ttl)) => {
                                    let expires = shard::deadline(*ttl, now);
                                    put(tx, key, Kind::Bytes, value, expires, now)?;
                                }
                            }
                        }
                        Ok(())
                    })
                })
            });
        futures_util::future::try_join_all(calls).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.read(Command::Delete, key, |conn, key, now| {
            remove(conn, key, now)
        })
        .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let groups = self.by_shard(keys.iter().map(|k| ((*k).to_owned(), ())));
        let calls = groups
            .into_iter()
            .zip(&self.inner.workers)
            .filter(|(group, _)| !group.is_empty())
            .map(|(group, worker)| {
                worker.call(Command::DeleteMany, move |shard| {
                    shard.write(Command::DeleteMany, None, |tx, now| {
                        let mut deleted = 0;
                        for (_, key, ()) in &group {
                            deleted += u64::from(remove(tx, key, now)?);
                        }
                        Ok(deleted)
                    })
                })
            });
        Ok(futures_util::future::try_join_all(calls)
            .await?
            .into_iter()
            .sum())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.read_only(Command::Exists, key, |conn, key, now| {
            is_live(conn, key, now)
        })
        .await
    }

    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        if ttl.is_some_and(|ttl| ttl.is_zero()) {
            // As Redis `PEXPIRE k 0`: the key goes at once.
            return self.delete(key).await;
        }
        self.read(Command::Expire, key, move |conn, key, now| {
            // `None` stores a NULL deadline: the key persists (one UPDATE, atomic).
            let at = shard::deadline(ttl, now);
            Ok(conn
                .prepare_cached(sql::EXPIRE)?
                .execute(params![key, at, now])?
                > 0)
        })
        .await
    }

    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.read_only(Command::GetExpire, key, |conn, key, now| {
            Ok(match live_meta(conn, key, now)? {
                None => Expiry::Missing,
                Some((None, _)) => Expiry::Persistent,
                Some((Some(at), _)) => Expiry::In(Duration::from_millis(
                    u64::try_from(at.saturating_sub(now)).unwrap_or(0),
                )),
            })
        })
        .await
    }

    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.write(Command::Incr, key, move |tx, key, now| {
            let (current, expires_at) = match live(tx, key, now)? {
                None => (0, shard::deadline(ttl, now)),
                Some(row) => {
                    let bytes = bytes_of(&row, Command::Incr, key)?;
                    let Some(n) = super::layout::parse_int(&bytes) else {
                        return Err(wrong_type(Command::Incr, key, "a decimal integer value"));
                    };
                    (n, row.expires_at)
                }
            };
            let Some(next) = current.checked_add(by) else {
                return Err(Fail::Cashews(Error::backend(
                    "disk",
                    Command::Incr,
                    "increment or decrement would overflow",
                )));
            };
            put(
                tx,
                key,
                Kind::Bytes,
                next.to_string().as_bytes(),
                expires_at,
                now,
            )?;
            Ok(next)
        })
        .await
    }

    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        if pattern::is_literal(pattern) {
            // One key, one shard: no page walk.
            let backend = self.clone();
            let key = pattern.to_owned();
            return Box::pin(
                futures_util::stream::once(async move {
                    backend.exists(&key).await.map(|live| live.then_some(key))
                })
                .filter_map(|found| async move { found.transpose() }),
            );
        }
        let state = ScanState::new(self.clone(), pattern, batch_size);
        Box::pin(futures_util::stream::unfold(state, ScanState::next))
    }

    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        if pattern::is_literal(pattern) {
            return Ok(u64::from(self.delete(pattern).await?));
        }
        let pattern: Arc<str> = Arc::from(pattern);
        let counts = self
            .on_every_shard(Command::DeleteMatch, move |shard| {
                let pattern = Arc::clone(&pattern);
                shard.write(Command::DeleteMatch, None, move |tx, now| {
                    let mut deleted = 0;
                    let mut after: Option<String> = None;
                    loop {
                        let (keys, last, done) =
                            scan_page(tx, &pattern, after.as_deref(), 1_000, now)?;
                        for key in &keys {
                            deleted += u64::from(remove(tx, key, now)?);
                        }
                        if done {
                            return Ok(deleted);
                        }
                        after = last;
                    }
                })
            })
            .await?;
        Ok(counts.into_iter().sum())
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let token = token.as_bytes().to_vec();
        self.write(Command::Unlock, key, move |tx, key, now| {
            match live(tx, key, now)? {
                Some(row) if row.kind == Some(Kind::Bytes) && row.value == token => {
                    remove(tx, key, now)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        super::check_bits(key, Command::GetBits, indexes, size)?;
        let indexes: Arc<[u64]> = indexes.into();
        self.read_only(Command::GetBits, key, move |conn, key, now| {
            let bits = match live(conn, key, now)? {
                None => Vec::new(),
                Some(row) => bytes_of(&row, Command::GetBits, key)?,
            };
            Ok(indexes
                .iter()
                .map(|&i| super::layout::read_field(&bits, i * u64::from(size), size))
                .collect())
        })
        .await
    }

    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        super::check_bits(key, Command::IncrBits, indexes, size)?;
        let max = (1u64 << size) - 1;
        let indexes = indexes.to_vec();
        self.write(Command::IncrBits, key, move |tx, key, now| {
            let (mut bits, expires_at) = match live(tx, key, now)? {
                None => (Vec::new(), None),
                Some(row) => (bytes_of(&row, Command::IncrBits, key)?, row.expires_at),
            };
            let mut out = Vec::with_capacity(indexes.len());
            for &index in &indexes {
                let offset = index * u64::from(size);
                let old = super::layout::read_field(&bits, offset, size);
                let new = if by >= 0 {
                    old.saturating_add(by.unsigned_abs()).min(max)
                } else {
                    old.saturating_sub(by.unsigned_abs())
                };
                super::layout::write_field(&mut bits, offset, size, new);
                out.push(new);
            }
            put(tx, key, Kind::Bytes, &bits, expires_at, now)?;
            Ok(out)
        })
        .await
    }

    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.write(Command::SliceIncr, key, move |tx, key, now| {
            slice_step(tx, key, now, Command::SliceIncr, |_| (start, end), max, ttl)
        })
        .await
    }

    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.write(Command::SliceIncrNow, key, move |tx, key, now| {
            // `f` runs inside the shard's `BEGIN IMMEDIATE` transaction, which holds the file's
            // write lock: the stamp is read after every earlier writer of this shard (in any
            // process) has committed, so events are recorded in the order of their stamps
            // (see `Backend::slice_incr_now`). `now` was read before the lock was taken.
            // The wall clock may step back (NTP): never stamp before the newest event, or a
            // window would miss it.
            let stamp = u64::try_from(shard::now_ms()).unwrap_or(0);
            let window =
                |newest: Option<u64>| super::window_at(stamp.max(newest.unwrap_or(0)), period);
            slice_step(tx, key, now, Command::SliceIncrNow, window, max, ttl)
        })
        .await
    }

    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        self.write(Command::SetAdd, key, move |tx, key, now| {
            let (mut set, expires_at) = read_set(tx, key, now, Command::SetAdd)?;
            let added = members.iter().filter(|m| set.insert((*m).clone())).count() as u64;
            if set.is_empty() {
                return Ok(0);
            }
            let expires_at = match ttl {
                Some(_) => shard::deadline(ttl, now),
                None => expires_at,
            };
            put(
                tx,
                key,
                Kind::Set,
                &value::encode_set(&set),
                expires_at,
                now,
            )?;
            Ok(added)
        })
        .await
    }

    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        self.write(Command::SetRemove, key, move |tx, key, now| {
            let (mut set, expires_at) = read_set(tx, key, now, Command::SetRemove)?;
            let removed = members.iter().filter(|m| set.remove(*m)).count() as u64;
            store_set(tx, key, &set, expires_at, now, removed > 0)?;
            Ok(removed)
        })
        .await
    }

    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.write(Command::SetPop, key, move |tx, key, now| {
            let (mut set, expires_at) = read_set(tx, key, now, Command::SetPop)?;
            let popped: Vec<String> = set.iter().take(count).cloned().collect();
            for member in &popped {
                set.remove(member);
            }
            store_set(tx, key, &set, expires_at, now, !popped.is_empty())?;
            Ok(popped)
        })
        .await
    }

    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        self.on_every_shard(Command::Ping, |shard| {
            shard.read(Command::Ping, |conn, _| {
                Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
            })
        })
        .await?;
        Ok(super::pong(message))
    }

    async fn clear(&self) -> Result<()> {
        self.on_every_shard(Command::Clear, |shard| {
            shard.write(Command::Clear, None, |tx, _| {
                tx.prepare_cached(sql::CLEAR)?.execute([])?;
                Ok(())
            })
        })
        .await?;
        Ok(())
    }

    async fn keys_count(&self) -> Result<u64> {
        let counts = self
            .on_every_shard(Command::GetKeysCount, |shard| {
                shard.read(Command::GetKeysCount, |conn, now| {
                    let n: i64 = conn
                        .prepare_cached(sql::COUNT_LIVE)?
                        .query_row([now], |r| r.get(0))?;
                    Ok(u64::try_from(n).unwrap_or(0))
                })
            })
            .await?;
        Ok(counts.into_iter().sum())
    }

    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.read_only(Command::GetSize, key, |conn, key, now| {
            Ok(Some(
                live_meta(conn, key, now)?.map_or(0, |(_, size)| u64::try_from(size).unwrap_or(0)),
            ))
        })
        .await
    }

    /// Stops the shard threads and waits until every file is closed. Commands after `close`
    /// fail with an error saying so.
    async fn close(&self) -> Result<()> {
        self.inner.readers.close().await;
        futures_util::future::join_all(self.inner.workers.iter().map(Worker::close)).await;
        Ok(())
    }
}
