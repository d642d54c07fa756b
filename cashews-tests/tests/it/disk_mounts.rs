//! The disk backend on a real, tiny filesystem: a 1 MiB tmpfs that fills up, and a store on
//! a tmpfs remounted read-only. Both need `mount` (root, or `CAP_SYS_ADMIN`): in CI that
//! is a requirement (the test fails loudly without it), elsewhere the tests skip with the
//! reason printed.
//!
//! The rule, as for the other faults: a clear error naming the file and the fix, never a
//! panic, never a wrong value, and the same backend works again once the filesystem does.

use std::path::{Path, PathBuf};
use std::process::Command;

use cashews::backend::{Backend, DiskBackend, SetOptions};
use cashews::config::DiskOptions;
use cashews::{Bytes, Error};

/// A tmpfs mounted on a fresh temporary folder, unmounted (lazily, so a leftover open file
/// cannot keep it) when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount` reads it: `1m`) or explains why it cannot.
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("cashews-disk-mount-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("tmpfs")
            .arg(dir.path()))?;
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts with `options` (`ro`, `rw`, `size=4m`), keeping every file.
    fn remount(&self, options: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path()))
        .unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg("-l").arg(self.dir.path()));
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A tmpfs, or `None` (outside CI) when this machine cannot mount one.
fn tmpfs(case: &str, size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(size) {
        Ok(fs) => Some(fs),
        Err(reason) => cashews_testkit::skip_unless_ci(
            case,
            &format!("cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {reason}"),
        ),
    }
}

fn key(i: usize) -> String {
    format!("key:{i}")
}

/// 16 KiB that differ per key, so a value read under the wrong key cannot pass.
fn value(i: usize) -> Bytes {
    Bytes::from(format!("{i:>8}").repeat(2048))
}

fn store(dir: &Path) -> DiskBackend {
    let options = DiskOptions::new(dir.join("cache")).with_shards(2);
    DiskBackend::new(options).unwrap()
}

/// Every key below `written` holds its own value or answers an error that names a shard file
/// of `dir`: never another value, never a miss. Returns how many answered.
async fn check(disk: &DiskBackend, dir: &Path, written: usize) -> usize {
    let mut answered = 0;
    for i in 0..written {
        match disk.get(&key(i)).await {
            Ok(got) => {
                assert_eq!(got, Some(value(i)), "key {i} lost or read a wrong value");
                answered += 1;
            }
            Err(e) => assert_names_a_shard(&e, dir),
        }
    }
    answered
}

fn assert_names_a_shard(e: &Error, dir: &Path) {
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    let msg = e.to_string();
    let folder: PathBuf = dir.join("cache");
    assert!(
        msg.contains(&folder.display().to_string()) && msg.contains("shard-"),
        "the error names the shard file: {msg}"
    );
}

#[tokio::test]
async fn a_full_disk_is_a_clear_error_and_the_cache_recovers_with_space() {
    let Some(fs) = tmpfs("a_full_disk_is_a_clear_error", "1m") else {
        return;
    };
    let disk = store(fs.path());
    // 1 MiB holds fewer than 64 values of 16 KiB (plus the WAL): a write must fail.
    let mut written = 0;
    let mut failure = None;
    for i in 0..64 {
        match disk.set(&key(i), value(i), SetOptions::ttl(None)).await {
            Ok(_) => written = i + 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("1 MiB cannot hold 64 values of 16 KiB");
    assert_names_a_shard(&failure, fs.path());
    let msg = failure.to_string();
    assert!(msg.contains("the disk is full; free space"), "{msg}");
    assert!(written > 0, "the first values fit");

    // What was acknowledged is still there (or an error), and the failed key is not half-set.
    assert_eq!(
        check(&disk, fs.path(), written).await,
        written,
        "reads need no space: every acknowledged value reads back"
    );
    assert!(matches!(disk.get(&key(written)).await, Ok(None) | Err(_)));

    // More room: the same backend writes again, and every earlier value is intact.
    fs.remount("size=8m");
    for i in written..written + 8 {
        disk.set(&key(i), value(i), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    assert_eq!(check(&disk, fs.path(), written + 8).await, written + 8);
    disk.close().await.unwrap();
}

/// Linux refuses to remount a filesystem read-only while files on it are open for writing
/// (as a running cache's are), so the read-only case is a store found read-only at setup:
/// say, a volume mounted read-only into a container.
#[tokio::test]
async fn a_store_on_a_read_only_filesystem_is_refused_at_setup_and_kept() {
    let Some(fs) = tmpfs("a_store_on_a_read_only_filesystem", "8m") else {
        return;
    };
    let disk = store(fs.path());
    for i in 0..16 {
        disk.set(&key(i), value(i), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    disk.close().await.unwrap();

    fs.remount("ro");
    let folder = fs.path().join("cache");
    let e = DiskBackend::new(DiskOptions::new(&folder).with_shards(2)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}");
    assert!(
        msg.contains(&folder.display().to_string())
            && msg.contains("fix its permissions, or set `directory` to another folder"),
        "{msg}"
    );

    fs.remount("rw");
    let disk = store(fs.path());
    assert_eq!(check(&disk, fs.path(), 16).await, 16, "every value kept");
    disk.close().await.unwrap();
}

/// Issue 13, item 8: on a full disk, deletes still succeed (before, they failed with "disk
/// full" too, as a delete in WAL mode is appended to the log), and once space is freed
/// elsewhere on the disk, writes come back and keep working (before, the log grew into the
/// freed space until its next checkpoint, past what a small disk holds, and writes stopped
/// again after a few values).
#[tokio::test]
async fn on_a_full_disk_deletes_succeed_and_writes_resume_once_space_is_freed() {
    let Some(fs) = tmpfs("on_a_full_disk_deletes_succeed", "2m") else {
        return;
    };
    let mut options = DiskOptions::new(fs.path().join("cache")).with_shards(1);
    options.size_limit = 1 << 20;
    let disk = DiskBackend::new(options).unwrap();
    disk.set(&key(0), value(0), SetOptions::ttl(None))
        .await
        .unwrap();
    // Something else on the disk takes half of it.
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 1 << 20]).unwrap();

    let mut written = 1;
    let failure = loop {
        match disk
            .set(&key(written), value(written), SetOptions::ttl(None))
            .await
        {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 64, "the disk fills before size_limit is reached");
    };
    assert_names_a_shard(&failure, fs.path());
    assert!(
        failure.to_string().contains("the disk is full"),
        "{failure}"
    );
    assert!(written > 4, "the first values fit: {written}");

    // Full: deletes succeed, and every other value reads back.
    for i in 0..3 {
        assert!(
            disk.delete(&key(i)).await.unwrap(),
            "delete {i} on a full disk"
        );
    }
    for i in 3..written {
        assert_eq!(disk.get(&key(i)).await.unwrap(), Some(value(i)), "key {i}");
    }

    // 1 MiB freed elsewhere: writes come back and go on, 200 values (3.2 MB) through a store
    // of 1 MiB that evicts its least recently used values.
    std::fs::remove_file(&ballast).unwrap();
    for i in 100..300 {
        disk.set(&key(i), value(i), SetOptions::ttl(None))
            .await
            .unwrap_or_else(|e| panic!("write {i} after space was freed: {e}"));
    }
    for i in 290..300 {
        assert_eq!(disk.get(&key(i)).await.unwrap(), Some(value(i)), "key {i}");
    }
    disk.close().await.unwrap();
}
