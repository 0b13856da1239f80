//! The receive path, cheapest checks first: the IP header (peeked by the
//! caller) and the VRID route the packet to an instance, which checks TTL,
//! source and destination before anything is decoded or checksummed. Every
//! drop is counted under its reason; warnings are rate-limited per instance
//! and reason; nothing allocated here outlives the packet.

use super::super::packet::{self, CodecOptions, PacketError, Peek};
use super::super::state::{Input, Micros};
use super::super::validate::{DropKind, DropReason};
use super::{Event, Node};

impl Node {
    /// A packet received on socket `socket` (index from the setup), with
    /// the caller's peek of its IP header: screened, decoded, validated by
    /// the instance it is for and, if it passes, handled as
    /// [`Event::Advert`]. Drops are counted.
    pub fn handle_packet(
        &mut self,
        now: Micros,
        socket: usize,
        bytes: &[u8],
        peek: Result<Peek, PacketError>,
    ) {
        if self.stopped {
            return;
        }
        match self.classify(now, socket, bytes, peek) {
            Some((
                instance,
                Input::Advert {
                    src,
                    priority,
                    interval,
                },
            )) => self.handle(
                now,
                Event::Advert {
                    instance,
                    src,
                    priority,
                    interval,
                },
            ),
            _ => {
                if self.handoff.is_none() {
                    self.refresh_report(now);
                }
            }
        }
    }

    fn classify(
        &mut self,
        now: Micros,
        socket: usize,
        bytes: &[u8],
        peek: Result<Peek, PacketError>,
    ) -> Option<(usize, Input)> {
        let peek = match peek {
            Ok(p) => p,
            Err(e) => {
                self.drop_unmatched(now, DropReason::Packet(e));
                return None;
            }
        };
        let Some(i) = (0..self.instances.len()).find(|&i| {
            self.inst_socket[i] == socket && self.instances[i].cfg.virtual_router_id == peek.vrid
        }) else {
            // Another virtual router on the link: normal, counted only.
            *self
                .unmatched_drops
                .entry(DropKind::NotOurVrid)
                .or_default() += 1;
            return None;
        };
        let src = peek.meta.src;
        if let Err(reason) = self.instances[i].screen(&peek) {
            self.log_drop(now, i, &reason, src);
            return None;
        }
        // Decode leniently (both v3 checksum readings); the instance then
        // validates the advert's fields.
        let opts = CodecOptions {
            accept_v3_as_v2: true,
            ..CodecOptions::default()
        };
        let rx = match packet::decode_peeked(bytes, &peek, &opts) {
            Ok(rx) => rx,
            Err(e) => {
                let reason = DropReason::Packet(e);
                self.instances[i].count_drop(&reason);
                self.log_drop(now, i, &reason, src);
                return None;
            }
        };
        match self.instances[i].accept(&rx) {
            Ok(input) => Some((i, input)),
            Err(reason) => {
                self.log_drop(now, i, &reason, src);
                None
            }
        }
    }
}
