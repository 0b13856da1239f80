//! `ipvsdir -C` (health checks driving IPVS) end to end in the kernel VM:
//! busybox httpd real servers in namespaces are stopped and started, and
//! the kernel table (read with ipvsadm) and a client's answers follow;
//! genhash agrees with md5sum; /metrics shows the kernel's LVS counters.
//! See tests/vm/checks.sh.

mod common;

use common::{repo, sections, vm_ipvsdir_bin, vm_or_skip, vm_run_ok};

#[test]
fn checkers_drive_the_kernel_table() {
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
    // The kernel's connection entries of the 4 requests (2 per real server),
    // named as the health report names services and real servers.
    let c = &j["connections"][0];
    assert_eq!(c["service"], "TCP 192.168.10.100:80", "{j}");
    for rs in ["10.0.0.11:80", "10.0.0.12:80"] {
        let r = c["real_servers"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["real_server"] == rs))
            .unwrap_or_else(|| panic!("{rs} has no connection counts: {j}"));
        let n = r["active"].as_u64().unwrap_or(0) + r["inactive"].as_u64().unwrap_or(0);
        assert!((1..=2).contains(&n), "{rs}: {n} connection entries: {j}");
    }

    // /metrics: the kernel's counters for the 4 requests (2 per real
    // server, rr), with gen2brain/keepalived_exporter's names and labels.
    let m = metrics(&s["all up metrics"]);
    let vip = r#"{addr="192.168.10.100:80",proto="6"}"#;
    assert_eq!(
        m.get(&format!("keepalived_lvs_vip_conn{vip}")),
        Some(&4.0),
        "{m:#?}"
    );
    for name in ["in_packets", "out_packets", "in_bytes", "out_bytes"] {
        let v = m.get(&format!("keepalived_lvs_vip_{name}{vip}"));
        assert!(v.is_some_and(|v| *v > 0.0), "{name}: {m:#?}");
    }
    for rs in ["10.0.0.11:80", "10.0.0.12:80"] {
        let l = format!(r#"{{addr="{rs}",proto="6",vip="192.168.10.100:80"}}"#);
        assert_eq!(
            m.get(&format!("keepalived_lvs_rs_conn{l}")),
            Some(&2.0),
            "{m:#?}"
        );
        for name in ["in_packets", "out_packets", "in_bytes", "out_bytes"] {
            let v = m.get(&format!("keepalived_lvs_rs_{name}{l}"));
            assert!(v.is_some_and(|v| *v > 0.0), "{rs} {name}: {m:#?}");
        }
        let ours = format!(r#"real_server="{rs}",service="TCP 192.168.10.100:80""#);
        for kind in ["configured", "live"] {
            let w = m.get(&format!(
                r#"ipvsdir_real_server_weight{{kind="{kind}",{ours}}}"#
            ));
            assert_eq!(w, Some(&1.0), "{kind} {rs}: {m:#?}");
        }
        // Both connections are over (ipvsadm's InActConn, TIME_WAIT).
        let conns = |n: &str| m.get(&format!("ipvsdir_real_server_{n}_connections{{{ours}}}"));
        let (active, inactive) = (conns("active"), conns("inactive"));
        assert!(
            active.zip(inactive).is_some_and(|(a, i)| a + i == 2.0),
            "{rs}: {active:?} {inactive:?}"
        );
    }
    assert_eq!(m.get("ipvsdir_lvs_read_ok"), Some(&1.0), "{m:#?}");
    assert!(
        m.contains_key(r#"ipvsdir_netlink_errors_total{family="ipvs"}"#),
        "{m:#?}"
    );
    promtool_clean(&s["all up metrics"]);

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
            && l.contains("): HTTP_GET: url /index.html: connection refused")),
        "{h}"
    );

    // Its configured weight stays; nothing of it in the kernel's counters.
    let m = &s["rs1 down metrics"];
    assert!(
        m.contains(r#"ipvsdir_real_server_weight{kind="configured",real_server="10.0.0.11:80",service="TCP 192.168.10.100:80"} 1"#),
        "{m}"
    );
    assert!(
        !m.contains(r#"kind="live",real_server="10.0.0.11:80""#),
        "{m}"
    );
    assert!(!m.contains(r#"addr="10.0.0.11:80""#), "{m}");
    // rs2 took the step's requests too (counted up to 2 s late).
    let rs2 = metrics(m)
        .get(r#"keepalived_lvs_rs_conn{addr="10.0.0.12:80",proto="6",vip="192.168.10.100:80"}"#)
        .copied();
    assert!(rs2.is_some_and(|n| n >= 2.0), "{m}");

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

/// The samples of a metrics text: `name{labels}` -> value.
fn metrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// `promtool check metrics` finds nothing but the exporter's counters
/// without `_total` (skipped without promtool, unless CI=true).
fn promtool_clean(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but promtool is not installed"
        );
        eprintln!("SKIP promtool: not installed (Debian's prometheus package)");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in findings.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("keepalived_lvs_")
                && line.ends_with(" counter metrics should have \"_total\" suffix"),
            "promtool check metrics:\n{findings}"
        );
    }
}
