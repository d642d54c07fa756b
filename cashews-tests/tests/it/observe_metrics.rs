//! The `metrics` feature, scraped as Prometheus scrapes it: a real `metrics-exporter-prometheus`
//! recorder, its text served over HTTP on a loopback port, fetched with a plain GET.
//!
//! The recorder is global to the process, so every assertion is in the one test below
//! (nextest runs each test in its own process). Redis parts use a fresh key prefix; with no
//! Redis they are skipped outside CI and fail in CI.

use std::collections::BTreeMap;
use std::time::Duration;

use cashews::observe::{self, Metrics};
use cashews::strategy::{
    self, BloomOptions, CacheOptions, CircuitBreakerOptions, FailoverOptions, IteratorOptions,
    LockedOptions, Plain, RateLimitOptions, SliceRateLimitOptions, SoftOptions,
};
use cashews::{Cache, Error};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `render()` of the recorder at `GET /metrics` on a loopback port, one response per
/// connection; returns the port.
async fn serve(handle: metrics_exporter_prometheus::PrometheusHandle) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0_u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = handle.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        }
    });
    port
}

/// One scrape: `GET /metrics` over TCP, the body of a `200`.
async fn scrape(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The samples of a scrape: (name, labels) → value.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap();
            map.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
        out.push((name.to_owned(), map, value));
    }
    out
}

