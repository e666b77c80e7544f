//! Running external programs safely: argv only (never a shell), a clean environment, a timeout
//! that kills the child, and bounded output. Every command backend and probe goes through here.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// At most this much of a command's stdout/stderr is kept; the rest is read and dropped so the
/// child never blocks on a full pipe.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// The PATH given to children: the environment is cleared so nothing from the caller leaks in.
/// /usr/local comes first because that is where OPNsense and FreeBSD ports install tools.
pub const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-line description for errors: exit status and the first line of stderr.
    pub fn describe(&self) -> String {
        let status =
            self.code.map_or_else(|| "killed by a signal".to_string(), |c| format!("exit status {c}"));
        match self.stderr.lines().find(|l| !l.trim().is_empty()) {
            Some(line) => format!("{status}: {}", truncate(line.trim(), 200)),
            None => status,
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// After the child exits, how long its output pipes may stay open (a background grandchild
/// holding them) before we stop reading.
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// Runs `argv` with a cleared environment (PATH = [`CLEAN_PATH`] plus `PATH` entries a test
/// prepends through `FAILBACKD_EXTRA_PATH`) and kills it after `timeout`. The child leads its own
/// process group, and every way of not waiting for it to finish kills the whole group: this
/// function's own timeout, and dropping the returned future (the probe runner's timeout fires
/// first, since it bounds the same attempt; a cancelled backend call; shutdown). So a command's
/// own children (`sh -c 'sleep 60 & wait'`) never outlive it.
pub async fn run(argv: &[String], timeout: Duration) -> Result<Output, String> {
    let (program, args) = argv.split_first().ok_or_else(|| "empty command".to_string())?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", child_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn_retrying_busy(&mut cmd).await.map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdout = tokio::spawn(read_bounded(child.stdout.take()));
    let stderr = tokio::spawn(read_bounded(child.stderr.take()));
    let mut running = Running::new(child, [stdout.abort_handle(), stderr.abort_handle()]);
    let status = match tokio::time::timeout(timeout, running.child.wait()).await {
        Ok(status) => {
            // Reaped: from here on the group id may be reused, so the guard must not fire.
            running.finished();
            status.map_err(|e| format!("waiting for {program}: {e}"))?
        }
        // Dropping `running` kills the group (the leader is not reaped yet, so its pid, which
        // is the group id, cannot have been reused).
        Err(_) => return Err(format!("{program} timed out after {}", humantime::format_duration(timeout))),
    };
    let out = collect(stdout).await;
    let err = collect(stderr).await;
    Ok(Output { code: status.code(), stdout: out, stderr: err })
}

/// `ETXTBSY` (26 on Linux and FreeBSD, errno.h): the program file is open for writing somewhere.
/// Transient: an upgrade replacing the program (pkg writes then renames), or any process that
/// forked while holding a write descriptor to it and has not exec'd yet (the close-on-exec
/// descriptor lives until then; seen in the test suite, where fakes are written and run
/// concurrently). Retried a few times over about 300 ms instead of failing the call.
const ETXTBSY: i32 = 26;
const BUSY_RETRIES: u32 = 5;

/// The pause before retry `attempt` (1-based) of a spawn that found its program busy.
fn busy_delay(attempt: u32) -> Duration {
    Duration::from_millis(10u64 << attempt.saturating_sub(1).min(4))
}

async fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<tokio::process::Child> {
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < BUSY_RETRIES => {
                attempt += 1;
                tokio::time::sleep(busy_delay(attempt)).await;
            }
            other => return other,
        }
    }
}

/// A child that has not been waited for: dropping it SIGKILLs its whole process group (it was
/// spawned with `process_group(0)`, so its pid is the group id) and stops the output readers.
/// tokio's `kill_on_drop` alone kills only the leader, and its orphan reaper then reaps it.
struct Running {
    child: tokio::process::Child,
    group: Option<rustix::process::Pid>,
    readers: [tokio::task::AbortHandle; 2],
}

impl Running {
    fn new(child: tokio::process::Child, readers: [tokio::task::AbortHandle; 2]) -> Running {
        let group = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
        Running { child, group, readers }
    }

    /// The leader exited and was reaped: nothing left to kill (a background grandchild that
    /// keeps running after a successful exit is the command's business).
    fn finished(&mut self) {
        self.group = None;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            // ESRCH (the group is gone already) is fine: nothing to kill.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            for reader in &self.readers {
                reader.abort();
            }
        }
    }
}

/// The output a reader task gathered, waiting at most [`PIPE_GRACE`] for the pipe to close.
async fn collect(reader: tokio::task::JoinHandle<String>) -> String {
    let abort = reader.abort_handle();
    match tokio::time::timeout(PIPE_GRACE, reader).await {
        Ok(Ok(text)) => text,
        _ => {
            abort.abort();
            String::new()
        }
    }
}

/// The PATH for children. `FAILBACKD_EXTRA_PATH` (read from failbackd's own environment) is
/// prepended so tests can put fake `configctl`/`sysctl` first without a shell.
pub fn child_path() -> String {
    match std::env::var("FAILBACKD_EXTRA_PATH") {
        Ok(extra) if !extra.is_empty() => format!("{extra}:{CLEAN_PATH}"),
        _ => CLEAN_PATH.to_string(),
    }
}

