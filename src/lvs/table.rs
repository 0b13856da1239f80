//! A plain IPVS table: services keyed like the kernel keys them, each with
//! its destinations. Both the desired table and the kernel's are this type,
//! so the diff compares like with like.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipvs_sys::{Dest, DestEntry, ForwardMethod, Service, ServiceEntry, ServiceFlags, ServiceKey};

/// A destination within a service: address and port.
pub type DestKey = (IpAddr, u16);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    pub service: Service,
    pub dests: BTreeMap<DestKey, Dest>,
    /// Only where the scheduler's mapping depends on it ([`keeps_order`]):
    /// the kernel's list of destinations, first entry first (the kernel puts
    /// an added destination in front), each with a weight: in a desired
    /// table the one to add it at, in a table read from the kernel its
    /// weight there. Empty otherwise, or when the kernel's order is unknown.
    pub order: Vec<(DestKey, u32)>,
}

impl VirtualService {
    pub fn new(service: Service) -> Self {
        VirtualService {
            service,
            dests: BTreeMap::new(),
            order: Vec::new(),
        }
    }
}

/// Whether a service's mapping depends on its destinations' list order:
/// the kernel's mh (ip_vs_mh.c) fills its lookup table walking that list,
/// each destination taking turns by its last non-zero weight (one added at
/// weight 0 takes none), so the same flows go to the same servers only
/// where the lists (and weights) are the same.
pub fn keeps_order(service: &Service) -> bool {
    service.sched_name == "mh"
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub services: BTreeMap<ServiceKey, VirtualService>,
}

impl Table {
    /// Number of entries (services plus destinations), e.g. for logs.
    pub fn entries(&self) -> usize {
        self.services.values().map(|s| 1 + s.dests.len()).sum()
    }
}

/// A service as the kernel reports it, with its destinations and counters.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelService {
    pub entry: ServiceEntry,
    pub dests: Vec<DestEntry>,
}

/// The kernel's IPVS table with counters, in the kernel's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelTable {
    pub services: Vec<KernelService>,
}

impl KernelTable {
    /// The table without counters, normalised for comparison with a desired one.
    pub fn to_table(&self) -> Table {
        let mut t = Table::default();
        for s in &self.services {
            let mut service = s.entry.service.clone();
            // The kernel reports its internal "hashed" bit; it is not configuration.
            service.flags = ServiceFlags(service.flags.0 & !ServiceFlags::HASHED.0);
            let mut vs = VirtualService::new(service);
            let ordered = keeps_order(&vs.service);
            for d in &s.dests {
                let mut dest = d.dest;
                // Tunnel attributes are reported for every dest; they matter only for TUN.
                if dest.fwd != ForwardMethod::Tunnel {
                    dest.tunnel = None;
                }
                vs.dests.insert((dest.addr, dest.port), dest);
                if ordered {
                    vs.order.push(((dest.addr, dest.port), dest.weight));
                }
            }
            t.services.insert(s.entry.service.key, vs);
        }
        t
    }
}
