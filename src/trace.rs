//! One event type for every hop of the story, and the sink that carries
//! events, in the order they happened, to whoever watches.
//!
//! The resolver emits [`TraceEvent`]s as it works: the question, what the
//! cache said, each upstream question and its response, what it cached, the
//! answer. The browser adds its own (its question to the resolver, the
//! addresses, the HTTP request, the page). Tests assert on these events; the
//! terminal story, `--json` lines, the control endpoint and the web page's
//! sequence diagram all render the same values.
//!
//! ```text
//!  resolver ──emit──┐                       ┌──► demo's story printer
//!  browser  ──emit──┼──► TraceSink ──stamp──┼──► resolver --json writer
//!  (any task)       │   (seq, at_us,        └──► the page's live stream
//!                   │    one clock)
//! ```
//!
//! Every event is stamped when it is emitted, on the sink's one clock, under
//! the same lock that queues it: so `seq` and `at_us` only go forward, in
//! every subscriber's view. Subscribers read from a bounded queue of their
//! own; one that falls behind loses its oldest events, and is told how many
//! (`dropped`), but never slows the resolver down. No subscriber code runs
//! while the lock is held.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Record, RecordType};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::exchange::Transport;

/// A question as people write it: `www.example.com. A`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Question {
    pub name: String,
    #[serde(rename = "type", with = "rtype_text")]
    pub rtype: RecordType,
}

impl Question {
    pub fn new(name: &impl ToString, rtype: RecordType) -> Question {
        Question {
            name: name.to_string(),
            rtype,
        }
    }
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, rtype_name(self.rtype))
    }
}

/// A record type's name as `dig` writes it: `A`, `MX`, or `TYPE65534` for
/// one without a name (RFC 3597).
pub fn rtype_name(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(number) => format!("TYPE{number}"),
        known => known.to_string(),
    }
}

/// A record as `dig` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    pub name: String,
    pub ttl: u32,
    #[serde(rename = "type")]
    pub rtype: String,
    pub data: String,
}

impl From<&Record> for RecordView {
    fn from(record: &Record) -> RecordView {
        RecordView {
            name: record.name.to_string(),
            ttl: record.ttl,
            rtype: rtype_name(record.record_type()),
            data: record.data.to_string(),
        }
    }
}

impl std::fmt::Display for RecordView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

/// A name server the resolver asked: its name (when known) and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerView {
    pub name: String,
    pub addr: SocketAddr,
}

/// The three kinds of cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    /// An RRset: the answer to a question.
    Answer,
    /// A zone's NS set and their addresses: where to ask next time.
    Delegation,
    /// NXDOMAIN or NODATA, for the SOA-derived TTL (RFC 2308).
    Negative,
    /// A resolution that failed, not tried again for a while (RFC 9520).
    Failure,
}

/// What an upstream server's response meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResponseKind {
    /// "Ask them instead": a zone cut, its name servers and glue addresses.
    Referral {
        zone: String,
        servers: Vec<String>,
        glue: usize,
    },
    /// The records asked for (or a CNAME toward them).
    Answer {
        records: Vec<RecordView>,
    },
    NxDomain,
    NoData,
    /// TC=1: the answer did not fit in UDP; the resolver retries over TCP.
    Truncated,
    /// An error rcode (SERVFAIL, REFUSED, …) or a response that made no sense.
    Failure {
        reason: String,
    },
    /// No response within the timeout.
    Timeout,
}

/// Which link of the chain of trust a check is (RFC 4035 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStep {
    /// The anchor zone's DNSKEY RRset against the trust anchor.
    Anchor,
    /// A zone's DNSKEY RRset against the DS its parent published.
    Dnskey,
    /// A child's DS RRset, signed by its parent (or proven absent).
    Ds,
    /// An RRset of the answer against its RRSIG.
    Rrset,
    /// NXDOMAIN or NODATA against the NSEC (or NSEC3) records proving it.
    Denial,
}

