//! Virtual addresses: one `virtual_ipaddress` line to RTM_NEWADDR /
//! RTM_DELADDR, the address dump, and the interface's own addresses VRRP
//! sends from (primary IPv4, IPv6 link-local).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NlasIterator, Parseable};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeader, AddressHeaderFlags, AddressMessage,
    AddressProtocol, AddressScope, CacheInfo,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use tracing::debug;

use super::error::{Change, Op, RtnlError};
use super::link::IFNAME_MAX;
use super::socket::{Reply, Rtnl};
use crate::config::model::{Scope, VirtualAddress};

/// RTPROT_KEEPALIVED: the protocol mark on addresses and routes we add,
/// the same keepalived uses, so either daemon recognises the other's.
pub const RTPROT_KEEPALIVED: u8 = 18;

const RTM_NEWADDR: u16 = 20;
const ADDR_HEADER_LEN: usize = 8;
/// Lifetime "forever" (INFINITY_LIFE_TIME).
const LIFETIME_FOREVER: u32 = u32::MAX;

/// The numeric rt scope of a configured scope (RT_SCOPE_*).
pub fn scope_number(scope: Scope) -> u8 {
    match scope {
        Scope::Global => 0,
        Scope::Site => 200,
        Scope::Link => 253,
        Scope::Host => 254,
        Scope::Nowhere => 255,
        Scope::Other(n) => n,
    }
}

/// One address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrEntry {
    pub index: u32,
    /// The local address (IFA_LOCAL, or IFA_ADDRESS when there is none).
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// The peer of a point-to-point address.
    pub peer: Option<IpAddr>,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// RT_SCOPE_* number.
    pub scope: u8,
    /// IFA_F_* bits.
    pub flags: u32,
    /// IFA_PROTO, when set.
    pub protocol: Option<u8>,
    /// Seconds; u32::MAX is forever.
    pub preferred_lft: Option<u32>,
    pub valid_lft: Option<u32>,
}

impl AddrEntry {
    /// Added with our protocol mark (by ipvsdir or keepalived).
    pub fn is_ours(&self) -> bool {
        self.protocol == Some(RTPROT_KEEPALIVED)
    }

    pub fn has_flag(&self, flag: AddressFlags) -> bool {
        self.flags & flag.bits() != 0
    }
}

/// Which addresses [`Rtnl::list_addrs`] returns; None matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrFilter {
    pub index: Option<u32>,
    /// Some(false): IPv4 only, Some(true): IPv6 only.
    pub ipv6: Option<bool>,
    pub protocol: Option<u8>,
}

impl AddrFilter {
    /// Addresses carrying our protocol mark, on any interface: the stale
    /// VIPs a previous run may have left.
    pub fn ours() -> AddrFilter {
        AddrFilter {
            protocol: Some(RTPROT_KEEPALIVED),
            ..AddrFilter::default()
        }
    }

    pub fn matches(&self, e: &AddrEntry) -> bool {
        self.index.is_none_or(|i| i == e.index)
            && self.ipv6.is_none_or(|v6| v6 == e.addr.is_ipv6())
            && self.protocol.is_none_or(|p| Some(p) == e.protocol)
    }
}

/// Parses an RTM_NEWADDR payload.
pub fn parse_addr(payload: &[u8]) -> Result<AddrEntry, String> {
    let header = AddressHeader::parse(payload).map_err(|e| format!("address header: {e}"))?;
    let mut local = None;
    let mut address = None;
    let mut entry = AddrEntry {
        index: header.index,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix_len: header.prefix_len,
        peer: None,
        broadcast: None,
        label: None,
        scope: u8::from(header.scope),
        flags: u32::from(header.flags.bits()),
        protocol: None,
        preferred_lft: None,
        valid_lft: None,
    };
    for nla in NlasIterator::new(payload.get(ADDR_HEADER_LEN..).unwrap_or_default()) {
        let nla = nla.map_err(|e| format!("address attribute: {e}"))?;
        match AddressAttribute::parse(&nla).map_err(|e| format!("address attribute: {e}"))? {
            AddressAttribute::Local(a) => local = Some(a),
            AddressAttribute::Address(a) => address = Some(a),
            AddressAttribute::Broadcast(b) => entry.broadcast = Some(b),
            AddressAttribute::Label(l) => entry.label = Some(l),
            AddressAttribute::Flags(f) => entry.flags = f.bits(),
            AddressAttribute::Protocol(p) => entry.protocol = Some(u8::from(p)),
            AddressAttribute::CacheInfo(ci) => {
                entry.preferred_lft = Some(ci.ifa_preferred);
                entry.valid_lft = Some(ci.ifa_valid);
            }
            _ => {}
        }
    }
    // IFA_LOCAL is the address itself; IFA_ADDRESS is the same or, on a
    // point-to-point address, the peer. IPv6 often sends only IFA_ADDRESS.
    entry.addr = local.or(address).ok_or_else(|| {
        format!(
            "address on index {} has neither IFA_LOCAL nor IFA_ADDRESS",
            header.index
        )
    })?;
    entry.peer = match (local, address) {
        (Some(l), Some(a)) if l != a => Some(a),
        _ => None,
    };
    Ok(entry)
}

