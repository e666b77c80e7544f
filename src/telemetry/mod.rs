//! Telemetry: the Prometheus registry (`metrics.rs`), log/trace setup (`logging.rs`).

pub mod logging;
pub mod metrics;
pub mod spans;
