//! VRRP failover benchmark in the netns lab (run it through
//! scripts/bench-failover, which creates the lab and builds ipvsdir).
//!
//! Two directors d1 (priority 150) and d2 (priority 100) share the VIP
//! 10.99.0.200; the client namespace watches the wire with an AF_PACKET
//! socket on its eth0 (kernel receive timestamps, SO_TIMESTAMPNS, on
//! CLOCK_REALTIME; actions are stamped with clock_gettime(CLOCK_REALTIME) just
//! before they are carried out, so both are on one clock) and pings the VIP
//! every `--ping-ms`. The switch's ports do not learn MAC addresses (the
//! script turns learning off), so the client also sees unicast adverts.
//!
//! Per scenario ({v2 advert_int 1, v3 advert_int 0.1} x {multicast,
//! unicast}), repetition and implementation (ipvsdir and keepalived
//! alternate, on the same lab):
//! - crash: kill -9 of everything in d1's namespace and d1's switch port
//!   down at once -> first gratuitous ARP for the VIP from d2, client outage;
//! - return: d1 "reboots" (its VIP removed, port up) and its daemon is started
//!   -> first gratuitous ARP from d1 (preemption), client outage;
//! - sigterm: SIGTERM to d1's daemon -> first gratuitous ARP from d2, outage.
//!
//! Each action waits for a random phase in [0, advert_int) after an advert of
//! the current master. Client outage = the longest gap between consecutive
//! echo replies from the VIP (from any MAC) around the action; with no loss
//! it is about one ping interval.
//!
//! `--stability SECS`: d1 and d2 at VRRPv3 advert_int 0.02 while
//! `--load-threads` busy loops keep the host's CPUs busy; counts state
//! transitions in the daemons' logs after the initial election, adverts and
//! gratuitous ARPs from the backup on the wire, and the longest gap between
//! the master's adverts.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 200);
const VRID: u8 = 51;
const NS: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
/// keepalived's and ipvsdir's default garp_master_delay: a second burst of
/// gratuitous ARPs comes this long after a new master's first.
const GARP_DELAY: i64 = 5 * NS;
/// Upper bound on the whole run (observer and pinger threads stop there).
const MAX_RUN: Duration = Duration::from_secs(6 * 3600);

#[derive(Parser, Debug)]
#[command(about = "VRRP failover benchmark in the netns lab (use scripts/bench-failover)")]
struct Args {
    /// Lab prefix (scripts/netns-lab/lab up PREFIX 2 must have run).
    #[arg(long)]
    prefix: String,
    /// Where configurations, logs and state files go.
    #[arg(long)]
    workdir: PathBuf,
    #[arg(long, default_value = "target/release/ipvsdir")]
    ipvsdir: PathBuf,
    #[arg(long, default_value = "/usr/sbin/keepalived")]
    keepalived: PathBuf,
    /// Repetitions per scenario, action and implementation.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Seed of the random phases (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Client echo request interval in milliseconds.
    #[arg(long, default_value_t = 2.0)]
    ping_ms: f64,
    /// VRRP versions: v2 (advert_int 1), v3 (advert_int 0.1).
    #[arg(long, default_value = "v2,v3", value_delimiter = ',')]
    versions: Vec<String>,
    /// mcast, ucast.
    #[arg(long, default_value = "mcast,ucast", value_delimiter = ',')]
    modes: Vec<String>,
    /// ipvsdir, keepalived.
    #[arg(long, default_value = "ipvsdir,keepalived", value_delimiter = ',')]
    impls: Vec<String>,
    /// crash, return (measured only after a crash), sigterm; and blip (not by
    /// default): VRRP into d2 dropped until d2 takes over, then let through
    /// again -> client outage until the VIP is back on d1.
    #[arg(long, default_value = "crash,return,sigterm", value_delimiter = ',')]
    actions: Vec<String>,
    /// Run the stability mode for SECS seconds per implementation instead.
    #[arg(long)]
    stability: Option<u64>,
    /// advert_int of the stability mode (VRRPv3).
    #[arg(long, default_value_t = 0.02)]
    stability_advert: f64,
    /// Busy loops during the stability mode.
    #[arg(long, default_value_t = 2)]
    load_threads: usize,
    /// Where the busy loops run: `own` = separate processes in their own
    /// session (so their own scheduler autogroup, like another service on the
    /// host); `shared` = threads of this program, in the daemons' session and
    /// autogroup (harsher: they compete inside the daemons' CPU share).
    #[arg(long, default_value = "own")]
    load: String,
    /// Where ipvsdir writes its --vrrp-state file (default: the work
    /// directory), e.g. /dev/shm to keep file-system stalls out.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Implementations in the stability mode.
    #[arg(long, default_value = "ipvsdir,keepalived", value_delimiter = ',')]
    stability_impls: Vec<String>,
}

fn now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * NS + ts.tv_nsec
}

fn secs(ns: i64) -> f64 {
    ns as f64 / NS as f64
}

fn sleep_ns(ns: i64) {
    if ns > 0 {
        std::thread::sleep(Duration::from_nanos(ns as u64));
    }
}

fn io_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// (busy, total) jiffies of the host's CPUs since boot, from /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Percentage of the host's CPU time busy since `from`.
fn busy_since(from: (u64, u64)) -> f64 {
    let now = cpu_jiffies();
    let total = now.1.saturating_sub(from.1).max(1);
    100.0 * now.0.saturating_sub(from.0) as f64 / total as f64
}

/// Puts the calling thread (and threads it spawns later) in SCHED_FIFO, or
/// back in SCHED_OTHER. The benchmark's own threads (actions, pinger,
/// observer) run real-time so a busy host delays the daemons, not the
/// instrument; processes and threads started from a real-time thread get
/// SCHED_OTHER (SCHED_RESET_ON_FORK), so each instrument thread asks itself.
fn realtime(on: bool) -> bool {
    const SCHED_OTHER: i32 = 0;
    const SCHED_FIFO: i32 = 1;
    const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;
    let (policy, prio) = if on {
        (SCHED_FIFO | SCHED_RESET_ON_FORK, 10)
    } else {
        (SCHED_OTHER, 0)
    };
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: sched_setscheduler(2) on the calling thread (pid 0).
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
}

/// splitmix64: enough for random phases, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------- namespaces

