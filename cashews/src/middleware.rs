//! Middlewares: code that runs around a route's backend commands, and observers that are
//! told how each command went.
//!
//! A route (one backend, set up with [`Cache::setup_with`](crate::Cache::setup_with) or
//! [`Cache::setup_prefix_with`](crate::Cache::setup_prefix_with)) runs its stages in the order
//! given, the first outermost. There are two kinds:
//!
//! - a [`Middleware`] sees each backend command as data ([`Request`]: the command and its
//!   typed arguments, values already encoded), may change it, answer it without the backend
//!   (a [`Reply`]), or pass it on with [`Next::run`]. Built in: [`add_prefix`],
//!   [`all_keys_lower`], [`size_limit`]; any async function through [`from_fn`].
//! - an [`Observer`] only watches: after each command it gets an [`Event`] (command, key,
//!   outcome, duration). Built in: [`observe`] and [`on`] (callbacks).
//!
//! ## Cost, and the local tier
//!
//! A route with no stage pays nothing. A memory backend, or the client-side Redis tier,
//! answers many commands synchronously from its in-process data (see
//! [`LocalTier`](crate::backend::LocalTier)): no future, about 100 ns for a decorated hit.
//! Observers keep that path: a local answer is reported to them right away (with
//! [`Event::local`] set), which costs one call per observer, plus two clock reads when an
//! observer asks for durations ([`Observer::timed`]). A middleware must see every command, so
//! a route with at least one [`Middleware`] turns the synchronous path off and sends every
//! command down the chain (a memory hit then costs a boxed future, a few hundred
//! nanoseconds).
//!
//! ## Order with the cache's own steps
//!
//! Key checks, the disable switches ([`Cache::disable`](crate::Cache::disable)), encoding and
//! value-size limits run before the chain; safe mode settles what the chain answers (a
//! backend failure becomes a neutral reply when `suppress` is on; an
//! [`Error::Middleware`] is never hidden). Keys in requests are full
//! keys, route prefix included. Keys the backend reports back (scan results for
//! `scan`/`get_match`, lock releases) go back through every middleware's
//! [`Middleware::key_back`], innermost first, so [`add_prefix`] is invisible to the caller.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use cashews::{Command, middleware};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! let sets = Arc::new(AtomicUsize::new(0));
//! let counted = Arc::clone(&sets);
//! let cache = cashews::Cache::new();
//! cache.setup_with(
//!     "mem://",
//!     [
//!         middleware::add_prefix("app!"),
//!         middleware::on(Command::Set, move |_event| {
//!             counted.fetch_add(1, Ordering::Relaxed);
//!         }),
//!     ],
//! )?;
//! cache.set("user:1", "ada", "1h").await?;
//! assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("ada"));
//! assert_eq!(sets.load(Ordering::Relaxed), 1);
//! # Ok(()) }
//! ```

mod builtin;
pub(crate) mod chain;
mod request;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use builtin::{add_prefix, all_keys_lower, size_limit};
pub use chain::{Layered, Next};
pub use request::{Reply, Request};

pub use crate::backend::erased::BoxFuture;
use crate::{Command, Error, Result};

