//! Tracking: fail over a MASTER whose path died behind a link that stays up (CARP only fails
//! over on link loss or a dead box), then fail back only when it is ready — by arming an
//! ordinary failback, which is exactly as careful as the one after a reboot.
//!
//! Applies only while `Released` and measured MASTER (some watched VHID is MASTER). A tracked
//! required probe that is down (by its `fall`) for `track_for` asks the peer (through the
//! driver, [`Action::AskPeer`]) and demotes when the peer can take over. Guards, each a
//! [`SuppressReason`]: not MASTER; the peer not ready (a shared outage: no ping-pong); the peer
//! not askable and the probe says stay; the flap limit (`max_demotions` per `window`). A
//! suppression is recorded once per down episode and re-checked later (the peer every
//! [`PEER_RETRY`], the flap limit when the window frees up).

use super::*;
use std::time::Duration;

/// How often a suppressed demotion asks the peer again while the probe stays down.
pub const PEER_RETRY: Duration = Duration::from_secs(30);

/// Tracking's own state.
#[derive(Debug, Clone, Default)]
pub(super) struct Track {
    /// The tracked probe that is down, and since when (first seen down while released).
    down: Option<(usize, Instant)>,
    /// Waiting for the peer's answer.
    asking: bool,
    /// Suppressions already recorded in this episode.
    noted: Vec<SuppressReason>,
    /// A suppression stands (for the gauge); cleared when the episode ends.
    suppressed: bool,
    /// Do not decide again before this.
    retry_at: Option<Instant>,
    /// When the recent tracking demotions happened (for the flap limit).
    demotions: std::collections::VecDeque<Instant>,
    /// With a peer: the penalty of past tracking demotions (dampen.rs).
    dampening: super::dampen::Dampening,
}

impl Machine {
    /// Whether a tracking demotion is currently suppressed (for the gauge and /status).
    pub fn track_suppressed(&self) -> bool {
        self.track.suppressed
    }

    /// The tracked probe that is down while released, if any.
    pub fn track_down(&self) -> Option<usize> {
        self.track.down.map(|(p, _)| p)
    }

