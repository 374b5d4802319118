//! Dynamic updates (RFC 2136): `nsupdate`, the page, or the control
//! endpoint change a hosted zone while it is served.
//!
//! ```text
//!  UPDATE ─► zone section: a zone we hold? (else NOTAUTH)
//!        ─► prerequisites: names and RRsets that must or must not exist
//!           (YXDOMAIN, NXDOMAIN, YXRRSET, NXRRSET when they do not hold)
//!        ─► updates: add, delete an RRset, delete a name, delete a record
//!        ─► the zone as it would be, checked as a loaded zone is: a change
//!           that would break it (a CNAME beside other data, the SOA or the
//!           last NS gone) is REFUSED and nothing changes
//!        ─► the serial goes up by one (unless the update raised it)
//! ```
//!
//! What this module works out is a new [`Zone`] and the records deleted
//! and added; [`super::live::LiveZone`] writes them to the journal and puts
//! the new zone in place, both before the update is answered.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordData, RecordType};

use crate::zone::Zone;

/// A change worked out, not yet in place.
#[derive(Debug)]
pub struct Updated {
    pub zone: Zone,
    pub deleted: Vec<Record>,
    pub added: Vec<Record>,
}

/// Why an update is refused: the rcode the RFC gives, and words for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub rcode: ResponseCode,
    pub why: String,
}

fn refused(rcode: ResponseCode, why: impl Into<String>) -> Refused {
    Refused {
        rcode,
        why: why.into(),
    }
}

/// Apply the update `message` to `zone`: `Ok(None)` when it changes
/// nothing (RFC 2136 §3.4.2 lets an update be a no-op).
pub fn apply(zone: &Zone, message: &Message) -> Result<Option<Updated>, Refused> {
    // §3.1: the zone section names one zone of ours, type SOA.
    let Some(section) = message.queries.first() else {
        return Err(refused(ResponseCode::FormErr, "no zone section"));
    };
    if section.query_type() != RecordType::SOA {
        return Err(refused(
            ResponseCode::FormErr,
            "the zone section's type is not SOA",
        ));
    }
    if LowerName::new(section.name()) != *zone.lower_origin() {
        return Err(refused(
            ResponseCode::NotAuth,
            format!("{} is not a zone this server holds", section.name()),
        ));
    }
    check_prerequisites(zone, &message.answers)?;
    let (deleted, added) = changes(zone, &message.authorities)?;
    commit(zone, deleted, added)
}

/// The records deleted and added by a list of changes given as records:
/// what the page and the control endpoint send, without an UPDATE message.
pub fn apply_records(
    zone: &Zone,
    deleted: Vec<Record>,
    added: Vec<Record>,
) -> Result<Option<Updated>, Refused> {
    for record in deleted.iter().chain(&added) {
        if !zone.contains(&LowerName::new(&record.name)) {
            return Err(refused(
                ResponseCode::NotZone,
                format!("{} is not in {}", record.name, zone.origin()),
            ));
        }
    }
    commit(zone, deleted, added)
}

