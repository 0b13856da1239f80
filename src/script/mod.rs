//! Running user scripts safely: vrrp_script checks, MISC_CHECK, notify_* and
//! quorum_up/down hooks.
//!
//! Two calls: [`check`] (at config load: resolve and vet a script, get the
//! warnings to log once) and [`run`] / [`execute`] (each time: check again,
//! start it, wait for it within its timeout, clean up). Outcomes are returned,
//! never logged here beyond `tracing` debug details: the caller knows the
//! instance or checker names.
//!
//! # What keepalived 2.2.7 does, and what we do
//! Read in keepalived's source (`lib/notify.c`, `lib/parser.c`,
//! `vrrp/vrrp_scheduler.c`, `check/check_misc.c`), keepalived.conf(5), and
//! checked against Debian's keepalived 2.2.7 running scripts in a network
//! namespace.
//!
//! **Command line.** Split into words like keepalived ([`split_command`]:
//! `'` and `"` quote, backslash escapes everywhere). The program is executed
//! **directly** (execve), never through a shell: `pidof nginx || exit 1` runs
//! `pidof` with the words `nginx`, `||`, `exit`, `1`. For shell syntax write
//! `/bin/sh -c '...'`. Two shell cases, as keepalived:
//! - a file without `#!` (not a binary either) is run by `/bin/sh` — what
//!   keepalived built with libmagic and execvp(3) do. (Debian's 2.2.7 has no
//!   libmagic: there exec fails and the script silently counts as a
//!   *success*; we don't copy that.)
//! - a command whose first word starts with `<` then `/` (`</dev/tcp/...`,
//!   `</etc/ready`, "is this file openable") is run as `/bin/sh -c LINE`,
//!   without file checks.
//!
//! A bare program name (no `/`) is looked up in `PATH` (from
//! [`RunOptions::env`], else the daemon's, else `/bin:/usr/bin`) for a file
//! the run-as user may execute, with a warning to give the full path.
//! Relative paths are taken from the daemon's directory; the script itself
//! runs in `/`. Extra arguments
//! ([`ScriptSpec::args`], e.g. a `notify` script's `INSTANCE name STATE
//! priority`) follow the configured words.
//!
//! **Process.** The child gets its own process group (setpgid, like
//! keepalived), stdin `/dev/null`, stdout and stderr `/dev/null` unless the
//! caller asks for a bounded copy ([`RunOptions::capture_output`]), working
//! directory `/`, default signal dispositions, descriptors past stderr closed
//! on exec, parent-death signal SIGTERM (so scripts die with the daemon, as
//! keepalived documents), and the environment of the daemon minus `IFS`,
//! `LD_PRELOAD` and `LD_LIBRARY_PATH` (newer keepalived drops them too) plus
//! [`RunOptions::env`].
//!
//! **Timeout.** After [`RunOptions::timeout`], SIGTERM to the whole group;
//! 2 s later SIGKILL to the group if the script is still there (keepalived's
//! sequence, `vrrp_script_child_thread`). The outcome is [`Outcome::TimedOut`]
//! whatever the script did after SIGTERM (keepalived counts a script that
//! traps SIGTERM and exits 0 as a success; a script past its time is not
//! trusted here). No timeout means no limit (keepalived's notify scripts).
//! Callers pass keepalived's defaults: vrrp_script `timeout`, else its
//! `interval`; MISC_CHECK `misc_timeout`, else the `delay_loop`.
//!
//! **After any exit** (normal, signal or timeout) whatever is left of the
//! process group is killed with SIGKILL — stricter than keepalived, which only
//! does this after a timeout, so `sh -c 'sleep 100 & exit 0'` leaves no
//! orphan. This is done *before* the leader is reaped, so the group id (the
//! leader's pid) cannot have been reused. The leader is then reaped (no
//! zombie), and `run` returns once no live process of the group is left
//! (waiting at most 1 s). Killed grandchildren are reparented to init, which
//! reaps them; until it does they are dead zombies, not ours.
//! A script that wants to leave something running must daemonize it properly
//! (setsid) or start it through the service manager.
//!
//! **Cancellation.** Dropping a `run`/`execute` future before it finishes
//! (a reload, a shutdown, a `select!`) stops the script the same way:
//! SIGTERM to its group, SIGKILL 2 s later, then it is reaped — on a
//! background thread, since a drop cannot wait.
//!
//! **Limits.** A descendant that calls `setsid()` or `setpgid()` leaves the
//! group and escapes these kills (and may keep an output pipe open: we stop
//! reading 100 ms after the group is gone). We don't make the daemon a child
//! subreaper: escapees would then become *our* children and, since tokio and
//! other modules reap only their own pids, linger as our zombies. The
//! backstop for escapees is the service manager's cgroup kill on stop (keep
//! systemd's default `KillMode=control-group`, not `KillMode=process`). The
//! parent-death signal is tied to the *thread* that forked the child: call
//! `run` from runtime worker threads (not from a `spawn_blocking` closure,
//! whose thread may exit while the script runs). A process that does not die
//! 10 s after SIGKILL (uninterruptible sleep) is left to a background reaper
//! and the outcome is still `TimedOut`. `run` needs a tokio runtime with the
//! I/O and time drivers (`#[tokio::main]`'s default); the fork and exec
//! themselves are a short blocking call on the calling thread.
//!
//! **Users.** The script's `user NAME [GROUP]`, else global `script_user`,
//! else the user `keepalived_script` if it exists, else the daemon's own
//! account (root) with a warning — but with `enable_script_security` and no
//! `keepalived_script` and no `script_user`, keepalived 2.2.7 refuses the
//! script ("Unable to set default user keepalived_script for script") and so
//! do we. The group defaults to the user's primary group. Supplementary
//! groups are cleared, as keepalived does by default; a group written `:NAME`
//! (or `:`) asks for the user's own supplementary groups (keepalived's `:`
//! syntax). The child switches groups, gid, then uid before exec. A daemon
//! not running as root can only run scripts as itself.
//!
//! **script_security.** See [`security`]: when a script would run as root (or
//! the root group, or is set-uid/gid root) and it or any directory on its
//! path (as written and as resolved) is writable by a non-root user or owned
//! by one, `enable_script_security` refuses it ([`Outcome::Refused`]);
//! without it the script runs and [`check`] returns the warning. keepalived
//! checks at startup only; we check on every run too, so a script made
//! writable later is refused from then on. A script that is not executable
//! by its user is refused (keepalived disables it too).
//!
//! Messages keepalived 2.2.7 logs in these cases, for reference: `Unsafe
//! permissions found for script '%s' - disabling.`, `Script user '%s' does not
//! exist`, `Script %s cannot be accessed - %s`, `WARNING - script '%s' is not
//! executable for uid:gid %u:%u - disabling.`, `VRRP_Script(%s) timed_out`,
//! `VRRP_Script(%s) failed (exited with status %d)`, `... (due to signal %d)`.

