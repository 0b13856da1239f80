//! Policy-routing rules (`static_rules`, `virtual_rules`): FIB rule
//! messages (RTM_NEWRULE / RTM_DELRULE) marked with protocol
//! RTPROT_KEEPALIVED, as keepalived marks them.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction as NlAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use tracing::debug;

use super::addr::RTPROT_KEEPALIVED;
use super::error::{Change, Op, RtnlError};
use super::socket::Rtnl;
use crate::config::model::{RuleAction, VirtualRule};

/// `from 10.0.0.0/8 table 100`, for logs.
pub fn rule_text(r: &VirtualRule) -> String {
    let mut out = Vec::new();
    if r.invert {
        out.push("not".to_string());
    }
    let p = |p: &Option<(std::net::IpAddr, u8)>| match p {
        Some((a, l)) => format!("{a}/{l}"),
        None => "all".into(),
    };
    out.push(format!("from {}", p(&r.from)));
    if r.to.is_some() {
        out.push(format!("to {}", p(&r.to)));
    }
    if let Some(m) = r.fwmark {
        out.push(match r.fwmask {
            Some(mask) => format!("fwmark {m:#x}/{mask:#x}"),
            None => format!("fwmark {m:#x}"),
        });
    }
    if let Some(i) = &r.iif {
        out.push(format!("iif {i}"));
    }
    if let Some(o) = &r.oif {
        out.push(format!("oif {o}"));
    }
    if let Some(p) = r.priority {
        out.push(format!("priority {p}"));
    }
    out.push(match r.action {
        RuleAction::Table(t) => format!("table {t}"),
        RuleAction::Goto(g) => format!("goto {g}"),
        RuleAction::Blackhole => "blackhole".into(),
        RuleAction::Unreachable => "unreachable".into(),
        RuleAction::Prohibit => "prohibit".into(),
    });
    out.join(" ")
}

/// The message for `r` (the same for adding and removing).
pub fn rule_message(r: &VirtualRule) -> RuleMessage {
    let mut m = RuleMessage::default();
    let h = &mut m.header;
    h.family = if r.ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    h.tos = r.tos;
    if r.invert {
        h.flags = RuleFlags::Invert;
    }
    let a = &mut m.attributes;
    if let Some((addr, len)) = r.from {
        h.src_len = len;
        a.push(RuleAttribute::Source(addr));
    }
    if let Some((addr, len)) = r.to {
        h.dst_len = len;
        a.push(RuleAttribute::Destination(addr));
    }
    h.action = match r.action {
        RuleAction::Table(t) => {
            // Tables past 255 go in the attribute only.
            h.table = u8::try_from(t).unwrap_or(0);
            a.push(RuleAttribute::Table(t));
            NlAction::ToTable
        }
        RuleAction::Goto(g) => {
            a.push(RuleAttribute::Goto(g));
            NlAction::Goto
        }
        RuleAction::Blackhole => NlAction::Blackhole,
        RuleAction::Unreachable => NlAction::Unreachable,
        RuleAction::Prohibit => NlAction::Prohibit,
    };
    if let Some(p) = r.priority {
        a.push(RuleAttribute::Priority(p));
    }
    if let Some(mark) = r.fwmark {
        a.push(RuleAttribute::FwMark(mark));
        a.push(RuleAttribute::FwMask(r.fwmask.unwrap_or(u32::MAX)));
    }
    if let Some(i) = &r.iif {
        a.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        a.push(RuleAttribute::Oifname(o.clone()));
    }
    a.push(RuleAttribute::Protocol(RouteProtocol::from(
        RTPROT_KEEPALIVED,
    )));
    m
}

impl Rtnl {
    /// Adds a rule; AlreadyPresent when the kernel has the same one.
    pub async fn add_rule(&self, r: &VirtualRule) -> Result<Change, RtnlError> {
        let op = Op::new(format!("add rule {}", rule_text(r)));
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::NewRule(rule_message(r)),
                NLM_F_CREATE | NLM_F_EXCL,
                &[(libc::EEXIST, Change::AlreadyPresent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }

    /// Removes a rule added by [`Rtnl::add_rule`]; Absent when not there.
    pub async fn del_rule(&self, r: &VirtualRule) -> Result<Change, RtnlError> {
        let op = Op::new(format!("remove rule {}", rule_text(r)));
        let outcome = self
            .change(
                &op,
                RouteNetlinkMessage::DelRule(rule_message(r)),
                0,
                &[(libc::ENOENT, Change::Absent)],
            )
            .await?;
        debug!(op = %op.text, ?outcome, "rtnl");
        Ok(outcome)
    }
}
