//! One test per grammar or validation rule, asserting the exact diagnostic:
//! `line:col: severity: message`.

mod common;
use ipvsdir::config::model::{
    CheckKind, ForwardMethod, GroupEntry, HttpVersion, InitialState, Scheduler, Timer, TunnelType,
    VirtualServerKey,
};
use ipvsdir::config::{LoadOptions, Loaded, load_str};

fn load(text: &str) -> Loaded {
    load_str("t.conf", text, &LoadOptions::default())
}

fn diags(text: &str) -> Vec<String> {
    common::located(&load(text).diagnostics)
}

/// A valid instance with `extra` lines inserted at line 2.
fn vi(extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n{extra}\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{\n  10.0.0.1/24\n }}\n}}\n"
    )
}

/// A valid virtual server with `vs` lines at line 2 and `rs` lines in its real server.
fn vs(vs_lines: &str, rs_lines: &str) -> String {
    format!(
        "virtual_server 10.0.0.10 80 {{\n{vs_lines}\n real_server 10.0.0.11 80 {{\n{rs_lines}\n }}\n}}\n"
    )
}

fn ok(text: &str) -> ipvsdir::config::model::Config {
    let l = load(text);
    assert!(
        l.config.is_some() && l.diagnostics.items.is_empty(),
        "{}",
        l.diagnostics
    );
    l.config.unwrap()
}

#[test]
fn valid_minimal_instance_has_no_diagnostics() {
    let c = ok(&vi(""));
    let i = &c.vrrp_instances[0];
    assert_eq!(i.virtual_router_id, 51);
    assert_eq!(i.priority, 100);
    assert_eq!(i.advert_int, Timer::secs(1));
    assert_eq!(i.initial_state, InitialState::Backup);
    assert!(i.preempt);
}

#[test]
fn vrid_out_of_range() {
    let t = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n";
    assert_eq!(
        diags(t),
        ["3:20: Error: virtual_router_id 300 is out of range: use 1-255"]
    );
}

#[test]
fn vrid_missing() {
    let t = "vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n";
    assert_eq!(
        diags(t),
        [
            "1:1: Error: vrrp_instance VI_1 needs `virtual_router_id` (1-255), the same on both directors"
        ]
    );
}

#[test]
fn vrid_not_a_number() {
    assert_eq!(
        diags(
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id abc\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n"
        ),
        ["3:20: Error: `virtual_router_id` expects an integer 1-255, found 'abc'"]
    );
}

#[test]
fn duplicate_vrid_on_one_interface() {
    let t = format!("{}{}", vi(""), vi("").replace("VI_1", "VI_2"));
    assert_eq!(
        diags(&t),
        [
            "12:20: Error: virtual_router_id 51 on eth0 is already used by vrrp_instance VI_1: each instance on a link needs its own VRID"
        ]
    );
}

#[test]
fn duplicate_instance_name() {
    let t = format!("{}{}", vi(""), vi("").replace("51", "52"));
    assert_eq!(
        diags(&t),
        ["9:15: Error: vrrp_instance VI_1 is defined twice (first at t.conf:1:15)"]
    );
}

#[test]
fn priority_range_and_owner_warning() {
    assert_eq!(
        diags(&vi(" priority 0")),
        ["2:11: Error: priority 0 is out of range: use 1-255"]
    );
    assert_eq!(
        diags(&vi(" priority 255")),
        [
            "2:11: Warning: priority 255 is reserved for the owner of the virtual addresses (it becomes master at once and is never preempted); use 254 or less unless this director owns them"
        ]
    );
}

#[test]
fn advert_int_per_version() {
    assert_eq!(
        diags(&vi(" advert_int 0.5")),
        ["2:13: Warning: VRRPv2 advert_int is whole seconds 1-255: 1 used"]
    );
    let c = ok(&vi(" version 3\n advert_int 0.5"));
    assert_eq!(
        c.vrrp_instances[0].advert_int,
        Timer(std::time::Duration::from_millis(500))
    );
    assert_eq!(
        diags(&vi(" advert_int 50\n version 3")),
        ["2:13: Warning: VRRPv3 advert_int is 0.01-40.95 s in hundredths: 40.95 used"]
    );
    assert_eq!(
        diags(&vi(" advert_int -1")),
        ["2:13: Error: `advert_int` must be a non-negative number of seconds, found '-1'"]
    );
}

