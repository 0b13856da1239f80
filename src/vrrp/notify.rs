//! Notify scripts of state transitions, keepalived's way: `notify_master`
//! / `notify_backup` / `notify_fault` / `notify_stop` as written, then the
//! generic `notify` with `INSTANCE|GROUP name STATE priority` appended.
//! Each instance (and group) has one worker that runs its scripts in order,
//! so a quick MASTER -> BACKUP -> MASTER never runs out of order, and the
//! protocol never waits for a script. Pure: the driver runs the workers.

use crate::config::model::{Notify, Script};

/// The state named in notify arguments (keepalived's words).
pub fn state_word(state: super::state::State, stopping: bool) -> &'static str {
    use super::state::State;
    match state {
        _ if stopping => "STOP",
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Init => "STOP",
    }
}

/// One transition to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// "INSTANCE" or "GROUP".
    pub kind: &'static str,
    pub name: String,
    pub state: &'static str,
    pub priority: u8,
}

impl Job {
    /// The line for the notify FIFOs, without its newline:
    /// `INSTANCE "VI_1" MASTER 100`, `GROUP "G1" BACKUP 0` (keepalived
    /// writes 0 as a group's priority).
    pub fn fifo_line(&self) -> String {
        format!(
            "{} \"{}\" {} {}",
            self.kind, self.name, self.state, self.priority
        )
    }
}

/// The scripts a job runs, in order: the specific one, then the generic one.
/// The event `MASTER_RX_LOWER_PRI` runs `notify_master_rx_lower_pri` only,
/// as keepalived's `send_event_notify` (no generic `notify`).
pub fn scripts_for<'a>(notify: &'a Notify, job: &Job) -> Vec<(&'a Script, Vec<String>)> {
    if job.state == "MASTER_RX_LOWER_PRI" {
        return notify
            .master_rx_lower_pri
            .iter()
            .map(|s| (s, Vec::new()))
            .collect();
    }
    let specific = match job.state {
        "MASTER" => notify.master.as_ref(),
        "BACKUP" => notify.backup.as_ref(),
        "FAULT" => notify.fault.as_ref(),
        "STOP" => notify.stop.as_ref(),
        _ => None,
    };
    let mut out = Vec::new();
    if let Some(s) = specific {
        out.push((s, Vec::new()));
    }
    if let Some(s) = &notify.any {
        out.push((
            s,
            vec![
                job.kind.to_string(),
                job.name.clone(),
                job.state.to_string(),
                job.priority.to_string(),
            ],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(c: &str) -> Option<Script> {
        Some(Script {
            command: c.into(),
            user: None,
        })
    }

    #[test]
    fn specific_then_generic_with_keepalived_arguments() {
        let n = Notify {
            master: script("/m.sh"),
            any: script("/n.sh x"),
            ..Notify::default()
        };
        let job = Job {
            kind: "INSTANCE",
            name: "VI_1".into(),
            state: "MASTER",
            priority: 100,
        };
        let s = scripts_for(&n, &job);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0.command, "/m.sh");
        assert!(s[0].1.is_empty());
        assert_eq!(s[1].1, ["INSTANCE", "VI_1", "MASTER", "100"]);
        let backup = Job {
            state: "BACKUP",
            ..job
        };
        assert_eq!(scripts_for(&n, &backup).len(), 1);
    }

    #[test]
    fn events_run_their_own_script_only() {
        let n = Notify {
            master: script("/m.sh"),
            any: script("/n.sh"),
            master_rx_lower_pri: script("/rx.sh"),
            ..Notify::default()
        };
        let job = |state| Job {
            kind: "INSTANCE",
            name: "VI_1".into(),
            state,
            priority: 100,
        };
        let rx = scripts_for(&n, &job("MASTER_RX_LOWER_PRI"));
        assert_eq!(rx.len(), 1);
        assert_eq!(rx[0].0.command, "/rx.sh");
        assert!(rx[0].1.is_empty());
        assert_eq!(
            job("MASTER_RX_LOWER_PRI").fifo_line(),
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100"
        );
    }

    #[test]
    fn fifo_lines_as_keepalived_writes_them() {
        let job = Job {
            kind: "INSTANCE",
            name: "VI_1".into(),
            state: "MASTER",
            priority: 100,
        };
        assert_eq!(job.fifo_line(), "INSTANCE \"VI_1\" MASTER 100");
        let group = Job {
            kind: "GROUP",
            name: "G1".into(),
            state: "BACKUP",
            priority: 0,
        };
        assert_eq!(group.fifo_line(), "GROUP \"G1\" BACKUP 0");
    }
}
