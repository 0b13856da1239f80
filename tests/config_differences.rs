//! The places where a keepalived.conf read by keepalived 2.2.7 and by
//! ipvsdir could silently behave differently: each behaves as keepalived or
//! is a warning at `-t` and at start (checked against keepalived 2.2.7 run
//! with `-t -l`; its messages are quoted in the comments).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipvsdir::config::diag::Severity;
use ipvsdir::config::{LoadOptions, Loaded, load_str};

fn load(text: &str) -> Loaded {
    load_str("t.conf", text, &LoadOptions::default())
}

/// `line:col: severity: message` of each diagnostic.
fn diags(l: &Loaded) -> Vec<String> {
    common::located(&l.diagnostics)
}

fn instance(extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n{extra}\n virtual_ipaddress {{\n  10.0.0.1/24\n }}\n}}\n"
    )
}

const PASS: &str = " authentication {\n  auth_type PASS\n  auth_pass secret\n }";

/// keepalived: "(VI_1) Strict mode does not support authentication. Ignoring."
#[test]
fn vrrp_strict_drops_pass_authentication_with_a_warning() {
    let l = load(&format!(
        "global_defs {{\n vrrp_strict\n}}\n{}",
        instance(PASS)
    ));
    assert_eq!(
        diags(&l),
        [
            "7:2: Warning: vrrp_strict does not allow authentication: the authentication block is ignored and adverts carry none, as keepalived does; remove the block (or vrrp_strict)"
        ]
    );
    let c = l.config.expect("loads");
    assert!(c.vrrp_instances[0].strict_mode);
    assert_eq!(c.vrrp_instances[0].authentication, None);
    // The instance's own strict_mode, written after the block, too.
    let l = load(&instance(&format!("{PASS}\n strict_mode")));
    assert_eq!(l.diagnostics.warnings().count(), 1, "{}", l.diagnostics);
    assert_eq!(l.config.unwrap().vrrp_instances[0].authentication, None);
    // Without strict mode the authentication stays.
    let l = load(&instance(PASS));
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    assert!(l.config.unwrap().vrrp_instances[0].authentication.is_some());
}

const SCRIPT: &str = "vrrp_script chk {\n script \"/bin/true\"\n}\n";

/// keepalived 2.2.7 resolves a track_script against the vrrp_scripts above
/// the instance only ("(VI_1) track script chk not found, ignoring..."):
/// ipvsdir tracks it and says that keepalived does not.
#[test]
fn track_script_naming_a_later_vrrp_script() {
    let tracked = instance(" track_script {\n  chk\n }");
    let l = load(&format!("{tracked}{SCRIPT}"));
    assert_eq!(
        diags(&l),
        [
            "5:3: Warning: vrrp_script 'chk' is defined below this vrrp_instance: ipvsdir tracks it, keepalived 2.2.7 ignores the tracking (\"track script chk not found, ignoring...\"); move the vrrp_script block above the instance so that both read the file the same way"
        ]
    );
    let c = l.config.expect("accepted");
    assert_eq!(c.vrrp_instances[0].track_script[0].name, "chk");
    // Defined above: as keepalived, nothing to say.
    let l = load(&format!("{SCRIPT}{tracked}"));
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    assert_eq!(l.config.unwrap().vrrp_instances[0].track_script.len(), 1);
}