#[test]
fn state_values() {
    assert_eq!(
        ok(&vi(" state MASTER")).vrrp_instances[0].initial_state,
        InitialState::Master
    );
    assert_eq!(
        diags(&vi(" state master")),
        [
            "2:8: Warning: state 'master' taken as MASTER; write MASTER (keepalived reads anything but MASTER/BACKUP in capitals as BACKUP)"
        ]
    );
    assert_eq!(
        diags(&vi(" state LEADER")),
        ["2:8: Error: unknown state 'LEADER': use MASTER or BACKUP"]
    );
}

#[test]
fn missing_interface() {
    let t = "vrrp_instance VI_1 {\n virtual_router_id 5\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n";
    assert_eq!(
        diags(t),
        ["1:1: Error: vrrp_instance VI_1 has no `interface`: name the interface VRRP runs on"]
    );
    let with_default = format!("global_defs {{\n default_interface bond0\n}}\n{t}");
    assert_eq!(ok(&with_default).vrrp_instances[0].interface, "bond0");
}

#[test]
fn virtual_ipaddress_full_line_syntax() {
    let c = ok(&vi(
        " virtual_ipaddress {\n  192.168.1.10/24 brd 192.168.1.255 dev eth1 scope global label eth1:vip\n  fe80::10/64 dev eth1 scope link no_track\n }",
    ));
    let a = &c.vrrp_instances[0].virtual_ipaddress[0];
    assert_eq!(a.addr.to_string(), "192.168.1.10");
    assert_eq!(a.prefix_len, 24);
    assert_eq!(
        a.broadcast.map(|b| b.to_string()).as_deref(),
        Some("192.168.1.255")
    );
    assert_eq!(a.dev.as_deref(), Some("eth1"));
    assert_eq!(a.label.as_deref(), Some("eth1:vip"));
    let b = &c.vrrp_instances[0].virtual_ipaddress[1];
    assert_eq!(b.prefix_len, 64);
    assert!(b.no_track);
    // the block at line 2 and the one from vi() both count
    assert_eq!(c.vrrp_instances[0].virtual_ipaddress.len(), 3);
}

#[test]
fn bad_virtual_address() {
    assert_eq!(
        diags(&vi(" virtual_ipaddress {\n  10.0.0.300\n }")),
        ["3:3: Error: '10.0.0.300' is not a valid IP address"]
    );
    assert_eq!(
        diags(&vi(" virtual_ipaddress {\n  10.0.0.3/33\n }")),
        ["3:3: Error: '10.0.0.3/33': prefix length must be 0-32"]
    );
    assert_eq!(
        diags(&vi(" virtual_ipaddress {\n  10.0.0.3 devv eth0\n }")),
        ["3:12: Error: unknown address option 'devv'; did you mean `dev`?"]
    );
}

#[test]
fn virtual_routes() {
    let c = ok(&vi(
        " virtual_routes {\n  src 10.0.0.1 10.1.0.0/16 via 10.0.0.254 dev eth0 table 100\n  blackhole 10.9.0.0/16\n  10.2.0.0/16 via 10.0.0.1 or 10.0.0.2\n }",
    ));
    let r = &c.vrrp_instances[0].virtual_routes;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].table, Some(100));
    assert_eq!(r[0].prefix_len, 16);
    assert_eq!(r[2].via.len(), 2);
}

#[test]
fn track_script_unknown_and_weights() {
    let t = format!(
        "vrrp_script chk_nginx {{\n script \"killall -0 nginx\"\n weight -5\n fall 3\n rise 2\n}}\n{}",
        vi(" track_script {\n  chk_nginx weight 10 reverse\n  chk_ngnix\n }")
    );
    assert_eq!(
        diags(&t),
        [
            "10:3: Error: track_script names an unknown vrrp_script 'chk_ngnix': define `vrrp_script chk_ngnix { script ... }` or did you mean 'chk_nginx'?"
        ]
    );
    let ok_text = t.replace("  chk_ngnix\n", "");
    let c = ok(&ok_text);
    let s = &c.vrrp_scripts[0];
    assert_eq!((s.weight, s.fall, s.rise), (-5, 3, 2));
    let tr = &c.vrrp_instances[0].track_script[0];
    assert_eq!((tr.weight, tr.reverse), (Some(10), true));
}

#[test]
fn track_weight_range() {
    assert_eq!(
        diags(&vi(" track_interface {\n  eth1 weight 300\n }")),
        ["3:15: Error: weight 300 is out of range: use -253-253"]
    );
}

