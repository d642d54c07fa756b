//! One shard file: its connection (opened, configured and checked here), the transactions
//! commands run in, and what happens when SQLite reports trouble.
//!
//! Every connection sets WAL (readers never wait for the writer, and a commit appends to the
//! log instead of rewriting pages), `synchronous=NORMAL` (no fsync per commit in WAL: a power
//! loss may drop the last commits, never corrupt the file; a cache can lose entries), and the
//! busy timeout of the options. Read-modify-write commands run in `BEGIN IMMEDIATE`
//! transactions: the write lock is taken at the start, so two processes never both read the
//! old value, and waiting for it goes through the busy timeout (a deferred transaction that
//! upgrades would fail at once with SQLITE_BUSY instead).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::value::Kind;
use super::{space, sql};
use crate::command::Command;
use crate::config::{DiskOptions, Eviction, OnCorruption};
use crate::error::{Error, Result};

/// Why a command on a shard failed: SQLite (classified into a message with a fix by
/// [`Shard`]), or an answer of the command itself (a wrong type, an overflow).
#[derive(Debug)]
pub(super) enum Fail {
    Sql(rusqlite::Error),
    Cashews(Error),
    /// The file cannot be used as it is (another layout or format): no retry helps.
    Refused(DiskError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Cashews(e)
    }
}

/// The error behind an [`Error::Backend`] from the disk backend: the shard file, what went
/// wrong, and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("shard file `{path}`: {problem}{fix}")]
pub(super) struct DiskError {
    path: String,
    problem: String,
    fix: &'static str,
}

/// A row as stored. `expires_at` is `None` for a key without TTL.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) kind: Option<Kind>,
    pub(super) value: Vec<u8>,
    pub(super) expires_at: Option<i64>,
    pub(super) accessed_at: i64,
}

/// Bytes counted per entry on top of the value: the key twice (table and unique index) plus
/// this, roughly SQLite's per-row and per-index-entry overhead.
const ROW_OVERHEAD: i64 = 32;

/// A read refreshes `accessed_at` only when it is older than this: the refresh is a write
/// (the shard's write lock, a WAL append) and doing it on every read would serialise all
/// readers of all processes. LRU order is then exact to one second, enough to tell a hot
/// entry from a cold one.
const TOUCH_EVERY_MS: i64 = 1_000;

/// How often (at most) a write transaction also purges expired rows.
const PURGE_EVERY_MS: i64 = 1_000;

/// Whether a read at `now` of an entry last accessed at `accessed_at` owes it an access-time
/// refresh (see [`TOUCH_EVERY_MS`]); only LRU eviction reads access times.
pub(super) fn owes_touch(eviction: Eviction, accessed_at: i64, now: i64) -> bool {
    eviction == Eviction::LeastRecentlyUsed && accessed_at < now - TOUCH_EVERY_MS
}

/// The wall clock in Unix milliseconds: processes share the files, so they share this clock.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `expires_at` of a TTL starting `now`.
pub(super) fn deadline(ttl: Option<Duration>, now: i64) -> Option<i64> {
    ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
}

/// The `size` of an entry.
pub(super) fn entry_size(key: &str, value: &[u8]) -> i64 {
    i64::try_from(key.len() * 2 + value.len()).unwrap_or(i64::MAX) + ROW_OVERHEAD
}

