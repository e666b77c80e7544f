//! The driver: owns the state machine and does its I/O. One task receives every input (control
//! requests, probe reports, backend results and measurements, the machine's deadline, the
//! reconcile tick), steps the machine, and carries out the actions. Backend calls and
//! measurements run in their own tracked tasks with a timeout, so a hung backend never stalls the
//! loop (quinn's `ConnectionDriver` shape: one sleep, reset only when the deadline changes).
//!
//! Time comes from tokio's clock ([`crate::telemetry::moments::now`]), so the whole daemon runs
//! on paused time in tests.

pub mod boot;
pub mod carry;
mod control;
mod observe;
pub(crate) mod peer;
mod probes;
pub(crate) mod record;
mod reload;
pub mod run;

use crate::carp::Backend;
use crate::config::Config;
use crate::control::Envelope;
use crate::machine::{Action, BackendOp, Boot, Event, Machine};
use crate::probe::ProbeOutcome;
use crate::status::Status;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::moments::now;
use crate::telemetry::spans::FailbackSpans;
use probes::Probes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Control requests waiting for the loop; beyond this they are refused and counted.
pub const CONTROL_QUEUE: usize = 256;
/// Probe reports waiting for the loop (probe tasks wait when it is full, nothing is lost).
const PROBE_QUEUE: usize = 64;
/// Upper bound on one backend operation, whatever the backend's own timeout says.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the daemon serves and where.
pub struct Listeners {
    pub control: UnixListener,
    pub http: TcpListener,
}

/// Handles a caller keeps to watch a running daemon (the demo, tests).
#[derive(Clone)]
pub struct Handles {
    pub metrics: Metrics,
    pub status: watch::Receiver<Status>,
    /// Sends a reloaded config (SIGHUP); the daemon applies it without losing a hold.
    pub reload: mpsc::Sender<Config>,
    /// Cancelled when the daemon loop has ended, for whatever reason (a panic included): the
    /// process must not go on serving /metrics about a loop that no longer runs.
    pub loop_ended: CancellationToken,
}

/// A backend call's result, tagged with the backend generation that made it.
type BackendResult = (u64, BackendOp, Result<(), String>, Duration);

/// Everything the loop receives.
struct Inputs {
    control_rx: mpsc::Receiver<Envelope>,
    probe_rx: mpsc::Receiver<probes::Tagged>,
    backend_rx: mpsc::Receiver<BackendResult>,
    observe_rx: mpsc::Receiver<observe::Reading>,
    peer_rx: mpsc::Receiver<crate::machine::PeerHealth>,
    reload_rx: mpsc::Receiver<Config>,
}

