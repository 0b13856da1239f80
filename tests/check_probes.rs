//! The LVS checkers beyond TCP/HTTP/MISC against real servers: UDP_CHECK
//! against UDP servers in this test (one that echoes and then stops, so the
//! kernel answers port unreachable; one that never answers). A checker
//! ipvsdir cannot run is said, with what then judges the real server.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::daemon::Daemon;
use ipvsdir::check::udp;
use ipvsdir::config::model::{CheckKind, Config, UdpCheck};
use ipvsdir::config::{LoadOptions, load_str};
use serde_json::Value;

fn load(text: &str) -> (Option<Config>, String) {
    let l = load_str("t.conf", text, &LoadOptions::default());
    (l.config, l.diagnostics.to_string())
}

fn config(text: &str) -> Config {
    let (c, d) = load(text);
    c.unwrap_or_else(|| panic!("{d}"))
}

/// A UDP echo server on loopback in a thread, until `stop` is set; then its
/// socket is closed, and the kernel answers port unreachable.
fn echo_server(
    reply: Option<&'static [u8]>,
) -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let addr = sock.local_addr().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !s.load(Ordering::SeqCst) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(reply.unwrap_or(&buf[..n]), from);
            }
        }
    });
    (addr, stop, t)
}

fn udp_check(require_reply: bool, reply: Option<&[u8]>) -> UdpCheck {
    UdpCheck {
        payload: b"ping".to_vec(),
        require_reply,
        reply: reply.map(|r| r.to_vec()),
        min_reply_length: 0,
        max_reply_length: 255,
    }
}

const T: Duration = Duration::from_millis(500);

