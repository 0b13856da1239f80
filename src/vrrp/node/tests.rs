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
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
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
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
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
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
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
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
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
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
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
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
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

const ON_ETH9: &str = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth9\n  virtual_router_id 51\n  \
    priority 100\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n";

/// VI_1 on eth9, which does not exist when the node is made.
fn waiting_node() -> Node {
    let l = load_str("t.conf", ON_ETH9, &LoadOptions::default());
    let Some(config) = l.config else {
        panic!("{:?}", l.diagnostics)
    };
    let setup = vec![InstanceSetup {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        iface: Iface::missing("eth9"),
        socket: usize::MAX,
    }];
    Node::new(&config, setup, NodeOptions::default(), Instant::now())
}

fn ready(index: u32) -> Event {
    Event::InterfaceReady {
        instance: 0,
        setup: InstanceSetup {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            iface: Iface {
                name: "eth9".into(),
                index,
                mac: [2, 0, 0, 0, 0, 9],
            },
            socket: 0,
        },
    }
}

fn asks(e: &[Effect]) -> bool {
    e.contains(&Effect::OpenInterface { instance: 0 })
}

#[test]
fn a_missing_interface_waits_in_fault_and_recovers_when_it_appears() {
    let mut n = waiting_node();
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    let e = drain(&mut n);
    // FAULT at once, and one more look now that the driver watches links.
    assert!(asks(&e), "{e:?}");
    assert_eq!(n.instances()[0].vrrp.state, State::Fault);
    assert!(n.is_waiting(0));
    assert_eq!(n.awaited_interfaces(), ["eth9"]);
    // Not there: wait for the link event, no timer.
    n.handle(
        10,
        Event::InterfaceFailed {
            instance: 0,
            error: "interface eth9 does not exist".into(),
            missing: true,
        },
    );
    assert!(!asks(&drain(&mut n)));
    // No retry timer: nothing asked, nothing sent, however long it waits.
    n.handle(5_000_000, Event::Timer);
    let e = drain(&mut n);
    assert!(!asks(&e));
    assert!(!e.iter().any(|e| matches!(e, Effect::Advert { .. })));
    // Created down: still waiting; up: asked again.
    n.handle(
        6_000_000,
        Event::Link {
            name: "eth9".into(),
            up: false,
        },
    );
    assert!(!asks(&drain(&mut n)));
    n.handle(
        6_100_000,
        Event::Link {
            name: "eth9".into(),
            up: true,
        },
    );
    assert!(asks(&drain(&mut n)));
    // Opened: BACKUP, then MASTER with its adverts from the new source.
    n.handle(6_200_000, ready(7));
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
    assert!(!n.is_waiting(0));
    assert_eq!(n.socket_of(0), Some(0));
    let mut t = 6_200_000;
    while n.instances()[0].vrrp.state != State::Master && t < 20_000_000 {
        t = n.poll_timeout().unwrap_or(t + 100_000);
        n.handle(t, Event::Timer);
    }
    assert_eq!(n.instances()[0].vrrp.state, State::Master);
    let sent = drain(&mut n).into_iter().any(|e| {
        matches!(e, Effect::Advert { instance: 0, src, .. } if src == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
    });
    assert!(sent);
}

#[test]
fn a_removed_interface_puts_its_instance_back_to_waiting() {
    let mut n = waiting_node();
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    n.handle(1, ready(7));
    drain(&mut n);
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
    n.handle(
        10,
        Event::LinkRemoved {
            name: "eth9".into(),
        },
    );
    assert_eq!(n.instances()[0].vrrp.state, State::Fault);
    assert!(n.is_waiting(0));
    assert_eq!(n.socket_of(0), Some(usize::MAX));
    n.handle(
        20,
        Event::Link {
            name: "eth9".into(),
            up: true,
        },
    );
    assert!(asks(&drain(&mut n)));
    // Back with another index.
    n.handle(30, ready(8));
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
}

#[test]
fn an_interface_that_exists_but_cannot_be_used_is_tried_again() {
    let mut n = waiting_node();
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    drain(&mut n);
    n.handle(
        10,
        Event::InterfaceFailed {
            instance: 0,
            error: "eth9 has no IPv4 address".into(),
            missing: false,
        },
    );
    let retry = 10 + us(ATTACH_RETRY);
    assert!(n.poll_timeout().is_some_and(|t| t <= retry));
    n.handle(retry - 1, Event::Timer);
    assert!(!asks(&drain(&mut n)));
    n.handle(retry, Event::Timer);
    assert!(asks(&drain(&mut n)));
    // Asked once: a link event meanwhile does not ask twice.
    n.handle(
        retry + 1,
        Event::Link {
            name: "eth9".into(),
            up: true,
        },
    );
    assert!(!asks(&drain(&mut n)));
}

#[test]
fn a_reload_asks_again_for_a_missing_interface_and_carries_on_when_it_exists() {
    let mut n = waiting_node();
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    n.handle(
        1,
        Event::InterfaceFailed {
            instance: 0,
            error: "missing".into(),
            missing: true,
        },
    );
    drain(&mut n);
    let config = n.config().clone();
    // Still missing at the reload: asked again, in the new numbering.
    n.handle(
        10,
        Event::Reload {
            config: Box::new(config.clone()),
            setup: vec![InstanceSetup {
                src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                iface: Iface::missing("eth9"),
                socket: usize::MAX,
            }],
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    let e = drain(&mut n);
    let reloaded = e.iter().position(|e| *e == Effect::Reloaded);
    let asked = e
        .iter()
        .position(|e| *e == Effect::OpenInterface { instance: 0 });
    assert!(reloaded < asked && reloaded.is_some(), "{e:?}");
    assert_eq!(n.instances()[0].vrrp.state, State::Fault);
    // There at the next reload: the instance leaves FAULT.
    let Event::InterfaceReady { setup, .. } = ready(7) else {
        unreachable!()
    };
    n.handle(
        20,
        Event::Reload {
            config: Box::new(config),
            setup: vec![setup],
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    assert!(!n.is_waiting(0));
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
}

const FILES: &str = "track_file state {\n  file /run/none/state\n  weight -10\n}\n\
    vrrp_track_file gate {\n  file /run/none/gate\n  weight 0\n}\n\
    vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
    advert_int 1\n  track_file {\n    state\n  }\n  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n\
    vrrp_instance VI_2 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  priority 100\n  \
    advert_int 1\n  virtual_ipaddress {\n    10.0.0.101/24\n  }\n}\n\
    vrrp_instance VI_3 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 53\n  priority 100\n  \
    advert_int 1\n  virtual_ipaddress {\n    10.0.0.102/24\n  }\n}\n\
    vrrp_sync_group G {\n  group {\n    VI_2\n    VI_3\n  }\n  track_file {\n    gate\n  }\n}\n";

#[test]
fn tracked_files_move_priority_and_fault_whole_sync_groups() {
    let mut n = node(FILES);
    assert_eq!(n.tracked_files(), vec![0, 1]);
    // The values read before the start are in force from the start.
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: vec![(0, 2), (1, 0)],
            processes: Vec::new(),
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 80);
    n.handle(
        10,
        Event::TrackFile {
            index: 0,
            value: -3,
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 130);
    n.handle(20, Event::TrackFile { index: 0, value: 0 });
    assert_eq!(n.instances()[0].vrrp.priority, 100);
    // weight 0: a non-zero value is FAULT, for the whole sync group
    assert_ne!(n.instances()[1].vrrp.state, State::Fault);
    n.handle(30, Event::TrackFile { index: 1, value: 1 });
    assert_eq!(n.instances()[1].vrrp.state, State::Fault);
    assert_eq!(n.instances()[2].vrrp.state, State::Fault);
    assert_ne!(n.instances()[0].vrrp.state, State::Fault);
    n.handle(40, Event::TrackFile { index: 1, value: 0 });
    assert_ne!(n.instances()[1].vrrp.state, State::Fault);
    assert_ne!(n.instances()[2].vrrp.state, State::Fault);
    // -26 * -10 = 260: kept at +253, the priority at 254
    n.handle(
        50,
        Event::TrackFile {
            index: 0,
            value: -26,
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 254);
    // 26 * -10 = -260: below -253, FAULT
    n.handle(
        60,
        Event::TrackFile {
            index: 0,
            value: 26,
        },
    );
    assert_eq!(n.instances()[0].vrrp.state, State::Fault);
    // a stale index is ignored
    n.handle(70, Event::TrackFile { index: 9, value: 1 });
    assert_eq!(
        n.file_values(),
        vec![("state".into(), 26), ("gate".into(), 0)]
    );
}

#[test]
fn a_reload_takes_the_tracked_files_values_it_is_given() {
    let mut n = node(FILES);
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: vec![(0, 2)],
            processes: Vec::new(),
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 80);
    // The same file with VI_1's weight changed to -20: the value read at
    // the reload (3) applies at once, to the kept instance.
    let text = FILES.replace(
        "  track_file {\n    state\n  }",
        "  track_file {\n    state weight -20\n  }",
    );
    let l = load_str("t.conf", &text, &LoadOptions::default());
    let config = l.config.unwrap();
    let setup = |config: &Config| {
        config
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
            .collect()
    };
    n.handle(10, Event::ReloadBegin);
    n.handle(
        20,
        Event::Reload {
            setup: setup(&config),
            config: Box::new(config),
            links: Vec::new(),
            files: vec![(0, 3), (1, 0)],
            processes: Vec::new(),
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 40);
    // A new instance tracking the file starts with it too.
    let text = format!(
        "{FILES}vrrp_instance VI_4 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 54\n  \
         priority 100\n  track_file {{\n    state\n  }}\n  virtual_ipaddress {{\n    10.0.0.104/24\n  }}\n}}\n"
    );
    let config = load_str("t.conf", &text, &LoadOptions::default())
        .config
        .unwrap();
    n.handle(30, Event::ReloadBegin);
    n.handle(
        40,
        Event::Reload {
            setup: setup(&config),
            config: Box::new(config),
            links: Vec::new(),
            files: vec![(0, 1), (1, 0)],
            processes: Vec::new(),
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 90);
    assert_eq!(n.instances()[3].vrrp.priority, 90);
}

#[test]
fn a_sync_group_applies_its_tracked_files_weights_to_every_member() {
    // keepalived 2.2.7: `tf weight 5` in the group, the file holding 2,
    // moves both members from 100 to 110; without a weight there the
    // block's weight is used.
    let text = FILES.replace("    gate\n  }\n}\n", "    state weight 5\n  }\n}\n");
    let mut n = node(&text);
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: vec![(0, 2)],
            processes: Vec::new(),
        },
    );
    assert_eq!(n.instances()[1].vrrp.priority, 110);
    assert_eq!(n.instances()[2].vrrp.priority, 110);
    assert_eq!(n.instances()[0].vrrp.priority, 80, "VI_1's own weight -10");
    let text = FILES.replace("    gate\n  }\n}\n", "    state\n  }\n}\n");
    let mut n = node(&text);
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: vec![(0, 2)],
            processes: Vec::new(),
        },
    );
    assert_eq!(n.instances()[1].vrrp.priority, 80);
    assert_eq!(n.instances()[2].vrrp.priority, 80);
}

const PROCS: &str = "vrrp_track_process web {\n  process nginx\n  weight -30\n}\n\
    vrrp_track_process gate {\n  process haproxy\n}\n\
    vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
    advert_int 1\n  track_process {\n    web\n  }\n  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n\
    vrrp_instance VI_2 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  priority 100\n  \
    advert_int 1\n  virtual_ipaddress {\n    10.0.0.101/24\n  }\n}\n\
    vrrp_instance VI_3 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 53\n  priority 100\n  \
    advert_int 1\n  track_process {\n    web weight 20 reverse\n  }\n  virtual_ipaddress {\n    10.0.0.102/24\n  }\n}\n\
    vrrp_sync_group G {\n  group {\n    VI_2\n  }\n  track_process {\n    gate\n  }\n}\n";

