//! Prometheus metrics, rendered from the daemon's reports (pure: the
//! reports in, Prometheus' text format out; `server` serves it).
//!
//! VRRP metrics carry the names and labels of mehdy/keepalived-exporter 1.7
//! (`keepalived_*`, labels `iname`, `intf`, `vrid`), so dashboards and
//! alerts written for it keep working; LVS metrics those of
//! gen2brain/keepalived_exporter (`lvs`); ours are under `ipvsdir_`.

pub mod lvs;
pub mod lvs_read;
pub mod server;

use prometheus::core::Collector;
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::check::engine::{DURATION_BOUNDS, StatsSnapshot};
use crate::daemon::status::HealthReport;
use crate::lvs::director::Override;
use crate::vrrp::status::VrrpReport;

/// What the daemon counts about itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DaemonStats {
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// How long the last configuration load took.
    pub last_load_seconds: f64,
}

/// keepalived's numbering of VRRP states (its JSON and the exporter's).
fn state_number(name: &str) -> f64 {
    match name {
        "BACKUP" => 1.0,
        "MASTER" => 2.0,
        "FAULT" => 3.0,
        _ => 0.0,
    }
}

/// Our drop reasons that keepalived counts too, under the exporter's names.
const KEEPALIVED_DROPS: &[(&str, &str, &str)] = &[
    (
        "packet_length",
        "keepalived_packet_length_errors_total",
        "Packet length errors",
    ),
    (
        "interval",
        "keepalived_advertisements_interval_errors_total",
        "Advertisement interval errors",
    ),
    ("ttl", "keepalived_ip_ttl_errors_total", "TTL errors"),
    (
        "invalid_type",
        "keepalived_invalid_type_received_total",
        "Invalid type errors",
    ),
    (
        "address_list",
        "keepalived_address_list_errors_total",
        "Address list errors",
    ),
    (
        "invalid_auth_type",
        "keepalived_authentication_invalid_total",
        "Authentication invalid",
    ),
    (
        "auth_type_mismatch",
        "keepalived_authentication_mismatch_total",
        "Authentication mismatch",
    ),
    (
        "auth_failure",
        "keepalived_authentication_failure_total",
        "Authentication failure",
    ),
];

const INSTANCE: &[&str] = &["iname", "intf", "vrid"];

/// A metric family registered under `name`; None (logged) if the registry
/// refuses it, which only a bug in the names here can cause.
fn register<C: Collector + Clone + 'static>(r: &Registry, c: prometheus::Result<C>) -> Option<C> {
    let c = c
        .and_then(|c| r.register(Box::new(c.clone())).map(|()| c))
        .map_err(|e| tracing::error!("metrics: {e}"))
        .ok()?;
    Some(c)
}

