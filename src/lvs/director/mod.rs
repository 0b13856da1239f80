//! The director core: every decision about the IPVS side of this director,
//! sans-IO, on the caller's clock. Health changes, reloads, drain deadlines,
//! drift ticks, operator overrides, start and stop go in
//! ([`Director::handle`], [`Director::handle_timeout`]); kernel requests,
//! hook scripts, probe (re)starts and the owned set come out
//! ([`Director::poll_effect`], [`Director::poll_timeout`]).
//!
//! The daemon (`daemon::checks`), `--apply-once`, `--release` and `--plan`
//! all run this core; only the way they carry out its effects differs.
//!
//! Order of effects, decided here:
//! - start: `lvs_flush`, `lvs_timeouts`, `lvs_sysctl`, then the table; [`Effect::TableReady`]
//!   tells the caller that VIPs may now attract traffic to it;
//! - reload: only what the file changed is recomputed and written; real
//!   servers and virtual servers the file removed drain (weight 0) for
//!   `drain_grace` before they are deleted;
//! - stop: announced VIPs are withdrawn first ([`Effect::Announce`]); the
//!   table stays while VRRP hands over ([`Event::VrrpStopped`]) and for
//!   `announce_withdraw_grace` after a withdrawal (routers move the traffic
//!   away), then omega's scripts run and our services are released (or the
//!   table flushed with `lvs_flush_on_stop`), unless `--dont-release-ipvs`;
//! - announcements (`announce`): a VIP is announced once the table is ready
//!   and while its virtual servers hold quorum ([`announce`]); with
//!   `announce_drain_metric`, the stop (and `ctl drain-director`) first
//!   drains: the routes take the drain metric until no new connection
//!   arrives or `announce_drain_time` is over, then they are withdrawn.

mod announce;
mod io;
mod kernel;
mod operator;
mod placement;
mod slow_start;
mod table;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipvs_sys::ServiceKey;

pub use announce::{AnnounceRequest, DRAIN_QUIET, DRAIN_READ_EVERY, DrainError};
pub use io::{Effect, Event, KernelReply, KernelRequest, Override, Saved};
use kernel::InFlight;
pub use operator::{OperatorError, Target, names_vs, parse_endpoint};
pub use placement::Placement;
use table::DesiredState;

use crate::FastMap;
use crate::check::health::{HealthTable, ProbePlan, RsKey};
use crate::check::state::{CheckerState, Millis};
use crate::config::model::{Config, RealServer, VirtualServer};
use crate::lvs::desired::{Health, QuorumMemory, RsHealth};
use crate::lvs::diff::Op;
use crate::lvs::kernel_error::KernelError;
use crate::lvs::names;
use crate::lvs::table::Table;

/// After a kernel exchange failed as a whole (no answer, socket error), the
/// table is re-read and repaired this much later.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Passes with more operations than this log a summary (each op at debug).
const LOG_EACH_UP_TO: usize = 20;
/// Drift re-reads are spaced at least this many times the last read's
/// length apart, so that re-reading a large table on a slow host costs at
/// most ~2% of the time (the drift interval is the floor).
const DRIFT_READ_SPACING: u32 = 50;

#[derive(Debug, Clone)]
pub struct Options {
    /// Read and write the kernel's table (off with --no-ipvs: health is
    /// judged and reported only).
    pub write_table: bool,
    /// Remove our services at stop (off with --dont-release-ipvs).
    pub release_on_stop: bool,
    /// How long a removed real server or virtual server drains at weight 0.
    pub drain_grace: Duration,
    /// How often the kernel table is re-read to repair drift (longer when
    /// reading it takes long: see DRIFT_READ_SPACING).
    pub drift_interval: Duration,
    /// VRRP runs in this process: at stop, the table is released only after
    /// [`Event::VrrpStopped`].
    pub vrrp_in_process: bool,
    /// The probes' clock starts here ([`CheckerState`] times are
    /// milliseconds since it).
    pub origin: Instant,
    /// Judge every real server alive (`Some(true)`) or down (`Some(false)`,
    /// alpha before the first check) instead of by its checkers: the
    /// one-shot commands.
    pub assume: Option<bool>,
    /// The health report is rewritten at most this often, when something it
    /// shows changed ([`Effect::WriteReport`]); None: no report (one-shot
    /// commands).
    pub report_every: Option<Duration>,
    /// Hand the operator's overrides out to be kept across restarts
    /// ([`Effect::SaveOverrides`], `--persist-overrides`).
    pub persist_overrides: bool,
    /// Announce VIPs (`announce`; off in the one-shot commands, which
    /// attract no traffic).
    pub announce: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Running,
    /// Stop received; waiting for VRRP to finish its handoff and for the
    /// withdrawn announcements' grace.
    AwaitingVrrp,
    Releasing,
    Stopped,
}

