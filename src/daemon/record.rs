//! Turning the machine's records into metrics, log lines and spans, and publishing /status.

use super::Daemon;
use crate::machine::{Phase, Record};
use crate::status::{CarpStatus, FailbackStatus, ProbeStatus, Status};
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
                for waiter in self.drain_waiters.drain(..) {
                    let _ = waiter.send(reply.clone());
                }
            }
        }
    }

    fn track_maintenance(&mut self, now: Instant, to: Phase) {
        let held = to.wants_demoted() == Some(true);
        match (held, self.maintenance_since) {
            (true, None) => self.maintenance_since = Some(now),
            (false, Some(_)) => self.maintenance_since = None,
            _ => {}
        }
        self.metrics.held.set(i64::from(held));
        self.metrics.maintenance_since.set(self.maintenance_since.map_or(0.0, |t| self.clock.unix(t)));
    }

    pub(super) fn publish_status(&mut self, _now: Instant) {
        let deadline = self.machine.hold_deadline().map_or(0.0, |d| self.clock.unix(d));
        self.metrics.hold_deadline.set(deadline);
        let status = self.status();
        self.status_tx.send_replace(status);
    }

    pub(super) fn status(&self) -> Status {
        let m = &self.machine;
        let failback = m.failback().map(|f| FailbackStatus {
            id: f.id,
            trigger: f.trigger.to_string(),
            armed: self.clock.unix(f.armed_at),
            hold_deadline: self.clock.unix(f.armed_at + m.config().max_hold),
            peer_lost: f.peer_lost,
            blockers: m.release_blockers().iter().map(|s| s.to_string()).collect(),
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
            since: self.clock.unix(m.phase_since()),
            backend: self.backend.name().to_string(),
            demoted: m.backend_demoted(),
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
