//! Log setup: human-readable lines on stderr by default, JSON lines with `--log-format json`.
//! `RUST_LOG` overrides the level filter (default `info`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. Safe to call once; later calls are ignored (tests).
pub fn init(format: LogFormat) {
    init_with_default(format, "info");
}

/// Like [`init`] with another default level filter.
pub fn init_with_default(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stderr = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).with_target(false).boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    };
    let _ = tracing_subscriber::registry().with(filter).with(stderr).try_init();
}
