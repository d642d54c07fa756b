//! Pattern commands: `delete_match`, `scan` (alias `keys_match`) and `get_match`.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::Cache;
use crate::backend::BoxStream;
use crate::command::Command;
use crate::error::Result;

impl Cache {
    /// Deletes every key matching a Redis glob pattern (`*`, `?`, `[a-z]`, `\` escapes) on the
    /// backend that serves the pattern; returns how many were deleted.
    ///
    /// With registered tags ([`Cache::register_tag`]) the matched keys are scanned and
    /// deleted 100 at a time, each batch leaving its tag sets as with [`Cache::delete`];
    /// without, the backend deletes the matches in one command.
    ///
    /// # Errors
    ///
    /// As [`Cache::get`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("user:1", "a", 60).await?;
    /// cache.set("user:2", "b", 60).await?;
    /// assert_eq!(cache.delete_match("user:*").await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn delete_match(&self, pattern: &str) -> Result<u64> {
        if self.inner.tag_registry.is_active() {
            return Box::pin(self.delete_match_untagging(pattern)).await;
        }
        self.keyed(Command::DeleteMatch, pattern, |route| async move {
            route.backend.delete_match(pattern).await
        })
        .await
    }

    /// Streams the keys matching a Redis glob pattern, on the backend that serves the pattern.
    ///
    /// # Errors
    ///
    /// The stream yields backend failures (none in safe mode: it ends instead).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("user:1", "a", 60).await?;
    /// let keys: Vec<String> = cache.scan("user:*").map(|k| k.unwrap()).collect().await;
    /// assert_eq!(keys, vec!["user:1".to_owned()]);
    /// # Ok(()) }
    /// ```
    pub fn scan(&self, pattern: &str) -> BoxStream<Result<String>> {
        let route = match self.route_for(pattern) {
            Ok(route) => route,
            Err(e) => return Box::pin(futures_util::stream::iter([Err(e)])),
        };
        if self.is_off(&route, Command::Scan) {
            return Box::pin(futures_util::stream::empty());
        }
        let stream = route.backend.scan(pattern, 100);
        if !route.suppress {
            return stream;
        }
        let pattern = pattern.to_owned();
        Box::pin(stream.scan((), move |(), item| {
            let next = match item {
                Err(error) if error.is_backend() => {
                    crate::error::log_swallowed!(error, backend = route.name(), command = %Command::Scan, %pattern, %error, "cache backend failed; safe mode ends the scan");
                    None
                }
                other => Some(other),
            };
            std::future::ready(next)
        }))
    }

    /// Alias of [`Cache::scan`] (the cashews 2.x name).
    ///
    /// ```
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let _keys = cache.keys_match("user:*");
    /// # Ok::<(), cashews::Error>(())
    /// ```
    pub fn keys_match(&self, pattern: &str) -> BoxStream<Result<String>> {
        self.scan(pattern)
    }

    /// Streams `(key, value)` pairs for the keys matching a pattern, skipping keys that vanish
    /// during the scan and values that do not decode as `T`.
    ///
    /// # Errors
    ///
    /// The stream yields backend failures (outside safe mode).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// cache.set("n:1", &1, 60).await?;
    /// let pairs: Vec<(String, i32)> = cache.get_match("n:*").map(|p| p.unwrap()).collect().await;
    /// assert_eq!(pairs, vec![("n:1".to_owned(), 1)]);
    /// # Ok(()) }
    /// ```
    pub fn get_match<T: DeserializeOwned + Send + 'static>(
        &self,
        pattern: &str,
    ) -> BoxStream<Result<(String, T)>> {
        let route = match self.route_for(pattern) {
            Ok(route) => route,
            Err(e) => return Box::pin(futures_util::stream::iter([Err(e)])),
        };
        if self.is_off(&route, Command::GetMatch) {
            return Box::pin(futures_util::stream::empty());
        }
        if super::further::active() {
            // Inside `invalidate_further`: delete the matches and yield nothing.
            let cache = self.clone();
            let pattern = pattern.to_owned();
            return Box::pin(
                futures_util::stream::once(async move {
                    if let Err(error) = cache.delete_match(&pattern).await {
                        tracing::error!(%error, "invalidate_further could not delete the matches");
                    }
                })
                .filter_map(|()| async { None }),
            );
        }
        let keys = self.scan(pattern);
        Box::pin(
            keys.chunks(100)
                .then(move |chunk| {
                    let route = Arc::clone(&route);
                    async move {
                        let keys: Vec<String> = chunk.into_iter().collect::<Result<_>>()?;
                        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                        let result = route.backend.get_many(&refs).await;
                        let Some(values) =
                            Self::settle(&route, Command::GetMatch, "", result.map(Some))?
                        else {
                            return Ok(Vec::new());
                        };
                        Ok(keys
                            .into_iter()
                            .zip(values)
                            .filter_map(|(key, raw)| {
                                let value = route.codec.decode::<T>(&key, route.name(), &raw?)?;
                                Some((key, value))
                            })
                            .collect::<Vec<_>>())
                    }
                })
                .flat_map(|batch: Result<Vec<(String, T)>>| {
                    futures_util::stream::iter(match batch {
                        Ok(pairs) => pairs.into_iter().map(Ok).collect::<Vec<_>>(),
                        Err(e) => vec![Err(e)],
                    })
                }),
        )
    }
}
