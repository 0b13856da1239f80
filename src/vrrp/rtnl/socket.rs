//! The request socket: one request at a time on an async NETLINK_ROUTE
//! socket, replies matched by sequence number, ACK / NACK / DONE turned
//! into results. Requests are tiny and the kernel answers them at once;
//! the timeout only guards against a bug leaving a caller hanging.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, NlasIterator, parse_string,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};
use tokio::sync::Mutex;
use tracing::debug;

use super::error::{Op, RtnlError, from_errno};

/// Upper bound on one request/reply exchange.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A dump that the kernel marks inconsistent (tables changed meanwhile)
/// is read again, at most this many times in all.
const DUMP_ATTEMPTS: usize = 3;
/// struct nlmsghdr.
const NLMSG_HDRLEN: usize = 16;
/// NLMSGERR_ATTR_MSG: the extended-ACK text.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A handle on rtnetlink for the VRRP driver. Methods take `&self` and may
/// be called from several tasks: exchanges are serialized internally.
pub struct Rtnl {
    sock: Mutex<TokioSocket>,
    seq: AtomicU32,
}

/// One message of a reply, kept as bytes so each module parses only the
/// attributes it needs (an attribute this crate cannot parse must not make
/// an unrelated lookup fail).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub msg_type: u16,
    pub payload: Vec<u8>,
}

/// One netlink message inside a datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawMsg<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a datagram into its netlink messages, checking every length.
pub(crate) fn split(datagram: &[u8]) -> Result<Vec<RawMsg<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let buf = NetlinkBuffer::new_checked(rest).map_err(|e| e.to_string())?;
        let len = buf.length() as usize;
        out.push(RawMsg {
            msg_type: buf.message_type(),
            flags: buf.flags(),
            seq: buf.sequence_number(),
            payload: buf.payload(),
        });
        // Messages are 4-byte aligned; the last one may lack its padding.
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Ok(out)
}

/// The kernel's extended-ACK text from an NLMSG_ERROR (`after_code`
/// starts at the echoed request) or NLMSG_DONE (`after_code` starts at
/// the TLVs) payload. Only decoration for an error message, so anything
/// odd yields None rather than an error.
pub(crate) fn ext_ack_text(msg_type: u16, flags: u16, after_code: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let tlvs = if msg_type == NLMSG_ERROR {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            let len = u32::from_ne_bytes(after_code.get(..4)?.try_into().ok()?) as usize;
            len.next_multiple_of(4)
        };
        after_code.get(echoed..)?
    } else {
        after_code
    };
    NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .and_then(|nla| parse_string(nla.value()).ok())
        .map(|s| s.trim().to_string())
}

/// How an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// ACK, or DONE with no error.
    Ok,
    /// NACK (or a DONE carrying an error): positive errno and ext-ACK text.
    Nack(i32, Option<String>),
}

/// Gathers the replies to one request from the datagrams that arrive.
#[derive(Debug)]
pub(crate) struct Collector {
    seq: u32,
    pub replies: Vec<Reply>,
    pub interrupted: bool,
    pub end: Option<End>,
}

impl Collector {
    pub fn new(seq: u32) -> Collector {
        Collector {
            seq,
            replies: Vec::new(),
            interrupted: false,
            end: None,
        }
    }

    /// Takes in one datagram; true once the exchange is over.
    pub fn absorb(&mut self, datagram: &[u8]) -> Result<bool, String> {
        for msg in split(datagram)? {
            if msg.seq != self.seq {
                // A late answer to an earlier request that timed out or
                // was cancelled.
                debug!(seq = msg.seq, want = self.seq, "rtnl: skipping stale reply");
                continue;
            }
            match msg.msg_type {
                NLMSG_NOOP => {}
                NLMSG_OVERRUN => return Err("NLMSG_OVERRUN (data lost)".into()),
                NLMSG_ERROR | NLMSG_DONE => {
                    let code = match msg.payload.first_chunk::<4>() {
                        Some(b) => i32::from_ne_bytes(*b),
                        // Linux may send an empty DONE.
                        None if msg.msg_type == NLMSG_DONE => 0,
                        None => return Err("NLMSG_ERROR shorter than its error code".into()),
                    };
                    self.end = Some(if code == 0 {
                        End::Ok
                    } else {
                        let after_code = msg.payload.get(4..).unwrap_or_default();
                        let text = ext_ack_text(msg.msg_type, msg.flags, after_code);
                        End::Nack(code.saturating_abs(), text)
                    });
                    return Ok(true);
                }
                msg_type => {
                    self.interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                    self.replies.push(Reply {
                        msg_type,
                        payload: msg.payload.to_vec(),
                    });
                }
            }
        }
        Ok(false)
    }
}

