//! From the configuration to the set of probes to run, and from probe states
//! to real-server health. Pure: the engine feeds it, the IPVS side reads it
//! through [`Health`].
//!
//! Identical checkers are probed once: when several virtual servers share a
//! real server with the same checker (same target, same settings), one probe
//! serves them all.

use crate::FastMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::model::{
    Checker, Config, Protocol, RealServer, VirtualServer, VirtualServerKey,
};
use crate::lvs::desired::{Health, RsHealth};

use super::state::CheckerState;

pub type ProbeId = usize;

/// A real server of a virtual server, as the health table keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RsKey {
    pub vs: VirtualServerKey,
    pub protocol: Protocol,
    pub addr: IpAddr,
    pub port: u16,
}

impl RsKey {
    pub fn of(vs: &VirtualServer, rs: &RealServer) -> Self {
        RsKey {
            vs: vs.key.clone(),
            protocol: vs.protocol,
            addr: rs.addr,
            port: rs.port,
        }
    }
}

/// The unique probes of a configuration and which real servers use each.
#[derive(Debug, Clone, Default)]
pub struct ProbePlan {
    pub probes: Vec<Checker>,
    pub of_rs: FastMap<RsKey, Vec<ProbeId>>,
    /// How many checkers (before deduplication) each probe stands for.
    pub users: Vec<usize>,
    /// Every real server of every virtual server, in configuration order:
    /// its key and its position (virtual server index, real server index).
    pub servers: Vec<(RsKey, usize, usize)>,
    /// For each probe, the indices in `servers` of the real servers it
    /// judges: what to look at when that probe changes.
    pub servers_of: Vec<Vec<usize>>,
}

impl ProbePlan {
    pub fn new(config: &Config) -> Self {
        let mut plan = ProbePlan::default();
        let mut index: FastMap<&Checker, ProbeId> = FastMap::default();
        for (v, vs) in config.virtual_servers.iter().enumerate() {
            for (r, rs) in vs.real_servers.iter().enumerate() {
                let ids = rs
                    .checkers
                    .iter()
                    .map(|c| {
                        *index.entry(c).or_insert_with(|| {
                            plan.probes.push(c.clone());
                            plan.users.push(0);
                            plan.servers_of.push(Vec::new());
                            plan.probes.len() - 1
                        })
                    })
                    .collect::<Vec<_>>();
                let server = plan.servers.len();
                for &id in &ids {
                    plan.users[id] += 1;
                    if plan.servers_of[id].last() != Some(&server) {
                        plan.servers_of[id].push(server);
                    }
                }
                let key = RsKey::of(vs, rs);
                plan.servers.push((key.clone(), v, r));
                plan.of_rs.insert(key, ids);
            }
        }
        plan
    }
}

/// The state of every probe, read as real-server health.
#[derive(Debug, Clone)]
pub struct HealthTable {
    pub plan: Arc<ProbePlan>,
    pub states: Vec<CheckerState>,
}

impl HealthTable {
    pub fn new(plan: impl Into<Arc<ProbePlan>>, now: u64) -> Self {
        let plan = plan.into();
        let states = plan
            .probes
            .iter()
            .map(|c| CheckerState::new(&c.common, now))
            .collect();
        HealthTable { plan, states }
    }

    /// Up when all its checkers are up (a real server without checkers is
    /// always up); the weight a misc_dynamic checker asked for, if any.
    pub fn rs_health(&self, key: &RsKey) -> RsHealth {
        let ids = self.plan.of_rs.get(key).map_or(&[][..], Vec::as_slice);
        let alive = ids.iter().all(|&i| self.states[i].up);
        let weight = ids.iter().find_map(|&i| self.states[i].dynamic_weight);
        RsHealth { alive, weight }
    }

    /// Whether some checker of the real server has no result yet.
    pub fn unchecked(&self, key: &RsKey) -> bool {
        let ids = self.plan.of_rs.get(key).map_or(&[][..], Vec::as_slice);
        ids.iter().any(|&i| self.states[i].last.is_none())
    }

    /// The checkers of a real server that are down, with their last reason.
    pub fn down_reasons(&self, key: &RsKey) -> Vec<String> {
        let ids = self.plan.of_rs.get(key).map_or(&[][..], Vec::as_slice);
        ids.iter()
            .filter(|&&i| !self.states[i].up)
            .map(|&i| {
                self.states[i].last.as_ref().map_or_else(
                    || "not checked yet (alpha)".to_string(),
                    |l| l.reason.to_string(),
                )
            })
            .collect()
    }
}

impl Health for HealthTable {
    fn real_server(&self, vs: &VirtualServer, rs: &RealServer) -> RsHealth {
        self.rs_health(&RsKey::of(vs, rs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, load_str};

    #[test]
    fn identical_checkers_across_virtual_servers_are_probed_once() {
        let mut text = String::new();
        for port in [80, 81, 82] {
            text.push_str(&format!(
                "virtual_server 10.0.0.{port} 80 {{\n real_server 10.1.0.1 80 {{\n  TCP_CHECK {{\n   connect_timeout 2\n  }}\n }}\n real_server 10.1.0.2 80 {{\n  TCP_CHECK {{\n   connect_port 8080\n  }}\n }}\n}}\n"
            ));
        }
        let cfg = load_str("t", &text, &LoadOptions::default())
            .config
            .unwrap();
        let plan = ProbePlan::new(&cfg);
        assert_eq!(plan.probes.len(), 2);
        assert_eq!(plan.users, vec![3, 3]);
        assert_eq!(plan.of_rs.len(), 6);
        assert_eq!(plan.servers.len(), 6);
        // Real servers 0, 2, 4 (10.1.0.1 in each virtual server) use probe 0.
        assert_eq!(plan.servers_of, vec![vec![0, 2, 4], vec![1, 3, 5]]);
        assert_eq!((plan.servers[3].1, plan.servers[3].2), (1, 1));
    }

    #[test]
    fn a_real_server_is_up_when_all_its_checkers_are() {
        let text = "virtual_server 10.0.0.1 80 {\n real_server 10.1.0.1 80 {\n  TCP_CHECK {\n  }\n  TCP_CHECK {\n   connect_port 81\n  }\n }\n real_server 10.1.0.2 80 {\n }\n}\n";
        let cfg = load_str("t", text, &LoadOptions::default()).config.unwrap();
        let mut t = HealthTable::new(ProbePlan::new(&cfg), 0);
        let vs = &cfg.virtual_servers[0];
        let c = &t.plan.probes[1].common.clone();
        // retry 1: the attempt and one retry must fail.
        t.states[1].on_result(c, false, "connection refused".into(), None, 1);
        assert!(t.rs_health(&RsKey::of(vs, &vs.real_servers[0])).alive);
        t.states[1].on_result(c, false, "connection refused".into(), None, 2);
        let rs0 = RsKey::of(vs, &vs.real_servers[0]);
        assert!(!t.rs_health(&rs0).alive);
        assert_eq!(t.down_reasons(&rs0), vec!["connection refused"]);
        // No checkers: always up.
        assert!(t.rs_health(&RsKey::of(vs, &vs.real_servers[1])).alive);
    }
}