pub mod audit;
mod child;
pub mod fifo;
pub mod security;
mod split;
pub mod user;

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::model::{Script, ScriptUser};

pub use child::{KILL_GRACE, kill_cancelled};
pub use security::check_security;
pub use split::split_command;
pub use user::{DEFAULT_SCRIPT_USER, RunAs};

/// One script to run: the command line as configured, its own user (if any)
/// and extra arguments appended after the configured words.
#[derive(Debug, Clone, Copy)]
pub struct ScriptSpec<'a> {
    pub command: &'a str,
    pub user: Option<&'a ScriptUser>,
    pub args: &'a [String],
}

impl<'a> ScriptSpec<'a> {
    pub fn new(command: &'a str) -> Self {
        ScriptSpec {
            command,
            user: None,
            args: &[],
        }
    }

    pub fn user(mut self, user: Option<&'a ScriptUser>) -> Self {
        self.user = user;
        self
    }

    pub fn args(mut self, args: &'a [String]) -> Self {
        self.args = args;
        self
    }
}

impl<'a> From<&'a Script> for ScriptSpec<'a> {
    fn from(s: &'a Script) -> Self {
        ScriptSpec::new(&s.command).user(s.user.as_ref())
    }
}

impl<'a> From<&'a str> for ScriptSpec<'a> {
    fn from(command: &'a str) -> Self {
        ScriptSpec::new(command)
    }
}