#[test]
fn vrrp_script_without_script_is_removed() {
    let t = format!(
        "vrrp_script chk {{\n interval 2\n}}\n{}",
        vi(" track_script {\n  chk\n }")
    );
    assert_eq!(
        diags(&t),
        [
            "1:1: Warning: vrrp_script 'chk' has no `script` line: it is removed and instances tracking it ignore it",
            "6:3: Warning: vrrp_script 'chk' was removed (it has no script line), not tracked",
        ]
    );
}

#[test]
fn authentication_rules() {
    let c = ok(&vi(
        " authentication {\n  auth_type PASS\n  auth_pass secret\n }",
    ));
    assert_eq!(
        c.vrrp_instances[0]
            .authentication
            .as_ref()
            .unwrap()
            .auth_pass,
        "secret"
    );
    assert_eq!(
        diags(&vi(
            " authentication {\n  auth_type PASS\n  auth_pass 123456789\n }"
        )),
        [
            "4:13: Warning: auth_pass is longer than 8 bytes: only the first 8 are used (as keepalived does)"
        ]
    );
    assert_eq!(
        diags(&vi(" authentication {\n  auth_type MD5\n  auth_pass x\n }")),
        ["3:13: Error: unknown auth_type 'MD5': use PASS or AH"]
    );
    assert_eq!(
        diags(&vi(
            " version 3\n authentication {\n  auth_type PASS\n  auth_pass x\n }"
        )),
        [
            "3:2: Warning: VRRPv3 has no authentication (RFC 5798): the authentication block is ignored"
        ]
    );
}

#[test]
fn unicast_peers_and_family() {
    let c = ok(&vi(
        " unicast_src_ip 10.0.0.2\n unicast_peer {\n  10.0.0.3 min_ttl 250\n }",
    ));
    assert_eq!(c.vrrp_instances[0].unicast_peers[0].min_ttl, Some(250));
    assert_eq!(
        diags(&vi(
            " unicast_src_ip 10.0.0.2\n unicast_peer {\n  fe80::3\n }"
        )),
        [
            "1:1: Error: vrrp_instance VI_1: unicast_src_ip 10.0.0.2 and unicast_peer fe80::3 are of different address families"
        ]
    );
}

#[test]
fn sync_group_references() {
    let t = format!(
        "vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_9\n }}\n}}\n{}",
        vi("")
    );
    assert_eq!(
        diags(&t),
        [
            "4:3: Error: vrrp_sync_group G names an unknown vrrp_instance 'VI_9'; did you mean 'VI_1'?"
        ]
    );
}

#[test]
fn instance_in_two_sync_groups() {
    let t = format!(
        "vrrp_sync_group A {{\n group {{\n  VI_1\n }}\n}}\nvrrp_sync_group B {{\n group {{\n  VI_1\n }}\n}}\n{}",
        vi("")
    );
    assert_eq!(
        diags(&t),
        [
            "6:1: Error: vrrp_instance VI_1 is in two sync groups (A and B): an instance may belong to one group only"
        ]
    );
}

#[test]
fn unknown_keyword_with_suggestion_and_unsupported_warning() {
    assert_eq!(
        diags(&vi(" priorty 100")),
        ["2:2: Warning: unknown keyword `priorty`, ignored; did you mean `priority`?"]
    );
    assert_eq!(
        diags(&vi(" track_bfd {\n  b1\n }")),
        ["2:2: Warning: `track_bfd` is not supported yet, ignored"]
    );
    // track_process is supported: an unknown name is an error at its word.
    assert_eq!(
        diags(&vi(" track_process {\n  p1\n }")),
        [
            "3:3: Error: track_process names an unknown vrrp_track_process 'p1': define `vrrp_track_process p1 { process NAME }`"
        ]
    );
    assert_eq!(
        diags("bfd_instance b1 {\n neighbor_ip 10.0.0.1\n}\n"),
        ["1:1: Warning: `bfd_instance` is not supported yet, ignored"]
    );
    // Supported since: no warning.
    assert!(diags("static_ipaddress {\n 10.0.0.1 dev eth0\n}\n").is_empty());
}

#[test]
fn block_required_and_extra_arguments() {
    assert_eq!(
        diags(&vi(" virtual_ipaddress 10.0.0.2")),
        ["2:2: Error: `virtual_ipaddress` needs a block: `virtual_ipaddress { ... }`"]
    );
    assert_eq!(
        diags(&vi(" priority 100 please")),
        ["2:15: Warning: extra arguments after `priority` ignored"]
    );
}

