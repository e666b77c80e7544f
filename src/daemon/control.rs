//! Control requests (hook, status, hold, release, drain) applied by the daemon loop.

use super::Daemon;
use crate::control::MAX_DRAIN;
use crate::control::{Reply, Request};
use crate::machine::{Event, Record};
use std::time::Duration;
use tokio::sync::oneshot;

impl Daemon {
    pub(super) fn on_control(&mut self, req: Request, reply: oneshot::Sender<Reply>) {
        let answer = match req {
            Request::Hook { vhid, iface, state } => {
                // The socket is a trust boundary of its own: the same checks as the CLI's.
                if let Err(e) = crate::control::parse_hook_args(&format!("{vhid}@{iface}"), state.as_str()) {
                    let _ = reply.send(Reply::error(format!("bad hook request: {e}")));
                    return;
                }
                if self.admits_carp(vhid, &iface) {
                    tracing::debug!(vhid, iface = iface.as_str(), state = state.as_str(), "CARP hook");
                    self.step(Event::Carp { vhid, iface, state });
                    Reply::ok(format!("phase {}", self.machine.phase()))
                } else {
                    // Not watched (or past the series cap): counted, never a new label set.
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
