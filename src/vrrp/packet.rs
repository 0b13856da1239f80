//! The VRRP advertisement codec: RFC 3768 (VRRPv2, IPv4 only) and RFC 5798
//! (VRRPv3, IPv4 and IPv6). Pure functions over byte slices: no sockets,
//! no clocks, no logging.
//!
//! What crosses the wire is the *VRRP message*, the payload after the IP
//! header:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | v2: Auth Type | Adver Int     |          Checksum             |
//! | v3: (rsvd)|  Max Adver Int    |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   IPvX Address(es) (4 or 16 bytes each)       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | v2 only: Authentication Data (8 bytes)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Checksums (the Internet checksum, RFC 1071):
//! - v2: over the VRRP message alone (RFC 3768 §5.3.8);
//! - v3: over an IPv4 or IPv6 pseudo-header (source, destination,
//!   protocol 112, message length) followed by the message (RFC 5798
//!   §5.2.8). This is what keepalived sends and what tcpdump and Wireshark
//!   check by default.
//!
//! Two keepalived interop variants exist for v3 over IPv4 (never for IPv6,
//! where the kernel computes the checksum through `IPV6_CHECKSUM`):
//! - `v3_checksum_as_v2` (keepalived 2.2.8+, global or per instance): no
//!   pseudo-header, as Cisco reads RFC 5798 ([`ChecksumVariant::AsV2`]);
//! - `old_unicast_checksum` (keepalived before 1.3.6 put the multicast
//!   group into the pseudo-header even when sending unicast; newer
//!   keepalived detects such a peer and switches to it unless
//!   `old_unicast_checksum never`) ([`ChecksumVariant::OldUnicast`]).
//!
//! IP authentication header (AH, RFC 2338 auth type 2, IP protocol 51) is
//! recognised and refused with [`PacketError::AhUnsupported`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// IP protocol number of the IPsec authentication header.
pub const IPPROTO_AH: u8 = 51;
/// The TTL / hop limit every VRRP packet is sent with and (multicast)
/// must be received with.
pub const VRRP_TTL: u8 = 255;
/// The only VRRP packet type.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Fixed part of the VRRP message.
pub const HEADER_LEN: usize = 8;
/// v2 trailing authentication data.
pub const AUTH_DATA_LEN: usize = 8;
/// The v3 Max Adver Int field is 12 bits of centiseconds.
pub const MAX_V3_INTERVAL: u16 = 0x0fff;
/// Largest possible VRRP message (255 IPv6 addresses).
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 255 * 16;
/// IANA multicast group for VRRP over IPv4.
pub const MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IANA multicast group for VRRP over IPv6.
pub const MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TOS keepalived sends with (internetwork control), used by
/// [`encode_ipv4_packet`].
pub const IPV4_TOS: u8 = 0xc0;

/// The protocol version, as configured for an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// RFC 3768, IPv4 only, interval in whole seconds, optional password.
    V2,
    /// RFC 5798, IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    pub fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// VRRPv2 authentication (RFC 2338 §5.3.6; RFC 3768 keeps the field for
/// compatibility). AH (type 2) is not representable: it is refused when
/// decoding and must be refused by configuration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Auth {
    /// Type 0. The 8 bytes of authentication data are sent as zeros and
    /// ignored on receipt.
    #[default]
    None,
    /// Type 1, "simple text password": 8 bytes, zero-padded.
    Pass([u8; 8]),
}

impl Auth {
    pub const TYPE_NONE: u8 = 0;
    pub const TYPE_PASS: u8 = 1;
    pub const TYPE_AH: u8 = 2;

    /// A password as keepalived stores `auth_pass`: the first 8 bytes,
    /// zero-padded (longer passwords are truncated).
    pub fn pass(password: &str) -> Auth {
        let mut data = [0u8; AUTH_DATA_LEN];
        let bytes = password.as_bytes();
        let n = bytes.len().min(AUTH_DATA_LEN);
        data[..n].copy_from_slice(&bytes[..n]);
        Auth::Pass(data)
    }

    /// The auth type octet.
    pub fn type_code(&self) -> u8 {
        match self {
            Auth::None => Auth::TYPE_NONE,
            Auth::Pass(_) => Auth::TYPE_PASS,
        }
    }
}

/// Never prints the password itself.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Pass(_) => f.write_str("Pass(..)"),
        }
    }
}

