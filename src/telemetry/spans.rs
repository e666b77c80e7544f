//! Trace spans: one root span per failback, a child per phase. Probe-attempt spans are made by
//! the probe runner under the span returned by [`FailbackSpans::current`].

use crate::machine::{Outcome, Phase, Trigger};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
}

impl FailbackSpans {
    pub fn started(&self, id: u64, trigger: &Trigger) {
        let root = tracing::info_span!(
            parent: None,
            "failback",
            failback.id = id,
            failback.trigger = %trigger,
            failback.outcome = tracing::field::Empty,
            failback.duration_s = tracing::field::Empty,
            failback.peer_lost = false,
        );
        if let Ok(mut g) = self.inner.lock() {
            g.phase = None;
            g.root = Some(root);
        }
    }

    pub fn phase(&self, phase: Phase) {
        if let Ok(mut g) = self.inner.lock() {
            g.phase = g
                .root
                .as_ref()
                .map(|root| tracing::info_span!(parent: root, "phase", phase = phase.as_str()));
        }
    }

    pub fn peer_lost(&self) {
        if let Ok(g) = self.inner.lock() {
            if let Some(root) = &g.root {
                root.record("failback.peer_lost", true);
            }
        }
    }

    pub fn ended(&self, outcome: Outcome, duration: Duration) {
        if let Ok(mut g) = self.inner.lock() {
            g.phase = None;
            if let Some(root) = g.root.take() {
                root.record("failback.outcome", outcome.as_str());
                root.record("failback.duration_s", duration.as_secs_f64());
            }
        }
    }

    /// The span probe attempts should be children of (the current phase), if a failback runs.
    pub fn current(&self) -> Option<Span> {
        self.inner.lock().ok().and_then(|g| g.phase.clone().or_else(|| g.root.clone()))
    }
}
