//! What a transaction costs on `mem://`: a `set` then a `get` of the same key, outside any
//! transaction and inside an open fast one (the write goes to the transaction's pending
//! writes, the read finds it there), plus a whole fast transaction per pair (open, set, get,
//! commit). Measured interleaved in one process: each round runs every contender once, in an
//! order rotated per round; the figures are per-round ratios to "outside" (median, min–max).
//!
//! Run: `cargo bench -p cashews-benches --bench transaction` (`ROUNDS=n`, `ITERS=n` to change
//! the sample).

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use cashews::transaction::TransactionMode;
use cashews::{Cache, Error};
use cashews_benches::{User, env_or, median};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    Outside,
    Inside,
    PerPair,
}

const CONTENDERS: [(&str, Contender); 3] = [
    ("outside", Contender::Outside),
    ("inside a fast transaction", Contender::Inside),
    ("one fast transaction per pair", Contender::PerPair),
];

async fn pair(cache: &Cache, user: &User) {
    cache.set(black_box("user"), user, "1h").await.unwrap();
    let read: Option<User> = cache.get(black_box("user")).await.unwrap();
    black_box(read);
}

/// Nanoseconds per `set` + `get` pair over `iters` pairs.
async fn measure(cache: &Cache, contender: Contender, iters: u32) -> f64 {
    let user = User::sample(7);
    let elapsed = match contender {
        Contender::Outside => {
            let started = Instant::now();
            for _ in 0..iters {
                pair(cache, &user).await;
            }
            started.elapsed()
        }
        Contender::Inside => cache
            .transaction()
            .mode(TransactionMode::Fast)
            .run(async {
                let started = Instant::now();
                for _ in 0..iters {
                    pair(cache, &user).await;
                }
                Ok::<Duration, Error>(started.elapsed())
            })
            .await
            .unwrap(),
        Contender::PerPair => {
            let started = Instant::now();
            for _ in 0..iters {
                cache
                    .transaction()
                    .mode(TransactionMode::Fast)
                    .run(async {
                        pair(cache, &user).await;
                        Ok::<(), Error>(())
                    })
                    .await
                    .unwrap();
            }
            started.elapsed()
        }
    };
    elapsed.as_nanos() as f64 / f64::from(iters)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 2 } else { env_or("ROUNDS", 31) } as usize;
    let iters = if quick {
        1_000
    } else {
        env_or("ITERS", 50_000)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    let n = CONTENDERS.len();
    runtime.block_on(async {
        for (_, contender) in CONTENDERS {
            measure(&cache, contender, iters).await; // warm up
        }
    });
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let ns = runtime.block_on(measure(&cache, CONTENDERS[i].1, iters));
            times[i].push(ns);
        }
    }
    println!("mem `set` + `get`, {rounds} rounds x {iters} pairs, interleaved (order rotated)");
    println!(
        "{:<30} {:>10} {:>12} {:>18}",
        "contender", "median ns", "vs outside", "ratio min-max"
    );
    for i in 0..n {
        let mut ratios: Vec<f64> = times[i].iter().zip(&times[0]).map(|(t, b)| t / b).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let ratio = median(&mut ratios);
        let ns = median(&mut times[i].clone());
        println!(
            "{:<30} {ns:>10.1} {ratio:>10.3}x {lo:>8.3}-{hi:.3}",
            CONTENDERS[i].0
        );
    }
}
