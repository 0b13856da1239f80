//! A configured checker ready to probe again and again: addresses resolved
//! and HTTP requests rendered once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::dns;
use super::dns_message;
use super::file;
use super::http::PreparedHttp;
use super::misc;
use super::ping;
use super::probe::{ProbeContext, ProbeResult};
use super::smtp;
use super::tcp;
use super::udp;
use crate::config::model::{CheckKind, Checker, FileCheck, MiscCheck, UdpCheck};

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
    Smtp {
        targets: Vec<smtp::Target>,
        helo: String,
    },
    Dns {
        addr: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
        /// The query with ID 0, or why there is none.
        query: Result<Vec<u8>, dns_message::QueryError>,
    },
    Ping {
        ip: IpAddr,
        bind: Option<IpAddr>,
        timeout: Duration,
    },
    Udp {
        addr: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
        check: Box<UdpCheck>,
    },
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
            CheckKind::Smtp(s) => {
                let target = |ip, port, bind: Option<IpAddr>, bport: Option<u16>, t: Duration| {
                    smtp::Target {
                        addr: SocketAddr::new(ip, port),
                        bind: bind.map(|a| SocketAddr::new(a, bport.unwrap_or(0))),
                        timeout: t,
                    }
                };
                let targets = if s.hosts.is_empty() {
                    vec![target(
                        c.connect_ip,
                        c.connect_port,
                        c.bindto,
                        c.bind_port,
                        c.connect_timeout.0,
                    )]
                } else {
                    s.hosts
                        .iter()
                        .map(|h| {
                            target(
                                h.connect_ip,
                                h.connect_port,
                                h.bindto,
                                h.bind_port,
                                h.connect_timeout.0,
                            )
                        })
                        .collect()
                };
                Prepared::Smtp {
                    targets,
                    helo: s.helo_name.clone(),
                }
            }
            CheckKind::Dns(d) => Prepared::Dns {
                addr: SocketAddr::new(c.connect_ip, c.connect_port),
                bind: c
                    .bindto
                    .map(|a| SocketAddr::new(a, c.bind_port.unwrap_or(0))),
                timeout: c.connect_timeout.0,
                query: dns_message::encode_query(d),
            },
            CheckKind::Ping => Prepared::Ping {
                ip: c.connect_ip,
                bind: c.bindto,
                timeout: c.connect_timeout.0,
            },
            CheckKind::Udp(u) => Prepared::Udp {
                addr: SocketAddr::new(c.connect_ip, c.connect_port),
                bind: c
                    .bindto
                    .map(|a| SocketAddr::new(a, c.bind_port.unwrap_or(0))),
                timeout: c.connect_timeout.0,
                check: Box::new(u.clone()),
            },
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
            Prepared::Smtp { targets, helo } => Box::pin(smtp::probe(targets, helo)).await,
            Prepared::Dns {
                addr,
                bind,
                timeout,
                query,
            } => match query {
                Ok(q) => Box::pin(dns::probe(*addr, *bind, *timeout, q)).await,
                Err(e) => ProbeResult::local(e.to_string()),
            },
            Prepared::Ping { ip, bind, timeout } => {
                Box::pin(ping::probe(*ip, *bind, *timeout)).await
            }
            Prepared::Udp {
                addr,
                bind,
                timeout,
                check,
            } => Box::pin(udp::probe(*addr, *bind, *timeout, check)).await,
        }
    }
}
