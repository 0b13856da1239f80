//! Report files a running daemon keeps under /run/ipvsdir (VRRP states,
//! health) for other invocations (`--dump`) to read: written whole (a
//! temporary file renamed over the old one, so a reader never sees half of
//! one), and trusted only while the process that wrote it still runs.

use std::path::Path;

use serde::Serialize;
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
pub fn write<T: Serialize>(path: &Path, report: &T, layout: Layout) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = match layout {
        Layout::Pretty => serde_json::to_vec_pretty(report),
        Layout::Compact => serde_json::to_vec(report),
    }
    .map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// The report at `path`, if it parses and its writer is still running.
pub fn read<T: DeserializeOwned + Report>(path: &Path) -> Option<T> {
    let r: T = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Path::new(&format!("/proc/{}", r.pid()))
        .exists()
        .then_some(r)
}
