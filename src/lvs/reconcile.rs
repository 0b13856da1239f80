//! One reconcile pass: read the kernel, diff against desired, apply, and on
//! a conflict (someone changed the table under us: EEXIST, ENOENT, ESRCH)
//! re-read and try once more.

use std::collections::BTreeSet;

use ipvs_sys::ServiceKey;

use super::diff::{Op, diff};
use super::kernel::{Ipvs, KernelError, is_conflict};
use super::table::Table;

#[derive(Debug, Default)]
pub struct Outcome {
    /// Operations the kernel accepted.
    pub applied: Vec<Op>,
    /// Operations that still failed after the retry, with why.
    pub failed: Vec<(Op, KernelError)>,
}

pub fn reconcile(
    ipvs: &mut Ipvs,
    desired: &Table,
    owned: &BTreeSet<ServiceKey>,
) -> Result<Outcome, KernelError> {
    let mut outcome = Outcome::default();
    for attempt in 0..2 {
        let actual = ipvs.read()?.to_table();
        let ops = diff(desired, &actual, owned);
        let results = ipvs.execute(&ops)?;
        let mut conflicts = false;
        outcome.failed.clear();
        // A service the kernel refused takes its destinations down with it:
        // report the cause once, not one "no such service" per destination.
        let mut refused = std::collections::BTreeSet::new();
        for (op, r) in ops.into_iter().zip(results) {
            match r {
                Ok(()) => outcome.applied.push(op),
                Err(_) if refused.contains(op.service_key()) => {}
                Err(e) => {
                    if let Op::AddService(svc) = &op {
                        refused.insert(svc.key);
                    }
                    conflicts |= e.errno().is_some_and(|n| is_conflict(&op, n));
                    outcome.failed.push((op, e));
                }
            }
        }
        if !conflicts || attempt == 1 {
            break;
        }
        tracing::info!(
            "IPVS table changed under us ({} conflicting operations): re-reading and retrying once",
            outcome.failed.len()
        );
    }
    Ok(outcome)
}
