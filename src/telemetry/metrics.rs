//! The Prometheus metrics catalogue. Every name carries the `failback_` prefix and a base unit;
//! every label value known at start (phases, outcomes, configured probes, backend operations) is
//! created up front so `rate()`, `increase()` and `absent()` work from the first scrape
//! (blackbox_exporter pre-creates its label values the same way, prober/icmp.go).
//!
//! Cardinality is bounded by the config: CARP series are only created for watched `vhid@iface`
//! pairs (the driver checks before recording), and nothing from a control request becomes a label.
//!
//! "Not measured yet" is not "idle and not held": until the daemon's first step (the backend
//! measured at start) `/metrics` serves `failback_measured 0` and none of the state gauges in
//! [`STATE_FAMILIES`], so a scrape between a restart and the first step is a gap to every rule
//! (range functions skip it), never a false "released, held 0" sample. Counters are served from
//! the start: `increase()` needs their zero.

use crate::config::Config;
use crate::machine::{BackendOp, CarpState, Drift, Outcome, Phase, PHASES};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Families that describe the daemon's state: not served before the first step.
pub const STATE_FAMILIES: [&str; 15] = [
    "failback_phase",
    "failback_held_in_maintenance",
    "failback_hold_wanted",
    "failback_backend_foreign_hold",
    "failback_track_suppressed",
    "failback_release_blocked",
    "failback_probe_up",
    "failback_probe_success",
    "failback_hold_elapsed_seconds",
    "failback_hold_remaining_seconds",
    "failback_held_for_seconds",
    "failback_maintenance_since_timestamp_seconds",
    "failback_hold_deadline_timestamp_seconds",
    // Rebuilt from the persisted demotions at the first step: a 0 before it is not measured.
    "failback_track_penalty",
    "failback_track_required_stability_seconds",
];

/// A `vhid@iface` the OS polls stop reporting (its VIP was removed) loses its
/// `failback_carp_state` series after this many successful polls without it: one missed line
/// (a poll racing a reconfiguration) is not a removal.
pub const CARP_MISSED_POLLS: u32 = 3;

/// Which CARP series are shown, and how many polls in a row missed each.
#[derive(Default)]
struct CarpSeries {
    missed: HashMap<(u16, String), u32>,
    /// Removed because the polls stopped listing them.
    hidden: HashSet<(u16, String)>,
    last_poll: Option<Instant>,
}

/// The backend operations that have error and duration series.
pub const BACKEND_OPERATIONS: [&str; 3] = ["demote", "promote", "observe"];
const PROBE_RESULTS: [&str; 3] = ["success", "failure", "timeout"];
use prometheus::{
    exponential_buckets, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Phase/failback durations: 1 s .. ~4.5 h.
fn long_buckets() -> Vec<f64> {
    exponential_buckets(1.0, 2.0, 15).unwrap_or_default()
}

/// Probe latencies: 100 µs .. ~26 s.
fn probe_buckets() -> Vec<f64> {
    exponential_buckets(0.0001, 2.0, 19).unwrap_or_default()
}

/// All failbackd metrics, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub carp_transitions: IntCounterVec,
    pub carp_state: IntGaugeVec,
    pub carp_events_ignored: IntCounter,
    pub failbacks: IntCounterVec,
    pub peer_lost: IntCounter,
    pub hold_ineffective: IntCounter,
    pub master_while_held: IntCounterVec,
    pub phase: IntGaugeVec,
    pub phase_duration: HistogramVec,
    pub failback_duration: Histogram,
    pub probe_duration: HistogramVec,
    pub probe_success: IntGaugeVec,
    pub probe_up: IntGaugeVec,
    pub probe_required: IntGaugeVec,
    pub probe_attempts: IntCounterVec,
    /// Attempts by the interval they ran at (normal, fast, down): the probe load of fast
    /// confirmation (src/probe/cadence.rs).
    pub probe_attempts_by_interval: IntCounterVec,
    pub held: IntGauge,
    pub hold_wanted: IntGauge,
    pub foreign_hold: IntGauge,
    pub backend_demoted: IntGaugeVec,
    pub carp_demotion: IntGaugeVec,
    pub backend_duration: HistogramVec,
    pub drift: IntCounterVec,
    pub release_blocked: IntGaugeVec,
    pub last_failback_duration: Gauge,
    pub moments: super::moments::Moments,
    pub track_demotions: IntCounterVec,
    pub track_suppressed: IntCounterVec,
    pub track_suppressed_now: IntGauge,
    /// Dampening (src/machine/dampen.rs): the decayed penalty of tracking demotions, and the
    /// stability a failback needs before this node returns.
    pub track_penalty: Gauge,
    pub track_required_stability: Gauge,
    pub backend_errors: IntCounterVec,
    pub control_requests_dropped: IntCounter,
    pub state_file_write_errors: IntCounter,
    pub build_info: IntGaugeVec,
    /// 0 until the daemon's first step, then 1 (see the module doc).
    pub measured: IntGauge,
    /// Watched `vhid@iface` the OS reports beyond the tracked cap (not monitored).
    pub carp_unmonitored: IntGauge,
    carp_series: Arc<Mutex<CarpSeries>>,
}

