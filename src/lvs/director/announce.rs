//! The director's announcements: per VIP, announce while its virtual
//! servers hold quorum ([`crate::lvs::announce::decide`]), withdraw on loss
//! and first thing at stop. Announcements attract traffic, so none is made
//! before the IPVS table is ready after the start. Routes of ours that an
//! earlier run left behind are removed first thing at the start, before
//! the table changes ([`AnnounceRequest::Sync`] of nothing).
//!
//! The drain (`ipvsdir ctl drain-director`, and the stop when
//! `announce_drain_metric` is set) is make-before-break: the announced
//! routes take the drain metric (the routing daemon maps it to
//! GRACEFUL_SHUTDOWN / a worse MED, so routers prefer the other directors
//! while this one still has its routes), then once no new connection has
//! reached the VIPs for [`DRAIN_QUIET`] (IPVS counters, read every
//! [`DRAIN_READ_EVERY`]) or after `announce_drain_time`, they are withdrawn.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipvs_sys::ServiceKey;

use super::{Director, Effect};
use crate::check::health::{HealthTable, RsKey};
use crate::config::model::{AnnounceGlobals, Config, VirtualServer};
use crate::lvs::announce::{DrainStatus, Facts, VipStatus, decide, plan};
use crate::lvs::desired::QuorumMemory;
use crate::lvs::kernel_error::KernelError;
use crate::lvs::names;

/// While draining, the IPVS counters are read this often.
pub const DRAIN_READ_EVERY: Duration = Duration::from_secs(1);
/// A drain is over once no new connection reached the drained VIPs for
/// this long (traffic has moved to the other directors).
pub const DRAIN_QUIET: Duration = Duration::from_secs(3);

/// Why an operator's drain request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("this director announces nothing: no `announce_table` in global_defs")]
    NoAnnounce,
    #[error("the director is stopping")]
    Stopping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DrainBy {
    Operator,
    Stop,
}

impl DrainBy {
    fn name(self) -> &'static str {
        match self {
            DrainBy::Operator => "operator",
            DrainBy::Stop => "stop",
        }
    }
}

/// A drain of the whole director.
#[derive(Debug, Clone)]
pub(super) struct Drain {
    by: DrainBy,
    /// Announced with the drain metric until then (the bounded time);
    /// None: withdrawn.
    until: Option<Instant>,
    /// Why it was withdrawn (shown while withdrawn).
    ended: String,
    /// The drained VIPs' connection counter as last read, and when.
    last: Option<(Instant, u64)>,
    /// Since when that counter has not moved.
    quiet_since: Option<Instant>,
    /// The next counter read (None: in flight, or reads failed).
    pub(super) next_read: Option<Instant>,
}

/// Beyond the slowest first probe, before the start's wait for first
/// checks gives up (the probe's result still has to reach the director).
const FIRST_CHECKS_SLACK: Duration = Duration::from_secs(2);

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
    /// After the start, while announcements wait for every real server's
    /// first check: until then at the latest (a probe that cannot start
    /// on this host never gives one).
    pub(super) first_checks_until: Option<Instant>,
    /// At stop, after a withdrawal: the release waits until then.
    pub(super) withdraw_until: Option<Instant>,
    /// The next periodic check of the table (as the IPVS table's drift).
    pub(super) next_check: Option<Instant>,
    pub(super) drain: Option<Drain>,
    /// The routes carried out have the drain metric.
    worse: bool,
    /// The drain as last shown in the status.
    shown_drain: Option<DrainStatus>,
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

    /// Announced with the drain metric, waiting for traffic to move.
    pub(super) fn draining(&self) -> bool {
        self.drain.as_ref().is_some_and(|d| d.until.is_some())
    }

    /// The drain's deadline (the bounded time).
    pub(super) fn drain_until(&self) -> Option<Instant> {
        self.drain.as_ref().and_then(|d| d.until)
    }

    pub(super) fn drain_status(&self) -> Option<DrainStatus> {
        let d = self.drain.as_ref()?;
        let t = self.target?;
        Some(match d.until {
            Some(_) => DrainStatus {
                stage: "draining".into(),
                by: d.by.name().into(),
                why: format!(
                    "announced with metric {}; withdrawn once no new connection arrives for {} s, at most {} s",
                    t.drained().metric.unwrap_or(0),
                    DRAIN_QUIET.as_secs(),
                    t.drain_time.0.as_secs()
                ),
            },
            None => DrainStatus {
                stage: "withdrawn".into(),
                by: d.by.name().into(),
                why: d.ended.clone(),
            },
        })
    }

    /// The routes' target as carried out now (drain metric or not).
    fn route_target(&self, worse: bool) -> Option<AnnounceGlobals> {
        self.target.map(|t| if worse { t.drained() } else { t })
    }
}

