//! PING_CHECK: one ICMP (ICMPv6) echo request to connect_ip, up when the
//! echo reply comes back within connect_timeout. The socket is the kernel's
//! unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP) where
//! `net.ipv4.ping_group_range` allows this process, else a raw socket (root
//! or CAP_NET_RAW). ipvsdir does not widen ping_group_range (keepalived
//! does); it falls back to the raw socket instead.
//!
//! Replies are untrusted: every length is checked, and anything that is not
//! the echo reply to this request (another probe's, an echo request seen on
//! loopback by a raw socket, a truncated packet) is skipped until the
//! deadline.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::probe::ProbeResult;
use super::tcp::is_local;

/// The kind of ICMP socket a probe used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// The unprivileged ping socket: the kernel sets the identifier and
    /// the checksum, and hands this socket only its own replies.
    Ping,
    /// A raw ICMP socket: every ICMP packet from the peer (IPv4 with its IP
    /// header); ours are found by identifier, sequence and payload.
    Raw,
}

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// Bytes of payload after the 8-byte ICMP header.
const PAYLOAD: usize = 56;

static SEQUENCE: AtomicU16 = AtomicU16::new(0);

/// The RFC 1071 internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: header, then a payload that names this probe (so that a
/// raw socket tells its reply from others').
pub fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 8 + PAYLOAD];
    p[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"ipvsdir ");
    for (i, b) in p[16..].iter_mut().enumerate() {
        *b = (i as u8) ^ (seq as u8);
    }
    if !v6 {
        // ICMPv6's checksum covers a pseudo-header: the kernel computes it.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `packet` (as a socket of `kind` received it) is the echo reply
/// to `request`. The identifier is compared only on raw sockets: a ping
/// socket's kernel replaces it with its own and filters on it.
pub fn is_reply(packet: &[u8], request: &[u8], v6: bool, kind: SocketKind) -> bool {
    let icmp = if !v6 && kind == SocketKind::Raw {
        // A raw IPv4 socket hands the IP header too.
        let Some(&first) = packet.first() else {
            return false;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 {
            return false;
        }
        match packet.get(ihl..) {
            Some(p) => p,
            None => return false,
        }
    } else {
        packet
    };
    if icmp.len() != request.len() || icmp.len() < 8 {
        return false;
    }
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    let id_ok = kind == SocketKind::Ping || icmp[4..6] == request[4..6];
    icmp[0] == want && icmp[1] == 0 && id_ok && icmp[6..] == request[6..]
}

fn open(addr: SocketAddr, bind: Option<SocketAddr>, kind: SocketKind) -> io::Result<OwnedFd> {
    let (family, proto) = if addr.is_ipv4() {
        (AddressFamily::Inet, SockProtocol::Icmp)
    } else {
        (AddressFamily::Inet6, SockProtocol::IcmpV6)
    };
    let ty = match kind {
        SocketKind::Ping => SockType::Datagram,
        SocketKind::Raw => SockType::Raw,
    };
    let fd = nix::sys::socket::socket(
        family,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        proto,
    )?;
    if let Some(b) = bind {
        nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(b))?;
    }
    Ok(fd)
}

/// Whether a socket(2) error means "this kind of socket is not for us"
/// (try the other), rather than a shortage.
fn not_allowed(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT)
    )
}

fn io_result(e: &io::Error, what: &str) -> ProbeResult {
    if is_local(e) {
        ProbeResult::local(format!("cannot {what}: {e}"))
    } else {
        ProbeResult::down(format!("ICMP {what} failed: {e}"))
    }
}

/// One echo over a ping socket where allowed, else a raw socket.
pub async fn probe(
    ip: std::net::IpAddr,
    bind: Option<std::net::IpAddr>,
    timeout: Duration,
) -> ProbeResult {
    let addr = SocketAddr::new(ip, 0);
    let bind = bind.map(|b| SocketAddr::new(b, 0));
    match open(addr, bind, SocketKind::Ping) {
        Ok(fd) => echo(fd, addr, SocketKind::Ping, timeout).await,
        Err(e) if not_allowed(&e) => match open(addr, bind, SocketKind::Raw) {
            Ok(fd) => echo(fd, addr, SocketKind::Raw, timeout).await,
            Err(raw) if not_allowed(&raw) => ProbeResult::local(format!(
                "cannot open an ICMP socket: ping sockets are not allowed for this group \
                 (net.ipv4.ping_group_range: {e}) and a raw socket needs CAP_NET_RAW ({raw})"
            )),
            Err(raw) => ProbeResult::local(format!("cannot open a raw ICMP socket: {raw}")),
        },
        Err(e) => ProbeResult::local(format!("cannot open an ICMP socket: {e}")),
    }
}