/// The fields whose meaning depends on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionFields {
    V2 {
        /// Advertisement interval in seconds.
        adver_int: u8,
        auth: Auth,
    },
    V3 {
        /// Max advertisement interval in centiseconds, 12 bits
        /// (0..=[`MAX_V3_INTERVAL`]).
        max_adver_int: u16,
    },
}

/// One VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    pub vrid: u8,
    /// 0 = the master is leaving; 255 = the address owner.
    pub priority: u8,
    pub fields: VersionFields,
    /// The virtual addresses, all of the packet's address family.
    pub addrs: Vec<IpAddr>,
}

impl Advert {
    pub fn v2(vrid: u8, priority: u8, adver_int: u8, auth: Auth, addrs: Vec<IpAddr>) -> Advert {
        Advert {
            vrid,
            priority,
            fields: VersionFields::V2 { adver_int, auth },
            addrs,
        }
    }

    pub fn v3(vrid: u8, priority: u8, max_adver_int: u16, addrs: Vec<IpAddr>) -> Advert {
        Advert {
            vrid,
            priority,
            fields: VersionFields::V3 { max_adver_int },
            addrs,
        }
    }

    pub fn version(&self) -> Version {
        match self.fields {
            VersionFields::V2 { .. } => Version::V2,
            VersionFields::V3 { .. } => Version::V3,
        }
    }

    /// The advertised interval (v2: seconds; v3: centiseconds).
    pub fn interval(&self) -> Duration {
        match self.fields {
            VersionFields::V2 { adver_int, .. } => Duration::from_secs(u64::from(adver_int)),
            VersionFields::V3 { max_adver_int } => {
                Duration::from_millis(u64::from(max_adver_int) * 10)
            }
        }
    }

    /// The v2 authentication; `Auth::None` for v3.
    pub fn auth(&self) -> Auth {
        match self.fields {
            VersionFields::V2 { auth, .. } => auth,
            VersionFields::V3 { .. } => Auth::None,
        }
    }

    /// Length of the encoded VRRP message.
    pub fn message_len(&self, ipv6: bool) -> usize {
        message_len(self.version(), ipv6, self.addrs.len())
    }
}

/// What a v2 advert carries for a configured interval: whole seconds,
/// truncated (as keepalived does); `None` if it does not fit 1..=255 s.
pub fn v2_adver_int(interval: Duration) -> Option<u8> {
    match u8::try_from(interval.as_secs()) {
        Ok(s) if s > 0 => Some(s),
        _ => None,
    }
}

/// What a v3 advert carries for a configured interval: centiseconds,
/// truncated; `None` if it does not fit 1..=4095 cs (10 ms to 40.95 s).
pub fn v3_max_adver_int(interval: Duration) -> Option<u16> {
    match u16::try_from(interval.as_millis() / 10) {
        Ok(cs) if (1..=MAX_V3_INTERVAL).contains(&cs) => Some(cs),
        _ => None,
    }
}

fn message_len(version: Version, ipv6: bool, naddrs: usize) -> usize {
    let alen = if ipv6 { 16 } else { 4 };
    HEADER_LEN
        + naddrs * alen
        + match version {
            Version::V2 => AUTH_DATA_LEN,
            Version::V3 => 0,
        }
}

/// How the checksum of a v3 advert over IPv4 is computed. v2 adverts are
/// always summed without a pseudo-header and v3 adverts over IPv6 always
/// with one, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumVariant {
    /// RFC 5798 §5.2.8: pseudo-header with the packet's real source and
    /// destination (and the message alone for v2).
    #[default]
    Standard,
    /// No pseudo-header, as for v2: keepalived's `v3_checksum_as_v2`
    /// (Cisco's reading of RFC 5798).
    AsV2,
    /// Pseudo-header whose destination is this multicast group even when
    /// the packet is unicast: keepalived's `old_unicast_checksum`
    /// (keepalived < 1.3.6 behaviour).
    OldUnicast { group: Ipv4Addr },
}

/// Codec options (only v3 over IPv4 is affected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodecOptions {
    /// What [`encode`] writes, and what [`decode`] accepts first.
    pub v3_checksum: ChecksumVariant,
    /// [`decode`] also accepts a v3 checksum without pseudo-header.
    pub accept_v3_as_v2: bool,
    /// [`decode`] also accepts keepalived's old unicast checksum (the
    /// multicast group in the pseudo-header). keepalived does this
    /// automatically for unicast instances unless `old_unicast_checksum
    /// never`, and then switches its own sending to it: the caller can
    /// do the same from [`Received::checksum`].
    pub accept_old_unicast: Option<Ipv4Addr>,
}

