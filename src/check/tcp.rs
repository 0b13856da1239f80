//! TCP_CHECK: up when a TCP connection is established within connect_timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

/// Why a probe came out the way it did, in words an operator reads. The
/// usual outcomes ("connected", "ok (HTTP 200)") are static text, so a
/// healthy probe allocates nothing for its reason.
pub use super::state::Reason;

/// Result of one probe: up or down, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub ok: bool,
    pub reason: Reason,
    /// MISC_CHECK misc_dynamic: the weight its exit status asked for.
    pub weight: Option<u32>,
}

impl ProbeResult {
    pub fn up(reason: impl Into<Reason>) -> Self {
        ProbeResult {
            ok: true,
            reason: reason.into(),
            weight: None,
        }
    }

    pub fn down(reason: impl Into<Reason>) -> Self {
        ProbeResult {
            ok: false,
            reason: reason.into(),
            weight: None,
        }
    }
}

/// Why a connection attempt failed, in keepalived's spirit.
pub fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::AddrNotAvailable => format!("cannot bind the source address: {e}"),
        _ => format!("connect failed: {e}"),
    }
}

/// The reason of a connect that did not finish within `timeout`.
pub fn connect_timeout_text(timeout: Duration) -> String {
    format!("timed out after {:.1} s connecting", timeout.as_secs_f64())
}

/// A socket for `addr`, bound to `bind` (bindto / bind_port) when given.
pub fn socket(addr: SocketAddr, bind: Option<SocketAddr>) -> Result<TcpSocket, String> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("cannot open a socket: {e}"))?;
    if let Some(b) = bind {
        sock.bind(b)
            .map_err(|e| format!("cannot bind to {b}: {e}"))?;
    }
    Ok(sock)
}

/// Connects from `bind` (bindto / bind_port) to `addr`.
pub async fn connect(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let sock = socket(addr, bind)?;
    match tokio::time::timeout(timeout, sock.connect(addr)).await {
        Ok(r) => r.map_err(|e| connect_error(&e)),
        Err(_) => Err(connect_timeout_text(timeout)),
    }
}

pub async fn probe(addr: SocketAddr, bind: Option<SocketAddr>, timeout: Duration) -> ProbeResult {
    match connect(addr, bind, timeout).await {
        Ok(stream) => {
            // Close with a reset: no FIN exchange or TIME_WAIT for a probe
            // that carried no data, on either side.
            let _ = stream.set_zero_linger();
            ProbeResult::up("connected")
        }
        Err(e) => ProbeResult::down(e),
    }
}