/// Code that runs around a route's backend commands.
///
/// `call` gets the request and the rest of the chain; it returns what the caller gets. Most
/// middlewares are written with [`from_fn`]; implement the trait for state or for
/// [`Middleware::key_back`].
///
/// ```
/// use cashews::middleware::{BoxFuture, Middleware, Next, Reply, Request, Stage};
///
/// /// Answers `exists` for keys under `ghost:` without asking the backend.
/// struct NoGhosts;
///
/// impl Middleware for NoGhosts {
///     fn call<'a>(&'a self, request: Request, next: Next) -> BoxFuture<'a, cashews::Result<Reply>> {
///         match &request {
///             Request::Exists { key } if key.starts_with("ghost:") => {
///                 Box::pin(async { Ok(Reply::Flag(false)) })
///             }
///             _ => next.run(request),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup_with("mem://", [Stage::intercept(NoGhosts)])?;
/// cache.set("ghost:1", "boo", "1m").await?;
/// assert!(!cache.exists("ghost:1").await?);
/// # Ok(()) }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Runs one command: pass it on with `next.run(request)` (changed or not), or answer
    /// without the backend. The reply variant must match the command (see [`Reply`]).
    fn call<'a>(&'a self, request: Request, next: Next) -> BoxFuture<'a, Result<Reply>>;

    /// Maps a key the backend reports (a scan result, a lock release) back to the key the
    /// caller knows: the inverse of what `call` does to keys. `None` drops the key (it is not
    /// this route's). The default keeps the key as it is.
    ///
    /// ```
    /// use cashews::middleware::{BoxFuture, Middleware, Next, Reply, Request};
    /// struct Identity;
    /// impl Middleware for Identity {
    ///     fn call<'a>(&'a self, r: Request, next: Next) -> BoxFuture<'a, cashews::Result<Reply>> {
    ///         next.run(r)
    ///     }
    /// }
    /// assert_eq!(Identity.key_back("k").as_deref(), Some("k"));
    /// ```
    fn key_back<'k>(&self, key: &'k str) -> Option<std::borrow::Cow<'k, str>> {
        Some(std::borrow::Cow::Borrowed(key))
    }
}

/// Code told how each command of a route went, after it ran: callbacks, metrics, logs.
///
/// Observers run on the command's path, synchronously: keep them short and never block (send
/// to a channel or bump an atomic). An observer must not panic; its panic reaches the caller.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use cashews::middleware::{Event, Observer, Outcome, Stage};
///
/// #[derive(Default)]
/// struct Hits(AtomicU64);
///
/// impl Observer for Hits {
///     fn observe(&self, event: &Event<'_>) {
///         if matches!(event.outcome, Outcome::Hit) {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
///     fn timed(&self) -> bool {
///         false // no clock reads on the hit path
///     }
/// }
/// let _stage = Stage::observe(Hits::default());
/// ```
pub trait Observer: Send + Sync + 'static {
    /// Called once per command that ran on the route (disabled commands do not run).
    fn observe(&self, event: &Event<'_>);

    /// Whether this observer reads [`Event::elapsed`]: when no observer of a route does, the
    /// route reads no clock and `elapsed` is zero. Default: `true`.
    ///
    /// ```
    /// use cashews::middleware::{Event, Observer};
    /// struct Quiet;
    /// impl Observer for Quiet {
    ///     fn observe(&self, _: &Event<'_>) {}
    /// }
    /// assert!(Quiet.timed());
    /// ```
    fn timed(&self) -> bool {
        true
    }
}

/// What an [`Observer`] is told about one command.
///
/// ```
/// use cashews::middleware::{self, Outcome};
/// let _stage = middleware::observe(|event| {
///     if let Outcome::Failed(error) = event.outcome {
///         eprintln!("{} on {:?} failed after {:?}: {error}", event.command, event.key, event.elapsed);
///     }
/// });
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Event<'a> {
    /// The backend operation (`get` for `get_raw` and the strategies' reads).
    pub command: Command,
    /// The key of a single-key command, or the pattern of `scan` / `delete_match`, as the
    /// observer's position in the chain sees it; `None` for multi-key and keyless commands.
    pub key: Option<&'a str>,
    /// How it went.
    pub outcome: Outcome<'a>,
    /// How long the command took; zero when no observer of the route is
    /// [timed](Observer::timed).
    pub elapsed: Duration,
    /// Whether the backend's in-process tier answered (no call to the backend itself).
    pub local: bool,
    /// The backend's name (`mem`, `redis`, `disk`).
    pub backend: &'static str,
    /// The prefix of the route the command ran on (`""` for the default route, and for a
    /// [`Layered`] backend used on its own).
    pub prefix: &'a str,
}

