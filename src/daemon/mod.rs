//! The driver: owns the state machine and does its I/O. One task receives every input (control
//! requests, probe reports, backend results and measurements, the machine's deadline, the
//! reconcile tick), steps the machine, and carries out the actions. Backend calls and
//! measurements run in their own tracked tasks with a timeout, so a hung backend never stalls the
//! loop (quinn's `ConnectionDriver` shape: one sleep, reset only when the deadline changes).
//!
//! Time comes from tokio's clock ([`crate::telemetry::moments::now`]), so the whole daemon runs
//! on paused time in tests.

mod control;
mod observe;
pub(crate) mod peer;
mod probes;
mod record;
mod reload;
pub mod run;

use crate::carp::Backend;
use crate::config::Config;
use crate::control::Envelope;
use crate::machine::{Action, BackendOp, Boot, Event, Machine, Phase};
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
    observer: observe::Observer,
    last_probe: Vec<Option<ProbeOutcome>>,
    drain_waiters: Vec<oneshot::Sender<crate::control::Reply>>,
    persisted: Option<crate::statefile::Persisted>,
    maintenance_since: Option<Instant>,
    heartbeat: crate::server::Heartbeat,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// Starts the daemon's tasks on `tracker` and returns handles to it. Everything stops on
/// `cancel`; `tracker.wait()` (after `tracker.close()`) returns when it has.
pub async fn start(
    cfg: Config,
    backend: Arc<dyn Backend>,
    listeners: Listeners,
    cancel: CancellationToken,
    tracker: &TaskTracker,
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
    let mut daemon = Daemon {
        machine: Machine::new(cfg.machine(), started),
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
        observer: observe::Observer::default(),
        drain_waiters: Vec::new(),
        persisted: None,
        maintenance_since: None,
        heartbeat,
        cancel: cancel.clone(),
        tracker: tracker.clone(),
    };
    let (boot, reading) = daemon.boot_facts().await;
    tracing::info!(
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

/// Runs the loop; `ended` is cancelled however it ends, a panic included (the guard is dropped
/// while unwinding), so `failbackd run` can exit instead of serving a dead daemon's metrics.
async fn supervise(work: impl std::future::Future<Output = ()>, ended: CancellationToken) {
    let _guard = ended.drop_guard();
    work.await;
}

impl Daemon {
    /// What the previous run left (state file) and what the backend says now.
    async fn boot_facts(&mut self) -> (Boot, observe::Reading) {
        let persisted = match crate::statefile::read(&self.cfg.state_file) {
            Ok(p) => p,
            Err(e) => {
                // The file existed, so this is a restart, not a boot: do not hold a live master.
                tracing::warn!(error = %e, "ignoring the state file");
                Some(crate::statefile::Persisted::new(Phase::Idle))
            }
        };
        let previous = persisted.as_ref().map(|p| p.phase().unwrap_or(Phase::Idle));
        let reading = observe::measure(Arc::clone(&self.backend), self.backend_gen, 0, 0).await;
        let measured = reading.result.as_ref().ok().and_then(|o| o.held);
        // A backend that cannot tell falls back to what the state file says we had in place.
        let backend_demoted = measured.or(previous.and_then(Phase::wants_demoted));
        let now = now();
        let resumed = persisted.as_ref().and_then(|p| p.failback.as_ref()).map(|f| {
            let age = f.age();
            crate::machine::Resumed {
                id: f.id,
                // Before this process's clock can represent (an arm long before a young
                // process started): the age stays right, the instant saturates to now - age.
                armed_at: now.checked_sub(age).unwrap_or(now),
                peer_lost: f.peer_lost,
            }
        });
        let last_failback = persisted.as_ref().map_or(0, |p| p.last_failback);
        (Boot { backend_demoted, previous, resumed, last_failback }, reading)
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
        self.tracker.spawn(async move {
            let answer = match url {
                None => crate::machine::PeerHealth::Unreachable,
                Some(url) => match peer::ask(&url).await {
                    Ok(st) => {
                        let health = peer::judge(&st);
                        tracing::info!(peer = url, phase = st.phase, health = ?health, "asked the peer");
                        health
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot ask the peer");
                        crate::machine::PeerHealth::Unreachable
                    }
                },
            };
            let _ = tx.send(answer).await;
        });
    }

    /// Writes the state file when what it records changed.
    fn persist(&mut self) {
        let phase = self.machine.phase();
        let failback = self.machine.failback().map(|f| {
            // Keep the recorded arm time of a resumed failback: it is the original one.
            let kept = self.persisted.as_ref().and_then(|p| p.failback.clone()).filter(|p| p.id == f.id);
            let age = now().saturating_duration_since(f.armed_at);
            crate::statefile::PersistedFailback {
                id: f.id,
                armed_mono_ms: kept.as_ref().map_or_else(
                    || crate::statefile::monotonic_now().saturating_sub(age).as_millis() as u64,
                    |k| k.armed_mono_ms,
                ),
                armed_unix: kept
                    .as_ref()
                    .map_or_else(|| crate::telemetry::moments::unix_at(f.armed_at), |k| k.armed_unix),
                trigger: f.trigger.to_string(),
                peer_lost: f.peer_lost,
            }
        });
        let last_failback = self.machine.failback().map_or(self.machine.ended_failbacks(), |f| f.id);
        let state = crate::statefile::Persisted {
            failback,
            last_failback,
            ..crate::statefile::Persisted::new(phase)
        };
        let same = self.persisted.as_ref().is_some_and(|p| {
            p.phase == state.phase
                && p.last_failback == state.last_failback
                && p.failback.as_ref().map(|f| (f.id, f.peer_lost))
                    == state.failback.as_ref().map(|f| (f.id, f.peer_lost))
        });
        if same {
            return;
        }
        match crate::statefile::write(&self.cfg.state_file, &state) {
            Ok(()) => self.persisted = Some(state),
            Err(e) => tracing::warn!(error = %e, "cannot write the state file"),
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
