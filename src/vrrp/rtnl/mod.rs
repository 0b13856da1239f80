//! rtnetlink for the VRRP driver: interface lookups and link events
//! (track_interface), VIPs and virtual routes marked with protocol
//! RTPROT_KEEPALIVED (18) as keepalived marks them, and VMAC macvlans.
//!
//! Message building and reply parsing are plain functions; [`Rtnl`] only
//! carries them over an async NETLINK_ROUTE socket. Sockets belong to the
//! network namespace of the thread that opens them.

mod addr;
mod announce;
mod error;
mod events;
mod link;
mod route;
mod rule;
mod socket;
mod vmac;

pub use addr::{
    AddrEntry, AddrFilter, RTPROT_KEEPALIVED, check_vip, parse_addr, scope_number,
    select_link_local_ipv6, select_primary_ipv4, vip_add_message, vip_del_message, vip_text,
};
pub use announce::{announce_message, announce_text, dump_request, kernel_metric, parse_ours};
pub use error::{Change, RtnlError};
pub use events::{LinkEvent, LinkStates, LinkWatch};
pub use link::{IFNAME_MAX, LinkInfo, check_ifname, parse_link};
pub use route::{TABLE_MAIN, check_route, needs_default_dev, route_message, route_text};
pub use rule::{rule_message, rule_text};
pub use socket::Rtnl;
pub use vmac::{mac_text, macvlan_message, vmac_address};
