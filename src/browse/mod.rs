//! The built-in browser: where the story starts and ends.
//!
//! A visit does what a browser does with a URL, and times each step the way
//! a browser's network panel does:
//!
//! ```text
//!   http://www.example.com:8080/
//!        │ 1 stub resolver: www.example.com. A? (RD=1) ──► resolver (--resolver)
//!        │                  ◄── 127.0.0.44 ──────────────
//!        │ 2 TCP connect 127.0.0.44:8080
//!        │ 3 GET / HTTP/1.1, Host: www.example.com:8080
//!        ▼ 4 status, title, the top of the page as text
//! ```
//!
//! The stub resolver (`stub.rs`) is hickory's, pointed at one recursive
//! resolver and nothing else: no /etc/hosts, no search domains, no cache of
//! its own. reqwest fetches the page through it, and every visit gets a fresh
//! reqwest client, so every visit asks the resolver and opens a connection:
//! a demo that visits three times shows all three steps three times (and the
//! resolver answering from its cache).
//!
//! ```text
//! $ dnstrail browse http://www.example.com:8080/ --resolver 127.0.0.1:5300
//! $ dnstrail browse --json | jq .timings
//! ```
//!
//! # Exit codes
//!
//! | code | meaning                                                        |
//! |------|----------------------------------------------------------------|
//! | 0    | the page came back with 200 OK                                 |
//! | 1    | the browser could not start (or `--timeout` is not a duration) |
//! | 2    | the command line is wrong                                      |
//! | 3    | the URL is not one this browser can visit (only `http://`)     |
//! | 4    | the name does not exist (NXDOMAIN)                             |
//! | 5    | the name exists but has no address (NODATA)                    |
//! | 6    | the resolver failed (SERVFAIL, REFUSED, a referral, …)         |
//! | 7    | the web server refused the connection                          |
//! | 8    | no lookup, connection or response within `--timeout`           |
//! | 9    | the web server answered, but not 200 OK                        |
//! | 10   | the connection broke, or the response was not HTTP             |

mod page;
mod stub;
mod timing;

pub use page::title as page_title;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};

use hickory_proto::rr::{Record, RecordType};

use crate::cli::BrowseArgs;
use crate::trace::TraceSink;
use stub::{LookupFailure, StubResolver};
use timing::{ConnectTiming, Marks, Told, VisitClock, VisitResolver};

/// When each step of a visit ended, in microseconds since the request was
/// handed to the HTTP client (the lookup starts at once), the way curl's
/// `time_namelookup`, `time_connect`, `time_starttransfer` and `time_total`
/// count: `dns_us <= connect_us <= first_byte_us <= total_us`, and each
/// step took the difference from the one before. A URL naming an address
/// needs no lookup: `dns_us` is 0.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timings {
    /// The stub resolver had the addresses.
    pub dns_us: u64,
    /// The TCP connection was up.
    pub connect_us: u64,
    /// The response headers had arrived.
    pub first_byte_us: u64,
    /// The last byte of the page had arrived.
    pub total_us: u64,
}

/// One page visit: what was asked, where it went, what came back, and when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Visit {
    /// The URL as visited (normalised: `http://www.example.com:8080/`).
    pub url: String,
    /// The URL's host, as given to the resolver.
    pub host: String,
    /// What the lookup found (or the address the URL names).
    pub addresses: Vec<IpAddr>,
    /// The address connected to.
    pub addr: SocketAddr,
    pub status: u16,
    pub title: Option<String>,
    /// The top of the page as text: no markup, at most 15 lines.
    pub text: String,
    /// The size of the body.
    pub bytes: usize,
    /// The whole body (as UTF-8, invalid bytes replaced).
    pub body: String,
    pub timings: Timings,
}

