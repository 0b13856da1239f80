//! `vrrp_script`, `vrrp_instance` and `vrrp_sync_group`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::keywords::Section;
use crate::config::model::{
    AuthType, Authentication, GlobalDefs, InitialState, Notify, RouteType, Scope, SyncGroup, Timer,
    Tracked, UnicastPeer, VirtualAddress, VirtualRoute, VrrpInstance, VrrpScript,
};
use crate::config::source::Span;
use crate::config::tree::{Node, Word};

use super::ctx::{Ctx, suggest};
use super::global::{set, set_val};

/// Keywords ipvsdir adds to keepalived's vrrp_instance.
const INSTANCE_EXTENSIONS: &[&str] = &["v3_checksum_as_v2", "late_advert_warn"];

/// Names declared by `vrrp_script` blocks, for track_script references.
#[derive(Default)]
pub struct ScriptNames {
    pub defined: HashSet<String>,
    /// The top-level position (in reading order) of each name's first
    /// definition: keepalived resolves a track_script only against the
    /// vrrp_scripts above it.
    pub first_at: HashMap<String, usize>,
    /// Declared without a `script` line, hence dropped (keepalived does the same).
    pub removed: HashSet<String>,
}

pub fn vrrp_script(cx: &mut Ctx, node: &Node, names: &mut ScriptNames) -> Option<VrrpScript> {
    cx.at_most(node, 1);
    let name = cx.arg(node, 0, "a name: `vrrp_script NAME { ... }`")?;
    let body = cx.block(node)?;
    if !names.defined.insert(name.text.to_string()) && !names.removed.contains(name.text.as_str()) {
        cx.warn(
            name.span,
            format!(
                "vrrp_script '{}' is defined twice: this later definition replaces the first (as in keepalived)",
                name.text
            ),
        );
    }
    let mut s = VrrpScript {
        name: name.text.to_string(),
        script: crate::config::model::Script {
            command: String::new(),
            user: None,
        },
        interval: Timer::secs(1),
        timeout: None,
        weight: 0,
        weight_reverse: false,
        fall: 1,
        rise: 1,
        init_fail: false,
    };
    let mut has_script = false;
    for n in body {
        match n.name() {
            "script" => {
                if let Some(sc) = cx.script(n) {
                    s.script = sc;
                    has_script = true;
                }
            }
            "interval" => set_val(&mut s.interval, cx.timer(n)),
            "timeout" => set(&mut s.timeout, cx.timer(n)),
            "weight" => weight_keyword(cx, n, -253..=253, &mut s.weight, &mut s.weight_reverse),
            "fall" => set_val(&mut s.fall, cx.int(n, 1..=1_000_000)),
            "rise" => set_val(&mut s.rise, cx.int(n, 1..=1_000_000)),
            "user" => set(&mut s.script.user, cx.user(n)),
            "init_fail" => set_val(&mut s.init_fail, cx.flag(n)),
            _ => cx.other(n, Section::VrrpScript, &[]),
        }
    }
    if !has_script {
        cx.warn(
            node.keyword.span.to(name.span),
            format!(
                "vrrp_script '{}' has no `script` line: it is removed and instances tracking it ignore it",
                name.text
            ),
        );
        names.removed.insert(name.text.to_string());
        return None;
    }
    if s.interval.0.is_zero() {
        cx.error(
            node.keyword.span,
            format!("vrrp_script '{}': interval must be above 0", s.name),
        );
    }
    Some(s)
}

/// `reverse` / `noreverse` after a tracker weight (track_script, track_file,
/// track_process lines).
pub(super) fn reverse_word(cx: &mut Ctx, w: &Word) -> Option<bool> {
    match w.text.as_str() {
        "reverse" => Some(true),
        "noreverse" | "no_reverse" => Some(false),
        other => {
            cx.error(
                w.span,
                format!("expected `reverse` or `noreverse`, found '{other}'"),
            );
            None
        }
    }
}

/// A block's `weight N [reverse|noreverse]` line (vrrp_script, track_file,
/// track_process): sets `weight`, and `reverse` when the line says.
pub(super) fn weight_keyword(
    cx: &mut Ctx,
    n: &Node,
    range: std::ops::RangeInclusive<i64>,
    weight: &mut i32,
    reverse: &mut bool,
) {
    cx.no_block(n);
    cx.at_most(n, 2);
    let what = format!("a weight {}..{}", range.start(), range.end());
    if let Some(w) = cx.arg(n, 0, &what) {
        set_val(weight, cx.int_word("weight", w, range).map(|v| v as i32));
    }
    if let Some(r) = n.args.get(1) {
        set_val(reverse, reverse_word(cx, r));
    }
}

