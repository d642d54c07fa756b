//! The SQL of a shard file: schema, and the statements commands prepare (and cache) once per
//! connection.
//!
//! One table, `entries`, one row per key. `expires_at` and `accessed_at` are wall-clock Unix
//! milliseconds, since several processes share the file. `meta` holds the shard layout and
//! `total_size`, the sum of `entries.size`, kept by triggers in the same transaction as every
//! change, so all processes see one exact total without scanning the table.

/// The format version written into `meta`; a file of another version is refused.
pub(super) const FORMAT: i64 = 1;

/// Creates what is missing; run inside an IMMEDIATE transaction so that processes opening a
/// new file at once do not race.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    key TEXT NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER,
    accessed_at INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_expires_at ON entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_accessed_at ON entries (accessed_at);
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    format INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    shards INTEGER NOT NULL,
    total_size INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    UPDATE meta SET total_size = total_size + NEW.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE meta SET total_size = total_size - OLD.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF size ON entries BEGIN
    UPDATE meta SET total_size = total_size - OLD.size + NEW.size WHERE id = 0;
END;
";

pub(super) const META_INIT: &str =
    "INSERT OR IGNORE INTO meta (id, format, shard, shards, total_size) VALUES (0, ?1, ?2, ?3, 0)";
pub(super) const META_READ: &str = "SELECT format, shard, shards FROM meta WHERE id = 0";
pub(super) const TOTAL_SIZE: &str = "SELECT total_size FROM meta WHERE id = 0";
/// The counted size of a key's row, live or not.
pub(super) const SIZE_OF: &str = "SELECT size FROM entries WHERE key = ?1";

/// The row of a key, live or not: the caller checks `expires_at` against its clock.
pub(super) const ROW: &str =
    "SELECT kind, value, expires_at, accessed_at FROM entries WHERE key = ?1";
/// Whether a key is live at `?2`, without reading its value.
pub(super) const IS_LIVE: &str =
    "SELECT 1 FROM entries WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
/// The expiry and size of a key live at `?2`, without reading its value.
pub(super) const LIVE_META: &str = "SELECT expires_at, size FROM entries \
     WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
pub(super) const UPDATE: &str = "UPDATE entries SET kind = ?2, value = ?3, expires_at = ?4, \
     accessed_at = ?5, size = ?6 WHERE key = ?1";
pub(super) const INSERT: &str = "INSERT INTO entries \
     (key, kind, value, expires_at, accessed_at, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Deletes a key; the row answers whether it was live at `?2`.
pub(super) const DELETE: &str =
    "DELETE FROM entries WHERE key = ?1 RETURNING expires_at IS NULL OR expires_at > ?2";
pub(super) const EXPIRE: &str = "UPDATE entries SET expires_at = ?2 \
     WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?3)";
/// Marks a read, at most once a second per key (see `Shard::touch`).
pub(super) const TOUCH: &str =
    "UPDATE entries SET accessed_at = ?2 WHERE key = ?1 AND accessed_at < ?3";
pub(super) const COUNT_LIVE: &str =
    "SELECT COUNT(*) FROM entries WHERE expires_at IS NULL OR expires_at > ?1";
pub(super) const CLEAR: &str = "DELETE FROM entries";
/// Drops up to 1,000 expired rows (bounded, so a write never waits on a huge purge).
pub(super) const PURGE: &str = "DELETE FROM entries WHERE rowid IN \
     (SELECT rowid FROM entries WHERE expires_at <= ?1 LIMIT 1000)";
/// The least recently used rows other than `?1`, oldest first, 64 at a time.
pub(super) const LEAST_RECENT: &str = "SELECT rowid, size FROM entries WHERE key <> ?1 \
     ORDER BY accessed_at, rowid LIMIT 64";
pub(super) const DELETE_ROWID: &str = "DELETE FROM entries WHERE rowid = ?1";

/// A page of live keys in key order from `?1` (inclusive on the first page, exclusive
/// after), below `?3` when the pattern has a literal start, at most `?4` (or `?3`) keys.
pub(super) fn scan_page(first: bool, bounded: bool) -> &'static str {
    match (first, bounded) {
        (true, true) => {
            "SELECT key FROM entries WHERE key >= ?1 AND key < ?3 \
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key LIMIT ?4"
        }
        (false, true) => {
            "SELECT key FROM entries WHERE key > ?1 AND key < ?3 \
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key LIMIT ?4"
        }
        (true, false) => {
            "SELECT key FROM entries WHERE key >= ?1 \
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key LIMIT ?3"
        }
        (false, false) => {
            "SELECT key FROM entries WHERE key > ?1 \
             AND (expires_at IS NULL OR expires_at > ?2) ORDER BY key LIMIT ?3"
        }
    }
}
