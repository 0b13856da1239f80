//! The script runner (src/script) against real processes: exit codes,
//! timeouts (SIGTERM, then SIGKILL), process-group cleanup, argument
//! splitting, users, script_security.
//!
//! Tests that switch users or need root-owned files skip with a reason when
//! not run as root, except under CI=true, where they fail.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipvsdir::config::model::{Script, ScriptUser};
use ipvsdir::script::{
    self, DEFAULT_SCRIPT_USER, Finished, Outcome, RunOptions, ScriptSpec, check, check_security,
    execute, run, split_command,
};
use nix::unistd::{User, geteuid};

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scripts")
        .join(name)
}

fn fixture_cmd(name: &str) -> String {
    shell_words::quote(&fixture(name).to_string_lossy()).into_owned()
}

fn is_root() -> bool {
    geteuid().is_root()
}

/// True when root; otherwise says why the test is skipped (and fails under
/// CI=true, where tests run as root).
fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root, and CI=true runs as root");
    }
    eprintln!("SKIP {test}: needs root (switches users / needs root-owned files)");
    false
}

/// Options that do not depend on whether `keepalived_script` exists here:
/// scripts run as the test's own user.
fn as_me() -> RunOptions {
    let me = User::from_uid(geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the test's own user has a name");
    RunOptions {
        default_user: Some(ScriptUser {
            user: me,
            group: None,
        }),
        ..RunOptions::default()
    }
}

fn with_timeout(secs: f64) -> RunOptions {
    RunOptions {
        timeout: Some(Duration::from_secs_f64(secs)),
        ..as_me()
    }
}

/// A temporary directory directly under /tmp (root-owned and sticky, hence
/// safe for script_security), with `mode`.
fn tmpdir(mode: u32) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("ipvsdir-script-")
        .tempdir_in("/tmp")
        .expect("tempdir in /tmp");
    chmod(d.path(), mode);
    d
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(p: &Path, uid: Option<u32>, gid: Option<u32>) {
    std::os::unix::fs::chown(p, uid, gid).expect("chown");
}

/// A copy of fixture `name` in `dir` with `mode`.
fn copy_fixture(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let to = dir.join(name);
    fs::copy(fixture(name), &to).expect("copy fixture");
    chmod(&to, mode);
    to
}

fn read_pid(dir: &Path, name: &str) -> i32 {
    let text = fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{name} {text:?}: {e}"))
}

/// (state, ppid, pgrp) of a process, from /proc; None when it is gone.
fn proc_stat(pid: i32) -> Option<(String, i32, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((
        f.first()?.to_string(),
        f.get(1)?.parse().ok()?,
        f.get(2)?.parse().ok()?,
    ))
}

/// The process is dead: gone, or a zombie that is not ours (init reaps it).
fn assert_dead(pid: i32, what: &str) {
    if let Some((state, ppid, _)) = proc_stat(pid) {
        assert!(
            state == "Z" || state == "X",
            "{what} (pid {pid}) is still alive, state {state}"
        );
        assert_ne!(
            ppid,
            std::process::id() as i32,
            "{what} (pid {pid}) is an unreaped zombie of ours"
        );
    }
}

/// No live process has process group `pgid`.
fn assert_group_gone(pgid: i32) {
    let mut alive = Vec::new();
    for e in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((state, _, pgrp)) = proc_stat(pid)
            && pgrp == pgid
            && state != "Z"
            && state != "X"
        {
            alive.push((pid, state));
        }
    }
    assert!(
        alive.is_empty(),
        "group {pgid} still has live processes: {alive:?}"
    );
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

// ---------------------------------------------------------------- outcomes

#[tokio::test]
async fn exit_codes_are_reported() {
    for (name, code, described) in [
        ("exit0.sh", 0, "exited 0"),
        ("exit1.sh", 1, "failed (exit 1)"),
        ("exit7.sh", 7, "failed (exit 7)"),
    ] {
        let out = run(fixture_cmd(name).as_str(), &as_me()).await;
        assert_eq!(out, Outcome::Exited(code), "{name}");
        assert_eq!(out.describe(), described);
        assert_eq!(out.success(), code == 0);
    }
}

#[tokio::test]
async fn killed_by_a_signal_is_signalled() {
    let out = run(fixture_cmd("kill_self.sh").as_str(), &as_me()).await;
    assert_eq!(out, Outcome::Signalled(SIGKILL));
    assert_eq!(out.describe(), "killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn a_config_script_runs_as_configured() {
    // The config model's Script is what the checkers and notify hooks pass.
    let s = Script {
        command: fixture_cmd("exit7.sh"),
        user: None,
    };
    assert_eq!(run(&s, &as_me()).await, Outcome::Exited(7));
}

#[tokio::test]
async fn a_file_without_shebang_is_run_by_sh() {
    // Debian's keepalived 2.2.7 (no libmagic) counts this as a success; a
    // shell (and keepalived with libmagic) runs it.
    assert_eq!(
        run(fixture_cmd("noshebang.sh").as_str(), &as_me()).await,
        Outcome::Exited(3)
    );
}

// ---------------------------------------------------------------- timeouts

#[tokio::test]
async fn a_script_past_its_timeout_gets_sigterm() {
    let t0 = Instant::now();
    let done = execute(fixture_cmd("sleep30.sh").as_str(), &with_timeout(0.5)).await;
    let took = t0.elapsed();
    assert_eq!(
        done.outcome,
        Outcome::TimedOut {
            after: Duration::from_millis(500),
            killed_with: SIGTERM
        }
    );
    assert_eq!(done.outcome.describe(), "timed out after 0.5 s (SIGTERM)");
    assert!(
        took >= Duration::from_millis(500),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(3), "returned after {took:?}");
    let pid = done.pid.expect("started") as i32;
    assert_dead(pid, "the script");
    assert_group_gone(pid);
}

#[tokio::test]
async fn a_script_ignoring_sigterm_gets_sigkill_2s_later() {
    let t0 = Instant::now();
    let done = execute(fixture_cmd("ignore_term.sh").as_str(), &with_timeout(0.5)).await;
    let took = t0.elapsed();
    assert_eq!(
        done.outcome,
        Outcome::TimedOut {
            after: Duration::from_millis(500),
            killed_with: SIGKILL
        }
    );
    assert_eq!(
        done.outcome.describe(),
        "timed out after 0.5 s (SIGTERM, then SIGKILL)"
    );
    assert!(
        took >= Duration::from_millis(500) + script::KILL_GRACE,
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(8), "returned after {took:?}");
    let pid = done.pid.expect("started") as i32;
    assert_dead(pid, "the script");
    assert_group_gone(pid);
}

#[tokio::test]
async fn scripts_time_out_independently() {
    let short = with_timeout(0.3);
    let none = as_me();
    let (sleep, exit7) = (fixture_cmd("sleep30.sh"), fixture_cmd("exit7.sh"));
    let (a, b, c) = tokio::join!(
        execute(sleep.as_str(), &short),
        execute(exit7.as_str(), &none),
        execute(sleep.as_str(), &short),
    );
    for d in [&a, &c] {
        assert!(
            matches!(d.outcome, Outcome::TimedOut { .. }),
            "{:?}",
            d.outcome
        );
        assert_group_gone(d.pid.expect("started") as i32);
    }
    assert_eq!(b.outcome, Outcome::Exited(7));
}

// ------------------------------------------------------- process groups

#[tokio::test]
async fn a_grandchild_left_behind_after_exit_is_killed() {
    let dir = tmpdir(0o755);
    let cmd = format!(
        "{} {}",
        fixture_cmd("spawn_and_exit.sh"),
        dir.path().display()
    );
    let done = execute(cmd.as_str(), &as_me()).await;
    assert_eq!(done.outcome, Outcome::Exited(0));
    let leader = read_pid(dir.path(), "leader");
    let grandchild = read_pid(dir.path(), "grandchild");
    assert_eq!(done.pid, Some(leader as u32));
    assert_dead(grandchild, "the grandchild (sleep 100 &)");
    assert_dead(leader, "the script");
    assert_group_gone(leader);
}

#[tokio::test]
async fn a_grandchild_outliving_a_timeout_is_killed() {
    let dir = tmpdir(0o755);
    let cmd = format!(
        "{} {}",
        fixture_cmd("spawn_and_hang.sh"),
        dir.path().display()
    );
    let done = execute(cmd.as_str(), &with_timeout(0.5)).await;
    assert!(
        matches!(done.outcome, Outcome::TimedOut { .. }),
        "{:?}",
        done.outcome
    );
    let leader = read_pid(dir.path(), "leader");
    assert_dead(read_pid(dir.path(), "grandchild"), "the grandchild");
    assert_group_gone(leader);
}

#[tokio::test]
async fn a_grandchild_ignoring_sigterm_dies_with_the_leader() {
    // The leader dies of SIGTERM at once; the group's leftovers get SIGKILL
    // right then, not after the 2 s grace.
    let dir = tmpdir(0o755);
    let cmd = format!(
        "{} {}",
        fixture_cmd("grandchild_ignores_term.sh"),
        dir.path().display()
    );
    let t0 = Instant::now();
    let done = execute(cmd.as_str(), &with_timeout(0.5)).await;
    let took = t0.elapsed();
    assert_eq!(
        done.outcome,
        Outcome::TimedOut {
            after: Duration::from_millis(500),
            killed_with: SIGTERM
        }
    );
    assert!(
        took < Duration::from_millis(500) + script::KILL_GRACE,
        "took {took:?}"
    );
    assert_dead(read_pid(dir.path(), "grandchild"), "the grandchild");
    assert_group_gone(read_pid(dir.path(), "leader"));
}

#[tokio::test]
async fn a_setsid_grandchild_escapes_the_group_kill() {
    // The documented limit: a descendant that makes its own session leaves
    // the process group, so the group kill cannot reach it.
    let dir = tmpdir(0o755);
    let cmd = format!(
        "{} {}",
        fixture_cmd("escape_setsid.sh"),
        dir.path().display()
    );
    let done = execute(cmd.as_str(), &as_me()).await;
    assert_eq!(done.outcome, Outcome::Exited(0));
    let escaped = read_pid(dir.path(), "grandchild");
    let alive = proc_stat(escaped).is_some_and(|(s, _, _)| s != "Z");
    kill(escaped);
    assert!(alive, "the setsid grandchild was expected to survive");
    assert_group_gone(done.pid.expect("started") as i32);
}

#[tokio::test]
async fn a_cancelled_run_stops_and_reaps_its_script() {
    let dir = tmpdir(0o755);
    let cmd = format!(
        "{} {}",
        fixture_cmd("spawn_and_hang.sh"),
        dir.path().display()
    );
    let opts = as_me(); // no timeout of its own
    let cancelled =
        tokio::time::timeout(Duration::from_millis(300), execute(cmd.as_str(), &opts)).await;
    assert!(
        cancelled.is_err(),
        "the script was expected to outlive 300 ms"
    );
    let leader = read_pid(dir.path(), "leader");
    let grandchild = read_pid(dir.path(), "grandchild");
    // The stopping happens on a background thread: give it time.
    let until = Instant::now() + Duration::from_secs(5);
    let reaped = |pid| proc_stat(pid).is_none_or(|(_, ppid, _)| ppid != std::process::id() as i32);
    while Instant::now() < until
        && !(reaped(leader) && proc_stat(grandchild).is_none_or(|(s, _, _)| s == "Z"))
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_dead(leader, "the script");
    assert_dead(grandchild, "the grandchild");
    assert_group_gone(leader);
}

#[tokio::test]
async fn the_child_gets_its_own_group_devnull_stdin_and_root_dir() {
    let dir = tmpdir(0o755);
    let cmd = format!("{} {}", fixture_cmd("procinfo.sh"), dir.path().display());
    let opts = RunOptions {
        env: vec![("IPVSDIR_TEST_VAR".into(), "a value".into())],
        ..as_me()
    };
    let done = execute(cmd.as_str(), &opts).await;
    assert_eq!(done.outcome, Outcome::Exited(0));
    let read = |n: &str| {
        fs::read_to_string(dir.path().join(n))
            .expect(n)
            .trim()
            .to_string()
    };
    let pid = read("pid");
    assert_eq!(read("pgid"), pid, "the script leads its own process group");
    assert_eq!(done.pid.map(|p| p.to_string()), Some(pid));
    assert_ne!(
        read("pgid"),
        nix::unistd::getpgrp().as_raw().to_string(),
        "not in the daemon's group"
    );
    assert_eq!(read("stdin"), "/dev/null");
    assert_eq!(read("cwd"), "/");
    assert_eq!(read("env"), "a value");
}

// ------------------------------------------------------- output capture

#[tokio::test]
async fn output_is_discarded_unless_captured() {
    let cmd = fixture_cmd("print_both.sh");
    let plain = execute(cmd.as_str(), &as_me()).await;
    assert_eq!(plain.outcome, Outcome::Exited(0));
    assert_eq!(plain.output, "");
    let opts = RunOptions {
        capture_output: 1000,
        ..as_me()
    };
    let captured = execute(cmd.as_str(), &opts).await;
    assert_eq!(captured.output, "out\nerr\n");
    assert!(!captured.output_truncated);
}

#[tokio::test]
async fn captured_output_is_bounded() {
    let opts = RunOptions {
        capture_output: 100,
        ..as_me()
    };
    let done = execute(fixture_cmd("chatty.sh").as_str(), &opts).await;
    assert_eq!(done.outcome, Outcome::Exited(0));
    assert_eq!(done.output.len(), 100);
    assert!(done.output.starts_with("line 0\nline 1\n"));
    assert!(done.output_truncated);
}

// ------------------------------------------------------- command lines

#[tokio::test]
async fn quoted_arguments_reach_the_script_intact() {
    let dir = tmpdir(0o755);
    let out = dir.path().join("args");
    // As the config lexer hands it over (outer quotes and escapes resolved).
    let cmd = format!(
        r#"{} {} 'a b' "c d" e\tf x"y z"w '' "it's" 'g\h'"#,
        fixture_cmd("args.sh"),
        out.display()
    );
    let extra = vec![
        "INSTANCE".to_string(),
        "VI 1".to_string(),
        "MASTER".to_string(),
        "100".to_string(),
    ];
    let spec = ScriptSpec::new(&cmd).args(&extra);
    assert_eq!(run(spec, &as_me()).await, Outcome::Exited(0));
    let got = fs::read_to_string(&out).expect("args written");
    assert_eq!(
        got,
        "[a b]\n[c d]\n[e\tf]\n[xy zw]\n[]\n[it's]\n[gh]\n[INSTANCE]\n[VI 1]\n[MASTER]\n[100]\n"
    );
}

#[tokio::test]
async fn no_shell_interprets_the_command() {
    // keepalived 2.2.7 execs directly too: `;`, `$HOME` and `exit` are words.
    let opts = RunOptions {
        capture_output: 1000,
        ..as_me()
    };
    let done = execute("/bin/echo $HOME; exit 1", &opts).await;
    assert_eq!(done.outcome, Outcome::Exited(0));
    assert_eq!(done.output, "$HOME; exit 1\n");
}

#[tokio::test]
async fn the_redirect_form_tests_a_file_with_sh() {
    let dir = tmpdir(0o755);
    let there = dir.path().join("ready");
    fs::write(&there, "").expect("write");
    let ok = format!("<{}", there.display());
    assert_eq!(run(ok.as_str(), &as_me()).await, Outcome::Exited(0));
    let missing = format!("<{}", dir.path().join("nope").display());
    let out = run(missing.as_str(), &as_me()).await;
    assert!(matches!(out, Outcome::Exited(c) if c != 0), "{out:?}");
}

#[tokio::test]
async fn a_bare_name_is_found_in_path_with_a_warning() {
    let checked = check(ScriptSpec::new("true"), &as_me()).expect("true is in PATH");
    assert!(checked.program.is_absolute());
    assert!(
        checked
            .warnings
            .iter()
            .any(|w| w.starts_with("script 'true' was found by a PATH search at '")),
        "{:?}",
        checked.warnings
    );
    assert_eq!(run("true", &as_me()).await, Outcome::Exited(0));
}

#[tokio::test]
async fn bad_command_lines_are_refused() {
    for (cmd, why) in [
        ("", "the command is empty"),
        ("   ", "the command is empty"),
        ("'' x", "the command is empty"),
        (
            "/bin/true 'oops",
            "missing closing ' quote in the command: /bin/true 'oops",
        ),
        (
            "/bin/true oops\\",
            "the command ends with a lone backslash: /bin/true oops\\",
        ),
    ] {
        assert_eq!(
            run(cmd, &as_me()).await,
            Outcome::Refused(why.to_string()),
            "{cmd:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_script_cannot_start() {
    let dir = tmpdir(0o755);
    let p = dir.path().join("missing.sh");
    let out = run(p.to_str().expect("utf-8"), &as_me()).await;
    assert_eq!(
        out,
        Outcome::SpawnFailed(format!(
            "script '{}' cannot be accessed: No such file or directory (os error 2)",
            p.display()
        ))
    );
    assert!(out.describe().starts_with("could not start: script '"));
    let out = run("ipvsdir-no-such-program-anywhere", &as_me()).await;
    assert!(
        matches!(&out, Outcome::SpawnFailed(w) if w.starts_with("script 'ipvsdir-no-such-program-anywhere' was not found in PATH (")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_script_that_is_not_executable_is_refused() {
    let dir = tmpdir(0o755);
    let p = copy_fixture(dir.path(), "exit0.sh", 0o644);
    let out = run(p.to_str().expect("utf-8"), &as_me()).await;
    let Outcome::Refused(why) = &out else {
        panic!("{out:?}")
    };
    assert!(
        why.starts_with(&format!(
            "script '{}' is not executable by user '",
            p.display()
        )),
        "{why}"
    );
    assert!(
        why.ends_with(&format!("chmod 755 {}", p.display())),
        "{why}"
    );
}

// ------------------------------------------------------------- users

#[tokio::test]
async fn an_unknown_user_or_group_is_refused() {
    let nobody_user = ScriptUser {
        user: "ipvsdir-no-such-user".into(),
        group: None,
    };
    let out = run(
        ScriptSpec::new(&fixture_cmd("exit0.sh")).user(Some(&nobody_user)),
        &as_me(),
    )
    .await;
    assert_eq!(
        out,
        Outcome::Refused(
            "user 'ipvsdir-no-such-user' does not exist (the script's user) — create it or \
             name an existing user"
                .into()
        )
    );
    // The same through global_defs script_user.
    let opts = RunOptions {
        default_user: Some(nobody_user),
        ..RunOptions::default()
    };
    let out = run(fixture_cmd("exit0.sh").as_str(), &opts).await;
    assert!(
        matches!(&out, Outcome::Refused(w) if w.contains("(global_defs script_user)")),
        "{out:?}"
    );
    let me = as_me().default_user.expect("set");
    let bad_group = ScriptUser {
        user: me.user,
        group: Some("ipvsdir-no-such-group".into()),
    };
    let out = run(
        ScriptSpec::new(&fixture_cmd("exit0.sh")).user(Some(&bad_group)),
        &as_me(),
    )
    .await;
    assert_eq!(
        out,
        Outcome::Refused(
            "group 'ipvsdir-no-such-group' does not exist (the script's user) — create it or \
             name an existing group"
                .into()
        )
    );
}

#[tokio::test]
async fn the_default_user_is_keepalived_script_else_the_daemon() {
    let exists = User::from_name(DEFAULT_SCRIPT_USER).ok().flatten();
    let result = check(
        ScriptSpec::new(&fixture_cmd("exit0.sh")),
        &RunOptions::default(),
    );
    match (exists, is_root()) {
        (Some(u), _) => {
            let c = result.expect("checked");
            assert_eq!(c.run_as.uid, u.uid.as_raw());
        }
        (None, _) => {
            let c = result.expect("checked");
            assert_eq!(c.run_as.uid, geteuid().as_raw());
            assert!(
                c.warnings.iter().any(|w| w.starts_with(
                    "the default script user 'keepalived_script' does not exist, so the script runs as '"
                )),
                "{:?}",
                c.warnings
            );
            // With script_security keepalived 2.2.7 refuses instead.
            let secure = RunOptions {
                script_security: true,
                ..RunOptions::default()
            };
            let out = run(fixture_cmd("exit0.sh").as_str(), &secure).await;
            assert!(
                matches!(&out, Outcome::Refused(w) if w.starts_with("no user to run the script as: enable_script_security is set, no script_user is configured and the default user 'keepalived_script' does not exist")),
                "{out:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_script_runs_as_its_user() {
    if !root_or_skip("a_script_runs_as_its_user") {
        return;
    }
    let nobody = User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody");
    let scripts = tmpdir(0o755);
    let prog = copy_fixture(scripts.path(), "whoami.sh", 0o755);
    let out = tmpdir(0o1777);
    let cmd = format!("{} {}", prog.display(), out.path().display());
    let read = |n: &str| {
        fs::read_to_string(out.path().join(n))
            .expect(n)
            .trim()
            .to_string()
    };

    let user = ScriptUser {
        user: "nobody".into(),
        group: None,
    };
    let got = run(
        ScriptSpec::new(&cmd).user(Some(&user)),
        &RunOptions::default(),
    )
    .await;
    assert_eq!(got, Outcome::Exited(0));
    assert_eq!(read("uid"), nobody.uid.to_string());
    assert_eq!(read("gid"), nobody.gid.to_string());
    // Root's supplementary groups are gone: only the primary group is left.
    assert_eq!(read("groups"), nobody.gid.to_string());

    // `user nobody daemon`: the named group.
    let daemon = nix::unistd::Group::from_name("daemon")
        .ok()
        .flatten()
        .expect("group daemon");
    let user = ScriptUser {
        user: "nobody".into(),
        group: Some("daemon".into()),
    };
    let got = run(
        ScriptSpec::new(&cmd).user(Some(&user)),
        &RunOptions::default(),
    )
    .await;
    assert_eq!(got, Outcome::Exited(0));
    assert_eq!(read("uid"), nobody.uid.to_string());
    assert_eq!(read("gid"), daemon.gid.to_string());

    // Global script_user applies when the script names none.
    let opts = RunOptions {
        default_user: Some(ScriptUser {
            user: "nobody".into(),
            group: None,
        }),
        ..RunOptions::default()
    };
    assert_eq!(run(cmd.as_str(), &opts).await, Outcome::Exited(0));
    assert_eq!(read("uid"), nobody.uid.to_string());
}

#[tokio::test]
async fn without_root_only_our_own_user_is_possible() {
    if is_root() {
        eprintln!("SKIP without_root_only_our_own_user_is_possible: runs as root");
        return;
    }
    let user = ScriptUser {
        user: "root".into(),
        group: None,
    };
    let out = run(
        ScriptSpec::new(&fixture_cmd("exit0.sh")).user(Some(&user)),
        &as_me(),
    )
    .await;
    assert!(
        matches!(&out, Outcome::Refused(w) if w.starts_with("cannot run the script as user 'root' (uid:gid 0:0): ipvsdir runs as uid ")),
        "{out:?}"
    );
}

// ------------------------------------------------------- script_security

fn root_opts(security: bool) -> RunOptions {
    RunOptions {
        default_user: Some(ScriptUser {
            user: "root".into(),
            group: None,
        }),
        script_security: security,
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn a_world_writable_script_is_refused_with_script_security() {
    if !root_or_skip("a_world_writable_script_is_refused_with_script_security") {
        return;
    }
    let dir = tmpdir(0o755);
    let p = copy_fixture(dir.path(), "exit0.sh", 0o777);
    let cmd = p.to_str().expect("utf-8");
    let unsafe_msg = format!(
        "Unsafe permissions found for script '{0}': it is writable by a non-root user (mode \
         0777) — chmod go-w {0}",
        p.display()
    );
    assert_eq!(
        run(cmd, &root_opts(true)).await,
        Outcome::Refused(format!(
            "{unsafe_msg} (not run as root: enable_script_security is set)"
        ))
    );
    // Without script_security it runs, and check() has the warning to log.
    assert_eq!(run(cmd, &root_opts(false)).await, Outcome::Exited(0));
    let c = check(ScriptSpec::new(cmd), &root_opts(false)).expect("checked");
    assert_eq!(
        c.warnings,
        [format!(
            "{unsafe_msg} (it runs as root anyway: enable_script_security is not set)"
        )]
    );
    // 0666 + x for the owner only: group/other write still counts.
    chmod(&p, 0o722);
    assert!(matches!(
        run(cmd, &root_opts(true)).await,
        Outcome::Refused(_)
    ));
}

#[tokio::test]
async fn a_writable_directory_on_the_path_is_unsafe_unless_sticky() {
    if !root_or_skip("a_writable_directory_on_the_path_is_unsafe_unless_sticky") {
        return;
    }
    let top = tmpdir(0o755);
    let open = top.path().join("open");
    fs::create_dir(&open).expect("mkdir");
    chmod(&open, 0o777);
    let p = copy_fixture(&open, "exit0.sh", 0o755);
    assert_eq!(
        run(p.to_str().expect("utf-8"), &root_opts(true)).await,
        Outcome::Refused(format!(
            "Unsafe permissions found for script '{}': its directory '{1}' is writable by a \
             non-root user (mode 0777) — chmod go-w {1} (not run as root: \
             enable_script_security is set)",
            p.display(),
            open.display()
        ))
    );
    // The sticky bit (like /tmp itself, which every test path crosses) makes
    // it safe: nobody else can replace root's file in it.
    chmod(&open, 0o1777);
    assert_eq!(
        run(p.to_str().expect("utf-8"), &root_opts(true)).await,
        Outcome::Exited(0)
    );
    let c = check(
        ScriptSpec::new(p.to_str().expect("utf-8")),
        &root_opts(false),
    )
    .expect("checked");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[tokio::test]
async fn group_write_is_unsafe_only_for_a_non_root_group() {
    if !root_or_skip("group_write_is_unsafe_only_for_a_non_root_group") {
        return;
    }
    let dir = tmpdir(0o755);
    let p = copy_fixture(dir.path(), "exit0.sh", 0o775);
    let cmd = p.to_str().expect("utf-8");
    chown(&p, Some(0), Some(0));
    assert_eq!(run(cmd, &root_opts(true)).await, Outcome::Exited(0));
    chown(&p, Some(0), Some(65534));
    assert!(
        matches!(run(cmd, &root_opts(true)).await, Outcome::Refused(w) if w.contains("it is writable by a non-root user (mode 0775)")),
    );
}

#[tokio::test]
async fn a_script_owned_by_another_user_is_unsafe() {
    if !root_or_skip("a_script_owned_by_another_user_is_unsafe") {
        return;
    }
    let dir = tmpdir(0o755);
    let p = copy_fixture(dir.path(), "exit0.sh", 0o755);
    chown(&p, Some(65534), None);
    assert_eq!(
        run(p.to_str().expect("utf-8"), &root_opts(true)).await,
        Outcome::Refused(format!(
            "Unsafe permissions found for script '{0}': it is owned by uid 65534, not root — \
             chown root {0} (not run as root: enable_script_security is set)",
            p.display()
        ))
    );
}

#[tokio::test]
async fn a_symlink_to_an_unsafe_script_is_unsafe() {
    if !root_or_skip("a_symlink_to_an_unsafe_script_is_unsafe") {
        return;
    }
    let safe = tmpdir(0o755);
    let open = tmpdir(0o777);
    let target = copy_fixture(open.path(), "exit0.sh", 0o755);
    let link = safe.path().join("chk.sh");
    symlink(&target, &link).expect("symlink");
    let out = run(link.to_str().expect("utf-8"), &root_opts(true)).await;
    assert_eq!(
        out,
        Outcome::Refused(format!(
            "Unsafe permissions found for script '{}': its directory '{1}' is writable by a \
             non-root user (mode 0777) — chmod go-w {1} (not run as root: \
             enable_script_security is set)",
            link.display(),
            open.path().display()
        ))
    );
}

#[tokio::test]
async fn an_unsafe_script_run_as_another_user_needs_no_protection() {
    if !root_or_skip("an_unsafe_script_run_as_another_user_needs_no_protection") {
        return;
    }
    // keepalived only protects scripts that run as root.
    let dir = tmpdir(0o755);
    let p = copy_fixture(dir.path(), "exit0.sh", 0o777);
    let nobody = ScriptUser {
        user: "nobody".into(),
        group: None,
    };
    let spec = ScriptSpec::new(p.to_str().expect("utf-8")).user(Some(&nobody));
    assert_eq!(run(spec, &root_opts(true)).await, Outcome::Exited(0));
}

#[test]
fn check_security_names_the_problem() {
    let dir = tmpdir(0o755);
    let p = dir.path().join("x.sh");
    fs::write(&p, "#!/bin/sh\n").expect("write");
    chmod(&p, 0o666);
    let why = check_security(&p).expect_err("unsafe");
    let prefix = format!("Unsafe permissions found for script '{}': ", p.display());
    assert!(why.starts_with(&prefix), "{why}");
    if is_root() {
        assert_eq!(
            why,
            format!(
                "{prefix}it is writable by a non-root user (mode 0666) — chmod go-w {}",
                p.display()
            )
        );
        chmod(&p, 0o644);
        assert_eq!(check_security(&p), Ok(()));
        // Paths are quoted for the shell in the advice.
        let odd = dir.path().join("a b.sh");
        fs::write(&odd, "").expect("write");
        chmod(&odd, 0o646);
        let why = check_security(&odd).expect_err("unsafe");
        assert!(
            why.ends_with(&format!("chmod go-w '{}'", odd.display())),
            "{why}"
        );
    } else {
        // Our own tempdir, owned by us, is the first unsafe element.
        let me = geteuid().as_raw();
        assert_eq!(
            why,
            format!(
                "{prefix}its directory '{0}' is owned by uid {me}, not root — chown root {0}",
                dir.path().display()
            )
        );
    }
}

// ------------------------------------------------------------ describe

#[test]
fn outcomes_describe_themselves() {
    let t = |ms, sig| Outcome::TimedOut {
        after: Duration::from_millis(ms),
        killed_with: sig,
    };
    assert_eq!(
        t(2000, SIGTERM).describe(),
        "timed out after 2.0 s (SIGTERM)"
    );
    assert_eq!(
        t(2000, SIGKILL).describe(),
        "timed out after 2.0 s (SIGTERM, then SIGKILL)"
    );
    assert_eq!(
        Outcome::Signalled(15).describe(),
        "killed by signal 15 (SIGTERM)"
    );
    assert_eq!(
        Outcome::Signalled(64).describe(),
        "killed by signal 64 (unknown signal)"
    );
    assert_eq!(Outcome::Refused("x".into()).describe(), "refused: x");
    assert_eq!(
        Outcome::SpawnFailed("y".into()).describe(),
        "could not start: y"
    );
    assert_eq!(Outcome::Exited(0).to_string(), "exited 0");
}

#[test]
fn finished_is_plain_data() {
    let f = Finished {
        outcome: Outcome::Exited(0),
        output: String::new(),
        output_truncated: false,
        pid: None,
    };
    assert_eq!(f.clone(), f);
}

// ---------------------------------------------------- never panics

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn split_command_never_panics(s in "\\PC{0,40}|[ '\"\\\\a-z0-9xc]{0,40}") {
            let _ = split_command(&s);
        }

        #[test]
        fn check_never_panics(s in "[ '\"\\\\<>/a-z.]{0,30}") {
            // check() never runs anything; it only resolves and vets.
            let _ = check(ScriptSpec::new(&s), &RunOptions::default());
        }
    }
}
