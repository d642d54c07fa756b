//! The shared conformance suite (`cashews-testkit`) on the memory backend, unchanged: on a
//! manual clock (instant TTLs), on the system clock (real sleeps, as Redis and disk run it),
//! behind a pass-through wrapper that forwards the memory backend's local tier (as wrappers
//! do: the `Cache` serves it exactly as the bare backend), and behind one that declares no
//! tier, so every command takes the async run (boxed futures, schema-checked codec), and
//! inside one open transaction (`transactional`, see there).

use std::time::Duration;

use cashews::backend::{BoxStream, Expiry, LocalTier, SetOptions};
use cashews::config::MemoryOptions;
use cashews::{Backend, Bytes, Clock, MemoryBackend, Result};
use cashews_testkit::{Harness, Setup, Time};

mod manual_clock {
    use super::*;

    /// A fresh memory backend per case, so exclusive cases need nothing more.
    async fn mem(_setup: Setup) -> Option<Harness<MemoryBackend>> {
        let clock = Clock::manual();
        let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
        Some(Harness::new(backend, Time::Manual(clock)))
    }

    cashews_testkit::conformance_suite!(mem);
}

mod system_clock {
    use super::*;

    async fn mem(_setup: Setup) -> Option<Harness<MemoryBackend>> {
        Some(Harness::new(
            MemoryBackend::new(MemoryOptions::default()),
            Time::Real,
        ))
    }

    cashews_testkit::conformance_suite!(mem);
}

mod wrapped {
    use super::*;

    async fn mem(_setup: Setup) -> Option<Harness<Passthrough>> {
        let clock = Clock::manual();
        let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
        Some(Harness::new(
            Passthrough {
                inner: backend,
                forward_tier: true,
            },
            Time::Manual(clock),
        ))
    }

    cashews_testkit::conformance_suite!(mem);
}

mod opaque {
    use super::*;

    async fn mem(_setup: Setup) -> Option<Harness<Passthrough>> {
        let clock = Clock::manual();
        let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
        Some(Harness::new(
            Passthrough {
                inner: backend,
                forward_tier: false,
            },
            Time::Manual(clock),
        ))
    }

    cashews_testkit::conformance_suite!(mem);
}

/// Behind a middleware chain (`cashews::middleware::Layered`): a pass-through middleware, an
/// observer and `add_prefix`, so every command is sent as data, prefixed, and its keys come
/// back without the prefix.
mod layered {
    use super::*;
    use cashews::middleware::{self, Layered, Next, Request};

    async fn mem(_setup: Setup) -> Option<Harness<Layered>> {
        let clock = Clock::manual();
        let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
        let stages = [
            middleware::from_fn(|request: Request, next: Next| next.run(request)),
            middleware::observe(|_| {}),
            middleware::add_prefix("layer[*]!"),
        ];
        Some(Harness::new(
            Layered::new(backend, stages),
            Time::Manual(clock),
        ))
    }

    cashews_testkit::conformance_suite!(mem);
}

/// Inside one open transaction (`cashews::backend::Transactional`), never committed: every
/// write of a case stays pending in the transaction and every read is its merged view, so the
/// suite checks that a transaction sees its own writes exactly as the backend would. Fast mode
/// (no `:tx_lock:` keys, which `keys_count` would count); on the backend's manual clock.
mod transactional {
    use super::*;
    use cashews::backend::{TransactionMode, TransactionOptions, Transactional};

    async fn mem(_setup: Setup) -> Option<Harness<Transactional>> {
        let clock = Clock::manual();
        let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
        let options = TransactionOptions::new(TransactionMode::Fast);
        Some(Harness::new(
            Transactional::new(backend, clock.clone(), options),
            Time::Manual(clock),
        ))
    }

    cashews_testkit::conformance_suite!(mem);
}

/// Delegates every command to a memory backend, as a wrapper will: only the required
/// methods, so the trait's defaults run too; its local tier forwarded or not.
#[derive(Debug, Clone)]
struct Passthrough {
    inner: MemoryBackend,
    forward_tier: bool,
}

impl Backend for Passthrough {
    fn name(&self) -> &'static str {
        "passthrough"
    }
    fn local_tier(&self) -> Option<LocalTier> {
        self.forward_tier.then(|| self.inner.local_tier()).flatten()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        self.inner.set(key, value, options).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        self.inner.expire(key, ttl).await
    }
    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        self.inner.get_expire(key).await
    }
    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        self.inner.incr(key, by, ttl).await
    }
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        self.inner.scan(pattern, batch_size)
    }
    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        self.inner.unlock(key, token).await
    }
    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        self.inner.get_bits(key, indexes, size).await
    }
    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        self.inner.incr_bits(key, indexes, size, by).await
    }
    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.inner.slice_incr(key, start, end, max, ttl).await
    }
    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.inner.slice_incr_now(key, period, max, ttl).await
    }
    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        self.inner.set_add(key, members, ttl).await
    }
    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.inner.set_remove(key, members).await
    }
    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.inner.set_pop(key, count).await
    }
    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        self.inner.ping(message).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
    async fn keys_count(&self) -> Result<u64> {
        self.inner.keys_count().await
    }
    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        self.inner.get_size(key).await
    }
}
