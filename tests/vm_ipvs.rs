//! ipvsdir against a real kernel IPVS (in the VM harness), with ipvsadm as
//! the independent oracle. All scenarios run in one boot
//! (tests/vm/ipvs-scenarios.sh); this file checks what came back.

mod common;

use std::collections::BTreeMap;

use common::{repo, sections, vm_ipvsdir_bin, vm_or_skip, vm_run_ok};

/// The scenario sections, from one VM boot.
fn scenario() -> Option<BTreeMap<String, String>> {
    {
        if !vm_or_skip() {
            return None;
        }
        let ipvsdir = vm_ipvsdir_bin()?;
        let file = |p: &str| format!("{}", repo().join(p).display());
        let args = vec![
            "--bin".into(),
            ipvsdir,
            "--file".into(),
            file("conf/lvs-nat.conf"),
            "--file".into(),
            file("conf/lvs-dr.conf"),
            "--file".into(),
            file("tests/fixtures/ipvs/matrix.conf"),
            "--file".into(),
            file("tests/fixtures/ipvs/twos.conf"),
            "--file".into(),
            file("tests/vm/ipvs-scenarios.sh"),
            "--file".into(),
            file("tests/vm/mh.sh"),
            // This test binary, for inner_netlink_roundtrip inside the VM.
            "--bin".into(),
            format!(
                "{}:/usr/local/bin/vm_ipvs_inner",
                std::env::current_exe().expect("test binary path").display()
            ),
        ];
        // mh.sh's two directors and their health checks need more than the
        // default 300 s under TCG.
        let args = [vec!["--timeout".into(), "450".into()], args].concat();
        let stdout = vm_run_ok(&args, "sh ipvs-scenarios.sh");
        Some(sections(&stdout))
    }
}

/// One boot for all checks (nextest runs each test in its own process).
#[test]
fn ipvs_against_the_kernel() {
    let Some(s) = scenario() else { return };
    samples_apply_and_dump_matches_ipvsadm(&s);
    every_scheduler_method_and_kind_in_every_view(&s);
    missing_scheduler_is_a_clear_error(&s);
    one_change_is_one_operation(&s);
    foreign_services_survive_and_drift_is_repaired(&s);
    mh_maps_alike_whatever_the_history(&s);
    let rt = sec(&s, "roundtrip");
    assert!(
        rt.contains("ROUNDTRIP OK") && rt.contains("1 passed"),
        "{rt}"
    );
}

fn sec<'a>(s: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    s.get(name)
        .unwrap_or_else(|| panic!("no section {name:?}; have {:?}", s.keys()))
}

