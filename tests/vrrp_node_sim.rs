//! Deterministic simulation of whole VRRP nodes (`vrrp::node`, the core the
//! daemon runs) on a simulated segment: 2-3 directors, each a complete node
//! built from keepalived.conf text, exchanging the encoded adverts their
//! effects carry (received through the node's real receive path: peek,
//! screen, decode, validate). Loss, partitions, kills and restarts, sync
//! groups, trackers with weights, the stop's handoff and reloads.
//! Invariants checked:
//! - after the segment heals: one master per VRID, the highest effective
//!   priority among the living when preempting, and sync-group members of
//!   one director in the same state;
//! - a stop (SIGTERM) hands over: the VIP is never unowned longer than the
//!   successor's Skew_Time (make-before-break: not at all);
//! - a reload with unchanged instances causes no transition and no VIP change;
//! - script results (however many, whenever) never move a master's adverts
//!   off their cadence.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ipvsdir::config::model::Config;
use ipvsdir::config::{LoadOptions, load_str};
use ipvsdir::vrrp::node::{Effect, Event, Iface, InstanceSetup, Node, NodeOptions};
use ipvsdir::vrrp::packet;
use ipvsdir::vrrp::state::{Micros, State};

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

/// What a simulated director runs.
#[derive(Debug, Clone)]
struct Spec {
    priority: u8,
    version: u8,
    /// advert_int in milliseconds (v2: whole seconds).
    advert_ms: u64,
    preempt: bool,
    /// Two instances (VRID 51 and 52) in one sync group.
    sync_group: bool,
    /// A vrrp_script `chk` tracked with this weight (0: fault when down).
    script_weight: Option<i32>,
    /// track_interface eth1 (weight 0: fault when down).
    track_link: bool,
    strict: bool,
}

const VIPS: [&str; 2] = ["10.0.0.100", "10.0.0.101"];

fn conf_text(s: &Spec) -> String {
    let mut out = String::from("global_defs {\n  router_id sim\n}\n");
    if let Some(w) = s.script_weight {
        out += &format!(
            "vrrp_script chk {{\n  script \"/bin/true\"\n  interval 1\n  weight {w}\n}}\n"
        );
    }
    let names: &[&str] = if s.sync_group {
        &["VI_1", "VI_2"]
    } else {
        &["VI_1"]
    };
    if s.sync_group {
        out += "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n";
    }
    let advert = if s.version == 2 {
        format!("{}", s.advert_ms / 1000)
    } else {
        format!("{:.2}", s.advert_ms as f64 / 1000.0)
    };
    for (n, name) in names.iter().enumerate() {
        out += &format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {}\n  priority {}\n  advert_int {advert}\n  version {}\n",
            51 + n,
            s.priority,
            s.version
        );
        if !s.preempt {
            out += "  nopreempt\n";
        }
        if s.strict {
            out += "  strict_mode on\n";
        }
        if s.script_weight.is_some() {
            out += "  track_script {\n    chk\n  }\n";
        }
        if s.track_link {
            out += "  track_interface {\n    eth1\n  }\n";
        }
        out += &format!("  virtual_ipaddress {{\n    {}/24\n  }}\n}}\n", VIPS[n]);
    }
    out
}

fn load(text: &str) -> Config {
    let l = load_str("sim.conf", text, &LoadOptions::default());
    match l.config {
        Some(c) => c,
        None => panic!("config does not load: {:?}\n{text}", l.diagnostics),
    }
}

fn setup(config: &Config, addr: Ipv4Addr) -> Vec<InstanceSetup> {
    config
        .vrrp_instances
        .iter()
        .map(|_| InstanceSetup {
            src: IpAddr::V4(addr),
            iface: Iface {
                name: "eth0".into(),
                index: 2,
                mac: [2, 0, 0, 0, 0, addr.octets()[3]],
            },
            socket: 0,
        })
        .collect()
}

struct Director {
    config: Config,
    addr: Ipv4Addr,
    node: Node,
    alive: bool,
    /// VIPs held, per instance (from the Vips effects).
    holds: Vec<bool>,
}

/// Something the segment observed, for the invariants.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Advert {
        dir: usize,
        instance: usize,
        priority: u8,
    },
    Transition {
        dir: usize,
        instance: usize,
        state: State,
    },
    Vips {
        dir: usize,
        instance: usize,
        add: bool,
    },
}

/// A packet on the wire: (arrival, sequence, to, bytes).
type InFlight = (Micros, u64, usize, Vec<u8>);

