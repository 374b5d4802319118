//! Iterative resolution: from the closest known name servers down to the
//! answer, one referral at a time (RFC 1034 §5.3.3).
//!
//! ```text
//!  question ─► cache? ──hit──► answer (no server asked)
//!                │miss
//!                ▼
//!        closest cached delegation (or the root hints)
//!                │
//!                ▼
//!   ┌──► ask one of that zone's servers (best SRTT first, RD=0)
//!   │            │
//!   │   referral ├─► cache the child's NS + glue, go down one zone ──┐
//!   │            │                                                   │
//!   └────────────┼───────────────────────────────────────────────────┘
//!                ├─► answer / CNAME / NXDOMAIN / NODATA: cache, return
//!                └─► timeout, SERVFAIL, lame: try the zone's next server
//! ```
//!
//! A [`Walk`] is one client question's resolution: it borrows what it uses
//! from the resolver (cache, server statistics, metrics, limits) and owns
//! its [`Trail`], the events told about it and the budget it may spend.
//! What a response means is worked out in [`super::classify`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use tokio::sync::Semaphore;

use super::Config;
use super::cache::{Cache, Delegation, Negative};
use super::classify::{Classified, MAX_CNAME_CHAIN, classify, cname_target, describe, ns_names};
use super::metrics::Metrics;
use super::servers::ServerStats;
use crate::dns::{Transport, address_of};
use crate::exchange::{ExchangeError, exchange, make_query};
use crate::trace::{
    CacheKind, Question, RecordView, ResponseKind, ServerView, TraceEvent, TraceSink, Traced,
};

/// How many referrals one lookup follows before giving up.
pub const MAX_REFERRALS: usize = 16;
/// Upstream questions one client question may cost, all lookups included.
pub const MAX_UPSTREAM_QUERIES: usize = 48;
/// How deep the resolver goes to find addresses of name servers that came
/// without glue (each such lookup may need others of its own).
pub const MAX_NS_LOOKUP_DEPTH: usize = 3;
/// The longest a client waits for an answer, SERVFAIL included.
pub const MAX_WALL_TIME: Duration = Duration::from_secs(3);

/// One client question's account: the events told about it, in order, and
/// the budget it has left.
pub struct Trail {
    pub id: u64,
    pub started: Instant,
    pub deadline: Instant,
    pub upstream_queries: usize,
    pub ns_depth: usize,
    pub events: Vec<Arc<Traced>>,
    sink: TraceSink,
}

impl Trail {
    pub fn new(id: u64, sink: TraceSink) -> Trail {
        let started = Instant::now();
        Trail {
            id,
            started,
            deadline: started + MAX_WALL_TIME,
            upstream_queries: 0,
            ns_depth: 0,
            events: Vec::new(),
            sink,
        }
    }

    /// Tell the event now: stamped and sent to whoever watches, and kept
    /// with this resolution.
    pub fn emit(&mut self, event: TraceEvent) {
        self.events.push(self.sink.emit(self.id, event));
    }
}

/// The final result of a resolution, CNAMEs included.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// Why the resolution failed, for SERVFAIL.
    pub failure: Option<String>,
}

