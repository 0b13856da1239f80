//! keepalived's parameter language, sequences and lists (keepalived.conf(5),
//! "ADVANCED CONFIGURATION"): one test per construct, asserting what it
//! expands to or the exact diagnostic. The man page's own examples are used
//! where they fit in a configuration that loads.

mod common;

use ipvsdir::config::model::Config;
use ipvsdir::config::{LoadOptions, Loaded, load_str};

const BLANK_LINE_DIAGS: [&str; 3] = [
    "5:1: Error: unexpected '}': there is no open block to close here",
    "6:13: Error: unclosed '{': this block has no matching '}' before the end of the file",
    "4:1: Warning: `router_id` belongs in global_defs, not here; ignored",
];

fn load_as(id: Option<&str>, text: &str) -> Loaded {
    let opts = LoadOptions {
        config_id: id.map(String::from),
        ..Default::default()
    };
    load_str("t.conf", text, &opts)
}

fn ok_as(id: Option<&str>, text: &str) -> Config {
    let l = load_as(id, text);
    assert!(
        l.config.is_some() && l.diagnostics.errors().next().is_none(),
        "{}",
        l.diagnostics
    );
    l.config.unwrap()
}

fn ok(text: &str) -> Config {
    ok_as(Some("main"), text)
}

/// `line:col: severity: message` of every diagnostic.
fn diags(text: &str) -> Vec<String> {
    common::located(&load_as(Some("main"), text).diagnostics)
}

/// The VIPs of the first instance, as text.
fn vips(c: &Config) -> Vec<String> {
    c.vrrp_instances[0]
        .virtual_ipaddress
        .iter()
        .map(|v| format!("{}/{}", v.addr, v.prefix_len))
        .collect()
}

/// An instance whose virtual_ipaddress block holds `lines`.
fn with_vips(lines: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {{\n{lines}\n }}\n}}\n"
    )
}

#[test]
fn man_page_substitution_is_late_and_recursive() {
    let c = ok(&with_vips(
        "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32",
    ));
    assert_eq!(vips(&c), ["10.2.0.100/32", "10.2.10.100/32"]);
}

#[test]
fn dollar_name_needs_a_separator_braces_do_not() {
    let c = ok(&with_vips("$A=10.0.0\n$B=5\n${A}.$B"));
    // `$A.7` is not a reference (a `.` follows the name): it stays, and is
    // then no address.
    let l = load_as(Some("main"), &with_vips("$A=10.0.0\n$A.7/24"));
    assert!(l.config.is_none());
    assert_eq!(vips(&c)[0], "10.0.0.5/32");
}

#[test]
fn man_page_conditional_definitions() {
    let t = "@main $PRIORITY=240\n@backup $PRIORITY=200\nvrrp_instance VI_0 {\n interface eth0\n virtual_router_id 1\n priority $PRIORITY\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
    assert_eq!(ok_as(Some("main"), t).vrrp_instances[0].priority, 240);
    assert_eq!(ok_as(Some("backup"), t).vrrp_instances[0].priority, 200);
}

#[test]
fn man_page_parameter_holding_a_condition() {
    let t = "$IF_MAIN=@main\nvrrp_instance VI_0 {\n interface eth0\n virtual_router_id 1\n $IF_MAIN priority 240\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
    assert_eq!(ok_as(Some("main"), t).vrrp_instances[0].priority, 240);
    assert_eq!(ok_as(Some("other"), t).vrrp_instances[0].priority, 100);
}

