//! One probe of any checker kind, and what probes share (script settings).

use std::net::SocketAddr;

use super::tcp::{self, ProbeResult};
use super::{http, misc};
use crate::config::model::{CheckKind, Checker, Config, Script};
use crate::script::{self, Outcome, RunOptions};

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

pub async fn run_probe(checker: &Checker, ctx: &ProbeContext) -> ProbeResult {
    let c = &checker.common;
    match &checker.kind {
        CheckKind::Tcp => {
            let bind = c
                .bindto
                .map(|a| SocketAddr::new(a, c.bind_port.unwrap_or(0)));
            tcp::probe(
                SocketAddr::new(c.connect_ip, c.connect_port),
                bind,
                c.connect_timeout.0,
            )
            .await
        }
        CheckKind::Http(h) => (&http::probe(c, h).await).into(),
        CheckKind::Misc(m) => misc::probe(m, ctx).await,
    }
}
