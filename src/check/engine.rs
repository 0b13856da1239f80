//! The drivers of the checkers: TCP_CHECK and plain HTTP_GET probes on
//! the checker thread's event loop ([`super::poller`]), every other probe
//! a lightweight task of its own (no thread or process per check, except
//! MISC_CHECK's child); each runs its pure [`CheckerState`] machine, and
//! every driver settles a result the same way ([`settle`]).
//!
//! What a probe costs besides its I/O is kept small: the task publishes its
//! state in its slot of a shared [`Board`] (an uncontended lock) and tells
//! the caller over the channel only when the checker went up or down or its
//! dynamic weight changed, not after every probe; whoever wants the latest
//! reasons reads the board (and [`Board::take_news`] says whether anything a
//! report shows has changed). A task's schedule uses one timer, reset for
//! each probe.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::health::{ProbeId, ProbePlan};
use super::poller::{self, exchange::Polled};
use super::prepared::Prepared;
use super::probe::ProbeContext;
use super::state::{CheckerState, Millis};
use crate::FastMap;
use crate::config::model::{CheckCommon, FileCheck};

/// What a probe task reports: a change that matters to the IPVS table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeUpdate {
    pub id: ProbeId,
    /// Some(up) when this result changed the checker's state.
    pub changed: Option<bool>,
    /// The misc_dynamic weight changed (with or without a state change).
    pub weight_changed: bool,
}

/// The engine's clock: milliseconds since it started.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now(&self) -> Millis {
        self.0.elapsed().as_millis() as Millis
    }

    fn at(&self, t: Instant) -> Millis {
        t.saturating_duration_since(self.0).as_millis() as Millis
    }
}

/// Every probe's current state, written by its task after each probe.
#[derive(Debug)]
pub struct Board {
    slots: Box<[Mutex<CheckerState>]>,
    /// Something a report shows changed since the last `take_news`.
    news: AtomicBool,
    /// Shared by the boards of successive plans (reloads), so that the
    /// counters the metrics export only grow.
    pub stats: Arc<Stats>,
}

impl Board {
    /// Every probe of `plan` in its initial state (up, or down with alpha).
    pub fn new(plan: &ProbePlan, now: Millis) -> Arc<Board> {
        Arc::new(Board {
            slots: plan
                .probes
                .iter()
                .map(|c| Mutex::new(CheckerState::new(&c.common, now)))
                .collect(),
            news: AtomicBool::new(false),
            stats: Arc::default(),
        })
    }

