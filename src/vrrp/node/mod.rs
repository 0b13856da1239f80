//! The whole VRRP node as a pure core: every instance of the process, the
//! trackers' effect on priority, sync groups, the GARP/NA schedules and
//! their pacing, the lower-priority re-announce policy, the
//! make-before-break handoff at stop, reload carry-over and the VIP diffs.
//!
//! quinn-proto's shape: events go in with [`Node::handle`] (and
//! [`Node::handle_packet`] for a received packet, which runs the cheap
//! screening, the decode and the validation first); what to do comes out of
//! [`Node::poll_effect`]; [`Node::poll_timeout`] says when to feed
//! [`Event::Timer`] next. Time is virtual ([`Micros`] on the caller's
//! clock). Nothing here waits: scripts, sockets and netlink are the
//! driver's (`vrrp::driver`), which feeds their results back as events.
//!
//! Effects are numbered by instance index. A reload renumbers: the
//! effects queued before [`Effect::Reloaded`] use the previous numbering
//! (the instances it removed leave then), those after it the new one.

mod announce;
mod attach;
mod log;
mod receive;
mod reload;
mod stop;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::model::{Config, VirtualAddress, VirtualRoute};
use crate::log_limit::LogLimit;

use super::garp::schedule::{GarpParams, GarpSchedule, Pacer, PlannedSend};
use super::instance::Instance;
pub(crate) use super::notify::Job;
use super::notify::state_word;
use super::state::{Action, Input, Micros, State};
use super::track::ScriptTracker;
use super::validate::DropKind;

use log::{LOG_PERIOD, LogKey};
use stop::Handoff;

pub use attach::ATTACH_RETRY;

/// How long a stopping master keeps its VIPs waiting for a successor
/// (the backup takes over after Skew_Time, at most 1 s with v2).
pub const HANDOFF_WAIT: Duration = Duration::from_millis(1500);
/// The stop's priority-0 advert is repeated this often, in case one is lost.
pub const HANDOFF_RESEND: Duration = Duration::from_millis(250);
/// After the new master's advert, a moment for its gratuitous ARPs.
pub const HANDOFF_GARP_GRACE: Duration = Duration::from_millis(50);
/// The status report is refreshed at most this often for counter changes
/// (state changes are written at once).
pub const REPORT_PERIOD: Duration = Duration::from_secs(1);

fn us(d: Duration) -> Micros {
    Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX)
}

/// An interface an instance sends on and puts its VIPs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    /// 0 (no interface has it): the interface does not exist (yet).
    pub index: u32,
    pub mac: [u8; 6],
}

impl Iface {
    /// An interface that does not exist (yet): its instance waits in FAULT.
    pub fn missing(name: &str) -> Iface {
        Iface {
            name: name.to_string(),
            index: 0,
            mac: [0; 6],
        }
    }

    pub fn exists(&self) -> bool {
        self.index != 0
    }
}

/// What the driver found out for one configured instance before it runs:
/// its advert source, its interface and the socket (index) it uses. An
/// instance whose interface does not exist has [`Iface::missing`] (and a
/// socket index no socket has): it waits in FAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSetup {
    pub src: IpAddr,
    pub iface: Iface,
    pub socket: usize,
}

#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Remove the VIPs at stop (keepalived's default; --dont-release-vrrp keeps them).
    pub release_vips: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions { release_vips: true }
    }
}

