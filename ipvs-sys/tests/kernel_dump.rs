//! Parsing what the kernel sends back, built by hand the way
//! `ip_vs_ctl.c` builds it: `Skb` below is a small model of the kernel's
//! `genlmsg_put` / `nla_put*` / `nla_nest_start_noflag` /
//! `nla_put_u64_64bit`, independent of this crate's encoder. On
//! architectures without efficient unaligned access `nla_put_u64_64bit`
//! puts a zero-length `IPVS_STATS_ATTR_PAD` attribute before a u64 whose
//! value would not be 8-byte aligned; the model always does, so the
//! decoder sees PAD attributes.
#![cfg(target_endian = "little")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs_sys::{
    Daemon, DaemonState, Dest, DestEntry, Direction, Family, ForwardMethod, Info, IpvsMessage,
    Netmask, Protocol, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats, Timeouts, Tunnel,
    TunnelType,
};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

const FAMILY_ID: u16 = 0x1d;
const NLM_F_MULTI: u16 = 0x2;
const NLMSG_DONE: u16 = 3;
const PAD: u16 = 11;

/// A model of the kernel's socket buffer and attribute helpers.
#[derive(Default)]
struct Skb {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Skb {
    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
    fn nlmsg_start(&mut self, ty: u16, flags: u16, seq: u32) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0; 4]); // nlmsg_len, fixed by nlmsg_end
        self.buf.extend_from_slice(&ty.to_le_bytes());
        self.buf.extend_from_slice(&flags.to_le_bytes());
        self.buf.extend_from_slice(&seq.to_le_bytes());
        self.buf.extend_from_slice(&4242u32.to_le_bytes()); // portid
    }
    fn genlmsg_put(&mut self, seq: u32, cmd: u8) {
        self.nlmsg_start(FAMILY_ID, NLM_F_MULTI, seq);
        self.buf.extend_from_slice(&[cmd, 1, 0, 0]);
    }
    fn nlmsg_end(&mut self) {
        let start = self.open.pop().unwrap();
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn done(&mut self, seq: u32) {
        self.nlmsg_start(NLMSG_DONE, NLM_F_MULTI, seq);
        self.buf.extend_from_slice(&0i32.to_le_bytes());
        self.nlmsg_end();
    }
    fn put(&mut self, kind: u16, value: &[u8]) {
        self.buf
            .extend_from_slice(&((4 + value.len()) as u16).to_le_bytes());
        self.buf.extend_from_slice(&kind.to_le_bytes());
        self.buf.extend_from_slice(value);
        self.align();
    }
    fn u8(&mut self, kind: u16, v: u8) {
        self.put(kind, &[v]);
    }
    fn u16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_le_bytes());
    }
    fn be16(&mut self, kind: u16, v: u16) {
        self.put(kind, &v.to_be_bytes());
    }
    fn u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_le_bytes());
    }
    fn string(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v);
    }
    fn u64_64bit(&mut self, kind: u16, v: u64) {
        if !(self.buf.len() + 4).is_multiple_of(8) {
            self.put(PAD, &[]);
        }
        self.put(kind, &v.to_le_bytes());
    }
    fn addr(&mut self, kind: u16, a: IpAddr) {
        let mut v = [0u8; 16];
        match a {
            IpAddr::V4(a) => v[..4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => v.copy_from_slice(&a.octets()),
        }
        self.put(kind, &v);
    }
    fn nest_start(&mut self, kind: u16) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_le_bytes());
    }
    fn nest_end(&mut self) {
        let start = self.open.pop().unwrap();
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// `ip_vs_genl_fill_stats`: u32 counters, u64 bytes.
    fn fill_stats(&mut self, kind: u16, s: &Stats) {
        self.nest_start(kind);
        self.u32(1, s.conns as u32);
        self.u32(2, s.inpkts as u32);
        self.u32(3, s.outpkts as u32);
        self.u64_64bit(4, s.inbytes);
        self.u64_64bit(5, s.outbytes);
        self.u32(6, s.cps as u32);
        self.u32(7, s.inpps as u32);
        self.u32(8, s.outpps as u32);
        self.u32(9, s.inbps as u32);
        self.u32(10, s.outbps as u32);
        self.nest_end();
    }

    /// `ip_vs_genl_fill_stats64`: everything u64.
    fn fill_stats64(&mut self, kind: u16, s: &Stats) {
        self.nest_start(kind);
        for (k, v) in [
            s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes, s.cps, s.inpps, s.outpps, s.inbps,
            s.outbps,
        ]
        .into_iter()
        .enumerate()
        {
            self.u64_64bit(k as u16 + 1, v);
        }
        self.nest_end();
    }

    /// `ip_vs_genl_fill_service` in a `NEW_SERVICE` multipart message.
    fn dump_service(&mut self, e: &ServiceEntry, with_stats64: bool) {
        let s = &e.service;
        self.genlmsg_put(1, 1);
        self.nest_start(1);
        self.u16(1, s.key.family().to_raw());
        match s.key {
            ServiceKey::Fwmark { mark, .. } => self.u32(5, mark),
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                self.u16(2, protocol.to_raw());
                self.addr(3, addr);
                self.be16(4, port);
            }
        }
        self.string(6, &s.sched_name);
        if let Some(pe) = &s.pe_name {
            self.string(11, pe);
        }
        let mut flags = s.flags.0.to_le_bytes().to_vec();
        flags.extend_from_slice(&[0xff; 4]);
        self.put(7, &flags);
        self.u32(8, s.timeout);
        match s.netmask {
            Netmask::V4(m) => self.put(9, &m.octets()),
            Netmask::V6Prefix(p) => self.u32(9, p.into()),
        }
        self.fill_stats(10, e.stats.as_ref().unwrap());
        if with_stats64 {
            self.fill_stats64(12, e.stats64.as_ref().unwrap());
        }
        self.nest_end();
        self.nlmsg_end();
    }

    /// `ip_vs_genl_fill_dest` (kernels with tunnel types: TUN_* always present).
    fn dump_dest(&mut self, e: &DestEntry) {
        let d = &e.dest;
        let t = d.tunnel.unwrap_or_default();
        self.genlmsg_put(2, 5);
        self.nest_start(2);
        self.addr(1, d.addr);
        self.be16(2, d.port);
        self.u32(3, d.fwd.to_raw());
        self.u32(4, d.weight);
        self.u8(13, t.kind.to_raw());
        self.be16(14, t.port);
        self.u16(15, t.flags);
        self.u32(5, d.u_thresh);
        self.u32(6, d.l_thresh);
        self.u32(7, e.active_conns);
        self.u32(8, e.inact_conns);
        self.u32(9, e.persist_conns);
        self.u16(11, Family::of(&d.addr).to_raw());
        self.fill_stats(10, e.stats.as_ref().unwrap());
        self.fill_stats64(12, e.stats64.as_ref().unwrap());
        self.nest_end();
        self.nlmsg_end();
    }

    /// `ip_vs_genl_fill_daemon` (kernels with the multicast options).
    fn dump_daemon(&mut self, d: &Daemon) {
        self.genlmsg_put(3, 9);
        self.nest_start(3);
        self.u32(1, d.state.to_raw());
        self.string(2, &d.mcast_ifn);
        self.u32(3, d.sync_id);
        self.u16(4, d.sync_maxlen.unwrap());
        self.u16(7, d.mcast_port.unwrap());
        self.u8(8, d.mcast_ttl.unwrap());
        match d.mcast_group.unwrap() {
            IpAddr::V4(g) => self.put(5, &g.octets()),
            IpAddr::V6(g) => self.put(6, &g.octets()),
        }
        self.nest_end();
        self.nlmsg_end();
    }
}

