//! The VRRP driver's rtnetlink layer against the real kernel. Each test
//! runs in a fresh network namespace on its own thread, with veth pairs
//! (the build host's kernel has no dummy driver). The oracle is `ip`; for
//! the IFA_PROTO mark, which iproute2 6.1 does not print, an independent
//! raw netlink dump in python3.

mod common;

use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use common::netns::{enter_new_netns_or_skip, sh};
use ipvsdir::config::model::{RouteType, Scope, VirtualAddress, VirtualRoute};
use ipvsdir::vrrp::rtnl::{Change, LinkEvent, LinkWatch, Rtnl, RtnlError, vmac_address};

/// Upper bound on any one test.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on waiting for one link event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `f` on a current-thread runtime, so every socket stays in this
/// thread's namespace.
fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, f)
                .await
                .expect("test took too long")
        })
}

fn ifindex(name: &str) -> u32 {
    let out = sh(&format!("ip -o link show dev {name}"));
    out.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no index in {out:?}"))
}

/// veth0 <-> veth1, both up, 10.0.0.1/24 and 2001:db8::1/64 on veth0;
/// returns veth0's index.
fn veth_lab() -> u32 {
    sh("ip link add veth0 type veth peer name veth1 \
        && ip link set veth1 up && ip link set veth0 up \
        && ip addr add 10.0.0.1/24 dev veth0 \
        && ip -6 addr add 2001:db8::1/64 dev veth0 nodad");
    ifindex("veth0")
}

fn vip(addr: &str, prefix_len: u8) -> VirtualAddress {
    VirtualAddress {
        addr: addr.parse().expect("test address"),
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
    }
}

fn route(dest: &str, prefix_len: u8) -> VirtualRoute {
    VirtualRoute {
        route_type: RouteType::Unicast,
        dest: dest.parse().expect("test address"),
        prefix_len,
        src: None,
        via: Vec::new(),
        dev: None,
        scope: None,
        table: None,
        metric: None,
        no_track: false,
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter()
        .map(|s| s.parse().expect("test address"))
        .collect()
}

/// The `ip -o addr show dev DEV` line of `addr/prefix`, if any.
fn addr_line(dev: &str, addr_prefix: &str) -> Option<String> {
    sh(&format!("ip -o addr show dev {dev}"))
        .lines()
        .find(|l| l.contains(&format!(" {addr_prefix} ")))
        .map(str::to_string)
}

/// IFA_PROTO of every address, from a raw RTM_GETADDR dump that shares no
/// code with ipvsdir: `index address/prefix proto N|None` per line.
const PROTO_DUMP: &str = r#"
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
s.send(struct.pack('=IHHII', 24, 22, 0x301, 1, 0) + struct.pack('=BBBBI', 0, 0, 0, 0, 0))
done = False
while not done:
    data = s.recv(65536)
    off = 0
    while off + 16 <= len(data):
        ln, typ = struct.unpack_from('=IH', data, off)
        if typ in (2, 3):
            done = True
            break
        if typ == 20:
            fam, plen, _, _, idx = struct.unpack_from('=BBBBI', data, off + 16)
            a, addr, proto = off + 24, None, None
            while a + 4 <= off + ln:
                alen, atype = struct.unpack_from('=HH', data, a)
                if alen < 4:
                    break
                val = data[a + 4:a + alen]
                if atype == 2 or (atype == 1 and addr is None):
                    addr = socket.inet_ntop(socket.AF_INET if fam == 2 else socket.AF_INET6, val)
                if atype == 11:
                    proto = val[0]
                a += (alen + 3) & ~3
            print(idx, '%s/%d' % (addr, plen), 'proto', proto)
        off += (ln + 3) & ~3
"#;

/// The IFA_PROTO the kernel holds for `addr/prefix`; None when python3 is
/// missing (said on stderr) and the check cannot be made.
fn kernel_addr_proto(addr_prefix: &str) -> Option<Option<u8>> {
    let out = match Command::new("python3").arg("-c").arg(PROTO_DUMP).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => {
            eprintln!("NOTE: cannot dump IFA_PROTO with python3 ({other:?}); proto check skipped");
            return None;
        }
    };
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(addr_prefix))
        .unwrap_or_else(|| panic!("{addr_prefix} not in the raw dump:\n{out}"));
    Some(line.rsplit(' ').next().and_then(|p| p.parse().ok()))
}

