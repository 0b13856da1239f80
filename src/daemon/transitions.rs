//! Recent transitions for the status document and the status page: what
//! changed between two consecutive published reports (a real server's
//! state word, a VRRP instance's state), kept in a small ring. The diff is
//! a pure function of the two reports; the drivers call [`Recent::health`]
//! and [`Recent::vrrp`] where they publish a report.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::status::HealthReport;
use crate::vrrp::status::VrrpReport;

/// How many transitions the daemon remembers (the oldest go first).
pub const KEPT: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    RealServer,
    VrrpInstance,
}

/// One change of state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When the report that shows it was built (at most a second after
    /// the change for real servers).
    #[serde(with = "crate::time_format::rfc3339")]
    pub at: f64,
    pub kind: Subject,
    /// The real server's virtual server, as the log names it
    /// (`[10.0.0.1]:tcp:80`); None for a VRRP instance.
    pub virtual_server: Option<String>,
    /// The real server (`10.0.0.11:80`) or the VRRP instance's name.
    pub name: String,
    /// State words: a real server's (`up`, `down`, `draining`...) or a
    /// VRRP instance's (`BACKUP`, `MASTER`...).
    pub from: String,
    pub to: String,
    /// Why: a real server's failing checks' results; for a VRRP instance,
    /// its effective priority and the master it follows.
    pub reasons: Vec<String>,
}

/// The real servers whose state word changed from `old` to `new`, in
/// `new`'s order. Servers only in one of the two (a reload) are not
/// transitions.
pub fn of_health(old: &HealthReport, new: &HealthReport) -> Vec<Transition> {
    let before: HashMap<(&str, &str), &str> = old
        .servers()
        .map(|(v, s)| ((v.name.as_str(), s.real_server.as_str()), s.state.as_str()))
        .collect();
    new.servers()
        .filter_map(|(v, s)| {
            let from = *before.get(&(v.name.as_str(), s.real_server.as_str()))?;
            (from != s.state).then(|| Transition {
                at: new.written,
                kind: Subject::RealServer,
                virtual_server: Some(v.name.clone()),
                name: s.real_server.clone(),
                from: from.to_string(),
                to: s.state.clone(),
                reasons: s.reasons.clone(),
            })
        })
        .collect()
}

/// The VRRP instances whose state changed from `old` to `new`.
pub fn of_vrrp(old: &VrrpReport, new: &VrrpReport) -> Vec<Transition> {
    let before: HashMap<&str, &str> = old
        .instances
        .iter()
        .map(|i| (i.name.as_str(), i.state.as_str()))
        .collect();
    new.instances
        .iter()
        .filter_map(|i| {
            let from = *before.get(i.name.as_str())?;
            (from != i.state).then(|| Transition {
                at: new.written,
                kind: Subject::VrrpInstance,
                virtual_server: None,
                name: i.name.clone(),
                from: from.to_string(),
                to: i.state.clone(),
                reasons: vec![format!(
                    "effective priority {}, master {}",
                    i.effective_priority,
                    i.master.as_deref().unwrap_or("none")
                )],
            })
        })
        .collect()
}

/// The last [`KEPT`] transitions, oldest first.
#[derive(Debug, Default)]
pub struct Recent {
    ring: Mutex<VecDeque<Transition>>,
}

impl Recent {
    fn record(&self, new: Vec<Transition>) {
        if new.is_empty() {
            return;
        }
        if let Ok(mut ring) = self.ring.lock() {
            ring.extend(new);
            let excess = ring.len().saturating_sub(KEPT);
            ring.drain(..excess);
        }
    }

    /// The checkers publish `new` after `old` (None: their first report).
    pub fn health(&self, old: Option<&HealthReport>, new: &HealthReport) {
        if let Some(old) = old {
            self.record(of_health(old, new));
        }
    }

    /// The VRRP side publishes `new` after `old`.
    pub fn vrrp(&self, old: Option<&VrrpReport>, new: &VrrpReport) {
        if let Some(old) = old {
            self.record(of_vrrp(old, new));
        }
    }

