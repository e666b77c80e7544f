//! Turning the machine's records into metrics, log lines and spans, and publishing /status.

use super::Daemon;
use crate::machine::{Phase, Record};
use crate::status::{CarpStatus, FailbackStatus, MeasuredStatus, ProbeStatus, Status};
use crate::telemetry::moments::{now, unix_at};
use std::time::Instant;

impl Daemon {
    /// `failback_probe_up` from the machine's tally: 1 when the probe rose, 0 when it fell, and
    /// no series while it is not known yet (after a start, an arm or a reload: "unknown" is never
    /// "down", so no alert reads a fresh tally as a dead path). Returns what was published.
    pub(super) fn publish_probe_up(&self, probe: usize) -> Option<bool> {
        let (Some(p), Some(t)) = (self.cfg.probes.get(probe), self.machine.probe(probe)) else { return None };
        let gauge = &self.metrics.probe_up;
        let known = if t.up {
            Some(true)
        } else if t.fell {
            Some(false)
        } else {
            None
        };
        match known {
            Some(up) => gauge.with_label_values(&[p.name.as_str()]).set(i64::from(up)),
            None => {
                let _ = gauge.remove_label_values(&[p.name.as_str()]);
            }
        }
        known
    }

    pub(super) fn record(&mut self, now: Instant, record: &Record) {
        let m = &self.metrics;
        match record {
            Record::PhaseChanged { from, to, held_for } => {
                m.set_phase(*to);
                m.phase_duration.with_label_values(&[from.as_str()]).observe(held_for.as_secs_f64());
                self.spans.phase(*to);
                self.track_maintenance(now, *to);
                tracing::info!(
                    phase = to.as_str(),
                    from = from.as_str(),
                    after_s = held_for.as_secs_f64(),
                    failback = self.machine.failback().map(|f| f.id),
                    "phase changed"
                );
                if *to == Phase::Failed {
                    tracing::error!(
                        "max_hold reached with probes still failing: the node stays demoted until they pass \
                         for stable_for; check `failbackd status`, then fix the path or \
                         `failbackd release --force`"
                    );
                }
            }
            Record::FailbackStarted { failback, trigger } => {
                self.spans.started(*failback, trigger);
                tracing::info!(failback, trigger = %trigger, "failback armed: holding the node demoted");
            }
            Record::FailbackEnded { failback, outcome, duration, peer_lost } => {
                m.failbacks.with_label_values(&[outcome.as_str()]).inc();
                m.failback_duration.observe(duration.as_secs_f64());
                m.last_failback_duration.set(duration.as_secs_f64());
                self.spans.ended(*outcome, *duration);
                tracing::info!(
                    failback,
                    outcome = outcome.as_str(),
                    duration_s = duration.as_secs_f64(),
                    peer_lost,
                    "failback ended"
                );
            }
            Record::PeerLost { failback } => {
                m.peer_lost.inc();
                m.master_while_held.with_label_values(&["lost"]).inc();
                self.spans.peer_lost();
                tracing::warn!(
                    failback,
                    "a watched VHID became MASTER while held: the peer is gone; not fighting it"
                );
            }
            Record::PeerNotAsked { failback } => {
                m.master_while_held.with_label_values(&["not_asked"]).inc();
                tracing::warn!(
                    failback,
                    "a watched VHID became MASTER while held, and there is no peer to ask: the peer \
                     is gone or held too (a simultaneous boot); not fighting it"
                );
            }
            Record::PeerNotReady { failback } => {
                m.master_while_held.with_label_values(&["not_ready"]).inc();
                tracing::warn!(
                    failback,
                    "a watched VHID became MASTER while held, and the peer says it cannot take over \
                     either (held too, or its path is down): CARP elected this node; not fighting it"
                );
            }
            Record::HoldIneffective { failback } => {
                m.hold_ineffective.inc();
                m.master_while_held.with_label_values(&["able"]).inc();
                tracing::error!(
                    failback,
                    "a watched VHID became MASTER while held, and the peer says it could take over: \
                     the hold does not reach CARP/VRRP (check the backend's wiring, e.g. keepalived's \
                     track_file); this node carries the traffic before its probes passed"
                );
            }
            Record::ProbeChanged { probe, .. } => {
                let Some(p) = self.cfg.probes.get(*probe) else { return };
                // The tally after the step is the truth: up (rose), down (fell) or, after an arm
                // or a reload, not known yet, which is never reported as down.
                let known = self.publish_probe_up(*probe);
                let error =
                    self.last_probe.get(*probe).and_then(|o| o.as_ref()).and_then(|o| o.error.clone());
                match known {
                    Some(true) => tracing::info!(probe = p.name, r#type = p.kind.type_name(), "probe up"),
                    Some(false) => tracing::warn!(
                        probe = p.name,
                        r#type = p.kind.type_name(),
                        error = error.as_deref(),
                        "probe down"
                    ),
                    None => tracing::info!(
                        probe = p.name,
                        r#type = p.kind.type_name(),
                        "probe restarted: not known until it rises or falls again"
                    ),
                }
            }
            Record::BackendFailed { op, attempt } => {
                let retry = self.machine.config().backoff.delay(*attempt);
                tracing::warn!(
                    operation = op.as_str(),
                    attempt,
                    retry_in_s = retry.as_secs_f64(),
                    "backend call will be retried"
                );
            }
            Record::RecoveredAfterFailure { failed_for } => {
                tracing::warn!(
                    failed_for_s = failed_for.as_secs_f64(),
                    "the required probes of a failed node passed for the whole stability window: releasing it late"
                );
            }
            Record::ReleaseRefused { blockers } => {
                tracing::warn!(
                    blockers = blockers.join(","),
                    "release refused: required probes are down (use --force)"
                );
            }
            Record::DrainFinished { handed_over } => {
                tracing::info!(handed_over, "drain finished");
                let reply = if *handed_over {
                    crate::control::Reply::ok(
                        "drained: every watched VHID is BACKUP, the peer has the traffic",
                    )
                } else {
                    crate::control::Reply::error(
                        "drain timed out: a watched VHID is still MASTER (or none reported)",
                    )
                };
                self.answer_drain(reply);
            }
            Record::DrainSuperseded => {
                tracing::info!("drain superseded by a hold or release");
                self.answer_drain(crate::control::Reply::error(
                    "drain superseded: a hold or release took over before the peer had the traffic",
                ));
            }
            Record::CarpChanged { vhid, iface, state, transition } => {
                m.record_carp(*vhid, iface, *state, *transition);
                if *transition {
                    tracing::info!(vhid, iface = iface.as_str(), state = state.as_str(), "CARP transition");
                } else {
                    tracing::info!(
                        vhid,
                        iface = iface.as_str(),
                        state = state.as_str(),
                        "CARP state measured"
                    );
                }
            }
            Record::BackendDrift { direction, wanted } => {
                m.drift.with_label_values(&[direction.as_str()]).inc();
                tracing::warn!(
                    backend = self.backend.name(),
                    direction = direction.as_str(),
                    wanted = ?wanted,
                    "failbackd's hold was changed behind its back; re-applying what the phase wants"
                );
            }
            Record::HoldNotResumed { previous } => {
                m.drift.with_label_values(&[crate::machine::Drift::Removed.as_str()]).inc();
                tracing::warn!(
                    backend = self.backend.name(),
                    previous = previous.as_str(),
                    "the state file says failbackd held the node, but its hold is off: the file is \
                     stale (state file writes failed) or someone removed the hold; not putting it \
                     back, the node is released"
                );
            }
            Record::TrackDemoted { probe } => {
                let name = self.cfg.probes.get(*probe).map_or("", |p| p.name.as_str());
                m.track_demotions.with_label_values(&[name]).inc();
                tracing::warn!(
                    probe = name,
                    "tracking: a tracked probe is down on the MASTER; demoting so the peer takes over"
                );
            }
            Record::TrackSuppressed { probe, reason } => {
                let name = self.cfg.probes.get(*probe).map_or("", |p| p.name.as_str());
                m.track_suppressed.with_label_values(&[reason.as_str()]).inc();
                let level_error = *reason == crate::machine::SuppressReason::FlapLimit;
                if level_error {
                    tracing::error!(
                        probe = name,
                        reason = reason.as_str(),
                        "tracking: flap limit reached; staying MASTER with the path down"
                    );
                } else {
                    tracing::warn!(probe = name, reason = reason.as_str(), "tracking: not demoting");
                }
            }
            Record::TrackCleared => {
                tracing::info!("tracking: the tracked probes are up again (or tracking no longer applies)")
            }
            Record::ForeignHold { held } => {
                if *held {
                    tracing::warn!(
                        backend = self.backend.name(),
                        "the node is held by a demotion that is not failbackd's; failbackd leaves it alone"
                    );
                } else {
                    tracing::info!(
                        backend = self.backend.name(),
                        "the hold that was not failbackd's is gone"
                    );
                }
            }
        }
    }

    fn answer_drain(&mut self, reply: crate::control::Reply) {
        for waiter in self.drain_waiters.drain(..) {
            let _ = waiter.send(reply.clone());
        }
    }

    fn track_maintenance(&mut self, now: Instant, to: Phase) {
        let held = to.wants_demoted() == Some(true);
        match (held, self.maintenance_since) {
            // A resumed failback has been held since it armed, not since this process started.
            (true, None) => {
                self.maintenance_since = Some(self.machine.failback().map_or(now, |f| f.armed_at.min(now)))
            }
            (false, Some(_)) => self.maintenance_since = None,
            _ => {}
        }
    }

    /// Brings the state gauges, the scrape-time instants and /status up to date after a step.
    pub(super) fn publish(&mut self, now: Instant) {
        let m = &self.machine;
        let phase = m.phase();
        let foreign = m.foreign_hold();
        self.metrics.held.set(i64::from(m.own_hold()));
        self.metrics.hold_wanted.set(i64::from(phase.wants_demoted() == Some(true)));
        self.metrics.foreign_hold.set(i64::from(foreign));
        self.metrics.track_suppressed_now.set(i64::from(m.track_suppressed()));
        self.metrics.track_penalty.set(m.track_penalty(now));
        self.metrics.track_required_stability.set(m.track_required_stability(now).as_secs_f64());
        for (i, p) in self.cfg.probes.iter().enumerate() {
            let up = m.probe(i).is_some_and(|t| t.up);
            let blocked = p.required && !up && phase.is_holding();
            self.metrics.release_blocked.with_label_values(&[p.name.as_str()]).set(i64::from(blocked));
        }
        let held_since = self.maintenance_since;
        let armed_at = m.failback().filter(|_| phase.is_holding()).map(|f| f.armed_at);
        let hold_deadline = m.hold_deadline().filter(|_| phase.is_holding());
        let max_hold = m.config().max_hold;
        self.metrics.moments.set(|i| {
            i.held_since = held_since;
            i.armed_at = armed_at;
            i.hold_deadline = hold_deadline;
            i.max_hold = max_hold;
        });
        self.metrics.set_phase(phase);
        self.sync_carp_series();
        // From now on the state gauges are measured values (see telemetry::metrics).
        self.metrics.measured.set(1);
        let status = self.status();
        self.status_tx.send_replace(status);
    }

    /// Removes the CARP series of a `vhid@iface` the OS no longer reports (a VIP that was
    /// removed) and counts the watched ones beyond the tracked cap.
    fn sync_carp_series(&self) {
        let poll = self.observer.last.as_ref().and_then(|(at, o)| o.carp.as_ref().map(|c| (*at, c)));
        let listed: Option<Vec<(u16, &str)>> =
            poll.map(|(_, seen)| seen.iter().map(|s| (s.vhid, s.iface.as_str())).collect());
        let known = self.machine.carp_states().map(|((v, i), s)| (*v, i.as_str(), *s));
        let removed = self.metrics.sync_carp(known, poll.map(|(at, _)| at).zip(listed.as_deref()));
        for (vhid, iface) in removed {
            tracing::info!(
                vhid,
                iface = iface.as_str(),
                polls = crate::telemetry::metrics::CARP_MISSED_POLLS,
                "the OS no longer reports this vhid; its CARP state series is removed"
            );
        }
        let Some(listed) = listed else { return };
        let unmonitored = listed
            .iter()
            .filter(|(v, i)| self.cfg.watches(*v, i))
            .filter(|(v, i)| !self.machine.carp_states().any(|((kv, ki), _)| kv == v && ki == i))
            .count();
        let unmonitored = i64::try_from(unmonitored).unwrap_or(i64::MAX);
        if unmonitored != self.metrics.carp_unmonitored.get() && unmonitored > 0 {
            tracing::warn!(
                unmonitored,
                cap = super::observe::MAX_CARP_SERIES,
                "watched vhid@iface beyond the cap are not monitored (no state, no alerts): narrow `watch`"
            );
        }
        self.metrics.carp_unmonitored.set(unmonitored);
    }

    pub(super) fn status(&self) -> Status {
        let m = &self.machine;
        let now = now();
        let failback = failback_status(m, now, unix_at);
        let measured = self.observer.last.as_ref().map(|(at, o)| MeasuredStatus {
            held: o.held,
            foreign: o.foreign,
            demoted: o.demoted,
            demotion: o.demotion,
            others: o.others.clone(),
            at: unix_at(*at),
        });
        let probes = self
            .cfg
            .probes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let tally = m.probe(i).copied().unwrap_or_default();
                let last = self.last_probe.get(i).and_then(|o| o.as_ref());
                ProbeStatus {
                    name: p.name.clone(),
                    kind: p.kind.type_name().to_string(),
                    target: p.kind.target(),
                    required: p.required,
                    tracked: p.track.is_some(),
                    up: tally.up,
                    passes: tally.passes,
                    fails: tally.fails,
                    last_ok: last.map(|o| o.ok),
                    last_latency_ms: last.map(|o| o.latency.as_secs_f64() * 1000.0),
                    last_error: last.and_then(|o| o.error.clone()),
                }
            })
            .collect();
        Status {
            phase: m.phase().as_str().to_string(),
            since: unix_at(m.phase_since()),
            backend: self.backend.name().to_string(),
            demoted: m.backend_demoted(),
            wanted_demoted: m.phase().wants_demoted(),
            measured,
            failback,
            last_outcome: m.last_outcome().map(|o| o.as_str().to_string()),
            failbacks_ended: m.ended_failbacks(),
            node: crate::status::node_id().to_string(),
            // Stamped by the HTTP server at each answer.
            loop_age_s: None,
            loop_stale_after_s: None,
            probes,
            carp: m
                .carp_states()
                .map(|((vhid, iface), state)| CarpStatus {
                    vhid: *vhid,
                    iface: iface.clone(),
                    state: state.as_str().to_string(),
                })
                .collect(),
        }
    }
}

/// The failback in progress as /status shows it (the daemon's and the pair simulator's peer
/// answer: `daemon::peer::judge` reads its trigger and age).
pub fn failback_status(
    m: &crate::machine::Machine,
    now: Instant,
    unix_at: impl Fn(Instant) -> f64,
) -> Option<FailbackStatus> {
    m.failback().map(|f| {
        let deadline = m.hold_deadline();
        FailbackStatus {
            id: f.id,
            trigger: f.trigger.to_string(),
            armed: unix_at(f.armed_at),
            hold_deadline: deadline.map_or(0.0, &unix_at),
            elapsed_s: now.saturating_duration_since(f.armed_at).as_secs_f64(),
            remaining_s: deadline.map_or(0.0, |d| d.saturating_duration_since(now).as_secs_f64()),
            peer_lost: f.peer_lost,
            master_while_held: m.not_lost().map(|w| w.as_str().to_string()),
            blockers: m.release_blockers().iter().map(|s| s.to_string()).collect(),
        }
    })
}
