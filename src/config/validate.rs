//! Raw config -> typed [`Config`]: defaults, type-specific keys, ranges. Collects every
//! problem it can find instead of stopping at the first.

use super::raw::{Dur, RawBackend, RawConfig, RawProbe};
use super::watch::WatchPattern;
use super::*;
use std::collections::HashSet;
use std::ops::Range;
use toml::Spanned;

const DEFAULT_MIN_HOLD: Duration = Duration::from_secs(10);
const DEFAULT_STABLE_FOR: Duration = Duration::from_secs(10);
const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(15 * 60);
const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_RISE: u32 = 3;
const DEFAULT_FALL: u32 = 2;
const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_PROBE_NAME: usize = 64;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Option<Range<usize>>, msg: impl Into<String>, hint: Option<&str>) {
        let mut e = ConfigError::at(self.file, self.text, span, msg);
        if let Some(h) = hint {
            e = e.hint(h);
        }
        self.errors.push(e);
    }
}

pub(super) fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        let hint = if msg.contains("unknown field") {
            Some("examples/failbackd.toml lists every key")
        } else {
            None
        };
        let mut err = ConfigError::at(file, text, e.span(), msg);
        if let Some(h) = hint {
            err = err.hint(h);
        }
        ConfigErrors(vec![err])
    })?;
    let mut cx = Ctx { file, text, errors: Vec::new() };
    let config = build(&mut cx, raw);
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(cx.errors))
    }
}

fn dur(d: &Option<Spanned<Dur>>, default: Duration) -> Duration {
    d.as_ref().map_or(default, |d| d.get_ref().0)
}

fn build(cx: &mut Ctx<'_>, raw: RawConfig) -> Config {
    let watch = match &raw.watch {
        None => vec![WatchPattern { vhid: None, iface: None }],
        Some(list) if list.get_ref().is_empty() => {
            cx.err(Some(list.span()), "`watch` is empty", Some("use [\"*@*\"] to watch every CARP VHID"));
            Vec::new()
        }
        Some(list) => {
            let mut out = Vec::new();
            for p in list.get_ref() {
                match WatchPattern::parse(p.get_ref()) {
                    Ok(w) => out.push(w),
                    Err(msg) => cx.err(Some(p.span()), msg, Some("e.g. \"1@vtnet0\", \"*@igb1\", \"*@*\"")),
                }
            }
            out
        }
    };

    let min_hold = dur(&raw.min_hold, DEFAULT_MIN_HOLD);
    let max_hold = dur(&raw.max_hold, DEFAULT_MAX_HOLD);
    let stable_for = dur(&raw.stable_for, DEFAULT_STABLE_FOR);
    let max_span = raw.max_hold.as_ref().map(|s| s.span());
    if max_hold.is_zero() {
        cx.err(max_span.clone(), "`max_hold` must be longer than 0s", Some("the default is 15m"));
    } else if min_hold >= max_hold {
        let span = raw.min_hold.as_ref().map(|s| s.span()).or(max_span.clone());
        cx.err(span, "`min_hold` must be shorter than `max_hold`", None);
    } else if stable_for >= max_hold {
        let span = raw.stable_for.as_ref().map(|s| s.span()).or(max_span);
        cx.err(span, "`stable_for` must be shorter than `max_hold`", None);
    }

    let metrics_listen = match &raw.metrics_listen {
        None => SocketAddr::from(([127, 0, 0, 1], 9818)),
        Some(s) => s.get_ref().parse().unwrap_or_else(|_| {
            cx.err(
                Some(s.span()),
                format!("{:?} is not an ip:port address", s.get_ref()),
                Some(DEFAULT_METRICS_LISTEN),
            );
            SocketAddr::from(([127, 0, 0, 1], 9818))
        }),
    };

    let hook_fallback = match raw.hook_fallback.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("demote", _)) => HookFallback::Demote,
        Some(("nothing", _)) => HookFallback::Nothing,
        Some((other, span)) => {
            cx.err(Some(span), format!("unknown hook_fallback {other:?}"), Some("\"demote\" or \"nothing\""));
            HookFallback::Demote
        }
    };

    let backend = match &raw.backend {
        Some(b) => backend(cx, b),
        None => {
            cx.err(
                None,
                "no [backend] table",
                Some("add [backend] with type = \"command\" (or \"simulated\" to try it out)"),
            );
            BackendConfig::Simulated
        }
    };

    let mut names = HashSet::new();
    let probes = raw.probes.iter().filter_map(|p| probe(cx, p, &mut names)).collect();

    Config {
        watch,
        hold_on_boot: raw.hold_on_boot.unwrap_or(true),
        min_hold,
        max_hold,
        max_hold_policy: raw.max_hold_policy.unwrap_or_default(),
        stable_for,
        control_socket: raw
            .control_socket
            .map_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET), PathBuf::from),
        state_file: raw.state_file.map_or_else(|| PathBuf::from(DEFAULT_STATE_FILE), PathBuf::from),
        metrics_listen,
        hook_fallback,
        backend,
        probes,
        telemetry: super::telemetry::build(cx.file, cx.text, &mut cx.errors, &raw.tracing, &raw.syslog),
    }
}

