//! `track_file` (and its deprecated synonym `vrrp_track_file`) blocks, the
//! `track_file { NAME [weight N [reverse]] }` lists of vrrp_instance and
//! vrrp_sync_group, and FILE_CHECK in a real_server.

use std::path::PathBuf;

use crate::config::keywords::Section;
use crate::config::model::{
    CheckCommon, CheckKind, Checker, FileCheck, InitFile, RealServer, Timer, TrackFile, Tracked,
};
use crate::config::tree::{Node, Word};

use super::ctx::{Ctx, suggest};
use super::global::set_val;

/// keepalived's weight range for a tracked file (VRRP side).
const VRRP_WEIGHT: std::ops::RangeInclusive<i64> = -254..=254;
/// keepalived's weight range for FILE_CHECK (IPVS weights).
const IPVS_WEIGHT: std::ops::RangeInclusive<i64> = -65535..=65535;

/// `track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }`.
/// A block without `file` is dropped (with an error, as keepalived refuses it).
pub fn track_file_block(cx: &mut Ctx, node: &Node) -> Option<TrackFile> {
    cx.at_most(node, 1);
    let name = cx.arg(
        node,
        0,
        "a name: `track_file NAME { file /path; weight N }`",
    )?;
    let body = cx.block(node)?;
    let mut t = TrackFile {
        name: name.text.to_string(),
        path: PathBuf::new(),
        weight: 1,
        reverse: false,
        init: None,
    };
    let mut has_file = false;
    for n in body {
        match n.name() {
            "file" => {
                if let Some(p) = cx.string(n, "a file path") {
                    t.path = PathBuf::from(p);
                    has_file = true;
                }
            }
            "weight" => {
                super::vrrp::weight_keyword(cx, n, VRRP_WEIGHT, &mut t.weight, &mut t.reverse)
            }
            "init_file" => {
                cx.no_block(n);
                cx.at_most(n, 2);
                let mut init = InitFile {
                    value: 0,
                    overwrite: false,
                };
                for w in &n.args {
                    if w.text == "overwrite" {
                        init.overwrite = true;
                    } else if let Some(v) =
                        cx.int_word("init_file", w, i64::from(i32::MIN)..=i64::from(i32::MAX))
                    {
                        init.value = v;
                    }
                }
                t.init = Some(init);
            }
            _ => cx.other(n, Section::TrackFile, &[]),
        }
    }
    if !has_file {
        cx.error(
            name.span,
            format!(
                "track_file '{}' has no `file /path` line: it is ignored",
                t.name
            ),
        );
        return None;
    }
    if !t.path.is_absolute() {
        cx.warn(
            name.span,
            format!(
                "track_file '{}': {} is a relative path, read from the daemon's working directory",
                t.name,
                t.path.display()
            ),
        );
    }
    Some(t)
}

/// The named track_file, or an error at `w` (with a suggestion).
fn known<'c>(cx: &mut Ctx<'c>, w: &Word, what: &str) -> bool {
    if cx.track_files.iter().any(|t| t.name == w.text.as_str()) {
        return true;
    }
    let mut msg = format!(
        "{what} names an unknown track_file '{}': define `track_file {} {{ file /path }}`",
        w.text, w.text
    );
    let names: Vec<String> = cx.track_files.iter().map(|t| t.name.clone()).collect();
    if let Some(s) = suggest(&w.text, names.iter().map(String::as_str)) {
        msg.push_str(&format!(" or did you mean '{s}'?"));
    }
    cx.error(w.span, msg);
    false
}

/// `track_file { NAME [weight N [reverse]] }` in a vrrp_instance, or in a
/// vrrp_sync_group (where keepalived 2.2.7 applies it, weight included, to
/// every member).
pub fn tracked(cx: &mut Ctx, node: &Node) -> Vec<Tracked> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in body {
        cx.no_block(n);
        cx.at_most(n, 3);
        if !known(cx, &n.keyword, "track_file") {
            continue;
        }
        let mut t = Tracked {
            name: n.keyword.text.to_string(),
            weight: None,
            reverse: false,
        };
        match n.args.first() {
            None => {}
            Some(w) if w.text == "weight" => {
                let (weight, reverse) = super::vrrp::tracked_weight(cx, n, VRRP_WEIGHT);
                t.weight = weight;
                set_val(&mut t.reverse, reverse);
            }
            Some(w) => cx.error(
                w.span,
                format!("expected `weight N [reverse]`, found '{}'", w.text),
            ),
        }
        out.push(t);
    }
    out
}

