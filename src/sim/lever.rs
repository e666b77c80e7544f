//! The world's demotion lever of one node: `net.inet.carp.demotion` and every source adding to
//! it (failbackd's bit, OPNsense's shared 2^20 service bit, config.xml maintenance mode, an
//! operator's or another plugin's 240), with who really put each part there (ground truth the
//! backends cannot see).

use super::setup::Lever;

pub const FAILBACKD_BIT: i64 = 1 << 19;
pub const SERVICE_BIT: i64 = 1 << 20;
/// What maintenance mode, an interface down or an operator's `sysctl` adds.
pub const MAINTENANCE: i64 = 240;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Failbackd,
    Operator,
}

#[derive(Debug, Clone, Default)]
pub struct LeverState {
    /// failbackd's own bit (freebsd / command backends).
    pub ours: bool,
    /// OPNsense's 2^20 bit, as the last `carp_service_status` evaluation left it.
    pub service_bit: bool,
    /// Whether failbackd's `ready` check failed at that evaluation (ground truth).
    pub service_failbackd_failed: bool,
    /// config.xml `virtualip_carp_maintenancemode` (survives reboots).
    pub maintenance: Option<Owner>,
    /// `<state_file>.maintenance`: failbackd's claim on maintenance mode.
    pub marker: bool,
    /// Another plugin's check fails (OPNsense) / another source adds 240 (FreeBSD).
    pub other_failing: bool,
    /// The operator's +240 by hand (plain FreeBSD).
    pub operator_extra: bool,
}

impl LeverState {
    /// The kernel's demotion value.
    pub fn demotion(&self, lever: Lever) -> i64 {
        let mut d = 0;
        match lever {
            Lever::Sysctl | Lever::SysctlBlind => {
                if self.ours {
                    d += FAILBACKD_BIT;
                }
                if self.other_failing {
                    d += MAINTENANCE;
                }
                if self.operator_extra {
                    d += MAINTENANCE;
                }
            }
            Lever::ServiceStatus | Lever::Maintenance => {
                if self.service_bit {
                    d += SERVICE_BIT;
                }
                if self.maintenance.is_some() {
                    d += MAINTENANCE;
                }
            }
        }
        d
    }

    /// The part of the demotion that is failbackd's (ground truth).
    pub fn failbackd_holds(&self, lever: Lever) -> bool {
        match lever {
            Lever::Sysctl | Lever::SysctlBlind => self.ours,
            Lever::ServiceStatus => self.service_bit && self.service_failbackd_failed,
            Lever::Maintenance => self.maintenance == Some(Owner::Failbackd),
        }
    }

    /// A hold on failbackd's own lever that is not failbackd's (ground truth): an operator's
    /// maintenance mode, or another check's 2^20 bit.
    pub fn foreign(&self, lever: Lever) -> bool {
        match lever {
            Lever::Sysctl | Lever::SysctlBlind => false,
            Lever::ServiceStatus => {
                (self.service_bit && !self.service_failbackd_failed)
                    || self.maintenance == Some(Owner::Operator)
            }
            Lever::Maintenance => self.maintenance == Some(Owner::Operator),
        }
    }

    /// The demotion without failbackd's part (what CARP sees when failbackd's lever is not
    /// wired to it, e.g. a keepalived instance without failbackd's track file).
    pub fn demotion_without_failbackd(&self, lever: Lever) -> i64 {
        let mut s = self.clone();
        match lever {
            Lever::Sysctl | Lever::SysctlBlind => s.ours = false,
            Lever::ServiceStatus => s.service_bit = s.service_bit && s.other_failing,
            Lever::Maintenance => {
                if s.maintenance == Some(Owner::Failbackd) {
                    s.maintenance = None
                }
            }
        }
        s.demotion(lever)
    }

    /// What a reboot leaves: the kernel value is gone, config.xml stays.
    pub fn reboot(&mut self, persistent_marker: bool) {
        self.ours = false;
        self.service_bit = false;
        self.service_failbackd_failed = false;
        self.operator_extra = false;
        if !persistent_marker {
            self.marker = false;
        }
    }

    /// OPNsense's `carp_service_status`: any failing check sets the 2^20 bit, all passing clear it.
    pub fn evaluate(&mut self, lever: Lever, failbackd_fails: bool) {
        let ours = lever == Lever::ServiceStatus && failbackd_fails;
        self.service_failbackd_failed = ours;
        self.service_bit = ours || self.other_failing;
    }
}
