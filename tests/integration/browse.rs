//! The browser, visiting a web server on 127.0.0.44 through a stub resolver.
//!
//! The recursive resolver is not needed to test the browser: pointed at one
//! of example.com's name servers, the stub gets the same answers (with AA=1
//! rather than from a cache). The web server is a few lines of hyper here,
//! serving whatever status and page a test asks for.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dnstrail::browse::{BrowseError, Browser, Visit};
use dnstrail::stack::Stack;
use dnstrail::trace::{TraceEvent, TraceSink};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UdpSocket};

use crate::support::*;

const WEB_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 44);

const PAGE: &str = "<!doctype html><html><head><title>Example Domain</title>\
    <style>h1 { color: navy }</style><script>var secret = 1;</script></head>\
    <body><h1>Example Domain</h1><p>This domain is for use in <b>examples</b>.</p></body></html>";

/// A web server on 127.0.0.44, bound before it serves.
struct Site {
    addr: SocketAddr,
    /// TCP connections accepted so far.
    connections: Arc<AtomicUsize>,
    /// The Host header of every request.
    hosts: Arc<Mutex<Vec<String>>>,
}

impl Site {
    fn url(&self, name: &str) -> String {
        format!("http://{name}:{}/", self.addr.port())
    }
}

async fn bind_web() -> TcpListener {
    TcpListener::bind((WEB_IP, 0))
        .await
        .expect("bind 127.0.0.44")
}

/// Serve `body` with `status`, and always a Location header (which only
/// matters to redirects).
async fn serve(status: u16, body: &'static str) -> Site {
    let listener = bind_web().await;
    let addr = listener.local_addr().expect("bound");
    let connections = Arc::new(AtomicUsize::new(0));
    let hosts = Arc::new(Mutex::new(Vec::new()));
    let (accepted, seen) = (connections.clone(), hosts.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let host = request
                    .headers()
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push(host);
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .header("content-type", "text/html; charset=utf-8")
                            .header("location", "/elsewhere/")
                            .body(Full::new(Bytes::from_static(body.as_bytes())))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Site {
        addr,
        connections,
        hosts,
    }
}

/// A port on 127.0.0.44 where nothing listens any more.
async fn closed_port() -> u16 {
    bind_web().await.local_addr().expect("bound").port()
}

/// The stub's resolver: one of example.com's name servers.
fn auth(stack: &Stack) -> SocketAddr {
    addr_of(stack, "example.com.")
}

fn browser(resolver: SocketAddr) -> Browser {
    Browser::new(resolver, Duration::from_secs(5)).expect("browser starts")
}

#[tokio::test]
async fn visits_a_page_looked_up_through_the_stub() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;

    let visit = browser(auth(&stack))
        .visit(&site.url("www.example.com"))
        .await
        .expect("the page comes back");

    assert_eq!(visit.url, site.url("www.example.com"));
    assert_eq!(visit.host, "www.example.com");
    assert_eq!(visit.addresses, [IpAddr::V4(WEB_IP)]);
    assert_eq!(visit.addr, site.addr);
    assert_eq!(visit.status, 200);
    assert_eq!(visit.title.as_deref(), Some("Example Domain"));
    assert_eq!(
        visit.text,
        "Example Domain\nThis domain is for use in examples."
    );
    assert_eq!(visit.body, PAGE);
    assert_eq!(visit.bytes, PAGE.len());
    // The request named the site, not the address it was found at.
    assert_eq!(
        *site.hosts.lock().unwrap(),
        [format!("www.example.com:{}", site.addr.port())]
    );

    let t = &visit.timings;
    assert!(t.dns_us > 0, "a lookup over UDP takes time: {t:?}");
    assert!(t.connect_us > t.dns_us, "connect after lookup: {t:?}");
    assert!(
        t.first_byte_us > t.connect_us,
        "response after connect: {t:?}"
    );
    assert!(t.total_us >= t.first_byte_us, "body after headers: {t:?}");
    stack.stop().await;
}

