//! HTTP_GET / SSL_GET and genhash against real servers on loopback: hyper
//! servers, a rustls server with a self-signed certificate, and raw TCP
//! servers that misbehave. Linux routes all of 127.0.0.0/8 to lo, so several
//! source and listen addresses are available without root.

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, Version};
use hyper_util::rt::TokioIo;
use ipvsdir::check::genhash::{GenhashArgs, GenhashError, genhash, genhash_report};
use ipvsdir::check::http::{DEFAULT_MAX_BODY, HttpTarget, PreparedHttp};
use ipvsdir::check::poller::{self, exchange::Polled};
use ipvsdir::check::prepared::Prepared;
use ipvsdir::check::probe::ProbeResult;
use ipvsdir::config::model::{HttpVersion, StatusCodes, Url};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------- bodies

const HELLO: &[u8] = b"hello world\n";

fn large_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn chunk_parts() -> Vec<&'static [u8]> {
    vec![
        b"first chunk, ",
        b"second chunk, ",
        b"",
        b"third and last\n",
    ]
}

fn chunked_body() -> Vec<u8> {
    chunk_parts().concat()
}

/// A body of several frames and no known length: hyper sends it chunked to
/// an HTTP/1.1 client (and close-delimited to an HTTP/1.0 one).
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// A body sent in parts `gap` apart (the first after a gap too), then
/// ended, or held open forever with `stall`.
struct Trickle {
    parts: VecDeque<Bytes>,
    gap: Duration,
    stall: bool,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.parts.is_empty() {
            return if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        }
        let gap = self.gap;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timer = None;
        Poll::Ready(self.parts.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// The parts of the trickled bodies: 8 parts, 100 ms apart.
fn trickle_parts() -> Vec<Bytes> {
    (0..8)
        .map(|i| Bytes::from(format!("part {i} of a slow body\n")))
        .collect()
}

const TRICKLE_GAP: Duration = Duration::from_millis(100);

type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

fn full(status: u16, body: impl Into<Bytes>) -> Response<BoxBody> {
    use http_body_util::BodyExt;
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r
}

/// The routes every test server serves.
fn route(path: &str) -> Response<BoxBody> {
    use http_body_util::BodyExt;
    match path {
        "/" | "/ok" => full(200, HELLO),
        "/busy" => full(503, "busy\n"),
        "/moved" => {
            let mut r = full(301, "");
            r.headers_mut()
                .insert("location", "http://elsewhere/".parse().unwrap());
            r
        }
        "/chunked" => {
            let frames = chunk_parts().into_iter().map(Bytes::from_static).collect();
            Response::new(Chunks(frames).boxed_unsync())
        }
        "/trickle" | "/trickle-stall" => Response::new(
            Trickle {
                parts: if path == "/trickle" {
                    trickle_parts().into()
                } else {
                    trickle_parts().into_iter().take(3).collect()
                },
                gap: TRICKLE_GAP,
                stall: path == "/trickle-stall",
                timer: None,
            }
            .boxed_unsync(),
        ),
        "/large" => full(200, large_body(3 << 20)),
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            full(code, format!("status {code}\n"))
        }
        _ => full(404, "not found\n"),
    }
}

// ---------------------------------------------------------------- servers

/// What a server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    peer: SocketAddr,
    path: String,
    version: Version,
    host: Option<String>,
    user_agent: Option<String>,
    connection: Option<String>,
    /// TLS only: the SNI the client sent.
    sni: Option<String>,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    fn last(&self) -> Seen {
        self.all()
            .last()
            .cloned()
            .expect("the server saw no request")
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

async fn serve_http<I>(io: I, peer: SocketAddr, sni: Option<String>, log: Log)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let seen = Seen {
            peer,
            path: req.uri().path().to_string(),
            version: req.version(),
            host: header(&req, "host"),
            user_agent: header(&req, "user-agent"),
            connection: header(&req, "connection"),
            sni: sni.clone(),
        };
        log.0.lock().unwrap().push(seen);
        let resp = route(req.uri().path());
        async move { Ok::<_, std::convert::Infallible>(resp) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

struct Server {
    addr: SocketAddr,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A plain HTTP server on `ip`, any free port.
async fn http_server(ip: &str) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let l = log.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_http(stream, peer, None, l.clone()));
        }
    });
    Server { addr, log, task }
}

/// An HTTPS server with a fresh self-signed certificate for www.example.com.
async fn https_server(ip: &str) -> Server {
    let key = rcgen::generate_simple_self_signed(vec!["www.example.com".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let l = log.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let l = l.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let sni = tls.get_ref().1.server_name().map(str::to_string);
                    serve_http(tls, peer, sni, l).await;
                }
            });
        }
    });
    Server { addr, log, task }
}

/// How a raw TCP server treats each connection.
#[derive(Clone)]
enum Raw {
    /// Read the request head, write these bytes, close.
    Reply(Vec<u8>),
    /// Accept and never answer (keep the connection open).
    Silent,
    /// Read the request head and close without a word.
    Close,
    /// Read the request head and reset the connection (RST).
    Reset,
    /// Read the request head, write these bytes, then hold the connection.
    Stall(Vec<u8>),
    /// Read the request head, then write each part after a pause of `gap`
    /// (the first one too); then close, or hold the connection with `stall`.
    Trickle {
        parts: Vec<Vec<u8>>,
        gap: Duration,
        stall: bool,
    },
}

struct RawServer {
    addr: SocketAddr,
    /// Each connection's request bytes, as received.
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf
}

async fn raw_server(ip: &str, behaviour: Raw) -> RawServer {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let reqs = requests.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            match &behaviour {
                Raw::Silent => held.push(stream),
                Raw::Close => {
                    let head = read_head(&mut stream).await;
                    reqs.lock().unwrap().push(head);
                }
                Raw::Stall(bytes) => {
                    let head = read_head(&mut stream).await;
                    reqs.lock().unwrap().push(head);
                    let _ = stream.write_all(bytes).await;
                    held.push(stream);
                }
                Raw::Trickle { parts, gap, stall } => {
                    // Each part in its own segment, as written.
                    let _ = stream.set_nodelay(true);
                    let (parts, gap, stall) = (parts.clone(), *gap, *stall);
                    let reqs = reqs.clone();
                    tokio::spawn(async move {
                        let head = read_head(&mut stream).await;
                        reqs.lock().unwrap().push(head);
                        for p in parts {
                            tokio::time::sleep(gap).await;
                            if stream.write_all(&p).await.is_err() {
                                return;
                            }
                        }
                        if stall {
                            std::future::pending::<()>().await;
                        }
                        let _ = stream.shutdown().await;
                    });
                }
                Raw::Reset => {
                    let head = read_head(&mut stream).await;
                    reqs.lock().unwrap().push(head);
                    let _ = stream.set_zero_linger();
                    drop(stream);
                }
                Raw::Reply(bytes) => {
                    let head = read_head(&mut stream).await;
                    reqs.lock().unwrap().push(head);
                    let _ = stream.write_all(bytes).await;
                    let _ = stream.shutdown().await;
                }
            }
        }
    });
    RawServer {
        addr,
        requests,
        task,
    }
}