/// Splits a receive buffer into messages and decodes each, the way a
/// client reads a dump.
fn read_all(buf: &[u8]) -> Vec<NetlinkMessage<GenlMessage<IpvsMessage>>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(rest)
            .unwrap_or_else(|e| panic!("decoding failed: {e}"));
        let len = (msg.header.length as usize + 3) & !3;
        rest = &rest[len.min(rest.len())..];
        out.push(msg);
    }
    out
}

fn inner(msg: NetlinkMessage<GenlMessage<IpvsMessage>>) -> IpvsMessage {
    assert_eq!(msg.header.message_type, FAMILY_ID);
    assert_eq!(msg.header.flags, NLM_F_MULTI);
    match msg.payload {
        NetlinkPayload::InnerMessage(genl) => {
            assert_eq!(genl.resolved_family_id(), FAMILY_ID);
            assert_eq!(genl.header.version, 1);
            genl.payload
        }
        other => panic!("not an IPVS message: {other:?}"),
    }
}

fn https_service() -> ServiceEntry {
    ServiceEntry {
        service: Service {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                addr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)),
                port: 443,
            },
            sched_name: "wlc".into(),
            flags: ServiceFlags::PERSISTENT | ServiceFlags::HASHED,
            timeout: 360,
            netmask: Netmask::V4(Ipv4Addr::BROADCAST),
            pe_name: None,
        },
        stats: Some(Stats {
            conns: 12,
            inpkts: 3400,
            outpkts: 3100,
            inbytes: 1_234_567,
            outbytes: 9_876_543_210,
            cps: 1,
            inpps: 20,
            outpps: 18,
            inbps: 2000,
            outbps: 15000,
        }),
        // The 64-bit view: conns wrapped past 2^32 shows as 12 in STATS.
        stats64: Some(Stats {
            conns: (1 << 32) + 12,
            inpkts: 3400,
            outpkts: 3100,
            inbytes: 1_234_567,
            outbytes: 9_876_543_210,
            cps: 1,
            inpps: 20,
            outpps: 18,
            inbps: 2000,
            outbps: 15000,
        }),
    }
}

