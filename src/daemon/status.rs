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
use crate::lvs::director::{Override, Placement};
use crate::lvs::format::addr_port;
use crate::lvs::names;

/// Where the checkers publish their latest report in the process (the
/// status socket and the metrics read it).
pub type LiveHealth = std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<HealthReport>>>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// `HTTP_GET`, `SSL_GET`, `TCP_CHECK`, `MISC_CHECK`.
    pub kind: String,
    pub up: bool,
    /// When it last changed between up and down.
    #[serde(with = "crate::time_format::rfc3339")]
    pub since: f64,
    /// The last probe's result; None before the first one.
    pub last_ok: Option<bool>,
    pub last_reason: Option<String>,
}

/// One configured real server of one virtual server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// `10.0.0.11:80`, `[2001:db8::11]:80`
    pub real_server: String,
    /// What an operator reads first: `up`, `down`, `inhibited` (down, kept
    /// at weight 0 by inhibit_on_failure), `draining`, `disabled`,
    /// `no quorum` (up, but its virtual server lost its quorum) or
    /// `pending` (up, not in the table yet).
    pub state: String,
    /// The checkers' verdict (true with no checkers).
    pub up: bool,
    /// When the verdict last changed: the earliest failing check's change
    /// while down, the latest change while up. None with no checkers.
    #[serde(with = "crate::time_format::rfc3339_opt")]
    pub since: Option<f64>,
    /// Why it is down: each failing check's last result.
    pub reasons: Vec<String>,
    /// The configured weight.
    pub weight: u32,
    /// Its weight in the table as decided now; None: not in the table.
    pub table_weight: Option<u32>,
    /// The operator's override (`ipvsdir ctl`).
    pub operator: Option<Override>,
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServerReport {
    /// As the log names it: `[10.0.0.1]:tcp:80`, `FWM 7`, `group NAME`.
    pub name: String,
    /// Kernel services it stands for, as ipvsadm shows them: `TCP 10.0.0.1:80`.
    pub services: Vec<String>,
    /// The configured quorum (1 unless set) and whether it is held now
    /// (None before the first verdict).
    pub quorum: u32,
    pub quorum_held: Option<bool>,
    pub real_servers: Vec<ServerReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub pid: u32,
    #[serde(with = "crate::time_format::rfc3339")]
    pub written: f64,
    pub virtual_servers: Vec<VirtualServerReport>,
    /// Every VIP with `announce`: announced now or not, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced: Vec<crate::lvs::announce::VipStatus>,
    /// The director's drain (`ipvsdir ctl drain-director`, or the stop),
    /// while one is under way or done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<crate::lvs::announce::DrainStatus>,
}

impl HealthReport {
    /// Every (virtual server, real server) pair, in file order.
    pub fn servers(&self) -> impl Iterator<Item = (&VirtualServerReport, &ServerReport)> {
        self.virtual_servers
            .iter()
            .flat_map(|v| v.real_servers.iter().map(move |s| (v, s)))
    }
}

fn kind(k: &CheckKind) -> &'static str {
    match k {
        CheckKind::Http(h) if h.tls => "SSL_GET",
        CheckKind::Http(_) => "HTTP_GET",
        CheckKind::Tcp => "TCP_CHECK",
        CheckKind::Misc(_) => "MISC_CHECK",
        CheckKind::File(_) => "FILE_CHECK",
        CheckKind::Udp(_) => "UDP_CHECK",
        CheckKind::Ping => "PING_CHECK",
        CheckKind::Dns(_) => "DNS_CHECK",
        CheckKind::Smtp(_) => "SMTP_CHECK",
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The one word for a real server (see [`ServerReport::state`]).
fn state_word(
    up: bool,
    table_weight: Option<u32>,
    operator: Option<Override>,
    quorum_held: Option<bool>,
) -> &'static str {
    match (operator, up, table_weight) {
        (Some(Override::Disable), ..) => "disabled",
        (Some(Override::Drain), true, _) => "draining",
        (_, false, Some(_)) => "inhibited",
        (_, false, None) => "down",
        (_, true, Some(_)) => "up",
        (_, true, None) if quorum_held == Some(false) => "no quorum",
        (_, true, None) => "pending",
    }
}