    /// A board that carries on from these states (a reload keeping probes),
    /// counting into `stats`.
    pub fn from_states(states: Vec<CheckerState>, stats: Arc<Stats>) -> Arc<Board> {
        Arc::new(Board {
            slots: states.into_iter().map(Mutex::new).collect(),
            news: AtomicBool::new(true),
            stats,
        })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slot(&self, id: ProbeId) -> MutexGuard<'_, CheckerState> {
        // A task that panicked mid-update leaves a whole state behind.
        self.slots[id].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of probe `id` now.
    pub fn state(&self, id: ProbeId) -> CheckerState {
        self.slot(id).clone()
    }

    /// Every probe's state now.
    pub fn snapshot(&self) -> Vec<CheckerState> {
        (0..self.slots.len()).map(|id| self.state(id)).collect()
    }

    /// Whether a state, weight or last reason changed since the last call
    /// (or since the board was made: a first result is news).
    pub fn take_news(&self) -> bool {
        self.news.swap(false, Ordering::Relaxed)
    }
}

/// Sub-buckets per power of two in the lateness histogram (12% wide).
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = 40 * SUB as usize;

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros();
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    (((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize).min(BUCKETS - 1)
}

/// The largest value (microseconds) that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = i % SUB;
    ((SUB + sub + 1) << (exp - SUB_BITS)) - 1
}

/// Upper bounds (seconds) of the probe-duration histogram's buckets (the
/// last, +Inf, is implied).
pub const DURATION_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters of every probe made: how many, how many failed, how late each
/// started compared with its schedule (a histogram, microseconds) and how
/// long each took (a histogram over [`DURATION_BOUNDS`]).
#[derive(Debug)]
pub struct Stats {
    probes: AtomicU64,
    failed: AtomicU64,
    local: AtomicU64,
    lateness: Box<[AtomicU64]>,
    /// Per bucket (not cumulative), the last one for longer probes.
    durations: [AtomicU64; DURATION_BOUNDS.len() + 1],
    duration_sum_us: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            probes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            local: AtomicU64::new(0),
            lateness: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            durations: Default::default(),
            duration_sum_us: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// One probe's outcome: whether it passed, how late it started, how long it took.
    pub fn record(&self, ok: bool, lateness: Duration, took: Duration) {
        self.probes.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let us = lateness.as_micros().min(u64::MAX as u128) as u64;
        self.lateness[bucket(us)].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let b = DURATION_BOUNDS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(DURATION_BOUNDS.len());
        self.durations[b].fetch_add(1, Ordering::Relaxed);
        let took_us = took.as_micros().min(u64::MAX as u128) as u64;
        self.duration_sum_us.fetch_add(took_us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            probes: self.probes.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            local: self.local.load(Ordering::Relaxed),
            lateness: self
                .lateness
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            durations: self
                .durations
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            duration_sum: Duration::from_micros(self.duration_sum_us.load(Ordering::Relaxed)),
        }
    }
}

/// The counters at one moment; subtract two to get a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub probes: u64,
    pub failed: u64,
    /// Probes that could not start for a reason on this host (no verdict;
    /// not in `probes`).
    pub local: u64,
    lateness: Vec<u64>,
    /// Probes per duration bucket ([`DURATION_BOUNDS`], then longer).
    pub durations: Vec<u64>,
    pub duration_sum: Duration,
}

impl StatsSnapshot {
    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            probes: self.probes - earlier.probes,
            failed: self.failed - earlier.failed,
            local: self.local - earlier.local,
            lateness: self
                .lateness
                .iter()
                .zip(&earlier.lateness)
                .map(|(a, b)| a - b)
                .collect(),
            durations: self
                .durations
                .iter()
                .zip(&earlier.durations)
                .map(|(a, b)| a - b)
                .collect(),
            duration_sum: self.duration_sum.saturating_sub(earlier.duration_sum),
        }
    }

    /// The lateness below which a fraction `q` of the probes started (to
    /// the histogram's 12% resolution; `q` 1.0 is the largest).
    pub fn lateness(&self, q: f64) -> Duration {
        let total: u64 = self.lateness.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.lateness.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(bucket_high(i));
            }
        }
        Duration::ZERO
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

struct Task {
    id: ProbeId,
    probe: Prepared,
    common: CheckCommon,
    ctx: Arc<ProbeContext>,
    clock: Clock,
    board: Arc<Board>,
    tx: mpsc::Sender<ProbeUpdate>,
    /// FILE_CHECK: the tracked file's value, from its watch.
    file: Option<tokio::sync::watch::Receiver<i64>>,
}

/// What a result's step means beyond the board: the board's news, and
/// the update the caller hears of when the checker changed or gave its
/// first result.
fn update_of(board: &Board, id: ProbeId, step: &super::state::Step) -> Option<ProbeUpdate> {
    if step.news {
        board.news.store(true, Ordering::Relaxed);
    }
    (step.changed.is_some() || step.weight_changed || step.first).then_some(ProbeUpdate {
        id,
        changed: step.changed,
        weight_changed: step.weight_changed,
    })
}

/// Tells the caller of a result's step; false when the caller is gone.
async fn publish(t: &Task, step: super::state::Step) -> bool {
    if let Some(update) = update_of(&t.board, t.id, &step) {
        return t.tx.send(update).await.is_ok();
    }
    !t.tx.is_closed()
}