/// One step of a resolution, or of a browser's visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A stub client's question reached the resolver.
    QuestionReceived {
        client: SocketAddr,
        question: Question,
        transport: Transport,
    },
    /// The cache had the answer: no server is asked.
    CacheAnswerHit {
        question: Question,
        records: Vec<RecordView>,
    },
    /// The cache had a negative answer (NXDOMAIN or NODATA).
    CacheNegativeHit {
        question: Question,
        #[serde(with = "rcode_text")]
        rcode: ResponseCode,
        ttl: u32,
    },
    /// The same question failed a moment ago: the failure is the answer
    /// until it expires (RFC 9520).
    CacheFailureHit {
        question: Question,
        reason: String,
        ttl: u32,
    },
    /// The cache knew the name servers of `zone`: the servers of the zones
    /// above it (`skipped`) need not be asked.
    CacheDelegationHit {
        zone: String,
        servers: Vec<String>,
        ttl: u32,
        skipped: Vec<String>,
    },
    /// The cache had nothing for the question.
    CacheMiss { question: Question },
    /// The resolver sends a question to a name server.
    UpstreamQuery {
        server: ServerView,
        zone: String,
        question: Question,
        transport: Transport,
    },
    /// What that server said, and how long it took; `nsid` is the name
    /// it gave itself (RFC 5001), when it did.
    UpstreamResponse {
        server: ServerView,
        question: Question,
        response: ResponseKind,
        rtt_us: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nsid: Option<String>,
    },
    /// Responses came for a question to `server` that were not taken as
    /// its answer: another ID or question, the name in another case than
    /// sent (0x20), a cookie not ours (RFC 7873). Forgeries, or late
    /// answers to earlier questions; the real answer is still awaited.
    ResponsesIgnored {
        server: ServerView,
        question: Question,
        ignored: crate::exchange::Ignored,
    },
    /// Servers of `zone` that failed recently are not asked (RFC 9520);
    /// the longest of them is held down `for_ms` more.
    ServersHeldDown {
        zone: String,
        servers: Vec<ServerView>,
        for_ms: u64,
    },
    /// A server answered for `zone` as if it did not serve it (no AA and no
    /// referral, a referral upward, REFUSED): it is lame for that zone and
    /// not asked about it again for `for_secs`.
    ServerLame {
        server: ServerView,
        zone: String,
        reason: String,
        for_secs: u64,
    },
    /// Servers of `zone` that are not asked, and why: lame for the zone,
    /// or at an address no name server can have (0.0.0.0, broadcast, the
    /// resolver's own).
    ServersSkipped {
        zone: String,
        servers: Vec<ServerView>,
        reason: String,
    },
    /// A minimised question (RFC 9156) got no usable answer from any
    /// server of `zone`: the full question is asked instead.
    MinimisationAbandoned {
        zone: String,
        question: Question,
        reason: String,
    },
    /// The name servers of `zone` can only be found through each other (a
    /// cycle): the addresses its parent `from_zone` sent for them from
    /// outside its own zone are used, as the only way in.
    OutOfBailiwickGlue {
        zone: String,
        from_zone: String,
        servers: Vec<ServerView>,
    },
    /// A server of `zone` named the zone's own NS set, which replaces the
    /// parent's referral (RFC 2181 §5.4.1) for at most what was left of it.
    DelegationUpdated {
        zone: String,
        parent_servers: Vec<String>,
        servers: Vec<String>,
        ttl: u32,
    },
    /// A DNAME (RFC 6672) renamed `name` to `target`: the synthesised CNAME
    /// goes in the answer; `cached` when the DNAME came from the cache.
    DnameFollowed {
        name: String,
        owner: String,
        target: String,
        cached: bool,
    },
    /// Records a server sent that answer nothing asked (other types, other
    /// names, data from outside its zone): ignored, neither used nor cached.
    RecordsIgnored {
        server: ServerView,
        records: Vec<RecordView>,
    },
    /// A server of `zone` denied a name (NXDOMAIN, or NODATA) with the SOA
    /// of another zone. That SOA says nothing of `zone`: it is dropped, and
    /// the denial passed on without one, uncached (a denial lives as long
    /// as its SOA says, RFC 2308 §5).
    ForeignSoaIgnored {
        server: ServerView,
        zone: String,
        soa: RecordView,
        nxdomain: bool,
    },
    /// The same question is already being resolved for another client:
    /// this one waits for that answer instead of asking again.
    JoinedInFlight { question: Question, resolution: u64 },
    /// Every server failed, so an expired answer is served with a short
    /// TTL (serve-stale, RFC 8767).
    ServedStale {
        question: Question,
        records: Vec<RecordView>,
        expired_for: u64,
    },
    /// Something went into the cache, for `ttl` seconds.
    Cached {
        kind: CacheKind,
        name: String,
        /// The type cached; none for a delegation or an NXDOMAIN, which
        /// covers every type at the name.
        #[serde(rename = "type", with = "opt_rtype_text")]
        rtype: Option<RecordType>,
        /// A negative entry for the whole name (NXDOMAIN) rather than one
        /// type (NODATA).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        nxdomain: bool,
        ttl: u32,
    },
    /// A link of the chain of trust checked: what (`step`, `name`,
    /// `rtype`), vouched for by which zone's keys (`zone`, `key_tags`),
    /// and the verdict; `ede` is the Extended DNS Error a bogus one gives.
    DnssecChecked {
        step: ChainStep,
        zone: String,
        name: String,
        #[serde(rename = "type", with = "opt_rtype_text")]
        rtype: Option<RecordType>,
        key_tags: Vec<u16>,
        security: crate::dnssec::Security,
        detail: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ede: Option<u16>,
    },
    /// The resolver's reply to the client.
    AnswerReturned {
        question: Question,
        #[serde(with = "rcode_text")]
        rcode: ResponseCode,
        records: Vec<RecordView>,
        upstream_queries: usize,
        /// Why, when the answer is SERVFAIL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
        elapsed_us: u64,
        /// Validated as secure: the AD bit, for a client that wants it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        authentic: bool,
        /// The Extended DNS Error the client is told (RFC 8914), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ede: Option<u16>,
    },
    /// A visit of the demo (or the lab's page) begins: what it will do.
    VisitStarted {
        visit: u32,
        label: String,
        title: String,
        /// The URL visited, or the question asked (`blog.example.com. AAAA`).
        target: String,
        /// What the user does, in words (step 1 of the story).
        doing: String,
    },
    /// The visit ended: what it came to, in words, and whether it did what
    /// it set out to do.
    VisitEnded {
        visit: u32,
        ok: bool,
        summary: String,
    },
    /// The resolver's clock was moved forward: TTLs ran down that far.
    ClockAdvanced { seconds: u64, skew_secs: u64 },
    /// The resolver's cache was emptied.
    CacheFlushed,
    /// A name server was set to fail (`fault`), or healed (none).
    FaultSet {
        server: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<String>,
    },
    /// A zone changed where it is served: through a dynamic update, the
    /// control endpoint, or a transfer from its primary. Its name servers
    /// answer the new data from now on; resolvers keep what they cached.
    ZoneChanged {
        zone: String,
        serial: u32,
        /// How it came: `update` (RFC 2136), `lab` or `transfer`.
        by: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        deleted: Vec<RecordView>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        added: Vec<RecordView>,
    },
    /// The browser's stub resolver sends its questions (A and AAAA, as
    /// browsers ask, RFC 8305) to the resolver.
    BrowserQuery {
        host: String,
        resolver: SocketAddr,
        #[serde(with = "rtypes_text")]
        types: Vec<RecordType>,
    },
    /// The browser's lookup ended: the addresses found, or why none.
    BrowserLookup {
        host: String,
        resolver: SocketAddr,
        addresses: Vec<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        elapsed_us: u64,
    },
    /// The browser sent an HTTP request.
    HttpRequest {
        method: String,
        url: String,
        addr: SocketAddr,
    },
    /// The web server's response reached the browser.
    HttpResponse {
        status: u16,
        title: Option<String>,
        bytes: usize,
        elapsed_us: u64,
    },
}

