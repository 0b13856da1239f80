//! The pid file as a lock: one director per identity.
//!
//! The daemon takes an exclusive `flock` on its pid file before it touches
//! anything (the IPVS table, VIPs, the status socket). A second instance
//! with the same pid file fails at once, names the first one's pid, and
//! leaves the first one's files alone: it writes nothing and unlinks
//! nothing it does not hold the lock for.
//!
//! The file is opened without following symbolic links and without
//! blocking (`O_NOFOLLOW | O_NONBLOCK`) and must be a regular file: a
//! symlink or a FIFO planted at the path (say in a world-writable
//! directory) is refused rather than followed or waited on.
//!
//! Without `-p` the pid file sits beside the status socket, which is the
//! director's identity ([`default_path`]): two directors that share a
//! socket path would fight over it, so they share a lock too.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the lock could not be taken. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another ipvsdir is running ({}, pid file {}): stop it first, or give this one its own -p and --control-socket",
        holder(*.pid),
        .path.display()
    )]
    Held { path: PathBuf, pid: Option<u32> },
    #[error(
        "the pid file {} is a symbolic link: refusing to follow it; remove it, or give ipvsdir another -p",
        .path.display()
    )]
    Symlink { path: PathBuf },
    #[error(
        "the pid file {} is not a regular file (a {kind}): remove it, or give ipvsdir another -p",
        .path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "cannot create the pid file's directory {}: {source}; create it, or give ipvsdir another -p",
        .dir.display()
    )]
    Dir { dir: PathBuf, source: io::Error },
    #[error(
        "cannot open the pid file {}: {source}; check the directory's permissions, or give ipvsdir another -p",
        .path.display()
    )]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot lock the pid file {}: {source}", .path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error(
        "cannot write our pid to {}: {source}; check the file system (full? read-only?)",
        .path.display()
    )]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "the pid file {} keeps being replaced while we lock it: is something else managing it?",
        .path.display()
    )]
    Unstable { path: PathBuf },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown: it has not written it yet".to_string(),
    }
}

/// The pid file beside the status socket: the socket path with the
/// extension `pid` (`/run/ipvsdir/ipvsdir.sock` -> `/run/ipvsdir/ipvsdir.pid`).
/// A socket path that already ends in `.pid` gets `.pid` appended, so the
/// two never collide.
pub fn default_path(control_socket: &Path) -> PathBuf {
    if control_socket.extension().is_some_and(|e| e == "pid") {
        let mut s = control_socket.as_os_str().to_owned();
        s.push(".pid");
        return PathBuf::from(s);
    }
    control_socket.with_extension("pid")
}

/// A held pid file. Dropping it removes the file (while the lock is still
/// held) and then releases the lock by closing it.
#[derive(Debug)]
pub struct PidLock {
    path: PathBuf,
    file: File,
}

/// How often to start over when the file we locked was unlinked or replaced
/// in between (its previous holder exiting, say).
const ATTEMPTS: usize = 5;
/// How long to wait for a holder that has the lock but has not written its
/// pid yet, before naming it "pid unknown".
const PID_WAIT: Duration = Duration::from_millis(200);

impl PidLock {
    /// Creates (if needed) and locks `path`, then writes our pid into it.
    /// Fails without touching the file when another process holds it.
    pub fn acquire(path: &Path) -> Result<PidLock, LockError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|source| LockError::Dir {
                    dir: dir.to_path_buf(),
                    source,
                })?;
        }
        for _ in 0..ATTEMPTS {
            let file = open(path)?;
            if !lock(&file).map_err(|source| LockError::Lock {
                path: path.to_path_buf(),
                source,
            })? {
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    pid: read_holder(&file),
                });
            }
            // Locked; but the previous holder may have unlinked the file
            // between our open and our lock. Only the file at the path counts.
            if !same_file(&file, path) {
                continue;
            }
            let mut lock = PidLock {
                path: path.to_path_buf(),
                file,
            };
            if let Err(source) = lock.write_pid() {
                // Ours: removing it (by Drop) is right.
                return Err(LockError::Write {
                    path: path.to_path_buf(),
                    source,
                });
            }
            return Ok(lock);
        }
        Err(LockError::Unstable {
            path: path.to_path_buf(),
        })
    }

    /// The pid file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file
            .write_all(format!("{}\n", std::process::id()).as_bytes())?;
        self.file.flush()
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        // We hold the lock, so nobody else may have written this file; but
        // an operator may have removed it and another instance created a
        // new one at the path since. Only unlink the file that is ours.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        // Closing `file` (dropped after this) releases the lock.
    }
}

