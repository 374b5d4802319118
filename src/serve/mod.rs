//! What every DNS server here shares: the transports, the checks every
//! request gets before a role looks at it, EDNS in responses, and the
//! one-line query log.
//!
//! ```text
//!  UDP datagram ─┐                                   ┌─► encoded answer ─► UDP
//!                ├─► respond: parse (FORMERR if not) ─► role's RequestHandler
//!  TCP message  ─┘   (hickory's Request)             └─► encoded answer ─► TCP
//! ```
//!
//! A role (name server, resolver) is a hickory-server [`RequestHandler`]
//! given to [`run`]. The transports are ours: [`udp`] reads with one task
//! per core and, for name servers, replays answers already encoded; [`tcp`]
//! bounds connections in number and idle time (RFC 7766).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, LowerQuery, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_proto::rr::Record;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::exchange::Transport;
use crate::listen::DnsSockets;

pub(crate) mod respond;
pub mod rrl;
pub mod tcp;
pub mod udp;

pub use tcp::TcpLimits;
pub use udp::Answers;

/// How long a TCP client may stay idle between queries (RFC 7766 §6.2.3
/// suggests seconds, not minutes, for a busy server).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The UDP payload size we offer in EDNS answers: 1232 bytes fits the IPv6
/// minimum MTU without fragmentation (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Serve `handler` on already-bound sockets until `shutdown` is cancelled:
/// UDP with as many reading tasks as this process may use cores, TCP with
/// the default [`TcpLimits`].
pub async fn run<H: RequestHandler + Clone>(
    handler: H,
    sockets: Vec<DnsSockets>,
    answers: Answers,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_limited(handler, sockets, answers, None, shutdown).await
}

/// Like [`run`], with UDP answers rate-limited per client network
/// ([`rrl`]) when `rrl` gives answers per second.
pub async fn run_limited<H: RequestHandler + Clone>(
    handler: H,
    sockets: Vec<DnsSockets>,
    answers: Answers,
    rrl: Option<u32>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limiter = rrl.map(|rate| std::sync::Arc::new(rrl::RateLimiter::new(rate)));
    let mut tasks = tokio::task::JoinSet::new();
    for s in sockets {
        tasks.spawn(udp::serve(
            handler.clone(),
            s.udp,
            readers,
            answers,
            limiter.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(tcp::serve(
            handler.clone(),
            s.tcp,
            TcpLimits::default(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Send a role's response: `sections` (answer, authority, additional) or an
/// error rcode, with EDNS when the query had it, truncated whole when UDP
/// cannot carry it ([`crate::truncate`]), and logged in one line.
pub async fn reply<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    mut metadata: Metadata,
    sections: Result<[&[Record]; 3], ResponseCode>,
) -> ResponseInfo {
    let edns = response_edns(request);
    let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
    let sent = match sections {
        Err(code) => {
            metadata.response_code = code;
            response_handle
                .send_response(builder.build_no_records(metadata))
                .await
        }
        Ok(sections) if crate::truncate::must_truncate(request, edns.as_ref(), sections) => {
            metadata.truncation = true;
            response_handle
                .send_response(builder.build_no_records(metadata))
                .await
        }
        Ok([answers, authorities, additionals]) => {
            response_handle
                .send_response(builder.build(
                    metadata,
                    answers.iter(),
                    authorities.iter(),
                    std::iter::empty(),
                    additionals.iter(),
                ))
                .await
        }
    };
    match sent {
        Ok(info) => {
            log_query(request.src(), request, &info);
            info
        }
        Err(error) => {
            tracing::warn!(client = %request.src(), %error, "could not send response");
            send_failed(request)
        }
    }
}

/// The checks every query gets: a QUERY opcode (else NOTIMP), EDNS version 0
/// (else BADVERS), exactly one question (else FORMERR), class IN (else
/// REFUSED). Returns the question, or the rcode to answer with.
pub fn single_question(request: &Request) -> Result<&LowerQuery, ResponseCode> {
    if request.metadata.op_code != OpCode::Query {
        return Err(ResponseCode::NotImp);
    }
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return Err(ResponseCode::BADVERS);
    }
    let queries = request.queries.queries();
    if queries.len() != 1 {
        return Err(ResponseCode::FormErr);
    }
    if queries[0].query_class() != DNSClass::IN {
        return Err(ResponseCode::Refused);
    }
    Ok(&queries[0])
}

/// RFC 6891 §6.1.1: answer EDNS with EDNS. hickory truncates UDP answers to
/// the payload size in the *response's* OPT record, so it carries the
/// smaller of the client's buffer and ours.
pub fn response_edns(request: &Request) -> Option<Edns> {
    request.edns.as_ref().map(|req| {
        let mut edns = Edns::new();
        edns.set_max_payload(req.max_payload().clamp(512, EDNS_PAYLOAD));
        edns
    })
}

/// The transport a request came over, in our terms.
pub fn transport_of(request: &Request) -> Transport {
    match request.protocol() {
        Protocol::Udp => Transport::Udp,
        _ => Transport::Tcp,
    }
}

/// What to return when a response could not be sent at all.
pub fn send_failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: Default::default(),
    })
}

/// One line per query: who asked what, and what they got.
///
/// Under load the line is usually filtered out (`RUST_LOG=warn`); it is then
/// not formatted at all, so a quiet server pays nothing for it.
pub fn log_query(client: SocketAddr, request: &Request, info: &ResponseInfo) {
    if !query_log_enabled() {
        return;
    }
    let question = request
        .queries
        .queries()
        .first()
        .map(|q| format!("{} {}", q.name(), q.query_type()))
        .unwrap_or_else(|| "(no question)".into());
    log_query_line(client, request.protocol(), &question, info);
}

/// Whether the one-line query log is on (`dnstrail::query` at info).
pub fn query_log_enabled() -> bool {
    tracing::enabled!(target: "dnstrail::query", tracing::Level::INFO)
}

/// The query log line itself, for a question already put into words.
pub fn log_query_line(client: SocketAddr, proto: Protocol, question: &str, info: &ResponseInfo) {
    info!(
        target: "dnstrail::query",
        "{client} {proto} {question} -> {rcode} flags=[{flags}] answers={answers}",
        rcode = crate::trace::rcode_name(info.response_code),
        flags = info.flags(),
        answers = info.counts().answers,
    );
}
