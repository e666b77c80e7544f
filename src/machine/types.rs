//! The vocabulary of the state machine: phases, events, actions, records and its config.

use std::fmt;
use std::time::Duration;

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
    /// `max_hold` passed with `max_hold_policy = "stay"`: demoted until someone acts.
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
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Boot => f.write_str("boot"),
            Trigger::Resume => f.write_str("resume"),
            Trigger::Manual => f.write_str("manual"),
            Trigger::Carp { vhid, iface, state } => write!(f, "carp {vhid}@{iface} {state}"),
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
    /// A watched VHID became MASTER while we held it: the peer is gone; not fought.
    PeerLost {
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
    /// `release` without `--force` while these required probes are down.
    ReleaseRefused {
        blockers: Vec<String>,
    },
    /// A drain ended: `handed_over` when every watched VHID left MASTER, false on timeout.
    DrainFinished {
        handed_over: bool,
    },
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
    pub rise: u32,
    pub fall: u32,
    pub required: bool,
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
}
