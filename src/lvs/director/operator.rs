//! Operator overrides (`ipvsdir ctl drain|enable|disable|weight`): which
//! real servers a request names, and what the core does with it. The
//! override lives in the core; it survives reloads while the real server
//! stays in the file.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::io::{Override, Saved};
use super::{Director, Instant};
use crate::check::health::RsKey;
use crate::config::model::{VirtualServer, VirtualServerKey};
use crate::lvs::names;

/// The real servers a request names: an address, optionally a port, and
/// optionally the virtual server (when the same address serves several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// `10.0.0.1:80`, `tcp 10.0.0.1:80`, `[2001:db8::1]:443`, `fwmark 7`,
    /// `group NAME`, or a virtual_server_group's bare name.
    pub vs: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("no real server {0} in the configuration (`ipvsdir --dump` lists the configured ones)")]
    NoSuchServer(String),
    #[error("{target} is a real server of {count} virtual servers ({list}): name one with --vs")]
    Ambiguous {
        target: String,
        count: usize,
        list: String,
    },
    #[error("the director is stopping; overrides are no longer taken")]
    Stopping,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.addr, self.port) {
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}")?,
            (a, Some(p)) => write!(f, "{a}:{p}")?,
            (a, None) => write!(f, "{a}")?,
        }
        if let Some(vs) = &self.vs {
            write!(f, " of VS {vs}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Override::Drain => f.write_str("draining (weight 0)"),
            Override::Disable => f.write_str("disabled by operator"),
            Override::Weight(w) => write!(f, "weight {w} set by operator"),
            Override::Clear => f.write_str("enabled"),
        }
    }
}

/// Whether `sel` names `vs`. Case and spacing are forgiven: `TCP
/// 10.0.0.1:80`, `tcp:10.0.0.1:80` and `10.0.0.1:80` all name the same
/// virtual server.
pub fn names_vs(sel: &str, vs: &VirtualServer) -> bool {
    let sel = sel.trim();
    let lower = sel.to_ascii_lowercase();
    match &vs.key {
        VirtualServerKey::Addr { addr, port } => {
            let proto = names::protocol(vs.protocol);
            let rest = lower
                .strip_prefix(proto)
                .map(|r| r.trim_start_matches([' ', ':']))
                .unwrap_or(&lower);
            parse_endpoint(rest) == Some((*addr, Some(*port)))
                || lower == names::virtual_server(vs).to_ascii_lowercase()
        }
        VirtualServerKey::Fwmark { mark, .. } => {
            let n = lower
                .strip_prefix("fwmark")
                .or_else(|| lower.strip_prefix("fwm"))
                .map(str::trim);
            n.and_then(|n| n.parse::<u32>().ok()) == Some(*mark)
        }
        VirtualServerKey::Group { name } => {
            sel == name || sel.strip_prefix("group").map(str::trim) == Some(name.as_str())
        }
    }
}

/// `10.0.0.11`, `10.0.0.11:8080`, `2001:db8::1`, `[2001:db8::1]:8080`.
pub fn parse_endpoint(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let s = s.trim();
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some((a, None));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (a, port) = rest.split_once("]:")?;
        return Some((a.parse().ok()?, Some(port.parse().ok()?)));
    }
    let (a, port) = s.rsplit_once(':')?;
    let a: std::net::Ipv4Addr = a.parse().ok()?;
    Some((IpAddr::V4(a), Some(port.parse().ok()?)))
}

