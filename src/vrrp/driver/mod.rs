//! The VRRP driver: carries the node core's effects out and feeds it
//! events. It owns the I/O only — raw sockets, rtnetlink (VIPs, routes,
//! VMACs), GARP/NA packet sockets, the status file, and the script thread —
//! while every decision (elections, trackers, sync groups, GARP pacing,
//! the handoff, reload carry-over) is made by [`crate::vrrp::node`].
//! Nothing it awaits can block the protocol: VIP changes are single
//! netlink requests, GARPs are non-blocking sends, scripts run on their
//! own thread.

mod setup;
mod tasks;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::model::Config;

use super::garp::GarpSender;
use super::node::{Effect, Event as NodeEvent, Node, NodeOptions, NotifyTarget};
use super::packet;
use super::rtnl::{self, Rtnl};
use super::socket::RxInfo;
use super::state::{Micros, State};
use super::status;
use setup::Io;
use tasks::{Event, ScriptRunner, Tasks};

pub use super::node::HANDOFF_WAIT;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnl::RtnlError),
    #[error("VRRP_Instance({instance}): {message}")]
    Instance { instance: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

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
    /// Told of each published report, to record transitions.
    pub recent: Option<std::sync::Arc<crate::daemon::transitions::Recent>>,
    /// Where the instances' state is written for `--dump`.
    pub status_file: Option<PathBuf>,
    /// The notify FIFOs that take VRRP lines (`notify_fifo`,
    /// `vrrp_notify_fifo`); opened by the daemon.
    pub fifo: crate::script::fifo::Sink,
    /// Where mail alerts go (`smtp_alert`); started by the daemon.
    pub mail: crate::mail::Sink,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            release_vips: true,
            transitions: None,
            live: None,
            recent: None,
            status_file: Some(PathBuf::from(status::VRRP_STATE)),
            fifo: Default::default(),
            mail: Default::default(),
        }
    }
}

/// What the daemon tells a running driver.
#[derive(Debug)]
pub enum Control {
    /// A new, already validated configuration (SIGHUP).
    Reload(Box<Config>),
    /// Leave: hand over, remove the VIPs, run notify_stop.
    Stop,
}

/// What a node tracks: the tasks to start for it.
struct Tracked {
    scripts: Vec<usize>,
    links: Vec<String>,
    files: Vec<usize>,
    processes: Vec<usize>,
}

impl Tracked {
    fn of(node: &Node) -> Tracked {
        Tracked {
            scripts: node.tracked_scripts(),
            links: node.tracked_links(),
            files: node.tracked_files(),
            processes: node.tracked_processes(),
        }
    }
}

struct Driver {
    node: Node,
    rtnl: Rtnl,
    start: Instant,
    /// Bumped by each reload: events from older tasks are dropped.
    generation: u64,
    io: Io,
    /// A reload's new I/O table, in force from the node's
    /// [`Effect::Reloaded`] on (effects before it use `io`).
    next_io: Option<Io>,
    garp_senders: HashMap<u32, GarpSender>,
    runner: ScriptRunner,
    options: Options,
    /// Receivers of the sockets opened for interfaces that appeared
    /// (replaced by a reload's tasks).
    attached: Tasks,
    /// Where the tasks send their events (for the receivers of attached sockets).
    tx: mpsc::Sender<Event>,
}

impl Driver {
    fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    fn handle(&mut self, event: NodeEvent) {
        let now = self.now();
        self.node.handle(now, event);
    }

    /// Starts the tasks that feed events in for the current configuration;
    /// returns them, the tracked links' state and the tracked files' values.
    async fn spawn_tasks(
        &self,
        config: &Config,
        io: &Io,
        tx: &mpsc::Sender<Event>,
        tracked: &Tracked,
        reloading: bool,
    ) -> (
        Tasks,
        Vec<(String, bool)>,
        Vec<(usize, i64)>,
        Vec<(usize, bool)>,
    ) {
        let (scripts, links) = (&tracked.scripts, &tracked.links);
        let mut all = tasks::spawn_receivers(&io.sockets, self.generation, tx);
        all.extend(tasks::spawn_scripts(
            &self.runner,
            config,
            scripts,
            self.generation,
            tx,
        ));
        // Watched whenever there are instances: an interface that is
        // missing now is opened when it appears.
        let watch_all = !config.vrrp_instances.is_empty();
        let (watch, states) = tasks::watch_links(&self.rtnl, links, watch_all, tx).await;
        all.extend(watch);
        let (watches, files) = tasks::watch_files(config, &tracked.files, self.generation, tx);
        all.extend(watches);
        let (procs, processes) =
            tasks::watch_processes(config, &tracked.processes, self.generation, tx, reloading)
                .await;
        all.extend(procs);
        (Tasks(all), states, files, processes)
    }

