//! The configuration's scripts vetted once, at `-t` and at start, as
//! keepalived does when it loads a file: each script that would run as root
//! from a path a non-root user can change is named (whatever
//! `enable_script_security` says: with it the script is refused, without it
//! it runs anyway), so are scripts that cannot run (missing, not
//! executable), and, without `enable_script_security`, keepalived's
//! `SECURITY VIOLATION - scripts are being executed but script_security not
//! enabled.` line (`check scripts` for the checkers' side), with ` There
//! are insecure scripts.` when some are.

use std::collections::{HashMap, HashSet};

use crate::config::model::{CheckKind, Config, Notify, Script, ScriptUser};

use super::{Outcome, RunOptions, ScriptSpec, check, split_command};

/// Which halves of the configuration run (`-P`: VRRP only, `-C`: checkers only).
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub vrrp: bool,
    pub checks: bool,
}

impl Scope {
    pub const ALL: Scope = Scope {
        vrrp: true,
        checks: true,
    };
}

/// Warnings about the scripts, in file order, each once.
pub fn audit(cfg: &Config, scope: Scope) -> Vec<String> {
    let opts = RunOptions::from_globals(&cfg.global);
    let mut out: Vec<String> = Vec::new();
    if scope.vrrp {
        let scripts = vrrp_scripts(cfg);
        side(&scripts, &opts, "scripts", &mut out);
    }
    if scope.checks {
        let scripts = check_scripts(cfg);
        side(&scripts, &opts, "check scripts", &mut out);
    }
    out
}

fn side(scripts: &[(String, &Script)], opts: &RunOptions, what: &str, out: &mut Vec<String>) {
    if scripts.is_empty() {
        return;
    }
    // Whether a script can run, and safely, depends on its program and
    // user, not its arguments: each program is checked once (a MISC_CHECK
    // per real server is one script), named by its first use.
    let mut groups: Vec<(&str, &Script, usize)> = Vec::new();
    let mut index: HashMap<(String, Option<&ScriptUser>), usize> = HashMap::new();
    for (used, script) in scripts {
        let program = split_command(&script.command)
            .ok()
            .and_then(|w| w.into_iter().next())
            .map_or_else(
                || script.command.clone(),
                |w| w.to_string_lossy().into_owned(),
            );
        let key = (program, script.user.as_ref());
        match index.get(&key) {
            Some(&g) => groups[g].2 += 1,
            None => {
                index.insert(key, groups.len());
                groups.push((used, script, 1));
            }
        }
    }
    let mut seen: HashSet<String> = out.iter().cloned().collect();
    let mut insecure = false;
    for (first, script, uses) in groups {
        let used = if uses > 1 {
            format!("{first} (and {} more using the same program)", uses - 1)
        } else {
            first.to_string()
        };
        let found = match check(ScriptSpec::from(script), opts) {
            Ok(c) => c.warnings,
            Err(Outcome::Refused(why)) => vec![format!("{why} — {used} is not run")],
            Err(Outcome::SpawnFailed(why)) => vec![format!("{why} — {used} cannot run")],
            Err(other) => vec![format!("{used}: {other:?}")],
        };
        for w in found {
            insecure |= w.starts_with("Unsafe permissions found");
            // The default user's warning is the same for every script: once.
            let w = if w.contains(used.as_str()) || w.starts_with("the default script user") {
                w
            } else {
                format!("{used}: {w}")
            };
            if seen.insert(w.clone()) {
                out.push(w);
            }
        }
    }
    if !opts.script_security {
        out.push(format!(
            "SECURITY VIOLATION - {what} are being executed but script_security not enabled.{}",
            if insecure {
                " There are insecure scripts."
            } else {
                ""
            }
        ));
    }
}

fn notify<'a>(owner: &str, n: &'a Notify, v: &mut Vec<(String, &'a Script)>) {
    for (kind, s) in [
        ("notify_master", &n.master),
        ("notify_backup", &n.backup),
        ("notify_fault", &n.fault),
        ("notify_stop", &n.stop),
        ("notify", &n.any),
        ("notify_master_rx_lower_pri", &n.master_rx_lower_pri),
    ] {
        if let Some(s) = s {
            v.push((format!("{kind} of {owner}"), s));
        }
    }
}

/// The VRRP side's scripts: vrrp_script, the instances' and sync groups' notify scripts.
fn vrrp_scripts(cfg: &Config) -> Vec<(String, &Script)> {
    let mut v = Vec::new();
    for s in &cfg.vrrp_scripts {
        v.push((format!("vrrp_script {}", s.name), &s.script));
    }
    for i in &cfg.vrrp_instances {
        notify(&format!("vrrp_instance {}", i.name), &i.notify, &mut v);
    }
    for g in &cfg.vrrp_sync_groups {
        notify(&format!("vrrp_sync_group {}", g.name), &g.notify, &mut v);
    }
    v
}

/// The checkers' side: MISC_CHECK paths, quorum and real server notify scripts.
fn check_scripts(cfg: &Config) -> Vec<(String, &Script)> {
    let mut v = Vec::new();
    for vs in &cfg.virtual_servers {
        let name = format!("virtual_server {}", crate::lvs::names::virtual_server(vs));
        if let Some(s) = &vs.quorum_up {
            v.push((format!("quorum_up of {name}"), s));
        }
        if let Some(s) = &vs.quorum_down {
            v.push((format!("quorum_down of {name}"), s));
        }
        for rs in &vs.real_servers {
            // Named only when it has a script (names cost at 40,000 servers).
            let misc = |c: &&crate::config::model::Checker| matches!(c.kind, CheckKind::Misc(_));
            if rs.notify_up.is_none()
                && rs.notify_down.is_none()
                && !rs.checkers.iter().any(|c| misc(&c))
            {
                continue;
            }
            let rname = format!(
                "real_server {} of {name}",
                crate::lvs::names::real_server(vs, rs)
            );
            if let Some(s) = &rs.notify_up {
                v.push((format!("notify_up of {rname}"), s));
            }
            if let Some(s) = &rs.notify_down {
                v.push((format!("notify_down of {rname}"), s));
            }
            for c in &rs.checkers {
                if let CheckKind::Misc(m) = &c.kind {
                    v.push((format!("MISC_CHECK of {rname}"), &m.path));
                }
            }
        }
    }
    v
}
