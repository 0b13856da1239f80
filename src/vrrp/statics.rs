//! `static_ipaddress`, `static_routes` and `static_rules` (top-level blocks,
//! keepalived.conf(5)): addresses, routes and policy rules set at start whatever the VRRP state, changed by a
//! reload where the file changed, removed at stop (kept with
//! --dont-release-vrrp, as the VIPs). Same line syntax as
//! virtual_ipaddress / virtual_routes; an address without `dev` goes on
//! global_defs `default_interface`.
//!
//! What changes is decided by [`plan`] (pure); [`apply`] carries it out
//! over rtnetlink.

use crate::config::model::{Config, VirtualAddress, VirtualRoute, VirtualRule};

use super::rtnl::{Change, Rtnl};

/// What the file asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statics {
    pub addrs: Vec<VirtualAddress>,
    pub routes: Vec<VirtualRoute>,
    pub rules: Vec<VirtualRule>,
    /// global_defs `default_interface`.
    pub default_interface: Option<String>,
}

impl Statics {
    pub fn of(config: &Config) -> Statics {
        Statics {
            addrs: config.static_ipaddress.clone(),
            routes: config.static_routes.clone(),
            rules: config.static_rules.clone(),
            default_interface: config.global.default_interface.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }
}

/// The changes from `old` to `new`: removals first (routes before the
/// addresses they may use), then additions (addresses before routes).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub del_rules: Vec<VirtualRule>,
    pub del_routes: Vec<VirtualRoute>,
    pub del_addrs: Vec<VirtualAddress>,
    pub add_addrs: Vec<VirtualAddress>,
    pub add_routes: Vec<VirtualRoute>,
    pub add_rules: Vec<VirtualRule>,
}

/// Start: `plan(&Statics::default(), &new)`; stop: `plan(&old, &Statics::default())`.
/// A change of `default_interface` moves the lines that rely on it.
pub fn plan(old: &Statics, new: &Statics) -> Plan {
    let moved = old.default_interface != new.default_interface;
    let same_addr = |a: &VirtualAddress, list: &[VirtualAddress]| {
        list.contains(a) && !(moved && a.dev.is_none())
    };
    let same_route =
        |r: &VirtualRoute, list: &[VirtualRoute]| list.contains(r) && !(moved && r.dev.is_none());
    let rules = |from: &[VirtualRule], other: &[VirtualRule]| -> Vec<VirtualRule> {
        from.iter()
            .filter(|r| !other.contains(r))
            .cloned()
            .collect()
    };
    Plan {
        del_rules: rules(&old.rules, &new.rules),
        add_rules: rules(&new.rules, &old.rules),
        del_routes: old
            .routes
            .iter()
            .filter(|r| !same_route(r, &new.routes))
            .cloned()
            .collect(),
        del_addrs: old
            .addrs
            .iter()
            .filter(|a| !same_addr(a, &new.addrs))
            .cloned()
            .collect(),
        add_addrs: new
            .addrs
            .iter()
            .filter(|a| !same_addr(a, &old.addrs))
            .cloned()
            .collect(),
        add_routes: new
            .routes
            .iter()
            .filter(|r| !same_route(r, &old.routes))
            .cloned()
            .collect(),
    }
}

/// Carries out `plan`; removals use `old`'s default interface, additions
/// `new`'s. Failures are logged, the rest goes on.
pub async fn apply(rtnl: &Rtnl, plan: &Plan, old: &Statics, new: &Statics) {
    for r in &plan.del_rules {
        let text = super::rtnl::rule_text(r);
        log("remove", "static rule", &text, rtnl.del_rule(r).await);
    }
    for r in &plan.del_routes {
        let index = default_index(rtnl, old).await;
        log(
            "remove",
            "static route",
            &route_text(r),
            rtnl.del_route(index, r).await,
        );
    }
    for a in &plan.del_addrs {
        match dev_of(a, old) {
            Some(dev) => log(
                "remove",
                "static address",
                &a.addr.to_string(),
                rtnl.del_vip_on(a, dev).await,
            ),
            None => continue,
        }
    }
    for a in &plan.add_addrs {
        match dev_of(a, new) {
            Some(dev) => log(
                "add",
                "static address",
                &a.addr.to_string(),
                rtnl.add_vip_on(a, dev).await,
            ),
            None => tracing::error!(
                "static_ipaddress {}: no `dev` and no global_defs default_interface; not added",
                a.addr
            ),
        }
    }
    for r in &plan.add_routes {
        let index = default_index(rtnl, new).await;
        log(
            "add",
            "static route",
            &route_text(r),
            rtnl.add_route(index, r).await,
        );
    }
    for r in &plan.add_rules {
        let text = super::rtnl::rule_text(r);
        log("add", "static rule", &text, rtnl.add_rule(r).await);
    }
}