/// The `weight N [reverse|noreverse]` after a name in a track_script,
/// track_file or track_process list: the weight (None when not given or
/// invalid) and the reverse word, if any.
pub(super) fn tracked_weight(
    cx: &mut Ctx,
    n: &Node,
    range: std::ops::RangeInclusive<i64>,
) -> (Option<i32>, Option<bool>) {
    let Some(k) = n.args.first() else {
        return (None, None);
    };
    let weight = match n.args.get(1) {
        Some(v) => cx.int_word("weight", v, range).map(|v| v as i32),
        None => {
            let msg = format!("`weight` needs a value {}..{}", range.start(), range.end());
            cx.error(k.span, msg);
            None
        }
    };
    (weight, n.args.get(2).and_then(|r| reverse_word(cx, r)))
}

/// Where a VRID is used, to refuse two instances with one VRID on a link.
pub type VridUse = HashMap<(String, u8, bool), String>;

pub fn vrrp_instance(
    cx: &mut Ctx,
    node: &Node,
    global: &GlobalDefs,
    scripts: &ScriptNames,
    vrids: &mut VridUse,
    at: usize,
) -> Option<VrrpInstance> {
    cx.at_most(node, 1);
    let name_w = cx.arg(node, 0, "a name: `vrrp_instance NAME { ... }`")?;
    let name = name_w.text.to_string();
    let body = cx.block(node)?;
    let g = &global.vrrp;
    let mut vi = VrrpInstance {
        name: name.clone(),
        initial_state: InitialState::Backup,
        interface: String::new(),
        virtual_router_id: 0,
        priority: 100,
        advert_int: Timer::secs(1),
        version: g.version,
        preempt: true,
        preempt_delay: Timer::default(),
        mcast_src_ip: None,
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
        track_script: Vec::new(),
        track_file: Vec::new(),
        track_process: Vec::new(),
        track_interface: Vec::new(),
        notify: Notify::default(),
        garp_master_delay: g.garp_master_delay,
        garp_master_repeat: g.garp_master_repeat,
        garp_master_refresh: g.garp_master_refresh,
        garp_master_refresh_repeat: g.garp_master_refresh_repeat,
        use_vmac: None,
        vmac_xmit_base: false,
        strict_mode: g.strict,
        accept: true,
        skip_check_adv_addr: g.skip_check_adv_addr,
        check_unicast_src: g.check_unicast_src,
        dont_track_primary: false,
        lvs_sync_daemon_interface: None,
        smtp_alert: global.smtp_alert_vrrp_default(),
        notify_priority_changes: None,
        v3_checksum_as_v2: g.v3_checksum_as_v2,
        late_advert_warn: None,
    };
    let mut interface: Option<&Word> = None;
    let mut vrid: Option<&Word> = None;
    let mut advert: Option<&Word> = None;
    let mut priority: Option<&Word> = None;
    let mut accept_set = false;
    let mut has_vips = false;
    let mut auth_node: Option<&Node> = None;
    for n in body {
        match n.name() {
            "state" => {
                if let Some(w) = cx.single(n, "MASTER or BACKUP") {
                    vi.initial_state = match w.text.as_str() {
                        "MASTER" => InitialState::Master,
                        "BACKUP" => InitialState::Backup,
                        t if t.eq_ignore_ascii_case("master") => {
                            cx.warn(w.span, format!("state '{t}' taken as MASTER; write MASTER (keepalived reads anything but MASTER/BACKUP in capitals as BACKUP)"));
                            InitialState::Master
                        }
                        t if t.eq_ignore_ascii_case("backup") => {
                            cx.warn(w.span, format!("state '{t}' taken as BACKUP; write BACKUP"));
                            InitialState::Backup
                        }
                        t => {
                            cx.error(w.span, format!("unknown state '{t}': use MASTER or BACKUP"));
                            InitialState::Backup
                        }
                    };
                }
            }
            "interface" => interface = cx.single(n, "an interface name"),
            "virtual_router_id" => vrid = cx.single(n, "an id 1-255"),
            "priority" => priority = cx.single(n, "a priority 1-255"),
            "advert_int" => advert = cx.single(n, "an interval in seconds"),
            "version" => set_val(&mut vi.version, cx.int(n, 2..=3)),
            "nopreempt" => {
                cx.no_block(n);
                vi.preempt = false;
            }
            "preempt" => set_val(&mut vi.preempt, cx.flag(n)),
            "preempt_delay" => {
                if let Some(t) = cx.timer(n) {
                    if t.0 > Duration::from_secs(1000) {
                        cx.error(
                            n.args[0].span,
                            "preempt_delay is out of range: use 0-1000 seconds",
                        );
                    } else {
                        vi.preempt_delay = t;
                    }
                }
            }
            "mcast_src_ip" => set(&mut vi.mcast_src_ip, source_ip(cx, n)),
            "unicast_src_ip" => set(&mut vi.unicast_src_ip, source_ip(cx, n)),
            "unicast_peer" => vi.unicast_peers.extend(unicast_peers(cx, n)),
            "authentication" => auth_node = Some(n),
            "virtual_ipaddress" => {
                has_vips = true;
                vi.virtual_ipaddress.extend(addresses(cx, n))
            }
            "virtual_ipaddress_excluded" => vi.virtual_ipaddress_excluded.extend(addresses(cx, n)),
            "virtual_routes" => vi.virtual_routes.extend(routes(cx, n)),
            "virtual_rules" => vi.virtual_rules.extend(super::rules::rules(cx, n)),
            "track_script" => vi.track_script.extend(tracked(cx, n, Some((scripts, at)))),
            "track_interface" => vi.track_interface.extend(tracked(cx, n, None)),
            "track_file" => vi.track_file.extend(super::track_file::tracked(cx, n)),
            "track_process" => vi
                .track_process
                .extend(super::track_process::tracked(cx, n)),
            "notify_master" => set(&mut vi.notify.master, cx.script(n)),
            "notify_backup" => set(&mut vi.notify.backup, cx.script(n)),
            "notify_fault" => set(&mut vi.notify.fault, cx.script(n)),
            "notify_stop" => set(&mut vi.notify.stop, cx.script(n)),
            "notify" => set(&mut vi.notify.any, cx.script(n)),
            "notify_master_rx_lower_pri" => set(&mut vi.notify.master_rx_lower_pri, cx.script(n)),
            "notify_priority_changes" => set(&mut vi.notify_priority_changes, cx.flag(n)),
            "garp_master_delay" => set_val(&mut vi.garp_master_delay, cx.timer(n)),
            "garp_master_repeat" => set_val(&mut vi.garp_master_repeat, cx.int(n, 1..=255)),
            "garp_master_refresh" => set(&mut vi.garp_master_refresh, cx.timer(n)),
            "garp_master_refresh_repeat" => {
                set_val(&mut vi.garp_master_refresh_repeat, cx.int(n, 1..=255))
            }
            "use_vmac" => {
                cx.no_block(n);
                cx.at_most(n, 2);
                vi.use_vmac = Some(match n.args.first() {
                    Some(w) => w.text.to_string(),
                    None => String::new(),
                });
            }
            "vmac_xmit_base" => set_val(&mut vi.vmac_xmit_base, cx.flag(n)),
            "strict_mode" => set_val(&mut vi.strict_mode, cx.flag(n)),
            "accept" => {
                cx.no_block(n);
                vi.accept = true;
                accept_set = true;
            }
            "no_accept" => {
                cx.no_block(n);
                vi.accept = false;
                accept_set = true;
            }
            "skip_check_adv_addr" => set_val(&mut vi.skip_check_adv_addr, cx.flag(n)),
            "check_unicast_src" => set_val(&mut vi.check_unicast_src, cx.flag(n)),
            "dont_track_primary" => set_val(&mut vi.dont_track_primary, cx.flag(n)),
            "lvs_sync_daemon_interface" => set(
                &mut vi.lvs_sync_daemon_interface,
                cx.string(n, "an interface"),
            ),
            "smtp_alert" => set_val(&mut vi.smtp_alert, cx.flag(n)),
            "v3_checksum_as_v2" => set_val(&mut vi.v3_checksum_as_v2, cx.flag(n)),
            "late_advert_warn" => {
                if let Some(w) = cx.single(n, "a fraction of Master_Down_Interval (0.1-0.99)") {
                    match w.text.parse::<f64>() {
                        Ok(f) if (0.1..=0.99).contains(&f) => vi.late_advert_warn = Some(f),
                        _ => cx.error(
                            w.span,
                            format!(
                                "late_advert_warn expects a fraction 0.1-0.99, found '{}'",
                                w.text
                            ),
                        ),
                    }
                }
            }
            _ => cx.other(n, Section::VrrpInstance, INSTANCE_EXTENSIONS),
        }
    }
    if !accept_set && vi.strict_mode {
        vi.accept = false;
    }

    // Interface, VRID, priority and advert_int checked once the block is read,
    // since `version` may come after `advert_int`.
    let head = node.keyword.span.to(name_w.span);
    match interface {
        Some(w) => vi.interface = w.text.to_string(),
        None => match &global.default_interface {
            Some(d) => vi.interface = d.clone(),
            None => cx.error(
                head,
                format!("vrrp_instance {name} has no `interface`: name the interface VRRP runs on"),
            ),
        },
    }
    match vrid {
        Some(w) => {
            if let Some(v) = cx.int_word("virtual_router_id", w, 1..=255) {
                vi.virtual_router_id = v as u8;
                let v6 = vi
                    .virtual_ipaddress
                    .first()
                    .is_some_and(|a| a.addr.is_ipv6());
                let key = (vi.interface.clone(), vi.virtual_router_id, v6);
                if let Some(other) = vrids.insert(key, name.clone()) {
                    cx.error(
                        w.span,
                        format!(
                            "virtual_router_id {v} on {} is already used by vrrp_instance {other}: each instance on a link needs its own VRID",
                            vi.interface
                        ),
                    );
                }
            }
        }
        None => cx.error(
            head,
            format!(
                "vrrp_instance {name} needs `virtual_router_id` (1-255), the same on both directors"
            ),
        ),
    }
    if let Some(w) = priority
        && let Some(p) = cx.int_word("priority", w, 1..=255)
    {
        vi.priority = p as u8;
        if p == 255 {
            cx.warn(w.span, "priority 255 is reserved for the owner of the virtual addresses (it becomes master at once and is never preempted); use 254 or less unless this director owns them");
        }
    }
    if let Some(w) = advert
        && let Some(t) = cx.timer_word("advert_int", w)
    {
        vi.advert_int = advert_int(cx, w, t, vi.version);
    }
    if let Some(a) = auth_node {
        vi.authentication = authentication(cx, a, vi.version);
        if vi.strict_mode && vi.authentication.is_some() {
            // keepalived: "Strict mode does not support authentication. Ignoring."
            cx.warn(
                a.keyword.span,
                "vrrp_strict does not allow authentication: the authentication block is ignored \
                 and adverts carry none, as keepalived does; remove the block (or vrrp_strict)",
            );
            vi.authentication = None;
        }
    }
    if vi.interface == "lo" {
        // keepalived: "cannot use a loopback interface (lo) for vrrp - ignoring", then
        // "Unknown interface!": its -t fails.
        let at = interface.map_or(head, |w| w.span);
        cx.error(
            at,
            format!(
                "vrrp_instance {name}: VRRP cannot run on the loopback interface (keepalived refuses it too): \
                 name the interface the directors share"
            ),
        );
    }
    if !has_vips {
        cx.warn(
            head,
            format!("vrrp_instance {name} has no virtual_ipaddress"),
        );
    }
    for p in &vi.unicast_peers {
        if let Some(src) = vi.unicast_src_ip
            && src.is_ipv4() != p.addr.is_ipv4()
        {
            cx.error(head, format!("vrrp_instance {name}: unicast_src_ip {src} and unicast_peer {} are of different address families", p.addr));
        }
    }
    if vi.use_vmac.as_deref() == Some("") {
        vi.use_vmac = Some(format!("vrrp.{}", vi.virtual_router_id));
    }
    Some(vi)
}

