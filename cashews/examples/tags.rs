//! Tags and `#[cashews::invalidate]`: drop related entries together:
//! `cargo run --example tags`.
#![allow(clippy::print_stdout)]

#[cashews::cache(ttl = "1h", key = "post:{id}", tags = ["posts", "author:{author}"])]
async fn post(id: u64, author: u64) -> String {
    println!("  (loading post {id})");
    format!("post {id} by {author}")
}

#[cashews::cache(ttl = "1h", key = "user:{id}:profile")]
async fn profile(id: String) -> String {
    println!("  (loading profile {id})");
    format!("profile {id}")
}

/// After a successful rename, every cached entry of that user goes (`user:<id>:*`); the id
/// is escaped, so an id of `*` cannot delete everyone's entries.
#[cashews::invalidate(key = "user:{id}:*")]
async fn rename(id: String, name: &str) -> Result<(), std::io::Error> {
    let _ = name;
    Ok(())
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let cache = cashews::cache();
    cache.setup("mem://")?;
    post(1, 7).await;
    post(2, 8).await;
    println!("cached twice; now delete the tag `author:7`");
    cache.delete_tags(&["author:7"]).await?;
    post(1, 7).await;
    post(2, 8).await;

    profile("42".to_owned()).await;
    rename("42".to_owned(), "Ann").await.ok();
    println!("after the rename the profile is recomputed:");
    profile("42".to_owned()).await;
    Ok(())
}
