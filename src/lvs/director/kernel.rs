//! The director's side of the conversation with the kernel: one request
//! in flight at a time; what to ask next (start-up requests, a full pass
//! with a read, an incremental pass of what changed, the stop's release);
//! what the answers mean (what is now written, what is ours, what to log,
//! when to retry).

use std::collections::BTreeSet;
use std::time::Instant;

use ipvs_sys::ServiceKey;

use super::{
    DRIFT_READ_SPACING, Director, Effect, KernelReply, KernelRequest, LOG_EACH_UP_TO, RETRY_AFTER,
    Stage,
};
use crate::config::model::FlushOnStop;
use crate::lvs::diff::{Op, apply_to, diff};
use crate::lvs::format::op_rule;
use crate::lvs::kernel_error::{KernelError, is_conflict};
use crate::lvs::table::Table;

/// The kernel request in flight and what its answer is for.
#[derive(Debug)]
pub(super) enum InFlight {
    Flush,
    SetTimeouts,
    SetSysctls,
    /// A full pass: read, then repair everything.
    Read {
        attempt: u8,
        drift: bool,
        sent: Instant,
    },
    Sync {
        attempt: u8,
        drift: bool,
        actual: Table,
        ops: Vec<Op>,
    },
    /// Only the services that changed, against what was last written.
    Incremental {
        ops: Vec<Op>,
    },
    /// The stop's release.
    Release {
        ops: Vec<Op>,
    },
    ReleaseRead,
    /// The drain's counter read.
    Counters,
}

impl Director {
    pub(super) fn send(&mut self, request: KernelRequest, busy: InFlight) {
        self.busy = Some(busy);
        self.effects.push_back(Effect::Kernel(request));
    }

