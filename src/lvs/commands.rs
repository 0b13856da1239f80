//! The one-shot IPVS commands behind the CLI: `--dump`, `--plan`, `--apply-once`.

use std::collections::BTreeSet;
use std::path::Path;

use ipvs_sys::IpvsMessage;

use super::desired::{AllAlive, AllDown, Health, QuorumMemory, desired};
use super::diff::{Op, diff};
use super::format::{self, View};
use super::kernel::{Ipvs, KernelError};
use super::owned;
use super::reconcile::{Outcome, reconcile};
use crate::config::model::Config;
use crate::daemon::status::{self, HealthReport};

/// The live table as `ipvsadm -Ln` (or a variant) prints it, or as JSON;
/// with `health` (the checkers' report) each real server's health too.
pub fn dump(view: Option<View>, health: Option<&HealthReport>) -> Result<String, KernelError> {
    let mut ipvs = Ipvs::open()?;
    let info = ipvs.info()?;
    let table = ipvs.read()?;
    let index = health.map(status::index).unwrap_or_default();
    let lookup = |k: &ipvs_sys::ServiceKey, d: &ipvs_sys::DestEntry| {
        index
            .get(&(k.to_string(), format::addr_port(d.dest.addr, d.dest.port)))
            .copied()
    };
    Ok(match view {
        Some(v) => format::render_annotated(&table, &info, v, &|k, d| {
            lookup(k, d).map(|s| status::annotation(s, std::time::SystemTime::now()))
        }),
        None => {
            let mut json = format::json(&table, &info);
            if health.is_some()
                && let Some(services) = json["services"].as_array_mut()
            {
                for (svc, ks) in services.iter_mut().zip(&table.services) {
                    let Some(rss) = svc["real_servers"].as_array_mut() else {
                        continue;
                    };
                    for (rs, d) in rss.iter_mut().zip(&ks.dests) {
                        if let Some(h) = lookup(&ks.entry.service.key, d) {
                            rs["health"] = serde_json::to_value(h).unwrap_or_default();
                        }
                    }
                }
            }
            let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
            s.push('\n');
            s
        }
    })
}

fn health(alpha: bool) -> &'static dyn Health {
    if alpha { &AllDown } else { &AllAlive }
}

/// The services of the config: the ones ipvsdir owns in the kernel.
fn owned(desired: &super::table::Table) -> BTreeSet<ipvs_sys::ServiceKey> {
    desired.services.keys().copied().collect()
}

/// What applying `config` would do to the live table (real servers taken as
/// healthy, or all down with `alpha`), without doing it.
pub fn plan(config: &Config, alpha: bool, state: &Path) -> Result<Vec<Op>, KernelError> {
    let want = desired(config, health(alpha), &mut QuorumMemory::default());
    let mut ipvs = Ipvs::open()?;
    let actual = ipvs.read()?.to_table();
    Ok(diff(&want, &actual, &ours(&want, state)))
}

/// This config's services plus those an earlier `--apply-once` recorded.
fn ours(want: &super::table::Table, state: &Path) -> BTreeSet<ipvs_sys::ServiceKey> {
    let mut ours = owned::load(state).unwrap_or_else(|e| {
        tracing::warn!(
            "cannot read {}: {e}; services removed from the config stay in the kernel",
            state.display()
        );
        BTreeSet::new()
    });
    ours.extend(owned(want));
    ours
}

/// Where one-shot runs remember the services they created.
pub const OWNED_STATE: &str = "/run/ipvsdir/owned-services";

/// Applies `config` once (honouring `lvs_flush`) and returns what happened.
/// Services recorded in `state` by an earlier run and no longer configured
/// are deleted; the record is then replaced by this config's services.
pub fn apply_once(config: &Config, alpha: bool, state: &Path) -> Result<Outcome, KernelError> {
    let want = desired(config, health(alpha), &mut QuorumMemory::default());
    let mut ipvs = Ipvs::open()?;
    if config.global.lvs.flush {
        ipvs.request(IpvsMessage::Flush, false)?;
    }
    let t = config.global.lvs.timeouts;
    if t.tcp.is_some() || t.tcpfin.is_some() || t.udp.is_some() {
        // `lvs_timeouts`, as `ipvsadm --set` does.
        ipvs.request(
            IpvsMessage::SetConfig(ipvs_sys::Timeouts {
                tcp: t.tcp,
                tcp_fin: t.tcpfin,
                udp: t.udp,
            }),
            false,
        )?;
    }
    let outcome = reconcile(&mut ipvs, &want, &ours(&want, state))?;
    if let Err(e) = owned::save(state, &owned(&want)) {
        tracing::warn!("cannot write {}: {e}", state.display());
    }
    Ok(outcome)
}

/// Removes ipvsdir's services (those of `config` and those recorded in
/// `state`) from the kernel, as the daemon does when it stops; with
/// `lvs_flush_on_stop` (no argument) the whole table is flushed instead.
/// Foreign services are left alone otherwise.
pub fn release(config: &Config, state: &Path) -> Result<Outcome, KernelError> {
    let want = desired(config, &AllAlive, &mut QuorumMemory::default());
    let mut ipvs = Ipvs::open()?;
    if config.global.lvs.flush_on_stop == Some(crate::config::model::FlushOnStop::All) {
        ipvs.request(IpvsMessage::Flush, false)?;
        let _ = owned::save(state, &BTreeSet::new());
        return Ok(Outcome::default());
    }
    let outcome = reconcile(
        &mut ipvs,
        &super::table::Table::default(),
        &ours(&want, state),
    )?;
    if let Err(e) = owned::save(state, &BTreeSet::new()) {
        tracing::warn!("cannot write {}: {e}", state.display());
    }
    Ok(outcome)
}
