//! Logging: one `tracing` layer that formats each event once, rate-limits
//! repeated lines with [`crate::log_limit`], and writes to
//! - **stderr**, plain with a timestamp (the console, `-l`), or, when systemd
//!   gave us the journal as stderr (`JOURNAL_STREAM` names stderr's
//!   device:inode), with sd-daemon `<N>` priority prefixes so that journald
//!   records real priorities;
//! - **syslog** (`-S FACILITY`), RFC 3164 datagrams to `/dev/log` (or the
//!   socket given), with keepalived's facility numbering and an
//!   `ipvsdir[PID]:` identity.
//!
//! Every line names its subsystem (`vrrp:`, `check:`, `ipvs:`, `script:`,
//! `config:`, `daemon:`), taken from the module the event comes from.
//!
//! **Rate limiting.** A line (same level, subsystem and text) is written at
//! most [`LIMIT_BURST`] times per [`LIMIT_PERIOD`]; repeats are counted and reported as
//! `N similar lines suppressed: TEXT` when the period ends, even if the
//! condition has stopped (a background thread flushes). At most
//! [`LIMIT_KEYS`] different lines are tracked per period; occurrences beyond
//! are counted and reported as one line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::log_limit::{LogLimit, Verdict};

/// The syslog socket of the system logger.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// At most [`LIMIT_BURST`] lines per period per distinct line.
pub const LIMIT_PERIOD: Duration = Duration::from_secs(10);
/// A short series of the same line (a few state changes) passes whole.
pub const LIMIT_BURST: u32 = 10;
/// How often held-back lines are reported (each once its period ended).
const FLUSH_TICK: Duration = Duration::from_secs(1);
/// Distinct lines tracked at once (a start with thousands of services logs
/// a line per service; about 200 bytes each, so a few MB at most).
pub const LIMIT_KEYS: usize = 16_384;

/// syslog facility codes (`<sys/syslog.h>`, before the shift).
pub const LOG_USER: u8 = 1;
pub const LOG_DAEMON: u8 = 3;
pub const LOG_LOCAL0: u8 = 16;

/// keepalived's `-S`/`--log-facility`: `0`-`7` and `local0`-`local7` are
/// LOG_LOCAL0-7, `user` and `daemon` themselves. None otherwise.
pub fn parse_facility(text: &str) -> Option<u8> {
    let n = text.strip_prefix("local").unwrap_or(text);
    if let Ok(i) = n.parse::<u8>()
        && i <= 7
        && !n.starts_with('+')
    {
        return Some(LOG_LOCAL0 + i);
    }
    match text {
        "user" => Some(LOG_USER),
        "daemon" => Some(LOG_DAEMON),
        _ => None,
    }
}