macro_rules! reg {
    ($registry:expr, $metric:expr) => {{
        let m = $metric?;
        $registry.register(Box::new(m.clone()))?;
        m
    }};
}

impl Metrics {
    /// Creates and registers every metric, with the label values of `cfg` initialised.
    pub fn new(cfg: &Config, backend: &str) -> Result<Metrics, prometheus::Error> {
        let r = Registry::new();
        let o = |name: &str, help: &str| Opts::new(name, help);
        let m = Metrics {
            carp_transitions: reg!(
                r,
                IntCounterVec::new(
                    o("failback_carp_transitions_total", "CARP/VRRP transitions seen on watched VHIDs."),
                    &["vhid", "interface", "state"]
                )
            ),
            carp_state: reg!(
                r,
                IntGaugeVec::new(
                    o("failback_carp_state", "1 for the last CARP state seen on a watched vhid@interface."),
                    &["vhid", "interface", "state"]
                )
            ),
            carp_events_ignored: reg!(
                r,
                IntCounter::with_opts(o(
                    "failback_carp_events_ignored_total",
                    "CARP events for VHIDs/interfaces that are not watched."
                ))
            ),
            failbacks: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_failbacks_total",
                        "Failbacks ended, by outcome (released, forced, failed, aborted)."
                    ),
                    &["outcome"]
                )
            ),
            peer_lost: reg!(
                r,
                IntCounter::with_opts(o(
                    "failback_peer_lost_total",
                    "Failbacks during which the peer vanished and CARP made this node MASTER anyway."
                ))
            ),
            hold_ineffective: reg!(
                r,
                IntCounter::with_opts(o(
                    "failback_hold_ineffective_total",
                    "Failbacks during which this held node became MASTER while the peer answered \
                     that it could take over: the hold does not reach CARP/VRRP."
                ))
            ),
            master_while_held: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_master_while_held_total",
                        "Conclusions when a held node became MASTER, by what the peer said: lost \
                         (unreachable, or no VHID in CARP), able (it could take over: the hold \
                         is ineffective), not_ready (alive in CARP, held too or its path down: \
                         CARP elected this node), not_asked (no peer configured: lost or held \
                         too, failbackd cannot tell)."
                    ),
                    &["peer"]
                )
            ),
            phase: reg!(
                r,
                IntGaugeVec::new(
                    o("failback_phase", "1 for the current failback phase, 0 for the others."),
                    &["phase"]
                )
            ),
            phase_duration: reg!(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "failback_phase_duration_seconds",
                        "Time spent in a phase, observed on leaving it."
                    )
                    .buckets(long_buckets()),
                    &["phase"]
                )
            ),
            failback_duration: reg!(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "failback_duration_seconds",
                        "Time from arming a failback to its outcome."
                    )
                    .buckets(long_buckets())
                )
            ),
            probe_duration: reg!(
                r,
                HistogramVec::new(
                    HistogramOpts::new("failback_probe_duration_seconds", "Duration of probe attempts.")
                        .buckets(probe_buckets()),
                    &["probe", "type"]
                )
            ),
            probe_success: reg!(
                r,
                IntGaugeVec::new(
                    o("failback_probe_success", "1 if the last attempt of a probe passed."),
                    &["probe"]
                )
            ),
            probe_up: reg!(
                r,
                IntGaugeVec::new(
                    o(
                        "failback_probe_up",
                        "1 if a probe rose (rise passes in a row: what gates the release), 0 if it fell (fall failures in a row); absent while not known yet (after a start, an arm or a reload)."
                    ),
                    &["probe"]
                )
            ),
            probe_required: reg!(
                r,
                IntGaugeVec::new(
                    o("failback_probe_required", "1 if a probe must be up for a release."),
                    &["probe"]
                )
            ),
            probe_attempts: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_probe_attempts_total",
                        "Probe attempts by result (success, failure, timeout)."
                    ),
                    &["probe", "result"]
                )
            ),
            probe_attempts_by_interval: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_probe_attempts_by_interval_total",
                        "Probe attempts by the interval they were scheduled at (normal, fast, down)."
                    ),
                    &["probe", "interval"]
                )
            ),
            held: reg!(
                r,
                IntGauge::with_opts(o(
                    "failback_held_in_maintenance",
                    "1 when failbackd's own hold is in place, as last measured or confirmed by the backend."
                ))
            ),
            hold_wanted: reg!(
                r,
                IntGauge::with_opts(o(
                    "failback_hold_wanted",
                    "1 when the phase wants the node held (holding, probing, stabilizing, failed, draining)."
                ))
            ),
            foreign_hold: reg!(
                r,
                IntGauge::with_opts(o(
                    "failback_backend_foreign_hold",
                    "1 when a demotion that is not failbackd's holds the node (operator maintenance, another check)."
                ))
            ),
            backend_demoted: reg!(
                r,
                IntGaugeVec::new(
                    o(
                        "failback_backend_demoted",
                        "1 when the node is measured demoted by anything; absent when the backend cannot tell."
                    ),
                    &[]
                )
            ),
            carp_demotion: reg!(
                r,
                IntGaugeVec::new(
                    o(
                        "failback_carp_demotion",
                        "The measured demotion value (net.inet.carp.demotion, track file); absent when unknown."
                    ),
                    &[]
                )
            ),
            backend_duration: reg!(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "failback_backend_duration_seconds",
                        "Duration of backend operations (demote, promote, observe)."
                    )
                    .buckets(probe_buckets()),
                    &["operation"]
                )
            ),
            drift: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_backend_drift_total",
                        "Times failbackd's hold was found changed behind its back (added, removed)."
                    ),
                    &["direction"]
                )
            ),
            release_blocked: reg!(
                r,
                IntGaugeVec::new(
                    o(
                        "failback_release_blocked",
                        "1 for a required probe that is down while a failback is in progress: it blocks the release."
                    ),
                    &["probe"]
                )
            ),
            last_failback_duration: reg!(
                r,
                Gauge::with_opts(o(
                    "failback_last_failback_duration_seconds",
                    "Arm to outcome of the last failback that ended; 0 before any."
                ))
            ),
            moments: reg!(r, super::moments::Moments::new(cfg.max_hold)),
            track_demotions: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_track_demotions_total",
                        "Tracking demotions: a tracked probe went down while this node was MASTER."
                    ),
                    &["probe"]
                )
            ),
            track_suppressed: reg!(
                r,
                IntCounterVec::new(
                    o(
                        "failback_track_suppressed_total",
                        "Tracking demotions not made, by reason (not_master, peer_unhealthy, peer_unreachable, flap_limit)."
                    ),
                    &["reason"]
                )
            ),
            track_suppressed_now: reg!(
                r,
                IntGauge::with_opts(o(
                    "failback_track_suppressed",
                    "1 while a tracked probe is down and its demotion is suppressed (the node stays MASTER)."
                ))
            ),
            track_penalty: reg!(
                r,
                Gauge::with_opts(o(
                    "failback_track_penalty",
                    "Dampening penalty of past tracking demotions (with a peer); halves every flap_half_life."
                ))
            ),
            track_required_stability: reg!(
                r,
                Gauge::with_opts(o(
                    "failback_track_required_stability_seconds",
                    "Stability a failback needs before this node returns: stable_for, longer while dampened."
                ))
            ),
            backend_errors: reg!(
                r,
                IntCounterVec::new(
                    o("failback_backend_errors_total", "Failed backend calls (demote, promote, state)."),
                    &["backend", "operation"]
                )
            ),
            control_requests_dropped: reg!(
                r,
                IntCounter::with_opts(o(
                    "failback_control_requests_dropped_total",
                    "Control/hook requests refused because the daemon's queue was full."
                ))
            ),
            state_file_write_errors: reg!(
                r,
                IntCounter::with_opts(o(
                    "failback_state_file_write_errors_total",
                    "Failed writes of the state file (a restart or `failbackd ready` then works from a stale one)."
                ))
            ),
            build_info: reg!(
                r,
                IntGaugeVec::new(
                    o("failback_build_info", "Always 1; the version and revision of the running failbackd."),
                    &["version", "revision"]
                )
            ),
            measured: reg!(
                r,
                IntGauge::with_opts(o(
                    "failback_measured",
                    "0 until failbackd's first step (state gauges are not served before it), then 1."
                ))
            ),
            carp_unmonitored: reg!(
                r,
                IntGauge::with_opts(o(
                    "failback_carp_vhids_unmonitored",
                    "Watched vhid@interface the OS reports beyond the 64 failbackd tracks: not monitored."
                ))
            ),
            carp_series: Arc::default(),
            registry: r,
        };
        m.init(cfg, backend);
        #[cfg(target_os = "linux")]
        m.registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(m)
    }

    fn init(&self, cfg: &Config, backend: &str) {
        for p in PHASES {
            self.phase.with_label_values(&[p.as_str()]).set(i64::from(p == Phase::Idle));
            self.phase_duration.with_label_values(&[p.as_str()]);
        }
        for o in Outcome::ALL {
            self.failbacks.with_label_values(&[o.as_str()]);
        }
        self.init_probes(cfg);
        // Exact `vhid@iface` patterns are known series: create them so increase() sees the
        // first transition. Wildcard patterns create theirs on first use (bounded by the OS).
        for w in &cfg.watch {
            if let (Some(vhid), Some(iface)) = (w.vhid, w.iface.as_deref()) {
                for state in CarpState::ALL {
                    self.carp_transitions.with_label_values(&[&vhid.to_string(), iface, state.as_str()]);
                }
            }
        }
        self.init_backend(backend);
        for reason in crate::machine::SuppressReason::ALL {
            self.track_suppressed.with_label_values(&[reason.as_str()]);
        }
        for d in Drift::ALL {
            self.drift.with_label_values(&[d.as_str()]);
        }
        self.build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), revision()]).set(1);
    }

    /// Creates the error and duration series of a backend (at start and when a reload changes it).
    pub fn init_backend(&self, backend: &str) {
        for op in BACKEND_OPERATIONS {
            self.backend_errors.with_label_values(&[backend, op]);
            self.backend_duration.with_label_values(&[op]);
        }
    }

    /// Creates the series of every configured probe (at start).
    pub fn init_probes(&self, cfg: &Config) {
        for p in &cfg.probes {
            let name = p.name.as_str();
            self.probe_duration.with_label_values(&[name, p.kind.type_name()]);
            self.probe_success.with_label_values(&[name]).set(0);
            // No failback_probe_up until the probe rose or fell: not known is not down.
            self.probe_required.with_label_values(&[name]).set(i64::from(p.required));
            self.release_blocked.with_label_values(&[name]).set(0);
            // Every probe, tracked or not: the dashboard's tracking panel has a series at once.
            self.track_demotions.with_label_values(&[name]);
            for result in PROBE_RESULTS {
                self.probe_attempts.with_label_values(&[name, result]);
            }
            for pace in crate::probe::cadence::Pace::ALL {
                self.probe_attempts_by_interval.with_label_values(&[name, pace.as_str()]);
            }
        }
    }

    /// After a reload: the series of probes that are gone (or changed type) are removed, so a
    /// dropped probe no longer counts as "required and down"; new probes get theirs.
    pub fn reload_probes(&self, old: &Config, new: &Config) {
        for p in &old.probes {
            let name = p.name.as_str();
            let kept = new.probes.iter().find(|n| n.name == p.name);
            if kept.is_none_or(|n| n.kind.type_name() != p.kind.type_name()) {
                let _ = self.probe_duration.remove_label_values(&[name, p.kind.type_name()]);
            }
            if kept.is_some() {
                continue;
            }
            let _ = self.probe_success.remove_label_values(&[name]);
            let _ = self.probe_up.remove_label_values(&[name]);
            let _ = self.probe_required.remove_label_values(&[name]);
            let _ = self.release_blocked.remove_label_values(&[name]);
            let _ = self.track_demotions.remove_label_values(&[name]);
            for result in PROBE_RESULTS {
                let _ = self.probe_attempts.remove_label_values(&[name, result]);
            }
            for pace in crate::probe::cadence::Pace::ALL {
                let _ = self.probe_attempts_by_interval.remove_label_values(&[name, pace.as_str()]);
            }
        }
        for p in &new.probes {
            let name = p.name.as_str();
            self.probe_duration.with_label_values(&[name, p.kind.type_name()]);
            self.track_demotions.with_label_values(&[name]);
            self.probe_required.with_label_values(&[name]).set(i64::from(p.required));
            for result in PROBE_RESULTS {
                self.probe_attempts.with_label_values(&[name, result]);
            }
            for pace in crate::probe::cadence::Pace::ALL {
                self.probe_attempts_by_interval.with_label_values(&[name, pace.as_str()]);
            }
        }
    }

    /// Sets an optional measured gauge, or removes it when unknown.
    pub fn set_measured(gauge: &IntGaugeVec, value: Option<i64>) {
        match value {
            Some(v) => gauge.with_label_values(&[] as &[&str]).set(v),
            None => {
                let _ = gauge.remove_label_values(&[] as &[&str]);
            }
        }
    }

    /// Sets the phase gauges so exactly one is 1.
    pub fn set_phase(&self, phase: Phase) {
        for p in PHASES {
            self.phase.with_label_values(&[p.as_str()]).set(i64::from(p == phase));
        }
    }

    /// A watched VHID's state changed; `transition` counts it (a state first learned from the
    /// OS poll after a restart is shown, not counted).
    pub fn record_carp(&self, vhid: u16, iface: &str, state: CarpState, transition: bool) {
        // Just reported (a hook or a poll): not missing, whatever earlier polls said.
        let key = (vhid, iface.to_string());
        let mut series = self.carp_series();
        series.missed.remove(&key);
        series.hidden.remove(&key);
        drop(series);
        let vhid = vhid.to_string();
        let counter = self.carp_transitions.with_label_values(&[&vhid, iface, state.as_str()]);
        if transition {
            counter.inc();
        }
        self.set_carp_state(&vhid, iface, state);
    }

    fn carp_series(&self) -> std::sync::MutexGuard<'_, CarpSeries> {
        self.carp_series.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Brings `failback_carp_state` in line with what the OS reports. `known` are the states
    /// the daemon holds; `poll` is the last successful OS poll (when taken, what it listed), or
    /// `None` when the backend cannot list CARP (then nothing is ever removed). A `vhid@iface`
    /// missing from [`CARP_MISSED_POLLS`] polls in a row loses its series (a VIP that was
    /// removed: a ghost MASTER would keep FailbackPairSplitBrain firing for ever); one that is
    /// listed again gets its series back. Returns the `vhid@iface` whose series this call removed.
    pub fn sync_carp<'a>(
        &self,
        known: impl Iterator<Item = (u16, &'a str, CarpState)>,
        poll: Option<(Instant, &[(u16, &str)])>,
    ) -> Vec<(u16, String)> {
        let mut series = self.carp_series();
        let new_poll = poll.filter(|(at, _)| series.last_poll != Some(*at));
        if let Some((at, _)) = new_poll {
            series.last_poll = Some(at);
        }
        let mut removed = Vec::new();
        for (vhid, iface, state) in known {
            let key = (vhid, iface.to_string());
            if let Some((_, listed)) = new_poll {
                if listed.iter().any(|(v, i)| *v == vhid && *i == iface) {
                    series.missed.remove(&key);
                } else {
                    *series.missed.entry(key.clone()).or_insert(0) += 1;
                }
            }
            let gone = series.missed.get(&key).is_some_and(|n| *n >= CARP_MISSED_POLLS);
            let label = vhid.to_string();
            if gone && series.hidden.insert(key.clone()) {
                for s in CarpState::ALL {
                    let _ = self.carp_state.remove_label_values(&[&label, iface, s.as_str()]);
                }
                removed.push(key);
            } else if !gone && series.hidden.remove(&key) {
                self.set_carp_state(&label, iface, state);
            }
        }
        removed
    }

    fn set_carp_state(&self, vhid: &str, iface: &str, state: CarpState) {
        for s in CarpState::ALL {
            self.carp_state.with_label_values(&[vhid, iface, s.as_str()]).set(i64::from(s == state));
        }
    }

    pub fn backend_error(&self, backend: &str, op: &str) {
        self.backend_errors.with_label_values(&[backend, op]).inc();
    }

    pub fn backend_op_error(&self, backend: &str, op: BackendOp) {
        self.backend_error(backend, op.as_str());
    }

    /// The text exposition format, for /metrics. Before the first step (`failback_measured`
    /// 0) without the [`STATE_FAMILIES`].
    pub fn encode(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut families = self.registry.gather();
        if self.measured.get() == 0 {
            families.retain(|f| !STATE_FAMILIES.contains(&f.name()));
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&families, &mut buf)?;
        Ok(buf)
    }
}

