//! Forms keepalived 2.2.7 accepts (and ipvsdir used to refuse), include
//! variants, and hostile files: each test asserts what loads or the exact
//! diagnostic.

use std::fs;

use ipvsdir::config::model::{GroupEntry, VirtualServerKey};
use ipvsdir::config::{LoadOptions, Loaded, load, load_str};

fn lo(text: &str) -> Loaded {
    load_str("t.conf", text, &LoadOptions::default())
}

/// `line:col: severity: message` of every diagnostic.
fn diags(l: &Loaded) -> Vec<String> {
    l.diagnostics
        .items
        .iter()
        .map(|d| match &d.location {
            Some(loc) => format!("{}:{}: {:?}: {}", loc.line, loc.col, d.severity, d.message),
            None => format!("{:?}: {}", d.severity, d.message),
        })
        .collect()
}

fn instance(extra: &str, vips: &str, routes: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 1\n{extra}\n virtual_ipaddress {{\n{vips}\n }}\n virtual_routes {{\n{routes}\n }}\n}}\n"
    )
}

#[test]
fn default_routes() {
    let l = lo(&instance(
        "",
        "  10.0.0.1/24",
        "  default via 10.0.0.254 dev eth0\n  default6 via fd00::1 dev eth0\n  ::/0 via fd00::1 dev eth0\n  any dev eth0",
    ));
    assert_eq!(
        diags(&l),
        ["10:3: Warning: `default6` is deprecated: write `inet6 default`"]
    );
    let r = &l.config.unwrap().vrrp_instances[0].virtual_routes;
    let d: Vec<String> = r
        .iter()
        .map(|r| format!("{}/{}", r.dest, r.prefix_len))
        .collect();
    assert_eq!(d, ["0.0.0.0/0", "::/0", "::/0", "0.0.0.0/0"]);
}

#[test]
fn derived_broadcast() {
    let l = lo(&instance(
        "",
        "  10.0.0.1/24 brd + dev eth0\n  10.0.1.9/24 brd - dev eth0",
        "  10.9.0.0/16 via 10.0.0.254",
    ));
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let v = &l.config.unwrap().vrrp_instances[0].virtual_ipaddress;
    let b: Vec<String> = v.iter().map(|a| a.broadcast.unwrap().to_string()).collect();
    assert_eq!(b, ["10.0.0.255", "10.0.1.0"]);
}

#[test]
fn source_address_with_a_prefix() {
    let l = lo(&instance(
        " mcast_src_ip 10.0.16.254/24",
        "  10.0.0.1/24",
        "  10.9.0.0/16 via 10.0.0.254",
    ));
    assert_eq!(
        diags(&l),
        ["4:15: Warning: `mcast_src_ip` takes an address: the prefix '/24' is ignored"]
    );
    assert_eq!(
        l.config.unwrap().vrrp_instances[0]
            .mcast_src_ip
            .unwrap()
            .to_string(),
        "10.0.16.254"
    );
}

#[test]
fn alpha_and_omega_with_an_argument() {
    let l = lo(
        "virtual_server 10.0.0.9 80 {\n alpha off\n omega foo\n real_server 10.1.0.2 80 {\n }\n}\n",
    );
    assert_eq!(
        diags(&l),
        [
            "2:8: Warning: `alpha` takes no argument in a virtual_server: keepalived ignores it and turns alpha on",
            "3:8: Warning: `omega` takes no argument in a virtual_server: keepalived ignores it and turns omega on"
        ]
    );
    let vs = &l.config.unwrap().virtual_servers[0];
    assert!(vs.alpha && vs.omega);
}

#[test]
fn wide_thresholds_and_timeouts() {
    let l = lo(
        "global_defs {\n lvs_timeouts tcp 2678400 tcpfin 0 udp 300\n}\nvirtual_server 10.0.0.9 80 {\n real_server 10.1.0.2 80 {\n  uthreshold 4000000000\n  lthreshold 3000000000\n }\n}\n",
    );
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let c = l.config.unwrap();
    assert_eq!(c.global.lvs.timeouts.tcp, Some(2_678_400));
    assert_eq!(
        c.virtual_servers[0].real_servers[0].uthreshold,
        4_000_000_000
    );
    let l = lo("global_defs {\n lvs_timeouts tcp 2678401\n}\n");
    assert_eq!(
        diags(&l),
        ["2:19: Error: tcp 2678401 is out of range: use 0-2678400"]
    );
}