    /// The transitions kept, oldest first.
    pub fn list(&self) -> Vec<Transition> {
        self.ring
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::{ServerReport, VirtualServerReport};
    use crate::vrrp::status::InstanceReport;

    fn rs(addr: &str, state: &str, reasons: &[&str]) -> ServerReport {
        ServerReport {
            real_server: addr.into(),
            state: state.into(),
            up: state != "down",
            since: None,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            weight: 1,
            table_weight: None,
            operator: None,
            checks: Vec::new(),
        }
    }

    fn health(written: f64, vs: Vec<(&str, Vec<ServerReport>)>) -> HealthReport {
        HealthReport {
            pid: 1,
            written,
            announced: Vec::new(),
            drain: None,
            virtual_servers: vs
                .into_iter()
                .map(|(name, real_servers)| VirtualServerReport {
                    name: name.into(),
                    services: Vec::new(),
                    quorum: 1,
                    quorum_held: Some(true),
                    real_servers,
                })
                .collect(),
        }
    }

    const T0: f64 = 1_764_840_000.0; // 2025-12-04T09:20:00Z

    #[test]
    fn a_real_server_going_down_is_one_transition_with_its_reasons() {
        let vs = "[10.0.0.1]:tcp:80";
        let old = health(
            T0,
            vec![(
                vs,
                vec![rs("10.0.0.11:80", "up", &[]), rs("10.0.0.12:80", "up", &[])],
            )],
        );
        let new = health(
            T0 + 1.5,
            vec![(
                vs,
                vec![
                    rs("10.0.0.11:80", "up", &[]),
                    rs("10.0.0.12:80", "down", &["TCP_CHECK: connection refused"]),
                ],
            )],
        );
        let t = of_health(&old, &new);
        assert_eq!(
            t,
            vec![Transition {
                at: T0 + 1.5,
                kind: Subject::RealServer,
                virtual_server: Some(vs.into()),
                name: "10.0.0.12:80".into(),
                from: "up".into(),
                to: "down".into(),
                reasons: vec!["TCP_CHECK: connection refused".into()],
            }]
        );
        let json = serde_json::to_value(&t[0]).expect("json");
        assert_eq!(json["at"], "2025-12-04T09:20:01.500Z");
        assert_eq!(json["kind"], "real_server");
        assert!(of_health(&new, &new).is_empty(), "no change, no transition");
    }

    #[test]
    fn the_same_address_in_two_virtual_servers_is_told_apart_and_reloads_add_nothing() {
        let old = health(
            T0,
            vec![
                ("A", vec![rs("10.0.0.11:80", "up", &[])]),
                ("B", vec![rs("10.0.0.11:80", "up", &[])]),
            ],
        );
        let new = health(
            T0 + 1.0,
            vec![
                ("A", vec![rs("10.0.0.11:80", "up", &[])]),
                ("B", vec![rs("10.0.0.11:80", "draining", &[])]),
                ("C", vec![rs("10.0.0.13:80", "down", &["new"])]),
            ],
        );
        let t = of_health(&old, &new);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].virtual_server.as_deref(), Some("B"));
        assert_eq!((t[0].from.as_str(), t[0].to.as_str()), ("up", "draining"));
    }

    fn inst(name: &str, state: &str, master: Option<&str>) -> InstanceReport {
        InstanceReport {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 51,
            version: 2,
            state: state.into(),
            priority: 100,
            effective_priority: 90,
            master: master.map(String::from),
            master_down_interval: 3.6,
            vips: vec!["10.0.0.1/32".into()],
            adverts_sent: 0,
            adverts_received: 0,
            late_adverts: 0,
            dropped: Default::default(),
            became_master: 0,
            released_master: 0,
            priority_zero_received: 0,
            priority_zero_sent: 0,
            garp_master_delay: 5.0,
            takeovers: Default::default(),
        }
    }

    fn vrrp(written: f64, instances: Vec<InstanceReport>) -> VrrpReport {
        VrrpReport {
            pid: 1,
            written,
            instances,
            unmatched_drops: Default::default(),
            scripts: Vec::new(),
            files: Vec::new(),
            processes: Vec::new(),
        }
    }

    #[test]
    fn a_vrrp_instance_changing_state_is_a_transition_counters_are_not() {
        let old = vrrp(T0, vec![inst("VI_1", "BACKUP", Some("10.0.0.2"))]);
        let mut busier = old.clone();
        busier.instances[0].adverts_received = 40;
        busier.written = T0 + 2.0;
        assert!(of_vrrp(&old, &busier).is_empty());
        let new = vrrp(T0 + 3.0, vec![inst("VI_1", "MASTER", Some("10.0.0.3"))]);
        let t = of_vrrp(&busier, &new);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].kind, Subject::VrrpInstance);
        assert_eq!((t[0].from.as_str(), t[0].to.as_str()), ("BACKUP", "MASTER"));
        assert_eq!(t[0].reasons, ["effective priority 90, master 10.0.0.3"]);
        assert_eq!(t[0].at, T0 + 3.0);
    }

    #[test]
    fn the_ring_keeps_the_last_ones_oldest_first_and_ignores_the_first_report() {
        let r = Recent::default();
        let up = health(T0, vec![("A", vec![rs("10.0.0.11:80", "up", &[])])]);
        r.health(None, &up);
        assert!(r.list().is_empty());
        let mut last = up;
        for i in 0..(KEPT + 7) {
            let state = if i % 2 == 0 { "down" } else { "up" };
            let next = health(
                T0 + i as f64 + 1.0,
                vec![("A", vec![rs("10.0.0.11:80", state, &[])])],
            );
            r.health(Some(&last), &next);
            last = next;
        }
        let kept = r.list();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].at, T0 + 8.0, "the 7 oldest are gone");
        assert_eq!(kept[KEPT - 1].at, T0 + (KEPT + 7) as f64);
        assert!(kept.windows(2).all(|w| w[0].at < w[1].at));
    }
}
