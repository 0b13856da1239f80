//! The director core on virtual time, with no root and no kernel: health
//! flaps, quorum with hysteresis, drains after a reload, the stop order,
//! operator overrides, start-up requests, kernel timeouts and drift. The
//! kernel's part is played by an in-memory table that applies the core's
//! operations as the kernel would (`diff::apply_to`); the real kernel runs
//! the same core in the VM tests (tests/vm_ipvs.rs, tests/vm_e2e.rs).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ipvsdir::config::{LoadOptions, load_str};
use ipvsdir::lvs::diff::apply_to;
use ipvsdir::lvs::director::{
    AnnounceRequest, Director, DrainError, Effect, Event, KernelReply, KernelRequest,
    OperatorError, Options, Override, RETRY_AFTER, Saved, Target,
};
use ipvsdir::lvs::kernel_error::KernelError;
use ipvsdir::lvs::{Op, Table};

fn config(text: &str) -> ipvsdir::config::model::Config {
    let l = load_str("t.conf", text, &LoadOptions::default());
    l.config.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// A director, its clock, the kernel table it writes and what it did.
struct Sim {
    core: Director,
    t0: Instant,
    now: Instant,
    kernel: Table,
    /// Every kernel request, in order.
    requests: Vec<KernelRequest>,
    /// Every other effect, in order.
    effects: Vec<Effect>,
    /// Answer the next requests with a timeout.
    silent: usize,
    /// The IPVS connection counter of every service.
    conns: u64,
}

fn opts(t0: Instant) -> Options {
    Options {
        write_table: true,
        release_on_stop: true,
        drain_grace: Duration::from_secs(30),
        drift_interval: Duration::from_secs(10),
        vrrp_in_process: false,
        origin: t0,
        assume: None,
        report_every: None,
        persist_overrides: false,
        announce: true,
    }
}

impl Sim {
    fn new(text: &str, edit: impl FnOnce(&mut Options)) -> Sim {
        let t0 = Instant::now();
        let mut o = opts(t0);
        edit(&mut o);
        Sim {
            core: Director::new(config(text), o, BTreeSet::new()),
            t0,
            now: t0,
            kernel: Table::default(),
            requests: Vec::new(),
            effects: Vec::new(),
            silent: 0,
            conns: 0,
        }
    }

    /// Feeds an event, then answers kernel requests until the core is quiet.
    fn on(&mut self, event: Event) {
        self.core.handle(self.now, event);
        self.run();
    }

    fn run(&mut self) {
        while let Some(e) = self.core.poll_effect() {
            match e {
                Effect::Kernel(r) => {
                    self.requests.push(r.clone());
                    let reply = self.answer(r);
                    self.core.handle(self.now, Event::Kernel(reply));
                }
                other => self.effects.push(other),
            }
        }
    }

    fn answer(&mut self, r: KernelRequest) -> KernelReply {
        if self.silent > 0 {
            self.silent -= 1;
            let e = KernelError::Timeout(10);
            return match r {
                KernelRequest::Read => KernelReply::Table(Err(e)),
                KernelRequest::Execute(_) => KernelReply::Executed(Err(e)),
                _ => KernelReply::Done(Err(e)),
            };
        }
        match r {
            KernelRequest::Flush => {
                self.kernel = Table::default();
                KernelReply::Done(Ok(()))
            }
            KernelRequest::SetTimeouts(_) => KernelReply::Done(Ok(())),
            KernelRequest::SetSysctls(_) => KernelReply::Done(Ok(())),
            KernelRequest::Read => KernelReply::Table(Ok(self.kernel.clone())),
            KernelRequest::Execute(ops) => {
                apply_to(&mut self.kernel, &ops);
                KernelReply::Executed(Ok(ops.iter().map(|_| Ok(())).collect()))
            }
            // Every service has scheduled `conns` connections so far.
            KernelRequest::ReadCounters => KernelReply::Counters(Ok(self
                .kernel
                .services
                .keys()
                .map(|k| (*k, self.conns))
                .collect())),
        }
    }

    /// Moves the clock to `t0 + secs` and runs what is due by then.
    fn at(&mut self, secs: f64) {
        self.now = self.t0 + Duration::from_secs_f64(secs);
        while let Some(t) = self.core.poll_timeout() {
            if t > self.now {
                break;
            }
            self.core.handle_timeout(self.now);
            self.run();
            if self.core.poll_timeout() == Some(t) {
                break;
            }
        }
    }

    /// Reports probe `id` up or down.
    fn probe(&mut self, id: usize, up: bool) {
        let mut s = self.core.health().states[id].clone();
        let now = self.now.duration_since(self.t0).as_millis() as u64;
        s.up = up;
        s.since = now;
        s.last = Some(ipvsdir::check::state::LastResult {
            ok: up,
            reason: if up { "ok" } else { "connection refused" }.into(),
            at: now,
        });
        self.on(Event::Probes(vec![(id, s)]));
    }

    /// Every checker's first result, as its state already is (announced
    /// VIPs wait for them).
    fn checked(&mut self) {
        let now = self.now.duration_since(self.t0).as_millis() as u64;
        let updates = self
            .core
            .health()
            .states
            .iter()
            .enumerate()
            .map(|(id, s)| {
                let mut s = s.clone();
                s.last = Some(ipvsdir::check::state::LastResult {
                    ok: s.up,
                    reason: if s.up { "ok" } else { "connection refused" }.into(),
                    at: now,
                });
                (id, s)
            })
            .collect();
        self.on(Event::Probes(updates));
    }

    /// The ops sent since the last call.
    fn ops(&mut self) -> Vec<String> {
        self.requests
            .drain(..)
            .flat_map(|r| match r {
                KernelRequest::Execute(ops) => ops.iter().map(rule).collect(),
                KernelRequest::Read => vec!["read".to_string()],
                KernelRequest::Flush => vec!["flush".to_string()],
                KernelRequest::SetTimeouts(_) => vec!["timeouts".to_string()],
                KernelRequest::ReadCounters => vec!["counters".to_string()],
                KernelRequest::SetSysctls(v) => {
                    v.iter().map(|(n, v)| format!("sysctl {n}={v}")).collect()
                }
            })
            .collect()
    }

    /// The effects other than kernel requests since the last call, as words.
    fn said(&mut self) -> Vec<String> {
        self.effects
            .drain(..)
            .map(|e| match e {
                Effect::RunScript { script, .. } => format!("script {}", script.command),
                Effect::StartProbes { states, .. } => format!("probes {}", states.len()),
                Effect::StopProbes => "stop probes".into(),
                Effect::SaveOwned(s) => format!("owned {}", s.len()),
                Effect::SaveOverrides(s) => format!("overrides {}", s.len()),
                Effect::TableReady => "ready".into(),
                Effect::WriteReport { force } => format!("report{}", if force { "!" } else { "" }),
                Effect::Stopped => "stopped".into(),
                Effect::FifoLine(l) => format!("fifo {l}"),
                Effect::Announce(AnnounceRequest::Sync {
                    target,
                    vips,
                    drift,
                }) => format!(
                    "{} table {} [{}]",
                    if drift { "check" } else { "sync" },
                    target.table,
                    vips.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Effect::Announce(AnnounceRequest::Announce { vip, .. }) => {
                    format!("announce {vip}")
                }
                Effect::Announce(AnnounceRequest::Withdraw { vip, .. }) => {
                    format!("withdraw {vip}")
                }
                Effect::AnnounceStatus(list) => format!(
                    "status {}/{}",
                    list.iter().filter(|s| s.announced).count(),
                    list.len()
                ),
                Effect::Mail(a) => format!("mail {} | {}", a.subject, a.body),
                Effect::Kernel(_) => unreachable!(),
            })
            .collect()
    }

    fn weights(&self) -> Vec<(String, u32)> {
        self.kernel
            .services
            .iter()
            .flat_map(|(k, s)| {
                s.dests
                    .values()
                    .map(move |d| (format!("{k} {}:{}", d.addr, d.port), d.weight))
            })
            .collect()
    }
}

fn rule(op: &Op) -> String {
    ipvsdir::lvs::format::op_rule(op)
}

const TWO: &str = "virtual_server 10.0.0.1 80 {
 lb_kind NAT
 real_server 10.0.1.1 80 {
  weight 3
  notify_down \"/bin/rs1-down\"
  notify_up \"/bin/rs1-up\"
  TCP_CHECK {
   connect_timeout 1
  }
 }
 real_server 10.0.1.2 80 {
  weight 2
  TCP_CHECK {
   connect_timeout 2
  }
 }
}
";

#[test]
fn start_writes_the_table_then_says_ready() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    assert_eq!(
        s.ops(),
        [
            "read",
            "-A -t 10.0.0.1:80 -s wlc",
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3",
            "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2"
        ]
    );
    assert_eq!(s.said(), ["probes 2", "owned 1", "ready"]);
}

