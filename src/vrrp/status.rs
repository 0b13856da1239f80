//! The VRRP instances' state as the running daemon sees it, written to a
//! JSON file after each change (and on SIGUSR2 in the daemon) for
//! `ipvsdir --dump --vrrp` and for tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::instance::Instance;
use super::validate::DropKind;

/// Where the daemon writes the report by default.
pub const VRRP_STATE: &str = "/run/ipvsdir/vrrp.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: String,
    pub priority: u8,
    pub effective_priority: u8,
    /// The master being followed (BACKUP) or our own address (MASTER).
    pub master: Option<String>,
    pub master_down_interval: f64,
    pub vips: Vec<String>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub late_adverts: u64,
    /// Dropped adverts per reason.
    pub dropped: BTreeMap<String, u64>,
    #[serde(default)]
    pub became_master: u64,
    #[serde(default)]
    pub released_master: u64,
    #[serde(default)]
    pub priority_zero_received: u64,
    #[serde(default)]
    pub priority_zero_sent: u64,
    /// `garp_master_delay`, seconds (keepalived.data's "Gratuitous ARP delay").
    #[serde(default)]
    pub garp_master_delay: f64,
    /// Takeovers from BACKUP and the master's silence before each.
    #[serde(default)]
    pub takeovers: TakeoverReport,
}

/// The silences that ended in a takeover (see [`super::instance::Takeovers`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TakeoverReport {
    pub count: u64,
    /// Sum of the silences, seconds.
    pub seconds_sum: f64,
    /// Takeovers per histogram bucket (upper bounds `bounds`, then +Inf);
    /// not cumulative.
    pub counts: Vec<u64>,
    pub bounds: Vec<f64>,
}

impl From<&super::instance::Takeovers> for TakeoverReport {
    fn from(t: &super::instance::Takeovers) -> Self {
        TakeoverReport {
            count: t.count(),
            seconds_sum: t.sum_us as f64 / 1e6,
            counts: t.counts.to_vec(),
            bounds: super::instance::TAKEOVER_BOUNDS.to_vec(),
        }
    }
}

/// A tracked file's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    pub name: String,
    pub value: i64,
}

/// A tracked process's quorum state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub name: String,
    /// `up` while the quorum is met, else `down`.
    pub quorum: String,
}

/// A tracked vrrp_script's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptReport {
    pub name: String,
    /// `GOOD` or `BAD`, as keepalived says it.
    pub status: String,
    /// `idle` or `running` (a run under way), as keepalived says it.
    #[serde(default = "idle")]
    pub state: String,
}

fn idle() -> String {
    "idle".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpReport {
    pub pid: u32,
    #[serde(with = "crate::time_format::rfc3339")]
    pub written: f64,
    pub instances: Vec<InstanceReport>,
    /// Adverts dropped before an instance could be named, per reason:
    /// malformed (no VRID to read), or for a VRID none of ours has on
    /// that interface (`not_our_vrid`: other routers on the link).
    #[serde(default)]
    pub unmatched_drops: BTreeMap<String, u64>,
    /// The vrrp_scripts some instance tracks.
    #[serde(default)]
    pub scripts: Vec<ScriptReport>,
    /// The track_files some instance tracks, with their values.
    #[serde(default)]
    pub files: Vec<FileReport>,
    /// The vrrp_track_processes some instance tracks, with their quorum
    /// state (`up` / `down`).
    #[serde(default)]
    pub processes: Vec<ProcessReport>,
}

/// `scripts`: each tracked vrrp_script's name and whether it is up;
/// `files`: each tracked file's name and value.
pub fn report(
    instances: &[Instance],
    unmatched: &BTreeMap<DropKind, u64>,
    scripts: Vec<(String, bool, bool)>,
    files: Vec<(String, i64)>,
    processes: Vec<(String, bool)>,
) -> VrrpReport {
    VrrpReport {
        processes: processes
            .into_iter()
            .map(|(name, up)| ProcessReport {
                name,
                quorum: if up { "up" } else { "down" }.into(),
            })
            .collect(),
        files: files
            .into_iter()
            .map(|(name, value)| FileReport { name, value })
            .collect(),
        scripts: scripts
            .into_iter()
            .map(|(name, up, running)| ScriptReport {
                name,
                status: if up { "GOOD" } else { "BAD" }.into(),
                state: if running { "running" } else { "idle" }.into(),
            })
            .collect(),
        unmatched_drops: unmatched
            .iter()
            .map(|(k, n)| (k.as_str().to_string(), *n))
            .collect(),
        pid: std::process::id(),
        written: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        instances: instances
            .iter()
            .map(|i| InstanceReport {
                name: i.cfg.name.clone(),
                interface: i.cfg.interface.clone(),
                vrid: i.cfg.virtual_router_id,
                version: i.cfg.version,
                state: i.vrrp.state.name().to_string(),
                priority: i.cfg.priority,
                effective_priority: i.vrrp.priority,
                master: i.vrrp.master_ip.map(|a| a.to_string()),
                master_down_interval: i.vrrp.master_down_interval().as_secs_f64(),
                vips: i
                    .cfg
                    .virtual_ipaddress
                    .iter()
                    .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                    .collect(),
                adverts_sent: i.adverts_sent,
                adverts_received: i.adverts_received,
                late_adverts: i.late_adverts,
                became_master: i.stats.became_master,
                released_master: i.stats.released_master,
                priority_zero_received: i.stats.priority_zero_received,
                priority_zero_sent: i.stats.priority_zero_sent,
                garp_master_delay: i.cfg.garp_master_delay.0.as_secs_f64(),
                takeovers: (&i.stats.takeovers).into(),
                dropped: i
                    .drops
                    .iter()
                    .map(|(k, n)| (k.as_str().to_string(), *n))
                    .collect(),
            })
            .collect(),
    }
}

pub fn write(path: &Path, report: &VrrpReport) -> Result<(), crate::safe_file::SafeFileError> {
    crate::report_file::write(path, report, crate::report_file::Layout::Pretty)
}

impl crate::report_file::Report for VrrpReport {
    fn pid(&self) -> u32 {
        self.pid
    }
}

/// Where the VRRP driver publishes its live report (the status socket
/// reads it).
pub type LiveReport = std::sync::Arc<std::sync::Mutex<Option<VrrpReport>>>;

/// The report, if a daemon wrote one and is still running.
pub fn read(path: &Path) -> Option<VrrpReport> {
    crate::report_file::read(path)
}
