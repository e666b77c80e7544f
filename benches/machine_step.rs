//! Criterion bench of the pure state machine: `Machine::step` for the events a running daemon
//! sees most (probe results in Probing/Stabilizing, ticks, CARP events), and one whole failback
//! (arm -> demote -> probes -> release) as a sequence of steps.
//! Run: `cargo bench --bench machine_step`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use failbackd::machine::{
    BackendOp, Backoff, Boot, CarpState, Event, Machine, MachineConfig, MaxHoldPolicy, ProbeSpec,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn config(probes: usize) -> MachineConfig {
    MachineConfig {
        hold_on_boot: true,
        min_hold: Duration::from_secs(10),
        max_hold: Duration::from_secs(900),
        max_hold_policy: MaxHoldPolicy::Stay,
        stable_for: Duration::from_secs(10),
        probes: (0..probes)
            .map(|i| ProbeSpec {
                name: format!("p{i}"),
                identity: String::new(),
                rise: 3,
                fall: 2,
                required: true,
                track: None,
            })
            .collect(),
        backoff: Backoff::default(),
        tracking: failbackd::machine::TrackingConfig::default(),
        shared_lever: false,
    }
}

/// A machine that booted, demoted, and is probing (no probe up yet).
fn probing(probes: usize, t0: Instant) -> Machine {
    let mut m = Machine::new(config(probes), t0);
    let _ =
        m.step(t0, Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }));
    let _ = m.step(t0, Event::Backend { op: BackendOp::Demote, ok: true });
    m
}

fn bench_step(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut g = c.benchmark_group("machine_step");

    // Steady state while holding: one failing probe result (the common event during a hold).
    g.bench_function("probe_fail_while_probing_10_probes", |b| {
        let mut m = probing(10, t0);
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            let now = t0 + Duration::from_millis(i as u64 % 100_000);
            black_box(m.step(now, Event::Probe { probe: i % 10, ok: false }))
        })
    });

    // Probes up and the stability window running: successes plus the deadline computation.
    g.bench_function("probe_ok_while_stabilizing_10_probes", |b| {
        let mut m = probing(10, t0);
        for r in 0..3 {
            for p in 0..10 {
                let _ = m.step(t0 + Duration::from_millis(r), Event::Probe { probe: p, ok: true });
            }
        }
        let mut i = 0usize;
        b.iter(|| {
            i = i.wrapping_add(1);
            let now = t0 + Duration::from_millis(5 + (i as u64 % 1000));
            let a = m.step(now, Event::Probe { probe: i % 10, ok: true });
            black_box((a, m.next_deadline()))
        })
    });

    g.bench_function("tick_while_probing", |b| {
        let mut m = probing(10, t0);
        b.iter(|| black_box(m.step(t0 + Duration::from_secs(1), Event::Tick)))
    });

    g.bench_function("carp_backup_event_while_holding", |b| {
        let mut m = probing(10, t0);
        b.iter(|| {
            black_box(m.step(
                t0 + Duration::from_secs(1),
                Event::Carp { vhid: 51, iface: "lan".to_string(), state: CarpState::Backup },
            ))
        })
    });

    // One complete failback, 10 probes x rise 3: about 35 steps.
    g.bench_function("whole_failback_10_probes", |b| {
        b.iter_batched(
            || Machine::new(config(10), t0),
            |mut m| {
                let _ = m.step(
                    t0,
                    Event::Boot(Boot { backend_demoted: Some(false), previous: None, ..Default::default() }),
                );
                let _ = m.step(t0, Event::Backend { op: BackendOp::Demote, ok: true });
                for r in 0..3u64 {
                    for p in 0..10 {
                        let _ = m.step(t0 + Duration::from_secs(r + 1), Event::Probe { probe: p, ok: true });
                    }
                }
                let _ = m.step(t0 + Duration::from_secs(20), Event::Tick);
                let a =
                    m.step(t0 + Duration::from_secs(20), Event::Backend { op: BackendOp::Promote, ok: true });
                black_box((a, m.phase()))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
