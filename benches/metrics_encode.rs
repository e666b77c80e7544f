//! Criterion bench of the Prometheus text encoding of the whole registry (what GET /metrics
//! does), with 10 and 20 configured probes and every histogram populated.
//! Run: `cargo bench --bench metrics_encode`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use failbackd::config::Config;
use failbackd::telemetry::metrics::Metrics;
use std::hint::black_box;

fn config(probes: usize) -> Config {
    let mut toml = String::from(
        "watch = [\"51@lan\", \"52@wan\"]\n[backend]\ntype = \"command\"\n\
         demote = [\"/bin/true\"]\npromote = [\"/bin/true\"]\n",
    );
    for i in 0..probes {
        toml.push_str(&format!(
            "[[probe]]\nname = \"gw{i}\"\ntype = \"icmp\"\ntarget = \"198.51.100.{}\"\n",
            i + 1
        ));
    }
    Config::parse("bench.toml", &toml).expect("bench config is valid")
}

/// A registry that looks like it has run for a while: samples in every histogram.
fn populated(cfg: &Config) -> Metrics {
    let m = Metrics::new(cfg, "command").expect("metrics");
    for p in &cfg.probes {
        for i in 0..100u32 {
            m.probe_duration
                .with_label_values(&[p.name.as_str(), p.kind.type_name()])
                .observe(f64::from(i) * 1e-4);
            m.probe_attempts.with_label_values(&[p.name.as_str(), "success"]).inc();
        }
        m.probe_success.with_label_values(&[p.name.as_str()]).set(1);
    }
    m.failback_duration.observe(42.0);
    m
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics_encode");
    for probes in [10usize, 20] {
        let cfg = config(probes);
        let m = populated(&cfg);
        let size = m.encode().expect("encode").len();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(format!("{probes}_probes")), &m, |b, m| {
            b.iter(|| black_box(m.encode().expect("encode")))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
