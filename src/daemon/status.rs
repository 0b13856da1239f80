//! The checkers' view of every real server, written by `ipvsdir -C` to a
//! state file after each change, and read by `ipvsdir --dump --health` to
//! annotate the kernel table. (A status socket replaces the file with the
//! full daemon.)

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::check::health::{HealthTable, RsKey};
use crate::config::model::{CheckKind, Config};
use crate::lvs::desired::service_keys;
use crate::lvs::format::addr_port;

/// Where the checkers publish their latest report in the process (the
/// status socket and the metrics read it).
pub type LiveHealth = std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<HealthReport>>>>;

/// Where `-C` writes the report by default.
pub const HEALTH_STATE: &str = "/run/ipvsdir/health.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub kind: String,
    pub up: bool,
    /// Unix time (seconds) of the last change.
    pub since: f64,
    pub last_ok: Option<bool>,
    pub last_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// Kernel services this real server stands in, as `TCP 10.0.0.1:80`.
    pub services: Vec<String>,
    /// `10.0.0.11:80`
    pub real_server: String,
    pub up: bool,
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub pid: u32,
    pub written: f64,
    pub servers: Vec<ServerReport>,
}

fn kind(k: &CheckKind) -> &'static str {
    match k {
        CheckKind::Http(h) if h.tls => "SSL_GET",
        CheckKind::Http(_) => "HTTP_GET",
        CheckKind::Tcp => "TCP_CHECK",
        CheckKind::Misc(_) => "MISC_CHECK",
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The report for `table`, whose millisecond clock started at `started`.
pub fn report(config: &Config, table: &HealthTable, started: SystemTime) -> HealthReport {
    let at = |ms: u64| unix(started + Duration::from_millis(ms));
    let mut servers = Vec::new();
    for vs in &config.virtual_servers {
        let services: Vec<String> = service_keys(config, vs)
            .iter()
            .map(|k| k.to_string())
            .collect();
        for rs in &vs.real_servers {
            let key = RsKey::of(vs, rs);
            let ids = table.plan.of_rs.get(&key).cloned().unwrap_or_default();
            let checks = ids
                .iter()
                .map(|&i| {
                    let s = &table.states[i];
                    CheckReport {
                        kind: kind(&table.plan.probes[i].kind).into(),
                        up: s.up,
                        since: at(s.since),
                        last_ok: s.last.as_ref().map(|l| l.ok),
                        last_reason: s.last.as_ref().map(|l| l.reason.to_string()),
                    }
                })
                .collect();
            servers.push(ServerReport {
                services: services.clone(),
                real_server: addr_port(rs.addr, rs.port),
                up: table.rs_health(&key).alive,
                checks,
            });
        }
    }
    HealthReport {
        pid: std::process::id(),
        written: unix(SystemTime::now()),
        servers,
    }
}

/// Writes the report atomically, as compact JSON: it holds every server and
/// is rewritten up to once a second while results change (`ipvsdir --dump
/// --health --json` shows it readable).
pub fn write(path: &Path, report: &HealthReport) -> Result<(), crate::safe_file::SafeFileError> {
    crate::report_file::write(path, report, crate::report_file::Layout::Compact)
}

impl crate::report_file::Report for HealthReport {
    fn pid(&self) -> u32 {
        self.pid
    }
}

/// The report, if a checker process wrote one and is still running.
pub fn read(path: &Path) -> Option<HealthReport> {
    crate::report_file::read(path)
}

/// (`TCP 10.0.0.1:80`, `10.0.0.11:80`) -> the server's report.
pub fn index(r: &HealthReport) -> HashMap<(String, String), &ServerReport> {
    let mut m = HashMap::new();
    for s in &r.servers {
        for svc in &s.services {
            m.insert((svc.clone(), s.real_server.clone()), s);
        }
    }
    m
}

/// One line under a real server in `--dump --health`.
pub fn annotation(s: &ServerReport, now: SystemTime) -> String {
    let since = s.checks.iter().map(|c| c.since).fold(0.0_f64, f64::max);
    let age = (unix(now) - since).max(0.0);
    let checks: Vec<String> = s
        .checks
        .iter()
        .map(|c| match &c.last_reason {
            Some(r) => format!("{}: {r}", c.kind),
            None => format!("{}: not checked yet", c.kind),
        })
        .collect();
    let state = if s.up { "up" } else { "DOWN" };
    if checks.is_empty() {
        format!("     health: {state} (no checkers)")
    } else {
        format!("     health: {state} for {age:.0}s; {}", checks.join("; "))
    }
}