/// RFC 3768: whole seconds 1-255. RFC 5798: centiseconds 1-4095.
fn advert_int(cx: &mut Ctx, w: &Word, t: Timer, version: u8) -> Timer {
    let micros = t.0.as_micros() as u64;
    if version == 2 {
        let secs = micros.div_ceil(1_000_000).clamp(1, 255);
        if !micros.is_multiple_of(1_000_000) || !(1..=255).contains(&(micros / 1_000_000)) {
            cx.warn(
                w.span,
                format!("VRRPv2 advert_int is whole seconds 1-255: {} used", secs),
            );
        }
        Timer::secs(secs)
    } else {
        let cs = (micros / 10_000).clamp(1, 4095);
        if !micros.is_multiple_of(10_000) || !(1..=4095).contains(&(micros / 10_000)) {
            cx.warn(
                w.span,
                format!(
                    "VRRPv3 advert_int is 0.01-40.95 s in hundredths: {:.2} used",
                    cs as f64 / 100.0
                ),
            );
        }
        Timer(Duration::from_millis(cs * 10))
    }
}

fn authentication(cx: &mut Ctx, node: &Node, version: u8) -> Option<Authentication> {
    let body = cx.block(node)?;
    let mut auth_type = None;
    let mut type_seen = false;
    let mut pass = None;
    for n in body {
        match n.name() {
            "auth_type" => {
                type_seen = true;
                if let Some(w) = cx.single(n, "PASS or AH") {
                    let upper = w.text.to_ascii_uppercase();
                    if upper != w.text.as_str() && matches!(upper.as_str(), "PASS" | "AH") {
                        cx.warn(w.span, format!("auth_type '{}' taken as {upper}; write {upper} (keepalived 2.2.7 does not recognise '{}' and runs this instance without authentication, so a keepalived peer with the same file will not match)", w.text, w.text));
                    }
                    auth_type = match upper.as_str() {
                        "PASS" => Some((AuthType::Pass, w.span)),
                        "AH" => Some((AuthType::Ah, w.span)),
                        _ => {
                            cx.error(
                                w.span,
                                format!("unknown auth_type '{}': use PASS or AH", w.text),
                            );
                            None
                        }
                    };
                }
            }
            "auth_pass" => {
                if let Some(w) = cx.single(n, "a password (up to 8 characters)") {
                    let mut p = w.text.to_string();
                    if p.len() > 8 {
                        cx.warn(w.span, "auth_pass is longer than 8 bytes: only the first 8 are used (as keepalived does)");
                        let mut end = 8;
                        while !p.is_char_boundary(end) {
                            end -= 1;
                        }
                        p.truncate(end);
                    }
                    pass = Some(p);
                }
            }
            _ => cx.other(n, Section::Authentication, &[]),
        }
    }
    let (auth_type, type_span) = auth_type.or_else(|| {
        if !type_seen {
            cx.error(
                node.keyword.span,
                "authentication needs `auth_type PASS` (or AH)",
            );
        }
        None
    })?;
    if version == 3 {
        cx.warn(
            node.keyword.span,
            "VRRPv3 has no authentication (RFC 5798): the authentication block is ignored",
        );
        return None;
    }
    if auth_type == AuthType::Ah {
        cx.warn(type_span, "auth_type AH is not supported yet: this instance will only interoperate with peers using no authentication or PASS");
    }
    let auth_pass = pass.or_else(|| {
        cx.error(
            node.keyword.span,
            "authentication needs `auth_pass` (up to 8 characters)",
        );
        None
    })?;
    Some(Authentication {
        auth_type,
        auth_pass,
    })
}