#[test]
fn group_used_twice_and_range_without_port() {
    let l = lo(
        "virtual_server_group G {\n 10.0.0.1 80\n 10.0.0.5-7\n}\nvirtual_server group G {\n persistence_timeout 60\n real_server 10.1.0.1 80 {\n }\n}\nvirtual_server group G {\n persistence_timeout 60\n real_server 10.1.0.2 80 {\n }\n}\n",
    );
    assert_eq!(
        diags(&l),
        [
            "10:1: Warning: virtual_server group G is used twice (first at t.conf:5:1): the later block applies to the services they share"
        ]
    );
    let c = l.config.unwrap();
    assert_eq!(c.virtual_servers.len(), 2);
    assert!(matches!(
        c.virtual_server_groups[0].entries[1],
        GroupEntry::Range { port: 0, .. }
    ));
}

#[test]
fn fwmark_in_both_families() {
    let l = lo(
        "virtual_server fwmark 1 {\n real_server 10.1.0.2 80 {\n }\n}\nvirtual_server fwmark 1 {\n real_server fd00::2 80 {\n }\n}\n",
    );
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let keys: Vec<VirtualServerKey> = l
        .config
        .unwrap()
        .virtual_servers
        .into_iter()
        .map(|v| v.key)
        .collect();
    assert_eq!(
        format!("{keys:?}"),
        "[Fwmark { mark: 1, family: Inet }, Fwmark { mark: 1, family: Inet6 }]"
    );
}

#[test]
fn duplicated_vrrp_script_later_wins() {
    let l = lo(
        "vrrp_script chk {\n script \"/bin/true\"\n}\nvrrp_script chk {\n script \"/bin/false\"\n}\n",
    );
    assert_eq!(
        diags(&l),
        [
            "4:13: Warning: vrrp_script 'chk' is defined twice: this later definition replaces the first (as in keepalived)"
        ]
    );
    let c = l.config.unwrap();
    assert_eq!(c.vrrp_scripts.len(), 1);
    assert_eq!(c.vrrp_scripts[0].script.command, "/bin/false");
}

#[test]
fn non_utf8_bytes_in_comments_only() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gbk.conf");
    // "! 主服务器配置" in GBK, then a Latin-1 comment after a statement.
    let mut bytes = b"! \xd6\xf7\xb7\xfe\xce\xf1\xc6\xf7\xc5\xe4\xd6\xc3\n".to_vec();
    bytes.extend_from_slice(b"global_defs {\n router_id a # caf\xe9\n}\n");
    fs::write(&f, &bytes).unwrap();
    let l = load(&f, &LoadOptions::default());
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    assert_eq!(l.config.unwrap().global.router_id.as_deref(), Some("a"));
    fs::write(&f, b"global_defs {\n router_id caf\xe9\n}\n").unwrap();
    let l = load(&f, &LoadOptions::default());
    assert_eq!(
        diags(&l),
        [
            "2:15: Error: bytes that are not UTF-8 (shown as \u{fffd}): only comments may hold them; save the file as UTF-8"
        ]
    );
}

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn csh_braces_in_include_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "b.conf", "global_defs {\n router_id from_b\n}\n");
    write(d, "a.conf", "global_defs {\n router_id from_a\n}\n");
    write(d, "main.conf", "include {b,a}.conf\n");
    let l = load(&d.join("main.conf"), &LoadOptions::default());
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    // a.conf comes second and sets router_id last.
    assert_eq!(
        l.config.unwrap().global.router_id.as_deref(),
        Some("from_a")
    );
}

#[test]
fn include_variants_decide_what_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "one.conf", "! nothing\n");
    let verdict = |line: &str| {
        write(d, "main.conf", &format!("{line}\n"));
        let l = load(&d.join("main.conf"), &LoadOptions::default());
        (l.config.is_some(), l.diagnostics.items.len())
    };
    // (accepted, diagnostics) as keepalived 2.2.7 -t: accepted = exit 0.
    assert_eq!(verdict("include nope.conf"), (true, 1));
    assert_eq!(verdict("includer nope.conf"), (true, 1));
    assert_eq!(verdict("includem nope.conf"), (false, 1));
    assert_eq!(verdict("includew nope.conf"), (false, 1));
    assert_eq!(verdict("includeb nope.conf"), (true, 1));
    assert_eq!(verdict("includea nope.conf"), (false, 1));
    assert_eq!(verdict("includem *.zz"), (true, 1));
    assert_eq!(verdict("includew *.zz"), (false, 1));
    assert_eq!(verdict("includeb {one,two}.conf"), (false, 1));
    assert_eq!(verdict("includem {one,two}.conf"), (true, 1));
    assert_eq!(verdict("includea {one}.conf"), (true, 0));
    // include_check in global_defs applies to the includes after it.
    assert_eq!(
        verdict("global_defs {\n include_check match\n}\ninclude nope.conf"),
        (false, 1)
    );
    assert_eq!(
        verdict("global_defs {\n include_check +match -match\n}\ninclude nope.conf"),
        (true, 1)
    );
}

