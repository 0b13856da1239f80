//! Broken configurations give the exact, documented diagnostics.

use std::path::Path;

use ipvsdir::config::{LoadOptions, load};

fn check(name: &str) {
    let conf = Path::new("tests/fixtures/broken").join(format!("{name}.conf"));
    let expected_path = Path::new("tests/fixtures/broken").join(format!("{name}.expected"));
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let l = load(&conf, &LoadOptions::default());
    assert!(l.config.is_none(), "{name} must not load");
    assert_eq!(l.diagnostics.to_string(), expected, "{name}");
}

#[test]
fn unclosed_brace() {
    check("unclosed-brace");
}

#[test]
fn bad_ip() {
    check("bad-ip");
}

#[test]
fn vrid_300() {
    check("vrid-300");
}

#[test]
fn digest_of_31_chars() {
    check("digest-31");
}

#[test]
fn unknown_vrrp_script_in_track_script() {
    check("unknown-track-script");
}

#[test]
fn include_loop() {
    check("include-loop/main");
}

#[test]
fn announce_mistakes() {
    check("announce");
}

#[test]
fn announce_without_a_usable_table() {
    check("announce-no-table");
}