struct View<'a> {
    quorum: &'a QuorumMemory,
    masters: &'a BTreeSet<String>,
    health: &'a HealthTable,
    /// The start's wait for first checks is on.
    first_checks: bool,
}

impl Facts for View<'_> {
    fn quorum_held(&self, vs: &VirtualServer) -> Option<bool> {
        self.quorum.held(vs)
    }

    fn is_master(&self, instance: &str) -> bool {
        self.masters.contains(instance)
    }

    fn unchecked(&self, vs: &VirtualServer) -> Option<String> {
        if !self.first_checks {
            return None;
        }
        vs.real_servers
            .iter()
            .find(|rs| self.health.unchecked(&RsKey::of(vs, rs)))
            .map(|rs| names::real_server(vs, rs))
    }
}

impl Director {
    /// The start, its first request (before any IPVS write): routes of ours that an
    /// earlier run left (it crashed while the routing daemon ran on) go
    /// now. Until this run's checks pass, the director attracts nothing:
    /// traffic it got meanwhile would meet a table being rewritten (with
    /// `alpha`, every real server at weight 0) and be reset.
    ///
    /// Then the VIPs wait for every real server's first check (only at the
    /// start: a reload's new real servers do not withdraw an announced
    /// VIP), at most as long as the slowest first probe can take.
    pub(super) fn announce_start(&mut self, now: Instant) {
        let Some(target) = self.announce.target else {
            return;
        };
        self.effects
            .push_back(Effect::Announce(AnnounceRequest::Sync {
                target,
                vips: BTreeSet::new(),
                drift: false,
            }));
        let longest = self
            .health
            .plan
            .probes
            .iter()
            .map(|p| p.common.warmup.0 + p.common.connect_timeout.0 + p.common.delay_loop.0)
            .max()
            .unwrap_or_default();
        self.announce.first_checks_until = Some(now + longest + FIRST_CHECKS_SLACK);
    }

    /// A checker gave its first result; once all have, the start's wait
    /// is over.
    pub(super) fn first_result(&mut self) {
        let a = &mut self.announce;
        if a.plan.is_empty() || a.first_checks_until.is_none() {
            return;
        }
        a.dirty = true;
        if self.health.states.iter().all(|s| s.last.is_some()) {
            a.first_checks_until = None;
        }
    }

    /// The start's wait for first checks ran out: VIPs go by health alone.
    pub(super) fn first_checks_deadline(&mut self, now: Instant) {
        let a = &mut self.announce;
        if a.first_checks_until.is_some_and(|t| now >= t) {
            a.first_checks_until = None;
            a.dirty = true;
            tracing::warn!(
                "announce: some real servers have no first check result yet (a probe that cannot start here?): announcing by health without them"
            );
        }
    }

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
        let place = |t: Option<AnnounceGlobals>| t.map(|t| (t.table, t.protocol));
        if place(target) == place(a.target) && target != a.target {
            // Same table: one sync brings the routes to the new metrics,
            // new route first.
            a.target = target;
            a.sync_pending = a.live;
            if target.is_some_and(|t| t.drain_metric.is_none())
                && let Some(d) = a.drain.as_mut().filter(|d| d.until.is_some())
            {
                d.until = None;
                d.ended = "announce_drain_metric removed by a reload".into();
            }
        } else if target != a.target {
            if a.live
                && let Some(old) = a.route_target(a.worse)
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
            a.worse = false;
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
        if was_announced
            && self
                .announce
                .target
                .is_some_and(|t| t.drain_metric.is_some())
        {
            match &mut self.announce.drain {
                Some(d) if d.until.is_some() => d.by = DrainBy::Stop,
                _ => self.drain_begin(now, DrainBy::Stop),
            }
            // The withdrawal (and its grace) follow the drain.
            self.announce_step();
            return;
        }
        self.announce_step();
        self.announce_grace(now, was_announced);
    }