fn unicast_peers(cx: &mut Ctx, node: &Node) -> Vec<UnicastPeer> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in body {
        cx.no_block(n);
        let Some(addr) = cx.ip_word(&n.keyword) else {
            continue;
        };
        let mut peer = UnicastPeer {
            addr,
            min_ttl: None,
            max_ttl: None,
        };
        let mut args = n.args.iter();
        while let Some(k) = args.next() {
            let slot = match k.text.as_str() {
                "min_ttl" => &mut peer.min_ttl,
                "max_ttl" => &mut peer.max_ttl,
                other => {
                    cx.error(
                        k.span,
                        format!("unicast_peer: unknown option '{other}': use min_ttl or max_ttl"),
                    );
                    break;
                }
            };
            match args.next() {
                Some(v) => *slot = cx.int_word(&k.text, v, 0..=255).map(|t| t as u8),
                None => cx.error(k.span, format!("`{}` needs a TTL 0-255", k.text)),
            }
        }
        out.push(peer);
    }
    out
}

/// `IP[/LEN]`: the address and prefix length (32 or 128 when absent).
fn prefixed(cx: &mut Ctx, w: &Word) -> Option<(IpAddr, u8)> {
    let (addr_s, len_s) = match w.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w.text.as_str(), None),
    };
    let Ok(addr) = addr_s.parse::<IpAddr>() else {
        cx.error(w.span, format!("'{}' is not a valid IP address", w.text));
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len_s {
        None => max,
        Some(l) => match l.parse::<u8>() {
            Ok(l) if l <= max => l,
            _ => {
                cx.error(
                    w.span,
                    format!("'{}': prefix length must be 0-{max}", w.text),
                );
                return None;
            }
        },
    };
    Some((addr, len))
}

