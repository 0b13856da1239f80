//! The typed values carried by IPVS messages.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::{BitOr, BitOrAssign};

use crate::Error;
use crate::consts::{
    AF_INET, AF_INET6, IP_VS_IFNAME_MAXLEN, IP_VS_PENAME_MAXLEN, IP_VS_SCHEDNAME_MAXLEN,
};

/// An address family IPVS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `AF_INET` (2).
    Inet,
    /// `AF_INET6` (10).
    Inet6,
}

impl Family {
    /// The `AF_*` number.
    pub fn to_raw(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }

    /// The family of an `AF_*` number, if IPVS knows it.
    pub fn from_raw(af: u16) -> Option<Family> {
        match af {
            AF_INET => Some(Family::Inet),
            AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

/// The transport protocol of an address-keyed service.
///
/// Decoding maps 6, 17 and 132 to the named variants, so a decoded
/// `Other` never holds one of those numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `IPPROTO_TCP` (6).
    Tcp,
    /// `IPPROTO_UDP` (17).
    Udp,
    /// `IPPROTO_SCTP` (132).
    Sctp,
    /// Any other protocol number (the kernel only balances the three above;
    /// `ip_vs_add_service` fails with `EPROTONOSUPPORT` for others).
    Other(u16),
}

impl Protocol {
    /// The `IPPROTO_*` number.
    pub fn to_raw(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
            Protocol::Other(n) => n,
        }
    }

    /// The protocol of an `IPPROTO_*` number, canonicalised.
    pub fn from_raw(n: u16) -> Protocol {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            132 => Protocol::Sctp,
            n => Protocol::Other(n),
        }
    }
}

/// What identifies a virtual service: `<protocol, address, port>` or a
/// firewall mark (per family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// A service on an address and port.
    Addr {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual address; its family is the service's family.
        addr: IpAddr,
        /// Virtual port (0 is the kernel's catch-all port).
        port: u16,
    },
    /// A service selected by `iptables -j MARK`.
    Fwmark {
        /// Family of the packets it matches.
        family: Family,
        /// The mark.
        mark: u32,
    },
}

impl ServiceKey {
    /// The service's address family.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7 IPv6`: the way
    /// `ipvsadm -L -n` names services.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                match protocol {
                    Protocol::Tcp => f.write_str("TCP")?,
                    Protocol::Udp => f.write_str("UDP")?,
                    Protocol::Sctp => f.write_str("SCTP")?,
                    Protocol::Other(n) => write!(f, "proto{n}")?,
                }
                match addr {
                    IpAddr::V4(a) => write!(f, " {a}:{port}"),
                    IpAddr::V6(a) => write!(f, " [{a}]:{port}"),
                }
            }
            ServiceKey::Fwmark { family, mark } => match family {
                Family::Inet => write!(f, "FWM {mark}"),
                Family::Inet6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// The persistence netmask of a service.
///
/// On the wire `IPVS_SVC_ATTR_NETMASK` is a u32 whose meaning depends on the
/// service family: for `AF_INET` it holds the mask's four bytes in network
/// order; for `AF_INET6` it holds the prefix length as a host-order integer,
/// which `ip_vs_add_service` / `ip_vs_edit_service` require to be 1..=128.
/// The variant must match the service family (see [`Service::validate`]);
/// decoding picks the variant from the family, so a mismatched value does
/// not survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// An IPv4 mask such as 255.255.255.0.
    V4(Ipv4Addr),
    /// An IPv6 prefix length.
    V6Prefix(u8),
}

impl Netmask {
    /// The no-aggregation mask ipvsadm uses by default: /32 or /128.
    pub fn host(family: Family) -> Netmask {
        match family {
            Family::Inet => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::Inet6 => Netmask::V6Prefix(128),
        }
    }

    /// The attribute's 4 value bytes.
    pub(crate) fn to_wire(self) -> [u8; 4] {
        match self {
            Netmask::V4(mask) => mask.octets(),
            Netmask::V6Prefix(len) => u32::from(len).to_ne_bytes(),
        }
    }

