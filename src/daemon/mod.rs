//! The driver: owns the state machine and does its I/O. One task receives every input (control
//! requests, probe reports, backend results, the machine's deadline), steps the machine, and
//! carries out the actions. Backend calls run in their own tasks with a timeout, so a hung
//! backend never stalls the loop (quinn's `ConnectionDriver` shape: one sleep, reset only when
//! the deadline changes).

mod control;
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
use crate::telemetry::spans::FailbackSpans;
use probes::Probes;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Control requests waiting for the loop; beyond this they are refused and counted.
pub const CONTROL_QUEUE: usize = 256;
/// Probe reports waiting for the loop (probe tasks wait when it is full, nothing is lost).
const PROBE_QUEUE: usize = 64;
/// Upper bound on one backend call, whatever the backend's own timeout says.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Maps the machine's monotonic instants to wall-clock time for people and Prometheus.
/// Only display uses it: every timer runs on `Instant`, so a clock step changes no outcome.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_unix: f64,
}

impl Clock {
    pub fn new() -> Clock {
        let base_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Clock { base: Instant::now(), base_unix }
    }
    pub fn unix(&self, at: Instant) -> f64 {
        if at >= self.base {
            self.base_unix + (at - self.base).as_secs_f64()
        } else {
            self.base_unix - (self.base - at).as_secs_f64()
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

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
}

/// Everything the loop receives.
struct Inputs {
    control_rx: mpsc::Receiver<Envelope>,
    probe_rx: mpsc::Receiver<probes::Tagged>,
    backend_rx: mpsc::Receiver<(BackendOp, Result<(), String>)>,
    reload_rx: mpsc::Receiver<Config>,
}

pub(crate) struct Daemon {
    cfg: Config,
    machine: Machine,
    backend: Arc<dyn Backend>,
    metrics: Metrics,
    spans: FailbackSpans,
    probes: Probes,
    clock: Clock,
    status_tx: watch::Sender<Status>,
    backend_tx: mpsc::Sender<(BackendOp, Result<(), String>)>,
    last_probe: Vec<Option<ProbeOutcome>>,
    drain_waiters: Vec<oneshot::Sender<crate::control::Reply>>,
    persisted: Option<Phase>,
    maintenance_since: Option<Instant>,
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
    let spans = FailbackSpans::default();
    let probes = Probes::start(&cfg, probe_tx, spans.clone(), &cancel, tracker)?;

    let handles = Handles { metrics: metrics.clone(), status: status_rx.clone(), reload: reload_tx };
    tracker.spawn(crate::control::serve(
        listeners.control,
        control_tx,
        metrics.control_requests_dropped.clone(),
        cancel.clone(),
    ));
    let app = crate::server::AppState { metrics: metrics.clone(), status: status_rx };
    tracker.spawn(crate::server::serve(listeners.http, app, cancel.clone()));

    let now = Instant::now();
    let mut daemon = Daemon {
        machine: Machine::new(cfg.machine(), now),
        last_probe: vec![None; cfg.probes.len()],
        cfg,
        backend,
        metrics,
        spans,
        probes,
        clock: Clock::new(),
        status_tx,
        backend_tx,
        drain_waiters: Vec::new(),
        persisted: None,
        maintenance_since: None,
        cancel: cancel.clone(),
        tracker: tracker.clone(),
    };
    let boot = daemon.boot_facts().await;
    tracing::info!(
        previous = boot.previous.map(|p| p.as_str()),
        demoted = ?boot.backend_demoted,
        backend = daemon.backend.name(),
        "failbackd starting"
    );
    daemon.step(Event::Boot(boot));
    tracker.spawn(daemon.run(Inputs { control_rx, probe_rx, backend_rx, reload_rx }, cancel));
    Ok(handles)
}

impl Daemon {
    /// What the previous run left (state file) and what the backend says now.
    async fn boot_facts(&self) -> Boot {
        let previous = match crate::statefile::read(&self.cfg.state_file) {
            Ok(p) => p.map(|p| p.phase().unwrap_or(Phase::Idle)),
            Err(e) => {
                // The file existed, so this is a restart, not a boot: do not hold a live master.
                tracing::warn!(error = %e, "ignoring the state file");
                Some(Phase::Idle)
            }
        };
        let backend_demoted = match tokio::time::timeout(BACKEND_TIMEOUT, self.backend.demoted()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                self.metrics.backend_error(self.backend.name(), "state");
                tracing::warn!(error = %e, "cannot read the backend state");
                None
            }
            Err(_) => {
                self.metrics.backend_error(self.backend.name(), "state");
                tracing::warn!("reading the backend state timed out");
                None
            }
        };
        // A backend that cannot tell falls back to what the state file says we had in place.
        let backend_demoted = backend_demoted.or(match previous {
            Some(p) => p.wants_demoted(),
            None => None,
        });
        Boot { backend_demoted, previous }
    }

    async fn run(mut self, mut inputs: Inputs, cancel: CancellationToken) {
        loop {
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
                Some((op, result)) = inputs.backend_rx.recv() => self.on_backend(op, result),
                Some(cfg) = inputs.reload_rx.recv() => self.reload(cfg),
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

    fn on_backend(&mut self, op: BackendOp, result: Result<(), String>) {
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
    }

    /// Steps the machine and carries out what it asks for.
    fn step(&mut self, event: Event) -> Vec<crate::machine::Record> {
        let now = Instant::now();
        let actions = self.machine.step(now, event);
        let mut records = Vec::new();
        let mut restart = false;
        for action in actions {
            match action {
                Action::Demote => self.call_backend(BackendOp::Demote),
                Action::Promote => self.call_backend(BackendOp::Promote),
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
        self.publish_status(now);
        records
    }

    fn call_backend(&self, op: BackendOp) {
        tracing::info!(backend = self.backend.name(), operation = op.as_str(), "backend call");
        let backend = Arc::clone(&self.backend);
        let tx = self.backend_tx.clone();
        tokio::spawn(async move {
            let call = async {
                match op {
                    BackendOp::Demote => backend.demote().await,
                    BackendOp::Promote => backend.promote().await,
                }
            };
            let result = match tokio::time::timeout(BACKEND_TIMEOUT, call).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("{} timed out after {}s", op.as_str(), BACKEND_TIMEOUT.as_secs())),
            };
            // The loop is gone only at shutdown; the state file has the phase for the restart.
            let _ = tx.send((op, result)).await;
        });
    }

    fn persist(&mut self) {
        let phase = self.machine.phase();
        if self.persisted == Some(phase) {
            return;
        }
        match crate::statefile::write(&self.cfg.state_file, phase) {
            Ok(()) => self.persisted = Some(phase),
            Err(e) => tracing::warn!(error = %e, "cannot write the state file"),
        }
    }
}
