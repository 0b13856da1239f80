//! HTTP_GET / SSL_GET: fetch a url from a real server and judge it by its
//! status code and, optionally, the MD5 digest of its body.
//!
//! What goes on the wire follows keepalived 2.2.7's checker (`check_http.c`),
//! verified against its `genhash` on loopback:
//!
//! ```text
//! GET <path> HTTP/1.0|1.1
//! User-Agent: KeepAliveClient
//! Connection: close            (only for http_protocol 1.0C and 1.1)
//! Host: <virtualhost>          (or <ip>:<port>, [ipv6]:<port>; the port is always written)
//! ```
//!
//! Plain `1.0` sends no `Connection` header, as keepalived does: an HTTP/1.0
//! request without `keep-alive` already asks the server to close.
//!
//! Time, as keepalived has it: `connect_timeout` bounds the TCP connect
//! (and the TLS handshake with it: both together), then every wait after
//! that: the request write, and each read of the response, the timer
//! restarting whenever bytes arrive. A slow response that keeps coming is
//! fine; a silence longer than `connect_timeout` fails the probe. (A server
//! that trickles forever keeps the probe busy, as with keepalived; the body
//! cap below ends that eventually.)
//!
//! Where this probe differs from keepalived, on purpose:
//! - the body is decoded (chunked transfer coding removed) before hashing, so
//!   the digest is the MD5 of the body itself, stable across chunk boundaries;
//!   keepalived hashes the raw bytes after the header, chunk-size lines and all;
//! - the response must be well-formed HTTP/1.x (hyper parses it); keepalived
//!   only looks for a status code and the blank line;
//! - the body is read up to [`DEFAULT_MAX_BODY`] bytes; keepalived has no cap;
//! - TLS is rustls: TLS 1.2 and 1.3 only, no certificate verification (like
//!   keepalived), but the handshake signature is still checked.
//!
//! Like keepalived, a body that ends early (connection closed before its
//! Content-Length) fails the check only when a digest is wanted.
//!
//! Cost: a checker's requests are rendered once ([`PreparedHttp`]); a probe
//! then drives one hyper HTTP/1 connection in its own task (no extra task,
//! no pool), with one timer, and allocates no reason text when healthy.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Version};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::model::{CheckCommon, HttpCheck, HttpVersion, Url};

use super::tcp::{self, ProbeResult, Reason};

/// The User-Agent keepalived sends; some server configurations match on it.
pub const USER_AGENT_VALUE: &str = "KeepAliveClient";

/// Largest body read (and hashed) before giving up: 8 MiB.
pub const DEFAULT_MAX_BODY: u64 = 8 << 20;

/// Largest response head (status line + headers) accepted.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Where and how to connect: one per HTTP_GET / SSL_GET checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// connect_ip / connect_port (default: the real server).
    pub connect: SocketAddr,
    /// Source address from bindto + bind_port (port 0: any).
    pub bind: Option<SocketAddr>,
    /// SSL_GET.
    pub tls: bool,
    /// enable_sni: send the url's virtualhost as TLS SNI (none without one).
    pub enable_sni: bool,
    /// http_protocol.
    pub version: HttpVersion,
    /// connect_timeout: for the connect (and TLS handshake), then the
    /// longest the connection may stay silent (restarted by every read).
    pub timeout: Duration,
    /// Body bytes read at most; more fails a digest check.
    pub max_body: u64,
}