/// Serializes a request with the given flags and sequence number.
pub(crate) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// A non-blocking NETLINK_ROUTE socket registered with tokio, bound to a
/// kernel-chosen port.
pub(crate) fn open_socket() -> Result<TokioSocket, RtnlError> {
    // TokioSocket::new panics outside a runtime; say so instead.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(RtnlError::Socket {
            what: "open",
            source: io::Error::other("no tokio runtime is running on this thread"),
        });
    }
    let mut sock = TokioSocket::new(NETLINK_ROUTE).map_err(|source| RtnlError::Socket {
        what: "open",
        source,
    })?;
    sock.socket_mut()
        .bind_auto()
        .map_err(|source| RtnlError::Socket {
            what: "bind",
            source,
        })?;
    Ok(sock)
}

impl Rtnl {
    /// Opens the socket. Call it inside a tokio runtime with I/O enabled;
    /// the socket lives in the network namespace of the calling thread.
    pub async fn open() -> Result<Rtnl, RtnlError> {
        Rtnl::open_now()
    }

    /// [`Rtnl::open`] for callers that are not async themselves.
    pub(crate) fn open_now() -> Result<Rtnl, RtnlError> {
        let sock = open_socket()?;
        // Ask for the kernel's own explanation of a refusal (extended ACK),
        // and for only the request's header to be echoed back with it.
        // Both are optional niceties, so failure is ignored.
        let _ = sock.socket_ref().set_ext_ack(true);
        let _ = sock.socket_ref().set_cap_ack(true);
        Ok(Rtnl {
            sock: Mutex::new(sock),
            seq: AtomicU32::new(1),
        })
    }

    /// [`Rtnl::open`] with strict checking of dump requests
    /// (NETLINK_GET_STRICT_CHK): a route dump then returns only the table
    /// and protocol it names. On a kernel without it (before 4.20) the
    /// dump returns everything and the caller's parser filters.
    pub async fn open_strict() -> Result<Rtnl, RtnlError> {
        let rtnl = Rtnl::open_now()?;
        if let Err(e) = rtnl
            .sock
            .lock()
            .await
            .socket_ref()
            .set_netlink_get_strict_chk(true)
        {
            debug!("rtnl: NETLINK_GET_STRICT_CHK not available ({e}): dumps are filtered here");
        }
        Ok(rtnl)
    }

