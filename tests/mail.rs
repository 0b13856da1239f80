//! Mail alerts (`smtp_alert`) received by a real SMTP server: Debian's
//! aiosmtpd (python3-aiosmtpd, installed by scripts/netns-lab/setup) with a
//! small handler that records each mail's HELO, envelope and text.
//!
//! - without root: the daemon's checkers (`-C --no-ipvs`) against loopback
//!   servers that go away and come back, mailed with keepalived's subjects,
//!   bodies and headers to every recipient; and an SMTP server that accepts
//!   and never answers, which delays no check and is logged once;
//! - with root (scripts/netns-lab): VRRP transitions of an instance and a
//!   sync group mailed from a director in its namespace to the server in
//!   the client's, and a director whose SMTP server is unreachable that
//!   keeps its adverts on time;
//! - keepalived 2.2.7 as the oracle: the same file run by both, every mail
//!   keepalived sends is sent by ipvsdir with the same subject, body, HELO,
//!   envelope and headers (Date aside).
//!
//! A missing aiosmtpd (or root, for the lab) fails under CI=true and skips
//! elsewhere.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, HeldPort, free_port, listener};

const HANDLER: &str = r#"
import json, os

class Recorder:
    """Writes each mail as N.json in the directory it is given."""
    def __init__(self, out):
        self.out = out
        self.n = 0

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(*args)

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        rec = {
            "helo": session.host_name,
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        tmp = os.path.join(self.out, ".%d.tmp" % self.n)
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.rename(tmp, os.path.join(self.out, "%04d.json" % self.n))
        return "250 OK"
"#;

fn aiosmtpd_or_skip() -> Option<&'static str> {
    let path = ["/usr/bin/aiosmtpd", "/usr/local/bin/aiosmtpd"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if path.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but aiosmtpd is missing (scripts/netns-lab/setup installs python3-aiosmtpd)"
        );
        eprintln!("SKIP: aiosmtpd is not installed");
    }
    path
}

/// One received mail.
#[derive(Debug)]
struct Mail {
    helo: String,
    from: String,
    to: Vec<String>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn subject(&self) -> &str {
        self.header("Subject").unwrap_or("")
    }
}

fn parse(text: &str) -> Mail {
    let v: serde_json::Value = serde_json::from_str(text).expect("the recorder's JSON");
    let data = v["data"].as_str().unwrap_or_default().replace("\r\n", "\n");
    let (head, body) = data.split_once("\n\n").unwrap_or((&data, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, val)) = line.split_once(':') {
            headers.push((n.to_string(), val.trim().to_string()));
        }
    }
    let qp = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("Content-Transfer-Encoding")
            && v.eq_ignore_ascii_case("quoted-printable")
    });
    let body = if qp {
        quoted_printable(body)
    } else {
        body.to_string()
    };
    Mail {
        helo: v["helo"].as_str().unwrap_or_default().to_string(),
        from: v["from"].as_str().unwrap_or_default().to_string(),
        to: v["to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        headers,
        body: body.trim_end().to_string(),
    }
}

