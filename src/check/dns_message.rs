//! DNS_CHECK's messages, without I/O: the query keepalived sends (the
//! type names it knows, recursion desired, one question) encoded with
//! hickory-proto, and the verdict on a datagram from its header alone, as
//! keepalived reads only the header. The config builder validates with it;
//! the probe in [`super::dns`] sends and receives.

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::probe::ProbeResult;
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
