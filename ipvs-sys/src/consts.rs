//! The numbers of `include/uapi/linux/ip_vs.h` that appear on the wire.
//!
//! The typed API in this crate never needs them; they are public for
//! callers that log raw messages or build their own tests.

/// The generic-netlink family name the kernel registers for IPVS.
pub const IPVS_GENL_NAME: &str = "IPVS";
/// The family version the kernel speaks (`IPVS_GENL_VERSION`).
pub const IPVS_GENL_VERSION: u8 = 0x1;

/// `AF_INET`, as carried by `IPVS_SVC_ATTR_AF` and `IPVS_DEST_ATTR_ADDR_FAMILY`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// `IPVS_CMD_UNSPEC`: never valid.
pub const IPVS_CMD_UNSPEC: u8 = 0;
/// `IPVS_CMD_NEW_SERVICE`: add a service; also the command of service replies.
pub const IPVS_CMD_NEW_SERVICE: u8 = 1;
/// `IPVS_CMD_SET_SERVICE`: modify a service.
pub const IPVS_CMD_SET_SERVICE: u8 = 2;
/// `IPVS_CMD_DEL_SERVICE`: delete a service.
pub const IPVS_CMD_DEL_SERVICE: u8 = 3;
/// `IPVS_CMD_GET_SERVICE`: get one service (doit) or dump all (dumpit).
pub const IPVS_CMD_GET_SERVICE: u8 = 4;
/// `IPVS_CMD_NEW_DEST`: add a destination; also the command of dest replies.
pub const IPVS_CMD_NEW_DEST: u8 = 5;
/// `IPVS_CMD_SET_DEST`: modify a destination.
pub const IPVS_CMD_SET_DEST: u8 = 6;
/// `IPVS_CMD_DEL_DEST`: delete a destination.
pub const IPVS_CMD_DEL_DEST: u8 = 7;
/// `IPVS_CMD_GET_DEST`: dump the destinations of one service (dump only).
pub const IPVS_CMD_GET_DEST: u8 = 8;
/// `IPVS_CMD_NEW_DAEMON`: start a sync daemon; also the command of daemon replies.
pub const IPVS_CMD_NEW_DAEMON: u8 = 9;
/// `IPVS_CMD_DEL_DAEMON`: stop a sync daemon.
pub const IPVS_CMD_DEL_DAEMON: u8 = 10;
/// `IPVS_CMD_GET_DAEMON`: dump the running sync daemons (dump only).
pub const IPVS_CMD_GET_DAEMON: u8 = 11;
/// `IPVS_CMD_SET_CONFIG`: set timeouts; also the command of the GET_CONFIG reply.
pub const IPVS_CMD_SET_CONFIG: u8 = 12;
/// `IPVS_CMD_GET_CONFIG`: read the timeouts.
pub const IPVS_CMD_GET_CONFIG: u8 = 13;
/// `IPVS_CMD_SET_INFO`: only used as the command of the GET_INFO reply.
pub const IPVS_CMD_SET_INFO: u8 = 14;
/// `IPVS_CMD_GET_INFO`: read the version and the connection table size.
pub const IPVS_CMD_GET_INFO: u8 = 15;
/// `IPVS_CMD_ZERO`: zero the counters of one service or of all.
pub const IPVS_CMD_ZERO: u8 = 16;
/// `IPVS_CMD_FLUSH`: delete every service and destination.
pub const IPVS_CMD_FLUSH: u8 = 17;

/// `IPVS_CMD_ATTR_SERVICE` (nested).
pub const IPVS_CMD_ATTR_SERVICE: u16 = 1;
/// `IPVS_CMD_ATTR_DEST` (nested).
pub const IPVS_CMD_ATTR_DEST: u16 = 2;
/// `IPVS_CMD_ATTR_DAEMON` (nested).
pub const IPVS_CMD_ATTR_DAEMON: u16 = 3;
/// `IPVS_CMD_ATTR_TIMEOUT_TCP` (u32, seconds).
pub const IPVS_CMD_ATTR_TIMEOUT_TCP: u16 = 4;
/// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN` (u32, seconds).
pub const IPVS_CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
/// `IPVS_CMD_ATTR_TIMEOUT_UDP` (u32, seconds).
pub const IPVS_CMD_ATTR_TIMEOUT_UDP: u16 = 6;