#[tokio::test]
async fn udp_echo_up_then_port_unreachable_down() {
    let (addr, stop, t) = echo_server(None);
    let c = udp_check(true, Some(b"pi"));
    let r = udp::probe(addr, None, T, &c).await;
    assert!(r.ok, "{r:?}");
    // The payload came back: a reply of its 4 bytes.
    assert_eq!(&*r.reason, "reply of 4 bytes");
    // Data that does not match is down.
    let r = udp::probe(addr, None, T, &udp_check(true, Some(b"pong"))).await;
    assert!(!r.ok && !r.local, "{r:?}");
    assert!(r.reason.contains("mismatch at byte 1"), "{r:?}");

    stop.store(true, Ordering::SeqCst);
    t.join().expect("server thread");
    // The socket is closed: ICMP port unreachable, down even without
    // require_reply, and well before the timeout.
    for require in [false, true] {
        let started = std::time::Instant::now();
        let r = udp::probe(
            addr,
            None,
            Duration::from_secs(5),
            &udp_check(require, None),
        )
        .await;
        assert!(!r.ok && !r.local, "{r:?}");
        assert_eq!(&*r.reason, "port unreachable (ICMP): connection refused");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn udp_silent_server_needs_require_reply_to_be_down() {
    // Bound and never read: no reply and no ICMP error.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let r = udp::probe(addr, None, T, &udp_check(false, None)).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(&*r.reason, "sent; no ICMP error");
    let started = std::time::Instant::now();
    let r = udp::probe(addr, None, T, &udp_check(true, None)).await;
    assert!(!r.ok && !r.local, "{r:?}");
    assert_eq!(&*r.reason, "no reply within 0.5 s");
    assert!(started.elapsed() >= T);
    drop(silent);
}

#[tokio::test]
async fn udp_reply_lengths() {
    let (addr, stop, t) = echo_server(Some(b"0123456789"));
    let mut c = udp_check(true, Some(b"01"));
    c.max_reply_length = 9;
    let r = udp::probe(addr, None, T, &c).await;
    assert!(!r.ok, "{r:?}");
    assert!(r.reason.contains("reply of 10 bytes"), "{r:?}");
    c.max_reply_length = 10;
    c.min_reply_length = 10;
    let r = udp::probe(addr, None, T, &c).await;
    assert!(r.ok, "{r:?}");
    stop.store(true, Ordering::SeqCst);
    t.join().expect("server thread");
}

#[test]
fn udp_check_config() {
    let c = config(
        "virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 127.0.0.1 53 {\n  UDP_CHECK {\n   connect_timeout 2\n   payload 00 01 ff\n   require_reply 4f4B\n   min_reply_length 2\n   max_reply_length 512\n  }\n }\n}\n",
    );
    let ch = &c.virtual_servers[0].real_servers[0].checkers[0];
    let CheckKind::Udp(u) = &ch.kind else {
        panic!("{ch:?}")
    };
    assert_eq!(u.payload, [0, 1, 0xff]);
    assert!(u.require_reply);
    assert_eq!(u.reply.as_deref(), Some(&b"OK"[..]));
    assert_eq!((u.min_reply_length, u.max_reply_length), (2, 512));
    assert_eq!(ch.common.connect_port, 53);

    // Defaults: nothing sent but an empty datagram, no reply needed, 0..255.
    let c = config(
        "virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 127.0.0.1 53 {\n  UDP_CHECK {\n  }\n }\n}\n",
    );
    let CheckKind::Udp(u) = &c.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!()
    };
    assert_eq!(
        u,
        &UdpCheck {
            payload: vec![],
            require_reply: false,
            reply: None,
            min_reply_length: 0,
            max_reply_length: 255,
        }
    );

    let (c, d) = load(
        "virtual_server 10.0.0.1 53 {\n real_server 127.0.0.1 53 {\n  UDP_CHECK {\n   require_reply\n   min_reply_length 4\n  }\n }\n}\n",
    );
    assert!(c.is_some(), "{d}");
    assert!(
        d.contains("min_reply_length is only checked with `require_reply HEX` (as keepalived does): ignored here"),
        "{d}"
    );
    let (c, d) = load(
        "virtual_server 10.0.0.1 53 {\n real_server 127.0.0.1 53 {\n  UDP_CHECK {\n   payload 0g1\n  }\n }\n}\n",
    );
    assert!(c.is_none(), "{d}");
    assert!(d.contains("even number of hex digits"), "{d}");
}

#[test]
fn unsupported_checkers_say_what_judges_the_real_server() {
    let (c, d) = load(
        "virtual_server 10.0.0.1 80 {\n real_server 127.0.0.1 80 {\n  BFD_CHECK {\n  }\n }\n real_server 127.0.0.2 80 {\n  BFD_CHECK {\n  }\n  TCP_CHECK {\n  }\n }\n}\n",
    );
    assert!(c.is_some(), "{d}");
    assert!(
        d.contains("BFD_CHECK is not supported yet, ignored: real_server 127.0.0.1 80: it has no other checker, so it is never taken out of the table"),
        "{d}"
    );
    assert!(
        d.contains("real_server 127.0.0.2 80: it is judged by its TCP_CHECK only"),
        "{d}"
    );
}

/// The real server `addr` in the status document (any virtual server).
fn rs<'a>(s: &'a Value, addr: &str) -> &'a Value {
    s["health"]["virtual_servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["real_servers"].as_array())
        .flatten()
        .find(|r| r["real_server"] == addr)
        .unwrap_or(&Value::Null)
}