/// Why a visit did not end with a 200 page. Each displays as one line that
/// says what happened and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    #[error("cannot start the browser: {reason}")]
    Setup { reason: String },
    #[error("cannot visit {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{host} does not exist (NXDOMAIN from resolver {resolver})")]
    NxDomain { host: String, resolver: SocketAddr },
    #[error(
        "{host} exists but has no address (no A or AAAA record, NODATA from resolver {resolver})"
    )]
    NoAddress { host: String, resolver: SocketAddr },
    #[error(
        "nothing listens at resolver {resolver} (port unreachable): is `dnstrail resolver` running there?"
    )]
    ResolverDown { host: String, resolver: SocketAddr },
    #[error("resolver {resolver} could not look up {host}: {reason}")]
    Lookup {
        host: String,
        resolver: SocketAddr,
        reason: String,
    },
    #[error(
        "no answer from resolver {resolver} about {host} within {after:?}: \
         is `dnstrail resolver` running?"
    )]
    LookupTimeout {
        host: String,
        resolver: SocketAddr,
        after: Duration,
    },
    #[error("connection refused by {}: is `dnstrail web` running?", list(.addrs, "and"))]
    Refused {
        host: String,
        addrs: Vec<SocketAddr>,
    },
    #[error("no connection to {} within {after:?}", list(.addrs, "or"))]
    ConnectTimeout {
        addrs: Vec<SocketAddr>,
        after: Duration,
    },
    #[error(
        "{} accepted the connection but sent {} within {after:?}",
        list(.addrs, "or"),
        if *.got_headers { "only part of the page" } else { "no response" }
    )]
    ResponseTimeout {
        url: String,
        addrs: Vec<SocketAddr>,
        after: Duration,
        /// The status line and headers came, the rest of the page did not.
        got_headers: bool,
    },
    #[error(
        "{} answered {}{}",
        .visit.url,
        status_line(.visit.status),
        .location.as_ref().map(|to| format!(" (to {to}; not followed)")).unwrap_or_default()
    )]
    Status {
        /// Everything about the visit, the page included.
        visit: Box<Visit>,
        /// Where a redirect pointed.
        location: Option<String>,
    },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
}

impl BrowseError {
    /// The process exit code for this error (see the table in the module
    /// documentation).
    pub fn exit_code(&self) -> u8 {
        match self {
            BrowseError::Setup { .. } => 1,
            BrowseError::InvalidUrl { .. } => 3,
            BrowseError::NxDomain { .. } => 4,
            BrowseError::NoAddress { .. } => 5,
            BrowseError::Lookup { .. } | BrowseError::ResolverDown { .. } => 6,
            BrowseError::Refused { .. } => 7,
            BrowseError::LookupTimeout { .. }
            | BrowseError::ConnectTimeout { .. }
            | BrowseError::ResponseTimeout { .. } => 8,
            BrowseError::Status { .. } => 9,
            BrowseError::Http { .. } => 10,
        }
    }
}

/// `127.0.0.44:8080`, or `127.0.0.44:8080 or 127.0.0.45:8080`.
fn list(addrs: &[SocketAddr], conjunction: &str) -> String {
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    addrs.join(&format!(" {conjunction} "))
}

