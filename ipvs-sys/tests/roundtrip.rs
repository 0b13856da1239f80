//! Property tests: every message survives encode -> decode, lengths are
//! exact, and decoding arbitrary bytes never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs_sys::{
    Daemon, DaemonState, Dest, DestEntry, Direction, Family, ForwardMethod, Info, IpvsMessage,
    Netmask, Protocol, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats, Timeouts, Tunnel,
    TunnelType,
};
use netlink_packet_core::{Emitable, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use proptest::prelude::*;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Inet), Just(Family::Inet6)]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp),
        any::<u16>().prop_map(Protocol::from_raw),
    ]
}

fn key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (protocol(), ip(), any::<u16>()).prop_map(|(protocol, addr, port)| ServiceKey::Addr {
            protocol,
            addr,
            port
        }),
        (family(), any::<u32>()).prop_map(|(family, mark)| ServiceKey::Fwmark { family, mark }),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9_.-]{0,15}"
}

fn service() -> impl Strategy<Value = Service> {
    (
        key(),
        name(),
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 4]>(),
        0u8..=128,
        proptest::option::of(name()),
    )
        .prop_map(
            |(key, sched_name, flags, timeout, v4mask, prefix, pe_name)| {
                let netmask = match key.family() {
                    Family::Inet => Netmask::V4(Ipv4Addr::from(v4mask)),
                    Family::Inet6 => Netmask::V6Prefix(prefix),
                };
                Service {
                    key,
                    sched_name,
                    flags: ServiceFlags(flags),
                    timeout,
                    netmask,
                    pe_name,
                }
            },
        )
}

/// Counters as STATS can carry them (32-bit except the byte counts), or
/// as STATS64 can (all 64-bit).
fn stats(wide: bool) -> impl Strategy<Value = Stats> {
    let c = move || {
        if wide {
            any::<u64>().boxed()
        } else {
            any::<u32>().prop_map(u64::from).boxed()
        }
    };
    (
        (c(), c(), c(), any::<u64>(), any::<u64>()),
        (c(), c(), c(), c(), c()),
    )
        .prop_map(
            |((conns, inpkts, outpkts, inbytes, outbytes), (cps, inpps, outpps, inbps, outbps))| {
                Stats {
                    conns,
                    inpkts,
                    outpkts,
                    inbytes,
                    outbytes,
                    cps,
                    inpps,
                    outpps,
                    inbps,
                    outbps,
                }
            },
        )
}

fn fwd() -> impl Strategy<Value = ForwardMethod> {
    prop_oneof![
        Just(ForwardMethod::Masq),
        Just(ForwardMethod::Local),
        Just(ForwardMethod::Tunnel),
        Just(ForwardMethod::Route),
        Just(ForwardMethod::Bypass),
    ]
}

fn tunnel() -> impl Strategy<Value = Tunnel> {
    (
        prop_oneof![
            Just(TunnelType::Ipip),
            Just(TunnelType::Gue),
            Just(TunnelType::Gre)
        ],
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(kind, port, flags)| Tunnel { kind, port, flags })
}