/// What the one-shot commands report: every op the kernel accepted or refused.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: Vec<Op>,
    pub failed: Vec<(Op, KernelError)>,
    /// Requests other than ops (flush, timeouts) that failed.
    pub errors: Vec<KernelError>,
}

pub struct Director {
    opts: Options,
    config: Arc<Config>,
    health: HealthTable,
    /// Each real server's health (plan.servers order) as last acted on.
    alive: Vec<bool>,
    overrides: FastMap<RsKey, Override>,
    /// Real servers ramping up their weight (`slow_start`).
    ramps: FastMap<RsKey, slow_start::Ramp>,
    quorum: QuorumMemory,
    table: DesiredState,
    /// Services ipvsdir created and may delete.
    owned: BTreeSet<ServiceKey>,
    saved_owned: Option<BTreeSet<ServiceKey>>,
    /// Our view of the kernel table as last read and written; None when it
    /// must be read again.
    written: Option<Table>,
    busy: Option<InFlight>,
    /// Requests to send before the table (flush, timeouts).
    queued: VecDeque<KernelRequest>,
    next_drift: Option<Instant>,
    /// How long the last full read took (sent -> answered).
    read_took: Duration,
    retry_at: Option<Instant>,
    /// Drift repairs and failures already logged (a fight with another tool
    /// logs once).
    logged: BTreeSet<String>,
    stage: Stage,
    vrrp_stopped: bool,
    /// Emit TableReady once the pending work is done.
    ready_pending: bool,
    /// A new probe plan (start, reload) or an operator override is not in
    /// the report yet: the next
    /// tick writes it whatever the probes say. Only ticks write the report,
    /// so that writing one (a line per real server) never delays an apply
    /// or what waits for it (VRRP's start).
    report_plan: bool,
    next_report: Option<Instant>,
    effects: VecDeque<Effect>,
    outcome: Outcome,
    announce: announce::AnnounceState,
}

/// The health view `desired` reads: the checkers' verdicts, the operator's
/// overrides, or what a one-shot command assumes.
struct View<'a> {
    health: &'a HealthTable,
    overrides: &'a FastMap<RsKey, Override>,
    ramps: &'a FastMap<RsKey, slow_start::Ramp>,
    assume: Option<bool>,
}

impl Health for View<'_> {
    fn real_server(&self, vs: &VirtualServer, rs: &RealServer) -> RsHealth {
        let mut h = match self.assume {
            Some(alive) => RsHealth {
                alive,
                weight: None,
            },
            None => self.health.real_server(vs, rs),
        };
        if self.overrides.is_empty() && self.ramps.is_empty() {
            return h;
        }
        let key = RsKey::of(vs, rs);
        match self.overrides.get(&key) {
            Some(Override::Drain) if h.alive => h.weight = Some(0),
            Some(Override::Disable) => h.alive = false,
            Some(Override::Weight(w)) if h.alive => h.weight = Some(*w),
            _ => {}
        }
        if h.alive
            && let Some(r) = self.ramps.get(&key)
        {
            h.weight = Some(slow_start::ramped(
                h.weight.unwrap_or(rs.weight),
                r.fraction,
            ));
        }
        h
    }
}

