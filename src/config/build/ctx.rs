//! Shared helpers for turning statements into typed values, reporting
//! each problem at the word that caused it.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::config::diag::{Diagnostics, Severity};
use crate::config::keywords::{Section, keepalived_keywords};
use crate::config::model::{Script, ScriptUser, Timer};
use crate::config::source::{SourceMap, Span};
use crate::config::tree::{Node, Word};

/// Blocks named in "belongs in ..." hints, most common first.
const HOME_BLOCKS: &[(Section, &str)] = &[
    (Section::VrrpInstance, "a vrrp_instance block"),
    (Section::GlobalDefs, "global_defs"),
    (Section::VirtualServer, "a virtual_server block"),
    (Section::RealServer, "a real_server block"),
    (Section::HttpGet, "an HTTP_GET/SSL_GET block"),
    (Section::Url, "a url block"),
    (Section::VrrpScript, "a vrrp_script block"),
    (Section::MiscCheck, "a MISC_CHECK block"),
    (Section::TopLevel, "the top level"),
];

/// keepalived 2.2.7's defaults for a block's `smtp_alert`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmtpDefaults {
    pub vrrp: bool,
    pub virtual_server: bool,
    pub real_server: bool,
}

pub struct Ctx<'a> {
    pub sources: &'a SourceMap,
    pub diags: &'a mut Diagnostics,
    /// `smtp_alert` of sync groups, virtual servers and real servers that
    /// set none, from global_defs (read first).
    pub smtp_defaults: SmtpDefaults,
    /// The `track_file` blocks, read before the blocks that name them.
    pub track_files: Vec<crate::config::model::TrackFile>,
    /// The `vrrp_track_process` blocks' names and `reverse`, read before
    /// the blocks that name them.
    pub track_processes: Vec<(String, bool)>,
}

