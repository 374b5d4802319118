//! The message cache: whole replies, encoded once, replayed with their TTLs
//! counted down. The resolver's hot path.
//!
//! ```text
//!  query bytes (ID aside) ──► a reply kept for exactly these bytes, still fresh?
//!        │yes                                   │no
//!        ▼                                      ▼
//!  copy it, the query's ID in,            the full path (parse, cache, walk,
//!  each TTL less the seconds since        encode) ── and the reply kept here
//! ```
//!
//! The bytes after the ID say everything the reply depends on but the
//! transport: the question, the RD and CD bits, EDNS (its size and DO bit).
//! So they are the key, with the transport (a reply too big for UDP is whole
//! over TCP), as for the name servers' replayed answers, and a hit is a
//! lookup and a copy: no
//! parsing, no encoding, no allocation but the reply's bytes. The TTLs move
//! with the resolver's clock, so advancing it ages these replies as it ages
//! the cache; flushing the cache bumps its generation, which empties this
//! one too. A reply is kept until its shortest TTL runs out.
//!
//! Only plain answers are kept: NOERROR or NXDOMAIN, to allowed clients,
//! not truncated, not stale, no error to explain, no TTL of zero.
//!
//! Denials (NXDOMAIN, NODATA) have a quarter of the room: when it is full
//! they all start over, and the answers stay. A flood of questions for
//! names that do not exist, each asked once, never pushes out the reply
//! everyone asks for, which stays on the hot path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dns::Transport;
use crate::serve::Quick;
use crate::trace::{Question, RecordView};

/// Replies kept at most; past that the memory starts over (cheaper than
/// tracking use, and the hot ones come back at once).
const DEFAULT_CAPACITY: usize = 16_384;
/// The share of that room denials may take.
const DENIAL_SHARE: usize = 4;

/// What the trace tells of a replayed reply.
#[derive(Debug)]
pub struct Remembered {
    pub question: Question,
    pub rcode: ResponseCode,
    /// The answer's records as they were stored (TTLs then).
    pub records: Vec<RecordView>,
    /// For a negative answer: NXDOMAIN or NODATA.
    pub negative: bool,
    /// Sent with AD=1 (validated as secure).
    pub authentic: bool,
}

struct Stored {
    bytes: Box<[u8]>,
    /// Where each TTL is in `bytes`, and its value when stored.
    ttls: Box<[(usize, u32)]>,
    stored_at: Duration,
    expires: Duration,
    generation: u64,
    quick: Quick,
    remembered: Arc<Remembered>,
}

/// A replayed reply: what the log and the trace say of it, and how many
/// seconds its TTLs have run down since it was stored.
pub struct Replayed {
    pub quick: Quick,
    pub remembered: Arc<Remembered>,
    pub aged: u32,
}

/// Encoded replies by query bytes, for one transport.
#[derive(Default)]
struct Replies {
    entries: HashMap<Box<[u8]>, Stored>,
    /// How many of them are denials.
    denials: usize,
}

/// Encoded replies by query bytes, one map per transport.
pub struct MessageCache {
    udp: RwLock<Replies>,
    tcp: RwLock<Replies>,
    capacity: usize,
}

impl Default for MessageCache {
    fn default() -> MessageCache {
        MessageCache::new(DEFAULT_CAPACITY)
    }
}

impl MessageCache {
    pub fn new(capacity: usize) -> MessageCache {
        MessageCache {
            udp: RwLock::default(),
            tcp: RwLock::default(),
            capacity: capacity.max(1),
        }
    }

    fn map(&self, transport: Transport) -> &RwLock<Replies> {
        match transport {
            Transport::Udp => &self.udp,
            Transport::Tcp => &self.tcp,
        }
    }

    /// The reply kept for `query` (whole query bytes), written into `out`
    /// with the query's ID and the TTLs as they are `now`.
    pub fn replay(
        &self,
        transport: Transport,
        query: &[u8],
        now: Duration,
        generation: u64,
        out: &mut Vec<u8>,
    ) -> Option<Replayed> {
        let key = query.get(2..)?;
        let replies = self
            .map(transport)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let stored = replies.entries.get(key)?;
        if stored.generation != generation || now >= stored.expires {
            return None;
        }
        let aged = now.saturating_sub(stored.stored_at).as_secs() as u32;
        out.extend_from_slice(&stored.bytes);
        out[..2].copy_from_slice(&query[..2]);
        for &(at, ttl) in stored.ttls.iter() {
            out[at..at + 4].copy_from_slice(&ttl.saturating_sub(aged).to_be_bytes());
        }
        Some(Replayed {
            quick: stored.quick.clone(),
            remembered: stored.remembered.clone(),
            aged,
        })
    }

