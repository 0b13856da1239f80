//! The status socket: a Unix socket (root only, mode 0600) where the
//! running daemon answers `status` with its status document (API version
//! 1: the VRRP instances, every configured virtual and real server with
//! its health, counters) and takes the operator's `ipvsdir ctl` requests.
//! `ipvsdir --dump` reads it to annotate the kernel table. It cannot hurt the director: a few clients at a time
//! (the rest wait in the backlog), timeouts on the request and the answer,
//! a backoff on accept errors, answers built off the probes' thread.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::checks::Command;
use super::ctl::{self, Answer, Request};
use super::status::{self, HealthReport};
use super::transitions::{Recent, Transition};
use crate::metrics::DaemonStats;
use crate::vrrp::status::{LiveReport, VrrpReport};

/// Where the daemon listens by default.
pub const CONTROL_SOCKET: &str = "/run/ipvsdir/ipvsdir.sock";

/// The status API's version: what `status` answers carries it; fields are
/// only added within a version (README, conf/status-v1.schema.json).
pub const API_VERSION: u32 = 1;

/// The status document (API version 1): what the status socket answers to
/// `status`, what `/api/v1/status` serves and `ipvsdir --dump --json`
/// prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub pid: u32,
    #[serde(with = "crate::time_format::rfc3339")]
    pub generated: f64,
    pub daemon: DaemonStats,
    /// None: no VRRP in this daemon (`-C`), or not started yet.
    pub vrrp: Option<Arc<VrrpReport>>,
    /// None: no checkers in this daemon (`-P`), or no report yet (the
    /// first comes within a second of the start).
    pub health: Option<Arc<HealthReport>>,
    /// The last real server and VRRP instance transitions, oldest first
    /// (added within version 1: absent from older daemons' documents).
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// The kernel's connection counts per service and real server, read
    /// for this document (added within version 1). None: this daemon does
    /// not read the table (`--no-ipvs`, VRRP only) or the read failed.
    #[serde(default)]
    pub connections: Option<Vec<ServiceConnections>>,
}

/// One kernel service's connections (ipvsadm's ActiveConn / InActConn).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConnections {
    /// As `services[]` in the health report names it (`TCP 10.0.0.1:80`).
    pub service: String,
    pub real_servers: Vec<RealServerConnections>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerConnections {
    /// As the health report names it (`10.0.0.11:8080`).
    pub real_server: String,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates.
    pub persistent: u32,
}

/// The connection counts of every service in a kernel table.
pub fn connections(table: &crate::lvs::table::KernelTable) -> Vec<ServiceConnections> {
    table
        .services
        .iter()
        .map(|s| ServiceConnections {
            service: s.entry.service.key.to_string(),
            real_servers: s
                .dests
                .iter()
                .map(|d| RealServerConnections {
                    real_server: crate::lvs::format::addr_port(d.dest.addr, d.dest.port),
                    active: d.active_conns,
                    inactive: d.inact_conns,
                    persistent: d.persist_conns,
                })
                .collect(),
        })
        .collect()
}

/// What the daemon's parts publish for the socket and the metrics.
#[derive(Debug, Default)]
pub struct Board {
    pub vrrp: LiveReport,
    /// The checkers' latest report (the one they write to their file).
    pub health: status::LiveHealth,
    pub stats: std::sync::Mutex<DaemonStats>,
    /// The probes' counters and duration histogram.
    pub checks: Arc<crate::check::engine::Stats>,
    /// Transitions, recorded where the reports above are published.
    pub recent: Arc<Recent>,
    /// The LVS metrics' source: configured weights, the kernel's counters.
    pub lvs: crate::metrics::lvs_read::LvsReader,
}

impl Board {
    pub fn vrrp_report(&self) -> Option<VrrpReport> {
        self.vrrp.lock().ok().and_then(|v| v.clone())
    }

    pub fn health_report(&self) -> Option<Arc<HealthReport>> {
        self.health.lock().ok().and_then(|h| h.clone())
    }

