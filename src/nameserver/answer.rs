//! What an authoritative server says to one question (RFC 1034 §4.3.2).
//!
//! ```text
//!  question ──► zone cut above it? ──yes──► referral: AA=0, NS in authority,
//!                    │                        glue addresses in additional
//!                    no
//!                    ▼
//!               name exists? ──no──► wildcard? ──no──► NXDOMAIN + SOA
//!                    │                   │yes
//!                   yes ◄────────────────┘
//!                    ▼
//!    (a DNAME above the name renames it first: the DNAME and the CNAME it
//!     synthesises are answered, and the new name followed, RFC 6672 §3.2)
//!               type present? ──yes──► answer, AA=1
//!                    │no
//!               CNAME? ──yes──► answer the CNAME, follow it inside the zone
//!                    │no
//!                    ▼
//!               NODATA: NOERROR, no answer, SOA in authority
//! ```
//!
//! The negative answers carry the SOA with TTL min(SOA TTL, MINIMUM) so that
//! resolvers cache them for the right time (RFC 2308 §3).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::dname;
use crate::zone::{Node, Rrset, Zone, zone_cut_above};

/// How long a CNAME chain inside one zone is followed before giving up.
const MAX_CNAME_CHAIN: usize = 8;

/// The kind of answer, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Answer,
    Referral,
    NxDomain,
    NoData,
}

