//! The control socket: a Unix stream socket (mode 0600) speaking JSON lines. One request line,
//! one reply line, then the connection closes. Used by the CARP hook and the CLI.
//!
//! Requests are a closed enum (unknown verbs and extra fields are refused), lines are capped at
//! [`MAX_LINE`] bytes, and every request is handed to the daemon through a bounded queue: when it
//! is full the request is refused (and counted), never buffered without limit.

use crate::machine::CarpState;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Longest request line accepted.
pub const MAX_LINE: usize = 4096;
/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the daemon may take to answer one request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A drain waits at most this long, whatever the client asked (also bounds the server-side wait).
pub const MAX_DRAIN: Duration = Duration::from_secs(300);

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// A CARP transition, as the syshook saw it.
    Hook {
        vhid: u16,
        iface: String,
        state: CarpState,
    },
    Status {},
    Hold {
        #[serde(default)]
        reason: Option<String>,
    },
    Release {
        #[serde(default)]
        force: bool,
    },
    /// Demote for a planned shutdown; answered when the peer took over or `timeout_ms` passed.
    Drain {
        timeout_ms: u64,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::status::Status>,
}

impl Reply {
    pub fn ok(message: impl Into<String>) -> Reply {
        Reply { ok: true, error: None, message: Some(message.into()), status: None }
    }
    pub fn error(error: impl Into<String>) -> Reply {
        Reply { ok: false, error: Some(error.into()), message: None, status: None }
    }
}

impl Serialize for CarpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CarpState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CarpState::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown CARP state {s:?}")))
    }
}

/// A request on its way to the daemon, with the channel for its reply.
pub type Envelope = (Request, oneshot::Sender<Reply>);

/// Binds the control socket with mode 0600, replacing a stale socket file.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::other(format!("{} exists and is not a socket", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until `cancel`; each is served in its own task, bounded by timeouts.
pub async fn serve(
    listener: UnixListener,
    queue: mpsc::Sender<Envelope>,
    dropped: prometheus::IntCounter,
    cancel: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
) {
    while let Some((stream, _)) =
        crate::server::next_connection(&cancel, "control socket", || listener.accept()).await
    {
        let queue = queue.clone();
        let dropped = dropped.clone();
        // Tracked, so a shutdown lets a request in progress get its answer.
        tracker.spawn(async move {
            if let Err(e) = serve_one(stream, queue, dropped).await {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
        });
    }
}

async fn serve_one(
    stream: UnixStream,
    queue: mpsc::Sender<Envelope>,
    dropped: prometheus::IntCounter,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64 + 1));
    let mut line = String::new();
    let reply = match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Reply::error("timed out reading the request"),
        Ok(Err(e)) => Reply::error(format!("bad request: {e}")),
        Ok(Ok(_)) if line.len() > MAX_LINE => Reply::error(format!("request longer than {MAX_LINE} bytes")),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim_end()) {
            Err(e) => Reply::error(format!("bad request: {e}")),
            Ok(req) => dispatch(req, &queue, &dropped).await,
        },
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await?;
    // Closing with unread input would reset the connection and lose the reply we just sent
    // (an oversized request, say): read what is left, bounded in size and time, and drop it.
    let mut rest = reader.into_inner().into_inner().take(1 << 20);
    let _ =
        tokio::time::timeout(Duration::from_millis(500), tokio::io::copy(&mut rest, &mut tokio::io::sink()))
            .await;
    Ok(())
}

async fn dispatch(req: Request, queue: &mpsc::Sender<Envelope>, dropped: &prometheus::IntCounter) -> Reply {
    let drain_timeout = match &req {
        Request::Drain { timeout_ms } => Duration::from_millis(*timeout_ms).min(MAX_DRAIN),
        _ => Duration::ZERO,
    };
    let (tx, rx) = oneshot::channel();
    if queue.try_send((req, tx)).is_err() {
        dropped.inc();
        return Reply::error("daemon busy: request queue full, try again");
    }
    match tokio::time::timeout(REPLY_TIMEOUT + drain_timeout, rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Reply::error("daemon is shutting down"),
        Err(_) => Reply::error("daemon did not answer in time"),
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// Nobody listens: no socket file, or the connection was refused. Only then is the daemon
    /// known to be gone; a timeout may be a daemon that is alive but slow (or stopped), which has
    /// the request queued and will act on it.
    pub unreachable: bool,
    pub message: String,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Client side: sends one request and waits for the reply, all within `timeout`.
pub async fn request(path: &Path, req: &Request, timeout: Duration) -> Result<Reply, String> {
    request_detailed(path, req, timeout).await.map_err(|e| e.message)
}

/// Like [`request`], telling an absent daemon from a slow one.
pub async fn request_detailed(path: &Path, req: &Request, timeout: Duration) -> Result<Reply, RequestError> {
    let other = |message: String| RequestError { unreachable: false, message };
    let work = async {
        let mut stream = UnixStream::connect(path).await.map_err(|e| RequestError {
            unreachable: matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ),
            message: format!(
                "cannot reach failbackd at {}: {e} (is `failbackd run` running?)",
                path.display()
            ),
        })?;
        let mut line = serde_json::to_vec(req).map_err(|e| other(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).await.map_err(|e| other(format!("sending to failbackd: {e}")))?;
        let mut reader = BufReader::new(stream.take(1 << 20));
        let mut reply = String::new();
        reader.read_line(&mut reply).await.map_err(|e| other(format!("reading failbackd's reply: {e}")))?;
        serde_json::from_str::<Reply>(reply.trim_end())
            .map_err(|e| other(format!("bad reply from failbackd: {e}")))
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        other(format!(
            "failbackd at {} did not answer within {}",
            path.display(),
            humantime::format_duration(timeout)
        ))
    })?
}

/// Parses the syshook's arguments: `vhid@iface` and `MASTER|BACKUP|INIT`.
pub fn parse_hook_args(target: &str, state: &str) -> Result<(u16, String, CarpState), String> {
    let (vhid, iface) =
        target.split_once('@').ok_or_else(|| format!("{target:?} is not vhid@interface (e.g. 1@vtnet0)"))?;
    let vhid = crate::config::parse_vhid(vhid)?;
    let iface = crate::config::parse_iface(iface)?.to_string();
    let state = CarpState::parse(state).ok_or_else(|| format!("{state:?} is not MASTER, BACKUP or INIT"))?;
    Ok((vhid, iface, state))
}