impl Director {
    /// `owned`: the services an earlier run recorded as ours.
    pub fn new(config: Config, opts: Options, owned: BTreeSet<ServiceKey>) -> Self {
        let config = Arc::new(config);
        let plan = Arc::new(ProbePlan::new(&config));
        let health = HealthTable::new(plan.clone(), 0);
        let table = DesiredState::new(config.virtual_servers.len());
        let mut d = Director {
            alive: Vec::new(),
            health,
            overrides: FastMap::default(),
            ramps: FastMap::default(),
            quorum: QuorumMemory::default(),
            table,
            owned,
            saved_owned: None,
            written: None,
            busy: None,
            queued: VecDeque::new(),
            next_drift: None,
            read_took: Duration::ZERO,
            retry_at: None,
            logged: BTreeSet::new(),
            stage: Stage::Idle,
            vrrp_stopped: false,
            ready_pending: false,
            report_plan: false,
            next_report: None,
            effects: VecDeque::new(),
            outcome: Outcome::default(),
            announce: announce::AnnounceState::new(&config, opts.announce),
            config,
            opts,
        };
        d.alive = d.alive_now();
        d.table.mark_all_dirty();
        d
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The probes' states as last acted on.
    pub fn health(&self) -> &HealthTable {
        &self.health
    }

    /// The table as the configuration, health, overrides and drains want it.
    pub fn desired(&mut self) -> &Table {
        self.refresh();
        self.table.desired()
    }

    /// Every VIP with `announce`: whether it is announced now, and why.
    pub fn announcements(&self) -> Vec<crate::lvs::announce::VipStatus> {
        self.announce.status()
    }

    /// The director's drain, if one is under way or done.
    pub fn drain_status(&self) -> Option<crate::lvs::announce::DrainStatus> {
        self.announce.drain_status()
    }

    pub fn is_stopped(&self) -> bool {
        self.stage == Stage::Stopped
    }

    /// What the kernel accepted and refused since the start (one-shot commands).
    pub fn take_outcome(&mut self) -> Outcome {
        std::mem::take(&mut self.outcome)
    }

    fn millis(&self, now: Instant) -> Millis {
        now.saturating_duration_since(self.opts.origin).as_millis() as Millis
    }

    fn alive_now(&self) -> Vec<bool> {
        (0..self.health.plan.servers.len())
            .map(|i| self.alive_of(i))
            .collect()
    }

    /// Whether real server `i` (plan.servers order) is in the table now.
    fn alive_of(&self, i: usize) -> bool {
        let (_, v, r) = self.health.plan.servers[i];
        let vs = &self.config.virtual_servers[v];
        self.view().real_server(vs, &vs.real_servers[r]).alive
    }

    fn view(&self) -> View<'_> {
        View {
            health: &self.health,
            overrides: &self.overrides,
            ramps: &self.ramps,
            assume: self.opts.assume,
        }
    }

    pub fn handle(&mut self, now: Instant, event: Event) {
        match event {
            Event::Start => self.start(now),
            Event::Probes(updates) => self.on_probes(now, &updates),
            Event::Reload(config) => self.reload(now, *config),
            Event::Kernel(reply) => self.on_kernel(now, reply),
            Event::Stop => self.on_stop(now),
            Event::VrrpStopped => {
                self.vrrp_stopped = true;
                if self.stage == Stage::AwaitingVrrp {
                    if self.handoff_done(now) {
                        tracing::info!("VRRP has handed over: releasing the IPVS table");
                        self.begin_release();
                    } else if self.opts.vrrp_in_process {
                        tracing::info!(
                            "VRRP has handed over; the IPVS table is released after the withdrawal's grace"
                        );
                    }
                }
            }
            Event::VrrpState { instance, master } => self.announce.vrrp_state(instance, master),
        }
        self.drain_deadline(now);
        self.first_checks_deadline(now);
        self.release_when_done(now);
        self.pump(now);
        self.announce_step();
        self.announce_tick(now);
    }

    /// Nothing holds the release back any more: VRRP has handed over (or
    /// runs elsewhere) and the withdrawal's grace is over.
    fn handoff_done(&self, now: Instant) -> bool {
        (!self.opts.vrrp_in_process || self.vrrp_stopped)
            && !self.announce.draining()
            && self.announce.withdraw_until.is_none_or(|t| now >= t)
    }

    /// At stop, once the drain, the withdrawal's grace and VRRP's handoff
    /// are all over: the release.
    fn release_when_done(&mut self, now: Instant) {
        if self.stage == Stage::AwaitingVrrp && self.handoff_done(now) {
            tracing::info!("VIPs withdrawn and their grace over: releasing the IPVS table");
            self.begin_release();
        }
    }

