//! One HTTP_GET / SSL_GET exchange on a fresh connection: connect, TLS
//! handshake for SSL_GET, the prepared request written once, the response
//! read in place and fed to the [`response`](super::response) parser, the
//! body streamed into its digest. No task, pool or channel of its own: the
//! probe's task drives the socket directly.
//!
//! Time, as keepalived has it: `connect_timeout` bounds the TCP connect
//! (and the TLS handshake with it: both together), then every wait after
//! that: the request write, and each read of the response, the timer
//! restarting whenever bytes arrive. A slow response that keeps coming is
//! fine; a silence longer than `connect_timeout` fails the probe. One timer
//! serves the whole exchange: moving the deadline is a store, and the timer
//! is reset only when it fires before the moved deadline.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::task::{Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::reader::Reader;
use super::request::{HttpTarget, PreparedRequest, RequestError};
use super::response::{Digests, Head, Progress};
use super::tls;
use crate::check::tcp::{self, ConnectError};

/// The first read buffer: room for a typical health page in one read.
const FIRST_READ: usize = 4 << 10;
/// The read buffer once a body turns out to be long (a TLS record's worth).
const BODY_READ: usize = 16 << 10;

/// Formats seconds the way every reason does: one decimal.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// What the probe was waiting for when the connection went silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    TlsHandshake,
    WaitingForResponse,
    ReadingBody,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connecting => "connecting",
            Phase::TlsHandshake => "in the TLS handshake",
            Phase::WaitingForResponse => "waiting for the response",
            Phase::ReadingBody => "reading the body",
        })
    }
}

/// Why no usable response came back. `Display` is the operator-facing reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The probe could not start for a reason on this host (no verdict).
    #[error("{0}")]
    Local(String),
    /// Refused, or the connect timeout (worded by `tcp`).
    #[error("{0}")]
    Connect(String),
    /// The connection stayed silent for `after` (connect_timeout) in `phase`.
    #[error("{}", timeout_text(*phase, *after))]
    Timeout { phase: Phase, after: Duration },
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The request could not be formed (bad path or virtualhost).
    #[error("invalid request: {0}")]
    Request(#[from] RequestError),
    #[error("connection closed before the response")]
    ClosedEarly,
    #[error("invalid HTTP response: {0}")]
    BadResponse(String),
    #[error("connection error: {0}")]
    Io(String),
}

impl From<ConnectError> for FetchError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Local(r) => FetchError::Local(r),
            ConnectError::Remote(r) => FetchError::Connect(r),
        }
    }
}

fn timeout_text(phase: Phase, after: Duration) -> String {
    match phase {
        Phase::Connecting | Phase::TlsHandshake | Phase::WaitingForResponse => {
            format!("timed out after {} {phase}", secs(after))
        }
        // The timer restarts with every read: say it was a silence.
        Phase::ReadingBody => format!("timed out after {} without data {phase}", secs(after)),
    }
}

/// What to do with the response besides judging it.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Hash the body (a digest is wanted).
    pub hash: bool,
    /// Keep the head bytes (genhash).
    pub head: bool,
    /// Keep the body bytes (genhash --verbose).
    pub body: bool,
}

/// A response read to the end of its body (or as far as it went).
#[derive(Debug, Clone)]
pub struct Response {
    pub head: Head,
    /// The head as received, when kept.
    pub head_bytes: Option<Vec<u8>>,
    /// Body bytes received, as on the wire.
    pub body_len: u64,
    /// The digests, when hashed and the body is complete.
    pub digests: Option<Digests>,
    /// Why the body is incomplete (early close, over the size cap, an error).
    pub body_problem: Option<String>,
    /// The body as received, when kept.
    pub body: Option<Vec<u8>>,
}

/// The one timer of an exchange and the deadline it enforces.
struct Clock<'t> {
    timer: Pin<&'t mut Sleep>,
    deadline: Instant,
    timeout: Duration,
    phase: Phase,
}

impl Clock<'_> {
    /// The connection has `timeout` again from now.
    fn restart(&mut self) {
        self.deadline = Instant::now() + self.timeout;
    }

    fn timed_out(&self) -> FetchError {
        FetchError::Timeout {
            phase: self.phase,
            after: self.timeout,
        }
    }

    /// Runs `fut` until it finishes (`Some`) or the deadline passes (`None`).
    async fn run<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            loop {
                ready!(self.timer.as_mut().poll(cx));
                if self.timer.deadline() >= self.deadline {
                    return Poll::Ready(None);
                }
                let d = self.deadline;
                self.timer.as_mut().reset(d);
            }
        })
        .await
    }
}