// ---------------------------------------------------------------- helpers

fn target(addr: SocketAddr) -> HttpTarget {
    HttpTarget {
        connect: addr,
        bind: None,
        tls: false,
        enable_sni: false,
        version: HttpVersion::Http10,
        timeout: Duration::from_secs(3),
        max_body: DEFAULT_MAX_BODY,
    }
}

fn url(path: &str) -> Url {
    Url {
        path: path.to_string(),
        digest: None,
        status_codes: StatusCodes::default_2xx(),
        virtualhost: None,
    }
}

fn url_digest(path: &str, digest: &str) -> Url {
    Url {
        digest: Some(digest.to_string()),
        ..url(path)
    }
}

fn genhash_args(addr: SocketAddr, path: &str) -> GenhashArgs {
    GenhashArgs {
        server: addr.ip(),
        port: addr.port(),
        url: path.to_string(),
        use_ssl: false,
        virtualhost: None,
        protocol: HttpVersion::Http10,
        timeout: Duration::from_secs(3),
        verbose: false,
        sni: false,
    }
}

/// The `md5sum` binary's digest of `data`.
fn md5sum(data: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    let out = std::process::Command::new("md5sum")
        .arg(file.path())
        .output()
        .expect("md5sum runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..32].to_string()
}

async fn digest_of(addr: SocketAddr, path: &str) -> String {
    let text = genhash(&genhash_args(addr, path)).await.unwrap();
    assert_eq!(text.len(), 33, "one line of 32 hex characters: {text:?}");
    text.trim_end().to_string()
}

/// One probe of `url` over `t`, the checker's own way.
async fn check(t: &HttpTarget, url: &Url) -> ProbeResult {
    check_all(t, std::slice::from_ref(url)).await
}

/// One probe of a checker with these urls, run as the daemon runs it:
/// HTTP_GET on the checker thread's poller, SSL_GET as a task.
async fn check_all(t: &HttpTarget, urls: &[Url]) -> ProbeResult {
    let http = Box::new(PreparedHttp::with_target(t.clone(), urls));
    match Polled::take(Prepared::Http(http)) {
        Ok(polled) => poller::probe(polled).await,
        Err(Prepared::Http(tls)) => tls.probe().await,
        Err(other) => panic!("not an HTTP checker: {other:?}"),
    }
}

/// One TCP_CHECK, run as the daemon runs it (on the poller).
async fn tcp_check(addr: SocketAddr, bind: Option<SocketAddr>, timeout: Duration) -> ProbeResult {
    poller::probe(Polled::Tcp {
        addr,
        bind,
        timeout,
    })
    .await
}

fn assert_up(r: &ProbeResult) {
    eprintln!("up: {}", r.reason);
    assert!(r.ok && !r.local, "expected up, got: {r:?}");
}

fn assert_down(r: &ProbeResult, reason: &str) {
    eprintln!("down: {}", r.reason);
    assert!(!r.ok && !r.local, "expected down, got: {r:?}");
    assert!(
        r.reason.contains(reason),
        "reason {:?} does not contain {reason:?}",
        r.reason
    );
}

// ---------------------------------------------------------------- HTTP_GET

#[tokio::test]
async fn ok_200_with_body() {
    let s = http_server("127.0.0.1").await;
    let r = check(&target(s.addr), &url("/ok")).await;
    assert_up(&r);
    assert_eq!(r.reason, "ok (HTTP 200)");
    assert_eq!(digest_of(s.addr, "/ok").await, md5sum(HELLO));

    let seen = s.log.last();
    assert_eq!(seen.path, "/ok");
    assert_eq!(seen.version, Version::HTTP_10);
    assert_eq!(seen.user_agent.as_deref(), Some("KeepAliveClient"));
    assert_eq!(
        seen.connection, None,
        "plain 1.0 sends no Connection header"
    );
    assert_eq!(seen.host, Some(format!("127.0.0.1:{}", s.addr.port())));
}

#[tokio::test]
async fn status_503_and_301_are_down_by_default() {
    let s = http_server("127.0.0.1").await;
    let t = target(s.addr);
    let r = check(&t, &url("/busy")).await;
    assert_down(&r, "HTTP status 503 not in 200-299");
    let r = check(&t, &url("/moved")).await;
    assert_eq!(r.reason, "url /moved: HTTP status 301 not in 200-299");
}

#[tokio::test]
async fn status_ranges() {
    let s = http_server("127.0.0.1").await;
    let t = target(s.addr);
    let codes = StatusCodes(vec![(200, 299), (400, 400), (503, 503)]);
    assert_eq!(codes.to_string(), "200-299 400 503");
    for (code, up) in [
        (200, true),
        (250, true),
        (299, true),
        (300, false),
        (301, false),
        (399, false),
        (400, true),
        (401, false),
        (500, false),
        (503, true),
        (504, false),
    ] {
        let u = Url {
            status_codes: codes.clone(),
            ..url(&format!("/status/{code}"))
        };
        let r = check(&t, &u).await;
        assert_eq!(r.ok, up, "status {code}: {r:?}");
        if !up {
            assert_eq!(
                r.reason,
                format!("url /status/{code}: HTTP status {code} not in 200-299 400 503")
            );
        }
    }
}

#[tokio::test]
async fn chunked_body_digest_is_keepalived_s_and_the_decoded_one_is_accepted() {
    let s = http_server("127.0.0.1").await;
    // To HTTP/1.1 hyper sends the body chunked: keepalived hashes the
    // chunked bytes; to HTTP/1.0 it sends them as they are, to the close.
    let args = GenhashArgs {
        protocol: HttpVersion::Http11,
        ..genhash_args(s.addr, "/chunked")
    };
    let report = genhash_report(&args).await.unwrap();
    let decoded = md5sum(&chunked_body());
    assert_ne!(report.digest, decoded);
    assert_eq!(report.decoded_digest.as_deref(), Some(decoded.as_str()));
    if let Some(theirs) = keepalived_genhash(s.addr, "/chunked", "1.1").await {
        assert_eq!(report.digest, theirs);
    }
    let t = HttpTarget {
        version: HttpVersion::Http11,
        ..target(s.addr)
    };
    let r = check(&t, &url_digest("/chunked", &report.digest)).await;
    assert_eq!(r.reason, "ok (HTTP 200, digest matches)");
    let r = check(&t, &url_digest("/chunked", &decoded)).await;
    assert_eq!(r.reason, "ok (HTTP 200, digest matches the decoded body)");
    let r = check(&t, &url_digest("/chunked", &md5sum(b"other"))).await;
    assert_down(
        &r,
        &format!(
            "digest mismatch: got {} (decoded body {decoded}), want",
            report.digest
        ),
    );
    s.log.0.lock().unwrap().clear();

    let want = decoded;
    for version in [
        HttpVersion::Http11,
        HttpVersion::Http10,
        HttpVersion::Http10Close,
    ] {
        let t = HttpTarget {
            version,
            ..target(s.addr)
        };
        let r = check(&t, &url_digest("/chunked", &want)).await;
        assert_up(&r);
    }
    let versions: Vec<_> = s.log.all().iter().map(|x| x.version).collect();
    assert_eq!(
        versions,
        [Version::HTTP_11, Version::HTTP_10, Version::HTTP_10]
    );
    let conns: Vec<_> = s.log.all().into_iter().map(|x| x.connection).collect();
    assert_eq!(conns, [Some("close".into()), None, Some("close".into())]);
}

#[tokio::test]
async fn large_body_streams_and_hashes() {
    let s = http_server("127.0.0.1").await;
    let want = md5sum(&large_body(3 << 20));
    let r = check(&target(s.addr), &url_digest("/large", &want)).await;
    assert_up(&r);
}

#[tokio::test]
async fn body_over_the_cap() {
    let s = http_server("127.0.0.1").await;
    let t = target(s.addr);
    let t = HttpTarget {
        max_body: 1 << 20,
        ..t
    };
    let r = check(&t, &url_digest("/large", &md5sum(b"x"))).await;
    assert_down(&r, "no digest: body larger than 1048576 bytes");
    // Without a digest only the status matters, as in keepalived.
    let r = check(&t, &url("/large")).await;
    assert_up(&r);
    assert!(
        r.reason.starts_with("ok (HTTP 200; body larger than"),
        "{r:?}"
    );
}

#[tokio::test]
async fn digest_from_genhash_matches_md5sum_and_the_checker() {
    let s = http_server("127.0.0.1").await;
    for (path, body) in [
        ("/ok", HELLO.to_vec()),
        ("/chunked", chunked_body()),
        ("/large", large_body(3 << 20)),
    ] {
        let got = digest_of(s.addr, path).await;
        assert_eq!(got, md5sum(&body), "{path}");
        let t = target(s.addr);
        assert_up(&check(&t, &url_digest(path, &got)).await);
        let other = md5sum(b"something else");
        let r = check(&t, &url_digest(path, &other)).await;
        assert_down(&r, &format!("digest mismatch: got {got}, want {other}"));
    }
}

#[tokio::test]
async fn virtualhost_is_the_host_header() {
    let s = http_server("127.0.0.1").await;
    let u = Url {
        virtualhost: Some("www.example.com".into()),
        ..url("/ok")
    };
    assert_up(&check(&target(s.addr), &u).await);
    assert_eq!(s.log.last().host.as_deref(), Some("www.example.com"));
}

#[tokio::test]
async fn bindto_sets_the_source_address() {
    let s = http_server("127.0.0.1").await;
    let t = HttpTarget {
        bind: Some("127.0.0.2:0".parse().unwrap()),
        ..target(s.addr)
    };
    assert_up(&check(&t, &url("/ok")).await);
    assert_eq!(
        s.log.last().peer.ip(),
        "127.0.0.2".parse::<IpAddr>().unwrap()
    );

    // bind_port too.
    let port = std::net::TcpListener::bind("127.0.0.3:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    let t = HttpTarget {
        bind: Some(source),
        ..target(s.addr)
    };
    assert_up(&check(&t, &url("/ok")).await);
    assert_eq!(s.log.last().peer, source);
}

#[tokio::test]
async fn request_bytes_match_keepalived() {
    // What keepalived 2.2.7's genhash/checker sends, captured on loopback.
    let reply = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let s = raw_server("127.0.0.1", Raw::Reply(reply)).await;
    let port = s.addr.port();
    let cases = [
        (HttpVersion::Http10, None, format!(
            "GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        )),
        (HttpVersion::Http10Close, None, format!(
            "GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        )),
        (HttpVersion::Http11, Some("www.example.com"), 
            "GET /x HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n".to_string()
        ),
    ];
    for (i, (version, vhost, want)) in cases.into_iter().enumerate() {
        let t = HttpTarget {
            version,
            ..target(s.addr)
        };
        let u = Url {
            virtualhost: vhost.map(str::to_string),
            ..url("/x")
        };
        assert_up(&check(&t, &u).await);
        let got = s.requests.lock().unwrap()[i].clone();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
}

#[tokio::test]
async fn ipv6_host_header_is_bracketed() {
    let Ok(l) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    };
    drop(l);
    let s = http_server("::1").await;
    assert_up(&check(&target(s.addr), &url("/ok")).await);
    assert_eq!(s.log.last().host, Some(format!("[::1]:{}", s.addr.port())));
}

/// A loopback address that refuses connections for as long as the socket
/// lives: bound, so no other test can take its port, but not listening.
fn refusing() -> (tokio::net::TcpSocket, SocketAddr) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = s.local_addr().unwrap();
    (s, addr)
}

#[tokio::test]
async fn closed_port_is_refused() {
    let (_bound, addr) = refusing();
    let r = check(&target(addr), &url("/")).await;
    assert!(!r.ok);
    assert_eq!(r.reason, "url /: connection refused");
}

#[tokio::test]
async fn silent_server_times_out_within_connect_timeout() {
    let s = raw_server("127.0.0.1", Raw::Silent).await;
    let t = HttpTarget {
        timeout: Duration::from_millis(500),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(&t, &url("/")).await;
    let took = start.elapsed();
    assert!(!r.ok);
    assert_eq!(
        r.reason,
        "url /: timed out after 0.5 s waiting for the response"
    );
    assert!(took >= Duration::from_millis(500), "took {took:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    eprintln!("timeout probe (connect_timeout 0.5 s) took {took:?}");
}

#[tokio::test]
async fn stalled_body_times_out() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial".to_vec();
    let s = raw_server("127.0.0.1", Raw::Stall(head)).await;
    let t = HttpTarget {
        timeout: Duration::from_millis(400),
        ..target(s.addr)
    };
    let r = check(&t, &url("/")).await;
    assert!(!r.ok);
    assert_eq!(
        r.reason,
        "url /: timed out after 0.4 s without data reading the body"
    );
}

/// A raw server's response in 8 parts, TRICKLE_GAP apart: the head line
/// first, then headers, then the body in pieces.
fn trickled_response(stall: bool) -> (Raw, Vec<u8>) {
    let body: Vec<u8> = trickle_parts().concat();
    let mut parts = vec![
        b"HTTP/1.1 200 OK\r\n".to_vec(),
        format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
    ];
    parts.extend(body.chunks(body.len() / 6 + 1).map(<[u8]>::to_vec));
    if stall {
        // The head and half the body, then nothing.
        parts.truncate(parts.len() / 2 + 1);
    }
    let raw = Raw::Trickle {
        parts,
        gap: TRICKLE_GAP,
        stall,
    };
    (raw, body)
}

#[tokio::test]
async fn slow_but_steady_response_is_up() {
    // keepalived's timing: connect_timeout restarts at every read, so a
    // response that takes longer than connect_timeout in all is fine as
    // long as no pause is that long.
    let (raw, body) = trickled_response(false);
    let s = raw_server("127.0.0.1", raw).await;
    let t = HttpTarget {
        timeout: Duration::from_millis(500),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(&t, &url_digest("/", &md5sum(&body))).await;
    let took = start.elapsed();
    assert_up(&r);
    assert_eq!(r.reason, "ok (HTTP 200, digest matches)");
    assert!(took >= Duration::from_millis(700), "took {took:?}");
    eprintln!("trickled response (connect_timeout 0.5 s) took {took:?}");

    // The same over TLS, from a hyper server that sends its body slowly.
    let s = https_server("127.0.0.1").await;
    let t = HttpTarget {
        tls: true,
        timeout: Duration::from_millis(500),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(
        &t,
        &url_digest("/trickle", &md5sum(&trickle_parts().concat())),
    )
    .await;
    assert_up(&r);
    assert!(start.elapsed() >= Duration::from_millis(700));
}

#[tokio::test]
async fn stall_mid_body_longer_than_connect_timeout_is_down() {
    let (raw, _) = trickled_response(true);
    let s = raw_server("127.0.0.1", raw).await;
    let t = HttpTarget {
        timeout: Duration::from_millis(500),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(&t, &url("/")).await;
    let took = start.elapsed();
    assert_down(&r, "timed out after 0.5 s without data reading the body");
    // Parts kept coming for 0.5 s (the timer restarted with each), then
    // the 0.5 s silence: about a second in all.
    assert!(took >= Duration::from_millis(950), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("stalled trickle (connect_timeout 0.5 s) failed after {took:?}");

    // Over TLS: the hyper server sends 3 parts, then holds the body open.
    let s = https_server("127.0.0.1").await;
    let t = HttpTarget {
        tls: true,
        timeout: Duration::from_millis(500),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(&t, &url("/trickle-stall")).await;
    assert_down(&r, "timed out after 0.5 s without data reading the body");
    assert!(start.elapsed() >= Duration::from_millis(750));
}

#[tokio::test]
async fn slow_first_byte_within_connect_timeout_is_up() {
    // The connect, the request and the wait for the response each get their
    // own connect_timeout: a reply 0.3 s after the request is in time.
    let raw = Raw::Trickle {
        parts: vec![b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n".to_vec()],
        gap: Duration::from_millis(300),
        stall: false,
    };
    let s = raw_server("127.0.0.1", raw).await;
    let t = HttpTarget {
        timeout: Duration::from_millis(500),
        ..target(s.addr)
    };
    assert_up(&check(&t, &url("/")).await);
}

#[tokio::test]
async fn prepared_checker_probes_like_check_all() {
    use ipvsdir::check::probe::ProbeContext;
    let s = http_server("127.0.0.1").await;
    let conf = |urls: &str| {
        format!(
            "virtual_server 10.0.0.1 80 {{\n real_server {} {} {{\n  HTTP_GET {{\n{urls}   connect_timeout 2\n  }}\n }}\n}}\n",
            s.addr.ip(),
            s.addr.port()
        )
    };
    let probe = |text: String| async move {
        let l = ipvsdir::config::load_str("t.conf", &text, &Default::default());
        let cfg = l.config.unwrap_or_else(|| panic!("{}", l.diagnostics));
        let checker = &cfg.virtual_servers[0].real_servers[0].checkers[0];
        // Prepared once, probed twice: the same request both times. As a
        // task (the runtime's way, when the checker thread cannot start)
        // it comes out as on the poller.
        let prepared = Prepared::new(checker);
        let first = prepared.run(&ProbeContext::default()).await;
        let again = prepared.run(&ProbeContext::default()).await;
        assert_eq!(first, again);
        let Ok(polled) = Polled::take(Prepared::new(checker)) else {
            panic!("HTTP_GET runs on the poller");
        };
        assert_eq!(poller::probe(polled).await, first);
        first
    };
    let r = probe(conf("   url {\n    path /ok\n   }\n")).await;
    assert!(r.ok && r.reason == "ok (HTTP 200)", "{r:?}");
    let r = probe(conf(&format!(
        "   url {{\n    path /ok\n    digest {}\n   }}\n",
        md5sum(HELLO)
    )))
    .await;
    assert!(r.ok && r.reason == "ok (HTTP 200, digest matches)", "{r:?}");
    let r = probe(conf(
        "   url {\n    path /ok\n   }\n   url {\n    path /busy\n   }\n",
    ))
    .await;
    assert!(!r.ok, "{r:?}");
    assert_eq!(r.reason, "url /busy: HTTP status 503 not in 200-299");
    let r = probe(conf(
        "   url {\n    path /ok\n   }\n   url {\n    path /chunked\n   }\n",
    ))
    .await;
    assert!(r.ok && r.reason == "ok (2 urls)", "{r:?}");
    let requests: Vec<_> = s.log.all().iter().map(|x| x.path.clone()).collect();
    assert_eq!(
        requests,
        [
            "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/busy", "/ok", "/busy", "/ok",
            "/busy", "/ok", "/chunked", "/ok", "/chunked", "/ok", "/chunked"
        ]
    );
}

#[test]
fn probes_can_be_spawned() {
    fn is_send<T: Send + 'static>(_: &T) {}
    let t = target("127.0.0.1:1".parse().unwrap());
    let urls = vec![url("/")];
    let f = async move { check_all(&t, &urls).await };
    is_send(&f);
}

#[tokio::test]
async fn silent_tls_server_times_out_in_the_handshake() {
    let s = raw_server("127.0.0.1", Raw::Silent).await;
    let t = HttpTarget {
        tls: true,
        timeout: Duration::from_millis(400),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(&t, &url("/")).await;
    assert_eq!(
        r.reason,
        "url /: timed out after 0.4 s in the TLS handshake"
    );
    assert!(start.elapsed() < Duration::from_millis(2400));
}

#[tokio::test]
async fn garbage_response_is_down() {
    let s = raw_server("127.0.0.1", Raw::Reply(b"garbage\r\n\r\nxx".to_vec())).await;
    let r = check(&target(s.addr), &url("/")).await;
    assert_down(&r, "invalid HTTP response");

    let s = raw_server("127.0.0.1", Raw::Reply(vec![0xff; 100_000])).await;
    let r = check(&target(s.addr), &url("/")).await;
    assert_down(&r, "invalid HTTP response");
}

#[tokio::test]
async fn huge_header_is_down() {
    let mut reply = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    reply.extend(std::iter::repeat_n(b'a', 200_000));
    reply.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    let s = raw_server("127.0.0.1", Raw::Reply(reply)).await;
    let r = check(&target(s.addr), &url("/")).await;
    assert_down(
        &r,
        "invalid HTTP response: response head larger than 65536 bytes",
    );
}

#[tokio::test]
async fn early_close_is_down() {
    let s = raw_server("127.0.0.1", Raw::Close).await;
    let r = check(&target(s.addr), &url("/")).await;
    assert!(!r.ok);
    assert_eq!(r.reason, "url /: connection closed before the response");
}

#[tokio::test]
async fn reset_is_down() {
    let s = raw_server("127.0.0.1", Raw::Reset).await;
    let r = check(&target(s.addr), &url("/")).await;
    assert!(!r.ok);
    assert_eq!(
        r.reason,
        "url /: connection error: connection reset by peer"
    );
}

#[tokio::test]
async fn unusable_bindto_is_a_local_problem() {
    let s = http_server("127.0.0.1").await;
    let t = HttpTarget {
        bind: Some("192.0.2.1:0".parse().unwrap()),
        ..target(s.addr)
    };
    let r = check(&t, &url("/ok")).await;
    assert!(r.local && !r.ok, "{r:?}");
    assert!(
        r.reason.starts_with("cannot bind to 192.0.2.1:0: "),
        "{r:?}"
    );
    assert!(s.log.all().is_empty());
}

/// A listener that does not accept, with its queue filled: Linux then
/// drops further SYNs, so a connect hangs until the queue has room and the
/// SYN is sent again (after 1 s). Returns the listener and the fillers.
async fn full_listener() -> (TcpListener, Vec<TcpStream>) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => panic!("filler connect failed: {e}"),
            Err(_) => break,
        }
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    (listener, fillers)
}

/// Starts accepting on `listener` after `after`, answering every request
/// with a 200 (the fillers, which send nothing, get nothing).
fn accept_later(listener: TcpListener, after: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut s).await;
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    .await;
            });
        }
    })
}

#[tokio::test]
async fn connect_timeout_when_the_accept_queue_is_full() {
    let (listener, _fillers) = full_listener().await;
    let addr = listener.local_addr().unwrap();
    let t = HttpTarget {
        timeout: Duration::from_millis(300),
        ..target(addr)
    };
    let start = Instant::now();
    let r = check(&t, &url("/")).await;
    let took = start.elapsed();
    assert_down(&r, "timed out after 0.3 s connecting");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(2300));
    eprintln!("connect timeout probe (connect_timeout 0.3 s) took {took:?}");
}

/// Runs `probe` against a listener whose handshake finishes only after
/// connect(2) returned (the usual case off this host): its first SYN is
/// dropped, and it accepts once the SYN is sent again. The probe waits for
/// the connection, within connect_timeout, and is up.
async fn up_after_a_late_handshake<F, Fut>(probe: F)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = ProbeResult>,
{
    let (listener, _fillers) = full_listener().await;
    let addr = listener.local_addr().unwrap();
    let server = accept_later(listener, Duration::from_millis(200));
    let start = Instant::now();
    let r = probe(addr).await;
    let took = start.elapsed();
    server.abort();
    assert_up(&r);
    // The first SYN was dropped: the connection came with the resent one.
    assert!(took >= Duration::from_millis(800), "{took:?}");
}

/// HTTP_GET sends its request once such a connection is up.
#[tokio::test]
async fn a_handshake_that_finishes_later_gets_the_request_then() {
    up_after_a_late_handshake(|addr| async move {
        let t = HttpTarget {
            timeout: Duration::from_secs(5),
            ..target(addr)
        };
        check(&t, &url("/")).await
    })
    .await;
}

// ---------------------------------------------------------------- TCP_CHECK

#[tokio::test]
async fn tcp_check_up_refused_and_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = tcp_check(addr, None, Duration::from_secs(1)).await;
    assert_up(&r);
    assert_eq!(r.reason, "connected");
    // From a chosen source address too (bindto; the address itself is
    // checked through HTTP_GET, which dials the same way, in
    // bindto_sets_the_source_address).
    let from: SocketAddr = "127.0.0.9:0".parse().unwrap();
    assert_up(&tcp_check(addr, Some(from), Duration::from_secs(1)).await);
    // Half-open: the server's kernel answered both, its application saw none.
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(
        accepted.is_err(),
        "a TCP_CHECK reached accept(2): {accepted:?}"
    );
    drop(listener);

    let (_bound, closed) = refusing();
    let r = tcp_check(closed, None, Duration::from_secs(1)).await;
    assert_down(&r, "connection refused");
    assert_eq!(r.reason, "connection refused");

    let (full, _fillers) = full_listener().await;
    let start = Instant::now();
    let r = tcp_check(full.local_addr().unwrap(), None, Duration::from_millis(300)).await;
    assert_down(&r, "timed out after 0.3 s connecting");
    assert!(start.elapsed() < Duration::from_millis(2300));

    let r = tcp_check(
        addr,
        Some("192.0.2.1:0".parse().unwrap()),
        Duration::from_secs(1),
    )
    .await;
    assert!(r.local && !r.ok, "{r:?}");
    assert!(
        r.reason.starts_with("cannot bind to 192.0.2.1:0: "),
        "{r:?}"
    );
}

/// TCP_CHECK waits for such a connection (the runtime reports it).
#[tokio::test]
async fn tcp_check_waits_for_a_handshake_that_finishes_later() {
    up_after_a_late_handshake(|addr| tcp_check(addr, None, Duration::from_secs(5))).await;
}

#[tokio::test]
async fn truncated_body_fails_only_a_digest_check() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec();
    let s = raw_server("127.0.0.1", Raw::Reply(reply)).await;
    let t = target(s.addr);
    let r = check(&t, &url("/")).await;
    assert_up(&r);
    assert!(r.reason.contains("body incomplete after 5 bytes"), "{r:?}");
    let r = check(&t, &url_digest("/", &md5sum(b"short"))).await;
    assert_down(&r, "no digest: body incomplete after 5 bytes");
}

#[tokio::test]
async fn read_to_close_body() {
    let reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world\n".to_vec();
    let s = raw_server("127.0.0.1", Raw::Reply(reply)).await;
    let r = check(&target(s.addr), &url_digest("/", &md5sum(HELLO))).await;
    assert_up(&r);
}

#[tokio::test]
async fn urls_are_checked_in_order_and_stop_at_the_first_failure() {
    let s = http_server("127.0.0.1").await;
    let t = target(s.addr);
    let all_ok = check_all(&t, &[url("/ok"), url("/chunked")]).await;
    assert!(all_ok.ok);
    assert_eq!(all_ok.reason, "ok (2 urls)");

    let before = s.log.all().len();
    let r = check_all(&t, &[url("/ok"), url("/busy"), url("/large")]).await;
    assert!(!r.ok);
    assert_eq!(r.reason, "url /busy: HTTP status 503 not in 200-299");
    let paths: Vec<_> = s.log.all()[before..]
        .iter()
        .map(|x| x.path.clone())
        .collect();
    assert_eq!(paths, ["/ok", "/busy"]);

    let none = check_all(&t, &[]).await;
    assert!(none.ok);
}

// ---------------------------------------------------------------- SSL_GET

#[tokio::test]
async fn ssl_get_without_sni() {
    let s = https_server("127.0.0.1").await;
    let t = HttpTarget {
        tls: true,
        ..target(s.addr)
    };
    // A virtualhost goes into Host, but not into SNI unless enable_sni.
    let u = Url {
        virtualhost: Some("www.example.com".into()),
        ..url_digest("/ok", &md5sum(HELLO))
    };
    assert_up(&check(&t, &u).await);
    let seen = s.log.last();
    assert_eq!(seen.sni, None);
    assert_eq!(seen.host.as_deref(), Some("www.example.com"));
}

#[tokio::test]
async fn ssl_get_with_sni() {
    let s = https_server("127.0.0.1").await;
    let t = HttpTarget {
        tls: true,
        enable_sni: true,
        ..target(s.addr)
    };
    let u = Url {
        virtualhost: Some("www.example.com".into()),
        ..url("/ok")
    };
    assert_up(&check(&t, &u).await);
    assert_eq!(s.log.last().sni.as_deref(), Some("www.example.com"));

    // enable_sni without a virtualhost: nothing to send.
    assert_up(&check(&t, &url("/ok")).await);
    assert_eq!(s.log.last().sni, None);
    assert_eq!(
        s.log.last().host,
        Some(format!("127.0.0.1:{}", s.addr.port()))
    );
}

#[tokio::test]
async fn ssl_get_status_and_chunked() {
    let s = https_server("127.0.0.1").await;
    let t = HttpTarget {
        tls: true,
        version: HttpVersion::Http11,
        ..target(s.addr)
    };
    assert_down(
        &check(&t, &url("/busy")).await,
        "HTTP status 503 not in 200-299",
    );
    let r = check(&t, &url_digest("/chunked", &md5sum(&chunked_body()))).await;
    assert_up(&r);
}

#[tokio::test]
async fn ssl_get_to_a_plain_server_fails_the_handshake() {
    let s = http_server("127.0.0.1").await;
    let t = HttpTarget {
        tls: true,
        ..target(s.addr)
    };
    let r = check(&t, &url("/ok")).await;
    assert_down(&r, "TLS handshake failed: ");
}

#[tokio::test]
async fn ssl_read_to_close_without_close_notify() {
    // A TLS server that answers HTTP/1.0 style (no length) and then drops
    // the TCP connection without close_notify: keepalived accepts this.
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], private)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(stream).await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = tls.read(&mut buf).await;
        tls.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello world\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        // Drop the TCP stream without a TLS close_notify.
        let (tcp, _) = tls.into_inner();
        drop(tcp);
    });
    let t = HttpTarget {
        tls: true,
        ..target(addr)
    };
    let r = check(&t, &url_digest("/", &md5sum(HELLO))).await;
    assert_up(&r);
    task.await.unwrap();
}

