//! The tasks that feed the driver: socket receivers and the link watch (on
//! the VRRP thread), and everything that runs scripts — vrrp_script
//! trackers and notify workers — on a thread of their own
//! ([`ScriptRunner`]): forking, reading and reaping scripts happen on
//! another thread than the advert timer's. Results come back as events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::model::{Config, Notify};
use crate::script::{self, RunOptions, ScriptSpec};

use super::super::notify::{self, Job};
use super::super::rtnl;
use super::super::socket::{RxInfo, VrrpSocket};

pub(super) enum Event {
    Packet {
        /// The driver generation whose sockets received it (reloads renumber sockets).
        generation: u64,
        socket: usize,
        bytes: Vec<u8>,
        info: RxInfo,
    },
    Script {
        /// The generation whose configuration numbered the script.
        generation: u64,
        index: usize,
        outcome: script::Outcome,
    },
    /// A vrrp_script run began (its report says `running` until it ends).
    ScriptStarted { generation: u64, index: usize },
    Link {
        name: String,
        up: bool,
        /// The interface was deleted.
        removed: bool,
    },
    File {
        /// The generation whose configuration numbered the file.
        generation: u64,
        index: usize,
        value: i64,
    },
    Process {
        /// The generation whose configuration numbered the block.
        generation: u64,
        index: usize,
        up: bool,
    },
}

/// A thread with its own single-threaded runtime for scripts, at normal
/// scheduling priority (the VRRP thread runs at a raised one, which a
/// thread it spawns would inherit). Stopped when dropped: what still runs
/// there is cancelled (scripts are then killed, see [`crate::script`]).
pub(super) struct ScriptRunner {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ScriptRunner {
    pub fn start() -> std::io::Result<ScriptRunner> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("vrrp-scripts".into())
            .spawn(move || {
                normal_priority();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let handle = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("the script thread did not start"))??;
        Ok(ScriptRunner {
            handle,
            stop: Some(stop),
        })
    }

    pub fn spawn<F>(&self, f: F) -> JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(f)
    }
}

impl Drop for ScriptRunner {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Back to SCHED_OTHER at nice 0 on this thread (scripts reset their own
/// priority when they start; this is for the thread that forks them).
fn normal_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: 0 is this thread; param is a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    // SAFETY: gettid and setpriority on this thread only.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 0)
    };
}

