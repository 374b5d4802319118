//! What must agree when two implementations answer the same question, and
//! the few rules of the protocol every answer must keep whoever sent it.
//!
//! Two answers agree when:
//!
//! - the rcode and the flags that carry meaning (AA, TC, RA) are the same,
//!   and both carry an OPT record (of the same version) or neither does;
//! - the answer sections hold the same records (as sets: order is free);
//! - in a referral, the NS records and the addresses of those servers
//!   (glue) are the same; in a negative answer, the SOA is;
//! - anything else in the authority and additional sections, which servers
//!   may add or leave out (RFC 2181 §9, RFC 1034 §4.3.2's "may"), is the
//!   same wherever both sent the same name and type.
//!
//! Between name servers, TTLs must be equal: they come from the same zone
//! files. Between resolvers they are not compared (a cache counts them
//! down and may cap them), but no resolver may return a TTL above the one
//! the name servers gave (`ttls_above`).
//!
//! A truncated answer (TC) is compared by its header only: what fits is
//! the sender's choice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::ask::{Ask, Opt, Reply};

/// A record as compared: owner and data in lower case (TXT as sent).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rr {
    pub name: String,
    pub rtype: RecordType,
    pub data: String,
    pub ttl: u32,
}

impl Rr {
    fn of(record: &Record) -> Rr {
        let rtype = record.record_type();
        let data = record.data.to_string();
        Rr {
            name: record.name.to_lowercase().to_string(),
            rtype,
            data: if rtype == RecordType::TXT {
                data
            } else {
                data.to_lowercase()
            },
            ttl: record.ttl,
        }
    }

    fn without_ttl(&self) -> Rr {
        Rr {
            ttl: 0,
            ..self.clone()
        }
    }
}

impl fmt::Display for Rr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

/// What a response says, as compared.
#[derive(Debug, Clone)]
pub struct View {
    pub rcode: ResponseCode,
    pub aa: bool,
    pub tc: bool,
    pub ra: bool,
    /// The version of its OPT record, if it has one.
    pub opt: Option<u8>,
    pub answer: BTreeSet<Rr>,
    pub authority: BTreeSet<Rr>,
    pub additional: BTreeSet<Rr>,
    pub qtype: RecordType,
    /// The size on the wire, where it was counted.
    pub size: Option<usize>,
}

/// What kind of response it is, which decides what in it is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Records of the type asked (or an alias).
    Answer,
    /// "Ask them": NS records in the authority section, AA clear.
    Referral,
    /// NXDOMAIN, or NOERROR with nothing of the type asked, and the SOA.
    Negative,
}

/// Whether TTLs must be equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttls {
    Equal,
    Ignored,
}

impl View {
    pub fn of(reply: &Reply) -> View {
        View::of_message(&reply.message, reply.size)
    }

    pub fn of_message(message: &Message, size: Option<usize>) -> View {
        let set = |records: &[Record]| -> BTreeSet<Rr> {
            records
                .iter()
                .filter(|r| r.record_type() != RecordType::OPT)
                .map(Rr::of)
                .collect()
        };
        View {
            rcode: message.metadata.response_code,
            aa: message.metadata.authoritative,
            tc: message.metadata.truncation,
            ra: message.metadata.recursion_available,
            opt: message.edns.as_ref().map(|e| e.version()),
            answer: set(&message.answers),
            authority: set(&message.authorities),
            additional: set(&message.additionals),
            qtype: message
                .queries
                .first()
                .map_or(RecordType::NULL, |q| q.query_type()),
            size,
        }
    }

    /// The answer as far as it lies in the zone `apex`. A server that also
    /// serves the zone an alias leads into may follow the alias there (NSD
    /// does; Knot DNS and dnstrail stop at the zone's edge; RFC 1034 §4.3.2
    /// allows both): what lies past the edge, and the rcode it brings, is
    /// left out here and compared when that zone's servers are asked.
    pub fn within(&self, apex: &str) -> View {
        let inside =
            |name: &str| apex == "." || name == apex || name.ends_with(&format!(".{apex}"));
        let leaves = self
            .answer
            .iter()
            .any(|r| r.rtype == RecordType::CNAME && !inside(&r.data));
        if !leaves {
            return self.clone();
        }
        let mut view = self.clone();
        view.answer.retain(|r| inside(&r.name));
        view.authority.retain(|r| inside(&r.name));
        view.additional.retain(|r| inside(&r.name));
        if view.rcode == ResponseCode::NXDomain {
            view.rcode = ResponseCode::NoError;
        }
        view
    }

