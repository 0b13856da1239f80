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
const RTA_TABLE: u16 = 15;
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

/// From an RTM_NEWROUTE payload: the destination of a host route in
/// `table` with protocol `protocol`, else None. Parsed by hand (header,
/// RTA_DST, RTA_TABLE) so that an attribute this crate does not know
/// cannot hide our routes.
pub fn parse_ours(payload: &[u8], table: u32, protocol: u8) -> Result<Option<IpAddr>, String> {
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
    Ok(dst.filter(|_| route_table == table))
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

    /// The VIPs that have a route of ours (protocol) in the table.
    pub async fn announced(&self, target: &AnnounceGlobals) -> Result<BTreeSet<IpAddr>, RtnlError> {
        let mut out = BTreeSet::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let op = Op::new(format!("list routes of table {}", target.table));
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            let replies = self.dump(&op, RouteNetlinkMessage::GetRoute(msg)).await?;
            for r in replies.iter().filter(|r| r.msg_type == RTM_NEWROUTE) {
                if let Some(vip) = parse_ours(&r.payload, target.table, target.protocol)
                    .map_err(|why| op.malformed(why))?
                {
                    out.insert(vip);
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
            assert_eq!(parse_ours(&b, table, 18), Ok(Some(vip)));
            assert_eq!(parse_ours(&b, table + 1, 18), Ok(None));
            assert_eq!(parse_ours(&b, table, 12), Ok(None));
            assert!(msg.attributes.contains(&RouteAttribute::Priority(5)));
        }
        let del = announce_message(&target(100), "10.0.0.1".parse().expect("ip"), true);
        assert_eq!(u8::from(del.header.scope), RT_SCOPE_NOWHERE);
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
