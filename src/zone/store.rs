//! How a zone's records are kept in memory: compactly, and handed out as
//! hickory [`Record`]s when asked for.
//!
//! A hickory `Record` is 280 bytes whatever it holds (an 80-byte owner
//! name, and 184 bytes of `RData`, sized for its largest kind, the SOA),
//! so a zone kept as one `Record` per record spends most of its memory on
//! copies of owner names and on room an address does not use: a
//! million-record zone took about a gigabyte. Here each name is kept once,
//! as the key of its node; each RRset keeps its type, class and TTL once
//! (a zone has one TTL per RRset, RFC 2181 §5.2); and each record keeps
//! only its data: an IPv4 or IPv6 address inline (most records of a big
//! zone), anything else as hickory's `RData` behind a pointer.
//!
//! ```text
//!  Key (the name, lower case, as hickory encodes it) ─► KeptNode
//!      KeptNode ─► [KeptRrset: type, class, TTL, line, owner's spelling?]
//!                       └─► [Data: A(addr) | Aaaa(addr) | Other(Box<RData>)]
//! ```
//!
//! The key is the name in the form hickory encodes it for the wire, not a
//! hickory `LowerName` (80 bytes, most of them unused): the table of a
//! million-record zone's names is a third the size, and so is the second
//! table it needs for a moment each time it grows.
//!
//! Nothing is lost: a record is rebuilt exactly as it was read, its owner
//! spelled as the RRset's first record spelled it (the key is lower case;
//! the spelling is kept only when it differs).

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

use super::{Node, Rrset};

/// A name as the key of its node: its labels in lower case, as hickory
/// writes a name uncompressed.
pub(super) type Key = Box<[u8]>;

/// The key of `name`; `None` for a name that is not fully qualified, which
/// no zone holds.
pub(super) fn key(name: &LowerName) -> Option<Key> {
    if !name.is_fqdn() {
        return None;
    }
    Some(name.to_bytes().expect("a name fits").into_boxed_slice())
}

/// The name a key was made from.
pub(super) fn name_of(key: &[u8]) -> LowerName {
    LowerName::new(&Name::from_bytes(key).expect("a key is an encoded name"))
}

/// The RRsets at one name; none for an empty non-terminal.
#[derive(Debug, Clone, Default)]
pub(super) struct KeptNode {
    pub rrsets: Box<[KeptRrset]>,
}

/// One RRset: what its records share, then each record's data.
#[derive(Debug, Clone)]
pub(super) struct KeptRrset {
    pub rtype: RecordType,
    pub class: DNSClass,
    pub ttl: u32,
    /// The line of the zone file its first record came from (0: not from
    /// the file).
    pub line: u32,
    /// The owner as the first record spelled it, when that is not the
    /// node's (lower-case) key.
    owner: Option<Box<Name>>,
    pub data: Box<[Data]>,
}

/// One record's data. Addresses are kept inline (20 bytes instead of
/// hickory's 184-byte `RData`); the rest as hickory has it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Other(Box<RData>),
}

impl Data {
    fn new(data: RData) -> Data {
        match data {
            RData::A(A(address)) => Data::A(address),
            RData::AAAA(AAAA(address)) => Data::Aaaa(address),
            other => Data::Other(Box::new(other)),
        }
    }

    fn rdata(&self) -> RData {
        match self {
            Data::A(address) => RData::A(A(*address)),
            Data::Aaaa(address) => RData::AAAA(AAAA(*address)),
            Data::Other(data) => (**data).clone(),
        }
    }
}

/// What adding a record to a node did.
pub(super) enum Added {
    /// A new RRset, or one more record in an RRset (which gives it its TTL).
    Kept,
    /// The same data was there already.
    Duplicate,
    /// A second CNAME at the name; the line of the first.
    SecondCname(usize),
}