#[test]
fn bool_values() {
    for v in ["on", "true", "yes", ""] {
        let c = ok(&format!("global_defs {{\n vrrp_strict {v}\n}}\n"));
        assert!(c.global.vrrp.strict, "{v}");
    }
    for v in ["off", "false", "no"] {
        let c = ok(&format!("global_defs {{\n vrrp_strict {v}\n}}\n"));
        assert!(!c.global.vrrp.strict, "{v}");
    }
    assert_eq!(
        diags("global_defs {\n vrrp_strict maybe\n}\n"),
        ["2:14: Error: `vrrp_strict` expects on/off, true/false or yes/no, found 'maybe'"]
    );
}

#[test]
fn global_defs_values() {
    let text = "global_defs {\n router_id LB1\n notification_email {\n  a@example.com\n  b@example.com\n }\n smtp_server 192.0.2.1 2525\n script_user nobody nogroup\n enable_script_security\n vrrp_version 3\n vrrp_mcast_group4 224.0.0.19\n vrrp_garp_interval 0.001\n lvs_flush\n lvs_flush_on_stop VS\n lvs_timeouts tcp 900 udp 30\n lvs_sync_daemon eth1 VI_1 id 5\n}\n".to_string() + &vi("");
    // Mail alerts are sent: nothing to say.
    let l = load(&text);
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let c = l.config.unwrap();
    let g = &c.global;
    assert_eq!(g.router_id.as_deref(), Some("LB1"));
    assert_eq!(g.notification_email.len(), 2);
    assert_eq!(g.smtp_server.as_ref().unwrap().port, 2525);
    assert_eq!(
        g.script_user.as_ref().unwrap().group.as_deref(),
        Some("nogroup")
    );
    assert!(g.enable_script_security);
    assert_eq!(g.vrrp.version, 3);
    assert_eq!(g.vrrp.mcast_group4.to_string(), "224.0.0.19");
    assert_eq!(
        g.vrrp.garp_interval,
        Timer(std::time::Duration::from_micros(1000))
    );
    assert!(g.lvs.flush);
    assert_eq!(g.lvs.timeouts.tcp, Some(900));
    assert_eq!(g.lvs.sync_daemon.as_ref().unwrap().sync_id, Some(5));
}

#[test]
fn global_defs_errors() {
    assert_eq!(
        diags("global_defs {\n vrrp_mcast_group4 10.0.0.1\n}\n"),
        ["2:20: Error: vrrp_mcast_group4 must be an IPv4 multicast address (224.0.0.0/4)"]
    );
    assert_eq!(
        diags("global_defs {\n lvs_timeouts tcp\n}\n"),
        ["2:15: Error: lvs_timeouts: `tcp` needs seconds"]
    );
    assert_eq!(
        diags("global_defs {\n vrrp_version 4\n}\n"),
        ["2:15: Error: vrrp_version 4 is out of range: use 2-3"]
    );
}

#[test]
fn timers_are_decimal_seconds() {
    let c = ok(&vs(" delay_loop 2.5", ""));
    assert_eq!(
        c.virtual_servers[0].delay_loop,
        Timer(std::time::Duration::from_millis(2500))
    );
    assert_eq!(
        diags(&vs(" delay_loop fast", "")),
        ["2:13: Error: `delay_loop` expects a time in seconds (e.g. 3 or 0.5), found 'fast'"]
    );
}

#[test]
fn virtual_server_defaults_and_keys() {
    let c = ok(&vs("", ""));
    let v = &c.virtual_servers[0];
    assert_eq!(v.scheduler, Scheduler::Wlc);
    assert_eq!(v.method, ForwardMethod::Nat);
    assert_eq!(v.quorum, 1);
    assert_eq!(v.real_servers[0].weight, 1);
    let c = ok("virtual_server fwmark 7 {\n persistence_timeout\n real_server 10.0.0.1 {\n }\n}\n");
    assert!(matches!(
        c.virtual_servers[0].key,
        VirtualServerKey::Fwmark { mark: 7, .. }
    ));
    assert_eq!(
        c.virtual_servers[0].persistence.as_ref().unwrap().timeout,
        360
    );
}

