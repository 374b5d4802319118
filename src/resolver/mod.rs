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
//! ([`walk`]), asking each name server with RD=0 ([`upstream`]: the name in
//! random case, a DNS cookie, within a share of the [`slots`] per zone),
//! choosing among a zone's servers by measured round-trip time
//! ([`servers`]). Every step becomes a
//! [`TraceEvent`], which the demo, `--json`, the
//! control endpoint ([`crate::control`]) and the tests all read.
//!
//! It answers only loopback clients unless told otherwise (`--allow`): an
//! open resolver on a network is an amplifier for attacks. Every SERVFAIL
//! and stale answer says why in an Extended DNS Error ([`failure`],
//! RFC 8914), for clients that send EDNS.

pub mod cache;
pub mod classify;
pub mod failure;
pub mod metrics;
pub mod msgcache;
pub mod servers;
pub mod slots;
pub mod upstream;
pub mod validation;
pub mod walk;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::dns::Transport;
use crate::listen::DnsSockets;
use crate::serve::{ExtendedError, Quick, Reply, Request, Responder, ServeOptions};
use crate::topology::DEFAULT_DNS_PORT;
use crate::trace::{CacheKind, Question, RecordView, TraceEvent, TraceSink, Traced};
use crate::zone::{Zone, ZoneError};
use cache::{Cache, DEFAULT_MAX_ANSWER_TTL, Delegation};
use failure::{Failure, FailureKind};
use metrics::Metrics;
use msgcache::MessageCache;
use servers::ServerStats;
use slots::UpstreamSlots;
use walk::{Resolved, Trail, Walk};

/// How many finished resolutions the control endpoint can show.
const RECENT_TRACES: usize = 64;
/// The TTL of a stale answer (RFC 8767 §4 recommends 30 s).
const STALE_TTL: u32 = 30;
/// How long after expiry an answer may still be served stale.
const MAX_STALE: std::time::Duration = std::time::Duration::from_secs(86_400);

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
    /// Most entries the cache holds; a quarter of them at most denials
    /// and failures (see [`cache`]).
    pub cache_size: usize,
    /// When every server fails, answer with an expired RRset (RFC 8767).
    pub serve_stale: bool,
    /// Upstream questions in flight at once, over all clients; a quarter
    /// of them at most to any one zone's servers.
    pub max_outstanding: usize,
    /// Where the server choices' randomness comes from (`--seed`): the same
    /// seed, the same choices.
    pub seed: u64,
    /// Servers to try before any other the resolver knows nothing about.
    pub first_choice: Vec<IpAddr>,
    /// The longest an answer or denial is cached, whatever its TTL
    /// (`--max-ttl`; Unbound's cache-max-ttl).
    pub max_ttl: u32,
    /// The shortest (`--min-ttl`; 0 keeps TTL-0 records out of the cache).
    pub min_ttl: u32,
    /// Validate with these anchors (`--trust-anchor`): DNSSEC on.
    pub trust_anchors: Option<Arc<crate::dnssec::TrustAnchors>>,
    /// Send each question's name upstream in random case, and take only an
    /// answer that echoes it (0x20; off with `--no-0x20`).
    pub mixed_case: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            upstream_port: DEFAULT_DNS_PORT,
            qname_minimization: false,
            allow: Vec::new(),
            cache_size: 100_000,
            serve_stale: false,
            max_outstanding: 256,
            seed: rand::random(),
            first_choice: Vec::new(),
            max_ttl: DEFAULT_MAX_ANSWER_TTL,
            min_ttl: 0,
            trust_anchors: None,
            mixed_case: true,
        }
    }
}

/// One client question's resolution, as the control endpoint lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub id: u64,
    pub client: SocketAddr,
    pub question: Question,
    #[serde(serialize_with = "crate::trace::serialize_rcode")]
    pub rcode: ResponseCode,
    /// Shared with the [`Answered`] it produced: recorded once, not copied.
    pub events: Arc<Vec<Arc<Traced>>>,
}

/// A resolution as it is kept among the recent ones: whole, or, for a
/// reply replayed from the message cache, a compact note from which its
/// events are told only when someone asks for them (`/traces`).
#[derive(Debug, Clone)]
enum Recent {
    Whole(Resolution),
    Replayed {
        id: u64,
        client: SocketAddr,
        transport: Transport,
        at_us: u64,
        elapsed_us: u64,
        aged: u32,
        remembered: Arc<msgcache::Remembered>,
    },
}

