//! `invalidate_further`: inside the scope, reads forget what they would have
//! served, so every cached function called inside recomputes and stores a fresh value.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Cache;
use crate::error::shorten;

/// Open scopes in the process: reads check the task-local only when one is open.
static OPEN: AtomicUsize = AtomicUsize::new(0);

tokio::task_local! {
    static FURTHER: ();
}

struct Open;

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `fut` so that every read of a cache inside it (`get`, `get_shared`, `get_many`,
/// `get_match`, and so every cached function) deletes the keys it reads and answers a miss.
/// Writes are unaffected, so the recomputed values are stored and stay after the scope.
/// `incr` is not affected (a counter is not a cached value). The scope is task-scoped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// cache.set("key", "value", "1h").await?;
/// let seen: Option<String> = cashews::invalidate_further(cache.get("key")).await?;
/// assert_eq!(seen, None);
/// assert!(!cache.exists("key").await?);
/// # Ok(()) }
/// ```
pub async fn invalidate_further<F: Future>(fut: F) -> F::Output {
    OPEN.fetch_add(1, Ordering::Relaxed);
    let _open = Open;
    FURTHER.scope((), fut).await
}

/// Whether the current task is inside [`invalidate_further`]: one relaxed load when no scope
/// is open anywhere, the task-local only when one is.
#[inline]
pub(crate) fn active() -> bool {
    OPEN.load(Ordering::Relaxed) != 0 && in_scope()
}

#[cold]
#[inline(never)]
fn in_scope() -> bool {
    FURTHER.try_with(|()| ()).is_ok()
}

impl Cache {
    /// Inside [`invalidate_further`]: deletes `keys` (a failure is logged).
    ///
    /// Boxed: the reads that call it on this rare path would otherwise hold the delete's
    /// future inline, which makes every read's future (and every strategy's) larger.
    pub(crate) fn forget<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> Pin<Box<impl Future<Output = ()> + 'a>> {
        Box::pin(async move {
            if let Err(error) = self.delete_many(keys).await {
                tracing::error!(key = %shorten(keys.first().copied().unwrap_or_default()), %error, "invalidate_further could not delete");
            }
        })
    }
}

// ----- Inherited at spawn (crate::context) ------------------------------------------------

impl crate::context::Further {
    /// The flag, when the current task is inside [`invalidate_further`].
    pub(crate) fn capture() -> Option<Self> {
        active().then_some(Self)
    }

    /// Runs `fut` inside the flag, counted as open from now until it completes or is dropped.
    pub(crate) fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        OPEN.fetch_add(1, Ordering::Relaxed);
        let open = Open;
        futures_util::FutureExt::map(FURTHER.scope((), fut), move |output| {
            drop(open);
            output
        })
    }
}