#[test]
fn daemon_takes_a_dead_udp_service_out() {
    let (addr, stop, t) = echo_server(None);
    let conf = format!(
        "virtual_server 127.0.0.1 53 {{\n delay_loop 0.3\n lb_kind NAT\n protocol UDP\n real_server 127.0.0.1 {} {{\n  UDP_CHECK {{\n   connect_timeout 1\n   retry 0\n   warmup 0\n   payload 6869\n   require_reply 6869\n  }}\n }}\n real_server 127.0.0.2 53 {{\n  BFD_CHECK {{\n  }}\n }}\n}}\n",
        addr.port()
    );
    let d = Daemon::start(&conf, &[]);
    let name = format!("127.0.0.1:{}", addr.port());
    let doc = d.wait_status(15, |s| rs(s, &name)["state"] == "up");
    let r = rs(&doc, &name);
    assert_eq!(r["checks"][0]["kind"], "UDP_CHECK", "{r}");
    common::daemon::validate_status(&doc);
    stop.store(true, Ordering::SeqCst);
    t.join().expect("server thread");
    let doc = d.wait_status(15, |s| rs(s, &name)["state"] == "down");
    let text = rs(&doc, &name).to_string();
    assert!(text.contains("port unreachable"), "{text}");
    // The checker it cannot run is said at start, with its consequence.
    let log = d.stop();
    assert!(
        log.contains("BFD_CHECK is not supported yet, ignored: real_server 127.0.0.2 53: it has no other checker, so it is never taken out of the table"),
        "{log}"
    );
}

/// In a namespace of its own (root): 10.77.0.2 and fd77::2 are on one end
/// of a veth pair, answered by this namespace's kernel; removed, nothing
/// answers for them (the other end has no address).
fn ping_lab() -> bool {
    if !common::netns::enter_new_netns_or_skip("PING_CHECK in a network namespace") {
        return false;
    }
    common::netns::sh(
        "ip link add d0 type veth peer name d1 && ip link set d1 up && ip link set d0 up && \
         ip addr add 10.77.0.1/24 dev d0 && ip addr add 10.77.0.2/24 dev d0 && \
         ip -6 addr add fd77::1/64 dev d0 nodad && ip -6 addr add fd77::2/64 dev d0 nodad",
    );
    true
}

const V4: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 77, 0, 2));
const V6: std::net::IpAddr =
    std::net::IpAddr::V6(std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2));

#[tokio::test]
async fn ping_answers_until_the_address_is_removed() {
    use ipvsdir::check::ping::{self, SocketKind};
    if !ping_lab() {
        return;
    }
    // A new namespace allows no ping sockets ("1 0"): raw only, and the
    // probe falls back to it.
    let r = ping::probe_using(SocketKind::Ping, V4, None, T).await;
    assert!(r.local, "{r:?}");
    for ip in [V4, V6] {
        let r = ping::probe_using(SocketKind::Raw, ip, None, T).await;
        assert!(r.ok, "{ip} raw: {r:?}");
        assert_eq!(&*r.reason, "echo reply");
        let r = ping::probe(ip, None, T).await;
        assert!(r.ok, "{ip} auto: {r:?}");
    }
    common::netns::sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    for ip in [V4, V6] {
        let r = ping::probe_using(SocketKind::Ping, ip, None, T).await;
        assert!(r.ok, "{ip} ping socket: {r:?}");
        // From a bound source address too.
        let src = if ip.is_ipv4() {
            "10.77.0.1".parse().unwrap()
        } else {
            "fd77::1".parse().unwrap()
        };
        let r = ping::probe(ip, Some(src), T).await;
        assert!(r.ok, "{ip} from {src}: {r:?}");
    }
    common::netns::sh("ip addr del 10.77.0.2/24 dev d0 && ip -6 addr del fd77::2/64 dev d0");
    for ip in [V4, V6] {
        for kind in [SocketKind::Ping, SocketKind::Raw] {
            let r = ping::probe_using(kind, ip, None, T).await;
            assert!(!r.ok && !r.local, "{ip} {kind:?}: {r:?}");
            assert_eq!(&*r.reason, "no echo reply within 0.5 s");
        }
    }
}

