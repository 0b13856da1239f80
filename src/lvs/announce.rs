//! Announcing VIPs to routers through the local routing daemon: which VIPs
//! a configuration announces, and the rule that decides, per VIP, whether
//! it is announced now. Pure: the director core ([`super::director`]) keeps
//! the memory and emits the route changes; the daemon carries them out as
//! routes in the `announce_table` (see `crate::vrrp::rtnl::announce`).
//!
//! The rule: a VIP is announced while every virtual server with `announce`
//! on it holds its quorum (keepalived's quorum and hysteresis, as the IPVS
//! table uses them) and, for those with `announce_track_instance`, while
//! that VRRP instance is MASTER here. One virtual server of the VIP that
//! cannot serve takes the whole VIP out of this director: with ECMP the
//! other directors take all of its traffic, instead of this one
//! black-holing the share of it that the failing service gets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::model::{
    Config, GroupEntry, VirtualServer, VirtualServerGroup, VirtualServerKey,
};
use crate::lvs::names;

/// A virtual_server_group announces at most this many addresses (a
/// typo'd IPv6 range must not become 65536 routes).
pub const MAX_GROUP_VIPS: usize = 4096;

/// How many addresses a group's ranges hold (fwmark entries: none).
pub fn group_vip_count(g: &VirtualServerGroup) -> usize {
    g.entries
        .iter()
        .map(|e| match e {
            GroupEntry::Range { first, last, .. } => range_len(*first, *last),
            GroupEntry::Fwmark { .. } => 0,
        })
        .fold(0usize, usize::saturating_add)
}

fn range_len(first: IpAddr, last: IpAddr) -> usize {
    let (lo, hi) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
        _ => return 0,
    };
    if hi < lo {
        return 0;
    }
    usize::try_from((hi - lo).saturating_add(1)).unwrap_or(usize::MAX)
}

/// The addresses a virtual server announces (empty without `announce`,
/// for a fwmark, or a group past [`MAX_GROUP_VIPS`]).
pub fn vips_of(config: &Config, vs: &VirtualServer) -> Vec<IpAddr> {
    if !vs.announce {
        return Vec::new();
    }
    match &vs.key {
        VirtualServerKey::Addr { addr, .. } => vec![*addr],
        VirtualServerKey::Fwmark { .. } => Vec::new(),
        VirtualServerKey::Group { name } => {
            let Some(g) = config
                .virtual_server_groups
                .iter()
                .find(|g| &g.name == name)
            else {
                return Vec::new();
            };
            if group_vip_count(g) > MAX_GROUP_VIPS {
                return Vec::new();
            }
            let mut out = BTreeSet::new();
            for e in &g.entries {
                if let GroupEntry::Range { first, last, .. } = e {
                    out.extend(crate::lvs::desired::address_range(*first, *last));
                }
            }
            out.into_iter().collect()
        }
    }
}

/// Each announced VIP and the virtual servers (by position) that decide it.
pub fn plan(config: &Config) -> BTreeMap<IpAddr, Vec<usize>> {
    let mut out: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for (i, vs) in config.virtual_servers.iter().enumerate() {
        for vip in vips_of(config, vs) {
            out.entry(vip).or_default().push(i);
        }
    }
    out
}

/// What one VIP's announcement is now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    pub vip: IpAddr,
    pub announced: bool,
    /// e.g. `VS 10.0.0.1:80 quorum held` or `VS 10.0.0.1:80 lost quorum 1`.
    pub why: String,
    /// Announced with the drain metric (`announce_drain_metric`): routers
    /// are told to prefer other directors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drained: bool,
}

/// The director's drain (`ipvsdir ctl drain-director`, or the stop).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    /// `draining`: announced with the drain metric, waiting for traffic to
    /// move; `withdrawn`: the routes are gone.
    pub stage: String,
    /// `operator` (ctl drain-director) or `stop`.
    pub by: String,
    pub why: String,
}

/// The `--dump` and SIGUSR1 lines: one per VIP with `announce`.
pub fn text(list: &[VipStatus]) -> String {
    let mut out = String::new();
    for s in list {
        out.push_str(&format!(
            "Announce {} {}: {}\n",
            s.vip,
            match (s.announced, s.drained) {
                (true, true) => "DRAINING",
                (true, false) => "ANNOUNCED",
                _ => "WITHDRAWN",
            },
            s.why
        ));
    }
    out
}

