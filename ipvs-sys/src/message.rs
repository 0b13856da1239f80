//! [`IpvsMessage`]: one IPVS generic-netlink payload, its encoding and its
//! decoding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DecodeError, Emitable, NetlinkHeader, ParseableParametrized};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::attr::{Table, Writer};
use crate::consts::*;
use crate::{
    Daemon, DaemonState, Dest, DestEntry, Error, Family, ForwardMethod, Info, Netmask, Protocol,
    Service, ServiceEntry, ServiceFlags, ServiceKey, Stats, Timeouts, Tunnel, TunnelType,
};

/// One IPVS message: the attributes after the 4-byte generic-netlink header,
/// typed by command.
///
/// Use it as `NetlinkMessage<GenlMessage<IpvsMessage>>`; the family id is
/// dynamic, so set it with `GenlMessage::set_resolved_family_id` after
/// resolving `"IPVS"` through the genl controller.
///
/// # Requests and replies sharing a command
///
/// The kernel answers with commands that are also requests: a service dump
/// entry is `NEW_SERVICE`, a dest dump entry `NEW_DEST`, a daemon dump entry
/// `NEW_DAEMON`, the GET_CONFIG reply `SET_CONFIG` (only `SET_INFO` is
/// reply-only). Three decoders resolve this:
///
/// - [`IpvsMessage::parse_request`] reads every command as a request
///   (what the kernel does);
/// - [`IpvsMessage::parse_reply`] reads those five commands as replies
///   (what a client receiving kernel answers wants) and the rest as requests;
/// - [`IpvsMessage::parse`], used by the netlink-packet traits, goes by shape:
///   - `NEW_SERVICE` whose SERVICE nest has STATS or STATS64 (the kernel
///     always sends STATS, and STATS64 where it has it) is a [`IpvsMessage::ServiceReply`],
///     otherwise a [`IpvsMessage::NewService`];
///   - `NEW_DEST` without a top-level SERVICE attribute (the kernel's dest
///     dump never has one; a request must) is a [`IpvsMessage::DestReply`],
///     otherwise a [`IpvsMessage::NewDest`];
///   - `NEW_DAEMON` is a [`IpvsMessage::NewDaemon`] and `SET_CONFIG` a
///     [`IpvsMessage::SetConfig`], since requests and replies look the same;
///   - `SET_INFO` is an [`IpvsMessage::InfoReply`].
///
///   [`IpvsMessage::into_reply`] turns what `parse` gave for a kernel
///   answer into the reply variant, losslessly.
///
/// For every message `m`, decoding `m`'s encoding with
/// `IpvsMessage::parse_as(m.command(), bytes, m.direction())` gives `m`
/// back; `parse` gives `m` back except for `DaemonReply`, `ConfigReply` and a
/// `ServiceReply` without counters, for which `parse(..).into_reply()` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsMessage {
    /// `NEW_SERVICE`: add a service (`EEXIST` if its key is taken).
    NewService(Service),
    /// `SET_SERVICE`: replace a service's scheduler, flags, timeout,
    /// netmask and persistence engine (`ESRCH` if absent).
    SetService(Service),
    /// `DEL_SERVICE` (`ESRCH` if absent).
    DelService(ServiceKey),
    /// `GET_SERVICE`: `Some` asks for one service (`ESRCH` if absent);
    /// `None` dumps them all and needs `NLM_F_DUMP` (with the flag set the
    /// kernel dumps everything whatever the key).
    GetService(Option<ServiceKey>),
    /// A service as reported: the `NEW_SERVICE` answer to `GET_SERVICE`.
    ServiceReply(ServiceEntry),
    /// `NEW_DEST` (`EEXIST` if the address and port are taken).
    NewDest {
        /// The service to add to.
        service: ServiceKey,
        /// The destination.
        dest: Dest,
    },
    /// `SET_DEST`: the kernel wants the full destination here too
    /// (`ENOENT` if absent).
    SetDest {
        /// The service.
        service: ServiceKey,
        /// The destination with its new settings.
        dest: Dest,
    },
    /// `DEL_DEST`: only the address and port identify it (`ENOENT` if
    /// absent).
    DelDest {
        /// The service.
        service: ServiceKey,
        /// Real server address (its family is sent as ADDR_FAMILY).
        addr: IpAddr,
        /// Real server port.
        port: u16,
    },
    /// `GET_DEST`: dump one service's destinations; dump only
    /// (`NLM_F_DUMP`), and an unknown service yields an empty dump.
    GetDest(ServiceKey),
    /// A destination as reported: the `NEW_DEST` answer to `GET_DEST`.
    DestReply(DestEntry),
    /// `NEW_DAEMON`: start a sync daemon (`EEXIST` if that role runs).
    NewDaemon(Daemon),
    /// `DEL_DAEMON`: stop the daemon of that role (`ESRCH` if not running).
    DelDaemon(DaemonState),
    /// `GET_DAEMON`: dump the running daemons; dump only.
    GetDaemon,
    /// A running daemon: the `NEW_DAEMON` answer to `GET_DAEMON`.
    DaemonReply(Daemon),
    /// `SET_CONFIG`: set the given timeouts, keep the others.
    SetConfig(Timeouts),
    /// `GET_CONFIG`.
    GetConfig,
    /// The `SET_CONFIG` answer to `GET_CONFIG`.
    ConfigReply(Timeouts),
    /// `GET_INFO`.
    GetInfo,
    /// The `SET_INFO` answer to `GET_INFO`.
    InfoReply(Info),
    /// `ZERO`: reset the counters of one service, or of all with `None`.
    Zero(Option<ServiceKey>),
    /// `FLUSH`: delete every service.
    Flush,
}

