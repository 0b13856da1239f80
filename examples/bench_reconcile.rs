//! The daemon's incremental IPVS path, timed against the real kernel (run in
//! the kernel VM by scripts/bench-reconcile): the director core's full load
//! at start, then a reload that changes one weight and one that adds a
//! service, each diffed against what the core last wrote (no kernel
//! re-read, no recomputation of the virtual servers the file did not change).
//!
//!   bench_reconcile FILE

use std::time::{Duration, Instant};

use ipvsdir::config::{LoadOptions, load_str};
use ipvsdir::lvs::commands::drive;
use ipvsdir::lvs::director::{Director, Event, Options};
use ipvsdir::lvs::kernel::Ipvs;
use ipvsdir::lvs::worker;

fn parse(name: &str, text: &str) -> ipvsdir::config::model::Config {
    let l = load_str(name, text, &LoadOptions::default());
    l.config.unwrap_or_else(|| {
        eprintln!("{}", l.diagnostics);
        std::process::exit(1)
    })
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: bench_reconcile FILE");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2)
    });
    // The same file with the first weight changed, and with a service added.
    let weight = text.replacen("weight ", "weight 1", 1);
    let added = format!(
        "{text}\nvirtual_server 10.255.255.1 65000 {{\n real_server 172.31.255.1 80 {{\n }}\n}}\n"
    );
    let mut ipvs = Ipvs::open().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let opts = Options {
        write_table: true,
        release_on_stop: false,
        drain_grace: Duration::ZERO,
        drift_interval: Duration::from_secs(3600),
        vrrp_in_process: false,
        origin: Instant::now(),
        assume: Some(true),
        report_every: None,
        persist_overrides: false,
        announce: false,
    };
    let mut core = Director::new(parse("bench", &text), opts, Default::default());
    let mut step = |core: &mut Director, event: Event| {
        let t = Instant::now();
        core.handle(Instant::now(), event);
        drive(core, None, |r| worker::execute(&mut ipvs, r));
        (t.elapsed().as_secs_f64(), core.take_outcome().applied.len())
    };
    let (t_full, n_full) = step(&mut core, Event::Start);
    let w = parse("weight", &weight);
    let a = parse("added", &added);
    let (t_weight, n_weight) = step(&mut core, Event::Reload(Box::new(w)));
    let (t_add, n_add) = step(&mut core, Event::Reload(Box::new(a)));
    println!(
        "director full load {t_full:.4}s ({n_full} ops); one weight {t_weight:.6}s ({n_weight} ops); one service {t_add:.6}s ({n_add} ops); full/weight {:.0}x; full/service {:.0}x",
        t_full / t_weight,
        t_full / t_add
    );
}
