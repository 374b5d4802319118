//! Making sense of one name server's response (RFC 1034 §5.3.3, RFC 2181
//! §5.4.1): a referral, an answer (perhaps through CNAMEs), a negative
//! answer, or a failure. Pure functions of the response, the zone whose
//! server was asked, and the question; the fuzzer calls them with arbitrary
//! responses.
//!
//! Everything is checked against the bailiwick: a server asked as a server
//! of zone Z may speak only about names at or below Z. Records outside it
//! are neither used nor cached (the classic cache-poisoning defence).

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::cache::Delegation;
use crate::trace::{RecordView, ResponseKind};

/// How long a CNAME chain may be, across zones.
pub const MAX_CNAME_CHAIN: usize = 8;

/// What a server's response means, after the bailiwick checks.
#[derive(Debug)]
pub enum Classified {
    Referral(Delegation),
    /// RRsets in chain order; `next` is set when the chain leaves the zone.
    Answer {
        rrsets: Vec<Vec<Record>>,
        next: Option<Name>,
    },
    Negative {
        rrsets: Vec<Vec<Record>>,
        nxdomain: bool,
        soa: Option<Record>,
    },
    Failure(String),
}

pub fn cname_target(records: &[Record]) -> Option<Name> {
    records.iter().find_map(|r| match &r.data {
        RData::CNAME(target) => Some(target.0.clone()),
        _ => None,
    })
}

pub fn ns_names(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_string()),
            _ => None,
        })
        .collect()
}

/// The records of `section` at `name` of type `rtype` (any type for ANY).
pub fn rrset(section: &[Record], name: &Name, rtype: RecordType) -> Vec<Record> {
    section
        .iter()
        .filter(|r| {
            r.dns_class == DNSClass::IN
                && r.name.eq_ignore_root(name)
                && (rtype == RecordType::ANY || r.record_type() == rtype)
        })
        .cloned()
        .collect()
}

/// Make sense of a response from a server of `zone` to `name`/`rtype`.
pub fn classify(response: &Message, zone: &Name, name: &Name, rtype: RecordType) -> Classified {
    let bailiwick = LowerName::new(zone);
    let inside = |r: &Record| bailiwick.zone_of(&LowerName::new(&r.name));
    let rcode = response.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Classified::Failure(crate::trace::rcode_name(rcode));
    }
    let answers: Vec<Record> = response
        .answers
        .iter()
        .filter(|r| inside(r))
        .cloned()
        .collect();
    let soa = response
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && inside(r))
        .cloned();

    // Follow the answer section: the records asked for, or CNAMEs to them.
    let mut rrsets = Vec::new();
    let mut current = name.clone();
    let mut complete = false;
    for _ in 0..MAX_CNAME_CHAIN {
        let found = rrset(&answers, &current, rtype);
        if !found.is_empty() {
            rrsets.push(found);
            complete = true;
            break;
        }
        let alias = rrset(&answers, &current, RecordType::CNAME);
        match cname_target(&alias) {
            Some(target) if rtype != RecordType::CNAME => {
                rrsets.push(alias);
                current = target;
            }
            _ => break,
        }
    }

    if rcode == ResponseCode::NXDomain {
        return Classified::Negative {
            rrsets,
            nxdomain: true,
            soa,
        };
    }
    if complete {
        return Classified::Answer { rrsets, next: None };
    }
    if !rrsets.is_empty() {
        // A CNAME whose target this server could not finish: if the target
        // is in its zone and it sent an SOA, the target has no such data.
        if soa.is_some() && bailiwick.zone_of(&LowerName::new(&current)) {
            return Classified::Negative {
                rrsets,
                nxdomain: false,
                soa,
            };
        }
        return Classified::Answer {
            rrsets,
            next: Some(current),
        };
    }

    // A referral: NS records for a zone below this one and above the name.
    let target = LowerName::new(name);
    let cut = response.authorities.iter().find_map(|r| match &r.data {
        RData::NS(_) => {
            let owner = LowerName::new(&r.name);
            (owner != bailiwick && bailiwick.zone_of(&owner) && owner.zone_of(&target))
                .then(|| r.name.clone())
        }
        _ => None,
    });
    if let Some(cut) = cut {
        let ns = rrset(&response.authorities, &cut, RecordType::NS);
        let names: Vec<LowerName> = ns
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(n) => Some(LowerName::new(&n.0)),
                _ => None,
            })
            .collect();
        // Glue only for the servers named, and only from inside the
        // responding server's bailiwick.
        let glue = response
            .additionals
            .iter()
            .filter(|r| {
                matches!(r.record_type(), RecordType::A | RecordType::AAAA)
                    && inside(r)
                    && names.contains(&LowerName::new(&r.name))
            })
            .cloned()
            .collect();
        return Classified::Referral(Delegation {
            zone: cut,
            ns,
            glue,
            learned_from: Vec::new(),
        });
    }
    if soa.is_some() || response.metadata.authoritative {
        return Classified::Negative {
            rrsets,
            nxdomain: false,
            soa,
        };
    }
    Classified::Failure("lame: neither an answer nor a referral".into())
}

/// The trace's view of a classified response.
pub fn describe(classified: &Classified) -> ResponseKind {
    match classified {
        Classified::Referral(d) => ResponseKind::Referral {
            zone: d.zone.to_string(),
            servers: ns_names(&d.ns),
            glue: d.glue.len(),
        },
        Classified::Answer { rrsets, .. } => ResponseKind::Answer {
            records: rrsets.iter().flatten().map(RecordView::from).collect(),
        },
        Classified::Negative { nxdomain: true, .. } => ResponseKind::NxDomain,
        Classified::Negative { .. } => ResponseKind::NoData,
        Classified::Failure(reason) => ResponseKind::Failure {
            reason: reason.clone(),
        },
    }
}

/// Classify a response and check what the resolver would take from it: only
/// records inside `zone`, and referrals only to a zone between `zone` and
/// `name`. Panics otherwise; the fuzzer calls this with arbitrary responses.
#[doc(hidden)]
pub fn check_classification(response: &Message, zone: &Name, name: &Name, rtype: RecordType) {
    let bailiwick = LowerName::new(zone);
    let inside = |r: &Record| bailiwick.zone_of(&LowerName::new(&r.name));
    match classify(response, zone, name, rtype) {
        Classified::Referral(delegation) => {
            let cut = LowerName::new(&delegation.zone);
            assert!(
                cut != bailiwick && bailiwick.zone_of(&cut),
                "referral upward or sideways"
            );
            assert!(
                cut.zone_of(&LowerName::new(name)),
                "referral away from the name"
            );
            assert!(delegation.ns.iter().chain(&delegation.glue).all(inside));
        }
        Classified::Answer { rrsets, .. } | Classified::Negative { rrsets, .. } => {
            assert!(
                rrsets.iter().flatten().all(inside),
                "out-of-bailiwick data kept"
            );
        }
        Classified::Failure(_) => {}
    }
}