#[test]
fn lvs_flush_and_timeouts_come_before_the_table_and_need_no_read() {
    let text =
        format!("global_defs {{\n lvs_flush\n lvs_timeouts tcp 900 tcpfin 60 udp 30\n}}\n{TWO}");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    let ops = s.ops();
    assert_eq!(ops[..3], ["flush", "timeouts", "-A -t 10.0.0.1:80 -s wlc"]);
    assert_eq!(ops.len(), 5, "{ops:?}");
}

#[test]
fn a_flapping_real_server_leaves_and_returns_with_its_scripts() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    s.said();
    s.at(1.0);
    s.probe(0, false);
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.1:80"]);
    assert_eq!(s.said(), ["script /bin/rs1-down"]);
    s.at(2.0);
    s.probe(0, true);
    assert_eq!(s.ops(), ["-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3"]);
    assert_eq!(s.said(), ["script /bin/rs1-up"]);
    // The same verdict again changes nothing.
    s.probe(0, true);
    assert!(s.ops().is_empty());
    assert!(s.said().is_empty());
}

#[test]
fn quorum_with_hysteresis_and_the_sorry_server() {
    // Weights 1+1+1; quorum 2, hysteresis 1: lost below 1, regained at 3.
    let text = "virtual_server 10.0.0.1 80 {
 quorum 2
 hysteresis 1
 quorum_up \"/bin/qup\"
 quorum_down \"/bin/qdown\"
 sorry_server 10.0.9.9 80
 real_server 10.0.1.1 80 {
  TCP_CHECK {
   connect_timeout 1
  }
 }
 real_server 10.0.1.2 80 {
  TCP_CHECK {
   connect_timeout 2
  }
 }
 real_server 10.0.1.3 80 {
  TCP_CHECK {
   connect_timeout 3
  }
 }
}
";
    let mut s = Sim::new(text, |_| {});
    s.on(Event::Start);
    assert!(s.said().contains(&"script /bin/qup".to_string()));
    s.ops();
    s.probe(0, false);
    s.probe(1, false);
    // Live weight 1: still >= quorum - hysteresis.
    assert!(!s.said().iter().any(|e| e.contains("qdown")));
    s.probe(2, false);
    assert_eq!(s.said(), ["script /bin/qdown"]);
    assert_eq!(s.weights(), [("TCP 10.0.0.1:80 10.0.9.9:80".into(), 1)]);
    s.probe(0, true);
    s.probe(1, true);
    // Live weight 2 < quorum + hysteresis: the sorry server stays.
    assert!(s.said().is_empty());
    assert_eq!(s.weights().len(), 1);
    s.probe(2, true);
    assert_eq!(s.said(), ["script /bin/qup"]);
    assert_eq!(s.weights().len(), 3);
}

#[test]
fn a_reload_changing_one_weight_sends_one_op_and_reads_nothing() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    s.said();
    s.on(Event::Reload(Box::new(config(
        &TWO.replace("weight 2", "weight 5"),
    ))));
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 5"]);
    // Identical probes keep their state: both are restarted from it.
    assert_eq!(s.said(), ["probes 2", "ready"]);
}

#[test]
fn a_reload_that_changes_nothing_touches_nothing() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.probe(1, false);
    s.ops();
    s.said();
    s.on(Event::Reload(Box::new(config(TWO))));
    assert!(s.ops().is_empty());
    // The probe that was down is still down: no flap.
    assert!(!s.core.health().states[1].up);
    assert_eq!(s.weights().len(), 1);
}

#[test]
fn a_removed_real_server_drains_then_goes() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    s.at(5.0);
    let without = TWO.replace(
        " real_server 10.0.1.2 80 {\n  weight 2\n  TCP_CHECK {\n   connect_timeout 2\n  }\n }\n",
        "",
    );
    s.on(Event::Reload(Box::new(config(&without))));
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0"]);
    s.at(34.0);
    assert!(
        !s.ops()
            .iter()
            .any(|o| o.starts_with("-d -t 10.0.0.1:80 -r 10.0.1.2"))
    );
    s.at(35.0);
    assert!(
        s.ops()
            .contains(&"-d -t 10.0.0.1:80 -r 10.0.1.2:80".to_string())
    );
    assert_eq!(s.weights().len(), 1);
}

#[test]
fn a_removed_virtual_server_drains_then_goes_while_the_others_stay() {
    let text =
        format!("{TWO}virtual_server 10.0.0.2 443 {{\n real_server 10.0.2.1 443 {{\n }}\n}}\n");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.ops();
    s.at(1.0);
    s.on(Event::Reload(Box::new(config(TWO))));
    assert_eq!(s.ops(), ["-e -t 10.0.0.2:443 -r 10.0.2.1:443 -m -w 0"]);
    s.at(30.5);
    assert!(s.ops().iter().all(|o| !o.starts_with("-D")));
    s.at(31.0);
    assert_eq!(s.ops(), ["-D -t 10.0.0.2:443"]);
    assert_eq!(s.kernel.services.len(), 1);
}

#[test]
fn a_virtual_server_added_back_during_its_drain_stays() {
    let text =
        format!("{TWO}virtual_server 10.0.0.2 443 {{\n real_server 10.0.2.1 443 {{\n }}\n}}\n");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.on(Event::Reload(Box::new(config(TWO))));
    s.at(10.0);
    s.ops();
    s.on(Event::Reload(Box::new(config(&text))));
    assert_eq!(s.ops(), ["-e -t 10.0.0.2:443 -r 10.0.2.1:443 -m -w 1"]);
    s.at(40.0);
    assert!(s.ops().iter().all(|o| o == "read"));
    assert_eq!(s.kernel.services.len(), 2);
}

#[test]
fn with_vrrp_in_process_the_table_stays_until_vrrp_has_handed_over() {
    let text = format!(
        "{TWO}virtual_server 10.0.0.1 81 {{\n omega\n real_server 10.0.1.1 81 {{\n  notify_down \"/bin/omega-down\"\n }}\n}}\n"
    );
    let mut s = Sim::new(&text, |o| o.vrrp_in_process = true);
    s.on(Event::Start);
    s.ops();
    s.said();
    s.at(1.0);
    s.on(Event::Stop);
    assert!(
        s.ops().is_empty(),
        "nothing leaves the table before the handoff"
    );
    assert!(s.said().is_empty());
    // Health still counts while VRRP hands over.
    s.probe(1, false);
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.2:80"]);
    s.at(1.6);
    s.on(Event::VrrpStopped);
    let ops = s.ops();
    assert_eq!(ops, ["-D -t 10.0.0.1:80", "-D -t 10.0.0.1:81"]);
    assert_eq!(
        s.said(),
        [
            "script /bin/omega-down",
            "stop probes",
            "owned 0",
            "stopped"
        ]
    );
    assert!(s.kernel.services.is_empty());
    assert!(s.core.is_stopped());
}

#[test]
fn without_vrrp_in_process_the_stop_releases_at_once() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    s.said();
    s.on(Event::Stop);
    assert_eq!(s.ops(), ["-D -t 10.0.0.1:80"]);
    assert_eq!(s.said(), ["stop probes", "owned 0", "stopped"]);
}

#[test]
fn dont_release_ipvs_keeps_the_table_and_flush_on_stop_flushes_it() {
    let mut keep = Sim::new(TWO, |o| o.release_on_stop = false);
    keep.on(Event::Start);
    keep.ops();
    keep.on(Event::Stop);
    assert!(keep.ops().is_empty());
    assert_eq!(keep.kernel.services.len(), 1);
    assert!(keep.core.is_stopped());

    let text = format!("global_defs {{\n lvs_flush_on_stop\n}}\n{TWO}");
    let mut flush = Sim::new(&text, |_| {});
    flush.on(Event::Start);
    flush.ops();
    flush.on(Event::Stop);
    assert_eq!(flush.ops(), ["flush"]);
    assert!(flush.core.is_stopped());
}

#[test]
fn a_stop_before_the_start_releases_what_an_earlier_run_owned() {
    // --release: the file's services and those recorded, nothing else.
    let mut s = Sim::new(TWO, |o| o.assume = Some(true));
    s.on(Event::Start);
    let owned_before = s.kernel.clone();
    let mut r = Sim::new(TWO, |o| o.assume = Some(true));
    r.kernel = owned_before;
    r.on(Event::Stop);
    assert_eq!(r.ops(), ["read", "-D -t 10.0.0.1:80"]);
    assert_eq!(r.said(), ["owned 0", "stopped"]);
}