impl Recent {
    /// The resolution, its events told if they were not yet.
    fn told(&self) -> Resolution {
        match self {
            Recent::Whole(resolution) => resolution.clone(),
            Recent::Replayed {
                id,
                client,
                transport,
                at_us,
                elapsed_us,
                aged,
                remembered,
            } => Resolution {
                id: *id,
                client: *client,
                question: remembered.question.clone(),
                rcode: remembered.rcode,
                events: Arc::new(
                    replayed_events(*client, *transport, *elapsed_us, *aged, remembered)
                        .into_iter()
                        .map(|event| {
                            Arc::new(Traced {
                                seq: 0,
                                resolution: *id,
                                at_us: *at_us,
                                event,
                            })
                        })
                        .collect(),
                ),
            },
        }
    }
}

/// The events of a reply replayed from the message cache: the question,
/// the cache's answer, the reply.
fn replayed_events(
    client: SocketAddr,
    transport: Transport,
    elapsed_us: u64,
    aged: u32,
    remembered: &msgcache::Remembered,
) -> Vec<TraceEvent> {
    let records: Vec<RecordView> = remembered
        .records
        .iter()
        .map(|r| RecordView {
            ttl: r.ttl.saturating_sub(aged),
            ..r.clone()
        })
        .collect();
    let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
    let question = remembered.question.clone();
    let hit = if remembered.negative {
        TraceEvent::CacheNegativeHit {
            question: question.clone(),
            rcode: remembered.rcode,
            ttl,
        }
    } else {
        TraceEvent::CacheAnswerHit {
            question: question.clone(),
            records: records.clone(),
        }
    };
    vec![
        TraceEvent::QuestionReceived {
            client,
            question: question.clone(),
            transport,
        },
        hit,
        TraceEvent::AnswerReturned {
            question,
            rcode: remembered.rcode,
            records: if remembered.negative {
                Vec::new()
            } else {
                records
            },
            upstream_queries: 0,
            failure: None,
            elapsed_us,
            authentic: remembered.authentic,
            ede: None,
        },
    ]
}

/// The resolver's answer to one client question, with its trace.
#[derive(Debug, Clone)]
pub struct Answered {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub failure: Option<String>,
    /// What the client is told beside the rcode (RFC 8914): why a SERVFAIL,
    /// that an answer is stale.
    pub extended_error: Option<ExtendedError>,
    /// Validated as secure (DNSSEC): the AD bit, for clients that want it.
    pub authentic: bool,
    pub events: Arc<Vec<Arc<Traced>>>,
}

/// Everything the resolver knows and shares between requests.
struct Shared {
    config: Config,
    cache: Cache,
    servers: ServerStats,
    hints: Delegation,
    sink: TraceSink,
    metrics: Metrics,
    /// Whole replies, encoded once: the hot path.
    messages: MessageCache,
    recent: Mutex<VecDeque<Recent>>,
    next_id: AtomicU64,
    /// Questions being resolved now, so that the same question from another
    /// client waits for that resolution instead of starting its own.
    in_flight: Mutex<HashMap<FlightKey, Flight>>,
    /// Bounds the upstream questions in flight at once, in all and per zone.
    upstream_slots: UpstreamSlots,
    /// The addresses the resolver serves clients on, learned when it starts
    /// serving: never to be asked as a name server (a loop to itself).
    own_addrs: Mutex<Vec<SocketAddr>>,
}

type FlightKey = (LowerName, RecordType);
/// A resolution in flight: where its result will be sent, and its id.
type Flight = (broadcast::Sender<Arc<Resolved>>, u64);

