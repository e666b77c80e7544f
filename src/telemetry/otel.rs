//! OpenTelemetry traces: an [`SdkTracerProvider`] with a batch span processor and an OTLP/HTTP
//! (protobuf) exporter, fed by the `tracing-opentelemetry` layer that `logging.rs` installs.
//!
//! Export never blocks the daemon: a finished span is handed to the batch processor's queue
//! (bounded, 2048 spans; when full, spans are dropped and counted) and the processor's own
//! thread sends batches every 5 s with the blocking reqwest client, each bounded by
//! [`EXPORT_TIMEOUT`]. The HTTP client is built without TLS: point it at a local collector.
//! A collector that cannot be reached costs a warning at most every [`WARN_EVERY`].
//!
//! Precedence, this project's choice: the environment over the config file. The
//! opentelemetry-otlp crate does the opposite for its own settings (a value given to its
//! builder, as `with_endpoint` here, wins over `OTEL_*`), so [`resolve`] applies the variables
//! itself before the builder sees anything. Why: `[tracing]` lives in a root-owned config
//! file, and pointing one run (`failbackd demo`, a debug session) at another collector should
//! not need an edit of it; someone who sets `OTEL_EXPORTER_OTLP_ENDPOINT` means it. The endpoint is
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else `OTEL_EXPORTER_OTLP_ENDPOINT` +
//! `/v1/traces`, else `[tracing] otlp_endpoint` + `/v1/traces`; none of them set means off.
//! The service name is `OTEL_SERVICE_NAME`, else `[tracing] service_name`. `OTEL_SDK_DISABLED=true`
//! turns export off whatever the config says.

use crate::config::telemetry::TracingConfig;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bound on one export (retries included).
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one "cannot export" warning per this period.
pub const WARN_EVERY: Duration = Duration::from_secs(60);
/// The instrumentation scope name on every span.
pub const SCOPE: &str = "failbackd";

/// Where and how traces are exported, after the environment is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The full URL spans are POSTed to (…/v1/traces).
    pub traces_url: String,
    pub service_name: String,
    pub sample_ratio: f64,
    /// What set the endpoint: an env var name or "config".
    pub endpoint_from: &'static str,
}

/// Applies the OTel environment variables (`env` looks one up) on top of the config. `None`:
/// tracing export is off.
pub fn resolve(cfg: &TracingConfig, env: impl Fn(&str) -> Option<String>) -> Option<Settings> {
    let var = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let traces = |base: &str| format!("{}/v1/traces", base.trim_end_matches('/'));
    let (traces_url, endpoint_from) = if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        (url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        (traces(&base), "OTEL_EXPORTER_OTLP_ENDPOINT")
    } else {
        (traces(cfg.otlp_endpoint.as_deref()?), "config")
    };
    Some(Settings {
        traces_url,
        service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| cfg.service_name.clone()),
        sample_ratio: cfg.sample_ratio,
        endpoint_from,
    })
}

/// [`resolve`] with the process environment.
pub fn from_env(cfg: &TracingConfig) -> Option<Settings> {
    resolve(cfg, |name| std::env::var(name).ok())
}

/// Builds the provider. Call it outside an async context (before the tokio runtime starts):
/// the blocking HTTP client must not be created or dropped on a runtime thread.
pub fn provider(settings: &Settings) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("OTLP exporter for {}: {e}", settings.traces_url))?;
    let exporter = Watched::new(exporter, settings.traces_url.clone());
    let sampler = if settings.sample_ratio >= 1.0 {
        Sampler::AlwaysOn
    } else {
        // Root spans are failbacks: a ratio keeps or drops whole failbacks.
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)))
    };
    // Resource::builder() also reads OTEL_RESOURCE_ATTRIBUTES.
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

/// The URL for logs: credentials in its user-info part (`http://user:token@host/`) are masked.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Wraps the exporter to report export failures as rate-limited warnings (the SDK's own
/// per-batch error events are filtered out of the logs by `logging.rs`).
#[derive(Debug)]
struct Watched<E> {
    inner: E,
    url: String,
    state: Mutex<WarnState>,
}

#[derive(Debug, Default)]
struct WarnState {
    last_warning: Option<Instant>,
    /// Failed exports not yet reported.
    unreported: u64,
    failing: bool,
}

