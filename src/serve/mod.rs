//! The DNS front end every server here shares: one pipeline from the bytes
//! a client sent to the bytes it gets back, with the role (a name server,
//! the resolver) a small [`Responder`] in the middle.
//!
//! ```text
//!  UDP datagram ─┐
//!                ├─► fault? ─► parse ─► mandatory checks ─► rate limit ─► role
//!  TCP message  ─┘   (drop,    (FORMERR   (opcode, one      (per network   (Responder)
//!                     delay…)   if not)    question, class,  or address)       │
//!                                          EDNS version)                      ▼
//!  query log ◄── encode ◄── truncate (UDP: TC=1, no records) ◄── EDNS in the reply
//! ```
//!
//! The layers run in the order NLnetLabs' `domain` documents for its
//! server: transport, mandatory checks, middleware, service. A rule that
//! applies to every role (EDNS, truncation, rate limits, the query log,
//! faults) lives here once; a role sees only a checked question and answers
//! with sections and flags. The transports are [`udp`] (reading tasks per
//! core; a name server's answers encoded once and replayed, see [`replay`]) and [`tcp`]
//! (bounded connections, RFC 7766).

pub mod batch;
pub mod cookies;
pub mod encode;
pub mod identity;
pub mod querylog;
pub mod ratelimit;
pub mod replay;
pub mod tcp;
pub mod tsig;
pub mod udp;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio_util::sync::CancellationToken;

pub use crate::dns::Transport;
use crate::fault::{Fault, FaultSwitch};
use crate::listen::DnsSockets;
use cookies::{CookieSecret, Cookies};
use encode::{bare_header, encode_reply, udp_limit};
use identity::Identity;
use querylog::LogEntry;
use ratelimit::{RateLimit, RateLimiter, Verdict};
pub use tcp::TcpLimits;
pub use tsig::TsigKeys;

/// The UDP payload size we offer in EDNS, by default: 1232 bytes fits the
/// IPv6 minimum MTU without fragmentation (DNS flag day 2020). The same
/// figure is advertised by the resolver upstream.
pub const EDNS_PAYLOAD: u16 = 1232;

/// How long a TCP client may stay idle between queries (RFC 7766 §6.2.3
/// suggests seconds, not minutes, for a busy server).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One checked request, as a role sees it: exactly one question of class
/// IN, an opcode the role accepts, EDNS version 0 if any.
pub struct Request<'a> {
    pub src: SocketAddr,
    pub transport: Transport,
    pub message: &'a Message,
    /// The key the query was signed with, when its TSIG checked out.
    pub signed_by: Option<&'a Name>,
}

impl Request<'_> {
    /// The one question.
    pub fn query(&self) -> &Query {
        &self.message.queries[0]
    }

    pub fn recursion_desired(&self) -> bool {
        self.message.metadata.recursion_desired
    }

    /// The DO bit (RFC 3225): the client wants DNSSEC records.
    pub fn dnssec_ok(&self) -> bool {
        self.message
            .edns
            .as_ref()
            .is_some_and(|e| e.flags().dnssec_ok)
    }

    /// CD=1: the client will check signatures itself (RFC 4035 §3.2.2).
    pub fn checking_disabled(&self) -> bool {
        self.message.metadata.checking_disabled
    }
}

/// What a role answers: an rcode, the flags only it can know, the three
/// sections, and an Extended DNS Error (RFC 8914) when it has something to
/// explain.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub recursion_available: bool,
    pub authentic_data: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    pub extended_error: Option<ExtendedError>,
    /// Send TC=1 and no records whatever the size (a fault that pushes
    /// clients to TCP).
    pub truncated: bool,
}

impl Reply {
    /// An answer with no records and this rcode.
    pub fn rcode(rcode: ResponseCode) -> Reply {
        Reply {
            rcode,
            ..Reply::default()
        }
    }
}

/// An Extended DNS Error (RFC 8914): an info code, and words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedError {
    pub code: u16,
    pub text: String,
}

