//! The network panel's clock: when each step of one visit ended, told to
//! the trace as it happens.
//!
//! reqwest hides its steps inside one `send()`, so the steps report to a
//! [`VisitClock`] themselves: the stub resolver when its lookup starts and
//! ends ([`VisitResolver`], reqwest's resolver), the [`ConnectTiming`] layer
//! around reqwest's connector when the TCP connection is up, and the visit
//! when the response headers and the last byte arrive. When the visit's
//! deadline passes, the clock also tells how far it got. With a trace sink,
//! each step is also an event, stamped the moment it happens.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hickory_proto::rr::RecordType;
use tower_layer::Layer;
use tower_service::Service;

use super::stub::{LookupFailure, StubResolver};
use crate::trace::{TraceEvent, TraceSink};

/// What one visit has done so far, and when; and where to tell it.
#[derive(Default)]
pub(super) struct VisitClock {
    marks: Mutex<Marks>,
    told: Option<Told>,
}

/// Where a visit's steps are told, and what they are about.
pub(super) struct Told {
    pub sink: TraceSink,
    pub resolver: SocketAddr,
    pub url: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Marks {
    pub lookup_started: Option<Instant>,
    /// When the stub resolver's lookup ended, and what it found.
    pub lookup: Option<(Instant, Result<Vec<IpAddr>, LookupFailure>)>,
    /// When reqwest's connector handed over a connected socket.
    pub connected: Option<Instant>,
    /// When the response headers arrived.
    pub first_byte: Option<Instant>,
}

impl VisitClock {
    pub fn new(told: Option<Told>) -> VisitClock {
        VisitClock {
            marks: Mutex::default(),
            told,
        }
    }

    fn tell(&self, event: impl FnOnce(&Told) -> TraceEvent) {
        if let Some(told) = &self.told {
            told.sink.emit(0, event(told));
        }
    }

    pub fn marks(&self) -> Marks {
        self.lock().clone()
    }

    pub fn lookup_started(&self, host: &str, types: &[RecordType]) {
        self.lock().lookup_started = Some(Instant::now());
        self.tell(|told| TraceEvent::BrowserQuery {
            host: host.to_string(),
            resolver: told.resolver,
            types: types.to_vec(),
        });
    }

    pub fn lookup_ended(&self, host: &str, result: Result<Vec<IpAddr>, LookupFailure>) {
        let now = Instant::now();
        let mut marks = self.lock();
        let took = marks
            .lookup_started
            .map_or(0, |t| now.duration_since(t).as_micros() as u64);
        marks.lookup = Some((now, result.clone()));
        drop(marks);
        self.tell(|told| TraceEvent::BrowserLookup {
            host: host.to_string(),
            resolver: told.resolver,
            addresses: result.clone().unwrap_or_default(),
            error: result.as_ref().err().map(ToString::to_string),
            elapsed_us: took,
        });
    }

    pub fn connected(&self) {
        let mut marks = self.lock();
        marks.connected = Some(Instant::now());
        // The first address found is the one reqwest tries first.
        let ip = match &marks.lookup {
            Some((_, Ok(found))) => found.first().copied(),
            _ => None,
        };
        drop(marks);
        self.tell(|told| TraceEvent::HttpRequest {
            method: "GET".into(),
            url: told.url.clone(),
            addr: SocketAddr::new(
                ip.unwrap_or_else(|| literal_ip(&told.url).unwrap_or(IpAddr::from([0, 0, 0, 0]))),
                told.port,
            ),
        });
    }

    /// The page has come, whole: tell it.
    pub fn page_arrived(&self, status: u16, title: Option<String>, bytes: usize, elapsed_us: u64) {
        self.tell(|_| TraceEvent::HttpResponse {
            status,
            title,
            bytes,
            elapsed_us,
        });
    }

    /// Marks the response headers' arrival, and returns when that was.
    pub fn first_byte(&self) -> Instant {
        let now = Instant::now();
        self.lock().first_byte = Some(now);
        now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The address a URL names instead of a host, if it does.
fn literal_ip(url: &str) -> Option<IpAddr> {
    let host = reqwest::Url::parse(url).ok()?.host_str()?.to_string();
    host.trim_matches(['[', ']']).parse().ok()
}

/// The stub as reqwest's resolver for one visit: each lookup reports its
/// start, end and outcome to the visit's clock.
pub(super) struct VisitResolver {
    pub stub: StubResolver,
    pub clock: Arc<VisitClock>,
}

impl reqwest::dns::Resolve for VisitResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let stub = self.stub.clone();
        let clock = self.clock.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            clock.lookup_started(&host, &[RecordType::A, RecordType::AAAA]);
            let found = stub.addresses_of(&host).await;
            clock.lookup_ended(&host, found.clone());
            // Port 0: reqwest puts in the URL's port.
            let addrs: reqwest::dns::Addrs =
                Box::new(found?.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A tower layer for `reqwest::ClientBuilder::connector_layer`: marks the
/// moment the connector returns a connected socket.
///
/// reqwest's connector resolves the name (through our stub, which marks the
/// lookup's end) and then connects, so the time between the two marks is the
/// TCP connect, as a network panel's "Initial connection" shows it.
#[derive(Clone)]
pub(super) struct ConnectTiming(pub Arc<VisitClock>);

impl<S> Layer<S> for ConnectTiming {
    type Service = TimedConnector<S>;

    fn layer(&self, inner: S) -> TimedConnector<S> {
        TimedConnector {
            inner,
            clock: self.0.clone(),
        }
    }
}

/// reqwest's connector, and a clock to mark when it has connected.
///
/// Generic over the request type: reqwest's is deliberately unnameable.
#[derive(Clone)]
pub(super) struct TimedConnector<S> {
    inner: S,
    clock: Arc<VisitClock>,
}

impl<S, Request> Service<Request> for TimedConnector<S>
where
    S: Service<Request>,
    S::Future: Send + 'static,
    S::Response: 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let connecting = self.inner.call(request);
        let clock = self.clock.clone();
        Box::pin(async move {
            let connection = connecting.await?;
            clock.connected();
            Ok(connection)
        })
    }
}
