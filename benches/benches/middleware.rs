//! What a route's middlewares and observers cost on a memory hit, measured interleaved in one
//! process: each round runs every contender once, in an order rotated per round, and the
//! figures are per-round ratios to the route with no stage (median, with min–max).
//!
//! Run: `cargo bench -p cashews-benches --bench middleware` (`ROUNDS=n`, `ITERS=n` to change
//! the sample; `ONLY=<route>` runs one route alone, for `perf stat`).

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use cashews::Cache;
use cashews::middleware::{self, Event, Next, Observer, Request, Stage};
use cashews_benches::{User, env_or, median};
use futures_util::FutureExt;

/// An observer doing nothing and asking for no durations: the cheapest stage there is.
struct Noop;

impl Observer for Noop {
    fn observe(&self, event: &Event<'_>) {
        black_box(event);
    }
    fn timed(&self) -> bool {
        false
    }
}

fn contenders() -> Vec<(&'static str, Cache)> {
    let setups: Vec<(&'static str, Vec<Stage>)> = vec![
        ("none", vec![]),
        ("noop observer", vec![Stage::observe(Noop)]),
        (
            "timed observer",
            vec![middleware::observe(|e| {
                black_box(e);
            })],
        ),
        (
            "pass-through middleware",
            vec![middleware::from_fn(|r: Request, n: Next| n.run(r))],
        ),
    ];
    setups
        .into_iter()
        .map(|(name, stages)| {
            let cache = Cache::new();
            cache.setup_with("mem://", stages).unwrap();
            cache
                .set("user", &User::sample(7), "1h")
                .now_or_never()
                .expect("a memory set completes at once")
                .unwrap();
            (name, cache)
        })
        .collect()
}

/// Nanoseconds per `get` hit over `iters` calls.
fn measure(cache: &Cache, iters: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..iters {
        let user = cache
            .get::<User>(black_box("user"))
            .now_or_never()
            .expect("a memory hit completes at once")
            .unwrap();
        black_box(user);
    }
    started.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 2 } else { env_or("ROUNDS", 31) } as usize;
    let iters = if quick {
        1_000
    } else {
        env_or("ITERS", 200_000)
    };
    let contenders = Arc::new(contenders());
    let n = contenders.len();
    if let Ok(only) = std::env::var("ONLY") {
        // One contender alone, for `perf stat` (instructions per call).
        let (_, cache) = contenders
            .iter()
            .find(|(name, _)| *name == only)
            .expect("ONLY names a route");
        for _ in 0..rounds {
            measure(cache, iters);
        }
        return;
    }
    for (_, cache) in contenders.iter() {
        measure(cache, iters); // warm up
    }
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            times[i].push(measure(&contenders[i].1, iters));
        }
    }
    println!("mem `get` hit, {rounds} rounds x {iters} calls, interleaved (order rotated)");
    println!(
        "{:<26} {:>10} {:>12} {:>18}",
        "route", "median ns", "vs none", "ratio min-max"
    );
    for i in 0..n {
        let mut ratios: Vec<f64> = times[i].iter().zip(&times[0]).map(|(t, b)| t / b).collect();
        let mut extra: Vec<f64> = times[i].iter().zip(&times[0]).map(|(t, b)| t - b).collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let ratio = median(&mut ratios);
        let extra = median(&mut extra);
        let ns = median(&mut times[i].clone());
        println!(
            "{:<26} {ns:>10.1} {ratio:>8.3}x {extra:>+6.1}ns {lo:>8.3}-{hi:.3}",
            contenders[i].0
        );
    }
}
