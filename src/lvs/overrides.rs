//! `--persist-overrides`: the operator's overrides kept in a file across
//! restarts (reloads keep them in memory in any case).

use std::path::Path;

use crate::lvs::director::Saved;

/// Where they are kept by default (survives reboots, as drains for
/// maintenance should).
pub const OVERRIDES_STATE: &str = "/var/lib/ipvsdir/overrides.json";

/// The kept overrides; none when the file is missing. A damaged file is
/// reported and ignored (the real servers go back to their checkers).
pub fn load(path: &Path) -> Vec<Saved> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(
                "{}: not a list of operator overrides ({e}); starting without them",
                path.display()
            );
            Vec::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(
                "{}: {e}; starting without operator overrides",
                path.display()
            );
            Vec::new()
        }
    }
}

/// Writes them atomically and safely (`safe_file`).
pub fn save(path: &Path, list: &[Saved]) -> Result<(), crate::safe_file::SafeFileError> {
    let mut text = serde_json::to_vec_pretty(list).unwrap_or_default();
    text.push(b'\n');
    crate::safe_file::write(path, &text)
}