/// The syslog severity of a tracing level.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The subsystem an operator greps for, from an event's target (module path).
pub fn subsystem(target: &str) -> &'static str {
    let rest = target.strip_prefix("ipvsdir::").unwrap_or(target);
    let top = rest.split("::").next().unwrap_or(rest);
    // The director's health decisions (keepalived's healthcheckers say
    // "Adding service ... to VS ...") are the checkers' lines; its kernel
    // writer is IPVS.
    if rest.starts_with("lvs::director") && !rest.starts_with("lvs::director::kernel") {
        return "check";
    }
    match top {
        "vrrp" => "vrrp",
        "check" => "check",
        "lvs" => "ipvs",
        "script" => "script",
        "config" => "config",
        "mail" => "mail",
        "daemon" | "ipvsdir" => "daemon",
        _ => "lib",
    }
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM=DEV:INO` for
/// a service whose stderr is connected to journald; a redirected stderr no
/// longer matches.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// How stderr lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// `<N>subsystem: text` for journald.
    Journal,
    /// `TIMESTAMP LEVEL subsystem: text`.
    Console,
}

#[derive(Debug, Clone)]
pub struct Syslog {
    /// Facility code (see [`parse_facility`]).
    pub facility: u8,
    pub socket: PathBuf,
}

/// Where the logs go.
#[derive(Debug, Clone)]
pub struct Options {
    pub stderr: Option<Stderr>,
    pub syslog: Option<Syslog>,
    /// The identity in syslog lines (`ident[pid]:`).
    pub ident: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot log to syslog socket {path}: {source} — is a syslog daemon running? (or log to stderr: drop -S, or add -G)"
    )]
    Syslog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Installs the global subscriber: `filter` (RUST_LOG or the level) and
/// the layer; starts the thread that reports suppressed lines.
pub fn init(opts: Options, filter: tracing_subscriber::EnvFilter) -> Result<(), Error> {
    let sinks = Sinks::open(&opts)?;
    let layer = LogLayer::new(sinks, LIMIT_PERIOD, LIMIT_BURST);
    layer.spawn_flusher();
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    Ok(())
}

/// Where formatted lines go.
pub struct Sinks {
    stderr: Option<Stderr>,
    syslog: Option<SyslogSink>,
    ident: String,
    /// Lines also kept here (tests).
    capture: Option<Arc<Mutex<Vec<String>>>>,
}

impl Sinks {
    pub fn open(opts: &Options) -> Result<Sinks, Error> {
        let syslog = match &opts.syslog {
            Some(s) => Some(SyslogSink {
                sock: Mutex::new(connect(&s.socket)?),
                path: s.socket.clone(),
                facility: s.facility,
                dropped: AtomicU64::new(0),
            }),
            None => None,
        };
        Ok(Sinks {
            stderr: opts.stderr,
            syslog,
            ident: format!("{}[{}]", opts.ident, std::process::id()),
            capture: None,
        })
    }

    /// Sinks that only keep the lines (as the console would show them, without the time).
    pub fn capture() -> (Sinks, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sinks = Sinks {
            stderr: None,
            syslog: None,
            ident: "ipvsdir".into(),
            capture: Some(lines.clone()),
        };
        (sinks, lines)
    }

    fn write(&self, level: Level, subsystem: &str, text: &str) {
        if let Some(c) = &self.capture
            && let Ok(mut v) = c.lock()
        {
            v.push(format!("{level} {subsystem}: {text}"));
        }
        match self.stderr {
            Some(Stderr::Journal) => {
                // One record per line: continuation lines keep the priority.
                let mut out = String::new();
                for l in text.lines() {
                    let _ = writeln!(out, "<{}>{subsystem}: {l}", severity(level));
                }
                let _ = std::io::stderr().lock().write_all(out.as_bytes());
            }
            Some(Stderr::Console) => {
                let mut out = String::new();
                let _ = tracing_subscriber::fmt::time::FormatTime::format_time(
                    &tracing_subscriber::fmt::time::SystemTime,
                    &mut tracing_subscriber::fmt::format::Writer::new(&mut out),
                );
                let _ = writeln!(out, " {level:>5} {subsystem}: {text}");
                let _ = std::io::stderr().lock().write_all(out.as_bytes());
            }
            None => {}
        }
        if let Some(sys) = &self.syslog {
            let stamp = syslog_time();
            let head = |level: Level| {
                let pri = u16::from(sys.facility) * 8 + u16::from(severity(level));
                format!("<{pri}>{stamp} {}: ", self.ident)
            };
            let dropped = sys.dropped.load(Ordering::Relaxed);
            if dropped > 0 {
                let msg = format!(
                    "{}daemon: {dropped} log lines dropped: the syslog socket was full (is the syslog daemon keeping up?)",
                    head(Level::WARN)
                );
                if sys.send(&msg) {
                    sys.dropped.fetch_sub(dropped, Ordering::Relaxed);
                }
            }
            let head = head(level);
            for l in text.lines() {
                sys.send(&format!("{head}{subsystem}: {l}"));
            }
        }
    }
}

/// The syslog socket. Sends never block the daemon: when the logger's queue
/// is full a line is dropped and counted, and the count is logged once the
/// socket takes lines again.
struct SyslogSink {
    sock: Mutex<UnixDatagram>,
    path: PathBuf,
    facility: u8,
    dropped: AtomicU64,
}

impl SyslogSink {
    /// Sends one line; false (and counted) when it was dropped.
    fn send(&self, msg: &str) -> bool {
        let Ok(mut sock) = self.sock.lock() else {
            return false;
        };
        let sent = match sock.send(msg.as_bytes()) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            // The logger restarted (its socket is new): reconnect once.
            Err(_) => match connect(&self.path) {
                Ok(s) => {
                    *sock = s;
                    sock.send(msg.as_bytes()).is_ok()
                }
                Err(_) => false,
            },
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}

fn connect(path: &Path) -> Result<UnixDatagram, Error> {
    let err = |source| Error::Syslog {
        path: path.to_path_buf(),
        source,
    };
    let sock = UnixDatagram::unbound().map_err(err)?;
    sock.connect(path).map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    Ok(sock)
}

/// RFC 3164's `Mmm dd hh:mm:ss`, local time, as syslog(3) writes it.
fn syslog_time() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // SAFETY: time(NULL) and localtime_r with our own output struct.
    let tm = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return "Jan  1 00:00:00".into();
        }
        tm
    };
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// A configuration's diagnostics, one log line each at its level (the
/// source line and caret are for the terminal), under `config:`.
pub fn diagnostics(diags: &crate::config::diag::Diagnostics, prefix: &str) {
    use crate::config::diag::Severity;
    for d in &diags.items {
        let text = d.to_string();
        let first = text.lines().next().unwrap_or_default();
        match d.severity {
            Severity::Error => tracing::error!(target: "ipvsdir::config", "{prefix}{first}"),
            Severity::Warning => tracing::warn!(target: "ipvsdir::config", "{prefix}{first}"),
        }
    }
    if diags.more_errors + diags.more_warnings > 0 {
        tracing::warn!(
            target: "ipvsdir::config",
            "{prefix}... and {} more errors and {} more warnings",
            diags.more_errors,
            diags.more_warnings
        );
    }
}

/// One distinct line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LineKey {
    level: Level,
    subsystem: &'static str,
    text: String,
}

struct Shared {
    sinks: Sinks,
    limit: Mutex<LogLimit<LineKey>>,
}

impl Shared {
    /// Reports what the limiter held back whose period has ended.
    fn flush(&self, now: Instant) {
        let (due, overflow) = match self.limit.lock() {
            Ok(mut l) => l.flush(now),
            Err(_) => return,
        };
        for (k, n) in due {
            self.suppressed(&k, n);
        }
        if overflow > 0 {
            self.sinks.write(
                Level::WARN,
                "daemon",
                &format!("{overflow} lines suppressed (too many different lines at once)"),
            );
        }
    }

    fn suppressed(&self, k: &LineKey, n: u64) {
        let s = if n == 1 { "line" } else { "lines" };
        self.sinks.write(
            k.level,
            k.subsystem,
            &format!("{n} similar {s} suppressed: {}", k.text),
        );
    }
}

/// The `tracing` layer; see the module docs.
#[derive(Clone)]
pub struct LogLayer {
    shared: Arc<Shared>,
}

impl LogLayer {
    pub fn new(sinks: Sinks, period: Duration, burst: u32) -> LogLayer {
        LogLayer {
            shared: Arc::new(Shared {
                sinks,
                limit: Mutex::new(LogLimit::with_burst(period, burst, LIMIT_KEYS)),
            }),
        }
    }

    /// Reports held-back lines whose period has ended at `now`.
    pub fn flush(&self, now: Instant) {
        self.shared.flush(now);
    }

    /// A thread that reports held-back lines (each once its period has
    /// ended), for the life of the process.
    pub fn spawn_flusher(&self) {
        let shared = Arc::downgrade(&self.shared);
        let _ = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_TICK);
                    let Some(s) = shared.upgrade() else { return };
                    s.flush(Instant::now());
                }
            });
    }

    fn line(&self, level: Level, subsystem: &'static str, text: String) {
        let key = LineKey {
            level,
            subsystem,
            text,
        };
        let verdict = match self.shared.limit.lock() {
            Ok(mut l) => l.check(Instant::now(), &key),
            Err(_) => Verdict::Log { suppressed: 0 },
        };
        if let Verdict::Log { suppressed } = verdict {
            if suppressed > 0 {
                self.shared.suppressed(&key, suppressed);
            }
            self.shared.sinks.write(level, subsystem, &key.text);
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut v = Fields::default();
        event.record(&mut v);
        if !v.rest.is_empty() {
            if !v.message.is_empty() {
                v.message.push(' ');
            }
            v.message.push_str(&v.rest);
        }
        self.line(*meta.level(), subsystem(meta.target()), v.message);
    }
}

/// The message, then the other fields as `name=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.sep();
            let _ = write!(self.rest, "{}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.sep();
            let _ = write!(self.rest, "{}={value:?}", field.name());
        }
    }
}

