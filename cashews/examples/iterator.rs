//! `#[cashews::iterator]`: cache a stream item by item and replay it:
//! `cargo run --example iterator`.
//!
//! An export streams the rows of a slow query. Each row is stored as it goes by; only a
//! complete pass writes the end marker, so a consumer that stops early (or a stream that
//! fails midway) never leaves a truncated export behind to be replayed.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::{IteratorOptions, Plain};
use futures_util::{StreamExt, stream};

/// Rows pulled from the database: what the cache saves.
static ROWS_READ: AtomicU32 = AtomicU32::new(0);

fn rows_read() -> u32 {
    ROWS_READ.load(Ordering::SeqCst)
}

/// A plain `fn` returning a stream; the stream is built lazily, so a replay (which never
/// polls it) costs no query.
#[cashews::iterator(ttl = "10m", key = "export:{table}")]
fn export(table: &'static str) -> impl futures_core::Stream<Item = String> {
    stream::iter(1..=3).map(move |i| {
        ROWS_READ.fetch_add(1, Ordering::SeqCst);
        format!("{table} row {i}")
    })
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    // A preview stops after one row: no end marker, nothing replayable.
    let preview: Vec<String> = export("orders").take(1).collect().await;
    println!("preview: {preview:?}");
    assert_eq!(rows_read(), 1);

    let full: Vec<String> = export("orders").collect().await;
    println!("full pass: {full:?} (rows read so far: {})", rows_read());
    assert_eq!(full.len(), 3);
    assert_eq!(rows_read(), 4); // the preview did not count as a cached pass

    let replay: Vec<String> = export("orders").collect().await;
    println!("replay: {replay:?} (rows read so far: {})", rows_read());
    assert_eq!(replay, full);
    assert_eq!(rows_read(), 4);

    // The attribute expands to `cashews::strategy::iterator`. Same key: the stored rows
    // replay, and the origin stream (one that would never end) is not even polled.
    let by_hand: Vec<String> = cashews::strategy::iterator(
        cashews::cache(),
        "export:orders",
        cashews::Ttl::parse("10m")?,
        &IteratorOptions::new(),
        Plain::<String>::new(),
        stream::pending(),
    )
    .collect()
    .await;
    println!("by hand: {by_hand:?}");
    assert_eq!(by_hand, full);
    Ok(())
}
