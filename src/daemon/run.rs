//! The long-running daemon: VRRP and (unless VRRP-only) the checkers with
//! the IPVS table in one runtime, driven by signals: SIGTERM/SIGINT stop,
//! SIGHUP reloads (a configuration with errors is refused and the running
//! one carries on).

use std::path::PathBuf;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::{self, LoadOptions, model::Config};
use crate::vrrp::driver::{self, Control};
use crate::vrrp::rtnl::Rtnl;
use crate::vrrp::statics::Statics;

use sd_notify::NotifyState;

use std::sync::Arc;

use super::{checks, control, dump, sync_daemon};

/// The daemon's runtimes, one per thread: the main thread's (IPVS table,
/// status socket, the checkers other than TCP_CHECK and plain HTTP_GET,
/// which have a thread of their own: `check::poller`) and the VRRP
/// thread's. Probes are I/O bound; on one thread they cost about 30% less
/// CPU than spread over two workers (no cross-thread wakeups or work
/// stealing: `scripts/bench-check`).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// A task aborted when dropped.
struct Tasks(tokio::task::JoinHandle<()>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tells systemd (Type=notify) about our state; a no-op without NOTIFY_SOCKET.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!("sd_notify: {e}");
    }
}

fn monotonic() -> NotifyState<'static> {
    NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Reloading)
}

