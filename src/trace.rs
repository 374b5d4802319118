//! One event type for every hop of the story.
//!
//! The resolver emits [`TraceEvent`]s as it works: the question, what the
//! cache said, each upstream question and its response, what it cached, the
//! answer. The browser adds its own (the lookup, the HTTP request, the page).
//! Tests assert on these events; the terminal view, `--json` lines, the
//! control endpoint and the web page's sequence diagram all render the same
//! values.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::rr::{Record, RecordType};
use serde::{Deserialize, Serialize};

use crate::exchange::Transport;

/// A question as people write it: `www.example.com. A`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Question {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
}

impl Question {
    pub fn new(name: &impl ToString, rtype: RecordType) -> Question {
        Question {
            name: name.to_string(),
            rtype: rtype.to_string(),
        }
    }
}

impl std::fmt::Display for Question {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
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
            rtype: record.record_type().to_string(),
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
        rcode: String,
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
    /// What that server said, and how long it took.
    UpstreamResponse {
        server: ServerView,
        question: Question,
        response: ResponseKind,
        rtt_us: u64,
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
        #[serde(rename = "type")]
        rtype: Option<String>,
        ttl: u32,
    },
    /// The resolver's reply to the client.
    AnswerReturned {
        question: Question,
        rcode: String,
        records: Vec<RecordView>,
        upstream_queries: usize,
        /// Why, when the answer is SERVFAIL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
        elapsed_us: u64,
    },
    /// The browser asked its resolver for the site's address.
    BrowserLookup {
        host: String,
        resolver: SocketAddr,
        addresses: Vec<IpAddr>,
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

/// An event with when it happened, relative to the start of its resolution
/// (or visit), and which resolution it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traced {
    pub resolution: u64,
    pub at_us: u64,
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// Where events go. Cheap to clone; every clone feeds the same listeners.
#[derive(Clone, Default)]
pub struct TraceSink {
    listeners: Arc<Mutex<Vec<Listener>>>,
}

type Listener = Box<dyn Fn(&Traced) + Send + Sync>;

impl TraceSink {
    pub fn new() -> TraceSink {
        TraceSink::default()
    }

    /// Call `listener` with every event from now on.
    pub fn subscribe(&self, listener: impl Fn(&Traced) + Send + Sync + 'static) {
        self.listeners
            .lock()
            .expect("trace listeners lock")
            .push(Box::new(listener));
    }

    /// Collect events into a shared vector (what tests and `demo` use).
    pub fn collector(&self) -> Arc<Mutex<Vec<Traced>>> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        self.subscribe(move |e| sink.lock().expect("trace collector lock").push(e.clone()));
        events
    }

    pub fn emit(&self, event: &Traced) {
        for listener in self.listeners.lock().expect("trace listeners lock").iter() {
            listener(event);
        }
    }
}

/// An rcode's mnemonic, as `dig` prints it (NOERROR, NXDOMAIN, SERVFAIL…).
pub fn rcode_name(rcode: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode::*;
    match rcode {
        NoError => "NOERROR".into(),
        FormErr => "FORMERR".into(),
        ServFail => "SERVFAIL".into(),
        NXDomain => "NXDOMAIN".into(),
        NotImp => "NOTIMP".into(),
        Refused => "REFUSED".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}
