//! A request stream through a virtual IP, for the planned-handoff test
//! (tests/vm_handoff.rs, issue 11), with the two helpers that test needs in
//! the kernel VM: a slow real server, and a timeline of who holds the VIP.
//!
//!   vip_client stream --target NAME=IP:PORT [--target ...] [--path /slow/{ms}]
//!       [--delay-ms 100-300] [--rate 25] [--count 1000] [--secs 60]
//!       [--timeout-ms 2000] [--stop-file PATH] [--log FILE]
//!   vip_client serve --listen IP:PORT --name NAME [--secs 900]
//!   vip_client hold --target IP:PORT --status FILE [--conns 300] ...  (hold.rs)
//!   vip_client watch --out FILE --stop-file PATH --vips IP[,IP] --d1 PID --d2 PID
//!       --client PID --d1-mac MAC[,MAC] --d2-mac MAC[,MAC] [--gw PID:IP] [--secs 90]
//!       [--every-ms 20]
//!
//! `stream` starts `--rate` requests a second (the targets in turn), each on
//! a NEW TCP connection: one HTTP/1.0 GET, the response read to its end
//! (Content-Length bytes of body, else EOF), no retries, at
//! most `--timeout-ms` from the connect to the last byte. Requests overlap (a
//! slow server keeps several in flight; each has its own thread: plain
//! blocking sockets cost the guest least). It stops starting requests after
//! `--count` requests, `--secs` seconds or when `--stop-file` exists, then
//! waits for those in flight (each bounded by its timeout).
//!
//! One line per request, written when it ends (`--log`, else stdout):
//!
//!   req SEQ TARGET START END ok ANSWER LATENCY_MS PORT
//!   req SEQ TARGET START END fail REASON LATENCY_MS PORT
//!
//! START/END are CLOCK_BOOTTIME seconds, the clock of /proc/uptime, so they
//! line up with the times the test scripts take; ANSWER is the first line of
//! the body; PORT the connection's local port ("-" when it did not connect;
//! IPVS's connection table names it); REASON says what failed and where (refused-connect,
//! reset-response, timeout-connect, eof-before-status, status-503, ...). At
//! the end, on stdout (and in the log):
//!
//!   summary all sent N ok N failed N p50_ms X p99_ms X max_ms X secs S rate R start T
//!   summary TARGET sent N ok N failed N p50_ms X p99_ms X max_ms X
//!   reasons REASON=N ...
//!
//! (latencies of the successful requests; "-" when there are none.)
//!
//! `serve` is a slow real server (an application server, not a static
//! one): `GET /slow/MS` is answered after MS milliseconds (at most 60000),
//! anything else (the health checks' /status) at once; the body is NAME and
//! a newline. `GET /hold` keeps the connection: after the header, every line
//! the client sends is answered with NAME and a newline (`hold`'s
//! long-lived connections). A thread per connection; it exits after `--secs`.
//!
//! `watch` samples, every `--every-ms`, the network namespaces of the
//! directors d1, d2 and the client through /proc/PID/net of a process in
//! each: whether each director holds all the VIPs (fib_trie), whom the
//! client's ARP entry for the first VIP points at (and with `--gw` whom a
//! real server's entry for the gateway VIP points at), and the size of each
//! director's IPVS table (services/real servers/sum of weights). One line
//! per change, stamped with the end of the sample and the end of the one
//! before it (the change happened in between):
//!
//!   T PREV_T d1vip=0|1 d2vip=0|1 arp=d1|d2|none|incomplete|MAC [gw=...] d1ipvs=S/D/W d2ipvs=S/D/W

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

mod hold;

/// A response larger than this is cut off (the test's are a few bytes).
const MAX_RESPONSE: usize = 64 * 1024;
/// A request header larger than this is refused by `serve`.
const MAX_REQUEST: usize = 8 * 1024;
/// Hard bounds, whatever the options say.
const MAX_COUNT: u64 = 100_000;
const MAX_SECS: u64 = 3600;
const MAX_SLOW_MS: u64 = 60_000;
/// Threads in flight at most (stream: requests; serve: connections).
const MAX_THREADS: usize = 1000;
/// Stack of a request's or a connection's thread (they need little; a
/// small one is cheaper to map in the emulated guest).
const STACK: usize = 128 * 1024;
/// A stream this far behind its schedule starts afresh instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(500);

