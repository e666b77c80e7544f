//! IPsec probe (strongSwan): asks charon over VICI, its control protocol, with the `rsvici`
//! crate, instead of grepping `ipsec status` text. It passes only when every configured child SA
//! is INSTALLED: all children of the listed connections, or of every loaded connection when
//! none are listed. (The forum script's `ipsec status | grep -q INSTALLED` passes when one SA of
//! many is up.)
//!
//! Per attempt: connect to the VICI socket, `list-conns` (streamed as `list-conn` events: which
//! children each connection defines), `list-sas` (streamed as `list-sa` events: IKE SAs with
//! their `child-sas`, each with `name` and `state`); see strongSwan
//! src/libcharon/plugins/vici/README.md "list-conns" / "list-sas". The failure text names each
//! missing child ("1/2 children installed: net2 (conn vpn) not installed"), which /status shows.
//! No timeout here: the runner drops the future, which drops the client (rsvici aborts its
//! listener task on drop) and the socket.

use super::{ProbeFuture, Prober};
use futures_util::TryStreamExt;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// strongSwan's default VICI socket (also OPNsense's).
pub use crate::config::DEFAULT_VICI_SOCKET;

#[derive(Debug, Deserialize)]
struct Conn {
    #[serde(default)]
    children: HashMap<String, IgnoredAny>,
}

#[derive(Debug, Deserialize)]
struct IkeSa {
    #[serde(default, rename = "child-sas")]
    child_sas: HashMap<String, ChildSa>,
}

#[derive(Debug, Deserialize)]
struct ChildSa {
    name: Option<String>,
    state: Option<String>,
}

/// What charon reported: connection -> its children, and IKE SA name -> (child name, state).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ViciSnapshot {
    pub conns: BTreeMap<String, Vec<String>>,
    pub sas: Vec<(String, Vec<(String, String)>)>,
}

/// The state of one configured child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildState {
    pub conn: String,
    pub child: String,
    /// The best state charon reports for it (INSTALLED wins), `None` when no SA exists.
    pub state: Option<String>,
}

impl ChildState {
    pub fn installed(&self) -> bool {
        self.state.as_deref() == Some("INSTALLED")
    }
}

/// Every configured child of `wanted` (all connections when empty) and its state; an error
/// when a wanted connection is not loaded or nothing is.
pub fn children(wanted: &[String], snap: &ViciSnapshot) -> Result<Vec<ChildState>, String> {
    let conns: Vec<&String> = if wanted.is_empty() {
        if snap.conns.is_empty() {
            return Err("no connections loaded in charon (swanctl --load-all?)".into());
        }
        snap.conns.keys().collect()
    } else {
        let missing: Vec<&str> =
            wanted.iter().filter(|w| !snap.conns.contains_key(*w)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(format!("connection(s) not loaded in charon: {}", missing.join(", ")));
        }
        wanted.iter().collect()
    };
    let mut out = Vec::new();
    for conn in conns {
        let mut names = snap.conns.get(conn).cloned().unwrap_or_default();
        names.sort();
        for child in names {
            let mut state: Option<String> = None;
            for (ike, child_sas) in &snap.sas {
                if ike != conn {
                    continue;
                }
                for (name, st) in child_sas {
                    if *name == child && state.as_deref() != Some("INSTALLED") {
                        state = Some(st.clone());
                    }
                }
            }
            out.push(ChildState { conn: conn.clone(), child, state });
        }
    }
    Ok(out)
}

/// Ok when every child is installed; otherwise "k/n children installed: ..." naming the rest.
pub fn verdict(children: &[ChildState]) -> Result<(), String> {
    if children.is_empty() {
        return Err("the connection(s) define no child SAs".into());
    }
    let up = children.iter().filter(|c| c.installed()).count();
    if up == children.len() {
        return Ok(());
    }
    let down: Vec<String> = children
        .iter()
        .filter(|c| !c.installed())
        .map(|c| match &c.state {
            None => format!("{} (conn {}) not installed", c.child, c.conn),
            Some(s) => format!("{} (conn {}) {s}", c.child, c.conn),
        })
        .collect();
    Err(format!("{up}/{} children installed: {}", children.len(), down.join(", ")))
}

