//! Report files a running daemon keeps under /run/ipvsdir (VRRP states,
//! health) for other invocations (`--dump`) to read: written whole and
//! safely (`safe_file`: a reader never sees half of one, and a planted
//! symlink is never followed), and trusted only while the process that
//! wrote it still runs.

use std::path::Path;

use serde::Serialize;

use crate::safe_file::SafeFileError;
use serde::de::DeserializeOwned;

/// A report that names the process that wrote it.
pub trait Report {
    fn pid(&self) -> u32;
}

/// How a report file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One field a line: small reports that people and scripts read as text.
    Pretty,
    /// One line: large reports (every real server), read by `--dump`.
    Compact,
}

/// Writes `report` as JSON to `path`, atomically.
pub fn write<T: Serialize>(path: &Path, report: &T, layout: Layout) -> Result<(), SafeFileError> {
    let bytes = match layout {
        Layout::Pretty => serde_json::to_vec_pretty(report),
        Layout::Compact => serde_json::to_vec(report),
    }
    .map_err(|e| SafeFileError::Io {
        file: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    crate::safe_file::write(path, &bytes)
}

/// The report at `path`, if it parses and its writer is still running.
pub fn read<T: DeserializeOwned + Report>(path: &Path) -> Option<T> {
    let r: T = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Path::new(&format!("/proc/{}", r.pid()))
        .exists()
        .then_some(r)
}
