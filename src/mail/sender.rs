//! The I/O edge of mail alerts: a tokio task that takes [`Alert`]s from a
//! bounded queue and mails them through `smtp_server` with lettre, one
//! connection per mail, as keepalived does (plain SMTP, no TLS, no auth).
//! Whoever decides an alert only calls [`Sink::send`], which never blocks:
//! when the queue is full the alert is dropped and counted. What goes out
//! when is the [`Outbox`]'s decision; failures are logged at warning level
//! with the server's address, at most once a minute (then how many more).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::mpsc;

use super::compose::Alert;
use super::outbox::{Outbox, Outgoing};
use crate::config::model::GlobalDefs;
use crate::log_limit::{LogLimit, Verdict};

/// Alerts waiting between the cores and the sender task.
pub const QUEUE: usize = 256;
/// At stop, what is still held is mailed within at most this long.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// A failing server is logged once per this period (then how many more).
const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("notification_email_from '{0}' is not a mail address: {1}")]
    From(String, lettre::address::AddressError),
    #[error("notification_email '{0}' is not a mail address: {1}")]
    To(String, lettre::address::AddressError),
    #[error("cannot build the mail: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("no answer within smtp_connect_timeout ({} s)", .0.as_secs_f64())]
    Timeout(Duration),
}

/// Where and how mail goes, from global_defs with keepalived's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// `smtp_helo_name` (default: the host name).
    pub helo: String,
    /// `notification_email_from` (default: `USER@HOSTNAME`).
    pub from: String,
    pub to: Vec<String>,
    /// `router_id` (default: the host name), in each subject.
    pub router_id: String,
    /// `smtp_connect_timeout`: for the connection and the whole exchange.
    pub timeout: Duration,
}

impl Settings {
    /// None when the file configures no mail (no recipients or no server).
    pub fn of(global: &GlobalDefs, hostname: &str, user: &str) -> Option<Settings> {
        if !global.mail_configured() {
            return None;
        }
        let server = global.smtp_server.as_ref()?;
        Some(Settings {
            host: server.host.clone(),
            port: server.port,
            helo: global
                .smtp_helo_name
                .clone()
                .unwrap_or_else(|| hostname.to_string()),
            from: global
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("{user}@{hostname}")),
            to: global.notification_email.clone(),
            router_id: global
                .router_id
                .clone()
                .unwrap_or_else(|| hostname.to_string()),
            timeout: global.smtp_connect_timeout.0,
        })
    }

    /// `smtp_server` as the log names it.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The mail for `out`, as keepalived writes it: `[router_id] ` before
    /// the subject, every recipient in one To:, `X-Mailer: Keepalived`.
    pub fn message(&self, out: &Outgoing) -> Result<Message, MailError> {
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| MailError::From(self.from.clone(), e))?;
        let mut b = Message::builder()
            .from(from)
            .subject(format!("[{}] {}", self.router_id, out.subject))
            .header(XMailer)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            let mb: Mailbox = to.parse().map_err(|e| MailError::To(to.clone(), e))?;
            b = b.to(mb);
        }
        Ok(b.body(format!("{}\r\n", out.body))?)
    }
}

/// `X-Mailer: Keepalived` (filters written for keepalived's mails match).
#[derive(Debug, Clone, Copy)]
struct XMailer;

impl Header for XMailer {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Mailer")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XMailer)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "Keepalived".to_string())
    }
}

/// The host name (keepalived's default router_id, HELO name and sender domain).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The user this process runs as (the default sender's local part).
pub fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name)
}

enum Command {
    Alert(Alert),
    Settings(Option<Settings>),
    /// Mail what is held (within FLUSH_LIMIT) and end.
    Close,
}

/// Where the cores' alerts go. Cheap to clone, usable from any thread;
/// the default one drops everything (no mail configured).
#[derive(Debug, Clone, Default)]
pub struct Sink {
    tx: Option<mpsc::Sender<Command>>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Alert(_) => "Alert",
            Command::Settings(_) => "Settings",
            Command::Close => "Close",
        })
    }
}

impl Sink {
    /// Hands `alert` to the sender; never blocks (a full queue drops it).
    pub fn send(&self, alert: Alert) {
        if let Some(tx) = &self.tx
            && tx.try_send(Command::Alert(alert)).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Alerts dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The running sender: its sink, and the handle to reconfigure and stop it.
pub struct Mailer {
    sink: Sink,
    task: tokio::task::JoinHandle<()>,
}

impl Mailer {
    /// Starts the sender task (on the current tokio runtime) with these
    /// settings (None: alerts are discarded until a reload configures mail).
    pub fn spawn(settings: Option<Settings>) -> Mailer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(rx, settings, dropped.clone()));
        Mailer {
            sink: Sink {
                tx: Some(tx),
                dropped,
            },
            task,
        }
    }

    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// New settings after a reload (queued behind the alerts already sent).
    pub async fn reconfigure(&self, settings: Option<Settings>) {
        if let Some(tx) = &self.sink.tx {
            let _ = tx.send(Command::Settings(settings)).await;
        }
    }

