//! Receive validation of a decoded advert against one instance (RFC 3768
//! §7.1, RFC 5798 §7.1, with keepalived's additions for unicast), as a pure
//! function. Every drop has a reason the caller can count and log
//! rate-limited; `Display` gives the operator text without the instance
//! name (the caller prefixes `(VI_1) `).
//!
//! Checks, in order:
//! 1. VRID is ours (a foreign VRID on a shared link is normal: [`DropReason::is_quiet`]);
//! 2. version equals the instance's;
//! 3. multicast instances get multicast, unicast instances unicast (keepalived);
//! 4. multicast: TTL / hop limit is 255; unicast: the sender is a
//!    `unicast_peer` (when `check_unicast_src`) and the TTL is within that
//!    peer's `min_ttl`..=`max_ttl`;
//! 5. v2: auth type, then the 8-byte password;
//! 6. v2: the advert interval equals ours (RFC 3768 says MUST discard, and
//!    keepalived drops it too, "to prevent concurrent VRID running").
//!    v3 adverts are never dropped for their interval: a backup adopts the
//!    master's (RFC 5798 §6.4.2), which is the state machine's business;
//! 7. the address count and every configured VIP are in the advert,
//!    unless `skip_check_adv_addr` and the advert comes from the master
//!    already being followed (keepalived's semantics of that option);
//! 8. priority 0 ("leaving") only from the master this instance knows
//!    (ours: a stranger's would make a backup take over after Skew_Time).
//!
//! Checks 1-4 need no decoding: [`screen`] runs them on what
//! `packet::peek_ipv4`/`peek_ipv6` read, before the checksum is computed.
//! Checksum, length, type, auth-type and AH errors come from
//! [`super::packet::decode`] and convert into [`DropReason::Packet`].
//! Priority 0 (the master is leaving) is a valid advert.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::model::UnicastPeer;

use super::packet::{
    Advert, Auth, PacketError, Peek, RxMeta, VRRP_TTL, Version, VersionFields, v2_adver_int,
};

/// What an instance expects of the adverts it receives.
#[derive(Debug, Clone, Copy)]
pub struct InstanceView<'a> {
    pub version: Version,
    pub vrid: u8,
    /// v2 only (ignored for v3). Build passwords with [`Auth::pass`].
    pub auth: Auth,
    /// The configured `virtual_ipaddress` list (the addresses it puts in
    /// its own adverts).
    pub vips: &'a [IpAddr],
    /// The configured `advert_int` (compared in whole seconds for v2).
    pub advert_int: Duration,
    /// `unicast_peer`; empty for a multicast instance.
    pub unicast_peers: &'a [UnicastPeer],
    /// `check_unicast_src` (instance or global).
    pub check_unicast_src: bool,
    /// `skip_check_adv_addr` (instance or global).
    pub skip_check_adv_addr: bool,
    /// The master as this instance knows it: while BACKUP the source whose
    /// adverts it follows, while MASTER its own address; `None` before it
    /// has heard one. `skip_check_adv_addr` only skips the address check
    /// for adverts from it, and only it may announce it is leaving
    /// (priority 0).
    pub current_master: Option<IpAddr>,
}

/// Why a received advert is dropped. `Display` is operator text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// Malformed: length, type, checksum, auth type, AH.
    Packet(PacketError),
    /// Another virtual router on the same link: not an error.
    NotOurVrid { received: u8, expected: u8 },
    VersionMismatch {
        received: Version,
        expected: Version,
    },
    /// A multicast instance received a unicast packet.
    UnexpectedUnicast { dst: IpAddr },
    /// A unicast instance received a multicast packet.
    UnexpectedMulticast { dst: IpAddr },
    /// Multicast TTL / hop limit not 255: sent from off-link.
    BadTtl { ttl: u8 },
    /// `check_unicast_src`: the source is no `unicast_peer`.
    UnknownUnicastSource { src: IpAddr },
    /// The TTL is outside the sending peer's `min_ttl`..=`max_ttl`.
    PeerTtlOutOfRange { ttl: u8, min: u8, max: u8 },
    /// v2: the auth type differs from ours.
    AuthTypeMismatch { received: u8, expected: u8 },
    /// v2: the password differs from ours.
    AuthFailure,
    /// v2: the advert interval differs from ours.
    IntervalMismatch {
        received_secs: u8,
        configured: Duration,
    },
    /// The advert carries a different number of addresses than we have VIPs.
    AddressCount { received: usize, expected: usize },
    /// One of our VIPs is not in the advert.
    AddressMissing { vrid: u8, addr: IpAddr },
    /// Priority 0 ("the master is leaving") from someone other than the
    /// master we know: honoured, it would make a backup take over after
    /// Skew_Time, and a master answer each one with an advert.
    LeavingNotMaster { src: IpAddr, master: IpAddr },
}

