//! A window into a running resolver, over HTTP on a loopback address.
//!
//! ```text
//! curl -s 127.0.0.1:5380/cache      # every entry: kind, name, type, TTL left
//! curl -s 127.0.0.1:5380/traces     # the last resolutions, event by event
//! curl -s 127.0.0.1:5380/metrics    # Prometheus counters and a latency histogram
//! curl -s -X POST 127.0.0.1:5380/flush                # empty the cache
//! curl -s -X POST '127.0.0.1:5380/advance?seconds=301' # age the cache
//! ```
//!
//! Off unless `--control` is given, and only on loopback: it can empty the
//! cache and move the resolver's clock.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Resolver;

/// Serve the control endpoint on an already-bound listener until `shutdown`.
pub async fn run(
    resolver: Resolver,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    anyhow::ensure!(
        local.ip().is_loopback(),
        "the control endpoint may only listen on loopback, not {local}"
    );
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = shutdown.cancelled() => return Ok(()),
        };
        let resolver = resolver.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let resolver = resolver.clone();
                async move { Ok::<_, Infallible>(route(&resolver, req)) }
            });
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn json(value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string(),
        ),
    }
}

fn route(resolver: &Resolver, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => json(&serde_json::json!({
            "endpoints": {
                "GET /cache": "cache entries with remaining TTLs",
                "GET /traces": "recent resolutions, event by event",
                "GET /metrics": "Prometheus metrics",
                "POST /flush": "empty the cache",
                "POST /advance?seconds=N": "move the resolver's clock forward",
            }
        })),
        (&Method::GET, "/cache") => {
            let entries = resolver.cache().entries();
            json(&serde_json::json!({ "count": entries.len(), "entries": entries }))
        }
        (&Method::GET, "/traces") => json(&resolver.recent()),
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            resolver.metrics().render(resolver.cache().len()),
        ),
        (&Method::POST, "/flush") => {
            resolver.cache().clear();
            json(&serde_json::json!({ "flushed": true }))
        }
        (&Method::POST, "/advance") => {
            let seconds = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("seconds=")))
                .and_then(|v| v.parse::<u64>().ok());
            match seconds {
                Some(s) => {
                    resolver.clock().advance(Duration::from_secs(s));
                    json(&serde_json::json!({ "advanced_seconds": s,
                        "total_skew_seconds": resolver.clock().skew().as_secs() }))
                }
                None => respond(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "usage: POST /advance?seconds=N\n",
                ),
            }
        }
        (_, "/" | "/cache" | "/traces" | "/metrics" | "/flush" | "/advance") => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try GET /\n",
        ),
    }
}