impl HttpTarget {
    /// The target of a configured checker (bind_if and fwmark are not applied).
    pub fn from_checker(common: &CheckCommon, http: &HttpCheck) -> HttpTarget {
        let connect = SocketAddr::new(common.connect_ip, common.connect_port);
        let bind = match (common.bindto, common.bind_port) {
            (Some(ip), port) => Some(SocketAddr::new(ip, port.unwrap_or(0))),
            (None, Some(port)) => {
                let any = if connect.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                };
                Some(SocketAddr::new(any, port))
            }
            (None, None) => None,
        };
        HttpTarget {
            connect,
            bind,
            tls: http.tls,
            enable_sni: http.enable_sni,
            version: http.http_protocol,
            timeout: common.connect_timeout.0,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// The value of the Host header: the virtualhost when there is one, else the
/// connect address with its port (IPv6 in brackets), as keepalived writes it.
pub fn host_header(connect: SocketAddr, virtualhost: Option<&str>) -> String {
    match (virtualhost, connect.ip()) {
        (Some(vh), _) => vh.to_string(),
        (None, IpAddr::V4(ip)) => format!("{ip}:{}", connect.port()),
        (None, IpAddr::V6(ip)) => format!("[{ip}]:{}", connect.port()),
    }
}

/// The TLS server name for `virtualhost` when SNI is enabled: the host part
/// without a `:port`. `None` when there is nothing a DNS name can be made of
/// (no virtualhost, an IP literal, an invalid name): then no SNI is sent.
pub fn sni_name(enable_sni: bool, virtualhost: Option<&str>) -> Option<String> {
    let vh = virtualhost.filter(|_| enable_sni)?;
    if vh.starts_with('[') {
        return None;
    }
    let host = match vh.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => vh,
    };
    match ServerName::try_from(host) {
        Ok(ServerName::DnsName(_)) => Some(host.to_string()),
        _ => None,
    }
}

/// Formats seconds the way every reason does: one decimal.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// What the probe was waiting for when the connection went silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Connecting,
    TlsHandshake,
    WaitingForResponse,
    ReadingBody,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Connecting,
            1 => Phase::TlsHandshake,
            2 => Phase::WaitingForResponse,
            _ => Phase::ReadingBody,
        }
    }
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
    /// Socket, bind or connect failure, or the connect timeout (worded by `tcp`).
    #[error("{0}")]
    Connect(String),
    /// The connection stayed silent for `after` (connect_timeout) in `phase`.
    #[error("{}", timeout_text(*phase, *after))]
    Timeout { phase: Phase, after: Duration },
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The request could not be formed (bad path or virtualhost).
    #[error("invalid request: {0}")]
    Request(String),
    #[error("connection closed before the response")]
    ClosedEarly,
    #[error("invalid HTTP response: {0}")]
    BadResponse(String),
    #[error("connection error: {0}")]
    Io(String),
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

/// One fetched response: what the checker and genhash need.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The request head as sent (CRLF line ends).
    pub request: String,
    pub version: Version,
    pub status: u16,
    /// Reason phrase of the status line.
    pub reason: String,
    pub headers: HeaderMap,
    /// Decoded body bytes received (up to `max_body`).
    pub body_len: u64,
    /// MD5 of the decoded body, when the body was read completely.
    pub md5: Option<[u8; 16]>,
    /// Why the body is incomplete (early close, over the size cap).
    pub body_problem: Option<String>,
    /// The body itself, when asked for (genhash --verbose).
    pub body: Option<Vec<u8>>,
    pub elapsed: Duration,
}

impl Fetched {
    /// The response head as text, CRLF line ends and the final blank line:
    /// rebuilt from the parsed head (header names title-cased).
    pub fn head_text(&self) -> String {
        let v = match self.version {
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let mut s = format!("{v} {} {}\r\n", self.status, self.reason);
        for (name, value) in &self.headers {
            s.push_str(&title_case(name.as_str()));
            s.push_str(": ");
            s.push_str(&String::from_utf8_lossy(value.as_bytes()));
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s
    }
}

fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for c in name.chars() {
        out.push(if up { c.to_ascii_uppercase() } else { c });
        up = c == '-';
    }
    out
}

/// What to fetch over a target.
#[derive(Debug, Clone, Copy)]
pub struct FetchSpec<'a> {
    pub path: &'a str,
    pub virtualhost: Option<&'a str>,
    /// Keep the body in memory (genhash --verbose); otherwise only hashed.
    pub keep_body: bool,
}

/// One GET, rendered once and sent by every probe of a checker.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    path: String,
    uri: hyper::Uri,
    version: Version,
    headers: HeaderMap,
    /// TLS server name: the SNI name, else the connect address.
    server_name: ServerName<'static>,
}

