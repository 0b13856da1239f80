//! `diff(desired, actual, owned) -> Vec<Op>`: the minimal operations that
//! turn the kernel's table into the desired one, touching only what is ours.
//!
//! Order: services are added (or edited) before their destinations, new
//! destinations are added before old ones are removed (so a pool never goes
//! empty in between), and destinations are removed before services.

use std::collections::BTreeSet;

use ipvs_sys::{Dest, Service, ServiceKey};

use super::table::{DestKey, Table};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddService(Service),
    EditService(Service),
    DelService(ServiceKey),
    AddDest(ServiceKey, Dest),
    EditDest(ServiceKey, Dest),
    DelDest(ServiceKey, DestKey),
}

impl Op {
    pub fn service_key(&self) -> &ServiceKey {
        match self {
            Op::AddService(s) | Op::EditService(s) => &s.key,
            Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => k,
        }
    }
}

/// `owned`: services ipvsdir put in the kernel earlier (e.g. before a reload)
/// that may be deleted when they leave the desired table. Services in
/// `actual` that are neither desired nor owned belong to someone else.
pub fn diff(desired: &Table, actual: &Table, owned: &BTreeSet<ServiceKey>) -> Vec<Op> {
    let mut services = Vec::new();
    let mut add_dests = Vec::new();
    let mut del_dests = Vec::new();
    let mut del_services = Vec::new();
    for (key, want) in &desired.services {
        match actual.services.get(key) {
            None => {
                services.push(Op::AddService(want.service.clone()));
                add_dests.extend(want.dests.values().map(|d| Op::AddDest(*key, *d)));
            }
            Some(have) => {
                if have.service != want.service {
                    services.push(Op::EditService(want.service.clone()));
                }
                for (dk, d) in &want.dests {
                    match have.dests.get(dk) {
                        None => add_dests.push(Op::AddDest(*key, *d)),
                        Some(h) if h != d => add_dests.push(Op::EditDest(*key, *d)),
                        Some(_) => {}
                    }
                }
                del_dests.extend(
                    have.dests
                        .keys()
                        .filter(|dk| !want.dests.contains_key(dk))
                        .map(|dk| Op::DelDest(*key, *dk)),
                );
            }
        }
    }
    for key in actual.services.keys() {
        if !desired.services.contains_key(key) && owned.contains(key) {
            del_services.push(Op::DelService(*key));
        }
    }
    services.extend(add_dests);
    services.extend(del_dests);
    services.extend(del_services);
    services
}

/// Applies ops to an in-memory table (what the kernel does with them);
/// used by tests and by `--plan` to show the table after the change.
pub fn apply_to(table: &mut Table, ops: &[Op]) {
    use super::table::VirtualService;
    for op in ops {
        match op {
            Op::AddService(s) => {
                table
                    .services
                    .entry(s.key)
                    .or_insert_with(|| VirtualService::new(s.clone()));
            }
            Op::EditService(s) => {
                if let Some(v) = table.services.get_mut(&s.key) {
                    v.service = s.clone();
                }
            }
            Op::DelService(k) => {
                table.services.remove(k);
            }
            Op::AddDest(k, d) | Op::EditDest(k, d) => {
                if let Some(v) = table.services.get_mut(k) {
                    v.dests.insert((d.addr, d.port), *d);
                }
            }
            Op::DelDest(k, dk) => {
                if let Some(v) = table.services.get_mut(k) {
                    v.dests.remove(dk);
                }
            }
        }
    }
}
