//! Virtual routes: one `virtual_routes` line to RTM_NEWROUTE /
//! RTM_DELROUTE, marked with protocol RTPROT_KEEPALIVED.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType as NlRouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use tracing::debug;

use super::addr::{RTPROT_KEEPALIVED, scope_number};
use super::error::{Change, Op, RtnlError};
use super::socket::Rtnl;
use crate::config::model::{RouteType, VirtualRoute};

/// RT_TABLE_MAIN, where a route without `table` goes.
pub const TABLE_MAIN: u32 = 254;

const RT_SCOPE_LINK: u8 = 253;
/// As a delete's scope: match any scope (the kernel's wildcard).
const RT_SCOPE_NOWHERE: u8 = 255;

/// `10.1.0.0/16 via 10.0.0.2 table 100`, for messages.
pub fn route_text(route: &VirtualRoute) -> String {
    let mut text = match route.route_type {
        RouteType::Unicast => String::new(),
        RouteType::Blackhole => "blackhole ".into(),
        RouteType::Unreachable => "unreachable ".into(),
        RouteType::Prohibit => "prohibit ".into(),
        RouteType::Throw => "throw ".into(),
    };
    text.push_str(&format!("{}/{}", route.dest, route.prefix_len));
    for (i, hop) in route.via.iter().enumerate() {
        text.push_str(if i == 0 { " via " } else { " or " });
        text.push_str(&hop.to_string());
    }
    if let Some(dev) = &route.dev {
        text.push_str(&format!(" dev {dev}"));
    }
    if let Some(table) = route.table {
        text.push_str(&format!(" table {table}"));
    }
    if let Some(metric) = route.metric {
        text.push_str(&format!(" metric {metric}"));
    }
    text
}

/// What the kernel would refuse with a bare EINVAL, said plainly.
pub fn check_route(route: &VirtualRoute) -> Result<(), String> {
    let v6 = route.dest.is_ipv6();
    let max = if v6 { 128 } else { 32 };
    if route.prefix_len > max {
        return Err(format!(
            "prefix length /{} is more than {max}",
            route.prefix_len
        ));
    }
    if let Some(src) = route.src
        && src.is_ipv6() != v6
    {
        return Err(format!(
            "src {src} is not of the address family of {}",
            route.dest
        ));
    }
    if route.route_type != RouteType::Unicast && !route.via.is_empty() {
        return Err("only unicast routes have next hops (`via`)".into());
    }
    if v6 && let Some(hop) = route.via.iter().find(|h| h.is_ipv4()) {
        return Err(format!(
            "an IPv6 route cannot go via the IPv4 address {hop}"
        ));
    }
    Ok(())
}

/// The next-hop attribute: RTA_GATEWAY in the route's own family,
/// RTA_VIA for an IPv4 route via an IPv6 router (RFC 5549, Linux 5.2+).
fn hop_attribute(dest: &IpAddr, hop: IpAddr) -> RouteAttribute {
    match (dest, hop) {
        (IpAddr::V4(_), IpAddr::V6(h)) => RouteAttribute::Via(RouteVia::Inet6(h)),
        _ => RouteAttribute::Gateway(RouteAddress::from(hop)),
    }
}

/// The RTM_NEWROUTE / RTM_DELROUTE message for a `virtual_routes` line.
/// `oif` is the resolved `dev` (or the default the caller chose). A delete
/// carries the same key (table, metric, protocol, next hops) so it only
/// ever removes the route we added; its default scope is the wildcard.
pub fn route_message(
    route: &VirtualRoute,
    oif: Option<u32>,
    delete: bool,
) -> Result<RouteMessage, String> {
    check_route(route)?;
    let table = route.table.unwrap_or(TABLE_MAIN);
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = if route.dest.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    h.destination_prefix_length = route.prefix_len;
    // Tables past 255 only fit RTA_TABLE; the header then says UNSPEC.
    h.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    h.protocol = RouteProtocol::from(RTPROT_KEEPALIVED);
    h.kind = match route.route_type {
        RouteType::Unicast => NlRouteType::Unicast,
        RouteType::Blackhole => NlRouteType::BlackHole,
        RouteType::Unreachable => NlRouteType::Unreachable,
        RouteType::Prohibit => NlRouteType::Prohibit,
        RouteType::Throw => NlRouteType::Throw,
    };
    // As `ip route`: a unicast route with neither next hop is on-link.
    let on_link =
        route.route_type == RouteType::Unicast && route.via.is_empty() && route.dest.is_ipv4();
    h.scope = RouteScope::from(match route.scope {
        Some(scope) => scope_number(scope),
        None if delete => RT_SCOPE_NOWHERE,
        None if on_link => RT_SCOPE_LINK,
        None => 0,
    });
    if route.prefix_len > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(route.dest)));
    }
    msg.attributes.push(RouteAttribute::Table(table));
    if let Some(metric) = route.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    if let Some(src) = route.src {
        msg.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
    }
    match route.via.as_slice() {
        [] => {
            if let Some(oif) = oif {
                msg.attributes.push(RouteAttribute::Oif(oif));
            }
        }
        [hop] => {
            msg.attributes.push(hop_attribute(&route.dest, *hop));
            if let Some(oif) = oif {
                msg.attributes.push(RouteAttribute::Oif(oif));
            }
        }
        hops => {
            let next_hops = hops
                .iter()
                .map(|hop| {
                    let mut nh = RouteNextHop::default();
                    nh.interface_index = oif.unwrap_or(0);
                    nh.attributes.push(hop_attribute(&route.dest, *hop));
                    nh
                })
                .collect();
            msg.attributes.push(RouteAttribute::MultiPath(next_hops));
        }
    }
    Ok(msg)
}

