//! Raw config -> typed [`Config`]: defaults, type-specific keys, ranges. Collects every
//! problem it can find instead of stopping at the first.

use super::raw::{Dur, RawConfig, RawProbe};
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
const MAX_PROBE_NAME: usize = 64;

// Upper bounds on durations. Each is far above any useful value and far below what overflows
// `Instant + Duration` (which panics: `max_hold = "584000000000y"` used to end the daemon).
/// `min_hold`, `stable_for`, `max_hold`: a failback hold lasts seconds to minutes; a week
/// covers any maintenance window someone might hold a node through.
const MAX_HOLD_BOUND: Duration = Duration::from_secs(7 * 86_400);
/// Probe `interval` (and so `timeout`, which is at most the interval): probes gate a failback
/// that lasts minutes; a probe run less often than hourly could not gate anything.
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(3600);
// Lower bounds: `max_hold`, probe `interval`/`timeout` and backend `timeout` must be above 0s
// (checked where they are read); `min_hold = "0s"` and `stable_for = "0s"` are meaningful (no
// minimum hold; release as soon as the probes pass) and stay allowed.

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

/// Reports `key` set above `max` (at the value); false when it is.
fn within(cx: &mut Ctx<'_>, key: &str, d: &Option<Spanned<Dur>>, max: Duration) -> bool {
    match d {
        Some(v) if v.get_ref().0 > max => {
            cx.err(
                Some(v.span()),
                format!("{key} must be at most {}", humantime::format_duration(max)),
                Some("durations are bounded so that no timer can overflow"),
            );
            false
        }
        _ => true,
    }
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
    let bounded =
        [("`min_hold`", &raw.min_hold), ("`max_hold`", &raw.max_hold), ("`stable_for`", &raw.stable_for)]
            .into_iter()
            .fold(true, |ok, (key, d)| within(cx, key, d, MAX_HOLD_BOUND) && ok);
    if !bounded {
        // The relations below would only repeat the problem.
    } else if max_hold.is_zero() {
        cx.err(max_span.clone(), "`max_hold` must be longer than 0s", Some("the default is 15m"));
    } else if min_hold >= max_hold {
        let span = raw.min_hold.as_ref().map(|s| s.span()).or(max_span.clone());
        cx.err(span, "`min_hold` must be shorter than `max_hold`", None);
    } else if stable_for >= max_hold {
        let span = raw.stable_for.as_ref().map(|s| s.span()).or(max_span);
        cx.err(span, "`stable_for` must be shorter than `max_hold`", None);
    }

    let reconcile_interval = reconcile(cx, &raw.reconcile_interval);

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
        Some(_) => backend(cx),
        None => {
            cx.err(
                None,
                "no [backend] table",
                Some("add [backend] with type = \"command\" (or \"simulated\" to try it out)"),
            );
            BackendConfig::Simulated
        }
    };

    let mut tracking = super::tracking::build(cx.file, cx.text, &mut cx.errors, &raw.tracking);
    super::tracking::check_peer_is_not_self(cx.file, cx.text, &mut cx.errors, &raw.tracking, metrics_listen);
    if let Some(t) = &raw.tracking {
        tracking.dampen = super::dampen::build(
            cx.file,
            cx.text,
            &mut cx.errors,
            &super::dampen::RawDampen::of(t.get_ref()),
            max_hold,
        );
    }
    let mut names = HashSet::new();
    let probes = raw.probes.iter().filter_map(|p| probe(cx, p, &mut names, &tracking)).collect();

    Config {
        watch,
        hold_on_boot: raw.hold_on_boot.unwrap_or(true),
        min_hold,
        max_hold,
        max_hold_policy: raw.max_hold_policy.unwrap_or_default(),
        stable_for,
        reconcile_interval,
        control_socket: raw
            .control_socket
            .map_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET), PathBuf::from),
        state_file: raw.state_file.map_or_else(|| PathBuf::from(DEFAULT_STATE_FILE), PathBuf::from),
        metrics_listen,
        hook_fallback,
        backend,
        probes,
        telemetry: super::telemetry::build(cx.file, cx.text, &mut cx.errors, &raw.tracing, &raw.syslog),
        tracking,
    }
}

