//! Exact bytes of IPVS requests, written by hand from the layout in
//! `include/uapi/linux/ip_vs.h` and the netlink attribute format
//! (`struct nlattr { u16 nla_len; u16 nla_type; }`, value, zero padding
//! to 4 bytes; `nla_len` counts header + value, not the padding).
//!
//! Each vector is checked both ways: our encoder must produce it, and our
//! decoder must read it back into the same message. Host-order fields are
//! written little-endian, so these tests only run on little-endian hosts.
#![cfg(target_endian = "little")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvs_sys::{
    Dest, ForwardMethod, IpvsMessage, Netmask, Protocol, Service, ServiceFlags, ServiceKey, Tunnel,
    TunnelType,
};
use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
use netlink_packet_generic::GenlMessage;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn tcp_10_0_0_1_80() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(10, 0, 0, 1),
        port: 80,
    }
}

/// Encodes, compares with `expected`, decodes `expected` as a request and
/// as a message of unknown direction, compares with `msg`.
fn check(msg: &IpvsMessage, expected: &[u8]) {
    let bytes = msg.to_payload();
    assert_eq!(
        netlink_packet_core::Emitable::buffer_len(msg),
        expected.len(),
        "buffer_len"
    );
    assert_eq!(hex(&bytes), hex(expected), "encoding of {msg:?}");
    let back = IpvsMessage::parse_request(msg.command(), expected).expect("decodes");
    assert_eq!(&back, msg);
    let back = IpvsMessage::parse(msg.command(), expected).expect("decodes");
    assert_eq!(&back, msg);
}

/// One line per 4 bytes, so a mismatch points at the attribute.
fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[rustfmt::skip]
const SERVICE_KEY_TCP_10_0_0_1_80: [u8; 44] = [
    0x06, 0x00, 0x01, 0x00,   0x02, 0x00, 0x00, 0x00,             // AF = AF_INET (u16) + pad
    0x06, 0x00, 0x02, 0x00,   0x06, 0x00, 0x00, 0x00,             // PROTOCOL = 6 (u16) + pad
    0x14, 0x00, 0x03, 0x00,   10, 0, 0, 1,   0, 0, 0, 0,          // ADDR: 16-byte nf_inet_addr
                              0, 0, 0, 0,    0, 0, 0, 0,
    0x06, 0x00, 0x04, 0x00,   0x00, 0x50, 0x00, 0x00,             // PORT = 80 (be16) + pad
];

#[test]
fn new_service_v4_tcp_wrr_persistent() {
    let msg = IpvsMessage::NewService(Service {
        key: tcp_10_0_0_1_80(),
        sched_name: "wrr".into(),
        flags: ServiceFlags::PERSISTENT,
        timeout: 300,
        netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)),
        pe_name: None,
    });
    let mut expected = vec![
        0x54, 0x00, 0x01, 0x00, // SERVICE nest, len 84
    ];
    expected.extend_from_slice(&SERVICE_KEY_TCP_10_0_0_1_80);
    #[rustfmt::skip]
    expected.extend_from_slice(&[
        0x08, 0x00, 0x06, 0x00,   b'w', b'r', b'r', 0,                // SCHED_NAME "wrr\0"
        0x0c, 0x00, 0x07, 0x00,   0x01, 0, 0, 0,   0xff, 0xff, 0xff, 0xff, // FLAGS {PERSISTENT, mask ~0}
        0x08, 0x00, 0x08, 0x00,   0x2c, 0x01, 0x00, 0x00,             // TIMEOUT = 300
        0x08, 0x00, 0x09, 0x00,   255, 255, 255, 0,                   // NETMASK: mask bytes, network order
    ]);
    check(&msg, &expected);
}

