//! `virtual_server_group`, `virtual_server`, `real_server` and the checkers.
//! Checker settings inherit virtual_server -> real_server -> checker.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::keywords::Section;
use crate::config::model::{
    CheckCommon, CheckKind, Checker, DnsCheck, Family, ForwardMethod, GroupEntry, HttpCheck,
    HttpVersion, MiscCheck, Persistence, Protocol, RealServer, SchedFlags, Scheduler, Script,
    ScriptUser, SmtpCheck, SmtpHost, SorryServer, StatusCodes, Timer, TunnelChecksum, TunnelType,
    UdpCheck, Url, VirtualServer, VirtualServerGroup, VirtualServerKey,
};
use crate::config::source::Span;
use crate::config::tree::{Node, Word};

use super::ctx::{Ctx, suggest};
use super::global::{set, set_val};

/// Checker settings that may be given at any of the three levels.
#[derive(Clone, Default)]
struct Inherited {
    connect_timeout: Option<Timer>,
    retry: Option<u32>,
    delay_before_retry: Option<Timer>,
    warmup: Option<Timer>,
    delay_loop: Option<Timer>,
    alpha: Option<bool>,
    inhibit_on_failure: Option<bool>,
    slow_start: Option<Timer>,
    virtualhost: Option<String>,
}

impl Inherited {
    /// Handles the keyword if it is one of the inherited settings.
    fn take(&mut self, cx: &mut Ctx, n: &Node) -> bool {
        match n.name() {
            "connect_timeout" => set(&mut self.connect_timeout, cx.timer(n)),
            "retry" => set(&mut self.retry, cx.int(n, 0..=i64::from(u32::MAX))),
            "nb_get_retry" => {
                cx.warn(n.keyword.span, "nb_get_retry is deprecated: use `retry`");
                set(&mut self.retry, cx.int(n, 0..=i64::from(u32::MAX)))
            }
            "delay_before_retry" => set(&mut self.delay_before_retry, cx.timer(n)),
            "warmup" => set(&mut self.warmup, cx.timer(n)),
            "delay_loop" => {
                if let Some(t) = cx.timer(n) {
                    if t.0.is_zero() {
                        cx.error(n.args[0].span, "delay_loop must be above 0 seconds");
                    } else {
                        self.delay_loop = Some(t);
                    }
                }
            }
            "alpha" => set(&mut self.alpha, cx.flag(n)),
            "inhibit_on_failure" => set(&mut self.inhibit_on_failure, cx.flag(n)),
            "slow_start" => set(&mut self.slow_start, cx.timer(n)),
            "virtualhost" => set(&mut self.virtualhost, cx.string(n, "a host name")),
            _ => return false,
        }
        true
    }

    /// `self` with unset fields taken from `parent`.
    fn over(&self, parent: &Inherited) -> Inherited {
        Inherited {
            connect_timeout: self.connect_timeout.or(parent.connect_timeout),
            retry: self.retry.or(parent.retry),
            delay_before_retry: self.delay_before_retry.or(parent.delay_before_retry),
            warmup: self.warmup.or(parent.warmup),
            delay_loop: self.delay_loop.or(parent.delay_loop),
            alpha: self.alpha.or(parent.alpha),
            inhibit_on_failure: self.inhibit_on_failure.or(parent.inhibit_on_failure),
            slow_start: self.slow_start.or(parent.slow_start),
            virtualhost: self.virtualhost.clone().or(parent.virtualhost.clone()),
        }
    }
}

const DEFAULT_DELAY_LOOP: Timer = Timer::secs(60);

/// Known virtual_server_group names and the services already defined.
#[derive(Default)]
pub struct LvsNames {
    pub groups: HashSet<String>,
    pub services: crate::FastMap<(VirtualServerKey, Protocol), Span>,
    /// Virtual servers with `announce`, checked against global_defs and
    /// the VRRP instances once all are read.
    pub announce: Vec<AnnounceUse>,
    /// Announced virtual servers, checked for settings that reset
    /// connections when ECMP moves them (once global_defs is known).
    pub ecmp: Vec<EcmpUse>,
}

/// An announced virtual server and where its forwarding settings stand.
pub struct EcmpUse {
    /// The `virtual_server` keyword.
    pub span: Span,
    pub name: String,
    pub protocol: Protocol,
    pub scheduler: (Scheduler, Option<Span>),
    pub sched_flags: SchedFlags,
    pub nat: Option<Option<Span>>,
    pub persistence: Option<Span>,
}

/// Where a virtual server asks to be announced.
pub struct AnnounceUse {
    /// The `announce` keyword.
    pub span: Span,
    pub key: VirtualServerKey,
    /// `announce_track_instance NAME` and where NAME stands.
    pub instance: Option<(String, Span)>,
}

pub fn virtual_server_group(cx: &mut Ctx, node: &Node) -> Option<VirtualServerGroup> {
    cx.at_most(node, 1);
    let name = cx.arg(
        node,
        0,
        "a name: `virtual_server_group NAME { IP PORT ... }`",
    )?;
    let body = cx.block(node)?;
    let mut g = VirtualServerGroup {
        name: name.text.to_string(),
        entries: Vec::new(),
    };
    for n in body {
        cx.no_block(n);
        if n.name() == "fwmark" {
            cx.at_most(n, 2);
            let Some(w) = cx.arg(n, 0, "a mark 1-4294967295") else {
                continue;
            };
            let Some(mark) = cx.int_word("fwmark", w, 1..=i64::from(u32::MAX)) else {
                continue;
            };
            let Some(family) = family_arg(cx, n.args.get(1)) else {
                continue;
            };
            g.entries.push(GroupEntry::Fwmark {
                mark: mark as u32,
                family,
            });
            continue;
        }
        cx.at_most(n, 1);
        let Some((first, last)) = address_range(cx, &n.keyword) else {
            continue;
        };
        // keepalived takes an entry without a port as port 0 (every port:
        // a persistent service's form).
        let port = match n.args.first() {
            Some(pw) => cx.port_word(pw),
            None => Some(0),
        };
        if let Some(port) = port {
            g.entries.push(GroupEntry::Range { first, last, port });
        }
    }
    if g.entries.is_empty() {
        cx.warn(
            name.span,
            format!("virtual_server_group {} is empty", g.name),
        );
    }
    Some(g)
}

fn family_arg(cx: &mut Ctx, w: Option<&Word>) -> Option<Family> {
    match w.map(|w| (w, w.text.as_str())) {
        None | Some((_, "inet")) => Some(Family::Inet),
        Some((_, "inet6")) => Some(Family::Inet6),
        Some((w, other)) => {
            cx.error(
                w.span,
                format!("unknown address family '{other}': use inet or inet6"),
            );
            None
        }
    }
}

