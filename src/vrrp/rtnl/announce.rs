//! Announced VIPs as routes: a host route (/32, /128) of type blackhole in
//! the `announce_table`, marked with the `announce_protocol` number, that
//! the local BIRD 2 (`protocol kernel { kernel table N; learn; }`) or FRR
//! (`ip import-table N`) picks up and exports over BGP. The route never
//! forwards a packet: no rule points at its table.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE, NlasIterator};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType as NlRouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use tracing::debug;

use super::error::{Change, Op, RtnlError};
use super::socket::Rtnl;
use crate::config::model::AnnounceGlobals;

/// RTM_NEWROUTE.
const RTM_NEWROUTE: u16 = 24;
/// struct rtmsg.
const ROUTE_HEADER_LEN: usize = 12;
const RTA_DST: u16 = 1;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
/// The metric the kernel gives an IPv6 route that has none (IP6_RT_PRIO_USER);
/// IPv4's is 0.
const IPV6_DEFAULT_METRIC: u32 = 1024;
/// As a delete's scope: match any scope.
const RT_SCOPE_NOWHERE: u8 = 255;

/// `blackhole 10.0.0.1/32 table 100 proto 18`, for messages.
pub fn announce_text(target: &AnnounceGlobals, vip: IpAddr) -> String {
    let len = if vip.is_ipv6() { 128 } else { 32 };
    let mut t = format!(
        "blackhole {vip}/{len} table {} proto {}",
        target.table, target.protocol
    );
    if let Some(m) = target.metric {
        t.push_str(&format!(" metric {m}"));
    }
    t
}

/// The RTM_NEWROUTE / RTM_DELROUTE message of an announced VIP. A delete
/// carries the same table, protocol and metric, so it only ever removes our
/// route.
pub fn announce_message(target: &AnnounceGlobals, vip: IpAddr, delete: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = if vip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    h.destination_prefix_length = if vip.is_ipv6() { 128 } else { 32 };
    h.table = u8::try_from(target.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    h.protocol = RouteProtocol::from(target.protocol);
    h.kind = NlRouteType::BlackHole;
    h.scope = RouteScope::from(if delete { RT_SCOPE_NOWHERE } else { 0 });
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(vip)));
    msg.attributes.push(RouteAttribute::Table(target.table));
    if let Some(metric) = target.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    msg
}

/// The metric the kernel keeps for a route of ours to `vip` with `metric`
/// (the routes of one VIP differ by it).
pub fn kernel_metric(vip: IpAddr, metric: Option<u32>) -> u32 {
    metric.unwrap_or(if vip.is_ipv6() {
        IPV6_DEFAULT_METRIC
    } else {
        0
    })
}

/// From an RTM_NEWROUTE payload: the destination and metric (as
/// [`kernel_metric`]) of a host route in `table` with protocol `protocol`,
/// else None. Parsed by hand (header, RTA_DST, RTA_TABLE, RTA_PRIORITY) so
/// that an attribute this crate does not know cannot hide our routes.
pub fn parse_ours(
    payload: &[u8],
    table: u32,
    protocol: u8,
) -> Result<Option<(IpAddr, u32)>, String> {
    let h = payload
        .get(..ROUTE_HEADER_LEN)
        .ok_or("route message shorter than its header")?;
    let (family, dst_len, header_table, proto) = (i32::from(h[0]), h[1], h[4], h[5]);
    let host_len = match family {
        libc::AF_INET => 32,
        libc::AF_INET6 => 128,
        _ => return Ok(None),
    };
    if proto != protocol || dst_len != host_len {
        return Ok(None);
    }
    let mut route_table = u32::from(header_table);
    let mut dst = None;
    let mut metric = None;
    for nla in NlasIterator::new(&payload[ROUTE_HEADER_LEN..]) {
        let nla = nla.map_err(|e| format!("route attribute: {e}"))?;
        let v = nla.value();
        match nla.kind() {
            RTA_TABLE => {
                let b: [u8; 4] = v
                    .try_into()
                    .map_err(|_| "RTA_TABLE is not 4 bytes".to_string())?;
                route_table = u32::from_ne_bytes(b);
            }
            RTA_PRIORITY => {
                let b: [u8; 4] = v
                    .try_into()
                    .map_err(|_| "RTA_PRIORITY is not 4 bytes".to_string())?;
                metric = Some(u32::from_ne_bytes(b));
            }
            RTA_DST => {
                dst = Some(match family {
                    libc::AF_INET => IpAddr::V4(Ipv4Addr::from(
                        <[u8; 4]>::try_from(v).map_err(|_| "RTA_DST is not 4 bytes".to_string())?,
                    )),
                    _ => IpAddr::V6(Ipv6Addr::from(
                        <[u8; 16]>::try_from(v)
                            .map_err(|_| "RTA_DST is not 16 bytes".to_string())?,
                    )),
                });
            }
            _ => {}
        }
    }
    Ok(dst
        .filter(|_| route_table == table)
        .map(|d| (d, kernel_metric(d, metric))))
}

/// The RTM_GETROUTE dump request for our routes: with strict checking on
/// the socket the kernel returns only routes of `table` and `protocol`
/// (an older kernel ignores the filter; [`parse_ours`] filters again).
pub fn dump_request(target: &AnnounceGlobals, family: AddressFamily) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family;
    msg.header.table = u8::try_from(target.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    msg.header.protocol = RouteProtocol::from(target.protocol);
    // RouteScope's default is universe (0), which strict checking requires.
    msg.attributes.push(RouteAttribute::Table(target.table));
    msg
}

