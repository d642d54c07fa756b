//! The middleware chain of one route: [`Next`], and the backend wrapper that turns every
//! backend call into a [`Request`] sent down the chain.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, future, stream};

use super::{Event, Observer, Outcome, Reply, Request, Stage, StageKind};
use crate::Command;
use crate::backend::erased::{BoxFuture, DynBackend};
use crate::backend::{Backend, BackendHealth, Batch, BoxStream, Expiry, LockEvent, SetOptions};
use crate::error::Result;

/// A route's stages over its backend.
pub(crate) struct Chain {
    stages: Box<[StageKind]>,
    backend: Arc<dyn DynBackend>,
    name: &'static str,
    /// The route's prefix, for the observers' events.
    prefix: Box<str>,
    /// Where the chain's last run of observers starts (`stages.len()` when the last stage is
    /// a middleware): from there on the request reaches the backend unchanged.
    tail: usize,
    /// Whether an observer of that run is [timed](Observer::timed).
    tail_timed: bool,
}

/// The rest of the chain after a middleware: [`Next::run`] sends the request on, towards the
/// backend.
///
/// ```
/// use cashews::middleware::{self, Next, Request};
///
/// let logged = middleware::from_fn(|request: Request, next: Next| async move {
///     let command = request.command();
///     let reply = next.run(request).await;
///     println!("{command} answered");
///     reply
/// });
/// # let _ = logged;
/// ```
pub struct Next {
    chain: Arc<Chain>,
    at: usize,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("backend", &self.chain.name)
            .field("stage", &self.at)
            .finish()
    }
}

impl Next {
    /// Runs the rest of the chain (the next middleware, or the backend) on `request`.
    ///
    /// # Errors
    ///
    /// What the rest of the chain answers: a backend failure, or a middleware's error.
    pub fn run(self, request: Request) -> BoxFuture<'static, Result<Reply>> {
        let Self { chain, at } = self;
        match chain.stages.get(at) {
            None => Box::pin(run_backend(chain, request)),
            Some(StageKind::Intercept(middleware)) => {
                let middleware = Arc::clone(middleware);
                let next = Self { chain, at: at + 1 };
                Box::pin(async move { middleware.call(request, next).await })
            }
            Some(StageKind::Observe(_)) if at >= chain.tail => {
                Box::pin(observed_tail(chain, at, request))
            }
            Some(StageKind::Observe(observer)) => {
                let observer = Arc::clone(observer);
                let next = Self { chain, at: at + 1 };
                Box::pin(observed(observer, request, next))
            }
        }
    }
}

/// Runs the backend and tells the observers from `at` on (the chain's last stages, all of
/// them observers) how it went, innermost first as nested stages finish. No middleware
/// follows, so the request reaches the backend unchanged: the key the observers are told is
/// the request's own, borrowed, and one future serves them all.
async fn observed_tail(chain: Arc<Chain>, at: usize, mut request: Request) -> Result<Reply> {
    let command = request.command();
    let started = chain.tail_timed.then(Instant::now);
    let reply = call_backend(&*chain.backend, &mut request).await;
    let event = Event {
        command,
        key: request.key(),
        outcome: Outcome::of(command, &reply),
        elapsed: started.map_or(Duration::ZERO, |s| s.elapsed()),
        local: false,
        backend: chain.name,
        prefix: &chain.prefix,
    };
    for stage in chain.stages.iter().skip(at).rev() {
        if let StageKind::Observe(observer) = stage {
            observer.observe(&event);
        }
    }
    reply
}

/// Runs the rest of the chain and tells `observer` how it went (an observer with a
/// middleware after it: the key it is told is the one it saw, copied before the middleware
/// may change it).
async fn observed(observer: Arc<dyn Observer>, request: Request, next: Next) -> Result<Reply> {
    let chain = Arc::clone(&next.chain);
    let command = request.command();
    let key = request.key().map(str::to_owned);
    let started = observer.timed().then(Instant::now);
    let reply = next.run(request).await;
    let event = Event {
        command,
        key: key.as_deref(),
        outcome: Outcome::of(command, &reply),
        elapsed: started.map_or(Duration::ZERO, |s| s.elapsed()),
        local: false,
        backend: chain.name,
        prefix: &chain.prefix,
    };
    observer.observe(&event);
    reply
}

/// The end of the chain: the backend runs the request.
async fn run_backend(chain: Arc<Chain>, mut request: Request) -> Result<Reply> {
    call_backend(&*chain.backend, &mut request).await
}

