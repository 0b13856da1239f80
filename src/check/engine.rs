//! The async driver of the checkers: one lightweight task per unique probe
//! (no thread or process per check, except MISC_CHECK's child), each owning
//! its pure [`CheckerState`] and reporting every result to the caller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::health::{ProbeId, ProbePlan};
use super::probe::{ProbeContext, run_probe};
use super::state::{CheckerState, Millis};
use crate::config::model::Checker;

/// What a probe task reports after each probe.
#[derive(Debug, Clone)]
pub struct ProbeUpdate {
    pub id: ProbeId,
    pub state: CheckerState,
    /// Some(up) when this result changed the checker's state.
    pub changed: Option<bool>,
    /// How late the probe started compared with its schedule.
    pub lateness: Duration,
}

/// The engine's clock: milliseconds since it started.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now(&self) -> Millis {
        self.0.elapsed().as_millis() as Millis
    }
}

/// A spread-out initial delay in `[0, warmup]`, different per probe so
/// that thousands of checks do not start in the same instant.
fn warmup_delay(id: ProbeId, warmup: Duration) -> Duration {
    let ms = warmup.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    let spread = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    Duration::from_millis(spread % (ms + 1))
}

async fn probe_loop(
    id: ProbeId,
    checker: Checker,
    ctx: Arc<ProbeContext>,
    clock: Clock,
    tx: mpsc::Sender<ProbeUpdate>,
) {
    let common = &checker.common;
    let mut state = CheckerState::new(common, clock.now());
    let mut due = Instant::now() + warmup_delay(id, common.warmup.0);
    loop {
        tokio::time::sleep_until(due.into()).await;
        let started = Instant::now();
        // Boxed: an idle task then holds only its state, not the largest
        // probe future (HTTP + TLS), which keeps 10,000 tasks small.
        let result = Box::pin(run_probe(&checker, &ctx)).await;
        let step = state.on_result(common, result.ok, result.reason, result.weight, clock.now());
        let update = ProbeUpdate {
            id,
            state: state.clone(),
            changed: step.changed,
            lateness: started.saturating_duration_since(due),
        };
        if tx.send(update).await.is_err() {
            return;
        }
        // The next probe is due `step.next` after this one started, so a
        // slow probe does not push every later one back; when even that is
        // past (the machine is overloaded), wait a full interval from now, as
        // keepalived does, instead of piling probes onto a busy machine.
        due += step.next;
        let now = Instant::now();
        if due < now {
            due = now + step.next;
        }
    }
}

/// Starts one task per probe of the plan. Dropping the receiver stops them
/// at their next report; abort the handles to stop them at once.
pub fn spawn(
    plan: &ProbePlan,
    ctx: Arc<ProbeContext>,
    clock: Clock,
    tx: mpsc::Sender<ProbeUpdate>,
) -> Vec<JoinHandle<()>> {
    plan.probes
        .iter()
        .enumerate()
        .map(|(id, c)| tokio::spawn(probe_loop(id, c.clone(), ctx.clone(), clock, tx.clone())))
        .collect()
}
