//! Reads that never wait for the disk: SQLite file reads that fail at once, instead of
//! waiting, when the data is not in the kernel's page cache.
//!
//! Inline reads (see `readers.rs`) run SQLite on the caller's runtime thread. A few
//! microseconds of SQLite there are like any other work of a task, but a read of a page
//! that is not in memory would wait for the disk, and a slow or stalled disk would then stall
//! every task of that thread. So while an inline read runs, each file read SQLite makes on
//! that thread is a `preadv2(…, RWF_NOWAIT)` (Linux ≥ 4.14): the kernel copies the data if
//! it is cached, and refuses with `EAGAIN` if it would have to wait for the device. SQLite
//! then fails the read (`SQLITE_IOERR_READ`), the connection rolls its read transaction back,
//! and the read goes to a reader thread, which waits for the disk off the runtime.
//!
//! # How: SQLite's system-call table
//!
//! SQLite's unix VFS makes its file reads through a table of system calls that an
//! application may override (`xSetSystemCall`, a public API). This module replaces `pread`
//! there, once per process, with [`pread`] below, when the first backend with
//! `inline_reads=nowait` is built (never for a default backend: the table is the whole
//! process's, see `InlineReads::Nowait`): on any thread not inside
//! [`without_waiting`] it calls the original `pread`, with the same arguments and result,
//! so every other SQLite connection of the process (a shard thread's, a reader's, the
//! application's own) reads exactly as before.
//!
//! Why by hand, with `unsafe`: no crate offers a non-blocking SQLite read, and the only
//! alternative, a whole VFS of our own, is far more foreign code. The reason is measured
//! (`benches/benches/disk.rs`, 2 cores): reads on the caller's thread answer a get hit in
//! about 2.1 µs against 3.5 µs through a reader thread, and 8 tasks reading together answer
//! about 1.15 to 1.55 times as many reads per second as one, where through reader threads
//! they answer fewer (the wake-ups between threads cost more than the reads).
//!
//! # What is not covered
//!
//! File metadata (`open`, `fstat`, the `stat` that spots a replaced file, `fcntl` locks,
//! which SQLite never waits for with a busy timeout of 0) is served from the kernel's inode
//! cache, and a first open of a connection reads the file's header through [`pread`] too.
//! A filesystem that cannot read without waiting (`EOPNOTSUPP`, e.g. tmpfs) turns inline
//! reads off for the backend: see [`Refusal::Unsupported`]. The backend's connections use
//! SQLite's default VFS: an application that makes a VFS of its own the default after a
//! backend started (a rare thing to do) gets inline reads through that VFS, which this
//! module does not reach; `inline_reads=off` (the default) is the setting for it.

// The one module of the crate with `unsafe`: FFI to SQLite's VFS and to `preadv2`.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;
use std::sync::OnceLock;

/// Why a read in [`without_waiting`] failed, when it was this module's doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) enum Refusal {
    /// The data was not in the page cache (`EAGAIN`): the disk would have been waited for.
    NotCached,
    /// The filesystem or the kernel cannot read without waiting (`EOPNOTSUPP`, `EINVAL`,
    /// `ENOSYS`).
    Unsupported,
}

thread_local! {
    /// Whether this thread is inside [`without_waiting`].
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The first refusal of the current [`without_waiting`] call.
    static REFUSED: Cell<Option<Refusal>> = const { Cell::new(None) };
}

/// Runs `f` with every SQLite file read of this thread made without waiting for the disk;
/// returns its result and the refusal, if a read was refused (`f` then saw an I/O error).
///
/// `None` when reads cannot be made so here ([`install`] failed, or not Linux): `f` is not
/// run, and the caller reads some other way.
pub(super) fn without_waiting<T>(f: impl FnOnce() -> T) -> Option<(T, Option<Refusal>)> {
    /// Leaves the mode even if `f` panics.
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let _ = ACTIVE.try_with(|active| active.set(false));
        }
    }
    if !install() {
        return None;
    }
    REFUSED.set(None);
    ACTIVE.set(true);
    let leave = Leave;
    let out = f();
    drop(leave);
    Some((out, REFUSED.take()))
}

/// Whether a read of the current [`without_waiting`] call on this thread has been refused
/// so far (`false` outside one).
pub(super) fn refused() -> bool {
    ACTIVE.get() && REFUSED.get().is_some()
}