#[test]
fn tracked_processes_move_priority_and_fault() {
    let mut n = node(PROCS);
    assert_eq!(n.tracked_processes(), vec![0, 1]);
    // Quorum states read before the start are in force from the start.
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: vec![(0, false), (1, true)],
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 70, "lost, weight -30");
    assert_eq!(
        n.instances()[2].vrrp.priority,
        100,
        "weight 20 counts while up"
    );
    assert_ne!(n.instances()[1].vrrp.state, State::Fault);
    n.handle(10, Event::TrackProcess { index: 0, up: true });
    assert_eq!(n.instances()[0].vrrp.priority, 100);
    assert_eq!(n.instances()[2].vrrp.priority, 80, "reverse negates: -20");
    // the default weight 0: FAULT while the quorum is lost (sync group)
    n.handle(
        20,
        Event::TrackProcess {
            index: 1,
            up: false,
        },
    );
    assert_eq!(n.instances()[1].vrrp.state, State::Fault);
    assert_ne!(n.instances()[0].vrrp.state, State::Fault);
    n.handle(30, Event::TrackProcess { index: 1, up: true });
    assert_ne!(n.instances()[1].vrrp.state, State::Fault);
    // a stale index is ignored
    n.handle(
        40,
        Event::TrackProcess {
            index: 9,
            up: false,
        },
    );
    assert_eq!(
        n.process_states(),
        vec![("web".into(), true), ("gate".into(), true)]
    );
}

