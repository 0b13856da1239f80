//! The director lab of scripts/netns-lab for tests: directors d1..dN and a
//! client c on one bridge, each in its own network namespace, with
//! ipvsdir (or keepalived) processes started in them and torn down on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipvsdir::vrrp::status::{InstanceReport, VrrpReport};

use super::netns;

pub struct Lab {
    pub prefix: String,
    pub dir: tempfile::TempDir,
    procs: Vec<(String, Child)>,
}

fn script() -> PathBuf {
    super::repo().join("scripts/netns-lab/lab")
}

pub fn tool_or_skip(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`{tool}` is required under CI=true: run scripts/netns-lab/setup");
        }
        eprintln!("SKIP: `{tool}` is missing (scripts/netns-lab/setup installs it)");
    }
    found
}

impl Lab {
    /// A lab with `n` directors, or None (after saying why) when this
    /// machine cannot run it outside CI.
    pub fn up(name: &str, n: usize, tools: &[&str]) -> Option<Lab> {
        if !netns::root_or_skip(name) {
            return None;
        }
        for t in ["ip"].iter().chain(tools) {
            if !tool_or_skip(t) {
                return None;
            }
        }
        // Short and unique per test process: namespace and veth names stay short.
        let prefix = format!(
            "{}{}",
            &name[..name.len().min(6)],
            std::process::id() % 100_000
        );
        let out = Command::new("bash")
            .arg(script())
            .args(["up", &prefix, &n.to_string()])
            .output()
            .expect("run scripts/netns-lab/lab");
        assert!(
            out.status.success(),
            "lab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Lab {
            prefix,
            dir: tempfile::tempdir().expect("tempdir"),
            procs: Vec::new(),
        })
    }

    pub fn ns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// Runs a shell command in a node's namespace; asserts success; stdout.
    pub fn sh(&self, node: &str, cmd: &str) -> String {
        netns::sh(&format!(
            "ip netns exec {} sh -c '{}'",
            self.ns(node),
            cmd.replace('\'', "'\\''")
        ))
    }

    /// Like [`Lab::sh`] but returns whether it succeeded.
    pub fn try_sh(&self, node: &str, cmd: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "sh", "-c", cmd])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn state_file(&self, node: &str) -> PathBuf {
        self.path(&format!("{node}.json"))
    }

    pub fn log_file(&self, node: &str) -> PathBuf {
        self.path(&format!("{node}.log"))
    }

    /// Starts `ipvsdir -P` in `node` with this configuration text.
    pub fn start_ipvsdir(&mut self, node: &str, config: &str) {
        self.start_ipvsdir_with(node, config, &[], &[]);
    }

    /// [`Lab::start_ipvsdir`] with extra arguments and environment.
    pub fn start_ipvsdir_with(
        &mut self,
        node: &str,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) {
        let conf = self.path(&format!("{node}.conf"));
        std::fs::write(&conf, config).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(node))
            .expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), &super::ipvsdir_bin()])
            .args(["-P", "-n", "-l", "-f"])
            .arg(&conf)
            .arg("--vrrp-state")
            .arg(self.state_file(node))
            .arg("--control-socket")
            .arg(self.path(&format!("{node}.sock")))
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ipvsdir");
        self.procs.push((node.to_string(), child));
    }

    /// Starts `program args...` in `node` as `name` (its output goes to
    /// NODE-NAME.log); [`Lab::stop`] ends it, the drop of the lab too.
    pub fn start(&mut self, node: &str, name: &str, program: &str, args: &[&str]) {
        let log =
            std::fs::File::create(self.path(&format!("{node}-{name}.log"))).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), program])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program} in {node}: {e}"));
        self.procs.push((format!("{node}/{name}"), child));
    }

    /// Sends `signal` to what [`Lab::start`] started as `name` in `node`.
    pub fn signal_named(&mut self, node: &str, name: &str, signal: i32) {
        let key = format!("{node}/{name}");
        for (n, c) in &self.procs {
            if *n == key {
                // SAFETY: kill(2) on a child we started.
                unsafe { libc::kill(c.id() as i32, signal) };
            }
        }
    }

    /// Kills what [`Lab::start`] started as `name` in `node` and reaps it.
    pub fn stop(&mut self, node: &str, name: &str) {
        let key = format!("{node}/{name}");
        for (n, c) in &mut self.procs {
            if *n == key {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.procs.retain(|(n, _)| *n != key);
    }

    /// Whether what [`Lab::start`] started as `name` in `node` still runs.
    pub fn running(&mut self, node: &str, name: &str) -> bool {
        let key = format!("{node}/{name}");
        self.procs
            .iter_mut()
            .any(|(n, c)| *n == key && c.try_wait().ok().flatten().is_none())
    }

    /// Starts Debian's keepalived (VRRP only) in `node`.
    pub fn start_keepalived(&mut self, node: &str, config: &str) {
        let conf = self.path(&format!("{node}-keepalived.conf"));
        std::fs::write(&conf, config).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(node))
            .expect("log file");
        let pid = self.path(&format!("{node}-keepalived.pid"));
        let vrrp_pid = self.path(&format!("{node}-vrrp.pid"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), "keepalived"])
            .args(["-n", "-l", "-D", "-P", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(&pid)
            .arg("-r")
            .arg(&vrrp_pid)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start keepalived");
        self.procs.push((node.to_string(), child));
    }

    /// Sends `signal` to the processes started in `node`; with SIGKILL, to
    /// everything in its namespace (keepalived's children too).
    pub fn signal(&mut self, node: &str, signal: i32) {
        if signal == libc::SIGKILL {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "ip netns pids {} | xargs -r kill -9",
                    self.ns(node)
                ))
                .status();
        }
        for (n, c) in &self.procs {
            if n == node {
                // SAFETY: kill(2) on a child we started.
                unsafe { libc::kill(c.id() as i32, signal) };
            }
        }
    }

    /// The pid of the daemon started on `node`.
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.procs
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, c)| c.id())
    }

    /// Waits for the processes of `node` to exit; returns how long it took.
    pub fn wait_exit(&mut self, node: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        for (n, c) in self.procs.iter_mut() {
            if n != node {
                continue;
            }
            loop {
                if c.try_wait().expect("try_wait").is_some() {
                    break;
                }
                assert!(
                    start.elapsed() < limit,
                    "{node} did not exit within {limit:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.procs.retain(|(n, _)| n != node);
        start.elapsed()
    }

    pub fn report(&self, node: &str) -> Option<VrrpReport> {
        let bytes = std::fs::read(self.state_file(node)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn instance(&self, node: &str, name: &str) -> Option<InstanceReport> {
        self.report(node)?
            .instances
            .into_iter()
            .find(|i| i.name == name)
    }

    pub fn state(&self, node: &str, name: &str) -> Option<String> {
        self.instance(node, name).map(|i| i.state)
    }

    /// Waits until `cond` holds; returns the time it took, or panics with the logs.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut cond: impl FnMut(&Lab) -> bool,
    ) -> Duration {
        let start = Instant::now();
        while !cond(self) {
            if start.elapsed() > limit {
                panic!(
                    "timed out after {limit:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        start.elapsed()
    }

    pub fn wait_state(&self, node: &str, name: &str, state: &str, limit: Duration) -> Duration {
        self.wait_for(&format!("{node} {name} {state}"), limit, |l| {
            l.state(node, name).as_deref() == Some(state)
        })
    }

    pub fn has_addr(&self, node: &str, addr: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns(node), "-o", "addr", "show"])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    pub fn mac(&self, node: &str) -> String {
        self.sh(node, "cat /sys/class/net/eth0/address")
            .trim()
            .to_string()
    }

    /// The client's neighbour entry (MAC) for `addr`, if any.
    pub fn client_neigh(&self, addr: &str) -> Option<String> {
        let out = self.sh("c", &format!("ip neigh show {addr}"));
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }

    pub fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.log_file(node)).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            out += &format!(
                "--- {}\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            );
        }
        out
    }

    pub fn dir_path(&self) -> &Path {
        self.dir.path()
    }

    /// The state and effective priority of the first instance of the
    /// keepalived started on `node`, from its SIGUSR1 dump. keepalived
    /// always writes /tmp/keepalived.data, so tests that read it (in other
    /// processes too) take turns under a lock.
    pub fn keepalived_view(&self, node: &str) -> Option<(String, u32)> {
        let lock = std::fs::File::create("/tmp/keepalived.data.test-lock").ok()?;
        // SAFETY: flock(2) on a descriptor this function owns; released
        // when `lock` is closed at the end of the function.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        let _ = std::fs::remove_file("/tmp/keepalived.data");
        let pid = std::fs::read_to_string(self.path(&format!("{node}-vrrp.pid"))).ok()?;
        self.sh(node, &format!("kill -USR1 {}", pid.trim()));
        let mut text = String::new();
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(100));
            text = std::fs::read_to_string("/tmp/keepalived.data").unwrap_or_default();
            if text.contains("Effective priority") {
                break;
            }
        }
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
        };
        Some((
            field("State = ")?,
            field("Effective priority = ")?.parse().ok()?,
        ))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", &self.prefix])
            .status();
    }
}
