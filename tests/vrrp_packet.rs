//! The VRRP codec and receive validation against byte vectors: hand-summed
//! ones, and adverts captured from Debian's keepalived 2.2.7 (run in a
//! private network namespace on a veth pair, captured with tcpdump, which
//! also reported their checksums good). Plus round-trip and robustness
//! properties, and every drop reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipvsdir::config::model::UnicastPeer;
use ipvsdir::vrrp::packet::{
    Advert, Auth, ChecksumVariant, CodecOptions, EncodeError, MCAST_GROUP4, MCAST_GROUP6,
    PacketError, Received, RxMeta, Version, VersionFields, decode, decode_checked,
    decode_ipv4_packet, decode_ipv6, decode_peeked, encode, encode_ipv4_packet, peek_ipv4,
    v2_adver_int, v3_max_adver_int,
};
use ipvsdir::vrrp::validate::{DropKind, DropReason, InstanceView, screen, validate};
use proptest::prelude::*;

// ---------------------------------------------------------------------
// Helpers, including an independent Internet checksum (RFC 1071, the
// textbook loop: 32-bit accumulator, fold at the end).

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn rfc1071(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        sum += (u32::from(data[i]) << 8) | u32::from(data[i + 1]);
        i += 2;
    }
    if i < data.len() {
        sum += u32::from(data[i]) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The checksum field a message should carry, summed independently: the
/// message with its checksum zeroed, after the given pseudo-header bytes.
fn expected_checksum(pseudo: &[u8], msg: &[u8]) -> u16 {
    let mut buf = pseudo.to_vec();
    let mut m = msg.to_vec();
    m[6] = 0;
    m[7] = 0;
    buf.extend_from_slice(&m);
    rfc1071(&buf)
}

fn pseudo4(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[0, 112]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 112]);
    p
}

fn field_checksum(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[6], msg[7]])
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

fn opts() -> CodecOptions {
    CodecOptions::default()
}

// ---------------------------------------------------------------------
// Hand-built vectors (checksums summed on paper, see the comments).

/// v2, VRID 1, priority 100, 1 address 192.168.0.1, PASS "secret", 1 s.
/// 2101+6401+0101+c0a8+0001+7365+6372+6574+0000 = 0x282f7 -> 0x82f9 -> !0x82f9 = 0x7d06.
const HAND_V2_PASS: &str = "21016401 01017d06 c0a80001 73656372 65740000";
/// v3, VRID 7, priority 200, 100 cs, 1 address 192.168.0.254, from
/// 192.168.0.2 to 224.0.0.18. Pseudo c0a8+0002+e000+0012+0070+000c =
/// 0x1a138; message 3107+c801+0064+c0a8+00fe = 0x1bb12; total 0x35c4a ->
/// 0x5c4d -> 0xa3b2.
const HAND_V3_V4: &str = "3107c801 0064a3b2 c0a800fe";
/// v3, VRID 9, priority 100, 100 cs, 1 address fe80::9, from fe80::1 to
/// ff02::12. Pseudo fe81+ff14+0018+0070 = 0x1fe1d; message
/// 3109+6401+0064+fe80+0009 = 0x193f7; total 0x39214 -> 0x9217 -> 0x6de8.
const HAND_V3_V6: &str = "31096401 00646de8 fe800000 00000000 00000000 00000009";

#[test]
fn hand_v2_pass_vector() {
    let bytes = hex(HAND_V2_PASS);
    assert_eq!(expected_checksum(&[], &bytes), 0x7d06);
    let advert = Advert::v2(1, 100, 1, Auth::pass("secret"), vec![v4(192, 168, 0, 1)]);
    let src = v4(192, 168, 0, 2);
    let dst = IpAddr::V4(MCAST_GROUP4);
    assert_eq!(encode(&advert, src, dst, &opts()).unwrap(), bytes);
    assert_eq!(decode(&bytes, src, dst, &opts()).unwrap(), advert);
    // v2 has no pseudo-header: any endpoints verify.
    assert!(decode(&bytes, v4(1, 2, 3, 4), v4(5, 6, 7, 8), &opts()).is_ok());
}

#[test]
fn hand_v3_ipv4_vector() {
    let bytes = hex(HAND_V3_V4);
    let (src, dst) = (Ipv4Addr::new(192, 168, 0, 2), MCAST_GROUP4);
    assert_eq!(expected_checksum(&pseudo4(src, dst, 12), &bytes), 0xa3b2);
    let advert = Advert::v3(7, 200, 100, vec![v4(192, 168, 0, 254)]);
    assert_eq!(
        encode(&advert, src.into(), dst.into(), &opts()).unwrap(),
        bytes
    );
    assert_eq!(
        decode(&bytes, src.into(), dst.into(), &opts()).unwrap(),
        advert
    );
    assert_eq!(advert.interval(), Duration::from_secs(1));
    // The pseudo-header covers the addresses: another source fails.
    assert!(matches!(
        decode(&bytes, v4(192, 168, 0, 3), dst.into(), &opts()),
        Err(PacketError::Checksum {
            version: 3,
            received: 0xa3b2,
            ..
        })
    ));
}

#[test]
fn hand_v3_ipv6_vector() {
    let bytes = hex(HAND_V3_V6);
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    assert_eq!(
        expected_checksum(&pseudo6(src, MCAST_GROUP6, 24), &bytes),
        0x6de8
    );
    let advert = Advert::v3(9, 100, 100, vec![v6("fe80::9")]);
    assert_eq!(
        encode(&advert, src.into(), MCAST_GROUP6.into(), &opts()).unwrap(),
        bytes
    );
    let rx = decode_ipv6(&bytes, src, MCAST_GROUP6, 255, &opts()).unwrap();
    assert_eq!(rx.advert, advert);
    assert_eq!(rx.meta.ttl, 255);
    assert_eq!(rx.checksum, ChecksumVariant::Standard);
}