async fn next_matching(
    watch: &mut LinkWatch,
    what: &str,
    pred: impl Fn(&LinkEvent) -> bool,
) -> LinkEvent {
    tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            let ev = watch.next().await.expect("link watch ended");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no link event {what} within {EVENT_TIMEOUT:?}"))
}

#[test]
fn links_by_name_and_index_with_carrier() {
    if !enter_new_netns_or_skip("vrrp_rtnl links") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let link = rtnl.link_by_name("veth0").await.expect("veth0");
        assert_eq!(link.index, index);
        assert_eq!(link.name, "veth0");
        assert_eq!(link.mtu, 1500);
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert!(link.up, "{link:?}");
        let mac = link.mac.expect("veth has a MAC");
        let mac_text: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert!(sh("ip -o link show dev veth0").contains(&mac_text.join(":")));
        assert_eq!(rtnl.link_by_index(index).await.expect("by index"), link);

        // Admin up but no carrier (the peer is down): not up, as keepalived judges it.
        sh("ip link set veth1 down");
        assert!(sh("ip -o link show dev veth0").contains("NO-CARRIER"));
        assert!(!rtnl.link_by_name("veth0").await.expect("veth0").up);
        sh("ip link set veth1 up");
        assert!(rtnl.link_by_name("veth0").await.expect("veth0").up);
        rtnl.set_link_up(index, false).await.expect("set down");
        assert!(!sh("ip -o link show dev veth0").contains(",UP"));
        assert!(!rtnl.link_by_name("veth0").await.expect("veth0").up);
        rtnl.set_link_up(index, true).await.expect("set up");
        assert!(sh("ip -o link show dev veth0").contains(",UP"));

        let mut names: Vec<String> = rtnl
            .links()
            .await
            .expect("dump")
            .into_iter()
            .map(|l| l.name)
            .collect();
        names.sort();
        assert_eq!(names, ["lo", "veth0", "veth1"]);
    });
}

#[test]
fn missing_interfaces_and_bad_lines_read_well() {
    if !enter_new_netns_or_skip("vrrp_rtnl errors") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let err = rtnl.link_by_name("nope0").await.expect_err("no such link");
        assert!(matches!(err, RtnlError::NoSuchInterface { .. }), "{err:?}");
        assert!(
            err.to_string().contains("interface nope0 does not exist"),
            "{err}"
        );

        let err = rtnl.link_by_index(9999).await.expect_err("no such index");
        assert!(
            err.to_string()
                .contains("interface index 9999 does not exist"),
            "{err}"
        );

        let mut v = vip("192.0.2.1", 32);
        v.dev = Some("nope0".into());
        let err = rtnl.add_vip_on(&v, "veth0").await.expect_err("no such dev");
        assert!(
            err.to_string().contains("interface nope0 does not exist"),
            "{err}"
        );

        let err = rtnl
            .add_vip(9999, &vip("192.0.2.1", 32))
            .await
            .expect_err("no such index");
        let text = err.to_string();
        assert!(
            text.starts_with("add VIP 192.0.2.1/32 on index 9999"),
            "{text}"
        );
        assert!(text.contains("does not exist"), "{text}");

        let err = rtnl
            .add_vip(index, &vip("192.0.2.1", 33))
            .await
            .expect_err("bad prefix");
        assert!(
            err.to_string()
                .contains("prefix length /33 is more than 32"),
            "{err}"
        );

        let err = rtnl
            .link_by_name("much-too-long-name")
            .await
            .expect_err("bad name");
        assert!(err.to_string().contains("longer than 15 bytes"), "{err}");

        let mut r = route("10.9.0.0", 16);
        r.dev = Some("nope0".into());
        let err = rtnl.add_route(index, &r).await.expect_err("no such dev");
        let text = err.to_string();
        assert!(
            text.starts_with("add route 10.9.0.0/16 dev nope0"),
            "{text}"
        );
        assert!(text.contains("interface nope0 does not exist"), "{text}");

        // The kernel's own words (extended ACK) come through.
        let mut r = route("10.9.0.0", 16);
        r.via = ips(&["10.99.0.1"]);
        let err = rtnl
            .add_route(index, &r)
            .await
            .expect_err("unreachable gateway");
        assert_eq!(err.errno(), Some(libc::ENETUNREACH), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("kernel: Nexthop has invalid gateway"),
            "{text}"
        );
        assert!(text.contains("name the interface with `dev`"), "{text}");
    });
}

