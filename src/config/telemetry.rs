//! `[tracing]` (OpenTelemetry export over OTLP/HTTP) and `[syslog]` (the local syslog socket):
//! the raw tables as written and their validation. Both are off by default. The OTel
//! environment variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_SERVICE_NAME`) are applied at start by `telemetry::otel`, on top of this config.

use super::error::ConfigError;
use serde::Deserialize;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;

/// syslogd's local socket: `/var/run/log` on FreeBSD (syslogd(8), and syslog-ng on OPNsense
/// listens there too), `/dev/log` elsewhere.
#[cfg(target_os = "freebsd")]
pub const DEFAULT_SYSLOG_SOCKET: &str = "/var/run/log";
#[cfg(not(target_os = "freebsd"))]
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
pub const DEFAULT_SERVICE_NAME: &str = "failbackd";
pub const DEFAULT_SYSLOG_TAG: &str = "failbackd";
pub const DEFAULT_SYSLOG_FACILITY: &str = "daemon";

/// `[tracing]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    /// OTLP/HTTP base URL; spans go to `{otlp_endpoint}/v1/traces`.
    pub otlp_endpoint: Option<Spanned<String>>,
    pub service_name: Option<Spanned<String>>,
    /// Fraction of failbacks (root spans) exported, 0.0..=1.0.
    pub sample_ratio: Option<Spanned<f64>>,
}

/// `[syslog]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    pub enabled: Option<bool>,
    pub socket: Option<Spanned<String>>,
    pub facility: Option<Spanned<String>>,
    pub tag: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
}

/// Traces and syslog settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetryConfig {
    pub tracing: TracingConfig,
    pub syslog: SyslogConfig,
}

/// `[tracing]`. `otlp_endpoint = None` means off unless the OTel environment variables say
/// otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    pub sample_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig { otlp_endpoint: None, service_name: DEFAULT_SERVICE_NAME.into(), sample_ratio: 1.0 }
    }
}

/// `[syslog]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    pub enabled: bool,
    pub socket: PathBuf,
    /// A facility name `syslog::Facility` parses ("daemon", "local0", ...), lowercase.
    pub facility: String,
    pub tag: String,
    pub format: SyslogFormat,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            enabled: false,
            socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET),
            facility: DEFAULT_SYSLOG_FACILITY.into(),
            tag: DEFAULT_SYSLOG_TAG.into(),
            format: SyslogFormat::Rfc3164,
        }
    }
}

impl TracingConfig {
    /// One line for `check-config`.
    pub fn summary(&self) -> String {
        let env = "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT";
        match &self.otlp_endpoint {
            Some(url) => format!(
                "OTLP/HTTP {url}/v1/traces as {:?}, sample ratio {} ({env} takes precedence)",
                self.service_name, self.sample_ratio
            ),
            None => format!("off (unless {env} is set)"),
        }
    }
}

impl SyslogConfig {
    /// One line for `check-config`.
    pub fn summary(&self) -> String {
        if self.enabled {
            format!(
                "{} facility {}, tag {}, {}",
                self.socket.display(),
                self.facility,
                self.tag,
                self.format.as_str()
            )
        } else {
            "off".to_string()
        }
    }
}

/// The syslog line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyslogFormat {
    /// `<PRI>Mmm dd hh:mm:ss tag[pid]: msg`: the local syslog(3) form (no hostname), which
    /// FreeBSD syslogd, syslog-ng, rsyslog's imuxsock and journald all attribute right.
    #[default]
    Rfc3164,
    /// `<PRI>1 timestamp host tag pid - - msg`.
    Rfc5424,
}

impl SyslogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogFormat::Rfc3164 => "rfc3164",
            SyslogFormat::Rfc5424 => "rfc5424",
        }
    }
}

/// Facility names accepted in `facility` (the `LOG_` prefix is optional).
const FACILITIES: &str = "kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, \
                          ftp, ntp, audit, alert, clock_daemon, local0 .. local7";

/// Validates both tables; problems are appended to `errors` with their position in `text`.
pub(super) fn build(
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
    tracing: &Option<Spanned<RawTracing>>,
    syslog: &Option<Spanned<RawSyslog>>,
) -> TelemetryConfig {
    let mut err = |span: Option<Range<usize>>, msg: String, hint: &str| {
        errors.push(ConfigError::at(file, text, span, msg).hint(hint));
    };
    let mut out = TelemetryConfig::default();

    if let Some(t) = tracing.as_ref().map(|t| t.get_ref()) {
        if let Some(e) = &t.otlp_endpoint {
            match check_endpoint(e.get_ref()) {
                Ok(url) => out.tracing.otlp_endpoint = Some(url),
                Err(msg) => err(
                    Some(e.span()),
                    msg,
                    "an OTLP/HTTP base URL, e.g. \"http://127.0.0.1:4318\" (spans go to /v1/traces)",
                ),
            }
        }
        if let Some(n) = &t.service_name {
            if n.get_ref().trim().is_empty() {
                err(Some(n.span()), "`service_name` is empty".into(), "the default is \"failbackd\"");
            } else {
                out.tracing.service_name = n.get_ref().clone();
            }
        }
        if let Some(r) = &t.sample_ratio {
            let v = *r.get_ref();
            if (0.0..=1.0).contains(&v) {
                out.tracing.sample_ratio = v;
            } else {
                err(
                    Some(r.span()),
                    format!("`sample_ratio` {v} is not between 0.0 and 1.0"),
                    "1.0 (the default) exports every failback",
                );
            }
        }
    }

    if let Some(s) = syslog.as_ref().map(|s| s.get_ref()) {
        out.syslog.enabled = s.enabled.unwrap_or(false);
        if let Some(p) = &s.socket {
            if std::path::Path::new(p.get_ref()).is_absolute() {
                out.syslog.socket = PathBuf::from(p.get_ref());
            } else {
                err(
                    Some(p.span()),
                    "`socket` must be an absolute path".into(),
                    "\"/var/run/log\" on FreeBSD/OPNsense, \"/dev/log\" on Linux",
                );
            }
        }
        if let Some(f) = &s.facility {
            match parse_facility(f.get_ref()) {
                Some(name) => out.syslog.facility = name,
                None => err(
                    Some(f.span()),
                    format!("unknown syslog facility {:?}", f.get_ref()),
                    &format!("one of: {FACILITIES}"),
                ),
            }
        }
        if let Some(t) = &s.tag {
            let tag = t.get_ref();
            // RFC 3164: the TAG is at most 32 alphanumeric characters; '-', '_', '.' and '/'
            // are common in practice and syslogd accepts them.
            let ok = !tag.is_empty()
                && tag.len() <= 32
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
            if ok {
                out.syslog.tag = tag.clone();
            } else {
                err(
                    Some(t.span()),
                    format!("syslog tag {tag:?} is not valid"),
                    "1-32 of letters, digits, '-', '_', '.', '/' (no spaces or ':')",
                );
            }
        }
        if let Some(f) = &s.format {
            match f.get_ref().as_str() {
                "rfc3164" => out.syslog.format = SyslogFormat::Rfc3164,
                "rfc5424" => out.syslog.format = SyslogFormat::Rfc5424,
                other => err(
                    Some(f.span()),
                    format!("unknown syslog format {other:?}"),
                    "\"rfc3164\" (the default, what FreeBSD syslogd expects) or \"rfc5424\"",
                ),
            }
        }
    }
    out
}

