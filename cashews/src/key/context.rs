//! The key context: named values scoped to a task, read by templates as `{@:get(name)}`.
//!
//! [`with_key_context`] runs a future with extra values; inner scopes see the outer values and
//! can override them. Values are rendered to text when the scope is created.
//!
//! # Difference from Python
//!
//! Python's context variables are copied into every task a coroutine creates. Tokio's task
//! locals are not: a future passed to `tokio::spawn` starts with **no** key context. Spawn with
//! [`cashews::spawn`](crate::spawn), which carries every cashews task value over (key context,
//! disabled commands, detect scopes), or carry the key context alone with [`snapshot`] and
//! [`scope`]:
//!
//! ```
//! use cashews::key::context::{get, scope, snapshot, with_key_context};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! with_key_context([("client_id", 135)], async {
//!     assert_eq!(get("client_id").as_deref(), Some("135"));
//!
//!     let lost = tokio::spawn(async { get("client_id") });
//!     assert_eq!(lost.await.unwrap(), None);
//!
//!     let kept = tokio::spawn(scope(snapshot(), async { get("client_id") }));
//!     assert_eq!(kept.await.unwrap().as_deref(), Some("135"));
//! })
//! .await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use super::KeyPart;

tokio::task_local! {
    static CONTEXT: KeyContext;
}

/// A set of named key-context values, as text. Cheap to clone (one shared map).
///
/// Build one with [`KeyContext::new`] and [`KeyContext::with`], or take the current task's
/// with [`snapshot`]; run a future under it with [`scope`]. As a [`KeyPart`] (the template
/// field `{@}`) it renders like a map: `name:value` pairs sorted by name, joined with `:`.
///
/// ```
/// use cashews::key::context::KeyContext;
/// use cashews::key::render;
///
/// let ctx = KeyContext::new().with("tenant", &"acme").with("region", &3);
/// assert_eq!(ctx.get("tenant"), Some("acme"));
/// assert_eq!(ctx.get("missing"), None);
/// assert_eq!(render(&ctx), "region:3:tenant:acme");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyContext {
    values: Arc<BTreeMap<String, String>>,
}

impl KeyContext {
    /// An empty context.
    ///
    /// ```
    /// assert!(cashews::key::context::KeyContext::new().is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// This context with `name` set to `value` rendered as text, replacing any earlier value.
    ///
    /// ```
    /// use cashews::key::context::KeyContext;
    /// let ctx = KeyContext::new().with("a", &1).with("a", &Some("two"));
    /// assert_eq!(ctx.get("a"), Some("two"));
    /// ```
    #[must_use]
    pub fn with(mut self, name: &str, value: &(impl KeyPart + ?Sized)) -> Self {
        let mut text = String::new();
        value.write_key(&mut text);
        Arc::make_mut(&mut self.values).insert(name.to_owned(), text);
        self
    }

    /// The value of `name`, if set.
    ///
    /// ```
    /// use cashews::key::context::KeyContext;
    /// assert_eq!(KeyContext::new().with("x", &true).get("x"), Some("true"));
    /// ```
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The names and values, sorted by name.
    ///
    /// ```
    /// use cashews::key::context::KeyContext;
    /// let ctx = KeyContext::new().with("b", &2).with("a", &1);
    /// let pairs: Vec<_> = ctx.iter().collect();
    /// assert_eq!(pairs, [("a", "1"), ("b", "2")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The number of values.
    ///
    /// ```
    /// use cashews::key::context::KeyContext;
    /// assert_eq!(KeyContext::new().with("a", &1).len(), 1);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no values.
    ///
    /// ```
    /// use cashews::key::context::KeyContext;
    /// assert!(!KeyContext::new().with("a", &1).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl KeyPart for KeyContext {
    fn write_key(&self, out: &mut String) {
        self.values.write_key(out);
    }
}