fn dest() -> impl Strategy<Value = Dest> {
    (
        ip(),
        any::<u16>(),
        fwd(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(tunnel()),
    )
        .prop_map(
            |(addr, port, fwd, weight, u_thresh, l_thresh, tunnel)| Dest {
                addr,
                port,
                fwd,
                weight,
                u_thresh,
                l_thresh,
                tunnel,
            },
        )
}

fn dest_entry() -> impl Strategy<Value = DestEntry> {
    (
        dest(),
        any::<(u32, u32, u32)>(),
        proptest::option::of(stats(false)),
        proptest::option::of(stats(true)),
    )
        .prop_map(|(dest, (a, i, p), stats, stats64)| DestEntry {
            dest,
            active_conns: a,
            inact_conns: i,
            persist_conns: p,
            stats,
            stats64,
        })
}

fn daemon_state() -> impl Strategy<Value = DaemonState> {
    prop_oneof![Just(DaemonState::Master), Just(DaemonState::Backup)]
}

fn daemon() -> impl Strategy<Value = Daemon> {
    (
        daemon_state(),
        name(),
        any::<u32>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(ip()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(
            |(state, mcast_ifn, sync_id, sync_maxlen, mcast_group, mcast_port, mcast_ttl)| Daemon {
                state,
                mcast_ifn,
                sync_id,
                sync_maxlen,
                mcast_group,
                mcast_port,
                mcast_ttl,
            },
        )
}

fn timeouts() -> impl Strategy<Value = Timeouts> {
    proptest::option::of(any::<u32>())
        .prop_flat_map(|tcp| {
            (
                Just(tcp),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
            )
        })
        .prop_map(|(tcp, tcp_fin, udp)| Timeouts { tcp, tcp_fin, udp })
}

fn message() -> impl Strategy<Value = IpvsMessage> {
    prop_oneof![
        service().prop_map(IpvsMessage::NewService),
        service().prop_map(IpvsMessage::SetService),
        key().prop_map(IpvsMessage::DelService),
        proptest::option::of(key()).prop_map(IpvsMessage::GetService),
        (
            service(),
            proptest::option::of(stats(false)),
            proptest::option::of(stats(true))
        )
            .prop_map(|(service, stats, stats64)| IpvsMessage::ServiceReply(
                ServiceEntry {
                    service,
                    stats,
                    stats64
                }
            )),
        (key(), dest()).prop_map(|(service, dest)| IpvsMessage::NewDest { service, dest }),
        (key(), dest()).prop_map(|(service, dest)| IpvsMessage::SetDest { service, dest }),
        (key(), ip(), any::<u16>()).prop_map(|(service, addr, port)| IpvsMessage::DelDest {
            service,
            addr,
            port
        }),
        key().prop_map(IpvsMessage::GetDest),
        dest_entry().prop_map(IpvsMessage::DestReply),
        daemon().prop_map(IpvsMessage::NewDaemon),
        daemon_state().prop_map(IpvsMessage::DelDaemon),
        Just(IpvsMessage::GetDaemon),
        daemon().prop_map(IpvsMessage::DaemonReply),
        timeouts().prop_map(IpvsMessage::SetConfig),
        Just(IpvsMessage::GetConfig),
        timeouts().prop_map(IpvsMessage::ConfigReply),
        Just(IpvsMessage::GetInfo),
        any::<(u32, u32)>().prop_map(|(version, conn_tab_size)| IpvsMessage::InfoReply(Info {
            version,
            conn_tab_size
        })),
        proptest::option::of(key()).prop_map(IpvsMessage::Zero),
        Just(IpvsMessage::Flush),
    ]
}

/// Walks the top-level attributes by hand (header length, 4-byte
/// alignment) and returns the bytes they span.
fn walked_len(payload: &[u8]) -> usize {
    let mut pos = 0;
    while pos + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[pos], payload[pos + 1]]) as usize;
        assert!(len >= 4, "attribute length {len} at {pos}");
        pos += (len + 3) & !3;
    }
    pos
}