#[test]
fn without_cap_net_admin_the_error_says_so() {
    if !enter_new_netns_or_skip("vrrp_rtnl EPERM") {
        return;
    }
    let index = veth_lab();
    drop_effective_cap_net_admin();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        // Reading needs no privilege; changing does.
        assert!(rtnl.link_by_name("veth0").await.is_ok());
        let err = rtnl
            .add_vip(index, &vip("192.0.2.1", 32))
            .await
            .expect_err("EPERM");
        assert!(matches!(err, RtnlError::PermissionDenied { .. }), "{err:?}");
        assert!(err.to_string().contains("needs CAP_NET_ADMIN"), "{err}");
    });
}

/// Clears CAP_NET_ADMIN from this thread's effective set (capabilities
/// are per thread, and each test has its own).
fn drop_effective_cap_net_admin() {
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
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data structs, as the
    // ABI requires; they only read/write these buffers.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn vip_with_the_whole_line_idempotent() {
    if !enter_new_netns_or_skip("vrrp_rtnl vip") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let mut v = vip("192.0.2.10", 24);
        v.broadcast = Some("192.0.2.255".parse().expect("ip"));
        v.scope = Some(Scope::Link);
        v.label = Some("veth0:vip".into());
        v.noprefixroute = true;
        v.preferred_lft = Some(0);
        assert_eq!(rtnl.add_vip(index, &v).await.expect("add"), Change::Done);
        let line = addr_line("veth0", "192.0.2.10/24").expect("VIP is on veth0");
        for part in [
            "brd 192.0.2.255",
            "scope link",
            "deprecated",
            "noprefixroute",
            "veth0:vip",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
        // noprefixroute: no connected route for the VIP's subnet.
        assert!(!sh("ip route show table all").contains("192.0.2.0/24"));
        if let Some(proto) = kernel_addr_proto("192.0.2.10/24") {
            assert_eq!(proto, Some(18));
        }
        assert!(rtnl.has_vip(index, &v).await.expect("has"));
        let ours = rtnl.list_protocol_addrs().await.expect("list");
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(
            (ours[0].addr, ours[0].prefix_len, ours[0].index),
            (v.addr, 24, index)
        );
        assert_eq!(ours[0].label.as_deref(), Some("veth0:vip"));

        assert_eq!(
            rtnl.add_vip(index, &v).await.expect("re-add"),
            Change::AlreadyPresent
        );
        assert_eq!(rtnl.del_vip(index, &v).await.expect("del"), Change::Done);
        assert_eq!(addr_line("veth0", "192.0.2.10/24"), None);
        assert!(!rtnl.has_vip(index, &v).await.expect("has"));
        assert_eq!(
            rtnl.del_vip(index, &v).await.expect("re-del"),
            Change::Absent
        );
        // The interface's own address is untouched.
        assert!(addr_line("veth0", "10.0.0.1/24").is_some());
    });
}

