//! D19: a printing subcommand whose reader went away (`failbackd check-config F | head -1`,
//! `failbackd status | grep -q ...`) exits with its own exit code, without a panic.

#[path = "support/node.rs"]
mod node;

use std::process::{Command, Output, Stdio};

/// Runs failbackd with stdout on a pipe whose read end is already closed.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_failbackd"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn check_config_into_a_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("f.toml");
    std::fs::write(&cfg, "[backend]\ntype = \"simulated\"\n").unwrap();
    let out = with_closed_stdout(&["check-config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "the config is valid: {stderr}");
}

#[test]
fn status_and_ready_into_a_closed_pipe_do_not_panic() {
    let mut n = node::Node::new(node::NodeOpts::default());
    n.start();
    n.wait_phase("probing");
    let sock = n.path("s.sock");
    for args in [
        vec!["status", "--socket", sock.to_str().unwrap()],
        vec!["status", "--json", "--socket", sock.to_str().unwrap()],
        vec!["ready", "-v", "--config", n.cfg.to_str().unwrap()],
    ] {
        let out = with_closed_stdout(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{args:?}: held while probing; {stderr}");
    }
}