    /// SIGHUP: the node carries state over; the I/O table is rebuilt. On
    /// error the running set is untouched.
    async fn reload(&mut self, config: Config, tx: &mpsc::Sender<Event>) -> Option<Tasks> {
        self.handle(NodeEvent::ReloadBegin);
        self.run_effects().await;
        let io = match Io::open(&self.rtnl, &config, &self.runner).await {
            Ok(io) => io,
            Err(e) => {
                tracing::error!("VRRP: reload failed, the running instances are unchanged: {e}");
                return None;
            }
        };
        // What the new configuration tracks, from a node built for it.
        let probe = Node::new(
            &config,
            io.setup(),
            NodeOptions::default(),
            self.start.into_std(),
        );
        self.generation += 1;
        let tracked = Tracked::of(&probe);
        // The watcher opens in the background only when the node can carry
        // every block's state over (unchanged and watched before); a new
        // or changed block needs its first scan now, or it would start down.
        let before = Tracked::of(&self.node).processes;
        let known = |&k: &usize| {
            config.track_processes.get(k).is_some_and(|def| {
                before
                    .iter()
                    .any(|&j| self.node.config().track_processes.get(j) == Some(def))
            })
        };
        let background = tracked.processes.iter().all(known);
        let (tasks, links, files, processes) = self
            .spawn_tasks(&config, &io, tx, &tracked, background)
            .await;
        let setup = io.setup();
        self.next_io = Some(io);
        self.attached = Tasks(Vec::new());
        self.handle(NodeEvent::Reload {
            config: Box::new(config),
            setup,
            links,
            files,
            processes,
        });
        self.run_effects().await;
        Some(tasks)
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Packet {
                generation,
                socket,
                bytes,
                info,
            } => {
                if generation != self.generation {
                    return;
                }
                let peek = match info {
                    RxInfo::V4 => packet::peek_ipv4(&bytes),
                    RxInfo::V6 {
                        src,
                        dst,
                        hop_limit,
                    } => packet::peek_ipv6(&bytes, src, dst, hop_limit),
                };
                let now = self.now();
                self.node.handle_packet(now, socket, &bytes, peek);
            }
            Event::Script {
                generation,
                index,
                outcome,
            } => {
                if generation == self.generation {
                    self.handle(NodeEvent::Script {
                        index,
                        success: outcome.success(),
                        detail: outcome.describe(),
                    });
                }
            }
            Event::ScriptStarted { generation, index } => {
                if generation == self.generation {
                    self.handle(NodeEvent::ScriptStarted { index });
                }
            }
            Event::File {
                generation,
                index,
                value,
            } => {
                if generation == self.generation {
                    self.handle(NodeEvent::TrackFile { index, value });
                }
            }
            Event::Process {
                generation,
                index,
                up,
            } => {
                if generation == self.generation {
                    self.handle(NodeEvent::TrackProcess { index, up });
                }
            }
            Event::Link { name, up, removed } => {
                self.handle(NodeEvent::Link {
                    name: name.clone(),
                    up,
                });
                if removed {
                    for i in 0..self.io.inst.len() {
                        if self.io.inst[i].interface == name {
                            self.io.detach(i);
                        }
                    }
                    self.handle(NodeEvent::LinkRemoved { name });
                }
            }
        }
    }

    /// The node asks for instance `i`'s interface (it did not exist).
    async fn open_interface(&mut self, i: usize) {
        if self.next_io.is_some() {
            // A reload is switching tables: the new node asks again.
            return;
        }
        let config = self.node.config().clone();
        let event = match self.io.attach(&self.rtnl, &config, i).await {
            Ok((setup, new_socket)) => {
                if let Some(s) = new_socket
                    && let Some(sock) = self.io.sockets.get(s)
                {
                    self.attached.0.push(tasks::spawn_receiver(
                        sock.clone(),
                        s,
                        self.generation,
                        &self.tx,
                    ));
                }
                NodeEvent::InterfaceReady { instance: i, setup }
            }
            Err(e) => NodeEvent::InterfaceFailed {
                instance: i,
                error: e.reason(),
                missing: e.missing,
            },
        };
        self.handle(event);
    }

    /// Carries out what the node decided, in order.
    async fn run_effects(&mut self) {
        while let Some(effect) = self.node.poll_effect() {
            match effect {
                Effect::Advert {
                    instance,
                    src,
                    packets,
                    ..
                } => self.send_advert(instance, src, packets),
                Effect::Vips {
                    instance,
                    add,
                    vips,
                    routes,
                    rules,
                } => {
                    // Rules go last in, first out.
                    if !add {
                        self.set_rules(instance, add, &rules).await;
                    }
                    self.set_vips(instance, add, &vips, &routes).await;
                    if add {
                        self.set_rules(instance, add, &rules).await;
                    }
                }
                Effect::Announce { instance, vip } => self.announce(instance, vip),
                Effect::Notify { target, job } => {
                    // Never blocks: a full FIFO drops the line.
                    self.options.fifo.write(&job.fifo_line());
                    let tx = match target {
                        NotifyTarget::Instance(i) => self.io.notifiers.get(i),
                        NotifyTarget::Group(g) => self.io.group_notifiers.get(g),
                    };
                    if let Some(Some(tx)) = tx {
                        let _ = tx.send(job);
                    }
                }
                Effect::FifoLine(job) => self.options.fifo.write(&job.fifo_line()),
                Effect::Mail(alert) => self.options.mail.send(alert),
                Effect::Transition { name, state, .. } => {
                    if let Some(tx) = &self.options.transitions {
                        let _ = tx.send(Transition {
                            instance: name,
                            state,
                        });
                    }
                }
                Effect::OpenInterface { instance } => self.open_interface(instance).await,
                Effect::WriteReport => self.write_status(),
                Effect::Reloaded => {
                    if let Some(io) = self.next_io.take() {
                        // The old notify workers finish what they were given.
                        self.io = io;
                    }
                }
                Effect::Stopped => self.delete_vmacs().await,
            }
        }
    }

    fn send_advert(&mut self, i: usize, src: IpAddr, packets: Vec<(Vec<u8>, IpAddr)>) {
        let Some(sock) = self
            .io
            .inst
            .get(i)
            .and_then(|x| self.io.sockets.get(x.socket))
            .cloned()
        else {
            return;
        };
        for (bytes, dst) in packets {
            let r = match (dst, src) {
                (IpAddr::V4(d), _) => sock.send_v4(&bytes, d),
                (IpAddr::V6(d), IpAddr::V6(s)) => sock.send_v6(&bytes, s, d),
                (IpAddr::V6(_), IpAddr::V4(_)) => Ok(()),
            };
            if let Err(e) = r {
                if self.next_io.is_some() {
                    // An instance the reload removes: the node's numbering has moved on.
                    tracing::warn!(
                        "VRRP_Instance({}) cannot send an advert to {dst}: {e}",
                        self.io.inst[i].name
                    );
                } else {
                    self.handle(NodeEvent::SendFailed {
                        instance: i,
                        dst,
                        error: e.to_string(),
                    });
                }
            }
        }
    }

    async fn set_vips(
        &self,
        i: usize,
        add: bool,
        vips: &[crate::config::model::VirtualAddress],
        routes: &[crate::config::model::VirtualRoute],
    ) {
        let Some(name) = self.io.inst.get(i).map(|x| x.name.as_str()) else {
            return;
        };
        let verb = if add { "add" } else { "remove" };
        for v in vips {
            let Some(index) = self.io.vip_ifindex(&self.rtnl, i, v.dev.as_deref()).await else {
                continue;
            };
            let r = if add {
                self.rtnl.add_vip(index, v).await
            } else {
                self.rtnl.del_vip(index, v).await
            };
            if let Err(e) = r {
                tracing::error!("VRRP_Instance({name}) cannot {verb} VIP {}: {e}", v.addr);
            }
        }
        for r in routes {
            let Some(index) = self.io.vip_ifindex(&self.rtnl, i, r.dev.as_deref()).await else {
                continue;
            };
            let res = if add {
                self.rtnl.add_route(index, r).await
            } else {
                self.rtnl.del_route(index, r).await
            };
            if let Err(e) = res {
                tracing::error!(
                    "VRRP_Instance({name}) cannot {verb} route {}/{}: {e}",
                    r.dest,
                    r.prefix_len
                );
            }
        }
    }

    async fn set_rules(&self, i: usize, add: bool, rules: &[crate::config::model::VirtualRule]) {
        let Some(name) = self.io.inst.get(i).map(|x| x.name.as_str()) else {
            return;
        };
        for r in rules {
            let res = if add {
                self.rtnl.add_rule(r).await
            } else {
                self.rtnl.del_rule(r).await
            };
            if let Err(e) = res {
                let verb = if add { "add" } else { "remove" };
                tracing::error!(
                    "VRRP_Instance({name}) cannot {verb} rule {}: {e}",
                    rtnl::rule_text(r)
                );
            }
        }
    }

    fn announce(&mut self, i: usize, vip: IpAddr) {
        let Some(inst) = self.io.inst.get(i) else {
            return;
        };
        let iface = inst.iface.clone();
        let sender = match self.garp_senders.entry(iface.index) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => match GarpSender::open(iface.index) {
                Ok(s) => v.insert(s),
                Err(e) => {
                    tracing::warn!(
                        "VRRP_Instance({}) cannot announce VIPs on {}: {e}",
                        inst.name,
                        iface.name
                    );
                    return;
                }
            },
        };
        // keepalived sends the NA from the VIP itself; the sender logs each packet.
        let r = match vip {
            IpAddr::V4(a) => sender.send_garp(iface.mac, a),
            IpAddr::V6(a) => sender.send_na(iface.mac, a, a),
        };
        if let Err(e) = r {
            self.handle(NodeEvent::AnnounceFailed {
                instance: i,
                vip,
                error: e.to_string(),
            });
        }
    }

    fn write_status(&self) {
        let report = status::report(
            self.node.instances(),
            self.node.unmatched_drops(),
            self.node.script_states(),
            self.node.file_values(),
            self.node.process_states(),
        );
        if let Some(path) = &self.options.status_file
            && let Err(e) = status::write(path, &report)
        {
            tracing::warn!("{e}");
        }
        if let Some(live) = &self.options.live
            && let Ok(mut v) = live.lock()
        {
            if let Some(recent) = &self.options.recent {
                recent.vrrp(v.as_ref(), &report);
            }
            *v = Some(report);
        }
    }

    async fn delete_vmacs(&self) {
        for inst in &self.io.inst {
            if let Some(vmac) = &inst.use_vmac
                && let Err(e) = self.rtnl.delete_link(vmac).await
            {
                tracing::warn!(
                    "VRRP_Instance({}) cannot remove VMAC {vmac}: {e}",
                    inst.name
                );
            }
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
    let runner = ScriptRunner::start()?;
    let rtnl = Rtnl::open().await?;
    let io = Io::open(&rtnl, &config, &runner).await?;
    io.remove_stale_vips(&rtnl, &config).await;
    let start = Instant::now();
    let node_options = NodeOptions {
        release_vips: options.release_vips,
    };
    let node = Node::new(&config, io.setup(), node_options, start.into_std());
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let mut d = Driver {
        node,
        rtnl,
        start,
        generation: 0,
        io,
        next_io: None,
        garp_senders: HashMap::new(),
        runner,
        options,
        attached: Tasks(Vec::new()),
        tx: tx.clone(),
    };
    let tracked = Tracked::of(&d.node);
    let (mut tasks, links, files, processes) =
        d.spawn_tasks(&config, &d.io, &tx, &tracked, false).await;
    d.handle(NodeEvent::Start {
        links,
        files,
        processes,
    });
    d.run_effects().await;
    if let Some(r) = ready {
        let _ = r.send(());
    }
    let mut stopping: Option<Instant> = None;
    while !d.node.is_stopped() {
        let next = d
            .node
            .poll_timeout()
            .map(|us| d.start + Duration::from_micros(us));
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            c = control.recv(), if stopping.is_none() => match c {
                Some(Control::Reload(config)) => {
                    if let Some(t) = d.reload(*config, &tx).await {
                        tasks = t;
                    }
                }
                Some(Control::Stop) | None => {
                    stopping = Some(Instant::now());
                    d.handle(NodeEvent::Stop);
                }
            },
            _ = sleep => {
                // A late wake-up (a busy host) can find a timer due with
                // adverts already received behind it: hear those first, or
                // a backup takes over from a master that was not silent.
                // (yield: the socket readers queue what has arrived.)
                tokio::task::yield_now().await;
                for _ in 0..rx.len() {
                    match rx.try_recv() {
                        Ok(ev) => d.on_event(ev),
                        Err(_) => break,
                    }
                }
                d.handle(NodeEvent::Timer);
            }
            Some(ev) = rx.recv() => d.on_event(ev),
        }
        d.run_effects().await;
    }
    // Let the notify workers run what is queued (notify_stop), bounded.
    let stopping = stopping.unwrap_or_else(Instant::now);
    d.io.notifiers.clear();
    d.io.group_notifiers.clear();
    let deadline = (Instant::now() + NOTIFY_STOP_WAIT).min(stopping + STOP_BUDGET);
    for h in std::mem::take(&mut d.io.notify_tasks) {
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
