//! The pure IPVS core: desired table from a config, and the diff's promises
//! (applying diff(a, b) to b yields a; diff(a, a) is empty; one change is
//! one operation; foreign services are left alone).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ipvs_sys::{Dest, ForwardMethod, Netmask, Protocol, Service, ServiceFlags, ServiceKey};
use ipvsdir::config::{LoadOptions, load_str};
use ipvsdir::lvs::desired::{AllAlive, AllDown, Health, QuorumMemory, RsHealth, desired};
use ipvsdir::lvs::diff::apply_to;
use ipvsdir::lvs::{Op, Table, VirtualService, diff};
use proptest::prelude::*;

fn config(text: &str) -> ipvsdir::config::model::Config {
    let l = load_str("t.conf", text, &LoadOptions::default());
    l.config.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

fn svc(port: u16, sched: &str) -> Service {
    Service {
        key: ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port,
        },
        sched_name: sched.into(),
        flags: ServiceFlags(0),
        timeout: 0,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
        pe_name: None,
    }
}

fn dest(last: u8, weight: u32) -> Dest {
    Dest {
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 1, last)),
        port: 80,
        fwd: ForwardMethod::Masq,
        weight,
        u_thresh: 0,
        l_thresh: 0,
        tunnel: None,
    }
}

prop_compose! {
    fn table()(services in proptest::collection::btree_map(
        1u16..8,
        (prop::sample::select(vec!["rr", "wrr", "wlc"]), proptest::collection::btree_map(1u8..10, 0u32..4, 0..5)),
        0..5,
    )) -> Table {
        let mut t = Table::default();
        for (port, (sched, dests)) in services {
            let mut vs = VirtualService::new(svc(port, sched));
            for (last, w) in dests {
                let d = dest(last, w);
                vs.dests.insert((d.addr, d.port), d);
            }
            t.services.insert(vs.service.key, vs);
        }
        t
    }
}

fn keys(t: &Table) -> BTreeSet<ServiceKey> {
    t.services.keys().copied().collect()
}

proptest! {
    #[test]
    fn applying_the_diff_yields_the_desired_table(a in table(), b in table()) {
        let ops = diff(&a, &b, &keys(&b));
        let mut t = b.clone();
        apply_to(&mut t, &ops);
        prop_assert_eq!(t, a);
    }

    #[test]
    fn diff_of_a_table_with_itself_is_empty(a in table()) {
        prop_assert!(diff(&a, &a, &keys(&a)).is_empty());
    }

    #[test]
    fn services_come_before_their_dests_and_deletes_last(a in table(), b in table()) {
        let ops = diff(&a, &b, &keys(&b));
        let rank = |op: &Op| match op {
            Op::AddService(_) | Op::EditService(_) => 0,
            Op::AddDest(..) | Op::EditDest(..) => 1,
            Op::DelDest(..) => 2,
            Op::DelService(_) => 3,
        };
        prop_assert!(ops.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));
        // deterministic
        prop_assert_eq!(ops, diff(&a, &b, &keys(&b)));
    }
}

#[test]
fn one_changed_weight_is_one_set_dest() {
    let mut a = Table::default();
    let mut vs = VirtualService::new(svc(80, "wrr"));
    for i in 1..=10 {
        let d = dest(i, 1);
        vs.dests.insert((d.addr, d.port), d);
    }
    a.services.insert(vs.service.key, vs);
    let mut b = a.clone();
    let key = *b.services.keys().next().unwrap();
    let d = dest(5, 1);
    b.services
        .get_mut(&key)
        .unwrap()
        .dests
        .get_mut(&(d.addr, d.port))
        .unwrap()
        .weight = 7;
    let ops = diff(&b, &a, &keys(&a));
    assert_eq!(ops, vec![Op::EditDest(key, dest(5, 7))]);
}

#[test]
fn foreign_services_are_left_alone_and_removed_owned_ones_deleted() {
    let mut ours = Table::default();
    let vs = VirtualService::new(svc(80, "rr"));
    ours.services.insert(vs.service.key, vs);
    let mut actual = ours.clone();
    let foreign = VirtualService::new(svc(8080, "rr"));
    actual.services.insert(foreign.service.key, foreign.clone());
    assert!(diff(&ours, &actual, &keys(&ours)).is_empty());
    // Once we owned 8080 (e.g. before a reload), leaving the config deletes it.
    let owned: BTreeSet<_> = [svc(80, "rr").key, foreign.service.key].into();
    assert_eq!(
        diff(&ours, &actual, &owned),
        vec![Op::DelService(foreign.service.key)]
    );
}

