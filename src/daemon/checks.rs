//! The checkers driving the IPVS table (keepalived's `--check` process):
//! probe results -> real-server health -> desired table -> kernel, with the
//! notify and quorum scripts, drift repair, and a clean stop.

use std::collections::{BTreeSet, HashMap};
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
use crate::lvs::table::{DestKey, Table};
use ipvs_sys::{Dest, ServiceKey};

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
    /// A real server removed by a reload stays with weight 0 this long
    /// (its connections drain) before it is deleted.
    pub drain_grace: Duration,
    /// Keep the kernel's IPVS table in line with health (off with
    /// --no-ipvs: the checkers only report, beside a director that owns the
    /// table or on a host without IPVS).
    pub write_table: bool,
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

/// While changes keep coming (a start with `alpha`, a switch or a rack going
/// down), table updates are spaced: each recomputes and diffs the whole
/// table, so one per change would cost O(servers) per change. An update
/// after a quiet spell goes out at once; the next waits MIN_APPLY_GAP, or
/// longer when the whole-table work is slow (APPLY_GAP_FACTOR times the
/// computation of the desired table, which with the diff and the copy the
/// reconciler keeps is about half that work: at most a fifth of the time
/// goes there), never more than MAX_APPLY_GAP. The kernel operations
/// themselves are not counted: they are one per change, as keepalived's.
/// The logs and notify scripts of each change are not held back.
const MIN_APPLY_GAP: Duration = Duration::from_millis(50);
const MAX_APPLY_GAP: Duration = Duration::from_millis(500);
const APPLY_GAP_FACTOR: u32 = 8;

struct Driver {
    config: Config,
    clock: Clock,
    /// The probe tasks of the current plan.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Real servers a reload removed, kept at weight 0 until the deadline.
    draining: HashMap<(ServiceKey, DestKey), (Dest, Instant)>,
    /// The probes' states as of the last update acted on.
    table: HealthTable,
    /// Each real server's health (plan.servers order) as last acted on.
    alive: Vec<bool>,
    board: Arc<Board>,
    quorum: QuorumMemory,
    /// None with --no-ipvs: the kernel table is neither read nor written.
    reconciler: Option<Reconciler>,
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
        let mut want = desired(&self.config, &self.table, &mut self.quorum);
        let computed = start.elapsed();
        self.add_draining(&mut want);
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
        if let Some(reconciler) = &mut self.reconciler {
            if let Err(e) = reconciler.apply(&want) {
                tracing::error!("IPVS: {e}");
            }
            if self.saved_owned.as_ref() != Some(reconciler.owned()) {
                match owned::save(&self.options.owned_state, reconciler.owned()) {
                    Ok(()) => self.saved_owned = Some(reconciler.owned().clone()),
                    Err(e) => {
                        tracing::warn!("cannot write {}: {e}", self.options.owned_state.display())
                    }
                }
            }
        }
        let gap = computed
            .saturating_mul(APPLY_GAP_FACTOR)
            .clamp(MIN_APPLY_GAP, MAX_APPLY_GAP);
        self.hold_until = Instant::now() + gap;
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

    /// Drained real servers (still in their grace period) stand in the
    /// table with weight 0; expired ones are left out, so they are deleted.
    fn add_draining(&mut self, want: &mut Table) {
        let now = Instant::now();
        self.draining.retain(|_, (_, until)| *until > now);
        for ((svc, key), (dest, _)) in &self.draining {
            if let Some(s) = want.services.get_mut(svc) {
                s.dests
                    .entry(*key)
                    .or_insert_with(|| Dest { weight: 0, ..*dest });
            }
        }
    }

    fn next_drain_deadline(&self) -> Option<Instant> {
        self.draining.values().map(|(_, until)| *until).min()
    }

