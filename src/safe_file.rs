//! Files the daemon writes as root (reports, dumps, the owned-services
//! list): written whole and never through a path another user controls.
//!
//! - The directory, and every directory above it, must belong to root (or
//!   to us) and not be writable by others unless sticky (`/tmp`): otherwise
//!   another user could swap a component for a symlink of their choosing.
//! - The bytes go to a new file with a random name created with O_EXCL in
//!   that directory (`tempfile`), then renamed over the target: whatever
//!   sits at the target (a planted symlink to /etc/shadow, a FIFO that
//!   would block an open) is replaced, never opened or followed
//!   (keepalived's CVE-2018-19044/19046 class).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SafeFileError {
    #[error(
        "refusing to write {file}: {dir} {why}; use a directory only root can write (the default is /run/ipvsdir)"
    )]
    UnsafeDir {
        file: PathBuf,
        dir: PathBuf,
        why: &'static str,
    },
    #[error("cannot write {file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// Writes `bytes` to `path` atomically (see the module docs), creating its
/// directory (0755) if missing.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), SafeFileError> {
    let io = |source| SafeFileError::Io {
        file: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io)?;
    }
    check_dir(dir, path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".ipvsdir-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    // Readable by the tools that read reports (--dump, monitoring).
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    tmp.as_file().set_permissions(mode).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Checks `dir` and the directories above it (see the module docs); `file`
/// names what is refused in the error.
pub fn check_dir(dir: &Path, file: &Path) -> Result<(), SafeFileError> {
    let euid = nix::unistd::geteuid().as_raw();
    let abs = std::path::absolute(dir).map_err(|source| SafeFileError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    for d in abs.ancestors() {
        let unsafe_dir = |why| SafeFileError::UnsafeDir {
            file: file.to_path_buf(),
            dir: d.to_path_buf(),
            why,
        };
        let m = std::fs::symlink_metadata(d).map_err(|source| SafeFileError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        if m.uid() != 0 && m.uid() != euid {
            return Err(unsafe_dir("belongs to another user"));
        }
        if m.file_type().is_symlink() {
            // A symlink root (or we) made: where it leads is checked as the
            // walk goes on through it.
            continue;
        }
        if !m.is_dir() {
            return Err(unsafe_dir("is not a directory"));
        }
        let sticky = m.mode() & 0o1000 != 0;
        if m.mode() & 0o022 != 0 && !sticky {
            return Err(unsafe_dir("is writable by other users"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn as_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn writes_whole_files_and_replaces_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/report.json");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["report.json"]);
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("shadow");
        std::fs::write(&precious, "precious").unwrap();
        let p = dir.path().join("ipvsdir.data");
        std::os::unix::fs::symlink(&precious, &p).unwrap();
        write(&p, b"dump").unwrap();
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious");
        assert!(
            !std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"dump");
    }

    #[test]
    fn a_planted_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ipvsdir.stats");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        write(&p, b"stats").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"stats");
    }

    #[test]
    fn directories_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = write(&open.join("x"), b"x").unwrap_err();
        assert!(e.to_string().contains("is writable by other users"), "{e}");
        // Sticky, as /tmp: the rename cannot be subverted there.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        write(&open.join("x"), b"x").unwrap();
    }

    #[test]
    fn directories_of_other_users_are_refused() {
        if !as_root() {
            eprintln!("SKIP: chown needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = write(&theirs.join("x"), b"x").unwrap_err();
        assert!(e.to_string().contains("belongs to another user"), "{e}");
    }
}
