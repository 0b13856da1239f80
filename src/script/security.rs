//! Who could change a script that runs as root: keepalived's
//! `check_security()` / `check_script_secure()` rules (keepalived's
//! `lib/notify.c`, 2.2.7), checked against the real keepalived 2.2.7.
//!
//! A script needs protection when it would run with root's uid or gid (or any
//! supplementary group 0), or when the file is set-uid root / set-gid root.
//! Then every element of its path, as written and as resolved through
//! symlinks, from `/` down to the file, must be:
//! - owned by root, and
//! - a file or a directory **without the sticky bit**: neither writable by
//!   others (`o+w`) nor by a non-root group (`g+w` with gid != 0).
//!
//! A sticky directory (`/tmp`, mode 1777) is safe: only root and a file's
//! owner may rename or delete in it, so a root-owned script in a root-owned
//! directory under `/tmp` cannot be replaced. A group-writable element whose
//! group is root (gid 0) is safe too.
//!
//! ipvsdir is stricter than keepalived 2.2.7 in one place: a symlink on the
//! path must itself be owned by root (as newer keepalived checks), since a
//! non-root owner of a symlink in a sticky directory may re-point it.

use std::fmt;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// What is wrong with one element of a script's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsafe {
    /// The element (the script itself, a directory above it, or a symlink).
    pub path: PathBuf,
    pub kind: ElementKind,
    pub problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementKind {
    File,
    Directory,
    Symlink,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Owned by this non-root uid.
    NotOwnedByRoot(u32),
    /// Writable by others or by a non-root group; the permission bits.
    Writable(u32),
    /// It could not be examined.
    Unreadable(String),
}

impl Unsafe {
    /// The operator-facing sentence for script `script` (no trailing period):
    /// `Unsafe permissions found for script '/x/chk.sh': it is writable by a
    /// non-root user (mode 0666) — chmod go-w /x/chk.sh`.
    pub fn message(&self, script: &Path) -> String {
        let p = self.path.display().to_string();
        let subject = if self.path == script {
            "it".to_string()
        } else {
            match self.kind {
                ElementKind::Directory => format!("its directory '{p}'"),
                ElementKind::Symlink => format!("the symlink '{p}' on its path"),
                ElementKind::File => format!("its target '{p}'"),
            }
        };
        let q = shell_words::quote(&p);
        let what = match &self.problem {
            Problem::NotOwnedByRoot(uid) => {
                format!("{subject} is owned by uid {uid}, not root — chown root {q}")
            }
            Problem::Writable(mode) => format!(
                "{subject} is writable by a non-root user (mode {mode:04o}) — chmod go-w {q}"
            ),
            Problem::Unreadable(e) => format!("{subject} cannot be examined: {e}"),
        };
        format!(
            "Unsafe permissions found for script '{}': {what}",
            script.display()
        )
    }
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(&self.path))
    }
}

/// Checks every element of `script`'s path (as written, then as resolved
/// through symlinks when that differs). Relative paths are taken from the
/// current directory. `Err` is the first unsafe element found.
pub fn check_path(script: &Path) -> Result<(), Unsafe> {
    let written = absolute(script);
    walk(&written)?;
    if let Ok(real) = fs::canonicalize(&written)
        && real != written
    {
        walk(&real)?;
    }
    Ok(())
}

/// `check_path` as an operator-facing sentence (see [`Unsafe::message`]).
pub fn check_security(script: &Path) -> Result<(), String> {
    check_path(script).map_err(|u| u.message(script))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| Path::new("/").join(p))
    }
}

fn walk(path: &Path) -> Result<(), Unsafe> {
    let mut prefix = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => continue,
            other => prefix.push(other.as_os_str()),
        }
        check_element(&prefix)?;
    }
    Ok(())
}

fn check_element(p: &Path) -> Result<(), Unsafe> {
    let md = fs::symlink_metadata(p).map_err(|e| Unsafe {
        path: p.to_path_buf(),
        kind: ElementKind::File,
        problem: Problem::Unreadable(e.to_string()),
    })?;
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        ElementKind::Symlink
    } else if ft.is_dir() {
        ElementKind::Directory
    } else {
        ElementKind::File
    };
    let bad = |problem| {
        Err(Unsafe {
            path: p.to_path_buf(),
            kind,
            problem,
        })
    };
    if md.uid() != 0 {
        return bad(Problem::NotOwnedByRoot(md.uid()));
    }
    let mode = md.mode() & 0o7777;
    let sticky_dir = kind == ElementKind::Directory && mode & 0o1000 != 0;
    // Symlink permission bits mean nothing; fifos, sockets and devices are
    // judged like files.
    let judged = kind != ElementKind::Symlink && !sticky_dir;
    if judged && writable_by_non_root(&md) {
        return bad(Problem::Writable(mode));
    }
    Ok(())
}

fn writable_by_non_root(md: &Metadata) -> bool {
    let mode = md.mode();
    (md.gid() != 0 && mode & 0o020 != 0) || mode & 0o002 != 0
}

/// keepalived's `is_executable()`: root may run anything with an x bit; the
/// owner needs u+x; a member of the file's group (primary gid only) needs
/// g+x; anyone else o+x.
pub fn is_executable(md: &Metadata, uid: u32, gid: u32) -> bool {
    let mode = md.mode();
    if uid == 0 {
        mode & 0o111 != 0
    } else if uid == md.uid() {
        mode & 0o100 != 0
    } else if gid == md.gid() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// Does a script with metadata `md`, run as `uid`/`gid`/`groups`, need its
/// path checked? (keepalived: run by root or the root group, or set-uid /
/// set-gid root.)
pub fn needs_protection(md: &Metadata, uid: u32, gid: u32, groups: &[u32]) -> bool {
    let mode = md.mode();
    uid == 0
        || gid == 0
        || groups.contains(&0)
        || (md.uid() == 0 && mode & 0o4100 == 0o4100)
        || (md.gid() == 0 && mode & 0o2010 == 0o2010)
}
