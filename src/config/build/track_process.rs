//! `vrrp_track_process` blocks and the `track_process { NAME [weight N
//! [reverse]] }` lists of vrrp_instance and vrrp_sync_group, read as
//! keepalived 2.2.7 reads them (vrrp_parser.c), with the differences said
//! at the word that causes them.

use crate::config::keywords::Section;
use crate::config::model::{ParamMatch, Timer, TrackProcess, Tracked};
use crate::config::tree::{Node, Word};

use super::ctx::{Ctx, suggest};

/// keepalived's weight range for a tracked process.
const WEIGHT: std::ops::RangeInclusive<i64> = -254..=254;
/// The kernel's process name (comm) is at most 15 bytes.
pub const COMM_MAX: usize = 15;

/// `vrrp_track_process NAME { ... }`. A block without `process` is dropped
/// (with an error, as keepalived refuses it).
pub fn block(cx: &mut Ctx, node: &Node) -> Option<TrackProcess> {
    cx.at_most(node, 1);
    let name = cx.arg(
        node,
        0,
        "a name: `vrrp_track_process NAME { process haproxy }`",
    )?;
    let body = cx.block(node)?;
    let mut t = TrackProcess {
        name: name.text.to_string(),
        process: String::new(),
        params: Vec::new(),
        param_match: ParamMatch::None,
        full_command: false,
        quorum: 1,
        quorum_max: u32::MAX,
        fork_delay: Timer::default(),
        terminate_delay: Timer::default(),
        weight: 0,
        reverse: false,
    };
    let mut process_at: Option<&Word> = None;
    let mut explicit_match = false;
    let mut quorum_at: Option<&Word> = None;
    let mut quorum_max_at: Option<&Word> = None;
    for n in body {
        match n.name() {
            "process" => {
                cx.no_block(n);
                let Some(w) = cx.arg(n, 0, "a command name: `process haproxy`") else {
                    continue;
                };
                if process_at.is_some() {
                    cx.error(
                        n.keyword.span,
                        format!(
                            "vrrp_track_process '{}': `process` given twice; the first is kept",
                            t.name
                        ),
                    );
                    continue;
                }
                process_at = Some(w);
                t.process = w.text.to_string();
                t.params = n.args[1..].iter().map(|a| a.text.to_string()).collect();
                if !t.params.is_empty() {
                    t.full_command = true;
                }
            }
            "param_match" => {
                cx.no_block(n);
                cx.at_most(n, 1);
                let m = match n.args.first().map(|w| w.text.as_str()) {
                    None | Some("exact") => Some(ParamMatch::Exact),
                    Some("initial") => Some(ParamMatch::Initial),
                    Some("partial") => Some(ParamMatch::Partial),
                    Some(other) => {
                        cx.error(
                            n.args[0].span,
                            format!(
                                "param_match expects `initial`, `partial` or nothing (exact), found '{other}'"
                            ),
                        );
                        None
                    }
                };
                if let Some(m) = m {
                    t.param_match = m;
                    t.full_command = true;
                    explicit_match = true;
                }
            }
            "full_command" => {
                cx.no_block(n);
                cx.at_most(n, 0);
                t.full_command = true;
            }
            "weight" => super::vrrp::weight_keyword(cx, n, WEIGHT, &mut t.weight, &mut t.reverse),
            "quorum" => {
                if let Some(w) = cx.single(n, "a number 1-65535")
                    && let Some(v) = cx.int_word("quorum", w, 1..=65535)
                {
                    t.quorum = v as u32;
                    quorum_at = Some(w);
                }
            }
            "quorum_max" => {
                if let Some(w) = cx.single(n, "a number 0-65535")
                    && let Some(v) = cx.int_word("quorum_max", w, 0..=65535)
                {
                    t.quorum_max = v as u32;
                    quorum_max_at = Some(w);
                }
            }
            kw @ ("delay" | "fork_delay" | "terminate_delay") => {
                let Some(w) = cx.single(n, "a time in seconds (0.000001-3600)") else {
                    continue;
                };
                let Some(d) = cx.timer_word(kw, w) else {
                    continue;
                };
                if d.0.is_zero() || d.0 > std::time::Duration::from_secs(3600) {
                    cx.error(
                        w.span,
                        format!("{kw} {} is out of range: use 0.000001-3600", w.text),
                    );
                    continue;
                }
                if kw != "fork_delay" {
                    t.terminate_delay = d;
                }
                if kw != "terminate_delay" {
                    t.fork_delay = d;
                }
            }
            _ => cx.other(n, Section::TrackProcess, &[]),
        }
    }
    let Some(process_at) = process_at else {
        cx.error(
            name.span,
            format!(
                "vrrp_track_process '{}' has no `process NAME` line: it is ignored",
                t.name
            ),
        );
        return None;
    };
    if !t.params.is_empty() && !explicit_match {
        t.param_match = ParamMatch::Exact;
    }
    // keepalived: `quorum_max 0` without a quorum means "none may run".
    if t.quorum_max == 0 && quorum_at.is_none() {
        t.quorum = 0;
    } else if t.quorum_max < t.quorum {
        let at = quorum_max_at.or(quorum_at).map_or(name.span, |w| w.span);
        cx.error(
            at,
            format!(
                "vrrp_track_process '{}': quorum_max {} is less than quorum {}",
                t.name, t.quorum_max, t.quorum
            ),
        );
        return None;
    }
    if !t.full_command && t.process.len() > COMM_MAX {
        cx.warn(
            process_at.span,
            format!(
                "vrrp_track_process '{}': a process name is at most {COMM_MAX} characters \
                 (/proc/PID/comm), so '{}' never matches: add `full_command` to match the command line",
                t.name, t.process
            ),
        );
    }
    if !t.full_command && t.process.contains(char::is_whitespace) {
        cx.warn(
            process_at.span,
            format!(
                "vrrp_track_process '{}': '{}' is matched against the process name (/proc/PID/comm); \
                 add `full_command` to match it against the command line",
                t.name, t.process
            ),
        );
    }
    Some(t)
}

