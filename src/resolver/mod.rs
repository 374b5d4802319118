//! The caching recursive resolver: the ISP's resolver of the story.
//!
//! ```text
//!  browser ──"www.example.com A?" (RD=1)──► resolver ──► cache
//!     ▲                                        │ miss
//!     │                                        ▼
//!     └──── answer (RA=1, TTLs counting down) ◄── iterate: root → .com → example.com
//! ```
//!
//! Stub clients (the browser, `dig`) ask with RD=1; the resolver answers from
//! its [`cache`] when it can and otherwise walks the hierarchy itself
//! ([`iterate`]), asking each name server with RD=0, choosing among a zone's
//! servers by measured round-trip time ([`servers`]). Every step becomes a
//! [`TraceEvent`], which the demo, `--json`, the
//! control endpoint ([`control`]) and the tests all read.
//!
//! It answers only loopback clients unless told otherwise (`--allow`): an
//! open resolver on a network is an amplifier for attacks.

pub mod cache;
pub mod control;
pub mod iterate;
pub mod metrics;
pub mod servers;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::exchange::Transport;
use crate::listen::DnsSockets;
use crate::serve::{reply, single_question, transport_of};
use crate::topology::DEFAULT_DNS_PORT;
use crate::trace::{Question, RecordView, TraceEvent, TraceSink, Traced, rcode_name};
use crate::zone::{Zone, ZoneError};
use cache::{Cache, Delegation};
use iterate::{Ctx, Outcome};
use metrics::Metrics;
use servers::ServerStats;

/// How many finished resolutions the control endpoint can show.
const RECENT_TRACES: usize = 64;
/// The TTL of a stale answer (RFC 8767 §4 recommends 30 s).
const STALE_TTL: u32 = 30;
/// How long after expiry an answer may still be served stale.
const MAX_STALE: std::time::Duration = std::time::Duration::from_secs(86_400);
/// Client addresses the rate limiter remembers before forgetting idle ones.
const RATE_LIMIT_CLIENTS: usize = 10_000;

/// How the resolver behaves; every field has a command-line flag.
#[derive(Debug, Clone)]
pub struct Config {
    /// The port every upstream name server is asked on: glue and hints
    /// carry addresses only.
    pub upstream_port: u16,
    /// Show each server only the labels it needs (RFC 9156).
    pub qname_minimization: bool,
    /// Networks whose clients are answered, besides loopback.
    pub allow: Vec<IpNet>,
    /// Most entries the cache holds.
    pub cache_size: usize,
    /// When every server fails, answer with an expired RRset (RFC 8767).
    pub serve_stale: bool,
    /// Questions per second one client address may ask (0: no limit).
    pub rate_limit: u32,
    /// Upstream questions in flight at once, over all clients.
    pub max_outstanding: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            upstream_port: DEFAULT_DNS_PORT,
            qname_minimization: false,
            allow: Vec::new(),
            cache_size: 100_000,
            serve_stale: false,
            rate_limit: 0,
            max_outstanding: 256,
        }
    }
}

/// One client question's resolution, as the control endpoint lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub id: u64,
    pub client: SocketAddr,
    pub question: Question,
    pub rcode: String,
    /// Shared with the [`Answered`] it produced: recorded once, not copied.
    pub events: Arc<Vec<Traced>>,
}

/// The resolver's answer to one client question, with its trace.
#[derive(Debug, Clone)]
pub struct Answered {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub events: Arc<Vec<Traced>>,
}

/// Everything the resolver knows and shares between requests.
pub struct Core {
    config: Config,
    cache: Cache,
    servers: ServerStats,
    hints: Delegation,
    sink: TraceSink,
    metrics: Metrics,
    recent: Mutex<VecDeque<Resolution>>,
    next_id: AtomicU64,
    /// Questions being resolved now, so that the same question from another
    /// client waits for that resolution instead of starting its own.
    in_flight: Mutex<HashMap<FlightKey, Flight>>,
    /// Bounds the upstream questions in flight at once.
    upstream_slots: Semaphore,
    /// Per-client token buckets, when rate limiting is on.
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

type FlightKey = (LowerName, RecordType);
/// A resolution in flight: where its outcome will be sent, and its id.
type Flight = (broadcast::Sender<Arc<Outcome>>, u64);

/// A client's allowance: `tokens` questions, refilled at the rate limit.
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Takes a question out of the in-flight table however its resolution
/// ends, so waiting clients are never left hanging.
struct FlightGuard<'a> {
    core: &'a Core,
    key: FlightKey,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.core
            .in_flight
            .lock()
            .expect("in-flight lock")
            .remove(&self.key);
    }
}

/// A handle on a resolver; clones share one cache.
#[derive(Clone)]
pub struct Resolver {
    core: Arc<Core>,
}

