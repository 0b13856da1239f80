//! DNS_CHECK: one query (`type`, `name`; recursion desired) over UDP to the
//! real server, as keepalived sends it; up when a response with the query's
//! ID comes back within connect_timeout with rcode NOERROR (answers or not),
//! down on any other rcode (NXDOMAIN, SERVFAIL, REFUSED, ...), an ICMP error
//! or silence. Datagrams that are not that response (too short, another
//! ID, a query) are skipped until the deadline, as keepalived skips them.
//! keepalived's retry default for DNS_CHECK is 3 (set by the config
//! builder); the engine's retry/delay_before_retry do the retrying.
//!
//! The messages are hickory-proto's: the query is encoded once per checker
//! and only its ID changes per probe; of a response only the header is
//! decoded, as keepalived reads only the header.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::net::UdpSocket;

use super::probe::ProbeResult;
use super::tcp::is_local;
use crate::config::model::DnsCheck;

/// The record types keepalived's DNS_CHECK knows, by their `type` name.
pub const TYPES: &[(&str, RecordType)] = &[
    ("A", RecordType::A),
    ("NS", RecordType::NS),
    ("CNAME", RecordType::CNAME),
    ("SOA", RecordType::SOA),
    ("MX", RecordType::MX),
    ("TXT", RecordType::TXT),
    ("AAAA", RecordType::AAAA),
];

/// Why a query cannot be made from a configured name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("DNS_CHECK name '{name}' is not a domain name: {reason}")]
    Name { name: String, reason: String },
    #[error("DNS_CHECK type '{0}' is not one of A NS CNAME SOA MX TXT AAAA")]
    Type(String),
    #[error("cannot encode the DNS query: {0}")]
    Encode(String),
}

/// The wire form of the query for `check`, with ID 0.
pub fn encode_query(check: &DnsCheck) -> Result<Vec<u8>, QueryError> {
    let rtype = TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&check.qtype))
        .map(|&(_, t)| t)
        .ok_or_else(|| QueryError::Type(check.qtype.clone()))?;
    let name = Name::from_ascii(&check.name).map_err(|e| QueryError::Name {
        name: check.name.clone(),
        reason: e.to_string(),
    })?;
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name, rtype));
    m.to_vec().map_err(|e| QueryError::Encode(e.to_string()))
}

/// The verdict on one datagram: `None` when it is not the response to query
/// `id` (skip it), else up or down by its rcode.
pub fn judge(datagram: &[u8], id: u16) -> Option<ProbeResult> {
    let header = Header::read(&mut BinDecoder::new(datagram)).ok()?;
    if header.id != id || header.message_type != MessageType::Response {
        return None;
    }
    let rcode = header.response_code;
    Some(if rcode == ResponseCode::NoError {
        ProbeResult::up("NOERROR")
    } else {
        let code = rcode.low();
        let name = RCODES.get(usize::from(code)).copied().unwrap_or("unknown");
        ProbeResult::down(format!("DNS error {name} (rcode {code})"))
    })
}

/// The RFC 1035/2136 mnemonics of the 4-bit response codes.
const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

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
    if is_local(e) {
        ProbeResult::local(format!("cannot {what}: {e}"))
    } else if e.kind() == std::io::ErrorKind::ConnectionRefused {
        ProbeResult::down("port unreachable (ICMP): connection refused")
    } else {
        ProbeResult::down(format!("DNS {what} failed: {e}"))
    }
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
    let local = bind.unwrap_or_else(|| {
        let any = if addr.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        SocketAddr::new(any, 0)
    });
    let sock = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return ProbeResult::local(format!("cannot bind a UDP socket to {local}: {e}")),
    };
    if let Err(e) = sock.connect(addr).await {
        return io_down(&e, "connect");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: &str, n: &str) -> DnsCheck {
        DnsCheck {
            qtype: t.into(),
            name: n.into(),
        }
    }

    #[test]
    fn queries_and_responses() {
        let q = encode_query(&check("soa", ".")).expect("a query");
        // Header: ID 0, RD set, one question; the root name, SOA, IN.
        assert_eq!(&q[..12], &[0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], &[0, 0, 6, 0, 1]);
        let q = encode_query(&check("A", "www.example.com")).expect("a query");
        assert_eq!(&q[12..17], &[3, b'w', b'w', b'w', 7]);
        assert!(matches!(
            encode_query(&check("SRV", ".")),
            Err(QueryError::Type(_))
        ));

        let mut resp = q.clone();
        resp[..2].copy_from_slice(&0x1234u16.to_be_bytes());
        resp[2] |= 0x80;
        assert_eq!(judge(&resp, 0x1234), Some(ProbeResult::up("NOERROR")));
        // Another ID, a query, a short or empty datagram: skipped.
        assert_eq!(judge(&resp, 0x1235), None);
        assert_eq!(judge(&q, 0), None);
        assert_eq!(judge(&resp[..11], 0x1234), None);
        assert_eq!(judge(&[], 0x1234), None);
        resp[3] = 3;
        let r = judge(&resp, 0x1234).expect("a verdict");
        assert!(!r.ok);
        assert_eq!(&*r.reason, "DNS error NXDOMAIN (rcode 3)");
    }
}
