//! The node's repeated warnings, rate-limited through the project's one
//! limiter ([`crate::log_limit`]), and its one-off log lines.

use std::net::IpAddr;
use std::time::Duration;

use crate::log_limit::Verdict;

use super::super::instance::Instance;
use super::super::state::Micros;
use super::super::validate::{DropKind, DropReason};
use super::Node;

/// What a repeated warning is about: keys are bounded by the configuration
/// (instance indices, reasons), never by what arrives from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum LogKey {
    /// An advert dropped by instance i (None: by no instance).
    Drop(Option<usize>, DropKind),
    /// Instance i could not send an advert.
    Send(usize),
    /// Instance i could not send a gratuitous ARP / NA.
    Announce(usize),
    /// Instance i, master, answered a lower-priority master.
    Reannounce(usize),
}

pub(super) const LOG_PERIOD: Duration = Duration::from_secs(10);

/// A learned (v3) master advert interval above this is logged as a warning:
/// a backup then waits over three times as long before taking over.
const LEARNED_INTERVAL_WARN: Duration = Duration::from_secs(10);

pub(super) fn late_advert(inst: &Instance, gap: Duration, master_down: Duration) {
    tracing::warn!(
        "VRRP_Instance({}) advert from master {} came {:.3} s after the previous one ({:.0}% of the {:.3} s master down interval): the link may be failing",
        inst.name(),
        inst.vrrp
            .master_ip
            .map(|a| a.to_string())
            .unwrap_or_default(),
        gap.as_secs_f64(),
        gap.as_secs_f64() * 100.0 / master_down.as_secs_f64(),
        master_down.as_secs_f64()
    );
}

pub(super) fn learned_interval(inst: &Instance, before: Duration) {
    let now = inst.vrrp.master_adver_interval;
    if now == before {
        return;
    }
    let (name, master) = (inst.name(), inst.vrrp.master_ip);
    let master = master.map(|a| a.to_string()).unwrap_or_default();
    let down = inst.vrrp.master_down_interval().as_secs_f64();
    if now > LEARNED_INTERVAL_WARN {
        tracing::warn!(
            "VRRP_Instance({name}) master {master} advertises every {:.2} s (was {:.2} s): a takeover would now wait {down:.1} s",
            now.as_secs_f64(),
            before.as_secs_f64()
        );
    } else {
        tracing::info!(
            "VRRP_Instance({name}) master {master} advertises every {:.2} s (was {:.2} s): master down interval {down:.2} s",
            now.as_secs_f64(),
            before.as_secs_f64()
        );
    }
}

impl Node {
    pub(super) fn may_log(&mut self, now: Micros, key: LogKey) -> bool {
        let at = self.epoch + Duration::from_micros(now);
        matches!(self.limiter.check(at, &key), Verdict::Log { .. })
    }

    fn name_of(&self, i: usize) -> &str {
        self.instances.get(i).map_or("?", |x| x.name())
    }

    pub(super) fn send_failed(&mut self, now: Micros, i: usize, dst: IpAddr, error: &str) {
        let Some(inst) = self.instances.get_mut(i) else {
            return;
        };
        inst.adverts_sent = inst.adverts_sent.saturating_sub(1);
        if self.may_log(now, LogKey::Send(i)) {
            tracing::warn!(
                "VRRP_Instance({}) cannot send an advert to {dst}: {error}",
                self.name_of(i)
            );
        }
    }

    pub(super) fn announce_failed(&mut self, now: Micros, i: usize, vip: IpAddr, error: &str) {
        if i < self.instances.len() && self.may_log(now, LogKey::Announce(i)) {
            tracing::warn!(
                "VRRP_Instance({}) announcing {vip}: {error}",
                self.name_of(i)
            );
        }
    }

    pub(super) fn drop_unmatched(&mut self, now: Micros, reason: DropReason) {
        *self.unmatched_drops.entry(reason.kind()).or_default() += 1;
        if self.may_log(now, LogKey::Drop(None, reason.kind())) {
            tracing::warn!("VRRP: dropped a malformed advert: {reason}");
        }
    }

    pub(super) fn log_drop(&mut self, now: Micros, i: usize, reason: &DropReason, src: IpAddr) {
        if !reason.is_quiet() && self.may_log(now, LogKey::Drop(Some(i), reason.kind())) {
            tracing::warn!(
                "VRRP_Instance({}) dropped an advert from {src}: {reason}",
                self.name_of(i)
            );
        }
    }

    /// "N similar ... suppressed" for what the limiter held back (`all`:
    /// everything, before a reload renumbers the instances).
    pub(super) fn report_suppressed(&mut self, now: Micros, all: bool) {
        let (due, overflow) = if all {
            self.limiter.drain()
        } else {
            self.limiter.flush(self.epoch + Duration::from_micros(now))
        };
        for (key, n) in due {
            match key {
                LogKey::Drop(Some(i), kind) => tracing::warn!(
                    "VRRP_Instance({}) {n} similar dropped adverts ({}) not logged in the last {} s",
                    self.name_of(i),
                    kind.as_str(),
                    LOG_PERIOD.as_secs()
                ),
                LogKey::Drop(None, kind) => tracing::warn!(
                    "VRRP: {n} similar dropped adverts ({}) not logged in the last {} s",
                    kind.as_str(),
                    LOG_PERIOD.as_secs()
                ),
                LogKey::Send(i) => tracing::warn!(
                    "VRRP_Instance({}) {n} similar advert send errors not logged",
                    self.name_of(i)
                ),
                LogKey::Announce(i) => tracing::warn!(
                    "VRRP_Instance({}) {n} similar announce errors not logged",
                    self.name_of(i)
                ),
                LogKey::Reannounce(i) => tracing::info!(
                    "VRRP_Instance({}) re-announced to a lower-priority master {n} more times in the last {} s",
                    self.name_of(i),
                    LOG_PERIOD.as_secs()
                ),
            }
        }
        if overflow > 0 {
            tracing::warn!("VRRP: {overflow} other warnings not logged");
        }
    }
}