#[derive(Parser, Debug)]
#[command(about = "HTTP request stream through a VIP (tests/vm_handoff.rs)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send a bounded stream of requests, one new connection each.
    Stream(StreamArgs),
    /// A slow real server: GET /slow/MS answers after MS ms.
    Serve(ServeArgs),
    /// The timeline of a handoff: VIPs, ARP, IPVS tables.
    Watch(WatchArgs),
    /// Long-lived connections that keep exchanging data (hold.rs).
    Hold(hold::HoldArgs),
}

#[derive(clap::Args, Debug)]
struct StreamArgs {
    /// NAME=IP:PORT; several targets take turns.
    #[arg(long = "target", required = true, value_parser = parse_target)]
    targets: Vec<(String, SocketAddr)>,
    /// The request path; "{ms}" becomes the request's delay (--delay-ms).
    #[arg(long, default_value = "/")]
    path: String,
    /// MIN-MAX milliseconds: each request's delay, spread evenly
    /// (deterministically) over the range.
    #[arg(long, default_value = "0-0", value_parser = parse_range)]
    delay_ms: (u64, u64),
    /// Requests started per second.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    /// At most this many requests.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Stop starting requests after this many seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Per request: connect, send, and the whole response within this.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Stop starting requests once this file exists.
    #[arg(long)]
    stop_file: Option<PathBuf>,
    /// Request lines go here (default stdout).
    #[arg(long)]
    log: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    #[arg(long)]
    listen: SocketAddr,
    /// The body of every answer.
    #[arg(long)]
    name: String,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 900)]
    secs: u64,
}

#[derive(clap::Args, Debug)]
struct WatchArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    stop_file: PathBuf,
    /// The VIPs (comma-separated); the first is the client's.
    #[arg(long, value_delimiter = ',', required = true)]
    vips: Vec<String>,
    /// A process in d1's / d2's / the client's network namespace.
    #[arg(long)]
    d1: u32,
    #[arg(long)]
    d2: u32,
    #[arg(long)]
    client: u32,
    /// d1's MAC addresses (comma-separated), to name ARP entries.
    #[arg(long, value_delimiter = ',', required = true)]
    d1_mac: Vec<String>,
    #[arg(long, value_delimiter = ',', required = true)]
    d2_mac: Vec<String>,
    /// PID:IP: whom PID's namespace's ARP entry for IP points at.
    #[arg(long)]
    gw: Option<String>,
    #[arg(long, default_value_t = 90)]
    secs: u64,
    #[arg(long, default_value_t = 20)]
    every_ms: u64,
}

fn parse_target(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: want NAME=IP:PORT"))?;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{s:?}: the name must be one word"));
    }
    let addr = addr.parse().map_err(|e| format!("{addr:?}: {e}"))?;
    Ok((name.to_string(), addr))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u64 = a.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if a > b {
        return Err(format!("{s:?}: MIN > MAX"));
    }
    Ok((a, b))
}

/// CLOCK_BOOTTIME in seconds: /proc/uptime's clock.
fn boottime() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the one we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

// ---- stream ------------------------------------------------------------------

/// The outcome of one request.
struct Outcome {
    seq: u64,
    target: String,
    start: f64,
    end: f64,
    latency: Duration,
    /// The connection's local port, once connected.
    port: Option<u16>,
    /// Ok(answer) or Err(reason).
    result: Result<String, String>,
}

/// A reason word for an I/O error in `phase` (connect, send, response, body).
fn io_reason(phase: &str, e: &std::io::Error) -> String {
    let what = match e.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::ConnectionReset => "reset",
        ErrorKind::ConnectionAborted => "aborted",
        ErrorKind::BrokenPipe => "broken-pipe",
        // Socket timeouts: connect_timeout says TimedOut, reads WouldBlock.
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timeout",
        ErrorKind::HostUnreachable => "host-unreachable",
        ErrorKind::NetworkUnreachable => "net-unreachable",
        _ => {
            return match e.raw_os_error() {
                Some(n) => format!("errno{n}-{phase}"),
                None => format!("{:?}-{phase}", e.kind()).to_lowercase(),
            };
        }
    };
    format!("{what}-{phase}")
}

/// Time left until `deadline`, or the timeout reason for `phase`.
fn left(deadline: Instant, phase: &str) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d < Duration::from_millis(1) {
        Err(format!("timeout-{phase}"))
    } else {
        Ok(d)
    }
}

