//! The announcement frames, built whole (Ethernet header included) for an
//! `AF_PACKET`/`SOCK_RAW` socket.
//!
//! What keepalived 2.2.7 sends, and so what these build:
//! - gratuitous ARP: an ARP *request* to ff:ff:ff:ff:ff:ff whose sender
//!   and target protocol addresses are both the VIP, sender hardware
//!   address the interface's (or the VMAC's) MAC, and target hardware
//!   address ff:ff:ff:ff:ff:ff (not zeroes);
//! - unsolicited NA: ICMPv6 type 136 to ff02::1 (Ethernet 33:33:00:00:00:01),
//!   hop limit 255, Override set, Solicited clear, Router set when the
//!   interface forwards IPv6, one Target Link-Layer Address option. Its
//!   IPv6 source is the VIP itself (any address of the interface is valid
//!   per RFC 4861 7.2.6; pass a link-local one to differ from keepalived).

use std::net::{Ipv4Addr, Ipv6Addr};

/// An Ethernet (EUI-48) address.
pub type Mac = [u8; 6];

/// Ethernet header + ARP for IPv4 over Ethernet.
pub const GARP_FRAME_LEN: usize = 14 + 28;
/// Ethernet header + IPv6 header + NA (24) + Target Link-Layer Address option (8).
pub const NA_FRAME_LEN: usize = 14 + 40 + 32;

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;