/// Installs [`pread`] in SQLite's unix VFS, once per process; whether it is installed.
///
/// SQLite asks that its system-call table be changed before other threads use SQLite: a
/// disk backend with `inline_reads=nowait` calls this before it starts its threads (and its
/// docs ask the application to build it before its own threads use SQLite). Another thread
/// of the application reading through SQLite at that very moment calls either `pread` or
/// [`pread`], which behave alike outside [`without_waiting`].
pub(super) fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let installed = imp::install();
        if !installed {
            tracing::info!(
                "cashews disk: SQLite reads cannot be made without waiting here; \
                 reads run on reader threads"
            );
        }
        installed
    })
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::OnceLock;

    use rusqlite::ffi;

    use super::{ACTIVE, REFUSED, Refusal};

    /// The signature of `pread` as SQLite calls it (`off_t` is 64 bits on every Linux
    /// target Rust supports with a 64-bit `libc::off_t`; the type below is libc's).
    type Pread = unsafe extern "C" fn(c_int, *mut c_void, libc::size_t, libc::off_t) -> isize;

    /// SQLite's own `pread`, which [`pread`] calls outside the mode.
    static ORIGINAL: OnceLock<Pread> = OnceLock::new();

    /// The name of the entry in SQLite's system-call table.
    const NAME: &std::ffi::CStr = c"pread";

    /// The getter of a VFS's system-call table.
    type GetSystemCall =
        unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *const c_char) -> ffi::sqlite3_syscall_ptr;

    /// The setter of a VFS's system-call table.
    type SetSystemCall = unsafe extern "C" fn(
        *mut ffi::sqlite3_vfs,
        *const c_char,
        ffi::sqlite3_syscall_ptr,
    ) -> c_int;

    /// SQLite's default VFS and the accessors of its system-call table, when it is the unix
    /// VFS with such a table.
    fn unix_vfs() -> Option<(*mut ffi::sqlite3_vfs, GetSystemCall, SetSystemCall)> {
        // SAFETY: `sqlite3_vfs_find(NULL)` initializes SQLite if needed and returns the
        // default VFS, a static object that lives as long as the process (or null). It
        // registers nothing.
        let vfs = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
        if vfs.is_null() {
            return None;
        }
        // SAFETY: `vfs` is non-null and points to a registered `sqlite3_vfs`, never freed.
        let (version, name, get, set) = unsafe {
            let vfs = &*vfs;
            (
                vfs.iVersion,
                vfs.zName,
                vfs.xGetSystemCall,
                vfs.xSetSystemCall,
            )
        };
        // The system-call table exists from VFS version 3, and only the unix VFS has
        // `pread` in it.
        if version < 3 || name.is_null() {
            return None;
        }
        // SAFETY: `zName` of a registered VFS is a NUL-terminated static string.
        let unix = unsafe { std::ffi::CStr::from_ptr(name) }
            .to_bytes()
            .starts_with(b"unix");
        match (unix, get, set) {
            (true, Some(get), Some(set)) => Some((vfs, get, set)),
            _ => None,
        }
    }

    /// The current `pread` of the unix VFS's system-call table.
    fn current(vfs: *mut ffi::sqlite3_vfs, get: GetSystemCall) -> Option<Pread> {
        // SAFETY: `xGetSystemCall` of the unix VFS takes the VFS and a NUL-terminated name,
        // and returns the current function of that entry, or null when the build does not
        // use it (a build reading with `pread64` or `lseek` + `read`).
        let current = unsafe { get(vfs, NAME.as_ptr()) }?;
        // SAFETY: the unix VFS stores `pread` (and nothing else) under that name, cast to
        // `sqlite3_syscall_ptr`; casting back to its real type is what SQLite itself does
        // before calling it.
        Some(unsafe { std::mem::transmute::<unsafe extern "C" fn(), Pread>(current) })
    }

    pub(super) fn install() -> bool {
        let Some((vfs, get, set)) = unix_vfs() else {
            return false;
        };
        let Some(original) = current(vfs, get) else {
            return false;
        };
        if ORIGINAL.set(original).is_err() {
            return false;
        }
        // SAFETY: the same cast as in `current`, the other way, of a function with `pread`'s
        // exact C signature. `xSetSystemCall` stores one pointer; SQLite documents it for use
        // before other threads read, and a connection that reads while it is stored calls
        // either the old or the new function, which behave alike outside the mode.
        let ours = unsafe { std::mem::transmute::<Pread, unsafe extern "C" fn()>(pread) };
        // SAFETY: as for `get`; the VFS keeps the pointer, a static function.
        let rc = unsafe { set(vfs, NAME.as_ptr(), Some(ours)) };
        rc == ffi::SQLITE_OK
    }

    /// Whether the `pread` of SQLite's default VFS is this module's [`pread`] (`None` when
    /// that VFS has no such entry).
    #[cfg(test)]
    pub(super) fn hooked() -> Option<bool> {
        let (vfs, get, _) = unix_vfs()?;
        let ours: Pread = pread;
        Some(std::ptr::fn_addr_eq(current(vfs, get)?, ours))
    }

    /// SQLite's `pread`: outside [`super::without_waiting`], the original; inside it, a
    /// `preadv2` that fails with `EAGAIN` rather than wait for the disk (and records why).
    ///
    /// Never panics (a panic cannot cross into C): thread-local access uses `try_with`.
    unsafe extern "C" fn pread(
        fd: c_int,
        buf: *mut c_void,
        count: libc::size_t,
        offset: libc::off_t,
    ) -> isize {
        let active = ACTIVE.try_with(std::cell::Cell::get).unwrap_or(false);
        if !active {
            // Installed only after `ORIGINAL` is set, so it is there; `libc::pread` is the
            // same function, should it not be.
            let original = ORIGINAL.get().copied().unwrap_or(libc::pread);
            // SAFETY: the caller's arguments, passed on unchanged to the function SQLite
            // would have called.
            return unsafe { original(fd, buf, count, offset) };
        }
        let iov = libc::iovec {
            iov_base: buf,
            iov_len: count,
        };
        // SAFETY: `buf` is SQLite's buffer of `count` writable bytes (the `pread` contract);
        // `iov` lives across the call; one entry.
        let got = unsafe { libc::preadv2(fd, &raw const iov, 1, offset, libc::RWF_NOWAIT) };
        if got < 0 {
            let refusal = match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => Some(Refusal::NotCached),
                // Kernels before 4.14 (no `RWF_NOWAIT`: `EOPNOTSUPP` or `EINVAL`) and before
                // 4.6 (no `preadv2`) count as filesystems that cannot.
                Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS) => Some(Refusal::Unsupported),
                _ => None,
            };
            // The first refusal counts; errno is left as `preadv2` set it, for SQLite.
            let _ = REFUSED.try_with(|refused| {
                if refused.get().is_none() {
                    refused.set(refusal);
                }
            });
        }
        got
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    /// No `RWF_NOWAIT` outside Linux: inline reads stay off.
    pub(super) fn install() -> bool {
        false
    }
}