/// The backend runs `request`, which keeps its keys (a set's value is moved out).
async fn call_backend(b: &dyn DynBackend, request: &mut Request) -> Result<Reply> {
    Ok(match request {
        Request::Get { key } => Reply::Value(b.get(key).await?),
        Request::GetMany { keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            Reply::Values(b.get_many(&keys).await?)
        }
        Request::Set {
            key,
            value,
            options,
        } => Reply::Flag(b.set(key, std::mem::take(value), *options).await?),
        Request::SetMany { pairs, ttl } => {
            let pairs: Vec<(&str, Bytes)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            b.set_many(&pairs, *ttl).await?;
            Reply::Done
        }
        Request::Delete { key } => Reply::Flag(b.delete(key).await?),
        Request::DeleteMany { keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            Reply::Count(b.delete_many(&keys).await?)
        }
        Request::DeleteMatch { pattern } => Reply::Count(b.delete_match(pattern).await?),
        Request::Exists { key } => Reply::Flag(b.exists(key).await?),
        Request::Scan {
            pattern,
            batch_size,
        } => Reply::Keys(b.scan(pattern, *batch_size)),
        Request::Incr { key, by, ttl } => Reply::Number(b.incr(key, *by, *ttl).await?),
        Request::Expire { key, ttl } => Reply::Flag(b.expire(key, *ttl).await?),
        Request::GetExpire { key } => Reply::Expiry(b.get_expire(key).await?),
        Request::SetLock { key, token, ttl } => Reply::Flag(b.set_lock(key, token, *ttl).await?),
        Request::Unlock { key, token } => Reply::Flag(b.unlock(key, token).await?),
        Request::GetBits { key, indexes, size } => {
            Reply::Fields(b.get_bits(key, indexes, *size).await?)
        }
        Request::IncrBits {
            key,
            indexes,
            size,
            by,
        } => Reply::Fields(b.incr_bits(key, indexes, *size, *by).await?),
        Request::SliceIncr {
            key,
            start,
            end,
            max,
            ttl,
        } => Reply::Count(b.slice_incr(key, *start, *end, *max, *ttl).await?),
        Request::SliceIncrNow {
            key,
            period,
            max,
            ttl,
        } => Reply::Count(b.slice_incr_now(key, *period, *max, *ttl).await?),
        Request::SetAdd { key, members, ttl } => {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            Reply::Count(b.set_add(key, &members, *ttl).await?)
        }
        Request::SetRemove { key, members } => {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            Reply::Count(b.set_remove(key, &members).await?)
        }
        Request::SetPop { key, count } => Reply::Members(b.set_pop(key, *count).await?),
        Request::Ping { message } => Reply::Pong(b.ping(message).await?),
        Request::GetSize { key } => Reply::Size(b.get_size(key).await?),
        Request::Clear => {
            b.clear().await?;
            Reply::Done
        }
        Request::GetKeysCount => Reply::Count(b.keys_count().await?),
        Request::Apply { batch } => {
            b.apply(batch).await?;
            Reply::Done
        }
    })
}

impl Chain {
    /// A key as the backend reported it (a scan, a lock release), mapped back through every
    /// middleware, innermost first; `None` when one of them says it is not this route's.
    fn key_back(&self, key: String) -> Option<String> {
        let mut key = key;
        for stage in self.stages.iter().rev() {
            if let StageKind::Intercept(middleware) = stage {
                key = match middleware.key_back(&key)? {
                    // A slice of the whole key is the key itself.
                    Cow::Borrowed(same) if same.len() == key.len() => continue,
                    Cow::Borrowed(part) => part.to_owned(),
                    Cow::Owned(mapped) => mapped,
                };
            }
        }
        Some(key)
    }
}

/// A backend seen through a chain of [middlewares and observers](super): every call becomes
/// a [`Request`] sent down the chain. [`Cache::setup_with`](crate::Cache::setup_with) builds
/// one for its route; build one yourself to use a chain where a [`Backend`] is expected.
///
/// It declares no [local tier](Backend::local_tier), so a cache serves every command through
/// the chain.
///
/// ```
/// use cashews::{Backend, MemoryBackend, middleware::{self, Layered}};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let mem = MemoryBackend::new(Default::default());
/// let layered = Layered::new(mem.clone(), [middleware::add_prefix("a!")]);
/// layered.set("k", "v".into(), Default::default()).await?;
/// assert!(mem.exists("a!k").await?);
/// assert!(layered.exists("k").await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Layered {
    chain: Arc<Chain>,
}

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered")
            .field("backend", &self.chain.name)
            .field("stages", &self.chain.stages.len())
            .finish()
    }
}

