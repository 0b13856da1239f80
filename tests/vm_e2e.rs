//! Issue 6's end-to-end scenarios in the kernel VM (tests/vm/e2e.sh): a
//! client, two directors d1/d2 each running `ipvsdir -f CONF -n -l` in its own
//! network namespace (each with its own IPVS table), VRRP between them, and
//! real servers running Debian's nginx. One VM boot per scenario group; the
//! boots of this file take turns (a lock), so they do not share the CPU.
//!
//! The tests assert behaviour (who is MASTER and holds the VIPs, which MAC
//! the client's ARP entry points at, what `ipvsadm -Ln` shows, how many
//! client requests failed where none may) and print the figures (client
//! counts, takeover and detection times, the VM's wall time); they never
//! assert on speed.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{e2e_boot, kv, repo, vm_ipvsdir_bin, vm_or_skip};

/// The nginx binary scripts/kernel-vm/setup extracted from Debian's package.
fn nginx_or_skip() -> Option<PathBuf> {
    let cache = std::env::var_os("IPVSDIR_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/kernel-vm"));
    let nginx = cache.join("nginx/usr/sbin/nginx");
    if nginx.is_file() {
        return Some(nginx);
    }
    let why = format!(
        "{} is missing: run scripts/kernel-vm/setup",
        nginx.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("nginx required under CI=true: {why}");
    }
    eprintln!("SKIP: {why}");
    None
}

type Sections = BTreeMap<String, String>;

/// Boots the VM once for `scenario` (`sh e2e.sh SCENARIO`); its sections, or
/// None when the VM cannot run here.
fn run(scenario: &str) -> Option<Sections> {
    if !vm_or_skip() {
        return None;
    }
    let ipvsdir = vm_ipvsdir_bin()?;
    let nginx = nginx_or_skip()?;
    let args: Vec<String> = vec![
        "--mem".into(),
        "1024".into(),
        "--timeout".into(),
        "420".into(),
        "--bin".into(),
        ipvsdir,
        "--bin".into(),
        nginx.display().to_string(),
        "--file".into(),
        format!("{}:e2e", repo().join("tests/fixtures/e2e").display()),
    ];
    Some(e2e_boot(&args, &format!("sh e2e.sh {scenario}")).0)
}

/// The client's counts: "sent N ok N failed N ANSWER=N ...".
#[derive(Debug, Default)]
struct Counts {
    sent: u32,
    ok: u32,
    failed: u32,
    answers: BTreeMap<String, u32>,
}

impl Counts {
    fn parse(line: &str) -> Counts {
        let mut c = Counts::default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                "sent" | "ok" | "failed" => {
                    let n = words
                        .get(i + 1)
                        .and_then(|w| w.parse().ok())
                        .unwrap_or_else(|| panic!("bad counts: {line}"));
                    match words[i] {
                        "sent" => c.sent = n,
                        "ok" => c.ok = n,
                        _ => c.failed = n,
                    }
                    i += 2;
                }
                w => {
                    let (k, n) = w
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad counts: {line}"));
                    c.answers.insert(k.to_string(), n.parse().unwrap());
                    i += 1;
                }
            }
        }
        c
    }
}

/// A section's counts line `key`.
fn counts(s: &Sections, section: &str, key: &str) -> Counts {
    let k = kv(&s[section]);
    Counts::parse(
        k.get(key)
            .unwrap_or_else(|| panic!("no {key:?} in section {section}:\n{}", s[section])),
    )
}

/// The answers of a burst section, one per line.
fn answers(s: &Sections, section: &str) -> Vec<String> {
    s[section].lines().map(String::from).collect()
}

/// `ipvsadm -Ln`'s real servers: (address:port, forward, weight).
fn dests(table: &str) -> Vec<(String, String, u32)> {
    table
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first() == Some(&"->") && w.get(1) != Some(&"RemoteAddress:Port")).then(|| {
                (
                    w[1].to_string(),
                    w[2].to_string(),
                    w[3].parse().expect("weight"),
                )
            })
        })
        .collect()
}

