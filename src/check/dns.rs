//! DNS_CHECK: one query (`type`, `name`; recursion desired) over UDP to the
//! real server, as keepalived sends it; up when a response with the query's
//! ID comes back within connect_timeout with rcode NOERROR (answers or not),
//! down on any other rcode (NXDOMAIN, SERVFAIL, REFUSED, ...), an ICMP error
//! or silence. Datagrams that are not that response (too short, another
//! ID, a query) are skipped until the deadline, as keepalived skips them.
//! keepalived's retry default for DNS_CHECK is 3 (set by the config
//! builder); the engine's retry/delay_before_retry do the retrying.
//!
//! The messages are [`super::dns_message`]'s: the query is encoded once per
//! checker and only its ID changes per probe.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::SocketAddr;
use std::time::Duration;

use super::dns_message::judge;
use super::probe::ProbeResult;

fn random_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() as u16
}

fn io_down(e: &std::io::Error, what: &str) -> ProbeResult {
    super::udp::io_down(e, "DNS", what)
}

/// One query to `addr`; `query` from [`encode_query`].
pub async fn probe(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
    query: &[u8],
) -> ProbeResult {
    if query.len() < 12 {
        return ProbeResult::local("no DNS query to send");
    }
    let sock = match super::udp::connected(addr, bind, "DNS").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = random_id();
    let mut msg = query.to_vec();
    msg[..2].copy_from_slice(&id.to_be_bytes());
    let exchange = async {
        if let Err(e) = sock.send(&msg).await {
            return io_down(&e, "send");
        }
        let mut buf = [0u8; 1500];
        loop {
            match sock.recv(&mut buf).await {
                Ok(n) => {
                    if let Some(r) = judge(&buf[..n.min(buf.len())], id) {
                        return r;
                    }
                }
                Err(e) => return io_down(&e, "receive"),
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => ProbeResult::down(format!(
            "no DNS response within {:.1} s",
            timeout.as_secs_f64()
        )),
    }
}
