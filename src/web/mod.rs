//! The web server of www.example.com: the last two steps of the story.
//!
//! The browser has the address (127.0.0.44) from its resolver; now it
//! connects and asks for the page by name:
//!
//! ```text
//!   browser ──8── GET / HTTP/1.1, Host: www.example.com ──► web server
//!           ◄─9── 200 OK, the site's index.html ───────────┘
//! ```
//!
//! One address can serve many sites, so the `Host` header says which one is
//! meant: this server serves the names it is given (`www.example.com` unless
//! told otherwise; `blog.example.com` and `example.com` too, if asked) on
//! every address it listens on, and answers any other name with a 404 page
//! that lists the ones it serves. The site is the one built into the binary
//! ([`SiteSource::BuiltIn`]) or a directory ([`SiteSource::Dir`]).
//!
//! The shape of every role: [`Website::open`] checks the site (and fails at
//! once if it cannot be served), the caller binds the listeners, and
//! [`run`] serves until the shutdown signal.
//!
//! A request passes through these parts, one file each:
//!
//! ```text
//!   connection ─► heads ─► hyper ─► request ─► files ─► disk | builtin
//!    (+ shed)                          └──► pages (errors)
//! ```
//!
//! - `connection`: accepting connections on every listener, bounding how
//!   many and how long they may sit idle, closing them gracefully on
//!   shutdown.
//! - `shed`: at the connection limit, closing the connection that has
//!   waited longest for a request (a slowloris client, most likely) to make
//!   room for a new one.
//! - `heads`: how each request head's lines ended, watched on the bytes
//!   hyper reads, so that a lone LF can be refused.
//! - `request`: one request: its line ends and `Host` header, which site,
//!   method, conditional GET (`ETag`, `Last-Modified`, 304), the access log.
//! - `files`: from a URL path to a file of the site and never anything
//!   else, from a directory (opened beneath its root, small files kept in
//!   memory) or from the binary.
//! - `pages`: the error pages, generated here.
//!
//! Try it (`dnstrail web`, then):
//!
//! ```text
//! curl -i --resolve www.example.com:8080:127.0.0.44 http://www.example.com:8080/
//! curl -i -H 'Host: elsewhere.test' http://127.0.0.44:8080/     # 404: not this site
//! ```

mod connection;
mod files;
mod heads;
mod pages;
mod request;
#[cfg(test)]
mod scratch;
mod shed;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use files::Files;

/// JSON served at /trace.json when the web server runs inside `demo`.
///
/// The demo sets it once its visits are done; the page's script fetches it
/// and draws each visit as a sequence diagram. Its shape is
/// `{"visits":[{"label":"cold","title":"…","events":[Traced, …]}, …]}`, each
/// event a [`crate::trace::Traced`] as serde writes it.
#[derive(Clone, Default)]
pub struct TraceDocument(Arc<RwLock<Option<Arc<Published>>>>);

/// A document and its bytes, serialized once when set rather than on every
/// request.
struct Published {
    value: serde_json::Value,
    json: Bytes,
}

impl TraceDocument {
    /// Publish `value`: every request from now on gets it.
    pub fn set(&self, value: serde_json::Value) {
        let json = Bytes::from(serde_json::to_vec(&value).expect("a JSON value serializes"));
        *self.0.write().expect("trace document lock") = Some(Arc::new(Published { value, json }));
    }

    /// The document, if one was published.
    pub fn get(&self) -> Option<serde_json::Value> {
        self.published().map(|p| p.value.clone())
    }

    fn published(&self) -> Option<Arc<Published>> {
        self.0.read().expect("trace document lock").clone()
    }
}

/// Where the site's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteSource {
    /// A directory on disk; nothing outside it is ever served.
    Dir(PathBuf),
    /// The site carried in the binary ([`crate::builtin::site_files`]).
    BuiltIn,
}

/// What the web server serves, and for which names.
#[derive(Clone)]
pub struct WebConfig {
    /// Where the files come from.
    pub site: SiteSource,
    /// Every host name served (`www.example.com`, `blog.example.com`,
    /// `example.com`); matched case-insensitively, port and trailing dot
    /// ignored. Requests for any other name get a 404 that lists these.
    pub hosts: Vec<String>,
    /// Serve the site whatever the `Host` header says.
    pub any_host: bool,
    /// The demo's trace, served at `/trace.json`; without it, 404.
    pub trace: Option<TraceDocument>,
    /// The stack's control endpoint, served under `/lab/` on the site's own
    /// origin, so the page can watch and steer the stack it tells of. Filled
    /// in once the stack has started (the site opens before it).
    pub lab: LabSlot,
}

/// Where the stack's control endpoint will be, for the site to serve.
pub type LabSlot = std::sync::Arc<std::sync::OnceLock<crate::control::Control>>;

impl WebConfig {
    pub fn new(site: SiteSource, hosts: Vec<String>) -> WebConfig {
        WebConfig {
            site,
            hosts,
            any_host: false,
            trace: None,
            lab: LabSlot::default(),
        }
    }
}

