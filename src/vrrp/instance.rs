//! One configured `vrrp_instance` at run time: its state machine plus what
//! the wire needs (family, addresses, auth, destinations), the trackers'
//! weights and the receive counters. Pure: the driver owns the sockets.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::model::{AuthType, Config, VrrpInstance};

use super::packet::{self, Advert, Auth, CodecOptions, Version};
use super::state::{Input, Micros, Params, Vrrp};
use super::track::{self, Effective, ScriptTracker, TrackState};
use super::validate::{self, DropKind, DropReason, InstanceView};

/// A tracker as the instance sees it: which script/interface, with which weight.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub kind: TrackerKind,
    pub weight: i32,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerKind {
    /// Index into the driver's vrrp_script list.
    Script(usize),
    /// Interface name.
    Interface(String),
    /// Index into the configuration's track_files.
    File(usize),
    /// Index into the configuration's track_processes.
    Process(usize),
}

#[derive(Debug)]
pub struct Instance {
    pub cfg: VrrpInstance,
    pub vrrp: Vrrp,
    pub ipv6: bool,
    /// The advert source: mcast_src_ip / unicast_src_ip or the interface's primary address.
    pub src: IpAddr,
    /// Addresses carried in adverts (the instance's family).
    pub vips: Vec<IpAddr>,
    pub auth: Auth,
    pub codec: CodecOptions,
    pub group: IpAddr,
    pub trackers: Vec<Tracker>,
    /// A tracker without weight is down.
    pub own_fault: bool,
    /// The sync group (index) this instance belongs to.
    pub sync_group: Option<usize>,
    pub drops: BTreeMap<DropKind, u64>,
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub late_adverts: u64,
    /// Transitions and priority-0 adverts, as keepalived counts them.
    pub stats: InstanceStats,
    /// When this master last answered a lower-priority master (advert and
    /// gratuitous ARPs): at most once per advert interval, so a flood of
    /// such adverts cannot be amplified.
    pub last_reannounce: Option<Micros>,
}

/// What keepalived's statistics count per instance (its SIGUSR2 dump and
/// keepalived-exporter's metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceStats {
    pub became_master: u64,
    pub released_master: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    /// Takeovers from BACKUP: how long the master had been silent.
    pub takeovers: Takeovers,
}

/// Upper bounds (seconds) of the takeover histogram: a priority-0
/// handoff lands in the first ones, a crash near Master_Down_Interval.
pub const TAKEOVER_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram of the silences that ended in a takeover (the time from the
/// last advert heard from the master followed, priority 0 included, to this
/// instance entering MASTER): how long the VIP may have had no owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Takeovers {
    /// Per bucket of [`TAKEOVER_BOUNDS`] (not cumulative), then +Inf.
    pub counts: [u64; TAKEOVER_BOUNDS.len() + 1],
    pub sum_us: u64,
}

