//! The web server, asked over real TCP. Most requests are written by hand,
//! byte for byte, because HTTP clients tidy paths (`..`, `%2e`) before
//! sending them and the point here is what the server does with untidy ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dnstrail::exchange::Transport;
use dnstrail::trace::{Question, ResponseKind, ServerView, TraceEvent, Traced};
use dnstrail::web::{self, SiteSource, TraceDocument, WebConfig, Website};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SITE: &str = "www.example.com";
const SECRET: &str = "SECRET-outside-the-site";
const PATIENCE: Duration = Duration::from_secs(10);

/// A directory of its own under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "dnstrail-web-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small site in `<tmp>/site`, and beside it (outside the site) a
/// `Cargo.toml` holding a secret that must never be served.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new();
        let write = |relative: &str, contents: &[u8]| {
            let path = dir.0.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        };
        write("Cargo.toml", SECRET.as_bytes());
        write(
            "site/index.html",
            b"<!doctype html><title>Fixture home</title><p>home</p>",
        );
        write("site/sub/index.html", b"sub index");
        std::fs::create_dir_all(dir.0.join("site/empty")).unwrap();
        write("site/.hidden", SECRET.as_bytes());
        for (name, contents) in CONTENT_TYPES
            .iter()
            .map(|(name, _)| (*name, name.as_bytes()))
        {
            write(&format!("site/{name}"), contents);
        }
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.0.join("site")
    }

    fn outside(&self) -> &Path {
        &self.dir.0
    }

    fn config(&self) -> WebConfig {
        WebConfig::new(SiteSource::Dir(self.root()), vec![SITE.into()])
    }
}

