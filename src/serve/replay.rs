//! A name server's memory of the answers it encoded, for UDP: a question
//! asked before is answered by copying the bytes made the first time.
//!
//! Two parts of a question change from query to query while the answer
//! stays the same, and resolvers that operators run send both:
//!
//! - the case of the question's letters, which a resolver mixes at random
//!   (0x20, as Unbound's `use-caps-for-id` and dnstrail's own resolver do)
//!   and expects echoed exactly in the question section;
//! - the data of a COOKIE option (RFC 7873, which BIND and dnstrail's
//!   resolver send to every server), which the answer carries back with a
//!   server cookie made for that client's address and the time.
//!
//! So the key is the question's bytes after the ID with the name's letters
//! in lower case and a trailing COOKIE option's data zeroed, and a replay
//! patches the answer: the ID, the name exactly as asked (the answer's
//! question section is the same length, at the same place), and a fresh
//! client and server cookie where the first answer had its own. Names in
//! the answer compressed to point at the question then read in the asker's
//! case, as they do from NSD and BIND: names compare without case (RFC
//! 4343), and a signature covers names in lower case (RFC 4034 §6.2).
//!
//! ```text
//!  ID | header | www.EXamPle.com A IN | OPT … COOKIE(len 24) c1c1c1c1 s1s1s1…
//!  key:  header | www.example.com A IN | OPT … COOKIE(len 24) 00000000 0000… | 24
//! ```
//!
//! Two queries get the same key only if they are the same bytes but for
//! those parts: the name's extent is read by hickory from bytes whose label
//! lengths lower-casing leaves alone (a name with a compression pointer is
//! never remembered), and a cookie counts only as the option at the very
//! end of the message, its length in the key, checked against hickory's
//! reading of the message before an answer is remembered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;

use hickory_proto::op::{Header, Message};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::cookies::{self, COOKIE, CookieSecret};
use super::querylog::LogEntry;

/// Questions longer than this are answered but not remembered.
const MAX_KEY: usize = 512;
/// Answers remembered per task; when full, the memory starts over, so a
/// flood of distinct questions costs memory once and the hot ones come back.
const MAX_ENTRIES: usize = 4096;

/// The lengths a COOKIE option's data may have: a client cookie alone, or
/// with a server cookie of 8 to 32 bytes (RFC 7873 §4).
fn cookie_lengths() -> impl Iterator<Item = usize> {
    std::iter::once(8).chain(16..=40)
}

/// Where a query's changing parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The question's name, whose letters' case may vary.
    name: Range<usize>,
    /// The data of a COOKIE option that ends the message.
    cookie: Option<Range<usize>>,
}

impl Shape {
    /// The shape of `packet`, if it is a query that can be remembered: one
    /// question, its name written out without compression.
    pub fn of(packet: &[u8]) -> Option<Shape> {
        if packet.len() > MAX_KEY {
            return None;
        }
        let mut decoder = BinDecoder::new(packet);
        let header = Header::read(&mut decoder).ok()?;
        if header.counts.queries != 1 {
            return None;
        }
        let start = decoder.index();
        let name = Name::read(&mut decoder).ok()?;
        let end = decoder.index();
        let written: usize = name.iter().map(|label| label.len() + 1).sum::<usize>() + 1;
        if end - start != written {
            return None;
        }
        let cookie = if header.counts.additionals > 0 {
            cookie_lengths().find_map(|len| {
                let data = packet.len().checked_sub(len)?;
                let option = data.checked_sub(4)?;
                (option >= end && packet[option..data] == option_header(len))
                    .then_some(data..packet.len())
            })
        } else {
            None
        };
        Some(Shape {
            name: start..end,
            cookie,
        })
    }

    /// The key of a query of this shape, into `key`.
    fn key_into(&self, packet: &[u8], key: &mut Vec<u8>) {
        key.clear();
        key.extend_from_slice(&packet[2..]);
        key[self.name.start - 2..self.name.end - 2].make_ascii_lowercase();
        let cookie_len = self.cookie.as_ref().map_or(0, |cookie| {
            key[cookie.start - 2..].fill(0);
            cookie.len()
        });
        key.push(cookie_len as u8);
    }
}

/// The four bytes that start a COOKIE option whose data is `len` long.
fn option_header(len: usize) -> [u8; 4] {
    let [code_hi, code_lo] = COOKIE.to_be_bytes();
    [code_hi, code_lo, 0, len as u8]
}