impl CodecOptions {
    /// keepalived's `v3_checksum_as_v2`: send and expect v3 IPv4 checksums
    /// without pseudo-header.
    pub fn v3_checksum_as_v2() -> CodecOptions {
        CodecOptions {
            v3_checksum: ChecksumVariant::AsV2,
            ..CodecOptions::default()
        }
    }
}

/// Why an advert cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} virtual addresses do not fit in one advert (at most 255)")]
    TooManyAddresses(usize),
    #[error("source {src} and destination {dst} are of different address families")]
    EndpointFamilies { src: IpAddr, dst: IpAddr },
    #[error("virtual address {0} is not of the packet's address family")]
    AddressFamily(IpAddr),
    #[error("VRRPv2 is IPv4-only (RFC 3768); use version 3 for IPv6")]
    V2OverIpv6,
    #[error("advert interval {0} cs does not fit the 12-bit VRRPv3 field (max 4095)")]
    IntervalOutOfRange(u16),
}

/// Why a received packet is not a well-formed advert. `Display` gives
/// the operator text (the caller prefixes the instance name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("vrrp packet too short, length {len} and expect at least {min}")]
    Truncated { len: usize, min: usize },
    #[error("invalid VRRP version {0}, expect 2 or 3")]
    UnknownVersion(u8),
    #[error("Invalid packet type. {0} and expect 1")]
    NotAdvertisement(u8),
    #[error("VRRPv2 advert received over IPv6 (RFC 3768 is IPv4-only)")]
    V2OverIpv6,
    #[error("source {src} and destination {dst} are of different address families")]
    EndpointFamilies { src: IpAddr, dst: IpAddr },
    #[error(
        "vrrp packet too {}, length {len} and expect {expected} for {naddrs} address(es)",
        if len > expected { "long" } else { "short" }
    )]
    Length {
        len: usize,
        expected: usize,
        naddrs: u8,
    },
    #[error(
        "Invalid VRRPv{version} checksum (received 0x{received:04x}, computed 0x{computed:04x})"
    )]
    Checksum {
        version: u8,
        received: u16,
        computed: u16,
    },
    #[error("Invalid auth type: {0}")]
    InvalidAuthType(u8),
    #[error("AH authentication is not supported")]
    AhUnsupported,
    #[error("malformed IPv4 header: {0}")]
    Ipv4Header(&'static str),
    #[error("IPv4 total length {total_len} does not match the {received} bytes received")]
    Ipv4Length { total_len: u16, received: usize },
    #[error("IP protocol {0} is not VRRP (112)")]
    NotVrrp(u8),
}

/// Receive metadata: where the packet came from and went to, and its
/// TTL (IPv4) or hop limit (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
}

/// A decoded advert with its receive metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub advert: Advert,
    pub meta: RxMeta,
    /// Which checksum variant matched (always `Standard` for v2 and IPv6).
    pub checksum: ChecksumVariant,
}

// ---------------------------------------------------------------------
// Checksum

/// One's-complement sum of big-endian 16-bit words, continuing `acc`.
/// `data` must be of even length except for the last chunk summed.
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The one's-complement sum of the pseudo-header for this variant (0 if
/// none applies).
fn pseudo_sum(
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    len: usize,
    variant: ChecksumVariant,
) -> u64 {
    if version == Version::V2 {
        return 0;
    }
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let d = match variant {
                ChecksumVariant::Standard => d,
                ChecksumVariant::AsV2 => return 0,
                ChecksumVariant::OldUnicast { group } => group,
            };
            let mut acc = sum_words(0, &s.octets());
            acc = sum_words(acc, &d.octets());
            acc += u64::from(IPPROTO_VRRP);
            acc + len as u64
        }
        _ => {
            // IPv6 (RFC 8200 §8.1): src, dst, 32-bit length, 24 zero bits,
            // next header.
            let (s, d) = (to_v6(src), to_v6(dst));
            let mut acc = sum_words(0, &s.octets());
            acc = sum_words(acc, &d.octets());
            acc += len as u64;
            acc + u64::from(IPPROTO_VRRP)
        }
    }
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// The checksum to put at bytes 6..8 of `msg` (whose checksum field is
/// ignored: it is summed as zero).
fn compute_checksum(
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    msg: &[u8],
    variant: ChecksumVariant,
) -> u16 {
    let mut acc = pseudo_sum(version, src, dst, msg.len(), variant);
    acc = sum_words(acc, &msg[..6]);
    acc = sum_words(acc, &msg[8..]);
    !fold(acc)
}

