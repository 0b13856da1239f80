//! Interfaces: looking them up by name or index, reading the state a
//! tracked interface is judged by, setting one up or down.

use netlink_packet_core::{NlasIterator, ParseableParametrized};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkFlags, LinkHeader, LinkInfo as NlLinkInfo, LinkMessage,
};
use tracing::debug;

use super::error::{Op, RtnlError};
use super::socket::{Reply, Rtnl};

/// Kernel interface names are at most 15 bytes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

const RTM_NEWLINK: u16 = 16;
const LINK_HEADER_LEN: usize = 16;
// The only IFLA_* attributes read; everything else (stats, VF lists, ...)
// is skipped unparsed.
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;

/// What the VRRP driver needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// The Ethernet address; None for links without one (lo has an
    /// all-zero one, tunnels none).
    pub mac: Option<[u8; 6]>,
    /// Admin up and running (IFF_UP and IFF_RUNNING): keepalived's test
    /// for a tracked interface. IFF_RUNNING is the kernel's operational
    /// state (carrier, and the lower device for stacked links).
    pub up: bool,
    pub mtu: u32,
    /// IFLA_LINK: the lower device of a macvlan, vlan, ... (for veth the
    /// peer's index).
    pub parent: Option<u32>,
    /// IFLA_INFO_KIND ("macvlan", "dummy", ...); None for physical NICs.
    pub kind: Option<String>,
}

/// Whether `name` can be an interface name; the kernel's answer to a bad
/// one is a bare EINVAL or ENODEV, so say it ourselves.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the interface name is empty".into());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "interface name {name:?} is longer than {IFNAME_MAX} bytes"
        ));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':', '\0'])
        || name.contains(char::is_whitespace)
    {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    Ok(())
}