/// Which way a message travels, for [`IpvsMessage::parse_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// User space to kernel.
    Request,
    /// Kernel to user space.
    Reply,
}

impl IpvsMessage {
    /// The generic-netlink command this message is sent with.
    pub fn command(&self) -> u8 {
        match self {
            IpvsMessage::NewService(_) | IpvsMessage::ServiceReply(_) => IPVS_CMD_NEW_SERVICE,
            IpvsMessage::SetService(_) => IPVS_CMD_SET_SERVICE,
            IpvsMessage::DelService(_) => IPVS_CMD_DEL_SERVICE,
            IpvsMessage::GetService(_) => IPVS_CMD_GET_SERVICE,
            IpvsMessage::NewDest { .. } | IpvsMessage::DestReply(_) => IPVS_CMD_NEW_DEST,
            IpvsMessage::SetDest { .. } => IPVS_CMD_SET_DEST,
            IpvsMessage::DelDest { .. } => IPVS_CMD_DEL_DEST,
            IpvsMessage::GetDest(_) => IPVS_CMD_GET_DEST,
            IpvsMessage::NewDaemon(_) | IpvsMessage::DaemonReply(_) => IPVS_CMD_NEW_DAEMON,
            IpvsMessage::DelDaemon(_) => IPVS_CMD_DEL_DAEMON,
            IpvsMessage::GetDaemon => IPVS_CMD_GET_DAEMON,
            IpvsMessage::SetConfig(_) | IpvsMessage::ConfigReply(_) => IPVS_CMD_SET_CONFIG,
            IpvsMessage::GetConfig => IPVS_CMD_GET_CONFIG,
            IpvsMessage::InfoReply(_) => IPVS_CMD_SET_INFO,
            IpvsMessage::GetInfo => IPVS_CMD_GET_INFO,
            IpvsMessage::Zero(_) => IPVS_CMD_ZERO,
            IpvsMessage::Flush => IPVS_CMD_FLUSH,
        }
    }

    /// Whether this is a request or a kernel answer.
    pub fn direction(&self) -> Direction {
        match self {
            IpvsMessage::ServiceReply(_)
            | IpvsMessage::DestReply(_)
            | IpvsMessage::DaemonReply(_)
            | IpvsMessage::ConfigReply(_)
            | IpvsMessage::InfoReply(_) => Direction::Reply,
            _ => Direction::Request,
        }
    }

    /// Whether the request must be sent with `NLM_F_DUMP` (the kernel only
    /// has a dumpit handler for it, or `None` asks for all services).
    pub fn is_dump_request(&self) -> bool {
        matches!(
            self,
            IpvsMessage::GetService(None) | IpvsMessage::GetDest(_) | IpvsMessage::GetDaemon
        )
    }

    /// Reinterprets a request that shares its command with a reply as that
    /// reply: `NewService` becomes a `ServiceReply` without counters,
    /// `NewDaemon` a `DaemonReply`, `SetConfig` a `ConfigReply`. Everything
    /// else is returned unchanged (a `NewDest` names a service, which a dest
    /// reply never does, so it stays).
    pub fn into_reply(self) -> IpvsMessage {
        match self {
            IpvsMessage::NewService(service) => IpvsMessage::ServiceReply(ServiceEntry {
                service,
                stats: None,
                stats64: None,
            }),
            IpvsMessage::NewDaemon(d) => IpvsMessage::DaemonReply(d),
            IpvsMessage::SetConfig(t) => IpvsMessage::ConfigReply(t),
            other => other,
        }
    }