#[test]
fn new_service_v6_udp_prefix_netmask() {
    let msg = IpvsMessage::NewService(Service {
        key: ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
            port: 53,
        },
        sched_name: "rr".into(),
        flags: ServiceFlags::NONE,
        timeout: 0,
        netmask: Netmask::V6Prefix(64),
        pe_name: None,
    });
    #[rustfmt::skip]
    let expected = [
        0x54, 0x00, 0x01, 0x00,                                       // SERVICE nest, len 84
        0x06, 0x00, 0x01, 0x00,   0x0a, 0x00, 0x00, 0x00,             // AF = AF_INET6 (10)
        0x06, 0x00, 0x02, 0x00,   0x11, 0x00, 0x00, 0x00,             // PROTOCOL = 17
        0x14, 0x00, 0x03, 0x00,   0x20, 0x01, 0x0d, 0xb8,   0, 0, 0, 0,   // ADDR 2001:db8::1
                                  0, 0, 0, 0,   0, 0, 0, 1,
        0x06, 0x00, 0x04, 0x00,   0x00, 0x35, 0x00, 0x00,             // PORT = 53 (be16)
        0x07, 0x00, 0x06, 0x00,   b'r', b'r', 0, 0,                   // SCHED_NAME "rr\0" + 1 pad
        0x0c, 0x00, 0x07, 0x00,   0, 0, 0, 0,   0xff, 0xff, 0xff, 0xff, // FLAGS {0, ~0}
        0x08, 0x00, 0x08, 0x00,   0, 0, 0, 0,                         // TIMEOUT = 0
        0x08, 0x00, 0x09, 0x00,   64, 0, 0, 0,                        // NETMASK: prefix length, host u32
    ];
    check(&msg, &expected);
}

#[test]
fn new_service_fwmark_with_pe_and_sched_flags() {
    let msg = IpvsMessage::NewService(Service {
        key: ServiceKey::Fwmark {
            family: ipvs_sys::Family::Inet,
            mark: 7,
        },
        sched_name: "sh".into(),
        flags: ServiceFlags::SCHED1 | ServiceFlags::SCHED2,
        timeout: 0,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        pe_name: Some("sip".into()),
    });
    #[rustfmt::skip]
    let expected = [
        0x40, 0x00, 0x01, 0x00,                                       // SERVICE nest, len 64
        0x06, 0x00, 0x01, 0x00,   0x02, 0x00, 0x00, 0x00,             // AF = AF_INET
        0x08, 0x00, 0x05, 0x00,   0x07, 0x00, 0x00, 0x00,             // FWMARK = 7 (u32)
        0x07, 0x00, 0x06, 0x00,   b's', b'h', 0, 0,                   // SCHED_NAME "sh\0" + pad
        0x08, 0x00, 0x0b, 0x00,   b's', b'i', b'p', 0,                // PE_NAME "sip\0"
        0x0c, 0x00, 0x07, 0x00,   0x18, 0, 0, 0,   0xff, 0xff, 0xff, 0xff, // FLAGS {SCHED1|SCHED2, ~0}
        0x08, 0x00, 0x08, 0x00,   0, 0, 0, 0,                         // TIMEOUT
        0x08, 0x00, 0x09, 0x00,   255, 255, 255, 255,                 // NETMASK /32
    ];
    check(&msg, &expected);
}

#[test]
fn new_dest_masq_weight_3() {
    let msg = IpvsMessage::NewDest {
        service: tcp_10_0_0_1_80(),
        dest: Dest::new(v4(192, 168, 1, 10), 8080, ForwardMethod::Masq, 3),
    };
    let mut expected = vec![0x30, 0x00, 0x01, 0x00]; // SERVICE nest, len 48
    expected.extend_from_slice(&SERVICE_KEY_TCP_10_0_0_1_80);
    #[rustfmt::skip]
    expected.extend_from_slice(&[
        0x48, 0x00, 0x02, 0x00,                                       // DEST nest, len 72
        0x14, 0x00, 0x01, 0x00,   192, 168, 1, 10,   0, 0, 0, 0,      // ADDR
                                  0, 0, 0, 0,   0, 0, 0, 0,
        0x06, 0x00, 0x02, 0x00,   0x1f, 0x90, 0x00, 0x00,             // PORT = 8080 (be16)
        0x08, 0x00, 0x03, 0x00,   0, 0, 0, 0,                         // FWD_METHOD = MASQ
        0x08, 0x00, 0x04, 0x00,   3, 0, 0, 0,                         // WEIGHT = 3
        0x08, 0x00, 0x05, 0x00,   0, 0, 0, 0,                         // U_THRESH
        0x08, 0x00, 0x06, 0x00,   0, 0, 0, 0,                         // L_THRESH
        0x06, 0x00, 0x0b, 0x00,   0x02, 0x00, 0x00, 0x00,             // ADDR_FAMILY = AF_INET
    ]);
    check(&msg, &expected);
}

