//! Notify FIFOs, keepalived's way (global_defs `notify_fifo`,
//! `vrrp_notify_fifo`, `lvs_notify_fifo`): one line per event, written by
//! the daemon, read by a script of the user's (`*_notify_fifo_script`).
//!
//! What keepalived 2.2.7 does (read in its `lib/notify.c`, `vrrp/vrrp_notify.c`,
//! `check/ipwrapper.c`) and what we do:
//! - the FIFO is created (mode 0644, chowned to the optional `USER [GROUP]`)
//!   if missing; a FIFO ipvsdir created is removed at stop;
//! - the script is started once, with the FIFO's path as its last
//!   argument, before the FIFO is opened; when it ends, that is logged and
//!   it is **not** restarted (keepalived logs "notify fifo script
//!   terminated" and nothing else); at stop it gets SIGTERM (then SIGKILL,
//!   as every script of ours);
//! - the daemon opens the FIFO read-write and non-blocking, so an open
//!   never waits for a reader and a write never blocks: with no reader, or
//!   a slow one, lines the pipe cannot take are dropped (keepalived drops
//!   them silently; we count them and warn, rate-limited);
//! - lines: `INSTANCE "VI_1" MASTER 100`, `GROUP "G1" BACKUP 0` (VRRP,
//!   [`crate::vrrp::notify::Job::fifo_line`]), `VS [vip]:tcp:80 UP`,
//!   `RS [rip]:tcp:80 [vip]:tcp:80 DOWN` (LVS, from the director core).
//!
//! Unlike keepalived, a FIFO is never opened through a path another user
//! controls: its directory must pass [`crate::safe_file::check_dir`], a
//! symlink is not followed (O_NOFOLLOW), and what is opened must be a FIFO
//! that belongs to root or to us (keepalived's CVE-2018-19044 class).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::model::{GlobalDefs, NotifyFifo, ScriptUser};
use crate::log_limit::{LogLimit, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    #[error("{what} {path}: {source}")]
    Unsafe {
        what: &'static str,
        path: PathBuf,
        source: crate::safe_file::SafeFileError,
    },
    #[error("{what} {path}: {why}")]
    Refused {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How often a FIFO that drops lines is warned about.
const WARN_PERIOD: Duration = Duration::from_secs(60);
/// How long the stop waits for the script to read what is left in a FIFO.
const DRAIN_WAIT: Duration = Duration::from_millis(500);

/// One open FIFO.
#[derive(Debug)]
struct Pipe {
    /// The keyword (`notify_fifo`, ...), for the logs.
    what: &'static str,
    path: PathBuf,
    file: File,
    /// We made it: removed at stop.
    created: bool,
    dropped: AtomicU64,
    limit: Mutex<LogLimit<()>>,
}

impl Pipe {
    fn write(&self, line: &[u8]) {
        // One write: a line shorter than PIPE_BUF goes in whole or not at all.
        let result = (&self.file).write(line);
        let why = match result {
            Ok(n) if n == line.len() => return,
            Ok(_) => "the line was cut (the reader is too slow)".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                "the FIFO is full (no reader, or a slow one)".to_string()
            }
            Err(e) => e.to_string(),
        };
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let verdict = match self.limit.lock() {
            Ok(mut l) => l.check(Instant::now(), &()),
            Err(_) => Verdict::Suppress,
        };
        if let Verdict::Log { .. } = verdict {
            tracing::warn!(
                "{} {}: line dropped: {why} ({total} dropped so far)",
                self.what,
                self.path.display()
            );
        }
    }

    /// Bytes written and not read yet.
    fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer we pass.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::FIONREAD, &mut n) };
        if rc == 0 { n.max(0) as usize } else { 0 }
    }
}

/// Where the lines of one stream (VRRP or LVS) go: the global FIFO and the
/// stream's own. Cheap to clone, shared between threads.
#[derive(Debug, Clone, Default)]
pub struct Sink {
    pipes: Vec<Arc<Pipe>>,
}

impl Sink {
    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }

    /// Writes `line` (without its newline) to each FIFO; never blocks.
    pub fn write(&self, line: &str) {
        if self.pipes.is_empty() {
            return;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        for p in &self.pipes {
            p.write(&bytes);
        }
    }

    /// Lines dropped so far, over all its FIFOs.
    pub fn dropped(&self) -> u64 {
        self.pipes
            .iter()
            .map(|p| p.dropped.load(Ordering::Relaxed))
            .sum()
    }
}

