//! One probe of any checker kind, and what probes share (script settings).

use std::net::SocketAddr;
use std::time::Duration;

use super::http::PreparedHttp;
use super::misc;
use super::tcp::{self, ProbeResult};
use crate::config::model::{CheckKind, Checker, Config, MiscCheck, Script};
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

/// A checker ready to probe again and again: addresses resolved and HTTP
/// requests rendered once.
#[derive(Debug, Clone)]
pub enum Prepared {
    Tcp {
        addr: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
    },
    Http(Box<PreparedHttp>),
    Misc(Box<MiscCheck>),
}

impl Prepared {
    pub fn new(checker: &Checker) -> Self {
        let c = &checker.common;
        match &checker.kind {
            CheckKind::Tcp => Prepared::Tcp {
                addr: SocketAddr::new(c.connect_ip, c.connect_port),
                bind: c
                    .bindto
                    .map(|a| SocketAddr::new(a, c.bind_port.unwrap_or(0))),
                timeout: c.connect_timeout.0,
            },
            CheckKind::Http(h) => Prepared::Http(Box::new(PreparedHttp::new(c, h))),
            CheckKind::Misc(m) => Prepared::Misc(Box::new(m.clone())),
        }
    }

    /// One probe. The TCP connect runs in place; the larger HTTP/TLS and
    /// script futures are boxed, so that an idle probe task stays small.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeResult {
        match self {
            Prepared::Tcp {
                addr,
                bind,
                timeout,
            } => tcp::probe(*addr, *bind, *timeout).await,
            Prepared::Http(h) => Box::pin(h.probe()).await,
            Prepared::Misc(m) => Box::pin(misc::probe(m, ctx)).await,
        }
    }
}

/// One probe of a configured checker (prepares it first: for a single use).
pub async fn run_probe(checker: &Checker, ctx: &ProbeContext) -> ProbeResult {
    Prepared::new(checker).run(ctx).await
}
