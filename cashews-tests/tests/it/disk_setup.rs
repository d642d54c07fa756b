//! `disk://` by URL and the disk options: parsing and its errors, a `Cache` over disk, and
//! eviction past `size_limit`.

use std::time::Duration;

use cashews::backend::{Backend, DiskBackend, SetOptions};
use cashews::config::{
    BackendConfig, CacheConfig, DiskOptions, Eviction, InlineReads, OnCorruption,
};
use cashews::{Bytes, Cache, Error};

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cashews-disk-setup-")
        .tempdir()
        .unwrap()
}

fn disk_options(url: &str) -> DiskOptions {
    match CacheConfig::parse(url).unwrap().backend {
        BackendConfig::Disk(options) => options,
        other => panic!("{url} is not disk: {other:?}"),
    }
}

#[test]
fn url_options_and_defaults() {
    let defaults = disk_options("disk://");
    assert_eq!(defaults, DiskOptions::default());
    assert_eq!(defaults.shards, 8);
    assert_eq!(defaults.size_limit, 1 << 30);
    assert_eq!(defaults.timeout, Duration::from_secs(5));
    assert_eq!(defaults.eviction, Eviction::LeastRecentlyUsed);
    assert_eq!(defaults.on_corruption, OnCorruption::Error);
    assert_eq!(defaults.inline_reads, InlineReads::Off, "opt-in");
    assert!(defaults.directory.ends_with("cashews"));
    assert!(
        !CacheConfig::parse("disk://")
            .unwrap()
            .backend
            .default_suppress()
    );

    let opts = disk_options(
        "disk://?directory=/tmp/x%20y&shards=0&size_limit=64MiB&timeout=250ms\
         &eviction=none&on_corruption=rebuild&inline_reads=nowait",
    );
    assert_eq!(opts.directory, std::path::PathBuf::from("/tmp/x y"));
    assert_eq!((opts.shards, opts.shard_count()), (0, 1));
    assert_eq!(opts.size_limit, 64 << 20);
    assert_eq!(opts.timeout, Duration::from_millis(250));
    assert_eq!(opts.eviction, Eviction::None);
    assert_eq!(opts.on_corruption, OnCorruption::Rebuild);
    assert_eq!(opts.inline_reads, InlineReads::Nowait);
    assert_eq!(
        disk_options("disk://?inline_reads=OFF").inline_reads,
        InlineReads::Off
    );
    assert_eq!(
        disk_options("disk://?eviction_policy=least-recently-used").eviction,
        Eviction::LeastRecentlyUsed
    );
}

#[test]
fn bad_options_are_errors_naming_them() {
    let e = CacheConfig::parse("disk://?size=10").unwrap_err();
    assert!(matches!(e, Error::UnknownOption { .. }), "{e:?}");
    assert!(
        e.to_string().contains("`size`") && e.to_string().contains("size_limit"),
        "{e}"
    );
    for (url, option) in [
        ("disk://?shards=-1", "shards"),
        ("disk://?shards=1000", "shards"),
        ("disk://?size_limit=0", "size_limit"),
        ("disk://?size_limit=lots", "size_limit"),
        ("disk://?timeout=soon", "timeout"),
        ("disk://?eviction=lfu", "eviction"),
        ("disk://?on_corruption=ignore", "on_corruption"),
        ("disk://?inline_reads=maybe", "inline_reads"),
        ("disk://?inline_reads=true", "inline_reads"),
        ("disk://?inline_reads=false", "inline_reads"),
        ("disk://?directory=", "directory"),
    ] {
        let e = CacheConfig::parse(url).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidOption { option: o, .. } if o == option),
            "{url}: {e:?}"
        );
    }
    // The opt-in's error names both values and the fix.
    let e = CacheConfig::parse("disk://?inline_reads=true")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`off`") && e.contains("`nowait`") && e.contains("drop the option"),
        "{e}"
    );
    let e = CacheConfig::parse("disk://host/path").unwrap_err();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e:?}");
}

