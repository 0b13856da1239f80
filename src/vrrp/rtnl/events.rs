//! Link events for `track_interface`: a subscription to RTNLGRP_LINK that
//! yields an event whenever an interface appears, goes up or down, is
//! renamed or disappears. Events are states, not edges: when the kernel
//! drops notifications (ENOBUFS) the subscription re-reads every link and
//! reports what changed, so no transition is silently lost.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket};
use tracing::{debug, error, warn};

use super::error::RtnlError;
use super::link::{LinkInfo, parse_link};
use super::socket::{Rtnl, open_socket, split};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
/// Room for bursts (many VMACs flapping at once); the kernel caps it at
/// net.core.rmem_max.
const EVENT_RCVBUF: usize = 1 << 20;
/// Pause before trying again to re-read the links after a failure.
const RESYNC_RETRY: Duration = Duration::from_secs(1);
/// Bound on datagrams discarded after an overrun.
const DRAIN_MAX: usize = 100_000;

/// An interface's state after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub index: u32,
    pub name: String,
    /// Admin up and running, as [`LinkInfo::up`]; false once removed.
    pub up: bool,
    /// The interface was deleted.
    pub removed: bool,
}

/// The last state reported per interface, so only changes are reported.
#[derive(Debug, Default)]
pub struct LinkStates {
    known: HashMap<u32, (String, bool)>,
}

impl LinkStates {
    /// Records a link's new state; the event to report, if it changed.
    pub fn update(&mut self, link: &LinkInfo) -> Option<LinkEvent> {
        let state = (link.name.clone(), link.up);
        if self.known.get(&link.index) == Some(&state) {
            return None;
        }
        self.known.insert(link.index, state);
        Some(LinkEvent {
            index: link.index,
            name: link.name.clone(),
            up: link.up,
            removed: false,
        })
    }

    /// Records a link's removal.
    pub fn remove(&mut self, index: u32, name: &str) -> LinkEvent {
        self.known.remove(&index);
        LinkEvent {
            index,
            name: name.to_string(),
            up: false,
            removed: true,
        }
    }

    /// Takes a full list of links (after lost notifications): the events
    /// for everything that changed, appeared or went away.
    pub fn reconcile(&mut self, links: &[LinkInfo]) -> Vec<LinkEvent> {
        let mut events: Vec<LinkEvent> = links.iter().filter_map(|l| self.update(l)).collect();
        let mut gone: Vec<(u32, String)> = self
            .known
            .iter()
            .filter(|(index, _)| !links.iter().any(|l| l.index == **index))
            .map(|(index, (name, _))| (*index, name.clone()))
            .collect();
        gone.sort();
        events.extend(
            gone.into_iter()
                .map(|(index, name)| self.remove(index, &name)),
        );
        events
    }
}

/// A subscription to link notifications.
pub struct LinkWatch {
    sock: TokioSocket,
    /// A request socket, for re-reading the links after an overrun.
    rtnl: Rtnl,
    states: LinkStates,
    pending: VecDeque<LinkEvent>,
    need_resync: bool,
    resyncs: u64,
    malformed: u64,
}

impl LinkWatch {
    /// Subscribes (inside a tokio runtime). Open it before reading the
    /// state of tracked interfaces, so a change in between is not missed;
    /// the first notification about each interface is always reported.
    pub fn open() -> Result<LinkWatch, RtnlError> {
        let sock = open_socket()?;
        sock.socket_ref()
            .add_membership(libc::RTNLGRP_LINK)
            .map_err(|source| RtnlError::Socket {
                what: "join RTNLGRP_LINK on",
                source,
            })?;
        // Best effort: a smaller buffer only means more resyncs.
        let _ = sock.socket_ref().set_rx_buf_sz(EVENT_RCVBUF as libc::c_int);
        Ok(LinkWatch {
            sock,
            rtnl: Rtnl::open_now()?,
            states: LinkStates::default(),
            pending: VecDeque::new(),
            need_resync: false,
            resyncs: 0,
            malformed: 0,
        })
    }

    /// Sets the socket's receive buffer (the kernel doubles it and caps it
    /// at net.core.rmem_max).
    pub fn set_receive_buffer(&self, bytes: usize) -> Result<(), RtnlError> {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        self.sock
            .socket_ref()
            .set_rx_buf_sz(bytes)
            .map_err(|source| RtnlError::Socket {
                what: "size the receive buffer of",
                source,
            })
    }

