//! The isolation scenario of transactions (four concurrent transactions, the fourth failing),
//! written once: one transaction's steps and the check of what they leave. The callers run it
//! in one process (`transaction_scope`) and across two (`redis_distributed::transactions`,
//! `disk_processes::transactions`), each with its own way of lining the transactions up.

use std::future::Future;

use cashews::transaction::TransactionMode;
use cashews::{Cache, Error};

/// A failure of a transaction's scope, to roll back with.
#[derive(Debug)]
pub(crate) enum Failure {
    Cache(Error),
    Raised,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Cache(error)
    }
}

/// How the transactions line up (futures run only where the scenario awaits them): `entered`
/// before the first increment in the locking modes, then `all_entered` while holding the
/// counter's lock; `all_read` after the first increment in fast mode, so that every
/// transaction reads the counter before any commits.
pub(crate) struct LineUp<E, R, A> {
    pub(crate) entered: E,
    pub(crate) all_read: R,
    pub(crate) all_entered: A,
}

/// One transaction of the scenario, writing `v` (`v4` fails after its first write).
pub(crate) async fn transaction<E, R, A>(
    cache: &Cache,
    mode: TransactionMode,
    v: &str,
    line_up: LineUp<E, R, A>,
) -> Result<(), Failure>
where
    E: Future<Output = ()>,
    R: Future<Output = ()>,
    A: Future<Output = ()>,
{
    let LineUp {
        entered,
        all_read,
        all_entered,
    } = line_up;
    let fast = mode == TransactionMode::Fast;
    cache
        .transaction()
        .mode(mode)
        .run(async {
            assert!(cache.exists("key2").await?);
            if !fast {
                entered.await;
            }
            cache.incr("incr").await?;
            if fast {
                all_read.await;
            } else {
                // Holding the lock the `incr` took: every transaction has started, so the
                // others queue on that lock (or are about to) while this one holds it.
                all_entered.await;
            }
            assert!(cache.set("key1", v, "1h").await?);
            if v == "v4" {
                return Err(Failure::Raised);
            }
            assert!(cache.set("key2", v, "1h").await?);
            tokio::task::yield_now().await;
            cache.incr("incr").await?;
            cache.set_if_present("key3", v, "1h").await?;
            assert!(cache.set("key1", v, "1h").await?);
            Ok(())
        })
        .await
}

/// What the scenario leaves: the counter at 2 in fast mode (every committing transaction read
/// 0) and 6 otherwise (2 × 3 increments); every `k*` key written by a committed transaction,
/// and, when `one_value`, all of them by the same one.
pub(crate) async fn check(cache: &Cache, mode: TransactionMode, one_value: bool) {
    let expected = if mode == TransactionMode::Fast { 2 } else { 6 };
    assert_eq!(
        cache.get::<i64>("incr").await.unwrap(),
        Some(expected),
        "{mode:?}"
    );
    let mut finals = Vec::new();
    for key in ["key1", "key2", "key3"] {
        finals.push(cache.get::<String>(key).await.unwrap());
    }
    assert!(
        finals
            .iter()
            .all(|v| matches!(v.as_deref(), Some("v1" | "v2" | "v3"))),
        "every key written by a committed transaction: {finals:?}"
    );
    if one_value {
        assert!(
            finals.iter().all(|v| v == &finals[0]),
            "all keys from one transaction: {finals:?}"
        );
    }
}
