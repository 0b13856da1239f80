//! Tracked processes (`vrrp_track_process` blocks): how many processes
//! match each block, followed with the kernel's process events connector,
//! or by scanning /proc once a second where the connector is unavailable
//! (not root, not in the initial network or pid namespace, no
//! CONFIG_PROC_EVENTS). This is the edge; what a process is
//! ([`matcher`]), which pids count ([`table`]) and when the quorum is up
//! ([`quorum`]) are pure cores; what up/down does to an instance is the
//! VRRP node's ([`crate::vrrp::track::process_effect`]).
//!
//! `hidepid`: with /proc mounted `hidepid=1|2` (or `invisible`), another
//! user's processes cannot be read, and with 2 not even listed, unless we
//! have CAP_SYS_PTRACE (root has). ipvsdir as root sees every process; as
//! another user it says so at start and counts what it can see. A process
//! it cannot read is never dropped because of that: an event for a pid
//! whose /proc entries are unreadable changes nothing, and a scan keeps a
//! counted pid that vanished from the listing while it still exists
//! (kill(pid, 0)). So an invisible process cannot make the state flap.

pub mod connector;
pub mod matcher;
pub mod quorum;
pub mod table;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::model::TrackProcess;
use connector::{Connector, ProcEvent, Received};
use quorum::{Cause, Quorum};
use table::Table;

/// How often /proc is scanned without the connector.
pub const SCAN: Duration = Duration::from_secs(1);
/// How long the kernel may take to acknowledge the subscription.
const CONFIRM: Duration = Duration::from_millis(500);
/// Read at most this much of a command line.
const CMDLINE_MAX: u64 = 64 * 1024;

/// Forces the /proc scan (tests; containers where the connector misleads).
pub const SCAN_ENV: &str = "IPVSDIR_TRACK_PROCESS_SCAN";

/// One process as /proc shows it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub ppid: i32,
    pub comm: Vec<u8>,
    pub cmdline: Option<Vec<u8>>,
    pub zombie: bool,
}

/// Reads /proc/PID (`cmdline` only when some tracker needs it); None when
/// it cannot be read (gone, or hidden by hidepid).
pub fn read_proc(pid: i32, cmdline: bool) -> Option<ProcInfo> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let open = stat.iter().position(|&b| b == b'(')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = String::from_utf8_lossy(stat.get(close + 1..)?).into_owned();
    let mut fields = rest.split_ascii_whitespace();
    let zombie = matches!(fields.next(), Some("Z" | "X"));
    let ppid = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let cmdline = if cmdline {
        let mut buf = Vec::new();
        std::fs::File::open(format!("/proc/{pid}/cmdline"))
            .and_then(|f| f.take(CMDLINE_MAX).read_to_end(&mut buf))
            .ok()
            .map(|_| buf)
    } else {
        None
    };
    Some(ProcInfo {
        ppid,
        comm,
        cmdline,
        zombie,
    })
}

/// The trackers (positions in `defs`) that count this process.
pub fn matching(defs: &[TrackProcess], p: &ProcInfo) -> BTreeSet<usize> {
    if p.zombie {
        return BTreeSet::new();
    }
    defs.iter()
        .enumerate()
        .filter(|(_, d)| matcher::matches(d, &p.comm, p.cmdline.as_deref()))
        .map(|(i, _)| i)
        .collect()
}

/// Every visible process: pid -> (parent, trackers counting it).
pub fn scan(defs: &[TrackProcess]) -> HashMap<i32, (i32, BTreeSet<usize>)> {
    let cmdline = defs.iter().any(|d| d.full_command);
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(p) = read_proc(pid, cmdline) {
            out.insert(pid, (p.ppid, matching(defs, &p)));
        }
    }
    out
}

/// Whether `pid` exists, visible or not.
fn alive(pid: i32) -> bool {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}

/// The `hidepid` option of the /proc we read, if any ("1", "2",
/// "invisible", "noaccess", "ptraceable").
pub fn hidepid() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines()
        .rfind(|l| l.split_ascii_whitespace().nth(4) == Some("/proc"))
        .and_then(|l| {
            l.split([' ', ','])
                .find_map(|o| o.strip_prefix("hidepid=").map(str::to_string))
        })
        .filter(|v| v != "0" && v != "off")
}