/// An event with when it happened and which resolution (or visit) it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traced {
    /// Its place in the sink's order: strictly increasing.
    pub seq: u64,
    pub resolution: u64,
    /// Microseconds since the sink's epoch (the stack's start): one clock
    /// for every role, so times only go forward.
    pub at_us: u64,
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// How many events a subscriber may fall behind before it loses the oldest.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// Where events go. Cheap to clone; every clone feeds the same subscribers
/// and stamps on the same clock.
#[derive(Clone)]
pub struct TraceSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    epoch: Instant,
    /// Held while an event is stamped, queued and remembered, and for
    /// nothing else.
    order: Mutex<Ordered>,
    queue: broadcast::Sender<Arc<Traced>>,
}

/// The sink's order: the next sequence number, and the latest events, so
/// that a watcher that reconnects can resume where it left off.
struct Ordered {
    next: u64,
    history: std::collections::VecDeque<Arc<Traced>>,
}

/// How many of the latest events are kept for watchers that resume.
const HISTORY: usize = 2048;

impl Default for TraceSink {
    fn default() -> TraceSink {
        TraceSink::new()
    }
}

impl TraceSink {
    /// A sink whose clock starts now.
    pub fn new() -> TraceSink {
        TraceSink {
            inner: Arc::new(SinkInner {
                epoch: Instant::now(),
                order: Mutex::new(Ordered {
                    next: 1,
                    history: std::collections::VecDeque::with_capacity(HISTORY),
                }),
                queue: broadcast::channel(SUBSCRIBER_BACKLOG).0,
            }),
        }
    }

