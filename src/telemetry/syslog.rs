//! A `tracing` layer that writes one syslog line per event to the local syslog socket, through
//! the `syslog` crate's Unix socket logger (datagram, with its stream fallback). Fields follow
//! the message as `key=value` (values quoted when needed), like the forum script's
//! `logger -t` lines. The default format is the one syslog(3) has always sent to the local
//! socket, RFC 3164 without a HOSTNAME:
//!
//! ```text
//! <30>Mar  7 14:02:11 failbackd[4242]: phase changed phase=probing from=holding after_s=0.002
//! ```
//!
//! Why no hostname: a local socket's receivers take the word after the timestamp as the
//! program unless told otherwise. rsyslog's imuxsock uses a special parser for the local form
//! by default (its `UseSpecialParser`; `ParseHostname` is off: "normally, the local log sockets
//! do not contain hostnames"), as does journald on /dev/log, so a hostname there filed every
//! line under program `fw1`. FreeBSD's libc syslog(3) (lib/libc/gen/syslog.c) sent exactly
//! this form up to FreeBSD 11 (`"<%d>"`, `ctime + 4` to 15 characters, `LogTag[pid]: `);
//! FreeBSD syslogd (usr.sbin/syslogd/syslogd.c, `parsemsg_rfc3164`) skips a HOSTNAME word only
//! when a space comes before a `:`, "Support non RFC compliant messages, without hostname", so
//! it attributes both. OPNsense's syslog-ng reads /var/run/log with `flags(syslog-protocol)`
//! (opnsense/core src/opnsense/service/templates/OPNsense/Syslog/sources/001-local.conf) and
//! falls back to its RFC 3164 parser for a line without the `1 ` version
//! (`_syslog_format_parse_legacy` in syslog-ng's syslog-format.c).
//!
//! `format = "rfc5424"` writes what FreeBSD 12+ libc syslog(3) writes to /var/run/log
//! (`vsyslog1`: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`), which FreeBSD syslogd
//! (`parsemsg_rfc5424`) and OPNsense's syslog-ng parse. rsyslog's imuxsock parses RFC 5424 only
//! on an input with `useSpecialParser="off"` (its special parser takes the `1` for the program:
//! rsyslog issue #4749); tests/syslog_output.rs runs a real rsyslogd both ways.
//!
//! The formatting is ours (implementing `syslog::LogFormat`): RFC 3164 timestamps carry no
//! zone and syslogd reads them as local time, so the line uses local time with a space-padded
//! day (the crate's `Formatter3164` writes UTC, zero-padded, and a hostname); RFC 5424 lines
//! use `-` for MSGID and STRUCTURED-DATA (the crate's writes a number as MSGID).
//!
//! Logging never blocks the daemon: the layer formats the line and hands it to a writer thread
//! over a bounded queue ([`QUEUE`] lines; when it is full, lines are dropped and counted, and
//! the count is logged once syslog keeps up again). The writer sends with a [`SEND_TIMEOUT`],
//! reconnects when syslogd was restarted, and reports a missing socket once on stderr, then
//! retries every [`RETRY_EVERY`].
//!
//! A restart is recognised by the socket *file*, not only by a failing send: before each line the
//! writer checks that the path still names the socket it connected to (device and inode). A
//! send to the old socket fails only once nothing holds it open any more; while anything does (a
//! child process between fork and exec, which inherits every descriptor of the process, or a
//! syslogd still shutting down) the send succeeds into a socket nobody reads and the line is
//! lost. That was the flake of tests/syslog_output.rs under load: another test spawning a
//! process kept the first "syslogd" socket alive for a moment.

use crate::config::telemetry::{SyslogConfig, SyslogFormat};
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use syslog::{Facility, LogFormat, Logger, LoggerBackend, Severity};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// How often a missing or broken socket is tried again (only when there is a line to send).
pub const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Lines waiting for the writer thread.
pub const QUEUE: usize = 1024;
/// Upper bound on one send (syslogd's queue full); the line is dropped after it.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// FreeBSD syslogd reads at most 8 KiB per datagram (MAXLINE); longer messages are cut.
const MAX_MESSAGE: usize = 7 * 1024;

/// Formats one line per `syslog::LogFormat`.
#[derive(Debug, Clone)]
pub struct LineFormat {
    pub format: SyslogFormat,
    pub facility: Facility,
    /// Only in RFC 5424 lines.
    pub hostname: String,
    pub tag: String,
    pub pid: u32,
}

