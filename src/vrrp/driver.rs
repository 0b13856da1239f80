//! The VRRP driver: one task that owns every instance's state machine and
//! carries out its actions. Sockets, trackers and link events feed it
//! through one channel; timers come from the machines' deadlines. Nothing
//! it awaits can block the protocol: VIP changes are single netlink
//! requests, GARPs are non-blocking sends, scripts run in their own tasks.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::model::{Config, VrrpInstance};
use crate::script::{self, RunOptions};

use super::garp::{self, GarpParams, GarpSchedule, Pacer, PlannedSend};
use super::instance::{self, Instance, TrackerKind};
use super::notify::{self, Job};
use super::packet::{self, CodecOptions};
use super::rtnl::{self, Rtnl};
use super::socket::{RxInfo, VrrpSocket};
use super::state::{Action, Input, Micros, State};
use super::status;
use super::track::ScriptTracker;
use super::validate::{DropKind, DropReason};
use crate::log_limit::{LogLimit, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnl::RtnlError),
    #[error("VRRP_Instance({instance}): {message}")]
    Instance { instance: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How long a stopping master keeps its VIPs waiting for a successor
/// (the backup takes over after Skew_Time, at most 1 s with v2).
pub const HANDOFF_WAIT: Duration = Duration::from_millis(1500);
const HANDOFF_RESEND: Duration = Duration::from_millis(250);
const HANDOFF_GARP_GRACE: Duration = Duration::from_millis(50);
/// How long the stop waits for notify_stop scripts, at most.
const NOTIFY_STOP_WAIT: Duration = Duration::from_secs(1);
/// The whole stop (handoff, VIPs removed, notify_stop) ends this soon after
/// the signal, so the daemon exits within 2 s: what the handoff used is
/// taken from notify_stop's wait.
const STOP_BUDGET: Duration = Duration::from_millis(1800);

/// A state change, for those that follow the instances (lvs_sync_daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub instance: String,
    pub state: State,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Remove the VIPs at stop (keepalived's default; --dont-release-vrrp keeps them).
    pub release_vips: bool,
    /// Told of every transition.
    pub transitions: Option<mpsc::UnboundedSender<Transition>>,
    /// Where the live report is published for the status socket.
    pub live: Option<status::LiveReport>,
    /// Where the instances' state is written for `--dump`.
    pub status_file: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            release_vips: true,
            transitions: None,
            live: None,
            status_file: Some(PathBuf::from(status::VRRP_STATE)),
        }
    }
}

enum Event {
    Packet {
        /// The driver generation whose sockets received it (reloads renumber sockets).
        generation: u64,
        socket: usize,
        bytes: Vec<u8>,
        info: RxInfo,
    },
    Script {
        index: usize,
        outcome: script::Outcome,
    },
    Link {
        name: String,
        up: bool,
    },
}

/// An interface an instance sends on and puts its VIPs on.
#[derive(Debug, Clone)]
struct Iface {
    name: String,
    index: u32,
    mac: [u8; 6],
}

struct Driver {
    config: Config,
    generation: u64,
    start: Instant,
    rtnl: Rtnl,
    instances: Vec<Instance>,
    ifaces: Vec<Iface>,
    /// Socket index per instance.
    inst_socket: Vec<usize>,
    sockets: Vec<Arc<VrrpSocket>>,
    scripts: Vec<ScriptTracker>,
    script_names: Vec<String>,
    links_up: HashMap<String, bool>,
    garps: Vec<GarpSchedule>,
    /// Announcement pacing per interface index (garp_interval / gna_interval).
    pacers: HashMap<u32, Pacer>,
    /// Planned announcements: (instance, when, VIP), sorted by time.
    pending: Vec<(usize, PlannedSend)>,
    garp_senders: HashMap<u32, garp::GarpSender>,
    garp_interval: Duration,
    gna_interval: Duration,
    notifiers: Vec<Option<mpsc::UnboundedSender<Job>>>,
    group_notifiers: Vec<Option<mpsc::UnboundedSender<Job>>>,
    /// The notify workers (awaited at stop so notify_stop runs).
    notify_tasks: Vec<JoinHandle<()>>,
    group_names: Vec<String>,
    group_states: Vec<State>,
    options: Options,
    /// Repeated warnings (drops, send and announce errors), per instance
    /// and reason: a flood logs a line per 10 s, then how many were held back.
    limiter: LogLimit<LogKey>,
    /// Adverts dropped before any instance could be named (malformed, or
    /// for a VRID no instance on that socket has).
    unmatched_drops: BTreeMap<DropKind, u64>,
    /// The stop's priority-0 advert went out already (make-before-break).
    zero_sent: Vec<bool>,
    /// A transition happened: write the status file now.
    status_dirty: bool,
    /// When the status file was last written (counters refresh once a second).
    status_written: Option<Instant>,
    /// Something the report shows changed since it was last written.
    status_pending: bool,
}

/// What a repeated warning is about: keys are bounded by the configuration
/// (instance indices, reasons), never by what arrives from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LogKey {
    /// An advert dropped by instance i (None: by no instance).
    Drop(Option<usize>, DropKind),
    /// Instance i could not send an advert.
    Send(usize),
    /// Instance i could not send a gratuitous ARP / NA.
    Announce(usize),
    /// Instance i, master, answered a lower-priority master.
    Reannounce(usize),
}

const LOG_PERIOD: Duration = Duration::from_secs(10);

/// A learned (v3) master advert interval above this is logged as a warning:
/// a backup then waits over three times as long before taking over.
const LEARNED_INTERVAL_WARN: Duration = Duration::from_secs(10);

/// Writes net.ipv4.conf.DEV.KEY (of our network namespace).
fn set_ipv4_conf(dev: &str, key: &str, value: &str) {
    let path = format!("/proc/sys/net/ipv4/conf/{dev}/{key}");
    if let Err(e) = std::fs::write(&path, value) {
        tracing::warn!("cannot set {path} to {value}: {e}");
    }
}