// ---------------------------------------------------------------- genhash

#[tokio::test]
async fn genhash_verbose_layout() {
    let s = http_server("127.0.0.1").await;
    let args = GenhashArgs {
        verbose: true,
        virtualhost: Some("www.example.com".into()),
        protocol: HttpVersion::Http11,
        ..genhash_args(s.addr, "/ok")
    };
    let text = genhash(&args).await.unwrap();
    let digest = md5sum(HELLO);
    let sections: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("-----------------------["))
        .collect();
    assert_eq!(
        sections,
        [
            "-----------------------[       HTTP Request        ]-----------------------",
            "-----------------------[    HTTP Header Buffer    ]-----------------------",
            "-----------------------[ HTTP Header Ascii Buffer ]-----------------------",
            "-----------------------[        HTML Buffer        ]-----------------------",
            "-----------------------[    HTML hash resulting    ]-----------------------",
            "-----------------------[ HTML hash final resulting ]-----------------------",
        ]
    );
    assert!(text.contains(
        "GET /ok HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"
    ));
    assert!(text.contains("HTTP/1.1 200 OK\r\n"));
    // The head exactly as received (hyper writes its names in lower case).
    assert!(text.contains("\r\ncontent-length: 12\r\n"));
    assert!(
        text.contains(
            "0000  68 65 6c 6c 6f 20 77 6f - 72 6c 64 0a               hello world.    \n"
        )
    );
    assert!(text.contains(&format!(
        " HTML hash final resulting ]-----------------------\n{digest}\n"
    )));
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("Global response time for [/ok] = ")
    );
}