/// Whether we run in a nested pid namespace (the connector's pids would
/// not be ours).
fn nested_pid_namespace() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|v| v.split_ascii_whitespace().count() > 1)
        })
        .unwrap_or(false)
}

enum Source {
    Connector(Connector),
    Scan(tokio::time::Interval),
}

/// The tracked processes of a configuration and their quorum states.
pub struct Watcher {
    /// The tracked blocks and their indices in the configuration's list.
    defs: Vec<TrackProcess>,
    indices: Vec<usize>,
    table: Table,
    quorums: Vec<Quorum>,
    source: Source,
    start: Instant,
    changes: VecDeque<(usize, bool)>,
    cmdline: bool,
}

impl Watcher {
    /// Subscribes to process events (before the first scan, so that no
    /// change is missed), scans /proc, and decides each quorum.
    pub async fn open(all: &[TrackProcess], used: &[usize]) -> Watcher {
        Self::open_with(all, used, std::env::var_os(SCAN_ENV).is_some()).await
    }

    /// [`Watcher::open`], with `scan_only` forcing the /proc scan.
    pub async fn open_with(all: &[TrackProcess], used: &[usize], scan_only: bool) -> Watcher {
        let indices: Vec<usize> = used.iter().copied().filter(|&i| i < all.len()).collect();
        let defs: Vec<TrackProcess> = indices.iter().map(|&i| all[i].clone()).collect();
        let source = if scan_only {
            tracing::info!(
                "track_process: scanning /proc every {}s (as asked: {SCAN_ENV})",
                SCAN.as_secs()
            );
            Self::scan_source()
        } else if nested_pid_namespace() {
            tracing::info!(
                "track_process: in a nested pid namespace the process connector's pids are not ours; scanning /proc every {}s",
                SCAN.as_secs()
            );
            Self::scan_source()
        } else {
            match Connector::open(CONFIRM).await {
                Ok(c) => Source::Connector(c),
                Err(e) => {
                    tracing::info!(
                        "track_process: process connector unavailable ({e}); scanning /proc every {}s",
                        SCAN.as_secs()
                    );
                    Self::scan_source()
                }
            }
        };
        if let Some(h) = hidepid() {
            if nix::unistd::geteuid().is_root() {
                tracing::info!(
                    "track_process: /proc is mounted hidepid={h}; running as root, every process is seen"
                );
            } else {
                tracing::warn!(
                    "track_process: /proc is mounted hidepid={h} and ipvsdir is not root: other users' processes are not seen and never count"
                );
            }
        }
        let mut table = Table::new(defs.len());
        table.rescan(&scan(&defs), &alive);
        let quorums = defs
            .iter()
            .enumerate()
            .map(|(i, d)| Quorum::new(d, table.count(i)))
            .collect();
        let w = Watcher {
            cmdline: defs.iter().any(|d| d.full_command),
            defs,
            indices,
            table,
            quorums,
            source,
            start: Instant::now(),
            changes: VecDeque::new(),
        };
        for (i, d) in w.defs.iter().enumerate() {
            tracing::info!(
                "VRRP track_process {}: {} matching process(es) {:?}, quorum {}",
                d.name,
                w.table.count(i),
                w.table.pids_of(i),
                if w.quorums[i].up() { "up" } else { "down" }
            );
        }
        w
    }

    fn scan_source() -> Source {
        let mut tick = tokio::time::interval(SCAN);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Source::Scan(tick)
    }

    /// Whether the connector is in use (else the /proc scan).
    pub fn uses_connector(&self) -> bool {
        matches!(self.source, Source::Connector(_))
    }

    /// Each tracked block's quorum state now (index into the configuration's list).
    pub fn states(&self) -> Vec<(usize, bool)> {
        self.indices
            .iter()
            .zip(&self.quorums)
            .map(|(&i, q)| (i, q.up()))
            .collect()
    }