/// Takes a question out of the in-flight table however its resolution
/// ends, so waiting clients are never left hanging.
struct FlightGuard<'a> {
    shared: &'a Shared,
    key: FlightKey,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// A handle on a resolver; clones share one cache.
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Shared>,
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
    /// A resolver with a trace sink of its own.
    pub fn new(config: Config, hints: Delegation, clock: Clock) -> Resolver {
        Resolver::with_trace(config, hints, clock, TraceSink::new())
    }

    /// A resolver that tells its events to `sink` (shared with the rest of
    /// a stack, so that every role's events are on one clock).
    pub fn with_trace(
        config: Config,
        hints: Delegation,
        clock: Clock,
        sink: TraceSink,
    ) -> Resolver {
        let slots = UpstreamSlots::new(config.max_outstanding);
        Resolver {
            shared: Arc::new(Shared {
                cache: Cache::new(config.cache_size, clock)
                    .with_ttl_limits(config.min_ttl, config.max_ttl),
                servers: ServerStats::new(config.seed, config.first_choice.clone()),
                hints,
                sink,
                metrics: Metrics::default(),
                messages: MessageCache::default(),
                recent: Mutex::new(VecDeque::with_capacity(RECENT_TRACES)),
                next_id: AtomicU64::new(1),
                in_flight: Mutex::new(HashMap::new()),
                config,
                upstream_slots: slots,
                own_addrs: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Where trace events go: subscribe to watch resolutions as they happen.
    pub fn trace(&self) -> &TraceSink {
        &self.shared.sink
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The clock TTLs count down by; advance it to age the cache.
    pub fn clock(&self) -> &Clock {
        self.shared.cache.clock()
    }

    pub fn cache(&self) -> &Cache {
        &self.shared.cache
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The most recent resolutions, oldest first.
    pub fn recent(&self) -> Vec<Resolution> {
        let kept: Vec<Recent> = self
            .shared
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        kept.iter().map(Recent::told).collect()
    }

    fn keep_recent(&self, recent: Recent) {
        let mut kept = self.shared.recent.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() == RECENT_TRACES {
            kept.pop_front();
        }
        kept.push_back(recent);
    }

    /// Whether a client at `ip` may use this resolver.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_loopback() || self.shared.config.allow.iter().any(|net| net.contains(&ip))
    }

    /// The addresses this resolver serves clients on.
    pub fn own_addrs(&self) -> Vec<SocketAddr> {
        self.shared
            .own_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tell the resolver where it serves clients, so that no referral can
    /// make it ask itself ([`run`] does this).
    pub fn serving_on(&self, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.shared
            .own_addrs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(addrs);
    }

    /// A walk for one question, borrowing what it needs from the resolver.
    fn walk(&self, trail: Trail, checking_disabled: bool) -> Walk<'_> {
        let shared = &*self.shared;
        Walk {
            cache: &shared.cache,
            servers: &shared.servers,
            metrics: &shared.metrics,
            config: &shared.config,
            hints: &shared.hints,
            upstream_slots: &shared.upstream_slots,
            own_addrs: self.own_addrs(),
            checking_disabled,
            trail,
        }
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
        self.answer_checking(client, transport, name, rtype, recursion_desired, false)
            .await
    }

    /// [`Resolver::answer`], for a client that may have set CD=1: its
    /// answer is not validated (RFC 4035 §3.2.2).
    pub async fn answer_checking(
        &self,
        client: SocketAddr,
        transport: Transport,
        name: &Name,
        rtype: RecordType,
        recursion_desired: bool,
        checking_disabled: bool,
    ) -> Answered {
        let shared = &*self.shared;
        let started = Instant::now();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut trail = Trail::new(id, shared.sink.clone());
        let question = Question::new(name, rtype);
        shared.metrics.query();
        trail.emit(TraceEvent::QuestionReceived {
            client,
            question: question.clone(),
            transport,
        });
        let resolved = if !self.is_allowed(client.ip()) {
            Resolved {
                failure: Some(Failure::new(
                    FailureKind::Prohibited,
                    format!(
                        "{} is not allowed to use this resolver (--allow)",
                        client.ip()
                    ),
                )),
                ..Resolved::new(ResponseCode::Refused, Vec::new(), Vec::new())
            }
        } else if matches!(rtype, RecordType::AXFR | RecordType::IXFR) {
            // A zone is transferred from its own servers; a resolver has
            // no zone to give, and refuses as Unbound does.
            Resolved {
                failure: Some(Failure::new(
                    FailureKind::NotSupported,
                    format!(
                        "a resolver does not transfer zones: ask a server of the zone for {}",
                        crate::trace::rtype_name(rtype)
                    ),
                )),
                ..Resolved::new(ResponseCode::Refused, Vec::new(), Vec::new())
            }
        } else if recursion_desired {
            self.resolve_once(&mut trail, name, rtype, checking_disabled)
                .await
        } else {
            self.answer_from_cache(name, rtype)
        };
        let upstream_queries = trail.upstream_queries;
        let authentic = shared.config.trust_anchors.is_some()
            && !checking_disabled
            && validation::authentic(resolved.rcode, &resolved.answers, &resolved.authorities);
        let extended_error = resolved.extended_error();
        trail.emit(TraceEvent::AnswerReturned {
            question: question.clone(),
            rcode: resolved.rcode,
            records: resolved.answers.iter().map(RecordView::from).collect(),
            upstream_queries,
            failure: resolved.failure.as_ref().map(|f| f.reason.clone()),
            elapsed_us: started.elapsed().as_micros() as u64,
            authentic,
            ede: extended_error.as_ref().map(|e| e.code),
        });
        shared.metrics.response(resolved.rcode, started.elapsed());
        let events = Arc::new(trail.events);
        self.keep_recent(Recent::Whole(Resolution {
            id,
            client,
            question,
            rcode: resolved.rcode,
            events: events.clone(),
        }));
        Answered {
            rcode: resolved.rcode,
            extended_error,
            authentic,
            answers: resolved.answers,
            authorities: resolved.authorities,
            failure: resolved.failure.map(|f| f.reason),
            events,
        }
    }

    /// Resolve, unless the same question is already being resolved: then
    /// wait for that resolution's result (one upstream walk serves all).
    async fn resolve_once(
        &self,
        trail: &mut Trail,
        name: &Name,
        rtype: RecordType,
        checking_disabled: bool,
    ) -> Resolved {
        let shared = &*self.shared;
        if checking_disabled {
            // Unchecked answers are not shared with clients that want them
            // checked.
            return self.resolve_with(trail, name, rtype, true).await;
        }
        let key = (LowerName::new(name), rtype);
        let joined = {
            let mut flights = shared.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(&key) {
                Some((sender, leader)) => Some((sender.subscribe(), *leader)),
                None => {
                    flights.insert(key.clone(), (broadcast::channel(1).0, trail.id));
                    None
                }
            }
        };
        if let Some((mut waiting, leader)) = joined {
            trail.emit(TraceEvent::JoinedInFlight {
                question: Question::new(name, rtype),
                resolution: leader,
            });
            if let Ok(resolved) = waiting.recv().await {
                return (*resolved).clone();
            }
            // The other resolution ended without a result: do our own.
            return self.resolve_with(trail, name, rtype, false).await;
        }

        let guard = FlightGuard {
            shared,
            key: key.clone(),
        };
        let mut resolved = self.resolve_with(trail, name, rtype, false).await;
        if resolved.rcode == ResponseCode::ServFail && shared.config.serve_stale {
            resolved = self.stale(trail, name, rtype).unwrap_or(resolved);
        }
        let sender = shared
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .map(|(sender, _)| sender.clone());
        drop(guard);
        if let Some(sender) = sender {
            let _ = sender.send(Arc::new(resolved.clone()));
        }
        resolved
    }

    /// Walk for this question, with `trail` lent to the walk and given back.
    async fn resolve_with(
        &self,
        trail: &mut Trail,
        name: &Name,
        rtype: RecordType,
        checking_disabled: bool,
    ) -> Resolved {
        let lent = std::mem::replace(trail, Trail::new(trail.id, self.shared.sink.clone()));
        let mut walk = self.walk(lent, checking_disabled);
        let resolved = walk.resolve(name, rtype).await;
        *trail = walk.trail;
        resolved
    }

    /// Serve-stale (RFC 8767): an expired answer, with a short TTL, when
    /// nothing fresher can be had.
    fn stale(&self, trail: &mut Trail, name: &Name, rtype: RecordType) -> Option<Resolved> {
        let (records, expired_for) =
            self.shared
                .cache
                .stale_answer(&LowerName::new(name), rtype, MAX_STALE, STALE_TTL)?;
        trail.emit(TraceEvent::ServedStale {
            question: Question::new(name, rtype),
            records: records.iter().map(RecordView::from).collect(),
            expired_for,
        });
        Some(Resolved {
            stale_for: Some(expired_for),
            ..Resolved::new(ResponseCode::NoError, records, Vec::new())
        })
    }

    /// RD=0: the client wants what we know, not a resolution. Answer from
    /// the cache, or refer it to the closest name servers we know, as BIND
    /// does.
    fn answer_from_cache(&self, name: &Name, rtype: RecordType) -> Resolved {
        let lower = LowerName::new(name);
        let cache = &self.shared.cache;
        if let Some(hit) = cache.answer(&lower, rtype) {
            return Resolved::new(ResponseCode::NoError, hit.value, Vec::new());
        }
        if let Some(hit) = cache.negative(&lower, rtype) {
            let rcode = if hit.value.nxdomain {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            let authorities = hit
                .value
                .soa
                .into_iter()
                .chain(hit.value.ns)
                .chain(hit.value.dnssec)
                .collect();
            return Resolved::new(rcode, Vec::new(), authorities);
        }
        let closest = cache
            .closest_delegation(&lower)
            .map_or_else(|| self.shared.hints.ns.clone(), |hit| hit.value.ns);
        Resolved::new(ResponseCode::NoError, Vec::new(), closest)
    }
}

/// Serve stub clients on already-bound sockets until `shutdown`. The
/// resolver learns its own addresses when this is called, before the first
/// client is served, so that no referral can make it ask itself.
pub fn run(
    resolver: Resolver,
    sockets: Vec<DnsSockets>,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
    resolver.serving_on(sockets.iter().map(DnsSockets::local_addr));
    crate::serve::run(resolver, sockets, options, shutdown)
}

impl Responder for Resolver {
    /// A reply from the message cache, TTLs counted down, told in the trace
    /// (at once if anyone watches, else when someone asks).
    fn answer_now(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Option<Quick> {
        let shared = &*self.shared;
        if !self.is_allowed(src.ip()) {
            return None;
        }
        let started = Instant::now();
        let now = shared.cache.clock().now();
        let replayed =
            shared
                .messages
                .replay(transport, query, now, shared.cache.generation(), out)?;
        let elapsed = started.elapsed();
        let remembered = &replayed.remembered;
        shared.metrics.query();
        shared.metrics.cache_hit(if remembered.negative {
            CacheKind::Negative
        } else {
            CacheKind::Answer
        });
        shared.metrics.response(remembered.rcode, elapsed);
        shared.metrics.replayed();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let elapsed_us = elapsed.as_micros() as u64;
        if shared.sink.has_subscribers() {
            // Someone watches: tell it now, as any resolution is told.
            let mut trail = Trail::new(id, shared.sink.clone());
            for event in replayed_events(src, transport, elapsed_us, replayed.aged, remembered) {
                trail.emit(event);
            }
            self.keep_recent(Recent::Whole(Resolution {
                id,
                client: src,
                question: remembered.question.clone(),
                rcode: remembered.rcode,
                events: Arc::new(trail.events),
            }));
        } else {
            self.keep_recent(Recent::Replayed {
                id,
                client: src,
                transport,
                at_us: shared.sink.now_us(),
                elapsed_us,
                aged: replayed.aged,
                remembered: replayed.remembered.clone(),
            });
        }
        Some(replayed.quick)
    }

    /// Keep a plain answer to a recursive question for the hot path.
    fn answered(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
        reply: &Reply,
        encoded: &[u8],
    ) {
        let recursive = query.get(2).is_some_and(|flags| flags & 0x01 != 0);
        let plain = recursive
            && self.is_allowed(src.ip())
            && matches!(reply.rcode, ResponseCode::NoError | ResponseCode::NXDomain)
            && reply.extended_error.is_none()
            && !reply.truncated;
        let Some(question) = plain
            .then(|| hickory_proto::op::Message::from_vec(query).ok())
            .flatten()
            .and_then(|m| m.queries.into_iter().next())
        else {
            return;
        };
        let negative = reply.answers.is_empty() || reply.rcode == ResponseCode::NXDomain;
        let remembered = msgcache::Remembered {
            question: Question::new(question.name(), question.query_type()),
            rcode: reply.rcode,
            records: reply.answers.iter().map(RecordView::from).collect(),
            negative,
            authentic: reply.authentic_data,
        };
        let shared = &*self.shared;
        shared.messages.keep(
            transport,
            query,
            encoded,
            shared.cache.clock().now(),
            shared.cache.generation(),
            remembered,
        );
    }

    async fn respond(&self, request: &Request<'_>) -> Reply {
        let query = request.query();
        let answered = self
            .answer_checking(
                request.src,
                request.transport,
                query.name(),
                query.query_type(),
                request.recursion_desired(),
                request.checking_disabled(),
            )
            .await;
        let (mut answers, mut authorities) = (answered.answers, answered.authorities);
        if !request.dnssec_ok() {
            validation::strip_for_do0(&mut answers, query.query_type());
            validation::strip_for_do0(&mut authorities, query.query_type());
        }
        // AD to a client that showed it understands it: DO=1, or AD=1 in
        // the question (RFC 6840 §5.7).
        let wants_ad = request.dnssec_ok() || request.message.metadata.authentic_data;
        Reply {
            rcode: answered.rcode,
            recursion_available: true,
            authentic_data: answered.authentic && wants_ad,
            answers,
            authorities,
            extended_error: answered.extended_error,
            ..Reply::default()
        }
    }
}
