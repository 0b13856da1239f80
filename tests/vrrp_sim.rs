//! Deterministic simulation of VRRP directors on a lossy LAN: virtual time,
//! random loss, delay, partitions, kills and restarts, thousands of seeds.
//! Invariants checked:
//! - after the network heals and one Master_Down_Interval (+ an advert)
//!   passes, exactly one master per VRID, and it has the highest effective
//!   priority when preemption is on;
//! - a backup never becomes master while it keeps hearing a master of
//!   higher or equal priority;
//! - a killed master is replaced within Master_Down_Interval + one advert.
//!
//! This drives one instance's state machine per director; whole nodes
//! (the `vrrp::node` core the daemon runs: sync groups, trackers, handoff,
//! reload) are simulated in tests/vrrp_node_sim.rs and replayed from
//! recorded fixtures in tests/vrrp_replay.rs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::time::Duration;

use ipvsdir::config::model::InitialState;
use ipvsdir::vrrp::state::{Action, Input, Micros, Params, State, Vrrp};

/// xorshift64*: small, deterministic, good enough for schedules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[derive(Debug, Clone)]
enum Ev {
    Deliver {
        to: usize,
        src: IpAddr,
        priority: u8,
        interval: Duration,
    },
    Timer {
        node: usize,
        at: Micros,
    },
}

struct Node {
    vrrp: Vrrp,
    alive: bool,
    /// Last time it heard a non-zero advert that keeps a backup quiet.
    heard_superior: Option<Micros>,
}

struct Sim {
    now: Micros,
    seq: u64,
    queue: BinaryHeap<Reverse<(Micros, u64, usize)>>,
    events: Vec<Ev>,
    nodes: Vec<Node>,
    rng: Rng,
    loss: f64,
    /// partition[i] = side of node i; adverts only cross within a side.
    side: Vec<u8>,
    advert: Duration,
}

impl Sim {
    fn new(seed: u64, priorities: &[u8], version: u8, advert: Duration, preempt: bool) -> Sim {
        let nodes = priorities
            .iter()
            .enumerate()
            .map(|(i, &p)| Node {
                vrrp: Vrrp::new(Params {
                    version,
                    priority: p,
                    advert_int: advert,
                    preempt,
                    preempt_delay: Duration::ZERO,
                    initial: InitialState::Backup,
                    primary_ip: format!("10.0.0.{}", i + 1).parse().unwrap(),
                    late_advert_warn: None,
                }),
                alive: false,
                heard_superior: None,
            })
            .collect::<Vec<_>>();
        let n = nodes.len();
        Sim {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            nodes,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            loss: 0.0,
            side: vec![0; n],
            advert,
        }
    }

    fn push(&mut self, at: Micros, ev: Ev) {
        self.seq += 1;
        self.events.push(ev);
        self.queue
            .push(Reverse((at, self.seq, self.events.len() - 1)));
    }

    fn arm(&mut self, node: usize) {
        if let Some(at) = self.nodes[node].vrrp.deadline() {
            self.push(at, Ev::Timer { node, at });
        }
    }

    fn act(&mut self, node: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => {
                    let src = self.nodes[node].vrrp.params.primary_ip;
                    let interval = self.advert;
                    for to in 0..self.nodes.len() {
                        if to == node
                            || self.side[to] != self.side[node]
                            || self.rng.chance(self.loss)
                        {
                            continue;
                        }
                        let delay = 100 + self.rng.below(3_000);
                        self.push(
                            self.now + delay,
                            Ev::Deliver {
                                to,
                                src,
                                priority,
                                interval,
                            },
                        );
                    }
                }
                Action::Transition {
                    from: State::Backup,
                    to: State::Master,
                } => {
                    // Invariant: no takeover while hearing a superior master.
                    let n = &self.nodes[node];
                    if let Some(h) = n.heard_superior {
                        let mdi = n.vrrp.master_down_interval().as_micros() as Micros;
                        assert!(
                            self.now >= h + mdi,
                            "node {node} took over at {} but heard a superior master at {h} (MDI {mdi})",
                            self.now
                        );
                    }
                }
                _ => {}
            }
        }
        self.arm(node);
    }

    fn start(&mut self, node: usize) {
        let p = self.nodes[node].vrrp.params.clone();
        self.nodes[node] = Node {
            vrrp: Vrrp::new(p),
            alive: true,
            heard_superior: None,
        };
        let a = self.nodes[node].vrrp.handle(self.now, Input::Start);
        self.act(node, a);
    }

    fn kill(&mut self, node: usize) {
        self.nodes[node].alive = false;
    }

    fn run_until(&mut self, end: Micros) {
        while let Some(Reverse((at, _, idx))) = self.queue.peek().copied() {
            if at > end {
                break;
            }
            self.queue.pop();
            self.now = at;
            match self.events[idx].clone() {
                Ev::Timer { node, at } => {
                    let n = &mut self.nodes[node];
                    if !n.alive || n.vrrp.deadline() != Some(at) {
                        continue; // stale timer
                    }
                    let a = n.vrrp.handle(self.now, Input::Timer);
                    self.act(node, a);
                }
                Ev::Deliver {
                    to,
                    src,
                    priority,
                    interval,
                } => {
                    let n = &mut self.nodes[to];
                    if !n.alive {
                        continue;
                    }
                    if priority == 0 {
                        n.heard_superior = None; // the master said it is leaving
                    } else if priority >= n.vrrp.priority && n.vrrp.state == State::Backup {
                        n.heard_superior = Some(self.now);
                    }
                    let a = n.vrrp.handle(
                        self.now,
                        Input::Advert {
                            src,
                            priority,
                            interval,
                        },
                    );
                    self.act(to, a);
                }
            }
        }
        self.now = end;
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].vrrp.state == State::Master)
            .collect()
    }

    fn max_mdi(&self) -> Micros {
        self.nodes
            .iter()
            .map(|n| n.vrrp.master_down_interval().as_micros() as Micros)
            .max()
            .unwrap_or(0)
    }

    /// The node the RFC elects among the living: highest priority, then address.
    fn expected_master(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive)
            .max_by_key(|&i| {
                (
                    self.nodes[i].vrrp.priority,
                    self.nodes[i].vrrp.params.primary_ip,
                )
            })
            .unwrap()
    }
}

