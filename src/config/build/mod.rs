//! Syntax tree -> typed, validated [`Config`]. Every problem becomes a
//! diagnostic at the word that caused it; building goes on so that one run
//! reports them all.

mod ctx;
mod global;
mod lvs;
mod rules;
mod track_file;
mod track_process;
mod vrrp;

use std::collections::HashMap;

use crate::config::keywords::Section;
use crate::config::model::Config;
use crate::config::tree::Node;

pub use ctx::{Ctx, suggest};

pub fn build(cx: &mut Ctx, nodes: &mut [Node]) -> Config {
    let mut config = Config::default();
    // global_defs first wherever it stands: instances inherit from it.
    for n in nodes.iter().filter(|n| n.name() == "global_defs") {
        cx.at_most(n, 0);
        if let Some(body) = cx.block(n) {
            global::global_defs(cx, body, &mut config.global);
        }
    }
    let g = &config.global;
    cx.smtp_defaults = ctx::SmtpDefaults {
        vrrp: g.smtp_alert_vrrp_default(),
        virtual_server: g.smtp_alert_vs_default(),
        real_server: g.smtp_alert_rs_default(),
    };
    let mut scripts = vrrp::ScriptNames::default();
    for (i, n) in nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.name() == "vrrp_script")
    {
        if let Some(s) = vrrp::vrrp_script(cx, n, &mut scripts) {
            scripts.first_at.entry(s.name.clone()).or_insert(i);
            // A script defined again replaces the first definition.
            config.vrrp_scripts.retain(|old| old.name != s.name);
            config.vrrp_scripts.push(s);
        }
    }
    // track_file blocks wherever they stand (instances, sync groups and
    // FILE_CHECK name them); a name defined again replaces the first.
    for n in nodes
        .iter()
        .filter(|n| matches!(n.name(), "track_file" | "vrrp_track_file"))
    {
        if let Some(t) = track_file::track_file_block(cx, n) {
            config.track_files.retain(|old| old.name != t.name);
            config.track_files.push(t);
        }
    }
    cx.track_files = config.track_files.clone();
    // vrrp_track_process blocks likewise (instances and sync groups name them).
    for n in nodes.iter().filter(|n| n.name() == "vrrp_track_process") {
        if let Some(t) = track_process::block(cx, n) {
            config.track_processes.retain(|old| old.name != t.name);
            config.track_processes.push(t);
        }
    }
    cx.track_processes = config
        .track_processes
        .iter()
        .map(|t| (t.name.clone(), t.reverse))
        .collect();
    let mut instance_names = HashMap::new();
    let mut vrids = vrrp::VridUse::default();
    for (i, n) in nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.name() == "vrrp_instance")
    {
        if let Some(name) = n.args.first()
            && let Some(prev) = instance_names.insert(name.text.to_string(), name.span)
        {
            let at = cx.sources.locate(prev);
            cx.error(
                name.span,
                format!(
                    "vrrp_instance {} is defined twice (first at {}:{}:{})",
                    name.text, at.path, at.line, at.col
                ),
            );
            continue;
        }
        if let Some(vi) = vrrp::vrrp_instance(cx, n, &config.global, &scripts, &mut vrids, i) {
            config.vrrp_instances.push(vi);
        }
    }
    let mut member_of: HashMap<String, String> = HashMap::new();
    for n in nodes.iter().filter(|n| n.name() == "vrrp_sync_group") {
        let Some(g) = vrrp::sync_group(cx, n, &instance_names) else {
            continue;
        };
        for m in &g.group {
            if let Some(other) = member_of.insert(m.clone(), g.name.clone()) {
                cx.error(
                    n.span(),
                    format!(
                        "vrrp_instance {m} is in two sync groups ({other} and {}): an instance may belong to one group only",
                        g.name
                    ),
                );
            }
        }
        config.vrrp_sync_groups.push(g);
    }
    if let Some(d) = &config.global.lvs.sync_daemon
        && let Some(inst) = &d.vrrp_instance
        && !instance_names.contains_key(inst)
        && let Some(n) = nodes.iter().find(|n| n.name() == "global_defs")
    {
        let at = n
            .children()
            .iter()
            .find(|c| c.name() == "lvs_sync_daemon")
            .map_or(n.keyword.span, |c| c.span());
        cx.error(
            at,
            format!("lvs_sync_daemon names an unknown vrrp_instance '{inst}'"),
        );
    }

    let mut lvs_names = lvs::LvsNames::default();
    for n in nodes.iter().filter(|n| n.name() == "virtual_server_group") {
        if let Some(g) = lvs::virtual_server_group(cx, n) {
            if !lvs_names.groups.insert(g.name.clone()) {
                cx.error(
                    n.span(),
                    format!("virtual_server_group {} is defined twice", g.name),
                );
                continue;
            }
            config.virtual_server_groups.push(g);
        }
    }
    for n in nodes.iter_mut().filter(|n| n.name() == "virtual_server") {
        if let Some(vs) = lvs::virtual_server(cx, n, &mut lvs_names) {
            config.virtual_servers.push(vs);
        }
        // Built: its statements are no longer needed. Freeing them as we
        // go keeps a large file's tree and model from peaking together.
        n.block = None;
    }

    announce_checks(cx, &config, &lvs_names.announce, &instance_names);
    ecmp_checks(cx, &config, &lvs_names.ecmp);

    for n in nodes.iter().filter(|n| n.name() == "static_ipaddress") {
        cx.at_most(n, 0);
        for a in vrrp::addresses(cx, n) {
            if a.dev.is_none() && config.global.default_interface.is_none() {
                cx.warn(
                    n.span(),
                    format!(
                        "static_ipaddress {}: no `dev` and no global_defs default_interface; it is not added",
                        a.addr
                    ),
                );
            }
            config.static_ipaddress.push(a);
        }
    }
    for n in nodes.iter().filter(|n| n.name() == "static_routes") {
        cx.at_most(n, 0);
        config.static_routes.extend(vrrp::routes(cx, n));
    }
    announce_table_shared(cx, &config, nodes);
    for n in nodes.iter().filter(|n| n.name() == "static_rules") {
        cx.at_most(n, 0);
        config.static_rules.extend(rules::rules(cx, n));
    }

    for n in nodes {
        match n.name() {
            "static_ipaddress" | "static_routes" | "static_rules" => {}
            "global_defs"
            | "vrrp_script"
            | "track_file"
            | "vrrp_track_file"
            | "vrrp_track_process"
            | "vrrp_instance"
            | "vrrp_sync_group"
            | "virtual_server_group"
            | "virtual_server" => {}
            _ => cx.other(n, Section::TopLevel, &[]),
        }
    }
    config
}