#[test]
fn man_page_multiline_definition() {
    // The man page's $INSTANCE example (its track_script names a script
    // that example does not define, so it is left out here).
    let t = "$INSTANCE= \\\nvrrp_instance VI_${NUM} { \\\n    interface eth0.${NUM} \\\n    use_vmac vrrp${NUM}.1 \\\n    virtual_router_id 1 \\\n    @high priority 130 \\\n    @low priority 120 \\\n    advert_int 1 \\\n    virtual_ipaddress { \\\n        10.0.${NUM}.254/24 \\\n    } \\\n}\n\n$NUM=0\n$INSTANCE\n\n$NUM=1\n$INSTANCE\n";
    let c = ok_as(Some("high"), t);
    let got: Vec<(String, String, u8, Vec<String>)> = c
        .vrrp_instances
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.interface.clone(),
                i.priority,
                i.virtual_ipaddress
                    .iter()
                    .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "VI_0".into(),
                "eth0.0".into(),
                130,
                vec!["10.0.0.254/24".into()]
            ),
            (
                "VI_1".into(),
                "eth0.1".into(),
                130,
                vec!["10.0.1.254/24".into()]
            ),
        ]
    );
    assert_eq!(ok_as(Some("low"), t).vrrp_instances[1].priority, 120);
}

#[test]
fn man_page_nested_multiline_definitions() {
    // The man page's $RS/$VS example without its blank lines (a blank line
    // ends a multi-line definition) and without MISC_CHECK scripts.
    let t = "$RS= \\\nreal_server 192.168.${VS_NUM}.${RS_NUM} 80 { \\\n    weight 1 \\\n    inhibit_on_failure \\\n}\n$VS= \\\nvirtual_server 10.0.${VS_NUM}.4 80 { \\\n    quorum 2 \\\n    $RS_NUM=1 \\\n    $RS \\\n    $RS_NUM=2 \\\n    $RS \\\n    $RS_NUM=3 \\\n    $RS \\\n}\n$VS_NUM=0\n$VS\n$VS_NUM=1\n$VS\n";
    let c = ok(t);
    let got: Vec<String> = c
        .virtual_servers
        .iter()
        .flat_map(|vs| vs.real_servers.iter().map(|r| r.addr.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            "192.168.0.1",
            "192.168.0.2",
            "192.168.0.3",
            "192.168.1.1",
            "192.168.1.2",
            "192.168.1.3"
        ]
    );
    assert_eq!(c.virtual_servers.len(), 2);
}

#[test]
fn a_blank_line_ends_a_multiline_definition() {
    // As in keepalived: the definition stops at the blank line, the lines
    // after it are read as they stand.
    assert_eq!(
        diags("$A= \\\nglobal_defs { \\\n\n router_id x \\\n}\n$A\n"),
        BLANK_LINE_DIAGS
    );
}

#[test]
fn man_page_sequences() {
    let c = ok(&with_vips("~SEQ(SUBNET, 0, 3) 10.0.${SUBNET}.1"));
    assert_eq!(
        vips(&c),
        ["10.0.0.1/32", "10.0.1.1/32", "10.0.2.1/32", "10.0.3.1/32"]
    );
    let hex = [
        "fe80::20:90:1/128",
        "fe80::20:a0:1/128",
        "fe80::20:b0:1/128",
        "fe80::20:c0:1/128",
    ];
    let c = ok(&with_vips(
        "~SEQx(SUBNET, 144, 16, 192) fe80::20:${SUBNET}:1",
    ));
    assert_eq!(vips(&c), hex);
    let c = ok(&with_vips(
        "~SEQx(SUBNET, 0x90, 0x10, 0xc0) fe80::20:${SUBNET}:1",
    ));
    assert_eq!(vips(&c), hex);
    let c = ok(&with_vips(
        "~SEQx(AD2, 0x90, 0x10, 0xc0) ~SEQx(AD1, 0x12, -1, 0x0c) fe81::10:${AD2}:${AD1}",
    ));
    let v = vips(&c);
    assert_eq!(v.len(), 4 * 7);
    assert_eq!(
        (v[0].as_str(), v[27].as_str()),
        ("fe81::10:90:12/128", "fe81::10:c0:c/128")
    );
}

