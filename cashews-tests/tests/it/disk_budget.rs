//! `disk://?size_limit=…`: an entry that its shard could never keep is refused with a clear
//! error, and the other keys stay (issue 13, item 7). Before, such a value was accepted and
//! evicted every other key of its shard.

use std::path::Path;

use cashews::backend::{Backend, DiskBackend, SetOptions};
use cashews::config::DiskOptions;
use cashews::{Bytes, Error};

const LIMIT: u64 = 1 << 20;
const KEYS: usize = 20;

fn key(i: usize) -> String {
    format!("key:{i}")
}

/// 10 KB that differ per key.
fn value(i: usize) -> Bytes {
    Bytes::from(format!("{i:>10}").repeat(1000))
}

/// A store of 2 shards under `size_limit=1MiB` (512 KiB a shard), holding `KEYS` keys.
async fn filled(dir: &Path) -> DiskBackend {
    let mut options = DiskOptions::new(dir).with_shards(2);
    options.size_limit = LIMIT;
    let disk = DiskBackend::new(options).unwrap();
    for i in 0..KEYS {
        disk.set(&key(i), value(i), SetOptions::ttl(None))
            .await
            .unwrap();
    }
    disk
}

async fn assert_all_kept(disk: &DiskBackend) {
    for i in 0..KEYS {
        let got = disk.get(&key(i)).await.unwrap();
        assert_eq!(got, Some(value(i)), "key {i} was kept");
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

fn assert_over_budget(err: &Error, key: &str) {
    let Error::ValueOverBudget {
        backend,
        key: named,
        option,
        limit,
        budget,
        ..
    } = err
    else {
        panic!("expected ValueOverBudget, got {err:?}");
    };
    assert_eq!(
        (*backend, named.as_str(), *option),
        ("disk", key, "size_limit")
    );
    assert_eq!(
        (*limit, *budget),
        (LIMIT / 2, LIMIT),
        "a shard's share of the limit"
    );
    let message = err.to_string();
    assert!(
        message.contains("larger than the cache's byte budget")
            && message.contains("raise `size_limit`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_value_larger_than_size_limit_is_refused_and_the_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let disk = filled(dir.path()).await;
    let before = folder_bytes(dir.path());

    // 2 MB: over the whole limit. 600 KB: under it, over a shard's share.
    for size in [2_000_000, 600_000] {
        let huge = Bytes::from(vec![b'h'; size]);
        let err = disk
            .set("huge", huge.clone(), SetOptions::ttl(None))
            .await
            .unwrap_err();
        assert_over_budget(&err, "huge");
        let err = disk
            .set_many(&[("key:0", value(1)), ("huge", huge)], None)
            .await
            .unwrap_err();
        assert_over_budget(&err, "huge");
    }
    assert_eq!(disk.get("huge").await.unwrap(), None);
    assert_all_kept(&disk).await;
    let after = folder_bytes(dir.path());
    assert!(
        after <= before && after <= 2 * LIMIT,
        "nothing was written: {before} bytes before, {after} after"
    );
    disk.close().await.unwrap();
}

async fn live_keys(disk: &DiskBackend) -> Vec<usize> {
    let mut live = Vec::new();
    for i in 0..KEYS {
        if disk.exists(&key(i)).await.unwrap() {
            live.push(i);
        }
    }
    live
}

/// A set that grows past a shard's share is refused at the `set_add` that would take it
/// there (the command rolls back): the set keeps its members and no key is evicted for it.
/// (Growing up to the share evicts the shard's least recently used keys, as any write does.)
#[tokio::test]
async fn a_set_grown_past_a_shards_share_is_refused_and_the_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let disk = filled(dir.path()).await;
    let mut refused = None;
    for i in 0..1000 {
        let member = format!("{i:0>1000}");
        match disk.set_add("set", &[member.as_str()], None).await {
            Ok(added) => assert_eq!(added, 1),
            Err(err) => {
                refused = Some((i, err));
                break;
            }
        }
    }
    let (at, err) = refused.expect("1 MB of members cannot fit 512 KiB");
    assert_over_budget(&err, "set");
    assert!(
        at > 400,
        "the set grew up to the shard's share: refused at {at}"
    );
    let live = live_keys(&disk).await;
    assert!(!live.is_empty(), "the other shard's keys stay");
    let member = format!("{at:0>1000}");
    let err = disk
        .set_add("set", &[member.as_str()], None)
        .await
        .unwrap_err();
    assert_over_budget(&err, "set");
    assert_eq!(
        live_keys(&disk).await,
        live,
        "a refused write evicts nothing"
    );
    for i in &live {
        assert_eq!(disk.get(&key(*i)).await.unwrap(), Some(value(*i)));
    }
    let last = format!("{:0>1000}", at - 1);
    assert_eq!(
        disk.set_remove("set", &[last.as_str(), member.as_str()])
            .await
            .unwrap(),
        1
    );
    disk.close().await.unwrap();
}
