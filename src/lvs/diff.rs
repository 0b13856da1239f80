//! `diff(desired, actual, owned) -> Vec<Op>`: the minimal operations that
//! turn the kernel's table into the desired one, touching only what is ours.
//!
//! Order: services are added (or edited) before their destinations, new
//! destinations are added before old ones are removed (so a pool never goes
//! empty in between), and destinations are removed before services.
//!
//! Where the desired service has an `order` (mh), the kernel's list is made
//! to match it: destinations are added last-first (each goes in front); a
//! destination wanted at weight 0 is added at its `order` weight and then
//! set to 0, so the kernel counts it in the mh table as on a director that
//! saw it fail; and when the kernel's order differs (a reload inserted a
//! server, someone re-added one by hand), the fewest destinations are
//! deleted and re-added at once: those before the longest tail of the list
//! already in place. A destination re-added within the same request comes
//! back from the kernel's trash with its connections.

use std::collections::BTreeSet;

use ipvs_sys::{Dest, Service, ServiceKey};

use super::table::{DestKey, Table, VirtualService, keeps_order};

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
                let ordered: BTreeSet<&DestKey> = want.order.iter().map(|(dk, _)| dk).collect();
                add_dests.extend(
                    want.dests
                        .iter()
                        .filter(|(dk, _)| !ordered.contains(dk))
                        .map(|(_, d)| Op::AddDest(*key, *d)),
                );
                for (dk, w) in want.order.iter().rev() {
                    if let Some(d) = want.dests.get(dk) {
                        add_at(&mut add_dests, *key, d, *w);
                    }
                }
            }
            Some(have) => {
                if have.service != want.service {
                    services.push(Op::EditService(want.service.clone()));
                }
                let moved = out_of_place(want, have);
                for (dk, w) in want.order.iter().rev() {
                    if !moved.contains(dk) {
                        continue;
                    }
                    if have.dests.contains_key(dk) {
                        add_dests.push(Op::DelDest(*key, *dk));
                    }
                    if let Some(d) = want.dests.get(dk) {
                        add_at(&mut add_dests, *key, d, *w);
                    }
                }
                for (dk, d) in want.dests.iter().filter(|(dk, _)| !moved.contains(dk)) {
                    match have.dests.get(dk) {
                        None => {
                            let w = want.order.iter().find(|(o, _)| o == dk);
                            add_at(&mut add_dests, *key, d, w.map_or(0, |(_, w)| *w));
                        }
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

/// Adds `d`; one wanted at weight 0 is added at `weight` first (see the
/// module's notes on mh).
fn add_at(ops: &mut Vec<Op>, key: ServiceKey, d: &Dest, weight: u32) {
    if d.weight == 0 && weight > 0 {
        ops.push(Op::AddDest(key, Dest { weight, ..*d }));
        ops.push(Op::EditDest(key, *d));
    } else {
        ops.push(Op::AddDest(key, *d));
    }
}

/// Whether `v`'s `order` follows the kernel's list (mh, not lost track of).
fn order_known(v: &VirtualService) -> bool {
    keeps_order(&v.service) && v.order.len() == v.dests.len()
}

/// The destinations of an ordered service to (re-)add so that the kernel's
/// list, new ones included, has the desired order: those in front of the
/// longest tail of `want.order` whose members are in the kernel already and
/// in that relative order. Nothing when the kernel's order is unknown.
fn out_of_place(want: &VirtualService, have: &VirtualService) -> BTreeSet<DestKey> {
    if want.order.is_empty() || !order_known(have) {
        return BTreeSet::new();
    }
    let pos: std::collections::BTreeMap<DestKey, usize> = have
        .order
        .iter()
        .enumerate()
        .map(|(i, (dk, _))| (*dk, i))
        .collect();
    let mut keep = want.order.len();
    let mut before = usize::MAX;
    while keep > 0 {
        match pos.get(&want.order[keep - 1].0) {
            Some(&p) if p < before => {
                before = p;
                keep -= 1;
            }
            _ => break,
        }
    }
    want.order[..keep].iter().map(|(dk, _)| *dk).collect()
}

/// Applies ops to an in-memory table (what the kernel does with them);
/// used by tests and by `--plan` to show the table after the change.
pub fn apply_to(table: &mut Table, ops: &[Op]) {
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
                    if keeps_order(s) != keeps_order(&v.service) {
                        // The kernel's list was not followed: unknown until read.
                        v.order.clear();
                    }
                    v.service = s.clone();
                }
            }
            Op::DelService(k) => {
                table.services.remove(k);
            }
            Op::AddDest(k, d) | Op::EditDest(k, d) => {
                if let Some(v) = table.services.get_mut(k) {
                    let dk = (d.addr, d.port);
                    let known = order_known(v);
                    v.dests.insert(dk, *d);
                    // The kernel's list, as to_table reads it: an added
                    // destination goes in front.
                    if known {
                        match v.order.iter_mut().find(|(o, _)| *o == dk) {
                            Some(slot) => slot.1 = d.weight,
                            None => v.order.insert(0, (dk, d.weight)),
                        }
                    }
                }
            }
            Op::DelDest(k, dk) => {
                if let Some(v) = table.services.get_mut(k) {
                    v.dests.remove(dk);
                    v.order.retain(|(o, _)| o != dk);
                }
            }
        }
    }
}