/// One request: connect, GET, read the response, all before `deadline`;
/// the first line of the body, or why not. `port` gets the connection's
/// local port.
fn request(
    addr: SocketAddr,
    path: &str,
    deadline: Instant,
    port: &mut Option<u16>,
) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, left(deadline, "connect")?)
        .map_err(|e| io_reason("connect", &e))?;
    *port = s.local_addr().ok().map(|a| a.port());
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: vip_client\r\n\r\n",
        addr.ip()
    );
    s.set_write_timeout(Some(left(deadline, "send")?))
        .map_err(|e| io_reason("send", &e))?;
    s.write_all(req.as_bytes())
        .map_err(|e| io_reason("send", &e))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    // Until EOF, or as a browser reads it: the header and Content-Length
    // bytes of body make the whole response (what comes after, a reset
    // included, no longer matters to the request).
    while !complete(&buf) {
        // What arrived so far says how far it got.
        let phase = if buf.is_empty() { "response" } else { "body" };
        s.set_read_timeout(Some(left(deadline, phase)?))
            .map_err(|e| io_reason(phase, &e))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    return Err("response-too-large".into());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_reason(phase, &e)),
        }
    }
    parse_response(&buf)
}

/// A response with a Content-Length header and that much body after it.
fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|len| buf.len() >= end + 4 + len)
}

/// The first body line of a 200 response, or what is wrong with it.
fn parse_response(buf: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(buf);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(if buf.is_empty() {
            "eof-before-status".into()
        } else {
            "eof-in-header".into()
        });
    };
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err("bad-status-line".into());
    }
    if code != "200" {
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        return Err(format!("status-{code}"));
    }
    let answer = body.lines().next().unwrap_or("").trim();
    if answer.is_empty() {
        return Err("empty-body".into());
    }
    // One word, so the line stays parseable.
    Ok(answer.split_whitespace().collect::<Vec<_>>().join("_"))
}

/// The request's delay: spread evenly over [min, max] by a fixed sequence.
fn delay_for(seq: u64, (min, max): (u64, u64)) -> u64 {
    if max == min {
        return min;
    }
    // A multiplicative hash of the sequence number: deterministic, spread.
    let h = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    min + h % (max - min + 1)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// "sent N ok N failed N p50_ms X p99_ms X max_ms X" for some outcomes.
fn summarize<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> String {
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut lat: Vec<f64> = Vec::new();
    for o in outcomes {
        sent += 1;
        match o.result {
            Ok(_) => lat.push(o.latency.as_secs_f64() * 1000.0),
            Err(_) => failed += 1,
        }
    }
    lat.sort_by(f64::total_cmp);
    format!(
        "sent {sent} ok {} failed {failed} p50_ms {} p99_ms {} max_ms {}",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied())
    )
}

fn line(o: &Outcome) -> String {
    let (word, detail) = match &o.result {
        Ok(a) => ("ok", a.as_str()),
        Err(r) => ("fail", r.as_str()),
    };
    format!(
        "req {} {} {:.3} {:.3} {word} {detail} {:.1} {}",
        o.seq,
        o.target,
        o.start,
        o.end,
        o.latency.as_secs_f64() * 1000.0,
        o.port.map_or("-".to_string(), |p| p.to_string())
    )
}

/// Writes request lines; stops writing (and says so once) if that fails.
struct Log {
    out: Box<dyn Write>,
    broken: bool,
}

impl Log {
    fn put(&mut self, s: &str) {
        if !self.broken
            && writeln!(self.out, "{s}")
                .and_then(|_| self.out.flush())
                .is_err()
        {
            eprintln!("vip_client: cannot write the request log");
            self.broken = true;
        }
    }
}

