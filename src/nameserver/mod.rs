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

use std::sync::Arc;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::LowerName;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::listen::DnsSockets;
use crate::serve::{log_query, response_edns, send_failed, single_question};
use crate::truncate::must_truncate;
use crate::zone::Zone;

pub use answer::{Outcome, lookup};

/// An authoritative server for one or more zones.
#[derive(Clone)]
pub struct NameServer {
    zones: Arc<[Zone]>,
    /// Answers per second per client network over UDP (`--rrl`), if limited.
    rrl: Option<u32>,
}

impl NameServer {
    pub fn new(zones: Vec<Zone>) -> NameServer {
        NameServer {
            zones: zones.into(),
            rrl: None,
        }
    }

    /// Limit UDP answers to `per_second` per client network (RRL).
    pub fn with_rrl(mut self, per_second: Option<u32>) -> NameServer {
        self.rrl = per_second;
        self
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
/// Its answers depend only on the question, so each distinct one is
/// encoded once and replayed (see [`crate::serve::udp`]).
pub async fn run(
    server: NameServer,
    sockets: Vec<DnsSockets>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let rrl = server.rrl;
    crate::serve::run_limited(
        server,
        sockets,
        crate::serve::Answers::Remembered,
        rrl,
        shutdown,
    )
    .await
}

#[async_trait::async_trait]
impl RequestHandler for NameServer {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let edns = response_edns(request);
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let client = request.src();

        let zone = single_question(request).and_then(|query| {
            // Not one of our zones: a name server is not a resolver.
            let zone = self.zone_for(query.name()).ok_or(ResponseCode::Refused)?;
            Ok((query, zone))
        });
        let result = match zone {
            Err(code) => {
                metadata.response_code = code;
                response_handle
                    .send_response(builder.build_no_records(metadata))
                    .await
            }
            Ok((query, zone)) => {
                let answer = lookup(zone, query.name(), query.query_type());
                metadata.authoritative = answer.authoritative;
                metadata.response_code = answer.rcode;
                let sections = [
                    &answer.answers[..],
                    &answer.authorities,
                    &answer.additionals,
                ];
                if must_truncate(request, edns.as_ref(), sections) {
                    metadata.truncation = true;
                    response_handle
                        .send_response(builder.build_no_records(metadata))
                        .await
                } else {
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
        };

        match result {
            Ok(info) => {
                log_query(client, request, &info);
                info
            }
            Err(error) => {
                warn!(%client, %error, "could not send response");
                send_failed(request)
            }
        }
    }
}