/// Parses an RTM_NEWLINK / RTM_DELLINK payload (struct ifinfomsg and
/// attributes).
pub fn parse_link(payload: &[u8]) -> Result<LinkInfo, String> {
    let header = LinkHeader::parse(payload).map_err(|e| format!("link header: {e}"))?;
    let attrs = payload.get(LINK_HEADER_LEN..).unwrap_or_default();
    let mut info = LinkInfo {
        index: header.index,
        name: String::new(),
        mac: None,
        up: header.flags.contains(LinkFlags::Up | LinkFlags::Running),
        mtu: 0,
        parent: None,
        kind: None,
    };
    let mut have_name = false;
    for nla in NlasIterator::new(attrs) {
        let nla = nla.map_err(|e| format!("link attribute: {e}"))?;
        let kind = nla.kind();
        if !matches!(
            kind,
            IFLA_ADDRESS | IFLA_IFNAME | IFLA_MTU | IFLA_LINK | IFLA_LINKINFO
        ) {
            continue;
        }
        let attr = match LinkAttribute::parse_with_param(&nla, header.interface_family) {
            Ok(attr) => attr,
            // The kind is all we read from IFLA_LINKINFO; some link types'
            // data may not parse here, which must not hide the link.
            Err(e) if kind == IFLA_LINKINFO => {
                debug!(
                    index = header.index,
                    "rtnl: skipping unparsable IFLA_LINKINFO: {e}"
                );
                continue;
            }
            Err(e) => return Err(format!("link attribute {kind}: {e}")),
        };
        match attr {
            LinkAttribute::IfName(name) => {
                info.name = name;
                have_name = true;
            }
            LinkAttribute::Address(bytes) => info.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok(),
            LinkAttribute::Mtu(mtu) => info.mtu = mtu,
            LinkAttribute::Link(parent) => info.parent = Some(parent),
            LinkAttribute::LinkInfo(infos) => {
                info.kind = infos.into_iter().find_map(|i| match i {
                    NlLinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    if !have_name {
        return Err(format!("link {} has no IFLA_IFNAME", header.index));
    }
    Ok(info)
}

fn get_link_message(index: u32, name: Option<&str>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    if let Some(name) = name {
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    }
    // Counters are large and unused here.
    msg.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    msg
}

fn single_link(op: &Op, replies: Vec<Reply>) -> Result<LinkInfo, RtnlError> {
    let reply = replies
        .into_iter()
        .find(|r| r.msg_type == RTM_NEWLINK)
        .ok_or_else(|| op.malformed("no RTM_NEWLINK in the reply"))?;
    parse_link(&reply.payload).map_err(|why| op.malformed(why))
}

impl Rtnl {
    /// The interface called `name`; NoSuchInterface when there is none.
    pub async fn link_by_name(&self, name: &str) -> Result<LinkInfo, RtnlError> {
        let op = Op::new(format!("look up interface {name}")).on(name);
        check_ifname(name).map_err(|why| op.invalid(why))?;
        let msg = get_link_message(0, Some(name));
        let replies = self
            .request(&op, RouteNetlinkMessage::GetLink(msg), 0)
            .await?;
        single_link(&op, replies)
    }

    /// The interface with index `index`; NoSuchInterface when there is none.
    pub async fn link_by_index(&self, index: u32) -> Result<LinkInfo, RtnlError> {
        let op = Op::new(format!("look up interface index {index}")).on(format!("index {index}"));
        if index == 0 {
            return Err(op.invalid("0 is not an interface index"));
        }
        let msg = get_link_message(index, None);
        let replies = self
            .request(&op, RouteNetlinkMessage::GetLink(msg), 0)
            .await?;
        single_link(&op, replies)
    }

    /// Every interface of this network namespace.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, RtnlError> {
        let op = Op::new("list interfaces");
        let msg = get_link_message(0, None);
        let replies = self.dump(&op, RouteNetlinkMessage::GetLink(msg)).await?;
        replies
            .iter()
            .filter(|r| r.msg_type == RTM_NEWLINK)
            .map(|r| parse_link(&r.payload).map_err(|why| op.malformed(why)))
            .collect()
    }

    /// Sets an interface administratively up or down.
    pub async fn set_link_up(&self, index: u32, up: bool) -> Result<(), RtnlError> {
        let verb = if up { "up" } else { "down" };
        let op =
            Op::new(format!("set interface index {index} {verb}")).on(format!("index {index}"));
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        msg.header.change_mask = LinkFlags::Up;
        self.request(&op, RouteNetlinkMessage::SetLink(msg), 0)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::link::{InfoKind, LinkAttribute as A};

    fn payload(flags: LinkFlags, attrs: Vec<A>) -> Vec<u8> {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = flags;
        msg.attributes = attrs;
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    #[test]
    fn parses_what_the_driver_needs() {
        let buf = payload(
            LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp,
            vec![
                A::IfName("vrrp.51".into()),
                A::Mtu(1500),
                A::Address(vec![0, 0, 0x5e, 0, 1, 51]),
                A::Link(3),
                A::LinkInfo(vec![NlLinkInfo::Kind(InfoKind::MacVlan)]),
                A::Carrier(1),
            ],
        );
        let info = parse_link(&buf).expect("parses");
        assert_eq!(
            info,
            LinkInfo {
                index: 7,
                name: "vrrp.51".into(),
                mac: Some([0, 0, 0x5e, 0, 1, 51]),
                up: true,
                mtu: 1500,
                parent: Some(3),
                kind: Some("macvlan".into()),
            }
        );
    }

    #[test]
    fn up_needs_admin_up_and_running() {
        let name = || vec![A::IfName("eth0".into())];
        assert!(
            !parse_link(&payload(LinkFlags::Up, name()))
                .expect("parses")
                .up
        );
        assert!(
            !parse_link(&payload(LinkFlags::Running, name()))
                .expect("parses")
                .up
        );
        assert!(
            parse_link(&payload(LinkFlags::Up | LinkFlags::Running, name()))
                .expect("parses")
                .up
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(parse_link(&[0; 4]).is_err());
        // No name.
        assert!(parse_link(&payload(LinkFlags::Up, vec![A::Mtu(1500)])).is_err());
        // An MTU attribute of the wrong size.
        let mut buf = payload(LinkFlags::Up, vec![A::IfName("x".into())]);
        buf.extend_from_slice(&[6, 0, IFLA_MTU as u8, 0, 1, 2, 0, 0]);
        assert!(parse_link(&buf).is_err());
        // A length running past the end.
        let mut buf = payload(LinkFlags::Up, vec![A::IfName("x".into())]);
        buf.extend_from_slice(&[64, 0, 1, 0]);
        assert!(parse_link(&buf).is_err());
    }

    #[test]
    fn a_non_ethernet_address_is_no_mac() {
        let buf = payload(
            LinkFlags::Up,
            vec![A::IfName("gre0".into()), A::Address(vec![0; 4])],
        );
        assert_eq!(parse_link(&buf).expect("parses").mac, None);
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("vrrp.51").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a-very-long-name0").is_err());
        assert!(check_ifname("eth0:1").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("..").is_err());
    }
}