fn stream(a: StreamArgs) -> i32 {
    if !(a.rate > 0.0 && a.rate <= 10_000.0) {
        eprintln!("vip_client: --rate must be in (0, 10000]");
        return 2;
    }
    let count = a.count.min(MAX_COUNT);
    let secs = Duration::from_secs(a.secs.min(MAX_SECS));
    let timeout = Duration::from_millis(a.timeout_ms.clamp(1, 600_000));
    let out: Box<dyn Write> = match &a.log {
        Some(p) => match File::create(p) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("vip_client: {}: {e}", p.display());
                return 2;
            }
        },
        None => Box::new(std::io::stdout()),
    };
    let mut log = Log { out, broken: false };
    let (tx, rx) = mpsc::channel::<Outcome>();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let began_boot = boottime();
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut started = 0u64;
    let mut next = began;
    while started < count && began.elapsed() < secs {
        // Collect what ended while waiting for the next start.
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            match rx.recv_timeout(wait) {
                Ok(o) => {
                    log.put(&line(&o));
                    outcomes.push(o);
                }
                Err(_) => break,
            }
        }
        if Instant::now() < next {
            continue;
        }
        if a.stop_file.as_ref().is_some_and(|p| p.exists()) {
            break;
        }
        // Starved (the guest has one emulated CPU): no burst to catch up.
        let now = Instant::now();
        next = if now.duration_since(next) > MAX_LAG {
            now + period
        } else {
            next + period
        };
        let seq = started;
        started += 1;
        let (name, addr) = a.targets[(seq % a.targets.len() as u64) as usize].clone();
        let path = a
            .path
            .replace("{ms}", &delay_for(seq, a.delay_ms).to_string());
        let start = boottime();
        let t0 = Instant::now();
        if in_flight.load(Ordering::SeqCst) >= MAX_THREADS {
            let o = Outcome {
                seq,
                target: name,
                start,
                end: start,
                latency: Duration::ZERO,
                port: None,
                result: Err("client-busy".into()),
            };
            log.put(&line(&o));
            outcomes.push(o);
            continue;
        }
        let tx = tx.clone();
        let flight = in_flight.clone();
        flight.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                let mut port = None;
                let result = request(addr, &path, t0 + timeout, &mut port);
                let latency = t0.elapsed();
                let end = boottime();
                flight.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(Outcome {
                    seq,
                    target: name,
                    start,
                    end,
                    latency,
                    port,
                    result,
                });
            });
        if let Err(e) = spawned {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let o = Outcome {
                seq,
                target: a.targets[(seq % a.targets.len() as u64) as usize].0.clone(),
                start,
                end: boottime(),
                latency: t0.elapsed(),
                port: None,
                result: Err(format!("client-thread-{}", e.kind()).to_lowercase()),
            };
            log.put(&line(&o));
            outcomes.push(o);
        }
    }
    let sending = began.elapsed();
    drop(tx);
    // Every request ends within its timeout; this bound is a safety net.
    let deadline = Instant::now() + timeout + Duration::from_secs(5);
    while outcomes.len() < started as usize {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(o) => {
                log.put(&line(&o));
                outcomes.push(o);
            }
            Err(_) => break,
        }
    }
    let lost = started as usize - outcomes.len();
    let mut summary = vec![format!(
        "summary all {} secs {:.2} rate {:.1} start {began_boot:.3}",
        summarize(outcomes.iter()),
        sending.as_secs_f64(),
        started as f64 / sending.as_secs_f64().max(1e-3)
    )];
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in &a.targets {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for n in names {
        summary.push(format!(
            "summary {n} {}",
            summarize(outcomes.iter().filter(|o| o.target == n))
        ));
    }
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for o in &outcomes {
        if let Err(r) = &o.result {
            *reasons.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut r = String::from("reasons");
    for (k, v) in reasons {
        r.push_str(&format!(" {k}={v}"));
    }
    if lost > 0 {
        r.push_str(&format!(" unfinished={lost}"));
    }
    summary.push(r);
    let mut stdout = std::io::stdout();
    for s in &summary {
        // Not println!: a closed stdout must not panic.
        let _ = writeln!(stdout, "{s}");
        if a.log.is_some() {
            log.put(s);
        }
    }
    let _ = stdout.flush();
    0
}

// ---- serve -------------------------------------------------------------------

/// Reads a request header (bounded in size and time); its path.
fn read_path(s: &mut TcpStream) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_REQUEST {
            return None;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut w = text.lines().next()?.split_whitespace();
    (w.next()? == "GET").then_some(())?;
    w.next().map(str::to_string)
}

fn answer(mut s: TcpStream, name: &str) {
    let Some(path) = read_path(&mut s) else {
        let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\n");
        return;
    };
    if path == "/hold" {
        held(s, name);
        return;
    }
    if let Some(n) = path.strip_prefix("/slow/") {
        let delay = n.parse::<u64>().unwrap_or(0).min(MAX_SLOW_MS);
        std::thread::sleep(Duration::from_millis(delay));
    }
    let body = format!("{name}\n");
    let resp = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(resp.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Write);
}

/// `/hold`: a header, then NAME and a newline for every line received,
/// until the client closes (or is silent for ten minutes).
fn held(mut s: TcpStream, name: &str) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(600)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        .is_err()
    {
        return;
    }
    let line = format!("{name}\n");
    let mut chunk = [0u8; 512];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                for _ in chunk[..n].iter().filter(|&&b| b == b'\n') {
                    if s.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn serve(a: ServeArgs) -> i32 {
    let l = match TcpListener::bind(a.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vip_client serve: bind {}: {e}", a.listen);
            return 1;
        }
    };
    // The time limit: a timer thread ends the process.
    let secs = a.secs.min(MAX_SECS);
    let timer = std::thread::Builder::new().spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        std::process::exit(0);
    });
    if let Err(e) = timer {
        eprintln!("vip_client serve: {e}");
        return 1;
    }
    let name: Arc<str> = a.name.into();
    let open = Arc::new(AtomicUsize::new(0));
    for _ in 0..10_000_000u64 {
        let s = match l.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                // EMFILE and the like: back off a little.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= MAX_THREADS {
            continue; // dropped: closed
        }
        let (name, mine) = (name.clone(), open.clone());
        open.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || {
                answer(s, &name);
                mine.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
    0
}

// ---- watch -------------------------------------------------------------------

fn proc_net(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).ok()
}