/// Check the zone the change would make, and raise the serial.
fn commit(
    zone: &Zone,
    mut deleted: Vec<Record>,
    mut added: Vec<Record>,
) -> Result<Option<Updated>, Refused> {
    // Adding what is there, or deleting what is not, changes nothing.
    // (Only the names changed are looked at: a zone may be big.)
    let present = |r: &Record| zone.records_at(&LowerName::new(&r.name));
    deleted.retain(|d| present(d).contains(d));
    added.retain(|a| !present(a).iter().any(|p| p == a && p.ttl == a.ttl));
    if deleted.is_empty() && added.is_empty() {
        return Ok(None);
    }
    let apex = zone.lower_origin().clone();
    let at_apex =
        |r: &Record, t: RecordType| r.record_type() == t && LowerName::new(&r.name) == apex;
    if deleted.iter().any(|r| at_apex(r, RecordType::SOA))
        && !added.iter().any(|r| at_apex(r, RecordType::SOA))
    {
        return Err(refused(ResponseCode::Refused, "the SOA cannot be deleted"));
    }
    let ns_left = zone
        .records_at(&apex)
        .iter()
        .filter(|r| at_apex(r, RecordType::NS) && !deleted.contains(r))
        .count()
        + added.iter().filter(|r| at_apex(r, RecordType::NS)).count();
    if ns_left == 0 {
        return Err(refused(
            ResponseCode::Refused,
            "the zone's last NS record cannot be deleted",
        ));
    }
    // §3.6: the serial goes up by one, unless the update set a higher one.
    let old = zone.soa().clone();
    let new_serial = added
        .iter()
        .find(|r| at_apex(r, RecordType::SOA))
        .and_then(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .filter(|serial| serial_newer(*serial, zone.serial()))
        .unwrap_or_else(|| zone.serial().wrapping_add(1));
    added.retain(|r| !at_apex(r, RecordType::SOA));
    deleted.retain(|r| !at_apex(r, RecordType::SOA));
    if let RData::SOA(soa) = &old.data {
        let mut bumped = old.clone();
        bumped.data = RData::SOA(SOA::new(
            soa.mname.clone(),
            soa.rname.clone(),
            new_serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum,
        ));
        deleted.push(old);
        added.push(bumped);
    }
    let next = zone
        .with_changes(&deleted, &added)
        .map_err(|why| refused(ResponseCode::Refused, why))?;
    Ok(Some(Updated {
        zone: next,
        deleted,
        added,
    }))
}

/// RFC 1982: whether serial `a` comes after `b`.
pub(crate) fn serial_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// §3.2: every prerequisite must hold.
fn check_prerequisites(zone: &Zone, prerequisites: &[Record]) -> Result<(), Refused> {
    let at = |name: &Name| -> Vec<Record> { zone.records_at(&LowerName::new(name)) };
    // Value-dependent prerequisites (class IN) are checked together, per
    // RRset: the RRset must be exactly those records (§3.2.3).
    let mut exact: Vec<&Record> = Vec::new();
    for p in prerequisites {
        if p.ttl != 0 {
            return Err(refused(ResponseCode::FormErr, "a prerequisite with a TTL"));
        }
        if !zone.contains(&LowerName::new(&p.name)) {
            return Err(refused(
                ResponseCode::NotZone,
                format!("{} is not in {}", p.name, zone.origin()),
            ));
        }
        let empty = p.data.is_update();
        let present = at(&p.name);
        match (p.dns_class, p.record_type()) {
            (DNSClass::ANY, _) | (DNSClass::NONE, _) if !empty => {
                return Err(refused(
                    ResponseCode::FormErr,
                    "a prerequisite with data where none belongs",
                ));
            }
            (DNSClass::ANY, RecordType::ANY) => {
                if present.is_empty() {
                    return Err(refused(
                        ResponseCode::NXDomain,
                        format!("{} is not in use", p.name),
                    ));
                }
            }
            (DNSClass::ANY, rtype) => {
                if !present.iter().any(|r| r.record_type() == rtype) {
                    return Err(refused(
                        ResponseCode::NXRRSet,
                        format!("{} has no {rtype}", p.name),
                    ));
                }
            }
            (DNSClass::NONE, RecordType::ANY) => {
                if !present.is_empty() {
                    return Err(refused(
                        ResponseCode::YXDomain,
                        format!("{} is in use", p.name),
                    ));
                }
            }
            (DNSClass::NONE, rtype) => {
                if present.iter().any(|r| r.record_type() == rtype) {
                    return Err(refused(
                        ResponseCode::YXRRSet,
                        format!("{} has {rtype}", p.name),
                    ));
                }
            }
            (DNSClass::IN, _) => exact.push(p),
            _ => {
                return Err(refused(
                    ResponseCode::FormErr,
                    "a prerequisite of another class",
                ));
            }
        }
    }
    let mut checked: Vec<(LowerName, RecordType)> = Vec::new();
    for p in &exact {
        let key = (LowerName::new(&p.name), p.record_type());
        if checked.contains(&key) {
            continue;
        }
        let wanted: Vec<&&Record> = exact
            .iter()
            .filter(|q| LowerName::new(&q.name) == key.0 && q.record_type() == key.1)
            .collect();
        let have: Vec<Record> = at(&p.name)
            .into_iter()
            .filter(|r| r.record_type() == key.1)
            .collect();
        let same = have.len() == wanted.len()
            && have.iter().all(|h| wanted.iter().any(|w| w.data == h.data));
        if !same {
            return Err(refused(
                ResponseCode::NXRRSet,
                format!("{} {} is not as the prerequisite says", p.name, key.1),
            ));
        }
        checked.push(key);
    }
    Ok(())
}

/// §3.4: the records the update section deletes and adds.
fn changes(zone: &Zone, updates: &[Record]) -> Result<(Vec<Record>, Vec<Record>), Refused> {
    let apex = zone.lower_origin();
    let (mut deleted, mut added) = (Vec::new(), Vec::new());
    // §3.4.1: check them all before changing anything.
    for u in updates {
        if !zone.contains(&LowerName::new(&u.name)) {
            return Err(refused(
                ResponseCode::NotZone,
                format!("{} is not in {}", u.name, zone.origin()),
            ));
        }
        let meta = matches!(
            u.record_type(),
            RecordType::ANY | RecordType::AXFR | RecordType::IXFR | RecordType::OPT
        );
        let bad = match u.dns_class {
            DNSClass::IN => meta || u.data.is_update(),
            DNSClass::ANY => {
                u.ttl != 0
                    || !u.data.is_update()
                    || matches!(u.record_type(), RecordType::AXFR | RecordType::IXFR)
            }
            DNSClass::NONE => u.ttl != 0 || meta,
            _ => true,
        };
        if bad {
            return Err(refused(
                ResponseCode::FormErr,
                format!("an update record that makes no sense: {u}"),
            ));
        }
    }
    // §3.4.2
    for u in updates {
        let lower = LowerName::new(&u.name);
        let at_name = || zone.records_at(&lower).into_iter();
        match (u.dns_class, u.record_type()) {
            (DNSClass::IN, _) => added.push(u.clone()),
            (DNSClass::ANY, RecordType::ANY) => {
                // Delete every RRset at the name; at the apex, SOA and NS stay.
                deleted.extend(at_name().filter(|r| {
                    lower != *apex || !matches!(r.record_type(), RecordType::SOA | RecordType::NS)
                }));
            }
            (DNSClass::ANY, rtype) => {
                if lower == *apex && matches!(rtype, RecordType::SOA | RecordType::NS) {
                    continue;
                }
                deleted.extend(at_name().filter(|r| r.record_type() == rtype));
            }
            (DNSClass::NONE, _) => {
                let mut record = u.clone();
                record.dns_class = DNSClass::IN;
                if lower == *apex && record.record_type() == RecordType::SOA {
                    continue;
                }
                deleted.push(record);
            }
            _ => {}
        }
    }
    Ok((deleted, added))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME};

    use super::*;

    fn zone() -> Zone {
        Zone::parse(
            "$ORIGIN lab.test.\n$TTL 60\n@ IN SOA ns admin 7 1 1 1 60\n@ IN NS ns\nns IN A 127.0.0.9\nwww IN A 192.0.2.1\n",
            "lab.zone",
        )
        .unwrap()
    }

    fn update(prerequisites: Vec<Record>, updates: Vec<Record>) -> Message {
        let mut m = Message::new(1, MessageType::Query, OpCode::Update);
        m.add_query(Query::query(
            Name::from_str("lab.test.").unwrap(),
            RecordType::SOA,
        ));
        m.answers = prerequisites;
        m.authorities = updates;
        m
    }

    fn a(name: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(
            Name::from_str(name).unwrap(),
            60,
            RData::A(A::from(std::net::Ipv4Addr::from(ip))),
        )
    }

    fn delete_rrset(name: &str, rtype: RecordType) -> Record {
        let mut r = Record::update0(Name::from_str(name).unwrap(), 0, rtype);
        r.dns_class = DNSClass::ANY;
        r
    }

    #[test]
    fn a_change_replaces_an_address_and_raises_the_serial() {
        let zone = zone();
        let m = update(
            vec![],
            vec![
                delete_rrset("www.lab.test.", RecordType::A),
                a("www.lab.test.", [192, 0, 2, 2]),
            ],
        );
        let updated = apply(&zone, &m).unwrap().unwrap();
        assert_eq!(updated.zone.serial(), 8);
        let www = updated
            .zone
            .rrset(
                &LowerName::new(&Name::from_str("www.lab.test.").unwrap()),
                RecordType::A,
            )
            .unwrap();
        assert_eq!(
            crate::dns::addresses(&www.records),
            [std::net::IpAddr::from([192, 0, 2, 2])]
        );
    }

    #[test]
    fn prerequisites_that_do_not_hold_refuse_with_the_rfcs_rcodes() {
        let zone = zone();
        let mut nx = Record::update0(
            Name::from_str("nope.lab.test.").unwrap(),
            0,
            RecordType::ANY,
        );
        nx.dns_class = DNSClass::ANY;
        assert_eq!(
            apply(&zone, &update(vec![nx], vec![])).unwrap_err().rcode,
            ResponseCode::NXDomain
        );
        let mut yx = Record::update0(Name::from_str("www.lab.test.").unwrap(), 0, RecordType::A);
        yx.dns_class = DNSClass::NONE;
        assert_eq!(
            apply(&zone, &update(vec![yx], vec![])).unwrap_err().rcode,
            ResponseCode::YXRRSet
        );
    }

    #[test]
    fn a_change_that_would_break_the_zone_is_refused_and_nothing_changes() {
        let zone = zone();
        let cname = Record::from_rdata(
            Name::from_str("www.lab.test.").unwrap(),
            60,
            RData::CNAME(CNAME(Name::from_str("ns.lab.test.").unwrap())),
        );
        let refused = apply(&zone, &update(vec![], vec![cname])).unwrap_err();
        assert_eq!(refused.rcode, ResponseCode::Refused);
        assert!(refused.why.contains("CNAME"), "{}", refused.why);
        let last_ns = Record::from_rdata(
            Name::from_str("lab.test.").unwrap(),
            0,
            RData::NS(hickory_proto::rr::rdata::NS(
                Name::from_str("ns.lab.test.").unwrap(),
            )),
        );
        let mut delete = last_ns.clone();
        delete.dns_class = DNSClass::NONE;
        assert_eq!(
            apply(&zone, &update(vec![], vec![delete]))
                .unwrap_err()
                .rcode,
            ResponseCode::Refused
        );
        assert_eq!(zone.serial(), 7);
    }

    #[test]
    fn another_zone_is_notauth() {
        let mut m = update(vec![], vec![]);
        m.queries[0] = Query::query(Name::from_str("other.test.").unwrap(), RecordType::SOA);
        assert_eq!(apply(&zone(), &m).unwrap_err().rcode, ResponseCode::NotAuth);
    }
}
