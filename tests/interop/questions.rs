//! Which questions a hierarchy calls for, read from its zones: nothing is
//! expected of the answers here, only asked. The answers are compared
//! between implementations (see `compare`).
//!
//! For each zone, asked of its own servers:
//!
//! - every RRset it holds with authority (not delegations, not glue);
//! - for each name, a type it lacks (NODATA), or for an alias the types a
//!   browser asks (A, AAAA) through it;
//! - each empty non-terminal (a name that exists only because names below
//!   it do);
//! - for each wildcard, a name it covers, with its types and one it lacks;
//! - a name that does not exist (NXDOMAIN);
//! - for each delegation, the child's NS and a name below it (a referral).
//!
//! A resolver is asked every question of every zone.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use dnstrail::zone::{Zone, zone_cut_above};
use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::hierarchy::Hierarchy;

/// The label of the names that must not exist.
pub const MISSING_LABEL: &str = "interop-missing";
/// The label of the names a wildcard is asked to cover.
pub const WILDCARD_LABEL: &str = "interop-wildcard";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Question {
    pub name: Name,
    pub rtype: RecordType,
}

impl Question {
    pub fn new(name: &Name, rtype: RecordType) -> Question {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        Question { name, rtype }
    }

    pub fn parse(name: &str, rtype: RecordType) -> Question {
        Question::new(&Name::from_str(name).expect("a valid name"), rtype)
    }
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

/// The types a name is probed for when it lacks them, in this order.
const PROBES: [RecordType; 4] = [
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::A,
];

/// The questions the servers of `zone` answer with authority.
pub fn authoritative(zone: &Zone) -> Vec<Question> {
    let apex = zone.origin().clone();
    let mut names: Vec<(Name, Vec<RecordType>)> = Vec::new();
    for (name, rtype) in zone.names_and_types() {
        // Delegations and glue are the child's to answer.
        if zone_cut_above(zone, &LowerName::new(&name)).is_some() {
            continue;
        }
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, types)) => types.push(rtype),
            None => names.push((name, vec![rtype])),
        }
    }
    let mut questions = Vec::new();
    let mut push = |q: Question| {
        if !questions.contains(&q) {
            questions.push(q);
        }
    };
    for (name, types) in &names {
        for rtype in types {
            push(Question::new(name, *rtype));
        }
        for probe in lacking(types) {
            push(Question::new(name, probe));
        }
        if name.is_wildcard() {
            let covered = Name::from_str(WILDCARD_LABEL)
                .expect("a label")
                .append_domain(&name.base_name())
                .expect("a name");
            for rtype in types.iter().copied().chain(lacking(types)) {
                push(Question::new(&covered, rtype));
            }
        }
    }
    // Empty non-terminals: ancestors of names, below the apex, with no data.
    let owners: BTreeSet<Name> = names.iter().map(|(n, _)| n.to_lowercase()).collect();
    for (name, _) in &names {
        let mut up = name.base_name();
        while up.num_labels() > apex.num_labels() {
            if !owners.contains(&up.to_lowercase()) && !up.is_wildcard() {
                push(Question::new(&up, RecordType::A));
            }
            up = up.base_name();
        }
    }
    let missing = Name::from_str(MISSING_LABEL)
        .expect("a label")
        .append_domain(&apex)
        .expect("a name");
    push(Question::new(&missing, RecordType::A));
    questions
}

/// An alias is asked for the types a browser asks; any other name for
/// one type it lacks.
fn lacking(types: &[RecordType]) -> Vec<RecordType> {
    if types.contains(&RecordType::CNAME) {
        return vec![RecordType::A, RecordType::AAAA];
    }
    PROBES
        .into_iter()
        .find(|p| !types.contains(p))
        .into_iter()
        .collect()
}

/// The questions `zone`'s servers answer with a referral: for each
/// delegation, the child's NS, and the site (or else a name) below it.
pub fn referrals(zone: &Zone, hierarchy: &Hierarchy) -> Vec<Question> {
    let mut cuts: Vec<Name> = zone
        .names_and_types()
        .into_iter()
        .filter(|(name, rtype)| *rtype == RecordType::NS && name != zone.origin())
        .map(|(name, _)| name)
        .collect();
    cuts.dedup();
    let site = hierarchy
        .site_host()
        .map(|h| Name::from_str(&h).expect("a name"));
    let mut questions = Vec::new();
    for cut in cuts {
        questions.push(Question::new(&cut, RecordType::NS));
        let below = match &site {
            Some(site) if cut.zone_of(site) => site.clone(),
            _ => Name::from_str(MISSING_LABEL)
                .expect("a label")
                .append_domain(&cut)
                .expect("a name"),
        };
        questions.push(Question::new(&below, RecordType::A));
    }
    questions
}

/// Every question of every zone, each once: what the resolvers are asked.
pub fn for_resolvers(hierarchy: &Hierarchy) -> Vec<Question> {
    let mut all: Vec<Question> = Vec::new();
    for zone in &hierarchy.topology.zones {
        for q in authoritative(zone) {
            if !all.contains(&q) {
                all.push(q);
            }
        }
    }
    all
}

/// The RRset with the most records in the hierarchy, with its zone: the
/// one that tests EDNS and truncation.
pub fn largest_rrset(hierarchy: &Hierarchy) -> Option<(String, Question)> {
    hierarchy
        .topology
        .zones
        .iter()
        .flat_map(|zone| {
            zone.names_and_types()
                .into_iter()
                .filter(|(name, _)| zone_cut_above(zone, &LowerName::new(name)).is_none())
                .map(move |(name, rtype)| {
                    let size: usize = zone
                        .rrset(&LowerName::new(&name), rtype)
                        .map(|r| r.records.iter().map(|rec| rec.to_string().len()).sum())
                        .unwrap_or(0);
                    (size, zone.origin().to_string(), Question::new(&name, rtype))
                })
        })
        .max_by_key(|(size, _, _)| *size)
        .map(|(_, zone, q)| (zone, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rrset_a_missing_type_wildcards_empty_non_terminals_and_a_missing_name() {
        let zone = Zone::parse(
            "$ORIGIN shop.zz.\n$TTL 300\n\
             @ IN SOA ns.shop.zz. admin.shop.zz. 1 1800 900 604800 300\n\
             @ IN NS ns.shop.zz.\n\
             ns IN A 127.0.3.4\n\
             a.b IN A 127.0.3.5\n\
             *.cdn IN TXT \"wild\"\n\
             img IN CNAME x.cdn.shop.zz.\n\
             sub IN NS ns.sub.shop.zz.\n\
             ns.sub IN A 127.0.3.6\n",
            "shop.zz.zone",
        )
        .unwrap();
        let asked: Vec<String> = authoritative(&zone)
            .iter()
            .map(ToString::to_string)
            .collect();
        for wanted in [
            "shop.zz. SOA",
            "ns.shop.zz. A",
            "ns.shop.zz. AAAA",
            "b.shop.zz. A",
            "*.cdn.shop.zz. TXT",
            "interop-wildcard.cdn.shop.zz. TXT",
            "interop-wildcard.cdn.shop.zz. AAAA",
            "img.shop.zz. A",
            "img.shop.zz. AAAA",
            "interop-missing.shop.zz. A",
        ] {
            assert!(
                asked.contains(&wanted.to_string()),
                "{wanted} not in {asked:?}"
            );
        }
        // The delegation and its glue are the child's to answer.
        assert!(
            !asked.iter().any(|q| q.contains("sub.shop.zz.")),
            "{asked:?}"
        );
    }
}