/// `A.B.C.D-E` (last octet range) or `X::Y-Z` (last group range), or one address.
fn address_range(cx: &mut Ctx, w: &Word) -> Option<(IpAddr, IpAddr)> {
    let (base, end) = match w.text.rsplit_once('-') {
        Some((b, e)) => (b, Some(e)),
        None => (w.text.as_str(), None),
    };
    let Ok(first) = base.parse::<IpAddr>() else {
        cx.error(
            w.span,
            format!(
                "'{}' is not a valid IP address or range (A.B.C.D-E)",
                w.text
            ),
        );
        return None;
    };
    let Some(end) = end else {
        return Some((first, first));
    };
    let last = match first {
        IpAddr::V4(a) => {
            let o = a.octets();
            match end.parse::<u8>() {
                Ok(e) if e >= o[3] => Some(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], e))),
                _ => None,
            }
        }
        IpAddr::V6(a) => {
            let mut s = a.segments();
            match u16::from_str_radix(end, 16) {
                Ok(e) if e >= s[7] => {
                    s[7] = e;
                    Some(IpAddr::V6(Ipv6Addr::from(s)))
                }
                _ => None,
            }
        }
    };
    match last {
        Some(l) => Some((first, l)),
        None => {
            cx.error(
                w.span,
                format!(
                    "bad range '{}': the end must be a number not below the address's last part",
                    w.text
                ),
            );
            None
        }
    }
}

fn method(cx: &mut Ctx, n: &Node) -> Option<ForwardMethod> {
    cx.no_block(n);
    let w = cx.arg(n, 0, "NAT, DR or TUN")?;
    let upper = w.text.to_ascii_uppercase();
    if upper != w.text.as_str() && matches!(upper.as_str(), "NAT" | "DR" | "TUN") {
        cx.warn(w.span, format!("`{} {}` taken as {upper}; write {upper} (keepalived 2.2.7 rejects '{}' and falls back to NAT)", n.name(), w.text, w.text));
    }
    let m = match upper.as_str() {
        "NAT" => ForwardMethod::Nat,
        "DR" => ForwardMethod::Dr,
        "TUN" => {
            let mut tunnel = TunnelType::Ipip;
            let mut checksum = None;
            let mut args = n.args[1..].iter();
            while let Some(k) = args.next() {
                match k.text.as_str() {
                    "type" => {
                        let Some(t) = args.next() else {
                            cx.error(k.span, "`type` needs ipip, gue or gre");
                            return None;
                        };
                        tunnel = match t.text.as_str() {
                            "ipip" => TunnelType::Ipip,
                            "gre" => TunnelType::Gre,
                            "gue" => {
                                let port = match (args.next(), args.next()) {
                                    (Some(p), Some(v)) if p.text == "port" => {
                                        cx.int_word("port", v, 1..=65535)? as u16
                                    }
                                    _ => {
                                        cx.error(t.span, "tunnel type gue needs `port N`");
                                        return None;
                                    }
                                };
                                TunnelType::Gue { port }
                            }
                            other => {
                                cx.error(t.span, format!("unknown tunnel type '{other}': use ipip, gue port N, or gre"));
                                return None;
                            }
                        };
                    }
                    "nocsum" => checksum = Some(TunnelChecksum::Nocsum),
                    "csum" => checksum = Some(TunnelChecksum::Csum),
                    "remcsum" => checksum = Some(TunnelChecksum::Remcsum),
                    other => {
                        cx.error(k.span, format!("unexpected '{other}' after TUN: use `TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`"));
                        return None;
                    }
                }
            }
            if checksum.is_some() && tunnel == TunnelType::Ipip {
                cx.error(
                    n.span(),
                    "tunnel checksum options need `type gue` or `type gre`",
                );
                return None;
            }
            if checksum == Some(TunnelChecksum::Remcsum) && tunnel == TunnelType::Gre {
                cx.error(n.span(), "remcsum is not available with GRE tunnels");
                return None;
            }
            return Some(ForwardMethod::Tun { tunnel, checksum });
        }
        other => {
            cx.error(
                w.span,
                format!("unknown forwarding method '{other}': use NAT, DR or TUN"),
            );
            return None;
        }
    };
    cx.at_most(n, 1);
    Some(m)
}

fn scheduler(cx: &mut Ctx, n: &Node) -> Option<Scheduler> {
    let w = cx.string(n, "a scheduler (rr, wrr, lc, wlc, ...)")?;
    let lower = w.to_ascii_lowercase();
    if let Some((_, s)) = Scheduler::ALL.iter().find(|(name, _)| *name == lower) {
        return Some(*s);
    }
    let names: Vec<&str> = Scheduler::ALL.iter().map(|(n, _)| *n).collect();
    cx.error(
        n.args[0].span,
        format!("unknown scheduler '{w}': use one of {}", names.join(" ")),
    );
    None
}

fn protocol(cx: &mut Ctx, n: &Node) -> Option<Protocol> {
    let w = cx.string(n, "TCP, UDP or SCTP")?;
    match w.to_ascii_uppercase().as_str() {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => {
            cx.error(
                n.args[0].span,
                format!("unknown protocol '{w}': use TCP, UDP or SCTP"),
            );
            None
        }
    }
}

fn describe(key: &VirtualServerKey) -> String {
    match key {
        VirtualServerKey::Addr {
            addr: IpAddr::V6(a),
            port,
        } => format!("[{a}]:{port}"),
        VirtualServerKey::Addr { addr, port } => format!("{addr}:{port}"),
        VirtualServerKey::Fwmark { mark, .. } => format!("fwmark {mark}"),
        VirtualServerKey::Group { name } => format!("group {name}"),
    }
}

/// Keywords ipvsdir adds to keepalived's virtual_server.
const VS_EXTENSIONS: &[&str] = &["announce", "announce_track_instance"];

