//! `global_defs { ... }`.

use crate::config::keywords::Section;
use crate::config::model::{
    AnnounceGlobals, FlushOnStop, GlobalDefs, LvsSyncDaemon, LvsSysctls, LvsTimeouts, NotifyFifo,
    NotifyFifos, Script, ScriptUser, SmtpServer,
};
use crate::config::source::Span;
use crate::config::tree::{Node, Word};

use super::ctx::{Ctx, suggest};

/// Keywords ipvsdir adds to keepalived's global_defs.
const EXTENSIONS: &[&str] = &[
    "v3_checksum_as_v2",
    "metrics_listen",
    "announce_table",
    "announce_protocol",
    "announce_metric",
    "announce_withdraw_grace",
    "announce_drain_metric",
    "announce_drain_time",
    "lvs_sysctl",
];

/// Routing tables an announcement may not go to: unspec (0), default
/// (253), main (254), local (255): packets are routed by them.
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

/// The announce_* lines of global_defs, gathered before they are checked
/// together.
#[derive(Default)]
struct AnnounceLines {
    table: Option<(u32, Span)>,
    protocol: Option<u8>,
    metric: Option<u32>,
    grace: Option<crate::config::model::Timer>,
    drain_metric: Option<(u32, Span)>,
    drain_time: Option<crate::config::model::Timer>,
    /// The first announce_* line other than announce_table.
    other: Option<(Span, String)>,
}

