//! Real traffic through an IPVS NAT director that ipvsdir configured: a
//! client, the director and two busybox httpd real servers in network
//! namespaces inside the kernel VM (tests/vm/datapath.sh).

mod common;

use common::{repo, sections, vm_ipvsdir_bin, vm_or_skip, vm_run_ok};

#[test]
fn nat_and_dr_round_robin_and_counters_survive_a_weight_change() {
    if !vm_or_skip() {
        return;
    }
    let Some(ipvsdir) = vm_ipvsdir_bin() else {
        return;
    };
    let file = |p: &str| repo().join(p).display().to_string();
    let args = vec![
        "--bin".into(),
        ipvsdir,
        "--file".into(),
        file("tests/fixtures/ipvs/nat.conf"),
        "--file".into(),
        file("tests/fixtures/ipvs/dr.conf"),
        "--file".into(),
        file("tests/vm/datapath.sh"),
        "--file".into(),
        file("tests/vm/lab.sh"),
    ];
    let stdout = vm_run_ok(&args, "sh datapath.sh");
    let s = sections(&stdout);
    assert!(
        s["apply"].contains("3 operation(s) applied, 0 failed"),
        "{}",
        s["apply"]
    );

    // Every request answered, alternating between the two real servers.
    let answers: Vec<&str> = s["requests"].lines().collect();
    assert_eq!(answers.len(), 6);
    assert!(
        answers.iter().all(|a| *a == "rs1" || *a == "rs2"),
        "{answers:?}"
    );
    assert!(
        answers.windows(2).all(|w| w[0] != w[1]),
        "not round robin: {answers:?}"
    );

    // A weight change is one SET_DEST: the service's counters are untouched.
    assert!(s["weight change"].contains("1 operation(s) applied, 0 failed"));
    let conns = |sec: &str| -> Vec<String> {
        s[sec]
            .lines()
            .filter(|l| l.starts_with("TCP") || l.starts_with("  -> 10."))
            // `TCP addr conns ...` and `-> addr conns ...`: the third word.
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_string())
            .collect()
    };
    let before = conns("stats before");
    assert_eq!(before, vec!["6", "3", "3"], "{}", s["stats before"]);
    assert_eq!(conns("stats after"), before, "{}", s["stats after"]);
    let after: Vec<&str> = s["requests after"].lines().collect();
    assert!(
        after.iter().all(|a| *a == "rs1" || *a == "rs2"),
        "{after:?}"
    );
}