impl<E> Watched<E> {
    fn new(inner: E, url: String) -> Self {
        Watched { inner, url: redact_userinfo(&url), state: Mutex::new(WarnState::default()) }
    }

    fn note(&self, result: &OTelSdkResult) {
        let Ok(mut st) = self.state.lock() else { return };
        match result {
            Ok(()) => {
                if st.failing {
                    st.failing = false;
                    st.unreported = 0;
                    tracing::info!(endpoint = %self.url, "trace export works again");
                }
            }
            Err(e) => {
                st.failing = true;
                st.unreported += 1;
                let now = Instant::now();
                if st.last_warning.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
                    tracing::warn!(
                        endpoint = %self.url,
                        error = %e,
                        failed_exports = st.unreported,
                        "cannot export traces (those spans are dropped; failbacks are not affected); \
                         next warning in a minute at the earliest"
                    );
                    st.last_warning = Some(now);
                    st.unreported = 0;
                }
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for Watched<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.note(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn credentials_in_the_endpoint_never_reach_the_logs() {
        assert_eq!(
            super::redact_userinfo("http://user:t0ken@127.0.0.1:4318/v1/traces"),
            "http://***@127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            super::redact_userinfo("http://127.0.0.1:4318/v1/traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(super::redact_userinfo("http://h/p@x"), "http://h/p@x");
    }

    use super::*;
    use std::collections::HashMap;

    fn cfg(endpoint: Option<&str>) -> TracingConfig {
        TracingConfig { otlp_endpoint: endpoint.map(String::from), ..TracingConfig::default() }
    }

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn off_without_config_or_env() {
        assert_eq!(resolve(&cfg(None), with(&[])), None);
        assert_eq!(resolve(&cfg(None), with(&[("OTEL_SERVICE_NAME", "x")])), None);
    }

    #[test]
    fn config_endpoint_gets_the_traces_path() {
        let s = resolve(&cfg(Some("http://127.0.0.1:4318")), with(&[])).unwrap();
        assert_eq!(s.traces_url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!((s.service_name.as_str(), s.endpoint_from), ("failbackd", "config"));
    }

    #[test]
    fn env_wins_over_config() {
        let c = cfg(Some("http://127.0.0.1:4318"));
        let s = resolve(&c, with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])).unwrap();
        assert_eq!(s.traces_url, "http://collector:4318/v1/traces");
        let s = resolve(
            &c,
            with(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:9999/custom"),
                ("OTEL_SERVICE_NAME", "fw1-failbackd"),
            ]),
        )
        .unwrap();
        assert_eq!(s.traces_url, "http://other:9999/custom");
        assert_eq!(s.service_name, "fw1-failbackd");
        assert_eq!(s.endpoint_from, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        // The env alone turns it on; an empty variable counts as unset.
        assert!(resolve(&cfg(None), with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])).is_some());
        assert!(resolve(&cfg(None), with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])).is_none());
        assert!(resolve(&c, with(&[("OTEL_SDK_DISABLED", "TRUE")])).is_none());
    }

    /// Counts WARN events on the current thread.
    #[derive(Clone, Default)]
    struct Warnings(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if *e.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn export_failures_warn_once_a_minute_and_recovery_is_logged() {
        use tracing_subscriber::layer::SubscriberExt;
        let warnings = Warnings::default();
        let watched = Watched::new((), "http://127.0.0.1:1/v1/traces".into());
        let err = || Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure("refused".into()));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(warnings.clone()), || {
            for _ in 0..50 {
                watched.note(&err());
            }
            assert_eq!(warnings.0.load(std::sync::atomic::Ordering::SeqCst), 1);
            assert_eq!(watched.state.lock().unwrap().unreported, 49);
            watched.note(&Ok(()));
            assert!(!watched.state.lock().unwrap().failing);
            // Still within the minute: a new failure is counted, not logged.
            watched.note(&err());
            assert_eq!(warnings.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn an_unreachable_collector_is_an_error_not_a_hang_or_panic() {
        // A port nobody listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = cfg(Some(&format!("http://127.0.0.1:{port}")));
        let provider = provider(&resolve(&cfg, with(&[])).unwrap()).unwrap();
        use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
        let tracer = provider.tracer(SCOPE);
        for _ in 0..10 {
            tracer.start("failback").end();
        }
        assert!(provider.force_flush().is_err());
        let _ = provider.shutdown();
    }
}
