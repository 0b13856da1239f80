//! Load generator and meter for the checker engine (driven by
//! scripts/bench-check):
//!
//!   bench_check serve --count N --kind tcp|http      listeners on 127.0.0.x
//!   bench_check check --count N --kind tcp|http --delay-loop S --secs T
//!
//! `check` runs ipvsdir's real engine (ProbePlan + engine::spawn, no IPVS)
//! against the listeners and prints checks per second, how late checks
//! start relative to their schedule (the engine's own histogram, 12%
//! resolution), the engine's CPU use and peak RSS.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipvsdir::check::engine::{self, Board, Clock};
use ipvsdir::check::health::ProbePlan;
use ipvsdir::check::probe::ProbeContext;
use ipvsdir::config::{LoadOptions, load_str};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORTS_PER_ADDR: usize = 500;

/// The i-th listener address: 127.0.1.x:20000+ (x changes every 500 ports).
fn addr(i: usize) -> SocketAddr {
    let host = 1 + (i / PORTS_PER_ADDR) as u8;
    SocketAddr::new(
        Ipv4Addr::new(127, 0, 1, host).into(),
        20000 + (i % PORTS_PER_ADDR) as u16,
    )
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

async fn serve(count: usize, http: bool) {
    for i in 0..count {
        let l = match tokio::net::TcpListener::bind(addr(i)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind {}: {e}", addr(i));
                std::process::exit(1);
            }
        };
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                if !http {
                    continue;
                }
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = s
                        .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                        .await;
                });
            }
        });
    }
    eprintln!(
        "serving {count} {} listeners",
        if http { "http" } else { "tcp" }
    );
    std::future::pending::<()>().await;
}

fn config(count: usize, http: bool, delay_loop: f64) -> String {
    let checker = if http {
        "HTTP_GET {\n url {\n path /\n }\n connect_timeout 2\n }"
    } else {
        "TCP_CHECK {\n connect_timeout 2\n }"
    };
    let mut text = String::new();
    for vs in 0..count.div_ceil(10) {
        text.push_str(&format!(
            "virtual_server 10.{}.{}.1 80 {{\n delay_loop {delay_loop}\n",
            vs / 256,
            vs % 256
        ));
        for i in vs * 10..((vs + 1) * 10).min(count) {
            let a = addr(i);
            text.push_str(&format!(
                " real_server {} {} {{\n {checker}\n }}\n",
                a.ip(),
                a.port()
            ));
        }
        text.push_str("}\n");
    }
    text
}

/// utime + stime of this process in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn check(count: usize, http: bool, delay_loop: f64, secs: u64) {
    let l = load_str(
        "bench.conf",
        &config(count, http, delay_loop),
        &LoadOptions::default(),
    );
    let Some(cfg) = l.config else {
        eprintln!("{}", l.diagnostics);
        std::process::exit(1);
    };
    let plan = ProbePlan::new(&cfg);
    let clock = Clock(Instant::now());
    let board = Board::new(&plan, clock.now());
    // The daemon's arrangement: every result goes to the board, only
    // changes come over the channel (drained here, as the daemon does).
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let tasks = engine::spawn(
        &plan,
        Arc::new(ProbeContext::default()),
        clock,
        board.clone(),
        tx,
    );
    let changes = tokio::spawn(async move {
        let mut n = 0u64;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    // Warmup spreads the first checks over one delay_loop; measure after two.
    tokio::time::sleep(Duration::from_secs_f64(delay_loop * 2.0)).await;
    let (t0, c0, s0) = (Instant::now(), cpu_seconds(), board.stats.snapshot());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let w = board.stats.snapshot().since(&s0);
    let cpu = cpu_seconds() - c0;
    let wall = t0.elapsed().as_secs_f64();
    for t in tasks {
        t.abort();
    }
    let changes = changes.await.unwrap_or(0);
    let pct = |q: f64| w.lateness(q).as_secs_f64() / delay_loop * 100.0;
    println!(
        "{} x{count} delay_loop {delay_loop}s: {:.0} checks/s (expected {:.0}), {} ok {} failed {} local, {changes} state changes; start lateness p50 {:.1}% p99 {:.1}% max {:.1}% of delay_loop; CPU {:.1}% of one core; peak RSS {:.1} MB; {} probes",
        if http { "HTTP_GET" } else { "TCP_CHECK" },
        w.probes as f64 / wall,
        count as f64 / delay_loop,
        w.probes - w.failed,
        w.failed,
        w.local,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        cpu / wall * 100.0,
        peak_rss_mb(),
        plan.probes.len(),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = arg(&args, "--count", "10000").parse().unwrap_or(10000);
    let http = arg(&args, "--kind", "tcp") == "http";
    // --threads 0 (the default): the daemon's own runtime; N: N workers.
    let threads: usize = arg(&args, "--threads", "0").parse().unwrap_or(0);
    let rt = if threads == 0 {
        ipvsdir::daemon::run::runtime()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    match args.get(1).map(String::as_str) {
        Some("serve") => rt.block_on(serve(count, http)),
        // The virtual_server blocks `check` runs, for a daemon's config
        // (scripts/bench-vrrp-load).
        Some("config") => {
            let delay_loop: f64 = arg(&args, "--delay-loop", "1").parse().unwrap_or(1.0);
            print!("{}", config(count, http, delay_loop));
        }
        Some("check") => {
            let delay_loop: f64 = arg(&args, "--delay-loop", "1").parse().unwrap_or(1.0);
            let secs: u64 = arg(&args, "--secs", "30").parse().unwrap_or(30);
            rt.block_on(check(count, http, delay_loop, secs));
        }
        _ => eprintln!(
            "usage: bench_check serve|check|config --count N --kind tcp|http [--delay-loop S --secs T] [--threads N (0: the daemon's runtime)]"
        ),
    }
}
