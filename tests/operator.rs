//! Run-time control (`ipvsdir ctl drain|disable|enable|weight`) against a
//! running daemon on loopback (`-C --no-ipvs`: the core decides the table as
//! with IPVS; the status document shows the decision). The commands are
//! root only; the kernel VM test (tests/vm_checks.rs) drains under traffic.

mod common;

use common::daemon::{Daemon, is_root, listener};
use serde_json::Value;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI=true but not root: operator commands are root only"
    );
    eprintln!("SKIP: operator commands are root only");
    false
}

fn conf(a: u16, b: u16) -> String {
    format!(
        "virtual_server 127.0.0.1 80 {{\n delay_loop 1\n lb_kind NAT\n protocol TCP\n\
         real_server 127.0.0.1 {a} {{\n  weight 3\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n\
         real_server 127.0.0.1 {b} {{\n  weight 2\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n}}\n\
         virtual_server 127.0.0.1 443 {{\n lb_kind NAT\n protocol TCP\n\
         real_server 127.0.0.1 {a} {{\n }}\n}}\n"
    )
}

/// The real server `addr` of the first virtual server in the status document.
fn rs<'a>(s: &'a Value, addr: &str) -> &'a Value {
    s["health"]["virtual_servers"][0]["real_servers"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["real_server"] == addr))
        .unwrap_or(&Value::Null)
}

fn ctl(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["ctl"];
    all.extend_from_slice(args);
    let out = d.cli(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn drain_weight_disable_and_enable_at_run_time_and_across_a_reload() {
    if !root_or_skip() {
        return;
    }
    let (_l1, p1) = listener();
    let (_l2, p2) = listener();
    let d = Daemon::start(&conf(p1, p2), &[]);
    let (a, b) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    d.wait_status(10, |s| {
        rs(s, &a)["state"] == "up" && rs(s, &b)["state"] == "up"
    });

    // The address is in two virtual servers: the command must name one.
    let (ok, _, err) = ctl(&d, &["drain", &a]);
    assert!(!ok);
    assert!(err.contains("name one with --vs"), "{err}");

    let (ok, out, err) = ctl(&d, &["drain", &a, "--vs", "127.0.0.1:80"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("[127.0.0.1]:tcp:{p1} of VS [127.0.0.1]:tcp:80: draining (weight 0)")
    );
    let s = d.wait_status(5, |s| rs(s, &a)["state"] == "draining");
    assert_eq!(rs(&s, &a)["table_weight"], 0);
    assert_eq!(rs(&s, &a)["operator"], "drain");
    assert!(d.log().contains(&format!(
        "Operator: draining [127.0.0.1]:tcp:{p1} of VS [127.0.0.1]:tcp:80"
    )));

    // A reload keeps it.
    std::fs::write(&d.conf, conf(p1, p2).replace("weight 2", "weight 5")).unwrap();
    d.signal("HUP");
    let s = d.wait_status(10, |s| rs(s, &b)["table_weight"] == 5);
    assert_eq!(rs(&s, &a)["state"], "draining", "{s}");

    let (ok, _, err) = ctl(&d, &["weight", &b, "9"]);
    assert!(ok, "{err}");
    d.wait_status(5, |s| {
        rs(s, &b)["table_weight"] == 9 && rs(s, &b)["operator"]["weight"] == 9
    });

    let (ok, _, err) = ctl(&d, &["disable", &a, "--vs", "tcp 127.0.0.1:80"]);
    assert!(ok, "{err}");
    let s = d.wait_status(5, |s| rs(s, &a)["state"] == "disabled");
    assert_eq!(rs(&s, &a)["table_weight"], Value::Null);
    for who in [&a, &b] {
        let (ok, _, err) = ctl(&d, &["enable", who, "--vs", "127.0.0.1:80"]);
        assert!(ok, "{err}");
    }
    let s = d.wait_status(5, |s| {
        rs(s, &a)["state"] == "up" && rs(s, &b)["table_weight"] == 5
    });
    assert_eq!(rs(&s, &a)["operator"], Value::Null);

    // Wrong requests say what to do, and change nothing.
    let (ok, _, err) = ctl(&d, &["drain", "127.0.0.9"]);
    assert!(!ok);
    assert!(
        err.contains("no real server 127.0.0.9 in the configuration"),
        "{err}"
    );
    let (ok, _, err) = ctl(&d, &["drain", "web1"]);
    assert!(!ok);
    assert!(err.contains("not a real server address"), "{err}");
    d.stop();
}

#[test]
fn persisted_overrides_come_back_after_a_restart() {
    if !root_or_skip() {
        return;
    }
    let (_l1, p1) = listener();
    let (_l2, p2) = listener();
    let text = conf(p1, p2);
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("overrides.json");
    let persist = format!("--persist-overrides={}", file.display());
    let b = format!("127.0.0.1:{p2}");
    let d = Daemon::start(&text, &[&persist]);
    d.wait_status(10, |s| rs(s, &b)["state"] == "up");
    let (ok, _, err) = ctl(&d, &["drain", &b]);
    assert!(ok, "{err}");
    d.wait_status(5, |s| rs(s, &b)["state"] == "draining");
    d.stop();
    assert!(
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .contains("\"drain\""),
        "{file:?} not written"
    );

    let again = Daemon::start(&text, &[&persist]);
    again.wait_status(10, |s| rs(s, &b)["state"] == "draining");
    again.stop();

    // Without the flag, a restart starts clean.
    let clean = Daemon::start(&text, &[]);
    clean.wait_status(10, |s| rs(s, &b)["state"] == "up");
}

#[test]
fn the_status_document_is_version_1_with_every_configured_server() {
    let (_l1, p1) = listener();
    let down = common::daemon::free_port();
    let d = Daemon::start(&conf(p1, down), &[]);
    let s = d.wait_status(10, |s| {
        rs(s, &format!("127.0.0.1:{down}"))["state"] == "down"
    });
    assert_eq!(s["version"], 1);
    assert!(
        s["generated"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{s}"
    );
    let vs = &s["health"]["virtual_servers"];
    assert_eq!(vs.as_array().map(Vec::len), Some(2), "{s}");
    assert_eq!(vs[0]["name"], "[127.0.0.1]:tcp:80");
    assert_eq!(vs[0]["services"][0], "TCP 127.0.0.1:80");
    let down = rs(&s, &format!("127.0.0.1:{down}"));
    assert_eq!(down["up"], false);
    assert_eq!(down["table_weight"], Value::Null);
    assert!(
        down["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("TCP_CHECK: ")),
        "{down}"
    );
    assert!(
        down["since"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{down}"
    );
    assert_eq!(vs[1]["real_servers"][0]["state"], "up", "no checker: up");
    common::daemon::validate_status(&s);
}
