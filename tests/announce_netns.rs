//! Health-gated announcements against real routing daemons in network
//! namespaces (scripts/netns-lab): two directors d1, d2 each run
//! `ipvsdir -C --no-ipvs` (this host has no IPVS; the announcement path
//! needs none: checkers -> director core -> route in the announce table)
//! and a routing daemon exporting that table over eBGP: BIRD 2 on d1 (as
//! conf/bird2-announce.conf), FRR on d2 (conf/frr-announce.conf itself,
//! with the lab's addresses, short timers and no BFD), to a router
//! namespace (the lab's client c) running BIRD 2, which installs one ECMP
//! route for the VIP. The oracle is the router's kernel table (`ip route`):
//! - both directors healthy: a 2-nexthop route;
//! - d1's real server stops: d1 withdraws, the router keeps 1 nexthop;
//! - it comes back: 2 nexthops again;
//! - d1's route deleted by hand: repaired by the next check;
//! - SIGTERM to d2's ipvsdir: it withdraws first, then exits after
//!   `announce_withdraw_grace`;
//! - a stale route of ours in the announce table is removed at start; a
//!   route of another protocol in it is left alone;
//! - the drain (`announce_drain_metric`), second test: `ctl drain-director`
//!   on d1 (BIRD), then SIGTERM to it, re-announce with the drain metric,
//!   which the director's routing daemon exports with GRACEFUL_SHUTDOWN and a
//!   worse MED; the router (its import filter as in the snippets) keeps the
//!   path but prefers the other director; the route is withdrawn after
//!   `announce_drain_time` (no IPVS here: the bounded time), and at stop the
//!   release comes after the withdrawal.
//!
//! Times are printed, not asserted beyond generous bounds. Needs root,
//! `bird` (Debian's bird2), FRR's zebra, bgpd and vtysh (Debian's frr) and
//! python3 (fails under CI=true without them, skips elsewhere).

mod common;

use std::time::{Duration, Instant};

use common::lab::{Lab, tool_or_skip};

const VIP: &str = "10.99.1.1";
const TABLE: u32 = 100;
const RS_PORT: u16 = 8081;
/// BGP sessions come up (connect retry 1 s) and the route converges.
const CONVERGE: Duration = Duration::from_secs(60);
/// A health change reaches the router: the checker's fall (delay_loop 1,
/// connect_timeout 1, retry 0) plus BGP, with room for a loaded host.
const CHANGE: Duration = Duration::from_secs(20);

/// The drain's metric, as in conf/bird2-announce.conf and
/// conf/frr-announce.conf.
const DRAIN_METRIC: u32 = 4000;
/// announce_drain_time in the drain test.
const DRAIN_TIME: u64 = 6;

fn drain_conf() -> String {
    director_conf().replace(
        "  announce_withdraw_grace 2\n",
        &format!(
            "  announce_withdraw_grace 2\n  announce_drain_metric {DRAIN_METRIC}\n  announce_drain_time {DRAIN_TIME}\n"
        ),
    )
}

fn director_conf() -> String {
    format!(
        "global_defs {{
  announce_table {TABLE}
  announce_withdraw_grace 2
}}
virtual_server {VIP} 80 {{
  delay_loop 1
  alpha
  announce
  real_server 127.0.0.1 {RS_PORT} {{
    TCP_CHECK {{
      connect_timeout 1
      retry 0
    }}
  }}
}}
"
    )
}

/// BIRD 2 on director `i`, as conf/bird2-announce.conf with the lab's
/// addresses, test timers and no BFD.
fn director_bird(i: u8) -> String {
    format!(
        "router id 10.99.0.1{i};
protocol device {{ scan time 10; }}
protocol kernel announce {{
  ipv4 {{ import all; export none; }};
  kernel table {TABLE};
  learn;
  scan time 10;
}}
protocol bgp uplink {{
  local 10.99.0.1{i} as 65001;
  neighbor 10.99.0.100 as 65000;
  hold time 3; keepalive time 1; connect retry time 1; connect delay time 1; error wait time 1, 2;
  ipv4 {{
    import none;
    export filter {{
      if proto != \"announce\" then reject;
      if krt_metric = {DRAIN_METRIC} then {{ bgp_community.add((65535, 0)); bgp_med = {DRAIN_METRIC}; }}
      accept;
    }};
    next hop self;
  }};
}}
"
    )
}