#[test]
fn vip_peer_ipv6_and_dev_by_name() {
    if !enter_new_netns_or_skip("vrrp_rtnl vip6") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let mut p = vip("10.1.1.1", 32);
        p.peer = Some("10.1.1.2".parse().expect("ip"));
        assert_eq!(rtnl.add_vip(index, &p).await.expect("add"), Change::Done);
        assert!(
            addr_line("veth0", "10.1.1.1")
                .expect("peer VIP")
                .contains("peer 10.1.1.2/32")
        );
        assert_eq!(rtnl.del_vip(index, &p).await.expect("del"), Change::Done);
        assert!(!sh("ip -o addr show dev veth0").contains("10.1.1.1"));

        let mut v6 = vip("2001:db8::10", 64);
        v6.nodad = true;
        v6.home = true;
        v6.preferred_lft = Some(0);
        v6.dev = Some("veth0".into());
        assert_eq!(
            rtnl.add_vip_on(&v6, "lo").await.expect("add on dev"),
            Change::Done
        );
        let line = addr_line("veth0", "2001:db8::10/64").expect("IPv6 VIP is on veth0");
        for part in ["nodad", "home", "deprecated"] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
        if let Some(proto) = kernel_addr_proto("2001:db8::10/64") {
            assert_eq!(proto, Some(18));
        }
        assert_eq!(
            rtnl.add_vip_on(&v6, "lo").await.expect("re-add"),
            Change::AlreadyPresent
        );
        assert_eq!(rtnl.del_vip_on(&v6, "lo").await.expect("del"), Change::Done);
        assert_eq!(addr_line("veth0", "2001:db8::10/64"), None);
        assert_eq!(
            rtnl.del_vip_on(&v6, "lo").await.expect("re-del"),
            Change::Absent
        );

        // No dev on the line: the default device is used.
        let v = vip("192.0.2.20", 32);
        assert_eq!(
            rtnl.add_vip_on(&v, "veth0").await.expect("add"),
            Change::Done
        );
        assert!(addr_line("veth0", "192.0.2.20/32").is_some());
    });
}

#[test]
fn stale_protocol_vips_are_found_and_removed() {
    if !enter_new_netns_or_skip("vrrp_rtnl stale") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        // "An earlier run": two marked VIPs; the operator's address is not marked.
        rtnl.add_vip(index, &vip("192.0.2.30", 32))
            .await
            .expect("add");
        rtnl.add_vip(index, &vip("2001:db8::30", 128))
            .await
            .expect("add");
        sh("ip addr add 192.0.2.40/32 dev veth0");
        let stale = rtnl.list_protocol_addrs().await.expect("list");
        let mut found: Vec<String> = stale
            .iter()
            .map(|e| format!("{}/{}", e.addr, e.prefix_len))
            .collect();
        found.sort();
        assert_eq!(found, ["192.0.2.30/32", "2001:db8::30/128"]);
        for e in &stale {
            assert!(e.is_ours());
            assert_eq!(rtnl.del_addr(e).await.expect("remove"), Change::Done);
            assert_eq!(
                rtnl.del_addr(e).await.expect("remove again"),
                Change::Absent
            );
        }
        let left = sh("ip -o addr show dev veth0");
        assert!(
            !left.contains("192.0.2.30") && !left.contains("2001:db8::30"),
            "{left}"
        );
        assert!(left.contains("192.0.2.40/32"), "{left}");
        assert!(rtnl.list_protocol_addrs().await.expect("list").is_empty());
    });
}

#[test]
fn advert_source_addresses() {
    if !enter_new_netns_or_skip("vrrp_rtnl sources") {
        return;
    }
    sh(
        "ip link add veth0 type veth peer name veth1 && ip link set veth1 up && ip link set veth0 up",
    );
    let index = ifindex("veth0");
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        assert_eq!(rtnl.primary_ipv4(index).await.expect("v4"), None);
        // A VIP of ours comes first, then the interface's own addresses.
        rtnl.add_vip(index, &vip("192.0.2.50", 32))
            .await
            .expect("add");
        sh("ip addr add 10.0.0.1/24 dev veth0 && ip addr add 10.0.0.2/24 dev veth0");
        assert_eq!(
            rtnl.primary_ipv4(index).await.expect("v4"),
            Some("10.0.0.1".parse().expect("ip"))
        );

        // The kernel adds the link-local address when the link comes up.
        let mut ll = None;
        for _ in 0..50 {
            ll = rtnl.link_local_ipv6(index).await.expect("v6");
            if ll.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ll = ll.expect("veth0 has a link-local address");
        let shown = sh("ip -6 -o addr show dev veth0 scope link");
        assert!(shown.contains(&format!("{ll}/64")), "{ll} not in {shown}");
    });
}

