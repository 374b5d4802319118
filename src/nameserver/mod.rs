//! The authoritative name servers: the root, `.com`, and example.com's four.
//!
//! ```text
//!   resolver ──question──► name server ──► zone(s) loaded from zone files
//!            ◄─referral or answer──┘
//! ```
//!
//! One module serves every zone file; the `root`, `tld` and `auth`
//! subcommands are presets of it that differ only in the zone and the
//! addresses (see [`crate::topology`]). The root and `.com` mostly *refer*:
//! they do not know `www.example.com`, only who is closer to knowing. The
//! hosted zone's servers *answer*, with authority.
//!
//! hickory-server's [`Server`] does the transport: UDP and TCP on every
//! address (RFC 7766), FORMERR for packets that do not parse, truncation with
//! TC=1 when a UDP answer exceeds the client's buffer. The answers come from
//! [`answer::lookup`], ours, because hickory's catalog gets referrals wrong
//! (AA set, glue missing; see `NOTES-hickory-0.26.md`).

pub mod answer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::listen::DnsSockets;
use crate::zone::Zone;

pub use answer::{Outcome, lookup};

/// How long a TCP client may stay idle between queries (RFC 7766 §6.2.3
/// suggests seconds, not minutes, for a busy server).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The UDP payload size we offer in EDNS answers: 1232 bytes fits the IPv6
/// minimum MTU without fragmentation (DNS flag day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;

/// An authoritative server for one or more zones.
#[derive(Clone)]
pub struct NameServer {
    zones: Arc<[Zone]>,
}

impl NameServer {
    pub fn new(zones: Vec<Zone>) -> NameServer {
        NameServer {
            zones: zones.into(),
        }
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The deepest zone containing `name`: a server holding both `com.` and
    /// `example.com.` answers `www.example.com` from the latter.
    pub fn zone_for(&self, name: &LowerName) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| z.contains(name))
            .max_by_key(|z| z.origin().num_labels())
    }
}

/// Serve `server` on already-bound sockets until `shutdown` is cancelled.
pub async fn run(
    server: NameServer,
    sockets: Vec<DnsSockets>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut dns = Server::new(server);
    for s in sockets {
        dns.register_socket(s.udp);
        dns.register_listener(s.tcp, TCP_IDLE_TIMEOUT, 64);
    }
    let token = dns.shutdown_token().clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        token.cancel();
    });
    dns.block_until_done().await?;
    Ok(())
}

#[async_trait::async_trait]
impl RequestHandler for NameServer {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        // RFC 6891 §6.1.1: answer EDNS with EDNS, and truncate UDP answers to
        // the smaller of the client's buffer and ours.
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().clamp(512, EDNS_PAYLOAD));
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());

        let error = if request.metadata.op_code != OpCode::Query {
            Some(ResponseCode::NotImp)
        } else if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Some(ResponseCode::BADVERS)
        } else if request.queries.len() != 1 {
            Some(ResponseCode::FormErr)
        } else {
            None
        };
        let client = request.src();

        let result = match error {
            Some(code) => {
                metadata.response_code = code;
                response_handle
                    .send_response(builder.build_no_records(metadata))
                    .await
            }
            None => {
                let query = &request.queries.queries()[0];
                let zone = (query.query_class() == DNSClass::IN)
                    .then(|| self.zone_for(query.name()))
                    .flatten();
                match zone {
                    None => {
                        // Not our zone: a name server is not a resolver.
                        metadata.response_code = ResponseCode::Refused;
                        response_handle
                            .send_response(builder.build_no_records(metadata))
                            .await
                    }
                    Some(zone) => {
                        let answer = lookup(zone, query.name(), query.query_type());
                        metadata.authoritative = answer.authoritative;
                        metadata.response_code = answer.rcode;
                        response_handle
                            .send_response(builder.build(
                                metadata,
                                answer.answers.iter(),
                                answer.authorities.iter(),
                                std::iter::empty(),
                                answer.additionals.iter(),
                            ))
                            .await
                    }
                }
            }
        };

        match result {
            Ok(info) => {
                log_query(client, request, &info);
                info
            }
            Err(error) => {
                warn!(%client, %error, "could not send response");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}

/// One line per query: who asked what, and what they got.
fn log_query(client: SocketAddr, request: &Request, info: &ResponseInfo) {
    let question = request
        .queries
        .queries()
        .first()
        .map(|q| format!("{} {}", q.name(), q.query_type()))
        .unwrap_or_else(|| "(no question)".into());
    info!(
        target: "dnstrail::query",
        "{client} {proto} {question} -> {rcode} flags=[{flags}] answers={answers}",
        proto = request.protocol(),
        rcode = info.response_code,
        flags = info.flags(),
        answers = info.counts().answers,
    );
}