/// Reports keys set in a table where they do not apply.
fn reject_keys(cx: &mut Ctx<'_>, what: &str, keys: &[(&str, Option<Range<usize>>)]) {
    for (key, span) in keys {
        if let Some(span) = span {
            cx.err(Some(span.clone()), format!("`{key}` does not apply to {what}"), Some("remove it"));
        }
    }
}

fn argv(
    cx: &mut Ctx<'_>,
    key: &str,
    v: &Option<Spanned<Vec<String>>>,
    table: Range<usize>,
) -> Option<Vec<String>> {
    match v {
        None => {
            cx.err(
                Some(table),
                format!("missing `{key}`"),
                Some("an argv list, e.g. [\"/usr/local/bin/x\", \"arg\"]"),
            );
            None
        }
        Some(a) if a.get_ref().is_empty() || a.get_ref()[0].is_empty() => {
            cx.err(Some(a.span()), format!("`{key}` needs at least a program"), None);
            None
        }
        Some(a) => Some(a.get_ref().clone()),
    }
}

/// Every optional `[backend]` key with its span, for `reject_keys`.
fn backend_keys(b: &RawBackend) -> Vec<(&'static str, Option<Range<usize>>)> {
    fn sp<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
        v.as_ref().map(|v| v.span())
    }
    vec![
        ("timeout", sp(&b.timeout)),
        ("demote", sp(&b.demote)),
        ("promote", sp(&b.promote)),
        ("state", sp(&b.state)),
        ("mode", sp(&b.mode)),
        ("configctl", sp(&b.configctl)),
        ("sysctl", sp(&b.sysctl)),
        ("demotion", sp(&b.demotion)),
        ("track_file", sp(&b.track_file)),
        ("held_value", sp(&b.held_value)),
    ]
}

/// Rejects every backend key not in `allowed`.
fn backend_only(cx: &mut Ctx<'_>, b: &RawBackend, what: &str, allowed: &[&str]) {
    let keys: Vec<_> = backend_keys(b).into_iter().filter(|(k, _)| !allowed.contains(k)).collect();
    reject_keys(cx, what, &keys);
}

/// A program path: non-empty; `default` when unset.
fn program(cx: &mut Ctx<'_>, key: &str, v: &Option<Spanned<String>>, default: &str) -> String {
    match v {
        Some(p) if p.get_ref().is_empty() => {
            cx.err(Some(p.span()), format!("`{key}` is empty"), Some(default));
            default.to_string()
        }
        Some(p) => p.get_ref().clone(),
        None => default.to_string(),
    }
}

