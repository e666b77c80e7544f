//! Log and trace setup: human-readable lines on stderr by default, JSON lines with
//! `--log-format json`, optionally the same events on the local syslog socket (`[syslog]`) and
//! spans exported over OTLP (`[tracing]`, see `otel.rs`). `RUST_LOG` overrides the level filter
//! of the log outputs (default `info`); it does not change which spans are exported.

use super::otel;
use super::syslog::{SyslogFlush, SyslogLayer};
use crate::config::telemetry::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::ffi::OsStr;
use std::io::IsTerminal;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{filter_fn, FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// What [`init_with`] set up; keep it until the end of `main`, then [`Telemetry::shutdown`].
#[derive(Default)]
#[must_use = "call shutdown() on exit so that buffered spans are exported"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    syslog: Option<SyslogFlush>,
    /// Where spans go, when tracing export is on.
    pub traces_url: Option<String>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter (bounded by the export timeout).
    /// Call it outside the tokio runtime.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "flushing traces at exit failed");
            }
        }
        if let Some(s) = self.syslog {
            // The last lines (the daemon stopping) are still queued for the writer thread.
            s.flush(crate::telemetry::syslog::SEND_TIMEOUT * 2);
        }
    }

    /// Exports the spans buffered so far, waiting for the collector's answer.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            if let Err(e) = p.force_flush() {
                tracing::warn!(error = %e, "flushing traces failed");
            }
        }
    }
}

/// Installs the global subscriber. Safe to call once; later calls are ignored (tests).
pub fn init(format: LogFormat) {
    init_with_default(format, "info");
}

/// Like [`init`] with another default level filter.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    init_with(format, default_filter, None).shutdown();
}

/// Installs the global subscriber with the daemon's telemetry: stderr, plus syslog and OTLP
/// export when configured (or, for OTLP, asked for by the OTel environment variables).
/// Call it before the tokio runtime starts (the OTLP HTTP client is a blocking one).
/// A telemetry output that cannot be set up is reported and skipped; logging to stderr always
/// works.
pub fn init_with(format: LogFormat, default_filter: &str, cfg: Option<&TelemetryConfig>) -> Telemetry {
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let ansi = colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let stderr = match format {
        LogFormat::Text => {
            fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(ansi).boxed()
        }
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).with_ansi(false).boxed(),
    };
    layers.push(stderr.with_filter(log_filter(default_filter)).boxed());

    let mut telemetry = Telemetry::default();
    if let Some(s) = cfg.map(|c| &c.syslog).filter(|s| s.enabled) {
        let layer = SyslogLayer::new(s);
        telemetry.syslog = Some(layer.flusher());
        layers.push(layer.with_filter(log_filter(default_filter)).boxed());
    }

    let mut problem = None;
    if let Some(settings) = cfg.and_then(|c| otel::from_env(&c.tracing)) {
        match otel::provider(&settings) {
            Ok(provider) => {
                layers.push(otel_layer(&provider));
                telemetry.provider = Some(provider);
                telemetry.traces_url = Some(settings.traces_url);
            }
            Err(e) => problem = Some(format!("{e:#}")),
        }
    }

    if tracing_subscriber::registry().with(layers).try_init().is_err() {
        // A subscriber is already installed (tests): these layers are not in use.
        return telemetry;
    }
    if let Some(e) = problem {
        tracing::error!(error = e, "trace export is off: cannot set up the OTLP exporter");
    }
    if let Some(url) = &telemetry.traces_url {
        tracing::info!(endpoint = %url, "exporting traces over OTLP/HTTP");
    }
    telemetry
}

/// The `tracing-opentelemetry` layer over `provider`, for failbackd's own spans only (not the
/// HTTP client's, whose requests carry the export itself).
pub fn otel_layer(provider: &SdkTracerProvider) -> BoxedLayer {
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(otel::SCOPE))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_filter(Targets::new().with_target("failbackd", LevelFilter::INFO))
        .boxed()
}

/// Whether stderr lines may carry ANSI colour: only on a terminal (daemon(8)'s log file and the
/// systemd journal store the escapes verbatim), and never when `NO_COLOR` is set to a non-empty
/// value (https://no-color.org).
fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// `RUST_LOG` (or `default`) for the log outputs, without the OTel SDK's per-batch export
/// errors: `otel.rs` reports those itself, at most once a minute.
fn log_filter(default: &str) -> impl tracing_subscriber::layer::Filter<Registry> + Send + Sync {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    env.and(filter_fn(|meta| {
        !(meta.target().starts_with("opentelemetry") && meta.name().ends_with("ExportError"))
    }))
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a log file or the journal gets no escapes");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(colour(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset (no-color.org)");
    }
}
