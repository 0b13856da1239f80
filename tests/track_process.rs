//! track_process against real processes: copies of `sleep` (and `sh`)
//! under distinctive names are started and killed, and the watcher's
//! quorum decisions are checked, with the kernel's process connector and
//! with the /proc scan; then with /proc mounted `hidepid=2` in a mount
//! namespace. The VRRP side (a master giving up to a backup) is in
//! tests/vrrp_netns_track_process.rs. The connector needs root (fails under
//! CI=true without it, skips elsewhere); the scan runs as anyone.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ipvsdir::config::model::TrackProcess;
use ipvsdir::config::{LoadOptions, load_str};
use ipvsdir::track_process::Watcher;

/// Copies of a binary under short unique names (a process name is at most
/// 15 characters), and the processes started from them.
struct Procs {
    dir: tempfile::TempDir,
    tag: String,
    children: Vec<(String, Child)>,
}

impl Procs {
    fn new(tag: &str) -> Procs {
        let dir = tempfile::tempdir().unwrap();
        // Others (the hidepid test's unprivileged user) may run them.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Procs {
            dir,
            tag: format!("{tag}{}", std::process::id() % 100_000),
            children: Vec::new(),
        }
    }

    /// The name (and comm) of copy `k`.
    fn name(&self, k: &str) -> String {
        format!("{}{k}", self.tag)
    }

    /// A copy of `bin` named after `k`.
    fn copy(&self, bin: &str, k: &str) -> PathBuf {
        let to = self.dir.path().join(self.name(k));
        if !to.exists() {
            std::fs::copy(bin, &to).unwrap();
        }
        to
    }

    /// Each in its own process group, killed whole (a shell's children too).
    fn start(&mut self, bin: &Path, args: &[&str], id: &str) {
        use std::os::unix::process::CommandExt;
        let child = Command::new(bin)
            .args(args)
            .process_group(0)
            .spawn()
            .unwrap();
        self.children.push((id.to_string(), child));
    }

    fn start_as(&mut self, bin: &Path, args: &[&str], id: &str, uid: u32) {
        use std::os::unix::process::CommandExt;
        let child = Command::new(bin)
            .args(args)
            .uid(uid)
            .gid(uid)
            .process_group(0)
            .spawn()
            .unwrap();
        self.children.push((id.to_string(), child));
    }

    fn kill(&mut self, id: &str) {
        let i = self
            .children
            .iter()
            .position(|(c, _)| c == id)
            .unwrap_or_else(|| panic!("no process {id}"));
        let (_, mut c) = self.children.remove(i);
        kill_group(&mut c);
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            kill_group(c);
        }
    }
}

fn kill_group(c: &mut Child) {
    use nix::sys::signal::{Signal, killpg};
    let _ = killpg(nix::unistd::Pid::from_raw(c.id() as i32), Signal::SIGKILL);
    let _ = c.wait();
}

fn defs(text: &str) -> Vec<TrackProcess> {
    let l = load_str("t.conf", text, &LoadOptions::default());
    let Some(c) = l.config else {
        panic!("{:?}", l.diagnostics)
    };
    c.track_processes
}

/// Every change the watcher reports within `window` (the last state of
/// each block).
async fn changes(w: &mut Watcher, window: Duration) -> BTreeMap<usize, bool> {
    let mut out = BTreeMap::new();
    let end = tokio::time::Instant::now() + window;
    while let Ok((i, up)) = tokio::time::timeout_at(end, w.next()).await {
        out.insert(i, up);
    }
    out
}

/// The next change, within `within`.
async fn next(w: &mut Watcher, within: Duration) -> Option<(usize, bool)> {
    tokio::time::timeout(within, w.next()).await.ok()
}

/// Quiet long enough for a scan (1 s) and its events.
const SETTLE: Duration = Duration::from_millis(2500);

async fn open(d: &[TrackProcess], scan: bool) -> Watcher {
    let used: Vec<usize> = (0..d.len()).collect();
    let w = Watcher::open_with(d, &used, scan).await;
    if !scan {
        assert!(w.uses_connector(), "the process connector is expected here");
    }
    w
}

