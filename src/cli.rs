//! Command-line interface: parses arguments and runs one subcommand. Exit codes: 0 success,
//! 1 runtime failure (daemon unreachable, request refused), 2 bad input (arguments, config);
//! `status` uses 0 released/idle, 1 holding, 2 failed.

use crate::config::{Config, HookFallback, DEFAULT_CONTROL_SOCKET};
use crate::control::{self, Request};
use crate::daemon::boot::StartMode;
use crate::telemetry::logging::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Where `run` and the client commands look for the config unless told otherwise.
pub const DEFAULT_CONFIG: &str = "/usr/local/etc/failbackd.toml";
/// The whole budget of `failbackd hook`: configd runs CARP hooks serially with no timeout.
const HOOK_BUDGET: Duration = Duration::from_millis(900);

#[derive(Parser, Debug)]
#[command(
    name = "failbackd",
    version,
    about = "Holds a recovering CARP/VRRP master demoted until it is ready"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Run {
        #[arg(short, long, env = "FAILBACKD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// What this start is: `auto` decides from the state file's boot identity and the
        /// system's uptime; `boot` applies hold_on_boot; `restart` never does.
        #[arg(long, value_enum, default_value_t = StartMode::Auto)]
        start: StartMode,
    },
    /// Report a CARP transition (what rc.syshook.d/carp hooks receive as $1 $2).
    Hook {
        /// `vhid@interface`, e.g. 1@vtnet0
        target: String,
        /// MASTER, BACKUP or INIT
        state: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show what the daemon is doing (exit 0 released/idle, 1 holding, 2 failed).
    Status {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Demote the node now and run a failback (probes must pass before it is released).
    Hold {
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Release the node now; refused while required probes are down unless --force.
    Release {
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Demote for a planned shutdown and wait until the peer has taken over.
    Drain {
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Exit 0 only when the node should not be held (OPNsense's rc.carp_service_status.d check).
    Ready {
        /// Say why on stdout.
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Validate a config file: every error with file:line:column, or a summary.
    CheckConfig {
        #[arg(env = "FAILBACKD_CONFIG", default_value = DEFAULT_CONFIG)]
        file: PathBuf,
    },
    /// A simulated HA pair with real probes on loopback and real /metrics; no root, no config.
    Demo(crate::demo::DemoArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Config file (for the control socket path and the hook's fallback backend).
    #[arg(short, long, env = "FAILBACKD_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Control socket; overrides the config's `control_socket`.
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

impl ClientArgs {
    /// The config, if it can be read; client commands still work with the default socket.
    fn config(&self) -> Option<Config> {
        match Config::load(&self.config) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                // A missing default config is normal for client commands; a broken one is not.
                if self.config.exists() {
                    eprintln!(
                        "failbackd: warning: ignoring {}: {} error(s) (see check-config)",
                        self.config.display(),
                        e.0.len()
                    );
                }
                None
            }
        }
    }

    fn socket(&self, cfg: Option<&Config>) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| cfg.map(|c| c.control_socket.clone()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET))
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, log_format, start } => run(&config, log_format, start),
        Command::CheckConfig { file } => check_config(&file),
        Command::Demo(args) => {
            // The demo narrates on stdout; only warnings and errors go to the log. Traces follow
            // the same OTEL_* environment as `run` (the demo has no config file, so the
            // environment alone turns export on).
            let telemetry = logging::init_with(LogFormat::Text, "warn", Some(&Default::default()));
            if let Some(url) = &telemetry.traces_url {
                out(&format!("failbackd demo: exporting traces to {url} (from the OTEL_* environment)\n"));
            }
            let code = runtime(true).map_or_else(|c| c, |rt| rt.block_on(crate::demo::run(args)));
            // After the runtime is gone (the exporter's HTTP client is a blocking one).
            telemetry.shutdown();
            code
        }
        Command::Hook { target, state, client } => {
            let (vhid, iface, state) = match control::parse_hook_args(&target, &state) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!(
                        "failbackd hook: {e}\nusage: failbackd hook <vhid@interface> <MASTER|BACKUP|INIT>"
                    );
                    return ExitCode::from(2);
                }
            };
            runtime(false)
                .map_or_else(|c| c, |rt| rt.block_on(hook(client, Request::Hook { vhid, iface, state })))
        }
        Command::Status { json, client } => {
            runtime(false).map_or_else(|c| c, |rt| rt.block_on(status(client, json)))
        }
        Command::Hold { reason, client } => simple(client, Request::Hold { reason }, Duration::from_secs(5)),
        Command::Release { force, client } => {
            simple(client, Request::Release { force }, Duration::from_secs(5))
        }
        Command::Drain { timeout, client } => {
            let req = Request::Drain { timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) };
            simple(client, req, timeout + Duration::from_secs(5))
        }
        Command::Ready { verbose, client } => runtime(false).map_or_else(
            |c| c,
            |rt| rt.block_on(crate::ready::run(&client.config, client.socket.as_deref(), verbose)),
        ),
    }
}

/// `failbackd run`: the config first (it says where logs and traces go), then logging and the
/// OTLP exporter, which must exist before the runtime (its HTTP client is a blocking one), then
/// the daemon; buffered spans are flushed after the runtime has stopped.
fn run(config: &Path, log_format: LogFormat, start: StartMode) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            logging::init(log_format);
            return crate::daemon::run::invalid_config(&errors);
        }
    };
    let telemetry = logging::init_with(log_format, "info", Some(&cfg.telemetry));
    let code =
        runtime(true).map_or_else(|c| c, |rt| rt.block_on(crate::daemon::run::main_with(cfg, config, start)));
    // The runtime is gone: spans ended at shutdown are in the batch queue; export them.
    telemetry.shutdown();
    code
}

