//! The daemon's probe runner, replaceable on reload. Each runner gets an epoch; its reports
//! reach the loop tagged with it, so reports still queued from a replaced runner (whose probe
//! indices may mean other probes now) are dropped.

use crate::config::Config;
use crate::probe::runner::{ProbeReport, ProbeRunner};
use crate::telemetry::spans::FailbackSpans;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A probe report with the epoch of the runner that made it.
pub(crate) type Tagged = (u64, ProbeReport);

pub(crate) struct Probes {
    runner: ProbeRunner,
    epoch: u64,
    cancel: CancellationToken,
    tx: mpsc::Sender<Tagged>,
    spans: FailbackSpans,
}

impl Probes {
    pub(crate) fn start(
        cfg: &Config,
        tx: mpsc::Sender<Tagged>,
        spans: FailbackSpans,
        parent: &CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Probes> {
        let cancel = parent.child_token();
        let runner = spawn(cfg, 1, &tx, &spans, &cancel, tracker)?;
        Ok(Probes { runner, epoch: 1, cancel, tx, spans })
    }

    /// Replaces the runner with one for `cfg`. On error the old runner keeps running.
    pub(crate) fn replace(
        &mut self,
        cfg: &Config,
        parent: &CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<()> {
        let cancel = parent.child_token();
        let runner = spawn(cfg, self.epoch + 1, &self.tx, &self.spans, &cancel, tracker)?;
        self.cancel.cancel();
        runner.set_waiting(self.runner.waiting());
        self.runner = runner;
        self.cancel = cancel;
        self.epoch += 1;
        Ok(())
    }

    /// Whether a report comes from the current runner and the current failback's generation.
    pub(crate) fn is_current(&self, (epoch, report): &Tagged) -> bool {
        *epoch == self.epoch && report.generation == self.runner.generation()
    }

    pub(crate) fn restart(&self) {
        self.runner.restart();
    }

    /// Down probes run at `fast_interval` while a failback holds for them.
    pub(crate) fn set_waiting(&self, waiting: bool) {
        self.runner.set_waiting(waiting);
    }
}

fn spawn(
    cfg: &Config,
    epoch: u64,
    tx: &mpsc::Sender<Tagged>,
    spans: &FailbackSpans,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<ProbeRunner> {
    let mut probers = Vec::with_capacity(cfg.probes.len());
    for p in &cfg.probes {
        let prober = crate::probe::build(p).map_err(|e| anyhow::anyhow!("probe {}: {e}", p.name))?;
        probers.push((p.clone(), prober));
    }
    // The runner's own channel, forwarded with the epoch; the forwarder stops with the runner.
    let (runner_tx, mut runner_rx) = mpsc::channel::<ProbeReport>(cfg.probes.len().max(1));
    let runner = ProbeRunner::spawn(probers, runner_tx, spans.clone(), cancel.clone(), tracker);
    let tx = tx.clone();
    let stop = cancel.clone();
    tracker.spawn(async move {
        loop {
            let report = tokio::select! {
                _ = stop.cancelled() => return,
                r = runner_rx.recv() => match r { Some(r) => r, None => return },
            };
            if tx.send((epoch, report)).await.is_err() {
                return;
            }
        }
    });
    Ok(runner)
}
