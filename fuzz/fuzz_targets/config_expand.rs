//! keepalived's line language (comment removal, `$NAME=` definitions,
//! `$NAME`/`${NAME}` substitution, `~SEQ`/`~LST`, include directives and
//! csh braces) never panics or runs away, on any line; then the whole
//! text goes through the loader, whose reader drives the same expander
//! (multi-line definitions, nested sequences, limits).
#![no_main]

use ipvsdir::config::expand::{self, ExpandError, Expansion, Params, Reference};
use ipvsdir::config::{LoadOptions, load_str};
use libfuzzer_sys::fuzz_target;

/// A few parameters, one referring to another and one to itself.
struct Fixed;

impl Params for Fixed {
    fn expand(&mut self, r: &Reference<'_>) -> Result<Expansion, ExpandError> {
        let text = match r.name {
            "A" => "10.0.0",
            "B" => "${A}.1",
            "S" => "~SEQ(I, 1, 3) x $I",
            "LOOP" => "$LOOP",
            _ => return Ok(Expansion::Unknown),
        };
        Ok(Expansion::Text {
            text: text.into(),
            rest: false,
        })
    }

    fn rest_follows(&mut self, _: &str) {}
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(64) {
        let d = expand::decomment(line);
        let _ = expand::parse_definition(&d.text);
        let _ = expand::braced_references(&d.text);
        let _ = expand::include_directive(&d.text);
        let _ = expand::brace_expand(&d.text);
        if d.text.starts_with("~SEQ") {
            let _ = expand::parse_seq(&d.text, |n| expand::substitute(n, &mut Fixed).map(|_| ()));
        }
        if d.text.starts_with("~LST") {
            let _ = expand::parse_lst(&d.text);
        }
        let mut l = d.text.clone();
        let _ = expand::substitute(&mut l, &mut Fixed);
    }
    // `include` would read files of this machine: not what we fuzz here.
    if text.contains("include") {
        return;
    }
    let loaded = load_str("fuzz.conf", &text, &LoadOptions::default());
    let _ = loaded.diagnostics.to_string();
});
