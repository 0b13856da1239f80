//! The `ipvsdir` command line: parses flags (keepalived-compatible where
//! they overlap) and calls into the library.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use ipvsdir::config::{self, LoadOptions, normalized};
use ipvsdir::lvs::{commands, format};

/// Linux load-balancer director: VRRP failover, real-server health checks
/// and the IPVS table, configured with keepalived.conf syntax.
#[derive(Parser, Debug)]
#[command(
    name = "ipvsdir",
    version,
    about,
    disable_version_flag = true,
    args_override_self = true
)]
struct Cli {
    /// Print the version and exit (keepalived's -v).
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: (),

    /// Configuration file (keepalived.conf syntax).
    #[arg(
        short = 'f',
        long = "use-file",
        value_name = "FILE",
        default_value = "/etc/ipvsdir/ipvsdir.conf"
    )]
    file: PathBuf,

    /// Check the configuration and exit: 0 when it can run, 1 with the
    /// diagnostics otherwise. `--config-test=FILE` appends them to FILE
    /// instead of stderr (keepalived's form).
    #[arg(
        short = 't',
        long = "config-test",
        value_name = "LOG_FILE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    config_test: Option<String>,

    /// Print the normalized configuration (defaults filled in, inheritance resolved) and exit.
    #[arg(long)]
    dump_config: bool,

    /// With --dump-config or --dump: print JSON.
    #[arg(long, global = true)]
    json: bool,

    /// Show the live IPVS table like `ipvsadm -Ln` (also `ipvsdir dump`).
    #[arg(long)]
    dump: bool,

    /// With --dump: packet and byte counters (`ipvsadm -Ln --stats`).
    #[arg(long, global = true)]
    stats: bool,

    /// With --dump: rates (`ipvsadm -Ln --rate`).
    #[arg(long, global = true)]
    rate: bool,

    /// With --dump: each real server's health as the running `-C` checkers see it.
    #[arg(long, global = true)]
    health: bool,

    /// Also write the checkers' report to FILE (JSON, at most once a second),
    /// where `--dump --health` falls back to it when no daemon answers on
    /// the status socket. Off by default: the socket serves the report.
    #[arg(long, value_name = "FILE")]
    health_state: Option<PathBuf>,

    /// With --dump: the table as ipvsadm rules (`ipvsadm -Sn`).
    #[arg(long, global = true)]
    save: bool,

    /// Print the IPVS operations that applying the file would make, without applying them.
    #[arg(long)]
    plan: bool,

    /// Apply the file's virtual servers to the kernel once and exit.
    #[arg(long)]
    apply_once: bool,

    /// Remove the file's virtual services (and those an earlier --apply-once recorded) from the kernel and exit.
    #[arg(long)]
    release: bool,

    /// With --plan / --apply-once: take every real server as down (alpha mode before the first check).
    #[arg(long)]
    alpha: bool,

    /// Run the health checkers and keep the IPVS table in line with them (keepalived's --check).
    #[arg(short = 'C', long = "check")]
    check: bool,

    /// Run only the VRRP instances (keepalived's --vrrp).
    #[arg(short = 'P', long = "vrrp")]
    vrrp: bool,

    /// The daemon's status socket (read by --dump).
    #[arg(long, global = true, value_name = "PATH", default_value = ipvsdir::daemon::control::CONTROL_SOCKET)]
    control_socket: PathBuf,

    /// Where SIGUSR1 and SIGUSR2 write ipvsdir.data and ipvsdir.stats (and
    /// .json). keepalived writes /tmp/keepalived.*; `--dump-dir /tmp` gives
    /// the same place (written safely there too: a planted symlink or FIFO is
    /// replaced, never followed).
    #[arg(long, value_name = "DIR", default_value = ipvsdir::daemon::dump::DUMP_DIR)]
    dump_dir: PathBuf,

    /// Keep the operator's overrides (`ipvsdir ctl`) across restarts, in
    /// FILE (default /var/lib/ipvsdir/overrides.json). Without it they
    /// survive reloads only.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = ipvsdir::lvs::overrides::OVERRIDES_STATE)]
    persist_overrides: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off unless
    /// given; e.g. 127.0.0.1:9650). keepalived-exporter's VRRP names.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,

    /// The daemon's pid file, locked while it runs (a second daemon with the
    /// same file refuses to start) and removed at exit. Default: the status
    /// socket's path with the extension `pid` (/run/ipvsdir/ipvsdir.pid).
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pid_file: Option<PathBuf>,

    /// Leave the VIPs in place at stop (keepalived's -V).
    #[arg(short = 'V', long)]
    dont_release_vrrp: bool,

    /// Where the daemon writes its VRRP instances' state.
    #[arg(long, value_name = "FILE", default_value = ipvsdir::vrrp::status::VRRP_STATE)]
    vrrp_state: PathBuf,

    /// With --check: leave our IPVS services in the kernel at stop (keepalived's -I).
    #[arg(short = 'I', long)]
    dont_release_ipvs: bool,

    /// With --check: run the checkers and report health (logs, notify
    /// scripts, --dump --health, the status socket) without reading or
    /// writing the kernel's IPVS table: beside the director that owns it, or
    /// on a host without IPVS.
    #[arg(long)]
    no_ipvs: bool,

    /// Seconds a real server removed by a reload keeps weight 0 (draining) before it is deleted.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    drain_grace: u64,

    /// With --check: seconds between re-reads of the kernel table (and of the announce table) to repair drift.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    drift_interval: u64,

    /// With --plan / --apply-once: where one-shot runs remember the services ipvsdir created.
    #[arg(long, value_name = "FILE", default_value = commands::OWNED_STATE)]
    owned_state: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,

    /// keepalived's config id: keep `@ID` lines, drop `@^ID` lines.
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    config_id: Option<String>,

    /// Stay in the foreground (the only mode; accepted for keepalived compatibility).
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,

    /// Log to the console.
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,

    /// Detailed (debug) logging.
    #[arg(short = 'D', long = "log-detail")]
    log_detail: bool,

    /// Log to syslog with this facility: 0-7 or local0-local7 (LOG_LOCAL0-7),
    /// user or daemon. Without it, logs go to stderr (to the journal, with
    /// priorities, under systemd).
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    log_facility: Option<String>,

    /// Don't log via syslog (overrides -S).
    #[arg(short = 'G', long = "no-syslog")]
    no_syslog: bool,

    /// The syslog socket -S writes to.
    #[arg(long, value_name = "PATH", env = "IPVSDIR_SYSLOG_SOCKET", default_value = ipvsdir::daemon::log::SYSLOG_SOCKET)]
    syslog_socket: PathBuf,

    /// umask for the files the daemon creates (numeric: 022, 0x12, 18).
    #[arg(short = 'u', long, value_name = "MASK")]
    umask: Option<String>,

    /// Log the effective configuration at start (keepalived's --dump-conf).
    #[arg(short = 'd', long = "dump-conf")]
    dump_conf: bool,

    /// Produce a core dump if the daemon terminates abnormally (RLIMIT_CORE unlimited).
    #[arg(short = 'm', long = "core-dump")]
    core_dump: bool,

    /// As -m; keepalived also sets kernel.core_pattern (ipvsdir does not: use sysctl).
    #[arg(
        short = 'M',
        long = "core-dump-pattern",
        value_name = "PATTERN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "core"
    )]
    core_dump_pattern: Option<String>,

    /// Error if any included configuration file is missing (every include read as `includet`).
    #[arg(short = 'e', long = "all-config")]
    all_config: bool,

    /// Run in the network namespace NAME (/run/netns/NAME, as `ip netns` makes).
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    namespace: Option<String>,

    /// Print the number of the signal for STOP, RELOAD, DATA, STATS or JSON and exit.
    #[arg(long, value_name = "SIGFUNC")]
    signum: Option<String>,

    /// keepalived's genhash mode: `ipvsdir -T -s IP -p PORT ...` is `ipvsdir genhash ...` (first option only).
    #[arg(short = 'T', long = "genhash")]
    genhash_mode: bool,

    /// Accepted for keepalived: there is no BFD subsystem (notice).
    #[arg(short = 'B', long = "no_bfd")]
    no_bfd: bool,

    /// Accepted for keepalived: ipvsdir starts what the file configures, one process (notice).
    #[arg(long = "all")]
    all: bool,

    /// Accepted for keepalived: VIPs are released as configured (notice).
    #[arg(short = 'X', long = "release-vips")]
    release_vips: bool,

    /// Accepted for keepalived: one process, nothing to respawn; let the service manager restart it (notice).
    #[arg(short = 'R', long = "dont-respawn")]
    dont_respawn: bool,

    /// Accepted for keepalived: one process; its pid file is -p (notice).
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    vrrp_pid: Option<PathBuf>,

    /// Accepted for keepalived: one process; its pid file is -p (notice).
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE")]
    checkers_pid: Option<PathBuf>,

    /// Accepted for keepalived: no BFD subsystem (notice).
    #[arg(short = 'b', long = "bfd_pid", value_name = "FILE")]
    bfd_pid: Option<PathBuf>,

    /// Accepted for keepalived: address changes are not reported (notice).
    #[arg(short = 'a', long = "address-monitoring")]
    address_monitoring: bool,

    /// Accepted for keepalived: no SNMP subsystem (notice).
    #[arg(short = 'x', long = "snmp")]
    snmp: bool,

    /// Accepted for keepalived: no SNMP subsystem (notice).
    #[arg(short = 'A', long = "snmp-agent-socket", value_name = "FILE")]
    snmp_agent_socket: Option<PathBuf>,

    /// Packaging: write ipvsdir.8 and ipvsdir.conf.5 into DIR and exit.
    #[arg(long, value_name = "DIR", hide = true)]
    generate_man: Option<PathBuf>,

    /// Packaging: print the completion script for SHELL and exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    generate_completions: Option<clap_complete::Shell>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the live IPVS table (same as --dump).
    Dump,
    /// Print the MD5 digest of a web page, for HTTP_GET/SSL_GET `digest` (keepalived's genhash).
    Genhash(ipvsdir::check::genhash::GenhashArgs),
    /// Steer a running daemon (root): drain, disable, enable or reweight a
    /// real server without a reload. Kept across reloads (and restarts with
    /// --persist-overrides).
    #[command(subcommand)]
    Ctl(Ctl),
}

