//! [`Harness`]: one backend under test, a key namespace of its own and a way to move time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cashews::config::CacheConfig;
use cashews::{Backend, Cache, Clock};

/// How a case moves time forward past a TTL.
///
/// ```
/// use cashews::Clock;
/// use cashews_testkit::Time;
/// let clock = Clock::manual();
/// let time = Time::Manual(clock.clone());
/// assert!(matches!(time, Time::Manual(_)));
/// ```
#[derive(Debug, Clone)]
pub enum Time {
    /// The backend reads this manual clock: advancing it is instant (memory backend).
    Manual(Clock),
    /// The backend keeps real time (Redis, disk): advancing sleeps.
    Real,
}

/// What a case needs from the backend the factory builds.
///
/// ```
/// use cashews_testkit::Setup;
/// let setup = Setup::new("basic::get_missing", false);
/// assert_eq!(setup.case(), "basic::get_missing");
/// assert!(!setup.exclusive());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    case: &'static str,
    exclusive: bool,
}

impl Setup {
    /// A setup for the named case.
    #[must_use]
    pub const fn new(case: &'static str, exclusive: bool) -> Self {
        Self { case, exclusive }
    }

    /// The case's name, `group::case`.
    #[must_use]
    pub const fn case(&self) -> &'static str {
        self.case
    }

    /// Whether the case looks at the whole keyspace (`clear`, `keys_count`): the factory must
    /// then give it a backend no other test writes to (a fresh memory backend, a Redis server or
    /// database of its own, a temporary directory). Other cases only touch keys under
    /// [`Harness::key`], so they may share a server.
    #[must_use]
    pub const fn exclusive(&self) -> bool {
        self.exclusive
    }
}

/// One backend under test, as the conformance cases see it.
///
/// ```
/// use cashews::{Clock, MemoryBackend};
/// use cashews_testkit::{Harness, Time};
/// let clock = Clock::manual();
/// let mem = MemoryBackend::with_clock(Default::default(), clock.clone());
/// let h = Harness::new(mem, Time::Manual(clock));
/// assert!(h.key("a").ends_with(":a"));
/// assert_ne!(h.key("a"), Harness::new(MemoryBackend::new(Default::default()), cashews_testkit::Time::Real).key("a"));
/// ```
#[derive(Debug, Clone)]
pub struct Harness<B> {
    backend: B,
    time: Time,
    prefix: String,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl<B: Backend + Clone> Harness<B> {
    /// A harness over `backend`, with a key namespace no other harness in any process shares.
    #[must_use]
    pub fn new(backend: B, time: Time) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let salt: u32 = rand::random();
        let prefix = format!("ct{}-{n}-{salt:08x}", std::process::id());
        Self {
            backend,
            time,
            prefix,
        }
    }

    /// The backend under test.
    #[must_use]
    pub const fn backend(&self) -> &B {
        &self.backend
    }

    /// This harness's namespace: every key a case uses starts with it and a `:`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key `name` inside this harness's namespace.
    #[must_use]
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// The glob pattern `pattern` inside this harness's namespace (the prefix is escaped).
    #[must_use]
    pub fn pattern(&self, pattern: &str) -> String {
        format!("{}:{pattern}", cashews::pattern::escape(&self.prefix))
    }

    /// Moves time forward by `by`: advances the manual clock, or sleeps.
    pub async fn advance(&self, by: Duration) {
        match &self.time {
            Time::Manual(clock) => {
                clock.advance(by);
                tokio::task::yield_now().await;
            }
            Time::Real => tokio::time::sleep(by).await,
        }
    }

    /// Whether time is a manual clock (cases then use long TTLs freely).
    #[must_use]
    pub const fn is_manual(&self) -> bool {
        matches!(self.time, Time::Manual(_))
    }

    /// A [`Cache`] whose only route is this backend, with `config`'s wrapper options (codec,
    /// limits, suppress). `config.backend` is ignored.
    ///
    /// # Errors
    ///
    /// A configuration error from the codec options.
    pub fn cache(&self, config: CacheConfig) -> cashews::Result<Cache> {
        let cache = Cache::new();
        cache.setup_backend("", self.backend.clone(), config)?;
        Ok(cache)
    }

    /// A [`Cache`] over this backend with the options of a URL's query (`mem://?secret=…`).
    ///
    /// # Errors
    ///
    /// A configuration error for a bad URL or option.
    pub fn cache_from_url(&self, url: &str) -> cashews::Result<Cache> {
        self.cache(CacheConfig::parse(url)?)
    }
}
