//! keepalived 2.2.7 as the oracle for what lands in the kernel: the same
//! configuration loaded by keepalived's checker process and by `ipvsdir -C`
//! must give the same IPVS table (`ipvsadm -S -n`: services, schedulers and
//! their flags, persistence, forwarding, weights, thresholds) and the same
//! timeouts. One VM boot; each tool alone in its own network namespace.
//! See tests/vm/lvs-diff.sh and tests/fixtures/lvs-diff/.

mod common;

use common::{ipvsdir_bin, repo, sections, vm_or_skip, vm_run_ok};

#[test]
fn ipvsdir_builds_the_table_keepalived_builds() {
    if !vm_or_skip() {
        return;
    }
    let fixtures = repo().join("tests/fixtures/lvs-diff");
    let args = vec![
        "--bin".into(),
        ipvsdir_bin(),
        "--file".into(),
        repo().join("tests/vm/lvs-diff.sh").display().to_string(),
        "--file".into(),
        format!("{}:lvs-diff", fixtures.display()),
    ];
    let s = sections(&vm_run_ok(&args, "sh lvs-diff.sh"));
    let mut files: Vec<String> = std::fs::read_dir(&fixtures)
        .expect("tests/fixtures/lvs-diff")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    files.sort();
    assert!(
        s.contains_key("lvs done"),
        "the VM script did not finish: {s:#?}"
    );
    let mut mismatches = Vec::new();
    for f in &files {
        let ka = &s[&format!("lvs {f} keepalived")];
        let ours = &s[&format!("lvs {f} ipvsdir")];
        let entries = ka
            .lines()
            .filter(|l| l.starts_with("-A") || l.starts_with("-a"))
            .count();
        let timeouts = ka
            .lines()
            .find(|l| l.starts_with("timeouts:"))
            .unwrap_or("");
        println!(
            "{f}: keepalived {entries} entries, {timeouts}: {}",
            if ka == ours { "same" } else { "DIFFERENT" }
        );
        if f.contains("timeouts") {
            assert!(
                timeouts.ends_with("7200 60 120"),
                "{f}: lvs_timeouts not applied: {timeouts}"
            );
        }
        assert!(
            entries > 0 || f.contains("sorry"),
            "{f}: keepalived made no table:\n{}",
            s[&format!("lvs {f} keepalived log")]
        );
        if ka != ours {
            mismatches.push(format!(
                "{f}:\n--- keepalived\n{ka}--- ipvsdir\n{ours}--- ipvsdir log\n{}",
                s[&format!("lvs {f} ipvsdir log")]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} files differ:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
}