/// `IPVS_SVC_ATTR_AF` (u16).
pub const IPVS_SVC_ATTR_AF: u16 = 1;
/// `IPVS_SVC_ATTR_PROTOCOL` (u16).
pub const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
/// `IPVS_SVC_ATTR_ADDR` (16 bytes, `union nf_inet_addr`).
pub const IPVS_SVC_ATTR_ADDR: u16 = 3;
/// `IPVS_SVC_ATTR_PORT` (be16).
pub const IPVS_SVC_ATTR_PORT: u16 = 4;
/// `IPVS_SVC_ATTR_FWMARK` (u32).
pub const IPVS_SVC_ATTR_FWMARK: u16 = 5;
/// `IPVS_SVC_ATTR_SCHED_NAME` (NUL-terminated string).
pub const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
/// `IPVS_SVC_ATTR_FLAGS` (`struct ip_vs_flags`, 8 bytes).
pub const IPVS_SVC_ATTR_FLAGS: u16 = 7;
/// `IPVS_SVC_ATTR_TIMEOUT` (u32, seconds).
pub const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
/// `IPVS_SVC_ATTR_NETMASK` (u32; see [`crate::Netmask`]).
pub const IPVS_SVC_ATTR_NETMASK: u16 = 9;
/// `IPVS_SVC_ATTR_STATS` (nested, 32-bit counters).
pub const IPVS_SVC_ATTR_STATS: u16 = 10;
/// `IPVS_SVC_ATTR_PE_NAME` (NUL-terminated string).
pub const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
/// `IPVS_SVC_ATTR_STATS64` (nested, 64-bit counters).
pub const IPVS_SVC_ATTR_STATS64: u16 = 12;

/// `IPVS_DEST_ATTR_ADDR` (16 bytes).
pub const IPVS_DEST_ATTR_ADDR: u16 = 1;
/// `IPVS_DEST_ATTR_PORT` (be16).
pub const IPVS_DEST_ATTR_PORT: u16 = 2;
/// `IPVS_DEST_ATTR_FWD_METHOD` (u32).
pub const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
/// `IPVS_DEST_ATTR_WEIGHT` (u32; a kernel `int` that must be `>= 0`).
pub const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
/// `IPVS_DEST_ATTR_U_THRESH` (u32).
pub const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
/// `IPVS_DEST_ATTR_L_THRESH` (u32).
pub const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
/// `IPVS_DEST_ATTR_ACTIVE_CONNS` (u32, replies only).
pub const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
/// `IPVS_DEST_ATTR_INACT_CONNS` (u32, replies only).
pub const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
/// `IPVS_DEST_ATTR_PERSIST_CONNS` (u32, replies only).
pub const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
/// `IPVS_DEST_ATTR_STATS` (nested, 32-bit counters).
pub const IPVS_DEST_ATTR_STATS: u16 = 10;
/// `IPVS_DEST_ATTR_ADDR_FAMILY` (u16).
pub const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
/// `IPVS_DEST_ATTR_STATS64` (nested, 64-bit counters).
pub const IPVS_DEST_ATTR_STATS64: u16 = 12;
/// `IPVS_DEST_ATTR_TUN_TYPE` (u8).
pub const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
/// `IPVS_DEST_ATTR_TUN_PORT` (be16).
pub const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
/// `IPVS_DEST_ATTR_TUN_FLAGS` (u16).
pub const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

/// `IPVS_DAEMON_ATTR_STATE` (u32).
pub const IPVS_DAEMON_ATTR_STATE: u16 = 1;
/// `IPVS_DAEMON_ATTR_MCAST_IFN` (NUL-terminated string).
pub const IPVS_DAEMON_ATTR_MCAST_IFN: u16 = 2;
/// `IPVS_DAEMON_ATTR_SYNC_ID` (u32).
pub const IPVS_DAEMON_ATTR_SYNC_ID: u16 = 3;
/// `IPVS_DAEMON_ATTR_SYNC_MAXLEN` (u16).
pub const IPVS_DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
/// `IPVS_DAEMON_ATTR_MCAST_GROUP` (`struct in_addr`, 4 bytes).
pub const IPVS_DAEMON_ATTR_MCAST_GROUP: u16 = 5;
/// `IPVS_DAEMON_ATTR_MCAST_GROUP6` (`struct in6_addr`, 16 bytes).
pub const IPVS_DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
/// `IPVS_DAEMON_ATTR_MCAST_PORT` (u16, host byte order: the kernel reads it
/// with `nla_get_u16` and applies `htons` itself).
pub const IPVS_DAEMON_ATTR_MCAST_PORT: u16 = 7;
/// `IPVS_DAEMON_ATTR_MCAST_TTL` (u8).
pub const IPVS_DAEMON_ATTR_MCAST_TTL: u16 = 8;