/// Prints to stdout. A reader that went away (`| head -1`, `| grep -q`) is not an error: the
/// rest is not wanted, and the command's exit code still says what happened (`print!` would
/// panic on EPIPE, since Rust ignores SIGPIPE).
pub fn out(text: &str) {
    out_to(&mut std::io::stdout().lock(), text);
}

fn out_to(w: &mut impl std::io::Write, text: &str) {
    use std::io::ErrorKind;
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("failbackd: cannot write to stdout: {e}"),
    }
}

fn runtime(multi: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    rt.map_err(|e| {
        eprintln!("failbackd: cannot start the runtime: {e}");
        ExitCode::from(1)
    })
}

fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(cfg) => {
            out(&format!("{}: ok\n\n{}", file.display(), cfg.summary()));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s)", errors.0.len());
            ExitCode::from(2)
        }
    }
}

fn simple(client: ClientArgs, req: Request, timeout: Duration) -> ExitCode {
    let rt = match runtime(false) {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    rt.block_on(async {
        let cfg = client.config();
        match control::request(&client.socket(cfg.as_ref()), &req, timeout).await {
            Ok(reply) if reply.ok => {
                out(&format!("{}\n", reply.message.unwrap_or_default()));
                ExitCode::SUCCESS
            }
            Ok(reply) => {
                eprintln!("failbackd: {}", reply.error.unwrap_or_default());
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("failbackd: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn status(client: ClientArgs, json: bool) -> ExitCode {
    let cfg = client.config();
    match control::request(&client.socket(cfg.as_ref()), &Request::Status {}, Duration::from_secs(5)).await {
        Ok(crate::control::Reply { status: Some(st), .. }) => {
            if json {
                out(&format!("{}\n", serde_json::to_string_pretty(&st).unwrap_or_default()));
            } else {
                out(&st.render(crate::telemetry::moments::unix_at(crate::telemetry::moments::now())));
            }
            ExitCode::from(u8::try_from(st.exit_code()).unwrap_or(1))
        }
        Ok(reply) => {
            eprintln!("failbackd: {}", reply.error.unwrap_or_else(|| "no status in the reply".into()));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("failbackd: {e}");
            ExitCode::from(3)
        }
    }
}

/// The CARP hook: tell the daemon, within [`HOOK_BUDGET`]. Only if the daemon is really gone
/// (no socket, connection refused) and the VHID is watched, fail safe (`hook_fallback =
/// "demote"`): demote through the backend directly, so the node never preempts unchecked; the
/// daemon finds the hold in place when it starts and resumes it. A daemon that is alive but slow
/// (queue full, no answer in time) has the event, or the next CARP poll corrects it: a second
/// writer racing the daemon's own calls would do more harm than good.
async fn hook(client: ClientArgs, req: Request) -> ExitCode {
    let started = tokio::time::Instant::now();
    let cfg = client.config();
    let socket = client.socket(cfg.as_ref());
    let err = match control::request_detailed(&socket, &req, HOOK_BUDGET / 2).await {
        Ok(reply) if reply.ok => return ExitCode::SUCCESS,
        Ok(reply) => {
            eprintln!("failbackd hook: {}", reply.error.unwrap_or_default());
            return ExitCode::from(1);
        }
        Err(e) => e,
    };
    eprintln!("failbackd hook: {err}");
    if !err.unreachable {
        eprintln!("failbackd hook: the daemon is alive but did not answer in time; no fail-safe demote");
        return ExitCode::from(1);
    }
    let watched = match (&cfg, &req) {
        (Some(c), Request::Hook { vhid, iface, .. }) => c.watches(*vhid, iface),
        _ => false,
    };
    let Some(cfg) = cfg.filter(|c| c.hook_fallback == HookFallback::Demote && watched) else {
        return ExitCode::from(1);
    };
    let left = HOOK_BUDGET.saturating_sub(started.elapsed());
    let result = match crate::carp::build(&cfg.backend, &cfg.state_file) {
        Ok(backend) => match tokio::time::timeout(left, backend.demote()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => eprintln!(
            "failbackd hook: demoted the node through the {} backend (fail-safe)",
            cfg.backend.kind()
        ),
        Err(e) => eprintln!("failbackd hook: fail-safe demote failed: {e}"),
    }
    ExitCode::from(1)
}