/// The sum of the samples of `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text)
        .into_iter()
        .filter(|(n, map, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| map.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// `other`, and the strategy's miss of `report:1`, read once: no flight ended between that
/// read and the coalescer's turn, so its leader does not read again.
const MISSES_UNTAGGED: f64 = 2.0;

#[tokio::test]
async fn a_prometheus_scrape_counts_commands_strategies_refusals_and_health() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only global recorder of this test process");
    let port = serve(handle).await;

    // Commands on mem://, with the tag label.
    let cache = Cache::new();
    cache.register_tag("users", "user:{id}").unwrap();
    cache
        .setup_with("mem://", [Metrics::new().with_tag(&cache).stage()])
        .unwrap();
    cache.set("user:1", "ada", "1h").await.unwrap();
    assert!(cache.get::<String>("user:1").await.unwrap().is_some());
    assert!(cache.get::<String>("user:1").await.unwrap().is_some());
    assert!(cache.get::<String>("user:2").await.unwrap().is_none());
    assert!(cache.get::<String>("other").await.unwrap().is_none());

    // A strategy: one miss, then two hits (one through the synchronous lookup).
    let ttl = cashews::Ttl::parse("1h").unwrap();
    let options = CacheOptions::new().template("report:{id}");
    for _ in 0..2 {
        let got = strategy::cache(
            &cache,
            "report:1",
            ttl,
            &options,
            Plain::<u32>::new(),
            async { 7 },
        )
        .await;
        assert_eq!(got, 7);
    }
    let now = cashews::__private::cache_lookup_now(
        &options,
        &cache,
        "report:1",
        ttl,
        &Plain::<u32>::new(),
        &mut None,
    );
    assert_eq!(now, Some(Some(7)));

    // early and hit (on a route of their own): a miss, then a hit each.
    cache
        .setup_prefix_with("s:", "mem://", [observe::metrics()])
        .unwrap();
    let early = strategy::EarlyOptions::new().template("early:{id}");
    let hits = strategy::HitOptions::new(5).template("hits:{id}");
    for _ in 0..2 {
        assert_eq!(
            strategy::early(
                &cache,
                "s:early:1",
                ttl,
                &early,
                Plain::<u32>::new(),
                async { 1 }
            )
            .await,
            1
        );
        assert_eq!(
            strategy::hit(&cache, "s:hits:1", ttl, &hits, Plain::<u32>::new(), async {
                2
            })
            .await,
            2
        );
    }

    // Refusals: a rate limit of 1, a circuit breaker opened by one failure in two calls.
    let limit = RateLimitOptions::new(1, Duration::from_secs(60));
    let first: cashews::Result<u32> =
        strategy::rate_limited(&cache, "rl:1", &limit, async { Ok(1) }).await;
    let second: cashews::Result<u32> =
        strategy::rate_limited(&cache, "rl:1", &limit, async { Ok(2) }).await;
    assert_eq!(first.unwrap(), 1);
    assert!(matches!(second, Err(Error::RateLimited { .. })));
    let breaker = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30));
    let call = |ok: bool| {
        strategy::circuit_breaker(&cache, "cb:1", &breaker, |_: &Error| true, async move {
            if ok {
                Ok(1)
            } else {
                Err(Error::Locked {
                    key: "upstream".into(),
                })
            }
        })
    };
    assert!(call(true).await.is_ok());
    assert!(call(false).await.is_err());
    assert!(matches!(call(true).await, Err(Error::CircuitOpen { .. })));

    others(&cache, ttl).await;

    // Redis: a route under a fresh prefix, and a server that is not there (health).
    let redis = redis_part(&cache).await;

    let text = scrape(port).await;
    let commands = "cashews_commands_total";
    let get_mem = [("command", "get"), ("backend", "mem"), ("prefix", "")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut labels = get_mem.to_vec();
        labels.extend_from_slice(extra);
        value(&text, commands, &labels)
    };
    assert_eq!(
        with(&[("result", "hit"), ("tier", "local"), ("tag", "users")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        with(&[("result", "miss"), ("tier", "local"), ("tag", "users")]),
        1.0
    );
    // `other` and the strategy's reads of `report:1` map to no tag.
    assert_eq!(
        with(&[("result", "miss"), ("tier", "local"), ("tag", "")]),
        MISSES_UNTAGGED
    );
    assert_eq!(
        with(&[("result", "hit"), ("tier", "local"), ("tag", "")]),
        2.0
    );
    assert_eq!(
        value(
            &text,
            commands,
            &[
                ("command", "set"),
                ("backend", "mem"),
                ("result", "ok"),
                ("tag", "users")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "cashews_command_duration_seconds_count",
            &[("command", "get"), ("backend", "mem"), ("tag", "users")]
        ),
        3.0
    );

    let calls = "cashews_strategy_calls_total";
    let report = [("strategy", "cache"), ("template", "report:{id}")];
    let of = |strategy: &[(&str, &str)], result: &str| {
        let mut labels = strategy.to_vec();
        labels.push(("result", result));
        value(&text, calls, &labels)
    };
    assert_eq!(of(&report, "miss"), 1.0);
    assert_eq!(of(&report, "hit"), 2.0);
    // Timed: the two calls that ran as futures (the synchronous hit is counted, not timed).
    assert_eq!(
        value(&text, "cashews_strategy_duration_seconds_count", &report),
        2.0
    );
    for (strategy, template) in [("early", "early:{id}"), ("hit", "hits:{id}")] {
        let labels = [("strategy", strategy), ("template", template)];
        assert_eq!(
            (of(&labels, "miss"), of(&labels, "hit")),
            (1.0, 1.0),
            "{strategy}"
        );
        assert_eq!(
            value(&text, "cashews_strategy_duration_seconds_count", &labels),
            2.0
        );
    }
    assert_eq!(of(&[("strategy", "rate_limit")], "ok"), 1.0);
    assert_eq!(of(&[("strategy", "rate_limit")], "refused"), 1.0);
    assert_eq!(of(&[("strategy", "circuit_breaker")], "ok"), 2.0);
    assert_eq!(of(&[("strategy", "circuit_breaker")], "refused"), 1.0);
    assert_eq!(
        value(
            &text,
            "cashews_refusals_total",
            &[("strategy", "rate_limit")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "cashews_refusals_total",
            &[("strategy", "circuit_breaker")]
        ),
        1.0
    );

    check_others(&text);

    if let Some((prefix, dead_port)) = redis {
        let remote = |result: &str| {
            value(
                &text,
                commands,
                &[
                    ("command", "get"),
                    ("backend", "redis"),
                    ("prefix", &prefix),
                    ("result", result),
                    ("tier", "remote"),
                ],
            )
        };
        assert_eq!(remote("hit"), 1.0, "{text}");
        assert_eq!(remote("miss"), 1.0);
        // Up from its creation on, with no transition.
        let url = crate::support::redis_url();
        let port = url.rsplit(':').next().unwrap_or_default();
        let port = port.split('/').next().unwrap_or_default();
        let up: Vec<_> = samples(&text)
            .into_iter()
            .filter(|(n, map, _)| {
                n == "cashews_backend_up"
                    && map
                        .get("address")
                        .is_some_and(|a| a.split([':', '/']).any(|p| p == port))
            })
            .map(|(_, _, v)| v)
            .collect();
        assert_eq!(up, [1.0], "{text}");
        let health: Vec<_> = samples(&text)
            .into_iter()
            .filter(|(n, map, _)| {
                n.starts_with("cashews_backend_")
                    && map
                        .get("address")
                        .is_some_and(|a| a.contains(&dead_port.to_string()))
            })
            .map(|(n, map, v)| (n, map.get("to").cloned(), v))
            .collect();
        let mut health = health;
        health.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let transitions = "cashews_backend_health_transitions_total".to_owned();
        assert_eq!(
            health,
            [
                (transitions.clone(), Some("down".to_owned()), 1.0),
                (transitions, Some("up".to_owned()), 1.0),
                ("cashews_backend_up".to_owned(), None, 1.0),
            ],
            "{text}"
        );
    }
}

/// Commands on a Redis route under a fresh prefix (one hit, one miss), and a Redis backend on
/// a port nobody listens on, marked down after one failure, then up again once a
/// `redis-server` started on that port answers its probe. `None` when Redis is missing
/// (outside CI).
async fn redis_part(cache: &Cache) -> Option<(String, u16)> {
    let prefix = crate::support::unique_prefix("obs");
    let url = crate::support::redis_url();
    cache
        .setup_prefix_with(
            &prefix,
            &format!("{url}?suppress=false"),
            [observe::metrics()],
        )
        .unwrap();
    let key = format!("{prefix}a");
    if let Err(e) = cache.set(&key, "x", "1m").await {
        return cashews_testkit::skip_unless_ci(
            "metrics on redis",
            &format!("no Redis at {url}: {e}"),
        );
    }
    assert!(cache.get::<String>(&key).await.unwrap().is_some());
    assert!(
        cache
            .get::<String>(&format!("{prefix}b"))
            .await
            .unwrap()
            .is_none()
    );
    cache.delete(&key).await.unwrap();

    // Down, then up again: a server started on the port, found by the background probe.
    let dead_port = crate::support::SpawnedRedis::free_port();
    let dead = Cache::new();
    dead.setup(&format!(
        "redis://127.0.0.1:{dead_port}/0?down_after=1&suppress=false&probe_interval=10ms&probe_max_interval=50ms"
    ))
    .unwrap();
    assert!(dead.get::<String>("k").await.is_err());
    assert!(dead.health("k").unwrap().unwrap().down);
    let args = ["--port".to_owned(), dead_port.to_string()];
    let _server = match crate::support::SpawnedRedis::start(dead_port, args) {
        Ok(server) => server,
        Err(e) => return cashews_testkit::skip_unless_ci("metrics on redis", &e),
    };
    // Bounded polling of the probe's outcome (up to 10 s).
    for _ in 0..1000 {
        if !dead.health("k").unwrap().unwrap().down {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !dead.health("k").unwrap().unwrap().down,
        "the probe found the server"
    );
    Some((prefix, dead_port))
}

/// The strategies that report besides `cache`, `early`, `hit`, `rate_limit` and
/// `circuit_breaker`: a few calls each, on a mem:// route of their own.
async fn others(cache: &Cache, ttl: cashews::Ttl) {
    cache
        .setup_prefix_with("o:", "mem://", [observe::metrics()])
        .unwrap();
    // soft: a miss, then a fresh hit.
    let soft = SoftOptions::new().template("soft:{id}");
    for _ in 0..2 {
        let got = strategy::soft(cache, "o:soft:1", ttl, &soft, Plain::<u32>::new(), async {
            3
        });
        assert_eq!(got.await, 3);
    }
    // failover: the function answers (`ok`), then fails and the fallback answers (`hit`);
    // on a key with no fallback its error is returned (`miss`).
    let failover = FailoverOptions::new().template("failover:{id}");
    let down = || async { Err::<u32, String>("down".to_owned()) };
    let first = strategy::failover(
        cache,
        "o:fo:1",
        ttl,
        &failover,
        strategy::any_error,
        async { Ok::<u32, String>(4) },
    );
    assert_eq!(first.await, Ok(4));
    let fallback = strategy::failover(cache, "o:fo:1", ttl, &failover, strategy::any_error, down());
    assert_eq!(fallback.await, Ok(4));
    let none = strategy::failover(cache, "o:fo:2", ttl, &failover, strategy::any_error, down());
    assert_eq!(none.await, Err("down".to_owned()));
    // iterator: a pass stored (`miss`), then replayed (`hit`).
    let items = IteratorOptions::new().template("items:{id}");
    for _ in 0..2 {
        let stream = futures_util::stream::iter([1_u32, 2]);
        let got: Vec<u32> =
            strategy::iterator(cache, "o:items:1", ttl, &items, Plain::<u32>::new(), stream)
                .collect()
                .await;
        assert_eq!(got, [1, 2]);
    }
    // early_detached: a miss, then a fresh hit.
    let early = strategy::EarlyOptions::new().template("bg:{id}");
    for _ in 0..2 {
        let got =
            strategy::early_detached(cache, "o:bg:1", ttl, &early, Plain::<u32>::new(), async {
                5
            });
        assert_eq!(got.await, 5);
    }
    // thunder_protection and invalidate let their call through.
    assert_eq!(
        strategy::thunder_protection(cache, "o:th:1", async { 6_u32 }).await,
        6
    );
    strategy::invalidate(cache, "o:none:*", Plain::<()>::new(), async {}).await;
    // bloom: an empty filter answers `false` without the function (`hit`).
    let bloom = BloomOptions::new(100);
    assert!(!strategy::bloom(cache, "o:bloom", "ada", &bloom, async { true }).await);
    // slice_rate_limited with a limit of 1: `ok`, then `refused`.
    let slice = SliceRateLimitOptions::new(1, Duration::from_secs(60));
    let first: cashews::Result<u32> =
        strategy::slice_rate_limited(cache, "o:srl:1", &slice, async { Ok(1) }).await;
    let second: cashews::Result<u32> =
        strategy::slice_rate_limited(cache, "o:srl:1", &slice, async { Ok(2) }).await;
    assert_eq!(first.unwrap(), 1);
    assert!(matches!(second, Err(Error::RateLimited { .. })));
    // locked: `ok`, then `refused` while someone holds the lock and the call does not wait.
    let lock_ttl = cashews::Ttl::parse("10s").unwrap();
    let free: cashews::Result<u32> =
        strategy::locked(cache, "o:lock:1", lock_ttl, &LockedOptions::new(), async {
            Ok(7)
        })
        .await;
    assert_eq!(free.unwrap(), 7);
    let _held = cache.lock("o:lock:1", "10s").await.unwrap();
    let busy: cashews::Result<u32> = strategy::locked(
        cache,
        "o:lock:1",
        lock_ttl,
        &LockedOptions::new().no_wait(),
        async { Ok(8) },
    )
    .await;
    assert!(matches!(busy, Err(Error::Locked { .. })));
}

/// The exact counts of [`others`] in `text`.
fn check_others(text: &str) {
    let calls = |strategy: &str, template: &str, result: &str| {
        value(
            text,
            "cashews_strategy_calls_total",
            &[
                ("strategy", strategy),
                ("template", template),
                ("result", result),
            ],
        )
    };
    let expected = [
        ("soft", "soft:{id}", "miss", 1.0),
        ("soft", "soft:{id}", "hit", 1.0),
        ("failover", "failover:{id}", "ok", 1.0),
        ("failover", "failover:{id}", "hit", 1.0),
        ("failover", "failover:{id}", "miss", 1.0),
        ("iterator", "items:{id}", "miss", 1.0),
        ("iterator", "items:{id}", "hit", 1.0),
        ("early", "bg:{id}", "miss", 1.0),
        ("early", "bg:{id}", "hit", 1.0),
        ("thunder_protection", "", "ok", 1.0),
        ("invalidate", "", "ok", 1.0),
        ("bloom", "", "hit", 1.0),
        ("bloom", "", "miss", 0.0),
        ("slice_rate_limit", "", "ok", 1.0),
        ("slice_rate_limit", "", "refused", 1.0),
        ("locked", "", "ok", 1.0),
        ("locked", "", "refused", 1.0),
    ];
    for (strategy, template, result, count) in expected {
        assert_eq!(
            calls(strategy, template, result),
            count,
            "{strategy} {template} {result}: {text}"
        );
    }
    // Timed as they ran: every call above is a future.
    assert_eq!(
        value(
            text,
            "cashews_strategy_duration_seconds_count",
            &[("strategy", "failover"), ("template", "failover:{id}")]
        ),
        3.0
    );
    for strategy in ["slice_rate_limit", "locked"] {
        assert_eq!(
            value(text, "cashews_refusals_total", &[("strategy", strategy)]),
            1.0,
            "{strategy}"
        );
    }
}