fn applied(s: &BTreeMap<String, String>, name: &str) -> (usize, usize) {
    let text = sec(s, name);
    let line = text
        .lines()
        .find(|l| l.contains("operation(s) applied"))
        .unwrap_or_else(|| panic!("{name}: no summary in {text}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

fn samples_apply_and_dump_matches_ipvsadm(s: &BTreeMap<String, String>) {
    for f in ["lvs-nat", "lvs-dr"] {
        assert_eq!(
            applied(s, &format!("apply {f}")).1,
            0,
            "{}",
            sec(s, &format!("apply {f}"))
        );
        assert_eq!(
            sec(s, &format!("ipvsadm {f}")),
            sec(s, &format!("dump {f}")),
            "{f}"
        );
        assert!(
            sec(s, &format!("plan-after {f}")).contains("0 operation(s) planned"),
            "{f}: applying twice must be a no-op"
        );
    }
    let expected =
        std::fs::read_to_string(repo().join("tests/fixtures/ipvs/lvs-nat.expected")).unwrap();
    assert_eq!(sec(s, "ipvsadm lvs-nat"), expected);
}

fn every_scheduler_method_and_kind_in_every_view(s: &BTreeMap<String, String>) {
    assert_eq!(
        applied(s, "apply matrix").1,
        0,
        "{}",
        sec(s, "apply matrix")
    );
    for v in ["plain", "stats", "rate", "save"] {
        assert_eq!(
            sec(s, &format!("ipvsadm matrix {v}")),
            sec(s, &format!("dump matrix {v}")),
            "view {v}"
        );
    }
    let plain = sec(s, "ipvsadm matrix plain");
    for sched in [
        "rr",
        "wrr",
        "lc",
        "wlc",
        "lblc",
        "lblcr",
        "sh (sh-fallback,sh-port)",
        "dh",
        "mh (mh-fallback)",
        "sed",
        "nq",
        "fo",
        "ovf",
    ] {
        assert!(
            plain.contains(&format!(" {sched}\n")),
            "scheduler {sched} missing:\n{plain}"
        );
    }
    for needle in [
        "persistent 600 mask 255.255.255.0",
        "Route   65535",
        "Tunnel",
        "UDP  10.1.0.4:53 rr ops",
        "SCTP 10.1.0.5:5060 rr",
        "FWM  7 wrr persistent 60",
        "FWM  8 IPv6 rr",
        "[fd00::1:1]:443 wrr persistent 120 mask 64",
        "TCP  10.1.0.6:0 rr persistent 360",
        "Masq    0 ",
    ] {
        assert!(plain.contains(needle), "{needle:?} missing:\n{plain}");
    }
    assert_eq!(sec(s, "timeouts"), "Timeout (tcp tcpfin udp): 7200 30 60\n");
    let save = sec(s, "ipvsadm matrix save");
    assert!(
        save.contains("--tun-type gue --tun-port 6080 --tun-csum"),
        "{save}"
    );
    assert!(save.contains("--tun-type gre --tun-nocsum"), "{save}");
    let json: serde_json::Value = serde_json::from_str(sec(s, "json matrix")).unwrap();
    assert_eq!(json["services"].as_array().unwrap().len(), 21);
}

fn missing_scheduler_is_a_clear_error(s: &BTreeMap<String, String>) {
    let t = sec(s, "twos");
    assert!(
        t.contains("add service TCP 10.5.0.1:80: scheduler 'twos' is not available in this kernel"),
        "{t}"
    );
    assert!(t.contains("rc=1"), "{t}");
    // The other service went in; the refused one's dest adds no second error.
    assert_eq!(applied(s, "twos"), (2, 1), "{t}");
}

fn one_change_is_one_operation(s: &BTreeMap<String, String>) {
    assert_eq!(applied(s, "one weight"), (1, 0), "{}", sec(s, "one weight"));
    assert!(sec(s, "one weight table").contains("  -> 10.0.0.11:80                 Masq    4"));
    assert_eq!(applied(s, "one real server added"), (1, 0));
    assert_eq!(applied(s, "one service removed"), (1, 0));
    assert!(!sec(s, "one service removed table").contains(":443"));
    assert_eq!(applied(s, "nothing changed"), (0, 0));
}

fn foreign_services_survive_and_drift_is_repaired(s: &BTreeMap<String, String>) {
    // One deleted dest re-added, one hand-edited weight set back.
    assert_eq!(applied(s, "repair"), (2, 0), "{}", sec(s, "repair"));
    let t = sec(s, "repair table");
    assert!(t.contains("TCP  192.0.2.99:25 rr"), "{t}");
    assert!(
        t.contains("  -> 10.0.0.11:80                 Masq    4"),
        "{t}"
    );
    assert!(
        t.contains("  -> 10.0.0.12:80                 Masq    2"),
        "{t}"
    );
    // Emptying the config removes our one service and nothing else.
    assert_eq!(applied(s, "empty"), (1, 0));
    let t = sec(s, "empty table");
    assert!(
        t.contains("192.0.2.99:25") && !t.contains("203.0.113.10"),
        "{t}"
    );
}

/// The flows of one director's connection table: source -> real server.
fn flows(s: &BTreeMap<String, String>, director: &str) -> BTreeMap<String, String> {
    sec(s, &format!("{director} conns"))
        .lines()
        .filter_map(|l| {
            let (src, dst) = l.split_once(' ')?;
            Some((src.to_string(), dst.to_string()))
        })
        .collect()
}

fn mh_maps_alike_whatever_the_history(s: &BTreeMap<String, String>) {
    let order = |name: &str| sec(s, name).trim().to_string();
    // /proc/net/ip_vs's `ADDR:PORT:WEIGHT` (hex) for 10.7.0.N:80, first first.
    let list = |servers: &[(u8, u8)]| {
        servers
            .iter()
            .map(|(n, w)| format!("0A07000{n}:0050:{w}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The file's order reversed: each add goes in front.
    assert_eq!(
        order("A start order"),
        list(&[(5, 2), (4, 1), (3, 3), (2, 1), (1, 1)])
    );
    // Failed and back: every server kept its place (weight 0 meanwhile).
    assert_eq!(
        order("A after failures order"),
        list(&[(5, 2), (4, 0), (3, 3), (2, 1), (1, 1)])
    );
    let fin = list(&[(5, 2), (4, 0), (3, 3), (6, 1), (2, 1), (1, 1)]);
    assert_eq!(order("A after reload order"), fin);
    assert!(order("A hand-moved order").starts_with("0A070003:0050:3 "));
    assert_eq!(order("A repaired order"), fin);
    assert_eq!(order("B order"), fin);
    for (name, value) in [
        ("sloppy_tcp", "1"),
        ("conn_reuse_mode", "0"),
        ("expire_nodest_conn", "1"),
        ("schedule_icmp", "1"),
    ] {
        assert!(
            sec(s, "A sysctls").contains(&format!("{name} {value}\n")),
            "{}",
            sec(s, "A sysctls")
        );
    }
    let (a, b, c) = (flows(s, "A"), flows(s, "B"), flows(s, "C"));
    let same = a.iter().filter(|(k, v)| b.get(*k) == Some(v)).count();
    let control = a.iter().filter(|(k, v)| c.get(*k) == Some(v)).count();
    let mut per_server: BTreeMap<&str, usize> = BTreeMap::new();
    for v in a.values() {
        *per_server.entry(v.as_str()).or_default() += 1;
    }
    eprintln!(
        "mh across directors: {} flows on A, {} on B, {same} mapped alike; control (hand-built order) {control} of {} alike; A per real server {per_server:?}",
        a.len(),
        b.len(),
        c.len()
    );
    assert_eq!(a.len(), 200, "{}", sec(s, "A conns"));
    assert_eq!(b.len(), 200, "{}", sec(s, "B conns"));
    assert_eq!(same, 200, "A and B map differently");
    assert!(
        !per_server.contains_key("10.7.0.4:80"),
        "a failed server got flows"
    );
    assert!(
        control < 200,
        "the control maps alike too: the check proves nothing"
    );
}

/// Runs inside the VM (started by the scenario script with this very test
/// binary): every reply of real kernel dumps decodes, re-encodes and decodes
/// to the same message.
#[test]
#[ignore = "runs inside the kernel VM; started by ipvs_against_the_kernel"]
fn inner_netlink_roundtrip() {
    use ipvs_sys::IpvsMessage;
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
    use netlink_packet_generic::GenlMessage;

    let mut ipvs = ipvsdir::lvs::kernel::Ipvs::open().expect("IPVS in the VM");
    let mut raws = ipvs
        .request_raw(IpvsMessage::GetService(None), true)
        .unwrap();
    for svc in ipvs.read().unwrap().services {
        raws.extend(
            ipvs.request_raw(IpvsMessage::GetDest(svc.entry.service.key), true)
                .unwrap(),
        );
    }
    raws.extend(ipvs.request_raw(IpvsMessage::GetInfo, false).unwrap());
    raws.extend(ipvs.request_raw(IpvsMessage::GetConfig, false).unwrap());
    let decode = |b: &[u8]| match NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(b)
        .unwrap()
        .payload
    {
        NetlinkPayload::InnerMessage(g) => g,
        other => panic!("not a genl message: {other:?}"),
    };
    for raw in &raws {
        let first = decode(raw);
        let mut again = NetlinkMessage::from(first.clone());
        again.finalize();
        let mut buf = vec![0; again.buffer_len()];
        again.serialize(&mut buf);
        assert_eq!(decode(&buf).payload, first.payload);
    }
    println!("ROUNDTRIP OK {} messages", raws.len());
}

/// A `MakeWriter` that collects log output for assertions.
#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs inside the VM: the daemon's director core repairs hand-made drift
/// on its next drift tick and logs the same repair only once.
#[test]
#[ignore = "runs inside the kernel VM; started by ipvs_against_the_kernel"]
fn inner_drift_repair() {
    use ipvsdir::lvs::commands::drive;
    use ipvsdir::lvs::director::{Director, Event, Options};
    use ipvsdir::lvs::worker;
    let logs = LogBuf::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();
    let cfg = ipvsdir::config::load_str(
        "drift.conf",
        "virtual_server 10.7.0.1 80 {\n real_server 10.7.1.1 80 {\n }\n real_server 10.7.1.2 80 {\n }\n}\n",
        &Default::default(),
    )
    .config
    .unwrap();
    // The daemon's director core, its drift tick on virtual time.
    let t0 = std::time::Instant::now();
    let every = std::time::Duration::from_secs(10);
    let opts = Options {
        write_table: true,
        release_on_stop: false,
        drain_grace: std::time::Duration::ZERO,
        drift_interval: every,
        vrrp_in_process: false,
        origin: t0,
        assume: Some(true),
        report_every: None,
        persist_overrides: false,
        announce: false,
    };
    let mut core = Director::new(cfg, opts, Default::default());
    let mut ipvs = ipvsdir::lvs::kernel::Ipvs::open().unwrap();
    let mut pass = |core: &mut Director| {
        drive(core, None, |r| worker::execute(&mut ipvs, r));
        core.take_outcome()
    };
    core.handle(t0, Event::Start);
    assert_eq!(pass(&mut core).applied.len(), 3);
    core.handle_timeout(t0 + every);
    assert!(pass(&mut core).applied.is_empty());
    let ipvsadm = |args: &str| {
        let ok = std::process::Command::new("ipvsadm")
            .args(args.split(' '))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ipvsadm {args}");
    };
    for i in 2..4 {
        ipvsadm("-d -t 10.7.0.1:80 -r 10.7.1.2:80");
        core.handle_timeout(t0 + every * i);
        let o = pass(&mut core);
        assert_eq!(o.applied.len(), 1, "{:?}", o.applied);
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let repairs = text.matches("IPVS table drifted from the configuration, repaired: ipvsadm -a -t 10.7.0.1:80 -r 10.7.1.2:80 -m -w 1").count();
    assert_eq!(repairs, 1, "{text}");
    println!("DRIFT OK");
}

/// Runs inside the VM, in the client namespace of tests/vm/mh.sh: opens
/// the same 200 TCP flows every time (sources 10.8.0.1-4, ports
/// 40000-40049) to 10.99.0.1:80 without waiting for them; each SYN makes
/// the director's IPVS pick a real server (a connection entry).
#[test]
#[ignore = "runs inside the kernel VM; started by ipvs_against_the_kernel"]
fn inner_send_flows() {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket, sockopt,
    };
    let mut open = Vec::new();
    for a in 1..=4u8 {
        for port in 40000..40050u16 {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_NONBLOCK,
                None,
            )
            .unwrap();
            setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::new(10, 8, 0, a, port),
            )
            .unwrap();
            match connect(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::new(10, 99, 0, 1, 80),
            ) {
                Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
                Err(e) => panic!("connect from 10.8.0.{a}:{port}: {e}"),
            }
            open.push(fd);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!("FLOWS SENT {}", open.len());
}