/// The `--dump` line of a drain.
pub fn drain_text(d: &DrainStatus) -> String {
    format!("Director drain ({}): {}: {}\n", d.by, d.stage, d.why)
}

/// What the rule needs to know of the director's state.
pub trait Facts {
    /// The virtual server's quorum verdict (None: not judged yet).
    fn quorum_held(&self, vs: &VirtualServer) -> Option<bool>;
    /// Whether this VRRP instance is MASTER in this process.
    fn is_master(&self, instance: &str) -> bool;
    /// A real server of the virtual server whose checkers have not all
    /// given a first result yet (its name), if any.
    fn unchecked(&self, vs: &VirtualServer) -> Option<String>;
}

/// The rule for one VIP (see the module's documentation).
pub fn decide(config: &Config, vip: IpAddr, servers: &[usize], facts: &dyn Facts) -> VipStatus {
    let mut held = Vec::new();
    for &i in servers {
        let Some(vs) = config.virtual_servers.get(i) else {
            continue;
        };
        let vsn = names::virtual_server(vs);
        match facts.quorum_held(vs) {
            Some(true) => {}
            Some(false) => {
                return VipStatus {
                    vip,
                    announced: false,
                    why: format!("VS {vsn} below quorum {}", vs.quorum),
                    drained: false,
                };
            }
            None => {
                return VipStatus {
                    vip,
                    announced: false,
                    why: format!("VS {vsn} not judged yet"),
                    drained: false,
                };
            }
        }
        // Every director must map a flow to the same real server: until
        // this one's checks have judged each real server once (with alpha
        // they start at weight 0), a flow ECMP moves here could be sent to
        // another real server by mh-fallback, and be reset.
        if let Some(rs) = facts.unchecked(vs) {
            return VipStatus {
                vip,
                announced: false,
                why: format!("VS {vsn}: real server {rs} not checked yet"),
                drained: false,
            };
        }
        if let Some(inst) = &vs.announce_track_instance
            && !facts.is_master(inst)
        {
            return VipStatus {
                vip,
                announced: false,
                why: format!("VS {vsn}: vrrp_instance {inst} is not MASTER"),
                drained: false,
            };
        }
        held.push(vsn);
    }
    if held.is_empty() {
        return VipStatus {
            vip,
            announced: false,
            why: "no virtual server".into(),
            drained: false,
        };
    }
    VipStatus {
        vip,
        announced: true,
        why: format!("quorum held by VS {}", held.join(", VS ")),
        drained: false,
    }
}

/// What makes the announce table hold exactly `want` (VIP, metric) given
/// what it holds (`have`; None: it could not be read): the routes to add
/// (the VIPs), then those of ours to remove (any other VIP or metric).
/// Adding first means a VIP whose metric changes is never without a route.
pub fn route_changes(
    want: &BTreeSet<(IpAddr, u32)>,
    have: Option<&BTreeSet<(IpAddr, u32)>>,
) -> (Vec<IpAddr>, Vec<(IpAddr, u32)>) {
    let empty = BTreeSet::new();
    let have_or_none = have.unwrap_or(&empty);
    let add = want.difference(have_or_none).map(|(v, _)| *v).collect();
    let remove = have.map_or(Vec::new(), |h| h.difference(want).copied().collect());
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_changes_add_first_then_remove_what_is_not_wanted() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let want: BTreeSet<_> = [(a, 4000), (b, 0)].into();
        let have: BTreeSet<_> = [(a, 0), (b, 0)].into();
        assert_eq!(route_changes(&want, Some(&have)), (vec![a], vec![(a, 0)]));
        // Unreadable table: add all, remove nothing.
        assert_eq!(route_changes(&want, None), (vec![a, b], vec![]));
        assert_eq!(route_changes(&want, Some(&want)), (vec![], vec![]));
    }

    #[test]
    fn range_lengths() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(range_len(ip("10.0.0.1"), ip("10.0.0.3")), 3);
        assert_eq!(range_len(ip("10.0.0.3"), ip("10.0.0.1")), 0);
        assert_eq!(range_len(ip("fd00::1"), ip("fd00::ffff")), 0xffff);
        assert_eq!(range_len(ip("10.0.0.1"), ip("fd00::1")), 0);
    }
}