    /// SIGHUP: probes identical to running ones keep their state (no
    /// health change, no IPVS change for their servers); new probes start
    /// fresh; the table changes only where the configuration did (one SET
    /// for a weight); removed real servers drain. Returns the new probes'
    /// update channel.
    fn reload(&mut self, config: Config) -> mpsc::Receiver<ProbeUpdate> {
        let mut old_want = desired(&self.config, &self.table, &mut self.quorum.clone());
        self.add_draining(&mut old_want);
        let plan = Arc::new(ProbePlan::new(&config));
        let old_states = self.board.snapshot();
        let index: HashMap<&crate::config::model::Checker, usize> = self
            .table
            .plan
            .probes
            .iter()
            .enumerate()
            .map(|(i, c)| (c, i))
            .collect();
        let now = self.clock.now();
        let mut kept = 0;
        let states: Vec<_> = plan
            .probes
            .iter()
            .map(|c| match index.get(c) {
                Some(&j) => {
                    kept += 1;
                    old_states[j].clone()
                }
                None => crate::check::state::CheckerState::new(&c.common, now),
            })
            .collect();
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let board = Board::from_states(states.clone());
        self.table = HealthTable {
            plan: plan.clone(),
            states,
        };
        self.alive = plan
            .servers
            .iter()
            .map(|(key, _, _)| self.table.rs_health(key).alive)
            .collect();
        self.ctx = Arc::new(ProbeContext::from_config(&config));
        let started = plan.probes.len() - kept;
        let removed = old_states.len() - kept;
        self.config = config;
        let new_want = desired(&self.config, &self.table, &mut self.quorum.clone());
        let until = Instant::now() + self.options.drain_grace;
        for (svc, s) in &old_want.services {
            let Some(n) = new_want.services.get(svc) else {
                continue;
            };
            for (key, dest) in &s.dests {
                if !n.dests.contains_key(key) && !self.draining.contains_key(&(*svc, *key)) {
                    tracing::info!(
                        "Draining [{}]:{} of {svc} (removed by the reload): weight 0, deleted in {} s",
                        key.0,
                        key.1,
                        self.options.drain_grace.as_secs()
                    );
                    self.draining.insert((*svc, *key), (*dest, until));
                }
            }
        }
        self.board = board.clone();
        let (tx, rx) = mpsc::channel::<ProbeUpdate>(4096);
        self.tasks = engine::spawn(&plan, self.ctx.clone(), self.clock, board, tx);
        tracing::info!(
            "Reloaded healthcheckers: {kept} probes kept, {started} new, {removed} removed"
        );
        self.apply();
        self.write_status();
        rx
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

/// Runs until SIGTERM or SIGINT; each configuration received on `reloads`
/// (already validated) replaces the running one.
pub async fn run(
    config: Config,
    options: Options,
    reloads: mpsc::Receiver<Config>,
) -> Result<(), Error> {
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
    let reconciler = if options.write_table {
        let owned: BTreeSet<_> = owned::load(&options.owned_state).unwrap_or_default();
        Some(Reconciler::new(Ipvs::open()?, owned))
    } else {
        tracing::info!("--no-ipvs: health is reported only, the IPVS table is left alone");
        None
    };
    let table = HealthTable::new(plan.clone(), clock.now());
    let alive = plan
        .servers
        .iter()
        .map(|(key, _, _)| table.rs_health(key).alive)
        .collect();
    let board = Board::new(&plan, clock.now());
    let mut driver = Driver {
        clock,
        tasks: Vec::new(),
        draining: HashMap::new(),
        table,
        alive,
        board: board.clone(),
        quorum: QuorumMemory::default(),
        reconciler,
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
    driver.tasks = engine::spawn(&plan, ctx, clock, board, tx);
    // The loop runs as a task of its own, on the runtime's workers with the
    // probes (not on the thread that waits for it): an update then rarely
    // needs a thread woken.
    let stopped = tokio::spawn(main_loop(driver, rx, reloads, term, int)).await;
    let mut driver = match stopped {
        Ok(d) => d,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    for t in driver.tasks.drain(..) {
        t.abort();
    }
    driver.omega();
    if options.release_on_stop
        && let Some(reconciler) = &mut driver.reconciler
    {
        let empty = crate::lvs::table::Table::default();
        match reconciler.tick(&empty) {
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
    mut reloads: mpsc::Receiver<Config>,
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
            Some(config) = reloads.recv() => rx = driver.reload(config),
            _ = sleep_until_opt(driver.next_drain_deadline()) => driver.apply(),
            _ = report.tick() => {
                if driver.board.take_news() {
                    driver.write_status();
                }
            }
            _ = drift.tick(), if driver.reconciler.is_some() => {
                if driver.pending {
                    driver.apply();
                }
                let mut want = desired(&driver.config, &driver.table, &mut driver.quorum.clone());
                driver.add_draining(&mut want);
                if let Some(reconciler) = &mut driver.reconciler
                    && let Err(e) = reconciler.tick(&want)
                {
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

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