    /// Drain deadlines, drift ticks, retries and report ticks that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.table.expire_drains(now);
        self.step_ramps(now);
        if let (Some(at), Some(every)) = (self.next_report, self.opts.report_every)
            && now >= at
        {
            self.next_report = Some(now + every);
            let force = std::mem::take(&mut self.report_plan);
            self.effects.push_back(Effect::WriteReport { force });
        }
        if self.announce.withdraw_until.is_some_and(|t| now >= t) {
            self.announce.withdraw_until = None;
        }
        self.drain_deadline(now);
        self.release_when_done(now);
        self.pump(now);
        self.announce_step();
        self.announce_tick(now);
    }

    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// The next moment [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut at = self.table.next_drain_deadline();
        for t in [
            self.next_report,
            self.next_ramp_step(),
            self.announce.withdraw_until,
            self.announce.first_checks_until,
            self.announce.next_check,
            self.announce.drain_until(),
        ]
        .into_iter()
        .flatten()
        {
            at = Some(at.map_or(t, |a| a.min(t)));
        }
        if self.stage == Stage::Running && self.opts.write_table && self.busy.is_none() {
            for t in [self.next_drift, self.retry_at].into_iter().flatten() {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        }
        if self.opts.write_table
            && self.busy.is_none()
            && let Some(t) = self.announce.drain.as_ref().and_then(|d| d.next_read)
        {
            at = Some(at.map_or(t, |a| a.min(t)));
        }
        at
    }

    fn start(&mut self, now: Instant) {
        if self.stage != Stage::Idle {
            return;
        }
        self.stage = Stage::Running;
        self.announce_start(now);
        let config = &self.config;
        tracing::info!(
            "Starting healthcheckers: {} virtual servers, {} probes ({} identical checkers share a probe)",
            config.virtual_servers.len(),
            self.health.plan.probes.len(),
            self.health.plan.users.iter().sum::<usize>() - self.health.plan.probes.len()
        );
        // The same verdicts as at `new` (alive_now), timed from now.
        let at = self.millis(now);
        self.health = HealthTable::new(self.health.plan.clone(), at);
        if self.opts.assume.is_none() {
            self.effects.push_back(Effect::StartProbes {
                config: self.config.clone(),
                plan: self.health.plan.clone(),
                states: self.health.states.clone(),
            });
        }
        if self.opts.write_table {
            if config.global.lvs.flush {
                self.queued.push_back(KernelRequest::Flush);
            }
            self.queue_timeouts();
            self.queue_sysctls();
            self.next_drift = Some(now + self.opts.drift_interval);
        } else {
            tracing::info!("--no-ipvs: health is reported only, the IPVS table is left alone");
        }
        if let Some(every) = self.opts.report_every {
            self.report_plan = true;
            self.next_report = Some(now + every);
        }
        self.ready_pending = true;
    }

    /// The table reflects the last start or reload.
    pub(super) fn table_ready(&mut self) {
        self.ready_pending = false;
        self.effects.push_back(Effect::TableReady);
        self.announce_live();
    }

    fn queue_timeouts(&mut self) {
        let t = self.config.global.lvs.timeouts;
        if t.tcp.is_some() || t.tcpfin.is_some() || t.udp.is_some() {
            self.queued
                .push_back(KernelRequest::SetTimeouts(ipvs_sys::Timeouts {
                    tcp: t.tcp,
                    tcp_fin: t.tcpfin,
                    udp: t.udp,
                }));
        }
    }

    /// `lvs_sysctl`: before the table, as the flows it lets continue may
    /// already be arriving. Values the file drops are left as they are.
    fn queue_sysctls(&mut self) {
        let values = self.config.global.lvs.sysctl.set();
        if !values.is_empty() {
            self.queued.push_back(KernelRequest::SetSysctls(values));
        }
    }

    fn run_script(&mut self, script: &Option<crate::config::model::Script>, what: String) {
        if let Some(script) = script {
            self.effects.push_back(Effect::RunScript {
                script: script.clone(),
                what,
            });
        }
    }

    /// keepalived's `RS [rip]:tcp:80 [vip]:tcp:80 UP|DOWN` FIFO line, where
    /// it runs notify_up/notify_down.
    fn fifo_rs(&mut self, v: usize, r: usize, up: bool) {
        if !self.config.global.notify_fifos.wants_lvs() {
            return;
        }
        let vs = &self.config.virtual_servers[v];
        let line = format!(
            "RS {} {} {}",
            names::real_server(vs, &vs.real_servers[r]),
            names::virtual_server(vs),
            if up { "UP" } else { "DOWN" }
        );
        self.effects.push_back(Effect::FifoLine(line));
    }

    /// keepalived's `VS [vip]:tcp:80 UP|DOWN` FIFO line, where it runs
    /// quorum_up/quorum_down.
    fn fifo_vs(&mut self, v: usize, up: bool) {
        if !self.config.global.notify_fifos.wants_lvs() {
            return;
        }
        let vs = &self.config.virtual_servers[v];
        let line = format!(
            "VS {} {}",
            names::virtual_server(vs),
            if up { "UP" } else { "DOWN" }
        );
        self.effects.push_back(Effect::FifoLine(line));
    }

    /// Copies the changed probes' states; logs and notifies the real
    /// servers whose health changed; marks their virtual servers for
    /// recomputation.
    fn on_probes(&mut self, at: Instant, updates: &[(usize, CheckerState)]) {
        let plan = self.health.plan.clone();
        let mut touched = Vec::new();
        // Checkers that went up or down (for the mail alerts).
        let mut flipped = Vec::new();
        for (id, state) in updates {
            let Some(slot) = self.health.states.get_mut(*id) else {
                continue;
            };
            if slot.up != state.up {
                flipped.push(*id);
            }
            let first = slot.last.is_none() && state.last.is_some();
            let weight_changed = slot.dynamic_weight != state.dynamic_weight;
            *slot = state.clone();
            if first {
                // Announcements wait for every first result at the start.
                self.first_result();
            }
            for &i in &plan.servers_of[*id] {
                touched.push(i);
                if weight_changed {
                    self.table.mark_dirty(plan.servers[i].1);
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let mut moved = Vec::new();
        for i in touched {
            let now = self.alive_of(i);
            if now == self.alive[i] {
                continue;
            }
            self.alive[i] = now;
            moved.push(i);
            let (key, v, r) = &plan.servers[i];
            self.table.mark_dirty(*v);
            if now {
                self.start_ramp(at, i);
            } else {
                self.stop_ramp(key);
            }
            let vs = &self.config.virtual_servers[*v];
            let rs = &vs.real_servers[*r];
            let (rsn, vsn) = (names::real_server(vs, rs), names::virtual_server(vs));
            let (up, down) = (rs.notify_up.clone(), rs.notify_down.clone());
            if now {
                tracing::info!("Adding service {rsn} to VS {vsn}");
                self.run_script(&up, format!("notify_up for {rsn}"));
            } else {
                let why = self.health.down_reasons(key).join("; ");
                if crate::lvs::desired::keeps_failed(vs, rs) {
                    tracing::warn!("Disabling service {rsn} of VS {vsn} (weight 0): {why}");
                } else {
                    tracing::warn!("Removing service {rsn} from VS {vsn}: {why}");
                }
                self.run_script(&down, format!("notify_down for {rsn}"));
            }
            // After the script, as keepalived.
            self.fifo_rs(*v, *r, now);
        }
        // The table is about to change: the report says why now, not at the
        // next tick, so that `--dump --health` does not show a server out of
        // the table with the verdict before. At most once per fifth of the
        // interval: a flapping rack makes no storm of reports.
        if !moved.is_empty()
            && let (Some(next), Some(every)) = (self.next_report, self.opts.report_every)
        {
            let soonest = next.checked_sub(every).map_or(at, |last| last + every / 5);
            self.next_report = Some(next.min(at.max(soonest)));
        }
        if !flipped.is_empty() && self.config.global.mail_configured() {
            self.mail_checkers(&plan, &flipped, &moved);
        }
    }

    /// keepalived's mail for each checker that went up or down, once per
    /// real server it judges (`moved`: the servers whose state changed).
    fn mail_checkers(&mut self, plan: &ProbePlan, flipped: &[usize], moved: &[usize]) {
        let config = self.config.clone();
        for &id in flipped {
            let (Some(checker), Some(state)) = (plan.probes.get(id), self.health.states.get(id))
            else {
                continue;
            };
            let reason = state.last.as_ref().map(|l| l.reason.as_ref());
            for &i in &plan.servers_of[id] {
                let (_, v, r) = &plan.servers[i];
                let vs = &config.virtual_servers[*v];
                let rs = &vs.real_servers[*r];
                let change = crate::mail::compose::CheckerChange {
                    kind: &checker.kind,
                    up: state.up,
                    rs_alive: self.alive[i],
                    rs_changed: moved.binary_search(&i).is_ok(),
                    reason,
                };
                if let Some(alert) = crate::mail::compose::checker(
                    &config.global,
                    rs.smtp_alert,
                    &names::real_server(vs, rs),
                    &names::virtual_server(vs),
                    &change,
                ) {
                    self.effects.push_back(Effect::Mail(alert));
                }
            }
        }
    }

    /// SIGHUP: probes identical to running ones keep their state, new ones
    /// start fresh; virtual servers the file did not change keep their part
    /// of the table untouched; removed real servers and virtual servers drain.
    fn reload(&mut self, now: Instant, config: Config) {
        if matches!(self.stage, Stage::Releasing | Stage::Stopped) {
            return;
        }
        self.refresh();
        let config = Arc::new(config);
        let plan = Arc::new(ProbePlan::new(&config));
        let index: FastMap<&crate::config::model::Checker, usize> = self
            .health
            .plan
            .probes
            .iter()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        let at = self.millis(now);
        let mut kept = 0;
        let states: Vec<CheckerState> = plan
            .probes
            .iter()
            .map(|c| match index.get(c) {
                Some(&j) => {
                    kept += 1;
                    self.health.states[j].clone()
                }
                None => CheckerState::new(&c.common, at),
            })
            .collect();
        let removed = self.health.states.len() - kept;
        let started = states.len() - kept;
        let overrides_before = self.overrides.len();
        self.overrides.retain(|k, _| plan.of_rs.contains_key(k));
        // Which old virtual server (by position) each new one continues.
        let old = &self.config;
        let mut old_pos: FastMap<_, usize> = old
            .virtual_servers
            .iter()
            .enumerate()
            .map(|(i, vs)| ((vs.key.clone(), vs.protocol), i))
            .collect();
        let mut same = Vec::with_capacity(config.virtual_servers.len());
        for vs in &config.virtual_servers {
            let o = old_pos.remove(&(vs.key.clone(), vs.protocol));
            let unchanged = o.is_some_and(|i| {
                old.virtual_servers[i] == *vs && group_of(old, vs) == group_of(&config, vs)
            });
            same.push(if unchanged { o } else { None });
        }
        self.notify_removed(&plan, &config);
        let old_entries = self.table.begin_reload(config.virtual_servers.len(), &same);
        if config.global.lvs.timeouts != self.config.global.lvs.timeouts && self.opts.write_table {
            self.config = config.clone();
            self.queue_timeouts();
        }
        if config.global.lvs.sysctl != self.config.global.lvs.sysctl && self.opts.write_table {
            self.config = config.clone();
            self.queue_sysctls();
        }
        self.announce_reload(&config);
        self.config = config;
        self.health = HealthTable { plan, states };
        self.reindex_ramps();
        if self.overrides.len() != overrides_before {
            tracing::info!(
                "{} operator overrides dropped: their real servers left the configuration",
                overrides_before - self.overrides.len()
            );
            self.overrides_changed();
        }
        self.alive = self.alive_now();
        self.refresh();
        let grace = (!self.opts.drain_grace.is_zero()).then(|| now + self.opts.drain_grace);
        let secs = self.opts.drain_grace.as_secs();
        self.table.drain_removed(old_entries, grace, &|what| {
            tracing::info!("Draining {what} (removed by the reload): weight 0, deleted in {secs} s")
        });
        if self.opts.assume.is_none() {
            self.effects.push_back(Effect::StartProbes {
                config: self.config.clone(),
                plan: self.health.plan.clone(),
                states: self.health.states.clone(),
            });
        }
        tracing::info!(
            "Reloaded healthcheckers: {kept} probes kept, {started} new, {removed} removed"
        );
        self.report_plan = self.opts.report_every.is_some();
        self.ready_pending = true;
    }

    /// Before a reload takes effect: the real servers it removes (alone or
    /// with their virtual server) that were up get notify_down, their FIFO
    /// `DOWN` line and the `=> Removing <=` mail; a removed virtual server
    /// that held quorum gets quorum_down, its FIFO line and the `Lost
    /// quorum` mail (keepalived 2.2.7's clear_diff_services). Their table
    /// entries drain as before.
    fn notify_removed(&mut self, new_plan: &ProbePlan, new: &Config) {
        let old = self.config.clone();
        let plan = self.health.plan.clone();
        for (i, (key, v, r)) in plan.servers.iter().enumerate() {
            if new_plan.of_rs.contains_key(key) || !self.alive.get(i).copied().unwrap_or(false) {
                continue;
            }
            self.clear_rs(&old, *v, *r, false);
        }
        let kept: crate::FastSet<_> = new
            .virtual_servers
            .iter()
            .map(|vs| (&vs.key, vs.protocol))
            .collect();
        for (v, vs) in old.virtual_servers.iter().enumerate() {
            if kept.contains(&(&vs.key, vs.protocol)) {
                continue;
            }
            let held = self.quorum.held(vs);
            self.quorum.forget(vs);
            if held != Some(true) {
                continue;
            }
            let vsn = names::virtual_server(vs);
            tracing::info!("Removing Virtual Server {vsn}: lost quorum {}", vs.quorum);
            self.run_script(&vs.quorum_down, format!("quorum_down for VS {vsn}"));
            self.fifo_vs(v, false);
            if let Some(alert) = crate::mail::compose::quorum(
                &old.global,
                vs.smtp_alert,
                &vsn,
                false,
                false,
                (vs.quorum, vs.hysteresis),
                0,
            ) {
                self.effects.push_back(Effect::Mail(alert));
            }
        }
    }

    fn on_stop(&mut self, now: Instant) {
        if matches!(self.stage, Stage::Idle | Stage::Running) {
            // First of all: routers stop sending traffic here.
            self.announce_stop(now);
        }
        match self.stage {
            Stage::Running if !self.handoff_done(now) => {
                if self.opts.vrrp_in_process && !self.vrrp_stopped {
                    tracing::info!(
                        "Stopping: the IPVS table stays until VRRP has handed over the VIPs"
                    );
                }
                self.stage = Stage::AwaitingVrrp;
            }
            Stage::Idle | Stage::Running => self.begin_release(),
            _ => {}
        }
    }

    /// Nothing attracts traffic to our services any more: omega's scripts,
    /// probes stopped, then the table released.
    fn begin_release(&mut self) {
        let was_running = self.stage != Stage::Idle;
        self.stage = Stage::Releasing;
        // The probes stop: their report has nothing new to say.
        self.next_report = None;
        self.report_plan = false;
        self.refresh();
        if was_running {
            self.omega();
            if self.opts.assume.is_none() {
                self.effects.push_back(Effect::StopProbes);
            }
        }
        self.owned
            .extend(self.table.desired().services.keys().copied());
        if !self.opts.write_table || !self.opts.release_on_stop {
            self.finish_stop();
        }
    }

    /// omega: at shutdown, the down notifiers of servers that are up.
    fn omega(&mut self) {
        let config = self.config.clone();
        let plan = self.health.plan.clone();
        for (i, &(_, v, r)) in plan.servers.iter().enumerate() {
            if config.virtual_servers[v].omega && self.alive.get(i).copied().unwrap_or(false) {
                self.clear_rs(&config, v, r, true);
            }
        }
        for (v, vs) in config.virtual_servers.iter().enumerate() {
            if vs.omega && self.quorum.held(vs) == Some(true) {
                let vsn = names::virtual_server(vs);
                self.run_script(&vs.quorum_down, format!("quorum_down (omega) for VS {vsn}"));
                self.fifo_vs(v, false);
                if let Some(alert) =
                    crate::mail::compose::vs_shutdown(&config.global, vs.smtp_alert, &vsn)
                {
                    self.effects.push_back(Effect::Mail(alert));
                }
            }
        }
    }

    /// A real server that was up leaves (`stopping`: omega at shutdown; else
    /// a reload removed it; `config` is the one in force, naming it):
    /// notify_down, its FIFO
    /// `DOWN` line, the mail (keepalived's clear_service_rs).
    fn clear_rs(&mut self, config: &Config, v: usize, r: usize, stopping: bool) {
        let vs = &config.virtual_servers[v];
        let rs = &vs.real_servers[r];
        let (rsn, vsn) = (names::real_server(vs, rs), names::virtual_server(vs));
        if stopping {
            self.run_script(&rs.notify_down, format!("notify_down (omega) for {rsn}"));
        } else {
            tracing::info!("service {rsn} of VS {vsn} no longer exists: notifying it down");
            self.run_script(&rs.notify_down, format!("notify_down for {rsn}"));
        }
        self.fifo_rs(v, r, false);
        let mail =
            crate::mail::compose::rs_cleared(&config.global, rs.smtp_alert, &rsn, &vsn, stopping);
        if let Some(alert) = mail {
            self.effects.push_back(Effect::Mail(alert));
        }
    }

    fn finish_stop(&mut self) {
        if self.opts.write_table && self.opts.release_on_stop {
            self.owned.clear();
            self.save_owned();
        }
        self.stage = Stage::Stopped;
        self.effects.push_back(Effect::Stopped);
    }

    /// Recomputes the virtual servers marked dirty (their quorum
    /// transitions run their scripts).
    fn refresh(&mut self) {
        let dirty = self.table.take_dirty();
        if dirty.is_empty() {
            return;
        }
        let config = self.config.clone();
        for v in dirty {
            let vs = &config.virtual_servers[v];
            let before = self.quorum.held(vs);
            let view = View {
                health: &self.health,
                overrides: &self.overrides,
                ramps: &self.ramps,
                assume: self.opts.assume,
            };
            let services = crate::lvs::desired::vs_services(&config, vs, &view, &mut self.quorum);
            let now = self.quorum.held(vs);
            let changed = before != now && now.is_some();
            let mail = match now {
                Some(up) if changed && vs.smtp_alert && config.global.mail_configured() => {
                    crate::mail::compose::quorum(
                        &config.global,
                        vs.smtp_alert,
                        &names::virtual_server(vs),
                        up,
                        before.is_none(),
                        (vs.quorum, vs.hysteresis),
                        crate::lvs::desired::live_weight(vs, &view),
                    )
                }
                _ => None,
            };
            self.table.set_vs(v, services);
            if !changed {
                continue;
            }
            self.announce.quorum_changed(vs);
            let vsn = names::virtual_server(vs);
            if now == Some(true) && before.is_none() {
                // The first verdict, at start: one line per virtual server
                // would be noise (and cost) on large files.
                tracing::debug!("Quorum {} held for VS {vsn}", vs.quorum);
                self.run_script(&vs.quorum_up, format!("quorum_up for VS {vsn}"));
            } else if now == Some(true) {
                tracing::info!("Gained quorum {} for VS {vsn}", vs.quorum);
                self.run_script(&vs.quorum_up, format!("quorum_up for VS {vsn}"));
            } else {
                tracing::warn!("Lost quorum {} for VS {vsn}", vs.quorum);
                self.run_script(&vs.quorum_down, format!("quorum_down for VS {vsn}"));
            }
            self.fifo_vs(v, now == Some(true));
            if let Some(alert) = mail {
                self.effects.push_back(Effect::Mail(alert));
            }
        }
    }
}

/// The group a virtual_server names, if any (a reload that changes the
/// group changes the virtual server).
fn group_of<'a>(
    config: &'a Config,
    vs: &VirtualServer,
) -> Option<&'a crate::config::model::VirtualServerGroup> {
    match &vs.key {
        crate::config::model::VirtualServerKey::Group { name } => config
            .virtual_server_groups
            .iter()
            .find(|g| &g.name == name),
        _ => None,
    }
}
