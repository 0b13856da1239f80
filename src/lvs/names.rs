//! Names in keepalived's log wording, so operators can grep for what they know:
//! `[10.0.0.11]:tcp:80`, `VS [203.0.113.10]:tcp:80`.

use std::net::IpAddr;

use crate::config::model::{Protocol, RealServer, VirtualServer, VirtualServerKey};

pub fn protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// `[addr]:proto:port`
pub fn endpoint(addr: IpAddr, p: Protocol, port: u16) -> String {
    format!("[{addr}]:{}:{port}", protocol(p))
}

/// `[vip]:tcp:80`, `FWM 7`, `group NAME`
pub fn virtual_server(vs: &VirtualServer) -> String {
    match &vs.key {
        VirtualServerKey::Addr { addr, port } => endpoint(*addr, vs.protocol, *port),
        VirtualServerKey::Fwmark { mark, .. } => format!("FWM {mark}"),
        VirtualServerKey::Group { name } => format!("group {name}"),
    }
}

pub fn real_server(vs: &VirtualServer, rs: &RealServer) -> String {
    endpoint(rs.addr, vs.protocol, rs.port)
}
