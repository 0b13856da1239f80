//! VMAC (keepalived `use_vmac`): a macvlan on the instance's interface
//! carrying the RFC 5798 virtual router MAC, so that after a takeover the
//! neighbours' ARP/ND caches stay right.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
    MacVlanMode,
};
use tracing::{debug, info};

use super::error::{Change, Op, RtnlError};
use super::link::{LinkInfo, check_ifname};
use super::socket::Rtnl;

/// The virtual router MAC (RFC 5798 7.3): 00:00:5e:00:01:VRID for IPv4,
/// 00:00:5e:00:02:VRID for IPv6.
pub fn vmac_address(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// `00:00:5e:00:01:33`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RTM_NEWLINK creating the macvlan `name` on `parent`, admin up. Mode
/// private, as keepalived: the VMAC does not talk to its siblings.
pub fn macvlan_message(parent: u32, name: &str, mac: [u8; 6]) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::Link(parent));
    msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        NlLinkInfo::Kind(InfoKind::MacVlan),
        NlLinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
            MacVlanMode::Private,
        )])),
    ]));
    msg
}

impl Rtnl {
    /// Creates the VMAC interface `name` on `parent_ifindex` with `mac`,
    /// admin up, and returns its index. If `name` already exists as a
    /// macvlan on that parent (left by a previous run) it is reused, given
    /// `mac` and brought up; any other interface of that name is an error.
    pub async fn create_macvlan(
        &self,
        parent_ifindex: u32,
        name: &str,
        mac: [u8; 6],
    ) -> Result<u32, RtnlError> {
        let op = Op::new(format!(
            "create VMAC interface {name} ({}) on index {parent_ifindex}",
            mac_text(&mac)
        ))
        .on(format!("index {parent_ifindex}"));
        check_ifname(name).map_err(|why| op.invalid(why))?;
        let msg = macvlan_message(parent_ifindex, name, mac);
        let created = self
            .change(
                &op,
                RouteNetlinkMessage::NewLink(msg),
                NLM_F_CREATE | NLM_F_EXCL,
                &[(libc::EEXIST, Change::AlreadyPresent)],
            )
            .await?;
        let link = self.link_by_name(name).await?;
        if created == Change::Done {
            debug!(op = %op.text, index = link.index, "rtnl");
            return Ok(link.index);
        }
        if link.kind.as_deref() != Some("macvlan") || link.parent != Some(parent_ifindex) {
            return Err(op.invalid(format!(
                "an interface named {name} already exists and is not a macvlan on index \
                 {parent_ifindex}; choose another vmac name or remove it"
            )));
        }
        info!(name, index = link.index, "reusing existing VMAC interface");
        if link.mac != Some(mac) {
            self.set_link_mac(&op, link.index, mac).await?;
        }
        self.set_link_up(link.index, true).await?;
        Ok(link.index)
    }

    /// Deletes the VMAC interface `name`; Absent when there is none. Only
    /// macvlans are deleted, so a wrong name cannot take down a real NIC.
    pub async fn delete_link(&self, name: &str) -> Result<Change, RtnlError> {
        let op = Op::new(format!("delete VMAC interface {name}")).on(name);
        let link: LinkInfo = match self.link_by_name(name).await {
            Ok(link) => link,
            Err(RtnlError::NoSuchInterface { .. }) => return Ok(Change::Absent),
            Err(e) => return Err(e),
        };
        if link.kind.as_deref() != Some("macvlan") {
            return Err(op.invalid(format!(
                "refusing to delete {name}: it is a {} interface, not a macvlan",
                link.kind.as_deref().unwrap_or("physical")
            )));
        }
        let mut msg = LinkMessage::default();
        msg.header.index = link.index;
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::DelLink(msg),
                0,
                &[(libc::ENODEV, Change::Absent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    async fn set_link_mac(&self, op: &Op, index: u32, mac: [u8; 6]) -> Result<(), RtnlError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.request(op, RouteNetlinkMessage::SetLink(msg), 0)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    #[test]
    fn vrrp_macs() {
        assert_eq!(vmac_address(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(vmac_address(255, true), [0, 0, 0x5e, 0, 2, 255]);
        assert_eq!(mac_text(&vmac_address(51, false)), "00:00:5e:00:01:33");
    }

    #[test]
    fn macvlan_request_is_private_and_up() {
        let msg = macvlan_message(3, "vrrp.51", vmac_address(51, false));
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        let back = LinkMessage::parse(buf.as_slice()).expect("parses back");
        assert!(back.header.flags.contains(LinkFlags::Up));
        assert!(back.attributes.contains(&LinkAttribute::Link(3)));
        assert!(
            back.attributes
                .contains(&LinkAttribute::IfName("vrrp.51".into()))
        );
        assert!(
            back.attributes
                .contains(&LinkAttribute::Address(vec![0, 0, 0x5e, 0, 1, 51]))
        );
        assert!(back.attributes.contains(&LinkAttribute::LinkInfo(vec![
            NlLinkInfo::Kind(InfoKind::MacVlan),
            NlLinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Private
            )])),
        ])));
    }
}