    pub fn kind(&self) -> Kind {
        let has = |set: &BTreeSet<Rr>, t: RecordType| set.iter().any(|r| r.rtype == t);
        if self.rcode == ResponseCode::NoError
            && !self.aa
            && self.answer.is_empty()
            && has(&self.authority, RecordType::NS)
            && !has(&self.authority, RecordType::SOA)
        {
            Kind::Referral
        } else if self.rcode == ResponseCode::NXDomain
            || (self.rcode == ResponseCode::NoError
                && !has(&self.answer, self.qtype)
                && has(&self.authority, RecordType::SOA))
        {
            Kind::Negative
        } else {
            Kind::Answer
        }
    }

    /// The name servers a referral points to.
    fn referral_targets(&self) -> BTreeSet<String> {
        self.authority
            .iter()
            .filter(|r| r.rtype == RecordType::NS)
            .map(|r| r.data.clone())
            .collect()
    }

    /// One line: `NOERROR aa: www.example.com. 300 A 127.0.0.44`,
    /// `referral to com. (1 NS, 1 glue)`, `NXDOMAIN aa, SOA example.com. TTL 900`.
    pub fn summary(&self) -> String {
        let mut flags = Vec::new();
        for (on, name) in [(self.aa, "aa"), (self.tc, "tc"), (self.ra, "ra")] {
            if on {
                flags.push(name);
            }
        }
        let head = if flags.is_empty() {
            format!("{:?}", self.rcode).to_uppercase()
        } else {
            format!(
                "{} {}",
                format!("{:?}", self.rcode).to_uppercase(),
                flags.join(" ")
            )
        };
        let soa = || {
            self.authority
                .iter()
                .find(|r| r.rtype == RecordType::SOA)
                .map(|r| format!(", SOA {} TTL {}", r.name, r.ttl))
                .unwrap_or_default()
        };
        match self.kind() {
            _ if self.tc => format!("{head}, {} answer record(s)", self.answer.len()),
            Kind::Referral => {
                let zone = self
                    .authority
                    .iter()
                    .find(|r| r.rtype == RecordType::NS)
                    .map_or("?", |r| r.name.as_str());
                let targets = self.referral_targets();
                let glue = self
                    .additional
                    .iter()
                    .filter(|r| is_address(r.rtype) && targets.contains(&r.name))
                    .count();
                format!(
                    "{head}, referral to {zone} ({} NS, {glue} glue)",
                    targets.len()
                )
            }
            Kind::Negative if self.answer.is_empty() => format!("{head}{}", soa()),
            Kind::Negative => format!("{head}, {}{}", records(&self.answer), soa()),
            Kind::Answer => format!("{head}, {}", records(&self.answer)),
        }
    }
}

fn is_address(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::A | RecordType::AAAA)
}

/// `www.example.com. 300 A 127.0.0.44`, or `12 records (TXT)`.
fn records(set: &BTreeSet<Rr>) -> String {
    if set.len() <= 2 {
        let shown: Vec<String> = set.iter().map(ToString::to_string).collect();
        return if shown.is_empty() {
            "no answer".to_string()
        } else {
            shown.join(" + ")
        };
    }
    let types: BTreeSet<String> = set.iter().map(|r| r.rtype.to_string()).collect();
    let types: Vec<String> = types.into_iter().collect();
    format!("{} records ({})", set.len(), types.join("+"))
}