fn scope_word(cx: &mut Ctx, w: &Word) -> Option<Scope> {
    Some(match w.text.as_str() {
        "global" | "universe" => Scope::Global,
        "site" => Scope::Site,
        "link" => Scope::Link,
        "host" => Scope::Host,
        "nowhere" => Scope::Nowhere,
        t => match t.parse::<u8>() {
            Ok(v) => Scope::Other(v),
            Err(_) => {
                cx.error(
                    w.span,
                    format!("unknown scope '{t}': use global, site, link, host or nowhere"),
                );
                return None;
            }
        },
    })
}

/// `mcast_src_ip` / `unicast_src_ip`: an address; one written with a
/// prefix (`10.0.16.254/24`) is taken without it, as keepalived does.
fn source_ip(cx: &mut Ctx, n: &Node) -> Option<IpAddr> {
    let w = cx.single(n, "an IP address")?;
    if let Some((a, len)) = w.text.split_once('/')
        && let Ok(addr) = a.parse::<IpAddr>()
        && len.parse::<u8>().is_ok()
    {
        cx.warn(
            w.span,
            format!(
                "`{}` takes an address: the prefix '/{len}' is ignored",
                n.name()
            ),
        );
        return Some(addr);
    }
    cx.ip_word(w)
}

/// `brd +` / `brd -`: the prefix's broadcast (host bits set) or network address.
fn derived_broadcast(addr: IpAddr, prefix_len: u8, plus: bool) -> Option<Ipv4Addr> {
    let IpAddr::V4(a) = addr else { return None };
    let host = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    let a = u32::from(a);
    Some(Ipv4Addr::from(if plus { a | host } else { a & !host }))
}