/// What happens to the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Start every instance; `links`: the tracked interfaces' state now;
    /// `files`: the tracked files' values now (index, value).
    Start {
        links: Vec<(String, bool)>,
        files: Vec<(usize, i64)>,
        /// The tracked processes' quorum states now (index, up).
        processes: Vec<(usize, bool)>,
    },
    /// A received advert, already decoded and validated by instance
    /// `instance` (see [`Node::handle_packet`] for raw packets).
    Advert {
        instance: usize,
        src: IpAddr,
        priority: u8,
        /// Master_Adver_Interval carried by the advert (v3) or our own (v2).
        interval: Duration,
    },
    /// The deadline from [`Node::poll_timeout`] has passed.
    Timer,
    /// A tracked file (index into the configuration's track_files) holds
    /// a new value.
    TrackFile { index: usize, value: i64 },
    /// A vrrp_script run began.
    ScriptStarted { index: usize },
    /// A tracked process (index into the configuration's track_processes)
    /// gained (`up`) or lost its quorum.
    TrackProcess { index: usize, up: bool },
    /// A vrrp_script run ended; `detail` describes how (for the log).
    Script {
        index: usize,
        success: bool,
        detail: String,
    },
    /// A link went up or down.
    Link { name: String, up: bool },
    /// The interface `name` was deleted.
    LinkRemoved { name: String },
    /// The driver opened the interface of instance `instance` (asked by
    /// [`Effect::OpenInterface`]).
    InterfaceReady {
        instance: usize,
        setup: InstanceSetup,
    },
    /// The driver could not open it; `missing`: it does not exist.
    InterfaceFailed {
        instance: usize,
        error: String,
        missing: bool,
    },
    /// A reload is about to replace the instances: masters advertise now,
    /// so a short advert_int never sees a gap.
    ReloadBegin,
    /// The new, validated configuration with its setup (one per instance,
    /// in order) and the tracked links' state.
    Reload {
        config: Box<Config>,
        setup: Vec<InstanceSetup>,
        links: Vec<(String, bool)>,
        /// The new configuration's tracked files' values (index, value).
        files: Vec<(usize, i64)>,
        /// The new configuration's tracked processes' states (index, up).
        processes: Vec<(usize, bool)>,
    },
    /// Leave: hand over (make-before-break), then stop every instance.
    Stop,
    /// An advert of instance `instance` could not be sent to `dst`.
    SendFailed {
        instance: usize,
        dst: IpAddr,
        error: String,
    },
    /// A gratuitous ARP / NA of instance `instance` could not be sent.
    AnnounceFailed {
        instance: usize,
        vip: IpAddr,
        error: String,
    },
}

/// Whose notify scripts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyTarget {
    Instance(usize),
    Group(usize),
}

/// What the driver carries out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send these encoded packets (bytes, destination) on the instance's socket.
    Advert {
        instance: usize,
        priority: u8,
        src: IpAddr,
        packets: Vec<(Vec<u8>, IpAddr)>,
    },
    /// Add (or remove) these VIPs, routes and policy rules.
    Vips {
        instance: usize,
        add: bool,
        vips: Vec<VirtualAddress>,
        routes: Vec<VirtualRoute>,
        rules: Vec<crate::config::model::VirtualRule>,
    },
    /// One gratuitous ARP (IPv4) or unsolicited NA (IPv6) for `vip`, now.
    Announce { instance: usize, vip: IpAddr },
    /// Run notify scripts and write the job's line to the notify FIFOs.
    Notify { target: NotifyTarget, job: Job },
    /// Write this line to the notify FIFOs only (priority changes, states
    /// rewritten at a reload): no script runs.
    FifoLine(Job),
    /// Mail this alert (`smtp_alert`): an instance or sync group changed
    /// state. Emitted only when the file configures mail.
    Mail(crate::mail::compose::Alert),
    /// An instance changed state (for those that follow: lvs_sync_daemon).
    Transition {
        instance: usize,
        name: String,
        state: State,
    },
    /// Look up instance `instance`'s interface and open its socket; answer
    /// with [`Event::InterfaceReady`] or [`Event::InterfaceFailed`].
    OpenInterface { instance: usize },
    /// Write the status report (it changed).
    WriteReport,
    /// A reload's new numbering starts with the next effect.
    Reloaded,
    /// The stop is complete: handoff ended, instances stopped.
    Stopped,
}

