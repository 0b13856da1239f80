//! Gratuitous ARP and unsolicited Neighbour Advertisements on real
//! sockets: each test moves its thread into a private network namespace,
//! makes a veth pair va <-> vb, sends with `GarpSender` on va and checks
//! what arrives on vb with its own AF_PACKET socket, with tcpdump as the
//! independent oracle, and in the kernel's neighbour table.
//!
//! Run: `cargo nextest run --test vrrp_garp` (root; skips otherwise,
//! fails under CI=true).

mod common;

use std::io::{BufRead, BufReader};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use common::netns::{enter_new_netns_or_skip, sh};
use ipvsdir::vrrp::garp::{
    BurstReason, GarpError, GarpParams, GarpSchedule, GarpSender, Mac, Pacer, PlannedSend,
    garp_frame, icmpv6_checksum, unsolicited_na_frame,
};

const MAC_A: Mac = [0x02, 0xaa, 0x00, 0x00, 0x00, 0x01];
const MAC_A_STR: &str = "02:aa:00:00:00:01";
const MAC_B_STR: &str = "02:bb:00:00:00:02";
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const VIP4B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 101);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
/// How long any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(5);

/// A private namespace with va (MAC_A) <-> vb (MAC_B) up; false = skip.
fn lab(what: &str) -> bool {
    if !enter_new_netns_or_skip(what) {
        return false;
    }
    // `name`/`dev` spelled out: a bare `a` would parse as `address`.
    sh(&format!(
        "ip link add name va type veth peer name vb && \
         ip link set dev va address {MAC_A_STR} && ip link set dev vb address {MAC_B_STR} && \
         sysctl -qw net.ipv6.conf.va.forwarding=0 && \
         ip link set dev va up && ip link set dev vb up"
    ));
    true
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: c is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(i, 0, "no interface {name}");
    i
}

/// A receiving AF_PACKET socket on one interface (all protocols).
struct Tap {
    fd: OwnedFd,
}

impl Tap {
    fn open(ifname: &str) -> Tap {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2); owned right below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        };
        assert!(raw >= 0, "tap socket: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: all-zero sockaddr_ll is valid.
        let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto;
        sa.sll_ifindex = ifindex(ifname) as i32;
        // SAFETY: sa is a valid sockaddr_ll.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "tap bind: {}", std::io::Error::last_os_error());
        Tap { fd }
    }

    /// Incoming frames matching `pred`, until `want` of them or WAIT.
    fn collect(&self, want: usize, pred: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while out.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            loop {
                // SAFETY: all-zero sockaddr_ll is valid; buf/sa live for the call.
                let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
                let mut salen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                let n = unsafe {
                    libc::recvfrom(
                        self.fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_DONTWAIT,
                        (&mut sa as *mut libc::sockaddr_ll).cast(),
                        &mut salen,
                    )
                };
                if n < 0 {
                    break;
                }
                let frame = &buf[..n as usize];
                if sa.sll_pkttype != libc::PACKET_OUTGOING && pred(frame) {
                    out.push(frame.to_vec());
                }
            }
        }
        out
    }
}

fn is_garp_for(f: &[u8], vip: Ipv4Addr) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[28..32] == vip.octets()
}

fn is_na_for(f: &[u8], vip: Ipv6Addr) -> bool {
    f.len() >= 86
        && f[12..14] == [0x86, 0xdd]
        && f[20] == 58
        && f[54] == 136
        && f[62..78] == vip.octets()
}

/// tcpdump writing `count` packets matching `filter` on `ifname` to a file.
struct Capture {
    child: Child,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    /// Starts tcpdump and waits until it is listening.
    fn start(ifname: &str, count: usize, filter: &str) -> Capture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcap");
        let mut child = Command::new("tcpdump")
            .args(["-i", ifname, "-nn", "-U", "-Z", "root", "-c"])
            .arg(count.to_string())
            .arg("-w")
            .arg(&path)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(_) => continue,
                Err(e) => {
                    let _ = child.kill();
                    panic!("tcpdump did not start listening: {e}");
                }
            }
        }
        Capture {
            child,
            path,
            _dir: dir,
        }
    }

    /// Waits (bounded) for tcpdump to have its packets and exit; returns
    /// `tcpdump -r -nn -e -vv` of what it caught.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                // Too few packets: stop it and report what was caught.
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = Command::new("tcpdump")
            .args(["-r"])
            .arg(&self.path)
            .args(["-nn", "-e", "-vv"])
            .output()
            .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// tcpdump -e -vv prints some packets over several lines; one per packet.