const CONTENT_TYPES: &[(&str, &str)] = &[
    ("page.html", "text/html; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("data.json", "application/json"),
    ("logo.svg", "image/svg+xml"),
    ("photo.png", "image/png"),
    ("favicon.ico", "image/x-icon"),
    ("notes.txt", "text/plain; charset=utf-8"),
    ("font.woff2", "font/woff2"),
    ("shout.HTML", "text/html; charset=utf-8"),
    ("archive.xyz", "application/octet-stream"),
    ("README", "application/octet-stream"),
];

/// A web server running in this test's runtime.
struct Web {
    /// The first address it listens on.
    addr: SocketAddr,
    /// Every address it listens on.
    addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Web {
    /// On 127.0.0.44, port chosen by the kernel.
    async fn start(config: WebConfig) -> Web {
        Web::start_on(config, &["127.0.0.44:0"]).await
    }

    /// Open the site, bind every address, then serve: requests sent at once
    /// wait in the backlog.
    async fn start_on(config: WebConfig, addrs: &[&str]) -> Web {
        let site = Website::open(config).await.expect("the site opens");
        let mut listeners = Vec::new();
        for addr in addrs {
            listeners.push(TcpListener::bind(addr).await.expect("bind"));
        }
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(web::run(site, listeners, shutdown.clone()));
        Web {
            addr: addrs[0],
            addrs,
            shutdown,
            task,
        }
    }

    async fn connect(&self) -> Conn {
        Conn::open(self.addr).await
    }

    /// One request on a connection of its own.
    async fn send(&self, request: &str) -> Reply {
        self.connect().await.send(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(&get(path, SITE)).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
            .expect("the server returns Ok");
    }
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// One HTTP/1.1 connection, spoken by hand.
struct Conn {
    stream: BufReader<TcpStream>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    /// Names in lower case, in the order sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Conn {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, request: &str) -> Reply {
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        tokio::time::timeout(PATIENCE, self.reply(request.starts_with("HEAD ")))
            .await
            .expect("a reply in time")
    }

    /// Read one response; `head`: it answers a HEAD, so has no body.
    async fn reply(&mut self, head: bool) -> Reply {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("status line");
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or_default();
        assert!(version.starts_with("HTTP/1."), "status line {line:?}");
        let status: u16 = parts.next().unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("name: value");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 304 {
            return reply;
        }
        let len: usize = reply
            .header("content-length")
            .expect("every response says its length")
            .parse()
            .unwrap();
        reply.body.resize(len, 0);
        self.stream
            .read_exact(&mut reply.body)
            .await
            .expect("the whole body");
        reply
    }

    /// Whether the server closes the connection (rather than leaving it
    /// open), within the test's patience.
    async fn closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(PATIENCE, self.stream.read_to_end(&mut rest)).await,
            Ok(Ok(_)) | Ok(Err(_))
        ) && rest.is_empty()
    }
}

#[tokio::test]
async fn serves_the_site_to_its_own_host_only() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;

    let home = web.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.text().contains("<title>Fixture home</title>"));

    for host in [
        "www.example.com:8080",
        "WWW.Example.COM",
        "www.example.com.",
    ] {
        assert_eq!(web.send(&get("/", host)).await.status, 200, "{host}");
    }

    let elsewhere = web.send(&get("/", "elsewhere.test")).await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(
        elsewhere.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = elsewhere.text();
    assert!(
        page.contains("elsewhere.test") && page.contains(SITE),
        "{page}"
    );
    assert!(!page.contains("Fixture home"));

    // Whatever the request says is shown escaped, never as markup.
    let sneaky = web.send(&get("/", "<script>x</script>")).await;
    assert_eq!(sneaky.status, 404);
    assert!(sneaky.text().contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(!sneaky.text().contains("<script>"));
}

#[tokio::test]
async fn a_request_without_host_names_no_site() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    // HTTP/1.1 requires Host; HTTP/1.0 predates it.
    assert_eq!(web.send("GET / HTTP/1.1\r\n\r\n").await.status, 400);
    let old = web.send("GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(old.status, 404);
    assert!(!old.text().contains("Fixture home"));
}

#[tokio::test]
async fn any_host_serves_whatever_the_host_header_says() {
    let site = Fixture::new();
    let mut config = site.config();
    config.any_host = true;
    let web = Web::start(config).await;
    for host in ["elsewhere.test", "127.0.0.44:8080", SITE] {
        let reply = web.send(&get("/", host)).await;
        assert_eq!(reply.status, 200, "{host}");
        assert!(reply.text().contains("Fixture home"));
    }
}

#[tokio::test]
async fn the_served_name_can_be_changed() {
    let site = Fixture::new();
    let web = Web::start(WebConfig::new(
        SiteSource::Dir(site.root()),
        vec!["Site.Test".into()],
    ))
    .await;
    assert_eq!(web.send(&get("/", "site.test")).await.status, 200);
    assert_eq!(web.send(&get("/", SITE)).await.status, 404);
}

#[tokio::test]
async fn content_types_come_from_the_extension() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    for (name, expected) in CONTENT_TYPES {
        let reply = web.get(&format!("/{name}")).await;
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.header("content-type"), Some(*expected), "{name}");
        assert_eq!(reply.body, name.as_bytes(), "{name}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let mut conn = web.connect().await;
    let head = conn
        .send(&format!("HEAD /style.css HTTP/1.1\r\nHost: {SITE}\r\n\r\n"))
        .await;
    // Had the server sent a body after HEAD, this reply would not parse.
    let get = conn.send(&get("/style.css", SITE)).await;
    assert_eq!((head.status, get.status), (200, 200));
    assert!(head.body.is_empty());
    assert_eq!(get.body, b"style.css");
    for name in ["content-type", "content-length", "etag", "last-modified"] {
        assert!(get.header(name).is_some(), "{name}");
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert_eq!(head.header("content-length"), Some("9"));
}

#[tokio::test]
async fn a_matching_etag_gets_304_without_a_body() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let first = web.get("/notes.txt").await;
    let etag = first.header("etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let conditional = |tags: &str| {
        format!("GET /notes.txt HTTP/1.1\r\nHost: {SITE}\r\nIf-None-Match: {tags}\r\n\r\n")
    };
    for tags in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_string(),
    ] {
        let mut conn = web.connect().await;
        let reply = conn.send(&conditional(&tags)).await;
        assert_eq!(reply.status, 304, "{tags}");
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
        // The next reply parses only if the 304 carried no body.
        assert_eq!(conn.send(&get("/notes.txt", SITE)).await.status, 200);
    }
    let stale = web.send(&conditional("\"other\"")).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, b"notes.txt");
}

