//! Truncating UDP answers whole (RFC 1035 §4.2.1, RFC 2181 §9).
//!
//! An answer too big for the client's UDP buffer (512 bytes without EDNS,
//! else what the client advertised, at most ours) goes out with TC=1 and
//! no records, as NSD and Unbound send it; the client then asks over TCP.
//!
//! Why not leave it to hickory: hickory-proto 0.26.3's encoder, when a
//! record does not fit, steps back without cutting the bytes it wrote, so a
//! reply without EDNS carried the start of the record that did not fit
//! after the last whole one (`dig`: "Message has 13 extra bytes at end").
//! Fixed upstream after 0.26.3; until a release carries it, we decide here.

use hickory_proto::op::{Edns, Message, MessageType, OpCode};
use hickory_proto::rr::{RData, Record};
use hickory_server::server::Request;

use crate::exchange::Transport;
use crate::serve::{EDNS_PAYLOAD, transport_of};

/// The most bytes a UDP answer to `request` may have; `None` over TCP.
pub fn udp_limit(request: &Request) -> Option<usize> {
    (transport_of(request) == Transport::Udp).then(|| {
        usize::from(
            request
                .edns
                .as_ref()
                .map_or(512, |e| e.max_payload().clamp(512, EDNS_PAYLOAD)),
        )
    })
}

/// An upper bound on a record's encoded size, without encoding it: names
/// are counted uncompressed. `None` for types not worth estimating.
fn record_bound(record: &Record) -> Option<usize> {
    let name = |n: &hickory_proto::rr::Name| n.len() + 1;
    let rdata = match &record.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::NS(n) => name(&n.0),
        RData::CNAME(n) => name(&n.0),
        RData::PTR(n) => name(&n.0),
        RData::MX(mx) => 2 + name(&mx.exchange),
        RData::SOA(soa) => name(&soa.mname) + name(&soa.rname) + 20,
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.len() + 1).sum(),
        _ => return None,
    };
    Some(name(&record.name) + 10 + rdata)
}

/// Whether these sections, answered over UDP, would not fit the client's
/// buffer. Cheap for the common small answer: an upper bound is summed
/// first, and the message is encoded only when the bound is over the limit.
pub fn must_truncate(request: &Request, edns: Option<&Edns>, sections: [&[Record]; 3]) -> bool {
    let Some(limit) = udp_limit(request) else {
        return false;
    };
    let records = || sections.iter().flat_map(|s| s.iter());
    let opt = if edns.is_some() { 11 } else { 0 };
    let bound = records()
        .map(record_bound)
        .try_fold(12 + request.queries.as_bytes().len() + opt, |sum, b| {
            b.map(|b| sum + b)
        });
    if bound.is_some_and(|b| b <= limit) {
        return false;
    }
    let mut message = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    for query in request.queries.queries() {
        message.add_query(query.original().clone());
    }
    message.answers = sections[0].to_vec();
    message.authorities = sections[1].to_vec();
    message.additionals = sections[2].to_vec();
    if let Some(edns) = edns {
        message.set_edns(edns.clone());
    }
    message.to_vec().map_or(true, |bytes| bytes.len() > limit)
}
