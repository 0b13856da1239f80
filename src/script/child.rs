//! Starting a checked script and watching it to the end: its own process
//! group, credentials switched before exec, the timeout (SIGTERM to the group,
//! SIGKILL 2 s later), the group killed after any exit, the leader reaped, and
//! optionally a bounded copy of its output.

use std::ffi::OsString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::time::{Instant, sleep, sleep_until};

use super::{Checked, Finished, Outcome, RunOptions};

/// keepalived's grace between SIGTERM and SIGKILL after a timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long we wait after SIGKILL before giving up on a process (one stuck in
/// an uninterruptible sleep, say); keepalived waits 10 s too.
const STUCK_AFTER_KILL: Duration = Duration::from_secs(10);
/// How long, after the script ended and its group was killed, we wait for the
/// group to be gone.
const GROUP_GONE_WAIT: Duration = Duration::from_secs(1);
/// How long we keep reading output once the group is gone (only an escaped
/// descendant can still hold the pipe then).
const OUTPUT_DRAIN: Duration = Duration::from_millis(100);
/// Environment variables removed from the script's environment (newer
/// keepalived does the same): they change how the script or its loader behave.
const SCRUBBED_ENV: [&str; 3] = ["IFS", "LD_PRELOAD", "LD_LIBRARY_PATH"];

/// What the child does between fork and exec, prepared before the fork so
/// the child only makes async-signal-safe system calls.
#[derive(Clone)]
struct ChildSetup {
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    set_groups: bool,
    switch_gid: bool,
    switch_uid: bool,
    parent: libc::pid_t,
}

impl ChildSetup {
    /// Runs in the forked child; std has already set the process group,
    /// stdio and the working directory.
    fn apply(&self) -> io::Result<()> {
        // SAFETY: only async-signal-safe system calls on data prepared
        // before the fork; no allocation.
        unsafe {
            // The VRRP thread runs at a raised priority (nice, or SCHED_RR
            // with vrrp_rt_priority); its scripts must not.
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            let normal = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal);
            if self.set_groups && libc::setgroups(self.groups.len(), self.groups.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if self.switch_gid && libc::setgid(self.gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if self.switch_uid && libc::setuid(self.uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Signals the daemon may ignore or handle: the script starts
            // with the defaults (handlers are reset by exec, ignores are not).
            for sig in [
                libc::SIGHUP,
                libc::SIGINT,
                libc::SIGQUIT,
                libc::SIGTERM,
                libc::SIGUSR1,
                libc::SIGUSR2,
                libc::SIGPIPE,
                libc::SIGALRM,
                libc::SIGCHLD,
            ] {
                libc::signal(sig, libc::SIG_DFL);
            }
            // If the daemon dies, the script gets SIGTERM (keepalived does
            // this too). Set after the uid switch, which clears it.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != self.parent {
                // The daemon died before the line above: nobody waits for us.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            // No inherited descriptor past stderr survives the exec (std's
            // own are close-on-exec already; this catches anyone else's).
            // Errors (a kernel without close_range) are harmless.
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            );
        }
        Ok(())
    }
}

/// How the leader ended, read without reaping it.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Exited(i32),
    Signalled(i32),
    /// Its status is gone: someone else reaped it (a `waitpid(-1)` elsewhere
    /// in the daemon, or SIGCHLD set to SIG_IGN).
    Lost,
    /// Still there 10 s after SIGKILL (uninterruptible sleep, say).
    Stuck,
}