/// One watch per tracked file, shared by every FILE_CHECK of that file
/// (one inotify instance each: the system allows 128 per user by default).
/// The task ends when no FILE_CHECK listens any more.
fn watch_file(f: &FileCheck) -> (tokio::sync::watch::Receiver<i64>, JoinHandle<()>) {
    let (mut watch, error) = crate::track_file::Watch::open(&f.name, &f.path);
    if let Some(e) = error {
        tracing::warn!(
            "{e}; FILE_CHECK polls {} every {}s",
            f.path.display(),
            crate::track_file::POLL.as_secs()
        );
    }
    tracing::info!(
        "track_file {}: {} holds {} (FILE_CHECK)",
        f.name,
        f.path.display(),
        watch.value()
    );
    let (tx, rx) = tokio::sync::watch::channel(watch.value());
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                v = watch.changed() => {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    (rx, task)
}

/// One value of a FILE_CHECK's tracked file, judged into probe `id`'s state.
fn file_result(
    board: &Board,
    id: ProbeId,
    common: &CheckCommon,
    f: &FileCheck,
    value: i64,
    now: Millis,
) -> (bool, super::state::Step) {
    let result = super::file::judge(value, f);
    let ok = result.ok;
    let step = board
        .slot(id)
        .on_result(common, ok, result.reason, result.weight, now);
    (ok, step)
}

/// Every FILE_CHECK of `plan` judged on its file's value now, into `board`;
/// the probes judged. The first table (at start, after a reload) is built
/// with them, as keepalived reads the files before it sets up IPVS; the
/// probes' own tasks then follow the files.
pub fn judge_files_now(plan: &ProbePlan, board: &Board, now: Millis) -> Vec<ProbeId> {
    plan.probes
        .iter()
        .enumerate()
        .filter_map(|(id, c)| {
            let crate::config::model::CheckKind::File(f) = &c.kind else {
                return None;
            };
            let value = crate::track_file::read_value(&f.name, &f.path);
            file_result(board, id, &c.common, f, value, now);
            Some(id)
        })
        .collect()
}

/// FILE_CHECK: no schedule; each new value of the tracked file is a
/// result, judged at once (no retry).
async fn file_loop(t: &Task, f: &FileCheck, mut file: tokio::sync::watch::Receiver<i64>) {
    let mut value = *file.borrow_and_update();
    loop {
        tracing::debug!(
            "track_file {}: {} holds {value} (FILE_CHECK {}:{})",
            f.name,
            f.path.display(),
            t.common.connect_ip,
            t.common.connect_port
        );
        // Each value counts once, here (judge_files_now does not count).
        let (ok, step) = file_result(&t.board, t.id, &t.common, f, value, t.clock.now());
        t.board.stats.record(ok, Duration::ZERO, Duration::ZERO);
        if !publish(t, step).await {
            return;
        }
        tokio::select! {
            r = file.changed() => {
                if r.is_err() {
                    return;
                }
                value = *file.borrow_and_update();
            }
            () = t.tx.closed() => return,
        }
    }
}

async fn probe_loop(t: Task) {
    if let (Prepared::File(f), Some(file)) = (&t.probe, &t.file) {
        let (f, file) = ((**f).clone(), file.clone());
        return file_loop(&t, &f, file).await;
    }
    let mut next = first_probe(t.id, &t.common, t.clock);
    let mut timer = pin!(tokio::time::sleep_until(next.wake.into()));
    loop {
        timer.as_mut().await;
        let started = Instant::now();
        let result = t.probe.run(&t.ctx).await;
        let (update, after) = settle(&t.board, t.clock, t.id, &t.common, result, next, started);
        if let Some(update) = update
            && t.tx.send(update).await.is_err()
        {
            return;
        }
        if t.tx.is_closed() {
            return;
        }
        next = after;
        timer.as_mut().reset(next.wake.into());
    }
}

/// When a probe is due (its schedule) and when its thread wakes for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Next {
    pub due: Instant,
    pub wake: Instant,
}

/// A probe's first start: after its share of the warmup.
pub(super) fn first_probe(id: ProbeId, common: &CheckCommon, clock: Clock) -> Next {
    let due = Instant::now() + warmup_delay(id, common.warmup.0);
    Next {
        due,
        wake: coalesced(due, clock.0, common.delay_loop.0),
    }
}

