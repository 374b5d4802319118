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
//!                ├─► answer / CNAME / DNAME / NXDOMAIN / NODATA: cache, return
//!                └─► timeout, SERVFAIL, lame: try the zone's next server
//! ```
//!
//! A [`Walk`] is one client question's resolution: it borrows what it uses
//! from the resolver (cache, server statistics, metrics, limits) and owns
//! its [`Trail`], the events told about it and the budget it may spend.
//! What a response means is worked out in [`super::classify`].
//!
//! Where real servers misbehave, the walk does what Unbound and Knot
//! Resolver do: a server that answers without authority is lame for the
//! zone and set aside; addresses no server can have are skipped; name
//! servers without glue are looked up, and a lookup that would need itself
//! (an NS cycle) stops at once, unless the parent's out-of-zone glue breaks
//! it; the child's own NS set replaces the parent's referral; a minimised
//! question that fails is asked again in full (RFC 9156).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, Record, RecordType};

use super::Config;
use super::cache::{Cache, Delegation, Negative};
use super::classify::{Classified, MAX_CNAME_CHAIN, cname_target, dedup, ns_names};
use super::failure::{Failure, FailureKind, stale_answer};
use super::metrics::Metrics;
use super::servers::{LAME_HOLD, ServerStats};
use super::slots::UpstreamSlots;
use super::validation::Signed;
use crate::dns::address_of;
use crate::nameserver::dname;
use crate::serve::ExtendedError;
use crate::trace::{CacheKind, Question, RecordView, ServerView, TraceEvent, TraceSink, Traced};

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
    /// The name servers whose addresses are being looked up, outermost
    /// first: a lookup already on this list would need itself (a cycle).
    pub ns_lookups: Vec<LowerName>,
    /// The zones whose keys are being established, outermost first: the
    /// chain of trust must never need itself.
    pub validating: Vec<Name>,
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
            ns_lookups: Vec::new(),
            validating: Vec::new(),
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
    /// Why the resolution failed, for SERVFAIL (and REFUSED).
    pub failure: Option<Failure>,
    /// How many seconds ago the answer expired, when it is served stale.
    pub stale_for: Option<u64>,
}

impl Resolved {
    pub fn new(rcode: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Resolved {
        Resolved {
            rcode,
            answers,
            authorities,
            failure: None,
            stale_for: None,
        }
    }

    pub fn servfail(failure: Failure) -> Resolved {
        Resolved {
            failure: Some(failure),
            ..Resolved::new(ResponseCode::ServFail, Vec::new(), Vec::new())
        }
    }

    /// What the client is told beside the rcode (RFC 8914), if anything.
    pub fn extended_error(&self) -> Option<ExtendedError> {
        match (&self.failure, self.stale_for) {
            (Some(failure), _) => Some(failure.extended_error()),
            (None, Some(expired_for)) => Some(stale_answer(expired_for)),
            (None, None) => None,
        }
    }
}

/// One link of the resolution: what the cache or a server said about a name.
// Links live one at a time on the stack of a walk; boxing the SOA would
// cost an allocation per negative answer for no gain.
#[allow(clippy::large_enum_variant)]
pub(super) enum Link {
    /// The records asked for (any CNAMEs that led to them come first).
    Records(Vec<Record>),
    /// An alias: the CNAME records so far and the name to look up next.
    Alias(Vec<Record>, Name),
    /// NXDOMAIN or NODATA, after any CNAMEs.
    /// The authority section to pass on: the SOA, then the zone's NS set
    /// if its server sent one.
    Negative {
        prefix: Vec<Record>,
        nxdomain: bool,
        authorities: Vec<Record>,
    },
    Fail(Failure),
}

/// What one server said, once classified.
pub(super) enum Asked {
    /// Something to go on: a referral, an answer, a denial; and the zone's
    /// own NS set, if the server sent it with authority.
    Usable(Box<(Classified, Signed)>, Option<Delegation>),
    /// The server is lame for the zone.
    Lame(String),
    /// No usable response: an error rcode, a timeout, a network error.
    Failed(FailureKind, String),
}

/// Why every server of a zone failed, gathered server by server.
#[derive(Default)]
struct Failures {
    kinds: Vec<FailureKind>,
    last: Option<String>,
}

impl Failures {
    fn note(&mut self, kind: FailureKind, reason: String) {
        self.kinds.push(kind);
        self.last = Some(reason);
    }