/// Every event a sink got so far, in order.
fn drain(
    watch: &mut dnstrail::trace::TraceSubscriber,
) -> Vec<std::sync::Arc<dnstrail::trace::Traced>> {
    std::iter::from_fn(|| watch.try_recv()).collect()
}

#[tokio::test]
async fn a_visit_tells_its_lookup_request_and_response_as_they_happen() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;
    let sink = TraceSink::new();
    let mut watch = sink.subscribe();
    let resolver = auth(&stack);
    let visit = browser(resolver)
        .with_trace(sink)
        .visit(&site.url("www.example.com"))
        .await
        .expect("the page comes back");

    let events = drain(&mut watch);
    let kinds: Vec<&TraceEvent> = events.iter().map(|e| &e.event).collect();
    assert_eq!(
        kinds,
        [
            &TraceEvent::BrowserQuery {
                host: "www.example.com".into(),
                resolver,
                types: vec![
                    hickory_proto::rr::RecordType::A,
                    hickory_proto::rr::RecordType::AAAA
                ],
            },
            &TraceEvent::BrowserLookup {
                host: "www.example.com".into(),
                resolver,
                addresses: vec![IpAddr::V4(WEB_IP)],
                error: None,
                elapsed_us: match &events[1].event {
                    TraceEvent::BrowserLookup { elapsed_us, .. } => *elapsed_us,
                    _ => 0,
                },
            },
            &TraceEvent::HttpRequest {
                method: "GET".into(),
                url: site.url("www.example.com"),
                addr: site.addr,
            },
            &TraceEvent::HttpResponse {
                status: 200,
                title: Some("Example Domain".into()),
                bytes: PAGE.len(),
                elapsed_us: visit.timings.total_us - visit.timings.connect_us,
            },
        ]
    );
    // Stamped when they happened, on the sink's clock: in order.
    assert!(events.windows(2).all(|w| w[0].at_us <= w[1].at_us));
    stack.stop().await;
}

#[tokio::test]
async fn a_url_naming_an_address_needs_no_lookup() {
    // No name servers at all: nothing could answer a lookup.
    let site = serve(200, PAGE).await;
    let unused = SocketAddr::from((Ipv4Addr::LOCALHOST, closed_port().await));
    let sink = TraceSink::new();
    let mut watch = sink.subscribe();
    let visit = browser(unused)
        .with_trace(sink)
        .visit(&site.url("127.0.0.44"))
        .await
        .expect("the page comes back");
    assert_eq!(visit.addresses, [IpAddr::V4(WEB_IP)]);
    assert_eq!(visit.timings.dns_us, 0);
    assert!(visit.timings.connect_us > 0);
    let events = drain(&mut watch);
    assert!(
        matches!(
            events.iter().map(|e| &e.event).collect::<Vec<_>>()[..],
            [
                TraceEvent::HttpRequest { .. },
                TraceEvent::HttpResponse { .. }
            ]
        ),
        "no lookup event: {events:?}"
    );
}

#[tokio::test]
async fn a_closed_resolver_port_fails_at_once_as_dig_does() {
    let site = serve(200, PAGE).await;
    let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let resolver = closed.local_addr().unwrap();
    drop(closed);
    let started = Instant::now();
    let error = visit_error(
        resolver,
        &site.url("www.example.com"),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(error, BrowseError::ResolverDown { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(error.exit_code(), 6);
}

#[tokio::test]
async fn a_url_without_a_scheme_is_taken_as_http() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;
    let url = site.url("www.example.com");
    let bare = url.trim_start_matches("http://");
    let visit = browser(auth(&stack)).visit(bare).await.expect("visited");
    assert_eq!(visit.url, url);
    stack.stop().await;
}

/// A UDP relay in front of a name server, counting the questions it passes.
async fn counting_relay(server: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let front = UdpSocket::bind("127.0.0.1:0").await.expect("bind relay");
    let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind relay");
    back.connect(server).await.expect("connect relay");
    let addr = front.local_addr().expect("bound");
    let questions = Arc::new(AtomicUsize::new(0));
    let counted = questions.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        while let Ok((len, client)) = front.recv_from(&mut buf).await {
            counted.fetch_add(1, Ordering::SeqCst);
            back.send(&buf[..len]).await.expect("relay question");
            let len = back.recv(&mut buf).await.expect("relay answer");
            front
                .send_to(&buf[..len], client)
                .await
                .expect("relay answer");
        }
    });
    (addr, questions)
}