/// A probe that woke at `was.wake` and ran from `started` until now gave
/// `result`: into the board and the counters it goes. Returns the update
/// the caller should hear of (a change, a first result) and the next start.
/// Every driver of probes (the tasks here, the poller) settles this way.
pub(super) fn settle(
    board: &Board,
    clock: Clock,
    id: ProbeId,
    common: &CheckCommon,
    result: super::probe::ProbeResult,
    was: Next,
    started: Instant,
) -> (Option<ProbeUpdate>, Next) {
    let end = Instant::now();
    if result.local {
        // This host is short of something: the real server's state
        // stays, and the probe backs off until the host recovers.
        board.stats.local.fetch_add(1, Ordering::Relaxed);
        LOCAL_PROBLEMS.note(&result.reason, end);
        let backoff = board.slot(id).on_local_problem(common);
        let due = end + backoff;
        let wake = coalesced(due, clock.0, backoff);
        return (None, Next { due, wake });
    }
    let step = board.slot(id).on_result(
        common,
        result.ok,
        result.reason,
        result.weight,
        clock.at(end),
    );
    board.stats.record(
        result.ok,
        started.saturating_duration_since(was.wake),
        end - started,
    );
    let update = update_of(board, id, &step);
    // The next probe is due `step.next` after this one started, so a slow
    // probe does not push every later one back; when even that is past
    // (the machine is overloaded), wait a full interval from now, as
    // keepalived does, instead of piling probes onto a busy machine.
    let mut due = was.due + step.next;
    if due < end {
        due = end + step.next;
    }
    let wake = coalesced(due, clock.0, step.next);
    (update, Next { due, wake })
}

/// The most a probe's start is put off to share a wake-up.
const MAX_SLACK: Duration = Duration::from_millis(10);

/// When to wake for a probe due at `due`. Probes due within a few
/// milliseconds of each other start on one wake-up of this thread (and
/// reach their servers together), as the kernel's timer slack does: the
/// start is put off to the next multiple of a slot (1% of the probe's
/// `interval`, at most [`MAX_SLACK`]) counted from `epoch`. Only the
/// wake-up moves; the schedule (`due`) stays exact, so nothing drifts.
/// Thousands of probes a second otherwise wake the thread once each.
fn coalesced(due: Instant, epoch: Instant, interval: Duration) -> Instant {
    let slot = (interval / 100).min(MAX_SLACK).as_micros() as u64;
    // Under a millisecond the runtime's timer rounds the same way already.
    if slot <= 1_000 {
        return due;
    }
    let since = due.saturating_duration_since(epoch).as_micros() as u64;
    epoch + Duration::from_micros(since.div_ceil(slot) * slot)
}

/// Local problems (out of descriptors or buffers, a bindto address that is
/// not here) are said once, not once per real server and probe: a reason
/// is logged again only after it was not seen for a while.
struct LocalProblems(Mutex<Option<FastMap<String, Instant>>>);

static LOCAL_PROBLEMS: LocalProblems = LocalProblems(Mutex::new(None));

/// A local problem unseen this long is news again.
const LOCAL_QUIET: Duration = Duration::from_secs(60);

impl LocalProblems {
    fn note(&self, reason: &str, now: Instant) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let seen = seen.get_or_insert_with(FastMap::default);
        let news = match seen.get_mut(reason) {
            Some(last) => {
                let quiet = now.saturating_duration_since(*last) >= LOCAL_QUIET;
                *last = now;
                quiet
            }
            None => {
                if seen.len() >= 256 {
                    seen.clear();
                }
                seen.insert(reason.to_string(), now);
                true
            }
        };
        if news {
            tracing::error!(
                "local problem, not the real servers': {reason}; their state is kept and \
                 the probes that hit it back off until it is solved"
            );
        }
    }
}

