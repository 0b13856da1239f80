//! The kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC):
//! the subscription message and a decoder for what it sends. The decoder
//! is total: any bytes give a (possibly empty) list of events, never a
//! panic; what is not a process event we use is skipped.

use std::io;

use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols};

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
/// what, cpu, timestamp_ns.
const PROC_EVENT_HDR: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;

const PROC_EVENT_NONE: u32 = 0x0000_0000;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// A process event, pids as the kernel gives them (pid = thread id, tgid =
/// process id). Only whole processes matter to us (pid == tgid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// The kernel's answer to our subscription (PROC_EVENT_NONE), with
    /// its error number (0: subscribed).
    Ack {
        err: u32,
    },
    Fork {
        parent_tgid: i32,
        child_pid: i32,
        child_tgid: i32,
    },
    Exec {
        pid: i32,
        tgid: i32,
    },
    Comm {
        pid: i32,
        tgid: i32,
    },
    Exit {
        pid: i32,
        tgid: i32,
    },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(|v| v as i32)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

/// The events in one datagram.
pub fn decode(datagram: &[u8]) -> Vec<ProcEvent> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(rest, 0).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > rest.len() {
            break;
        }
        let kind = u16_at(rest, 4).unwrap_or(NLMSG_ERROR);
        if kind != NLMSG_ERROR
            && kind != NLMSG_NOOP
            && let Some(ev) = decode_cn(&rest[NLMSG_HDRLEN..len])
        {
            out.push(ev);
        }
        // NLMSG_ALIGN
        let next = len.saturating_add(3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    out
}

fn decode_cn(msg: &[u8]) -> Option<ProcEvent> {
    if u32_at(msg, 0)? != CN_IDX_PROC || u32_at(msg, 4)? != CN_VAL_PROC {
        return None;
    }
    let ack = u32_at(msg, 12)?;
    let data_len = usize::from(u16_at(msg, 16)?);
    let data = msg.get(CN_MSG_LEN..CN_MSG_LEN.checked_add(data_len)?)?;
    let what = u32_at(data, 0)?;
    let d = PROC_EVENT_HDR;
    if what == PROC_EVENT_NONE {
        return Some(ProcEvent::Ack {
            err: u32_at(data, d).unwrap_or(0),
        });
    }
    if ack != 0 {
        return None;
    }
    Some(match what {
        PROC_EVENT_FORK => ProcEvent::Fork {
            parent_tgid: i32_at(data, d + 4)?,
            child_pid: i32_at(data, d + 8)?,
            child_tgid: i32_at(data, d + 12)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec {
            pid: i32_at(data, d)?,
            tgid: i32_at(data, d + 4)?,
        },
        PROC_EVENT_COMM => ProcEvent::Comm {
            pid: i32_at(data, d)?,
            tgid: i32_at(data, d + 4)?,
        },
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: i32_at(data, d)?,
            tgid: i32_at(data, d + 4)?,
        },
        _ => return None,
    })
}

/// The message that subscribes a bound connector socket (`port`: its
/// netlink port id).
pub fn listen_message(port: u32) -> Vec<u8> {
    mcast_message(port, PROC_CN_MCAST_LISTEN)
}

/// LISTEN or IGNORE: the kernel counts listeners and reports every fork,
/// exec and exit of the host while the count is above zero.
fn mcast_message(port: u32, op: u32) -> Vec<u8> {
    let total = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&port.to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&op.to_ne_bytes());
    m
}

/// A subscribed connector socket.
pub struct Connector {
    sock: TokioSocket,
}

impl Drop for Connector {
    /// Unsubscribes (best effort, never waits): without it the kernel's
    /// listener count stays raised and it keeps building process events
    /// for nobody, one more subscription per reload.
    fn drop(&mut self) {
        let s = self.sock.socket_mut();
        let mut addr = SocketAddr::new(0, 0);
        if s.get_address(&mut addr).is_ok() {
            let _ = s.send(
                &mcast_message(addr.port_number(), PROC_CN_MCAST_IGNORE),
                libc::MSG_DONTWAIT,
            );
        }
    }
}

