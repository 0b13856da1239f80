//! The typed configuration: plain data that the VRRP, checker and LVS
//! subsystems consume. Inherited settings are already resolved (a checker
//! carries its effective timers), defaults are filled in, and everything
//! here has passed validation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A keepalived timer: decimal seconds in the file, microsecond resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timer(pub Duration);

impl Timer {
    pub const fn secs(s: u64) -> Timer {
        Timer(Duration::from_secs(s))
    }
}

impl Serialize for Timer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Timer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map(Timer)
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub global: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `track_file` / `vrrp_track_file` blocks (VRRP trackers and FILE_CHECK).
    #[serde(default)]
    pub track_files: Vec<TrackFile>,
    /// `vrrp_track_process` blocks (VRRP trackers).
    #[serde(default)]
    pub track_processes: Vec<TrackProcess>,
    pub vrrp_sync_groups: Vec<SyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// `static_ipaddress`: set at start whatever the VRRP state.
    pub static_ipaddress: Vec<VirtualAddress>,
    /// `static_routes`: set at start whatever the VRRP state.
    pub static_routes: Vec<VirtualRoute>,
    /// `static_rules`: set at start whatever the VRRP state.
    pub static_rules: Vec<VirtualRule>,
}

/// The account a script runs as.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

/// A command line to run (notify scripts, quorum scripts, misc checks).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Script {
    /// The command as written; split into words by the script runner.
    pub command: String,
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpServer {
    /// An address or a host name.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<SmtpServer>,
    pub smtp_helo_name: Option<String>,
    pub smtp_connect_timeout: Timer,
    /// `smtp_alert [on|off]`: the default for VRRP instances, sync groups,
    /// virtual servers and real servers that set none.
    pub smtp_alert: Option<bool>,
    /// `smtp_alert_vrrp`: the default for VRRP instances and sync groups
    /// (before `smtp_alert`).
    #[serde(default)]
    pub smtp_alert_vrrp: Option<bool>,
    /// `smtp_alert_checker`: the default for virtual and real servers
    /// (before `smtp_alert`).
    #[serde(default)]
    pub smtp_alert_checker: Option<bool>,
    /// `no_email_faults`: no mail when an instance or group enters FAULT.
    #[serde(default)]
    pub no_email_faults: bool,
    /// `no_checker_emails`: a checker's change mails only when it changes
    /// its real server's state.
    #[serde(default)]
    pub no_checker_emails: bool,
    pub script_user: Option<ScriptUser>,
    pub enable_script_security: bool,
    /// Interface for static addresses and instances that name none.
    pub default_interface: Option<String>,
    /// `metrics_listen ADDR:PORT` (ipvsdir's): serve metrics, the status
    /// API and page there; `--metrics-listen` overrides it.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `notify_fifo`, `vrrp_notify_fifo`, `lvs_notify_fifo`.
    pub notify_fifos: NotifyFifos,
    pub vrrp: VrrpGlobals,
    pub lvs: LvsGlobals,
}

/// A FIFO the daemon writes one line per event to (keepalived's
/// `notify_fifo PATH [USER [GROUP]]`), and the script that reads it
/// (`notify_fifo_script`), started with the FIFO's path as its argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyFifo {
    /// An absolute path.
    pub path: std::path::PathBuf,
    /// The owner given to the FIFO when ipvsdir creates it.
    pub owner: Option<ScriptUser>,
    pub script: Option<Script>,
}

/// The three notify FIFOs of global_defs: `all` gets both streams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyFifos {
    /// `notify_fifo`: VRRP and LVS lines.
    pub all: Option<NotifyFifo>,
    /// `vrrp_notify_fifo`: `INSTANCE`/`GROUP` lines.
    pub vrrp: Option<NotifyFifo>,
    /// `lvs_notify_fifo`: `VS`/`RS` lines.
    pub lvs: Option<NotifyFifo>,
}

impl NotifyFifos {
    /// Some FIFO takes VRRP lines.
    pub fn wants_vrrp(&self) -> bool {
        self.all.is_some() || self.vrrp.is_some()
    }