/// A role behind the pipeline: a question in, a reply out.
pub trait Responder: Send + Sync + 'static {
    /// Answer one checked request.
    fn respond(&self, request: &Request<'_>) -> impl Future<Output = Reply> + Send;

    /// Whether an answer depends on nothing but the question's bytes (a
    /// name server with fixed zones): then it is encoded once and replayed.
    fn replayable(&self) -> bool {
        false
    }

    /// A number that changes whenever the role's answers may (a zone
    /// updated): replayed answers from before are thrown away.
    fn version(&self) -> u64 {
        0
    }

    /// Opcodes this role handles besides QUERY; the others get NOTIMP.
    fn accepts(&self, op_code: OpCode) -> bool {
        op_code == OpCode::Query
    }

    /// The hot path: a reply the role already holds for exactly these query
    /// bytes (ID aside), written into `out` with the query's ID, without
    /// parsing or waiting. Called on the receive path, before anything else
    /// is done for the query; `None` sends it down the full pipeline.
    fn answer_now(
        &self,
        _query: &[u8],
        _src: SocketAddr,
        _transport: Transport,
        _out: &mut Vec<u8>,
    ) -> Option<Quick> {
        None
    }

    /// The full pipeline answered `query` with `encoded` (plain: no
    /// cookies, signatures, faults or limits in play), built from `reply`:
    /// the role may keep it for [`Responder::answer_now`].
    fn answered(
        &self,
        _query: &[u8],
        _src: SocketAddr,
        _transport: Transport,
        _reply: &Reply,
        _encoded: &[u8],
    ) {
    }
}

/// What the query log says of a reply from [`Responder::answer_now`].
#[derive(Debug, Clone)]
pub struct Quick {
    pub question: Option<querylog::LoggedQuestion>,
    pub rcode: ResponseCode,
    pub flags: querylog::Flags,
    pub answers: usize,
}

/// What the pipeline does besides asking the role; every field has a
/// command-line flag.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Answers (or questions) per second per client, and what happens past it.
    pub rate_limit: Option<RateLimit>,
    pub tcp: TcpLimits,
    /// The UDP payload size advertised in EDNS replies (RFC 6891 §6.2.3:
    /// ours, not an echo of the client's).
    pub edns_payload: u16,
    /// This server's name: what NSID (RFC 5001) and `CH TXT id.server.`
    /// (RFC 4892) say.
    pub identity: Option<Arc<str>>,
    /// Answer NSID requests with the identity.
    pub nsid: bool,
    /// Refuse `version.bind.` rather than tell the version.
    pub hide_version: bool,
    /// Keys for TSIG-signed queries; none: every signed query gets BADKEY.
    pub tsig: TsigKeys,
    /// Answer DNS cookies (RFC 7873) with server cookies of our own.
    pub cookies: bool,
    /// Set to make the server misbehave on purpose; shared with whoever
    /// breaks and heals it at run time.
    pub fault: FaultSwitch,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            rate_limit: None,
            tcp: TcpLimits::default(),
            edns_payload: EDNS_PAYLOAD,
            identity: None,
            nsid: false,
            hide_version: false,
            tsig: TsigKeys::default(),
            cookies: true,
            fault: FaultSwitch::default(),
        }
    }
}