impl LineFormat {
    pub fn new(cfg: &SyslogConfig) -> LineFormat {
        let facility = cfg.facility.parse().unwrap_or(Facility::LOG_DAEMON);
        // The crate's default formatter knows the host name (and the pid).
        let host = syslog::Formatter3164::default();
        LineFormat {
            format: cfg.format,
            facility,
            hostname: host.hostname.filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into()),
            tag: cfg.tag.clone(),
            pid: host.pid,
        }
    }

    /// The whole line, without a trailing newline.
    pub fn line(&self, severity: Severity, now: Stamp, message: &str) -> String {
        let pri = (self.facility as u8) | (severity as u8);
        match self.format {
            // The local form: no HOSTNAME (see the module comment).
            SyslogFormat::Rfc3164 => {
                format!("<{pri}>{} {}[{}]: {message}", now.format("%b %e %H:%M:%S"), self.tag, self.pid)
            }
            SyslogFormat::Rfc5424 => format!(
                "<{pri}>1 {} {} {} {} - - {message}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                self.hostname,
                self.tag,
                self.pid
            ),
        }
    }
}

/// When the event happened (the line may be written a little later).
pub type Stamp = chrono::DateTime<chrono::Local>;

impl LogFormat<(Stamp, &str)> for LineFormat {
    fn format<W: std::io::Write>(
        &self,
        w: &mut W,
        severity: Severity,
        (at, message): (Stamp, &str),
    ) -> syslog::Result<()> {
        // One write: one datagram.
        w.write_all(self.line(severity, at, message).as_bytes()).map_err(syslog::Error::Write)
    }
}

enum Msg {
    Line(Severity, Stamp, String),
    /// Answered when every line queued before it was handled.
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
struct Shared {
    connected: AtomicBool,
    /// Lines dropped because the queue was full, not yet reported.
    dropped: AtomicU64,
}

/// The syslog layer.
pub struct SyslogLayer {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

/// Waits for the lines queued so far to be written (at exit).
#[derive(Clone)]
pub struct SyslogFlush {
    tx: SyncSender<Msg>,
}

impl SyslogFlush {
    /// Returns false when the writer did not get there within `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(done_tx)).is_err() {
            return false;
        }
        done_rx.recv_timeout(timeout).is_ok()
    }
}

impl SyslogLayer {
    /// A layer writing to `cfg.socket`. Connects at once; when that fails it says so on stderr
    /// and keeps trying (the daemon may start before syslogd).
    pub fn new(cfg: &SyslogConfig) -> SyslogLayer {
        let shared = Arc::new(Shared::default());
        let mut conn = Conn {
            socket: cfg.socket.clone(),
            format: LineFormat::new(cfg),
            logger: None,
            connected_to: None,
            retry_at: None,
            warned: false,
            shared: shared.clone(),
        };
        conn.connect(Instant::now());
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let spawned = std::thread::Builder::new().name("failbackd-syslog".into()).spawn(move || conn.run(rx));
        if let Err(e) = spawned {
            eprintln!("failbackd: warning: cannot start the syslog writer thread: {e}; no syslog");
        }
        SyslogLayer { tx, shared }
    }

