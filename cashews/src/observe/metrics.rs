//! The `metrics` feature: the command observer ([`Metrics`]) and the process-wide strategy,
//! refusal and health metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use metrics::{Label, counter, histogram};

use super::StrategyResult;
use crate::Cache;
use crate::cache::WeakCache;
use crate::middleware::{Event, Observer, Outcome, Stage};

/// Whether a metrics stage was built: the strategies record only then, so a build with the
/// feature but no metrics stage pays one relaxed load per strategy call.
static ACTIVE: AtomicBool = AtomicBool::new(false);

#[inline]
pub(super) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// A metrics stage with the default options: every command of the route is counted and
/// timed, without the `tag` label. See the [module docs](super) for the names and labels.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup_with("mem://", [cashews::observe::metrics()])?;
/// cache.setup_prefix_with("local:", "mem://", [cashews::observe::metrics()])?;
/// # Ok(()) }
/// ```
#[must_use]
pub fn metrics() -> Stage {
    Metrics::new().stage()
}

/// The options of a metrics stage; [`Metrics::stage`] builds it.
///
/// ```
/// let cache = cashews::Cache::new();
/// let stage = cashews::observe::Metrics::new().with_tag(&cache).stage();
/// cache.setup_with("mem://", [stage])?;
/// # Ok::<(), cashews::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Metrics {
    tags: Option<WeakCache>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("with_tag", &self.tags.is_some())
            .finish()
    }
}

impl Metrics {
    /// The default options: no `tag` label.
    ///
    /// ```
    /// let _stage = cashews::observe::Metrics::new().stage();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `tag` label to the command metrics: the first tag `cache`'s tag registry maps
    /// the command's key to ([`Cache::get_key_tags`]), or `""`. Tags rendered from keys
    /// (`user:{id}`) make one series per value: prefer constant tags here. The stage does not
    /// keep `cache` alive.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.register_tag("users", "user:{id}")?;
    /// cache.setup_with("mem://", [cashews::observe::Metrics::new().with_tag(&cache).stage()])?;
    /// cache.set("user:1", "ada", "1h").await?; // counted with tag="users"
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_tag(mut self, cache: &Cache) -> Self {
        self.tags = Some(cache.downgrade());
        self
    }

    /// The stage to give [`Cache::setup_with`](crate::Cache::setup_with). Building it also
    /// turns on the strategy, refusal and health metrics of the process.
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup_with("mem://", [cashews::observe::Metrics::new().stage()])?;
    /// # Ok::<(), cashews::Error>(())
    /// ```
    #[must_use]
    pub fn stage(self) -> Stage {
        ACTIVE.store(true, Ordering::Relaxed);
        Stage::observe(self)
    }

    fn tag(&self, key: Option<&str>) -> Option<String> {
        let cache = self.tags.as_ref()?.upgrade()?;
        let tags = key.map(|key| cache.get_key_tags(key)).unwrap_or_default();
        Some(tags.into_iter().next().unwrap_or_default())
    }
}

impl Observer for Metrics {
    fn observe(&self, event: &Event<'_>) {
        let result = match event.outcome {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Failed(_) => "error",
            _ => "ok",
        };
        let mut labels = Vec::with_capacity(6);
        labels.push(Label::from_static_parts("command", event.command.as_str()));
        labels.push(Label::from_static_parts("backend", event.backend));
        labels.push(Label::new("prefix", event.prefix.to_owned()));
        if let Some(tag) = self.tag(event.key) {
            labels.push(Label::new("tag", tag));
        }
        histogram!("cashews_command_duration_seconds", labels.clone())
            .record(event.elapsed.as_secs_f64());
        labels.push(Label::from_static_parts("result", result));
        let tier = if event.local { "local" } else { "remote" };
        labels.push(Label::from_static_parts("tier", tier));
        counter!("cashews_commands_total", labels).increment(1);
    }
}

/// One strategy call: counted by result, and timed when it was (`started`).
pub(super) fn strategy_call(
    strategy: &'static str,
    template: &'static str,
    result: StrategyResult,
    started: Option<Instant>,
) {
    counter!(
        "cashews_strategy_calls_total",
        "strategy" => strategy,
        "template" => template,
        "result" => result.label()
    )
    .increment(1);
    if let Some(started) = started {
        histogram!(
            "cashews_strategy_duration_seconds",
            "strategy" => strategy,
            "template" => template
        )
        .record(started.elapsed().as_secs_f64());
    }
}

/// `strategy` refused a call.
pub(super) fn refused(strategy: &'static str) {
    counter!("cashews_refusals_total", "strategy" => strategy).increment(1);
}

/// A backend was created: the gauge starts at 1 (recorded even before a metrics stage is
/// built, as the transitions are).
#[cfg(feature = "redis")]
pub(super) fn backend_up(backend: &'static str, address: &str) {
    metrics::gauge!("cashews_backend_up", "backend" => backend, "address" => address.to_owned())
        .set(1.0);
}

/// A backend went up or down (recorded even before a metrics stage is built: transitions
/// are rare, and the gauge must be right from the start).
#[cfg(feature = "redis")]
pub(super) fn health(backend: &'static str, address: &str, up: bool) {
    let to = if up { "up" } else { "down" };
    counter!(
        "cashews_backend_health_transitions_total",
        "backend" => backend,
        "address" => address.to_owned(),
        "to" => to
    )
    .increment(1);
    metrics::gauge!("cashews_backend_up", "backend" => backend, "address" => address.to_owned())
        .set(if up { 1.0 } else { 0.0 });
}
