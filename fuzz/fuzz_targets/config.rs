//! Arbitrary bytes never panic the configuration loader (lexer, tree,
//! builder and diagnostics rendering).
#![no_main]

use ipvsdir::config::{LoadOptions, load_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // `include` would read files of this machine: not what we fuzz here.
    if text.contains("include") {
        return;
    }
    let loaded = load_str("fuzz.conf", &text, &LoadOptions::default());
    let _ = loaded.diagnostics.to_string();
    if let Some(cfg) = loaded.config {
        let _ = ipvsdir::config::normalized::to_text(&cfg);
    }
});
