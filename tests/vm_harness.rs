//! The kernel VM harness (scripts/kernel-vm/run), which boots a Debian kernel
//! that has IPVS under qemu because the build hosts' kernel has none.
//!
//! Everything is checked in ONE boot to keep CI fast: the guest command does
//! its IPVS work into /results files and ends with a known stdout, stderr and
//! exit status.  Without qemu or the kernel cache (scripts/kernel-vm/setup)
//! the test is skipped, except under CI=true, where it fails.

mod common;

use std::fs;
use std::process::Command;

use common::{vm_or_skip, vm_script as script};

const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "mh", "sed", "nq", "fo", "ovf", "twos",
];

/// Is kernel release `release` (e.g. "6.1.0-56-cloud-amd64") at least major.minor?
fn kernel_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

#[test]
fn usage_errors_exit_2_without_booting() {
    let out = Command::new("bash")
        .arg(script("run"))
        .arg("--no-such-option")
        .output()
        .expect("run bash");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = Command::new("bash")
        .arg(script("run"))
        .args(["--timeout", "soon", "--", "true"])
        .output()
        .expect("run bash");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn one_boot_checks_streams_ipvs_schedulers_and_results() {
    if !vm_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let results = tmp.path().join("results");
    let payload = tmp.path().join("payload.bin");
    let payload_bytes: Vec<u8> = (0..=255u8).chain(*b"\r\n\0end\n").collect();
    fs::write(&payload, &payload_bytes).expect("write payload");

    let scheds = SCHEDULERS.join(" ");
    // Everything but the final three lines writes to /results only, so the
    // command's own stdout/stderr are exactly "out\n" / "err\n".
    let command = format!(
        r#"exec 3>&1 4>&2 >/results/log 2>&1
uname -r >/results/uname
ipvsadm -A -t 10.0.0.1:80 -s wrr && ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3 && ipvsadm -Ln >/results/ipvsadm
port=8000
for s in {scheds}; do
    port=$((port + 1))
    if ipvsadm -A -t 10.0.1.1:$port -s $s; then echo "ok $s"; else echo "failed $s"; fi
done >/results/schedulers 2>&1
ipvsadm -Ln >/results/ipvsadm-all
mkdir -p /results/nested/dir && cp payload.bin /results/nested/dir/
ipvsdir --help >/dev/null 2>&1; echo $? >/results/ipvsdir-rc
exec 1>&3 2>&4
echo out; echo err >&2; exit 3"#
    );
    let out = Command::new("bash")
        .arg(script("run"))
        .arg("--file")
        .arg(&payload)
        .arg("--bin")
        .arg(format!(
            "{}:/usr/local/bin/ipvsdir",
            env!("CARGO_BIN_EXE_ipvsdir")
        ))
        .arg("--results")
        .arg(&results)
        .args(["--timeout", "240", "--"])
        .arg(&command)
        .output()
        .expect("run bash");
    let read = |name: &str| {
        fs::read_to_string(results.join(name)).unwrap_or_else(|e| {
            panic!(
                "results/{name}: {e}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };

    // (a) stdout, stderr and exit status come back separately and exactly.
    assert_eq!(
        (out.status.code(), &out.stdout[..], &out.stderr[..]),
        (Some(3), &b"out\n"[..], &b"err\n"[..]),
        "stdout {:?}, stderr {:?}, guest log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(results.join("log")).unwrap_or_default()
    );
    assert_eq!(read("log"), "", "the guest command complained");

    // (b) a real IPVS table.
    let table = read("ipvsadm");
    assert!(table.contains("TCP  10.0.0.1:80 wrr"), "{table}");
    let real = table
        .lines()
        .find(|l| l.contains("-> 10.0.0.2:80"))
        .unwrap_or_else(|| panic!("no real server in:\n{table}"));
    let cols: Vec<&str> = real.split_whitespace().collect();
    assert_eq!(cols[2..4], ["Masq", "3"], "{real}");

    // (c) every scheduler module loads (ip_vs_twos only exists from 6.2 on).
    let release = read("uname");
    let sched_log = read("schedulers");
    for s in SCHEDULERS {
        let ok = sched_log.lines().any(|l| l == format!("ok {s}"));
        if s == "twos" && !kernel_at_least(release.trim(), 6, 2) {
            eprintln!("note: kernel {} predates ip_vs_twos", release.trim());
            continue;
        }
        assert!(ok, "scheduler {s} on {release}: {sched_log}");
    }
    let all = read("ipvsadm-all");
    for (i, s) in SCHEDULERS.iter().enumerate() {
        let line = format!("TCP  10.0.1.1:{} {s}", 8001 + i);
        if sched_log.contains(&format!("ok {s}")) {
            assert!(all.contains(&line), "{line} missing from:\n{all}");
        }
    }

    // (d) /results comes back byte for byte, directories included; --file
    // landed in /work and --bin brought the project's binary with its libraries.
    let back = fs::read(results.join("nested/dir/payload.bin")).expect("payload came back");
    assert_eq!(back, payload_bytes);
    let rc = read("ipvsdir-rc");
    assert!(
        !matches!(rc.trim(), "126" | "127"),
        "ipvsdir did not execute in the guest: {rc}"
    );
}

#[test]
fn kernel_version_compare() {
    assert!(!kernel_at_least("6.1.0-56-cloud-amd64", 6, 2));
    assert!(kernel_at_least("6.12.117+deb12-cloud-amd64", 6, 2));
    assert!(kernel_at_least("7.0.1", 6, 2));
}