/// `reconcile_interval`: how often the backend is measured. Below 100 ms the measurement
/// (a configctl or sysctl exec on OPNsense) would cost more than it tells; above 10 minutes a
/// hold changed behind failbackd's back would go unnoticed for too long.
fn reconcile(cx: &mut Ctx<'_>, raw: &Option<toml::Spanned<super::raw::Dur>>) -> Duration {
    let value = dur(raw, super::DEFAULT_RECONCILE_INTERVAL);
    if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&value) {
        cx.err(
            raw.as_ref().map(|s| s.span()),
            "`reconcile_interval` must be between 100ms and 10m",
            Some("the default is 5s"),
        );
        return super::DEFAULT_RECONCILE_INTERVAL;
    }
    value
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

/// `[backend]`, decoded per type from the document's spanned TOML (src/config/backend.rs).
fn backend(cx: &mut Ctx<'_>) -> BackendConfig {
    let decoded = match toml::de::DeTable::parse(cx.text) {
        Ok(doc) => doc
            .get_ref()
            .get("backend")
            .and_then(|v| super::backend::decode(cx.file, cx.text, v, &mut cx.errors)),
        Err(e) => {
            cx.err(e.span(), e.message().trim().to_string(), None);
            None
        }
    };
    decoded.unwrap_or(BackendConfig::Simulated)
}

fn probe(
    cx: &mut Ctx<'_>,
    p: &Spanned<RawProbe>,
    names: &mut HashSet<String>,
    tracking: &super::tracking::TrackingSettings,
) -> Option<ProbeConfig> {
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
    let interval_ok = within(cx, "probe `interval`", &p.interval, MAX_PROBE_INTERVAL);
    if interval.is_zero() {
        cx.err(p.interval.as_ref().map(|s| s.span()), "probe `interval` must be longer than 0s", None);
    }
    // The timeout is bounded through the interval; past a rejected interval it would only
    // repeat the problem.
    if interval_ok && (timeout.is_zero() || timeout > interval) {
        cx.err(
            p.timeout.as_ref().map(|s| s.span()).or(Some(table.clone())),
            format!(
                "probe `timeout` must be between 0s and the interval ({})",
                humantime::format_duration(interval)
            ),
            Some("an attempt must finish before the next one is due"),
        );
    }
    let pacing = super::pacing::build(cx.file, cx.text, &mut cx.errors, p, interval, timeout, interval_ok);
    let rise = p.rise.as_ref().map_or(DEFAULT_RISE, |r| *r.get_ref());
    let fall = p.fall.as_ref().map_or(DEFAULT_FALL, |f| *f.get_ref());
    for (key, v, span) in
        [("rise", rise, p.rise.as_ref().map(|s| s.span())), ("fall", fall, p.fall.as_ref().map(|s| s.span()))]
    {
        if v == 0 {
            cx.err(span, format!("probe `{key}` must be at least 1"), None);
        }
    }

    let required = p.required.unwrap_or(true);
    let track = super::tracking::probe(
        cx.file,
        cx.text,
        &mut cx.errors,
        tracking,
        p.track,
        required,
        table.clone(),
        &p.track_without_peer,
    );
    let kind = probe_kind(cx, p, table)?;
    Some(ProbeConfig {
        name: name.clone(),
        kind,
        interval,
        fast_interval: pacing.fast,
        down_interval: pacing.down,
        timeout,
        rise,
        fall,
        required,
        track,
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
            if crate::url::parse_url(&t).is_err() {
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
                        Some(super::DEFAULT_VICI_SOCKET),
                    );
                    return None;
                }
                Some(s) => PathBuf::from(s.get_ref()),
                None => PathBuf::from(super::DEFAULT_VICI_SOCKET),
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
    use super::GATEWAY_ACCEPTABLE as ACCEPTABLE;
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
    let configctl = match &p.configctl {
        Some(c) if c.get_ref().is_empty() => {
            cx.err(Some(c.span()), "`configctl` is empty", Some(super::backend::DEFAULT_CONFIGCTL));
            super::backend::DEFAULT_CONFIGCTL.to_string()
        }
        Some(c) => c.get_ref().clone(),
        None => super::backend::DEFAULT_CONFIGCTL.to_string(),
    };
    Some(ProbeKind::OpnsenseGateway { configctl, gateways, accept })
}