/// The git revision, when the build had one (`FAILBACKD_REVISION` at compile time).
pub fn revision() -> &'static str {
    option_env!("FAILBACKD_REVISION").unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(
            "t.toml",
            "[backend]\ntype = \"simulated\"\n[[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\n",
        )
        .unwrap()
    }

    #[test]
    fn nothing_measured_is_served_before_the_first_step() {
        let m = Metrics::new(&cfg(), "simulated").unwrap();
        let text = String::from_utf8(m.encode().unwrap()).unwrap();
        assert!(text.contains("failback_measured 0"));
        assert!(text.contains("failback_uptime_seconds "), "the uptime is served from the start");
        for family in STATE_FAMILIES {
            assert!(!text.contains(&format!("{family}{{")), "{family} before the first step");
            assert!(!text.contains(&format!("\n{family} ")), "{family} before the first step");
        }
        // A restart scraped now is a gap, not "idle, held 0".
        assert!(!text.contains("failback_held_in_maintenance 0"));
        assert!(!text.contains("failback_phase{phase=\"idle\"} 1"));
    }

    #[test]
    fn known_series_exist_from_the_first_step() {
        let m = Metrics::new(&cfg(), "simulated").unwrap();
        m.measured.set(1);
        let text = String::from_utf8(m.encode().unwrap()).unwrap();
        for needle in [
            "failback_measured 1",
            "failback_phase{phase=\"idle\"} 1",
            "failback_phase{phase=\"failed\"} 0",
            "failback_failbacks_total{outcome=\"failed\"} 0",
            "failback_probe_attempts_total{probe=\"gw\",result=\"timeout\"} 0",
            "failback_probe_required{probe=\"gw\"} 1",
            "failback_probe_duration_seconds_count{probe=\"gw\",type=\"tcp\"} 0",
            "failback_backend_errors_total{backend=\"simulated\",operation=\"promote\"} 0",
            "failback_held_in_maintenance 0",
            "failback_phase_duration_seconds_count{phase=\"holding\"} 0",
            "failback_track_penalty 0",
            "failback_track_required_stability_seconds 0",
        ] {
            assert!(text.contains(needle), "missing {needle}");
        }
    }

    #[test]
    fn exact_watch_patterns_have_their_transition_series_from_the_start() {
        let cfg =
            Config::parse("t.toml", "watch = [\"2@em1\", \"*@em2\"]\n[backend]\ntype = \"simulated\"\n")
                .unwrap();
        let text = String::from_utf8(Metrics::new(&cfg, "simulated").unwrap().encode().unwrap()).unwrap();
        assert!(
            text.contains("failback_carp_transitions_total{interface=\"em1\",state=\"INIT\",vhid=\"2\"} 0")
        );
        assert!(!text.contains("interface=\"em2\""));
    }

    #[test]
    fn exactly_one_phase_is_set() {
        let m = Metrics::new(&cfg(), "simulated").unwrap();
        m.set_phase(Phase::Stabilizing);
        let ones: Vec<_> =
            PHASES.iter().filter(|p| m.phase.with_label_values(&[p.as_str()]).get() == 1).collect();
        assert_eq!(ones, vec![&Phase::Stabilizing]);
    }

    #[test]
    fn carp_state_keeps_one_state_per_vhid() {
        let m = Metrics::new(&cfg(), "simulated").unwrap();
        m.record_carp(3, "em0", CarpState::Backup, true);
        m.record_carp(3, "em0", CarpState::Master, true);
        assert_eq!(m.carp_state.with_label_values(&["3", "em0", "MASTER"]).get(), 1);
        assert_eq!(m.carp_state.with_label_values(&["3", "em0", "BACKUP"]).get(), 0);
        assert_eq!(m.carp_transitions.with_label_values(&["3", "em0", "BACKUP"]).get(), 1);
    }

    fn shown(m: &Metrics) -> Vec<String> {
        let text = String::from_utf8(m.encode().unwrap()).unwrap();
        text.lines()
            .filter(|l| l.starts_with("failback_carp_state{") && l.ends_with(" 1"))
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_vhid_the_os_stops_reporting_loses_its_series_and_gets_it_back() {
        let m = Metrics::new(&cfg(), "simulated").unwrap();
        m.measured.set(1);
        m.record_carp(1, "em0", CarpState::Master, false);
        m.record_carp(2, "em1", CarpState::Master, false);
        let known = [(1, "em0", CarpState::Master), (2, "em1", CarpState::Master)];
        let t0 = std::time::Instant::now();
        let both: &[(u16, &str)] = &[(1, "em0"), (2, "em1")];
        let only_1: &[(u16, &str)] = &[(1, "em0")];
        assert!(m.sync_carp(known.into_iter(), Some((t0, both))).is_empty());
        let mut removed = Vec::new();
        for n in 1..=CARP_MISSED_POLLS {
            let at = t0 + std::time::Duration::from_secs(u64::from(n));
            // The same poll seen again (a step without a new measurement) does not count twice.
            removed.extend(m.sync_carp(known.into_iter(), Some((at, only_1))));
            removed.extend(m.sync_carp(known.into_iter(), Some((at, only_1))));
            if n < CARP_MISSED_POLLS {
                assert_eq!(shown(&m).len(), 2, "one missed poll is not a removal");
            }
        }
        assert_eq!(removed, vec![(2, "em1".to_string())]);
        assert_eq!(
            shown(&m),
            vec!["failback_carp_state{interface=\"em0\",state=\"MASTER\",vhid=\"1\"} 1".to_string()]
        );
        let text = String::from_utf8(m.encode().unwrap()).unwrap();
        assert!(!text.lines().any(|l| l.starts_with("failback_carp_state{") && l.contains("vhid=\"2\"")));
        // The VIP comes back: listed again, its series is back with the state the daemon holds.
        let back = t0 + std::time::Duration::from_secs(60);
        assert!(m.sync_carp(known.into_iter(), Some((back, both))).is_empty());
        assert_eq!(shown(&m).len(), 2);
    }

    #[test]
    fn a_backend_that_cannot_list_carp_never_loses_a_series() {
        let m = Metrics::new(&cfg(), "simulated").unwrap();
        m.record_carp(1, "em0", CarpState::Backup, false);
        for _ in 0..10 {
            assert!(m.sync_carp([(1, "em0", CarpState::Backup)].into_iter(), None).is_empty());
        }
        m.measured.set(1);
        assert!(String::from_utf8(m.encode().unwrap())
            .unwrap()
            .contains("failback_carp_state{interface=\"em0\",state=\"BACKUP\",vhid=\"1\"} 1"));
    }
}