#[tokio::test]
async fn genhash_over_tls_with_sni() {
    let s = https_server("127.0.0.1").await;
    let args = GenhashArgs {
        use_ssl: true,
        sni: true,
        virtualhost: Some("www.example.com".into()),
        ..genhash_args(s.addr, "/large")
    };
    let text = genhash(&args).await.unwrap();
    assert_eq!(text, format!("{}\n", md5sum(&large_body(3 << 20))));
    assert_eq!(s.log.last().sni.as_deref(), Some("www.example.com"));
}

#[tokio::test]
async fn genhash_errors() {
    let s = raw_server("127.0.0.1", Raw::Silent).await;
    let args = GenhashArgs {
        timeout: Duration::from_millis(300),
        ..genhash_args(s.addr, "/")
    };
    let e = genhash(&args).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "timed out after 0.3 s waiting for the response"
    );

    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec();
    let s = raw_server("127.0.0.1", Raw::Reply(reply)).await;
    let e = genhash(&genhash_args(s.addr, "/")).await.unwrap_err();
    assert!(matches!(e, GenhashError::Body { status: 200, .. }), "{e:?}");

    // The status is not judged: an error page has a digest too.
    let s = http_server("127.0.0.1").await;
    let r = genhash_report(&genhash_args(s.addr, "/busy"))
        .await
        .unwrap();
    assert_eq!(r.fetched.status, 503);
    assert_eq!(r.digest, md5sum(b"busy\n"));
}

