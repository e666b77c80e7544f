//! The syslog layer against a Unix datagram socket the test binds (standing in for syslogd's
//! /var/run/log): RFC 3164 (local form, no hostname) and RFC 5424 framing, PRI = facility * 8 +
//! severity, local-time timestamps, `key=value` fields; a syslogd restart; through the global
//! subscriber the way `failbackd run` installs it, the daemon's own lines for a failback; and a
//! real rsyslogd (Debian package rsyslog) that must file both formats under the right program,
//! PID, facility and severity.

mod support;

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike};
use failbackd::config::Config;
use failbackd::telemetry::logging::{self, LogFormat};
use failbackd::telemetry::syslog::SyslogLayer;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn syslog_config(socket: &Path, extra: &str) -> failbackd::config::telemetry::SyslogConfig {
    let text =
        format!("[backend]\ntype = \"simulated\"\n[syslog]\nenabled = true\nsocket = {socket:?}\n{extra}");
    Config::parse("t.toml", &text).unwrap_or_else(|e| panic!("{e}")).telemetry.syslog
}

fn bind(path: &Path) -> UnixDatagram {
    let sock = UnixDatagram::bind(path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 16 * 1024];
    let n = sock.recv(&mut buf).expect("no syslog datagram");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn hostname() -> String {
    syslog::Formatter3164::default().hostname.filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into())
}

/// Splits `<PRI>Mmm dd hh:mm:ss tag[pid]: msg` (the local form: no hostname) and checks the
/// timestamp is local time between `before` and `after`. Returns (pri, tag[pid], msg).
fn parse_3164(line: &str, before: DateTime<Local>, after: DateTime<Local>) -> (u8, String, String) {
    let rest = line.strip_prefix('<').unwrap_or_else(|| panic!("no PRI: {line}"));
    let (pri, rest) = rest.split_once('>').unwrap();
    let ts = &rest[..15];
    assert!(MONTHS.contains(&&ts[..3]), "month: {line}");
    let b = ts.as_bytes();
    assert!(b[3] == b' ' && (b[4] == b' ' || b[4].is_ascii_digit()) && b[5].is_ascii_digit(), "day: {line}");
    assert!(b[4] != b'0', "RFC 3164 pads the day with a space: {line}");
    assert_eq!(&ts[6..7], " ");
    assert!(b[9] == b':' && b[12] == b':' && rest.as_bytes()[15] == b' ', "time: {line}");
    let parsed = NaiveDateTime::parse_from_str(&format!("{} {ts}", before.year()), "%Y %b %e %H:%M:%S")
        .unwrap_or_else(|e| panic!("{ts:?}: {e}"));
    let lo = before.naive_local().with_nanosecond(0).unwrap();
    assert!(lo <= parsed && parsed <= after.naive_local(), "{parsed} not local time in [{lo}, {after}]");
    let mut parts = rest[16..].splitn(2, ' ');
    let tag = parts.next().unwrap().to_string();
    let msg = parts.next().unwrap_or_default().to_string();
    (pri.parse().unwrap(), tag, msg)
}

#[test]
fn rfc3164_lines_with_priority_tag_pid_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = bind(&path);
    let cfg = syslog_config(&path, "facility = \"local3\"\ntag = \"failbackd-test\"\n");
    let subscriber = tracing_subscriber::registry().with(SyslogLayer::new(&cfg));
    let before = Local::now();
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(probe = "gw", r#type = "tcp", error = "connection refused", "probe down");
        tracing::info!(phase = "probing", from = "holding", after_s = 0.25, failback = 1u64, "phase changed");
        tracing::error!(backend = "simulated", operation = "demote", "backend call failed");
        tracing::debug!("debug lines are sent too, with severity 7, when the filter lets them");
    });
    let after = Local::now();
    let tag = format!("failbackd-test[{}]:", std::process::id());
    // local3 = 19: 19 * 8 + severity.
    let expected = [
        (156, r#"probe down probe=gw type=tcp error="connection refused""#),
        (158, "phase changed phase=probing from=holding after_s=0.25 failback=1"),
        (155, "backend call failed backend=simulated operation=demote"),
        (159, "debug lines are sent too, with severity 7, when the filter lets them"),
    ];
    for (pri, msg) in expected {
        let line = recv(&sock);
        assert_eq!(parse_3164(&line, before, after), (pri, tag.clone(), msg.to_string()), "{line}");
    }
}

#[test]
fn rfc5424_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = bind(&path);
    let cfg = syslog_config(&path, "format = \"rfc5424\"\n");
    let subscriber = tracing_subscriber::registry().with(SyslogLayer::new(&cfg));
    let before = chrono::Utc::now();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(probe = "gw", r#type = "icmp", "probe up");
    });
    let after = chrono::Utc::now();
    let line = recv(&sock);
    // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG; daemon = 3, info = 6.
    let f: Vec<&str> = line.splitn(8, ' ').collect();
    assert_eq!(f.len(), 8, "{line}");
    assert_eq!(f[0], "<30>1", "{line}");
    let ts = DateTime::parse_from_rfc3339(f[1]).unwrap_or_else(|e| panic!("{}: {e}", f[1]));
    let lo = before.with_nanosecond(before.nanosecond() / 1000 * 1000).unwrap();
    assert!(lo <= ts && ts <= after, "{ts} not in [{before}, {after}]");
    assert_eq!(f[2], hostname());
    assert_eq!(f[3], "failbackd", "the default tag");
    assert_eq!(f[4], std::process::id().to_string());
    assert_eq!((f[5], f[6]), ("-", "-"));
    assert_eq!(f[7], "probe up probe=gw type=icmp");
}

