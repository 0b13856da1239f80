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
//! Status: the crate is a placeholder until the IPVS issue lands; the
//! module layout above is its contract.

/// The generic-netlink family name the kernel registers for IPVS.
pub const IPVS_GENL_NAME: &str = "IPVS";

/// The family version the kernel speaks (`IPVS_GENL_VERSION`).
pub const IPVS_GENL_VERSION: u8 = 0x1;
