//! Which account a script runs as (keepalived's `set_uid_gid()` and
//! `get_default_script_user()`, `lib/notify.c`; keepalived.conf(5) "SCRIPTS"
//! and `script_user`).

use std::ffi::CString;

use nix::unistd::{Gid, Group, User, getegid, geteuid, getgrouplist};

use crate::config::model::ScriptUser;

/// keepalived's default script user, used when neither the script nor
/// global_defs names one and the account exists.
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// The resolved account a script runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user name (the daemon's own account when nothing was configured
    /// and `keepalived_script` does not exist).
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups set in the child. Empty (the default, as in
    /// keepalived) clears root's; a group written `:name` (or just `:`) asks
    /// for the user's own supplementary groups (keepalived's `:` syntax).
    pub groups: Vec<u32>,
}

/// Where the account came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Script,
    ScriptUser,
    Default,
}

/// Resolves the account: the script's own `user`, else global `script_user`,
/// else `keepalived_script` if it exists, else the daemon's own uid/gid
/// (root) — but with `enable_script_security` and no such account keepalived
/// refuses to run the script, and so do we.
///
/// `Err` is an operator-facing reason to refuse; `warnings` gets what should
/// be logged (the default user missing).
pub fn resolve(
    script_user: Option<&ScriptUser>,
    global_user: Option<&ScriptUser>,
    script_security: bool,
    warnings: &mut Vec<String>,
) -> Result<RunAs, String> {
    let (wanted, source) = match (script_user, global_user) {
        (Some(u), _) => (Some(u), Source::Script),
        (None, Some(u)) => (Some(u), Source::ScriptUser),
        (None, None) => (None, Source::Default),
    };
    let run_as = match wanted {
        Some(u) => lookup(&u.user, u.group.as_deref(), source)?,
        None => match lookup(DEFAULT_SCRIPT_USER, None, Source::Default) {
            Ok(r) => r,
            Err(_) if script_security => {
                return Err(format!(
                    "no user to run the script as: enable_script_security is set, no script_user \
                     is configured and the default user '{DEFAULT_SCRIPT_USER}' does not exist — \
                     create it (useradd --system --no-create-home --shell /usr/sbin/nologin \
                     {DEFAULT_SCRIPT_USER}) or set `script_user` in global_defs"
                ));
            }
            Err(_) => {
                let me = own_account();
                warnings.push(format!(
                    "the default script user '{DEFAULT_SCRIPT_USER}' does not exist, so the \
                     script runs as '{}' (uid {}): create that user or set `script_user` in \
                     global_defs",
                    me.user, me.uid
                ));
                me
            }
        },
    };
    let (my_uid, my_gid) = (geteuid().as_raw(), getegid().as_raw());
    if my_uid != 0 && (run_as.uid != my_uid || run_as.gid != my_gid) {
        return Err(format!(
            "cannot run the script as user '{}' (uid:gid {}:{}): ipvsdir runs as uid {my_uid}, \
             not root",
            run_as.user, run_as.uid, run_as.gid
        ));
    }
    Ok(run_as)
}

/// The daemon's own account (root, normally).
fn own_account() -> RunAs {
    let uid = geteuid();
    let name = User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {}", uid.as_raw()));
    RunAs {
        user: name,
        uid: uid.as_raw(),
        gid: getegid().as_raw(),
        groups: Vec::new(),
    }
}

fn lookup(user: &str, group: Option<&str>, source: Source) -> Result<RunAs, String> {
    let origin = match source {
        Source::Script => "the script's user",
        Source::ScriptUser => "global_defs script_user",
        Source::Default => "the default script user",
    };
    let pw = match User::from_name(user) {
        Ok(Some(pw)) => pw,
        Ok(None) => {
            return Err(format!(
                "user '{user}' does not exist ({origin}) — create it or name an existing user"
            ));
        }
        Err(e) => return Err(format!("cannot look up user '{user}' ({origin}): {e}")),
    };
    let (group, supplementary) = match group {
        Some(g) => match g.strip_prefix(':') {
            Some("") => (None, true),
            Some(rest) => (Some(rest), true),
            None => (Some(g), false),
        },
        None => (None, false),
    };
    let gid = match group {
        None => pw.gid,
        Some(g) => match Group::from_name(g) {
            Ok(Some(gr)) => gr.gid,
            Ok(None) => {
                return Err(format!(
                    "group '{g}' does not exist ({origin}) — create it or name an existing group"
                ));
            }
            Err(e) => return Err(format!("cannot look up group '{g}' ({origin}): {e}")),
        },
    };
    let groups = if supplementary {
        supplementary_groups(user, pw.gid)?
    } else {
        Vec::new()
    };
    Ok(RunAs {
        user: user.to_string(),
        uid: pw.uid.as_raw(),
        gid: gid.as_raw(),
        groups,
    })
}

fn supplementary_groups(user: &str, primary: Gid) -> Result<Vec<u32>, String> {
    let name = CString::new(user).map_err(|_| format!("user name '{user}' contains a NUL"))?;
    getgrouplist(&name, primary)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .map_err(|e| format!("cannot list the groups of user '{user}': {e}"))
}
