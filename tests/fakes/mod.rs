//! Fake `configctl`, `sysctl`, `ifconfig` and `ip` (POSIX sh, tests/support/fake-*.sh, shellcheck-clean) installed
//! into a temp dir with their state there. failbackd runs programs with a cleared environment,
//! so the state dir is written into the scripts instead of passed in a variable.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct Fakes {
    pub dir: tempfile::TempDir,
}

fn install(template: &str, state: &Path, to: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support").join(template);
    let text = std::fs::read_to_string(&src).unwrap();
    let state = state.to_str().unwrap();
    assert!(!state.contains(['"', '$', '`', '\\']), "unusual temp path {state}");
    std::fs::write(to, text.replace("@STATE_DIR@", state)).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Fakes {
    pub fn new() -> Fakes {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::create_dir(dir.path().join("rc.carp_service_status.d")).unwrap();
        install("fake-sysctl.sh", dir.path(), &dir.path().join("bin/sysctl"));
        install("fake-configctl.sh", dir.path(), &dir.path().join("bin/configctl"));
        install("fake-ifconfig.sh", dir.path(), &dir.path().join("bin/ifconfig"));
        install("fake-ip.sh", dir.path(), &dir.path().join("bin/ip"));
        Fakes { dir }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn sysctl(&self) -> String {
        self.path("bin/sysctl").to_str().unwrap().to_string()
    }
    pub fn configctl(&self) -> String {
        self.path("bin/configctl").to_str().unwrap().to_string()
    }
    pub fn ifconfig(&self) -> String {
        self.path("bin/ifconfig").to_str().unwrap().to_string()
    }
    pub fn ip(&self) -> String {
        self.path("bin/ip").to_str().unwrap().to_string()
    }
    /// The daemon's state file (backends keep `<state_file>.lock`/`.maintenance` beside it).
    pub fn state_file(&self) -> PathBuf {
        self.path("state.json")
    }
    /// What the fake ifconfig prints from now on (FreeBSD's format).
    pub fn set_ifconfig(&self, text: &str) {
        std::fs::write(self.path("ifconfig.out"), text).unwrap();
    }
    /// What the fake `ip -j addr show` prints from now on.
    pub fn set_ip_json(&self, json: &str) {
        std::fs::write(self.path("ip-addr.json"), json).unwrap();
    }
    pub fn set_demotion(&self, v: i64) {
        std::fs::write(self.path("demotion"), format!("{v}\n")).unwrap();
    }
    pub fn demotion(&self) -> i64 {
        std::fs::read_to_string(self.path("demotion")).map_or(0, |s| s.trim().parse().unwrap())
    }
    /// Every call the fakes received, one per line ("sysctl ...", "configctl ...").
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls")).unwrap_or_default().lines().map(str::to_string).collect()
    }
    pub fn count(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| c.as_str() == call).count()
    }
    /// sysctl writes (net.inet.carp.demotion=N) made by anyone.
    pub fn sysctl_writes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| c.starts_with("sysctl net.inet.carp.demotion=")).collect()
    }
    pub fn config_writes(&self) -> usize {
        std::fs::read_to_string(self.path("config-writes")).unwrap_or_default().lines().count()
    }
    pub fn maintenance(&self) -> bool {
        self.path("maintenancemode").exists()
    }
    pub fn set_maintenance(&self, on: bool) {
        if on {
            std::fs::write(self.path("maintenancemode"), "").unwrap();
        } else {
            let _ = std::fs::remove_file(self.path("maintenancemode"));
        }
    }
}
