//! Replay fixtures for the VRRP node core (`vrrp::node`): each file under
//! tests/fixtures/vrrp-replay/ holds a keepalived.conf, a recorded sequence
//! of events (with their times) and the effects the node must produce, in
//! order, with their times. The replayer drives the node as the daemon's
//! driver does: timers fire at the node's own deadlines between events.
//!
//! File format (sections start with `== name ==`; `#` lines are comments):
//! - `config`: the keepalived.conf text (every instance gets source
//!   10.0.0.1 on eth0, index 2);
//! - `reload` (optional): the text a `reload` event loads;
//! - `events`: `SECONDS EVENT`, EVENT one of `start [LINK=up|down ...]`,
//!   `advert INSTANCE SRC PRIORITY [INTERVAL_SECONDS]`, `script NAME ok|fail`,
//!   `link NAME up|down`, `reload`, `stop`, `end` (run the timers until then);
//! - `effects`: `SECONDS EFFECT`, as [`render`] writes them.
//!
//! `VRRP_REPLAY_BLESS=1` rewrites the effects sections from what the node
//! does (review the diff before committing it).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipvsdir::config::model::Config;
use ipvsdir::config::{LoadOptions, load_str};
use ipvsdir::vrrp::node::{Effect, Event, Iface, InstanceSetup, Node, NodeOptions, NotifyTarget};
use ipvsdir::vrrp::state::Micros;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vrrp-replay")
}

fn load(text: &str) -> Config {
    let l = load_str("replay.conf", text, &LoadOptions::default());
    match l.config {
        Some(c) => c,
        None => panic!("config does not load: {:?}", l.diagnostics),
    }
}

fn setup(config: &Config) -> Vec<InstanceSetup> {
    config
        .vrrp_instances
        .iter()
        .map(|_| InstanceSetup {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            iface: Iface {
                name: "eth0".into(),
                index: 2,
                mac: [2, 0, 0, 0, 0, 1],
            },
            socket: 0,
        })
        .collect()
}

/// The sections of a fixture, by name.
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ").and_then(|l| l.strip_suffix(" ==")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

fn section<'a>(s: &'a [(String, String)], name: &str) -> Option<&'a str> {
    s.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_str())
}

fn secs(t: Micros) -> String {
    format!("{}.{:06}", t / 1_000_000, t % 1_000_000)
}

fn parse_secs(s: &str) -> Micros {
    let d: f64 = s.parse().unwrap_or_else(|_| panic!("bad time {s}"));
    (d * 1e6).round() as Micros
}

/// One effect as a line.
fn render(e: &Effect, names: &[String], groups: &[String]) -> String {
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    match e {
        Effect::Advert {
            instance,
            priority,
            packets,
            ..
        } => {
            let dst: Vec<String> = packets.iter().map(|(_, d)| d.to_string()).collect();
            format!(
                "advert {} prio {priority} -> {}",
                name(*instance),
                dst.join(",")
            )
        }
        Effect::Vips {
            instance,
            add,
            vips,
            routes,
            ..
        } => {
            let mut what: Vec<String> = vips
                .iter()
                .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                .collect();
            what.extend(
                routes
                    .iter()
                    .map(|r| format!("route {}/{}", r.dest, r.prefix_len)),
            );
            format!(
                "vips {} {} {}",
                if *add { "add" } else { "remove" },
                name(*instance),
                what.join(" ")
            )
        }
        Effect::Announce { instance, vip } => {
            let kind = if vip.is_ipv6() { "na" } else { "garp" };
            format!("{kind} {} {vip}", name(*instance))
        }
        Effect::Mail(a) => format!("mail {} | {}", a.subject, a.body),
        Effect::Notify { target, job } => {
            let who = match target {
                NotifyTarget::Instance(i) => name(*i),
                NotifyTarget::Group(g) => groups.get(*g).cloned().unwrap_or_default(),
            };
            format!("notify {} {who} {} {}", job.kind, job.state, job.priority)
        }
        Effect::FifoLine(job) => {
            format!(
                "fifo {} {} {} {}",
                job.kind, job.name, job.state, job.priority
            )
        }
        Effect::Transition {
            instance, state, ..
        } => format!("transition {} {}", name(*instance), state.name()),
        Effect::OpenInterface { instance } => format!("open-interface {}", name(*instance)),
        Effect::WriteReport => "report".into(),
        Effect::Reloaded => "reloaded".into(),
        Effect::Stopped => "stopped".into(),
    }
}

