//! The metrics listener (`--metrics-listen ADDR:PORT`): HTTP/1.1, GET
//! `/metrics` (Prometheus), `/api/v1/status` (the status document, as the
//! status socket answers `status`) and `/` (the status page: one
//! self-contained HTML document that reads `/api/v1/status`). Opt-in, never on a public address by default; like the
//! status socket it cannot hurt the director: a few clients at a time,
//! timeouts on the request and the whole exchange, backoff on accept
//! errors, the answer rendered off the probes' thread.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// Renders the metrics text on demand (called on a blocking thread).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Renders the status document as JSON on demand (on a blocking thread).
pub type RenderJson = Arc<dyn Fn() -> serde_json::Result<String> + Send + Sync>;

/// What the listener serves.
#[derive(Clone)]
pub struct Routes {
    /// `/metrics`
    pub metrics: Render,
    /// `/api/v1/status`
    pub status: RenderJson,
}

/// The status page (`/`): inline CSS and script, no other asset.
const PAGE: &str = include_str!("page.html");
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
/// The page may run only its own inline script and style and fetch only
/// from this listener: it loads nothing from anywhere else.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const MAX_CLIENTS: usize = 8;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// A whole exchange (a scraper that stops reading is cut off).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the listener (an error names the address: the operator fixes the flag).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn text(status: StatusCode, body: String, kind: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn render_failed(what: &str) -> Response<Full<Bytes>> {
    tracing::warn!("metrics listener: {what}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "render failed\n".into(),
        "text/plain",
    )
}

/// Answers are never cached: each one is the state now.
fn no_store(mut r: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

fn page() -> Response<Full<Bytes>> {
    let mut r = no_store(text(StatusCode::OK, PAGE.into(), HTML));
    r.headers_mut().insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(PAGE_POLICY),
    );
    r
}

async fn answer(
    req: Request<Incoming>,
    routes: Routes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET only\n".into(),
            "text/plain",
        ));
    }
    Ok(match req.uri().path() {
        "/metrics" => match tokio::task::spawn_blocking(move || (routes.metrics)()).await {
            Ok(b) => text(StatusCode::OK, b, super::CONTENT_TYPE),
            Err(e) => render_failed(&format!("metrics: {e}")),
        },
        "/api/v1/status" => match tokio::task::spawn_blocking(move || (routes.status)()).await {
            Ok(Ok(b)) => no_store(text(StatusCode::OK, b, JSON)),
            Ok(Err(e)) => render_failed(&format!("status document: {e}")),
            Err(e) => render_failed(&format!("status document: {e}")),
        },
        "/" => page(),
        _ => text(
            StatusCode::NOT_FOUND,
            "see / (status page), /metrics, /api/v1/status\n".into(),
            "text/plain",
        ),
    })
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, routes: Routes) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    let mut backoff = crate::daemon::accept::Backoff::new("metrics listener");
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff.ok();
                s
            }
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| answer(req, routes.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, conn).await;
        });
    }
}