/// A plain `http://host:port[/path]` base URL, without a trailing slash.
fn check_endpoint(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            format!(
                "{url:?}: https is not supported (no TLS in this build); use a local collector over http://"
            )
        } else {
            format!("{url:?} is not an http:// URL")
        });
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) || url.contains(['?', '#']) {
        return Err(format!("{url:?} is not an http://host:port base URL"));
    }
    match url.parse::<hyper::Uri>() {
        Ok(_) => Ok(url.trim_end_matches('/').to_string()),
        Err(e) => Err(format!("{url:?} is not a valid URL: {e}")),
    }
}

/// The canonical (lowercase, no `log_`) name of a facility `syslog` knows.
pub fn parse_facility(name: &str) -> Option<String> {
    name.parse::<syslog::Facility>().ok()?;
    let lower = name.to_ascii_lowercase();
    Some(lower.strip_prefix("log_").unwrap_or(&lower).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(check_endpoint("http://127.0.0.1:4318/").unwrap(), "http://127.0.0.1:4318");
        assert_eq!(check_endpoint("http://collector:4318/otlp").unwrap(), "http://collector:4318/otlp");
        assert!(check_endpoint("https://x:4318").unwrap_err().contains("https is not supported"));
        assert!(check_endpoint("127.0.0.1:4318").is_err());
        assert!(check_endpoint("http:///v1").is_err());
        assert!(check_endpoint("http://x:4318/?a=b").is_err());
    }

    #[test]
    fn defaults_and_errors_with_line_and_column() {
        let base = "[backend]\ntype = \"simulated\"\n";
        let cfg = crate::config::Config::parse("t.toml", base).unwrap();
        assert_eq!(cfg.telemetry, TelemetryConfig::default());
        assert!(!cfg.telemetry.syslog.enabled);
        assert_eq!(cfg.telemetry.tracing.otlp_endpoint, None);

        let text = format!(
            "{base}[tracing]\notlp_endpoint = \"https://c:4318\"\nsample_ratio = 1.5\n\
             [syslog]\nenabled = true\nfacility = \"local9\"\nformat = \"json\"\ntag = \"a b\"\nsocket = \"log\"\n"
        );
        let errs = crate::config::Config::parse("t.toml", &text).unwrap_err().to_string();
        for want in [
            "t.toml:4:17: error: \"https://c:4318\": https is not supported",
            "t.toml:5:16: error: `sample_ratio` 1.5 is not between 0.0 and 1.0",
            "t.toml:8:12: error: unknown syslog facility \"local9\"",
            "t.toml:9:10: error: unknown syslog format \"json\"",
            "t.toml:10:7: error: syslog tag \"a b\" is not valid",
            "t.toml:11:10: error: `socket` must be an absolute path",
        ] {
            assert!(errs.contains(want), "{want}\nin\n{errs}");
        }
        let unknown =
            crate::config::Config::parse("t.toml", &format!("{base}[syslog]\nlevel = 1\n")).unwrap_err();
        assert!(unknown.to_string().starts_with("t.toml:4:1: error: unknown field `level`"), "{unknown}");

        let ok = format!(
            "{base}[tracing]\notlp_endpoint = \"http://127.0.0.1:4318/\"\nservice_name = \"fw1\"\n\
             [syslog]\nenabled = true\nfacility = \"LOG_LOCAL0\"\nformat = \"rfc5424\"\n"
        );
        let t = crate::config::Config::parse("t.toml", &ok).unwrap().telemetry;
        assert_eq!(t.tracing.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(t.tracing.service_name, "fw1");
        assert_eq!((t.syslog.facility.as_str(), t.syslog.format), ("local0", SyslogFormat::Rfc5424));
        assert_eq!(t.syslog.socket, PathBuf::from(DEFAULT_SYSLOG_SOCKET));
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("daemon").as_deref(), Some("daemon"));
        assert_eq!(parse_facility("LOG_LOCAL3").as_deref(), Some("local3"));
        assert_eq!(parse_facility("local8"), None);
        assert_eq!(parse_facility(""), None);
    }
}