/// One address line: `IP[/MASK] [brd IP] [dev IF] [scope S] [label L] ...`.
fn address_line(cx: &mut Ctx, n: &Node) -> Option<VirtualAddress> {
    cx.no_block(n);
    let (addr, prefix_len) = prefixed(cx, &n.keyword)?;
    let mut a = VirtualAddress {
        addr,
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
    };
    let mut args = n.args.iter();
    while let Some(k) = args.next() {
        let key = k.text.as_str();
        match key {
            "home" => a.home = true,
            "-nodad" => a.nodad = true,
            "noprefixroute" => a.noprefixroute = true,
            "autojoin" => a.autojoin = true,
            "no_track" => a.no_track = true,
            "track" => a.no_track = false,
            "use_vmac" => {}
            "brd" | "broadcast" | "dev" | "scope" | "label" | "peer" | "preferred_lft" => {
                let Some(v) = args.next() else {
                    cx.error(k.span, format!("`{key}` needs a value"));
                    return None;
                };
                match key {
                    "brd" | "broadcast" => match v.text.parse::<IpAddr>() {
                        _ if addr.is_ipv4() && matches!(v.text.as_str(), "+" | "-") => {
                            a.broadcast = derived_broadcast(addr, prefix_len, v.text == "+");
                        }
                        Ok(IpAddr::V4(b)) if addr.is_ipv4() => a.broadcast = Some(b),
                        _ => {
                            cx.error(
                                v.span,
                                format!("'{}' is not a valid IPv4 broadcast address", v.text),
                            );
                            return None;
                        }
                    },
                    "dev" => a.dev = Some(v.text.to_string()),
                    "scope" => a.scope = Some(scope_word(cx, v)?),
                    "label" => a.label = Some(v.text.to_string()),
                    "peer" => a.peer = Some(cx.ip_word(v)?),
                    _ => {
                        a.preferred_lft = if v.text == "forever" {
                            None
                        } else {
                            Some(cx.int_word("preferred_lft", v, 0..=i64::from(u32::MAX))? as u32)
                        }
                    }
                }
            }
            _ => {
                let known = [
                    "brd",
                    "dev",
                    "scope",
                    "label",
                    "peer",
                    "home",
                    "-nodad",
                    "noprefixroute",
                    "autojoin",
                    "no_track",
                    "preferred_lft",
                    "use_vmac",
                ];
                let mut msg = format!("unknown address option '{key}'");
                if let Some(s) = suggest(key, known) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
                cx.error(k.span, msg);
                return None;
            }
        }
    }
    if let Some(label) = &a.label
        && let Some(dev) = &a.dev
        && !label.starts_with(dev.as_str())
    {
        cx.warn(
            n.span(),
            format!("label '{label}' should start with the device name '{dev}' (e.g. {dev}:1)"),
        );
    }
    Some(a)
}

pub(super) fn addresses(cx: &mut Ctx, node: &Node) -> Vec<VirtualAddress> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    body.iter().filter_map(|n| address_line(cx, n)).collect()
}