#[derive(Subcommand, Debug)]
enum Ctl {
    /// Weight 0 while up: established connections finish, no new ones.
    Drain(CtlTarget),
    /// Out of the table, whatever its checkers say.
    Disable(CtlTarget),
    /// Back to its checkers' verdict and its configured weight.
    Enable(CtlTarget),
    /// This weight instead of the configured one while up.
    Weight {
        #[command(flatten)]
        target: CtlTarget,
        /// The weight (0-65535).
        #[arg(value_parser = clap::value_parser!(u32).range(0..=65535))]
        weight: u32,
    },
    /// Take this director out of ECMP gracefully: announced VIPs take
    /// announce_drain_metric (routers prefer the other directors), then are
    /// withdrawn once no new connection arrives or after
    /// announce_drain_time. The IPVS table stays. Not kept across restarts.
    DrainDirector,
    /// Cancel drain-director: VIPs are announced again as their health says.
    UndrainDirector,
}

#[derive(clap::Args, Debug)]
struct CtlTarget {
    /// The real server: IP or IP:PORT ([IPv6]:PORT). Without a port, every
    /// port of that address.
    real_server: String,
    /// The virtual server, when the real server is in several:
    /// `10.0.0.1:80`, `tcp 10.0.0.1:80`, `fwmark 7`, `group NAME`.
    #[arg(long)]
    vs: Option<String>,
}

