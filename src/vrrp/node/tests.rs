//! The node core's own rules, effect by effect (the whole-node behaviour
//! is in tests/vrrp_node_sim.rs and the replay fixtures).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use crate::config::{LoadOptions, load_str};
use crate::vrrp::packet::{self, Advert, Auth, CodecOptions};
use crate::vrrp::validate::DropKind;

use super::*;

const CONF: &str = "vrrp_script chk {\n  script \"/bin/true\"\n  weight -20\n}\n\
    vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
    advert_int 1\n  track_script {\n    chk\n  }\n  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n";

fn node(text: &str) -> Node {
    let l = load_str("t.conf", text, &LoadOptions::default());
    let Some(config) = l.config else {
        panic!("{:?}", l.diagnostics)
    };
    let setup = config
        .vrrp_instances
        .iter()
        .map(|_| InstanceSetup {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            iface: Iface {
                name: "eth0".into(),
                index: 2,
                mac: [0; 6],
            },
            socket: 0,
        })
        .collect();
    Node::new(&config, setup, NodeOptions::default(), Instant::now())
}

fn drain(n: &mut Node) -> Vec<Effect> {
    std::iter::from_fn(|| n.poll_effect()).collect()
}

fn packet(vrid: u8, priority: u8, ttl: u8) -> Vec<u8> {
    let a = Advert::v2(
        vrid,
        priority,
        1,
        Auth::None,
        vec!["10.0.0.100".parse().unwrap()],
    );
    packet::encode_ipv4_packet(
        &a,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(224, 0, 0, 18),
        ttl,
        &CodecOptions::default(),
    )
    .unwrap()
}

#[test]
fn the_report_follows_transitions_at_once_and_counters_once_a_second() {
    let mut n = node(CONF);
    n.handle(0, Event::Start { links: Vec::new() });
    assert!(drain(&mut n).contains(&Effect::WriteReport));
    // Received adverts change only counters: the next write waits a second.
    let p = packet(51, 200, 255);
    n.handle_packet(100_000, 0, &p, packet::peek_ipv4(&p));
    assert!(!drain(&mut n).contains(&Effect::WriteReport));
    assert_eq!(n.instances()[0].adverts_received, 1);
    assert_eq!(n.poll_timeout(), Some(1_000_000));
    n.handle(1_000_000, Event::Timer);
    assert!(drain(&mut n).contains(&Effect::WriteReport));
}

#[test]
fn packets_are_screened_and_every_drop_is_counted() {
    let mut n = node(CONF);
    n.handle(0, Event::Start { links: Vec::new() });
    drain(&mut n);
    let garbage = [0x45u8, 0, 0];
    n.handle_packet(1, 0, &garbage, packet::peek_ipv4(&garbage));
    let other = packet(99, 200, 255);
    n.handle_packet(2, 0, &other, packet::peek_ipv4(&other));
    let off_link = packet(51, 200, 3);
    n.handle_packet(3, 0, &off_link, packet::peek_ipv4(&off_link));
    assert_eq!(n.unmatched_drops().get(&DropKind::NotOurVrid), Some(&1));
    assert_eq!(n.unmatched_drops().values().sum::<u64>(), 2);
    assert_eq!(n.instances()[0].drops.get(&DropKind::Ttl), Some(&1));
    assert_eq!(n.instances()[0].adverts_received, 0);
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
    assert!(
        drain(&mut n)
            .iter()
            .all(|e| matches!(e, Effect::WriteReport))
    );
}

#[test]
fn a_script_result_changes_priority_and_a_stale_index_is_ignored() {
    let mut n = node(CONF);
    n.handle(0, Event::Start { links: Vec::new() });
    let fail = |index| Event::Script {
        index,
        success: false,
        detail: "failed (exit 1)".into(),
    };
    n.handle(10, fail(7));
    assert_eq!(n.instances()[0].vrrp.priority, 100);
    n.handle(20, fail(0));
    assert_eq!(n.instances()[0].vrrp.priority, 80);
}

#[test]
fn a_failed_send_is_not_counted_as_sent() {
    let mut n = node(CONF);
    n.handle(0, Event::Start { links: Vec::new() });
    let t = n.poll_timeout().unwrap();
    n.handle(t, Event::Timer);
    assert_eq!(n.instances()[0].vrrp.state, State::Master);
    assert_eq!(n.instances()[0].adverts_sent, 1);
    n.handle(
        t,
        Event::SendFailed {
            instance: 0,
            dst: "224.0.0.18".parse().unwrap(),
            error: "ENOBUFS".into(),
        },
    );
    assert_eq!(n.instances()[0].adverts_sent, 0);
}

#[test]
fn a_stop_without_masters_ends_at_once_and_later_events_do_nothing() {
    let mut n = node(CONF);
    n.handle(0, Event::Start { links: Vec::new() });
    drain(&mut n);
    n.handle(10, Event::Stop);
    let e = drain(&mut n);
    assert_eq!(e.last(), Some(&Effect::Stopped));
    assert!(!e.iter().any(|e| matches!(e, Effect::Advert { .. })));
    assert!(n.is_stopped());
    assert_eq!(n.poll_timeout(), None);
    n.handle(20, Event::Timer);
    assert!(drain(&mut n).is_empty());
}

#[test]
fn keepalived_statistics_count_transitions_and_priority_zero() {
    let mut n = node(CONF);
    n.handle(0, Event::Start { links: Vec::new() });
    // No master heard: BACKUP times out to MASTER.
    let mut t = 0;
    while n.instances()[0].vrrp.state != State::Master && t < 10_000_000 {
        t = n.poll_timeout().unwrap_or(t + 100_000);
        n.handle(t, Event::Timer);
    }
    drain(&mut n);
    assert_eq!(n.instances()[0].stats.became_master, 1);
    // A priority-0 advert from a stranger is dropped, not counted as received.
    let p = packet(51, 0, 255);
    n.handle_packet(t + 1, 0, &p, packet::peek_ipv4(&p));
    assert_eq!(n.instances()[0].stats.priority_zero_received, 0);
    // A higher priority master takes over: released once.
    let p = packet(51, 200, 255);
    n.handle_packet(t + 2, 0, &p, packet::peek_ipv4(&p));
    drain(&mut n);
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
    assert_eq!(n.instances()[0].stats.released_master, 1);
    // Now it leaves (priority 0 from the master we follow): counted.
    let p = packet(51, 0, 255);
    n.handle_packet(t + 3, 0, &p, packet::peek_ipv4(&p));
    assert_eq!(n.instances()[0].stats.priority_zero_received, 1);
}