pub fn global_defs(cx: &mut Ctx, nodes: &[Node], g: &mut GlobalDefs) {
    // `*_notify_fifo_script` may come before its FIFO: attached at the end.
    let mut fifo_scripts: [Option<(Script, Span)>; 3] = [None, None, None];
    let mut announce = AnnounceLines::default();
    for n in nodes {
        if n.name().starts_with("announce_") && announce_line(cx, n, &mut announce) {
            continue;
        }
        let v = &mut g.vrrp;
        match n.name() {
            name @ ("notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo") => {
                if let Some(f) = notify_fifo(cx, n) {
                    *fifo_slot(&mut g.notify_fifos, name) = Some(f);
                }
            }
            name
            @ ("notify_fifo_script" | "vrrp_notify_fifo_script" | "lvs_notify_fifo_script") => {
                if let Some(s) = cx.script(n) {
                    fifo_scripts[fifo_index(name)] = Some((s, n.keyword.span));
                }
            }
            "router_id" => set(&mut g.router_id, cx.string(n, "a name")),
            "notification_email" => {
                g.notification_email = cx.words(n).iter().map(|w| w.text.to_string()).collect();
            }
            "notification_email_from" => {
                set(&mut g.notification_email_from, cx.string(n, "an address"))
            }
            "smtp_server" => {
                cx.at_most(n, 2);
                if let Some(host) = cx.arg(n, 0, "an address or host name") {
                    let port = match n.args.get(1) {
                        Some(p) => cx.port_word(p),
                        None => Some(25),
                    };
                    if let Some(port) = port {
                        g.smtp_server = Some(SmtpServer {
                            host: host.text.to_string(),
                            port,
                        });
                    }
                }
            }
            "smtp_helo_name" => set(&mut g.smtp_helo_name, cx.string(n, "a name")),
            "smtp_connect_timeout" => set_val(&mut g.smtp_connect_timeout, cx.timer(n)),
            "smtp_alert" => set(&mut g.smtp_alert, cx.flag(n)),
            "smtp_alert_vrrp" => set(&mut g.smtp_alert_vrrp, cx.flag(n)),
            "smtp_alert_checker" => set(&mut g.smtp_alert_checker, cx.flag(n)),
            "no_email_faults" => set_val(&mut g.no_email_faults, cx.flag(n)),
            "no_checker_emails" => set_val(&mut g.no_checker_emails, cx.flag(n)),
            "script_user" => set(&mut g.script_user, cx.user(n)),
            "enable_script_security" => set_val(&mut g.enable_script_security, cx.flag(n)),
            "default_interface" => set(&mut g.default_interface, cx.string(n, "an interface")),
            "vrrp_version" => set_val(&mut v.version, cx.int(n, 2..=3)),
            "vrrp_strict" => set_val(&mut v.strict, cx.flag(n)),
            "vrrp_skip_check_adv_addr" => set_val(&mut v.skip_check_adv_addr, cx.flag(n)),
            "vrrp_check_unicast_src" => set_val(&mut v.check_unicast_src, cx.flag(n)),
            "vrrp_mcast_group4" => match cx.ip(n) {
                Some(std::net::IpAddr::V4(a)) if a.is_multicast() => v.mcast_group4 = a,
                Some(_) => cx.error(
                    n.args[0].span,
                    "vrrp_mcast_group4 must be an IPv4 multicast address (224.0.0.0/4)",
                ),
                None => {}
            },
            "vrrp_mcast_group6" => match cx.ip(n) {
                Some(std::net::IpAddr::V6(a)) if a.is_multicast() => v.mcast_group6 = a,
                Some(_) => cx.error(
                    n.args[0].span,
                    "vrrp_mcast_group6 must be an IPv6 multicast address (ff00::/8)",
                ),
                None => {}
            },
            "vrrp_garp_interval" => set_val(&mut v.garp_interval, cx.timer(n)),
            "vrrp_gna_interval" => set_val(&mut v.gna_interval, cx.timer(n)),
            "vrrp_garp_master_delay" => set_val(&mut v.garp_master_delay, cx.timer(n)),
            "vrrp_garp_master_repeat" => set_val(&mut v.garp_master_repeat, cx.int(n, 1..=255)),
            "vrrp_garp_master_refresh" => set(&mut v.garp_master_refresh, cx.timer(n)),
            "vrrp_garp_master_refresh_repeat" => {
                set_val(&mut v.garp_master_refresh_repeat, cx.int(n, 1..=255))
            }
            "vrrp_garp_lower_prio_delay" => set(&mut v.garp_lower_prio_delay, cx.timer(n)),
            "fifo_write_vrrp_states_on_reload" => {
                set_val(&mut v.fifo_write_states_on_reload, cx.flag(n))
            }
            "vrrp_notify_priority_changes" => set_val(&mut v.notify_priority_changes, cx.flag(n)),
            "vrrp_garp_lower_prio_repeat" => set(&mut v.garp_lower_prio_repeat, cx.int(n, 0..=255)),
            "vrrp_lower_prio_no_advert" => set_val(&mut v.lower_prio_no_advert, cx.flag(n)),
            "vrrp_higher_prio_send_advert" => set_val(&mut v.higher_prio_send_advert, cx.flag(n)),
            "v3_checksum_as_v2" => set_val(&mut v.v3_checksum_as_v2, cx.flag(n)),
            "metrics_listen" => {
                cx.at_most(n, 1);
                if let Some(w) = cx.arg(n, 0, "an ADDR:PORT to listen on") {
                    match w.text.parse::<std::net::SocketAddr>() {
                        Ok(a) => g.metrics_listen = Some(a),
                        Err(_) => cx.error(
                            w.span,
                            "metrics_listen needs ADDR:PORT, e.g. 127.0.0.1:9650 or [::1]:9650",
                        ),
                    }
                }
            }
            "vrrp_priority" => set(&mut v.nice, cx.int(n, -20..=19)),
            "vrrp_rt_priority" => set(&mut v.rt_priority, cx.int(n, 1..=99)),
            "lvs_flush" => set_val(&mut g.lvs.flush, cx.flag(n)),
            "lvs_flush_on_stop" => {
                cx.no_block(n);
                cx.at_most(n, 1);
                g.lvs.flush_on_stop = match n.args.first().map(|w| w.text.as_str()) {
                    None => Some(FlushOnStop::All),
                    Some("VS" | "vs") => Some(FlushOnStop::Vs),
                    Some(other) => {
                        cx.error(
                            n.args[0].span,
                            format!("lvs_flush_on_stop takes nothing or VS, found '{other}'"),
                        );
                        None
                    }
                };
            }
            "lvs_timeouts" => {
                if let Some(t) = lvs_timeouts(cx, n) {
                    g.lvs.timeouts = t;
                }
            }
            "lvs_sync_daemon" => set(&mut g.lvs.sync_daemon, lvs_sync_daemon(cx, n)),
            "lvs_sysctl" => lvs_sysctl(cx, n, &mut g.lvs.sysctl),
            // Applied by the reader to the includes that follow; checked here.
            "include_check" => include_check(cx, n),
            _ => cx.other(n, Section::GlobalDefs, EXTENSIONS),
        }
    }
    g.lvs.announce = match (announce.table, announce.other) {
        (Some((table, _)), _) => Some(AnnounceGlobals {
            table,
            protocol: announce
                .protocol
                .unwrap_or(AnnounceGlobals::DEFAULT_PROTOCOL),
            metric: announce.metric,
            withdraw_grace: announce
                .grace
                .unwrap_or(AnnounceGlobals::DEFAULT_WITHDRAW_GRACE),
            drain_metric: match announce.drain_metric {
                // The same route: nothing would tell the routers.
                Some((m, span)) if m == announce.metric.unwrap_or(0) => {
                    cx.error(
                        span,
                        format!("announce_drain_metric {m} is the routes' own metric: use another one, mapped by the routing daemon (conf/bird2-announce.conf)"),
                    );
                    None
                }
                m => m.map(|(m, _)| m),
            },
            drain_time: announce
                .drain_time
                .unwrap_or(AnnounceGlobals::DEFAULT_DRAIN_TIME),
        }),
        (None, Some((span, name))) => {
            cx.error(
                span,
                format!("`{name}` needs `announce_table N` in global_defs (the routing table announced VIPs go to)"),
            );
            None
        }
        (None, None) => None,
    };
    for (i, name) in ["notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"]
        .into_iter()
        .enumerate()
    {
        let Some((script, span)) = fifo_scripts[i].take() else {
            continue;
        };
        match fifo_slot(&mut g.notify_fifos, name) {
            Some(f) => f.script = Some(script),
            None => cx.warn(
                span,
                format!("`{name}_script` without `{name}`: the script is not started"),
            ),
        }
    }
}

