//! What goes in and out of the director core: events, effects, and the
//! kernel requests it asks its driver to carry out.

use std::collections::BTreeSet;
use std::sync::Arc;

use ipvs_sys::{ServiceKey, Timeouts};

use crate::check::health::{ProbeId, ProbePlan};
use crate::check::state::CheckerState;
use crate::config::model::{Config, Script};
use crate::lvs::diff::Op;
use crate::lvs::kernel_error::KernelError;
use crate::lvs::table::Table;

/// An operator's override of one real server (`ipvsdir ctl`, over the
/// status socket). It survives reloads while the real server stays in the
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Override {
    /// Weight 0 while its checkers say up: established connections carry
    /// on, no new ones.
    Drain,
    /// Out of the table, whatever its checkers say.
    Disable,
    /// This weight instead of the configured one while its checkers say up.
    Weight(u32),
    /// Back to what its checkers say.
    Clear,
}

/// One override as kept across restarts: the real server by address,
/// port and virtual server name, so that it can be fed back through
/// [`Director::operator`](super::Director::operator).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub target: super::operator::Target,
    #[serde(rename = "override")]
    pub what: Override,
}

#[derive(Debug)]
pub enum Event {
    /// Begin: start the probes and bring the kernel table in line.
    Start,
    /// Probes whose checker changed (state or dynamic weight), with their
    /// new state.
    Probes(Vec<(ProbeId, CheckerState)>),
    /// A new, already validated configuration (SIGHUP).
    Reload(Box<Config>),
    /// The answer to the kernel request in flight.
    Kernel(KernelReply),
    /// Stop: the table is released once nothing attracts traffic to it.
    Stop,
    /// The VRRP side of this process has finished its stop: the handoff is
    /// over and our VIPs are gone (or kept, with --dont-release-vrrp).
    VrrpStopped,
    /// A VRRP instance of this process became MASTER (`master`) or left
    /// MASTER (`announce_track_instance`).
    VrrpState { instance: String, master: bool },
}

/// A request for the kernel's IPVS table. One is in flight at a time; its
/// answer comes back as [`Event::Kernel`].
#[derive(Debug, Clone, PartialEq)]
pub enum KernelRequest {
    /// `lvs_flush` / `lvs_flush_on_stop`: empty the whole table (`ipvsadm -C`).
    Flush,
    /// `lvs_timeouts` (`ipvsadm --set`).
    SetTimeouts(Timeouts),
    /// `lvs_sysctl`: write these `net.ipv4.vs.NAME` values, in order.
    SetSysctls(Vec<(&'static str, u8)>),
    /// Read the whole table back.
    Read,
    /// Carry out these operations, in order.
    Execute(Vec<Op>),
    /// Read every service's connection counter (while draining).
    ReadCounters,
}

#[derive(Debug)]
pub enum KernelReply {
    /// Flush, SetTimeouts or SetSysctls.
    Done(Result<(), KernelError>),
    Table(Result<Table, KernelError>),
    /// One result per op; the outer error when the exchange itself failed.
    Executed(Result<Vec<Result<(), KernelError>>, KernelError>),
    /// Connections scheduled per service since it was created (IPVS
    /// service stats `conns`).
    Counters(Result<Vec<(ServiceKey, u64)>, KernelError>),
}

#[derive(Debug, Clone)]
pub enum Effect {
    /// Ask the kernel (the driver answers with [`Event::Kernel`]).
    Kernel(KernelRequest),
    /// Run a hook script (notify_up/down, quorum_up/down, omega's).
    RunScript { script: Script, what: String },
    /// Write this line (no newline) to the LVS notify FIFOs
    /// (`notify_fifo`, `lvs_notify_fifo`): `RS [rip]:tcp:80 [vip]:tcp:80 UP`,
    /// `VS [vip]:tcp:80 DOWN`. Emitted only when the file configures one.
    FifoLine(String),
    /// Mail this alert (`smtp_alert`): a checker of a real server went up
    /// or down. Emitted only when the file configures mail.
    Mail(crate::mail::compose::Alert),
    /// (Re)start the probes of this plan from these states, replacing any
    /// running ones; the configuration gives their context.
    StartProbes {
        config: Arc<Config>,
        plan: Arc<ProbePlan>,
        states: Vec<CheckerState>,
    },
    /// Stop every probe.
    StopProbes,
    /// Remember the services that are ours (for the next start).
    SaveOwned(BTreeSet<ServiceKey>),
    /// The operator's overrides changed (kept across restarts with
    /// `--persist-overrides`; the report shows them).
    SaveOverrides(Vec<Saved>),
    /// The table reflects the last start or reload: what attracts traffic to
    /// it (VRRP's VIPs) may follow now.
    TableReady,
    /// Rewrite the health report from the probes' latest states if
    /// something it shows changed since the last one (`force`: in any case,
    /// a new probe plan). At most once per `report_every`.
    WriteReport { force: bool },
    /// Announce or withdraw VIPs: routes in the `announce_table`. Carried
    /// out in order; the answer is not awaited.
    Announce(super::announce::AnnounceRequest),
    /// What is announced now and why, every VIP with `announce` (for
    /// `--dump`, the metrics and the status API). Emitted when it changes.
    AnnounceStatus(Arc<Vec<crate::lvs::announce::VipStatus>>),
    /// The stop is complete.
    Stopped,
}