#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    pub load: LoadOptions,
    /// None: no VRRP in this process (`-C`).
    pub vrrp: Option<driver::Options>,
    /// None: VRRP only (`-P`).
    pub checks: Option<checks::Options>,
    /// `-p`: the pid file, locked while we run (default: beside the status socket).
    pub pid_file: Option<PathBuf>,
    /// The status socket.
    pub control_socket: PathBuf,
    /// Where SIGUSR1/SIGUSR2 dumps go.
    pub dump_dir: PathBuf,
    /// `--metrics-listen`: serve Prometheus metrics there.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
    #[error("cannot catch signals: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] driver::Error),
    #[error("the VRRP thread ended without a result")]
    VrrpThread(#[from] tokio::sync::oneshot::error::RecvError),
    #[error("cannot start the VRRP thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Checks(#[from] checks::Error),
    #[error("the checkers' task failed: {0}")]
    ChecksTask(#[from] tokio::task::JoinError),
    #[error("cannot serve metrics on {0}: {1} (choose a free address with --metrics-listen)")]
    Metrics(std::net::SocketAddr, std::io::Error),
}

/// Loads and validates the file again; None (after logging why) when it cannot run.
fn reload_config(opts: &Options) -> Option<Config> {
    let scope = crate::script::audit::Scope {
        vrrp: opts.vrrp.is_some(),
        checks: opts.checks.is_some(),
    };
    load_valid(&opts.config_path, &opts.load, scope)
}

/// The file's configuration if it can run; its diagnostics, and what is
/// wrong with its scripts, are logged.
pub fn load_valid(
    path: &std::path::Path,
    load: &LoadOptions,
    scripts: crate::script::audit::Scope,
) -> Option<Config> {
    let loaded = config::load(path, load);
    super::log::diagnostics(&loaded.diagnostics, "reload: ");
    if let Some(cfg) = &loaded.config {
        for w in crate::script::audit::audit(cfg, scripts) {
            tracing::warn!(target: "ipvsdir::script", "reload: {w}");
        }
    }
    if loaded.config.is_none() {
        tracing::error!(
            "reload: {} has errors; keeping the running configuration",
            path.display()
        );
    }
    loaded.config
}

/// How long a reload waits for the table before VRRP gets the new file
/// anyway (a new VIP should find its virtual service in place).
const RELOAD_TABLE_WAIT: Duration = Duration::from_secs(5);

/// The one daemon entry (full, `-P`, `-C`). Order of effects:
/// - start: the director brings the IPVS table in line first; VRRP (whose
///   VIPs attract traffic to it) starts when the table is ready;
/// - reload: the director gets the new file first, VRRP once the table
///   reflects it (at most [`RELOAD_TABLE_WAIT`] later);
/// - stop: VRRP hands over and removes its VIPs, then the director
///   releases the table.
pub async fn run(config: Config, opts: Options) -> Result<(), Error> {
    // One director per pid file, taken before anything is touched.
    let pid_path = match &opts.pid_file {
        Some(p) => p.clone(),
        None => super::lock::default_path(&opts.control_socket),
    };
    let _lock = super::lock::PidLock::acquire(&pid_path)?;
    crate::track_file::init_all(&config);
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signals)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(Error::Signals)?;
    let mut usr2 = signal(SignalKind::user_defined2()).map_err(Error::Signals)?;
    let (dir_tx, dir_rx) = mpsc::channel(16);
    let (ready_tx, mut table_ready) = mpsc::unbounded_channel();
    let vrrp_in_process = opts.vrrp.is_some() && !config.vrrp_instances.is_empty();
    // The VRRP side and the sync daemon get the file without its virtual
    // servers (they read none): no deep copy of a large table.
    let vrrp_config = vrrp_part(&config);
    let board = Arc::new(control::Board::default());
    // --metrics-listen, else the file's metrics_listen (read at start only).
    let metrics_listen = opts.metrics_listen.or(config.global.metrics_listen);
    // LVS metrics where this process runs the checkers; the kernel's
    // counters only where it keeps the IPVS table too.
    let lvs_metrics = metrics_listen.is_some() && opts.checks.is_some();
    if lvs_metrics {
        let keeps_table = opts.checks.as_ref().is_some_and(|c| c.write_table);
        board.lvs.configure(&config, keeps_table);
    }
    let _metrics = match metrics_listen {
        Some(addr) => {
            let listener = crate::metrics::server::bind(addr)
                .await
                .map_err(|e| Error::Metrics(addr, e))?;
            tracing::info!(
                "Serving metrics on http://{addr}/metrics, the status page on http://{addr}/"
            );
            let b = board.clone();
            let render: crate::metrics::server::Render = Arc::new(move || b.metrics());
            let b = board.clone();
            let status: crate::metrics::server::RenderJson =
                Arc::new(move || serde_json::to_string(&b.status()));
            let routes = crate::metrics::server::Routes {
                metrics: render,
                status,
            };
            Some(Tasks(tokio::spawn(crate::metrics::server::serve(
                listener, routes,
            ))))
        }
        None => None,
    };
    // The notify FIFOs (and their scripts) before anything writes to them.
    let runs_vrrp = opts.vrrp.is_some();
    let fifos = crate::script::fifo::Fifos::open(
        &config.global,
        crate::script::fifo::Scope {
            vrrp: runs_vrrp,
            lvs: opts.checks.is_some(),
            // With -C beside a -P for the same file, the VRRP process runs it.
            all_script: runs_vrrp || config.vrrp_instances.is_empty(),
        },
    );
    let fifo_config = config.global.notify_fifos.clone();
    // Mail alerts (smtp_alert): one sender task behind a bounded queue.
    let (hostname, user) = (
        crate::mail::sender::hostname(),
        crate::mail::sender::user_name(),
    );
    let mail_settings =
        |g: &crate::config::model::GlobalDefs| crate::mail::Settings::of(g, &hostname, &user);
    let mut mail_now = mail_settings(&config.global);
    if let Some(m) = &mail_now {
        tracing::info!(
            "mail alerts go to {} through SMTP server {}",
            m.to.join(", "),
            m.server()
        );
    }
    let mailer = crate::mail::Mailer::spawn(mail_now.clone());
    // static_ipaddress / static_routes: where VRRP runs (not with -C).
    let mut statics = crate::vrrp::statics::Statics::default();
    let mut statics_rtnl = None;
    if runs_vrrp {
        set_statics(&mut statics_rtnl, &mut statics, Statics::of(&config)).await;
    }
    // announce_track_instance: the director follows those instances' states.
    let tracked: std::collections::BTreeSet<String> = config
        .virtual_servers
        .iter()
        .filter_map(|vs| vs.announce_track_instance.clone())
        .collect();
    if !tracked.is_empty() && !vrrp_in_process {
        tracing::warn!(
            "announce_track_instance: VRRP does not run in this process (-C): the virtual servers that track {} are never announced",
            tracked.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let mut director = match opts.checks.clone() {
        Some(mut c) if !config.virtual_servers.is_empty() => {
            c.fifo = fifos.lvs_sink();
            c.mail = mailer.sink();
            c.live = Some(board.health.clone());
            c.stats = board.checks.clone();
            c.recent = Some(board.recent.clone());
            Some(tokio::spawn(checks::run(
                config,
                c,
                vrrp_in_process,
                dir_rx,
                ready_tx,
            )))
        }
        _ => None,
    };
    let _control = match control::bind(&opts.control_socket) {
        Ok(l) => {
            let operator = director.is_some().then(|| dir_tx.clone());
            Some(Tasks(tokio::spawn(control::serve(
                l,
                board.clone(),
                operator,
            ))))
        }
        Err(e) => {
            tracing::error!("status socket {}: {e}", opts.control_socket.display());
            None
        }
    };
    // --no-ipvs leaves everything of IPVS alone, the sync daemon included.
    let no_ipvs = opts.checks.as_ref().is_some_and(|c| !c.write_table);
    let mut sync = None;
    let mut vrrp_opts = opts.vrrp.clone().map(|mut v| {
        v.fifo = fifos.vrrp_sink();
        v.mail = mailer.sink();
        v.live = Some(board.vrrp.clone());
        v.recent = Some(board.recent.clone());
        let mut to_sync = None;
        if vrrp_config.global.lvs.sync_daemon.is_some() && !no_ipvs {
            let (tx, rx) = mpsc::unbounded_channel();
            to_sync = Some(tx);
            let cfg = vrrp_config.clone();
            sync = Some(tokio::spawn(
                async move { sync_daemon::follow(&cfg, rx).await },
            ));
        }
        // Every transition: a reload may add announce_track_instance for
        // any instance, and the director core keeps who is MASTER.
        let to_director = director.is_some().then(|| dir_tx.clone());
        if to_sync.is_some() || to_director.is_some() {
            let (tx, rx) = mpsc::unbounded_channel();
            v.transitions = Some(tx);
            tokio::spawn(fan_out_transitions(rx, to_sync, to_director));
        }
        v
    });
    // The VRRP side: its thread's result, readiness and control channel.
    let mut vrrp: Option<VrrpResult> = None;
    let mut vrrp_ready: Option<tokio::sync::oneshot::Receiver<()>> = None;
    let mut vrrp_control: Option<mpsc::Sender<Control>> = None;
    let mut start_config = Some(vrrp_config);
    // Waiting for the table: before VRRP starts, or before it reloads.
    let mut table_pending = director.is_some();
    let mut reload_for_vrrp: Option<(Config, tokio::time::Instant)> = None;
    let mut announced = false;
    let mut result: Result<(), Error> = Ok(());
    loop {
        if !table_pending
            && let Some(cfg) = start_config.take()
            && let Some(v) = vrrp_opts.take()
        {
            let (result, ready, control) = spawn_vrrp(cfg, v)?;
            (vrrp, vrrp_ready, vrrp_control) = (Some(result), Some(ready), Some(control));
        }
        if !announced && start_config.is_none() && vrrp_ready.is_none() {
            announced = true;
            tracing::info!("ipvsdir ready");
            notify(&[NotifyState::Ready]);
        }
        let reload_deadline = reload_for_vrrp.as_ref().map(|(_, t)| *t);
        tokio::select! {
            r = async { vrrp.as_mut()?.await.ok() }, if vrrp.is_some() => {
                // The VRRP thread ended on its own: an error.
                vrrp = None;
                result = match r {
                    Some(Err(e)) => Err(e.into()),
                    _ => Ok(()),
                };
                break;
            }
            r = async { director.as_mut()?.await.ok() }, if director.is_some() => {
                director = None;
                if let Some(Err(e)) = r {
                    tracing::error!("{e}");
                    if vrrp_opts.is_none() && vrrp.is_none() && opts.vrrp.is_none() {
                        // -C: the checkers were the whole daemon.
                        result = Err(e.into());
                        break;
                    }
                }
                table_pending = false;
            }
            _ = async { vrrp_ready.as_mut()?.await.ok() }, if vrrp_ready.is_some() => {
                vrrp_ready = None;
            }
            Some(()) = table_ready.recv() => {
                table_pending = false;
                if let Some((cfg, _)) = reload_for_vrrp.take() {
                    reload_vrrp(&vrrp_control, cfg).await;
                }
            }
            _ = crate::timer::sleep_until(reload_deadline) => {
                if let Some((cfg, _)) = reload_for_vrrp.take() {
                    tracing::warn!(
                        "reload: the IPVS table is not updated after {} s; VRRP takes the new file anyway",
                        RELOAD_TABLE_WAIT.as_secs()
                    );
                    reload_vrrp(&vrrp_control, cfg).await;
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("Reloading {}", opts.config_path.display());
                notify(&[NotifyState::Reloading, monotonic()]);
                let loading = std::time::Instant::now();
                let loaded = reload_config(&opts);
                board.note_reload(loaded.is_some(), loading.elapsed());
                if let Some(new) = loaded {
                    if opts.metrics_listen.is_none() && new.global.metrics_listen != metrics_listen {
                        tracing::warn!(
                            "reload: metrics_listen changed; the metrics listener moves at the next restart"
                        );
                    }
                    if new.global.notify_fifos != fifo_config {
                        tracing::warn!(
                            "reload: the notify FIFOs changed; the ones opened at start stay until a restart"
                        );
                    }
                    if runs_vrrp {
                        set_statics(&mut statics_rtnl, &mut statics, Statics::of(&new)).await;
                    }
                    crate::track_file::init_all(&new);
                    let mail_new = mail_settings(&new.global);
                    if mail_new != mail_now {
                        mailer.reconfigure(mail_new.clone()).await;
                        mail_now = mail_new;
                    }
                    if lvs_metrics {
                        board.lvs.reconfigure(&new);
                    }
                    match &director {
                        Some(_) => {
                            let for_vrrp = vrrp_part(&new);
                            let _ = dir_tx.send(checks::Command::Reload(Box::new(new))).await;
                            if let Some((cfg, _)) = reload_for_vrrp.take() {
                                reload_vrrp(&vrrp_control, cfg).await;
                            }
                            reload_for_vrrp =
                                Some((for_vrrp, tokio::time::Instant::now() + RELOAD_TABLE_WAIT));
                        }
                        None => reload_vrrp(&vrrp_control, new).await,
                    }
                }
                notify(&[NotifyState::Ready]);
            }
            // The dumps come from the live reports, written off this thread.
            _ = usr1.recv() => {
                let (b, dir) = (board.clone(), opts.dump_dir.clone());
                tokio::task::spawn_blocking(move || {
                    dump::write_data(&dir, b.vrrp_report().as_ref(), b.health_report().as_deref())
                });
            }
            _ = usr2.recv() => {
                let (b, dir) = (board.clone(), opts.dump_dir.clone());
                tokio::task::spawn_blocking(move || dump::write_stats(&dir, b.vrrp_report().as_ref()));
            }
        }
    }
    notify(&[NotifyState::Stopping]);
    // Stop order: the director holds the table while VRRP hands over.
    let _ = dir_tx.send(checks::Command::Stop).await;
    if let Some(v) = vrrp.take() {
        if let Some(c) = &vrrp_control {
            let _ = c.send(Control::Stop).await;
        }
        match v.await {
            Ok(Err(e)) => result = result.and(Err(e.into())),
            Err(e) => result = result.and(Err(e.into())),
            Ok(Ok(())) => {}
        }
    }
    let _ = dir_tx.send(checks::Command::VrrpStopped).await;
    let _ = std::fs::remove_file(&opts.control_socket);
    // The VRRP driver is gone, and with it the transitions' sender: the sync daemon stops.
    if let Some(s) = sync {
        let _ = s.await;
    }
    if let Some(d) = director {
        match d.await {
            Ok(Err(e)) => {
                tracing::error!("{e}");
                result = result.and(Err(e.into()));
            }
            Err(e) => tracing::error!("checkers: {e}"),
            Ok(Ok(())) => {}
        }
    }
    // Static addresses last: an announced VIP on lo is what lets IPVS take
    // the traffic that still arrives while the director drains, withdraws
    // and keeps its table for announce_withdraw_grace.
    if opts.vrrp.as_ref().is_some_and(|v| v.release_vips) {
        set_statics(&mut statics_rtnl, &mut statics, Statics::default()).await;
    }
    // The last lines (STOP, omega's DOWN) are written: the scripts may go.
    fifos.close().await;
    // The last alerts (Stopping) are mailed, within a bound.
    mailer.close().await;
    result
}

/// Brings the static addresses and routes from `current` to `new`,
/// opening the rtnetlink socket the first time there is something to do.
async fn set_statics(rtnl: &mut Option<Rtnl>, current: &mut Statics, new: Statics) {
    if *current == new {
        return;
    }
    if rtnl.is_none() {
        match Rtnl::open().await {
            Ok(r) => *rtnl = Some(r),
            Err(e) => {
                tracing::error!("static_ipaddress/static_routes: {e}");
                return;
            }
        }
    }
    if let Some(r) = rtnl.as_ref() {
        let p = crate::vrrp::statics::plan(current, &new);
        crate::vrrp::statics::apply(r, &p, current, &new).await;
    }
    *current = new;
}

/// The part of the file the VRRP side reads: all but the virtual servers.
fn vrrp_part(c: &Config) -> Config {
    Config {
        global: c.global.clone(),
        vrrp_scripts: c.vrrp_scripts.clone(),
        track_files: c.track_files.clone(),
        track_processes: c.track_processes.clone(),
        vrrp_sync_groups: c.vrrp_sync_groups.clone(),
        vrrp_instances: c.vrrp_instances.clone(),
        virtual_server_groups: Vec::new(),
        virtual_servers: Vec::new(),
        static_ipaddress: c.static_ipaddress.clone(),
        static_routes: c.static_routes.clone(),
        static_rules: c.static_rules.clone(),
    }
}

async fn reload_vrrp(vrrp: &Option<mpsc::Sender<Control>>, config: Config) {
    if let Some(v) = vrrp {
        let _ = v.send(Control::Reload(Box::new(config))).await;
    }
}

type VrrpResult = tokio::sync::oneshot::Receiver<Result<(), driver::Error>>;

/// VRRP runs on a thread of its own with a single-threaded runtime: no
/// amount of checker work can delay an advert or a takeover.
fn spawn_vrrp(
    config: Config,
    opts: driver::Options,
) -> Result<
    (
        VrrpResult,
        tokio::sync::oneshot::Receiver<()>,
        mpsc::Sender<Control>,
    ),
    Error,
> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (control_tx, control_rx) = mpsc::channel(4);
    std::thread::Builder::new()
        .name("vrrp".into())
        .spawn(move || {
            raise_priority(&config.global.vrrp);
            let result = match runtime() {
                Ok(rt) => rt.block_on(driver::run(config, opts, control_rx, Some(ready_tx))),
                Err(e) => Err(driver::Error::Io(e)),
            };
            let _ = tx.send(result);
        })
        .map_err(Error::Thread)?;
    Ok((rx, ready_rx, control_tx))
}

/// The nice value of the VRRP thread unless `vrrp_priority` says
/// otherwise: adverts keep their pace on a busy host.
const VRRP_NICE: i32 = -10;

/// Raises this (the VRRP) thread's priority: `vrrp_priority` (nice) and,
/// with `vrrp_rt_priority`, SCHED_RR. Scripts reset both when they start.
fn raise_priority(v: &crate::config::model::VrrpGlobals) {
    let nice = v.nice.unwrap_or(VRRP_NICE);
    // SAFETY: gettid and setpriority on this thread only.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc != 0 {
        tracing::warn!(
            "cannot set the VRRP thread's priority (nice {nice}): {}",
            std::io::Error::last_os_error()
        );
    }
    if let Some(prio) = v.rt_priority {
        let param = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: 0 is this thread; param is a valid sched_param.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } != 0 {
            tracing::warn!(
                "vrrp_rt_priority {prio}: cannot run the VRRP thread SCHED_RR: {} (needs CAP_SYS_NICE and an RT budget)",
                std::io::Error::last_os_error()
            );
        } else {
            tracing::info!("VRRP thread runs SCHED_RR at priority {prio}");
        }
    }
}

/// Hands each VRRP transition to the sync daemon and to the director
/// (whose core decides what `announce_track_instance` makes of it). Ends
/// (dropping both senders) when the VRRP driver is gone.
async fn fan_out_transitions(
    mut rx: mpsc::UnboundedReceiver<crate::vrrp::driver::Transition>,
    to_sync: Option<mpsc::UnboundedSender<crate::vrrp::driver::Transition>>,
    to_director: Option<mpsc::Sender<checks::Command>>,
) {
    while let Some(t) = rx.recv().await {
        if let Some(d) = &to_director {
            let master = t.state == crate::vrrp::state::State::Master;
            let _ = d
                .send(checks::Command::VrrpState {
                    instance: t.instance.clone(),
                    master,
                })
                .await;
        }
        if let Some(s) = &to_sync {
            let _ = s.send(t);
        }
    }
}
