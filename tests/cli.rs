//! The command line as an operator meets it: exit codes and messages.

use std::process::Command;

fn ipvsdir(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .args(args)
        .output()
        .expect("run ipvsdir");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_test_exit_codes() {
    let (code, _, err) = ipvsdir(&["-t", "-f", "conf/lvs-nat.conf"]);
    assert_eq!(code, 0, "{err}");
    // The only warnings: the sample's interfaces this host lacks (eth0, eth1).
    let absent = err.matches("does not exist here now").count();
    let verdict = match absent {
        1 => "configuration OK (1 warning)".to_string(),
        n => format!("configuration OK ({n} warnings)"),
    };
    assert!(err.contains(&verdict), "{err}");
    let (code, _, err) = ipvsdir(&["-t", "-f", "tests/fixtures/broken/vrid-300.conf"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("vrid-300.conf:4:23: error: virtual_router_id 300 is out of range: use 1-255"),
        "{err}"
    );
    assert!(
        err.contains("1 error — the configuration cannot run"),
        "{err}"
    );
}

#[test]
fn dump_config_json_is_the_model() {
    let (code, out, err) = ipvsdir(&["-f", "conf/lvs-dr.conf", "--dump-config", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["virtual_servers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}

/// On a kernel without IPVS (like the build hosts') the IPVS commands say
/// so and exit 2. Elsewhere there is nothing to check here.
#[test]
fn without_ipvs_the_message_says_what_to_do() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("SKIP: this kernel has IPVS");
        return;
    }
    for args in [&["--dump"][..], &["-f", "conf/lvs-nat.conf", "--plan"][..]] {
        let (code, _, err) = ipvsdir(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("the kernel has no IPVS: load the ip_vs module"),
            "{err}"
        );
    }
}

/// `-C --no-ipvs` runs the checkers without the kernel table (this host may
/// have no IPVS at all): a listening real server is reported up, a closed
/// port down, and SIGTERM ends it cleanly.
#[test]
fn no_ipvs_checks_and_reports_without_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let open = listener.local_addr().expect("addr").port();
    // Bound (no other test can take the port) but not listening: refused.
    let refusing =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    refusing.bind(&any.into()).expect("bind");
    let closed = refusing
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("addr")
        .port();
    let conf = dir.path().join("c.conf");
    std::fs::write(
        &conf,
        format!(
            "virtual_server 127.0.0.1 80 {{\n  delay_loop 1\n  lb_kind NAT\n  protocol TCP\n\
             real_server 127.0.0.1 {open} {{\n TCP_CHECK {{\n connect_timeout 1\n }}\n }}\n\
             real_server 127.0.0.1 {closed} {{\n TCP_CHECK {{\n connect_timeout 1\n retry 0\n }}\n }}\n}}\n"
        ),
    )
    .expect("write config");
    let health = dir.path().join("health.json");
    let sock = dir.path().join("ipvsdir.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .arg("-f")
        .arg(&conf)
        .args(["-C", "--no-ipvs", "-n", "-l", "--health-state"])
        .arg(&health)
        .arg("--control-socket")
        .arg(&sock)
        .arg("--owned-state")
        .arg(dir.path().join("owned"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ipvsdir");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let report = loop {
        let r = ipvsdir::daemon::status::read(&health);
        let settled = r.as_ref().is_some_and(|r| {
            r.servers().count() == 2
                && r.servers()
                    .all(|(_, s)| s.checks.iter().all(|c| c.last_ok.is_some()))
        });
        if settled || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(stderr.contains("--no-ipvs"), "{stderr}");
    let report = report.unwrap_or_else(|| panic!("no health report\n{stderr}"));
    let up = |port: u16| {
        report
            .servers()
            .map(|(_, s)| s)
            .find(|s| s.real_server == format!("127.0.0.1:{port}"))
            .map(|s| s.up)
    };
    assert_eq!(up(open), Some(true), "{report:?}");
    assert_eq!(up(closed), Some(false), "{report:?}");
    drop(listener);
}

fn conf(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p.to_string_lossy().into_owned()
}

/// Every flag of `keepalived --help` (2.2.7) parses; those without a meaning
/// here say so in one line each.
#[test]
fn every_keepalived_flag_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let f = conf(dir.path(), "k.conf", "global_defs {\n router_id a\n}\n");
    let all: &[&[&str]] = &[
        &["-P"],
        &["--vrrp"],
        &["-C"],
        &["--check"],
        &["-B"],
        &["--no_bfd"],
        &["--all"],
        &["-l"],
        &["--log-console"],
        &["-D"],
        &["--log-detail"],
        &["-S", "0"],
        &["-S", "local7"],
        &["--log-facility=user"],
        &["--log-facility", "daemon"],
        &["-G"],
        &["--no-syslog"],
        &["-u", "022"],
        &["--umask=0x12"],
        &["-X"],
        &["--release-vips"],
        &["-V"],
        &["--dont-release-vrrp"],
        &["-I"],
        &["--dont-release-ipvs"],
        &["-R"],
        &["--dont-respawn"],
        &["-n"],
        &["--dont-fork"],
        &["-d"],
        &["--dump-conf"],
        &["-p", "/tmp/ipvsdir-cli-test.pid"],
        &["--pid=/tmp/ipvsdir-cli-test.pid"],
        &["-r", "/tmp/v.pid"],
        &["--vrrp_pid=/tmp/v.pid"],
        &["-c", "/tmp/c.pid"],
        &["--checkers_pid", "/tmp/c.pid"],
        &["-a"],
        &["--address-monitoring"],
        &["-b", "/tmp/b.pid"],
        &["--bfd_pid=/tmp/b.pid"],
        &["-x"],
        &["--snmp"],
        &["-A", "/tmp/agentx"],
        &["--snmp-agent-socket=/tmp/agentx"],
        &["-m"],
        &["--core-dump"],
        &["-M"],
        &["--core-dump-pattern=core.%p"],
        &["-e"],
        &["--all-config"],
        &["-i", "web1"],
        &["--config-id", "web1"],
        // Repeated, the last one wins (getopt).
        &["-S", "1", "-S", "2", "-i", "a", "-i", "b"],
    ];
    for flags in all {
        let mut args = vec!["-t", "-f", &f];
        args.extend_from_slice(flags);
        let (code, _, err) = ipvsdir(&args);
        assert_eq!(code, 0, "{flags:?}: {err}");
        assert!(err.contains("configuration OK"), "{flags:?}: {err}");
    }
    // The long form of -t too.
    let (code, _, err) = ipvsdir(&["--config-test", "-f", &f]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn flags_without_a_meaning_here_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let f = conf(dir.path(), "k.conf", "");
    for (flag, word) in [
        ("-x", "no SNMP"),
        ("-B", "no BFD"),
        ("-R", "no children to respawn"),
        ("--all", "one process"),
        ("-a", "address changes are not logged"),
    ] {
        let (code, _, err) = ipvsdir(&["-t", "-f", &f, flag]);
        assert_eq!(code, 0, "{flag}: {err}");
        let notices: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("accepted for keepalived"))
            .collect();
        assert_eq!(notices.len(), 1, "{flag}: {err}");
        assert!(
            notices[0].contains(flag) && notices[0].contains(word),
            "{flag}: {err}"
        );
    }
}

/// keepalived's -v prints the version; -V is --dont-release-vrrp, not the version.
#[test]
fn version_is_lower_case_v() {
    let (code, out, err) = ipvsdir(&["-v"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("ipvsdir {}", env!("CARGO_PKG_VERSION")));
    let (code, out, _) = ipvsdir(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ipvsdir "));
    // -V alone does not print the version: it is a daemon flag.
    let (code, out, err) = ipvsdir(&["-V", "-t", "-f", "conf/lvs-nat.conf"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("ipvsdir 0"), "{out}");
    assert!(err.contains("configuration OK"), "{err}");
}

#[test]
fn help_lists_the_keepalived_flags() {
    let (code, out, _) = ipvsdir(&["-h"]);
    assert_eq!(code, 0);
    for f in [
        "--use-file",
        "--vrrp",
        "--check",
        "--no_bfd",
        "--all",
        "--log-console",
        "--log-detail",
        "--log-facility",
        "--no-syslog",
        "--umask",
        "--release-vips",
        "--dont-release-vrrp",
        "--dont-release-ipvs",
        "--dont-respawn",
        "--dont-fork",
        "--dump-conf",
        "--pid",
        "--vrrp_pid",
        "--genhash",
        "--checkers_pid",
        "--address-monitoring",
        "--bfd_pid",
        "--snmp",
        "--snmp-agent-socket",
        "--namespace",
        "--core-dump",
        "--core-dump-pattern",
        "--all-config",
        "--config-id",
        "--signum",
        "--config-test",
        "--version",
        "--help",
    ] {
        assert!(out.contains(f), "-h does not list {f}:\n{out}");
    }
    for short in [
        "-f,", "-P,", "-C,", "-B,", "-l,", "-D,", "-S,", "-G,", "-u,", "-X,", "-V,", "-I,", "-R,",
        "-n,", "-d,", "-p,", "-r,", "-T,", "-c,", "-a,", "-b,", "-x,", "-A,", "-s,", "-m,", "-M,",
        "-e,", "-i,", "-t,", "-v,", "-h,",
    ] {
        assert!(out.contains(short), "-h does not list {short}:\n{out}");
    }
}

/// keepalived --signum's numbers (checked against keepalived 2.2.7) where
/// ipvsdir has the function; STATS_CLEAR it has not.
#[test]
fn signum_prints_the_signal_numbers() {
    for (f, n) in [
        ("STOP", "15"),
        ("RELOAD", "1"),
        ("DATA", "10"),
        ("STATS", "12"),
        ("JSON", "10"),
    ] {
        let (code, out, err) = ipvsdir(&["--signum", f]);
        assert_eq!((code, out.trim()), (0, n), "{f}: {err}");
    }
    let (code, _, err) = ipvsdir(&["--signum=STATS_CLEAR"]);
    assert_eq!(code, 1);
    assert!(err.contains("no signal clears the statistics"), "{err}");
    let (code, _, err) = ipvsdir(&["--signum=FOO"]);
    assert_eq!(code, 1);
    assert!(err.contains("Unknown sigfunc FOO"), "{err}");
}

/// `-t=FILE` appends the verdict to FILE (keepalived's --config-test=LOG_FILE).
#[test]
fn config_test_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("test.log");
    let (code, _, err) = ipvsdir(&[
        &format!("--config-test={}", log.display()),
        "-f",
        "tests/fixtures/broken/vrid-300.conf",
    ]);
    assert_eq!(code, 1);
    assert!(!err.contains("vrid-300"), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("virtual_router_id 300 is out of range"),
        "{text}"
    );
    let (code, _, _) = ipvsdir(&[&format!("-t={}", log.display()), "-f", "conf/lvs-nat.conf"]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("out of range") && text.contains("configuration OK"),
        "{text}"
    );
    // A symlink is not followed.
    let link = dir.path().join("link.log");
    std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
    let (code, _, err) = ipvsdir(&[&format!("-t={}", link.display()), "-f", "conf/lvs-nat.conf"]);
    assert_eq!(code, 1, "{err}");
    assert!(!dir.path().join("target").exists());
}

/// -e: a missing include is an error (keepalived's --all-config).
#[test]
fn all_config_makes_a_missing_include_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = conf(
        dir.path(),
        "k.conf",
        "include /nonexistent/ipvsdir-part.conf\n",
    );
    let (code, _, err) = ipvsdir(&["-t", "-f", &f]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: included file"), "{err}");
    let (code, _, err) = ipvsdir(&["-t", "-e", "-f", &f]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error: included file"), "{err}");
}

/// -T is genhash mode when it comes first, as keepalived's.
#[test]
fn genhash_mode_flag() {
    let (code, _, err) = ipvsdir(&["-T", "-s", "127.0.0.1", "-p", "1", "-t", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("ipvsdir genhash:"), "{err}");
    let (code, _, err) = ipvsdir(&["-t", "-T"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("-T (--genhash) must be the first option"),
        "{err}"
    );
}

#[test]
fn namespace_must_exist() {
    let (code, _, err) = ipvsdir(&["-s", "ipvsdir-no-such-ns", "-t", "-f", "conf/lvs-nat.conf"]);
    assert_eq!(code, 2);
    assert!(err.contains("ip netns add ipvsdir-no-such-ns"), "{err}");
}

#[test]
fn bad_umask_and_facility_warn_and_go_on() {
    let (code, _, err) = ipvsdir(&[
        "-u",
        "0999",
        "-S",
        "local9",
        "-t",
        "-f",
        "conf/lvs-nat.conf",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("invalid --umask 0999"), "{err}");
    assert!(err.contains("invalid log facility 'local9'"), "{err}");
}

/// The daemon on an empty file, its files in `dir`, until `check` has seen it
/// (its pid given), then SIGTERM.
fn with_daemon(dir: &std::path::Path, extra: &[&str], check: impl FnOnce(u32)) {
    use std::time::{Duration, Instant};
    let conf = dir.join("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let log = dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .args(extra)
        .arg("-f")
        .arg(&conf)
        .arg("--control-socket")
        .arg(dir.join("s"))
        .arg("--vrrp-state")
        .arg(dir.join("v.json"))
        .arg("--health-state")
        .arg(dir.join("h.json"))
        .arg("--dump-dir")
        .arg(dir)
        .env_remove("JOURNAL_STREAM")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10)
        && !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ipvsdir ready")
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(pid)));
    // SAFETY: kill(2) on our child.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// -m: a crash leaves a core dump (RLIMIT_CORE unlimited).
#[test]
fn core_dump_flag_lifts_the_core_limit() {
    let dir = tempfile::tempdir().unwrap();
    with_daemon(dir.path(), &["-m"], |pid| {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert!(core.contains("unlimited"), "{core}");
    });
}

/// -s NAME: the daemon runs in /run/netns/NAME.
#[test]
fn namespace_flag_enters_the_namespace() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() || Command::new("ip").arg("-V").output().is_err() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("needs root and ip(8), and CI=true has them");
        }
        eprintln!("skipped: needs root and ip(8)");
        return;
    }
    let name = format!("ipvsdir-cli-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip netns add {name}");
    let dir = tempfile::tempdir().unwrap();
    let want = std::fs::metadata(format!("/run/netns/{name}"))
        .unwrap()
        .ino();
    let result = std::panic::catch_unwind(|| {
        with_daemon(dir.path(), &["-s", &name], |pid| {
            let got = std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .unwrap()
                .ino();
            assert_eq!(got, want, "the daemon is not in {name}");
        })
    });
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// -u MASK: the files the daemon creates with the process umask (its pid
/// file) follow it.
#[test]
fn umask_flag_applies_to_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("d.pid");
    let p = pid_file.to_str().unwrap().to_string();
    with_daemon(dir.path(), &["-u", "077", "-p", &p], |_| {
        let mode = std::fs::metadata(&pid_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "pid file mode {mode:o} with -u 077");
    });
}

/// keepalived's -t looks at the host's interfaces; ipvsdir's warns about
/// those that do not exist now (the daemon waits for them in FAULT), and
/// the file still passes.
#[test]
fn config_test_warns_about_absent_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("t.conf");
    std::fs::write(
        &conf,
        "vrrp_instance VI_1 {\n interface ipvsdir-none0\n virtual_router_id 51\n track_interface {\n  ipvsdir-none1\n }\n virtual_ipaddress {\n  10.0.0.1/24\n }\n}\n",
    )
    .unwrap();
    let (code, _, err) = ipvsdir(&["-t", "-f", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: vrrp_instance VI_1: interface ipvsdir-none0 does not exist here now; the instance will wait for it in FAULT"),
        "{err}"
    );
    assert!(
        err.contains("warning: vrrp_instance VI_1: track_interface ipvsdir-none1 does not exist here now; it counts as down until it appears"),
        "{err}"
    );
    assert!(err.contains("configuration OK (2 warnings)"), "{err}");
}
