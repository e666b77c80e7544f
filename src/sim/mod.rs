//! A deterministic simulation of an HA pair running failbackd, checked against the world.
//!
//! Two nodes run the real state machine ([`crate::machine::Machine`]) and the real peer
//! judgement ([`crate::daemon::peer::judge`]) against a simulated world on simulated time: per
//! node the health of each probe target, CARP with its real rules, the demotion lever with all
//! its sources, the state file, the daemon process, the peer's /status, the hooks. Faults are
//! drawn from a seed (power loss, crashes, restarts, reloads, path outages, peer trouble,
//! operators, other plugins, slow or failing backends); after every event the safety properties
//! ([`props`]) are checked against ground truth. A failure reports the seed, the property and
//! the last steps; the same seed replays it exactly. See docs/simulation.md.

mod driver;
pub mod faults;
mod lever;
pub mod props;
pub mod rng;
pub mod scenarios;
pub mod setup;
mod trace;
mod world;

pub use faults::{Change, Fault, Outage, PeerFault};
pub use setup::{Lever, Setup, Tracking};

use std::fmt;

/// Simulated time, in milliseconds since both nodes were first powered on.
pub type Ms = u64;

pub const SECOND: Ms = 1_000;
pub const MINUTE: Ms = 60_000;
pub const HOUR: Ms = 3_600_000;

/// A property that failed, with what led there.
#[derive(Debug, Clone)]
pub struct Violation {
    pub seed: u64,
    pub property: &'static str,
    /// 0 = A (the primary, advskew 0), 1 = B (the secondary, advskew 100).
    pub node: usize,
    pub at: Ms,
    pub detail: String,
    pub trace: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} violates {} on node {} at {:.3}s: {}",
            self.seed,
            self.property,
            ["A", "B"][self.node],
            self.at as f64 / 1000.0,
            self.detail
        )?;
        writeln!(f, "last steps:")?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        write!(
            f,
            "replay: FAILBACKD_SIM_SEED={} cargo test --test simulation replay -- --nocapture",
            self.seed
        )
    }
}

/// One run: the pair's setup, the faults and outages, how long.
#[derive(Debug, Clone)]
pub struct Script {
    pub seed: u64,
    pub setup: Setup,
    pub faults: Vec<(Ms, Fault)>,
    pub outages: Vec<Outage>,
    pub duration: Ms,
    /// Check only these properties (a scenario aimed at one defect); empty: all of them.
    pub only: Vec<&'static str>,
}

impl Script {
    /// Everything drawn from `seed`: the setup, the faults, the outages.
    pub fn random(seed: u64, duration: Ms) -> Script {
        let mut rng = rng::Rng::new(seed);
        let setup = Setup::random(&mut rng);
        let (faults, outages) = faults::draw(&mut rng, &setup, duration);
        Script { seed, setup, faults, outages, duration, only: Vec::new() }
    }

    /// A scripted run (the seed only drives hook loss and latencies).
    pub fn new(setup: Setup, duration: Ms) -> Script {
        Script { seed: 0, setup, faults: Vec::new(), outages: Vec::new(), duration, only: Vec::new() }
    }

    pub fn fault(mut self, at: Ms, f: Fault) -> Script {
        self.faults.push((at, f));
        self
    }

    pub fn checking(mut self, property: &'static str) -> Script {
        self.only.push(property);
        self
    }

    pub fn outage(mut self, nodes: [bool; 2], target: Option<usize>, from: Ms, to: Ms) -> Script {
        self.outages.push(Outage { nodes, target, from, to });
        self
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Events handled (each is one step of the world, most of them one machine step).
    pub events: u64,
    /// Simulated time covered.
    pub simulated: Ms,
    pub violation: Option<Violation>,
    /// With [`search`]: the first violation of each other property.
    pub later: Vec<Violation>,
}

/// Runs `script` to its end or to the first violation.
pub fn run(script: &Script) -> Report {
    run_with(script, true)
}

/// Runs `script` to its end and reports the first violation of every property (a search: later
/// ones may be consequences of earlier ones).
pub fn search(script: &Script) -> Report {
    run_with(script, false)
}

fn run_with(script: &Script, stop_at_first: bool) -> Report {
    let mut sim = world::Sim::new(script.seed, script.setup.clone(), &script.faults, script.outages.clone());
    sim.only = script.only.clone();
    sim.stop_at_first = stop_at_first;
    sim.run(script.duration);
    Report {
        events: sim.events,
        simulated: sim.now,
        violation: sim.violation.take(),
        later: std::mem::take(&mut sim.later),
    }
}
