//! Sending the announcement frames: one `AF_PACKET`/`SOCK_RAW` socket per
//! interface, bound to it with protocol 0 so that it never receives (its
//! queue cannot fill up with the interface's ARP/IPv6 traffic); each frame
//! goes out with `sendto` naming the interface and its EtherType
//! (`ETH_P_ARP` / `ETH_P_IPV6`).
//!
//! The socket is non-blocking: a send either hands the 42/86-byte frame to
//! the device queue at once or fails with [`GarpError::QueueFull`], so
//! calling it from an async task is fine. Nothing is retried here; the
//! schedule's next round is the retry.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::frame::{ETH_P_ARP, ETH_P_IPV6, Mac, garp_frame, unsolicited_na_frame};

/// Why an announcement could not be sent; the messages are for operators.
#[derive(Debug, thiserror::Error)]
pub enum GarpError {
    #[error(
        "cannot open a packet socket for gratuitous ARP / unsolicited NA on {ifname}: \
         permission denied (ipvsdir needs root or CAP_NET_RAW)"
    )]
    NeedsCapNetRaw { ifname: String },
    #[error(
        "interface {ifname} (index {ifindex}) is gone; cannot send gratuitous ARP / unsolicited NA on it"
    )]
    InterfaceGone { ifname: String, ifindex: u32 },
    #[error("interface {ifname} is down; {what} for {vip} not sent")]
    InterfaceDown {
        ifname: String,
        what: &'static str,
        vip: IpAddr,
    },
    #[error("transmit queue of {ifname} is full; {what} for {vip} dropped")]
    QueueFull {
        ifname: String,
        what: &'static str,
        vip: IpAddr,
    },
    #[error("{op} on {ifname}: {source}{hint}")]
    Io {
        op: &'static str,
        ifname: String,
        hint: &'static str,
        #[source]
        source: io::Error,
    },
}

impl GarpError {
    /// Whether the sender is useless from now on (reopen it once the
    /// interface is back) rather than this one packet being lost.
    pub fn is_interface_gone(&self) -> bool {
        matches!(self, GarpError::InterfaceGone { .. })
    }
}

const GARP: &str = "gratuitous ARP";
const NA: &str = "unsolicited Neighbour Advert";

/// A send-only packet socket on one interface.
#[derive(Debug)]
pub struct GarpSender {
    fd: OwnedFd,
    ifindex: u32,
    ifname: String,
}

fn sockaddr_ll(ifindex: u32, protocol: u16, dst: Mac) -> Result<libc::sockaddr_ll, ()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
    sa.sll_family = libc::AF_PACKET as libc::sa_family_t;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = libc::c_int::try_from(ifindex).map_err(|_| ())?;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&dst);
    Ok(sa)
}