/// What one receive gave.
pub enum Received {
    Events(Vec<ProcEvent>),
    /// The kernel dropped events (ENOBUFS): the caller re-reads /proc.
    Lost,
}

impl Connector {
    /// Opens and subscribes (inside a tokio runtime), and waits up to
    /// `confirm` for the kernel to acknowledge. Fails without
    /// CAP_NET_ADMIN, on a kernel without CONFIG_PROC_EVENTS, and outside
    /// the initial network namespace: there the socket opens but the
    /// kernel (which only speaks to the initial namespace) never answers.
    pub async fn open(confirm: std::time::Duration) -> io::Result<Connector> {
        let mut sock = TokioSocket::new(protocols::NETLINK_CONNECTOR)?;
        let s = sock.socket_mut();
        s.bind(&SocketAddr::new(0, CN_IDX_PROC))?;
        let mut addr = SocketAddr::new(0, 0);
        s.get_address(&mut addr)?;
        let _ = s.set_rx_buf_sz(1 << 20);
        let msg = listen_message(addr.port_number());
        s.send(&msg, 0)?;
        let mut c = Connector { sock };
        let acked = tokio::time::timeout(confirm, async {
            loop {
                match c.recv().await {
                    Ok(Received::Events(evs)) => {
                        if let Some(err) = evs.iter().find_map(|e| match e {
                            ProcEvent::Ack { err } => Some(*err),
                            _ => None,
                        }) {
                            return if err == 0 {
                                Ok(())
                            } else {
                                Err(io::Error::from_raw_os_error(err as i32))
                            };
                        }
                    }
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        match acked {
            Ok(Ok(())) => Ok(c),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the kernel did not acknowledge the subscription (not the initial network namespace?)",
            )),
        }
    }

    /// The next datagram's events. Cancel-safe.
    pub async fn recv(&mut self) -> io::Result<Received> {
        match self.sock.recv_from_full().await {
            Ok((datagram, from)) => {
                // Only the kernel (port 0) speaks for the processes.
                if from.port_number() != 0 {
                    return Ok(Received::Events(Vec::new()));
                }
                Ok(Received::Events(decode(&datagram)))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Received::Lost),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&0u64.to_ne_bytes()); // timestamp
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        let mut m = Vec::new();
        let total = (NLMSG_HDRLEN + CN_MSG_LEN + ev.len()) as u32;
        m.extend_from_slice(&total.to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        m.extend_from_slice(&[0; 2]);
        m.extend_from_slice(&ev);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn decodes_the_events_we_use() {
        let mut d = event(PROC_EVENT_FORK, &[1, 1, 7, 7]);
        d.extend(event(PROC_EVENT_EXEC, &[7, 7]));
        d.extend(event(PROC_EVENT_COMM, &[7, 7, 0, 0, 0, 0]));
        d.extend(event(PROC_EVENT_EXIT, &[8, 7, 0, 9]));
        d.extend(event(0x40, &[1, 2, 3, 4])); // PROC_EVENT_SID: skipped
        d.extend(event(PROC_EVENT_NONE, &[1, 0]));
        assert_eq!(
            decode(&d),
            vec![
                ProcEvent::Fork {
                    parent_tgid: 1,
                    child_pid: 7,
                    child_tgid: 7
                },
                ProcEvent::Exec { pid: 7, tgid: 7 },
                ProcEvent::Comm { pid: 7, tgid: 7 },
                ProcEvent::Exit { pid: 8, tgid: 7 },
                ProcEvent::Ack { err: 1 },
            ]
        );
        // truncated anywhere: what is whole is kept, nothing panics
        for cut in 0..d.len() {
            let _ = decode(&d[..cut]);
        }
        assert_eq!(listen_message(5).len(), 40);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mangled_events_decode_without_panic(pos in 0usize..200, val in proptest::num::u8::ANY) {
            let mut d = event(PROC_EVENT_FORK, &[1, 1, 7, 7]);
            d.extend(event(PROC_EVENT_EXIT, &[7, 7, 0, 0]));
            if let Some(b) = d.get_mut(pos) {
                *b = val;
            }
            let _ = decode(&d);
        }
    }
}