    /// A change or a single-object query: NLM_F_REQUEST | NLM_F_ACK plus
    /// `flags`; returns the messages that came before the ACK.
    pub(crate) async fn request(
        &self,
        op: &Op,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<Reply>, RtnlError> {
        let col = self
            .exchange(op, msg, NLM_F_REQUEST | NLM_F_ACK | flags)
            .await?;
        match col.end {
            Some(End::Nack(errno, text)) => Err(from_errno(errno, op, text)),
            _ => Ok(col.replies),
        }
    }

    /// A dump, read again if the kernel says it was interrupted.
    pub(crate) async fn dump(
        &self,
        op: &Op,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<Reply>, RtnlError> {
        for attempt in 1..=DUMP_ATTEMPTS {
            let col = self
                .exchange(op, msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)
                .await?;
            if let Some(End::Nack(errno, text)) = col.end {
                return Err(from_errno(errno, op, text));
            }
            if !col.interrupted {
                return Ok(col.replies);
            }
            debug!(op = %op.text, attempt, "rtnl: dump interrupted by a concurrent change, reading again");
        }
        Err(from_errno(libc::EINTR, op, None))
    }

    /// Like [`Rtnl::request`] but mapping one errno to an outcome
    /// (EEXIST on add -> AlreadyPresent, ESRCH on delete -> Absent, ...).
    pub(crate) async fn change(
        &self,
        op: &Op,
        msg: RouteNetlinkMessage,
        flags: u16,
        benign: &[(i32, super::Change)],
    ) -> Result<super::Change, RtnlError> {
        match self.request(op, msg, flags).await {
            Ok(_) => Ok(super::Change::Done),
            // Only the kernel's answer can be benign, not a socket failure.
            Err(err @ RtnlError::Socket { .. }) => Err(err),
            Err(err) => match err
                .errno()
                .and_then(|e| benign.iter().find(|(b, _)| *b == e))
            {
                Some((_, outcome)) => Ok(*outcome),
                None => Err(err),
            },
        }
    }

    async fn exchange(
        &self,
        op: &Op,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Collector, RtnlError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let bytes = encode(msg, flags, seq);
        let sock = self.sock.lock().await;
        let run = async {
            let kernel = SocketAddr::new(0, 0);
            sock.send_to(&bytes, &kernel)
                .await
                .map_err(|source| RtnlError::Socket {
                    what: "send on",
                    source,
                })?;
            let mut col = Collector::new(seq);
            loop {
                let (datagram, from) =
                    sock.recv_from_full()
                        .await
                        .map_err(|source| RtnlError::Socket {
                            what: "receive on",
                            source,
                        })?;
                if from.port_number() != 0 {
                    // Only the kernel (port 0) answers requests.
                    continue;
                }
                if col.absorb(&datagram).map_err(|why| op.malformed(why))? {
                    return Ok(col);
                }
            }
        };
        tokio::time::timeout(REPLY_TIMEOUT, run)
            .await
            .map_err(|_| RtnlError::Timeout {
                op: op.text.clone(),
                secs: REPLY_TIMEOUT.as_secs(),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message: header + payload, padded.
    fn nlmsg(msg_type: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload.len()) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&msg_type.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn error_payload(code: i32, echoed_header: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut v = code.to_ne_bytes().to_vec();
        v.extend_from_slice(echoed_header);
        v.extend_from_slice(tlvs);
        v
    }

    #[test]
    fn ack_ends_the_exchange() {
        let mut col = Collector::new(7);
        let dg = nlmsg(NLMSG_ERROR, 0, 7, &error_payload(0, &[0; 16], &[]));
        assert_eq!(col.absorb(&dg), Ok(true));
        assert_eq!(col.end, Some(End::Ok));
    }

    #[test]
    fn nack_carries_errno_and_capped_ext_ack() {
        let mut col = Collector::new(9);
        let tlv = nla(NLMSGERR_ATTR_MSG, b"Nexthop has invalid gateway\0");
        let payload = error_payload(-libc::ENETUNREACH, &[0; 16], &tlv);
        let dg = nlmsg(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 9, &payload);
        assert_eq!(col.absorb(&dg), Ok(true));
        assert_eq!(
            col.end,
            Some(End::Nack(
                libc::ENETUNREACH,
                Some("Nexthop has invalid gateway".into())
            ))
        );
    }

    #[test]
    fn uncapped_ext_ack_skips_the_whole_echoed_request() {
        let echoed = nlmsg(24, 0, 3, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let tlv = nla(NLMSGERR_ATTR_MSG, b"bad\0");
        let payload = error_payload(-libc::EINVAL, &echoed, &tlv);
        assert_eq!(
            ext_ack_text(NLMSG_ERROR, NLM_F_ACK_TLVS, &payload[4..]),
            Some("bad".into())
        );
    }

    #[test]
    fn dump_collects_until_done_and_skips_stale_replies() {
        let mut col = Collector::new(5);
        let mut dg = nlmsg(20, 0, 4, b"old!");
        dg.extend(nlmsg(20, 2, 5, b"one!"));
        dg.extend(nlmsg(20, 2 | NLM_F_DUMP_INTR, 5, b"two!"));
        assert_eq!(col.absorb(&dg), Ok(false));
        assert_eq!(
            col.absorb(&nlmsg(NLMSG_DONE, 2, 5, &0i32.to_ne_bytes())),
            Ok(true)
        );
        let payloads: Vec<_> = col.replies.iter().map(|r| r.payload.clone()).collect();
        assert_eq!(payloads, vec![b"one!".to_vec(), b"two!".to_vec()]);
        assert!(col.interrupted);
        assert_eq!(col.end, Some(End::Ok));
    }

    #[test]
    fn truncated_or_lying_lengths_are_errors_not_panics() {
        let mut col = Collector::new(1);
        let mut dg = nlmsg(20, 0, 1, b"abcd");
        dg[0] = 200; // length beyond the datagram
        assert!(col.absorb(&dg).is_err());
        assert!(col.absorb(&dg[..10]).is_err());
        let short_err = nlmsg(NLMSG_ERROR, 0, 1, &[1, 2]);
        assert!(col.absorb(&short_err).is_err());
        // Garbage ext-ack never fails, it is only dropped.
        assert_eq!(ext_ack_text(NLMSG_ERROR, NLM_F_ACK_TLVS, &[0xff; 3]), None);
        assert_eq!(ext_ack_text(NLMSG_ERROR, NLM_F_ACK_TLVS, &[0xff; 40]), None);
    }

    #[test]
    fn handles_can_move_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Rtnl>();
        send_sync::<super::super::LinkWatch>();
    }

    #[test]
    fn encode_sets_type_length_flags_and_seq() {
        use netlink_packet_route::link::LinkMessage;
        let bytes = encode(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST,
            42,
        );
        let msgs = split(&bytes).expect("well formed");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].msg_type, 18); // RTM_GETLINK
        assert_eq!(msgs[0].flags, NLM_F_REQUEST);
        assert_eq!(msgs[0].seq, 42);
        assert_eq!(msgs[0].payload.len(), 16); // struct ifinfomsg
    }
}