/// "1" when every VIP is a local address of PID's namespace ("?" unknown).
fn holds(pid: u32, vips: &[String]) -> &'static str {
    let Some(trie) = proc_net(pid, "fib_trie") else {
        return "?";
    };
    let mut prev = "";
    let mut seen = vec![false; vips.len()];
    for l in trie.lines() {
        if l.contains("/32 host LOCAL") {
            let addr = prev.trim().trim_start_matches("|--").trim();
            for (i, v) in vips.iter().enumerate() {
                if addr == v {
                    seen[i] = true;
                }
            }
        }
        prev = l;
    }
    if seen.iter().all(|s| *s) { "1" } else { "0" }
}

/// Whom PID's namespace's ARP entry for IP points at.
fn arp(pid: u32, ip: &str, macs: &[(&str, &str)]) -> String {
    let Some(t) = proc_net(pid, "arp") else {
        return "?".into();
    };
    for l in t.lines().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 4 || w[0] != ip {
            continue;
        }
        if w[2] == "0x0" {
            return "incomplete".into();
        }
        return macs
            .iter()
            .find(|(_, m)| m.eq_ignore_ascii_case(w[3]))
            .map_or(w[3].to_string(), |(n, _)| n.to_string());
    }
    "none".into()
}

/// services/real servers/sum of weights of PID's namespace's IPVS table.
fn ipvs(pid: u32) -> String {
    let Some(t) = proc_net(pid, "ip_vs") else {
        return "?".into();
    };
    let (mut s, mut d, mut w) = (0, 0, 0u64);
    for l in t.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.first() {
            Some(&("TCP" | "UDP" | "FWM" | "SCTP")) => s += 1,
            Some(&"->") if f.get(1) != Some(&"RemoteAddress:Port") => {
                d += 1;
                w += f.get(3).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            }
            _ => {}
        }
    }
    format!("{s}/{d}/{w}")
}