    /// When tracking must look again (the `track_for` wait or a retry).
    pub(super) fn track_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Released || self.track.asking {
            return None;
        }
        if self.track.suppressed && self.track.retry_at.is_none() {
            return None; // waits for an event (becoming MASTER), not for a time
        }
        let (_, since) = self.track.down?;
        let due = since.checked_add(self.cfg.tracking.track_for)?;
        Some(self.track.retry_at.map_or(due, |r| r.max(due)))
    }

    /// The stability a failback needs, the path stable since `since` (dampen.rs).
    pub(super) fn required_stability(&self, since: Instant) -> Duration {
        self.track.dampening.required_stability(&self.cfg.tracking.dampen, since, self.cfg.stable_for)
    }

    /// A tracking demotion the peer has not acted on (this node is still measured MASTER) is
    /// withdrawn as soon as the path is back: holding on would only hand the traffic over
    /// after a blip that is already over. With keepalived the raised priority reaches the
    /// BACKUP before its master-down timer fires, so no switch happens at all.
    pub(super) fn withdraws(&self, fb: &Failback) -> bool {
        matches!(fb.trigger, Trigger::Track { .. }) && self.is_master()
    }

    /// The dampening penalty at `now` (for the gauge).
    pub fn track_penalty(&self, now: Instant) -> f64 {
        self.track.dampening.penalty(&self.cfg.tracking.dampen, now)
    }

    /// The stability the failback in progress needs (from when its probes became stable), or
    /// that one would need if the path became stable at `now` (for the gauge).
    pub fn track_required_stability(&self, now: Instant) -> Duration {
        self.required_stability(self.stable_since.unwrap_or(now))
    }

    fn tracked_down(&self) -> Option<usize> {
        self.cfg
            .probes
            .iter()
            .zip(&self.probes)
            .position(|(spec, tally)| spec.track.is_some() && spec.required && !tally.up)
    }

    fn is_master(&self) -> bool {
        self.carp.values().any(|s| *s == CarpState::Master)
    }

    /// Runs after every step: starts, ends or acts on a down episode.
    pub(super) fn track_step(&mut self, now: Instant, out: &mut Vec<Action>) {
        let down = if self.phase == Phase::Released { self.tracked_down() } else { None };
        let Some(probe) = down else {
            self.end_episode(out);
            return;
        };
        if self.track.down.is_none_or(|(p, _)| p != probe) {
            self.end_episode(out);
            self.track.down = Some((probe, now));
        }
        if self.track.asking || self.track_deadline().is_some_and(|at| now < at) {
            return;
        }
        if !self.is_master() {
            // Re-evaluated at every step: becoming MASTER with the path down acts at once.
            self.suppress(probe, SuppressReason::NotMaster, None, out);
            return;
        }
        let window = self.cfg.tracking.window;
        while self.track.demotions.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            self.track.demotions.pop_front();
        }
        // With a peer, flapping is dampened on the return (dampen.rs), never on the escape.
        if !self.cfg.tracking.peer && self.track.demotions.len() >= self.cfg.tracking.max_demotions as usize {
            let frees_at = self.track.demotions.front().and_then(|t| t.checked_add(window));
            self.suppress(probe, SuppressReason::FlapLimit, frees_at, out);
            return;
        }
        if self.cfg.tracking.peer {
            self.track.asking = true;
            out.push(Action::AskPeer);
        } else {
            self.decide_without_peer(now, probe, out);
        }
    }

    pub(super) fn on_peer_answer(&mut self, now: Instant, answer: PeerHealth, out: &mut Vec<Action>) {
        if !self.track.asking {
            return; // nobody asked (or the episode ended meanwhile)
        }
        self.track.asking = false;
        let Some((probe, _)) = self.track.down else { return };
        if self.phase != Phase::Released || self.tracked_down() != Some(probe) || !self.is_master() {
            return; // things changed while the peer was asked: track_step re-evaluates
        }
        match answer {
            PeerHealth::Healthy => self.track_demote(now, probe, out),
            PeerHealth::Unhealthy => {
                self.suppress(probe, SuppressReason::PeerUnhealthy, now.checked_add(PEER_RETRY), out)
            }
            PeerHealth::Unreachable => self.decide_without_peer(now, probe, out),
        }
    }

    fn decide_without_peer(&mut self, now: Instant, probe: usize, out: &mut Vec<Action>) {
        let demote = self.cfg.probes.get(probe).and_then(|p| p.track).is_some_and(|t| t.demote_without_peer);
        if demote {
            self.track_demote(now, probe, out);
        } else {
            self.suppress(probe, SuppressReason::PeerUnreachable, now.checked_add(PEER_RETRY), out);
        }
    }

    fn track_demote(&mut self, now: Instant, probe: usize, out: &mut Vec<Action>) {
        let name = self.cfg.probes.get(probe).map(|p| p.name.clone()).unwrap_or_default();
        self.track.demotions.push_back(now);
        if self.cfg.tracking.peer {
            self.track.dampening.demoted(&self.cfg.tracking.dampen, now);
        }
        out.push(Action::Record(Record::TrackDemoted { probe }));
        // The episode ends in a demotion, not because the path came back: no TrackCleared.
        self.reset_episode();
        self.arm(now, Trigger::Track { probe: name }, out);
    }

    fn suppress(
        &mut self,
        probe: usize,
        reason: SuppressReason,
        retry_at: Option<Instant>,
        out: &mut Vec<Action>,
    ) {
        self.track.retry_at = retry_at;
        self.track.suppressed = true;
        if !self.track.noted.contains(&reason) {
            self.track.noted.push(reason);
            out.push(Action::Record(Record::TrackSuppressed { probe, reason }));
        }
    }

    fn end_episode(&mut self, out: &mut Vec<Action>) {
        let had = self.track.down.is_some();
        self.reset_episode();
        if had {
            out.push(Action::Record(Record::TrackCleared));
        }
    }

    /// Forgets the episode; the flap limit's history stays.
    fn reset_episode(&mut self) {
        let demotions = std::mem::take(&mut self.track.demotions);
        self.track = Track { demotions, dampening: self.track.dampening, ..Track::default() };
    }
}