fn fifo_index(name: &str) -> usize {
    match name {
        n if n.starts_with("vrrp_") => 1,
        n if n.starts_with("lvs_") => 2,
        _ => 0,
    }
}

fn fifo_slot<'a>(f: &'a mut NotifyFifos, name: &str) -> &'a mut Option<NotifyFifo> {
    match fifo_index(name) {
        1 => &mut f.vrrp,
        2 => &mut f.lvs,
        _ => &mut f.all,
    }
}

/// An `announce_*` line of global_defs; false when the keyword is not one.
fn announce_line(cx: &mut Ctx, n: &Node, a: &mut AnnounceLines) -> bool {
    let name = n.name();
    match name {
        "announce_table" => {
            if let Some(t) = cx.int::<u32>(n, 1..=i64::from(u32::MAX)) {
                if RESERVED_TABLES.contains(&t) {
                    cx.error(
                        n.args[0].span,
                        format!(
                            "announce_table {t} is a table the kernel routes by (default 253, main 254, local 255): use a dedicated table, e.g. 100"
                        ),
                    );
                } else {
                    a.table = Some((t, n.keyword.span));
                }
            }
            return true;
        }
        "announce_protocol" => {
            if let Some(p) = cx.int::<u8>(n, 0..=255) {
                match p {
                    0..=4 => cx.error(
                        n.args[0].span,
                        format!("announce_protocol {p} is reserved by the kernel (0-4): use e.g. 18 (the default) or a number of your own above 4"),
                    ),
                    11 | 12 | 186..=196 => cx.error(
                        n.args[0].span,
                        format!("announce_protocol {p} is a routing daemon's own number (zebra/FRR 11, 186-196; BIRD 12): it would take our routes for its own and delete them"),
                    ),
                    _ => a.protocol = Some(p),
                }
            }
        }
        "announce_metric" => set(&mut a.metric, cx.int(n, 0..=i64::from(u32::MAX))),
        "announce_withdraw_grace" => {
            if let Some(t) = cx.timer(n) {
                if t.0 > std::time::Duration::from_secs(3600) {
                    cx.error(
                        n.args[0].span,
                        "announce_withdraw_grace is at most 3600 seconds",
                    );
                } else {
                    a.grace = Some(t);
                }
            }
        }
        "announce_drain_metric" => {
            if let Some(m) = cx.int(n, 0..=i64::from(u32::MAX)) {
                a.drain_metric = Some((m, n.args[0].span));
            }
        }
        "announce_drain_time" => {
            if let Some(t) = cx.timer(n) {
                if t.0 > std::time::Duration::from_secs(3600) {
                    cx.error(
                        n.args[0].span,
                        "announce_drain_time is at most 3600 seconds",
                    );
                } else {
                    a.drain_time = Some(t);
                }
            }
        }
        _ => return false,
    }
    if a.other.is_none() {
        a.other = Some((n.keyword.span, name.to_string()));
    }
    true
}

