//! A window into a running stack, over HTTP on a loopback address: the
//! resolver's cache, traces and metrics, its clock, and the name servers'
//! faults.
//!
//! ```text
//! curl -s 127.0.0.1:5380/cache                          # entries: kind, name, type, TTL left
//! curl -s '127.0.0.1:5380/cache?name=example&kind=answer&limit=10'
//! curl -s 127.0.0.1:5380/traces                         # the last resolutions, event by event
//! curl -s 127.0.0.1:5380/metrics                        # Prometheus counters, a latency histogram
//! curl -s 127.0.0.1:5380/servers                        # the name servers and their faults
//! curl -s -X POST 127.0.0.1:5380/flush                  # empty the cache
//! curl -s -X POST '127.0.0.1:5380/advance?seconds=301'  # age the cache
//! curl -s -X POST '127.0.0.1:5380/servers/ns-2/fault?kind=drop'   # break a server
//! curl -s -X POST 127.0.0.1:5380/servers/ns-2/heal      # and heal it
//! ```
//!
//! It listens on loopback, or, with a token, on an address given (to watch
//! a resolver on another host). A state-changing request must be a POST,
//! and one sent by a web page of another site (an `Origin` or `Referer`
//! that is not this endpoint, or `Sec-Fetch-Site: cross-site`) is refused,
//! so a page elsewhere cannot flush the cache or break servers through the
//! user's browser. With `--control-token` (or `--control-token-file`), a
//! state change must also carry `Authorization: Bearer TOKEN`, for machines
//! where other users share loopback. Every change is told in the trace, so
//! it shows in the story and on the page.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::browse::Browser;
use crate::fault::{FAULT_KINDS, Fault, FaultSwitch};
use crate::resolver::Resolver;
use crate::topology::Server;
use crate::trace::{CacheKind, TraceEvent, TraceSink};
use crate::visit::{Item, VISIT_TIMEOUT};

mod zones;
pub use zones::HostedZone;

/// The longest a single `/advance` may move the clock: ten years, far past
/// any TTL (RFC 2181 caps them at 68 years, resolvers at days).
pub const MAX_ADVANCE_SECS: u64 = 10 * 365 * 86_400;
/// Cache entries listed by default, and at most, in one `/cache` answer.
const DEFAULT_CACHE_LIMIT: usize = 1000;
const MAX_CACHE_LIMIT: usize = 10_000;

/// What the control endpoint may see and change.
#[derive(Clone)]
pub struct Control {
    pub resolver: Option<Resolver>,
    pub servers: Vec<(Server, FaultSwitch)>,
    pub trace: TraceSink,
    /// When set, every state-changing request must carry it
    /// (`Authorization: Bearer TOKEN`).
    pub token: Option<std::sync::Arc<str>>,
    /// The built-in browser, for visits asked for through the endpoint.
    pub visitor: Option<Visitor>,
    /// The zones served here, to show and change.
    pub zones: Vec<HostedZone>,
}

/// What a visit from the control endpoint needs: the resolver to ask, and
/// the count of visits told so far.
#[derive(Clone)]
pub struct Visitor {
    pub resolver: SocketAddr,
    pub visits: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// Serve the control endpoint on an already-bound listener until `shutdown`.
pub async fn run(
    control: Control,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    anyhow::ensure!(
        local.ip().is_loopback() || control.token.is_some(),
        "the control endpoint listens beyond loopback ({local}) only with a token"
    );
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = shutdown.cancelled() => return Ok(()),
        };
        let control = control.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let control = control.clone();
                async move { Ok::<_, Infallible>(control.route(&req, local).await) }
            });
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What every answer of the endpoint carries: whole, or a stream (`/events`).
pub type ControlBody = BoxBody<Bytes, Infallible>;

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<ControlBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(body.into()).boxed())
        .expect("static response parts are valid")
}

fn json(value: &impl serde::Serialize) -> Response<ControlBody> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string(),
        ),
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<ControlBody> {
    let mut body = body.into();
    body.push('\n');
    respond(status, "text/plain; charset=utf-8", body)
}

/// How often an idle event stream says it is still there, so proxies and
/// browsers keep it open.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// One event in Server-Sent Events form: its `seq` as the id to resume from.
fn sse_event(event: &crate::trace::Traced) -> String {
    let data = serde_json::to_string(event).unwrap_or_default();
    format!("id: {}\nevent: trace\ndata: {data}\n\n", event.seq)
}

