//! VRRP between real processes in network namespaces (scripts/netns-lab):
//! two or three directors and a client on a bridge. Behaviour is asserted
//! (who is master, who holds the VIP, whether the client reaches it);
//! times are printed, and bounded only by the protocol's own limits.
//! Needs root (fails under CI=true without it, skips elsewhere).

mod common;

use std::time::{Duration, Instant};

use common::lab::Lab;

const VIP: &str = "10.99.0.200";
const LONG: Duration = Duration::from_secs(20);

/// A director's config: instances as (name, vrid, priority, extra lines, vip).
fn config(globals: &str, scripts: &str, instances: &[(&str, u8, u8, &str, &str)]) -> String {
    let mut out = format!("global_defs {{\n  {globals}\n}}\n{scripts}\n");
    for (name, vrid, prio, extra, vip) in instances {
        out += &format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int 1\n  {extra}\n  virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
        );
    }
    out
}

fn simple(prio: u8, extra: &str) -> String {
    config("", "", &[("VI_1", 51, prio, extra, VIP)])
}

/// Master_Down_Interval for advert_int 1 at `prio` (v2).
fn mdi(prio: u8) -> Duration {
    Duration::from_secs(3) + Duration::from_micros(1_000_000 * (256 - u64::from(prio)) / 256)
}

fn client_reaches_vip(lab: &Lab) -> bool {
    lab.try_sh("c", &format!("ping -c1 -W1 {VIP}"))
}

#[test]
fn kill9_of_the_master_fails_over_and_the_master_preempts_when_back() {
    let Some(mut lab) = Lab::up("kill9", 2, &["ping"]) else {
        return;
    };
    lab.start_ipvsdir("d1", &simple(150, ""));
    lab.start_ipvsdir("d2", &simple(100, ""));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert!(lab.has_addr("d1", VIP) && !lab.has_addr("d2", VIP));
    assert!(client_reaches_vip(&lab));
    assert_eq!(lab.client_neigh(VIP), Some(lab.mac("d1")));

    let killed = Instant::now();
    lab.signal("d1", libc::SIGKILL);
    lab.wait_exit("d1", Duration::from_secs(5));
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    let takeover = killed.elapsed();
    println!(
        "takeover after kill -9: {:.3} s (Master_Down_Interval {:.3} s)",
        takeover.as_secs_f64(),
        mdi(100).as_secs_f64()
    );
    assert!(
        takeover <= mdi(100) + Duration::from_millis(1500),
        "takeover {takeover:?}"
    );
    assert!(lab.has_addr("d2", VIP));
    // The gratuitous ARPs point the client at d2 (d1's namespace still has the
    // address: a killed process cannot remove it).
    lab.wait_for("the client's ARP entry to move to d2", LONG, |l| {
        l.client_neigh(VIP) == Some(l.mac("d2"))
    });
    assert!(client_reaches_vip(&lab));
    assert!(
        lab.log("d2")
            .contains("(VI_1) Sending/queueing gratuitous ARPs on eth0 for 10.99.0.200")
    );

    // d1 comes back: it clears the VIP left behind, then preempts.
    lab.start_ipvsdir("d1", &simple(150, ""));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    lab.wait_for("d2 to drop the VIP", LONG, |l| !l.has_addr("d2", VIP));
    assert!(
        lab.log("d1").contains("removing protocol VIPs"),
        "{}",
        lab.log("d1")
    );
    lab.wait_for("the client's ARP entry to move back to d1", LONG, |l| {
        l.client_neigh(VIP) == Some(l.mac("d1"))
    });
    assert!(client_reaches_vip(&lab));
}