#[test]
fn daemon_takes_an_unpingable_server_out() {
    if !ping_lab() {
        return;
    }
    // The daemon starts in this thread's namespace.
    let conf = "virtual_server 10.77.0.100 80 {\n delay_loop 0.3\n lb_kind NAT\n protocol TCP\n real_server 10.77.0.2 80 {\n  PING_CHECK {\n   connect_timeout 0.5\n   retry 0\n   warmup 0\n  }\n }\n}\nvirtual_server fd77::100 80 {\n delay_loop 0.3\n lb_kind NAT\n protocol TCP\n real_server fd77::2 80 {\n  PING_CHECK {\n   connect_timeout 0.5\n   retry 0\n   warmup 0\n  }\n }\n}\n";
    let d = Daemon::start(conf, &[]);
    let all = |s: &Value, state: &str| {
        ["10.77.0.2:80", "[fd77::2]:80"]
            .iter()
            .all(|n| rs(s, n)["state"] == state)
    };
    let doc = d.wait_status(15, |s| {
        all(s, "up") && rs(s, "10.77.0.2:80")["checks"][0]["last_reason"] == "echo reply"
    });
    assert_eq!(rs(&doc, "10.77.0.2:80")["checks"][0]["kind"], "PING_CHECK");
    common::daemon::validate_status(&doc);
    common::netns::sh("ip addr del 10.77.0.2/24 dev d0 && ip -6 addr del fd77::2/64 dev d0");
    let doc = d.wait_status(15, |s| all(s, "down"));
    let text = rs(&doc, "[fd77::2]:80").to_string();
    assert!(text.contains("no echo reply within 0.5 s"), "{text}");
    d.stop();
}

/// Debian's dnsmasq (scripts/netns-lab/setup installs it); a failure
/// under CI=true when missing, a skip otherwise.
fn dnsmasq_or_skip() -> Option<&'static str> {
    let path = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but dnsmasq is missing (scripts/netns-lab/setup installs it)"
        );
        eprintln!("SKIP: dnsmasq is not installed");
    }
    path
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq on 127.0.0.1:53 of this thread's namespace, answering only
/// from its `--address` rules (no upstream, no hosts file).
fn dnsmasq(bin: &str, rules: &[&str]) -> Child {
    let mut c = std::process::Command::new(bin);
    c.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--port=53",
        "--user=root",
        "--pid-file=",
    ]);
    for r in rules {
        c.arg(format!("--address={r}"));
    }
    Child(
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dnsmasq"),
    )
}

fn dns_check(qtype: &str, name: &str) -> Vec<u8> {
    ipvsdir::check::dns_message::encode_query(&ipvsdir::config::model::DnsCheck {
        qtype: qtype.into(),
        name: name.into(),
    })
    .expect("a query")
}

