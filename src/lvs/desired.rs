//! `desired(config, health) -> Table`: what the kernel's IPVS table should
//! hold given the configuration and what the checkers say. Pure: no I/O,
//! no clock; the quorum memory (for hysteresis) is passed in and out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs_sys::{
    Dest, Family, ForwardMethod as Fwd, Netmask, Protocol, Service, ServiceFlags, ServiceKey,
    Tunnel, TunnelType as IpvsTunnel,
};

use super::table::{Table, VirtualService, keeps_order};
use crate::config::model::{
    self, Config, ForwardMethod, GroupEntry, RealServer, TunnelChecksum, TunnelType, VirtualServer,
    VirtualServerKey,
};

/// What the checkers say about one real server of one virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsHealth {
    pub alive: bool,
    /// A weight set by a checker (MISC_CHECK's misc_dynamic), else the configured one.
    pub weight: Option<u32>,
}

/// The health view `desired` reads.
pub trait Health {
    fn real_server(&self, vs: &VirtualServer, rs: &RealServer) -> RsHealth;
}

/// Every real server alive at its configured weight (`--plan`, `--apply-once`).
pub struct AllAlive;

impl Health for AllAlive {
    fn real_server(&self, _: &VirtualServer, _: &RealServer) -> RsHealth {
        RsHealth {
            alive: true,
            weight: None,
        }
    }
}

/// Every real server down: what `alpha` means before the first check.
pub struct AllDown;

impl Health for AllDown {
    fn real_server(&self, _: &VirtualServer, _: &RealServer) -> RsHealth {
        RsHealth {
            alive: false,
            weight: None,
        }
    }
}

/// Whether each virtual server held its quorum last time (for hysteresis).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumMemory(crate::FastMap<(VirtualServerKey, model::Protocol), bool>);

impl QuorumMemory {
    pub fn held(&self, vs: &VirtualServer) -> Option<bool> {
        self.0.get(&(vs.key.clone(), vs.protocol)).copied()
    }

    /// A virtual server the configuration dropped: added back later, its
    /// first verdict is a start's again.
    pub fn forget(&mut self, vs: &VirtualServer) {
        self.0.remove(&(vs.key.clone(), vs.protocol));
    }
}

/// keepalived 2.2.7's rule: quorum is gained at `quorum + hysteresis` live
/// weight (also the first decision, as its start-up decides) and lost below
/// `quorum - hysteresis`, or when no live weight is left at all.
pub fn quorum_held(vs: &VirtualServer, live_weight: u64, previously: Option<bool>) -> bool {
    let q = u64::from(vs.quorum);
    let h = u64::from(vs.hysteresis);
    match previously {
        Some(true) => live_weight > 0 && live_weight >= q.saturating_sub(h),
        None | Some(false) => live_weight >= q + h,
    }
}

pub fn desired(config: &Config, health: &dyn Health, quorum: &mut QuorumMemory) -> Table {
    let mut table = Table::default();
    for vs in &config.virtual_servers {
        table
            .services
            .extend(vs_services(config, vs, health, quorum));
    }
    table
}

/// The IPVS services of one virtual_server (a group gives several), with
/// their destinations: the part of [`desired`] one virtual server decides.
pub fn vs_services(
    config: &Config,
    vs: &VirtualServer,
    health: &dyn Health,
    quorum: &mut QuorumMemory,
) -> Vec<(ServiceKey, VirtualService)> {
    let dests = dests_of(vs, health, quorum);
    service_keys(config, vs)
        .into_iter()
        .map(|key| {
            let mut svc = VirtualService::new(service(vs, key));
            let ordered = keeps_order(&svc.service);
            for (d, add_weight) in &dests {
                let port = kernel_port(&key, d.fwd == Fwd::Masq, d.port);
                let d = Dest { port, ..*d };
                // Real servers that differ only by port are one destination
                // under a DR/TUN group entry (config warns): the heavier,
                // so a live one is never hidden by a dead one at weight 0.
                match svc.dests.entry((d.addr, port)) {
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        if d.weight > e.get().weight {
                            e.insert(d);
                        }
                    }
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(d);
                        if ordered {
                            svc.order.push(((d.addr, port), *add_weight));
                        }
                    }
                }
            }
            // Added in file order, as keepalived adds them: each goes in
            // front, so the kernel's list is the file's order reversed.
            svc.order.reverse();
            (key, svc)
        })
        .collect()
}