fn counters(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Option<IntCounterVec> {
    register(r, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauges(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Option<GaugeVec> {
    register(r, GaugeVec::new(Opts::new(name, help), labels))
}

fn count(c: &Option<IntCounterVec>, labels: &[&str], n: u64) {
    if let Some(c) = c {
        c.with_label_values(labels).inc_by(n);
    }
}

fn set(g: &Option<GaugeVec>, labels: &[&str], v: f64) {
    if let Some(g) = g {
        g.with_label_values(labels).set(v);
    }
}

fn vrrp_metrics(r: &Registry, v: &VrrpReport) {
    let state = gauges(
        r,
        "keepalived_vrrp_state",
        "State of vrrp (0 init, 1 backup, 2 master, 3 fault)",
        &["iname", "intf", "vrid", "ip_address"],
    );
    let rcvd = counters(
        r,
        "keepalived_advertisements_received_total",
        "Advertisements received",
        INSTANCE,
    );
    let sent = counters(
        r,
        "keepalived_advertisements_sent_total",
        "Advertisements sent",
        INSTANCE,
    );
    let drops: Vec<(&str, Option<IntCounterVec>)> = KEEPALIVED_DROPS
        .iter()
        .map(|(reason, name, help)| (*reason, counters(r, name, help, INSTANCE)))
        .collect();
    let became = counters(
        r,
        "keepalived_become_master_total",
        "Became master",
        INSTANCE,
    );
    let released = counters(
        r,
        "keepalived_release_master_total",
        "Released master",
        INSTANCE,
    );
    let p0_rcvd = counters(
        r,
        "keepalived_priority_zero_received_total",
        "Priority zero received",
        INSTANCE,
    );
    let p0_sent = counters(
        r,
        "keepalived_priority_zero_sent_total",
        "Priority zero sent",
        INSTANCE,
    );
    let garp = counters(
        r,
        "keepalived_gratuitous_arp_delay_total",
        "Gratuitous ARP delay",
        INSTANCE,
    );
    let scripts = gauges(
        r,
        "keepalived_script_status",
        "Tracker Script Status (0 BAD, 1 GOOD)",
        &["name"],
    );
    let script_states = gauges(
        r,
        "keepalived_script_state",
        "Tracker Script State (0 idle, 1 running)",
        &["name"],
    );
    let prio = gauges(r, "ipvsdir_vrrp_priority", "Configured priority", INSTANCE);
    let eff = gauges(
        r,
        "ipvsdir_vrrp_effective_priority",
        "Priority after trackers",
        INSTANCE,
    );
    let late = counters(
        r,
        "ipvsdir_vrrp_late_adverts_total",
        "Adverts we sent late",
        INSTANCE,
    );
    let dropped = counters(
        r,
        "ipvsdir_vrrp_dropped_total",
        "Adverts dropped, per reason",
        &["iname", "intf", "vrid", "reason"],
    );
    let unmatched = counters(
        r,
        "ipvsdir_vrrp_unmatched_dropped_total",
        "Adverts dropped before an instance could be named, per reason",
        &["reason"],
    );
    for i in &v.instances {
        let vrid = i.vrid.to_string();
        let l = [i.name.as_str(), i.interface.as_str(), vrid.as_str()];
        let n = state_number(&i.state);
        for vip in &i.vips {
            let addr = vip.split('/').next().unwrap_or(vip);
            set(&state, &[l[0], l[1], l[2], addr], n);
        }
        if i.vips.is_empty() {
            set(&state, &[l[0], l[1], l[2], ""], n);
        }
        count(&rcvd, &l, i.adverts_received);
        count(&sent, &l, i.adverts_sent);
        count(&became, &l, i.became_master);
        count(&released, &l, i.released_master);
        count(&p0_rcvd, &l, i.priority_zero_received);
        count(&p0_sent, &l, i.priority_zero_sent);
        // keepalived.data's "Gratuitous ARP delay": garp_master_delay in seconds.
        count(&garp, &l, i.garp_master_delay.round() as u64);
        for (reason, c) in &drops {
            count(c, &l, i.dropped.get(*reason).copied().unwrap_or(0));
        }
        set(&prio, &l, f64::from(i.priority));
        set(&eff, &l, f64::from(i.effective_priority));
        count(&late, &l, i.late_adverts);
        for (reason, n) in &i.dropped {
            count(&dropped, &[l[0], l[1], l[2], reason], *n);
        }
    }
    for (reason, n) in &v.unmatched_drops {
        count(&unmatched, &[reason], *n);
    }
    for sc in &v.scripts {
        set(
            &scripts,
            &[&sc.name],
            if sc.status == "GOOD" { 1.0 } else { 0.0 },
        );
        // keepalived-exporter's numbering: idle, running, requested
        // termination, forcing termination (we report the first two).
        set(
            &script_states,
            &[&sc.name],
            if sc.state == "running" { 1.0 } else { 0.0 },
        );
    }
}

fn health_metrics(r: &Registry, h: &HealthReport) {
    let rs = ["service", "real_server"];
    let check = ["service", "real_server", "check", "index"];
    let up = gauges(
        r,
        "ipvsdir_real_server_up",
        "1 while the real server's checkers say up",
        &rs,
    );
    let check_up = gauges(r, "ipvsdir_check_up", "1 while the checker says up", &check);
    let since = gauges(
        r,
        "ipvsdir_check_state_since_seconds",
        "Unix time of the checker's last change",
        &check,
    );
    let state = gauges(
        r,
        "ipvsdir_real_server_state",
        "1 for the real server's state: up, down, inhibited, draining, disabled, no quorum, pending",
        &["service", "real_server", "state"],
    );
    let operator = gauges(
        r,
        "ipvsdir_real_server_operator_override",
        "1 while an operator's override (drain, disable, weight) holds",
        &["service", "real_server", "override"],
    );
    let quorum = gauges(
        r,
        "ipvsdir_virtual_server_quorum_held",
        "1 while the virtual server holds its quorum",
        &["service"],
    );
    for v in &h.virtual_servers {
        for svc in &v.services {
            if let Some(held) = v.quorum_held {
                set(&quorum, &[svc], if held { 1.0 } else { 0.0 });
            }
        }
    }
    if !h.announced.is_empty() {
        let announced = gauges(
            r,
            "ipvsdir_vip_announced",
            "1 while the VIP is announced (a route in the announce_table for the routing daemon)",
            &["vip"],
        );
        let why = gauges(
            r,
            "ipvsdir_vip_announce_reason_info",
            "1 per VIP with announce: why it is announced or not",
            &["vip", "reason"],
        );
        let drained = gauges(
            r,
            "ipvsdir_vip_announce_drained",
            "1 while the VIP is announced with announce_drain_metric (routers prefer other directors)",
            &["vip"],
        );
        for a in &h.announced {
            let vip = a.vip.to_string();
            set(&announced, &[&vip], if a.announced { 1.0 } else { 0.0 });
            set(&why, &[&vip, &a.why], 1.0);
            set(&drained, &[&vip], if a.drained { 1.0 } else { 0.0 });
        }
        if let Some(d) = &h.drain {
            let info = gauges(
                r,
                "ipvsdir_director_drain_info",
                "1 while the director is drained (ctl drain-director, or the stop): stage draining or withdrawn",
                &["stage", "by", "reason"],
            );
            set(&info, &[&d.stage, &d.by, &d.why], 1.0);
        }
    }
    let reason = gauges(
        r,
        "ipvsdir_real_server_down_reason_info",
        "1 per failing check of a down real server, with its last result",
        &["service", "real_server", "reason"],
    );
    for (v, s) in h.servers() {
        for svc in &v.services {
            set(&up, &[svc, &s.real_server], if s.up { 1.0 } else { 0.0 });
            for why in &s.reasons {
                set(&reason, &[svc, &s.real_server, why], 1.0);
            }
            set(&state, &[svc, &s.real_server, &s.state], 1.0);
            if let Some(o) = s.operator {
                let name = match o {
                    Override::Drain => "drain",
                    Override::Disable => "disable",
                    Override::Weight(_) => "weight",
                    Override::Clear => "none",
                };
                set(&operator, &[svc, &s.real_server, name], 1.0);
            }
            for (n, c) in s.checks.iter().enumerate() {
                let n = n.to_string();
                let l = [
                    svc.as_ref(),
                    s.real_server.as_str(),
                    c.kind.as_str(),
                    n.as_str(),
                ];
                set(&check_up, &l, if c.up { 1.0 } else { 0.0 });
                set(&since, &l, c.since);
            }
        }
    }
}

fn daemon_metrics(r: &Registry, d: &DaemonStats) {
    // Whoever reads this, reads it from a running daemon.
    set(
        &gauges(r, "keepalived_up", "Status (1: the daemon answers)", &[]),
        &[],
        1.0,
    );
    let build = gauges(r, "ipvsdir_build_info", "The running build", &["version"]);
    set(&build, &[env!("CARGO_PKG_VERSION")], 1.0);
    let reloads = counters(
        r,
        "ipvsdir_reloads_total",
        "Reloads (SIGHUP), per result",
        &["result"],
    );
    count(&reloads, &["ok"], d.reloads_ok);
    count(&reloads, &["failed"], d.reloads_failed);
    let load = gauges(
        r,
        "ipvsdir_config_load_seconds",
        "How long the last configuration load took",
        &[],
    );
    set(&load, &[], d.last_load_seconds);
}

/// The probes' counters and duration histogram. The histogram is built from
/// the engine's own buckets (its probes count as they run; nothing is
/// observed here), hence by hand.
fn check_metrics(c: &StatsSnapshot) -> Vec<MetricFamily> {
    let r = Registry::new();
    let total = counters(
        &r,
        "ipvsdir_checks_total",
        "Probes made, per result (rate() gives checks per second)",
        &["result"],
    );
    count(&total, &["ok"], c.probes - c.failed.min(c.probes));
    count(&total, &["failed"], c.failed);
    let local = counters(
        &r,
        "ipvsdir_checks_not_started_total",
        "Probes that could not start for a reason on this host (descriptors, memory)",
        &[],
    );
    count(&local, &[], c.local);
    let mut families = r.gather();
    families.push(histogram_family(
        "ipvsdir_check_duration_seconds",
        "How long probes took",
        vec![histogram(
            &[],
            &DURATION_BOUNDS,
            &c.durations,
            c.duration_sum.as_secs_f64(),
        )],
    ));
    families
}

/// One histogram from counts kept per bucket (not cumulative; the last one
/// is +Inf) under `bounds`, with its labels.
fn histogram(labels: &[(&str, &str)], bounds: &[f64], counts: &[u64], sum: f64) -> Metric {
    let mut h = Histogram::default();
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(bounds.len());
    for (bound, n) in bounds.iter().zip(counts) {
        cumulative += n;
        let mut b = Bucket::default();
        b.set_upper_bound(*bound);
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    h.set_bucket(buckets);
    h.set_sample_count(counts.iter().sum());
    h.set_sample_sum(sum);
    let mut m = Metric::default();
    m.set_label(
        labels
            .iter()
            .map(|(k, v)| {
                let mut l = LabelPair::default();
                l.set_name((*k).into());
                l.set_value((*v).into());
                l
            })
            .collect(),
    );
    m.set_histogram(h);
    m
}

/// A histogram family built by hand (the counts come from our own
/// buckets: nothing is observed here).
fn histogram_family(name: &str, help: &str, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(MetricType::HISTOGRAM);
    f.set_metric(metrics);
    f
}

/// Per instance: the master's silence before each takeover from BACKUP.
fn takeover_metrics(v: &VrrpReport) -> MetricFamily {
    let metrics = v
        .instances
        .iter()
        .map(|i| {
            let vrid = i.vrid.to_string();
            let t = &i.takeovers;
            let labels = [
                ("iname", i.name.as_str()),
                ("intf", i.interface.as_str()),
                ("vrid", vrid.as_str()),
            ];
            histogram(&labels, &t.bounds, &t.counts, t.seconds_sum)
        })
        .collect();
    histogram_family(
        "ipvsdir_vrrp_takeover_silence_seconds",
        "Takeovers from BACKUP: time from the last advert heard from the master (priority 0 included) to entering MASTER",
        metrics,
    )
}

/// The metrics in Prometheus' text format (version 0.0.4).
pub fn render(
    vrrp: Option<&VrrpReport>,
    health: Option<&HealthReport>,
    checks: Option<&StatsSnapshot>,
    daemon: &DaemonStats,
) -> String {
    render_with_lvs(vrrp, health, checks, daemon, &lvs::LvsView::default())
}

/// [`render`] plus the LVS metrics ([`lvs`]).
pub fn render_with_lvs(
    vrrp: Option<&VrrpReport>,
    health: Option<&HealthReport>,
    checks: Option<&StatsSnapshot>,
    daemon: &DaemonStats,
    lvs: &lvs::LvsView<'_>,
) -> String {
    let r = Registry::new();
    daemon_metrics(&r, daemon);
    if let Some(v) = vrrp {
        vrrp_metrics(&r, v);
    }
    if let Some(h) = health {
        health_metrics(&r, h);
    }
    let mut families = r.gather();
    if let Some(v) = vrrp.filter(|v| !v.instances.is_empty()) {
        families.push(takeover_metrics(v));
    }
    if let Some(c) = checks.filter(|_| health.is_some()) {
        families.extend(check_metrics(c));
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!("metrics: {e}");
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    lvs::write_lvs(&mut text, lvs);
    text
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