    /// Mails what is held (at most [`FLUSH_LIMIT`], whatever the rate) and ends.
    pub async fn close(self) {
        if let Some(tx) = &self.sink.tx {
            let _ = tx.send(Command::Close).await;
        }
        let _ = tokio::time::timeout(FLUSH_LIMIT + Duration::from_secs(1), self.task).await;
    }
}

async fn deliver(settings: Settings, out: Outgoing) -> (Settings, Outgoing, Result<(), MailError>) {
    let result = async {
        let message = settings.message(&out)?;
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .timeout(Some(settings.timeout))
                .hello_name(ClientId::Domain(settings.helo.clone()))
                .build();
        // lettre's timeout bounds the connect only (not the replies on
        // its async stream): the whole exchange gets smtp_connect_timeout.
        match tokio::time::timeout(settings.timeout, transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(MailError::from),
            Err(_) => Err(MailError::Timeout(settings.timeout)),
        }
    }
    .await;
    (settings, out, result)
}

struct Failures {
    limit: LogLimit<()>,
}

impl Failures {
    fn report(&mut self, now: Instant, settings: &Settings, out: &Outgoing, e: &MailError) {
        let what = match out.alerts {
            1 => format!("'{}'", out.subject),
            n => format!("{n} alerts"),
        };
        match self.limit.check(now, &()) {
            Verdict::Log { suppressed } => {
                let more = match suppressed {
                    0 => String::new(),
                    n => format!(" ({n} more failed since the last such line)"),
                };
                tracing::warn!(
                    "cannot mail {what} through SMTP server {}: {e}{more}",
                    settings.server()
                );
            }
            Verdict::Suppress => {}
        }
    }

    fn flush(&mut self, now: Instant, settings: Option<&Settings>) {
        let (due, _) = self.limit.flush(now);
        for ((), n) in due {
            let server = settings.map_or_else(|| "?".to_string(), Settings::server);
            tracing::warn!("{n} more mails could not be sent through SMTP server {server}");
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Command>,
    mut settings: Option<Settings>,
    dropped: Arc<AtomicU64>,
) {
    type Flight = std::pin::Pin<
        Box<dyn std::future::Future<Output = (Settings, Outgoing, Result<(), MailError>)> + Send>,
    >;
    let mut outbox = Outbox::default();
    let mut flight: Option<Flight> = None;
    let mut failures = Failures {
        limit: LogLimit::new(FAILURE_LOG_PERIOD, 4),
    };
    let mut told_dropped = 0;
    let mut closing: Option<Instant> = None;
    loop {
        let now = Instant::now();
        failures.flush(now, settings.as_ref());
        let lost = dropped.load(Ordering::Relaxed);
        if lost > told_dropped {
            tracing::warn!(
                "{} alerts dropped: the queue to the mail sender was full",
                lost - told_dropped
            );
            told_dropped = lost;
        }
        if flight.is_none()
            && let Some(s) = &settings
        {
            let next = match closing {
                Some(_) => outbox.take_all(),
                None => outbox.poll(now),
            };
            if let Some(out) = next {
                flight = Some(Box::pin(deliver(s.clone(), out)));
            }
        }
        if let Some(until) = closing
            && (flight.is_none() || now >= until)
        {
            if !outbox.is_empty() || flight.is_some() {
                tracing::warn!("stopping with alerts not mailed");
            }
            return;
        }
        let wake = match closing {
            Some(until) => Some(until),
            None => outbox.poll_timeout(),
        };
        tokio::select! {
            cmd = rx.recv(), if closing.is_none() => match cmd {
                Some(Command::Alert(a)) => {
                    if settings.is_some() {
                        outbox.push(a);
                    }
                }
                Some(Command::Settings(s)) => settings = s,
                Some(Command::Close) | None => {
                    // What is left in the queue comes first.
                    while let Ok(c) = rx.try_recv() {
                        if let Command::Alert(a) = c && settings.is_some() {
                            outbox.push(a);
                        }
                    }
                    closing = Some(Instant::now() + FLUSH_LIMIT);
                }
            },
            done = async {
                match flight.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if flight.is_some() => {
                flight = None;
                outbox.done();
                let (s, out, result) = done;
                match result {
                    Ok(()) => tracing::debug!("'{}' sent through SMTP server {}", out.subject, s.server()),
                    Err(e) => failures.report(Instant::now(), &s, &out, &e),
                }
            }
            _ = sleep_until(wake), if wake.is_some() => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