    fn daemon_stats(&self) -> DaemonStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// The status document now (the health report is shared, not copied;
    /// the kernel table is read for the connection counts: blocking).
    pub fn status(&self) -> Status {
        let lvs = self.lvs.scrape();
        Status {
            connections: lvs.kernel.flatten().as_ref().map(connections),
            version: API_VERSION,
            pid: std::process::id(),
            generated: crate::time_format::now(),
            daemon: self.daemon_stats(),
            vrrp: self.vrrp_report().map(Arc::new),
            health: self.health_report(),
            transitions: self.recent.list(),
        }
    }

    /// The metrics text (Prometheus' format).
    pub fn metrics(&self) -> String {
        let lvs = self.lvs.scrape();
        crate::metrics::render_with_lvs(
            self.vrrp_report().as_ref(),
            self.health_report().as_deref(),
            Some(&self.checks.snapshot()),
            &self.daemon_stats(),
            &lvs.view(),
        )
    }

    /// Counts a reload and the time its configuration load took.
    pub fn note_reload(&self, ok: bool, load: Duration) {
        if let Ok(mut s) = self.stats.lock() {
            if ok {
                s.reloads_ok += 1;
            } else {
                s.reloads_failed += 1;
            }
            s.last_load_seconds = load.as_secs_f64();
        }
    }
}

/// Listens on `path` until the task is dropped. A stale socket file from a
/// crashed run is replaced; a live daemon's is not.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another ipvsdir answers on {}", path.display()),
        ));
    }
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// At most this many clients are served at once; more wait in the
/// listen backlog (so idle or slow clients cannot take the descriptors the
/// probes need, nor memory for answers nobody reads).
pub const MAX_CLIENTS: usize = 8;
/// A client has this long to send its request (ours sends it at once)...
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// ...and this long to take the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// The director answers an operator's request within this (it is never
/// busy for long: kernel requests run on their own thread).
const DIRECTOR_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request line (a virtual server group's name included).
const MAX_REQUEST: usize = 512;

/// Serves until the task is dropped. `director`: where operators' requests
/// go (None: no virtual servers in this daemon).
pub async fn serve(
    listener: UnixListener,
    board: Arc<Board>,
    director: Option<mpsc::Sender<Command>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let mut backoff = super::accept::Backoff::new("status socket");
    loop {
        // A free slot first: beyond the cap, clients wait in the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.ok();
                stream
            }
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        let board = board.clone();
        let director = director.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(Some(line)) =
                tokio::time::timeout(REQUEST_TIMEOUT, read_line(&mut stream)).await
            else {
                return;
            };
            let root = stream.peer_cred().is_ok_and(|c| c.uid() == 0);
            let answer = match ctl::parse(&line) {
                Ok(Request::Status) => {
                    // Building the answer (large with many real servers)
                    // happens off the probes' thread.
                    let board = board.clone();
                    match tokio::task::spawn_blocking(move || serde_json::to_vec(&board.status()))
                        .await
                    {
                        Ok(Ok(a)) => a,
                        _ => return,
                    }
                }
                Ok(Request::Operator(..) | Request::Director(_)) if !root => {
                    reply(&Answer::error("operator commands are for root only"))
                }
                Ok(Request::Director(drain)) => {
                    reply(&drain_director(director.as_ref(), drain).await)
                }
                Ok(Request::Operator(target, what)) => {
                    reply(&operate(director.as_ref(), target, what).await)
                }
                Err(e) => reply(&Answer::error(e)),
            };
            let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&answer)).await;
        });
    }
}