#[test]
fn genhash_command_line() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenhashArgs,
    }
    let cli = Cli::try_parse_from([
        "genhash",
        "-s",
        "10.0.0.1",
        "-p",
        "8443",
        "-u",
        "/health",
        "-S",
        "-V",
        "www.example.com",
        "-P",
        "1.0c",
        "-t",
        "2.5",
        "-v",
        "--use-sni",
    ])
    .unwrap();
    assert_eq!(cli.args.server, "10.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(cli.args.port, 8443);
    assert_eq!(cli.args.url, "/health");
    assert!(cli.args.use_ssl && cli.args.verbose && cli.args.sni);
    assert_eq!(cli.args.virtualhost.as_deref(), Some("www.example.com"));
    assert_eq!(cli.args.protocol, HttpVersion::Http10Close);
    assert_eq!(cli.args.timeout, Duration::from_millis(2500));

    let cli = Cli::try_parse_from([
        "genhash",
        "--server",
        "::1",
        "--port",
        "80",
        "--url",
        "/",
        "--protocol",
        "1.1",
        "--sni",
    ])
    .unwrap();
    assert_eq!(cli.args.protocol, HttpVersion::Http11);
    assert_eq!(cli.args.timeout, Duration::from_secs(5));
    assert!(cli.args.sni && !cli.args.use_ssl && !cli.args.verbose);
    assert!(Cli::try_parse_from(["genhash", "-s", "1.2.3.4", "-p", "80", "-P", "2"]).is_err());
}

