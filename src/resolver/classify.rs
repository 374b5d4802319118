//! Making sense of one name server's response (RFC 1034 §5.3.3, RFC 2181
//! §5.4.1): a referral, an answer (perhaps through CNAMEs), a negative
//! answer, or a failure. Pure functions of the response, the zone whose
//! server was asked, and the question; the fuzzer calls them with arbitrary
//! responses.
//!
//! Everything is checked against the bailiwick: a server asked as a server
//! of zone Z may speak only about names at or below Z. Records outside it
//! are neither used nor cached (the classic cache-poisoning defence).
//! Answers and denials count only with AA=1; a server of Z that answers
//! without authority, or refers upward, is lame for Z. Records sent twice
//! count once (an RRset is a set, RFC 2181 §5), TTLs above 2^31-1 count as
//! 0 (§8), and a DNAME's CNAME is synthesised here, not trusted (RFC 6672).

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::cache::Delegation;
use crate::nameserver::dname;
use crate::trace::{RecordView, ResponseKind};

/// How long a CNAME chain may be, across zones.
pub const MAX_CNAME_CHAIN: usize = 8;
/// The largest TTL there is (RFC 2181 §8): anything above it is read as 0.
pub const MAX_RECORD_TTL: u32 = 0x7fff_ffff;

/// What a server's response means, after the bailiwick checks.
#[derive(Debug)]
pub enum Classified {
    /// A zone cut below the server's zone: its name servers, the glue from
    /// inside the server's zone, and apart from it any addresses from
    /// outside (used only to break a cycle, never cached as answers).
    Referral {
        delegation: Delegation,
        foreign_glue: Vec<Record>,
    },
    /// RRsets in chain order; `next` is set when the chain leaves the zone.
    Answer {
        rrsets: Vec<Vec<Record>>,
        next: Option<Name>,
    },
    /// NXDOMAIN or NODATA, with the SOA and, if the server sent it, the
    /// zone's NS set from the authority section.
    Negative {
        rrsets: Vec<Vec<Record>>,
        nxdomain: bool,
        soa: Option<Record>,
        ns: Vec<Record>,
    },
    /// An error rcode (SERVFAIL, REFUSED…): the server cannot answer now.
    Failure(String),
    /// A server of the zone that answers as if it were not one (no AA and
    /// no referral, or a referral upward): lame for this zone.
    Lame(String),
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

/// Whether two records are the same record: owner, type and data (TTLs
/// aside). An RRset is a set (RFC 2181 §5): a record sent twice is one.
pub fn same_record(a: &Record, b: &Record) -> bool {
    a.record_type() == b.record_type() && a.name.eq_ignore_root(&b.name) && a.data == b.data
}

/// Records with every repeat after the first left out.
pub fn dedup(records: impl IntoIterator<Item = Record>) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for record in records {
        if !out.iter().any(|kept| same_record(kept, &record)) {
            out.push(record);
        }
    }
    out
}

/// The records of `section` at `name` of type `rtype` (any type for ANY),
/// each once.
pub fn rrset(section: &[Record], name: &Name, rtype: RecordType) -> Vec<Record> {
    dedup(
        section
            .iter()
            .filter(|r| {
                r.dns_class == DNSClass::IN
                    && r.name.eq_ignore_root(name)
                    && (rtype == RecordType::ANY || r.record_type() == rtype)
            })
            .cloned(),
    )
}

/// A section with TTLs above 2^31-1 read as 0 (RFC 2181 §8).
fn with_sane_ttls(section: &[Record]) -> Vec<Record> {
    section
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if r.ttl > MAX_RECORD_TTL {
                r.ttl = 0;
            }
            r
        })
        .collect()
}

/// The DNAME in `answers` that renames `name`: the deepest one whose owner
/// is a proper ancestor of it.
fn dname_above<'a>(answers: &'a [Record], name: &Name) -> Option<&'a Record> {
    answers
        .iter()
        .filter(|r| r.record_type() == RecordType::DNAME)
        .filter(|r| r.name.zone_of(name) && r.name.num_labels() < name.num_labels())
        .max_by_key(|r| r.name.num_labels())
}

