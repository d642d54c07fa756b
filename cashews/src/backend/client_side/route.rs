//! How a command travels: over the tracking link while it is up, else over the pool, with
//! the local copies of the keys it changes dropped around it.

use std::future::Future;
use std::sync::Arc;

use super::ClientSideRedis;
use super::fence::Ticket;
use super::link::Link;
use crate::backend::RedisBackend;
use crate::error::{Error, Result};

impl ClientSideRedis {
    /// The link while it is up; otherwise `None` (and the link task is started if it was not).
    pub(super) fn link(&self) -> Option<Arc<Link>> {
        let link = self.shared.link.load_full();
        if link.is_none() {
            self.shared.start();
        }
        link
    }

    /// A read that changes nothing: over the link when up, else over the pool.
    pub(super) fn route(&self) -> (Option<Arc<Link>>, &RedisBackend) {
        let link = self.link();
        (link, &self.shared.pooled)
    }

    /// One of our own commands that changes `key` without telling us its new value: the local
    /// copy is dropped before the command is sent and again once it is answered.
    pub(super) async fn mutate<T, F, Fut>(&self, key: &str, op: F) -> Result<T>
    where
        F: FnOnce(RedisBackend) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let shared = &self.shared;
        // The ticket comes first: a link that drops after this point moves the epoch.
        let ticket = shared.fences.begin_write(key, || shared.remove_local(key));
        let Some(link) = self.link() else {
            return op(shared.pooled.clone()).await;
        };
        let out = self.checked(&link, op(link.backend.clone()).await);
        shared
            .fences
            .end_write(&ticket, |_| shared.remove_local(key));
        out
    }

    /// Several keys' version of [`ClientSideRedis::mutate`].
    pub(super) async fn mutate_many<T, F, Fut>(&self, keys: &[&str], op: F) -> Result<T>
    where
        F: FnOnce(RedisBackend) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let shared = &self.shared;
        let tickets: Vec<Ticket> = keys
            .iter()
            .map(|key| shared.fences.begin_write(key, || shared.remove_local(key)))
            .collect();
        let Some(link) = self.link() else {
            return op(shared.pooled.clone()).await;
        };
        let out = self.checked(&link, op(link.backend.clone()).await);
        for (ticket, key) in tickets.iter().zip(keys) {
            shared
                .fences
                .end_write(ticket, |_| shared.remove_local(key));
        }
        out
    }

    /// Passes a result of a command on the link through; a failure of the link itself (a
    /// dropped connection, a timeout) means invalidations may be lost too, so the link is given
    /// up (flushed, bypassed, reopened), as when it drops.
    pub(super) fn checked<T>(&self, link: &Link, result: Result<T>) -> Result<T> {
        if let Err(Error::Backend { source, .. }) = &result
            && source
                .downcast_ref::<redis::RedisError>()
                .is_some_and(link_failure)
        {
            self.shared
                .link_lost(link.generation, "a command on it failed");
        }
        result
    }

    /// A whole-prefix change of ours (`delete_match`, `clear`): once Redis answered, every fill
    /// and write in flight is fenced off and `flush` drops the local entries concerned.
    pub(super) fn settle_wide(&self, flush: impl FnOnce()) {
        self.shared.fences.new_epoch(flush);
    }
}

/// Whether an error means the link itself failed (rather than Redis refusing one command).
pub(super) fn link_failure(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}
