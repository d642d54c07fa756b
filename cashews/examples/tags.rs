//! Tags and `Cache::delete_tags`: delete related entries together, whatever their keys:
//! `cargo run --example tags`.
//!
//! A blog caches each post under `post:<id>`. When an author changes their display name,
//! every post of theirs must go; when the template changes, every post. Keys cannot be
//! matched by author (the author is not in the key), so each entry joins tags when it is
//! stored (`author:<id>`, `posts`) and `delete_tags` deletes a tag's members.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::{CacheOptions, Plain};

static LOADS: AtomicU32 = AtomicU32::new(0);

fn loads() -> u32 {
    LOADS.load(Ordering::SeqCst)
}

fn load_post(id: u64, author: u64) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("post {id} by author {author}")
}

/// Tag templates are rendered like keys: this entry joins `posts` and `author:<author>`.
#[cashews::cache(ttl = "1h", key = "post:{id}", tags = ["posts", "author:{author}"])]
async fn post(id: u64, author: u64) -> String {
    load_post(id, author)
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let cache = cashews::cache();
    cache.setup("mem://")?;
    for (id, author) in [(1, 7), (2, 8), (3, 7)] {
        post(id, author).await;
    }
    assert_eq!(loads(), 3);

    let deleted = cache.delete_tags(&["author:7"]).await?;
    println!("author 7 renamed: {deleted} entries deleted");
    assert_eq!(deleted, 2);
    for (id, author) in [(1, 7), (2, 8), (3, 7)] {
        post(id, author).await;
    }
    println!("reading the 3 posts again loaded {} of them", loads() - 3);
    assert_eq!(loads(), 5); // posts 1 and 3; post 2 was still cached

    // `tags = [...]` expands to the strategy's call wrapped in `cashews::tagged`, which
    // tags exactly the key the strategy stores (not other cached calls made inside it).
    let ttl = cashews::Ttl::parse("1h")?;
    let by_hand = cashews::tagged(
        "post:4",
        vec!["posts".to_owned(), "author:9".to_owned()],
        cashews::strategy::cache(
            cache,
            "post:4",
            ttl,
            &CacheOptions::new(),
            Plain::new(),
            async { load_post(4, 9) },
        ),
    )
    .await;
    println!("by hand: {by_hand}");

    // A plain value can join tags too.
    cache
        .set_tagged("posts:count", &4, "1h", &["posts"])
        .await?;

    let deleted = cache.delete_tags(&["posts"]).await?;
    println!("template changed: {deleted} entries deleted");
    assert_eq!(deleted, 5);
    assert!(!cache.exists("post:2").await? && !cache.exists("post:4").await?);
    Ok(())
}
