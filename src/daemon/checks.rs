//! The checkers' and the IPVS table's driver (keepalived's `--check`
//! process): it runs the director core ([`lvs::director`](crate::lvs::director))
//! and carries out its effects: probe tasks, kernel requests on the kernel
//! worker thread, hook scripts, the owned-services record and the health
//! report. Every decision is the core's.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::status;
use super::transitions::Recent;
use crate::check::engine::{self, Board, Clock, ProbeUpdate};
use crate::check::health::HealthTable;
use crate::check::probe::ProbeContext;
use crate::config::model::AnnounceGlobals;
use crate::config::model::{Config, Script};
use crate::lvs::director::{
    self, AnnounceRequest, Director, DrainError, Effect, Event, OperatorError, Override, Target,
};
use crate::lvs::kernel::KernelError;
use crate::lvs::{overrides, owned, worker};
use crate::vrrp::rtnl::{Rtnl, announce_text, kernel_metric};

/// The health report shows a change at most this late.
const REPORT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Options {
    /// Remove our IPVS services at stop (keepalived's default; off with --dont-release-ipvs).
    pub release_on_stop: bool,
    /// Where the services ipvsdir created are remembered.
    pub owned_state: PathBuf,
    /// How often the kernel table is re-read to repair drift.
    pub drift_interval: Duration,
    /// Where the checkers' report is also written as a file, if anywhere
    /// (opt-in: the status socket serves it; at tens of thousands of real
    /// servers the file costs more than the rest of a start).
    pub health_state: Option<PathBuf>,
    /// A real server (or virtual server) removed by a reload stays with
    /// weight 0 this long (its connections drain) before it is deleted.
    pub drain_grace: Duration,
    /// Keep the kernel's IPVS table in line with health (off with
    /// --no-ipvs: the checkers only report, beside a director that owns the
    /// table or on a host without IPVS).
    pub write_table: bool,
    /// Where the latest report is published in the process (besides the file).
    pub live: Option<status::LiveHealth>,
    /// The probes' counters (for the metrics), across reloads.
    pub stats: Arc<crate::check::engine::Stats>,
    /// Told of each published report, to record transitions.
    pub recent: Option<Arc<Recent>>,
    /// `--persist-overrides`: the operator's overrides are kept in this
    /// file across restarts (otherwise only across reloads).
    pub persist_overrides: Option<PathBuf>,
    /// The notify FIFOs that take LVS lines (`notify_fifo`,
    /// `lvs_notify_fifo`); opened by the daemon.
    pub fifo: crate::script::fifo::Sink,
    /// Where mail alerts go (`smtp_alert`); started by the daemon.
    pub mail: crate::mail::Sink,
}

