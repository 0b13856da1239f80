//! The LVS metrics, from the kernel's IPVS table with its counters (pure:
//! a table in, metric families out as Prometheus text; `lvs_read` reads
//! the table at scrape time).
//!
//! `keepalived_lvs_*` carry the names, types and labels of
//! gen2brain/keepalived_exporter, which reads the same kernel counters, so
//! dashboards written for it keep working: per virtual service
//! `{addr="10.0.0.1:80",proto="6"}`, per real server
//! `{vip="10.0.0.1:80",addr="10.0.0.11:80",proto="6"}`; addresses as Go
//! prints them (IPv6 without brackets, IPv4-mapped as IPv4), the protocol
//! as its number. Firewall-mark services, which the exporter cannot name,
//! get `addr="FWM 7"` (`"FWM 7 IPv6"`) and `proto="0"`.
//! Every service in the kernel's table is exported, ipvsdir's or not.
//!
//! Ours (`ipvsdir_*`, labelled like `ipvsdir_real_server_up`: `service`,
//! `real_server`): the weight configured and the weight live in the
//! kernel, active and inactive connections; whether the read succeeded
//! and the IPVS netlink errors so far.

use std::fmt::Write;
use std::net::IpAddr;

use ipvs_sys::{Family, ServiceKey, Stats};

use crate::config::model::Config;
use crate::lvs::desired::service_keys;
use crate::lvs::format::addr_port;
use crate::lvs::table::KernelTable;

/// One real server's weight as the configuration gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredWeight {
    /// `TCP 10.0.0.1:80`, as in the health report.
    pub service: String,
    /// `10.0.0.11:80`
    pub real_server: String,
    pub weight: u32,
}

/// The configured weight of every real server of every kernel service the
/// configuration asks for (a virtual_server_group gives several services).
pub fn configured_weights(config: &Config) -> Vec<ConfiguredWeight> {
    let mut out = Vec::new();
    for vs in &config.virtual_servers {
        for key in service_keys(config, vs) {
            let service = key.to_string();
            for rs in &vs.real_servers {
                out.push(ConfiguredWeight {
                    service: service.clone(),
                    real_server: addr_port(rs.addr, rs.port),
                    weight: rs.weight,
                });
            }
        }
    }
    out
}

/// What one scrape knows about LVS.
#[derive(Debug, Clone, Default)]
pub struct LvsView<'a> {
    /// The kernel's table: None when it was not read (`--no-ipvs`, VRRP
    /// only), `Some(None)` when the read failed.
    pub kernel: Option<Option<&'a KernelTable>>,
    pub configured: &'a [ConfiguredWeight],
    /// Failed IPVS netlink requests so far (shown when the kernel is read).
    pub netlink_errors: u64,
}

/// An address as Go's `net.IP.String()` prints it (the exporter's labels).
fn go_ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => a.to_string(),
        },
        IpAddr::V4(a) => a.to_string(),
    }
}

/// The exporter's `addr` (service) and `proto` labels.
fn vip_labels(key: &ServiceKey) -> (String, String) {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (
            format!("{}:{port}", go_ip(*addr)),
            protocol.to_raw().to_string(),
        ),
        ServiceKey::Fwmark { family, mark } => (
            match family {
                Family::Inet => format!("FWM {mark}"),
                Family::Inet6 => format!("FWM {mark} IPv6"),
            },
            "0".into(),
        ),
    }
}

/// A label value escaped for the text format.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

/// The text of one metric family: its HELP and TYPE lines, then
/// `name{labels} value` per sample (`labels` already written out).
fn family<'a, I>(out: &mut String, name: &str, kind: &str, help: &str, samples: I)
where
    I: IntoIterator<Item = (&'a str, u64)>,
{
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// One kernel service with its label texts, computed once per scrape.
struct ServiceRows<'a> {
    stats: Option<Stats>,
    /// `addr="10.0.0.1:80",proto="6"`
    vip: String,
    dests: Vec<DestRow<'a>>,
}

struct DestRow<'a> {
    entry: &'a ipvs_sys::DestEntry,
    stats: Option<Stats>,
    /// `addr="10.0.0.11:80",proto="6",vip="10.0.0.1:80"`
    exporter: String,
    /// `real_server="10.0.0.11:80",service="TCP 10.0.0.1:80"`
    ours: String,
}

