//! ipvsdir as PID 1 (a container's init): a tiny init in front of the daemon.
//!
//! The kernel hands every orphan of a PID namespace to its PID 1, and only
//! PID 1 can reap them. A MISC_CHECK script that backgrounds a child
//! (`sh -c 'sleep 1 & exit 0'`) orphans it at every run; an init that does
//! not reap leaves one zombie per run until the process table is full.
//!
//! The daemon itself must not `waitpid(-1)`: tokio and the script runner
//! reap their own children by pid, and a blanket reap would steal their
//! exit statuses. So, as tini and `docker run --init` do, PID 1 splits in
//! two at the very start of `main`, before any thread exists:
//! - the child carries on as ipvsdir (everything it starts is its own, and
//!   it reaps those as usual);
//! - the parent stays PID 1: it forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1,
//!   SIGUSR2 and SIGQUIT to the child, reaps every process that ends up as
//!   its child (the ipvsdir child and all orphans), and when the ipvsdir
//!   child exits, exits with its status (128 + N after signal N). The
//!   kernel then kills whatever is left in the namespace.
//!
//! PID 1 gets no default signal actions: a signal it has no handler for is
//! dropped. The init keeps the forwarded signals and SIGCHLD blocked and
//! takes them with `sigwait`; blocked signals are queued even for PID 1.

use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};

/// The signals the init passes on to the daemon.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
];

/// Call first thing in `main`, before any thread is started. When this
/// process is not PID 1, returns None at once. As PID 1 it forks: in the
/// child (the daemon) it returns None and `main` carries on; in the parent
/// it runs the init loop and returns the exit code `main` must return once
/// the daemon has exited. If the init cannot be set up (a thread already
/// exists, fork fails) it says so and returns None: ipvsdir then runs as
/// PID 1 itself, without reaping orphans.
pub fn init_if_pid1() -> Option<ExitCode> {
    if getpid().as_raw() != 1 {
        return None;
    }
    if let Some(n) = threads().filter(|&n| n > 1) {
        eprintln!(
            "ipvsdir: running as PID 1 with {n} threads already: cannot fork an init; orphans will not be reaped (run under an init, e.g. docker run --init)"
        );
        return None;
    }
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    // Blocked before the fork, so no signal sent in between is lost.
    let old = match set.thread_swap_mask(SigmaskHow::SIG_BLOCK) {
        Ok(old) => old,
        Err(e) => {
            eprintln!("ipvsdir: PID 1: cannot block signals ({e}); orphans will not be reaped");
            return None;
        }
    };
    // SAFETY: this process has a single thread (checked above; `main` calls
    // us first), so the child is a complete copy and may do anything.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The daemon: the signal mask it started with (tokio's handlers
            // need the signals unblocked).
            if let Err(e) = old.thread_set_mask() {
                eprintln!("ipvsdir: cannot restore the signal mask: {e}");
            }
            None
        }
        Ok(ForkResult::Parent { child }) => Some(supervise(child, &set)),
        Err(e) => {
            eprintln!("ipvsdir: PID 1: cannot fork an init ({e}); orphans will not be reaped");
            let _ = old.thread_set_mask();
            None
        }
    }
}

/// The init loop: forward signals to `daemon`, reap everything, return the
/// daemon's exit code once it is gone.
fn supervise(daemon: Pid, set: &SigSet) -> ExitCode {
    loop {
        // A SIGCHLD may have arrived before the mask was set up in full,
        // or several may have merged into one: reap until nothing is left.
        if let Some(code) = reap(daemon) {
            return ExitCode::from(code);
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                // ESRCH: the daemon has just exited; the next reap sees it.
                let _ = kill(daemon, sig);
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("ipvsdir init: sigwait: {e}");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    }
}

/// Reaps every child that has ended; the daemon's exit code if it is one
/// of them.
fn reap(daemon: Pid) -> Option<u8> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return code,
            Ok(status) => {
                if status.pid() == Some(daemon) {
                    code = exit_code(status).or(code);
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("ipvsdir init: waitpid: {e}");
                return code;
            }
        }
    }
}

/// The exit code a shell would give: the status, or 128 + N after signal N.
/// None for a status that is not an end (stopped, continued).
pub fn exit_code(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, c) => Some(u8::try_from(c & 0xff).unwrap_or(1)),
        WaitStatus::Signaled(_, sig, _) => Some(u8::try_from(128 + sig as i32).unwrap_or(255)),
        _ => None,
    }
}

/// How many threads this process has (None without /proc).
fn threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        let pid = Pid::from_raw(42);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 0)), Some(0));
        assert_eq!(exit_code(WaitStatus::Exited(pid, 2)), Some(2));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(143)
        );
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, true)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::Stopped(pid, Signal::SIGSTOP)), None);
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn not_pid_1_does_nothing() {
        // The test harness is never PID 1 (cargo runs it).
        assert!(init_if_pid1().is_none());
    }
}