    /// Decodes a payload (the bytes after the genl header) by shape; see
    /// the type's documentation. This is what `NetlinkMessage::deserialize`
    /// uses.
    pub fn parse(cmd: u8, payload: &[u8]) -> Result<IpvsMessage, Error> {
        decode(cmd, payload, Mode::Auto)
    }

    /// Decodes a payload the way the kernel reads a request.
    pub fn parse_request(cmd: u8, payload: &[u8]) -> Result<IpvsMessage, Error> {
        decode(cmd, payload, Mode::Request)
    }

    /// Decodes a payload the way a client reads a kernel answer: the reply
    /// commands give reply variants.
    pub fn parse_reply(cmd: u8, payload: &[u8]) -> Result<IpvsMessage, Error> {
        decode(cmd, payload, Mode::Reply)
    }

    /// [`IpvsMessage::parse_request`] or [`IpvsMessage::parse_reply`].
    pub fn parse_as(cmd: u8, payload: &[u8], direction: Direction) -> Result<IpvsMessage, Error> {
        match direction {
            Direction::Request => Self::parse_request(cmd, payload),
            Direction::Reply => Self::parse_reply(cmd, payload),
        }
    }

    /// The encoded attributes (the payload after the genl header).
    pub fn to_payload(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write(&mut Writer::new(&mut buf, 0));
        buf
    }

    /// Checks what the kernel would refuse for any table state: see
    /// [`Service::validate`], [`Dest::validate`], [`Daemon::validate`], plus
    /// a zero firewall mark (which the kernel reads as "no mark" and then
    /// looks for the address service 0.0.0.0:0).
    pub fn validate(&self) -> Result<(), Error> {
        let key_ok = |key: &ServiceKey| match key {
            ServiceKey::Fwmark { mark: 0, .. } => Err(Error::Invalid {
                what: "firewall mark",
                why: "0 is not a mark".to_owned(),
            }),
            _ => Ok(()),
        };
        match self {
            IpvsMessage::NewService(s) | IpvsMessage::SetService(s) => {
                key_ok(&s.key)?;
                s.validate()
            }
            IpvsMessage::NewDest { service, dest } | IpvsMessage::SetDest { service, dest } => {
                key_ok(service)?;
                dest.validate(service.family())
            }
            IpvsMessage::DelService(k)
            | IpvsMessage::GetService(Some(k))
            | IpvsMessage::GetDest(k)
            | IpvsMessage::Zero(Some(k))
            | IpvsMessage::DelDest { service: k, .. } => key_ok(k),
            IpvsMessage::NewDaemon(d) => d.validate(),
            _ => Ok(()),
        }
    }

    /// Appends the attributes (the payload after the genl header).
    fn write(&self, w: &mut Writer<'_>) {
        match self {
            IpvsMessage::NewService(s) | IpvsMessage::SetService(s) => {
                write_service(w, s, None, None)
            }
            IpvsMessage::ServiceReply(e) => {
                write_service(w, &e.service, e.stats.as_ref(), e.stats64.as_ref())
            }
            IpvsMessage::DelService(k) | IpvsMessage::GetDest(k) => write_key(w, k),
            IpvsMessage::GetService(k) | IpvsMessage::Zero(k) => {
                if let Some(k) = k {
                    write_key(w, k)
                }
            }
            IpvsMessage::NewDest { service, dest } | IpvsMessage::SetDest { service, dest } => {
                write_key(w, service);
                write_dest(w, dest, None);
            }
            IpvsMessage::DelDest {
                service,
                addr,
                port,
            } => {
                write_key(w, service);
                w.nested(IPVS_CMD_ATTR_DEST, |w| {
                    w.bytes(IPVS_DEST_ATTR_ADDR, &addr_bytes(addr));
                    w.be16(IPVS_DEST_ATTR_PORT, *port);
                    w.u16(IPVS_DEST_ATTR_ADDR_FAMILY, Family::of(addr).to_raw());
                });
            }
            IpvsMessage::DestReply(e) => write_dest(w, &e.dest, Some(e)),
            IpvsMessage::NewDaemon(d) | IpvsMessage::DaemonReply(d) => write_daemon(w, d),
            IpvsMessage::DelDaemon(state) => w.nested(IPVS_CMD_ATTR_DAEMON, |w| {
                w.u32(IPVS_DAEMON_ATTR_STATE, state.to_raw())
            }),
            IpvsMessage::SetConfig(t) | IpvsMessage::ConfigReply(t) => {
                for (kind, v) in [
                    (IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp),
                    (IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcp_fin),
                    (IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp),
                ] {
                    if let Some(v) = v {
                        w.u32(kind, v);
                    }
                }
            }
            IpvsMessage::InfoReply(i) => {
                w.u32(IPVS_INFO_ATTR_VERSION, i.version);
                w.u32(IPVS_INFO_ATTR_CONN_TAB_SIZE, i.conn_tab_size);
            }
            IpvsMessage::GetDaemon
            | IpvsMessage::GetConfig
            | IpvsMessage::GetInfo
            | IpvsMessage::Flush => {}
        }
    }