/// keepalived's genhash (Debian's keepalived 2.2.7), the oracle for
/// digests: its path, or `None` (a skip, printed) when it is not installed;
/// under CI=true a missing genhash fails the test.
fn keepalived_genhash_bin() -> Option<&'static str> {
    let bin = ["/usr/bin/genhash", "/usr/sbin/genhash"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if bin.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "keepalived's genhash is not installed (apt-get install keepalived)"
        );
        eprintln!("SKIP: keepalived's genhash is not installed");
    }
    bin
}

/// keepalived's genhash output for a url (its stdout, trimmed).
async fn keepalived_genhash_output(
    addr: SocketAddr,
    path: &str,
    protocol: &str,
    verbose: bool,
) -> Option<String> {
    let bin = keepalived_genhash_bin()?;
    let port = addr.port().to_string();
    let ip = addr.ip().to_string();
    let mut args = vec![
        "-s", &ip, "-p", &port, "-u", path, "-P", protocol, "-t", "10",
    ];
    if verbose {
        args.push("-v");
    }
    let out = tokio::process::Command::new(bin)
        .args(&args)
        .output()
        .await
        .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// keepalived's digest of a url.
async fn keepalived_genhash(addr: SocketAddr, path: &str, protocol: &str) -> Option<String> {
    let text = keepalived_genhash_output(addr, path, protocol, false).await?;
    let digest = text.trim().to_string();
    assert_eq!(digest.len(), 32, "keepalived's genhash printed {text:?}");
    Some(digest)
}

/// keepalived's own genhash, when installed, as an independent oracle.
#[tokio::test]
async fn same_digest_as_keepalived_genhash() {
    let Some(bin) = keepalived_genhash_bin() else {
        return;
    };
    let s = http_server("127.0.0.1").await;
    for path in ["/ok", "/large", "/busy"] {
        let port = s.addr.port().to_string();
        let out = tokio::process::Command::new(bin)
            .args(["-s", "127.0.0.1", "-p", &port, "-u", path, "-t", "5"])
            .output()
            .await
            .unwrap();
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ours = digest_of(s.addr, path).await;
        assert_eq!(ours, theirs, "{path}");
    }
}

// ------------------------------------------------- keepalived's digests, raw

/// A chunked page as a dynamic server sends it, with `Content-type` in the
/// case some servers write it.
fn chunked_reply() -> (Vec<u8>, Vec<u8>) {
    let head = b"HTTP/1.1 200 OK\r\nContent-type: text/html; charset=UTF-8\r\nTransfer-Encoding: chunked\r\nX-Odd:  spaced  value\r\n\r\n".to_vec();
    let body = b"1a\r\n<html><body>hello, world\r\n\r\nf;name=x\r\n</body></html>\n\r\n0\r\nX-Trailer: t\r\n\r\n".to_vec();
    (head, body)
}

fn length_reply() -> (Vec<u8>, Vec<u8>) {
    let body = b"<html><body>plain page</body></html>\n".to_vec();
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-type: text/html\r\nContent-Length: {}\r\nserver: test\r\n\r\n",
        body.len()
    )
    .into_bytes();
    (head, body)
}