/// Drops the clean pages of the file at `path` from the kernel's page cache (after writing
/// its dirty ones back), so its next read must go to the disk.
#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
pub(super) fn drop_cached(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: `file` is open for the whole call; `posix_fadvise` only reads its arguments.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise on {}", path.display());
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use bytes::Bytes;

    use super::super::DiskBackend;
    use super::*;
    use crate::backend::{Backend, SetOptions};
    use crate::config::{DiskOptions, InlineReads};

    /// Outside the mode SQLite reads as before; inside it, a cached file reads too.
    #[test]
    fn reads_work_inside_and_outside_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("t.sqlite3")).unwrap();
        conn.execute_batch("CREATE TABLE t (v); INSERT INTO t VALUES (42);")
            .unwrap();
        assert!(install(), "installed on Linux");
        let read = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(read(&conn), 42);
        // A fresh connection has no page cache of its own, so it reads the file.
        let fresh = rusqlite::Connection::open(dir.path().join("t.sqlite3")).unwrap();
        let (value, refused) = without_waiting(|| read(&fresh)).unwrap();
        assert_eq!((value, refused), (42, None));
        assert!(!ACTIVE.get(), "the mode ends with the call");
    }

    /// A read of a file whose pages are not in memory fails at once, refused as not cached,
    /// and the connection reads normally afterwards; once the pages are cached (here by that
    /// normal read), a read in the mode succeeds.
    #[test]
    fn a_read_of_data_not_in_memory_is_refused_instead_of_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE t (v BLOB); \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
                 INSERT INTO t SELECT zeroblob(2000) FROM n;",
            )
            .unwrap();
        drop(writer);
        assert!(install());
        let count = |conn: &rusqlite::Connection| -> rusqlite::Result<i64> {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        };
        drop_cached(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (result, refused) = without_waiting(|| count(&conn)).unwrap();
        assert_eq!(refused, Some(Refusal::NotCached), "got {result:?}");
        let error = result.unwrap_err();
        assert_eq!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::SystemIoFailure),
            "{error}"
        );
        // Outside the mode the same connection waits for the disk, and reads.
        assert_eq!(count(&conn).unwrap(), 500);
        // Now in memory: a fresh connection (no page cache of its own) reads in the mode.
        let fresh = rusqlite::Connection::open(&path).unwrap();
        let (result, refused) = without_waiting(|| count(&fresh)).unwrap();
        assert_eq!((result.unwrap(), refused), (500, None));
    }

    /// The name of the test `case` of this module, as the test binary knows it.
    fn test_name(case: &str) -> String {
        let module = module_path!();
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        format!("{module}::{case}")
    }

    /// Set in the process [`in_a_fresh_process`] starts.
    const FRESH: &str = "CASHEWS_NOWAIT_FRESH_PROCESS";

    /// Whether this is the process [`in_a_fresh_process`] started. Otherwise runs the test
    /// `case` alone in a new process of this test binary, where no other test can have
    /// installed the hook (`cargo test` runs every unit test in one process), and checks it
    /// ran and passed there.
    fn in_a_fresh_process(case: &str) -> bool {
        if std::env::var_os(FRESH).is_some() {
            return true;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &test_name(case),
                "--test-threads=1",
                "--nocapture",
            ])
            .env(FRESH, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{case} in a fresh process: {}\n{stdout}\n{stderr}",
            output.status
        );
        false
    }

    /// A store of two shards at `dir` with these inline reads, holding `k` = `v`, read three
    /// times (a get, an exists, a get_many).
    async fn served_reads(dir: &std::path::Path, inline_reads: InlineReads) -> DiskBackend {
        let mut options = DiskOptions::new(dir).with_shards(2);
        options.inline_reads = inline_reads;
        let disk = DiskBackend::new(options).unwrap();
        disk.set("k", Bytes::from_static(b"v"), SetOptions::ttl(None))
            .await
            .unwrap();
        assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert!(disk.exists("k").await.unwrap());
        assert_eq!(disk.get_many(&["k"]).await.unwrap().len(), 1);
        disk
    }

    /// A backend with the default options never touches SQLite's process-wide VFS: after it
    /// served reads (each on a reader thread), the `pread` of the default VFS is still
    /// SQLite's own, so the application's own SQLite connections are left as they were.
    #[tokio::test]
    async fn a_default_backend_leaves_sqlite_pread_alone() {
        if !in_a_fresh_process("a_default_backend_leaves_sqlite_pread_alone") {
            return;
        }
        assert_eq!(
            imp::hooked(),
            Some(false),
            "a fresh process starts unhooked"
        );
        let dir = tempfile::tempdir().unwrap();
        let default = DiskOptions::new(dir.path()).inline_reads;
        let disk = served_reads(dir.path(), default).await;
        assert_eq!(imp::hooked(), Some(false), "SQLite's own pread");
        assert_eq!(
            disk.inner.readers.sent(),
            2,
            "reader threads read get and exists"
        );
        assert_eq!(default, InlineReads::Off);
        disk.close().await.unwrap();
    }

    /// With `inline_reads=nowait` the backend installs the hook, and reads of data in memory
    /// are served on the caller's thread (no reader thread).
    #[tokio::test]
    async fn inline_reads_nowait_hooks_pread_and_reads_inline() {
        if !in_a_fresh_process("inline_reads_nowait_hooks_pread_and_reads_inline") {
            return;
        }
        assert_eq!(
            imp::hooked(),
            Some(false),
            "a fresh process starts unhooked"
        );
        let dir = tempfile::tempdir().unwrap();
        let disk = served_reads(dir.path(), InlineReads::Nowait).await;
        assert_eq!(imp::hooked(), Some(true), "the hook is SQLite's pread");
        assert_eq!(
            disk.inner.readers.sent(),
            0,
            "every read ran on this thread"
        );
        disk.close().await.unwrap();
    }
}