/// Starts the plan's probes: TCP_CHECK and plain HTTP_GET on the checker
/// thread ([`poller`]), every other one as a task of its own. Each keeps
/// its state in `board` and sends an update when its checker changes.
/// Dropping the receiver stops them after their next probe; abort the
/// handles to stop them at once (one of them holds the checker thread).
pub fn spawn(
    plan: &ProbePlan,
    ctx: Arc<ProbeContext>,
    clock: Clock,
    board: Arc<Board>,
    tx: mpsc::Sender<ProbeUpdate>,
) -> Vec<JoinHandle<()>> {
    assert_eq!(board.len(), plan.probes.len(), "a board for this plan");
    let task = |id, probe, common, file| {
        tokio::spawn(probe_loop(Task {
            id,
            probe,
            common,
            ctx: ctx.clone(),
            clock,
            board: board.clone(),
            tx: tx.clone(),
            file,
        }))
    };
    let mut tasks = Vec::new();
    let mut files: FastMap<std::path::PathBuf, tokio::sync::watch::Receiver<i64>> =
        FastMap::default();
    let mut polled = Vec::new();
    for (id, c) in plan.probes.iter().enumerate() {
        let file = match &c.kind {
            crate::config::model::CheckKind::File(f) => Some(
                files
                    .entry(f.path.clone())
                    .or_insert_with(|| {
                        let (rx, watch) = watch_file(f);
                        tasks.push(watch);
                        rx
                    })
                    .clone(),
            ),
            _ => None,
        };
        match Polled::take(Prepared::new(c)) {
            Ok(probe) => polled.push(poller::Probe {
                id,
                probe,
                common: c.common.clone(),
            }),
            Err(probe) => tasks.push(task(id, probe, c.common.clone(), file)),
        }
    }
    if polled.is_empty() {
        return tasks;
    }
    match poller::start(polled, clock, board.clone(), tx.clone()) {
        // The thread lives as long as this task: aborting it stops them.
        Ok(stop) => tasks.push(tokio::spawn(async move {
            let _stop = stop;
            std::future::pending::<()>().await
        })),
        Err((e, probes)) => {
            tracing::error!(
                "cannot start the checker thread: {e}; its {} TCP_CHECK/HTTP_GET probes run \
                 on the main thread instead",
                probes.len()
            );
            for p in probes {
                tasks.push(task(p.id, p.probe.into_prepared(), p.common, None));
            }
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_due_close_together_share_a_wake_up_and_none_runs_early() {
        let epoch = Instant::now();
        let at = |ms: u64| epoch + Duration::from_millis(ms);
        let second = Duration::from_secs(1);
        // Within one 10 ms slot: the same wake-up, at the slot's end.
        assert_eq!(coalesced(at(1001), epoch, second), at(1010));
        assert_eq!(coalesced(at(1009), epoch, second), at(1010));
        assert_eq!(coalesced(at(1010), epoch, second), at(1010));
        assert_eq!(coalesced(at(1011), epoch, second), at(1020));
        // Never early, never more than the slot late.
        for us in (0..50_000u64).step_by(137) {
            let due = epoch + Duration::from_micros(us);
            let wake = coalesced(due, epoch, second);
            assert!(wake >= due && wake - due < MAX_SLACK, "{us}");
        }
        // A short interval gets a short slot (1%), and none under 100 ms.
        assert_eq!(
            coalesced(at(1001), epoch, Duration::from_millis(500)),
            at(1005)
        );
        let due = epoch + Duration::from_micros(1_234_567);
        assert_eq!(coalesced(due, epoch, Duration::from_millis(100)), due);
    }

    #[test]
    fn lateness_buckets_are_ordered_and_tight() {
        let mut last = 0;
        for us in (0..100_000u64).chain([1 << 20, 1 << 30, 1 << 38]) {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            last = b;
            assert!(bucket_high(b) >= us, "{us} -> {b} -> {}", bucket_high(b));
            assert!(
                bucket_high(b) as f64 <= us as f64 * 1.125 + 1.0,
                "{us} -> {}",
                bucket_high(b)
            );
        }
    }

    #[test]
    fn quantiles_of_a_window() {
        let s = Stats::default();
        let before = s.snapshot();
        for ms in 1..=100 {
            s.record(
                ms != 100,
                Duration::from_millis(ms),
                Duration::from_millis(ms),
            );
        }
        let w = s.snapshot().since(&before);
        assert_eq!((w.probes, w.failed), (100, 1));
        let p50 = w.lateness(0.5).as_secs_f64();
        assert!((0.050..0.057).contains(&p50), "{p50}");
        let max = w.lateness(1.0).as_secs_f64();
        assert!((0.100..0.113).contains(&max), "{max}");
    }
}