fn target(addr: &str, port: Option<u16>, vs: Option<&str>) -> Target {
    Target {
        addr: addr.parse().unwrap(),
        port,
        vs: vs.map(str::to_string),
    }
}

impl Sim {
    fn operator(&mut self, t: &Target, o: Override) -> Result<Vec<String>, OperatorError> {
        let r = self.core.operator(self.now, t, o);
        self.run();
        r
    }
}

#[test]
fn operator_overrides_drain_weight_disable_and_enable_and_survive_a_reload() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    let rs1 = target("10.0.1.1", None, None);
    assert_eq!(
        s.operator(&rs1, Override::Drain),
        Ok(vec![
            "[10.0.1.1]:tcp:80 of VS [10.0.0.1]:tcp:80".to_string()
        ])
    );
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0"]);
    // Asking again changes nothing.
    s.operator(&rs1, Override::Drain).unwrap();
    assert!(s.ops().is_empty());
    s.on(Event::Reload(Box::new(config(
        &TWO.replace("weight 2", "weight 4"),
    ))));
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 4"]);
    // A drained server that fails is out; back up, it is drained again.
    s.probe(0, false);
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.1:80"]);
    s.probe(0, true);
    assert_eq!(s.ops(), ["-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0"]);
    s.operator(
        &target("10.0.1.1", Some(80), Some("tcp 10.0.0.1:80")),
        Override::Weight(7),
    )
    .unwrap();
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 7"]);
    s.operator(&rs1, Override::Disable).unwrap();
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.1:80"]);
    s.operator(&rs1, Override::Clear).unwrap();
    assert_eq!(s.ops(), ["-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3"]);
    // Not persisted unless asked.
    assert!(!s.said().iter().any(|e| e.starts_with("overrides")));
}

#[test]
fn operator_requests_that_name_nothing_or_several_virtual_servers_are_refused() {
    let text = format!("{TWO}{}", TWO.replace("10.0.0.1 80", "10.0.0.2 80"));
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.ops();
    let e = s.operator(&target("10.0.1.9", None, None), Override::Drain);
    assert_eq!(
        e.unwrap_err().to_string(),
        "no real server 10.0.1.9 in the configuration (`ipvsdir --dump` lists the configured ones)"
    );
    let e = s.operator(&target("10.0.1.1", Some(80), None), Override::Drain);
    assert!(
        matches!(e, Err(OperatorError::Ambiguous { count: 2, .. })),
        "{e:?}"
    );
    assert!(s.ops().is_empty());
    // Named by its virtual server, in any of the forms the operator sees.
    for vs in ["10.0.0.2:80", "TCP 10.0.0.2:80", "[10.0.0.2]:tcp:80"] {
        s.operator(&target("10.0.1.1", None, Some(vs)), Override::Disable)
            .unwrap();
        s.operator(&target("10.0.1.1", None, Some(vs)), Override::Clear)
            .unwrap();
    }
    assert_eq!(
        s.ops(),
        [
            "-d -t 10.0.0.2:80 -r 10.0.1.1:80",
            "-a -t 10.0.0.2:80 -r 10.0.1.1:80 -m -w 3"
        ]
        .repeat(3)
    );
    s.on(Event::Stop);
    let e = s.operator(
        &target("10.0.1.1", None, Some("10.0.0.2:80")),
        Override::Drain,
    );
    assert_eq!(e, Err(OperatorError::Stopping));
}

#[test]
fn slow_start_ramps_a_returning_server_from_1_to_its_weight() {
    let text = TWO
        .replace("weight 3", "weight 10\n  slow_start 10")
        .replace("lb_kind NAT", "lb_kind NAT\n slow_start 4");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.ops();
    let w = |s: &Sim, rs: &str| {
        s.weights()
            .into_iter()
            .find(|(k, _)| k.ends_with(rs))
            .map(|(_, w)| w)
    };
    // At start it has its full weight: nothing comes back.
    assert_eq!(w(&s, "10.0.1.1:80"), Some(10));
    s.probe(0, false);
    assert_eq!(w(&s, "10.0.1.1:80"), None);
    s.at(20.0);
    s.probe(0, true);
    assert_eq!(w(&s, "10.0.1.1:80"), Some(1));
    s.at(25.0);
    assert_eq!(w(&s, "10.0.1.1:80"), Some(5));
    s.at(30.0);
    assert_eq!(w(&s, "10.0.1.1:80"), Some(10));
    assert_eq!(
        s.core
            .poll_timeout()
            .filter(|t| *t <= s.t0 + Duration::from_secs(31)),
        None,
        "ramp over: no more steps"
    );
    // The other server inherits the virtual server's 4 s; going down ends its ramp.
    s.probe(1, false);
    s.at(40.0);
    s.probe(1, true);
    assert_eq!(w(&s, "10.0.1.2:80"), Some(1));
    s.at(42.0);
    assert_eq!(
        w(&s, "10.0.1.2:80"),
        Some(1),
        "weight 2 at half the ramp: 1"
    );
    s.at(44.0);
    assert_eq!(w(&s, "10.0.1.2:80"), Some(2));
}

/// TWO with a report every second, started, its first report written (1 s).
fn reporting() -> Sim {
    let mut s = Sim::new(TWO, |o| o.report_every = Some(Duration::from_secs(1)));
    s.on(Event::Start);
    s.at(1.0);
    s.said();
    s.ops();
    s
}

#[test]
fn a_real_server_leaving_the_table_is_in_the_report_at_once() {
    let mut s = reporting();
    // A verdict that changes nothing in the table waits for the tick.
    s.at(1.2);
    s.probe(1, true);
    assert_eq!(s.core.poll_timeout(), Some(s.t0 + Duration::from_secs(2)));
    // One that takes a real server out is reported with the table change.
    s.at(1.3);
    s.probe(0, false);
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.1:80"]);
    assert_eq!(s.core.poll_timeout(), Some(s.now));
    s.at(1.3);
    let said = s.said();
    assert!(said.contains(&"report".to_string()), "{said:?}");
    // Flapping: the next early report waits a fifth of the interval.
    s.at(1.35);
    s.probe(0, true);
    assert_eq!(
        s.core.poll_timeout(),
        Some(s.t0 + Duration::from_millis(1500))
    );
}

#[test]
fn an_override_is_in_the_report_at_once() {
    let mut s = reporting();
    s.at(1.3);
    s.operator(&target("10.0.1.1", None, None), Override::Drain)
        .unwrap();
    assert_eq!(
        s.core.poll_timeout(),
        Some(s.now),
        "the report waits for a tick"
    );
    s.at(1.3);
    assert_eq!(s.said(), ["report!"]);
}

#[test]
fn persisted_overrides_are_handed_out_and_restored_by_the_next_run() {
    let mut s = Sim::new(TWO, |o| o.persist_overrides = true);
    s.on(Event::Start);
    s.ops();
    s.said();
    s.operator(&target("10.0.1.2", None, None), Override::Weight(9))
        .unwrap();
    let saved: Vec<Saved> = s
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveOverrides(v) => Some(v.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert_eq!(
        serde_json::to_string(&saved).unwrap(),
        r#"[{"target":{"addr":"10.0.1.2","port":80,"vs":"[10.0.0.1]:tcp:80"},"override":{"weight":9}}]"#
    );
    // The next run starts with it.
    let mut next = Sim::new(TWO, |o| o.persist_overrides = true);
    next.core.restore(next.now, &saved);
    next.on(Event::Start);
    assert!(
        next.weights()
            .contains(&("TCP 10.0.0.1:80 10.0.1.2:80".to_string(), 9)),
        "{:?}",
        next.weights()
    );
    // A reload without that server drops the override, and says so.
    next.said();
    next.on(Event::Reload(Box::new(config(
        &TWO.replace("10.0.1.2", "10.0.1.3"),
    ))));
    assert!(next.said().contains(&"overrides 0".to_string()));
}

#[test]
fn a_silent_kernel_is_retried_with_a_fresh_read() {
    let mut s = Sim::new(TWO, |_| {});
    s.silent = 1;
    s.on(Event::Start);
    assert_eq!(s.ops(), ["read"]);
    // VRRP is not held back by a silent kernel.
    assert!(s.said().contains(&"ready".to_string()));
    assert_eq!(s.core.poll_timeout(), Some(s.t0 + RETRY_AFTER));
    s.at(1.0);
    let ops = s.ops();
    assert_eq!(ops[0], "read");
    assert_eq!(ops.len(), 4, "{ops:?}");
    // A failed change is not lost: it is retried after a re-read.
    s.silent = 1;
    s.probe(1, false);
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.2:80"]);
    assert_eq!(s.weights().len(), 2);
    s.at(2.0);
    assert_eq!(s.ops(), ["read", "-d -t 10.0.0.1:80 -r 10.0.1.2:80"]);
    assert_eq!(s.weights().len(), 1);
}

#[test]
fn drift_is_repaired_on_the_next_tick() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    // Someone deletes a real server by hand.
    let key = *s.kernel.services.keys().next().unwrap();
    s.kernel
        .services
        .get_mut(&key)
        .unwrap()
        .dests
        .retain(|_, d| d.weight != 2);
    s.at(9.0);
    assert!(s.ops().is_empty());
    s.at(10.0);
    assert_eq!(
        s.ops(),
        ["read", "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2"]
    );
}