/// SIGTERM of the master while the client pings the VIP every 10 ms;
/// returns (exit time, takeover time, echo requests lost).
fn sigterm_handoff(name: &str, extra: &str) -> Option<(Duration, Duration, u32)> {
    let mut lab = Lab::up(name, 2, &["ping"])?;
    lab.start_ipvsdir("d1", &simple(150, extra));
    lab.start_ipvsdir("d2", &simple(100, extra));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert!(client_reaches_vip(&lab));
    let ping = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("c"),
            "ping",
            "-n",
            "-q",
            "-i",
            "0.01",
            "-c",
            "300",
            "-W",
            "1",
            VIP,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    lab.signal("d1", libc::SIGTERM);
    let exit = lab.wait_exit("d1", Duration::from_secs(2));
    assert!(!lab.has_addr("d1", VIP), "VIP removed at stop");
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    let takeover = t.elapsed();
    let out = ping.wait_with_output().expect("ping output");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let nums: Vec<u32> = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(nums.len() >= 2, "ping summary: {text}");
    let lost = nums[0] - nums[1];
    assert!(lab.log("d1").contains("removing protocol VIPs"));
    // Priority 0 makes the backup wait Skew_Time (0.61 s), not Master_Down_Interval.
    assert!(takeover < mdi(100), "takeover {takeover:?}");
    println!(
        "SIGTERM{extra}: exit in {:.3} s, takeover in {:.3} s (Master_Down_Interval would be {:.3} s), {lost} of {} pings lost",
        exit.as_secs_f64(),
        takeover.as_secs_f64(),
        mdi(100).as_secs_f64(),
        nums[0]
    );
    Some((exit, takeover, lost))
}

#[test]
fn sigterm_hands_over_without_a_gap() {
    let Some((_, _, lost)) = sigterm_handoff("sigterm", "") else {
        return;
    };
    // Make-before-break: the old master answers until the new one has announced itself.
    assert!(lost <= 1, "{lost} pings lost during a planned handoff");
}

#[test]
fn strict_mode_sigterm_removes_the_vip_at_once() {
    let Some((_, _, lost)) = sigterm_handoff("strict", "strict_mode") else {
        return;
    };
    // RFC order: the VIP goes at once and the backup waits Skew_Time (0.61 s).
    assert!(
        lost >= 20,
        "only {lost} pings lost: the VIP was not removed at once"
    );
}

#[test]
fn nopreempt_keeps_the_incumbent() {
    let Some(mut lab) = Lab::up("nopre", 2, &[]) else {
        return;
    };
    lab.start_ipvsdir("d2", &simple(100, "nopreempt"));
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    lab.start_ipvsdir("d1", &simple(150, "nopreempt"));
    lab.wait_state("d1", "VI_1", "BACKUP", LONG);
    std::thread::sleep(mdi(150) * 2);
    assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("BACKUP"));
    assert_eq!(lab.state("d2", "VI_1").as_deref(), Some("MASTER"));
    assert!(lab.has_addr("d2", VIP) && !lab.has_addr("d1", VIP));
}

#[test]
fn a_failing_track_script_with_weight_hands_over_and_back() {
    let Some(mut lab) = Lab::up("track", 2, &[]) else {
        return;
    };
    let flag = lab.path("d1-healthy");
    std::fs::write(&flag, "").unwrap();
    let scripts = format!(
        "vrrp_script chk {{\n  script \"test -f {}\"\n  interval 1\n  weight -60\n  fall 2\n  rise 2\n}}\n",
        flag.display()
    );
    let d1 = config(
        "",
        &scripts,
        &[("VI_1", 51, 150, "track_script {\n    chk\n  }", VIP)],
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &simple(100, ""));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);

    std::fs::remove_file(&flag).unwrap();
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 90);
    assert!(
        lab.log("d1")
            .contains("Changing effective priority from 150 to 90")
    );

    std::fs::write(&flag, "").unwrap();
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 150);
}