/// The report for `table` (whose millisecond clock started at `started`)
/// and the core's `placement` of each real server.
pub fn report(
    config: &Config,
    table: &HealthTable,
    placement: &Placement,
    started: SystemTime,
) -> HealthReport {
    let at = |ms: u64| unix(started + Duration::from_millis(ms));
    let mut i = 0;
    let mut virtual_servers = Vec::with_capacity(config.virtual_servers.len());
    for (v, vs) in config.virtual_servers.iter().enumerate() {
        let quorum_held = placement.quorum.get(v).copied().flatten();
        let mut real_servers = Vec::with_capacity(vs.real_servers.len());
        for rs in &vs.real_servers {
            let key = RsKey::of(vs, rs);
            let ids = table.plan.of_rs.get(&key).cloned().unwrap_or_default();
            let checks: Vec<CheckReport> = ids
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
            let up = table.rs_health(&key).alive;
            let failing = checks.iter().filter(|c| !c.up);
            let since = if up {
                checks.iter().map(|c| c.since).reduce(f64::max)
            } else {
                failing.clone().map(|c| c.since).reduce(f64::min)
            };
            let reasons = failing
                .map(|c| match &c.last_reason {
                    Some(r) => format!("{}: {r}", c.kind),
                    None => format!("{}: not checked yet", c.kind),
                })
                .collect();
            let table_weight = placement.weight.get(i).copied().flatten();
            let operator = placement.overrides.get(i).copied().flatten();
            i += 1;
            real_servers.push(ServerReport {
                real_server: addr_port(rs.addr, rs.port),
                state: state_word(up, table_weight, operator, quorum_held).into(),
                up,
                since,
                reasons,
                weight: rs.weight,
                table_weight,
                operator,
                checks,
            });
        }
        virtual_servers.push(VirtualServerReport {
            name: names::virtual_server(vs),
            services: service_keys(config, vs)
                .iter()
                .map(|k| k.to_string())
                .collect(),
            quorum: vs.quorum,
            quorum_held,
            real_servers,
        });
    }
    HealthReport {
        pid: std::process::id(),
        written: unix(SystemTime::now()),
        virtual_servers,
        announced: Vec::new(),
        drain: None,
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
    for (v, s) in r.servers() {
        for svc in &v.services {
            m.insert((svc.clone(), s.real_server.clone()), s);
        }
    }
    m
}

/// `12:03:11 UTC (2m10s)`, or nothing without a time.
fn since_text(since: Option<f64>, now: SystemTime) -> String {
    match since {
        Some(t) => format!(" since {} UTC ({})", clock(t), span(unix(now) - t)),
        None => String::new(),
    }
}

/// What is said of a real server: its state, then why it is down (the
/// failing checks' last results) or, with `every_check`, each check's last
/// result.
fn state_text(s: &ServerReport, now: SystemTime, every_check: bool) -> String {
    let mut text = match s.state.as_str() {
        "up" => format!("up{}", since_text(s.since, now)),
        "down" | "inhibited" => format!("{}{}", s.state.to_uppercase(), since_text(s.since, now)),
        "disabled" => "DISABLED by operator".to_string(),
        "draining" => "DRAINING (operator: weight 0, established connections finish)".into(),
        "no quorum" => "up, but its virtual server lost its quorum".into(),
        "pending" => "up, being added".into(),
        other => other.to_string(),
    };
    if let Some(Override::Weight(w)) = s.operator {
        text.push_str(&format!(" (operator: weight {w})"));
    }
    let results: Vec<String> = if every_check {
        s.checks
            .iter()
            .map(|c| match &c.last_reason {
                Some(r) => format!("{}: {r}", c.kind),
                None => format!("{}: not checked yet", c.kind),
            })
            .collect()
    } else {
        s.reasons.clone()
    };
    if !results.is_empty() {
        // `DOWN since ... (2m10s): HTTP_GET: ...`; each check's result after
        // a server in the table: `up since ...; HTTP_GET: ok (...)`.
        text.push_str(if every_check { "; " } else { ": " });
        text.push_str(&results.join("; "));
    }
    if s.checks.is_empty() && s.state != "disabled" {
        text.push_str(" (no checkers)");
    }
    text
}

/// One line under a real server in `--dump --health`.
pub fn annotation(s: &ServerReport, now: SystemTime) -> String {
    format!("     health: {}", state_text(s, now, true))
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

/// A line for a configured real server the kernel table does not hold,
/// after its service's real servers in `--dump`:
/// `  -- 10.0.0.12:8080  out of the table: DOWN since 12:03:11 UTC (2m10s): HTTP_GET: connection refused`.
pub fn absent_line(s: &ServerReport, now: SystemTime) -> String {
    format!(
        "  -- {:<28} out of the table: {}",
        s.real_server,
        state_text(s, now, false)
    )
}

/// The checkers' verdicts by service, for `--dump`.
pub struct Verdicts<'a> {
    /// (`TCP 10.0.0.1:80`, `10.0.0.11:80`) -> the server's report.
    by_dest: HashMap<(String, String), &'a ServerReport>,
    /// `TCP 10.0.0.1:80` -> its configured real servers, in file order.
    by_service: HashMap<String, Vec<&'a ServerReport>>,
    now: SystemTime,
}

impl<'a> Verdicts<'a> {
    pub fn new(health: Option<&'a HealthReport>) -> Self {
        let mut by_service: HashMap<String, Vec<&ServerReport>> = Default::default();
        for (v, s) in health.iter().flat_map(|h| h.servers()) {
            for svc in &v.services {
                by_service.entry(svc.clone()).or_default().push(s);
            }
        }
        Verdicts {
            by_dest: health.map(index).unwrap_or_default(),
            by_service,
            now: SystemTime::now(),
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

    fn server(state: &str, checks: Vec<CheckReport>) -> ServerReport {
        let failing: Vec<&CheckReport> = checks.iter().filter(|c| !c.up).collect();
        ServerReport {
            real_server: "10.0.0.12:8080".into(),
            state: state.into(),
            up: failing.is_empty(),
            since: failing.iter().map(|c| c.since).reduce(f64::min),
            reasons: failing
                .iter()
                .map(|c| format!("{}: {}", c.kind, c.last_reason.clone().unwrap_or_default()))
                .collect(),
            weight: 1,
            table_weight: None,
            operator: None,
            checks,
        }
    }

    fn check(up: bool, since: f64, reason: &str) -> CheckReport {
        CheckReport {
            kind: "HTTP_GET".into(),
            up,
            since,
            last_ok: Some(up),
            last_reason: Some(reason.into()),
        }
    }

    #[test]
    fn an_absent_server_says_since_when_and_why() {
        let since = 1_700_000_000.0; // 22:13:20 UTC
        let now = UNIX_EPOCH + Duration::from_secs_f64(since + 130.0);
        assert_eq!(
            absent_line(
                &server("down", vec![check(false, since, "digest mismatch")]),
                now
            ),
            "  -- 10.0.0.12:8080               out of the table: DOWN since 22:13:20 UTC (2m10s): HTTP_GET: digest mismatch"
        );
        // Two failing checks: since the first failure.
        let two = vec![
            check(false, since + 60.0, "timeout"),
            check(false, since, "digest mismatch"),
        ];
        assert!(absent_line(&server("down", two), now).contains("since 22:13:20 UTC (2m10s)"));
        assert_eq!(
            absent_line(&server("disabled", vec![check(true, since, "ok")]), now),
            "  -- 10.0.0.12:8080               out of the table: DISABLED by operator"
        );
        assert_eq!(
            absent_line(&server("no quorum", vec![check(true, since, "ok")]), now),
            "  -- 10.0.0.12:8080               out of the table: up, but its virtual server lost its quorum"
        );
    }

    #[test]
    fn one_word_per_state() {
        use Override::*;
        assert_eq!(state_word(true, Some(3), None, Some(true)), "up");
        assert_eq!(
            state_word(true, Some(0), Some(Drain), Some(true)),
            "draining"
        );
        assert_eq!(state_word(false, None, Some(Drain), Some(true)), "down");
        assert_eq!(
            state_word(true, None, Some(Disable), Some(true)),
            "disabled"
        );
        assert_eq!(state_word(false, Some(0), None, Some(true)), "inhibited");
        assert_eq!(state_word(true, None, None, Some(false)), "no quorum");
        assert_eq!(state_word(true, None, None, Some(true)), "pending");
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
