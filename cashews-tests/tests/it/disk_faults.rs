//! The disk backend under faults and bad input: corrupt and truncated shard files, folders
//! that are missing or cannot be written, a folder opened with another shard count. The rule
//! everywhere: a clear error or (when the options choose it) a rebuild, never a panic, never
//! a wrong value, and the other shards keep working.

use std::path::{Path, PathBuf};

use cashews::backend::{Backend, DiskBackend, SetOptions};
use cashews::config::{DiskOptions, InlineReads, OnCorruption};
use cashews::{Bytes, Cache, Error};

const KEYS: usize = 64;

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cashews-disk-faults-")
        .tempdir()
        .unwrap()
}

fn key(i: usize) -> String {
    format!("key:{i}")
}

fn value(i: usize) -> Bytes {
    Bytes::from(format!("value {i} ").repeat(50))
}

/// Writes `KEYS` keys over 8 shards, then closes every file.
async fn fill(dir: &Path) {
    let disk = DiskBackend::new(DiskOptions::new(dir)).unwrap();
    for i in 0..KEYS {
        disk.set(&key(i), value(i), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    disk.close().await.unwrap();
}

fn shard_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("shard-{index:03}.sqlite3"))
}

/// Overwrites a shard file with bytes that are not a database.
fn write_garbage(dir: &Path, index: usize) {
    std::fs::write(shard_file(dir, index), vec![0xA5_u8; 64 * 1024]).unwrap();
}

/// Reads every key: each is its own value or an error naming `broken` (never another value,
/// never a miss); returns how many failed.
async fn check_values(disk: &DiskBackend, broken: &Path) -> usize {
    let mut failed = 0;
    for i in 0..KEYS {
        match disk.get(&key(i)).await {
            Ok(got) => assert_eq!(got, Some(value(i)), "key {i} read a wrong value"),
            Err(e) => {
                let msg = e.to_string();
                assert!(matches!(e, Error::Backend { .. }), "{e:?}");
                assert!(
                    msg.contains(&broken.display().to_string()),
                    "the error names the file: {msg}"
                );
                failed += 1;
            }
        }
    }
    failed
}

/// A key of `disk` whose shard is (`true`) or is not (`false`) the broken one: probes
/// `probe:N` keys until one answers as asked.
async fn key_on(disk: &DiskBackend, broken: bool) -> String {
    for n in 0..10_000 {
        let probe = format!("probe:{n}");
        if disk.exists(&probe).await.is_err() == broken {
            return probe;
        }
    }
    panic!("no key whose shard is broken={broken} among 10,000")
}

#[tokio::test]
async fn corrupt_shard_fails_its_keys_clearly_and_the_others_work() {
    let dir = temp_dir();
    fill(dir.path()).await;
    write_garbage(dir.path(), 3);
    let disk = DiskBackend::new(DiskOptions::new(dir.path())).unwrap();
    let failed = check_values(&disk, &shard_file(dir.path(), 3)).await;
    assert!(
        failed > 0 && failed < KEYS,
        "only shard 3's keys fail: {failed} of {KEYS}"
    );
    // The message says what to do; ping checks every shard.
    let msg = disk.ping(b"").await.unwrap_err().to_string();
    assert!(
        msg.contains("shard-003.sqlite3") && msg.contains("on_corruption=rebuild"),
        "{msg}"
    );
    // Writes: the broken shard refuses them, the others take them.
    let healthy = key_on(&disk, false).await;
    assert!(
        disk.set(&healthy, "v".into(), SetOptions::ttl(None))
            .await
            .unwrap()
    );
    assert_eq!(disk.get(&healthy).await.unwrap(), Some(Bytes::from("v")));
    let broken = key_on(&disk, true).await;
    assert!(
        disk.set(&broken, "v".into(), SetOptions::ttl(None))
            .await
            .is_err()
    );
    assert!(disk.incr(&broken, 1, None).await.is_err());
    // Scans report the broken shard and still yield the keys of the others.
    use futures_util::StreamExt;
    let scanned: Vec<_> = disk.scan("key:*", 100).collect().await;
    let errors = scanned.iter().filter(|r| r.is_err()).count();
    let keys = scanned.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        (errors, keys),
        (1, KEYS - failed),
        "one error for the one broken shard"
    );
    assert_eq!(
        std::fs::read(shard_file(dir.path(), 3)).unwrap(),
        vec![0xA5_u8; 64 * 1024],
        "error mode leaves the damaged file as it was, for inspection"
    );
    disk.close().await.unwrap();
}

#[tokio::test]
async fn corrupt_shard_is_moved_aside_and_rebuilt_when_asked() {
    let dir = temp_dir();
    fill(dir.path()).await;
    write_garbage(dir.path(), 5);
    let mut options = DiskOptions::new(dir.path());
    options.on_corruption = OnCorruption::Rebuild;
    let disk = DiskBackend::new(options).unwrap();
    let mut lost = 0;
    for i in 0..KEYS {
        match disk.get(&key(i)).await.unwrap() {
            Some(got) => assert_eq!(got, value(i), "key {i} read a wrong value"),
            None => lost += 1,
        }
    }
    assert!(lost > 0 && lost < KEYS, "only shard 5 starts empty: {lost}");
    disk.ping(b"").await.unwrap();
    for i in 0..KEYS {
        assert!(
            disk.set(&key(i), value(i), SetOptions::ttl(None))
                .await
                .unwrap()
        );
    }
    assert_eq!(disk.keys_count().await.unwrap(), KEYS as u64);
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("shard-005.sqlite3.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept aside: {aside:?}");
    disk.close().await.unwrap();
}