#[test]
fn slow_reads_space_the_drift_reads_out() {
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    s.ops();
    // The drift read due at 10 s takes 2 s to be answered.
    s.now = s.t0 + Duration::from_secs(10);
    s.core.handle_timeout(s.now);
    assert!(matches!(
        s.core.poll_effect(),
        Some(Effect::Kernel(KernelRequest::Read))
    ));
    s.now = s.t0 + Duration::from_secs(12);
    let table = s.kernel.clone();
    s.core
        .handle(s.now, Event::Kernel(KernelReply::Table(Ok(table))));
    s.run();
    // The next one comes 50 reads' length later, not drift_interval.
    s.at(111.0);
    assert!(s.ops().is_empty());
    s.at(112.0);
    assert_eq!(s.ops(), ["read"]);
    // Quick reads bring the interval back to drift_interval.
    s.at(121.0);
    assert!(s.ops().is_empty());
    s.at(122.0);
    assert_eq!(s.ops(), ["read"]);
}

#[test]
fn no_ipvs_judges_and_notifies_without_kernel_requests() {
    let mut s = Sim::new(TWO, |o| o.write_table = false);
    s.on(Event::Start);
    s.probe(0, false);
    s.on(Event::Stop);
    assert!(s.ops().is_empty());
    assert_eq!(
        s.said(),
        [
            "probes 2",
            "ready",
            "script /bin/rs1-down",
            "stop probes",
            "stopped"
        ]
    );
}

#[test]
fn the_report_is_written_on_ticks_after_the_table_until_the_stop() {
    let mut sim = Sim::new(TWO, |o| o.report_every = Some(Duration::from_secs(1)));
    sim.on(Event::Start);
    // The table first; a new probe plan's report at the next tick, in any case.
    assert_eq!(sim.said(), ["probes 2", "owned 1", "ready"]);
    sim.at(1.0);
    assert_eq!(sim.said(), ["report!"]);
    // Then once a second, when the probes' board has news.
    sim.at(1.5);
    assert!(sim.said().is_empty());
    sim.at(2.0);
    assert_eq!(sim.said(), ["report"]);
    // A reload's plan shows at the tick after it, forced again.
    let edited = TWO.replace("weight 3", "weight 4");
    sim.on(Event::Reload(Box::new(config(&edited))));
    assert_eq!(sim.said(), ["probes 2", "ready"]);
    sim.at(3.0);
    assert_eq!(sim.said(), ["report!"]);
    // After the stop nothing is reported any more.
    sim.on(Event::Stop);
    sim.said();
    sim.at(10.0);
    assert!(!sim.said().iter().any(|s| s.starts_with("report")));
}

#[test]
fn notify_fifo_lines_follow_their_scripts_rs_before_vs_and_omega_at_stop() {
    let text = "global_defs {\n lvs_notify_fifo /run/lvs.fifo\n}
virtual_server 10.0.0.1 80 {
 omega
 quorum_up \"/bin/qup\"
 real_server 10.0.1.1 80 {
  notify_down \"/bin/down\"
  TCP_CHECK {
   connect_timeout 1
  }
 }
 real_server 10.0.1.2 80 {
  TCP_CHECK {
   connect_timeout 2
  }
 }
}
";
    let mut s = Sim::new(text, |_| {});
    s.on(Event::Start);
    s.ops();
    let said = s.said();
    assert!(
        said.contains(&"fifo VS [10.0.0.1]:tcp:80 UP".to_string()),
        "{said:?}"
    );
    s.probe(0, false);
    assert_eq!(
        s.said(),
        [
            "script /bin/down",
            "fifo RS [10.0.1.1]:tcp:80 [10.0.0.1]:tcp:80 DOWN"
        ]
    );
    s.probe(1, false);
    assert_eq!(
        s.said(),
        [
            "fifo RS [10.0.1.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN",
            "fifo VS [10.0.0.1]:tcp:80 DOWN"
        ]
    );
    s.probe(1, true);
    assert_eq!(
        s.said(),
        [
            "fifo RS [10.0.1.2]:tcp:80 [10.0.0.1]:tcp:80 UP",
            "script /bin/qup",
            "fifo VS [10.0.0.1]:tcp:80 UP"
        ]
    );
    s.ops();
    // omega: the servers still up say DOWN at stop.
    s.on(Event::Stop);
    let said = s.said();
    assert!(
        said.contains(&"fifo RS [10.0.1.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN".to_string())
            && said.contains(&"fifo VS [10.0.0.1]:tcp:80 DOWN".to_string()),
        "{said:?}"
    );
}

/// smtp_alert: each checker that goes up or down mails keepalived's words,
/// the subject giving the real server's state after the change; with
/// `no_checker_emails`, only changes that move the real server.
#[test]
fn checker_changes_mail_keepalived_subjects_and_bodies() {
    let conf = |extra: &str| {
        format!(
            "global_defs {{
 router_id lb1
 notification_email {{
  ops@example.com
 }}
 smtp_server 127.0.0.1 2525
{extra}}}
virtual_server 10.0.0.1 80 {{
 real_server 10.0.1.1 80 {{
  TCP_CHECK {{
   connect_timeout 1
  }}
  PING_CHECK {{
   connect_timeout 2
  }}
 }}
 real_server 10.0.1.2 80 {{
  smtp_alert off
  TCP_CHECK {{
   connect_timeout 3
  }}
 }}
}}
"
        )
    };
    let mails = |s: &mut Sim| -> Vec<String> {
        s.said()
            .into_iter()
            .filter(|l| l.starts_with("mail "))
            .collect()
    };
    let mut s = Sim::new(&conf(""), |_| {});
    s.on(Event::Start);
    s.ops();
    assert!(mails(&mut s).is_empty(), "no mail at start");
    s.probe(0, false);
    assert_eq!(
        mails(&mut s),
        [
            "mail Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN | => TCP CHECK failed on service <="
        ]
    );
    // The real server was down already: keepalived still mails the checker.
    s.probe(1, false);
    assert_eq!(
        mails(&mut s),
        [
            "mail Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN | => ICMP CHECK failed on service <="
        ]
    );
    s.probe(0, true);
    s.probe(1, true);
    assert_eq!(
        mails(&mut s),
        [
            "mail Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN | => TCP CHECK succeed on service <=",
            "mail Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - UP | => ICMP CHECK succeed on service <="
        ]
    );
    // smtp_alert off on this real server.
    s.probe(2, false);
    assert!(mails(&mut s).is_empty());

    let mut s = Sim::new(&conf(" no_checker_emails\n"), |_| {});
    s.on(Event::Start);
    s.ops();
    s.said();
    s.probe(0, false);
    s.probe(1, false);
    assert_eq!(
        mails(&mut s),
        [
            "mail Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN | => TCP CHECK failed on service <="
        ],
        "the second checker did not move the real server"
    );
    // No recipients: no mail at all.
    let mut s = Sim::new(
        &conf("").replace("notification_email {\n  ops@example.com\n }\n", ""),
        |_| {},
    );
    s.on(Event::Start);
    s.ops();
    s.said();
    s.probe(0, false);
    assert!(mails(&mut s).is_empty());
}

/// A virtual server with smtp_alert mails its quorum: at start, when lost,
/// when gained again (keepalived's `Virtualserver` mails).
#[test]
fn quorum_changes_mail_when_the_virtual_server_asks() {
    let text = "global_defs {
 notification_email {
  ops@example.com
 }
 smtp_server 127.0.0.1
}
virtual_server 10.0.0.1 80 {
 smtp_alert
 quorum 2
 real_server 10.0.1.1 80 {
  weight 2
  smtp_alert off
  TCP_CHECK {
   connect_timeout 1
  }
 }
}
";
    let mut s = Sim::new(text, |_| {});
    s.on(Event::Start);
    s.ops();
    let mails = |s: &mut Sim| -> Vec<String> {
        s.said()
            .into_iter()
            .filter(|l| l.starts_with("mail "))
            .collect()
    };
    assert_eq!(
        mails(&mut s),
        ["mail Virtualserver [10.0.0.1]:tcp:80 - UP | => Starting with quorum up 2+0=2 <= 2 <="]
    );
    s.probe(0, false);
    assert_eq!(
        mails(&mut s),
        ["mail Virtualserver [10.0.0.1]:tcp:80 - DOWN | => Lost quorum 2+0=2 <= 0 <="]
    );
    s.probe(0, true);
    assert_eq!(
        mails(&mut s),
        ["mail Virtualserver [10.0.0.1]:tcp:80 - UP | => Gained quorum 2+0=2 <= 2 <="]
    );
}

