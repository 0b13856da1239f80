//! The architecture's rule, checked: the decision cores (the director, the
//! checker and VRRP state machines, the desired table and the diff) and
//! every module they import, transitively, do no I/O: no tokio, no netlink
//! socket, no std::fs, std::net sockets, processes or threads, no syscalls.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The cores, as module paths under src/.
const CORES: &[&str] = &[
    "lvs::director",
    "lvs::desired",
    "lvs::diff",
    "check::state",
    "check::health",
    "vrrp::state",
    "vrrp::node",
    "mail::compose",
    "mail::outbox",
];

/// What a core may not mention (outside comments).
const FORBIDDEN: &[&str] = &[
    "tokio",
    "netlink_sys",
    "netlink_packet",
    "std::fs",
    "std::process",
    "std::thread",
    "TcpStream",
    "TcpSocket",
    "UdpSocket",
    "UnixStream",
    "hyper",
    "rustls",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The file of a module path (`lvs::director` -> src/lvs/director/mod.rs).
fn file_of(module: &[String]) -> Option<PathBuf> {
    let base = module.iter().fold(src(), |p, m| p.join(m));
    [base.with_extension("rs"), base.join("mod.rs")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Code without `//` comments.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate-internal modules a file's `use` and `mod` lines reach.
fn imports(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let code = code(text);
    // A `use` statement may span lines: take it up to its `;`.
    let mut rest = code.as_str();
    while let Some(i) = rest.find("use ") {
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let stmt: String = after[..end].split_whitespace().collect();
        rest = &after[end..];
        let stmt = stmt.trim_start_matches("pub(crate)").to_string();
        let (head, tail) = match stmt.split_once('{') {
            Some((h, t)) => (h.to_string(), t.to_string()),
            None => (stmt.clone(), String::new()),
        };
        let mut path: Vec<String> = head
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let is_mod = file_of(module).is_some_and(|f| f.ends_with("mod.rs"));
        match path.first().map(String::as_str) {
            Some("crate") => {
                path.remove(0);
            }
            Some("super") => {
                let mut m = module.to_vec();
                while path.first().map(String::as_str) == Some("super") {
                    path.remove(0);
                    // In a mod.rs, `super` is the parent of the directory's module.
                    if !is_mod || m.len() > 1 {
                        m.pop();
                    }
                }
                m.extend(path);
                path = m;
            }
            Some("self") => {
                path.remove(0);
                let mut m = module.to_vec();
                m.extend(path);
                path = m;
            }
            _ => continue,
        }
        // Each item in braces may be a module of its own.
        let items: Vec<String> = tail
            .split([',', '}', '{'])
            .map(|s| s.split("::").next().unwrap_or("").to_string())
            .filter(|s| !s.is_empty() && s != "self")
            .collect();
        out.push(path.clone());
        for item in items {
            let mut p = path.clone();
            p.push(item);
            out.push(p);
        }
    }
    for line in code.lines() {
        let l = line.trim();
        if let Some(name) = l
            .strip_prefix("mod ")
            .or_else(|| l.strip_prefix("pub mod "))
            .and_then(|n| n.strip_suffix(';'))
        {
            let mut p = module.to_vec();
            p.push(name.to_string());
            out.push(p);
        }
    }
    out
}

/// The longest prefix of `path` that is a module with a file.
fn module_of(path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| file_of(m).is_some())
}

#[test]
fn the_cores_and_what_they_import_do_no_io() {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<Vec<String>> = CORES
        .iter()
        .map(|c| c.split("::").map(String::from).collect())
        .collect();
    let mut problems = Vec::new();
    while let Some(m) = queue.pop_front() {
        let Some(m) = module_of(&m) else { continue };
        if !seen.insert(m.clone()) {
            continue;
        }
        let file = file_of(&m).expect("a module with a file");
        let text = std::fs::read_to_string(&file).expect("readable source");
        // Unit tests inside a core may use what they like.
        let text = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
        let code = code(&text);
        for word in FORBIDDEN {
            if code.contains(word) {
                problems.push(format!("{} mentions {word}", file.display()));
            }
        }
        if code.contains("libc::")
            && code
                .split("libc::")
                .skip(1)
                .any(|s| s.starts_with(|c: char| c.is_ascii_lowercase()))
        {
            problems.push(format!("{} calls libc", file.display()));
        }
        queue.extend(imports(&m, &text));
    }
    assert!(
        seen.len() >= CORES.len(),
        "the cores were not found: {seen:?}"
    );
    assert!(
        problems.is_empty(),
        "I/O in a core or its imports:\n{}\n(modules checked: {:?})",
        problems.join("\n"),
        seen
    );
    println!("checked {} modules: {:?}", seen.len(), seen);
}
