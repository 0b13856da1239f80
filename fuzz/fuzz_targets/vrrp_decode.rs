//! Arbitrary bytes never panic the VRRP decoder (a whole IPv4 packet as a
//! raw socket delivers it, or a bare VRRP message over IPv4 or IPv6), nor
//! receive validation; and whatever decodes re-encodes into bytes that
//! decode to the same advert with the same checksum variant.
//!
//! The first byte steers: bits 0-1 the input kind, bits 2-3 the checksum
//! variant, bit 4 "patch in a correct standard checksum first" (so that
//! the fuzzer gets past the checksum to the fields behind it), bit 5 and
//! bit 6 the extra accepted variants.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipvsdir::config::model::UnicastPeer;
use ipvsdir::vrrp::packet::{
    Advert, ChecksumVariant, CodecOptions, MCAST_GROUP4, Received, RxMeta, decode_checked,
    decode_ipv4_packet, encode,
};
use ipvsdir::vrrp::validate::{InstanceView, validate};
use libfuzzer_sys::fuzz_target;

fn rfc1071(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for p in parts {
        for w in p.chunks(2) {
            sum += u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Write the standard checksum into `msg` (v2: message only; v3: with
/// the pseudo-header).
fn patch_checksum(msg: &mut [u8], src: IpAddr, dst: IpAddr) {
    if msg.len() < 8 {
        return;
    }
    msg[6] = 0;
    msg[7] = 0;
    let len = msg.len();
    let pseudo: Vec<u8> = match (msg[0] >> 4, src, dst) {
        (3, IpAddr::V4(s), IpAddr::V4(d)) => [
            &s.octets()[..],
            &d.octets(),
            &[0, 112],
            &(len as u16).to_be_bytes(),
        ]
        .concat(),
        (3, IpAddr::V6(s), IpAddr::V6(d)) => [
            &s.octets()[..],
            &d.octets(),
            &(len as u32).to_be_bytes(),
            &[0, 0, 0, 112],
        ]
        .concat(),
        _ => vec![],
    };
    let c = rfc1071(&[&pseudo, msg]);
    msg[6..8].copy_from_slice(&c.to_be_bytes());
}

fn check_round_trip(rx: &Received, opts: &CodecOptions) {
    let o = CodecOptions {
        v3_checksum: rx.checksum,
        ..CodecOptions::default()
    };
    let bytes = encode(&rx.advert, rx.meta.src, rx.meta.dst, &o)
        .unwrap_or_else(|e| panic!("decoded {:?} does not encode: {e}", rx.advert));
    let (again, variant) = decode_checked(&bytes, rx.meta.src, rx.meta.dst, &o)
        .unwrap_or_else(|e| panic!("re-encoded {:?} does not decode: {e}", rx.advert));
    assert_eq!(again, rx.advert, "re-encoding changed the advert");
    assert_eq!(variant, rx.checksum);
    // With the receiver's own options it decodes too.
    assert!(decode_checked(&bytes, rx.meta.src, rx.meta.dst, opts).is_ok());
    exercise_validation(&rx.advert, &rx.meta);
}

fn exercise_validation(advert: &Advert, meta: &RxMeta) {
    let peers = [UnicastPeer {
        addr: meta.src,
        min_ttl: Some(meta.ttl / 2),
        max_ttl: None,
    }];
    for unicast in [false, true] {
        let view = InstanceView {
            version: advert.version(),
            vrid: advert.vrid,
            auth: advert.auth(),
            vips: &advert.addrs,
            advert_int: advert.interval(),
            unicast_peers: if unicast { &peers } else { &[] },
            check_unicast_src: unicast,
            skip_check_adv_addr: false,
            current_master: None,
        };
        if let Err(e) = validate(advert, meta, &view) {
            assert!(!e.to_string().is_empty());
            let _ = e.kind().as_str();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let opts = CodecOptions {
        v3_checksum: match (ctl >> 2) & 3 {
            0 | 1 => ChecksumVariant::Standard,
            2 => ChecksumVariant::AsV2,
            _ => ChecksumVariant::OldUnicast {
                group: MCAST_GROUP4,
            },
        },
        accept_v3_as_v2: ctl & 0x40 != 0,
        accept_old_unicast: (ctl & 0x20 != 0).then_some(MCAST_GROUP4),
    };
    let patch = ctl & 0x10 != 0;
    match ctl & 3 {
        0 => {
            let mut pkt = rest.to_vec();
            if patch && pkt.len() >= 20 {
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
                let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
                if let Some(msg) = pkt.get_mut(ihl..) {
                    patch_checksum(msg, src.into(), dst.into());
                }
            }
            if let Ok(rx) = decode_ipv4_packet(&pkt, &opts) {
                check_round_trip(&rx, &opts);
            }
        }
        1 | 2 => {
            let ipv6 = ctl & 3 == 2;
            let alen = if ipv6 { 16 } else { 4 };
            if rest.len() < 2 * alen {
                return;
            }
            let (addrs, msg) = rest.split_at(2 * alen);
            let (src, dst) = if ipv6 {
                let s: [u8; 16] = addrs[..16].try_into().unwrap();
                let d: [u8; 16] = addrs[16..].try_into().unwrap();
                (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())
            } else {
                let s: [u8; 4] = addrs[..4].try_into().unwrap();
                let d: [u8; 4] = addrs[4..].try_into().unwrap();
                (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into())
            };
            let mut msg = msg.to_vec();
            if patch {
                patch_checksum(&mut msg, src, dst);
            }
            if let Ok((advert, checksum)) = decode_checked(&msg, src, dst, &opts) {
                let rx = Received {
                    advert,
                    meta: RxMeta { src, dst, ttl: 255 },
                    checksum,
                };
                check_round_trip(&rx, &opts);
            }
        }
        _ => {
            // Mixed or odd endpoints: only "no panic".
            let src: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
            let dst: IpAddr = Ipv6Addr::LOCALHOST.into();
            let _ = decode_checked(rest, src, dst, &opts);
            let _ = decode_checked(rest, dst, dst, &opts);
        }
    }
});