// ---------------------------------------------------------------------
// Captured from keepalived 2.2.7 (Debian bookworm) in a netns: whole IPv4
// packets as a raw socket receives them, IPv6 payloads (the kernel
// computed those checksums through IPV6_CHECKSUM).

/// VRRPv2, VRID 51, prio 150, PASS "1111", 1 s, 10.9.0.100 and .101.
const KA_V2_PASS: &str = "45c0002c00010000ff70d0840a090001e0000012\
                          213396020101d08b0a0900640a0900653131313100000000";
/// The same instance stopping: priority 0.
const KA_V2_PASS_PRIO0: &str = "45c0002c00060000ff70d07f0a090001e0000012\
                                213300020101668c0a0900640a0900653131313100000000";
/// VRRPv3 multicast, VRID 52, prio 120, 150 cs, 10.9.0.110.
const KA_V3_V4: &str = "45c0002000010000ff70d0900a090001e0000012\
                        31347801009661240a09006e";
/// VRRPv3 unicast to 10.9.0.2, VRID 54, prio 110, 100 cs, 10.9.0.120.
const KA_V3_V4_UNICAST: &str = "45c0002000010000ff70a6980a0900010a090002\
                                31366e01006441520a090078";
/// VRRPv3 unicast with `old_unicast_checksum`: VRID 55, prio 130, 200 cs,
/// 10.9.0.130-132 (tcpdump calls its checksum bad: the pseudo-header has
/// 224.0.0.18 where the packet has 10.9.0.2).
const KA_V3_V4_OLD_UNICAST: &str = "45c0002800010000ff70a6900a0900010a090002\
                                    3137820300c841b80a0900820a0900830a090084";
/// VRRPv3 over IPv6, VRID 53, prio 200, 100 cs, fe80::53 and fd00:9::53,
/// from fe80::b83e:64ff:feee:dc4c to ff02::12, hop limit 255.
const KA_V3_V6: &str = "3135c8020064138bfe800000000000000000000000000053\
                        fd000009000000000000000000000053";
const KA_V3_V6_PRIO0: &str = "313500020064db8bfe800000000000000000000000000053\
                              fd000009000000000000000000000053";
const KA_V6_SRC: &str = "fe80::b83e:64ff:feee:dc4c";

fn ka_src() -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 0, 1)
}

#[test]
fn keepalived_v2_pass_decodes_and_reencodes() {
    for (pkt, prio) in [(KA_V2_PASS, 150), (KA_V2_PASS_PRIO0, 0)] {
        let pkt = hex(pkt);
        let rx = decode_ipv4_packet(&pkt, &opts()).unwrap();
        let want = Advert::v2(
            51,
            prio,
            1,
            Auth::pass("1111"),
            vec![v4(10, 9, 0, 100), v4(10, 9, 0, 101)],
        );
        assert_eq!(rx.advert, want);
        assert_eq!(
            rx.meta,
            RxMeta {
                src: ka_src().into(),
                dst: MCAST_GROUP4.into(),
                ttl: 255
            }
        );
        // Independent checksum of the captured payload agrees.
        assert_eq!(
            expected_checksum(&[], &pkt[20..]),
            field_checksum(&pkt[20..])
        );
        let again = encode(&want, ka_src().into(), MCAST_GROUP4.into(), &opts()).unwrap();
        assert_eq!(again, pkt[20..]);
        // The whole packet too, but for keepalived's IP ID and header checksum.
        let mut whole = encode_ipv4_packet(&want, ka_src(), MCAST_GROUP4, 255, &opts()).unwrap();
        whole[4..6].copy_from_slice(&pkt[4..6]);
        whole[10..12].copy_from_slice(&pkt[10..12]);
        assert_eq!(whole, pkt);
    }
}

#[test]
fn keepalived_v3_ipv4_multicast_and_unicast() {
    let cases = [
        (
            KA_V3_V4,
            Advert::v3(52, 120, 150, vec![v4(10, 9, 0, 110)]),
            MCAST_GROUP4,
        ),
        (
            KA_V3_V4_UNICAST,
            Advert::v3(54, 110, 100, vec![v4(10, 9, 0, 120)]),
            Ipv4Addr::new(10, 9, 0, 2),
        ),
    ];
    for (pkt, want, dst) in cases {
        let pkt = hex(pkt);
        let rx = decode_ipv4_packet(&pkt, &opts()).unwrap();
        assert_eq!(rx.advert, want);
        assert_eq!(rx.meta.dst, IpAddr::V4(dst));
        assert_eq!(rx.meta.ttl, 255);
        assert_eq!(rx.checksum, ChecksumVariant::Standard);
        let msg = &pkt[20..];
        assert_eq!(
            expected_checksum(&pseudo4(ka_src(), dst, msg.len()), msg),
            field_checksum(msg)
        );
        assert_eq!(
            encode(&want, ka_src().into(), dst.into(), &opts()).unwrap(),
            msg
        );
        // Not the v2-style sum: keepalived 2.2.7 includes the pseudo-header.
        assert_ne!(expected_checksum(&[], msg), field_checksum(msg));
        let as_v2 = CodecOptions::v3_checksum_as_v2();
        assert!(matches!(
            decode_ipv4_packet(&pkt, &as_v2),
            Err(PacketError::Checksum { .. })
        ));
    }
}