/// A query parameter's value.
fn param<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Every query parameter, decoded as a form encodes it (`+` a space,
/// `%xx` a byte).
fn decoded_params(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Whether a request comes from a page of another site: its `Origin` or
/// `Referer` names another host than this endpoint, or the browser says so.
fn cross_site<B>(req: &Request<B>, local: SocketAddr) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site").is_some_and(|v| v == "cross-site") {
        return true;
    }
    let ours = |url: &str| {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or(url)
            .split('/')
            .next()
            .unwrap_or("");
        rest == local.to_string()
            || rest == format!("localhost:{}", local.port())
            || header("host").is_some_and(|host| host == rest)
    };
    ["origin", "referer"]
        .iter()
        .filter_map(|h| header(h))
        .any(|value| value == "null" || !ours(value))
}

impl Control {
    /// Answer one request; `local` is the endpoint's own address, for the
    /// cross-site check.
    pub async fn route<B>(&self, req: &Request<B>, local: SocketAddr) -> Response<ControlBody> {
        let path = req.uri().path();
        let query = req.uri().query();
        if req.method() == Method::POST && cross_site(req, local) {
            return text(
                StatusCode::FORBIDDEN,
                "refused: this request comes from a web page of another site",
            );
        }
        if req.method() == Method::POST && !self.authorized(req) {
            return text(
                StatusCode::UNAUTHORIZED,
                "this endpoint wants its token: Authorization: Bearer TOKEN (see --control-token)",
            );
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
            (&Method::GET, [""]) => json(&serde_json::json!({
                "endpoints": {
                    "GET /cache?name=&kind=&limit=&offset=": "cache entries with remaining TTLs",
                    "GET /traces": "recent resolutions, event by event",
                    "GET /events": "every event as it happens (Server-Sent Events; resumes with Last-Event-ID)",
                    "GET /metrics": "Prometheus metrics",
                    "GET /servers": "the name servers, their addresses, zones and faults",
                    "POST /flush": "empty the cache",
                    "POST /advance?seconds=N": "move the resolver's clock forward",
                    "POST /visit?url=URL | ?ask=NAME/TYPE": "send the built-in browser; the visit is told in the events",
                    "POST /servers/NAME/fault?kind=KIND": format!("make a name server fail: {FAULT_KINDS}"),
                    "POST /servers/NAME/heal": "make it work again",
                    "GET /zones": "the zones served here, each server's serial: INSYNC or PENDING",
                    "GET /zones/APEX": "one zone, with its records",
                    "GET /zones/APEX/compare?name=&type=": "what the name servers say beside what the resolver has cached, and for how long",
                    "POST /zones/APEX/records?op=set|add|delete&name=&type=&ttl=&data=": "change a record, as nsupdate would",
                }
            })),
            (&Method::GET, ["cache"]) => self.with_resolver(|r| cache_page(r, query)),
            (&Method::GET, ["traces"]) => self.with_resolver(|r| json(&r.recent())),
            (&Method::GET, ["events"]) => self.events(req),
            (&Method::GET, ["metrics"]) => self.with_resolver(|r| {
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    r.metrics().render(r.cache().len()),
                )
            }),
            (&Method::GET, ["servers"]) => json(
                &self
                    .servers
                    .iter()
                    .map(|(server, fault)| {
                        serde_json::json!({
                            "name": server.name,
                            "addrs": server.addrs,
                            "zones": server.zones,
                            "fault": fault.get().map(|f| f.to_string()),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            (&Method::POST, ["flush"]) => self.with_resolver(|r| {
                r.cache().clear();
                self.trace.emit(0, TraceEvent::CacheFlushed);
                json(&serde_json::json!({ "flushed": true }))
            }),
            (&Method::POST, ["advance"]) => self.with_resolver(|r| advance(r, query, &self.trace)),
            (&Method::POST, ["visit"]) => self.visit(query),
            (&Method::POST, ["servers", name, action @ ("fault" | "heal")]) => {
                self.set_fault(name, action, query)
            }
            (&Method::GET, ["zones"]) => {
                let asked = self.zones.iter().map(|z| zones::status(z, false));
                json(&futures_util::future::join_all(asked).await)
            }
            (&Method::GET, ["zones", apex]) => match self.zone(apex) {
                Ok(zone) => json(&zones::status(zone, true).await),
                Err(response) => response,
            },
            (&Method::GET, ["zones", apex, "compare"]) => match self.zone(apex) {
                Ok(zone) => self.compare(zone, query),
                Err(response) => response,
            },
            (&Method::POST, ["zones", apex, "records"]) => match self.zone(apex) {
                Ok(zone) => change_records(zone, query),
                Err(response) => response,
            },
            (
                _,
                [""]
                | ["cache" | "traces" | "events" | "metrics" | "servers" | "flush" | "advance"],
            )
            | (_, ["servers", _, "fault" | "heal"])
            | (_, ["zones"] | ["zones", _] | ["zones", _, "compare" | "records"]) => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed (state changes are POST, views are GET)",
            ),
            _ => text(StatusCode::NOT_FOUND, "not found; try GET /"),
        }
    }

    /// Whether a request carries the token, if one is set; compared in
    /// constant time, as secrets are.
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Every trace event as it happens, as Server-Sent Events. A page that
    /// reconnects sends `Last-Event-ID` (browsers do it themselves) and
    /// gets what it missed, as far as the sink remembers, with no event
    /// twice. A page that reads too slowly loses the oldest events, and is
    /// told how many (`event: dropped`); the resolver never waits for it.
    fn events<B>(&self, req: &Request<B>) -> Response<ControlBody> {
        let since = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .or_else(|| param(req.uri().query(), "since"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        let (missed, live) = self.trace.subscribe_since(since);
        let replay = futures_util::stream::iter(missed.into_iter().map(|e| sse_event(&e)));
        let live = futures_util::stream::unfold((live, 0u64), |(mut live, told)| async move {
            let keepalive = tokio::time::sleep(SSE_KEEPALIVE);
            tokio::select! {
                event = live.recv() => {
                    let event = event?;
                    let mut frame = String::new();
                    if live.dropped() > told {
                        frame.push_str(&format!(
                            "event: dropped\ndata: {{\"dropped\":{}}}\n\n",
                            live.dropped()
                        ));
                    }
                    frame.push_str(&sse_event(&event));
                    let told = live.dropped();
                    Some((frame, (live, told)))
                }
                _ = keepalive => Some((": still here\n\n".to_string(), (live, told))),
            }
        });
        let stream = replay
            .chain(live)
            .map(|text| Ok::<_, Infallible>(Frame::data(Bytes::from(text))));
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-store")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .expect("static response parts are valid")
    }

    /// Send the built-in browser to a URL (or to ask one question), in the
    /// background: the visit is told in the events like the demo's.
    fn visit(&self, query: Option<&str>) -> Response<ControlBody> {
        let Some(visitor) = &self.visitor else {
            return text(
                StatusCode::NOT_FOUND,
                "no resolver runs here to visit through",
            );
        };
        let decoded = |v: &str| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        };
        let item = match (param(query, "url"), param(query, "ask")) {
            (Some(url), None) => Item::Visit(decoded(url)),
            (None, Some(ask)) => match Item::parse_ask(&decoded(ask)) {
                Ok(item) => item,
                Err(why) => return text(StatusCode::BAD_REQUEST, why),
            },
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "usage: POST /visit?url=URL or ?ask=NAME/TYPE",
                );
            }
        };
        let browser = match Browser::new(visitor.resolver, VISIT_TIMEOUT) {
            Ok(browser) => browser.with_trace(self.trace.clone()),
            Err(error) => return text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        };
        let number = visitor
            .visits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let sink = self.trace.clone();
        let target = item.target();
        tokio::spawn(async move {
            let mut watch = sink.subscribe();
            let title = format!("Visit {number}, from the lab: {}", item.target());
            crate::visit::visit(
                &sink,
                &browser,
                &mut watch,
                &item,
                number,
                "lab".into(),
                title,
            )
            .await;
        });
        let mut response = json(&serde_json::json!({ "visit": number, "target": target }));
        *response.status_mut() = StatusCode::ACCEPTED;
        response
    }

    /// The zone `apex`, or the answer saying there is none.
    #[allow(clippy::result_large_err)]
    fn zone(&self, apex: &str) -> Result<&HostedZone, Response<ControlBody>> {
        self.zones.iter().find(|z| z.is(apex)).ok_or_else(|| {
            let known: Vec<String> = self
                .zones
                .iter()
                .map(|z| z.live.snapshot().origin().to_string())
                .collect();
            text(
                StatusCode::NOT_FOUND,
                format!(
                    "no zone {apex} is served here; there are: {}",
                    known.join(" ")
                ),
            )
        })
    }

    fn compare(&self, zone: &HostedZone, query: Option<&str>) -> Response<ControlBody> {
        let params = decoded_params(query);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let (Some(name), Some(rtype)) = (get("name"), get("type")) else {
            return text(
                StatusCode::BAD_REQUEST,
                "usage: GET /zones/APEX/compare?name=NAME&type=TYPE",
            );
        };
        let Ok(rtype) = rtype.to_ascii_uppercase().parse() else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("`{rtype}` is not a record type"),
            );
        };
        match zones::compare(zone, self.resolver.as_ref(), name, rtype) {
            Ok(comparison) => json(&comparison),
            Err(why) => text(StatusCode::BAD_REQUEST, why),
        }
    }