/// `IPVS_STATS_ATTR_CONNS`.
pub const IPVS_STATS_ATTR_CONNS: u16 = 1;
/// `IPVS_STATS_ATTR_INPKTS`.
pub const IPVS_STATS_ATTR_INPKTS: u16 = 2;
/// `IPVS_STATS_ATTR_OUTPKTS`.
pub const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
/// `IPVS_STATS_ATTR_INBYTES` (u64 in both nests).
pub const IPVS_STATS_ATTR_INBYTES: u16 = 4;
/// `IPVS_STATS_ATTR_OUTBYTES` (u64 in both nests).
pub const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
/// `IPVS_STATS_ATTR_CPS`.
pub const IPVS_STATS_ATTR_CPS: u16 = 6;
/// `IPVS_STATS_ATTR_INPPS`.
pub const IPVS_STATS_ATTR_INPPS: u16 = 7;
/// `IPVS_STATS_ATTR_OUTPPS`.
pub const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
/// `IPVS_STATS_ATTR_INBPS`.
pub const IPVS_STATS_ATTR_INBPS: u16 = 9;
/// `IPVS_STATS_ATTR_OUTBPS`.
pub const IPVS_STATS_ATTR_OUTBPS: u16 = 10;
/// `IPVS_STATS_ATTR_PAD`: alignment filler before u64 attributes; ignored.
pub const IPVS_STATS_ATTR_PAD: u16 = 11;

/// `IPVS_INFO_ATTR_VERSION` (u32, `0x00MMmmpp`).
pub const IPVS_INFO_ATTR_VERSION: u16 = 1;
/// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (u32).
pub const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

/// `IP_VS_SCHEDNAME_MAXLEN`: buffer size, NUL included (so 15 characters).
pub const IP_VS_SCHEDNAME_MAXLEN: usize = 16;
/// `IP_VS_PENAME_MAXLEN`: buffer size, NUL included.
pub const IP_VS_PENAME_MAXLEN: usize = 16;
/// `IP_VS_IFNAME_MAXLEN`: buffer size, NUL included.
pub const IP_VS_IFNAME_MAXLEN: usize = 16;

/// `IP_VS_CONN_F_FWD_MASK`: the kernel masks FWD_METHOD with this.
pub const IP_VS_CONN_F_FWD_MASK: u32 = 0x7;

pub(crate) const CMD_ATTR_NAMES: &[&str] = &[
    "UNSPEC",
    "SERVICE",
    "DEST",
    "DAEMON",
    "TIMEOUT_TCP",
    "TIMEOUT_TCP_FIN",
    "TIMEOUT_UDP",
];

pub(crate) const INFO_ATTR_NAMES: &[&str] = &["UNSPEC", "VERSION", "CONN_TAB_SIZE"];

pub(crate) const SVC_ATTR_NAMES: &[&str] = &[
    "UNSPEC",
    "AF",
    "PROTOCOL",
    "ADDR",
    "PORT",
    "FWMARK",
    "SCHED_NAME",
    "FLAGS",
    "TIMEOUT",
    "NETMASK",
    "STATS",
    "PE_NAME",
    "STATS64",
];

pub(crate) const DEST_ATTR_NAMES: &[&str] = &[
    "UNSPEC",
    "ADDR",
    "PORT",
    "FWD_METHOD",
    "WEIGHT",
    "U_THRESH",
    "L_THRESH",
    "ACTIVE_CONNS",
    "INACT_CONNS",
    "PERSIST_CONNS",
    "STATS",
    "ADDR_FAMILY",
    "STATS64",
    "TUN_TYPE",
    "TUN_PORT",
    "TUN_FLAGS",
];

pub(crate) const DAEMON_ATTR_NAMES: &[&str] = &[
    "UNSPEC",
    "STATE",
    "MCAST_IFN",
    "SYNC_ID",
    "SYNC_MAXLEN",
    "MCAST_GROUP",
    "MCAST_GROUP6",
    "MCAST_PORT",
    "MCAST_TTL",
];

pub(crate) const STATS_ATTR_NAMES: &[&str] = &[
    "UNSPEC", "CONNS", "INPKTS", "OUTPKTS", "INBYTES", "OUTBYTES", "CPS", "INPPS", "OUTPPS",
    "INBPS", "OUTBPS", "PAD",
];
