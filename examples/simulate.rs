//! A long search of the pair simulation (docs/simulation.md): runs seeds and prints each
//! violation with its seed, property and trace, then a table of what failed.
//!
//! ```text
//! cargo run --release --example simulate -- --seeds 10000 [--from 0] [--hours 6] [--quiet]
//! cargo run --release --example simulate -- --seed 123 [--property liveness]  # full traces
//! cargo run --release --example simulate -- --scenario d1 [--all]       # a scripted scenario
//! ```

use failbackd::sim::{self, scenarios, HOUR};
use std::collections::BTreeMap;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hours = arg(&args, "--hours").unwrap_or(6);
    let quiet = args.iter().any(|a| a == "--quiet");
    if let Some(i) = args.iter().position(|a| a == "--scenario") {
        let name = args.get(i + 1).map(String::as_str).unwrap_or("");
        let Some(s) = scenarios::ALL.iter().find(|s| s.name.contains(name)) else {
            eprintln!(
                "no scenario matches {name:?}; known: {:?}",
                scenarios::ALL.iter().map(|s| s.name).collect::<Vec<_>>()
            );
            std::process::exit(2);
        };
        let mut script = (s.script)();
        if args.iter().any(|a| a == "--all") {
            script.only.clear(); // every property, every violation
        }
        let r = sim::search(&script);
        if r.violation.is_none() {
            println!("{}: no violation in {:.1} simulated hours", s.name, r.simulated as f64 / HOUR as f64);
        }
        for v in r.violation.into_iter().chain(r.later) {
            println!("{}: {v}\n", s.name);
        }
        return;
    }
    let (from, count) = match arg(&args, "--seed") {
        Some(s) => (s, 1),
        None => (arg(&args, "--from").unwrap_or(0), arg(&args, "--seeds").unwrap_or(100)),
    };
    let started = Instant::now();
    let mut events = 0;
    let mut simulated = 0;
    let mut found: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for seed in from..from + count {
        let script = sim::Script::random(seed, hours * HOUR);
        if count == 1 {
            println!("{:?}", script.setup);
            for (at, f) in &script.faults {
                println!("  fault at {:.3}s: {f:?}", *at as f64 / 1000.0);
            }
            for o in &script.outages {
                println!(
                    "  outage {:?} {:?} {:.3}s..{:.3}s",
                    o.nodes,
                    o.target,
                    o.from as f64 / 1000.0,
                    o.to as f64 / 1000.0
                );
            }
        }
        let r = sim::search(&script);
        events += r.events;
        simulated += r.simulated;
        let only = args.iter().position(|a| a == "--property").and_then(|i| args.get(i + 1));
        for v in r.violation.into_iter().chain(r.later) {
            if only.is_some_and(|p| p != v.property) {
                continue;
            }
            if !quiet || count == 1 || only.is_some() {
                println!("{v}\n");
            } else {
                println!(
                    "seed {seed}: {} at {:.3}s on {}: {}",
                    v.property,
                    v.at as f64 / 1000.0,
                    ["A", "B"][v.node],
                    v.detail
                );
            }
            found.entry(v.property).or_default().push(seed);
        }
    }
    let cpu = started.elapsed().as_secs_f64();
    let pair_hours = simulated as f64 / HOUR as f64;
    println!(
        "{count} seeds, {pair_hours:.0} simulated pair-hours, {events} events in {cpu:.2} s: {:.0} pair-hours per second",
        pair_hours / cpu.max(1e-9)
    );
    for (property, seeds) in &found {
        let shown: Vec<String> = seeds.iter().take(10).map(u64::to_string).collect();
        println!("{property}: {} seeds (first: {})", seeds.len(), shown.join(", "));
    }
}