#[test]
fn a_reload_takes_the_tracked_processes_states_it_is_given() {
    let mut n = node(PROCS);
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: vec![(0, true), (1, true)],
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 100);
    // VI_1's weight changed to -50 and the quorum found lost at the reload.
    let text = PROCS.replace(
        "  track_process {\n    web\n  }",
        "  track_process {\n    web weight -50\n  }",
    );
    let l = load_str("t.conf", &text, &LoadOptions::default());
    let config = l.config.unwrap();
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
    n.handle(10, Event::ReloadBegin);
    n.handle(
        20,
        Event::Reload {
            config: Box::new(config),
            setup,
            links: Vec::new(),
            files: Vec::new(),
            processes: vec![(0, false), (1, true)],
        },
    );
    assert_eq!(n.instances()[0].vrrp.priority, 50);
    assert_eq!(
        n.instances()[2].vrrp.priority,
        100,
        "lost: weight 20 reverse adds nothing"
    );
    assert_eq!(
        n.process_states(),
        vec![("web".into(), false), ("gate".into(), true)]
    );
}

#[test]
fn the_instances_own_interface_going_down_is_a_fault_unless_dont_track_primary() {
    for (extra, faults) in [("", true), ("  dont_track_primary\n", false)] {
        let text = CONF.replace("  advert_int 1\n", &format!("  advert_int 1\n{extra}"));
        let mut n = node(&text);
        n.handle(
            0,
            Event::Start {
                links: vec![("eth0".into(), true)],
                files: Vec::new(),
                processes: Vec::new(),
            },
        );
        drain(&mut n);
        assert_eq!(n.instances()[0].vrrp.state, State::Backup);
        let link = |up| Event::Link {
            name: "eth0".into(),
            up,
        };
        n.handle(10, link(false));
        let state = n.instances()[0].vrrp.state;
        assert_eq!(state == State::Fault, faults, "{extra:?}: {state:?}");
        n.handle(20, link(true));
        assert_eq!(n.instances()[0].vrrp.state, State::Backup, "{extra:?}");
    }
}