    /// Microseconds since the sink's epoch: the time an event emitted now
    /// would carry.
    pub fn now_us(&self) -> u64 {
        self.inner.epoch.elapsed().as_micros() as u64
    }

    /// Stamp `event` and hand it to every subscriber.
    pub fn emit(&self, resolution: u64, event: TraceEvent) -> Arc<Traced> {
        // A poisoned lock still holds a good counter: a panic elsewhere must
        // not stop the trace.
        let mut order = self.inner.order.lock().unwrap_or_else(|e| e.into_inner());
        let traced = Arc::new(Traced {
            seq: order.next,
            resolution,
            at_us: self.now_us(),
            event,
        });
        order.next += 1;
        if order.history.len() == HISTORY {
            order.history.pop_front();
        }
        order.history.push_back(traced.clone());
        // Queues the event and wakes subscribers; runs no subscriber code.
        let _ = self.inner.queue.send(traced.clone());
        drop(order);
        traced
    }

    /// Whether anyone is watching (events are still stamped and kept by
    /// their resolution when nobody is).
    pub fn has_subscribers(&self) -> bool {
        self.inner.queue.receiver_count() > 0
    }

    /// The remembered events after `seq` (all that are kept, for 0), and
    /// every event from then on: what a watcher that reconnects needs to
    /// carry on without a gap or a duplicate, as far as the history reaches.
    pub fn subscribe_since(&self, seq: u64) -> (Vec<Arc<Traced>>, TraceSubscriber) {
        let order = self.inner.order.lock().unwrap_or_else(|e| e.into_inner());
        let missed = order
            .history
            .iter()
            .filter(|e| e.seq > seq)
            .cloned()
            .collect();
        // Subscribed under the same lock as the history was read: the next
        // event emitted is the first the subscriber gets.
        let subscriber = self.subscribe();
        drop(order);
        (missed, subscriber)
    }

    /// Every event from now on, in order.
    pub fn subscribe(&self) -> TraceSubscriber {
        TraceSubscriber {
            queue: self.inner.queue.subscribe(),
            dropped: 0,
        }
    }
}

/// One watcher's view of the sink: its own bounded queue.
pub struct TraceSubscriber {
    queue: broadcast::Receiver<Arc<Traced>>,
    dropped: u64,
}