/// The digests of both replies, split in two writes at every byte: the
/// checker accepts keepalived's digest (the body as received), ours equals
/// keepalived's genhash, and the decoded digest of the chunked body is
/// accepted too.
#[tokio::test]
async fn raw_digests_split_at_every_byte_equal_keepalived_s() {
    let with_oracle = keepalived_genhash_bin().is_some();
    for (name, (head, body), decoded) in [
        (
            "chunked",
            chunked_reply(),
            Some(b"<html><body>hello, world\r\n</body></html>\n".to_vec()),
        ),
        ("length", length_reply(), None),
    ] {
        let wire = [head.clone(), body.clone()].concat();
        let want = md5sum(&body);
        for at in 1..wire.len() {
            let raw = Raw::Trickle {
                parts: vec![wire[..at].to_vec(), wire[at..].to_vec()],
                gap: Duration::from_millis(1),
                stall: false,
            };
            let s = raw_server("127.0.0.1", raw).await;
            let ours = digest_of(s.addr, "/").await;
            assert_eq!(ours, want, "{name} split at {at}");
            if with_oracle {
                let theirs = keepalived_genhash(s.addr, "/", "1.1").await.unwrap();
                assert_eq!(ours, theirs, "{name} split at {at}: keepalived's genhash");
            }
            let t = HttpTarget {
                version: HttpVersion::Http11,
                ..target(s.addr)
            };
            let r = check(&t, &url_digest("/", &want)).await;
            assert_eq!(
                r.reason, "ok (HTTP 200, digest matches)",
                "{name} split at {at}"
            );
            if let Some(decoded) = &decoded {
                let r = check(&t, &url_digest("/", &md5sum(decoded))).await;
                assert_eq!(
                    r.reason, "ok (HTTP 200, digest matches the decoded body)",
                    "{name} split at {at}"
                );
            }
        }
    }
}

/// genhash -v shows the head exactly as received (`Content-type`, spacing),
/// byte for byte as keepalived's genhash shows it.
#[tokio::test]
async fn genhash_verbose_head_is_as_received() {
    let (head, body) = chunked_reply();
    let s = raw_server("127.0.0.1", Raw::Reply([head.clone(), body].concat())).await;
    let args = GenhashArgs {
        verbose: true,
        protocol: HttpVersion::Http11,
        ..genhash_args(s.addr, "/")
    };
    let ours = genhash(&args).await.unwrap();
    let head_text = String::from_utf8(head).unwrap();
    assert!(ours.contains(&format!(
        " HTTP Header Ascii Buffer ]-----------------------\n{head_text}\n"
    )));
    /// From the head's hex dump to the body's, both sections.
    fn head_sections(text: &str) -> &str {
        let start = text
            .find("-----------------------[    HTTP Header Buffer")
            .unwrap();
        let end = text
            .find("-----------------------[        HTML Buffer")
            .unwrap();
        &text[start..end]
    }
    if let Some(theirs) = keepalived_genhash_output(s.addr, "/", "1.1", true).await {
        assert_eq!(head_sections(&ours), head_sections(&theirs));
        let digest = |t: &str| {
            let i = t
                .find(" HTML hash final resulting ]-----------------------\n")
                .unwrap();
            t[i + 52..i + 84].to_string()
        };
        assert_eq!(digest(&ours), digest(&theirs));
    }
}

