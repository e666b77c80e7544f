//! Turning the machine's records into metrics, log lines and spans, and publishing /status.

use super::Daemon;
use crate::machine::{Phase, Record};
use crate::status::{CarpStatus, FailbackStatus, MeasuredStatus, ProbeStatus, Status};
use crate::telemetry::moments::{now, unix_at};
use std::time::Instant;

impl Daemon {
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
                        "max_hold reached with probes still failing: the node stays demoted; \
                         check `failbackd status`, then `failbackd release --force` or fix the path"
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
                self.spans.peer_lost();
                tracing::warn!(
                    failback,
                    "a watched VHID became MASTER while held: the peer is gone; not fighting it"
                );
            }
            Record::ProbeChanged { probe, up } => {
                let Some(p) = self.cfg.probes.get(*probe) else { return };
                m.probe_up.with_label_values(&[p.name.as_str()]).set(i64::from(*up));
                let error =
                    self.last_probe.get(*probe).and_then(|o| o.as_ref()).and_then(|o| o.error.clone());
                if *up {
                    tracing::info!(probe = p.name, r#type = p.kind.type_name(), "probe up");
                } else {
                    tracing::warn!(
                        probe = p.name,
                        r#type = p.kind.type_name(),
                        error = error.as_deref(),
                        "probe down"
                    );
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
        self.metrics.held.set(i64::from(m.backend_demoted() == Some(true) && !foreign));
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
        let status = self.status();
        self.status_tx.send_replace(status);
    }

    pub(super) fn status(&self) -> Status {
        let m = &self.machine;
        let now = now();
        let failback = m.failback().map(|f| {
            let deadline = m.hold_deadline();
            FailbackStatus {
                id: f.id,
                trigger: f.trigger.to_string(),
                armed: unix_at(f.armed_at),
                hold_deadline: deadline.map_or(0.0, unix_at),
                elapsed_s: now.saturating_duration_since(f.armed_at).as_secs_f64(),
                remaining_s: deadline.map_or(0.0, |d| d.saturating_duration_since(now).as_secs_f64()),
                peer_lost: f.peer_lost,
                blockers: m.release_blockers().iter().map(|s| s.to_string()).collect(),
            }
        });
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
