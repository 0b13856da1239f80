//! UDP_CHECK: one datagram (`payload`) on a connected UDP socket, then a
//! wait of connect_timeout. The kernel reports an ICMP error for a connected
//! socket (port unreachable becomes ECONNREFUSED), so a dead UDP service is
//! down. Without `require_reply` silence is up (nothing said it is dead);
//! with it, a reply must arrive, and with `require_reply HEX` it must start
//! with those bytes and its length be within min/max_reply_length.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::probe::ProbeResult;
use super::tcp::is_local;
use crate::config::model::UdpCheck;

/// The verdict on a reply (`None` when it fits), as keepalived judges it:
/// with no reply data configured any reply fits; otherwise the length must
/// be within bounds and the bytes both have must match.
pub fn judge_reply(reply: &[u8], check: &UdpCheck) -> Option<String> {
    let want = check.reply.as_deref()?;
    let len = reply.len();
    if len < usize::from(check.min_reply_length) || len > usize::from(check.max_reply_length) {
        return Some(format!(
            "reply of {len} bytes, outside min_reply_length {} .. max_reply_length {}",
            check.min_reply_length, check.max_reply_length
        ));
    }
    let i = reply.iter().zip(want).position(|(a, b)| a != b)?;
    Some(format!(
        "reply data mismatch at byte {i}: got {:02x}, expected {:02x}",
        reply[i], want[i]
    ))
}

/// Why a UDP exchange failed: a local problem (no verdict), an ICMP port
/// unreachable, or another error; `proto` names the check (`UDP`, `DNS`).
pub(super) fn io_down(e: &io::Error, proto: &str, what: &str) -> ProbeResult {
    if is_local(e) {
        return ProbeResult::local(format!("cannot {what}: {e}"));
    }
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => {
            ProbeResult::down("port unreachable (ICMP): connection refused")
        }
        _ => ProbeResult::down(format!("{proto} {what} failed: {e}")),
    }
}

/// A socket bound to `bind` (else any address of `addr`'s family) and
/// connected to `addr`, so that an ICMP error comes back as ECONNREFUSED.
pub(super) async fn connected(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    proto: &str,
) -> Result<UdpSocket, ProbeResult> {
    let local = bind.unwrap_or_else(|| {
        let any = if addr.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        SocketAddr::new(any, 0)
    });
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| ProbeResult::local(format!("cannot bind a UDP socket to {local}: {e}")))?;
    sock.connect(addr)
        .await
        .map_err(|e| io_down(&e, proto, "connect"))?;
    Ok(sock)
}

pub async fn probe(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
    check: &UdpCheck,
) -> ProbeResult {
    let sock = match connected(addr, bind, "UDP").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // One deadline for sending and hearing back.
    let exchange = async {
        sock.send(&check.payload)
            .await
            .map_err(|e| io_down(&e, "UDP", "send"))?;
        // One byte more than the largest reply allowed, so that a longer one
        // shows as too long rather than cut to fit.
        let mut buf = vec![0u8; usize::from(check.max_reply_length) + 1];
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| io_down(&e, "UDP", "receive"))?;
        buf.truncate(n);
        Ok::<_, ProbeResult>(buf)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(reply)) => match judge_reply(&reply, check) {
            None => ProbeResult::up(format!("reply of {} bytes", reply.len())),
            Some(why) => ProbeResult::down(why),
        },
        Ok(Err(result)) => result,
        Err(_) if check.require_reply => {
            ProbeResult::down(format!("no reply within {:.1} s", timeout.as_secs_f64()))
        }
        Err(_) => ProbeResult::up("sent; no ICMP error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reply: Option<&[u8]>, min: u16, max: u16) -> UdpCheck {
        UdpCheck {
            payload: Vec::new(),
            require_reply: true,
            reply: reply.map(|r| r.to_vec()),
            min_reply_length: min,
            max_reply_length: max,
        }
    }

    #[test]
    fn replies_judged_as_keepalived_does() {
        // No data configured: any reply does, whatever its length.
        assert_eq!(judge_reply(b"", &check(None, 5, 10)), None);
        let c = check(Some(b"OK"), 0, 255);
        assert_eq!(judge_reply(b"OK then", &c), None);
        // Only the bytes both have are compared.
        assert_eq!(judge_reply(b"O", &c), None);
        assert!(judge_reply(b"NO", &c).unwrap().contains("byte 0"));
        let c = check(Some(b"OK"), 3, 4);
        assert!(judge_reply(b"OK", &c).unwrap().contains("2 bytes"));
        assert!(judge_reply(b"OKOKO", &c).unwrap().contains("5 bytes"));
        assert_eq!(judge_reply(b"OKx", &c), None);
    }
}