fn ifname_of(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

impl GarpSender {
    /// Opens the socket on interface `ifindex`.
    pub fn open(ifindex: u32) -> Result<Self, GarpError> {
        let ifname = ifname_of(ifindex).unwrap_or_else(|| format!("#{ifindex}"));
        let gone = |ifname: String| GarpError::InterfaceGone { ifname, ifindex };
        // SAFETY: plain socket(2) call; the fd is owned right below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => GarpError::NeedsCapNetRaw { ifname },
                _ => GarpError::Io {
                    op: "socket(AF_PACKET)",
                    ifname,
                    hint: "",
                    source: e,
                },
            });
        }
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = sockaddr_ll(ifindex, 0, [0; 6]).map_err(|()| gone(ifname.clone()))?;
        // SAFETY: sa is a valid sockaddr_ll of the length passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENODEV) | Some(libc::ENXIO) => gone(ifname),
                Some(libc::EPERM) | Some(libc::EACCES) => GarpError::NeedsCapNetRaw { ifname },
                _ => GarpError::Io {
                    op: "bind(AF_PACKET)",
                    ifname,
                    hint: "",
                    source: e,
                },
            });
        }
        Ok(GarpSender {
            fd,
            ifindex,
            ifname,
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's name when the sender was opened.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Whether the interface forwards IPv6 (`net.ipv6.conf.IF.forwarding`),
    /// which is when keepalived sets the Router flag in its NAs. False when
    /// it cannot be read.
    pub fn ipv6_forwarding(&self) -> bool {
        if self.ifname.contains('/') || self.ifname.starts_with('.') {
            return false;
        }
        std::fs::read_to_string(format!(
            "/proc/sys/net/ipv6/conf/{}/forwarding",
            self.ifname
        ))
        .is_ok_and(|s| s.trim() != "0")
    }

    /// Sends one gratuitous ARP for `vip` from `mac` (the interface's MAC,
    /// or the VRRP VMAC when the interface is the instance's macvlan).
    pub fn send_garp(&self, mac: Mac, vip: Ipv4Addr) -> Result<(), GarpError> {
        // Per packet at debug: the burst is logged once (log_queueing).
        tracing::debug!("Sending gratuitous ARP on {} for {}", self.ifname, vip);
        let frame = garp_frame(mac, vip);
        self.send_frame(ETH_P_ARP, [0xff; 6], &frame, GARP, IpAddr::V4(vip))
    }

    /// Sends one unsolicited Neighbour Advertisement for `vip` from `mac`
    /// with IPv6 source `src` (keepalived uses the VIP itself; the
    /// interface's link-local address is as valid). The Router flag is set
    /// when the interface forwards IPv6, as keepalived does.
    pub fn send_na(&self, mac: Mac, src: Ipv6Addr, vip: Ipv6Addr) -> Result<(), GarpError> {
        tracing::debug!(
            "Sending unsolicited Neighbour Advert on {} for {}",
            self.ifname,
            vip
        );
        let router = self.ipv6_forwarding();
        let frame = unsolicited_na_frame(mac, src, vip, router);
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[0..6]);
        self.send_frame(ETH_P_IPV6, dst, &frame, NA, IpAddr::V6(vip))
    }

    fn send_frame(
        &self,
        protocol: u16,
        dst: Mac,
        frame: &[u8],
        what: &'static str,
        vip: IpAddr,
    ) -> Result<(), GarpError> {
        let ifname = || self.ifname.clone();
        let sa =
            sockaddr_ll(self.ifindex, protocol, dst).map_err(|()| GarpError::InterfaceGone {
                ifname: ifname(),
                ifindex: self.ifindex,
            })?;
        // SAFETY: frame and sa are live for the call, lengths match.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sa as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENXIO) | Some(libc::ENODEV) => GarpError::InterfaceGone {
                    ifname: ifname(),
                    ifindex: self.ifindex,
                },
                Some(libc::ENETDOWN) => GarpError::InterfaceDown {
                    ifname: ifname(),
                    what,
                    vip,
                },
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => GarpError::QueueFull {
                    ifname: ifname(),
                    what,
                    vip,
                },
                Some(libc::EPERM) | Some(libc::EACCES) => GarpError::Io {
                    op: "sending",
                    ifname: ifname(),
                    hint: " (refused locally: a firewall rule, or CAP_NET_RAW missing)",
                    source: e,
                },
                _ => GarpError::Io {
                    op: "sending",
                    ifname: ifname(),
                    hint: "",
                    source: e,
                },
            });
        }
        if n as usize != frame.len() {
            return Err(GarpError::Io {
                op: "sending",
                ifname: ifname(),
                hint: "",
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short send: {n} of {} bytes", frame.len()),
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let e = GarpError::NeedsCapNetRaw {
            ifname: "eth0".into(),
        };
        assert!(e.to_string().contains("CAP_NET_RAW"), "{e}");
        let e = GarpError::InterfaceGone {
            ifname: "eth0".into(),
            ifindex: 3,
        };
        assert!(e.to_string().contains("eth0 (index 3) is gone"), "{e}");
        assert!(e.is_interface_gone());
        let e = GarpError::QueueFull {
            ifname: "eth0".into(),
            what: GARP,
            vip: "10.0.0.1".parse().unwrap(),
        };
        assert_eq!(
            e.to_string(),
            "transmit queue of eth0 is full; gratuitous ARP for 10.0.0.1 dropped"
        );
    }

    #[test]
    fn ifindex_out_of_range_is_gone() {
        assert!(sockaddr_ll(u32::MAX, 0, [0; 6]).is_err());
    }
}