#[test]
fn schedulers_and_methods() {
    let c = ok(&vs(
        " lb_algo sh\n sh-port\n lb_kind TUN type gue port 6080 csum",
        "",
    ));
    let v = &c.virtual_servers[0];
    assert_eq!(v.scheduler, Scheduler::Sh);
    assert!(v.sched_flags.flag_2);
    assert!(matches!(
        v.method,
        ForwardMethod::Tun {
            tunnel: TunnelType::Gue { port: 6080 },
            ..
        }
    ));
    assert_eq!(
        v.real_servers[0].method, v.method,
        "real server inherits the method"
    );
    assert_eq!(
        diags(&vs(" lb_algo fastest", "")),
        [
            "2:10: Error: unknown scheduler 'fastest': use one of rr wrr lc wlc lblc lblcr sh dh mh sed nq fo ovf twos"
        ]
    );
    assert_eq!(
        diags(&vs(" lb_kind MASQ", "")),
        ["2:10: Error: unknown forwarding method 'MASQ': use NAT, DR or TUN"]
    );
}

#[test]
fn sh_port_only_with_sh() {
    assert_eq!(
        diags(&vs(" lb_algo rr\n sh-port", "")),
        ["3:2: Error: `sh-port` is only for the sh scheduler: add `lb_algo sh` or remove it"]
    );
    assert_eq!(
        diags(&vs(" mh-fallback", "")),
        ["2:2: Error: `mh-fallback` is only for the mh scheduler: add `lb_algo mh` or remove it"]
    );
}

#[test]
fn port_omitted_only_for_persistent_service() {
    assert_eq!(
        diags("virtual_server 10.0.0.10 {\n real_server 10.0.0.11 80 {\n }\n}\n"),
        [
            "1:1: Error: virtual_server 10.0.0.10 has no port: a port may be omitted only for a persistent service (add `persistence_timeout`) — or give the port"
        ]
    );
    ok("virtual_server 10.0.0.10 {\n persistence_timeout 600\n real_server 10.0.0.11 {\n }\n}\n");
}

#[test]
fn duplicated_virtual_and_real_servers() {
    let t = format!("{}{}", vs("", ""), vs("", ""));
    assert_eq!(
        diags(&t),
        ["7:1: Error: virtual_server 10.0.0.10:80 TCP is defined twice (first at t.conf:1:1)"]
    );
    let t = "virtual_server 10.0.0.10 80 {\n real_server 10.0.0.11 80 {\n }\n real_server 10.0.0.11 80 {\n }\n}\n";
    assert_eq!(
        diags(t),
        [
            "4:2: Warning: real_server 10.0.0.11 80 is defined twice in this virtual_server (first at line 2): this one is ignored, as keepalived does"
        ]
    );
    // With DR the kernel keeps the service's port: 8080 is the same destination.
    let t = "virtual_server 10.0.0.10 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n }\n real_server 10.0.0.11 8080 {\n }\n}\n";
    let d = diags(t);
    assert!(
        d.iter().any(|l| l.starts_with("5:2: Warning: real_server 10.0.0.11 8080 is the same IPVS destination as the one at line 3: with DR/TUN the kernel keeps the service's port (80)")),
        "{d:?}"
    );
    // A DR group: each entry keeps its own port, so 80 and 8080 collapse.
    let t = "virtual_server_group G {\n 10.0.0.10 80\n 10.0.0.20 443\n}\nvirtual_server group G {\n lb_kind DR\n real_server 10.0.0.11 80 {\n }\n real_server 10.0.0.11 8080 {\n }\n}\n";
    let d = diags(t);
    assert!(
        d.iter().any(|l| l.starts_with("9:2: Warning: real_server 10.0.0.11 8080 and the one at line 7 (80) are one IPVS destination")),
        "{d:?}"
    );
    // Same address, other protocol: a different service.
    ok(&format!("{}{}", vs("", ""), vs(" protocol UDP", "")));
}

#[test]
fn weight_and_threshold_ranges() {
    assert_eq!(
        diags(&vs("", "  weight 70000")),
        ["4:10: Error: weight 70000 is out of range: use 0-65535"]
    );
    assert_eq!(
        diags(&vs("", "  uthreshold 10\n  lthreshold 20")),
        [
            "3:2: Error: lthreshold 20 is above uthreshold 10: the kernel refuses that; set uthreshold to at least 20"
        ]
    );
}

