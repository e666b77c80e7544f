//! Hostile and bad input, on the stable toolchain and inside `cargo test`: property tests over
//! the three parsers that take untrusted text (the config, the CARP hook's arguments, the
//! control protocol) with a bounded number of cases, and the control socket's line limit and
//! permissions against a real daemon. The cargo-fuzz targets in fuzz/ run the same properties
//! for longer (tools/fuzz.sh).

mod support;

use failbackd::config::Config;
use failbackd::control::{parse_hook_args, Reply, Request, MAX_LINE};
use failbackd::machine::CarpState;
use proptest::prelude::*;
use std::time::Duration;
use support::TestDaemon;

const EXAMPLE: &str = include_str!("../examples/failbackd.toml");

/// The only error without a position: a missing `[backend]` table is nowhere in the text
/// (tests/config_errors.rs pins it at line 0; Display then prints no position).
const POSITIONLESS: &str = "no [backend] table";

/// Parses `text` (must not panic: a panic fails the property) and checks the errors' positions.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    let Err(errors) = Config::parse("t.toml", text) else { return Ok(()) };
    prop_assert!(!errors.0.is_empty(), "Err without an error");
    let lines = text.matches('\n').count() + 1;
    for e in &errors.0 {
        if e.message == POSITIONLESS {
            continue;
        }
        prop_assert!(e.line >= 1 && e.column >= 1, "no position: {e}\n--- input ---\n{text}");
        prop_assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
        prop_assert!(!e.message.trim().is_empty(), "empty message at {e}");
        let shown = e.to_string();
        prop_assert!(shown.starts_with(&format!("t.toml:{}:{}: error: ", e.line, e.column)), "{shown}");
    }
    Ok(())
}

/// Edits of the example config: byte flips, truncations, deleted and duplicated ranges.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Truncate { at: usize },
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Insert { at: usize, text: String },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = EXAMPLE.len();
    prop_oneof![
        (0..n, any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (0..n).prop_map(|at| Mutation::Truncate { at }),
        (0..n, 1..200usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0..n, 1..200usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (0..n, prop_oneof!["[\\[\\]{}=\"',.#\n ]{1,8}", "[a-z_]{1,12} = [0-9\"\\[]{1,6}\n", any::<String>()])
            .prop_map(|(at, text)| Mutation::Insert { at, text }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match m {
        Mutation::Flip { at, byte } if *at < n => bytes[*at] = *byte,
        Mutation::Truncate { at } => bytes.truncate(*at),
        Mutation::Delete { at, len } if *at < n => {
            bytes.drain(*at..(*at + *len).min(n));
        }
        Mutation::Duplicate { at, len } if *at < n => {
            let piece = bytes[*at..(*at + *len).min(n)].to_vec();
            bytes.splice(*at..*at, piece);
        }
        Mutation::Insert { at, text } => {
            let at = (*at).min(n);
            bytes.splice(at..at, text.bytes());
        }
        _ => {}
    }
}

/// The hook grammar, written independently of the parser: `vhid@iface` with the VHID in
/// decimal digits only and 1..=255, the interface 1..=15 of `[A-Za-z0-9_.-]`, and the state
/// exactly MASTER, BACKUP or INIT (as configd passes them).
fn hook_grammar(target: &str, state: &str) -> Option<(u16, String, CarpState)> {
    let (vhid, iface) = target.split_once('@')?;
    if vhid.is_empty() || !vhid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = vhid.trim_start_matches('0');
    if significant.is_empty() || significant.len() > 3 {
        return None;
    }
    let vhid: u16 = significant.parse().ok().filter(|v| (1..=255).contains(v))?;
    let iface_ok = (1..=15).contains(&iface.len())
        && iface.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !iface_ok {
        return None;
    }
    let state = match state {
        "MASTER" => CarpState::Master,
        "BACKUP" => CarpState::Backup,
        "INIT" => CarpState::Init,
        _ => return None,
    };
    Some((vhid, iface.to_string(), state))
}

fn hook_target() -> impl Strategy<Value = String> {
    let vhid = prop_oneof![
        (1u16..=255).prop_map(|v| v.to_string()),
        (1u16..=255, 1..4usize).prop_map(|(v, z)| format!("{}{v}", "0".repeat(z))),
        (0u32..100_000).prop_map(|v| v.to_string()),
        ("[-+ ]", 1u16..=255, "[ \n]?").prop_map(|(pre, v, post)| format!("{pre}{v}{post}")),
        "[-+ *0-9a-z]{0,5}",
        any::<String>(),
    ];
    let iface = prop_oneof![
        "[A-Za-z0-9_.-]{1,15}",
        "[A-Za-z0-9_.-]{14,18}",
        "[a-z0-9 @/é\\x00*]{0,6}",
        any::<String>(),
    ];
    prop_oneof![
        4 => (vhid, iface).prop_map(|(v, i)| format!("{v}@{i}")),
        1 => any::<String>(),
    ]
}

fn hook_state() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec!["MASTER", "BACKUP", "INIT"]).prop_map(String::from),
        proptest::sample::select(vec!["master", "Master", "MASTER ", " INIT", "BACKUP\n", "", "UP"])
            .prop_map(String::from),
        any::<String>(),
    ]
}

