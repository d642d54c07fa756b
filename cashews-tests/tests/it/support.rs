//! Fixtures shared by the test modules.

use std::time::Duration;

use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, MemoryBackend};

/// A cache on a memory backend with a manual clock, which the cache's strategies read too.
pub(crate) fn manual_cache() -> (Cache, Clock) {
    let clock = Clock::manual();
    let cache = Cache::new();
    cache
        .setup_backend(
            "",
            MemoryBackend::with_clock(MemoryOptions::default(), clock.clone()),
            CacheConfig::default(),
        )
        .unwrap();
    (cache, clock)
}

/// Milliseconds.
pub(crate) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub(crate) const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A cache and the manual clock its backend and strategies read (for `static`s in tests).
pub(crate) struct Clocked {
    pub(crate) cache: Cache,
    pub(crate) clock: Clock,
}

/// A [`Clocked`] on a fresh memory backend.
pub(crate) fn clocked() -> Clocked {
    let (cache, clock) = manual_cache();
    Clocked { cache, clock }
}

/// The shared Redis server of the tests: `CASHEWS_REDIS_URL`, by default
/// `redis://127.0.0.1:6379/0`.
#[cfg(feature = "redis")]
pub(crate) fn redis_url() -> String {
    std::env::var("CASHEWS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// A salt from the time and a counter: unique per call in this process and across processes.
#[cfg(feature = "redis")]
pub(crate) fn salt() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}

/// A key prefix that no other test or process shares: `cashews-<kind>:<pid>-<salt>:`. Tests
/// on shared servers keep to their own prefix and never flush.
#[cfg(feature = "redis")]
pub(crate) fn unique_prefix(kind: &str) -> String {
    format!("cashews-{kind}:{}-{:016x}:", std::process::id(), salt())
}

/// A `redis-server` a test runs itself on a loopback port, so it may kill, restart or slow
/// it; killed (SIGKILL) and reaped on drop, test failures included.
#[cfg(feature = "redis")]
pub(crate) struct SpawnedRedis {
    /// The port it listens on (the TLS port for a TLS-only server).
    pub(crate) port: u16,
    args: Vec<std::ffi::OsString>,
    child: Option<std::process::Child>,
}

#[cfg(feature = "redis")]
impl SpawnedRedis {
    /// A free loopback port (free when asked: bind it soon).
    pub(crate) fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
    }

    /// Starts `redis-server` with `args` (they must make it listen on `port`: `--port N`, or
    /// `--port 0 --tls-port N`) plus no persistence and a loopback bind, and waits (bounded)
    /// until `port` accepts connections. The error says why not: no `redis-server`, or it
    /// exited (a flag it does not know, a port taken).
    pub(crate) fn start<I, S>(port: u16, args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        let mut server = Self {
            port,
            args: args.into_iter().map(Into::into).collect(),
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = std::process::Command::new("redis-server")
            .args(&self.args)
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let child = self.child.insert(child);
        // Bounded polling for the listening socket (a readiness wait, not a timing assertion).
        for _ in 0..1000 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "redis-server exited ({status}) before listening on {}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        Err(format!("redis-server never listened on {}", self.port))
    }

    /// Starts `redis-server` (with `extra` arguments) on a free port that really is its own:
    /// between [`SpawnedRedis::free_port`] and the bind, another test's server may take the
    /// port, and the readiness check would then see that server. The server's `process_id`
    /// must be our child's; otherwise another port is tried.
    pub(crate) fn start_own(extra: &[&str]) -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = Self::free_port();
            let mut args = vec!["--port".to_owned(), port.to_string()];
            args.extend(extra.iter().map(|arg| (*arg).to_owned()));
            match Self::start(port, args) {
                Ok(server) if server.is_own() => return Ok(server),
                Ok(_) => last = format!("port {port} answered for another server"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whether the server answering on `port` is our child (`INFO server`'s `process_id`).
    fn is_own(&self) -> bool {
        use std::io::{BufRead, BufReader, Read, Write};
        let Some(pid) = self.child.as_ref().map(std::process::Child::id) else {
            return false;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        if stream.write_all(b"INFO server\r\n").is_err() {
            return false;
        }
        // A bulk string: `$<len>\r\n<len bytes>\r\n`.
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() {
            return false;
        }
        let Some(len) = header
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return false;
        };
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return false;
        }
        String::from_utf8_lossy(&body)
            .lines()
            .any(|line| line.trim() == format!("process_id:{pid}"))
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts a new, empty one with the same arguments on the same port
    /// (retried a few times: the port may still be held by the kernel for a moment).
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let mut last = String::new();
        for _ in 0..5 {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(last)
    }
}

#[cfg(feature = "redis")]
impl Drop for SpawnedRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A proptest configuration with `cases` cases from a fixed seed, so that a run is the same on
/// every machine (CI must not depend on luck). `PROPTEST_RNG_SEED=<u64>` picks another seed,
/// and `PROPTEST_CASES` another count, to explore by hand.
pub(crate) fn fixed_seed(cases: u32) -> proptest::test_runner::Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6361_7368_6577_7321);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    proptest::test_runner::Config {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..proptest::test_runner::Config::default()
    }
}

/// Counts the callers whose future has gone pending once: for a waiter, that is when it
/// waits (for a lock, or for a run in flight); for the one running the origin, when the
/// origin waits. `all` resolves once `expected` have.
#[derive(Debug)]
pub(crate) struct LineUp {
    pending: std::sync::atomic::AtomicUsize,
    expected: usize,
    all: tokio::sync::Notify,
}

impl LineUp {
    pub(crate) fn new(expected: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            pending: std::sync::atomic::AtomicUsize::new(0),
            expected,
            all: tokio::sync::Notify::new(),
        })
    }

    /// Resolves once `expected` callers are pending (for any number of waiters).
    pub(crate) async fn all(&self) {
        loop {
            let notified = self.all.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.pending.load(std::sync::atomic::Ordering::SeqCst) >= self.expected {
                return;
            }
            notified.await;
        }
    }

    /// `future`, counted when it first goes pending.
    pub(crate) fn join<F: std::future::Future>(
        self: &std::sync::Arc<Self>,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> + use<F> {
        let line = std::sync::Arc::clone(self);
        let mut future = Box::pin(future);
        let mut counted = false;
        std::future::poll_fn(move |cx| {
            let poll = future.as_mut().poll(cx);
            if poll.is_pending() && !counted {
                counted = true;
                if line
                    .pending
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1
                    == line.expected
                {
                    line.all.notify_waiters();
                }
            }
            poll
        })
    }
}