    /// How many times notifications were lost and the links re-read.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// How many notifications could not be parsed (and were skipped).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The next change; None only when the socket failed for good (the
    /// reason is logged). Cancel-safe: usable in `tokio::select!`.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.need_resync {
                match self.rtnl.links().await {
                    Ok(links) => {
                        self.pending.extend(self.states.reconcile(&links));
                        self.need_resync = false;
                        self.resyncs += 1;
                    }
                    Err(e) => {
                        warn!(
                            "cannot re-read interfaces after lost link notifications: {e}; retrying"
                        );
                        tokio::time::sleep(RESYNC_RETRY).await;
                    }
                }
                continue;
            }
            match self.sock.recv_from_full().await {
                Ok((datagram, from)) => {
                    // Only the kernel sends link notifications.
                    if from.port_number() == 0 {
                        self.absorb(&datagram);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    let stale = self.drain();
                    warn!(
                        stale,
                        "link notifications were lost (receive buffer full); re-reading all interfaces"
                    );
                    self.need_resync = true;
                }
                Err(e) => {
                    error!(
                        "link notifications stopped: cannot receive on the rtnetlink socket: {e}"
                    );
                    return None;
                }
            }
        }
    }

    /// Discards what is still queued after an overrun: all of it predates
    /// the loss, so the dump that follows supersedes it. Processing it
    /// after the dump would end on a stale state, with the newer
    /// notifications that would correct it among those lost.
    fn drain(&mut self) -> usize {
        let sock = self.sock.socket_ref();
        let mut discarded = 0;
        for _ in 0..DRAIN_MAX {
            match sock.recv_from_full() {
                Ok(_) => discarded += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                // WouldBlock: the queue is empty (the socket is non-blocking).
                Err(_) => break,
            }
        }
        discarded
    }

    fn absorb(&mut self, datagram: &[u8]) {
        let msgs = match split(datagram) {
            Ok(msgs) => msgs,
            Err(why) => return self.skip(&why),
        };
        for msg in msgs {
            if !matches!(msg.msg_type, RTM_NEWLINK | RTM_DELLINK) {
                continue;
            }
            // AF_BRIDGE notifications are about bridge ports (an RTM_DELLINK
            // there means "left the bridge", not "deleted"); the interface's
            // own notifications are AF_UNSPEC.
            if msg.payload.first() != Some(&0) {
                continue;
            }
            match parse_link(msg.payload) {
                Ok(link) if msg.msg_type == RTM_DELLINK => {
                    debug!(index = link.index, name = %link.name, "rtnl: link removed");
                    let event = self.states.remove(link.index, &link.name);
                    self.pending.push_back(event);
                }
                Ok(link) => self.pending.extend(self.states.update(&link)),
                Err(why) => self.skip(&why),
            }
        }
    }

    fn skip(&mut self, why: &str) {
        self.malformed += 1;
        // Rate-limited: the 1st, 2nd, 4th, 8th, ... occurrence.
        if self.malformed.is_power_of_two() {
            warn!(
                count = self.malformed,
                "skipping malformed link notification: {why}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, up: bool) -> LinkInfo {
        LinkInfo {
            index,
            name: name.into(),
            mac: None,
            up,
            mtu: 1500,
            parent: None,
            kind: None,
        }
    }

    fn ev(index: u32, name: &str, up: bool, removed: bool) -> LinkEvent {
        LinkEvent {
            index,
            name: name.into(),
            up,
            removed,
        }
    }

    #[test]
    fn only_changes_are_reported() {
        let mut s = LinkStates::default();
        assert_eq!(
            s.update(&link(2, "eth0", true)),
            Some(ev(2, "eth0", true, false))
        );
        assert_eq!(s.update(&link(2, "eth0", true)), None);
        assert_eq!(
            s.update(&link(2, "eth0", false)),
            Some(ev(2, "eth0", false, false))
        );
        assert_eq!(
            s.update(&link(2, "wan0", false)),
            Some(ev(2, "wan0", false, false))
        );
        assert_eq!(s.remove(2, "wan0"), ev(2, "wan0", false, true));
        assert_eq!(
            s.update(&link(2, "wan0", false)),
            Some(ev(2, "wan0", false, false))
        );
    }

    #[test]
    fn reconcile_reports_changes_and_disappearances() {
        let mut s = LinkStates::default();
        assert_eq!(
            s.reconcile(&[
                link(1, "lo", true),
                link(2, "eth0", true),
                link(3, "eth1", true)
            ])
            .len(),
            3
        );
        let events = s.reconcile(&[
            link(1, "lo", true),
            link(2, "eth0", false),
            link(4, "eth2", true),
        ]);
        assert_eq!(
            events,
            vec![
                ev(2, "eth0", false, false),
                ev(4, "eth2", true, false),
                ev(3, "eth1", false, true),
            ]
        );
        assert!(
            s.reconcile(&[
                link(1, "lo", true),
                link(2, "eth0", false),
                link(4, "eth2", true)
            ])
            .is_empty()
        );
    }
}
