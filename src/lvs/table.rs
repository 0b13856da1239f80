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
}

impl VirtualService {
    pub fn new(service: Service) -> Self {
        VirtualService {
            service,
            dests: BTreeMap::new(),
        }
    }
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
            for d in &s.dests {
                let mut dest = d.dest;
                // Tunnel attributes are reported for every dest; they matter only for TUN.
                if dest.fwd != ForwardMethod::Tunnel {
                    dest.tunnel = None;
                }
                vs.dests.insert((dest.addr, dest.port), dest);
            }
            t.services.insert(s.entry.service.key, vs);
        }
        t
    }
}