#[test]
fn sorry_server_and_quorum() {
    let c = ok(&vs(
        " sorry_server 10.0.0.250 8080\n sorry_server_inhibit\n quorum 3\n hysteresis 1",
        "  weight 3",
    ));
    let v = &c.virtual_servers[0];
    let s = v.sorry_server.as_ref().unwrap();
    assert_eq!((s.port, s.inhibit), (8080, true));
    assert_eq!((v.quorum, v.hysteresis), (3, 1));
    assert_eq!(
        diags(&vs(" quorum 2\n hysteresis 2", "  weight 2")),
        ["3:2: Warning: hysteresis 2 is not below quorum 2: set to 1, as keepalived does"]
    );
}

#[test]
fn checker_settings_inherit_vs_rs_checker() {
    let c = ok(&vs(
        " delay_loop 10\n connect_timeout 7\n retry 4\n virtualhost vs.example",
        "  delay_before_retry 2\n  virtualhost rs.example\n  HTTP_GET {\n   retry 9\n   url {\n    path /a\n   }\n   url {\n    path /b\n    virtualhost url.example\n   }\n  }\n  TCP_CHECK {\n   connect_port 8080\n  }\n  MISC_CHECK {\n   misc_path \"/bin/check arg\"\n  }",
    ));
    let rs = &c.virtual_servers[0].real_servers[0];
    let http = &rs.checkers[0];
    assert_eq!(http.common.delay_loop, Timer::secs(10));
    assert_eq!(http.common.connect_timeout, Timer::secs(7));
    assert_eq!(http.common.retry, 9);
    assert_eq!(http.common.delay_before_retry, Timer::secs(2));
    assert_eq!(
        http.common.warmup,
        Timer::secs(10),
        "warmup defaults to delay_loop"
    );
    let CheckKind::Http(h) = &http.kind else {
        panic!()
    };
    assert_eq!(h.urls[0].virtualhost.as_deref(), Some("rs.example"));
    assert_eq!(h.urls[1].virtualhost.as_deref(), Some("url.example"));
    assert_eq!(h.http_protocol, HttpVersion::Http10);
    assert!(h.urls[0].status_codes.contains(204) && !h.urls[0].status_codes.contains(301));
    let tcp = &rs.checkers[1];
    assert_eq!((tcp.common.connect_port, tcp.common.retry), (8080, 4));
    let CheckKind::Misc(m) = &rs.checkers[2].kind else {
        panic!()
    };
    assert_eq!(m.path.command, "/bin/check arg");
    assert_eq!(
        m.timeout,
        Timer::secs(10),
        "misc_timeout defaults to delay_loop"
    );
}

#[test]
fn checker_defaults_follow_keepalived() {
    let c = ok(&vs(
        "",
        "  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  MISC_CHECK {\n   misc_path /bin/true\n  }\n  TCP_CHECK {\n  }",
    ));
    let ch = &c.virtual_servers[0].real_servers[0].checkers;
    assert_eq!(ch[0].common.delay_before_retry, Timer::secs(3));
    assert_eq!(ch[0].common.connect_timeout, Timer::secs(5));
    assert_eq!(ch[0].common.delay_loop, Timer::secs(60));
    assert_eq!(ch[1].common.retry, 0);
    assert_eq!(ch[2].common.retry, 1);
    assert_eq!(ch[2].common.delay_before_retry, Timer::secs(1));
}

#[test]
fn digest_must_be_32_hex() {
    assert_eq!(
        diags(&vs(
            "",
            "  HTTP_GET {\n   url {\n    path /\n    digest 640205b7b0fc66c1ea91c463fac6334\n   }\n  }"
        )),
        [
            "7:12: Error: digest must be exactly 32 hexadecimal characters (the MD5 that `ipvsdir genhash` prints), found 31 characters: '640205b7b0fc66c1ea91c463fac6334'"
        ]
    );
    assert_eq!(
        diags(&vs(
            "",
            "  SSL_GET {\n   url {\n    path /\n    digest 640205b7b0fc66c1ea91c463fac6334z\n   }\n  }"
        )),
        [
            "7:12: Error: digest must be exactly 32 hexadecimal characters (the MD5 that `ipvsdir genhash` prints), found 32 characters: '640205b7b0fc66c1ea91c463fac6334z'"
        ]
    );
}