#[test]
fn each_takeover_records_how_long_the_master_was_silent() {
    let mut n = node(CONF);
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    drain(&mut n);
    let takeovers = |n: &Node| n.instances()[0].stats.takeovers;
    // A master at 200 heard at 0.5 s, then silent: the takeover comes at
    // Master_Down_Interval (3 x 1 s + skew 0.61 s) after it.
    let p = packet(51, 200, 255);
    n.handle_packet(500_000, 0, &p, packet::peek_ipv4(&p));
    let mut now = 500_000;
    while n.instances()[0].vrrp.state != State::Master && now < 10_000_000 {
        now = n.poll_timeout().expect("a deadline");
        n.handle(now, Event::Timer);
    }
    let t = takeovers(&n);
    assert_eq!(t.count(), 1);
    assert_eq!(t.sum_us, now - 500_000);
    assert_eq!(t.counts[9], 1, "3.6 s: in the 5 s bucket: {t:?}");
    // Preempted by it again, then its priority 0: a takeover after Skew_Time.
    n.handle_packet(now + 10, 0, &p, packet::peek_ipv4(&p));
    assert_eq!(n.instances()[0].vrrp.state, State::Backup);
    let zero = packet(51, 0, 255);
    let at = now + 20;
    n.handle_packet(at, 0, &zero, packet::peek_ipv4(&zero));
    let skew = n.poll_timeout().expect("the skew deadline");
    n.handle(skew, Event::Timer);
    assert_eq!(n.instances()[0].vrrp.state, State::Master);
    let t = takeovers(&n);
    assert_eq!(t.count(), 2);
    assert_eq!(t.counts[7], 1, "Skew_Time 0.61 s: in the 1 s bucket: {t:?}");
    // A FAULT and back: no master heard in that spell, so no takeover
    // silence is made up from before it.
    n.handle(
        skew + 1,
        Event::Link {
            name: "eth0".into(),
            up: false,
        },
    );
    n.handle(
        skew + 2,
        Event::Link {
            name: "eth0".into(),
            up: true,
        },
    );
    let mut now = skew + 2;
    while n.instances()[0].vrrp.state != State::Master && now < skew + 10_000_000 {
        now = n.poll_timeout().expect("a deadline");
        n.handle(now, Event::Timer);
    }
    assert_eq!(n.instances()[0].vrrp.state, State::Master);
    assert_eq!(takeovers(&n).count(), 2);
}

#[test]
fn a_script_is_reported_running_from_its_start_to_its_result() {
    let mut n = node(CONF);
    n.handle(
        0,
        Event::Start {
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    assert_eq!(n.script_states(), vec![("chk".to_string(), true, false)]);
    n.handle(10, Event::ScriptStarted { index: 0 });
    assert_eq!(n.script_states(), vec![("chk".to_string(), true, true)]);
    n.handle(
        20,
        Event::Script {
            index: 0,
            success: true,
            detail: String::new(),
        },
    );
    assert_eq!(n.script_states(), vec![("chk".to_string(), true, false)]);
    // A stale index (from before a reload) changes nothing.
    n.handle(30, Event::ScriptStarted { index: 7 });
    assert_eq!(n.script_states().len(), 1);
}
