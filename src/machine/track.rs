//! Tracking: fail over a MASTER whose path died behind a link that stays up (CARP only fails
//! over on link loss or a dead box), then fail back only when it is ready — by arming an
//! ordinary failback, which is exactly as careful as the one after a reboot.
//!
//! Applies while at rest (`Idle` or `Released`) and measured MASTER (some watched VHID is
//! MASTER). A tracked required probe that *fell* (failed `fall` times in a row; a probe that has
//! not risen yet since a start, an arm or a reload is unknown, never down) for `track_for` asks
//! the peer (through the driver, [`Action::AskPeer`]) and demotes when the peer can take over.
//! Guards, each a [`SuppressReason`]: not MASTER; the peer not ready (a shared outage: no
//! ping-pong); the peer not askable and the probe says stay; the flap limit (`max_demotions` per
//! `window`, carried over restarts by the driver); a forced release (the operator, or
//! `max_hold_policy = "release"`, decided this episode: tracking waits until the tracked probes
//! have risen once). A suppression is recorded once per down episode and re-checked later (the
//! peer every [`PEER_RETRY`], the flap limit when the window frees up).
//!
//! The peer is also asked when a watched VHID becomes MASTER while failbackd holds the node: a
//! peer that answers and could take over, or that lost MASTER to us moments ago, means the hold
//! does not work ([`Record::HoldIneffective`]); a peer that cannot be asked, or answers that none
//! of its VHIDs runs CARP, is a lost peer ([`Record::PeerLost`]); a peer alive in CARP but not
//! ready (held too: a simultaneous boot) is [`Record::PeerNotReady`]; with no peer to ask it is
//! [`Record::PeerNotAsked`] (gone or held too: unknown is not "lost").

use super::*;
use std::time::Duration;

/// How often a suppressed demotion asks the peer again while the probe stays down. Short: a
/// peer is often "not ready" only for the min_hold + stable_for of its own failback after
/// losing MASTER, and every second after it is ready is a second on a dead path. (A peer that
/// lost MASTER and is holding is *not* handed the traffic: its probe tallies restarted at its
/// arm, so it cannot vouch for its path until they rose again.)
pub const PEER_RETRY: Duration = Duration::from_secs(3);

/// What an [`Action::AskPeer`] in flight was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    /// A tracked probe is down on the MASTER: can the peer take over?
    Track,
    /// A watched VHID is MASTER while held: is the peer gone, or does the hold not work?
    MasterWhileHeld,
}

/// Tracking's own state.
#[derive(Debug, Clone, Default)]
pub(super) struct Track {
    /// The tracked probe that is down, and since when (first seen down while at rest).
    down: Option<(usize, Instant)>,
    /// Waiting for the peer's answer, and why.
    asking: Option<Question>,
    /// Suppressions already recorded in this episode.
    noted: Vec<SuppressReason>,
    /// A suppression stands (for the gauge); cleared when the episode ends.
    suppressed: bool,
    /// Do not decide again before this.
    retry_at: Option<Instant>,
    /// When the recent tracking demotions happened (for the flap limit).
    demotions: std::collections::VecDeque<Instant>,
    /// A forced release: no tracking demotion until every tracked probe has risen once.
    forced: bool,
    /// The failback whose ineffective hold was already recorded.
    ineffective: Option<u64>,
    /// The failback during which a MASTER while held was neither a lost peer nor an ineffective
    /// hold, and why (recorded once; asked again at the next MASTER while held, which may be a
    /// lost peer then).
    pub(super) not_lost: Option<(u64, NotLost)>,
    /// A failback that tracking started in the previous run, resumed after a restart (its
    /// trigger is `resume` now): still a tracking failback for `max_hold`.
    resumed_tracking: Option<u64>,
    /// A measurement was asked for ([`Action::Measure`]) and has not arrived yet.
    measuring: bool,
    /// A measurement arrived during this episode: "not MASTER" is a fact, not an old reading.
    measured: bool,
    /// With a peer: the penalty of past tracking demotions (dampen.rs).
    dampening: super::dampen::Dampening,
    /// Withdrawing a tracking demotion needs a MASTER reading taken after the path came back.
    withdraw: Withdraw,
}

/// Where the check behind a withdrawal stands (per failback: reset with the episode at arm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Withdraw {
    #[default]
    NotAsked,
    /// [`Action::Measure`] issued once the path was stable again.
    Asked,
    /// A measurement arrived after that: the CARP map is fresh.
    Fresh,
}