/// `10.0.0.1/24` or `10.0.0.1 peer 10.0.0.2/32`, for messages.
pub fn vip_text(vip: &VirtualAddress) -> String {
    match vip.peer {
        Some(peer) => format!("{} peer {}/{}", vip.addr, peer, vip.prefix_len),
        None => format!("{}/{}", vip.addr, vip.prefix_len),
    }
}

/// What the kernel would reject with a bare EINVAL, said plainly.
pub fn check_vip(vip: &VirtualAddress) -> Result<(), String> {
    let max = if vip.addr.is_ipv6() { 128 } else { 32 };
    if vip.prefix_len > max {
        return Err(format!(
            "prefix length /{} is more than {max}",
            vip.prefix_len
        ));
    }
    if vip.broadcast.is_some() && vip.addr.is_ipv6() {
        return Err("`brd` is IPv4 only".into());
    }
    if let Some(peer) = vip.peer
        && peer.is_ipv6() != vip.addr.is_ipv6()
    {
        return Err(format!(
            "peer {peer} is not of the address family of {}",
            vip.addr
        ));
    }
    if let Some(label) = &vip.label
        && label.len() > IFNAME_MAX
    {
        return Err(format!("label {label:?} is longer than {IFNAME_MAX} bytes"));
    }
    Ok(())
}

fn family(addr: &IpAddr) -> AddressFamily {
    if addr.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

/// The identifying part of an address: family, prefix, interface, local
/// and peer. Enough for RTM_DELADDR.
fn key_message(index: u32, addr: IpAddr, prefix_len: u8, peer: Option<IpAddr>) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(&addr);
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr));
    msg.attributes
        .push(AddressAttribute::Address(peer.unwrap_or(addr)));
    msg
}

