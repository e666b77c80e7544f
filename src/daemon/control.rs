//! Control requests (hook, status, hold, release, drain) applied by the daemon loop.

use super::Daemon;
use crate::control::{Reply, Request};
use crate::machine::{Event, Record};
use std::time::Duration;
use tokio::sync::oneshot;

/// A drain waits at most this long, whatever the client asked.
const MAX_DRAIN: Duration = Duration::from_secs(300);

impl Daemon {
    pub(super) fn on_control(&mut self, req: Request, reply: oneshot::Sender<Reply>) {
        let answer = match req {
            Request::Hook { vhid, iface, state } => {
                if self.cfg.watches(vhid, &iface) {
                    self.metrics.record_carp(vhid, &iface, state);
                    tracing::info!(vhid, iface = iface.as_str(), state = state.as_str(), "CARP transition");
                    self.step(Event::Carp { vhid, iface, state });
                    Reply::ok(format!("phase {}", self.machine.phase()))
                } else {
                    // Not watched: counted, but never a new label set (bounded cardinality).
                    self.metrics.carp_events_ignored.inc();
                    tracing::debug!(
                        vhid,
                        iface = iface.as_str(),
                        state = state.as_str(),
                        "CARP transition on an unwatched VHID"
                    );
                    Reply::ok("not watched; ignored")
                }
            }
            Request::Status {} => Reply { status: Some(self.status()), ..Reply::ok("status") },
            Request::Hold { reason } => {
                tracing::info!(reason = reason.as_deref().unwrap_or(""), "manual hold requested");
                self.step(Event::ManualHold);
                Reply::ok(format!("phase {}", self.machine.phase()))
            }
            Request::Release { force } => {
                tracing::info!(force, "manual release requested");
                let records = self.step(Event::ManualRelease { force });
                match records.iter().find_map(|r| match r {
                    Record::ReleaseRefused { blockers } => Some(blockers.join(", ")),
                    _ => None,
                }) {
                    Some(blockers) => {
                        Reply::error(format!("not released: required probes down: {blockers} (use --force)"))
                    }
                    None => Reply::ok(format!("phase {}", self.machine.phase())),
                }
            }
            Request::Drain { timeout_ms } => {
                let timeout = Duration::from_millis(timeout_ms).min(MAX_DRAIN);
                tracing::info!(timeout_s = timeout.as_secs_f64(), "drain requested");
                self.drain_waiters.push(reply);
                // Answered when the DrainFinished record comes, in this step or a later one.
                self.step(Event::Drain { timeout });
                return;
            }
        };
        let _ = reply.send(answer);
    }
}