    /// Some FIFO takes LVS (virtual and real server) lines.
    pub fn wants_lvs(&self) -> bool {
        self.all.is_some() || self.lvs.is_some()
    }
}

impl GlobalDefs {
    /// keepalived mails only when there are recipients and a server.
    pub fn mail_configured(&self) -> bool {
        !self.notification_email.is_empty() && self.smtp_server.is_some()
    }

    /// `smtp_alert` of a VRRP instance or sync group that sets none
    /// (keepalived 2.2.7: `smtp_alert_vrrp`, else `smtp_alert`, else off).
    pub fn smtp_alert_vrrp_default(&self) -> bool {
        self.smtp_alert_vrrp.or(self.smtp_alert).unwrap_or(false)
    }

    /// `smtp_alert` of a virtual server that sets none
    /// (`smtp_alert_checker`, else `smtp_alert`, else off).
    pub fn smtp_alert_vs_default(&self) -> bool {
        self.smtp_alert_checker.or(self.smtp_alert).unwrap_or(false)
    }

    /// `smtp_alert` of a real server that sets none (`smtp_alert_checker`,
    /// else `smtp_alert`, else **on**: keepalived 2.2.7 keeps this older
    /// default for real servers).
    pub fn smtp_alert_rs_default(&self) -> bool {
        self.smtp_alert_checker.or(self.smtp_alert).unwrap_or(true)
    }
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: Timer::secs(30),
            smtp_alert: None,
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            no_email_faults: false,
            no_checker_emails: false,
            script_user: None,
            enable_script_security: false,
            default_interface: None,
            metrics_listen: None,
            notify_fifos: NotifyFifos::default(),
            vrrp: VrrpGlobals::default(),
            lvs: LvsGlobals::default(),
        }
    }
}

/// VRRP defaults from global_defs; instances inherit them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpGlobals {
    pub version: u8,
    pub strict: bool,
    pub skip_check_adv_addr: bool,
    pub check_unicast_src: bool,
    pub mcast_group4: Ipv4Addr,
    pub mcast_group6: Ipv6Addr,
    pub garp_interval: Timer,
    pub gna_interval: Timer,
    pub garp_master_delay: Timer,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Option<Timer>,
    pub garp_master_refresh_repeat: u32,
    pub garp_lower_prio_delay: Option<Timer>,
    pub garp_lower_prio_repeat: Option<u32>,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    /// `vrrp_notify_priority_changes`: the default of instances and sync
    /// groups that set no `notify_priority_changes`.
    #[serde(default)]
    pub notify_priority_changes: bool,
    /// `fifo_write_vrrp_states_on_reload`: after a reload, each instance
    /// and sync group whose state it kept writes its state line again.
    #[serde(default)]
    pub fifo_write_states_on_reload: bool,
    /// Send VRRPv3 checksums computed as v2 does (interop with old peers).
    pub v3_checksum_as_v2: bool,
    /// `vrrp_priority`: the nice value of the VRRP thread (ours is -10 when
    /// unset; keepalived's is 0). Read at start only.
    pub nice: Option<i32>,
    /// `vrrp_rt_priority`: run the VRRP thread SCHED_RR at this priority
    /// (1-99), so adverts keep time on a saturated host. Read at start only.
    pub rt_priority: Option<i32>,
}