/// How a command went, as an [`Event`] reports it.
///
/// ```
/// use cashews::middleware::Outcome;
/// assert!(matches!(Outcome::Found { hits: 1, misses: 2 }, Outcome::Found { hits: 1, .. }));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// `get`, `get_size`, `exists`: the key was found (a value found but undecodable still
    /// counts as found here; the cache then logs it and answers a miss).
    Hit,
    /// `get`, `get_size`, `exists`: the key was not found.
    Miss,
    /// `get_many`: how many keys were found and not found.
    Found {
        /// Keys found.
        hits: usize,
        /// Keys not found.
        misses: usize,
    },
    /// Any other command that succeeded.
    Done,
    /// The command failed (before safe mode, which may still answer the caller neutrally).
    Failed(&'a Error),
}

impl<'a> Outcome<'a> {
    pub(crate) fn of(command: Command, reply: &'a Result<Reply>) -> Self {
        match reply {
            Err(error) => Self::Failed(error),
            Ok(Reply::Value(v)) => Self::found(v.is_some()),
            Ok(Reply::Size(v)) => Self::found(v.is_some()),
            Ok(Reply::Flag(v)) if command == Command::Exists => Self::found(*v),
            Ok(Reply::Values(values)) => {
                let hits = values.iter().filter(|v| v.is_some()).count();
                Self::Found {
                    hits,
                    misses: values.len() - hits,
                }
            }
            Ok(_) => Self::Done,
        }
    }

    /// [`Outcome::Hit`] or [`Outcome::Miss`].
    pub(crate) const fn found(found: bool) -> Self {
        if found { Self::Hit } else { Self::Miss }
    }
}

/// One stage of a route's chain: a [`Middleware`] or an [`Observer`], in the order given to
/// [`Cache::setup_with`](crate::Cache::setup_with).
///
/// ```
/// use cashews::middleware::{self, Stage};
/// let stages: Vec<Stage> = vec![middleware::add_prefix("v2:"), middleware::observe(|_| {})];
/// assert_eq!(stages.len(), 2);
/// ```
#[derive(Clone)]
pub struct Stage(pub(crate) StageKind);

#[derive(Clone)]
pub(crate) enum StageKind {
    Intercept(Arc<dyn Middleware>),
    Observe(Arc<dyn Observer>),
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            StageKind::Intercept(_) => "Stage::Middleware",
            StageKind::Observe(_) => "Stage::Observer",
        })
    }
}

impl Stage {
    /// A stage running `middleware` on every command of the route.
    ///
    /// ```
    /// use cashews::middleware::{BoxFuture, Middleware, Next, Reply, Request, Stage};
    /// struct Pass;
    /// impl Middleware for Pass {
    ///     fn call<'a>(&'a self, r: Request, next: Next) -> BoxFuture<'a, cashews::Result<Reply>> {
    ///         next.run(r)
    ///     }
    /// }
    /// let _stage = Stage::intercept(Pass);
    /// ```
    #[must_use]
    pub fn intercept(middleware: impl Middleware) -> Self {
        Self(StageKind::Intercept(Arc::new(middleware)))
    }

    /// A stage telling `observer` about every command of the route.
    ///
    /// ```
    /// use cashews::middleware::{Event, Observer, Stage};
    /// struct Print;
    /// impl Observer for Print {
    ///     fn observe(&self, e: &Event<'_>) { println!("{} {:?}", e.command, e.outcome) }
    /// }
    /// let _stage = Stage::observe(Print);
    /// ```
    #[must_use]
    pub fn observe(observer: impl Observer) -> Self {
        Self(StageKind::Observe(Arc::new(observer)))
    }
}

/// A middleware from an async function of the request and the rest of the chain, as in
/// axum's `from_fn`.
///
/// ```
/// use cashews::middleware::{self, Next, Reply, Request};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// // Refuses to store empty values.
/// let no_empty = middleware::from_fn(|request: Request, next: Next| async move {
///     if let Request::Set { value, .. } = &request
///         && value.is_empty()
///     {
///         return Ok(Reply::Flag(false));
///     }
///     next.run(request).await
/// });
/// let cache = cashews::Cache::new();
/// cache.setup_with("mem://", [no_empty])?;
/// assert!(!cache.set_raw("k", bytes::Bytes::new(), "1m").await?);
/// # Ok(()) }
/// ```
#[must_use]
pub fn from_fn<F, Fut>(f: F) -> Stage
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply>> + Send + 'static,
{
    Stage::intercept(FromFn(f))
}