    /// One failure for the zone: a network error or invalid data when
    /// every server failed that way, else no reachable authority.
    fn into_failure(self, zone: &Name) -> Failure {
        let all = |kind| !self.kinds.is_empty() && self.kinds.iter().all(|k| *k == kind);
        let kind = if all(FailureKind::NetworkError) {
            FailureKind::NetworkError
        } else if all(FailureKind::InvalidData) {
            FailureKind::InvalidData
        } else {
            FailureKind::NoReachableAuthority
        };
        match self.last {
            Some(last) => Failure::new(kind, last),
            None => Failure::new(kind, format!("no address for any name server of {zone}")),
        }
    }
}

/// Why an address cannot be a name server's, if it cannot: the addresses
/// Unbound's do-not-query list starts with, and the resolver's own.
fn unusable(addr: SocketAddr, own: &[SocketAddr]) -> Option<String> {
    let ip = addr.ip();
    let why = match ip {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_multicast() => "multicast",
        IpAddr::V4(v4) if v4.is_broadcast() => "broadcast",
        IpAddr::V4(v4) if v4.octets()[0] == 0 => "\"this network\" (0.0.0.0/8)",
        IpAddr::V4(v4) if v4.octets()[0] >= 240 => "reserved (240.0.0.0/4)",
        _ if own.contains(&addr) => "this resolver itself",
        _ => return None,
    };
    Some(format!("{ip} is {why}"))
}

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One resolution, with what it borrows from the resolver.
pub struct Walk<'r> {
    pub cache: &'r Cache,
    pub servers: &'r ServerStats,
    pub metrics: &'r Metrics,
    pub config: &'r Config,
    pub hints: &'r Delegation,
    /// Bounds the upstream questions in flight at once, over all walks.
    pub upstream_slots: &'r UpstreamSlots,
    /// Where this resolver serves clients: never asked as a name server.
    pub own_addrs: Vec<SocketAddr>,
    /// The client set CD=1: its answer is not validated (DNSSEC records
    /// are still asked for, and passed on).
    pub checking_disabled: bool,
    pub trail: Trail,
}

