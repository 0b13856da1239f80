//! The `ipvsdir` command line: parses flags (keepalived-compatible where
//! they overlap) and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ipvsdir::config::{self, LoadOptions, normalized};

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

    /// With --dump-config: print JSON.
    #[arg(long, requires = "dump_config")]
    json: bool,

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let opts = LoadOptions {
        config_id: cli.config_id.clone(),
    };
    let loaded = config::load(&cli.file, &opts);
    eprint!("{}", loaded.diagnostics);
    let Some(cfg) = loaded.config else {
        let n = loaded.diagnostics.errors().count();
        eprintln!(
            "{}: {n} error{} — the configuration cannot run",
            cli.file.display(),
            if n == 1 { "" } else { "s" }
        );
        return ExitCode::from(1);
    };
    if cli.dump_config {
        if cli.json {
            println!("{}", normalized::to_json(&cfg));
        } else {
            print!("{}", normalized::to_text(&cfg));
        }
        return ExitCode::SUCCESS;
    }
    let warnings = loaded.diagnostics.warnings().count();
    let summary = summary(&cfg);
    if cli.config_test {
        eprintln!(
            "{}: configuration OK ({warnings} warning{}): {summary}",
            cli.file.display(),
            if warnings == 1 { "" } else { "s" }
        );
        return ExitCode::SUCCESS;
    }
    // The daemon arrives with the VRRP, checker and IPVS issues; until then
    // say plainly what it would run.
    eprintln!(
        "ipvsdir: configuration loaded: {summary}\nipvsdir: the daemon is not part of this build yet; nothing was started"
    );
    ExitCode::SUCCESS
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
        .init();
}