#[test]
fn keepalived_old_unicast_checksum() {
    let pkt = hex(KA_V3_V4_OLD_UNICAST);
    let want = Advert::v3(
        55,
        130,
        200,
        vec![v4(10, 9, 0, 130), v4(10, 9, 0, 131), v4(10, 9, 0, 132)],
    );
    // Refused by default, as tcpdump does.
    assert!(matches!(
        decode_ipv4_packet(&pkt, &opts()),
        Err(PacketError::Checksum { .. })
    ));
    // Accepted when asked, and reported as such.
    let accept = CodecOptions {
        accept_old_unicast: Some(MCAST_GROUP4),
        ..opts()
    };
    let rx = decode_ipv4_packet(&pkt, &accept).unwrap();
    assert_eq!(rx.advert, want);
    assert_eq!(
        rx.checksum,
        ChecksumVariant::OldUnicast {
            group: MCAST_GROUP4
        }
    );
    // And reproduced when sending in that mode.
    let old = CodecOptions {
        v3_checksum: ChecksumVariant::OldUnicast {
            group: MCAST_GROUP4,
        },
        ..opts()
    };
    let dst = Ipv4Addr::new(10, 9, 0, 2);
    assert_eq!(
        encode(&want, ka_src().into(), dst.into(), &old).unwrap(),
        pkt[20..]
    );
    assert_eq!(
        expected_checksum(&pseudo4(ka_src(), MCAST_GROUP4, 20), &pkt[20..]),
        field_checksum(&pkt[20..])
    );
}

#[test]
fn keepalived_v3_ipv6() {
    let src: Ipv6Addr = KA_V6_SRC.parse().unwrap();
    for (payload, prio) in [(KA_V3_V6, 200), (KA_V3_V6_PRIO0, 0)] {
        let payload = hex(payload);
        let want = Advert::v3(53, prio, 100, vec![v6("fe80::53"), v6("fd00:9::53")]);
        let rx = decode_ipv6(&payload, src, MCAST_GROUP6, 255, &opts()).unwrap();
        assert_eq!(rx.advert, want);
        assert_eq!(
            expected_checksum(&pseudo6(src, MCAST_GROUP6, payload.len()), &payload),
            field_checksum(&payload)
        );
        assert_eq!(
            encode(&want, src.into(), MCAST_GROUP6.into(), &opts()).unwrap(),
            payload
        );
        // The v3 IPv4 options never change IPv6.
        let as_v2 = CodecOptions::v3_checksum_as_v2();
        assert!(decode_ipv6(&payload, src, MCAST_GROUP6, 255, &as_v2).is_ok());
    }
}

// ---------------------------------------------------------------------
// Checksum variants

#[test]
fn v3_checksum_as_v2_round_trip_and_acceptance() {
    let advert = Advert::v3(52, 120, 150, vec![v4(10, 9, 0, 110)]);
    let (src, dst) = (ka_src().into(), MCAST_GROUP4.into());
    let as_v2 = CodecOptions::v3_checksum_as_v2();
    let msg = encode(&advert, src, dst, &as_v2).unwrap();
    assert_eq!(expected_checksum(&[], &msg), field_checksum(&msg));
    assert_eq!(
        decode_checked(&msg, src, dst, &as_v2).unwrap(),
        (advert.clone(), ChecksumVariant::AsV2)
    );
    // Strict RFC 5798 receiver refuses it...
    assert!(matches!(
        decode(&msg, src, dst, &opts()),
        Err(PacketError::Checksum { .. })
    ));
    // ...unless it also accepts the v2-style sum, and says which matched.
    let lenient = CodecOptions {
        accept_v3_as_v2: true,
        ..opts()
    };
    assert_eq!(
        decode_checked(&msg, src, dst, &lenient).unwrap().1,
        ChecksumVariant::AsV2
    );
    let std_msg = encode(&advert, src, dst, &opts()).unwrap();
    assert_eq!(
        decode_checked(&std_msg, src, dst, &lenient).unwrap().1,
        ChecksumVariant::Standard
    );
    // An as-v2 receiver refuses the standard sum unless told otherwise.
    assert!(decode(&std_msg, src, dst, &as_v2).is_err());
}

#[test]
fn checksum_error_reports_received_and_computed() {
    let mut msg = hex(HAND_V3_V4);
    msg[7] ^= 0x01;
    let e = decode(&msg, v4(192, 168, 0, 2), MCAST_GROUP4.into(), &opts()).unwrap_err();
    assert_eq!(
        e,
        PacketError::Checksum {
            version: 3,
            received: 0xa3b3,
            computed: 0xa3b2
        }
    );
    assert_eq!(
        e.to_string(),
        "Invalid VRRPv3 checksum (received 0xa3b3, computed 0xa3b2)"
    );
}

// ---------------------------------------------------------------------
// Decode errors

fn v2_msg() -> Vec<u8> {
    hex(HAND_V2_PASS)
}

/// Rewrite the checksum of a v2 message so that later checks are reached.
fn fix_v2(mut m: Vec<u8>) -> Vec<u8> {
    let c = expected_checksum(&[], &m);
    m[6..8].copy_from_slice(&c.to_be_bytes());
    m
}

fn dec4(m: &[u8]) -> Result<Advert, PacketError> {
    decode(m, v4(192, 168, 0, 2), MCAST_GROUP4.into(), &opts())
}

