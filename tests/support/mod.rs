//! Shared test helpers: a daemon started in-process on loopback with a temp dir.
#![allow(dead_code)]

use failbackd::carp::simulated::SimulatedBackend;
use failbackd::config::Config;
use failbackd::control::{self, Reply, Request};
use failbackd::daemon::{self, Handles, Listeners};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod skip;
#[allow(unused_imports)] // each test binary uses a different part
pub use skip::{is_root, require_root, require_tool, skip_or_fail, tools_required};

pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub http: SocketAddr,
    pub handles: Handles,
    pub sim: SimulatedBackend,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl TestDaemon {
    /// Starts a daemon with `config` (TOML without the paths; they are added here), the
    /// simulated backend unless `config` names another one.
    pub async fn start(config: &str) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, config, SimulatedBackend::default()).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: &str, sim: SimulatedBackend) -> TestDaemon {
        let socket = dir.path().join("control.sock");
        let text = format!(
            "control_socket = {:?}\nstate_file = {:?}\nmetrics_listen = \"127.0.0.1:0\"\n{config}",
            socket,
            dir.path().join("state.json")
        );
        let cfg = Config::parse("test.toml", &text).unwrap_or_else(|e| panic!("{e}"));
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let control = control::bind(&socket).unwrap();
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let backend: Arc<dyn failbackd::carp::Backend> = match cfg.backend {
            failbackd::config::BackendConfig::Simulated => Arc::new(sim.clone()),
            ref other => Arc::from(failbackd::carp::build(other, &cfg.state_file).unwrap()),
        };
        let handles =
            daemon::start(cfg, backend, Listeners { control, http }, cancel.clone(), &tracker).await.unwrap();
        TestDaemon { dir, socket, http: http_addr, handles, sim, cancel, tracker }
    }

    pub async fn request(&self, req: Request) -> Reply {
        control::request(&self.socket, &req, Duration::from_secs(5)).await.unwrap()
    }

    pub fn phase(&self) -> String {
        self.handles.status.borrow().phase.clone()
    }

    /// Waits (bounded) until the daemon reports `phase`.
    pub async fn wait_phase(&self, phase: &str, limit: Duration) {
        let mut rx = self.handles.status.clone();
        let wait = async {
            while rx.borrow_and_update().phase != phase {
                rx.changed().await.unwrap();
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            panic!("no phase {phase} within {limit:?}; now {}", self.phase());
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path).await
    }

    /// Stops the daemon and waits for every task; returns the temp dir for a restart.
    pub async fn stop(self) -> (tempfile::TempDir, SimulatedBackend) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("daemon did not stop");
        (self.dir, self.sim)
    }
}

/// A minimal HTTP/1.1 GET over a raw TCP stream (no client library between us and the server).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A TCP port on 127.0.0.1 that refuses connections until `listen` is called.
pub struct LatePort {
    pub addr: SocketAddr,
    sock: Option<socket2::Socket>,
    listener: Option<std::net::TcpListener>,
}

impl LatePort {
    pub fn new() -> LatePort {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        LatePort { addr, sock: Some(sock), listener: None }
    }
    /// From now on connects succeed (the kernel completes the handshake; nobody accepts).
    pub fn listen(&mut self) {
        if let Some(sock) = self.sock.take() {
            sock.listen(128).unwrap();
            self.listener = Some(sock.into());
        }
    }
}

/// Finds an external tool; when it is missing the test is skipped, or fails under
/// FAILBACKD_REQUIRE_TOOLS=1 ([`skip::require_tool`]).
pub fn tool(name: &str) -> Option<PathBuf> {
    require_tool("this test", name)
}
