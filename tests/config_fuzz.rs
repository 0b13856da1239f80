//! Property tests: no input panics the configuration loader. (The
//! coverage-guided counterpart is `cargo fuzz run config`, see fuzz/.)

use ipvsdir::config::{LoadOptions, load_str, normalized};
use proptest::prelude::*;

fn load_all_the_way(text: &str) {
    let loaded = load_str("p.conf", text, &LoadOptions::default());
    let _ = loaded.diagnostics.to_string();
    if let Some(cfg) = loaded.config {
        let _ = normalized::to_text(&cfg);
        let _ = normalized::to_json(&cfg);
    }
}

/// Words from the real grammar, so that random inputs reach the builder.
const WORDS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "HTTP_GET",
    "SSL_GET",
    "TCP_CHECK",
    "MISC_CHECK",
    "url",
    "path",
    "digest",
    "status_code",
    "group",
    "fwmark",
    "state",
    "MASTER",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "virtual_ipaddress",
    "virtual_routes",
    "track_script",
    "track_interface",
    "weight",
    "reverse",
    "authentication",
    "auth_type",
    "PASS",
    "auth_pass",
    "unicast_peer",
    "lb_algo",
    "lb_kind",
    "TUN",
    "type",
    "gue",
    "port",
    "persistence_timeout",
    "sorry_server",
    "quorum",
    "hysteresis",
    "delay_loop",
    "retry",
    "connect_port",
    "misc_path",
    "script",
    "interval",
    "version",
    "3",
    "{",
    "}",
    "\n",
    "\"",
    "'",
    "#",
    "!",
    "@x",
    "@^x",
    "0",
    "1",
    "255",
    "300",
    "-1",
    "0.5",
    "1e9",
    "NaN",
    "10.0.0.1",
    "10.0.0.1/24",
    "10.0.0.1-9",
    "fe80::1",
    "ae00::2-f",
    "::/0",
    "200-299",
    "lvs_sync_daemon",
    "lvs_timeouts",
    "tcp",
    "brd",
    "dev",
    "scope",
    "label",
    "via",
    "src",
    "blackhole",
    "sh-port",
    "sh",
    "use_vmac",
    "nopreempt",
    "é",
    "\u{3000}",
    "\\",
    // keepalived's line language: definitions, references, sequences.
    "$A=",
    "$A=10.0.0",
    "$M= \\",
    "\\",
    "$A",
    "${A}",
    "$M",
    "${_RANDOM 1 9}",
    "${_HASH}",
    "${_PWD}",
    "${UNDEF}",
    "~SEQ(I,1,3)",
    "~SEQx(I,0x9,-1,0)",
    "~LST({A,B},{1,2},3)",
    "$I",
    "default",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        load_all_the_way(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        load_all_the_way(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn grammar_word_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(WORDS), 0..120)) {
        load_all_the_way(&words.join(" "));
    }
}