#[tokio::test]
async fn every_visit_asks_the_resolver_and_connects_afresh() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;
    let (relay, questions) = counting_relay(auth(&stack)).await;
    let browser = browser(relay);

    for visits in 1..=3 {
        let visit = browser
            .visit(&site.url("www.example.com"))
            .await
            .expect("the page comes back");
        assert!(visit.timings.dns_us > 0);
        // A and AAAA, as browsers ask (RFC 8305).
        assert_eq!(
            questions.load(Ordering::SeqCst),
            2 * visits,
            "one question per visit"
        );
        assert_eq!(
            site.connections.load(Ordering::SeqCst),
            visits,
            "one connection per visit"
        );
    }
    stack.stop().await;
}

async fn visit_error(resolver: SocketAddr, url: &str, timeout: Duration) -> BrowseError {
    let browser = Browser::new(resolver, timeout).expect("browser starts");
    match browser.visit(url).await {
        Ok(visit) => panic!("expected an error, got {visit:?}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn a_name_that_does_not_exist_is_nxdomain() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;
    let resolver = auth(&stack);
    let error = visit_error(
        resolver,
        &site.url("nope.example.com"),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(&error, BrowseError::NxDomain { host, resolver: r }
            if host == "nope.example.com" && *r == resolver),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("nope.example.com does not exist (NXDOMAIN from resolver {resolver})")
    );
    assert_eq!(error.exit_code(), 4);
    assert_eq!(site.connections.load(Ordering::SeqCst), 0);
    stack.stop().await;
}

#[tokio::test]
async fn a_name_with_only_txt_records_has_no_address() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;
    let resolver = auth(&stack);
    let error = visit_error(
        resolver,
        &site.url("big.example.com"),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(&error, BrowseError::NoAddress { host, .. } if host == "big.example.com"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("big.example.com exists but has no address")
    );
    assert_eq!(error.exit_code(), 5);
    stack.stop().await;
}

#[tokio::test]
async fn a_name_server_that_only_refers_is_not_a_resolver() {
    let stack = start_name_servers().await;
    let root = addr_of(&stack, ".");
    let error = visit_error(root, "http://www.example.com:8080/", Duration::from_secs(5)).await;
    assert!(
        matches!(&error, BrowseError::Lookup { reason, .. } if reason.contains("referral")),
        "{error:?}"
    );
    assert_eq!(error.exit_code(), 6);
    stack.stop().await;
}

#[tokio::test]
async fn a_resolver_that_never_answers_times_out() {
    // Bound, so the questions are queued, but never read.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let resolver = silent.local_addr().expect("bound");
    let started = Instant::now();
    let error = visit_error(
        resolver,
        "http://www.example.com:8080/",
        Duration::from_millis(300),
    )
    .await;
    assert!(
        matches!(&error, BrowseError::LookupTimeout { resolver: r, .. } if *r == resolver),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(error.exit_code(), 8);
}

#[tokio::test]
async fn a_closed_port_refuses_the_connection() {
    let stack = start_name_servers().await;
    let port = closed_port().await;
    let error = visit_error(
        auth(&stack),
        &format!("http://www.example.com:{port}/"),
        Duration::from_secs(5),
    )
    .await;
    let web = SocketAddr::from((WEB_IP, port));
    assert!(
        matches!(&error, BrowseError::Refused { addrs, .. } if *addrs == [web]),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("connection refused by {web}: is `dnstrail web` running?")
    );
    assert_eq!(error.exit_code(), 7);
    stack.stop().await;
}

#[tokio::test]
async fn another_status_than_200_is_an_error_that_keeps_the_page() {
    let stack = start_name_servers().await;
    let site = serve(404, "<title>Not here</title><p>No such page.</p>").await;
    let url = site.url("www.example.com");
    let error = visit_error(auth(&stack), &url, Duration::from_secs(5)).await;
    let BrowseError::Status { visit, .. } = &error else {
        panic!("expected a status error, got {error:?}");
    };
    let visit: &Visit = visit;
    assert_eq!(visit.status, 404);
    assert_eq!(visit.title.as_deref(), Some("Not here"));
    assert_eq!(visit.text, "No such page.");
    assert_eq!(error.to_string(), format!("{url} answered 404 Not Found"));
    assert_eq!(error.exit_code(), 9);
    stack.stop().await;
}

#[tokio::test]
async fn a_redirect_is_reported_not_followed() {
    let stack = start_name_servers().await;
    let site = serve(301, "").await;
    let url = site.url("www.example.com");
    let error = visit_error(auth(&stack), &url, Duration::from_secs(5)).await;
    assert_eq!(
        error.to_string(),
        format!("{url} answered 301 Moved Permanently (to /elsewhere/; not followed)")
    );
    assert_eq!(site.connections.load(Ordering::SeqCst), 1);
    stack.stop().await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let stack = start_name_servers().await;
    let listener = bind_web().await;
    let web = listener.local_addr().expect("bound");
    // Accept, hold the connection open, never answer.
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let started = Instant::now();
    let error = visit_error(
        auth(&stack),
        &format!("http://www.example.com:{}/", web.port()),
        Duration::from_millis(500),
    )
    .await;
    assert!(
        matches!(&error, BrowseError::ResponseTimeout { addrs, got_headers: false, .. }
            if *addrs == [web]),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("{web} accepted the connection but sent no response within 500ms")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(error.exit_code(), 8);
    held.abort();
    stack.stop().await;
}

#[tokio::test]
async fn only_http_urls_are_visited() {
    let unused = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    for url in ["https://www.example.com/", "not a url", "http://"] {
        let error = visit_error(unused, url, Duration::from_secs(1)).await;
        assert!(
            matches!(error, BrowseError::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
        assert_eq!(error.exit_code(), 3);
    }
}

async fn run_browse(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"))
        .arg("browse")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("dnstrail runs")
}

#[tokio::test]
async fn the_command_prints_the_visit_as_json() {
    let stack = start_name_servers().await;
    let site = serve(200, PAGE).await;
    let url = site.url("www.example.com");
    let resolver = auth(&stack).to_string();
    let output = run_browse(&[&url, "--resolver", &resolver, "--json"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);

    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    assert_eq!(json["url"], url);
    assert_eq!(json["status"], 200);
    assert_eq!(json["title"], "Example Domain");
    assert_eq!(json["addresses"], serde_json::json!(["127.0.0.44"]));
    assert_eq!(json["addr"], site.addr.to_string());
    assert_eq!(json["bytes"], PAGE.len());
    let timings = &json["timings"];
    for field in ["dns_us", "connect_us", "first_byte_us", "total_us"] {
        assert!(
            timings[field].as_u64().is_some_and(|us| us > 0),
            "{field}: {json}"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_command_explains_a_refused_connection_in_one_line() {
    let stack = start_name_servers().await;
    let port = closed_port().await;
    let url = format!("http://www.example.com:{port}/");
    let resolver = auth(&stack).to_string();
    let output = run_browse(&[&url, "--resolver", &resolver]).await;
    assert_eq!(output.status.code(), Some(7));
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("dnstrail: connection refused by 127.0.0.44:{port}: is `dnstrail web` running?\n")
    );
    stack.stop().await;
}
