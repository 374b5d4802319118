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
//! Everything from a server is checked against its bailiwick: a server asked
//! as a server of zone Z may speak only about names at or below Z. Records
//! outside it are neither used nor cached (RFC 2181 §5.4.1's spirit; the
//! classic cache-poisoning defence).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::Core;
use super::cache::{Delegation, Negative};
use crate::exchange::{ExchangeError, Transport, exchange, make_query};
use crate::trace::{CacheKind, Question, RecordView, ResponseKind, ServerView, TraceEvent, Traced};

/// How many referrals one lookup follows before giving up.
pub const MAX_REFERRALS: usize = 16;
/// How long a CNAME chain may be, across zones.
pub const MAX_CNAME_CHAIN: usize = 8;
/// Upstream questions one client question may cost, all lookups included.
pub const MAX_UPSTREAM_QUERIES: usize = 48;
/// How deep the resolver goes to find addresses of name servers that came
/// without glue (each such lookup may need others of its own).
pub const MAX_NS_LOOKUP_DEPTH: usize = 3;
/// The longest a client waits for an answer, SERVFAIL included.
pub const MAX_WALL_TIME: Duration = Duration::from_secs(3);

/// The state of one client question's resolution.
pub struct Ctx {
    pub id: u64,
    pub started: Instant,
    pub deadline: Instant,
    pub upstream_queries: usize,
    pub ns_depth: usize,
    pub events: Vec<Traced>,
}

impl Ctx {
    pub fn new(id: u64) -> Ctx {
        let started = Instant::now();
        Ctx {
            id,
            started,
            deadline: started + MAX_WALL_TIME,
            upstream_queries: 0,
            ns_depth: 0,
            events: Vec::new(),
        }
    }
}

/// The final result of a lookup, CNAMEs included.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// Why the resolution failed, for SERVFAIL.
    pub failure: Option<String>,
}

