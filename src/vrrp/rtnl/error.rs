//! Errors of the rtnetlink layer, worded for the operator: what failed,
//! what the kernel said, and what to do about it.

use std::io;

/// What became of an idempotent change. "Already there" and "already
/// gone" are normal during takeover and restart, so they are outcomes
/// the caller logs, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The kernel made the change.
    Done,
    /// Add: the address, route or link was already there (EEXIST).
    AlreadyPresent,
    /// Delete: it was not there (EADDRNOTAVAIL, ESRCH, ENODEV for links).
    Absent,
}

/// An rtnetlink request that did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    #[error("cannot {what} the rtnetlink socket: {source}")]
    Socket {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "{op}: permission denied; ipvsdir needs CAP_NET_ADMIN for this \
         (run it as root or grant the capability)"
    )]
    PermissionDenied { op: String },
    #[error("{op}: interface {iface} does not exist (see `ip link show`; check the configuration)")]
    NoSuchInterface { op: String, iface: String },
    #[error("{op}: {}", describe_errno(*errno, kernel_msg.as_deref()))]
    Kernel {
        op: String,
        /// Positive errno.
        errno: i32,
        /// The kernel's extended-ACK text, when it gave one.
        kernel_msg: Option<String>,
    },
    #[error("{op}: malformed reply from the kernel: {why}")]
    Malformed { op: String, why: String },
    #[error("{op}: {why}")]
    Invalid { op: String, why: String },
    #[error("{op}: no reply from the kernel within {secs} s")]
    Timeout { op: String, secs: u64 },
}

impl RtnlError {
    /// The kernel's errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RtnlError::Kernel { errno, .. } => Some(*errno),
            RtnlError::PermissionDenied { .. } => Some(libc::EPERM),
            RtnlError::NoSuchInterface { .. } => Some(libc::ENODEV),
            RtnlError::Socket { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The request an error belongs to: the text that starts the message and
/// the interface to name when the kernel answers ENODEV.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub text: String,
    pub iface: Option<String>,
}

impl Op {
    pub fn new(text: impl Into<String>) -> Op {
        Op {
            text: text.into(),
            iface: None,
        }
    }

    pub fn on(mut self, iface: impl Into<String>) -> Op {
        self.iface = Some(iface.into());
        self
    }

    pub fn malformed(&self, why: impl Into<String>) -> RtnlError {
        RtnlError::Malformed {
            op: self.text.clone(),
            why: why.into(),
        }
    }

    pub fn invalid(&self, why: impl Into<String>) -> RtnlError {
        RtnlError::Invalid {
            op: self.text.clone(),
            why: why.into(),
        }
    }
}

/// Maps a kernel NACK (positive errno) to an error. Only EPERM means
/// missing privileges: EACCES also comes back for "IPv6 is disabled on
/// this device", so it keeps the kernel's own words.
pub(crate) fn from_errno(errno: i32, op: &Op, kernel_msg: Option<String>) -> RtnlError {
    match errno {
        libc::EPERM => RtnlError::PermissionDenied {
            op: op.text.clone(),
        },
        libc::ENODEV => RtnlError::NoSuchInterface {
            op: op.text.clone(),
            iface: op.iface.clone().unwrap_or_else(|| "(unnamed)".into()),
        },
        _ => RtnlError::Kernel {
            op: op.text.clone(),
            errno,
            kernel_msg,
        },
    }
}

/// "File exists (os error 17); kernel: <ext ack>; <what to do>".
fn describe_errno(errno: i32, kernel_msg: Option<&str>) -> String {
    let mut text = io::Error::from_raw_os_error(errno).to_string();
    if let Some(msg) = kernel_msg.filter(|m| !m.is_empty()) {
        text.push_str("; kernel: ");
        text.push_str(msg);
    }
    if let Some(hint) = hint(errno) {
        text.push_str("; ");
        text.push_str(hint);
    }
    text
}

fn hint(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EEXIST => "it already exists",
        libc::ENETUNREACH => {
            "the gateway is not on a connected network: name the interface with `dev` \
             or configure an address that covers the gateway"
        }
        libc::EADDRNOTAVAIL => {
            "the address is not configured here (a route's `src` must be a local address)"
        }
        libc::EACCES => "is IPv6 disabled on this interface (net.ipv6.conf.<if>.disable_ipv6)?",
        libc::EAFNOSUPPORT => "this address family is not available; is IPv6 disabled on the host?",
        libc::EOPNOTSUPP => {
            "this kernel does not support the request (a missing module such as macvlan?)"
        }
        libc::EINVAL => "the kernel rejected the request as invalid; check the configuration line",
        libc::ERANGE => "a value is out of range (prefix length, label or name length?)",
        libc::ENOBUFS | libc::ENOMEM => "the kernel is short of memory; it will be retried",
        libc::EBUSY => "the object is busy; retry later",
        libc::ESRCH | libc::ENOENT => "no such object",
        libc::EINTR => "the kernel tables kept changing while being read; retry",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_says_which_capability() {
        let err = from_errno(libc::EPERM, &Op::new("add address 10.0.0.1/24"), None);
        let text = err.to_string();
        assert!(
            text.starts_with("add address 10.0.0.1/24: permission denied"),
            "{text}"
        );
        assert!(text.contains("CAP_NET_ADMIN"), "{text}");
        assert_eq!(err.errno(), Some(libc::EPERM));
    }

    #[test]
    fn enodev_names_the_interface() {
        let op = Op::new("look up interface eth9").on("eth9");
        let text = from_errno(libc::ENODEV, &op, None).to_string();
        assert!(text.contains("interface eth9 does not exist"), "{text}");
    }

    #[test]
    fn other_errno_keeps_kernel_text_and_hint() {
        let op = Op::new("add route 10.1.0.0/16 via 192.0.2.1");
        let err = from_errno(
            libc::ENETUNREACH,
            &op,
            Some("Nexthop has invalid gateway".into()),
        );
        let text = err.to_string();
        assert!(text.contains("Network is unreachable"), "{text}");
        assert!(
            text.contains("kernel: Nexthop has invalid gateway"),
            "{text}"
        );
        assert!(text.contains("name the interface with `dev`"), "{text}");
        assert_eq!(err.errno(), Some(libc::ENETUNREACH));
    }

    #[test]
    fn eacces_is_not_reported_as_missing_privileges() {
        let err = from_errno(libc::EACCES, &Op::new("add address fd00::1/64"), None);
        assert!(matches!(err, RtnlError::Kernel { .. }));
        assert!(err.to_string().contains("IPv6 disabled"), "{err}");
    }
}