impl Layered {
    /// `backend` seen through `stages`, the first outermost.
    #[must_use]
    pub fn new<B: Backend>(backend: B, stages: impl IntoIterator<Item = Stage>) -> Self {
        let name = backend.name();
        let stages = stages.into_iter().map(|stage| stage.0).collect();
        Self::over(Arc::new(backend), stages, name, "")
    }

    pub(crate) fn over(
        backend: Arc<dyn DynBackend>,
        stages: Box<[StageKind]>,
        name: &'static str,
        prefix: &str,
    ) -> Self {
        let tail = stages
            .iter()
            .rposition(|stage| matches!(stage, StageKind::Intercept(_)))
            .map_or(0, |last| last + 1);
        let tail_timed = stages.iter().skip(tail).any(|stage| match stage {
            StageKind::Observe(observer) => observer.timed(),
            StageKind::Intercept(_) => false,
        });
        Self {
            chain: Arc::new(Chain {
                stages,
                backend,
                name,
                prefix: prefix.into(),
                tail,
                tail_timed,
            }),
        }
    }

    fn send(&self, request: Request) -> BoxFuture<'static, Result<Reply>> {
        Next {
            chain: Arc::clone(&self.chain),
            at: 0,
        }
        .run(request)
    }
}

/// Unpacks the reply variant a command needs.
macro_rules! expect {
    ($reply:expr, $command:expr, $variant:pat => $value:expr) => {
        match $reply {
            $variant => Ok($value),
            other => Err(other.mismatch($command)),
        }
    };
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|&k| k.to_owned()).collect()
}

