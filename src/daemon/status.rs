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

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock(t: f64) -> String {
    let s = t.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `2m10s`, `3h04m`, `5d02h`.
fn span(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// A line for a configured real server the kernel table does not hold (the
/// checkers took it out), after its service's real servers in `--dump`:
/// `  -- 10.0.0.12:8080  out of the table: DOWN since 12:03:11 UTC (2m10s): HTTP_GET: connection refused`.
pub fn absent_line(s: &ServerReport, now: SystemTime) -> String {
    let since = s.checks.iter().map(|c| c.since).fold(0.0_f64, f64::max);
    let reasons: Vec<String> = s
        .checks
        .iter()
        .filter(|c| !c.up)
        .map(|c| match &c.last_reason {
            Some(r) => format!("{}: {r}", c.kind),
            None => format!("{}: not checked yet", c.kind),
        })
        .collect();
    let state = if s.up {
        "up (being added)".to_string()
    } else if s.checks.is_empty() {
        "DOWN".to_string()
    } else {
        format!(
            "DOWN since {} UTC ({})",
            clock(since),
            span(unix(now) - since)
        )
    };
    let mut line = format!("  -- {:<28} out of the table: {state}", s.real_server);
    if !reasons.is_empty() {
        line.push_str(": ");
        line.push_str(&reasons.join("; "));
    }
    line
}

/// The checkers' verdicts by service, for `--dump`.
pub struct Verdicts<'a> {
    /// (`TCP 10.0.0.1:80`, `10.0.0.11:80`) -> the server's report.
    by_dest: std::collections::HashMap<(String, String), &'a ServerReport>,
    /// `TCP 10.0.0.1:80` -> its configured real servers, in file order.
    by_service: std::collections::HashMap<String, Vec<&'a ServerReport>>,
    now: std::time::SystemTime,
}

impl<'a> Verdicts<'a> {
    pub fn new(health: Option<&'a HealthReport>) -> Self {
        let mut by_service: std::collections::HashMap<String, Vec<&ServerReport>> =
            Default::default();
        for s in health.iter().flat_map(|h| &h.servers) {
            for svc in &s.services {
                by_service.entry(svc.clone()).or_default().push(s);
            }
        }
        Verdicts {
            by_dest: health.map(index).unwrap_or_default(),
            by_service,
            now: std::time::SystemTime::now(),
        }
    }

    pub fn of(
        &self,
        k: &ipvs_sys::ServiceKey,
        d: &ipvs_sys::DestEntry,
    ) -> Option<&'a ServerReport> {
        self.by_dest
            .get(&(k.to_string(), addr_port(d.dest.addr, d.dest.port)))
            .copied()
    }

    /// The configured real servers of `k` that the kernel table lacks.
    pub fn absent_servers(
        &self,
        k: &ipvs_sys::ServiceKey,
        present: &[ipvs_sys::DestEntry],
    ) -> Vec<&'a ServerReport> {
        let here: std::collections::HashSet<String> = present
            .iter()
            .map(|d| addr_port(d.dest.addr, d.dest.port))
            .collect();
        self.by_service
            .get(&k.to_string())
            .into_iter()
            .flatten()
            .filter(|s| !here.contains(&s.real_server))
            .copied()
            .collect()
    }
}

impl crate::lvs::format::Annotate for Verdicts<'_> {
    fn dest(&self, k: &ipvs_sys::ServiceKey, d: &ipvs_sys::DestEntry) -> Option<String> {
        self.of(k, d).map(|s| annotation(s, self.now))
    }

    fn absent(&self, k: &ipvs_sys::ServiceKey, present: &[ipvs_sys::DestEntry]) -> Vec<String> {
        self.absent_servers(k, present)
            .into_iter()
            .map(|s| absent_line(s, self.now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(up: bool, checks: Vec<CheckReport>) -> ServerReport {
        ServerReport {
            services: vec!["TCP 10.0.0.1:80".into()],
            real_server: "10.0.0.12:8080".into(),
            up,
            checks,
        }
    }

    #[test]
    fn an_absent_server_says_since_when_and_why() {
        let since = 1_700_000_000.0; // 22:13:20 UTC
        let now = UNIX_EPOCH + Duration::from_secs_f64(since + 130.0);
        let check = CheckReport {
            kind: "HTTP_GET".into(),
            up: false,
            since,
            last_ok: Some(false),
            last_reason: Some("digest mismatch".into()),
        };
        assert_eq!(
            absent_line(&server(false, vec![check]), now),
            "  -- 10.0.0.12:8080               out of the table: DOWN since 22:13:20 UTC (2m10s): HTTP_GET: digest mismatch"
        );
        assert_eq!(
            absent_line(&server(false, Vec::new()), now),
            "  -- 10.0.0.12:8080               out of the table: DOWN"
        );
    }

    #[test]
    fn spans_read_as_an_operator_says_them() {
        assert_eq!(span(42.0), "42s");
        assert_eq!(span(130.0), "2m10s");
        assert_eq!(span(3.0 * 3600.0 + 240.0), "3h04m");
        assert_eq!(span(2.0 * 86_400.0 + 7200.0), "2d02h");
        assert_eq!(clock(86_399.0), "23:59:59");
    }
}