    /// Reads the attribute's 4 value bytes for a service of `family`.
    pub(crate) fn from_wire(family: Family, raw: [u8; 4]) -> Result<Netmask, Error> {
        match family {
            Family::Inet => Ok(Netmask::V4(Ipv4Addr::from(raw))),
            Family::Inet6 => {
                let len = u32::from_ne_bytes(raw);
                u8::try_from(len)
                    .ok()
                    .filter(|l| *l <= 128)
                    .map(Netmask::V6Prefix)
                    .ok_or(Error::BadPrefix(len))
            }
        }
    }
}

/// `IP_VS_SVC_F_*` service flags.
///
/// Sent as `struct ip_vs_flags { flags, mask }` with an all-ones mask (every
/// flag is set or cleared), as ipvsadm does; the kernel reports the mask as
/// all-ones too, and decoding ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    /// No flag.
    pub const NONE: ServiceFlags = ServiceFlags(0);
    /// `IP_VS_SVC_F_PERSISTENT`: persistent port.
    pub const PERSISTENT: ServiceFlags = ServiceFlags(0x1);
    /// `IP_VS_SVC_F_HASHED`: kernel-internal "hashed entry"; every service
    /// the kernel reports carries it, and `ip_vs_add_service` strips it.
    pub const HASHED: ServiceFlags = ServiceFlags(0x2);
    /// `IP_VS_SVC_F_ONEPACKET`: one-packet scheduling (UDP).
    pub const ONEPACKET: ServiceFlags = ServiceFlags(0x4);
    /// `IP_VS_SVC_F_SCHED1`: `sh-fallback` / `mh-fallback`.
    pub const SCHED1: ServiceFlags = ServiceFlags(0x8);
    /// `IP_VS_SVC_F_SCHED2`: `sh-port` / `mh-port`.
    pub const SCHED2: ServiceFlags = ServiceFlags(0x10);
    /// `IP_VS_SVC_F_SCHED3`: scheduler flag 3.
    pub const SCHED3: ServiceFlags = ServiceFlags(0x20);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: ServiceFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags without the kernel-internal [`ServiceFlags::HASHED`] bit:
    /// what to compare a reported service against a configured one.
    pub fn user(self) -> ServiceFlags {
        ServiceFlags(self.0 & !Self::HASHED.0)
    }
}

impl BitOr for ServiceFlags {
    type Output = ServiceFlags;
    fn bitor(self, rhs: ServiceFlags) -> ServiceFlags {
        ServiceFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for ServiceFlags {
    fn bitor_assign(&mut self, rhs: ServiceFlags) {
        self.0 |= rhs.0;
    }
}

/// Everything NEW/SET_SERVICE need: no `Option` for the fields the kernel
/// demands (`ip_vs_genl_parse_service` with `full_entry`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler module name without `ip_vs_` (`"wrr"`), at most 15 bytes;
    /// `"none"` means no scheduler on kernels that support it.
    pub sched_name: String,
    /// Flags; see [`ServiceFlags`].
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (meaningful with `PERSISTENT`).
    pub timeout: u32,
    /// Persistence netmask; must match the key's family.
    pub netmask: Netmask,
    /// Persistence engine (`"sip"`), if any.
    pub pe_name: Option<String>,
}

impl Service {
    /// A service with no flags, no persistence and the host netmask.
    pub fn new(key: ServiceKey, sched_name: impl Into<String>) -> Service {
        Service {
            key,
            sched_name: sched_name.into(),
            flags: ServiceFlags::NONE,
            timeout: 0,
            netmask: Netmask::host(key.family()),
            pe_name: None,
        }
    }