fn dest_addrs(table: &str) -> Vec<String> {
    dests(table).into_iter().map(|d| d.0).collect()
}

fn assert_log_has(s: &Sections, node: &str, what: &str) {
    let log = &s[&format!("log {node}")];
    assert!(
        log.contains(what),
        "{what:?} missing from {node}'s log:\n{log}"
    );
}

/// Checks one director failover section (see `failover` in e2e.sh).
fn check_failover(s: &Sections, name: &str, instances: &[&str], hosts: &[&str]) {
    let k = kv(&s[name]);
    let all = counts(s, name, "client");
    let after = counts(s, name, "after takeover");
    println!(
        "{name}: VRRP takeover {} s after the kill, client ARP moved after {} s, client outage {} s; client {all:?}; after the takeover {after:?}",
        k["takeover"], k["client arp moved"], k["outage"]
    );
    for i in instances {
        assert_eq!(k[&format!("d2 {i}")], "MASTER", "{}", s[name]);
    }
    for h in hosts {
        assert_eq!(k[&format!("arp {h}")], "d2", "{}", s[name]);
    }
    // The client's requests resumed: none started after the takeover failed.
    assert!(after.sent > 0, "{}", s[name]);
    assert_eq!(
        after.failed,
        0,
        "{}\n{}",
        s[name],
        s[&format!("{name} log")]
    );
}

/// Checks one preemption section (see `preempt_end` in e2e.sh).
fn check_preempt(s: &Sections, name: &str, instances: &[&str], first_host: &str) {
    let k = kv(&s[name]);
    let all = counts(s, name, "client");
    let after = counts(s, name, "after preempt");
    println!(
        "{name}: d1 MASTER again {} s after it came back; client {all:?}; after the preemption {after:?}",
        k["master again"]
    );
    for i in instances {
        assert_eq!(k[&format!("d1 {i}")], "MASTER", "{}", s[name]);
        assert_eq!(k[&format!("d2 {i}")], "BACKUP", "{}", s[name]);
    }
    assert_eq!(k[&format!("arp {first_host}")], "d1", "{}", s[name]);
    assert!(after.sent > 0, "{}", s[name]);
    assert_eq!(
        after.failed,
        0,
        "{}\n{}",
        s[name],
        s[&format!("{name} log")]
    );
}

/// Both directors stopped with SIGTERM: exit 0, no IPVS service left.
fn check_stop(s: &Sections, stop: &str, tables: &[&str]) {
    let st = &s[stop];
    assert!(st.contains("d1 exit 0") && st.contains("d2 exit 0"), "{st}");
    for t in tables {
        assert!(!s[*t].contains("TCP "), "{t}:\n{}", s[*t]);
    }
}

// ---------------------------------------------------------------------------