    /// Appends this message to `out` as one whole netlink request (netlink
    /// header, genl header, attributes), addressed to the IPVS family id
    /// `family` (resolved through the genl controller at run time). The
    /// same bytes as `NetlinkMessage<GenlMessage<_>>::serialize`, without
    /// its intermediate copies: this is the path that writes whole tables.
    pub fn encode_request(&self, family: u16, flags: u16, sequence_number: u32, out: &mut Vec<u8>) {
        let mut header = NetlinkHeader::default();
        let genl = GenlHeader {
            cmd: self.command(),
            version: IPVS_GENL_VERSION,
        };
        let (start, nl_len) = (out.len(), header.buffer_len());
        out.resize(start + nl_len + genl.buffer_len(), 0);
        genl.emit(&mut out[start + nl_len..]);
        self.write(&mut Writer::new(out, start));
        header.length = (out.len() - start) as u32;
        header.message_type = family;
        header.flags = flags;
        header.sequence_number = sequence_number;
        header.emit(&mut out[start..start + nl_len]);
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        IpvsMessage::command(self)
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.to_payload().len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        let payload = self.to_payload();
        buffer[..payload.len()].copy_from_slice(&payload);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        IpvsMessage::parse(header.cmd, buf).map_err(DecodeError::from)
    }
}

// ---------------------------------------------------------------- encoding

/// An address as the kernel's `union nf_inet_addr`: 16 bytes, IPv4 first.
fn addr_bytes(addr: &IpAddr) -> [u8; 16] {
    let mut bytes = [0; 16];
    match addr {
        IpAddr::V4(a) => bytes[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => bytes.copy_from_slice(&a.octets()),
    }
    bytes
}

fn write_key_attrs(w: &mut Writer<'_>, key: &ServiceKey) {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            w.u16(IPVS_SVC_ATTR_AF, Family::of(addr).to_raw());
            w.u16(IPVS_SVC_ATTR_PROTOCOL, protocol.to_raw());
            w.bytes(IPVS_SVC_ATTR_ADDR, &addr_bytes(addr));
            w.be16(IPVS_SVC_ATTR_PORT, *port);
        }
        ServiceKey::Fwmark { family, mark } => {
            w.u16(IPVS_SVC_ATTR_AF, family.to_raw());
            w.u32(IPVS_SVC_ATTR_FWMARK, *mark);
        }
    }
}

fn write_key(w: &mut Writer<'_>, key: &ServiceKey) {
    w.nested(IPVS_CMD_ATTR_SERVICE, |w| write_key_attrs(w, key));
}

fn write_service(w: &mut Writer<'_>, s: &Service, stats: Option<&Stats>, stats64: Option<&Stats>) {
    w.nested(IPVS_CMD_ATTR_SERVICE, |w| {
        write_key_attrs(w, &s.key);
        w.string(IPVS_SVC_ATTR_SCHED_NAME, &s.sched_name);
        if let Some(pe) = &s.pe_name {
            w.string(IPVS_SVC_ATTR_PE_NAME, pe);
        }
        // struct ip_vs_flags: the flags, then the mask of flags to set.
        let mut flags = [0; 8];
        flags[..4].copy_from_slice(&s.flags.0.to_ne_bytes());
        flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        w.bytes(IPVS_SVC_ATTR_FLAGS, &flags);
        w.u32(IPVS_SVC_ATTR_TIMEOUT, s.timeout);
        w.bytes(IPVS_SVC_ATTR_NETMASK, &s.netmask.to_wire());
        if let Some(st) = stats {
            write_stats(w, IPVS_SVC_ATTR_STATS, st, false);
        }
        if let Some(st) = stats64 {
            write_stats(w, IPVS_SVC_ATTR_STATS64, st, true);
        }
    });
}