fn instance_error(vi: &VrrpInstance, message: impl Into<String>) -> Error {
    Error::Instance {
        instance: vi.name.clone(),
        message: message.into(),
    }
}

impl Driver {
    fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    async fn new(config: &Config, options: Options) -> Result<Driver, Error> {
        let rtnl = Rtnl::open().await?;
        let mut ifaces = Vec::new();
        let mut instances = Vec::new();
        for (i, vi) in config.vrrp_instances.iter().enumerate() {
            let link = rtnl
                .link_by_name(&vi.interface)
                .await
                .map_err(|e| instance_error(vi, e.to_string()))?;
            let ipv6 = instance::is_ipv6(vi);
            let src = match instance::configured_src(vi) {
                Some(a) => a,
                None if ipv6 => rtnl
                    .link_local_ipv6(link.index)
                    .await?
                    .map(IpAddr::V6)
                    .ok_or_else(|| {
                        instance_error(vi, format!("{} has no IPv6 link-local address", vi.interface))
                    })?,
                None => rtnl
                    .primary_ipv4(link.index)
                    .await?
                    .map(IpAddr::V4)
                    .ok_or_else(|| {
                        instance_error(
                            vi,
                            format!(
                                "{} has no IPv4 address: give it one or set mcast_src_ip/unicast_src_ip",
                                vi.interface
                            ),
                        )
                    })?,
            };
            let mut iface = Iface {
                name: link.name.clone(),
                index: link.index,
                mac: link.mac.unwrap_or([0; 6]),
            };
            if let Some(vmac) = &vi.use_vmac {
                let mac = rtnl::vmac_address(vi.virtual_router_id, ipv6);
                // An existing VMAC of that name on this parent is reused (reload, restart).
                let index = rtnl
                    .create_macvlan(link.index, vmac, mac)
                    .await
                    .map_err(|e| instance_error(vi, format!("use_vmac {vmac}: {e}")))?;
                tracing::info!(
                    "VRRP_Instance({}) created VMAC {vmac} on {}",
                    vi.name,
                    link.name
                );
                // As keepalived: only the VMAC answers ARP for the VIPs; and
                // (arp_announce 2) the base interface's own ARP requests do not
                // carry a VIP as sender, which would teach hosts its real MAC.
                for (dev, key, value) in [
                    (link.name.as_str(), "arp_ignore", "1"),
                    (link.name.as_str(), "arp_filter", "1"),
                    (link.name.as_str(), "arp_announce", "2"),
                    (vmac.as_str(), "arp_ignore", "1"),
                    (vmac.as_str(), "accept_local", "1"),
                ] {
                    set_ipv4_conf(dev, key, value);
                }
                iface = Iface {
                    name: vmac.clone(),
                    index,
                    mac,
                };
            }
            ifaces.push(iface);
            instances.push(Instance::new(config, i, src));
        }
        // Where each instance sends and receives: the VMAC unless
        // vmac_xmit_base, else its interface.
        let mut via = Vec::new();
        for (inst, iface) in instances.iter().zip(&ifaces) {
            if inst.cfg.use_vmac.is_some() && !inst.cfg.vmac_xmit_base {
                via.push((iface.index, iface.name.clone()));
            } else {
                let base = rtnl.link_by_name(&inst.cfg.interface).await?;
                via.push((base.index, base.name));
            }
        }
        // One socket per (interface, family), joined to the group when any
        // instance using it multicasts.
        let mut sockets: Vec<Arc<VrrpSocket>> = Vec::new();
        let mut keys: Vec<(u32, bool)> = Vec::new();
        let mut inst_socket = Vec::new();
        for (n, inst) in instances.iter().enumerate() {
            let (index, name) = &via[n];
            let key = (*index, inst.ipv6);
            let pos = match keys.iter().position(|k| *k == key) {
                Some(p) => p,
                None => {
                    let multicast = instances
                        .iter()
                        .zip(&via)
                        .any(|(o, v)| !o.is_unicast() && o.ipv6 == inst.ipv6 && v.0 == *index);
                    let group = multicast.then_some(inst.group);
                    let s = VrrpSocket::open(name, *index, inst.ipv6, group)?;
                    sockets.push(Arc::new(s));
                    keys.push(key);
                    sockets.len() - 1
                }
            };
            inst_socket.push(pos);
        }
        let run_opts = RunOptions::from_globals(&config.global);
        let mut notify_tasks = Vec::new();
        let mut worker = |n: &crate::config::model::Notify| {
            notify::spawn_worker(n.clone(), run_opts.clone()).map(|(tx, h)| {
                notify_tasks.push(h);
                tx
            })
        };
        let notifiers = instances.iter().map(|i| worker(&i.cfg.notify)).collect();
        let group_notifiers = config
            .vrrp_sync_groups
            .iter()
            .map(|g| worker(&g.notify))
            .collect();
        let driver = Driver {
            config: config.clone(),
            generation: 0,
            start: Instant::now(),
            rtnl,
            instances,
            ifaces,
            inst_socket,
            sockets,
            scripts: config
                .vrrp_scripts
                .iter()
                .map(|s| ScriptTracker::new(s.rise, s.fall, s.init_fail))
                .collect(),
            script_names: config.vrrp_scripts.iter().map(|s| s.name.clone()).collect(),
            links_up: HashMap::new(),
            garps: config
                .vrrp_instances
                .iter()
                .map(|vi| {
                    GarpSchedule::new(GarpParams {
                        master_delay: vi.garp_master_delay.0,
                        master_repeat: vi.garp_master_repeat,
                        master_refresh: vi.garp_master_refresh.map(|t| t.0),
                        master_refresh_repeat: vi.garp_master_refresh_repeat,
                    })
                })
                .collect(),
            pacers: HashMap::new(),
            pending: Vec::new(),
            garp_senders: HashMap::new(),
            garp_interval: config.global.vrrp.garp_interval.0,
            gna_interval: config.global.vrrp.gna_interval.0,
            notifiers,
            group_notifiers,
            notify_tasks,
            group_names: config
                .vrrp_sync_groups
                .iter()
                .map(|g| g.name.clone())
                .collect(),
            group_states: vec![State::Init; config.vrrp_sync_groups.len()],
            options,
            limiter: LogLimit::new(LOG_PERIOD, 1024),
            unmatched_drops: BTreeMap::new(),
            status_dirty: true,
            status_written: None,
            status_pending: false,
            zero_sent: vec![false; config.vrrp_instances.len()],
        };
        Ok(driver)
    }