/// A destination's port in the kernel under service `key`, as keepalived
/// sets it: NAT keeps the real server's port; with DR and TUN (the kernel
/// does not rewrite ports) it is the service's, 0 under a fwmark. Outside
/// groups the configuration already says so (see config::build::lvs).
pub fn kernel_port(key: &ServiceKey, nat: bool, port: u16) -> u16 {
    match key {
        _ if nat => port,
        ServiceKey::Addr { port, .. } => *port,
        ServiceKey::Fwmark { .. } => 0,
    }
}

/// The IPVS services a virtual_server stands for (a group expands to many).
pub fn service_keys(config: &Config, vs: &VirtualServer) -> Vec<ServiceKey> {
    let protocol = protocol(vs.protocol);
    match &vs.key {
        VirtualServerKey::Addr { addr, port } => vec![ServiceKey::Addr {
            protocol,
            addr: *addr,
            port: *port,
        }],
        VirtualServerKey::Fwmark { mark, family } => vec![ServiceKey::Fwmark {
            family: ipvs_family(*family),
            mark: *mark,
        }],
        VirtualServerKey::Group { name } => {
            let Some(group) = config
                .virtual_server_groups
                .iter()
                .find(|g| &g.name == name)
            else {
                return Vec::new();
            };
            let mut keys = Vec::new();
            for entry in &group.entries {
                match entry {
                    GroupEntry::Range { first, last, port } => {
                        keys.extend(address_range(*first, *last).map(|addr| ServiceKey::Addr {
                            protocol,
                            addr,
                            port: *port,
                        }))
                    }
                    GroupEntry::Fwmark { mark, family } => keys.push(ServiceKey::Fwmark {
                        family: ipvs_family(*family),
                        mark: *mark,
                    }),
                }
            }
            keys
        }
    }
}

/// `first..=last`, where the two differ only in the last octet (v4) or group (v6).
pub(crate) fn address_range(first: IpAddr, last: IpAddr) -> impl Iterator<Item = IpAddr> {
    let (lo, hi, v6) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), false)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), true),
        _ => (1, 0, false),
    };
    (lo..=hi).map(move |n| {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        }
    })
}

fn protocol(p: model::Protocol) -> Protocol {
    match p {
        model::Protocol::Tcp => Protocol::Tcp,
        model::Protocol::Udp => Protocol::Udp,
        model::Protocol::Sctp => Protocol::Sctp,
    }
}

fn ipvs_family(f: model::Family) -> Family {
    match f {
        model::Family::Inet => Family::Inet,
        model::Family::Inet6 => Family::Inet6,
    }
}

fn key_is_v6(key: &ServiceKey) -> bool {
    match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { family, .. } => *family == Family::Inet6,
    }
}

fn service(vs: &VirtualServer, key: ServiceKey) -> Service {
    let mut flags = ServiceFlags::NONE;
    if vs.persistence.is_some() {
        flags |= ServiceFlags::PERSISTENT;
    }
    if vs.ops {
        flags |= ServiceFlags::ONEPACKET;
    }
    if vs.sched_flags.flag_1 {
        flags |= ServiceFlags::SCHED1;
    }
    if vs.sched_flags.flag_2 {
        flags |= ServiceFlags::SCHED2;
    }
    if vs.sched_flags.flag_3 {
        flags |= ServiceFlags::SCHED3;
    }
    let granularity = vs.persistence.as_ref().and_then(|p| p.granularity);
    let netmask = if key_is_v6(&key) {
        let prefix = match granularity {
            Some(IpAddr::V6(m)) => u128::from(m).leading_ones() as u8,
            _ => 128,
        };
        Netmask::V6Prefix(prefix)
    } else {
        match granularity {
            Some(IpAddr::V4(m)) => Netmask::V4(m),
            _ => Netmask::V4(Ipv4Addr::BROADCAST),
        }
    };
    Service {
        key,
        sched_name: vs.scheduler.name().to_string(),
        flags,
        timeout: vs.persistence.as_ref().map_or(0, |p| p.timeout),
        netmask,
        pe_name: vs.persistence_engine.clone(),
    }
}

