use super::*;
use crate::statefile::PersistedFailback;

fn system(id: &str, uptime_s: u64) -> SystemBoot {
    SystemBoot { id: Some(id.into()), uptime: Some(Duration::from_secs(uptime_s)) }
}

fn file(phase: Phase, boot: Option<&str>) -> Found {
    Found::File(Persisted {
        boot_id: boot.map(str::to_string),
        failback: phase.is_holding().then(|| PersistedFailback {
            id: 7,
            armed_mono_ms: 1_000,
            armed_unix: 0.0,
            trigger: "boot".into(),
            peer_lost: false,
        }),
        last_failback: 7,
        ..Persisted::new(phase)
    })
}

fn event(found: &Found, sys: &SystemBoot, mode: StartMode, measured: Option<bool>) -> (Boot, Decision) {
    boot_event(found, sys, mode, measured, Instant::now(), Duration::from_secs(61))
}

#[test]
fn a_file_of_this_boot_is_a_restart_that_resumes_its_failback() {
    let (boot, d) = event(&file(Phase::Probing, Some("b1")), &system("b1", 30), StartMode::Auto, None);
    assert_eq!(d.kind, StartKind::Restart);
    assert_eq!(boot.previous, Some(Phase::Probing));
    assert_eq!(boot.resumed.map(|r| r.id), Some(7));
    assert_eq!(boot.backend_demoted, Some(true), "probing is entered only once the demote is confirmed");
}

/// D1: after a power loss a persistent file says `released`; it is another boot's.
#[test]
fn a_file_of_another_boot_counts_as_no_file_and_ids_keep_counting() {
    let (boot, d) =
        event(&file(Phase::Released, Some("b1")), &system("b2", 40), StartMode::Auto, Some(false));
    assert_eq!(d.kind, StartKind::Boot, "{d:?}");
    assert_eq!((boot.previous, boot.resumed, boot.last_failback), (None, None, 7));
    let (boot, d) = event(&file(Phase::Probing, Some("b1")), &system("b2", 40), StartMode::Auto, None);
    assert_eq!(d.kind, StartKind::Boot);
    assert_eq!((boot.previous, boot.resumed, boot.backend_demoted), (None, None, None));
}

/// Issue 20 A5: enabling failbackd on a node up for hours must not demote a running MASTER.
#[test]
fn a_first_start_on_a_running_system_is_not_a_boot() {
    let (boot, d) = event(&Found::Missing, &system("b1", 5 * 3600), StartMode::Auto, Some(false));
    assert_eq!(d.kind, StartKind::FirstStart);
    assert_eq!(boot.previous, Some(Phase::Idle));
    // A stale file of another boot on a long-running system: the same.
    let (boot, d) = event(&file(Phase::Released, Some("b0")), &system("b1", 5 * 3600), StartMode::Auto, None);
    assert_eq!((d.kind, boot.previous, boot.last_failback), (StartKind::FirstStart, Some(Phase::Idle), 7));
    // Within the window, or when the uptime cannot be read, no file is a boot.
    assert_eq!(classify(&Found::Missing, &system("b1", 30), StartMode::Auto).kind, StartKind::Boot);
    let unknown = SystemBoot { id: Some("b1".into()), uptime: None };
    assert_eq!(classify(&Found::Missing, &unknown, StartMode::Auto).kind, StartKind::Boot);
    let edge = system("b1", BOOT_WINDOW.as_secs());
    assert_eq!(classify(&Found::Missing, &edge, StartMode::Auto).kind, StartKind::FirstStart);
}

#[test]
fn files_that_cannot_be_judged_are_restarts_as_before() {
    let legacy = file(Phase::Released, None);
    assert_eq!(classify(&legacy, &system("b1", 30), StartMode::Auto).kind, StartKind::Restart);
    let no_id = SystemBoot { id: None, uptime: Some(Duration::from_secs(30)) };
    assert_eq!(
        classify(&file(Phase::Released, Some("b1")), &no_id, StartMode::Auto).kind,
        StartKind::Restart
    );
    let (boot, d) =
        event(&Found::Unreadable("corrupt".into()), &system("b1", 30), StartMode::Auto, Some(false));
    assert_eq!((d.kind, boot.previous), (StartKind::Restart, Some(Phase::Idle)));
}