    /// Keep `reply`, the encoded answer to `query`, if it is plain enough
    /// to replay.
    pub fn keep(
        &self,
        transport: Transport,
        query: &[u8],
        reply: &[u8],
        now: Duration,
        generation: u64,
        remembered: Remembered,
    ) {
        let Some(ttls) = ttl_positions(reply) else {
            return;
        };
        let Some(shortest) = ttls.iter().map(|(_, ttl)| *ttl).min() else {
            return;
        };
        if shortest == 0 || query.len() < 12 || reply.len() < 12 {
            return;
        }
        let flags = reply[2..4].try_into().map_or(0, u16::from_be_bytes);
        if flags & 0x0200 != 0 {
            // Truncated: the client will ask over TCP, and get it whole.
            return;
        }
        let quick = Quick {
            question: Some(Arc::new((
                Name::from_ascii(&remembered.question.name).unwrap_or_default(),
                remembered.question.rtype,
            ))),
            rcode: remembered.rcode,
            flags: crate::serve::querylog::Flags::from_bits(flags),
            answers: u16::from_be_bytes([reply[6], reply[7]]).into(),
        };
        let stored = Stored {
            bytes: reply.into(),
            ttls: ttls.into(),
            stored_at: now,
            expires: now + Duration::from_secs(u64::from(shortest)),
            generation,
            quick,
            remembered: Arc::new(remembered),
        };
        let denial = stored.remembered.negative;
        let mut replies = self
            .map(transport)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if replies.entries.len() >= self.capacity
            || (denial && replies.denials >= self.capacity / DENIAL_SHARE)
        {
            replies.sweep(now, generation);
        }
        if denial && replies.denials >= self.capacity / DENIAL_SHARE {
            // Denials start over among themselves; the answers stay.
            replies.entries.retain(|_, s| !s.remembered.negative);
            replies.denials = 0;
        }
        if replies.entries.len() >= self.capacity {
            replies.entries.clear();
            replies.denials = 0;
        }
        if let Some(old) = replies.entries.insert(query[2..].into(), stored) {
            replies.denials -= usize::from(old.remembered.negative);
        }
        replies.denials += usize::from(denial);
    }