fn scenario(seed: u64) -> (Vec<u8>, u8, Duration, bool) {
    let mut r = Rng(seed ^ 0xDEAD_BEEF);
    let n = 2 + r.below(3) as usize;
    let mut prios: Vec<u8> = (0..n).map(|_| 50 + r.below(200) as u8).collect();
    if r.chance(0.3) {
        prios[1] = prios[0]; // equal priorities: the address decides
    }
    let v3 = r.chance(0.5);
    let advert = if v3 {
        Duration::from_millis(100 * (1 + r.below(10)))
    } else {
        Duration::from_secs(1)
    };
    (prios, if v3 { 3 } else { 2 }, advert, r.chance(0.8))
}

#[test]
fn one_master_after_chaos_heals() {
    for seed in 0..1500u64 {
        let (prios, version, advert, preempt) = scenario(seed);
        let mut sim = Sim::new(seed, &prios, version, advert, preempt);
        let n = prios.len();
        for i in 0..n {
            sim.start(i);
        }
        let step = advert.as_micros() as Micros;
        // Chaos: loss, partitions, kills and restarts, for 40 advert intervals.
        for _ in 0..40 {
            sim.loss = [0.0, 0.1, 0.5, 1.0][sim.rng.below(4) as usize];
            for i in 0..n {
                if sim.rng.chance(0.1) {
                    sim.side[i] = sim.rng.below(2) as u8;
                }
                if sim.rng.chance(0.05) {
                    if sim.nodes[i].alive {
                        sim.kill(i);
                    } else {
                        sim.start(i);
                    }
                }
            }
            let jitter = sim.rng.below(step);
            let end = sim.now + step / 2 + jitter;
            sim.run_until(end);
        }
        // Heal: everyone up, one LAN, no loss; then one MDI + an advert and then some.
        sim.loss = 0.0;
        sim.side = vec![0; n];
        for i in 0..n {
            if !sim.nodes[i].alive {
                sim.start(i);
            }
        }
        let settle = 2 * sim.max_mdi() + 2 * step + 10_000;
        sim.run_until(sim.now + settle);
        let masters = sim.masters();
        assert_eq!(
            masters.len(),
            1,
            "seed {seed}: masters {masters:?} prios {prios:?} v{version} preempt {preempt}"
        );
        if preempt {
            // The highest priority wins; among equals the RFC keeps whichever
            // is master (a backup does not preempt an equal), so any of them.
            let best = sim.nodes[sim.expected_master()].vrrp.priority;
            assert_eq!(
                sim.nodes[masters[0]].vrrp.priority, best,
                "seed {seed}: prios {prios:?}"
            );
        }
        // Stays stable.
        sim.run_until(sim.now + 10 * step);
        assert_eq!(sim.masters(), masters, "seed {seed}: flapped after healing");
    }
}

#[test]
fn killed_master_is_replaced_within_master_down_interval_plus_one_advert() {
    for seed in 0..1500u64 {
        let (prios, version, advert, preempt) = scenario(seed);
        let mut sim = Sim::new(seed, &prios, version, advert, preempt);
        for i in 0..prios.len() {
            sim.start(i);
        }
        let step = advert.as_micros() as Micros;
        sim.run_until(2 * sim.max_mdi() + 3 * step);
        let m = sim.masters();
        assert_eq!(m.len(), 1, "seed {seed}");
        // Kill at a random phase of the advert cycle.
        let phase = sim.rng.below(step);
        sim.run_until(sim.now + phase);
        sim.kill(m[0]);
        let killed_at = sim.now;
        let successor = sim.expected_master();
        let bound =
            sim.nodes[successor].vrrp.master_down_interval().as_micros() as Micros + step + 5_000;
        let mut t = killed_at;
        while sim.masters().is_empty() && t < killed_at + 3 * bound {
            t += 1_000;
            sim.run_until(t);
        }
        let took = t - killed_at;
        assert!(!sim.masters().is_empty(), "seed {seed}: no new master");
        assert!(
            took <= bound,
            "seed {seed}: takeover took {took} us > bound {bound} us"
        );
    }
}

#[test]
fn shutdown_hands_over_after_skew_time() {
    let mut sim = Sim::new(7, &[200, 100], 2, Duration::from_secs(1), true);
    sim.start(0);
    sim.start(1);
    sim.run_until(10_000_000);
    assert_eq!(sim.masters(), vec![0]);
    let a = sim.nodes[0].vrrp.handle(sim.now, Input::Shutdown);
    sim.act(0, a);
    sim.kill(0);
    let t0 = sim.now;
    let skew = sim.nodes[1].vrrp.skew_time().as_micros() as Micros;
    sim.run_until(t0 + skew + 10_000);
    assert_eq!(
        sim.masters(),
        vec![1],
        "priority 0 advert: takeover after Skew_Time"
    );
}