/// Probes until `ok` holds for the result (dnsmasq needs a moment to start).
async fn dns_until(
    query: &[u8],
    what: &str,
    ok: impl Fn(&ipvsdir::check::probe::ProbeResult) -> bool,
) -> ipvsdir::check::probe::ProbeResult {
    let addr: SocketAddr = "127.0.0.1:53".parse().expect("addr");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = ipvsdir::check::dns::probe(addr, None, T, query).await;
        if ok(&r) {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: last {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn dns_against_dnsmasq_answering_then_nxdomain_then_servfail_and_gone() {
    let Some(bin) = dnsmasq_or_skip() else { return };
    if !common::netns::enter_new_netns_or_skip("DNS_CHECK against dnsmasq in a namespace") {
        return;
    }
    let up = dns_check("A", "up.test");
    let server = dnsmasq(bin, &["/up.test/10.1.2.3"]);
    let r = dns_until(&up, "dnsmasq answering", |r| r.ok).await;
    assert_eq!(&*r.reason, "NOERROR");
    // A name it has no rule for: no upstream, so REFUSED.
    let r = dns_until(&dns_check("SOA", "other.test"), "REFUSED", |r| !r.ok).await;
    assert_eq!(&*r.reason, "DNS error REFUSED (rcode 5)");
    drop(server);
    // The same name now does not exist.
    let server = dnsmasq(bin, &["/up.test/"]);
    let r = dns_until(&up, "NXDOMAIN", |r| r.reason.contains("rcode")).await;
    assert!(!r.ok && !r.local, "{r:?}");
    assert_eq!(&*r.reason, "DNS error NXDOMAIN (rcode 3)");
    drop(server);
    // No server at all: the kernel's port unreachable.
    let r = dns_until(&up, "port unreachable", |r| {
        r.reason.contains("unreachable")
    })
    .await;
    assert!(!r.ok && !r.local, "{r:?}");
    // A server that answers SERVFAIL after a stray datagram with another
    // ID (skipped), then one that never answers: the timeout.
    let failing = std::net::UdpSocket::bind("127.0.0.1:53").expect("bind :53");
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        if let Ok((n, from)) = failing.recv_from(&mut buf) {
            let mut stray = buf[..n].to_vec();
            stray[0] ^= 0xff;
            stray[2] |= 0x80;
            let _ = failing.send_to(&stray, from);
            let _ = failing.send_to(&[1, 2, 3], from);
            buf[2] |= 0x80;
            buf[3] = (buf[3] & 0xf0) | 2;
            let _ = failing.send_to(&buf[..n], from);
        }
    });
    let r = ipvsdir::check::dns::probe("127.0.0.1:53".parse().expect("addr"), None, T, &up).await;
    assert!(!r.ok && !r.local, "{r:?}");
    assert_eq!(&*r.reason, "DNS error SERVFAIL (rcode 2)");
    t.join().expect("server thread");
    let silent = std::net::UdpSocket::bind("127.0.0.1:53").expect("bind :53");
    let r = ipvsdir::check::dns::probe("127.0.0.1:53".parse().expect("addr"), None, T, &up).await;
    assert!(!r.ok && !r.local, "{r:?}");
    assert_eq!(&*r.reason, "no DNS response within 0.5 s");
    drop(silent);
}

#[test]
fn dns_check_config_defaults_as_keepalived() {
    let c = config(
        "virtual_server 10.0.0.1 53 {\n protocol UDP\n real_server 127.0.0.1 53 {\n  DNS_CHECK {\n  }\n  DNS_CHECK {\n   type aaaa\n   name www.example.com\n   retry 1\n  }\n }\n}\n",
    );
    let rs = &c.virtual_servers[0].real_servers[0];
    let CheckKind::Dns(d) = &rs.checkers[0].kind else {
        panic!("{rs:?}")
    };
    assert_eq!((d.qtype.as_str(), d.name.as_str()), ("SOA", "."));
    assert_eq!(
        rs.checkers[0].common.retry, 3,
        "keepalived's DNS_CHECK retry"
    );
    let CheckKind::Dns(d) = &rs.checkers[1].kind else {
        panic!("{rs:?}")
    };
    assert_eq!(
        (d.qtype.as_str(), d.name.as_str()),
        ("AAAA", "www.example.com")
    );
    assert_eq!(rs.checkers[1].common.retry, 1);
    let (c, d) = load(
        "virtual_server 10.0.0.1 53 {\n real_server 127.0.0.1 53 {\n  DNS_CHECK {\n   type SRV\n  }\n }\n}\n",
    );
    assert!(c.is_some(), "{d}");
    assert!(
        d.contains("unknown DNS_CHECK type 'SRV': SOA is queried"),
        "{d}"
    );
}

#[test]
fn daemon_dns_check_follows_dnsmasq() {
    let Some(bin) = dnsmasq_or_skip() else { return };
    if !common::netns::enter_new_netns_or_skip("DNS_CHECK daemon test in a namespace") {
        return;
    }
    let server = dnsmasq(bin, &["/up.test/10.1.2.3"]);
    let conf = "virtual_server 127.0.0.1 53 {\n delay_loop 0.3\n lb_kind NAT\n protocol UDP\n real_server 127.0.0.1 53 {\n  DNS_CHECK {\n   type A\n   name up.test\n   connect_timeout 1\n   retry 0\n   warmup 0\n  }\n }\n}\n";
    let d = Daemon::start(conf, &[]);
    let doc = d.wait_status(15, |s| {
        rs(s, "127.0.0.1:53")["checks"][0]["last_reason"] == "NOERROR"
    });
    assert_eq!(rs(&doc, "127.0.0.1:53")["checks"][0]["kind"], "DNS_CHECK");
    common::daemon::validate_status(&doc);
    drop(server);
    let _server = dnsmasq(bin, &["/up.test/"]);
    let doc = d.wait_status(15, |s| {
        rs(s, "127.0.0.1:53")["state"] == "down"
            && rs(s, "127.0.0.1:53")["checks"][0]["last_reason"] == "DNS error NXDOMAIN (rcode 3)"
    });
    drop(doc);
    d.stop();
}

/// Debian's aiosmtpd (python3-aiosmtpd; scripts/netns-lab/setup installs
/// it); a failure under CI=true when missing, a skip otherwise.
fn aiosmtpd_or_skip() -> Option<&'static str> {
    let path = ["/usr/bin/aiosmtpd", "/usr/local/bin/aiosmtpd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but aiosmtpd is missing (scripts/netns-lab/setup installs python3-aiosmtpd)"
        );
        eprintln!("SKIP: aiosmtpd is not installed");
    }
    path
}