#[test]
fn decode_errors() {
    assert_eq!(
        dec4(&[0x21, 1, 2]),
        Err(PacketError::Truncated { len: 3, min: 8 })
    );
    let mut m = v2_msg();
    m[0] = 0x41;
    assert_eq!(dec4(&m), Err(PacketError::UnknownVersion(4)));
    m[0] = 0x22;
    assert_eq!(dec4(&m), Err(PacketError::NotAdvertisement(2)));

    let m = v2_msg();
    let long = [m.clone(), vec![0, 0, 0, 0]].concat();
    let e = dec4(&long).unwrap_err();
    assert_eq!(
        e,
        PacketError::Length {
            len: 24,
            expected: 20,
            naddrs: 1
        }
    );
    assert!(e.to_string().starts_with("vrrp packet too long"));
    let e = dec4(&m[..16]).unwrap_err();
    assert!(e.to_string().starts_with("vrrp packet too short"), "{e}");

    // Address count says 2, only one present.
    let mut m = v2_msg();
    m[3] = 2;
    assert!(matches!(
        dec4(&m),
        Err(PacketError::Length { naddrs: 2, .. })
    ));

    // Auth types: 2 is AH, 3+ unknown; both only after a good checksum.
    let mut m = v2_msg();
    m[4] = 2;
    assert_eq!(dec4(&fix_v2(m.clone())), Err(PacketError::AhUnsupported));
    assert_eq!(
        PacketError::AhUnsupported.to_string(),
        "AH authentication is not supported"
    );
    m[4] = 7;
    assert_eq!(dec4(&fix_v2(m)), Err(PacketError::InvalidAuthType(7)));

    // v2 over IPv6, and mixed families.
    let m = v2_msg();
    assert_eq!(
        decode(&m, v6("fe80::1"), MCAST_GROUP6.into(), &opts()),
        Err(PacketError::V2OverIpv6)
    );
    assert!(matches!(
        decode(&m, v4(10, 0, 0, 1), MCAST_GROUP6.into(), &opts()),
        Err(PacketError::EndpointFamilies { .. })
    ));
    // The same bytes as an IPv6 v3 message: the length no longer fits.
    let m = hex(HAND_V3_V4);
    assert!(matches!(
        decode(&m, v6("fe80::1"), MCAST_GROUP6.into(), &opts()),
        Err(PacketError::Length { expected: 24, .. })
    ));
}

#[test]
fn v3_reserved_bits_are_ignored() {
    let advert = Advert::v3(7, 200, 100, vec![v4(192, 168, 0, 254)]);
    let (src, dst) = (v4(192, 168, 0, 2), IpAddr::V4(MCAST_GROUP4));
    let mut m = encode(&advert, src, dst, &opts()).unwrap();
    m[4] |= 0xf0;
    let pseudo = pseudo4(Ipv4Addr::new(192, 168, 0, 2), MCAST_GROUP4, m.len());
    let c = expected_checksum(&pseudo, &m);
    m[6..8].copy_from_slice(&c.to_be_bytes());
    assert_eq!(decode(&m, src, dst, &opts()).unwrap(), advert);
}

#[test]
fn ipv4_packet_errors() {
    let pkt = hex(KA_V3_V4);
    assert!(matches!(
        decode_ipv4_packet(&pkt[..10], &opts()),
        Err(PacketError::Truncated { .. })
    ));
    let mut p = pkt.clone();
    p[0] = 0x65;
    assert_eq!(
        decode_ipv4_packet(&p, &opts()),
        Err(PacketError::Ipv4Header("IP version is not 4"))
    );
    p[0] = 0x44;
    assert!(matches!(
        decode_ipv4_packet(&p, &opts()),
        Err(PacketError::Ipv4Header(_))
    ));
    p[0] = 0x4f; // 60-byte header in a 32-byte packet
    assert!(matches!(
        decode_ipv4_packet(&p, &opts()),
        Err(PacketError::Ipv4Header(_))
    ));
    let mut p = pkt.clone();
    p.push(0);
    assert_eq!(
        decode_ipv4_packet(&p, &opts()),
        Err(PacketError::Ipv4Length {
            total_len: 32,
            received: 33
        })
    );
    let mut p = pkt.clone();
    p[9] = 51;
    assert_eq!(
        decode_ipv4_packet(&p, &opts()),
        Err(PacketError::AhUnsupported)
    );
    p[9] = 17;
    assert_eq!(
        decode_ipv4_packet(&p, &opts()),
        Err(PacketError::NotVrrp(17))
    );
    // IP options are skipped (here a 4-byte NOP/EOL option).
    let mut p = pkt[..20].to_vec();
    p[0] = 0x46;
    p[2..4].copy_from_slice(&36u16.to_be_bytes());
    p.extend_from_slice(&[1, 1, 1, 0]);
    p.extend_from_slice(&pkt[20..]);
    assert!(decode_ipv4_packet(&p, &opts()).is_ok());
    // TTL comes through.
    let mut p = pkt;
    p[8] = 64;
    assert_eq!(decode_ipv4_packet(&p, &opts()).unwrap().meta.ttl, 64);
}

#[test]
fn encode_errors() {
    let (s4, d4) = (v4(10, 0, 0, 1), IpAddr::V4(MCAST_GROUP4));
    let (s6, d6) = (v6("fe80::1"), IpAddr::V6(MCAST_GROUP6));
    let a = Advert::v3(1, 100, 100, vec![v6("fe80::9")]);
    assert_eq!(
        encode(&a, s4, d4, &opts()),
        Err(EncodeError::AddressFamily(v6("fe80::9")))
    );
    assert!(matches!(
        encode(&a, s4, d6, &opts()),
        Err(EncodeError::EndpointFamilies { .. })
    ));
    let a = Advert::v2(1, 100, 1, Auth::None, vec![]);
    assert_eq!(encode(&a, s6, d6, &opts()), Err(EncodeError::V2OverIpv6));
    let a = Advert::v3(1, 100, 4096, vec![]);
    assert_eq!(
        encode(&a, s4, d4, &opts()),
        Err(EncodeError::IntervalOutOfRange(4096))
    );
    let many = (0..256u32).map(|i| IpAddr::V4(Ipv4Addr::from(i))).collect();
    let a = Advert::v3(1, 100, 100, many);
    assert_eq!(
        encode(&a, s4, d4, &opts()),
        Err(EncodeError::TooManyAddresses(256))
    );
    // 255 addresses is the most, and fine (also over IPv6: 4088 bytes).
    let many: Vec<IpAddr> = (0..255u32)
        .map(|i| IpAddr::V6(Ipv6Addr::from(u128::from(i))))
        .collect();
    let a = Advert::v3(1, 100, 100, many);
    let m = encode(&a, s6, d6, &opts()).unwrap();
    assert_eq!(m.len(), 8 + 255 * 16);
    assert_eq!(decode(&m, s6, d6, &opts()).unwrap(), a);
}

