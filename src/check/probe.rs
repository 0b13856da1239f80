//! What every probe shares: its result, and the settings from global_defs.

use crate::config::model::Config;
use crate::config::model::Script;
use crate::script::{self, Outcome, RunOptions};

/// Why a probe came out the way it did, in words an operator reads. The
/// usual outcomes ("connected", "ok (HTTP 200)") are static text, so a
/// healthy probe allocates nothing for its reason.
pub use super::state::Reason;

/// Result of one probe: up or down, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub ok: bool,
    pub reason: Reason,
    /// MISC_CHECK misc_dynamic: the weight its exit status asked for.
    pub weight: Option<u32>,
    /// The probe could not even start, for a reason on this host (out of
    /// descriptors or buffers, the bindto address is not here): no verdict
    /// on the real server, whose state stays as it is (`ok` is false).
    pub local: bool,
}

impl ProbeResult {
    pub fn up(reason: impl Into<Reason>) -> Self {
        ProbeResult {
            ok: true,
            reason: reason.into(),
            weight: None,
            local: false,
        }
    }

    pub fn down(reason: impl Into<Reason>) -> Self {
        ProbeResult {
            ok: false,
            reason: reason.into(),
            weight: None,
            local: false,
        }
    }

    /// No verdict: the problem is on this host.
    pub fn local(reason: impl Into<Reason>) -> Self {
        ProbeResult {
            ok: false,
            reason: reason.into(),
            weight: None,
            local: true,
        }
    }
}

/// Settings every probe and hook script shares (from global_defs).
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    pub scripts: RunOptions,
}

impl ProbeContext {
    pub fn from_config(config: &Config) -> Self {
        ProbeContext {
            scripts: RunOptions {
                default_user: config.global.script_user.clone(),
                script_security: config.global.enable_script_security,
                ..RunOptions::default()
            },
        }
    }

    /// Runs a hook script (notify_up/down, quorum_up/down) with no timeout of its own.
    pub async fn run_script(&self, s: &Script) -> Outcome {
        script::run(s, &self.scripts).await
    }
}
