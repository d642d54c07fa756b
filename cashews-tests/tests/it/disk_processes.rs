//! The disk backend shared by several OS processes: each test re-runs this test binary as
//! children (`current_exe() --exact disk_processes::child`) with `CASHEWS_DISK_CHILD` naming
//! what the child does and `CASHEWS_DISK_DIR` the shared folder. Without the variable, the
//! `child` test returns at once, so a normal run of the suite passes it trivially.
//!
//! Waits are bounded: a child still running after [`CHILD_DEADLINE`] is killed and the test
//! fails, naming it.
//!
//! Transactions across processes: see [`transactions`].

mod transactions;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cashews::Bytes;
use cashews::backend::{Backend, DiskBackend, SetOptions};
use cashews::config::DiskOptions;

const ROLE: &str = "CASHEWS_DISK_CHILD";
const DIR: &str = "CASHEWS_DISK_DIR";
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// Increments per child in the counter test.
const INCRS: i64 = 1_000;
/// Lock rounds per child in the lock test.
const LOCK_ROUNDS: i64 = 100;
/// Calls per child, and the window's limit, in the sliding-window test.
const WINDOW_CALLS: u64 = 300;
const WINDOW_LIMIT: u64 = 500;

fn options(dir: &Path) -> DiskOptions {
    DiskOptions::new(dir).with_shards(8)
}

/// What a child process does; run by the parent tests below through [`spawn`].
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = std::env::var(DIR).expect("CASHEWS_DISK_DIR names the shared folder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if role.starts_with("tx_") {
        let name = std::env::var("CASHEWS_DISK_VALUE").unwrap();
        runtime.block_on(transactions::child_role(&role, Path::new(&dir), &name));
        return;
    }
    runtime.block_on(async move {
        let disk = DiskBackend::new(options(Path::new(&dir))).unwrap();
        match role.as_str() {
            "incr" => {
                for _ in 0..INCRS {
                    disk.incr("hits", 1, None).await.unwrap();
                }
            }
            "lock" => lock_rounds(&disk, Path::new(&dir)).await,
            "window" => {
                // As `slice_rate_limit` calls it: `max = limit + 1`, a count above the limit
                // is a refusal. Each admitted call is tallied in a counter.
                for _ in 0..WINDOW_CALLS {
                    let count = disk
                        .slice_incr_now("window", Duration::from_secs(600), WINDOW_LIMIT + 1, None)
                        .await
                        .unwrap();
                    if count <= WINDOW_LIMIT {
                        disk.incr("admitted", 1, None).await.unwrap();
                    }
                }
            }
            "write" => {
                let value = std::env::var("CASHEWS_DISK_VALUE").unwrap();
                assert!(
                    disk.set("shared", Bytes::from(value), SetOptions::ttl(None))
                        .await
                        .unwrap()
                );
            }
            "read" => {
                let want = std::env::var("CASHEWS_DISK_VALUE").unwrap();
                let got = disk.get("shared").await.unwrap();
                assert_eq!(got.as_deref(), Some(want.as_bytes()));
            }
            other => panic!("unknown child role {other}"),
        }
        disk.close().await.unwrap();
    });
}

/// Takes the lock `LOCK_ROUNDS` times. While holding it, creates a marker file that must not
/// exist (`create_new`: atomic in the file system, independent of the backend under test),
/// then removes it and unlocks with its own token.
async fn lock_rounds(disk: &DiskBackend, dir: &Path) {
    let marker = dir.join("holder");
    let me = std::process::id();
    for round in 0..LOCK_ROUNDS {
        let token = format!("{me}-{round}");
        let started = Instant::now();
        while !disk
            .set_lock("lock", &token, Duration::from_secs(30))
            .await
            .unwrap()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "lock never became free"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker);
        if let Err(e) = file {
            std::fs::write(dir.join("violation"), format!("{me} round {round}: {e}")).unwrap();
            panic!("process {me} took the lock while another held it ({e})");
        }
        std::fs::remove_file(&marker).unwrap();
        assert!(
            disk.unlock("lock", &token).await.unwrap(),
            "the holder releases its own lock"
        );
        disk.incr("rounds", 1, None).await.unwrap();
    }
}

/// A child process that is killed if the test ends before it (even on a failed assertion).
struct ChildGuard {
    name: String,
    child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(role: &str, dir: &Path, value: &str) -> ChildGuard {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "disk_processes::child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DIR, dir)
        .env("CASHEWS_DISK_VALUE", value)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ChildGuard {
        name: format!("{role} child {}", child.id()),
        child,
    }
}

/// Waits for every child (bounded), then checks each ran the child test and passed.
fn wait_all(children: Vec<ChildGuard>) {
    let deadline = Instant::now() + CHILD_DEADLINE;
    for mut guard in children {
        loop {
            if guard.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {CHILD_DEADLINE:?}: killed",
                guard.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = std::mem::replace(
            &mut guard.child,
            // A finished placeholder so the guard's drop has nothing to kill.
            Command::new("true").spawn().unwrap(),
        )
        .wait_with_output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{} failed ({}):\n{stdout}\n{stderr}",
            guard.name,
            output.status
        );
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cashews-disk-procs-")
        .tempdir()
        .unwrap()
}

#[tokio::test]
async fn four_processes_incr_one_key_to_exactly_4000() {
    let dir = temp_dir();
    let children = (0..4).map(|_| spawn("incr", dir.path(), "")).collect();
    wait_all(children);
    let disk = DiskBackend::new(options(dir.path())).unwrap();
    assert_eq!(
        disk.get("hits").await.unwrap(),
        Some(Bytes::from((4 * INCRS).to_string()))
    );
    disk.close().await.unwrap();
}

/// 4 processes × 300 calls on one window of 500: exactly 500 admitted, never more, as the
/// backend stamps each event inside the shard's write transaction.
#[tokio::test]
async fn four_processes_share_one_sliding_window_exactly() {
    let dir = temp_dir();
    let children = (0..4).map(|_| spawn("window", dir.path(), "")).collect();
    wait_all(children);
    let disk = DiskBackend::new(options(dir.path())).unwrap();
    assert_eq!(
        disk.get("admitted").await.unwrap(),
        Some(Bytes::from(WINDOW_LIMIT.to_string()))
    );
    disk.close().await.unwrap();
}

#[tokio::test]
async fn two_processes_never_hold_one_lock_together() {
    let dir = temp_dir();
    let children = (0..2).map(|_| spawn("lock", dir.path(), "")).collect();
    wait_all(children);
    assert!(
        !dir.path().join("violation").exists(),
        "{}",
        std::fs::read_to_string(dir.path().join("violation")).unwrap_or_default()
    );
    let disk = DiskBackend::new(options(dir.path())).unwrap();
    assert_eq!(
        disk.get("rounds").await.unwrap(),
        Some(Bytes::from((2 * LOCK_ROUNDS).to_string())),
        "every round of both processes took and released the lock"
    );
    assert!(!disk.exists("lock").await.unwrap(), "the lock ends free");
    disk.close().await.unwrap();
}

#[tokio::test]
async fn a_value_written_by_one_process_is_read_by_another() {
    let dir = temp_dir();
    let value = format!("written by a child of {}", std::process::id());
    wait_all(vec![spawn("write", dir.path(), &value)]);
    wait_all(vec![spawn("read", dir.path(), &value)]);
    let disk = DiskBackend::new(options(dir.path())).unwrap();
    assert_eq!(
        disk.get("shared").await.unwrap(),
        Some(Bytes::from(value)),
        "and by this process too"
    );
    disk.close().await.unwrap();
}