/// Make sense of a response from a server of `zone` to `name`/`rtype`.
pub fn classify(response: &Message, zone: &Name, name: &Name, rtype: RecordType) -> Classified {
    let bailiwick = LowerName::new(zone);
    let inside = |r: &Record| bailiwick.zone_of(&LowerName::new(&r.name));
    let rcode = response.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Classified::Failure(crate::trace::rcode_name(rcode));
    }
    let authoritative = response.metadata.authoritative;
    let answers: Vec<Record> = with_sane_ttls(&response.answers)
        .into_iter()
        .filter(|r| inside(r))
        .collect();
    let authorities = with_sane_ttls(&response.authorities);
    let soa = authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && inside(r))
        .cloned();

    // Follow the answer section: the records asked for, or CNAMEs (given,
    // or synthesised from a DNAME) toward them.
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
        if rtype != RecordType::DNAME
            && let Some(dname_record) = dname_above(&answers, &current)
        {
            // RFC 6672 §3.4: the CNAME is made here from the DNAME, not
            // taken on trust from the server.
            let Some(cname) = dname::synthesize(dname_record, &current) else {
                break;
            };
            let Some(target) = cname_target(std::slice::from_ref(&cname)) else {
                break;
            };
            rrsets.push(rrset(&answers, &dname_record.name, RecordType::DNAME));
            rrsets.push(vec![cname]);
            current = target;
            continue;
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

    // Data and denials count only from a server that speaks with authority
    // (RFC 1034 §4.3.1): anything else is a cache or a confused server.
    if rcode == ResponseCode::NXDomain || !rrsets.is_empty() {
        if !authoritative {
            return Classified::Lame("lame: an answer without authority (AA=0)".into());
        }
        let ns = apex_ns_records(&authorities, zone);
        if rcode == ResponseCode::NXDomain {
            return Classified::Negative {
                rrsets,
                nxdomain: true,
                soa,
                ns,
            };
        }
        if complete {
            return Classified::Answer { rrsets, next: None };
        }
        // A CNAME whose target this server could not finish: if the target
        // is in its zone and it sent an SOA, the target has no such data.
        if soa.is_some() && bailiwick.zone_of(&LowerName::new(&current)) {
            return Classified::Negative {
                rrsets,
                nxdomain: false,
                soa,
                ns,
            };
        }
        return Classified::Answer {
            rrsets,
            next: Some(current),
        };
    }

    // A referral: NS records for a zone below this one and above the name.
    let target = LowerName::new(name);
    let cut = authorities.iter().find_map(|r| match &r.data {
        RData::NS(_) => {
            let owner = LowerName::new(&r.name);
            (owner != bailiwick && bailiwick.zone_of(&owner) && owner.zone_of(&target))
                .then(|| r.name.clone())
        }
        _ => None,
    });
    if let Some(cut) = cut {
        let ns = rrset(&authorities, &cut, RecordType::NS);
        let names: Vec<LowerName> = ns
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(n) => Some(LowerName::new(&n.0)),
                _ => None,
            })
            .collect();
        // Glue only for the servers named; what comes from inside the
        // responding server's zone is glue, the rest is kept apart.
        let (glue, foreign_glue): (Vec<Record>, Vec<Record>) = dedup(
            with_sane_ttls(&response.additionals)
                .into_iter()
                .filter(|r| {
                    matches!(r.record_type(), RecordType::A | RecordType::AAAA)
                        && names.contains(&LowerName::new(&r.name))
                }),
        )
        .into_iter()
        .partition(|r| inside(r));
        return Classified::Referral {
            delegation: Delegation {
                zone: cut,
                ns,
                glue,
                learned_from: Vec::new(),
            },
            foreign_glue,
        };
    }
    if authoritative {
        return Classified::Negative {
            rrsets,
            nxdomain: false,
            soa,
            ns: apex_ns_records(&authorities, zone),
        };
    }
    // Not authoritative, no answer and no referral down: a server that
    // does not serve the zone, or refers back up toward the root.
    match authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
    {
        Some(ns) => Classified::Lame(format!(
            "lame: a referral upward or sideways, to {} (not below {zone})",
            ns.name
        )),
        None => Classified::Lame("lame: neither an answer (AA=0) nor a referral".into()),
    }
}

/// The NS RRset of `zone` itself, as its server sent it in `section`.
fn apex_ns_records(section: &[Record], zone: &Name) -> Vec<Record> {
    rrset(section, zone, RecordType::NS)
}