impl PreparedRequest {
    pub fn new(target: &HttpTarget, spec: FetchSpec<'_>) -> Result<Self, FetchError> {
        let host = host_header(target.connect, spec.virtualhost);
        let host_value = HeaderValue::from_str(&host).map_err(|_| {
            FetchError::Request(format!("virtualhost {host:?} is not a valid header value"))
        })?;
        let uri: hyper::Uri = spec
            .path
            .parse()
            .map_err(|e| FetchError::Request(format!("url path {:?}: {e}", spec.path)))?;
        let version = match target.version {
            HttpVersion::Http10 | HttpVersion::Http10Close => Version::HTTP_10,
            HttpVersion::Http11 => Version::HTTP_11,
        };
        // Insertion order is the order on the wire.
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if !matches!(target.version, HttpVersion::Http10) {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        headers.insert(HOST, host_value);
        let server_name = match sni_name(target.enable_sni, spec.virtualhost) {
            Some(name) => ServerName::try_from(name).map_err(|e| FetchError::Tls(e.to_string()))?,
            None => ServerName::IpAddress(target.connect.ip().into()),
        };
        Ok(PreparedRequest {
            path: spec.path.to_string(),
            uri,
            version,
            headers,
            server_name,
        })
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// The request head as it goes on the wire (hyper title-cases the names).
    pub fn text(&self) -> String {
        let v = if self.version == Version::HTTP_10 {
            "1.0"
        } else {
            "1.1"
        };
        let mut text = format!("GET {} HTTP/{v}\r\n", self.path);
        for (name, value) in &self.headers {
            text.push_str(&title_case(name.as_str()));
            text.push_str(": ");
            text.push_str(&String::from_utf8_lossy(value.as_bytes()));
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text
    }
}

/// What to do with the body.
#[derive(Debug, Clone, Copy)]
struct BodyUse {
    max: u64,
    hash: bool,
    keep: bool,
}

/// A response as the exchange returns it.
struct Response {
    parts: hyper::http::response::Parts,
    body_len: u64,
    md5: Option<[u8; 16]>,
    body_problem: Option<String>,
    body: Option<Vec<u8>>,
}

/// Connects, sends one GET and reads the whole response, with
/// `target.timeout` as the connect timeout and the longest silence.
/// Shared by the checker and genhash.
pub async fn fetch(target: &HttpTarget, spec: FetchSpec<'_>) -> Result<Fetched, FetchError> {
    let start = std::time::Instant::now();
    let prepared = PreparedRequest::new(target, spec)?;
    let use_body = BodyUse {
        max: target.max_body,
        hash: true,
        keep: spec.keep_body,
    };
    let r = exchange(target, &prepared, use_body).await?;
    let reason = r
        .parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| r.parts.status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    Ok(Fetched {
        request: prepared.text(),
        version: r.parts.version,
        status: r.parts.status.as_u16(),
        reason,
        headers: r.parts.headers,
        body_len: r.body_len,
        md5: r.md5,
        body_problem: r.body_problem,
        body: r.body,
        elapsed: start.elapsed(),
    })
}

/// The idle timer of one exchange: the instant the connection has been
/// silent too long, pushed back whenever bytes move (by [`Progress`]), and
/// the phase it is in, for the reason.
struct IdleClock {
    base: Instant,
    timeout: Duration,
    /// Nanoseconds after `base`.
    deadline: AtomicU64,
    phase: AtomicU8,
}

impl IdleClock {
    fn new(timeout: Duration) -> Self {
        IdleClock {
            base: Instant::now(),
            timeout,
            deadline: AtomicU64::new(timeout.as_nanos() as u64),
            phase: AtomicU8::new(Phase::Connecting as u8),
        }
    }

    /// Bytes moved: the connection has `timeout` again from now, except in
    /// the TLS handshake, which has what the connect left of it.
    fn progress(&self) {
        if self.phase() == Phase::TlsHandshake {
            return;
        }
        let at = Instant::now().saturating_duration_since(self.base) + self.timeout;
        self.deadline.store(at.as_nanos() as u64, Ordering::Relaxed);
    }

    fn deadline(&self) -> Instant {
        self.base + Duration::from_nanos(self.deadline.load(Ordering::Relaxed))
    }

    fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    fn timed_out(&self) -> FetchError {
        FetchError::Timeout {
            phase: self.phase(),
            after: self.timeout,
        }
    }

    /// Ready when the connection has been silent past its deadline. The
    /// timer is moved only when it fires early, not at every byte.
    fn poll_expired(&self, timer: &mut Pin<&mut Sleep>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(timer.as_mut().poll(cx));
            let deadline = self.deadline();
            if timer.deadline() >= deadline {
                return Poll::Ready(());
            }
            timer.as_mut().reset(deadline);
        }
    }

    /// Runs `fut` until it finishes or the connection is silent too long.
    async fn run<F: Future>(&self, timer: &mut Pin<&mut Sleep>, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            self.poll_expired(timer, cx).map(|()| None)
        })
        .await
    }
}