/// `announce` needs global_defs' `announce_table`; `announce_track_instance`
/// a VRRP instance of this file; a group announces its address ranges only.
fn announce_checks(
    cx: &mut Ctx,
    config: &Config,
    uses: &[lvs::AnnounceUse],
    instances: &HashMap<String, crate::config::source::Span>,
) {
    for u in uses {
        if config.global.lvs.announce.is_none() {
            cx.error(
                u.span,
                "`announce` needs `announce_table N` in global_defs (the routing table the local BGP daemon exports)",
            );
        }
        if let Some((name, span)) = &u.instance
            && !instances.contains_key(name)
        {
            cx.error(
                *span,
                format!("announce_track_instance names an unknown vrrp_instance '{name}'"),
            );
        }
        if let crate::config::model::VirtualServerKey::Group { name } = &u.key
            && let Some(g) = config
                .virtual_server_groups
                .iter()
                .find(|g| &g.name == name)
        {
            let n = crate::lvs::announce::group_vip_count(g);
            if n > crate::lvs::announce::MAX_GROUP_VIPS {
                cx.error(
                    u.span,
                    format!(
                        "virtual_server_group {name} has {n} addresses: at most {} can be announced from one group",
                        crate::lvs::announce::MAX_GROUP_VIPS
                    ),
                );
            } else if n == 0 {
                cx.warn(
                    u.span,
                    format!(
                        "virtual_server_group {name} has only fwmark entries: nothing to announce"
                    ),
                );
            }
        }
    }
}

