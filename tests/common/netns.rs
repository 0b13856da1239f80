//! Helpers for tests that need root and a network namespace of their own.

use std::process::Command;

/// Whether this process may create namespaces and raw sockets. Under
/// CI=true a missing prerequisite is a failure; elsewhere the test skips
/// after saying why.
pub fn root_or_skip(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} needs root under CI=true");
    }
    eprintln!("SKIP: {what} needs root");
    false
}

/// Moves the calling thread into a fresh network namespace with `lo` up.
/// Netlink and raw sockets opened by this thread afterwards, and child
/// processes it spawns, live in it; so use a current-thread runtime.
pub fn enter_new_netns_or_skip(what: &str) -> bool {
    if !root_or_skip(what) {
        return false;
    }
    // SAFETY: unshare only changes this thread's namespace membership.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    sh("ip link set lo up");
    true
}

/// Runs a shell command in the current namespace, asserting success; returns stdout.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("start sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