#[test]
fn a_restarted_syslogd_is_reconnected_and_a_missing_one_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = bind(&path);
    let layer = SyslogLayer::new(&syslog_config(&path, ""));
    assert!(layer.connected());
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("first");
        assert!(recv(&sock).ends_with(": first"));
        // syslogd restarts: its socket is closed and re-created at the same path. The old socket
        // lingers meanwhile, as it does in a child process between fork and exec (another test
        // spawning a process): a send to it still succeeds, into a socket nobody reads. Before
        // the writer checked the socket file, this line went there (the flake under load).
        let lingering = sock.try_clone().unwrap();
        drop(sock);
        std::fs::remove_file(&path).unwrap();
        let sock = bind(&path);
        tracing::info!("after the restart");
        assert!(recv(&sock).ends_with(": after the restart"));
        drop(lingering);
        // syslogd is gone: lines are dropped, nothing panics or blocks.
        drop(sock);
        std::fs::remove_file(&path).unwrap();
        for i in 0..3 {
            tracing::error!(i, "nobody listens");
        }
    });

    let missing = dir.path().join("missing");
    let layer = SyslogLayer::new(&syslog_config(&missing, ""));
    assert!(!layer.connected());
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::warn!("dropped, not fatal");
    });
}

/// The daemon's own lines, through the global subscriber as `failbackd run` installs it. The
/// only test here that installs it (it is global to the binary).
#[test]
fn the_daemon_logs_phase_changes_probe_state_and_backend_calls_to_syslog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let sock = bind(&path);
    let mut port = support::LatePort::new();
    let config = format!(
        "min_hold = \"0s\"\nstable_for = \"300ms\"\nmax_hold = \"30s\"\n\
         [backend]\ntype = \"simulated\"\n\
         [[probe]]\nname = \"gw\"\ntype = \"tcp\"\ntarget = \"{}\"\ninterval = \"100ms\"\nrise = 2\nfall = 1\n\
         [syslog]\nenabled = true\nsocket = {path:?}\ntag = \"failbackd\"\n",
        port.addr
    );
    let cfg = Config::parse("t.toml", &config).unwrap_or_else(|e| panic!("{e}"));
    std::env::remove_var("RUST_LOG");
    // syslogd reads all the time (a Linux datagram queue holds only 10 lines).
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            while !stop.load(Ordering::SeqCst) {
                if let Ok(n) = sock.recv(&mut buf) {
                    lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
            while let Ok(n) = sock.recv(&mut buf) {
                lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            lines
        })
    };
    let telemetry = logging::init_with(LogFormat::Json, "info", Some(&cfg.telemetry));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let d = support::TestDaemon::start(&config).await;
        d.wait_phase("probing", Duration::from_secs(20)).await;
        port.listen();
        d.wait_phase("released", Duration::from_secs(20)).await;
        d.stop().await;
    });
    // Waits until the writer thread has sent every queued line.
    telemetry.shutdown();
    stop.store(true, Ordering::SeqCst);
    let lines = reader.join().unwrap();
    let msgs: Vec<&str> = lines.iter().filter_map(|l| l.split_once("]: ").map(|(_, m)| m)).collect();
    assert_eq!(msgs.len(), lines.len(), "every line has tag[pid]: {lines:#?}");
    let has = |prefix: &str| msgs.iter().any(|m| m.starts_with(prefix));
    for expected in [
        "failback armed: holding the node demoted failback=1 trigger=boot",
        "backend call backend=simulated operation=demote",
        "backend call done backend=simulated operation=demote",
        "phase changed phase=holding from=idle",
        "phase changed phase=probing from=holding",
        "probe up probe=gw type=tcp",
        "phase changed phase=stabilizing from=probing",
        "failback ended failback=1 outcome=released",
        "phase changed phase=releasing from=stabilizing",
        "backend call done backend=simulated operation=promote",
        "phase changed phase=released from=releasing",
        "failbackd stopping; the state file keeps the phase for the next start phase=released",
    ] {
        assert!(has(expected), "no line starting {expected:?} in {msgs:#?}");
    }
    // Facility daemon (3), severity info (6).
    assert!(lines.iter().any(|l| l.starts_with("<30>")), "info lines are <30>");
    // Probe attempts are not logged one by one at info: only state changes.
    assert!(!has("probe attempt"));
}

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// A real rsyslogd in the foreground (`-n`), with its own config, pid file and sockets in a temp
/// dir; killed by its pid when dropped.
struct Rsyslogd {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslogd {
    /// Two inputs: `local.sock` as imuxsock reads the system socket by default (its special
    /// parser for the syslog(3) local form), and `rfc5424.sock` configured for RFC 5424 with
    /// `useSpecialParser="off"` (the regular parser chain). Every message goes to `out.log`,
    /// one line of `program|procid|facility|severity|msg`.
    fn start() -> Rsyslogd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             template(name=\"fields\" type=\"string\" \
               string=\"%programname%|%procid%|%syslogfacility-text%|%syslogseverity-text%|%msg%\\n\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/local.sock\")\n\
             input(type=\"imuxsock\" Socket=\"{d}/rfc5424.sock\" useSpecialParser=\"off\")\n\
             action(type=\"omfile\" file=\"{d}/out.log\" template=\"fields\")\n"
        );
        std::fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.path().join("rsyslogd.stderr")).unwrap();
        let child = std::process::Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(dir.path().join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Rsyslogd { child, dir };
        // Ready when it wrote its pid file and bound both sockets (bounded wait).
        for _ in 0..500 {
            let pid = std::fs::read_to_string(r.path("rsyslogd.pid")).ok().filter(|p| !p.trim().is_empty());
            let bound = r.path("local.sock").exists() && r.path("rfc5424.sock").exists();
            if let (Some(pid), true) = (pid, bound) {
                assert_eq!(pid.trim(), r.child.id().to_string(), "-n: no fork, the pid is the child's");
                return r;
            }
            if let Some(status) = r.child.try_wait().unwrap() {
                panic!(
                    "rsyslogd exited ({status}): {}",
                    std::fs::read_to_string(r.path("rsyslogd.stderr")).unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rsyslogd did not start: {}", std::fs::read_to_string(r.path("rsyslogd.stderr")).unwrap());
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Waits (bounded) for `n` records in out.log: (program, procid, facility, severity, msg).
    fn records(&self, n: usize) -> Vec<(String, String, String, String, String)> {
        let mut text = String::new();
        for _ in 0..500 {
            text = std::fs::read_to_string(self.path("out.log")).unwrap_or_default();
            if text.lines().count() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let records: Vec<_> = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(5, '|').collect();
                assert_eq!(f.len(), 5, "{l}");
                // rsyslog keeps the space after the tag's colon in the 3164 msg property.
                (f[0].into(), f[1].into(), f[2].into(), f[3].into(), f[4].trim_start().into())
            })
            .collect();
        assert_eq!(records.len(), n, "rsyslogd wrote:\n{text}");
        records
    }
}

/// Sends `lines` (level, message) through failbackd's syslog layer configured with `extra`.
fn send_through_the_layer(socket: &Path, extra: &str, lines: &[(tracing::Level, &str)]) {
    let layer = SyslogLayer::new(&syslog_config(socket, extra));
    assert!(layer.connected(), "cannot connect to {}", socket.display());
    let flush = layer.flusher();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for (level, msg) in lines {
            match *level {
                tracing::Level::ERROR => tracing::error!(probe = "gw", "{msg}"),
                tracing::Level::WARN => tracing::warn!(probe = "gw", "{msg}"),
                _ => tracing::info!(probe = "gw", "{msg}"),
            }
        }
    });
    assert!(flush.flush(Duration::from_secs(5)), "the syslog writer did not flush");
}

#[test]
fn a_real_rsyslogd_files_both_formats_under_program_pid_facility_and_severity() {
    if !Path::new(RSYSLOGD).exists() {
        support::skip_or_fail(
            "a_real_rsyslogd_files_both_formats_under_program_pid_facility_and_severity",
            "rsyslogd (Debian package rsyslog) is not installed",
        );
        return;
    }
    let rsyslogd = Rsyslogd::start();
    use tracing::Level;
    send_through_the_layer(
        &rsyslogd.path("local.sock"),
        "facility = \"local3\"\ntag = \"failbackd-test\"\n",
        &[(Level::WARN, "rfc3164 probe down"), (Level::ERROR, "rfc3164 backend call failed")],
    );
    send_through_the_layer(
        &rsyslogd.path("rfc5424.sock"),
        "facility = \"local5\"\ntag = \"failbackd-test\"\nformat = \"rfc5424\"\n",
        &[(Level::INFO, "rfc5424 phase changed"), (Level::WARN, "rfc5424 probe down")],
    );
    let mut records = rsyslogd.records(4);
    // The two inputs run on their own threads: order by message.
    records.sort_by(|a, b| a.4.cmp(&b.4));
    let pid = std::process::id().to_string();
    let expected = [
        ("local3", "err", "rfc3164 backend call failed probe=gw"),
        ("local3", "warning", "rfc3164 probe down probe=gw"),
        ("local5", "info", "rfc5424 phase changed probe=gw"),
        ("local5", "warning", "rfc5424 probe down probe=gw"),
    ];
    for (got, (facility, severity, msg)) in records.iter().zip(expected) {
        assert_eq!(
            got,
            &("failbackd-test".into(), pid.clone(), facility.into(), severity.into(), msg.into()),
            "{records:#?}"
        );
    }
}
