//! `hold`: long-lived connections through a VIP that keep exchanging data,
//! for the scale-out test (tests/vm_scaleout.rs): every connection must stay
//! with the real server that answered it first, whatever happens to the
//! directors in between.
//!
//!   vip_client hold --target IP:PORT --status FILE [--conns 300]
//!       [--every-ms 1000] [--timeout-ms 10000] [--secs 600] [--stop-file PATH]
//!
//! Each connection sends `GET /hold HTTP/1.0`; `serve` answers with a header
//! and then, for every line the client sends, one line: its name. After the
//! first answer the client sends a line every `--every-ms` (the connections
//! staggered over that period), and reads the answer within `--timeout-ms`.
//! A connection is lost when an exchange fails (reset, EOF, no answer in
//! time) or another server answers; it is not reopened. An exchange slower
//! than a second (a stall while the network moved the flow) is counted.
//!
//! The status FILE is rewritten (write, then rename) every half second and
//! at the end, when it is also printed:
//!
//!   hold opened N open N lost N closed N open_failed N exchanges N slow N
//!       max_ms N servers NAME=N,... reasons REASON=N,...|-

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{MAX_SECS, STACK, io_reason};

/// At most this many connections, whatever --conns says.
const MAX_CONNS: usize = 1000;
/// An answer line longer than this is not the server's name.
const MAX_LINE: usize = 256;
/// Connections opened a second (a burst of SYNs helps nobody).
const OPEN_RATE: u64 = 100;

#[derive(clap::Args, Debug)]
pub struct HoldArgs {
    #[arg(long)]
    target: SocketAddr,
    #[arg(long)]
    status: PathBuf,
    #[arg(long, default_value_t = 300)]
    conns: usize,
    /// One exchange per connection this often.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,
    /// An exchange's answer must arrive within this.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    #[arg(long, default_value_t = 600)]
    secs: u64,
    #[arg(long)]
    stop_file: Option<PathBuf>,
}

/// The counts every connection adds to.
#[derive(Default)]
struct Tally {
    opened: u64,
    open: u64,
    lost: u64,
    closed: u64,
    open_failed: u64,
    exchanges: u64,
    slow: u64,
    max_ms: u64,
    servers: BTreeMap<String, u64>,
    reasons: BTreeMap<String, u64>,
}

impl Tally {
    fn line(&self) -> String {
        let list = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "-".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }
        };
        format!(
            "hold opened {} open {} lost {} closed {} open_failed {} exchanges {} slow {} max_ms {} servers {} reasons {}",
            self.opened,
            self.open,
            self.lost,
            self.closed,
            self.open_failed,
            self.exchanges,
            self.slow,
            self.max_ms,
            list(&self.servers),
            list(&self.reasons)
        )
    }
}

fn tally(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    // A panicked connection thread leaves the counts as they were.
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one line (without the newline) before the socket's read timeout.
fn read_line(s: &mut TcpStream, phase: &str) -> Result<String, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Err(format!("eof-{phase}")),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_reason(phase, &e)),
        }
        if line.len() > MAX_LINE {
            return Err(format!("long-line-{phase}"));
        }
    }
    Ok(String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_string())
}

/// Opens one held connection: the request, the header, the first answer.
fn open(addr: SocketAddr, timeout: Duration) -> Result<(TcpStream, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| io_reason("connect", &e))?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(timeout))
        .and_then(|_| s.set_write_timeout(Some(timeout)))
        .map_err(|e| io_reason("connect", &e))?;
    s.write_all(b"GET /hold HTTP/1.0\r\nUser-Agent: vip_client\r\n\r\n")
        .map_err(|e| io_reason("send", &e))?;
    let status = read_line(&mut s, "response")?;
    if !status.contains(" 200 ") {
        return Err("status-not-200".into());
    }
    // The rest of the header, up to the empty line.
    for _ in 0..32 {
        if read_line(&mut s, "response")?.is_empty() {
            let name = exchange(&mut s)?;
            return Ok((s, name));
        }
    }
    Err("header-too-long".into())
}