impl Director {
    /// An operator's request: the real servers it names get `o` (or lose
    /// their override with [`Override::Clear`]); returns their names as the
    /// log shows them. Without a port it names every port of the address;
    /// without a virtual server, the address must be in one only.
    pub fn operator(
        &mut self,
        now: Instant,
        target: &Target,
        o: Override,
    ) -> Result<Vec<String>, OperatorError> {
        if !matches!(self.stage, super::Stage::Idle | super::Stage::Running) {
            return Err(OperatorError::Stopping);
        }
        let config = self.config.clone();
        let matched: Vec<(RsKey, usize, usize)> = self
            .health
            .plan
            .servers
            .iter()
            .enumerate()
            .filter(|(_, (_, v, r))| {
                let vs = &config.virtual_servers[*v];
                let rs = &vs.real_servers[*r];
                rs.addr == target.addr
                    && target.port.is_none_or(|p| p == rs.port)
                    && target.vs.as_deref().is_none_or(|sel| names_vs(sel, vs))
            })
            .map(|(i, (k, v, _))| (k.clone(), *v, i))
            .collect();
        if matched.is_empty() {
            return Err(OperatorError::NoSuchServer(target.to_string()));
        }
        let mut vss: Vec<usize> = matched.iter().map(|(_, v, _)| *v).collect();
        vss.dedup();
        if vss.len() > 1 && target.vs.is_none() {
            let list: Vec<String> = vss
                .iter()
                .map(|&v| names::virtual_server(&config.virtual_servers[v]))
                .collect();
            return Err(OperatorError::Ambiguous {
                target: target.to_string(),
                count: list.len(),
                list: list.join(", "),
            });
        }
        let mut done = Vec::new();
        for (key, v, i) in matched {
            let vs = &config.virtual_servers[v];
            let Some(rs) = vs
                .real_servers
                .iter()
                .find(|rs| rs.addr == key.addr && rs.port == key.port)
            else {
                continue;
            };
            let (rsn, vsn) = (names::real_server(vs, rs), names::virtual_server(vs));
            let before = match o {
                Override::Clear => self.overrides.remove(&key),
                _ => self.overrides.insert(key, o),
            };
            let changed = match o {
                Override::Clear => before.is_some(),
                _ => before != Some(o),
            };
            // Back in the table after a disable: slow_start applies.
            if o == Override::Clear && before == Some(Override::Disable) {
                self.start_ramp(now, i);
            }
            if changed {
                match o {
                    Override::Clear => tracing::info!(
                        "Operator: {rsn} of VS {vsn} enabled: back to its checkers' verdict"
                    ),
                    Override::Drain => tracing::info!(
                        "Operator: draining {rsn} of VS {vsn} (weight 0: established connections finish, no new ones)"
                    ),
                    Override::Disable => {
                        tracing::info!("Operator: disabling {rsn} of VS {vsn} (out of the table)")
                    }
                    Override::Weight(w) => {
                        tracing::info!("Operator: {rsn} of VS {vsn} set to weight {w}")
                    }
                }
                self.table.mark_dirty(v);
            }
            done.push(format!("{rsn} of VS {vsn}"));
        }
        self.alive = self.alive_now();
        // The report shows overrides: rewritten now (off the driver's
        // thread), so that `--dump` right after the command shows it.
        if self.opts.report_every.is_some() && self.next_report.is_some() {
            self.report_plan = true;
            self.next_report = Some(now);
        }
        self.overrides_changed();
        self.pump(now);
        // Disabling the last real servers of a VIP withdraws it now.
        self.announce_step();
        Ok(done)
    }

    /// The operator's overrides, by real server.
    pub fn overrides(&self) -> &crate::FastMap<RsKey, Override> {
        &self.overrides
    }

    /// Feeds back overrides kept by an earlier run (`--persist-overrides`);
    /// those whose real server left the file are dropped with a warning.
    pub fn restore(&mut self, now: Instant, saved: &[Saved]) {
        for s in saved {
            if let Err(e) = self.operator(now, &s.target, s.what) {
                tracing::warn!("Operator override for {} not restored: {e}", s.target);
            }
        }
    }

    /// With `--persist-overrides`, the current set goes to the driver to keep.
    pub(super) fn overrides_changed(&mut self) {
        if !self.opts.persist_overrides {
            return;
        }
        let mut saved: Vec<Saved> = self
            .health
            .plan
            .servers
            .iter()
            .filter_map(|(key, v, _)| {
                let o = *self.overrides.get(key)?;
                let vs = &self.config.virtual_servers[*v];
                Some(Saved {
                    target: Target {
                        addr: key.addr,
                        port: Some(key.port),
                        vs: Some(names::virtual_server(vs)),
                    },
                    what: o,
                })
            })
            .collect();
        saved.dedup();
        self.effects.push_back(super::Effect::SaveOverrides(saved));
    }
}