async fn read_bounded<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> String {
    let Some(mut reader) = reader else { return String::new() };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn captures_exit_code_and_output() {
        let out = run(&argv(&["sh", "-c", "echo hi; echo oops >&2; exit 3"]), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.describe(), "exit status 3: oops");
    }

    #[tokio::test]
    async fn environment_is_clean() {
        // cargo sets CARGO_PKG_NAME (and HOME is set in any login) for the test binary; neither
        // may reach the child. No set_var: this binary runs tests on several threads.
        let parent: Vec<String> = ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR", "HOME"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
            .collect();
        assert!(!parent.is_empty(), "cargo test sets CARGO_PKG_NAME");
        let out = run(&argv(&["env"]), Duration::from_secs(5)).await.unwrap();
        let lines: Vec<&str> = out.stdout.lines().collect();
        for var in &parent {
            assert!(!lines.contains(&var.as_str()), "{var} leaked: {}", out.stdout);
        }
        assert_eq!(lines, vec![format!("PATH={}", child_path())], "{}", out.stdout);
    }

    #[tokio::test]
    async fn kills_on_timeout() {
        let err = run(&argv(&["sleep", "30"]), Duration::from_millis(100)).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    /// `sh -c 'sleep 60 & echo $! > pidfile; wait'`: a leader whose background child would
    /// outlive it unless the whole group is killed.
    fn grandchild_script(pidfile: &std::path::Path) -> Vec<String> {
        argv(&["sh", "-c", &format!("sleep 60 & echo $! > {}; wait", pidfile.display())])
    }

    #[tokio::test]
    async fn a_timeout_kills_the_commands_own_children_too() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let run = tokio::spawn({
            let argv = grandchild_script(&pidfile);
            async move { run(&argv, Duration::from_secs(2)).await }
        });
        let pid = proc_watch::read_pid(&pidfile).await;
        assert!(proc_watch::alive(pid), "the grandchild {pid} should be running");
        let err = run.await.unwrap().unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        proc_watch::assert_gone(pid).await;
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let argv = grandchild_script(&pidfile);
        // An outer timeout shorter than exec's own, as the probe runner's is (it starts first).
        let mut exec =
            Box::pin(tokio::time::timeout(Duration::from_secs(2), run(&argv, Duration::from_secs(600))));
        let pid = tokio::select! {
            pid = proc_watch::read_pid(&pidfile) => pid,
            r = &mut exec => panic!("exec finished before the grandchild started: {r:?}"),
        };
        assert!(proc_watch::alive(pid), "the grandchild {pid} should be running");
        // Awaiting by value drops the timed-out exec future, and with it the child.
        assert!(exec.await.is_err(), "the outer timeout should have fired");
        proc_watch::assert_gone(pid).await;
    }

    #[tokio::test]
    async fn a_background_grandchild_holding_the_pipe_does_not_turn_success_into_a_timeout() {
        let out = run(&argv(&["sh", "-c", "echo done; sleep 2 &"]), Duration::from_secs(5)).await.unwrap();
        assert!(out.success());
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let out = run(&argv(&["head", "-c", "1000000", "/dev/zero"]), Duration::from_secs(5)).await.unwrap();
        assert_eq!(out.stdout.len(), MAX_OUTPUT);
        assert!(out.success());
    }

    // A program open for writing cannot be executed (ETXTBSY): retried with growing pauses
    // (paused time: the pauses pass at once), then reported with the OS's reason.
    #[tokio::test(start_paused = true)]
    async fn a_program_busy_for_writing_is_retried_then_reported() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.sh");
        let mut writer = std::fs::File::create(&path).unwrap();
        writer.write_all(b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let started = tokio::time::Instant::now();
        let err = run(&argv(&[path.to_str().unwrap()]), Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("Text file busy") || err.contains("os error 26"), "{err}");
        let waited: Duration = (1..=BUSY_RETRIES).map(busy_delay).sum();
        assert_eq!(started.elapsed(), waited, "every retry waited its pause");
        drop(writer);
    }

    #[test]
    fn busy_retries_back_off_and_stay_short() {
        let pauses: Vec<u64> = (1..=BUSY_RETRIES).map(|a| busy_delay(a).as_millis() as u64).collect();
        assert_eq!(pauses, vec![10, 20, 40, 80, 160]);
    }

    #[tokio::test]
    async fn missing_program_is_an_error() {
        let err = run(&argv(&["/nonexistent/failbackd-x"]), Duration::from_secs(1)).await.unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
    }
}

/// Test helpers that watch processes through /proc (Linux).
#[cfg(test)]
pub(crate) mod proc_watch {
    use std::path::Path;
    use std::time::Duration;

    /// Polls are bounded by count; each is short, so a broken kill fails in seconds.
    const POLLS: usize = 500;
    const POLL: Duration = Duration::from_millis(10);

    /// Whether `pid` runs: it exists and is not a zombie (a killed process whose parent died is
    /// reparented; until its new parent reaps it, it shows as `Z`).
    pub(crate) fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the command name in parentheses, which may contain spaces.
            Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    /// Waits (bounded) for a pid file written by a test command and returns the pid.
    pub(crate) async fn read_pid(path: &Path) -> i32 {
        for _ in 0..POLLS {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(pid) = text.trim().parse() {
                    return pid;
                }
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("{} never held a pid", path.display());
    }

    /// Fails unless `pid` is gone within the poll bound.
    pub(crate) async fn assert_gone(pid: i32) {
        for _ in 0..POLLS {
            if !alive(pid) {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("process {pid} outlived the kill");
    }
}