impl KeptNode {
    pub fn get(&self, rtype: RecordType) -> Option<&KeptRrset> {
        self.rrsets.iter().find(|r| r.rtype == rtype)
    }

    /// Add a record whose owner is this node's `key`. An RRset keeps the
    /// TTL it has, as BIND does (RFC 2181 §5.2); a record already there is
    /// not added twice. A second CNAME is refused when `one_cname` is set.
    pub fn add(&mut self, key: &LowerName, record: Record, line: usize, one_cname: bool) -> Added {
        let rtype = record.record_type();
        let data = Data::new(record.data);
        if let Some(rrset) = self.rrsets.iter_mut().find(|r| r.rtype == rtype) {
            if one_cname && rtype == RecordType::CNAME {
                return Added::SecondCname(rrset.line as usize);
            }
            if rrset.data.contains(&data) {
                return Added::Duplicate;
            }
            push(&mut rrset.data, data);
            return Added::Kept;
        }
        // The key is the owner in lower case: keep the spelling only when
        // it differs, as it rarely does.
        let owner = (!record.name.eq_case(key)).then(|| Box::new(record.name));
        push(
            &mut self.rrsets,
            KeptRrset {
                rtype,
                class: record.dns_class,
                ttl: record.ttl,
                line: u32::try_from(line).unwrap_or(u32::MAX),
                owner,
                data: Box::new([data]),
            },
        );
        Added::Kept
    }

    /// Take `record` out (the same name, class, type and data), and its
    /// RRset with it when it was the last.
    pub fn remove(&mut self, record: &Record) {
        let rtype = record.record_type();
        let Some(rrset) = self.rrsets.iter_mut().find(|r| r.rtype == rtype) else {
            return;
        };
        if rrset.class != record.dns_class {
            return;
        }
        let data = Data::new(record.data.clone());
        retain(&mut rrset.data, |d| *d != data);
        retain(&mut self.rrsets, |r| !r.data.is_empty());
    }

    /// Give the RRset of `rtype`, if there is one, this TTL.
    pub fn set_ttl(&mut self, rtype: RecordType, ttl: u32) {
        if let Some(rrset) = self.rrsets.iter_mut().find(|r| r.rtype == rtype) {
            rrset.ttl = ttl;
        }
    }

    /// This node as hickory records, for the code that answers.
    pub fn to_node(&self, key: &LowerName) -> Node {
        Node {
            rrsets: self.rrsets.iter().map(|r| r.to_rrset(key)).collect(),
        }
    }
}

impl KeptRrset {
    /// The owner as written in the zone.
    pub fn owner(&self, key: &LowerName) -> Name {
        match &self.owner {
            Some(name) => (**name).clone(),
            None => Name::from(key),
        }
    }

    /// Every record of the RRset, as read.
    pub fn records<'s>(&'s self, key: &LowerName) -> impl Iterator<Item = Record> + use<'s> {
        let owner = self.owner(key);
        self.data.iter().map(move |data| {
            let mut record = Record::from_rdata(owner.clone(), self.ttl, data.rdata());
            record.dns_class = self.class;
            record
        })
    }

    pub fn to_rrset(&self, key: &LowerName) -> Rrset {
        Rrset {
            rtype: self.rtype,
            records: self.records(key).collect(),
            line: self.line as usize,
        }
    }
}

/// One more item in a boxed slice, with no room to spare (a zone is built
/// once and then read; `Vec`'s spare capacity would be kept for nothing).
fn push<T>(items: &mut Box<[T]>, item: T) {
    let mut grown = std::mem::take(items).into_vec();
    grown.reserve_exact(1);
    grown.push(item);
    *items = grown.into_boxed_slice();
}

/// A boxed slice without the items `keep` refuses.
fn retain<T>(items: &mut Box<[T]>, keep: impl FnMut(&T) -> bool) {
    let mut kept = std::mem::take(items).into_vec();
    kept.retain(keep);
    *items = kept.into_boxed_slice();
}
