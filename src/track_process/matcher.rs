//! Whether a process is one a `vrrp_track_process` block counts: pure, on
//! the bytes of /proc/PID/comm and /proc/PID/cmdline.
//!
//! As keepalived 2.2.7: without `full_command` the process name (comm) must
//! equal `process`; with it (implied by parameters or `param_match`) argv[0]
//! must equal `process` and the parameters follow `param_match`.
//!
//! Where keepalived misses (its issues #1190, #1265, #2667, the last still
//! open): users write the command line as `ps` and `pgrep -f` show it, with
//! the words grouped differently from argv (`process "/usr/sbin/vsftpd
//! /etc/vsftpd.conf"`, or `process /usr/sbin/nginx "-c /etc/nginx.conf"`)
//! and keepalived never matches. Here the words are also compared as that
//! command line: argv joined by single spaces against the configured words
//! joined the same way, with the same `param_match` meaning on word
//! boundaries. A process matching either way counts.

use crate::config::model::{ParamMatch, TrackProcess};

/// argv from /proc/PID/cmdline (NUL-separated, usually NUL-terminated).
/// Empty for kernel threads and zombies, which never match a full command.
pub fn argv(cmdline: &[u8]) -> Vec<&[u8]> {
    let body = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0).collect()
}

/// The process name from /proc/PID/comm (without its newline).
pub fn comm(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\n").unwrap_or(raw)
}

/// Whether `def` counts the process with this comm and cmdline. `cmdline`
/// is None when it could not be read (then only a comm match can succeed).
pub fn matches(def: &TrackProcess, comm_raw: &[u8], cmdline: Option<&[u8]>) -> bool {
    if !def.full_command {
        return comm(comm_raw) == def.process.as_bytes();
    }
    let Some(cmdline) = cmdline else {
        return false;
    };
    let args = argv(cmdline);
    if args.is_empty() {
        return false;
    }
    by_words(def, &args) || by_line(def, &args)
}

/// keepalived's rule: argv[0] is `process`, the parameters per param_match.
fn by_words(def: &TrackProcess, args: &[&[u8]]) -> bool {
    if args[0] != def.process.as_bytes() {
        return false;
    }
    let have = &args[1..];
    let want: Vec<&[u8]> = def.params.iter().map(|p| p.as_bytes()).collect();
    match def.param_match {
        ParamMatch::None => true,
        ParamMatch::Exact => have == want.as_slice(),
        ParamMatch::Partial => have.len() >= want.len() && have[..want.len()] == want[..],
        ParamMatch::Initial => match want.split_last() {
            None => true,
            Some((last, init)) => {
                have.len() >= want.len()
                    && have[..init.len()] == *init
                    && have[init.len()].starts_with(last)
            }
        },
    }
}