fn packets(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

/// Everything logged in this process (a global subscriber: scoped ones
/// miss events when other test threads come and go under `cargo test`).
fn logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    #[derive(Clone)]
    struct W(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = W(buf.clone());
        // Debug: the sender logs each packet at that level.
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_global_default(sub).expect("no other global subscriber");
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

#[test]
fn garp_on_the_wire() {
    if !lab("garp_on_the_wire") {
        return;
    }
    logs();
    let tap = Tap::open("vb");
    let cap = Capture::start("vb", 1, "arp");
    let sender = GarpSender::open(ifindex("va")).unwrap();
    assert_eq!(sender.ifname(), "va");
    sender.send_garp(MAC_A, VIP4).unwrap();

    let got = tap.collect(1, |f| is_garp_for(f, VIP4));
    assert_eq!(got.len(), 1, "no gratuitous ARP on vb");
    assert_eq!(got[0][..], garp_frame(MAC_A, VIP4)[..], "frame as built");

    let text = cap.finish();
    let pk = packets(&text);
    assert_eq!(pk.len(), 1, "{text}");
    assert!(
        pk[0].contains(&format!(
            "{MAC_A_STR} > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42"
        )),
        "{text}"
    );
    assert!(
        pk[0].contains("Request who-has 10.0.0.100 (ff:ff:ff:ff:ff:ff) tell 10.0.0.100"),
        "{text}"
    );

    let logs = logs();
    assert!(
        logs.contains("Sending gratuitous ARP on va for 10.0.0.100"),
        "{logs}"
    );
}

#[test]
fn na_on_the_wire() {
    if !lab("na_on_the_wire") {
        return;
    }
    logs();
    let tap = Tap::open("vb");
    let filter = "icmp6 and ip6[40] == 136";
    let cap = Capture::start("vb", 2, filter);
    let sender = GarpSender::open(ifindex("va")).unwrap();
    assert!(!sender.ipv6_forwarding());
    let ll: Ipv6Addr = "fe80::aa:ff:fe00:1".parse().unwrap();
    // keepalived's choice of source (the VIP), then a link-local one.
    sender.send_na(MAC_A, VIP6, VIP6).unwrap();
    sender.send_na(MAC_A, ll, VIP6).unwrap();

    let got = tap.collect(2, |f| is_na_for(f, VIP6));
    assert_eq!(got.len(), 2, "NAs on vb");
    assert_eq!(
        got[0][..],
        unsolicited_na_frame(MAC_A, VIP6, VIP6, false)[..]
    );
    assert_eq!(got[1][..], unsolicited_na_frame(MAC_A, ll, VIP6, false)[..]);
    for (f, src) in got.iter().zip([VIP6, ll]) {
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        assert_eq!(icmpv6_checksum(src, dst, &f[54..86]), 0, "checksum");
    }

    let text = cap.finish();
    let pk = packets(&text);
    assert_eq!(pk.len(), 2, "{text}");
    for (p, src) in pk.iter().zip(["fd00::100", "fe80::aa:ff:fe00:1"]) {
        assert!(
            p.contains(&format!("{MAC_A_STR} > 33:33:00:00:00:01")),
            "{p}"
        );
        assert!(p.contains("hlim 255"), "{p}");
        assert!(p.contains(&format!("{src} > ff02::1")), "{p}");
        assert!(p.contains("[icmp6 sum ok]"), "{p}");
        assert!(
            p.contains(
                "ICMP6, neighbor advertisement, length 32, tgt is fd00::100, Flags [override]"
            ),
            "{p}"
        );
        assert!(
            p.contains(&format!(
                "destination link-address option (2), length 8 (1): {MAC_A_STR}"
            )),
            "{p}"
        );
    }

    let logs = logs();
    assert!(
        logs.contains("Sending unsolicited Neighbour Advert on va for fd00::100"),
        "{logs}"
    );
}

#[test]
fn na_router_flag_follows_forwarding() {
    if !lab("na_router_flag_follows_forwarding") {
        return;
    }
    sh("sysctl -qw net.ipv6.conf.va.forwarding=1");
    let tap = Tap::open("vb");
    let cap = Capture::start("vb", 1, "icmp6 and ip6[40] == 136");
    let sender = GarpSender::open(ifindex("va")).unwrap();
    assert!(sender.ipv6_forwarding());
    sender.send_na(MAC_A, VIP6, VIP6).unwrap();
    let got = tap.collect(1, |f| is_na_for(f, VIP6));
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0][..],
        unsolicited_na_frame(MAC_A, VIP6, VIP6, true)[..]
    );
    let text = cap.finish();
    assert!(text.contains("Flags [router, override]"), "{text}");
    assert!(text.contains("[icmp6 sum ok]"), "{text}");
}