#[test]
fn intervals_and_passwords() {
    assert_eq!(v2_adver_int(Duration::from_secs(1)), Some(1));
    assert_eq!(v2_adver_int(Duration::from_millis(1500)), Some(1));
    assert_eq!(v2_adver_int(Duration::from_millis(500)), None);
    assert_eq!(v2_adver_int(Duration::from_secs(256)), None);
    assert_eq!(v3_max_adver_int(Duration::from_millis(1500)), Some(150));
    assert_eq!(v3_max_adver_int(Duration::from_millis(10)), Some(1));
    assert_eq!(v3_max_adver_int(Duration::from_millis(5)), None);
    assert_eq!(v3_max_adver_int(Duration::from_millis(40950)), Some(4095));
    assert_eq!(v3_max_adver_int(Duration::from_secs(41)), None);
    assert_eq!(Auth::pass("1111"), Auth::Pass(*b"1111\0\0\0\0"));
    assert_eq!(Auth::pass("0123456789"), Auth::Pass(*b"01234567"));
    assert_eq!(Auth::pass(""), Auth::Pass([0; 8]));
    assert_eq!(format!("{:?}", Auth::pass("secret")), "Pass(..)");
    assert_eq!(
        Advert::v2(1, 1, 3, Auth::None, vec![]).interval(),
        Duration::from_secs(3)
    );
}

// ---------------------------------------------------------------------
// Validation

const VIPS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(10, 9, 0, 100)),
    IpAddr::V4(Ipv4Addr::new(10, 9, 0, 101)),
];

fn view_v2() -> InstanceView<'static> {
    InstanceView {
        version: Version::V2,
        vrid: 51,
        auth: Auth::pass("1111"),
        vips: &VIPS,
        advert_int: Duration::from_secs(1),
        unicast_peers: &[],
        check_unicast_src: false,
        skip_check_adv_addr: false,
        current_master: None,
    }
}

fn rx_v2() -> Received {
    decode_ipv4_packet(&hex(KA_V2_PASS), &opts()).unwrap()
}

fn check(rx: &Received, view: &InstanceView<'_>) -> Result<(), DropReason> {
    validate(&rx.advert, &rx.meta, view)
}

#[test]
fn valid_adverts_pass() {
    assert_eq!(check(&rx_v2(), &view_v2()), Ok(()));
    // Priority 0 is the master leaving: valid.
    let rx0 = decode_ipv4_packet(&hex(KA_V2_PASS_PRIO0), &opts()).unwrap();
    assert_eq!(check(&rx0, &view_v2()), Ok(()));
    // The VIP list may come in any order.
    let vips = [VIPS[1], VIPS[0]];
    let view = InstanceView {
        vips: &vips,
        ..view_v2()
    };
    assert_eq!(check(&rx_v2(), &view), Ok(()));
    // A v3 advert with another interval is accepted (the backup adopts it).
    let rx = decode_ipv4_packet(&hex(KA_V3_V4), &opts()).unwrap();
    let vip = [v4(10, 9, 0, 110)];
    let view = InstanceView {
        version: Version::V3,
        vrid: 52,
        auth: Auth::None,
        vips: &vip,
        advert_int: Duration::from_secs(5),
        ..view_v2()
    };
    assert_eq!(check(&rx, &view), Ok(()));
    // v3 over IPv6.
    let src: Ipv6Addr = KA_V6_SRC.parse().unwrap();
    let rx = decode_ipv6(&hex(KA_V3_V6), src, MCAST_GROUP6, 255, &opts()).unwrap();
    let vips6 = [v6("fd00:9::53"), v6("fe80::53")];
    let view = InstanceView {
        version: Version::V3,
        vrid: 53,
        auth: Auth::None,
        vips: &vips6,
        ..view_v2()
    };
    assert_eq!(check(&rx, &view), Ok(()));
}

