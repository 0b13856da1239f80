//! The director's announcements: per VIP, announce while its virtual
//! servers hold quorum ([`crate::lvs::announce::decide`]), withdraw on loss
//! and first thing at stop. Announcements attract traffic, so none is made
//! before the IPVS table is ready after the start; the first one is a
//! [`AnnounceRequest::Sync`] that also removes routes of ours an earlier
//! run left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{Director, Effect};
use crate::config::model::{AnnounceGlobals, Config, VirtualServer};
use crate::lvs::announce::{Facts, VipStatus, decide, plan};
use crate::lvs::desired::QuorumMemory;

/// A change to the routes that announce VIPs (carried out in the
/// `announce_table` with rtnetlink by the daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceRequest {
    /// Make the table hold exactly these routes of ours: add the missing,
    /// remove every other route with our protocol number (start, and a
    /// reload that moved the table: then `vips` is empty for the old one;
    /// `drift`: the periodic check, where a difference is someone else's
    /// change, repaired and logged).
    Sync {
        target: AnnounceGlobals,
        vips: BTreeSet<IpAddr>,
        drift: bool,
    },
    Announce {
        target: AnnounceGlobals,
        vip: IpAddr,
    },
    Withdraw {
        target: AnnounceGlobals,
        vip: IpAddr,
    },
}

#[derive(Debug, Default)]
pub(super) struct AnnounceState {
    /// Each announced VIP and the virtual servers (positions) that decide it.
    plan: BTreeMap<IpAddr, Vec<usize>>,
    target: Option<AnnounceGlobals>,
    /// The last decision per VIP, as carried out.
    status: BTreeMap<IpAddr, VipStatus>,
    /// The table has been ready once since the start: routes may be made.
    live: bool,
    /// The next step begins with a Sync (first one, or a new target).
    sync_pending: bool,
    masters: BTreeSet<String>,
    /// Something the decision reads has changed.
    dirty: bool,
    stopping: bool,
    /// Off in the one-shot commands.
    enabled: bool,
    /// At stop, after a withdrawal: the release waits until then.
    pub(super) withdraw_until: Option<Instant>,
    /// The next periodic check of the table (as the IPVS table's drift).
    pub(super) next_check: Option<Instant>,
}

impl AnnounceState {
    pub(super) fn new(config: &Config, enabled: bool) -> AnnounceState {
        AnnounceState {
            plan: plan(config),
            target: config.global.lvs.announce.filter(|_| enabled),
            enabled,
            ..AnnounceState::default()
        }
    }

    /// The decision may change: a quorum of one of these virtual servers
    /// changed.
    pub(super) fn quorum_changed(&mut self, vs: &VirtualServer) {
        if vs.announce {
            self.dirty = true;
        }
    }

    pub(super) fn vrrp_state(&mut self, instance: String, master: bool) {
        let changed = if master {
            self.masters.insert(instance)
        } else {
            self.masters.remove(&instance)
        };
        self.dirty |= changed;
    }

    /// What is announced now and why (for --dump, metrics, status).
    pub(super) fn status(&self) -> Vec<VipStatus> {
        self.status.values().cloned().collect()
    }
}

struct View<'a> {
    quorum: &'a QuorumMemory,
    masters: &'a BTreeSet<String>,
}

impl Facts for View<'_> {
    fn quorum_held(&self, vs: &VirtualServer) -> Option<bool> {
        self.quorum.held(vs)
    }

    fn is_master(&self, instance: &str) -> bool {
        self.masters.contains(instance)
    }
}

impl Director {
    /// The table is ready: announcements may begin.
    pub(super) fn announce_live(&mut self) {
        let a = &mut self.announce;
        if !a.live && !a.stopping {
            a.live = true;
            a.sync_pending = true;
            a.dirty = true;
        }
    }

    /// A reload: the new file's VIPs and target. A moved target empties
    /// the old table first.
    pub(super) fn announce_reload(&mut self, config: &Config) {
        let a = &mut self.announce;
        a.plan = plan(config);
        let target = config.global.lvs.announce.filter(|_| a.enabled);
        if target != a.target {
            if a.live
                && let Some(old) = a.target
            {
                tracing::info!(
                    "Announcements move from routing table {} to {}: withdrawing from the old one",
                    old.table,
                    target.map_or("none".into(), |t| t.table.to_string())
                );
                self.effects
                    .push_back(Effect::Announce(AnnounceRequest::Sync {
                        target: old,
                        vips: BTreeSet::new(),
                        drift: false,
                    }));
                for s in a.status.values_mut() {
                    s.announced = false;
                }
            }
            a.target = target;
            a.sync_pending = a.live;
        }
        a.dirty = true;
    }