/// aiosmtpd on 127.0.0.1:`port`, once it accepts connections.
fn aiosmtpd(bin: &str, port: u16) -> Child {
    let child = Child(
        std::process::Command::new(bin)
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "aiosmtpd did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn smtp_target(port: u16) -> ipvsdir::check::smtp::Target {
    ipvsdir::check::smtp::Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        bind: None,
        timeout: T,
    }
}

/// A one-connection SMTP server that says `script`'s lines in turn, each
/// after reading a line from the client (the first at once).
fn scripted_smtp(script: &'static [&'static [u8]]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{BufRead, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        let mut heard = Vec::new();
        let Ok((s, _)) = l.accept() else {
            return heard;
        };
        let mut r = std::io::BufReader::new(s.try_clone().expect("clone"));
        let mut w = s;
        for (i, line) in script.iter().enumerate() {
            if i > 0 && r.read_until(b'\n', &mut heard).unwrap_or(0) == 0 {
                break;
            }
            if w.write_all(line).is_err() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(700));
        heard
    });
    (port, t)
}

#[tokio::test]
async fn smtp_against_aiosmtpd_then_gone() {
    use ipvsdir::check::smtp;
    let Some(bin) = aiosmtpd_or_skip() else {
        return;
    };
    let port = common::daemon::free_port();
    let server = aiosmtpd(bin, port);
    let r = smtp::probe(&[smtp_target(port)], "director.example").await;
    assert!(r.ok, "{r:?}");
    assert_eq!(&*r.reason, "HELO accepted");
    // host { } blocks: each in turn, the first failing one named.
    let dead = common::daemon::free_port();
    let r = smtp::probe(&[smtp_target(port), smtp_target(dead)], "x").await;
    assert!(!r.ok && !r.local, "{r:?}");
    assert_eq!(
        &*r.reason,
        format!("host 127.0.0.1:{dead}: connection refused")
    );
    drop(server);
    let r = smtp::probe(&[smtp_target(port)], "x").await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(&*r.reason, "connection refused");
}