    /// How many replies are kept (expired ones too, until they are swept).
    pub fn len(&self) -> usize {
        [&self.udp, &self.tcp]
            .iter()
            .map(|m| m.read().unwrap_or_else(|e| e.into_inner()).entries.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Replies {
    /// Forget replies that have run out, or outlived a flush.
    fn sweep(&mut self, now: Duration, generation: u64) {
        self.entries
            .retain(|_, s| s.expires > now && s.generation == generation);
        self.denials = self
            .entries
            .values()
            .filter(|s| s.remembered.negative)
            .count();
    }
}

/// Where the TTL of each record of an encoded message is (the OPT record's
/// "TTL" holds flags, and is left out), and its value, read with hickory's
/// decoder. `None` if the message does not decode.
fn ttl_positions(message: &[u8]) -> Option<Vec<(usize, u32)>> {
    let mut decoder = BinDecoder::new(message);
    let header = hickory_proto::op::Header::read(&mut decoder).ok()?;
    for _ in 0..header.counts.queries {
        hickory_proto::op::Query::read(&mut decoder).ok()?;
    }
    let records = usize::from(header.counts.answers)
        + usize::from(header.counts.authorities)
        + usize::from(header.counts.additionals);
    let mut positions = Vec::with_capacity(records);
    for _ in 0..records {
        Name::read(&mut decoder).ok()?;
        let rtype = decoder.read_u16().ok()?.unverified();
        decoder.read_u16().ok()?;
        let at = decoder.index();
        let ttl = decoder.read_u32().ok()?.unverified();
        let length = decoder.read_u16().ok()?.unverified();
        decoder.read_slice(usize::from(length)).ok()?;
        if RecordType::from(rtype) != RecordType::OPT {
            positions.push((at, ttl));
        }
    }
    Some(positions)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};

    use super::*;

    fn reply(id: u16, ttl: u32) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Response, OpCode::Query);
        let name = Name::from_str("www.example.").unwrap();
        message.add_query(Query::query(name.clone(), RecordType::A));
        message.add_answer(Record::from_rdata(
            name,
            ttl,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        message.to_vec().unwrap()
    }

    fn remembered() -> Remembered {
        Remembered {
            question: Question::new(&"www.example.", RecordType::A),
            rcode: ResponseCode::NoError,
            records: Vec::new(),
            negative: false,
            authentic: false,
        }
    }

    fn query_for(name: &str) -> Vec<u8> {
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
        q.to_vec().unwrap()
    }

    /// An NXDOMAIN for `name`, with an SOA to give it a TTL.
    fn denial(name: &str) -> (Vec<u8>, Remembered) {
        let mut message = Message::new(7, MessageType::Response, OpCode::Query);
        message.metadata.response_code = ResponseCode::NXDomain;
        message.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
        message.add_authority(Record::from_rdata(
            Name::from_str("example.").unwrap(),
            60,
            RData::SOA(hickory_proto::rr::rdata::SOA::new(
                Name::from_str("ns.example.").unwrap(),
                Name::from_str("admin.example.").unwrap(),
                1,
                2,
                3,
                4,
                60,
            )),
        ));
        let remembered = Remembered {
            question: Question::new(&name, RecordType::A),
            rcode: ResponseCode::NXDomain,
            negative: true,
            ..remembered()
        };
        (message.to_vec().unwrap(), remembered)
    }

    #[test]
    fn a_flood_of_denials_never_pushes_out_an_answer() {
        let cache = MessageCache::new(8);
        let udp = Transport::Udp;
        let now = Duration::from_secs(1);
        let www = query_for("www.example.");
        cache.keep(udp, &www, &reply(7, 300), now, 0, remembered());
        for i in 0..1000 {
            let name = format!("n{i}.example.");
            let (bytes, remembered) = denial(&name);
            cache.keep(udp, &query_for(&name), &bytes, now, 0, remembered);
        }
        assert!(cache.replay(udp, &www, now, 0, &mut Vec::new()).is_some());
        assert!(cache.len() <= 1 + 8 / DENIAL_SHARE, "{}", cache.len());
        let last = query_for("n999.example.");
        assert!(cache.replay(udp, &last, now, 0, &mut Vec::new()).is_some());
    }

    #[test]
    fn a_kept_reply_is_replayed_with_the_new_id_and_its_ttls_counted_down() {
        let cache = MessageCache::default();
        let query = {
            let mut q = Message::new(7, MessageType::Query, OpCode::Query);
            q.add_query(Query::query(
                Name::from_str("www.example.").unwrap(),
                RecordType::A,
            ));
            q.to_vec().unwrap()
        };
        let udp = Transport::Udp;
        cache.keep(
            udp,
            &query,
            &reply(7, 300),
            Duration::from_secs(10),
            0,
            remembered(),
        );
        let mut again = query.clone();
        again[..2].copy_from_slice(&99u16.to_be_bytes());
        let mut out = Vec::new();
        let hit = cache
            .replay(udp, &again, Duration::from_secs(110), 0, &mut out)
            .expect("kept");
        assert_eq!(hit.aged, 100);
        let replayed = Message::from_vec(&out).unwrap();
        assert_eq!(replayed.metadata.id, 99);
        assert_eq!(replayed.answers[0].ttl, 200);
        // Gone once the TTL has run out, or the cache was flushed.
        for (now, generation) in [(310, 0), (20, 1)] {
            let later = Duration::from_secs(now);
            assert!(
                cache
                    .replay(udp, &again, later, generation, &mut Vec::new())
                    .is_none()
            );
        }
        // Nor is a UDP reply given over TCP.
        let tcp = Transport::Tcp;
        assert!(
            cache
                .replay(tcp, &again, Duration::from_secs(20), 0, &mut Vec::new())
                .is_none()
        );
        // A TTL of zero is never kept.
        let zero = MessageCache::default();
        zero.keep(udp, &query, &reply(7, 0), Duration::ZERO, 0, remembered());
        assert!(zero.is_empty());
    }
}
