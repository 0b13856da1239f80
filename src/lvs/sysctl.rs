//! Writing the IPVS sysctls (`lvs_sysctl`): `/proc/sys/net/ipv4/vs/NAME`
//! of this process's network namespace. The names come from a fixed list
//! ([`LvsSysctls::ALL`](crate::config::model::LvsSysctls::ALL)), never from
//! the file, and the files are opened write-only without following a
//! symlink, so nothing but those files can be written.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where the IPVS sysctls live (per network namespace).
pub const DIR: &str = "/proc/sys/net/ipv4/vs";

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("{} is not an IPVS sysctl ipvsdir manages", .0)]
    Unknown(String),
    #[error(
        "cannot set net.ipv4.vs.{name}={value} ({}): {source}{hint}",
        path.display()
    )]
    Write {
        name: String,
        value: u8,
        path: PathBuf,
        source: std::io::Error,
        hint: &'static str,
    },
}

/// Writes `value` to `net.ipv4.vs.NAME`.
pub fn write(name: &str, value: u8) -> Result<(), SysctlError> {
    if !crate::config::model::LvsSysctls::ALL
        .iter()
        .any(|(n, _)| *n == name)
    {
        return Err(SysctlError::Unknown(name.to_string()));
    }
    let path = PathBuf::from(DIR).join(name);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()));
    result.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => {
                " (no IPVS in this kernel or namespace, or a kernel without this sysctl: load ip_vs)"
            }
            std::io::ErrorKind::PermissionDenied => " (needs root)",
            _ => "",
        };
        SysctlError::Write {
            name: name.to_string(),
            value,
            path,
            source,
            hint,
        }
    })
}

/// Reads `net.ipv4.vs.NAME` (for tests and diagnostics).
pub fn read(name: &str) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(PathBuf::from(DIR).join(name))?
        .trim()
        .to_string())
}