    /// Removes VIPs of ours left by an earlier run: the configured ones,
    /// and any address carrying our protocol mark on our interfaces.
    async fn remove_stale_vips(&mut self) {
        for i in 0..self.instances.len() {
            let mut removed = 0;
            let iface = self.ifaces[i].clone();
            for v in self.instances[i].cfg.virtual_ipaddress.clone() {
                let index = self.vip_ifindex(i, v.dev.as_deref()).await;
                if let Ok(rtnl::Change::Done) = self.rtnl.del_vip(index, &v).await {
                    removed += 1;
                }
            }
            if removed > 0 {
                tracing::info!(
                    "VRRP_Instance({}) removing protocol VIPs left on {} ({removed})",
                    self.instances[i].name(),
                    iface.name
                );
            }
        }
        let configured: Vec<IpAddr> = self
            .instances
            .iter()
            .flat_map(|i| i.cfg.virtual_ipaddress.iter().map(|v| v.addr))
            .collect();
        let indexes: Vec<u32> = self.ifaces.iter().map(|f| f.index).collect();
        match self.rtnl.list_protocol_addrs().await {
            Ok(addrs) => {
                for a in addrs {
                    if indexes.contains(&a.index) && !configured.contains(&a.addr) {
                        tracing::info!(
                            "removing stale protocol VIP {}/{} from interface index {}",
                            a.addr,
                            a.prefix_len,
                            a.index
                        );
                        if let Err(e) = self.rtnl.del_addr(&a).await {
                            tracing::warn!("cannot remove stale VIP {}: {e}", a.addr);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("cannot list addresses: {e}"),
        }
    }

    async fn vip_ifindex(&self, i: usize, dev: Option<&str>) -> u32 {
        // With use_vmac, addresses written on the base interface go on the VMAC (keepalived).
        let on_vmac = self.instances[i].cfg.use_vmac.is_some();
        match dev {
            Some(d) if on_vmac && d == self.instances[i].cfg.interface => self.ifaces[i].index,
            Some(d) if d != self.ifaces[i].name => match self.rtnl.link_by_name(d).await {
                Ok(l) => l.index,
                Err(e) => {
                    tracing::warn!(
                        "VRRP_Instance({}) VIP device {d}: {e}",
                        self.instances[i].name()
                    );
                    self.ifaces[i].index
                }
            },
            _ => self.ifaces[i].index,
        }
    }

    fn iface_up(&self, name: &str) -> bool {
        self.links_up.get(name).copied().unwrap_or(true)
    }

    /// Recomputes trackers' effect on every instance and feeds changes in.
    async fn retrack(&mut self) {
        let now = self.now();
        let effs: Vec<_> = self
            .instances
            .iter()
            .map(|i| i.effective(&self.scripts, &|n| self.iface_up(n)))
            .collect();
        for (i, e) in effs.iter().enumerate() {
            self.instances[i].own_fault = e.fault;
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
                self.feed(i, now, Input::Fault(fault)).await;
            }
            let old = self.instances[i].vrrp.priority;
            let new = eff.priority;
            if old != new {
                tracing::info!(
                    "VRRP_Instance({}) Changing effective priority from {old} to {new}",
                    self.instances[i].name()
                );
                self.feed(i, now, Input::Priority(new)).await;
            }
        }
    }

    /// Feeds an input to instance `i` and carries out what follows.
    async fn feed(&mut self, i: usize, now: Micros, input: Input) {
        let mut queue = vec![(i, input)];
        while let Some((i, input)) = queue.pop() {
            let actions = self.instances[i].vrrp.handle(now, input);
            for a in actions {
                if let Some(follow) = self.act(i, a).await {
                    queue.extend(follow);
                }
            }
        }
    }

    /// Carries out one action; returns sync-group follow-ups.
    async fn act(&mut self, i: usize, action: Action) -> Option<Vec<(usize, Input)>> {
        match action {
            Action::SendAdvert { priority } => {
                if !(priority == 0 && self.zero_sent[i]) {
                    self.send_advert(i, priority);
                }
                None
            }
            Action::LateAdvert { gap, master_down } => {
                self.instances[i].late_adverts += 1;
                tracing::warn!(
                    "VRRP_Instance({}) advert from master {} came {:.3} s after the previous one ({:.0}% of the {:.3} s master down interval): the link may be failing",
                    self.instances[i].name(),
                    self.instances[i]
                        .vrrp
                        .master_ip
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    gap.as_secs_f64(),
                    gap.as_secs_f64() * 100.0 / master_down.as_secs_f64(),
                    master_down.as_secs_f64()
                );
                None
            }
            Action::Transition { from, to } => Some(self.transition(i, from, to).await),
        }
    }

    fn send_advert(&mut self, i: usize, priority: u8) {
        let src = self.instances[i].src;
        let sock = self.sockets[self.inst_socket[i]].clone();
        for (bytes, dst) in self.instances[i].encode(priority) {
            let r = match (dst, src) {
                (IpAddr::V4(d), _) => sock.send_v4(&bytes, d),
                (IpAddr::V6(d), IpAddr::V6(s)) => sock.send_v6(&bytes, s, d),
                (IpAddr::V6(_), IpAddr::V4(_)) => Ok(()),
            };
            match r {
                Ok(()) => self.instances[i].adverts_sent += 1,
                Err(e) => {
                    if self.may_log(LogKey::Send(i)) {
                        tracing::warn!(
                            "VRRP_Instance({}) cannot send an advert to {dst}: {e}",
                            self.instances[i].name()
                        );
                    }
                }
            }
        }
    }

    async fn transition(&mut self, i: usize, from: State, to: State) -> Vec<(usize, Input)> {
        let name = self.instances[i].name().to_string();
        self.status_dirty = true;
        if to == State::Init {
            tracing::info!("VRRP_Instance({name}) Stopped");
        } else {
            tracing::info!("VRRP_Instance({name}) Entering {} STATE", to.name());
        }
        if from == State::Master && (to != State::Init || self.options.release_vips) {
            self.set_vips(i, false).await;
        }
        if from == State::Master {
            self.garps[i].leave_master();
            self.pending.retain(|(o, _)| *o != i);
        }
        if to == State::Master {
            self.set_vips(i, true).await;
            let now = self.now();
            if let Some(burst) = self.garps[i].become_master(now) {
                self.plan_garps(i, now, burst.repeat, true);
            }
            self.send_due_garps(now);
        }
        if let Some(tx) = &self.options.transitions {
            let _ = tx.send(Transition {
                instance: name.clone(),
                state: to,
            });
        }
        let inst = &self.instances[i];
        let job = Job {
            kind: "INSTANCE",
            name: name.clone(),
            state: notify::state_word(to, to == State::Init),
            priority: inst.vrrp.priority,
        };
        if let Some(tx) = &self.notifiers[i] {
            let _ = tx.send(job);
        }
        let Some(g) = inst.sync_group else {
            return Vec::new();
        };
        let members: Vec<usize> = (0..self.instances.len())
            .filter(|&o| o != i && self.instances[o].sync_group == Some(g))
            .collect();
        // The group's state is its members' common state once they agree.
        let all_same = members.iter().all(|&o| self.instances[o].vrrp.state == to);
        if all_same && self.group_states[g] != to {
            self.group_states[g] = to;
            tracing::info!(
                "VRRP_Group({}) Syncing instances to {} state",
                self.group_names[g],
                to.name()
            );
            if let Some(tx) = &self.group_notifiers[g] {
                let _ = tx.send(Job {
                    kind: "GROUP",
                    name: self.group_names[g].clone(),
                    state: notify::state_word(to, to == State::Init),
                    priority: 0,
                });
            }
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

    async fn set_vips(&mut self, i: usize, add: bool) {
        let name = self.instances[i].name().to_string();
        let vips = self.instances[i].cfg.virtual_ipaddress.clone();
        let routes = self.instances[i].cfg.virtual_routes.clone();
        tracing::info!(
            "VRRP_Instance({name}) {} protocol VIPs.",
            if add { "setting" } else { "removing" }
        );
        for v in &vips {
            let index = self.vip_ifindex(i, v.dev.as_deref()).await;
            let r = if add {
                self.rtnl.add_vip(index, v).await
            } else {
                self.rtnl.del_vip(index, v).await
            };
            if let Err(e) = r {
                tracing::error!(
                    "VRRP_Instance({name}) cannot {} VIP {}: {e}",
                    if add { "add" } else { "remove" },
                    v.addr
                );
            }
        }
        for r in &routes {
            let index = self.vip_ifindex(i, r.dev.as_deref()).await;
            let res = if add {
                self.rtnl.add_route(index, r).await
            } else {
                self.rtnl.del_route(index, r).await
            };
            if let Err(e) = res {
                tracing::error!(
                    "VRRP_Instance({name}) cannot {} route {}/{}: {e}",
                    if add { "add" } else { "remove" },
                    r.dest,
                    r.prefix_len
                );
            }
        }
    }
}

impl Driver {
    /// The receive path, cheapest checks first: the IP header and the VRID
    /// route the packet to an instance, which checks TTL, source and
    /// destination before anything is decoded or checksummed. Every drop is
    /// counted under its reason; warnings are rate-limited per instance and
    /// reason; nothing allocated here outlives the packet.
    fn on_packet(&mut self, socket: usize, bytes: &[u8], info: RxInfo) -> Option<(usize, Input)> {
        let peek = match info {
            RxInfo::V4 => packet::peek_ipv4(bytes),
            RxInfo::V6 {
                src,
                dst,
                hop_limit,
            } => packet::peek_ipv6(bytes, src, dst, hop_limit),
        };
        let peek = match peek {
            Ok(p) => p,
            Err(e) => {
                self.drop_unmatched(DropReason::Packet(e), None);
                return None;
            }
        };
        let Some(i) = (0..self.instances.len()).find(|&i| {
            self.inst_socket[i] == socket && self.instances[i].cfg.virtual_router_id == peek.vrid
        }) else {
            // Another virtual router on the link: normal, counted only.
            *self
                .unmatched_drops
                .entry(DropKind::NotOurVrid)
                .or_default() += 1;
            return None;
        };
        if let Err(reason) = self.instances[i].screen(&peek) {
            self.log_drop(i, &reason, &peek);
            return None;
        }
        // Decode leniently (both v3 checksum readings); the instance then
        // validates the advert's fields.
        let opts = CodecOptions {
            accept_v3_as_v2: true,
            ..CodecOptions::default()
        };
        let rx = match packet::decode_peeked(bytes, &peek, &opts) {
            Ok(rx) => rx,
            Err(e) => {
                let reason = DropReason::Packet(e);
                self.instances[i].count_drop(&reason);
                self.log_drop(i, &reason, &peek);
                return None;
            }
        };
        match self.instances[i].accept(&rx) {
            Ok(input) => Some((i, input)),
            Err(reason) => {
                self.log_drop(i, &reason, &peek);
                None
            }
        }
    }

    /// A v3 backup adopts its master's advert interval (RFC 5798 §6.4.2):
    /// say so when it changes, loudly when it makes takeover slow.
    fn log_learned_interval(&self, i: usize, before: Duration) {
        let inst = &self.instances[i];
        let now = inst.vrrp.master_adver_interval;
        if now == before {
            return;
        }
        let (name, master) = (inst.name(), inst.vrrp.master_ip);
        let master = master.map(|a| a.to_string()).unwrap_or_default();
        let down = inst.vrrp.master_down_interval().as_secs_f64();
        if now > LEARNED_INTERVAL_WARN {
            tracing::warn!(
                "VRRP_Instance({name}) master {master} advertises every {:.2} s (was {:.2} s): a takeover would now wait {down:.1} s",
                now.as_secs_f64(),
                before.as_secs_f64()
            );
        } else {
            tracing::info!(
                "VRRP_Instance({name}) master {master} advertises every {:.2} s (was {:.2} s): master down interval {down:.2} s",
                now.as_secs_f64(),
                before.as_secs_f64()
            );
        }
    }

    fn drop_unmatched(&mut self, reason: DropReason, src: Option<IpAddr>) {
        *self.unmatched_drops.entry(reason.kind()).or_default() += 1;
        if self.may_log(LogKey::Drop(None, reason.kind())) {
            let from = src.map(|a| format!(" from {a}")).unwrap_or_default();
            tracing::warn!("VRRP: dropped a malformed advert{from}: {reason}");
        }
    }

    fn log_drop(&mut self, i: usize, reason: &DropReason, peek: &packet::Peek) {
        if !reason.is_quiet() && self.may_log(LogKey::Drop(Some(i), reason.kind())) {
            tracing::warn!(
                "VRRP_Instance({}) dropped an advert from {}: {reason}",
                self.instances[i].name(),
                peek.meta.src
            );
        }
    }

    fn may_log(&mut self, key: LogKey) -> bool {
        let now = Instant::now().into_std();
        matches!(self.limiter.check(now, &key), Verdict::Log { .. })
    }

    /// "N similar ... suppressed" for what the limiter held back.
    fn report_suppressed(&mut self, all: bool) {
        let (due, overflow) = if all {
            self.limiter.drain()
        } else {
            self.limiter.flush(Instant::now().into_std())
        };
        for (key, n) in due {
            let name = |i: usize| self.instances.get(i).map_or("?", |x| x.name());
            match key {
                LogKey::Drop(Some(i), kind) => tracing::warn!(
                    "VRRP_Instance({}) {n} similar dropped adverts ({}) not logged in the last {} s",
                    name(i),
                    kind.as_str(),
                    LOG_PERIOD.as_secs()
                ),
                LogKey::Drop(None, kind) => tracing::warn!(
                    "VRRP: {n} similar dropped adverts ({}) not logged in the last {} s",
                    kind.as_str(),
                    LOG_PERIOD.as_secs()
                ),
                LogKey::Send(i) => tracing::warn!(
                    "VRRP_Instance({}) {n} similar advert send errors not logged",
                    name(i)
                ),
                LogKey::Announce(i) => tracing::warn!(
                    "VRRP_Instance({}) {n} similar announce errors not logged",
                    name(i)
                ),
                LogKey::Reannounce(i) => tracing::info!(
                    "VRRP_Instance({}) re-announced to a lower-priority master {n} more times in the last {} s",
                    name(i),
                    LOG_PERIOD.as_secs()
                ),
            }
        }
        if overflow > 0 {
            tracing::warn!("VRRP: {overflow} other warnings not logged");
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let vrrp = self
            .instances
            .iter()
            .filter_map(|i| i.vrrp.deadline())
            .min()
            .map(|us| self.start + Duration::from_micros(us));
        let garp = self
            .garps
            .iter()
            .filter_map(|g| g.next_deadline())
            .chain(self.pending.first().map(|(_, p)| p.at))
            .min()
            .map(|us| self.start + Duration::from_micros(us));
        let logs = self.limiter.next_flush().map(Instant::from_std);
        // Counters changed since the report was last written: refresh it
        // when the once-a-second limit allows.
        let status = self
            .status_pending
            .then(|| self.status_written.map(|t| t + Duration::from_secs(1)))
            .flatten();
        [vrrp, garp, logs, status].into_iter().flatten().min()
    }

    async fn on_timers(&mut self) {
        let now = self.now();
        for i in 0..self.instances.len() {
            if self.instances[i].vrrp.deadline().is_some_and(|d| d <= now) {
                self.feed(i, now, Input::Timer).await;
            }
            for burst in self.garps[i].poll(now) {
                self.plan_garps(i, now, burst.repeat, true);
            }
        }
        self.send_due_garps(now);
        self.report_suppressed(false);
    }

    /// A master heard a lower-priority master (a backup that lost us for a
    /// moment): it may have announced the VIPs, so announce them again
    /// (keepalived's garp_lower_prio_repeat/delay) and advertise at once so
    /// it steps back now.
    fn lower_priority_advert(&mut self, i: usize, now: Micros) {
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
        if let Some(burst) = self.garps[i].lower_priority_advert(now, repeat, delay) {
            if self.may_log(LogKey::Reannounce(i)) {
                tracing::info!(
                    "VRRP_Instance({}) heard a lower-priority master: re-announcing the VIPs",
                    self.instances[i].name()
                );
            }
            self.plan_garps(i, now, burst.repeat, false);
            self.send_due_garps(now);
        }
    }

    /// Queues a burst of `repeat` announcements of every VIP of instance i;
    /// `log`: say so (keepalived's line per VIP) — the re-announce to a
    /// lower-priority master logs its own, rate-limited line instead.
    fn plan_garps(&mut self, i: usize, now: Micros, repeat: u32, log: bool) {
        if log {
            for v in &self.instances[i].cfg.virtual_ipaddress {
                garp::log_queueing(self.instances[i].name(), &self.ifaces[i].name, v.addr);
            }
        }
        let (gi, ni) = (self.garp_interval, self.gna_interval);
        let pacer = self
            .pacers
            .entry(self.ifaces[i].index)
            .or_insert_with(|| Pacer::new(gi, ni));
        let vips: Vec<IpAddr> = self.instances[i]
            .cfg
            .virtual_ipaddress
            .iter()
            .map(|v| v.addr)
            .collect();
        self.pending
            .extend(pacer.plan(now, repeat, &vips).into_iter().map(|p| (i, p)));
        self.pending.sort_by_key(|(_, p)| p.at);
    }

    fn send_due_garps(&mut self, now: Micros) {
        let due = self.pending.partition_point(|(_, p)| p.at <= now);
        let sends: Vec<(usize, PlannedSend)> = self.pending.drain(..due).collect();
        for (i, send) in sends {
            let iface = self.ifaces[i].clone();
            let name = self.instances[i].name().to_string();
            let sender = match self.garp_senders.entry(iface.index) {
                Entry::Occupied(o) => o.into_mut(),
                Entry::Vacant(v) => match garp::GarpSender::open(iface.index) {
                    Ok(s) => v.insert(s),
                    Err(e) => {
                        tracing::warn!(
                            "VRRP_Instance({name}) cannot announce VIPs on {}: {e}",
                            iface.name
                        );
                        continue;
                    }
                },
            };
            // keepalived sends the NA from the VIP itself; the sender logs each packet.
            let r = match send.vip {
                IpAddr::V4(a) => sender.send_garp(iface.mac, a),
                IpAddr::V6(a) => sender.send_na(iface.mac, a, a),
            };
            if let Err(e) = r
                && self.may_log(LogKey::Announce(i))
            {
                tracing::warn!("VRRP_Instance({name}) announcing {}: {e}", send.vip);
            }
        }
    }

    async fn on_script(&mut self, index: usize, outcome: script::Outcome) {
        let ok = outcome.success();
        if self.scripts[index].record(ok) {
            let name = &self.script_names[index];
            if ok {
                tracing::info!("VRRP_Script({name}) succeeded");
            } else {
                tracing::info!("VRRP_Script({name}) {}", outcome.describe());
            }
            self.retrack().await;
        }
    }

    async fn on_link(&mut self, name: String, up: bool) {
        let before = self.iface_up(&name);
        self.links_up.insert(name.clone(), up);
        if before != up {
            tracing::info!("Netlink reports {name} {}", if up { "up" } else { "down" });
            self.retrack().await;
        }
    }

    fn write_status(&mut self) {
        let stale = self
            .status_written
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if !self.status_dirty && !stale {
            self.status_pending = true;
            return;
        }
        self.status_dirty = false;
        self.status_pending = false;
        self.status_written = Some(Instant::now());
        let report = status::report(&self.instances, &self.unmatched_drops);
        if let Some(path) = &self.options.status_file
            && let Err(e) = status::write(path, &report)
        {
            tracing::warn!("{e}");
        }
        if let Some(live) = &self.options.live
            && let Ok(mut v) = live.lock()
        {
            *v = Some(report);
        }
    }

    /// Make-before-break: a stopping master sends priority 0 but keeps its
    /// VIPs until the new master has announced itself (its advert, and a
    /// moment for its gratuitous ARPs), at most [`HANDOFF_WAIT`], so
    /// clients see no gap. `strict_mode` / `vrrp_strict` keeps RFC 5798's
    /// order (VIPs removed at once; clients wait Skew_Time).
    async fn handoff(&mut self, rx: &mut mpsc::Receiver<Event>) {
        let masters: Vec<usize> = (0..self.instances.len())
            .filter(|&i| {
                self.instances[i].vrrp.state == State::Master && !self.instances[i].cfg.strict_mode
            })
            .collect();
        if masters.is_empty() {
            return;
        }
        let start = Instant::now();
        let deadline = start + HANDOFF_WAIT;
        let mut waiting = masters.clone();
        for &i in &masters {
            tracing::info!(
                "VRRP_Instance({}) handing over: priority 0 advert sent, VIPs kept until a new master announces itself",
                self.instances[i].name()
            );
            self.send_advert(i, 0);
            self.zero_sent[i] = true;
        }
        // Repeat the priority-0 advert in case one is lost.
        let mut resend = tokio::time::interval_at(start + HANDOFF_RESEND, HANDOFF_RESEND);
        while !waiting.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    for &i in &waiting {
                        tracing::warn!(
                            "VRRP_Instance({}) no new master within {:.1} s; removing the VIPs anyway",
                            self.instances[i].name(),
                            HANDOFF_WAIT.as_secs_f64()
                        );
                    }
                    return;
                }
                _ = resend.tick() => {
                    for &i in &waiting {
                        self.send_advert(i, 0);
                    }
                }
                ev = rx.recv() => match ev {
                    Some(Event::Packet { generation, socket, bytes, info }) if generation == self.generation => {
                        if let Some((i, Input::Advert { src, priority, .. })) = self.on_packet(socket, &bytes, info)
                            && priority > 0
                            && waiting.contains(&i)
                        {
                            tracing::info!(
                                "VRRP_Instance({}) new master {src} announced itself after {:.3} s",
                                self.instances[i].name(),
                                start.elapsed().as_secs_f64()
                            );
                            waiting.retain(|&w| w != i);
                        }
                    }
                    Some(_) => {}
                    None => return,
                },
            }
        }
        // Its gratuitous ARPs follow its first advert at once.
        tokio::time::sleep(HANDOFF_GARP_GRACE).await;
    }

    async fn shutdown(&mut self) {
        let now = self.now();
        for i in 0..self.instances.len() {
            self.feed(i, now, Input::Shutdown).await;
        }
        for inst in &self.instances {
            if let Some(vmac) = &inst.cfg.use_vmac
                && let Err(e) = self.rtnl.delete_link(vmac).await
            {
                tracing::warn!(
                    "VRRP_Instance({}) cannot remove VMAC {vmac}: {e}",
                    inst.name()
                );
            }
        }
        self.status_dirty = true;
        self.write_status();
    }
}

fn spawn_receivers(
    sockets: &[Arc<VrrpSocket>],
    generation: u64,
    tx: &mpsc::Sender<Event>,
) -> Vec<tokio::task::JoinHandle<()>> {
    sockets
        .iter()
        .enumerate()
        .map(|(index, sock)| {
            let (sock, tx) = (sock.clone(), tx.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    match sock.recv(&mut buf).await {
                        Ok((n, info)) => {
                            let ev = Event::Packet {
                                generation,
                                socket: index,
                                bytes: buf[..n].to_vec(),
                                info,
                            };
                            if tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("VRRP socket receive: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

/// One task per vrrp_script used by an instance: run, report, wait `interval`.
fn spawn_scripts(
    config: &Config,
    used: &[usize],
    tx: &mpsc::Sender<Event>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let base = RunOptions::from_globals(&config.global);
    used.iter()
        .map(|&index| {
            let s = config.vrrp_scripts[index].clone();
            let opts = base
                .clone()
                .with_timeout(Some(s.timeout.map_or(s.interval.0, |t| t.0)));
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(s.interval.0.max(Duration::from_millis(10)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let outcome = script::run(&s.script, &opts).await;
                    if let script::Outcome::TimedOut { .. } = outcome {
                        tracing::warn!("VRRP_Script({}) timed out", s.name);
                    }
                    if tx.send(Event::Script { index, outcome }).await.is_err() {
                        return;
                    }
                }
            })
        })
        .collect()
}

/// What the daemon tells a running driver.
#[derive(Debug)]
pub enum Control {
    /// A new, already validated configuration (SIGHUP).
    Reload(Box<Config>),
    /// Leave: hand over, remove the VIPs, run notify_stop.
    Stop,
}

impl Driver {
    /// Starts the tasks that feed events in: socket receivers, vrrp_script
    /// runners and the link watch (reading the tracked links' state after
    /// the watch is open, so no change is missed).
    async fn spawn_tasks(&mut self, tx: &mpsc::Sender<Event>) -> Vec<JoinHandle<()>> {
        let mut tasks = spawn_receivers(&self.sockets, self.generation, tx);
        let used: Vec<usize> = (0..self.config.vrrp_scripts.len())
            .filter(|&s| {
                self.instances
                    .iter()
                    .any(|i| i.trackers.iter().any(|t| t.kind == TrackerKind::Script(s)))
            })
            .collect();
        tasks.extend(spawn_scripts(&self.config, &used, tx));
        let tracked: Vec<String> = self
            .instances
            .iter()
            .flat_map(|i| i.trackers.iter())
            .filter_map(|t| match &t.kind {
                TrackerKind::Interface(n) => Some(n.clone()),
                TrackerKind::Script(_) => None,
            })
            .collect();
        if tracked.is_empty() {
            return tasks;
        }
        match rtnl::LinkWatch::open() {
            Ok(mut watch) => {
                let tx = tx.clone();
                tasks.push(tokio::spawn(async move {
                    while let Some(ev) = watch.next().await {
                        let ev = Event::Link {
                            name: ev.name,
                            up: ev.up,
                        };
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                }));
            }
            Err(e) => tracing::error!("cannot watch links for track_interface: {e}"),
        }
        for name in &tracked {
            let up = match self.rtnl.link_by_name(name).await {
                Ok(l) => l.up,
                Err(e) => {
                    tracing::warn!("track_interface {name}: {e}; taken as down");
                    false
                }
            };
            self.links_up.insert(name.clone(), up);
        }
        tasks
    }

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

    /// SIGHUP: builds the new instances, carries state over for those that
    /// are still there, stops the removed ones and starts the new ones. A
    /// master advertises right before and right after, so a short
    /// advert_int never sees a gap. On error the running set is untouched.
    async fn reload(
        &mut self,
        config: Config,
        tx: &mpsc::Sender<Event>,
    ) -> Result<Vec<JoinHandle<()>>, Error> {
        let masters: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].vrrp.state == State::Master)
            .collect();
        for &i in &masters {
            self.send_advert(i, self.instances[i].vrrp.priority);
        }
        // Log what was held back while the instance indices still mean
        // the same instances.
        self.report_suppressed(true);
        let mut new = Driver::new(&config, self.options.clone()).await?;
        new.start = self.start;
        new.generation = self.generation + 1;
        new.links_up = std::mem::take(&mut self.links_up);
        new.garp_senders = std::mem::take(&mut self.garp_senders);
        new.pacers = std::mem::take(&mut self.pacers);
        for (k, def) in config.vrrp_scripts.iter().enumerate() {
            if let Some(j) = self.config.vrrp_scripts.iter().position(|d| d == def) {
                new.scripts[k] = self.scripts[j].clone();
            }
        }
        let now = self.now();
        let mut from_old: Vec<Option<usize>> = vec![None; new.instances.len()];
        let mut kept = vec![false; self.instances.len()];
        for (ni, inst) in new.instances.iter_mut().enumerate() {
            let Some(oi) = (0..self.instances.len()).find(|&oi| {
                !kept[oi]
                    && self.instances[oi].name() == inst.name()
                    && Self::compatible(&self.instances[oi], inst)
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
            let params = *new.garps[ni].params();
            new.garps[ni] = self.garps[oi].clone();
            new.garps[ni].set_params(now, params);
        }
        new.group_states = new
            .group_names
            .iter()
            .map(|g| {
                self.group_names
                    .iter()
                    .position(|o| o == g)
                    .map_or(State::Init, |o| self.group_states[o])
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
        // Removed (or incompatible) instances leave as at a stop.
        for oi in (0..self.instances.len()).filter(|&oi| !kept[oi]) {
            tracing::info!(
                "VRRP_Instance({}) removed by the reload",
                self.instances[oi].name()
            );
            self.feed(oi, now, Input::Shutdown).await;
        }
        let old = std::mem::replace(self, new);
        // Kept masters: VIPs and routes that the reload added or removed.
        for (ni, oi) in from_old.iter().enumerate() {
            let Some(oi) = *oi else { continue };
            if self.instances[ni].vrrp.state == State::Master {
                self.update_vips(ni, &old.instances[oi].cfg).await;
            }
        }
        drop(old);
        let tasks = self.spawn_tasks(tx).await;
        self.retrack().await;
        for (ni, oi) in from_old.iter().enumerate() {
            match oi {
                None => self.feed(ni, now, Input::Start).await,
                Some(_) if self.instances[ni].vrrp.state == State::Master => {
                    let p = self.instances[ni].vrrp.priority;
                    self.send_advert(ni, p);
                }
                Some(_) => {}
            }
        }
        self.status_dirty = true;
        tracing::info!(
            "VRRP: reloaded: {} instance(s) kept, {} started, {} removed",
            from_old.iter().filter(|f| f.is_some()).count(),
            from_old.iter().filter(|f| f.is_none()).count(),
            kept.iter().filter(|k| !**k).count()
        );
        Ok(tasks)
    }

    /// A kept master's VIP and route changes from `old` to its current config.
    async fn update_vips(&mut self, i: usize, old: &VrrpInstance) {
        let name = self.instances[i].name().to_string();
        let cfg = self.instances[i].cfg.clone();
        for v in old
            .virtual_ipaddress
            .iter()
            .filter(|v| !cfg.virtual_ipaddress.contains(v))
        {
            let index = self.vip_ifindex(i, v.dev.as_deref()).await;
            tracing::info!("VRRP_Instance({name}) removing VIP {} (reload)", v.addr);
            if let Err(e) = self.rtnl.del_vip(index, v).await {
                tracing::error!("VRRP_Instance({name}) cannot remove VIP {}: {e}", v.addr);
            }
        }
        let mut added = Vec::new();
        for v in cfg
            .virtual_ipaddress
            .iter()
            .filter(|v| !old.virtual_ipaddress.contains(v))
        {
            let index = self.vip_ifindex(i, v.dev.as_deref()).await;
            tracing::info!("VRRP_Instance({name}) adding VIP {} (reload)", v.addr);
            match self.rtnl.add_vip(index, v).await {
                Ok(_) => added.push(v.addr),
                Err(e) => tracing::error!("VRRP_Instance({name}) cannot add VIP {}: {e}", v.addr),
            }
        }
        for r in old
            .virtual_routes
            .iter()
            .filter(|r| !cfg.virtual_routes.contains(r))
        {
            let index = self.vip_ifindex(i, r.dev.as_deref()).await;
            if let Err(e) = self.rtnl.del_route(index, r).await {
                tracing::error!(
                    "VRRP_Instance({name}) cannot remove route {}/{}: {e}",
                    r.dest,
                    r.prefix_len
                );
            }
        }
        for r in cfg
            .virtual_routes
            .iter()
            .filter(|r| !old.virtual_routes.contains(r))
        {
            let index = self.vip_ifindex(i, r.dev.as_deref()).await;
            if let Err(e) = self.rtnl.add_route(index, r).await {
                tracing::error!(
                    "VRRP_Instance({name}) cannot add route {}/{}: {e}",
                    r.dest,
                    r.prefix_len
                );
            }
        }
        if !added.is_empty() {
            let now = self.now();
            let repeat = cfg.garp_master_repeat;
            let (gi, ni) = (self.garp_interval, self.gna_interval);
            let pacer = self
                .pacers
                .entry(self.ifaces[i].index)
                .or_insert_with(|| Pacer::new(gi, ni));
            self.pending
                .extend(pacer.plan(now, repeat, &added).into_iter().map(|p| (i, p)));
            self.pending.sort_by_key(|(_, p)| p.at);
        }
    }

    /// A packet, a script's result or a link change.
    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Packet {
                generation,
                socket,
                bytes,
                info,
            } => {
                if generation == self.generation
                    && let Some((i, input)) = self.on_packet(socket, &bytes, info)
                {
                    let now = self.now();
                    let from_other =
                        matches!(input, Input::Advert { priority, .. } if priority > 0);
                    let was_master = self.instances[i].vrrp.state == State::Master;
                    let learned = self.instances[i].vrrp.master_adver_interval;
                    self.feed(i, now, input).await;
                    self.log_learned_interval(i, learned);
                    if from_other && was_master && self.instances[i].vrrp.state == State::Master {
                        self.lower_priority_advert(i, now);
                    }
                }
            }
            Event::Script { index, outcome } => self.on_script(index, outcome).await,
            Event::Link { name, up } => self.on_link(name, up).await,
        }
    }
}

/// Runs the configured VRRP instances until told to stop (or the control
/// channel closes).
pub async fn run(
    config: Config,
    options: Options,
    mut control: mpsc::Receiver<Control>,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), Error> {
    let mut d = Driver::new(&config, options).await?;
    d.remove_stale_vips().await;
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let mut tasks = Tasks(d.spawn_tasks(&tx).await);
    d.retrack().await;
    let now = d.now();
    for i in 0..d.instances.len() {
        d.feed(i, now, Input::Start).await;
    }
    d.write_status();
    if let Some(r) = ready {
        let _ = r.send(());
    }
    loop {
        let next = d.next_deadline();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(Control::Reload(config)) => match d.reload(*config, &tx).await {
                    Ok(new_tasks) => tasks = Tasks(new_tasks),
                    Err(e) => tracing::error!("VRRP: reload failed, the running instances are unchanged: {e}"),
                },
                Some(Control::Stop) | None => break,
            },
            _ = sleep => {
                // A late wake-up (a busy host) can find a timer due with
                // adverts already received behind it: hear those first, or
                // a backup takes over from a master that was not silent.
                // (yield: the socket readers queue what has arrived.)
                tokio::task::yield_now().await;
                for _ in 0..rx.len() {
                    match rx.try_recv() {
                        Ok(ev) => d.on_event(ev).await,
                        Err(_) => break,
                    }
                }
                d.on_timers().await
            }
            Some(ev) = rx.recv() => d.on_event(ev).await,
        }
        d.write_status();
    }
    let stopping = tokio::time::Instant::now();
    d.handoff(&mut rx).await;
    d.shutdown().await;
    // Let the notify workers run what is queued (notify_stop), bounded.
    d.notifiers.clear();
    d.group_notifiers.clear();
    let deadline = (tokio::time::Instant::now() + NOTIFY_STOP_WAIT).min(stopping + STOP_BUDGET);
    for h in std::mem::take(&mut d.notify_tasks) {
        if tokio::time::timeout_at(deadline, h).await.is_err() {
            tracing::warn!("notify scripts still running at exit: stopped");
            break;
        }
    }
    drop(tasks);
    if let Some(path) = &d.options.status_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Tasks aborted when dropped (a reload replaces them).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