impl Backend for Layered {
    fn name(&self) -> &'static str {
        self.chain.name
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let reply = self
            .send(Request::Get {
                key: key.to_owned(),
            })
            .await?;
        expect!(reply, Command::Get, Reply::Value(v) => v)
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let request = Request::GetMany { keys: owned(keys) };
        match self.send(request).await? {
            Reply::Values(values) if values.len() == keys.len() => Ok(values),
            Reply::Values(values) => Err(crate::Error::Middleware {
                command: Command::GetMany,
                reason: format!(
                    "{} values answered for {} keys: a get_many reply has one entry per key \
                     asked",
                    values.len(),
                    keys.len()
                ),
            }),
            other => Err(other.mismatch(Command::GetMany)),
        }
    }
    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> Result<bool> {
        let key = key.to_owned();
        let reply = self
            .send(Request::Set {
                key,
                value,
                options,
            })
            .await?;
        expect!(reply, Command::Set, Reply::Flag(v) => v)
    }
    async fn set_many(&self, pairs: &[(&str, Bytes)], ttl: Option<Duration>) -> Result<()> {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let reply = self.send(Request::SetMany { pairs, ttl }).await?;
        expect!(reply, Command::SetMany, Reply::Done => ())
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        let reply = self
            .send(Request::Delete {
                key: key.to_owned(),
            })
            .await?;
        expect!(reply, Command::Delete, Reply::Flag(v) => v)
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<u64> {
        let reply = self.send(Request::DeleteMany { keys: owned(keys) }).await?;
        expect!(reply, Command::DeleteMany, Reply::Count(v) => v)
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        let reply = self
            .send(Request::Exists {
                key: key.to_owned(),
            })
            .await?;
        expect!(reply, Command::Exists, Reply::Flag(v) => v)
    }
    async fn expire(&self, key: &str, ttl: Option<Duration>) -> Result<bool> {
        let key = key.to_owned();
        let reply = self.send(Request::Expire { key, ttl }).await?;
        expect!(reply, Command::Expire, Reply::Flag(v) => v)
    }
    async fn get_expire(&self, key: &str) -> Result<Expiry> {
        let reply = self
            .send(Request::GetExpire {
                key: key.to_owned(),
            })
            .await?;
        expect!(reply, Command::GetExpire, Reply::Expiry(v) => v)
    }
    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64> {
        let key = key.to_owned();
        let reply = self.send(Request::Incr { key, by, ttl }).await?;
        expect!(reply, Command::Incr, Reply::Number(v) => v)
    }
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<Result<String>> {
        let run = self.send(Request::Scan {
            pattern: pattern.to_owned(),
            batch_size,
        });
        let chain = Arc::clone(&self.chain);
        Box::pin(
            stream::once(run)
                .map(move |reply| -> BoxStream<Result<String>> {
                    match reply {
                        Ok(Reply::Keys(keys)) => {
                            let chain = Arc::clone(&chain);
                            Box::pin(keys.filter_map(move |item| {
                                future::ready(match item {
                                    Ok(key) => chain.key_back(key).map(Ok),
                                    Err(error) => Some(Err(error)),
                                })
                            }))
                        }
                        Ok(other) => Box::pin(stream::iter([Err(other.mismatch(Command::Scan))])),
                        Err(error) => Box::pin(stream::iter([Err(error)])),
                    }
                })
                .flatten(),
        )
    }
    async fn delete_match(&self, pattern: &str) -> Result<u64> {
        let pattern = pattern.to_owned();
        let reply = self.send(Request::DeleteMatch { pattern }).await?;
        expect!(reply, Command::DeleteMatch, Reply::Count(v) => v)
    }
    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let (key, token) = (key.to_owned(), token.to_owned());
        let reply = self.send(Request::SetLock { key, token, ttl }).await?;
        expect!(reply, Command::SetLock, Reply::Flag(v) => v)
    }
    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let (key, token) = (key.to_owned(), token.to_owned());
        let reply = self.send(Request::Unlock { key, token }).await?;
        expect!(reply, Command::Unlock, Reply::Flag(v) => v)
    }
    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> Result<Vec<u64>> {
        let request = Request::GetBits {
            key: key.to_owned(),
            indexes: indexes.to_vec(),
            size,
        };
        let reply = self.send(request).await?;
        expect!(reply, Command::GetBits, Reply::Fields(v) => v)
    }
    async fn incr_bits(&self, key: &str, indexes: &[u64], size: u8, by: i64) -> Result<Vec<u64>> {
        let request = Request::IncrBits {
            key: key.to_owned(),
            indexes: indexes.to_vec(),
            size,
            by,
        };
        let reply = self.send(request).await?;
        expect!(reply, Command::IncrBits, Reply::Fields(v) => v)
    }
    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        let request = Request::SliceIncr {
            key: key.to_owned(),
            start,
            end,
            max,
            ttl,
        };
        let reply = self.send(request).await?;
        expect!(reply, Command::SliceIncr, Reply::Count(v) => v)
    }
    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> Result<u64> {
        let request = Request::SliceIncrNow {
            key: key.to_owned(),
            period,
            max,
            ttl,
        };
        let reply = self.send(request).await?;
        expect!(reply, Command::SliceIncrNow, Reply::Count(v) => v)
    }
    async fn set_add(&self, key: &str, members: &[&str], ttl: Option<Duration>) -> Result<u64> {
        let request = Request::SetAdd {
            key: key.to_owned(),
            members: owned(members),
            ttl,
        };
        let reply = self.send(request).await?;
        expect!(reply, Command::SetAdd, Reply::Count(v) => v)
    }
    async fn set_remove(&self, key: &str, members: &[&str]) -> Result<u64> {
        let request = Request::SetRemove {
            key: key.to_owned(),
            members: owned(members),
        };
        let reply = self.send(request).await?;
        expect!(reply, Command::SetRemove, Reply::Count(v) => v)
    }
    async fn set_pop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let key = key.to_owned();
        let reply = self.send(Request::SetPop { key, count }).await?;
        expect!(reply, Command::SetPop, Reply::Members(v) => v)
    }
    async fn ping(&self, message: &[u8]) -> Result<Bytes> {
        let message = Bytes::copy_from_slice(message);
        let reply = self.send(Request::Ping { message }).await?;
        expect!(reply, Command::Ping, Reply::Pong(v) => v)
    }
    async fn clear(&self) -> Result<()> {
        let reply = self.send(Request::Clear).await?;
        expect!(reply, Command::Clear, Reply::Done => ())
    }
    async fn keys_count(&self) -> Result<u64> {
        let reply = self.send(Request::GetKeysCount).await?;
        expect!(reply, Command::GetKeysCount, Reply::Count(v) => v)
    }
    async fn get_size(&self, key: &str) -> Result<Option<u64>> {
        let reply = self
            .send(Request::GetSize {
                key: key.to_owned(),
            })
            .await?;
        expect!(reply, Command::GetSize, Reply::Size(v) => v)
    }
    async fn apply(&self, batch: &Batch) -> Result<()> {
        let reply = self
            .send(Request::Apply {
                batch: batch.clone(),
            })
            .await?;
        expect!(reply, Command::Apply, Reply::Done => ())
    }
    async fn close(&self) -> Result<()> {
        self.chain.backend.close().await
    }
    fn lock_releases(&self) -> Option<BoxStream<LockEvent>> {
        let feed = self.chain.backend.lock_releases()?;
        let chain = Arc::clone(&self.chain);
        Some(Box::pin(feed.filter_map(move |event| {
            future::ready(match event {
                LockEvent::Released(key) => chain.key_back(key).map(LockEvent::Released),
                other => Some(other),
            })
        })))
    }
    fn health(&self) -> Option<BackendHealth> {
        self.chain.backend.health()
    }
}
