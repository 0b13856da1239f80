//! The kernel side: one generic-netlink socket to the IPVS family, requests
//! sent in batches (one ACK per batch, an error message per failure), dumps
//! read back into a [`Table`].
//! Blocking on purpose: callers in async code run it on a blocking thread.

use ipvs_sys::IpvsMessage;
use netlink_packet_core::{
    ErrorBuffer, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::GenlCtrl;
use netlink_packet_generic::ctrl::GenlCtrlCmd;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_sys::{Socket, protocols::NETLINK_GENERIC};

use super::diff::Op;
pub use super::kernel_error::{KernelError, describe, is_conflict};
use super::kernel_error::{errno_message, op_error_message};

/// How long any netlink send or receive may block: a kernel that does not
/// answer becomes an error the caller retries, never a frozen thread.
pub const IO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Requests per `send`: large enough to amortise the syscall, small enough
/// that the ACKs fit the receive buffer.
const BATCH: usize = 512;

pub use super::table::{KernelService, KernelTable};

/// Netlink requests the kernel refused or that failed (each refused
/// operation of a batch counts once), process-wide since start: the
/// `ipvsdir_netlink_errors_total` metric.
static ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts `n` failed netlink requests.
pub fn note_errors(n: u64) {
    ERRORS.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// Failed netlink requests so far (see [`note_errors`]).
pub fn errors_total() -> u64 {
    ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

pub struct Ipvs {
    sock: Socket,
    family: u16,
    seq: u32,
    /// How long one send or receive may block (named in Timeout errors).
    timeout: std::time::Duration,
}

pub fn message_of(op: &Op) -> IpvsMessage {
    match op {
        Op::AddService(s) => IpvsMessage::NewService(s.clone()),
        Op::EditService(s) => IpvsMessage::SetService(s.clone()),
        Op::DelService(k) => IpvsMessage::DelService(*k),
        Op::AddDest(k, d) => IpvsMessage::NewDest {
            service: *k,
            dest: *d,
        },
        Op::EditDest(k, d) => IpvsMessage::SetDest {
            service: *k,
            dest: *d,
        },
        Op::DelDest(k, (addr, port)) => IpvsMessage::DelDest {
            service: *k,
            addr: *addr,
            port: *port,
        },
    }
}

fn set_timeouts(sock: &Socket, t: std::time::Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: a valid socket and a timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn timeout_or_io(e: std::io::Error, timeout: std::time::Duration) -> KernelError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            KernelError::Timeout(timeout.as_secs().max(1))
        }
        _ => KernelError::Io(e),
    }
}

/// Walks the netlink messages packed in one datagram.
fn messages(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            return None;
        }
        let (msg, tail) = rest.split_at(len);
        rest = tail.get(len.next_multiple_of(4) - len..).unwrap_or(&[]);
        Some(msg)
    })
}

/// The sequence number and error code (0: ACK) of an NLMSG_ERROR message;
/// None for any other message.
fn error_reply(raw: &[u8]) -> Result<Option<(u32, i32)>, KernelError> {
    let nl = NetlinkBuffer::new_checked(raw).map_err(|e| KernelError::Decode(e.to_string()))?;
    if nl.message_type() != NLMSG_ERROR {
        return Ok(None);
    }
    let err =
        ErrorBuffer::new_checked(nl.payload()).map_err(|e| KernelError::Decode(e.to_string()))?;
    Ok(Some((
        nl.sequence_number(),
        err.code().map_or(0, |c| c.get()),
    )))
}

impl Ipvs {
    /// Opens the socket and resolves the IPVS family (which also makes the
    /// kernel load ip_vs when it is available as a module).
    pub fn open() -> Result<Ipvs, KernelError> {
        Self::open_with_timeout(IO_TIMEOUT)
    }

