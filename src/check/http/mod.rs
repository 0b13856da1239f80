//! HTTP_GET / SSL_GET: fetch a url from a real server and judge it by its
//! status code and, optionally, the MD5 digest of its body.
//!
//! - [`request`]: where to connect, and the request bytes (keepalived's);
//! - [`response`]: the response parser and body digests, sans I/O;
//! - [`client`]: one exchange on a fresh connection, with keepalived's timing;
//! - [`reader`]: one response read off a connection (any driver), sans I/O;
//! - [`tls`]: the rustls client for SSL_GET;
//! - [`verdict`]: status and digest, judged.
//!
//! Where this probe differs from keepalived, on purpose:
//! - the response must be a well-formed HTTP/1.x head (`httparse`, lenient);
//!   keepalived only looks for a status code and the blank line;
//! - the body ends where its framing says (Content-Length, chunked), not
//!   only at the close: a server that keeps the connection open is not
//!   waited for until the timeout;
//! - the body is read up to [`DEFAULT_MAX_BODY`] bytes; keepalived has no cap;
//! - a digest of the decoded body of a chunked response is accepted too;
//! - TLS is rustls: TLS 1.2 and 1.3 only.
//!
//! Like keepalived, a body that ends early (connection closed before its
//! Content-Length) fails the check only when a digest is wanted.

pub mod client;
pub mod reader;
pub mod request;
pub mod response;
pub mod tls;
pub mod verdict;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use client::{FetchError, Keep, Phase, Response};
pub use request::{DEFAULT_MAX_BODY, HttpTarget, PreparedRequest, RequestError};
pub use response::{Digests, MAX_HEADER_BYTES};
pub use verdict::hex;

use crate::check::probe::{ProbeResult, Reason};
use crate::config::model::{CheckCommon, HttpCheck, Url};

/// One fetched response, for genhash.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The request head as sent (CRLF line ends).
    pub request: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub status: u16,
    /// Reason phrase of the status line.
    pub reason: String,
    /// The response head exactly as received, the blank line included.
    pub head: Vec<u8>,
    /// Body bytes received, as on the wire.
    pub body_len: u64,
    /// The digests, when the body was read completely.
    pub digests: Option<Digests>,
    /// Why the body is incomplete (early close, over the size cap).
    pub body_problem: Option<String>,
    /// The body as received, when asked for (genhash --verbose).
    pub body: Option<Vec<u8>>,
    pub elapsed: Duration,
}

/// Fetches `path` over `target` the checker's way and hashes the body;
/// keeps the body bytes with `keep_body`.
pub async fn fetch(
    target: &HttpTarget,
    path: &str,
    virtualhost: Option<&str>,
    keep_body: bool,
) -> Result<Fetched, FetchError> {
    let start = Instant::now();
    let request = PreparedRequest::new(target, path, virtualhost)?;
    let keep = Keep {
        hash: true,
        head: true,
        body: keep_body,
    };
    let r = client::exchange(target, &request, target.max_body, keep).await?;
    Ok(Fetched {
        request: request.text(),
        minor_version: r.head.minor_version,
        status: r.head.status,
        reason: r.head.reason,
        head: r.head_bytes.unwrap_or_default(),
        body_len: r.body_len,
        digests: r.digests,
        body_problem: r.body_problem,
        body: r.body,
        elapsed: start.elapsed(),
    })
}

/// A configured HTTP_GET / SSL_GET checker, ready to probe: its target and
/// requests are built once, not at every probe.
#[derive(Debug)]
pub struct PreparedHttp {
    target: HttpTarget,
    urls: Vec<PreparedUrl>,
}

#[derive(Debug)]
struct PreparedUrl {
    url: Url,
    request: Result<PreparedRequest, RequestError>,
    /// The log said once that this url's digest is of the decoded body.
    noticed: AtomicBool,
}

impl PreparedHttp {
    pub fn new(common: &CheckCommon, http: &HttpCheck) -> Self {
        Self::with_target(HttpTarget::from_checker(common, http), &http.urls)
    }

    /// The checker for `urls` over `target`.
    pub fn with_target(target: HttpTarget, urls: &[Url]) -> Self {
        let urls = urls
            .iter()
            .map(|url| PreparedUrl {
                request: PreparedRequest::new(&target, &url.path, url.virtualhost.as_deref()),
                url: url.clone(),
                noticed: AtomicBool::new(false),
            })
            .collect();
        PreparedHttp { target, urls }
    }

    /// Where and how this checker connects.
    pub fn target(&self) -> &HttpTarget {
        &self.target
    }

    /// How many urls one probe fetches.
    pub fn url_count(&self) -> usize {
        self.urls.len()
    }

    /// The request of url `i` and what to keep of its response; the
    /// probe's result when the request cannot be formed.
    pub fn request(&self, i: usize) -> Result<(&PreparedRequest, Keep), ProbeResult> {
        let u = &self.urls[i];
        match &u.request {
            Ok(r) => Ok((
                r,
                Keep {
                    hash: u.url.digest.is_some(),
                    head: false,
                    body: false,
                },
            )),
            Err(e) => Err(ProbeResult::down(format!(
                "url {}: invalid request: {e}",
                u.url.path
            ))),
        }
    }

    /// How url `i`'s exchange came out: its reason when it is up, else the
    /// probe's result (the first failing url ends the probe).
    pub fn judge_url(
        &self,
        i: usize,
        exchange: Result<Response, FetchError>,
    ) -> Result<Reason, ProbeResult> {
        let u = &self.urls[i];
        let r = exchange.map_err(|e| self.url_failed(i, e))?;
        let v = verdict::judge(
            r.head.status,
            r.digests.as_ref(),
            r.body_problem.as_deref(),
            &u.url,
        );
        if !v.up {
            return Err(ProbeResult::down(format!(
                "url {}: {}",
                u.url.path, v.reason
            )));
        }
        if v.decoded_digest && !u.noticed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "real server {} url {}: the digest is of the decoded (de-chunked) body, not \
                 keepalived's digest of the body as received; both are accepted (said once); \
                 `ipvsdir genhash` prints keepalived's",
                self.target.connect,
                u.url.path
            );
        }
        Ok(v.reason)
    }

    /// The probe's result when url `i` brought no response.
    pub fn url_failed(&self, i: usize, e: FetchError) -> ProbeResult {
        match e {
            FetchError::Local(e) => ProbeResult::local(e),
            e => ProbeResult::down(format!("url {}: {e}", self.urls[i].url.path)),
        }
    }

    /// Every url was up; `last` is the last one's reason.
    pub fn all_up(&self, last: Option<Reason>) -> ProbeResult {
        match (last, self.urls.len()) {
            (Some(reason), 1) => ProbeResult::up(reason),
            (_, n) => ProbeResult::up(format!("ok ({n} urls)")),
        }
    }

    /// One probe: the urls in order, up only if every one is up. Stops at
    /// the first failing url (keepalived also stops there and retries that
    /// url; with `retry`, the engine repeats the check). An empty list is
    /// up, as keepalived enables a checker without urls.
    pub async fn probe(&self) -> ProbeResult {
        let mut last = None;
        for i in 0..self.urls.len() {
            let (request, keep) = match self.request(i) {
                Ok(r) => r,
                Err(result) => return result,
            };
            let r = client::exchange(&self.target, request, self.target.max_body, keep).await;
            match self.judge_url(i, r) {
                Ok(reason) => last = Some(reason),
                Err(result) => return result,
            }
        }
        self.all_up(last)
    }
}