    /// Checks what the kernel would refuse with `EINVAL` before looking at
    /// its tables: name lengths, the netmask kind and IPv6 prefix range.
    pub fn validate(&self) -> Result<(), Error> {
        check_name(
            "scheduler name",
            &self.sched_name,
            IP_VS_SCHEDNAME_MAXLEN,
            false,
        )?;
        if let Some(pe) = &self.pe_name {
            check_name("persistence engine name", pe, IP_VS_PENAME_MAXLEN, true)?;
        }
        match (self.key.family(), self.netmask) {
            (Family::Inet, Netmask::V4(_)) => Ok(()),
            (Family::Inet6, Netmask::V6Prefix(1..=128)) => Ok(()),
            (Family::Inet6, Netmask::V6Prefix(p)) => Err(Error::Invalid {
                what: "netmask",
                why: format!("IPv6 prefix length {p} is not in 1..=128"),
            }),
            (family, mask) => Err(Error::Invalid {
                what: "netmask",
                why: format!("{mask:?} does not fit a {family:?} service"),
            }),
        }
    }
}

fn check_name(what: &'static str, name: &str, maxlen: usize, empty_ok: bool) -> Result<(), Error> {
    let why = if name.is_empty() && !empty_ok {
        "empty".to_owned()
    } else if name.len() >= maxlen {
        format!("{} bytes, at most {} allowed", name.len(), maxlen - 1)
    } else if name.contains('\0') {
        "contains a NUL byte".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::Invalid { what, why })
}

/// Service or destination counters.
///
/// `IPVS_*_ATTR_STATS` carries CONNS, INPKTS, OUTPKTS and the five rates as
/// u32 (the kernel truncates its 64-bit counters) and the byte counts as
/// u64; `*_STATS64` carries everything as u64. Encoding into a STATS nest
/// truncates the 32-bit fields the same way. Counters missing from a nest
/// decode as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Current connection rate.
    pub cps: u64,
    /// Current incoming packet rate.
    pub inpps: u64,
    /// Current outgoing packet rate.
    pub outpps: u64,
    /// Current incoming byte rate.
    pub inbps: u64,
    /// Current outgoing byte rate.
    pub outbps: u64,
}

/// A service as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceEntry {
    /// The configuration (its flags include [`ServiceFlags::HASHED`]).
    pub service: Service,
    /// `IPVS_SVC_ATTR_STATS`, if sent.
    pub stats: Option<Stats>,
    /// `IPVS_SVC_ATTR_STATS64` (newer kernels), if sent.
    pub stats64: Option<Stats>,
}

impl ServiceEntry {
    /// The most precise counters available: STATS64, else STATS.
    pub fn best_stats(&self) -> Option<Stats> {
        self.stats64.or(self.stats)
    }
}

/// How packets reach a real server (`IP_VS_CONN_F_*` & `FWD_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ForwardMethod {
    /// `IP_VS_CONN_F_MASQ` (0): NAT.
    Masq,
    /// `IP_VS_CONN_F_LOCALNODE` (1): the director itself.
    Local,
    /// `IP_VS_CONN_F_TUNNEL` (2): IP-in-IP / GUE / GRE.
    Tunnel,
    /// `IP_VS_CONN_F_DROUTE` (3): direct routing ("gatewaying").
    Route,
    /// `IP_VS_CONN_F_BYPASS` (4): cache bypass.
    Bypass,
}

impl ForwardMethod {
    /// The `IPVS_DEST_ATTR_FWD_METHOD` value.
    pub fn to_raw(self) -> u32 {
        match self {
            ForwardMethod::Masq => 0,
            ForwardMethod::Local => 1,
            ForwardMethod::Tunnel => 2,
            ForwardMethod::Route => 3,
            ForwardMethod::Bypass => 4,
        }
    }

    /// Reads a FWD_METHOD value, masked with `IP_VS_CONN_F_FWD_MASK` as the
    /// kernel does.
    pub fn from_raw(v: u32) -> Result<ForwardMethod, Error> {
        match v & crate::consts::IP_VS_CONN_F_FWD_MASK {
            0 => Ok(ForwardMethod::Masq),
            1 => Ok(ForwardMethod::Local),
            2 => Ok(ForwardMethod::Tunnel),
            3 => Ok(ForwardMethod::Route),
            4 => Ok(ForwardMethod::Bypass),
            _ => Err(Error::UnknownForwardMethod(v)),
        }
    }
}

/// `IP_VS_CONN_F_TUNNEL_TYPE_*` (newer kernels; older ones only do IPIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TunnelType {
    /// IP-in-IP (0), the only kind on older kernels and the kernel's default.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (1); needs a non-zero port.
    Gue,
    /// GRE (2).
    Gre,
}

impl TunnelType {
    /// The `IPVS_DEST_ATTR_TUN_TYPE` value.
    pub fn to_raw(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }

    /// Reads a TUN_TYPE value.
    pub fn from_raw(v: u8) -> Result<TunnelType, Error> {
        match v {
            0 => Ok(TunnelType::Ipip),
            1 => Ok(TunnelType::Gue),
            2 => Ok(TunnelType::Gre),
            _ => Err(Error::UnknownTunnelType(v)),
        }
    }
}