/// Reads connections and SAs from charon's VICI socket.
pub async fn snapshot(socket: &std::path::Path) -> Result<ViciSnapshot, String> {
    let mut client = rsvici::unix::connect(socket).await.map_err(|e| {
        format!("cannot connect to charon's VICI socket {}: {e} (is charon running?)", socket.display())
    })?;
    let mut snap = ViciSnapshot::default();
    {
        let conns = client.stream_request::<(), HashMap<String, Conn>>("list-conns", "list-conn", ());
        futures_util::pin_mut!(conns);
        while let Some(event) = conns.try_next().await.map_err(|e| format!("VICI list-conns: {e}"))? {
            for (name, conn) in event {
                snap.conns.insert(name, conn.children.into_keys().collect());
            }
        }
    }
    {
        let sas = client.stream_request::<(), HashMap<String, IkeSa>>("list-sas", "list-sa", ());
        futures_util::pin_mut!(sas);
        while let Some(event) = sas.try_next().await.map_err(|e| format!("VICI list-sas: {e}"))? {
            for (ike, sa) in event {
                let children = sa
                    .child_sas
                    .into_iter()
                    .map(|(key, c)| (c.name.unwrap_or(key), c.state.unwrap_or_default()))
                    .collect();
                snap.sas.push((ike, children));
            }
        }
    }
    Ok(snap)
}

/// Checks that every configured child SA is installed.
#[derive(Debug, Clone)]
pub struct IpsecProber {
    socket: PathBuf,
    connections: Vec<String>,
}

impl IpsecProber {
    pub fn new(socket: PathBuf, connections: Vec<String>) -> IpsecProber {
        IpsecProber { socket, connections }
    }

    /// One attempt, with per-child states (for tests and tools).
    pub async fn check(&self) -> Result<Vec<ChildState>, String> {
        children(&self.connections, &snapshot(&self.socket).await?)
    }
}

impl Prober for IpsecProber {
    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move { verdict(&self.check().await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(conns: &[(&str, &[&str])], sas: &[(&str, &[(&str, &str)])]) -> ViciSnapshot {
        ViciSnapshot {
            conns: conns
                .iter()
                .map(|(c, ch)| (c.to_string(), ch.iter().map(|s| s.to_string()).collect()))
                .collect(),
            sas: sas
                .iter()
                .map(|(i, ch)| {
                    (i.to_string(), ch.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect())
                })
                .collect(),
        }
    }

    #[test]
    fn one_installed_child_of_two_is_not_enough() {
        // What `grep -q INSTALLED` would accept.
        let s = snap(&[("vpn", &["net1", "net2"])], &[("vpn", &[("net1", "INSTALLED")])]);
        let err = verdict(&children(&[], &s).unwrap()).unwrap_err();
        assert_eq!(err, "1/2 children installed: net2 (conn vpn) not installed");
    }

    #[test]
    fn all_installed_passes_and_other_states_are_named() {
        let s = snap(
            &[("vpn", &["net1", "net2"]), ("other", &["x"])],
            &[
                ("vpn", &[("net1", "INSTALLED"), ("net2", "REKEYED"), ("net2", "INSTALLED")]),
                ("other", &[("x", "INSTALLING")]),
            ],
        );
        assert_eq!(verdict(&children(&["vpn".into()], &s).unwrap()), Ok(()));
        let err = verdict(&children(&[], &s).unwrap()).unwrap_err();
        assert_eq!(err, "2/3 children installed: x (conn other) INSTALLING");
    }

    #[test]
    fn missing_connections_are_errors() {
        let s = snap(&[("vpn", &["net1"])], &[]);
        assert!(children(&["nope".into()], &s).unwrap_err().contains("nope"));
        assert!(children(&[], &ViciSnapshot::default()).unwrap_err().contains("no connections"));
        assert!(verdict(&[]).is_err());
    }

    #[tokio::test]
    async fn missing_socket_is_a_clear_error() {
        let p = IpsecProber::new(PathBuf::from("/nonexistent/failbackd/charon.vici"), vec![]);
        let err = p.probe().await.unwrap_err();
        assert!(
            err.contains("cannot connect to charon's VICI socket /nonexistent/failbackd/charon.vici"),
            "{err}"
        );
    }
}