/// How to run scripts: mostly global_defs, plus this run's timeout.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// None: no limit.
    pub timeout: Option<Duration>,
    /// global_defs `script_user`.
    pub default_user: Option<ScriptUser>,
    /// global_defs `enable_script_security`.
    pub script_security: bool,
    /// Added to (or replacing in) the daemon's environment.
    pub env: Vec<(String, String)>,
    /// Keep at most this many bytes of stdout+stderr (0: send both to
    /// /dev/null).
    pub capture_output: usize,
}

impl RunOptions {
    /// The global settings of a loaded configuration.
    pub fn from_globals(g: &crate::config::model::GlobalDefs) -> Self {
        RunOptions {
            default_user: g.script_user.clone(),
            script_security: g.enable_script_security,
            ..RunOptions::default()
        }
    }

    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exited by itself with this status.
    Exited(i32),
    /// Killed by this signal, not sent by us.
    Signalled(i32),
    /// Over its time: we sent SIGTERM to its group, and SIGKILL 2 s later if
    /// it was still there. `killed_with` is the last signal we sent.
    TimedOut { after: Duration, killed_with: i32 },
    /// Not run, by policy; an operator-facing reason (script_security, an
    /// unknown user, not executable, a bad command line).
    Refused(String),
    /// Could not be started; an operator-facing reason (missing file, exec
    /// failure).
    SpawnFailed(String),
}

impl Outcome {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(0))
    }

    /// A short operator-facing description: `exited 0`, `failed (exit 7)`,
    /// `killed by signal 9 (SIGKILL)`, `timed out after 2.0 s (SIGTERM, then
    /// SIGKILL)`, `refused: ...`, `could not start: ...`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Exited(0) => "exited 0".to_string(),
            Outcome::Exited(c) => format!("failed (exit {c})"),
            Outcome::Signalled(s) => format!("killed by signal {s} ({})", signal_name(*s)),
            Outcome::TimedOut { after, killed_with } => {
                let how = if *killed_with == libc::SIGKILL {
                    "SIGTERM, then SIGKILL"
                } else {
                    signal_name(*killed_with)
                };
                format!("timed out after {:.1} s ({how})", after.as_secs_f64())
            }
            Outcome::Refused(why) => format!("refused: {why}"),
            Outcome::SpawnFailed(why) => format!("could not start: {why}"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn signal_name(sig: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

/// A finished run with what the caller may want to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    /// Up to [`RunOptions::capture_output`] bytes of stdout+stderr (lossy
    /// UTF-8); empty when not captured.
    pub output: String,
    /// More output came than was kept.
    pub output_truncated: bool,
    /// The script's pid (= its process group id), when it was started.
    pub pid: Option<u32>,
}

/// A script vetted and ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// What is executed: the script's absolute path, or `/bin/sh`.
    pub program: PathBuf,
    /// The argument vector, `argv[0]` included (as written).
    pub argv: Vec<OsString>,
    /// Run through `/bin/sh -c` (the `</file` form).
    pub via_shell: bool,
    pub run_as: RunAs,
    /// To log once (at config load): unsafe permissions without
    /// script_security, a PATH search, a missing default user.
    pub warnings: Vec<String>,
}