#[derive(Debug, Clone, Copy, Default)]
struct ReportClock {
    /// A transition happened: write at once.
    dirty: bool,
    /// Something else changed: write when [`REPORT_PERIOD`] allows.
    pending: bool,
    written: Option<Micros>,
}

#[derive(Debug)]
pub struct Node {
    config: Config,
    options: NodeOptions,
    /// What [`Micros`] 0 is, for the log limiter (its clock is an Instant).
    epoch: Instant,
    instances: Vec<Instance>,
    ifaces: Vec<Iface>,
    /// Socket index per instance.
    inst_socket: Vec<usize>,
    scripts: Vec<ScriptTracker>,
    /// Each track_file's value (0 until read).
    files: Vec<i64>,
    /// Each track_process's quorum state (down until told).
    processes: Vec<bool>,
    links_up: HashMap<String, bool>,
    /// Per instance: waiting for its interface to exist.
    waiting: Vec<Option<attach::Waiting>>,
    garps: Vec<GarpSchedule>,
    /// Announcement pacing per interface index (garp_interval / gna_interval).
    pacers: HashMap<u32, Pacer>,
    /// Planned announcements: (instance, when, VIP), sorted by time.
    pending: Vec<(usize, PlannedSend)>,
    group_states: Vec<State>,
    /// Repeated warnings (drops, send and announce errors), per instance
    /// and reason: a flood logs a line per 10 s, then how many were held back.
    limiter: LogLimit<LogKey>,
    /// Adverts dropped before any instance could be named (malformed, or
    /// for a VRID no instance on that socket has).
    unmatched_drops: BTreeMap<DropKind, u64>,
    /// The stop's priority-0 advert went out already (make-before-break).
    zero_sent: Vec<bool>,
    report: ReportClock,
    handoff: Option<Handoff>,
    stopped: bool,
    effects: VecDeque<Effect>,
}