pub fn virtual_server(cx: &mut Ctx, node: &Node, names: &mut LvsNames) -> Option<VirtualServer> {
    let body = cx.block(node)?;
    let head = node.span();
    let first = cx.arg(node, 0, "an address and port, `fwmark N` or `group NAME`")?;
    let mut port_given = true;
    let mut key = match first.text.as_str() {
        "fwmark" => {
            cx.at_most(node, 2);
            let w = cx.arg(node, 1, "a mark 1-4294967295")?;
            let mark = cx.int_word("fwmark", w, 1..=i64::from(u32::MAX))? as u32;
            VirtualServerKey::Fwmark {
                mark,
                family: Family::Inet,
            }
        }
        "group" => {
            cx.at_most(node, 2);
            let w = cx.arg(node, 1, "a virtual_server_group name")?;
            if !names.groups.contains(w.text.as_str()) {
                let mut msg = format!(
                    "virtual_server group '{}' is not defined: add `virtual_server_group {} {{ IP PORT ... }}`",
                    w.text, w.text
                );
                if let Some(s) = suggest(&w.text, names.groups.iter().map(String::as_str)) {
                    msg.push_str(&format!(" or did you mean '{s}'?"));
                }
                cx.error(w.span, msg);
                return None;
            }
            VirtualServerKey::Group {
                name: w.text.to_string(),
            }
        }
        _ => {
            cx.at_most(node, 2);
            let addr = cx.ip_word(first)?;
            let port = match node.args.get(1) {
                Some(p) => cx.port_word(p)?,
                None => {
                    port_given = false;
                    0
                }
            };
            VirtualServerKey::Addr { addr, port }
        }
    };

    let mut vs = VirtualServer {
        key: key.clone(),
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Wlc,
        sched_flags: SchedFlags::default(),
        method: ForwardMethod::Nat,
        persistence: None,
        persistence_engine: None,
        ops: false,
        delay_loop: DEFAULT_DELAY_LOOP,
        sorry_server: None,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        inhibit_on_failure: false,
        ha_suspend: false,
        virtualhost: None,
        smtp_alert: cx.smtp_defaults.virtual_server,
        announce: false,
        announce_track_instance: None,
        real_servers: Vec::new(),
    };
    let mut inherited = Inherited::default();
    let mut sorry: Option<(&Node, IpAddr, Option<u16>)> = None;
    let mut sorry_method = None;
    let mut sorry_inhibit = false;
    let mut sh_flag: Option<&Node> = None;
    let mut mh_flag: Option<&Node> = None;
    let mut granularity: Option<IpAddr> = None;
    let mut persistence_timeout: Option<u32> = None;
    let mut family: Option<Family> = None;
    let mut ops_node = None;
    let mut hysteresis_node = None;
    let mut quorum_node = None;
    let mut protocol_node = None;
    let mut announce_node: Option<&Node> = None;
    let mut track_node: Option<&Node> = None;
    let mut sched_node: Option<&Node> = None;
    let mut method_node: Option<&Node> = None;
    let mut persistence_node: Option<&Node> = None;

    for n in body {
        // keepalived's virtual_server `alpha` and `omega` take no argument
        // and ignore one (even `off`).
        if matches!(n.name(), "alpha" | "omega") && !n.args.is_empty() {
            let last = n.args.last().map_or(n.keyword.span, |w| w.span);
            cx.warn(
                n.args[0].span.to(last),
                format!(
                    "`{}` takes no argument in a virtual_server: keepalived ignores it and turns {} on",
                    n.name(),
                    n.name()
                ),
            );
            if n.name() == "alpha" {
                inherited.alpha = Some(true);
            } else {
                vs.omega = true;
            }
            continue;
        }
        if inherited.take(cx, n) {
            continue;
        }
        match n.name() {
            "real_server" => {}
            "lb_algo" | "lvs_sched" => {
                sched_node = Some(n);
                set_val(&mut vs.scheduler, scheduler(cx, n))
            }
            "lb_kind" | "lvs_method" => {
                method_node = Some(n);
                set_val(&mut vs.method, method(cx, n))
            }
            "persistence_timeout" => {
                persistence_node = Some(n);
                cx.no_block(n);
                cx.at_most(n, 1);
                persistence_timeout = match n.args.first() {
                    None => Some(360),
                    Some(w) if w.text.parse::<i64>() == Ok(0) => {
                        cx.warn(
                            w.span,
                            "persistence_timeout 0 means no persistence: ignored, as keepalived does \
                             (keepalived's -t reports it as invalid); remove the line",
                        );
                        None
                    }
                    Some(w) => cx
                        .int_word("persistence_timeout", w, 1..=i64::from(u32::MAX / 1000))
                        .map(|v| v as u32),
                };
            }
            "persistence_granularity" => {
                if let Some(w) =
                    cx.string(n, "a netmask (e.g. 255.255.255.0) or IPv6 prefix length")
                {
                    match w.parse::<IpAddr>() {
                        Ok(a) => granularity = Some(a),
                        Err(_) => match w.parse::<u8>() {
                            Ok(l) if l <= 128 => {
                                granularity = Some(IpAddr::V6(Ipv6Addr::from(
                                    u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0),
                                )))
                            }
                            _ => cx.error(
                                n.args[0].span,
                                format!("persistence_granularity '{w}' is not a netmask"),
                            ),
                        },
                    }
                }
            }
            "persistence_engine" => set(
                &mut vs.persistence_engine,
                cx.string(n, "an engine name (sip)"),
            ),
            "protocol" => {
                protocol_node = Some(n);
                set_val(&mut vs.protocol, protocol(cx, n));
            }
            "ops" => {
                ops_node = Some(n);
                set_val(&mut vs.ops, cx.flag(n));
            }
            "flag-1" => set_val(&mut vs.sched_flags.flag_1, cx.flag(n)),
            "flag-2" => set_val(&mut vs.sched_flags.flag_2, cx.flag(n)),
            "flag-3" => set_val(&mut vs.sched_flags.flag_3, cx.flag(n)),
            "sh-fallback" => {
                sh_flag = Some(n);
                set_val(&mut vs.sched_flags.flag_1, cx.flag(n));
            }
            "sh-port" => {
                sh_flag = Some(n);
                set_val(&mut vs.sched_flags.flag_2, cx.flag(n));
            }
            "mh-fallback" => {
                mh_flag = Some(n);
                set_val(&mut vs.sched_flags.flag_1, cx.flag(n));
            }
            "mh-port" => {
                mh_flag = Some(n);
                set_val(&mut vs.sched_flags.flag_2, cx.flag(n));
            }
            "sorry_server" => {
                cx.no_block(n);
                cx.at_most(n, 2);
                if let Some(w) = cx.arg(n, 0, "an address and port")
                    && let Some(addr) = cx.ip_word(w)
                {
                    let port = match n.args.get(1) {
                        Some(p) => match cx.port_word(p) {
                            Some(p) => Some(p),
                            None => continue,
                        },
                        None => None,
                    };
                    sorry = Some((n, addr, port));
                }
            }
            "sorry_server_inhibit" => set_val(&mut sorry_inhibit, cx.flag(n)),
            "sorry_server_lvs_method" => set(&mut sorry_method, method(cx, n)),
            "omega" => set_val(&mut vs.omega, cx.flag(n)),
            "quorum" => {
                quorum_node = Some(n);
                set_val(&mut vs.quorum, cx.int(n, 1..=i64::from(u32::MAX)));
            }
            "hysteresis" => {
                hysteresis_node = Some(n);
                set_val(&mut vs.hysteresis, cx.int(n, 0..=i64::from(u32::MAX)));
            }
            "quorum_up" => set(&mut vs.quorum_up, cx.script(n)),
            "quorum_down" => set(&mut vs.quorum_down, cx.script(n)),
            "ha_suspend" => set_val(&mut vs.ha_suspend, cx.flag(n)),
            "smtp_alert" => set_val(&mut vs.smtp_alert, cx.flag(n)),
            "ip_family" => {
                cx.no_block(n);
                cx.at_most(n, 1);
                family = family_arg(cx, n.args.first());
            }
            "announce" => {
                announce_node = Some(n);
                set_val(&mut vs.announce, cx.flag(n));
            }
            "announce_track_instance" => {
                if let Some(name) = cx.string(n, "a vrrp_instance name") {
                    track_node = Some(n);
                    vs.announce_track_instance = Some(name);
                }
            }
            _ => cx.other(n, Section::VirtualServer, VS_EXTENSIONS),
        }
    }

    // Cross-checks of the virtual server's own settings.
    if let Some(t) = track_node
        && !vs.announce
    {
        cx.error(
            t.keyword.span,
            "`announce_track_instance` without `announce`: add `announce` or remove it",
        );
    }
    if vs.announce
        && let Some(a) = announce_node
    {
        if matches!(key, VirtualServerKey::Fwmark { .. }) {
            cx.error(
                a.keyword.span,
                "a fwmark virtual_server has no address to announce: announce the virtual_server of its VIP instead",
            );
        } else {
            names.announce.push(AnnounceUse {
                span: a.keyword.span,
                key: key.clone(),
                instance: track_node.and_then(|t| {
                    let w = t.args.first()?;
                    Some((w.text.to_string(), w.span))
                }),
            });
        }
    }
    if let Some(n) = sh_flag
        && vs.scheduler != Scheduler::Sh
    {
        cx.error(
            n.keyword.span,
            format!(
                "`{}` is only for the sh scheduler: add `lb_algo sh` or remove it",
                n.name()
            ),
        );
    }
    if let Some(n) = mh_flag
        && vs.scheduler != Scheduler::Mh
    {
        cx.error(
            n.keyword.span,
            format!(
                "`{}` is only for the mh scheduler: add `lb_algo mh` or remove it",
                n.name()
            ),
        );
    }
    if let Some(n) = ops_node
        && vs.ops
        && vs.protocol != Protocol::Udp
    {
        cx.warn(
            n.keyword.span,
            "ops (one-packet scheduling) only applies to UDP services",
        );
    }
    if let Some(n) = protocol_node
        && matches!(key, VirtualServerKey::Fwmark { .. })
    {
        cx.warn(
            n.keyword.span,
            "protocol is ignored for a fwmark service (the mark selects the packets)",
        );
    }
    if let VirtualServerKey::Fwmark { family: f, .. } = &mut key {
        // As keepalived: ip_family, else the persistence netmask's, else
        // the family of the first real (or sorry) server's address.
        let server_family = body
            .iter()
            .filter(|n| matches!(n.name(), "real_server" | "sorry_server"))
            .find_map(|n| n.args.first()?.text.parse::<IpAddr>().ok());
        *f = family.unwrap_or(match granularity.or(server_family) {
            Some(IpAddr::V6(_)) => Family::Inet6,
            _ => Family::Inet,
        });
    }
    vs.key = key.clone();
    if persistence_timeout.is_none() && granularity.is_some() {
        persistence_timeout = Some(360);
    }
    if let Some(timeout) = persistence_timeout {
        vs.persistence = Some(Persistence {
            timeout,
            granularity,
        });
    }
    if vs.announce && !matches!(key, VirtualServerKey::Fwmark { .. }) {
        names.ecmp.push(EcmpUse {
            span: node.keyword.span,
            name: crate::lvs::names::virtual_server(&vs),
            protocol: vs.protocol,
            scheduler: (vs.scheduler, sched_node.map(|n| n.span())),
            sched_flags: vs.sched_flags,
            nat: (vs.method == ForwardMethod::Nat).then(|| method_node.map(|n| n.span())),
            persistence: vs
                .persistence
                .as_ref()
                .map(|_| persistence_node.map_or(node.keyword.span, |n| n.span())),
        });
    }
    if !port_given && vs.persistence.is_none() {
        cx.error(head, format!("virtual_server {} has no port: a port may be omitted only for a persistent service (add `persistence_timeout`) — or give the port", first.text));
    }
    if let Some(d) = inherited.delay_loop {
        vs.delay_loop = d;
    }
    vs.alpha = inherited.alpha.unwrap_or(false);
    vs.inhibit_on_failure = inherited.inhibit_on_failure.unwrap_or(false);
    vs.virtualhost = inherited.virtualhost.clone();

    let proto_key = if matches!(key, VirtualServerKey::Fwmark { .. }) {
        Protocol::Tcp
    } else {
        vs.protocol
    };
    if let Some(prev) = names.services.insert((key.clone(), proto_key), head) {
        let at = cx.sources.locate(prev);
        if let VirtualServerKey::Group { name } = &key {
            // keepalived accepts a group used by two virtual_server blocks;
            // for the services they share, the later block applies.
            cx.warn(
                head,
                format!(
                    "virtual_server group {name} is used twice (first at {}:{}:{}): the later block applies to the services they share",
                    at.path, at.line, at.col
                ),
            );
        } else {
            cx.error(
                head,
                format!(
                    "virtual_server {} {:?} is defined twice (first at {}:{}:{})",
                    describe(&key),
                    vs.protocol,
                    at.path,
                    at.line,
                    at.col
                )
                .replace("Tcp", "TCP")
                .replace("Udp", "UDP")
                .replace("Sctp", "SCTP"),
            );
        }
    }

    let vs_port = match key {
        VirtualServerKey::Addr { port, .. } => port,
        _ => 0,
    };
    let mut seen: crate::FastMap<(IpAddr, u16), Span> = crate::FastMap::default();
    // A DR/TUN group's real servers by address (their ports collapse).
    let mut group_dr: crate::FastMap<IpAddr, (u16, Span)> = crate::FastMap::default();
    // Sized once: a virtual server may hold thousands of real servers.
    vs.real_servers
        .reserve_exact(body.iter().filter(|n| n.name() == "real_server").count());
    for n in body.iter().filter(|n| n.name() == "real_server") {
        let Some(rs) = real_server(cx, n, &vs, vs_port, &inherited) else {
            continue;
        };
        if let Some(&prev) = seen.get(&(rs.addr, rs.port)) {
            // keepalived 2.2.7 runs with the first ("real server ... is
            // duplicated - removing second rs"); so do we, saying so.
            let at = cx.sources.locate(prev).line;
            let dr = non_nat_port(&vs.key, rs.method).is_some();
            let written = n.args.get(1).and_then(|w| w.text.parse::<u16>().ok());
            let msg = match written {
                Some(p) if dr && p != rs.port => format!(
                    "real_server {} {p} is the same IPVS destination as the one at line {at}: with DR/TUN the kernel keeps the service's port ({}); this one is ignored (keepalived keeps both, which then fight over one destination): give its checks to the first one",
                    rs.addr, rs.port
                ),
                _ => format!(
                    "real_server {} {} is defined twice in this virtual_server (first at line {at}): this one is ignored, as keepalived does",
                    rs.addr, rs.port
                ),
            };
            cx.warn(n.span(), msg);
            continue;
        }
        seen.insert((rs.addr, rs.port), n.span());
        let collapses =
            matches!(vs.key, VirtualServerKey::Group { .. }) && rs.method != ForwardMethod::Nat;
        if collapses
            && let Some(&(port, prev)) = group_dr.get(&rs.addr)
            && port != rs.port
        {
            let at = cx.sources.locate(prev).line;
            cx.warn(
                n.span(),
                format!(
                    "real_server {} {} and the one at line {at} ({port}) are one IPVS destination in each of the group's services: with DR/TUN the kernel keeps the entry's port; only the one with the higher weight at a time is installed (use NAT, or one real_server per address)",
                    rs.addr, rs.port
                ),
            );
        }
        if collapses {
            group_dr.entry(rs.addr).or_insert((rs.port, n.span()));
        }
        vs.real_servers.push(rs);
    }
    if let Some((n, addr, port)) = sorry {
        let method = sorry_method.unwrap_or(vs.method);
        let port = match (non_nat_port(&vs.key, method), port) {
            (Some(kernel), Some(p)) if p != kernel => {
                cx.warn(n.keyword.span, format!("with DR/TUN the sorry_server's port is the service's: {p} is reset to {kernel}, as keepalived does"));
                Some(kernel)
            }
            (Some(kernel), _) => Some(kernel),
            (None, p) => p,
        };
        vs.sorry_server = Some(SorryServer {
            addr,
            port: port.unwrap_or(vs_port),
            method,
            inhibit: sorry_inhibit,
        });
        if port.is_none()
            && vs_port == 0
            && !matches!(
                vs.key,
                VirtualServerKey::Fwmark { .. } | VirtualServerKey::Addr { .. }
            )
        {
            cx.warn(n.keyword.span, "sorry_server has no port");
        }
    }
    if vs.real_servers.is_empty() {
        // keepalived 2.2.7 ignores it, its sorry_server too.
        cx.warn(
            head,
            format!(
                "virtual_server {} has no real_server: ignored, as keepalived ignores it",
                describe(&vs.key)
            ),
        );
        return None;
    }
    // keepalived's corrections, in its order: a quorum above the real
    // servers' total weight could never be reached; a hysteresis at or
    // above the quorum could never let it be lost.
    let total: u64 = vs.real_servers.iter().map(|r| u64::from(r.weight)).sum();
    if u64::from(vs.quorum) > total {
        let at = quorum_node.map_or(head, |n| n.keyword.span);
        cx.warn(
            at,
            format!(
                "quorum {} exceeds the real servers' total weight {total}: reduced to {total}, as keepalived does",
                vs.quorum
            ),
        );
        vs.quorum = u32::try_from(total).unwrap_or(u32::MAX);
    }
    if vs.hysteresis >= vs.quorum {
        // keepalived: quorum - 1, which wraps for a quorum of 0: such a
        // quorum is then never held (the sorry server stays), as in keepalived.
        let h = vs.quorum.wrapping_sub(1);
        let at = hysteresis_node
            .or(quorum_node)
            .map_or(head, |n| n.keyword.span);
        cx.warn(
            at,
            format!(
                "hysteresis {} is not below quorum {}: set to {h}, as keepalived does",
                vs.hysteresis, vs.quorum
            ),
        );
        vs.hysteresis = h;
    }
    Some(vs)
}