fn dev_of<'a>(a: &'a VirtualAddress, s: &'a Statics) -> Option<&'a str> {
    a.dev.as_deref().or(s.default_interface.as_deref())
}

async fn default_index(rtnl: &Rtnl, s: &Statics) -> u32 {
    match &s.default_interface {
        Some(d) => rtnl.link_by_name(d).await.map_or(0, |l| l.index),
        None => 0,
    }
}

fn route_text(r: &VirtualRoute) -> String {
    format!("{}/{}", r.dest, r.prefix_len)
}

fn log(verb: &str, what: &str, text: &str, r: Result<Change, super::rtnl::RtnlError>) {
    match r {
        Ok(Change::Done) => tracing::info!("{verb} {what} {text}"),
        Ok(Change::AlreadyPresent) => tracing::info!("{what} {text} was already there"),
        Ok(Change::Absent) => tracing::info!("{what} {text} was already gone"),
        Err(e) => tracing::error!("cannot {verb} {what} {text}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, load_str};

    fn statics(text: &str) -> Statics {
        let l = load_str("t.conf", text, &LoadOptions::default());
        Statics::of(&l.config.unwrap_or_else(|| panic!("{}", l.diagnostics)))
    }

    #[test]
    fn start_reload_and_stop_plans() {
        let a = statics(
            "static_ipaddress {\n 10.0.0.1/24 dev eth0\n 10.0.0.2/24 dev eth0\n}\nstatic_routes {\n 10.1.0.0/16 via 10.0.0.254\n}\n",
        );
        let start = plan(&Statics::default(), &a);
        assert_eq!(start.add_addrs.len(), 2);
        assert_eq!(start.add_routes.len(), 1);
        assert!(start.del_addrs.is_empty() && start.del_routes.is_empty());
        let b = statics(
            "static_ipaddress {\n 10.0.0.1/24 dev eth0\n 10.0.0.3/24 dev eth0\n}\nstatic_routes {\n 10.1.0.0/16 via 10.0.0.254\n}\n",
        );
        let reload = plan(&a, &b);
        assert_eq!(reload.del_addrs.len(), 1);
        assert_eq!(reload.del_addrs[0].addr.to_string(), "10.0.0.2");
        assert_eq!(reload.add_addrs[0].addr.to_string(), "10.0.0.3");
        assert!(reload.add_routes.is_empty() && reload.del_routes.is_empty());
        let stop = plan(&b, &Statics::default());
        assert_eq!((stop.del_addrs.len(), stop.del_routes.len()), (2, 1));
    }

    #[test]
    fn rules_are_read_as_ip_rule_writes_them_and_unknown_selectors_refused() {
        use crate::config::model::RuleAction;
        let s = statics(
            "static_rules {\n from 10.0.0.0/8 table 100 priority 10\n not from all fwmark 0x10/0xff iif eth0 lookup main\n \
             to 2001:db8::/32 prohibit\n from all goto 20 pref 5\n}\n",
        );
        let r = &s.rules;
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].from, Some(("10.0.0.0".parse().unwrap(), 8)));
        assert_eq!(
            (r[0].action, r[0].priority),
            (RuleAction::Table(100), Some(10))
        );
        assert!(r[1].invert && !r[1].ipv6);
        assert_eq!((r[1].fwmark, r[1].fwmask), (Some(0x10), Some(0xff)));
        assert_eq!(r[1].action, RuleAction::Table(254));
        assert!(r[2].ipv6);
        assert_eq!(r[2].action, RuleAction::Prohibit);
        assert_eq!(r[3].action, RuleAction::Goto(20));
        let m = crate::vrrp::rtnl::rule_message(&r[0]);
        assert_eq!((m.header.src_len, m.header.table), (8, 100));
        let l = load_str(
            "t.conf",
            "static_rules {\n from 10.0.0.0/8 sport 80 table 1\n from 10.0.0.0/8 to ::1 table 1\n}\n",
            &LoadOptions::default(),
        );
        let msgs = l.diagnostics.to_string();
        assert!(msgs.contains("`sport` is not supported yet"), "{msgs}");
        assert!(msgs.contains("mixes IPv4 and IPv6"), "{msgs}");
    }

    #[test]
    fn a_new_default_interface_moves_the_lines_without_dev() {
        let a = statics(
            "global_defs {\n default_interface eth0\n}\nstatic_ipaddress {\n 10.0.0.1/24\n 10.0.0.2/24 dev eth1\n}\n",
        );
        let b = statics(
            "global_defs {\n default_interface eth2\n}\nstatic_ipaddress {\n 10.0.0.1/24\n 10.0.0.2/24 dev eth1\n}\n",
        );
        let p = plan(&a, &b);
        assert_eq!(p.del_addrs.len(), 1);
        assert_eq!(p.add_addrs.len(), 1);
        assert_eq!(p.add_addrs[0].addr.to_string(), "10.0.0.1");
    }
}
