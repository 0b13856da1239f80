//! `include`: globs relative to the including file, nested includes,
//! missing files and loops.

use std::fs;

use ipvsdir::config::{LoadOptions, load};

const INSTANCE: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n";

#[test]
fn glob_relative_to_the_including_file_and_nested() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    fs::create_dir_all(etc.join("conf.d/more")).unwrap();
    fs::write(
        etc.join("main.conf"),
        "global_defs {\n router_id a\n}\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    fs::write(
        etc.join("conf.d/10-vrrp.conf"),
        format!("{INSTANCE}include more/x.conf\n"),
    )
    .unwrap();
    fs::write(
        etc.join("conf.d/more/x.conf"),
        "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n}\n",
    )
    .unwrap();
    fs::write(etc.join("conf.d/ignored.txt"), "garbage {").unwrap();
    // Run from elsewhere: paths resolve against the including file, not the cwd.
    let l = load(&etc.join("main.conf"), &LoadOptions::default());
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let c = l.config.unwrap();
    assert_eq!(c.global.router_id.as_deref(), Some("a"));
    assert_eq!(c.vrrp_instances.len(), 1);
    assert_eq!(c.virtual_servers.len(), 1);
}

#[test]
fn include_inside_a_block() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("vips.conf"),
        "  10.0.0.7/24\n  10.0.0.8/24\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("main.conf"),
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  include vips.conf\n }\n}\n",
    )
    .unwrap();
    let l = load(&dir.path().join("main.conf"), &LoadOptions::default());
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    assert_eq!(
        l.config.unwrap().vrrp_instances[0].virtual_ipaddress.len(),
        2
    );
}

#[test]
fn missing_files_are_warnings_as_in_keepalived() {
    // keepalived 2.2.7: "Config files missing" is logged, `-t` still passes.
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.conf");
    fs::write(
        &main,
        format!("include nope.conf\ninclude none.d/*.conf\n{INSTANCE}"),
    )
    .unwrap();
    let l = load(&main, &LoadOptions::default());
    let msgs: Vec<String> = l
        .diagnostics
        .items
        .iter()
        .map(|d| format!("{:?}: {}", d.severity, d.message))
        .collect();
    let base = dir.path().display();
    assert_eq!(
        msgs,
        [
            format!("Warning: included file '{base}/nope.conf' does not exist"),
            format!(
                "Warning: include pattern '{base}/none.d/*.conf' matches no file (its directory does not exist)"
            ),
        ]
    );
    assert!(l.config.is_some());
}

#[test]
fn missing_main_file_says_so() {
    let l = load(
        std::path::Path::new("/nonexistent/ipvsdir.conf"),
        &LoadOptions::default(),
    );
    assert!(l.config.is_none());
    assert_eq!(
        l.diagnostics.to_string(),
        "error: cannot read /nonexistent/ipvsdir.conf: No such file or directory (os error 2)\n"
    );
}

#[test]
fn self_include_is_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.conf");
    fs::write(&main, "include main.conf\n").unwrap();
    let l = load(&main, &LoadOptions::default());
    assert!(l.config.is_none());
    let msg = &l.diagnostics.items[0].message;
    assert!(msg.starts_with("include loop: "), "{msg}");
}
