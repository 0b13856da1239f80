//! # ipvs-sys: the IPVS generic-netlink wire format
//!
//! The Linux kernel exposes its IP Virtual Server table (the "LVS" load
//! balancer) through a generic-netlink family named `"IPVS"` (version 1),
//! defined in `include/uapi/linux/ip_vs.h` and served by
//! `net/netfilter/ipvs/ip_vs_ctl.c`. This crate holds that wire format and
//! nothing else:
//!
//! - the command set (`NEW/SET/DEL/GET_SERVICE`, `NEW/SET/DEL/GET_DEST`,
//!   `NEW/DEL/GET_DAEMON`, `SET/GET_CONFIG`, `GET_INFO`, `ZERO`, `FLUSH`);
//! - the nested attributes of services, destinations, sync daemons, the
//!   info and timeout replies, for IPv4 and IPv6;
//! - typed structs that encode to and decode from netlink messages both
//!   ways, built on the `netlink-packet-generic` / `netlink-packet-core`
//!   traits, so a dump can be parsed and a request re-read.
//!
//! There is no policy here (what the table *should* be is `ipvsdir::lvs`)
//! and no socket handling beyond what encoding needs.
//!
//! Status: complete for the kernel's genl interface up to Linux 6.x
//! (tunnel types, STATS64, daemon multicast options); every message
//! round-trips, decoding never panics, and a `cargo fuzz` target
//! (`ipvs_decode`) exercises the decoder.
//!
//! ## Use
//!
//! ```
//! use ipvs_sys::{IpvsMessage, Netmask, Protocol, Service, ServiceFlags, ServiceKey};
//! use netlink_packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_REQUEST};
//! use netlink_packet_generic::GenlMessage;
//!
//! let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 };
//! let mut svc = Service::new(key, "wrr");
//! svc.flags = ServiceFlags::PERSISTENT;
//! svc.timeout = 300;
//! svc.netmask = Netmask::V4("255.255.255.0".parse().unwrap());
//!
//! let mut genl = GenlMessage::from_payload(IpvsMessage::NewService(svc));
//! genl.set_resolved_family_id(0x1c); // from the genl controller, at run time
//! let mut msg = NetlinkMessage::from(genl);
//! msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
//! msg.finalize();
//! let mut buf = vec![0; msg.buffer_len()];
//! msg.serialize(&mut buf);
//!
//! let back = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&buf).unwrap();
//! assert_eq!(back, msg);
//! ```
//!
//! For the decoding rules of commands shared by requests and replies see
//! [`IpvsMessage`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
pub mod consts;
mod error;
mod message;
mod types;

pub use consts::{IPVS_GENL_NAME, IPVS_GENL_VERSION};
pub use error::Error;
pub use message::{Direction, IpvsMessage};
pub use types::{
    Daemon, DaemonState, Dest, DestEntry, Family, ForwardMethod, Info, Netmask, Protocol, Service,
    ServiceEntry, ServiceFlags, ServiceKey, Stats, Timeouts, Tunnel, TunnelType,
};

/// The crate's dependencies, re-exported so callers use the same versions.
pub use netlink_packet_core;
/// See [`netlink_packet_core`].
pub use netlink_packet_generic;
