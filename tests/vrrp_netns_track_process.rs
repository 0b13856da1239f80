//! track_process on the VRRP side between real daemons in network
//! namespaces (scripts/netns-lab): a tracked process dying drops the
//! master's priority and the backup takes over; started again, the master
//! comes back. With the default weight 0 in a sync group, its death faults
//! every member, and `terminate_delay` rides out a quick restart. The
//! daemons run in network namespaces other than the initial one, where the
//! kernel's process connector never answers: they scan /proc (the
//! connector itself is tested in tests/track_process.rs). The same quorum
//! state given to Debian's keepalived 2.2.7 and to ipvsdir gives the same
//! priorities and FAULTs for each weight rule (a differential test). Needs
//! root (fails under CI=true without it, skips elsewhere).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::lab::Lab;

const VIP: &str = "10.99.0.210";
const VIP2: &str = "10.99.0.211";
const LONG: Duration = Duration::from_secs(20);

fn instance(name: &str, vrid: u8, prio: u8, extra: &str, vip: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int 1\n  {extra}\n  virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
    )
}

/// A copy of `sleep` under a short unique name, and its running copies.
struct Sleeper {
    path: PathBuf,
    name: String,
    running: Vec<Child>,
}

impl Sleeper {
    fn new(lab: &Lab, k: &str) -> Sleeper {
        let name = format!("tn{}{k}", std::process::id() % 100_000);
        let path = lab.path(&name);
        std::fs::copy("/bin/sleep", &path).unwrap();
        Sleeper {
            path,
            name,
            running: Vec::new(),
        }
    }

    fn start(&mut self) {
        self.running
            .push(Command::new(&self.path).arg("1000").spawn().unwrap());
    }

    fn kill_one(&mut self) {
        if let Some(mut c) = self.running.pop() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Exactly `n` running.
    fn set(&mut self, n: usize) {
        while self.running.len() > n {
            self.kill_one();
        }
        while self.running.len() < n {
            self.start();
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.set(0);
    }
}

#[test]
fn a_dying_process_hands_over_and_back() {
    let Some(mut lab) = Lab::up("tproc", 2, &[]) else {
        return;
    };
    let mut web = Sleeper::new(&lab, "w");
    web.start();
    let d1 = format!(
        "vrrp_track_process web {{\n  process {}\n  weight -60\n}}\n{}",
        web.name,
        instance("VI_1", 61, 150, "track_process {\n    web\n  }", VIP)
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &instance("VI_1", 61, 100, "", VIP));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 150);
    let quorum = |lab: &Lab| {
        lab.report("d1").and_then(|r| {
            r.processes
                .first()
                .map(|p| (p.name.clone(), p.quorum.clone()))
        })
    };
    assert_eq!(quorum(&lab), Some(("web".into(), "up".into())));

    // the process dies: 150 - 60 = 90, below the backup's 100
    web.kill_one();
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 90);
    assert_eq!(quorum(&lab), Some(("web".into(), "down".into())));
    assert!(lab.has_addr("d2", VIP));
    let log = lab.log("d1");
    assert!(log.contains("Quorum lost for tracked process web"), "{log}");
    assert!(
        log.contains("Changing effective priority from 150 to 90"),
        "{log}"
    );

    // started again: 150, d1 preempts
    web.start();
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 150);
    assert!(lab.has_addr("d1", VIP));
}