impl Resolved {
    pub fn new(rcode: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Resolved {
        Resolved {
            rcode,
            answers,
            authorities,
            failure: None,
        }
    }

    pub fn servfail(reason: String) -> Resolved {
        Resolved {
            failure: Some(reason),
            ..Resolved::new(ResponseCode::ServFail, Vec::new(), Vec::new())
        }
    }
}

/// One link of the resolution: what the cache or a server said about a name.
// Links live one at a time on the stack of a walk; boxing the SOA would
// cost an allocation per negative answer for no gain.
#[allow(clippy::large_enum_variant)]
enum Link {
    /// The records asked for (any CNAMEs that led to them come first).
    Records(Vec<Record>),
    /// An alias: the CNAME records so far and the name to look up next.
    Alias(Vec<Record>, Name),
    /// NXDOMAIN or NODATA, after any CNAMEs.
    Negative {
        prefix: Vec<Record>,
        nxdomain: bool,
        soa: Option<Record>,
    },
    Fail(String),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One resolution, with what it borrows from the resolver.
pub struct Walk<'r> {
    pub cache: &'r Cache,
    pub servers: &'r ServerStats,
    pub metrics: &'r Metrics,
    pub config: &'r Config,
    pub hints: &'r Delegation,
    /// Bounds the upstream questions in flight at once, over all walks.
    pub upstream_slots: &'r Semaphore,
    pub trail: Trail,
}

impl Walk<'_> {
    /// Resolve `name`/`rtype`, following CNAMEs across zones.
    pub async fn resolve(&mut self, name: &Name, rtype: RecordType) -> Resolved {
        let mut answers = Vec::new();
        let mut name = name.clone();
        for _ in 0..MAX_CNAME_CHAIN {
            match self.one_name(&name, rtype).await {
                Link::Records(records) => {
                    answers.extend(records);
                    return Resolved::new(ResponseCode::NoError, answers, Vec::new());
                }
                Link::Alias(cnames, target) => {
                    answers.extend(cnames);
                    name = target;
                }
                Link::Negative {
                    prefix,
                    nxdomain,
                    soa,
                } => {
                    answers.extend(prefix);
                    let rcode = if nxdomain {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NoError
                    };
                    return Resolved::new(rcode, answers, soa.into_iter().collect());
                }
                Link::Fail(reason) => return Resolved::servfail(reason),
            }
        }
        Resolved::servfail(format!("a CNAME chain longer than {MAX_CNAME_CHAIN}"))
    }

    /// One name: from the cache if it can, else by iteration.
    async fn one_name(&mut self, name: &Name, rtype: RecordType) -> Link {
        let lower = LowerName::new(name);
        let question = Question::new(name, rtype);
        if let Some(hit) = self.cache.answer(&lower, rtype) {
            self.metrics.cache_hit(CacheKind::Answer);
            self.trail.emit(TraceEvent::CacheAnswerHit {
                question,
                records: hit.value.iter().map(RecordView::from).collect(),
            });
            return Link::Records(hit.value);
        }
        if let Some(hit) = self.cache.negative(&lower, rtype) {
            self.metrics.cache_hit(CacheKind::Negative);
            self.trail.emit(TraceEvent::CacheNegativeHit {
                question,
                rcode: if hit.value.nxdomain {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::NoError
                },
                ttl: hit.remaining,
            });
            return Link::Negative {
                prefix: Vec::new(),
                nxdomain: hit.value.nxdomain,
                soa: hit.value.soa,
            };
        }
        if rtype != RecordType::CNAME
            && let Some(hit) = self.cache.answer(&lower, RecordType::CNAME)
            && let Some(target) = cname_target(&hit.value)
        {
            self.metrics.cache_hit(CacheKind::Answer);
            self.trail.emit(TraceEvent::CacheAnswerHit {
                question: Question::new(name, RecordType::CNAME),
                records: hit.value.iter().map(RecordView::from).collect(),
            });
            return Link::Alias(hit.value, target);
        }
        if let Some(hit) = self.cache.failure(&lower, rtype) {
            // RFC 9520: a resolution that just failed is not tried again
            // at once; the failure is the answer for a little while.
            self.metrics.cache_hit(CacheKind::Failure);
            self.trail.emit(TraceEvent::CacheFailureHit {
                question,
                reason: hit.value.clone(),
                ttl: hit.remaining,
            });
            return Link::Fail(hit.value);
        }
        self.metrics.cache_miss();
        self.trail.emit(TraceEvent::CacheMiss {
            question: question.clone(),
        });
        let link = self.iterate(name, rtype).await;
        if let Link::Fail(reason) = &link {
            let ttl = self.cache.put_failure(&lower, rtype, reason.clone());
            self.trail.emit(TraceEvent::Cached {
                kind: CacheKind::Failure,
                name: name.to_string(),
                rtype: Some(rtype),
                nxdomain: false,
                ttl,
            });
        }
        link
    }