#[test]
fn master_bursts_delay_and_refresh() {
    if !lab("master_bursts_delay_and_refresh") {
        return;
    }
    let vips = [IpAddr::V4(VIP4), IpAddr::V4(VIP4B), IpAddr::V6(VIP6)];
    // 3 + 3 (delay) + 2 + 2 (two refreshes) rounds: 10 per VIP.
    let (arps, nas) = (20, 10);
    let tap = Tap::open("vb");
    let filter = "(arp and (arp[14:4] == 0x0a000064 or arp[14:4] == 0x0a000065)) or \
                  (icmp6 and ip6[40] == 136 and ip6[48:4] == 0xfd000000)";
    let cap = Capture::start("vb", arps + nas, filter);
    let sender = GarpSender::open(ifindex("va")).unwrap();

    let mut sched = GarpSchedule::new(GarpParams {
        master_delay: Duration::from_millis(150),
        master_repeat: 3,
        master_refresh: Some(Duration::from_millis(200)),
        master_refresh_repeat: 2,
    });
    let mut pacer = Pacer::new(Duration::from_millis(10), Duration::from_millis(5));
    let start = Instant::now();
    let now = || start.elapsed().as_micros() as u64;
    let mut queue: Vec<PlannedSend> = Vec::new();
    let mut reasons = Vec::new();
    let first = sched.become_master(now()).unwrap();
    reasons.push(first.reason);
    queue.extend(pacer.plan(now(), first.repeat, &vips));
    let bound = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < bound, "schedule did not finish");
        let t = now();
        for b in sched.poll(t) {
            reasons.push(b.reason);
            queue.extend(pacer.plan(t, b.repeat, &vips));
            if reasons
                .iter()
                .filter(|r| **r == BurstReason::Refresh)
                .count()
                == 2
            {
                sched.leave_master();
            }
        }
        queue.sort_by_key(|s| s.at);
        let due = queue.partition_point(|s| s.at <= t);
        for s in queue.drain(..due) {
            match s.vip {
                IpAddr::V4(a) => sender.send_garp(MAC_A, a).unwrap(),
                IpAddr::V6(a) => sender.send_na(MAC_A, a, a).unwrap(),
            }
        }
        let next = queue
            .first()
            .map(|s| s.at)
            .into_iter()
            .chain(sched.next_deadline())
            .min();
        match next {
            None => break,
            Some(at) => std::thread::sleep(Duration::from_micros(at.saturating_sub(now()))),
        }
    }
    assert_eq!(
        reasons,
        [
            BurstReason::BecameMaster,
            BurstReason::MasterDelay,
            BurstReason::Refresh,
            BurstReason::Refresh
        ]
    );

    let got = tap.collect(arps + nas, |f| {
        is_garp_for(f, VIP4) || is_garp_for(f, VIP4B) || is_na_for(f, VIP6)
    });
    let count = |pred: &dyn Fn(&[u8]) -> bool| got.iter().filter(|f| pred(f)).count();
    assert_eq!(count(&|f| is_garp_for(f, VIP4)), 10);
    assert_eq!(count(&|f| is_garp_for(f, VIP4B)), 10);
    assert_eq!(count(&|f| is_na_for(f, VIP6)), 10);
    // Within the ARPs, rounds alternate the two VIPs.
    let arp_order: Vec<bool> = got
        .iter()
        .filter(|f| f[12..14] == [0x08, 0x06])
        .map(|f| is_garp_for(f, VIP4))
        .collect();
    assert!(
        arp_order.chunks(2).all(|c| c == [true, false]),
        "{arp_order:?}"
    );

    let text = cap.finish();
    let pk = packets(&text);
    let n = |s: &str| pk.iter().filter(|p| p.contains(s)).count();
    assert_eq!(
        n("Request who-has 10.0.0.100 (ff:ff:ff:ff:ff:ff) tell 10.0.0.100"),
        10,
        "{text}"
    );
    assert_eq!(
        n("Request who-has 10.0.0.101 (ff:ff:ff:ff:ff:ff) tell 10.0.0.101"),
        10,
        "{text}"
    );
    assert_eq!(n("ICMP6, neighbor advertisement"), 10, "{text}");
    assert_eq!(n("tgt is fd00::100"), 10, "{text}");
    assert_eq!(pk.len(), arps + nas, "{text}");
}

fn neigh(args: &str) -> String {
    sh(&format!("ip {args}"))
}

