//! Resident memory for 1M entries and hit ratio on a Zipf trace, `mem://` beside moka and
//! quick_cache in one run: `cargo bench -p cashews-benches --bench footprint`.
//!
//! Memory: each implementation is measured in its own child process (this binary re-executed
//! with `--child <impl>`), as the growth of resident memory after inserting 1M entries with
//! 16-byte keys and 100-byte values. Hit ratio: a Zipf(0.9) trace of 2M requests over 1M keys,
//! with room for 1 % of the keys; a miss inserts the key.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::process::Command;

use cashews::Cache;
use cashews_benches::runtime;
use rand::SeedableRng;
use rand_distr::Distribution;

const ENTRIES: u64 = 1_000_000;
const IMPLS: [&str; 3] = ["cashews-mem", "moka", "quick_cache"];

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn key(i: u64) -> String {
    format!("key:{i:012}")
}

fn child(which: &str) {
    let rt = runtime();
    let value = vec![42u8; 100];
    let before = resident_bytes();
    let keep: Box<dyn std::any::Any> = match which {
        "cashews-mem" => {
            let cache = Cache::new();
            cache
                .setup(&format!("mem://?size={ENTRIES}&check_interval=0"))
                .unwrap();
            let v = serde_bytes::ByteBuf::from(value);
            rt.block_on(async {
                for i in 0..ENTRIES {
                    cache.set(&key(i), &v, None::<u64>).await.unwrap();
                }
            });
            let held = rt.block_on(cache.get_keys_count()).unwrap();
            Box::new((cache, held))
        }
        "moka" => {
            let cache: moka::future::Cache<String, Vec<u8>> = moka::future::Cache::new(ENTRIES);
            rt.block_on(async {
                for i in 0..ENTRIES {
                    cache.insert(key(i), value.clone()).await;
                }
                cache.run_pending_tasks().await;
            });
            let held = cache.entry_count();
            Box::new((cache, held))
        }
        "quick_cache" => {
            let cache: quick_cache::sync::Cache<String, Vec<u8>> =
                quick_cache::sync::Cache::new(ENTRIES as usize);
            for i in 0..ENTRIES {
                cache.insert(key(i), value.clone());
            }
            let held = cache.len() as u64;
            Box::new((cache, held))
        }
        other => panic!("unknown implementation {other}"),
    };
    let after = resident_bytes();
    let held = keep
        .downcast_ref::<(Cache, u64)>()
        .map(|(_, n)| *n)
        .or_else(|| {
            keep.downcast_ref::<(moka::future::Cache<String, Vec<u8>>, u64)>()
                .map(|(_, n)| *n)
        })
        .or_else(|| {
            keep.downcast_ref::<(quick_cache::sync::Cache<String, Vec<u8>>, u64)>()
                .map(|(_, n)| *n)
        })
        .unwrap_or(0);
    println!("{} {held}", after.saturating_sub(before));
    drop(keep);
}

fn hit_ratio(which: &str) -> f64 {
    const KEYS: u64 = 1_000_000;
    const CAPACITY: u64 = KEYS / 100;
    const REQUESTS: usize = 2_000_000;
    let zipf = rand_distr::Zipf::new(KEYS as f64, 0.9).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let trace: Vec<u64> = (0..REQUESTS)
        .map(|_| zipf.sample(&mut rng) as u64)
        .collect();
    let rt = runtime();
    let mut hits = 0usize;
    match which {
        "cashews-mem" => {
            let cache = Cache::new();
            cache
                .setup(&format!("mem://?size={CAPACITY}&check_interval=0"))
                .unwrap();
            rt.block_on(async {
                for k in &trace {
                    let k = key(*k);
                    if cache.get::<u8>(&k).await.unwrap().is_some() {
                        hits += 1;
                    } else {
                        cache.set(&k, &1u8, None::<u64>).await.unwrap();
                    }
                }
            });
        }
        "moka" => {
            let cache: moka::future::Cache<String, u8> = moka::future::Cache::new(CAPACITY);
            rt.block_on(async {
                for k in &trace {
                    let k = key(*k);
                    if cache.get(&k).await.is_some() {
                        hits += 1;
                    } else {
                        cache.insert(k, 1).await;
                    }
                }
            });
        }
        "quick_cache" => {
            let cache: quick_cache::sync::Cache<String, u8> =
                quick_cache::sync::Cache::new(CAPACITY as usize);
            for k in &trace {
                let k = key(*k);
                if cache.get(&k).is_some() {
                    hits += 1;
                } else {
                    cache.insert(k, 1);
                }
            }
        }
        other => panic!("unknown implementation {other}"),
    }
    hits as f64 / REQUESTS as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(&args[pos + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    println!(
        "| implementation | resident MB after 1M inserts | entries held | Zipf(0.9) hit ratio, 1% capacity |"
    );
    println!("|---|---|---|---|");
    for which in IMPLS {
        let out = Command::new(&exe)
            .args(["--child", which])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        let (bytes, held) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        let ratio = hit_ratio(which);
        println!(
            "| {which} | {:.0} | {held} | {ratio:.3} |",
            bytes as f64 / 1_000_000.0
        );
    }
}