/// RTM_NEWADDR for a whole `virtual_ipaddress` line on `index`.
pub fn vip_add_message(index: u32, vip: &VirtualAddress) -> Result<AddressMessage, String> {
    check_vip(vip)?;
    let mut msg = key_message(index, vip.addr, vip.prefix_len, vip.peer);
    msg.header.scope = AddressScope::from(vip.scope.map_or(0, scope_number));
    let mut flags = AddressFlags::empty();
    flags.set(AddressFlags::Homeaddress, vip.home);
    flags.set(AddressFlags::Nodad, vip.nodad);
    flags.set(AddressFlags::Noprefixroute, vip.noprefixroute);
    flags.set(AddressFlags::Mcautojoin, vip.autojoin);
    // The header carries the low 8 bits (old kernels read only those),
    // IFA_FLAGS all of them.
    msg.header.flags = AddressHeaderFlags::from_bits_retain((flags.bits() & 0xff) as u8);
    if !flags.is_empty() {
        msg.attributes.push(AddressAttribute::Flags(flags));
    }
    if let Some(brd) = vip.broadcast {
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    if let Some(label) = &vip.label {
        if vip.addr.is_ipv6() {
            debug!(vip = %vip_text(vip), "rtnl: IPv6 addresses have no labels; ignoring label {label}");
        } else {
            msg.attributes.push(AddressAttribute::Label(label.clone()));
        }
    }
    if let Some(preferred) = vip.preferred_lft {
        // preferred_lft 0 marks the address deprecated: it stays usable but
        // is not picked as a source. The address itself never expires.
        let mut ci = CacheInfo::default();
        ci.ifa_preferred = preferred;
        ci.ifa_valid = LIFETIME_FOREVER;
        msg.attributes.push(AddressAttribute::CacheInfo(ci));
    }
    msg.attributes
        .push(AddressAttribute::Protocol(AddressProtocol::from(
            RTPROT_KEEPALIVED,
        )));
    Ok(msg)
}

/// RTM_DELADDR for a `virtual_ipaddress` line on `index`.
pub fn vip_del_message(index: u32, vip: &VirtualAddress) -> Result<AddressMessage, String> {
    check_vip(vip)?;
    Ok(key_message(index, vip.addr, vip.prefix_len, vip.peer))
}

/// The address VRRPv2/v3 adverts go out from: the first primary IPv4
/// address, preferring one that is not a VIP of ours.
pub fn select_primary_ipv4(entries: &[AddrEntry]) -> Option<Ipv4Addr> {
    let v4 = |e: &AddrEntry| match e.addr {
        IpAddr::V4(a) if !e.has_flag(AddressFlags::Secondary) => Some(a),
        _ => None,
    };
    let mut primaries = entries.iter().filter(|e| v4(e).is_some());
    let first = primaries.clone().next();
    primaries.find(|e| !e.is_ours()).or(first).and_then(v4)
}

/// The interface's IPv6 link-local address (the source of VRRPv3 IPv6
/// adverts), preferring one that has passed DAD and is not a VIP of ours.
pub fn select_link_local_ipv6(entries: &[AddrEntry]) -> Option<Ipv6Addr> {
    let ll = |e: &AddrEntry| match e.addr {
        IpAddr::V6(a) if a.is_unicast_link_local() && !e.has_flag(AddressFlags::Dadfailed) => {
            Some(a)
        }
        _ => None,
    };
    let rank = |e: &AddrEntry| (e.is_ours(), e.has_flag(AddressFlags::Tentative));
    entries
        .iter()
        .filter(|e| ll(e).is_some())
        .min_by_key(|e| rank(e))
        .and_then(ll)
}

impl Rtnl {
    /// Adds a VIP on interface `index` (the line's `dev` is not looked at;
    /// see [`Rtnl::add_vip_on`]). AlreadyPresent when the kernel has it.
    pub async fn add_vip(&self, index: u32, vip: &VirtualAddress) -> Result<Change, RtnlError> {
        self.add_vip_named(index, vip, format!("index {index}"))
            .await
    }

    /// Removes a VIP from interface `index`; Absent when it is not there.
    pub async fn del_vip(&self, index: u32, vip: &VirtualAddress) -> Result<Change, RtnlError> {
        self.del_vip_named(index, vip, format!("index {index}"))
            .await
    }

    /// Adds a VIP on its `dev`, or on `default_dev` (the instance's
    /// interface) when the line names none.
    pub async fn add_vip_on(
        &self,
        vip: &VirtualAddress,
        default_dev: &str,
    ) -> Result<Change, RtnlError> {
        let dev = vip.dev.as_deref().unwrap_or(default_dev);
        let link = self.link_by_name(dev).await?;
        self.add_vip_named(link.index, vip, link.name).await
    }

    /// Removes a VIP from its `dev`, or from `default_dev`. A missing
    /// interface is reported as NoSuchInterface, not as Absent.
    pub async fn del_vip_on(
        &self,
        vip: &VirtualAddress,
        default_dev: &str,
    ) -> Result<Change, RtnlError> {
        let dev = vip.dev.as_deref().unwrap_or(default_dev);
        let link = self.link_by_name(dev).await?;
        self.del_vip_named(link.index, vip, link.name).await
    }

    async fn add_vip_named(
        &self,
        index: u32,
        vip: &VirtualAddress,
        iface: String,
    ) -> Result<Change, RtnlError> {
        let op = Op::new(format!("add VIP {} on {iface}", vip_text(vip))).on(iface);
        let msg = vip_add_message(index, vip).map_err(|why| op.invalid(why))?;
        let flags = NLM_F_CREATE | NLM_F_EXCL;
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::NewAddress(msg),
                flags,
                &[(libc::EEXIST, Change::AlreadyPresent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    async fn del_vip_named(
        &self,
        index: u32,
        vip: &VirtualAddress,
        iface: String,
    ) -> Result<Change, RtnlError> {
        let op = Op::new(format!("remove VIP {} from {iface}", vip_text(vip))).on(iface);
        let msg = vip_del_message(index, vip).map_err(|why| op.invalid(why))?;
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::DelAddress(msg),
                0,
                &[(libc::EADDRNOTAVAIL, Change::Absent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    /// Removes an address found by [`Rtnl::list_addrs`] (stale VIPs at
    /// start); Absent when it has gone meanwhile.
    pub async fn del_addr(&self, entry: &AddrEntry) -> Result<Change, RtnlError> {
        let op = Op::new(format!(
            "remove address {}/{} from index {}",
            entry.addr, entry.prefix_len, entry.index
        ))
        .on(format!("index {}", entry.index));
        let msg = key_message(entry.index, entry.addr, entry.prefix_len, entry.peer);
        self.change(
            &op,
            RouteNetlinkMessage::DelAddress(msg),
            0,
            &[(libc::EADDRNOTAVAIL, Change::Absent)],
        )
        .await
    }

    /// The addresses matching `filter`, in the kernel's order (per
    /// interface, primaries before their secondaries).
    pub async fn list_addrs(&self, filter: &AddrFilter) -> Result<Vec<AddrEntry>, RtnlError> {
        let op = Op::new("list addresses");
        let mut msg = AddressMessage::default();
        msg.header.family = match filter.ipv6 {
            Some(false) => AddressFamily::Inet,
            Some(true) => AddressFamily::Inet6,
            None => AddressFamily::Unspec,
        };
        let replies = self.dump(&op, RouteNetlinkMessage::GetAddress(msg)).await?;
        let mut out = Vec::new();
        // An AF_UNSPEC dump may carry other families' addresses (MCTP, ...)
        // whose attributes do not parse as IP ones: only IPv4/IPv6 matter.
        let ip_family = |r: &&Reply| {
            matches!(
                r.payload.first().map(|f| i32::from(*f)),
                Some(libc::AF_INET | libc::AF_INET6)
            )
        };
        for reply in replies
            .iter()
            .filter(|r| r.msg_type == RTM_NEWADDR)
            .filter(ip_family)
        {
            let entry = parse_addr(&reply.payload).map_err(|why| op.malformed(why))?;
            if filter.matches(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Every address carrying our protocol mark, on any interface: the
    /// VIPs an earlier run (of ipvsdir or keepalived) may have left.
    pub async fn list_protocol_addrs(&self) -> Result<Vec<AddrEntry>, RtnlError> {
        self.list_addrs(&AddrFilter::ours()).await
    }

    /// Whether the VIP (address and prefix length) is on interface `index`.
    pub async fn has_vip(&self, index: u32, vip: &VirtualAddress) -> Result<bool, RtnlError> {
        let filter = AddrFilter {
            index: Some(index),
            ipv6: Some(vip.addr.is_ipv6()),
            protocol: None,
        };
        Ok(self
            .list_addrs(&filter)
            .await?
            .iter()
            .any(|e| e.addr == vip.addr && e.prefix_len == vip.prefix_len))
    }

    /// The interface's primary IPv4 address (VRRP advert source).
    pub async fn primary_ipv4(&self, index: u32) -> Result<Option<Ipv4Addr>, RtnlError> {
        let filter = AddrFilter {
            index: Some(index),
            ipv6: Some(false),
            protocol: None,
        };
        Ok(select_primary_ipv4(&self.list_addrs(&filter).await?))
    }

    /// The interface's IPv6 link-local address (VRRPv3 IPv6 advert source).
    pub async fn link_local_ipv6(&self, index: u32) -> Result<Option<Ipv6Addr>, RtnlError> {
        let filter = AddrFilter {
            index: Some(index),
            ipv6: Some(true),
            protocol: None,
        };
        Ok(select_link_local_ipv6(&self.list_addrs(&filter).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    pub(crate) fn vip(addr: &str, prefix_len: u8) -> VirtualAddress {
        VirtualAddress {
            addr: addr.parse().expect("test address"),
            prefix_len,
            broadcast: None,
            dev: None,
            scope: None,
            label: None,
            peer: None,
            home: false,
            nodad: false,
            noprefixroute: false,
            autojoin: false,
            no_track: false,
            preferred_lft: None,
        }
    }

    fn roundtrip(msg: &AddressMessage) -> AddrEntry {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        parse_addr(&buf).expect("parses back")
    }

    #[test]
    fn the_whole_line_reaches_the_message() {
        let mut v = vip("192.0.2.10", 24);
        v.broadcast = Some("192.0.2.255".parse().expect("ip"));
        v.scope = Some(Scope::Link);
        v.label = Some("eth0:vip".into());
        v.nodad = true;
        v.noprefixroute = true;
        v.preferred_lft = Some(0);
        let msg = vip_add_message(3, &v).expect("valid");
        assert_eq!(msg.header.family, AddressFamily::Inet);
        assert_eq!(u8::from(msg.header.scope), 253);
        let e = roundtrip(&msg);
        assert_eq!(e.index, 3);
        assert_eq!(e.addr, v.addr);
        assert_eq!(e.prefix_len, 24);
        assert_eq!(e.peer, None);
        assert_eq!(e.broadcast, v.broadcast);
        assert_eq!(e.label.as_deref(), Some("eth0:vip"));
        assert!(e.has_flag(AddressFlags::Nodad) && e.has_flag(AddressFlags::Noprefixroute));
        assert_eq!(e.preferred_lft, Some(0));
        assert_eq!(e.valid_lft, Some(u32::MAX));
        assert!(e.is_ours());
    }

    #[test]
    fn peer_goes_to_ifa_address_and_flags_only_when_set() {
        let mut v = vip("10.1.1.1", 32);
        v.peer = Some("10.1.1.2".parse().expect("ip"));
        let msg = vip_add_message(2, &v).expect("valid");
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Flags(_)))
        );
        assert_eq!(roundtrip(&msg).peer, v.peer);
        let del = vip_del_message(2, &v).expect("valid");
        assert_eq!(roundtrip(&del).peer, v.peer);
        assert!(!roundtrip(&del).is_ours());
    }

    #[test]
    fn ipv6_drops_the_label_and_home_sets_its_flag() {
        let mut v = vip("2001:db8::10", 64);
        v.label = Some("eth0:x".into());
        v.home = true;
        let msg = vip_add_message(4, &v).expect("valid");
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        let e = roundtrip(&msg);
        assert_eq!(e.label, None);
        assert!(e.has_flag(AddressFlags::Homeaddress));
    }

    #[test]
    fn impossible_lines_are_refused_before_the_kernel() {
        assert!(check_vip(&vip("10.0.0.1", 33)).is_err());
        assert!(check_vip(&vip("fd00::1", 129)).is_err());
        let mut v = vip("fd00::1", 64);
        v.broadcast = Some(Ipv4Addr::BROADCAST);
        assert!(check_vip(&v).unwrap_err().contains("IPv4 only"));
        let mut v = vip("10.0.0.1", 24);
        v.peer = Some("fd00::2".parse().expect("ip"));
        assert!(check_vip(&v).is_err());
        let mut v = vip("10.0.0.1", 24);
        v.label = Some("x".repeat(16));
        assert!(check_vip(&v).is_err());
    }

    fn entry(addr: &str, flags: AddressFlags, protocol: Option<u8>) -> AddrEntry {
        AddrEntry {
            index: 2,
            addr: addr.parse().expect("ip"),
            prefix_len: 24,
            peer: None,
            broadcast: None,
            label: None,
            scope: 0,
            flags: flags.bits(),
            protocol,
            preferred_lft: None,
            valid_lft: None,
        }
    }

    #[test]
    fn primary_ipv4_skips_secondaries_and_prefers_non_vips() {
        let none = AddressFlags::empty();
        let ours = Some(RTPROT_KEEPALIVED);
        let list = [
            entry("10.0.0.100", none, ours),
            entry("10.0.0.1", none, None),
            entry("10.0.0.2", AddressFlags::Secondary, None),
        ];
        assert_eq!(
            select_primary_ipv4(&list),
            Some("10.0.0.1".parse().expect("ip"))
        );
        assert_eq!(
            select_primary_ipv4(&list[..1]),
            Some("10.0.0.100".parse().expect("ip"))
        );
        assert_eq!(select_primary_ipv4(&list[2..]), None);
    }

    #[test]
    fn link_local_prefers_settled_non_vip_addresses() {
        let none = AddressFlags::empty();
        let list = [
            entry("2001:db8::1", none, None),
            entry("fe80::1", none, Some(RTPROT_KEEPALIVED)),
            entry("fe80::2", AddressFlags::Tentative, None),
            entry("fe80::3", none, None),
            entry("fe80::4", AddressFlags::Dadfailed, None),
        ];
        assert_eq!(
            select_link_local_ipv6(&list),
            Some("fe80::3".parse().expect("ip"))
        );
        assert_eq!(
            select_link_local_ipv6(&list[..3]),
            Some("fe80::2".parse().expect("ip"))
        );
        assert_eq!(select_link_local_ipv6(&list[..1]), None);
    }

    #[test]
    fn filter_matches_index_family_and_protocol() {
        let e = entry("10.0.0.1", AddressFlags::empty(), Some(RTPROT_KEEPALIVED));
        assert!(AddrFilter::ours().matches(&e));
        assert!(AddrFilter::default().matches(&e));
        let f = AddrFilter {
            index: Some(3),
            ..AddrFilter::default()
        };
        assert!(!f.matches(&e));
        let f = AddrFilter {
            ipv6: Some(true),
            ..AddrFilter::default()
        };
        assert!(!f.matches(&e));
    }

    #[test]
    fn truncated_address_messages_are_errors() {
        assert!(parse_addr(&[2, 24, 0]).is_err());
        // Header only: no address attribute.
        assert!(parse_addr(&[2, 24, 0, 0, 1, 0, 0, 0]).is_err());
        // IFA_LOCAL of 3 bytes.
        assert!(parse_addr(&[2, 24, 0, 0, 1, 0, 0, 0, 7, 0, 2, 0, 10, 0, 0, 0]).is_err());
    }
}
