//! SIGUSR1 / SIGUSR2 state dumps (keepalived writes /tmp/keepalived.data
//! and /tmp/keepalived.stats): the VRRP instances and the real servers'
//! health as text, and the same as JSON next to it, in `--dump-dir`
//! (/run/ipvsdir by default), written with `safe_file`.

use std::fmt::Write;
use std::path::Path;

use serde_json::json;

use crate::daemon::status::HealthReport;
use crate::vrrp::status::VrrpReport;

/// Where the dumps go by default.
pub const DUMP_DIR: &str = "/run/ipvsdir";
pub const DATA_FILE: &str = "ipvsdir.data";
pub const STATS_FILE: &str = "ipvsdir.stats";

/// The SIGUSR1 dump: VRRP topology and real-server health.
pub fn data_text(vrrp: Option<&VrrpReport>, health: Option<&HealthReport>) -> String {
    let mut out = String::from("------< VRRP Topology >------\n");
    for i in vrrp.map(|v| v.instances.as_slice()).unwrap_or_default() {
        let _ = writeln!(
            out,
            " VRRP Instance = {}\n   State = {}\n   Interface = {}\n   Virtual Router ID = {}\n   Version = {}\n   Priority = {} (effective {})\n   Master = {}\n   Master down interval = {:.3} s\n   Virtual IP = {}",
            i.name,
            i.state,
            i.interface,
            i.vrid,
            i.version,
            i.priority,
            i.effective_priority,
            i.master.as_deref().unwrap_or("-"),
            i.master_down_interval,
            i.vips.join(" ")
        );
    }
    out += "------< Real servers >------\n";
    for v in health
        .map(|h| h.virtual_servers.as_slice())
        .unwrap_or_default()
    {
        let quorum = match v.quorum_held {
            Some(false) => format!(", quorum {} LOST", v.quorum),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            " Virtual server {} ({}){quorum}",
            v.name,
            v.services.join(", ")
        );
        for s in &v.real_servers {
            let weight = match s.table_weight {
                Some(w) => format!("weight {w} of {}", s.weight),
                None => format!("not in the table (weight {})", s.weight),
            };
            let _ = writeln!(out, "  {}: {}, {weight}", s.real_server, s.state);
            for c in &s.checks {
                let _ = writeln!(
                    out,
                    "   {}: {}{}",
                    c.kind,
                    if c.up { "up" } else { "down" },
                    c.last_reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if let Some(h) = health
        && !h.announced.is_empty()
    {
        out += "------< Announced VIPs >------\n";
        if let Some(d) = &h.drain {
            out += &crate::lvs::announce::drain_text(d);
        }
        out += &crate::lvs::announce::text(&h.announced);
    }
    out
}

/// The SIGUSR2 dump: VRRP counters per instance.
pub fn stats_text(vrrp: Option<&VrrpReport>) -> String {
    let mut out = String::new();
    for i in vrrp.map(|v| v.instances.as_slice()).unwrap_or_default() {
        let _ = writeln!(
            out,
            "VRRP Instance: {}\n  Advertisements:\n    Received: {}\n    Sent: {}\n  Became master: {}\n  Released master: {}\n  Priority zero:\n    Received: {}\n    Sent: {}\n  Late adverts: {}\n  Dropped:",
            i.name,
            i.adverts_received,
            i.adverts_sent,
            i.became_master,
            i.released_master,
            i.priority_zero_received,
            i.priority_zero_sent,
            i.late_adverts
        );
        for (reason, n) in &i.dropped {
            let _ = writeln!(out, "    {reason}: {n}");
        }
    }
    out
}

fn write_pair(dir: &Path, name: &str, text: &str, value: serde_json::Value) {
    let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
    for (p, bytes) in [
        (dir.join(name), text.as_bytes()),
        (dir.join(format!("{name}.json")), body.as_slice()),
    ] {
        match crate::safe_file::write(&p, bytes) {
            Ok(()) => tracing::info!("Wrote {}", p.display()),
            Err(e) => tracing::error!("{e}"),
        }
    }
}

pub fn write_data(dir: &Path, vrrp: Option<&VrrpReport>, health: Option<&HealthReport>) {
    write_pair(
        dir,
        DATA_FILE,
        &data_text(vrrp, health),
        json!({ "vrrp": vrrp, "health": health }),
    );
}

pub fn write_stats(dir: &Path, vrrp: Option<&VrrpReport>) {
    write_pair(dir, STATS_FILE, &stats_text(vrrp), json!({ "vrrp": vrrp }));
}