/// Closest candidate within a small edit distance, for "did you mean".
/// Cheap on hostile input: the distance is only computed for candidates of
/// a near length (it is at least the length difference), without allocating.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    if word.len() > 64 {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| c.len().abs_diff(word.len()) <= (c.len() / 3).clamp(1, 3))
        .map(|c| (strsim::osa_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|&(d, c)| c != word && d <= (c.len() / 3).clamp(1, 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

impl Ctx<'_> {
    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        let mut message = message.into();
        // A `$NAME` left as written (no such parameter) explains many a bad value.
        let text = self.sources.slice(span);
        if let Some(at) = text.find('$')
            && let Some(r) = crate::config::expand::reference_at(text, at)
            && !r.braced
        {
            message.push_str(&format!(" (`${}` is not a defined parameter)", r.name));
        }
        self.diags
            .push(self.sources, Severity::Error, span, message);
    }

    pub fn warn(&mut self, span: Span, message: impl Into<String>) {
        self.diags
            .push(self.sources, Severity::Warning, span, message.into());
    }

    /// A keyword we do not handle here: "not supported yet" when keepalived
    /// knows it, otherwise "unknown" with a suggestion.
    pub fn other(&mut self, node: &Node, section: Section, extra: &[&str]) {
        if self.diags.items.len() >= crate::config::diag::MAX_DIAGNOSTICS {
            // Past the shown diagnostics: count, do not look for suggestions.
            self.diags.more_warnings += 1;
            return;
        }
        let kw = node.name();
        let known = keepalived_keywords(section);
        if known.contains(&kw) {
            self.warn(
                node.keyword.span,
                format!("`{kw}` is not supported yet, ignored"),
            );
            return;
        }
        let mut msg = format!("unknown keyword `{kw}`, ignored");
        if let Some(s) = suggest(kw, known.iter().chain(extra).copied()) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        } else if let Some((_, block)) = HOME_BLOCKS
            .iter()
            .find(|(s, _)| *s != section && keepalived_keywords(*s).contains(&kw))
        {
            msg = format!("`{kw}` belongs in {block}, not here; ignored");
        }
        self.warn(node.keyword.span, msg);
    }

    /// The argument at `idx`, or an error saying what is missing.
    pub fn arg<'n>(&mut self, node: &'n Node, idx: usize, what: &str) -> Option<&'n Word> {
        let arg = node.args.get(idx);
        if arg.is_none() {
            let at = node.args.last().map_or(node.keyword.span, |a| a.span);
            self.error(at, format!("`{}` needs {what}", node.name()));
        }
        arg
    }

    /// The one argument of `keyword VALUE` (no block, extra words warned about).
    pub fn single<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n Word> {
        self.no_block(node);
        self.at_most(node, 1);
        self.arg(node, 0, what)
    }

    /// `keyword USER [GROUP]`: the account a script runs as.
    pub fn user(&mut self, node: &Node) -> Option<ScriptUser> {
        self.no_block(node);
        self.at_most(node, 2);
        let u = self.arg(node, 0, "a user name")?;
        Some(ScriptUser {
            user: u.text.to_string(),
            group: node.args.get(1).map(|g| g.text.to_string()),
        })
    }

    /// Warns about arguments past `max`.
    pub fn at_most(&mut self, node: &Node, max: usize) {
        if let Some(extra) = node.args.get(max) {
            let last = node.args.last().map_or(extra.span, |w| w.span);
            self.warn(
                extra.span.to(last),
                format!("extra arguments after `{}` ignored", node.name()),
            );
        }
    }

    /// The block of a statement that must have one.
    pub fn block<'n>(&mut self, node: &'n Node) -> Option<&'n [Node]> {
        match &node.block {
            Some(b) => Some(&*b.nodes),
            None => {
                self.error(
                    node.span(),
                    format!(
                        "`{}` needs a block: `{} {{ ... }}`",
                        node.name(),
                        node.name()
                    ),
                );
                None
            }
        }
    }

    /// Warns when a block is given to a statement that takes none.
    pub fn no_block(&mut self, node: &Node) {
        if let Some(b) = &node.block {
            self.warn(
                b.open,
                format!("`{}` takes no block; its contents are ignored", node.name()),
            );
        }
    }

    pub fn int_word(&mut self, kw: &str, w: &Word, range: RangeInclusive<i64>) -> Option<i64> {
        let Ok(v) = w.text.parse::<i64>() else {
            self.error(
                w.span,
                format!(
                    "`{kw}` expects an integer {}-{}, found '{}'",
                    range.start(),
                    range.end(),
                    w.text
                ),
            );
            return None;
        };
        if !range.contains(&v) {
            self.error(
                w.span,
                format!(
                    "{kw} {v} is out of range: use {}-{}",
                    range.start(),
                    range.end()
                ),
            );
            return None;
        }
        Some(v)
    }

    /// `keyword N` with N in `range`.
    pub fn int<T: TryFrom<i64>>(&mut self, node: &Node, range: RangeInclusive<i64>) -> Option<T> {
        // The words of the "needs ..." message, made only when it is needed.
        let what = if node.args.is_empty() {
            format!("an integer {}-{}", range.start(), range.end())
        } else {
            String::new()
        };
        let w = self.single(node, &what)?;
        let v = self.int_word(node.name(), w, range)?;
        T::try_from(v).ok()
    }

    /// Decimal seconds, e.g. `1`, `0.5`, `2.25` (microsecond resolution).
    pub fn timer_word(&mut self, kw: &str, w: &Word) -> Option<Timer> {
        let secs = w.text.parse::<f64>().ok().filter(|s| s.is_finite());
        match secs {
            Some(s) if (0.0..=1e9).contains(&s) => Some(Timer(Duration::from_micros(
                (s * 1_000_000.0).round() as u64,
            ))),
            Some(_) => {
                self.error(
                    w.span,
                    format!(
                        "`{kw}` must be a non-negative number of seconds, found '{}'",
                        w.text
                    ),
                );
                None
            }
            None => {
                self.error(
                    w.span,
                    format!(
                        "`{kw}` expects a time in seconds (e.g. 3 or 0.5), found '{}'",
                        w.text
                    ),
                );
                None
            }
        }
    }

    pub fn timer(&mut self, node: &Node) -> Option<Timer> {
        let w = self.single(node, "a time in seconds")?;
        self.timer_word(node.name(), w)
    }

    /// A `<BOOL>` keyword: bare means true, else on/off/true/false/yes/no.
    pub fn flag(&mut self, node: &Node) -> Option<bool> {
        self.no_block(node);
        self.at_most(node, 1);
        let Some(w) = node.args.first() else {
            return Some(true);
        };
        match w.text.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => {
                self.error(
                    w.span,
                    format!(
                        "`{}` expects on/off, true/false or yes/no, found '{}'",
                        node.name(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// One word (bare or quoted).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        self.single(node, what).map(|w| w.text.to_string())
    }

    pub fn ip_word(&mut self, w: &Word) -> Option<IpAddr> {
        match w.text.parse::<IpAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(w.span, format!("'{}' is not a valid IP address", w.text));
                None
            }
        }
    }

    pub fn ip(&mut self, node: &Node) -> Option<IpAddr> {
        let w = self.single(node, "an IP address")?;
        self.ip_word(w)
    }

    pub fn port_word(&mut self, w: &Word) -> Option<u16> {
        match w.text.parse::<u16>() {
            Ok(p) => Some(p),
            Err(_) => {
                self.error(
                    w.span,
                    format!("'{}' is not a valid port: use 0-65535", w.text),
                );
                None
            }
        }
    }

    pub fn port(&mut self, node: &Node) -> Option<u16> {
        let w = self.single(node, "a port (0-65535)")?;
        self.port_word(w)
    }

    /// `keyword COMMAND [user [group]]`, the command bare or quoted.
    pub fn script(&mut self, node: &Node) -> Option<Script> {
        self.no_block(node);
        self.at_most(node, 3);
        let cmd = self.arg(node, 0, "a command (quote it when it has arguments)")?;
        if cmd.text.trim().is_empty() {
            self.error(cmd.span, format!("`{}` has an empty command", node.name()));
            return None;
        }
        let user = node.args.get(1).map(|u| ScriptUser {
            user: u.text.to_string(),
            group: node.args.get(2).map(|g| g.text.to_string()),
        });
        Some(Script {
            command: cmd.text.to_string(),
            user,
        })
    }

    /// The words of a block's lines as a flat list (e.g. notification_email).
    pub fn words<'n>(&mut self, node: &'n Node) -> Vec<&'n Word> {
        let Some(nodes) = self.block(node) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in nodes {
            self.no_block(n);
            out.push(&n.keyword);
            out.extend(n.args.iter());
        }
        out
    }
}
