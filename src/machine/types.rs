//! The vocabulary of the state machine: phases, events, actions, records and its config.

use std::fmt;
use std::time::{Duration, Instant};

/// Where the node is in a failback. `Idle`, `Released` and `Failed` are at rest; the others
/// are part of a failback (or a drain) in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// No failback has run since start and the node is not held.
    Idle,
    /// A failback armed; the demote is being put in place.
    Holding,
    /// Demoted; waiting for every required probe to be up.
    Probing,
    /// Every required probe is up; waiting out `stable_for` and `min_hold`.
    Stabilizing,
    /// The promote is being put in place.
    Releasing,
    /// The last failback released the node; it may be MASTER.
    Released,
    /// `max_hold` passed with `max_hold_policy = "stay"`: demoted until the required probes pass
    /// for the stability window again (a late release) or someone acts.
    Failed,
    /// A planned shutdown: demoted so the peer takes over before the interfaces go.
    Draining,
}

/// Every phase, in the order used for metrics and dashboards.
pub const PHASES: [Phase; 8] = [
    Phase::Idle,
    Phase::Holding,
    Phase::Probing,
    Phase::Stabilizing,
    Phase::Releasing,
    Phase::Released,
    Phase::Failed,
    Phase::Draining,
];

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Holding => "holding",
            Phase::Probing => "probing",
            Phase::Stabilizing => "stabilizing",
            Phase::Releasing => "releasing",
            Phase::Released => "released",
            Phase::Failed => "failed",
            Phase::Draining => "draining",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        PHASES.into_iter().find(|p| p.as_str() == s)
    }

    /// The phases of a failback that has not reached an outcome yet.
    pub fn is_holding(self) -> bool {
        matches!(self, Phase::Holding | Phase::Probing | Phase::Stabilizing)
    }

    /// Phases that a restarted daemon must pick up again.
    pub fn in_failback(self) -> bool {
        self.is_holding() || matches!(self, Phase::Releasing | Phase::Draining)
    }

    /// The backend state this phase requires; `None` leaves the backend alone.
    pub fn wants_demoted(self) -> Option<bool> {
        match self {
            Phase::Idle => None,
            Phase::Holding | Phase::Probing | Phase::Stabilizing | Phase::Failed | Phase::Draining => {
                Some(true)
            }
            Phase::Releasing | Phase::Released => Some(false),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CARP/VRRP state as the syshook reports it (`MASTER`, `BACKUP`, `INIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CarpState {
    Master,
    Backup,
    Init,
}

impl CarpState {
    pub const ALL: [CarpState; 3] = [CarpState::Master, CarpState::Backup, CarpState::Init];

    pub fn as_str(self) -> &'static str {
        match self {
            CarpState::Master => "MASTER",
            CarpState::Backup => "BACKUP",
            CarpState::Init => "INIT",
        }
    }

    /// Parses the syshook's `$2`; exact, upper case, as configd passes it.
    pub fn parse(s: &str) -> Option<CarpState> {
        CarpState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for CarpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What armed a failback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The daemon started at boot with `hold_on_boot`.
    Boot,
    /// The daemon restarted and found a hold in place (or on record): it picks it up.
    Resume,
    /// A CARP transition on a watched interface.
    Carp { vhid: u16, iface: String, state: CarpState },
    /// `failbackd hold`.
    Manual,
    /// Tracking: a tracked probe went down while this node was MASTER (the name of the probe).
    Track { probe: String },
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Boot => f.write_str("boot"),
            Trigger::Resume => f.write_str("resume"),
            Trigger::Manual => f.write_str("manual"),
            Trigger::Carp { vhid, iface, state } => write!(f, "carp {vhid}@{iface} {state}"),
            Trigger::Track { probe } => write!(f, "track {probe}"),
        }
    }
}

/// How a failback ended. Every armed failback ends in exactly one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Every required probe passed, the stability window and `min_hold` elapsed.
    Released,
    /// Released without passing the gate: by `max_hold_policy = "release"` or by hand.
    Forced,
    /// `max_hold` reached with policy `stay`: the node is left demoted (phase `Failed`).
    Failed,
    /// Superseded before an outcome: a drain (planned shutdown) started during the failback.
    Aborted,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Released, Outcome::Forced, Outcome::Failed, Outcome::Aborted];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Released => "released",
            Outcome::Forced => "forced",
            Outcome::Failed => "failed",
            Outcome::Aborted => "aborted",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendOp {
    Demote,
    Promote,
}

impl BackendOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendOp::Demote => "demote",
            BackendOp::Promote => "promote",
        }
    }
}

/// What the daemon knows at start, for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Boot {
    /// Whether the backend reports the node demoted by failbackd (`None`: could not read it).
    pub backend_demoted: Option<bool>,
    /// The phase persisted by the previous run, `None` on a fresh boot (the state file lives in
    /// /var/run, which the OS clears at boot).
    pub previous: Option<Phase>,
    /// The failback the previous run had in progress, to resume as the same failback: same id,
    /// same arm time, hence the same `max_hold` deadline (a crash loop ends in `Failed` on time).
    pub resumed: Option<Resumed>,
    /// The id of the last failback the previous run started, so ids keep counting up.
    pub last_failback: u64,
    /// The start could not see whether failbackd's own lever is on: a backend without a
    /// readable state, or a shared lever (OPNsense `service_status`'s 2^20 bit) that is set and
    /// may be another check's. `backend_demoted` may then be inferred from the state file, which
    /// can be stale (its writes failed) or gone (failbackd reinstalled during a hold).
    pub lever_unseen: bool,
}

/// A failback on record from the previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    pub id: u64,
    /// When it armed, on this run's monotonic clock (the driver converts the recorded time).
    pub armed_at: Instant,
    pub peer_lost: bool,
}

/// One CARP/VRRP instance as measured from the OS (not from a hook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarpReading {
    pub vhid: u16,
    pub iface: String,
    pub state: CarpState,
}

/// A measurement of the backend, taken by the driver. `backend_seq` and `carp_seq` are the
/// machine's counters read when the measurement *started* ([`crate::machine::Machine::backend_seq`],
/// [`crate::machine::Machine::carp_seq`]): a measurement that a backend call or a hook overtook
/// is stale and ignored, so an old reading can never undo a newer fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub backend_seq: u64,
    pub carp_seq: u64,
    /// failbackd's lever as measured (`None`: the backend cannot tell).
    pub held: Option<bool>,
    /// The lever is in place but not by failbackd's doing (an operator's maintenance mode):
    /// relied upon while holding, never undone, never counted as drift.
    pub foreign: bool,
    /// With `foreign`: failbackd's own part of a shared lever is in place as well (OPNsense
    /// `service_status`: its check fails and the 2^20 bit is set while an operator's
    /// maintenance adds 240). The hold is then failbackd's and someone else's at once, and both
    /// are reported; a lever with one flag for both (maintenance mode) never sets it.
    pub also_ours: bool,
    /// The watched CARP instances the OS reports (`None`: the backend cannot read them).
    pub carp: Option<Vec<CarpReading>>,
}

/// Which way the hold changed behind failbackd's back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drift {
    /// failbackd's hold appeared while the machine had it removed.
    Added,
    /// failbackd's hold disappeared while the machine had it in place.
    Removed,
}

impl Drift {
    pub const ALL: [Drift; 2] = [Drift::Added, Drift::Removed];

    pub fn as_str(self) -> &'static str {
        match self {
            Drift::Added => "added",
            Drift::Removed => "removed",
        }
    }
}

/// An input to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Must be the first event.
    Boot(Boot),
    /// A CARP transition on a watched interface (the driver drops the others).
    Carp { vhid: u16, iface: String, state: CarpState },
    /// One probe attempt finished; `probe` is its index in [`MachineConfig::probes`].
    Probe { probe: usize, ok: bool },
    /// `failbackd hold`.
    ManualHold,
    /// `failbackd release [--force]`.
    ManualRelease { force: bool },
    /// `failbackd drain`: demote for a planned shutdown and report when the peer took over.
    Drain { timeout: Duration },
    /// A backend call issued by an [`Action`] finished.
    Backend { op: BackendOp, ok: bool },
    /// The deadline from [`crate::machine::Machine::next_deadline`] passed.
    Tick,
    /// A periodic (or post-call) measurement of the backend and the CARP states.
    Observed(Observed),
    /// The backend was replaced (reload): its state is unknown until the next [`Event::Observed`],
    /// and no call is made before that; results of the old backend's calls are ignored.
    BackendReplaced,
    /// The peer's answer to [`Action::AskPeer`].
    PeerAnswer(PeerHealth),
    /// A reloaded configuration (SIGHUP). The phase and any hold in progress are kept; probe
    /// counters carry over by probe name, new probes start down.
    Reconfigure(Box<MachineConfig>),
}

/// An output of the state machine, for the driver to carry out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Demote the node; answer with [`Event::Backend`].
    Demote,
    /// Promote the node; answer with [`Event::Backend`].
    Promote,
    /// A failback armed: run every probe now and forget results of attempts started before.
    RestartProbes,
    /// Tracking wants to demote a MASTER: ask the peer whether it can take over; answer with
    /// [`Event::PeerAnswer`].
    AskPeer,
    /// Measure the backend and the CARP states now (answer with [`Event::Observed`]), because a
    /// decision depends on them: tracking does not call a node "not MASTER" on a reading that may
    /// be a poll interval old (the node may have become MASTER since, with no hook).
    Measure,
    /// Something to put into metrics, traces and logs.
    Record(Record),
}

/// A fact for telemetry. The machine says what happened; the driver decides how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    PhaseChanged {
        from: Phase,
        to: Phase,
        held_for: Duration,
    },
    FailbackStarted {
        failback: u64,
        trigger: Trigger,
    },
    FailbackEnded {
        failback: u64,
        outcome: Outcome,
        duration: Duration,
        peer_lost: bool,
    },
    /// A watched VHID became MASTER while we held it: the peer is gone (it could not be asked,
    /// or it answered that none of its VHIDs runs CARP); not fought.
    PeerLost {
        failback: u64,
    },
    /// A watched VHID became MASTER while we held it, and the peer answered that it runs CARP
    /// but cannot take over either (held too, e.g. after a simultaneous boot, or its path is
    /// down): CARP elected this node among two unready ones. Neither a lost peer nor an
    /// ineffective hold; not fought (once per failback).
    PeerNotReady {
        failback: u64,
    },
    /// A watched VHID became MASTER while we held it, and there is no peer to ask (none
    /// configured, or the URL reaches this node): the peer is gone or held too (a simultaneous
    /// boot), failbackd cannot tell which; not fought (once per failback).
    PeerNotAsked {
        failback: u64,
    },
    /// A watched VHID became MASTER while we held it, and the peer answered that it could take
    /// the traffic: failbackd's lever does not reach CARP/VRRP (once per failback).
    HoldIneffective {
        failback: u64,
    },
    ProbeChanged {
        probe: usize,
        up: bool,
    },
    BackendFailed {
        op: BackendOp,
        attempt: u32,
    },
    /// A `failed` node's required probes passed for the whole stability window: it is released
    /// after all (`failed_for`: how long it stayed `failed`).
    RecoveredAfterFailure {
        failed_for: Duration,
    },
    /// `release` without `--force` while these required probes are down.
    ReleaseRefused {
        blockers: Vec<String>,
    },
    /// A drain ended: `handed_over` when every watched VHID left MASTER, false on timeout.
    DrainFinished {
        handed_over: bool,
    },
    /// A drain ended unfinished because a `hold` or `release` took over.
    DrainSuperseded,
    /// A watched VHID changed state. `transition` is false for the first reading of a VHID by
    /// the OS poll (after a restart): a state learned, not a change seen.
    CarpChanged {
        vhid: u16,
        iface: String,
        state: CarpState,
        transition: bool,
    },
    /// The measured hold differs from the one the machine had confirmed: someone changed it
    /// behind failbackd's back. `wanted` is what the phase wants (re-applied with backoff).
    BackendDrift {
        direction: Drift,
        wanted: Option<bool>,
    },
    /// A hold that is not failbackd's appeared (`held`) or went away; left alone either way.
    ForeignHold {
        held: bool,
    },
    /// At start, the state file said `previous` (a hold in place) but failbackd's own lever
    /// was measured off: a stale file or a hold someone removed; not resumed (the node is
    /// released).
    HoldNotResumed {
        previous: Phase,
    },
    /// Tracking demoted a MASTER because tracked probe `probe` is down.
    TrackDemoted {
        probe: usize,
    },
    /// Tracking would have demoted, and did not (once per down episode and reason).
    TrackSuppressed {
        probe: usize,
        reason: SuppressReason,
    },
    /// The tracked probe that was down (and whose demotion was suppressed or not due yet) is up
    /// again, or the node left the state in which tracking applies.
    TrackCleared,
}

/// What the peer said when asked whether it can take the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerHealth {
    /// It answered, and its own tracked probes are up: it can take over.
    Healthy,
    /// It answered, it runs CARP, and it is not ready (held, or its tracked probes are down).
    Unhealthy,
    /// It answered, and it is holding because it lost MASTER moments ago (its failback's trigger
    /// is its own CARP BACKUP, armed within [`DISPLACED_WITHIN`]): not ready, and to a node
    /// that became MASTER while held at the same time, the sign that its hold did not stop it.
    Displaced,
    /// It answered, and none of its VHIDs runs CARP (every one INIT): it cannot take over, and
    /// for CARP it is gone.
    NotInCarp,
    /// It could not be asked (unreachable, slow, a garbage answer).
    Unreachable,
    /// There is no peer to ask: none configured, or the configured URL reaches this node.
    NotAsked,
}

/// What a held node that CARP made MASTER concluded, when it is neither a lost peer nor an
/// ineffective hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLost {
    /// [`Record::PeerNotReady`].
    PeerNotReady,
    /// [`Record::PeerNotAsked`].
    PeerNotAsked,
}

impl NotLost {
    pub fn as_str(self) -> &'static str {
        match self {
            NotLost::PeerNotReady => "peer_not_ready",
            NotLost::PeerNotAsked => "peer_not_asked",
        }
    }
}

/// How recently the peer must have lost MASTER for [`PeerHealth::Displaced`]: the ask follows
/// the CARP event by the hook delay plus the peer timeout; a failback older than this is not
/// the one our MASTER started.
pub const DISPLACED_WITHIN: Duration = Duration::from_secs(10);

/// Why tracking left a MASTER with a dead path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressReason {
    /// The node is not MASTER: demoting it changes nothing.
    NotMaster,
    /// The peer answered that it is not ready either (a shared outage: no ping-pong).
    PeerUnhealthy,
    /// The peer could not be asked and the probe says `track_without_peer = "stay"`.
    PeerUnreachable,
    /// The flap limit: too many tracking demotions in the window; one node serving beats a pair
    /// that ping-pongs.
    FlapLimit,
    /// The node was released by force (`release --force`, `max_hold_policy = "release"`):
    /// that decision stands until the tracked probes have risen once.
    ForcedRelease,
}

impl SuppressReason {
    pub const ALL: [SuppressReason; 5] = [
        SuppressReason::NotMaster,
        SuppressReason::PeerUnhealthy,
        SuppressReason::PeerUnreachable,
        SuppressReason::FlapLimit,
        SuppressReason::ForcedRelease,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressReason::NotMaster => "not_master",
            SuppressReason::PeerUnhealthy => "peer_unhealthy",
            SuppressReason::PeerUnreachable => "peer_unreachable",
            SuppressReason::FlapLimit => "flap_limit",
            SuppressReason::ForcedRelease => "forced_release",
        }
    }
}

/// A probe's tracking settings: set only on probes with `track = true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackSpec {
    /// When the peer cannot be asked: demote anyway (`true`) or stay MASTER (`false`).
    pub demote_without_peer: bool,
}

/// Tracking: demoting a MASTER whose path died (issue: CARP fails over only on link loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackingConfig {
    /// How long a tracked probe must have been down (fell by its `fall`) before the demotion.
    pub track_for: Duration,
    /// At most this many tracking demotions per `window`; then stay MASTER, loudly.
    pub max_demotions: u32,
    pub window: Duration,
    /// Whether a peer URL is configured (else the peer "cannot be asked").
    pub peer: bool,
    /// With a peer: dampening the return after tracking demotions (replaces the flap limit).
    pub dampen: super::dampen::DampenConfig,
    /// With a peer: how long after this node became MASTER (from BACKUP) the peer's answer may
    /// still predate the cause (its `reconcile_interval` plus a measurement): see track.rs.
    pub peer_settle: Duration,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            track_for: Duration::ZERO,
            max_demotions: 3,
            window: Duration::from_secs(3600),
            peer: false,
            dampen: super::dampen::DampenConfig::default(),
            peer_settle: Duration::ZERO,
        }
    }
}