    /// [`open`](Self::open) with another bound on every send and receive
    /// (e.g. a shorter one for a read at scrape time).
    pub fn open_with_timeout(timeout: std::time::Duration) -> Result<Ipvs, KernelError> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        // ACKs without the echoed request keep the receive buffer small.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_rx_buf_sz(8 * 1024 * 1024);
        set_timeouts(&sock, timeout)?;
        let mut ipvs = Ipvs {
            sock,
            family: 0,
            seq: 0,
            timeout,
        };
        ipvs.family = ipvs.resolve_family()?;
        Ok(ipvs)
    }

    fn send(&self, buf: &[u8]) -> Result<(), KernelError> {
        self.sock
            .send(buf, 0)
            .map(|_| ())
            .map_err(|e| timeout_or_io(e, self.timeout))
    }

    /// One datagram, or Timeout when the kernel stays silent for the timeout.
    fn recv(&self) -> Result<Vec<u8>, KernelError> {
        self.sock
            .recv_from_full()
            .map(|(data, _)| data)
            .map_err(|e| timeout_or_io(e, self.timeout))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn resolve_family(&mut self) -> Result<u16, KernelError> {
        let mut genl = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(
                ipvs_sys::IPVS_GENL_NAME.to_string(),
            )],
        });
        genl.finalize();
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = self.next_seq();
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(genl));
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.send(&buf)?;
        let mut family = None;
        loop {
            let data = self.recv()?;
            for raw in messages(&data) {
                let reply = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(raw)
                    .map_err(|e| KernelError::Decode(e.to_string()))?;
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => {
                        for nla in &m.payload.nlas {
                            if let GenlCtrlAttrs::FamilyId(id) = nla {
                                family = Some(*id);
                            }
                        }
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => family.ok_or(KernelError::NoIpvs),
                            Some(c) if -c.get() == libc::ENOENT => Err(KernelError::NoIpvs),
                            Some(c) => Err(KernelError::Refused {
                                what: "resolve the IPVS netlink family".into(),
                                errno: -c.get(),
                                message: errno_message(-c.get()),
                            }),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Appends `m` as one request to `wire`; returns its sequence number.
    fn encode(&mut self, m: &IpvsMessage, flags: u16, wire: &mut Vec<u8>) -> u32 {
        let seq = self.next_seq();
        m.encode_request(self.family, flags, seq, wire);
        seq
    }

    /// Sends the ops in batches and returns one result per op, in order.
    ///
    /// Only a batch's last request asks for an ACK: the kernel handles the
    /// requests of one datagram in order, answers every failure with an
    /// error message whatever the flags, and so the last ACK closes the
    /// batch. Saves an ACK message per request, which was half the socket
    /// traffic of a table load.
    pub fn execute(&mut self, ops: &[Op]) -> Result<Vec<Result<(), KernelError>>, KernelError> {
        let mut results = Vec::with_capacity(ops.len());
        let mut wire = Vec::new();
        for chunk in ops.chunks(BATCH) {
            wire.clear();
            let first = self.seq.wrapping_add(1);
            let mut last = first;
            for (i, op) in chunk.iter().enumerate() {
                let ack = if i + 1 == chunk.len() { NLM_F_ACK } else { 0 };
                last = self.encode(&message_of(op), NLM_F_REQUEST | ack, &mut wire);
            }
            self.send(&wire)?;
            let mut outcome: Vec<Result<(), KernelError>> =
                (0..chunk.len()).map(|_| Ok(())).collect();
            let mut closed = false;
            while !closed {
                let data = self.recv()?;
                for raw in messages(&data) {
                    let Some((seq, code)) = error_reply(raw)? else {
                        continue;
                    };
                    let i = seq.wrapping_sub(first) as usize;
                    if i >= chunk.len() {
                        continue; // a late answer to an earlier request
                    }
                    closed |= seq == last;
                    if code == 0 {
                        continue;
                    }
                    let errno = -code;
                    outcome[i] = Err(if errno == libc::EPERM {
                        KernelError::Permission {
                            what: describe(&chunk[i]),
                        }
                    } else {
                        KernelError::Refused {
                            what: describe(&chunk[i]),
                            errno,
                            message: op_error_message(&chunk[i], errno),
                        }
                    });
                }
            }
            results.extend(outcome);
        }
        Ok(results)
    }

    /// Sends one request and collects the decoded replies until ACK or DONE.
    pub fn request(&mut self, m: IpvsMessage, dump: bool) -> Result<Vec<IpvsMessage>, KernelError> {
        self.collect(m, dump, |_, reply| reply)
    }

    /// Like [`request`](Self::request), returning the raw reply messages
    /// (whole netlink messages, headers included).
    pub fn request_raw(&mut self, m: IpvsMessage, dump: bool) -> Result<Vec<Vec<u8>>, KernelError> {
        self.collect(m, dump, |raw, _| raw.to_vec())
    }

    /// Sends one request and maps each reply (raw bytes, decoded) until ACK or DONE.
    fn collect<T>(
        &mut self,
        m: IpvsMessage,
        dump: bool,
        mut keep: impl FnMut(&[u8], IpvsMessage) -> T,
    ) -> Result<Vec<T>, KernelError> {
        let flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        let mut bytes = Vec::new();
        let seq = self.encode(&m, flags, &mut bytes);
        self.send(&bytes)?;
        let mut out = Vec::new();
        loop {
            let data = self.recv()?;
            for raw in messages(&data) {
                let reply = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(raw)
                    .map_err(|e| KernelError::Decode(e.to_string()))?;
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(g) => out.push(keep(raw, g.payload)),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) if -c.get() == libc::EPERM => Err(KernelError::Permission {
                                what: format!("{m:?}"),
                            }),
                            Some(c) => Err(KernelError::Refused {
                                what: format!("{m:?}"),
                                errno: -c.get(),
                                message: errno_message(-c.get()),
                            }),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// One GET_SERVICE dump plus one GET_DEST dump per service.
    pub fn read(&mut self) -> Result<KernelTable, KernelError> {
        self.read_until(None)
    }

    /// [`read`](Self::read), given up (Timeout) when `deadline` passes
    /// between two dumps.
    pub fn read_until(
        &mut self,
        deadline: Option<std::time::Instant>,
    ) -> Result<KernelTable, KernelError> {
        let mut table = KernelTable::default();
        for m in self.request(IpvsMessage::GetService(None), true)? {
            let IpvsMessage::ServiceReply(entry) = m else {
                continue;
            };
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(KernelError::Timeout(self.timeout.as_secs().max(1)));
            }
            let mut dests = Vec::new();
            for d in self.request(IpvsMessage::GetDest(entry.service.key), true)? {
                if let IpvsMessage::DestReply(d) = d {
                    dests.push(d);
                }
            }
            table.services.push(KernelService { entry, dests });
        }
        Ok(table)
    }

    pub fn info(&mut self) -> Result<ipvs_sys::Info, KernelError> {
        for m in self.request(IpvsMessage::GetInfo, false)? {
            if let IpvsMessage::InfoReply(i) = m {
                return Ok(i);
            }
        }
        Err(KernelError::Decode("GET_INFO gave no reply".into()))
    }
}
