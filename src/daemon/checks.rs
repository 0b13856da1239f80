//! The checkers driving the IPVS table (keepalived's `--check` process):
//! probe results -> real-server health -> desired table -> kernel, with the
//! notify and quorum scripts, drift repair, and a clean stop.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use super::{names, status};
use crate::check::engine::{self, Board, Clock, ProbeUpdate};
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

/// The longest a table update waits while changes keep coming: applies are
/// at least twice their own duration apart (at most a third of the time in
/// building and diffing the table), up to this.
const MAX_APPLY_HOLD: Duration = Duration::from_millis(100);

struct Driver {
    config: Config,
    /// The probes' states as of the last update acted on.
    table: HealthTable,
    /// Each real server's health (plan.servers order) as last acted on.
    alive: Vec<bool>,
    board: Arc<Board>,
    quorum: QuorumMemory,
    reconciler: Reconciler,
    ctx: Arc<ProbeContext>,
    options: Options,
    started: std::time::SystemTime,
    /// The owned set as last written to the state file.
    saved_owned: Option<BTreeSet<ipvs_sys::ServiceKey>>,
    /// A table update is due (health changed since the last apply).
    pending: bool,
    /// No apply before this: coalesces a storm of changes.
    hold_until: Instant,
}

impl Driver {
    /// Takes a batch of updates: copies the changed probes' states, logs and
    /// notifies the real servers whose health changed, marks the table due.
    fn on_updates(&mut self, updates: &[ProbeUpdate]) {
        let plan = self.table.plan.clone();
        let mut touched = Vec::new();
        for u in updates {
            self.table.states[u.id] = self.board.state(u.id);
            touched.extend_from_slice(&plan.servers_of[u.id]);
            self.pending |= u.weight_changed;
        }
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            let (key, v, r) = &plan.servers[i];
            let now = self.table.rs_health(key).alive;
            if now == self.alive[i] {
                continue;
            }
            self.alive[i] = now;
            self.pending = true;
            let vs = &self.config.virtual_servers[*v];
            let rs = &vs.real_servers[*r];
            let (rsn, vsn) = (names::real_server(vs, rs), names::virtual_server(vs));
            if now {
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
    }

    /// Applies a due table update unless it is held back.
    fn apply_if_due(&mut self) {
        if self.pending && Instant::now() >= self.hold_until {
            self.apply();
        }
    }

    /// Recomputes the desired table (quorum transitions run their scripts) and reconciles.
    fn apply(&mut self) {
        let start = Instant::now();
        self.pending = false;
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
        let end = Instant::now();
        self.hold_until = end + (end - start).saturating_mul(2).min(MAX_APPLY_HOLD);
    }

    /// Writes the report from the probes' latest states.
    fn write_status(&self) {
        let view = HealthTable {
            plan: self.table.plan.clone(),
            states: self.board.snapshot(),
        };
        let r = status::report(&self.config, &view, self.started);
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
    let plan = Arc::new(ProbePlan::new(&config));
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
    let table = HealthTable::new(plan.clone(), clock.now());
    let alive = plan
        .servers
        .iter()
        .map(|(key, _, _)| table.rs_health(key).alive)
        .collect();
    let board = Board::new(&plan, clock.now());
    let mut driver = Driver {
        table,
        alive,
        board: board.clone(),
        quorum: QuorumMemory::default(),
        reconciler: Reconciler::new(ipvs, owned),
        ctx: ctx.clone(),
        options: options.clone(),
        started: std::time::SystemTime::now(),
        saved_owned: None,
        pending: false,
        hold_until: Instant::now(),
        config,
    };
    driver.apply();
    driver.write_status();
    let term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;

    let (tx, rx) = mpsc::channel::<ProbeUpdate>(4096);
    let tasks = engine::spawn(&plan, ctx, clock, board, tx);
    // The loop runs as a task of its own, on the runtime's workers with the
    // probes (not on the thread that waits for it): an update then rarely
    // needs a thread woken.
    let stopped = tokio::spawn(main_loop(driver, rx, term, int)).await;
    for t in &tasks {
        t.abort();
    }
    let mut driver = match stopped {
        Ok(d) => d,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
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

async fn main_loop(
    mut driver: Driver,
    mut rx: mpsc::Receiver<ProbeUpdate>,
    mut term: Signal,
    mut int: Signal,
) -> Driver {
    let mut drift = tokio::time::interval(driver.options.drift_interval);
    drift.tick().await;
    // The report is rewritten at most once a second, when something it
    // shows (a state, a reason) changed.
    let mut report = tokio::time::interval(Duration::from_secs(1));
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        let hold = tokio::time::Instant::from_std(driver.hold_until);
        tokio::select! {
            Some(first) = rx.recv() => {
                // Take everything already queued, then act once.
                batch.clear();
                batch.push(first);
                while let Ok(u) = rx.try_recv() {
                    batch.push(u);
                }
                driver.on_updates(&batch);
                driver.apply_if_due();
            }
            _ = tokio::time::sleep_until(hold), if driver.pending => driver.apply(),
            _ = report.tick() => {
                if driver.board.take_news() {
                    driver.write_status();
                }
            }
            _ = drift.tick() => {
                if driver.pending {
                    driver.apply();
                }
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
    driver
}