    /// Decides the next kernel request, if any is due and none is in flight.
    pub(super) fn pump(&mut self, now: Instant) {
        self.refresh();
        if !self.opts.write_table {
            self.table.take_changed();
            if self.ready_pending && self.stage == Stage::Running {
                self.table_ready();
            }
            return;
        }
        if self.busy.is_some() || matches!(self.stage, Stage::Idle | Stage::Stopped) {
            return;
        }
        if let Some(r) = self.queued.pop_front() {
            let busy = match r {
                KernelRequest::Flush => InFlight::Flush,
                KernelRequest::SetSysctls(_) => InFlight::SetSysctls,
                _ => InFlight::SetTimeouts,
            };
            return self.send(r, busy);
        }
        if self.stage == Stage::Releasing {
            return self.release_step();
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        let drift_due = self.next_drift.is_some_and(|t| now >= t);
        if self.written.is_none() || drift_due || self.retry_at.is_some() {
            let drift = self.written.is_some() && self.table.changed_is_empty();
            self.retry_at = None;
            // Set again from the read's length when it is answered.
            self.next_drift = Some(now + self.opts.drift_interval);
            let busy = InFlight::Read {
                attempt: 0,
                drift,
                sent: now,
            };
            return self.send(KernelRequest::Read, busy);
        }
        let changed = self.table.take_changed();
        if !changed.is_empty() {
            let desired = self.table.desired();
            self.owned.extend(desired.services.keys().copied());
            let written = self
                .written
                .as_ref()
                .map_or_else(Table::default, Clone::clone);
            let ops = diff_keys(desired, &written, &self.owned, &changed);
            if !ops.is_empty() {
                return self.send(
                    KernelRequest::Execute(ops.clone()),
                    InFlight::Incremental { ops },
                );
            }
        }
        if self.ready_pending {
            self.table_ready();
        }
        if self.counters_due(now) {
            self.counters_sent();
            self.send(KernelRequest::ReadCounters, InFlight::Counters);
        }
    }

    /// At stop: flush (lvs_flush_on_stop) or delete our services.
    fn release_step(&mut self) {
        if self.config.global.lvs.flush_on_stop == Some(FlushOnStop::All) {
            return self.send(KernelRequest::Flush, InFlight::Flush);
        }
        let Some(written) = &self.written else {
            return self.send(KernelRequest::Read, InFlight::ReleaseRead);
        };
        let ops = diff(&Table::default(), written, &self.owned);
        if ops.is_empty() {
            return self.finish_stop();
        }
        self.send(
            KernelRequest::Execute(ops.clone()),
            InFlight::Release { ops },
        );
    }

    pub(super) fn on_kernel(&mut self, now: Instant, reply: KernelReply) {
        let Some(busy) = self.busy.take() else {
            tracing::warn!("IPVS: an answer nothing asked for, ignored");
            return;
        };
        match (busy, reply) {
            (InFlight::Flush, KernelReply::Done(r)) => match r {
                Ok(()) => {
                    tracing::info!("IPVS: table flushed (ipvsadm -C)");
                    self.written = Some(Table::default());
                    if self.stage == Stage::Releasing {
                        self.finish_stop();
                    }
                }
                Err(e) => {
                    tracing::error!("IPVS: cannot flush the table: {e}");
                    self.outcome.errors.push(e);
                    if self.stage == Stage::Releasing {
                        self.finish_stop();
                    }
                }
            },
            (InFlight::SetSysctls, KernelReply::Done(r)) => match r {
                Ok(()) => tracing::info!(
                    "IPVS: lvs_sysctl set: {}",
                    self.config
                        .global
                        .lvs
                        .sysctl
                        .set()
                        .iter()
                        .map(|(n, v)| format!("net.ipv4.vs.{n}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Err(e) => {
                    tracing::error!("IPVS: lvs_sysctl: {e}");
                    self.outcome.errors.push(e);
                }
            },
            (InFlight::SetTimeouts, KernelReply::Done(r)) => {
                if let Err(e) = r {
                    tracing::error!("IPVS: cannot set lvs_timeouts: {e}");
                    self.outcome.errors.push(e);
                }
            }
            (
                InFlight::Read {
                    attempt,
                    drift,
                    sent,
                },
                KernelReply::Table(r),
            ) => match r {
                Ok(actual) => {
                    self.read_took = now.saturating_duration_since(sent);
                    if self.next_drift.is_some() {
                        let spacing = self
                            .opts
                            .drift_interval
                            .max(self.read_took * DRIFT_READ_SPACING);
                        self.next_drift = Some(now + spacing);
                    }
                    self.table.take_changed();
                    let desired = self.table.desired();
                    self.owned.extend(desired.services.keys().copied());
                    let ops = diff(desired, &actual, &self.owned);
                    if ops.is_empty() {
                        self.written = Some(actual);
                        self.settle(&[]);
                    } else {
                        let busy = InFlight::Sync {
                            attempt,
                            drift,
                            actual,
                            ops: ops.clone(),
                        };
                        self.send(KernelRequest::Execute(ops), busy);
                    }
                }
                Err(e) => self.exchange_failed(now, e),
            },
            (
                InFlight::Sync {
                    attempt,
                    drift,
                    mut actual,
                    ops,
                },
                KernelReply::Executed(r),
            ) => match r {
                Ok(results) => {
                    let (applied, failed, conflicts) = split(ops, results);
                    self.log_pass(&applied, &failed, drift);
                    apply_to(&mut actual, &applied);
                    self.written = Some(actual);
                    self.settle(&failed);
                    self.record(applied, failed);
                    if conflicts && attempt == 0 {
                        tracing::info!("IPVS table changed under us: re-reading and retrying once");
                        self.send(
                            KernelRequest::Read,
                            InFlight::Read {
                                attempt: 1,
                                drift: false,
                                sent: now,
                            },
                        );
                    }
                }
                Err(e) => self.exchange_failed(now, e),
            },
            (InFlight::Incremental { ops }, KernelReply::Executed(r)) => match r {
                Ok(results) => {
                    let (applied, failed, conflicts) = split(ops, results);
                    self.log_pass(&applied, &failed, false);
                    if let Some(w) = &mut self.written {
                        apply_to(w, &applied);
                    }
                    self.settle(&failed);
                    if conflicts || !failed.is_empty() {
                        // Someone changed the table under us, or the kernel
                        // refused: read it back before the next change.
                        self.written = None;
                    }
                    self.record(applied, failed);
                }
                Err(e) => self.exchange_failed(now, e),
            },
            (InFlight::ReleaseRead, KernelReply::Table(r)) => match r {
                Ok(actual) => self.written = Some(actual),
                Err(e) => {
                    tracing::error!("IPVS: cannot read the table to release it: {e}");
                    self.outcome.errors.push(e);
                    self.finish_stop();
                }
            },
            (InFlight::Release { ops }, KernelReply::Executed(r)) => {
                match r {
                    Ok(results) => {
                        let (applied, failed, _) = split(ops, results);
                        let n = applied
                            .iter()
                            .filter(|o| matches!(o, Op::DelService(_)))
                            .count();
                        self.log_pass(&applied, &failed, false);
                        tracing::info!("Removed {n} IPVS services of ours");
                        self.record(applied, failed);
                    }
                    Err(e) => {
                        tracing::error!("IPVS: cannot release our services: {e}");
                        self.outcome.errors.push(e);
                    }
                }
                self.finish_stop();
            }
            (InFlight::Counters, KernelReply::Counters(r)) => self.on_counters(now, r),
            (busy, reply) => {
                tracing::error!("IPVS: answer {reply:?} does not match the request {busy:?}");
                self.written = None;
            }
        }
    }

    /// The whole exchange failed (timeout, socket): read everything back
    /// after a pause. The changes since stay marked.
    fn exchange_failed(&mut self, now: Instant, e: KernelError) {
        tracing::error!(
            "IPVS: {e}; re-reading the table in {} s",
            RETRY_AFTER.as_secs()
        );
        self.outcome.errors.push(e);
        self.written = None;
        self.retry_at = Some(now + RETRY_AFTER);
        // VRRP is not held back by a kernel that does not answer: a backup
        // must still be able to take over elsewhere's VIPs.
        if self.ready_pending {
            self.table_ready();
        }
    }

    fn record(&mut self, applied: Vec<Op>, failed: Vec<(Op, KernelError)>) {
        self.outcome.applied.extend(applied);
        self.outcome.failed.extend(failed);
    }

    /// After a pass: services no longer desired and gone are no longer ours.
    fn settle(&mut self, failed: &[(Op, KernelError)]) {
        let desired = self.table.desired();
        let failed: BTreeSet<ServiceKey> = failed.iter().map(|(op, _)| *op.service_key()).collect();
        self.owned
            .retain(|k| desired.services.contains_key(k) || failed.contains(k));
        self.save_owned();
    }

    pub(super) fn save_owned(&mut self) {
        if self.saved_owned.as_ref() != Some(&self.owned) {
            self.saved_owned = Some(self.owned.clone());
            self.effects
                .push_back(Effect::SaveOwned(self.owned.clone()));
        }
    }

    fn log_pass(&mut self, applied: &[Op], failed: &[(Op, KernelError)], drift: bool) {
        if drift {
            for op in applied {
                let rule = op_rule(op);
                if self.logged.insert(rule.clone()) {
                    tracing::warn!(
                        "IPVS table drifted from the configuration, repaired: ipvsadm {rule}"
                    );
                }
            }
        } else {
            self.logged.clear();
            if applied.len() <= LOG_EACH_UP_TO {
                for op in applied {
                    tracing::info!("IPVS: ipvsadm {}", op_rule(op));
                }
            } else {
                let services = applied
                    .iter()
                    .filter(|o| matches!(o, Op::AddService(_)))
                    .count();
                tracing::info!(
                    "IPVS: {} operations applied ({services} services added)",
                    applied.len()
                );
                for op in applied {
                    tracing::debug!("IPVS: ipvsadm {}", op_rule(op));
                }
            }
        }
        for (op, e) in failed {
            let line = format!("{} failed: {e}", op_rule(op));
            if self.logged.insert(line.clone()) {
                tracing::error!("IPVS: ipvsadm {line}");
            }
        }
    }
}

/// Ops and their results, split into accepted and refused; whether a
/// refusal means the table changed under us.
fn split(
    ops: Vec<Op>,
    results: Vec<Result<(), KernelError>>,
) -> (Vec<Op>, Vec<(Op, KernelError)>, bool) {
    let mut applied = Vec::new();
    let mut failed = Vec::new();
    let mut conflicts = false;
    let mut refused = BTreeSet::new();
    let mut results = results.into_iter();
    for op in ops {
        match results.next().unwrap_or(Ok(())) {
            Ok(()) => applied.push(op),
            // A refused service takes its destinations with it: report the cause once.
            Err(_) if refused.contains(op.service_key()) => {}
            Err(e) => {
                if let Op::AddService(s) = &op {
                    refused.insert(s.key);
                }
                conflicts |= e.errno().is_some_and(|n| is_conflict(&op, n));
                failed.push((op, e));
            }
        }
    }
    (applied, failed, conflicts)
}

/// The diff restricted to some services: O(what changed), not O(table).
fn diff_keys(
    desired: &Table,
    written: &Table,
    owned: &BTreeSet<ServiceKey>,
    keys: &BTreeSet<ServiceKey>,
) -> Vec<Op> {
    let pick = |t: &Table| Table {
        services: keys
            .iter()
            .filter_map(|k| t.services.get(k).map(|s| (*k, s.clone())))
            .collect(),
    };
    diff(&pick(desired), &pick(written), owned)
}
