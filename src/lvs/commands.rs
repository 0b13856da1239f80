//! The one-shot IPVS commands behind the CLI: `--dump`, `--plan`, `--apply-once`.

use std::collections::BTreeSet;
use std::path::Path;

use std::time::{Duration, Instant};

use super::director::{Director, Effect, Event, KernelReply, KernelRequest, Options, Outcome};
use super::format::{self, View};
use super::kernel::{Ipvs, KernelError};
use super::{owned, worker};
use crate::config::model::Config;
use crate::daemon::status::{self, HealthReport};

/// The live table as `ipvsadm -Ln` (or a variant) prints it, or as JSON;
/// with `health` (the checkers' report) each real server's health too.
pub fn dump(view: Option<View>, health: Option<&HealthReport>) -> Result<String, KernelError> {
    let mut ipvs = Ipvs::open()?;
    let info = ipvs.info()?;
    let table = ipvs.read()?;
    let verdicts = status::Verdicts::new(health);
    Ok(match view {
        Some(v) => {
            let mut text = format::render_annotated(&table, &info, v, &verdicts);
            if let Some(h) = health {
                text += &crate::lvs::announce::text(&h.announced);
            }
            text
        }
        None => {
            let mut json = format::json(&table, &info);
            if health.is_some()
                && let Some(services) = json["services"].as_array_mut()
            {
                for (svc, ks) in services.iter_mut().zip(&table.services) {
                    let key = &ks.entry.service.key;
                    if let Some(rss) = svc["real_servers"].as_array_mut() {
                        for (rs, d) in rss.iter_mut().zip(&ks.dests) {
                            if let Some(h) = verdicts.of(key, d) {
                                rs["health"] = serde_json::to_value(h).unwrap_or_default();
                            }
                        }
                    }
                    let absent: Vec<_> = verdicts
                        .absent_servers(key, &ks.dests)
                        .into_iter()
                        .filter_map(|s| serde_json::to_value(s).ok())
                        .collect();
                    svc["absent_real_servers"] = serde_json::Value::Array(absent);
                }
            }
            if let Some(h) = health
                && !h.announced.is_empty()
            {
                json["announced"] = serde_json::to_value(&h.announced).unwrap_or_default();
            }
            let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
            s.push('\n');
            s
        }
    })
}

/// Where one-shot runs remember the services they created.
pub const OWNED_STATE: &str = "/run/ipvsdir/owned-services";

/// The services an earlier run recorded as ours (none, with a warning,
/// when the record cannot be read).
fn load_owned(state: &Path) -> BTreeSet<ipvs_sys::ServiceKey> {
    owned::load(state).unwrap_or_else(|e| {
        tracing::warn!(
            "cannot read {}: {e}; services removed from the config stay in the kernel",
            state.display()
        );
        BTreeSet::new()
    })
}

/// The director core as the one-shot commands run it: real servers judged
/// alive (or all down with `alpha`), no probes, no drains.
fn one_shot(config: &Config, alpha: bool, state: &Path, release: bool) -> Director {
    let opts = Options {
        write_table: true,
        release_on_stop: release,
        drain_grace: Duration::ZERO,
        drift_interval: Duration::from_secs(365 * 24 * 3600),
        vrrp_in_process: false,
        origin: Instant::now(),
        assume: Some(!alpha),
        report_every: None,
        persist_overrides: false,
        announce: false,
    };
    Director::new(config.clone(), opts, load_owned(state))
}

/// Carries out the core's effects with `kernel` answering its requests
/// (synchronously), until it says the table is ready or it stopped; the
/// owned set goes to `state`. Hook scripts and probes are not run.
pub fn drive(
    core: &mut Director,
    state: Option<&Path>,
    mut kernel: impl FnMut(KernelRequest) -> KernelReply,
) {
    loop {
        let Some(effect) = core.poll_effect() else {
            return;
        };
        match effect {
            Effect::Kernel(request) => {
                let reply = kernel(request);
                core.handle(Instant::now(), Event::Kernel(reply));
            }
            Effect::SaveOwned(set) => {
                if let Some(state) = state
                    && let Err(e) = owned::save(state, &set)
                {
                    tracing::warn!("{e}");
                }
            }
            Effect::TableReady | Effect::Stopped => return,
            // No probes, hook scripts or report in a one-shot run.
            Effect::RunScript { .. }
            | Effect::FifoLine(_)
            | Effect::Mail(_)
            | Effect::StartProbes { .. }
            | Effect::StopProbes
            | Effect::SaveOverrides(_)
            | Effect::WriteReport { .. }
            | Effect::Announce(_)
            | Effect::AnnounceStatus(_) => {}
        }
    }
}

/// What applying `config` would do to the live table (real servers taken as
/// healthy, or all down with `alpha`), as ipvsadm rules, without doing it:
/// the same core as `--apply-once`, with the kernel only read.
pub fn plan(config: &Config, alpha: bool, state: &Path) -> Result<Vec<String>, KernelError> {
    let mut ipvs = Ipvs::open()?;
    let mut core = one_shot(config, alpha, state, false);
    core.handle(Instant::now(), Event::Start);
    let mut rules = Vec::new();
    drive(&mut core, None, |request| match request {
        r @ (KernelRequest::Read | KernelRequest::ReadCounters) => worker::execute(&mut ipvs, r),
        KernelRequest::Flush => {
            rules.push("-C".to_string());
            KernelReply::Done(Ok(()))
        }
        KernelRequest::SetTimeouts(t) => {
            let s = |v: Option<u32>| v.unwrap_or(0);
            rules.push(format!("--set {} {} {}", s(t.tcp), s(t.tcp_fin), s(t.udp)));
            KernelReply::Done(Ok(()))
        }
        KernelRequest::SetSysctls(values) => {
            rules.extend(
                values
                    .iter()
                    .map(|(name, value)| format!("sysctl -w net.ipv4.vs.{name}={value}")),
            );
            KernelReply::Done(Ok(()))
        }
        KernelRequest::Execute(ops) => {
            rules.extend(ops.iter().map(format::op_rule));
            KernelReply::Executed(Ok(ops.iter().map(|_| Ok(())).collect()))
        }
    });
    Ok(rules)
}

/// Applies `config` once (honouring `lvs_flush`, `lvs_timeouts` and
/// `lvs_sysctl`) and
/// returns what happened. Services recorded in `state` by an earlier run
/// and no longer configured are deleted; the record is then replaced by
/// this config's services.
pub fn apply_once(config: &Config, alpha: bool, state: &Path) -> Result<Outcome, KernelError> {
    let mut ipvs = Ipvs::open()?;
    let mut core = one_shot(config, alpha, state, false);
    core.handle(Instant::now(), Event::Start);
    drive(&mut core, Some(state), |r| worker::execute(&mut ipvs, r));
    Ok(core.take_outcome())
}

/// Removes ipvsdir's services (those of `config` and those recorded in
/// `state`) from the kernel, as the daemon does when it stops; with
/// `lvs_flush_on_stop` (no argument) the whole table is flushed instead.
/// Foreign services are left alone otherwise.
pub fn release(config: &Config, state: &Path) -> Result<Outcome, KernelError> {
    let mut ipvs = Ipvs::open()?;
    let mut core = one_shot(config, false, state, true);
    core.handle(Instant::now(), Event::Stop);
    drive(&mut core, Some(state), |r| worker::execute(&mut ipvs, r));
    Ok(core.take_outcome())
}
