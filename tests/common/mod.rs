//! Shared helpers for the tests that boot the kernel VM (scripts/kernel-vm),
//! use namespaces, or run a daemon on loopback.
#![allow(dead_code)]

pub mod daemon;
pub mod lab;
pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn vm_script(name: &str) -> PathBuf {
    repo().join("scripts/kernel-vm").join(name)
}

/// `run --check`: Ok when qemu and the kernel cache are there, else why not.
pub fn vm_ready() -> Result<(), String> {
    let out = Command::new("bash")
        .arg(vm_script("run"))
        .arg("--check")
        .output()
        .map_err(|e| format!("cannot start bash: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// False (after saying why) when the VM cannot run here and that is allowed;
/// under CI=true a missing VM is a failure.
pub fn vm_or_skip() -> bool {
    match vm_ready() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("kernel VM required under CI=true but not usable: {why}")
        }
        Err(why) => {
            eprintln!("SKIP: kernel VM not usable: {why}");
            false
        }
    }
}

/// Boots the VM with `args` (--bin/--file/...) and runs `command` in it.
pub fn vm_run(args: &[String], command: &str) -> Output {
    Command::new("bash")
        .arg(vm_script("run"))
        .args(args)
        .arg("--")
        .arg(command)
        .output()
        .expect("start scripts/kernel-vm/run")
}

/// Like [`vm_run`], asserting the command succeeded; returns its stdout.
pub fn vm_run_ok(args: &[String], command: &str) -> String {
    let out = vm_run(args, command);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "VM run failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The ipvsdir binary cargo built for this test run.
pub fn ipvsdir_bin() -> String {
    env!("CARGO_BIN_EXE_ipvsdir").to_string()
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// examples/NAME, built for the profile and target directory this test was
/// built with (`cargo nextest run --all-targets` builds examples only as
/// test harnesses, so the program itself is built here; cargo makes that a
/// no-op when it is up to date). None (after saying why) when it cannot be
/// built outside CI; under CI=true that fails the test.
pub fn example_bin(name: &str) -> Option<PathBuf> {
    let profile_dir = PathBuf::from(ipvsdir_bin());
    let profile_dir = profile_dir.parent().expect("target/PROFILE");
    let profile = profile_dir.file_name().and_then(|n| n.to_str());
    built(&["--example", name], profile, &format!("examples/{name}"))
}

/// What the kernel VM runs: the release build of ipvsdir (what users run),
/// in this test's target directory (built here; a no-op when up to date,
/// as after `.ci/run`'s `cargo build --release`). A debug ipvsdir costs the
/// 1-vCPU emulated guest about three times keepalived's CPU (the reload in
/// tests/vm_handoff.rs: 2.05 s against 0.89 s per director), which the
/// request streams there feel as latency.
pub fn vm_ipvsdir_bin() -> Option<String> {
    built(&["--bin", "ipvsdir"], Some("release"), "ipvsdir").map(|p| p.display().to_string())
}

/// examples/NAME built for the kernel VM: release, as [`vm_ipvsdir_bin`].
pub fn vm_example_bin(name: &str) -> Option<PathBuf> {
    built(
        &["--example", name],
        Some("release"),
        &format!("examples/{name}"),
    )
}

/// `cargo build TARGET` for PROFILE (None: the default one) into this
/// test's target directory; the built file `target/PROFILE/EXE`.
fn built(target: &[&str], profile: Option<&str>, exe: &str) -> Option<PathBuf> {
    let missing = |why: String| {
        if ci() {
            panic!("required under CI=true: {why}");
        }
        eprintln!("SKIP: {why}");
        None
    };
    let bin = PathBuf::from(ipvsdir_bin());
    let target_dir = bin
        .parent()
        .and_then(Path::parent)
        .expect("target/PROFILE/ipvsdir");
    let exe = target_dir.join(profile.unwrap_or("debug")).join(exe);
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
    cmd.arg("build")
        .arg("--offline")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(repo().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .args(target);
    match profile {
        None | Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(p) => {
            cmd.args(["--profile", p]);
        }
    }
    let what = target.join(" ");
    match cmd.output() {
        Ok(out) if out.status.success() && exe.is_file() => Some(exe),
        Ok(out) if exe.is_file() && !ci() => {
            eprintln!(
                "note: `cargo build {what}` failed; using the {} already there:\n{}",
                exe.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(exe)
        }
        Ok(out) => missing(format!(
            "{} could not be built ({:?}):\n{}",
            exe.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => missing(format!("cannot run cargo to build {}: {e}", exe.display())),
    }
}

/// Splits output into `=== NAME` sections.
pub fn sections(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut name: Option<String> = None;
    let mut body = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("=== ") {
            if let Some(prev) = name.take() {
                out.insert(prev, std::mem::take(&mut body));
            }
            name = Some(n.to_string());
        } else if name.is_some() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(prev) = name {
        out.insert(prev, body);
    }
    out
}

/// `--file` arguments for scripts/kernel-vm/run: every tests/vm/e2e*.sh
/// (the end-to-end scenarios and their helpers), in name order.
pub fn e2e_script_files() -> Vec<String> {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/vm"))
        .expect("tests/vm")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("e2e") && n.ends_with(".sh"))
        })
        .collect();
    scripts.sort();
    scripts
        .into_iter()
        .flat_map(|s| ["--file".to_string(), s.display().to_string()])
        .collect()
}

/// The `key: value` lines of a section.
pub fn kv(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Boots the VM once for an end-to-end run: `run ARGS -- COMMAND` with
/// every tests/vm/e2e*.sh, one such VM at a time (two emulated CPUs
/// fighting over the host's cores would only stretch every timer in both).
/// Its sections and wall time; the VM's failure is the test's.
pub fn e2e_boot(
    args: &[String],
    command: &str,
) -> (std::collections::BTreeMap<String, String>, f64) {
    let lock_path = std::env::var_os("IPVSDIR_VM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/kernel-vm"))
        .join(".e2e.lock");
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir).expect("target/kernel-vm");
    }
    let lock = std::fs::File::create(&lock_path).expect("create the e2e lock file");
    // SAFETY: flock(2) on a descriptor this function owns; released when
    // `lock` is dropped (closed).
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    let start = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(vm_script("run"))
        .args(args)
        .args(e2e_script_files())
        .arg("--")
        .arg(command)
        .output()
        .expect("start scripts/kernel-vm/run");
    let wall = start.elapsed().as_secs_f64();
    drop(lock);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "VM run `{command}` failed ({:?}):\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    println!("VM boot + run `{command}`: {wall:.1} s");
    println!("{stderr}");
    (sections(&stdout), wall)
}

/// `line:col: severity: message` of every diagnostic (the config tests'
/// way of comparing them).
pub fn located(d: &ipvsdir::config::diag::Diagnostics) -> Vec<String> {
    d.items
        .iter()
        .map(|d| {
            let loc = d.location.as_ref().expect("located");
            format!("{}:{}: {:?}: {}", loc.line, loc.col, d.severity, d.message)
        })
        .collect()
}