/// How `b` differs from `a`, in words; empty if they agree.
pub fn differences(a: &View, b: &View, ttls: Ttls) -> Vec<String> {
    let mut out = Vec::new();
    if a.rcode != b.rcode {
        out.push(format!("rcode {:?} vs {:?}", a.rcode, b.rcode));
    }
    for (name, x, y) in [("AA", a.aa, b.aa), ("TC", a.tc, b.tc), ("RA", a.ra, b.ra)] {
        if x != y {
            out.push(format!("{name} {} vs {}", on(x), on(y)));
        }
    }
    if a.opt != b.opt {
        out.push(format!("OPT {} vs {}", opt(a.opt), opt(b.opt)));
    }
    if a.tc && b.tc {
        return out;
    }
    let norm = |set: &BTreeSet<Rr>| -> BTreeSet<Rr> {
        match ttls {
            Ttls::Equal => set.clone(),
            Ttls::Ignored => set.iter().map(Rr::without_ttl).collect(),
        }
    };
    let (answer_a, answer_b) = (norm(&a.answer), norm(&b.answer));
    if answer_a != answer_b {
        out.push(format!("answer: {}", set_difference(&answer_a, &answer_b)));
    }
    let kind = a.kind();
    // Required in the authority section: a referral's NS set, a negative
    // answer's SOA.
    let required_authority = |rtype: RecordType| match kind {
        Kind::Referral => rtype == RecordType::NS,
        Kind::Negative => rtype == RecordType::SOA,
        Kind::Answer => false,
    };
    compare_section(
        "authority",
        &norm(&a.authority),
        &norm(&b.authority),
        required_authority,
        |_| true,
        &mut out,
    );
    // Required in the additional section: the addresses of a referral's
    // servers (glue).
    let targets = a.referral_targets();
    compare_section(
        "additional",
        &norm(&a.additional),
        &norm(&b.additional),
        |rtype| kind == Kind::Referral && is_address(rtype),
        |name| kind != Kind::Referral || targets.contains(name),
        &mut out,
    );
    out
}

/// Compare a section RRset by RRset: a required RRset must be the same in
/// both; any other only where both sent it. `relevant` picks the owner
/// names the rule is about.
fn compare_section(
    section: &str,
    a: &BTreeSet<Rr>,
    b: &BTreeSet<Rr>,
    required: impl Fn(RecordType) -> bool,
    relevant: impl Fn(&str) -> bool,
    out: &mut Vec<String>,
) {
    let rrsets = |set: &BTreeSet<Rr>| -> BTreeMap<(String, RecordType), BTreeSet<Rr>> {
        let mut map: BTreeMap<(String, RecordType), BTreeSet<Rr>> = BTreeMap::new();
        for rr in set {
            map.entry((rr.name.clone(), rr.rtype))
                .or_default()
                .insert(rr.clone());
        }
        map
    };
    let (a, b) = (rrsets(a), rrsets(b));
    let keys: BTreeSet<&(String, RecordType)> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (name, rtype) = key;
        let must = required(*rtype) && relevant(name);
        let empty = BTreeSet::new();
        let (x, y) = (a.get(key).unwrap_or(&empty), b.get(key).unwrap_or(&empty));
        let both = !x.is_empty() && !y.is_empty();
        if (must || both) && x != y {
            out.push(format!(
                "{section} {name} {rtype}: {}",
                set_difference(x, y)
            ));
        }
    }
}

fn set_difference(a: &BTreeSet<Rr>, b: &BTreeSet<Rr>) -> String {
    let show = |set: Vec<&Rr>| -> String {
        let n = set.len();
        let mut shown: Vec<String> = set.into_iter().take(3).map(ToString::to_string).collect();
        if n > 3 {
            shown.push(format!("… {} more", n - 3));
        }
        format!("[{}]", shown.join("; "))
    };
    format!(
        "only in the first {}, only in the second {}",
        show(a.difference(b).collect()),
        show(b.difference(a).collect())
    )
}

fn on(flag: bool) -> &'static str {
    if flag { "set" } else { "clear" }
}

fn opt(version: Option<u8>) -> String {
    version.map_or("absent".to_string(), |v| format!("version {v}"))
}

/// The answers of several implementations (or servers) to one question,
/// compared with the first: `Ok(summary)` if all agree, else who differs
/// and how. When every other one agrees with each other but not with the
/// first, the first is named as the odd one out.
pub fn agree(views: &[(String, View)], ttls: Ttls) -> Result<String, String> {
    let Some((first, reference)) = views.first() else {
        return Err("nobody answered".to_string());
    };
    let differing: Vec<(&String, Vec<String>)> = views[1..]
        .iter()
        .map(|(who, view)| (who, differences(reference, view, ttls)))
        .filter(|(_, d)| !d.is_empty())
        .collect();
    let names: Vec<&str> = views.iter().map(|(w, _)| w.as_str()).collect();
    if differing.is_empty() {
        return Ok(format!("{} ({})", reference.summary(), names.join(" = ")));
    }
    let others_agree = views.len() >= 3
        && differing.len() == views.len() - 1
        && views[2..]
            .iter()
            .all(|(_, v)| differences(&views[1].1, v, ttls).is_empty());
    if others_agree {
        let (second, view) = &views[1];
        let rest: Vec<&str> = views[1..].iter().map(|(w, _)| w.as_str()).collect();
        return Err(format!(
            "{first} differs from {}: {} (first = {first}: {}; second = {second}: {})",
            rest.join(" and "),
            differences(view, reference, ttls).join("; "),
            reference.summary(),
            view.summary(),
        ));
    }
    let lines: Vec<String> = differing
        .iter()
        .map(|(who, d)| {
            let view = &views.iter().find(|(w, _)| w == *who).expect("listed").1;
            format!(
                "{who} differs from {first}: {} ({first}: {}; {who}: {})",
                d.join("; "),
                reference.summary(),
                view.summary()
            )
        })
        .collect();
    Err(lines.join(" | "))
}