/// The same on the command line as `ps` shows it (argv joined by spaces).
fn by_line(def: &TrackProcess, args: &[&[u8]]) -> bool {
    let line = args.join(&b' ');
    let mut want = def.process.as_bytes().to_vec();
    for p in &def.params {
        want.push(b' ');
        want.extend_from_slice(p.as_bytes());
    }
    let word_prefix =
        line.len() > want.len() && line.starts_with(&want) && line[want.len()] == b' ';
    match def.param_match {
        ParamMatch::Exact => line == want,
        ParamMatch::None | ParamMatch::Partial => line == want || word_prefix,
        ParamMatch::Initial => line.starts_with(&want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Timer;

    fn def(process: &str, params: &[&str], m: ParamMatch, full: bool) -> TrackProcess {
        TrackProcess {
            name: "t".into(),
            process: process.into(),
            params: params.iter().map(|s| s.to_string()).collect(),
            param_match: m,
            full_command: full,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Timer::default(),
            terminate_delay: Timer::default(),
            weight: 0,
            reverse: false,
        }
    }

    #[test]
    fn the_name_is_comm_unless_full_command() {
        let d = def("sleep", &[], ParamMatch::None, false);
        assert!(matches(&d, b"sleep\n", None));
        assert!(!matches(&d, b"sleepy\n", None));
        assert!(
            !matches(&d, b"slee\n", Some(b"sleep\0")),
            "no pgrep-like regex"
        );
        let d = def("/bin/sleep", &[], ParamMatch::None, true);
        assert!(matches(&d, b"sleep\n", Some(b"/bin/sleep\x0010\0")));
        assert!(!matches(&d, b"sleep\n", Some(b"sleep\x0010\0")));
        assert!(
            !matches(&d, b"sleep\n", Some(b"")),
            "kernel threads, zombies"
        );
        assert!(!matches(&d, b"sleep\n", None));
    }

    #[test]
    fn param_match_as_keepalived() {
        use ParamMatch::*;
        let cmd = b"sleep\x00100\x00abc\0";
        let m = |p: &[&str], k| matches(&def("sleep", p, k, true), b"sleep", Some(cmd));
        assert!(m(&["100", "abc"], Exact));
        assert!(!m(&["100"], Exact));
        assert!(!m(&[], Exact), "bare param_match: no parameters at all");
        assert!(matches(
            &def("sleep", &[], Exact, true),
            b"",
            Some(b"sleep\0")
        ));
        assert!(m(&["100"], Partial));
        assert!(!m(&["10"], Partial));
        assert!(m(&["10"], Initial));
        assert!(m(&["100", "ab"], Initial));
        assert!(!m(&["100", "abd"], Initial));
        assert!(!m(&["100", "abc", "x"], Partial));
        assert!(m(&[], Partial));
    }

    #[test]
    fn full_command_also_matches_the_command_line_as_ps_shows_it() {
        use ParamMatch::*;
        let cmd = b"/usr/sbin/vsftpd\0/etc/vsftpd/a.conf\0";
        // keepalived issue 1190/1265: the whole line as one word
        let d = def("/usr/sbin/vsftpd /etc/vsftpd/a.conf", &[], None, true);
        assert!(matches(&d, b"vsftpd", Some(cmd)));
        let d = def("/usr/sbin/vsftpd /etc/vsftpd/b.conf", &[], None, true);
        assert!(!matches(&d, b"vsftpd", Some(cmd)));
        // issue 2667: `-c FILE` quoted as one parameter
        let nginx = b"/usr/sbin/nginx\0-c\0/etc/nginx/web.conf\0";
        let d = def("/usr/sbin/nginx", &["-c /etc/nginx/web.conf"], Exact, true);
        assert!(matches(&d, b"nginx", Some(nginx)));
        let d = def("/usr/sbin/nginx", &["-c /etc/nginx/bu.conf"], Exact, true);
        assert!(!matches(&d, b"nginx", Some(nginx)));
        // word boundaries hold: a prefix of a word is not a word
        let d = def("/usr/sbin/nginx -c /etc/nginx/web", &[], None, true);
        assert!(!matches(&d, b"nginx", Some(nginx)));
        let d = def("/usr/sbin/nginx -c /etc/nginx/web", &[], Initial, true);
        assert!(matches(&d, b"nginx", Some(nginx)));
        // "/tmp/a b" quoted: one argv[0] with a space, as keepalived documents
        let d = def("/tmp/a b", &["x"], Exact, true);
        assert!(matches(&d, b"a b", Some(b"/tmp/a b\0x\0")));
        assert!(!matches(&d, b"a b", Some(b"/tmp/a b\0y\0")));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let d = def("a", &["b", "c"], ParamMatch::Initial, true);
        for raw in [
            &b""[..],
            b"\0",
            b"\0\0\0",
            b"a",
            b"a\0",
            b"a\0\0",
            b"\xff\0b\0",
        ] {
            let _ = matches(&d, raw, Some(raw));
            let _ = argv(raw);
        }
    }
}
