//! `ipvsdir -C` (health checks driving IPVS) end to end in the kernel VM:
//! busybox httpd real servers in namespaces are stopped and started, and
//! the kernel table (read with ipvsadm) and a client's answers follow;
//! genhash agrees with md5sum. See tests/vm/checks.sh.

mod common;

use common::{ipvsdir_bin, repo, sections, vm_or_skip, vm_run_ok};

#[test]
fn checkers_drive_the_kernel_table() {
    if !vm_or_skip() {
        return;
    }
    let args = vec![
        "--bin".into(),
        ipvsdir_bin(),
        "--file".into(),
        repo().join("tests/vm/checks.sh").display().to_string(),
        "--file".into(),
        repo().join("tests/vm/lab.sh").display().to_string(),
    ];
    let s = sections(&vm_run_ok(&args, "sh checks.sh"));
    let answers = |step: &str| -> Vec<String> {
        s[&format!("{step} answers")]
            .lines()
            .map(String::from)
            .collect()
    };
    let table = |step: &str| s[&format!("{step} table")].clone();

    // genhash prints the MD5 that md5sum computes for the page.
    let g: Vec<&str> = s["genhash"].lines().collect();
    let digest = g[0].split_whitespace().last().unwrap();
    assert!(g[1].starts_with(digest), "{g:?}");
    assert_eq!(digest.len(), 32);

    assert!(table("all up").contains("10.0.0.11:80") && table("all up").contains("10.0.0.12:80"));
    let a = answers("all up");
    assert!(
        a.contains(&"rs1".into()) && a.contains(&"rs2".into()),
        "{a:?}"
    );

    // --dump --health: the kernel table annotated with the checkers' view.
    let h = &s["all up health"];
    assert!(
        h.starts_with(&table("all up")[..table("all up").find("TCP  ").unwrap()]),
        "{h}"
    );
    assert!(
        h.contains("     health: up since ")
            && h.contains("HTTP_GET: ok (HTTP 200, digest matches)"),
        "{h}"
    );
    assert!(h.contains("TCP_CHECK: connected"), "{h}");
    // -C answers on its status socket like the full daemon: the status document.
    let j: serde_json::Value = serde_json::from_str(&s["all up json"]).unwrap();
    assert!(j["pid"].as_u64().is_some(), "{j}");
    assert_eq!(j["version"], 1, "{j}");
    let rs = &j["health"]["virtual_servers"][0]["real_servers"][0];
    assert_eq!(rs["state"], "up", "{j}");
    assert_eq!(rs["table_weight"], rs["weight"], "{j}");

    // HTTP_GET fails: rs1 out of the table, no client request fails.
    assert!(
        !table("rs1 down").contains("10.0.0.11:80"),
        "{}",
        table("rs1 down")
    );
    assert_eq!(answers("rs1 down"), vec!["rs2"; 4]);
    // --dump still shows it, out of the table, with when and why.
    let h = &s["rs1 down health"];
    assert!(
        h.lines().any(|l| l.starts_with("  -- 10.0.0.11:80")
            && l.contains("out of the table: DOWN since ")
            && l.contains("; HTTP_GET: url /index.html: connection refused")),
        "{h}"
    );

    // Both down: quorum lost, the sorry server answers.
    let t = table("all down");
    assert!(
        t.contains("10.0.0.13:80") && !t.contains("10.0.0.12:80"),
        "{t}"
    );
    assert_eq!(answers("all down"), vec!["sorry"; 4]);

    // rs1 back: quorum regained, sorry server out.
    let t = table("rs1 back");
    assert!(
        t.contains("10.0.0.11:80") && !t.contains("10.0.0.13:80"),
        "{t}"
    );
    assert_eq!(answers("rs1 back"), vec!["rs1"; 4]);

    // Drain: weight 0 while a connection it holds finishes; no request
    // fails and none goes to it; disable takes it out, enable puts it back.
    assert!(
        s["drain ctl"].contains("[10.0.0.11]:tcp:80 of VS [192.168.10.100]:tcp:80: draining"),
        "{}",
        s["drain ctl"]
    );
    assert!(
        s["drain conns"].contains("10.0.0.11:80"),
        "no held connection on rs1:\n{}",
        s["drain conns"]
    );
    let t = &s["drain table"];
    assert!(
        t.lines()
            .any(|l| l.contains("10.0.0.11:80") && l.split_whitespace().nth(3) == Some("0")),
        "rs1 not at weight 0:\n{t}"
    );
    assert!(
        s["drain health"].contains("health: DRAINING"),
        "{}",
        s["drain health"]
    );
    assert_eq!(answers("drain"), vec!["rs2"; 20]);
    assert_eq!(s["drain held"], "rs1\nrs2\n", "a held connection was cut");
    assert!(
        s["disabled health"]
            .lines()
            .any(|l| l.starts_with("  -- 10.0.0.11:80") && l.contains("DISABLED by operator")),
        "{}",
        s["disabled health"]
    );
    assert_eq!(answers("disabled"), vec!["rs2"; 4]);
    assert!(
        s["enabled table"].contains("10.0.0.11:80"),
        "{}",
        s["enabled table"]
    );

    // SIGTERM: exit 0 and our service removed.
    assert_eq!(s["exit"].trim(), "status 0");
    assert!(
        !s["after stop"].contains("192.168.10.100"),
        "{}",
        s["after stop"]
    );
    // notify_down ran when rs2 went down, notify_up when it came back for the drain.
    assert_eq!(s["notify"], "rs2 down\nrs2 up\n");
    let log = &s["log"];
    for line in [
        "Removing service [10.0.0.11]:tcp:80 from VS [192.168.10.100]:tcp:80: url /index.html: connection refused",
        "Lost quorum 1 for VS [192.168.10.100]:tcp:80",
        "Adding service [10.0.0.11]:tcp:80 to VS [192.168.10.100]:tcp:80",
        "IPVS: ipvsadm -D -t 192.168.10.100:80",
    ] {
        assert!(log.contains(line), "{line:?} missing from:\n{log}");
    }
}