impl Node {
    /// The node for `config`, with one [`InstanceSetup`] per configured
    /// instance, in order. Nothing runs until [`Event::Start`].
    pub fn new(
        config: &Config,
        setup: Vec<InstanceSetup>,
        options: NodeOptions,
        epoch: Instant,
    ) -> Node {
        let mut instances = Vec::new();
        let mut ifaces = Vec::new();
        let mut inst_socket = Vec::new();
        let mut waiting = Vec::new();
        for (i, s) in setup
            .into_iter()
            .enumerate()
            .take(config.vrrp_instances.len())
        {
            instances.push(Instance::new(config, i, s.src));
            waiting.push((!s.iface.exists()).then(attach::Waiting::default));
            ifaces.push(s.iface);
            inst_socket.push(s.socket);
        }
        let garps = config
            .vrrp_instances
            .iter()
            .take(instances.len())
            .map(|vi| {
                GarpSchedule::new(GarpParams {
                    master_delay: vi.garp_master_delay.0,
                    master_repeat: vi.garp_master_repeat,
                    master_refresh: vi.garp_master_refresh.map(|t| t.0),
                    master_refresh_repeat: vi.garp_master_refresh_repeat,
                })
            })
            .collect();
        Node {
            options,
            epoch,
            zero_sent: vec![false; instances.len()],
            instances,
            ifaces,
            inst_socket,
            scripts: config
                .vrrp_scripts
                .iter()
                .map(|s| ScriptTracker::new(s.rise, s.fall, s.init_fail))
                .collect(),
            files: vec![0; config.track_files.len()],
            processes: vec![false; config.track_processes.len()],
            links_up: HashMap::new(),
            waiting,
            garps,
            pacers: HashMap::new(),
            pending: Vec::new(),
            group_states: vec![State::Init; config.vrrp_sync_groups.len()],
            limiter: LogLimit::new(LOG_PERIOD, 1024),
            unmatched_drops: BTreeMap::new(),
            report: ReportClock {
                dirty: true,
                ..ReportClock::default()
            },
            handoff: None,
            stopped: false,
            effects: VecDeque::new(),
            config: config.clone(),
        }
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn instance(&self, i: usize) -> Option<&Instance> {
        self.instances.get(i)
    }

    /// Adverts dropped before an instance could be named, per reason.
    pub fn unmatched_drops(&self) -> &BTreeMap<DropKind, u64> {
        &self.unmatched_drops
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Each tracked vrrp_script's name, whether it is up (GOOD) and
    /// whether a run of it is under way.
    pub fn script_states(&self) -> Vec<(String, bool, bool)> {
        self.tracked_scripts()
            .into_iter()
            .filter_map(|s| {
                let t = self.scripts.get(s)?;
                Some((
                    self.config.vrrp_scripts.get(s)?.name.clone(),
                    t.up,
                    t.running,
                ))
            })
            .collect()
    }

    /// The vrrp_scripts (indices into the configuration's list) some
    /// instance tracks: the ones worth running.
    pub fn tracked_scripts(&self) -> Vec<usize> {
        use super::instance::TrackerKind;
        (0..self.config.vrrp_scripts.len())
            .filter(|&s| {
                self.instances
                    .iter()
                    .any(|i| i.trackers.iter().any(|t| t.kind == TrackerKind::Script(s)))
            })
            .collect()
    }

    /// The interfaces some instance tracks (track_interface).
    pub fn tracked_links(&self) -> Vec<String> {
        use super::instance::TrackerKind;
        self.instances
            .iter()
            .flat_map(|i| i.trackers.iter())
            .filter_map(|t| match &t.kind {
                TrackerKind::Interface(n) => Some(n.clone()),
                TrackerKind::Script(_) | TrackerKind::File(_) | TrackerKind::Process(_) => None,
            })
            .collect()
    }

    /// The track_files (indices into the configuration's list) some
    /// instance tracks: the ones worth watching.
    pub fn tracked_files(&self) -> Vec<usize> {
        use super::instance::TrackerKind;
        (0..self.config.track_files.len())
            .filter(|&f| {
                self.instances
                    .iter()
                    .any(|i| i.trackers.iter().any(|t| t.kind == TrackerKind::File(f)))
            })
            .collect()
    }

    /// Each tracked file's name and value.
    pub fn file_values(&self) -> Vec<(String, i64)> {
        self.tracked_files()
            .into_iter()
            .filter_map(|f| {
                Some((
                    self.config.track_files.get(f)?.name.clone(),
                    *self.files.get(f)?,
                ))
            })
            .collect()
    }

    /// The track_processes (indices into the configuration's list) some
    /// instance tracks: the ones worth watching.
    pub fn tracked_processes(&self) -> Vec<usize> {
        use super::instance::TrackerKind;
        (0..self.config.track_processes.len())
            .filter(|&p| {
                self.instances
                    .iter()
                    .any(|i| i.trackers.iter().any(|t| t.kind == TrackerKind::Process(p)))
            })
            .collect()
    }

    /// Each tracked process's name and whether its quorum is met.
    pub fn process_states(&self) -> Vec<(String, bool)> {
        self.tracked_processes()
            .into_iter()
            .filter_map(|p| {
                Some((
                    self.config.track_processes.get(p)?.name.clone(),
                    *self.processes.get(p)?,
                ))
            })
            .collect()
    }

    fn set_processes(&mut self, processes: &[(usize, bool)]) {
        for &(index, up) in processes {
            if let Some(slot) = self.processes.get_mut(index) {
                *slot = up;
            }
        }
    }

    fn set_files(&mut self, files: &[(usize, i64)]) {
        for &(index, value) in files {
            if let Some(slot) = self.files.get_mut(index) {
                *slot = value;
            }
        }
    }

    /// The socket (index) each instance uses.
    pub fn socket_of(&self, i: usize) -> Option<usize> {
        self.inst_socket.get(i).copied()
    }

    /// Whether the stop is complete.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The next effect to carry out, if any.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Event::Timer`] is due next.
    pub fn poll_timeout(&self) -> Option<Micros> {
        if self.stopped {
            return None;
        }
        if let Some(h) = &self.handoff {
            return Some(match h.grace_until {
                Some(g) => g,
                None => h.deadline.min(h.next_resend),
            });
        }
        let vrrp = self
            .instances
            .iter()
            .filter_map(|i| i.vrrp.deadline())
            .min();
        let garp = self
            .garps
            .iter()
            .filter_map(|g| g.next_deadline())
            .chain(self.pending.first().map(|(_, p)| p.at))
            .min();
        let logs = self
            .limiter
            .next_flush()
            .map(|t| us(t.saturating_duration_since(self.epoch)));
        // Counters changed since the report was last written: refresh it
        // when the once-a-second limit allows.
        let report = self
            .report
            .pending
            .then(|| {
                self.report
                    .written
                    .map(|t| t.saturating_add(us(REPORT_PERIOD)))
            })
            .flatten();
        let attach = self.attach_deadline();
        [vrrp, garp, logs, report, attach]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one event in; effects queue up for [`Node::poll_effect`].
    pub fn handle(&mut self, now: Micros, event: Event) {
        if self.stopped {
            return;
        }
        if self.handoff.is_some() {
            self.handle_stopping(now, event);
            return;
        }
        match event {
            Event::Start {
                links,
                files,
                processes,
            } => {
                self.links_up.extend(links);
                self.set_files(&files);
                self.set_processes(&processes);
                self.announce_waiting();
                self.retrack(now);
                for i in 0..self.instances.len() {
                    self.feed(i, now, Input::Start);
                }
                // An instance in Init takes no priority or fault: what the
                // trackers said before the start applies now.
                self.retrack(now);
            }
            Event::Advert {
                instance,
                src,
                priority,
                interval,
            } => {
                if instance < self.instances.len() {
                    let input = Input::Advert {
                        src,
                        priority,
                        interval,
                    };
                    self.advert(now, instance, input);
                }
            }
            Event::Timer => self.on_timers(now),
            Event::TrackFile { index, value } => self.on_file(now, index, value),
            Event::ScriptStarted { index } => {
                if let Some(t) = self.scripts.get_mut(index) {
                    t.running = true;
                }
            }
            Event::TrackProcess { index, up } => self.on_process(now, index, up),
            Event::Script {
                index,
                success,
                detail,
            } => self.on_script(now, index, success, &detail),
            Event::Link { name, up } => self.on_link(now, name, up),
            Event::LinkRemoved { name } => self.link_removed(now, &name),
            Event::InterfaceReady { instance, setup } => {
                if instance < self.instances.len() {
                    self.interface_ready(now, instance, setup);
                }
            }
            Event::InterfaceFailed {
                instance,
                error,
                missing,
            } => self.interface_failed(now, instance, error, missing),
            Event::ReloadBegin => self.reload_begin(now),
            Event::Reload {
                config,
                setup,
                links,
                files,
                processes,
            } => self.reload(now, *config, setup, links, files, processes),
            Event::Stop => self.stop(now),
            Event::SendFailed {
                instance,
                dst,
                error,
            } => self.send_failed(now, instance, dst, &error),
            Event::AnnounceFailed {
                instance,
                vip,
                error,
            } => self.announce_failed(now, instance, vip, &error),
        }
        self.refresh_report(now);
    }

    /// A validated advert for instance `i` (not stopping).
    fn advert(&mut self, now: Micros, i: usize, input: Input) {
        let from_other = matches!(input, Input::Advert { priority, .. } if priority > 0);
        let was_master = self.instances[i].vrrp.state == State::Master;
        let learned = self.instances[i].vrrp.master_adver_interval;
        self.feed(i, now, input);
        self.log_learned_interval(i, learned);
        if from_other && was_master && self.instances[i].vrrp.state == State::Master {
            self.lower_priority_advert(i, now);
        }
    }

    /// The status report: at once after a transition, else at most once
    /// per [`REPORT_PERIOD`].
    fn refresh_report(&mut self, now: Micros) {
        let stale = self
            .report
            .written
            .is_none_or(|t| now.saturating_sub(t) >= us(REPORT_PERIOD));
        if !self.report.dirty && !stale {
            self.report.pending = true;
            return;
        }
        self.report = ReportClock {
            dirty: false,
            pending: false,
            written: Some(now),
        };
        self.effects.push_back(Effect::WriteReport);
    }

    fn iface_up(&self, name: &str) -> bool {
        self.links_up.get(name).copied().unwrap_or(true)
    }

    /// Recomputes trackers' effect on every instance and feeds changes in.
    fn retrack(&mut self, now: Micros) {
        let effs: Vec<_> = self
            .instances
            .iter()
            .map(|i| {
                i.effective(
                    &self.scripts,
                    &|n| self.iface_up(n),
                    &self.files,
                    &self.processes,
                )
            })
            .collect();
        for (i, e) in effs.iter().enumerate() {
            self.instances[i].own_fault = e.fault || self.is_waiting(i);
        }
        for (i, eff) in effs.iter().enumerate() {
            let group_fault = self.instances[i].sync_group.is_some_and(|g| {
                self.instances
                    .iter()
                    .any(|o| o.sync_group == Some(g) && o.own_fault)
            });
            let fault = self.instances[i].own_fault || group_fault;
            let was_fault = self.instances[i].vrrp.state == State::Fault;
            if fault != was_fault {
                self.feed(i, now, Input::Fault(fault));
            }
            let old = self.instances[i].vrrp.priority;
            let new = eff.priority;
            if old != new {
                tracing::info!(
                    "VRRP_Instance({}) Changing effective priority from {old} to {new}",
                    self.instances[i].name()
                );
                // Before the state machine reacts, as keepalived does.
                self.priority_changed(i, new);
                self.feed(i, now, Input::Priority(new));
            }
        }
    }

    /// `notify_priority_changes` (instance, else its sync group, else
    /// global_defs): a FIFO line `INSTANCE "X" MASTER_PRIORITY|BACKUP_PRIORITY
    /// prio`, MASTER_ only while master (keepalived 2.2.7; no script runs).
    fn priority_changed(&mut self, i: usize, new: u8) {
        let inst = &self.instances[i];
        let wanted = inst
            .cfg
            .notify_priority_changes
            .or_else(|| {
                let g = inst.sync_group?;
                self.config.vrrp_sync_groups.get(g)?.notify_priority_changes
            })
            .unwrap_or(self.config.global.vrrp.notify_priority_changes);
        if !wanted {
            return;
        }
        let state = if inst.vrrp.state == State::Master {
            "MASTER_PRIORITY"
        } else {
            "BACKUP_PRIORITY"
        };
        self.effects.push_back(Effect::FifoLine(Job {
            kind: "INSTANCE",
            name: inst.name().to_string(),
            state,
            priority: new,
        }));
    }

    /// Feeds an input to instance `i` and what follows from it (sync groups).
    fn feed(&mut self, i: usize, now: Micros, input: Input) {
        let mut queue = vec![(i, input)];
        while let Some((i, input)) = queue.pop() {
            for a in self.instances[i].vrrp.handle(now, input) {
                match a {
                    Action::SendAdvert { priority } => {
                        if !(priority == 0 && self.zero_sent[i]) {
                            self.send_advert(i, priority);
                        }
                    }
                    Action::LateAdvert { gap, master_down } => {
                        self.instances[i].late_adverts += 1;
                        log::late_advert(&self.instances[i], gap, master_down);
                    }
                    Action::Transition { from, to } => {
                        queue.extend(self.transition(i, now, from, to));
                    }
                }
            }
        }
    }

    fn send_advert(&mut self, i: usize, priority: u8) {
        let inst = &mut self.instances[i];
        let packets = inst.encode(priority);
        // Counted as sent; a failure comes back as Event::SendFailed.
        inst.adverts_sent += packets.len() as u64;
        if priority == 0 {
            inst.stats.priority_zero_sent += 1;
        }
        self.effects.push_back(Effect::Advert {
            instance: i,
            priority,
            src: inst.src,
            packets,
        });
    }

    fn vips(&mut self, i: usize, add: bool) {
        let inst = &self.instances[i];
        tracing::info!(
            "VRRP_Instance({}) {} protocol VIPs.",
            inst.name(),
            if add { "setting" } else { "removing" }
        );
        self.effects.push_back(Effect::Vips {
            instance: i,
            add,
            vips: inst.cfg.virtual_ipaddress.clone(),
            routes: inst.cfg.virtual_routes.clone(),
            rules: inst.cfg.virtual_rules.clone(),
        });
    }

    fn transition(&mut self, i: usize, now: Micros, from: State, to: State) -> Vec<(usize, Input)> {
        let name = self.instances[i].name().to_string();
        self.report.dirty = true;
        if to == State::Init {
            tracing::info!("VRRP_Instance({name}) Stopped");
        } else {
            tracing::info!("VRRP_Instance({name}) Entering {} STATE", to.name());
        }
        if from == State::Master && (to != State::Init || self.options.release_vips) {
            self.vips(i, false);
        }
        if from == State::Master {
            self.instances[i].stats.released_master += 1;
            self.garps[i].leave_master();
            self.pending.retain(|(o, _)| *o != i);
        }
        if to == State::Master {
            let inst = &mut self.instances[i];
            inst.stats.became_master += 1;
            if from == State::Backup
                && let Some(heard) = inst.vrrp.last_heard()
            {
                inst.stats.takeovers.record(now.saturating_sub(heard));
            }
            self.vips(i, true);
            if let Some(burst) = self.garps[i].become_master(now) {
                self.plan_garps(i, now, burst.repeat, true);
            }
            self.send_due_garps(now);
        }
        self.effects.push_back(Effect::Transition {
            instance: i,
            name: name.clone(),
            state: to,
        });
        let inst = &self.instances[i];
        let word = state_word(to, to == State::Init);
        if let Some(alert) =
            crate::mail::compose::vrrp(&self.config.global, inst.cfg.smtp_alert, false, &name, word)
        {
            self.effects.push_back(Effect::Mail(alert));
        }
        self.effects.push_back(Effect::Notify {
            target: NotifyTarget::Instance(i),
            job: Job {
                kind: "INSTANCE",
                name,
                state: word,
                priority: inst.vrrp.priority,
            },
        });
        let Some(g) = inst.sync_group else {
            return Vec::new();
        };
        let members: Vec<usize> = (0..self.instances.len())
            .filter(|&o| o != i && self.instances[o].sync_group == Some(g))
            .collect();
        // The group's state is its members' common state once they agree.
        let all_same = members.iter().all(|&o| self.instances[o].vrrp.state == to);
        if all_same
            && let Some(gs) = self.group_states.get_mut(g)
            && *gs != to
        {
            *gs = to;
            let sg = self.config.vrrp_sync_groups.get(g);
            let group = sg.map_or("?", |s| s.name.as_str());
            tracing::info!(
                "VRRP_Group({group}) Syncing instances to {} state",
                to.name()
            );
            let word = state_word(to, to == State::Init);
            if let Some(alert) = crate::mail::compose::vrrp(
                &self.config.global,
                sg.is_some_and(|s| s.smtp_alert),
                true,
                group,
                word,
            ) {
                self.effects.push_back(Effect::Mail(alert));
            }
            self.effects.push_back(Effect::Notify {
                target: NotifyTarget::Group(g),
                job: Job {
                    kind: "GROUP",
                    name: group.to_string(),
                    state: state_word(to, to == State::Init),
                    priority: 0,
                },
            });
        }
        match (from, to) {
            (State::Backup, State::Master) => members
                .into_iter()
                .map(|o| (o, Input::SyncMaster))
                .collect(),
            (State::Master, State::Backup) => members
                .into_iter()
                .map(|o| (o, Input::SyncBackup))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn on_timers(&mut self, now: Micros) {
        for i in 0..self.instances.len() {
            if self.instances[i].vrrp.deadline().is_some_and(|d| d <= now) {
                self.feed(i, now, Input::Timer);
            }
            for burst in self.garps[i].poll(now) {
                self.plan_garps(i, now, burst.repeat, true);
            }
        }
        self.send_due_garps(now);
        self.attach_timers(now);
        self.report_suppressed(now, false);
    }

    fn on_script(&mut self, now: Micros, index: usize, success: bool, detail: &str) {
        let Some(tracker) = self.scripts.get_mut(index) else {
            return;
        };
        tracker.running = false;
        if tracker.record(success) {
            let name = self
                .config
                .vrrp_scripts
                .get(index)
                .map_or("?", |s| s.name.as_str());
            if success {
                tracing::info!("VRRP_Script({name}) succeeded");
            } else {
                tracing::info!("VRRP_Script({name}) {detail}");
            }
            self.retrack(now);
        }
    }

    fn on_file(&mut self, now: Micros, index: usize, value: i64) {
        let Some(slot) = self.files.get_mut(index) else {
            return;
        };
        if *slot == value {
            return;
        }
        *slot = value;
        let name = self
            .config
            .track_files
            .get(index)
            .map_or("?", |f| f.name.as_str());
        tracing::info!("VRRP track_file {name}: value now {value}");
        self.retrack(now);
    }

    fn on_process(&mut self, now: Micros, index: usize, up: bool) {
        let Some(slot) = self.processes.get_mut(index) else {
            return;
        };
        if *slot == up {
            return;
        }
        *slot = up;
        let name = self
            .config
            .track_processes
            .get(index)
            .map_or("?", |p| p.name.as_str());
        // keepalived's line ("Quorum gained/lost for tracked process NAME").
        tracing::info!(
            "Quorum {} for tracked process {name}",
            if up { "gained" } else { "lost" }
        );
        for inst in &self.instances {
            use super::instance::TrackerKind;
            if let Some(t) = inst
                .trackers
                .iter()
                .find(|t| t.kind == TrackerKind::Process(index))
            {
                match super::track::process_effect(up, t.weight, t.reverse) {
                    super::track::FileEffect::Fault => tracing::info!(
                        "({}) tracked process {name} quorum {}: FAULT",
                        inst.name(),
                        if up { "met (reverse)" } else { "not achieved" }
                    ),
                    super::track::FileEffect::Delta(d) => tracing::info!(
                        "({}) tracked process {name}: priority {d:+} (weight {}{})",
                        inst.name(),
                        t.weight,
                        if t.reverse { " reverse" } else { "" }
                    ),
                }
            }
        }
        self.retrack(now);
    }

    fn on_link(&mut self, now: Micros, name: String, up: bool) {
        // The driver reports every link of the namespace: only the
        // instances' own and tracked interfaces matter (and are logged).
        let ours = self.instances.iter().any(|i| i.cfg.interface == name)
            || self.tracked_links().contains(&name);
        if !ours {
            return;
        }
        let before = self.iface_up(&name);
        self.links_up.insert(name.clone(), up);
        if before != up {
            tracing::info!("Netlink reports {name} {}", if up { "up" } else { "down" });
            self.retrack(now);
        }
        if up {
            self.link_up_for_waiting(&name);
        }
    }

    /// A v3 backup adopts its master's advert interval (RFC 5798 §6.4.2):
    /// say so when it changes, loudly when it makes takeover slow.
    fn log_learned_interval(&self, i: usize, before: Duration) {
        log::learned_interval(&self.instances[i], before);
    }
}

#[cfg(test)]
mod tests;