/// A site opened and checked, ready to serve: [`Website::open`] fails at
/// once, naming the directory, if the site cannot be served. Its requests
/// are answered in `request`.
pub struct Website {
    files: Files,
    /// The names served, lower case, without a trailing dot, in the order
    /// given.
    hosts: Vec<String>,
    any_host: bool,
    trace: Option<TraceDocument>,
    lab: LabSlot,
}

impl Website {
    /// Open the site `config` names: its directory must exist, be a
    /// directory and hold an `index.html`; and unless any host will do, at
    /// least one name must be given.
    pub async fn open(config: WebConfig) -> anyhow::Result<Website> {
        let mut hosts: Vec<String> = Vec::with_capacity(config.hosts.len());
        for host in &config.hosts {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            anyhow::ensure!(
                !name.is_empty(),
                "an empty host name ({host:?}) names no site"
            );
            if !hosts.contains(&name) {
                hosts.push(name);
            }
        }
        anyhow::ensure!(
            config.any_host || !hosts.is_empty(),
            "no host name to serve the site as (give one, or serve any host)"
        );
        Ok(Website {
            files: Files::open(&config.site).await?,
            hosts,
            any_host: config.any_host,
            trace: config.trace,
            lab: config.lab,
        })
    }

    /// The names served, as matched: lower case, without a trailing dot.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// For the log: which names are served.
    fn describe_hosts(&self) -> String {
        if self.any_host {
            "any host name".to_string()
        } else {
            self.hosts.join(", ")
        }
    }
}

/// How long and how much each client may take. One value, so that the tests
/// in this module can shrink the timeouts to milliseconds.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// From the first byte of a request (or the end of the previous one, on a
    /// kept-alive connection) to the end of its headers. A slowloris client
    /// that trickles headers is cut off here, and so is an idle keep-alive
    /// connection.
    header_read: Duration,
    /// The longest a connection may go with no byte moving either way: a
    /// client that stops reading its response is dropped after this.
    idle: Duration,
    /// How long shutdown waits for requests in flight.
    drain: Duration,
    /// Connections served at once; past it, the one that has waited longest
    /// for a request is closed to make room.
    max_connections: usize,
    /// Request line and headers together.
    max_header_bytes: usize,
}

impl Limits {
    const DEFAULT: Limits = Limits {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(30),
        drain: Duration::from_secs(2),
        max_connections: 1024,
        max_header_bytes: 16 * 1024,
    };
}

/// Serve `site` on every already-bound listener until `shutdown` is
/// cancelled; then stop accepting, give requests in flight a moment (2 s)
/// to finish, and return.
pub async fn run(
    site: Website,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve(site, Limits::DEFAULT, listeners, shutdown).await
}

async fn serve(
    site: Website,
    limits: Limits,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !listeners.is_empty(),
        "the web server was given no address to listen on"
    );
    let mut urls = Vec::with_capacity(listeners.len());
    for listener in &listeners {
        urls.push(format!("http://{}/", listener.local_addr()?));
    }
    tracing::info!(
        "web server for {} on {} (site: {})",
        site.describe_hosts(),
        urls.join(", "),
        site.files.describe()
    );
    connection::serve(Arc::new(site), limits, listeners, shutdown).await
}

