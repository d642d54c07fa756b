//! `cashews::detect`: which parts of a piece of work the cache served:
//! `cargo run --example detect`.
//!
//! A web handler builds a page from several cached calls and wants to say in a response
//! header whether the page came from the cache, and whether any part was a fallback (a
//! stale answer from `failover`) rather than fresh data. `detect` runs the handler in a
//! scope and returns, with its output, every `(key, strategy)` a strategy served from the
//! cache meanwhile; misses record nothing.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, Ordering};

use cashews::strategy::{CacheOptions, Plain};

static PRICES_DOWN: AtomicBool = AtomicBool::new(false);

#[cashews::cache(ttl = "10m", key = "product:{id}")]
async fn product(id: u64) -> String {
    format!("product {id}")
}

#[cashews::failover(ttl = "1d", key = "price:{id}")]
async fn price(id: u64) -> Result<u64, String> {
    if PRICES_DOWN.load(Ordering::SeqCst) {
        return Err("prices service down".to_owned());
    }
    Ok(100 + id)
}

/// The handler: one attributed call, one failover call, one strategy called by hand.
async fn page(id: u64) -> String {
    let menu = cashews::strategy::cache(
        cashews::cache(),
        "menu",
        cashews::Ttl::secs(3600),
        &CacheOptions::new(),
        Plain::<String>::new(),
        async { "home | shop".to_owned() },
    )
    .await;
    let price = price(id).await.map_or_else(|e| e, |p| format!("{p} EUR"));
    format!("{menu} / {} / {price}", product(id).await)
}

/// What the response header would say.
fn x_cache(detected: &cashews::detect::Detected) -> String {
    let served = detected.served();
    if served.iter().any(|s| s.strategy == "failover") {
        "STALE".to_owned()
    } else if served.is_empty() {
        "MISS".to_owned()
    } else {
        format!("HIT {:?}", detected.keys())
    }
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    let (body, first) = cashews::detect(page(1)).await;
    println!("{body}  X-Cache: {}", x_cache(&first));
    assert!(first.is_empty()); // everything computed (failover stores, serves nothing)

    let (body, second) = cashews::detect(page(1)).await;
    println!("{body}  X-Cache: {}", x_cache(&second));
    assert_eq!(second.keys(), ["menu", "product:1"]);
    assert!(second.served().iter().all(|s| s.strategy == "simple"));

    PRICES_DOWN.store(true, Ordering::SeqCst);
    let (body, third) = cashews::detect(page(1)).await;
    println!("{body}  X-Cache: {}", x_cache(&third));
    assert!(
        third
            .served()
            .iter()
            .any(|s| s.key == "fail:price:1" && s.strategy == "failover")
    );
    Ok(())
}