/// One route line: `[src IP] [to] DEST[/LEN] [via|gw IP [or IP]] [dev IF] [scope S] [table N] [metric N] [no_track]`
/// or `blackhole|unreachable|prohibit|throw DEST[/LEN]`.
fn route_line(cx: &mut Ctx, n: &Node) -> Option<VirtualRoute> {
    cx.no_block(n);
    let words: Vec<&Word> = std::iter::once(&n.keyword).chain(n.args.iter()).collect();
    let mut r = VirtualRoute {
        route_type: RouteType::Unicast,
        dest: IpAddr::from([0, 0, 0, 0]),
        prefix_len: 0,
        src: None,
        via: Vec::new(),
        dev: None,
        scope: None,
        table: None,
        metric: None,
        no_track: false,
    };
    let mut dest_set = false;
    // `default` (also `any`, `all`) takes its family from the rest of the line.
    let mut default_dest = false;
    let mut inet6 = false;
    let mut i = 0;
    while i < words.len() {
        let k = words[i];
        let key = k.text.as_str();
        i += 1;
        if matches!(
            key,
            "src"
                | "via"
                | "gw"
                | "or"
                | "dev"
                | "oif"
                | "scope"
                | "table"
                | "metric"
                | "preference"
                | "priority"
        ) {
            let Some(v) = words.get(i).copied() else {
                cx.error(k.span, format!("`{key}` needs a value"));
                return None;
            };
            i += 1;
            match key {
                "src" => r.src = Some(cx.ip_word(v)?),
                "via" | "gw" | "or" => r.via.push(cx.ip_word(v)?),
                "dev" | "oif" => r.dev = Some(v.text.to_string()),
                "scope" => r.scope = Some(scope_word(cx, v)?),
                "table" => r.table = Some(cx.int_word("table", v, 0..=i64::from(u32::MAX))? as u32),
                _ => r.metric = Some(cx.int_word("metric", v, 0..=i64::from(u32::MAX))? as u32),
            }
            continue;
        }
        match key {
            "no_track" => r.no_track = true,
            "blackhole" => r.route_type = RouteType::Blackhole,
            "unreachable" => r.route_type = RouteType::Unreachable,
            "prohibit" => r.route_type = RouteType::Prohibit,
            "throw" => r.route_type = RouteType::Throw,
            "to" => {}
            "inet" | "inet6" => {
                // keepalived 2.2.7 refuses these ("Route must have a destination").
                cx.error(
                    k.span,
                    format!("`{key}` is not a route option here: write `default6` or `::/0` for an IPv6 default route"),
                );
                return None;
            }
            "default" | "any" | "all" if !dest_set => {
                default_dest = true;
                dest_set = true;
            }
            "default6" if !dest_set => {
                cx.warn(k.span, "`default6` is deprecated: write `inet6 default`");
                default_dest = true;
                inet6 = true;
                dest_set = true;
            }
            _ if !dest_set && key.starts_with(|c: char| c.is_ascii_hexdigit() || c == ':') => {
                let (d, l) = prefixed(cx, k)?;
                r.dest = d;
                r.prefix_len = l;
                dest_set = true;
            }
            // Route attributes we do not model (mtu, realms, onlink, ...): keep the route.
            other => cx.warn(
                k.span,
                format!("route option '{other}' is not supported yet, ignored"),
            ),
        }
    }
    if !dest_set {
        cx.error(
            n.keyword.span,
            "route has no destination: write `DEST[/LEN] via GW` or `DEST[/LEN] dev IF`",
        );
        return None;
    }
    if default_dest {
        let v6 = inet6 || r.via.iter().chain(r.src.iter()).any(IpAddr::is_ipv6);
        r.dest = if v6 {
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::from(Ipv4Addr::UNSPECIFIED)
        };
        r.prefix_len = 0;
    }
    Some(r)
}

pub(super) fn routes(cx: &mut Ctx, node: &Node) -> Vec<VirtualRoute> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    body.iter().filter_map(|n| route_line(cx, n)).collect()
}