/// A connection that tells its [`IdleClock`] whenever bytes move.
struct Progress<'a, S> {
    io: S,
    clock: &'a IdleClock,
    /// Pass shutdowns on (under TLS: its close_notify is sent regardless).
    shutdown: bool,
}

impl<S: AsyncRead + Unpin> AsyncRead for Progress<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if r.is_ready() {
            self.clock.progress();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Progress<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.progress();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.progress();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shutdown {
            // The socket is closed (FIN) as soon as the exchange ends: a
            // shutdown first would only cost a system call more.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Connect, TLS handshake, request and response with keepalived's timing.
async fn exchange(
    target: &HttpTarget,
    prepared: &PreparedRequest,
    body: BodyUse,
) -> Result<Response, FetchError> {
    let clock = IdleClock::new(target.timeout);
    let mut timer = pin!(tokio::time::sleep_until(clock.deadline()));
    let sock = tcp::socket(target.connect, target.bind).map_err(FetchError::Connect)?;
    let tcp = match clock.run(&mut timer, sock.connect(target.connect)).await {
        None => {
            return Err(FetchError::Connect(tcp::connect_timeout_text(
                target.timeout,
            )));
        }
        Some(Err(e)) => return Err(FetchError::Connect(tcp::connect_error(&e))),
        Some(Ok(s)) => s,
    };
    if !target.tls {
        clock.progress();
        // One write carries the whole request: Nagle never delays it.
        let io = Progress {
            io: tcp,
            clock: &clock,
            shutdown: false,
        };
        return http1(io, prepared.request(), body, &clock, &mut timer).await;
    }
    let _ = tcp.set_nodelay(true);
    // As keepalived: connect and handshake together within connect_timeout.
    clock.set(Phase::TlsHandshake);
    let io = Progress {
        io: tcp,
        clock: &clock,
        shutdown: true,
    };
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    let handshake = connector.connect(prepared.server_name.clone(), io);
    let tls = match clock.run(&mut timer, handshake).await {
        None => return Err(clock.timed_out()),
        Some(Err(e)) => return Err(FetchError::Tls(tls_error_text(&e))),
        Some(Ok(s)) => s,
    };
    clock.set(Phase::WaitingForResponse);
    clock.progress();
    http1(
        EofTolerant(tls),
        prepared.request(),
        body,
        &clock,
        &mut timer,
    )
    .await
}

/// Sends the request over `io` and reads the response, driving hyper's
/// connection in this task (dropped with it on a timeout).
async fn http1<I>(
    io: I,
    request: Request<Empty<Bytes>>,
    use_body: BodyUse,
    clock: &IdleClock,
    timer: &mut Pin<&mut Sleep>,
) -> Result<Response, FetchError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send,
{
    clock.set(Phase::WaitingForResponse);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES.max(8192) * 2)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(&e, false))?;