/// What `IpvsMessage::parse` (shape rules) gives back for `m`'s bytes,
/// mapped through `into_reply` where the shape cannot tell.
fn auto_expected(m: &IpvsMessage) -> bool {
    !matches!(
        m,
        IpvsMessage::DaemonReply(_)
            | IpvsMessage::ConfigReply(_)
            | IpvsMessage::ServiceReply(ServiceEntry {
                stats: None,
                stats64: None,
                ..
            })
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn roundtrip_with_direction(m in message()) {
        let bytes = m.to_payload();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        prop_assert_eq!(walked_len(&bytes), bytes.len());
        let back = IpvsMessage::parse_as(m.command(), &bytes, m.direction()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn roundtrip_by_shape(m in message()) {
        let back = IpvsMessage::parse(m.command(), &m.to_payload()).unwrap();
        if auto_expected(&m) {
            prop_assert_eq!(back, m);
        } else {
            prop_assert_eq!(back.into_reply(), m);
        }
    }

    #[test]
    fn roundtrip_through_netlink(m in message(), family_id in 16u16.., seq in any::<u32>()) {
        let mut genl = GenlMessage::from_payload(m.clone());
        genl.set_resolved_family_id(family_id);
        let mut msg = NetlinkMessage::from(genl);
        msg.header.sequence_number = seq;
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        prop_assert_eq!(buf.len(), 16 + 4 + m.buffer_len());
        prop_assert_eq!(buf[16], m.command());
        prop_assert_eq!(buf[17], 1);
        let back = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&buf).unwrap();
        prop_assert_eq!(back.header, msg.header);
        let NetlinkPayload::InnerMessage(genl) = back.payload else {
            panic!("not an inner message");
        };
        prop_assert_eq!(genl.resolved_family_id(), family_id);
        let payload = if auto_expected(&m) { genl.payload } else { genl.payload.into_reply() };
        prop_assert_eq!(payload, m);
    }

    /// The one-pass request encoder writes exactly what the netlink-packet
    /// traits serialise, appended after whatever the buffer held.
    #[test]
    fn encode_request_matches_serialize(
        m in message(),
        family_id in 16u16..,
        flags in any::<u16>(),
        seq in any::<u32>(),
        before in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut genl = GenlMessage::from_payload(m.clone());
        genl.set_resolved_family_id(family_id);
        let mut msg = NetlinkMessage::from(genl);
        msg.header.flags = flags;
        msg.header.sequence_number = seq;
        msg.finalize();
        let mut expected = vec![0; msg.buffer_len()];
        msg.serialize(&mut expected);
        let mut out = before.clone();
        m.encode_request(family_id, flags, seq, &mut out);
        prop_assert_eq!(&out[..before.len()], &before[..]);
        prop_assert_eq!(&out[before.len()..], &expected[..]);
    }

    /// Any bytes under any command: no panic, and whatever decodes
    /// re-encodes into something that decodes to the same message.
    #[test]
    fn arbitrary_bytes_never_panic(cmd in 0u8..24, bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for dir in [None, Some(Direction::Request), Some(Direction::Reply)] {
            let decoded = match dir {
                None => IpvsMessage::parse(cmd, &bytes),
                Some(d) => IpvsMessage::parse_as(cmd, &bytes, d),
            };
            if let Ok(m) = decoded {
                let again = IpvsMessage::parse_as(m.command(), &m.to_payload(), m.direction());
                prop_assert_eq!(again, Ok(m));
            }
        }
        let _ = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&bytes);
    }

    /// Mutating a valid encoding (one byte changed, or truncated) never
    /// panics either.
    #[test]
    fn mutated_messages_never_panic(m in message(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = m.to_payload();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = IpvsMessage::parse(m.command(), &bytes);
            let keep = cut.index(bytes.len());
            let _ = IpvsMessage::parse_reply(m.command(), &bytes[..keep]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Well-formed attribute trees with random types and values reach the
    /// typed decoders much more often than random bytes do.
    #[test]
    fn attribute_soup_never_panics(cmd in 0u8..20, tree in soup(2)) {
        let bytes = encode_soup(&tree);
        for dir in [Direction::Request, Direction::Reply] {
            if let Ok(m) = IpvsMessage::parse_as(cmd, &bytes, dir) {
                let again = IpvsMessage::parse_as(m.command(), &m.to_payload(), m.direction());
                prop_assert_eq!(again, Ok(m));
            }
        }
        let _ = IpvsMessage::parse(cmd, &bytes);
    }
}

/// A random attribute: a leaf of a size typical for IPVS, or a nest.
#[derive(Debug, Clone)]
enum Soup {
    Leaf(u16, Vec<u8>),
    Nest(u16, Vec<Soup>),
}

fn soup(depth: u32) -> BoxedStrategy<Vec<Soup>> {
    let leaf = (
        0u16..18,
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..=0),
            proptest::collection::vec(any::<u8>(), 1..=1),
            proptest::collection::vec(any::<u8>(), 2..=2),
            proptest::collection::vec(any::<u8>(), 4..=4),
            proptest::collection::vec(any::<u8>(), 8..=8),
            proptest::collection::vec(any::<u8>(), 16..=16),
            "[a-z]{0,20}".prop_map(|s| s.into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ],
    )
        .prop_map(|(k, v)| Soup::Leaf(k, v));
    if depth == 0 {
        proptest::collection::vec(leaf, 0..16).boxed()
    } else {
        let nest = (0u16..14, soup(depth - 1)).prop_map(|(k, v)| Soup::Nest(k, v));
        proptest::collection::vec(prop_oneof![3 => leaf, 1 => nest], 0..16).boxed()
    }
}

fn encode_soup(attrs: &[Soup]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attrs {
        let (kind, value) = match a {
            Soup::Leaf(k, v) => (*k, v.clone()),
            Soup::Nest(k, v) => (*k, encode_soup(v)),
        };
        let Ok(len) = u16::try_from(value.len() + 4) else {
            continue;
        };
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    out
}