// ---------------------------------------------------------------------
// Encode

fn check_families(advert: &Advert, src: IpAddr, dst: IpAddr) -> Result<bool, EncodeError> {
    let ipv6 = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(EncodeError::EndpointFamilies { src, dst }),
    };
    if let Some(a) = advert.addrs.iter().find(|a| a.is_ipv6() != ipv6) {
        return Err(EncodeError::AddressFamily(*a));
    }
    if advert.addrs.len() > 255 {
        return Err(EncodeError::TooManyAddresses(advert.addrs.len()));
    }
    Ok(ipv6)
}

/// The VRRP message for `advert` sent from `src` to `dst` (the payload of
/// the IP packet; the kernel builds the IP header on a raw socket), with
/// its checksum. `dst` is the multicast group or the unicast peer the
/// packet is sent to: for v3 it is part of the checksum, so a unicast
/// instance encodes once per peer (or patches the checksum).
///
/// For IPv6 the checksum is computed too; a socket with `IPV6_CHECKSUM`
/// set to 6 overwrites it with the same value.
pub fn encode(
    advert: &Advert,
    src: IpAddr,
    dst: IpAddr,
    opts: &CodecOptions,
) -> Result<Vec<u8>, EncodeError> {
    let ipv6 = check_families(advert, src, dst)?;
    let version = advert.version();
    let mut msg = Vec::with_capacity(message_len(version, ipv6, advert.addrs.len()));
    msg.push((version.number() << 4) | TYPE_ADVERTISEMENT);
    msg.push(advert.vrid);
    msg.push(advert.priority);
    msg.push(advert.addrs.len() as u8);
    match advert.fields {
        VersionFields::V2 { adver_int, auth } => {
            if ipv6 {
                return Err(EncodeError::V2OverIpv6);
            }
            msg.push(auth.type_code());
            msg.push(adver_int);
        }
        VersionFields::V3 { max_adver_int } => {
            if max_adver_int > MAX_V3_INTERVAL {
                return Err(EncodeError::IntervalOutOfRange(max_adver_int));
            }
            msg.extend_from_slice(&max_adver_int.to_be_bytes());
        }
    }
    msg.extend_from_slice(&[0, 0]);
    for a in &advert.addrs {
        match a {
            IpAddr::V4(a) => msg.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => msg.extend_from_slice(&a.octets()),
        }
    }
    if let VersionFields::V2 { auth, .. } = advert.fields {
        match auth {
            Auth::None => msg.extend_from_slice(&[0; AUTH_DATA_LEN]),
            Auth::Pass(p) => msg.extend_from_slice(&p),
        }
    }
    let variant = if ipv6 {
        ChecksumVariant::Standard
    } else {
        opts.v3_checksum
    };
    let sum = compute_checksum(version, src, dst, &msg, variant);
    msg[6..8].copy_from_slice(&sum.to_be_bytes());
    Ok(msg)
}

/// A whole IPv4 packet (20-byte header + VRRP message), as keepalived
/// sends with `IP_HDRINCL`: TOS 0xc0, no fragmentation flags, ID 0 (the
/// kernel fills it in), header checksum computed.
pub fn encode_ipv4_packet(
    advert: &Advert,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    opts: &CodecOptions,
) -> Result<Vec<u8>, EncodeError> {
    let msg = encode(advert, src.into(), dst.into(), opts)?;
    let total = (20 + msg.len()) as u16;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, IPV4_TOS]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, ttl, IPPROTO_VRRP, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let hsum = !fold(sum_words(0, &p));
    p[10..12].copy_from_slice(&hsum.to_be_bytes());
    p.extend_from_slice(&msg);
    Ok(p)
}

// ---------------------------------------------------------------------
// Decode