    let work = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| hyper_error(&e, false))?;
        clock.set(Phase::ReadingBody);
        let (parts, mut body) = response.into_parts();
        let mut hasher = use_body.hash.then(Md5::new);
        let mut body_len: u64 = 0;
        let mut kept = use_body.keep.then(Vec::new);
        let mut problem = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    if body_len + data.len() as u64 > use_body.max {
                        problem = Some(format!("body larger than {} bytes", use_body.max));
                        break;
                    }
                    body_len += data.len() as u64;
                    if let Some(h) = hasher.as_mut() {
                        h.update(data);
                    }
                    if let Some(k) = kept.as_mut() {
                        k.extend_from_slice(data);
                    }
                }
                Err(e) => {
                    problem = Some(format!(
                        "body incomplete after {body_len} bytes: {}",
                        body_error_text(&e)
                    ));
                    break;
                }
            }
        }
        let md5 = match (hasher, &problem) {
            (Some(h), None) => Some(h.finalize().into()),
            _ => None,
        };
        Ok(Response {
            parts,
            body_len,
            md5,
            body_problem: problem,
            body: kept,
        })
    };
    let mut work = pin!(work);
    let mut conn = pin!(conn);
    let mut conn_done = false;
    let out = poll_fn(|cx| {
        // The connection first: what it reads reaches `work` in this poll.
        // Its errors also reach `work` through hyper's channels; it is
        // polled only to move bytes.
        if !conn_done && conn.as_mut().poll(cx).is_ready() {
            conn_done = true;
        }
        if let Poll::Ready(r) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        clock.poll_expired(timer, cx).map(|()| None)
    })
    .await;
    match out {
        Some(r) => r,
        None => Err(clock.timed_out()),
    }
}

/// Words for an error while reading the body.
fn body_error_text(e: &hyper::Error) -> String {
    match hyper_error(e, true) {
        FetchError::Io(text) | FetchError::BadResponse(text) => text,
        other => other.to_string(),
    }
}

/// Words for a hyper error; `in_body`: the head was already received.
fn hyper_error(e: &hyper::Error, in_body: bool) -> FetchError {
    if e.is_parse_too_large() {
        return FetchError::BadResponse(format!(
            "response head larger than {MAX_HEADER_BYTES} bytes"
        ));
    }
    if e.is_parse() || e.is_parse_status() {
        return FetchError::BadResponse(e.to_string());
    }
    if e.is_incomplete_message() && !in_body {
        return FetchError::ClosedEarly;
    }
    if e.is_incomplete_message() {
        return FetchError::Io("connection closed early".into());
    }
    // Find an I/O cause (reset, broken pipe) for a clearer message.
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::UnexpectedEof if !in_body => FetchError::ClosedEarly,
                io::ErrorKind::UnexpectedEof => FetchError::Io("connection closed early".into()),
                _ => FetchError::Io(io_text(io)),
            };
        }
        source = s.source();
    }
    FetchError::Io(e.to_string())
}