/// A reload that removes real servers and a virtual server notifies what
/// was up as keepalived 2.2.7 does: notify_down, the FIFO's DOWN line and
/// the `=> Removing <=` mail per real server; quorum_down, the VS line and
/// `Lost quorum` for the virtual server. With omega, the stop mails
/// `=> Shutting down <=`.
#[test]
fn a_reload_notifies_removed_servers_and_omega_mails_the_shutdown() {
    let head = "global_defs {
 notification_email {
  ops@example.com
 }
 smtp_server 127.0.0.1
 lvs_notify_fifo /run/lvs.fifo
}
virtual_server 10.0.0.1 80 {
 omega
 smtp_alert
 real_server 10.0.1.1 80 {
  TCP_CHECK {
   connect_timeout 1
  }
 }
";
    let gone_rs = " real_server 10.0.1.2 80 {
  notify_down \"/bin/down2\"
  TCP_CHECK {
   connect_timeout 2
  }
 }
";
    let gone_vs = "virtual_server 10.0.0.2 80 {
 smtp_alert
 quorum_down \"/bin/qdown\"
 real_server 10.0.2.1 80 {
  smtp_alert off
  notify_down \"/bin/down3\"
  TCP_CHECK {
   connect_timeout 3
  }
 }
}
";
    let text = format!("{head}{gone_rs}}}\n{gone_vs}");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.ops();
    s.said();
    s.at(5.0);
    s.on(Event::Reload(Box::new(config(&format!("{head}}}\n")))));
    assert_eq!(
        s.said(),
        [
            "script /bin/down2",
            "fifo RS [10.0.1.2]:tcp:80 [10.0.0.1]:tcp:80 DOWN",
            "mail Realserver [10.0.1.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN | => Removing <=",
            "script /bin/down3",
            "fifo RS [10.0.2.1]:tcp:80 [10.0.0.2]:tcp:80 DOWN",
            "script /bin/qdown",
            "fifo VS [10.0.0.2]:tcp:80 DOWN",
            "mail Virtualserver [10.0.0.2]:tcp:80 - DOWN | => Lost quorum 1+0=1 <= 0 <=",
            "probes 1",
            "ready",
        ]
    );
    s.ops();
    // Added back: a fresh start for its quorum (UP again, the start's mail).
    s.at(10.0);
    s.on(Event::Reload(Box::new(config(&format!(
        "{head}}}\n{gone_vs}"
    )))));
    let said = s.said();
    assert!(
        said.contains(&"fifo VS [10.0.0.2]:tcp:80 UP".to_string())
            && said.contains(&"mail Virtualserver [10.0.0.2]:tcp:80 - UP | => Starting with quorum up 1+0=1 <= 1 <=".to_string()),
        "{said:?}"
    );
    s.ops();
    s.on(Event::Stop);
    let mails: Vec<String> = s
        .said()
        .into_iter()
        .filter(|l| l.starts_with("mail "))
        .collect();
    assert_eq!(
        mails,
        [
            "mail Realserver [10.0.1.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN | => Shutting down <=",
            "mail Virtualserver [10.0.0.1]:tcp:80 - DOWN | => Shutting down <=",
        ]
    );
}

/// Two VIPs announced: 10.0.0.1 by two virtual servers (80, 443), 10.0.0.2
/// by one with quorum 2 and hysteresis 1 (lost below 1, regained at 3).
const ANNOUNCED: &str = "global_defs {
 announce_table 100
 announce_withdraw_grace 3
}
virtual_server 10.0.0.1 80 {
 announce
 real_server 10.0.1.1 80 {
  TCP_CHECK {
   connect_timeout 1
  }
 }
}
virtual_server 10.0.0.1 443 {
 announce
 real_server 10.0.1.1 443 {
  TCP_CHECK {
   connect_timeout 2
  }
 }
}
virtual_server 10.0.0.2 80 {
 announce
 quorum 2
 hysteresis 1
 real_server 10.0.2.1 80 {
  TCP_CHECK {
   connect_timeout 3
  }
 }
 real_server 10.0.2.2 80 {
  TCP_CHECK {
   connect_timeout 4
  }
 }
 real_server 10.0.2.3 80 {
  TCP_CHECK {
   connect_timeout 5
  }
 }
}
virtual_server 10.0.0.3 80 {
 real_server 10.0.3.1 80 {
  TCP_CHECK {
   connect_timeout 6
  }
 }
}
";

fn why(s: &Sim, vip: &str) -> (bool, String) {
    let a = s.core.announcements();
    let v = a
        .iter()
        .find(|a| a.vip.to_string() == vip)
        .unwrap_or_else(|| panic!("{vip} in {a:?}"));
    (v.announced, v.why.clone())
}

#[test]
fn announcements_follow_the_table_then_quorum_with_hysteresis() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.ops();
    // Stale routes go before anything else; once the table is written, a
    // sync (nothing yet: no real server has been checked).
    assert_eq!(
        s.said(),
        [
            "sync table 100 []",
            "probes 6",
            "owned 4",
            "ready",
            "sync table 100 []",
            "status 0/2"
        ]
    );
    assert_eq!(
        why(&s, "10.0.0.1"),
        (
            false,
            "VS [10.0.0.1]:tcp:80: real server [10.0.1.1]:tcp:80 not checked yet".into()
        )
    );
    // A VIP is announced once every real server of its virtual servers has
    // been checked (quorum alone is not enough: another director maps a
    // moved flow by all of them); the VIP without `announce` is not.
    s.probe(0, true);
    s.probe(2, true);
    s.probe(3, true);
    assert!(
        !s.said().iter().any(|l| l.starts_with("announce")),
        "10.0.0.2:80's .3 and 10.0.0.1:443 unchecked"
    );
    assert_eq!(
        why(&s, "10.0.0.2"),
        (
            false,
            "VS [10.0.0.2]:tcp:80: real server [10.0.2.3]:tcp:80 not checked yet".into()
        )
    );
    s.checked();
    assert_eq!(
        s.said(),
        ["announce 10.0.0.1", "announce 10.0.0.2", "status 2/2"]
    );
    assert_eq!(
        why(&s, "10.0.0.1"),
        (
            true,
            "quorum held by VS [10.0.0.1]:tcp:80, VS [10.0.0.1]:tcp:443".into()
        )
    );
    // One service of the VIP down: the whole VIP leaves this director.
    s.probe(1, false);
    assert_eq!(s.said(), ["withdraw 10.0.0.1", "status 1/2"]);
    assert_eq!(
        why(&s, "10.0.0.1"),
        (false, "VS [10.0.0.1]:tcp:443 below quorum 1".into())
    );
    s.probe(1, true);
    assert_eq!(s.said(), ["announce 10.0.0.1", "status 2/2"]);
    // Quorum 2, hysteresis 1: two of three down keeps it (1 >= 2 - 1).
    s.probe(2, false);
    s.probe(3, false);
    assert!(s.said().is_empty());
    s.probe(4, false);
    assert_eq!(s.said(), ["withdraw 10.0.0.2", "status 1/2"]);
    // Back at 2 of 3: below quorum + hysteresis, still withdrawn.
    s.probe(2, true);
    s.probe(3, true);
    assert!(s.said().is_empty());
    s.probe(4, true);
    assert_eq!(s.said(), ["announce 10.0.0.2", "status 2/2"]);
    // Real server changes that keep quorum move no route.
    s.probe(3, false);
    assert!(s.said().is_empty());
    assert!(why(&s, "10.0.0.2").0);
}

#[test]
fn the_wait_for_first_checks_is_bounded_and_only_at_the_start() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.ops();
    s.said();
    // Every checker but 10.0.0.1:443's gives a result (that one's probe
    // cannot start on this host, say).
    for id in [0, 2, 3, 4, 5] {
        s.probe(id, true);
    }
    assert!(why(&s, "10.0.0.2").0, "all of its real servers checked");
    assert_eq!(
        why(&s, "10.0.0.1"),
        (
            false,
            "VS [10.0.0.1]:tcp:443: real server [10.0.1.1]:tcp:443 not checked yet".into()
        )
    );
    // The wait ends once the slowest first probe could have given a result
    // (warmup and delay_loop 60 s each, its timeout, a 2 s slack): then
    // health alone decides.
    s.at(120.0);
    assert!(!why(&s, "10.0.0.1").0);
    s.at(140.0);
    assert!(why(&s, "10.0.0.1").0, "{:?}", why(&s, "10.0.0.1"));
    // A reload that adds a real server (no result yet) to an announced
    // virtual server withdraws nothing.
    s.said();
    let more = ANNOUNCED.replacen(
        " real_server 10.0.1.1 80 {",
        " real_server 10.0.1.9 80 {\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n real_server 10.0.1.1 80 {",
        1,
    );
    s.on(Event::Reload(Box::new(config(&more))));
    s.ops();
    assert!(
        !s.said().iter().any(|l| l.starts_with("withdraw")),
        "the reload withdrew a VIP"
    );
    assert!(why(&s, "10.0.0.1").0);
}