fn backend(cx: &mut Ctx<'_>, b: &Spanned<RawBackend>) -> BackendConfig {
    let span = b.span();
    let b = b.get_ref();
    let timeout = dur(&b.timeout, DEFAULT_BACKEND_TIMEOUT);
    if timeout.is_zero() {
        cx.err(b.timeout.as_ref().map(|t| t.span()), "backend `timeout` must be longer than 0s", None);
    }
    match b.kind.get_ref().as_str() {
        "simulated" => {
            backend_only(cx, b, "the simulated backend", &["timeout"]);
            BackendConfig::Simulated
        }
        "command" => {
            backend_only(cx, b, "the command backend", &["timeout", "demote", "promote", "state"]);
            let demote = argv(cx, "demote", &b.demote, span.clone());
            let promote = argv(cx, "promote", &b.promote, span);
            let state = b.state.as_ref().map(|v| v.get_ref().clone()).filter(|v| !v.is_empty());
            BackendConfig::Command {
                demote: demote.unwrap_or_default(),
                promote: promote.unwrap_or_default(),
                state,
                timeout,
            }
        }
        "opnsense" => {
            backend_only(cx, b, "the opnsense backend", &["timeout", "mode", "configctl"]);
            let mode = match b.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
                None | Some(("service_status", _)) => OpnsenseMode::ServiceStatus,
                Some(("maintenance", _)) => OpnsenseMode::Maintenance,
                Some((other, span)) => {
                    cx.err(
                        Some(span),
                        format!("unknown opnsense mode {other:?}"),
                        Some(
                            "\"service_status\" (recommended) or \"maintenance\" (the forum script's toggle)",
                        ),
                    );
                    OpnsenseMode::ServiceStatus
                }
            };
            let configctl = program(cx, "configctl", &b.configctl, crate::carp::opnsense::DEFAULT_CONFIGCTL);
            BackendConfig::Opnsense { mode, configctl, timeout }
        }
        "freebsd" => {
            backend_only(cx, b, "the freebsd backend", &["timeout", "sysctl", "demotion"]);
            let sysctl = program(cx, "sysctl", &b.sysctl, crate::carp::freebsd::DEFAULT_SYSCTL);
            let demotion =
                b.demotion.as_ref().map_or(crate::carp::freebsd::DEFAULT_DEMOTION, |d| *d.get_ref());
            if let Err(msg) = crate::carp::freebsd::check_demotion(demotion) {
                cx.err(
                    b.demotion.as_ref().map(|d| d.span()),
                    msg,
                    Some("the default 524288 (2^19) is distinct from OPNsense's 2^20 and the kernel's 240s"),
                );
            }
            BackendConfig::Freebsd { sysctl, demotion, timeout }
        }
        "keepalived" => {
            backend_only(cx, b, "the keepalived backend", &["track_file", "held_value"]);
            let track_file = match &b.track_file {
                None => {
                    cx.err(
                        Some(span),
                        "missing `track_file`",
                        Some("track_file = \"/run/failbackd/hold\" (referenced by keepalived.conf's track_file block)"),
                    );
                    PathBuf::new()
                }
                Some(f) if !Path::new(f.get_ref()).is_absolute() => {
                    cx.err(Some(f.span()), "`track_file` must be an absolute path", None);
                    PathBuf::new()
                }
                Some(f) => PathBuf::from(f.get_ref()),
            };
            let held_value =
                b.held_value.as_ref().map_or(crate::carp::keepalived::DEFAULT_HELD_VALUE, |v| *v.get_ref());
            if !(-253..=-1).contains(&held_value) {
                cx.err(
                    b.held_value.as_ref().map(|v| v.span()),
                    format!("`held_value` {held_value} is not between -253 and -1"),
                    Some("keepalived puts an instance in FAULT below -253 (with weight 1); 0 means released"),
                );
            }
            BackendConfig::Keepalived { track_file, held_value }
        }
        other => {
            cx.err(
                Some(b.kind.span()),
                format!("unknown backend type {other:?}"),
                Some("one of: opnsense, freebsd, keepalived, command, simulated"),
            );
            BackendConfig::Simulated
        }
    }
}

fn probe(cx: &mut Ctx<'_>, p: &Spanned<RawProbe>, names: &mut HashSet<String>) -> Option<ProbeConfig> {
    let table = p.span();
    let p = p.get_ref();
    let name = p.name.get_ref();
    let name_ok = !name.is_empty()
        && name.len() <= MAX_PROBE_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if !name_ok {
        cx.err(
            Some(p.name.span()),
            format!("probe name {name:?} is not valid"),
            Some("1-64 of letters, digits, '_', '.', ':', '-' (it becomes a metric label)"),
        );
    } else if !names.insert(name.clone()) {
        cx.err(
            Some(p.name.span()),
            format!("probe name {name:?} is used twice"),
            Some("names must be unique"),
        );
    }

    let interval = dur(&p.interval, DEFAULT_PROBE_INTERVAL);
    let timeout = dur(&p.timeout, interval);
    if interval.is_zero() {
        cx.err(p.interval.as_ref().map(|s| s.span()), "probe `interval` must be longer than 0s", None);
    }
    if timeout.is_zero() || timeout > interval {
        cx.err(
            p.timeout.as_ref().map(|s| s.span()).or(Some(table.clone())),
            format!(
                "probe `timeout` must be between 0s and the interval ({})",
                humantime::format_duration(interval)
            ),
            Some("an attempt must finish before the next one is due"),
        );
    }
    let rise = p.rise.as_ref().map_or(DEFAULT_RISE, |r| *r.get_ref());
    let fall = p.fall.as_ref().map_or(DEFAULT_FALL, |f| *f.get_ref());
    for (key, v, span) in
        [("rise", rise, p.rise.as_ref().map(|s| s.span())), ("fall", fall, p.fall.as_ref().map(|s| s.span()))]
    {
        if v == 0 {
            cx.err(span, format!("probe `{key}` must be at least 1"), None);
        }
    }

    let kind = probe_kind(cx, p, table)?;
    Some(ProbeConfig {
        name: name.clone(),
        kind,
        interval,
        timeout,
        rise,
        fall,
        required: p.required.unwrap_or(true),
    })
}