#[tokio::test]
async fn if_modified_since_gets_304_unless_the_file_is_newer() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let first = web.get("/data.json").await;
    let modified = first.header("last-modified").expect("Last-Modified");
    let since = |date: &str| {
        format!("GET /data.json HTTP/1.1\r\nHost: {SITE}\r\nIf-Modified-Since: {date}\r\n\r\n")
    };
    assert_eq!(web.send(&since(modified)).await.status, 304);

    let an_hour_earlier = httpdate::parse_http_date(modified).unwrap() - Duration::from_secs(3600);
    let older = web
        .send(&since(&httpdate::fmt_http_date(an_hour_earlier)))
        .await;
    assert_eq!(older.status, 200);
    assert_eq!(older.body, b"data.json");

    // With both, If-None-Match decides: a stale tag means 200.
    let both = web
        .send(&format!(
            "GET /data.json HTTP/1.1\r\nHost: {SITE}\r\nIf-None-Match: \"other\"\r\n\
             If-Modified-Since: {}\r\n\r\n",
            httpdate::fmt_http_date(SystemTime::now())
        ))
        .await;
    assert_eq!(both.status, 200);
}

#[tokio::test]
async fn no_path_leads_outside_the_site() {
    let site = Fixture::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink(
            site.outside().join("Cargo.toml"),
            site.root().join("leak.txt"),
        )
        .unwrap();
        symlink(site.outside(), site.root().join("up")).unwrap();
        symlink("notes.txt", site.root().join("alias.txt")).unwrap();
    }
    let web = Web::start(site.config()).await;
    let attempts = [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e%2fCargo.toml",
        "/sub/../../Cargo.toml",
        "/..%5cCargo.toml",
        "/..\\Cargo.toml",
        "/%00",
        "/Cargo.toml%00.txt",
        "/.hidden",
        "/%2ehidden",
        "/leak.txt",
        "/up/Cargo.toml",
        "http://www.example.com/../Cargo.toml",
    ];
    for path in attempts {
        let reply = web.send(&get(path, SITE)).await;
        assert!(
            matches!(reply.status, 400 | 404),
            "{path}: status {}",
            reply.status
        );
        assert!(!reply.text().contains(SECRET), "{path} leaked the secret");
    }
    // A symlink that stays inside the site is an ordinary file.
    #[cfg(unix)]
    {
        let alias = web.get("/alias.txt").await;
        assert_eq!(alias.status, 200);
        assert_eq!(alias.body, b"notes.txt");
    }
}

#[tokio::test]
async fn directories_serve_their_index() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    assert_eq!(web.get("/sub/").await.body, b"sub index");
    let bare = web.get("/sub?x=1").await;
    assert_eq!(bare.status, 301);
    assert_eq!(bare.header("location"), Some("/sub/?x=1"));
    // No index, no listing.
    assert_eq!(web.get("/empty/").await.status, 404);
}

#[tokio::test]
async fn missing_files_get_a_404_page() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let reply = web.get("/nowhere.html").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(reply.text().contains("/nowhere.html"));
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let reply = web
            .send(&format!(
                "{method} / HTTP/1.1\r\nHost: {SITE}\r\nContent-Length: 0\r\n\r\n"
            ))
            .await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let mut conn = web.connect().await;
    let first = conn.send(&get("/", SITE)).await;
    let second = conn.send(&get("/style.css", SITE)).await;
    let third = conn.send(&get("/nowhere", SITE)).await;
    assert_eq!((first.status, second.status, third.status), (200, 200, 404));
    assert_eq!(second.body, b"style.css");
}