pub(crate) struct Daemon {
    cfg: Config,
    machine: Machine,
    backend: Arc<dyn Backend>,
    /// Bumped when a reload replaces the backend: results of the old one's calls are dropped.
    backend_gen: u64,
    metrics: Metrics,
    spans: FailbackSpans,
    probes: Probes,
    status_tx: watch::Sender<Status>,
    backend_tx: mpsc::Sender<BackendResult>,
    observe_tx: mpsc::Sender<observe::Reading>,
    peer_tx: mpsc::Sender<crate::machine::PeerHealth>,
    /// What the last ask of the peer said, so a repeat is logged at debug only.
    peer_said: Arc<peer::LastSaid>,
    observer: observe::Observer,
    last_probe: Vec<Option<ProbeOutcome>>,
    drain_waiters: Vec<oneshot::Sender<crate::control::Reply>>,
    persisted: Option<crate::statefile::Persisted>,
    /// This boot's identity, written into the state file.
    boot_id: Option<String>,
    /// The last state file write error, logged once per change (a read-only file system would
    /// otherwise log on every step).
    state_file_error: Option<String>,
    maintenance_since: Option<Instant>,
    heartbeat: crate::server::Heartbeat,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Starts the daemon's tasks on `tracker` and returns handles to it. Everything stops on
/// `cancel`; `tracker.wait()` (after `tracker.close()`) returns when it has. For embedders, tests
/// and the demo: the system is taken as just booted (no state file of this boot is a boot), as
/// the uptime of the machine running them says nothing about the node they simulate.
/// `failbackd run` uses [`start_as`].
pub async fn start(
    cfg: Config,
    backend: Arc<dyn Backend>,
    listeners: Listeners,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Handles> {
    let system = boot::SystemBoot { uptime: None, ..boot::SystemBoot::read().await };
    start_in(cfg, backend, listeners, cancel, tracker, boot::StartMode::Auto, system).await
}

/// [`start`] on this system (boot identity and uptime), told what this start is
/// (`failbackd run --start`).
pub async fn start_as(
    cfg: Config,
    backend: Arc<dyn Backend>,
    listeners: Listeners,
    cancel: CancellationToken,
    tracker: &TaskTracker,
    mode: boot::StartMode,
) -> anyhow::Result<Handles> {
    start_in(cfg, backend, listeners, cancel, tracker, mode, boot::SystemBoot::read().await).await
}

async fn start_in(
    cfg: Config,
    backend: Arc<dyn Backend>,
    listeners: Listeners,
    cancel: CancellationToken,
    tracker: &TaskTracker,
    mode: boot::StartMode,
    system: boot::SystemBoot,
) -> anyhow::Result<Handles> {
    let metrics = Metrics::new(&cfg, backend.name())?;
    let (status_tx, status_rx) = watch::channel(Status::default());
    let (control_tx, control_rx) = mpsc::channel::<Envelope>(CONTROL_QUEUE);
    let (probe_tx, probe_rx) = mpsc::channel::<probes::Tagged>(PROBE_QUEUE);
    let (reload_tx, reload_rx) = mpsc::channel::<Config>(4);
    let (backend_tx, backend_rx) = mpsc::channel(8);
    let (observe_tx, observe_rx) = mpsc::channel(2);
    let (peer_tx, peer_rx) = mpsc::channel(2);
    let spans = FailbackSpans::default();
    let probes = Probes::start(&cfg, probe_tx, spans.clone(), &cancel, tracker)?;
    let heartbeat = crate::server::Heartbeat::new(cfg.reconcile_interval);
    let loop_ended = CancellationToken::new();

    let handles = Handles {
        metrics: metrics.clone(),
        status: status_rx.clone(),
        reload: reload_tx,
        loop_ended: loop_ended.clone(),
    };
    tracker.spawn(crate::control::serve(
        listeners.control,
        control_tx,
        metrics.control_requests_dropped.clone(),
        cancel.clone(),
        tracker.clone(),
    ));
    let app =
        crate::server::AppState { metrics: metrics.clone(), status: status_rx, heartbeat: heartbeat.clone() };
    tracker.spawn(crate::server::serve(listeners.http, app, cancel.clone(), tracker.clone()));

    let started = now();
    let machine = Machine::new(cfg.machine(), started);
    let mut daemon = Daemon {
        machine,
        last_probe: vec![None; cfg.probes.len()],
        cfg,
        backend,
        backend_gen: 0,
        metrics,
        spans,
        probes,
        status_tx,
        backend_tx,
        observe_tx,
        peer_tx,
        peer_said: Arc::default(),
        observer: observe::Observer::default(),
        drain_waiters: Vec::new(),
        persisted: None,
        boot_id: None,
        state_file_error: None,
        maintenance_since: None,
        heartbeat,
        cancel: cancel.clone(),
        tracker: tracker.clone(),
    };
    let (boot, reading, decision) = daemon.boot_facts(mode, system).await;
    tracing::info!(
        start = decision.kind.as_str(),
        why = decision.why,
        previous = boot.previous.map(|p| p.as_str()),
        resumed = boot.resumed.map(|r| r.id),
        demoted = ?boot.backend_demoted,
        backend = daemon.backend.name(),
        "failbackd starting"
    );
    daemon.step(Event::Boot(boot));
    // The CARP states the OS reports now, before any hook: who is MASTER is known at once.
    daemon.on_reading(reading);
    let inputs = Inputs { control_rx, probe_rx, backend_rx, observe_rx, peer_rx, reload_rx };
    tracker.spawn(supervise(daemon.run(inputs, cancel), loop_ended));
    Ok(handles)
}

/// The clocks the state file records, read now.
fn clocks() -> carry::Clocks {
    let unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    carry::Clocks { now: now(), mono: crate::statefile::monotonic_now(), unix }
}

/// Runs the loop; `ended` is cancelled however it ends, a panic included (the guard is dropped
/// while unwinding), so `failbackd run` can exit instead of serving a dead daemon's metrics.
async fn supervise(work: impl std::future::Future<Output = ()>, ended: CancellationToken) {
    let _guard = ended.drop_guard();
    work.await;
}

impl Daemon {
    /// What the previous run left (state file), which boot this is and what the backend says
    /// now; [`boot::boot_event`] decides.
    async fn boot_facts(
        &mut self,
        mode: boot::StartMode,
        system: boot::SystemBoot,
    ) -> (Boot, observe::Reading, boot::Decision) {
        let found = boot::Found::read(&self.cfg.state_file);
        if let boot::Found::Unreadable(e) = &found {
            tracing::warn!(error = %e, "ignoring the state file");
        }
        self.boot_id = system.id.clone();
        let reading = observe::measure(Arc::clone(&self.backend), self.backend_gen, 0, 0).await;
        // A shared lever's bit is only known to be ours once the phase is (the machine re-applies
        // what the phase wants; the calls are idempotent); a clear bit is known not to be.
        let shared = self.shared_lever();
        let measured = reading.result.as_ref().ok().and_then(|o| boot::own_hold(o.held, o.foreign, shared));
        let (boot, decision) =
            boot::boot_event(&found, &system, mode, measured, now(), crate::statefile::monotonic_now());
        if let boot::Found::File(p) = &found {
            carry::carry_over(&mut self.machine, p, decision.kind, clocks());
        }
        (boot, reading, decision)
    }

    async fn run(mut self, mut inputs: Inputs, cancel: CancellationToken) {
        let mut reconcile = tokio::time::interval(self.cfg.reconcile_interval);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.heartbeat.beat();
            let deadline = self.machine.next_deadline().map(tokio::time::Instant::from_std);
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some((req, reply)) = inputs.control_rx.recv() => self.on_control(req, reply),
                Some(report) = inputs.probe_rx.recv() => self.on_probe(report),
                Some(result) = inputs.backend_rx.recv() => self.on_backend(result),
                Some(reading) = inputs.observe_rx.recv() => self.on_reading(reading),
                Some(answer) = inputs.peer_rx.recv() => { self.step(Event::PeerAnswer(answer)); }
                Some(cfg) = inputs.reload_rx.recv() => {
                    let interval = self.cfg.reconcile_interval;
                    self.reload(cfg);
                    if self.cfg.reconcile_interval != interval {
                        reconcile = tokio::time::interval(self.cfg.reconcile_interval);
                        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    }
                }
                _ = reconcile.tick() => self.observe(),
                _ = timer => { self.step(Event::Tick); }
            }
        }
        tracing::info!(phase = %self.machine.phase(), "failbackd stopping; the state file keeps the phase for the next start");
        // Close a failback's spans so they are exported (outcome "interrupted" if undecided).
        self.spans.interrupted();
    }

