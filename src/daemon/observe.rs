//! Measuring the backend: at start, every `reconcile_interval`, after every backend call and
//! after a reload. One measurement at a time; each runs in a tracked task with a timeout and
//! comes back to the loop as a [`Reading`] tagged with the machine's counters at its start, so
//! the machine can tell a stale reading from a current one (see `machine::Observed`).

use super::{Daemon, BACKEND_TIMEOUT};
use crate::carp::{Backend, Observation};
use crate::machine::{CarpReading, Event, Observed};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::moments::now;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many `vhid@iface` are tracked: even with `watch = ["*@*"]`, what an OS or a
/// stream of hooks reports cannot grow the label sets (and the machine's map) without bound.
pub const MAX_CARP_SERIES: usize = 64;

/// One measurement, with what the loop needs to judge it.
pub(crate) struct Reading {
    generation: u64,
    backend_seq: u64,
    carp_seq: u64,
    pub(crate) result: Result<Observation, String>,
    took: Duration,
    at: Instant,
}

/// The measuring side of the daemon.
#[derive(Default)]
pub(crate) struct Observer {
    in_flight: bool,
    /// The last successful measurement and when it was taken.
    pub(crate) last: Option<(Instant, Observation)>,
    last_error: Option<String>,
}

/// Measures the backend now (at start it is awaited before the machine's first step).
pub(super) async fn measure(
    backend: Arc<dyn Backend>,
    generation: u64,
    backend_seq: u64,
    carp_seq: u64,
) -> Reading {
    let started = now();
    // In its own task: a panicking backend is an error reading, not a measurement that never ends.
    let result =
        match tokio::time::timeout(BACKEND_TIMEOUT, tokio::spawn(async move { backend.observe().await }))
            .await
        {
            Ok(Ok(r)) => r.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(format!("measuring the backend failed: {e}")),
            Err(_) => Err(format!("measuring the backend timed out after {}s", BACKEND_TIMEOUT.as_secs())),
        };
    let at = now();
    Reading { generation, backend_seq, carp_seq, result, took: at.saturating_duration_since(started), at }
}

impl Daemon {
    /// Starts a measurement unless one is running.
    pub(super) fn observe(&mut self) {
        if self.observer.in_flight {
            return;
        }
        self.observer.in_flight = true;
        let tx = self.observe_tx.clone();
        let job = measure(
            Arc::clone(&self.backend),
            self.backend_gen,
            self.machine.backend_seq(),
            self.machine.carp_seq(),
        );
        self.tracker.spawn(async move {
            let _ = tx.send(job.await).await;
        });
    }

    pub(super) fn on_reading(&mut self, r: Reading) {
        self.observer.in_flight = false;
        if r.generation != self.backend_gen {
            self.observe(); // measured the backend a reload replaced: measure the new one
            return;
        }
        self.metrics.backend_duration.with_label_values(&["observe"]).observe(r.took.as_secs_f64());
        let observed = match r.result {
            Ok(obs) => {
                if let Some(e) = self.observer.last_error.take() {
                    tracing::info!(previous_error = e, "backend measurement works again");
                }
                self.log_other_sources(&obs);
                Metrics::set_measured(&self.metrics.backend_demoted, obs.demoted.map(i64::from));
                Metrics::set_measured(&self.metrics.carp_demotion, obs.demotion);
                let carp = obs.carp.as_ref().map(|seen| {
                    // The cap holds within one reading too: new `vhid@iface` take the room left.
                    let mut room = MAX_CARP_SERIES.saturating_sub(self.machine.carp_states().count());
                    seen.iter()
                        .filter(|s| self.cfg.watches(s.vhid, &s.iface))
                        .filter(|s| {
                            let known =
                                self.machine.carp_states().any(|((v, i), _)| *v == s.vhid && *i == s.iface);
                            let admitted = known || room > 0;
                            if !known && admitted {
                                room -= 1;
                            }
                            admitted
                        })
                        .map(|s| CarpReading { vhid: s.vhid, iface: s.iface.clone(), state: s.state })
                        .collect()
                });
                let (held, foreign, also_ours) = if self.shared_lever() {
                    crate::machine::attribute_shared_hold(
                        obs.held == Some(true),
                        obs.foreign,
                        self.machine.phase(),
                    )
                } else {
                    (obs.held, obs.foreign, false)
                };
                let observed = Observed {
                    backend_seq: r.backend_seq,
                    carp_seq: r.carp_seq,
                    held,
                    foreign,
                    also_ours,
                    carp,
                };
                self.observer.last = Some((r.at, obs));
                self.metrics.moments.set(|i| i.observed_at = Some(r.at));
                observed
            }
            Err(e) => {
                self.metrics.backend_error(self.backend.name(), "observe");
                if self.observer.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(backend = self.backend.name(), error = %e, "cannot measure the backend");
                    self.observer.last_error = Some(e);
                }
                Observed {
                    backend_seq: r.backend_seq,
                    carp_seq: r.carp_seq,
                    held: None,
                    foreign: false,
                    also_ours: false,
                    carp: None,
                }
            }
        };
        self.step(Event::Observed(observed));
    }

    /// Whether failbackd's lever is shared with others (OPNsense `service_status`: the 2^20 bit
    /// of every service check), so whose hold it is depends on the phase
    /// ([`crate::machine::attribute_shared_hold`]).
    pub(super) fn shared_lever(&self) -> bool {
        matches!(&self.cfg.backend, crate::config::BackendConfig::Opnsense(c)
            if c.mode == crate::config::OpnsenseMode::ServiceStatus)
    }

    /// Whether a CARP state for `vhid@iface` may enter the machine and the metrics: watched, and
    /// known already or below [`MAX_CARP_SERIES`].
    pub(super) fn admits_carp(&self, vhid: u16, iface: &str) -> bool {
        if !self.cfg.watches(vhid, iface) {
            return false;
        }
        self.machine.carp_states().count() < MAX_CARP_SERIES
            || self.machine.carp_states().any(|((v, i), _)| *v == vhid && i == iface)
    }

    fn log_other_sources(&self, obs: &Observation) {
        let before = self.observer.last.as_ref().map(|(_, o)| &o.others);
        if before != Some(&obs.others) && !obs.others.is_empty() {
            tracing::info!(
                sources = obs.others.join("; "),
                "other demotion sources in place (not failbackd's)"
            );
        }
    }
}