/// Mail alerts are read as keepalived 2.2.7 reads them, with nothing to
/// say, and each block's `smtp_alert` gets keepalived's default: VRRP
/// instances and sync groups from `smtp_alert_vrrp`, else `smtp_alert`,
/// else off; virtual servers from `smtp_alert_checker`, else `smtp_alert`,
/// else off; real servers the same but on when neither is set.
#[test]
fn mail_alerts_load_quietly_with_keepalived_defaults() {
    let l = load(&format!(
        "global_defs {{\n router_id lb1\n notification_email {{\n  ops@example.com\n  noc@example.com\n }}\n notification_email_from lb1@example.com\n smtp_server 192.0.2.1 2525\n smtp_helo_name lb1.example.com\n smtp_connect_timeout 7\n smtp_alert\n smtp_alert_vrrp off\n no_email_faults\n no_checker_emails\n}}\n{}virtual_server 10.0.0.10 80 {{\n real_server 10.0.0.11 80 {{\n  smtp_alert off\n }}\n real_server 10.0.0.12 80 {{\n }}\n}}\n",
        instance("")
    ));
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let c = l.config.expect("loads");
    let g = &c.global;
    assert_eq!(g.notification_email, ["ops@example.com", "noc@example.com"]);
    assert_eq!(g.smtp_server.as_ref().map(|s| s.port), Some(2525));
    assert_eq!(g.smtp_connect_timeout.0, std::time::Duration::from_secs(7));
    assert!(g.no_email_faults && g.no_checker_emails);
    assert_eq!((g.smtp_alert, g.smtp_alert_vrrp), (Some(true), Some(false)));
    assert!(!c.vrrp_instances[0].smtp_alert, "smtp_alert_vrrp off wins");
    assert!(c.virtual_servers[0].smtp_alert, "smtp_alert on");
    let rs: Vec<bool> = c.virtual_servers[0]
        .real_servers
        .iter()
        .map(|r| r.smtp_alert)
        .collect();
    assert_eq!(rs, [false, true]);
    // Nothing set: real servers mail (keepalived's older default), the rest not.
    let l = load(&format!(
        "{}virtual_server 10.0.0.10 80 {{\n real_server 10.0.0.11 80 {{\n }}\n}}\n",
        instance("")
    ));
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let c = l.config.expect("loads");
    assert!(!c.vrrp_instances[0].smtp_alert);
    assert!(!c.virtual_servers[0].smtp_alert);
    assert!(c.virtual_servers[0].real_servers[0].smtp_alert);
    // smtp_alert_checker off beats smtp_alert; a block's own setting beats both.
    let l = load(&format!(
        "global_defs {{\n smtp_alert\n smtp_alert_checker off\n}}\n{}virtual_server 10.0.0.10 80 {{\n real_server 10.0.0.11 80 {{\n }}\n}}\n",
        instance(" smtp_alert false")
    ));
    assert!(l.diagnostics.items.is_empty(), "{}", l.diagnostics);
    let c = l.config.expect("loads");
    assert!(!c.vrrp_instances[0].smtp_alert);
    assert!(!c.virtual_servers[0].real_servers[0].smtp_alert);
}

/// keepalived: "(VI_1) cannot use a loopback interface (lo) for vrrp -
/// ignoring", "(VI_1) Unknown interface!", and its -t fails.
#[test]
fn interface_lo_is_refused_as_keepalived_does() {
    let l = load(&instance("").replace("interface eth0", "interface lo"));
    assert_eq!(
        diags(&l),
        [
            "2:12: Error: vrrp_instance VI_1: VRRP cannot run on the loopback interface (keepalived refuses it too): name the interface the directors share"
        ]
    );
    assert!(l.config.is_none());
    // Through default_interface too.
    let l = load(&format!(
        "global_defs {{\n default_interface lo\n}}\n{}",
        instance("").replace(" interface eth0\n", "")
    ));
    assert_eq!(l.diagnostics.error_count(), 1, "{}", l.diagnostics);
}

/// keepalived: "number '0' outside range", "persistence_timeout invalid",
/// and the service runs without persistence.
#[test]
fn persistence_timeout_0_is_no_persistence() {
    let l = load(
        "virtual_server 10.0.0.10 80 {\n persistence_timeout 0\n real_server 10.0.0.11 80 {\n }\n}\n",
    );
    assert_eq!(
        diags(&l),
        [
            "2:22: Warning: persistence_timeout 0 means no persistence: ignored, as keepalived does (keepalived's -t reports it as invalid); remove the line"
        ]
    );
    assert_eq!(l.config.unwrap().virtual_servers[0].persistence, None);
    let l = load(
        "virtual_server 10.0.0.10 80 {\n persistence_timeout 60\n real_server 10.0.0.11 80 {\n }\n}\n",
    );
    assert!(l.diagnostics.items.is_empty());
    let p = l.config.unwrap().virtual_servers[0].persistence.clone();
    assert_eq!(p.map(|p| p.timeout), Some(60));
    assert!(
        load("virtual_server 10.0.0.10 80 {\n persistence_timeout -1\n}\n")
            .diagnostics
            .errors()
            .any(|d| d.severity == Severity::Error)
    );
}

