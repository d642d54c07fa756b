//! Lifecycle: a setup that replaces a route, and `Cache::close`, release the old backend's
//! connections and threads (counted on the server and in `/proc`), also while the cache lives
//! on and after the old router was kept for borrowing reads.

use std::time::Duration;

use cashews::Cache;

/// Polls `check` until it holds, for at most 20 s: the release is asynchronous (the server
/// sees a socket close when the client's connection task ends). A readiness wait, not a
/// timing assertion: the test fails only if the release never happens.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> (bool, String)) {
    let mut last = String::new();
    for _ in 0..400 {
        let (done, state) = check().await;
        if done {
            return;
        }
        last = state;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: never happened; last state: {last}");
}

/// The threads of this process whose name starts with `prefix` (nextest runs each test in
/// its own process, so only this test's threads are counted).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| t.ok())
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .filter(|name| name.starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(feature = "disk")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_disk_backend_joins_its_threads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    assert_eq!(threads_named("cashews-disk"), 0);
    cache
        .setup(&format!(
            "disk://?directory={}&shards=2",
            dir.path().display()
        ))
        .unwrap();
    cache.set("k", "v", "1h").await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    assert!(
        threads_named("cashews-disk") >= 2,
        "the disk backend runs threads"
    );
    // Replaced: the old route is kept for borrowing reads, its threads are not.
    cache.setup("mem://").unwrap();
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    eventually("the replaced disk backend's threads end", async || {
        let n = threads_named("cashews-disk");
        (n == 0, format!("{n} disk threads"))
    })
    .await;
    // The new route works on.
    cache.set("k", "w", "1h").await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("w")
    );
}

#[cfg(feature = "redis")]
mod redis_connections {
    use super::*;
    use crate::support::SpawnedRedis;

    /// A server of this test alone (connections are counted on it), or `None` (skipped
    /// outside CI) when none can be started.
    fn server(case: &str) -> Option<SpawnedRedis> {
        match SpawnedRedis::start_own(&[]) {
            Ok(redis) => Some(redis),
            Err(e) => cashews_testkit::skip_unless_ci(case, &e),
        }
    }

    /// One connection of the test that counts the server's clients, itself included: kept
    /// for the whole test, so that a probe's own closing socket is never counted.
    struct Probe(redis::aio::MultiplexedConnection);

    impl Probe {
        async fn new(port: u16) -> Self {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
            Self(client.get_multiplexed_async_connection().await.unwrap())
        }

        async fn clients(&mut self) -> usize {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query_async(&mut self.0)
                .await
                .unwrap();
            info.lines()
                .find_map(|line| line.strip_prefix("connected_clients:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap()
        }
    }

    /// Uses a cache on `url` the way a service does: reads, writes, a lock held while another
    /// caller waits for it (which opens the lock-release subscription).
    async fn use_it(cache: &Cache) {
        cache.set("k", "v", "1h").await.unwrap();
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("v")
        );
        let guard = cache.lock("job", "10s").await.unwrap();
        let other = cache.clone();
        let waiter = tokio::spawn(async move { other.lock("job", "10s").await.map(drop) });
        tokio::task::yield_now().await;
        drop(guard);
        waiter.await.unwrap().unwrap();
    }

    async fn replaced_route_releases(case: &str, options: &str) {
        let Some(server) = server(case) else { return };
        let port = server.port;
        let mut probe = Probe::new(port).await;
        let cache = Cache::new();
        cache
            .setup(&format!("redis://127.0.0.1:{port}/0{options}"))
            .unwrap();
        use_it(&cache).await;
        let connected = probe.clients().await;
        assert!(
            connected > 1,
            "the backend is connected ({connected} clients)"
        );
        cache.setup("mem://").unwrap();
        eventually("the replaced backend's connections close", async || {
            let n = probe.clients().await;
            (n == 1, format!("{n} clients (1 is this probe)"))
        })
        .await;
        // The new route answers, and no connection to the old server comes back.
        use_it(&cache).await;
        assert_eq!(probe.clients().await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replaced_redis_backend_closes_its_connections() {
        replaced_route_releases("a_replaced_redis_backend_closes_its_connections", "").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replaced_client_side_backend_closes_its_connections() {
        replaced_route_releases(
            "a_replaced_client_side_backend_closes_its_connections",
            "?client_side=true",
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_releases_every_connection() {
        let Some(server) = server("close_releases_every_connection") else {
            return;
        };
        let port = server.port;
        let mut probe = Probe::new(port).await;
        let cache = Cache::new();
        cache.setup(&format!("redis://127.0.0.1:{port}/0")).unwrap();
        cache
            .setup_prefix(
                "side:",
                &format!("redis://127.0.0.1:{port}/1?client_side=true"),
            )
            .unwrap();
        use_it(&cache).await;
        cache.set("side:k", "v", "1h").await.unwrap();
        assert!(probe.clients().await > 1);
        cache.close().await.unwrap();
        eventually("close releases every connection", async || {
            let n = probe.clients().await;
            (n == 1, format!("{n} clients (1 is this probe)"))
        })
        .await;
    }
}
