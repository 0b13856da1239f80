//! Announcing the virtual IPs when an instance becomes MASTER: gratuitous
//! ARP for IPv4, unsolicited Neighbour Advertisements for IPv6, sent the
//! way keepalived 2.2.7 sends them.
//!
//! - [`frame`]: pure builders of the Ethernet frames (byte for byte what
//!   keepalived puts on the wire).
//! - [`schedule`]: when to send them (`garp_master_delay`,
//!   `garp_master_repeat`, `garp_master_refresh`, `garp_interval`,
//!   `gna_interval`, the lower-priority-advert bursts) as a pure
//!   function of virtual time.
//! - [`sender`]: the thin I/O part, one non-blocking `AF_PACKET` socket
//!   per interface.

pub mod frame;
pub mod schedule;
pub mod sender;

pub use frame::{
    GARP_FRAME_LEN, Mac, NA_FRAME_LEN, garp_frame, icmpv6_checksum, unsolicited_na_frame, vrrp_vmac,
};
pub use schedule::{
    Burst, BurstReason, GarpParams, GarpSchedule, Pacer, PlannedSend, log_queueing,
};
pub use sender::{GarpError, GarpSender};