#[test]
fn service_dump() {
    let https = https_service();
    let fwm6 = ServiceEntry {
        service: Service {
            key: ServiceKey::Fwmark {
                family: Family::Inet6,
                mark: 42,
            },
            sched_name: "sh".into(),
            flags: ServiceFlags::SCHED1 | ServiceFlags::HASHED,
            timeout: 0,
            netmask: Netmask::V6Prefix(128),
            pe_name: Some("sip".into()),
        },
        stats: Some(Stats::default()),
        stats64: Some(Stats::default()),
    };
    let mut skb = Skb::default();
    skb.dump_service(&https, true);
    skb.dump_service(&fwm6, true);
    skb.done(1);
    assert!(
        skb.buf.windows(4).any(|w| w == [4, 0, 11, 0]),
        "the model put PAD attributes"
    );

    let msgs = read_all(&skb.buf);
    assert_eq!(msgs.len(), 3);
    assert!(matches!(msgs[2].payload, NetlinkPayload::Done(_)));
    let mut it = msgs.into_iter();
    let first = inner(it.next().unwrap());
    assert_eq!(first, IpvsMessage::ServiceReply(https.clone()));
    assert_eq!(inner(it.next().unwrap()), IpvsMessage::ServiceReply(fwm6));

    let IpvsMessage::ServiceReply(e) = first else {
        unreachable!()
    };
    assert_eq!(e.service.flags.user(), ServiceFlags::PERSISTENT);
    assert_eq!(e.best_stats().unwrap().conns, (1 << 32) + 12);
    assert_eq!(e.stats.unwrap().conns, 12);
    assert_eq!(e.service.key.to_string(), "TCP 192.168.0.10:443");
}

#[test]
fn service_dump_from_a_kernel_without_stats64() {
    // Older kernels send no STATS64; STATS alone still marks a reply.
    let mut https = https_service();
    https.stats64 = None;
    let mut skb = Skb::default();
    skb.dump_service(&https, false);
    let msgs = read_all(&skb.buf);
    assert_eq!(
        inner(msgs.into_iter().next().unwrap()),
        IpvsMessage::ServiceReply(https)
    );
}

#[test]
fn dest_dump() {
    let stats = Stats {
        conns: 400,
        inpkts: 90_000,
        outpkts: 85_000,
        inbytes: 7_000_000,
        outbytes: 120_000_000,
        cps: 2,
        inpps: 30,
        outpps: 28,
        inbps: 4000,
        outbps: 64000,
    };
    let route = DestEntry {
        dest: Dest {
            // Reported with zero TUN_* although it does not tunnel.
            tunnel: Some(Tunnel::default()),
            ..Dest::new(
                IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
                443,
                ForwardMethod::Route,
                100,
            )
        },
        active_conns: 5,
        inact_conns: 17,
        persist_conns: 3,
        stats: Some(stats),
        stats64: Some(stats),
    };
    let gue6 = DestEntry {
        dest: Dest {
            tunnel: Some(Tunnel {
                kind: TunnelType::Gue,
                port: 5555,
                flags: Tunnel::CSUM | Tunnel::REMCSUM,
            }),
            u_thresh: 1000,
            l_thresh: 800,
            ..Dest::new(
                IpAddr::V6("2001:db8::7".parse::<Ipv6Addr>().unwrap()),
                443,
                ForwardMethod::Tunnel,
                0,
            )
        },
        active_conns: 0,
        inact_conns: 0,
        persist_conns: 0,
        stats: Some(Stats::default()),
        stats64: Some(Stats::default()),
    };
    let mut skb = Skb::default();
    skb.dump_dest(&route);
    skb.dump_dest(&gue6);
    skb.done(2);

    let msgs = read_all(&skb.buf);
    assert_eq!(msgs.len(), 3);
    let mut it = msgs.into_iter();
    let first = inner(it.next().unwrap());
    assert_eq!(first, IpvsMessage::DestReply(route));
    assert_eq!(inner(it.next().unwrap()), IpvsMessage::DestReply(gue6));

    let IpvsMessage::DestReply(e) = first else {
        unreachable!()
    };
    assert_eq!(e.dest.effective_tunnel(), None);
    assert_eq!(e.best_stats().unwrap().outbytes, 120_000_000);
}