#[test]
fn alpha_announces_only_after_the_checks_pass() {
    let text = ANNOUNCED.replace(" announce\n quorum 2", " announce\n alpha\n quorum 2");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    let said = s.said();
    assert!(said.contains(&"announce 10.0.0.1".to_string()), "{said:?}");
    assert_eq!(why(&s, "10.0.0.2").1, "VS [10.0.0.2]:tcp:80 below quorum 2");
    s.probe(2, true);
    s.probe(3, true);
    assert!(s.said().is_empty(), "2 < quorum 2 + hysteresis 1");
    s.probe(4, true);
    assert_eq!(s.said(), ["announce 10.0.0.2", "status 2/2"]);
}

#[test]
fn the_stop_withdraws_first_and_releases_the_table_after_the_grace() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    s.at(1.0);
    s.on(Event::Stop);
    assert!(s.ops().is_empty(), "the table stays during the grace");
    assert_eq!(
        s.said(),
        ["withdraw 10.0.0.1", "withdraw 10.0.0.2", "status 0/2"]
    );
    assert_eq!(why(&s, "10.0.0.1"), (false, "stopping".into()));
    // Health changes during the grace announce nothing again.
    s.probe(1, false);
    s.probe(1, true);
    assert!(!s.said().iter().any(|e| e.starts_with("announce")));
    s.ops();
    s.at(3.9);
    assert!(s.ops().is_empty());
    s.at(4.0);
    assert_eq!(
        s.ops(),
        [
            "-D -t 10.0.0.1:80",
            "-D -t 10.0.0.1:443",
            "-D -t 10.0.0.2:80",
            "-D -t 10.0.0.3:80"
        ]
    );
    assert_eq!(s.said(), ["stop probes", "owned 0", "stopped"]);
}

#[test]
fn with_vrrp_in_process_the_release_waits_for_both_handoff_and_grace() {
    let mut s = Sim::new(ANNOUNCED, |o| o.vrrp_in_process = true);
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    s.on(Event::Stop);
    assert_eq!(s.said().len(), 3, "withdrawals at once");
    // Grace over first: VRRP still hands over.
    s.at(3.5);
    assert!(s.ops().is_empty());
    s.on(Event::VrrpStopped);
    assert_eq!(s.ops().len(), 4);
    // VRRP first: the grace still holds the table.
    let mut s = Sim::new(ANNOUNCED, |o| o.vrrp_in_process = true);
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.on(Event::Stop);
    s.at(0.5);
    s.on(Event::VrrpStopped);
    assert!(s.ops().is_empty());
    s.at(3.0);
    assert_eq!(s.ops().len(), 4);
    assert!(s.core.is_stopped());
}

#[test]
fn nothing_announced_means_no_grace_at_stop() {
    let text = ANNOUNCED.replace(" announce\n", " announce\n alpha\n");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    assert!(s.said().contains(&"sync table 100 []".to_string()));
    s.on(Event::Stop);
    assert_eq!(s.ops().len(), 4, "released at once");
}

#[test]
fn announce_track_instance_announces_only_while_master() {
    let text = ANNOUNCED
        .replace(
            "global_defs {",
            "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n  10.0.0.1\n }\n}\nglobal_defs {",
        )
        .replacen(" announce\n", " announce\n announce_track_instance VI_1\n", 1);
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    let said = s.said();
    assert!(said.contains(&"announce 10.0.0.2".to_string()), "{said:?}");
    assert!(!said.contains(&"announce 10.0.0.1".to_string()), "{said:?}");
    assert_eq!(
        why(&s, "10.0.0.1").1,
        "VS [10.0.0.1]:tcp:80: vrrp_instance VI_1 is not MASTER"
    );
    s.on(Event::VrrpState {
        instance: "VI_1".into(),
        master: true,
    });
    assert_eq!(s.said(), ["announce 10.0.0.1", "status 2/2"]);
    s.on(Event::VrrpState {
        instance: "VI_1".into(),
        master: false,
    });
    assert_eq!(s.said(), ["withdraw 10.0.0.1", "status 1/2"]);
}

#[test]
fn a_reload_that_moves_the_table_empties_the_old_one() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    let moved = ANNOUNCED.replace("announce_table 100", "announce_table 200");
    s.on(Event::Reload(Box::new(config(&moved))));
    let said = s.said();
    assert_eq!(
        said.iter()
            .filter(|e| e.starts_with("sync"))
            .collect::<Vec<_>>(),
        ["sync table 100 []", "sync table 200 [10.0.0.1 10.0.0.2]"]
    );
    // A reload that drops `announce` from 10.0.0.2 withdraws it.
    let dropped = moved.replacen(" announce\n quorum 2", " quorum 2", 1);
    s.on(Event::Reload(Box::new(config(&dropped))));
    let said = s.said();
    assert!(said.contains(&"withdraw 10.0.0.2".to_string()), "{said:?}");
    assert_eq!(s.core.announcements().len(), 1);
}

#[test]
fn one_shot_commands_announce_nothing() {
    let mut s = Sim::new(ANNOUNCED, |o| o.announce = false);
    s.on(Event::Start);
    s.on(Event::Stop);
    let said = s.said();
    assert!(
        !said
            .iter()
            .any(|e| e.starts_with("sync") || e.starts_with("status")),
        "{said:?}"
    );
    assert!(s.core.is_stopped());
}

#[test]
fn announced_routes_are_checked_on_the_drift_ticks_until_the_stop() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    s.probe(1, false);
    s.said();
    // drift_interval 10 s: the table is read and repaired then.
    s.at(9.9);
    assert!(!s.said().iter().any(|e| e.starts_with("check")));
    s.at(10.0);
    assert!(
        s.said().contains(&"check table 100 [10.0.0.2]".to_string()),
        "only what is announced now"
    );
    s.at(20.0);
    assert!(s.said().contains(&"check table 100 [10.0.0.2]".to_string()));
    s.on(Event::Stop);
    s.said();
    s.at(30.0);
    assert!(!s.said().iter().any(|e| e.starts_with("check")));
}

#[test]
fn an_operator_disable_that_loses_quorum_withdraws_at_once() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    let t = target("10.0.1.1", Some(443), None);
    s.core
        .operator(s.now, &t, Override::Disable)
        .expect("one real server");
    s.run();
    assert_eq!(s.said(), ["withdraw 10.0.0.1", "status 1/2"]);
    s.core
        .operator(s.now, &t, Override::Clear)
        .expect("one real server");
    s.run();
    assert_eq!(s.said(), ["announce 10.0.0.1", "status 2/2"]);
}

/// Under a DR group entry two real servers that differ only by port are one
/// kernel destination (config warns): the live one's weight is installed,
/// never a dead one's 0 (inhibit_on_failure), whatever their order.
#[test]
fn a_dr_group_destination_shared_by_two_real_servers_takes_the_live_weight() {
    let text = "virtual_server_group G {
 10.0.0.10 80
}
virtual_server group G {
 lb_kind DR
 real_server 10.0.0.11 80 {
  weight 3
  TCP_CHECK {
   connect_timeout 1
  }
 }
 real_server 10.0.0.11 8080 {
  weight 5
  inhibit_on_failure
  TCP_CHECK {
   connect_timeout 2
  }
 }
}
";
    let mut s = Sim::new(text, |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    assert_eq!(s.weights().len(), 1, "{:?}", s.weights());
    assert_eq!(s.weights()[0].1, 5);
    s.probe(1, false);
    s.ops();
    assert_eq!(s.weights().len(), 1);
    assert_eq!(s.weights()[0].1, 3, "the live server's weight");
    s.probe(0, false);
    s.ops();
    assert_eq!(s.weights()[0].1, 0, "both down: inhibited at 0");
}

/// ANNOUNCED with a drain metric (and the default 10 s drain time).
fn drain_conf() -> String {
    ANNOUNCED.replace(
        " announce_withdraw_grace 3\n",
        " announce_withdraw_grace 3\n announce_drain_metric 4000\n",
    )
}