/// Read a root hints file: the root's NS records and their addresses.
pub fn load_hints(path: impl AsRef<Path>) -> Result<Delegation, ZoneError> {
    let path = path.as_ref();
    let records = Zone::load_records(path)?;
    let problem = |reason: &str| ZoneError {
        file: path.to_path_buf(),
        line: None,
        reason: reason.to_string(),
    };
    let ns: Vec<Record> = records
        .iter()
        .filter(|r| r.record_type() == RecordType::NS && r.name.is_root())
        .cloned()
        .collect();
    if ns.is_empty() {
        return Err(problem("no NS records for the root (.)"));
    }
    let glue: Vec<Record> = records
        .into_iter()
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .collect();
    if glue.is_empty() {
        return Err(problem("no addresses (A or AAAA) for the root servers"));
    }
    Ok(Delegation {
        zone: Name::root(),
        ns,
        glue,
        learned_from: Vec::new(),
    })
}

impl Resolver {
    pub fn new(config: Config, hints: Delegation, clock: Clock) -> Resolver {
        let slots = config.max_outstanding.max(1);
        Resolver {
            core: Arc::new(Core {
                cache: Cache::new(config.cache_size, clock),
                servers: ServerStats::new(),
                hints,
                sink: TraceSink::new(),
                metrics: Metrics::default(),
                recent: Mutex::new(VecDeque::with_capacity(RECENT_TRACES)),
                next_id: AtomicU64::new(1),
                in_flight: Mutex::new(HashMap::new()),
                config,
                upstream_slots: Semaphore::new(slots),
                buckets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Where trace events go: subscribe to watch resolutions as they happen.
    pub fn trace(&self) -> &TraceSink {
        &self.core.sink
    }

    /// The clock TTLs count down by; advance it to age the cache.
    pub fn clock(&self) -> &Clock {
        self.core.cache.clock()
    }

    pub fn cache(&self) -> &Cache {
        &self.core.cache
    }

    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// The most recent resolutions, oldest first.
    pub fn recent(&self) -> Vec<Resolution> {
        self.core
            .recent
            .lock()
            .expect("recent traces lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Whether a client at `ip` may use this resolver.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_loopback() || self.core.config.allow.iter().any(|net| net.contains(&ip))
    }

    /// Answer one client question: what the DNS front end does for each
    /// request, callable directly by tests.
    pub async fn answer(
        &self,
        client: SocketAddr,
        transport: Transport,
        name: &Name,
        rtype: RecordType,
        recursion_desired: bool,
    ) -> Answered {
        let core = &*self.core;
        let started = Instant::now();
        let id = core.next_id.fetch_add(1, Ordering::Relaxed);
        let mut ctx = Ctx::new(id);
        let question = Question::new(name, rtype);
        core.metrics.query();
        core.emit(
            &mut ctx,
            TraceEvent::QuestionReceived {
                client,
                question: question.clone(),
                transport,
            },
        );
        let outcome = if !self.is_allowed(client.ip()) {
            Outcome::new(ResponseCode::Refused, Vec::new(), Vec::new())
        } else if self.over_rate_limit(client.ip()) {
            Outcome {
                failure: Some(format!("{} is over the rate limit", client.ip())),
                ..Outcome::new(ResponseCode::Refused, Vec::new(), Vec::new())
            }
        } else if recursion_desired {
            self.resolve_once(&mut ctx, name, rtype).await
        } else {
            self.answer_from_cache(name, rtype)
        };
        let upstream_queries = ctx.upstream_queries;
        core.emit(
            &mut ctx,
            TraceEvent::AnswerReturned {
                question: question.clone(),
                rcode: rcode_name(outcome.rcode),
                records: outcome.answers.iter().map(RecordView::from).collect(),
                upstream_queries,
                failure: outcome.failure.clone(),
                elapsed_us: started.elapsed().as_micros() as u64,
            },
        );
        core.metrics.response(outcome.rcode, started.elapsed());
        let events = Arc::new(ctx.events);
        {
            let mut recent = core.recent.lock().expect("recent traces lock");
            if recent.len() == RECENT_TRACES {
                recent.pop_front();
            }
            recent.push_back(Resolution {
                id,
                client,
                question,
                rcode: rcode_name(outcome.rcode),
                events: events.clone(),
            });
        }
        Answered {
            rcode: outcome.rcode,
            answers: outcome.answers,
            authorities: outcome.authorities,
            events,
        }
    }

    /// Resolve, unless the same question is already being resolved: then
    /// wait for that resolution's outcome (one upstream walk serves all).
    async fn resolve_once(&self, ctx: &mut Ctx, name: &Name, rtype: RecordType) -> Outcome {
        let core = &*self.core;
        let key = (LowerName::new(name), rtype);
        let joined = {
            let mut flights = core.in_flight.lock().expect("in-flight lock");
            match flights.get(&key) {
                Some((sender, leader)) => Some((sender.subscribe(), *leader)),
                None => {
                    flights.insert(key.clone(), (broadcast::channel(1).0, ctx.id));
                    None
                }
            }
        };
        if let Some((mut waiting, leader)) = joined {
            core.emit(
                ctx,
                TraceEvent::JoinedInFlight {
                    question: Question::new(name, rtype),
                    resolution: leader,
                },
            );
            if let Ok(outcome) = waiting.recv().await {
                return (*outcome).clone();
            }
            // The other resolution ended without an outcome: do our own.
            return core.resolve(ctx, name, rtype).await;
        }

        let guard = FlightGuard {
            core,
            key: key.clone(),
        };
        let mut outcome = core.resolve(ctx, name, rtype).await;
        if outcome.rcode == ResponseCode::ServFail && core.config.serve_stale {
            outcome = self.stale(ctx, name, rtype).unwrap_or(outcome);
        }
        let sender = core
            .in_flight
            .lock()
            .expect("in-flight lock")
            .get(&key)
            .map(|(sender, _)| sender.clone());
        drop(guard);
        if let Some(sender) = sender {
            let _ = sender.send(Arc::new(outcome.clone()));
        }
        outcome
    }

    /// Serve-stale (RFC 8767): an expired answer, with a short TTL, when
    /// nothing fresher can be had.
    fn stale(&self, ctx: &mut Ctx, name: &Name, rtype: RecordType) -> Option<Outcome> {
        let (records, expired_for) =
            self.core
                .cache
                .stale_answer(&LowerName::new(name), rtype, MAX_STALE, STALE_TTL)?;
        self.core.emit(
            ctx,
            TraceEvent::ServedStale {
                question: Question::new(name, rtype),
                records: records.iter().map(RecordView::from).collect(),
                expired_for,
            },
        );
        Some(Outcome::new(ResponseCode::NoError, records, Vec::new()))
    }

    /// Whether this client has used up its questions for now.
    fn over_rate_limit(&self, ip: IpAddr) -> bool {
        let rate = self.core.config.rate_limit;
        if rate == 0 {
            return false;
        }
        let now = Instant::now();
        let mut buckets = self.core.buckets.lock().expect("rate limit lock");
        if buckets.len() >= RATE_LIMIT_CLIENTS {
            buckets.retain(|_, b| now.duration_since(b.last).as_secs() < 1);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: f64::from(rate),
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * f64::from(rate);
        bucket.tokens = (bucket.tokens + refill).min(f64::from(rate));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            false
        } else {
            true
        }
    }

    /// RD=0: the client wants what we know, not a resolution. Answer from
    /// the cache, or refer it to the closest name servers we know, as BIND
    /// does.
    fn answer_from_cache(&self, name: &Name, rtype: RecordType) -> Outcome {
        let lower = LowerName::new(name);
        let cache = &self.core.cache;
        if let Some(hit) = cache.answer(&lower, rtype) {
            return Outcome::new(ResponseCode::NoError, hit.value, Vec::new());
        }
        if let Some(hit) = cache.negative(&lower, rtype) {
            let rcode = if hit.value.nxdomain {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            return Outcome::new(rcode, Vec::new(), hit.value.soa.into_iter().collect());
        }
        let closest = cache
            .closest_delegation(&lower)
            .map_or_else(|| self.core.hints.ns.clone(), |hit| hit.value.ns);
        Outcome::new(ResponseCode::NoError, Vec::new(), closest)
    }
}

/// Serve stub clients on already-bound sockets until `shutdown`.
pub async fn run(
    resolver: Resolver,
    sockets: Vec<DnsSockets>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Answers change as TTLs count down: nothing is replayed.
    crate::serve::run(resolver, sockets, crate::serve::Answers::Fresh, shutdown).await
}

#[async_trait::async_trait]
impl RequestHandler for Resolver {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let answered = match single_question(request) {
            Ok(query) => Ok(self
                .answer(
                    request.src(),
                    transport_of(request),
                    &Name::from(query.name()),
                    query.query_type(),
                    request.metadata.recursion_desired,
                )
                .await),
            Err(code) => Err(code),
        };
        let sections = match &answered {
            Ok(answered) => {
                metadata.response_code = answered.rcode;
                Ok([&answered.answers[..], &answered.authorities[..], &[][..]])
            }
            Err(code) => Err(*code),
        };
        reply(request, response_handle, metadata, sections).await
    }
}

/// The addresses in a set of records, for tests and the demo.
pub fn addresses(records: &[Record]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}