    /// The closest cached delegation for `name`, or the root hints.
    fn starting_point(&mut self, name: &LowerName) -> Delegation {
        match self.cache.closest_delegation(name) {
            Some(hit) => {
                self.metrics.cache_hit(CacheKind::Delegation);
                let delegation = hit.value;
                self.trail.emit(TraceEvent::CacheDelegationHit {
                    zone: delegation.zone.to_string(),
                    servers: ns_names(&delegation.ns),
                    ttl: hit.remaining,
                    skipped: delegation.learned_from.clone(),
                });
                delegation
            }
            None => self.hints.clone(),
        }
    }

    /// Walk down from the closest known zone cut to the answer.
    fn iterate<'a>(&'a mut self, name: &'a Name, rtype: RecordType) -> BoxFuture<'a, Link> {
        Box::pin(async move {
            let lower = LowerName::new(name);
            let mut zone = self.starting_point(&lower);
            // With QNAME minimisation, how many labels of `name` the current
            // zone's servers are shown (RFC 9156 §3).
            let mut shown = zone.zone.num_labels() + 1;
            for _ in 0..MAX_REFERRALS {
                let (sent, sent_type) =
                    if self.config.qname_minimization && shown < name.num_labels() {
                        (name.trim_to(shown as usize), RecordType::A)
                    } else {
                        (name.clone(), rtype)
                    };
                let minimised = sent_type != rtype || sent != *name;
                let classified = match self.ask_zone(&zone, &sent, sent_type).await {
                    Ok(c) => c,
                    Err(reason) => return Link::Fail(reason),
                };
                match classified {
                    Classified::Referral(mut child) => {
                        child.learned_from = zone.learned_from.clone();
                        child.learned_from.push(zone.zone.to_string());
                        let ttl = self.cache.put_delegation(child.clone());
                        self.trail.emit(TraceEvent::Cached {
                            kind: CacheKind::Delegation,
                            name: child.zone.to_string(),
                            rtype: None,
                            nxdomain: false,
                            ttl,
                        });
                        shown = child.zone.num_labels() + 1;
                        zone = child;
                    }
                    Classified::Negative {
                        nxdomain: true,
                        soa,
                        ..
                    } if minimised => {
                        // Nothing exists below a name that does not exist
                        // (RFC 8020), so the full name does not either.
                        self.cache_negative(&lower, rtype, true, soa.clone());
                        return Link::Negative {
                            prefix: Vec::new(),
                            nxdomain: true,
                            soa,
                        };
                    }
                    Classified::Failure(reason) => return Link::Fail(reason),
                    _ if minimised => {
                        // The shorter name exists and is not a zone cut:
                        // show the same servers one more label.
                        shown += 1;
                    }
                    Classified::Answer { rrsets, next } => {
                        self.cache_rrsets(&rrsets);
                        let records: Vec<Record> = rrsets.into_iter().flatten().collect();
                        return match next {
                            Some(target) => Link::Alias(records, target),
                            None => Link::Records(records),
                        };
                    }
                    Classified::Negative {
                        rrsets,
                        nxdomain,
                        soa,
                    } => {
                        self.cache_rrsets(&rrsets);
                        let last = rrsets
                            .last()
                            .and_then(|rs| cname_target(rs))
                            .unwrap_or_else(|| name.clone());
                        self.cache_negative(&LowerName::new(&last), rtype, nxdomain, soa.clone());
                        return Link::Negative {
                            prefix: rrsets.into_iter().flatten().collect(),
                            nxdomain,
                            soa,
                        };
                    }
                }
            }
            Link::Fail(format!("more than {MAX_REFERRALS} referrals"))
        })
    }

    fn cache_rrsets(&mut self, rrsets: &[Vec<Record>]) {
        for rrset in rrsets {
            if let Some(ttl) = self.cache.put_answer(rrset.clone()) {
                self.trail.emit(TraceEvent::Cached {
                    kind: CacheKind::Answer,
                    name: rrset[0].name.to_string(),
                    rtype: Some(rrset[0].record_type()),
                    nxdomain: false,
                    ttl,
                });
            }
        }
    }

