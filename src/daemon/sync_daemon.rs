//! `lvs_sync_daemon`: the kernel's IPVS connection-sync daemon follows the
//! VRRP instance it names, so established connections survive a director
//! failover: backup while the instance is BACKUP/FAULT (receiving the
//! master's connection table), master while it is MASTER (sending it).
//! At stop both roles are stopped.

use ipvs_sys::{Daemon, DaemonState, IpvsMessage};
use tokio::sync::mpsc;

use crate::config::model::{Config, LvsSyncDaemon};
use crate::lvs::kernel::{Ipvs, KernelError};
use crate::vrrp::driver::Transition;
use crate::vrrp::state::State;

/// The sync role for a VRRP state (keepalived's: only MASTER sends).
pub fn role_for(state: State) -> DaemonState {
    if state == State::Master {
        DaemonState::Master
    } else {
        DaemonState::Backup
    }
}

fn role_name(r: DaemonState) -> &'static str {
    match r {
        DaemonState::Master => "master",
        DaemonState::Backup => "backup",
    }
}

/// The daemon the kernel is asked to run for `role`. The sync ID defaults
/// to the instance's virtual_router_id, as keepalived does.
pub fn daemon_for(cfg: &LvsSyncDaemon, vrid: Option<u8>, role: DaemonState) -> Daemon {
    let mut d = Daemon::new(
        role,
        cfg.interface.clone(),
        u32::from(cfg.sync_id.or(vrid).unwrap_or(0)),
    );
    d.sync_maxlen = cfg.maxlen;
    d.mcast_group = cfg.group;
    d.mcast_port = cfg.port;
    d.mcast_ttl = cfg.ttl;
    d
}

struct Sync {
    ipvs: Ipvs,
    cfg: LvsSyncDaemon,
    vrid: Option<u8>,
    role: Option<DaemonState>,
}

impl Sync {
    fn stop(&mut self, role: DaemonState) {
        // ESRCH (not running) is the normal case the first time.
        let _ = self.ipvs.request(IpvsMessage::DelDaemon(role), false);
    }

    fn become_(&mut self, role: DaemonState) -> Result<(), KernelError> {
        if self.role == Some(role) {
            return Ok(());
        }
        let other = match role {
            DaemonState::Master => DaemonState::Backup,
            DaemonState::Backup => DaemonState::Master,
        };
        self.stop(other);
        self.stop(role);
        let d = daemon_for(&self.cfg, self.vrid, role);
        self.ipvs
            .request(IpvsMessage::NewDaemon(d.clone()), false)?;
        tracing::info!(
            "Starting IPVS sync daemon as {} on {} (syncid {})",
            role_name(role),
            d.mcast_ifn,
            d.sync_id
        );
        self.role = Some(role);
        Ok(())
    }
}

/// Follows the configured instance's transitions until the channel closes,
/// then stops the sync daemon. Returns at once when nothing is configured.
/// Runs `f` on the sync daemon's state on a blocking thread; None when
/// that thread panicked.
async fn blocking(mut sync: Sync, f: impl FnOnce(&mut Sync) + Send + 'static) -> Option<Sync> {
    tokio::task::spawn_blocking(move || {
        f(&mut sync);
        sync
    })
    .await
    .ok()
}

pub async fn follow(config: &Config, mut transitions: mpsc::UnboundedReceiver<Transition>) {
    let Some(cfg) = config.global.lvs.sync_daemon.clone() else {
        return;
    };
    // Without an instance name keepalived uses the one on that interface.
    let instance = cfg.vrrp_instance.clone().or_else(|| {
        config
            .vrrp_instances
            .iter()
            .find(|i| i.interface == cfg.interface)
            .map(|i| i.name.clone())
    });
    let vrid = config
        .vrrp_instances
        .iter()
        .find(|i| Some(&i.name) == instance.as_ref())
        .map(|i| i.virtual_router_id);
    let ipvs = match Ipvs::open() {
        Ok(i) => i,
        Err(e) => {
            tracing::error!("lvs_sync_daemon: {e}");
            return;
        }
    };
    let sync = Sync {
        ipvs,
        cfg,
        vrid,
        role: None,
    };
    // Kernel requests run on a blocking thread, never on the daemon's
    // async one (each is bounded by the netlink timeouts).
    let Some(mut sync) = blocking(sync, |s| {
        if let Err(e) = s.become_(DaemonState::Backup) {
            tracing::error!("lvs_sync_daemon: cannot start the backup sync daemon: {e}");
        }
    })
    .await
    else {
        return;
    };
    while let Some(first) = transitions.recv().await {
        // Act on the latest state only: a switch takes the kernel a moment
        // (it stops one sync thread, starts another), and a MASTER that
        // turned BACKUP meanwhile (both directors timed out at start) needs
        // no master sync daemon at all.
        let mut latest = None;
        for t in std::iter::once(first).chain(std::iter::from_fn(|| transitions.try_recv().ok())) {
            if Some(&t.instance) == instance.as_ref() && t.state != State::Init {
                latest = Some(t.state);
            }
        }
        let Some(state) = latest else {
            continue;
        };
        let role = role_for(state);
        let Some(s) = blocking(sync, move |s| {
            if let Err(e) = s.become_(role) {
                tracing::error!("lvs_sync_daemon: {e}");
            }
        })
        .await
        else {
            return;
        };
        sync = s;
    }
    blocking(sync, |s| {
        for role in [DaemonState::Master, DaemonState::Backup] {
            s.stop(role);
        }
    })
    .await;
    tracing::info!("Stopped the IPVS sync daemon");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_defaults_follow_keepalived() {
        assert_eq!(role_for(State::Master), DaemonState::Master);
        assert_eq!(role_for(State::Backup), DaemonState::Backup);
        assert_eq!(role_for(State::Fault), DaemonState::Backup);
        let cfg = LvsSyncDaemon {
            interface: "eth1".into(),
            vrrp_instance: Some("VI_1".into()),
            sync_id: None,
            maxlen: None,
            port: Some(8848),
            ttl: None,
            group: None,
        };
        let d = daemon_for(&cfg, Some(51), DaemonState::Master);
        assert_eq!(
            (d.sync_id, d.mcast_port, d.mcast_ifn.as_str()),
            (51, Some(8848), "eth1")
        );
    }
}