const ROUTER_BIRD: &str = "router id 10.99.0.100;
protocol device { scan time 10; }
protocol kernel {
  ipv4 { import none; export all; };
  merge paths on;
  scan time 10;
}
template bgp director {
  local 10.99.0.100 as 65000;
  hold time 3; keepalive time 1; connect retry time 1; connect delay time 1; error wait time 1, 2;
  ipv4 {
    import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; };
    export none;
  };
}
protocol bgp d1 from director { neighbor 10.99.0.11 as 65001; }
protocol bgp d2 from director { neighbor 10.99.0.12 as 65001; }
";

/// The router's next hops for the VIP (none when it has no route).
fn next_hops(lab: &Lab) -> Vec<String> {
    let out = lab.sh("c", &format!("ip route show {VIP}/32"));
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect()
}

fn wait_hops(lab: &Lab, want: &[&str], limit: Duration) -> Duration {
    let what = format!("router route to {VIP} via {want:?}");
    lab.wait_for(&what, limit, |l| {
        let mut h = next_hops(l);
        h.sort();
        h == want
    })
}

fn start_real_server(lab: &mut Lab, node: &str) {
    let port = RS_PORT.to_string();
    lab.start(
        node,
        "rs",
        "python3",
        &["-m", "http.server", "--bind", "127.0.0.1", &port],
    );
    lab.wait_for("the real server to listen", CHANGE, |l| {
        l.try_sh(
            node,
            &format!("ss -Hltn sport = :{RS_PORT} | grep -q LISTEN"),
        )
    });
}

fn start_ipvsdir(lab: &mut Lab, node: &str, text: &str) {
    let conf = lab.path(&format!("{node}.conf"));
    std::fs::write(&conf, text).expect("write config");
    let path = |f: &str| lab.path(&format!("{node}-{f}")).display().to_string();
    let (health, owned, sock) = (path("health.json"), path("owned"), path("ctl.sock"));
    let bin = common::ipvsdir_bin();
    let conf = conf.display().to_string();
    lab.start(
        node,
        "ipvsdir",
        &bin,
        &[
            "-C",
            "--no-ipvs",
            "-n",
            "-l",
            "-f",
            &conf,
            "--health-state",
            &health,
            "--owned-state",
            &owned,
            "--control-socket",
            &sock,
            // The announce table is checked (and repaired) every second.
            "--drift-interval",
            "1",
        ],
    );
}

fn start_bird(lab: &mut Lab, node: &str, conf: &str) {
    let file = lab.path(&format!("{node}.bird"));
    std::fs::write(&file, conf).expect("write bird config");
    let ctl = lab.path(&format!("{node}.bird.ctl")).display().to_string();
    let file = file.display().to_string();
    // -f: in the foreground, so the lab owns (and ends) the process.
    lab.start(node, "bird", "bird", &["-f", "-c", &file, "-s", &ctl]);
}

/// FRR's state directory for one instance (`-N NAME`): /var/run/frr/NAME,
/// removed again on drop.
struct FrrDir(std::path::PathBuf);