    fn with_resolver(
        &self,
        f: impl FnOnce(&Resolver) -> Response<ControlBody>,
    ) -> Response<ControlBody> {
        match &self.resolver {
            Some(resolver) => f(resolver),
            None => text(StatusCode::NOT_FOUND, "no resolver runs in this process"),
        }
    }

    fn set_fault(&self, name: &str, action: &str, query: Option<&str>) -> Response<ControlBody> {
        let Some((server, switch)) = self.servers.iter().find(|(s, _)| s.is_called(name)) else {
            let known: Vec<&str> = self.servers.iter().map(|(s, _)| s.name.as_str()).collect();
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "no name server called {name} here; there are: {}",
                    known.join(", ")
                ),
            );
        };
        let fault = if action == "heal" {
            None
        } else {
            match param(query, "kind").unwrap_or("drop").parse::<Fault>() {
                Ok(fault) => Some(fault),
                Err(why) => return text(StatusCode::BAD_REQUEST, why),
            }
        };
        switch.set(fault);
        self.trace.emit(
            0,
            TraceEvent::FaultSet {
                server: server.name.clone(),
                fault: fault.map(|f| f.to_string()),
            },
        );
        json(&serde_json::json!({
            "server": server.name,
            "fault": fault.map(|f| f.to_string()),
        }))
    }
}

