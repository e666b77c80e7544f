//! The status snapshot served at GET /status and over the control socket, and its rendering
//! for people (`failbackd status`).

use serde::{Deserialize, Serialize};

/// What the daemon is doing, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Status {
    pub phase: String,
    /// Unix time the phase began.
    pub since: f64,
    pub backend: String,
    /// Whether failbackd's hold is in place, as last measured or confirmed by a backend call
    /// (`null`: unknown).
    pub demoted: Option<bool>,
    /// Whether the phase wants the hold (`null`: the phase leaves the backend alone).
    #[serde(default)]
    pub wanted_demoted: Option<bool>,
    /// The last successful measurement of the backend (`null`: none yet).
    #[serde(default)]
    pub measured: Option<MeasuredStatus>,
    pub failback: Option<FailbackStatus>,
    pub last_outcome: Option<String>,
    /// How many failbacks have ended since the daemon started.
    pub failbacks_ended: u64,
    pub probes: Vec<ProbeStatus>,
    pub carp: Vec<CarpStatus>,
    /// This daemon process's id ([`node_id`]): a peer that gets its own id back asked itself.
    #[serde(default)]
    pub node: String,
    /// Seconds since the daemon loop last ran, as of this answer (HTTP /status only; `null`
    /// elsewhere). Past `loop_stale_after_s` the snapshot is stale: the loop is wedged.
    #[serde(default)]
    pub loop_age_s: Option<f64>,
    #[serde(default)]
    pub loop_stale_after_s: Option<f64>,
}

impl Status {
    /// Whether the answer comes from a daemon whose loop stopped running (its snapshot is old).
    pub fn stale(&self) -> bool {
        matches!((self.loop_age_s, self.loop_stale_after_s), (Some(age), Some(limit)) if age > limit)
    }
}

/// This process's random id, served in /status so that a node can tell that its `peer` URL
/// reached itself (NAT, a wildcard listener, a copied config) instead of the other node.
pub fn node_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS's randomness; pid and time make two processes
        // differ even if it were not.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        format!("{:016x}", h.finish())
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailbackStatus {
    pub id: u64,
    pub trigger: String,
    /// Unix time it armed.
    pub armed: f64,
    /// Unix time `max_hold` ends.
    pub hold_deadline: f64,
    /// Seconds since it armed (monotonic, across restarts).
    #[serde(default)]
    pub elapsed_s: f64,
    /// Seconds until `max_hold` ends.
    #[serde(default)]
    pub remaining_s: f64,
    pub peer_lost: bool,
    /// CARP made this held node MASTER, and it was not a lost peer: `peer_not_ready` (the peer,
    /// alive in CARP, could not take over either: held too after a simultaneous boot, or its
    /// path down) or `peer_not_asked` (no peer configured: gone or held too, unknown).
    #[serde(default)]
    pub master_while_held: Option<String>,
    /// Required probes that are not up.
    pub blockers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub required: bool,
    /// Tracking: this probe going down demotes a MASTER.
    #[serde(default)]
    pub tracked: bool,
    pub up: bool,
    pub passes: u32,
    pub fails: u32,
    pub last_ok: Option<bool>,
    pub last_latency_ms: Option<f64>,
    pub last_error: Option<String>,
}

/// What the backend measured, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredStatus {
    /// failbackd's lever (`null`: the backend cannot tell).
    pub held: Option<bool>,
    /// The lever is held by someone else (an operator's maintenance mode).
    pub foreign: bool,
    /// Demoted by anything at all.
    pub demoted: Option<bool>,
    /// The raw value (net.inet.carp.demotion, the track file).
    pub demotion: Option<i64>,
    /// Other demotion sources.
    pub others: Vec<String>,
    /// Unix time of the measurement.
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarpStatus {
    pub vhid: u16,
    pub iface: String,
    pub state: String,
}

impl Status {
    /// The exit code of `failbackd status`: 0 released/idle, 1 holding (or draining), 2 failed.
    pub fn exit_code(&self) -> i32 {
        match self.phase.as_str() {
            "idle" | "released" => 0,
            "failed" => 2,
            _ => 1,
        }
    }

    /// The hold line: measured and wanted side by side when they differ, and how old the
    /// measurement is.
    fn render_hold(&self, now: f64, word: &dyn Fn(Option<bool>) -> &'static str) -> String {
        let age =
            |t: f64| humantime::format_duration(std::time::Duration::from_secs((now - t).max(0.0) as u64));
        let mut line = match &self.measured {
            Some(m) => {
                let mut l = format!("hold      {} (measured {} ago", word(m.held), age(m.at));
                if let Some(d) = m.demotion {
                    l.push_str(&format!(", demotion {d}"));
                }
                l.push(')');
                if m.foreign {
                    l.push_str(", not failbackd's: left alone");
                }
                l
            }
            None => format!("hold      {} (not measured yet)", word(self.demoted)),
        };
        let measured = self.measured.as_ref().and_then(|m| m.held).or(self.demoted);
        if let Some(wanted) = self.wanted_demoted.filter(|w| Some(*w) != measured) {
            line.push_str(&format!("; wanted {}", word(Some(wanted))));
        }
        if let Some(m) = self.measured.as_ref().filter(|m| !m.others.is_empty()) {
            line.push_str(&format!("\n          other demotion: {}", m.others.join("; ")));
        }
        line
    }

