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
//! Where this probe differs from keepalived, on purpose:
//! - the body is decoded (chunked transfer coding removed) before hashing, so
//!   the digest is the MD5 of the body itself, stable across chunk boundaries;
//!   keepalived hashes the raw bytes after the header, chunk-size lines and all;
//! - the response must be well-formed HTTP/1.x (hyper parses it); keepalived
//!   only looks for a status code and the blank line;
//! - `connect_timeout` bounds the whole probe (connect, TLS handshake, request,
//!   response, body) with one deadline, so a probe never outlives it;
//!   keepalived restarts the timeout at every read;
//! - the body is read up to [`DEFAULT_MAX_BODY`] bytes; keepalived has no cap;
//! - TLS is rustls: TLS 1.2 and 1.3 only, no certificate verification (like
//!   keepalived), but the handshake signature is still checked.
//!
//! Like keepalived, a body that ends early (connection closed before its
//! Content-Length) fails the check only when a digest is wanted.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
use tokio::time::timeout_at;

use crate::config::model::{CheckCommon, HttpCheck, HttpVersion, Url};

use super::tcp::ProbeResult;

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
    /// connect_timeout: bounds the whole probe, connect to last body byte.
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

/// Where the deadline caught the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Connecting,
    TlsHandshake,
    WaitingForResponse,
    ReadingBody,
}

/// The phase an exchange is in, readable after its future was dropped.
struct PhaseCell(AtomicU8);

impl PhaseCell {
    fn new(p: Phase) -> Self {
        PhaseCell(AtomicU8::new(p as u8))
    }

    fn set(&self, p: Phase) {
        self.0.store(p as u8, Ordering::Relaxed);
    }