impl Drop for FrrDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The director half of conf/frr-announce.conf with the lab's addresses,
/// test timers (BGP keepalive 1 s, hold 3 s, connect retry 1 s) and
/// without BFD (not tested here yet).
fn director_frr(addr: &str) -> String {
    let text = std::fs::read_to_string(common::repo().join("conf/frr-announce.conf"))
        .expect("read conf/frr-announce.conf");
    let director = text
        .split("! ---- the router")
        .next()
        .unwrap_or_default()
        .replace("192.0.2.11", addr)
        .replace("192.0.2.1", "10.99.0.100")
        .replace(
            "timers 3 9",
            "timers 1 3\n neighbor 10.99.0.100 timers connect 1",
        );
    let mut out = String::new();
    let mut in_bfd = false;
    for line in director.lines() {
        if line == "bfd" {
            in_bfd = true;
        }
        if !in_bfd && !line.ends_with(" bfd") {
            out += line;
            out += "\n";
        }
        if in_bfd && line == "exit" {
            in_bfd = false;
        }
    }
    assert!(out.contains("ip import-table 100"));
    assert!(
        !out.lines()
            .any(|l| !l.starts_with('!') && l.contains("bfd")),
        "{out}"
    );
    out
}

fn start_frr(lab: &mut Lab, node: &str, addr: &str) -> FrrDir {
    let name = format!("{}{node}", lab.prefix);
    let dir = FrrDir(std::path::PathBuf::from(format!("/var/run/frr/{name}")));
    std::fs::create_dir_all(&dir.0).expect("FRR state directory");
    let conf = dir.0.join("frr.conf");
    std::fs::write(&conf, director_frr(addr)).expect("write FRR config");
    // The daemons run as user frr: their directory and config are theirs.
    common::netns::sh(&format!(
        "chown -R frr:frr {0} && chmod 0644 {0}/frr.conf",
        dir.0.display()
    ));
    let conf = conf.display().to_string();
    for daemon in ["zebra", "bgpd"] {
        let pid = dir.0.join(format!("{daemon}.pid")).display().to_string();
        let program = format!("/usr/lib/frr/{daemon}");
        lab.start(
            node,
            daemon,
            &program,
            &["-N", &name, "-f", &conf, "-i", &pid],
        );
    }
    dir
}

/// The router's BGP paths for the VIP (`birdc show route all`).
fn router_paths(lab: &Lab) -> String {
    let ctl = lab.path("c.bird.ctl").display().to_string();
    lab.sh("c", &format!("birdc -s {ctl} show route for {VIP}/32 all"))
}

/// The router's path from director `d` (`d1`, `d2`): its lines, or None.
fn path_from(lab: &Lab, d: &str) -> Option<String> {
    let text = router_paths(lab);
    // A path starts on a line naming its protocol: `... [d1 12:00:00] ...`.
    let mut out: Option<String> = None;
    for line in text.lines() {
        if line.contains(" [") {
            if out.is_some() {
                break;
            }
            if line.contains(&format!("[{d} ")) {
                out = Some(String::new());
            }
        }
        if let Some(o) = &mut out {
            o.push_str(line);
            o.push('\n');
        }
    }
    out
}

/// The router holds director `d`'s path, marked for graceful shutdown.
fn gshut_from(lab: &Lab, d: &str) -> bool {
    path_from(lab, d).is_some_and(|p| {
        p.contains("(65535,0)")
            && p.contains("BGP.local_pref: 0")
            && p.contains(&format!("BGP.med: {DRAIN_METRIC}"))
    })
}

