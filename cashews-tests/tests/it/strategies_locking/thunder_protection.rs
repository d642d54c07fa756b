//! `thunder_protection`: one shared run per key in this process; errors, cancellation and
//! panics of the leader.

use std::sync::Arc;

use cashews::Cache;
use cashews::strategy::thunder_protection;
use tokio::sync::Notify;

use super::{Bodies, LineUp, in_time, yields};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunder_protection_runs_once_for_1000_concurrent_callers() {
    const CALLERS: usize = 1_000;
    let cache = Cache::new(); // only scopes the runs: no backend needed
    let bodies = Bodies::new();
    let line = LineUp::new(CALLERS);
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let (cache, bodies, line2) = (cache.clone(), Arc::clone(&bodies), Arc::clone(&line));
        tasks.push(tokio::spawn(line.join(async move {
            thunder_protection(&cache, "hot", async {
                let _inside = bodies.enter();
                line2.all().await;
                Ok::<_, String>(format!("run by {i}"))
            })
            .await
        })));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.push(in_time(task).await.unwrap().unwrap());
    }
    assert_eq!(bodies.runs(), 1);
    assert!(
        got.iter().all(|v| *v == got[0]),
        "every caller got the one result"
    );
    // The run is forgotten once it ends: the next call runs again.
    let again =
        thunder_protection(&cache, "hot", async { Ok::<_, String>("fresh".to_owned()) }).await;
    assert_eq!(again.as_deref(), Ok("fresh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunder_protection_shares_errors_and_keeps_keys_and_caches_apart() {
    let cache = Cache::new();
    let other = Cache::new();
    let leaders = LineUp::new(3);
    let everyone = LineUp::new(4);
    let run =
        |line: &Arc<LineUp>, cache: &Cache, key: &'static str, result: Result<u32, String>| {
            let (cache, everyone, all) =
                (cache.clone(), Arc::clone(&everyone), Arc::clone(&everyone));
            tokio::spawn(line.join(everyone.join(async move {
                thunder_protection(&cache, key, async {
                    all.all().await;
                    result
                })
                .await
            })))
        };
    // One run per (cache, key): three leaders.
    let a = run(&leaders, &cache, "k", Err("down".to_owned()));
    let b = run(&leaders, &cache, "other", Ok(2));
    let c = run(&leaders, &other, "k", Ok(3));
    leaders.all().await;
    // The fourth call joins `a`'s run and gets its error, not its own result.
    let follower = run(&LineUp::new(1), &cache, "k", Ok(99));
    assert_eq!(in_time(a).await.unwrap(), Err("down".to_owned()));
    assert_eq!(in_time(b).await.unwrap(), Ok(2));
    assert_eq!(in_time(c).await.unwrap(), Ok(3));
    assert_eq!(in_time(follower).await.unwrap(), Err("down".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_thunder_leader_hands_over_to_a_follower() {
    let cache = Cache::new();
    let leader_in = Arc::new(Notify::new());
    let leader = tokio::spawn({
        let (cache, leader_in) = (cache.clone(), leader_in.clone());
        async move {
            thunder_protection(&cache, "k", async {
                leader_in.notify_one();
                std::future::pending::<u32>().await
            })
            .await
        }
    });
    leader_in.notified().await;
    let bodies = Bodies::new();
    let line = LineUp::new(10);
    let mut followers = Vec::new();
    for _ in 0..10 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        followers.push(tokio::spawn(line.join(async move {
            thunder_protection(&cache, "k", async {
                let _inside = bodies.enter();
                yields(2).await;
                7_u32
            })
            .await
        })));
    }
    line.all().await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let mut got = Vec::new();
    for follower in followers {
        got.push(in_time(follower).await.unwrap());
    }
    assert_eq!(got, vec![7; 10]);
    // One follower took over; the others shared its run, unless they arrived after it ended.
    assert!(bodies.runs() >= 1);
    assert_eq!(bodies.max_inside(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_thunder_leader_releases_its_followers_to_run_again() {
    let cache = Cache::new();
    let line = LineUp::new(5);
    let leader_in = Arc::new(Notify::new());
    let leader = tokio::spawn({
        let (cache, leader_in, line) = (cache.clone(), leader_in.clone(), Arc::clone(&line));
        async move {
            thunder_protection(&cache, "boom", async {
                leader_in.notify_one();
                line.all().await;
                boom()
            })
            .await
        }
    });
    leader_in.notified().await;
    let bodies = Bodies::new();
    let mut followers = Vec::new();
    for _ in 0..5 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        followers.push(tokio::spawn(line.join(async move {
            thunder_protection(&cache, "boom", async {
                let _inside = bodies.enter();
                yields(2).await;
                1_u32
            })
            .await
        })));
    }
    assert!(leader.await.unwrap_err().is_panic());
    for follower in followers {
        assert_eq!(in_time(follower).await.unwrap(), 1);
    }
    assert!(bodies.runs() >= 1);
}

fn boom() -> u32 {
    panic!("the origin failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thunder_call_inside_its_own_run_runs_at_once() {
    let cache = Cache::new();
    let outer = in_time(thunder_protection(&cache, "self", async {
        thunder_protection(&cache, "self", async { 1_u32 }).await + 1
    }))
    .await;
    assert_eq!(outer, 2);
}