fn real_server(
    cx: &mut Ctx,
    node: &Node,
    vs: &VirtualServer,
    vs_port: u16,
    parent: &Inherited,
) -> Option<RealServer> {
    cx.at_most(node, 2);
    let aw = cx.arg(node, 0, "an address and port")?;
    let addr = cx.ip_word(aw)?;
    let port = match node.args.get(1) {
        Some(p) => cx.port_word(p)?,
        None => vs_port,
    };
    if let VirtualServerKey::Addr { addr: va, .. } = vs.key
        && va.is_ipv4() != addr.is_ipv4()
        && !matches!(vs.method, ForwardMethod::Tun { .. })
    {
        cx.error(aw.span, format!("real_server {addr} and virtual_server {va} are of different address families (only TUN can mix them)"));
    }
    let body = cx.block(node)?;
    let mut own = Inherited::default();
    let mut rs = RealServer {
        addr,
        port,
        weight: 1,
        method: vs.method,
        uthreshold: 0,
        lthreshold: 0,
        inhibit_on_failure: false,
        slow_start: None,
        notify_up: None,
        notify_down: None,
        virtualhost: None,
        // Not the virtual server's: keepalived's real servers take the
        // global default.
        smtp_alert: cx.smtp_defaults.real_server,
        checkers: Vec::new(),
    };
    let mut method_node = None;
    let mut unsupported: Vec<&Node> = Vec::new();
    let mut judges: Vec<&str> = Vec::new();
    for n in body {
        if own.take(cx, n) {
            continue;
        }
        match n.name() {
            "weight" => set_val(&mut rs.weight, cx.int(n, 0..=65535)),
            "lb_kind" | "lvs_method" => {
                method_node = Some(n);
                set_val(&mut rs.method, method(cx, n));
            }
            // The kernel's (and keepalived's) range: any u32.
            "uthreshold" => set_val(&mut rs.uthreshold, cx.int(n, 0..=i64::from(u32::MAX))),
            "lthreshold" => set_val(&mut rs.lthreshold, cx.int(n, 0..=i64::from(u32::MAX))),
            "notify_up" => set(&mut rs.notify_up, cx.script(n)),
            "notify_down" => set(&mut rs.notify_down, cx.script(n)),
            "smtp_alert" => set_val(&mut rs.smtp_alert, cx.flag(n)),
            "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "MISC_CHECK" | "FILE_CHECK" | "UDP_CHECK"
            | "PING_CHECK" | "DNS_CHECK" | "SMTP_CHECK" => {}
            "BFD_CHECK" => {
                unsupported.push(n);
            }
            _ => cx.other(n, Section::RealServer, &[]),
        }
    }
    if rs.lthreshold > rs.uthreshold {
        cx.error(
            node.span(),
            format!(
                "lthreshold {} is above uthreshold {}: the kernel refuses that; set uthreshold to at least {}",
                rs.lthreshold, rs.uthreshold, rs.lthreshold
            ),
        );
    }

    let method_at = method_node.map_or(node.span(), |n| n.span());
    let level = own.over(parent);
    rs.inhibit_on_failure = level.inhibit_on_failure.unwrap_or(false);
    rs.slow_start = level.slow_start.map(|t| t.0).filter(|d| !d.is_zero());
    rs.virtualhost = own.virtualhost.clone();
    for n in body {
        let kind = match n.name() {
            "HTTP_GET" => CheckerType::Http { tls: false },
            "SSL_GET" => CheckerType::Http { tls: true },
            "TCP_CHECK" => CheckerType::Tcp,
            "MISC_CHECK" => CheckerType::Misc,
            "FILE_CHECK" => {
                let c = super::track_file::file_check(cx, n, &rs);
                rs.checkers.extend(c);
                continue;
            }
            "UDP_CHECK" => CheckerType::Udp,
            "PING_CHECK" => CheckerType::Ping,
            "DNS_CHECK" => CheckerType::Dns,
            "SMTP_CHECK" => CheckerType::Smtp,
            _ => continue,
        };
        if let Some(c) = checker(cx, n, kind, &rs, &level) {
            rs.checkers.push(c);
            if !unsupported.is_empty() && !judges.contains(&n.name()) {
                judges.push(n.name());
            }
        }
    }
    // A checker ipvsdir cannot run yet must not leave the real server
    // silently up: say what judges it instead.
    for n in unsupported {
        let kw = n.name();
        let judged = if rs.checkers.is_empty() {
            "it has no other checker, so it is never taken out of the table".to_string()
        } else {
            format!("it is judged by its {} only", judges.join(", "))
        };
        cx.warn(
            n.keyword.span,
            format!("{kw} is not supported yet, ignored: real_server {addr} {port}: {judged}"),
        );
    }
    // After the checkers took their default port from the configured one
    // (keepalived's checkers keep it too): with DR/TUN the kernel's port is
    // the service's, and keepalived resets the real server's to it.
    if let Some(kernel) = non_nat_port(&vs.key, rs.method)
        && rs.port != kernel
    {
        cx.warn(
            method_at,
            match vs.key {
                VirtualServerKey::Fwmark { .. } => format!(
                    "with DR/TUN a fwmark service's real servers have no port: {port} is cleared, as keepalived does (checkers still use {port})"
                ),
                _ => format!(
                    "with DR/TUN the real server port must equal the virtual port ({kernel}): IPVS does not rewrite ports, so {port} is reset to {kernel}, as keepalived does (checkers still use {port})"
                ),
            },
        );
        rs.port = kernel;
    }
    // A first push reserves room for four checkers; most real servers have one.
    rs.checkers.shrink_to_fit();
    Some(rs)
}