#[test]
fn daemon_dump_config_and_info_replies() {
    let master = Daemon {
        sync_maxlen: Some(1472),
        mcast_group: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81))),
        mcast_port: Some(8848),
        mcast_ttl: Some(1),
        ..Daemon::new(DaemonState::Master, "eth0", 1)
    };
    let backup = Daemon {
        sync_maxlen: Some(1452),
        mcast_group: Some(IpAddr::V6("ff02::1:2".parse::<Ipv6Addr>().unwrap())),
        mcast_port: Some(8848),
        mcast_ttl: Some(1),
        ..Daemon::new(DaemonState::Backup, "eth1", 2)
    };
    let mut skb = Skb::default();
    skb.dump_daemon(&master);
    skb.dump_daemon(&backup);
    skb.done(3);
    let msgs = read_all(&skb.buf);
    assert_eq!(msgs.len(), 3);
    let mut it = msgs.into_iter();
    // NEW_DAEMON is read as a request by shape; into_reply says what it is.
    let m = inner(it.next().unwrap());
    assert_eq!(m, IpvsMessage::NewDaemon(master.clone()));
    assert_eq!(m.into_reply(), IpvsMessage::DaemonReply(master));
    assert_eq!(
        inner(it.next().unwrap()).into_reply(),
        IpvsMessage::DaemonReply(backup)
    );

    // The GET_CONFIG reply: cmd SET_CONFIG, the three timeouts at top level.
    let mut skb = Skb::default();
    skb.genlmsg_put(4, 12);
    skb.u32(4, 900);
    skb.u32(5, 120);
    skb.u32(6, 300);
    skb.nlmsg_end();
    let expected = Timeouts {
        tcp: Some(900),
        tcp_fin: Some(120),
        udp: Some(300),
    };
    let payload = &skb.buf[20..];
    assert_eq!(
        IpvsMessage::parse_reply(12, payload).unwrap(),
        IpvsMessage::ConfigReply(expected)
    );
    assert_eq!(
        IpvsMessage::parse_as(12, payload, Direction::Request).unwrap(),
        IpvsMessage::SetConfig(expected)
    );
    let msgs = read_all(&skb.buf);
    assert_eq!(
        inner(msgs.into_iter().next().unwrap()).into_reply(),
        IpvsMessage::ConfigReply(expected)
    );

    // The GET_INFO reply: cmd SET_INFO, INFO attributes at top level.
    let mut skb = Skb::default();
    skb.genlmsg_put(5, 14);
    skb.u32(1, 0x01_02_01);
    skb.u32(2, 4096);
    skb.nlmsg_end();
    let msgs = read_all(&skb.buf);
    let m = inner(msgs.into_iter().next().unwrap());
    let info = Info {
        version: 0x010201,
        conn_tab_size: 4096,
    };
    assert_eq!(m, IpvsMessage::InfoReply(info));
    assert_eq!(info.version_string(), "1.2.1");
}

#[test]
fn dest_reply_without_address_family_needs_a_4_byte_address() {
    // Older kernels send no ADDR_FAMILY; a 16-byte ADDR is then
    // ambiguous, and decoding says so rather than guess.
    let mut skb = Skb::default();
    skb.nest_start(2);
    skb.addr(1, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    skb.be16(2, 80);
    skb.u32(3, 0);
    skb.u32(4, 1);
    skb.u32(5, 0);
    skb.u32(6, 0);
    skb.nest_end();
    assert_eq!(
        IpvsMessage::parse(5, &skb.buf).unwrap_err().to_string(),
        "dest attribute ADDR_FAMILY missing"
    );
}

#[test]
fn unknown_attributes_are_ignored() {
    let https = https_service();
    let mut skb = Skb::default();
    skb.genlmsg_put(1, 1);
    skb.u32(200, 7); // unknown top-level attribute
    skb.nest_start(1);
    skb.u16(1, 2);
    skb.u16(2, 6);
    skb.addr(3, IpAddr::V4(Ipv4Addr::new(192, 168, 0, 10)));
    skb.be16(4, 443);
    skb.put(99, b"future attribute");
    skb.string(6, "wlc");
    skb.put(7, &[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    skb.u32(8, 360);
    skb.put(9, &[255; 4]);
    skb.nest_start(10);
    skb.put(77, &[1, 2, 3]); // unknown stats attribute
    skb.nest_end();
    skb.nest_end();
    skb.nlmsg_end();
    let msgs = read_all(&skb.buf);
    let m = inner(msgs.into_iter().next().unwrap());
    assert_eq!(
        m,
        IpvsMessage::ServiceReply(ServiceEntry {
            stats: Some(Stats::default()),
            stats64: None,
            ..https
        })
    );
}