/// The child's own view of its name servers, when an authoritative server
/// of `zone` sent its NS set (with the answer to `zone NS`, or beside an
/// answer in the authority section), with addresses for them from inside
/// the zone. RFC 2181 §5.4.1 ranks this above the parent's referral.
pub fn apex_delegation(response: &Message, zone: &Name) -> Option<Delegation> {
    let rcode = response.metadata.response_code;
    if !response.metadata.authoritative
        || (rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain)
    {
        return None;
    }
    let mut ns = apex_ns_records(&with_sane_ttls(&response.answers), zone);
    if ns.is_empty() {
        ns = apex_ns_records(&with_sane_ttls(&response.authorities), zone);
    }
    if ns.is_empty() {
        return None;
    }
    let bailiwick = LowerName::new(zone);
    let names: Vec<LowerName> = ns
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(n) => Some(LowerName::new(&n.0)),
            _ => None,
        })
        .collect();
    let glue = dedup(
        with_sane_ttls(&response.additionals)
            .into_iter()
            .filter(|r| {
                matches!(r.record_type(), RecordType::A | RecordType::AAAA)
                    && bailiwick.zone_of(&LowerName::new(&r.name))
                    && names.contains(&LowerName::new(&r.name))
            }),
    );
    Some(Delegation {
        zone: zone.clone(),
        ns,
        glue,
        learned_from: Vec::new(),
    })
}

/// An SOA in the authority section of a denial from a server of `zone`
/// whose owner is outside `zone`: the classification leaves it out (the
/// denial then has none), and the trace says why.
pub fn foreign_soa(response: &Message, classified: &Classified, zone: &Name) -> Option<Record> {
    if !matches!(classified, Classified::Negative { soa: None, .. }) {
        return None;
    }
    let bailiwick = LowerName::new(zone);
    response
        .authorities
        .iter()
        .find(|r| {
            r.record_type() == RecordType::SOA && !bailiwick.zone_of(&LowerName::new(&r.name))
        })
        .cloned()
}

/// Records of the answer section that the classification did not use:
/// other types, other names, data from outside the zone. They are ignored.
pub fn unused_answers(response: &Message, classified: &Classified) -> Vec<Record> {
    let used: Vec<&Record> = match classified {
        Classified::Answer { rrsets, .. } | Classified::Negative { rrsets, .. } => {
            rrsets.iter().flatten().collect()
        }
        _ => return Vec::new(),
    };
    dedup(
        response
            .answers
            .iter()
            .filter(|r| !used.iter().any(|u| same_record(u, r)))
            // Signatures go with the RRsets they cover (see `validation`).
            .filter(|r| r.record_type() != RecordType::RRSIG)
            // A server's own copy of the CNAME a DNAME implies is not news.
            .filter(|r| {
                !(r.record_type() == RecordType::CNAME
                    && used.iter().any(|u| {
                        u.record_type() == RecordType::CNAME && u.name.eq_ignore_root(&r.name)
                    }))
            })
            .cloned(),
    )
}

/// The trace's view of a classified response.
pub fn describe(classified: &Classified) -> ResponseKind {
    match classified {
        Classified::Referral {
            delegation: d,
            foreign_glue,
        } => ResponseKind::Referral {
            zone: d.zone.to_string(),
            servers: ns_names(&d.ns),
            glue: d.glue.len() + foreign_glue.len(),
        },
        Classified::Answer { rrsets, .. } => ResponseKind::Answer {
            records: rrsets.iter().flatten().map(RecordView::from).collect(),
        },
        Classified::Negative { nxdomain: true, .. } => ResponseKind::NxDomain,
        Classified::Negative { .. } => ResponseKind::NoData,
        Classified::Failure(reason) | Classified::Lame(reason) => ResponseKind::Failure {
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
        Classified::Referral {
            delegation,
            foreign_glue,
        } => {
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
            let names = ns_names(&delegation.ns);
            assert!(
                foreign_glue
                    .iter()
                    .all(|g| names.contains(&g.name.to_string())),
                "an address for a server the referral does not name"
            );
        }
        Classified::Answer { rrsets, .. } | Classified::Negative { rrsets, .. } => {
            assert!(
                rrsets.iter().flatten().all(inside),
                "out-of-bailiwick data kept"
            );
        }
        Classified::Failure(_) | Classified::Lame(_) => {}
    }
}