/// `dnstrail web`: the directory given, else the built-in site.
/// Feed raw bytes to the site as one client connection would, and return
/// what it wrote back: the web server's request path, for the fuzzer.
#[doc(hidden)]
pub async fn respond_to_raw(config: WebConfig, raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = Limits {
        header_read: Duration::from_millis(200),
        idle: Duration::from_millis(200),
        ..Limits::DEFAULT
    };
    let site = Arc::new(Website::open(config).await?);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    // half_close: the client has finished sending once it shuts its side,
    // yet the answers must still be written back.
    let mut http = connection::http(limits);
    http.half_close(true);
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
    let serving = tokio::spawn(connection::serve_one(
        &http,
        site,
        server,
        peer,
        limits,
        CancellationToken::new(),
        shed::Activity::new(),
    ));
    client.write_all(raw).await?;
    client.shutdown().await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut out)).await??;
    serving.abort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The limits, with timeouts shrunk so that the tests take moments.
    //! Everything else is tested from outside, in tests/integration/web.rs.

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::task::JoinHandle;

    use super::scratch::ScratchDir;
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);
    const BIG: usize = 32 * 1024 * 1024;
    const GET_INDEX: &[u8] = b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n";

    /// A site with an index and a file too big for any socket buffer.
    fn site() -> ScratchDir {
        let site = ScratchDir::new();
        site.write("index.html", "hello");
        site.write("big.bin", vec![b'x'; BIG]);
        site
    }

    struct Running {
        addr: SocketAddr,
        shutdown: CancellationToken,
        task: JoinHandle<anyhow::Result<()>>,
        _site: ScratchDir,
    }

    async fn start(limits: Limits) -> Running {
        let site = site();
        let config = WebConfig::new(
            SiteSource::Dir(site.path().to_path_buf()),
            vec!["www.example.com".into()],
        );
        let website = Website::open(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(website, limits, vec![listener], shutdown.clone()));
        Running {
            addr,
            shutdown,
            task,
            _site: site,
        }
    }

    /// Read until the response to GET / (body "hello") is complete.
    async fn read_index(stream: &mut TcpStream) -> String {
        let mut seen = Vec::new();
        while !seen.ends_with(b"\r\n\r\nhello") {
            let mut chunk = [0; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the response was complete");
            seen.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(seen).unwrap()
    }

    #[tokio::test]
    async fn a_client_that_trickles_its_headers_is_cut_off() {
        let server = start(Limits {
            header_read: Duration::from_millis(200),
            ..Limits::DEFAULT
        })
        .await;
        let mut slow = TcpStream::connect(server.addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: www.exa")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the server kept a half-sent request open");
        assert!(rest.is_empty(), "no response to an unfinished request");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let server = start(Limits {
            header_read: Duration::from_millis(200),
            ..Limits::DEFAULT
        })
        .await;
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        client.write_all(GET_INDEX).await.unwrap();
        read_index(&mut client).await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, client.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the idle connection stayed open");
    }

    /// Send GET /big.bin and read only the start of the answer: the
    /// response stays in flight, far larger than the socket buffers.
    async fn start_a_long_download(addr: SocketAddr) -> TcpStream {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            .await
            .unwrap();
        let mut start = [0; 15];
        client.read_exact(&mut start).await.unwrap();
        assert_eq!(&start, b"HTTP/1.1 200 OK");
        client
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_while_all_are_answering() {
        let server = start(Limits {
            max_connections: 1,
            ..Limits::DEFAULT
        })
        .await;
        let downloading = start_a_long_download(server.addr).await;

        // The kernel completes the handshake, but the one slot is answering,
        // so the newcomer is not served until it is free.
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        second.write_all(GET_INDEX).await.unwrap();
        let waiting =
            tokio::time::timeout(Duration::from_millis(300), second.read(&mut [0; 64])).await;
        assert!(waiting.is_err(), "served past the connection limit");

        drop(downloading);
        let reply = tokio::time::timeout(PATIENCE, read_index(&mut second))
            .await
            .expect("served once the first connection closed");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_makes_room_for_a_new_one() {
        let server = start(Limits {
            max_connections: 1,
            ..Limits::DEFAULT
        })
        .await;
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        idle.write_all(GET_INDEX).await.unwrap();
        read_index(&mut idle).await;

        let mut second = TcpStream::connect(server.addr).await.unwrap();
        second.write_all(GET_INDEX).await.unwrap();
        let reply = tokio::time::timeout(PATIENCE, read_index(&mut second))
            .await
            .expect("served at once");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(PATIENCE, idle.read_to_end(&mut rest)).await;
        assert!(closed.is_ok() && rest.is_empty(), "the idle one was closed");
    }

    /// Slowloris: more clients trickling their headers than there are
    /// slots. Without making room, the newcomer would wait in the backlog
    /// until `header_read` (a minute here) cut a slow one off.
    #[tokio::test]
    async fn slow_clients_past_the_limit_make_room_for_a_new_one() {
        const SLOW: usize = 20;
        let server = start(Limits {
            max_connections: 8,
            header_read: Duration::from_secs(60),
            ..Limits::DEFAULT
        })
        .await;
        let mut trickling = tokio::task::JoinSet::new();
        for _ in 0..SLOW {
            let mut slow = TcpStream::connect(server.addr).await.unwrap();
            slow.write_all(b"GET / HTTP/1.1\r\nHost: www.exa")
                .await
                .unwrap();
            // A byte every 50 ms, for 5 s at most, until the server hangs up.
            trickling.spawn(async move {
                for _ in 0..100 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if slow.write_all(b"m").await.is_err() {
                        break;
                    }
                }
            });
        }

        let asked = std::time::Instant::now();
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        client.write_all(GET_INDEX).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(1), read_index(&mut client))
            .await
            .expect("a new client is answered within a second");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(asked.elapsed() < Duration::from_secs(1));
        trickling.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_lets_a_response_in_flight_finish() {
        let server = start(Limits {
            drain: PATIENCE,
            ..Limits::DEFAULT
        })
        .await;
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        client
            .write_all(b"GET /big.bin HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            .await
            .unwrap();
        let mut received = vec![0; 64 * 1024];
        let n = client.read(&mut received).await.unwrap();
        received.truncate(n);
        assert!(received.starts_with(b"HTTP/1.1 200 OK"));

        // Far more than the socket buffers hold is still on its way.
        server.shutdown.cancel();
        tokio::time::timeout(PATIENCE, client.read_to_end(&mut received))
            .await
            .expect("the response finishes")
            .unwrap();
        let body_starts = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers")
            + 4;
        assert_eq!(received.len() - body_starts, BIG);
        tokio::time::timeout(PATIENCE, server.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}