struct FromFn<F>(F);

impl<F, Fut> Middleware for FromFn<F>
where
    F: Fn(Request, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply>> + Send + 'static,
{
    fn call<'a>(&'a self, request: Request, next: Next) -> BoxFuture<'a, Result<Reply>> {
        Box::pin((self.0)(request, next))
    }
}

/// Callbacks: an observer calling `f` after every command of the route.
///
/// ```
/// use cashews::middleware;
/// let _stage = middleware::observe(|event| println!("{} {:?} {:?}", event.command, event.key, event.outcome));
/// ```
#[must_use]
pub fn observe<F>(f: F) -> Stage
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    Stage::observe(ObserveFn(f))
}

/// A callback for one command: `f` is called after each `command` of the route (Python
/// cashews' `add_callback` / `callback(fn, cmd=...)`).
///
/// ```
/// use cashews::{Command, middleware};
/// let _stage = middleware::on(Command::Delete, |event| println!("deleted {:?}", event.key));
/// ```
#[must_use]
pub fn on<F>(command: Command, f: F) -> Stage
where
    F: Fn(&Event<'_>) + Send + Sync + 'static,
{
    observe(move |event: &Event<'_>| {
        if event.command == command {
            f(event);
        }
    })
}

struct ObserveFn<F>(F);

impl<F: Fn(&Event<'_>) + Send + Sync + 'static> Observer for ObserveFn<F> {
    fn observe(&self, event: &Event<'_>) {
        (self.0)(event);
    }
}

/// The observers of a route whose answers may come from its local tier: told about those
/// answers directly, since they do not go down the chain.
///
/// Kept for the hit path: the first observer apart (most routes have one, and its report is
/// then a single dynamic call, no loop), and whether any observer is timed decided once, so an
/// untimed route reads no clock. The backend's name comes from the route: this stays as small
/// as the route's other fields need it to be.
pub(crate) struct Observers {
    first: Arc<dyn Observer>,
    rest: Box<[Arc<dyn Observer>]>,
    timed: bool,
}

impl Observers {
    /// The observers among `stages`, or `None` when there are none.
    pub(crate) fn of(stages: &[StageKind]) -> Option<Self> {
        let mut list = stages.iter().filter_map(|stage| match stage {
            StageKind::Observe(observer) => Some(Arc::clone(observer)),
            StageKind::Intercept(_) => None,
        });
        let first = list.next()?;
        let rest: Box<[Arc<dyn Observer>]> = list.collect();
        let timed = first.timed() || rest.iter().any(|o| o.timed());
        Some(Self { first, rest, timed })
    }

    /// When a local answer started, if an observer wants durations.
    #[inline(always)]
    pub(crate) fn start(&self) -> Option<Instant> {
        if self.timed {
            Some(Instant::now())
        } else {
            None
        }
    }

    /// Tells every observer about a local answer of `backend`.
    #[inline(always)]
    pub(crate) fn local(
        &self,
        backend: &'static str,
        prefix: &str,
        command: Command,
        key: Option<&str>,
        outcome: Outcome<'_>,
        started: Option<Instant>,
    ) {
        let event = Event {
            command,
            key,
            outcome,
            elapsed: match started {
                Some(started) => started.elapsed(),
                None => Duration::ZERO,
            },
            local: true,
            backend,
            prefix,
        };
        self.first.observe(&event);
        if !self.rest.is_empty() {
            self.tell_rest(&event);
        }
    }

    /// The observers after the first (routes with several observers).
    #[cold]
    #[inline(never)]
    fn tell_rest(&self, event: &Event<'_>) {
        for observer in &self.rest {
            observer.observe(event);
        }
    }
}
