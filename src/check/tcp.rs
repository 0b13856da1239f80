//! TCP_CHECK: up when a TCP connection is established within connect_timeout.
//! The connection helpers here serve HTTP_GET / SSL_GET too.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use super::probe::ProbeResult;

/// Why a connection was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// On this host, before anything reached the real server: out of
    /// descriptors, buffers or source ports, or the bindto address is not
    /// here. No verdict on the real server.
    #[error("{0}")]
    Local(String),
    /// The real server refused, or did not answer in time.
    #[error("{0}")]
    Remote(String),
}

impl ConnectError {
    /// The probe's result for this failure.
    pub fn result(self) -> ProbeResult {
        match self {
            ConnectError::Local(r) => ProbeResult::local(r),
            ConnectError::Remote(r) => ProbeResult::down(r),
        }
    }
}

/// Errors of socket(2), bind(2) or connect(2) that say this host is short
/// of something, not that the real server is unwell.
pub fn is_local(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// Why a connection attempt failed, in keepalived's spirit.
pub fn connect_error(e: &io::Error) -> ConnectError {
    let text = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::AddrNotAvailable => {
            format!("no source address or port available to connect: {e}")
        }
        _ => format!("connect failed: {e}"),
    };
    if is_local(e) {
        ConnectError::Local(text)
    } else {
        ConnectError::Remote(text)
    }
}

/// The reason of a connect that did not finish within `timeout`.
pub fn connect_timeout_text(timeout: Duration) -> String {
    format!("timed out after {:.1} s connecting", timeout.as_secs_f64())
}

/// A socket for `addr`, bound to `bind` (bindto / bind_port) when given.
/// Every failure here is on this host.
pub fn socket(addr: SocketAddr, bind: Option<SocketAddr>) -> Result<TcpSocket, ConnectError> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| ConnectError::Local(format!("cannot open a socket: {e}")))?;
    if let Some(b) = bind {
        sock.bind(b)
            .map_err(|e| ConnectError::Local(format!("cannot bind to {b}: {e}")))?;
    }
    Ok(sock)
}

/// Connects from `bind` (bindto / bind_port) to `addr`.
pub async fn connect(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let sock = socket(addr, bind)?;
    match tokio::time::timeout(timeout, sock.connect(addr)).await {
        Ok(r) => r.map_err(|e| connect_error(&e)),
        Err(_) => Err(ConnectError::Remote(connect_timeout_text(timeout))),
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
        Err(e) => e.result(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_errors() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(is_local(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [libc::ECONNREFUSED, libc::ENETUNREACH, libc::ETIMEDOUT] {
            assert!(!is_local(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        let e = connect_error(&io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(e, ConnectError::Remote("connection refused".into()));
    }
}