/// Starts a worker running `notify`'s scripts for each job sent to it.
/// Returns None when there is nothing to run.
pub(super) fn spawn_notify_worker(
    runner: &ScriptRunner,
    notify: Notify,
    opts: RunOptions,
) -> Option<(mpsc::UnboundedSender<Job>, JoinHandle<()>)> {
    let empty = notify.master.is_none()
        && notify.backup.is_none()
        && notify.fault.is_none()
        && notify.stop.is_none()
        && notify.any.is_none()
        && notify.master_rx_lower_pri.is_none();
    if empty {
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let handle = runner.spawn(async move {
        // notify_master_rx_lower_pri runs beside the ordered queue (keepalived
        // does not wait for it; it may be a slow cloud API call), at most one
        // running and one waiting: a lasting split cannot pile them up.
        let (event_tx, mut event_rx) = mpsc::channel::<Job>(1);
        let (event_notify, event_opts) = (notify.clone(), opts.clone());
        let events = tokio::spawn(async move {
            while let Some(job) = event_rx.recv().await {
                run_notify(&event_notify, &job, &event_opts).await;
            }
        });
        while let Some(job) = rx.recv().await {
            if job.state == "MASTER_RX_LOWER_PRI" {
                let _ = event_tx.try_send(job);
            } else {
                run_notify(&notify, &job, &opts).await;
            }
        }
        drop(event_tx);
        let _ = events.await;
    });
    Some((tx, handle))
}

/// Runs a job's notify scripts, in order, each to its end.
async fn run_notify(notify: &Notify, job: &Job, opts: &RunOptions) {
    for (s, args) in notify::scripts_for(notify, job) {
        let spec = ScriptSpec::new(&s.command)
            .user(s.user.as_ref())
            .args(&args);
        let outcome = script::run(spec, opts).await;
        if outcome.success() {
            tracing::debug!("{} {}: notify `{}` done", job.kind, job.name, s.command);
        } else {
            tracing::warn!(
                "{}({}) notify script `{}` {}",
                if job.kind == "GROUP" {
                    "VRRP_Group"
                } else {
                    "VRRP_Instance"
                },
                job.name,
                s.command,
                outcome.describe()
            );
        }
    }
}

pub(super) fn spawn_receivers(
    sockets: &[Arc<VrrpSocket>],
    generation: u64,
    tx: &mpsc::Sender<Event>,
) -> Vec<JoinHandle<()>> {
    sockets
        .iter()
        .enumerate()
        .map(|(index, sock)| spawn_receiver(sock.clone(), index, generation, tx))
        .collect()
}

/// The receiver of socket `index`.
pub(super) fn spawn_receiver(
    sock: Arc<VrrpSocket>,
    index: usize,
    generation: u64,
    tx: &mpsc::Sender<Event>,
) -> JoinHandle<()> {
    let tx = tx.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            match sock.recv(&mut buf).await {
                Ok((n, info)) => {
                    let ev = Event::Packet {
                        generation,
                        socket: index,
                        bytes: buf[..n].to_vec(),
                        info,
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("VRRP socket receive: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// One task per vrrp_script used by an instance (on the script thread):
/// run, report, wait `interval`.
pub(super) fn spawn_scripts(
    runner: &ScriptRunner,
    config: &Config,
    used: &[usize],
    generation: u64,
    tx: &mpsc::Sender<Event>,
) -> Vec<JoinHandle<()>> {
    let base = RunOptions::from_globals(&config.global);
    used.iter()
        .filter_map(|&index| config.vrrp_scripts.get(index).map(|s| (index, s.clone())))
        .map(|(index, s)| {
            let opts = base
                .clone()
                .with_timeout(Some(s.timeout.map_or(s.interval.0, |t| t.0)));
            let tx = tx.clone();
            runner.spawn(async move {
                let mut tick = tokio::time::interval(s.interval.0.max(Duration::from_millis(10)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let started = Event::ScriptStarted { generation, index };
                    if tx.send(started).await.is_err() {
                        return;
                    }
                    let outcome = script::run(&s.script, &opts).await;
                    if let script::Outcome::TimedOut { .. } = outcome {
                        tracing::warn!("VRRP_Script({}) timed out", s.name);
                    }
                    let ev = Event::Script {
                        generation,
                        index,
                        outcome,
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            })
        })
        .collect()
}

/// One watch per track_file used by an instance: opened (and the value
/// read) now, so that the instances start with it; each change is an event.
pub(super) fn watch_files(
    config: &Config,
    used: &[usize],
    generation: u64,
    tx: &mpsc::Sender<Event>,
) -> (Vec<JoinHandle<()>>, Vec<(usize, i64)>) {
    let mut tasks = Vec::new();
    let mut values = Vec::new();
    for &index in used {
        let Some(def) = config.track_files.get(index) else {
            continue;
        };
        let (mut watch, error) = crate::track_file::Watch::open(&def.name, &def.path);
        if let Some(e) = error {
            tracing::warn!(
                "{e}; polling {} every {}s",
                def.path.display(),
                crate::track_file::POLL.as_secs()
            );
        }
        tracing::info!(
            "VRRP track_file {}: {} holds {}",
            def.name,
            def.path.display(),
            watch.value()
        );
        values.push((index, watch.value()));
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let value = watch.changed().await;
                let ev = Event::File {
                    generation,
                    index,
                    value,
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }));
    }
    (tasks, values)
}

/// One watcher for the track_processes some instance uses; each change is
/// an event. At start it is subscribed and /proc scanned now, so that the
/// instances start with each quorum state. At a reload (`in_background`)
/// that happens in its task and the states come as events: the
/// subscription may wait up to its ack timeout, and masters must keep
/// advertising meanwhile (the node carries the states of unchanged
/// track_process blocks over until then).
pub(super) async fn watch_processes(
    config: &Config,
    used: &[usize],
    generation: u64,
    tx: &mpsc::Sender<Event>,
    in_background: bool,
) -> (Option<JoinHandle<()>>, Vec<(usize, bool)>) {
    if used.is_empty() {
        return (None, Vec::new());
    }
    let all = config.track_processes.clone();
    let used = used.to_vec();
    let (ready, states) = if in_background {
        (None, Vec::new())
    } else {
        let watcher = crate::track_process::Watcher::open(&all, &used).await;
        let states = watcher.states();
        (Some(watcher), states)
    };
    let tx = tx.clone();
    let task = tokio::spawn(async move {
        let mut watcher = match ready {
            Some(w) => w,
            None => {
                let w = crate::track_process::Watcher::open(&all, &used).await;
                for (index, up) in w.states() {
                    let ev = Event::Process {
                        generation,
                        index,
                        up,
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                w
            }
        };
        loop {
            let (index, up) = watcher.next().await;
            let ev = Event::Process {
                generation,
                index,
                up,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    (Some(task), states)
}

/// Watches link changes (for track_interface, and with `always` for the
/// instances' own interfaces, which may appear later), then reads the
/// tracked links' state (after the watch is open, so no change is missed).
pub(super) async fn watch_links(
    rtnl: &rtnl::Rtnl,
    tracked: &[String],
    always: bool,
    tx: &mpsc::Sender<Event>,
) -> (Option<JoinHandle<()>>, Vec<(String, bool)>) {
    if tracked.is_empty() && !always {
        return (None, Vec::new());
    }
    let task = match rtnl::LinkWatch::open() {
        Ok(mut watch) => {
            let tx = tx.clone();
            Some(tokio::spawn(async move {
                while let Some(ev) = watch.next().await {
                    let ev = Event::Link {
                        name: ev.name,
                        up: ev.up,
                        removed: ev.removed,
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }))
        }
        Err(e) => {
            tracing::error!("cannot watch links for track_interface: {e}");
            None
        }
    };
    let mut links = Vec::new();
    for name in tracked {
        let up = match rtnl.link_by_name(name).await {
            Ok(l) => l.up,
            Err(e) => {
                tracing::warn!("interface {name} (tracked): {e}; taken as down");
                false
            }
        };
        links.push((name.clone(), up));
    }
    (task, links)
}

/// Tasks aborted when dropped (a reload replaces them).
pub(super) struct Tasks(pub Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
