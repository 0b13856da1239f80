//! The routing daemons' snippets we ship for announcements are accepted by
//! the daemons themselves: conf/bird2-announce.conf (director, and the
//! router half in its trailing comment) with `bird -p`, and
//! conf/frr-announce.conf (director, and the router half) with
//! `vtysh --dryrun`. Needs Debian's bird2 and frr (scripts/netns-lab/setup):
//! fails under CI=true without them, skips elsewhere.

mod common;

use std::path::Path;
use std::process::Command;

fn tool(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "command -v {program} || test -x /usr/sbin/{program}"
        ))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`{program}` is required under CI=true: run scripts/netns-lab/setup");
        }
        eprintln!("SKIP: `{program}` is missing (scripts/netns-lab/setup installs it)");
    }
    found
}

/// The commented-out half of a snippet: the lines from `first` on, with
/// their comment marker (`# ` or `! `) taken off.
fn commented_half(text: &str, marker: char, first: &str) -> String {
    let start = text
        .find(first)
        .unwrap_or_else(|| panic!("`{first}` is not in the snippet"));
    text[start..]
        .lines()
        .map(|l| {
            l.strip_prefix(marker)
                .map(|r| r.strip_prefix(' ').unwrap_or(r))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check(program: &str, args: &[&str], file: &Path) {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} refuses {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bird2_snippet_parses_on_both_sides() {
    if !tool("bird") {
        return;
    }
    let path = common::repo().join("conf/bird2-announce.conf");
    check("bird", &["-p", "-c"], &path);
    let text = std::fs::read_to_string(&path).expect("read the snippet");
    let dir = tempfile::tempdir().expect("tempdir");
    let router = dir.path().join("router.conf");
    std::fs::write(
        &router,
        commented_half(&text, '#', "# router id 192.0.2.1;"),
    )
    .expect("write");
    check("bird", &["-p", "-c"], &router);
}

#[test]
fn frr_snippet_parses_on_both_sides() {
    if !tool("vtysh") {
        return;
    }
    let path = common::repo().join("conf/frr-announce.conf");
    check("vtysh", &["--dryrun", "-f"], &path);
    let text = std::fs::read_to_string(&path).expect("read the snippet");
    let dir = tempfile::tempdir().expect("tempdir");
    let router = dir.path().join("router.conf");
    std::fs::write(
        &router,
        commented_half(&text, '!', "! bgp community-list standard GSHUT"),
    )
    .expect("write");
    check("vtysh", &["--dryrun", "-f"], &router);
    assert!(
        text.contains("router bgp 65000") && text.contains("maximum-paths"),
        "the router half is in the snippet"
    );
}