    /// Whether the socket is connected now.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    pub fn flusher(&self) -> SyslogFlush {
        SyslogFlush { tx: self.tx.clone() }
    }

    fn send(&self, level: Level, message: String) {
        match self.tx.try_send(Msg::Line(severity(level), chrono::Local::now(), message)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

struct Conn {
    socket: PathBuf,
    format: LineFormat,
    logger: Option<Logger<LoggerBackend, LineFormat>>,
    /// The socket file connected to (device, inode): another one at the path is a restart.
    connected_to: Option<(u64, u64)>,
    /// No connect attempt before this.
    retry_at: Option<Instant>,
    /// The missing socket was reported on stderr (once).
    warned: bool,
    shared: Arc<Shared>,
}

impl Conn {
    fn run(mut self, rx: Receiver<Msg>) {
        for msg in rx {
            match msg {
                Msg::Line(severity, at, line) => {
                    self.send(severity, at, &line);
                    let dropped = self.shared.dropped.swap(0, Ordering::Relaxed);
                    if dropped > 0 {
                        let note = format!("{dropped} log lines dropped: syslog was not keeping up");
                        self.send(Severity::LOG_WARNING, chrono::Local::now(), &note);
                    }
                }
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn connect(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        // Before the connect: a socket re-created in between is seen as a restart at the next
        // line (one reconnect too many), never the other way round.
        let file = socket_file(&self.socket);
        match syslog::unix_custom(self.format.clone(), &self.socket) {
            Ok(logger) => {
                self.connected_to = file;
                match &logger.backend {
                    LoggerBackend::Unix(d) => {
                        let _ = d.set_write_timeout(Some(SEND_TIMEOUT));
                    }
                    LoggerBackend::UnixStream(s) => {
                        let _ = s.get_ref().set_write_timeout(Some(SEND_TIMEOUT));
                    }
                    _ => {}
                }
                if self.warned {
                    eprintln!("failbackd: syslog socket {} is back", self.socket.display());
                    self.warned = false;
                }
                self.logger = Some(logger);
                self.retry_at = None;
                self.shared.connected.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                if !self.warned {
                    eprintln!(
                        "failbackd: warning: cannot log to syslog socket {}: {e}; \
                         logging to stderr only, retrying every {}s",
                        self.socket.display(),
                        RETRY_EVERY.as_secs()
                    );
                    self.warned = true;
                }
                self.retry_at = Some(now + RETRY_EVERY);
            }
        }
    }

    fn disconnect(&mut self, retry_at: Option<Instant>) {
        self.logger = None;
        self.retry_at = retry_at;
        self.shared.connected.store(false, Ordering::Relaxed);
    }

    fn send(&mut self, severity: Severity, at: Stamp, message: &str) {
        if self.logger.is_some() && socket_file(&self.socket) != self.connected_to {
            // syslogd restarted (or left): whatever still holds the old socket, nobody reads it.
            self.disconnect(None);
        }
        for fresh in [false, true] {
            if self.logger.is_none() {
                self.connect(Instant::now());
            }
            let Some(logger) = self.logger.as_mut() else { return };
            let m = (at, message);
            let result = match severity {
                Severity::LOG_ERR => logger.err(m),
                Severity::LOG_WARNING => logger.warning(m),
                Severity::LOG_INFO => logger.info(m),
                _ => logger.debug(m),
            };
            match result {
                Ok(()) => return,
                Err(syslog::Error::Write(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    // syslogd is alive but behind: drop this line, keep the connection.
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(_) if !fresh => {
                    // syslogd restarted (the socket was re-created): reconnect once, resend.
                    self.disconnect(None);
                }
                Err(_) => {
                    self.disconnect(Some(Instant::now() + RETRY_EVERY));
                    return;
                }
            }
        }
    }
}

/// The device and inode of the socket file at `path`, if there is one.
fn socket_file(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn severity(level: Level) -> Severity {
    match level {
        Level::ERROR => Severity::LOG_ERR,
        Level::WARN => Severity::LOG_WARNING,
        Level::INFO => Severity::LOG_INFO,
        _ => Severity::LOG_DEBUG,
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut v = Fields::default();
        event.record(&mut v);
        self.send(*event.metadata().level(), v.finish());
    }
}

/// Renders `message key=value ...` on one line.
#[derive(Default)]
pub struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    pub fn finish(self) -> String {
        let mut out = self.message;
        if !self.rest.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&self.rest);
        }
        let mut out = escape_controls(&out);
        if out.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
        }
        out
    }

    fn push(&mut self, key: &str, value: &str) {
        if !self.rest.is_empty() {
            self.rest.push(' ');
        }
        self.rest.push_str(key);
        self.rest.push('=');
        let plain = !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '=');
        if plain {
            self.rest.push_str(value);
        } else {
            let _ = write!(self.rest, "{value:?}");
        }
    }
}

/// Newlines and other control characters would split or garble a syslog line.
fn escape_controls(s: &str) -> String {
    if !s.contains(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.push(field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.push(field.name(), &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)], message: &str) -> String {
        let mut f = Fields { message: message.into(), rest: String::new() };
        for (k, v) in pairs {
            f.push(k, v);
        }
        f.finish()
    }

    #[test]
    fn key_values_quote_only_when_needed() {
        assert_eq!(fields(&[("probe", "gw"), ("ok", "true")], "probe up"), "probe up probe=gw ok=true");
        assert_eq!(
            fields(&[("error", "connection refused"), ("x", ""), ("q", "a=\"b\"")], "probe down"),
            r#"probe down error="connection refused" x="" q="a=\"b\"""#
        );
        assert_eq!(fields(&[], "line1\nline2"), "line1\\nline2");
        let long = "x".repeat(MAX_MESSAGE + 10);
        assert!(fields(&[], &long).len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn priority_is_facility_times_8_plus_severity() {
        let cfg = SyslogConfig { facility: "local3".into(), ..SyslogConfig::default() };
        let f = LineFormat::new(&cfg);
        assert!(
            f.line(Severity::LOG_WARNING, chrono::Local::now(), "m").starts_with("<156>"),
            "{}",
            f.line(Severity::LOG_WARNING, chrono::Local::now(), "m")
        );
        let f = LineFormat::new(&SyslogConfig::default());
        assert!(f.line(Severity::LOG_ERR, chrono::Local::now(), "m").starts_with("<27>"));
        assert!(f.line(Severity::LOG_DEBUG, chrono::Local::now(), "m").starts_with("<31>"));
    }

    #[test]
    fn missing_socket_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SyslogConfig { enabled: true, socket: dir.path().join("nope"), ..SyslogConfig::default() };
        let layer = SyslogLayer::new(&cfg);
        assert!(!layer.connected());
        layer.send(Level::ERROR, "dropped, not a panic".into());
        assert!(layer.flusher().flush(Duration::from_secs(5)));
        assert!(!layer.connected());
    }
}
