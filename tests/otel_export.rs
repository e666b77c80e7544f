//! Traces for real: an OTLP/HTTP receiver in-process (hyper, decoding the protobuf
//! `ExportTraceServiceRequest` with opentelemetry-proto), the global subscriber installed the
//! way `failbackd run` does it (config `[tracing]` -> `logging::init_with`), a daemon holding
//! until a TCP probe passes, then the exported span tree checked: one `failback` root, its
//! `phase` children in order, `probe` attempts under phase spans, their attributes.
//!
//! One test in this binary: the subscriber is global.

mod support;

use failbackd::config::Config;
use failbackd::telemetry::logging::{self, LogFormat};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode as OtelStatus, Span};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{LatePort, TestDaemon};

const LIMIT: Duration = Duration::from_secs(20);

/// What the receiver got: (path, content type, decoded request) per POST, or a decode error.
type Store = Arc<Mutex<Vec<Result<(String, String, ExportTraceServiceRequest), String>>>>;

async fn receiver(listener: std::net::TcpListener, store: Store) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let store = store.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let store = store.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let ctype = req
                        .headers()
                        .get(hyper::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                    let decoded = body
                        .map_err(|e| e.to_string())
                        .and_then(|b| ExportTraceServiceRequest::decode(b).map_err(|e| e.to_string()));
                    let status = if decoded.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
                    store.lock().unwrap().push(decoded.map(|d| (path, ctype, d)));
                    // An empty ExportTraceServiceResponse encodes to zero bytes.
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .status(status)
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(Bytes::new()))
                            .unwrap(),
                    )
                }
            });
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> &'a str {
    match attr(span, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

fn bool_attr(span: &Span, key: &str) -> bool {
    match attr(span, key) {
        Some(Value::BoolValue(b)) => *b,
        other => panic!("{}: {key} is {other:?}", span.name),
    }
}

fn resource_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    })
}

