//! The command line as an operator meets it: exit codes and messages.

use std::process::Command;

fn ipvsdir(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .args(args)
        .output()
        .expect("run ipvsdir");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_test_exit_codes() {
    let (code, _, err) = ipvsdir(&["-t", "-f", "conf/lvs-nat.conf"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("configuration OK (0 warnings)"), "{err}");
    let (code, _, err) = ipvsdir(&["-t", "-f", "tests/fixtures/broken/vrid-300.conf"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("vrid-300.conf:4:23: error: virtual_router_id 300 is out of range: use 1-255"),
        "{err}"
    );
    assert!(
        err.contains("1 error — the configuration cannot run"),
        "{err}"
    );
}

#[test]
fn dump_config_json_is_the_model() {
    let (code, out, err) = ipvsdir(&["-f", "conf/lvs-dr.conf", "--dump-config", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["virtual_servers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}

/// On a kernel without IPVS (like the build hosts') the IPVS commands say
/// so and exit 2. Elsewhere there is nothing to check here.
#[test]
fn without_ipvs_the_message_says_what_to_do() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("SKIP: this kernel has IPVS");
        return;
    }
    for args in [&["--dump"][..], &["-f", "conf/lvs-nat.conf", "--plan"][..]] {
        let (code, _, err) = ipvsdir(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("the kernel has no IPVS: load the ip_vs module"),
            "{err}"
        );
    }
}

/// `-C --no-ipvs` runs the checkers without the kernel table (this host may
/// have no IPVS at all): a listening real server is reported up, a closed
/// port down, and SIGTERM ends it cleanly.
#[test]
fn no_ipvs_checks_and_reports_without_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let open = listener.local_addr().expect("addr").port();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        l.local_addr().expect("addr").port()
    };
    let conf = dir.path().join("c.conf");
    std::fs::write(
        &conf,
        format!(
            "virtual_server 127.0.0.1 80 {{\n  delay_loop 1\n  lb_kind NAT\n  protocol TCP\n\
             real_server 127.0.0.1 {open} {{\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n\
             real_server 127.0.0.1 {closed} {{\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n"
        ),
    )
    .expect("write config");
    let health = dir.path().join("health.json");
    let sock = dir.path().join("ipvsdir.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .arg("-f")
        .arg(&conf)
        .args(["-C", "--no-ipvs", "-n", "-l", "--health-state"])
        .arg(&health)
        .arg("--control-socket")
        .arg(&sock)
        .arg("--owned-state")
        .arg(dir.path().join("owned"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ipvsdir");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        let r = ipvsdir::daemon::status::read(&health);
        let settled = r.as_ref().is_some_and(|r| {
            r.servers.len() == 2
                && r.servers
                    .iter()
                    .all(|s| s.checks.iter().all(|c| c.last_ok.is_some()))
        });
        if settled || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(stderr.contains("--no-ipvs"), "{stderr}");
    let report = report.unwrap_or_else(|| panic!("no health report\n{stderr}"));
    let up = |port: u16| {
        report
            .servers
            .iter()
            .find(|s| s.real_server == format!("127.0.0.1:{port}"))
            .map(|s| s.up)
    };
    assert_eq!(up(open), Some(true), "{report:?}");
    assert_eq!(up(closed), Some(false), "{report:?}");
    drop(listener);
}