/// A quoted-printable body (a coalesced mail's long lines) decoded.
fn quoted_printable(text: &str) -> String {
    let text = text.replace("=\n", "");
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && let Some(h) = text.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// aiosmtpd with the recorder, on `listen` (optionally inside a network
/// namespace), killed on drop.
struct Smtp {
    child: Child,
    dir: tempfile::TempDir,
}

impl Smtp {
    fn start(bin: &str, listen: &str, netns: Option<&str>) -> Smtp {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("recorder.py"), HANDLER).expect("handler");
        let out = dir.path().join("mails");
        std::fs::create_dir(&out).expect("mail dir");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, bin]);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .args(["-n", "-l", listen, "-c", "recorder.Recorder"])
            .arg(&out)
            .env("PYTHONPATH", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        Smtp { child, dir }
    }

    fn mails(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mails"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse(&t))
            .collect()
    }

    /// Waits (at most `limit`) for a mail whose subject is `subject`.
    fn wait_subject(&self, subject: &str, limit: Duration, log: &dyn Fn() -> String) -> Mail {
        let start = Instant::now();
        loop {
            if let Some(m) = self.mails().into_iter().find(|m| m.subject() == subject) {
                return m;
            }
            if start.elapsed() > limit {
                let got: Vec<String> = self
                    .mails()
                    .iter()
                    .map(|m| m.subject().to_string())
                    .collect();
                panic!(
                    "no mail '{subject}' within {limit:?}; got {got:?}\n{}",
                    log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn checker_conf(smtp_port: u16, extra_global: &str, servers: &[u16]) -> String {
    let mut c = format!(
        "global_defs {{
 router_id lb-test
 notification_email {{
  ops@example.com
  noc@example.org
 }}
 notification_email_from director@example.com
 smtp_server 127.0.0.1 {smtp_port}
 smtp_helo_name director.example.com
{extra_global}}}
virtual_server 127.0.0.1 80 {{
 delay_loop 1
"
    );
    for p in servers {
        c.push_str(&format!(
            " real_server 127.0.0.1 {p} {{
  TCP_CHECK {{
   connect_timeout 1
   retry 0
  }}
 }}
"
        ));
    }
    c.push_str("}\n");
    c
}

/// A real server goes away and comes back: two mails with keepalived's
/// subject and body, to both recipients, from notification_email_from,
/// after `HELO smtp_helo_name`.
#[test]
fn checker_down_and_up_are_mailed_as_keepalived_words_them() {
    let Some(bin) = aiosmtpd_or_skip() else {
        return;
    };
    let smtp_port = free_port();
    let smtp = Smtp::start(bin, &format!("127.0.0.1:{smtp_port}"), None);
    wait_listening(smtp_port);
    let (rs, rs_port) = listener();
    let d = Daemon::start(&checker_conf(smtp_port, "", &[rs_port]), &[]);
    let log = || d.log();
    d.wait_status(15, |s| {
        s["health"]["virtual_servers"][0]["real_servers"][0]["state"] == "up"
    });
    drop(rs);
    let vs = "[127.0.0.1]:tcp:80";
    let rsn = format!("[127.0.0.1]:tcp:{rs_port}");
    let down = smtp.wait_subject(
        &format!("[lb-test] Realserver {rsn} of virtual server {vs} - DOWN"),
        Duration::from_secs(20),
        &log,
    );
    assert_eq!(down.body, "=> TCP CHECK failed on service <=");
    assert_eq!(down.helo, "director.example.com");
    assert_eq!(down.from, "director@example.com");
    assert_eq!(down.to, ["ops@example.com", "noc@example.org"]);
    assert_eq!(down.header("From"), Some("director@example.com"));
    assert_eq!(down.header("To"), Some("ops@example.com, noc@example.org"));
    assert_eq!(down.header("X-Mailer"), Some("Keepalived"));
    assert!(down.header("Date").is_some(), "{down:?}");
    // The same port again: the checker succeeds.
    let rs = TcpListener::bind(("127.0.0.1", rs_port)).expect("bind the real server again");
    let up = smtp.wait_subject(
        &format!("[lb-test] Realserver {rsn} of virtual server {vs} - UP"),
        Duration::from_secs(20),
        &log,
    );
    assert_eq!(up.body, "=> TCP CHECK succeed on service <=");
    let out = d.stop();
    drop(rs);
    assert_eq!(
        smtp.mails().len(),
        2,
        "one mail per change, none at start or stop"
    );
    assert!(!out.contains("cannot mail"), "{out}");
    assert!(
        out.contains(
            "mail alerts go to ops@example.com, noc@example.org through SMTP server 127.0.0.1:"
        ),
        "{out}"
    );
}

/// 20 real servers going down at once make 20 alerts; the sender mails
/// the first few alone (its budget of 5) and the rest coalesced into one
/// mail that lists each subject and body (at the latest when the budget
/// refills, 12 s on): at most 6 mails, no alert lost.
#[test]
fn a_burst_of_alerts_is_coalesced() {
    let Some(bin) = aiosmtpd_or_skip() else {
        return;
    };
    let smtp_port = free_port();
    let smtp = Smtp::start(bin, &format!("127.0.0.1:{smtp_port}"), None);
    wait_listening(smtp_port);
    let mut held: Vec<HeldPort> = (0..20).map(|_| HeldPort::up()).collect();
    let ports: Vec<u16> = held.iter().map(|h| h.port).collect();
    let d = Daemon::start(&checker_conf(smtp_port, "", &ports), &[]);
    let servers = |s: &serde_json::Value, want: &str| {
        s["health"]["virtual_servers"][0]["real_servers"]
            .as_array()
            .is_some_and(|a| a.len() == 20 && a.iter().all(|r| r["state"] == want))
    };
    d.wait_status(15, |s| servers(s, "up"));
    held.iter_mut().for_each(HeldPort::stop);
    d.wait_status(10, |s| servers(s, "down"));
    // Every alert reaches the server, alone or in a coalesced mail.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mentioned = |mails: &[Mail]| {
        ports
            .iter()
            .filter(|p| {
                let rs = format!("Realserver [127.0.0.1]:tcp:{p} of virtual server");
                mails
                    .iter()
                    .any(|m| m.subject().contains(&rs) || m.body.contains(&rs))
            })
            .count()
    };
    let mut mails = smtp.mails();
    while mentioned(&mails) < 20 {
        assert!(
            Instant::now() < deadline,
            "{} of 20 alerts mailed: {:#?}\n{}",
            mentioned(&mails),
            mails.iter().map(Mail::subject).collect::<Vec<_>>(),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
        mails = smtp.mails();
    }
    d.stop();
    let subjects: Vec<&str> = mails.iter().map(Mail::subject).collect();
    println!("{subjects:#?}");
    assert!(mails.len() <= 6, "{subjects:#?}");
    let coalesced: Vec<&Mail> = mails
        .iter()
        .filter(|m| {
            m.subject().starts_with("[lb-test] ") && m.subject().contains(" alerts, the first: ")
        })
        .collect();
    assert_eq!(coalesced.len(), 1, "{subjects:#?}");
    assert!(
        coalesced[0]
            .body
            .contains("=> TCP CHECK failed on service <="),
        "{}",
        coalesced[0].body
    );
}

/// An SMTP server that accepts and never answers: every check still runs on
/// time (20 real servers taken down and brought back at delay_loop 1), the
/// failure is logged once for the whole burst, with the server's address.
#[test]
fn a_silent_smtp_server_delays_no_check_and_is_logged_once() {
    // A listener that never accepts: connections complete in the kernel's
    // backlog and then hear nothing.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let smtp_port = silent.local_addr().expect("addr").port();
    let mut held: Vec<HeldPort> = (0..20).map(|_| HeldPort::up()).collect();
    let ports: Vec<u16> = held.iter().map(|h| h.port).collect();
    let d = Daemon::start(
        &checker_conf(smtp_port, " smtp_connect_timeout 2\n", &ports),
        &[],
    );
    let servers = |s: &serde_json::Value, want: &str| {
        s["health"]["virtual_servers"][0]["real_servers"]
            .as_array()
            .is_some_and(|a| a.len() == 20 && a.iter().all(|r| r["state"] == want))
    };
    d.wait_status(15, |s| servers(s, "up"));
    let t = Instant::now();
    held.iter_mut().for_each(HeldPort::stop);
    d.wait_status(10, |s| servers(s, "down"));
    let down_in = t.elapsed();
    let t = Instant::now();
    held.iter_mut().for_each(HeldPort::start);
    d.wait_status(10, |s| servers(s, "up"));
    let up_in = t.elapsed();
    println!("down in {down_in:?}, up in {up_in:?}");
    // delay_loop 1 + connect_timeout 1, with margin for a loaded host: the
    // mails held for the silent server (2 s each) delay nothing.
    assert!(down_in < Duration::from_secs(6), "{down_in:?}");
    assert!(up_in < Duration::from_secs(6), "{up_in:?}");
    // Several mails failed by now (2 s each); one line says so.
    std::thread::sleep(Duration::from_secs(5));
    let out = d.stop();
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("cannot mail")).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("mail:"),
        "{out}"
    );
    assert!(
        lines[0].contains(&format!("through SMTP server 127.0.0.1:{smtp_port}")),
        "{out}"
    );
    drop(silent);
}

