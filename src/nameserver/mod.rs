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
//! [`crate::serve`] does the transport: UDP and TCP on every address
//! (RFC 7766), FORMERR for packets that do not parse, truncation with TC=1
//! when a UDP answer exceeds the client's buffer, answers replayed once
//! encoded, optional response-rate limiting. The answers come from
//! [`answer::lookup`], ours, because hickory's catalog gets referrals wrong
//! (AA set, glue missing; see `NOTES-hickory-0.26.md`).

pub mod answer;

use std::sync::Arc;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;

use crate::exchange::Transport;
use crate::listen::DnsSockets;
use crate::serve::{reply, single_question, transport_of};
use crate::zone::Zone;

pub use answer::{Outcome, lookup};

/// An authoritative server for one or more zones.
#[derive(Clone)]
pub struct NameServer {
    zones: Arc<[Zone]>,
    /// Networks whose clients may transfer a whole zone (AXFR over TCP).
    transfers_to: Arc<[IpNet]>,
    /// Answers per second per client network over UDP (`--rrl`), if limited.
    rrl: Option<u32>,
}

impl NameServer {
    pub fn new(zones: Vec<Zone>) -> NameServer {
        NameServer {
            zones: zones.into(),
            transfers_to: Arc::new([]),
            rrl: None,
        }
    }

    /// Let clients in these networks transfer whole zones (AXFR over TCP).
    pub fn with_transfers_to(mut self, networks: Vec<IpNet>) -> NameServer {
        self.transfers_to = networks.into();
        self
    }

    /// Limit UDP answers to `per_second` per client network (RRL).
    pub fn with_rrl(mut self, per_second: Option<u32>) -> NameServer {
        self.rrl = per_second;
        self
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
        response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let question = single_question(request).and_then(|query| {
            // Not one of our zones: a name server is not a resolver.
            let zone = self.zone_for(query.name()).ok_or(ResponseCode::Refused)?;
            Ok((query, zone))
        });
        let transfer = question.as_ref().ok().and_then(|(query, zone)| {
            let whole_zone =
                query.query_type() == RecordType::AXFR && query.name() == zone.lower_origin();
            let allowed = transport_of(request) == Transport::Tcp
                && self
                    .transfers_to
                    .iter()
                    .any(|n| n.contains(&request.src().ip()));
            (whole_zone && allowed).then(|| answer::transfer(zone))
        });
        if let Some(records) = &transfer {
            metadata.authoritative = true;
            return reply(request, response_handle, metadata, Ok([records, &[], &[]])).await;
        }
        let answer = question.map(|(query, zone)| lookup(zone, query.name(), query.query_type()));
        let sections = match &answer {
            Ok(answer) => {
                metadata.authoritative = answer.authoritative;
                metadata.response_code = answer.rcode;
                Ok([
                    &answer.answers[..],
                    &answer.authorities[..],
                    &answer.additionals[..],
                ])
            }
            Err(code) => Err(*code),
        };
        reply(request, response_handle, metadata, sections).await
    }
}
