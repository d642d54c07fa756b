//! The one hook the strategies report through: a [`Call`] per strategy call (its span and its
//! clock), plus the refusal and health events.

use std::future::Future;
#[cfg(feature = "metrics")]
use std::time::Instant;

/// How a strategy call ended, for metrics and spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrategyResult {
    /// Served from the cache.
    Hit,
    /// Not in the cache: the function ran (for `failover`: it failed and no fallback was
    /// stored).
    Miss,
    /// The function's own result: a non-caching strategy let the call through.
    Ok,
    /// Refused without running the function.
    Refused,
    /// Failed before deciding (a configuration error).
    Error,
}

impl StrategyResult {
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

/// One strategy call being observed: its span (when a subscriber listens) and its start
/// (when metrics are on).
pub(crate) struct Call {
    #[cfg(feature = "metrics")]
    strategy: &'static str,
    #[cfg(feature = "metrics")]
    template: &'static str,
    #[cfg(feature = "metrics")]
    started: Option<Instant>,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Call {
    /// Starts observing a call of `strategy` for keys of `template`.
    #[inline]
    pub(crate) fn start(strategy: &'static str, template: Option<&'static str>) -> Self {
        let template = template.unwrap_or("");
        Self {
            #[cfg(feature = "metrics")]
            strategy,
            #[cfg(feature = "metrics")]
            template,
            #[cfg(feature = "metrics")]
            started: super::metrics::active().then(Instant::now),
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "cashews.strategy",
                strategy,
                template,
                result = tracing::field::Empty
            ),
        }
    }

    /// `fut` run inside this call's span (as is when no subscriber listens). The future
    /// borrows the span: it adds a pointer to `fut`, not a span.
    #[inline]
    pub(crate) fn within<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        {
            Within {
                span: &self.span,
                fut,
            }
        }
        #[cfg(not(feature = "tracing"))]
        {
            fut
        }
    }

    /// [`within`](Self::within) for a future that outlives the call (a spawned task): it
    /// keeps its own handle on the span.
    #[inline]
    pub(crate) fn detached<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> + use<F> {
        #[cfg(feature = "tracing")]
        {
            tracing::Instrument::instrument(fut, self.span.clone())
        }
        #[cfg(not(feature = "tracing"))]
        {
            fut
        }
    }

    /// Ends the call with `result`.
    #[inline]
    pub(crate) fn finish(self, result: StrategyResult) {
        #[cfg(feature = "tracing")]
        if !self.span.is_disabled() {
            self.span.record("result", result.label());
        }
        #[cfg(feature = "metrics")]
        if let Some(started) = self.started {
            super::metrics::strategy_call(self.strategy, self.template, result, Some(started));
        }
        #[cfg(not(feature = "metrics"))]
        let _ = result;
    }
}

#[cfg(feature = "tracing")]
pin_project_lite::pin_project! {
    /// A future polled inside a borrowed span (`tracing::Instrumented` keeps a clone of the
    /// span: five words in every strategy future, where this keeps one).
    struct Within<'a, F> {
        span: &'a tracing::Span,
        #[pin]
        fut: F,
    }
}

#[cfg(feature = "tracing")]
impl<F: Future> Future for Within<'_, F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        this.fut.poll(cx)
    }
}

/// A hit answered synchronously (no future, no span): counted, not timed.
#[inline]
pub(crate) fn hit_now(strategy: &'static str, template: Option<&'static str>) {
    #[cfg(feature = "metrics")]
    if super::metrics::active() {
        super::metrics::strategy_call(strategy, template.unwrap_or(""), StrategyResult::Hit, None);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (strategy, template);
}

/// `strategy` refused a call.
#[inline]
pub(crate) fn refused(strategy: &'static str) {
    #[cfg(feature = "metrics")]
    if super::metrics::active() {
        super::metrics::refused(strategy);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = strategy;
}

/// A backend was created: up until a transition says otherwise (no transition counted).
#[cfg(feature = "redis")]
pub(crate) fn backend_up(backend: &'static str, address: &str) {
    #[cfg(feature = "metrics")]
    super::metrics::backend_up(backend, address);
    #[cfg(not(feature = "metrics"))]
    let _ = (backend, address);
}

/// A backend was marked up (`up`) or down.
#[cfg(feature = "redis")]
pub(crate) fn health(backend: &'static str, address: &str, up: bool) {
    #[cfg(feature = "metrics")]
    super::metrics::health(backend, address, up);
    #[cfg(not(feature = "metrics"))]
    let _ = (backend, address, up);
}
