//! SIGHUP: the new instances carry on from the running ones that are still
//! there (state, timers, counters, GARP schedules and pending
//! announcements), removed ones leave as at a stop, new ones start. A
//! master advertises right before and right after, so a short advert_int
//! never sees a gap. Unchanged instances see no transition.

use std::mem;

use crate::config::model::Config;

use super::super::instance::Instance;
use super::super::notify::{Job, state_word};
use super::super::state::{Input, Micros, State};
use super::{Effect, InstanceSetup, Node};

/// Whether a reloaded instance can carry on from the running one.
fn compatible(old: &Instance, new: &Instance) -> bool {
    let (a, b) = (&old.cfg, &new.cfg);
    a.interface == b.interface
        && a.virtual_router_id == b.virtual_router_id
        && a.version == b.version
        && old.ipv6 == new.ipv6
        && old.is_unicast() == new.is_unicast()
        && a.use_vmac == b.use_vmac
}

impl Node {
    /// Masters advertise before the reload's I/O (sockets, VMACs) is
    /// set up; what the limiter held back is logged while the instance
    /// indices still mean the same instances.
    pub(super) fn reload_begin(&mut self, now: Micros) {
        let masters: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].vrrp.state == State::Master)
            .collect();
        for i in masters {
            self.send_advert(i, self.instances[i].vrrp.priority);
        }
        self.report_suppressed(now, true);
    }

    pub(super) fn reload(
        &mut self,
        now: Micros,
        config: Config,
        setup: Vec<InstanceSetup>,
        links: Vec<(String, bool)>,
        files: Vec<(usize, i64)>,
        processes: Vec<(usize, bool)>,
    ) {
        let mut new = Node::new(&config, setup, self.options.clone(), self.epoch);
        new.set_files(&files);
        // Unchanged track_process blocks this node watched keep their state
        // until the new watcher (opened in the background) reports.
        let watched = self.tracked_processes();
        for (k, def) in config.track_processes.iter().enumerate() {
            if let Some(j) = self.config.track_processes.iter().position(|d| d == def)
                && watched.contains(&j)
                && let (Some(slot), Some(&up)) = (new.processes.get_mut(k), self.processes.get(j))
            {
                *slot = up;
            }
        }
        new.set_processes(&processes);
        new.links_up = mem::take(&mut self.links_up);
        new.links_up.extend(links);
        new.pacers = mem::take(&mut self.pacers);
        new.report.written = self.report.written;
        for (k, def) in config.vrrp_scripts.iter().enumerate() {
            if let Some(j) = self.config.vrrp_scripts.iter().position(|d| d == def)
                && let (Some(slot), Some(old)) = (new.scripts.get_mut(k), self.scripts.get(j))
            {
                *slot = old.clone();
            }
        }
        let mut from_old: Vec<Option<usize>> = vec![None; new.instances.len()];
        let mut kept = vec![false; self.instances.len()];
        for (ni, inst) in new.instances.iter_mut().enumerate() {
            let Some(oi) = (0..self.instances.len()).find(|&oi| {
                !kept[oi]
                    && self.instances[oi].name() == inst.name()
                    && compatible(&self.instances[oi], inst)
            }) else {
                continue;
            };
            kept[oi] = true;
            from_old[ni] = Some(oi);
            let old = &self.instances[oi];
            inst.vrrp.carry_over(&old.vrrp);
            inst.own_fault = old.own_fault;
            inst.drops = old.drops.clone();
            inst.adverts_received = old.adverts_received;
            inst.adverts_sent = old.adverts_sent;
            inst.late_adverts = old.late_adverts;
            inst.stats = old.stats;
            let params = *new.garps[ni].params();
            new.garps[ni] = self.garps[oi].clone();
            new.garps[ni].set_params(now, params);
        }
        new.group_states = config
            .vrrp_sync_groups
            .iter()
            .map(|g| {
                self.config
                    .vrrp_sync_groups
                    .iter()
                    .position(|o| o.name == g.name)
                    .and_then(|o| self.group_states.get(o).copied())
                    .unwrap_or(State::Init)
            })
            .collect();
        new.pending = self
            .pending
            .iter()
            .filter_map(|(oi, p)| {
                from_old
                    .iter()
                    .position(|f| *f == Some(*oi))
                    .map(|ni| (ni, *p))
            })
            .collect();
        // Removed (or incompatible) instances leave as at a stop, in the
        // old numbering.
        for oi in (0..self.instances.len()).filter(|&oi| !kept[oi]) {
            tracing::info!(
                "VRRP_Instance({}) removed by the reload",
                self.instances[oi].name()
            );
            self.feed(oi, now, Input::Shutdown);
        }
        let mut effects = mem::take(&mut self.effects);
        effects.push_back(Effect::Reloaded);
        let old = mem::replace(self, new);
        self.effects = effects;
        // Kept masters: VIPs and routes that the reload added or removed.
        for (ni, oi) in from_old.iter().enumerate() {
            let Some(oi) = *oi else { continue };
            if self.instances[ni].vrrp.state == State::Master {
                self.update_vips(ni, now, &old.instances[oi].cfg);
            }
        }
        self.retrack(now);
        self.ask_all_waiting();
        for (ni, oi) in from_old.iter().enumerate() {
            match oi {
                None => self.feed(ni, now, Input::Start),
                Some(_) if self.instances[ni].vrrp.state == State::Master => {
                    let p = self.instances[ni].vrrp.priority;
                    self.send_advert(ni, p);
                }
                Some(_) => {}
            }
        }
        // Instances new in this file took no tracker effect in Init.
        if from_old.iter().any(Option::is_none) {
            self.retrack(now);
        }
        if self.config.global.vrrp.fifo_write_states_on_reload {
            self.rewrite_states(&old, &from_old);
        }
        self.report.dirty = true;
        tracing::info!(
            "VRRP: reloaded: {} instance(s) kept, {} started, {} removed",
            from_old.iter().filter(|f| f.is_some()).count(),
            from_old.iter().filter(|f| f.is_none()).count(),
            kept.iter().filter(|k| !**k).count()
        );
    }

    /// `fifo_write_vrrp_states_on_reload`: the sync groups, then the
    /// instances, that the reload kept in the state they had write their
    /// state line again (FIFOs only; a changed state wrote its own line).
    fn rewrite_states(&mut self, old: &Node, from_old: &[Option<usize>]) {
        for (g, state) in self.group_states.iter().enumerate() {
            let Some(sg) = self.config.vrrp_sync_groups.get(g) else {
                continue;
            };
            let before = old
                .config
                .vrrp_sync_groups
                .iter()
                .position(|o| o.name == sg.name)
                .and_then(|o| old.group_states.get(o));
            if before == Some(state) && *state != State::Init {
                self.effects.push_back(Effect::FifoLine(Job {
                    kind: "GROUP",
                    name: sg.name.clone(),
                    state: state_word(*state, false),
                    priority: 0,
                }));
            }
        }
        for (ni, oi) in from_old.iter().enumerate() {
            let (Some(oi), Some(inst)) = (*oi, self.instances.get(ni)) else {
                continue;
            };
            let state = inst.vrrp.state;
            if old.instances.get(oi).map(|o| o.vrrp.state) == Some(state) && state != State::Init {
                self.effects.push_back(Effect::FifoLine(Job {
                    kind: "INSTANCE",
                    name: inst.name().to_string(),
                    state: state_word(state, false),
                    priority: inst.vrrp.priority,
                }));
            }
        }
    }
}
