//! An instance whose interface does not exist yet, as keepalived treats it:
//! the daemon stays up with the instance in FAULT, and when the interface
//! appears (a veth created in the director's namespace) the instance
//! leaves FAULT and advertises on it; deleted and created again, the same.
//! tcpdump on the veth's other end is the oracle for the adverts. Set
//! down (not deleted), FAULT too, and MASTER again once up.
//! Needs root (fails under CI=true without it, skips elsewhere).

mod common;

use std::time::Duration;

use common::lab::Lab;

const LONG: Duration = Duration::from_secs(20);
const VIP: &str = "10.98.0.200";

const CONFIG: &str = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth9\n  virtual_router_id 61\n  \
    priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.98.0.200/24\n  }\n}\n";

/// eth9 in d1, its peer eth9c in the client (10.98.0.2), both up; eth9
/// gets 10.98.0.1 before it is up, or with `address_later` only after.
fn create_eth9(lab: &Lab, address_later: bool) {
    let (d1, c) = (lab.ns("d1"), lab.ns("c"));
    let address = format!("ip -n {d1} addr add 10.98.0.1/24 dev eth9");
    common::netns::sh(&format!(
        "ip -n {d1} link add eth9 type veth peer name eth9c netns {c} && \
         ip -n {c} addr replace 10.98.0.2/24 dev eth9c && \
         ip -n {c} link set eth9c up"
    ));
    if !address_later {
        common::netns::sh(&address);
    }
    common::netns::sh(&format!("ip -n {d1} link set eth9 up"));
    if address_later {
        // No link event follows an address: the driver's retry finds it.
        lab.wait_for("the instance to find eth9 without an address", LONG, |l| {
            l.log("d1").contains("eth9 has no IPv4 address")
        });
        assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("FAULT"));
        common::netns::sh(&address);
    }
}

/// Two adverts of VRID 61 at priority 150 seen on the client's end.
fn adverts_seen(lab: &Lab) -> String {
    let out = lab.sh(
        "c",
        "timeout 10 tcpdump -n -l -i eth9c -c 2 vrrp 2>/dev/null",
    );
    assert!(
        out.lines()
            .filter(|l| l.contains("vrid 61, prio 150"))
            .count()
            == 2,
        "{out}\n{}",
        lab.logs()
    );
    out
}

#[test]
fn an_instance_waits_in_fault_for_its_interface_and_runs_when_it_appears() {
    let Some(mut lab) = Lab::up("noif", 1, &["tcpdump"]) else {
        return;
    };
    lab.start_ipvsdir("d1", CONFIG);
    lab.wait_state("d1", "VI_1", "FAULT", LONG);
    // Still running a while later (it used to exit 2), still in FAULT.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.state("d1", "VI_1").as_deref(), Some("FAULT"));
    let log = lab.log("d1");
    assert!(
        log.contains("VRRP_Instance(VI_1) interface eth9 not found; waiting for it"),
        "{log}"
    );
    assert!(
        log.contains("VRRP_Instance(VI_1) Entering FAULT STATE"),
        "{log}"
    );
    assert_eq!(
        log.matches("not found; waiting for it").count(),
        1,
        "said once: {log}"
    );
    assert!(!lab.has_addr("d1", VIP));

    create_eth9(&lab, false);
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    assert!(
        lab.log("d1")
            .contains("VRRP_Instance(VI_1) Entering BACKUP STATE")
    );
    assert!(lab.has_addr("d1", VIP));
    let seen = adverts_seen(&lab);
    assert!(seen.contains("10.98.0.1 > 224.0.0.18"), "{seen}");

    // Deleted: FAULT again (the VIP went with the interface); created
    // again (another index), up before it has an address: a new socket
    // once the address is there, MASTER, adverts.
    common::netns::sh(&format!("ip -n {} link del eth9", lab.ns("d1")));
    lab.wait_state("d1", "VI_1", "FAULT", LONG);
    // The link's down notice can put it in FAULT a moment before the
    // removal is seen (a loaded host): wait for the line, bounded.
    lab.wait_for("the removal's log line", LONG, |l| {
        l.log("d1")
            .contains("VRRP_Instance(VI_1) interface eth9 was removed; waiting for it")
    });
    create_eth9(&lab, true);
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    assert!(lab.has_addr("d1", VIP));
    adverts_seen(&lab);
    let log = lab.log("d1");
    assert_eq!(
        log.matches("has no IPv4 address").count(),
        1,
        "each reason said once: {log}"
    );

    // Set down (not deleted): the instance's own interface is tracked as
    // keepalived tracks it (no dont_track_primary): FAULT, VIP gone; up
    // again: MASTER.
    let d1 = lab.ns("d1");
    common::netns::sh(&format!("ip -n {d1} link set eth9 down"));
    lab.wait_state("d1", "VI_1", "FAULT", LONG);
    assert!(!lab.has_addr("d1", VIP));
    common::netns::sh(&format!("ip -n {d1} link set eth9 up"));
    lab.wait_state("d1", "VI_1", "MASTER", LONG);
    assert!(lab.has_addr("d1", VIP));
    adverts_seen(&lab);
    println!("{}", lab.log("d1"));
}