/// Connect, TLS handshake, request and response with keepalived's timing.
pub async fn exchange(
    target: &HttpTarget,
    request: &PreparedRequest,
    max_body: u64,
    keep: Keep,
) -> Result<Response, FetchError> {
    let timer = pin!(tokio::time::sleep(target.timeout));
    let mut clock = Clock {
        deadline: timer.deadline(),
        timer,
        timeout: target.timeout,
        phase: Phase::Connecting,
    };
    let mut dialing = tcp::dial(target.connect, target.bind, tcp::FirstWords::Ours)?;
    if !target.tls {
        // A server that finished the handshake inside connect(2) (on this
        // host) takes the request at once; otherwise it goes when the
        // connection is up. One write carries it: Nagle never delays it.
        let sent = dialing.try_write(request.bytes())?.unwrap_or(0);
        let stream = dialing.register()?;
        if sent < request.bytes().len() {
            let rest = &request.bytes()[sent..];
            match clock.run(write_when_up(&stream, rest)).await {
                None => {
                    return Err(FetchError::Connect(tcp::connect_timeout_text(
                        target.timeout,
                    )));
                }
                Some(Err(e)) => return Err(tcp::connect_error(&e).into()),
                Some(Ok(())) => {}
            }
        }
        let (response, stream) = talk(stream, max_body, keep, &mut clock, false).await?;
        close(stream);
        return Ok(response);
    }
    let stream = match clock.run(dialing.established()).await {
        None => {
            return Err(FetchError::Connect(tcp::connect_timeout_text(
                target.timeout,
            )));
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    // As keepalived: connect and handshake together within connect_timeout.
    clock.phase = Phase::TlsHandshake;
    let connector = tokio_rustls::TlsConnector::from(tls::config());
    let handshake = connector.connect(request.server_name.clone(), stream);
    let mut stream = match clock.run(handshake).await {
        None => return Err(clock.timed_out()),
        Some(Err(e)) => return Err(FetchError::Tls(tls_error_text(&e))),
        Some(Ok(s)) => s,
    };
    clock.phase = Phase::WaitingForResponse;
    clock.restart();
    let write = async {
        stream.write_all(request.bytes()).await?;
        stream.flush().await
    };
    match clock.run(write).await {
        None => return Err(clock.timed_out()),
        Some(Err(e)) => return Err(FetchError::Io(io_text(&e))),
        Some(Ok(())) => {}
    }
    let (response, mut stream) = talk(stream, max_body, keep, &mut clock, true).await?;
    if response.body_problem.is_none() {
        // close_notify, as keepalived's SSL_shutdown; the server may be gone.
        let _ = clock.run(stream.shutdown()).await;
    }
    Ok(response)
}

/// Writes `rest` of the request once the connection is up: the wait is
/// part of connecting, and its errors are the connect's (refused, reset).
async fn write_when_up(stream: &TcpStream, mut rest: &[u8]) -> io::Result<()> {
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A plain connection ends with a reset once its exchange is over, as
/// HAProxy's checks end: the server has answered (or said what it had to
/// say before the probe gave up on the body). A normal close would cost
/// three more segments whenever the probe is done before the server's FIN
/// arrives (a body framed by its length), and leave the probe's side in
/// TIME_WAIT for a minute.
fn close(stream: TcpStream) {
    tcp::reset(stream);
}

/// A connection a probe talks over.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits until a read would find something (where the connection can
    /// tell without reading).
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send;
}

impl Conn for TcpStream {
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.readable()
    }
}

impl Conn for tokio_rustls::client::TlsStream<TcpStream> {
    /// Records may hold no application data: the reads tell.
    fn ready(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Reads the response to the request just sent; gives the connection back.
async fn talk<S: Conn>(
    mut io: S,
    max_body: u64,
    keep: Keep,
    clock: &mut Clock<'_>,
    tls: bool,
) -> Result<(Response, S), FetchError> {
    clock.phase = Phase::WaitingForResponse;
    clock.restart();
    // The read buffer exists only once the answer is there: thousands of
    // probes waiting for their servers hold none.
    match clock.run(io.ready()).await {
        None => return Err(clock.timed_out()),
        Some(Err(e)) => return Err(FetchError::Io(io_text(&e))),
        Some(Ok(())) => {}
    }
    let mut buf = vec![0u8; FIRST_READ];
    let mut reader = Reader::new(max_body, keep);
    let response = loop {
        clock.phase = reader.phase();
        let n = match read(&mut io, &mut buf, clock, tls).await {
            Ok(0) => break reader.closed()?,
            Ok(n) => n,
            Err(FetchError::Io(e)) => break reader.failed(e)?,
            Err(e) => return Err(e),
        };
        if reader.feed(&buf[..n])? == Progress::Done {
            break reader.finish()?;
        }
        if n == buf.len() && buf.len() < BODY_READ {
            buf.resize(BODY_READ, 0);
        }
    };
    Ok((response, io))
}

/// One read within the deadline; `Ok(0)` at the end of the stream. A TLS
/// connection closed without close_notify is a clean end, as OpenSSL reads
/// it for keepalived: bodies delimited by the close still end; a body with
/// a length that ends early is still caught by the framing.
async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut [u8],
    clock: &mut Clock<'_>,
    tls: bool,
) -> Result<usize, FetchError> {
    match clock.run(io.read(buf)).await {
        None => Err(clock.timed_out()),
        Some(Ok(n)) => {
            if n > 0 {
                clock.restart();
            }
            Ok(n)
        }
        Some(Err(e)) if tls && e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Some(Err(e)) => Err(FetchError::Io(io_text(&e))),
    }
}

pub(crate) fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        io::ErrorKind::BrokenPipe => "connection closed by peer (broken pipe)".into(),
        _ => e.to_string(),
    }
}

fn tls_error_text(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "connection closed during the handshake".into()
        }
        None => io_text(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_reason_wording() {
        let e = FetchError::Timeout {
            phase: Phase::WaitingForResponse,
            after: Duration::from_secs(3),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 3.0 s waiting for the response"
        );
        let e = FetchError::Timeout {
            phase: Phase::ReadingBody,
            after: Duration::from_millis(400),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 0.4 s without data reading the body"
        );
    }
}