impl TraceSubscriber {
    /// The next event, waiting for it; `None` once every sink is gone.
    pub async fn recv(&mut self) -> Option<Arc<Traced>> {
        loop {
            match self.queue.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => self.dropped += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Traced>> {
        loop {
            match self.queue.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.dropped += n,
                Err(_) => return None,
            }
        }
    }

    /// Wait for the first event that `matches`, skipping the others.
    pub async fn wait_for(&mut self, matches: impl Fn(&Traced) -> bool) -> Option<Arc<Traced>> {
        while let Some(event) = self.recv().await {
            if matches(&event) {
                return Some(event);
            }
        }
        None
    }

    /// Events this subscriber lost because it fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// An rcode's mnemonic, as `dig` prints it (NOERROR, NXDOMAIN, SERVFAIL…).
pub fn rcode_name(rcode: ResponseCode) -> String {
    use ResponseCode::*;
    match rcode {
        NoError => "NOERROR".into(),
        FormErr => "FORMERR".into(),
        ServFail => "SERVFAIL".into(),
        NXDomain => "NXDOMAIN".into(),
        NotImp => "NOTIMP".into(),
        Refused => "REFUSED".into(),
        NotAuth => "NOTAUTH".into(),
        BADVERS => "BADVERS".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// The rcode an mnemonic names, or its number.
fn rcode_from_name(text: &str) -> Option<ResponseCode> {
    use ResponseCode::*;
    Some(match text {
        "NOERROR" => NoError,
        "FORMERR" => FormErr,
        "SERVFAIL" => ServFail,
        "NXDOMAIN" => NXDomain,
        "NOTIMP" => NotImp,
        "REFUSED" => Refused,
        "NOTAUTH" => NotAuth,
        "BADVERS" => BADVERS,
        number => {
            let n = number.parse::<u16>().ok()?;
            ResponseCode::from((n >> 4) as u8, (n & 0xf) as u8)
        }
    })
}

/// Serde for rcodes as `dig` writes them.
mod rcode_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(rcode: &ResponseCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rcode_name(*rcode))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ResponseCode, D::Error> {
        let text = String::deserialize(d)?;
        rcode_from_name(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rcode {text}")))
    }
}

/// Serde for record types as `dig` writes them (`A`, `TYPE65534`).
mod rtype_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(rtype: &RecordType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rtype_name(*rtype))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RecordType, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown type {text}")))
    }

    pub(super) fn parse(text: &str) -> Option<RecordType> {
        match text.strip_prefix("TYPE") {
            Some(number) if number.bytes().all(|b| b.is_ascii_digit()) => {
                Some(RecordType::from(number.parse::<u16>().ok()?))
            }
            _ => text.parse().ok(),
        }
    }
}

/// Serialize an rcode as `dig` writes it (for views that are only ever
/// written).
pub fn serialize_rcode<S: serde::Serializer>(
    rcode: &ResponseCode,
    s: S,
) -> Result<S::Ok, S::Error> {
    rcode_text::serialize(rcode, s)
}

/// Serialize an optional record type as `dig` writes it (for views that
/// are only ever written).
pub fn serialize_opt_rtype<S: serde::Serializer>(
    rtype: &Option<RecordType>,
    s: S,
) -> Result<S::Ok, S::Error> {
    opt_rtype_text::serialize(rtype, s)
}

mod opt_rtype_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        rtype: &Option<RecordType>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match rtype {
            Some(rtype) => s.serialize_str(&rtype_name(*rtype)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<RecordType>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                rtype_text::parse(&text)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown type {text}")))
            })
            .transpose()
    }
}

mod rtypes_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(types: &[RecordType], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(types.iter().map(|t| rtype_name(*t)))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<RecordType>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|text| {
                rtype_text::parse(&text)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown type {text}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_subscribers_in_order_with_times_that_only_go_forward() {
        let sink = TraceSink::new();
        let mut watcher = sink.subscribe();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        sink.emit(
                            t,
                            TraceEvent::CacheMiss {
                                question: Question::new(&"www.example.", RecordType::A),
                            },
                        );
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut last = (0, 0);
        for _ in 0..2000 {
            let event = watcher.try_recv().expect("every event queued");
            assert!(event.seq > last.0 && event.at_us >= last.1);
            last = (event.seq, event.at_us);
        }
        assert_eq!(watcher.dropped(), 0);
    }

    #[test]
    fn typed_fields_read_as_dig_writes_them() {
        let event = TraceEvent::Cached {
            kind: CacheKind::Negative,
            name: "nope.example.".into(),
            rtype: None,
            nxdomain: true,
            ttl: 900,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], serde_json::Value::Null);
        assert_eq!(json["nxdomain"], true);
        let answer = TraceEvent::AnswerReturned {
            question: Question::new(&"x.example.", RecordType::Unknown(65534)),
            rcode: ResponseCode::NXDomain,
            records: Vec::new(),
            upstream_queries: 1,
            failure: None,
            elapsed_us: 5,
            authentic: false,
            ede: None,
        };
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["rcode"], "NXDOMAIN");
        assert_eq!(json["question"]["type"], "TYPE65534");
        let back: TraceEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, answer);
    }
}