/// A head with more headers than a client's usual table is a response.
#[tokio::test]
async fn many_headers_are_fine() {
    let mut reply = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..150 {
        reply.extend_from_slice(format!("X-Header-{i}: {i}\r\n").as_bytes());
    }
    reply.extend_from_slice(b"Content-Length: 12\r\n\r\nhello world\n");
    let s = raw_server("127.0.0.1", Raw::Reply(reply)).await;
    let r = check(&target(s.addr), &url_digest("/", &md5sum(HELLO))).await;
    assert_up(&r);
}

/// Runs a command to its end: its stdout, and the largest peak RSS (KiB)
/// of this process's children so far (an upper bound of the command's).
fn run_measured(mut cmd: std::process::Command) -> (String, i64) {
    let out = cmd.output().expect("the command runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{cmd:?}: {stdout}");
    // SAFETY: rusage is plain data, filled in by getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to the struct above.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    (stdout, usage.ru_maxrss)
}

/// 1 GiB of chunked body, streamed: the checker's digest, `ipvsdir genhash`
/// (its peak RSS under 64 MiB: the body is never held) and keepalived's
/// genhash agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_chunked_body_is_streamed() {
    use md5::{Digest, Md5};
    const CHUNK: usize = 64 << 10;
    const CHUNKS: usize = 16 << 10; // 1 GiB of data
    let block: Vec<u8> = [
        format!("{CHUNK:x}\r\n").into_bytes(),
        large_body(CHUNK),
        b"\r\n".to_vec(),
    ]
    .concat();
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let end = b"0\r\n\r\n";
    let mut h = Md5::new();
    for _ in 0..CHUNKS {
        h.update(&block);
    }
    h.update(end);
    let want = ipvsdir::check::http::hex(&h.finalize());

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let block = block.clone();
            tokio::spawn(async move {
                read_head(&mut stream).await;
                let _ = stream.write_all(head).await;
                for _ in 0..CHUNKS {
                    if stream.write_all(&block).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(end).await;
                let _ = stream.shutdown().await;
            });
        }
    });

    let t = HttpTarget {
        version: HttpVersion::Http11,
        timeout: Duration::from_secs(10),
        ..target(addr)
    };
    assert_eq!(
        check(&t, &url_digest("/", &want)).await.reason,
        "ok (HTTP 200, digest matches)"
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ipvsdir"));
    let port = addr.port().to_string();
    cmd.args([
        "genhash",
        "-s",
        "127.0.0.1",
        "-p",
        &port,
        "-u",
        "/",
        "-P",
        "1.1",
        "-t",
        "10",
    ]);
    let (out, rss_kib) = tokio::task::spawn_blocking(move || run_measured(cmd))
        .await
        .unwrap();
    eprintln!("ipvsdir genhash over 1 GiB: peak RSS {} KiB", rss_kib);
    assert_eq!(out.trim(), want);
    assert!(rss_kib < 64 << 10, "peak RSS {rss_kib} KiB");
    if let Some(theirs) = keepalived_genhash(addr, "/", "1.1").await {
        assert_eq!(theirs, want);
    }
    server.abort();
}

/// Out of descriptors: no verdict on the real server, said as a problem of
/// this host. Runs in a child process of this test binary, whose descriptor
/// limit it lowers.
#[test]
fn too_many_open_files_is_a_local_problem() {
    const CHILD: &str = "IPVSDIR_TEST_EMFILE_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "too_many_open_files_is_a_local_problem",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {text}");
        assert!(
            text.contains("local: cannot open a socket: Too many open files"),
            "{text}"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as libc::rlim_t;
        let limit = libc::rlimit {
            rlim_cur: open + 8,
            rlim_max: open + 64,
        };
        // SAFETY: setrlimit with a valid struct; only this child process.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        // Use up what is left (kept open until the process ends).
        let mut held = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            held.push(f);
            assert!(held.len() < 64, "the limit did not hold");
        }
        // One for the probe's epoll (the checker thread has its own long
        // before descriptors run out).
        held.pop();
        let r = check(&target("127.0.0.1:9".parse().unwrap()), &url("/")).await;
        assert!(r.local && !r.ok, "{r:?}");
        eprintln!("local: {}", r.reason);
    });
}

/// In the engine, a probe that cannot start for a reason on this host
/// (here: its bindto address is not on this host) leaves the real server's
/// state alone and backs off (delay_loop, doubling).
#[tokio::test]
async fn engine_keeps_the_state_on_a_local_problem() {
    use ipvsdir::check::engine::{self, Board, Clock};
    use ipvsdir::check::health::ProbePlan;
    use ipvsdir::check::probe::ProbeContext;
    let s = http_server("127.0.0.1").await;
    let text = format!(
        "virtual_server 10.0.0.1 80 {{\n real_server {} {} {{\n  HTTP_GET {{\n   url {{\n    path /ok\n   }}\n   bindto 192.0.2.1\n   delay_loop 0.1\n   retry 0\n   warmup 0\n  }}\n }}\n}}\n",
        s.addr.ip(),
        s.addr.port()
    );
    let l = ipvsdir::config::load_str("t.conf", &text, &Default::default());
    let cfg = l.config.unwrap_or_else(|| panic!("{}", l.diagnostics));
    let plan = ProbePlan::new(&cfg);
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let clock = Clock(Instant::now());
    let board = Board::new(&plan, clock.now());
    let start = Instant::now();
    let tasks = engine::spawn(
        &plan,
        Arc::new(ProbeContext::default()),
        clock,
        board.clone(),
        tx,
    );
    while board.stats.snapshot().local < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no local problems seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 0.1 s, then 0.2 s between the attempts: backing off.
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    let state = board.state(0);
    assert!(state.up && state.last.is_none(), "{state:?}");
    let stats = board.stats.snapshot();
    assert_eq!((stats.probes, stats.failed), (0, 0));
    assert!(rx.try_recv().is_err(), "no update: nothing changed");
    assert!(s.log.all().is_empty());
    for t in tasks {
        t.abort();
    }
}

/// A server that ignores `Connection: close` and keeps the connection open:
/// the body ends at its Content-Length, the probe does not wait for a close
/// (keepalived waits for it until connect_timeout and fails).
#[tokio::test]
async fn a_server_that_keeps_the_connection_open() {
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n".to_vec();
    let s = raw_server("127.0.0.1", Raw::Stall(reply)).await;
    let t = HttpTarget {
        version: HttpVersion::Http11,
        timeout: Duration::from_secs(5),
        ..target(s.addr)
    };
    let start = Instant::now();
    let r = check(&t, &url_digest("/", &md5sum(HELLO))).await;
    assert_eq!(r.reason, "ok (HTTP 200, digest matches)");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}
