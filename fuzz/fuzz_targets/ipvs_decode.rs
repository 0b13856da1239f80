//! Arbitrary bytes never panic the IPVS decoder, read either as a whole
//! netlink datagram or as a bare generic-netlink message (genl header +
//! attributes); and whatever decodes re-encodes into bytes that decode to
//! the same message.
#![no_main]

use ipvs_sys::netlink_packet_core::{NetlinkMessage, NetlinkPayload, ParseableParametrized};
use ipvs_sys::netlink_packet_generic::GenlMessage;
use ipvs_sys::{Direction, IpvsMessage};
use libfuzzer_sys::fuzz_target;

/// Re-encodes `m` and checks it decodes back to itself in its direction.
fn stable(m: &IpvsMessage) {
    let bytes = m.to_payload();
    let again = IpvsMessage::parse_as(m.command(), &bytes, m.direction())
        .unwrap_or_else(|e| panic!("re-encoded {m:?} fails to decode: {e}"));
    assert_eq!(&again, m, "re-encoding changed the message");
}

fuzz_target!(|data: &[u8]| {
    // 1. A netlink datagram, as a client receives it.
    if let Ok(msg) = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(data)
        && let NetlinkPayload::InnerMessage(genl) = &msg.payload
    {
        stable(&genl.payload);
        let mut copy = msg.clone();
        copy.finalize();
        let mut buf = vec![0; copy.buffer_len()];
        copy.serialize(&mut buf);
        let back = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(&buf)
            .expect("re-serialized datagram decodes");
        assert_eq!(back.payload, copy.payload);
    }

    // 2. A bare genl message: 4-byte genl header, then attributes.
    let _ = GenlMessage::<IpvsMessage>::parse_with_param(data, 0x20u16);
    if let Some((&cmd, rest)) = data.split_first() {
        let attrs = rest.get(3..).unwrap_or_default();
        for decoded in [
            IpvsMessage::parse(cmd, attrs),
            IpvsMessage::parse_as(cmd, attrs, Direction::Request),
            IpvsMessage::parse_as(cmd, attrs, Direction::Reply),
        ] {
            if let Ok(m) = decoded {
                stable(&m);
                let _ = m.validate();
            }
        }
    }
});
