//! MISC_CHECK: run `misc_path`; exit 0 is up, 1 is down; with misc_dynamic,
//! an exit of 2..255 is up with weight `status - 2`. A timeout, a signal or
//! a refusal (script_security) is down, with the reason.

use super::probe::{ProbeContext, ProbeResult};
use crate::config::model::MiscCheck;
use crate::script::{self, Outcome, RunOptions};

/// The verdict on one run, as keepalived reads MISC_CHECK exit codes.
pub fn judge(outcome: &Outcome, dynamic: bool) -> ProbeResult {
    match outcome {
        Outcome::Exited(0) => ProbeResult::up("exit 0"),
        Outcome::Exited(code @ 2..=255) if dynamic => ProbeResult {
            ok: true,
            reason: format!("exit {code}: weight {}", code - 2).into(),
            weight: Some((*code - 2) as u32),
            local: false,
        },
        other => ProbeResult::down(other.describe()),
    }
}

pub async fn probe(m: &MiscCheck, ctx: &ProbeContext) -> ProbeResult {
    let opts = RunOptions {
        timeout: Some(m.timeout.0),
        ..ctx.scripts.clone()
    };
    judge(&script::run(&m.path, &opts).await, m.dynamic)
}
