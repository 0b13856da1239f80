//! Process-wide settings keepalived's command line makes before the daemon
//! starts: the umask (`-u`), core dumps (`-m`), the network namespace (`-s`).

use std::path::PathBuf;

/// Where `ip netns add NAME` leaves a namespace.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "network namespace '{name}': cannot open {path}: {source} — create it with `ip netns add {name}`"
    )]
    OpenNetns {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network namespace '{name}': cannot enter it: {source} (run as root)")]
    Setns { name: String, source: nix::Error },
    #[error("a network namespace name is a plain name, not '{0}'")]
    BadName(String),
}

/// keepalived's `-u MASK`: a number as C's `strtol(s, NULL, 0)` reads it
/// (`022` octal, `0x12` hex, `18` decimal), only permission bits. None when
/// it is not one.
pub fn parse_umask(text: &str) -> Option<u32> {
    let t = text.trim();
    let value = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        u32::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<u32>().ok()?
    };
    (value & !0o777 == 0).then_some(value)
}

/// Sets the process umask.
pub fn set_umask(bits: u32) {
    // SAFETY: umask(2) only sets the calling process's file mode mask and
    // cannot fail.
    unsafe {
        libc::umask(bits as libc::mode_t);
    }
}

/// keepalived's `-m`: a crash leaves a core dump (RLIMIT_CORE unlimited).
pub fn enable_core_dumps() -> std::io::Result<()> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &unlimited) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// keepalived's `-s NAME`: this thread (call it before any other thread
/// exists) moves into the network namespace `/run/netns/NAME`.
pub fn enter_netns(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::BadName(name.to_string()));
    }
    let path = PathBuf::from(NETNS_DIR).join(name);
    let file = std::fs::File::open(&path).map_err(|source| Error::OpenNetns {
        name: name.to_string(),
        path: path.clone(),
        source,
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| Error::Setns {
        name: name.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_reads_numbers_as_strtol_with_base_0() {
        assert_eq!(parse_umask("022"), Some(0o22));
        assert_eq!(parse_umask("0077"), Some(0o77));
        assert_eq!(parse_umask("0x12"), Some(0x12));
        assert_eq!(parse_umask("18"), Some(18));
        assert_eq!(parse_umask("0"), Some(0));
        assert_eq!(parse_umask("0999"), None);
        assert_eq!(parse_umask("01000"), None);
        assert_eq!(parse_umask("u=rwx"), None);
        assert_eq!(parse_umask(""), None);
    }
}