#[tokio::test]
async fn smtp_bad_and_hostile_servers() {
    use ipvsdir::check::smtp;
    // The HELO line is what the server hears.
    let (port, t) = scripted_smtp(&[b"220-hello\r\n220 there\r\n", b"250 ok\r\n", b"221 bye\r\n"]);
    let r = smtp::probe(&[smtp_target(port)], "lb1.example").await;
    assert!(r.ok, "{r:?}");
    let heard = String::from_utf8(t.join().expect("server")).expect("text");
    assert_eq!(heard, "HELO lb1.example\r\nQUIT\r\n");

    let (port, t) = scripted_smtp(&[b"554 \x1b[31mgo away\r\n"]);
    let r = smtp::probe(&[smtp_target(port)], "x").await;
    assert_eq!(&*r.reason, "bad greeting banner: '554 ?[31mgo away'");
    t.join().expect("server");

    let (port, t) = scripted_smtp(&[b"220 hi\r\n", b"501 who are you\r\n"]);
    let r = smtp::probe(&[smtp_target(port)], "x").await;
    assert_eq!(&*r.reason, "bad HELO response: '501 who are you'");
    t.join().expect("server");

    // No newline, ever: cut off, not buffered without end.
    static JUNK: [u8; 8192] = [b'2'; 8192];
    static JUNK_SCRIPT: [&[u8]; 1] = [&JUNK];
    let (port, t) = scripted_smtp(&JUNK_SCRIPT);
    let r = smtp::probe(&[smtp_target(port)], "x").await;
    assert_eq!(&*r.reason, "greeting: reply longer than 4096 bytes");
    t.join().expect("server");

    // Silent after connecting: the step's timeout.
    let (port, t) = scripted_smtp(&[b""]);
    let r = smtp::probe(&[smtp_target(port)], "x").await;
    assert_eq!(&*r.reason, "greeting: timed out after 0.5 s");
    t.join().expect("server");
}

#[test]
fn smtp_check_config_with_hosts() {
    let c = config(
        "virtual_server 10.0.0.1 25 {\n real_server 127.0.0.1 25 {\n  SMTP_CHECK {\n   connect_timeout 2\n  }\n  SMTP_CHECK {\n   helo_name lb1.example\n   connect_timeout 3\n   host {\n    connect_ip 127.0.0.2\n   }\n   host {\n    connect_ip 127.0.0.3\n    connect_port 2525\n    bindto 127.0.0.1\n    connect_timeout 1\n   }\n  }\n }\n}\n",
    );
    let rs = &c.virtual_servers[0].real_servers[0];
    let CheckKind::Smtp(s) = &rs.checkers[0].kind else {
        panic!("{rs:?}")
    };
    assert_eq!(s.helo_name, "smtpchecker.keepalived.org");
    assert!(s.hosts.is_empty());
    let CheckKind::Smtp(s) = &rs.checkers[1].kind else {
        panic!("{rs:?}")
    };
    assert_eq!(s.helo_name, "lb1.example");
    let h: Vec<_> = s
        .hosts
        .iter()
        .map(|h| {
            (
                h.connect_ip.to_string(),
                h.connect_port,
                h.bindto.map(|b| b.to_string()),
                h.connect_timeout.0.as_secs(),
            )
        })
        .collect();
    assert_eq!(
        h,
        [
            ("127.0.0.2".to_string(), 25, None, 3),
            (
                "127.0.0.3".to_string(),
                2525,
                Some("127.0.0.1".to_string()),
                1
            ),
        ]
    );
}

#[test]
fn daemon_smtp_check_follows_aiosmtpd() {
    let Some(bin) = aiosmtpd_or_skip() else {
        return;
    };
    let port = common::daemon::free_port();
    let server = aiosmtpd(bin, port);
    let conf = format!(
        "virtual_server 127.0.0.1 25 {{\n delay_loop 0.3\n lb_kind NAT\n protocol TCP\n real_server 127.0.0.1 {port} {{\n  SMTP_CHECK {{\n   helo_name lb1.example\n   connect_timeout 1\n   retry 0\n   warmup 0\n  }}\n }}\n}}\n"
    );
    let d = Daemon::start(&conf, &[]);
    let name = format!("127.0.0.1:{port}");
    let doc = d.wait_status(15, |s| {
        rs(s, &name)["checks"][0]["last_reason"] == "HELO accepted"
    });
    assert_eq!(rs(&doc, &name)["checks"][0]["kind"], "SMTP_CHECK");
    common::daemon::validate_status(&doc);
    drop(server);
    let doc = d.wait_status(15, |s| rs(s, &name)["state"] == "down");
    let text = rs(&doc, &name).to_string();
    assert!(text.contains("connection refused"), "{text}");
    d.stop();
}
