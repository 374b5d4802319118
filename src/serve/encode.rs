//! From a reply to bytes, whole or not at all (RFC 1035 §4.2.1, RFC 2181
//! §9).
//!
//! A reply too big for the client's UDP buffer (512 bytes without EDNS,
//! else what the client advertised, at most ours) goes out with TC=1 and
//! no records, as NSD and Unbound send it; the client then asks over TCP.
//! Nothing is cut in the middle of an RRset: a partial RRset would be
//! cached as if it were whole.
//!
//! Why not leave it to hickory: hickory-proto 0.26.3's encoder, when a
//! record does not fit, steps back without cutting the bytes it wrote, so a
//! reply without EDNS carried the start of the record that did not fit
//! after the last whole one (`dig`: "Message has 13 extra bytes at end").
//! So a message that did not fit whole is thrown away and the empty,
//! truncated one sent instead.

use hickory_proto::op::{Edns, Header, Message, Metadata, Query};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::TSIG;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// The most bytes a UDP reply to `query` may have: 512 without EDNS, else
/// the client's advertised size within [512, ours].
pub fn udp_limit(query: &Message, ours: u16) -> u16 {
    query
        .edns
        .as_ref()
        .map_or(512, |e| e.max_payload().clamp(512, ours.max(512)))
}

/// Encode a reply in at most `limit` bytes: whole, or else with TC=1 and no
/// records (the question and OPT kept). Sets `metadata.truncation` when it
/// had to truncate.
pub fn encode_reply(
    metadata: &mut Metadata,
    queries: &[Query],
    sections: [&[Record]; 3],
    edns: Option<&Edns>,
    limit: usize,
    signature: Option<&Record<TSIG>>,
) -> Vec<u8> {
    if !metadata.truncation
        && let Some(bytes) = encode_whole(metadata, queries, sections, edns, limit, signature)
    {
        return bytes;
    }
    metadata.truncation = true;
    encode_whole(metadata, queries, [&[], &[], &[]], edns, limit, signature)
        .unwrap_or_else(|| bare_header(metadata))
}

/// Encode a message whole, or `None` if it does not fit in `limit` bytes.
fn encode_whole(
    metadata: &Metadata,
    queries: &[Query],
    sections: [&[Record]; 3],
    edns: Option<&Edns>,
    limit: usize,
    signature: Option<&Record<TSIG>>,
) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(u16::try_from(limit).unwrap_or(u16::MAX));
    let [answers, authorities, additionals] = sections;
    let header = hickory_proto::op::emit_message_parts(
        metadata,
        &mut queries.iter(),
        &mut answers.iter(),
        &mut authorities.iter(),
        &mut additionals.iter(),
        edns,
        signature,
        &mut encoder,
    )
    .ok()?;
    // hickory sets TC itself when a record did not fit.
    (!header.metadata.truncation || metadata.truncation).then_some(bytes)
}

/// A zone transfer too big for one message, as several (RFC 5936 §2.2):
/// the records in order, each message whole and within `limit`, the
/// question and OPT in each. Records are packed a chunk at a time; a chunk
/// that does not fit is halved until it does.
pub fn encode_transfer(
    metadata: &Metadata,
    queries: &[Query],
    records: &[Record],
    edns: Option<&Edns>,
    limit: usize,
) -> Vec<Vec<u8>> {
    const CHUNK: usize = 256;
    let mut messages = Vec::new();
    let mut rest = records;
    while !rest.is_empty() {
        let mut take = CHUNK.min(rest.len());
        loop {
            let sections = [&rest[..take], &[][..], &[][..]];
            if let Some(bytes) = encode_whole(metadata, queries, sections, edns, limit, None) {
                messages.push(bytes);
                rest = &rest[take..];
                break;
            }
            if take == 1 {
                // One record larger than a message: nothing can carry it.
                return Vec::new();
            }
            take /= 2;
        }
    }
    messages
}

/// A header alone: the last resort when nothing else can be encoded.
pub fn bare_header(metadata: &Metadata) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    let header = Header {
        metadata: *metadata,
        counts: Default::default(),
    };
    header
        .emit(&mut BinEncoder::new(&mut bytes))
        .expect("a bare header always encodes");
    bytes
}