/// `404 Not Found`.
fn status_line(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// A browser that looks names up through one recursive resolver.
///
/// It holds the stub resolver; the reqwest client is made afresh for each
/// visit, with the visit's clock wired into its resolver and connector. That
/// keeps concurrent visits' timings apart, and means no pooled connection
/// ever lets a visit skip the lookup or the connect.
pub struct Browser {
    stub: StubResolver,
    resolver: SocketAddr,
    timeout: Duration,
    /// Where each step is told as it happens, if anywhere.
    trace: Option<TraceSink>,
}

/// A URL this browser can visit.
struct Target {
    url: Url,
    host: String,
    port: u16,
    /// The address the URL names instead of a host name: nothing to look up.
    literal: Option<IpAddr>,
}

impl Target {
    fn parse(text: &str) -> Result<Target, BrowseError> {
        let invalid = |reason: String| BrowseError::InvalidUrl {
            url: text.to_string(),
            reason,
        };
        // `www.example.com` alone is taken as `http://www.example.com/`, as
        // a browser's address bar takes it.
        let with_scheme;
        let text = if text.contains("://") {
            text
        } else {
            with_scheme = format!("http://{text}");
            &with_scheme
        };
        let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid(format!(
                "this browser speaks plain http://, not {}://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid("no host".into()))?
            .to_string();
        let literal = names_address(&host);
        Ok(Target {
            port: url.port_or_known_default().unwrap_or(80),
            url,
            host,
            literal,
        })
    }

    /// The addresses to connect to: what the lookup found, or the URL's own.
    fn addresses(&self, marks: &Marks) -> Vec<IpAddr> {
        match &marks.lookup {
            Some((_, Ok(found))) => found.clone(),
            _ => self.literal.into_iter().collect(),
        }
    }

    /// Those addresses with the URL's port.
    fn endpoints(&self, addresses: &[IpAddr]) -> Vec<SocketAddr> {
        addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect()
    }
}

impl Browser {
    /// A browser asking `resolver`, giving up on a visit after `timeout`.
    pub fn new(resolver: SocketAddr, timeout: Duration) -> Result<Browser, BrowseError> {
        let stub = StubResolver::new(resolver, timeout).map_err(|e| BrowseError::Setup {
            reason: format!("stub resolver: {e}"),
        })?;
        Ok(Browser {
            stub,
            resolver,
            timeout,
            trace: None,
        })
    }

    /// Tell each step of every visit to `sink`, the moment it happens.
    pub fn with_trace(mut self, sink: TraceSink) -> Browser {
        self.trace = Some(sink);
        self
    }

    /// Ask the resolver one question, as the browser's stub would, without
    /// visiting anything: `--ask blog.example.com/AAAA`.
    pub async fn ask(&self, host: &str, rtype: RecordType) -> Result<Vec<Record>, BrowseError> {
        let clock = VisitClock::new(self.trace.clone().map(|sink| Told {
            sink,
            resolver: self.resolver,
            url: host.to_string(),
            port: 0,
        }));
        clock.lookup_started(host, &[rtype]);
        let found = tokio::time::timeout(self.timeout, self.stub.records(host, rtype))
            .await
            .unwrap_or(Err(LookupFailure::Timeout));
        clock.lookup_ended(
            host,
            found
                .as_ref()
                .map(|records| crate::dns::addresses(records))
                .map_err(Clone::clone),
        );
        let target = Target {
            url: Url::parse("http://invalid/").expect("literal"),
            host: host.to_string(),
            port: 0,
            literal: None,
        };
        found.map_err(|failure| self.lookup_failed(&target, &failure))
    }

    /// Look up the URL's host, connect, GET the page, and read all of it,
    /// within the browser's timeout. Anything but 200 OK is an error; for
    /// other statuses the error carries the visit.
    pub async fn visit(&self, url: &str) -> Result<Visit, BrowseError> {
        let target = Target::parse(url)?;
        let clock = Arc::new(VisitClock::new(self.trace.clone().map(|sink| Told {
            sink,
            resolver: self.resolver,
            url: target.url.to_string(),
            port: target.port,
        })));
        let client = reqwest::Client::builder()
            .dns_resolver(VisitResolver {
                stub: self.stub.clone(),
                clock: clock.clone(),
            })
            .connector_layer(ConnectTiming(clock.clone()))
            // The resolver is the only way to the site: no proxy from the
            // environment, no redirect or retry that would look up and
            // connect again behind the panel's back.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .pool_max_idle_per_host(0)
            .user_agent(concat!("dnstrail/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BrowseError::Setup {
                reason: format!("HTTP client: {e}"),
            })?;

        match tokio::time::timeout(self.timeout, self.fetch(&client, &target, &clock)).await {
            Ok(visited) => visited,
            Err(_) => Err(self.timed_out(&target, &clock.marks())),
        }
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        target: &Target,
        clock: &VisitClock,
    ) -> Result<Visit, BrowseError> {
        let start = Instant::now();
        let response = client
            .get(target.url.clone())
            .send()
            .await
            .map_err(|e| self.failed(target, &clock.marks(), &e))?;
        let first_byte = clock.first_byte();
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .filter(|_| status.is_redirection())
            .and_then(|to| to.to_str().ok())
            .map(str::to_string);
        let remote = response.remote_addr();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.failed(target, &clock.marks(), &e))?;
        let done = Instant::now();

        let marks = clock.marks();
        let since_start = |at: Instant| micros(at.duration_since(start));
        let addresses = target.addresses(&marks);
        let dns_us = marks.lookup.as_ref().map_or(0, |(at, _)| since_start(*at));
        let timings = Timings {
            dns_us,
            connect_us: since_start(
                marks
                    .connected
                    .expect("a response comes over a connection this visit's connector made"),
            ),
            first_byte_us: since_start(first_byte),
            total_us: since_start(done),
        };
        let html = String::from_utf8_lossy(&body).into_owned();
        clock.page_arrived(
            status.as_u16(),
            page::title(&html),
            body.len(),
            timings.total_us.saturating_sub(timings.connect_us),
        );
        let visit = Visit {
            url: target.url.to_string(),
            host: target.host.clone(),
            // hyper-util reports the peer of every TCP connection it makes.
            addr: remote.unwrap_or_else(|| target.endpoints(&addresses)[0]),
            addresses,
            status: status.as_u16(),
            title: page::title(&html),
            text: page::text(&html),
            bytes: body.len(),
            body: html,
            timings,
        };
        if status != StatusCode::OK {
            return Err(BrowseError::Status {
                visit: Box::new(visit),
                location,
            });
        }
        Ok(visit)
    }

    /// What a failed `send()` or body read meant, given how far the visit got.
    fn failed(&self, target: &Target, marks: &Marks, error: &reqwest::Error) -> BrowseError {
        if let Some((_, Err(failure))) = &marks.lookup {
            return self.lookup_failed(target, failure);
        }
        let candidates = target.endpoints(&target.addresses(marks));
        let io_error = std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
            .find_map(|e| e.downcast_ref::<std::io::Error>());
        match io_error.map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) if marks.connected.is_none() => {
                BrowseError::Refused {
                    host: target.host.clone(),
                    addrs: candidates,
                }
            }
            Some(std::io::ErrorKind::TimedOut) if marks.connected.is_none() => {
                BrowseError::ConnectTimeout {
                    addrs: candidates,
                    after: self.timeout,
                }
            }
            _ => BrowseError::Http {
                url: target.url.to_string(),
                reason: root_cause(error),
            },
        }
    }

    fn lookup_failed(&self, target: &Target, failure: &LookupFailure) -> BrowseError {
        let host = target.host.clone();
        let resolver = self.resolver;
        match failure {
            LookupFailure::NxDomain => BrowseError::NxDomain { host, resolver },
            LookupFailure::NoAddress => BrowseError::NoAddress { host, resolver },
            LookupFailure::PortClosed => BrowseError::ResolverDown { host, resolver },
            LookupFailure::Timeout => BrowseError::LookupTimeout {
                host,
                resolver,
                after: self.timeout,
            },
            LookupFailure::Referral { zone } => BrowseError::Lookup {
                host,
                resolver,
                reason: format!(
                    "it sent a referral to the name servers of {zone} instead of an answer; \
                     it is a name server, not a recursive resolver"
                ),
            },
            LookupFailure::Rcode(code) => BrowseError::Lookup {
                host,
                resolver,
                reason: format!("it answered {code}"),
            },
            LookupFailure::BadName(_) | LookupFailure::Other(_) => BrowseError::Lookup {
                host,
                resolver,
                reason: failure.to_string(),
            },
        }
    }

    /// The visit's deadline passed: say which step it was stuck in.
    fn timed_out(&self, target: &Target, marks: &Marks) -> BrowseError {
        let after = self.timeout;
        if target.literal.is_none() && marks.lookup.is_none() {
            return BrowseError::LookupTimeout {
                host: target.host.clone(),
                resolver: self.resolver,
                after,
            };
        }
        let addrs = target.endpoints(&target.addresses(marks));
        if marks.connected.is_none() {
            return BrowseError::ConnectTimeout { addrs, after };
        }
        BrowseError::ResponseTimeout {
            url: target.url.to_string(),
            addrs,
            after,
            got_headers: marks.first_byte.is_some(),
        }
    }
}