/// The bytes one shard aims to stay under: its share of `size_limit` (at least 1).
pub(super) fn shard_limit(options: &DiskOptions) -> i64 {
    let count = u64::try_from(options.shard_count()).unwrap_or(1).max(1);
    i64::try_from(options.size_limit / count)
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Refuses an entry of `size` bytes (see [`entry_size`]) that its shard could never keep
/// under LRU eviction: stored, it would evict every other key of the shard and still be over
/// the shard's share of `size_limit`. With `eviction=none` the store may grow past
/// `size_limit`, so nothing is refused.
pub(super) fn check_fits(options: &DiskOptions, key: &str, size: i64) -> Result<()> {
    let limit = shard_limit(options);
    if options.eviction == Eviction::None || size <= limit {
        return Ok(());
    }
    Err(over_budget(key, size, limit, options.size_limit))
}

/// [`Error::ValueOverBudget`] for an entry of `size` bytes over a shard's `limit`.
#[cold]
fn over_budget(key: &str, size: i64, limit: i64, size_limit: u64) -> Error {
    Error::ValueOverBudget {
        backend: "disk",
        key: crate::error::shorten(key),
        size: u64::try_from(size).unwrap_or(0),
        limit: u64::try_from(limit).unwrap_or(0),
        option: "size_limit",
        budget: size_limit,
    }
}

/// One shard file and its connection, owned by the shard's worker thread.
pub(super) struct Shard {
    index: usize,
    count: usize,
    path: PathBuf,
    timeout: Duration,
    eviction: Eviction,
    on_corruption: OnCorruption,
    /// Bytes this shard aims to stay under: `size_limit / shards`.
    limit: i64,
    /// The store's `size_limit`, for errors.
    size_limit: u64,
    /// The room kept for a full disk, and its file (see `space.rs`).
    reserve: u64,
    reserve_path: PathBuf,
    conn: Option<Connection>,
    /// The identity of the file `conn` opened (see [`file_id`]).
    opened: Option<(u64, u64)>,
    last_purge: i64,
    /// A reader's connection (see `readers.rs`): it never creates the file or its schema and
    /// never takes the write lock, and after a failed open it waits [`READER_RETRY`] before
    /// trying again (its reads go to the shard's thread meanwhile).
    reader: bool,
    /// For a reader: no open before this instant.
    retry_at: Option<Instant>,
    /// For a reader: when it last checked that its file is still the one at `path`.
    checked_at: Option<Instant>,
}

/// How often (at most) a reader checks that its file was not replaced: the `stat` costs 2 µs
/// on a VM, a third of a get hit, and a file replaced by another process (rebuilt after
/// corruption, deleted by hand) is rare; a reader then reads the old file for at most this
/// long. Shard threads check before every command.
const READER_CHECK_EVERY: Duration = Duration::from_millis(1);

/// How long a reader leaves a shard it could not open to the shard's thread.
const READER_RETRY: Duration = Duration::from_secs(1);

/// A reader thread's busy timeout: reading a WAL file waits only in rare recovery steps, and
/// a slow one is better left to the shard's thread than allowed to hold a reader serving
/// every shard. (A read on the caller's thread waits for nothing: see `readers.rs`.)
pub(super) const READER_BUSY: Duration = Duration::from_millis(10);

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("path", &self.path)
            .field("open", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

/// The file of shard `index` of `count` in `directory`.
pub(super) fn shard_path(directory: &Path, index: usize) -> PathBuf {
    directory.join(format!("shard-{index:03}.sqlite3"))
}

impl Shard {
    pub(super) fn new(options: &DiskOptions, index: usize) -> Self {
        let count = options.shard_count();
        let path = shard_path(&options.directory, index);
        Self {
            index,
            count,
            reserve: space::reserve_bytes(
                shard_limit(options),
                count,
                space::available(&options.directory),
            ),
            reserve_path: space::reserve_path(&path),
            path,
            timeout: options.timeout,
            eviction: options.eviction,
            on_corruption: options.on_corruption,
            limit: shard_limit(options),
            size_limit: options.size_limit,
            conn: None,
            opened: None,
            last_purge: 0,
            reader: false,
            retry_at: None,
            checked_at: None,
        }
    }

    /// Whether to check the file's identity now: always on a shard thread, at most every
    /// [`READER_CHECK_EVERY`] on a reader.
    fn should_check_file(&mut self) -> bool {
        if !self.reader {
            return true;
        }
        let now = Instant::now();
        if self
            .checked_at
            .is_some_and(|at| now.duration_since(at) < READER_CHECK_EVERY)
        {
            return false;
        }
        self.checked_at = Some(now);
        true
    }

    /// A reader's view of shard `index` (see `readers.rs`), whose connection waits at most
    /// `busy` for a lock.
    pub(super) fn reader(options: &DiskOptions, index: usize, busy: Duration) -> Self {
        Self {
            reader: true,
            timeout: busy,
            ..Self::new(options, index)
        }
    }

    /// Whether the connection is open, for tests.
    #[cfg(test)]
    pub(super) const fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Opens the connection ahead of the first command; a failure is only logged here, and
    /// reported by the commands (which retry the open).
    pub(super) fn warm_up(&mut self) {
        if let Err(e) = self.run(Command::Ping, |_, _| Ok(())) {
            tracing::warn!(error = %e, "cashews disk shard not ready");
        }
    }

    /// Runs `f` on a plain (autocommit) connection: reads, and single-statement writes.
    pub(super) fn read<T>(
        &mut self,
        command: Command,
        mut f: impl FnMut(&Connection, i64) -> Result<T, Fail>,
    ) -> Result<T> {
        self.run(command, |conn, now| f(conn, now))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: atomic across processes. Expired rows are
    /// purged now and then first; after `f`, the shard evicts down to its size limit, never
    /// evicting `written` (the key `f` just stored).
    pub(super) fn write<T>(
        &mut self,
        command: Command,
        written: Option<&str>,
        mut f: impl FnMut(&Transaction<'_>, i64) -> Result<T, Fail>,
    ) -> Result<T> {
        let (eviction, limit, size_limit) = (self.eviction, self.limit, self.size_limit);
        let purge = {
            let now = now_ms();
            now - self.last_purge >= PURGE_EVERY_MS
        };
        let out = self.run(command, |conn, now| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if purge {
                tx.prepare_cached(sql::PURGE)?.execute([now])?;
            }
            let out = f(&tx, now)?;
            if written.is_some() && eviction == Eviction::LeastRecentlyUsed {
                evict(&tx, written.unwrap_or_default(), limit, size_limit)?;
            }
            tx.commit()?;
            Ok(out)
        });
        if purge && out.is_ok() {
            self.last_purge = now_ms();
        }
        out
    }

    /// Refreshes a key's `accessed_at` after a read, at most once a second (see
    /// [`TOUCH_EVERY_MS`]). Best effort: a failure is logged, the read still answers.
    pub(super) fn touch(&mut self, key: &str, accessed_at: i64, now: i64) {
        if !owes_touch(self.eviction, accessed_at, now) {
            return;
        }
        if let Some(conn) = &self.conn {
            // A refresh is worth no wait: when another connection holds the write lock, skip
            // it (busy timeout 0 for this statement) rather than stall the read.
            let result = conn.busy_timeout(Duration::ZERO).and_then(|()| {
                let touched = conn
                    .prepare_cached(sql::TOUCH)
                    .and_then(|mut s| s.execute(params![key, now, now - TOUCH_EVERY_MS]));
                conn.busy_timeout(self.timeout)?;
                touched
            });
            if let Err(e) = result {
                tracing::debug!(
                    error = %e,
                    path = %self.path.display(),
                    "cashews disk: access time not refreshed"
                );
            }
        }
    }

    /// Opens the connection if needed, runs `f`, and turns SQLite errors into errors naming
    /// the file and the fix. A corrupt file is quarantined and rebuilt once, when the options
    /// say so. On a full disk, the shard makes room and tries once more (see `space.rs`).
    fn run<T>(
        &mut self,
        command: Command,
        mut f: impl FnMut(&mut Connection, i64) -> Result<T, Fail>,
    ) -> Result<T> {
        let mut corrupt = 0;
        let mut made_room = false;
        loop {
            let result = match self.connection() {
                Ok(conn) => f(conn, now_ms()),
                Err(e) => Err(e),
            };
            let e = match result {
                Ok(out) => {
                    if made_room {
                        self.take_room_back();
                    }
                    return Ok(out);
                }
                Err(Fail::Cashews(e)) => return Err(e),
                Err(Fail::Refused(e)) => return Err(Error::backend("disk", command, e)),
                Err(Fail::Sql(e)) => e,
            };
            if is_full(&e) && !self.reader {
                if !made_room {
                    made_room = true;
                    self.make_room(command);
                    continue;
                }
                self.take_room_back();
            }
            if is_corrupt(&e) {
                // Never keep a connection to a damaged file: the next try reopens it. The
                // failed try changed nothing (its transaction rolled back), so trying again is
                // safe.
                self.conn = None;
                corrupt += 1;
                if corrupt == 1 {
                    // Another process may have rebuilt the file already: reopen and retry
                    // once before judging the file.
                    continue;
                }
                if corrupt == 2 && self.on_corruption == OnCorruption::Rebuild {
                    if let Err(moved) = self.quarantine(&e) {
                        return Err(Error::backend("disk", command, moved));
                    }
                    continue;
                }
            }
            return Err(Error::backend("disk", command, self.explain(&e)));
        }
    }

    /// A full disk: releases the reserve and checkpoints the log into the room, then, unless
    /// `command` only frees space (it runs in that room), takes the reserve back before the
    /// retry, so that no write spends the room deletes and checkpoints need.
    #[cold]
    fn make_room(&mut self, command: Command) {
        tracing::warn!(
            path = %self.path.display(),
            %command,
            "cashews disk: the disk is full; releasing the reserve and checkpointing"
        );
        space::release(&self.reserve_path);
        if let Some(conn) = &self.conn {
            space::checkpoint(conn, &self.path);
        }
        if !space::frees_space(command) {
            space::restore(&self.reserve_path, self.reserve);
        }
    }

    /// After a command retried on a full disk: checkpoints its changes out of the log (a
    /// delete's pages are rewritten in place, so this needs no new room) and refills the
    /// reserve from the room the log gave back.
    #[cold]
    fn take_room_back(&mut self) {
        if let Some(conn) = &self.conn {
            space::checkpoint(conn, &self.path);
        }
        space::restore(&self.reserve_path, self.reserve);
    }

    /// The open connection, opening it first when needed.
    ///
    /// A connection whose file was replaced (moved aside and rebuilt by another process, or
    /// deleted by hand) is reopened, so no process keeps reading and writing a file the
    /// others no longer see. One `stat` per command buys that (per millisecond on a reader,
    /// see [`READER_CHECK_EVERY`]).
    fn connection(&mut self) -> Result<&mut Connection, Fail> {
        if self.conn.is_some() && self.should_check_file() && file_id(&self.path) != self.opened {
            tracing::info!(
                path = %self.path.display(),
                "cashews disk: shard file replaced, reopening"
            );
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None if self.reader => {
                if self.retry_at.is_some_and(|at| Instant::now() < at) {
                    return Err(self.refuse(
                        "not opened by this reader yet".to_owned(),
                        ": the shard's thread answers",
                    ));
                }
                let conn = self.try_open_reader().inspect_err(|_| {
                    // An inline open refused only because the file was not in memory is
                    // tried again on the next read: nothing is wrong with the file.
                    if !super::nowait::refused() {
                        self.retry_at = Some(Instant::now() + READER_RETRY);
                    }
                })?;
                self.retry_at = None;
                self.opened = file_id(&self.path);
                conn
            }
            None => {
                let conn = self.open()?;
                self.opened = file_id(&self.path);
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }

    fn open(&self) -> Result<Connection, Fail> {
        let started = Instant::now();
        loop {
            match self.try_open() {
                // Processes opening a new file at once contend for the switch to WAL and the
                // schema; SQLite may answer BUSY there without using the busy handler.
                Err(Fail::Sql(e)) if is_busy(&e) && started.elapsed() < self.timeout => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    fn try_open(&self) -> Result<Connection, Fail> {
        // No URI flag: a folder named like `file:…` is a path, not options. No mutex: one
        // thread owns the connection.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(self.timeout)?;
        // Room for every statement of `sql` (rusqlite keeps 16 by default): none is ever
        // prepared twice on a warm connection.
        conn.set_prepared_statement_cache_capacity(32);
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                path = %self.path.display(),
                mode,
                "cashews disk: WAL is not available, readers will wait for writers"
            );
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        space::configure(&conn, self.reserve)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql::SCHEMA)?;
        let (index, count) = (self.index as i64, self.count as i64);
        tx.execute(sql::META_INIT, params![sql::FORMAT, index, count])?;
        let (format, shard, shards): (i64, i64, i64) = tx.query_row(sql::META_READ, [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        tx.commit()?;
        if format != sql::FORMAT {
            return Err(self.refuse(
                format!(
                    "the file has format {format}, this version of cashews reads format {}",
                    sql::FORMAT
                ),
                ": use another `directory`, or delete the folder's shard files",
            ));
        }
        if (shard, shards) != (index, count) {
            return Err(self.refuse(
                format!(
                    "the folder holds a disk cache of {shards} shards, opened here with {count}"
                ),
                ": set `shards` to the number the folder was created with, or use another \
                 `directory`",
            ));
        }
        space::restore(&self.reserve_path, self.reserve);
        Ok(conn)
    }

    /// A reader's connection: an existing file only (the shard's thread creates it), no
    /// schema, no write lock, a short busy timeout; the file must be one this store uses.
    fn try_open_reader(&self) -> Result<Connection, Fail> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(self.timeout)?;
        conn.set_prepared_statement_cache_capacity(32);
        conn.pragma_update(None, "query_only", true)?;
        let (format, shard, shards): (i64, i64, i64) = conn.query_row(sql::META_READ, [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        let expected = (sql::FORMAT, self.index as i64, self.count as i64);
        if (format, shard, shards) != expected {
            // The shard's thread explains the mismatch.
            return Err(self.refuse(
                "not the file this store expects".to_owned(),
                ": the shard's thread answers",
            ));
        }
        Ok(conn)
    }

    fn refuse(&self, problem: String, fix: &'static str) -> Fail {
        Fail::Refused(DiskError {
            path: self.path.display().to_string(),
            problem,
            fix,
        })
    }

    /// Renames a corrupt file (and its WAL and shared-memory files) aside, so the next open
    /// starts an empty shard; the damaged data stays there for inspection.
    fn quarantine(&mut self, cause: &rusqlite::Error) -> std::result::Result<(), DiskError> {
        let stamp = now_ms();
        let aside = PathBuf::from(format!("{}.corrupt-{stamp}", self.path.display()));
        // The WAL and shared-memory files go first: a stale WAL left beside the new file would
        // be replayed into it.
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", self.path.display()));
            // A missing side file is normal (clean close); anything else is logged only, the
            // main file decides.
            if let Err(e) = std::fs::remove_file(&side)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %side.display(), error = %e, "cashews disk: cannot remove");
            }
        }
        std::fs::rename(&self.path, &aside).map_err(|e| DiskError {
            path: self.path.display().to_string(),
            problem: format!("the file is corrupt ({cause}) and cannot be moved aside ({e})"),
            fix: ": delete it by hand",
        })?;
        tracing::error!(
            path = %self.path.display(),
            aside = %aside.display(),
            error = %cause,
            "cashews disk: corrupt shard file moved aside; the shard starts empty"
        );
        Ok(())
    }

    /// The error for a SQLite failure: the file, SQLite's message, and what to do.
    fn explain(&self, e: &rusqlite::Error) -> DiskError {
        let fix = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                ": the file is damaged or is not a cashews disk cache; delete it (with its -wal \
                 and -shm files), or set `on_corruption=rebuild` to have it moved aside and \
                 rebuilt"
            }
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                ": this process cannot open or write the file; make the folder and its files \
                 writable by this user, or set `directory` to a writable folder"
            }
            Some(ErrorCode::DiskFull) => ": the disk is full; free space or lower `size_limit`",
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                ": another connection held the file longer than the busy timeout; retry, or \
                 raise `timeout`"
            }
            _ => "",
        };
        DiskError {
            path: self.path.display().to_string(),
            problem: e.to_string(),
            fix,
        }
    }
}

/// The identity of the file at `path` (device and inode), `None` when there is none: tells a
/// file replaced under the same name.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Without inodes, only a missing file is noticed.
#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DiskFull)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Evicts down to `limit` bytes: expired rows first, then the least recently used, oldest
/// first and only as many as needed, never `keep`. Runs inside the writing transaction, so
/// the store never commits over its limit. When `keep` alone is over it (a set, window or
/// bit field grown past the shard's share of `size_limit`), the write is refused with
/// [`Error::ValueOverBudget`] and rolls back, so the other keys stay.
fn evict(tx: &Transaction<'_>, keep: &str, limit: i64, size_limit: u64) -> Result<(), Fail> {
    let total = |tx: &Transaction<'_>| -> rusqlite::Result<i64> {
        tx.prepare_cached(sql::TOTAL_SIZE)?
            .query_row([], |r| r.get(0))
    };
    let mut over = total(tx)? - limit;
    if over <= 0 {
        return Ok(());
    }
    if tx.prepare_cached(sql::PURGE)?.execute([now_ms()])? > 0 {
        over = total(tx)? - limit;
        if over <= 0 {
            return Ok(());
        }
    }
    let kept: Option<i64> = tx
        .prepare_cached(sql::SIZE_OF)?
        .query_row([keep], |r| r.get(0))
        .optional()?;
    if let Some(size) = kept
        && size > limit
    {
        return Err(Fail::Cashews(over_budget(keep, size, limit, size_limit)));
    }
    while over > 0 {
        let oldest: Vec<(i64, i64)> = tx
            .prepare_cached(sql::LEAST_RECENT)?
            .query_map([keep], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if oldest.is_empty() {
            return Ok(());
        }
        let mut delete = tx.prepare_cached(sql::DELETE_ROWID)?;
        for (rowid, size) in oldest {
            if over <= 0 {
                break;
            }
            delete.execute([rowid])?;
            over -= size;
        }
    }
    Ok(())
}

/// The row of `key` if it is live at `now`.
pub(super) fn live(conn: &Connection, key: &str, now: i64) -> Result<Option<Row>, Fail> {
    let row = conn
        .prepare_cached(sql::ROW)?
        .query_row([key], |r| {
            Ok(Row {
                kind: Kind::from_code(r.get(0)?),
                value: r.get(1)?,
                expires_at: r.get(2)?,
                accessed_at: r.get(3)?,
            })
        })
        .optional()?;
    Ok(row.filter(|row| row.expires_at.is_none_or(|at| at > now)))
}

/// Whether `key` is live at `now` (its value is not read).
pub(super) fn is_live(conn: &Connection, key: &str, now: i64) -> Result<bool, Fail> {
    Ok(conn
        .prepare_cached(sql::IS_LIVE)?
        .query_row(params![key, now], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The expiry and size of `key` if it is live at `now` (its value is not read).
pub(super) fn live_meta(
    conn: &Connection,
    key: &str,
    now: i64,
) -> Result<Option<(Option<i64>, i64)>, Fail> {
    Ok(conn
        .prepare_cached(sql::LIVE_META)?
        .query_row(params![key, now], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Stores `key`, replacing any row it had (live or expired).
pub(super) fn put(
    conn: &Connection,
    key: &str,
    kind: Kind,
    value: &[u8],
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), Fail> {
    // UPDATE, then INSERT when there was no row: unlike INSERT OR REPLACE (a delete without
    // delete triggers) or an upsert, each path fires exactly the trigger that keeps
    // `meta.total_size` right.
    let size = entry_size(key, value);
    let args = params![key, kind.code(), value, expires_at, now, size];
    if conn.prepare_cached(sql::UPDATE)?.execute(args)? == 0 {
        conn.prepare_cached(sql::INSERT)?.execute(args)?;
    }
    Ok(())
}

/// Deletes `key`; returns whether it was live at `now`.
pub(super) fn remove(conn: &Connection, key: &str, now: i64) -> Result<bool, Fail> {
    let mut stmt = conn.prepare_cached(sql::DELETE)?;
    let mut rows = stmt.query(params![key, now])?;
    let mut was_live = false;
    while let Some(row) = rows.next()? {
        was_live |= row.get::<_, bool>(0)?;
    }
    Ok(was_live)
}