/// The notify FIFOs of this process and their scripts.
#[derive(Debug, Default)]
pub struct Fifos {
    all: Option<Arc<Pipe>>,
    vrrp: Option<Arc<Pipe>>,
    lvs: Option<Arc<Pipe>>,
    scripts: Vec<tokio::task::JoinHandle<()>>,
}

/// Which FIFOs this process serves.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// VRRP runs here: `vrrp_notify_fifo`.
    pub vrrp: bool,
    /// The checkers run here: `lvs_notify_fifo`.
    pub lvs: bool,
    /// Start `notify_fifo_script` here (one process of a `-P`/`-C` pair).
    pub all_script: bool,
}

impl Fifos {
    /// Opens (creating them if missing) the FIFOs `g` configures for
    /// `scope` and starts their scripts. A FIFO that cannot be opened is
    /// logged and left out, as keepalived does; the daemon runs on.
    /// Call from within a tokio runtime.
    pub fn open(g: &GlobalDefs, scope: Scope) -> Fifos {
        let mut out = Fifos::default();
        let f = &g.notify_fifos;
        let run = crate::script::RunOptions::from_globals(g);
        let wanted = [
            (
                &f.all,
                "notify_fifo",
                scope.vrrp || scope.lvs,
                scope.all_script,
            ),
            (&f.vrrp, "vrrp_notify_fifo", scope.vrrp, true),
            (&f.lvs, "lvs_notify_fifo", scope.lvs, true),
        ];
        for (i, (cfg, what, wanted, script)) in wanted.into_iter().enumerate() {
            let Some(cfg) = cfg.as_ref().filter(|_| wanted) else {
                continue;
            };
            let pipe = match open_pipe(cfg, what) {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    tracing::error!("{e}; no notify lines are written there");
                    continue;
                }
            };
            tracing::info!("{what}: writing notify lines to {}", cfg.path.display());
            if script && let Some(s) = &cfg.script {
                out.scripts.push(start_script(s, &cfg.path, what, &run));
            }
            match i {
                0 => out.all = Some(pipe),
                1 => out.vrrp = Some(pipe),
                _ => out.lvs = Some(pipe),
            }
        }
        out
    }

    /// VRRP's lines: to `notify_fifo` and `vrrp_notify_fifo`.
    pub fn vrrp_sink(&self) -> Sink {
        Sink {
            pipes: self.all.iter().chain(&self.vrrp).cloned().collect(),
        }
    }

    /// The checkers' lines: to `notify_fifo` and `lvs_notify_fifo`.
    pub fn lvs_sink(&self) -> Sink {
        Sink {
            pipes: self.all.iter().chain(&self.lvs).cloned().collect(),
        }
    }

    /// At stop, after the last line: gives the scripts a moment to read
    /// what is left, stops them, and removes the FIFOs we created.
    pub async fn close(self) {
        let pipes: Vec<Arc<Pipe>> = [self.all, self.vrrp, self.lvs]
            .into_iter()
            .flatten()
            .collect();
        if !self.scripts.is_empty() {
            let until = tokio::time::Instant::now() + DRAIN_WAIT;
            while pipes.iter().any(|p| p.unread() > 0) && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for s in self.scripts {
            // Dropping the run sends SIGTERM to the script's group.
            s.abort();
            let _ = s.await;
        }
        for p in pipes {
            if p.created
                && let Err(e) = std::fs::remove_file(&p.path)
            {
                tracing::warn!("{} {}: cannot remove it: {e}", p.what, p.path.display());
            }
        }
    }
}

fn start_script(
    script: &crate::config::model::Script,
    path: &Path,
    what: &'static str,
    run: &crate::script::RunOptions,
) -> tokio::task::JoinHandle<()> {
    let script = script.clone();
    let args = vec![path.to_string_lossy().into_owned()];
    let run = run.clone().with_timeout(None);
    tracing::info!("{what}: starting {} {}", script.command, args[0]);
    tokio::spawn(async move {
        let spec = crate::script::ScriptSpec::from(&script).args(&args);
        let outcome = crate::script::run(spec, &run).await;
        // keepalived does not restart it either.
        tracing::warn!(
            "{what} script {} terminated ({}); it is not restarted",
            script.command,
            outcome.describe()
        );
    })
}