    fn on_probe(&mut self, tagged: probes::Tagged) {
        if !self.probes.is_current(&tagged) {
            // Started before the failback armed, or by a runner replaced on reload.
            return;
        }
        let (_, report) = tagged;
        let Some(cfg) = self.cfg.probes.get(report.probe) else { return };
        let name = cfg.name.as_str();
        let o = &report.outcome;
        self.metrics
            .probe_duration
            .with_label_values(&[name, cfg.kind.type_name()])
            .observe(o.latency.as_secs_f64());
        let result = if o.ok {
            "success"
        } else if report.timed_out {
            "timeout"
        } else {
            "failure"
        };
        self.metrics.probe_attempts.with_label_values(&[name, result]).inc();
        self.metrics.probe_attempts_by_interval.with_label_values(&[name, report.pace.as_str()]).inc();
        self.metrics.probe_success.with_label_values(&[name]).set(i64::from(o.ok));
        let ok = o.ok;
        if let Some(slot) = self.last_probe.get_mut(report.probe) {
            *slot = Some(report.outcome);
        }
        self.step(Event::Probe { probe: report.probe, ok });
    }

    fn on_backend(&mut self, (generation, op, result, took): BackendResult) {
        if generation != self.backend_gen {
            return; // a call of a backend that a reload replaced
        }
        self.metrics.backend_duration.with_label_values(&[op.as_str()]).observe(took.as_secs_f64());
        match &result {
            Ok(()) => {
                tracing::info!(backend = self.backend.name(), operation = op.as_str(), "backend call done")
            }
            Err(e) => {
                self.metrics.backend_op_error(self.backend.name(), op);
                tracing::error!(backend = self.backend.name(), operation = op.as_str(), error = %e, "backend call failed");
            }
        }
        self.step(Event::Backend { op, ok: result.is_ok() });
        // Measure what the call left, rather than trust it.
        self.observe();
    }