/// Settings of announced virtual servers that reset connections when the
/// routers' ECMP moves a flow to another director (the anycast case): each
/// director must map a flow to the same real server by itself, and accept
/// a flow it did not see start.
fn ecmp_checks(cx: &mut Ctx, config: &Config, uses: &[lvs::EcmpUse]) {
    use crate::config::model::{Protocol, Scheduler};
    if config.global.lvs.announce.is_none() {
        // Nothing can be announced (that error is said already).
        return;
    }
    let sysctl = &config.global.lvs.sysctl;
    for u in uses {
        let name = &u.name;
        let (sched, sched_at) = u.scheduler;
        let at = sched_at.unwrap_or(u.span);
        if sched != Scheduler::Mh {
            cx.warn(
                at,
                format!(
                    "VS {name} is announced (ECMP) but scheduled by {}: each director picks a real server of its own, so a connection ECMP moves to another director resets; use `lvs_sched mh` with `mh-port` and `mh-fallback`, which map a flow to the same real server on every director",
                    sched.name()
                ),
            );
        } else {
            if !u.sched_flags.flag_2 {
                cx.warn(
                    at,
                    format!(
                        "VS {name}: mh without `mh-port` hashes the source address only, so every connection of a client (of a whole NATed site) goes to one real server; add `mh-port`"
                    ),
                );
            }
            if !u.sched_flags.flag_1 {
                cx.warn(
                    at,
                    format!(
                        "VS {name}: mh without `mh-fallback`: a failed real server must leave the table, which moves some of the other servers' flows on this director only; add `mh-fallback` (the failed server then keeps its place at weight 0 and only its own flows move, the same way on every director)"
                    ),
                );
            }
        }
        let sloppy = match u.protocol {
            Protocol::Tcp => Some((sysctl.sloppy_tcp, "sloppy_tcp")),
            Protocol::Sctp => Some((sysctl.sloppy_sctp, "sloppy_sctp")),
            Protocol::Udp => None,
        };
        if let Some((value, what)) = sloppy
            && value != Some(1)
        {
            cx.warn(
                u.span,
                format!(
                    "VS {name} is announced (ECMP) but net.ipv4.vs.{what} is not set: a director that ECMP hands an established connection drops its packets (it saw no handshake) and the connection resets; add `lvs_sysctl {what} 1` to global_defs"
                ),
            );
        }
        if let Some(at) = u.nat {
            cx.warn(
                at.unwrap_or(u.span),
                format!(
                    "VS {name} is announced (ECMP) with lvs_method NAT: replies must come back through the director that translated the request, which ECMP does not ensure; use `lvs_method DR` (or TUN) so real servers answer clients directly"
                ),
            );
        }
        if let Some(at) = u.persistence {
            cx.warn(
                at,
                format!(
                    "VS {name} is announced (ECMP) with persistence: persistence templates are per director, so a client ECMP moves gets a new choice there; remove persistence_timeout and use `lvs_sched mh` with `mh-port` (the same mapping on every director)"
                ),
            );
        }
    }
}

/// Our routes in the announce table are told apart by protocol number
/// only: virtual_routes and static_routes (protocol 18 too) must not share
/// the table, or they would be taken for stale announcements and removed.
fn announce_table_shared(cx: &mut Ctx, config: &Config, nodes: &[Node]) {
    let Some(a) = config.global.lvs.announce else {
        return;
    };
    if a.protocol != crate::vrrp::rtnl::RTPROT_KEEPALIVED {
        return;
    }
    let mut users: Vec<String> = config
        .vrrp_instances
        .iter()
        .filter(|i| i.virtual_routes.iter().any(|r| r.table == Some(a.table)))
        .map(|i| format!("virtual_routes of vrrp_instance {}", i.name))
        .collect();
    if config
        .static_routes
        .iter()
        .any(|r| r.table == Some(a.table))
    {
        users.push("static_routes".into());
    }
    if users.is_empty() {
        return;
    }
    let at = nodes
        .iter()
        .filter(|n| n.name() == "global_defs")
        .flat_map(|n| n.children().iter())
        .find(|c| c.name() == "announce_table")
        .map(|c| c.span());
    if let Some(at) = at {
        cx.error(
            at,
            format!(
                "announce_table {} is also the table of {}: those routes (protocol 18 too) would be removed as stale announcements; use another table or announce_protocol",
                a.table,
                users.join(", ")
            ),
        );
    }
}
