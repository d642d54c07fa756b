//! [`Route`]: one configured backend and the policy every command on it follows.
//!
//! A command on a [`Cache`](crate::Cache) takes one path: the router picks the route by key
//! prefix; the route's preamble checks the key and the disable mask
//! ([`Cache::enter`](crate::Cache)); then either the synchronous try answers from the
//! backend's [local tier](crate::backend::LocalTier) (a memory hit, a client-side local hit, a
//! memory write), or the async run calls the backend through its object-safe twin. Safe mode
//! settles the result the same way on both. A backend declares what it can answer
//! synchronously through [`Backend::local_tier`]; the one backend type known here is the
//! built-in Redis backend, whose `get` a route awaits in place rather than boxed
//! ([`Route::get`]).

use std::sync::Arc;

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::backend::{Backend, DynBackend, LocalTier};
use crate::codec::Codec;
use crate::command::Command;
use crate::config::CacheConfig;
use crate::error::Result;
use crate::middleware::{Layered, Observers, Stage, StageKind};

/// One configured backend: the backend, its local tier, and the policy of its commands.
pub(crate) struct Route {
    pub(crate) prefix: String,
    /// The backend's name (`"mem"`, `"redis"`, `"disk"`), for logs and detect records.
    name: &'static str,
    pub(crate) backend: Arc<dyn DynBackend>,
    /// The built-in Redis backend itself, when nothing wraps it (no middleware, no
    /// transaction): [`Cache::get`](crate::Cache::get) awaits its read in place, without the
    /// object-safe twin's box (an allocation per read, which with many reads in flight
    /// outruns the allocator's per-thread cache).
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::backend::RedisBackend>,
    /// What the backend answers synchronously, as it declared at install; `None` when a
    /// middleware must see every command.
    pub(crate) local: Option<LocalTier>,
    /// The route's observers, told about local answers (the chain tells them the rest).
    pub(crate) observers: Option<Observers>,
    pub(crate) codec: Codec,
    /// Bit set of globally disabled commands (`Command::bit`).
    disabled: AtomicU32,
    pub(crate) suppress: bool,
    pub(crate) max_key_length: usize,
    pub(crate) max_value_size: Option<usize>,
    /// Set by the first close: a backend is closed once.
    closed: AtomicBool,
    /// For a route seen through a transaction: the cache's own route, whose disable switches
    /// and backend identity it shares.
    parent: Option<Arc<Self>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("prefix", &self.prefix)
            .field("backend", &self.name)
            .field("suppress", &self.suppress)
            .field("disabled", &self.disabled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Every command's bit.
pub(crate) const ALL_COMMANDS: u32 = (1 << Command::ALL.len()) - 1;

impl Route {
    /// A route for `backend` under `prefix`, with the wrapper-level options of `config`.
    ///
    /// Values in a [whole](LocalTier::is_whole) local tier were written by this process, so
    /// their codec skips the schema-change check; a backend that declares no tier (or a front
    /// tier over a shared store) gets the full check.
    ///
    /// With `stages`, the backend is seen through their chain. Observers keep the local tier
    /// (they are told about its answers); a middleware turns it off, as it must see every
    /// command.
    pub(crate) fn new<B: Backend>(
        prefix: &str,
        backend: B,
        config: &CacheConfig,
        stages: Vec<Stage>,
    ) -> Result<Self> {
        config.validate_limits()?;
        let local = backend.local_tier();
        let codec = Codec::new(config.codec.clone())?;
        let codec = match &local {
            Some(tier) if tier.is_whole() => codec.in_process(),
            _ => codec,
        };
        let name = backend.name();
        #[cfg(feature = "redis")]
        let redis = if stages.is_empty() {
            (&backend as &dyn std::any::Any)
                .downcast_ref::<crate::backend::RedisBackend>()
                .cloned()
        } else {
            None
        };
        let backend: Arc<dyn DynBackend> = Arc::new(backend);
        let (backend, local, observers) = if stages.is_empty() {
            (backend, local, None)
        } else {
            let stages: Box<[StageKind]> = stages.into_iter().map(|stage| stage.0).collect();
            let intercepts = stages
                .iter()
                .any(|stage| matches!(stage, StageKind::Intercept(_)));
            let observers = Observers::of(&stages);
            let chained: Arc<dyn DynBackend> =
                Arc::new(Layered::over(backend, stages, name, prefix));
            if intercepts {
                (chained, None, None)
            } else {
                (chained, local, observers)
            }
        };
        #[cfg(feature = "tracing")]
        let backend: Arc<dyn DynBackend> =
            Arc::new(crate::observe::Traced::new(backend, name, prefix));
        Ok(Self {
            prefix: prefix.to_owned(),
            name,
            backend,
            #[cfg(feature = "redis")]
            redis,
            local,
            observers,
            codec,
            disabled: AtomicU32::new(if config.disable { ALL_COMMANDS } else { 0 }),
            suppress: config.suppress.unwrap_or(config.backend.default_suppress()),
            max_key_length: config.max_key_length,
            max_value_size: config.max_value_size,
            closed: AtomicBool::new(false),
            parent: None,
        })
    }

    /// This route seen through a transaction: the same policy, over `backend` (the
    /// transaction's wrapper of this route's backend), with no local tier (every command
    /// takes the async path, through the wrapper). Disable switches and the backend identity
    /// stay this route's.
    pub(crate) fn in_transaction(self: &Arc<Self>, backend: Arc<dyn DynBackend>) -> Self {
        Self {
            prefix: self.prefix.clone(),
            name: self.name,
            backend,
            #[cfg(feature = "redis")]
            redis: None,
            local: None,
            observers: None,
            codec: self.codec.clone(),
            disabled: AtomicU32::new(0),
            suppress: self.suppress,
            max_key_length: self.max_key_length,
            max_value_size: self.max_value_size,
            closed: AtomicBool::new(true),
            // The cache's own route, also when `self` is already seen through a transaction.
            parent: Some(self.parent.clone().unwrap_or_else(|| Arc::clone(self))),
        }
    }

    /// The backend's `get`: in place on the built-in Redis backend (with the command span a
    /// subscriber wants, as the `tracing` wrapper would add), through the object-safe twin
    /// otherwise.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            #[cfg(feature = "tracing")]
            if let Some(span) =
                crate::observe::command_span(self.name, &self.prefix, Command::Get, Some(key))
            {
                return crate::observe::in_span(
                    span,
                    Backend::get(redis, key),
                    crate::observe::hit_or_miss,
                )
                .await;
            }
            return Backend::get(redis, key).await;
        }
        self.backend.get(key).await
    }