fn write_stats(w: &mut Writer<'_>, kind: u16, s: &Stats, wide: bool) {
    // STATS truncates the non-byte counters to u32, as ip_vs_genl_fill_stats
    // does with its `(u32)` casts.
    let counter = |w: &mut Writer<'_>, k: u16, v: u64| {
        if wide {
            w.u64(k, v)
        } else {
            w.u32(k, v as u32)
        }
    };
    w.nested(kind, |w| {
        counter(w, IPVS_STATS_ATTR_CONNS, s.conns);
        counter(w, IPVS_STATS_ATTR_INPKTS, s.inpkts);
        counter(w, IPVS_STATS_ATTR_OUTPKTS, s.outpkts);
        w.u64(IPVS_STATS_ATTR_INBYTES, s.inbytes);
        w.u64(IPVS_STATS_ATTR_OUTBYTES, s.outbytes);
        counter(w, IPVS_STATS_ATTR_CPS, s.cps);
        counter(w, IPVS_STATS_ATTR_INPPS, s.inpps);
        counter(w, IPVS_STATS_ATTR_OUTPPS, s.outpps);
        counter(w, IPVS_STATS_ATTR_INBPS, s.inbps);
        counter(w, IPVS_STATS_ATTR_OUTBPS, s.outbps);
    });
}

/// The DEST nest, in the kernel's `ip_vs_genl_fill_dest` order; `entry`
/// adds the reply-only counters and stats.
fn write_dest(w: &mut Writer<'_>, d: &Dest, entry: Option<&DestEntry>) {
    w.nested(IPVS_CMD_ATTR_DEST, |w| {
        w.bytes(IPVS_DEST_ATTR_ADDR, &addr_bytes(&d.addr));
        w.be16(IPVS_DEST_ATTR_PORT, d.port);
        w.u32(IPVS_DEST_ATTR_FWD_METHOD, d.fwd.to_raw());
        w.u32(IPVS_DEST_ATTR_WEIGHT, d.weight);
        if let Some(t) = d.tunnel {
            w.u8(IPVS_DEST_ATTR_TUN_TYPE, t.kind.to_raw());
            w.be16(IPVS_DEST_ATTR_TUN_PORT, t.port);
            w.u16(IPVS_DEST_ATTR_TUN_FLAGS, t.flags);
        }
        w.u32(IPVS_DEST_ATTR_U_THRESH, d.u_thresh);
        w.u32(IPVS_DEST_ATTR_L_THRESH, d.l_thresh);
        if let Some(e) = entry {
            w.u32(IPVS_DEST_ATTR_ACTIVE_CONNS, e.active_conns);
            w.u32(IPVS_DEST_ATTR_INACT_CONNS, e.inact_conns);
            w.u32(IPVS_DEST_ATTR_PERSIST_CONNS, e.persist_conns);
        }
        w.u16(IPVS_DEST_ATTR_ADDR_FAMILY, Family::of(&d.addr).to_raw());
        if let Some(e) = entry {
            if let Some(st) = &e.stats {
                write_stats(w, IPVS_DEST_ATTR_STATS, st, false);
            }
            if let Some(st) = &e.stats64 {
                write_stats(w, IPVS_DEST_ATTR_STATS64, st, true);
            }
        }
    });
}

fn write_daemon(w: &mut Writer<'_>, d: &Daemon) {
    w.nested(IPVS_CMD_ATTR_DAEMON, |w| {
        w.u32(IPVS_DAEMON_ATTR_STATE, d.state.to_raw());
        w.string(IPVS_DAEMON_ATTR_MCAST_IFN, &d.mcast_ifn);
        w.u32(IPVS_DAEMON_ATTR_SYNC_ID, d.sync_id);
        if let Some(v) = d.sync_maxlen {
            w.u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, v);
        }
        if let Some(v) = d.mcast_port {
            w.u16(IPVS_DAEMON_ATTR_MCAST_PORT, v);
        }
        if let Some(v) = d.mcast_ttl {
            w.u8(IPVS_DAEMON_ATTR_MCAST_TTL, v);
        }
        match d.mcast_group {
            Some(IpAddr::V4(g)) => w.bytes(IPVS_DAEMON_ATTR_MCAST_GROUP, &g.octets()),
            Some(IpAddr::V6(g)) => w.bytes(IPVS_DAEMON_ATTR_MCAST_GROUP6, &g.octets()),
            None => {}
        }
    });
}

// ---------------------------------------------------------------- decoding

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Auto,
    Request,
    Reply,
}

fn nested<'a>(
    top: &Table<'a>,
    kind: u16,
    scope: &'static str,
    names: &'static [&'static str],
) -> Result<Table<'a>, Error> {
    Table::parse(scope, names, top.required(kind)?)
}

fn opt_nested<'a>(
    top: &Table<'a>,
    kind: u16,
    scope: &'static str,
    names: &'static [&'static str],
) -> Result<Option<Table<'a>>, Error> {
    top.raw(kind)
        .map(|raw| Table::parse(scope, names, raw))
        .transpose()
}

fn service_table<'a>(top: &Table<'a>) -> Result<Table<'a>, Error> {
    nested(top, IPVS_CMD_ATTR_SERVICE, "service", SVC_ATTR_NAMES)
}

