//! The strategies' hook with both observability features off: every call compiles away.

use std::future::Future;

/// How a strategy call ended (unused without the features).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrategyResult {
    Hit,
    Miss,
    Ok,
    Refused,
    Error,
}

/// A strategy call, observed by nothing.
pub(crate) struct Call;

impl Call {
    #[inline(always)]
    pub(crate) fn start(_strategy: &'static str, _template: Option<&'static str>) -> Self {
        Self
    }

    #[inline(always)]
    pub(crate) fn within<F: Future>(&self, fut: F) -> F {
        fut
    }

    #[inline(always)]
    pub(crate) fn detached<F: Future>(&self, fut: F) -> F {
        fut
    }

    #[inline(always)]
    pub(crate) fn finish(self, _result: StrategyResult) {}
}

#[inline(always)]
pub(crate) fn hit_now(_strategy: &'static str, _template: Option<&'static str>) {}

#[inline(always)]
pub(crate) fn refused(_strategy: &'static str) {}

#[inline(always)]
#[cfg(feature = "redis")]
pub(crate) fn backend_up(_backend: &'static str, _address: &str) {}

#[inline(always)]
#[cfg(feature = "redis")]
pub(crate) fn health(_backend: &'static str, _address: &str, _up: bool) {}