/// JSON documents shaped like requests: the protocol's keys (and some it does not have, such
/// as `path` and `argv`) with values of every JSON type.
fn json_value(depth: u32) -> BoxedStrategy<serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(vec!["hook", "status", "hold", "release", "drain", "MASTER", "INIT", "em0"])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let key = proptest::sample::select(vec![
        "cmd",
        "vhid",
        "iface",
        "state",
        "reason",
        "force",
        "timeout_ms",
        "path",
        "argv",
        "command",
    ]);
    prop_oneof![
        2 => leaf,
        3 => proptest::collection::vec((key, json_value(depth - 1)), 0..5).prop_map(|kv| {
            Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        }),
        1 => proptest::collection::vec(json_value(depth - 1), 0..4).prop_map(Value::Array),
    ]
    .boxed()
}

fn check_request(line: &str) -> Result<(), TestCaseError> {
    if let Ok(req) = serde_json::from_str::<Request>(line) {
        let text = serde_json::to_string(&req).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Request = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &req, "round trip of {}", line);
        // Whatever parsed is one of the five closed verbs; no request carries a path or an argv
        // (the type has no such field, and unknown fields are refused).
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let keys: Vec<&String> = value.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        for k in keys {
            prop_assert!(
                ["cmd", "vhid", "iface", "state", "reason", "force", "timeout_ms"].contains(&k.as_str()),
                "unexpected field {} in {}",
                k,
                text
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn config_parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_config(&text)?;
    }

    #[test]
    fn config_parse_never_panics_on_toml_shaped_text(
        text in "([a-z_.\\[\\]]{0,12} ?= ?(\"[a-z0-9@*.:/ ]{0,10}\"|[0-9]{1,4}|true|\\[|\\{)?\n){0,12}"
    ) {
        check_config(&text)?;
    }

    #[test]
    fn config_parse_never_panics_on_mutated_examples(muts in proptest::collection::vec(mutation(), 1..6)) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        for m in &muts {
            apply(&mut bytes, m);
        }
        check_config(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn hook_args_accept_exactly_the_grammar(target in hook_target(), state in hook_state()) {
        let parsed = parse_hook_args(&target, &state);
        let expected = hook_grammar(&target, &state);
        match (&parsed, &expected) {
            (Ok(p), Some(e)) => prop_assert_eq!(p, e),
            (Err(msg), None) => prop_assert!(!msg.is_empty()),
            _ => prop_assert!(false, "{:?} {:?}: parser {:?}, grammar {:?}", target, state, parsed, expected),
        }
    }

    #[test]
    fn control_request_parse_never_panics_on_arbitrary_text(line in any::<String>()) {
        check_request(&line)?;
    }

    #[test]
    fn control_request_parse_round_trips_request_shaped_json(value in json_value(3)) {
        check_request(&value.to_string())?;
    }
}

/// Every valid request round-trips, and the hook grammar accepts what the hook itself sends.
#[test]
fn valid_requests_and_hook_args_are_accepted() {
    for line in [
        r#"{"cmd":"hook","vhid":1,"iface":"vtnet0","state":"MASTER"}"#,
        r#"{"cmd":"status"}"#,
        r#"{"cmd":"hold","reason":"x"}"#,
        r#"{"cmd":"hold"}"#,
        r#"{"cmd":"release","force":true}"#,
        r#"{"cmd":"drain","timeout_ms":18446744073709551615}"#,
    ] {
        assert!(serde_json::from_str::<Request>(line).is_ok(), "{line}");
    }
    for bad in [
        r#"{"cmd":"status","path":"/etc/shadow"}"#,
        r#"{"cmd":"exec","argv":["/bin/sh","-c","id"]}"#,
        r#"{"cmd":"hook","vhid":70000,"iface":"em0","state":"MASTER"}"#,
        r#"{"cmd":"drain","timeout_ms":18446744073709551616}"#,
    ] {
        assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_hook_args("007@lagg0.100", "INIT"), Ok((7, "lagg0.100".into(), CarpState::Init)));
    assert!(parse_hook_args("+1@em0", "MASTER").is_err(), "a sign is not a VHID");
}

/// A config with deeply nested brackets must be rejected, not overflow the parser's stack.
#[test]
fn deeply_nested_config_is_an_error_not_a_crash() {
    for depth in [64, 1_000, 20_000] {
        let arrays = format!("watch = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        let tables = format!("backend = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth));
        for text in [arrays, tables] {
            let errors = Config::parse("t.toml", &text).expect_err("nested junk is not a config");
            assert!(errors.0.iter().all(|e| e.line >= 1 || e.message == POSITIONLESS), "{errors}");
        }
    }
}

/// Sends raw bytes on the control socket and reads the one-line reply.
async fn raw_request(d: &TestDaemon, bytes: &[u8]) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(&d.socket).await.unwrap();
    // The server may answer and stop reading before everything is written: ignore that error.
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut reply)).await.unwrap().unwrap();
    serde_json::from_str(reply.trim()).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
}

