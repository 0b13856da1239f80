//! `ipvsadm -Ln`-compatible views of the kernel table (plain, `--stats`,
//! `--rate`, `-S` rules) and a JSON view. Layout, truncation and sort order
//! follow ipvsadm 1.31 exactly, so the two outputs can be compared byte for
//! byte.

use std::fmt::Write;
use std::net::IpAddr;

use ipvs_sys::{
    DestEntry, Family, ForwardMethod, Info, Netmask, Protocol, ServiceFlags, ServiceKey, Stats,
};

use super::table::{KernelService, KernelTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `ipvsadm -Ln`
    Plain,
    /// `ipvsadm -Ln --stats`
    Stats,
    /// `ipvsadm -Ln --rate`
    Rate,
    /// `ipvsadm -Sn`
    Rules,
}

/// `A.B.C.D:P` or `[v6]:P`, as ipvsadm -n prints addresses.
pub fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
        Protocol::Other(_) => "?",
    }
}

fn proto_option(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
        Protocol::Sctp => "--sctp-service",
        Protocol::Other(_) => "--xxx-service",
    }
}

fn fwd_name(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "Masq",
        ForwardMethod::Local => "Local",
        ForwardMethod::Tunnel => "Tunnel",
        ForwardMethod::Route => "Route",
        ForwardMethod::Bypass => "(null)",
    }
}

fn fwd_switch(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "-m",
        ForwardMethod::Tunnel => "-i",
        _ => "-g",
    }
}

fn truncate(s: &mut String, at: usize) {
    if s.len() > at {
        s.truncate(at);
    }
}

/// ipvsadm's number column: 9 wide, K/M/G/T above 100 million.
fn largenum(out: &mut String, i: u64) {
    let _ = match i {
        0..100_000_000 => write!(out, "{i:>9}"),
        100_000_000..1_000_000_000 => write!(out, "{:>8}K", i / 1_000),
        1_000_000_000..100_000_000_000 => write!(out, "{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:>8}G", i / 1_000_000_000),
        _ => write!(out, "{:>8}T", i / 1_000_000_000_000),
    };
}

/// A persistence netmask other than a single client (/32, /128), as ipvsadm prints it.
fn granularity(m: Netmask) -> Option<String> {
    match m {
        Netmask::V4(m) if m != std::net::Ipv4Addr::BROADCAST => Some(m.to_string()),
        Netmask::V6Prefix(p) if p != 128 => Some(p.to_string()),
        _ => None,
    }
}