fn io_text(e: &io::Error) -> String {
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

/// A TLS stream that reads a TCP close without close_notify as a clean end of
/// stream, as keepalived (OpenSSL) does: bodies delimited by the connection
/// close still end; a body with a Content-Length that ends early is still
/// caught by hyper.
struct EofTolerant<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for EofTolerant<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EofTolerant<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The client TLS configuration: ring, TLS 1.2 + 1.3, any certificate,
/// no session resumption (every probe does a full handshake).
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            config.resumption = rustls::client::Resumption::disabled();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any server certificate (keepalived does not verify either: real
/// servers use self-signed or internal certificates, often by IP), but still
/// checks that the server proves possession of the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The verdict on one url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlResult {
    pub path: String,
    pub up: bool,
    /// The status code received, if a response head came back.
    pub status: Option<u16>,
    /// MD5 (lowercase hex) of the body, when it was read completely.
    pub digest: Option<String>,
    /// Operator-facing: "ok (HTTP 200)", "HTTP status 503 not in 200-299", ...
    pub reason: String,
    pub elapsed: Duration,
}

/// Checks one url: status code in `url.status_codes`, then the digest if set.
pub async fn check_url(target: &HttpTarget, url: &Url) -> UrlResult {
    let start = std::time::Instant::now();
    let spec = FetchSpec {
        path: &url.path,
        virtualhost: url.virtualhost.as_deref(),
        keep_body: false,
    };
    let use_body = BodyUse {
        max: target.max_body,
        hash: true,
        keep: false,
    };
    let fetched = match PreparedRequest::new(target, spec) {
        Ok(prepared) => exchange(target, &prepared, use_body).await,
        Err(e) => Err(e),
    };
    let (up, status, digest, reason) = match fetched {
        Err(e) => (false, None, None, e.to_string()),
        Ok(r) => {
            let (up, reason) = verdict(r.parts.status.as_u16(), &r.md5, &r.body_problem, url);
            (
                up,
                Some(r.parts.status.as_u16()),
                r.md5.map(|d| hex(&d)),
                reason.into_owned(),
            )
        }
    };
    UrlResult {
        path: url.path.clone(),
        up,
        status,
        digest,
        reason,
        elapsed: start.elapsed(),
    }
}

/// The pure verdict on a response, in keepalived's order: status, then digest.
pub fn judge(fetched: &Fetched, url: &Url) -> (bool, String) {
    let (up, reason) = verdict(fetched.status, &fetched.md5, &fetched.body_problem, url);
    (up, reason.into_owned())
}

/// The reason of a healthy url: static text for the usual status codes.
fn ok_reason(status: u16, digest: bool) -> Reason {
    match (status, digest) {
        (200, false) => "ok (HTTP 200)".into(),
        (200, true) => "ok (HTTP 200, digest matches)".into(),
        (_, false) => format!("ok (HTTP {status})").into(),
        (_, true) => format!("ok (HTTP {status}, digest matches)").into(),
    }
}

fn verdict(
    status: u16,
    md5: &Option<[u8; 16]>,
    body_problem: &Option<String>,
    url: &Url,
) -> (bool, Reason) {
    if !url.status_codes.contains(status) {
        return (
            false,
            format!("HTTP status {status} not in {}", url.status_codes).into(),
        );
    }
    if let Some(want) = &url.digest {
        return match (md5, body_problem) {
            (Some(got), _) => {
                let got = hex(got);
                if got.eq_ignore_ascii_case(want) {
                    (true, ok_reason(status, true))
                } else {
                    (
                        false,
                        format!("digest mismatch: got {got}, want {want}").into(),
                    )
                }
            }
            (None, Some(problem)) => (false, format!("no digest: {problem}").into()),
            (None, None) => (false, "no digest: body not read".into()),
        };
    }
    match body_problem {
        None => (true, ok_reason(status, false)),
        Some(p) => (true, format!("ok (HTTP {status}; {p})").into()),
    }
}

/// The verdict on a whole checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheckResult {
    pub up: bool,
    pub reason: String,
    /// One result per url probed, in order; stops after the first failure.
    pub urls: Vec<UrlResult>,
}

impl From<&HttpCheckResult> for ProbeResult {
    fn from(r: &HttpCheckResult) -> ProbeResult {
        if r.up {
            ProbeResult::up(r.reason.clone())
        } else {
            ProbeResult::down(r.reason.clone())
        }
    }
}

/// Checks the urls in order; up only if every one is up. Stops at the first
/// failing url (keepalived also stops there and retries that url; with
/// `retry`, the caller repeats the check). An empty list is up, as keepalived
/// enables a checker without urls.
pub async fn check_urls(target: &HttpTarget, urls: &[Url]) -> HttpCheckResult {
    let mut results = Vec::with_capacity(urls.len());
    for url in urls {
        let r = check_url(target, url).await;
        let failed = !r.up;
        results.push(r);
        if failed {
            break;
        }
    }
    let failed = results.iter().find(|r| !r.up);
    let reason = match (failed, results.as_slice()) {
        (Some(f), _) => format!("url {}: {}", f.path, f.reason),
        (None, [one]) => one.reason.clone(),
        (None, all) => format!("ok ({} urls)", all.len()),
    };
    HttpCheckResult {
        up: failed.is_none(),
        reason,
        urls: results,
    }
}

/// A configured HTTP_GET / SSL_GET checker, ready to probe: its target and
/// requests are built once, not at every probe.
#[derive(Debug, Clone)]
pub struct PreparedHttp {
    target: HttpTarget,
    urls: Vec<PreparedUrl>,
}

#[derive(Debug, Clone)]
struct PreparedUrl {
    url: Url,
    request: Result<PreparedRequest, FetchError>,
}