const NAT: &str = "virtual_server 10.0.0.1 80 {\n lb_algo wrr\n lb_kind NAT\n persistence_timeout 300\n persistence_granularity 255.255.255.0\n quorum 4\n hysteresis 1\n sorry_server 10.0.9.9 8080\n real_server 10.0.1.1 80 {\n  weight 3\n }\n real_server 10.0.1.2 80 {\n  weight 2\n  inhibit_on_failure\n }\n}\n";

#[test]
fn desired_table_from_config() {
    let t = desired(&config(NAT), &AllAlive, &mut QuorumMemory::default());
    let (key, vs) = t.services.iter().next().unwrap();
    assert!(matches!(key, ServiceKey::Addr { port: 80, .. }));
    assert_eq!(vs.service.sched_name, "wrr");
    assert_eq!(vs.service.timeout, 300);
    assert_eq!(
        vs.service.flags.0 & ServiceFlags::PERSISTENT.0,
        ServiceFlags::PERSISTENT.0
    );
    assert_eq!(
        vs.service.netmask,
        Netmask::V4(Ipv4Addr::new(255, 255, 255, 0))
    );
    let weights: Vec<u32> = vs.dests.values().map(|d| d.weight).collect();
    assert_eq!(weights, vec![3, 2]);
}

struct Down(IpAddr);
impl Health for Down {
    fn real_server(
        &self,
        _: &ipvsdir::config::model::VirtualServer,
        rs: &ipvsdir::config::model::RealServer,
    ) -> RsHealth {
        RsHealth {
            alive: rs.addr != self.0,
            weight: None,
        }
    }
}

#[test]
fn inhibit_quorum_hysteresis_and_sorry_server() {
    let cfg = config(NAT);
    let mut q = QuorumMemory::default();
    // All alive: live weight 5 >= quorum 4.
    let t = desired(&cfg, &AllAlive, &mut q);
    assert_eq!(t.services.values().next().unwrap().dests.len(), 2);
    // 10.0.1.2 down: inhibited to weight 0; live weight 3 >= 4 - 1 keeps quorum.
    let t = desired(&cfg, &Down("10.0.1.2".parse().unwrap()), &mut q);
    let d: Vec<(String, u32)> = t
        .services
        .values()
        .next()
        .unwrap()
        .dests
        .values()
        .map(|d| (d.addr.to_string(), d.weight))
        .collect();
    assert_eq!(d, vec![("10.0.1.1".into(), 3), ("10.0.1.2".into(), 0)]);
    // Everything down: quorum lost, only the sorry server stands.
    let t = desired(&cfg, &AllDown, &mut q);
    let d: Vec<(String, u16, u32)> = t
        .services
        .values()
        .next()
        .unwrap()
        .dests
        .values()
        .map(|d| (d.addr.to_string(), d.port, d.weight))
        .collect();
    assert_eq!(d, vec![("10.0.9.9".into(), 8080, 1)]);
    // Back to weight 3: below quorum + hysteresis (5), still the sorry server.
    let t = desired(&cfg, &Down("10.0.1.2".parse().unwrap()), &mut q);
    assert_eq!(t.services.values().next().unwrap().dests.len(), 1);
    // Weight 5: quorum regained, real servers back.
    let t = desired(&cfg, &AllAlive, &mut q);
    assert_eq!(t.services.values().next().unwrap().dests.len(), 2);
}

#[test]
fn group_and_fwmark_and_ipv6_services() {
    let cfg = config(
        "virtual_server_group G {\n 10.0.0.1-3 80\n fwmark 7\n}\nvirtual_server group G {\n lb_algo sh\n sh-port\n real_server 10.0.1.1 80 {\n }\n}\nvirtual_server ae00::1 443 {\n persistence_timeout 60\n persistence_granularity 64\n real_server ae00::10 443 {\n }\n}\n",
    );
    let t = desired(&cfg, &AllAlive, &mut QuorumMemory::default());
    assert_eq!(t.services.len(), 5);
    let v6 = t
        .services
        .values()
        .find(|s| {
            matches!(
                s.service.key,
                ServiceKey::Addr {
                    addr: IpAddr::V6(_),
                    ..
                }
            )
        })
        .unwrap();
    assert_eq!(v6.service.netmask, Netmask::V6Prefix(64));
    let sh = t
        .services
        .values()
        .find(|s| matches!(s.service.key, ServiceKey::Fwmark { mark: 7, .. }))
        .unwrap();
    assert_eq!(
        sh.service.flags.0 & ServiceFlags::SCHED2.0,
        ServiceFlags::SCHED2.0
    );
}