mod lab {
    use super::*;
    use common::lab::Lab;

    const LONG: Duration = Duration::from_secs(20);

    fn instance(name: &str, prio: u8, extra: &str) -> String {
        format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int 1\n{extra}  virtual_ipaddress {{\n    10.99.0.200/24 dev eth0\n  }}\n}}\n"
        )
    }

    /// d1 alone: BACKUP, then MASTER, then Stopping, for the instance and
    /// its sync group, mailed to the server in the client's namespace.
    #[test]
    fn vrrp_transitions_are_mailed_from_a_namespace() {
        let Some(bin) = aiosmtpd_or_skip() else {
            return;
        };
        let Some(mut lab) = Lab::up("mail", 1, &[]) else {
            return;
        };
        let smtp = Smtp::start(bin, "10.99.0.100:2525", Some(&lab.ns("c")));
        let deadline = Instant::now() + Duration::from_secs(15);
        while !lab.try_sh(
            "d1",
            "/usr/bin/python3 -c \"import socket; socket.create_connection(('10.99.0.100', 2525), 1)\"",
        ) {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let conf = format!(
            "global_defs {{\n  router_id d1\n  notification_email {{\n    ops@example.com\n  }}\n  notification_email_from d1@example.com\n  smtp_server 10.99.0.100 2525\n  smtp_alert_vrrp\n}}\n\
             vrrp_sync_group G1 {{\n  group {{\n    VI_1\n  }}\n}}\n{}",
            instance("VI_1", 150, "")
        );
        lab.start_ipvsdir("d1", &conf);
        lab.wait_state("d1", "VI_1", "MASTER", LONG);
        let log = || lab.logs();
        for (subject, body) in [
            (
                "[d1] VRRP Instance VI_1 - Entering BACKUP state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            (
                "[d1] VRRP Instance VI_1 - Entering MASTER state",
                "=> VRRP Instance is now owning VRRP VIPs <=",
            ),
            (
                "[d1] VRRP Group G1 - Entering BACKUP state",
                "=> All VRRP group instances are now in BACKUP state <=",
            ),
            (
                "[d1] VRRP Group G1 - Entering MASTER state",
                "=> All VRRP group instances are now in MASTER state <=",
            ),
        ] {
            let m = smtp.wait_subject(subject, LONG, &log);
            assert_eq!(m.body, body);
            assert_eq!(m.to, ["ops@example.com"]);
            assert_eq!(m.from, "d1@example.com");
        }
        lab.signal("d1", libc::SIGTERM);
        lab.wait_exit("d1", Duration::from_secs(10));
        // Mailed before the exit (the sender flushes at stop).
        let log = || lab.logs();
        let m = smtp.wait_subject(
            "[d1] VRRP Instance VI_1 - Stopping",
            Duration::from_secs(1),
            &log,
        );
        assert_eq!(m.body, "=> VRRP Instance stopping <=");
        let subjects: Vec<String> = smtp
            .mails()
            .iter()
            .map(|m| m.subject().to_string())
            .collect();
        println!("mails: {subjects:?}");
    }

    /// keepalived 2.2.7 (Debian's) as the oracle: the same file run by
    /// keepalived, then by ipvsdir, in the same namespace, each mailing its
    /// own aiosmtpd: every mail keepalived sends (subject, body, HELO,
    /// envelope, From, To, X-Mailer) ipvsdir sends too.
    #[test]
    fn the_same_mails_as_keepalived() {
        let Some(bin) = aiosmtpd_or_skip() else {
            return;
        };
        let Some(mut lab) = Lab::up("mailka", 1, &["keepalived"]) else {
            return;
        };
        let conf = |port: u16| {
            format!(
                "global_defs {{\n  router_id d1\n  notification_email {{\n    ops@example.com\n    noc@example.org\n  }}\n  notification_email_from d1@example.com\n  smtp_server 10.99.0.100 {port}\n  smtp_helo_name d1.example.com\n  smtp_alert\n}}\n\
                 vrrp_sync_group G1 {{\n  group {{\n    VI_1\n  }}\n}}\n{}",
                instance("VI_1", 150, "")
            )
        };
        let master = "[d1] VRRP Instance VI_1 - Entering MASTER state";
        let key = |m: &Mail| {
            (
                m.subject().to_string(),
                m.body.clone(),
                m.helo.clone(),
                m.from.clone(),
                m.to.clone(),
                m.header("From").map(String::from),
                m.header("To").map(String::from),
                m.header("X-Mailer").map(String::from),
            )
        };
        let mut got = Vec::new();
        for (port, keepalived) in [(2525, true), (2526, false)] {
            let smtp = Smtp::start(bin, &format!("10.99.0.100:{port}"), Some(&lab.ns("c")));
            let deadline = Instant::now() + Duration::from_secs(15);
            while !lab.try_sh(
                "d1",
                &format!("/usr/bin/python3 -c \"import socket; socket.create_connection(('10.99.0.100', {port}), 1)\""),
            ) {
                assert!(Instant::now() < deadline, "aiosmtpd did not listen");
                std::thread::sleep(Duration::from_millis(100));
            }
            if keepalived {
                lab.start_keepalived("d1", &conf(port));
            } else {
                lab.start_ipvsdir("d1", &conf(port));
            }
            let log = || lab.logs();
            smtp.wait_subject(master, LONG, &log);
            // The group's mail may follow the instance's.
            std::thread::sleep(Duration::from_secs(2));
            lab.signal("d1", libc::SIGTERM);
            lab.wait_exit("d1", Duration::from_secs(10));
            std::thread::sleep(Duration::from_secs(1));
            got.push(smtp.mails().iter().map(key).collect::<Vec<_>>());
        }
        let (theirs, ours) = (&got[0], &got[1]);
        println!("keepalived: {theirs:#?}\nipvsdir: {ours:#?}");
        assert!(theirs.iter().any(|k| k.0 == master), "{theirs:?}");
        for k in theirs {
            assert!(
                ours.contains(k),
                "keepalived sent {k:?}; ipvsdir sent {ours:#?}"
            );
        }
    }

    /// d2, master, mails through an address nobody has (its SMTP
    /// connections hang, then fail): d1, the backup, sees every advert on
    /// time (no takeover in three Master_Down_Intervals), and d2 logs the
    /// failure once.
    #[test]
    fn an_unreachable_smtp_server_delays_no_advert() {
        let Some(mut lab) = Lab::up("mailun", 2, &[]) else {
            return;
        };
        let conf = |prio: u8| {
            format!(
                "global_defs {{\n  notification_email {{\n    ops@example.com\n  }}\n  smtp_server 10.99.0.222 25\n  smtp_connect_timeout 3\n  smtp_alert\n}}\n{}",
                instance("VI_1", prio, "")
            )
        };
        lab.start_ipvsdir("d2", &conf(150));
        lab.wait_state("d2", "VI_1", "MASTER", LONG);
        lab.start_ipvsdir("d1", &conf(100));
        lab.wait_state("d1", "VI_1", "BACKUP", LONG);
        std::thread::sleep(Duration::from_secs(11));
        assert!(
            !lab.log("d1").contains("Entering MASTER STATE"),
            "d1 took over: d2's adverts were late\n{}",
            lab.logs()
        );
        assert_eq!(lab.state("d2", "VI_1").as_deref(), Some("MASTER"));
        let d2_log = lab.log("d2");
        let failed = d2_log.lines().filter(|l| l.contains("cannot mail")).count();
        assert_eq!(failed, 1, "{d2_log}");
        assert!(
            d2_log.contains("through SMTP server 10.99.0.222:25"),
            "{d2_log}"
        );
    }
}
