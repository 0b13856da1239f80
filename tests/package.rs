//! The Debian package: `scripts/package` builds it, `dpkg -i` installs it on
//! this machine, and the installed files are checked with their own tools
//! (`systemd-analyze verify`, `man --warnings -l`, `ipvsdir --version`);
//! then it is purged.
//!
//! It installs a package system-wide, so it runs under CI=true (where a
//! missing prerequisite fails it: scripts/package-setup installs them) or
//! when IPVSDIR_TEST_PACKAGE=1 asks for it; otherwise it skips, saying why.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FILES: &[&str] = &[
    "/usr/sbin/ipvsdir",
    "/lib/systemd/system/ipvsdir.service",
    "/etc/ipvsdir/ipvsdir.conf",
    "/usr/share/man/man8/ipvsdir.8.gz",
    "/usr/share/man/man5/ipvsdir.conf.5.gz",
    "/usr/share/bash-completion/completions/ipvsdir",
    "/usr/share/zsh/vendor-completions/_ipvsdir",
    "/usr/share/doc/ipvsdir/copyright",
    "/usr/share/doc/ipvsdir/README.md",
    "/usr/share/doc/ipvsdir/examples/lvs-nat.conf",
];

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Why this machine cannot run the test, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("dpkg -i needs root".into());
    }
    for tool in ["dpkg", "dpkg-deb", "systemd-analyze", "man", "gzip"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is missing (scripts/package-setup)"));
        }
    }
    None
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Text without overstrike (bold `c\bc`, underline `_\bc`).
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

/// Purges the package when the test ends, passed or not.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "ipvsdir"]).output();
    }
}

#[test]
fn package_builds_installs_and_checks_clean() {
    if !ci() && std::env::var("IPVSDIR_TEST_PACKAGE").as_deref() != Ok("1") {
        eprintln!(
            "SKIP: installs a package system-wide; runs under CI=true or with IPVSDIR_TEST_PACKAGE=1"
        );
        return;
    }
    if let Some(why) = missing_prerequisite() {
        if ci() {
            panic!("package test required under CI=true: {why}");
        }
        eprintln!("SKIP: {why}");
        return;
    }
    let repo = common::repo();
    let out = run(Command::new(repo.join("scripts/package")).current_dir(repo));
    let deb_name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let deb: PathBuf = repo.join(&deb_name);
    assert!(
        deb.is_file(),
        "scripts/package printed {deb_name:?}, not a file"
    );

    // What the package holds, before it is installed.
    let listing =
        String::from_utf8_lossy(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)).stdout)
            .into_owned();
    for f in FILES {
        assert!(
            listing.contains(&format!(".{f}\n")),
            "{f} missing from the package:\n{listing}"
        );
    }
    let name = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Package"));
    assert_eq!(String::from_utf8_lossy(&name.stdout).trim(), "ipvsdir");

    let _purge = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));
    for f in FILES {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "ipvsdir"]));
    assert!(
        String::from_utf8_lossy(&conffiles.stdout).contains("/etc/ipvsdir/ipvsdir.conf"),
        "the example configuration is not a conffile"
    );

    // The unit as systemd reads it: its ExecStart= binary must exist.
    let unit = std::fs::read_to_string("/lib/systemd/system/ipvsdir.service").expect("the unit");
    assert!(
        unit.contains("ExecStart=/usr/sbin/ipvsdir "),
        "the unit does not run /usr/sbin/ipvsdir"
    );
    let verify = run(
        Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/ipvsdir.service"])
    );
    assert!(
        verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The manual pages render without a warning, with their contents.
    for (page, says) in [
        ("/usr/share/man/man8/ipvsdir.8.gz", "--config-test"),
        ("/usr/share/man/man5/ipvsdir.conf.5.gz", "vrrp_instance"),
    ] {
        let out = run(Command::new("man")
            .args(["--warnings", "-l", page])
            .env("MANWIDTH", "80")
            .env_remove("MAN_KEEP_FORMATTING"));
        let text = plain(&String::from_utf8_lossy(&out.stdout));
        assert!(
            out.stderr.is_empty(),
            "man --warnings -l {page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(says),
            "{page} does not mention {says}:\n{text}"
        );
    }

    // The shipped example is a valid configuration that runs nothing.
    let test =
        run(Command::new("/usr/sbin/ipvsdir").args(["-t", "-f", "/etc/ipvsdir/ipvsdir.conf"]));
    assert!(
        String::from_utf8_lossy(&test.stderr).contains("configuration OK (0 warnings)"),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let version = run(Command::new("/usr/sbin/ipvsdir").arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("ipvsdir {}", env!("CARGO_PKG_VERSION"))
    );

    run(Command::new("dpkg").args(["--purge", "ipvsdir"]));
    for f in FILES {
        assert!(!Path::new(f).exists(), "{f} left after dpkg --purge");
    }
}