/// The request: up to a newline, the end of the stream or MAX_REQUEST bytes.
async fn read_line(stream: &mut tokio::net::UnixStream) -> Option<String> {
    let mut req = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while req.len() < MAX_REQUEST && !req.contains(&b'\n') {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
    let end = req.iter().position(|&b| b == b'\n').unwrap_or(req.len());
    Some(String::from_utf8_lossy(&req[..end.min(MAX_REQUEST)]).into_owned())
}

fn reply(a: &Answer) -> Vec<u8> {
    serde_json::to_vec(a).unwrap_or_default()
}

/// Hands an operator's request to the director and waits for its verdict.
async fn operate(
    director: Option<&mpsc::Sender<Command>>,
    target: crate::lvs::director::Target,
    what: crate::lvs::director::Override,
) -> Answer {
    let Some(director) = director else {
        return Answer::error(
            "this daemon runs no virtual servers (VRRP only, or none in the file)",
        );
    };
    let (tx, rx) = oneshot::channel();
    let sent = director.send(Command::Operator {
        target,
        what,
        reply: tx,
    });
    match tokio::time::timeout(DIRECTOR_TIMEOUT, async {
        sent.await.ok()?;
        rx.await.ok()
    })
    .await
    {
        Ok(Some(Ok(applied))) => Answer {
            ok: true,
            applied,
            error: None,
            message: None,
        },
        Ok(Some(Err(e))) => Answer::error(e),
        Ok(None) => Answer::error("the director is stopping"),
        Err(_) => Answer::error("the director did not answer within 5 s; try again"),
    }
}

/// Hands `drain-director` / `undrain-director` to the director.
async fn drain_director(director: Option<&mpsc::Sender<Command>>, drain: bool) -> Answer {
    let Some(director) = director else {
        return Answer::error(
            "this daemon runs no virtual servers (VRRP only, or none in the file)",
        );
    };
    let (tx, rx) = oneshot::channel();
    let sent = director.send(Command::DrainDirector { drain, reply: tx });
    match tokio::time::timeout(DIRECTOR_TIMEOUT, async {
        sent.await.ok()?;
        rx.await.ok()
    })
    .await
    {
        Ok(Some(Ok(message))) => Answer {
            ok: true,
            applied: Vec::new(),
            error: None,
            message: Some(message),
        },
        Ok(Some(Err(e))) => Answer::error(e),
        Ok(None) => Answer::error("the director is stopping"),
        Err(_) => Answer::error("the director did not answer within 5 s; try again"),
    }
}

/// Sends `drain-director` (or `undrain-director`) to a running daemon.
pub fn director(path: &Path, drain: bool) -> std::io::Result<Answer> {
    let line = if drain {
        "drain-director"
    } else {
        "undrain-director"
    };
    serde_json::from_slice(&exchange(path, line)?).map_err(invalid)
}

/// Sends one request line and reads the whole answer.
fn exchange(path: &Path, line: &str) -> std::io::Result<Vec<u8>> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(3)))?;
    // One write: the daemon answers after its first read.
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut body = Vec::new();
    s.take(256 << 20).read_to_end(&mut body)?;
    Ok(body)
}

fn invalid(e: serde_json::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Asks a running daemon for its status document.
pub fn query(path: &Path) -> std::io::Result<Status> {
    serde_json::from_slice(&exchange(path, "status")?).map_err(invalid)
}

/// Sends an operator's request to a running daemon.
pub fn operator(
    path: &Path,
    target: &crate::lvs::director::Target,
    what: crate::lvs::director::Override,
) -> std::io::Result<Answer> {
    serde_json::from_slice(&exchange(path, &ctl::line(target, what))?).map_err(invalid)
}

/// The VRRP part of `--dump`: one line per instance.
pub fn vrrp_text(r: &VrrpReport) -> String {
    let mut out = String::from("VRRP instances:\n");
    for i in &r.instances {
        out += &format!(
            "  {} (vrid {} on {}): {}, priority {} (effective {}), master {}, VIPs {}\n",
            i.name,
            i.vrid,
            i.interface,
            i.state,
            i.priority,
            i.effective_priority,
            i.master.as_deref().unwrap_or("-"),
            i.vips.join(" ")
        );
    }
    out
}
