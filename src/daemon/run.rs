//! The long-running daemon: VRRP and (unless VRRP-only) the checkers with
//! the IPVS table in one runtime, driven by signals: SIGTERM/SIGINT stop,
//! SIGHUP reloads (a configuration with errors is refused and the running
//! one carries on).

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::{self, LoadOptions, model::Config};
use crate::vrrp::driver::{self, Control};

use sd_notify::NotifyState;

use std::sync::Arc;

use super::{checks, control, dump, sync_daemon};

/// The daemon's runtimes, one per thread: the main thread's (checkers, IPVS
/// table, status socket) and the VRRP thread's. Probes are I/O bound; on
/// one thread they cost about 30% less CPU than spread over two workers (no
/// cross-thread wakeups or work stealing: `scripts/bench-check`).
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

/// The `-p` pid file, removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &std::path::Path) -> Option<PidFile> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => Some(PidFile(path.to_path_buf())),
            Err(e) => {
                tracing::error!("cannot write the pid file {}: {e}", path.display());
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    pub load: LoadOptions,
    pub vrrp: driver::Options,
    /// None: VRRP only (-P).
    pub checks: Option<checks::Options>,
    /// `-p`: where to write our pid.
    pub pid_file: Option<PathBuf>,
    /// The status socket.
    pub control_socket: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot catch signals: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] driver::Error),
    #[error("the VRRP thread ended without a result")]
    VrrpThread(#[from] tokio::sync::oneshot::error::RecvError),
    #[error("cannot start the VRRP thread: {0}")]
    Thread(std::io::Error),
}

/// Loads and validates the file again; None (after logging why) when it cannot run.
fn reload_config(opts: &Options) -> Option<Config> {
    load_valid(&opts.config_path, &opts.load)
}

/// The file's configuration if it can run; its diagnostics are logged.
pub fn load_valid(path: &std::path::Path, load: &LoadOptions) -> Option<Config> {
    let loaded = config::load(path, load);
    for d in loaded.diagnostics.to_string().lines() {
        tracing::warn!("reload: {d}");
    }
    if loaded.config.is_none() {
        tracing::error!(
            "reload: {} has errors; keeping the running configuration",
            path.display()
        );
    }
    loaded.config
}

pub async fn run(config: Config, opts: Options) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signals)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(Error::Signals)?;
    let mut usr2 = signal(SignalKind::user_defined2()).map_err(Error::Signals)?;
    let _pid = opts.pid_file.as_deref().and_then(PidFile::create);
    let health_file = opts.checks.as_ref().map(|c| c.health_state.clone());
    let (checks_tx, checks_rx) = mpsc::channel(4);
    let checks = opts
        .checks
        .clone()
        .filter(|_| !config.virtual_servers.is_empty())
        .map(|c| tokio::spawn(checks::run(config.clone(), c, checks_rx)));
    let board = Arc::new(control::Board {
        vrrp: Default::default(),
        health_file: health_file.clone(),
    });
    let _control = match control::bind(&opts.control_socket) {
        Ok(l) => Some(Tasks(tokio::spawn(control::serve(l, board.clone())))),
        Err(e) => {
            tracing::error!("status socket {}: {e}", opts.control_socket.display());
            None
        }
    };
    let mut vrrp_opts = opts.vrrp.clone();
    vrrp_opts.live = Some(board.vrrp.clone());
    // --no-ipvs leaves everything of IPVS alone, the sync daemon included.
    let no_ipvs = opts.checks.as_ref().is_some_and(|c| !c.write_table);
    let sync = if config.global.lvs.sync_daemon.is_some() && !no_ipvs {
        let (tx, rx) = mpsc::unbounded_channel();
        vrrp_opts.transitions = Some(tx);
        let cfg = config.clone();
        Some(tokio::spawn(
            async move { sync_daemon::follow(&cfg, rx).await },
        ))
    } else {
        None
    };
    let (vrrp_tx, vrrp_rx) = mpsc::channel(4);
    let (ready_tx, mut ready_rx) = tokio::sync::oneshot::channel();
    let mut vrrp = spawn_vrrp(config, vrrp_opts, vrrp_rx, ready_tx)?;
    let mut ready_pending = true;
    let result = loop {
        tokio::select! {
            r = &mut vrrp => break r,
            // A oneshot must not be polled again once it has completed.
            r = &mut ready_rx, if ready_pending => {
                ready_pending = false;
                if r.is_err() {
                    continue;
                }
                tracing::info!("ipvsdir ready");
                notify(&[NotifyState::Ready]);
            }
            _ = term.recv() => break stop(&vrrp_tx, &mut vrrp).await,
            _ = int.recv() => break stop(&vrrp_tx, &mut vrrp).await,
            _ = hup.recv() => {
                tracing::info!("Reloading {}", opts.config_path.display());
                notify(&[NotifyState::Reloading, monotonic()]);
                if let Some(new) = reload_config(&opts) {
                    if checks.is_some() {
                        let _ = checks_tx.send(new.clone()).await;
                    }
                    let _ = vrrp_tx.send(Control::Reload(Box::new(new))).await;
                }
                notify(&[NotifyState::Ready]);
            }
            _ = usr1.recv() => {
                let v = opts.vrrp.status_file.as_deref().and_then(crate::vrrp::status::read);
                let h = health_file.as_deref().and_then(super::status::read);
                dump::write_data(v.as_ref(), h.as_ref());
            }
            _ = usr2.recv() => {
                let v = opts.vrrp.status_file.as_deref().and_then(crate::vrrp::status::read);
                dump::write_stats(v.as_ref());
            }
        }
    };
    notify(&[NotifyState::Stopping]);
    let _ = std::fs::remove_file(&opts.control_socket);
    // The driver is gone, and with it the transitions' sender: the sync daemon stops.
    if let Some(s) = sync {
        let _ = s.await;
    }
    if let Some(c) = checks {
        match c.await {
            Ok(Err(e)) => tracing::error!("{e}"),
            Err(e) => tracing::error!("checkers: {e}"),
            Ok(Ok(())) => {}
        }
    }
    result?.map_err(Error::from)
}

type VrrpResult = tokio::sync::oneshot::Receiver<Result<(), driver::Error>>;

/// VRRP runs on a thread of its own with a single-threaded runtime: no
/// amount of checker work can delay an advert or a takeover.
fn spawn_vrrp(
    config: Config,
    opts: driver::Options,
    control: mpsc::Receiver<Control>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<VrrpResult, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("vrrp".into())
        .spawn(move || {
            raise_priority(&config.global.vrrp);
            let result = match runtime() {
                Ok(rt) => rt.block_on(driver::run(config, opts, control, Some(ready))),
                Err(e) => Err(driver::Error::Io(e)),
            };
            let _ = tx.send(result);
        })
        .map_err(Error::Thread)?;
    Ok(rx)
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

async fn stop(
    tx: &mpsc::Sender<Control>,
    vrrp: &mut VrrpResult,
) -> Result<Result<(), driver::Error>, tokio::sync::oneshot::error::RecvError> {
    let _ = tx.send(Control::Stop).await;
    vrrp.await
}