/// Visits as `demo` publishes them: [`Traced`] events, serialized by serde.
fn sample_trace() -> serde_json::Value {
    let question = Question {
        name: "www.example.com.".into(),
        rtype: hickory_proto::rr::RecordType::A,
    };
    let root = ServerView {
        name: "a.root-servers.net.".into(),
        addr: "127.0.0.2:5300".parse().unwrap(),
    };
    let events = vec![
        Traced {
            seq: 1,
            resolution: 1,
            at_us: 0,
            event: TraceEvent::QuestionReceived {
                client: "127.0.0.1:40000".parse().unwrap(),
                question: question.clone(),
                transport: Transport::Udp,
            },
        },
        Traced {
            seq: 2,
            resolution: 1,
            at_us: 40,
            event: TraceEvent::UpstreamQuery {
                server: root.clone(),
                zone: ".".into(),
                question: question.clone(),
                transport: Transport::Udp,
            },
        },
        Traced {
            seq: 3,
            resolution: 1,
            at_us: 450,
            event: TraceEvent::UpstreamResponse {
                server: root,
                question,
                response: ResponseKind::Referral {
                    zone: "com.".into(),
                    servers: vec!["a.gtld-servers.net.".into()],
                    glue: 1,
                },
                rtt_us: 410,
                nsid: None,
            },
        },
    ];
    json!({ "visits": [{ "label": "cold", "title": "First visit", "events": events }] })
}

#[tokio::test]
async fn trace_json_is_404_until_the_demo_publishes_one() {
    let site = Fixture::new();
    // Plain `dnstrail web`: no document at all.
    let plain = Web::start(site.config()).await;
    assert_eq!(plain.get("/trace.json").await.status, 404);

    // Inside `demo`, before the visits are done.
    let mut config = site.config();
    config.trace = Some(TraceDocument::default());
    let demo = Web::start(config).await;
    assert_eq!(demo.get("/trace.json").await.status, 404);
}

