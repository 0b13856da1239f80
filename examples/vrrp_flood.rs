//! A hostile VRRP sender for the attack tests (tests/vrrp_attack.rs): a
//! bounded flood of crafted IPv4 VRRP packets from the namespace it runs in,
//! to see that a director keeps its role, counts every packet under its
//! reason and neither logs nor answers without bound.
//!
//!   vrrp_flood KIND --src IP --vrid N --vip IP [--count N] [--rate PPS]
//!       [--dst 224.0.0.18] [--priority P] [--advert-int SECS]
//!
//! KIND (one packet shape, repeated `--count` times at `--rate` a second):
//!   checksum   a valid v2 advert with a random wrong checksum
//!   truncated  the VRRP header cut short
//!   version    VRRP version 7
//!   type       packet type 2 (not an advertisement)
//!   vrid       a VRID other than --vrid (another router, not an attack)
//!   ttl        a valid advert sent with TTL 3 (off-link)
//!   lower      a valid advert of priority --priority (default 1): a
//!              lower-priority master
//!   zero       a valid advert of priority 0 from a stranger
//!
//! Packets are built with the library's encoder, then damaged, and sent on a
//! raw socket with IP_HDRINCL (so TTL and checksum are ours). Prints
//! `sent N` at the end. Bounded in count (default 2,000) and time (the rate).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ipvsdir::vrrp::packet::{self, Advert, Auth, CodecOptions};

struct Args {
    kind: String,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    vrid: u8,
    vip: Ipv4Addr,
    count: u64,
    rate: u64,
    priority: u8,
    advert_int: u8,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let kind = it
        .next()
        .ok_or("usage: vrrp_flood KIND --src IP --vrid N --vip IP ...")?;
    let mut a = Args {
        kind,
        src: Ipv4Addr::UNSPECIFIED,
        dst: Ipv4Addr::new(224, 0, 0, 18),
        vrid: 0,
        vip: Ipv4Addr::UNSPECIFIED,
        count: 2_000,
        rate: 1_000,
        priority: 1,
        advert_int: 1,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--src" => a.src = v.parse().map_err(|e| bad(&e))?,
            "--dst" => a.dst = v.parse().map_err(|e| bad(&e))?,
            "--vrid" => a.vrid = v.parse().map_err(|e| bad(&e))?,
            "--vip" => a.vip = v.parse().map_err(|e| bad(&e))?,
            "--count" => a.count = v.parse().map_err(|e| bad(&e))?,
            "--rate" => a.rate = v.parse().map_err(|e| bad(&e))?,
            "--priority" => a.priority = v.parse().map_err(|e| bad(&e))?,
            "--advert-int" => a.advert_int = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    a.count = a.count.min(1_000_000);
    a.rate = a.rate.clamp(1, 100_000);
    Ok(a)
}

/// A small xorshift: the checksums only need to differ, not be secret.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One packet of this kind (`n`: its sequence number).
fn packet(a: &Args, rng: &mut Rng) -> Result<Vec<u8>, String> {
    let (vrid, priority, ttl) = match a.kind.as_str() {
        "vrid" => (a.vrid.wrapping_add(1).max(1), 100, packet::VRRP_TTL),
        "ttl" => (a.vrid, 200, 3),
        "lower" => (a.vrid, a.priority, packet::VRRP_TTL),
        "zero" => (a.vrid, 0, packet::VRRP_TTL),
        _ => (a.vrid, 100, packet::VRRP_TTL),
    };
    let advert = Advert::v2(
        vrid,
        priority,
        a.advert_int,
        Auth::None,
        vec![IpAddr::V4(a.vip)],
    );
    let mut p = packet::encode_ipv4_packet(&advert, a.src, a.dst, ttl, &CodecOptions::default())
        .map_err(|e| e.to_string())?;
    // The VRRP message starts after the 20-byte IP header.
    match a.kind.as_str() {
        "checksum" => {
            let good = u16::from_be_bytes([p[26], p[27]]);
            let bad = loop {
                let c = rng.next() as u16;
                if c != good {
                    break c;
                }
            };
            p[26..28].copy_from_slice(&bad.to_be_bytes());
        }
        "truncated" => {
            p.truncate(20 + 4);
            let total = p.len() as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
        }
        "version" => p[20] = (7 << 4) | (p[20] & 0x0f),
        "type" => p[20] = (p[20] & 0xf0) | 2,
        "vrid" | "ttl" | "lower" | "zero" => {}
        k => return Err(format!("unknown kind {k}")),
    }
    Ok(p)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vrrp_flood: {e}");
            std::process::exit(2);
        }
    };
    // SAFETY: plain socket calls with valid arguments and sizes.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        eprintln!(
            "vrrp_flood: raw socket: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(1);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut dst: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    dst.sin_family = libc::AF_INET as libc::sa_family_t;
    dst.sin_addr.s_addr = u32::from_ne_bytes(a.dst.octets());
    let start = Instant::now();
    let mut sent = 0u64;
    for n in 0..a.count {
        let p = match packet(&a, &mut rng) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("vrrp_flood: {e}");
                std::process::exit(2);
            }
        };
        // SAFETY: p and dst outlive the call; the lengths are theirs.
        let rc = unsafe {
            libc::sendto(
                fd,
                p.as_ptr().cast(),
                p.len(),
                0,
                (&dst as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            eprintln!("vrrp_flood: send: {}", std::io::Error::last_os_error());
        } else {
            sent += 1;
        }
        // Pace to --rate: packet n+1 is due at (n+1)/rate seconds.
        let due = start + Duration::from_secs_f64((n + 1) as f64 / a.rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    println!("sent {sent}");
}