    /// Stop: every VIP is withdrawn now; the release waits for
    /// `announce_withdraw_grace` if one was announced.
    pub(super) fn announce_stop(&mut self, now: Instant) {
        if self.announce.stopping {
            return;
        }
        let was_announced = self.announce.status.values().any(|s| s.announced);
        self.announce.stopping = true;
        self.announce.dirty = true;
        self.announce_step();
        if was_announced
            && let Some(t) = self.announce.target
            && !t.withdraw_grace.0.is_zero()
        {
            tracing::info!(
                "Stopping: VIPs withdrawn; the IPVS table stays {} s while routing moves traffic away",
                t.withdraw_grace.0.as_secs_f64()
            );
            self.announce.withdraw_until = Some(now + t.withdraw_grace.0);
        }
    }

    /// The periodic check: the table is read and repaired where someone
    /// else changed our routes (every `drift_interval` while announcing).
    pub(super) fn announce_tick(&mut self, now: Instant) {
        let a = &mut self.announce;
        let Some(target) = a.target.filter(|_| a.live && !a.stopping) else {
            a.next_check = None;
            return;
        };
        match a.next_check {
            None => a.next_check = Some(now + self.opts.drift_interval),
            Some(t) if now >= t => {
                a.next_check = Some(now + self.opts.drift_interval);
                let vips = a
                    .status
                    .values()
                    .filter(|s| s.announced)
                    .map(|s| s.vip)
                    .collect();
                self.effects
                    .push_back(Effect::Announce(AnnounceRequest::Sync {
                        target,
                        vips,
                        drift: true,
                    }));
            }
            Some(_) => {}
        }
    }

    /// Decides every VIP again if something changed; emits the route
    /// changes and the new status.
    pub(super) fn announce_step(&mut self) {
        let a = &mut self.announce;
        if !a.dirty || !(a.live || a.stopping) {
            return;
        }
        a.dirty = false;
        let Some(target) = a.target else {
            if !a.status.is_empty() {
                a.status.clear();
                self.effects
                    .push_back(Effect::AnnounceStatus(Arc::new(Vec::new())));
            }
            return;
        };
        let view = View {
            quorum: &self.quorum,
            masters: &a.masters,
        };
        let mut next: BTreeMap<IpAddr, VipStatus> = BTreeMap::new();
        for (vip, servers) in &a.plan {
            let mut s = decide(&self.config, *vip, servers, &view);
            if a.stopping && s.announced {
                s = VipStatus {
                    vip: *vip,
                    announced: false,
                    why: "stopping".into(),
                };
            }
            next.insert(*vip, s);
        }
        if std::mem::take(&mut a.sync_pending) {
            let vips: BTreeSet<IpAddr> = next
                .values()
                .filter(|s| s.announced)
                .map(|s| s.vip)
                .collect();
            for s in next.values() {
                if s.announced {
                    tracing::info!(
                        "Announcing VIP {} in table {}: {}",
                        s.vip,
                        target.table,
                        s.why
                    );
                } else {
                    tracing::info!("Not announcing VIP {}: {}", s.vip, s.why);
                }
            }
            self.effects
                .push_back(Effect::Announce(AnnounceRequest::Sync {
                    target,
                    vips,
                    drift: false,
                }));
        } else {
            for (vip, s) in &next {
                let before = a.status.get(vip).is_some_and(|o| o.announced);
                if s.announced && !before {
                    tracing::info!("Announcing VIP {vip} in table {}: {}", target.table, s.why);
                    self.effects
                        .push_back(Effect::Announce(AnnounceRequest::Announce {
                            target,
                            vip: *vip,
                        }));
                } else if !s.announced && before {
                    tracing::warn!(
                        "Withdrawing VIP {vip} from table {}: {}",
                        target.table,
                        s.why
                    );
                    self.effects
                        .push_back(Effect::Announce(AnnounceRequest::Withdraw {
                            target,
                            vip: *vip,
                        }));
                }
            }
            for (vip, old) in &a.status {
                if old.announced && !next.contains_key(vip) {
                    tracing::warn!(
                        "Withdrawing VIP {vip} from table {}: no virtual server announces it any more",
                        target.table
                    );
                    self.effects
                        .push_back(Effect::Announce(AnnounceRequest::Withdraw {
                            target,
                            vip: *vip,
                        }));
                }
            }
        }
        if next != a.status {
            a.status = next;
            self.effects
                .push_back(Effect::AnnounceStatus(Arc::new(a.status())));
        }
    }
}
