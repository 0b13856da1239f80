//! lvs_sync_daemon in the kernel VM: the IPVS connection-sync daemon
//! follows the VRRP roles (master on the VRRP master, backup on the
//! backup, swapped at failover, stopped at exit). See tests/vm/sync.sh.

mod common;

use common::{repo, sections, vm_ipvsdir_bin, vm_or_skip, vm_run_ok};

#[test]
fn sync_daemon_follows_vrrp() {
    if !vm_or_skip() {
        return;
    }
    let Some(ipvsdir) = vm_ipvsdir_bin() else {
        return;
    };
    let args = vec![
        "--bin".into(),
        ipvsdir,
        "--file".into(),
        repo().join("tests/vm/sync.sh").display().to_string(),
    ];
    let s = sections(&vm_run_ok(&args, "sh sync.sh"));
    let logs = &s["logs"];
    let line = |step: &str, node: &str| -> String {
        s[step]
            .lines()
            .find(|l| l.starts_with(&format!("{node}:")))
            .unwrap_or_default()
            .to_string()
    };
    let elected_d1 = line("elected", "d1");
    assert!(
        elected_d1.contains("master sync daemon (mcast=eth0, syncid=51,"),
        "{elected_d1}\n{logs}"
    );
    assert!(!elected_d1.contains("backup sync daemon"), "{elected_d1}");
    let elected_d2 = line("elected", "d2");
    assert!(
        elected_d2.contains("backup sync daemon (mcast=eth0, syncid=51,"),
        "{elected_d2}\n{logs}"
    );
    let after = line("after failover", "d2");
    assert!(after.contains("master sync daemon"), "{after}\n{logs}");
    assert!(
        !line("after stop", "d2").contains("sync daemon"),
        "{}",
        s["after stop"]
    );
}