    /// Steps the machine and carries out what it asks for.
    fn step(&mut self, event: Event) -> Vec<crate::machine::Record> {
        let now = now();
        let actions = self.machine.step(now, event);
        let mut records = Vec::new();
        let mut restart = false;
        for action in actions {
            match action {
                Action::Demote => self.call_backend(BackendOp::Demote),
                Action::Promote => self.call_backend(BackendOp::Promote),
                Action::AskPeer => self.ask_peer(),
                Action::Measure => self.observe(),
                Action::RestartProbes => {
                    restart = true;
                    self.last_probe.iter_mut().for_each(|p| *p = None);
                }
                Action::Record(r) => {
                    self.record(now, &r);
                    records.push(r);
                }
            }
        }
        if restart {
            // After the records: the new failback's phase span exists before any probe task
            // wakes up and starts an attempt under it.
            self.probes.restart();
        }
        self.probes.set_waiting(self.machine.phase().is_holding());
        self.persist();
        self.publish(now);
        records
    }

    fn call_backend(&self, op: BackendOp) {
        tracing::info!(backend = self.backend.name(), operation = op.as_str(), "backend call");
        let backend = Arc::clone(&self.backend);
        let tx = self.backend_tx.clone();
        let generation = self.backend_gen;
        // Tracked: a shutdown waits for a promote in progress instead of cutting it.
        self.tracker.spawn(async move {
            let started = now();
            let call = async move {
                match op {
                    BackendOp::Demote => backend.demote().await,
                    BackendOp::Promote => backend.promote().await,
                }
            };
            // In its own task so that a panicking backend is an error, not a call that never
            // answers (the machine would wait for it for ever).
            let result = match tokio::time::timeout(BACKEND_TIMEOUT, tokio::spawn(call)).await {
                Ok(Ok(r)) => r.map_err(|e| e.to_string()),
                Ok(Err(e)) => Err(format!("{} failed: {e}", op.as_str())),
                Err(_) => Err(format!("{} timed out after {}s", op.as_str(), BACKEND_TIMEOUT.as_secs())),
            };
            // The loop is gone only at shutdown; the state file has the phase for the restart.
            let _ = tx.send((generation, op, result, now().saturating_duration_since(started))).await;
        });
    }

    /// Tracking asks whether the peer can take over (the machine waits for the answer).
    fn ask_peer(&self) {
        let tx = self.peer_tx.clone();
        let url = self.cfg.tracking.peer.clone();
        let said = Arc::clone(&self.peer_said);
        self.tracker.spawn(async move {
            // Asked every few seconds while a suppression lasts: each answer is logged at its
            // level when it differs from the last one, a repeat at debug.
            let answer = match url {
                None => crate::machine::PeerHealth::NotAsked,
                Some(url) => match peer::ask(&url).await {
                    Ok(st) => {
                        let health = peer::judge(&st);
                        if said.is_new(format!("{health:?} {}", st.phase)) {
                            tracing::info!(peer = url, phase = st.phase, health = ?health, "asked the peer");
                        } else {
                            tracing::debug!(peer = url, phase = st.phase, health = ?health, "asked the peer");
                        }
                        health
                    }
                    Err(e) => {
                        if said.is_new(e.message.clone()) {
                            tracing::warn!(error = %e, "cannot ask the peer");
                        } else {
                            tracing::debug!(error = %e, "cannot ask the peer");
                        }
                        e.health()
                    }
                },
            };
            let _ = tx.send(answer).await;
        });
    }

    /// Writes the state file when what it records changed.
    fn persist(&mut self) {
        let Some(state) =
            carry::record(&self.machine, self.persisted.as_ref(), self.boot_id.as_deref(), clocks())
        else {
            return;
        };
        match crate::statefile::write(&self.cfg.state_file, &state) {
            Ok(()) => {
                self.persisted = Some(state);
                if self.state_file_error.take().is_some() {
                    tracing::info!(path = %self.cfg.state_file.display(), "the state file is written again");
                }
            }
            Err(e) => {
                self.metrics.state_file_write_errors.inc();
                if self.state_file_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(
                        error = %e,
                        "cannot write the state file: a restart or `failbackd ready` works from a stale \
                         or missing one (said again only when the error changes; see \
                         failback_state_file_write_errors_total)"
                    );
                    self.state_file_error = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_loop_is_reported_as_ended() {
        let ended = CancellationToken::new();
        let task = tokio::spawn(supervise(async { panic!("boom") }, ended.clone()));
        assert!(task.await.unwrap_err().is_panic());
        assert!(ended.is_cancelled(), "run.rs sees the loop gone and exits");
        let ended = CancellationToken::new();
        supervise(async {}, ended.clone()).await;
        assert!(ended.is_cancelled());
    }
}