fn dest_table<'a>(top: &Table<'a>) -> Result<Table<'a>, Error> {
    nested(top, IPVS_CMD_ATTR_DEST, "dest", DEST_ATTR_NAMES)
}

fn daemon_table<'a>(top: &Table<'a>) -> Result<Table<'a>, Error> {
    nested(top, IPVS_CMD_ATTR_DAEMON, "daemon", DAEMON_ATTR_NAMES)
}

fn decode(cmd: u8, payload: &[u8], mode: Mode) -> Result<IpvsMessage, Error> {
    if cmd == IPVS_CMD_SET_INFO {
        let t = Table::parse("info", INFO_ATTR_NAMES, payload)?;
        return Ok(IpvsMessage::InfoReply(Info {
            version: t.req_u32(IPVS_INFO_ATTR_VERSION)?,
            conn_tab_size: t.req_u32(IPVS_INFO_ATTR_CONN_TAB_SIZE)?,
        }));
    }
    let top = Table::parse("command", CMD_ATTR_NAMES, payload)?;
    let reply = |auto_says_reply: bool| match mode {
        Mode::Auto => auto_says_reply,
        Mode::Request => false,
        Mode::Reply => true,
    };
    let opt_key = || {
        opt_nested(&top, IPVS_CMD_ATTR_SERVICE, "service", SVC_ATTR_NAMES)?
            .map(|t| parse_key(&t))
            .transpose()
    };
    let key = || parse_key(&service_table(&top)?);
    Ok(match cmd {
        IPVS_CMD_NEW_SERVICE => {
            let st = service_table(&top)?;
            if reply(st.has(IPVS_SVC_ATTR_STATS) || st.has(IPVS_SVC_ATTR_STATS64)) {
                IpvsMessage::ServiceReply(parse_service_entry(&st)?)
            } else {
                IpvsMessage::NewService(parse_service(&st)?)
            }
        }
        IPVS_CMD_SET_SERVICE => IpvsMessage::SetService(parse_service(&service_table(&top)?)?),
        IPVS_CMD_DEL_SERVICE => IpvsMessage::DelService(key()?),
        IPVS_CMD_GET_SERVICE => IpvsMessage::GetService(opt_key()?),
        IPVS_CMD_NEW_DEST if reply(!top.has(IPVS_CMD_ATTR_SERVICE)) => {
            IpvsMessage::DestReply(parse_dest_entry(&dest_table(&top)?)?)
        }
        IPVS_CMD_NEW_DEST | IPVS_CMD_SET_DEST => {
            let service = key()?;
            let dest = parse_dest(&dest_table(&top)?, Some(service.family()))?;
            if cmd == IPVS_CMD_NEW_DEST {
                IpvsMessage::NewDest { service, dest }
            } else {
                IpvsMessage::SetDest { service, dest }
            }
        }
        IPVS_CMD_DEL_DEST => {
            let service = key()?;
            let dt = dest_table(&top)?;
            IpvsMessage::DelDest {
                service,
                addr: parse_dest_addr(&dt, Some(service.family()))?,
                port: dt.req_be16(IPVS_DEST_ATTR_PORT)?,
            }
        }
        IPVS_CMD_GET_DEST => IpvsMessage::GetDest(key()?),
        IPVS_CMD_NEW_DAEMON => {
            let d = parse_daemon(&daemon_table(&top)?)?;
            if reply(false) {
                IpvsMessage::DaemonReply(d)
            } else {
                IpvsMessage::NewDaemon(d)
            }
        }
        IPVS_CMD_DEL_DAEMON => IpvsMessage::DelDaemon(DaemonState::from_raw(
            daemon_table(&top)?.req_u32(IPVS_DAEMON_ATTR_STATE)?,
        )?),
        IPVS_CMD_GET_DAEMON => IpvsMessage::GetDaemon,
        IPVS_CMD_SET_CONFIG => {
            let t = Timeouts {
                tcp: top.u32(IPVS_CMD_ATTR_TIMEOUT_TCP)?,
                tcp_fin: top.u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN)?,
                udp: top.u32(IPVS_CMD_ATTR_TIMEOUT_UDP)?,
            };
            if reply(false) {
                IpvsMessage::ConfigReply(t)
            } else {
                IpvsMessage::SetConfig(t)
            }
        }
        IPVS_CMD_GET_CONFIG => IpvsMessage::GetConfig,
        IPVS_CMD_GET_INFO => IpvsMessage::GetInfo,
        IPVS_CMD_ZERO => IpvsMessage::Zero(opt_key()?),
        IPVS_CMD_FLUSH => IpvsMessage::Flush,
        other => return Err(Error::UnknownCommand(other)),
    })
}