#[test]
fn man_page_sequence_of_multiline_instances() {
    // The man page's $VI4 example, scaled down (2 x 2 x 3 instead of
    // 8 x 32 x 254), track_file and use_vmac left out.
    let t = "$VI4= \\\nvrrp_instance vrrp4.${IF}.${NUM}.${ID} { \\\n    interface bond${IF}.${NUM} \\\n    virtual_router_id ${ID} \\\n    priority 130 \\\n    virtual_ipaddress { \\\n        10.${IF}.${NUM}.${ID}/24 \\\n    } \\\n}\n\n~SEQ(IF,0,1) ~SEQ(NUM,0,1) ~SEQ(ID,1,3) $VI4\n";
    let c = ok(t);
    let names: Vec<&str> = c.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names.len(), 12);
    assert_eq!((names[0], names[11]), ("vrrp4.0.0.1", "vrrp4.1.1.3"));
    assert_eq!(c.vrrp_instances[11].interface, "bond1.1");
}

#[test]
fn man_page_lists() {
    let c = ok(&with_vips(
        "~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) 192.168.${IP}.${IP1}",
    ));
    assert_eq!(
        vips(&c),
        [
            "192.168.10.1/32",
            "192.168.20.4/32",
            "192.168.5.6/32",
            "192.168.12.8/32"
        ]
    );
    let c = ok(&with_vips(
        "~LST(IP, 1, 2, 3, 4) ~LST(IP1, 5,6,7) 192.169.${IP}.${IP1}",
    ));
    let v = vips(&c);
    assert_eq!(v.len(), 12);
    assert_eq!(
        (v[0].as_str(), v[3].as_str(), v[11].as_str()),
        ("192.169.1.5/32", "192.169.2.5/32", "192.169.4.7/32")
    );
    let c = ok(&with_vips(
        "~LST({IP, IP1}, {10,1},{20,4},{5,6},{12,8}) ~SEQ(IP2,168,2,172) 192.${IP2}.${IP}.${IP1}",
    ));
    let v = vips(&c);
    assert_eq!(v.len(), 12);
    assert_eq!(
        (v[0].as_str(), v[1].as_str(), v[3].as_str()),
        ("192.168.10.1/32", "192.170.10.1/32", "192.168.20.4/32")
    );
}

#[test]
fn sequence_of_real_servers_shows_in_the_dump() {
    // The rest of the line is repeated: a one-line block repeats whole.
    let c = ok(
        "virtual_server 10.0.0.1 80 {\n ~SEQ(N, 1, 3) real_server 10.1.0.$N 80 { weight $N }\n}\n",
    );
    let w: Vec<u32> = c.virtual_servers[0]
        .real_servers
        .iter()
        .map(|r| r.weight)
        .collect();
    assert_eq!(w, [1, 2, 3]);
    let text = ipvsdir::config::normalized::to_text(&c);
    for n in 1..=3 {
        assert!(text.contains(&format!("addr 10.1.0.{n}\n")), "{text}");
    }
}