/// Scenario 1: the LVS-NAT pair (tests/fixtures/e2e/nat.conf).
#[test]
fn lvs_nat_pair_balances_drops_and_restores_real_servers_and_fails_over() {
    let Some(s) = run("nat") else { return };
    let start = kv(&s["start"]);
    for i in ["VI_EXT", "VI_INT"] {
        assert_eq!(start[&format!("d1 {i}")], "MASTER", "{}", s["start"]);
        assert_eq!(start[&format!("d2 {i}")], "BACKUP", "{}", s["start"]);
    }
    assert!(
        s["start"].contains("d1 holds 192.168.10.100")
            && s["start"].contains("d1 holds 10.0.0.1")
            && !s["start"].contains("d2 holds"),
        "{}",
        s["start"]
    );
    // Both directors keep the table (the backup's is ready for a takeover).
    let full = vec![
        ("10.0.0.11:80".to_string(), "Masq".to_string(), 3),
        ("10.0.0.12:80".to_string(), "Masq".to_string(), 2),
        ("10.0.0.13:80".to_string(), "Masq".to_string(), 1),
    ];
    assert_eq!(dests(&s["start table d1"]), full, "{}", s["start table d1"]);
    assert_eq!(dests(&s["start table d2"]), full, "{}", s["start table d2"]);

    // wrr 3/2/1 over two rounds.
    let a = answers(&s, "balance");
    let n = |who: &str| a.iter().filter(|x| *x == who).count();
    println!("balance: {a:?}");
    assert_eq!((n("rs1"), n("rs2"), n("rs3")), (6, 4, 2), "{a:?}");

    // rs2 stops: removed, and no request started after that fails.
    let k = kv(&s["rs2 down"]);
    let after = counts(&s, "rs2 down", "after removal");
    println!(
        "rs2 stopped: out of d1's table after {} s (delay_loop 1 + retry 1 x delay_before_retry 1 = 2 s, plus the check's own time); client {:?}; after the removal {after:?}",
        k["removed after"],
        counts(&s, "rs2 down", "client")
    );
    assert!(after.sent > 0 && after.failed == 0, "{}", s["rs2 down log"]);
    assert!(!after.answers.contains_key("rs2"), "{after:?}");
    for t in ["rs2 down table d1", "rs2 down table d2"] {
        assert_eq!(
            dest_addrs(&s[t]),
            ["10.0.0.11:80", "10.0.0.13:80"],
            "{}",
            s[t]
        );
    }

    // rs2 returns: back in the rotation.
    println!("rs2 back in after {} s", kv(&s["rs2 back"])["added after"]);
    let a = answers(&s, "rs2 back answers");
    assert!(a.iter().all(|x| x.starts_with("rs")), "{a:?}");
    assert!(a.contains(&"rs2".to_string()), "{a:?}");

    // All real servers stop: the sorry server answers.
    println!(
        "all real servers stopped: sorry server in after {} s",
        kv(&s["all down"])["sorry after"]
    );
    assert_eq!(
        dest_addrs(&s["all down table d1"]),
        ["10.0.0.250:80"],
        "{}",
        s["all down table d1"]
    );
    assert_eq!(answers(&s, "all down answers"), vec!["sorry"; 4]);
    assert_eq!(
        dests(&s["all back table d1"]),
        full,
        "{}",
        s["all back table d1"]
    );

    // The master director dies: d2 takes both VIPs and serves from its table.
    check_failover(&s, "failover", &["VI_EXT", "VI_INT"], &["192.168.10.100"]);
    let k = kv(&s["failover vips"]);
    assert_eq!(k["d2 holds 192.168.10.100"], "yes");
    assert_eq!(k["d2 holds 10.0.0.1"], "yes");
    assert_eq!(dests(&s["failover table d2"]), full);
    let conns: u64 = s["failover stats d2"]
        .lines()
        .find(|l| l.starts_with("TCP"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|w| w.parse().ok())
        .expect("service line");
    assert!(conns > 0, "{}", s["failover stats d2"]);
    let a = answers(&s, "failover answers");
    assert!(a.iter().all(|x| x.starts_with("rs")), "{a:?}");

    // The master comes back and preempts; d2 lets both VIPs go.
    check_preempt(&s, "preempt", &["VI_EXT", "VI_INT"], "192.168.10.100");
    let k = kv(&s["preempt vips"]);
    assert_eq!(k["d1 holds 192.168.10.100"], "yes");
    assert_eq!(k["d2 holds 192.168.10.100"], "no");
    assert_eq!(k["d2 holds 10.0.0.1"], "no");
    assert_eq!(dests(&s["preempt table d1"]), full);
    let a = answers(&s, "preempt answers");
    assert!(a.iter().all(|x| x.starts_with("rs")), "{a:?}");
    // The restarted daemon found the VIPs its killed predecessor left.
    assert_log_has(&s, "d1", "removing protocol VIPs left on eth0");

    check_stop(&s, "stop", &["stop table d1", "stop table d2"]);
    let addrs = &s["stop addrs"];
    assert!(
        !addrs.contains("192.168.10.100") && !addrs.contains("10.0.0.1/"),
        "{addrs}"
    );
}

/// Scenario 2: the LVS-DR pair (tests/fixtures/e2e/dr.conf).
#[test]
fn lvs_dr_pair_balances_drops_a_real_server_and_fails_over() {
    let Some(s) = run("dr") else { return };
    let start = kv(&s["start"]);
    assert_eq!(start["d1 VI_DR"], "MASTER");
    assert_eq!(start["d2 VI_DR"], "BACKUP");
    assert!(s["start"].contains("d1 holds 192.168.20.100") && !s["start"].contains("d2 holds"));
    let full = vec![
        ("192.168.20.21:80".to_string(), "Route".to_string(), 1),
        ("192.168.20.22:80".to_string(), "Route".to_string(), 1),
    ];
    assert_eq!(dests(&s["start table d1"]), full, "{}", s["start table d1"]);
    assert_eq!(dests(&s["start table d2"]), full, "{}", s["start table d2"]);

    // rr: alternating answers straight from the real servers; the client's
    // ARP entry for the VIP is the director's (arp_ignore on the real servers).
    let a = answers(&s, "balance");
    println!("balance: {a:?}");
    assert_eq!(a.len(), 8);
    assert!(a.iter().all(|x| x == "rs1" || x == "rs2"), "{a:?}");
    assert!(a.windows(2).all(|w| w[0] != w[1]), "not round robin: {a:?}");
    assert_eq!(kv(&s["balance neigh"])["arp 192.168.20.100"], "d1");

    let k = kv(&s["rs1 down"]);
    let after = counts(&s, "rs1 down", "after removal");
    println!(
        "rs1 stopped: out of d1's table after {} s; client {:?}; after the removal {after:?}",
        k["removed after"],
        counts(&s, "rs1 down", "client")
    );
    assert!(after.sent > 0 && after.failed == 0, "{}", s["rs1 down log"]);
    assert_eq!(after.answers.keys().collect::<Vec<_>>(), ["rs2"]);
    assert_eq!(dest_addrs(&s["rs1 down table d1"]), ["192.168.20.22:80"]);
    println!("rs1 back in after {} s", kv(&s["rs1 back"])["added after"]);
    let a = answers(&s, "rs1 back answers");
    assert!(
        a.contains(&"rs1".to_string()) && a.contains(&"rs2".to_string()),
        "{a:?}"
    );

    check_failover(&s, "failover", &["VI_DR"], &["192.168.20.100"]);
    assert_eq!(kv(&s["failover vips"])["d2 holds 192.168.20.100"], "yes");
    assert_eq!(dests(&s["failover table d2"]), full);
    let a = answers(&s, "failover answers");
    assert!(a.iter().all(|x| x == "rs1" || x == "rs2"), "{a:?}");

    check_preempt(&s, "preempt", &["VI_DR"], "192.168.20.100");
    let k = kv(&s["preempt vips"]);
    assert_eq!(k["d1 holds 192.168.20.100"], "yes");
    assert_eq!(k["d2 holds 192.168.20.100"], "no");
    let a = answers(&s, "preempt answers");
    assert!(a.iter().all(|x| x == "rs1" || x == "rs2"), "{a:?}");

    check_stop(&s, "stop", &["stop table d1", "stop table d2"]);
}

/// Scenario 3: three reloads under load (tests/fixtures/e2e/reload.conf).
#[test]
fn reload_under_load_changes_only_the_intended_entries() {
    let Some(s) = run("reload") else { return };
    // The client: no request failed, the held connections were untouched.
    let client = counts(&s, "reload client", "client");
    println!("reload: client {client:?}");
    assert!(client.sent > 0, "{}", s["reload client"]);
    assert_eq!(client.failed, 0, "{}", s["reload log"]);
    for line in s["holds"].lines() {
        println!("reload: {line}");
        let w: Vec<&str> = line.split_whitespace().collect();
        // hold1: sent N responses N answers rsX=N
        assert_eq!(w[1], "sent");
        assert_eq!(w[2], w[4], "a held connection lost requests: {line}");
        assert_eq!(
            w.len(),
            7,
            "a held connection moved between real servers: {line}"
        );
        assert!(w[2].parse::<u32>().unwrap() > 5, "{line}");
    }
    let held_before: Vec<&str> = s["held before"].lines().collect();
    assert!(held_before.len() >= 3, "{}", s["held before"]);
    let held_after = &s["held after"];
    for c in &held_before {
        assert!(
            held_after.lines().any(|l| l == *c),
            "held connection {c} gone after the reloads:\n{held_after}"
        );
    }

    // ipvsadm -Ln after each reload: exactly the intended change, the
    // service itself untouched (same line, its connection counter only grows).
    let start = kv(&s["reload 0"]);
    assert_eq!(
        start["d1 dests"],
        "10.0.0.11:80 Masq 1, 10.0.0.12:80 Masq 1"
    );
    let service = start["d1 service"].clone();
    let mut conns = 0u64;
    let mut failures = Vec::new();
    for (step, what) in [
        (1, "rs1's weight 1 -> 3"),
        (2, "rs3 added"),
        (3, "rs2 removed: draining at weight 0"),
    ] {
        let k = kv(&s[&format!("reload {step}")]);
        let applied = match k["applied after"].as_str() {
            "never" => "not applied within 15 s".to_string(),
            t => format!("applied after {t} s"),
        };
        println!(
            "reload {step} ({what}): {applied}; d1 now {}",
            k["d1 dests"]
        );
        assert_eq!(k["d1 service"], service, "reload {step}");
        let c: u64 = k["d1 service conns"].parse().unwrap();
        assert!(
            c >= conns,
            "reload {step}: service counters reset ({c} < {conns})"
        );
        conns = c;
        if k["d1 dests"] != k["wanted"] || k["d2 dests"] != k["wanted"] {
            failures.push(format!(
                "reload {step} ({what}): wanted {}, d1 shows {}, d2 shows {}",
                k["wanted"], k["d1 dests"], k["d2 dests"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the IPVS tables did not follow the reloads:\n{}\nd1's log:\n{}",
        failures.join("\n"),
        s["log d1"]
    );
}

/// Scenario 4: the seed topologies, the tomcat pair and the nginx
/// master/master pair (tests/fixtures/e2e/tomcat.conf, nginx-mm.conf).
#[test]
fn seed_topologies_tomcat_pair_and_nginx_master_master() {
    let Some(s) = run("seeds") else { return };

    // Tomcat pair: d1 is MASTER and runs the front service, d2 does not.
    let k = kv(&s["tomcat start"]);
    assert_eq!(k["d1 VI_TOMCAT"], "MASTER priority 101");
    assert_eq!(k["d2 VI_TOMCAT"], "BACKUP priority 99");
    assert_eq!(k["d1 front"], "running");
    assert_eq!(k["d2 front"], "stopped");
    assert_eq!(k["d1 notify"], "stop start");
    assert_eq!(answers(&s, "tomcat start answers"), vec!["tomcat-d1"; 4]);

    // Tomcat dies on d1: 3 failed checks, 101 - 5 < 99, d2 takes over and
    // its notify_master starts its front; d1's notify_backup stops its own.
    let k = kv(&s["tomcat down"]);
    let after = counts(&s, "tomcat down", "after handover");
    println!(
        "tomcat down on d1: d2 MASTER after {} s, its front up after {} s; client {:?}; after that {after:?}",
        k["handover"],
        k["front up"],
        counts(&s, "tomcat down", "client")
    );
    assert_eq!(k["d1 VI_TOMCAT"], "BACKUP priority 96");
    assert_eq!(k["d2 VI_TOMCAT"], "MASTER priority 99");
    assert_eq!(k["d1 front"], "stopped");
    assert_eq!(k["d2 front"], "running");
    assert_eq!(k["d1 notify"], "stop start stop");
    assert_eq!(k["d2 notify"], "stop start");
    assert_eq!(k["arp 192.168.30.100"], "d2");
    assert!(
        after.sent > 0 && after.failed == 0,
        "{}",
        s["tomcat down log"]
    );
    assert_eq!(after.answers.keys().collect::<Vec<_>>(), ["tomcat-d2"]);

    // Tomcat back: 2 good checks, d1 preempts and the fronts swap back.
    let k = kv(&s["tomcat back"]);
    let after = counts(&s, "tomcat back", "after preempt");
    println!(
        "tomcat back on d1: d1 MASTER after {} s, its front up after {} s; client {:?}; after that {after:?}",
        k["master again"],
        k["front up"],
        counts(&s, "tomcat back", "client")
    );
    assert_eq!(k["d1 VI_TOMCAT"], "MASTER priority 101");
    assert_eq!(k["d2 VI_TOMCAT"], "BACKUP priority 99");
    assert_eq!(k["d1 front"], "running");
    assert_eq!(k["d2 front"], "stopped");
    assert_eq!(k["d1 notify"], "stop start stop start");
    assert_eq!(k["d2 notify"], "stop start stop");
    assert_eq!(k["arp 192.168.30.100"], "d1");
    assert!(
        after.sent > 0 && after.failed == 0,
        "{}",
        s["tomcat back log"]
    );
    assert_eq!(after.answers.keys().collect::<Vec<_>>(), ["tomcat-d1"]);
    let st = &s["tomcat stop"];
    assert!(st.contains("d1 exit 0") && st.contains("d2 exit 0"), "{st}");

    // nginx master/master: each director MASTER of one VIP.
    let k = kv(&s["mm start"]);
    assert_eq!(k["d1 VI_1"], "MASTER");
    assert_eq!(k["d1 VI_2"], "BACKUP");
    assert_eq!(k["d2 VI_1"], "BACKUP");
    assert_eq!(k["d2 VI_2"], "MASTER");
    assert_eq!(
        answers(&s, "mm start answers"),
        ["nginx-d1", "nginx-d1", "nginx-d2", "nginx-d2"]
    );
    // d1 dies: d2 holds both VIPs and answers on both.
    check_failover(
        &s,
        "mm-failover",
        &["VI_1"],
        &["192.168.40.61", "192.168.40.62"],
    );
    let k = kv(&s["mm-failover vips"]);
    assert_eq!(k["d2 VI_2"], "MASTER");
    assert_eq!(k["d2 holds 192.168.40.61"], "yes");
    assert_eq!(k["d2 holds 192.168.40.62"], "yes");
    assert_eq!(answers(&s, "mm failover answers"), vec!["nginx-d2"; 4]);
    // d1 back: MASTER of its VIP again, d2 keeps its own.
    check_preempt(&s, "mm-preempt", &["VI_1"], "192.168.40.61");
    let k = kv(&s["mm-preempt vips"]);
    assert_eq!(k["d1 VI_2"], "BACKUP");
    assert_eq!(k["d2 VI_2"], "MASTER");
    assert_eq!(k["d1 holds 192.168.40.61"], "yes");
    assert_eq!(k["d2 holds 192.168.40.61"], "no");
    assert_eq!(k["d2 holds 192.168.40.62"], "yes");
    assert_eq!(
        answers(&s, "mm preempt answers"),
        ["nginx-d1", "nginx-d1", "nginx-d2", "nginx-d2"]
    );
    let st = &s["mm stop"];
    assert!(st.contains("d1 exit 0") && st.contains("d2 exit 0"), "{st}");
}