fn family_of_raw(af: u16) -> Result<Family, Error> {
    Family::from_raw(af).ok_or(Error::UnknownFamily(af))
}

/// A 4- or 16-byte `union nf_inet_addr` read for `family`: IPv4 takes the
/// first four bytes, IPv6 needs all sixteen.
fn parse_addr(family: Family, raw: &[u8]) -> Result<IpAddr, Error> {
    match family {
        Family::Inet => match raw.len() {
            4 | 16 => match raw.get(..4).map(<[u8; 4]>::try_from) {
                Some(Ok(b)) => Ok(IpAddr::V4(Ipv4Addr::from(b))),
                _ => Err(Error::AddressLength(raw.len())),
            },
            n => Err(Error::AddressLength(n)),
        },
        Family::Inet6 => <[u8; 16]>::try_from(raw)
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .map_err(|_| Error::AddressLength(raw.len())),
    }
}

/// The identifying part of a SERVICE nest, checked in the kernel's order:
/// AF, then FWMARK or PROTOCOL + ADDR + PORT (FWMARK wins if both are there).
fn parse_key(t: &Table<'_>) -> Result<ServiceKey, Error> {
    let family = family_of_raw(t.req_u16(IPVS_SVC_ATTR_AF)?)?;
    if let Some(mark) = t.u32(IPVS_SVC_ATTR_FWMARK)? {
        return Ok(ServiceKey::Fwmark { family, mark });
    }
    let protocol = Protocol::from_raw(t.req_u16(IPVS_SVC_ATTR_PROTOCOL)?);
    let addr = parse_addr(family, t.required(IPVS_SVC_ATTR_ADDR)?)?;
    let port = t.req_be16(IPVS_SVC_ATTR_PORT)?;
    Ok(ServiceKey::Addr {
        protocol,
        addr,
        port,
    })
}

fn parse_service(t: &Table<'_>) -> Result<Service, Error> {
    let key = parse_key(t)?;
    let sched_name = t.req_string(IPVS_SVC_ATTR_SCHED_NAME)?;
    let flags = t
        .array::<8>(IPVS_SVC_ATTR_FLAGS)?
        .ok_or_else(|| t.missing(IPVS_SVC_ATTR_FLAGS))?;
    let [f0, f1, f2, f3, ..] = flags;
    let timeout = t.req_u32(IPVS_SVC_ATTR_TIMEOUT)?;
    let netmask = t
        .array::<4>(IPVS_SVC_ATTR_NETMASK)?
        .ok_or_else(|| t.missing(IPVS_SVC_ATTR_NETMASK))?;
    Ok(Service {
        key,
        sched_name,
        flags: ServiceFlags(u32::from_ne_bytes([f0, f1, f2, f3])),
        timeout,
        netmask: Netmask::from_wire(key.family(), netmask)?,
        pe_name: t.string(IPVS_SVC_ATTR_PE_NAME)?,
    })
}

fn parse_service_entry(t: &Table<'_>) -> Result<ServiceEntry, Error> {
    Ok(ServiceEntry {
        service: parse_service(t)?,
        stats: opt_stats(t, IPVS_SVC_ATTR_STATS, false)?,
        stats64: opt_stats(t, IPVS_SVC_ATTR_STATS64, true)?,
    })
}

fn opt_stats(t: &Table<'_>, kind: u16, wide: bool) -> Result<Option<Stats>, Error> {
    t.raw(kind).map(|raw| parse_stats(raw, wide)).transpose()
}

fn parse_stats(raw: &[u8], wide: bool) -> Result<Stats, Error> {
    let t = Table::parse("stats", STATS_ATTR_NAMES, raw)?;
    let counter = |kind: u16| -> Result<u64, Error> {
        let v = if wide {
            t.u64(kind)?
        } else {
            t.u32(kind)?.map(u64::from)
        };
        Ok(v.unwrap_or(0))
    };
    let bytes = |kind: u16| -> Result<u64, Error> { Ok(t.u64(kind)?.unwrap_or(0)) };
    Ok(Stats {
        conns: counter(IPVS_STATS_ATTR_CONNS)?,
        inpkts: counter(IPVS_STATS_ATTR_INPKTS)?,
        outpkts: counter(IPVS_STATS_ATTR_OUTPKTS)?,
        inbytes: bytes(IPVS_STATS_ATTR_INBYTES)?,
        outbytes: bytes(IPVS_STATS_ATTR_OUTBYTES)?,
        cps: counter(IPVS_STATS_ATTR_CPS)?,
        inpps: counter(IPVS_STATS_ATTR_INPPS)?,
        outpps: counter(IPVS_STATS_ATTR_OUTPPS)?,
        inbps: counter(IPVS_STATS_ATTR_INBPS)?,
        outbps: counter(IPVS_STATS_ATTR_OUTBPS)?,
    })
}