fn rows(t: &KernelTable) -> Vec<ServiceRows<'_>> {
    t.services
        .iter()
        .map(|s| {
            let key = &s.entry.service.key;
            let (addr, proto) = vip_labels(key);
            let (addr, proto) = (escape(&addr), escape(&proto));
            let service = key.to_string();
            let service = escape(&service);
            let dests = s
                .dests
                .iter()
                .map(|d| {
                    let rs = format!("{}:{}", go_ip(d.dest.addr), d.dest.port);
                    let real_server = addr_port(d.dest.addr, d.dest.port);
                    DestRow {
                        entry: d,
                        stats: d.best_stats(),
                        exporter: format!(r#"addr="{}",proto="{proto}",vip="{addr}""#, escape(&rs)),
                        ours: format!(
                            r#"real_server="{}",service="{service}""#,
                            escape(&real_server)
                        ),
                    }
                })
                .collect();
            ServiceRows {
                stats: s.entry.best_stats(),
                vip: format!(r#"addr="{addr}",proto="{proto}""#),
                dests,
            }
        })
        .collect()
}

/// One of a [`Stats`]' counters.
type Field = fn(&Stats) -> u64;

/// The exporter's five counters: (name suffix, help suffix, field).
const COUNTERS: &[(&str, &str, Field)] = &[
    ("in_packets", "in packets", |s| s.inpkts),
    ("out_packets", "out packets", |s| s.outpkts),
    ("in_bytes", "in bytes", |s| s.inbytes),
    ("out_bytes", "out bytes", |s| s.outbytes),
    ("conn", "connections", |s| s.conns),
];

/// Appends the LVS metrics of `view` to `out`, in Prometheus' text format.
///
/// Written directly rather than through a `prometheus::Registry`: a
/// 20,000-real-server table gives some 200,000 samples, and the registry's
/// per-sample hashing and sorting took about 1 s of the scrape for them.
pub fn write_lvs(out: &mut String, view: &LvsView<'_>) {
    let rows = view.kernel.flatten().map(rows).unwrap_or_default();
    let dests = || rows.iter().flat_map(|s| s.dests.iter());
    for (name, help, field) in COUNTERS {
        family(
            out,
            &format!("keepalived_lvs_vip_{name}"),
            "counter",
            &format!("VIP {help}"),
            rows.iter()
                .filter_map(|s| Some((s.vip.as_str(), field(s.stats.as_ref()?)))),
        );
        family(
            out,
            &format!("keepalived_lvs_rs_{name}"),
            "counter",
            &format!("RS {help}"),
            dests().filter_map(|d| Some((d.exporter.as_str(), field(d.stats.as_ref()?)))),
        );
    }
    let configured: Vec<String> = view
        .configured
        .iter()
        .map(|c| {
            format!(
                r#"kind="configured",real_server="{}",service="{}""#,
                escape(&c.real_server),
                escape(&c.service)
            )
        })
        .collect();
    let live: Vec<String> = dests()
        .map(|d| format!(r#"kind="live",{}"#, d.ours))
        .collect();
    family(
        out,
        "ipvsdir_real_server_weight",
        "gauge",
        "Real server weight: configured (the file) or live (the kernel's table)",
        configured
            .iter()
            .zip(view.configured)
            .map(|(l, c)| (l.as_str(), u64::from(c.weight)))
            .chain(
                live.iter()
                    .zip(dests())
                    .map(|(l, d)| (l.as_str(), u64::from(d.entry.dest.weight))),
            ),
    );
    family(
        out,
        "ipvsdir_real_server_active_connections",
        "gauge",
        "Active connections (ipvsadm's ActiveConn)",
        dests().map(|d| (d.ours.as_str(), u64::from(d.entry.active_conns))),
    );
    family(
        out,
        "ipvsdir_real_server_inactive_connections",
        "gauge",
        "Inactive connections (ipvsadm's InActConn)",
        dests().map(|d| (d.ours.as_str(), u64::from(d.entry.inact_conns))),
    );
    if let Some(read) = view.kernel {
        family(
            out,
            "ipvsdir_lvs_read_ok",
            "gauge",
            "1 when this scrape read the kernel's IPVS table, 0 when the read failed",
            [("", u64::from(read.is_some()))],
        );
        family(
            out,
            "ipvsdir_netlink_errors_total",
            "counter",
            "Netlink requests that failed or the kernel refused",
            [(r#"family="ipvs""#, view.netlink_errors)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_empty_families_left_out() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
        let mut out = String::new();
        family(&mut out, "x", "gauge", "h", std::iter::empty());
        assert!(out.is_empty());
        family(&mut out, "x", "gauge", "h", [("", 1), (r#"k="v""#, 2)]);
        assert_eq!(out, "# HELP x h\n# TYPE x gauge\nx 1\nx{k=\"v\"} 2\n");
    }

    #[test]
    fn addresses_print_as_go_prints_them() {
        assert_eq!(go_ip("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(go_ip("2001:db8::1".parse().unwrap()), "2001:db8::1");
        let fwm6 = ServiceKey::Fwmark {
            family: Family::Inet6,
            mark: 9,
        };
        assert_eq!(vip_labels(&fwm6), ("FWM 9 IPv6".into(), "0".into()));
    }
}