/// `track_script { NAME [weight N [reverse]] }` / `track_interface { IF [weight N [reverse]] }`.
/// `scripts`: the names, and where (top-level position) the instance stands.
fn tracked(cx: &mut Ctx, node: &Node, scripts: Option<(&ScriptNames, usize)>) -> Vec<Tracked> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in body {
        cx.no_block(n);
        let name = &n.keyword;
        if let Some((s, at)) = scripts {
            if s.removed.contains(name.text.as_str()) {
                cx.warn(
                    name.span,
                    format!(
                        "vrrp_script '{}' was removed (it has no script line), not tracked",
                        name.text
                    ),
                );
                continue;
            }
            if !s.defined.contains(name.text.as_str()) {
                let mut msg = format!(
                    "track_script names an unknown vrrp_script '{}': define `vrrp_script {} {{ script ... }}`",
                    name.text, name.text
                );
                if let Some(sug) = suggest(&name.text, s.defined.iter().map(String::as_str)) {
                    msg.push_str(&format!(" or did you mean '{sug}'?"));
                }
                cx.error(name.span, msg);
                continue;
            }
            if s.first_at.get(name.text.as_str()).is_some_and(|&d| d > at) {
                cx.warn(
                    name.span,
                    format!(
                        "vrrp_script '{}' is defined below this vrrp_instance: ipvsdir tracks it, keepalived 2.2.7 \
                         ignores the tracking (\"track script {} not found, ignoring...\"); move the vrrp_script \
                         block above the instance so that both read the file the same way",
                        name.text, name.text
                    ),
                );
            }
        }
        let mut t = Tracked {
            name: name.text.to_string(),
            weight: None,
            reverse: false,
        };
        match n.args.first().map(|w| w.text.as_str()) {
            None => {}
            Some("weight") => {
                let (weight, reverse) = tracked_weight(cx, n, -253..=253);
                t.weight = weight;
                set_val(&mut t.reverse, reverse);
            }
            Some(other) => {
                cx.error(
                    n.args[0].span,
                    format!(
                        "expected `weight N [reverse]` after '{}', found '{other}'",
                        name.text
                    ),
                );
                continue;
            }
        }
        out.push(t);
    }
    out
}

pub fn sync_group(
    cx: &mut Ctx,
    node: &Node,
    instances: &HashMap<String, Span>,
) -> Option<SyncGroup> {
    cx.at_most(node, 1);
    let name = cx.arg(node, 0, "a name: `vrrp_sync_group NAME { group { ... } }`")?;
    let body = cx.block(node)?;
    let mut g = SyncGroup {
        name: name.text.to_string(),
        group: Vec::new(),
        notify: Notify::default(),
        smtp_alert: cx.smtp_defaults.vrrp,
        notify_priority_changes: None,
        global_tracking: false,
        track_file: Vec::new(),
        track_process: Vec::new(),
    };
    for n in body {
        match n.name() {
            "group" => {
                for w in cx.words(n) {
                    if !instances.contains_key(w.text.as_str()) {
                        let mut msg = format!("vrrp_sync_group {} names an unknown vrrp_instance '{}'", g.name, w.text);
                        if let Some(s) = suggest(&w.text, instances.keys().map(String::as_str)) {
                            msg.push_str(&format!("; did you mean '{s}'?"));
                        }
                        cx.error(w.span, msg);
                    } else if g.group.iter().any(|m| m == w.text.as_str()) {
                        cx.warn(w.span, format!("'{}' is listed twice in this group", w.text));
                    } else {
                        g.group.push(w.text.to_string());
                    }
                }
            }
            "notify_master" => set(&mut g.notify.master, cx.script(n)),
            "notify_backup" => set(&mut g.notify.backup, cx.script(n)),
            "notify_fault" => set(&mut g.notify.fault, cx.script(n)),
            "notify_stop" => set(&mut g.notify.stop, cx.script(n)),
            "notify" => set(&mut g.notify.any, cx.script(n)),
            "smtp_alert" => set_val(&mut g.smtp_alert, cx.flag(n)),
            "notify_priority_changes" => set(&mut g.notify_priority_changes, cx.flag(n)),
            "global_tracking" => set_val(&mut g.global_tracking, cx.flag(n)),
            "track_file" => g.track_file.extend(super::track_file::tracked(cx, n)),
            "track_process" => g
                .track_process
                .extend(super::track_process::tracked(cx, n)),
            kw if instances.contains_key(kw) => cx.warn(
                n.keyword.span,
                format!("`{kw}` is ignored here (keepalived ignores it too): list sync group members inside `group {{ {kw} }}`"),
            ),
            _ => cx.other(n, Section::VrrpSyncGroup, &[]),
        }
    }
    if g.group.is_empty() {
        cx.warn(
            name.span,
            format!(
                "vrrp_sync_group {} has no members: it has no effect",
                g.name
            ),
        );
    }
    Some(g)
}