fn probe_kind(cx: &mut Ctx<'_>, p: &RawProbe, table: Range<usize>) -> Option<ProbeKind> {
    let target_span = p.target.as_ref().map(|t| t.span());
    let command_span = p.command.as_ref().map(|c| c.span());
    let status_span = p.expect_status.as_ref().map(|s| s.span());
    let conns_span = p.connections.as_ref().map(|s| s.span());
    let vici_span = p.vici_socket.as_ref().map(|s| s.span());
    let ipsec_keys = [("connections", conns_span.clone()), ("vici_socket", vici_span.clone())];
    if p.kind.get_ref() != "ipsec" {
        reject_keys(cx, &format!("{} probes", p.kind.get_ref()), &ipsec_keys);
    }
    if p.kind.get_ref() != "opnsense_gateway" {
        reject_gateway_keys(cx, p);
    }
    let target = |cx: &mut Ctx<'_>, example: &str| match &p.target {
        Some(t) => Some((t.get_ref().clone(), t.span())),
        None => {
            cx.err(Some(table.clone()), "missing `target`", Some(example));
            None
        }
    };
    match p.kind.get_ref().as_str() {
        "icmp" => {
            reject_keys(cx, "an icmp probe", &[("command", command_span), ("expect_status", status_span)]);
            let (t, span) = target(cx, "target = \"198.51.100.1\"")?;
            match t.parse() {
                Ok(ip) => Some(ProbeKind::Icmp { target: ip }),
                Err(_) => {
                    cx.err(
                        Some(span),
                        format!("{t:?} is not an IP address"),
                        Some("icmp targets are addresses, not names (no DNS at boot)"),
                    );
                    None
                }
            }
        }
        "tcp" => {
            reject_keys(cx, "a tcp probe", &[("command", command_span), ("expect_status", status_span)]);
            let (t, span) = target(cx, "target = \"198.51.100.1:443\"")?;
            match t.parse() {
                Ok(addr) => Some(ProbeKind::Tcp { target: addr }),
                Err(_) => {
                    cx.err(
                        Some(span),
                        format!("{t:?} is not an ip:port address"),
                        Some("e.g. \"198.51.100.1:443\" or \"[2001:db8::1]:443\""),
                    );
                    None
                }
            }
        }
        "http" => {
            reject_keys(cx, "an http probe", &[("command", command_span)]);
            let (t, span) = target(cx, "target = \"http://198.51.100.1/health\"")?;
            if crate::probe::http::parse_url(&t).is_err() {
                cx.err(
                    Some(span),
                    format!("{t:?} is not an http://host:port/path URL"),
                    Some("plain http only; https is not supported"),
                );
                return None;
            }
            let expect_status = p.expect_status.as_ref().map_or(200, |s| *s.get_ref());
            if !(100..=599).contains(&expect_status) {
                cx.err(status_span, format!("expect_status {expect_status} is not an HTTP status"), None);
            }
            Some(ProbeKind::Http { url: t, expect_status })
        }
        "command" => {
            reject_keys(cx, "a command probe", &[("target", target_span), ("expect_status", status_span)]);
            argv(cx, "command", &p.command, table).map(|argv| ProbeKind::Command { argv })
        }
        "ipsec" => {
            reject_keys(
                cx,
                "an ipsec probe",
                &[("target", target_span), ("command", command_span), ("expect_status", status_span)],
            );
            let vici_socket = match &p.vici_socket {
                Some(s) if !Path::new(s.get_ref()).is_absolute() => {
                    cx.err(
                        Some(s.span()),
                        "`vici_socket` must be an absolute path",
                        Some(crate::probe::ipsec::DEFAULT_VICI_SOCKET),
                    );
                    return None;
                }
                Some(s) => PathBuf::from(s.get_ref()),
                None => PathBuf::from(crate::probe::ipsec::DEFAULT_VICI_SOCKET),
            };
            let connections = p.connections.as_ref().map(|c| c.get_ref().clone()).unwrap_or_default();
            let mut seen = HashSet::new();
            for c in &connections {
                if c.is_empty() || !seen.insert(c.as_str()) {
                    cx.err(
                        conns_span.clone(),
                        format!("connection name {c:?} is empty or listed twice"),
                        None,
                    );
                }
            }
            Some(ProbeKind::Ipsec { vici_socket, connections })
        }
        "opnsense_gateway" => opnsense_gateway(cx, p, table),
        other => {
            cx.err(
                Some(p.kind.span()),
                format!("unknown probe type {other:?}"),
                Some("one of: icmp, tcp, http, command, ipsec, opnsense_gateway"),
            );
            None
        }
    }
}

