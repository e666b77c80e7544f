//! `promtool check metrics` (the real one) on a live scrape, before and after a failback.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{LatePort, TestDaemon};

fn promtool_check(promtool: &std::path::Path, body: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed:\n{text}");
    // promtool exits 0 with lint warnings too; there must be none.
    assert!(text.trim().is_empty(), "promtool lint findings:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scrape_passes_promtool_check_metrics() {
    let Some(promtool) = support::require_tool("live_scrape_passes_promtool_check_metrics", "promtool")
    else {
        return;
    };
    let mut port = LatePort::new();
    let d = TestDaemon::start(&format!(
        "watch = [\"1@em0\"]\nmin_hold = \"0s\"\nstable_for = \"0s\"\n[backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"{}\"\ninterval = \"100ms\"\nrise = 1\n\
         [[probe]]\nname = \"opt\"\ntype = \"command\"\ncommand = [\"false\"]\nrequired = false\n",
        port.addr
    ))
    .await;
    let (code, first) = d.get("/metrics").await;
    assert_eq!(code, 200);
    promtool_check(&promtool, &first);

    d.request(failbackd::control::Request::Hook {
        vhid: 1,
        iface: "em0".into(),
        state: failbackd::machine::CarpState::Init,
    })
    .await;
    port.listen();
    d.wait_phase("released", Duration::from_secs(20)).await;
    let (_, after) = d.get("/metrics").await;
    promtool_check(&promtool, &after);
    assert!(after.contains("failback_carp_state{interface=\"em0\",state=\"INIT\",vhid=\"1\"} 1"), "{after}");
    #[cfg(target_os = "linux")]
    assert!(after.contains("process_resident_memory_bytes"));
    d.stop().await;
}
