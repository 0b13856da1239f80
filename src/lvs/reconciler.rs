//! The long-running side of the IPVS reconciler: it remembers which
//! services it owns, and on each tick re-reads the kernel and repairs
//! whatever drifted from the desired table (an entry deleted or changed by
//! hand), logging each repair once. The daemon calls `tick` on its timer and
//! whenever health or the config changes.

use std::collections::BTreeSet;

use ipvs_sys::ServiceKey;

use super::format::op_rule;
use super::kernel::{Ipvs, KernelError};
use super::reconcile::{Outcome, reconcile};
use super::table::Table;

pub struct Reconciler {
    ipvs: Ipvs,
    /// Services ipvsdir created and may delete.
    owned: BTreeSet<ServiceKey>,
    /// The desired table of the previous tick: ops against an unchanged
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
            last: None,
            logged: BTreeSet::new(),
        }
    }

    pub fn owned(&self) -> &BTreeSet<ServiceKey> {
        &self.owned
    }

    pub fn tick(&mut self, desired: &Table) -> Result<Outcome, KernelError> {
        self.owned.extend(desired.services.keys().copied());
        let outcome = reconcile(&mut self.ipvs, desired, &self.owned)?;
        let drift = self.last.as_ref() == Some(desired);
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
        // Services no longer desired and now gone from the kernel are no longer ours.
        let kept: BTreeSet<ServiceKey> = self
            .owned
            .iter()
            .filter(|k| {
                desired.services.contains_key(k)
                    || outcome.failed.iter().any(|(op, _)| op.service_key() == *k)
            })
            .copied()
            .collect();
        self.owned = kept;
        self.last = Some(desired.clone());
        Ok(outcome)
    }
}