fn ipvsdir(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .args(args)
        .output()
        .expect("run ipvsdir");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: needs root (scripts run as root are the ones checked), and CI=true runs as root"
        );
    }
    eprintln!("{test}: skipped, needs root");
    false
}

/// A world-writable script run as root is named at -t, at warning level,
/// with keepalived's SECURITY VIOLATION line; whatever
/// enable_script_security says.
#[test]
fn insecure_scripts_are_reported_at_config_test() {
    if !root_or_skip("insecure_scripts_are_reported_at_config_test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chk.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    let body = format!(
        "vrrp_script chk {{\n script \"{}\"\n}}\nvirtual_server 10.0.0.10 80 {{\n real_server 10.0.0.11 80 {{\n  MISC_CHECK {{\n   misc_path \"{} arg\"\n  }}\n }}\n real_server 10.0.0.12 80 {{\n  MISC_CHECK {{\n   misc_path \"{} other\"\n  }}\n }}\n}}\n",
        script.display(),
        script.display(),
        script.display()
    );
    let conf = dir.path().join("t.conf");
    std::fs::write(
        &conf,
        format!("global_defs {{\n script_user root\n}}\n{body}"),
    )
    .unwrap();
    let (code, err) = ipvsdir(&["-t", "-f", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let named = format!(
        "warning: vrrp_script chk: Unsafe permissions found for script '{}'",
        script.display()
    );
    assert!(err.contains(&named), "{err}");
    assert!(
        err.contains("(it runs as root anyway: enable_script_security is not set)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("warning: MISC_CHECK of real_server [10.0.0.11]:tcp:80 of virtual_server [10.0.0.10]:tcp:80 (and 1 more using the same program): Unsafe permissions found for script '{}'", script.display())),
        "{err}"
    );
    assert!(
        err.contains("warning: SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts."),
        "{err}"
    );
    assert!(
        err.contains("warning: SECURITY VIOLATION - check scripts are being executed but script_security not enabled. There are insecure scripts."),
        "{err}"
    );
    assert!(err.contains("configuration OK (4 warnings)"), "{err}");

    // With enable_script_security: named as refused; no SECURITY VIOLATION.
    std::fs::write(
        &conf,
        format!("global_defs {{\n script_user root\n enable_script_security\n}}\n{body}"),
    )
    .unwrap();
    let (code, err) = ipvsdir(&["-t", "-f", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "(not run as root: enable_script_security is set) — vrrp_script chk is not run"
        ),
        "{err}"
    );
    assert!(!err.contains("SECURITY VIOLATION"), "{err}");
    assert!(err.contains("configuration OK (2 warnings)"), "{err}");

    // A safe script: only keepalived's line, without "insecure scripts".
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        &conf,
        format!("global_defs {{\n script_user root\n}}\n{body}"),
    )
    .unwrap();
    let (code, err) = ipvsdir(&["-t", "-f", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("Unsafe"), "{err}");
    assert!(
        err.contains("warning: SECURITY VIOLATION - scripts are being executed but script_security not enabled.\n"),
        "{err}"
    );
    assert!(err.contains("configuration OK (2 warnings)"), "{err}");
}

/// The same at start, in the log at warning priority.
#[test]
fn insecure_scripts_are_logged_at_start_as_warnings() {
    if !root_or_skip("insecure_scripts_are_logged_at_start_as_warnings") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chk.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    let conf = dir.path().join("t.conf");
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n script_user root\n}}\nvrrp_script chk {{\n script \"{}\"\n}}\n",
            script.display()
        ),
    )
    .unwrap();
    let journal = dir.path().join("journal");
    let file = std::fs::File::create(&journal).unwrap();
    let md = file.metadata().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipvsdir"))
        .arg("-f")
        .arg(&conf)
        .arg("--control-socket")
        .arg(dir.path().join("s"))
        .arg("--vrrp-state")
        .arg(dir.path().join("v.json"))
        .arg("--health-state")
        .arg(dir.path().join("h.json"))
        .arg("--dump-dir")
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut text = String::new();
    while t.elapsed() < Duration::from_secs(10) {
        text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("ipvsdir ready") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    assert!(
        text.contains(&format!(
            "<4>script: vrrp_script chk: Unsafe permissions found for script '{}'",
            script.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("<4>script: SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts."),
        "{text}"
    );
}