pub async fn run_checked(checked: &Checked, opts: &RunOptions) -> Finished {
    let mut finished = Finished {
        outcome: Outcome::SpawnFailed(String::new()),
        output: String::new(),
        output_truncated: false,
        pid: None,
    };
    let capture = opts.capture_output > 0;
    let (child, reader) = match spawn(checked, opts, capture) {
        Ok(x) => x,
        Err(why) => {
            finished.outcome = Outcome::SpawnFailed(why);
            return finished;
        }
    };
    finished.pid = Some(child);
    let mut out = Output::new(opts.capture_output, reader);
    let pid = child as libc::pid_t;
    // If this future is dropped (cancelled) before the end, the guard stops
    // the script and reaps it.
    let mut guard = CancelGuard { pid: Some(pid) };
    let pidfd = open_pidfd(pid);

    // Phase 1: until exit or timeout, then SIGTERM; phase 2: until exit or
    // the grace ends, then SIGKILL; phase 3: until exit or we give up.
    let mut sent: Option<i32> = None;
    let mut deadline = opts.timeout.map(|t| Instant::now() + t);
    let ended = loop {
        tokio::select! {
            // An exit seen together with the deadline counts as in time.
            biased;
            ended = wait_exit(pid, pidfd.as_ref()) => break ended,
            () = crate::timer::sleep_until(deadline) => match sent {
                None => {
                    signal_group(pid, libc::SIGTERM);
                    sent = Some(libc::SIGTERM);
                    deadline = Some(Instant::now() + KILL_GRACE);
                }
                Some(libc::SIGTERM) => {
                    signal_group(pid, libc::SIGKILL);
                    sent = Some(libc::SIGKILL);
                    deadline = Some(Instant::now() + STUCK_AFTER_KILL);
                }
                Some(_) => break Ended::Stuck,
            },
            () = out.read_some(), if out.open() => {}
        }
    };

    // Whatever is left of the group goes: the leader is still unreaped (a
    // zombie at worst), so its pid, which is the group id, cannot have been
    // reused by anyone else.
    signal_group(pid, libc::SIGKILL);
    match ended {
        Ended::Exited(_) | Ended::Signalled(_) => reap(pid),
        Ended::Lost => {}
        Ended::Stuck => {
            tracing::warn!(
                pid,
                "script process did not die after SIGKILL; reaping it later"
            );
            let _ = std::thread::Builder::new()
                .name("script-reaper".into())
                .spawn(move || reap(pid));
        }
    }
    guard.pid = None;
    wait_group_gone(pid, &mut out).await;
    out.drain(OUTPUT_DRAIN).await;

    finished.outcome = match (sent, ended) {
        (Some(sig), _) => Outcome::TimedOut {
            after: opts.timeout.unwrap_or_default(),
            killed_with: sig,
        },
        (None, Ended::Exited(c)) => Outcome::Exited(c),
        (None, Ended::Signalled(s)) => Outcome::Signalled(s),
        (None, Ended::Lost | Ended::Stuck) => Outcome::SpawnFailed(
            "the script's exit status was lost: something else in the daemon reaped it \
             (is SIGCHLD ignored?)"
                .into(),
        ),
    };
    (finished.output, finished.output_truncated) = out.finish();
    finished
}

fn spawn(
    checked: &Checked,
    opts: &RunOptions,
    capture: bool,
) -> Result<(u32, Option<pipe::Receiver>), String> {
    let who = &checked.run_as;
    let (my_uid, my_gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let setup = ChildSetup {
        uid: who.uid,
        gid: who.gid,
        groups: who.groups.clone(),
        set_groups: my_uid == 0,
        switch_gid: who.gid != my_gid,
        switch_uid: who.uid != my_uid,
        parent: std::process::id() as libc::pid_t,
    };

    let (reader, writer) = if capture {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("cannot make a pipe for the script's output: {e}"))?;
        let r = pipe::Receiver::from_owned_fd(r)
            .map_err(|e| format!("cannot read the script's output pipe: {e}"))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };

    let mut argv: Vec<OsString> = checked.argv.clone();
    let mut program = checked.program.clone();
    let mut attempt = 0;
    loop {
        let mut cmd = Command::new(&program);
        if let Some((first, rest)) = argv.split_first() {
            cmd.arg0(first).args(rest);
        }
        for k in SCRUBBED_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.current_dir("/").stdin(Stdio::null()).process_group(0);
        match &writer {
            Some(w) => {
                let out = w
                    .try_clone()
                    .map_err(|e| format!("cannot dup the output pipe: {e}"))?;
                let err = w
                    .try_clone()
                    .map_err(|e| format!("cannot dup the output pipe: {e}"))?;
                cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let s = setup.clone();
        // SAFETY: `apply` only makes async-signal-safe calls (see above).
        unsafe {
            cmd.pre_exec(move || s.apply());
        }
        match cmd.spawn() {
            Ok(child) => return Ok((child.id(), reader)),
            // A file with no #! line and no binary format: run it with
            // /bin/sh, as execvp(3) and a shell do (glibc's execvp already
            // does this; other libcs may not).
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) && attempt == 0 => {
                attempt += 1;
                let mut sh = vec![OsString::from("sh"), program.clone().into_os_string()];
                sh.extend(argv.iter().skip(1).cloned());
                argv = sh;
                program = "/bin/sh".into();
            }
            Err(e) => {
                let as_user = if setup.switch_uid || setup.switch_gid {
                    format!(" as user '{}' (uid:gid {}:{})", who.user, who.uid, who.gid)
                } else {
                    String::new()
                };
                return Err(format!(
                    "could not start '{}'{as_user}: {e}",
                    program.display()
                ));
            }
        }
    }
}

/// Cancelled scripts whose grace period is still running (their group ids).
static CANCELLING: std::sync::Mutex<Vec<libc::pid_t>> = std::sync::Mutex::new(Vec::new());

/// Kills at once every cancelled script still in its grace period. A daemon
/// calls this last before exiting: the background threads that would send
/// SIGKILL later die with the process.
pub fn kill_cancelled() {
    let pids = CANCELLING
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default();
    for pid in pids {
        signal_group(pid, libc::SIGKILL);
        reap(pid);
    }
}

/// Stops a script whose run was cancelled: SIGTERM to its group, SIGKILL 2 s
/// later, then reaps it, on a background thread (Drop cannot wait).
struct CancelGuard {
    pid: Option<libc::pid_t>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        signal_group(pid, libc::SIGTERM);
        if let Ok(mut c) = CANCELLING.lock() {
            c.push(pid);
        }
        let stop = move || {
            let until = std::time::Instant::now() + KILL_GRACE;
            while std::time::Instant::now() < until {
                if !matches!(peek_exit(pid), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // The leader is unreaped here, so the group id is still its own.
            signal_group(pid, libc::SIGKILL);
            reap(pid);
            if let Ok(mut c) = CANCELLING.lock() {
                c.retain(|&p| p != pid);
            }
        };
        if std::thread::Builder::new()
            .name("script-cancel".into())
            .spawn(stop)
            .is_err()
        {
            // No thread: at least nothing of it keeps running.
            signal_group(pid, libc::SIGKILL);
        }
    }
}

fn open_pidfd(pid: libc::pid_t) -> Option<AsyncFd<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor; we own it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the OwnedFd stays open, and the same descriptor, for the
    // AsyncFd's whole life (it owns it).
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()
}

/// Waits until the leader has exited, without reaping it.
async fn wait_exit(pid: libc::pid_t, pidfd: Option<&AsyncFd<OwnedFd>>) -> Ended {
    loop {
        match peek_exit(pid) {
            Ok(Some(e)) => return e,
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ended::Lost,
            Err(_) => {}
        }
        match pidfd {
            Some(fd) => match fd.readable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(_) => sleep(Duration::from_millis(20)).await,
            },
            None => sleep(Duration::from_millis(20)).await,
        }
    }
}