/// Tunnel encapsulation of a [`ForwardMethod::Tunnel`] destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunnelType,
    /// UDP port for GUE (sent in network order), else 0.
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` bits (host order u16).
    pub flags: u16,
}

impl Tunnel {
    /// `IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM`: no checksum (the value 0).
    pub const NOCSUM: u16 = 0;
    /// `IP_VS_TUNNEL_ENCAP_FLAG_CSUM`: outer checksum.
    pub const CSUM: u16 = 1 << 0;
    /// `IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM`: remote checksum offload.
    pub const REMCSUM: u16 = 1 << 1;
}

/// Everything NEW/SET_DEST need (`ip_vs_genl_parse_dest` with `full_entry`).
///
/// Encoding always sends `IPVS_DEST_ATTR_ADDR_FAMILY` (the family of
/// `addr`), so an IPv4 real server behind an IPv6 service works (the kernel
/// only allows such mixed pools with [`ForwardMethod::Tunnel`]), and sends
/// TUN_TYPE, TUN_PORT and TUN_FLAGS when `tunnel` is `Some`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dest {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (ignored by the kernel for fwmark services with
    /// non-NAT forwarding, where it should be 0 or the service port).
    pub port: u16,
    /// Forwarding method.
    pub fwd: ForwardMethod,
    /// Weight; the kernel stores an `int` and refuses negative values
    /// (`ERANGE`), so at most `i32::MAX`. 0 quiesces the server.
    pub weight: u32,
    /// Upper connection threshold, 0 for none.
    pub u_thresh: u32,
    /// Lower connection threshold; the kernel refuses `l_thresh > u_thresh`
    /// with `ERANGE` even when `u_thresh` is 0.
    pub l_thresh: u32,
    /// Tunnel parameters. Kernels with tunnel types report TUN_* for every
    /// destination, zeros included, so a reported non-tunnel destination
    /// decodes with `Some(Tunnel::default())`; compare with
    /// [`Dest::effective_tunnel`].
    pub tunnel: Option<Tunnel>,
}

impl Dest {
    /// A destination with the given weight, no thresholds and no tunnel
    /// parameters.
    pub fn new(addr: IpAddr, port: u16, fwd: ForwardMethod, weight: u32) -> Dest {
        Dest {
            addr,
            port,
            fwd,
            weight,
            u_thresh: 0,
            l_thresh: 0,
            tunnel: None,
        }
    }

    /// The tunnel parameters as the kernel uses them: `None` unless `fwd`
    /// is [`ForwardMethod::Tunnel`], and the kernel's zero default (IPIP)
    /// when none were given. Two dests with equal `effective_tunnel` and
    /// equal other fields behave the same.
    pub fn effective_tunnel(&self) -> Option<Tunnel> {
        match self.fwd {
            ForwardMethod::Tunnel => Some(self.tunnel.unwrap_or_default()),
            _ => None,
        }
    }

    /// Checks what `ip_vs_add_dest` / `ip_vs_edit_dest` refuse regardless
    /// of the table: a weight above `i32::MAX`, `l_thresh > u_thresh`, a
    /// GUE tunnel without a port; and, given the service family, a
    /// family-mixing destination that does not tunnel.
    pub fn validate(&self, service_family: Family) -> Result<(), Error> {
        if self.weight > i32::MAX as u32 {
            return Err(Error::Invalid {
                what: "weight",
                why: format!("{} is above {}", self.weight, i32::MAX),
            });
        }
        if self.l_thresh > self.u_thresh {
            return Err(Error::Invalid {
                what: "thresholds",
                why: format!(
                    "lower threshold {} above upper threshold {}",
                    self.l_thresh, self.u_thresh
                ),
            });
        }
        if let Some(t) = self.tunnel
            && t.kind == TunnelType::Gue
            && t.port == 0
        {
            return Err(Error::Invalid {
                what: "tunnel",
                why: "GUE needs a non-zero port".to_owned(),
            });
        }
        if Family::of(&self.addr) != service_family && self.fwd != ForwardMethod::Tunnel {
            return Err(Error::Invalid {
                what: "destination family",
                why: format!(
                    "a {:?} destination in a {:?} service needs tunnel forwarding",
                    Family::of(&self.addr),
                    service_family
                ),
            });
        }
        Ok(())
    }
}

/// A destination as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestEntry {
    /// The configuration.
    pub dest: Dest,
    /// Active connections.
    pub active_conns: u32,
    /// Inactive connections.
    pub inact_conns: u32,
    /// Persistence templates.
    pub persist_conns: u32,
    /// `IPVS_DEST_ATTR_STATS`, if sent.
    pub stats: Option<Stats>,
    /// `IPVS_DEST_ATTR_STATS64`, if sent.
    pub stats64: Option<Stats>,
}

impl DestEntry {
    /// The most precise counters available: STATS64, else STATS.
    pub fn best_stats(&self) -> Option<Stats> {
        self.stats64.or(self.stats)
    }
}

/// The role of a connection-sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DaemonState {
    /// `IP_VS_STATE_MASTER` (1): sends sync messages.
    Master,
    /// `IP_VS_STATE_BACKUP` (2): receives them.
    Backup,
}

impl DaemonState {
    /// The `IPVS_DAEMON_ATTR_STATE` value.
    pub fn to_raw(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
        }
    }

    /// Reads a STATE value.
    pub fn from_raw(v: u32) -> Result<DaemonState, Error> {
        match v {
            1 => Ok(DaemonState::Master),
            2 => Ok(DaemonState::Backup),
            _ => Err(Error::UnknownDaemonState(v)),
        }
    }
}

/// A connection-sync daemon (start request or dump entry).
///
/// The optional fields exist on newer kernels, which report them for
/// every running daemon, with the defaults they filled in (port 8848,
/// TTL 1, group 224.0.0.81).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Daemon {
    /// Master or backup.
    pub state: DaemonState,
    /// Interface for multicast, at most 15 bytes.
    pub mcast_ifn: String,
    /// Sync ID (0..=255 is used on the wire of the sync protocol).
    pub sync_id: u32,
    /// UDP payload size for sync messages.
    pub sync_maxlen: Option<u16>,
    /// Multicast group: IPv4 goes in MCAST_GROUP, IPv6 in MCAST_GROUP6;
    /// the kernel requires a multicast address.
    pub mcast_group: Option<IpAddr>,
    /// Base UDP port (host byte order on the wire, unlike other ports).
    pub mcast_port: Option<u16>,
    /// Multicast TTL.
    pub mcast_ttl: Option<u8>,
}

impl Daemon {
    /// A daemon with the kernel's defaults for the optional fields.
    pub fn new(state: DaemonState, mcast_ifn: impl Into<String>, sync_id: u32) -> Daemon {
        Daemon {
            state,
            mcast_ifn: mcast_ifn.into(),
            sync_id,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }

    /// Checks the interface name length and that the group is multicast.
    pub fn validate(&self) -> Result<(), Error> {
        check_name(
            "interface name",
            &self.mcast_ifn,
            IP_VS_IFNAME_MAXLEN,
            false,
        )?;
        if let Some(group) = self.mcast_group
            && !group.is_multicast()
        {
            return Err(Error::Invalid {
                what: "multicast group",
                why: format!("{group} is not a multicast address"),
            });
        }
        Ok(())
    }
}

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`).
/// `None` leaves a value unchanged in SET_CONFIG; GET_CONFIG reports all
/// three (TCP ones only if the kernel has TCP support, likewise UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Timeouts {
    /// Established TCP sessions.
    pub tcp: Option<u32>,
    /// TCP sessions after a FIN.
    pub tcp_fin: Option<u32>,
    /// UDP.
    pub udp: Option<u32>,
}

/// The GET_INFO reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Info {
    /// `IP_VS_VERSION_CODE`, `0x00MMmmpp` (0x010201 for 1.2.1).
    pub version: u32,
    /// Size of the connection hash table.
    pub conn_tab_size: u32,
}

impl Info {
    /// The version as `(major, minor, patch)`.
    pub fn version_triple(&self) -> (u8, u8, u8) {
        let [_, major, minor, patch] = self.version.to_be_bytes();
        (major, minor, patch)
    }

    /// The version as `"1.2.1"`.
    pub fn version_string(&self) -> String {
        let (major, minor, patch) = self.version_triple();
        format!("{major}.{minor}.{patch}")
    }
}