#[test]
fn blocked_vrrp_splits_the_brain_and_healing_leaves_one_master() {
    let Some(mut lab) = Lab::up("split", 2, &["nft"]) else {
        return;
    };
    lab.start_ipvsdir("d1", &simple(150, ""));
    lab.start_ipvsdir("d2", &simple(100, ""));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    // The firewall story: d2 stops hearing d1's multicast.
    lab.sh("d2", "nft add table inet t; nft add chain inet t in '{ type filter hook input priority 0; }'; nft add rule inet t in ip protocol 112 drop");
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    assert_eq!(
        lab.state("d1", "VI_1").as_deref(),
        Some("MASTER"),
        "split brain: both master"
    );
    assert!(lab.has_addr("d1", VIP) && lab.has_addr("d2", VIP));
    lab.sh("d2", "nft delete table inet t");
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    // d2 announced the VIP while split: d1 announces it again when it hears d2.
    assert!(
        lab.log("d1")
            .contains("heard a lower-priority master: re-announcing the VIPs"),
        "{}",
        lab.log("d1")
    );
    lab.wait_for("the client's ARP entry back on d1", LONG, |l| {
        l.client_neigh(VIP).is_none_or(|m| m == l.mac("d1"))
    });
    std::thread::sleep(mdi(100));
    assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("MASTER"));
    assert_eq!(lab.state("d2", "VI_1").as_deref(), Some("BACKUP"));
    assert!(!lab.has_addr("d2", VIP));
}

#[test]
fn unicast_peers_work_without_multicast() {
    let Some(mut lab) = Lab::up("ucast", 2, &["nft"]) else {
        return;
    };
    let uni =
        |me: &str, peer: &str| format!("unicast_src_ip {me}\n  unicast_peer {{\n    {peer}\n  }}");
    // No multicast at all between them.
    for d in ["d1", "d2"] {
        lab.sh(d, "nft add table inet t; nft add chain inet t in '{ type filter hook input priority 0; }'; nft add rule inet t in ip daddr 224.0.0.0/4 drop");
    }
    lab.start_ipvsdir("d1", &simple(150, &uni("10.99.0.11", "10.99.0.12")));
    lab.start_ipvsdir("d2", &simple(100, &uni("10.99.0.12", "10.99.0.11")));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    std::thread::sleep(mdi(100) * 2);
    assert_eq!(
        lab.state("d2", "VI_1").as_deref(),
        Some("BACKUP"),
        "d2 hears d1 by unicast"
    );
    assert!(lab.instance("d2", "VI_1").unwrap().adverts_received >= 3);
    lab.signal("d1", libc::SIGKILL);
    lab.wait_exit("d1", Duration::from_secs(5));
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
}