/// Every drop reason, its kind and its operator text.
#[test]
fn every_drop_reason() {
    let base = view_v2();
    let rx = rx_v2();
    let mut cases: Vec<(Result<(), DropReason>, DropKind, &str)> = Vec::new();

    let view = InstanceView { vrid: 52, ..base };
    cases.push((
        check(&rx, &view),
        DropKind::NotOurVrid,
        "received VRID mismatch. Received 51, Expected 52",
    ));

    let view = InstanceView {
        version: Version::V3,
        ..base
    };
    cases.push((
        check(&rx, &view),
        DropKind::Version,
        "wrong version. Received 2 and expect 3",
    ));

    let mut r = rx.clone();
    r.meta.dst = v4(10, 9, 0, 2);
    cases.push((
        check(&r, &base),
        DropKind::Source,
        "Expected multicast packet but received unicast packet (to 10.9.0.2)",
    ));

    let mut r = rx.clone();
    r.meta.ttl = 254;
    cases.push((
        check(&r, &base),
        DropKind::Ttl,
        "invalid TTL/HL. Received 254 and expect 255",
    ));

    let peers = [UnicastPeer {
        addr: v4(10, 9, 0, 7),
        min_ttl: Some(250),
        max_ttl: None,
    }];
    let uview = InstanceView {
        unicast_peers: &peers,
        ..base
    };
    cases.push((
        check(&rx, &uview),
        DropKind::Source,
        "Expected unicast packet but received multicast packet (to 224.0.0.18)",
    ));

    let mut ur = rx.clone();
    ur.meta.dst = v4(10, 9, 0, 2);
    let strict = InstanceView {
        check_unicast_src: true,
        ..uview
    };
    cases.push((
        check(&ur, &strict),
        DropKind::Source,
        "unicast source address 10.9.0.1 not a unicast peer",
    ));

    let mut r = ur.clone();
    r.meta.src = v4(10, 9, 0, 7);
    r.meta.ttl = 249;
    cases.push((
        check(&r, &uview),
        DropKind::Ttl,
        "TTL/HL 249 not in range 250 - 255",
    ));

    let view = InstanceView {
        auth: Auth::None,
        ..base
    };
    cases.push((
        check(&rx, &view),
        DropKind::AuthTypeMismatch,
        "received a PASS auth, expecting no auth",
    ));

    let view = InstanceView {
        auth: Auth::pass("2222"),
        ..base
    };
    cases.push((
        check(&rx, &view),
        DropKind::AuthFailure,
        "received an invalid passwd",
    ));

    let view = InstanceView {
        advert_int: Duration::from_secs(3),
        ..base
    };
    cases.push((
        check(&rx, &view),
        DropKind::Interval,
        "advertisement interval mismatch mine=3 sec rcv'd=1 sec",
    ));

    let one = [VIPS[0]];
    let view = InstanceView { vips: &one, ..base };
    cases.push((
        check(&rx, &view),
        DropKind::AddressList,
        "received an invalid ip count 2, expected 1",
    ));

    let other = [VIPS[0], v4(10, 9, 0, 99)];
    let view = InstanceView {
        vips: &other,
        ..base
    };
    cases.push((
        check(&rx, &view),
        DropKind::AddressList,
        "ip address associated with VRID 51 not present in MASTER advert : 10.9.0.99",
    ));

    let bad: DropReason = PacketError::Checksum {
        version: 2,
        received: 1,
        computed: 2,
    }
    .into();
    cases.push((
        Err(bad),
        DropKind::Checksum,
        "Invalid VRRPv2 checksum (received 0x0001, computed 0x0002)",
    ));
    cases.push((
        Err(PacketError::AhUnsupported.into()),
        DropKind::InvalidAuthType,
        "AH authentication is not supported",
    ));
    cases.push((
        Err(PacketError::NotAdvertisement(2).into()),
        DropKind::InvalidType,
        "Invalid packet type. 2 and expect 1",
    ));

    for (got, kind, text) in cases {
        let e = got.expect_err(text);
        assert_eq!(e.kind(), kind, "{text}");
        assert_eq!(e.to_string(), text);
        assert_eq!(e.is_quiet(), kind == DropKind::NotOurVrid);
        assert!(!e.kind().as_str().is_empty());
    }
}

#[test]
fn unicast_rules() {
    let peers = [
        UnicastPeer {
            addr: v4(10, 9, 0, 1),
            min_ttl: Some(250),
            max_ttl: Some(254),
        },
        UnicastPeer {
            addr: v4(10, 9, 0, 3),
            min_ttl: None,
            max_ttl: None,
        },
    ];
    let view = InstanceView {
        unicast_peers: &peers,
        ..view_v2()
    };
    let mut rx = rx_v2();
    rx.meta.dst = v4(10, 9, 0, 2);
    // A unicast TTL need not be 255, only within the peer's bounds.
    rx.meta.ttl = 252;
    assert_eq!(check(&rx, &view), Ok(()));
    rx.meta.ttl = 255;
    assert!(matches!(
        check(&rx, &view),
        Err(DropReason::PeerTtlOutOfRange {
            ttl: 255,
            min: 250,
            max: 254
        })
    ));
    // Unknown sources pass unless check_unicast_src.
    rx.meta.src = v4(10, 9, 0, 200);
    assert_eq!(check(&rx, &view), Ok(()));
    let strict = InstanceView {
        check_unicast_src: true,
        ..view
    };
    assert!(matches!(
        check(&rx, &strict),
        Err(DropReason::UnknownUnicastSource { .. })
    ));
    // Default bounds are 0..=255.
    rx.meta.src = v4(10, 9, 0, 3);
    rx.meta.ttl = 1;
    assert_eq!(check(&rx, &strict), Ok(()));
}

#[test]
fn skip_check_adv_addr_only_for_the_current_master() {
    let one = [VIPS[0]];
    let view = InstanceView {
        vips: &one,
        skip_check_adv_addr: true,
        ..view_v2()
    };
    let rx = rx_v2();
    // Not yet following a master: checked.
    assert!(matches!(
        check(&rx, &view),
        Err(DropReason::AddressCount { .. })
    ));
    // From the master already followed: skipped.
    let following = InstanceView {
        current_master: Some(rx.meta.src),
        ..view
    };
    assert_eq!(check(&rx, &following), Ok(()));
    // From someone else: checked again.
    let other = InstanceView {
        current_master: Some(v4(10, 9, 0, 9)),
        ..view
    };
    assert!(check(&rx, &other).is_err());
}

#[test]
fn passwords_compare_all_eight_bytes() {
    // keepalived pads "1111" to 8 bytes with zeros: a peer that pads with
    // anything else does not match, and 9+ characters are truncated.
    let mut rx = rx_v2();
    rx.advert.fields = VersionFields::V2 {
        adver_int: 1,
        auth: Auth::Pass(*b"1111    "),
    };
    assert_eq!(check(&rx, &view_v2()), Err(DropReason::AuthFailure));
    rx.advert.fields = VersionFields::V2 {
        adver_int: 1,
        auth: Auth::pass("11112222"),
    };
    let view = InstanceView {
        auth: Auth::pass("111122223333"),
        ..view_v2()
    };
    assert_eq!(check(&rx, &view), Ok(()));
}

// ---------------------------------------------------------------------
// Properties

fn arb_auth() -> impl Strategy<Value = Auth> {
    prop_oneof![Just(Auth::None), any::<[u8; 8]>().prop_map(Auth::Pass)]
}