/// Resolves and vets a script without running it. `Err` is
/// [`Outcome::Refused`] or [`Outcome::SpawnFailed`].
pub fn check(spec: ScriptSpec<'_>, opts: &RunOptions) -> Result<Checked, Outcome> {
    let mut warnings = Vec::new();
    let words = split_command(spec.command).map_err(Outcome::Refused)?;
    let Some(first) = words.first().filter(|w| !w.is_empty()) else {
        return Err(Outcome::Refused("the command is empty".into()));
    };
    let run_as = user::resolve(
        spec.user,
        opts.default_user.as_ref(),
        opts.script_security,
        &mut warnings,
    )
    .map_err(Outcome::Refused)?;
    let extra = spec.args.iter().map(OsString::from);

    let first_bytes = first.as_encoded_bytes();
    if first_bytes.first() == Some(&b'<')
        && first_bytes[1..]
            .iter()
            .find(|b| **b != b' ' && **b != b'\t')
            == Some(&b'/')
    {
        // keepalived's "</file" form: a shell redirection testing that a file
        // can be opened; the first word raw, the rest quoted.
        let mut line = first.to_string_lossy().into_owned();
        for w in words.iter().skip(1).cloned().chain(extra) {
            line.push(' ');
            line.push_str(&shell_words::quote(&w.to_string_lossy()));
        }
        return Ok(Checked {
            program: PathBuf::from("/bin/sh"),
            argv: vec!["sh".into(), "-c".into(), line.into()],
            via_shell: true,
            run_as,
            warnings,
        });
    }

    let path_env = opts
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let program = locate(Path::new(first), path_env, &run_as, &mut warnings)?;
    let md = std::fs::metadata(&program).map_err(|e| {
        Outcome::SpawnFailed(format!(
            "script '{}' cannot be accessed: {e}",
            program.display()
        ))
    })?;
    if !md.is_file() {
        return Err(Outcome::Refused(format!(
            "script '{}' is not a regular file",
            program.display()
        )));
    }
    if !security::is_executable(&md, run_as.uid, run_as.gid) {
        return Err(Outcome::Refused(format!(
            "script '{}' is not executable by user '{}' (uid:gid {}:{}; the file has mode {:04o}, \
             owner {}:{}) — make it executable for that user, e.g. chmod 755 {}",
            program.display(),
            run_as.user,
            run_as.uid,
            run_as.gid,
            md.mode() & 0o7777,
            md.uid(),
            md.gid(),
            shell_words::quote(&program.to_string_lossy()),
        )));
    }
    if security::needs_protection(&md, run_as.uid, run_as.gid, &run_as.groups)
        && let Err(problem) = check_security(&program)
    {
        if opts.script_security {
            return Err(Outcome::Refused(format!(
                "{problem} (not run as root: enable_script_security is set)"
            )));
        }
        warnings.push(format!(
            "{problem} (it runs as root anyway: enable_script_security is not set)"
        ));
    }
    let mut argv = words;
    argv.extend(extra);
    Ok(Checked {
        program,
        argv,
        via_shell: false,
        run_as,
        warnings,
    })
}

/// The absolute path of the program: relative to the daemon's directory, or
/// found in PATH for a bare name.
fn locate(
    first: &Path,
    path_env: Option<OsString>,
    run_as: &RunAs,
    warnings: &mut Vec<String>,
) -> Result<PathBuf, Outcome> {
    let text = first.to_string_lossy();
    if text.contains('/') {
        if first.is_absolute() {
            return Ok(first.to_path_buf());
        }
        return std::env::current_dir().map(|d| d.join(first)).map_err(|e| {
            Outcome::SpawnFailed(format!(
                "script '{text}' is relative and the current directory is unknown: {e}"
            ))
        });
    }
    let path = path_env
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/bin:/usr/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = if dir.as_os_str().is_empty() {
            PathBuf::from(".").join(first)
        } else {
            dir.join(first)
        };
        if let Ok(md) = std::fs::metadata(&candidate)
            && md.is_file()
            && security::is_executable(&md, run_as.uid, run_as.gid)
        {
            let found = if candidate.is_absolute() {
                candidate
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&candidate))
                    .unwrap_or(candidate)
            };
            warnings.push(format!(
                "script '{text}' was found by a PATH search at '{}': give its full path",
                found.display()
            ));
            return Ok(found);
        }
    }
    Err(Outcome::SpawnFailed(format!(
        "script '{text}' was not found in PATH ({}): give its full path",
        path.to_string_lossy()
    )))
}

/// Checks and runs a script; the outcome only. See [`execute`].
pub async fn run<'a>(spec: impl Into<ScriptSpec<'a>>, opts: &RunOptions) -> Outcome {
    execute(spec, opts).await.outcome
}

/// Checks and runs a script (see the module documentation for what that
/// means), returning its outcome and captured output. Never panics; all
/// failures are outcomes.
pub async fn execute<'a>(spec: impl Into<ScriptSpec<'a>>, opts: &RunOptions) -> Finished {
    let spec = spec.into();
    match check(spec, opts) {
        Ok(checked) => {
            for w in &checked.warnings {
                tracing::debug!(command = spec.command, "{w}");
            }
            child::run_checked(&checked, opts).await
        }
        Err(outcome) => Finished {
            outcome,
            output: String::new(),
            output_truncated: false,
            pid: None,
        },
    }
}