fn main() -> ExitCode {
    // As a container's PID 1, an init process stays in front of the daemon
    // to reap orphans. This forks, so it comes before any thread exists.
    if let Some(code) = ipvsdir::daemon::pid1::init_if_pid1() {
        return code;
    }
    let cli = Cli::parse_from(genhash_first(std::env::args_os().collect()));
    if let Some(code) = generate_docs(&cli) {
        return code;
    }
    if let Some(name) = &cli.signum {
        return signum(name);
    }
    if cli.genhash_mode {
        eprintln!(
            "ipvsdir: -T (--genhash) must be the first option: ipvsdir -T -s IP -p PORT ... (or ipvsdir genhash ...)"
        );
        return ExitCode::from(2);
    }
    // Before any thread: a network namespace is entered per thread.
    if let Some(ns) = &cli.namespace
        && let Err(e) = ipvsdir::daemon::process::enter_netns(ns)
    {
        eprintln!("ipvsdir: {e}");
        return ExitCode::from(2);
    }
    process_flags(&cli);
    init_logging(&cli);
    for notice in notices(&cli) {
        tracing::info!("{notice}");
    }
    if let Some(Command::Genhash(args)) = &cli.command {
        return genhash(args);
    }
    if let Some(Command::Ctl(c)) = &cli.command {
        return ctl(&cli.control_socket, c);
    }
    let config_test = cli.config_test.is_some();
    // -t tests the file and nothing else, whatever else is asked (-C, -P, --dump, ...).
    if !config_test && (cli.dump || matches!(cli.command, Some(Command::Dump))) {
        return dump(&cli);
    }
    // -t=FILE: the diagnostics and the verdict go to FILE (appended), as keepalived.
    let mut out = match cli.config_test.as_deref() {
        Some(p) if !p.is_empty() => match open_test_log(Path::new(p)) {
            Ok(f) => Printer {
                w: Box::new(f),
                journal: false,
            },
            Err(e) => {
                eprintln!("ipvsdir: cannot open the config-test log file {p}: {e}");
                return ExitCode::from(1);
            }
        },
        _ => Printer {
            w: Box::new(std::io::stderr()),
            journal: ipvsdir::daemon::log::stderr_is_journal(),
        },
    };
    let opts = load_options(&cli);
    let loaded = config::load(&cli.file, &opts);
    // The daemon logs its diagnostics (to the journal or syslog with their
    // priorities); the one-shot modes print them.
    let daemon_mode =
        !(config_test || cli.dump_config || cli.plan || cli.apply_once || cli.release);
    if daemon_mode {
        ipvsdir::daemon::log::diagnostics(&loaded.diagnostics, "");
    } else {
        out.diagnostics(&loaded.diagnostics);
    }
    let Some(cfg) = loaded.config else {
        let n = loaded.diagnostics.error_count();
        let verdict = format!(
            "{}: {n} error{} — the configuration cannot run",
            cli.file.display(),
            if n == 1 { "" } else { "s" }
        );
        if daemon_mode {
            tracing::error!("{verdict}");
        } else {
            out.line(3, &verdict);
        }
        return ExitCode::from(1);
    };
    let summary = summary(&cfg);
    // Scripts vetted as keepalived does at load: insecure ones named, and
    // its SECURITY VIOLATION line without enable_script_security.
    let scope = if config_test {
        ipvsdir::script::audit::Scope::ALL
    } else {
        ipvsdir::script::audit::Scope {
            vrrp: cli.vrrp || !cli.check,
            checks: cli.check || !cli.vrrp,
        }
    };
    let script_warnings = if config_test || daemon_mode {
        ipvsdir::script::audit::audit(&cfg, scope)
    } else {
        Vec::new()
    };
    for w in &script_warnings {
        if daemon_mode {
            tracing::warn!(target: "ipvsdir::script", "{w}");
        } else {
            out.line(4, &format!("warning: {w}"));
        }
    }
    if config_test {
        // As keepalived, -t looks at this host's interfaces (warnings).
        let absent = if scope.vrrp {
            ipvsdir::vrrp::host_check::absent_interfaces(&cfg)
        } else {
            Vec::new()
        };
        for w in &absent {
            out.line(4, &format!("warning: {w}"));
        }
        let warnings = loaded.diagnostics.warnings().count() + script_warnings.len() + absent.len();
        out.line(
            6,
            &format!(
                "{}: configuration OK ({warnings} warning{}): {summary}",
                cli.file.display(),
                if warnings == 1 { "" } else { "s" }
            ),
        );
        return ExitCode::SUCCESS;
    }
    if cli.dump_config {
        if cli.json {
            println!("{}", normalized::to_json(&cfg));
        } else {
            print!("{}", normalized::to_text(&cfg));
        }
        return ExitCode::SUCCESS;
    }
    if cli.plan || cli.apply_once || cli.release {
        return lvs_once(&cli, &cfg);
    }
    tracing::info!("Starting ipvsdir: {summary}");
    if cli.dump_conf {
        for line in normalized::to_text(&cfg).lines() {
            tracing::info!("config: {line}");
        }
    }
    daemon(&cli, cfg)
}