fn watch(a: WatchArgs) -> i32 {
    let mut out = match File::create(&a.out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vip_client watch: {}: {e}", a.out.display());
            return 2;
        }
    };
    let gw: Option<(u32, String)> = match a.gw.as_deref().map(|g| g.split_once(':')) {
        None => None,
        Some(Some((p, ip))) => match p.parse() {
            Ok(p) => Some((p, ip.to_string())),
            Err(_) => {
                eprintln!("vip_client watch: --gw wants PID:IP");
                return 2;
            }
        },
        Some(None) => {
            eprintln!("vip_client watch: --gw wants PID:IP");
            return 2;
        }
    };
    let macs: Vec<(&str, &str)> = a
        .d1_mac
        .iter()
        .map(|m| ("d1", m.as_str()))
        .chain(a.d2_mac.iter().map(|m| ("d2", m.as_str())))
        .collect();
    let until = Instant::now() + Duration::from_secs(a.secs.min(MAX_SECS));
    let every = Duration::from_millis(a.every_ms.clamp(1, 10_000));
    let stop: &Path = &a.stop_file;
    let mut last = String::new();
    let mut prev_t = boottime();
    for _ in 0..1_000_000 {
        if Instant::now() >= until || stop.exists() {
            break;
        }
        let started = boottime();
        let mut s = format!(
            "d1vip={} d2vip={} arp={}",
            holds(a.d1, &a.vips),
            holds(a.d2, &a.vips),
            arp(a.client, &a.vips[0], &macs)
        );
        if let Some((pid, ip)) = &gw {
            s.push_str(&format!(" gw={}", arp(*pid, ip, &macs)));
        }
        s.push_str(&format!(" d1ipvs={} d2ipvs={}", ipvs(a.d1), ipvs(a.d2)));
        let t = boottime();
        // A slow sample (a starved guest) is printed too: a line that is not
        // printed read its state within 3 intervals of its end.
        if s != last || t - started > 3.0 * every.as_secs_f64() {
            if writeln!(out, "{t:.3} {prev_t:.3} {s}").is_err() {
                return 1;
            }
            last = s;
        }
        prev_t = t;
        std::thread::sleep(every);
    }
    let _ = writeln!(out, "{:.3} {prev_t:.3} end", boottime());
    0
}

fn main() {
    let rc = match Cli::parse().cmd {
        Cmd::Stream(a) => stream(a),
        Cmd::Serve(a) => serve(a),
        Cmd::Watch(a) => watch(a),
        Cmd::Hold(a) => hold::hold(a),
    };
    std::process::exit(rc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
    }

    #[test]
    fn delays_stay_in_range() {
        for seq in 0..1000 {
            let d = delay_for(seq, (100, 300));
            assert!((100..=300).contains(&d), "{d}");
        }
        assert_eq!(delay_for(5, (0, 0)), 0);
    }

    #[test]
    fn targets_and_ranges_parse() {
        assert_eq!(
            parse_target("a=10.0.0.1:80").unwrap(),
            ("a".to_string(), "10.0.0.1:80".parse().unwrap())
        );
        assert!(parse_target("10.0.0.1:80").is_err());
        assert_eq!(parse_range("100-300").unwrap(), (100, 300));
        assert_eq!(parse_range("5").unwrap(), (5, 5));
        assert!(parse_range("3-1").is_err());
    }

    #[test]
    fn content_length_completes_a_response() {
        assert!(!complete(
            b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nrs1"
        ));
        assert!(complete(
            b"HTTP/1.0 200 OK\r\ncontent-length: 4\r\n\r\nrs1\n"
        ));
        assert!(!complete(b"HTTP/1.0 200 OK\r\n\r\nrs1\n"));
        assert!(!complete(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n"));
    }

    #[test]
    fn responses_parse() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nrs1\n"),
            Ok("rs1".to_string())
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 503 No\r\n\r\nx"),
            Err("status-503".to_string())
        );
        assert_eq!(parse_response(b""), Err("eof-before-status".to_string()));
        assert_eq!(
            parse_response(b"HTTP/1.1 200"),
            Err("eof-in-header".to_string())
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\n\r\n"),
            Err("empty-body".to_string())
        );
    }

    #[test]
    fn a_local_server_answers_slowly_and_a_refused_port_fails() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            answer(s, "me");
        });
        let t0 = Instant::now();
        let mut port = None;
        let r = request(addr, "/slow/50", t0 + Duration::from_secs(5), &mut port);
        assert_eq!(r, Ok("me".to_string()));
        assert!(port.is_some_and(|p| p > 0));
        assert!(t0.elapsed() >= Duration::from_millis(50));
        t.join().unwrap();
        // The listener is gone: refused.
        let mut port = None;
        let r = request(
            addr,
            "/",
            Instant::now() + Duration::from_secs(5),
            &mut port,
        );
        assert_eq!(r, Err("refused-connect".to_string()));
        assert_eq!(port, None);
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let r = request(
            addr,
            "/",
            Instant::now() + Duration::from_millis(200),
            &mut None,
        );
        assert_eq!(r, Err("timeout-response".to_string()));
        drop(l);
    }
}