async fn quorum_and_quorum_max(scan: bool) {
    let mut p = Procs::new("tq");
    let sleep = p.copy("/bin/sleep", "a");
    let conf = format!(
        "vrrp_track_process a {{\n process {}\n quorum 2\n quorum_max 3\n}}\n\
         vrrp_track_process none {{\n process {}\n quorum_max 0\n}}\n",
        p.name("a"),
        p.name("a")
    );
    let d = defs(&conf);
    let mut w = open(&d, scan).await;
    assert_eq!(w.states(), vec![(0, false), (1, true)]);
    p.start(&sleep, &["1000"], "a1");
    // one: below the quorum, and "none may run" is lost
    assert_eq!(changes(&mut w, SETTLE).await, BTreeMap::from([(1, false)]));
    p.start(&sleep, &["1000"], "a2");
    assert_eq!(next(&mut w, SETTLE).await, Some((0, true)));
    p.start(&sleep, &["1000"], "a3");
    assert_eq!(
        changes(&mut w, SETTLE).await,
        BTreeMap::new(),
        "3 <= quorum_max"
    );
    p.start(&sleep, &["1000"], "a4");
    assert_eq!(
        next(&mut w, SETTLE).await,
        Some((0, false)),
        "above quorum_max"
    );
    p.kill("a4");
    assert_eq!(next(&mut w, SETTLE).await, Some((0, true)));
    p.kill("a1");
    p.kill("a2");
    assert_eq!(next(&mut w, SETTLE).await, Some((0, false)));
    p.kill("a3");
    assert_eq!(next(&mut w, SETTLE).await, Some((1, true)));
    assert_eq!(w.counts(), vec![(0, 0), (1, 0)]);
}

async fn param_match_and_full_command(scan: bool) {
    let mut p = Procs::new("tm");
    let sleep = p.copy("/bin/sleep", "b");
    let path = sleep.display().to_string();
    // sleep adds its arguments: `sleep 1000 5` is one long sleep.
    let conf = format!(
        "vrrp_track_process exact {{\n process {path} 1000\n}}\n\
         vrrp_track_process initial {{\n process {path} 10\n param_match initial\n}}\n\
         vrrp_track_process partial {{\n process {path} 1000\n param_match partial\n}}\n\
         vrrp_track_process line {{\n process \"{path} 1000 5\"\n full_command\n}}\n\
         vrrp_track_process split {{\n process {path} \"1000 5\"\n}}\n\
         vrrp_track_process comm {{\n process {}\n}}\n\
         vrrp_track_process argv0 {{\n process {path}\n full_command\n}}\n\
         vrrp_track_process bare {{\n process {path}\n param_match\n}}\n",
        p.name("b")
    );
    let d = defs(&conf);
    let mut w = open(&d, scan).await;
    assert!(w.states().iter().all(|(_, up)| !up));
    p.start(&sleep, &["1000", "5"], "b1");
    assert_eq!(
        changes(&mut w, SETTLE).await,
        BTreeMap::from([
            (1, true), // "1000" starts with "10"
            (2, true), // the first parameter is 1000
            (3, true), // keepalived never matches this one (issue 1190)
            (4, true), // nor this one (issue 2667)
            (5, true),
            (6, true),
        ]),
        "exact (0) needs exactly `1000`, bare param_match (7) no parameters"
    );
    p.start(&sleep, &["1000"], "b2");
    assert_eq!(changes(&mut w, SETTLE).await, BTreeMap::from([(0, true)]));
    p.kill("b1");
    assert_eq!(
        changes(&mut w, SETTLE).await,
        BTreeMap::from([(3, false), (4, false)])
    );
}