#[test]
fn routes_unicast_table_metric_src_idempotent() {
    if !enter_new_netns_or_skip("vrrp_rtnl routes") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let mut r = route("10.1.0.0", 16);
        r.via = ips(&["10.0.0.2"]);
        r.src = Some("10.0.0.1".parse().expect("ip"));
        r.table = Some(1000);
        r.metric = Some(7);
        assert_eq!(rtnl.add_route(index, &r).await.expect("add"), Change::Done);
        let shown = sh("ip route show table 1000");
        assert!(
            shown.contains(
                "10.1.0.0/16 via 10.0.0.2 dev veth0 proto keepalived src 10.0.0.1 metric 7"
            ),
            "{shown}"
        );
        assert_eq!(
            rtnl.add_route(index, &r).await.expect("re-add"),
            Change::AlreadyPresent
        );
        assert_eq!(rtnl.del_route(index, &r).await.expect("del"), Change::Done);
        assert!(!sh("ip route show table all").contains("10.1.0.0/16"));
        assert_eq!(
            rtnl.del_route(index, &r).await.expect("re-del"),
            Change::Absent
        );

        // Neither dev nor via: out of the default interface, scope link.
        let mut r = route("10.3.0.0", 24);
        r.table = Some(100);
        assert_eq!(rtnl.add_route(index, &r).await.expect("add"), Change::Done);
        let shown = sh("ip route show table 100");
        assert!(
            shown.contains("10.3.0.0/24 dev veth0 proto keepalived scope link"),
            "{shown}"
        );
        assert_eq!(rtnl.del_route(index, &r).await.expect("del"), Change::Done);

        // An operator's route with the same prefix is not ours to delete.
        sh("ip route add 10.4.0.0/24 via 10.0.0.2");
        assert_eq!(
            rtnl.del_route(index, &route("10.4.0.0", 24))
                .await
                .expect("del"),
            Change::Absent
        );
        assert!(sh("ip route show").contains("10.4.0.0/24 via 10.0.0.2"));
    });
}

