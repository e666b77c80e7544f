//! What tracing export adds to a probe attempt, measured in one run: the runner's own span code
//! (`probe::runner::attempt_span` / `record_attempt`) around a real TCP probe against a local
//! listener, under three subscribers:
//!
//! - `idle`: no failback running, so no probe span at all (stderr logging only, as `run` does);
//! - `failback_export_off`: a failback running, spans made (registry) but not exported;
//! - `failback_export_on`: the same plus the tracing-opentelemetry layer and the real OTLP/HTTP
//!   batch exporter (`telemetry::otel::provider`) posting to a minimal HTTP receiver here.
//!
//! `span_only/*` replaces the TCP connect with a ready future, to isolate the span cost.
//! (At that rate the batch queue overflows and drops spans, which is cheaper than exporting
//! them: treat `span_only/failback_export_on` as a lower bound.) Also prints the /metrics size
//! with 20 probes. Run: `cargo bench --bench trace_overhead`.

use criterion::{criterion_group, criterion_main, Criterion};
use failbackd::config::Config;
use failbackd::machine::{Phase, Trigger};
use failbackd::probe::runner::{attempt_span, record_attempt};
use failbackd::telemetry::spans::FailbackSpans;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Answers every POST with 200 and an empty body (an empty ExportTraceServiceResponse).
fn otlp_sink() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().expect("clone");
                let mut r = BufReader::new(s);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if w.write_all(ok).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A TCP port that accepts (and closes) every connection.
fn tcp_target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    addr
}

fn config(text: &str) -> Config {
    Config::parse("bench.toml", text).expect("bench config is valid")
}

/// The stderr layer as `failbackd run` has it (info), writing to a sink.
fn log_layer() -> Box<dyn Layer<Registry> + Send + Sync> {
    tracing_subscriber::fmt::layer().with_writer(std::io::sink).with_filter(EnvFilter::new("info")).boxed()
}

fn bench(c: &mut Criterion) {
    let target = tcp_target();
    let collector = otlp_sink();
    let cfg = config(&format!(
        "[backend]\ntype = \"simulated\"\n[[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"{target}\"\n\
         [tracing]\notlp_endpoint = \"http://{collector}\"\n"
    ));
    let probe_cfg = cfg.probes[0].clone();
    let prober = failbackd::probe::build(&probe_cfg).expect("tcp prober");
    let settings = failbackd::telemetry::otel::resolve(&cfg.telemetry.tracing, |_| None).expect("on");
    // Built outside the runtime, as `run` does.
    let provider = failbackd::telemetry::otel::provider(&settings).expect("provider");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    for (name, failback, export) in
        [("idle", false, false), ("failback_export_off", true, false), ("failback_export_on", true, true)]
    {
        let mut layers = vec![log_layer()];
        if export {
            layers.push(failbackd::telemetry::logging::otel_layer(&provider));
        }
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layers));
        let spans = FailbackSpans::default();
        if failback {
            spans.started(1, &Trigger::Boot);
            spans.phase(Phase::Probing);
        }
        let mut g = c.benchmark_group("probe_attempt_tcp");
        g.measurement_time(Duration::from_secs(5));
        g.bench_function(name, |b| {
            b.iter(|| {
                let span = attempt_span(&spans, &probe_cfg);
                let started = Instant::now();
                let r = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(1), prober.probe())
                        .instrument(span.clone())
                        .await
                });
                let error = match r {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some("timeout".to_string()),
                };
                record_attempt(&span, false, started.elapsed().as_secs_f64() * 1000.0, error.as_deref());
                black_box(span);
            })
        });
        g.finish();
        let mut g = c.benchmark_group("span_only");
        g.bench_function(name, |b| {
            b.iter(|| {
                let span = attempt_span(&spans, &probe_cfg);
                rt.block_on(async { black_box(1) }.instrument(span.clone()));
                record_attempt(&span, false, 0.1, None);
                black_box(span);
            })
        });
        g.finish();
        spans.ended(failbackd::machine::Outcome::Released, Duration::from_secs(1));
        spans.phase(Phase::Released);
    }
    let _ = provider.shutdown();
}

/// The /metrics body with 20 probes: fresh, and with every probe histogram populated.
fn metrics_size() {
    let mut toml = String::from("[backend]\ntype = \"simulated\"\n");
    for i in 0..20 {
        toml.push_str(&format!(
            "[[probe]]\nname = \"gw{i}\"\ntype = \"icmp\"\ntarget = \"198.51.100.{}\"\n",
            i + 1
        ));
    }
    let cfg = config(&toml);
    let m = failbackd::telemetry::metrics::Metrics::new(&cfg, "simulated").expect("metrics");
    let fresh = m.encode().expect("encode").len();
    for p in &cfg.probes {
        for i in 0..100u32 {
            m.probe_duration
                .with_label_values(&[p.name.as_str(), p.kind.type_name()])
                .observe(f64::from(i) * 1e-4);
        }
    }
    let t = Instant::now();
    let n = 200u32;
    let mut populated = 0;
    for _ in 0..n {
        populated = black_box(m.encode().expect("encode")).len();
    }
    eprintln!(
        "/metrics with 20 probes: {fresh} bytes at start, {populated} bytes with samples; encode {:.1} µs (mean of {n})",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

fn all(c: &mut Criterion) {
    metrics_size();
    bench(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