    /// A compact table for people; `now` is the current Unix time.
    pub fn render(&self, now: f64) -> String {
        use std::fmt::Write;
        let ago =
            |t: f64| humantime::format_duration(std::time::Duration::from_secs((now - t).max(0.0) as u64));
        let mut s = String::new();
        let word = |d: Option<bool>| match d {
            Some(true) => "held",
            Some(false) => "not held",
            None => "unknown",
        };
        let _ = writeln!(s, "phase     {} (for {}), backend {}", self.phase, ago(self.since), self.backend);
        let _ = writeln!(s, "{}", self.render_hold(now, &word));
        if let Some(fb) = &self.failback {
            let left = humantime::format_duration(std::time::Duration::from_secs(
                (fb.hold_deadline - now).max(0.0) as u64,
            ));
            let _ = writeln!(
                s,
                "failback  #{} by {}, held {}, max hold in {left}",
                fb.id,
                fb.trigger,
                ago(fb.armed)
            );
            if fb.peer_lost {
                let _ = writeln!(s, "          peer lost during the hold: this node is MASTER anyway");
            } else if let Some(why) = &fb.master_while_held {
                let what = match why.as_str() {
                    "peer_not_ready" => "the peer cannot take over either (held too, or its path is down)",
                    _ => "no peer to ask (gone, or held too)",
                };
                let _ = writeln!(s, "          MASTER while held: {what}");
            }
            if !fb.blockers.is_empty() {
                let _ = writeln!(s, "waiting   {}", fb.blockers.join(", "));
            }
        }
        if let Some(o) = &self.last_outcome {
            let _ = writeln!(s, "last      {o}");
        }
        if !self.probes.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<16} {:<8} {:<5} {:>5} {:>5} {:>9}  LAST ERROR",
                "PROBE", "TYPE", "UP", "PASS", "FAIL", "LATENCY"
            );
            for p in &self.probes {
                let up = if p.up { "up" } else { "down" };
                let mut name = p.name.clone();
                if !p.required {
                    name.push_str(" (opt)");
                }
                if p.tracked {
                    name.push_str(" (trk)");
                }
                let lat = p.last_latency_ms.map_or("-".to_string(), |l| format!("{l:.1}ms"));
                let _ = writeln!(
                    s,
                    "{name:<16} {:<8} {up:<5} {:>5} {:>5} {lat:>9}  {}",
                    p.kind,
                    p.passes,
                    p.fails,
                    p.last_error.as_deref().unwrap_or("")
                );
            }
        }
        if !self.carp.is_empty() {
            let carp: Vec<String> =
                self.carp.iter().map(|c| format!("{}@{} {}", c.vhid, c.iface, c.state)).collect();
            let _ = writeln!(s, "\ncarp      {}", carp.join(", "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_phase() {
        let st = |p: &str| Status { phase: p.into(), ..Default::default() };
        assert_eq!(st("released").exit_code(), 0);
        assert_eq!(st("idle").exit_code(), 0);
        assert_eq!(st("probing").exit_code(), 1);
        assert_eq!(st("draining").exit_code(), 1);
        assert_eq!(st("failed").exit_code(), 2);
    }

    #[test]
    fn render_names_blockers_and_probes() {
        let s = Status {
            phase: "probing".into(),
            since: 100.0,
            backend: "simulated".into(),
            demoted: Some(true),
            failback: Some(FailbackStatus {
                id: 2,
                trigger: "boot".into(),
                armed: 100.0,
                hold_deadline: 1000.0,
                elapsed_s: 30.0,
                remaining_s: 870.0,
                peer_lost: false,
                master_while_held: None,
                blockers: vec!["wan".into()],
            }),
            probes: vec![ProbeStatus {
                name: "wan".into(),
                kind: "icmp".into(),
                target: "198.51.100.1".into(),
                required: true,
                tracked: false,
                up: false,
                passes: 0,
                fails: 4,
                last_ok: Some(false),
                last_latency_ms: Some(1000.0),
                last_error: Some("timed out after 1s".into()),
            }],
            ..Default::default()
        };
        let text = s.render(130.0);
        assert!(text.contains("phase     probing (for 30s)"), "{text}");
        assert!(text.contains("waiting   wan"), "{text}");
        assert!(text.contains("timed out after 1s"), "{text}");
    }
}