/// The opnsense_gateway keys (`gateways`, `accept`, `configctl`) on a probe of another type.
fn reject_gateway_keys(cx: &mut Ctx<'_>, p: &RawProbe) {
    let keys = [
        ("gateways", p.gateways.as_ref().map(|s| s.span())),
        ("accept", p.accept.as_ref().map(|s| s.span())),
        ("configctl", p.configctl.as_ref().map(|s| s.span())),
    ];
    reject_keys(cx, &format!("{} probes", p.kind.get_ref()), &keys);
}

/// `type = "opnsense_gateway"`: `target = "WAN_GW"` or `"all"`, or `gateways = [...]`;
/// `accept` adds "delay"/"loss" to the passing statuses; `configctl` is its path.
fn opnsense_gateway(cx: &mut Ctx<'_>, p: &RawProbe, table: Range<usize>) -> Option<ProbeKind> {
    use crate::probe::opnsense_gateway::ACCEPTABLE;
    reject_keys(
        cx,
        "an opnsense_gateway probe",
        &[
            ("command", p.command.as_ref().map(|c| c.span())),
            ("expect_status", p.expect_status.as_ref().map(|s| s.span())),
        ],
    );
    let gateways = match (&p.target, &p.gateways) {
        (Some(t), Some(_)) => {
            cx.err(Some(t.span()), "give either `target` or `gateways`, not both", None);
            return None;
        }
        (Some(t), None) if t.get_ref() == "all" => Vec::new(),
        (Some(t), None) => vec![t.get_ref().clone()],
        (None, Some(g)) => g.get_ref().clone(),
        (None, None) => {
            cx.err(
                Some(table),
                "missing `target`",
                Some("target = \"WAN_GW\" (an OPNsense gateway name), target = \"all\", or gateways = [...]"),
            );
            return None;
        }
    };
    let span = p.gateways.as_ref().map(|g| g.span()).or(p.target.as_ref().map(|t| t.span()));
    let mut seen = HashSet::new();
    let name_ok =
        |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if p.gateways.is_some() && gateways.is_empty() {
        cx.err(span.clone(), "`gateways` is empty", Some("leave it out and use target = \"all\""));
    }
    for g in &gateways {
        if !name_ok(g) || !seen.insert(g.as_str()) {
            cx.err(span.clone(), format!("gateway name {g:?} is not valid or listed twice"), None);
        }
    }
    let accept = p.accept.as_ref().map(|a| a.get_ref().clone()).unwrap_or_default();
    for a in &accept {
        if !ACCEPTABLE.contains(&a.as_str()) {
            cx.err(
                p.accept.as_ref().map(|s| s.span()),
                format!("unknown gateway status {a:?} in `accept`"),
                Some("\"delay\" and/or \"loss\" (\"none\", i.e. Online, always passes)"),
            );
        }
    }
    let configctl = program(cx, "configctl", &p.configctl, crate::carp::opnsense::DEFAULT_CONFIGCTL);
    Some(ProbeKind::OpnsenseGateway { configctl, gateways, accept })
}
