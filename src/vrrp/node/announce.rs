//! Announcing the VIPs: GARP/NA bursts planned through the per-interface
//! pacers, the lower-priority re-announce, and a kept master's VIP diff at
//! a reload.

use std::net::IpAddr;

use crate::config::model::VrrpInstance;

use super::super::garp::schedule::{Pacer, log_queueing};
use super::super::state::Micros;
use super::log::LogKey;
use super::{Effect, Job, Node, NotifyTarget};

impl Node {
    /// Queues a burst of `repeat` announcements of every VIP of instance i;
    /// `log`: say so (keepalived's line per VIP) — the re-announce to a
    /// lower-priority master logs its own, rate-limited line instead.
    pub(super) fn plan_garps(&mut self, i: usize, now: Micros, repeat: u32, log: bool) {
        let vips: Vec<IpAddr> = self.instances[i]
            .cfg
            .virtual_ipaddress
            .iter()
            .map(|v| v.addr)
            .collect();
        if log {
            for &v in &vips {
                log_queueing(self.instances[i].name(), &self.ifaces[i].name, v);
            }
        }
        self.plan(i, now, repeat, &vips);
    }

    fn plan(&mut self, i: usize, now: Micros, repeat: u32, vips: &[IpAddr]) {
        let g = &self.config.global.vrrp;
        let (gi, ni) = (g.garp_interval.0, g.gna_interval.0);
        let pacer = self
            .pacers
            .entry(self.ifaces[i].index)
            .or_insert_with(|| Pacer::new(gi, ni));
        self.pending
            .extend(pacer.plan(now, repeat, vips).into_iter().map(|p| (i, p)));
        self.pending.sort_by_key(|(_, p)| p.at);
    }

    /// Announcements due by `now` become effects.
    pub(super) fn send_due_garps(&mut self, now: Micros) {
        let due = self.pending.partition_point(|(_, p)| p.at <= now);
        for (i, send) in self.pending.drain(..due) {
            self.effects.push_back(Effect::Announce {
                instance: i,
                vip: send.vip,
            });
        }
    }

    /// A master heard a lower-priority master (a backup that lost us for a
    /// moment): it may have announced the VIPs, so announce them again
    /// (keepalived's garp_lower_prio_repeat/delay) and advertise at once so
    /// it steps back now. At most once per advert interval: a flood of such
    /// adverts is not amplified.
    pub(super) fn lower_priority_advert(&mut self, i: usize, now: Micros) {
        let g = &self.config.global.vrrp;
        let repeat = g
            .garp_lower_prio_repeat
            .unwrap_or(self.instances[i].cfg.garp_master_repeat);
        let delay = g.garp_lower_prio_delay.map(|t| t.0);
        if !self.instances[i].may_reannounce(now) {
            return; // answered one already this advert interval
        }
        let p = self.instances[i].vrrp.priority;
        self.send_advert(i, p);
        // keepalived's notify_master_rx_lower_pri and FIFO event: the other
        // side may have taken addresses (cloud APIs) that this one restores.
        self.effects.push_back(Effect::Notify {
            target: NotifyTarget::Instance(i),
            job: Job {
                kind: "INSTANCE",
                name: self.instances[i].name().to_string(),
                state: "MASTER_RX_LOWER_PRI",
                priority: p,
            },
        });
        if let Some(burst) = self.garps[i].lower_priority_advert(now, repeat, delay) {
            if self.may_log(now, LogKey::Reannounce(i)) {
                tracing::info!(
                    "VRRP_Instance({}) heard a lower-priority master: re-announcing the VIPs",
                    self.instances[i].name()
                );
            }
            self.plan_garps(i, now, burst.repeat, false);
            self.send_due_garps(now);
        }
    }

    /// A kept master's VIP and route changes from `old` to its current
    /// config (a reload); the added VIPs are announced.
    pub(super) fn update_vips(&mut self, i: usize, now: Micros, old: &VrrpInstance) {
        let cfg = &self.instances[i].cfg;
        let name = cfg.name.clone();
        let removed: Vec<_> = old
            .virtual_ipaddress
            .iter()
            .filter(|v| !cfg.virtual_ipaddress.contains(v))
            .cloned()
            .collect();
        let added: Vec<_> = cfg
            .virtual_ipaddress
            .iter()
            .filter(|v| !old.virtual_ipaddress.contains(v))
            .cloned()
            .collect();
        let routes_removed: Vec<_> = old
            .virtual_routes
            .iter()
            .filter(|r| !cfg.virtual_routes.contains(r))
            .cloned()
            .collect();
        let routes_added: Vec<_> = cfg
            .virtual_routes
            .iter()
            .filter(|r| !old.virtual_routes.contains(r))
            .cloned()
            .collect();
        let rules_removed: Vec<_> = old
            .virtual_rules
            .iter()
            .filter(|r| !cfg.virtual_rules.contains(r))
            .cloned()
            .collect();
        let rules_added: Vec<_> = cfg
            .virtual_rules
            .iter()
            .filter(|r| !old.virtual_rules.contains(r))
            .cloned()
            .collect();
        let repeat = cfg.garp_master_repeat;
        for v in &removed {
            tracing::info!("VRRP_Instance({name}) removing VIP {} (reload)", v.addr);
        }
        for v in &added {
            tracing::info!("VRRP_Instance({name}) adding VIP {} (reload)", v.addr);
        }
        if !removed.is_empty() || !routes_removed.is_empty() || !rules_removed.is_empty() {
            self.effects.push_back(Effect::Vips {
                instance: i,
                add: false,
                vips: removed,
                routes: routes_removed,
                rules: rules_removed,
            });
        }
        if !added.is_empty() || !routes_added.is_empty() || !rules_added.is_empty() {
            let addrs: Vec<IpAddr> = added.iter().map(|v| v.addr).collect();
            self.effects.push_back(Effect::Vips {
                instance: i,
                add: true,
                vips: added,
                routes: routes_added,
                rules: rules_added,
            });
            if !addrs.is_empty() {
                self.plan(i, now, repeat, &addrs);
            }
        }
    }
}
