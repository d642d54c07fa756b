//! The process-wide default [`Cache`], the one the attribute macros use unless told otherwise.

use std::sync::OnceLock;

use super::Cache;

static DEFAULT: OnceLock<Cache> = OnceLock::new();

/// The process-wide default cache, unconfigured until its first `setup`.
///
/// Like Python's `from cashews import cache`: configure it once at start-up, use it anywhere.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// cashews::cache().set("greeting", "hello", "1m").await?;
/// assert_eq!(cashews::cache().get::<String>("greeting").await?.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
pub fn cache() -> &'static Cache {
    DEFAULT.get_or_init(Cache::new)
}