/// Runs `fut` with `values` added to the current task's key context.
///
/// `values` are `(name, value)` pairs: `[("client_id", 135)]`, `[("tenant", tenant_name)]`, or a
/// map. For values of different types, cast each to `&dyn KeyPart` or build a [`KeyContext`]
/// (`snapshot().with("a", &1).with("b", &"x")`) and run it with [`scope`].
///
/// The values are rendered to text and merged over the current context (an inner scope
/// overrides an outer value of the same name) when this function is called; the scope ends
/// when `fut` completes. Await the result right away, in the task whose context it extends.
///
/// Tasks started with `tokio::spawn` inside do not inherit the context; tasks started with
/// [`cashews::spawn`](crate::spawn) (or under a [`Context`](crate::context::Context)) do.
///
/// ```
/// use cashews::key::KeyPart;
/// use cashews::key::context::{get, with_key_context};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// with_key_context([("context_value", "context"), ("kwarg1", "test")], async {
///     let values: [(&str, &dyn KeyPart); 2] = [("kwarg1", &"inner"), ("n", &1)];
///     with_key_context(values, async {
///         assert_eq!(get("context_value").as_deref(), Some("context"));
///         assert_eq!(get("kwarg1").as_deref(), Some("inner"));
///         assert_eq!(get("n").as_deref(), Some("1"));
///     })
///     .await;
///     assert_eq!(get("kwarg1").as_deref(), Some("test"));
/// })
/// .await;
/// assert_eq!(get("kwarg1"), None);
/// # }
/// ```
pub fn with_key_context<K, V, F>(
    values: impl IntoIterator<Item = (K, V)>,
    fut: F,
) -> impl Future<Output = F::Output>
where
    K: AsRef<str>,
    V: KeyPart,
    F: Future,
{
    let mut context = snapshot();
    for (name, value) in values {
        context = context.with(name.as_ref(), &value);
    }
    scope(context, fut)
}

/// Runs `fut` with exactly `context` as its key context (replacing, not merging with, the
/// current one). With [`snapshot`], this carries the context into a spawned task.
///
/// ```
/// use cashews::key::context::{KeyContext, get, scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = KeyContext::new().with("client_id", &135);
/// let id = tokio::spawn(scope(ctx, async { get("client_id") })).await.unwrap();
/// assert_eq!(id.as_deref(), Some("135"));
/// # }
/// ```
pub fn scope<F: Future>(context: KeyContext, fut: F) -> impl Future<Output = F::Output> {
    CONTEXT.scope(context, fut)
}

/// The current task's key context (empty outside any scope).
///
/// ```
/// use cashews::key::context::{snapshot, with_key_context};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(snapshot().is_empty());
/// let ctx = with_key_context([("a", 1)], async { snapshot() }).await;
/// assert_eq!(ctx.get("a"), Some("1"));
/// # }
/// ```
#[must_use]
pub fn snapshot() -> KeyContext {
    CONTEXT.try_with(KeyContext::clone).unwrap_or_default()
}

/// The value of `name` in the current task's key context, as used by `{@:get(name)}`; `None`
/// when it is not set or no scope is active (templates then render an empty string).
///
/// ```
/// use cashews::key::context::{get, with_key_context};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(get("client_id"), None);
/// let id = with_key_context([("client_id", 135)], async { get("client_id") }).await;
/// assert_eq!(id.as_deref(), Some("135"));
/// # }
/// ```
#[must_use]
pub fn get(name: &str) -> Option<String> {
    CONTEXT
        .try_with(|context| context.get(name).map(str::to_owned))
        .ok()
        .flatten()
}

/// Writes the value of `name` into `out` without an intermediate string; writes nothing when
/// it is missing. Returns whether it was set.
pub(crate) fn write_value(name: &str, out: &mut String) -> bool {
    CONTEXT
        .try_with(|context| match context.get(name) {
            Some(value) => {
                out.push_str(value);
                true
            }
            None => false,
        })
        .unwrap_or(false)
}
