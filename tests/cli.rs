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
