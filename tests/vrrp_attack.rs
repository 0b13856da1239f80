//! A hostile sender on the directors' segment (issue 12's proof): the lab's
//! client namespace floods a VRRP pair (d1 MASTER, d2 BACKUP, v2, advert
//! interval 1 s) with bounded bursts from examples/vrrp_flood: random checksums,
//! truncated packets, a version and a type that do not exist, another VRID,
//! off-link TTL, lower-priority adverts at 1,000 a second and priority 0
//! from a stranger. For ipvsdir, each burst must leave the roles as they
//! were, be counted packet for packet under its reason in the status report,
//! log a bounded number of lines (one per reason per 10 s, then how many
//! were held back), and not be amplified (adverts and gratuitous ARPs per
//! second bounded, counted on the wire from the client); memory stays
//! within a few hundred KB. The same bursts then hit keepalived 2.2.7 in the
//! same lab; its figures are printed beside ours, not asserted.
//! Needs root (fails under CI=true without it, skips elsewhere).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::example_bin;
use common::lab::Lab;

const VIP: &str = "10.99.0.200";
const VRID: u8 = 51;
const ATTACKER: &str = "10.99.0.100";
const D1: &str = "10.99.0.11";
const LONG: Duration = Duration::from_secs(20);

fn config(prio: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {VRID}\n  \
         priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
    )
}