impl Walk<'_> {
    /// Resolve `name`/`rtype`, following CNAMEs (and DNAMEs) across zones.
    pub async fn resolve(&mut self, name: &Name, rtype: RecordType) -> Resolved {
        let mut answers = Vec::new();
        let mut name = name.clone();
        let mut visited = vec![LowerName::new(&name)];
        for _ in 0..MAX_CNAME_CHAIN {
            match self.one_name(&name, rtype).await {
                Link::Records(records) => {
                    answers.extend(records);
                    return Resolved::new(ResponseCode::NoError, dedup(answers), Vec::new());
                }
                Link::Alias(cnames, target) => {
                    answers.extend(cnames);
                    let lower = LowerName::new(&target);
                    if visited.contains(&lower) {
                        return Resolved::servfail(Failure::limit(format!(
                            "a CNAME loop: {target} leads back to itself"
                        )));
                    }
                    visited.push(lower);
                    name = target;
                }
                Link::Negative {
                    prefix,
                    nxdomain,
                    authorities,
                } => {
                    answers.extend(prefix);
                    let rcode = if nxdomain {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NoError
                    };
                    return Resolved::new(rcode, dedup(answers), authorities);
                }
                Link::Fail(failure) => return Resolved::servfail(failure),
            }
        }
        Resolved::servfail(Failure::limit(format!(
            "a CNAME chain longer than {MAX_CNAME_CHAIN}"
        )))
    }

    /// [`Walk::one_name`], boxed: the chain of trust asks for names (DS,
    /// DNSKEY) from inside a walk.
    pub(super) fn one_name_boxed<'a>(
        &'a mut self,
        name: &'a Name,
        rtype: RecordType,
    ) -> BoxFuture<'a, Link> {
        Box::pin(self.one_name(name, rtype))
    }

    /// One name: from the cache if it can, else by iteration.
    async fn one_name(&mut self, name: &Name, rtype: RecordType) -> Link {
        let lower = LowerName::new(name);
        let question = Question::new(name, rtype);
        if let Some(hit) = self.cache.answer(&lower, rtype) {
            // Data cached unchecked (asked with CD=1, or a DS that came
            // with a referral) is checked before a validating walk uses it.
            match self.checked_hit(hit.value).await {
                Some(records) => {
                    self.metrics.cache_hit(CacheKind::Answer);
                    self.trail.emit(TraceEvent::CacheAnswerHit {
                        question,
                        records: records.iter().map(RecordView::from).collect(),
                    });
                    return Link::Records(records);
                }
                None => return self.resolve_afresh(name, rtype).await,
            }
        }
        if let Some(hit) = self
            .cache
            .negative(&lower, rtype)
            .filter(|hit| self.usable_denial(&hit.value))
        {
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
                authorities: hit
                    .value
                    .soa
                    .into_iter()
                    .chain(hit.value.ns)
                    .chain(hit.value.dnssec)
                    .collect(),
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
        if rtype != RecordType::DNAME
            && let Some(hit) = self.cache.dname_above(&lower)
            && let Some(cname) = hit.value.first().and_then(|d| dname::synthesize(d, name))
            && let Some(target) = cname_target(std::slice::from_ref(&cname))
        {
            // A cached DNAME renames every name below it: no server needs
            // asking about the old name (RFC 6672 §3.4).
            let owner = hit.value[0].name.clone();
            self.metrics.cache_hit(CacheKind::Answer);
            self.trail.emit(TraceEvent::CacheAnswerHit {
                question: Question::new(&owner, RecordType::DNAME),
                records: hit.value.iter().map(RecordView::from).collect(),
            });
            self.trail.emit(TraceEvent::DnameFollowed {
                name: name.to_string(),
                owner: owner.to_string(),
                target: target.to_string(),
                cached: true,
            });
            let mut records = hit.value;
            records.push(cname);
            return Link::Alias(records, target);
        }
        if let Some(hit) = self
            .cache
            .failure(&lower, rtype)
            // Asked with CD=1, bogus data is what the client wants to see.
            .filter(|hit| !(self.checking_disabled && hit.value.kind.is_dnssec()))
        {
            // RFC 9520: a resolution that just failed is not tried again
            // at once; the failure is the answer for a little while.
            self.metrics.cache_hit(CacheKind::Failure);
            self.trail.emit(TraceEvent::CacheFailureHit {
                question,
                reason: hit.value.reason.clone(),
                ttl: hit.remaining,
            });
            return Link::Fail(hit.value.cached());
        }
        self.resolve_afresh(name, rtype).await
    }

    /// Not in the cache (or not usable from it): walk for it, and remember
    /// a failure.
    async fn resolve_afresh(&mut self, name: &Name, rtype: RecordType) -> Link {
        let lower = LowerName::new(name);
        self.metrics.cache_miss();
        self.trail.emit(TraceEvent::CacheMiss {
            question: Question::new(name, rtype),
        });
        let link = self.iterate(name, rtype).await;
        if let Link::Fail(failure) = &link {
            let ttl = self.cache.put_failure(&lower, rtype, failure.clone());
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
            // A DS is the parent's (RFC 4035 §4.2): start above the cut.
            let start = if rtype == RecordType::DS && !lower.is_root() {
                lower.base_name()
            } else {
                lower.clone()
            };
            let mut zone = self.starting_point(&start);
            // Addresses the parent sent for the zone's servers from outside
            // its own zone: a last resort, see `ask_zone`.
            let mut foreign_glue = Vec::new();
            // With QNAME minimisation, how many labels of `name` the current
            // zone's servers are shown (RFC 9156 §3). The minimised steps
            // ask for A, as RFC 9156 §2.1 recommends (NS, which RFC 7816
            // used, meets more broken servers) and Unbound does.
            let mut minimise = self.config.qname_minimization;
            let mut shown = zone.zone.num_labels() + 1;
            for _ in 0..MAX_REFERRALS {
                let (sent, sent_type) = if minimise && shown < name.num_labels() {
                    (name.trim_to(shown as usize), RecordType::A)
                } else {
                    (name.clone(), rtype)
                };
                let minimised = sent_type != rtype || sent != *name;
                let asked = self
                    .ask_zone(&zone, &foreign_glue, &sent, sent_type, minimised)
                    .await;
                let (classified, signed) = match asked {
                    Ok(c) => c,
                    Err(failure) if minimised && failure.kind != FailureKind::Other => {
                        // RFC 9156 §2.3: servers that choke on a shorter
                        // name are asked the full question instead.
                        self.abandon_minimisation(&zone, &sent, sent_type, &failure.reason);
                        minimise = false;
                        continue;
                    }
                    Err(failure) => return Link::Fail(failure),
                };
                match classified {
                    Classified::Referral {
                        delegation: mut child,
                        foreign_glue: foreign,
                    } => {
                        child.learned_from = zone.learned_from.clone();
                        child.learned_from.push(zone.zone.to_string());
                        self.keep_referral_ds(&child.zone, &signed);
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
                        foreign_glue = foreign;
                    }
                    Classified::Negative { nxdomain: true, .. } if minimised => {
                        // Some servers deny names that exist only because
                        // names below them do (empty non-terminals): without
                        // DNSSEC to prove it, ask the full question, as
                        // Unbound and Knot Resolver do, rather than trust
                        // RFC 8020 here.
                        self.abandon_minimisation(
                            &zone,
                            &sent,
                            sent_type,
                            "NXDOMAIN for a shorter name",
                        );
                        minimise = false;
                    }
                    _ if minimised => {
                        // The shorter name exists and is not a zone cut:
                        // show the same servers one more label.
                        shown += 1;
                    }
                    Classified::Answer { mut rrsets, next } => {
                        if let Err(failure) =
                            self.validate_answer(&zone.zone, &mut rrsets, &signed).await
                        {
                            return Link::Fail(failure);
                        }
                        self.limit_ttls(&mut rrsets);
                        self.tell_dnames(&rrsets);
                        self.cache_rrsets(&rrsets);
                        let records: Vec<Record> = rrsets.into_iter().flatten().collect();
                        return match next {
                            Some(target) => Link::Alias(records, target),
                            None => Link::Records(records),
                        };
                    }
                    Classified::Negative {
                        mut rrsets,
                        nxdomain,
                        mut soa,
                        ns,
                    } => {
                        if let Err(failure) =
                            self.validate_answer(&zone.zone, &mut rrsets, &signed).await
                        {
                            return Link::Fail(failure);
                        }
                        let last = rrsets
                            .last()
                            .and_then(|rs| cname_target(rs))
                            .unwrap_or_else(|| name.clone());
                        let dnssec = match self
                            .validate_denial(&zone.zone, &last, rtype, nxdomain, &mut soa, &signed)
                            .await
                        {
                            Ok(proof) => proof,
                            Err(failure) => return Link::Fail(failure),
                        };
                        self.limit_ttls(&mut rrsets);
                        self.tell_dnames(&rrsets);
                        self.cache_rrsets(&rrsets);
                        let negative = Negative {
                            nxdomain,
                            soa,
                            ns,
                            dnssec,
                        };
                        // The client is told the denial lasts as long as
                        // the cache keeps it, the first time as from the
                        // cache: never an SOA's TTL of 68 years.
                        let lasts = self.cache.denial_ttl(&negative);
                        let authorities = (negative.soa.iter())
                            .chain(&negative.ns)
                            .chain(&negative.dnssec)
                            .map(|record| {
                                let mut record = record.clone();
                                record.ttl = record.ttl.min(lasts);
                                record
                            })
                            .collect();
                        self.cache_negative(&LowerName::new(&last), rtype, negative);
                        return Link::Negative {
                            prefix: rrsets.into_iter().flatten().collect(),
                            nxdomain,
                            authorities,
                        };
                    }
                    Classified::Failure(reason) | Classified::Lame(reason) => {
                        return Link::Fail(Failure::unreachable(reason));
                    }
                }
            }
            Link::Fail(Failure::limit(format!(
                "more than {MAX_REFERRALS} referrals"
            )))
        })
    }

    fn abandon_minimisation(
        &mut self,
        zone: &Delegation,
        sent: &Name,
        sent_type: RecordType,
        reason: &str,
    ) {
        self.trail.emit(TraceEvent::MinimisationAbandoned {
            zone: zone.zone.to_string(),
            question: Question::new(sent, sent_type),
            reason: reason.to_string(),
        });
    }

    /// Every record of an RRset gets the RRset's smallest TTL (RFC 2181
    /// §5.2), kept within `--min-ttl` and `--max-ttl`: what the client is
    /// told is what the cache keeps.
    fn limit_ttls(&self, rrsets: &mut [Vec<Record>]) {
        for rrset in rrsets {
            let ttl = rrset.iter().map(|r| r.ttl).min().unwrap_or(0);
            let ttl = self.cache.answer_ttl(ttl);
            for record in rrset {
                record.ttl = ttl;
            }
        }
    }

    /// A DNAME followed in a server's answer is told: the DNAME's RRset is
    /// followed by the CNAME synthesised from it.
    fn tell_dnames(&mut self, rrsets: &[Vec<Record>]) {
        for pair in rrsets.windows(2) {
            let (Some(dname_record), Some(cname)) = (pair[0].first(), pair[1].first()) else {
                continue;
            };
            if dname_record.record_type() != RecordType::DNAME {
                continue;
            }
            let Some(target) = cname_target(std::slice::from_ref(cname)) else {
                continue;
            };
            self.trail.emit(TraceEvent::DnameFollowed {
                name: cname.name.to_string(),
                owner: dname_record.name.to_string(),
                target: target.to_string(),
                cached: false,
            });
        }
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

    fn cache_negative(&mut self, name: &LowerName, rtype: RecordType, negative: Negative) {
        let nxdomain = negative.nxdomain;
        let ttl = self.cache.put_negative(name, rtype, negative);
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
    /// response. Servers held down after failing, lame for the zone, or at
    /// unusable addresses are not asked. Servers whose addresses did not
    /// come as glue are looked up only when the others have failed, and
    /// never in a cycle; the parent's addresses from outside its own zone
    /// (`foreign_glue`) are tried last, when nothing else worked.
    async fn ask_zone(
        &mut self,
        zone: &Delegation,
        foreign_glue: &[Record],
        name: &Name,
        rtype: RecordType,
        minimised: bool,
    ) -> Result<(Classified, Signed), Failure> {
        let (known, unknown) = self.server_addresses(zone);
        let mut failures = Failures::default();
        let mut tried: Vec<SocketAddr> = Vec::new();
        let ordered = self.order(zone, &known);
        if ordered.is_empty() && !known.is_empty() {
            failures.note(
                FailureKind::NoReachableAuthority,
                format!(
                    "every server of {} failed recently or is lame for it (RFC 9520)",
                    zone.zone
                ),
            );
        }
        for server in ordered {
            tried.push(server.addr);
            if let Some(usable) = self
                .try_server(&server, zone, name, rtype, minimised, &mut failures)
                .await?
            {
                return Ok(usable);
            }
        }

        for ns_name in unknown {
            let Some(servers) = self.look_up_server(zone, &ns_name, &mut failures).await else {
                continue;
            };
            let servers: Vec<ServerView> = servers
                .into_iter()
                .filter(|s| !tried.contains(&s.addr))
                .collect();
            for server in self.order(zone, &servers) {
                tried.push(server.addr);
                if let Some(usable) = self
                    .try_server(&server, zone, name, rtype, minimised, &mut failures)
                    .await?
                {
                    return Ok(usable);
                }
            }
        }

        // The only way left: addresses the parent sent from outside its own
        // zone. Never cached as answers, and used only for this delegation.
        let mut foreign = Vec::new();
        for record in foreign_glue {
            let Some(ip) = address_of(record) else {
                continue;
            };
            let server = ServerView {
                name: record.name.to_string(),
                addr: SocketAddr::new(ip, self.config.upstream_port),
            };
            if tried.contains(&server.addr) {
                continue;
            }
            match unusable(server.addr, &self.own_addrs) {
                Some(why) => self.skip(zone, vec![server], why),
                None => foreign.push(server),
            }
        }
        let foreign = self.order(zone, &foreign);
        if !foreign.is_empty() {
            self.trail.emit(TraceEvent::OutOfBailiwickGlue {
                zone: zone.zone.to_string(),
                from_zone: zone.learned_from.last().cloned().unwrap_or_default(),
                servers: foreign.clone(),
            });
        }
        for server in foreign {
            if let Some(usable) = self
                .try_server(&server, zone, name, rtype, minimised, &mut failures)
                .await?
            {
                // Kept with the delegation, so the next question for the
                // zone does not meet the cycle again.
                let mut with_glue = zone.clone();
                with_glue.glue.extend(
                    foreign_glue
                        .iter()
                        .filter(|g| address_of(g) == Some(server.addr.ip()))
                        .cloned(),
                );
                self.cache.replace_delegation(with_glue);
                return Ok(usable);
            }
        }
        Err(failures.into_failure(&zone.zone))
    }

    /// The servers among `servers` to ask, best first: those held down or
    /// lame for the zone are set aside, and said so.
    fn order(&mut self, zone: &Delegation, servers: &[ServerView]) -> Vec<ServerView> {
        let ordered = self
            .servers
            .order(&LowerName::new(&zone.zone), servers, |s: &ServerView| {
                s.addr.ip()
            });
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
        if !ordered.lame.is_empty() {
            self.trail.emit(TraceEvent::ServersSkipped {
                zone: zone.zone.to_string(),
                servers: ordered.lame.clone(),
                reason: format!("lame for {}: they answered it without authority", zone.zone),
            });
        }
        ordered.usable
    }

    /// Look up the addresses of `ns_name`, a server of `zone` that came
    /// without usable glue. `None`, with the reason noted, when that would
    /// need the zone itself or a lookup already under way (a cycle).
    async fn look_up_server(
        &mut self,
        zone: &Delegation,
        ns_name: &Name,
        failures: &mut Failures,
    ) -> Option<Vec<ServerView>> {
        let lower = LowerName::new(ns_name);
        if LowerName::new(&zone.zone).zone_of(&lower) {
            failures.note(
                FailureKind::NoReachableAuthority,
                format!("{ns_name} is inside {} and came without glue", zone.zone),
            );
            return None;
        }
        if self.trail.ns_lookups.contains(&lower) {
            let mut cycle: Vec<String> = self
                .trail
                .ns_lookups
                .iter()
                .skip_while(|n| **n != lower)
                .map(ToString::to_string)
                .collect();
            cycle.push(ns_name.to_string());
            failures.note(
                FailureKind::NoReachableAuthority,
                format!(
                    "the name servers of {} can only be found through each other: {}",
                    zone.zone,
                    cycle.join(" → ")
                ),
            );
            return None;
        }
        if self.trail.ns_lookups.len() >= MAX_NS_LOOKUP_DEPTH {
            failures.note(
                FailureKind::Other,
                format!("name servers without glue more than {MAX_NS_LOOKUP_DEPTH} deep"),
            );
            return None;
        }
        self.trail.ns_lookups.push(lower);
        let found = self.resolve(ns_name, RecordType::A).await;
        self.trail.ns_lookups.pop();
        match &found.failure {
            Some(failure) => failures.note(failure.kind, failure.reason.clone()),
            None if found.answers.iter().all(|r| address_of(r).is_none()) => failures.note(
                FailureKind::NoReachableAuthority,
                format!("the name server {ns_name} has no address"),
            ),
            None => {}
        }
        let mut servers = Vec::new();
        for record in found
            .answers
            .iter()
            .filter(|r| r.name.eq_ignore_root(ns_name))
        {
            let Some(ip) = address_of(record) else {
                continue;
            };
            let addr = SocketAddr::new(ip, self.config.upstream_port);
            let server = ServerView {
                name: ns_name.to_string(),
                addr,
            };
            match unusable(addr, &self.own_addrs) {
                Some(why) => self.skip(zone, vec![server], why),
                None => servers.push(server),
            }
        }
        Some(servers)
    }

    fn skip(&mut self, zone: &Delegation, servers: Vec<ServerView>, reason: String) {
        self.trail.emit(TraceEvent::ServersSkipped {
            zone: zone.zone.to_string(),
            servers,
            reason,
        });
    }

    /// Ask one server of `zone`. `Some` classification to go on, or `None`
    /// with the reason noted; `Err` when the walk's budget is spent.
    async fn try_server(
        &mut self,
        server: &ServerView,
        zone: &Delegation,
        name: &Name,
        rtype: RecordType,
        minimised: bool,
        failures: &mut Failures,
    ) -> Result<Option<(Classified, Signed)>, Failure> {
        match self
            .query_server(server, &zone.zone, name, rtype, minimised)
            .await?
        {
            Asked::Usable(classified, apex) => {
                if let Some(apex) = apex {
                    self.adopt_child_ns(zone, apex);
                }
                Ok(Some(*classified))
            }
            Asked::Lame(reason) => {
                // A minimised question is no test of lameness: the server
                // may only choke on the shorter name (RFC 9156 §2.3).
                if !minimised {
                    self.servers
                        .mark_lame(server.addr.ip(), &LowerName::new(&zone.zone));
                    self.trail.emit(TraceEvent::ServerLame {
                        server: server.clone(),
                        zone: zone.zone.to_string(),
                        reason: reason.clone(),
                        for_secs: LAME_HOLD.as_secs(),
                    });
                }
                failures.note(
                    FailureKind::NoReachableAuthority,
                    format!("{} is lame for {} ({reason})", server.name, zone.zone),
                );
                Ok(None)
            }
            Asked::Failed(kind, reason) => {
                failures.note(kind, reason);
                Ok(None)
            }
        }
    }

    /// RFC 2181 §5.4.1: the zone's own NS set, sent with authority by one of
    /// its servers, ranks above the parent's referral and replaces it in the
    /// cache, for no longer than the referral had left.
    fn adopt_child_ns(&mut self, zone: &Delegation, apex: Delegation) {
        let sorted = |d: &Delegation| {
            let mut names: Vec<String> = ns_names(&d.ns)
                .into_iter()
                .map(|n| n.to_ascii_lowercase())
                .collect();
            names.sort();
            names
        };
        let (parent, child) = (sorted(zone), sorted(&apex));
        if parent == child {
            return;
        }
        if let Some(ttl) = self.cache.replace_delegation(apex) {
            self.trail.emit(TraceEvent::DelegationUpdated {
                zone: zone.zone.to_string(),
                parent_servers: parent,
                servers: child,
                ttl,
            });
        }
    }

    /// The servers of a delegation whose addresses are in its glue or the
    /// cache, and the names we would first have to look up. Addresses no
    /// server can have are skipped (and said so); a name left with none is
    /// looked up like one without glue.
    fn server_addresses(&mut self, zone: &Delegation) -> (Vec<ServerView>, Vec<Name>) {
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        let mut skipped = Vec::new();
        let mut reasons: Vec<String> = Vec::new();
        for target in zone.server_names() {
            let lower = LowerName::new(&target);
            let from_glue: Vec<_> = zone
                .glue
                .iter()
                .filter(|g| LowerName::new(&g.name) == lower)
                .filter_map(address_of)
                .collect();
            let addresses = if from_glue.is_empty() {
                self.cache
                    .answer(&lower, RecordType::A)
                    .map(|hit| hit.value.iter().filter_map(address_of).collect())
                    .unwrap_or_default()
            } else {
                from_glue
            };
            let mut usable = 0;
            for ip in addresses {
                let server = ServerView {
                    name: target.to_string(),
                    addr: SocketAddr::new(ip, self.config.upstream_port),
                };
                match unusable(server.addr, &self.own_addrs) {
                    Some(why) => {
                        if !reasons.contains(&why) {
                            reasons.push(why);
                        }
                        skipped.push(server);
                    }
                    None => {
                        usable += 1;
                        known.push(server);
                    }
                }
            }
            if usable == 0 {
                unknown.push(target.clone());
            }
        }
        if !skipped.is_empty() {
            self.skip(zone, skipped, reasons.join("; "));
        }
        (known, unknown)
    }
}
