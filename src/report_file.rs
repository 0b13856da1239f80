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

/// Writes `report` as compact JSON to `path`, atomically.
pub fn write<T: Serialize>(path: &Path, report: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(report).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}

/// The report at `path`, if it parses and its writer is still running.
pub fn read<T: DeserializeOwned + Report>(path: &Path) -> Option<T> {
    let r: T = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Path::new(&format!("/proc/{}", r.pid()))
        .exists()
        .then_some(r)
}
