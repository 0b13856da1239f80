//! Where the core has put each configured real server, for the health
//! report, the status API and `--dump`: in the table (with which weight) or
//! not, the operator's override, and each virtual server's quorum.

use super::{Director, Override};

/// Per real server in `plan.servers` order (the configuration's order).
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Its weight in the desired table; None: not in it.
    pub weight: Vec<Option<u32>>,
    pub overrides: Vec<Option<Override>>,
    /// Per virtual server: whether it holds its quorum (None: not judged yet).
    pub quorum: Vec<Option<bool>>,
}

impl Director {
    /// The table as decided now (the drains of removed servers aside).
    pub fn placement(&mut self) -> Placement {
        self.refresh();
        let desired = self.table.desired();
        let config = &self.config;
        let mut p = Placement {
            quorum: config
                .virtual_servers
                .iter()
                .map(|vs| self.quorum.held(vs))
                .collect(),
            ..Default::default()
        };
        let keys: Vec<Option<ipvs_sys::ServiceKey>> = config
            .virtual_servers
            .iter()
            .map(|vs| {
                crate::lvs::desired::service_keys(config, vs)
                    .into_iter()
                    .next()
            })
            .collect();
        for (key, v, r) in &self.health.plan.servers {
            let rs = &config.virtual_servers[*v].real_servers[*r];
            let nat = matches!(rs.method, crate::config::model::ForwardMethod::Nat);
            let weight = keys[*v]
                .as_ref()
                .and_then(|k| {
                    let port = crate::lvs::desired::kernel_port(k, nat, rs.port);
                    desired.services.get(k)?.dests.get(&(rs.addr, port))
                })
                .map(|d| d.weight);
            p.weight.push(weight);
            p.overrides.push(self.overrides.get(key).copied());
        }
        p
    }
}