#[test]
fn include_path_from_a_parameter_and_pwd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "conf.d/x.conf", "global_defs {\n router_id ${_PWD}\n}\n");
    write(
        d,
        "main.conf",
        "$SUB=conf.d\ninclude ${_PWD}/${SUB}/*.conf\n",
    );
    let l = load(&d.join("main.conf"), &LoadOptions::default());
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let want = fs::canonicalize(d.join("conf.d")).unwrap();
    assert_eq!(
        l.config.unwrap().global.router_id.as_deref(),
        Some(want.to_str().unwrap())
    );
}

#[test]
fn executable_and_directory_includes_are_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "x.conf", "global_defs {\n router_id x\n}\n");
    fs::set_permissions(d.join("x.conf"), fs::Permissions::from_mode(0o755)).unwrap();
    write(d, "sub/a.conf", "");
    write(d, "main.conf", "include x.conf\ninclude sub\n");
    let l = load(&d.join("main.conf"), &LoadOptions::default());
    let base = d.display();
    assert_eq!(
        diags(&l),
        [
            format!(
                "1:9: Warning: included path '{base}/x.conf' is executable (keepalived reads only non-executable files): skipped"
            ),
            format!("2:9: Warning: included path '{base}/sub' is a directory: skipped"),
        ]
    );
    assert_eq!(l.config.unwrap().global.router_id, None);
}

#[test]
fn main_file_must_be_a_regular_file() {
    let l = load(std::path::Path::new("/dev/zero"), &LoadOptions::default());
    assert_eq!(
        diags(&l),
        [
            "Error: /dev/zero is not a regular file (a device, FIFO or socket): name the configuration file itself"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let l = load(&fifo, &LoadOptions::default());
    assert!(l.config.is_none());
    assert!(
        diags(&l)[0].contains("is not a regular file"),
        "{:?}",
        diags(&l)
    );
}

#[test]
fn include_fan_out_is_capped() {
    // Each file includes the next twice: 2^19 reads without a cap.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..19 {
        write(
            d,
            &format!("f{i}.conf"),
            &format!("include f{n}.conf\ninclude f{n}.conf\n", n = i + 1),
        );
    }
    write(d, "f19.conf", "! leaf\n");
    let l = load(&d.join("f0.conf"), &LoadOptions::default());
    assert!(l.config.is_none());
    assert!(
        diags(&l)
            .iter()
            .any(|m| m.contains("more than 4096 configuration files read")),
        "{:?}",
        diags(&l)
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let depth = 20_000;
    let text = format!("{}{}", "a {\n".repeat(depth), "}\n".repeat(depth));
    // On a small stack, as a reload in the daemon's runtime would run it.
    let l = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || diags(&lo(&text)))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        l[0],
        "101:3: Error: blocks are nested more than 100 deep here: this block and everything in it are ignored"
    );
}

#[test]
fn many_unknown_keywords_are_counted_past_the_first_thousand() {
    // The suggestion search skips candidates of a far length (their
    // distance is at least the difference): scripts/bench-config-style
    // timing of a 50 MB file is in the report, not asserted here.
    let mut text = "qwertyuiop_asdfghjkl 1\n".repeat(20_000);
    text.push_str("global_defs {\n rooter_id x\n}\n");
    let l = lo(&text);
    // The first 1000 are kept whole, the others counted.
    assert_eq!(l.diagnostics.items.len(), 1000);
    assert_eq!(l.diagnostics.more_warnings, 19_001);
    assert_eq!(
        diags(&l)[0],
        "20002:2: Warning: unknown keyword `rooter_id`, ignored; did you mean `router_id`?"
    );
}