fn sched_flags(name: &str, flags: u32) -> String {
    let has = |f: ServiceFlags| flags & f.0 != 0;
    let names: &[(ServiceFlags, &str)] = match name {
        "sh" => &[
            (ServiceFlags::SCHED1, "sh-fallback"),
            (ServiceFlags::SCHED2, "sh-port"),
        ],
        "mh" => &[
            (ServiceFlags::SCHED1, "mh-fallback"),
            (ServiceFlags::SCHED2, "mh-port"),
        ],
        _ => &[
            (ServiceFlags::SCHED1, "flag-1"),
            (ServiceFlags::SCHED2, "flag-2"),
            (ServiceFlags::SCHED3, "flag-3"),
        ],
    };
    names
        .iter()
        .filter(|(f, _)| has(*f))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn stats(s: &KernelService) -> Stats {
    s.entry.stats64.or(s.entry.stats).unwrap_or_default()
}

fn dest_stats(d: &DestEntry) -> Stats {
    d.stats64.or(d.stats).unwrap_or_default()
}

fn key_af(k: &ServiceKey) -> Family {
    match k {
        ServiceKey::Addr {
            addr: IpAddr::V6(_),
            ..
        } => Family::Inet6,
        ServiceKey::Addr { .. } => Family::Inet,
        ServiceKey::Fwmark { family, .. } => *family,
    }
}

fn af_num(f: Family) -> i32 {
    match f {
        Family::Inet => 2,
        Family::Inet6 => 10,
    }
}

/// The address as the 32-bit words ipvsadm compares (host order).
fn words(a: IpAddr) -> Vec<u32> {
    match a {
        IpAddr::V4(v) => vec![u32::from(v)],
        IpAddr::V6(v) => v
            .octets()
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

/// `ntohl(a) - ntohl(b)` in C: unsigned subtraction read back as int.
fn c_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn cmp_addr(a: Option<IpAddr>, b: Option<IpAddr>) -> i32 {
    let wa = a.map_or(vec![0], words);
    let wb = b.map_or(vec![0], words);
    for (x, y) in wa.iter().zip(wb.iter()) {
        let r = c_diff(*x, *y);
        if r != 0 {
            return r;
        }
    }
    0
}

/// libipvs' ipvs_cmp_services, wrap-around quirks included.
fn cmp_services(a: &KernelService, b: &KernelService) -> i32 {
    let parts = |k: &ServiceKey| match k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (0u32, protocol.to_raw(), Some(*addr), *port),
        ServiceKey::Fwmark { mark, .. } => (*mark, 6, None, 0),
    };
    let (ka, kb) = (&a.entry.service.key, &b.entry.service.key);
    let (fa, pa, aa, porta) = parts(ka);
    let (fb, pb, ab, portb) = parts(kb);
    let r = c_diff(fa, fb);
    if r != 0 {
        return r;
    }
    let r = af_num(key_af(ka)) - af_num(key_af(kb));
    if r != 0 {
        return r;
    }
    let r = i32::from(pa) - i32::from(pb);
    if r != 0 {
        return r;
    }
    let r = cmp_addr(aa, ab);
    if r != 0 {
        return r;
    }
    i32::from(porta) - i32::from(portb)
}

fn cmp_dests(a: &DestEntry, b: &DestEntry) -> i32 {
    let r = cmp_addr(Some(a.dest.addr), Some(b.dest.addr));
    if r != 0 {
        return r;
    }
    i32::from(a.dest.port) - i32::from(b.dest.port)
}

/// glibc 2.36's qsort (a top-down merge sort): with ipvsadm's
/// non-transitive comparators only the same algorithm gives the same order.
fn msort<T: Clone>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort(&mut v[..n1], cmp);
    msort(&mut v[n1..], cmp);
    let (left, right) = (v[..n1].to_vec(), v[n1..].to_vec());
    let (mut i, mut j) = (0, 0);
    for slot in v.iter_mut() {
        let take_left = j >= right.len() || (i < left.len() && cmp(&left[i], &right[j]) <= 0);
        *slot = if take_left {
            i += 1;
            left[i - 1].clone()
        } else {
            j += 1;
            right[j - 1].clone()
        };
    }
}

fn service_name(key: &ServiceKey, view: View) -> String {
    match key {
        ServiceKey::Fwmark { mark, family } => match (view, family) {
            (View::Rules, Family::Inet6) => format!("-f {mark} -6"),
            (View::Rules, Family::Inet) => format!("-f {mark}"),
            (_, Family::Inet6) => format!("FWM  {mark} IPv6"),
            (_, Family::Inet) => format!("FWM  {mark}"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let v = addr_port(*addr, *port);
            if view == View::Rules {
                format!("{} {v}", proto_option(*protocol))
            } else {
                let mut s = format!("{:<4} {v}", proto_name(*protocol));
                if addr.is_ipv4() {
                    truncate(&mut s, 33);
                }
                s
            }
        }
    }
}

/// Extra lines in a listing (e.g. the checkers' verdicts).
pub trait Annotate {
    /// A line under this real server of this service.
    fn dest(&self, svc: &ServiceKey, d: &DestEntry) -> Option<String>;
    /// Lines after the service's real servers: those the configuration
    /// has and the kernel table does not (`present`).
    fn absent(&self, svc: &ServiceKey, present: &[DestEntry]) -> Vec<String>;
}

struct Nothing;

impl Annotate for Nothing {
    fn dest(&self, _: &ServiceKey, _: &DestEntry) -> Option<String> {
        None
    }
    fn absent(&self, _: &ServiceKey, _: &[DestEntry]) -> Vec<String> {
        Vec::new()
    }
}

/// The whole listing, as `ipvsadm -Ln` (or the chosen variant) prints it.
pub fn render(table: &KernelTable, info: &Info, view: View) -> String {
    render_annotated(table, info, view, &Nothing)
}

/// [`render`] with `annotate`'s lines.
pub fn render_annotated(
    table: &KernelTable,
    info: &Info,
    view: View,
    annotate: &dyn Annotate,
) -> String {
    let mut out = String::new();
    if view != View::Rules {
        let v = info.version;
        let _ = writeln!(
            out,
            "IP Virtual Server version {}.{}.{} (size={})",
            (v >> 16) & 0xff,
            (v >> 8) & 0xff,
            v & 0xff,
            info.conn_tab_size
        );
    }
    let columns = |names: [&str; 5]| {
        format!(
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port", names[0], names[1], names[2], names[3], names[4]
        )
    };
    match view {
        View::Plain => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        ),
        View::Stats => out.push_str(&columns(["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"])),
        View::Rate => out.push_str(&columns(["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"])),
        View::Rules => {}
    }
    let mut services = table.services.clone();
    msort(&mut services, &cmp_services);
    for s in &mut services {
        msort(&mut s.dests, &cmp_dests);
        render_service(&mut out, s, view, annotate);
    }
    out
}

fn render_service(out: &mut String, s: &KernelService, view: View, annotate: &dyn Annotate) {
    let svc = &s.entry.service;
    let name = service_name(&svc.key, view);
    let flags = svc.flags.0;
    let persistent = flags & ServiceFlags::PERSISTENT.0 != 0;
    let sflags = sched_flags(&svc.sched_name, flags);
    match view {
        View::Rules => {
            let _ = write!(out, "-A {}", service_rule(svc));
        }
        View::Stats | View::Rate => {
            let st = stats(s);
            let _ = write!(out, "{name:<33}");
            let cols = if view == View::Stats {
                [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes]
            } else {
                [st.cps, st.inpps, st.outpps, st.inbps, st.outbps]
            };
            for c in cols {
                largenum(out, c);
            }
        }
        View::Plain => {
            let _ = write!(out, "{name} {}", svc.sched_name);
            if !sflags.is_empty() {
                let _ = write!(out, " ({sflags})");
            }
            if persistent {
                let _ = write!(out, " persistent {}", svc.timeout);
                if let Some(m) = granularity(svc.netmask) {
                    let _ = write!(out, " mask {m}");
                }
                if let Some(pe) = &svc.pe_name {
                    let _ = write!(out, " pe {pe}");
                }
            }
            if flags & ServiceFlags::ONEPACKET.0 != 0 {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');
    for d in &s.dests {
        let e = &d.dest;
        let mut dname = addr_port(e.addr, e.port);
        if view != View::Rules && e.addr.is_ipv4() {
            truncate(&mut dname, 28);
        }
        let weight = e.weight as i32;
        match view {
            View::Rules => {
                let _ = writeln!(out, "-a {}", dest_rule(&svc.key, e));
            }
            View::Stats => {
                let st = dest_stats(d);
                let _ = write!(out, "  -> {dname:<28}");
                for c in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                    largenum(out, c);
                }
                out.push('\n');
            }
            View::Rate => {
                let st = dest_stats(d);
                let _ = write!(
                    out,
                    "  -> {dname:<28} {:>8} {:>8} {:>8}",
                    st.cps, st.inpps, st.outpps
                );
                largenum(out, st.inbps);
                largenum(out, st.outbps);
                out.push('\n');
            }
            View::Plain => {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {weight:<6} {:<10} {:<10}",
                    fwd_name(e.fwd),
                    d.active_conns,
                    d.inact_conns
                );
            }
        }
        if let Some(line) = annotate.dest(&svc.key, d) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    for line in annotate.absent(&svc.key, &s.dests) {
        out.push_str(&line);
        out.push('\n');
    }
}

/// `SERVICE -s SCHED [-p T [-M MASK]] [--pe PE] [-o] [-b FLAGS]`, as `ipvsadm -S` writes it.
pub fn service_rule(svc: &ipvs_sys::Service) -> String {
    let mut out = format!(
        "{} -s {}",
        service_name(&svc.key, View::Rules),
        svc.sched_name
    );
    let flags = svc.flags.0;
    if flags & ServiceFlags::PERSISTENT.0 != 0 {
        let _ = write!(out, " -p {}", svc.timeout);
        if let Some(m) = granularity(svc.netmask) {
            let _ = write!(out, " -M {m}");
        }
    }
    if let Some(pe) = &svc.pe_name {
        let _ = write!(out, " --pe {pe}");
    }
    if flags & ServiceFlags::ONEPACKET.0 != 0 {
        out.push_str(" -o");
    }
    let sflags = sched_flags(&svc.sched_name, flags);
    if !sflags.is_empty() {
        let _ = write!(out, " -b {sflags}");
    }
    out
}

/// `SERVICE -r DEST -m|-g|-i -w W [tunnel options]`, as `ipvsadm -S` writes it.
pub fn dest_rule(key: &ServiceKey, e: &ipvs_sys::Dest) -> String {
    let mut out = format!(
        "{} -r {} {} -w {}",
        service_name(key, View::Rules),
        addr_port(e.addr, e.port),
        fwd_switch(e.fwd),
        e.weight as i32
    );
    if e.fwd == ForwardMethod::Tunnel
        && let Some(t) = &e.tunnel
    {
        let flag = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"]
            .get(usize::from(t.flags))
            .copied()
            .unwrap_or("");
        let _ = match t.kind {
            ipvs_sys::TunnelType::Ipip => write!(out, " --tun-type ipip"),
            ipvs_sys::TunnelType::Gue => {
                write!(out, " --tun-type gue --tun-port {} {flag}", t.port)
            }
            ipvs_sys::TunnelType::Gre => write!(out, " --tun-type gre {flag}"),
        };
    }
    out
}

/// One planned operation in ipvsadm's command syntax (`-A`, `-E`, `-D`, `-a`, `-e`, `-d`).
pub fn op_rule(op: &super::diff::Op) -> String {
    use super::diff::Op;
    match op {
        Op::AddService(s) => format!("-A {}", service_rule(s)),
        Op::EditService(s) => format!("-E {}", service_rule(s)),
        Op::DelService(k) => format!("-D {}", service_name(k, View::Rules)),
        Op::AddDest(k, d) => format!("-a {}", dest_rule(k, d)),
        Op::EditDest(k, d) => format!("-e {}", dest_rule(k, d)),
        Op::DelDest(k, (a, p)) => format!(
            "-d {} -r {}",
            service_name(k, View::Rules),
            addr_port(*a, *p)
        ),
    }
}

/// The table as JSON: one object per service with its real servers.
pub fn json(table: &KernelTable, info: &Info) -> serde_json::Value {
    let services: Vec<serde_json::Value> = table
        .services
        .iter()
        .map(|s| {
            let svc = &s.entry.service;
            let st = stats(s);
            let (protocol, address, fwmark) = match svc.key {
                ServiceKey::Addr { protocol, addr, port } => {
                    (Some(proto_name(protocol)), Some(addr_port(addr, port)), None)
                }
                ServiceKey::Fwmark { mark, .. } => (None, None, Some(mark)),
            };
            serde_json::json!({
                "protocol": protocol,
                "address": address,
                "fwmark": fwmark,
                "family": if key_af(&svc.key) == Family::Inet6 { "inet6" } else { "inet" },
                "scheduler": svc.sched_name,
                "flags": svc.flags.0,
                "persistent": (svc.flags.0 & ServiceFlags::PERSISTENT.0 != 0).then_some(svc.timeout),
                "stats": stats_json(&st),
                "real_servers": s.dests.iter().map(|d| {
                    serde_json::json!({
                        "address": addr_port(d.dest.addr, d.dest.port),
                        "forward": fwd_name(d.dest.fwd),
                        "weight": d.dest.weight,
                        "uthreshold": d.dest.u_thresh,
                        "lthreshold": d.dest.l_thresh,
                        "active_conns": d.active_conns,
                        "inactive_conns": d.inact_conns,
                        "persistent_conns": d.persist_conns,
                        "stats": stats_json(&dest_stats(d)),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "version": format!("{}.{}.{}", (info.version >> 16) & 0xff, (info.version >> 8) & 0xff, info.version & 0xff),
        "conn_tab_size": info.conn_tab_size,
        "services": services,
    })
}

fn stats_json(s: &Stats) -> serde_json::Value {
    serde_json::json!({
        "conns": s.conns, "inpkts": s.inpkts, "outpkts": s.outpkts,
        "inbytes": s.inbytes, "outbytes": s.outbytes,
        "cps": s.cps, "inpps": s.inpps, "outpps": s.outpps, "inbps": s.inbps, "outbps": s.outbps,
    })
}