struct Replay {
    node: Node,
    names: Vec<String>,
    groups: Vec<String>,
    /// The numbering after a reload's `reloaded` effect.
    next_names: Option<(Vec<String>, Vec<String>)>,
    now: Micros,
    out: Vec<String>,
}

fn names(c: &Config) -> (Vec<String>, Vec<String>) {
    (
        c.vrrp_instances.iter().map(|i| i.name.clone()).collect(),
        c.vrrp_sync_groups.iter().map(|g| g.name.clone()).collect(),
    )
}

impl Replay {
    fn drain(&mut self) {
        while let Some(e) = self.node.poll_effect() {
            let line = render(&e, &self.names, &self.groups);
            self.out.push(format!("{} {line}", secs(self.now)));
            if e == Effect::Reloaded
                && let Some((n, g)) = self.next_names.take()
            {
                self.names = n;
                self.groups = g;
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        self.node.handle(self.now, ev);
        self.drain();
    }

    /// Fires the node's timers up to `until`, as the driver does.
    fn run_until(&mut self, until: Micros) {
        while let Some(t) = self.node.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            self.handle(Event::Timer);
        }
        self.now = self.now.max(until);
    }
}

fn replay(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("fixture");
    let s = sections(&text);
    let config = load(section(&s, "config").expect("a config section"));
    let reload = section(&s, "reload").map(load);
    let (n, g) = names(&config);
    let mut r = Replay {
        node: Node::new(
            &config,
            setup(&config),
            NodeOptions::default(),
            Instant::now(),
        ),
        names: n,
        groups: g,
        next_names: None,
        now: 0,
        out: Vec::new(),
    };
    for line in section(&s, "events").expect("an events section").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let at = parse_secs(w[0]);
        r.run_until(at);
        let index_of = |name: &str| -> usize {
            r.names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("{}: no instance {name}", path.display()))
        };
        let ev = match w[1] {
            "start" => Event::Start {
                links: w[2..]
                    .iter()
                    .filter_map(|l| l.split_once('='))
                    .map(|(n, s)| (n.to_string(), s == "up"))
                    .collect(),
                files: Vec::new(),
                processes: Vec::new(),
            },
            "advert" => {
                let instance = index_of(w[2]);
                let interval = w.get(5).map_or_else(
                    || {
                        r.node
                            .instance(instance)
                            .map_or(Duration::from_secs(1), |i| i.cfg.advert_int.0)
                    },
                    |s| Duration::from_micros(parse_secs(s)),
                );
                Event::Advert {
                    instance,
                    src: w[3].parse().expect("an address"),
                    priority: w[4].parse().expect("a priority"),
                    interval,
                }
            }
            "script" => Event::Script {
                index: config
                    .vrrp_scripts
                    .iter()
                    .position(|s| s.name == w[2])
                    .expect("a vrrp_script"),
                success: w[3] == "ok",
                detail: if w[3] == "ok" {
                    "exited 0".into()
                } else {
                    "failed (exit 1)".into()
                },
            },
            "link" => Event::Link {
                name: w[2].to_string(),
                up: w[3] == "up",
            },
            "reload" => {
                let c = reload.clone().expect("a reload section");
                r.handle(Event::ReloadBegin);
                r.next_names = Some(names(&c));
                Event::Reload {
                    setup: setup(&c),
                    config: Box::new(c),
                    links: Vec::new(),
                    files: Vec::new(),
                    processes: Vec::new(),
                }
            }
            "stop" => Event::Stop,
            "end" => continue,
            other => panic!("{}: unknown event {other}", path.display()),
        };
        r.handle(ev);
    }
    (text, r.out)
}

#[test]
fn recorded_event_sequences_give_their_recorded_effects() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("tests/fixtures/vrrp-replay")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "replay"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures: {files:?}");
    let bless = std::env::var_os("VRRP_REPLAY_BLESS").is_some();
    let mut failures = Vec::new();
    for f in &files {
        let (text, got) = replay(f);
        let s = sections(&text);
        let want: Vec<String> = section(&s, "effects")
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        if bless {
            let head = text.split("== effects ==").next().unwrap_or(&text);
            let body = format!("{head}== effects ==\n{}\n", got.join("\n"));
            std::fs::write(f, body).expect("write fixture");
            continue;
        }
        if got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            failures.push(format!(
                "{}: effects differ from line {}:\n  got:  {:?}\n  want: {:?}",
                f.display(),
                first + 1,
                got.get(first),
                want.get(first)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