/// Where ipvsdir counts a burst's packets.
#[derive(Clone, Copy)]
enum Counter {
    /// The instance's `dropped[reason]`.
    Dropped(&'static str),
    /// The report's `unmatched_drops[reason]` (no instance could be named).
    Unmatched(&'static str),
    /// Accepted: `adverts_received`.
    Received,
}

struct Burst {
    kind: &'static str,
    count: u64,
    rate: u64,
    counter: Counter,
}

const BURSTS: [Burst; 8] = [
    Burst {
        kind: "checksum",
        count: 2000,
        rate: 1000,
        counter: Counter::Dropped("checksum"),
    },
    Burst {
        kind: "truncated",
        count: 2000,
        rate: 1000,
        counter: Counter::Unmatched("packet_length"),
    },
    Burst {
        kind: "version",
        count: 2000,
        rate: 1000,
        counter: Counter::Dropped("version"),
    },
    Burst {
        kind: "type",
        count: 2000,
        rate: 1000,
        counter: Counter::Dropped("invalid_type"),
    },
    Burst {
        kind: "vrid",
        count: 2000,
        rate: 1000,
        counter: Counter::Unmatched("not_our_vrid"),
    },
    Burst {
        kind: "ttl",
        count: 2000,
        rate: 1000,
        counter: Counter::Dropped("ttl"),
    },
    Burst {
        kind: "lower",
        count: 3000,
        rate: 1000,
        counter: Counter::Received,
    },
    Burst {
        kind: "zero",
        count: 2000,
        rate: 1000,
        counter: Counter::Dropped("priority_0_not_from_master"),
    },
];

/// What one burst did to one implementation.
#[derive(Debug, Default)]
struct Outcome {
    sent: u64,
    /// ipvsdir only: the packets counted under the burst's reason (d1).
    counted: Option<u64>,
    /// "Entering MASTER STATE" lines of d2 during the burst.
    takeovers: usize,
    /// d1 still master (holds the VIP) after the burst.
    d1_kept: bool,
    /// New log lines of d1 and d2 during the burst.
    log_lines: usize,
    /// From the client's view of the wire: d1's VRRP adverts and all ARP
    /// packets during the burst.
    adverts: usize,
    arps: usize,
    secs: f64,
    /// d1's resident memory after the burst (kB).
    rss: u64,
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn count_of(lab: &Lab, node: &str, counter: Counter) -> u64 {
    let Some(r) = lab.report(node) else { return 0 };
    let inst = r.instances.iter().find(|i| i.name == "VI_1");
    match counter {
        Counter::Dropped(k) => inst.and_then(|i| i.dropped.get(k).copied()).unwrap_or(0),
        Counter::Unmatched(k) => r.unmatched_drops.get(k).copied().unwrap_or(0),
        Counter::Received => inst.map_or(0, |i| i.adverts_received),
    }
}

fn takeovers(lab: &Lab, node: &str) -> usize {
    lab.log(node).matches("Entering MASTER STATE").count()
}

/// Runs every burst against the pair now running (`ours`: ipvsdir, whose
/// counters are read too).
fn bursts(lab: &Lab, flood: &Path, d1: Option<u32>, ours: bool) -> Vec<(&'static str, Outcome)> {
    let mut out = Vec::new();
    for b in &BURSTS {
        let before = ours.then(|| count_of(lab, "d1", b.counter));
        let (t0, l0) = (
            takeovers(lab, "d2"),
            lines(&lab.log_file("d1")) + lines(&lab.log_file("d2")),
        );
        let pcap = format!("/tmp/{}-{}.pcap", lab.prefix, b.kind);
        // The client's view of the wire while the burst runs and a moment
        // after (bounded by `timeout` should the test die).
        let capture = lab.sh(
            "c",
            &format!(
                "timeout {} tcpdump -i eth0 -n -U -w {pcap} 'arp or (ip proto 112 and src host {D1})' \
                 >/dev/null 2>&1 & echo $!",
                b.count / b.rate + 10
            ),
        );
        std::thread::sleep(Duration::from_millis(500)); // tcpdump is listening
        let started = Instant::now();
        let sent = lab.sh(
            "c",
            &format!(
                "{} {} --src {ATTACKER} --vrid {VRID} --vip {VIP} --count {} --rate {}",
                flood.display(),
                b.kind,
                b.count,
                b.rate
            ),
        );
        let elapsed = started.elapsed().as_secs_f64();
        let sent: u64 = sent
            .trim()
            .strip_prefix("sent ")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // What the burst set off, and the report's refresh (within a second).
        std::thread::sleep(Duration::from_millis(1200));
        let pid = capture.trim().to_string();
        lab.try_sh(
            "c",
            &format!("kill -INT {pid}; while kill -0 {pid} 2>/dev/null; do sleep 0.05; done"),
        );
        let wire = |filter: &str| {
            lab.sh(
                "c",
                &format!("tcpdump -n -r {pcap} '{filter}' 2>/dev/null | wc -l"),
            )
            .trim()
            .parse::<usize>()
            .unwrap_or(0)
        };
        let o = Outcome {
            sent,
            counted: before.map(|b0| count_of(lab, "d1", b.counter) - b0),
            takeovers: takeovers(lab, "d2") - t0,
            d1_kept: lab.has_addr("d1", VIP) && !lab.has_addr("d2", VIP),
            log_lines: lines(&lab.log_file("d1")) + lines(&lab.log_file("d2")) - l0,
            adverts: wire("ip proto 112"),
            arps: wire("arp"),
            secs: elapsed,
            rss: d1.and_then(rss_kb).unwrap_or(0),
        };
        let _ = std::fs::remove_file(&pcap);
        out.push((b.kind, o));
    }
    out
}

fn wait_roles(lab: &Lab) {
    let deadline = Instant::now() + LONG;
    while !lab.has_addr("d1", VIP) || lab.has_addr("d2", VIP) {
        assert!(
            Instant::now() < deadline,
            "d1 never became master\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few adverts, so d2 follows d1.
    std::thread::sleep(Duration::from_secs(3));
}

#[test]
fn floods_from_the_segment_neither_move_nor_swell_the_master() {
    let Some(flood) = example_bin("vrrp_flood") else {
        return;
    };
    let Some(mut lab) = Lab::up("attack", 2, &["tcpdump", "keepalived"]) else {
        return;
    };
    // The attacker's multicast goes out of its eth0.
    lab.sh("c", "ip route add 224.0.0.0/4 dev eth0");

    // ipvsdir
    lab.start_ipvsdir("d1", &config(150));
    lab.start_ipvsdir("d2", &config(100));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    lab.wait_state("d2", "VI_1", "BACKUP", LONG);
    wait_roles(&lab);
    let pid = lab.pid("d1").expect("d1 runs");
    let rss0 = rss_kb(pid).unwrap_or(0);
    let ours = bursts(&lab, &flood, Some(pid), true);
    let rss1 = rss_kb(pid).unwrap_or(0);
    // What was held back is reported once the period ends.
    std::thread::sleep(Duration::from_secs(11));
    let summaries = lab.log("d1").matches("similar dropped adverts").count();
    let our_log = lab.log("d1");
    lab.signal("d1", libc::SIGTERM);
    lab.signal("d2", libc::SIGTERM);
    lab.wait_exit("d1", LONG);
    lab.wait_exit("d2", LONG);

    // keepalived 2.2.7, the same bursts.
    lab.start_keepalived("d1", &config(150));
    lab.start_keepalived("d2", &config(100));
    wait_roles(&lab);
    let vrrp_pid = |node: &str| {
        std::fs::read_to_string(lab.path(&format!("{node}-vrrp.pid")))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    let ka_pid = vrrp_pid("d1");
    let ka0 = ka_pid.and_then(rss_kb).unwrap_or(0);
    let theirs = bursts(&lab, &flood, ka_pid, false);
    let ka1 = ka_pid.and_then(rss_kb).unwrap_or(0);

    println!(
        "{:<10} {:>6} | {:>7} {:>5} {:>5} {:>5} {:>6} {:>5} | {:>5} {:>5} {:>5} {:>6} {:>5}",
        "burst",
        "sent",
        "counted",
        "takov",
        "kept",
        "logs",
        "advts",
        "arps",
        "takov",
        "kept",
        "logs",
        "advts",
        "arps"
    );
    println!("{:<17} | ipvsdir{:<32} | keepalived 2.2.7", "", "");
    for ((kind, o), (_, k)) in ours.iter().zip(&theirs) {
        println!(
            "{kind:<10} {:>6} | {:>7} {:>5} {:>5} {:>5} {:>6} {:>5} {:>6} | {:>5} {:>5} {:>5} {:>6} {:>5} {:>6}   ({:.1} s / {:.1} s)",
            o.sent,
            o.counted.unwrap_or(0),
            o.takeovers,
            o.d1_kept,
            o.log_lines,
            o.adverts,
            o.arps,
            o.rss,
            k.takeovers,
            k.d1_kept,
            k.log_lines,
            k.adverts,
            k.arps,
            k.rss,
            o.secs,
            k.secs
        );
    }
    println!(
        "d1 RSS: ipvsdir {rss0} -> {rss1} kB ({:+} kB); keepalived's VRRP process {ka0} -> {ka1} kB ({:+} kB)",
        rss1 as i64 - rss0 as i64,
        ka1 as i64 - ka0 as i64
    );
    println!(
        "ipvsdir's 'similar dropped adverts ... not logged' lines after the bursts: {summaries}"
    );

    // ipvsdir's verdicts.
    let mut problems = Vec::new();
    let mut by_kind = BTreeMap::new();
    for (kind, o) in &ours {
        by_kind.insert(*kind, o);
        let b = BURSTS.iter().find(|b| b.kind == *kind).expect("burst");
        if o.sent != b.count {
            problems.push(format!("{kind}: the flood sent {} of {}", o.sent, b.count));
        }
        if o.counted != Some(o.sent) {
            problems.push(format!("{kind}: {} sent, {:?} counted", o.sent, o.counted));
        }
        if o.takeovers != 0 || !o.d1_kept {
            problems.push(format!(
                "{kind}: roles moved ({} takeovers, d1 kept the VIP: {})",
                o.takeovers, o.d1_kept
            ));
        }
        // One line per reason per 10 s on each director, a state line or
        // two; never one per packet.
        if o.log_lines > 6 {
            problems.push(format!("{kind}: {} log lines", o.log_lines));
        }
        // d1 advertises once a second; it answers a lower-priority master
        // at most once per advert interval (advert + a GARP burst).
        let window = o.secs + 2.5;
        if o.adverts as f64 > 2.0 * window + 2.0 {
            problems.push(format!(
                "{kind}: d1 sent {} adverts in {window:.1} s",
                o.adverts
            ));
        }
        if o.arps as f64 > 6.0 * window + 6.0 {
            problems.push(format!("{kind}: {} ARP packets in {window:.1} s", o.arps));
        }
    }
    // Memory: bounded once warm (the first bursts fill the allocator's
    // and the channels' buffers), and not growing with the packets: the
    // last four bursts, as many packets as the first four, add at most
    // 128 kB.
    if rss1.saturating_sub(rss0) > 1024 {
        problems.push(format!("d1's RSS grew from {rss0} to {rss1} kB"));
    }
    let mid = ours[3].1.rss;
    if rss1.saturating_sub(mid) > 128 {
        problems.push(format!(
            "d1's RSS still grew over the last four bursts: {mid} -> {rss1} kB"
        ));
    }
    if summaries == 0 {
        problems.push("no 'similar dropped adverts ... not logged' line after the bursts".into());
    }
    assert!(
        problems.is_empty(),
        "{}\n--- ipvsdir d1 log\n{our_log}",
        problems.join("\n")
    );
}
