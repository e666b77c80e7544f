//! One bad config per validation rule, each asserting the exact message and position
//! (blackbox_exporter's config/testdata/invalid-*.yml pattern).

use failbackd::config::{Config, ConfigError};

const BACKEND: &str = "[backend]\ntype = \"simulated\"\n";

fn errors(text: &str) -> Vec<ConfigError> {
    Config::parse("bad.toml", text).expect_err("config should be rejected").0
}

/// Asserts a single error with this `line:column: message`.
fn assert_error(text: &str, line: usize, column: usize, message: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    assert_eq!((e.line, e.column, e.message.as_str()), (line, column, message), "{e}");
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = Config::parse("ok.toml", BACKEND).unwrap();
    assert!(c.hold_on_boot);
    assert_eq!(c.min_hold.as_secs(), 10);
    assert_eq!(c.stable_for.as_secs(), 10);
    assert_eq!(c.max_hold.as_secs(), 900);
    assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:9818");
    assert_eq!(c.control_socket.to_str(), Some("/var/run/failbackd.sock"));
    assert!(c.watches(7, "anything0"));
    assert!(c.probes.is_empty());
}

#[test]
fn the_example_is_valid() {
    let c = Config::load(std::path::Path::new("examples/failbackd.toml")).unwrap();
    assert_eq!(c.probes.len(), 6);
    assert!(c.watches(3, "vtnet1") && !c.watches(3, "vtnet2"));
}

#[test]
fn syntax_error_points_at_the_spot() {
    let errs = errors("hold_on_boot = true\nmin_hold = \n");
    assert_eq!((errs[0].line, errs[0].column), (2, 12), "{}", errs[0]);
}

#[test]
fn unknown_key_is_rejected_with_a_hint() {
    let errs = errors(&format!("colour = \"blue\"\n{BACKEND}"));
    assert_eq!(errs[0].line, 1);
    assert!(errs[0].message.contains("unknown field `colour`"), "{}", errs[0]);
    assert_eq!(errs[0].hint.as_deref(), Some("examples/failbackd.toml lists every key"));
}

#[test]
fn unknown_key_in_a_probe_is_rejected() {
    let errs = errors(&format!(
        "{BACKEND}[[probe]]\nname = \"a\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\nretries = 3\n"
    ));
    assert_eq!(errs[0].line, 7);
    assert!(errs[0].message.contains("unknown field `retries`"), "{}", errs[0]);
}

#[test]
fn bad_duration() {
    let errs = errors(&format!("min_hold = \"ten seconds\"\n{BACKEND}"));
    assert_eq!(errs[0].line, 1);
    assert!(errs[0].message.starts_with("invalid duration \"ten seconds\""), "{}", errs[0]);
}

#[test]
fn min_hold_not_shorter_than_max_hold() {
    assert_error(
        &format!("min_hold = \"20m\"\nmax_hold = \"10m\"\n{BACKEND}"),
        1,
        12,
        "`min_hold` must be shorter than `max_hold`",
    );
}

#[test]
fn stable_for_not_shorter_than_max_hold() {
    assert_error(
        &format!("stable_for = \"1h\"\n{BACKEND}"),
        1,
        14,
        "`stable_for` must be shorter than `max_hold`",
    );
}

#[test]
fn zero_max_hold() {
    assert_error(
        &format!("min_hold = \"0s\"\nmax_hold = \"0s\"\n{BACKEND}"),
        2,
        12,
        "`max_hold` must be longer than 0s",
    );
}

#[test]
fn bad_watch_pattern() {
    assert_error(
        &format!("watch = [\"1@em0\", \"300@em1\"]\n{BACKEND}"),
        1,
        19,
        "VHID \"300\" is not a number from 1 to 255",
    );
}

#[test]
fn empty_watch_list() {
    assert_error(&format!("watch = []\n{BACKEND}"), 1, 9, "`watch` is empty");
}

#[test]
fn bad_metrics_address() {
    assert_error(
        &format!("metrics_listen = \"localhost\"\n{BACKEND}"),
        1,
        18,
        "\"localhost\" is not an ip:port address",
    );
}

#[test]
fn bad_hook_fallback() {
    assert_error(&format!("hook_fallback = \"panic\"\n{BACKEND}"), 1, 17, "unknown hook_fallback \"panic\"");
}

#[test]
fn missing_backend() {
    let errs = errors("hold_on_boot = true\n");
    assert_eq!(errs[0].message, "no [backend] table");
    assert_eq!(errs[0].line, 0);
}

#[test]
fn unknown_backend_type() {
    assert_error("[backend]\ntype = \"carp2000\"\n", 2, 8, "unknown backend type \"carp2000\"");
}