#[tokio::test]
async fn trace_json_serves_the_published_document() {
    let site = Fixture::new();
    let document = TraceDocument::default();
    let mut config = site.config();
    config.trace = Some(document.clone());
    let web = Web::start(config).await;

    let sample = sample_trace();
    document.set(sample.clone());
    assert_eq!(document.get(), Some(sample.clone()));
    let reply = web.get("/trace.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let served: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(served, sample);
    let first = &served["visits"][0]["events"][0];
    assert_eq!(first["event"], "question_received");
    assert_eq!(first["resolution"], 1);
    assert_eq!(
        served["visits"][0]["events"][2]["response"]["kind"],
        "referral"
    );
    let events: Vec<Traced> =
        serde_json::from_value(served["visits"][0]["events"].clone()).unwrap();
    assert_eq!(events.len(), 3);

    // A newer document replaces it at once (no-store, and no cache here).
    document.set(json!({ "visits": [] }));
    assert_eq!(web.get("/trace.json").await.body, br#"{"visits":[]}"#);
}

#[tokio::test]
async fn the_real_site_tells_the_story() {
    // The site built into the binary, which `dnstrail web` serves by default.
    let web = Web::start(WebConfig::new(SiteSource::BuiltIn, vec![SITE.into()])).await;
    let home = web.get("/").await;
    assert_eq!(home.status, 200);
    assert_eq!(
        home.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = home.text();
    assert!(
        page.contains("<title>How a name becomes a page — www.example.com</title>"),
        "{page}"
    );
    // Everything it needs comes from this server: no CDN, no web fonts.
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(!page.contains(external), "external asset: {external}");
    }
    for (asset, kind) in [
        ("/style.css", "text/css; charset=utf-8"),
        ("/trace.js", "text/javascript; charset=utf-8"),
    ] {
        assert!(page.contains(&format!("\"{asset}\"")), "{asset} linked");
        let reply = web.get(asset).await;
        assert_eq!(reply.status, 200, "{asset}");
        assert_eq!(reply.header("content-type"), Some(kind));
    }
}

#[tokio::test]
async fn a_real_client_reaches_the_site_by_name() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .resolve(SITE, web.addr)
        .build()
        .unwrap();
    let url = format!("http://{SITE}:{}/", web.addr.port());
    let response = client.get(&url).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Fixture home"));
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let addr = web.addr;
    let mut idle = web.connect().await;
    assert_eq!(idle.send(&get("/", SITE)).await.status, 200);
    web.stop().await;
    assert!(idle.closed_by_server().await);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let padding = "a".repeat(20 * 1024);
    let reply = web
        .send(&format!(
            "GET / HTTP/1.1\r\nHost: {SITE}\r\nX-Padding: {padding}\r\n\r\n"
        ))
        .await;
    assert_eq!(reply.status, 431);
    assert!(!reply.text().contains("Fixture home"));
}

/// Slowloris: many clients trickling their headers do not keep a new client
/// from being served at once.
#[tokio::test]
async fn slow_clients_do_not_block_new_ones() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(web.addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: www.exa")
            .await
            .unwrap();
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    let home = tokio::time::timeout(PATIENCE, web.get("/"))
        .await
        .expect("a new client is served while 200 slow ones wait");
    assert_eq!(home.status, 200);
    assert!(started.elapsed() < PATIENCE);
    drop(slow);
    web.stop().await;
}

/// The race that `canonicalize`-then-open loses: a thread swaps a directory
/// of the site for a symlink to outside it, and back, while requests for
/// files in it run. Each request asks for a file not asked for before, so
/// none is answered from the in-memory cache: every one opens the disk.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_a_directory_for_a_symlink_never_leaks_a_file() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    const FILES: usize = 2_000;
    const CLIENTS: usize = 4;
    const FOR_AT_MOST: Duration = Duration::from_secs(5);
    let site = Fixture::new();
    let inside = site.root().join("flip");
    let parked = site.root().join("parked");
    let outside = site.outside().join("elsewhere");
    for dir in [&inside, &outside] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for i in 0..FILES {
        std::fs::write(inside.join(format!("{i}.txt")), format!("inside {i}")).unwrap();
        std::fs::write(outside.join(format!("{i}.txt")), SECRET).unwrap();
    }
    let web = Web::start(site.config()).await;

    // The attacker: real directory, gone, symlink out (by an absolute path,
    // then by `..`), gone, real again.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = std::thread::spawn({
        let stop = stop.clone();
        let ways_out = [outside.clone(), PathBuf::from("../elsewhere")];
        move || {
            let started = std::time::Instant::now();
            let mut flips = 0;
            while !stop.load(Ordering::Relaxed)
                && started.elapsed() < FOR_AT_MOST * 2
                && flips < 10_000_000
            {
                std::fs::rename(&inside, &parked).unwrap();
                std::os::unix::fs::symlink(&ways_out[flips % 2], &inside).unwrap();
                std::fs::remove_file(&inside).unwrap();
                std::fs::rename(&parked, &inside).unwrap();
                flips += 1;
            }
            flips
        }
    });

    let started = std::time::Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let addr = web.addr;
        clients.spawn(async move {
            let mut conn = Conn::open(addr).await;
            let (mut served, mut leaked) = (0, Vec::new());
            for i in (client..FILES).step_by(CLIENTS) {
                if started.elapsed() > FOR_AT_MOST {
                    break;
                }
                let reply = conn.send(&get(&format!("/flip/{i}.txt"), SITE)).await;
                if reply.text().contains(SECRET) {
                    leaked.push(i);
                }
                served += usize::from(reply.status == 200);
            }
            (served, leaked)
        });
    }
    let mut served = 0;
    let mut leaked = Vec::new();
    while let Some(outcome) = clients.join_next().await {
        let (s, l) = outcome.unwrap();
        served += s;
        leaked.extend(l);
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(flips > 0, "the directory was never swapped");
    assert!(served > 0, "no request was served at all");
    assert!(
        leaked.is_empty(),
        "{} responses came from outside the site, the first for /flip/{}.txt",
        leaked.len(),
        leaked[0]
    );
}

