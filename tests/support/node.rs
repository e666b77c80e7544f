#![allow(dead_code)] // each test binary uses a different part of this helper
//! A real `failbackd run` process with a command backend whose state lives in files, so a test
//! can kill -9 it, restart it and see what the "firewall" looks like.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    pub dir: tempfile::TempDir,
    pub cfg: PathBuf,
    /// Where /metrics is served (a port that was free when the node was made).
    pub http: std::net::SocketAddr,
    /// Extra environment for the daemon process.
    pub envs: Vec<(String, String)>,
    child: Option<Child>,
}

/// Options for the node's config.
pub struct NodeOpts {
    pub hold_on_boot: bool,
    pub stable_for: &'static str,
    pub max_hold: &'static str,
    pub extra: &'static str,
    /// The backend reports CARP states from the file `carp` (`VHID@IFACE STATE` lines).
    pub carp: bool,
    /// Keys added to the probe table (e.g. `track = true`).
    pub probe_extra: &'static str,
}

impl Default for NodeOpts {
    fn default() -> Self {
        NodeOpts {
            hold_on_boot: true,
            stable_for: "300ms",
            max_hold: "60s",
            extra: "",
            carp: false,
            probe_extra: "",
        }
    }
}

impl Node {
    pub fn new(opts: NodeOpts) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The backend: state in `backend`, every call appended to `calls`; a call sleeps for
        // the seconds in `delay` first (0 when absent), so a test can catch a call in flight.
        let call = |word: &str| {
            format!(
                "[\"sh\", \"-c\", \"sleep $(cat {d}/delay 2>/dev/null || echo 0); echo {word} > {d}/backend.tmp && mv {d}/backend.tmp {d}/backend && echo {word} >> {d}/calls\"]",
                d = d.display()
            )
        };
        let cfg = d.join("failbackd.toml");
        // A free loopback port now; taken by the daemon at start (other tests use port 0).
        let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let carp_state = if opts.carp {
            format!("carp_state = [\"cat\", \"{}/carp\"]\n", d.display())
        } else {
            String::new()
        };
        std::fs::write(
            &cfg,
            format!(
                "watch = [\"1@em0\"]\nhold_on_boot = {}\nmin_hold = \"0s\"\nstable_for = \"{}\"\nmax_hold = \"{}\"\n\
                 control_socket = \"{d}/s.sock\"\nstate_file = \"{d}/state\"\nmetrics_listen = \"{http}\"\n{}\n\
                 [backend]\ntype = \"command\"\ndemote = {}\npromote = {}\nstate = [\"cat\", \"{d}/backend\"]\ntimeout = \"30s\"\n{carp_state}\
                 [[probe]]\nname = \"path\"\ntype = \"command\"\ncommand = [\"test\", \"-e\", \"{d}/up\"]\ninterval = \"100ms\"\nrise = 2\nfall = 2\n{}\n",
                opts.hold_on_boot,
                opts.stable_for,
                opts.max_hold,
                opts.extra,
                call("demoted"),
                call("promoted"),
                opts.probe_extra,
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("backend"), "promoted\n").unwrap();
        Node { dir, cfg, http, envs: Vec::new(), child: None }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn start(&mut self) {
        let _ = std::fs::remove_file(self.path("s.sock"));
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.path("daemon.log")).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
            .args(["run", "-c"])
            .arg(&self.cfg)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_until("the control socket", Duration::from_secs(20), || self.path("s.sock").exists());
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < until, "failbackd did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(assert_cmd::cargo::cargo_bin("failbackd"))
            .args(["status", "--json", "--socket"])
            .arg(self.path("s.sock"))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    pub fn wait_phase(&self, phase: &str) {
        wait_until(&format!("phase {phase}"), Duration::from_secs(20), || self.status()["phase"] == phase);
    }

    pub fn set_up(&self, up: bool) {
        if up {
            std::fs::write(self.path("up"), "").unwrap();
        } else {
            let _ = std::fs::remove_file(self.path("up"));
        }
    }

    pub fn set_delay(&self, secs: u32) {
        std::fs::write(self.path("delay"), secs.to_string()).unwrap();
    }

    /// What the "firewall" says: "demoted" or "promoted".
    pub fn backend(&self) -> String {
        std::fs::read_to_string(self.path("backend")).unwrap().trim().to_string()
    }

    /// Every backend call so far, in order.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls")).unwrap_or_default().lines().map(String::from).collect()
    }

    /// GET `path` from the daemon's HTTP server: (status code, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&self.http, Duration::from_secs(5)) else {
            return (0, String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
    }

    /// The value of one sample in /metrics (`name{labels}` exactly as exposed), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `cond` every 50 ms until it holds, at most `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
