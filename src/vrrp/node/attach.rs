//! Instances whose interface does not exist (yet), as keepalived treats
//! them: the instance waits in FAULT, says why once, and the node asks the
//! driver to open the interface ([`Effect::OpenInterface`]) when a link
//! event says it is there and up, at start (after the link watch is open)
//! and after a reload. The driver answers with [`Event::InterfaceReady`]
//! (its socket, source and index) or [`Event::InterfaceFailed`]. An
//! interface that is removed puts its instances back to waiting.

use std::net::IpAddr;
use std::time::Duration;

use super::super::state::Micros;
use super::{Effect, InstanceSetup, Node, us};

/// How soon an interface that exists but could not be used (no address
/// yet, say) is tried again. A missing one waits for its link event.
pub const ATTACH_RETRY: Duration = Duration::from_secs(1);

/// One instance waiting for its interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Waiting {
    /// An [`Effect::OpenInterface`] is out, not answered yet.
    asked: bool,
    /// Ask again then (the interface exists but could not be used).
    retry_at: Option<Micros>,
    /// The last reason logged (each new reason is logged once).
    said: Option<String>,
}

impl Node {
    /// Whether instance `i` waits for its interface.
    pub fn is_waiting(&self, i: usize) -> bool {
        self.waiting.get(i).is_some_and(Option::is_some)
    }

    /// The instances' interfaces some instance waits for (by configured name).
    pub fn awaited_interfaces(&self) -> Vec<String> {
        (0..self.instances.len())
            .filter(|&i| self.is_waiting(i))
            .map(|i| self.instances[i].cfg.interface.clone())
            .collect()
    }

    /// At start: the instances without an interface say why (they enter
    /// FAULT right after), and the driver looks once more, its link watch
    /// being open now.
    pub(super) fn announce_waiting(&mut self) {
        for i in 0..self.instances.len() {
            if self.waiting[i].is_some() {
                let reason = format!(
                    "interface {} not found; waiting for it",
                    self.instances[i].cfg.interface
                );
                self.say_waiting(i, reason);
                self.ask(i);
            }
        }
    }

    /// Asks the driver for the waiting instances (after a reload).
    pub(super) fn ask_all_waiting(&mut self) {
        for i in 0..self.instances.len() {
            self.ask(i);
        }
    }

    fn ask(&mut self, i: usize) {
        if let Some(Some(w)) = self.waiting.get_mut(i)
            && !w.asked
        {
            w.asked = true;
            w.retry_at = None;
            self.effects
                .push_back(Effect::OpenInterface { instance: i });
        }
    }

    fn say_waiting(&mut self, i: usize, reason: String) {
        let Some(Some(w)) = self.waiting.get_mut(i) else {
            return;
        };
        if w.said.as_deref() != Some(reason.as_str()) {
            tracing::warn!("VRRP_Instance({}) {reason}", self.instances[i].name());
            w.said = Some(reason);
        }
    }

    /// A link event: an interface some instance waits for is up.
    pub(super) fn link_up_for_waiting(&mut self, name: &str) {
        for i in 0..self.instances.len() {
            if self.is_waiting(i) && self.instances[i].cfg.interface == name {
                self.ask(i);
            }
        }
    }

    /// The interface `name` was deleted: its instances wait for it again.
    pub(super) fn link_removed(&mut self, now: Micros, name: &str) {
        let mut changed = false;
        for i in 0..self.instances.len() {
            if self.is_waiting(i) || self.instances[i].cfg.interface != name {
                continue;
            }
            self.ifaces[i].index = 0;
            self.inst_socket[i] = usize::MAX;
            self.waiting[i] = Some(Waiting::default());
            self.say_waiting(i, format!("interface {name} was removed; waiting for it"));
            changed = true;
        }
        if changed {
            self.retrack(now);
        }
    }

    /// The driver opened instance `i`'s interface: the instance leaves
    /// FAULT (unless a tracker keeps it there).
    pub(super) fn interface_ready(&mut self, now: Micros, i: usize, setup: InstanceSetup) {
        if !self.is_waiting(i) {
            return;
        }
        tracing::info!(
            "VRRP_Instance({}) interface {} found (index {})",
            self.instances[i].name(),
            setup.iface.name,
            setup.iface.index
        );
        self.waiting[i] = None;
        self.set_source(i, setup.src);
        self.ifaces[i] = setup.iface;
        self.inst_socket[i] = setup.socket;
        self.retrack(now);
    }

    /// The driver could not open instance `i`'s interface: when it does
    /// not exist, the next link event asks again; otherwise in
    /// [`ATTACH_RETRY`].
    pub(super) fn interface_failed(&mut self, now: Micros, i: usize, error: String, missing: bool) {
        let Some(Some(w)) = self.waiting.get_mut(i) else {
            return;
        };
        w.asked = false;
        w.retry_at = (!missing).then(|| now.saturating_add(us(ATTACH_RETRY)));
        let reason = if missing {
            format!(
                "interface {} not found; waiting for it",
                self.instances[i].cfg.interface
            )
        } else {
            format!("{error}; waiting for it")
        };
        self.say_waiting(i, reason);
    }

    /// The next retry due, if any.
    pub(super) fn attach_deadline(&self) -> Option<Micros> {
        self.waiting
            .iter()
            .flatten()
            .filter_map(|w| w.retry_at)
            .min()
    }

    /// Asks again for the instances whose retry is due.
    pub(super) fn attach_timers(&mut self, now: Micros) {
        for i in 0..self.instances.len() {
            let due = self
                .waiting
                .get(i)
                .and_then(|w| w.as_ref())
                .and_then(|w| w.retry_at)
                .is_some_and(|t| t <= now);
            if due {
                self.ask(i);
            }
        }
    }

    fn set_source(&mut self, i: usize, src: IpAddr) {
        let inst = &mut self.instances[i];
        inst.src = src;
        inst.vrrp.params.primary_ip = src;
    }
}