/// Opens the pid file: created 0644 if missing, never through a symlink,
/// never blocking on a FIFO or device, and only if it is a regular file.
fn open(path: &Path) -> Result<File, LockError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        // std adds O_CLOEXEC itself.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| {
            // O_NOFOLLOW on a symlink: ELOOP.
            if source.raw_os_error() == Some(libc::ELOOP)
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            {
                LockError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                LockError::Open {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    let meta = file.metadata().map_err(|source| LockError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_dir() {
            "directory"
        } else if t.is_fifo() {
            "FIFO"
        } else if t.is_socket() {
            "socket"
        } else if t.is_char_device() {
            "character device"
        } else if t.is_block_device() {
            "block device"
        } else {
            "special file"
        };
        return Err(LockError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(file)
}

/// `flock(LOCK_EX | LOCK_NB)`: Ok(true) when locked, Ok(false) when another
/// open file description holds it.
fn lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor `file` owns and keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The holder's pid as written in the file. A holder that has just taken
/// the lock may not have written it yet: wait a little.
fn read_holder(file: &File) -> Option<u32> {
    let deadline = std::time::Instant::now() + PID_WAIT;
    loop {
        let mut text = String::new();
        let mut f = file;
        let read = f
            .seek(SeekFrom::Start(0))
            .and_then(|_| f.take(64).read_to_string(&mut text));
        if read.is_ok()
            && let Ok(pid) = text.trim().parse::<u32>()
        {
            return Some(pid);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `path` (not following a symlink) is the file `file` has open.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_beside_the_socket() {
        assert_eq!(
            default_path(Path::new("/run/ipvsdir/ipvsdir.sock")),
            PathBuf::from("/run/ipvsdir/ipvsdir.pid")
        );
        assert_eq!(
            default_path(Path::new("/tmp/ctl")),
            PathBuf::from("/tmp/ctl.pid")
        );
        assert_eq!(
            default_path(Path::new("/tmp/odd.pid")),
            PathBuf::from("/tmp/odd.pid.pid")
        );
    }

    #[test]
    fn acquire_writes_our_pid_and_creates_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/dir/ipvsdir.pid");
        let lock = PidLock::acquire(&path).expect("acquire");
        assert_eq!(lock.path(), path);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("{}\n", std::process::id()));
        let mode = std::fs::metadata(path.parent().expect("parent"))
            .expect("stat dir")
            .mode();
        assert_eq!(mode & 0o022, 0, "directory not group/world-writable");
    }

    #[test]
    fn a_stale_file_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ipvsdir.pid");
        std::fs::write(&path, "999999999 and some more text\n").expect("write");
        let _lock = PidLock::acquire(&path).expect("acquire");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("{}\n", std::process::id()));
    }

    #[test]
    fn a_second_acquire_fails_naming_the_holder_and_leaves_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ipvsdir.pid");
        let first = PidLock::acquire(&path).expect("acquire");
        // flock belongs to the open file description: a second open in the
        // same process conflicts like another process would.
        let err = PidLock::acquire(&path).expect_err("second acquire");
        let me = std::process::id();
        assert!(
            matches!(err, LockError::Held { pid: Some(p), .. } if p == me),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "another ipvsdir is running (pid {me}, pid file {}",
                path.display()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("give this one its own -p and --control-socket"),
            "{msg}"
        );
        // The failed attempt left the holder's file as it was.
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("{me}\n"));
        drop(first);
        // Released: the next one gets it.
        let again = PidLock::acquire(&path).expect("acquire after release");
        drop(again);
    }

    #[test]
    fn drop_removes_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ipvsdir.pid");
        let lock = PidLock::acquire(&path).expect("acquire");
        assert!(path.exists());
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn drop_leaves_a_file_that_replaced_ours() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ipvsdir.pid");
        let lock = PidLock::acquire(&path).expect("acquire");
        std::fs::remove_file(&path).expect("rm");
        std::fs::write(&path, "4242\n").expect("write");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "4242\n");
    }

    #[test]
    fn a_symlink_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("victim");
        std::fs::write(&target, "precious\n").expect("write");
        let path = dir.path().join("ipvsdir.pid");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let err = PidLock::acquire(&path).expect_err("symlink");
        assert!(matches!(err, LockError::Symlink { .. }), "{err:?}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "precious\n"
        );
        // A dangling symlink is not followed to create its target either.
        let dangling = dir.path().join("dangling.pid");
        let nowhere = dir.path().join("nowhere");
        std::os::unix::fs::symlink(&nowhere, &dangling).expect("symlink");
        let err = PidLock::acquire(&dangling).expect_err("dangling symlink");
        assert!(matches!(err, LockError::Symlink { .. }), "{err:?}");
        assert!(!nowhere.exists());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ipvsdir.pid");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        // Were the open to block, the test would hang: run it on a thread
        // and give up after a bound.
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(PidLock::acquire(&p).map(|_| ()));
        });
        let res = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("acquire on a FIFO blocked");
        let err = res.expect_err("FIFO");
        assert!(
            matches!(err, LockError::NotRegular { kind: "FIFO", .. }),
            "{err:?}"
        );
        assert!(path.exists(), "the FIFO is left alone");
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = PidLock::acquire(dir.path()).expect_err("directory");
        // Opening a directory O_RDWR fails with EISDIR before fstat.
        assert!(
            matches!(err, LockError::Open { .. } | LockError::NotRegular { .. }),
            "{err:?}"
        );
    }
}
