//! static_ipaddress, static_routes, static_rules (and an instance's
//! virtual_rules, set with its VIPs) in a network namespace
//! (scripts/netns-lab): present after start whatever the VRRP state,
//! changed by a reload where the file changed, gone after stop. `ip` is
//! the oracle. Needs root (fails under CI=true without it, skips elsewhere).

mod common;

use std::time::{Duration, Instant};

use common::lab::Lab;

const LONG: Duration = Duration::from_secs(20);

fn conf(addr: &str) -> String {
    format!(
        "static_ipaddress {{\n  {addr}/24 dev eth0\n}}\n\
         static_routes {{\n  10.98.0.0/16 dev eth0\n  blackhole 10.97.0.0/16\n}}\n\
         static_rules {{\n  from 10.99.7.0/24 table 100 priority 1000\n  from all fwmark 0x10/0xff priority 1001 table 101\n  \
         to 10.99.9.0/24 priority 1002 prohibit\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 61\n  priority 100\n  advert_int 1\n  \
         virtual_ipaddress {{\n    10.99.0.200/24 dev eth0\n  }}\n  \
         virtual_rules {{\n    from 10.99.0.200 table 200 priority 2000\n  }}\n}}\n"
    )
}

fn wait(lab: &Lab, what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while start.elapsed() < LONG {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}\n{}", lab.logs());
}

#[test]
fn static_addresses_routes_and_rules_live_from_start_to_stop() {
    let Some(mut lab) = Lab::up("static", 1, &[]) else {
        return;
    };
    let addrs = |lab: &Lab| lab.sh("d1", "ip -o addr show dev eth0");
    let routes = |lab: &Lab| lab.sh("d1", "ip route show");
    let rules = |lab: &Lab| lab.sh("d1", "ip rule show");
    lab.start_ipvsdir("d1", &conf("10.99.5.1"));
    wait(&lab, "the static address", || {
        addrs(&lab).contains("10.99.5.1/24")
    });
    // Not tied to VRRP: already there while the instance is BACKUP.
    let state = lab.state("d1", "VI_1");
    assert_ne!(
        state.as_deref(),
        Some("MASTER"),
        "checked before any takeover"
    );
    let r = routes(&lab);
    assert!(r.contains("10.98.0.0/16 dev eth0"), "{r}");
    assert!(r.contains("blackhole 10.97.0.0/16"), "{r}");
    let ru = rules(&lab);
    for want in [
        "1000:\tfrom 10.99.7.0/24 lookup 100",
        "1001:\tfrom all fwmark 0x10/0xff lookup 101",
        "1002:\tfrom all to 10.99.9.0/24 prohibit",
    ] {
        assert!(ru.contains(want), "{want:?} in\n{ru}\n{}", lab.logs());
    }
    // virtual_rules follow the VIPs: not while BACKUP.
    assert!(!ru.contains("lookup 200"), "{ru}");
    // VRRP's start does not take it for a stale VIP of ours.
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    assert!(addrs(&lab).contains("10.99.5.1/24"));
    wait(&lab, "the virtual rule", || {
        rules(&lab).contains("2000:\tfrom 10.99.0.200 lookup 200")
    });

    // A reload moves what changed only.
    std::fs::write(lab.path("d1.conf"), conf("10.99.5.2")).unwrap();
    lab.signal("d1", libc::SIGHUP);
    wait(&lab, "the reloaded static address", || {
        let a = addrs(&lab);
        a.contains("10.99.5.2/24") && !a.contains("10.99.5.1/24")
    });
    assert!(routes(&lab).contains("blackhole 10.97.0.0/16"));

    lab.signal("d1", libc::SIGTERM);
    lab.wait_exit("d1", Duration::from_secs(10));
    let (a, r) = (addrs(&lab), routes(&lab));
    assert!(!a.contains("10.99.5.2"), "{a}");
    assert!(
        !r.contains("10.98.0.0/16") && !r.contains("10.97.0.0/16"),
        "{r}"
    );
}
