//! The long-running side of the IPVS reconciler. It remembers which
//! services it owns and what it last wrote:
//! - `apply` (on every health or config change) diffs against that memory
//!   and sends only the changes, without reading the kernel;
//! - `tick` (on a timer) re-reads the kernel and repairs whatever drifted
//!   from the desired table (an entry deleted or changed by hand), logging
//!   each repair once.

use std::collections::BTreeSet;

use ipvs_sys::ServiceKey;

use super::diff::{apply_to, diff};
use super::format::op_rule;
use super::kernel::{Ipvs, KernelError};
use super::reconcile::{Outcome, reconcile};
use super::table::Table;

pub struct Reconciler {
    ipvs: Ipvs,
    /// Services ipvsdir created and may delete.
    owned: BTreeSet<ServiceKey>,
    /// Our part of the kernel table as last written; None after a failure.
    written: Option<Table>,
    /// The desired table of the previous pass: ops against an unchanged
    /// desired table are drift repairs, not configuration changes.
    last: Option<Table>,
    /// Repairs already logged, so a fight with another tool logs once.
    logged: BTreeSet<String>,
}

impl Reconciler {
    pub fn new(ipvs: Ipvs, owned: BTreeSet<ServiceKey>) -> Self {
        Reconciler {
            ipvs,
            owned,
            written: None,
            last: None,
            logged: BTreeSet::new(),
        }
    }

    pub fn owned(&self) -> &BTreeSet<ServiceKey> {
        &self.owned
    }

    /// Sends the changes from what was last written; falls back to a full
    /// `tick` when nothing is remembered or the kernel refused something.
    pub fn apply(&mut self, desired: &Table) -> Result<Outcome, KernelError> {
        let Some(written) = self.written.as_mut() else {
            return self.tick(desired);
        };
        self.owned.extend(desired.services.keys().copied());
        let ops = diff(desired, written, &self.owned);
        let results = self.ipvs.execute(&ops)?;
        if results.iter().any(Result::is_err) {
            self.written = None;
            return self.tick(desired);
        }
        apply_to(written, &ops);
        let outcome = Outcome {
            applied: ops,
            failed: Vec::new(),
        };
        self.finish(desired, &outcome, false);
        Ok(outcome)
    }

    /// Re-reads the kernel, repairs drift, and applies what changed.
    pub fn tick(&mut self, desired: &Table) -> Result<Outcome, KernelError> {
        self.owned.extend(desired.services.keys().copied());
        let outcome = reconcile(&mut self.ipvs, desired, &self.owned)?;
        let drift = self.last.as_ref() == Some(desired);
        self.written = outcome.failed.is_empty().then(|| desired.clone());
        self.finish(desired, &outcome, drift);
        Ok(outcome)
    }

    fn finish(&mut self, desired: &Table, outcome: &Outcome, drift: bool) {
        for op in &outcome.applied {
            let rule = op_rule(op);
            if drift {
                if self.logged.insert(rule.clone()) {
                    tracing::warn!(
                        "IPVS table drifted from the configuration, repaired: ipvsadm {rule}"
                    );
                }
            } else {
                tracing::info!("IPVS: ipvsadm {rule}");
            }
        }
        for (op, e) in &outcome.failed {
            tracing::error!("IPVS: ipvsadm {} failed: {e}", op_rule(op));
        }
        if !drift {
            self.logged.clear();
        }
        // Services no longer desired and gone from the kernel are no longer ours.
        let failed: BTreeSet<ServiceKey> = outcome
            .failed
            .iter()
            .map(|(op, _)| *op.service_key())
            .collect();
        self.owned
            .retain(|k| desired.services.contains_key(k) || failed.contains(k));
        self.last = Some(desired.clone());
    }
}
