//! A plain IPVS table: services keyed like the kernel keys them, each with
//! its destinations. Both the desired table and the kernel's are this type,
//! so the diff compares like with like.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipvs_sys::{Dest, Service, ServiceKey};

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