#[test]
fn new_dest_tunnel_gue_6080_csum() {
    let msg = IpvsMessage::NewDest {
        service: tcp_10_0_0_1_80(),
        dest: Dest {
            tunnel: Some(Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: Tunnel::CSUM,
            }),
            ..Dest::new(v4(192, 168, 1, 20), 80, ForwardMethod::Tunnel, 1)
        },
    };
    let mut expected = vec![0x30, 0x00, 0x01, 0x00];
    expected.extend_from_slice(&SERVICE_KEY_TCP_10_0_0_1_80);
    #[rustfmt::skip]
    expected.extend_from_slice(&[
        0x60, 0x00, 0x02, 0x00,                                       // DEST nest, len 96
        0x14, 0x00, 0x01, 0x00,   192, 168, 1, 20,   0, 0, 0, 0,      // ADDR
                                  0, 0, 0, 0,   0, 0, 0, 0,
        0x06, 0x00, 0x02, 0x00,   0x00, 0x50, 0x00, 0x00,             // PORT = 80
        0x08, 0x00, 0x03, 0x00,   2, 0, 0, 0,                         // FWD_METHOD = TUNNEL
        0x08, 0x00, 0x04, 0x00,   1, 0, 0, 0,                         // WEIGHT = 1
        0x05, 0x00, 0x0d, 0x00,   1, 0, 0, 0,                         // TUN_TYPE = GUE (u8) + 3 pad
        0x06, 0x00, 0x0e, 0x00,   0x17, 0xc0, 0x00, 0x00,             // TUN_PORT = 6080 (be16)
        0x06, 0x00, 0x0f, 0x00,   0x01, 0x00, 0x00, 0x00,             // TUN_FLAGS = CSUM (u16)
        0x08, 0x00, 0x05, 0x00,   0, 0, 0, 0,                         // U_THRESH
        0x08, 0x00, 0x06, 0x00,   0, 0, 0, 0,                         // L_THRESH
        0x06, 0x00, 0x0b, 0x00,   0x02, 0x00, 0x00, 0x00,             // ADDR_FAMILY
    ]);
    check(&msg, &expected);
}

#[test]
fn del_dest() {
    let msg = IpvsMessage::DelDest {
        service: tcp_10_0_0_1_80(),
        addr: v4(192, 168, 1, 10),
        port: 8080,
    };
    let mut expected = vec![0x30, 0x00, 0x01, 0x00];
    expected.extend_from_slice(&SERVICE_KEY_TCP_10_0_0_1_80);
    #[rustfmt::skip]
    expected.extend_from_slice(&[
        0x28, 0x00, 0x02, 0x00,                                       // DEST nest, len 40
        0x14, 0x00, 0x01, 0x00,   192, 168, 1, 10,   0, 0, 0, 0,      // ADDR
                                  0, 0, 0, 0,   0, 0, 0, 0,
        0x06, 0x00, 0x02, 0x00,   0x1f, 0x90, 0x00, 0x00,             // PORT = 8080
        0x06, 0x00, 0x0b, 0x00,   0x02, 0x00, 0x00, 0x00,             // ADDR_FAMILY
    ]);
    check(&msg, &expected);
}

#[test]
fn del_service_and_dest_dump_request_carry_only_the_key() {
    let mut expected = vec![0x30, 0x00, 0x01, 0x00];
    expected.extend_from_slice(&SERVICE_KEY_TCP_10_0_0_1_80);
    check(&IpvsMessage::DelService(tcp_10_0_0_1_80()), &expected);
    check(&IpvsMessage::GetDest(tcp_10_0_0_1_80()), &expected);
    check(&IpvsMessage::Zero(Some(tcp_10_0_0_1_80())), &expected);
}

#[test]
fn attributeless_commands_are_empty() {
    for msg in [
        IpvsMessage::GetService(None),
        IpvsMessage::GetDaemon,
        IpvsMessage::GetConfig,
        IpvsMessage::GetInfo,
        IpvsMessage::Zero(None),
        IpvsMessage::Flush,
    ] {
        check(&msg, &[]);
    }
}

#[test]
fn set_config_sends_only_given_timeouts() {
    let msg = IpvsMessage::SetConfig(ipvs_sys::Timeouts {
        tcp: Some(900),
        tcp_fin: None,
        udp: Some(300),
    });
    #[rustfmt::skip]
    let expected = [
        0x08, 0x00, 0x04, 0x00,   0x84, 0x03, 0x00, 0x00,             // TIMEOUT_TCP = 900
        0x08, 0x00, 0x06, 0x00,   0x2c, 0x01, 0x00, 0x00,             // TIMEOUT_UDP = 300
    ];
    check(&msg, &expected);
}