/// Where a query's COOKIE option is, as hickory read the query (the full
/// path reads it; a replay does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryCookie {
    None,
    /// Its data ends the query, and is this long.
    Last(usize),
    /// Anywhere else: an answer to it is not remembered, since its server
    /// cookie would be made for this asker alone.
    Elsewhere,
}

impl QueryCookie {
    pub fn of(packet: &[u8], query: &Message) -> QueryCookie {
        match cookies::option_data(query) {
            None => QueryCookie::None,
            Some(data) if packet.ends_with(data) => QueryCookie::Last(data.len()),
            Some(_) => QueryCookie::Elsewhere,
        }
    }
}

/// An answer ready to send again, and where to patch it.
struct Remembered {
    bytes: Box<[u8]>,
    log: Option<LogEntry>,
    /// Where the answer's COOKIE data (client cookie, then ours) starts.
    cookie: Option<usize>,
}

/// One serving task's memory: no lock, and no allocation for a question
/// asked before.
pub struct Replays {
    remembered: HashMap<Box<[u8]>, Remembered>,
    /// The role's version the answers were made at: a zone changed since
    /// means they are thrown away.
    version: u64,
    key: Vec<u8>,
}

impl Replays {
    pub fn new(version: u64) -> Replays {
        Replays {
            remembered: HashMap::new(),
            version,
            key: Vec::with_capacity(MAX_KEY),
        }
    }

    /// Forget every answer if the role's answers may have changed.
    pub fn keep_to(&mut self, version: u64) {
        if version != self.version {
            self.remembered.clear();
            self.version = version;
        }
    }

    /// The answer to `packet` (of `shape`), asked before, into `out`, made
    /// for this query: its ID, its name's case, its cookie and a server
    /// cookie for `src`. Returns the first answer's log entry.
    pub fn replay(
        &mut self,
        packet: &[u8],
        shape: &Shape,
        src: SocketAddr,
        secret: Option<&CookieSecret>,
        out: &mut Vec<u8>,
    ) -> Option<&Option<LogEntry>> {
        shape.key_into(packet, &mut self.key);
        let hit = self.remembered.get(&self.key[..])?;
        let start = out.len();
        out.extend_from_slice(&packet[..2]);
        out.extend_from_slice(&hit.bytes[2..]);
        let answer = &mut out[start..];
        answer[shape.name.clone()].copy_from_slice(&packet[shape.name.clone()]);
        if let (Some(at), Some(cookie), Some(secret)) = (hit.cookie, &shape.cookie, secret) {
            let client: [u8; 8] = packet[cookie.start..cookie.start + 8].try_into().ok()?;
            answer[at..at + 8].copy_from_slice(&client);
            answer[at + 8..at + 24].copy_from_slice(&secret.fresh_server_cookie(&client, src.ip()));
        }
        Some(&hit.log)
    }

    /// Remember `bytes`, the answer the full path made for `packet`, if
    /// it can be patched for the next asker: its question where the
    /// query's is, and (when the query's cookie ends it and `secret`
    /// answers cookies) the client's cookie in its last COOKIE option.
    pub fn remember(
        &mut self,
        packet: &[u8],
        shape: &Shape,
        answer: &super::Answer,
        secret: Option<&CookieSecret>,
    ) {
        let (bytes, name) = (&answer.bytes[..], shape.name.clone());
        if bytes.len() < name.end || !bytes[name.clone()].eq_ignore_ascii_case(&packet[name]) {
            return;
        }
        // hickory's reading of the query must agree with the key about its
        // cookie: none, or the one the key leaves out.
        let agrees = match (&shape.cookie, answer.query_cookie) {
            (None, QueryCookie::None) => true,
            (Some(data), QueryCookie::Last(len)) => data.len() == len,
            _ => false,
        };
        if !agrees {
            return;
        }
        let mut cookie = None;
        if let (Some(data), Some(_)) = (&shape.cookie, secret) {
            // Ours is the answer's last COOKIE option, of a client cookie
            // and 16 bytes: the OPT record ends a replayable answer, so
            // nothing the zone holds comes after it.
            let mut wanted = option_header(24).to_vec();
            wanted.extend_from_slice(&packet[data.start..data.start + 8]);
            let Some(at) = rfind(bytes, &wanted) else {
                return;
            };
            cookie = Some(at + 4);
        }
        if self.remembered.len() >= MAX_ENTRIES {
            self.remembered.clear();
        }
        shape.key_into(packet, &mut self.key);
        self.remembered.insert(
            self.key[..].into(),
            Remembered {
                bytes: bytes.into(),
                log: answer.log.clone(),
                cookie,
            },
        );
    }
}