/// Serve `responder` on already-bound sockets until `shutdown` is
/// cancelled: UDP with as many reading tasks as this process may use
/// cores, TCP within `options.tcp`.
pub async fn run<R: Responder>(
    responder: R,
    sockets: Vec<DnsSockets>,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let readers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tcp_limits = options.tcp;
    let pipeline = Arc::new(Pipeline::new(responder, options));
    let mut tasks = tokio::task::JoinSet::new();
    for s in sockets {
        tasks.spawn(udp::serve(
            pipeline.clone(),
            s.udp,
            readers,
            shutdown.clone(),
        ));
        tasks.spawn(tcp::serve(
            pipeline.clone(),
            s.tcp,
            tcp_limits,
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// A response ready to send, and what the query log says of it.
pub struct Answer {
    pub bytes: Vec<u8>,
    /// The messages after the first, for a zone transfer too big for one
    /// (TCP only, RFC 5936 §2.2).
    pub more: Vec<Vec<u8>>,
    pub log: Option<LogEntry>,
    /// Whether the same question's bytes will always get these bytes back
    /// (ID aside): the UDP transport may replay them.
    pub replayable: bool,
    /// Where the query's COOKIE option was, as hickory read the query: a
    /// replay patches one that ends it (see [`replay`]).
    pub query_cookie: replay::QueryCookie,
}

/// The layers between transport and role, shared by every transport task.
pub struct Pipeline<R> {
    responder: R,
    /// The secret of our DNS cookies, unless they are off.
    cookies: Option<CookieSecret>,
    limiter: Option<RateLimiter>,
    edns_payload: u16,
    identity: Identity,
    tsig: TsigKeys,
    fault: FaultSwitch,
}

impl<R: Responder> Pipeline<R> {
    pub fn new(responder: R, options: ServeOptions) -> Pipeline<R> {
        Pipeline {
            responder,
            cookies: options.cookies.then(CookieSecret::default),
            limiter: options.rate_limit.map(RateLimiter::new),
            edns_payload: options.edns_payload.max(512),
            identity: Identity {
                name: options.identity,
                nsid: options.nsid,
                hide_version: options.hide_version,
            },
            tsig: options.tsig,
            fault: options.fault,
        }
    }

    pub fn responder(&self) -> &R {
        &self.responder
    }

    /// The role's version (see [`Responder::version`]).
    pub fn version(&self) -> u64 {
        self.responder.version()
    }

    /// The fault in force now, if the server is set to misbehave.
    pub fn fault(&self) -> Option<Fault> {
        self.fault.get()
    }

    /// Whether UDP answers may be replayed now: the role says so, and no
    /// fault is bending them.
    pub fn replays(&self) -> bool {
        self.responder.replayable() && self.fault.get().is_none()
    }

    /// The hot path: the role's reply for exactly these bytes, if it holds
    /// one and nothing stands in the way (a limit over, a fault set), into
    /// `out`. Returns what the query log says of it.
    pub fn answer_now(
        &self,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> Option<Option<LogEntry>> {
        if self.limiter.is_some() && self.admit(src, transport) != Verdict::Send {
            return None;
        }
        if self.fault.get().is_some() {
            return None;
        }
        let quick = self.responder.answer_now(packet, src, transport, out)?;
        Some(querylog::enabled().then_some(LogEntry {
            client: src,
            transport,
            question: quick.question,
            rcode: quick.rcode,
            flags: quick.flags,
            answers: quick.answers,
        }))
    }

    /// The rate limiter's verdict on a message from `src`, before any work
    /// is done for it.
    pub fn admit(&self, src: SocketAddr, transport: Transport) -> Verdict {
        match &self.limiter {
            Some(limiter) => limiter.check(src.ip(), transport),
            None => Verdict::Send,
        }
    }

    /// Everything from bytes in to bytes out; `None` when nothing is to be
    /// sent (unparsable header, a response sent to us, a dropped query).
    pub async fn handle(
        &self,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Answer> {
        let verdict = self.admit(src, transport);
        self.handle_admitted(packet, src, transport, verdict).await
    }

    /// [`Pipeline::handle`] for a message the rate limiter has already seen.
    pub async fn handle_admitted(
        &self,
        packet: &[u8],
        src: SocketAddr,
        transport: Transport,
        verdict: Verdict,
    ) -> Option<Answer> {
        // Over the rate, a query that brings back a server cookie of ours
        // is still answered: its source address cannot be forged.
        let verdict = match verdict {
            Verdict::Drop | Verdict::Slip if self.has_valid_cookie(packet, src) => Verdict::Send,
            other => other,
        };
        match verdict {
            Verdict::Send | Verdict::Refuse => {}
            Verdict::Drop => return None,
            Verdict::Slip => {
                return ratelimit::slip_response(packet).map(|bytes| Answer {
                    bytes,
                    more: Vec::new(),
                    log: None,
                    replayable: false,
                    query_cookie: replay::QueryCookie::None,
                });
            }
        }
        let fault = self.fault.get();
        match fault {
            Some(Fault::Drop) => return None,
            Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
            _ => {}
        }

        let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
        if header.metadata.message_type == MessageType::Response {
            return None;
        }
        let message = match Message::from_vec(packet) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%src, %error, "FORMERR: the message does not parse");
                return Some(self.error_only(&header.metadata, src, transport));
            }
        };

        let mut metadata = Metadata::response_from_request(&message.metadata);
        let edns = self.reply_edns(&message);
        let mut signing = None;
        let mut refusal = None;
        if message.signature.is_some() {
            match self.tsig.check(packet, &message) {
                tsig::Checked::Verified {
                    signer,
                    request_mac,
                } => signing = Some((signer, request_mac)),
                tsig::Checked::Refused(refused) => refusal = Some(refused),
            }
        }
        let cookies = self
            .cookies
            .as_ref()
            .map_or(Cookies::None, |secret| secret.read(&message, src.ip()));
        let checked = if cookies == Cookies::Malformed {
            // RFC 7873 §5.2.2: a COOKIE option of the wrong length.
            Err(ResponseCode::FormErr)
        } else {
            self.mandatory_checks(&message)
        };
        let reply = if refusal.is_some() {
            Reply::rcode(ResponseCode::NotAuth)
        } else if let Some(reply) = self.identity.answer(&message) {
            reply
        } else {
            match checked {
                Err(rcode) => Reply::rcode(rcode),
                Ok(()) => {
                    if verdict == Verdict::Refuse {
                        Reply::rcode(ResponseCode::Refused)
                    } else if let Some(reply) = fault.and_then(|f| f.reply(transport)) {
                        reply
                    } else {
                        let request = Request {
                            src,
                            transport,
                            message: &message,
                            signed_by: signing.as_ref().map(|(signer, _)| signer.signer_name()),
                        };
                        self.responder.respond(&request).await
                    }
                }
            }
        };
        metadata.response_code = reply.rcode;
        metadata.authoritative = reply.authoritative;
        metadata.recursion_available = reply.recursion_available;
        metadata.authentic_data = reply.authentic_data;
        let edns = edns.map(|mut edns| {
            self.add_options(&message, &reply, &mut edns);
            if let (Cookies::Present { client, .. }, Some(secret)) = (&cookies, &self.cookies) {
                edns.options_mut()
                    .insert(secret.answer_option(client, src.ip()));
            }
            edns
        });

        let limit = match transport {
            Transport::Udp => usize::from(udp_limit(&message, self.edns_payload)),
            Transport::Tcp => usize::from(u16::MAX),
        };
        metadata.truncation = reply.truncated;
        let sections = if reply.truncated {
            [&[][..], &[][..], &[][..]]
        } else {
            [
                &reply.answers[..],
                &reply.authorities[..],
                &reply.additionals[..],
            ]
        };
        let mut bytes = encode_reply(
            &mut metadata,
            &message.queries,
            sections,
            edns.as_ref(),
            limit,
            None,
        );
        // A transfer too big for one message goes as several (unsigned: a
        // signed one would need each message's MAC chained to the last's,
        // RFC 8945 §5.3.1, so it is refused below as too large instead).
        let mut more = Vec::new();
        let too_big = metadata.truncation && !reply.truncated && transport == Transport::Tcp;
        if too_big
            && signing.is_none()
            && refusal.is_none()
            && message.metadata.op_code == OpCode::Query
            && message
                .queries
                .first()
                .is_some_and(|q| q.query_type() == hickory_proto::rr::RecordType::AXFR)
        {
            metadata.truncation = false;
            let mut messages = encode::encode_transfer(
                &metadata,
                &message.queries,
                &reply.answers,
                edns.as_ref(),
                limit,
            )
            .into_iter();
            if let Some(first) = messages.next() {
                bytes = first;
                more = messages.collect();
            } else {
                metadata.truncation = true;
            }
        }
        // A signed query gets a signed answer (or an error in a TSIG record):
        // the MAC covers the answer's bytes, so they are encoded again with
        // the record added at the end.
        let id = message.metadata.id;
        let signature = match (&signing, &refusal) {
            (Some((signer, request_mac)), _) => tsig::sign_answer(id, signer, request_mac, &bytes),
            (_, Some(refused)) => refused.record(id, &bytes),
            _ => None,
        };
        if let Some(signature) = &signature {
            bytes = encode_reply(
                &mut metadata,
                &message.queries,
                sections,
                edns.as_ref(),
                limit,
                Some(signature),
            );
        }
        let plain = checked.is_ok()
            && message.signature.is_none()
            && cookies == Cookies::None
            && verdict == Verdict::Send
            && fault.is_none();
        if plain {
            self.responder
                .answered(packet, src, transport, &reply, &bytes);
        }
        let log = querylog::enabled().then(|| LogEntry {
            client: src,
            transport,
            question: message
                .queries
                .first()
                .map(|q| std::sync::Arc::new((q.name().clone(), q.query_type()))),
            rcode: metadata.response_code,
            flags: querylog::Flags::of(&metadata),
            answers: if metadata.truncation {
                0
            } else {
                reply.answers.len()
            },
        });
        Some(Answer {
            bytes,
            more,
            log,
            // A cookie is patched into a replayed answer (see `replay`).
            replayable: checked.is_ok()
                && message.metadata.op_code == OpCode::Query
                && message.signature.is_none()
                && cookies != Cookies::Malformed
                && verdict == Verdict::Send
                && fault.is_none()
                && self.responder.replayable(),
            query_cookie: replay::QueryCookie::of(packet, &message),
        })
    }

    /// Whether a packet carries a server cookie we made for its sender.
    fn has_valid_cookie(&self, packet: &[u8], src: SocketAddr) -> bool {
        let Some(secret) = &self.cookies else {
            return false;
        };
        Message::from_vec(packet).is_ok_and(|message| {
            matches!(
                secret.read(&message, src.ip()),
                Cookies::Present {
                    server_valid: true,
                    ..
                }
            )
        })
    }

    /// The checks every query gets before a role sees it: an opcode the role
    /// handles (else NOTIMP), EDNS version 0 (else BADVERS), exactly one
    /// question (else FORMERR), class IN (else REFUSED).
    fn mandatory_checks(&self, message: &Message) -> Result<(), ResponseCode> {
        if !self.responder.accepts(message.metadata.op_code) {
            return Err(ResponseCode::NotImp);
        }
        if message.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return Err(ResponseCode::BADVERS);
        }
        if message.queries.len() != 1 {
            return Err(ResponseCode::FormErr);
        }
        if message.queries[0].query_class() != DNSClass::IN {
            return Err(ResponseCode::Refused);
        }
        Ok(())
    }

    /// RFC 6891 §6.1.1: answer EDNS with EDNS, advertising our own payload
    /// size (§6.2.3) and copying the DO bit (RFC 3225 §3).
    fn reply_edns(&self, query: &Message) -> Option<Edns> {
        query.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(self.edns_payload);
            edns.set_dnssec_ok(asked.flags().dnssec_ok);
            edns
        })
    }

    /// NSID when asked for and given, and the role's Extended DNS Error.
    fn add_options(&self, query: &Message, reply: &Reply, edns: &mut Edns) {
        if let Some(nsid) = self.identity.nsid_for(query) {
            edns.options_mut().insert(nsid);
        }
        if let Some(error) = &reply.extended_error {
            let mut data = error.code.to_be_bytes().to_vec();
            data.extend_from_slice(error.text.as_bytes());
            edns.options_mut().insert(EdnsOption::Unknown(15, data));
        }
    }

    /// FORMERR for a message whose header could be read but nothing else.
    fn error_only(&self, query: &Metadata, src: SocketAddr, transport: Transport) -> Answer {
        let mut metadata = Metadata::response_from_request(query);
        metadata.response_code = ResponseCode::FormErr;
        Answer {
            bytes: bare_header(&metadata),
            more: Vec::new(),
            log: querylog::enabled().then(|| LogEntry {
                client: src,
                transport,
                question: None,
                rcode: ResponseCode::FormErr,
                flags: querylog::Flags::of(&metadata),
                answers: 0,
            }),
            replayable: false,
            query_cookie: replay::QueryCookie::None,
        }
    }
}