/// `notify_fifo PATH [USER [GROUP]]`: an absolute path (the FIFO is
/// created as root; a relative one would depend on the daemon's directory).
fn notify_fifo(cx: &mut Ctx, n: &Node) -> Option<NotifyFifo> {
    cx.no_block(n);
    cx.at_most(n, 3);
    let p = cx.arg(n, 0, "the path of a FIFO")?;
    let path = std::path::PathBuf::from(&*p.text);
    if !path.is_absolute() {
        cx.error(p.span, format!("`{}` needs an absolute path", n.name()));
        return None;
    }
    let owner = n.args.get(1).map(|u| ScriptUser {
        user: u.text.to_string(),
        group: n.args.get(2).map(|g| g.text.to_string()),
    });
    Some(NotifyFifo {
        path,
        owner,
        script: None,
    })
}

/// `include_check [[+|-]read|match|wildcard_match|brace_match ...]`.
fn include_check(cx: &mut Ctx, n: &Node) {
    cx.no_block(n);
    for (i, w) in n.args.iter().enumerate() {
        let name = w.text.trim_start_matches(['+', '-']);
        let op = name.len() != w.text.len();
        if !op && i > 0 {
            cx.error(
                w.span,
                format!(
                    "include_check: '{}' given after the first option: prefix it with + or -",
                    w.text
                ),
            );
        } else if !matches!(name, "read" | "match" | "wildcard_match" | "brace_match") {
            cx.error(
                w.span,
                format!("include_check: unknown check '{name}': use read, match, wildcard_match or brace_match"),
            );
        }
    }
}

/// Stores a parsed value when parsing succeeded.
pub fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

pub fn set_val<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn lvs_timeouts(cx: &mut Ctx, n: &Node) -> Option<LvsTimeouts> {
    cx.no_block(n);
    let mut t = LvsTimeouts::default();
    let mut args = n.args.iter();
    while let Some(k) = args.next() {
        let slot = match k.text.as_str() {
            "tcp" => &mut t.tcp,
            "tcpfin" => &mut t.tcpfin,
            "udp" => &mut t.udp,
            other => {
                cx.error(
                    k.span,
                    format!("lvs_timeouts: unknown timeout '{other}': use tcp, tcpfin or udp"),
                );
                return None;
            }
        };
        let Some(v) = args.next() else {
            cx.error(k.span, format!("lvs_timeouts: `{}` needs seconds", k.text));
            return None;
        };
        // keepalived's range: 0 (leave the kernel's) to 31 days.
        *slot = Some(cx.int_word(&k.text, v, 0..=86400 * 31)? as u32);
    }
    if t == LvsTimeouts::default() {
        cx.error(
            n.keyword.span,
            "lvs_timeouts needs at least one of tcp, tcpfin, udp SECS",
        );
        return None;
    }
    Some(t)
}

