//! A daemon on loopback (`-C --no-ipvs`: no root, no IPVS) with every state
//! file in a temporary directory, for the status socket, `ipvsdir ctl`,
//! the metrics listener and the status page.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ipvsdir");

pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub sock: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `ipvsdir -f CONF -C --no-ipvs` with `extra` arguments.
    pub fn start(conf_text: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("c.conf");
        std::fs::write(&conf, conf_text).expect("write the configuration");
        let sock = dir.path().join("s.sock");
        let log = dir.path().join("log");
        let child = Command::new(BIN)
            .arg("-f")
            .arg(&conf)
            .args(["-C", "--no-ipvs", "-n", "-l", "--health-state"])
            .arg(dir.path().join("health.json"))
            .arg("--owned-state")
            .arg(dir.path().join("owned"))
            .arg("--control-socket")
            .arg(&sock)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start ipvsdir");
        Daemon {
            child,
            dir,
            conf,
            sock,
            log,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ipvsdir ARGS --control-socket SOCK`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--control-socket")
            .arg(&self.sock)
            .output()
            .expect("run ipvsdir")
    }

    /// The status document (`ipvsdir --dump --json`), once it answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.cli(&["--dump", "--json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Polls `ok` on the status document for up to `secs` seconds.
    pub fn wait_status(
        &self,
        secs: u64,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.status();
            if let Some(v) = last.take_if(|v| ok(v)) {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The log first: a long status would push it out of a CI excerpt.
        panic!(
            "the status never matched in {secs} s; log:\n{}\nlast status:\n{}",
            self.log(),
            last.map(|v| v.to_string()).unwrap_or_default()
        );
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }

    /// SIGTERM and wait (at most 10 s).
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on loopback that nothing listens on (yet).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A listener that accepts (and drops) connections, so TCP_CHECKs pass.
pub fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

/// A loopback port whose server the test takes down and brings back. A
/// bound socket that never listens holds the port meanwhile: connections to
/// it are refused, and no other test's bind to port 0 can take it (an
/// automatic bind skips ports in use, SO_REUSEADDR or not).
pub struct HeldPort {
    pub port: u16,
    _hold: std::os::fd::OwnedFd,
    listener: Option<TcpListener>,
}

impl HeldPort {
    /// A port with a listener on it (accepting nothing: TCP_CHECKs pass).
    pub fn up() -> HeldPort {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
            sockopt,
        };
        use std::os::fd::AsRawFd;
        let hold = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket");
        setsockopt(&hold, sockopt::ReuseAddr, &true).expect("SO_REUSEADDR");
        bind(hold.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
        let port = getsockname::<SockaddrIn>(hold.as_raw_fd())
            .expect("getsockname")
            .port();
        let mut held = HeldPort {
            port,
            _hold: hold,
            listener: None,
        };
        held.start();
        held
    }

    /// The server is down: connections are refused.
    pub fn stop(&mut self) {
        self.listener = None;
    }

    /// The server is back.
    pub fn start(&mut self) {
        // The holder does not listen, so an explicit bind beside it works.
        self.listener = Some(TcpListener::bind(("127.0.0.1", self.port)).expect("bind again"));
    }
}

/// One HTTP/1.0 GET on loopback: (status line, body).
pub fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut all = String::new();
    s.read_to_string(&mut all).ok()?;
    let (head, body) = all.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// Whether this process may use the root-only parts (operator commands).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Validates a status document against conf/status-v1.schema.json with
/// python3-jsonschema (a real validator: Debian's package). Outside CI a
/// missing validator skips with a note.
pub fn validate_status(doc: &serde_json::Value) {
    let schema = super::repo().join("conf/status-v1.schema.json");
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))\n";
    let child = Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no python3"
        );
        eprintln!("SKIP schema validation: no python3");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(doc.to_string().as_bytes());
    }
    let out = child.wait_with_output().expect("python3");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named 'jsonschema'") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but python3-jsonschema is missing (scripts/netns-lab/setup installs it)"
        );
        eprintln!("SKIP schema validation: python3-jsonschema is not installed");
        return;
    }
    assert!(
        out.status.success(),
        "the status document does not follow the schema:\n{err}\n{doc}"
    );
}
