//! A configured checker ready to probe again and again: addresses resolved
//! and HTTP requests rendered once.

use std::net::SocketAddr;
use std::time::Duration;

use super::file;
use super::http::PreparedHttp;
use super::misc;
use super::probe::{ProbeContext, ProbeResult};
use super::tcp;
use crate::config::model::{CheckKind, Checker, FileCheck, MiscCheck};

#[derive(Debug)]
pub enum Prepared {
    Tcp {
        addr: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
    },
    Http(Box<PreparedHttp>),
    Misc(Box<MiscCheck>),
    /// Watched by the engine rather than probed (see [`crate::track_file`]).
    File(Box<FileCheck>),
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
            CheckKind::File(f) => Prepared::File(Box::new(f.clone())),
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
            Prepared::File(f) => file::judge(crate::track_file::read_value(&f.name, &f.path), f),
        }
    }
}