#[test]
fn command_backend_needs_demote_and_promote() {
    let errs = errors("[backend]\ntype = \"command\"\ndemote = [\"/bin/true\"]\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].message, "missing `promote`");
}

#[test]
fn command_backend_empty_argv() {
    assert_error(
        "[backend]\ntype = \"command\"\ndemote = []\npromote = [\"/bin/true\"]\n",
        3,
        10,
        "`demote` needs at least a program",
    );
}

#[test]
fn key_that_does_not_apply_to_the_backend() {
    assert_error(
        "[backend]\ntype = \"simulated\"\ndemote = [\"x\"]\n",
        3,
        10,
        "`demote` does not apply to the simulated backend",
    );
}

fn probe(body: &str) -> String {
    format!("{BACKEND}[[probe]]\n{body}")
}

#[test]
fn duplicate_probe_names() {
    let text = format!(
        "{}[[probe]]\nname = \"gw\"\ntype = \"icmp\"\ntarget = \"192.0.2.2\"\n",
        probe("name = \"gw\"\ntype = \"icmp\"\ntarget = \"192.0.2.1\"\n")
    );
    assert_error(&text, 8, 8, "probe name \"gw\" is used twice");
}

#[test]
fn bad_probe_name() {
    assert_error(
        &probe("name = \"a b\"\ntype = \"icmp\"\ntarget = \"192.0.2.1\"\n"),
        4,
        8,
        "probe name \"a b\" is not valid",
    );
}

#[test]
fn unknown_probe_type() {
    assert_error(&probe("name = \"a\"\ntype = \"smoke\"\n"), 5, 8, "unknown probe type \"smoke\"");
}

#[test]
fn icmp_target_must_be_an_address() {
    assert_error(
        &probe("name = \"a\"\ntype = \"icmp\"\ntarget = \"gw.example\"\n"),
        6,
        10,
        "\"gw.example\" is not an IP address",
    );
}

#[test]
fn tcp_target_needs_a_port() {
    assert_error(
        &probe("name = \"a\"\ntype = \"tcp\"\ntarget = \"192.0.2.1\"\n"),
        6,
        10,
        "\"192.0.2.1\" is not an ip:port address",
    );
}

#[test]
fn http_target_must_be_plain_http() {
    let errs = errors(&probe("name = \"a\"\ntype = \"http\"\ntarget = \"https://192.0.2.1/\"\n"));
    assert_eq!((errs[0].line, errs[0].column), (6, 10));
    assert_eq!(errs[0].message, "\"https://192.0.2.1/\" is not an http://host:port/path URL");
}

#[test]
fn http_status_out_of_range() {
    assert_error(
        &probe("name = \"a\"\ntype = \"http\"\ntarget = \"http://192.0.2.1/\"\nexpect_status = 42\n"),
        7,
        17,
        "expect_status 42 is not an HTTP status",
    );
}

#[test]
fn missing_target() {
    assert_error(&probe("name = \"a\"\ntype = \"icmp\"\n"), 3, 1, "missing `target`");
}

#[test]
fn key_that_does_not_apply_to_the_probe() {
    assert_error(
        &probe("name = \"a\"\ntype = \"icmp\"\ntarget = \"192.0.2.1\"\ncommand = [\"x\"]\n"),
        7,
        11,
        "`command` does not apply to an icmp probe",
    );
}

#[test]
fn timeout_longer_than_interval() {
    assert_error(
        &probe(
            "name = \"a\"\ntype = \"icmp\"\ntarget = \"192.0.2.1\"\ninterval = \"1s\"\ntimeout = \"2s\"\n",
        ),
        8,
        11,
        "probe `timeout` must be between 0s and the interval (1s)",
    );
}

#[test]
fn zero_rise() {
    assert_error(
        &probe("name = \"a\"\ntype = \"icmp\"\ntarget = \"192.0.2.1\"\nrise = 0\n"),
        7,
        8,
        "probe `rise` must be at least 1",
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = format!(
        "{}[[probe]]\nname = \"b\"\ntype = \"tcp\"\ntarget = \"nope\"\n",
        probe("name = \"a\"\ntype = \"icmp\"\ntarget = \"nope\"\nrise = 0\n")
    );
    let errs = errors(&text);
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![7, 6, 11], "{errs:#?}");
}

#[test]
fn display_is_file_line_column_with_hint() {
    let errs = errors(&format!("hook_fallback = \"panic\"\n{BACKEND}"));
    assert_eq!(
        errs[0].to_string(),
        "bad.toml:1:17: error: unknown hook_fallback \"panic\"\n  hint: \"demote\" or \"nothing\""
    );
}

// Duration bounds: every duration has an upper bound check-config names (an unbounded one
// overflowed `Instant + Duration` and panicked the daemon).

#[test]
fn a_max_hold_that_would_overflow_an_instant_is_rejected_by_check_config() {
    let errs = errors(&format!("max_hold = \"584000000000y\"\n{BACKEND}"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].to_string().lines().next(),
        Some("bad.toml:1:12: error: `max_hold` must be at most 7days")
    );
}

#[test]
fn max_hold_over_7_days() {
    assert_error(&format!("max_hold = \"8d\"\n{BACKEND}"), 1, 12, "`max_hold` must be at most 7days");
}

#[test]
fn max_hold_of_exactly_7_days_is_accepted() {
    let c = Config::parse("ok.toml", &format!("max_hold = \"7d\"\n{BACKEND}")).unwrap();
    assert_eq!(c.max_hold.as_secs(), 7 * 86_400);
}

#[test]
fn min_hold_over_7_days() {
    assert_error(&format!("min_hold = \"100000h\"\n{BACKEND}"), 1, 12, "`min_hold` must be at most 7days");
}

#[test]
fn stable_for_over_7_days() {
    assert_error(&format!("stable_for = \"2w\"\n{BACKEND}"), 1, 14, "`stable_for` must be at most 7days");
}

#[test]
fn probe_interval_over_an_hour() {
    assert_error(
        &format!("{BACKEND}[[probe]]\nname = \"a\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\ninterval = \"61m\"\n"),
        7,
        12,
        "probe `interval` must be at most 1h",
    );
}

#[test]
fn probe_timeout_is_bounded_through_the_interval() {
    assert_error(
        &format!(
            "{BACKEND}[[probe]]\nname = \"a\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\ntimeout = \"2h\"\n"
        ),
        7,
        11,
        "probe `timeout` must be between 0s and the interval (1s)",
    );
}

#[test]
fn backend_timeout_over_10_minutes() {
    assert_error(
        "[backend]\ntype = \"command\"\ndemote = [\"d\"]\npromote = [\"p\"]\ntimeout = \"11m\"\n",
        5,
        11,
        "backend `timeout` must be at most 10m",
    );
}

// ---- [tracking] ----

const TRACKED_PROBE: &str =
    "[backend]\ntype = \"simulated\"\n[[probe]]\nname = \"p\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\n";

#[test]
fn tracking_peer_must_be_a_plain_http_url() {
    assert_error(
        &format!("[tracking]\npeer = \"https://192.0.2.2/status\"\n{TRACKED_PROBE}"),
        2,
        8,
        "`peer`: https is not supported: use http://, or a command probe (e.g. curl) for TLS",
    );
}

#[test]
fn tracking_max_demotions_must_be_at_least_one() {
    assert_error(
        &format!("[tracking]\nmax_demotions = 0\n{TRACKED_PROBE}"),
        2,
        17,
        "`max_demotions` must be at least 1",
    );
}

#[test]
fn tracking_window_is_bounded() {
    assert_error(
        &format!("[tracking]\nwindow = \"2days\"\n{TRACKED_PROBE}"),
        2,
        10,
        "`window` must be between 1s and 1day",
    );
}

#[test]
fn track_without_peer_is_stay_or_demote() {
    assert_error(
        &format!("{TRACKED_PROBE}track = true\ntrack_without_peer = \"maybe\"\n"),
        8,
        22,
        "unknown track_without_peer \"maybe\"",
    );
}

#[test]
fn tracking_keys_are_decoded() {
    let cfg = failbackd::config::Config::parse(
        "t.toml",
        &format!(
            "[tracking]\nenabled = true\ntrack_for = \"5s\"\nmax_demotions = 2\nwindow = \"30m\"\npeer = \"http://192.0.2.2:9818/status\"\n{TRACKED_PROBE}track_without_peer = \"demote\"\n"
        ),
    )
    .unwrap();
    let m = cfg.machine();
    assert_eq!(m.probes[0].track, Some(failbackd::machine::TrackSpec { demote_without_peer: true }));
    assert_eq!(
        (
            m.tracking.track_for.as_secs(),
            m.tracking.max_demotions,
            m.tracking.window.as_secs(),
            m.tracking.peer
        ),
        (5, 2, 1800, true)
    );
}

const PROBE: &str = "[[probe]]\nname = \"a\"\ntype = \"tcp\"\ntarget = \"127.0.0.1:1\"\n";

#[test]
fn probe_pacing_defaults_keep_the_timeout() {
    let c = Config::parse("ok.toml", &format!("{BACKEND}{PROBE}timeout = \"200ms\"\n")).unwrap();
    let p = &c.probes[0];
    assert_eq!((p.fast_interval.as_millis(), p.down_interval.as_millis()), (250, 1000));
    let c = Config::parse("ok.toml", &format!("{BACKEND}{PROBE}")).unwrap();
    let p = &c.probes[0];
    assert_eq!((p.fast_interval.as_millis(), p.down_interval.as_millis()), (1000, 1000));
    let c = Config::parse(
        "ok.toml",
        &format!("{BACKEND}{PROBE}timeout = \"100ms\"\nfast_interval = \"100ms\"\ndown_interval = \"5s\"\n"),
    )
    .unwrap();
    let p = &c.probes[0];
    assert_eq!((p.fast_interval.as_millis(), p.down_interval.as_millis()), (100, 5000));
}

#[test]
fn fast_interval_below_the_timeout() {
    assert_error(
        &format!("{BACKEND}{PROBE}timeout = \"500ms\"\nfast_interval = \"200ms\"\n"),
        8,
        17,
        "probe `fast_interval` must be between the timeout (500ms) and the interval (1s)",
    );
}

#[test]
fn fast_interval_above_the_interval() {
    assert_error(
        &format!("{BACKEND}{PROBE}fast_interval = \"2s\"\n"),
        7,
        17,
        "probe `fast_interval` must be between the timeout (1s) and the interval (1s)",
    );
}

#[test]
fn down_interval_below_the_timeout() {
    assert_error(
        &format!("{BACKEND}{PROBE}down_interval = \"500ms\"\n"),
        7,
        17,
        "probe `down_interval` must be between the timeout (1s) and 1h",
    );
}

#[test]
fn down_interval_above_an_hour() {
    assert_error(
        &format!("{BACKEND}{PROBE}timeout = \"1s\"\ndown_interval = \"2h\"\n"),
        8,
        17,
        "probe `down_interval` must be between the timeout (1s) and 1h",
    );
}

#[test]
fn tracking_dampening_defaults_and_keys() {
    let c = Config::parse("ok.toml", &format!("[tracking]\n{TRACKED_PROBE}")).unwrap();
    let d = c.tracking.dampen;
    assert_eq!(
        (d.penalty, d.suppress, d.reuse, d.half_life.as_secs(), d.max_stability.as_secs()),
        (1000, 1000, 500, 120, 600)
    );
    let c = Config::parse(
        "ok.toml",
        &format!(
            "max_hold = \"2h\"\n[tracking]\nflap_penalty = 1000\nflap_suppress = 2000\nflap_reuse = 750\nflap_half_life = \"15m\"\nflap_max_stability = \"1h\"\n{TRACKED_PROBE}"
        ),
    )
    .unwrap();
    let m = c.machine().tracking.dampen;
    assert_eq!(
        (m.penalty, m.suppress, m.reuse, m.half_life.as_secs(), m.max_stability.as_secs()),
        (1000, 2000, 750, 900, 3600)
    );
}

#[test]
fn tracking_flap_reuse_must_be_below_suppress() {
    assert_error(
        &format!("[tracking]\nflap_reuse = 1000\n{TRACKED_PROBE}"),
        2,
        14,
        "`flap_reuse` (1000) must be below `flap_suppress` (1000)",
    );
}

#[test]
fn tracking_flap_penalty_zero() {
    assert_error(
        &format!("[tracking]\nflap_penalty = 0\n{TRACKED_PROBE}"),
        2,
        16,
        "`flap_penalty` must be between 1 and 1000000",
    );
}

#[test]
fn tracking_flap_half_life_bounds() {
    assert_error(
        &format!("[tracking]\nflap_half_life = \"500ms\"\n{TRACKED_PROBE}"),
        2,
        18,
        "`flap_half_life` must be between 1s and 1day",
    );
}

#[test]
fn tracking_flap_max_stability_below_max_hold() {
    assert_error(
        &format!("max_hold = \"5m\"\n[tracking]\nflap_max_stability = \"5m\"\n{TRACKED_PROBE}"),
        3,
        22,
        "`flap_max_stability` must be shorter than `max_hold` (5m)",
    );
}

#[test]
fn tracking_flap_suppress_out_of_reach() {
    // Capped at 500 * 2^(60s / 60s) = 1000 < 5000: nothing could ever be suppressed.
    assert_error(
        &format!("[tracking]\nflap_suppress = 5000\nflap_max_stability = \"60s\"\n{TRACKED_PROBE}"),
        3,
        22,
        "the penalty can never reach `flap_suppress`",
    );
}