/// Runs `f` on a thread that has joined network namespace `ns`; sockets it
/// creates stay in that namespace whichever thread uses them afterwards.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    std::thread::spawn(move || {
        // SAFETY: setns on this thread only, with a namespace fd we own.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io_err("setns"));
        }
        f()
    })
    .join()
    .map_err(|_| "namespace thread panicked".to_string())?
}

fn setsockopt_int(fd: RawFd, level: i32, opt: i32, val: i32) -> Result<(), String> {
    // SAFETY: a c_int option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&val as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io_err(&format!("setsockopt {level}/{opt}")));
    }
    Ok(())
}

fn set_rcvtimeo(fd: RawFd, d: Duration) -> Result<(), String> {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a timeval option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io_err("SO_RCVTIMEO"));
    }
    Ok(())
}

fn owned(fd: RawFd, what: &str) -> Result<OwnedFd, String> {
    if fd < 0 {
        return Err(io_err(what));
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An AF_PACKET socket on `iface` of the current namespace, all protocols,
/// with kernel receive timestamps.
fn packet_socket(iface: &str) -> Result<OwnedFd, String> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2).
    let fd = owned(
        unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) },
        "AF_PACKET socket",
    )?;
    let name = CString::new(iface).unwrap();
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io_err(iface));
    }
    // SAFETY: zero is a valid sockaddr_ll to fill in.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: binding to a sockaddr_ll of the right size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io_err("bind AF_PACKET"));
    }
    setsockopt_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    setsockopt_int(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        8 << 20,
    )?;
    set_rcvtimeo(fd.as_raw_fd(), Duration::from_millis(100))?;
    Ok(fd)
}

/// A raw ICMP socket that only sends (ICMP_FILTER drops every reply; the
/// observer sees them on the wire).
fn icmp_socket() -> Result<OwnedFd, String> {
    // SAFETY: plain socket(2).
    let fd = owned(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) },
        "raw ICMP socket",
    )?;
    const SOL_RAW: i32 = 255;
    const ICMP_FILTER: i32 = 1;
    setsockopt_int(fd.as_raw_fd(), SOL_RAW, ICMP_FILTER, -1)?;
    Ok(fd)
}

/// A socket in the switch namespace, for SIOCSIFFLAGS on its ports.
fn ioctl_socket() -> Result<OwnedFd, String> {
    // SAFETY: plain socket(2).
    owned(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) },
        "ioctl socket",
    )
}

#[repr(C)]
struct IfReqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    pad: [u8; 22],
}

/// Sets a link up or down (SIOCSIFFLAGS) in the namespace of `fd`.
fn set_link(fd: RawFd, name: &str, up: bool) -> Result<(), String> {
    let mut req = IfReqFlags {
        name: [0; 16],
        flags: 0,
        pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq of this layout.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io_err(&format!("SIOCGIFFLAGS {name}")));
        }
        if up {
            req.flags |= libc::IFF_UP as libc::c_short;
        } else {
            req.flags &= !(libc::IFF_UP as libc::c_short);
        }
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io_err(&format!("SIOCSIFFLAGS {name}")));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ observer

type Mac = [u8; 6];

fn mac_str(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Advert {
        prio: u8,
    },
    /// ARP with sender and target address the VIP.
    Garp,
    /// ARP reply from the VIP to someone.
    ArpReply,
    /// ARP request from the VIP to someone (the master resolving the client).
    ArpRequest,
    Echo,
}