fn arb_v4() -> impl Strategy<Value = IpAddr> {
    any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

fn arb_v6() -> impl Strategy<Value = IpAddr> {
    any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

/// (advert, src, dst) with consistent families.
fn arb_case() -> impl Strategy<Value = (Advert, IpAddr, IpAddr)> {
    let v2 = (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        arb_auth(),
        prop::collection::vec(arb_v4(), 0..20),
        arb_v4(),
        arb_v4(),
    )
        .prop_map(|(vrid, prio, int, auth, addrs, s, d)| {
            (Advert::v2(vrid, prio, int, auth, addrs), s, d)
        });
    let v3_4 = (
        any::<u8>(),
        any::<u8>(),
        0..=0x0fffu16,
        prop::collection::vec(arb_v4(), 0..20),
        arb_v4(),
        arb_v4(),
    )
        .prop_map(|(vrid, prio, int, addrs, s, d)| (Advert::v3(vrid, prio, int, addrs), s, d));
    let v3_6 = (
        any::<u8>(),
        any::<u8>(),
        0..=0x0fffu16,
        prop::collection::vec(arb_v6(), 0..20),
        arb_v6(),
        arb_v6(),
    )
        .prop_map(|(vrid, prio, int, addrs, s, d)| (Advert::v3(vrid, prio, int, addrs), s, d));
    prop_oneof![v2, v3_4, v3_6]
}

fn arb_variant() -> impl Strategy<Value = ChecksumVariant> {
    prop_oneof![
        Just(ChecksumVariant::Standard),
        Just(ChecksumVariant::AsV2),
        any::<u32>().prop_map(|g| ChecksumVariant::OldUnicast {
            group: Ipv4Addr::from(g)
        }),
    ]
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![arb_v4(), arb_v6()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn round_trip((advert, src, dst) in arb_case(), variant in arb_variant()) {
        let o = CodecOptions { v3_checksum: variant, ..CodecOptions::default() };
        let msg = encode(&advert, src, dst, &o).unwrap();
        prop_assert_eq!(msg.len(), advert.message_len(src.is_ipv6()));
        let (back, got) = decode_checked(&msg, src, dst, &o).unwrap();
        prop_assert_eq!(&back, &advert);
        let expect = if advert.version() == Version::V2 || src.is_ipv6() {
            ChecksumVariant::Standard
        } else {
            variant
        };
        prop_assert_eq!(got, expect);
        // The independent sum agrees for the standard variant.
        if variant == ChecksumVariant::Standard {
            let pseudo = match (advert.version(), src, dst) {
                (Version::V2, _, _) => vec![],
                (_, IpAddr::V4(s), IpAddr::V4(d)) => pseudo4(s, d, msg.len()),
                (_, IpAddr::V6(s), IpAddr::V6(d)) => pseudo6(s, d, msg.len()),
                _ => unreachable!(),
            };
            prop_assert_eq!(expected_checksum(&pseudo, &msg), field_checksum(&msg));
        }
        // Through a whole IPv4 packet too.
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) {
            let pkt = encode_ipv4_packet(&advert, s, d, 255, &o).unwrap();
            prop_assert_eq!(rfc1071(&pkt[..20]), 0);
            let rx = decode_ipv4_packet(&pkt, &o).unwrap();
            prop_assert_eq!(rx.advert, advert);
            prop_assert_eq!(rx.meta, RxMeta { src, dst, ttl: 255 });
        }
    }

    /// The Internet checksum catches every single-bit error, and the other
    /// checks catch those in the version, type and count.
    #[test]
    fn any_single_bit_flip_is_rejected((advert, src, dst) in arb_case(), bit in any::<prop::sample::Index>()) {
        let msg = encode(&advert, src, dst, &CodecOptions::default()).unwrap();
        let mut bad = msg.clone();
        let i = bit.index(msg.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        prop_assert!(decode(&bad, src, dst, &CodecOptions::default()).is_err());
    }

    /// Any message with a consistent length and a correct checksum decodes
    /// (unless its v2 auth type is not 0 or 1), and re-encodes to the same
    /// bytes except where the protocol says "ignore" (v3 reserved bits, v2
    /// auth data when the type is 0).
    #[test]
    fn well_formed_random_messages_decode(
        v3 in any::<bool>(),
        ipv6 in any::<bool>(),
        naddrs in 0u8..12,
        body in prop::collection::vec(any::<u8>(), 8 + 12 * 16 + 8),
        src in arb_addr(), dst in arb_addr(),
    ) {
        let ipv6 = ipv6 && v3;
        let (src, dst) = match (ipv6, src, dst) {
            (false, IpAddr::V4(s), IpAddr::V4(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
            (true, IpAddr::V6(s), IpAddr::V6(d)) => (IpAddr::V6(s), IpAddr::V6(d)),
            (false, _, _) => (v4(10, 0, 0, 1), IpAddr::V4(MCAST_GROUP4)),
            (true, _, _) => (v6("fe80::1"), IpAddr::V6(MCAST_GROUP6)),
        };
        let alen = if ipv6 { 16 } else { 4 };
        let len = 8 + usize::from(naddrs) * alen + if v3 { 0 } else { 8 };
        let mut m = body[..len].to_vec();
        m[0] = if v3 { 0x31 } else { 0x21 };
        m[3] = naddrs;
        let pseudo = match (v3, src, dst) {
            (false, _, _) => vec![],
            (true, IpAddr::V4(s), IpAddr::V4(d)) => pseudo4(s, d, len),
            (true, IpAddr::V6(s), IpAddr::V6(d)) => pseudo6(s, d, len),
            _ => unreachable!(),
        };
        let c = expected_checksum(&pseudo, &m);
        m[6..8].copy_from_slice(&c.to_be_bytes());
        match decode(&m, src, dst, &CodecOptions::default()) {
            Ok(advert) => {
                let again = encode(&advert, src, dst, &CodecOptions::default()).unwrap();
                let mut want = m.clone();
                if v3 {
                    want[4] &= 0x0f;
                } else if m[4] == 0 {
                    want[len - 8..].fill(0);
                }
                if want != m {
                    // Different ignored bits give a different checksum.
                    let c = expected_checksum(&pseudo, &want);
                    want[6..8].copy_from_slice(&c.to_be_bytes());
                }
                prop_assert_eq!(again, want);
            }
            Err(PacketError::AhUnsupported) => prop_assert!(!v3 && m[4] == 2),
            Err(PacketError::InvalidAuthType(t)) => prop_assert!(!v3 && t > 2),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        src in arb_addr(), dst in arb_addr(),
        lenient in any::<bool>(),
    ) {
        let o = CodecOptions {
            accept_v3_as_v2: lenient,
            accept_old_unicast: lenient.then_some(MCAST_GROUP4),
            ..CodecOptions::default()
        };
        let _ = decode(&bytes, src, dst, &o);
        let _ = decode_ipv4_packet(&bytes, &o);
        if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
            let _ = decode_ipv6(&bytes, s, d, 255, &o);
        }
    }

    /// Random bytes behind a plausible VRRP header reach the deeper checks.
    #[test]
    fn plausible_headers_never_panic(
        first in prop::sample::select(vec![0x21u8, 0x31, 0x20, 0x32, 0x11]),
        rest in prop::collection::vec(any::<u8>(), 0..200),
        src in arb_addr(), dst in arb_addr(),
    ) {
        let mut m = vec![first];
        m.extend_from_slice(&rest);
        let _ = decode(&m, src, dst, &CodecOptions::default());
        let mut pkt = hex("45c0000000000000ff700000 0a090001 e0000012");
        pkt.extend_from_slice(&m);
        let n = pkt.len() as u16;
        pkt[2..4].copy_from_slice(&n.to_be_bytes());
        let _ = decode_ipv4_packet(&pkt, &CodecOptions::default());
    }

    /// Validation is total too: any decoded advert against any view.
    #[test]
    fn validate_never_panics(
        (advert, src, dst) in arb_case(),
        ttl in any::<u8>(),
        vrid in any::<u8>(),
        vips in prop::collection::vec(arb_addr(), 0..4),
        peer_ttl in any::<(Option<u8>, Option<u8>)>(),
        flags in any::<(bool, bool, bool)>(),
    ) {
        let peers = [UnicastPeer { addr: src, min_ttl: peer_ttl.0, max_ttl: peer_ttl.1 }];
        let view = InstanceView {
            version: if flags.0 { Version::V2 } else { Version::V3 },
            vrid,
            auth: Auth::None,
            vips: &vips,
            advert_int: Duration::from_secs(1),
            unicast_peers: if flags.1 { &peers } else { &[] },
            check_unicast_src: flags.2,
            skip_check_adv_addr: flags.2,
            current_master: Some(src),
        };
        let r = validate(&advert, &RxMeta { src, dst, ttl }, &view);
        if let Err(e) = r {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

// ---------------------------------------------------------------------
// The receive path's order: cheap checks before decoding

#[test]
fn peek_then_decode_equals_decode() {
    let bytes = hex(KA_V2_PASS);
    let peek = peek_ipv4(&bytes).unwrap();
    assert_eq!((peek.version, peek.vrid, peek.offset), (2, 51, 20));
    assert_eq!(
        decode_peeked(&bytes, &peek, &opts()),
        decode_ipv4_packet(&bytes, &opts())
    );
    // Too short to name a VRID: refused by the peek itself.
    assert!(matches!(
        peek_ipv4(&bytes[..21]),
        Err(PacketError::Ipv4Length { .. })
    ));
}

#[test]
fn screen_drops_off_link_and_foreign_packets_before_the_checksum() {
    // An off-link copy (TTL 3) with a broken checksum: the TTL decides,
    // without decoding.
    let mut bytes = hex(KA_V2_PASS);
    bytes[8] = 3;
    bytes[26] ^= 0xff;
    let peek = peek_ipv4(&bytes).unwrap();
    let r = screen(&peek, &view_v2());
    assert_eq!(r, Err(DropReason::BadTtl { ttl: 3 }));
    assert_eq!(r.unwrap_err().kind(), DropKind::Ttl);
    // Another VRID, and a version that does not exist.
    let other = InstanceView {
        vrid: 52,
        ..view_v2()
    };
    assert_eq!(
        screen(&peek, &other).unwrap_err().kind(),
        DropKind::NotOurVrid
    );
    let mut v7 = hex(KA_V2_PASS);
    v7[20] = 0x71;
    let peek = peek_ipv4(&v7).unwrap();
    assert_eq!(
        screen(&peek, &view_v2()),
        Err(DropReason::Packet(PacketError::UnknownVersion(7)))
    );
    assert_eq!(
        screen(&peek, &view_v2()).unwrap_err().kind(),
        DropKind::Version
    );
}

#[test]
fn only_the_known_master_may_announce_it_is_leaving() {
    let rx0 = decode_ipv4_packet(&hex(KA_V2_PASS_PRIO0), &opts()).unwrap();
    // Before any master is known, and from the master: honoured.
    assert_eq!(check(&rx0, &view_v2()), Ok(()));
    let following = InstanceView {
        current_master: Some(rx0.meta.src),
        ..view_v2()
    };
    assert_eq!(check(&rx0, &following), Ok(()));
    // From anyone else (a stranger, or while we are the master ourselves).
    let other = InstanceView {
        current_master: Some(v4(10, 9, 0, 9)),
        ..view_v2()
    };
    let e = check(&rx0, &other).unwrap_err();
    assert_eq!(e.kind(), DropKind::LeavingNotMaster);
    assert_eq!(
        e.to_string(),
        format!(
            "priority 0 (leaving) from {}, which is not the master (10.9.0.9)",
            rx0.meta.src
        )
    );
    // A stranger's ordinary advert is still judged as before.
    assert_eq!(check(&rx_v2(), &other), Ok(()));
}