/// A `hold` request padded with JSON whitespace to exactly `len` bytes including its newline.
fn padded_hold(len: usize) -> Vec<u8> {
    let core = r#"{"cmd":"hold","reason":"padded"}"#;
    let mut line = format!("{}{core}\n", " ".repeat(len - core.len() - 1)).into_bytes();
    line.truncate(len);
    assert_eq!(line.len(), len);
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_control_lines_are_refused_with_the_limit_and_have_no_effect() {
    // A probe that stays down (nothing listens), so an accepted hold stays visible.
    let port = support::LatePort::new();
    let cfg = format!(
        "hold_on_boot = false\nmin_hold = \"0s\"\nstable_for = \"1s\"\n[backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"down\"\ntype = \"tcp\"\ntarget = \"{}\"\ninterval = \"1s\"\n",
        port.addr
    );
    let d = TestDaemon::start(&cfg).await;
    d.wait_phase("idle", Duration::from_secs(10)).await;
    let limit = format!("request longer than {MAX_LINE} bytes");

    // One byte over the limit: refused with the limit, and the hold is not applied.
    let r = raw_request(&d, &padded_hold(MAX_LINE + 1)).await;
    assert_eq!(r.error.as_deref(), Some(limit.as_str()), "{r:?}");
    // A megabyte without any newline: the same, read no further than the limit.
    let r = raw_request(&d, &vec![b'{'; 1 << 20]).await;
    assert_eq!(r.error.as_deref(), Some(limit.as_str()), "{r:?}");
    assert_eq!(d.phase(), "idle", "an oversized request must not act");

    // Exactly at the limit: accepted and applied.
    let r = raw_request(&d, &padded_hold(MAX_LINE)).await;
    assert!(r.ok, "a {MAX_LINE}-byte line is within the limit: {r:?}");
    let mut rx = d.handles.status.clone();
    let held = async {
        while rx.borrow_and_update().phase == "idle" {
            rx.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), held).await.expect("the accepted hold left idle");
    let st = d.request(Request::Status {}).await.status.unwrap();
    assert_eq!(st.failback.map(|f| f.trigger).as_deref(), Some("manual"), "{:?}", d.phase());
    d.stop().await;
}

/// Runs `failbackd status` as `nobody` (setpriv drops uid, gid and groups) against `socket`.
fn status_as_nobody(socket: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_failbackd"))
        .args(["status", "--json", "--config"])
        .arg(dir.join("no-such-config.toml"))
        .arg("--socket")
        .arg(socket)
        .env_clear()
        .output()
        .expect("running setpriv")
}

/// The control socket is 0600 and owned by root, and an unprivileged user cannot connect.
///
/// The socket is the daemon's only input besides its config file, and what a connection can ask
/// for is a closed enum (`Request`: hook, status, hold, release, drain) whose fields are a VHID,
/// an interface name, a CARP state, a free-text reason, a bool and a number: there is no path or
/// command field, unknown fields are refused (see `valid_requests_and_hook_args_are_accepted`
/// and the property tests above), and the daemon acts on them only through the state machine.
/// So even a root client cannot make the daemon open a path or run a program it chooses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_refuses_a_non_root_client() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !support::require_root("control_socket_refuses_a_non_root_client (switches to nobody)") {
        return;
    }
    if support::require_tool("control_socket_refuses_a_non_root_client", "setpriv").is_none() {
        return;
    }
    let d = TestDaemon::start("hold_on_boot = false\n[backend]\ntype = \"simulated\"\n").await;
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    assert_eq!(meta.uid(), 0, "socket owner");
    // Let nobody reach the socket file, so only the socket's own mode stands in the way.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = status_as_nobody(&d.socket, d.dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody got a status: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("Permission denied"), "{stderr}");

    // Control: with the mode opened up the same command works, so the refusal above is the
    // socket's mode and not something else about running as nobody.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = status_as_nobody(&d.socket, d.dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"phase\""), "{stdout} / {}", String::from_utf8_lossy(&out.stderr));
    d.stop().await;
}
