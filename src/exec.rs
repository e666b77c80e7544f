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
/// process group, and the timeout kills the whole group, so a command's own children do not
/// outlive it.
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
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let group = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
    let stdout = tokio::spawn(read_bounded(child.stdout.take()));
    let stderr = tokio::spawn(read_bounded(child.stderr.take()));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(|e| format!("waiting for {program}: {e}"))?,
        Err(_) => {
            if let Some(group) = group {
                // The group may be gone already; nothing to do then.
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            stdout.abort();
            stderr.abort();
            return Err(format!("{program} timed out after {}", humantime::format_duration(timeout)));
        }
    };
    let out = collect(stdout).await;
    let err = collect(stderr).await;
    Ok(Output { code: status.code(), stdout: out, stderr: err })
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
        std::env::set_var("FAILBACKD_TEST_SECRET", "s3cret");
        let out = run(&argv(&["env"]), Duration::from_secs(5)).await.unwrap();
        assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
        assert!(out.stdout.contains("PATH="));
    }

    #[tokio::test]
    async fn kills_on_timeout() {
        let err = run(&argv(&["sleep", "30"]), Duration::from_millis(100)).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_commands_own_children_too() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        // The grandchild would create the marker after 1 s if it survived the kill.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let err = run(&argv(&["sh", "-c", &script]), Duration::from_millis(200)).await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the grandchild outlived the timeout");
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

    #[tokio::test]
    async fn missing_program_is_an_error() {
        let err = run(&argv(&["/nonexistent/failbackd-x"]), Duration::from_secs(1)).await.unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
    }
}
