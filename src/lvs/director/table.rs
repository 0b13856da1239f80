//! The desired table, kept up to date piece by piece: each virtual server's
//! services (recomputed only when its health or its part of the file
//! changed), overlaid with what is draining. Every service whose desired
//! entry changed is remembered, so the kernel is told only about those.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use ipvs_sys::{Dest, ServiceKey};

use crate::lvs::table::{DestKey, Table, VirtualService};

#[derive(Debug, Default)]
pub(super) struct DesiredState {
    /// The services each virtual server (by position) stands for.
    vs_keys: Vec<Vec<ServiceKey>>,
    /// What the file and health want, before drains.
    configured: BTreeMap<ServiceKey, VirtualService>,
    /// Real servers a reload removed from a service that stays.
    drain_dests: BTreeMap<ServiceKey, BTreeMap<DestKey, (Dest, Instant)>>,
    /// Services a reload removed, every real server at weight 0.
    drain_services: BTreeMap<ServiceKey, (VirtualService, Instant)>,
    desired: Table,
    /// Virtual servers to recompute.
    dirty: BTreeSet<usize>,
    /// Services whose desired entry changed since the last `take_changed`.
    changed: BTreeSet<ServiceKey>,
}

impl DesiredState {
    pub fn new(virtual_servers: usize) -> Self {
        DesiredState {
            vs_keys: vec![Vec::new(); virtual_servers],
            ..Default::default()
        }
    }

    pub fn desired(&self) -> &Table {
        &self.desired
    }

    pub fn mark_dirty(&mut self, vs: usize) {
        self.dirty.insert(vs);
    }

    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(0..self.vs_keys.len());
    }

    pub fn take_dirty(&mut self) -> BTreeSet<usize> {
        std::mem::take(&mut self.dirty)
    }

    pub fn take_changed(&mut self) -> BTreeSet<ServiceKey> {
        std::mem::take(&mut self.changed)
    }

    pub fn changed_is_empty(&self) -> bool {
        self.changed.is_empty()
    }

    /// One virtual server's services, freshly computed.
    pub fn set_vs(&mut self, vs: usize, services: Vec<(ServiceKey, VirtualService)>) {
        let new: Vec<ServiceKey> = services.iter().map(|(k, _)| *k).collect();
        let old = std::mem::replace(&mut self.vs_keys[vs], new.clone());
        for k in old {
            if !new.contains(&k) && self.configured.remove(&k).is_some() {
                self.recompute(k);
            }
        }
        for (k, svc) in services {
            if self.configured.get(&k) != Some(&svc) {
                self.configured.insert(k, svc);
                self.recompute(k);
            }
        }
    }

    /// The desired entry of one service: configured plus draining real
    /// servers, or a draining service, or nothing.
    fn recompute(&mut self, k: ServiceKey) {
        let entry = match self.configured.get(&k) {
            Some(svc) => {
                self.drain_services.remove(&k);
                let mut svc = svc.clone();
                if let Some(drains) = self.drain_dests.get(&k) {
                    for (dk, (d, _)) in drains {
                        svc.dests.entry(*dk).or_insert(Dest { weight: 0, ..*d });
                    }
                }
                Some(svc)
            }
            None => self.drain_services.get(&k).map(|(s, _)| s.clone()),
        };
        let old = match entry {
            Some(e) => {
                if self.desired.services.get(&k) == Some(&e) {
                    return;
                }
                self.desired.services.insert(k, e)
            }
            None => self.desired.services.remove(&k),
        };
        let _ = old;
        self.changed.insert(k);
    }

    /// A reload: `same[i]` is the old position of new virtual server `i`
    /// when the file did not change it (its services are kept as they are).
    /// The others are marked for recomputation. Returns the desired
    /// entries of the services the old, changed virtual servers stood for,
    /// so that what they lose can drain.
    pub fn begin_reload(
        &mut self,
        virtual_servers: usize,
        same: &[Option<usize>],
    ) -> BTreeMap<ServiceKey, VirtualService> {
        let mut old_keys = std::mem::take(&mut self.vs_keys);
        let kept: BTreeSet<usize> = same.iter().flatten().copied().collect();
        let mut before = BTreeMap::new();
        for (i, keys) in old_keys.iter().enumerate() {
            if kept.contains(&i) {
                continue;
            }
            for k in keys {
                if let Some(svc) = self.desired.services.get(k) {
                    before.insert(*k, svc.clone());
                }
                self.configured.remove(k);
            }
        }
        self.vs_keys = vec![Vec::new(); virtual_servers];
        self.dirty.clear();
        for (i, s) in same.iter().enumerate() {
            match s {
                Some(o) => self.vs_keys[i] = std::mem::take(&mut old_keys[*o]),
                None => {
                    self.dirty.insert(i);
                }
            }
        }
        before
    }

    /// After a reload's recomputation: what the changed virtual servers no
    /// longer have drains until `until` (None: deleted at once).
    pub fn drain_removed(
        &mut self,
        before: BTreeMap<ServiceKey, VirtualService>,
        until: Option<Instant>,
        log: &dyn Fn(String),
    ) {
        for (k, old) in before {
            if let Some(until) = until {
                match self.configured.get(&k) {
                    Some(now) => {
                        let drains = self.drain_dests.entry(k).or_default();
                        for (dk, d) in &old.dests {
                            if !now.dests.contains_key(dk) && !drains.contains_key(dk) {
                                log(format!("[{}]:{} of {k}", dk.0, dk.1));
                                drains.insert(*dk, (*d, until));
                            }
                        }
                        if drains.is_empty() {
                            self.drain_dests.remove(&k);
                        }
                    }
                    None if !self.drain_services.contains_key(&k) => {
                        log(format!("virtual service {k}"));
                        let mut svc = old;
                        for d in svc.dests.values_mut() {
                            d.weight = 0;
                        }
                        self.drain_services.insert(k, (svc, until));
                    }
                    None => {}
                }
            }
            self.recompute(k);
        }
    }

    pub fn next_drain_deadline(&self) -> Option<Instant> {
        let dests = self
            .drain_dests
            .values()
            .flat_map(|m| m.values().map(|(_, t)| *t));
        let services = self.drain_services.values().map(|(_, t)| *t);
        dests.chain(services).min()
    }

    /// Ends the drains that are due: those entries leave the table.
    pub fn expire_drains(&mut self, now: Instant) {
        let mut keys = Vec::new();
        self.drain_dests.retain(|k, m| {
            let n = m.len();
            m.retain(|_, (_, t)| *t > now);
            if m.len() != n {
                keys.push(*k);
            }
            !m.is_empty()
        });
        self.drain_services.retain(|k, (_, t)| {
            let due = *t <= now;
            if due {
                keys.push(*k);
            }
            !due
        });
        for k in keys {
            self.recompute(k);
        }
    }
}
