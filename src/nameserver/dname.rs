//! DNAME (RFC 6672): one record that renames a whole subtree.
//!
//! ```text
//!  old.example.  DNAME  new.example.
//!  www.old.example. A?  ──►  old.example. DNAME new.example.
//!                            www.old.example. CNAME www.new.example.   (synthesised, TTL of the DNAME)
//!                            www.new.example. A 192.0.2.1              (if the server knows it)
//! ```
//!
//! hickory 0.26 has no DNAME type of its own: on the wire a DNAME arrives
//! as unknown data (its RDATA an uncompressed name, RFC 6672 §2.5), and
//! its zone-file parser refuses it. These helpers make, read and apply one;
//! the name servers use them to answer, the resolver to check what a server
//! synthesised instead of trusting it (§3.4).

use hickory_proto::rr::rdata::{CNAME, NULL};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

/// A DNAME record at `owner` pointing to `target`.
pub fn record(owner: Name, ttl: u32, target: &Name) -> Option<Record> {
    // Uncompressed, as RFC 6672 §2.5 requires of the RDATA.
    let bytes = target.to_bytes().ok()?;
    Some(Record::from_rdata(
        owner,
        ttl,
        RData::Unknown {
            code: RecordType::DNAME,
            rdata: NULL::with(bytes),
        },
    ))
}

/// The target of a DNAME record.
pub fn target(record: &Record) -> Option<Name> {
    match &record.data {
        RData::Unknown {
            code: RecordType::DNAME,
            rdata,
        } => Name::from_bytes(&rdata.anything).ok(),
        _ => None,
    }
}

/// What a DNAME does to a name below its owner: the CNAME that renames it
/// (owner `qname`, the DNAME's TTL). `None` when `qname` is not below the
/// owner, or when the new name would be longer than 255 bytes (the server
/// answers YXDOMAIN then, RFC 6672 §2.2).
pub fn synthesize(dname: &Record, qname: &Name) -> Option<Record> {
    let target = target(dname)?;
    let owner = &dname.name;
    if !owner.zone_of(qname) || owner.num_labels() >= qname.num_labels() {
        return None;
    }
    let extra = (qname.num_labels() - owner.num_labels()) as usize;
    let labels: Vec<&[u8]> = qname.iter().take(extra).collect();
    let mut renamed = target;
    for label in labels.into_iter().rev() {
        renamed = renamed.prepend_label(label).ok()?;
    }
    // On the wire a name is one byte longer than written (the root label).
    if renamed.len() + 1 > 255 {
        return None;
    }
    Some(Record::from_rdata(
        qname.clone(),
        dname.ttl,
        RData::CNAME(CNAME(renamed)),
    ))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn n(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    #[test]
    fn a_dname_renames_the_names_below_its_owner_only() {
        let dname = record(n("old.example."), 600, &n("new.example.")).unwrap();
        assert_eq!(target(&dname), Some(n("new.example.")));
        let cname = synthesize(&dname, &n("a.www.old.example.")).unwrap();
        assert_eq!(cname.name, n("a.www.old.example."));
        assert_eq!(cname.ttl, 600);
        assert_eq!(cname.data, RData::CNAME(CNAME(n("a.www.new.example."))));
        assert!(synthesize(&dname, &n("old.example.")).is_none());
        assert!(synthesize(&dname, &n("www.other.example.")).is_none());
    }

    #[test]
    fn a_dname_survives_the_wire() {
        use hickory_proto::op::{Message, MessageType, OpCode};
        let mut message = Message::new(1, MessageType::Response, OpCode::Query);
        message.add_answer(record(n("old.example."), 60, &n("new.example.")).unwrap());
        let back = Message::from_vec(&message.to_vec().unwrap()).unwrap();
        assert_eq!(target(&back.answers[0]), Some(n("new.example.")));
        assert_eq!(back.answers[0].record_type(), RecordType::DNAME);
    }
}