/// Decode and verify a VRRP message (the IP payload) received from `src`
/// for `dst`. The address family of the advertised addresses is the
/// family of `src`/`dst`. Never panics.
pub fn decode(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    opts: &CodecOptions,
) -> Result<Advert, PacketError> {
    decode_checked(payload, src, dst, opts).map(|(advert, _)| advert)
}

/// [`decode`], also telling which checksum variant matched.
pub fn decode_checked(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    opts: &CodecOptions,
) -> Result<(Advert, ChecksumVariant), PacketError> {
    let len = payload.len();
    if len < HEADER_LEN {
        return Err(PacketError::Truncated {
            len,
            min: HEADER_LEN,
        });
    }
    let version = Version::from_number(payload[0] >> 4)
        .ok_or(PacketError::UnknownVersion(payload[0] >> 4))?;
    let ptype = payload[0] & 0x0f;
    if ptype != TYPE_ADVERTISEMENT {
        return Err(PacketError::NotAdvertisement(ptype));
    }
    let ipv6 = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(PacketError::EndpointFamilies { src, dst }),
    };
    if ipv6 && version == Version::V2 {
        return Err(PacketError::V2OverIpv6);
    }
    let naddrs = payload[3];
    let expected = message_len(version, ipv6, usize::from(naddrs));
    if len != expected {
        return Err(PacketError::Length {
            len,
            expected,
            naddrs,
        });
    }

    let received = u16::from_be_bytes([payload[6], payload[7]]);
    let checksum = verify_checksum(version, src, dst, payload, ipv6, opts).ok_or_else(|| {
        let variant = if ipv6 {
            ChecksumVariant::Standard
        } else {
            opts.v3_checksum
        };
        PacketError::Checksum {
            version: version.number(),
            received,
            computed: compute_checksum(version, src, dst, payload, variant),
        }
    })?;

    let alen = if ipv6 { 16 } else { 4 };
    let addr_bytes = &payload[HEADER_LEN..HEADER_LEN + usize::from(naddrs) * alen];
    let addrs = addr_bytes
        .chunks_exact(alen)
        .map(|c| match <[u8; 16]>::try_from(c) {
            Ok(b) => IpAddr::V6(Ipv6Addr::from(b)),
            Err(_) => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
        })
        .collect();

    let fields = match version {
        Version::V2 => {
            let auth = match payload[4] {
                Auth::TYPE_NONE => Auth::None,
                Auth::TYPE_PASS => {
                    let mut p = [0u8; AUTH_DATA_LEN];
                    p.copy_from_slice(&payload[len - AUTH_DATA_LEN..]);
                    Auth::Pass(p)
                }
                Auth::TYPE_AH => return Err(PacketError::AhUnsupported),
                other => return Err(PacketError::InvalidAuthType(other)),
            };
            VersionFields::V2 {
                adver_int: payload[5],
                auth,
            }
        }
        // The top 4 bits are reserved: sent as zero, ignored on receipt.
        Version::V3 => VersionFields::V3 {
            max_adver_int: u16::from_be_bytes([payload[4], payload[5]]) & MAX_V3_INTERVAL,
        },
    };
    Ok((
        Advert {
            vrid: payload[1],
            priority: payload[2],
            fields,
            addrs,
        },
        checksum,
    ))
}

/// Which accepted variant the checksum of `msg` matches, if any. A
/// message is valid when the sum over the pseudo-header and the message,
/// checksum field included, is 0xffff (as the kernel and keepalived check).
fn verify_checksum(
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    msg: &[u8],
    ipv6: bool,
    opts: &CodecOptions,
) -> Option<ChecksumVariant> {
    let ok = |variant| {
        fold(sum_words(
            pseudo_sum(version, src, dst, msg.len(), variant),
            msg,
        )) == 0xffff
    };
    if version == Version::V2 || ipv6 {
        return ok(ChecksumVariant::Standard).then_some(ChecksumVariant::Standard);
    }
    let extra_as_v2 = opts.accept_v3_as_v2.then_some(ChecksumVariant::AsV2);
    let extra_old = opts
        .accept_old_unicast
        .map(|group| ChecksumVariant::OldUnicast { group });
    [Some(opts.v3_checksum), extra_as_v2, extra_old]
        .into_iter()
        .flatten()
        .find(|&v| ok(v))
}

