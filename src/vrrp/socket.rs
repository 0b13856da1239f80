//! Raw VRRP sockets (IP protocol 112), one per interface and address
//! family, bound to the interface so that an advert's arrival interface
//! is known. Multicast instances join 224.0.0.18 / ff02::12 on it;
//! unicast instances only send to their peers. IPv4 is sent with our own
//! header (`IP_HDRINCL`: TTL 255, TOS 0xc0, the chosen source); IPv6
//! with hop limit 255 and the source chosen per packet (`IPV6_PKTINFO`).
//! Our own multicast is not looped back.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, sendmsg, sendto,
    setsockopt, sockopt,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::packet::IPPROTO_VRRP;

/// A datagram as received: the bytes and, for IPv6 (whose raw sockets
/// deliver no IP header), the source, destination and hop limit.
#[derive(Debug, Clone, Copy)]
pub enum RxInfo {
    /// The bytes start with the IPv4 header.
    V4,
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
    },
}

pub struct VrrpSocket {
    fd: AsyncFd<OwnedFd>,
    ipv6: bool,
    ifindex: u32,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn set_raw<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the given size for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn context(what: &str, ifname: &str, e: io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => " (raw sockets need root or CAP_NET_RAW)",
        Some(libc::ENODEV) => " (the interface does not exist)",
        _ => "",
    };
    io::Error::new(e.kind(), format!("{what} on {ifname}: {e}{hint}"))
}

impl VrrpSocket {
    /// Opens a raw socket on `ifname` (index `ifindex`); joins `group` when given.
    pub fn open(ifname: &str, ifindex: u32, ipv6: bool, group: Option<IpAddr>) -> io::Result<Self> {
        let family = if ipv6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2) call; the fd is owned below.
        let raw = cvt(unsafe {
            libc::socket(
                family,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(IPPROTO_VRRP),
            )
        })
        .map_err(|e| context("cannot open a VRRP raw socket", ifname, e))?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(
            &fd,
            sockopt::BindToDevice,
            &std::ffi::OsString::from(ifname),
        )
        .map_err(|e| context("cannot bind the VRRP socket", ifname, e.into()))?;
        let idx = ifindex as libc::c_int;
        let on: libc::c_int = 1;
        let off: libc::c_int = 0;
        let hops: libc::c_int = 255;
        let r = raw;
        if ipv6 {
            set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
            set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops)?;
            set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops)?;
            set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &off)?;
            set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &on)?;
            set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &on)?;
            if let Some(IpAddr::V6(g)) = group {
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: g.octets(),
                    },
                    ipv6mr_interface: ifindex,
                };
                set_raw(r, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)
                    .map_err(|e| context(&format!("cannot join {g}"), ifname, e))?;
            }
        } else {
            set_raw(r, libc::IPPROTO_IP, libc::IP_HDRINCL, &on)?;
            set_raw(r, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &off)?;
            let mreqn = |group: Ipv4Addr| libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from(group).to_be(),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: idx,
            };
            set_raw(
                r,
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                &mreqn(Ipv4Addr::UNSPECIFIED),
            )?;
            if let Some(IpAddr::V4(g)) = group {
                set_raw(r, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreqn(g))
                    .map_err(|e| context(&format!("cannot join {g}"), ifname, e))?;
            }
        }
        // SAFETY: we own fd and never replace or close it while registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(VrrpSocket { fd, ipv6, ifindex })
    }

    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Receives one datagram into `buf`; returns its length and metadata.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, RxInfo)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| self.recv_now(fd.get_ref().as_raw_fd(), buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    fn recv_now(&self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, RxInfo)> {
        if !self.ipv6 {
            // SAFETY: buf is valid for writes of its length.
            let n = cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) } as _)?;
            return Ok((n as usize, RxInfo::V4));
        }
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
            .map_err(io::Error::from)?;
        let n = msg.bytes;
        let src = msg.address.map(|a| a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
        let (mut dst, mut hop_limit) = (Ipv6Addr::UNSPECIFIED, 0u8);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Ipv6Addr::from(info.ipi6_addr.s6_addr)
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => {
                        hop_limit = u8::try_from(h).unwrap_or(0)
                    }
                    _ => {}
                }
            }
        }
        Ok((
            n,
            RxInfo::V6 {
                src,
                dst,
                hop_limit,
            },
        ))
    }

    /// Sends a whole IPv4 packet (header included) to `dst`.
    pub fn send_v4(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = nix::sys::socket::SockaddrIn::from(SocketAddrV4::new(dst, 0));
        sendto(
            self.fd.get_ref().as_raw_fd(),
            packet,
            &addr,
            MsgFlags::empty(),
        )
        .map(|_| ())
        .map_err(io::Error::from)
    }

    /// Sends a VRRP message to `dst` from `src` (a link-local or global
    /// address of the interface).
    pub fn send_v6(&self, msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        let scope = if dst.is_unicast_link_local() || dst.is_multicast() {
            self.ifindex
        } else {
            0
        };
        let addr = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        let cmsgs = [ControlMessage::Ipv6PacketInfo(&info)];
        let iov = [io::IoSlice::new(msg)];
        sendmsg(
            self.fd.get_ref().as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::empty(),
            Some(&addr),
        )
        .map(|_| ())
        .map_err(io::Error::from)
    }
}
