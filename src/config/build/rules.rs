//! `static_rules { }` and `virtual_rules { }` lines: policy-routing rules
//! in `ip rule` syntax as keepalived reads them. A selector we do not
//! model would make the rule match more than written, so a line with one
//! is left out (with a warning), never installed half-understood. A line
//! that does not parse is left out with a warning too (keepalived logs and
//! skips it; its own sample file has such lines).

use std::net::IpAddr;

use crate::config::model::{RuleAction, VirtualRule};
use crate::config::tree::{Node, Word};

use super::ctx::Ctx;

/// keepalived's rule options that ipvsdir does not install yet.
const NOT_YET: &[&str] = &[
    "realms",
    "suppress_prefixlength",
    "suppress_ifgroup",
    "suppress_group",
    "uidrange",
    "l3mdev",
    "protocol",
    "ipproto",
    "sport",
    "dport",
    "nop",
    "tunnel_id",
];

pub fn rules(cx: &mut Ctx, node: &Node) -> Vec<VirtualRule> {
    let Some(body) = cx.block(node) else {
        return Vec::new();
    };
    body.iter().filter_map(|n| rule_line(cx, n)).collect()
}

fn rule_line(cx: &mut Ctx, n: &Node) -> Option<VirtualRule> {
    cx.no_block(n);
    let words: Vec<&Word> = std::iter::once(&n.keyword).chain(n.args.iter()).collect();
    let mut r = VirtualRule {
        ipv6: false,
        invert: false,
        from: None,
        to: None,
        priority: None,
        tos: 0,
        fwmark: None,
        fwmask: None,
        iif: None,
        oif: None,
        action: RuleAction::Table(254),
        no_track: false,
    };
    let mut family: Option<bool> = None;
    let mut i = 0;
    while i < words.len() {
        let k = words[i];
        let key = k.text.as_str();
        i += 1;
        match key {
            "not" => r.invert = true,
            "no_track" => r.no_track = true,
            "inet" => family = Some(false),
            "inet6" => family = Some(true),
            "blackhole" => r.action = RuleAction::Blackhole,
            "unreachable" => r.action = RuleAction::Unreachable,
            "prohibit" => r.action = RuleAction::Prohibit,
            k2 if NOT_YET.contains(&k2) => {
                cx.warn(
                    k.span,
                    format!("rule option `{key}` is not supported yet: the rule is not installed"),
                );
                return None;
            }
            "from" | "to" | "priority" | "preference" | "pref" | "tos" | "dsfield" | "fwmark"
            | "iif" | "oif" | "table" | "lookup" | "goto" => {
                let Some(v) = words.get(i).copied() else {
                    cx.warn(
                        k.span,
                        format!("`{key}` needs a value; the rule is not installed"),
                    );
                    return None;
                };
                i += 1;
                match key {
                    "from" | "to" => {
                        let p = if matches!(v.text.as_str(), "all" | "any" | "default") {
                            None
                        } else {
                            Some(prefix(cx, v)?)
                        };
                        if let Some((a, _)) = p {
                            family.get_or_insert(a.is_ipv6());
                        }
                        if key == "from" {
                            r.from = p;
                        } else {
                            r.to = p;
                        }
                    }
                    "priority" | "preference" | "pref" => {
                        r.priority = Some(number(cx, v, key)?);
                    }
                    "tos" | "dsfield" => {
                        let t = number(cx, v, key)?;
                        let Ok(t) = u8::try_from(t) else {
                            cx.warn(
                                v.span,
                                format!("`{key}` must be 0-255; the rule is not installed"),
                            );
                            return None;
                        };
                        r.tos = t;
                    }
                    "fwmark" => {
                        let (m, mask) = match v.text.split_once('/') {
                            Some((m, mask)) => (m, Some(mask)),
                            None => (v.text.as_str(), None),
                        };
                        r.fwmark = Some(num_text(cx, v, m, key)?);
                        r.fwmask = match mask {
                            Some(mask) => Some(num_text(cx, v, mask, key)?),
                            None => None,
                        };
                    }
                    "iif" => r.iif = Some(v.text.to_string()),
                    "oif" => r.oif = Some(v.text.to_string()),
                    "goto" => r.action = RuleAction::Goto(number(cx, v, key)?),
                    _ => r.action = RuleAction::Table(table(cx, v)?),
                }
            }
            _ => {
                cx.warn(
                    k.span,
                    format!("unknown rule option `{key}`: the rule is not installed"),
                );
                return None;
            }
        }
    }
    r.ipv6 = family.unwrap_or(false);
    let mixed = [r.from, r.to]
        .iter()
        .flatten()
        .any(|(a, _)| a.is_ipv6() != r.ipv6);
    if mixed {
        cx.warn(
            n.span(),
            "a rule mixes IPv4 and IPv6 addresses; it is not installed",
        );
        return None;
    }
    Some(r)
}

fn prefix(cx: &mut Ctx, w: &Word) -> Option<(IpAddr, u8)> {
    let (a, l) = match w.text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w.text.as_str(), None),
    };
    let Ok(addr) = a.parse::<IpAddr>() else {
        cx.warn(
            w.span,
            format!(
                "'{}' is not a valid IP address; the rule is not installed",
                w.text
            ),
        );
        return None;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l.map(str::parse::<u8>) {
        None => max,
        Some(Ok(l)) if l <= max => l,
        _ => {
            cx.warn(
                w.span,
                format!(
                    "'{}': prefix length must be 0-{max}; the rule is not installed",
                    w.text
                ),
            );
            return None;
        }
    };
    Some((addr, len))
}

fn number(cx: &mut Ctx, w: &Word, key: &str) -> Option<u32> {
    num_text(cx, w, &w.text, key)
}

/// Decimal or 0x hexadecimal, as `ip rule` takes them.
fn num_text(cx: &mut Ctx, w: &Word, text: &str, key: &str) -> Option<u32> {
    let v = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => text.parse::<u32>(),
    };
    match v {
        Ok(v) => Some(v),
        Err(_) => {
            cx.warn(
                w.span,
                format!(
                    "`{key}` needs a number, not '{}'; the rule is not installed",
                    w.text
                ),
            );
            None
        }
    }
}

/// A table number, or `main`, `local`, `default`.
fn table(cx: &mut Ctx, w: &Word) -> Option<u32> {
    match w.text.as_str() {
        "main" => Some(254),
        "local" => Some(255),
        "default" => Some(253),
        _ => number(cx, w, "table"),
    }
}