/// What can be read of a received packet before its checksum is verified:
/// enough to route it to an instance and to apply the cheap checks (TTL,
/// source, destination) first, so that a flood of garbage costs little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    /// The VRRP version nibble, as received (2 and 3 are valid).
    pub version: u8,
    pub vrid: u8,
    pub meta: RxMeta,
    /// Where the VRRP message starts in the packet.
    pub offset: usize,
}

/// The IPv4 header of a packet as a raw `AF_INET` socket delivers it (IP
/// header included, total length in network order, already reassembled),
/// and the first bytes of the VRRP message. The IPv4 header checksum is
/// the kernel's business and is not checked. IP protocol 51 (AH) is
/// refused with [`PacketError::AhUnsupported`].
pub fn peek_ipv4(packet: &[u8]) -> Result<Peek, PacketError> {
    if packet.len() < 20 {
        return Err(PacketError::Truncated {
            len: packet.len(),
            min: 20 + HEADER_LEN,
        });
    }
    if packet[0] >> 4 != 4 {
        return Err(PacketError::Ipv4Header("IP version is not 4"));
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(PacketError::Ipv4Header("header length below 20 bytes"));
    }
    if ihl > packet.len() {
        return Err(PacketError::Ipv4Header("header length beyond the packet"));
    }
    let total_len = u16::from_be_bytes([packet[2], packet[3]]);
    if usize::from(total_len) != packet.len() {
        return Err(PacketError::Ipv4Length {
            total_len,
            received: packet.len(),
        });
    }
    match packet[9] {
        IPPROTO_VRRP => {}
        IPPROTO_AH => return Err(PacketError::AhUnsupported),
        other => return Err(PacketError::NotVrrp(other)),
    }
    let meta = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(
            packet[12], packet[13], packet[14], packet[15],
        )),
        dst: IpAddr::V4(Ipv4Addr::new(
            packet[16], packet[17], packet[18], packet[19],
        )),
        ttl: packet[8],
    };
    peek_message(&packet[ihl..], meta, ihl)
}

/// The first bytes of a VRRP message received on a raw `AF_INET6` socket
/// (see [`decode_ipv6`] for where `src`, `dst` and `hop_limit` come from).
pub fn peek_ipv6(
    payload: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> Result<Peek, PacketError> {
    let meta = RxMeta {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl: hop_limit,
    };
    peek_message(payload, meta, 0)
}

fn peek_message(msg: &[u8], meta: RxMeta, offset: usize) -> Result<Peek, PacketError> {
    if msg.len() < HEADER_LEN {
        return Err(PacketError::Truncated {
            len: msg.len(),
            min: HEADER_LEN,
        });
    }
    Ok(Peek {
        version: msg[0] >> 4,
        vrid: msg[1],
        meta,
        offset,
    })
}

/// Decodes the packet a [`Peek`] was taken of: checksum and the rest.
pub fn decode_peeked(
    packet: &[u8],
    peek: &Peek,
    opts: &CodecOptions,
) -> Result<Received, PacketError> {
    let msg = packet.get(peek.offset..).unwrap_or_default();
    let (advert, checksum) = decode_checked(msg, peek.meta.src, peek.meta.dst, opts)?;
    Ok(Received {
        advert,
        meta: peek.meta,
        checksum,
    })
}

/// Decode a whole IPv4 packet as a raw `AF_INET` socket delivers it (see
/// [`peek_ipv4`] for the IP header). Returns the advert with the TTL,
/// source and destination from the IP header.
pub fn decode_ipv4_packet(packet: &[u8], opts: &CodecOptions) -> Result<Received, PacketError> {
    let peek = peek_ipv4(packet)?;
    decode_peeked(packet, &peek, opts)
}

/// Decode a VRRP message received on a raw `AF_INET6` socket. Such a
/// socket delivers only the payload: the source comes from `recvmsg`'s
/// address, the destination from an `IPV6_PKTINFO` control message
/// (`IPV6_RECVPKTINFO`) and the hop limit from an `IPV6_HOPLIMIT` control
/// message (`IPV6_RECVHOPLIMIT`). With `IPV6_CHECKSUM` = 6 on the socket
/// the kernel has already dropped bad checksums; this checks again.
pub fn decode_ipv6(
    payload: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    opts: &CodecOptions,
) -> Result<Received, PacketError> {
    let peek = peek_ipv6(payload, src, dst, hop_limit)?;
    decode_peeked(payload, &peek, opts)
}
