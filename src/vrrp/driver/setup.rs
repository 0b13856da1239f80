//! The driver's I/O table for one configuration: each instance's interface
//! (its VMAC created if asked), advert source and socket, the sockets, and
//! the notify workers. Rebuilt by a reload; the node core gets the
//! [`InstanceSetup`]s. An instance whose interface does not exist gets
//! [`Iface::missing`] and no socket; [`Io::attach`] opens it later, when
//! the node asks.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::model::{Config, VrrpInstance};
use crate::script::RunOptions;

use super::super::instance;
use super::super::node::{Iface, InstanceSetup};
use super::super::notify::Job;
use super::super::rtnl::{self, Rtnl};
use super::super::socket::VrrpSocket;
use super::Error;
use super::tasks::{self, ScriptRunner};

/// One instance as the driver sees it.
pub(super) struct IoInstance {
    pub name: String,
    /// The configured interface (the VMAC's parent with use_vmac).
    pub interface: String,
    pub use_vmac: Option<String>,
    pub iface: Iface,
    pub src: IpAddr,
    pub socket: usize,
}

/// No socket: the instance's interface does not exist.
pub(super) const NO_SOCKET: usize = usize::MAX;

/// Why an instance's interface could not be opened.
#[derive(Debug)]
pub(super) struct AttachError {
    pub missing: bool,
    pub error: Error,
}

impl AttachError {
    /// The reason without the instance's name (the node's log line has it).
    pub fn reason(&self) -> String {
        match &self.error {
            Error::Instance { message, .. } => message.clone(),
            e => e.to_string(),
        }
    }
}

pub(super) struct Io {
    pub inst: Vec<IoInstance>,
    pub sockets: Vec<Arc<VrrpSocket>>,
    /// Each socket's (interface index, IPv6).
    keys: Vec<(u32, bool)>,
    pub notifiers: Vec<Option<mpsc::UnboundedSender<Job>>>,
    pub group_notifiers: Vec<Option<mpsc::UnboundedSender<Job>>>,
    /// The notify workers (awaited at stop so notify_stop runs).
    pub notify_tasks: Vec<JoinHandle<()>>,
}

/// Writes net.ipv4.conf.DEV.KEY (of our network namespace).
fn set_ipv4_conf(dev: &str, key: &str, value: &str) {
    let path = format!("/proc/sys/net/ipv4/conf/{dev}/{key}");
    if let Err(e) = std::fs::write(&path, value) {
        tracing::warn!("cannot set {path} to {value}: {e}");
    }
}

fn instance_error(vi: &VrrpInstance, message: impl Into<String>) -> Error {
    Error::Instance {
        instance: vi.name.clone(),
        message: message.into(),
    }
}

/// The advert source: configured, else the interface's primary address.
async fn source(rtnl: &Rtnl, vi: &VrrpInstance, index: u32) -> Result<IpAddr, Error> {
    if let Some(a) = instance::configured_src(vi) {
        return Ok(a);
    }
    if instance::is_ipv6(vi) {
        return rtnl
            .link_local_ipv6(index)
            .await?
            .map(IpAddr::V6)
            .ok_or_else(|| {
                instance_error(
                    vi,
                    format!("{} has no IPv6 link-local address", vi.interface),
                )
            });
    }
    rtnl.primary_ipv4(index)
        .await?
        .map(IpAddr::V4)
        .ok_or_else(|| {
            instance_error(
                vi,
                format!(
                    "{} has no IPv4 address: give it one or set mcast_src_ip/unicast_src_ip",
                    vi.interface
                ),
            )
        })
}

/// The source of an instance whose interface does not exist yet: the
/// configured one, else the unspecified address (replaced when it appears).
fn unspecified_source(vi: &VrrpInstance) -> IpAddr {
    instance::configured_src(vi).unwrap_or(if instance::is_ipv6(vi) {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    })
}

/// The instance's interface: its VMAC (created, or reused from an earlier
/// run or a reload) with use_vmac, else the configured one.
async fn iface(rtnl: &Rtnl, vi: &VrrpInstance, link: &rtnl::LinkInfo) -> Result<Iface, Error> {
    let Some(vmac) = &vi.use_vmac else {
        return Ok(Iface {
            name: link.name.clone(),
            index: link.index,
            mac: link.mac.unwrap_or([0; 6]),
        });
    };
    let mac = rtnl::vmac_address(vi.virtual_router_id, instance::is_ipv6(vi));
    let index = rtnl
        .create_macvlan(link.index, vmac, mac)
        .await
        .map_err(|e| instance_error(vi, format!("use_vmac {vmac}: {e}")))?;
    tracing::info!(
        "VRRP_Instance({}) created VMAC {vmac} on {}",
        vi.name,
        link.name
    );
    // As keepalived: only the VMAC answers ARP for the VIPs; and
    // (arp_announce 2) the base interface's own ARP requests do not
    // carry a VIP as sender, which would teach hosts its real MAC.
    for (dev, key, value) in [
        (link.name.as_str(), "arp_ignore", "1"),
        (link.name.as_str(), "arp_filter", "1"),
        (link.name.as_str(), "arp_announce", "2"),
        (vmac.as_str(), "arp_ignore", "1"),
        (vmac.as_str(), "accept_local", "1"),
    ] {
        set_ipv4_conf(dev, key, value);
    }
    Ok(Iface {
        name: vmac.clone(),
        index,
        mac,
    })
}

