//! Where the daemon's log lines go and how they look: syslog (`-S`, with
//! keepalived's facility numbering and an `ipvsdir[PID]:` identity), the
//! journal (`<N>` priorities when JOURNAL_STREAM names stderr), the console.
//! No syslog daemon or journald runs on the CI machines: the tests bind
//! their own syslog socket and give the daemon a file as its "journal".

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A file with a warning (an unknown keyword) and nothing to run.
const CONF: &str = "global_defs {\n  router_id t\n  no_such_keyword 1\n}\n";

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.conf"), CONF).expect("write");
        Run { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The daemon on t.conf, its files in the temporary directory.
    fn daemon(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ipvsdir"));
        c.arg("-f")
            .arg(self.path("t.conf"))
            .arg("--control-socket")
            .arg(self.path("ipvsdir.sock"))
            .arg("--vrrp-state")
            .arg(self.path("vrrp.json"))
            .arg("--health-state")
            .arg(self.path("health.json"))
            .arg("--dump-dir")
            .arg(self.dir.path())
            .arg("--syslog-socket")
            .arg(self.path("log"))
            .args(extra)
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        c
    }
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Datagrams until one contains `until` (or 15 s).
fn receive(sock: &UnixDatagram, until: &str) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut lines = Vec::new();
    let t = Instant::now();
    let mut buf = vec![0u8; 8192];
    while t.elapsed() < Duration::from_secs(15) {
        if let Ok(n) = sock.recv(&mut buf) {
            let l = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = l.contains(until);
            lines.push(l);
            if done {
                break;
            }
        }
    }
    lines
}

