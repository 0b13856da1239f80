//! `lvs_sysctl` and the `-t` warnings for announced virtual servers whose
//! settings would reset connections when the routers' ECMP moves them.

mod common;
use ipvsdir::config::{LoadOptions, load_str, normalized};

/// `line:col: severity: message` of every diagnostic.
fn diags(text: &str) -> Vec<String> {
    common::located(&load_str("t.conf", text, &LoadOptions::default()).diagnostics)
}

fn vs(body: &str) -> String {
    format!(
        "global_defs {{\n    announce_table 100\n}}\nvirtual_server 10.0.0.1 80 {{\n{body}    announce\n    real_server 10.0.1.1 80 {{\n    }}\n}}\n"
    )
}

#[test]
fn an_announced_wlc_nat_persistent_service_gets_one_warning_per_trap() {
    let d = diags(&vs("    lvs_method NAT\n    persistence_timeout 60\n"));
    assert_eq!(d.len(), 4, "{d:#?}");
    assert!(d[0].starts_with(
        "4:1: Warning: VS [10.0.0.1]:tcp:80 is announced (ECMP) but scheduled by wlc"
    ));
    assert!(d[0].contains("use `lvs_sched mh` with `mh-port`"));
    assert!(d[1].starts_with("4:1: Warning:") && d[1].contains("add `lvs_sysctl sloppy_tcp 1`"));
    assert!(d[2].starts_with("5:5: Warning:") && d[2].contains("lvs_method NAT"));
    assert!(d[3].starts_with("6:5: Warning:") && d[3].contains("remove persistence_timeout"));
}

#[test]
fn mh_without_its_flags_is_pointed_at_the_scheduler_line() {
    let d = diags(&vs("    lvs_sched mh\n    lvs_method DR\n").replace(
        "announce_table 100\n",
        "announce_table 100\n    lvs_sysctl sloppy_tcp 1\n",
    ));
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(
        d[0].starts_with("6:5: Warning:") && d[0].contains("add `mh-port`"),
        "{d:#?}"
    );
    assert!(
        d[1].starts_with("6:5: Warning:") && d[1].contains("add `mh-fallback`"),
        "{d:#?}"
    );
}

#[test]
fn the_anycast_setup_loads_clean_and_dump_config_shows_the_sysctls() {
    let text = vs("    lvs_sched mh\n    mh-port\n    mh-fallback\n    lvs_method DR\n").replace(
        "announce_table 100\n",
        "announce_table 100\n    lvs_sysctl {\n        sloppy_tcp 1\n        conn_reuse_mode 0\n    }\n    lvs_sysctl expire_nodest_conn 1\n",
    );
    assert!(diags(&text).is_empty(), "{:#?}", diags(&text));
    let l = load_str("t.conf", &text, &LoadOptions::default());
    let c = l.config.expect("loads");
    assert_eq!(
        c.global.lvs.sysctl.set(),
        [
            ("sloppy_tcp", 1),
            ("conn_reuse_mode", 0),
            ("expire_nodest_conn", 1)
        ]
    );
    let dump = normalized::to_text(&c);
    assert!(dump.contains("sloppy_tcp 1"), "{dump}");
    assert!(dump.contains("conn_reuse_mode 0"), "{dump}");
    // Without announce, nothing to warn about.
    assert!(
        diags("virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n    }\n}\n").is_empty()
    );
}

#[test]
fn lvs_sysctl_values_and_names_are_checked() {
    let d =
        diags("global_defs {\n    lvs_sysctl conn_reuse_mode 3 sloppy_tpc 1 schedule_icmp\n}\n");
    assert_eq!(
        d,
        [
            "2:32: Error: conn_reuse_mode 3 is out of range: use 0-2",
            "2:34: Error: lvs_sysctl: unknown sysctl 'sloppy_tpc'; did you mean `sloppy_tcp`?",
            "2:47: Error: lvs_sysctl: `schedule_icmp` needs a value 0-1",
        ]
    );
}