#[test]
fn builtins() {
    // _INSTANCE is the config id; _HASH and _BANG survive inside quotes.
    let c = ok(
        "global_defs {\n router_id r_${_INSTANCE}\n smtp_helo_name \"a${_HASH}b${_BANG}c\"\n}\n",
    );
    assert_eq!(c.global.router_id.as_deref(), Some("r_main"));
    assert_eq!(c.global.smtp_helo_name.as_deref(), Some("a#b!c"));
    // _RANDOM MIN MAX stays in range.
    for _ in 0..20 {
        let c = ok(&with_vips("10.0.0.${_RANDOM 5 9}"));
        let last: u8 = vips(&c)[0]
            .trim_end_matches("/32")
            .rsplit('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((5..=9).contains(&last));
    }
    // Outside quotes `${_HASH}` starts a comment, as in keepalived.
    let c = ok("global_defs {\n router_id a ${_HASH} rest\n}\n");
    assert_eq!(c.global.router_id.as_deref(), Some("a"));
}

#[test]
fn env_builtin() {
    // SAFETY of the test: the variable name is unique to this test.
    unsafe { std::env::set_var("IPVSDIR_TEST_ROUTER", "from_env") };
    let c = ok("global_defs {\n router_id ${_ENV IPVSDIR_TEST_ROUTER}\n}\n");
    assert_eq!(c.global.router_id.as_deref(), Some("from_env"));
    assert_eq!(
        diags("global_defs {\n router_id ${_ENV IPVSDIR_TEST_UNSET_VAR}\n}\n"),
        [
            "2:2: Error: environment variable IPVSDIR_TEST_UNSET_VAR (in `${_ENV IPVSDIR_TEST_UNSET_VAR}`) is not set"
        ]
    );
}

#[test]
fn undefined_parameters() {
    assert_eq!(
        diags("global_defs {\n router_id ${NAME}\n}\n"),
        [
            "2:12: Error: parameter ${NAME} is not defined (define it with $NAME=VALUE before this line)"
        ]
    );
    // `$NAME` stays as written (scripts use shell variables); where it
    // makes a value invalid the error says why.
    let t = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority $PRIO\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
    assert_eq!(
        diags(t),
        [
            "4:11: Error: `priority` expects an integer 1-255, found '$PRIO' (`$PRIO` is not a defined parameter)"
        ]
    );
    let c = ok("vrrp_script chk {\n script \"kill -0 $MAINPID\"\n}\n");
    assert_eq!(c.vrrp_scripts[0].script.command, "kill -0 $MAINPID");
}

#[test]
fn self_reference_is_an_error_not_a_hang() {
    assert_eq!(
        diags("$A=$A\nglobal_defs {\n router_id $A\n}\n"),
        [
            "3:2: Error: parameter substitution does not end on this line (more than 10000 substitutions): a definition refers to itself"
        ]
    );
    let d = diags("$A=x$A\nglobal_defs {\n router_id $A\n}\n");
    assert!(d[0].contains("a definition refers to itself"), "{d:?}");
}

#[test]
fn diagnostics_name_the_original_line_and_the_iteration() {
    let t = "$VI= \\\nvrrp_instance VI_${ID} { \\\n    interface eth0 \\\n    virtual_router_id ${ID} \\\n    virtual_ipaddress { \\\n        10.0.0.1/24 \\\n    } \\\n}\n~SEQ(ID, 255, 256) $VI\n";
    let l = load_as(Some("main"), t);
    assert_eq!(
        l.diagnostics.to_string(),
        "t.conf:4:19: error: virtual_router_id 256 is out of range: use 1-255\n 4 | virtual_router_id 256\n   |                   ^^^\n   = note: line 4 as expanded by $VI at t.conf:9, within ~SEQ ID=256 at t.conf:9\n"
    );
}

#[test]
fn sequence_errors() {
    assert_eq!(
        diags("~SEQ(I, 1, -1, 5) x\n"),
        ["1:1: Error: invalid ~SEQ values: from 1 by -1 never reaches 5"]
    );
    assert_eq!(
        diags("~SEQx(I, -3) x\n"),
        ["1:1: Error: ~SEQx is only valid for positive numbers"]
    );
    assert_eq!(
        diags("~LST({A}, {1, 2}) x\n"),
        ["1:1: Error: ~LST has more values in a set than variables (1)"]
    );
    // A huge sequence stops with an error instead of running for ever.
    let d = diags("~SEQ(I, 1, 1000000000000) ! nothing\n");
    assert_eq!(
        d,
        ["1:1: Error: sequences and parameters produce more than 1000000 lines"]
    );
}

#[test]
fn sequence_numbers_may_be_parameters() {
    let c = ok(&with_vips("$LAST=3\n~SEQ(I, 1, $LAST) 10.0.0.$I"));
    assert_eq!(vips(&c).len(), 3);
}

#[test]
fn conditional_lines_default_to_the_host_name() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let id = host.trim().split('.').next().unwrap_or("").to_string();
    let t = format!("global_defs {{\n @{id} router_id mine\n @^{id} router_id other\n}}\n");
    let l = load_str("t.conf", &t, &LoadOptions::default());
    assert_eq!(l.config.unwrap().global.router_id.as_deref(), Some("mine"));
}