/// `lvs_sysctl NAME VALUE [NAME VALUE ...]`, or a block with one `NAME
/// VALUE` per line (ipvsdir's): the IPVS sysctls of [`LvsSysctls`].
fn lvs_sysctl(cx: &mut Ctx, n: &Node, out: &mut LvsSysctls) {
    let mut pairs: Vec<(&Word, Option<&Word>)> = Vec::new();
    let mut args = n.args.iter();
    while let Some(k) = args.next() {
        pairs.push((k, args.next()));
    }
    if let Some(b) = &n.block {
        for line in b.nodes.iter() {
            cx.no_block(line);
            cx.at_most(line, 1);
            pairs.push((&line.keyword, line.args.first()));
        }
    }
    if pairs.is_empty() {
        cx.error(
            n.keyword.span,
            "lvs_sysctl needs NAME VALUE pairs, e.g. `lvs_sysctl sloppy_tcp 1 conn_reuse_mode 0`",
        );
    }
    let names = LvsSysctls::ALL.map(|(name, _)| name).join(", ");
    for (k, v) in pairs {
        let Some(&(name, max)) = LvsSysctls::ALL.iter().find(|(s, _)| *s == k.text.as_str()) else {
            let mut msg = format!("lvs_sysctl: unknown sysctl '{}': use {names}", k.text);
            if let Some(s) = suggest(&k.text, LvsSysctls::ALL.iter().map(|(s, _)| *s)) {
                msg = format!(
                    "lvs_sysctl: unknown sysctl '{}'; did you mean `{s}`?",
                    k.text
                );
            }
            cx.error(k.span, msg);
            continue;
        };
        let Some(v) = v else {
            cx.error(
                k.span,
                format!("lvs_sysctl: `{name}` needs a value 0-{max}"),
            );
            continue;
        };
        if let (Some(value), Some(slot)) =
            (cx.int_word(name, v, 0..=i64::from(max)), out.slot(name))
        {
            *slot = Some(value as u8);
        }
    }
}

/// `lvs_sync_daemon IF [[inst] VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`
fn lvs_sync_daemon(cx: &mut Ctx, n: &Node) -> Option<LvsSyncDaemon> {
    cx.no_block(n);
    let interface = cx.arg(n, 0, "an interface name")?.text.to_string();
    let mut d = LvsSyncDaemon {
        interface,
        vrrp_instance: None,
        sync_id: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut args = n.args[1..].iter().peekable();
    while let Some(k) = args.next() {
        let key = k.text.as_str();
        if !matches!(key, "inst" | "id" | "maxlen" | "port" | "ttl" | "group") {
            if d.vrrp_instance.is_none() {
                d.vrrp_instance = Some(k.text.to_string());
                continue;
            }
            cx.error(k.span, format!("lvs_sync_daemon: unexpected '{key}'"));
            return None;
        }
        let Some(v) = args.next() else {
            cx.error(k.span, format!("lvs_sync_daemon: `{key}` needs a value"));
            return None;
        };
        match key {
            "inst" => d.vrrp_instance = Some(v.text.to_string()),
            "id" => d.sync_id = Some(cx.int_word("id", v, 0..=255)? as u8),
            "maxlen" => d.maxlen = Some(cx.int_word("maxlen", v, 1..=65507)? as u16),
            "port" => d.port = Some(cx.int_word("port", v, 1..=65535)? as u16),
            "ttl" => d.ttl = Some(cx.int_word("ttl", v, 1..=255)? as u8),
            _ => d.group = Some(cx.ip_word(v)?),
        }
    }
    Some(d)
}