/// The interface a route goes out of when its line names none: only a
/// unicast route without next hops needs one (the rest find theirs from
/// the gateway, or have none).
pub fn needs_default_dev(route: &VirtualRoute) -> bool {
    route.dev.is_none() && route.route_type == RouteType::Unicast && route.via.is_empty()
}

impl Rtnl {
    /// Adds a `virtual_routes` line. Its `dev` is looked up by name; a
    /// unicast route without `dev` or `via` goes out of `default_ifindex`
    /// (the instance's interface; 0 for none). AlreadyPresent when the
    /// kernel has it.
    pub async fn add_route(
        &self,
        default_ifindex: u32,
        route: &VirtualRoute,
    ) -> Result<Change, RtnlError> {
        let op = Op::new(format!("add route {}", route_text(route)));
        let msg = self
            .route_request(&op, route, default_ifindex, false)
            .await?;
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_CREATE | NLM_F_EXCL,
                &[(libc::EEXIST, Change::AlreadyPresent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    /// Removes a route added by [`Rtnl::add_route`] (same arguments);
    /// Absent when it is not there.
    pub async fn del_route(
        &self,
        default_ifindex: u32,
        route: &VirtualRoute,
    ) -> Result<Change, RtnlError> {
        let op = Op::new(format!("remove route {}", route_text(route)));
        let msg = self
            .route_request(&op, route, default_ifindex, true)
            .await?;
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::DelRoute(msg),
                0,
                &[(libc::ESRCH, Change::Absent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    async fn route_request(
        &self,
        op: &Op,
        route: &VirtualRoute,
        default_ifindex: u32,
        delete: bool,
    ) -> Result<RouteMessage, RtnlError> {
        check_route(route).map_err(|why| op.invalid(why))?;
        let oif = match &route.dev {
            Some(dev) => Some(
                self.link_by_name(dev)
                    .await
                    .map_err(|e| match e {
                        RtnlError::NoSuchInterface { iface, .. } => RtnlError::NoSuchInterface {
                            op: op.text.clone(),
                            iface,
                        },
                        other => other,
                    })?
                    .index,
            ),
            None if needs_default_dev(route) && default_ifindex != 0 => Some(default_ifindex),
            None => None,
        };
        route_message(route, oif, delete).map_err(|why| op.invalid(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Scope;
    use netlink_packet_core::{Emitable, Parseable};

    fn route(dest: &str, prefix_len: u8) -> VirtualRoute {
        VirtualRoute {
            route_type: RouteType::Unicast,
            dest: dest.parse().expect("ip"),
            prefix_len,
            src: None,
            via: Vec::new(),
            dev: None,
            scope: None,
            table: None,
            metric: None,
            no_track: false,
        }
    }

    fn roundtrip(msg: &RouteMessage) -> RouteMessage {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        RouteMessage::parse(buf.as_slice()).expect("parses back")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn unicast_via_with_table_metric_src() {
        let mut r = route("10.1.0.0", 16);
        r.via = vec![ip("10.0.0.2")];
        r.src = Some(ip("10.0.0.1"));
        r.table = Some(1000);
        r.metric = Some(7);
        let msg = roundtrip(&route_message(&r, Some(3), false).expect("valid"));
        assert_eq!(msg.header.protocol, RouteProtocol::KeepAlived);
        assert_eq!(msg.header.kind, NlRouteType::Unicast);
        assert_eq!(msg.header.table, RouteHeader::RT_TABLE_UNSPEC);
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(msg.header.destination_prefix_length, 16);
        let a = &msg.attributes;
        assert!(a.contains(&RouteAttribute::Table(1000)));
        assert!(a.contains(&RouteAttribute::Priority(7)));
        assert!(a.contains(&RouteAttribute::Oif(3)));
        assert!(a.contains(&RouteAttribute::Gateway(RouteAddress::from(ip("10.0.0.2")))));
        assert!(
            a.contains(&RouteAttribute::PrefSource(RouteAddress::from(ip(
                "10.0.0.1"
            ))))
        );
        assert!(
            a.contains(&RouteAttribute::Destination(RouteAddress::from(ip(
                "10.1.0.0"
            ))))
        );
    }

    #[test]
    fn several_hops_become_multipath() {
        let mut r = route("10.2.0.0", 24);
        r.via = vec![ip("10.0.0.2"), ip("10.0.0.3")];
        let msg = roundtrip(&route_message(&r, None, false).expect("valid"));
        assert_eq!(msg.header.table, 254);
        let hops = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::MultiPath(h) => Some(h.clone()),
                _ => None,
            })
            .expect("RTA_MULTIPATH");
        assert_eq!(hops.len(), 2);
        assert_eq!(
            hops[1].attributes,
            vec![RouteAttribute::Gateway(RouteAddress::from(ip("10.0.0.3")))]
        );
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Gateway(_)))
        );
    }

    #[test]
    fn scopes_follow_ip_route() {
        let r = route("10.3.0.0", 24);
        let add = route_message(&r, Some(2), false).expect("valid");
        assert_eq!(u8::from(add.header.scope), RT_SCOPE_LINK);
        let del = route_message(&r, Some(2), true).expect("valid");
        assert_eq!(u8::from(del.header.scope), RT_SCOPE_NOWHERE);
        let mut r = route("10.3.0.0", 24);
        r.scope = Some(Scope::Host);
        assert_eq!(
            u8::from(route_message(&r, None, true).expect("valid").header.scope),
            254
        );
    }

    #[test]
    fn blackhole_and_friends_have_no_interface() {
        for (t, k) in [
            (RouteType::Blackhole, NlRouteType::BlackHole),
            (RouteType::Unreachable, NlRouteType::Unreachable),
            (RouteType::Prohibit, NlRouteType::Prohibit),
            (RouteType::Throw, NlRouteType::Throw),
        ] {
            let mut r = route("2001:db8:5::", 48);
            r.route_type = t;
            assert!(!needs_default_dev(&r));
            let msg = route_message(&r, None, false).expect("valid");
            assert_eq!(msg.header.kind, k);
            assert_eq!(msg.header.address_family, AddressFamily::Inet6);
            assert!(
                !msg.attributes
                    .iter()
                    .any(|a| matches!(a, RouteAttribute::Oif(_)))
            );
        }
    }

    #[test]
    fn ipv4_via_ipv6_uses_rta_via_and_default_route_has_no_dst() {
        let mut r = route("0.0.0.0", 0);
        r.via = vec![ip("fe80::1")];
        let msg = route_message(&r, Some(2), false).expect("valid");
        assert!(
            msg.attributes
                .contains(&RouteAttribute::Via(RouteVia::Inet6(
                    "fe80::1".parse().expect("ip")
                )))
        );
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Destination(_)))
        );
    }

    #[test]
    fn impossible_lines_are_refused() {
        assert!(check_route(&route("10.0.0.0", 33)).is_err());
        let mut r = route("10.0.0.0", 8);
        r.src = Some(ip("fd00::1"));
        assert!(check_route(&r).is_err());
        let mut r = route("fd00::", 8);
        r.via = vec![ip("10.0.0.1")];
        assert!(check_route(&r).is_err());
        let mut r = route("10.0.0.0", 8);
        r.route_type = RouteType::Blackhole;
        r.via = vec![ip("10.0.0.1")];
        assert!(check_route(&r).is_err());
    }

    #[test]
    fn text_reads_like_the_config_line() {
        let mut r = route("10.1.0.0", 16);
        r.via = vec![ip("10.0.0.2"), ip("10.0.0.3")];
        r.table = Some(100);
        assert_eq!(
            route_text(&r),
            "10.1.0.0/16 via 10.0.0.2 or 10.0.0.3 table 100"
        );
        r.route_type = RouteType::Blackhole;
        r.via.clear();
        assert_eq!(route_text(&r), "blackhole 10.1.0.0/16 table 100");
    }
}