impl Outcome {
    pub fn new(rcode: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Outcome {
        Outcome {
            rcode,
            answers,
            authorities,
            failure: None,
        }
    }

    fn servfail(reason: String) -> Outcome {
        Outcome {
            failure: Some(reason),
            ..Outcome::new(ResponseCode::ServFail, Vec::new(), Vec::new())
        }
    }
}

/// One link of the resolution: what the cache or a server said about a name.
enum Step {
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

/// What a server's response means, after the bailiwick checks.
enum Classified {
    Referral(Delegation),
    /// RRsets in chain order; `next` is set when the chain leaves the zone.
    Answer {
        rrsets: Vec<Vec<Record>>,
        next: Option<Name>,
    },
    Negative {
        rrsets: Vec<Vec<Record>>,
        nxdomain: bool,
        soa: Option<Record>,
    },
    Failure(String),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Core {
    pub(super) fn emit(&self, ctx: &mut Ctx, event: TraceEvent) {
        let traced = Traced {
            resolution: ctx.id,
            at_us: ctx.started.elapsed().as_micros() as u64,
            event,
        };
        self.sink.emit(&traced);
        ctx.events.push(traced);
    }

    /// Resolve `name`/`rtype`, following CNAMEs across zones.
    pub async fn resolve(&self, ctx: &mut Ctx, name: &Name, rtype: RecordType) -> Outcome {
        let mut answers = Vec::new();
        let mut name = name.clone();
        for _ in 0..MAX_CNAME_CHAIN {
            match self.lookup(ctx, &name, rtype).await {
                Step::Records(records) => {
                    answers.extend(records);
                    return Outcome::new(ResponseCode::NoError, answers, Vec::new());
                }
                Step::Alias(cnames, target) => {
                    answers.extend(cnames);
                    name = target;
                }
                Step::Negative {
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
                    return Outcome::new(rcode, answers, soa.into_iter().collect());
                }
                Step::Fail(reason) => return Outcome::servfail(reason),
            }
        }
        Outcome::servfail(format!("a CNAME chain longer than {MAX_CNAME_CHAIN}"))
    }

    /// One name: from the cache if it can, else by iteration.
    async fn lookup(&self, ctx: &mut Ctx, name: &Name, rtype: RecordType) -> Step {
        let lower = LowerName::new(name);
        let question = Question::new(name, rtype);
        if let Some(hit) = self.cache.answer(&lower, rtype) {
            self.metrics.cache_hit(CacheKind::Answer);
            self.emit(
                ctx,
                TraceEvent::CacheAnswerHit {
                    question,
                    records: hit.value.iter().map(RecordView::from).collect(),
                },
            );
            return Step::Records(hit.value);
        }
        if let Some(hit) = self.cache.negative(&lower, rtype) {
            self.metrics.cache_hit(CacheKind::Negative);
            let rcode = if hit.value.nxdomain {
                "NXDOMAIN"
            } else {
                "NODATA"
            };
            self.emit(
                ctx,
                TraceEvent::CacheNegativeHit {
                    question,
                    rcode: rcode.into(),
                    ttl: hit.remaining,
                },
            );
            return Step::Negative {
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
            self.emit(
                ctx,
                TraceEvent::CacheAnswerHit {
                    question: Question::new(name, RecordType::CNAME),
                    records: hit.value.iter().map(RecordView::from).collect(),
                },
            );
            return Step::Alias(hit.value, target);
        }
        self.metrics.cache_miss();
        self.emit(ctx, TraceEvent::CacheMiss { question });
        self.iterate(ctx, name, rtype).await
    }

    /// The closest cached delegation for `name`, or the root hints.
    fn starting_point(&self, ctx: &mut Ctx, name: &LowerName) -> Delegation {
        match self.cache.closest_delegation(name) {
            Some(hit) => {
                self.metrics.cache_hit(CacheKind::Delegation);
                let delegation = hit.value;
                self.emit(
                    ctx,
                    TraceEvent::CacheDelegationHit {
                        zone: delegation.zone.to_string(),
                        servers: ns_names(&delegation.ns),
                        ttl: hit.remaining,
                        skipped: delegation.learned_from.clone(),
                    },
                );
                delegation
            }
            None => self.hints.clone(),
        }
    }

    /// Walk down from the closest known zone cut to the answer.
    fn iterate<'a>(
        &'a self,
        ctx: &'a mut Ctx,
        name: &'a Name,
        rtype: RecordType,
    ) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            let lower = LowerName::new(name);
            let mut zone = self.starting_point(ctx, &lower);
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
                let classified = match self.ask_zone(ctx, &zone, &sent, sent_type).await {
                    Ok(c) => c,
                    Err(reason) => return Step::Fail(reason),
                };
                match classified {
                    Classified::Referral(mut child) => {
                        child.learned_from = zone.learned_from.clone();
                        child.learned_from.push(zone.zone.to_string());
                        let ttl = self.cache.put_delegation(child.clone());
                        self.emit(
                            ctx,
                            TraceEvent::Cached {
                                kind: CacheKind::Delegation,
                                name: child.zone.to_string(),
                                rtype: None,
                                ttl,
                            },
                        );
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
                        self.cache_negative(ctx, &lower, rtype, true, soa.clone());
                        return Step::Negative {
                            prefix: Vec::new(),
                            nxdomain: true,
                            soa,
                        };
                    }
                    Classified::Failure(reason) => return Step::Fail(reason),
                    _ if minimised => {
                        // The shorter name exists and is not a zone cut:
                        // show the same servers one more label.
                        shown += 1;
                    }
                    Classified::Answer { rrsets, next } => {
                        self.cache_rrsets(ctx, &rrsets);
                        let records: Vec<Record> = rrsets.into_iter().flatten().collect();
                        return match next {
                            Some(target) => Step::Alias(records, target),
                            None => Step::Records(records),
                        };
                    }
                    Classified::Negative {
                        rrsets,
                        nxdomain,
                        soa,
                    } => {
                        self.cache_rrsets(ctx, &rrsets);
                        let last = rrsets
                            .last()
                            .and_then(|rs| cname_target(rs))
                            .unwrap_or_else(|| name.clone());
                        self.cache_negative(
                            ctx,
                            &LowerName::new(&last),
                            rtype,
                            nxdomain,
                            soa.clone(),
                        );
                        return Step::Negative {
                            prefix: rrsets.into_iter().flatten().collect(),
                            nxdomain,
                            soa,
                        };
                    }
                }
            }
            Step::Fail(format!("more than {MAX_REFERRALS} referrals"))
        })
    }

    fn cache_rrsets(&self, ctx: &mut Ctx, rrsets: &[Vec<Record>]) {
        for rrset in rrsets {
            if let Some(ttl) = self.cache.put_answer(rrset.clone()) {
                self.emit(
                    ctx,
                    TraceEvent::Cached {
                        kind: CacheKind::Answer,
                        name: rrset[0].name.to_string(),
                        rtype: Some(rrset[0].record_type().to_string()),
                        ttl,
                    },
                );
            }
        }
    }

    fn cache_negative(
        &self,
        ctx: &mut Ctx,
        name: &LowerName,
        rtype: RecordType,
        nxdomain: bool,
        soa: Option<Record>,
    ) {
        let ttl = self
            .cache
            .put_negative(name, rtype, Negative { nxdomain, soa });
        if ttl > 0 {
            self.emit(
                ctx,
                TraceEvent::Cached {
                    kind: CacheKind::Negative,
                    name: name.to_string(),
                    rtype: Some(if nxdomain {
                        "NXDOMAIN".to_string()
                    } else {
                        rtype.to_string()
                    }),
                    ttl,
                },
            );
        }
    }

    /// Ask the servers of `zone`, best first, until one gives a usable
    /// response. Servers whose addresses did not come as glue are looked up
    /// only when the others have failed.
    async fn ask_zone(
        &self,
        ctx: &mut Ctx,
        zone: &Delegation,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Classified, String> {
        let (known, unknown) = self.server_addresses(zone);
        let ordered = self.servers.order(&known, |s: &ServerView| s.addr.ip());
        let mut last_failure = format!("no address for any name server of {}", zone.zone);
        for server in ordered {
            match self
                .query_server(ctx, &server, &zone.zone, name, rtype)
                .await?
            {
                Classified::Failure(reason) => last_failure = reason,
                usable => return Ok(usable),
            }
        }
        if ctx.ns_depth >= MAX_NS_LOOKUP_DEPTH {
            return Err(last_failure);
        }
        for ns_name in unknown {
            ctx.ns_depth += 1;
            let found = self.resolve(ctx, &ns_name, RecordType::A).await;
            ctx.ns_depth -= 1;
            let servers: Vec<ServerView> = found
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) if r.name.eq_ignore_root(&ns_name) => Some(ServerView {
                        name: ns_name.to_string(),
                        addr: SocketAddr::new(IpAddr::V4(a.0), self.config.upstream_port),
                    }),
                    _ => None,
                })
                .collect();
            for server in servers {
                match self
                    .query_server(ctx, &server, &zone.zone, name, rtype)
                    .await?
                {
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
        for ns in &zone.ns {
            let RData::NS(target) = &ns.data else {
                continue;
            };
            let target = &target.0;
            let lower = LowerName::new(target);
            let glue: Vec<IpAddr> = zone
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
        &self,
        ctx: &mut Ctx,
        server: &ServerView,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Classified, String> {
        let mut transport = Transport::Udp;
        // EDNS unless the server has shown it does not understand it.
        let mut edns = true;
        loop {
            let now = Instant::now();
            if now >= ctx.deadline {
                return Err(format!("gave up after {MAX_WALL_TIME:?}"));
            }
            if ctx.upstream_queries >= MAX_UPSTREAM_QUERIES {
                return Err(format!("more than {MAX_UPSTREAM_QUERIES} upstream queries"));
            }
            // A bounded number of upstream questions are in flight at once:
            // a flood of client questions must not become a flood upstream.
            let Ok(Ok(_slot)) =
                tokio::time::timeout_at(ctx.deadline.into(), self.upstream_slots.acquire()).await
            else {
                return Err("too many upstream queries in flight".into());
            };
            ctx.upstream_queries += 1;
            self.metrics.upstream_query();
            let question = Question::new(name, rtype);
            self.emit(
                ctx,
                TraceEvent::UpstreamQuery {
                    server: server.clone(),
                    zone: zone.to_string(),
                    question: question.clone(),
                    transport,
                },
            );
            let query = make_query(name, rtype, false, edns);
            let ip = server.addr.ip();
            let timeout = self
                .servers
                .timeout_for(ip)
                .min(ctx.deadline.saturating_duration_since(Instant::now()));
            let sent = Instant::now();
            let result = exchange(server.addr, &query, transport, timeout).await;
            let rtt_us = sent.elapsed().as_micros() as u64;
            let (response, kind) = match result {
                Ok(exchanged) => {
                    self.servers.record_rtt(ip, exchanged.rtt);
                    let response = exchanged.response;
                    if response.metadata.truncation && transport == Transport::Udp {
                        self.emit(
                            ctx,
                            TraceEvent::UpstreamResponse {
                                server: server.clone(),
                                question,
                                response: ResponseKind::Truncated,
                                rtt_us,
                            },
                        );
                        transport = Transport::Tcp;
                        continue;
                    }
                    if edns
                        && matches!(
                            response.metadata.response_code,
                            ResponseCode::FormErr | ResponseCode::NotImp
                        )
                    {
                        // A server from before EDNS: ask again without it
                        // (RFC 6891 §7).
                        self.emit(
                            ctx,
                            TraceEvent::UpstreamResponse {
                                server: server.clone(),
                                question,
                                response: ResponseKind::Failure {
                                    reason: format!(
                                        "{} to a query with EDNS; asking again without",
                                        crate::trace::rcode_name(response.metadata.response_code)
                                    ),
                                },
                                rtt_us,
                            },
                        );
                        edns = false;
                        continue;
                    }
                    let classified = classify(&response, zone, name, rtype);
                    let kind = describe(&classified);
                    (Some(classified), kind)
                }
                Err(ExchangeError::Timeout { .. }) => {
                    self.servers.record_timeout(ip, timeout);
                    self.metrics.upstream_timeout();
                    (None, ResponseKind::Timeout)
                }
                Err(error) => {
                    // Refused connections and ICMP errors: as good as dead.
                    self.servers.record_timeout(ip, timeout);
                    (
                        None,
                        ResponseKind::Failure {
                            reason: error.to_string(),
                        },
                    )
                }
            };
            self.emit(
                ctx,
                TraceEvent::UpstreamResponse {
                    server: server.clone(),
                    question,
                    response: kind.clone(),
                    rtt_us,
                },
            );
            return Ok(response.unwrap_or_else(|| {
                Classified::Failure(match kind {
                    ResponseKind::Failure { reason } => reason,
                    _ => format!("{} ({}) did not answer", server.name, server.addr),
                })
            }));
        }
    }
}

fn address_of(record: &Record) -> Option<IpAddr> {
    match &record.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

fn cname_target(records: &[Record]) -> Option<Name> {
    records.iter().find_map(|r| match &r.data {
        RData::CNAME(target) => Some(target.0.clone()),
        _ => None,
    })
}

fn ns_names(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The records of `section` at `name` of type `rtype` (any type for ANY).
fn rrset(section: &[Record], name: &Name, rtype: RecordType) -> Vec<Record> {
    section
        .iter()
        .filter(|r| {
            r.dns_class == DNSClass::IN
                && r.name.eq_ignore_root(name)
                && (rtype == RecordType::ANY || r.record_type() == rtype)
        })
        .cloned()
        .collect()
}

/// Make sense of a response from a server of `zone` to `name`/`rtype`.
fn classify(response: &Message, zone: &Name, name: &Name, rtype: RecordType) -> Classified {
    let bailiwick = LowerName::new(zone);
    let inside = |r: &Record| bailiwick.zone_of(&LowerName::new(&r.name));
    let rcode = response.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Classified::Failure(crate::trace::rcode_name(rcode));
    }
    let answers: Vec<Record> = response
        .answers
        .iter()
        .filter(|r| inside(r))
        .cloned()
        .collect();
    let soa = response
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && inside(r))
        .cloned();

    // Follow the answer section: the records asked for, or CNAMEs to them.
    let mut rrsets = Vec::new();
    let mut current = name.clone();
    let mut complete = false;
    for _ in 0..MAX_CNAME_CHAIN {
        let found = rrset(&answers, &current, rtype);
        if !found.is_empty() {
            rrsets.push(found);
            complete = true;
            break;
        }
        let alias = rrset(&answers, &current, RecordType::CNAME);
        match cname_target(&alias) {
            Some(target) if rtype != RecordType::CNAME => {
                rrsets.push(alias);
                current = target;
            }
            _ => break,
        }
    }

    if rcode == ResponseCode::NXDomain {
        return Classified::Negative {
            rrsets,
            nxdomain: true,
            soa,
        };
    }
    if complete {
        return Classified::Answer { rrsets, next: None };
    }
    if !rrsets.is_empty() {
        // A CNAME whose target this server could not finish: if the target
        // is in its zone and it sent an SOA, the target has no such data.
        if soa.is_some() && bailiwick.zone_of(&LowerName::new(&current)) {
            return Classified::Negative {
                rrsets,
                nxdomain: false,
                soa,
            };
        }
        return Classified::Answer {
            rrsets,
            next: Some(current),
        };
    }

    // A referral: NS records for a zone below this one and above the name.
    let target = LowerName::new(name);
    let cut = response.authorities.iter().find_map(|r| match &r.data {
        RData::NS(_) => {
            let owner = LowerName::new(&r.name);
            (owner != bailiwick && bailiwick.zone_of(&owner) && owner.zone_of(&target))
                .then(|| r.name.clone())
        }
        _ => None,
    });
    if let Some(cut) = cut {
        let ns = rrset(&response.authorities, &cut, RecordType::NS);
        let names: Vec<LowerName> = ns
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(n) => Some(LowerName::new(&n.0)),
                _ => None,
            })
            .collect();
        // Glue only for the servers named, and only from inside the
        // responding server's bailiwick.
        let glue = response
            .additionals
            .iter()
            .filter(|r| {
                matches!(r.record_type(), RecordType::A | RecordType::AAAA)
                    && inside(r)
                    && names.contains(&LowerName::new(&r.name))
            })
            .cloned()
            .collect();
        return Classified::Referral(Delegation {
            zone: cut,
            ns,
            glue,
            learned_from: Vec::new(),
        });
    }
    if soa.is_some() || response.metadata.authoritative {
        return Classified::Negative {
            rrsets,
            nxdomain: false,
            soa,
        };
    }
    Classified::Failure("lame: neither an answer nor a referral".into())
}