/// What the daemon tells the director.
#[derive(Debug)]
pub enum Command {
    Reload(Box<Config>),
    /// An operator's override (`ipvsdir ctl`); the answer names the real
    /// servers it applied to.
    Operator {
        target: Target,
        what: Override,
        reply: oneshot::Sender<Result<Vec<String>, OperatorError>>,
    },
    /// `ipvsdir ctl drain-director` (`drain`) or `undrain-director`; the
    /// answer says what happens.
    DrainDirector {
        drain: bool,
        reply: oneshot::Sender<Result<String, DrainError>>,
    },
    /// Stop; with VRRP in this process, the table is released after
    /// [`Command::VrrpStopped`].
    Stop,
    VrrpStopped,
    /// A VRRP instance of this process entered or left MASTER
    /// (`announce_track_instance`).
    VrrpState {
        instance: String,
        master: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

fn run_script(ctx: &Arc<ProbeContext>, script: &Script, what: String) {
    let ctx = ctx.clone();
    let script = script.clone();
    tokio::spawn(async move {
        let outcome = ctx.run_script(&script).await;
        if !outcome.success() {
            tracing::warn!("{what} script '{}' {}", script.command, outcome.describe());
        }
    });
}

/// The probe tasks of the current plan and their board.
struct Probes {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    board: Arc<Board>,
    updates: mpsc::Receiver<ProbeUpdate>,
    ctx: Arc<ProbeContext>,
}

impl Probes {
    fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// Runs the director until it has stopped (after [`Command::Stop`], or
/// when `commands` closes). `ready` hears every [`Effect::TableReady`]; with
/// `vrrp_in_process` the table is released only after
/// [`Command::VrrpStopped`].
pub async fn run(
    config: Config,
    options: Options,
    vrrp_in_process: bool,
    mut commands: mpsc::Receiver<Command>,
    ready: mpsc::UnboundedSender<()>,
) -> Result<(), Error> {
    let origin = Instant::now();
    let clock = Clock(origin);
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let (kernel, owned) = if options.write_table {
        let owned: BTreeSet<_> = owned::load(&options.owned_state).unwrap_or_default();
        (Some(worker::spawn(replies_tx)?), owned)
    } else {
        (None, BTreeSet::new())
    };
    let core_opts = director::Options {
        write_table: options.write_table,
        release_on_stop: options.release_on_stop,
        drain_grace: options.drain_grace,
        drift_interval: options.drift_interval,
        vrrp_in_process,
        origin,
        assume: None,
        report_every: Some(REPORT_EVERY),
        persist_overrides: options.persist_overrides.is_some(),
        announce: true,
    };
    let started = std::time::SystemTime::now();
    let mut probes = Probes {
        tasks: Vec::new(),
        board: Board::from_states(Vec::new(), options.stats.clone()),
        updates: mpsc::channel(1).1,
        ctx: Arc::new(ProbeContext::from_config(&config)),
    };
    let mut core = Director::new(config, core_opts, owned);
    if let Some(path) = &options.persist_overrides {
        core.restore(Instant::now(), &overrides::load(path));
    }
    core.handle(Instant::now(), Event::Start);
    let mut batch = Vec::new();
    let mut report: Option<tokio::task::JoinHandle<()>> = None;
    let mut report_forced = false;
    let mut announcer: Option<Announcer> = None;
    'run: loop {
        while let Some(effect) = core.poll_effect() {
            match effect {
                Effect::Kernel(request) => {
                    if !kernel.as_ref().is_some_and(|k| k.send(request)) {
                        tracing::error!("IPVS: the kernel worker thread is gone");
                        break 'run;
                    }
                }
                Effect::RunScript { script, what } => run_script(&probes.ctx, &script, what),
                Effect::FifoLine(line) => options.fifo.write(&line),
                Effect::Mail(alert) => options.mail.send(alert),
                Effect::StartProbes {
                    config,
                    plan,
                    states,
                } => {
                    probes.stop();
                    probes.board = Board::from_states(states, options.stats.clone());
                    probes.ctx = Arc::new(ProbeContext::from_config(&config));
                    let (tx, rx) = mpsc::channel::<ProbeUpdate>(4096);
                    probes.updates = rx;
                    // FILE_CHECKs judged now, so the first table has their values.
                    let files = engine::judge_files_now(&plan, &probes.board, clock.now());
                    probes.tasks =
                        engine::spawn(&plan, probes.ctx.clone(), clock, probes.board.clone(), tx);
                    if !files.is_empty() {
                        let states = files
                            .iter()
                            .map(|&id| (id, probes.board.state(id)))
                            .collect();
                        core.handle(Instant::now(), Event::Probes(states));
                    }
                }
                Effect::StopProbes => probes.stop(),
                Effect::SaveOverrides(list) => {
                    if let Some(path) = &options.persist_overrides
                        && let Err(e) = overrides::save(path, &list)
                    {
                        tracing::warn!("{e}");
                    }
                }
                Effect::SaveOwned(set) => {
                    if let Err(e) = owned::save(&options.owned_state, &set) {
                        tracing::warn!("{e}");
                    }
                }
                Effect::TableReady => {
                    let _ = ready.send(());
                }
                Effect::WriteReport { force } => {
                    // One report at a time; a tick that finds the last one
                    // still being written leaves it for the next tick.
                    let busy = report.as_ref().is_some_and(|t| !t.is_finished());
                    report_forced |= force;
                    if !busy && (probes.board.take_news() | std::mem::take(&mut report_forced)) {
                        report = write_status(&mut core, &probes.board, &options, started);
                    }
                }
                Effect::Announce(request) => {
                    if announcer.is_none() {
                        announcer = Some(Announcer::spawn());
                    }
                    if let Some(a) = &announcer {
                        a.send(request);
                    }
                }
                Effect::AnnounceStatus(list) => {
                    for s in list.iter() {
                        tracing::debug!(vip = %s.vip, announced = s.announced, why = %s.why, "announcement");
                    }
                    // The next report tick shows it.
                    report_forced = true;
                }
                Effect::Stopped => break 'run,
            }
        }
        let timeout = core.poll_timeout();
        tokio::select! {
            Some(first) = probes.updates.recv() => {
                // Take everything already queued, then act once.
                batch.clear();
                batch.push(first.id);
                while let Ok(u) = probes.updates.try_recv() {
                    batch.push(u.id);
                }
                batch.sort_unstable();
                batch.dedup();
                let states = batch.iter().map(|&id| (id, probes.board.state(id))).collect();
                core.handle(Instant::now(), Event::Probes(states));
            }
            Some(reply) = replies.recv() => core.handle(Instant::now(), Event::Kernel(reply)),
            c = commands.recv() => {
                let event = match c {
                    Some(Command::Reload(config)) => Event::Reload(config),
                    Some(Command::Operator { target, what, reply }) => {
                        let _ = reply.send(core.operator(Instant::now(), &target, what));
                        continue;
                    }
                    Some(Command::DrainDirector { drain, reply }) => {
                        let _ = reply.send(core.drain_director(Instant::now(), drain));
                        continue;
                    }
                    Some(Command::VrrpStopped) => Event::VrrpStopped,
                    Some(Command::VrrpState { instance, master }) => {
                        Event::VrrpState { instance, master }
                    }
                    Some(Command::Stop) | None => Event::Stop,
                };
                core.handle(Instant::now(), event);
            }
            _ = crate::timer::sleep_until(timeout) => core.handle_timeout(Instant::now()),
        }
    }
    probes.stop();
    if let Some(a) = announcer.take() {
        a.finish().await;
    }
    // A report still being written would bring the file back.
    if let Some(t) = report.take() {
        let _ = t.await;
    }
    if let Some(path) = &options.health_state {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Writes the report from the probes' latest states, off this thread:
/// building it for tens of thousands of real servers takes long enough to
/// hold back probes and kernel updates (and a reload's apply) otherwise.
fn write_status(
    core: &mut Director,
    board: &Arc<Board>,
    options: &Options,
    started: std::time::SystemTime,
) -> Option<tokio::task::JoinHandle<()>> {
    let plan = core.health().plan.clone();
    let placement = core.placement();
    let announced = core.announcements();
    let drain = core.drain_status();
    let config = core.config().clone();
    let board = board.clone();
    let path = options.health_state.clone();
    let live = options.live.clone();
    let recent = options.recent.clone();
    Some(tokio::task::spawn_blocking(move || {
        let view = HealthTable {
            plan,
            states: board.snapshot(),
        };
        // A board from another plan (a reload between the tick and now).
        if view.states.len() != view.plan.probes.len() {
            return;
        }
        let mut r = status::report(&config, &view, &placement, started);
        r.announced = announced;
        r.drain = drain;
        if let Some(path) = path
            && let Err(e) = status::write(&path, &r)
        {
            tracing::warn!("{e}");
        }
        let r = Arc::new(r);
        let old = live
            .and_then(|live| live.lock().ok().map(|mut l| l.replace(r.clone())))
            .flatten();
        if let Some(recent) = recent {
            recent.health(old.as_deref(), &r);
        }
    }))
}

/// Carries out the core's announcements, in order, on a task with its own
/// rtnetlink socket (every exchange bounded by the socket's reply timeout),
/// so that a slow kernel never holds back probes or the IPVS table.
struct Announcer {
    tx: mpsc::UnboundedSender<AnnounceRequest>,
    task: tokio::task::JoinHandle<()>,
}

/// At exit, the last withdrawals get this long to be carried out.
const ANNOUNCER_FINISH: Duration = Duration::from_secs(10);

impl Announcer {
    fn spawn() -> Announcer {
        let (tx, rx) = mpsc::unbounded_channel();
        Announcer {
            tx,
            task: tokio::spawn(announce_loop(rx)),
        }
    }

    fn send(&self, request: AnnounceRequest) {
        if self.tx.send(request).is_err() {
            tracing::error!("announce: the route task is gone; announcements are not carried out");
        }
    }

    /// Waits (bounded) for the requests already sent.
    async fn finish(self) {
        drop(self.tx);
        if tokio::time::timeout(ANNOUNCER_FINISH, self.task)
            .await
            .is_err()
        {
            tracing::error!(
                "announce: routes not updated within {} s at exit",
                ANNOUNCER_FINISH.as_secs()
            );
        }
    }
}

async fn announce_loop(mut rx: mpsc::UnboundedReceiver<AnnounceRequest>) {
    let rtnl = match Rtnl::open_strict().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("announce: cannot open rtnetlink: {e}; no VIP is announced");
            while rx.recv().await.is_some() {}
            return;
        }
    };
    while let Some(request) = rx.recv().await {
        match request {
            AnnounceRequest::Sync {
                target,
                vips,
                drift,
            } => sync_routes(&rtnl, target, &vips, drift).await,
            AnnounceRequest::Announce { target, vip } => {
                if let Err(e) = rtnl.announce(&target, vip).await {
                    tracing::error!("announce: VIP {vip}: {e}");
                }
            }
            AnnounceRequest::Withdraw { target, vip } => {
                if let Err(e) = rtnl.withdraw(&target, vip).await {
                    tracing::error!("announce: withdrawing VIP {vip}: {e}");
                }
            }
        }
    }
}

/// Makes the table hold exactly our routes for `vips` with the target's
/// metric: reads it, and carries out what
/// [`crate::lvs::announce::route_changes`] decides.
async fn sync_routes(rtnl: &Rtnl, target: AnnounceGlobals, vips: &BTreeSet<IpAddr>, drift: bool) {
    let want: BTreeSet<(IpAddr, u32)> = vips
        .iter()
        .map(|v| (*v, kernel_metric(*v, target.metric)))
        .collect();
    let have = match rtnl.announced(&target).await {
        Ok(have) => Some(have),
        Err(e) => {
            tracing::error!("announce: cannot read routing table {}: {e}", target.table);
            None
        }
    };
    let (add, remove) = crate::lvs::announce::route_changes(&want, have.as_ref());
    for vip in add {
        match rtnl.announce(&target, vip).await {
            Ok(()) if drift => tracing::warn!(
                "announce: route {} was gone (removed by hand?): added again",
                announce_text(&target, vip)
            ),
            Ok(()) => {}
            Err(e) => tracing::error!("announce: VIP {vip}: {e}"),
        }
    }
    for (vip, metric) in remove {
        let route = AnnounceGlobals {
            metric: Some(metric),
            ..target
        };
        let text = announce_text(&route, vip);
        match rtnl.withdraw(&route, vip).await {
            Ok(_) if drift => tracing::warn!(
                "announce: route {text} is not ours to keep (added by hand?): removed"
            ),
            Ok(_) => tracing::info!("announce: removed stale route {text}"),
            Err(e) => tracing::error!("announce: {e}"),
        }
    }
}