#[tokio::test]
async fn two_host_headers_are_a_bad_request() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    for second in [SITE, "elsewhere.test"] {
        let reply = web
            .send(&format!(
                "GET / HTTP/1.1\r\nHost: {SITE}\r\nHost: {second}\r\n\r\n"
            ))
            .await;
        assert_eq!(reply.status, 400, "Host: {second}");
        assert!(!reply.text().contains("Fixture home"));
    }
}

/// RFC 9112 §2.2 lets a recipient take a lone LF for a line end; hyper does.
/// A proxy in front that does not would read other requests from the same
/// bytes, so lone LFs are refused, and the connection closed.
#[tokio::test]
async fn lines_ending_in_a_bare_lf_are_a_bad_request() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    for request in [
        format!("GET / HTTP/1.1\nHost: {SITE}\n\n"),
        format!("GET / HTTP/1.1\r\nHost: {SITE}\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: {SITE}\r\nAccept: */*\n\r\n"),
        format!("GET / HTTP/1.1\nHost: {SITE}\r\n\r\n"),
    ] {
        let mut conn = web.connect().await;
        let reply = conn.send(&request).await;
        assert_eq!(reply.status, 400, "{request:?}");
        assert_eq!(reply.header("connection"), Some("close"), "{request:?}");
        assert!(!reply.text().contains("Fixture home"));
        assert!(conn.closed_by_server().await, "{request:?}");
    }
    // On a kept-alive connection, a good request, a bad one, then nothing.
    let mut conn = web.connect().await;
    assert_eq!(conn.send(&get("/", SITE)).await.status, 200);
    let bad = conn
        .send(&format!("GET / HTTP/1.1\nHost: {SITE}\n\n"))
        .await;
    assert_eq!(bad.status, 400);
    assert!(conn.closed_by_server().await);
    // Pipelined: each request is judged by its own lines.
    let mut conn = web.connect().await;
    let good = get("/style.css", SITE);
    let reply = conn
        .send(&format!("{good}{good}GET / HTTP/1.1\nHost: {SITE}\n\n"))
        .await;
    assert_eq!(reply.status, 200);
    for expected in [200, 400] {
        let reply = tokio::time::timeout(PATIENCE, conn.reply(false))
            .await
            .expect("a reply in time");
        assert_eq!(reply.status, expected);
    }
}

/// A body is never read; rather than skip it (and risk reading its bytes as
/// the next request), the server answers and closes.
#[tokio::test]
async fn a_request_with_a_body_is_answered_then_closed() {
    let site = Fixture::new();
    let web = Web::start(site.config()).await;
    let mut conn = web.connect().await;
    let reply = conn
        .send(&format!(
            "POST / HTTP/1.1\r\nHost: {SITE}\r\nContent-Length: 15\r\n\r\nGET / HTTP/1.1\n"
        ))
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(conn.closed_by_server().await);
}

#[tokio::test]
async fn several_names_on_several_addresses() {
    let names = ["www.example.com", "Blog.Example.com.", "example.com"];
    let site = Fixture::new();
    let config = WebConfig::new(
        SiteSource::Dir(site.root()),
        names.iter().map(|n| n.to_string()).collect(),
    );
    let web = Web::start_on(config, &["127.0.0.44:0", "127.0.0.45:0"]).await;
    assert_eq!(web.addrs.len(), 2);
    for addr in &web.addrs {
        for host in ["www.example.com", "blog.example.com:8080", "EXAMPLE.COM."] {
            let reply = Conn::open(*addr).await.send(&get("/", host)).await;
            assert_eq!(reply.status, 200, "{host} on {addr}");
            assert!(reply.text().contains("Fixture home"));
        }
        let elsewhere = Conn::open(*addr)
            .await
            .send(&get("/", "shop.example.com"))
            .await;
        assert_eq!(elsewhere.status, 404);
        let page = elsewhere.text();
        assert!(
            page.contains(
                "this server serves <code>www.example.com</code>, \
                 <code>blog.example.com</code> and <code>example.com</code>."
            ),
            "{page}"
        );
    }
    let addrs = web.addrs.clone();
    web.stop().await;
    for addr in addrs {
        assert!(TcpStream::connect(addr).await.is_err(), "{addr} is closed");
    }
}