    fn get(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
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
    #[error("timed out after {} {phase}", secs(*after))]
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

/// Connects, sends one GET and reads the whole response, within
/// `target.timeout`. Shared by the checker and genhash.
pub async fn fetch(target: &HttpTarget, spec: FetchSpec<'_>) -> Result<Fetched, FetchError> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start) + target.timeout;
    let (request, request_text) = build_request(target, spec)?;

    let tcp = super::tcp::connect(target.connect, target.bind, target.timeout)
        .await
        .map_err(FetchError::Connect)?;
    let _ = tcp.set_nodelay(true);

    let phase = PhaseCell::new(Phase::WaitingForResponse);
    let result = if target.tls {
        let server_name = match sni_name(target.enable_sni, spec.virtualhost) {
            Some(name) => ServerName::try_from(name).map_err(|e| FetchError::Tls(e.to_string()))?,
            None => ServerName::IpAddress(target.connect.ip().into()),
        };
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        let tls = match timeout_at(deadline, connector.connect(server_name, tcp)).await {
            Err(_) => {
                return Err(FetchError::Timeout {
                    phase: Phase::TlsHandshake,
                    after: target.timeout,
                });
            }
            Ok(Err(e)) => return Err(FetchError::Tls(tls_error_text(&e))),
            Ok(Ok(s)) => s,
        };
        let io = EofTolerant(tls);
        timeout_at(
            deadline,
            exchange(io, request, target.max_body, spec.keep_body, &phase),
        )
        .await
    } else {
        timeout_at(
            deadline,
            exchange(tcp, request, target.max_body, spec.keep_body, &phase),
        )
        .await
    };
    match result {
        Err(_) => Err(FetchError::Timeout {
            phase: phase.get(),
            after: target.timeout,
        }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(mut fetched)) => {
            fetched.request = request_text;
            fetched.elapsed = start.elapsed();
            Ok(fetched)
        }
    }
}

fn build_request(
    target: &HttpTarget,
    spec: FetchSpec<'_>,
) -> Result<(Request<Empty<Bytes>>, String), FetchError> {
    let host = host_header(target.connect, spec.virtualhost);
    let host_value = HeaderValue::from_str(&host).map_err(|_| {
        FetchError::Request(format!("virtualhost {host:?} is not a valid header value"))
    })?;
    let uri: hyper::Uri = spec
        .path
        .parse()
        .map_err(|e| FetchError::Request(format!("url path {:?}: {e}", spec.path)))?;
    let (version, vtext) = match target.version {
        HttpVersion::Http10 | HttpVersion::Http10Close => (Version::HTTP_10, "1.0"),
        HttpVersion::Http11 => (Version::HTTP_11, "1.1"),
    };
    let close = !matches!(target.version, HttpVersion::Http10);
    let mut req = Request::new(Empty::<Bytes>::new());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    let headers = req.headers_mut();
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    headers.insert(HOST, host_value);

    let mut text = format!(
        "GET {} HTTP/{vtext}\r\nUser-Agent: {USER_AGENT_VALUE}\r\n",
        spec.path
    );
    if close {
        text.push_str("Connection: close\r\n");
    }
    text.push_str(&format!("Host: {host}\r\n\r\n"));
    Ok((req, text))
}

/// Sends the request over `io` and reads the response, driving hyper's
/// connection in the same task (dropped with it on timeout).
async fn exchange<I>(
    io: I,
    request: Request<Empty<Bytes>>,
    max_body: u64,
    keep_body: bool,
    phase: &PhaseCell,
) -> Result<Fetched, FetchError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    phase.set(Phase::WaitingForResponse);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES.max(8192) * 2)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| hyper_error(&e, false))?;
    let mut conn = std::pin::pin!(conn);

    let work = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| hyper_error(&e, false))?;
        phase.set(Phase::ReadingBody);
        let (parts, mut body) = response.into_parts();
        let reason = parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .or_else(|| parts.status.canonical_reason().map(str::to_string))
            .unwrap_or_default();

        let mut hasher = Md5::new();
        let mut body_len: u64 = 0;
        let mut kept = keep_body.then(Vec::new);
        let mut problem = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    if body_len + data.len() as u64 > max_body {
                        problem = Some(format!("body larger than {max_body} bytes"));
                        break;
                    }
                    body_len += data.len() as u64;
                    hasher.update(data);
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
        let md5 = problem.is_none().then(|| hasher.finalize().into());
        Ok(Fetched {
            request: String::new(),
            version: parts.version,
            status: parts.status.as_u16(),
            reason,
            headers: parts.headers,
            body_len,
            md5,
            body_problem: problem,
            body: kept,
            elapsed: Duration::ZERO,
        })
    };
    let mut work = std::pin::pin!(work);
    let mut conn_done = false;
    loop {
        tokio::select! {
            r = &mut work => return r,
            // Errors also reach `work` through hyper's channels; the
            // connection is polled only to move bytes.
            _ = &mut conn, if !conn_done => conn_done = true,
        }
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
    let start = Instant::now();
    let spec = FetchSpec {
        path: &url.path,
        virtualhost: url.virtualhost.as_deref(),
        keep_body: false,
    };
    let fetched = match fetch(target, spec).await {
        Ok(f) => f,
        Err(e) => {
            return UrlResult {
                path: url.path.clone(),
                up: false,
                status: None,
                digest: None,
                reason: e.to_string(),
                elapsed: start.elapsed(),
            };
        }
    };
    let (up, reason) = judge(&fetched, url);
    UrlResult {
        path: url.path.clone(),
        up,
        status: Some(fetched.status),
        digest: fetched.md5.map(|d| hex(&d)),
        reason,
        elapsed: start.elapsed(),
    }
}

/// The pure verdict on a response, in keepalived's order: status, then digest.
pub fn judge(fetched: &Fetched, url: &Url) -> (bool, String) {
    if !url.status_codes.contains(fetched.status) {
        return (
            false,
            format!("HTTP status {} not in {}", fetched.status, url.status_codes),
        );
    }
    if let Some(want) = &url.digest {
        return match (&fetched.md5, &fetched.body_problem) {
            (Some(got), _) => {
                let got = hex(got);
                if got.eq_ignore_ascii_case(want) {
                    (
                        true,
                        format!("ok (HTTP {}, digest matches)", fetched.status),
                    )
                } else {
                    (false, format!("digest mismatch: got {got}, want {want}"))
                }
            }
            (None, Some(problem)) => (false, format!("no digest: {problem}")),
            (None, None) => (false, "no digest: body not read".into()),
        };
    }
    match &fetched.body_problem {
        None => (true, format!("ok (HTTP {})", fetched.status)),
        Some(p) => (true, format!("ok (HTTP {}; {p})", fetched.status)),
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

/// Checks a configured HTTP_GET / SSL_GET checker.
pub async fn probe(common: &CheckCommon, http: &HttpCheck) -> HttpCheckResult {
    check_urls(&HttpTarget::from_checker(common, http), &http.urls).await
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