/// The trace's view of a classified response.
fn describe(classified: &Classified) -> ResponseKind {
    match classified {
        Classified::Referral(d) => ResponseKind::Referral {
            zone: d.zone.to_string(),
            servers: ns_names(&d.ns),
            glue: d.glue.len(),
        },
        Classified::Answer { rrsets, .. } => ResponseKind::Answer {
            records: rrsets.iter().flatten().map(RecordView::from).collect(),
        },
        Classified::Negative { nxdomain: true, .. } => ResponseKind::NxDomain,
        Classified::Negative { .. } => ResponseKind::NoData,
        Classified::Failure(reason) => ResponseKind::Failure {
            reason: reason.clone(),
        },
    }
}

/// Classify a response and check what the resolver would take from it: only
/// records inside `zone`, and referrals only to a zone between `zone` and
/// `name`. Panics otherwise; the fuzzer calls this with arbitrary responses.
#[doc(hidden)]
pub fn check_classification(response: &Message, zone: &Name, name: &Name, rtype: RecordType) {
    let bailiwick = LowerName::new(zone);
    let inside = |r: &Record| bailiwick.zone_of(&LowerName::new(&r.name));
    match classify(response, zone, name, rtype) {
        Classified::Referral(delegation) => {
            let cut = LowerName::new(&delegation.zone);
            assert!(
                cut != bailiwick && bailiwick.zone_of(&cut),
                "referral upward or sideways"
            );
            assert!(
                cut.zone_of(&LowerName::new(name)),
                "referral away from the name"
            );
            assert!(delegation.ns.iter().chain(&delegation.glue).all(inside));
        }
        Classified::Answer { rrsets, .. } | Classified::Negative { rrsets, .. } => {
            assert!(
                rrsets.iter().flatten().all(inside),
                "out-of-bailiwick data kept"
            );
        }
        Classified::Failure(_) => {}
    }
}
