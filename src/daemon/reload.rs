//! SIGHUP: apply a reloaded config without losing a hold in progress. What cannot change live
//! (sockets, the state file) is kept and logged; a config that cannot be applied (a probe or
//! backend that fails to build) is rejected whole and the old one stays.
//!
//! After a reload the exported probe series equal the machine's tallies (a probe keeps its tally
//! only when its name, type and target are unchanged), the series of dropped probes are gone,
//! and a new backend is measured before the machine decides anything about it.

use super::Daemon;
use crate::config::Config;
use crate::machine::Event;
use std::sync::Arc;

impl Daemon {
    pub(super) fn reload(&mut self, mut cfg: Config) {
        for (what, changed) in [
            ("control_socket", cfg.control_socket != self.cfg.control_socket),
            ("metrics_listen", cfg.metrics_listen != self.cfg.metrics_listen),
            ("state_file", cfg.state_file != self.cfg.state_file),
            ("[tracing] / [syslog]", cfg.telemetry != self.cfg.telemetry),
        ] {
            if changed {
                tracing::warn!(key = what, "changing this key needs a restart; keeping the old value");
            }
        }
        cfg.control_socket = self.cfg.control_socket.clone();
        cfg.metrics_listen = self.cfg.metrics_listen;
        cfg.state_file = self.cfg.state_file.clone();
        cfg.telemetry = self.cfg.telemetry.clone();

        let backend = if cfg.backend != self.cfg.backend {
            match crate::carp::build(&cfg.backend, &cfg.state_file) {
                Ok(b) => Some(Arc::from(b)),
                Err(e) => {
                    tracing::error!(error = %e, "reload rejected: the new backend cannot be built; keeping the old config");
                    return;
                }
            }
        } else {
            None
        };
        if cfg.probes != self.cfg.probes {
            if let Err(e) = self.probes.replace(&cfg, &self.cancel, &self.tracker) {
                tracing::error!(error = %e, "reload rejected: keeping the old config");
                return;
            }
            self.metrics.reload_probes(&self.cfg, &cfg);
            self.last_probe = cfg
                .probes
                .iter()
                .map(|p| {
                    let old = self.cfg.probes.iter().position(|o| o.name == p.name && o.kind == p.kind);
                    old.and_then(|i| self.last_probe.get(i).cloned().flatten())
                })
                .collect();
        }
        let replaced = backend.is_some();
        if let Some(b) = backend {
            self.backend = b;
            self.backend_gen += 1;
            self.metrics.init_backend(self.backend.name());
        }
        let machine = cfg.machine();
        self.cfg = cfg;
        if replaced {
            self.step(Event::BackendReplaced);
        }
        self.step(Event::Reconfigure(Box::new(machine)));
        self.sync_probe_metrics();
        self.observe();
        tracing::info!(phase = %self.machine.phase(), probes = self.cfg.probes.len(), backend_replaced = replaced, "config reloaded");
    }

    /// Sets every probe gauge from the machine's tallies and the last attempts.
    fn sync_probe_metrics(&self) {
        for (i, p) in self.cfg.probes.iter().enumerate() {
            let name = p.name.as_str();
            self.publish_probe_up(i);
            let ok = self.last_probe.get(i).and_then(|o| o.as_ref()).is_some_and(|o| o.ok);
            self.metrics.probe_success.with_label_values(&[name]).set(i64::from(ok));
        }
    }
}