#[test]
fn routes_blackhole_kinds_and_multipath() {
    if !enter_new_netns_or_skip("vrrp_rtnl route kinds") {
        return;
    }
    let index = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let kinds = [
            (
                RouteType::Blackhole,
                "10.66.0.0",
                16,
                "blackhole 10.66.0.0/16 proto keepalived",
            ),
            (
                RouteType::Unreachable,
                "2001:db8:77::",
                48,
                "unreachable 2001:db8:77::/48 dev lo proto keepalived",
            ),
            (
                RouteType::Prohibit,
                "10.67.0.0",
                16,
                "prohibit 10.67.0.0/16 proto keepalived",
            ),
            (
                RouteType::Throw,
                "10.68.0.0",
                16,
                "throw 10.68.0.0/16 proto keepalived",
            ),
        ];
        for (kind, dest, prefix, expect) in kinds {
            let mut r = route(dest, prefix);
            r.route_type = kind;
            assert_eq!(
                rtnl.add_route(index, &r).await.expect("add"),
                Change::Done,
                "{expect}"
            );
            let shown = sh("ip route show table all; ip -6 route show table all");
            assert!(shown.contains(expect), "{expect} not in\n{shown}");
            assert_eq!(
                rtnl.add_route(index, &r).await.expect("re-add"),
                Change::AlreadyPresent
            );
            assert_eq!(rtnl.del_route(index, &r).await.expect("del"), Change::Done);
            assert!(!sh("ip route show table all; ip -6 route show table all").contains(expect));
        }

        let mut r = route("10.2.0.0", 24);
        r.via = ips(&["10.0.0.2", "10.0.0.3"]);
        assert_eq!(rtnl.add_route(index, &r).await.expect("add"), Change::Done);
        let shown = sh("ip route show");
        for part in [
            "10.2.0.0/24 proto keepalived",
            "nexthop via 10.0.0.2 dev veth0 weight 1",
            "nexthop via 10.0.0.3 dev veth0 weight 1",
        ] {
            assert!(shown.contains(part), "{part} not in\n{shown}");
        }
        assert_eq!(
            rtnl.add_route(index, &r).await.expect("re-add"),
            Change::AlreadyPresent
        );
        assert_eq!(rtnl.del_route(index, &r).await.expect("del"), Change::Done);
        assert!(!sh("ip route show").contains("10.2.0.0/24"));

        let mut r = route("2001:db8:2::", 64);
        r.via = ips(&["2001:db8::2", "2001:db8::3"]);
        r.metric = Some(50);
        assert_eq!(rtnl.add_route(index, &r).await.expect("add"), Change::Done);
        let shown = sh("ip -6 route show");
        for part in [
            "2001:db8:2::/64 proto keepalived metric 50",
            "nexthop via 2001:db8::2 dev veth0 weight 1",
            "nexthop via 2001:db8::3 dev veth0 weight 1",
        ] {
            assert!(shown.contains(part), "{part} not in\n{shown}");
        }
        assert_eq!(rtnl.del_route(index, &r).await.expect("del"), Change::Done);
        assert!(!sh("ip -6 route show").contains("2001:db8:2::/64"));
        assert_eq!(
            rtnl.del_route(index, &r).await.expect("re-del"),
            Change::Absent
        );
    });
}

#[test]
fn link_events_follow_up_down_and_removal() {
    if !enter_new_netns_or_skip("vrrp_rtnl events") {
        return;
    }
    let index = veth_lab();
    run(async {
        let mut watch = LinkWatch::open().expect("subscribe");
        sh("ip link set veth0 down");
        let ev = next_matching(&mut watch, "veth0 down", |e| e.name == "veth0" && !e.up).await;
        assert_eq!(ev.index, index);
        assert!(!ev.removed);
        sh("ip link set veth0 up");
        next_matching(&mut watch, "veth0 up", |e| e.name == "veth0" && e.up).await;
        // Carrier loss (the peer goes down) is a down too.
        sh("ip link set veth1 down");
        next_matching(&mut watch, "veth0 no carrier", |e| {
            e.name == "veth0" && !e.up
        })
        .await;
        sh("ip link set veth1 up");
        next_matching(&mut watch, "veth0 carrier back", |e| {
            e.name == "veth0" && e.up
        })
        .await;
        sh("ip link add veth2 type veth peer name veth3");
        next_matching(&mut watch, "veth2 appears", |e| {
            e.name == "veth2" && !e.up && !e.removed
        })
        .await;
        sh("ip link del veth0");
        let ev = next_matching(&mut watch, "veth0 removed", |e| {
            e.index == index && e.removed
        })
        .await;
        assert!(!ev.up);
        assert_eq!(watch.resyncs(), 0);
    });
}