/// Waits (bounded) for `cond` on the daemon's status.
async fn wait_status(d: &TestDaemon, what: &str, cond: impl Fn(&failbackd::status::Status) -> bool) {
    let mut rx = d.handles.status.clone();
    let wait = async {
        while !cond(&rx.borrow_and_update()) {
            rx.changed().await.unwrap();
        }
    };
    tokio::time::timeout(LIMIT, wait).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[test]
fn a_failback_is_exported_as_one_trace_with_phases_and_probe_attempts() {
    // The environment must not redirect the export (env wins over the config by design).
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_SDK_DISABLED",
    ] {
        std::env::remove_var(var);
    }
    let (rt, collector, store) = collector();

    let mut port = LatePort::new();
    let config = format!(
        "min_hold = \"0s\"\nstable_for = \"500ms\"\nmax_hold = \"30s\"\n\
         [backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"{}\"\ninterval = \"200ms\"\nrise = 2\nfall = 2\n\
         [tracing]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"failbackd-test\"\n",
        port.addr
    );
    let cfg = Config::parse("test.toml", &config).unwrap_or_else(|e| panic!("{e}"));
    // As `failbackd run` does: outside the runtime.
    let telemetry = logging::init_with(LogFormat::Text, "info", Some(&cfg.telemetry));
    assert_eq!(telemetry.traces_url.as_deref(), Some(format!("http://{collector}/v1/traces").as_str()));

    rt.block_on(async {
        let d = TestDaemon::start(&config).await;
        d.wait_phase("probing", LIMIT).await;
        wait_status(&d, "two refused attempts", |s| s.probes.first().is_some_and(|p| p.fails >= 2)).await;
        port.listen();
        d.wait_phase("released", LIMIT).await;
        // Attempts after the failback must not make spans: let a few happen.
        let attempts = || d.handles.metrics.probe_attempts.with_label_values(&["gw", "success"]).get();
        let after_release = attempts();
        tokio::time::timeout(LIMIT, async {
            while attempts() < after_release + 3 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("probes stopped after the release");
        d.stop().await;
    });
    // Synchronous: returns when the collector has answered every batch.
    telemetry.flush();

    let received = store.lock().unwrap().clone();
    assert!(!received.is_empty(), "no export reached the collector");
    let mut spans = Vec::new();
    for r in &received {
        let (path, ctype, req) = r.as_ref().unwrap_or_else(|e| panic!("undecodable export: {e}"));
        assert_eq!(path, "/v1/traces");
        assert_eq!(ctype, "application/x-protobuf");
        for rs in &req.resource_spans {
            let res = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
            assert_eq!(resource_attr(res, "service.name").as_deref(), Some("failbackd-test"));
            for ss in &rs.scope_spans {
                assert_eq!(ss.scope.as_ref().map(|s| s.name.as_str()), Some("failbackd"));
                spans.extend(ss.spans.iter().cloned());
            }
        }
    }

    // One root: the failback.
    let roots: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "roots: {:?}", roots.iter().map(|s| &s.name).collect::<Vec<_>>());
    let root = roots[0];
    assert_eq!(root.name, "failback");
    assert_eq!(str_attr(root, "failback.outcome"), "released");
    assert_eq!(str_attr(root, "failback.trigger"), "boot");
    assert!(matches!(attr(root, "failback.id"), Some(Value::IntValue(1))), "{:?}", attr(root, "failback.id"));
    assert!(matches!(attr(root, "failback.duration_s"), Some(Value::DoubleValue(_))));
    assert!(!bool_attr(root, "failback.peer_lost"));
    assert_eq!(root.status.as_ref().map(|s| s.code), Some(OtelStatus::Ok as i32));
    // Every span is in the failback's trace: none from idle probing.
    assert!(spans.iter().all(|s| s.trace_id == root.trace_id), "a span outside the failback's trace");

    // Phases: children of the root, in order.
    let mut phases: Vec<&Span> = spans.iter().filter(|s| s.name == "phase").collect();
    phases.sort_by_key(|s| s.start_time_unix_nano);
    assert!(phases.iter().all(|p| p.parent_span_id == root.span_id));
    let names: Vec<&str> = phases.iter().map(|p| str_attr(p, "phase.name")).collect();
    assert_eq!(names, ["holding", "probing", "stabilizing", "releasing"]);
    for pair in phases.windows(2) {
        assert!(pair[0].end_time_unix_nano <= pair[1].start_time_unix_nano, "phases overlap");
    }
    assert!(root.start_time_unix_nano <= phases[0].start_time_unix_nano);
    assert!(phases[3].end_time_unix_nano <= root.end_time_unix_nano);

    // Probe attempts: children of phase spans, with their results.
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let probes: Vec<&Span> = spans.iter().filter(|s| s.name == "probe").collect();
    assert_eq!(spans.len(), 1 + phases.len() + probes.len(), "unexpected spans");
    let mut failed = 0;
    let mut passed_in_probing = 0;
    for p in &probes {
        let parent =
            by_id.get(p.parent_span_id.as_slice()).unwrap_or_else(|| panic!("probe span without parent"));
        assert_eq!(parent.name, "phase");
        // Made under the phase current when the attempt started.
        assert!(parent.start_time_unix_nano <= p.start_time_unix_nano);
        assert!(p.start_time_unix_nano <= parent.end_time_unix_nano);
        let phase = str_attr(parent, "phase.name");
        assert_eq!(str_attr(p, "probe.name"), "gw");
        assert_eq!(str_attr(p, "probe.type"), "tcp");
        assert_eq!(str_attr(p, "probe.target"), port.addr.to_string());
        assert!(matches!(attr(p, "probe.latency_ms"), Some(Value::DoubleValue(ms)) if *ms >= 0.0));
        assert!(!bool_attr(p, "probe.timed_out"));
        if bool_attr(p, "probe.ok") {
            assert!(attr(p, "probe.error").is_none());
            assert_eq!(p.status.as_ref().map(|s| s.code), Some(OtelStatus::Ok as i32));
            assert!(["probing", "stabilizing"].contains(&phase), "a pass under {phase}");
            passed_in_probing += usize::from(phase == "probing");
        } else {
            failed += 1;
            assert!(str_attr(p, "probe.error").contains("refused"), "{:?}", attr(p, "probe.error"));
            assert_eq!(p.status.as_ref().map(|s| s.code), Some(OtelStatus::Error as i32));
            // The port listens before the failback can stabilize.
            assert!(["holding", "probing"].contains(&phase), "a failure under {phase}");
        }
    }
    // The daemon saw two refused attempts before the port listened.
    assert!(failed >= 2, "refused attempts: {failed}");
    // rise = 2: both passes that ended probing started in it.
    assert!(passed_in_probing >= 2, "passing attempts under probing: {passed_in_probing}");

    telemetry.shutdown();
}

/// `failbackd demo` honours the OTel environment as `run` does: pointed at a collector with
/// `OTEL_EXPORTER_OTLP_ENDPOINT` alone (the demo has no config file), it exports its failback's
/// spans. The demo is the real binary, stopped by its own `--duration`.
#[test]
fn the_demo_exports_traces_to_the_otel_environment_endpoint() {
    let (_rt, collector, store) = collector();

    let mut demo = std::process::Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
        .args(["demo", "--listen", "127.0.0.1:0", "--duration", "6s"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_SERVICE_NAME", "failbackd-demo-test")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: the demo stops after 6 s; a hung one is killed and fails the test.
    let mut status = None;
    for _ in 0..1200 {
        if let Some(s) = demo.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() {
        let _ = demo.kill();
    }
    let out = demo.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(status.is_some_and(|s| s.success()), "demo: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("exporting traces to http://{collector}/v1/traces")),
        "the demo should say where traces go: {stdout}"
    );

    // The demo flushed its spans at exit and the collector answered: they are all here.
    let received = store.lock().unwrap().clone();
    assert!(!received.is_empty(), "no export reached the collector");
    let mut spans = Vec::new();
    for r in &received {
        let (path, _, req) = r.as_ref().unwrap_or_else(|e| panic!("undecodable export: {e}"));
        assert_eq!(path, "/v1/traces");
        for rs in &req.resource_spans {
            let res = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
            assert_eq!(resource_attr(res, "service.name").as_deref(), Some("failbackd-demo-test"));
            spans.extend(rs.scope_spans.iter().flat_map(|ss| ss.spans.iter().cloned()));
        }
    }
    // The boot failback's first phase (min_hold 0) ends at once.
    assert!(
        spans.iter().any(|s| s.name == "phase" && str_attr(s, "phase.name") == "holding"),
        "spans: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}

/// A runtime with an OTLP receiver on an ephemeral loopback port: (runtime, address, spans).
fn collector() -> (tokio::runtime::Runtime, std::net::SocketAddr, Store) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let collector = listener.local_addr().unwrap();
    let store: Store = Arc::default();
    rt.spawn(receiver(listener, store.clone()));
    (rt, collector, store)
}
