//! `vhid@iface` patterns: which CARP events arm a failback. `*` matches any VHID or interface.

use std::fmt;

/// One `vhid@iface` pattern; `None` is the `*` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchPattern {
    pub vhid: Option<u16>,
    pub iface: Option<String>,
}

impl WatchPattern {
    pub fn matches(&self, vhid: u16, iface: &str) -> bool {
        self.vhid.is_none_or(|v| v == vhid) && self.iface.as_deref().is_none_or(|i| i == iface)
    }

    /// Parses `vhid@iface`, `*@iface`, `vhid@*` or `*@*`.
    pub fn parse(s: &str) -> Result<WatchPattern, String> {
        let (vhid, iface) =
            s.split_once('@').ok_or_else(|| format!("{s:?} is not of the form vhid@iface"))?;
        let vhid = match vhid {
            "*" => None,
            v => Some(parse_vhid(v)?),
        };
        let iface = match iface {
            "*" => None,
            i => Some(parse_iface(i)?.to_string()),
        };
        Ok(WatchPattern { vhid, iface })
    }
}

/// A CARP VHID: 1..=255 (carp(4)), decimal digits only (`str::parse` alone would take "+1").
pub fn parse_vhid(s: &str) -> Result<u16, String> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u16>() {
        Ok(v) if digits && (1..=255).contains(&v) => Ok(v),
        _ => Err(format!("VHID {s:?} is not a number from 1 to 255")),
    }
}

/// An interface name as FreeBSD/Linux allow it: 1..=15 of `[A-Za-z0-9_.-]` (IFNAMSIZ 16).
pub fn parse_iface(s: &str) -> Result<&str, String> {
    let ok =
        !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(s)
    } else {
        Err(format!("interface {s:?} is not a valid name (1-15 of letters, digits, '_', '.', '-')"))
    }
}

impl fmt::Display for WatchPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vhid {
            Some(v) => write!(f, "{v}")?,
            None => f.write_str("*")?,
        }
        write!(f, "@{}", self.iface.as_deref().unwrap_or("*"))
    }
}

#[cfg(test)]
mod tests {
    use super::WatchPattern;

    #[test]
    fn wildcards_match_any() {
        let p = WatchPattern::parse("*@vtnet0").unwrap();
        assert!(p.matches(1, "vtnet0") && p.matches(200, "vtnet0") && !p.matches(1, "vtnet1"));
        let p = WatchPattern::parse("5@*").unwrap();
        assert!(p.matches(5, "igb0") && !p.matches(6, "igb0"));
        assert_eq!(WatchPattern::parse("*@*").unwrap().to_string(), "*@*");
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in
            ["", "5", "0@em0", "256@em0", "x@em0", "+1@em0", "-1@em0", "1@", "1@em 0", "1@abcdefghijklmnop"]
        {
            assert!(WatchPattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