/// Where `needle` last starts in `haystack`.
fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Query};
    use hickory_proto::rr::RecordType;
    use std::str::FromStr;

    fn query(name: &str, qtype: RecordType, cookie: Option<&[u8]>) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = rand::random();
        message.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
        if let Some(cookie) = cookie {
            let mut edns = Edns::new();
            edns.options_mut().insert(cookies::query_option(
                cookie[..8].try_into().unwrap(),
                Some(&cookie[8..]),
            ));
            message.set_edns(edns);
        }
        message.to_vec().unwrap()
    }

    /// The query itself as its answer, with the cookie where the full
    /// path would find it.
    fn answer_of(packet: &[u8]) -> super::super::Answer {
        super::super::Answer {
            bytes: packet.to_vec(),
            more: Vec::new(),
            log: None,
            replayable: true,
            query_cookie: QueryCookie::of(packet, &Message::from_vec(packet).unwrap()),
        }
    }

    fn key(packet: &[u8]) -> Vec<u8> {
        let mut key = Vec::new();
        Shape::of(packet).unwrap().key_into(packet, &mut key);
        key
    }

    #[test]
    fn case_and_cookies_do_not_change_the_key() {
        let plain = key(&query("www.example.com.", RecordType::A, None));
        assert_eq!(plain, key(&query("wWw.ExAmPle.COM.", RecordType::A, None)));
        let with = key(&query("www.example.com.", RecordType::A, Some(&[1; 8])));
        assert_eq!(
            with,
            key(&query("WWW.example.Com.", RecordType::A, Some(&[2; 8])))
        );
        assert_ne!(plain, with);
        // A server cookie is a longer option: another key.
        assert_ne!(
            with,
            key(&query("www.example.com.", RecordType::A, Some(&[3; 24])))
        );
    }

    #[test]
    fn anything_else_changes_the_key() {
        let a = key(&query("www.example.com.", RecordType::A, None));
        assert_ne!(a, key(&query("www.example.org.", RecordType::A, None)));
        assert_ne!(a, key(&query("www.example.com.", RecordType::AAAA, None)));
        // Types whose codes differ by the bit that makes a letter lower
        // case: the type is not part of the name.
        assert_ne!(
            key(&query("a.", RecordType::Unknown(0x41), None)),
            key(&query("a.", RecordType::Unknown(0x61), None))
        );
    }

    #[test]
    fn a_compressed_name_is_not_remembered() {
        let mut packet = query("www.example.com.", RecordType::A, None);
        // Header, then a pointer to offset 12 (itself): hickory refuses it
        // or it is not written out, and neither is remembered.
        packet.truncate(12);
        packet.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        assert_eq!(Shape::of(&packet), None);
    }

    #[test]
    fn a_cookie_before_another_option_is_never_remembered() {
        let asker: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let mut replays = Replays::new(0);
        let mut message =
            Message::from_vec(&query("www.example.com.", RecordType::A, Some(&[1; 8]))).unwrap();
        let last = message.edns.as_mut().unwrap().options_mut();
        last.insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
            12,
            vec![0; 4],
        ));
        let middle = message.to_vec().unwrap();
        let shape = Shape::of(&middle).unwrap();
        assert_eq!(shape.cookie, None);
        // The query's own bytes stand in for an answer: its question is
        // where the answer's is.
        replays.remember(&middle, &shape, &answer_of(&middle), None);
        assert!(
            replays
                .replay(&middle, &shape, asker, None, &mut Vec::new())
                .is_none()
        );

        // The same with the cookie last is remembered.
        let last = query("www.example.com.", RecordType::A, Some(&[1; 8]));
        let shape = Shape::of(&last).unwrap();
        replays.remember(&last, &shape, &answer_of(&last), None);
        assert!(
            replays
                .replay(&last, &shape, asker, None, &mut Vec::new())
                .is_some()
        );
    }

    #[test]
    fn the_cookie_is_found_only_at_the_end() {
        let packet = query("www.example.com.", RecordType::A, Some(&[7; 24]));
        let shape = Shape::of(&packet).unwrap();
        assert_eq!(shape.cookie, Some(packet.len() - 24..packet.len()));
        assert_eq!(
            Shape::of(&query("www.example.com.", RecordType::A, None))
                .unwrap()
                .cookie,
            None
        );
    }
}
