//! Why a kernel request failed, in words an operator can act on. Pure (no
//! socket): the director core reads these errors to decide what to retry.

use super::diff::Op;
use super::format::addr_port;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "the kernel has no IPVS: load the ip_vs module (`modprobe ip_vs`); on a machine without it, use scripts/kernel-vm"
    )]
    NoIpvs,
    #[error("{what}: permission denied: ipvsdir needs CAP_NET_ADMIN (run it as root)")]
    Permission { what: String },
    #[error("{what}: {message}")]
    Refused {
        what: String,
        errno: i32,
        message: String,
    },
    #[error(
        "the kernel did not answer an IPVS request within {0} s (netlink); the request is retried"
    )]
    Timeout(u64),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot decode the kernel's reply: {0}")]
    Decode(String),
    /// `lvs_sysctl`: one or more sysctls could not be written.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Sysctl(Vec<super::sysctl::SysctlError>),
}

impl KernelError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Refused { errno, .. } => Some(*errno),
            KernelError::Permission { .. } => Some(libc::EPERM),
            _ => None,
        }
    }
}

pub(crate) fn errno_message(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// What an op is, for error messages an operator can act on.
pub fn describe(op: &Op) -> String {
    match op {
        Op::AddService(s) => format!("add service {}", s.key),
        Op::EditService(s) => format!("edit service {}", s.key),
        Op::DelService(k) => format!("delete service {k}"),
        Op::AddDest(k, d) => format!("add real server {} to {k}", addr_port(d.addr, d.port)),
        Op::EditDest(k, d) => format!("edit real server {} of {k}", addr_port(d.addr, d.port)),
        Op::DelDest(k, (a, p)) => format!("delete real server {} from {k}", addr_port(*a, *p)),
    }
}

/// The kernel's errno for an op, in words (as ipvsadm's table has them, plus what to do).
pub(crate) fn op_error_message(op: &Op, errno: i32) -> String {
    match (op, errno) {
        (Op::AddService(s) | Op::EditService(s), libc::ENOENT) => format!(
            "scheduler '{}'{} is not available in this kernel (no ip_vs_{} module; twos needs Linux 6.2+)",
            s.sched_name,
            s.pe_name
                .as_ref()
                .map(|p| format!(" or persistence engine '{p}'"))
                .unwrap_or_default(),
            s.sched_name
        ),
        (Op::AddService(_), libc::EEXIST) => "service already exists".into(),
        (Op::AddDest(..), libc::EEXIST) => "real server already exists".into(),
        (_, libc::ESRCH) => "no such service".into(),
        (Op::EditDest(..) | Op::DelDest(..), libc::ENOENT) => "no such real server".into(),
        (_, libc::EINVAL) => {
            "invalid request (address not unicast, bad weight or a kernel without this feature)"
                .into()
        }
        (_, libc::EAFNOSUPPORT) => "address family not supported for this service".into(),
        _ => errno_message(errno),
    }
}

/// Whether an op's failure means the table changed under us (worth a re-read).
pub fn is_conflict(op: &Op, errno: i32) -> bool {
    matches!(
        (op, errno),
        (Op::AddService(_) | Op::AddDest(..), libc::EEXIST)
            | (
                Op::EditService(_) | Op::DelService(_) | Op::AddDest(..),
                libc::ESRCH
            )
            | (
                Op::EditDest(..) | Op::DelDest(..),
                libc::ENOENT | libc::ESRCH
            )
    )
}