const BROADCAST: Mac = [0xff; 6];
const IPPROTO_ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// ff02::1, all nodes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The VRRP virtual MAC of router `vrid`: 00:00:5e:00:01:VRID for IPv4
/// (RFC 3768 7.3), 00:00:5e:00:02:VRID for IPv6 (RFC 5798 7.3).
pub fn vrrp_vmac(vrid: u8, ipv6: bool) -> Mac {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// The Ethernet multicast address of an IPv6 multicast group (RFC 2464 7).
fn ipv6_multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A gratuitous ARP request announcing `vip` at `src_mac`.
pub fn garp_frame(src_mac: Mac, vip: Ipv4Addr) -> [u8; GARP_FRAME_LEN] {
    let mut f = [0u8; GARP_FRAME_LEN];
    // Ethernet
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    // ARP: Ethernet / IPv4, request
    f[14..16].copy_from_slice(&1u16.to_be_bytes());
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes());
    f[22..28].copy_from_slice(&src_mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// An unsolicited Neighbour Advertisement for `vip` at `src_mac`, from
/// IPv6 source `src` to ff02::1. `router` sets the R flag (keepalived sets
/// it when the interface has IPv6 forwarding on).
pub fn unsolicited_na_frame(
    src_mac: Mac,
    src: Ipv6Addr,
    vip: Ipv6Addr,
    router: bool,
) -> [u8; NA_FRAME_LEN] {
    const ICMP: usize = 14 + 40;
    let mut f = [0u8; NA_FRAME_LEN];
    // Ethernet
    f[0..6].copy_from_slice(&ipv6_multicast_mac(ALL_NODES));
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    // IPv6: version 6, traffic class 0, flow label 0
    f[14] = 0x60;
    f[18..20].copy_from_slice(&((NA_FRAME_LEN - ICMP) as u16).to_be_bytes());
    f[20] = IPPROTO_ICMPV6;
    f[21] = 255;
    f[22..38].copy_from_slice(&src.octets());
    f[38..54].copy_from_slice(&ALL_NODES.octets());
    // ICMPv6 Neighbour Advertisement (RFC 4861 4.4)
    f[ICMP] = ND_NEIGHBOR_ADVERT;
    f[ICMP + 4] = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    f[ICMP + 8..ICMP + 24].copy_from_slice(&vip.octets());
    // Target Link-Layer Address option, length in units of 8 octets
    f[ICMP + 24] = ND_OPT_TARGET_LL_ADDR;
    f[ICMP + 25] = 1;
    f[ICMP + 26..ICMP + 32].copy_from_slice(&src_mac);
    let sum = icmpv6_checksum(src, ALL_NODES, &f[ICMP..]);
    f[ICMP + 2..ICMP + 4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMPv6 checksum (RFC 4443 2.3) of `msg` sent from `src` to `dst`:
/// the ones' complement of the ones' complement sum over the pseudo-header
/// (RFC 8200 8.1) and the message. Computed over a message whose checksum
/// field is zero it gives the value to store; over a message carrying a
/// correct checksum it gives 0.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    // Upper-layer packet length (32 bits), three zero bytes, next header.
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference frames sent by keepalived v2.2.7 (Debian 12's
    // /usr/sbin/keepalived), captured on this build host: a private
    // network namespace (`ip netns add`) with a veth pair a/b, a set to
    // 02:11:22:33:44:55 with 10.0.0.1/24 and link-local
    // fe80::11:22ff:fe33:4455; keepalived run with `-n -l -D --vrrp` and
    // two MASTER instances on `a` (VRID 51 with 10.0.0.100/24; VRID 52 with
    // fe80::100/64 and fd00::100/64, and a second run with `use_vmac`);
    // `tcpdump -i b -U -w` on the peer end, then `tcpdump -r -nn -xx`.

    /// `Request who-has 10.0.0.100 (ff:ff:ff:ff:ff:ff) tell 10.0.0.100`.
    const KA_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x0a, 0x00,
        0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x64,
    ];

    /// The same, on the VMAC interface vrrp.51 (`use_vmac`, VRID 51).
    const KA_GARP_VMAC: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x33, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x33, 0x0a, 0x00,
        0x00, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x64,
    ];

    /// Hex as printed by `tcpdump -xx`, whitespace ignored.
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// `fd00::100 > ff02::1: ICMP6, neighbor advertisement, tgt is
    /// fd00::100, Flags [override]` (IPv6 forwarding off).
    const KA_NA_FD00: &str = "
        3333 0000 0001 0211 2233 4455 86dd 6000
        0000 0020 3aff fd00 0000 0000 0000 0000
        0000 0000 0100 ff02 0000 0000 0000 0000
        0000 0000 0001 8800 f204 2000 0000 fd00
        0000 0000 0000 0000 0000 0000 0100 0201
        0211 2233 4455";

    /// `fe80::100 > ff02::1 ... tgt is fe80::100, Flags [router, override]`
    /// (net.ipv6.conf.all.forwarding=1).
    const KA_NA_FE80_ROUTER: &str = "
        3333 0000 0001 0211 2233 4455 86dd 6000
        0000 0020 3aff fe80 0000 0000 0000 0000
        0000 0000 0100 ff02 0000 0000 0000 0000
        0000 0000 0001 8800 6f04 a000 0000 fe80
        0000 0000 0000 0000 0000 0000 0100 0201
        0211 2233 4455";

    /// `fd00::100 ... Flags [router, override]`.
    const KA_NA_FD00_ROUTER: &str = "
        3333 0000 0001 0211 2233 4455 86dd 6000
        0000 0020 3aff fd00 0000 0000 0000 0000
        0000 0000 0100 ff02 0000 0000 0000 0000
        0000 0000 0001 8800 7204 a000 0000 fd00
        0000 0000 0000 0000 0000 0000 0100 0201
        0211 2233 4455";

    /// VMAC interface vrrp.52 (VRID 52 = 0x34), forwarding off.
    const KA_NA_FE80_VMAC: &str = "
        3333 0000 0001 0000 5e00 0234 86dd 6000
        0000 0020 3aff fe80 0000 0000 0000 0000
        0000 0000 0100 ff02 0000 0000 0000 0000
        0000 0000 0001 8800 f769 2000 0000 fe80
        0000 0000 0000 0000 0000 0000 0100 0201
        0000 5e00 0234";

    const MAC: Mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    fn fd00() -> Ipv6Addr {
        "fd00::100".parse().unwrap()
    }
    fn fe80() -> Ipv6Addr {
        "fe80::100".parse().unwrap()
    }

    #[test]
    fn garp_matches_keepalived() {
        assert_eq!(garp_frame(MAC, VIP4), KA_GARP);
        assert_eq!(garp_frame(vrrp_vmac(51, false), VIP4), KA_GARP_VMAC);
    }

    #[test]
    fn na_matches_keepalived() {
        assert_eq!(
            unsolicited_na_frame(MAC, fd00(), fd00(), false).to_vec(),
            hex(KA_NA_FD00)
        );
        assert_eq!(
            unsolicited_na_frame(MAC, fe80(), fe80(), true).to_vec(),
            hex(KA_NA_FE80_ROUTER)
        );
        assert_eq!(
            unsolicited_na_frame(MAC, fd00(), fd00(), true).to_vec(),
            hex(KA_NA_FD00_ROUTER)
        );
        assert_eq!(
            unsolicited_na_frame(vrrp_vmac(52, true), fe80(), fe80(), false).to_vec(),
            hex(KA_NA_FE80_VMAC)
        );
    }

    #[test]
    fn vmac() {
        assert_eq!(vrrp_vmac(1, false), [0, 0, 0x5e, 0, 1, 1]);
        assert_eq!(vrrp_vmac(255, true), [0, 0, 0x5e, 0, 2, 255]);
    }

    #[test]
    fn na_layout() {
        let src: Ipv6Addr = "fe80::11:22ff:fe33:4455".parse().unwrap();
        let f = unsolicited_na_frame(MAC, src, fd00(), false);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 32, "payload length");
        assert_eq!((f[20], f[21]), (58, 255), "next header, hop limit");
        assert_eq!(&f[22..38], &src.octets());
        assert_eq!(&f[38..54], &ALL_NODES.octets());
        assert_eq!((f[54], f[55]), (136, 0), "type, code");
        assert_eq!(f[58], 0x20, "O set; R, S clear");
        assert_eq!(&f[62..78], &fd00().octets());
        assert_eq!(&f[78..80], &[2, 1]);
        assert_eq!(&f[80..86], &MAC);
    }

    #[test]
    fn checksum_verifies_to_zero() {
        let src: Ipv6Addr = "fe80::11:22ff:fe33:4455".parse().unwrap();
        for router in [false, true] {
            let f = unsolicited_na_frame(MAC, src, fd00(), router);
            assert_eq!(icmpv6_checksum(src, ALL_NODES, &f[54..]), 0);
            // Any corruption is seen.
            let mut bad = f;
            bad[70] ^= 0x01;
            assert_ne!(icmpv6_checksum(src, ALL_NODES, &bad[54..]), 0);
        }
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones'
        // complement); with an all-zero pseudo-header except the length and
        // next header the result must include those too.
        let zero = Ipv6Addr::UNSPECIFIED;
        let msg = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        // 0xddf2 + 8 (length) + 58 (next header) = 0xde34
        assert_eq!(icmpv6_checksum(zero, zero, &msg), !0xde34);
        // Odd length pads with a zero byte.
        assert_eq!(icmpv6_checksum(zero, zero, &[0x12]), !(0x1200 + 1 + 58));
    }
}
