//! The checkers driving the IPVS table (keepalived's `--check` process):
//! probe results -> real-server health -> desired table -> kernel, with the
//! notify and quorum scripts, drift repair, and a clean stop.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{names, status};
use crate::check::engine::{self, Clock, ProbeUpdate};
use crate::check::health::{HealthTable, ProbePlan, RsKey};
use crate::check::probe::ProbeContext;
use crate::config::model::{Config, Script};
use crate::lvs::desired::{QuorumMemory, desired};
use crate::lvs::kernel::{Ipvs, KernelError};
use crate::lvs::owned;
use crate::lvs::reconciler::Reconciler;

#[derive(Debug, Clone)]
pub struct Options {
    /// Remove our IPVS services at stop (keepalived's default; off with --dont-release-ipvs).
    pub release_on_stop: bool,
    /// Where the services ipvsdir created are remembered.
    pub owned_state: PathBuf,
    /// How often the kernel table is re-read to repair drift.
    pub drift_interval: Duration,
    /// Where the checkers' report for `--dump --health` is written.
    pub health_state: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Health of every real server, for transition detection.
fn snapshot(config: &Config, table: &HealthTable) -> Vec<(RsKey, bool)> {
    config
        .virtual_servers
        .iter()
        .flat_map(|vs| {
            vs.real_servers.iter().map(move |rs| {
                let key = RsKey::of(vs, rs);
                let alive = table.rs_health(&key).alive;
                (key, alive)
            })
        })
        .collect()
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

struct Driver {
    config: Config,
    table: HealthTable,
    quorum: QuorumMemory,
    reconciler: Reconciler,
    ctx: Arc<ProbeContext>,
    options: Options,
    started: std::time::SystemTime,
    /// The owned set as last written to the state file.
    saved_owned: Option<BTreeSet<ipvs_sys::ServiceKey>>,
}

impl Driver {
    /// Logs and notifies real servers whose health changed, then applies the new table.
    fn on_change(&mut self, before: &[(RsKey, bool)]) {
        let after = snapshot(&self.config, &self.table);
        for ((key, was), (_, now)) in before.iter().zip(after.iter()) {
            if was == now {
                continue;
            }
            let Some(vs) = self
                .config
                .virtual_servers
                .iter()
                .find(|v| v.key == key.vs && v.protocol == key.protocol)
            else {
                continue;
            };
            let Some(rs) = vs
                .real_servers
                .iter()
                .find(|r| r.addr == key.addr && r.port == key.port)
            else {
                continue;
            };
            let (rsn, vsn) = (names::real_server(vs, rs), names::virtual_server(vs));
            if *now {
                tracing::info!("Adding service {rsn} to VS {vsn}");
                if let Some(s) = &rs.notify_up {
                    run_script(&self.ctx, s, format!("notify_up for {rsn}"));
                }
            } else {
                let why = self.table.down_reasons(key).join("; ");
                if rs.inhibit_on_failure {
                    tracing::warn!("Disabling service {rsn} of VS {vsn} (weight 0): {why}");
                } else {
                    tracing::warn!("Removing service {rsn} from VS {vsn}: {why}");
                }
                if let Some(s) = &rs.notify_down {
                    run_script(&self.ctx, s, format!("notify_down for {rsn}"));
                }
            }
        }
        self.apply();
    }

    /// Recomputes the desired table (quorum transitions run their scripts) and reconciles.
    fn apply(&mut self) {
        let before = self.quorum.clone();
        let want = desired(&self.config, &self.table, &mut self.quorum);
        for vs in &self.config.virtual_servers {
            let (was, now) = (before.held(vs), self.quorum.held(vs));
            if was == now || now.is_none() {
                continue;
            }
            let vsn = names::virtual_server(vs);
            if now == Some(true) {
                tracing::info!("Gained quorum {} for VS {vsn}", vs.quorum);
                if let Some(s) = &vs.quorum_up {
                    run_script(&self.ctx, s, format!("quorum_up for VS {vsn}"));
                }
            } else {
                tracing::warn!("Lost quorum {} for VS {vsn}", vs.quorum);
                if let Some(s) = &vs.quorum_down {
                    run_script(&self.ctx, s, format!("quorum_down for VS {vsn}"));
                }
            }
        }
        match self.reconciler.apply(&want) {
            Ok(_) => {}
            Err(e) => tracing::error!("IPVS: {e}"),
        }
        if self.saved_owned.as_ref() != Some(self.reconciler.owned()) {
            match owned::save(&self.options.owned_state, self.reconciler.owned()) {
                Ok(()) => self.saved_owned = Some(self.reconciler.owned().clone()),
                Err(e) => {
                    tracing::warn!("cannot write {}: {e}", self.options.owned_state.display())
                }
            }
        }
    }

    fn write_status(&self) {
        let r = status::report(&self.config, &self.table, self.started);
        if let Err(e) = status::write(&self.options.health_state, &r) {
            tracing::warn!("cannot write {}: {e}", self.options.health_state.display());
        }
    }

    /// omega: at shutdown, run the down notifiers of servers that are up.
    fn omega(&self) {
        for vs in self.config.virtual_servers.iter().filter(|v| v.omega) {
            for rs in &vs.real_servers {
                if self.table.rs_health(&RsKey::of(vs, rs)).alive
                    && let Some(s) = &rs.notify_down
                {
                    run_script(
                        &self.ctx,
                        s,
                        format!("notify_down (omega) for {}", names::real_server(vs, rs)),
                    );
                }
            }
            if self.quorum.held(vs) == Some(true)
                && let Some(s) = &vs.quorum_down
            {
                run_script(
                    &self.ctx,
                    s,
                    format!("quorum_down (omega) for VS {}", names::virtual_server(vs)),
                );
            }
        }
    }
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(config: Config, options: Options) -> Result<(), Error> {
    let clock = Clock(Instant::now());
    let plan = ProbePlan::new(&config);
    let deduped = plan.users.iter().sum::<usize>() - plan.probes.len();
    tracing::info!(
        "Starting healthcheckers: {} virtual servers, {} probes ({} identical checkers share a probe)",
        config.virtual_servers.len(),
        plan.probes.len(),
        deduped
    );
    let ctx = Arc::new(ProbeContext::from_config(&config));
    let ipvs = Ipvs::open()?;
    let owned: BTreeSet<_> = owned::load(&options.owned_state).unwrap_or_default();
    let mut driver = Driver {
        table: HealthTable::new(plan, clock.now()),
        quorum: QuorumMemory::default(),
        reconciler: Reconciler::new(ipvs, owned),
        ctx: ctx.clone(),
        options: options.clone(),
        started: std::time::SystemTime::now(),
        saved_owned: None,
        config,
    };
    driver.apply();
    driver.write_status();

    let (tx, mut rx) = mpsc::channel::<ProbeUpdate>(4096);
    let tasks = engine::spawn(&driver.table.plan, ctx, clock, tx);
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let mut drift = tokio::time::interval(options.drift_interval);
    drift.tick().await;
    // The report is rewritten at most once a second when results came in.
    let mut report = tokio::time::interval(Duration::from_secs(1));
    let mut report_due = false;
    loop {
        tokio::select! {
            Some(first) = rx.recv() => {
                // Take everything already queued, then act once. The health
                // before is only needed (and taken) when something changed.
                let mut before = None;
                let mut next = Some(first);
                while let Some(u) = next {
                    if u.changed.is_some() && before.is_none() {
                        before = Some(snapshot(&driver.config, &driver.table));
                    }
                    driver.table.states[u.id] = u.state;
                    next = rx.try_recv().ok();
                }
                if let Some(before) = before {
                    driver.on_change(&before);
                }
                // The report is rewritten at most once a second, changes or not.
                report_due = true;
            }
            _ = report.tick(), if report_due => {
                report_due = false;
                driver.write_status();
            }
            _ = drift.tick() => {
                let want = desired(&driver.config, &driver.table, &mut driver.quorum.clone());
                if let Err(e) = driver.reconciler.tick(&want) {
                    tracing::error!("IPVS: {e}");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("Stopping healthcheckers");
    for t in &tasks {
        t.abort();
    }
    driver.omega();
    if options.release_on_stop {
        let empty = crate::lvs::table::Table::default();
        match driver.reconciler.tick(&empty) {
            Ok(o) => tracing::info!("Removed {} IPVS services of ours", o.applied.len()),
            Err(e) => tracing::error!("IPVS: {e}"),
        }
        let _ = owned::save(&options.owned_state, &BTreeSet::new());
    }
    let _ = std::fs::remove_file(&options.health_state);
    Ok(())
}