#[tokio::test]
async fn the_built_in_site_is_served_like_a_directory() {
    let web = Web::start(WebConfig::new(SiteSource::BuiltIn, vec![SITE.into()])).await;
    let mut files = 0;
    for (name, bytes) in dnstrail::builtin::site_files() {
        let path = format!("/{name}");
        let mut conn = web.connect().await;
        let reply = conn.send(&get(&path, SITE)).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, bytes, "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        let etag = reply.header("etag").expect("an ETag").to_string();
        let modified = reply.header("last-modified").expect("Last-Modified");
        assert!(httpdate::parse_http_date(modified).is_ok(), "{modified}");

        let head = conn
            .send(&format!("HEAD {path} HTTP/1.1\r\nHost: {SITE}\r\n\r\n"))
            .await;
        assert_eq!(head.status, 200);
        for header in ["content-type", "content-length", "etag", "last-modified"] {
            assert_eq!(head.header(header), reply.header(header), "{path} {header}");
        }
        let again = conn
            .send(&format!(
                "GET {path} HTTP/1.1\r\nHost: {SITE}\r\nIf-None-Match: {etag}\r\n\r\n"
            ))
            .await;
        assert_eq!(again.status, 304, "{path}");
        let since = conn
            .send(&format!(
                "GET {path} HTTP/1.1\r\nHost: {SITE}\r\nIf-Modified-Since: {modified}\r\n\r\n"
            ))
            .await;
        assert_eq!(since.status, 304, "{path}");
        // The next reply parses only if the 304s carried no body.
        assert_eq!(conn.send(&get(&path, SITE)).await.status, 200);
        files += 1;
    }
    assert!(files >= 3, "index.html, style.css, trace.js at least");

    let home = web.get("/").await;
    assert_eq!(
        home.body,
        dnstrail::builtin::site_file("index.html").unwrap()
    );
    for (path, status) in [
        ("/index.html/", 404),
        ("/nowhere.html", 404),
        ("/.hidden", 404),
        ("/../Cargo.toml", 400),
    ] {
        assert_eq!(web.get(path).await.status, status, "{path}");
    }
}

#[tokio::test]
async fn a_site_that_cannot_be_served_fails_to_open() {
    let site = Fixture::new();
    let no_index = site.root().join("empty");
    let a_file = site.root().join("notes.txt");
    let missing = site.root().join("nowhere");
    for (dir, why) in [
        (&missing, "does not exist"),
        (&a_file, "is not a directory"),
        (&no_index, "has no index.html"),
    ] {
        let config = WebConfig::new(SiteSource::Dir(dir.clone()), vec![SITE.into()]);
        let Err(error) = Website::open(config).await else {
            panic!("{} opened", dir.display());
        };
        let message = format!("{error:#}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains(why), "{message}");
    }

    let nameless = WebConfig::new(SiteSource::Dir(site.root()), Vec::new());
    assert!(Website::open(nameless.clone()).await.is_err());
    let mut any = nameless;
    any.any_host = true;
    let opened = Website::open(any).await.expect("any host needs no name");
    assert!(opened.hosts().is_empty());

    let named = WebConfig::new(
        SiteSource::BuiltIn,
        vec!["WWW.Example.com.".into(), "www.example.com".into()],
    );
    let opened = Website::open(named).await.unwrap();
    assert_eq!(opened.hosts(), ["www.example.com"]);
    let no_listener = web::run(opened, Vec::new(), CancellationToken::new()).await;
    assert!(no_listener.is_err(), "a server with no address");
}