#[derive(Clone, Copy, Debug)]
struct Ev {
    t: i64,
    mac: Mac,
    kind: Kind,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn ip4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn classify(f: &[u8], t: i64, echo_id: u16) -> Option<Ev> {
    if f.len() < 14 {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&f[6..12]);
    match be16(&f[12..14]) {
        0x0806 if f.len() >= 42 => {
            let op = be16(&f[20..22]);
            let mut sha = [0u8; 6];
            sha.copy_from_slice(&f[22..28]);
            if ip4(&f[28..32]) != VIP {
                return None;
            }
            let kind = if ip4(&f[38..42]) == VIP {
                Kind::Garp
            } else if op == 2 {
                Kind::ArpReply
            } else {
                Kind::ArpRequest
            };
            Some(Ev { t, mac: sha, kind })
        }
        0x0800 if f.len() >= 34 => {
            let ihl = usize::from(f[14] & 0x0f) * 4;
            let l4 = 14 + ihl;
            match f[23] {
                112 if f.len() >= l4 + 3 && f[l4 + 1] == VRID => Some(Ev {
                    t,
                    mac,
                    kind: Kind::Advert { prio: f[l4 + 2] },
                }),
                1 if f.len() >= l4 + 8
                    && ip4(&f[26..30]) == VIP
                    && f[l4] == 0
                    && be16(&f[l4 + 4..l4 + 6]) == echo_id =>
                {
                    Some(Ev {
                        t,
                        mac,
                        kind: Kind::Echo,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads the client's eth0 until `stop`, pushing classified frames.
fn observe(fd: OwnedFd, out: Arc<Mutex<Vec<Ev>>>, stop: Arc<AtomicBool>, echo_id: u16) {
    realtime(true);
    let deadline = Instant::now() + MAX_RUN;
    let mut buf = [0u8; 2048];
    let mut cbuf = [0u64; 32];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // SAFETY: zero is a valid sockaddr_ll to receive into.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zero is a valid msghdr to fill in.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&cbuf);
        // SAFETY: every pointer in msg is to a live buffer of the given size.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            continue; // timeout (to look at `stop`) or EINTR
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        let mut t = None;
        // SAFETY: walking the control messages the kernel wrote into cbuf.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    t = Some(ts.tv_sec * NS + ts.tv_nsec);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let t = t.unwrap_or_else(now_ns);
        if let Some(ev) = classify(&buf[..n as usize], t, echo_id) {
            out.lock().unwrap().push(ev);
        }
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends echo requests to the VIP every `interval` until `stop`.
fn ping(fd: OwnedFd, interval: Duration, stop: Arc<AtomicBool>, id: u16) {
    realtime(true);
    let deadline = Instant::now() + MAX_RUN;
    // SAFETY: zero is a valid sockaddr_in to fill in.
    let mut dst: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    dst.sin_family = libc::AF_INET as u16;
    dst.sin_addr.s_addr = u32::from(VIP).to_be();
    let mut seq: u16 = 0;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut pkt = [0u8; 16];
        pkt[0] = 8;
        pkt[4..6].copy_from_slice(&id.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..16].copy_from_slice(b"ipvsdir!");
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
        // SAFETY: sending a local buffer to a sockaddr_in of the right size.
        unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                libc::MSG_DONTWAIT,
                (&dst as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        seq = seq.wrapping_add(1);
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > interval * 20 {
            next = now; // fell far behind (host busy): do not burst
        }
    }
}

/// What the client has seen, by kind, pruned to the last two minutes.
#[derive(Default)]
struct Log {
    adverts: VecDeque<Ev>,
    arps: VecDeque<Ev>,
    replies: VecDeque<Ev>,
}

const KEEP: i64 = 120 * NS;

impl Log {
    fn add(&mut self, evs: &[Ev]) {
        for e in evs {
            match e.kind {
                Kind::Advert { .. } => self.adverts.push_back(*e),
                Kind::Echo => self.replies.push_back(*e),
                _ => self.arps.push_back(*e),
            }
        }
        let old = now_ns() - KEEP;
        for q in [&mut self.adverts, &mut self.arps, &mut self.replies] {
            while q.front().is_some_and(|e| e.t < old) {
                q.pop_front();
            }
        }
    }

    /// Events of `q` after `t`, oldest first.
    fn since(q: &VecDeque<Ev>, t: i64) -> impl Iterator<Item = &Ev> {
        let start = q.partition_point(|e| e.t <= t);
        q.range(start..)
    }

    fn first_garp(&self, mac: Mac, after: i64) -> Option<i64> {
        Self::since(&self.arps, after)
            .find(|e| e.kind == Kind::Garp && e.mac == mac)
            .map(|e| e.t)
    }

    fn last_garp(&self) -> Option<i64> {
        self.arps
            .iter()
            .rev()
            .find(|e| e.kind == Kind::Garp)
            .map(|e| e.t)
    }

    fn first_advert(&self, mac: Mac, after: i64) -> Option<i64> {
        Self::since(&self.adverts, after)
            .find(|e| e.mac == mac)
            .map(|e| e.t)
    }

    /// The MACs of the reply at `t` and of the one after it.
    fn replies_around(&self, t: i64) -> (Option<Mac>, Option<Mac>) {
        let i = self.replies.partition_point(|e| e.t < t);
        (
            self.replies.get(i).map(|e| e.mac),
            self.replies.get(i + 1).map(|e| e.mac),
        )
    }

    fn last_advert_before(&self, mac: Mac, t: i64) -> Option<i64> {
        let end = self.adverts.partition_point(|e| e.t <= t);
        self.adverts
            .range(..end)
            .rev()
            .find(|e| e.mac == mac)
            .map(|e| e.t)
    }

    fn first_advert_prio(&self, mac: Mac, after: i64, prio: u8) -> Option<i64> {
        Self::since(&self.adverts, after)
            .find(|e| e.mac == mac && e.kind == Kind::Advert { prio })
            .map(|e| e.t)
    }

    fn arp_requests_from(&self, mac: Mac, after: i64, before: i64) -> usize {
        Self::since(&self.arps, after)
            .take_while(|e| e.t <= before)
            .filter(|e| e.mac == mac && e.kind == Kind::ArpRequest)
            .count()
    }

    fn adverts_from(&self, mac: Mac, after: i64) -> usize {
        Self::since(&self.adverts, after)
            .filter(|e| e.mac == mac)
            .count()
    }

    /// Longest gap between consecutive replies whose later one is in
    /// (t0, t_end], counting from the last reply at or before t0; and up to
    /// t_end when replies have not resumed.
    fn max_gap(&self, t0: i64, t_end: i64, resumed: bool) -> (i64, i64) {
        let start = self.replies.partition_point(|e| e.t <= t0);
        let mut prev = if start > 0 {
            self.replies[start - 1].t
        } else {
            t0
        };
        let (mut max, mut at) = (0, prev);
        for e in self.replies.range(start..) {
            if e.t > t_end {
                break;
            }
            if e.t - prev > max {
                (max, at) = (e.t - prev, prev);
            }
            prev = e.t;
        }
        if !resumed && t_end - prev > max {
            (max, at) = (t_end - prev, prev);
        }
        (max, at)
    }

    /// Longest gap between consecutive replies both in [from, to].
    fn max_gap_within(&self, from: i64, to: i64) -> i64 {
        let mut prev: Option<i64> = None;
        let mut max = 0;
        for e in Self::since(&self.replies, from).take_while(|e| e.t <= to) {
            if let Some(p) = prev {
                max = max.max(e.t - p);
            }
            prev = Some(e.t);
        }
        max
    }

    /// Replies flow again: some in the last 300 ms, no gap over 50 ms there.
    fn flowing(&self, now: i64) -> bool {
        let from = now - 300 * MS;
        let mut prev = from;
        let mut n = 0;
        for e in Self::since(&self.replies, from) {
            if e.t - prev > 50 * MS {
                return false;
            }
            prev = e.t;
            n += 1;
        }
        n >= 10 && now - prev <= 50 * MS
    }

    fn replies_from(&self, mac: Mac, after: i64, before: i64) -> usize {
        Self::since(&self.replies, after)
            .take_while(|e| e.t <= before)
            .filter(|e| e.mac == mac)
            .count()
    }

    /// Replies in the last 300 ms, all from `mac`.
    fn replies_only_from(&self, mac: Mac, now: i64) -> bool {
        let mut n = 0;
        for e in Self::since(&self.replies, now - 300 * MS) {
            if e.mac != mac {
                return false;
            }
            n += 1;
        }
        n > 0
    }
}

// ------------------------------------------------------------------- daemons

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Impl {
    Ipvsdir,
    Keepalived,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Ipvsdir => "ipvsdir",
            Impl::Keepalived => "keepalived",
        }
    }

    fn parse(s: &str) -> Result<Impl, String> {
        match s {
            "ipvsdir" => Ok(Impl::Ipvsdir),
            "keepalived" => Ok(Impl::Keepalived),
            _ => Err(format!("unknown implementation {s}")),
        }
    }
}

struct Director {
    node: &'static str,
    ns: String,
    ip: Ipv4Addr,
    prio: u8,
    mac: Mac,
    child: Option<Child>,
}

#[derive(Clone, Debug)]
struct Scen {
    version: u8,
    advert: f64,
    unicast: bool,
}

impl Scen {
    fn name(&self) -> String {
        format!(
            "v{} adv {} {}",
            self.version,
            self.advert,
            if self.unicast { "ucast" } else { "mcast" }
        )
    }

    fn advert_ns(&self) -> i64 {
        (self.advert * NS as f64) as i64
    }

    fn skew(&self, prio: u8) -> i64 {
        self.advert_ns() * (256 - i64::from(prio)) / 256
    }

    /// Master_Down_Interval of a backup at `prio`.
    fn mdi(&self, prio: u8) -> i64 {
        3 * self.advert_ns() + self.advert_ns() * (256 - i64::from(prio)) / 256
    }

    fn config(&self, me: &Director, peer: &Director) -> String {
        let version = if self.version == 3 {
            "  version 3\n"
        } else {
            ""
        };
        let unicast = if self.unicast {
            format!(
                "  unicast_src_ip {}\n  unicast_peer {{\n    {}\n  }}\n",
                me.ip, peer.ip
            )
        } else {
            String::new()
        };
        format!(
            "global_defs {{\n  router_id {}\n}}\n\nvrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n{version}  virtual_router_id {VRID}\n  priority {}\n  advert_int {}\n{unicast}  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n",
            me.node, me.prio, self.advert
        )
    }
}

#[derive(Clone, Debug)]
struct Sample {
    takeover: Option<f64>,
    outage: f64,
    /// When the longest gap began, from the action.
    outage_at: f64,
    /// The takeover's first gratuitous ARP after the earliest moment the
    /// protocol allows it, seen on the wire. Crash: the master's last advert
    /// plus the backup's Master_Down_Interval; sigterm: the priority-0
    /// advert plus Skew_Time; return: the start plus Master_Down_Interval,
    /// so start-up included. Free of the random phase, unlike `takeover`.
    excess: Option<f64>,
    /// Longest gap between echo replies in the second before the action:
    /// the floor under `outage` (ping interval plus scheduling jitter).
    floor: f64,
    recovered: bool,
    /// Who answered before and after the longest gap, ARPs seen.
    detail: String,
}

struct Bench {
    args: Args,
    shared: Arc<Mutex<Vec<Ev>>>,
    log: Log,
    sw: OwnedFd,
    d: [Director; 2],
    rng: Rng,
    results: BTreeMap<(String, &'static str, Impl), Vec<Sample>>,
}

/// How long after `bound` the sample's first gratuitous ARP came, in seconds.
fn excess(t0: i64, s: &Sample, bound: Option<i64>) -> Option<f64> {
    let garp = t0 + (s.takeover? * NS as f64) as i64;
    Some(secs(garp - bound?))
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn netns_pids(ns: &str) -> Vec<i32> {
    sh(Command::new("ip").args(["netns", "pids", ns]))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn link_mac(ns: &str) -> Result<Mac, String> {
    let out = sh(Command::new("ip").args(["-n", ns, "-o", "link", "show", "eth0"]))?;
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .and_then(|m| {
            let b: Vec<u8> = m
                .split(':')
                .filter_map(|x| u8::from_str_radix(x, 16).ok())
                .collect();
            b.try_into().ok()
        })
        .ok_or_else(|| format!("no MAC for eth0 in {ns}"))
}

impl Bench {
    fn pull(&mut self) -> Vec<Ev> {
        let evs = std::mem::take(&mut *self.shared.lock().unwrap());
        self.log.add(&evs);
        evs
    }

    fn port(&self, i: usize) -> String {
        format!("v-{}", self.d[i].node)
    }

    fn tag(&self, i: usize, imp: Impl) -> String {
        format!("{}-{}", imp.name(), self.d[i].node)
    }

    fn log_path(&self, i: usize, imp: Impl) -> PathBuf {
        self.args.workdir.join(format!("{}.log", self.tag(i, imp)))
    }

    fn state_path(&self, i: usize) -> PathBuf {
        self.args
            .state_dir
            .as_ref()
            .unwrap_or(&self.args.workdir)
            .join(format!("{}.json", self.tag(i, Impl::Ipvsdir)))
    }

    fn start(&mut self, i: usize, imp: Impl, sc: &Scen) -> Result<(), String> {
        let tag = self.tag(i, imp);
        let dir = self.args.workdir.clone();
        let conf = dir.join(format!("{tag}.conf"));
        std::fs::write(&conf, sc.config(&self.d[i], &self.d[1 - i])).map_err(|e| e.to_string())?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i, imp))
            .map_err(|e| e.to_string())?;
        let _ = writeln!(
            log,
            "=== bench: start {} at {:.6}",
            sc.name(),
            secs(now_ns())
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.d[i].ns]);
        match imp {
            Impl::Ipvsdir => {
                cmd.arg(&self.args.ipvsdir)
                    .args(["-P", "-n", "-l", "-f"])
                    .arg(&conf)
                    .arg("--vrrp-state")
                    .arg(self.state_path(i))
                    // Each director its own status socket (and so its own pid file).
                    .arg("--control-socket")
                    .arg(dir.join(format!("{tag}.sock")))
                    .env("RUST_LOG", "info");
            }
            Impl::Keepalived => {
                cmd.arg(&self.args.keepalived)
                    .args(["-n", "-l", "-D", "-P", "-f"])
                    .arg(&conf)
                    .arg("-p")
                    .arg(dir.join(format!("{tag}.pid")))
                    .arg("-r")
                    .arg(dir.join(format!("{tag}-vrrp.pid")));
            }
        }
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {tag}: {e}"))?;
        self.d[i].child = Some(child);
        Ok(())
    }

    /// kill -9 of everything in director i's namespace, reaped.
    fn kill_all(&mut self, i: usize) {
        for _ in 0..50 {
            let pids = netns_pids(&self.d[i].ns);
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: kill(2); the namespace holds only our daemons.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut c) = self.d[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `limit` for director i's daemon to exit.
    fn wait_exit(&mut self, i: usize, limit: Duration) -> bool {
        let start = Instant::now();
        let Some(c) = self.d[i].child.as_mut() else {
            return true;
        };
        while start.elapsed() < limit {
            if let Ok(Some(_)) = c.try_wait() {
                self.d[i].child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn stop(&mut self, i: usize) {
        if let Some(c) = &self.d[i].child {
            // SAFETY: kill(2) on a child we started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            self.wait_exit(i, Duration::from_secs(10));
        }
        self.kill_all(i);
    }

    fn del_vip(&self, i: usize) {
        let _ = sh(Command::new("ip").args([
            "-n",
            &self.d[i].ns,
            "addr",
            "del",
            &format!("{VIP}/24"),
            "dev",
            "eth0",
        ]));
    }

    /// Both directors stopped, ports up, no VIP left.
    fn reset(&mut self) {
        for i in 0..2 {
            self.stop(i);
            let _ = set_link(self.sw.as_raw_fd(), &self.port(i), true);
            self.del_vip(i);
        }
    }

    fn tail_logs(&self, imp: Impl) -> String {
        let mut out = String::new();
        for i in 0..2 {
            let text = std::fs::read_to_string(self.log_path(i, imp)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out += &format!("--- {}\n", self.log_path(i, imp).display());
            for l in &lines[lines.len().saturating_sub(15)..] {
                out += l;
                out.push('\n');
            }
        }
        out
    }

    /// Polls the observer until `cond` holds (true) or `limit` passes (false).
    fn wait(&mut self, limit: i64, mut cond: impl FnMut(&Log, i64) -> bool) -> bool {
        let end = now_ns() + limit;
        for _ in 0..(limit / MS + 10) {
            self.pull();
            let now = now_ns();
            if cond(&self.log, now) {
                return true;
            }
            if now > end {
                return false;
            }
            sleep_ns(MS);
        }
        false
    }

    /// Waits for the first gratuitous ARP from director i after `after`.
    fn wait_garp(&mut self, i: usize, after: i64, limit: i64) -> Option<i64> {
        let mac = self.d[i].mac;
        let mut found = None;
        self.wait(limit, |l, _| {
            found = l.first_garp(mac, after);
            found.is_some()
        });
        found
    }

    /// Roles have settled with director m as master: m advertises alone,
    /// answers the pings, and its delayed second GARP burst (taken at
    /// `t_take`) is over.
    fn settle(&mut self, m: usize, t_take: i64, sc: &Scen) -> Result<(), String> {
        let (mm, bm) = (self.d[m].mac, self.d[1 - m].mac);
        let w = (5 * sc.advert_ns()).max(500 * MS);
        let ok = self.wait(40 * NS, |l, now| {
            now - t_take >= GARP_DELAY + NS
                && l.last_garp().is_none_or(|g| now - g >= NS)
                && l.adverts_from(mm, now - w) >= 3
                && l.adverts_from(bm, now - w) == 0
                && l.replies_only_from(mm, now)
        });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "roles did not settle with {} master",
                self.d[m].node
            ))
        }
    }

    /// Waits for an advert from director m, then a random phase in [0, advert_int).
    fn random_phase(&mut self, m: usize, sc: &Scen) -> Result<f64, String> {
        let mac = self.d[m].mac;
        let from = now_ns();
        let mut ta = None;
        self.wait(3 * sc.advert_ns() + NS, |l, _| {
            ta = l.first_advert(mac, from);
            ta.is_some()
        });
        let ta = ta.ok_or_else(|| format!("no advert from {}", self.d[m].node))?;
        let adv = sc.advert_ns();
        let phase = (self.rng.unit() * adv as f64) as i64;
        let mut target = ta + phase;
        while target < now_ns() + 200_000 {
            target += adv;
        }
        sleep_ns(target - now_ns());
        Ok(secs(phase))
    }

    /// After an action at t0: the first GARP from director `new`, and the
    /// longest gap in echo replies until they flow again.
    /// After an action at t0: the first GARP from director `new`, and the
    /// longest gap in echo replies until they flow again. With
    /// `from_new_advert` (preemption) gaps count from 50 ms before `new`'s
    /// first advert, not from t0: while the returning daemon starts and waits
    /// out Master_Down_Interval nothing changes on the wire for the client.
    /// A sample of an action at `t0`: the first GARP of the takeover, the
    /// longest reply gap and when it began.
    fn sample(
        &self,
        t0: i64,
        garp: Option<i64>,
        (gap, at): (i64, i64),
        recovered: bool,
        detail: String,
    ) -> Sample {
        Sample {
            takeover: garp.map(|g| secs(g - t0)),
            outage: secs(gap),
            outage_at: secs(at - t0),
            excess: None,
            floor: secs(self.log.max_gap_within(t0 - NS, t0)),
            recovered,
            detail,
        }
    }

    fn measure(&mut self, t0: i64, new: usize, limit: i64, from_new_advert: bool) -> Sample {
        let garp = self.wait_garp(new, t0, limit);
        let base = garp.unwrap_or_else(now_ns);
        let recovered = self.wait(10 * NS, |l, now| now >= base + 300 * MS && l.flowing(now));
        let end = now_ns();
        let start = if from_new_advert {
            self.log
                .first_advert(self.d[new].mac, t0)
                .map_or(t0, |t| (t - 50 * MS).max(t0))
        } else {
            t0
        };
        let (gap, at) = self.log.max_gap(start, end, recovered);
        let name = |m: Option<Mac>| match m {
            Some(m) if m == self.d[0].mac => "d1",
            Some(m) if m == self.d[1].mac => "d2",
            Some(_) => "?",
            None => "-",
        };
        let (before, after) = self.log.replies_around(at);
        let vip_arps = [0, 1].map(|i| self.log.arp_requests_from(self.d[i].mac, t0, end));
        self.sample(
            t0,
            garp,
            (gap, at),
            recovered,
            format!(
                "gap {}->{}, ARP requests from the VIP d1 {} d2 {}",
                name(before),
                name(after),
                vip_arps[0],
                vip_arps[1]
            ),
        )
    }

    fn record(
        &mut self,
        sc: &Scen,
        action: &'static str,
        imp: Impl,
        s: Sample,
        phase: f64,
        note: String,
    ) {
        eprintln!(
            "  {:<10} {:<8} phase {:.3}  takeover {} (over bound {})  outage {:.4} from {:+.3} (floor {:.4}; {}){}{}",
            imp.name(),
            action,
            phase,
            s.takeover.map_or("none".to_string(), |t| format!("{t:.4}")),
            s.excess.map_or("-".to_string(), |t| format!("{t:+.4}")),
            s.outage,
            s.outage_at,
            s.floor,
            s.detail,
            if s.recovered {
                ""
            } else {
                " (replies did not resume)"
            },
            note
        );
        self.results
            .entry((sc.name(), action, imp))
            .or_default()
            .push(s);
    }

    fn want(&self, action: &str) -> bool {
        self.args.actions.iter().any(|a| a == action)
    }

    /// Starts both directors and waits until d1 is master and all is quiet.
    fn start_pair(&mut self, imp: Impl, sc: &Scen) -> Result<(), String> {
        let t = now_ns();
        self.start(1, imp, sc)?;
        self.start(0, imp, sc)?;
        let g = self
            .wait_garp(0, t, 3 * sc.mdi(self.d[0].prio) + 15 * NS)
            .ok_or("d1 never became master")?;
        self.settle(0, g, sc)
    }

    /// One repetition of the selected actions for one implementation.
    fn rep(&mut self, imp: Impl, sc: &Scen) -> Result<(), String> {
        self.start_pair(imp, sc)?;
        let limit = 2 * sc.mdi(self.d[1].prio) + 5 * NS;
        if self.want("blip") {
            let ns = self.d[1].ns.clone();
            let phase = self.random_phase(0, sc)?;
            let t0 = now_ns();
            sh(Command::new("ip").args(["netns", "exec", &ns, "nft", "add table inet bfblip; add chain inet bfblip in { type filter hook input priority 0; }; add rule inet bfblip in ip protocol 112 drop"]))?;
            let g = self.wait_garp(1, t0, limit);
            let t1 = now_ns();
            sh(Command::new("ip").args(["netns", "exec", &ns, "nft", "delete table inet bfblip"]))?;
            let recovered = self.wait(15 * NS, |l, now| now >= t1 + NS && l.flowing(now));
            let end = now_ns();
            let (gap, at) = self.log.max_gap(t0, end, recovered);
            let s = self.sample(t0, g, (gap, at), recovered, String::new());
            let d2_replies = self.log.replies_from(self.d[1].mac, t1, end);
            self.record(
                sc,
                "blip",
                imp,
                s,
                phase,
                format!("  (replies from d2 after VRRP let through: {d2_replies})"),
            );
            self.settle(0, g.unwrap_or(t0), sc)?;
        }
        if self.want("crash") {
            let pids = netns_pids(&self.d[0].ns);
            let phase = self.random_phase(0, sc)?;
            let t0 = now_ns();
            set_link(self.sw.as_raw_fd(), &self.port(0), false)?;
            for p in &pids {
                // SAFETY: kill(2) on the daemons of d1's namespace.
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
            let mut s = self.measure(t0, 1, limit, false);
            let last = self.log.last_advert_before(self.d[0].mac, t0);
            s.excess = excess(t0, &s, last.map(|t| t + sc.mdi(self.d[1].prio)));
            self.record(sc, "crash", imp, s.clone(), phase, String::new());
            self.kill_all(0);
            // d1 reboots: a dead machine keeps no address.
            self.del_vip(0);
            set_link(self.sw.as_raw_fd(), &self.port(0), true)?;
            let t_take = s
                .takeover
                .map_or_else(now_ns, |t| t0 + (t * NS as f64) as i64);
            self.settle(1, t_take, sc)?;
            let phase = self.random_phase(1, sc)?;
            let t0 = now_ns();
            self.start(0, imp, sc)?;
            let mut s = self.measure(t0, 0, 3 * sc.mdi(self.d[0].prio) + 10 * NS, true);
            s.excess = excess(t0, &s, Some(t0 + sc.mdi(self.d[0].prio)));
            if self.want("return") {
                self.record(sc, "return", imp, s.clone(), phase, String::new());
            }
            let t_take = s
                .takeover
                .map_or_else(now_ns, |t| t0 + (t * NS as f64) as i64);
            self.settle(0, t_take, sc)?;
        }
        if self.want("sigterm") {
            let pid = self.d[0].child.as_ref().ok_or("d1 is not running")?.id() as i32;
            let phase = self.random_phase(0, sc)?;
            let t0 = now_ns();
            // SAFETY: kill(2) on a child we started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let mut s = self.measure(t0, 1, limit, false);
            let zero = self.log.first_advert_prio(self.d[0].mac, t0, 0);
            s.excess = excess(t0, &s, zero.map(|t| t + sc.skew(self.d[1].prio)));
            let exited = self.wait_exit(0, Duration::from_secs(10));
            let garp = s.takeover.map_or(i64::MAX, |t| t0 + (t * NS as f64) as i64);
            let mac = self.d[0].mac;
            let old = self.log.replies_from(mac, t0, garp);
            let later = self.log.replies_from(mac, garp, now_ns());
            let arps = self.log.arp_requests_from(mac, garp, now_ns());
            let note = format!(
                "  (replies from d1 after SIGTERM: {old} before the GARP, {later} after; ARP requests from the VIP by d1 after it: {arps}{})",
                if exited {
                    ""
                } else {
                    "; d1 did not exit in 10 s"
                }
            );
            self.record(sc, "sigterm", imp, s, phase, note);
        }
        Ok(())
    }

    fn scenarios(&mut self) -> Result<(), String> {
        let mut scens = Vec::new();
        for v in &self.args.versions {
            let (version, advert) = match v.as_str() {
                "v2" => (2, 1.0),
                "v3" => (3, 0.1),
                _ => return Err(format!("unknown version {v} (v2, v3)")),
            };
            for m in &self.args.modes {
                let unicast = match m.as_str() {
                    "mcast" => false,
                    "ucast" => true,
                    _ => return Err(format!("unknown mode {m} (mcast, ucast)")),
                };
                scens.push(Scen {
                    version,
                    advert,
                    unicast,
                });
            }
        }
        let impls: Vec<Impl> = self
            .args
            .impls
            .iter()
            .map(|s| Impl::parse(s))
            .collect::<Result<_, _>>()?;
        let cpu = cpu_jiffies();
        let started = Instant::now();
        for sc in &scens {
            for r in 0..self.args.reps {
                eprintln!("{} rep {}/{}", sc.name(), r + 1, self.args.reps);
                // Alternate who goes first, so slow drifts of the host hit both.
                let mut order = impls.clone();
                if r % 2 == 1 {
                    order.reverse();
                }
                for imp in order {
                    if let Err(e) = self.rep(imp, sc) {
                        eprintln!("  {} FAILED: {e}\n{}", imp.name(), self.tail_logs(imp));
                    }
                    self.reset();
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
        self.print_table(&scens, &impls);
        println!(
            "(run took {:.0} s; the host's CPUs were {:.0}% busy meanwhile, this benchmark's daemons included)",
            started.elapsed().as_secs_f64(),
            busy_since(cpu)
        );
        Ok(())
    }

    fn print_table(&self, scens: &[Scen], impls: &[Impl]) {
        fn stats(v: &mut [f64]) -> Option<(f64, f64, f64)> {
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let med = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            Some((v[0], med, v[n - 1]))
        }
        let fmt = |s: Option<(f64, f64, f64)>| {
            s.map_or(format!("{:>26}", "-"), |(a, b, c)| {
                format!("{a:>8.4} {b:>8.4} {c:>8.4}")
            })
        };
        println!();
        println!(
            "{:<20} {:<8} {:<11} {:>4}  {:>26}  {:>26}  {:>26}",
            "scenario",
            "action",
            "impl",
            "n",
            "takeover s: min  median  max",
            "outage s: min  median  max",
            "over bound s: min median max"
        );
        for sc in scens {
            for action in ["blip", "crash", "return", "sigterm"] {
                let mut medians = BTreeMap::new();
                let mut any = false;
                for &imp in impls {
                    let Some(v) = self.results.get(&(sc.name(), action, imp)) else {
                        continue;
                    };
                    any = true;
                    let mut take: Vec<f64> = v.iter().filter_map(|s| s.takeover).collect();
                    let mut out: Vec<f64> = v.iter().map(|s| s.outage).collect();
                    let mut over: Vec<f64> = v.iter().filter_map(|s| s.excess).collect();
                    let (ts, os, xs) = (stats(&mut take), stats(&mut out), stats(&mut over));
                    medians.insert(imp, (ts.map(|s| s.1), os.map(|s| s.1), xs.map(|s| s.1)));
                    let n = if take.len() == v.len() {
                        format!("{}", v.len())
                    } else {
                        format!("{}/{}", take.len(), v.len())
                    };
                    println!(
                        "{:<20} {:<8} {:<11} {:>4}  {}  {}  {}",
                        sc.name(),
                        action,
                        imp.name(),
                        n,
                        fmt(ts),
                        fmt(os),
                        fmt(xs)
                    );
                }
                if !any {
                    continue;
                }
                if let (Some(a), Some(b)) =
                    (medians.get(&Impl::Ipvsdir), medians.get(&Impl::Keepalived))
                {
                    let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
                        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}x", x / y),
                        _ => "-".to_string(),
                    };
                    let diff = match (a.2, b.2) {
                        (Some(x), Some(y)) => format!("i-k {:+.1} ms", (x - y) * 1000.0),
                        _ => "-".to_string(),
                    };
                    println!(
                        "{:<20} {:<8} {:<11} {:>4}  {:>26}  {:>26}  {:>26}",
                        sc.name(),
                        action,
                        "ratio i/k",
                        "",
                        format!("median {}", ratio(a.0, b.0)),
                        format!("median {}", ratio(a.1, b.1)),
                        diff
                    );
                }
            }
        }
        let mut floors: Vec<f64> = self.results.values().flatten().map(|s| s.floor).collect();
        floors.sort_by(f64::total_cmp);
        println!(
            "(takeover: action -> first gratuitous ARP from the new master; outage: longest gap between echo replies, pinged every {} ms; the same gap in the second before each action, the floor: median {:.4} s, max {:.4} s; over bound: that GARP after the earliest time the protocol allows, on the wire: crash = master's last advert + backup's Master_Down_Interval, sigterm = priority-0 advert + Skew_Time, return = start + Master_Down_Interval, start-up included)",
            self.args.ping_ms,
            floors.get(floors.len() / 2).copied().unwrap_or(0.0),
            floors.last().copied().unwrap_or(0.0),
        );
    }

    fn transitions(&self, imp: Impl) -> [usize; 2] {
        [0, 1].map(|i| {
            let text = std::fs::read_to_string(self.log_path(i, imp)).unwrap_or_default();
            text.lines()
                .filter(|l| {
                    l.contains("Entering MASTER STATE")
                        || l.contains("Entering BACKUP STATE")
                        || l.contains("Entering FAULT STATE")
                })
                .count()
        })
    }

    fn late_adverts(&self, i: usize) -> Option<u64> {
        let path = self.state_path(i);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        v["instances"][0]["late_adverts"].as_u64()
    }

    fn stability(&mut self, secs_run: u64) -> Result<bool, String> {
        let sc = Scen {
            version: 3,
            advert: self.args.stability_advert,
            unicast: false,
        };
        let impls: Vec<Impl> = self
            .args
            .stability_impls
            .iter()
            .map(|s| Impl::parse(s))
            .collect::<Result<_, _>>()?;
        if !["own", "shared"].contains(&self.args.load.as_str()) {
            return Err(format!("--load {}: own or shared", self.args.load));
        }
        let mut all_ok = true;
        let mut lines = Vec::new();
        for imp in impls {
            eprintln!(
                "stability: {} v3 advert_int {} for {secs_run} s with {} busy loops",
                imp.name(),
                sc.advert,
                self.args.load_threads
            );
            let r = self.stability_one(imp, &sc, secs_run);
            self.reset();
            match r {
                Ok((ok, line)) => {
                    all_ok &= ok;
                    lines.push(line);
                }
                Err(e) => {
                    all_ok = false;
                    lines.push(format!("{:<11} FAILED: {e}", imp.name()));
                    eprintln!("{}", self.tail_logs(imp));
                }
            }
        }
        println!();
        println!(
            "stability: VRRPv3 advert_int {} multicast, {secs_run} s, {} busy loops on the host ({}) (Master_Down_Interval of the backup {:.3} s)",
            sc.advert,
            self.args.load_threads,
            if self.args.load == "shared" {
                "threads in the daemons' session"
            } else {
                "processes in their own session"
            },
            secs(sc.mdi(self.d[1].prio))
        );
        for l in lines {
            println!("{l}");
        }
        Ok(all_ok)
    }

    fn stability_one(
        &mut self,
        imp: Impl,
        sc: &Scen,
        secs_run: u64,
    ) -> Result<(bool, String), String> {
        self.start_pair(imp, sc)?;
        let before = self.transitions(imp);
        let cpu = cpu_jiffies();
        let late_before = self.late_adverts(1);
        let (m, b) = (self.d[0].mac, self.d[1].mac);
        let end = Instant::now() + Duration::from_secs(secs_run);
        let stop = Arc::new(AtomicBool::new(false));
        let mut load: Vec<JoinHandle<()>> = Vec::new();
        let mut burners: Vec<Child> = Vec::new();
        for _ in 0..self.args.load_threads {
            if self.args.load == "shared" {
                let stop = stop.clone();
                load.push(std::thread::spawn(move || {
                    realtime(false);
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                        for _ in 0..100_000 {
                            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                }));
            } else {
                let mut cmd = Command::new("timeout");
                cmd.args([
                    &format!("{}", secs_run + 1),
                    "sh",
                    "-c",
                    "while :; do :; done",
                ])
                .stdin(Stdio::null());
                // SAFETY: setsid(2) in the child before exec: a session (and
                // scheduler autogroup) of its own.
                unsafe {
                    std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                        libc::setsid();
                        Ok(())
                    });
                }
                burners.push(cmd.spawn().map_err(|e| format!("load: {e}"))?);
            }
        }
        self.pull();
        let mut last_m = self.log.adverts.back().map(|e| e.t);
        let mut last_reply = self.log.replies.back().map(|e| e.t);
        let (mut max_adv_gap, mut max_reply_gap) = (0i64, 0i64);
        let (mut from_backup, mut garps, mut adverts) = (0usize, 0usize, 0usize);
        let mut gaps_over_half_mdi = 0usize;
        let mut gaps_over_mdi = 0usize;
        let mut prev_m: Option<i64> = None;
        let mut last_b: Option<i64> = None;
        let mut silences: Vec<i64> = Vec::new();
        let half_mdi = sc.mdi(self.d[1].prio) / 2;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
            for e in self.pull() {
                match e.kind {
                    Kind::Advert { .. } if e.mac == m => {
                        adverts += 1;
                        if let Some(p) = last_m {
                            max_adv_gap = max_adv_gap.max(e.t - p);
                            if e.t - p > half_mdi {
                                gaps_over_half_mdi += 1;
                            }
                            if e.t - p > 2 * half_mdi {
                                gaps_over_mdi += 1;
                            }
                        }
                        prev_m = last_m;
                        last_m = Some(e.t);
                    }
                    Kind::Advert { .. } if e.mac == b => {
                        // The backup's first advert of a spurious mastership:
                        // how long had the master been silent on the wire?
                        if last_b.is_none_or(|t| e.t - t > 2 * sc.advert_ns())
                            && let Some(p) = last_m
                        {
                            // An advert of the master's that arrived within
                            // a millisecond may not have been read yet: count
                            // from the one before it.
                            let p = if e.t - p < MS { prev_m.unwrap_or(p) } else { p };
                            silences.push(e.t - p);
                        }
                        last_b = Some(e.t);
                        from_backup += 1;
                    }
                    Kind::Garp => garps += 1,
                    Kind::Echo => {
                        if let Some(p) = last_reply {
                            max_reply_gap = max_reply_gap.max(e.t - p);
                        }
                        last_reply = Some(e.t);
                    }
                    _ => {}
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for h in load {
            let _ = h.join();
        }
        for mut c in burners {
            // SAFETY: kill(2) on the busy loop's process group (its own session).
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.kill();
            let _ = c.wait();
        }
        let after = self.transitions(imp);
        let trans = (after[0] - before[0]) + (after[1] - before[1]);
        let late = match (late_before, self.late_adverts(1)) {
            (Some(a), Some(b)) => format!(", backup's late-advert warnings {}", b - a),
            _ => String::new(),
        };
        let busy = busy_since(cpu);
        silences.sort();
        let silence = if silences.is_empty() {
            String::new()
        } else {
            format!(
                "; when the backup took over, the master had been silent on the wire for min {:.1} / median {:.1} / max {:.1} ms ({} of {} under the MDI)",
                silences[0] as f64 / MS as f64,
                silences[silences.len() / 2] as f64 / MS as f64,
                silences[silences.len() - 1] as f64 / MS as f64,
                silences
                    .iter()
                    .filter(|&&x| x < sc.mdi(self.d[1].prio))
                    .count(),
                silences.len()
            )
        };
        let ok = trans == 0 && from_backup == 0 && garps == 0;
        Ok((
            ok,
            format!(
                "{:<11} {}: transitions after the election {trans}, adverts from the backup {from_backup}, gratuitous ARPs {garps}; master adverts {adverts}, longest gap {:.1} ms ({gaps_over_half_mdi} over half the MDI, {gaps_over_mdi} over it), longest echo-reply gap {:.1} ms{late}; host CPUs {busy:.0}% busy{silence}",
                imp.name(),
                if ok { "STABLE" } else { "UNSTABLE" },
                max_adv_gap as f64 / MS as f64,
                max_reply_gap as f64 / MS as f64,
            ),
        ))
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("bench_failover: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let seed = args.seed.unwrap_or_else(|| now_ns() as u64);
    eprintln!("bench_failover: seed {seed}, lab {}", args.prefix);
    if !realtime(true) {
        eprintln!(
            "bench_failover: cannot use SCHED_FIFO; timings include this program's scheduling delays"
        );
    }
    let p = &args.prefix;
    let sw = in_netns(&format!("{p}-sw"), ioctl_socket)?;
    let cap = in_netns(&format!("{p}-c"), || packet_socket("eth0"))?;
    let icmp = in_netns(&format!("{p}-c"), icmp_socket)?;
    let mut d = Vec::new();
    for (k, prio) in [(1u8, 150u8), (2, 100)] {
        let node: &'static str = if k == 1 { "d1" } else { "d2" };
        let ns = format!("{p}-{node}");
        d.push(Director {
            node,
            mac: link_mac(&ns)?,
            ns,
            ip: Ipv4Addr::new(10, 99, 0, 10 + k),
            prio,
            child: None,
        });
    }
    let d: [Director; 2] = d.try_into().map_err(|_| "two directors")?;
    let shared = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let echo_id = (std::process::id() & 0xffff) as u16;
    let observer = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::spawn(move || observe(cap, shared, stop, echo_id))
    };
    let pinger = {
        let stop = stop.clone();
        let interval = Duration::from_secs_f64(args.ping_ms / 1000.0);
        std::thread::spawn(move || ping(icmp, interval, stop, echo_id))
    };
    let stability = args.stability;
    let mut bench = Bench {
        args,
        shared,
        log: Log::default(),
        sw,
        d,
        rng: Rng(seed),
        results: BTreeMap::new(),
    };
    eprintln!(
        "d1 {} (priority 150), d2 {} (priority 100), VIP {VIP}",
        mac_str(&bench.d[0].mac),
        mac_str(&bench.d[1].mac)
    );
    bench.reset();
    let r = match stability {
        Some(s) => bench.stability(s).and_then(|ok| {
            if ok {
                Ok(())
            } else {
                Err("the stability run saw transitions".to_string())
            }
        }),
        None => bench.scenarios(),
    };
    bench.reset();
    stop.store(true, Ordering::Relaxed);
    let _ = observer.join();
    let _ = pinger.join();
    r
}