/// The port keepalived gives a DR/TUN real server (or sorry server) of a
/// virtual server that is not a group: the service's, 0 under a fwmark
/// (None: NAT keeps its own; a group's entries decide per service).
fn non_nat_port(key: &VirtualServerKey, method: ForwardMethod) -> Option<u16> {
    if matches!(method, ForwardMethod::Nat) {
        return None;
    }
    match key {
        VirtualServerKey::Addr { port, .. } => Some(*port),
        VirtualServerKey::Fwmark { .. } => Some(0),
        VirtualServerKey::Group { .. } => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum CheckerType {
    Http { tls: bool },
    Tcp,
    Misc,
    Udp,
    Ping,
    Dns,
    Smtp,
}

fn checker(
    cx: &mut Ctx,
    node: &Node,
    kind: CheckerType,
    rs: &RealServer,
    parent: &Inherited,
) -> Option<Checker> {
    cx.at_most(node, 0);
    let body = cx.block(node)?;
    let section = match kind {
        CheckerType::Http { .. } => Section::HttpGet,
        CheckerType::Tcp => Section::TcpCheck,
        CheckerType::Misc => Section::MiscCheck,
        CheckerType::Udp => Section::UdpCheck,
        CheckerType::Ping => Section::PingCheck,
        CheckerType::Dns => Section::DnsCheck,
        CheckerType::Smtp => Section::SmtpCheck,
    };
    let mut own = Inherited::default();
    let mut connect_ip = None;
    let mut connect_port = None;
    let mut bindto = None;
    let mut bind_port = None;
    let mut bind_if = None;
    let mut fwmark = None;
    let mut log_all_failures = false;
    let mut urls = Vec::new();
    let mut http_protocol = HttpVersion::Http10;
    let mut enable_sni = false;
    let mut fast_recovery = false;
    let mut misc_path: Option<Script> = None;
    let mut misc_timeout = None;
    let mut misc_dynamic = false;
    let mut misc_user: Option<ScriptUser> = None;
    let mut helo_name: Option<String> = None;
    let mut smtp_hosts: Vec<HostBlock> = Vec::new();
    let mut dns_type: Option<String> = None;
    let mut dns_name: Option<String> = None;
    let mut length_node: Option<&Node> = None;
    let mut udp = UdpCheck {
        payload: Vec::new(),
        require_reply: false,
        reply: None,
        min_reply_length: 0,
        max_reply_length: u16::from(u8::MAX),
    };
    let is_http = matches!(kind, CheckerType::Http { .. });
    for n in body {
        if own.take(cx, n) {
            if n.name() == "inhibit_on_failure" {
                cx.warn(
                    n.keyword.span,
                    "inhibit_on_failure belongs to the real_server, not the checker",
                );
            }
            continue;
        }
        match (n.name(), kind) {
            ("connect_ip", _) => set(&mut connect_ip, cx.ip(n)),
            ("connect_port", _) => set(&mut connect_port, cx.port(n)),
            ("bindto", _) => set(&mut bindto, cx.ip(n)),
            ("bind_port", _) => set(&mut bind_port, cx.port(n)),
            ("bind_if", _) => set(&mut bind_if, cx.string(n, "an interface")),
            ("fwmark", _) => set(&mut fwmark, cx.int(n, 1..=i64::from(u32::MAX))),
            ("log_all_failures", _) => set_val(&mut log_all_failures, cx.flag(n)),
            ("url", CheckerType::Http { .. }) => {
                if let Some(u) = url(cx, n) {
                    urls.push(u);
                }
            }
            ("http_protocol", CheckerType::Http { .. }) => {
                if let Some(p) = cx.string(n, "1.0, 1.0C or 1.1") {
                    match p.as_str() {
                        "1.0" => http_protocol = HttpVersion::Http10,
                        "1.0C" | "1.0c" => http_protocol = HttpVersion::Http10Close,
                        "1.1" => http_protocol = HttpVersion::Http11,
                        _ => cx.error(
                            n.args[0].span,
                            format!("unknown http_protocol '{p}': use 1.0, 1.0C or 1.1"),
                        ),
                    }
                }
            }
            ("enable_sni", CheckerType::Http { tls }) => {
                set_val(&mut enable_sni, cx.flag(n));
                if !tls {
                    cx.warn(n.keyword.span, "enable_sni only applies to SSL_GET");
                }
            }
            ("fast_recovery", CheckerType::Http { .. }) => set_val(&mut fast_recovery, cx.flag(n)),
            ("misc_path", CheckerType::Misc) => set(&mut misc_path, cx.script(n)),
            ("misc_timeout", CheckerType::Misc) => set(&mut misc_timeout, cx.timer(n)),
            ("misc_dynamic", CheckerType::Misc) => set_val(&mut misc_dynamic, cx.flag(n)),
            ("user", CheckerType::Misc) => set(&mut misc_user, cx.user(n)),
            ("payload", CheckerType::Udp) => {
                cx.no_block(n);
                if cx.arg(n, 0, "a hex string (e.g. 0a1b2c)").is_some()
                    && let Some(p) = hex(cx, n)
                {
                    udp.payload = p;
                }
            }
            ("require_reply", CheckerType::Udp) => {
                cx.no_block(n);
                udp.require_reply = true;
                if !n.args.is_empty() {
                    udp.reply = hex(cx, n);
                }
            }
            ("type", CheckerType::Dns) => {
                if let Some(t) = cx.string(n, "a DNS record type (A NS CNAME SOA MX TXT AAAA)") {
                    let known = crate::check::dns_message::TYPES
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&t));
                    match known {
                        Some((k, _)) => dns_type = Some((*k).to_string()),
                        None => cx.warn(
                            n.args[0].span,
                            format!("unknown DNS_CHECK type '{t}': SOA is queried (as keepalived does); use A NS CNAME SOA MX TXT or AAAA"),
                        ),
                    }
                }
            }
            ("helo_name", CheckerType::Smtp) => set(&mut helo_name, cx.string(n, "a host name")),
            ("host", CheckerType::Smtp) => {
                if let Some(h) = smtp_host(cx, n) {
                    smtp_hosts.push(h);
                }
            }
            ("name", CheckerType::Dns) => set(&mut dns_name, cx.string(n, "a domain name")),
            ("min_reply_length", CheckerType::Udp) => {
                length_node.get_or_insert(n);
                set_val(
                    &mut udp.min_reply_length,
                    cx.int(n, 0..=i64::from(u16::MAX)),
                )
            }
            ("max_reply_length", CheckerType::Udp) => {
                length_node.get_or_insert(n);
                set_val(
                    &mut udp.max_reply_length,
                    cx.int(n, 0..=i64::from(u16::MAX)),
                )
            }
            _ => cx.other(n, section, &[]),
        }
    }
    if let (Some(c), Some(b)) = (connect_ip, bindto)
        && c.is_ipv4() != b.is_ipv4()
    {
        cx.error(
            node.keyword.span,
            format!("connect_ip {c} and bindto {b} are of different address families"),
        );
    }
    let level = own.over(parent);
    let delay_loop = level.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP);
    let common = CheckCommon {
        connect_ip: connect_ip.unwrap_or(rs.addr),
        connect_port: connect_port.unwrap_or(rs.port),
        bindto,
        bind_port,
        bind_if,
        fwmark,
        connect_timeout: level.connect_timeout.unwrap_or(Timer::secs(5)),
        delay_loop,
        // keepalived: MISC_CHECK 0, DNS_CHECK 3, the others 1.
        retry: level.retry.unwrap_or(match kind {
            CheckerType::Misc => 0,
            CheckerType::Dns => 3,
            _ => 1,
        }),
        delay_before_retry: level.delay_before_retry.unwrap_or(Timer::secs(if is_http {
            3
        } else {
            1
        })),
        warmup: level.warmup.unwrap_or(delay_loop),
        alpha: level.alpha.unwrap_or(false),
        log_all_failures,
    };
    let hosts_have_ports =
        !smtp_hosts.is_empty() && smtp_hosts.iter().all(|h| h.connect_port.is_some());
    if !matches!(kind, CheckerType::Misc | CheckerType::Ping)
        && common.connect_port == 0
        && !hosts_have_ports
    {
        cx.error(
            node.keyword.span,
            format!(
                "{} has no port to connect to: add `connect_port N` (the real server has none)",
                node.name()
            ),
        );
    }
    let kind = match kind {
        CheckerType::Http { tls } => {
            if urls.is_empty() {
                cx.error(
                    node.keyword.span,
                    format!(
                        "{} needs at least one `url {{ path /... }}` block",
                        node.name()
                    ),
                );
                return None;
            }
            let host = level.virtualhost.clone().or_else(|| rs.virtualhost.clone());
            for u in &mut urls {
                if u.virtualhost.is_none() {
                    u.virtualhost = host.clone();
                }
            }
            CheckKind::Http(HttpCheck {
                tls,
                urls,
                http_protocol,
                enable_sni,
                fast_recovery,
            })
        }
        CheckerType::Tcp => CheckKind::Tcp,
        CheckerType::Ping => CheckKind::Ping,
        CheckerType::Smtp => {
            let hosts: Vec<SmtpHost> = smtp_hosts
                .into_iter()
                .map(|h| SmtpHost {
                    connect_ip: h.connect_ip.unwrap_or(common.connect_ip),
                    connect_port: h.connect_port.unwrap_or(common.connect_port),
                    bindto: h.bindto.or(common.bindto),
                    bind_port: h.bind_port.or(common.bind_port),
                    connect_timeout: h.connect_timeout.unwrap_or(common.connect_timeout),
                })
                .collect();
            if hosts.iter().any(|h| h.connect_port == 0) {
                cx.error(
                    node.keyword.span,
                    "an SMTP_CHECK host has no port to connect to: add `connect_port N`",
                );
            }
            CheckKind::Smtp(SmtpCheck {
                helo_name: helo_name.unwrap_or_else(|| "smtpchecker.keepalived.org".into()),
                hosts,
            })
        }
        CheckerType::Dns => {
            let dns = DnsCheck {
                qtype: dns_type.unwrap_or_else(|| "SOA".into()),
                name: dns_name.unwrap_or_else(|| ".".into()),
            };
            if let Err(e) = crate::check::dns_message::encode_query(&dns) {
                cx.error(node.keyword.span, e.to_string());
                return None;
            }
            CheckKind::Dns(dns)
        }
        CheckerType::Udp => {
            if let Some(n) = length_node
                && udp.reply.is_none()
            {
                cx.warn(
                    n.keyword.span,
                    format!("{} is only checked with `require_reply HEX` (as keepalived does): ignored here", n.name()),
                );
            }
            if udp.min_reply_length > udp.max_reply_length {
                cx.warn(
                    node.keyword.span,
                    format!(
                        "UDP_CHECK min_reply_length {} > max_reply_length {}: it will always fail",
                        udp.min_reply_length, udp.max_reply_length
                    ),
                );
            }
            CheckKind::Udp(udp)
        }
        CheckerType::Misc => {
            let Some(mut path) = misc_path else {
                cx.error(
                    node.keyword.span,
                    "MISC_CHECK needs `misc_path \"/path/to/script args\"`",
                );
                return None;
            };
            if misc_user.is_some() {
                path.user = misc_user;
            }
            CheckKind::Misc(MiscCheck {
                path,
                timeout: misc_timeout.unwrap_or(delay_loop),
                dynamic: misc_dynamic,
            })
        }
    };
    Some(Checker { kind, common })
}