impl PreparedHttp {
    pub fn new(common: &CheckCommon, http: &HttpCheck) -> Self {
        let target = HttpTarget::from_checker(common, http);
        let urls = http
            .urls
            .iter()
            .map(|url| PreparedUrl {
                request: PreparedRequest::new(
                    &target,
                    FetchSpec {
                        path: &url.path,
                        virtualhost: url.virtualhost.as_deref(),
                        keep_body: false,
                    },
                ),
                url: url.clone(),
            })
            .collect();
        PreparedHttp { target, urls }
    }

    /// One probe: the urls in order, as [`check_urls`] judges them, without
    /// the per-url details.
    pub async fn probe(&self) -> ProbeResult {
        let mut last = None;
        for u in &self.urls {
            let (up, reason) = match &u.request {
                Err(e) => (false, Reason::from(e.to_string())),
                Ok(request) => {
                    let use_body = BodyUse {
                        max: self.target.max_body,
                        hash: u.url.digest.is_some(),
                        keep: false,
                    };
                    match exchange(&self.target, request, use_body).await {
                        Err(e) => (false, e.to_string().into()),
                        Ok(r) => verdict(r.parts.status.as_u16(), &r.md5, &r.body_problem, &u.url),
                    }
                }
            };
            if !up {
                return ProbeResult::down(format!("url {}: {reason}", u.url.path));
            }
            last = Some(reason);
        }
        match (last, self.urls.len()) {
            (Some(reason), 1) => ProbeResult::up(reason),
            (_, n) => ProbeResult::up(format!("ok ({n} urls)")),
        }
    }
}

/// Checks a configured HTTP_GET / SSL_GET checker.
pub async fn probe(common: &CheckCommon, http: &HttpCheck) -> ProbeResult {
    PreparedHttp::new(common, http).probe().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_like_keepalived() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:8080".parse().unwrap();
        assert_eq!(host_header(v4, None), "10.0.0.1:80");
        assert_eq!(host_header(v6, None), "[2001:db8::1]:8080");
        assert_eq!(host_header(v6, Some("www.example.com")), "www.example.com");
    }

    #[test]
    fn sni_only_for_dns_names() {
        assert_eq!(sni_name(false, Some("www.example.com")), None);
        assert_eq!(sni_name(true, None), None);
        assert_eq!(
            sni_name(true, Some("www.example.com")).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            sni_name(true, Some("www.example.com:8443")).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(sni_name(true, Some("10.0.0.1")), None);
        assert_eq!(sni_name(true, Some("[::1]:443")), None);
    }

    #[test]
    fn target_from_checker() {
        use crate::config::model::{StatusCodes, Timer};
        let mut common = CheckCommon {
            connect_ip: "10.0.0.1".parse().unwrap(),
            connect_port: 443,
            bindto: None,
            bind_port: Some(4000),
            bind_if: None,
            fwmark: None,
            connect_timeout: Timer(Duration::from_millis(2500)),
            delay_loop: Timer::secs(6),
            retry: 1,
            delay_before_retry: Timer::secs(1),
            warmup: Timer::secs(0),
            alpha: false,
            log_all_failures: false,
        };
        let http = HttpCheck {
            tls: true,
            urls: vec![Url {
                path: "/".into(),
                digest: None,
                status_codes: StatusCodes::default_2xx(),
                virtualhost: None,
            }],
            http_protocol: HttpVersion::Http11,
            enable_sni: true,
            fast_recovery: false,
        };
        let t = HttpTarget::from_checker(&common, &http);
        assert_eq!(t.connect, "10.0.0.1:443".parse().unwrap());
        assert_eq!(t.bind, Some("0.0.0.0:4000".parse().unwrap()));
        assert_eq!(t.timeout, Duration::from_millis(2500));
        assert!(t.tls && t.enable_sni);
        assert_eq!(t.version, HttpVersion::Http11);
        common.bindto = Some("10.0.0.9".parse().unwrap());
        common.bind_port = None;
        let t = HttpTarget::from_checker(&common, &http);
        assert_eq!(t.bind, Some("10.0.0.9:0".parse().unwrap()));
    }

    #[test]
    fn title_case_names() {
        assert_eq!(title_case("content-type"), "Content-Type");
        assert_eq!(title_case("x-a-b"), "X-A-B");
    }

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
    }
}