/// `track_process { NAME [weight N [reverse]] }` in a vrrp_instance or a
/// vrrp_sync_group (applied to every member, weight included).
pub fn tracked(cx: &mut Ctx, node: &Node) -> Vec<Tracked> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    let mut out: Vec<Tracked> = Vec::new();
    for n in body {
        cx.no_block(n);
        cx.at_most(n, 3);
        let w = &n.keyword;
        let Some(block_reverse) = cx
            .track_processes
            .iter()
            .find(|(t, _)| t == w.text.as_str())
            .map(|(_, r)| *r)
        else {
            let mut msg = format!(
                "track_process names an unknown vrrp_track_process '{}': define `vrrp_track_process {} {{ process NAME }}`",
                w.text, w.text
            );
            if let Some(s) = suggest(&w.text, cx.track_processes.iter().map(|(n, _)| n.as_str())) {
                msg.push_str(&format!(" or did you mean '{s}'?"));
            }
            cx.error(w.span, msg);
            continue;
        };
        if out.iter().any(|t| t.name == w.text.as_str()) {
            cx.warn(
                w.span,
                format!("track_process '{}' listed twice: the first is kept", w.text),
            );
            continue;
        }
        let mut t = Tracked {
            name: w.text.to_string(),
            weight: None,
            reverse: false,
        };
        match n.args.first() {
            None => {}
            Some(k) if k.text == "weight" => {
                let (weight, reverse) = super::vrrp::tracked_weight(cx, n, WEIGHT);
                t.weight = weight;
                // keepalived: the block's `reverse` holds unless this line
                // says `reverse` or `noreverse`.
                t.reverse = reverse.unwrap_or(block_reverse);
            }
            Some(k) => cx.error(
                k.span,
                format!("expected `weight N [reverse]`, found '{}'", k.text),
            ),
        }
        out.push(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::model::ParamMatch;
    use crate::config::{LoadOptions, load_str};

    fn load(text: &str) -> (Option<crate::config::model::Config>, String) {
        let l = load_str("t.conf", text, &LoadOptions::default());
        let d = format!("{:?}", l.diagnostics);
        (l.config, d)
    }

    const INSTANCE: &str = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n\
         virtual_ipaddress {\n 10.0.0.1\n }\n track_process {\n p weight -7 reverse\n q\n }\n}\n";

    #[test]
    fn blocks_as_keepalived_reads_them() {
        let (c, d) = load(&format!(
            "vrrp_track_process p {{\n process \"/tmp/a b\" x \"y z\"\n param_match initial\n\
             quorum 2\n quorum_max 3\n delay 1.5\n fork_delay 0.25\n weight 5 reverse\n}}\n\
             vrrp_track_process q {{\n process sleep\n quorum_max 0\n}}\n{INSTANCE}"
        ));
        let c = c.unwrap_or_else(|| panic!("{d}"));
        let p = &c.track_processes[0];
        assert_eq!(p.process, "/tmp/a b");
        assert_eq!(p.params, ["x", "y z"]);
        assert_eq!(p.param_match, ParamMatch::Initial);
        assert!(p.full_command);
        assert_eq!((p.quorum, p.quorum_max), (2, 3));
        assert_eq!(p.terminate_delay.0.as_millis(), 1500);
        assert_eq!(p.fork_delay.0.as_millis(), 250);
        assert_eq!((p.weight, p.reverse), (5, true));
        let q = &c.track_processes[1];
        assert_eq!((q.quorum, q.quorum_max), (0, 0));
        assert_eq!(q.param_match, ParamMatch::None);
        assert!(!q.full_command);
        assert_eq!(q.weight, 0, "keepalived 2.2.7's default weight is 0");
        let t = &c.vrrp_instances[0].track_process;
        assert_eq!((t[0].weight, t[0].reverse), (Some(-7), true));
        assert_eq!(t[1].weight, None);
        // dumped with the rest of the model
        let text = crate::config::normalized::to_text(&c);
        assert!(text.contains("track_processes"), "{text}");
    }

    #[test]
    fn params_imply_exact_and_full_command() {
        let (c, d) = load(&format!(
            "vrrp_track_process p {{\n process sleep 100\n}}\n\
             vrrp_track_process q {{\n process sleep\n param_match\n}}\n{INSTANCE}"
        ));
        let c = c.unwrap_or_else(|| panic!("{d}"));
        assert_eq!(c.track_processes[0].param_match, ParamMatch::Exact);
        assert!(c.track_processes[0].full_command);
        assert_eq!(c.track_processes[1].param_match, ParamMatch::Exact);
        assert!(c.track_processes[1].params.is_empty());
    }

    #[test]
    fn mistakes_are_located() {
        let (c, d) = load(&format!(
            "vrrp_track_process p {{\n weight 2\n}}\n{INSTANCE}"
        ));
        assert!(c.is_none());
        assert!(d.contains("has no `process"), "{d}");
        let (c, d) = load(&format!(
            "vrrp_track_process p {{\n process a\n quorum 3\n quorum_max 2\n}}\n\
             vrrp_track_process q {{\n process b\n delay 0\n}}\n{INSTANCE}"
        ));
        assert!(c.is_none());
        assert!(d.contains("quorum_max 2 is less than quorum 3"), "{d}");
        assert!(d.contains("delay 0 is out of range"), "{d}");
        let (c, d) = load(&format!(
            "vrrp_track_process pp {{\n process a\n}}\nvrrp_track_process q {{\n process b\n}}\n{INSTANCE}"
        ));
        assert!(c.is_none());
        assert!(d.contains("unknown vrrp_track_process 'p'"), "{d}");
        assert!(d.contains("did you mean 'pp'"), "{d}");
        let (c, d) = load(&format!(
            "vrrp_track_process p {{\n process a_very_long_daemon_name\n}}\n\
             vrrp_track_process q {{\n process b\n}}\n{INSTANCE}"
        ));
        assert!(c.is_some(), "{d}");
        assert!(d.contains("never matches"), "{d}");
    }
}