    #[inline]
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    #[inline]
    pub(crate) fn disabled_mask(&self) -> u32 {
        // Not recursive (a transaction's route is made from a cache's own route, never from
        // another transaction's), so that this inlines into every command's preamble.
        let owner = self.parent.as_deref().unwrap_or(self);
        owner.disabled.load(Ordering::Relaxed)
    }

    pub(crate) fn disable(&self, mask: u32) {
        let owner = self.parent.as_deref().unwrap_or(self);
        owner.disabled.fetch_or(mask, Ordering::Relaxed);
    }

    pub(crate) fn enable(&self, mask: u32) {
        let owner = self.parent.as_deref().unwrap_or(self);
        owner.disabled.fetch_and(!mask, Ordering::Relaxed);
    }

    /// The backend's identity: its address, shared by every route using it (lock release
    /// feeds are kept per backend).
    pub(crate) fn backend_id(&self) -> usize {
        let owner = self.parent.as_deref().unwrap_or(self);
        Arc::as_ptr(&owner.backend).cast::<()>() as usize
    }

    /// Whether this call is the first to close the route.
    pub(crate) fn begin_close(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    /// The tier that holds every key of the backend, if the backend has one.
    #[inline]
    pub(crate) fn whole_tier(&self) -> Option<&LocalTier> {
        self.local.as_ref().filter(|tier| tier.is_whole())
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use crate::{Cache, middleware};

    fn in_place(cache: &Cache, key: &str) -> bool {
        cache
            .routes()
            .find(key)
            .is_some_and(|route| route.redis.is_some())
    }

    /// Only a bare Redis route reads in place: a middleware must see every command, and the
    /// other backends (and the client-side tier) go through their object-safe twin.
    #[test]
    fn only_a_bare_redis_route_reads_its_backend_in_place() {
        let cache = Cache::new();
        // Backends connect lazily: nothing here needs a server.
        cache.setup("redis://127.0.0.1:1/0").unwrap();
        cache
            .setup_prefix_with(
                "wrapped:",
                "redis://127.0.0.1:1/0",
                [middleware::add_prefix("svc!")],
            )
            .unwrap();
        cache.setup_prefix("local:", "mem://").unwrap();
        cache
            .setup_prefix("tier:", "redis://127.0.0.1:1/0?client_side=true")
            .unwrap();
        assert!(in_place(&cache, "k"));
        assert!(!in_place(&cache, "wrapped:k"));
        assert!(!in_place(&cache, "local:k"));
        assert!(!in_place(&cache, "tier:k"));
    }
}