    fn cache_negative(
        &mut self,
        name: &LowerName,
        rtype: RecordType,
        nxdomain: bool,
        soa: Option<Record>,
    ) {
        let ttl = self
            .cache
            .put_negative(name, rtype, Negative { nxdomain, soa });
        if ttl > 0 {
            self.trail.emit(TraceEvent::Cached {
                kind: CacheKind::Negative,
                name: name.to_string(),
                rtype: (!nxdomain).then_some(rtype),
                nxdomain,
                ttl,
            });
        }
    }

    /// Ask the servers of `zone`, best first, until one gives a usable
    /// response. Servers whose addresses did not come as glue are looked up
    /// only when the others have failed; servers held down after failing
    /// are not asked at all.
    async fn ask_zone(
        &mut self,
        zone: &Delegation,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Classified, String> {
        let (known, unknown) = self.server_addresses(zone);
        let ordered = self.servers.order(&known, |s: &ServerView| s.addr.ip());
        if !ordered.held.is_empty() {
            let longest = ordered
                .held
                .iter()
                .map(|(_, d)| *d)
                .max()
                .unwrap_or_default();
            self.trail.emit(TraceEvent::ServersHeldDown {
                zone: zone.zone.to_string(),
                servers: ordered.held.iter().map(|(s, _)| s.clone()).collect(),
                for_ms: longest.as_millis() as u64,
            });
        }
        let mut last_failure = if ordered.usable.is_empty() && !ordered.held.is_empty() {
            format!(
                "every server of {} failed recently and is held down (RFC 9520)",
                zone.zone
            )
        } else {
            format!("no address for any name server of {}", zone.zone)
        };
        for server in ordered.usable {
            match self.query_server(&server, &zone.zone, name, rtype).await? {
                Classified::Failure(reason) => last_failure = reason,
                usable => return Ok(usable),
            }
        }
        if self.trail.ns_depth >= MAX_NS_LOOKUP_DEPTH {
            return Err(last_failure);
        }
        for ns_name in unknown {
            self.trail.ns_depth += 1;
            let found = self.resolve(&ns_name, RecordType::A).await;
            self.trail.ns_depth -= 1;
            let servers: Vec<ServerView> = found
                .answers
                .iter()
                .filter(|r| r.name.eq_ignore_root(&ns_name))
                .filter_map(address_of)
                .map(|ip| ServerView {
                    name: ns_name.to_string(),
                    addr: SocketAddr::new(ip, self.config.upstream_port),
                })
                .collect();
            let ordered = self.servers.order(&servers, |s: &ServerView| s.addr.ip());
            for server in ordered.usable {
                match self.query_server(&server, &zone.zone, name, rtype).await? {
                    Classified::Failure(reason) => last_failure = reason,
                    usable => return Ok(usable),
                }
            }
        }
        Err(last_failure)
    }

    /// The servers of a delegation we can reach now (from glue or the cache)
    /// and the names we would first have to resolve.
    fn server_addresses(&self, zone: &Delegation) -> (Vec<ServerView>, Vec<Name>) {
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for target in zone.server_names() {
            let lower = LowerName::new(&target);
            let glue: Vec<_> = zone
                .glue
                .iter()
                .filter(|g| LowerName::new(&g.name) == lower)
                .filter_map(address_of)
                .collect();
            let addresses = if glue.is_empty() {
                self.cache
                    .answer(&lower, RecordType::A)
                    .map(|hit| hit.value.iter().filter_map(address_of).collect())
                    .unwrap_or_default()
            } else {
                glue
            };
            if addresses.is_empty() {
                unknown.push(target.clone());
            }
            for ip in addresses {
                known.push(ServerView {
                    name: target.to_string(),
                    addr: SocketAddr::new(ip, self.config.upstream_port),
                });
            }
        }
        (known, unknown)
    }

    /// One question to one server, over UDP and, if truncated, over TCP.
    async fn query_server(
        &mut self,
        server: &ServerView,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Classified, String> {
        let mut transport = Transport::Udp;
        // EDNS unless the server has shown it does not understand it.
        let mut edns = true;
        loop {
            if Instant::now() >= self.trail.deadline {
                return Err(format!("gave up after {MAX_WALL_TIME:?}"));
            }
            if self.trail.upstream_queries >= MAX_UPSTREAM_QUERIES {
                return Err(format!("more than {MAX_UPSTREAM_QUERIES} upstream queries"));
            }
            // A bounded number of upstream questions are in flight at once:
            // a flood of client questions must not become a flood upstream.
            let Ok(Ok(_slot)) =
                tokio::time::timeout_at(self.trail.deadline.into(), self.upstream_slots.acquire())
                    .await
            else {
                return Err("too many upstream queries in flight".into());
            };
            self.trail.upstream_queries += 1;
            self.metrics.upstream_query();
            let question = Question::new(name, rtype);
            self.trail.emit(TraceEvent::UpstreamQuery {
                server: server.clone(),
                zone: zone.to_string(),
                question: question.clone(),
                transport,
            });
            let query = make_query(name, rtype, false, edns);
            let ip = server.addr.ip();
            let timeout = self.servers.timeout_for(ip).min(
                self.trail
                    .deadline
                    .saturating_duration_since(Instant::now()),
            );
            let sent = Instant::now();
            let result = exchange(server.addr, &query, transport, timeout).await;
            let rtt_us = sent.elapsed().as_micros() as u64;
            let (classified, kind) = match result {
                Ok(exchanged) => {
                    let response = exchanged.response;
                    let rcode = response.metadata.response_code;
                    if response.metadata.truncation && transport == Transport::Udp {
                        self.servers.record_rtt(ip, exchanged.rtt);
                        self.trail.emit(TraceEvent::UpstreamResponse {
                            server: server.clone(),
                            question,
                            response: ResponseKind::Truncated,
                            rtt_us,
                        });
                        transport = Transport::Tcp;
                        continue;
                    }
                    if edns && matches!(rcode, ResponseCode::FormErr | ResponseCode::NotImp) {
                        // A server from before EDNS: ask again without it
                        // (RFC 6891 §7).
                        self.servers.record_rtt(ip, exchanged.rtt);
                        self.trail.emit(TraceEvent::UpstreamResponse {
                            server: server.clone(),
                            question,
                            response: ResponseKind::Failure {
                                reason: format!(
                                    "{} to a query with EDNS; asking again without",
                                    crate::trace::rcode_name(rcode)
                                ),
                            },
                            rtt_us,
                        });
                        edns = false;
                        continue;
                    }
                    let classified = classify(&response, zone, name, rtype);
                    if matches!(rcode, ResponseCode::ServFail | ResponseCode::Refused) {
                        // A broken or lame server: hold it down too.
                        self.servers.record_failure(ip, exchanged.rtt);
                    } else {
                        self.servers.record_rtt(ip, exchanged.rtt);
                    }
                    let kind = describe(&classified);
                    (Some(classified), kind)
                }
                Err(ExchangeError::Timeout { .. }) => {
                    self.servers.record_failure(ip, timeout);
                    self.metrics.upstream_timeout();
                    (None, ResponseKind::Timeout)
                }
                Err(error) => {
                    // Refused connections and ICMP errors: as good as dead.
                    self.servers.record_failure(ip, timeout);
                    let reason = error.to_string();
                    (None, ResponseKind::Failure { reason })
                }
            };
            self.trail.emit(TraceEvent::UpstreamResponse {
                server: server.clone(),
                question,
                response: kind.clone(),
                rtt_us,
            });
            return Ok(classified.unwrap_or_else(|| {
                Classified::Failure(match kind {
                    ResponseKind::Failure { reason } => reason,
                    _ => format!("{} ({}) did not answer", server.name, server.addr),
                })
            }));
        }
    }
}