/// Creates the FIFO if missing and opens it for writing, safely (see the
/// module docs).
fn open_pipe(cfg: &NotifyFifo, what: &'static str) -> Result<Pipe, FifoError> {
    let path = &cfg.path;
    let io = |source| FifoError::Io {
        what,
        path: path.clone(),
        source,
    };
    let refused = |why: String| FifoError::Refused {
        what,
        path: path.clone(),
        why,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("/"),
    };
    crate::safe_file::check_dir(dir, path).map_err(|source| FifoError::Unsafe {
        what,
        path: path.clone(),
        source,
    })?;
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
    let created = match nix::unistd::mkfifo(path, mode) {
        Ok(()) => true,
        Err(nix::errno::Errno::EEXIST) => false,
        Err(e) => return Err(io(e.into())),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path);
    let checked = file.map_err(io).and_then(|file| {
        let m = file.metadata().map_err(io)?;
        let euid = nix::unistd::geteuid().as_raw();
        if !m.file_type().is_fifo() {
            return Err(refused("exists and is not a FIFO".into()));
        }
        if m.uid() != 0 && m.uid() != euid {
            return Err(refused(format!(
                "belongs to another user (uid {}); remove it or let ipvsdir create it",
                m.uid()
            )));
        }
        Ok(file)
    });
    let file = match checked {
        Ok(f) => f,
        Err(e) => {
            if created {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    if created && let Some(owner) = &cfg.owner {
        chown(&file, owner, what, path);
    }
    Ok(Pipe {
        what,
        path: path.clone(),
        file,
        created,
        dropped: AtomicU64::new(0),
        limit: Mutex::new(LogLimit::new(WARN_PERIOD, 1)),
    })
}

/// Gives a FIFO we created to `USER [GROUP]` (through the open descriptor,
/// not the path); failures are logged.
fn chown(file: &File, owner: &ScriptUser, what: &str, path: &Path) {
    let user = match nix::unistd::User::from_name(&owner.user) {
        Ok(Some(u)) => u,
        _ => {
            tracing::warn!("{what} {}: no user {}", path.display(), owner.user);
            return;
        }
    };
    let gid = match &owner.group {
        Some(g) => match nix::unistd::Group::from_name(g) {
            Ok(Some(g)) => g.gid,
            _ => {
                tracing::warn!("{what} {}: no group {g}", path.display());
                return;
            }
        },
        None => user.gid,
    };
    if let Err(e) = std::os::unix::fs::fchown(file, Some(user.uid.as_raw()), Some(gid.as_raw())) {
        tracing::warn!(
            "{what} {}: cannot give it to {}: {e}",
            path.display(),
            owner.user
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn fifo(path: &Path) -> NotifyFifo {
        NotifyFifo {
            path: path.to_path_buf(),
            owner: None,
            script: None,
        }
    }

    #[test]
    fn creates_writes_and_never_blocks_without_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notify");
        let pipe = open_pipe(&fifo(&p), "notify_fifo").unwrap();
        assert!(pipe.created);
        let sink = Sink {
            pipes: vec![Arc::new(pipe)],
        };
        // Far more than a pipe holds: the excess is dropped, nothing waits.
        let started = Instant::now();
        for _ in 0..10_000 {
            sink.write("INSTANCE \"VI_1\" MASTER 100");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(sink.dropped() > 0);
        // What went in is whole lines.
        let mut r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .unwrap();
        let mut buf = vec![0; 4096];
        let n = r.read(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("INSTANCE \"VI_1\" MASTER 100\n"), "{text}");
    }

    #[test]
    fn refuses_symlinks_and_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_pipe(&fifo(&link), "notify_fifo").is_err());
        let e = open_pipe(&fifo(&target), "notify_fifo").unwrap_err();
        assert!(e.to_string().contains("not a FIFO"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    }

    #[test]
    fn refuses_directories_others_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_pipe(&fifo(&open.join("f")), "notify_fifo").unwrap_err();
        assert!(e.to_string().contains("writable by other users"), "{e}");
    }

    #[test]
    fn refuses_a_fifo_of_another_user() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("theirs");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let e = open_pipe(&fifo(&p), "notify_fifo").unwrap_err();
        assert!(e.to_string().contains("another user"), "{e}");
        // Not ours to remove.
        assert!(p.exists());
    }
}
