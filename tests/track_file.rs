//! track_file against a running daemon: FILE_CHECK on loopback (`-C
//! --no-ipvs`, no root; the status document shows the decision) with the
//! file written in place, replaced by a rename, deleted and created again.
//! The VRRP side (a master handing over when the file drops its priority)
//! is in tests/vrrp_netns_track_file.rs.

mod common;

use common::daemon::{Daemon, listener};
use serde_json::Value;

fn rs<'a>(s: &'a Value, addr: &str) -> &'a Value {
    s["health"]["virtual_servers"][0]["real_servers"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["real_server"] == addr))
        .unwrap_or(&Value::Null)
}

#[test]
fn file_check_follows_the_file_while_the_daemon_runs() {
    let files = tempfile::tempdir().unwrap();
    let gate = files.path().join("gate");
    let scale = files.path().join("scale");
    std::fs::write(&gate, "0\n").unwrap();
    let (_l1, p1) = listener();
    let (_l2, p2) = listener();
    let (_l3, p3) = listener();
    let conf = format!(
        "track_file gate {{\n file {}\n weight 0\n}}\n\
         vrrp_track_file scale {{\n file {}\n init_file 1\n}}\n\
         virtual_server 127.0.0.1 80 {{\n delay_loop 1\n lb_kind NAT\n protocol TCP\n\
         real_server 127.0.0.1 {p1} {{\n  weight 3\n  FILE_CHECK {{\n   track_file gate\n  }}\n }}\n\
         real_server 127.0.0.1 {p2} {{\n  weight 10\n  FILE_CHECK {{\n   track_file scale\n   weight 5\n  }}\n }}\n\
         real_server 127.0.0.1 {p3} {{\n  FILE_CHECK {{\n   track_file gate\n   weight 0 reverse\n  }}\n }}\n}}\n",
        gate.display(),
        scale.display()
    );
    let d = Daemon::start(&conf, &[]);
    let (a, b) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    // tracks the same file (one watch for both), reversed: 0 is down
    let c = format!("127.0.0.1:{p3}");
    // init_file created `scale` with 1: weight 10 + 1 * 5
    let s = d.wait_status(10, |s| {
        rs(s, &a)["state"] == "up" && rs(s, &b)["table_weight"] == 15
    });
    assert_eq!(rs(&s, &a)["table_weight"], 3, "{s}");
    assert_eq!(rs(&s, &c)["state"], "down", "{s}");
    assert_eq!(std::fs::read_to_string(&scale).unwrap().trim(), "1");

    // weight 0: a non-zero value takes the real server down, written in place
    std::fs::write(&gate, "1\n").unwrap();
    let s = d.wait_status(5, |s| {
        rs(s, &a)["state"] == "down" && rs(s, &c)["state"] == "up"
    });
    assert!(
        rs(&s, &a)["reasons"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("FILE_CHECK: ") && r.contains("holds 1")),
        "{s}"
    );
    // ... and back up when replaced by a rename (an editor, `mv`)
    let tmp = files.path().join("gate.tmp");
    std::fs::write(&tmp, "0").unwrap();
    std::fs::rename(&tmp, &gate).unwrap();
    d.wait_status(5, |s| {
        rs(s, &a)["state"] == "up" && rs(s, &c)["state"] == "down"
    });
    // deleted: read as 0, still up; created again with 5: down
    std::fs::remove_file(&gate).unwrap();
    std::fs::write(&gate, "5").unwrap();
    d.wait_status(5, |s| rs(s, &a)["state"] == "down");

    // weighted: the value moves the IPVS weight from the configured one
    std::fs::write(&scale, "-1").unwrap();
    d.wait_status(5, |s| rs(s, &b)["table_weight"] == 5);
    std::fs::write(&scale, "-4").unwrap();
    let s = d.wait_status(5, |s| rs(s, &b)["table_weight"] == 0);
    assert_eq!(
        rs(&s, &b)["up"],
        true,
        "weight 0 is quiesced, not down: {s}"
    );
    // below -65535: down
    std::fs::write(&scale, "-20000").unwrap();
    d.wait_status(5, |s| rs(s, &b)["state"] == "down");
    std::fs::write(&scale, "2").unwrap();
    d.wait_status(5, |s| {
        rs(s, &b)["state"] == "up" && rs(s, &b)["table_weight"] == 20
    });
    // the other real server was not touched
    let s = d.status().unwrap();
    assert_eq!(rs(&s, &a)["state"], "down", "{s}");
    common::daemon::validate_status(&s);
    d.stop();
}
