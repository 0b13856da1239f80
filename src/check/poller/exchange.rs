//! One probe in flight on the poller: TCP_CHECK's connect, or HTTP_GET's
//! urls one after another, each a fresh connection: the request written,
//! the response read into the [`Reader`]. A step runs the non-blocking
//! system calls that readiness allows and says what is next: wait for the
//! socket or the deadline, or the probe's result.
//!
//! Time, as the tokio client has it (keepalived's): `connect_timeout` for
//! the connect with the request written, then for every silence while the
//! response comes (each read restarts it).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::check::http::client::io_text;
use crate::check::http::reader::Reader;
use crate::check::http::response::Progress;
use crate::check::http::{FetchError, PreparedHttp};
use crate::check::prepared::Prepared;
use crate::check::probe::ProbeResult;
use crate::check::tcp::{self, ConnectError, FirstWords};

/// Reads one readiness event may make before other probes get their turn
/// (a long body streams on in the next turn).
const READS_PER_TURN: usize = 64;

/// What the poller lends a step: its epoll, and its read buffer.
pub struct Io<'p> {
    pub registry: &'p Registry,
    pub scratch: &'p mut [u8],
}

/// A probe in flight.
pub struct Exchange {
    stream: TcpStream,
    /// The connection may stay silent until then.
    pub deadline: Instant,
    stage: Stage,
    /// HTTP_GET: the url being fetched.
    url: usize,
}

enum Stage {
    /// TCP_CHECK: the handshake is under way.
    Connecting,
    /// HTTP_GET: connecting, `sent` bytes of the request written.
    Sending { sent: usize },
    /// HTTP_GET: the response is coming.
    Reading(Box<Reader>),
}

/// Where a step leaves the probe.
pub enum Step {
    /// Waiting for the socket or the deadline.
    Wait(Exchange),
    /// Readable still, after its share of reads: another turn, at once.
    Again(Exchange),
    Done(ProbeResult),
}

/// The probes the poller runs: the ones that are one TCP connection from
/// here and nothing else (SSL_GET and the others run as tokio tasks).
pub enum Polled {
    Tcp {
        addr: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
    },
    Http(Box<PreparedHttp>),
}

impl Polled {
    /// The probe, when the poller runs it; else it back. (Once per probe
    /// when the probes start: the size of the error does not matter.)
    #[allow(clippy::result_large_err)]
    pub fn take(probe: Prepared) -> Result<Polled, Prepared> {
        match probe {
            Prepared::Tcp {
                addr,
                bind,
                timeout,
            } => Ok(Polled::Tcp {
                addr,
                bind,
                timeout,
            }),
            Prepared::Http(h) if !h.target().tls => Ok(Polled::Http(h)),
            other => Err(other),
        }
    }

    /// How long its connection may stay silent (connect_timeout).
    pub fn timeout(&self) -> Duration {
        match self {
            Polled::Tcp { timeout, .. } => *timeout,
            Polled::Http(h) => h.target().timeout,
        }
    }

    /// Back as a probe any task runs.
    pub fn into_prepared(self) -> Prepared {
        match self {
            Polled::Tcp {
                addr,
                bind,
                timeout,
            } => Prepared::Tcp {
                addr,
                bind,
                timeout,
            },
            Polled::Http(h) => Prepared::Http(h),
        }
    }
}

/// Starts a probe at `now`.
pub fn start(probe: &Polled, io: &mut Io<'_>, token: Token, now: Instant) -> Step {
    match probe {
        Polled::Tcp {
            addr,
            bind,
            timeout,
        } => {
            let dialing = match tcp::dial(*addr, *bind, FirstWords::Nobody) {
                Ok(d) => d,
                Err(e) => return Step::Done(e.result()),
            };
            // A server on this host answers inside connect(2).
            if dialing.connected() {
                dialing.reset();
                return Step::Done(ProbeResult::up("connected"));
            }
            match watch(dialing.into_std(), io, token, Interest::WRITABLE) {
                Ok(stream) => Step::Wait(Exchange {
                    stream,
                    deadline: now + *timeout,
                    stage: Stage::Connecting,
                    url: 0,
                }),
                Err(e) => Step::Done(e.result()),
            }
        }
        Polled::Http(h) if h.url_count() == 0 => Step::Done(h.all_up(None)),
        Polled::Http(h) => open_url(h, 0, io, token, now),
    }
}

/// The socket is ready (as `event` says).
pub fn ready(
    mut x: Exchange,
    probe: &Polled,
    event: Option<&mio::event::Event>,
    io: &mut Io<'_>,
    token: Token,
    now: Instant,
) -> Step {
    let http = match probe {
        Polled::Http(h) => h,
        Polled::Tcp { .. } => return connected(x, event),
    };
    let timeout = http.target().timeout;
    match &mut x.stage {
        Stage::Connecting => Step::Wait(x),
        Stage::Sending { sent } => {
            let (request, keep) = match http.request(x.url) {
                Ok(r) => r,
                Err(result) => return Step::Done(result),
            };
            let bytes = request.bytes();
            while *sent < bytes.len() {
                match (&x.stream).write(&bytes[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait(x),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let e = FetchError::from(tcp::connect_error(&e));
                        return next_url(http, x, Err(e), io, token, now);
                    }
                }
            }
            x.stage = Stage::Reading(Box::new(Reader::new(http.target().max_body, keep)));
            x.deadline = now + timeout;
            // The answer comes later, with its own readiness; but a server
            // that closed (or reset) before the request was all written said
            // so in this event already, and its edge would not come again.
            let more = event.is_none_or(|e| e.is_readable() || e.is_read_closed() || e.is_error());
            if !more {
                return Step::Wait(x);
            }
            receive(x, http, io, token, now)
        }
        Stage::Reading(_) => receive(x, http, io, token, now),
    }
}

