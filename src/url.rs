//! `http://host[:port][/path]` URLs as failbackd accepts them (HTTP probes, the tracking peer):
//! parsed and validated in one place, used by config validation and by the clients alike, so a
//! URL that passes `check-config` is one the client can use.

use hyper::http::uri::PathAndQuery;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host part of a probe URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost {
    Ip(IpAddr),
    /// A DNS name, resolved at every attempt (addresses may change while the node boots).
    Name(String),
}

/// A validated `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub host: UrlHost,
    pub port: u16,
    /// Path and query, always starting with `/` (the request target).
    pub path: String,
}

impl ParsedUrl {
    /// The `Host` header value: the port is left out when it is the default (RFC 9110 7.2).
    pub fn host_header(&self) -> String {
        let host = match &self.host {
            UrlHost::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            UrlHost::Ip(ip) => ip.to_string(),
            UrlHost::Name(name) => name.clone(),
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses a probe URL: `http://host[:port][/path][?query]`, host an IPv4 address, a bracketed
/// IPv6 address or a DNS name. A `#fragment` is dropped (it is never sent). Also used by config
/// validation, so errors say what to write instead.
pub fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err("https is not supported: use http://, or a command probe (e.g. curl) for TLS".into())
        }
        Some((scheme, _)) => return Err(format!("unsupported scheme {scheme:?}: only http:// URLs")),
        None => return Err("missing http:// at the start".into()),
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if PathAndQuery::try_from(path.as_str()).is_err() {
        return Err(format!("invalid path {path:?} (spaces and control characters must be percent-encoded)"));
    }
    if authority.contains('@') {
        return Err("user names and passwords in the URL are not supported".into());
    }
    let (host, port) = split_host_port(authority)?;
    Ok(ParsedUrl { host, port, path })
}

fn split_host_port(authority: &str) -> Result<(UrlHost, u16), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (ip, after) = inner.split_once(']').ok_or("missing ']' after the IPv6 address")?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(format!("unexpected {p:?} after ']'"))?),
        };
        (UrlHost::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err("IPv6 addresses must be in brackets: http://[2001:db8::1]:8080/".into());
        }
        (parse_host(host)?, port)
    };
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("invalid port {p:?} (1-65535)")),
        },
    };
    Ok((host, port))
}

/// An IPv4 address or a DNS name (RFC 1123 labels; `_` tolerated as resolvers do).
fn parse_host(host: &str) -> Result<UrlHost, String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(UrlHost::Ip(IpAddr::V4(ip)));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    // A name whose last label is numeric is a mistyped address, not a host name (RFC 3696 2).
    if name.rsplit('.').next().is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("{host:?} is not a valid IPv4 address"));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{host:?} is not a valid host name"));
    }
    Ok(UrlHost::Name(host.to_string()))
}