impl Takeovers {
    pub fn record(&mut self, silence_us: u64) {
        let secs = silence_us as f64 / 1e6;
        let i = TAKEOVER_BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(TAKEOVER_BOUNDS.len());
        self.counts[i] += 1;
        self.sum_us = self.sum_us.saturating_add(silence_us);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The instance's address family: its first VIP's, else its unicast peers'.
pub fn is_ipv6(vi: &VrrpInstance) -> bool {
    vi.virtual_ipaddress
        .first()
        .map(|v| v.addr.is_ipv6())
        .or_else(|| vi.unicast_peers.first().map(|p| p.addr.is_ipv6()))
        .unwrap_or(false)
}

/// The configured source address, if any (unicast_src_ip, then mcast_src_ip).
pub fn configured_src(vi: &VrrpInstance) -> Option<IpAddr> {
    vi.unicast_src_ip.or(vi.mcast_src_ip)
}

/// The VRRP multicast group of a family (vrrp_mcast_group4/6).
pub fn multicast_group(config: &Config, ipv6: bool) -> IpAddr {
    let g = &config.global.vrrp;
    if ipv6 {
        IpAddr::V6(g.mcast_group6)
    } else {
        IpAddr::V4(g.mcast_group4)
    }
}

impl Instance {
    pub fn new(config: &Config, index: usize, src: IpAddr) -> Self {
        let cfg = config.vrrp_instances[index].clone();
        let ipv6 = is_ipv6(&cfg);
        let g = &config.global.vrrp;
        let vips = cfg
            .virtual_ipaddress
            .iter()
            .map(|v| v.addr)
            .filter(|a| a.is_ipv6() == ipv6)
            .collect();
        let auth = match &cfg.authentication {
            Some(a) if a.auth_type == AuthType::Pass && cfg.version == 2 => {
                Auth::pass(&a.auth_pass)
            }
            _ => Auth::None,
        };
        let codec = if cfg.v3_checksum_as_v2 || g.v3_checksum_as_v2 {
            CodecOptions::v3_checksum_as_v2()
        } else {
            CodecOptions::default()
        };
        let group = multicast_group(config, ipv6);
        let script_index = |name: &str| config.vrrp_scripts.iter().position(|s| s.name == name);
        let mut trackers = Vec::new();
        for t in &cfg.track_script {
            if let Some(i) = script_index(&t.name) {
                let s = &config.vrrp_scripts[i];
                trackers.push(Tracker {
                    kind: TrackerKind::Script(i),
                    weight: t.weight.unwrap_or(s.weight),
                    reverse: t.reverse || (t.weight.is_none() && s.weight_reverse),
                });
            }
        }
        for t in &cfg.track_interface {
            trackers.push(Tracker {
                kind: TrackerKind::Interface(t.name.clone()),
                weight: t.weight.unwrap_or(0),
                reverse: t.reverse,
            });
        }
        // As keepalived: the instance's own interface is tracked (down =
        // FAULT) unless `dont_track_primary` says otherwise.
        let listed = cfg.track_interface.iter().any(|t| t.name == cfg.interface);
        if !cfg.dont_track_primary && !listed {
            trackers.push(Tracker {
                kind: TrackerKind::Interface(cfg.interface.clone()),
                weight: 0,
                reverse: false,
            });
        }
        let sync_group = config
            .vrrp_sync_groups
            .iter()
            .position(|sg| sg.group.contains(&cfg.name));
        // The instance's tracked files, then its sync group's (applied to
        // every member with their weights, as keepalived 2.2.7; a FAULT of
        // one member is the group's).
        let group_files = sync_group
            .and_then(|g| config.vrrp_sync_groups.get(g))
            .map_or(&[][..], |g| g.track_file.as_slice());
        for t in cfg.track_file.iter().chain(group_files) {
            if let Some(i) = config.track_files.iter().position(|f| f.name == t.name) {
                let f = &config.track_files[i];
                trackers.push(Tracker {
                    kind: TrackerKind::File(i),
                    weight: t.weight.unwrap_or(f.weight),
                    reverse: if t.weight.is_some() {
                        t.reverse
                    } else {
                        f.reverse
                    },
                });
            }
        }
        // Tracked processes likewise: the instance's, then its sync group's
        // (a process named in both counts once, with the instance's weight).
        let group_procs = sync_group
            .and_then(|g| config.vrrp_sync_groups.get(g))
            .map_or(&[][..], |g| g.track_process.as_slice());
        for t in cfg.track_process.iter().chain(group_procs) {
            if let Some(i) = config.track_processes.iter().position(|p| p.name == t.name) {
                if trackers.iter().any(|x| x.kind == TrackerKind::Process(i)) {
                    continue;
                }
                let p = &config.track_processes[i];
                trackers.push(Tracker {
                    kind: TrackerKind::Process(i),
                    weight: t.weight.unwrap_or(p.weight),
                    reverse: if t.weight.is_some() {
                        t.reverse
                    } else {
                        p.reverse
                    },
                });
            }
        }
        let params = Params {
            version: cfg.version,
            priority: cfg.priority,
            advert_int: cfg.advert_int.0,
            preempt: cfg.preempt,
            preempt_delay: cfg.preempt_delay.0,
            initial: cfg.initial_state,
            primary_ip: src,
            late_advert_warn: cfg.late_advert_warn,
        };
        Instance {
            vrrp: Vrrp::new(params),
            ipv6,
            src,
            vips,
            auth,
            codec,
            group,
            trackers,
            own_fault: false,
            sync_group,
            drops: BTreeMap::new(),
            adverts_received: 0,
            adverts_sent: 0,
            late_adverts: 0,
            stats: InstanceStats::default(),
            last_reannounce: None,
            cfg,
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    pub fn version(&self) -> Version {
        if self.cfg.version == 3 {
            Version::V3
        } else {
            Version::V2
        }
    }

    pub fn is_unicast(&self) -> bool {
        !self.cfg.unicast_peers.is_empty()
    }

    /// Where adverts go: the peers, or the multicast group.
    pub fn destinations(&self) -> Vec<IpAddr> {
        if self.is_unicast() {
            self.cfg.unicast_peers.iter().map(|p| p.addr).collect()
        } else {
            vec![self.group]
        }
    }

    pub fn advert(&self, priority: u8) -> Advert {
        let interval = self.cfg.advert_int.0;
        match self.version() {
            Version::V2 => Advert::v2(
                self.cfg.virtual_router_id,
                priority,
                packet::v2_adver_int(interval).unwrap_or(1),
                self.auth,
                self.vips.clone(),
            ),
            Version::V3 => Advert::v3(
                self.cfg.virtual_router_id,
                priority,
                packet::v3_max_adver_int(interval).unwrap_or(100),
                self.vips.clone(),
            ),
        }
    }

    /// The encoded packets of one advert: (bytes, destination). IPv4
    /// packets include the IP header (the socket uses IP_HDRINCL).
    pub fn encode(&self, priority: u8) -> Vec<(Vec<u8>, IpAddr)> {
        let advert = self.advert(priority);
        let mut out = Vec::new();
        for dst in self.destinations() {
            let bytes = match (self.src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    packet::encode_ipv4_packet(&advert, s, d, packet::VRRP_TTL, &self.codec)
                }
                (s, d) => packet::encode(&advert, s, d, &self.codec),
            };
            match bytes {
                Ok(b) => out.push((b, dst)),
                Err(e) => tracing::error!(
                    "VRRP_Instance({}) cannot build an advert for {dst}: {e}",
                    self.name()
                ),
            }
        }
        out
    }

    fn view(&self) -> InstanceView<'_> {
        InstanceView {
            version: self.version(),
            vrid: self.cfg.virtual_router_id,
            auth: self.auth,
            vips: &self.vips,
            advert_int: self.cfg.advert_int.0,
            unicast_peers: &self.cfg.unicast_peers,
            check_unicast_src: self.cfg.check_unicast_src,
            skip_check_adv_addr: self.cfg.skip_check_adv_addr,
            current_master: self.vrrp.master_ip,
        }
    }

    /// The checks that need no decoding, on a packet routed here by its
    /// VRID; a drop is counted.
    pub fn screen(&mut self, peek: &packet::Peek) -> Result<(), DropReason> {
        validate::screen(peek, &self.view()).inspect_err(|r| self.count_drop(r))
    }

    pub fn count_drop(&mut self, reason: &DropReason) {
        *self.drops.entry(reason.kind()).or_default() += 1;
    }

    /// Whether a master may answer a lower-priority master now (and
    /// records that it does).
    pub fn may_reannounce(&mut self, now: Micros) -> bool {
        let spacing = self.cfg.advert_int.0.as_micros() as Micros;
        if self
            .last_reannounce
            .is_some_and(|t| now.saturating_sub(t) < spacing)
        {
            return false;
        }
        self.last_reannounce = Some(now);
        true
    }

    /// Validates a received advert; Ok gives the state machine's input.
    pub fn accept(&mut self, rx: &packet::Received) -> Result<Input, DropReason> {
        if let Err(reason) = validate::validate(&rx.advert, &rx.meta, &self.view()) {
            self.count_drop(&reason);
            return Err(reason);
        }
        self.adverts_received += 1;
        if rx.advert.priority == 0 {
            self.stats.priority_zero_received += 1;
        }
        let interval = match self.version() {
            Version::V3 => rx.advert.interval(),
            Version::V2 => self.cfg.advert_int.0,
        };
        Ok(Input::Advert {
            src: rx.meta.src,
            priority: rx.advert.priority,
            interval: interval.max(Duration::from_millis(10)),
        })
    }

    /// Effective priority and fault from the trackers' states.
    /// What the trackers make of this instance; `file_values`: each
    /// track_file's current value (by index into the configuration's list).
    pub fn effective(
        &self,
        script_up: &[ScriptTracker],
        iface_up: &dyn Fn(&str) -> bool,
        file_values: &[i64],
        process_up: &[bool],
    ) -> Effective {
        let mut states = Vec::with_capacity(self.trackers.len());
        let mut files = Vec::new();
        for t in &self.trackers {
            let up = match &t.kind {
                TrackerKind::Script(i) => script_up.get(*i).is_none_or(|s| s.up),
                TrackerKind::Interface(name) => iface_up(name),
                TrackerKind::File(i) => {
                    let value = file_values.get(*i).copied().unwrap_or(0);
                    files.push(track::file_effect(value, t.weight, t.reverse));
                    continue;
                }
                TrackerKind::Process(i) => {
                    let up = process_up.get(*i).copied().unwrap_or(false);
                    files.push(track::process_effect(up, t.weight, t.reverse));
                    continue;
                }
            };
            states.push(TrackState {
                up,
                weight: t.weight,
                reverse: t.reverse,
            });
        }
        track::effective_with_files(self.cfg.priority, &states, &files)
    }
}

/// The unspecified address of a family, for an interface without one.
pub fn unspecified(ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}