/// The destination address: ADDR_FAMILY if present and non-zero (0 means
/// "the service's", as in the kernel), else `service_family`; with neither,
/// only a 4-byte address can be read.
fn parse_dest_addr(t: &Table<'_>, service_family: Option<Family>) -> Result<IpAddr, Error> {
    let raw = t.required(IPVS_DEST_ATTR_ADDR)?;
    let family = match t.u16(IPVS_DEST_ATTR_ADDR_FAMILY)? {
        None | Some(0) => service_family,
        Some(af) => Some(family_of_raw(af)?),
    };
    match family {
        Some(f) => parse_addr(f, raw),
        None if raw.len() == 4 => parse_addr(Family::Inet, raw),
        None if raw.len() == 16 => Err(t.missing(IPVS_DEST_ATTR_ADDR_FAMILY)),
        None => Err(Error::AddressLength(raw.len())),
    }
}

fn parse_dest(t: &Table<'_>, service_family: Option<Family>) -> Result<Dest, Error> {
    let addr = parse_dest_addr(t, service_family)?;
    let port = t.req_be16(IPVS_DEST_ATTR_PORT)?;
    let fwd = ForwardMethod::from_raw(t.req_u32(IPVS_DEST_ATTR_FWD_METHOD)?)?;
    let weight = t.req_u32(IPVS_DEST_ATTR_WEIGHT)?;
    let u_thresh = t.req_u32(IPVS_DEST_ATTR_U_THRESH)?;
    let l_thresh = t.req_u32(IPVS_DEST_ATTR_L_THRESH)?;
    let tunnel = if t.has(IPVS_DEST_ATTR_TUN_TYPE)
        || t.has(IPVS_DEST_ATTR_TUN_PORT)
        || t.has(IPVS_DEST_ATTR_TUN_FLAGS)
    {
        Some(Tunnel {
            kind: t
                .u8(IPVS_DEST_ATTR_TUN_TYPE)?
                .map(TunnelType::from_raw)
                .transpose()?
                .unwrap_or_default(),
            port: t.be16(IPVS_DEST_ATTR_TUN_PORT)?.unwrap_or(0),
            flags: t.u16(IPVS_DEST_ATTR_TUN_FLAGS)?.unwrap_or(0),
        })
    } else {
        None
    };
    Ok(Dest {
        addr,
        port,
        fwd,
        weight,
        u_thresh,
        l_thresh,
        tunnel,
    })
}

fn parse_dest_entry(t: &Table<'_>) -> Result<DestEntry, Error> {
    Ok(DestEntry {
        dest: parse_dest(t, None)?,
        active_conns: t.u32(IPVS_DEST_ATTR_ACTIVE_CONNS)?.unwrap_or(0),
        inact_conns: t.u32(IPVS_DEST_ATTR_INACT_CONNS)?.unwrap_or(0),
        persist_conns: t.u32(IPVS_DEST_ATTR_PERSIST_CONNS)?.unwrap_or(0),
        stats: opt_stats(t, IPVS_DEST_ATTR_STATS, false)?,
        stats64: opt_stats(t, IPVS_DEST_ATTR_STATS64, true)?,
    })
}

fn parse_daemon(t: &Table<'_>) -> Result<Daemon, Error> {
    let state = DaemonState::from_raw(t.req_u32(IPVS_DAEMON_ATTR_STATE)?)?;
    let mcast_ifn = t.req_string(IPVS_DAEMON_ATTR_MCAST_IFN)?;
    let sync_id = t.req_u32(IPVS_DAEMON_ATTR_SYNC_ID)?;
    // As in ip_vs_genl_new_daemon: an IPv4 group wins over an IPv6 one.
    let mcast_group = match t.array::<4>(IPVS_DAEMON_ATTR_MCAST_GROUP)? {
        Some(g) => Some(IpAddr::V4(Ipv4Addr::from(g))),
        None => t
            .array::<16>(IPVS_DAEMON_ATTR_MCAST_GROUP6)?
            .map(|g| IpAddr::V6(Ipv6Addr::from(g))),
    };
    Ok(Daemon {
        state,
        mcast_ifn,
        sync_id,
        sync_maxlen: t.u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN)?,
        mcast_group,
        mcast_port: t.u16(IPVS_DAEMON_ATTR_MCAST_PORT)?,
        mcast_ttl: t.u8(IPVS_DAEMON_ATTR_MCAST_TTL)?,
    })
}