/// Where `-t` and the one-shot modes print: a file (`-t=FILE`), stderr, or
/// the journal (stderr under systemd, e.g. `ExecStartPre=ipvsdir -t`): then
/// each line carries its sd-daemon priority.
struct Printer {
    w: Box<dyn Write>,
    journal: bool,
}

impl Printer {
    /// `text` (one or more lines) at syslog priority `priority`.
    fn line(&mut self, priority: u8, text: &str) {
        for l in text.lines() {
            let _ = if self.journal {
                writeln!(self.w, "<{priority}>{l}")
            } else {
                writeln!(self.w, "{l}")
            };
        }
    }

    fn diagnostics(&mut self, diags: &config::diag::Diagnostics) {
        for d in &diags.items {
            let p = match d.severity {
                config::diag::Severity::Error => 3,
                config::diag::Severity::Warning => 4,
            };
            self.line(p, &d.to_string());
        }
        if diags.more_errors + diags.more_warnings > 0 {
            self.line(
                4,
                &format!(
                    "... and {} more errors and {} more warnings (only the first {} diagnostics are shown)",
                    diags.more_errors,
                    diags.more_warnings,
                    config::diag::MAX_DIAGNOSTICS
                ),
            );
        }
    }
}

/// `--generate-man DIR` / `--generate-completions SHELL` (for packaging):
/// made from this very clap definition.
fn generate_docs(cli: &Cli) -> Option<ExitCode> {
    let result = if let Some(dir) = &cli.generate_man {
        ipvsdir::docs::write_man_pages(Cli::command(), dir).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
        })
    } else if let Some(shell) = cli.generate_completions {
        ipvsdir::docs::write_completions(Cli::command(), shell, &mut std::io::stdout())
    } else {
        return None;
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipvsdir: cannot write the documentation: {e}");
            ExitCode::from(1)
        }
    })
}

