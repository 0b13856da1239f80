//! The LVS metrics, from the kernel's IPVS table with its counters (pure:
//! a table in, metric families out; `lvs_read` reads the table at scrape
//! time).
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

use std::net::IpAddr;

use ipvs_sys::{Family, ServiceKey, Stats};
use prometheus::{GaugeVec, Registry};

use super::{count, counters, gauges, set};
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

/// The exporter's five counters of one kind (`vip` or `rs`).
struct Five {
    in_packets: Option<prometheus::IntCounterVec>,
    out_packets: Option<prometheus::IntCounterVec>,
    in_bytes: Option<prometheus::IntCounterVec>,
    out_bytes: Option<prometheus::IntCounterVec>,
    conn: Option<prometheus::IntCounterVec>,
}

impl Five {
    fn new(r: &Registry, kind: &str, what: &str, labels: &[&str]) -> Five {
        let c = |name: &str, help: &str| {
            counters(
                r,
                &format!("keepalived_lvs_{kind}_{name}"),
                &format!("{what} {help}"),
                labels,
            )
        };
        Five {
            in_packets: c("in_packets", "in packets"),
            out_packets: c("out_packets", "out packets"),
            in_bytes: c("in_bytes", "in bytes"),
            out_bytes: c("out_bytes", "out bytes"),
            conn: c("conn", "connections"),
        }
    }

    fn add(&self, labels: &[&str], s: &Stats) {
        count(&self.in_packets, labels, s.inpkts);
        count(&self.out_packets, labels, s.outpkts);
        count(&self.in_bytes, labels, s.inbytes);
        count(&self.out_bytes, labels, s.outbytes);
        count(&self.conn, labels, s.conns);
    }
}

fn kernel_metrics(r: &Registry, t: &KernelTable, weight: &Option<GaugeVec>) {
    let vip = Five::new(r, "vip", "VIP", &["addr", "proto"]);
    let rs = Five::new(r, "rs", "RS", &["vip", "addr", "proto"]);
    let ours = ["service", "real_server"];
    let active = gauges(
        r,
        "ipvsdir_real_server_active_connections",
        "Active connections (ipvsadm's ActiveConn)",
        &ours,
    );
    let inactive = gauges(
        r,
        "ipvsdir_real_server_inactive_connections",
        "Inactive connections (ipvsadm's InActConn)",
        &ours,
    );
    for s in &t.services {
        let key = &s.entry.service.key;
        let (addr, proto) = vip_labels(key);
        if let Some(st) = s.entry.best_stats() {
            vip.add(&[&addr, &proto], &st);
        }
        let service = key.to_string();
        for d in &s.dests {
            let rs_addr = format!("{}:{}", go_ip(d.dest.addr), d.dest.port);
            if let Some(st) = d.best_stats() {
                rs.add(&[&addr, &rs_addr, &proto], &st);
            }
            let real_server = addr_port(d.dest.addr, d.dest.port);
            let l = [service.as_str(), real_server.as_str()];
            set(weight, &[l[0], l[1], "live"], f64::from(d.dest.weight));
            set(&active, &l, f64::from(d.active_conns));
            set(&inactive, &l, f64::from(d.inact_conns));
        }
    }
}

/// Registers the LVS metrics of `view` in `r`.
pub fn lvs_metrics(r: &Registry, view: &LvsView<'_>) {
    let table = view.kernel.flatten();
    let weight = if table.is_some() || !view.configured.is_empty() {
        gauges(
            r,
            "ipvsdir_real_server_weight",
            "Real server weight: configured (the file) or live (the kernel's table)",
            &["service", "real_server", "kind"],
        )
    } else {
        None
    };
    for c in view.configured {
        set(
            &weight,
            &[&c.service, &c.real_server, "configured"],
            f64::from(c.weight),
        );
    }
    if let Some(read) = view.kernel {
        let ok = gauges(
            r,
            "ipvsdir_lvs_read_ok",
            "1 when this scrape read the kernel's IPVS table, 0 when the read failed",
            &[],
        );
        set(&ok, &[], if read.is_some() { 1.0 } else { 0.0 });
        let errors = counters(
            r,
            "ipvsdir_netlink_errors_total",
            "Netlink requests that failed or the kernel refused",
            &["family"],
        );
        count(&errors, &["ipvs"], view.netlink_errors);
    }
    if let Some(t) = table {
        kernel_metrics(r, t, &weight);
    }
}