/// The protocol's rules about the message itself, whoever sent it:
/// EDNS (RFC 6891) and the size of a UDP answer (RFC 1035 §4.2.1).
pub fn wire_rules(ask: &Ask, view: &View) -> Vec<String> {
    let mut broken = Vec::new();
    let limit = match ask.opt {
        Opt::Off => {
            if view.opt.is_some() {
                broken.push(
                    "an OPT record in the answer to a query without one (RFC 6891 §7)".into(),
                );
            }
            512
        }
        Opt::Payload(size) => {
            if view.opt.is_none() {
                broken
                    .push("no OPT record in the answer to an EDNS query (RFC 6891 §6.1.1)".into());
            }
            usize::from(size.max(512))
        }
        Opt::Version(version) => {
            // BADVERS shares its number, 16, with TSIG's BADSIG: compare
            // the number (hickory names 16 BADSIG).
            if u16::from(view.rcode) != u16::from(ResponseCode::BADVERS) {
                broken.push(format!(
                    "rcode {:?} to EDNS version {version}, not BADVERS (RFC 6891 §6.1.3)",
                    view.rcode
                ));
            }
            if view.opt != Some(0) {
                broken.push(format!(
                    "BADVERS needs an OPT of version 0, got {}",
                    opt(view.opt)
                ));
            }
            if !view.answer.is_empty() {
                broken.push("answered an EDNS version it cannot speak".into());
            }
            512
        }
    };
    if let Some(size) = view.size
        && size > limit
    {
        broken.push(format!(
            "a {size}-byte UDP answer where {limit} bytes were the most allowed"
        ));
    }
    broken
}

/// Records of `view` whose TTL is above the largest the name servers gave
/// for the same name and type: a resolver may count a TTL down, never up.
pub fn ttls_above(view: &View, authoritative: &BTreeMap<(String, RecordType), u32>) -> Vec<String> {
    view.answer
        .iter()
        .chain(&view.authority)
        .filter_map(|rr| {
            let most = authoritative.get(&(rr.name.clone(), rr.rtype))?;
            (rr.ttl > *most).then(|| format!("{} TTL {} > {most}", rr, rr.ttl))
        })
        .collect()
}

/// The largest TTL seen for each name and type in name servers' answers.
pub fn note_ttls(view: &View, into: &mut BTreeMap<(String, RecordType), u32>) {
    for rr in view
        .answer
        .iter()
        .chain(&view.authority)
        .chain(&view.additional)
    {
        let ttl = into.entry((rr.name.clone(), rr.rtype)).or_insert(0);
        *ttl = (*ttl).max(rr.ttl);
    }
}

/// The data of an NS or address record, for following a referral.
pub fn ns_name(record: &Record) -> Option<String> {
    match &record.data {
        RData::NS(ns) => Some(ns.0.to_lowercase().to_string()),
        _ => None,
    }
}

