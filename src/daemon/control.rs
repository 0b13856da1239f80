//! The status socket: a Unix socket (root only, mode 0600) where the
//! running daemon answers `status` with the live VRRP instances and the
//! real servers' health as JSON. `ipvsdir --dump` reads it to annotate the
//! kernel table. It cannot hurt the director: a few clients at a time
//! (the rest wait in the backlog), timeouts on the request and the answer,
//! a backoff on accept errors, answers built off the probes' thread.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::status::{self, HealthReport};
use crate::vrrp::status::{LiveReport, VrrpReport};

/// Where the daemon listens by default.
pub const CONTROL_SOCKET: &str = "/run/ipvsdir/ipvsdir.sock";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub vrrp: Option<VrrpReport>,
    pub health: Option<HealthReport>,
}

/// What the daemon's parts publish for the socket and the metrics.
#[derive(Debug, Default)]
pub struct Board {
    pub vrrp: LiveReport,
    /// The checkers' latest report (the one they write to their file).
    pub health: status::LiveHealth,
    /// The report file, read when no live report was published yet.
    pub health_file: Option<PathBuf>,
    pub stats: std::sync::Mutex<crate::metrics::DaemonStats>,
    /// The LVS metrics' source: configured weights, the kernel's counters.
    pub lvs: crate::metrics::lvs_read::LvsReader,
}

impl Board {
    pub fn vrrp_report(&self) -> Option<VrrpReport> {
        self.vrrp.lock().ok().and_then(|v| v.clone())
    }

    pub fn health_report(&self) -> Option<std::sync::Arc<HealthReport>> {
        let live = self.health.lock().ok().and_then(|h| h.clone());
        live.or_else(|| {
            self.health_file
                .as_deref()
                .and_then(status::read)
                .map(std::sync::Arc::new)
        })
    }

    pub fn status(&self) -> Status {
        Status {
            pid: std::process::id(),
            vrrp: self.vrrp_report(),
            health: self.health_report().map(|h| (*h).clone()),
        }
    }

    /// The metrics text (Prometheus' format).
    pub fn metrics(&self) -> String {
        let stats = self.stats.lock().map(|s| *s).unwrap_or_default();
        let lvs = self.lvs.scrape();
        crate::metrics::render_with_lvs(
            self.vrrp_report().as_ref(),
            self.health_report().as_deref(),
            &stats,
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
/// After a failed accept (out of descriptors...), wait this long, doubling
/// up to ACCEPT_BACKOFF_MAX, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(2);

pub async fn serve(listener: UnixListener, board: Arc<Board>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let mut backoff = ACCEPT_BACKOFF;
    let mut errors = crate::log_limit::LogLimit::new(Duration::from_secs(60), 4);
    loop {
        // A free slot first: beyond the cap, clients wait in the backlog.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF;
                stream
            }
            Err(e) => {
                if let crate::log_limit::Verdict::Log { suppressed } =
                    errors.check(std::time::Instant::now(), &e.kind())
                {
                    tracing::warn!(
                        "status socket: accept failed: {e}; retrying in {} ms \
                         ({suppressed} similar lines suppressed before)",
                        backoff.as_millis()
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let board = board.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut req = [0u8; 64];
            let read = tokio::time::timeout(REQUEST_TIMEOUT, stream.read(&mut req)).await;
            let Ok(Ok(n)) = read else { return };
            let asked_status = std::str::from_utf8(&req[..n]).map(str::trim) == Ok("status");
            let answer = if asked_status {
                // Reading the report and building the answer (large with
                // many real servers) happens off the probes' thread.
                let board = board.clone();
                match tokio::task::spawn_blocking(move || serde_json::to_vec(&board.status())).await
                {
                    Ok(Ok(a)) => a,
                    _ => return,
                }
            } else {
                b"{\"error\":\"unknown request: send `status`\"}".to_vec()
            };
            let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&answer)).await;
        });
    }
}

/// Asks a running daemon for its status.
pub fn query(path: &Path) -> std::io::Result<Status> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"status\n")?;
    let mut body = Vec::new();
    s.take(64 << 20).read_to_end(&mut body)?;
    serde_json::from_slice(&body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
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
