//! The poller of scripts/bench-director, in the guest: watches one process
//! tree's CPU time and the IPVS table cheaply (a bash loop costs ~5 ms of CPU
//! per poll under TCG, a quarter of the vCPU at 20 ms; this costs a few
//! syscalls).  std only: the script builds it with `rustc -O`.
//!
//! usage: watch MODE ARGS... <FIFO
//!   load EXPECTED   until the tree is idle and /proc/net/ip_vs holds EXPECTED
//!                   entries (read only when idle: a full read is costly)
//!   weight HEX W    until the real server HEX:0050 shows weight W in the first
//!                   lines of /proc/net/ip_vs (read every poll: one short read),
//!                   then until the tree is idle
//!   idle            until the tree is idle
//!   quiet SECS      until the tree has been idle for SECS
//!   burst SECS      up to SECS for a busy spell of >= 100 ms, then until idle
//! It starts, then reads "PID T0" from stdin (T0: the caller's clock just
//! before the event, microseconds since the epoch) and polls every
//! WATCH_INTERVAL_US (default 20000) for at most WATCH_LIMIT_S (default
//! 300) seconds.  Prints one line: res=ok|timeout|died at=US (the event: the
//! last busy poll, or the poll that saw the weight) idle=US (the tree idle
//! again) cpu=MS (the tree, t0 to idle) self=MS (this poller) polls=N
//! checks=N entries=N w=W; times relative to T0.
//!
//! "Idle": less than 1 ms of CPU over one interval, counted over the
//! threads of PID and of its children (listed again whenever the tree looks
//! idle, so a new thread or child is never missed).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const IDLE_NS: u64 = 1_000_000;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The first number of a schedstat file (ns on the CPU), re-read in place.
fn run_ns(f: &File, buf: &mut [u8]) -> Option<u64> {
    let n = f.read_at(buf, 0).ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

struct Tree {
    pid: u32,
    files: Vec<File>,
    buf: [u8; 128],
}

impl Tree {
    fn threads_of(pid: &str, out: &mut Vec<File>, kids: &mut Vec<String>) {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for e in dir.flatten() {
            let tid = e.file_name().to_string_lossy().into_owned();
            if let Ok(f) = File::open(format!("/proc/{pid}/task/{tid}/schedstat")) {
                out.push(f);
            }
            if let Ok(c) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
                kids.extend(c.split_whitespace().map(str::to_string));
            }
        }
    }

    fn relist(&mut self) {
        let mut files = Vec::new();
        let mut kids = Vec::new();
        Tree::threads_of(&self.pid.to_string(), &mut files, &mut kids);
        // Children and grandchildren (keepalived's checker, scripts).
        let mut i = 0;
        while i < kids.len() && i < 64 {
            let k = kids[i].clone();
            Tree::threads_of(&k, &mut files, &mut kids);
            i += 1;
        }
        self.files = files;
    }

    fn cpu(&mut self) -> u64 {
        let mut sum = 0;
        for f in &self.files {
            sum += run_ns(f, &mut self.buf).unwrap_or(0);
        }
        sum
    }

    /// Neither gone nor a zombie.
    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| Some(s[s.rfind(')')? + 1..].trim_start().starts_with('Z')))
            == Some(false)
    }
}

fn self_ms() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1_000_000
}

/// Entries (services + real servers) in /proc/net/ip_vs: big reads, so the
/// kernel restarts its walk of the table as seldom as possible.
fn entries() -> usize {
    let Ok(mut f) = File::open("/proc/net/ip_vs") else {
        return 0;
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
        }
    }
    lines.saturating_sub(3)
}

/// The weight of real server `needle` ("-> HEX:0050 ") in the first 8 KB.
fn weight(f: &File, needle: &str, buf: &mut [u8]) -> Option<u32> {
    let n = f.read_at(buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let at = text.find(needle)?;
    let mut words = text[at + needle.len()..].split_whitespace();
    words.next()?; // forwarding method
    words.next()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("", String::as_str).to_string();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let interval = Duration::from_micros(
        std::env::var("WATCH_INTERVAL_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000),
    );
    let limit_us: u64 = std::env::var("WATCH_LIMIT_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
        * 1_000_000;
    // One line: a writer that leaked into a child must not keep us waiting.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let mut it = line.split_whitespace();
    let (Some(pid), Some(t0)) = (
        it.next().and_then(|p| p.parse::<u32>().ok()),
        it.next().and_then(|t| t.parse::<u64>().ok()),
    ) else {
        println!("res=usage");
        std::process::exit(2);
    };
    let self0 = self_ms();
    let mut tree = Tree {
        pid,
        files: Vec::new(),
        buf: [0; 128],
    };
    tree.relist();
    let c0 = tree.cpu();
    let mut last = c0;
    let mut busy_at = now_us().max(t0);
    let mut busy_from: Option<u64> = None;
    let mut idle_since = busy_at;
    let (mut polls, mut checks, mut e, mut w) = (0u64, 0u64, 0usize, String::from("-"));
    let mut at: Option<u64> = None;
    let mut res = "timeout";
    let ipvs = File::open("/proc/net/ip_vs").ok();
    let needle = format!("-> {}:0050 ", arg(1));
    let want_w: u32 = arg(2).parse().unwrap_or(0);
    let secs: u64 = arg(1).parse().unwrap_or(0);
    let mut page = vec![0u8; 8192];
    loop {
        std::thread::sleep(interval);
        let t = now_us();
        if t.saturating_sub(t0) > limit_us {
            break;
        }
        polls += 1;
        let mut cpu = tree.cpu();
        if mode == "weight" && at.is_none() {
            checks += 1;
            if let Some(v) = ipvs.as_ref().and_then(|f| weight(f, &needle, &mut page)) {
                w = v.to_string();
                if v == want_w {
                    at = Some(t);
                    busy_at = t;
                }
            }
        }
        let mut busy = cpu.saturating_sub(last) >= IDLE_NS;
        if !busy {
            // Looks idle: still there?  New threads or children?
            if !tree.alive() {
                res = "died";
                break;
            }
            tree.relist();
            cpu = tree.cpu();
            busy = cpu.saturating_sub(last) >= IDLE_NS;
        }
        last = cpu;
        if busy {
            busy_at = t;
            idle_since = t;
            busy_from.get_or_insert(t);
            continue;
        }
        let done = match mode.as_str() {
            "load" => {
                checks += 1;
                e = entries();
                e.to_string() == arg(1)
            }
            "weight" => at.is_some(),
            "idle" => true,
            "quiet" => t - idle_since >= secs * 1_000_000,
            "burst" => match busy_from.take() {
                Some(from) if busy_at - from >= 100_000 => {
                    at = Some(busy_at - from + t0);
                    true
                }
                _ => t - t0 >= secs * 1_000_000,
            },
            _ => {
                res = "usage";
                break;
            }
        };
        if done {
            res = if mode == "burst" && at.is_none() {
                "none"
            } else {
                "ok"
            };
            break;
        }
    }
    let event = match mode.as_str() {
        "weight" | "burst" => at.map(|a| a.saturating_sub(t0)),
        _ => Some(busy_at.saturating_sub(t0)),
    };
    println!(
        "res={res} at={} idle={} cpu={} self={} polls={polls} checks={checks} entries={e} w={w}",
        event.map_or("-".into(), |v| v.to_string()),
        busy_at.saturating_sub(t0),
        last.saturating_sub(c0) / 1_000_000,
        self_ms().saturating_sub(self0),
    );
}