/// The rules themselves, on messages made by hand: these run in `make test`.
#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_proto::op::{Edns, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{Name, RData, Record};

    use super::*;
    use crate::ask::DEFAULT_OPT;
    use crate::questions::Question;

    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn ns(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 172800, RData::NS(NS(name(target))))
    }

    fn soa(owner: &str, ttl: u32) -> Record {
        let data = SOA::new(name("ns.zz."), name("admin.zz."), 1, 1800, 900, 604800, 300);
        Record::from_rdata(name(owner), ttl, RData::SOA(data))
    }

    fn response(qname: &str, rtype: RecordType, aa: bool, rcode: ResponseCode) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = aa;
        m.metadata.response_code = rcode;
        m.add_query(Query::query(name(qname), rtype));
        m.set_edns(Edns::new());
        m
    }

    fn view(m: &Message) -> View {
        View::of_message(m, None)
    }

    #[test]
    fn a_referral_must_carry_the_same_glue() {
        let mut with = response("www.shop.zz.", RecordType::A, false, ResponseCode::NoError);
        with.add_authority(ns("shop.zz.", "ns.shop.zz."));
        with.add_additional(a("ns.shop.zz.", 172800, [127, 0, 3, 4]));
        let mut without = with.clone();
        without.additionals.clear();
        assert_eq!(view(&with).kind(), Kind::Referral);
        let found = differences(&view(&with), &view(&without), Ttls::Equal);
        assert!(
            found
                .iter()
                .any(|d| d.starts_with("additional ns.shop.zz. A")),
            "{found:?}"
        );
    }

    #[test]
    fn optional_records_count_only_where_both_sent_them() {
        let mut bare = response("www.zz.", RecordType::A, true, ResponseCode::NoError);
        bare.add_answer(a("www.zz.", 300, [127, 0, 3, 44]));
        let mut more = bare.clone();
        more.add_authority(ns("zz.", "ns.zz."));
        assert!(differences(&view(&bare), &view(&more), Ttls::Equal).is_empty());
        let mut other = bare.clone();
        other.add_authority(ns("zz.", "other.zz."));
        assert!(!differences(&view(&more), &view(&other), Ttls::Equal).is_empty());
    }

    #[test]
    fn a_negative_answer_needs_the_same_soa_and_its_ttl_between_name_servers() {
        let mut one = response("nope.zz.", RecordType::A, true, ResponseCode::NXDomain);
        one.add_authority(soa("zz.", 300));
        let mut other = response("nope.zz.", RecordType::A, true, ResponseCode::NXDomain);
        other.add_authority(soa("zz.", 3600));
        assert!(!differences(&view(&one), &view(&other), Ttls::Equal).is_empty());
        assert!(differences(&view(&one), &view(&other), Ttls::Ignored).is_empty());
    }

    #[test]
    fn an_alias_followed_into_another_zone_is_compared_up_to_the_zone_edge() {
        // NSD, holding both zones, follows the alias and reports NXDOMAIN
        // for its target; Knot DNS stops at the edge with NOERROR.
        let cname = Record::from_rdata(
            name("dangling.shop.test."),
            300,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(name("gone.hosting.zz."))),
        );
        let mut followed = response(
            "dangling.shop.test.",
            RecordType::A,
            true,
            ResponseCode::NXDomain,
        );
        followed.add_answer(cname.clone());
        followed.add_authority(soa("hosting.zz.", 300));
        let mut stopped = response(
            "dangling.shop.test.",
            RecordType::A,
            true,
            ResponseCode::NoError,
        );
        stopped.add_answer(cname);
        assert!(!differences(&view(&followed), &view(&stopped), Ttls::Equal).is_empty());
        let (followed, stopped) = (
            view(&followed).within("shop.test."),
            view(&stopped).within("shop.test."),
        );
        assert!(differences(&followed, &stopped, Ttls::Equal).is_empty());
    }

    #[test]
    fn the_odd_one_out_is_named() {
        let mut right = response("www.zz.", RecordType::A, true, ResponseCode::NoError);
        right.add_answer(a("www.zz.", 300, [127, 0, 3, 44]));
        let mut wrong = right.clone();
        wrong.answers[0].ttl = 299;
        let views = vec![
            ("dnstrail".to_string(), view(&wrong)),
            ("NSD".to_string(), view(&right)),
            ("Knot DNS".to_string(), view(&right)),
        ];
        let verdict = agree(&views, Ttls::Equal).unwrap_err();
        assert!(
            verdict.starts_with("dnstrail differs from NSD and Knot DNS"),
            "{verdict}"
        );
    }

    #[test]
    fn the_wire_rules_of_edns() {
        let question = Question::parse("big.zz.", RecordType::TXT);
        let without = crate::ask::Ask::norec(&question, dnstrail::exchange::Transport::Udp)
            .with_opt(Opt::Off);
        let answer = response("big.zz.", RecordType::TXT, true, ResponseCode::NoError);
        let broken = wire_rules(&without, &View::of_message(&answer, Some(600)));
        assert_eq!(broken.len(), 2, "{broken:?}");
        let with = crate::ask::Ask::norec(&question, dnstrail::exchange::Transport::Udp);
        assert_eq!(with.opt, DEFAULT_OPT);
        assert!(wire_rules(&with, &View::of_message(&answer, Some(600))).is_empty());
    }
}