#[test]
fn new_daemon_and_del_daemon() {
    let msg = IpvsMessage::NewDaemon(ipvs_sys::Daemon {
        mcast_group: Some(v4(224, 0, 0, 81)),
        mcast_port: Some(8848),
        ..ipvs_sys::Daemon::new(ipvs_sys::DaemonState::Master, "eth0", 5)
    });
    #[rustfmt::skip]
    let expected = [
        0x30, 0x00, 0x03, 0x00,                                       // DAEMON nest, len 48
        0x08, 0x00, 0x01, 0x00,   1, 0, 0, 0,                         // STATE = MASTER
        0x09, 0x00, 0x02, 0x00,   b'e', b't', b'h', b'0',   0, 0, 0, 0, // MCAST_IFN "eth0\0" + pad
        0x08, 0x00, 0x03, 0x00,   5, 0, 0, 0,                         // SYNC_ID = 5
        0x06, 0x00, 0x07, 0x00,   0x90, 0x22, 0x00, 0x00,             // MCAST_PORT = 8848, host order
        0x08, 0x00, 0x05, 0x00,   224, 0, 0, 81,                      // MCAST_GROUP (in_addr)
    ];
    check(&msg, &expected);

    #[rustfmt::skip]
    let expected = [
        0x0c, 0x00, 0x03, 0x00,                                       // DAEMON nest, len 12
        0x08, 0x00, 0x01, 0x00,   2, 0, 0, 0,                         // STATE = BACKUP
    ];
    check(
        &IpvsMessage::DelDaemon(ipvs_sys::DaemonState::Backup),
        &expected,
    );
}

/// The whole datagram: nlmsghdr (len, type = resolved family id, flags,
/// seq, pid), genlmsghdr (cmd, version, reserved), attributes.
#[test]
fn full_netlink_datagram() {
    let mut genl = GenlMessage::from_payload(IpvsMessage::Flush);
    genl.set_resolved_family_id(0x23);
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = 7;
    let mut msg = NetlinkMessage::new(header, genl.into());
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    #[rustfmt::skip]
    let expected = [
        20, 0, 0, 0,          // nlmsg_len
        0x23, 0x00,           // nlmsg_type = family id
        0x05, 0x00,           // NLM_F_REQUEST | NLM_F_ACK
        7, 0, 0, 0,           // seq
        0, 0, 0, 0,           // pid
        17, 1, 0, 0,          // cmd FLUSH, version 1, reserved
    ];
    assert_eq!(buf, expected);
    let back = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&buf).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn error_messages_name_the_problem() {
    // NEW_SERVICE whose SERVICE nest has the key but no SCHED_NAME.
    let mut payload = vec![0x30, 0x00, 0x01, 0x00];
    payload.extend_from_slice(&SERVICE_KEY_TCP_10_0_0_1_80);
    let err = IpvsMessage::parse(1, &payload).unwrap_err();
    assert_eq!(err.to_string(), "service attribute SCHED_NAME missing");

    // DEL_SERVICE whose service address is 7 bytes long.
    #[rustfmt::skip]
    let payload = [
        0x28, 0x00, 0x01, 0x00,                                       // SERVICE nest, len 40
        0x06, 0x00, 0x01, 0x00,   0x02, 0x00, 0x00, 0x00,             // AF
        0x06, 0x00, 0x02, 0x00,   0x06, 0x00, 0x00, 0x00,             // PROTOCOL
        0x0b, 0x00, 0x03, 0x00,   1, 2, 3, 4,   5, 6, 7, 0,           // ADDR, 7 bytes + pad
        0x06, 0x00, 0x04, 0x00,   0x00, 0x50, 0x00, 0x00,             // PORT
    ];
    let err = IpvsMessage::parse(3, &payload).unwrap_err();
    assert_eq!(err.to_string(), "address of 7 bytes");

    // An attribute whose length runs past the buffer.
    let err = IpvsMessage::parse(3, &[0x40, 0x00, 0x01, 0x00, 0, 0]).unwrap_err();
    assert!(
        err.to_string().starts_with("malformed command attributes"),
        "{err}"
    );

    assert_eq!(
        IpvsMessage::parse(99, &[]).unwrap_err().to_string(),
        "unknown IPVS command 99"
    );
    // A u16 attribute of 3 bytes.
    let err = IpvsMessage::parse(3, &[0x0c, 0, 1, 0, 0x07, 0, 1, 0, 2, 0, 0, 0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service attribute AF: expected 2 bytes, got 3"
    );
}