#[test]
fn disk_cannot_follow_a_manual_clock() {
    let e = Cache::new()
        .setup_with_clock("disk://?directory=/tmp/unused", cashews::Clock::manual())
        .unwrap_err();
    assert!(e.to_string().contains("Cache::setup"), "{e}");
}

#[tokio::test]
async fn a_cache_over_disk_by_url() -> cashews::Result<()> {
    let dir = temp_dir();
    let cache = Cache::new();
    cache.setup(&format!(
        "disk://?directory={}&shards=4&secret=s3cr3t",
        dir.path().display()
    ))?;
    cache.set("user:1", "ada", 60).await?;
    assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("ada"));
    assert_eq!(cache.incr_by("n", -3, 60).await?, -3);
    assert_eq!(cache.get::<i64>("n").await?, Some(-3));
    cache.delete("user:1").await?;
    assert_eq!(cache.get::<String>("user:1").await?, None);
    cache.close().await?;
    assert!(dir.path().join("shard-003.sqlite3").exists());
    Ok(())
}

/// Ten 1 KiB entries fit; after reading half of them (a second later, so the reads refresh
/// their access time), five more writes evict the five that were not read.
async fn lru_scenario(eviction: Eviction) -> Vec<bool> {
    let dir = temp_dir();
    let mut options = DiskOptions::new(dir.path()).with_shards(0);
    // key:N is 5 or 6 bytes: about 1,045 bytes per entry as counted by `get_size`.
    options.size_limit = 10_600;
    options.eviction = eviction;
    let disk = DiskBackend::new(options).unwrap();
    let value = Bytes::from(vec![7_u8; 1_000]);
    for i in 0..10 {
        disk.set(&format!("key:{i}"), value.clone(), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    let size = disk.get_size("key:0").await.unwrap().unwrap();
    assert!((1_000..1_100).contains(&size), "{size}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for i in 0..5 {
        assert!(disk.get(&format!("key:{i}")).await.unwrap().is_some());
    }
    for i in 10..15 {
        disk.set(&format!("key:{i}"), value.clone(), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    let mut present = Vec::new();
    for i in 0..15 {
        present.push(disk.exists(&format!("key:{i}")).await.unwrap());
    }
    disk.close().await.unwrap();
    present
}

#[tokio::test]
async fn size_limit_evicts_the_least_recently_used() {
    let present = lru_scenario(Eviction::LeastRecentlyUsed).await;
    let mut want = vec![true; 5];
    want.extend([false; 5]);
    want.extend([true; 5]);
    assert_eq!(present, want);
}

#[tokio::test]
async fn eviction_none_keeps_everything() {
    assert_eq!(lru_scenario(Eviction::None).await, vec![true; 15]);
}

/// After `close`, reads (on the caller's thread or on reader threads) and writes (on the
/// shard threads) fail with an error that says so: none hangs, none answers from a closed
/// file.
#[tokio::test]
async fn commands_after_close_fail_clearly() {
    for inline_reads in [InlineReads::Nowait, InlineReads::Off] {
        commands_after_close_fail_clearly_with(inline_reads).await;
    }
}

async fn commands_after_close_fail_clearly_with(inline_reads: InlineReads) {
    let dir = temp_dir();
    let mut options = DiskOptions::new(dir.path()).with_shards(2);
    options.inline_reads = inline_reads;
    let disk = DiskBackend::new(options).unwrap();
    disk.set("k", Bytes::from_static(b"v"), SetOptions::ttl(None))
        .await
        .unwrap();
    assert_eq!(disk.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    disk.close().await.unwrap();
    let within = Duration::from_secs(10);
    let read = tokio::time::timeout(within, disk.get("k"))
        .await
        .expect("get hangs");
    let exists = tokio::time::timeout(within, disk.exists("k"))
        .await
        .expect("exists hangs");
    let write = tokio::time::timeout(within, disk.incr("n", 1, None))
        .await
        .expect("incr hangs");
    for e in [read.unwrap_err(), exists.unwrap_err(), write.unwrap_err()] {
        assert!(e.to_string().contains("the disk backend is closed"), "{e}");
    }
}