impl Fields {
    fn sep(&mut self) {
        if !self.rest.is_empty() {
            self.rest.push(' ');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_are_keepalived_s() {
        assert_eq!(parse_facility("0"), Some(16));
        assert_eq!(parse_facility("7"), Some(23));
        assert_eq!(parse_facility("local3"), Some(19));
        assert_eq!(parse_facility("user"), Some(1));
        assert_eq!(parse_facility("daemon"), Some(3));
        assert_eq!(parse_facility("8"), None);
        assert_eq!(parse_facility("local8"), None);
        assert_eq!(parse_facility("+1"), None);
        assert_eq!(parse_facility("kern"), None);
    }

    #[test]
    fn levels_are_syslog_severities() {
        assert_eq!(severity(Level::ERROR), 3);
        assert_eq!(severity(Level::WARN), 4);
        assert_eq!(severity(Level::INFO), 6);
        assert_eq!(severity(Level::DEBUG), 7);
        assert_eq!(severity(Level::TRACE), 7);
    }

    #[test]
    fn subsystems_follow_the_module() {
        assert_eq!(subsystem("ipvsdir::vrrp::driver"), "vrrp");
        assert_eq!(subsystem("ipvsdir::check::engine"), "check");
        assert_eq!(subsystem("ipvsdir::lvs::worker"), "ipvs");
        assert_eq!(subsystem("ipvsdir::lvs::director"), "check");
        assert_eq!(subsystem("ipvsdir::lvs::director::kernel"), "ipvs");
        assert_eq!(subsystem("ipvsdir::daemon::run"), "daemon");
        assert_eq!(subsystem("ipvsdir"), "daemon");
    }

    #[test]
    fn repeated_lines_are_suppressed_and_counted() {
        let (sinks, lines) = Sinks::capture();
        let layer = LogLayer::new(sinks, Duration::from_secs(3600), 2);
        let subscriber = tracing_subscriber::registry().with(layer.clone());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                tracing::warn!(target: "ipvsdir::vrrp::driver", "(VI_1) bad advert");
            }
            tracing::warn!(target: "ipvsdir::vrrp::driver", "(VI_2) bad advert");
            tracing::info!(target: "ipvsdir::check::tcp", port = 80, "down");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "WARN vrrp: (VI_1) bad advert",
                "WARN vrrp: (VI_1) bad advert",
                "WARN vrrp: (VI_2) bad advert",
                "INFO check: down port=80",
            ]
        );
        layer.flush(Instant::now() + Duration::from_secs(3600));
        assert_eq!(
            lines.lock().unwrap()[4..],
            ["WARN vrrp: 998 similar lines suppressed: (VI_1) bad advert"]
        );
    }
}