/// Change a record of `zone`: 200 with what changed, 400 for a request
/// that makes no sense, 409 for a change the zone refuses (a CNAME beside
/// other data, the last NS deleted), with the reason.
fn change_records(zone: &HostedZone, query: Option<&str>) -> Response<ControlBody> {
    let change = match zones::Change::from_query(query) {
        Ok(change) => change,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    match zones::apply(zone, &change) {
        Ok(Some(applied)) => json(&applied),
        Ok(None) => json(&serde_json::json!({
            "apex": zone.live.snapshot().origin().to_string(),
            "serial": zone.live.snapshot().serial(),
            "unchanged": true,
        })),
        Err(refused) => {
            let status = match refused.rcode {
                hickory_proto::op::ResponseCode::FormErr
                | hickory_proto::op::ResponseCode::NotZone => StatusCode::BAD_REQUEST,
                _ => StatusCode::CONFLICT,
            };
            let mut response = json(&serde_json::json!({
                "refused": crate::trace::rcode_name(refused.rcode),
                "why": refused.why,
            }));
            *response.status_mut() = status;
            response
        }
    }
}

fn advance(resolver: &Resolver, query: Option<&str>, trace: &TraceSink) -> Response<ControlBody> {
    let seconds = param(query, "seconds").and_then(|v| v.parse::<u64>().ok());
    match seconds {
        Some(s) if (1..=MAX_ADVANCE_SECS).contains(&s) => {
            resolver.clock().advance(Duration::from_secs(s));
            let skew = resolver.clock().skew().as_secs();
            trace.emit(
                0,
                TraceEvent::ClockAdvanced {
                    seconds: s,
                    skew_secs: skew,
                },
            );
            json(&serde_json::json!({ "advanced_seconds": s, "total_skew_seconds": skew }))
        }
        _ => text(
            StatusCode::BAD_REQUEST,
            format!("usage: POST /advance?seconds=N, with N from 1 to {MAX_ADVANCE_SECS}"),
        ),
    }
}

/// A page of the cache, filtered by name (a substring), kind and paged.
fn cache_page(resolver: &Resolver, query: Option<&str>) -> Response<ControlBody> {
    let name = param(query, "name").map(|n| n.to_ascii_lowercase());
    let kind = match param(query, "kind") {
        None => None,
        Some(k) => match serde_json::from_value::<CacheKind>(serde_json::json!(k)) {
            Ok(kind) => Some(kind),
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "kind is one of answer, delegation, negative, failure",
                );
            }
        },
    };
    let number = |key, default| match param(query, key) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| key),
    };
    let (limit, offset) = match (number("limit", DEFAULT_CACHE_LIMIT), number("offset", 0)) {
        (Ok(l), Ok(o)) => (l.min(MAX_CACHE_LIMIT), o),
        (Err(key), _) | (_, Err(key)) => {
            return text(StatusCode::BAD_REQUEST, format!("{key} must be a number"));
        }
    };
    let page = resolver
        .cache()
        .entries_page(name.as_deref(), kind, offset, limit);
    json(&serde_json::json!({
        "count": page.total,
        "offset": offset,
        "entries": page.entries,
    }))
}
