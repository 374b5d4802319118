//! The network panel's clock: when each step of one visit ended.
//!
//! reqwest hides its steps inside one `send()`, so the steps report to a
//! [`Clock`] themselves: the stub resolver when its lookup ends, the
//! [`ConnectTiming`] layer around reqwest's connector when the TCP connection
//! is up, and the visit when the response headers and the last byte arrive.
//! When the visit's deadline passes, the clock also tells how far it got.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tower_layer::Layer;
use tower_service::Service;

use super::stub::LookupFailure;

/// What one visit has done so far, and when.
#[derive(Debug, Default)]
pub(super) struct Clock {
    marks: Mutex<Marks>,
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

impl Clock {
    pub fn marks(&self) -> Marks {
        self.lock().clone()
    }

    pub fn lookup_started(&self) {
        self.lock().lookup_started = Some(Instant::now());
    }

    pub fn lookup_ended(&self, result: Result<Vec<IpAddr>, LookupFailure>) {
        self.lock().lookup = Some((Instant::now(), result));
    }

    pub fn connected(&self) {
        self.lock().connected = Some(Instant::now());
    }

    /// Marks the response headers' arrival, and returns when that was.
    pub fn first_byte(&self) -> Instant {
        let now = Instant::now();
        self.lock().first_byte = Some(now);
        now
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.marks.lock().expect("visit clock lock")
    }
}

/// A tower layer for `reqwest::ClientBuilder::connector_layer`: marks the
/// moment the connector returns a connected socket.
///
/// reqwest's connector resolves the name (through our stub, which marks the
/// lookup's end) and then connects, so the time between the two marks is the
/// TCP connect, as a network panel's "Initial connection" shows it.
#[derive(Clone)]
pub(super) struct ConnectTiming(pub Arc<Clock>);

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
    clock: Arc<Clock>,
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