    /// Each tracked block's current count of matching processes.
    pub fn counts(&self) -> Vec<(usize, u32)> {
        self.indices
            .iter()
            .enumerate()
            .map(|(k, &i)| (i, self.table.count(k)))
            .collect()
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn apply(&mut self, changed: Vec<(usize, Cause)>) {
        let now = self.now();
        for (t, cause) in changed {
            let count = self.table.count(t);
            if let Some(q) = self.quorums.get_mut(t) {
                let name = self.defs.get(t).map_or("?", |d| d.name.as_str());
                tracing::debug!("track_process {name}: {count} matching process(es) ({cause:?})");
                if let Some(up) = q.update(now, count, cause) {
                    self.changes.push_back((t, up));
                } else if q.poll_timeout().is_some() {
                    tracing::info!(
                        "VRRP track_process {name}: {count} matching process(es); waiting for the delay"
                    );
                }
            }
        }
    }

    fn on_event(&mut self, ev: ProcEvent) {
        let changed = match ev {
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
            } if child_pid == child_tgid => self.table.fork(parent_tgid, child_tgid),
            ProcEvent::Exec { pid, tgid } | ProcEvent::Comm { pid, tgid } if pid == tgid => {
                let m = read_proc(tgid, self.cmdline).map(|p| matching(&self.defs, &p));
                self.table.found(tgid, m)
            }
            ProcEvent::Exit { pid, tgid } if pid == tgid => self.table.exit(tgid),
            ProcEvent::Ack { .. } => Vec::new(),
            _ => Vec::new(),
        };
        self.apply(changed);
    }

    /// Re-reads /proc off the runtime's thread (the VRRP thread must not
    /// wait for a scan of thousands of processes).
    async fn rescan(&mut self) {
        let defs = self.defs.clone();
        let seen = match tokio::task::spawn_blocking(move || scan(&defs)).await {
            Ok(seen) => seen,
            Err(e) => {
                tracing::warn!("track_process: the /proc scan failed: {e}");
                return;
            }
        };
        let changed = self.table.rescan(&seen, &alive);
        self.apply(changed);
    }

    /// Waits for the next quorum change: (index into the configuration's
    /// list, up). Cancel-safe except during a /proc scan (the driver does
    /// not cancel it: it runs in its own task).
    pub async fn next(&mut self) -> (usize, bool) {
        loop {
            if let Some((t, up)) = self.changes.pop_front() {
                let d = &self.defs[t];
                tracing::info!(
                    "VRRP track_process {}: quorum {} ({} matching process(es), quorum {}..{})",
                    d.name,
                    if up { "gained" } else { "lost" },
                    self.table.count(t),
                    d.quorum,
                    if d.quorum_max == u32::MAX {
                        "".to_string()
                    } else {
                        d.quorum_max.to_string()
                    }
                );
                return (self.indices[t], up);
            }
            let due = self.quorums.iter().filter_map(Quorum::poll_timeout).min();
            let deadline = due.map(|us| self.start + Duration::from_micros(us));
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            enum Got {
                Timer,
                Events(Vec<ProcEvent>),
                Lost,
                Failed(std::io::Error),
                Tick,
            }
            let got = match &mut self.source {
                Source::Connector(c) => tokio::select! {
                    _ = timer => Got::Timer,
                    r = c.recv() => match r {
                        Ok(Received::Events(evs)) => Got::Events(evs),
                        Ok(Received::Lost) => Got::Lost,
                        Err(e) => Got::Failed(e),
                    },
                },
                Source::Scan(tick) => tokio::select! {
                    _ = timer => Got::Timer,
                    _ = tick.tick() => Got::Tick,
                },
            };
            match got {
                Got::Timer => {
                    let now = self.now();
                    for (t, q) in self.quorums.iter_mut().enumerate() {
                        if let Some(up) = q.on_timer(now) {
                            self.changes.push_back((t, up));
                        }
                    }
                }
                Got::Events(evs) => {
                    for ev in evs {
                        self.on_event(ev);
                    }
                }
                Got::Lost => {
                    tracing::warn!(
                        "track_process: the kernel dropped process events; re-reading /proc"
                    );
                    self.rescan().await;
                }
                Got::Failed(e) => {
                    tracing::warn!(
                        "track_process: process connector failed ({e}); scanning /proc every {}s",
                        SCAN.as_secs()
                    );
                    self.source = Self::scan_source();
                    self.rescan().await;
                }
                Got::Tick => self.rescan().await,
            }
        }
    }
}
