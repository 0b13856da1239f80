//! The daemon's lifecycle as an operator meets it: the config test that
//! starts nothing, signals in `-C` mode, the pid file as a lock (a second
//! instance refuses and leaves the first one alone), and ipvsdir as a
//! container's PID 1 (orphans reaped, signals forwarded, exit status).
//!
//! `-C --no-ipvs` runs without root and without IPVS on loopback, so most
//! of these run anywhere. The PID 1 test needs root and util-linux's
//! `unshare`: without them it prints SKIP, under `CI=true` it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_ipvsdir");

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (prints why) outside CI, fails under CI=true.
fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!in_ci(), "CI=true but {what}");
    eprintln!("SKIP: {what}");
    false
}

/// A running ipvsdir whose stderr is collected as it comes; killed (and
/// reaped) when dropped if still running.
struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

impl Daemon {
    fn start(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ipvsdir");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        Daemon {
            child,
            log,
            status: None,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).expect("kill");
    }

    /// Waits until `cond` holds, the process exits, or `timeout`.
    fn wait_for(&mut self, timeout: Duration, mut cond: impl FnMut(&Daemon) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() > deadline || self.exited().is_some() {
                return cond(self);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_log(&mut self, needle: &str, timeout: Duration) -> bool {
        self.wait_for(timeout, |d| d.log().contains(needle))
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// The exit status within `timeout`, else None (it is still running).
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.exited() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `-C --no-ipvs` setup in a temporary directory: one real server with an
/// HTTP_GET against a loopback listener that answers 200 and counts the
/// requests. (Not TCP_CHECK: that one is half-open, the listener's
/// application never sees it.)
struct Lab {
    dir: tempfile::TempDir,
    requests: Arc<AtomicUsize>,
    conf: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.read(&mut [0u8; 4096]).is_ok_and(|n| n > 0) {
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            }
        });
        let conf = dir.path().join("c.conf");
        std::fs::write(
            &conf,
            format!(
                "virtual_server 127.0.0.1 80 {{\n  delay_loop 1\n  lb_kind NAT\n  protocol TCP\n\
                 real_server 127.0.0.1 {port} {{\n HTTP_GET {{\n url {{\n path /\n status_code 200\n }}\n connect_timeout 1\n }}\n }}\n}}\n"
            ),
        )
        .expect("write config");
        Lab {
            dir,
            requests,
            conf,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ipvsdir -f c.conf -C --no-ipvs` with every state file in the lab
    /// (`tag` keeps two instances' report files apart).
    fn check_mode(&self, tag: &str, socket: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("-f")
            .arg(&self.conf)
            .args(["-C", "--no-ipvs", "-n", "-l", "--health-state"])
            .arg(self.path(&format!("health-{tag}.json")))
            .arg("--vrrp-state")
            .arg(self.path(&format!("vrrp-{tag}.json")))
            .arg("--owned-state")
            .arg(self.path(&format!("owned-{tag}")))
            .arg("--control-socket")
            .arg(socket);
        cmd
    }

    /// Whether a probe has reached the real server since the last call.
    fn probed(&self) -> bool {
        self.requests.swap(0, Ordering::SeqCst) > 0
    }
}

fn health_settled(path: &Path) -> bool {
    ipvsdir::daemon::status::read(path).is_some_and(|r| {
        r.servers().next().is_some()
            && r.servers()
                .all(|(_, s)| s.checks.iter().all(|c| c.last_ok.is_some()))
    })
}

/// keepalived's -t: test the file and exit, whatever mode flag comes with
/// it. `-C -t` used to start the checkers and run on.
#[test]
fn config_test_with_a_mode_flag_starts_nothing() {
    let lab = Lab::new();
    for mode in [&["-C"][..], &["-C", "--no-ipvs"][..], &["-P"][..], &[][..]] {
        let sock = lab.path("t.sock");
        let mut cmd = Command::new(BIN);
        cmd.arg("-f")
            .arg(&lab.conf)
            .args(mode)
            .arg("-t")
            .arg("--control-socket")
            .arg(&sock)
            .arg("--health-state")
            .arg(lab.path("health-t.json"));
        let started = Instant::now();
        let mut d = Daemon::start(cmd);
        let status = d.wait_exit(Duration::from_secs(10));
        let log = d.log();
        assert!(
            status.is_some(),
            "{mode:?} -t still running after 10 s (it started the daemon)\n{log}"
        );
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{mode:?} -t\n{log}");
        assert!(log.contains("configuration OK"), "{mode:?} -t\n{log}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode:?} -t took {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100)); // for the listener's thread
        assert!(!lab.probed(), "{mode:?} -t probed the real server\n{log}");
        assert!(!sock.exists(), "{mode:?} -t created the status socket");
        assert!(
            !lab.path("health-t.json").exists(),
            "{mode:?} -t wrote a health report"
        );
    }
    // A file with errors: 1 and the diagnostics, with -C too.
    let bad = lab.path("bad.conf");
    std::fs::write(
        &bad,
        "vrrp_instance VI_1 {\n  interface lo\n  state MASTER\n  virtual_router_id 300\n  priority 100\n}\n",
    )
    .expect("write");
    for mode in [&["-C"][..], &["-P"][..], &[][..]] {
        let out = Command::new(BIN)
            .arg("-f")
            .arg(&bad)
            .args(mode)
            .arg("-t")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{mode:?} -t on a bad file\n{err}"
        );
        assert!(
            err.contains("virtual_router_id 300 is out of range"),
            "{err}"
        );
        assert!(err.contains("the configuration cannot run"), "{err}");
    }
}

/// In -C mode SIGUSR1/SIGUSR2 (state dumps) must not kill the daemon,
/// SIGHUP reloads, SIGTERM stops it with status 0.
#[test]
fn check_mode_signals() {
    let lab = Lab::new();
    let sock = lab.path("ipvsdir.sock");
    let health = lab.path("health-a.json");
    let mut d = Daemon::start(lab.check_mode("a", &sock));
    assert!(
        d.wait_for(Duration::from_secs(10), |_| health_settled(&health)),
        "the checkers never reported\n{}",
        d.log()
    );
    for sig in [Signal::SIGUSR1, Signal::SIGUSR2] {
        d.signal(sig);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            d.exited().is_none(),
            "{sig} killed the daemon ({:?})\n{}",
            d.exited(),
            d.log()
        );
    }
    d.signal(Signal::SIGHUP);
    assert!(
        d.wait_log("Reloading", Duration::from_secs(5)),
        "no reload after SIGHUP\n{}",
        d.log()
    );
    assert!(d.exited().is_none(), "SIGHUP ended the daemon\n{}", d.log());
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some(),
        "still running 5 s after SIGTERM\n{}",
        d.log()
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM: {status:?}\n{}",
        d.log()
    );
    assert!(!sock.exists(), "the status socket outlived the daemon");
    assert!(
        !ipvsdir::daemon::lock::default_path(&sock).exists(),
        "the pid file outlived the daemon"
    );
}

/// Waits until a daemon answers on `sock`; its status.
fn answering(d: &mut Daemon, sock: &Path) -> Option<ipvsdir::daemon::control::Status> {
    let mut last = None;
    d.wait_for(Duration::from_secs(10), |_| {
        last = ipvsdir::daemon::control::query(sock).ok();
        last.is_some()
    });
    last
}

/// What a second instance must leave as it was: the first one's pid file
/// (with its pid), its socket (answering, with its pid), `--dump` through it.
fn assert_first_untouched(first: u32, pid_file: &Path, sock: &Path) {
    assert_eq!(
        std::fs::read_to_string(pid_file).ok().as_deref(),
        Some(format!("{first}\n").as_str()),
        "the first instance's pid file {} changed",
        pid_file.display()
    );
    let status = ipvsdir::daemon::control::query(sock)
        .unwrap_or_else(|e| panic!("the first instance's socket stopped answering: {e}"));
    assert_eq!(status.pid, first);
    let out = Command::new(BIN)
        .args(["--dump", "--json", "--control-socket"])
        .arg(sock)
        .output()
        .expect("run --dump");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--dump: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("--dump --json");
    assert_eq!(v["pid"], serde_json::json!(first), "{text}");
}

/// Runs a second instance that must refuse at once, naming `first`.
fn assert_refused(second: Command, first: u32) {
    let started = Instant::now();
    let mut d = Daemon::start(second);
    let status = d.wait_exit(Duration::from_secs(5));
    let log = d.log();
    assert!(status.is_some(), "the second instance kept running\n{log}");
    assert!(
        !status.is_some_and(|s| s.success()),
        "the second instance exited 0\n{log}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the second instance took {:?} to refuse",
        started.elapsed()
    );
    assert!(
        log.contains(&format!("another ipvsdir is running (pid {first}")),
        "the refusal does not name pid {first}\n{log}"
    );
}

/// Same status socket, no -p: the pid file derived from the socket is the
/// lock. The second instance refuses and leaves the first one's files alone.
#[test]
fn a_second_instance_with_the_same_socket_refuses() {
    let lab = Lab::new();
    let sock = lab.path("ipvsdir.sock");
    let pid_file = ipvsdir::daemon::lock::default_path(&sock);
    let mut first = Daemon::start(lab.check_mode("a", &sock));
    let status = answering(&mut first, &sock);
    assert!(
        status.is_some(),
        "the first instance never answered on {}\n{}",
        sock.display(),
        first.log()
    );
    assert_eq!(status.map(|s| s.pid), Some(first.pid()));
    assert_first_untouched(first.pid(), &pid_file, &sock);
    assert_refused(lab.check_mode("b", &sock), first.pid());
    assert_first_untouched(first.pid(), &pid_file, &sock);
    assert!(
        first.exited().is_none(),
        "the first instance died\n{}",
        first.log()
    );
    first.signal(Signal::SIGTERM);
    let status = first.wait_exit(Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", first.log());
    assert!(!pid_file.exists(), "the pid file outlived the daemon");
    assert!(!sock.exists(), "the socket outlived the daemon");
}

/// Same -p, different sockets: the lock alone refuses the second instance,
/// which creates nothing (no socket of its own either).
#[test]
fn a_second_instance_with_the_same_pid_file_refuses() {
    let lab = Lab::new();
    let sock_a = lab.path("a.sock");
    let sock_b = lab.path("b.sock");
    let pid_file = lab.path("run/ipvsdir.pid");
    let mut cmd = lab.check_mode("a", &sock_a);
    cmd.arg("-p").arg(&pid_file);
    let mut first = Daemon::start(cmd);
    assert!(
        answering(&mut first, &sock_a).is_some(),
        "the first instance never answered on {}\n{}",
        sock_a.display(),
        first.log()
    );
    let mut second = lab.check_mode("b", &sock_b);
    second.arg("-p").arg(&pid_file);
    assert_refused(second, first.pid());
    assert!(!sock_b.exists(), "the refused instance created its socket");
    assert!(
        !lab.path("health-b.json").exists(),
        "the refused instance started its checkers"
    );
    assert_first_untouched(first.pid(), &pid_file, &sock_a);
}

/// The pids of the processes whose parent is `ppid` (host /proc).
fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if stat(pid).is_some_and(|(_, p)| p == ppid) {
            out.push(pid);
        }
    }
    out
}

/// State letter and parent pid from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Zombies whose parent is `init` (the namespace's PID 1, as seen from here).
fn zombies_of(init: u32) -> Vec<u32> {
    children_of(init)
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|(s, _)| s == 'Z'))
        .collect()
}

/// SIGKILL to a namespace's PID 1 (ending everything in it) when dropped:
/// a failing test leaves nothing running.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // ESRCH once it has exited: nothing to do.
        let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGKILL);
    }
}

/// ipvsdir as PID 1 of a PID namespace (a container): a MISC_CHECK whose
/// script backgrounds children orphans them at every run; they must be
/// reaped (keepalived as PID 1 leaves none either). Signals sent to PID 1
/// reach the daemon (SIGHUP reloads), SIGTERM ends both with status 0.
#[test]
fn as_pid_1_orphans_are_reaped() {
    let root = nix::unistd::geteuid().is_root();
    let unshare = Command::new("unshare")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(root, "not root: a PID namespace needs root")
        || !require(unshare, "no unshare (util-linux)")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("c.conf");
    // Four real servers, a check every 0.2 s each, three orphans a run:
    // about 60 orphans a second.
    let mut text = String::from(
        "virtual_server 127.0.0.1 80 {\n  delay_loop 0.2\n  lb_kind NAT\n  protocol TCP\n",
    );
    for port in 1..=4 {
        text += &format!(
            " real_server 127.0.0.1 {port} {{\n  MISC_CHECK {{\n   misc_path \"/bin/sh -c 'sleep 0.3 & sleep 0.3 & sleep 0.3 & exit 0'\"\n   misc_timeout 3\n   warmup 0\n  }}\n }}\n"
        );
    }
    text += "}\n";
    std::fs::write(&conf, text).expect("write config");
    let health = dir.path().join("health.json");
    let mut cmd = Command::new("unshare");
    // --kill-child: should the test fail (and kill unshare), the
    // namespace's PID 1 gets SIGKILL, and with it everything inside.
    cmd.args(["--pid", "--fork", "--kill-child", "--mount-proc", BIN, "-f"])
        .arg(&conf)
        .args(["-C", "--no-ipvs", "-n", "-l", "--health-state"])
        .arg(&health)
        .arg("--control-socket")
        .arg(dir.path().join("ipvsdir.sock"))
        .arg("--owned-state")
        .arg(dir.path().join("owned"))
        .arg("--vrrp-state")
        .arg(dir.path().join("vrrp.json"));
    let mut d = Daemon::start(cmd);
    // unshare's child is the namespace's PID 1: our init.
    let mut init = None;
    d.wait_for(Duration::from_secs(5), |d| {
        init = children_of(d.pid()).first().copied();
        init.is_some()
    });
    let init = init.unwrap_or_else(|| panic!("no PID 1 under unshare\n{}", d.log()));
    let reap = KillOnDrop(init);
    assert!(
        d.wait_for(Duration::from_secs(10), |_| health_settled(&health)),
        "the MISC_CHECKs never reported\n{}",
        d.log()
    );
    // ipvsdir as PID 1 forks the daemon and stays in front of it.
    let daemons = children_of(init);
    assert!(
        !daemons.is_empty(),
        "PID 1 has no child: the init did not fork the daemon\n{}",
        d.log()
    );
    // Sample for 4 s: ~240 orphans come and go. A zombie may be seen in
    // the moment between its death and its reaping (longer on a busy
    // host: a round's orphans are killed together), but none may stay: an
    // init that does not reap keeps every one, hundreds by the end.
    let mut first_seen = std::collections::HashMap::new();
    let mut worst = 0;
    let mut oldest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let now = Instant::now();
        let zombies = zombies_of(init);
        worst = worst.max(zombies.len());
        for z in zombies {
            let seen = *first_seen.entry(z).or_insert(now);
            oldest = oldest.max(now - seen);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        oldest < Duration::from_secs(1) && worst <= 12,
        "zombies under PID 1 are not reaped: one lived {oldest:?}, {worst} at once\n{}",
        d.log()
    );
    // Signals to PID 1 reach the daemon.
    kill(Pid::from_raw(init as i32), Signal::SIGHUP).expect("SIGHUP");
    assert!(
        d.wait_log("Reloading", Duration::from_secs(5)),
        "SIGHUP to PID 1 did not reach the daemon\n{}",
        d.log()
    );
    kill(Pid::from_raw(init as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "still running 10 s after SIGTERM\n{}",
        d.log()
    );
    // Gone and reaped: its pid must not be signalled any more.
    std::mem::forget(reap);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{status:?}\n{}",
        d.log()
    );
}

/// The status socket cannot take what the probes need: 120 clients that
/// connect and never send anything, against a daemon limited to 64
/// descriptors, leave the probes running (no "Too many open files") and the
/// daemon's descriptors bounded; a real query is answered once they go.
#[test]
fn idle_status_clients_cannot_starve_the_probes() {
    if !require(
        Command::new("prlimit").arg("--version").output().is_ok(),
        "util-linux's prlimit is not installed",
    ) {
        return;
    }
    let lab = Lab::new();
    let sock = lab.path("ipvsdir.sock");
    let health = lab.path("health-a.json");
    let inner = lab.check_mode("a", &sock);
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=64:64")
        .arg(inner.get_program())
        .args(inner.get_args());
    let mut d = Daemon::start(cmd);
    assert!(
        d.wait_for(Duration::from_secs(10), |_| health_settled(&health)),
        "the checkers never reported\n{}",
        d.log()
    );
    let pid = d.child.id();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let before = fds();
    let idle: Vec<_> = (0..120)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok())
        .collect();
    assert!(idle.len() >= 100, "only {} clients connected", idle.len());
    lab.probed(); // forget the probes made before the clients came
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        most = most.max(fds());
        std::thread::sleep(Duration::from_millis(50));
    }
    let probed = lab.probed();
    drop(idle);
    let log = d.log();
    assert!(
        !log.contains("Too many open files"),
        "the probes ran out of descriptors\n{log}"
    );
    assert!(
        probed,
        "no probe reached the real server while the clients waited\n{log}"
    );
    let cap = ipvsdir::daemon::control::MAX_CLIENTS;
    assert!(
        most <= before + cap + 2,
        "{most} descriptors open with idle clients (before: {before}, cap {cap})"
    );
    assert!(
        answering(&mut d, &sock).is_some_and(|s| s.health.is_some()),
        "no answer after the idle clients left\n{}",
        d.log()
    );
}