async fn terminate_delay(scan: bool) {
    let mut p = Procs::new("tt");
    let sleep = p.copy("/bin/sleep", "c");
    let conf = format!(
        "vrrp_track_process c {{\n process {}\n terminate_delay 3\n}}\n",
        p.name("c")
    );
    let d = defs(&conf);
    let mut w = open(&d, scan).await;
    p.start(&sleep, &["1000"], "c1");
    assert_eq!(
        next(&mut w, SETTLE).await,
        Some((0, true)),
        "a start is seen at once"
    );
    // a restart within the delay is never seen down
    p.kill("c1");
    std::thread::sleep(Duration::from_millis(300));
    p.start(&sleep, &["1000"], "c2");
    assert_eq!(
        changes(&mut w, Duration::from_secs(5)).await,
        BTreeMap::new()
    );
    // a death is, when the delay has passed
    let t0 = Instant::now();
    p.kill("c2");
    assert_eq!(next(&mut w, Duration::from_secs(8)).await, Some((0, false)));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(2900), "down after {took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn quorum_and_quorum_max_with_the_connector() {
    if common::netns::root_or_skip("the process connector") {
        quorum_and_quorum_max(false).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn quorum_and_quorum_max_with_the_proc_scan() {
    quorum_and_quorum_max(true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn param_match_and_full_command_with_the_connector() {
    if common::netns::root_or_skip("the process connector") {
        param_match_and_full_command(false).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn param_match_and_full_command_with_the_proc_scan() {
    param_match_and_full_command(true).await;
}

#[tokio::test(flavor = "current_thread")]
async fn terminate_delay_with_the_connector() {
    if common::netns::root_or_skip("the process connector") {
        terminate_delay(false).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn terminate_delay_with_the_proc_scan() {
    terminate_delay(true).await;
}

/// fork_delay needs the fork itself, which only the connector reports: a
/// copy of `sh` forks a subshell that stays (two processes of that name
/// with quorum_max 1): down only after fork_delay. Without it the same
/// fork is down at once.
#[tokio::test(flavor = "current_thread")]
async fn fork_delay_with_the_connector() {
    if !common::netns::root_or_skip("the process connector") {
        return;
    }
    let mut p = Procs::new("tf");
    let sh = p.copy("/bin/sh", "f");
    let conf = format!(
        "vrrp_track_process delayed {{\n process {}\n quorum_max 1\n fork_delay 2\n}}\n\
         vrrp_track_process at_once {{\n process {}\n quorum_max 1\n}}\n",
        p.name("f"),
        p.name("f")
    );
    let d = defs(&conf);
    let mut w = open(&d, false).await;
    // The shell forks a subshell that stays a copy of the shell (it runs
    // two commands), and waits.
    let t0 = Instant::now();
    p.start(&sh, &["-c", "(sleep 1000; :) & wait"], "f1");
    let mut seen: Vec<(usize, bool, Duration)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(6);
    while let Some((i, up)) = next(&mut w, end.saturating_duration_since(Instant::now())).await {
        seen.push((i, up, t0.elapsed()));
    }
    let of = |k: usize| -> Vec<bool> { seen.iter().filter(|s| s.0 == k).map(|s| s.1).collect() };
    assert_eq!(of(0), vec![true, false], "{seen:?}");
    assert_eq!(of(1), vec![true, false], "{seen:?}");
    let up0 = seen.iter().find(|s| s.0 == 0 && s.1).map(|s| s.2).unwrap();
    let down0 = seen.iter().find(|s| s.0 == 0 && !s.1).map(|s| s.2).unwrap();
    let down1 = seen.iter().find(|s| s.0 == 1 && !s.1).map(|s| s.2).unwrap();
    assert!(down0 - up0 >= Duration::from_millis(1900), "{seen:?}");
    assert!(down1 < down0, "{seen:?}");
    assert_eq!(w.counts()[0].1, 2);
}

/// /proc mounted `hidepid=2` in a private mount namespace: the test runs
/// its other half (`hidepid_inner`) under `unshare -m`, where it mounts
/// /proc again with hidepid=2. Running as root, a process of another user
/// is still seen, by the connector and by the scan, while a third user
/// cannot see it; the watcher finds hidepid on.
#[test]
fn hidepid_2_still_shows_every_process_to_root() {
    if !common::netns::root_or_skip("a hidepid=2 /proc mount") {
        return;
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(me)
        .args([
            "--exact",
            "hidepid_inner",
            "--nocapture",
            "--include-ignored",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("hidepid checks passed"), "{text}");
}

const INNER: &str = "IPVSDIR_TEST_HIDEPID_INNER";

#[tokio::test(flavor = "current_thread")]
#[ignore = "run by hidepid_2_still_shows_every_process_to_root in a mount namespace"]
async fn hidepid_inner() {
    if std::env::var_os(INNER).is_none() {
        return;
    }
    let st = Command::new("mount")
        .args(["-t", "proc", "-o", "hidepid=2", "proc", "/proc"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        ipvsdir::track_process::hidepid().is_some(),
        "{}",
        std::fs::read_to_string("/proc/self/mountinfo").unwrap()
    );
    let mut p = Procs::new("th");
    let sleep = p.copy("/bin/sleep", "h");
    // nobody cannot see it either way; root can.
    p.start_as(&sleep, &["1000"], "h1", 65534);
    let pid = p.children[0].1.id();
    let out = Command::new("setpriv")
        .args(["--reuid=65533", "--regid=65533", "--clear-groups", "cat"])
        .arg(format!("/proc/{pid}/comm"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "another user must not see it: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let conf = format!(
        "vrrp_track_process h {{\n process {}\n}}\n\
         vrrp_track_process hf {{\n process {} 1000\n}}\n",
        p.name("h"),
        sleep.display()
    );
    let d = defs(&conf);
    for scan in [true, false] {
        let w = open(&d, scan).await;
        assert_eq!(w.states(), vec![(0, true), (1, true)], "scan: {scan}");
    }
    // started while watching: seen too, and its death
    let mut w = open(&d, false).await;
    p.kill("h1");
    assert_eq!(
        changes(&mut w, SETTLE).await,
        BTreeMap::from([(0, false), (1, false)])
    );
    p.start_as(&sleep, &["1000"], "h2", 65534);
    assert_eq!(
        changes(&mut w, SETTLE).await,
        BTreeMap::from([(0, true), (1, true)])
    );
    // Not root: the connector refuses, the scan sees only our own
    // processes; the other user's never counts, and nothing flaps.
    p.kill("h2");
    p.start_as(&sleep, &["1000"], "mine", 65534);
    p.start_as(&sleep, &["1000"], "theirs", 65533);
    let me = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(me)
        .args([
            "--exact",
            "hidepid_unprivileged",
            "--nocapture",
            "--include-ignored",
        ])
        .env(UNPRIVILEGED, p.name("h"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("unprivileged checks passed"), "{text}");
    println!("hidepid checks passed");
}

const UNPRIVILEGED: &str = "IPVSDIR_TEST_HIDEPID_UNPRIVILEGED";

#[tokio::test(flavor = "current_thread")]
#[ignore = "run by hidepid_inner as an unprivileged user"]
async fn hidepid_unprivileged() {
    let Some(name) = std::env::var_os(UNPRIVILEGED) else {
        return;
    };
    let name = name.to_string_lossy().into_owned();
    assert!(!nix::unistd::geteuid().is_root());
    let conf = format!(
        "vrrp_track_process one {{\n process {name}\n quorum_max 1\n}}\n\
         vrrp_track_process two {{\n process {name}\n quorum 2\n}}\n"
    );
    let d = defs(&conf);
    let mut w = Watcher::open_with(&d, &[0, 1], false).await;
    assert!(!w.uses_connector(), "the connector needs CAP_NET_ADMIN");
    // only our own copy: exactly one
    assert_eq!(w.states(), vec![(0, true), (1, false)]);
    assert_eq!(w.counts(), vec![(0, 1), (1, 1)]);
    assert_eq!(
        changes(&mut w, Duration::from_secs(4)).await,
        BTreeMap::new()
    );
    println!("unprivileged checks passed");
}