#[test]
fn status_code_ranges() {
    let c = ok(&vs(
        "",
        "  HTTP_GET {\n   url {\n    path /\n    status_code 200-299 400-499 503\n   }\n  }",
    ));
    let CheckKind::Http(h) = &c.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!()
    };
    assert_eq!(
        h.urls[0].status_codes.0,
        vec![(200, 299), (400, 499), (503, 503)]
    );
    assert_eq!(
        diags(&vs(
            "",
            "  HTTP_GET {\n   url {\n    path /\n    status_code 299-200\n   }\n  }"
        )),
        ["7:17: Error: status_code range '299-200' is backwards: write 200-299"]
    );
    assert_eq!(
        diags(&vs(
            "",
            "  HTTP_GET {\n   url {\n    path /\n    status_code 700\n   }\n  }"
        )),
        ["7:17: Error: status_code '700' is not an HTTP status or range within 100-599"]
    );
}

#[test]
fn http_checker_needs_url() {
    assert_eq!(
        diags(&vs("", "  HTTP_GET {\n   connect_timeout 3\n  }")),
        ["4:3: Error: HTTP_GET needs at least one `url { path /... }` block"]
    );
}

#[test]
fn misc_check_needs_path() {
    assert_eq!(
        diags(&vs("", "  MISC_CHECK {\n   misc_timeout 5\n  }")),
        ["4:3: Error: MISC_CHECK needs `misc_path \"/path/to/script args\"`"]
    );
}

#[test]
fn unsupported_checkers_warn() {
    assert_eq!(
        diags(&vs("", "  BFD_CHECK {\n   name x\n  }")),
        [
            "4:3: Warning: BFD_CHECK is not supported yet, ignored: real_server 10.0.0.11 80: it has no other checker, so it is never taken out of the table"
        ]
    );
}

#[test]
fn nb_get_retry_is_a_deprecated_alias() {
    let t = vs(
        "",
        "  HTTP_GET {\n   nb_get_retry 5\n   url {\n    path /\n   }\n  }",
    );
    assert_eq!(
        diags(&t),
        ["5:4: Warning: nb_get_retry is deprecated: use `retry`"]
    );
    let c = load(&t).config.unwrap();
    assert_eq!(
        c.virtual_servers[0].real_servers[0].checkers[0]
            .common
            .retry,
        5
    );
}

#[test]
fn virtual_server_group_ranges() {
    let c = ok(
        "virtual_server_group G {\n 10.0.0.1-5 80\n ae00::2-9 80\n fwmark 3\n}\nvirtual_server group G {\n real_server 10.0.1.1 80 {\n }\n}\n",
    );
    let g = &c.virtual_server_groups[0];
    assert_eq!(g.entries.len(), 3);
    let GroupEntry::Range { last, .. } = &g.entries[0] else {
        panic!()
    };
    assert_eq!(last.to_string(), "10.0.0.5");
    let GroupEntry::Range { last, .. } = &g.entries[1] else {
        panic!()
    };
    assert_eq!(last.to_string(), "ae00::9");
    assert_eq!(
        diags("virtual_server group NOPE {\n real_server 10.0.1.1 80 {\n }\n}\n"),
        [
            "1:22: Error: virtual_server group 'NOPE' is not defined: add `virtual_server_group NOPE { IP PORT ... }`"
        ]
    );
    assert_eq!(
        diags("virtual_server_group G {\n 10.0.0.9-5 80\n}\n"),
        [
            "2:2: Error: bad range '10.0.0.9-5': the end must be a number not below the address's last part",
            "1:22: Warning: virtual_server_group G is empty",
        ]
    );
}

#[test]
fn dr_port_mismatch_warns() {
    assert_eq!(
        diags("virtual_server 10.0.0.10 80 {\n lb_kind DR\n real_server 10.0.0.11 8080 {\n }\n}\n"),
        [
            "3:2: Warning: with DR/TUN the real server port must equal the virtual port (80): IPVS does not rewrite ports, so 8080 is reset to 80, as keepalived does (checkers still use 8080)"
        ]
    );
    // The kernel gets the service's port; the checker keeps the configured one.
    let l = ipvsdir::config::load_str(
        "t.conf",
        "virtual_server 10.0.0.10 80 {\n lb_kind DR\n real_server 10.0.0.11 8080 {\n  TCP_CHECK {\n  }\n }\n}\n\
         virtual_server fwmark 3 {\n lb_kind TUN\n real_server 10.0.0.12 80 {\n }\n}\n",
        &ipvsdir::config::LoadOptions::default(),
    );
    let c = l.config.expect("loads");
    let rs = &c.virtual_servers[0].real_servers[0];
    assert_eq!(rs.port, 80);
    assert_eq!(rs.checkers[0].common.connect_port, 8080);
    assert_eq!(c.virtual_servers[1].real_servers[0].port, 0);
}

