//! TCP_CHECK: up when a TCP connection is established within connect_timeout.
//! The connection helpers here serve HTTP_GET / SSL_GET too.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::errno::Errno;
use tokio::io::Interest;
use tokio::net::TcpStream;

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

/// A connection attempt under way: a non-blocking socket (bound to
/// bindto / bind_port when given) on which connect(2) was issued.
///
/// Not yet registered with the runtime: a server on this host (or one
/// answering inside connect(2), as loopback does) is already connected
/// when connect returns, and a probe can then do its I/O without waiting
/// for the runtime to report the handshake, and without the SO_ERROR
/// read that report needs.
pub struct Dialing {
    stream: std::net::TcpStream,
    /// connect(2) returned with the handshake done.
    connected: bool,
    /// To this host's loopback.
    loopback: bool,
}

/// Who speaks first on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstWords {
    /// The probe (an HTTP request, a TLS hello): the handshake's last ACK
    /// waits for it and rides on it, one segment fewer for both ends. The
    /// kernel holds that ACK at most 200 ms; the probe writes at once.
    Ours,
    /// The server (SMTP's greeting): the handshake ends at once.
    Theirs,
    /// Nobody (TCP_CHECK): the ACK is held as for `Ours`, and the probe
    /// resets the connection as soon as it is up, so the ACK never goes.
    /// The server's kernel drops the half-open connection without making a
    /// socket for it, and its application never sees the probe (HAProxy's
    /// TCP check does the same: SYN, SYN-ACK, RST). The verdict is the one
    /// a full handshake gives: connect(2) succeeds on the SYN-ACK.
    Nobody,
}

/// Starts connecting from `bind` to `addr`. Errors of socket(2) and bind(2)
/// are all on this host; connect(2)'s are judged by [`connect_error`].
pub fn dial(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    first: FirstWords,
) -> Result<Dialing, ConnectError> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| ConnectError::Local(format!("cannot open a socket: {}", io::Error::from(e))))?;
    if first != FirstWords::Theirs {
        // Delayed-ACK mode before connect(2) is what makes the kernel hold
        // the handshake's ACK (up to 200 ms) for the first data or the
        // reset. Only a cost if refused.
        let _ = socket2::SockRef::from(&fd).set_tcp_quickack(false);
    }
    if let Some(b) = bind {
        socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(b)).map_err(|e| {
            ConnectError::Local(format!("cannot bind to {b}: {}", io::Error::from(e)))
        })?;
    }
    let connected = match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => true,
        Err(Errno::EINPROGRESS) => false,
        Err(e) => return Err(connect_error(&io::Error::from(e))),
    };
    Ok(Dialing {
        stream: fd.into(),
        connected,
        loopback: addr.ip().is_loopback(),
    })
}

impl Dialing {
    /// The handshake is done. connect(2) may say so itself; a server on
    /// this host's loopback has answered by the time connect(2) returns
    /// even when connect says "in progress", and getpeername(2) tells. To
    /// any other address a handshake takes a round trip: asking at once
    /// would only cost a system call, and the readiness says it later.
    pub fn connected(&self) -> bool {
        self.connected || (self.loopback && self.stream.peer_addr().is_ok())
    }

    /// Writes what the socket takes of `bytes` now: `Ok(None)` while the
    /// handshake is still under way. An error is the connection's (refused,
    /// reset).
    pub fn try_write(&mut self, bytes: &[u8]) -> Result<Option<usize>, ConnectError> {
        use std::io::Write;
        match self.stream.write(bytes) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(connect_error(&e)),
        }
    }

    /// The connection in the runtime, as it is (connected or not). The
    /// runtime's epoll refusing it is a problem of this host.
    pub fn register(self) -> Result<TcpStream, ConnectError> {
        TcpStream::from_std(self.stream)
            .map_err(|e| ConnectError::Local(format!("cannot watch a socket: {e}")))
    }

    /// Waits for the handshake to finish; the error says why it failed.
    pub async fn established(self) -> Result<TcpStream, ConnectError> {
        let stream = self.register()?;
        established(&stream).await.map_err(|e| connect_error(&e))?;
        Ok(stream)
    }

    /// The socket, for a driver of its own.
    pub fn into_std(self) -> std::net::TcpStream {
        self.stream
    }

    /// Closes with a reset (see [`reset`]).
    pub fn reset(self) {
        reset(self.stream);
    }
}

/// Closes a probe's connection with a reset: no FIN exchange and no
/// TIME_WAIT, on either side. For a connection whose probe is over.
pub fn reset(conn: impl AsFd) {
    let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
}

/// Waits until a registered connection's handshake is over; the error says
/// why it failed. The readiness the runtime reports tells success without
/// a syscall; only a closed connection needs SO_ERROR.
pub async fn established(stream: &TcpStream) -> io::Result<()> {
    let ready = stream.ready(Interest::WRITABLE).await?;
    if (ready.is_write_closed() || ready.is_error())
        && let Some(e) = stream.take_error()?
    {
        return Err(e);
    }
    Ok(())
}

/// Connects from `bind` (bindto / bind_port) to `addr`.
pub async fn connect(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let dialing = dial(addr, bind, FirstWords::Theirs)?;
    match tokio::time::timeout(timeout, dialing.established()).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Remote(connect_timeout_text(timeout))),
    }
}

/// TCP_CHECK: up on the server's SYN-ACK, then a reset (no ACK, no
/// accept on the server: [`FirstWords::Nobody`]). A connection that is up
/// as soon as connect(2) returns (a server on this host) never enters the
/// runtime.
pub async fn probe(addr: SocketAddr, bind: Option<SocketAddr>, timeout: Duration) -> ProbeResult {
    let dialing = match dial(addr, bind, FirstWords::Nobody) {
        Ok(d) => d,
        Err(e) => return e.result(),
    };
    if dialing.connected() {
        dialing.reset();
        return ProbeResult::up("connected");
    }
    let stream = match dialing.register() {
        Ok(s) => s,
        Err(e) => return e.result(),
    };
    match tokio::time::timeout(timeout, established(&stream)).await {
        Ok(Ok(())) => {
            reset(stream);
            ProbeResult::up("connected")
        }
        Ok(Err(e)) => connect_error(&e).result(),
        Err(_) => ProbeResult::down(connect_timeout_text(timeout)),
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