fn dest(
    addr: IpAddr,
    port: u16,
    method: ForwardMethod,
    weight: u32,
    rs: Option<&RealServer>,
) -> Dest {
    let (fwd, tunnel) = match method {
        ForwardMethod::Nat => (Fwd::Masq, None),
        ForwardMethod::Dr => (Fwd::Route, None),
        ForwardMethod::Tun { tunnel, checksum } => {
            let (kind, port) = match tunnel {
                TunnelType::Ipip => (IpvsTunnel::Ipip, 0),
                TunnelType::Gue { port } => (IpvsTunnel::Gue, port),
                TunnelType::Gre => (IpvsTunnel::Gre, 0),
            };
            let flags = match checksum {
                None | Some(TunnelChecksum::Nocsum) => 0,
                Some(TunnelChecksum::Csum) => 1,
                Some(TunnelChecksum::Remcsum) => 2,
            };
            (Fwd::Tunnel, Some(Tunnel { kind, port, flags }))
        }
    };
    Dest {
        addr,
        port,
        fwd,
        weight,
        u_thresh: rs.map_or(0, |r| r.uthreshold),
        l_thresh: rs.map_or(0, |r| r.lthreshold),
        tunnel,
    }
}

/// The weight of a virtual server's live real servers (what quorum is
/// judged on).
pub fn live_weight(vs: &VirtualServer, health: &dyn Health) -> u64 {
    vs.real_servers
        .iter()
        .map(|rs| (rs, health.real_server(vs, rs)))
        .filter(|(_, h)| h.alive)
        .map(|(rs, h)| u64::from(h.weight.unwrap_or(rs.weight)))
        .sum()
}

/// Whether a failed real server keeps its place in the table at weight 0
/// rather than leaving it: with `inhibit_on_failure`, and under mh with
/// `mh-fallback`, where the kernel still counts it in the lookup table (by
/// its last non-zero weight) and sends its flows to the fallback: only its
/// own flows move, and every director maps the others alike whatever its
/// failure history. (Without mh-fallback a weight-0 server's flows would be
/// dropped, so it leaves.)
pub fn keeps_failed(vs: &VirtualServer, rs: &RealServer) -> bool {
    rs.inhibit_on_failure || (vs.scheduler == model::Scheduler::Mh && vs.sched_flags.flag_1)
}

/// The destinations of one virtual server, with quorum and sorry_server
/// applied, in file order, each with the weight to add it at (under mh, a
/// destination wanted at weight 0 is added at its configured weight, as it
/// counts on a director that saw it fail).
fn dests_of(
    vs: &VirtualServer,
    health: &dyn Health,
    quorum: &mut QuorumMemory,
) -> Vec<(Dest, u32)> {
    let mut out = Vec::new();
    let mut live_weight: u64 = 0;
    for rs in &vs.real_servers {
        let h = health.real_server(vs, rs);
        let weight = h.weight.unwrap_or(rs.weight);
        if h.alive {
            live_weight += u64::from(weight);
            let add = if weight > 0 { weight } else { rs.weight };
            out.push((dest(rs.addr, rs.port, rs.method, weight, Some(rs)), add));
        } else if keeps_failed(vs, rs) {
            out.push((dest(rs.addr, rs.port, rs.method, 0, Some(rs)), rs.weight));
        }
    }
    let slot = (vs.key.clone(), vs.protocol);
    let held = quorum_held(vs, live_weight, quorum.0.get(&slot).copied());
    quorum.0.insert(slot, held);
    if let Some(sorry) = &vs.sorry_server {
        if !held {
            // keepalived: without quorum every real server goes, the sorry server stands in.
            out.clear();
            out.push((dest(sorry.addr, sorry.port, sorry.method, 1, None), 1));
        } else if sorry.inhibit {
            out.push((dest(sorry.addr, sorry.port, sorry.method, 0, None), 0));
        }
    }
    out
}