impl Rtnl {
    /// Adds (or replaces: a metric changed) the route of an announced VIP.
    pub async fn announce(&self, target: &AnnounceGlobals, vip: IpAddr) -> Result<(), RtnlError> {
        let op = Op::new(format!("add route {}", announce_text(target, vip)));
        let msg = announce_message(target, vip, false);
        self.change(
            &op,
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &[],
        )
        .await?;
        debug!(op = %op.text, "rtnl");
        Ok(())
    }

    /// Removes the route of an announced VIP; Absent when it is not there.
    pub async fn withdraw(
        &self,
        target: &AnnounceGlobals,
        vip: IpAddr,
    ) -> Result<Change, RtnlError> {
        let op = Op::new(format!("remove route {}", announce_text(target, vip)));
        let msg = announce_message(target, vip, true);
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::DelRoute(msg),
                0,
                &[
                    (libc::ESRCH, Change::Absent),
                    (libc::ENOENT, Change::Absent),
                ],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    /// The routes of ours (protocol) in the table: VIP and metric. Only
    /// that table is dumped on a socket opened with [`Rtnl::open_strict`]
    /// (every exchange bounded by the socket's reply timeout).
    pub async fn announced(
        &self,
        target: &AnnounceGlobals,
    ) -> Result<BTreeSet<(IpAddr, u32)>, RtnlError> {
        let mut out = BTreeSet::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let op = Op::new(format!("list routes of table {}", target.table));
            let msg = RouteNetlinkMessage::GetRoute(dump_request(target, family));
            let replies = match self.dump(&op, msg).await {
                Ok(r) => r,
                // A filtered dump of a table that does not exist (yet).
                Err(e) if e.errno() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            for r in replies.iter().filter(|r| r.msg_type == RTM_NEWROUTE) {
                if let Some(route) = parse_ours(&r.payload, target.table, target.protocol)
                    .map_err(|why| op.malformed(why))?
                {
                    out.insert(route);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Timer;
    use netlink_packet_core::Emitable;

    fn target(table: u32) -> AnnounceGlobals {
        AnnounceGlobals {
            table,
            protocol: 18,
            metric: Some(5),
            withdraw_grace: Timer::secs(2),
            drain_metric: Some(4000),
            drain_time: Timer::secs(10),
        }
    }

    fn bytes(msg: &RouteMessage) -> Vec<u8> {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    #[test]
    fn messages_round_trip_through_our_parser() {
        for (vip, table) in [("10.0.0.1", 100), ("fd00::1", 100), ("10.0.0.2", 1000)] {
            let vip: IpAddr = vip.parse().expect("ip");
            let t = target(table);
            let msg = announce_message(&t, vip, false);
            assert_eq!(msg.header.kind, NlRouteType::BlackHole);
            assert_eq!(msg.header.protocol, RouteProtocol::KeepAlived);
            let b = bytes(&msg);
            assert_eq!(parse_ours(&b, table, 18), Ok(Some((vip, 5))));
            let drained = bytes(&announce_message(&t.drained(), vip, false));
            assert_eq!(parse_ours(&drained, table, 18), Ok(Some((vip, 4000))));
            assert_eq!(parse_ours(&b, table + 1, 18), Ok(None));
            assert_eq!(parse_ours(&b, table, 12), Ok(None));
            assert!(msg.attributes.contains(&RouteAttribute::Priority(5)));
        }
        let del = announce_message(&target(100), "10.0.0.1".parse().expect("ip"), true);
        assert_eq!(u8::from(del.header.scope), RT_SCOPE_NOWHERE);
        // Without a metric: the kernel's default per family.
        let plain = AnnounceGlobals {
            metric: None,
            ..target(100)
        };
        for (vip, m) in [("10.0.0.1", 0), ("fd00::1", 1024)] {
            let vip: IpAddr = vip.parse().expect("ip");
            let b = bytes(&announce_message(&plain, vip, false));
            assert_eq!(parse_ours(&b, 100, 18), Ok(Some((vip, m))));
        }
    }

    #[test]
    fn the_dump_request_names_our_table_and_protocol() {
        for table in [100u32, 1000] {
            let msg = dump_request(&target(table), AddressFamily::Inet);
            let b = bytes(&msg);
            // rtm_family, rtm_dst_len, rtm_src_len, rtm_tos, rtm_table,
            // rtm_protocol, rtm_scope, rtm_type.
            assert_eq!(b[0], libc::AF_INET as u8);
            assert_eq!(&b[1..4], &[0, 0, 0], "strict checking wants these 0");
            assert_eq!(b[4], if table < 256 { table as u8 } else { 0 });
            assert_eq!(b[5], 18);
            assert_eq!(b[6], 0);
            assert!(msg.attributes.contains(&RouteAttribute::Table(table)));
            assert_eq!(msg.attributes.len(), 1);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_ours(&[2, 32], 100, 18).is_err());
        let mut b = bytes(&announce_message(
            &target(100),
            "10.0.0.1".parse().expect("ip"),
            false,
        ));
        b[ROUTE_HEADER_LEN] = 200; // an attribute longer than the message
        assert!(parse_ours(&b, 100, 18).is_err());
        assert_eq!(
            announce_text(&target(7), "10.0.0.1".parse().expect("ip")),
            "blackhole 10.0.0.1/32 table 7 proto 18 metric 5"
        );
    }
}
