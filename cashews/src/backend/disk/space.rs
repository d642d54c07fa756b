//! A full disk: how a shard keeps the room to delete, evict and checkpoint when the
//! filesystem has none left.
//!
//! In WAL mode every change, a delete too, is first appended to the `-wal` file, and a
//! checkpoint (which copies the log into the database and lets the log start over) may have
//! to grow the database. So on a full disk nothing can be written, not even the delete that
//! would make room, and space freed elsewhere on the disk is eaten by a log that grows until
//! its next checkpoint (1000 pages, 4 MiB, by default; longer than a small disk).
//!
//! Three measures:
//! - the log is checkpointed every [`wal_pages`] pages and truncated to its bound after a
//!   checkpoint (`journal_size_limit`), so it never hoards much of the disk;
//! - each shard keeps a reserve file (`shard-NNN.sqlite3-reserve`, [`reserve_bytes`]), larger
//!   than the log can grow between checkpoints;
//! - on SQLITE_FULL the shard releases its reserve, checkpoints the log (`TRUNCATE`), and
//!   tries the command again once: a command that frees space ([`frees_space`]) runs in the
//!   released room and the shard checkpoints again, taking the room back; any other command
//!   gets the reserve back before its retry, so a write never spends the room deletes need.
//!
//! What stays: a write that does not fit the room left still fails with "the disk is full".

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::command::Command;

const KIB: u64 = 1024;

/// SQLite's page size (the bundled default).
const PAGE: u64 = 4 * KIB;

/// The bytes a shard of `limit` bytes keeps in reserve: a quarter of its share of
/// `size_limit`, from 128 KiB to 4 MiB, and at most a quarter of the room the filesystem had
/// for each of the `shards` when the store opened (`available`, where known), so that the
/// reserves never take a small disk.
pub(super) fn reserve_bytes(limit: i64, shards: usize, available: Option<u64>) -> u64 {
    let wanted = (u64::try_from(limit).unwrap_or(0) / 4).clamp(128 * KIB, 4 * 1024 * KIB);
    let shards = u64::try_from(shards).unwrap_or(1).max(1);
    available.map_or(wanted, |free| wanted.min(free / shards / 4))
}

/// The bytes the filesystem holding `dir` has free for this process.
#[cfg(target_os = "linux")]
pub(super) fn available(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Not known here: the reserve is sized by `size_limit` alone.
#[cfg(not(target_os = "linux"))]
pub(super) fn available(_dir: &Path) -> Option<u64> {
    None
}

/// The pages the log may hold before a checkpoint: half the reserve, so the checkpoint after
/// a full disk finds the room to grow the database by every page the log holds.
pub(super) fn wal_pages(reserve: u64) -> u64 {
    (reserve / 2 / PAGE).max(16)
}

/// The reserve file beside a shard file.
pub(super) fn reserve_path(shard: &Path) -> PathBuf {
    PathBuf::from(format!("{}-reserve", shard.display()))
}

/// Sets the log's checkpoint interval and its size bound on a writing connection.
pub(super) fn configure(conn: &Connection, reserve: u64) -> rusqlite::Result<()> {
    let pages = i64::try_from(wal_pages(reserve)).unwrap_or(i64::MAX);
    conn.pragma_update(None, "wal_autocheckpoint", pages)?;
    let bytes = pages.saturating_mul(PAGE.cast_signed());
    conn.pragma_update(None, "journal_size_limit", bytes)?;
    Ok(())
}

/// Whether `command` only removes data, so that on a full disk it runs in the released
/// reserve (see the module docs).
pub(super) const fn frees_space(command: Command) -> bool {
    matches!(
        command,
        Command::Delete
            | Command::DeleteMany
            | Command::DeleteMatch
            | Command::Clear
            | Command::Unlock
            | Command::SetRemove
            | Command::SetPop
    )
}

/// Fills the reserve file up to `bytes`, as far as the disk allows: a partial reserve still
/// helps. The room is allocated (Linux `fallocate`, else written zeros), not a sparse length,
/// so the filesystem really holds it.
pub(super) fn restore(path: &Path, bytes: u64) {
    let have = std::fs::metadata(path).map_or(0, |m| m.len());
    if have >= bytes {
        return;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    let Ok(mut file) = file else {
        return;
    };
    // One call, without writing the bytes (a default store would otherwise write 32 MiB
    // when it opens); a filesystem without it, or a disk without the whole room, gets zeros
    // written as far as they fit.
    #[cfg(target_os = "linux")]
    if rustix::fs::fallocate(
        &file,
        rustix::fs::FallocateFlags::empty(),
        have,
        bytes - have,
    )
    .is_ok()
    {
        return;
    }
    let have = file.metadata().map_or(have, |m| m.len());
    let chunk = [0u8; 16 * 1024];
    let mut left = bytes.saturating_sub(have);
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        if file.write_all(&chunk[..n]).is_err() {
            tracing::debug!(path = %path.display(), "cashews disk: reserve only partly restored");
            return;
        }
        left -= n as u64;
    }
}

/// Gives the reserve's room back to the filesystem.
pub(super) fn release(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cashews disk: cannot release the reserve");
    }
}

/// Copies the log into the database and truncates it to zero bytes. Best effort: a
/// checkpoint that cannot finish (readers, no room) is logged and the command decides.
pub(super) fn checkpoint(conn: &Connection, path: &Path) {
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    match done {
        Ok(0) => {}
        Ok(_) => {
            tracing::debug!(path = %path.display(), "cashews disk: checkpoint blocked by readers");
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cashews disk: checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_between_checkpoints_fits_in_the_reserve() {
        for limit in [1, 64 * 1024, 1 << 20, 128 << 20, i64::MAX] {
            let reserve = reserve_bytes(limit, 8, None);
            assert!((128 * KIB..=4096 * KIB).contains(&reserve), "{limit}");
            assert!(wal_pages(reserve) * PAGE * 2 <= reserve, "{limit}");
        }
        // A 1 MiB disk, 2 shards: 128 KiB each at most.
        assert_eq!(reserve_bytes(1 << 30, 2, Some(1 << 20)), 128 * KIB);
    }
}