/// When `max_hold` passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxHoldPolicy {
    /// Stay demoted, phase `Failed`, outcome `failed`, loudly.
    #[default]
    Stay,
    /// Release anyway, outcome `forced`.
    Release,
}

impl MaxHoldPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MaxHoldPolicy::Stay => "stay",
            MaxHoldPolicy::Release => "release",
        }
    }
}

/// Per-probe thresholds the machine needs (the rest of a probe's config lives in the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub name: String,
    /// What the probe checks (type and target): a reload carries a probe's tally over only when
    /// its name *and* identity are unchanged, so a probe re-pointed at a new target starts down.
    pub identity: String,
    pub rise: u32,
    pub fall: u32,
    pub required: bool,
    /// Tracking (`track = true`): this probe going down demotes a MASTER.
    pub track: Option<TrackSpec>,
}

/// Retry schedule for failed backend calls: `initial * 2^(n-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The delay before retry number `failures` (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(16);
        self.initial.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// The machine's configuration: the timing rules and the probe thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    pub hold_on_boot: bool,
    pub min_hold: Duration,
    pub max_hold: Duration,
    pub max_hold_policy: MaxHoldPolicy,
    pub stable_for: Duration,
    pub probes: Vec<ProbeSpec>,
    pub backoff: Backoff,
    pub tracking: TrackingConfig,
    /// failbackd's lever is shared with other holders (OPNsense `service_status`: the 2^20 bit
    /// of every service check): a foreign hold found while the phase wants the hold is not
    /// relied upon; failbackd puts its own part in place (the evaluation its demote triggers
    /// counts its failing check), so that the bit is then failbackd's for certain.
    pub shared_lever: bool,
}
