//! The long-running daemon: VRRP and (unless VRRP-only) the checkers with
//! the IPVS table in one runtime, driven by signals: SIGTERM/SIGINT stop,
//! SIGHUP reloads (a configuration with errors is refused and the running
//! one carries on).

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::{self, LoadOptions, model::Config};
use crate::vrrp::driver::{self, Control};

use super::{checks, sync_daemon};

#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    pub load: LoadOptions,
    pub vrrp: driver::Options,
    /// None: VRRP only (-P).
    pub checks: Option<checks::Options>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot catch signals: {0}")]
    Signals(std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] driver::Error),
    #[error("VRRP task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Loads and validates the file again; None (after logging why) when it cannot run.
fn reload_config(opts: &Options) -> Option<Config> {
    let loaded = config::load(&opts.config_path, &opts.load);
    for d in loaded.diagnostics.to_string().lines() {
        tracing::warn!("reload: {d}");
    }
    if loaded.config.is_none() {
        tracing::error!(
            "reload: {} has errors; keeping the running configuration",
            opts.config_path.display()
        );
    }
    loaded.config
}

pub async fn run(config: Config, opts: Options) -> Result<(), Error> {
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signals)?;
    let checks = opts
        .checks
        .clone()
        .filter(|_| !config.virtual_servers.is_empty())
        .map(|c| tokio::spawn(checks::run(config.clone(), c)));
    let mut vrrp_opts = opts.vrrp.clone();
    let sync = if config.global.lvs.sync_daemon.is_some() {
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
    let mut vrrp = tokio::spawn(driver::run(config, vrrp_opts, vrrp_rx));
    let result = loop {
        tokio::select! {
            r = &mut vrrp => break r,
            _ = term.recv() => break stop(&vrrp_tx, &mut vrrp).await,
            _ = int.recv() => break stop(&vrrp_tx, &mut vrrp).await,
            _ = hup.recv() => {
                tracing::info!("Reloading {}", opts.config_path.display());
                if let Some(new) = reload_config(&opts) {
                    let _ = vrrp_tx.send(Control::Reload(Box::new(new))).await;
                }
            }
        }
    };
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

async fn stop(
    tx: &mpsc::Sender<Control>,
    vrrp: &mut tokio::task::JoinHandle<Result<(), driver::Error>>,
) -> Result<Result<(), driver::Error>, tokio::task::JoinError> {
    let _ = tx.send(Control::Stop).await;
    vrrp.await
}