/// The route changes since the last call, with their metric (`-`: none),
/// and the drain's stage; other effects are dropped.
fn routes(s: &mut Sim) -> Vec<String> {
    s.effects
        .drain(..)
        .filter_map(|e| match e {
            Effect::Announce(AnnounceRequest::Announce { target, vip }) => Some(format!(
                "announce {vip} m{}",
                target.metric.map_or("-".into(), |m| m.to_string())
            )),
            Effect::Announce(AnnounceRequest::Withdraw { target, vip }) => Some(format!(
                "withdraw {vip} m{}",
                target.metric.map_or("-".into(), |m| m.to_string())
            )),
            _ => None,
        })
        .collect()
}

fn drain_stage(s: &Sim) -> Option<(String, String)> {
    s.core.drain_status().map(|d| (d.stage, d.why))
}

#[test]
fn drain_director_announces_worse_first_then_withdraws_after_the_bounded_time() {
    let mut s = Sim::new(&drain_conf(), |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    s.at(1.0);
    let answer = s.core.drain_director(s.now, true).expect("drain");
    s.run();
    assert!(
        answer.starts_with("draining: announced with metric 4000"),
        "{answer}"
    );
    // Make-before-break per VIP: the route with the drain metric first.
    assert_eq!(
        routes(&mut s),
        [
            "announce 10.0.0.1 m4000",
            "withdraw 10.0.0.1 m-",
            "announce 10.0.0.2 m4000",
            "withdraw 10.0.0.2 m-"
        ]
    );
    let a = s.core.announcements();
    assert!(a.iter().all(|v| v.announced && v.drained), "{a:?}");
    assert!(
        why(&s, "10.0.0.1")
            .1
            .starts_with("draining (operator): quorum held")
    );
    // New connections keep arriving: only the bounded time ends it.
    for t in 2..=10 {
        s.conns += 5;
        s.at(t as f64);
        assert!(routes(&mut s).is_empty(), "at {t} s");
    }
    assert!(
        s.ops().iter().any(|o| o == "counters"),
        "the counters were read"
    );
    s.conns += 5;
    s.at(11.0);
    assert_eq!(
        routes(&mut s),
        ["withdraw 10.0.0.1 m4000", "withdraw 10.0.0.2 m4000"]
    );
    assert_eq!(
        drain_stage(&s),
        Some(("withdrawn".into(), "announce_drain_time 10 s over".into()))
    );
    assert_eq!(
        why(&s, "10.0.0.1"),
        (
            false,
            "drained (operator): announce_drain_time 10 s over".into()
        )
    );
    // The IPVS table is the operator's drain's business no more than a
    // health flap's: nothing released, nothing read once withdrawn.
    s.at(30.0);
    assert!(s.ops().iter().all(|o| o == "read"), "no IPVS change");
    // Health changes while drained announce nothing.
    s.probe(1, false);
    s.probe(1, true);
    assert!(routes(&mut s).is_empty());
    // Undrain: announced again, with the normal metric.
    let answer = s.core.drain_director(s.now, false).expect("undrain");
    s.run();
    assert!(answer.starts_with("undrained"), "{answer}");
    assert_eq!(
        routes(&mut s),
        ["announce 10.0.0.1 m-", "announce 10.0.0.2 m-"]
    );
    assert_eq!(drain_stage(&s), None);
    assert!(
        s.core
            .announcements()
            .iter()
            .all(|v| v.announced && !v.drained)
    );
}

#[test]
fn a_drain_ends_once_no_new_connection_arrives_for_three_seconds() {
    let mut s = Sim::new(&drain_conf(), |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    s.conns = 100;
    s.at(1.0);
    s.core.drain_director(s.now, true).expect("drain");
    s.run();
    routes(&mut s);
    // The first read (at 2 s: the clock moves a second at a time) is the
    // baseline; from there the counter stands still: routers have moved
    // the traffic.
    s.conns = 120;
    for t in [2.0, 3.0, 4.0, 4.9] {
        s.at(t);
        assert!(routes(&mut s).is_empty(), "at {t} s");
    }
    s.at(5.0);
    assert_eq!(
        routes(&mut s),
        ["withdraw 10.0.0.1 m4000", "withdraw 10.0.0.2 m4000"]
    );
    assert_eq!(
        drain_stage(&s),
        Some((
            "withdrawn".into(),
            "no new connection to the VIPs for 3 s".into()
        ))
    );
    assert_eq!(
        s.ops().iter().filter(|o| *o == "counters").count(),
        4,
        "read every second from 2 s to 5 s"
    );
    // Withdrawn: no more reads.
    s.at(8.0);
    assert!(!s.ops().iter().any(|o| o == "counters"));
}

#[test]
fn the_stop_drains_then_withdraws_then_releases_after_the_grace() {
    let mut s = Sim::new(&drain_conf(), |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.said();
    s.at(1.0);
    s.on(Event::Stop);
    assert_eq!(
        routes(&mut s),
        [
            "announce 10.0.0.1 m4000",
            "withdraw 10.0.0.1 m-",
            "announce 10.0.0.2 m4000",
            "withdraw 10.0.0.2 m-"
        ]
    );
    assert_eq!(drain_stage(&s).map(|d| d.0), Some("draining".into()));
    assert_eq!(s.core.drain_status().map(|d| d.by), Some("stop".into()));
    // Nothing new is announced during the stop's drain.
    s.probe(1, false);
    assert_eq!(routes(&mut s), ["withdraw 10.0.0.1 m4000"]);
    s.probe(1, true);
    assert!(routes(&mut s).is_empty());
    // No new connection from 1 s (the first read, at the stop): withdrawn
    // at 4 s, released 3 s later.
    s.at(2.0);
    s.at(3.0);
    s.at(3.9);
    assert!(routes(&mut s).is_empty());
    s.at(4.0);
    assert_eq!(routes(&mut s), ["withdraw 10.0.0.2 m4000"]);
    assert!(!s.ops().iter().any(|o| o.starts_with("-D")));
    s.at(6.9);
    assert!(!s.ops().iter().any(|o| o.starts_with("-D")));
    s.at(7.0);
    let ops = s.ops();
    assert_eq!(
        ops.iter().filter(|o| o.starts_with("-D")).count(),
        4,
        "{ops:?}"
    );
    assert!(s.core.is_stopped());
}

#[test]
fn without_ipvs_the_stop_drains_for_the_bounded_time() {
    let text = drain_conf().replace(
        " announce_drain_metric 4000\n",
        " announce_drain_metric 4000\n announce_drain_time 5\n",
    );
    let mut s = Sim::new(&text, |o| o.write_table = false);
    s.on(Event::Start);
    s.checked();
    s.said();
    s.at(1.0);
    s.on(Event::Stop);
    assert_eq!(routes(&mut s).len(), 4);
    s.at(5.9);
    assert!(routes(&mut s).is_empty());
    assert!(!s.core.is_stopped());
    s.at(6.0);
    assert_eq!(routes(&mut s).len(), 2);
    assert!(!s.core.is_stopped(), "the withdrawal's grace");
    s.at(9.0);
    assert!(s.core.is_stopped());
    assert!(s.requests.is_empty(), "no kernel request without IPVS");
}

#[test]
fn undrain_during_a_drain_switches_back_new_route_first() {
    let mut s = Sim::new(&drain_conf(), |_| {});
    s.on(Event::Start);
    s.checked();
    s.said();
    s.core.drain_director(s.now, true).expect("drain");
    s.run();
    routes(&mut s);
    let again = s.core.drain_director(s.now, true).expect("again");
    assert!(again.starts_with("already draining"), "{again}");
    s.core.drain_director(s.now, false).expect("undrain");
    s.run();
    assert_eq!(
        routes(&mut s),
        [
            "announce 10.0.0.1 m-",
            "withdraw 10.0.0.1 m4000",
            "announce 10.0.0.2 m-",
            "withdraw 10.0.0.2 m4000"
        ]
    );
    // The bounded time of the cancelled drain ends nothing.
    s.at(20.0);
    assert!(routes(&mut s).is_empty());
    assert_eq!(
        s.core.drain_director(s.now, false),
        Ok("not drained".into())
    );
}

#[test]
fn drain_without_a_drain_metric_withdraws_at_once_and_is_refused_without_announcements() {
    let mut s = Sim::new(ANNOUNCED, |_| {});
    s.on(Event::Start);
    s.checked();
    s.said();
    let answer = s.core.drain_director(s.now, true).expect("drain");
    s.run();
    assert!(answer.contains("no announce_drain_metric"), "{answer}");
    assert_eq!(
        routes(&mut s),
        ["withdraw 10.0.0.1 m-", "withdraw 10.0.0.2 m-"]
    );
    // The stop then has nothing to withdraw: released at once.
    s.on(Event::Stop);
    assert!(s.core.is_stopped());
    assert_eq!(
        s.core.drain_director(s.now, true),
        Err(DrainError::Stopping)
    );
    let mut s = Sim::new(TWO, |_| {});
    s.on(Event::Start);
    assert_eq!(
        s.core.drain_director(s.now, true),
        Err(DrainError::NoAnnounce)
    );
}

#[test]
fn drain_keywords_are_validated() {
    let l = load_str(
        "t.conf",
        &drain_conf().replace("announce_drain_metric 4000", "announce_drain_metric 0"),
        &LoadOptions::default(),
    );
    assert!(l.config.is_none());
    assert!(
        l.diagnostics
            .to_string()
            .contains("announce_drain_metric 0 is the routes' own metric"),
        "{}",
        l.diagnostics
    );
    let l = load_str(
        "t.conf",
        &drain_conf().replace(
            "announce_drain_metric 4000",
            "announce_drain_metric 4000\n announce_drain_time 4000",
        ),
        &LoadOptions::default(),
    );
    assert!(
        l.diagnostics
            .to_string()
            .contains("announce_drain_time is at most 3600")
    );
    let a = config(&drain_conf()).global.lvs.announce.expect("announce");
    assert_eq!((a.drain_metric, a.drain_time.0.as_secs()), (Some(4000), 10));
}

#[test]
fn lvs_sysctl_comes_before_the_table_and_again_only_when_it_changes() {
    let text = format!("global_defs {{\n lvs_sysctl sloppy_tcp 1 conn_reuse_mode 0\n}}\n{TWO}");
    let mut s = Sim::new(&text, |_| {});
    s.on(Event::Start);
    let ops = s.ops();
    assert_eq!(
        ops[..3],
        ["sysctl sloppy_tcp=1", "sysctl conn_reuse_mode=0", "read"],
        "{ops:?}"
    );
    // A reload that leaves them alone does not write them again.
    s.on(Event::Reload(Box::new(config(
        &text.replace("weight 2", "weight 4"),
    ))));
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 4"]);
    let changed = text.replace(
        "conn_reuse_mode 0",
        "conn_reuse_mode 2 expire_nodest_conn 1",
    );
    s.on(Event::Reload(Box::new(config(&changed))));
    assert_eq!(
        s.ops(),
        [
            "sysctl sloppy_tcp=1",
            "sysctl conn_reuse_mode=2",
            "sysctl expire_nodest_conn=1",
            "-e -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2"
        ]
    );
}

/// An mh service (DR, mh-port and mh-fallback) with `n` real servers, the
/// i-th at 10.0.1.i with weight i.
fn mh(servers: &[u8], fallback: bool) -> String {
    let mut t = format!(
        "virtual_server 10.0.0.1 80 {{\n lb_algo mh\n mh-port\n{} lb_kind DR\n",
        if fallback { " mh-fallback\n" } else { "" }
    );
    for i in servers {
        t += &format!(
            " real_server 10.0.1.{i} 80 {{\n  weight {i}\n  TCP_CHECK {{\n   connect_timeout 1\n  }}\n }}\n"
        );
    }
    t + "}\n"
}

/// What the kernel's mh lookup table is a function of (ip_vs_mh.c): the
/// list of destinations, first first, each with its last non-zero weight
/// (ip_vs_ctl.c keeps it when a weight is set to 0; an add sets it), and
/// which are at weight 0 now. Replays the ops the way the kernel applies
/// them.
fn mh_list(requests: &[KernelRequest]) -> Vec<(String, u32, u32)> {
    let mut list: Vec<(String, u32, u32)> = Vec::new();
    for r in requests {
        let KernelRequest::Execute(ops) = r else {
            continue;
        };
        for op in ops {
            match op {
                Op::AddDest(_, d) => {
                    list.insert(0, (format!("{}", d.addr), d.weight, d.weight));
                }
                Op::EditDest(_, d) => {
                    if let Some(e) = list.iter_mut().find(|e| e.0 == d.addr.to_string()) {
                        e.1 = d.weight;
                        if d.weight != 0 {
                            e.2 = d.weight;
                        }
                    }
                }
                Op::DelDest(_, (a, _)) => list.retain(|e| e.0 != a.to_string()),
                Op::DelService(_) => list.clear(),
                _ => {}
            }
        }
    }
    list
}

#[test]
fn mh_adds_in_file_order_and_a_failed_server_keeps_its_place_under_mh_fallback() {
    let mut s = Sim::new(&mh(&[3, 1, 2], true), |_| {});
    s.on(Event::Start);
    assert_eq!(
        s.ops(),
        [
            "read",
            "-A -t 10.0.0.1:80 -s mh -b mh-fallback,mh-port",
            "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 3",
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1",
            "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2"
        ]
    );
    s.probe(1, false);
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 0"]);
    s.probe(1, true);
    assert_eq!(s.ops(), ["-e -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1"]);
}

#[test]
fn mh_directors_with_different_histories_hold_the_same_list() {
    // A: every server up, then failures, returns, a reload that inserts a
    // server in the middle of the file.
    let mut a = Sim::new(&mh(&[1, 2, 3], true), |_| {});
    a.on(Event::Start);
    a.probe(1, false);
    a.probe(0, false);
    a.probe(1, true);
    a.probe(2, false);
    a.on(Event::Reload(Box::new(config(&mh(&[1, 4, 2, 3], true)))));
    // The reload's new probe for .4 starts; .1 and .3 are still down.
    let a_requests = std::mem::take(&mut a.requests);
    // B: one start with the final file, .1 and .3 down from the first check.
    let mut b = Sim::new(&mh(&[1, 4, 2, 3], true), |_| {});
    b.on(Event::Start);
    b.probe(0, false);
    b.probe(3, false);
    let b_requests = std::mem::take(&mut b.requests);
    let (la, lb) = (mh_list(&a_requests), mh_list(&b_requests));
    assert_eq!(la, lb, "A {la:?}\nB {lb:?}");
    // The file's order reversed, every server counted by its configured
    // weight, the failed ones at weight 0.
    assert_eq!(
        la,
        [
            ("10.0.1.3".into(), 0, 3),
            ("10.0.1.2".into(), 2, 2),
            ("10.0.1.4".into(), 4, 4),
            ("10.0.1.1".into(), 0, 1)
        ]
    );
    assert_eq!(a.weights(), b.weights());
}

#[test]
fn mh_without_fallback_removes_a_failed_server_and_puts_it_back_in_its_place() {
    let mut s = Sim::new(&mh(&[1, 2, 3], false), |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    s.probe(1, false);
    assert_eq!(s.ops(), ["-d -t 10.0.0.1:80 -r 10.0.1.2:80"]);
    // Back: the kernel would put it in front; .3, ahead of it in the
    // kernel's list, is re-added after it.
    s.probe(1, true);
    assert_eq!(
        s.ops(),
        [
            "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 2",
            "-d -t 10.0.0.1:80 -r 10.0.1.3:80",
            "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 3"
        ]
    );
    let key = *s.kernel.services.keys().next().unwrap();
    let order: Vec<String> = s.kernel.services[&key]
        .order
        .iter()
        .map(|((a, _), _)| a.to_string())
        .collect();
    assert_eq!(order, ["10.0.1.3", "10.0.1.2", "10.0.1.1"]);
}

#[test]
fn mh_order_changed_by_hand_is_restored_at_the_drift_read_with_the_fewest_re_adds() {
    let mut s = Sim::new(&mh(&[1, 2, 3, 4], true), |_| {});
    s.on(Event::Start);
    s.checked();
    s.ops();
    // By hand: .2 deleted and re-added, so it is first in the kernel's list.
    let key = *s.kernel.services.keys().next().unwrap();
    let d = s.kernel.services[&key].dests[&("10.0.1.2".parse().unwrap(), 80)];
    apply_to(
        &mut s.kernel,
        &[Op::DelDest(key, (d.addr, d.port)), Op::AddDest(key, d)],
    );
    s.at(10.0);
    // Kernel: 2 4 3 1, wanted 4 3 2 1: 2 and 1 are in order at the end;
    // 3 and 4, in front of them, are re-added.
    assert_eq!(
        s.ops(),
        [
            "read",
            "-d -t 10.0.0.1:80 -r 10.0.1.3:80",
            "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 3",
            "-d -t 10.0.0.1:80 -r 10.0.1.4:80",
            "-a -t 10.0.0.1:80 -r 10.0.1.4:80 -g -w 4"
        ]
    );
    let order: Vec<String> = s.kernel.services[&key]
        .order
        .iter()
        .map(|((a, _), _)| a.to_string())
        .collect();
    assert_eq!(order, ["10.0.1.4", "10.0.1.3", "10.0.1.2", "10.0.1.1"]);
    s.at(20.0);
    assert_eq!(s.ops(), ["read"]);
}