/// One echo with the socket kind given (tests use both).
pub async fn probe_using(
    kind: SocketKind,
    ip: std::net::IpAddr,
    bind: Option<std::net::IpAddr>,
    timeout: Duration,
) -> ProbeResult {
    let addr = SocketAddr::new(ip, 0);
    match open(addr, bind.map(|b| SocketAddr::new(b, 0)), kind) {
        Ok(fd) => echo(fd, addr, kind, timeout).await,
        Err(e) => ProbeResult::local(format!("cannot open an ICMP socket: {e}")),
    }
}

async fn echo(fd: OwnedFd, addr: SocketAddr, kind: SocketKind, timeout: Duration) -> ProbeResult {
    let v6 = addr.is_ipv6();
    // The connected socket sends to the real server and receives only
    // what comes from it.
    if let Err(e) = nix::sys::socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        return io_result(&e.into(), "connect");
    }
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let id = (std::process::id() as u16) ^ seq.rotate_left(8);
    let request = echo_request(v6, id, seq);
    // SAFETY: the OwnedFd is moved in, never replaced or closed while registered.
    let afd = match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
        Ok(a) => a,
        Err(e) => return ProbeResult::local(format!("cannot register an ICMP socket: {e}")),
    };
    let exchange = async {
        if let Err(e) = nix::sys::socket::send(afd.as_raw_fd(), &request, MsgFlags::empty()) {
            return io_result(&e.into(), "send");
        }
        // Room for an IPv4 header with options and a longer packet than
        // ours, so that one is seen as not ours rather than cut to look so.
        let mut buf = [0u8; 60 + 8 + PAYLOAD + 64];
        loop {
            let mut ready = match afd.readable().await {
                Ok(r) => r,
                Err(e) => return io_result(&e, "wait"),
            };
            let got = ready.try_io(|a| {
                nix::sys::socket::recv(a.as_raw_fd(), &mut buf, MsgFlags::empty())
                    .map_err(io::Error::from)
            });
            match got {
                Ok(Ok(n)) => {
                    if is_reply(&buf[..n.min(buf.len())], &request, v6, kind) {
                        return ProbeResult::up("echo reply");
                    }
                }
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EAGAIN as i32) => {}
                Ok(Err(e)) => return io_result(&e, "receive"),
                Err(_would_block) => {}
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => ProbeResult::down(format!(
            "no echo reply within {:.1} s",
            timeout.as_secs_f64()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_request_verifies() {
        let r = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&r), 0, "a correct checksum sums to zero");
        assert_eq!(r.len(), 64);
    }

    #[test]
    fn replies_are_matched_and_hostile_packets_skipped() {
        let req = echo_request(false, 1, 2);
        let mut reply = req.clone();
        reply[0] = ECHO_REPLY_V4;
        assert!(is_reply(&reply, &req, false, SocketKind::Ping));
        // On a ping socket the kernel's identifier differs: fine there,
        // not on a raw socket.
        let mut other_id = reply.clone();
        other_id[4] = 9;
        assert!(is_reply(&other_id, &req, false, SocketKind::Ping));
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&other_id);
        assert!(!is_reply(&ip, &req, false, SocketKind::Raw));
        let mut ip = vec![0x45u8; 20];
        ip.extend_from_slice(&reply);
        assert!(is_reply(&ip, &req, false, SocketKind::Raw));
        // Our own request (raw sockets see it on loopback), wrong sequence,
        // truncated, empty, a header length past the end: not ours.
        assert!(!is_reply(&req, &req, false, SocketKind::Ping));
        let mut seq = reply.clone();
        seq[7] ^= 1;
        assert!(!is_reply(&seq, &req, false, SocketKind::Ping));
        assert!(!is_reply(&reply[..20], &req, false, SocketKind::Ping));
        assert!(!is_reply(&[], &req, false, SocketKind::Raw));
        assert!(!is_reply(&[0x4f, 0, 0], &req, false, SocketKind::Raw));
        assert!(!is_reply(&[0x41; 80], &req, false, SocketKind::Raw));
        let req6 = echo_request(true, 1, 2);
        let mut reply6 = req6.clone();
        reply6[0] = ECHO_REPLY_V6;
        assert!(is_reply(&reply6, &req6, true, SocketKind::Raw));
        assert!(!is_reply(&reply, &req6, true, SocketKind::Raw));
    }
}