struct Segment {
    now: Micros,
    seq: u64,
    /// (when, seq, to, packet bytes).
    queue: BinaryHeap<Reverse<InFlight>>,
    dirs: Vec<Director>,
    rng: Rng,
    loss: f64,
    /// side[i]: adverts only cross within a side.
    side: Vec<u8>,
    seen: Vec<(Micros, Seen)>,
    epoch: Instant,
    /// last_delivery[from][to]: when the last packet on that path arrives.
    last_delivery: Vec<Vec<Micros>>,
}

impl Segment {
    fn new(seed: u64, specs: &[Spec]) -> Segment {
        let epoch = Instant::now();
        let dirs = specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let config = load(&conf_text(s));
                let addr = Ipv4Addr::new(10, 0, 0, 1 + i as u8);
                let node = Node::new(&config, setup(&config, addr), NodeOptions::default(), epoch);
                Director {
                    holds: vec![false; config.vrrp_instances.len()],
                    config,
                    addr,
                    node,
                    alive: false,
                }
            })
            .collect::<Vec<_>>();
        let n = dirs.len();
        Segment {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            dirs,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            loss: 0.0,
            side: vec![0; n],
            seen: Vec::new(),
            epoch,
            last_delivery: vec![vec![0; n]; n],
        }
    }

    /// Feeds an event to director d and carries its effects out.
    fn handle(&mut self, d: usize, ev: Event) {
        if !self.dirs[d].alive {
            return;
        }
        self.dirs[d].node.handle(self.now, ev);
        self.effects(d);
    }

    fn effects(&mut self, d: usize) {
        while let Some(e) = self.dirs[d].node.poll_effect() {
            match e {
                Effect::Advert {
                    instance,
                    priority,
                    packets,
                    ..
                } => {
                    self.seen.push((
                        self.now,
                        Seen::Advert {
                            dir: d,
                            instance,
                            priority,
                        },
                    ));
                    for (bytes, _) in packets {
                        for to in 0..self.dirs.len() {
                            if to == d
                                || self.side[to] != self.side[d]
                                || self.rng.chance(self.loss)
                            {
                                continue;
                            }
                            // A LAN keeps one sender's packets in order.
                            let last = &mut self.last_delivery[d][to];
                            let at = (self.now + 100 + self.rng.below(2_000)).max(*last);
                            *last = at;
                            self.seq += 1;
                            self.queue.push(Reverse((at, self.seq, to, bytes.clone())));
                        }
                    }
                }
                Effect::Vips { instance, add, .. } => {
                    if let Some(h) = self.dirs[d].holds.get_mut(instance) {
                        *h = add;
                    }
                    self.seen.push((
                        self.now,
                        Seen::Vips {
                            dir: d,
                            instance,
                            add,
                        },
                    ));
                }
                Effect::Transition {
                    instance, state, ..
                } => self.seen.push((
                    self.now,
                    Seen::Transition {
                        dir: d,
                        instance,
                        state,
                    },
                )),
                Effect::Stopped => self.dirs[d].alive = false,
                Effect::Announce { .. }
                | Effect::Notify { .. }
                | Effect::FifoLine(_)
                | Effect::Mail(_)
                | Effect::OpenInterface { .. }
                | Effect::WriteReport
                | Effect::Reloaded => {}
            }
        }
    }

    fn start(&mut self, d: usize) {
        let dir = &mut self.dirs[d];
        dir.node = Node::new(
            &dir.config,
            setup(&dir.config, dir.addr),
            NodeOptions::default(),
            self.epoch,
        );
        dir.alive = true;
        dir.holds = vec![false; dir.config.vrrp_instances.len()];
        self.handle(
            d,
            Event::Start {
                links: Vec::new(),
                files: Vec::new(),
                processes: Vec::new(),
            },
        );
    }

    /// kill -9: no more effects; the VIPs it held stay on its (dead) box
    /// but nobody answers for them.
    fn kill(&mut self, d: usize) {
        self.dirs[d].alive = false;
        self.dirs[d].holds.iter_mut().for_each(|h| *h = false);
    }

    fn run_until(&mut self, end: Micros) {
        loop {
            let packet = self.queue.peek().map(|Reverse((at, ..))| *at);
            let timer = (0..self.dirs.len())
                .filter(|&d| self.dirs[d].alive)
                .filter_map(|d| self.dirs[d].node.poll_timeout().map(|t| (t, d)))
                .min();
            let next = match (packet, timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if packet == Some(next) {
                let Some(Reverse((_, _, to, bytes))) = self.queue.pop() else {
                    break;
                };
                if self.dirs[to].alive {
                    let peek = packet::peek_ipv4(&bytes);
                    self.dirs[to].node.handle_packet(self.now, 0, &bytes, peek);
                    self.effects(to);
                }
            } else if let Some((_, d)) = timer {
                self.handle(d, Event::Timer);
            }
        }
        self.now = self.now.max(end);
    }

    fn state(&self, d: usize, i: usize) -> State {
        self.dirs[d]
            .node
            .instance(i)
            .map_or(State::Init, |x| x.vrrp.state)
    }

    fn priority(&self, d: usize, i: usize) -> u8 {
        self.dirs[d].node.instance(i).map_or(0, |x| x.vrrp.priority)
    }

    fn masters(&self, i: usize) -> Vec<usize> {
        (0..self.dirs.len())
            .filter(|&d| self.dirs[d].alive && self.state(d, i) == State::Master)
            .collect()
    }

    fn max_mdi(&self) -> Micros {
        self.dirs
            .iter()
            .filter_map(|d| d.node.instance(0))
            .map(|x| x.vrrp.master_down_interval().as_micros() as Micros)
            .max()
            .unwrap_or(0)
    }

    /// How long nobody held instance i's VIP, at most, within [from, to]
    /// (from the Vips effects of the living).
    fn longest_unowned(&self, i: usize, from: Micros, to: Micros) -> Micros {
        let mut holds: Vec<bool> = vec![false; self.dirs.len()];
        let mut gap_start: Option<Micros> = None;
        let mut longest = 0;
        for (t, s) in &self.seen {
            if let Seen::Vips { dir, instance, add } = s
                && *instance == i
            {
                holds[*dir] = *add;
                let owned = holds.iter().any(|h| *h);
                if *t >= from && *t <= to {
                    match (owned, gap_start) {
                        (false, None) => gap_start = Some(*t),
                        (true, Some(g)) => {
                            longest = longest.max(t - g);
                            gap_start = None;
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(g) = gap_start {
            longest = longest.max(to - g);
        }
        longest
    }
}

fn spec(priority: u8) -> Spec {
    Spec {
        priority,
        version: 2,
        advert_ms: 1000,
        preempt: true,
        sync_group: false,
        script_weight: None,
        track_link: false,
        strict: false,
    }
}

/// Random directors sharing one shape (version, interval, sync group, trackers).
fn scenario(seed: u64) -> Vec<Spec> {
    let mut r = Rng(seed ^ 0xDEAD_BEEF);
    let n = 2 + r.below(2) as usize;
    let v3 = r.chance(0.5);
    let advert_ms = if v3 { 100 * (1 + r.below(10)) } else { 1000 };
    let sync_group = r.chance(0.4);
    let script_weight = if r.chance(0.5) {
        Some([-60, -20, 0, 30][r.below(4) as usize])
    } else {
        None
    };
    let track_link = r.chance(0.3);
    let preempt = r.chance(0.8);
    let mut specs: Vec<Spec> = (0..n)
        .map(|_| Spec {
            priority: 50 + r.below(150) as u8,
            version: if v3 { 3 } else { 2 },
            advert_ms,
            preempt,
            sync_group,
            script_weight,
            track_link,
            strict: false,
        })
        .collect();
    if r.chance(0.3) {
        specs[1].priority = specs[0].priority; // equal priorities: the address decides
    }
    specs
}

#[test]
fn whole_nodes_one_master_per_vrid_after_chaos_heals() {
    for seed in 0..300u64 {
        let specs = scenario(seed);
        let mut seg = Segment::new(seed, &specs);
        let n = specs.len();
        let instances = if specs[0].sync_group { 2 } else { 1 };
        for d in 0..n {
            seg.start(d);
        }
        let step = specs[0].advert_ms * 1000;
        // Chaos for 40 advert intervals: loss, partitions, kills, stops
        // and restarts, script results and link changes.
        for _ in 0..40 {
            seg.loss = [0.0, 0.1, 0.5, 1.0][seg.rng.below(4) as usize];
            for (d, spec) in specs.iter().enumerate() {
                if seg.rng.chance(0.1) {
                    seg.side[d] = seg.rng.below(2) as u8;
                }
                if seg.rng.chance(0.05) {
                    if seg.dirs[d].alive && seg.rng.chance(0.5) {
                        seg.kill(d);
                    } else if seg.dirs[d].alive {
                        // SIGTERM: hands over, then stops (Effect::Stopped).
                        seg.handle(d, Event::Stop);
                    } else {
                        seg.start(d);
                    }
                }
                if spec.script_weight.is_some() && seg.rng.chance(0.3) {
                    let success = seg.rng.chance(0.5);
                    seg.handle(
                        d,
                        Event::Script {
                            index: 0,
                            success,
                            detail: String::new(),
                        },
                    );
                }
                if spec.track_link && seg.rng.chance(0.1) {
                    let up = seg.rng.chance(0.5);
                    seg.handle(
                        d,
                        Event::Link {
                            name: "eth1".into(),
                            up,
                        },
                    );
                }
            }
            let end = seg.now + step / 2 + seg.rng.below(step);
            seg.run_until(end);
        }
        // Heal: everyone up, trackers good, one segment, no loss.
        seg.loss = 0.0;
        seg.side = vec![0; n];
        // Stops under way end (a handoff waits 1.5 s at most).
        seg.run_until(seg.now + 2_000_000);
        for (d, spec) in specs.iter().enumerate() {
            if !seg.dirs[d].alive {
                seg.start(d);
            }
            if spec.script_weight.is_some() {
                // rise 1: one success is enough
                seg.handle(
                    d,
                    Event::Script {
                        index: 0,
                        success: true,
                        detail: String::new(),
                    },
                );
            }
            if spec.track_link {
                seg.handle(
                    d,
                    Event::Link {
                        name: "eth1".into(),
                        up: true,
                    },
                );
            }
        }
        let settle = 2 * seg.max_mdi() + 2 * step + 10_000;
        seg.run_until(seg.now + settle);
        for i in 0..instances {
            let masters = seg.masters(i);
            assert_eq!(
                masters.len(),
                1,
                "seed {seed}: instance {i}: masters {masters:?} specs {specs:?}"
            );
            if specs[0].preempt {
                let best = (0..n).map(|d| seg.priority(d, i)).max().unwrap_or(0);
                assert_eq!(
                    seg.priority(masters[0], i),
                    best,
                    "seed {seed}: instance {i}: specs {specs:?}"
                );
            }
            assert!(
                seg.dirs[masters[0]].holds[i],
                "seed {seed}: the master holds the VIP"
            );
            for d in (0..n).filter(|&d| d != masters[0]) {
                assert!(
                    !seg.dirs[d].holds[i],
                    "seed {seed}: backup {d} holds VIP {i}"
                );
            }
        }
        if instances == 2 {
            for d in 0..n {
                assert_eq!(
                    seg.state(d, 0),
                    seg.state(d, 1),
                    "seed {seed}: director {d}'s sync group is split"
                );
            }
        }
        // Stays stable.
        let before = seg.masters(0);
        seg.run_until(seg.now + 10 * step);
        assert_eq!(seg.masters(0), before, "seed {seed}: flapped after healing");
    }
}

/// Runs two directors until d0 (the higher priority) is master, then stops it.
fn handoff(specs: &[Spec], seed: u64) -> (Segment, Micros) {
    let mut seg = Segment::new(seed, specs);
    for d in 0..specs.len() {
        seg.start(d);
    }
    seg.run_until(2 * seg.max_mdi() + 3_000_000);
    assert_eq!(seg.masters(0), vec![0]);
    assert!(seg.dirs[0].holds[0]);
    let stop_at = seg.now;
    seg.handle(0, Event::Stop);
    seg.run_until(stop_at + 5_000_000);
    (seg, stop_at)
}

#[test]
fn a_stop_hands_over_without_leaving_the_vip_unowned() {
    for seed in 0..50u64 {
        let mut r = Rng(seed + 1);
        let v3 = r.chance(0.5);
        let mut specs = vec![spec(150 + r.below(100) as u8), spec(50 + r.below(99) as u8)];
        for s in &mut specs {
            s.version = if v3 { 3 } else { 2 };
            s.advert_ms = if v3 { 100 * (1 + r.below(10)) } else { 1000 };
            s.sync_group = seed % 3 == 0;
        }
        let (seg, stop_at) = handoff(&specs, seed);
        assert!(!seg.dirs[0].alive, "seed {seed}: the stop completed");
        assert!(!seg.dirs[0].holds[0], "seed {seed}: VIPs released");
        assert_eq!(seg.masters(0), vec![1], "seed {seed}: the backup took over");
        let skew = seg.dirs[1]
            .node
            .instance(0)
            .map(|x| x.vrrp.skew_time().as_micros() as Micros)
            .unwrap_or(0);
        for i in 0..seg.dirs[1].holds.len() {
            let gap = seg.longest_unowned(i, stop_at, seg.now);
            assert!(
                gap <= skew,
                "seed {seed}: VIP {i} unowned for {gap} us > Skew_Time {skew} us"
            );
            assert_eq!(gap, 0, "seed {seed}: make-before-break leaves no gap");
        }
        // The stopping master sent priority 0 and kept its VIPs until the
        // successor's advert: its VIP removal comes after the successor's add.
        let removed = seg.seen.iter().find_map(|(t, s)| match s {
            Seen::Vips {
                dir: 0,
                instance: 0,
                add: false,
            } => Some(*t),
            _ => None,
        });
        let added = seg.seen.iter().find_map(|(t, s)| match s {
            Seen::Vips {
                dir: 1,
                instance: 0,
                add: true,
            } => Some(*t),
            _ => None,
        });
        assert!(
            matches!((removed, added), (Some(r), Some(a)) if a <= r),
            "seed {seed}: removed {removed:?} added {added:?}"
        );
    }
}

#[test]
fn strict_mode_stop_removes_the_vips_at_once_and_the_backup_follows_within_skew_time() {
    let mut specs = vec![spec(200), spec(100)];
    for s in &mut specs {
        s.strict = true;
    }
    let (seg, stop_at) = handoff(&specs, 3);
    assert_eq!(seg.masters(0), vec![1]);
    let skew = seg.dirs[1]
        .node
        .instance(0)
        .map(|x| x.vrrp.skew_time().as_micros() as Micros)
        .unwrap_or(0);
    let gap = seg.longest_unowned(0, stop_at, seg.now);
    // The advert takes up to 2.1 ms across the simulated segment.
    assert!(
        gap > 0 && gap <= skew + 2_100,
        "gap {gap} us, skew {skew} us"
    );
}

#[test]
fn a_reload_with_unchanged_instances_causes_no_transition() {
    for seed in 0..30u64 {
        let mut specs = scenario(seed);
        specs.truncate(2);
        specs[0].priority = 200;
        specs[1].priority = 100;
        let mut seg = Segment::new(seed, &specs);
        seg.start(0);
        seg.start(1);
        let step = specs[0].advert_ms * 1000;
        seg.run_until(2 * seg.max_mdi() + 3 * step);
        let masters = seg.masters(0);
        let mark = seg.seen.len();
        // Both reload the same file, at different moments.
        for d in 0..2 {
            let config = seg.dirs[d].config.clone();
            let addr = seg.dirs[d].addr;
            seg.handle(d, Event::ReloadBegin);
            seg.handle(
                d,
                Event::Reload {
                    setup: setup(&config, addr),
                    config: Box::new(config),
                    links: Vec::new(),
                    files: Vec::new(),
                    processes: Vec::new(),
                },
            );
            seg.run_until(seg.now + step / 3);
        }
        seg.run_until(seg.now + 5 * step);
        let changes: Vec<_> = seg.seen[mark..]
            .iter()
            .filter(|(_, s)| !matches!(s, Seen::Advert { .. }))
            .collect();
        assert!(
            changes.is_empty(),
            "seed {seed}: a reload of the same file changed {changes:?}"
        );
        assert_eq!(seg.masters(0), masters, "seed {seed}");
        // The master kept advertising: no gap longer than an interval.
        let adverts: Vec<Micros> = seg.seen[mark..]
            .iter()
            .filter_map(|(t, s)| match s {
                Seen::Advert {
                    dir, instance: 0, ..
                } if masters.contains(dir) => Some(*t),
                _ => None,
            })
            .collect();
        assert!(
            adverts.windows(2).all(|w| w[1] - w[0] <= step),
            "seed {seed}"
        );
    }
}

#[test]
fn a_reload_that_changes_the_vips_moves_only_them() {
    let specs = vec![spec(200), spec(100)];
    let mut seg = Segment::new(1, &specs);
    seg.start(0);
    seg.start(1);
    seg.run_until(10_000_000);
    assert_eq!(seg.masters(0), vec![0]);
    let mark = seg.seen.len();
    let text = conf_text(&specs[0]).replace("10.0.0.100/24", "10.0.0.100/24\n    10.0.0.150/24");
    let config = load(&text);
    seg.handle(0, Event::ReloadBegin);
    seg.handle(
        0,
        Event::Reload {
            setup: setup(&config, seg.dirs[0].addr),
            config: Box::new(config),
            links: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        },
    );
    seg.run_until(seg.now + 3_000_000);
    let changes: Vec<_> = seg.seen[mark..]
        .iter()
        .filter(|(_, s)| !matches!(s, Seen::Advert { .. }))
        .map(|(_, s)| s.clone())
        .collect();
    // The 10.0.0.150 addition only (the backup's adverts now carry one
    // VIP fewer than the master's: it drops them, but stays backup).
    assert_eq!(
        changes,
        vec![Seen::Vips {
            dir: 0,
            instance: 0,
            add: true
        }]
    );
    assert_eq!(seg.masters(0), vec![0]);
}

#[test]
fn a_tracker_weight_moves_the_master_and_back() {
    let mut specs = vec![spec(150), spec(100)];
    for s in &mut specs {
        s.script_weight = Some(-60);
    }
    let mut seg = Segment::new(5, &specs);
    seg.start(0);
    seg.start(1);
    seg.run_until(10_000_000);
    assert_eq!(seg.masters(0), vec![0]);
    let fail = Event::Script {
        index: 0,
        success: false,
        detail: "failed (exit 1)".into(),
    };
    // fall 1 (default): one failure drops d0 to 90 < 100: d1 preempts.
    seg.handle(0, fail);
    assert_eq!(seg.priority(0, 0), 90);
    seg.run_until(seg.now + 5_000_000);
    assert_eq!(seg.masters(0), vec![1]);
    seg.handle(
        0,
        Event::Script {
            index: 0,
            success: true,
            detail: String::new(),
        },
    );
    seg.run_until(seg.now + 5_000_000);
    assert_eq!(seg.masters(0), vec![0]);
}

#[test]
fn a_sync_group_follows_its_faulted_member() {
    let mut specs = vec![spec(150), spec(100)];
    for s in &mut specs {
        s.sync_group = true;
        s.track_link = true;
    }
    let mut seg = Segment::new(9, &specs);
    seg.start(0);
    seg.start(1);
    seg.run_until(10_000_000);
    assert_eq!((seg.masters(0), seg.masters(1)), (vec![0], vec![0]));
    seg.handle(
        0,
        Event::Link {
            name: "eth1".into(),
            up: false,
        },
    );
    seg.run_until(seg.now + 5_000_000);
    assert_eq!(
        (seg.state(0, 0), seg.state(0, 1)),
        (State::Fault, State::Fault)
    );
    assert_eq!((seg.masters(0), seg.masters(1)), (vec![1], vec![1]));
    seg.handle(
        0,
        Event::Link {
            name: "eth1".into(),
            up: true,
        },
    );
    seg.run_until(seg.now + 10_000_000);
    assert_eq!((seg.masters(0), seg.masters(1)), (vec![0], vec![0]));
}

/// Part 4 of issue 12, in the core: script results arrive whenever a
/// script happens to finish (here: in bursts, between and at the advert
/// deadlines); handling them never waits, so the master's adverts keep
/// their exact cadence. (The driver runs scripts on a thread of their own.)
#[test]
fn script_results_never_move_the_adverts() {
    let mut specs = vec![spec(150), spec(100)];
    for s in &mut specs {
        s.version = 3;
        s.advert_ms = 100;
        s.script_weight = Some(-10);
    }
    let mut seg = Segment::new(11, &specs);
    seg.start(0);
    seg.start(1);
    seg.run_until(2_000_000);
    assert_eq!(seg.masters(0), vec![0]);
    let mark = seg.seen.len();
    let start = seg.now;
    for k in 0..2_000u64 {
        // 2,000 results over 10 s, at odd moments, all successes (no priority change).
        seg.run_until(start + k * 5_000 + (k * 7_919) % 5_000);
        seg.handle(
            0,
            Event::Script {
                index: 0,
                success: true,
                detail: String::new(),
            },
        );
    }
    let adverts: Vec<Micros> = seg.seen[mark..]
        .iter()
        .filter_map(|(t, s)| match s {
            Seen::Advert { dir: 0, .. } => Some(*t),
            _ => None,
        })
        .collect();
    assert!(adverts.len() >= 99, "{} adverts", adverts.len());
    for w in adverts.windows(2) {
        assert_eq!(w[1] - w[0], 100_000, "advert spacing {adverts:?}");
    }
}