impl Default for VrrpGlobals {
    fn default() -> Self {
        VrrpGlobals {
            version: 2,
            strict: false,
            skip_check_adv_addr: false,
            check_unicast_src: false,
            mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            garp_interval: Timer::default(),
            gna_interval: Timer::default(),
            garp_master_delay: Timer::secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: None,
            garp_master_refresh_repeat: 1,
            garp_lower_prio_delay: None,
            garp_lower_prio_repeat: None,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            notify_priority_changes: false,
            fifo_write_states_on_reload: false,
            v3_checksum_as_v2: false,
            nice: None,
            rt_priority: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LvsGlobals {
    /// Flush the whole IPVS table at start.
    pub flush: bool,
    /// At stop, flush the table (`All`) or remove only our services (`Vs`)
    /// instead of deleting real servers one by one.
    pub flush_on_stop: Option<FlushOnStop>,
    pub timeouts: LvsTimeouts,
    /// `lvs_sysctl NAME VALUE ...` (ipvsdir's): the IPVS sysctls that let a
    /// flow moved between directors continue.
    pub sysctl: LvsSysctls,
    pub sync_daemon: Option<LvsSyncDaemon>,
    /// Where announced VIPs go (`announce_table` and friends, ipvsdir's);
    /// None: no virtual server can be announced.
    pub announce: Option<AnnounceGlobals>,
}

/// How VIPs are announced (ipvsdir's keywords, no keepalived equivalent):
/// each announced VIP is a host route (/32, /128) of type blackhole in a
/// dedicated kernel routing table, marked with a routing protocol number,
/// that the local BIRD 2 or FRR exports over BGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceGlobals {
    /// `announce_table N`: the kernel routing table (not main, local,
    /// default or unspec).
    pub table: u32,
    /// `announce_protocol N`: the routing protocol number of our routes
    /// (default 18, RTPROT_KEEPALIVED, as our VIPs); routes of this number
    /// in the table are ours (stale ones are removed at start).
    pub protocol: u8,
    /// `announce_metric N`: the route's metric (RTA_PRIORITY; BIRD reads it
    /// as krt_metric, e.g. to set the MED).
    pub metric: Option<u32>,
    /// `announce_withdraw_grace SECS`: at stop, how long routing has to move
    /// traffic away after the withdrawal before the IPVS table is released.
    pub withdraw_grace: Timer,
    /// `announce_drain_metric N`: the metric the routes take while the
    /// director drains (`ipvsdir ctl drain-director`, stop); the routing
    /// daemon maps it to GRACEFUL_SHUTDOWN / a worse MED. None: a drain
    /// withdraws at once.
    #[serde(default)]
    pub drain_metric: Option<u32>,
    /// `announce_drain_time SECS`: the longest a drain keeps the worse
    /// routes before it withdraws them (sooner once no new connection
    /// reaches the VIPs).
    #[serde(default = "AnnounceGlobals::default_drain_time")]
    pub drain_time: Timer,
}

impl AnnounceGlobals {
    pub const DEFAULT_PROTOCOL: u8 = 18;
    pub const DEFAULT_WITHDRAW_GRACE: Timer = Timer::secs(2);
    pub const DEFAULT_DRAIN_TIME: Timer = Timer::secs(10);

    fn default_drain_time() -> Timer {
        Self::DEFAULT_DRAIN_TIME
    }

    /// The same routes with the drain metric (self when none is set).
    pub fn drained(self) -> AnnounceGlobals {
        AnnounceGlobals {
            metric: self.drain_metric.or(self.metric),
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushOnStop {
    All,
    Vs,
}

/// IPVS connection timeouts in seconds (`ipvsadm --set`); None leaves the kernel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// IPVS sysctls (`net.ipv4.vs.NAME`, per network namespace) set at start and
/// on reload when they change; None leaves the kernel's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsSysctls {
    /// Create connection entries from any TCP packet, not only a SYN: a flow
    /// that ECMP moves to this director continues.
    pub sloppy_tcp: Option<u8>,
    /// The same for SCTP (any chunk, not only INIT).
    pub sloppy_sctp: Option<u8>,
    /// 0-2: how a new connection reusing an old one's ports is scheduled.
    pub conn_reuse_mode: Option<u8>,
    /// Expire at once the connections of a deleted real server.
    pub expire_nodest_conn: Option<u8>,
    /// Schedule ICMP packets that match no connection.
    pub schedule_icmp: Option<u8>,
}

impl LvsSysctls {
    /// Every sysctl ipvsdir manages, with the values it accepts.
    pub const ALL: [(&'static str, u8); 5] = [
        ("sloppy_tcp", 1),
        ("sloppy_sctp", 1),
        ("conn_reuse_mode", 2),
        ("expire_nodest_conn", 1),
        ("schedule_icmp", 1),
    ];

    pub fn slot(&mut self, name: &str) -> Option<&mut Option<u8>> {
        Some(match name {
            "sloppy_tcp" => &mut self.sloppy_tcp,
            "sloppy_sctp" => &mut self.sloppy_sctp,
            "conn_reuse_mode" => &mut self.conn_reuse_mode,
            "expire_nodest_conn" => &mut self.expire_nodest_conn,
            "schedule_icmp" => &mut self.schedule_icmp,
            _ => return None,
        })
    }

    /// The configured ones, in [`Self::ALL`]'s order.
    pub fn set(&self) -> Vec<(&'static str, u8)> {
        let mut copy = *self;
        Self::ALL
            .iter()
            .filter_map(|(name, _)| Some((*name, (*copy.slot(name)?)?)))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsSyncDaemon {
    pub interface: String,
    /// The VRRP instance whose state decides master or backup.
    pub vrrp_instance: Option<String>,
    pub sync_id: Option<u8>,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpScript {
    pub name: String,
    pub script: Script,
    pub interval: Timer,
    /// None: the script may run until the next interval.
    pub timeout: Option<Timer>,
    pub weight: i32,
    pub weight_reverse: bool,
    pub fall: u32,
    pub rise: u32,
    /// Start in the failed state until the first success.
    pub init_fail: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    Pass,
    Ah,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// At most 8 bytes (longer passwords are truncated, as keepalived does).
    pub auth_pass: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnicastPeer {
    pub addr: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    /// A numeric scope (0-255).
    #[serde(untagged)]
    Other(u8),
}

/// One `virtual_ipaddress` line: `IP[/MASK] [brd IP] [dev IF] [scope S] [label L] ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub scope: Option<Scope>,
    pub label: Option<String>,
    pub peer: Option<IpAddr>,
    pub home: bool,
    pub nodad: bool,
    pub noprefixroute: bool,
    pub autojoin: bool,
    pub no_track: bool,
    pub preferred_lft: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// One `virtual_routes` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualRoute {
    pub route_type: RouteType,
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub src: Option<IpAddr>,
    /// Next hops: `via A [or B ...]`.
    pub via: Vec<IpAddr>,
    pub dev: Option<String>,
    pub scope: Option<Scope>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    pub no_track: bool,
}

/// What a matching `static_rules` / `virtual_rules` line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// `table N` (the default: main).
    Table(u32),
    /// `goto PRIORITY`.
    Goto(u32),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One policy-routing rule line (`ip rule` syntax, as keepalived reads it):
/// `[not] [from SRC|all] [to DST|all] [priority N] [tos N] [fwmark M[/MASK]]
/// [iif IF] [oif IF] [table N|goto N|blackhole|unreachable|prohibit] [no_track]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualRule {
    pub ipv6: bool,
    pub invert: bool,
    /// Address and prefix length; None: all.
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub priority: Option<u32>,
    pub tos: u8,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub action: RuleAction,
    pub no_track: bool,
}

/// `track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }`:
/// a file holding an integer, watched for changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrackFile {
    pub name: String,
    pub path: std::path::PathBuf,
    /// The default weight of those that track it (keepalived's default 1).
    pub weight: i32,
    pub reverse: bool,
    /// `init_file`: the value written at start.
    pub init: Option<InitFile>,
}

/// How a tracked process's parameters must match (`param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamMatch {
    /// No parameters given and no `param_match`: any parameters.
    None,
    /// Exactly the parameters given (none if none are given).
    Exact,
    /// The first N parameters are the N given; more may follow.
    Partial,
    /// As `partial`, and the last given may be the start of a longer one.
    Initial,
}

/// `vrrp_track_process NAME { process CMD [ARGS...]; param_match ...;
/// full_command; quorum N; quorum_max N; delay / fork_delay /
/// terminate_delay SECS; weight N [reverse] }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrackProcess {
    pub name: String,
    /// The command name (or argv[0] with `full_command`).
    pub process: String,
    /// The parameters given after it.
    pub params: Vec<String>,
    pub param_match: ParamMatch,
    /// Match the command line (/proc/PID/cmdline) rather than the
    /// process name (/proc/PID/comm). Set by parameters or `param_match`.
    pub full_command: bool,
    /// The fewest matching processes that are up (default 1; 0 with
    /// `quorum_max 0`).
    pub quorum: u32,
    /// The most matching processes that are up (default: no limit).
    pub quorum_max: u32,
    /// Wait after a fork changes the quorum before acting on it.
    pub fork_delay: Timer,
    /// Wait after an exit changes the quorum before acting on it.
    pub terminate_delay: Timer,
    /// The default weight of those that track it (keepalived 2.2.7's
    /// default is 0: FAULT while the quorum is not met).
    pub weight: i32,
    pub reverse: bool,
}

/// `init_file [VALUE] [overwrite]`: create the file with VALUE (default 0)
/// when it does not exist, or always with `overwrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InitFile {
    pub value: i64,
    pub overwrite: bool,
}

/// A tracked script or interface with its optional weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    pub name: String,
    /// None: use the script's own weight (track_script) or go to FAULT when
    /// down (track_interface).
    pub weight: Option<i32>,
    pub reverse: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// The generic script, called as `script INSTANCE|GROUP name STATE priority`.
    pub any: Option<Script>,
    /// `notify_master_rx_lower_pri` (instances only): run when a master
    /// hears a lower-priority master.
    #[serde(default)]
    pub master_rx_lower_pri: Option<Script>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstance {
    pub name: String,
    pub initial_state: InitialState,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    pub advert_int: Timer,
    pub version: u8,
    pub preempt: bool,
    pub preempt_delay: Timer,
    pub mcast_src_ip: Option<IpAddr>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<UnicastPeer>,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualAddress>,
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    pub virtual_routes: Vec<VirtualRoute>,
    /// Policy rules set with the VIPs (while MASTER).
    pub virtual_rules: Vec<VirtualRule>,
    pub track_script: Vec<Tracked>,
    pub track_interface: Vec<Tracked>,
    /// `track_file { NAME [weight N [reverse]] }`: names of `track_file` blocks.
    #[serde(default)]
    pub track_file: Vec<Tracked>,
    /// `track_process { NAME [weight N [reverse]] }`: names of `vrrp_track_process` blocks.
    #[serde(default)]
    pub track_process: Vec<Tracked>,
    pub notify: Notify,
    pub garp_master_delay: Timer,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Option<Timer>,
    pub garp_master_refresh_repeat: u32,
    /// `use_vmac [NAME]`: the macvlan's name (default `vrrp.VRID`).
    pub use_vmac: Option<String>,
    pub vmac_xmit_base: bool,
    pub strict_mode: bool,
    pub accept: bool,
    pub skip_check_adv_addr: bool,
    pub check_unicast_src: bool,
    pub dont_track_primary: bool,
    pub lvs_sync_daemon_interface: Option<String>,
    pub smtp_alert: bool,
    /// `notify_priority_changes`: FIFO lines on effective priority
    /// changes; unset follows the sync group, then global_defs.
    #[serde(default)]
    pub notify_priority_changes: Option<bool>,
    pub v3_checksum_as_v2: bool,
    /// Log adverts later than this fraction of Master_Down_Interval
    /// (heartbeat's `warntime`); None disables the early warning.
    pub late_advert_warn: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroup {
    pub name: String,
    pub group: Vec<String>,
    pub notify: Notify,
    pub smtp_alert: bool,
    /// `notify_priority_changes` of the group (members that set none).
    #[serde(default)]
    pub notify_priority_changes: Option<bool>,
    pub global_tracking: bool,
    /// Tracked files applied to every member, weights included (as
    /// keepalived 2.2.7 does).
    #[serde(default)]
    pub track_file: Vec<Tracked>,
    /// Tracked processes applied to every member, weights included.
    #[serde(default)]
    pub track_process: Vec<Tracked>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Sh,
    Dh,
    Mh,
    Sed,
    Nq,
    Fo,
    Ovf,
    Twos,
}

impl Scheduler {
    pub const ALL: [(&'static str, Scheduler); 14] = [
        ("rr", Scheduler::Rr),
        ("wrr", Scheduler::Wrr),
        ("lc", Scheduler::Lc),
        ("wlc", Scheduler::Wlc),
        ("lblc", Scheduler::Lblc),
        ("lblcr", Scheduler::Lblcr),
        ("sh", Scheduler::Sh),
        ("dh", Scheduler::Dh),
        ("mh", Scheduler::Mh),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fo", Scheduler::Fo),
        ("ovf", Scheduler::Ovf),
        ("twos", Scheduler::Twos),
    ];

    /// The kernel's scheduler module name (`ip_vs_<name>`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("wlc", |(n, _)| n)
    }
}

/// Scheduler flags (`ipvsadm -b`): flag-1..3, alias sh-fallback/sh-port, mh-*.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedFlags {
    pub flag_1: bool,
    pub flag_2: bool,
    pub flag_3: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    Ipip,
    Gue { port: u16 },
    Gre,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelChecksum {
    Nocsum,
    Csum,
    Remcsum,
}

/// Packet forwarding method (`lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ForwardMethod {
    Nat,
    Dr,
    Tun {
        tunnel: TunnelType,
        checksum: Option<TunnelChecksum>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    pub timeout: u32,
    /// Netmask (IPv4) or prefix length; None = /32 or /128.
    pub granularity: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VirtualServerKey {
    /// `virtual_server IP [PORT]` (port 0 only for a persistent service).
    Addr {
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
    Group {
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SorryServer {
    pub addr: IpAddr,
    pub port: u16,
    pub method: ForwardMethod,
    /// Keep it in the table with weight 0 when quorum is held.
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServer {
    pub key: VirtualServerKey,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub sched_flags: SchedFlags,
    pub method: ForwardMethod,
    pub persistence: Option<Persistence>,
    pub persistence_engine: Option<String>,
    pub ops: bool,
    pub delay_loop: Timer,
    pub sorry_server: Option<SorryServer>,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub inhibit_on_failure: bool,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub smtp_alert: bool,
    /// `announce` (ipvsdir's): announce the VIP (a route in the
    /// `announce_table`) while this virtual server holds quorum.
    pub announce: bool,
    /// `announce_track_instance NAME` (ipvsdir's): announce only while
    /// this VRRP instance is MASTER in this process.
    pub announce_track_instance: Option<String>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServer {
    pub addr: IpAddr,
    /// Defaults to the virtual server's port.
    pub port: u16,
    pub weight: u32,
    pub method: ForwardMethod,
    pub uthreshold: u32,
    pub lthreshold: u32,
    pub inhibit_on_failure: bool,
    /// `slow_start SECS` (ipvsdir's; keepalived has none): after coming
    /// back up, the weight ramps from 1 to its full value over this long.
    pub slow_start: Option<std::time::Duration>,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub virtualhost: Option<String>,
    pub smtp_alert: bool,
    pub checkers: Vec<Checker>,
}

/// Timing and addressing every checker has, with inheritance resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckCommon {
    /// Address and port the probe goes to (default: the real server's).
    pub connect_ip: IpAddr,
    pub connect_port: u16,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    pub connect_timeout: Timer,
    pub delay_loop: Timer,
    pub retry: u32,
    pub delay_before_retry: Timer,
    /// Random initial delay up to this; zero disables.
    pub warmup: Timer,
    /// Start down until the first success.
    pub alpha: bool,
    pub log_all_failures: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HttpVersion {
    #[serde(rename = "1.0")]
    Http10,
    /// 1.0 with `Connection: close`.
    #[serde(rename = "1.0C")]
    Http10Close,
    #[serde(rename = "1.1")]
    Http11,
}

/// Inclusive ranges of accepted HTTP status codes; written `200-299 503`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusCodes(pub Vec<(u16, u16)>);

impl std::fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            if lo == hi {
                write!(f, "{sep}{lo}")?;
            } else {
                write!(f, "{sep}{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for StatusCodes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let range = |w: &str| -> Option<(u16, u16)> {
            let (lo, hi) = w.split_once('-').unwrap_or((w, w));
            Some((lo.parse().ok()?, hi.parse().ok()?))
        };
        text.split_whitespace()
            .map(|w| {
                range(w).ok_or_else(|| serde::de::Error::custom(format!("bad status range '{w}'")))
            })
            .collect::<Result<_, _>>()
            .map(StatusCodes)
    }
}

impl StatusCodes {
    pub fn default_2xx() -> StatusCodes {
        StatusCodes(vec![(200, 299)])
    }

    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Url {
    pub path: String,
    /// MD5 of the body, 32 lowercase hex characters.
    pub digest: Option<String>,
    pub status_codes: StatusCodes,
    /// Host header: url > checker > real server > virtual server.
    pub virtualhost: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpCheck {
    pub tls: bool,
    pub urls: Vec<Url>,
    pub http_protocol: HttpVersion,
    pub enable_sni: bool,
    pub fast_recovery: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MiscCheck {
    pub path: Script,
    pub timeout: Timer,
    pub dynamic: bool,
}

/// FILE_CHECK: the real server follows a tracked file's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileCheck {
    /// The `track_file` block's name and file.
    pub name: String,
    pub path: std::path::PathBuf,
    pub weight: i32,
    pub reverse: bool,
    /// The real server's configured weight (the base the value moves).
    pub base_weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Http(HttpCheck),
    Tcp,
    Misc(MiscCheck),
    File(FileCheck),
    Udp(UdpCheck),
    /// PING_CHECK: an ICMP/ICMPv6 echo to connect_ip, answered within
    /// connect_timeout.
    Ping,
    Dns(DnsCheck),
    Smtp(SmtpCheck),
}

/// SMTP_CHECK: greeting 220, `HELO helo_name` 250, QUIT.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SmtpCheck {
    /// `helo_name` (keepalived's default `smtpchecker.keepalived.org`).
    pub helo_name: String,
    /// The `host { }` blocks, each filled in from the checker's own
    /// settings; empty: the checker's connect_ip/port only.
    pub hosts: Vec<SmtpHost>,
}

/// One `host { }` of SMTP_CHECK (keepalived deprecates the block, still reads it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SmtpHost {
    pub connect_ip: IpAddr,
    pub connect_port: u16,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub connect_timeout: Timer,
}

/// DNS_CHECK: a query over UDP, up on a response with rcode NOERROR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsCheck {
    /// `type`: A, NS, CNAME, SOA (default), MX, TXT or AAAA, uppercase.
    pub qtype: String,
    /// `name` (default `.`).
    pub name: String,
}

/// UDP_CHECK: one datagram to the real server. Down when an ICMP error
/// (port unreachable) comes back within connect_timeout; with
/// `require_reply`, down too unless a fitting reply arrives in that time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UdpCheck {
    /// The datagram sent (`payload`, hex); empty when not set.
    pub payload: Vec<u8>,
    /// `require_reply`: a reply is needed to be up.
    pub require_reply: bool,
    /// `require_reply HEX`: the reply must start with these bytes (as far
    /// as the reply goes); lengths are checked only then, as keepalived does.
    pub reply: Option<Vec<u8>>,
    /// `min_reply_length` (default 0).
    pub min_reply_length: u16,
    /// `max_reply_length` (default 255).
    pub max_reply_length: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checker {
    pub kind: CheckKind,
    pub common: CheckCommon,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupEntry {
    /// `IP[-LAST] PORT`: the addresses `first..=last` (last part of the address ranges).
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<GroupEntry>,
}