/// Reads what the socket has (edge-triggered: until it would block), up to
/// this turn's share.
fn receive(
    mut x: Exchange,
    http: &PreparedHttp,
    io: &mut Io<'_>,
    token: Token,
    now: Instant,
) -> Step {
    let mut reader = match std::mem::replace(&mut x.stage, Stage::Connecting) {
        Stage::Reading(reader) => reader,
        other => {
            x.stage = other;
            return Step::Wait(x);
        }
    };
    for _ in 0..READS_PER_TURN {
        let response = match (&x.stream).read(io.scratch) {
            Ok(0) => reader.closed(),
            Ok(n) => {
                x.deadline = now + http.target().timeout;
                match reader.feed(&io.scratch[..n]) {
                    Ok(Progress::More) => continue,
                    Ok(_) => reader.finish(),
                    Err(e) => Err(e),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                x.stage = Stage::Reading(reader);
                return Step::Wait(x);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => reader.failed(io_text(&e)),
        };
        return next_url(http, x, response, io, token, now);
    }
    x.stage = Stage::Reading(reader);
    Step::Again(x)
}

/// The deadline passed (the caller checked).
pub fn expired(x: Exchange, probe: &Polled, io: &mut Io<'_>, token: Token, now: Instant) -> Step {
    let (http, timeout) = match probe {
        Polled::Http(h) => (h, h.target().timeout),
        Polled::Tcp { timeout, .. } => {
            return Step::Done(ProbeResult::down(tcp::connect_timeout_text(*timeout)));
        }
    };
    let e = match &x.stage {
        Stage::Reading(reader) => FetchError::Timeout {
            phase: reader.phase(),
            after: timeout,
        },
        Stage::Connecting | Stage::Sending { .. } => {
            FetchError::Connect(tcp::connect_timeout_text(timeout))
        }
    };
    next_url(http, x, Err(e), io, token, now)
}

/// TCP_CHECK's connection is up or failed, as the readiness tells (no
/// system call unless it failed).
fn connected(x: Exchange, event: Option<&mio::event::Event>) -> Step {
    let Some(event) = event else {
        return Step::Wait(x);
    };
    if event.is_error() || event.is_write_closed() {
        match x.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Step::Done(tcp::connect_error(&e).result()),
            Ok(None) => {}
        }
    } else if !event.is_writable() {
        return Step::Wait(x);
    }
    tcp::reset(&x.stream);
    Step::Done(ProbeResult::up("connected"))
}

/// Url `i`: a new connection, the request written as far as it goes now.
fn open_url(http: &PreparedHttp, i: usize, io: &mut Io<'_>, token: Token, now: Instant) -> Step {
    let (request, keep) = match http.request(i) {
        Ok(r) => r,
        Err(result) => return Step::Done(result),
    };
    let target = http.target();
    let opened = tcp::dial(target.connect, target.bind, FirstWords::Ours).and_then(|mut d| {
        // A server on this host takes the request at once.
        let sent = d.try_write(request.bytes())?.unwrap_or(0);
        let (stage, interest) = if sent == request.bytes().len() {
            let reader = Box::new(Reader::new(target.max_body, keep));
            (Stage::Reading(reader), Interest::READABLE)
        } else {
            let both = Interest::READABLE | Interest::WRITABLE;
            (Stage::Sending { sent }, both)
        };
        Ok((watch(d.into_std(), io, token, interest)?, stage))
    });
    match opened {
        Ok((stream, stage)) => Step::Wait(Exchange {
            stream,
            deadline: now + target.timeout,
            stage,
            url: i,
        }),
        Err(e) => Step::Done(http.url_failed(i, e.into())),
    }
}

/// Url `x.url` came out as `response`: the probe's result, or the next url.
fn next_url(
    http: &PreparedHttp,
    x: Exchange,
    response: Result<crate::check::http::Response, FetchError>,
    io: &mut Io<'_>,
    token: Token,
    now: Instant,
) -> Step {
    // No FIN exchange and no TIME_WAIT: the probe is over (tcp::reset).
    tcp::reset(&x.stream);
    drop(x.stream);
    match http.judge_url(x.url, response) {
        Err(result) => Step::Done(result),
        Ok(_) if x.url + 1 < http.url_count() => open_url(http, x.url + 1, io, token, now),
        Ok(reason) => Step::Done(http.all_up(Some(reason))),
    }
}

/// Registers a connection with the poller's epoll: refused, it is a
/// problem of this host.
fn watch(
    stream: std::net::TcpStream,
    io: &mut Io<'_>,
    token: Token,
    interest: Interest,
) -> Result<TcpStream, ConnectError> {
    let mut stream = TcpStream::from_std(stream);
    io.registry
        .register(&mut stream, token, interest)
        .map_err(|e| ConnectError::Local(format!("cannot watch a socket: {e}")))?;
    Ok(stream)
}
