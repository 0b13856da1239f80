//! Decoding and validation errors.

/// Why bytes could not be decoded as an IPVS message, or why a message
/// would be refused by the kernel ([`crate::IpvsMessage::validate`]).
///
/// `scope` is the attribute set the problem was found in: `"command"`
/// (top level), `"info"`, `"service"`, `"dest"`, `"daemon"` or `"stats"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The attribute stream itself is broken (a length field that runs
    /// past the buffer, a header cut short, ...).
    #[error("malformed {scope} attributes: {reason}")]
    Malformed {
        /// Attribute set being walked.
        scope: &'static str,
        /// What netlink-packet-core reported.
        reason: String,
    },
    /// The generic-netlink command is not one IPVS defines.
    #[error("unknown IPVS command {0}")]
    UnknownCommand(u8),
    /// An attribute the command needs is absent.
    #[error("{scope} attribute {attr} missing")]
    Missing {
        /// Attribute set.
        scope: &'static str,
        /// Attribute name as in `ip_vs.h`, without its prefix.
        attr: &'static str,
    },
    /// A fixed-size attribute has the wrong size.
    #[error("{scope} attribute {attr}: expected {expected} bytes, got {got}")]
    BadLength {
        /// Attribute set.
        scope: &'static str,
        /// Attribute name.
        attr: &'static str,
        /// Size the layout demands.
        expected: usize,
        /// Size received.
        got: usize,
    },
    /// An address attribute is neither 4 nor 16 bytes long, or is 4 bytes
    /// for an IPv6 family.
    #[error("address of {0} bytes")]
    AddressLength(usize),
    /// A string attribute is not UTF-8.
    #[error("{scope} attribute {attr} is not valid UTF-8")]
    BadString {
        /// Attribute set.
        scope: &'static str,
        /// Attribute name.
        attr: &'static str,
    },
    /// An address family other than `AF_INET` (2) or `AF_INET6` (10).
    #[error("unsupported address family {0}")]
    UnknownFamily(u16),
    /// A forwarding method outside MASQ..BYPASS.
    #[error("unknown forwarding method {0}")]
    UnknownForwardMethod(u32),
    /// A tunnel type outside IPIP, GUE, GRE.
    #[error("unknown tunnel type {0}")]
    UnknownTunnelType(u8),
    /// A sync daemon state other than MASTER (1) or BACKUP (2).
    #[error("unknown sync daemon state {0}")]
    UnknownDaemonState(u32),
    /// An IPv6 service netmask (a prefix length) above 128.
    #[error("IPv6 netmask prefix length {0} out of range")]
    BadPrefix(u32),
    /// A value the encoder would send but the kernel refuses
    /// (from [`crate::IpvsMessage::validate`] and friends).
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Field concerned.
        what: &'static str,
        /// Rule broken.
        why: String,
    },
}

impl From<Error> for netlink_packet_core::DecodeError {
    fn from(e: Error) -> Self {
        netlink_packet_core::DecodeError::from(e.to_string())
    }
}