/// `FILE_CHECK { track_file NAME; weight N [reverse] }` in a real_server.
pub fn file_check(cx: &mut Ctx, node: &Node, rs: &RealServer) -> Option<Checker> {
    cx.at_most(node, 0);
    let body = cx.block(node)?;
    let mut def: Option<TrackFile> = None;
    let mut weight: Option<(i32, bool)> = None;
    for n in body {
        match n.name() {
            "track_file" => {
                let Some(w) = cx.single(n, "the name of a track_file block") else {
                    continue;
                };
                if known(cx, w, "FILE_CHECK track_file") {
                    def = cx
                        .track_files
                        .iter()
                        .find(|t| t.name == w.text.as_str())
                        .cloned();
                }
            }
            "weight" => {
                cx.no_block(n);
                cx.at_most(n, 2);
                let Some(w) = cx.arg(n, 0, "a value -65535..65535") else {
                    continue;
                };
                let Some(v) = cx.int_word("weight", w, IPVS_WEIGHT) else {
                    continue;
                };
                let mut reverse = false;
                if let Some(r) = n.args.get(1) {
                    set_val(&mut reverse, super::vrrp::reverse_word(cx, r));
                }
                weight = Some((v as i32, reverse));
            }
            _ => cx.other(n, Section::FileCheck, &[]),
        }
    }
    let Some(def) = def else {
        cx.error(
            node.keyword.span,
            "FILE_CHECK needs `track_file NAME` (a track_file block): it is ignored",
        );
        return None;
    };
    let (weight, reverse) = weight.unwrap_or((def.weight, def.reverse));
    Some(Checker {
        kind: CheckKind::File(FileCheck {
            name: def.name,
            path: def.path,
            weight,
            reverse,
            base_weight: rs.weight,
        }),
        // The file is watched, not polled: down and up at once, no retry.
        common: CheckCommon {
            connect_ip: rs.addr,
            connect_port: rs.port,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: Timer::secs(5),
            delay_loop: Timer::secs(60),
            retry: 0,
            delay_before_retry: Timer::secs(1),
            warmup: Timer::secs(0),
            alpha: false,
            log_all_failures: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::config::model::CheckKind;
    use crate::config::{LoadOptions, load_str};

    fn load(text: &str) -> (Option<crate::config::model::Config>, String) {
        let l = load_str("t.conf", text, &LoadOptions::default());
        let d = format!("{:?}", l.diagnostics);
        (l.config, d)
    }

    #[test]
    fn blocks_lists_and_file_check() {
        let (c, d) = load(
            "track_file a {\n file /run/a\n weight -5 reverse\n init_file 3 overwrite\n}\n\
             vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n\
             virtual_ipaddress {\n 10.0.0.1\n }\n track_file {\n a weight 7\n }\n}\n\
             virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n weight 3\n\
             FILE_CHECK {\n track_file a\n weight 2\n }\n }\n}\n",
        );
        let c = c.unwrap_or_else(|| panic!("{d}"));
        let t = &c.track_files[0];
        assert_eq!((t.weight, t.reverse), (-5, true));
        let init = t.init.unwrap();
        assert_eq!((init.value, init.overwrite), (3, true));
        let tr = &c.vrrp_instances[0].track_file[0];
        assert_eq!((tr.weight, tr.reverse), (Some(7), false));
        let rs = &c.virtual_servers[0].real_servers[0];
        let CheckKind::File(f) = &rs.checkers[0].kind else {
            panic!("{:?}", rs.checkers)
        };
        assert_eq!((f.weight, f.reverse, f.base_weight), (2, false, 3));
        assert_eq!(rs.checkers[0].common.retry, 0);
    }

    #[test]
    fn unknown_names_and_missing_files_are_errors() {
        let (c, d) = load("track_file a {\n weight 2\n}\n");
        assert!(c.is_none());
        assert!(d.contains("has no `file"), "{d}");
        let (c, d) = load(
            "track_file ab {\n file /x\n}\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n\
             FILE_CHECK {\n track_file ac\n }\n }\n}\n",
        );
        assert!(c.is_none());
        assert!(d.contains("unknown track_file 'ac'"), "{d}");
        assert!(d.contains("did you mean 'ab'"), "{d}");
    }
}