impl From<PacketError> for DropReason {
    fn from(e: PacketError) -> Self {
        DropReason::Packet(e)
    }
}

/// Fieldless kinds of [`DropReason`], for counters (they follow the
/// VRRP MIB / keepalived statistics where one exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropKind {
    /// Truncated, wrong length, wrong IP header (`packet_len_err`).
    Length,
    /// Not an advertisement (`invalid_type_rcvd`).
    InvalidType,
    /// Not VRRP version 2 or 3, or v2 over IPv6 (`vers_err`).
    Version,
    Checksum,
    /// Unknown auth type or AH (`invalid_authtype`).
    InvalidAuthType,
    NotOurVrid,
    /// Wrong TTL or hop limit (`ip_ttl_err`).
    Ttl,
    /// Unicast/multicast mismatch or unknown unicast source.
    Source,
    AuthTypeMismatch,
    AuthFailure,
    Interval,
    /// Address count or list (`addr_list_err`).
    AddressList,
    /// Priority 0 from a router that is not the known master.
    LeavingNotMaster,
}

impl DropKind {
    /// Stable name for metrics and the status dump.
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::Length => "packet_length",
            DropKind::InvalidType => "invalid_type",
            DropKind::Version => "version",
            DropKind::Checksum => "checksum",
            DropKind::InvalidAuthType => "invalid_auth_type",
            DropKind::NotOurVrid => "not_our_vrid",
            DropKind::Ttl => "ttl",
            DropKind::Source => "source",
            DropKind::AuthTypeMismatch => "auth_type_mismatch",
            DropKind::AuthFailure => "auth_failure",
            DropKind::Interval => "interval",
            DropKind::AddressList => "address_list",
            DropKind::LeavingNotMaster => "priority_0_not_from_master",
        }
    }
}

impl DropReason {
    pub fn kind(&self) -> DropKind {
        match self {
            DropReason::Packet(e) => match e {
                PacketError::Truncated { .. }
                | PacketError::Length { .. }
                | PacketError::EndpointFamilies { .. }
                | PacketError::Ipv4Header(_)
                | PacketError::Ipv4Length { .. }
                | PacketError::NotVrrp(_) => DropKind::Length,
                PacketError::UnknownVersion(_) | PacketError::V2OverIpv6 => DropKind::Version,
                PacketError::NotAdvertisement(_) => DropKind::InvalidType,
                PacketError::Checksum { .. } => DropKind::Checksum,
                PacketError::InvalidAuthType(_) | PacketError::AhUnsupported => {
                    DropKind::InvalidAuthType
                }
            },
            DropReason::NotOurVrid { .. } => DropKind::NotOurVrid,
            DropReason::VersionMismatch { .. } => DropKind::Version,
            DropReason::UnexpectedUnicast { .. }
            | DropReason::UnexpectedMulticast { .. }
            | DropReason::UnknownUnicastSource { .. } => DropKind::Source,
            DropReason::BadTtl { .. } | DropReason::PeerTtlOutOfRange { .. } => DropKind::Ttl,
            DropReason::AuthTypeMismatch { .. } => DropKind::AuthTypeMismatch,
            DropReason::AuthFailure => DropKind::AuthFailure,
            DropReason::IntervalMismatch { .. } => DropKind::Interval,
            DropReason::AddressCount { .. } | DropReason::AddressMissing { .. } => {
                DropKind::AddressList
            }
            DropReason::LeavingNotMaster { .. } => DropKind::LeavingNotMaster,
        }
    }

    /// Normal on a shared link (other virtual routers): count it, log it
    /// at debug level at most.
    pub fn is_quiet(&self) -> bool {
        matches!(self, DropReason::NotOurVrid { .. })
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::Packet(e) => write!(f, "{e}"),
            DropReason::NotOurVrid { received, expected } => write!(
                f,
                "received VRID mismatch. Received {received}, Expected {expected}"
            ),
            DropReason::VersionMismatch { received, expected } => write!(
                f,
                "wrong version. Received {received} and expect {expected}"
            ),
            DropReason::UnexpectedUnicast { dst } => write!(
                f,
                "Expected multicast packet but received unicast packet (to {dst})"
            ),
            DropReason::UnexpectedMulticast { dst } => write!(
                f,
                "Expected unicast packet but received multicast packet (to {dst})"
            ),
            DropReason::BadTtl { ttl } => {
                write!(f, "invalid TTL/HL. Received {ttl} and expect {VRRP_TTL}")
            }
            DropReason::UnknownUnicastSource { src } => {
                write!(f, "unicast source address {src} not a unicast peer")
            }
            DropReason::PeerTtlOutOfRange { ttl, min, max } => {
                write!(f, "TTL/HL {ttl} not in range {min} - {max}")
            }
            DropReason::AuthTypeMismatch { received, expected } => write!(
                f,
                "received a {} auth, expecting {} auth",
                auth_name(*received),
                auth_name(*expected)
            ),
            DropReason::AuthFailure => write!(f, "received an invalid passwd"),
            DropReason::IntervalMismatch {
                received_secs,
                configured,
            } => write!(
                f,
                "advertisement interval mismatch mine={} sec rcv'd={received_secs} sec",
                configured.as_secs_f64()
            ),
            DropReason::AddressCount { received, expected } => write!(
                f,
                "received an invalid ip count {received}, expected {expected}"
            ),
            DropReason::AddressMissing { vrid, addr } => write!(
                f,
                "ip address associated with VRID {vrid} not present in MASTER advert : {addr}"
            ),
            DropReason::LeavingNotMaster { src, master } => write!(
                f,
                "priority 0 (leaving) from {src}, which is not the master ({master})"
            ),
        }
    }
}

