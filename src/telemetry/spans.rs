//! Trace spans: one root `failback` span per failback, a `phase` child per phase, and (made by
//! the probe runner) a `probe` child of the current phase per probe attempt.
//!
//! `tracing-opentelemetry` exports a span when it closes, i.e. when every handle and every
//! child is gone, so the handles are dropped as soon as the thing they stand for ends: a phase
//! span when the phase changes, the root when the failback ends. Each is entered and left once
//! right then, which stamps its end time (the layer takes a span's end from its last exit), so
//! a probe attempt still in flight keeps the span open but does not stretch it.
//!
//! The machine ends a failback (outcome decided) before it enters `releasing` (the promote);
//! the root stays open through that phase so the trace shows the promote too, and closes when
//! the node leaves `releasing`.
//!
//! When no failback runs, [`FailbackSpans::current`] is `None` and probe attempts make no
//! span: an idle daemon exports nothing.

use crate::machine::{Outcome, Phase, Trigger};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::Empty;
use tracing::Span;

/// The spans of the failback in progress. Cloned into the probe runner so probe attempts hang
/// under the current phase.
#[derive(Clone, Default)]
pub struct FailbackSpans {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    root: Option<Span>,
    phase: Option<Span>,
    /// The failback has an outcome; the root only waits for `releasing` to end.
    ended: bool,
}

/// Stamps the end time and drops the handle.
fn finish(span: Span) {
    span.in_scope(|| {});
}

impl Inner {
    fn close_phase(&mut self) {
        if let Some(p) = self.phase.take() {
            finish(p);
        }
    }

    fn close_root(&mut self) {
        self.close_phase();
        self.ended = false;
        if let Some(r) = self.root.take() {
            finish(r);
        }
    }
}

impl FailbackSpans {
    pub fn started(&self, id: u64, trigger: &Trigger) {
        let root = tracing::info_span!(
            parent: None,
            "failback",
            // i64: tracing-opentelemetry records u64 fields as strings.
            failback.id = i64::try_from(id).unwrap_or(i64::MAX),
            failback.trigger = %trigger,
            failback.vhid = Empty,
            failback.iface = Empty,
            failback.carp_state = Empty,
            failback.outcome = Empty,
            failback.duration_s = Empty,
            failback.peer_lost = false,
            otel.status_code = Empty,
        );
        if let Trigger::Carp { vhid, iface, state } = trigger {
            root.record("failback.vhid", i64::from(*vhid))
                .record("failback.iface", iface.as_str())
                .record("failback.carp_state", state.as_str());
        }
        if let Ok(mut g) = self.inner.lock() {
            g.close_root();
            g.root = Some(root);
        }
    }

    pub fn phase(&self, phase: Phase) {
        let Ok(mut g) = self.inner.lock() else { return };
        g.close_phase();
        if g.ended && phase != Phase::Releasing {
            g.close_root();
        }
        g.phase = g
            .root
            .as_ref()
            .map(|root| tracing::info_span!(parent: root, "phase", phase.name = phase.as_str()));
    }

    pub fn peer_lost(&self) {
        if let Ok(g) = self.inner.lock() {
            if let Some(root) = &g.root {
                root.record("failback.peer_lost", true);
            }
        }
    }

    pub fn ended(&self, outcome: Outcome, duration: Duration) {
        let Ok(mut g) = self.inner.lock() else { return };
        g.close_phase();
        if let Some(root) = &g.root {
            root.record("failback.outcome", outcome.as_str());
            root.record("failback.duration_s", duration.as_secs_f64());
            root.record("otel.status_code", if outcome == Outcome::Failed { "error" } else { "ok" });
            g.ended = true;
        }
    }

    /// The daemon is stopping mid-failback: end the spans so they are exported. The next start
    /// resumes the hold as a new failback (trigger `resume`).
    pub fn interrupted(&self) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(root) = &g.root {
            if !g.ended {
                root.record("failback.outcome", "interrupted");
            }
        }
        g.close_root();
    }

    /// The span probe attempts should be children of (the current phase; the root in the
    /// instant between the arm and its first phase) while a failback is undecided; `None`
    /// otherwise (no span for that attempt).
    pub fn current(&self) -> Option<Span> {
        let g = self.inner.lock().ok()?;
        if g.ended {
            return None;
        }
        g.phase.clone().or_else(|| g.root.clone()).filter(|s| !s.is_disabled())
    }
}