/// A `host { }` of SMTP_CHECK as written; what it leaves out comes from
/// the checker.
#[derive(Default)]
struct HostBlock {
    connect_ip: Option<IpAddr>,
    connect_port: Option<u16>,
    bindto: Option<IpAddr>,
    bind_port: Option<u16>,
    connect_timeout: Option<Timer>,
}

fn smtp_host(cx: &mut Ctx, node: &Node) -> Option<HostBlock> {
    cx.at_most(node, 0);
    let body = cx.block(node)?;
    let mut h = HostBlock::default();
    for n in body {
        match n.name() {
            "connect_ip" => set(&mut h.connect_ip, cx.ip(n)),
            "connect_port" => set(&mut h.connect_port, cx.port(n)),
            "bindto" => set(&mut h.bindto, cx.ip(n)),
            "bind_port" => set(&mut h.bind_port, cx.port(n)),
            "connect_timeout" => set(&mut h.connect_timeout, cx.timer(n)),
            _ => cx.other(n, Section::SmtpHost, &[]),
        }
    }
    if let (Some(c), Some(b)) = (h.connect_ip, h.bindto)
        && c.is_ipv4() != b.is_ipv4()
    {
        cx.error(
            node.keyword.span,
            format!("connect_ip {c} and bindto {b} are of different address families"),
        );
    }
    Some(h)
}

