//! Telemetry: the Prometheus registry (`metrics.rs`), log/trace setup (`logging.rs`), OTLP
//! trace export (`otel.rs`), the syslog layer (`syslog.rs`) and the failback spans (`spans.rs`).

pub mod logging;
pub mod metrics;
pub mod moments;
pub mod otel;
pub mod spans;
pub mod syslog;