impl Io {
    pub async fn open(rtnl: &Rtnl, config: &Config, runner: &ScriptRunner) -> Result<Io, Error> {
        let mut inst = Vec::new();
        // Where each instance sends and receives: the VMAC unless
        // vmac_xmit_base, else its interface.
        let mut via = Vec::new();
        for vi in &config.vrrp_instances {
            let link = match rtnl.link_by_name(&vi.interface).await {
                Ok(link) => link,
                // keepalived: the instance waits in FAULT (the node says so).
                Err(rtnl::RtnlError::NoSuchInterface { .. }) => {
                    via.push((0, vi.interface.clone()));
                    inst.push(IoInstance {
                        name: vi.name.clone(),
                        interface: vi.interface.clone(),
                        use_vmac: vi.use_vmac.clone(),
                        iface: Iface::missing(&vi.interface),
                        src: unspecified_source(vi),
                        socket: NO_SOCKET,
                    });
                    continue;
                }
                Err(e) => return Err(instance_error(vi, e.to_string())),
            };
            let src = source(rtnl, vi, link.index).await?;
            let iface = iface(rtnl, vi, &link).await?;
            if vi.use_vmac.is_some() && !vi.vmac_xmit_base {
                via.push((iface.index, iface.name.clone()));
            } else {
                via.push((link.index, link.name.clone()));
            }
            inst.push(IoInstance {
                name: vi.name.clone(),
                interface: vi.interface.clone(),
                use_vmac: vi.use_vmac.clone(),
                iface,
                src,
                socket: 0,
            });
        }
        // One socket per (interface, family), joined to the group when any
        // instance using it multicasts.
        let ipv6: Vec<bool> = config
            .vrrp_instances
            .iter()
            .map(instance::is_ipv6)
            .collect();
        let multicast = |vi: &VrrpInstance| vi.unicast_peers.is_empty();
        let mut sockets: Vec<Arc<VrrpSocket>> = Vec::new();
        let mut keys: Vec<(u32, bool)> = Vec::new();
        for n in 0..config.vrrp_instances.len() {
            let (index, name) = &via[n];
            if *index == 0 {
                continue;
            }
            let key = (*index, ipv6[n]);
            inst[n].socket = match keys.iter().position(|k| *k == key) {
                Some(p) => p,
                None => {
                    let joins =
                        config.vrrp_instances.iter().enumerate().any(|(o, ov)| {
                            multicast(ov) && ipv6[o] == ipv6[n] && via[o].0 == *index
                        });
                    let group = joins.then(|| instance::multicast_group(config, ipv6[n]));
                    sockets.push(Arc::new(VrrpSocket::open(name, *index, ipv6[n], group)?));
                    keys.push(key);
                    sockets.len() - 1
                }
            };
        }
        let run_opts = RunOptions::from_globals(&config.global);
        let mut notify_tasks = Vec::new();
        let mut worker = |n: &crate::config::model::Notify| {
            tasks::spawn_notify_worker(runner, n.clone(), run_opts.clone()).map(|(tx, h)| {
                notify_tasks.push(h);
                tx
            })
        };
        let notifiers = config
            .vrrp_instances
            .iter()
            .map(|vi| worker(&vi.notify))
            .collect();
        let group_notifiers = config
            .vrrp_sync_groups
            .iter()
            .map(|g| worker(&g.notify))
            .collect();
        Ok(Io {
            inst,
            sockets,
            keys,
            notifiers,
            group_notifiers,
            notify_tasks,
        })
    }