/// One exchange: a line out, the server's name back.
fn exchange(s: &mut TcpStream) -> Result<String, String> {
    s.write_all(b"n\n").map_err(|e| io_reason("send", &e))?;
    read_line(s, "answer")
}

struct Shared {
    addr: SocketAddr,
    every: Duration,
    timeout: Duration,
    tally: Mutex<Tally>,
    stop: AtomicBool,
}

/// One connection for its whole life; `offset` staggers its exchanges.
fn hold_one(sh: &Shared, offset: Duration) {
    let (mut s, first) = match open(sh.addr, sh.timeout) {
        Ok(v) => v,
        Err(reason) => {
            let mut t = tally(&sh.tally);
            t.open_failed += 1;
            *t.reasons.entry(format!("open-{reason}")).or_default() += 1;
            return;
        }
    };
    {
        let mut t = tally(&sh.tally);
        t.opened += 1;
        t.open += 1;
        *t.servers.entry(first.clone()).or_default() += 1;
    }
    let mut next = Instant::now() + offset;
    while !sh.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            // Short sleeps: a stop is seen within 100 ms.
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next += sh.every;
        if next < now {
            next = now + sh.every;
        }
        let t0 = Instant::now();
        let outcome = match exchange(&mut s) {
            Ok(name) if name == first => Ok(()),
            Ok(_) => Err("other-server".to_string()),
            Err(r) => Err(r),
        };
        let ms = t0.elapsed().as_millis() as u64;
        let mut t = tally(&sh.tally);
        match outcome {
            Ok(()) => {
                t.exchanges += 1;
                t.max_ms = t.max_ms.max(ms);
                if ms > 1000 {
                    t.slow += 1;
                }
            }
            Err(reason) => {
                t.open -= 1;
                t.lost += 1;
                *t.reasons.entry(reason).or_default() += 1;
                return;
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let mut t = tally(&sh.tally);
    t.open -= 1;
    t.closed += 1;
}

fn write_status(path: &Path, line: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, format!("{line}\n"))
        .and_then(|_| std::fs::rename(&tmp, path))
        .is_err()
    {
        eprintln!("vip_client hold: cannot write {}", path.display());
    }
}

pub fn hold(a: HoldArgs) -> i32 {
    let conns = a.conns.clamp(1, MAX_CONNS);
    let sh = Arc::new(Shared {
        addr: a.target,
        every: Duration::from_millis(a.every_ms.clamp(10, 60_000)),
        timeout: Duration::from_millis(a.timeout_ms.clamp(10, 600_000)),
        tally: Mutex::new(Tally::default()),
        stop: AtomicBool::new(false),
    });
    let began = Instant::now();
    let limit = Duration::from_secs(a.secs.min(MAX_SECS));
    let stopped =
        |a: &HoldArgs| began.elapsed() >= limit || a.stop_file.as_deref().is_some_and(Path::exists);
    let mut threads = Vec::with_capacity(conns);
    let mut last_status = Instant::now();
    for i in 0..conns {
        if stopped(&a) {
            break;
        }
        let offset = sh.every.mul_f64(i as f64 / conns as f64);
        let mine = sh.clone();
        match std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || hold_one(&mine, offset))
        {
            Ok(h) => threads.push(h),
            Err(_) => {
                let mut t = tally(&sh.tally);
                t.open_failed += 1;
                *t.reasons.entry("open-no-thread".into()).or_default() += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1000 / OPEN_RATE));
        if last_status.elapsed() >= Duration::from_millis(500) {
            write_status(&a.status, &tally(&sh.tally).line());
            last_status = Instant::now();
        }
    }
    while !stopped(&a) {
        write_status(&a.status, &tally(&sh.tally).line());
        std::thread::sleep(Duration::from_millis(500));
    }
    sh.stop.store(true, Ordering::Relaxed);
    // Every thread ends within its exchange's timeout; wait no longer.
    let deadline = Instant::now() + sh.timeout + Duration::from_secs(1);
    while threads.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = tally(&sh.tally).line();
    write_status(&a.status, &line);
    println!("{line}");
    0
}