impl std::error::Error for DropReason {}

fn auth_name(t: u8) -> &'static str {
    match t {
        Auth::TYPE_NONE => "no",
        Auth::TYPE_PASS => "PASS",
        Auth::TYPE_AH => "AH",
        _ => "unknown",
    }
}

/// Compare without an early exit, so the time taken does not tell how
/// much of a guessed password was right.
fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The checks that need no decoding (1-4 above), on what [`peek`] read
/// before the checksum: a packet that fails them costs no more work.
///
/// [`peek`]: super::packet::peek_ipv4
pub fn screen(peek: &Peek, view: &InstanceView<'_>) -> Result<(), DropReason> {
    let meta = &peek.meta;
    if peek.vrid != view.vrid {
        return Err(DropReason::NotOurVrid {
            received: peek.vrid,
            expected: view.vrid,
        });
    }
    match Version::from_number(peek.version) {
        None => return Err(PacketError::UnknownVersion(peek.version).into()),
        Some(v) if v != view.version => {
            return Err(DropReason::VersionMismatch {
                received: v,
                expected: view.version,
            });
        }
        Some(_) => {}
    }

    if view.unicast_peers.is_empty() {
        if !meta.dst.is_multicast() {
            return Err(DropReason::UnexpectedUnicast { dst: meta.dst });
        }
        if meta.ttl != VRRP_TTL {
            return Err(DropReason::BadTtl { ttl: meta.ttl });
        }
    } else {
        if meta.dst.is_multicast() {
            return Err(DropReason::UnexpectedMulticast { dst: meta.dst });
        }
        match view.unicast_peers.iter().find(|p| p.addr == meta.src) {
            Some(peer) => {
                let (min, max) = (peer.min_ttl.unwrap_or(0), peer.max_ttl.unwrap_or(255));
                if !(min..=max).contains(&meta.ttl) {
                    return Err(DropReason::PeerTtlOutOfRange {
                        ttl: meta.ttl,
                        min,
                        max,
                    });
                }
            }
            None if view.check_unicast_src => {
                return Err(DropReason::UnknownUnicastSource { src: meta.src });
            }
            None => {}
        }
    }
    Ok(())
}

/// Whether `advert`, received with `meta`, is to be processed by the
/// instance described by `view`: [`screen`], then the advert's own fields.
pub fn validate(advert: &Advert, meta: &RxMeta, view: &InstanceView<'_>) -> Result<(), DropReason> {
    let peek = Peek {
        version: advert.version().number(),
        vrid: advert.vrid,
        meta: *meta,
        offset: 0,
    };
    screen(&peek, view)?;

    if let VersionFields::V2 { adver_int, auth } = advert.fields {
        if auth.type_code() != view.auth.type_code() {
            return Err(DropReason::AuthTypeMismatch {
                received: auth.type_code(),
                expected: view.auth.type_code(),
            });
        }
        if let (Auth::Pass(got), Auth::Pass(want)) = (auth, view.auth)
            && !constant_time_eq(&got, &want)
        {
            return Err(DropReason::AuthFailure);
        }
        if v2_adver_int(view.advert_int) != Some(adver_int) {
            return Err(DropReason::IntervalMismatch {
                received_secs: adver_int,
                configured: view.advert_int,
            });
        }
    }

    if advert.priority == 0
        && let Some(master) = view.current_master
        && master != meta.src
    {
        return Err(DropReason::LeavingNotMaster {
            src: meta.src,
            master,
        });
    }

    let skip_addrs = view.skip_check_adv_addr && view.current_master == Some(meta.src);
    if !skip_addrs {
        if advert.addrs.len() != view.vips.len() {
            return Err(DropReason::AddressCount {
                received: advert.addrs.len(),
                expected: view.vips.len(),
            });
        }
        if let Some(missing) = view.vips.iter().find(|v| !advert.addrs.contains(v)) {
            return Err(DropReason::AddressMissing {
                vrid: view.vrid,
                addr: *missing,
            });
        }
    }
    Ok(())
}