#[tokio::test]
async fn truncated_shard_never_reads_a_wrong_value() {
    let dir = temp_dir();
    let options = || DiskOptions::new(dir.path()).with_shards(0);
    let disk = DiskBackend::new(options()).unwrap();
    for i in 0..KEYS {
        disk.set(&key(i), value(i), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    disk.close().await.unwrap();
    let file = shard_file(dir.path(), 0);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let disk = DiskBackend::new(options()).unwrap();
    let failed = check_values(&disk, &file).await;
    assert!(failed > 0, "half the file is gone: some keys must fail");
    disk.close().await.unwrap();
}

#[tokio::test]
async fn a_missing_directory_is_created() {
    let dir = temp_dir();
    let nested = dir.path().join("a").join("b");
    let disk = DiskBackend::new(DiskOptions::new(&nested).with_shards(2)).unwrap();
    assert!(
        disk.set("k", "v".into(), SetOptions::ttl(None))
            .await
            .unwrap()
    );
    assert_eq!(disk.get("k").await.unwrap(), Some(Bytes::from("v")));
    assert!(shard_file(&nested, 1).exists());
    disk.close().await.unwrap();
}

#[test]
fn a_directory_that_cannot_be_created_is_a_clear_error() {
    let dir = temp_dir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let below_a_file = file.join("cache");
    let e = DiskBackend::new(DiskOptions::new(&below_a_file)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}");
    assert!(
        msg.contains(&below_a_file.display().to_string()) && msg.contains("`directory`"),
        "{msg}"
    );
}

#[test]
fn a_read_only_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let read_only = dir.path().join("ro");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permission bits: use a folder of a file system nobody may write instead.
    let target = if std::fs::write(read_only.join("probe"), b"").is_ok() {
        eprintln!("running as root: checking /proc, a file system nobody may write, instead");
        PathBuf::from("/proc/cashews-disk-test")
    } else {
        read_only.clone()
    };
    let e = DiskBackend::new(DiskOptions::new(&target)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}");
    assert!(
        msg.contains(&target.display().to_string())
            && msg.contains("fix its permissions, or set `directory` to another folder"),
        "{msg}"
    );
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn another_shard_count_on_one_folder_is_refused() {
    let dir = temp_dir();
    fill(dir.path()).await;
    let disk = DiskBackend::new(DiskOptions::new(dir.path()).with_shards(4)).unwrap();
    let msg = disk.get("k").await.unwrap_err().to_string();
    assert!(
        msg.contains("8 shards") && msg.contains("opened here with 4") && msg.contains("`shards`"),
        "{msg}"
    );
    disk.close().await.unwrap();
}

/// Safe mode on disk: off by default (errors reach the caller), and `suppress=true` turns a
/// failing shard's errors into misses, as on every backend.
#[tokio::test]
async fn safe_mode_applies_to_disk() {
    let dir = temp_dir();
    fill(dir.path()).await;
    write_garbage(dir.path(), 3);
    let url = |extra: &str| format!("disk://?directory={}{extra}", dir.path().display());
    let strict = Cache::new();
    strict.setup(&url("")).unwrap();
    let safe = Cache::new();
    safe.setup(&url("&suppress=true")).unwrap();
    let probe = DiskBackend::new(DiskOptions::new(dir.path())).unwrap();
    let broken = key_on(&probe, true).await;
    probe.close().await.unwrap();
    assert!(matches!(
        strict.get::<String>(&broken).await,
        Err(Error::Backend { .. })
    ));
    assert_eq!(safe.get::<String>(&broken).await.unwrap(), None);
    assert!(!safe.set(&broken, "v", 60).await.unwrap());
    assert!(safe.ping().await.is_err(), "ping still reports");
    strict.close().await.unwrap();
    safe.close().await.unwrap();
}

/// A shard file deleted by hand (as the corruption error suggests) or moved aside by another
/// process is noticed by every open backend: none keeps serving the old file's values,
/// whether reads run on the caller's thread or on reader threads.
#[tokio::test]
async fn a_replaced_shard_file_is_reopened() {
    for inline_reads in [InlineReads::Nowait, InlineReads::Off] {
        a_replaced_shard_file_is_reopened_with(inline_reads).await;
    }
}

async fn a_replaced_shard_file_is_reopened_with(inline_reads: InlineReads) {
    let dir = temp_dir();
    let options = || {
        let mut options = DiskOptions::new(dir.path()).with_shards(0);
        options.inline_reads = inline_reads;
        options
    };
    let first = DiskBackend::new(options()).unwrap();
    assert!(
        first
            .set("k", "old".into(), SetOptions::ttl(None))
            .await
            .unwrap()
    );
    // Read first, so a reader holds a connection to the old file too.
    assert_eq!(first.get("k").await.unwrap(), Some(Bytes::from("old")));
    let file = shard_file(dir.path(), 0);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    // Another backend (its own connection, as another process would have) writes anew.
    let second = DiskBackend::new(options()).unwrap();
    assert!(
        second
            .set("k", "new".into(), SetOptions::ttl(None))
            .await
            .unwrap()
    );
    // A reader re-checks its file at most once a millisecond: it may answer from the old
    // file for that long, never an error, then answers from the new one.
    let mut reads = 0;
    loop {
        let got = first.get("k").await.unwrap();
        if got == Some(Bytes::from("new")) {
            break;
        }
        assert_eq!(
            got,
            Some(Bytes::from("old")),
            "only the old or the new value"
        );
        reads += 1;
        assert!(reads < 1_000, "the reader never reopened the replaced file");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(first.incr("n", 1, None).await.unwrap(), 1);
    assert_eq!(second.get("n").await.unwrap(), Some(Bytes::from("1")));
    first.close().await.unwrap();
    second.close().await.unwrap();
}