fn wait_file_contains(p: &Path, what: &str) -> String {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        if text.contains(what) || t.elapsed() > Duration::from_secs(10) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn syslog_with_keepalived_facility_priority_and_identity() {
    let run = Run::new();
    let sock = UnixDatagram::bind(run.path("log")).expect("bind the syslog socket");
    let child = run
        .daemon(&["-S", "3", "-x"])
        .stderr(std::fs::File::create(run.path("stderr")).unwrap())
        .spawn()
        .expect("start");
    let pid = child.id();
    let lines = receive(&sock, "ipvsdir ready");
    stop(child);
    let all = lines.join("\n");
    // -S 3 is LOG_LOCAL3 (19): warning 19*8+4, info 19*8+6.
    let ident = format!("ipvsdir[{pid}]: ");
    let warning = lines
        .iter()
        .find(|l| l.contains("no_such_keyword"))
        .unwrap_or_else(|| panic!("no config warning:\n{all}"));
    assert!(warning.starts_with("<156>"), "{warning}");
    assert!(warning.contains(&format!("{ident}config: ")), "{warning}");
    assert!(warning.contains("t.conf:3:3: warning: "), "{warning}");
    let ready = lines.iter().find(|l| l.contains("ipvsdir ready")).unwrap();
    assert!(ready.starts_with("<158>"), "{ready}");
    assert!(ready.contains(&format!("{ident}daemon: ")), "{ready}");
    // RFC 3164 header: <PRI>Mmm dd hh:mm:ss ident[pid]: ...
    let head = &ready[5..21];
    assert!(
        head.as_bytes()[3] == b' ' && head.as_bytes()[9] == b':' && head.as_bytes()[15] == b' ',
        "{ready}"
    );
    // The notice of a flag with no meaning here goes to syslog too.
    assert!(all.contains("-x (--snmp) accepted"), "{all}");
    // Without -l, nothing on the console.
    let stderr = std::fs::read_to_string(run.path("stderr")).unwrap();
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn facility_names_and_console_with_syslog() {
    let run = Run::new();
    let sock = UnixDatagram::bind(run.path("log")).expect("bind");
    for (flag, info_pri) in [
        ("local7", 23 * 8 + 6),
        ("user", 8 + 6),
        ("daemon", 3 * 8 + 6),
    ] {
        let child = run
            .daemon(&["--log-facility", flag, "-l"])
            .stderr(std::fs::File::create(run.path("stderr")).unwrap())
            .spawn()
            .expect("start");
        let lines = receive(&sock, "ipvsdir ready");
        stop(child);
        let ready = lines
            .iter()
            .find(|l| l.contains("ipvsdir ready"))
            .unwrap_or_else(|| panic!("{flag}: {lines:?}"));
        assert!(
            ready.starts_with(&format!("<{info_pri}>")),
            "{flag}: {ready}"
        );
        // -l: the console has the lines too.
        let stderr = std::fs::read_to_string(run.path("stderr")).unwrap();
        assert!(
            stderr.contains("INFO daemon: ipvsdir ready"),
            "{flag}: {stderr}"
        );
        assert!(stderr.contains("WARN config: "), "{flag}: {stderr}");
    }
}

#[test]
fn no_syslog_wins_and_config_test_never_uses_syslog() {
    let run = Run::new();
    let sock = UnixDatagram::bind(run.path("log")).expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let child = run
        .daemon(&["-S", "local0", "-G"])
        .stderr(std::fs::File::create(run.path("stderr")).unwrap())
        .spawn()
        .expect("start");
    let stderr = wait_file_contains(&run.path("stderr"), "ipvsdir ready");
    stop(child);
    assert!(stderr.contains("ipvsdir ready"), "{stderr}");
    let mut buf = [0u8; 1024];
    assert!(sock.recv(&mut buf).is_err(), "-G: something reached syslog");
    let out = run.daemon(&["-S", "0", "-t", "-x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(sock.recv(&mut buf).is_err(), "-t: something reached syslog");
}

#[test]
fn syslog_socket_missing_says_what_to_do() {
    let run = Run::new();
    let child = run
        .daemon(&["-S", "0"])
        .stderr(std::fs::File::create(run.path("stderr")).unwrap())
        .spawn()
        .expect("start");
    let stderr = wait_file_contains(&run.path("stderr"), "ipvsdir ready");
    stop(child);
    assert!(
        stderr.contains("cannot log to syslog socket") && stderr.contains("-G"),
        "{stderr}"
    );
    // It logs to stderr instead.
    assert!(stderr.contains("ipvsdir ready"), "{stderr}");
}

/// Under systemd, stderr is the journal: each line carries its sd-daemon
/// priority, and no timestamp (journald adds its own).
#[test]
fn journal_stream_gets_priority_prefixes() {
    let run = Run::new();
    let file = std::fs::File::create(run.path("journal")).unwrap();
    let md = file.metadata().unwrap();
    let child = run
        .daemon(&[])
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .stderr(file)
        .spawn()
        .expect("start");
    wait_file_contains(&run.path("journal"), "ipvsdir ready");
    stop(child);
    let text = std::fs::read_to_string(run.path("journal")).unwrap();
    assert!(text.contains("\n<6>daemon: ipvsdir ready\n"), "{text}");
    let warning = text
        .lines()
        .find(|l| l.contains("no_such_keyword"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(warning.starts_with("<4>config: "), "{warning}");
    for l in text.lines() {
        assert!(
            l.starts_with('<'),
            "a line without its priority: {l}\n{text}"
        );
    }

    // JOURNAL_STREAM naming another file (stderr redirected by hand): plain lines.
    let other = std::fs::File::create(run.path("other")).unwrap();
    let child = run
        .daemon(&[])
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .stderr(other)
        .spawn()
        .expect("start");
    let text = wait_file_contains(&run.path("other"), "ipvsdir ready");
    stop(child);
    assert!(text.contains(" INFO daemon: ipvsdir ready"), "{text}");
    assert!(!text.contains("<6>"), "{text}");
}

/// `ExecStartPre=ipvsdir -t` under systemd: the diagnostics keep their
/// priority in the journal, each line of them.
#[test]
fn config_test_under_the_journal() {
    let run = Run::new();
    let file = std::fs::File::create(run.path("journal")).unwrap();
    let md = file.metadata().unwrap();
    let status = run
        .daemon(&["-t"])
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .stderr(file)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(run.path("journal")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("<4>") && lines[0].contains("t.conf:3:3: warning: unknown keyword"),
        "{text}"
    );
    assert!(lines[1].starts_with("<4> 3 |"), "{text}");
    assert!(lines[2].starts_with("<4>   |"), "{text}");
    assert!(
        lines[3].starts_with("<6>") && lines[3].contains("configuration OK (1 warning)"),
        "{text}"
    );
    // An error at priority 3.
    std::fs::write(
        run.path("t.conf"),
        "vrrp_instance VI_1 {\n virtual_router_id 300\n}\n",
    )
    .unwrap();
    let file = std::fs::File::create(run.path("journal")).unwrap();
    let md = file.metadata().unwrap();
    let status = run
        .daemon(&["-t"])
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .stderr(file)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(run.path("journal")).unwrap();
    for l in text.lines().filter(|l| l.contains(": error: ")) {
        assert!(l.starts_with("<3>"), "{text}");
    }
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("<3>") && last.ends_with("the configuration cannot run"),
        "{text}"
    );
}

/// -d (keepalived's --dump-conf): the effective configuration in the log at start.
#[test]
fn dump_conf_logs_the_configuration_at_start() {
    let run = Run::new();
    let child = run
        .daemon(&["-d"])
        .stderr(std::fs::File::create(run.path("stderr")).unwrap())
        .spawn()
        .expect("start");
    let text = wait_file_contains(&run.path("stderr"), "ipvsdir ready");
    stop(child);
    assert!(text.contains("INFO daemon: config: "), "{text}");
    assert!(text.contains("router_id t"), "{text}");
}

/// The same line over and over: 10 in 10 s get through, the rest are
/// counted and reported once the 10 s end ("N similar lines suppressed").
/// SIGUSR1 makes the daemon log `Wrote DIR/ipvsdir.data` each time.
#[test]
fn repeated_lines_are_rate_limited() {
    let run = Run::new();
    let sock = UnixDatagram::bind(run.path("log")).expect("bind");
    let child = run
        .daemon(&["-S", "daemon"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let pid = child.id() as i32;
    receive(&sock, "ipvsdir ready");
    // Read as the lines come (the socket's queue is short: a full one
    // drops lines rather than block the daemon).
    let reader = std::thread::spawn(move || receive(&sock, "similar lines suppressed: Wrote"));
    // 15 dumps, one at a time (signals sent together would coalesce): each
    // is a new file (written beside, then renamed).
    let data = run.path("ipvsdir.data");
    let ino = || std::fs::metadata(&data).map(|m| m.ino()).ok();
    for _ in 0..15 {
        let before = ino();
        // SAFETY: kill(2) on our child.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
        let t = Instant::now();
        while ino() == before && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let wrote = format!("daemon: Wrote {}", run.path("ipvsdir.data").display());
    let lines = reader.join().unwrap();
    stop(child);
    let all = lines.join("\n");
    let written = lines.iter().filter(|l| l.ends_with(&wrote)).count();
    assert_eq!(written, 10, "{all}");
    let summary = lines
        .iter()
        .find(|l| l.contains("similar lines suppressed: Wrote") && l.contains("ipvsdir.data"))
        .unwrap_or_else(|| panic!("no summary:\n{all}"));
    // Same priority as the line it counts (daemon.info = 3*8+6).
    assert!(summary.starts_with("<30>"), "{summary}");
    let n: u64 = summary
        .split("daemon: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(n, 5, "{summary}");
}

/// A syslog daemon that does not read never blocks ours: lines are dropped,
/// counted, and the count is logged once the socket takes lines again.
#[test]
fn a_stuck_syslog_drops_lines_instead_of_blocking() {
    let run = Run::new();
    let sock = UnixDatagram::bind(run.path("log")).expect("bind");
    let child = run
        .daemon(&["-S", "daemon"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let pid = child.id() as i32;
    // Nobody reads: the socket's queue fills. Each SIGUSR1 dump still
    // happens (the daemon is not stuck in a send).
    let data = run.path("ipvsdir.data");
    let ino = || std::fs::metadata(&data).map(|m| m.ino()).ok();
    let wait_new = |before: Option<u64>| {
        let t = Instant::now();
        while ino() == before && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        ino() != before
    };
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..12 {
        let before = ino();
        // SAFETY: kill(2) on our child.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
        assert!(
            wait_new(before),
            "dump {i} not written: the daemon is blocked"
        );
    }
    // Empty the queue, then one more line: the count comes first.
    sock.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 8192];
    while sock.recv(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
    let before = ino();
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, libc::SIGUSR1);
    }
    assert!(wait_new(before));
    let lines = receive(&sock, "log lines dropped");
    stop(child);
    let all = lines.join("\n");
    let dropped = lines
        .iter()
        .find(|l| l.contains("log lines dropped: the syslog socket was full"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(dropped.starts_with("<28>"), "{dropped}");
}