/// The sections of a response, ready to send.
#[derive(Debug, Clone)]
pub struct ZoneAnswer {
    pub kind: AnswerKind,
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl ZoneAnswer {
    fn new() -> ZoneAnswer {
        ZoneAnswer {
            kind: AnswerKind::Answer,
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// Answer `qname`/`qtype` from `zone`; `qname` must be in the zone.
pub fn answer_from(zone: &Zone, qname: &LowerName, qtype: RecordType) -> ZoneAnswer {
    let mut response = ZoneAnswer::new();
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        // Transfers are not answered here: only over TCP, to clients that
        // were allowed (see `transfer`), and a transfer to anyone is a gift
        // to scrapers.
        response.rcode = ResponseCode::Refused;
        response.authoritative = false;
        return response;
    }
    let mut name = qname.clone();
    let mut visited = vec![name.clone()];
    for _ in 0..MAX_CNAME_CHAIN {
        match step(zone, &name, qtype, &mut response) {
            // An alias that leads back to a name already answered is a loop
            // in the zone: each record is said once, and the chain stops.
            Some(next) if zone.contains(&next) && !visited.contains(&next) => {
                visited.push(next.clone());
                name = next;
            }
            // The alias leaves this zone: the resolver follows it from here.
            _ => break,
        }
    }
    add_additional_addresses(zone, &mut response);
    response
}

/// One step of the algorithm for one name; returns the CNAME target when the
/// name is an alias and the question was not for the CNAME itself.
fn step(
    zone: &Zone,
    name: &LowerName,
    qtype: RecordType,
    response: &mut ZoneAnswer,
) -> Option<LowerName> {
    // A delegation at or above the name: refer, unless this is the parent's
    // own DS at the cut (RFC 4035 §3.1.4.1).
    if let Some(cut) = zone_cut_above(zone, name)
        && !(qtype == RecordType::DS && cut == *name)
    {
        refer(zone, &cut, response);
        return None;
    }

    if qtype != RecordType::DNAME
        && let Some(rrset) = dname_above(zone, name)
    {
        let record = &rrset.records[0];
        add_answer(response, record.clone());
        response.kind = AnswerKind::Answer;
        return match dname::synthesize(record, &Name::from(name)) {
            Some(cname) => {
                let target = match &cname.data {
                    RData::CNAME(target) => LowerName::new(&target.0),
                    _ => unreachable!("synthesis makes a CNAME"),
                };
                add_answer(response, cname);
                Some(target)
            }
            None => {
                // The new name would be too long (RFC 6672 §2.2).
                response.rcode = ResponseCode::YXDomain;
                None
            }
        };
    }

    let (node, owner) = match zone.node(name) {
        Some(node) => (node, None),
        None => match wildcard_for(zone, name) {
            Some(node) => (node, Some(Name::from(name))),
            None => {
                negative(zone, AnswerKind::NxDomain, response);
                return None;
            }
        },
    };

    let synthesize = |record: &Record| -> Record {
        let mut record = record.clone();
        if let Some(owner) = &owner {
            record.name = owner.clone();
        }
        record
    };

    if qtype == RecordType::ANY && !node.is_empty_non_terminal() {
        for rrset in &node.rrsets {
            response
                .answers
                .extend(rrset.records.iter().map(synthesize));
        }
        response.kind = AnswerKind::Answer;
        return None;
    }
    if let Some(rrset) = node.get(qtype) {
        response
            .answers
            .extend(rrset.records.iter().map(synthesize));
        response.kind = AnswerKind::Answer;
        return None;
    }
    if let Some(cname) = node.get(RecordType::CNAME) {
        let record = synthesize(&cname.records[0]);
        let target = match &record.data {
            RData::CNAME(target) => LowerName::new(&target.0),
            _ => unreachable!("a CNAME RRset holds CNAME data"),
        };
        add_answer(response, record);
        response.kind = AnswerKind::Answer;
        return Some(target);
    }
    negative(zone, AnswerKind::NoData, response);
    None
}

/// A record into the answer section, unless it is there already.
fn add_answer(response: &mut ZoneAnswer, record: Record) {
    if !response.answers.contains(&record) {
        response.answers.push(record);
    }
}

/// The DNAME of the closest ancestor of `name` in the zone that has one,
/// the apex included: everything below it is renamed (RFC 6672 §2.3).
fn dname_above(zone: &Zone, name: &LowerName) -> Option<Rrset> {
    let mut ancestor = name.clone();
    while ancestor != *zone.lower_origin() && !ancestor.is_root() {
        ancestor = ancestor.base_name();
        if let Some(rrset) = zone.rrset(&ancestor, RecordType::DNAME) {
            return Some(rrset);
        }
    }
    None
}

/// The wildcard that covers a name that does not exist, if any (RFC 4592):
/// `*.` prepended to the closest encloser, the deepest existing ancestor.
fn wildcard_for(zone: &Zone, name: &LowerName) -> Option<Node> {
    let mut ancestor = name.base_name();
    while zone.contains(&ancestor) {
        if zone.exists(&ancestor) {
            let wildcard = LowerName::new(&Name::from(&ancestor).prepend_label("*").ok()?);
            return zone.node(&wildcard);
        }
        if ancestor.is_root() {
            break;
        }
        ancestor = ancestor.base_name();
    }
    None
}

/// A referral: not authoritative, the child's NS set in the authority
/// section and every address we hold for those servers in the additional.
fn refer(zone: &Zone, cut: &LowerName, response: &mut ZoneAnswer) {
    let ns = zone
        .rrset(cut, RecordType::NS)
        .expect("a zone cut holds an NS RRset");
    response.authorities.extend(ns.records.iter().cloned());
    response.authoritative = false;
    response.kind = AnswerKind::Referral;
}

/// NXDOMAIN or NODATA: the SOA goes in the authority section.
fn negative(zone: &Zone, kind: AnswerKind, response: &mut ZoneAnswer) {
    if kind == AnswerKind::NxDomain {
        response.rcode = ResponseCode::NXDomain;
    }
    response.kind = kind;
    response.authorities.push(zone.negative_soa().clone());
}

/// Addresses of the servers named in NS, MX and SRV records of the response,
/// where the zone has them: for a referral this is the glue, for answers it
/// saves the resolver a question.
fn add_additional_addresses(zone: &Zone, response: &mut ZoneAnswer) {
    let targets: Vec<LowerName> = response
        .answers
        .iter()
        .chain(response.authorities.iter())
        .filter_map(|record| match &record.data {
            RData::NS(ns) => Some(LowerName::new(&ns.0)),
            RData::MX(mx) => Some(LowerName::new(&mx.exchange)),
            RData::SRV(srv) => Some(LowerName::new(&srv.target)),
            _ => None,
        })
        .collect();
    for target in targets {
        // Outside the zone we know nothing; below a cut we hold only glue,
        // which belongs in referrals, not beside authoritative answers.
        let is_glue = zone_cut_above(zone, &target).is_some();
        if !zone.contains(&target) || (is_glue && response.kind != AnswerKind::Referral) {
            continue;
        }
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(rrset) = zone.rrset(&target, rtype) {
                for record in &rrset.records {
                    if !response.additionals.contains(record) && !response.answers.contains(record)
                    {
                        response.additionals.push(record.clone());
                    }
                }
            }
        }
    }
}

/// The whole zone for a transfer (AXFR, RFC 5936): the SOA, every other
/// record, and the SOA again to say it is complete.
pub fn transfer(zone: &Zone) -> Vec<Record> {
    let mut rest: Vec<Record> = zone
        .records()
        .filter(|r| r.record_type() != RecordType::SOA)
        .collect();
    rest.sort_by(|a, b| (&a.name, a.record_type()).cmp(&(&b.name, b.record_type())));
    let mut records = Vec::with_capacity(rest.len() + 2);
    records.push(zone.soa().clone());
    records.extend(rest);
    records.push(zone.soa().clone());
    records
}