impl Machine {
    /// Whether a tracking demotion is currently suppressed (for the gauge and /status).
    pub fn track_suppressed(&self) -> bool {
        self.track.suppressed
    }

    /// The tracked probe that is down while at rest, if any.
    pub fn track_down(&self) -> Option<usize> {
        self.track.down.map(|(p, _)| p)
    }

    /// When the recent tracking demotions happened (the flap limit's history), oldest first,
    /// for the driver to persist across restarts.
    pub fn track_demotions(&self) -> impl Iterator<Item = Instant> + '_ {
        self.track.demotions.iter().copied()
    }

    /// Restores the flap limit's history from the previous run (before [`Event::Boot`]); those
    /// older than `window` are dropped when the limit is next checked. With a peer the
    /// dampening penalty is rebuilt from the same instants (each demotion replayed in order, so
    /// decay and ceiling are exactly as if the process had never stopped).
    pub fn restore_track_demotions(&mut self, at: impl IntoIterator<Item = Instant>) {
        let mut v: Vec<Instant> = at.into_iter().collect();
        v.sort();
        if self.cfg.tracking.peer {
            let mut d = super::dampen::Dampening::default();
            for t in &v {
                d.demoted(&self.cfg.tracking.dampen, *t);
            }
            self.track.dampening = d;
        }
        self.track.demotions = v.into();
    }

    /// Says, before [`Event::Boot`], that the failback `id` the previous run had in progress was
    /// started by tracking, so its resumption is not ended by `max_hold` either.
    pub fn restore_tracking_failback(&mut self, id: u64) {
        self.track.resumed_tracking = Some(id);
    }

    /// Whether a forced release's exemption is in force (the operator's decision stands until
    /// the tracked probes have risen once), for the driver to persist across restarts.
    pub fn track_forced(&self) -> bool {
        self.track.forced
    }

    /// Restores a forced release's exemption from the previous run (before [`Event::Boot`]): a
    /// restart does not undo the operator's `release --force`.
    pub fn restore_track_forced(&mut self) {
        self.track.forced = true;
    }

    /// A measurement arrived (called before it is applied, so `track_step` sees its states).
    pub(super) fn track_saw_measurement(&mut self) {
        if self.track.withdraw == Withdraw::Asked {
            self.track.withdraw = Withdraw::Fresh;
        }
        if self.track.down.is_some() {
            self.track.measuring = false;
            self.track.measured = true;
        }
    }

    /// Tracking acts only at rest: during a failback the node is held anyway.
    fn tracking_applies(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Released)
    }

    /// When tracking must look again (the `track_for` wait or a retry).
    pub(super) fn track_deadline(&self) -> Option<Instant> {
        if !self.tracking_applies() || self.track.asking.is_some() || self.track.measuring {
            return None;
        }
        if self.carp.is_empty() || (self.track.suppressed && self.track.retry_at.is_none()) {
            // Waits for an event (a first CARP reading, becoming MASTER, a probe rising), not
            // for a time.
            return None;
        }
        let (probe, since) = self.track.down?;
        if self.answering_again(probe) {
            // Waits for the next probe result (a rise or a failure), not for a time: a due
            // deadline here would be due for ever (a busy loop; the pair simulator hung on it).
            return None;
        }
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
    ///
    /// "Still MASTER" must be a fact, not the last poll: without hooks (keepalived polled every
    /// `reconcile_interval`) the reading may predate the peer's takeover, and withdrawing then
    /// would hand the traffic back without `stable_for`, `min_hold` or the dampening. So the
    /// machine asks for a measurement once the path is stable again and withdraws only on a
    /// MASTER reading that arrived after it.
    pub(super) fn withdraws(&self, fb: &Failback) -> bool {
        matches!(fb.trigger, Trigger::Track { .. })
            && self.is_master()
            && self.track.withdraw == Withdraw::Fresh
    }

    /// Before the deadlines of a step: asks for the measurement a withdrawal needs, once per
    /// stable stretch of a tracking failback while the node still reads MASTER.
    pub(super) fn track_check_withdrawal(&mut self, out: &mut Vec<Action>) {
        let tracking = self.failback.as_ref().is_some_and(|f| matches!(f.trigger, Trigger::Track { .. }));
        if !tracking || self.stable_since.is_none() {
            self.track.withdraw = Withdraw::NotAsked;
            return;
        }
        if self.track.withdraw == Withdraw::NotAsked && self.is_master() {
            self.track.withdraw = Withdraw::Asked;
            out.push(Action::Measure);
        }
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

    fn tracked(&self) -> impl Iterator<Item = (usize, &ProbeTally)> {
        self.cfg
            .probes
            .iter()
            .zip(&self.probes)
            .enumerate()
            .filter(|(_, (spec, _))| spec.track.is_some() && spec.required)
            .map(|(i, (_, tally))| (i, tally))
    }

    /// The first tracked probe known to be down (fell by `fall`; not "not risen yet").
    fn tracked_down(&self) -> Option<usize> {
        self.tracked().find(|(_, tally)| tally.fell).map(|(i, _)| i)
    }

    /// A fallen probe whose target passed its last attempt is on its way up (not risen yet):
    /// demoting a MASTER whose path is already back would move the traffic for nothing (the pair
    /// simulator's finding n1: a peer re-asked every few seconds said yes during the rise). The
    /// episode stays: a rise ends it, the next failure acts at once.
    fn answering_again(&self, probe: usize) -> bool {
        self.probes.get(probe).is_some_and(|t| t.passes > 0)
    }

    fn is_master(&self) -> bool {
        self.carp.values().any(|s| *s == CarpState::Master)
    }

    /// A forced release (by hand or by `max_hold_policy = "release"`): the operator's decision
    /// stands until the tracked probes have risen once; only a new fall after that is tracked.
    pub(super) fn track_forced_release(&mut self) {
        self.track.forced = true;
    }

    /// Runs after every step: starts, ends or acts on a down episode.
    pub(super) fn track_step(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.track.forced && self.tracked().all(|(_, t)| t.up) {
            self.track.forced = false;
        }
        let down = if self.tracking_applies() { self.tracked_down() } else { None };
        let Some(probe) = down else {
            self.end_episode(out);
            return;
        };
        if self.track.down.is_none_or(|(p, _)| p != probe) {
            self.end_episode(out);
            self.track.down = Some((probe, now));
        }
        if self.track.asking.is_some() || self.track_deadline().is_some_and(|at| now < at) {
            return;
        }
        if self.answering_again(probe) {
            // Waits for the next result: a rise ends the episode, a failure acts.
            return;
        }
        if self.track.forced {
            // Re-evaluated when a probe rises; no retry timer.
            self.suppress(probe, SuppressReason::ForcedRelease, None, out);
            return;
        }
        if self.carp.is_empty() {
            // No CARP reading yet (the start, before the first poll): unknown, not "not MASTER".
            return;
        }
        if !self.is_master() {
            if !self.track.measured {
                // The reading on record may be a poll interval old: measure before deciding.
                if !self.track.measuring {
                    self.track.measuring = true;
                    out.push(Action::Measure);
                }
                return;
            }
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
            self.track.asking = Some(Question::Track);
            out.push(Action::AskPeer);
        } else {
            self.decide_without_peer(now, probe, out);
        }
    }

    /// A watched VHID became MASTER while held. Without a peer to ask it can only be a lost
    /// peer; with one, ask before concluding (an ineffective lever looks exactly the same).
    pub(super) fn master_while_held(&mut self, out: &mut Vec<Action>) {
        let Some(fb) = &self.failback else { return };
        if fb.peer_lost || self.track.ineffective == Some(fb.id) {
            return; // already concluded for this failback
        }
        if !self.cfg.tracking.peer {
            // Nobody to ask: gone, or held too (a simultaneous boot elects one of two held
            // nodes). Unknown is not "lost".
            self.note_not_lost(fb.id, NotLost::PeerNotAsked, out);
            return;
        }
        if self.track.asking.is_none() {
            out.push(Action::AskPeer);
        }
        // An ask in flight for tracking answers this question just as well.
        self.track.asking = Some(Question::MasterWhileHeld);
    }

    pub(super) fn on_peer_answer(&mut self, now: Instant, answer: PeerHealth, out: &mut Vec<Action>) {
        match self.track.asking.take() {
            None => {} // nobody asked (or the episode ended meanwhile)
            Some(Question::MasterWhileHeld) => self.on_master_while_held_answer(answer, out),
            Some(Question::Track) => self.on_track_answer(now, answer, out),
        }
    }

    fn on_master_while_held_answer(&mut self, answer: PeerHealth, out: &mut Vec<Action>) {
        if !self.phase.is_holding() || !self.is_master() {
            return; // things changed while the peer was asked
        }
        let Some(id) = self.failback.as_ref().map(|f| f.id) else { return };
        match answer {
            // The peer is up and could take the traffic, yet this held node is MASTER: the
            // lever does not reach CARP/VRRP (a keepalived instance without the track file, a
            // sync group without tracking weight). Likewise a peer that lost MASTER just now
            // and holds because of it: this held node took MASTER from a live peer, which a
            // hold that reaches CARP (skew 240 against the peer's own) would not let it do.
            PeerHealth::Healthy | PeerHealth::Displaced => {
                self.track.ineffective = Some(id);
                out.push(Action::Record(Record::HoldIneffective { failback: id }));
            }
            // Alive and running CARP, but held too (a simultaneous boot: both at skew 240, the
            // master-down timer elects one) or on a dead path: not a lost peer (D14).
            PeerHealth::Unhealthy => self.note_not_lost(id, NotLost::PeerNotReady, out),
            PeerHealth::NotAsked => self.note_not_lost(id, NotLost::PeerNotAsked, out),
            // Gone for CARP (it says so) or not answering: CARP's master-down timer fired
            // because nothing better advertised. Unknown is not "held too": without an
            // answer the lost peer is the likelier reading, as without a `peer` at all.
            PeerHealth::NotInCarp | PeerHealth::Unreachable => self.mark_peer_lost(out),
        }
    }

    /// Records once per failback and conclusion that a MASTER while held was not a lost peer.
    fn note_not_lost(&mut self, id: u64, why: NotLost, out: &mut Vec<Action>) {
        if self.track.not_lost == Some((id, why)) {
            return;
        }
        self.track.not_lost = Some((id, why));
        let record = match why {
            NotLost::PeerNotReady => Record::PeerNotReady { failback: id },
            NotLost::PeerNotAsked => Record::PeerNotAsked { failback: id },
        };
        out.push(Action::Record(record));
    }

    fn on_track_answer(&mut self, now: Instant, answer: PeerHealth, out: &mut Vec<Action>) {
        let Some((probe, _)) = self.track.down else { return };
        if !self.tracking_applies()
            || self.tracked_down() != Some(probe)
            || !self.is_master()
            || self.answering_again(probe)
        {
            return; // things changed while the peer was asked: track_step re-evaluates
        }
        match answer {
            PeerHealth::Healthy => self.track_demote(now, probe, out),
            PeerHealth::Unhealthy | PeerHealth::Displaced | PeerHealth::NotInCarp => {
                self.suppress(probe, SuppressReason::PeerUnhealthy, now.checked_add(PEER_RETRY), out)
            }
            PeerHealth::Unreachable | PeerHealth::NotAsked => self.decide_without_peer(now, probe, out),
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

    /// Forgets the episode; the flap limit's history, a forced release's exemption and a
    /// question about a MASTER while held stay.
    fn reset_episode(&mut self) {
        let kept = Track {
            demotions: std::mem::take(&mut self.track.demotions),
            forced: self.track.forced,
            ineffective: self.track.ineffective,
            not_lost: self.track.not_lost,
            resumed_tracking: self.track.resumed_tracking,
            asking: self.track.asking.filter(|q| *q == Question::MasterWhileHeld),
            dampening: self.track.dampening,
            // Per stable stretch of a failback (reset by track_check_withdrawal), not per episode.
            withdraw: self.track.withdraw,
            ..Track::default()
        };
        self.track = kept;
    }

    /// Whether `max_hold` ends the failback in progress. A tracking failback under
    /// `max_hold_policy = "stay"` is not ended by it: the peer is serving, and the natural end
    /// is the release when the path returns (a `failed` that needs a person after every long
    /// upstream outage would be wrong).
    pub(super) fn max_hold_applies(&self) -> bool {
        let tracking = self.failback.as_ref().is_some_and(|f| {
            matches!(f.trigger, Trigger::Track { .. })
                || (f.trigger == Trigger::Resume && self.track.resumed_tracking == Some(f.id))
        });
        !(tracking && self.cfg.max_hold_policy == MaxHoldPolicy::Stay)
    }
}