fn peek_exit(pid: libc::pid_t) -> io::Result<Option<Ended>> {
    loop {
        // SAFETY: zeroed siginfo_t is valid; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: after a successful waitid these fields are initialised
        // (si_pid is 0 when the child has not changed state).
        let (spid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if spid == 0 {
            return Ok(None);
        }
        return Ok(match info.si_code {
            libc::CLD_EXITED => Some(Ended::Exited(status)),
            libc::CLD_KILLED | libc::CLD_DUMPED => Some(Ended::Signalled(status)),
            _ => None,
        });
    }
}

fn reap(pid: libc::pid_t) {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return;
    }
}

fn signal_group(pgid: libc::pid_t, sig: i32) -> bool {
    // SAFETY: kill(2) with a negative pid signals that process group.
    unsafe { libc::kill(-pgid, sig) == 0 }
}

/// Is any process of group `pgid` still alive (zombies waiting for init
/// don't count: they are dead and not ours)?
fn group_alive(pgid: libc::pid_t) -> bool {
    if !signal_group(pgid, 0) {
        return false;
    }
    match live_members(pgid) {
        Ok(m) => !m.is_empty(),
        Err(_) => true,
    }
}

/// The pids of live (not zombie) processes in group `pgid`, from /proc.
pub fn live_members(pgid: libc::pid_t) -> io::Result<Vec<libc::pid_t>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."; comm may hold spaces and ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let pgrp = f.nth(1).and_then(|p| p.parse::<libc::pid_t>().ok());
        if pgrp == Some(pgid) && state != "Z" && state != "X" {
            out.push(pid);
        }
    }
    Ok(out)
}

async fn wait_group_gone(pgid: libc::pid_t, out: &mut Output) {
    let until = Instant::now() + GROUP_GONE_WAIT;
    while group_alive(pgid) {
        if Instant::now() >= until {
            tracing::warn!(pgid, "processes of a script's group survive SIGKILL");
            return;
        }
        // The group exists, so its id is still ours: kill again in case a
        // member was being forked when we signalled.
        signal_group(pgid, libc::SIGKILL);
        tokio::select! {
            () = sleep(Duration::from_millis(5)) => {}
            () = out.read_some(), if out.open() => {}
        }
    }
}

/// A bounded copy of the script's output (stdout and stderr interleaved).
struct Output {
    limit: usize,
    buf: Vec<u8>,
    dropped: bool,
    reader: Option<pipe::Receiver>,
}

impl Output {
    fn new(limit: usize, reader: Option<pipe::Receiver>) -> Self {
        Output {
            limit,
            buf: Vec::new(),
            dropped: false,
            reader,
        }
    }

    fn open(&self) -> bool {
        self.reader.is_some()
    }

    /// Reads one chunk (cancel-safe); closes the reader at EOF or on error.
    async fn read_some(&mut self) {
        let Some(r) = self.reader.as_mut() else {
            return std::future::pending().await;
        };
        let mut chunk = [0u8; 4096];
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => self.reader = None,
            Ok(n) => {
                let room = self.limit.saturating_sub(self.buf.len());
                let take = room.min(n);
                self.buf.extend_from_slice(&chunk[..take]);
                if take < n {
                    self.dropped = true;
                }
            }
        }
    }

    async fn drain(&mut self, within: Duration) {
        let until = Instant::now() + within;
        while self.open() {
            tokio::select! {
                () = sleep_until(until) => break,
                () = self.read_some() => {}
            }
        }
        self.reader = None;
    }

    fn finish(self) -> (String, bool) {
        (
            String::from_utf8_lossy(&self.buf).into_owned(),
            self.dropped,
        )
    }
}