/// Polls `ip neigh` until `want` is in the entry for `addr` on vb.
fn wait_neigh(family: &str, addr: &str, want: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = neigh(&format!("{family} neigh show dev vb to {addr}"));
        if out.contains(want) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn garp_updates_neighbour_cache() {
    if !lab("garp_updates_neighbour_cache") {
        return;
    }
    // vb is the neighbour: an address in the VIPs' subnet, learning from
    // gratuitous ARP (arp_accept) for the VIP it has never seen.
    sh("ip addr add 10.0.0.2/24 dev vb && sysctl -qw net.ipv4.conf.vb.arp_accept=1");
    // The failover case: vb still has the old master's MAC for 10.0.0.101.
    sh("ip neigh add 10.0.0.101 lladdr 02:00:00:00:00:99 dev vb nud stale");
    let sender = GarpSender::open(ifindex("va")).unwrap();
    sender.send_garp(MAC_A, VIP4).unwrap();
    sender.send_garp(MAC_A, VIP4B).unwrap();
    let want = format!("lladdr {MAC_A_STR}");
    let new = wait_neigh("-4", "10.0.0.100", &want);
    assert!(new.contains(&want), "10.0.0.100 not learnt: {new:?}");
    let moved = wait_neigh("-4", "10.0.0.101", &want);
    assert!(moved.contains(&want), "10.0.0.101 not moved: {moved:?}");
}

#[test]
fn na_updates_neighbour_cache() {
    if !lab("na_updates_neighbour_cache") {
        return;
    }
    // The old master's MAC for the VIP, and learning untracked NAs for a
    // VIP vb has never seen (RFC 9131; Linux >= 5.19 does it on routers
    // only, hence forwarding on vb).
    sh("ip -6 neigh add fd00::100 lladdr 02:00:00:00:00:99 dev vb nud stale");
    let untracked = std::path::Path::new("/proc/sys/net/ipv6/conf/vb/accept_untracked_na").exists();
    if untracked {
        sh("sysctl -qw net.ipv6.conf.vb.forwarding=1 net.ipv6.conf.vb.accept_untracked_na=1");
    }
    let vip2: Ipv6Addr = "fd00::101".parse().unwrap();
    let sender = GarpSender::open(ifindex("va")).unwrap();
    sender.send_na(MAC_A, VIP6, VIP6).unwrap();
    sender.send_na(MAC_A, vip2, vip2).unwrap();
    let want = format!("lladdr {MAC_A_STR}");
    let moved = wait_neigh("-6", "fd00::100", &want);
    assert!(moved.contains(&want), "fd00::100 not overridden: {moved:?}");
    if untracked {
        let new = wait_neigh("-6", "fd00::101", &want);
        assert!(new.contains(&want), "fd00::101 not learnt: {new:?}");
    }
}

#[test]
fn interface_down_and_gone() {
    if !lab("interface_down_and_gone") {
        return;
    }
    match GarpSender::open(999_999) {
        Err(e @ GarpError::InterfaceGone { .. }) => {
            assert!(e.to_string().contains("is gone"), "{e}")
        }
        other => panic!("open on a missing interface: {other:?}"),
    }
    let sender = GarpSender::open(ifindex("va")).unwrap();
    sh("ip link set dev va down");
    match sender.send_garp(MAC_A, VIP4) {
        Err(e @ GarpError::InterfaceDown { .. }) => {
            assert_eq!(
                e.to_string(),
                "interface va is down; gratuitous ARP for 10.0.0.100 not sent"
            )
        }
        other => panic!("send on a down interface: {other:?}"),
    }
    sh("ip link del dev va");
    match sender.send_na(MAC_A, VIP6, VIP6) {
        Err(e) if e.is_interface_gone() => {
            assert!(e.to_string().contains("interface va (index"), "{e}")
        }
        other => panic!("send on a deleted interface: {other:?}"),
    }
}

/// Without CAP_NET_RAW (dropped from this thread's effective set; root
/// not needed for the test itself) opening says what is missing.
#[test]
fn without_cap_net_raw() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    // A thread of our own: capabilities are per thread and this one ends.
    let r = std::thread::spawn(|| {
        let mut h = Header {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: header and two data structs, as capget/capset v3 expect.
        unsafe {
            assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
            d[0].effective &= !(1 << CAP_NET_RAW);
            assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
        }
        GarpSender::open(1)
    })
    .join()
    .unwrap();
    match r {
        Err(e @ GarpError::NeedsCapNetRaw { .. }) => {
            assert!(e.to_string().contains("needs root or CAP_NET_RAW"), "{e}")
        }
        other => panic!("open without CAP_NET_RAW: {other:?}"),
    }
}