/// The innermost error: "connection reset by peer" rather than "error
/// sending request for url (…)".
fn root_cause(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Visit {
    /// Whether the host is a name (looked up) rather than an address.
    fn looked_up(&self) -> bool {
        names_address(&self.host).is_none()
    }
}

/// The address a URL's host names, if it is one (`127.0.0.44`, `[::1]`).
fn names_address(host: &str) -> Option<IpAddr> {
    host.trim_matches(['[', ']']).parse().ok()
}

/// `dnstrail browse`: visit one URL and show it (as text, or with `--json` as
/// one JSON object on stdout), or say in one line on stderr why not. A page
/// that came back with another status than 200 is shown as well as
/// explained. The exit code tells which step failed (see the module
/// documentation).
pub async fn command(args: BrowseArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.timeout.is_zero(),
        "--timeout must be longer than nothing"
    );
    let resolver = args.resolver.with_port(crate::topology::DEFAULT_DNS_PORT);
    let visited = match Browser::new(resolver, args.timeout) {
        Ok(browser) => browser.visit(&args.url).await,
        Err(error) => Err(error),
    };
    let shown = match &visited {
        Ok(visit) => Some(visit),
        Err(BrowseError::Status { visit, .. }) => Some(&**visit),
        Err(_) => None,
    };
    if let Some(visit) = shown {
        if args.json {
            println!("{}", serde_json::to_string(visit)?);
        } else {
            print!("{}", render(visit, resolver));
        }
    }
    match visited {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("dnstrail: {error}");
            Ok(ExitCode::from(error.exit_code()))
        }
    }
}

