//! The `ipvsdir` command line: parses flags (keepalived-compatible where
//! they overlap) and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipvsdir::config::{self, LoadOptions, normalized};
use ipvsdir::lvs::{commands, format};

/// Linux load-balancer director: VRRP failover, real-server health checks
/// and the IPVS table, configured with keepalived.conf syntax.
#[derive(Parser, Debug)]
#[command(name = "ipvsdir", version, about)]
struct Cli {
    /// Configuration file (keepalived.conf syntax).
    #[arg(
        short = 'f',
        long = "use-file",
        value_name = "FILE",
        default_value = "/etc/ipvsdir/ipvsdir.conf"
    )]
    file: PathBuf,

    /// Check the configuration and exit: 0 when it can run, 1 with the diagnostics otherwise.
    #[arg(short = 't', long = "config-test")]
    config_test: bool,

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

    /// Where `-C` writes, and `--dump --health` reads, the checkers' report.
    #[arg(long, value_name = "FILE", default_value = ipvsdir::daemon::status::HEALTH_STATE)]
    health_state: PathBuf,

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
    #[arg(long, value_name = "PATH", default_value = ipvsdir::daemon::control::CONTROL_SOCKET)]
    control_socket: PathBuf,

    /// Where SIGUSR1 and SIGUSR2 write ipvsdir.data and ipvsdir.stats (and
    /// .json). keepalived writes /tmp/keepalived.*; `--dump-dir /tmp` gives
    /// the same place (written safely there too: a planted symlink or FIFO is
    /// replaced, never followed).
    #[arg(long, value_name = "DIR", default_value = ipvsdir::daemon::dump::DUMP_DIR)]
    dump_dir: PathBuf,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off unless
    /// given; e.g. 127.0.0.1:9650). keepalived-exporter's VRRP names.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,

    /// The daemon's pid file, locked while it runs (a second daemon with the
    /// same file refuses to start) and removed at exit. Default: the status
    /// socket's path with the extension `pid` (/run/ipvsdir/ipvsdir.pid).
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pid_file: Option<PathBuf>,

    /// Leave the VIPs in place at stop.
    #[arg(long)]
    dont_release_vrrp: bool,

    /// Where the daemon writes its VRRP instances' state.
    #[arg(long, value_name = "FILE", default_value = ipvsdir::vrrp::status::VRRP_STATE)]
    vrrp_state: PathBuf,

    /// With --check: leave our IPVS services in the kernel at stop.
    #[arg(long)]
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

    /// With --check: seconds between re-reads of the kernel table to repair drift.
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
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the live IPVS table (same as --dump).
    Dump,
    /// Print the MD5 digest of a web page, for HTTP_GET/SSL_GET `digest` (keepalived's genhash).
    Genhash(ipvsdir::check::genhash::GenhashArgs),
}

fn main() -> ExitCode {
    // As a container's PID 1, an init process stays in front of the daemon
    // to reap orphans. This forks, so it comes before any thread exists.
    if let Some(code) = ipvsdir::daemon::pid1::init_if_pid1() {
        return code;
    }
    let cli = Cli::parse();
    init_logging(&cli);
    if let Some(Command::Genhash(args)) = &cli.command {
        return genhash(args);
    }
    // -t tests the file and nothing else, whatever else is asked (-C, -P, --dump, ...).
    if !cli.config_test && (cli.dump || matches!(cli.command, Some(Command::Dump))) {
        return dump(&cli);
    }
    let opts = LoadOptions {
        config_id: cli.config_id.clone(),
    };
    let loaded = config::load(&cli.file, &opts);
    eprint!("{}", loaded.diagnostics);
    let Some(cfg) = loaded.config else {
        let n = loaded.diagnostics.error_count();
        eprintln!(
            "{}: {n} error{} — the configuration cannot run",
            cli.file.display(),
            if n == 1 { "" } else { "s" }
        );
        return ExitCode::from(1);
    };
    let summary = summary(&cfg);
    if cli.config_test {
        let warnings = loaded.diagnostics.warnings().count();
        eprintln!(
            "{}: configuration OK ({warnings} warning{}): {summary}",
            cli.file.display(),
            if warnings == 1 { "" } else { "s" }
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
    daemon(&cli, cfg)
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
        load: LoadOptions {
            config_id: cli.config_id.clone(),
        },
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
            eprintln!("ipvsdir: {e}");
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
        let vrrp = status.vrrp.as_ref();
        let ipvs = commands::dump(view, status.health.as_ref());
        if cli.json {
            let table = ipvs
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            let all = serde_json::json!({ "ipvs": table, "vrrp": vrrp, "pid": status.pid });
            println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
            return ExitCode::SUCCESS;
        }
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
        let report = ipvsdir::daemon::status::read(&cli.health_state);
        if report.is_none() {
            eprintln!(
                "ipvsdir: no running checkers' report at {} (start `ipvsdir -C`); showing the table only",
                cli.health_state.display()
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

fn init_logging(cli: &Cli) {
    let level = if cli.log_detail { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Foreground-only for now: -n and -l are accepted and always in effect.
    let _ = (cli.dont_fork, cli.log_console);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