/// `ipvsdir ctl drain-director` (or undrain-director) to `node`'s daemon.
fn ctl(lab: &Lab, node: &str, verb: &str) -> String {
    let sock = lab.path(&format!("{node}-ctl.sock"));
    let out = std::process::Command::new(common::ipvsdir_bin())
        .arg("--control-socket")
        .arg(&sock)
        .args(["ctl", verb])
        .output()
        .expect("run ipvsdir ctl");
    assert!(
        out.status.success(),
        "ctl {verb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The director's report: (stage, by) of its drain.
fn drain_report(lab: &Lab, node: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(lab.path(&format!("{node}-health.json"))).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let d = &doc["drain"];
    Some((d["stage"].as_str()?.into(), d["by"].as_str()?.into()))
}

/// The director's report: (announced, why) of the VIP.
fn announced(lab: &Lab, node: &str) -> Option<(bool, String)> {
    let text = std::fs::read_to_string(lab.path(&format!("{node}-health.json"))).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let a = doc["announced"].as_array()?.first()?.clone();
    Some((a["announced"].as_bool()?, a["why"].as_str()?.to_string()))
}

#[test]
fn bird_router_follows_health_gated_announcements() {
    let Some(mut lab) = Lab::up("annbgp", 2, &[]) else {
        return;
    };
    for t in [
        "bird",
        "python3",
        "vtysh",
        "/usr/lib/frr/zebra",
        "/usr/lib/frr/bgpd",
    ] {
        if !tool_or_skip(t) {
            return;
        }
    }
    // Left by "an earlier run": ours (removed at start) and another
    // protocol's (kept).
    lab.sh(
        "d1",
        &format!("ip route add blackhole 10.99.1.99/32 table {TABLE} proto 18"),
    );
    lab.sh(
        "d1",
        &format!("ip route add blackhole 10.99.1.98/32 table {TABLE} proto static"),
    );
    start_bird(&mut lab, "c", ROUTER_BIRD);
    start_real_server(&mut lab, "d1");
    start_bird(&mut lab, "d1", &director_bird(1));
    start_ipvsdir(&mut lab, "d1", &director_conf());
    start_real_server(&mut lab, "d2");
    let _frr = start_frr(&mut lab, "d2", "10.99.0.12");
    start_ipvsdir(&mut lab, "d2", &director_conf());
    let t = wait_hops(&lab, &["10.99.0.11", "10.99.0.12"], CONVERGE);
    println!("both directors announced: 2 next hops at the router after {t:.2?}");
    let table = lab.sh("d1", &format!("ip route show table {TABLE}"));
    assert!(
        table.contains(&format!("blackhole {VIP} proto keepalived")),
        "{table}"
    );
    assert!(!table.contains("10.99.1.99"), "stale route kept: {table}");
    assert!(
        table.contains("10.99.1.98"),
        "another protocol's route removed: {table}"
    );
    lab.wait_for("d1's report", CHANGE, |l| {
        announced(l, "d1").is_some_and(|(a, _)| a)
    });
    println!("d1 reports: {:?}", announced(&lab, "d1"));

    // d1's real server fails: d1 withdraws.
    let t0 = Instant::now();
    lab.stop("d1", "rs");
    wait_hops(&lab, &["10.99.0.12"], CHANGE);
    println!(
        "d1's real server down -> router has 1 next hop after {:.2?}",
        t0.elapsed()
    );
    // The report follows within its 1 s tick.
    lab.wait_for("d1's report of the withdrawal", CHANGE, |l| {
        announced(l, "d1").is_some_and(|(a, why)| !a && why.contains("below quorum"))
    });
    println!("d1 reports: {:?}", announced(&lab, "d1"));
    assert!(
        !lab.sh("d1", &format!("ip route show table {TABLE}"))
            .contains(VIP)
    );

    // It comes back: announced again.
    let t0 = Instant::now();
    start_real_server(&mut lab, "d1");
    wait_hops(&lab, &["10.99.0.11", "10.99.0.12"], CHANGE);
    println!(
        "d1's real server up -> router has 2 next hops after {:.2?}",
        t0.elapsed()
    );

    // Someone deletes d1's route and adds one of "ours" by hand: the next
    // check (--drift-interval 1) repairs both.
    let t0 = Instant::now();
    lab.sh(
        "d1",
        &format!("ip route del blackhole {VIP}/32 table {TABLE} proto 18"),
    );
    lab.sh(
        "d1",
        &format!("ip route add blackhole 10.99.1.97/32 table {TABLE} proto 18"),
    );
    wait_hops(&lab, &["10.99.0.12"], CHANGE);
    wait_hops(&lab, &["10.99.0.11", "10.99.0.12"], CHANGE);
    lab.wait_for("the hand-made route to go", CHANGE, |l| {
        !l.sh("d1", &format!("ip route show table {TABLE}"))
            .contains("10.99.1.97")
    });
    println!(
        "d1's route deleted by hand -> repaired, 2 next hops again after {:.2?}",
        t0.elapsed()
    );

    // SIGTERM to d2's ipvsdir: withdrawn first, exit after the grace.
    let t0 = Instant::now();
    lab.signal_named("d2", "ipvsdir", libc::SIGTERM);
    let withdrawn = wait_hops(&lab, &["10.99.0.11"], CHANGE);
    let still_running = lab.running("d2", "ipvsdir");
    let mut exited = None;
    for _ in 0..200 {
        if !lab.running("d2", "ipvsdir") {
            exited = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.unwrap_or_else(|| panic!("d2's ipvsdir still runs\n{}", lab.logs()));
    println!(
        "SIGTERM to d2 (FRR): withdrawn at the router after {withdrawn:.2?}, ipvsdir exited after {exited:.2?}"
    );
    assert!(
        still_running,
        "d2's ipvsdir exited before its withdrawal reached the router"
    );
    assert!(
        exited >= Duration::from_secs(2),
        "the IPVS side was released before announce_withdraw_grace"
    );
    assert!(
        !lab.sh("d2", &format!("ip route show table {TABLE}"))
            .contains(VIP)
    );
    for line in lab.logs().lines().filter(|l| {
        ["nnounc", "ithdraw", "stale", "Stopping"]
            .iter()
            .any(|w| l.contains(w))
    }) {
        println!("  {line}");
    }
}

/// announce_track_instance in the full daemon (VRRP and checkers in one
/// process, `--no-ipvs`): the VIP is announced only once VI_1 is MASTER,
/// and withdrawn at stop. Route table 100 is the oracle.
#[test]
fn announce_track_instance_follows_vrrp_in_the_full_daemon() {
    let Some(mut lab) = Lab::up("anntrk", 1, &[]) else {
        return;
    };
    if !tool_or_skip("python3") {
        return;
    }
    start_real_server(&mut lab, "d1");
    // advert_int 3: BACKUP for about 9 s before it takes over, long
    // enough to see the VIP held back.
    let conf = format!(
        "global_defs {{
  announce_table {TABLE}
  announce_withdraw_grace 1
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 3
  virtual_ipaddress {{
    10.99.0.200/24 dev eth0
  }}
}}
virtual_server {VIP} 80 {{
  delay_loop 1
  announce
  announce_track_instance VI_1
  real_server 127.0.0.1 {RS_PORT} {{
    TCP_CHECK {{
      connect_timeout 1
      retry 0
    }}
  }}
}}
"
    );
    let file = lab.path("d1.conf");
    std::fs::write(&file, conf).expect("write config");
    let path = |f: &str| lab.path(f).display().to_string();
    let (file, health, vrrp, sock) = (
        path("d1.conf"),
        path("d1-health.json"),
        path("d1.json"),
        path("d1-ctl.sock"),
    );
    let bin = common::ipvsdir_bin();
    let t0 = Instant::now();
    lab.start(
        "d1",
        "ipvsdir",
        &bin,
        &[
            "--no-ipvs",
            "-n",
            "-l",
            "-f",
            &file,
            "--health-state",
            &health,
            "--vrrp-state",
            &vrrp,
            "--control-socket",
            &sock,
        ],
    );
    // (An empty table does not exist: `ip` says so and fails.)
    let routed = |l: &Lab| {
        l.sh(
            "d1",
            &format!("ip route show table {TABLE} 2>/dev/null || true"),
        )
        .contains(VIP)
    };
    lab.wait_for("the report to hold the VIP back", CHANGE, |l| {
        announced(l, "d1").is_some_and(|(a, why)| !a && why.contains("VI_1 is not MASTER"))
    });
    assert!(
        lab.state("d1", "VI_1").as_deref() != Some("MASTER") && !routed(&lab),
        "announced before VI_1 is MASTER"
    );
    println!("d1 reports: {:?}", announced(&lab, "d1"));
    lab.wait_state("d1", "VI_1", "MASTER", CONVERGE);
    let master = t0.elapsed();
    lab.wait_for("the VIP's route", CHANGE, routed);
    println!(
        "VI_1 MASTER after {master:.2?}, route in table {TABLE} after {:.2?}",
        t0.elapsed()
    );
    lab.signal_named("d1", "ipvsdir", libc::SIGTERM);
    let t0 = Instant::now();
    lab.wait_for("the route to go at stop", CHANGE, |l| !routed(l));
    println!("SIGTERM: route withdrawn after {:.2?}", t0.elapsed());
}

/// Make-before-break drains against real routing daemons: `ctl
/// drain-director` on d1 (BIRD), undone, then SIGTERM on d1; d2 (FRR)
/// carries the traffic meanwhile. The router is
/// BIRD 2 with the snippets' import filter (GRACEFUL_SHUTDOWN -> local
/// preference 0); its kernel route and `birdc show route all` are the
/// oracles.
#[test]
fn drain_director_moves_traffic_before_the_withdrawal() {
    let Some(mut lab) = Lab::up("anndrn", 2, &[]) else {
        return;
    };
    for t in [
        "bird",
        "birdc",
        "python3",
        "vtysh",
        "/usr/lib/frr/zebra",
        "/usr/lib/frr/bgpd",
    ] {
        if !tool_or_skip(t) {
            return;
        }
    }
    start_bird(&mut lab, "c", ROUTER_BIRD);
    start_real_server(&mut lab, "d1");
    start_bird(&mut lab, "d1", &director_bird(1));
    start_ipvsdir(&mut lab, "d1", &drain_conf());
    start_real_server(&mut lab, "d2");
    let _frr = start_frr(&mut lab, "d2", "10.99.0.12");
    start_ipvsdir(&mut lab, "d2", &drain_conf());
    let t = wait_hops(&lab, &["10.99.0.11", "10.99.0.12"], CONVERGE);
    println!("both directors announced: 2 next hops at the router after {t:.2?}");

    // d1 (BIRD): ctl drain-director.
    let t0 = Instant::now();
    let answer = ctl(&lab, "d1", "drain-director");
    println!("ctl drain-director: {answer}");
    assert!(answer.starts_with("draining"), "{answer}");
    let preferred = wait_hops(&lab, &["10.99.0.12"], CHANGE);
    lab.wait_for(
        "d1's path with GRACEFUL_SHUTDOWN at the router",
        CHANGE,
        |l| gshut_from(l, "d1"),
    );
    let marked = t0.elapsed();
    let table = lab.sh("d1", &format!("ip route show table {TABLE}"));
    assert!(
        table.contains(&format!("metric {DRAIN_METRIC}")) && table.lines().count() == 1,
        "one route, with the drain metric: {table}"
    );
    let kept = path_from(&lab, "d1").expect("d1's path");
    println!("router's path from draining d1:\n{kept}");
    assert!(
        next_hops(&lab) == ["10.99.0.12"] && path_from(&lab, "d1").is_some(),
        "the router keeps d1's path but prefers d2"
    );
    lab.wait_for("d1's report of the drain", CHANGE, |l| {
        drain_report(l, "d1") == Some(("draining".into(), "operator".into()))
    });
    let withdrawn = lab.wait_for("d1's path to go at the router", CHANGE, |l| {
        path_from(l, "d1").is_none()
    });
    let withdrawn = t0.elapsed().max(withdrawn);
    println!(
        "ctl drain-director on d1 (BIRD): router prefers d2 after {preferred:.2?}, sees GRACEFUL_SHUTDOWN/local_pref 0/MED {DRAIN_METRIC} by {marked:.2?}, d1's path withdrawn after {withdrawn:.2?} (announce_drain_time {DRAIN_TIME} s)"
    );
    assert!(
        withdrawn >= Duration::from_secs(DRAIN_TIME - 1),
        "withdrawn before announce_drain_time"
    );
    assert!(
        !lab.sh(
            "d1",
            &format!("ip route show table {TABLE} 2>/dev/null || true")
        )
        .contains(VIP)
    );
    lab.wait_for("d1's report of the withdrawal", CHANGE, |l| {
        drain_report(l, "d1") == Some(("withdrawn".into(), "operator".into()))
    });

    // Undone: both next hops again.
    let t0 = Instant::now();
    println!(
        "ctl undrain-director: {}",
        ctl(&lab, "d1", "undrain-director")
    );
    wait_hops(&lab, &["10.99.0.11", "10.99.0.12"], CHANGE);
    println!(
        "undrain on d1: 2 next hops again after {:.2?}",
        t0.elapsed()
    );
    lab.wait_for("d1's path without GRACEFUL_SHUTDOWN", CHANGE, |l| {
        path_from(l, "d1").is_some_and(|p| !p.contains("(65535,0)"))
    });

    // d1 (BIRD) again: SIGTERM drains first, then withdraws, then releases.
    // (FRR 8.4's `ip import-table` loses the prefix when the route it
    // imported leaves the table while the drain route stays, so d2 is not
    // drained here: see conf/frr-announce.conf.)
    let t0 = Instant::now();
    lab.signal_named("d1", "ipvsdir", libc::SIGTERM);
    let preferred = wait_hops(&lab, &["10.99.0.12"], CHANGE);
    lab.wait_for(
        "d1's path with GRACEFUL_SHUTDOWN at the router",
        CHANGE,
        |l| gshut_from(l, "d1"),
    );
    let marked = t0.elapsed();
    println!(
        "router's path from stopping d1:\n{}",
        path_from(&lab, "d1").unwrap_or_default()
    );
    lab.wait_for("d1's path to go at the router", CHANGE, |l| {
        path_from(l, "d1").is_none()
    });
    let withdrawn = t0.elapsed();
    let still_running = lab.running("d1", "ipvsdir");
    let mut exited = None;
    for _ in 0..400 {
        if !lab.running("d1", "ipvsdir") {
            exited = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.unwrap_or_else(|| panic!("d1's ipvsdir still runs\n{}", lab.logs()));
    println!(
        "SIGTERM to d1 (BIRD): router prefers d2 after {preferred:.2?}, sees GRACEFUL_SHUTDOWN/MED {DRAIN_METRIC} by {marked:.2?}, d1's path withdrawn after {withdrawn:.2?}, ipvsdir released and exited after {exited:.2?}"
    );
    assert!(
        withdrawn >= Duration::from_secs(DRAIN_TIME - 1),
        "withdrawn before announce_drain_time"
    );
    assert!(
        still_running,
        "d1's ipvsdir exited before its withdrawal reached the router"
    );
    assert!(
        exited >= Duration::from_secs(DRAIN_TIME + 2),
        "released before announce_drain_time + announce_withdraw_grace"
    );
    // The release is logged after the drain's withdrawal.
    let logs = std::fs::read_to_string(lab.path("d1-ipvsdir.log")).unwrap_or_default();
    let at = |w: &str| {
        logs.lines()
            .position(|l| l.contains(w))
            .unwrap_or_else(|| panic!("no `{w}` in d1's log\n{logs}"))
    };
    assert!(at("Drain over") < at("releasing the IPVS table"));
    for line in lab.logs().lines().filter(|l| {
        ["Drain", "rain-director", "releasing", "metric 4000"]
            .iter()
            .any(|w| l.contains(w))
    }) {
        println!("  {line}");
    }
}
