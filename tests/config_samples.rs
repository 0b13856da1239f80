//! Every sample we ship, every keepalived sample config and the seeds'
//! real-world configs load as expected.

use std::path::{Path, PathBuf};

use ipvsdir::config::{LoadOptions, load};

fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_samples_load_without_errors_or_warnings() {
    // The routing daemons' snippets are theirs (tests/announce_snippets.rs).
    let files: Vec<PathBuf> = conf_files(Path::new("conf"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !(name.starts_with("bird2-") || name.starts_with("frr-"))
        })
        .collect();
    assert!(files.len() >= 9, "conf/ should hold the sample topologies");
    for f in files {
        let l = load(&f, &LoadOptions::default());
        if f.ends_with("keepalived-default.conf") {
            // keepalived's own sample, unchanged: it sets PASS
            // authentication under vrrp_strict, which keepalived ignores too.
            let mut said: Vec<&str> = l
                .diagnostics
                .items
                .iter()
                .map(|d| d.message.split(':').next().unwrap_or_default())
                .collect();
            said.dedup();
            assert!(l.config.is_some(), "{}", l.diagnostics);
            assert_eq!(
                said,
                ["vrrp_strict does not allow authentication"],
                "{}",
                l.diagnostics
            );
            continue;
        }
        assert!(
            l.config.is_some() && l.diagnostics.items.is_empty(),
            "{}:\n{}",
            f.display(),
            l.diagnostics
        );
    }
}

#[test]
fn keepalived_sample_corpus_loads_without_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/keepalived-samples");
    if !dir.is_dir() {
        eprintln!(
            "SKIP: keepalived sample corpus not found at {} (it lives outside the repository)",
            dir.display()
        );
        return;
    }
    let files = conf_files(&dir);
    eprintln!(
        "checking {} keepalived samples in {}",
        files.len(),
        dir.display()
    );
    assert!(files.len() >= 25);
    for f in files {
        let l = load(&f, &LoadOptions::default());
        assert!(
            l.config.is_some(),
            "{} has errors:\n{}",
            f.display(),
            l.diagnostics
        );
    }
}

/// The seeds' configs as their authors wrote them: typos, lower-case values
/// and missing braces included. Each gives the diagnosis an operator needs.
#[test]
fn seed_configs_get_the_expected_verdicts() {
    let dir = Path::new("tests/fixtures/seeds");
    let verdict = |name: &str| {
        let l = load(&dir.join(name), &LoadOptions::default());
        (l.config.is_some(), l.diagnostics.to_string())
    };
    for ok in [
        "000_5c84d1b8c057533c-1.conf",
        "000_5c84d1b8c057533c-2.conf",
        "002_6ed90c86f4a73bb2-2.conf",
        "002_6ed90c86f4a73bb2-3.conf",
        "002_6ed90c86f4a73bb2-5.conf",
        "002_6ed90c86f4a73bb2-7.conf",
        "003_c4c22ec258ba7f59-1.conf",
        "003_c4c22ec258ba7f59-2.conf",
    ] {
        // Nothing to say (mail alerts included: they are sent).
        let l = load(&dir.join(ok), &LoadOptions::default());
        let d = l.diagnostics.to_string();
        assert!(l.config.is_some(), "{ok}:\n{d}");
        assert!(l.diagnostics.items.is_empty(), "{ok}:\n{d}");
    }
    // Lower-case `state master`, an empty vrrp_script.
    let (loaded, d) = verdict("001_34d25fffece8421b-1.conf");
    assert!(loaded, "{d}");
    assert!(d.contains("state 'master' taken as MASTER"), "{d}");
    assert!(d.contains("vrrp_script 'abc' has no `script` line"), "{d}");
    // The truncated copy of seed 000 lacks its last brace.
    let (loaded, d) = verdict("000_5c84d1b8c057533c-3.conf");
    assert!(!loaded);
    assert!(d.contains("unclosed '{'"), "{d}");
    // `inerval` typo: a warning with the fix.
    let (_, d) = verdict("001_34d25fffece8421b-3.conf");
    assert!(
        d.contains("unknown keyword `inerval`, ignored; did you mean `interval`?"),
        "{d}"
    );
    // A fragment tracking a script it never defines.
    let (loaded, d) = verdict("002_6ed90c86f4a73bb2-4.conf");
    assert!(!loaded);
    assert!(d.contains("unknown vrrp_script 'chk_http_port'"), "{d}");
    // `lb_kind dr`, `http_get`, `persistence_timeout 0` (no persistence, as keepalived).
    let (loaded, d) = verdict("001_34d25fffece8421b-2.conf");
    assert!(loaded, "{d}");
    assert!(d.contains("taken as DR"), "{d}");
    assert!(d.contains("did you mean `HTTP_GET`?"), "{d}");
    assert!(
        d.contains("persistence_timeout 0 means no persistence: ignored"),
        "{d}"
    );
}