/// keepalived 2.2.7's corrections: a virtual server without real servers is
/// ignored (its sorry server too); a quorum above the total weight is
/// lowered to it; a hysteresis not below the quorum becomes quorum - 1.
#[test]
fn keepalived_corrections_of_virtual_servers() {
    assert_eq!(
        diags("virtual_server 10.0.0.10 80 {\n sorry_server 10.0.0.19 80\n}\n"),
        [
            "1:1: Warning: virtual_server 10.0.0.10:80 has no real_server: ignored, as keepalived ignores it"
        ]
    );
    let text = "virtual_server 10.0.0.10 80 {\n quorum 5\n hysteresis 2\n real_server 10.0.0.11 80 {\n  weight 2\n }\n}\n";
    assert_eq!(
        diags(text),
        [
            "2:2: Warning: quorum 5 exceeds the real servers' total weight 2: reduced to 2, as keepalived does",
            "3:2: Warning: hysteresis 2 is not below quorum 2: set to 1, as keepalived does",
        ]
    );
    let l = ipvsdir::config::load_str("t.conf", text, &ipvsdir::config::LoadOptions::default());
    let vs = &l.config.expect("loads").virtual_servers[0];
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
}

#[test]
fn lowercase_method_and_auth_warn() {
    assert_eq!(
        diags(&vs(" lb_kind dr", "")),
        [
            "2:10: Warning: `lb_kind dr` taken as DR; write DR (keepalived 2.2.7 rejects 'dr' and falls back to NAT)"
        ]
    );
}

#[test]
fn comments_quotes_and_braces_on_their_own_line() {
    let t = "! comment\nvrrp_script chk # trailing\n{\n script 'killall -0 \"nginx\"' ! trailing\n}\nvrrp_instance VI_1\n{\n interface eth0 # nic\n virtual_router_id 51\n track_script { chk }\n virtual_ipaddress { 10.0.0.1 }\n}\n";
    let c = ok(t);
    assert_eq!(c.vrrp_scripts[0].script.command, "killall -0 \"nginx\"");
    assert_eq!(c.vrrp_instances[0].track_script[0].name, "chk");
    assert_eq!(c.vrrp_instances[0].virtual_ipaddress.len(), 1);
}

#[test]
fn syntax_errors() {
    assert_eq!(
        diags("global_defs {\n router_id x\n"),
        ["1:13: Error: unclosed '{': this block has no matching '}' before the end of the file"]
    );
    assert_eq!(
        diags("global_defs {\n}\n}\n"),
        ["3:1: Error: unexpected '}': there is no open block to close here"]
    );
    assert_eq!(
        diags("global_defs {\n router_id \"unterminated\n}\n"),
        [
            "2:12: Error: unterminated quoted string: close it with a matching quote on the same line"
        ]
    );
}

#[test]
fn conditional_lines_follow_config_id() {
    let t = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n@a priority 170\n@^a priority 50\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";
    let with = |id: Option<&str>| {
        let opts = LoadOptions {
            config_id: id.map(String::from),
            ..Default::default()
        };
        load_str("t.conf", t, &opts).config.unwrap().vrrp_instances[0].priority
    };
    assert_eq!(with(Some("a")), 170);
    assert_eq!(with(Some("b")), 50);
    assert_eq!(with(None), 50);
}

#[test]
fn keyword_in_the_wrong_block_says_where_it_belongs() {
    assert_eq!(
        diags("global_defs {\n virtual_router_id 5\n}\n"),
        ["2:2: Warning: `virtual_router_id` belongs in a vrrp_instance block, not here; ignored"]
    );
}

#[test]
fn model_round_trips_through_json() {
    let text = std::fs::read_to_string("conf/lvs-nat.conf").unwrap();
    let c = ok(&text);
    let json = ipvsdir::config::normalized::to_json(&c);
    let back: ipvsdir::config::model::Config = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    assert!(json.contains("\"status_codes\": \"200\""), "{json}");
}

#[test]
fn lthreshold_needs_an_upper_threshold() {
    assert_eq!(
        diags(&vs("", "  lthreshold 5")),
        [
            "3:2: Error: lthreshold 5 is above uthreshold 0: the kernel refuses that; set uthreshold to at least 5"
        ]
    );
}