#[test]
fn weight_0_faults_the_sync_group_and_terminate_delay_rides_out_a_restart() {
    let Some(mut lab) = Lab::up("tpgrp", 2, &[]) else {
        return;
    };
    let mut gate = Sleeper::new(&lab, "g");
    gate.start();
    let d1 = format!(
        "vrrp_track_process gate {{\n  process {}\n  terminate_delay 4\n}}\n{}{}\
         vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n  track_process {{\n    gate\n  }}\n}}\n",
        gate.name,
        instance("VI_1", 62, 150, "", VIP),
        instance("VI_2", 63, 150, "", VIP2),
    );
    let d2 = format!(
        "{}{}",
        instance("VI_1", 62, 100, "", VIP),
        instance("VI_2", 63, 100, "", VIP2)
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &d2);
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_2", "MASTER", LONG);

    // killed and started again within terminate_delay: never down
    gate.kill_one();
    std::thread::sleep(Duration::from_millis(500));
    gate.start();
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("MASTER"));
        assert_eq!(lab.state("d1", "VI_2").as_deref(), Some("MASTER"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!lab.log("d1").contains("Quorum lost"), "{}", lab.log("d1"));

    // killed for good: FAULT (weight 0) for both members, after the delay
    let t0 = Instant::now();
    gate.kill_one();
    lab.wait_state("d1", "VI_1", "FAULT", LONG);
    let took = t0.elapsed();
    lab.wait_state("d1", "VI_2", "FAULT", LONG);
    lab.wait_state("d2", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_2", "MASTER", LONG);
    assert!(took >= Duration::from_millis(3500), "FAULT after {took:?}");

    // back: the group leaves FAULT and preempts
    gate.start();
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d1", "VI_2", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
}

/// keepalived 2.2.7 in a network namespace other than the initial one
/// cannot follow processes at all: its connector subscription is refused
/// ("Failed to set/clear process event listen - errno 111") and it counts
/// no process, ever. That still compares the rules: with no process
/// running, the quorum is lost (default quorum 1) or met (`quorum_max 0`),
/// and each weight / reverse / override must give the same priority or
/// FAULT in both. Each case starts both daemons afresh.
#[test]
fn the_same_quorum_gives_keepalived_s_priorities_and_faults() {
    let Some(mut lab) = Lab::up("tpdiff", 2, &["keepalived"]) else {
        return;
    };
    let p = Sleeper::new(&lab, "k");
    let mut cases: Vec<(String, String)> = Vec::new();
    for met in [false, true] {
        for w in [
            "weight 10",
            "weight -10",
            "weight 0",
            "weight 10 reverse",
            "weight -10 reverse",
            "weight 0 reverse",
        ] {
            let block = if met {
                format!("quorum_max 0\n  {w}")
            } else {
                w.to_string()
            };
            cases.push((block, "k".into()));
        }
        let q = if met { "quorum_max 0\n  " } else { "" };
        cases.push((format!("{q}weight -30 reverse"), "k weight 30".into()));
        cases.push((
            format!("{q}weight -30 reverse"),
            "k weight 30 noreverse".into(),
        ));
        cases.push((format!("{q}weight 30"), "k weight -20 reverse".into()));
    }
    for (block, track) in &cases {
        let conf = |vrid: u8, vip: &str| {
            format!(
                "vrrp_track_process k {{\n  process {}\n  {block}\n}}\n{}",
                p.name,
                instance(
                    "VI_1",
                    vrid,
                    100,
                    &format!("track_process {{\n    {track}\n  }}"),
                    vip
                )
            )
        };
        let (c1, c2) = (conf(71, VIP), conf(72, VIP2));
        lab.start_keepalived("d1", &c1);
        lab.start_ipvsdir("d2", &c2);
        lab.wait_for("both daemons up", Duration::from_secs(10), |l| {
            l.instance("d2", "VI_1").is_some()
                && std::fs::read_to_string(l.path("d1-vrrp.pid")).is_ok()
        });
        std::thread::sleep(Duration::from_millis(1500));
        let (kstate, kprio) = lab.keepalived_view("d1").expect("keepalived's dump");
        let fault = kstate == "FAULT";
        lab.wait_for(
            &format!("ipvsdir to match keepalived ({kstate}, {kprio}) for {block:?} / {track:?}"),
            Duration::from_secs(5),
            |l| {
                l.instance("d2", "VI_1").is_some_and(|i| {
                    (i.state == "FAULT") == fault
                        && (fault || u32::from(i.effective_priority) == kprio)
                })
            },
        );
        println!("{block:?} / {track:?}: keepalived {kstate} {kprio}, ipvsdir the same");
        lab.signal("d1", libc::SIGKILL);
        lab.wait_exit("d1", Duration::from_secs(10));
        lab.signal("d2", libc::SIGTERM);
        lab.wait_exit("d2", Duration::from_secs(10));
        let _ = std::fs::remove_file(lab.path("d1-vrrp.pid"));
        let _ = std::fs::remove_file(lab.state_file("d2"));
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A reload does not pause the adverts while the process watcher is opened
/// again (it opens in the background: where the kernel never answers the
/// subscription, its 500 ms ack timeout would otherwise hold them; here,
/// outside the initial namespace, it is refused at once and /proc is
/// scanned): with VRRPv3 at advert_int 0.3 (Master_Down_Interval about
/// 1 s; shorter ones lose adverts to a loaded CI host whatever ipvsdir
/// does), three SIGHUPs leave the master master and the backup backup, and
/// the tracked process keeps its state across them; a fourth that adds a
/// block faults nothing.
#[test]
fn a_reload_keeps_advertising_while_the_process_watcher_opens() {
    let Some(mut lab) = Lab::up("tprel", 2, &[]) else {
        return;
    };
    let mut web = Sleeper::new(&lab, "r");
    web.start();
    let fast = |prio: u8, extra: &str| {
        instance("VI_1", 62, prio, extra, VIP).replace("advert_int 1", "advert_int 0.3")
    };
    let v3 = "global_defs {\n  vrrp_version 3\n}\n";
    let d1 = format!(
        "{v3}vrrp_track_process web {{\n  process {}\n  weight -60\n}}\n{}",
        web.name,
        fast(150, "track_process {\n    web\n  }")
    );
    lab.start_ipvsdir("d1", &d1);
    lab.start_ipvsdir("d2", &format!("{v3}{}", fast(100, "")));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    for _ in 0..3 {
        lab.signal("d1", libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let (log1, log2) = (lab.log("d1"), lab.log("d2"));
    assert_eq!(
        log1.matches("VRRP: reloaded").count(),
        3,
        "three reloads: {log1}"
    );
    assert!(
        !log2.contains("Entering MASTER STATE"),
        "the backup took over during a reload:\n{}",
        lab.logs()
    );
    assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("MASTER"));
    assert_eq!(lab.instance("d1", "VI_1").unwrap().effective_priority, 150);
    assert!(
        !log1.contains("Changing effective priority") && !log1.contains(" WARN "),
        "the process kept its state: {log1}"
    );
    // A reload that adds a block (its first scan is done before the switch):
    // no FAULT, no priority change.
    let d1 = format!(
        "{v3}vrrp_track_process web {{\n  process {}\n  weight -60\n}}\nvrrp_track_process web2 {{\n  process {}\n}}\n{}",
        web.name,
        web.name,
        fast(150, "track_process {\n    web\n    web2\n  }")
    );
    std::fs::write(lab.path("d1.conf"), d1).unwrap();
    lab.signal("d1", libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(1500));
    let log1 = lab.log("d1");
    assert_eq!(log1.matches("VRRP: reloaded").count(), 4, "{log1}");
    assert!(
        !log1.contains("Entering FAULT") && !log1.contains("Changing effective priority"),
        "{log1}"
    );
    assert!(!lab.log("d2").contains("Entering MASTER STATE"));
}