#[test]
fn the_start_flag_overrides_the_guess() {
    let this_boot = file(Phase::Released, Some("b1"));
    let (boot, d) = event(&this_boot, &system("b1", 9999), StartMode::Boot, Some(false));
    assert_eq!((d.kind, boot.previous, boot.last_failback), (StartKind::Boot, None, 7));
    let (boot, d) = event(&Found::Missing, &system("b1", 5), StartMode::Restart, None);
    assert_eq!((d.kind, boot.previous), (StartKind::FirstStart, Some(Phase::Idle)));
    let (boot, d) = event(&this_boot, &system("b1", 5), StartMode::Restart, None);
    assert_eq!((d.kind, boot.previous), (StartKind::Restart, Some(Phase::Released)));
}

/// D8: a backend that cannot be measured after a restart in `releasing`: the promote is not
/// assumed done (nor the demote of `holding`), only the calls a phase proves.
#[test]
fn an_unconfirmed_call_on_record_is_unknown_not_assumed() {
    let sys = system("b1", 30);
    for (phase, want) in [
        (Phase::Releasing, None),
        (Phase::Holding, None),
        (Phase::Draining, None),
        (Phase::Probing, Some(true)),
        (Phase::Stabilizing, Some(true)),
        (Phase::Released, Some(false)),
    ] {
        let (boot, _) = event(&file(phase, Some("b1")), &sys, StartMode::Auto, None);
        assert_eq!(boot.backend_demoted, want, "{phase}");
    }
    let (boot, _) = event(&file(Phase::Releasing, Some("b1")), &sys, StartMode::Auto, Some(true));
    assert_eq!(boot.backend_demoted, Some(true), "a measurement wins");
}

#[test]
fn a_resumed_failback_keeps_its_age() {
    let now = Instant::now();
    let (boot, _) = boot_event(
        &file(Phase::Probing, Some("b1")),
        &system("b1", 30),
        StartMode::Auto,
        None,
        now,
        Duration::from_secs(61),
    );
    assert_eq!(
        boot.resumed.map(|r| now.saturating_duration_since(r.armed_at)),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn parses_kern_boottime_as_sysctl_prints_it() {
    assert_eq!(
        parse_boottime("{ sec = 1733400000, usec = 12345 } Thu Dec  5 12:00:00 2024\n").as_deref(),
        Some("kern.boottime 1733400000.012345")
    );
    assert_eq!(parse_boottime("garbage"), None);
}

#[tokio::test]
async fn the_system_facts_are_read() {
    let sys = SystemBoot::read().await;
    if cfg!(target_os = "linux") {
        assert!(sys.id.is_some() && sys.uptime.is_some(), "{sys:?}");
    }
}

// D17: an operator's maintenance mode is a hold, but not failbackd's: a restart must not resume
// a hold on the strength of it; a shared lever's set bit may be another check's (unknown), a
// clear one is a fact.
#[test]
fn only_failbackd_s_own_hold_counts_at_a_start() {
    assert_eq!(own_hold(Some(true), false, false), Some(true));
    assert_eq!(own_hold(Some(true), true, false), Some(false), "an operator's maintenance mode");
    assert_eq!(own_hold(Some(false), false, false), Some(false));
    assert_eq!(own_hold(None, false, false), None, "command backend without `state`");
    assert_eq!(own_hold(Some(true), false, true), None, "service_status: maybe another check's bit");
    assert_eq!(own_hold(Some(true), true, true), None);
    assert_eq!(own_hold(Some(false), true, true), Some(false), "service_status: the bit is clear");
}