/// keepalived's `-T` (genhash mode) is only recognised as the first option:
/// `ipvsdir -T ARGS` is `ipvsdir genhash ARGS`.
fn genhash_first(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == "-T" || a == "--genhash") {
        args[1] = "genhash".into();
    }
    args
}

/// keepalived's `--signum`: the signal that asks the daemon for SIGFUNC.
fn signum(name: &str) -> ExitCode {
    let n = match name {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        // SIGUSR1 writes the JSON dump beside the text one.
        "DATA" | "JSON" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => {
            eprintln!(
                "ipvsdir: no signal clears the statistics (keepalived's STATS_CLEAR): restart the daemon to reset them"
            );
            return ExitCode::from(1);
        }
        _ => {
            eprintln!("Unknown sigfunc {name}: use STOP, RELOAD, DATA, STATS or JSON");
            return ExitCode::from(1);
        }
    };
    println!("{n}");
    ExitCode::SUCCESS
}

fn load_options(cli: &Cli) -> LoadOptions {
    LoadOptions {
        config_id: cli.config_id.clone(),
        all_config: cli.all_config,
    }
}

/// `-t=FILE`: appended to, created 0644, a symlink never followed.
fn open_test_log(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// `-u` and `-m`/`-M`: process settings made before anything else.
fn process_flags(cli: &Cli) {
    if let Some(mask) = &cli.umask {
        match ipvsdir::daemon::process::parse_umask(mask) {
            Some(bits) => ipvsdir::daemon::process::set_umask(bits),
            // keepalived goes on with the umask it had.
            None => eprintln!(
                "ipvsdir: invalid --umask {mask}: give the mask in octal (022), hex (0x12) or decimal; the umask is unchanged"
            ),
        }
    }
    if (cli.core_dump || cli.core_dump_pattern.is_some())
        && let Err(e) = ipvsdir::daemon::process::enable_core_dumps()
    {
        eprintln!("ipvsdir: cannot enable core dumps (-m): {e}");
    }
}

/// One line for each keepalived flag that means nothing here.
fn notices(cli: &Cli) -> Vec<String> {
    let mut v = Vec::new();
    let mut note = |on: bool, flag: &str, why: &str| {
        if on {
            v.push(format!(
                "{flag} accepted for keepalived compatibility: {why}"
            ));
        }
    };
    note(cli.no_bfd, "-B (--no_bfd)", "ipvsdir has no BFD subsystem");
    note(
        cli.all,
        "--all",
        "ipvsdir runs one process with what the file configures",
    );
    note(
        cli.release_vips,
        "-X (--release-vips)",
        "VIPs are released on every transition out of MASTER",
    );
    note(
        cli.dont_respawn,
        "-R (--dont-respawn)",
        "ipvsdir runs one process and no children to respawn; the service manager restarts it",
    );
    note(
        cli.vrrp_pid.is_some(),
        "-r (--vrrp_pid)",
        "ipvsdir runs one process; its pid file is -p",
    );
    note(
        cli.checkers_pid.is_some(),
        "-c (--checkers_pid)",
        "ipvsdir runs one process; its pid file is -p",
    );
    note(
        cli.bfd_pid.is_some(),
        "-b (--bfd_pid)",
        "ipvsdir has no BFD subsystem",
    );
    note(
        cli.address_monitoring,
        "-a (--address-monitoring)",
        "address changes are not logged",
    );
    note(cli.snmp, "-x (--snmp)", "ipvsdir has no SNMP subsystem");
    note(
        cli.snmp_agent_socket.is_some(),
        "-A (--snmp-agent-socket)",
        "ipvsdir has no SNMP subsystem",
    );
    note(
        cli.core_dump_pattern.is_some(),
        "-M (--core-dump-pattern)",
        "core dumps are enabled as with -m, kernel.core_pattern is left as it is (set it with sysctl)",
    );
    v
}

/// VRRP (and, unless -P, the checkers with the IPVS table) until SIGTERM/SIGINT.
fn daemon(cli: &Cli, cfg: config::model::Config) -> ExitCode {
    let rt = match ipvsdir::daemon::run::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipvsdir: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let vrrp_opts = ipvsdir::vrrp::driver::Options {
        release_vips: !cli.dont_release_vrrp,
        status_file: Some(cli.vrrp_state.clone()),
        ..Default::default()
    };
    let opts = ipvsdir::daemon::run::Options {
        config_path: cli.file.clone(),
        load: load_options(cli),
        // -C: checkers only; -P: VRRP only; neither: both.
        vrrp: (cli.vrrp || !cli.check).then_some(vrrp_opts),
        checks: (cli.check || !cli.vrrp).then(|| check_options(cli)),
        pid_file: Some(pid_file(cli)),
        control_socket: cli.control_socket.clone(),
        dump_dir: cli.dump_dir.clone(),
        metrics_listen: cli.metrics_listen,
    };
    let result = rt.block_on(ipvsdir::daemon::run::run(cfg, opts));
    // Dropping the runtime cancels what still runs; scripts in their grace
    // period must not outlive us.
    drop(rt);
    ipvsdir::script::kill_cancelled();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logged (to syslog with -S, with the journal's error priority).
            tracing::error!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `-p`, else the pid file beside the status socket (the director's identity).
fn pid_file(cli: &Cli) -> PathBuf {
    cli.pid_file
        .clone()
        .unwrap_or_else(|| ipvsdir::daemon::lock::default_path(&cli.control_socket))
}

fn check_options(cli: &Cli) -> ipvsdir::daemon::checks::Options {
    ipvsdir::daemon::checks::Options {
        release_on_stop: !cli.dont_release_ipvs,
        owned_state: cli.owned_state.clone(),
        drift_interval: std::time::Duration::from_secs(cli.drift_interval.max(1)),
        health_state: cli.health_state.clone(),
        drain_grace: std::time::Duration::from_secs(cli.drain_grace),
        write_table: !cli.no_ipvs,
        live: None,
        stats: Default::default(),
        recent: None,
        persist_overrides: cli.persist_overrides.clone(),
        fifo: Default::default(),
        mail: Default::default(),
    }
}

fn ctl(socket: &Path, c: &Ctl) -> ExitCode {
    use ipvsdir::lvs::director::{Override, Target, parse_endpoint};
    let (t, what) = match c {
        Ctl::Drain(t) => (t, Override::Drain),
        Ctl::Disable(t) => (t, Override::Disable),
        Ctl::Enable(t) => (t, Override::Clear),
        Ctl::Weight { target, weight } => (target, Override::Weight(*weight)),
        Ctl::DrainDirector | Ctl::UndrainDirector => {
            let drain = matches!(c, Ctl::DrainDirector);
            return ctl_answer(
                socket,
                ipvsdir::daemon::control::director(socket, drain),
                |a| println!("{}", a.message.unwrap_or_default()),
            );
        }
    };
    let Some((addr, port)) = parse_endpoint(&t.real_server) else {
        eprintln!(
            "ipvsdir: `{}` is not a real server address: give IP or IP:PORT ([IPv6]:PORT)",
            t.real_server
        );
        return ExitCode::from(2);
    };
    let target = Target {
        addr,
        port,
        vs: t.vs.clone(),
    };
    ctl_answer(
        socket,
        ipvsdir::daemon::control::operator(socket, &target, what),
        |a| {
            for rs in &a.applied {
                println!("{rs}: {what}");
            }
        },
    )
}

/// The daemon's answer to `ipvsdir ctl`: `done` prints a success.
fn ctl_answer(
    socket: &Path,
    answer: std::io::Result<ipvsdir::daemon::ctl::Answer>,
    done: impl FnOnce(ipvsdir::daemon::ctl::Answer),
) -> ExitCode {
    match answer {
        Ok(a) if a.ok => {
            done(a);
            ExitCode::SUCCESS
        }
        Ok(a) => {
            eprintln!("ipvsdir: {}", a.error.unwrap_or_default());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!(
                "ipvsdir: no daemon answers on {}: {e} (is ipvsdir running? --control-socket names another socket)",
                socket.display()
            );
            ExitCode::from(2)
        }
    }
}

fn dump(cli: &Cli) -> ExitCode {
    let view = if cli.json {
        None
    } else if cli.stats {
        Some(format::View::Stats)
    } else if cli.rate {
        Some(format::View::Rate)
    } else if cli.save {
        Some(format::View::Rules)
    } else {
        Some(format::View::Plain)
    };
    // A running daemon answers on its socket: annotate with its live view.
    let live = ipvsdir::daemon::control::query(&cli.control_socket).ok();
    if let Some(status) = &live {
        if cli.json {
            // The status document, as the socket and /api/v1/status give it.
            println!(
                "{}",
                serde_json::to_string_pretty(status).unwrap_or_default()
            );
            return ExitCode::SUCCESS;
        }
        let vrrp = status.vrrp.as_deref();
        let ipvs = commands::dump(view, status.health.as_deref());
        if let Some(v) = vrrp {
            print!("{}", ipvsdir::daemon::control::vrrp_text(v));
        }
        return match ipvs {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            // No IPVS here (a VRRP-only director): the VRRP view is the answer.
            Err(e) if vrrp.is_some() => {
                println!("IPVS: {e}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ipvsdir: {e}");
                ExitCode::from(2)
            }
        };
    }
    let health = if cli.health {
        let report = cli
            .health_state
            .as_deref()
            .and_then(ipvsdir::daemon::status::read);
        if report.is_none() {
            eprintln!(
                "ipvsdir: no daemon answers on {}{}; showing the table only",
                cli.control_socket.display(),
                cli.health_state
                    .as_deref()
                    .map(|p| format!(" and no running checkers' report is at {}", p.display()))
                    .unwrap_or_default()
            );
        }
        report
    } else {
        None
    };
    match commands::dump(view, health.as_ref()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipvsdir: {e}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("ipvsdir: cannot start the async runtime: {e}");
            None
        }
    }
}

fn genhash(args: &ipvsdir::check::genhash::GenhashArgs) -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::from(2);
    };
    match rt.block_on(ipvsdir::check::genhash::genhash(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipvsdir genhash: {e}");
            ExitCode::from(1)
        }
    }
}

fn lvs_once(cli: &Cli, cfg: &config::model::Config) -> ExitCode {
    if cli.plan {
        return match commands::plan(cfg, cli.alpha, &cli.owned_state) {
            Ok(rules) => {
                for rule in &rules {
                    println!("{rule}");
                }
                eprintln!(
                    "ipvsdir: {} operation(s) planned, none applied",
                    rules.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ipvsdir: {e}");
                ExitCode::from(2)
            }
        };
    }
    let result = if cli.release {
        commands::release(cfg, &cli.owned_state)
    } else {
        commands::apply_once(cfg, cli.alpha, &cli.owned_state)
    };
    match result {
        Ok(outcome) => {
            for (op, e) in &outcome.failed {
                eprintln!("ipvsdir: failed: {} — {e}", format::op_rule(op));
            }
            for e in &outcome.errors {
                eprintln!("ipvsdir: {e}");
            }
            eprintln!(
                "ipvsdir: {} operation(s) applied, {} failed",
                outcome.applied.len(),
                outcome.failed.len()
            );
            if outcome.failed.is_empty() && outcome.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ipvsdir: {e}");
            ExitCode::from(2)
        }
    }
}

fn summary(cfg: &config::model::Config) -> String {
    let real: usize = cfg
        .virtual_servers
        .iter()
        .map(|v| v.real_servers.len())
        .sum();
    let checkers: usize = cfg
        .virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .map(|r| r.checkers.len())
        .sum();
    format!(
        "{} vrrp_instance(s), {} vrrp_sync_group(s), {} vrrp_script(s), {} virtual_server(s) with {real} real_server(s) and {checkers} checker(s)",
        cfg.vrrp_instances.len(),
        cfg.vrrp_sync_groups.len(),
        cfg.vrrp_scripts.len(),
        cfg.virtual_servers.len()
    )
}

/// Where the logs go: syslog with -S (unless -G); stderr without it, or
/// with -l too; with `<N>` priorities when stderr is the journal. -t logs to
/// stderr only, as keepalived.
fn init_logging(cli: &Cli) {
    use ipvsdir::daemon::log;
    let level = if cli.log_detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Foreground-only: -n is accepted and always in effect.
    let _ = cli.dont_fork;
    let facility = cli.log_facility.as_deref().map(|f| {
        let code = log::parse_facility(f);
        if code.is_none() {
            // keepalived goes on with its default.
            eprintln!(
                "ipvsdir: invalid log facility '{f}': use 0-7, local0-local7, user or daemon; using daemon"
            );
        }
        code.unwrap_or(log::LOG_DAEMON)
    });
    let syslog = facility
        .filter(|_| !cli.no_syslog && cli.config_test.is_none())
        .map(|facility| log::Syslog {
            facility,
            socket: cli.syslog_socket.clone(),
        });
    let stderr = (syslog.is_none() || cli.log_console).then(|| {
        if log::stderr_is_journal() {
            log::Stderr::Journal
        } else {
            log::Stderr::Console
        }
    });
    let opts = log::Options {
        stderr,
        syslog,
        ident: "ipvsdir".into(),
    };
    if let Err(e) = log::init(opts.clone(), filter) {
        eprintln!("ipvsdir: {e}");
        // Still log somewhere: stderr.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let _ = log::init(
            log::Options {
                stderr: Some(opts.stderr.unwrap_or(log::Stderr::Console)),
                syslog: None,
                ..opts
            },
            filter,
        );
    }
}