#[test]
fn link_events_survive_an_overrun() {
    if !enter_new_netns_or_skip("vrrp_rtnl overrun") {
        return;
    }
    let index = veth_lab();
    run(async {
        let mut watch = LinkWatch::open().expect("subscribe");
        sh("ip link set veth0 down");
        next_matching(&mut watch, "veth0 down", |e| e.index == index && !e.up).await;
        // Let the late carrier notifications (veth1) come and go, so the
        // burst below starts on an empty queue.
        while tokio::time::timeout(Duration::from_millis(1500), watch.next())
            .await
            .is_ok()
        {}
        // The smallest buffer the kernel allows, then a burst nobody reads:
        // renames between vetha and veth0, ending as vethz. What stays
        // queued is the burst's start; the end is lost. Replaying the queue
        // after re-reading the links would end on a stale name.
        watch.set_receive_buffer(0).expect("rcvbuf");
        sh(
            "for i in $(seq 100); do ip link set veth0 name vetha; ip link set vetha name veth0; done; \
            ip link set veth0 name vethz",
        );
        // Read until quiet; the last word on the link must be the truth.
        let mut last = ("veth0".to_string(), false);
        while let Ok(ev) = tokio::time::timeout(Duration::from_secs(1), watch.next()).await {
            let ev = ev.expect("link watch ended");
            if ev.index == index {
                last = (ev.name, ev.up);
            }
        }
        assert!(
            watch.resyncs() >= 1,
            "no overrun happened; the test proves nothing"
        );
        assert_eq!(last, ("vethz".to_string(), false));
        // And events flow again afterwards.
        sh("ip link set vethz up");
        next_matching(&mut watch, "vethz up after the overrun", |e| {
            e.index == index && e.up
        })
        .await;
    });
}

#[test]
fn vmac_macvlan_create_reuse_delete() {
    if !enter_new_netns_or_skip("vrrp_rtnl vmac") {
        return;
    }
    let parent = veth_lab();
    run(async {
        let rtnl = Rtnl::open().await.expect("open");
        let mac = vmac_address(51, false);
        let index = rtnl
            .create_macvlan(parent, "vrrp.51", mac)
            .await
            .expect("create");
        let shown = sh("ip -d link show vrrp.51");
        for part in [
            "vrrp.51@veth0",
            "link/ether 00:00:5e:00:01:33",
            "macvlan mode private",
            ",UP",
        ] {
            assert!(shown.contains(part), "{part} not in\n{shown}");
        }
        assert_eq!(ifindex("vrrp.51"), index);
        let link = rtnl.link_by_index(index).await.expect("vmac");
        assert_eq!(
            (link.mac, link.parent, link.kind.as_deref()),
            (Some(mac), Some(parent), Some("macvlan"))
        );
        assert!(link.up, "{link:?}");

        // Left over by an earlier run (and down): reused and brought up.
        sh("ip link set vrrp.51 down");
        assert_eq!(
            rtnl.create_macvlan(parent, "vrrp.51", mac)
                .await
                .expect("reuse"),
            index
        );
        assert!(sh("ip -o link show dev vrrp.51").contains(",UP"));

        let mac6 = vmac_address(51, true);
        let index6 = rtnl
            .create_macvlan(parent, "vrrp6.51", mac6)
            .await
            .expect("create v6");
        assert!(sh("ip -o link show dev vrrp6.51").contains("link/ether 00:00:5e:00:02:33"));
        assert_ne!(index6, index);

        // A name taken by another kind of interface is an error, not a reuse.
        let err = rtnl
            .create_macvlan(parent, "veth1", mac)
            .await
            .expect_err("name taken");
        assert!(
            err.to_string()
                .contains("already exists and is not a macvlan"),
            "{err}"
        );
        // And delete_link never removes anything but a macvlan.
        let err = rtnl.delete_link("veth1").await.expect_err("not a macvlan");
        assert!(
            err.to_string().contains("refusing to delete veth1"),
            "{err}"
        );
        assert!(sh("ip -o link show").contains("veth1"));

        assert_eq!(
            rtnl.delete_link("vrrp.51").await.expect("delete"),
            Change::Done
        );
        assert!(!sh("ip -o link show").contains("vrrp.51"));
        assert_eq!(
            rtnl.delete_link("vrrp.51").await.expect("delete again"),
            Change::Absent
        );
        assert_eq!(
            rtnl.delete_link("vrrp6.51").await.expect("delete v6"),
            Change::Done
        );
        let err = rtnl
            .create_macvlan(9999, "vrrp.52", mac)
            .await
            .expect_err("no parent");
        assert!(err.to_string().contains("does not exist"), "{err}");
    });
}
