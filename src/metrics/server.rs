//! The metrics listener (`--metrics-listen ADDR:PORT`): HTTP/1.1, GET
//! `/metrics` only. Opt-in, never on a public address by default; like the
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

async fn answer(
    req: Request<Incoming>,
    render: Render,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET only\n".into(),
            "text/plain",
        ));
    }
    if req.uri().path() != "/metrics" {
        return Ok(text(
            StatusCode::NOT_FOUND,
            "see /metrics\n".into(),
            "text/plain",
        ));
    }
    let body = tokio::task::spawn_blocking(move || render()).await;
    Ok(match body {
        Ok(b) => text(StatusCode::OK, b, super::CONTENT_TYPE),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "render failed\n".into(),
            "text/plain",
        ),
    })
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, render: Render) {
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
        let render = render.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| answer(req, render.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, conn).await;
        });
    }
}