#[test]
fn master_master_each_holds_one_vip_and_one_survivor_holds_both() {
    let Some(mut lab) = Lab::up("mm", 2, &[]) else {
        return;
    };
    let vip2 = "10.99.0.201";
    let d1 = config(
        "",
        "",
        &[("VI_1", 51, 150, "", VIP), ("VI_2", 52, 100, "", vip2)],
    );
    let d2 = config(
        "",
        "",
        &[("VI_1", 51, 100, "", VIP), ("VI_2", 52, 150, "", vip2)],
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &d2);
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_2", "MASTER", LONG);
    lab.wait_state("d1", "VI_2", "BACKUP", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert!(lab.has_addr("d1", VIP) && lab.has_addr("d2", vip2));
    lab.signal("d1", libc::SIGTERM);
    lab.wait_exit("d1", Duration::from_secs(2));
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    assert!(lab.has_addr("d2", VIP) && lab.has_addr("d2", vip2));
}

#[test]
fn ipv6_vrrpv3_fails_over() {
    let Some(mut lab) = Lab::up("v6", 2, &[]) else {
        return;
    };
    let v6 = |prio| {
        format!(
            "vrrp_instance VI_6 {{\n  state BACKUP\n  interface eth0\n  version 3\n  virtual_router_id 61\n  priority {prio}\n  advert_int 0.2\n  virtual_ipaddress {{\n    fd99::200/64\n  }}\n}}\n"
        )
    };
    lab.start_ipvsdir("d1", &v6(150));
    lab.start_ipvsdir("d2", &v6(100));
    lab.wait_state("d1", "VI_6", "MASTER", LONG);
    lab.wait_state("d2", "VI_6", "BACKUP", LONG);
    assert!(lab.has_addr("d1", "fd99::200"));
    let t = Instant::now();
    lab.signal("d1", libc::SIGKILL);
    lab.wait_exit("d1", Duration::from_secs(5));
    lab.wait_state("d2", "VI_6", "MASTER", LONG);
    println!(
        "v3 advert 0.2 s, IPv6: takeover after kill -9 in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    assert!(lab.has_addr("d2", "fd99::200"));
    assert!(
        lab.log("d2")
            .contains("Sending/queueing Unsolicited Neighbour Adverts on eth0 for fd99::200")
    );
}

/// keepalived (Debian 2.2.7) and ipvsdir in one VRRP group, each way round.
#[test]
fn interoperates_with_keepalived() {
    let Some(mut lab) = Lab::up("kad", 2, &["keepalived"]) else {
        return;
    };
    // keepalived master, ipvsdir backup.
    lab.start_keepalived("d1", &simple(150, ""));
    lab.start_ipvsdir("d2", &simple(100, ""));
    lab.wait_for("keepalived to be master", LONG, |l| l.has_addr("d1", VIP));
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    std::thread::sleep(mdi(100) * 2);
    assert_eq!(
        lab.state("d2", "VI_1").as_deref(),
        Some("BACKUP"),
        "ipvsdir accepts keepalived's adverts"
    );
    let inst = lab.instance("d2", "VI_1").unwrap();
    assert!(
        inst.adverts_received >= 5 && inst.dropped.is_empty(),
        "{inst:?}"
    );
    assert_eq!(inst.master.as_deref(), Some("10.99.0.11"));
    lab.signal("d1", libc::SIGTERM);
    lab.wait_exit("d1", Duration::from_secs(5));
    lab.wait_state("d2", "VI_1", "MASTER", LONG);

    // keepalived comes back as the lower priority: it must stay backup.
    lab.start_keepalived("d1", &simple(50, ""));
    lab.wait_for("keepalived to enter BACKUP", LONG, |l| {
        l.log("d1").matches("Entering BACKUP STATE").count() >= 2
    });
    std::thread::sleep(mdi(50) * 2);
    assert!(
        !lab.has_addr("d1", VIP),
        "keepalived accepts ipvsdir's adverts\n{}",
        lab.log("d1")
    );
    assert_eq!(lab.state("d2", "VI_1").as_deref(), Some("MASTER"));
    assert_eq!(
        lab.log("d1").matches("Entering MASTER STATE").count(),
        1,
        "only the first keepalived was master"
    );
}

#[test]
fn sighup_reload_keeps_state_and_applies_changes() {
    let Some(mut lab) = Lab::up("reload", 2, &[]) else {
        return;
    };
    lab.start_ipvsdir("d1", &simple(150, ""));
    lab.start_ipvsdir("d2", &simple(100, ""));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    let transitions = |l: &Lab, n: &str| l.log(n).matches("Entering").count();
    let (t1, t2) = (transitions(&lab, "d1"), transitions(&lab, "d2"));
    let vip2 = "10.99.0.201";

    // A priority change and a second VIP on both (adverts carry the VIP
    // list, which peers check): no transition anywhere.
    let conf = lab.path("d1.conf");
    let two = |prio| {
        simple(prio, "").replace(
            &format!("{VIP}/24 dev eth0"),
            &format!("{VIP}/24 dev eth0\n    {vip2}/24 dev eth0"),
        )
    };
    std::fs::write(&conf, two(160)).unwrap();
    std::fs::write(lab.path("d2.conf"), two(100)).unwrap();
    lab.signal("d1", libc::SIGHUP);
    lab.signal("d2", libc::SIGHUP);
    lab.wait_for("d1 to add the second VIP", LONG, |l| l.has_addr("d1", vip2));
    lab.wait_for("the reload's new priority", LONG, |l| {
        l.instance("d1", "VI_1")
            .is_some_and(|i| i.effective_priority == 160)
    });
    assert!(lab.log("d1").contains("reloaded: 1 instance(s) kept"));
    // d2 was signalled too; nothing above waited for it.
    lab.wait_for("d2's reload", LONG, |l| {
        l.log("d2").contains("reloaded: 1 instance(s) kept")
    });
    std::thread::sleep(mdi(100));
    assert_eq!(transitions(&lab, "d1"), t1, "{}", lab.log("d1"));
    assert_eq!(transitions(&lab, "d2"), t2, "{}", lab.log("d2"));
    assert!(lab.has_addr("d1", VIP));

    // A broken file is refused; the running configuration carries on.
    std::fs::write(&conf, "vrrp_instance VI_1 {\n  virtual_router_id 300\n").unwrap();
    lab.signal("d1", libc::SIGHUP);
    lab.wait_for("the refusal", LONG, |l| {
        l.log("d1").contains("keeping the running configuration")
    });
    assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("MASTER"));
    assert!(lab.has_addr("d1", VIP) && lab.has_addr("d1", vip2));

    // The second VIP removed again.
    std::fs::write(&conf, simple(160, "")).unwrap();
    std::fs::write(lab.path("d2.conf"), simple(100, "")).unwrap();
    lab.signal("d1", libc::SIGHUP);
    lab.signal("d2", libc::SIGHUP);
    lab.wait_for("d1 to remove the second VIP", LONG, |l| {
        !l.has_addr("d1", vip2)
    });
    assert!(lab.has_addr("d1", VIP));
    assert_eq!(transitions(&lab, "d1"), t1);
    assert_eq!(transitions(&lab, "d2"), t2);
}

/// systemd's Type=notify protocol, the pid file and the SIGUSR1/SIGUSR2 dumps.
#[test]
fn daemon_signals_readiness_pid_and_dumps() {
    let Some(mut lab) = Lab::up("sdnot", 1, &[]) else {
        return;
    };
    let sock_path = lab.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let pid = lab.path("ipvsdir.pid");
    let pid_arg = pid.display().to_string();
    let sock_env = sock_path.display().to_string();
    // A local user planted a symlink where the SIGUSR1 dump goes.
    let dumps = lab.path("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let precious = lab.path("shadow");
    std::fs::write(&precious, "precious\n").unwrap();
    std::os::unix::fs::symlink(&precious, dumps.join("ipvsdir.data")).unwrap();
    let dump_arg = dumps.display().to_string();
    lab.start_ipvsdir_with(
        "d1",
        &simple(150, ""),
        &["-p", &pid_arg, "--dump-dir", &dump_arg],
        &[("NOTIFY_SOCKET", &sock_env)],
    );
    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notify message");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    assert!(recv().contains("READY=1"));
    let written: u32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{written}")).exists());

    lab.signal("d1", libc::SIGHUP);
    let m = recv();
    assert!(
        m.contains("RELOADING=1") && m.contains("MONOTONIC_USEC="),
        "{m}"
    );
    assert!(recv().contains("READY=1"));

    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    std::thread::sleep(Duration::from_millis(1200));
    lab.signal("d1", libc::SIGUSR1);
    lab.signal("d1", libc::SIGUSR2);
    lab.wait_for("the dumps", LONG, |_| {
        std::fs::read_to_string(dumps.join("ipvsdir.data"))
            .is_ok_and(|d| d.contains("State = MASTER"))
            && std::fs::read_to_string(dumps.join("ipvsdir.stats"))
                .is_ok_and(|d| d.contains("VRRP Instance: VI_1"))
    });
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dumps.join("ipvsdir.data.json")).unwrap())
            .unwrap();
    assert_eq!(j["vrrp"]["instances"][0]["state"], "MASTER");
    // The symlink was replaced, not followed.
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n");

    // The status socket: root only, and `--dump` shows the live VRRP view.
    let sock = lab.path("d1.sock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let dump = lab.sh(
        "d1",
        &format!(
            "{} --dump --control-socket {}",
            common::ipvsdir_bin(),
            sock.display()
        ),
    );
    assert!(
        dump.contains(
            "VI_1 (vrid 51 on eth0): MASTER, priority 150 (effective 150), master 10.99.0.11"
        ),
        "{dump}"
    );
    let json = lab.sh(
        "d1",
        &format!(
            "{} --dump --json --control-socket {}",
            common::ipvsdir_bin(),
            sock.display()
        ),
    );
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["vrrp"]["instances"][0]["state"], "MASTER");
    common::daemon::validate_status(&j);

    lab.signal("d1", libc::SIGTERM);
    assert!(recv().contains("STOPPING=1"));
    lab.wait_exit("d1", Duration::from_secs(3));
    assert!(!pid.exists(), "pid file removed at exit");
}
