//! Which event mails, and what the mail says: keepalived 2.2.7's subjects
//! and bodies (`smtp.c`, `vrrp_notify.c` and the checkers). Pure: the cores
//! call these where they decide a transition and hand the [`Alert`] out as
//! an effect; the sender adds the `[router_id] ` prefix and the addresses.

use crate::config::model::{CheckKind, GlobalDefs};

/// One alert, before it is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The subject after keepalived's `[router_id] ` prefix, e.g.
    /// `VRRP Instance VI_1 - Entering MASTER state`.
    pub subject: String,
    /// keepalived's one-line body, e.g.
    /// `=> VRRP Instance is now owning VRRP VIPs <=`.
    pub body: String,
}

/// The words of a VRRP state as the cores name it (`MASTER`, `BACKUP`,
/// `FAULT`, `STOP`, see `vrrp::notify::state_word`) -> (subject tail, body)
/// for an instance.
fn instance_words(state: &str) -> Option<(&'static str, &'static str)> {
    Some(match state {
        "MASTER" => (
            "Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        ),
        "BACKUP" => (
            "Entering BACKUP state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        "FAULT" => (
            "Entering FAULT state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        "STOP" => ("Stopping", "=> VRRP Instance stopping <="),
        _ => return None,
    })
}

fn group_words(state: &str) -> Option<(&'static str, &'static str)> {
    Some(match state {
        "MASTER" => (
            "Entering MASTER state",
            "=> All VRRP group instances are now in MASTER state <=",
        ),
        "BACKUP" => (
            "Entering BACKUP state",
            "=> All VRRP group instances are now in BACKUP state <=",
        ),
        "FAULT" => (
            "Entering FAULT state",
            "=> All VRRP group instances are now in FAULT state <=",
        ),
        "STOP" => (
            "Stopping",
            "=> All VRRP group instances are now stopping <=",
        ),
        _ => return None,
    })
}

/// A VRRP instance (`group` false) or sync group entered `state`: the mail,
/// if mail is configured, the block's `smtp_alert` is on and
/// `no_email_faults` does not silence it.
pub fn vrrp(
    global: &GlobalDefs,
    smtp_alert: bool,
    group: bool,
    name: &str,
    state: &str,
) -> Option<Alert> {
    if !global.mail_configured() || !smtp_alert || (global.no_email_faults && state == "FAULT") {
        return None;
    }
    let (what, body) = if group {
        group_words(state)?
    } else {
        instance_words(state)?
    };
    let kind = if group { "Group" } else { "Instance" };
    Some(Alert {
        subject: format!("VRRP {kind} {name} - {what}"),
        body: body.to_string(),
    })
}

/// One checker of a real server went up or down.
#[derive(Debug, Clone, Copy)]
pub struct CheckerChange<'a> {
    pub kind: &'a CheckKind,
    /// The checker's new state.
    pub up: bool,
    /// Its real server's state after the change.
    pub rs_alive: bool,
    /// The change moved the real server (it was the other way before).
    pub rs_changed: bool,
    /// Why the checker failed (its last result), for SMTP_CHECK's body.
    pub reason: Option<&'a str>,
}

/// keepalived's body for a checker that went up or down; None for the
/// checkers keepalived never mails about (FILE_CHECK).
fn checker_body(c: &CheckerChange) -> Option<String> {
    let verdict = if c.up { "succeed" } else { "failed" };
    Some(match c.kind {
        CheckKind::Tcp => format!("=> TCP CHECK {verdict} on service <="),
        CheckKind::Udp(_) => format!("=> UDP CHECK {verdict} on service <="),
        CheckKind::Ping => format!("=> ICMP CHECK {verdict} on service <="),
        CheckKind::Dns(_) => format!("=> DNS_CHECK: {verdict} on service <="),
        CheckKind::Http(_) if c.up => "=> CHECK succeed on service <=".into(),
        CheckKind::Http(_) => "=> CHECK failed on service : HTTP request failed <=".into(),
        CheckKind::Smtp(_) if c.up => "=> CHECK succeed on service <=".into(),
        CheckKind::Smtp(_) => match c.reason {
            Some(r) => format!("=> CHECK failed on service : {r} <="),
            None => "=> CHECK failed on service <=".into(),
        },
        CheckKind::Misc(_) => {
            let how = match c.reason {
                _ if c.up => "succeeded",
                Some(r) if r.contains("timed out") => "timed out",
                _ => "failed",
            };
            format!("=> MISC CHECK {how} on service <=")
        }
        CheckKind::File(_) => return None,
    })
}

/// A checker of real server `rs` (named as the log names it,
/// `[10.0.0.11]:tcp:80`) of virtual server `vs` changed: the mail, if mail
/// is configured, the real server's `smtp_alert` is on, and
/// `no_checker_emails` does not hold back a change that left the real
/// server as it was.
pub fn checker(
    global: &GlobalDefs,
    smtp_alert: bool,
    rs: &str,
    vs: &str,
    change: &CheckerChange,
) -> Option<Alert> {
    if !global.mail_configured() || !smtp_alert || (global.no_checker_emails && !change.rs_changed)
    {
        return None;
    }
    let body = checker_body(change)?;
    Some(Alert {
        subject: format!(
            "Realserver {rs} of virtual server {vs} - {}",
            if change.rs_alive { "UP" } else { "DOWN" }
        ),
        body,
    })
}

/// A real server that was up leaves: removed by a reload (`=> Removing <=`)
/// or, with omega, at shutdown (`=> Shutting down <=`); keepalived 2.2.7's
/// `SMTP_MSG_RS_SHUT`.
pub fn rs_cleared(
    global: &GlobalDefs,
    smtp_alert: bool,
    rs: &str,
    vs: &str,
    stopping: bool,
) -> Option<Alert> {
    if !global.mail_configured() || !smtp_alert {
        return None;
    }
    Some(Alert {
        subject: format!("Realserver {rs} of virtual server {vs} - DOWN"),
        body: if stopping {
            "=> Shutting down <="
        } else {
            "=> Removing <="
        }
        .into(),
    })
}

/// With omega, at shutdown, a virtual server that held quorum.
pub fn vs_shutdown(global: &GlobalDefs, smtp_alert: bool, vs: &str) -> Option<Alert> {
    if !global.mail_configured() || !smtp_alert {
        return None;
    }
    Some(Alert {
        subject: format!("Virtualserver {vs} - DOWN"),
        body: "=> Shutting down <=".into(),
    })
}

/// A virtual server gained or lost quorum (`init`: its first verdict, at
/// start): keepalived's `Virtualserver` mail, if mail is configured and the
/// virtual server's `smtp_alert` is on. `weight_sum` is the live real
/// servers' weight.
pub fn quorum(
    global: &GlobalDefs,
    smtp_alert: bool,
    vs: &str,
    up: bool,
    init: bool,
    (quorum, hysteresis): (u32, u32),
    weight_sum: u64,
) -> Option<Alert> {
    if !global.mail_configured() || !smtp_alert {
        return None;
    }
    let what = match (up, init) {
        (true, true) => "Starting with quorum up",
        (true, false) => "Gained quorum",
        (false, true) => "Starting with quorum down",
        (false, false) => "Lost quorum",
    };
    // keepalived's threshold: gained at quorum + hysteresis, lost below
    // quorum - hysteresis (its body writes `+` either way).
    let threshold = if up {
        i64::from(quorum) + i64::from(hysteresis)
    } else {
        i64::from(quorum) - i64::from(hysteresis)
    };
    Some(Alert {
        subject: format!("Virtualserver {vs} - {}", if up { "UP" } else { "DOWN" }),
        body: format!("=> {what} {quorum}+{hysteresis}={threshold} <= {weight_sum} <="),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::SmtpServer;

    fn mailing() -> GlobalDefs {
        GlobalDefs {
            notification_email: vec!["ops@example.com".into()],
            smtp_server: Some(SmtpServer {
                host: "127.0.0.1".into(),
                port: 25,
            }),
            ..GlobalDefs::default()
        }
    }

    #[test]
    fn vrrp_subjects_and_bodies_are_keepalived_words() {
        let g = mailing();
        let a = vrrp(&g, true, false, "VI_1", "MASTER").unwrap();
        assert_eq!(a.subject, "VRRP Instance VI_1 - Entering MASTER state");
        assert_eq!(a.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        let a = vrrp(&g, true, false, "VI_1", "BACKUP").unwrap();
        assert_eq!(a.body, "=> VRRP Instance is no longer owning VRRP VIPs <=");
        let a = vrrp(&g, true, false, "VI_1", "STOP").unwrap();
        assert_eq!(a.subject, "VRRP Instance VI_1 - Stopping");
        let a = vrrp(&g, true, true, "G1", "FAULT").unwrap();
        assert_eq!(a.subject, "VRRP Group G1 - Entering FAULT state");
        assert_eq!(
            a.body,
            "=> All VRRP group instances are now in FAULT state <="
        );
    }

    #[test]
    fn no_mail_without_recipients_server_or_smtp_alert() {
        let g = mailing();
        assert!(vrrp(&g, false, false, "VI_1", "MASTER").is_none());
        let none = GlobalDefs {
            notification_email: Vec::new(),
            ..mailing()
        };
        assert!(vrrp(&none, true, false, "VI_1", "MASTER").is_none());
        let no_server = GlobalDefs {
            smtp_server: None,
            ..mailing()
        };
        assert!(vrrp(&no_server, true, false, "VI_1", "MASTER").is_none());
        let quiet_faults = GlobalDefs {
            no_email_faults: true,
            ..mailing()
        };
        assert!(vrrp(&quiet_faults, true, false, "VI_1", "FAULT").is_none());
        assert!(vrrp(&quiet_faults, true, false, "VI_1", "MASTER").is_some());
    }

    #[test]
    fn checker_mails_name_the_real_server_and_the_check() {
        let g = mailing();
        let change = CheckerChange {
            kind: &CheckKind::Tcp,
            up: false,
            rs_alive: false,
            rs_changed: true,
            reason: Some("connection refused"),
        };
        let a = checker(&g, true, "[10.0.0.11]:tcp:80", "[10.0.0.1]:tcp:80", &change).unwrap();
        assert_eq!(
            a.subject,
            "Realserver [10.0.0.11]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN"
        );
        assert_eq!(a.body, "=> TCP CHECK failed on service <=");
        let up = CheckerChange {
            kind: &CheckKind::Ping,
            up: true,
            rs_alive: true,
            ..change
        };
        let a = checker(&g, true, "[10.0.0.11]:tcp:80", "[10.0.0.1]:tcp:80", &up).unwrap();
        assert!(a.subject.ends_with(" - UP"));
        assert_eq!(a.body, "=> ICMP CHECK succeed on service <=");
        // no_checker_emails: only changes that move the real server.
        let quiet = GlobalDefs {
            no_checker_emails: true,
            ..mailing()
        };
        let unmoved = CheckerChange {
            rs_changed: false,
            ..change
        };
        assert!(checker(&quiet, true, "r", "v", &unmoved).is_none());
        assert!(checker(&quiet, true, "r", "v", &change).is_some());
        assert!(checker(&g, true, "r", "v", &unmoved).is_some());
        let file = CheckerChange {
            kind: &CheckKind::File(crate::config::model::FileCheck {
                name: "f".into(),
                path: "/f".into(),
                weight: 0,
                reverse: false,
                base_weight: 1,
            }),
            ..change
        };
        assert!(checker(&g, true, "r", "v", &file).is_none());
    }

    #[test]
    fn quorum_mails_as_keepalived_words_them() {
        let g = mailing();
        let a = quorum(&g, true, "[10.0.0.1]:tcp:80", true, false, (2, 1), 3).unwrap();
        assert_eq!(a.subject, "Virtualserver [10.0.0.1]:tcp:80 - UP");
        assert_eq!(a.body, "=> Gained quorum 2+1=3 <= 3 <=");
        let a = quorum(&g, true, "[10.0.0.1]:tcp:80", false, false, (2, 1), 0).unwrap();
        assert_eq!(a.subject, "Virtualserver [10.0.0.1]:tcp:80 - DOWN");
        assert_eq!(a.body, "=> Lost quorum 2+1=1 <= 0 <=");
        let a = quorum(&g, true, "v", true, true, (1, 0), 2).unwrap();
        assert_eq!(a.body, "=> Starting with quorum up 1+0=1 <= 2 <=");
        assert!(quorum(&g, false, "v", true, true, (1, 0), 2).is_none());
    }
}