    /// Opens instance `i`'s interface, which did not exist when the table
    /// was built: its source, VMAC and socket (a socket already open on
    /// that interface is shared). Returns what the node needs and the
    /// index of the socket if it is new (its receiver is to be started).
    pub async fn attach(
        &mut self,
        rtnl: &Rtnl,
        config: &Config,
        i: usize,
    ) -> Result<(InstanceSetup, Option<usize>), AttachError> {
        let fail = |missing, error| AttachError { missing, error };
        let (Some(vi), Some(slot)) = (config.vrrp_instances.get(i), self.inst.get(i)) else {
            return Err(fail(
                false,
                Error::Io(std::io::Error::other("no such instance")),
            ));
        };
        if slot.iface.exists() {
            return Ok((self.setup_of(i), None));
        }
        let link = match rtnl.link_by_name(&vi.interface).await {
            Ok(link) => link,
            Err(e @ rtnl::RtnlError::NoSuchInterface { .. }) => {
                return Err(fail(true, instance_error(vi, e.to_string())));
            }
            Err(e) => return Err(fail(false, instance_error(vi, e.to_string()))),
        };
        let src = source(rtnl, vi, link.index)
            .await
            .map_err(|e| fail(false, e))?;
        let iface = iface(rtnl, vi, &link).await.map_err(|e| fail(false, e))?;
        let (index, name) = if vi.use_vmac.is_some() && !vi.vmac_xmit_base {
            (iface.index, iface.name.clone())
        } else {
            (link.index, link.name.clone())
        };
        let ipv6 = instance::is_ipv6(vi);
        let (socket, new) = match self.keys.iter().position(|k| *k == (index, ipv6)) {
            Some(p) => (p, None),
            None => {
                // Joined to the group when an instance on this interface multicasts.
                let joins = config.vrrp_instances.iter().any(|o| {
                    o.unicast_peers.is_empty()
                        && instance::is_ipv6(o) == ipv6
                        && (o.interface == vi.interface || o.use_vmac.as_deref() == Some(&name))
                });
                let group = joins.then(|| instance::multicast_group(config, ipv6));
                let sock = VrrpSocket::open(&name, index, ipv6, group)
                    .map_err(|e| fail(false, Error::Io(e)))?;
                self.sockets.push(Arc::new(sock));
                self.keys.push((index, ipv6));
                (self.sockets.len() - 1, Some(self.sockets.len() - 1))
            }
        };
        let slot = &mut self.inst[i];
        slot.iface = iface;
        slot.src = src;
        slot.socket = socket;
        Ok((self.setup_of(i), new))
    }

    /// Instance `i`'s interface was deleted: no socket until it is back.
    pub fn detach(&mut self, i: usize) {
        if let Some(slot) = self.inst.get_mut(i) {
            slot.iface = Iface::missing(&slot.interface);
            slot.socket = NO_SOCKET;
        }
    }

    fn setup_of(&self, i: usize) -> InstanceSetup {
        let x = &self.inst[i];
        InstanceSetup {
            src: x.src,
            iface: x.iface.clone(),
            socket: x.socket,
        }
    }

    /// What the node core needs of each instance.
    pub fn setup(&self) -> Vec<InstanceSetup> {
        self.inst
            .iter()
            .map(|i| InstanceSetup {
                src: i.src,
                iface: i.iface.clone(),
                socket: i.socket,
            })
            .collect()
    }

    /// Where a VIP or route of instance i goes: its device if it names
    /// another one, else the instance's interface.
    pub async fn vip_ifindex(&self, rtnl: &Rtnl, i: usize, dev: Option<&str>) -> Option<u32> {
        let inst = self.inst.get(i)?;
        if !inst.iface.exists() {
            return None;
        }
        // With use_vmac, addresses written on the base interface go on the VMAC (keepalived).
        Some(match dev {
            Some(d) if inst.use_vmac.is_some() && d == inst.interface => inst.iface.index,
            Some(d) if d != inst.iface.name => match rtnl.link_by_name(d).await {
                Ok(l) => l.index,
                Err(e) => {
                    tracing::warn!("VRRP_Instance({}) VIP device {d}: {e}", inst.name);
                    inst.iface.index
                }
            },
            _ => inst.iface.index,
        })
    }

    /// Removes VIPs of ours left by an earlier run: the configured ones,
    /// and any address carrying our protocol mark on our interfaces.
    pub async fn remove_stale_vips(&self, rtnl: &Rtnl, config: &Config) {
        for (i, vi) in config.vrrp_instances.iter().enumerate() {
            let mut removed = 0;
            for v in &vi.virtual_ipaddress {
                let Some(index) = self.vip_ifindex(rtnl, i, v.dev.as_deref()).await else {
                    continue;
                };
                if let Ok(rtnl::Change::Done) = rtnl.del_vip(index, v).await {
                    removed += 1;
                }
            }
            if removed > 0 {
                tracing::info!(
                    "VRRP_Instance({}) removing protocol VIPs left on {} ({removed})",
                    vi.name,
                    self.inst[i].iface.name
                );
            }
        }
        let configured: Vec<IpAddr> = config
            .vrrp_instances
            .iter()
            .flat_map(|i| i.virtual_ipaddress.iter().map(|v| v.addr))
            // static_ipaddress: set by the daemon before VRRP starts.
            .chain(config.static_ipaddress.iter().map(|v| v.addr))
            .collect();
        let indexes: Vec<u32> = self.inst.iter().map(|f| f.iface.index).collect();
        match rtnl.list_protocol_addrs().await {
            Ok(addrs) => {
                for a in addrs {
                    if indexes.contains(&a.index) && !configured.contains(&a.addr) {
                        tracing::info!(
                            "removing stale protocol VIP {}/{} from interface index {}",
                            a.addr,
                            a.prefix_len,
                            a.index
                        );
                        if let Err(e) = rtnl.del_addr(&a).await {
                            tracing::warn!("cannot remove stale VIP {}: {e}", a.addr);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("cannot list addresses: {e}"),
        }
    }
}