/// The visit as a terminal shows it: what happened, the page, the timings.
fn render(visit: &Visit, resolver: SocketAddr) -> String {
    let addresses: Vec<String> = visit.addresses.iter().map(ToString::to_string).collect();
    let lookup = if !visit.looked_up() {
        "no lookup: the URL names an address".to_string()
    } else {
        format!(
            "{} = {} (asked resolver {resolver})",
            visit.host,
            addresses.join(", ")
        )
    };
    let mut out = format!(
        "{}  {}\n\
         title   {}\n\
         lookup  {lookup}\n\
         server  {}, {} bytes\n\n",
        status_line(visit.status),
        visit.url,
        visit.title.as_deref().unwrap_or("(none)"),
        visit.addr,
        visit.bytes,
    );
    for line in visit.text.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    let t = &visit.timings;
    let steps = [
        ("DNS lookup", 0, t.dns_us),
        ("connect", t.dns_us, t.connect_us),
        ("first byte", t.connect_us, t.first_byte_us),
        ("content", t.first_byte_us, t.total_us),
    ];
    out.push_str(&format!(
        "\n{:<14}{:>12}{:>12}\n",
        "timings", "took", "done at"
    ));
    for (step, from, to) in steps {
        out.push_str(&format!(
            "  {step:<12}{:>12}{:>12}\n",
            millis(to.saturating_sub(from)),
            millis(to)
        ));
    }
    out.push_str(&format!(
        "  {:<12}{:>12}{:>12}\n",
        "total",
        "",
        millis(t.total_us)
    ));
    out
}

/// `1.234 ms`.
fn millis(us: u64) -> String {
    format!("{}.{:03} ms", us / 1000, us % 1000)
}