    /// After the stop's withdrawal: the release waits for
    /// `announce_withdraw_grace` if something was announced.
    fn announce_grace(&mut self, now: Instant, was_announced: bool) {
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
        let Some(target) = a.route_target(a.worse).filter(|_| a.live && !a.stopping) else {
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

    /// `ipvsdir ctl drain-director` (`on`) and `undrain-director`: the
    /// answer says what happens.
    pub fn drain_director(&mut self, now: Instant, on: bool) -> Result<String, DrainError> {
        let a = &self.announce;
        let Some(target) = a.target else {
            return Err(DrainError::NoAnnounce);
        };
        if a.stopping {
            return Err(DrainError::Stopping);
        }
        if !on {
            if a.drain.is_none() {
                return Ok("not drained".into());
            }
            self.announce.drain = None;
            self.announce.dirty = true;
            tracing::info!(
                "Director drain cancelled (ctl undrain-director): VIPs are announced again as their health says"
            );
            self.announce_step();
            return Ok("undrained: VIPs announced again as their health says".into());
        }
        if let Some(s) = a.drain_status() {
            return Ok(format!("already {}: {}", s.stage, s.why));
        }
        let announced = a.status.values().any(|s| s.announced);
        if announced && target.drain_metric.is_some() {
            self.drain_begin(now, DrainBy::Operator);
        } else {
            let why = if announced {
                "withdrawn at once: no announce_drain_metric to tell the routers first"
            } else {
                "nothing was announced"
            };
            tracing::warn!("Draining the director (ctl drain-director): {why}");
            self.announce.drain = Some(Drain {
                by: DrainBy::Operator,
                until: None,
                ended: why.into(),
                last: None,
                quiet_since: None,
                next_read: None,
            });
        }
        self.announce.dirty = true;
        self.announce_step();
        let s = self
            .announce
            .drain_status()
            .map(|s| format!("{}: {}", s.stage, s.why));
        Ok(s.unwrap_or_default())
    }

    /// Announced VIPs take the drain metric until traffic has moved.
    fn drain_begin(&mut self, now: Instant, by: DrainBy) {
        let a = &mut self.announce;
        let Some(t) = a.target else {
            return;
        };
        tracing::warn!(
            "Draining the director ({}): VIPs announced with metric {} so routers prefer the other directors; withdrawn once no new connection arrives for {} s, at most {} s",
            match by {
                DrainBy::Operator => "ctl drain-director",
                DrainBy::Stop => "stopping",
            },
            t.drained().metric.unwrap_or(0),
            DRAIN_QUIET.as_secs(),
            t.drain_time.0.as_secs()
        );
        a.drain = Some(Drain {
            by,
            until: Some(now + t.drain_time.0),
            ended: String::new(),
            last: None,
            quiet_since: None,
            next_read: self.opts.write_table.then_some(now),
        });
        a.dirty = true;
    }

    /// The drain is over: the routes are withdrawn (and at stop, the
    /// release follows after the grace).
    fn drain_end(&mut self, now: Instant, why: String) {
        let Some(d) = self.announce.drain.as_mut().filter(|d| d.until.is_some()) else {
            return;
        };
        tracing::warn!("Drain over ({why}): withdrawing the VIPs");
        d.until = None;
        d.ended = why;
        d.next_read = None;
        let by = d.by;
        let was_announced = self.announce.status.values().any(|s| s.announced);
        self.announce.dirty = true;
        self.announce_step();
        if by == DrainBy::Stop {
            self.announce_grace(now, was_announced);
        }
    }

    /// The bounded time of a drain; true when it ended now.
    pub(super) fn drain_deadline(&mut self, now: Instant) -> bool {
        match self.announce.drain_until() {
            Some(t) if now >= t => {
                let secs = self.announce.target.map_or(0, |t| t.drain_time.0.as_secs());
                self.drain_end(now, format!("announce_drain_time {secs} s over"));
                true
            }
            _ => false,
        }
    }

    /// A counter read is due (and the kernel is free: the caller checks).
    pub(super) fn counters_due(&self, now: Instant) -> bool {
        self.announce
            .drain
            .as_ref()
            .is_some_and(|d| d.until.is_some() && d.next_read.is_some_and(|t| now >= t))
    }

    pub(super) fn counters_sent(&mut self) {
        if let Some(d) = &mut self.announce.drain {
            d.next_read = None;
        }
    }

    /// The IPVS counters (connections scheduled per service): the drain
    /// ends once those of the drained VIPs stop moving.
    pub(super) fn on_counters(
        &mut self,
        now: Instant,
        r: Result<Vec<(ServiceKey, u64)>, KernelError>,
    ) {
        let vips: BTreeSet<IpAddr> = self
            .announce
            .status
            .values()
            .filter(|s| s.announced)
            .map(|s| s.vip)
            .collect();
        let Some(d) = self.announce.drain.as_mut().filter(|d| d.until.is_some()) else {
            return;
        };
        let counters = match r {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "Drain: cannot read the IPVS counters ({e}): the VIPs are withdrawn after announce_drain_time"
                );
                return;
            }
        };
        let total: u64 = counters
            .iter()
            .filter(|(k, _)| matches!(k, ServiceKey::Addr { addr, .. } if vips.contains(addr)))
            .map(|(_, n)| *n)
            .fold(0, u64::wrapping_add);
        match d.last {
            Some((at, before)) if before == total => {
                d.quiet_since.get_or_insert(at);
            }
            _ => d.quiet_since = None,
        }
        d.last = Some((now, total));
        d.next_read = Some(now + DRAIN_READ_EVERY);
        if d.quiet_since
            .is_some_and(|q| now.saturating_duration_since(q) >= DRAIN_QUIET)
        {
            self.drain_end(
                now,
                format!(
                    "no new connection to the VIPs for {} s",
                    DRAIN_QUIET.as_secs()
                ),
            );
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
            health: &self.health,
            first_checks: a.first_checks_until.is_some(),
        };
        let worse = a.draining();
        let by = a.drain.as_ref().map_or("", |d| d.by.name());
        let mut next: BTreeMap<IpAddr, VipStatus> = BTreeMap::new();
        for (vip, servers) in &a.plan {
            let mut s = decide(&self.config, *vip, servers, &view);
            let before = a.status.get(vip).is_some_and(|o| o.announced);
            let not = |why: String| VipStatus {
                vip: *vip,
                announced: false,
                why,
                drained: false,
            };
            if s.announced {
                if a.stopping && !(worse && before) {
                    // At stop nothing is announced anew.
                    s = not("stopping".into());
                } else if let Some(d) = a.drain.as_ref().filter(|d| d.until.is_none()) {
                    s = not(format!("drained ({by}): {}", d.ended));
                } else if worse {
                    s.drained = true;
                    s.why = format!("draining ({by}): {}", s.why);
                }
            }
            next.insert(*vip, s);
        }
        let old_target = a.route_target(a.worse).unwrap_or(target);
        let target = a.route_target(worse).unwrap_or(target);
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
                if s.announced && before && a.worse != worse {
                    // The new route first: make-before-break.
                    tracing::info!(
                        "Announcing VIP {vip} with metric {}: {}",
                        target.metric.unwrap_or(0),
                        s.why
                    );
                    self.effects
                        .push_back(Effect::Announce(AnnounceRequest::Announce {
                            target,
                            vip: *vip,
                        }));
                    self.effects
                        .push_back(Effect::Announce(AnnounceRequest::Withdraw {
                            target: old_target,
                            vip: *vip,
                        }));
                } else if s.announced && !before {
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
                            target: old_target,
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
                            target: old_target,
                            vip: *vip,
                        }));
                }
            }
        }
        a.worse = worse;
        let drain = a.drain_status();
        if next != a.status || drain != a.shown_drain {
            a.status = next;
            a.shown_drain = drain;
            self.effects
                .push_back(Effect::AnnounceStatus(Arc::new(a.status())));
        }
    }
}