/// The hex string of `payload` / `require_reply`: its words joined (spaces
/// between bytes are allowed), an even number of hex digits.
fn hex(cx: &mut Ctx, n: &Node) -> Option<Vec<u8>> {
    let text: String = n.args.iter().map(|w| w.text.as_str()).collect();
    let at = n.args.first().map_or(n.keyword.span, |w| w.span);
    let digits: Option<Vec<u8>> = text
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect();
    match digits {
        Some(d) if !d.is_empty() && d.len() % 2 == 0 => {
            Some(d.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
        }
        _ => {
            cx.error(
                at,
                format!(
                    "`{}` needs an even number of hex digits (e.g. 0a1b2c), found '{text}'",
                    n.name()
                ),
            );
            None
        }
    }
}

fn url(cx: &mut Ctx, node: &Node) -> Option<Url> {
    let body = cx.block(node)?;
    let mut path = None;
    let mut digest = None;
    let mut status = None;
    let mut virtualhost = None;
    for n in body {
        match n.name() {
            "path" => set(&mut path, cx.string(n, "a URL path (e.g. /health)")),
            "digest" => {
                if let Some(d) = cx.string(n, "an MD5 digest (32 hex characters)") {
                    let hex = d.len() == 32 && d.chars().all(|c| c.is_ascii_hexdigit());
                    if hex {
                        digest = Some(d.to_ascii_lowercase());
                    } else {
                        cx.error(n.args[0].span, format!("digest must be exactly 32 hexadecimal characters (the MD5 that `ipvsdir genhash` prints), found {} characters: '{d}'", d.chars().count()));
                    }
                }
            }
            "status_code" => set(&mut status, status_codes(cx, n)),
            "virtualhost" => set(&mut virtualhost, cx.string(n, "a host name")),
            _ => cx.other(n, Section::Url, &[]),
        }
    }
    let Some(path) = path else {
        cx.error(node.keyword.span, "url needs `path /...`");
        return None;
    };
    if !path.starts_with('/') {
        cx.warn(
            node.keyword.span,
            format!("url path '{path}' does not start with '/'"),
        );
    }
    Some(Url {
        path,
        digest,
        status_codes: status.unwrap_or_else(StatusCodes::default_2xx),
        virtualhost,
    })
}

/// `status_code 200 200-299 400-499 503 ...`
fn status_codes(cx: &mut Ctx, n: &Node) -> Option<StatusCodes> {
    cx.no_block(n);
    cx.arg(n, 0, "status codes or ranges (e.g. 200-299 503)")?;
    let mut ranges = Vec::new();
    for w in &n.args {
        let (lo, hi) = match w.text.split_once('-') {
            Some((a, b)) => (a, b),
            None => (w.text.as_str(), w.text.as_str()),
        };
        match (lo.parse::<u16>(), hi.parse::<u16>()) {
            (Ok(lo), Ok(hi))
                if (100..=599).contains(&lo) && (100..=599).contains(&hi) && lo <= hi =>
            {
                ranges.push((lo, hi))
            }
            (Ok(lo), Ok(hi)) if lo > hi && (100..=599).contains(&hi) => {
                cx.error(
                    w.span,
                    format!(
                        "status_code range '{}' is backwards: write {hi}-{lo}",
                        w.text
                    ),
                );
                return None;
            }
            _ => {
                cx.error(
                    w.span,
                    format!(
                        "status_code '{}' is not an HTTP status or range within 100-599",
                        w.text
                    ),
                );
                return None;
            }
        }
    }
    Some(StatusCodes(ranges))
}
