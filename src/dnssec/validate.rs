//! The checks a validating resolver makes (RFC 4035 §5), as pure functions
//! of records: an RRset against its RRSIGs and the signer's DNSKEYs, a
//! DNSKEY RRset against a DS set or an anchor, and denials of existence
//! against NSEC (RFC 4035 §5.4) or NSEC3 (RFC 5155 §8) records. The walk
//! (`resolver::validation`) fetches what they need and tells the results.
//!
//! hickory-proto verifies the signatures (`Verifier::verify_rrsig`, the
//! data to be signed built by its `TBS`) and hashes DNSKEYs and NSEC3
//! names; what is here is the bookkeeping around it: which signature, which
//! key, which time, which name covers which.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, NSEC, NSEC3, RRSIG};
use hickory_proto::dnssec::{Nsec3HashAlgorithm, Verifier};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::serial_lt;

/// Why something is bogus, in the words of RFC 8914.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bogus {
    /// The EDE INFO-CODE: 6 DNSSEC Bogus, 7 Signature Expired, 8 Signature
    /// Not Yet Valid, 9 DNSKEY Missing, 10 RRSIGs Missing, 12 NSEC Missing.
    pub code: u16,
    pub reason: String,
}

pub const DNSSEC_BOGUS: u16 = 6;
pub const SIGNATURE_EXPIRED: u16 = 7;
pub const SIGNATURE_NOT_YET_VALID: u16 = 8;
pub const DNSKEY_MISSING: u16 = 9;
pub const RRSIGS_MISSING: u16 = 10;
pub const NSEC_MISSING: u16 = 12;

impl Bogus {
    pub fn new(code: u16, reason: impl Into<String>) -> Bogus {
        Bogus {
            code,
            reason: reason.into(),
        }
    }
}

/// The RRSIG data of a record, if it is one.
pub fn rrsig(record: &Record) -> Option<&RRSIG> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
        _ => None,
    }
}

pub fn dnskey(record: &Record) -> Option<&DNSKEY> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
        _ => None,
    }
}

pub fn ds(record: &Record) -> Option<&DS> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
        _ => None,
    }
}

/// The RRSIGs among `records` that cover `owner`/`rtype`.
pub fn covering_sigs<'a>(
    records: &'a [Record],
    owner: &Name,
    rtype: RecordType,
) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.name.eq_ignore_root(owner))
        .filter(|r| rrsig(r).is_some_and(|s| s.input().type_covered == rtype))
        .collect()
}

/// A verified RRset: the key that signed it, the wildcard it was expanded
/// from (if any), and the longest its records may be kept.
#[derive(Debug, Clone)]
pub struct Verified {
    pub key_tag: u16,
    pub wildcard: Option<Name>,
    pub ttl: u32,
}

/// Check `rrset` (one owner, one type) against `sigs` with the DNSKEYs of
/// `signer`, at `now` (Unix seconds). One good signature is enough; when
/// none is, the most telling reason is returned.
pub fn verify_rrset(
    rrset: &[Record],
    sigs: &[&Record],
    signer: &Name,
    keys: &[DNSKEY],
    now: u32,
) -> Result<Verified, Bogus> {
    let Some(first) = rrset.first() else {
        return Err(Bogus::new(DNSSEC_BOGUS, "an empty RRset"));
    };
    let what = format!("{} {}", first.name, first.record_type());
    let mut worst: Option<Bogus> = None;
    let mut note = |bogus: Bogus| {
        // A signature that only failed in time says more than one whose
        // key is unknown; either says more than "no signature".
        let rank = |code: u16| match code {
            SIGNATURE_EXPIRED | SIGNATURE_NOT_YET_VALID => 3,
            DNSSEC_BOGUS => 2,
            DNSKEY_MISSING => 1,
            _ => 0,
        };
        if worst
            .as_ref()
            .is_none_or(|w| rank(bogus.code) > rank(w.code))
        {
            worst = Some(bogus);
        }
    };
    let mut candidates = 0;
    for record in sigs {
        let Some(sig) = rrsig(record) else { continue };
        let input = sig.input();
        if input.type_covered != first.record_type() || !input.signer_name.eq_ignore_root(signer) {
            continue;
        }
        // The signer must be the owner or above it (RFC 4035 §5.3.1).
        if !input.signer_name.zone_of(&first.name) || input.num_labels > first.name.num_labels() {
            continue;
        }
        candidates += 1;
        let expiration = input.sig_expiration.get();
        let inception = input.sig_inception.get();
        if serial_lt(expiration, now) {
            note(Bogus::new(
                SIGNATURE_EXPIRED,
                format!(
                    "the RRSIG of {what} (key {}) expired at {expiration}, before now ({now})",
                    input.key_tag
                ),
            ));
            continue;
        }
        if serial_lt(now, inception) {
            note(Bogus::new(
                SIGNATURE_NOT_YET_VALID,
                format!(
                    "the RRSIG of {what} (key {}) is valid only from {inception}, after now ({now})",
                    input.key_tag
                ),
            ));
            continue;
        }
        let matching: Vec<&DNSKEY> = keys
            .iter()
            .filter(|k| {
                k.zone_key()
                    && !k.revoke()
                    && k.public_key().algorithm_is(input.algorithm)
                    && k.calculate_key_tag().ok() == Some(input.key_tag)
            })
            .collect();
        if matching.is_empty() {
            note(Bogus::new(
                DNSKEY_MISSING,
                format!(
                    "no DNSKEY of {signer} has tag {} to check the RRSIG of {what}",
                    input.key_tag
                ),
            ));
            continue;
        }
        for key in matching {
            if key
                .verify_rrsig(&first.name, DNSClass::IN, sig, rrset.iter())
                .is_ok()
            {
                let wildcard = (input.num_labels < first.name.num_labels()).then(|| {
                    let base = first.name.trim_to(usize::from(input.num_labels));
                    base.prepend_label("*").unwrap_or(base)
                });
                let left = expiration.wrapping_sub(now);
                let ttl = rrset
                    .iter()
                    .map(|r| r.ttl)
                    .min()
                    .unwrap_or(0)
                    .min(input.original_ttl)
                    .min(left);
                return Ok(Verified {
                    key_tag: input.key_tag,
                    wildcard,
                    ttl,
                });
            }
        }
        note(Bogus::new(
            DNSSEC_BOGUS,
            format!(
                "the RRSIG of {what} does not verify with {signer}'s key {}",
                input.key_tag
            ),
        ));
    }
    if candidates == 0 {
        return Err(Bogus::new(
            RRSIGS_MISSING,
            format!("{what} came without an RRSIG by {signer}"),
        ));
    }
    Err(worst.unwrap_or_else(|| Bogus::new(DNSSEC_BOGUS, format!("{what} does not verify"))))
}

/// Small helper: whether a public key is of `algorithm`.
trait AlgorithmIs {
    fn algorithm_is(&self, algorithm: hickory_proto::dnssec::Algorithm) -> bool;
}

impl AlgorithmIs for hickory_proto::dnssec::PublicKeyBuf {
    fn algorithm_is(&self, algorithm: hickory_proto::dnssec::Algorithm) -> bool {
        use hickory_proto::dnssec::PublicKey;
        self.algorithm() == algorithm
    }
}

/// The keys of a DNSKEY RRset at `zone` that a DS of `ds` names.
pub fn keys_named_by<'k>(zone: &Name, keys: &'k [DNSKEY], ds: &[DS]) -> Vec<&'k DNSKEY> {
    keys.iter()
        .filter(|k| {
            let tag = k.calculate_key_tag().ok();
            ds.iter()
                .any(|d| Some(d.key_tag()) == tag && d.covers(zone, k).unwrap_or(false))
        })
        .collect()
}

/// Whether any DS can be used at all: a digest type and an algorithm we
/// support (RFC 4035 §5.2: otherwise the zone is treated as unsigned).
pub fn any_usable_ds(ds: &[DS]) -> bool {
    ds.iter()
        .any(|d| d.digest_type().is_supported() && d.algorithm().is_supported())
}

/// The NSEC records of a response, with their owners.
pub fn nsecs(records: &[Record]) -> Vec<(Name, NSEC)> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(nsec)) => Some((r.name.clone(), nsec.clone())),
            _ => None,
        })
        .collect()
}

pub fn nsec3s(records: &[Record]) -> Vec<(Name, NSEC3)> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC3(nsec3)) => Some((r.name.clone(), nsec3.clone())),
            _ => None,
        })
        .collect()
}

/// Whether the NSEC at `owner` (pointing at `next`) spans `name`: owner <
/// name < next in canonical order, the last NSEC of a zone spanning to its
/// end.
fn spans(owner: &Name, next: &Name, name: &Name) -> bool {
    if owner < next {
        owner < name && name < next
    } else {
        // The last NSEC: its next name is the apex.
        owner < name && next.zone_of(name)
    }
}

/// The deepest name that is an ancestor of (or equal to) both.
fn common_ancestor(a: &Name, b: &Name) -> Name {
    let mut ancestor = a.clone();
    while !ancestor.zone_of(b) {
        ancestor = ancestor.base_name();
    }
    ancestor
}

/// A denial, proven: which proof, in words.
pub type Proven = Result<String, Bogus>;

fn missing(text: String) -> Bogus {
    Bogus::new(NSEC_MISSING, text)
}

/// NXDOMAIN for `qname` in `zone`, proven by NSEC: an NSEC spanning the
/// name, and one spanning the wildcard at its closest encloser
/// (RFC 4035 §5.4).
pub fn nsec_nxdomain(zone: &Name, qname: &Name, nsecs: &[(Name, NSEC)]) -> Proven {
    let Some((owner, nsec)) = nsecs.iter().find(|(owner, nsec)| {
        spans(owner, nsec.next_domain_name(), qname)
            // An NSEC from above a zone cut proves nothing below it (RFC 6840 §4.1).
            && !(nsec.is_ancestor_delegation() && owner.zone_of(qname))
    }) else {
        return Err(missing(format!(
            "no NSEC of {zone} proves that {qname} does not exist"
        )));
    };
    let encloser = {
        let a = common_ancestor(qname, owner);
        let b = common_ancestor(qname, nsec.next_domain_name());
        if a.num_labels() >= b.num_labels() {
            a
        } else {
            b
        }
    };
    let wildcard = encloser
        .prepend_label("*")
        .map_err(|e| missing(e.to_string()))?;
    if nsecs
        .iter()
        .any(|(o, n)| spans(o, n.next_domain_name(), &wildcard))
    {
        return Ok(format!(
            "NSEC {owner} → {} spans {qname}, and no wildcard {wildcard} exists",
            nsec.next_domain_name()
        ));
    }
    Err(missing(format!(
        "no NSEC of {zone} proves that the wildcard {wildcard} does not exist"
    )))
}

/// NODATA for `qname`/`qtype`, proven by NSEC: one at the name without the
/// type (or CNAME), or one spanning an empty non-terminal, or a wildcard's
/// (RFC 4035 §5.4, RFC 6840 §4.1).
pub fn nsec_nodata(zone: &Name, qname: &Name, qtype: RecordType, nsecs: &[(Name, NSEC)]) -> Proven {
    if let Some((owner, nsec)) = nsecs.iter().find(|(owner, _)| owner.eq_ignore_root(qname)) {
        let types = nsec.type_set();
        if types.contains(qtype) || types.contains(RecordType::CNAME) {
            return Err(Bogus::new(
                DNSSEC_BOGUS,
                format!("the NSEC at {owner} says {qtype} exists there"),
            ));
        }
        // The parent's NSEC at a cut speaks only of the DS.
        if nsec.is_ancestor_delegation() && qtype != RecordType::DS {
            return Err(missing(format!(
                "only the parent's NSEC at the cut {owner}"
            )));
        }
        return Ok(format!("the NSEC at {owner} lists no {qtype}"));
    }
    // An empty non-terminal: an NSEC spanning it whose next name is below it.
    if let Some((owner, nsec)) = nsecs.iter().find(|(owner, nsec)| {
        spans(owner, nsec.next_domain_name(), qname) && qname.zone_of(nsec.next_domain_name())
    }) {
        return Ok(format!(
            "{qname} is an empty non-terminal: NSEC {owner} → {}",
            nsec.next_domain_name()
        ));
    }
    // A wildcard without the type.
    if let Some((owner, nsec)) = nsecs.iter().find(|(owner, _)| owner.is_wildcard())
        && owner.base_name().zone_of(qname)
        && !nsec.type_set().contains(qtype)
        && nsecs
            .iter()
            .any(|(o, n)| spans(o, n.next_domain_name(), qname))
    {
        return Ok(format!("the wildcard {owner} has no {qtype}"));
    }
    Err(missing(format!(
        "no NSEC of {zone} proves that {qname} has no {qtype}"
    )))
}

/// Whether an NSEC proves `name` does not exist, for a wildcard answer
/// (RFC 4035 §5.3.4).
pub fn nsec_no_exact_match(name: &Name, nsecs: &[(Name, NSEC)]) -> bool {
    nsecs
        .iter()
        .any(|(o, n)| spans(o, n.next_domain_name(), name))
}

/// An unsigned delegation, proven: the NSEC at the cut has NS and no DS
/// (RFC 4035 §5.2).
pub fn nsec_no_ds(cut: &Name, nsecs: &[(Name, NSEC)]) -> bool {
    nsecs.iter().any(|(owner, nsec)| {
        owner.eq_ignore_root(cut)
            && nsec.type_set().contains(RecordType::NS)
            && !nsec.type_set().contains(RecordType::DS)
            && !nsec.type_set().contains(RecordType::SOA)
    })
}

/// NSEC3 records above this many iterations are not worth the work; the
/// answer is taken as insecure (RFC 9276 §3.2).
pub const MAX_NSEC3_ITERATIONS: u16 = 150;

/// One NSEC3 record, its owner's hash decoded.
struct Hashed<'a> {
    owner_hash: Vec<u8>,
    nsec3: &'a NSEC3,
}

fn hashed(nsec3s: &[(Name, NSEC3)]) -> Vec<Hashed<'_>> {
    nsec3s
        .iter()
        .filter_map(|(owner, nsec3)| {
            let label = owner.iter().next()?;
            let owner_hash = data_encoding::BASE32_DNSSEC.decode(label).ok()?;
            Some(Hashed { owner_hash, nsec3 })
        })
        .collect()
}

fn hash_of(name: &Name, nsec3: &NSEC3) -> Option<Vec<u8>> {
    Nsec3HashAlgorithm::SHA1
        .hash(nsec3.salt(), name, nsec3.iterations())
        .ok()
        .map(|d| d.as_ref().to_vec())
}

fn matches<'a>(set: &'a [Hashed<'a>], name: &Name) -> Option<&'a Hashed<'a>> {
    set.iter()
        .find(|h| hash_of(name, h.nsec3).is_some_and(|hash| hash == h.owner_hash))
}

fn covers<'a>(set: &'a [Hashed<'a>], name: &Name) -> Option<&'a Hashed<'a>> {
    set.iter().find(|h| {
        let Some(hash) = hash_of(name, h.nsec3) else {
            return false;
        };
        let next = h.nsec3.next_hashed_owner_name();
        if h.owner_hash.as_slice() < next {
            h.owner_hash < hash && hash.as_slice() < next
        } else {
            h.owner_hash < hash || hash.as_slice() < next
        }
    })
}

/// The closest encloser of `qname` an NSEC3 set proves (RFC 5155 §8.3):
/// the encloser, and the NSEC3 covering the next closer name.
fn closest_encloser<'a>(
    zone: &Name,
    qname: &Name,
    set: &'a [Hashed<'a>],
) -> Option<(Name, &'a Hashed<'a>)> {
    let mut next_closer = qname.clone();
    let mut encloser = qname.base_name();
    loop {
        if matches(set, &encloser).is_some() {
            return covers(set, &next_closer).map(|c| (encloser, c));
        }
        if encloser.num_labels() <= zone.num_labels() {
            return None;
        }
        next_closer = encloser.clone();
        encloser = encloser.base_name();
    }
}

/// Whether NSEC3 proofs here may be skipped as too costly (RFC 9276).
pub fn nsec3_too_costly(nsec3s: &[(Name, NSEC3)]) -> bool {
    nsec3s
        .iter()
        .any(|(_, n)| n.iterations() > MAX_NSEC3_ITERATIONS)
}

/// NXDOMAIN proven by NSEC3: closest encloser, next closer covered, the
/// wildcard covered (RFC 5155 §8.4).
pub fn nsec3_nxdomain(zone: &Name, qname: &Name, nsec3s: &[(Name, NSEC3)]) -> Proven {
    let set = hashed(nsec3s);
    let Some((encloser, _)) = closest_encloser(zone, qname, &set) else {
        return Err(missing(format!(
            "no NSEC3 of {zone} proves a closest encloser of {qname}"
        )));
    };
    let wildcard = encloser
        .prepend_label("*")
        .map_err(|e| missing(e.to_string()))?;
    if covers(&set, &wildcard).is_none() {
        return Err(missing(format!(
            "no NSEC3 of {zone} proves that {wildcard} does not exist"
        )));
    }
    Ok(format!(
        "NSEC3: {encloser} is the closest encloser, and neither {qname} nor {wildcard} exists"
    ))
}

/// NODATA proven by NSEC3 (RFC 5155 §8.5–8.7); `Ok(None)` for a DS
/// denied by an opt-out span: an unsigned delegation.
pub fn nsec3_nodata(
    zone: &Name,
    qname: &Name,
    qtype: RecordType,
    nsec3s: &[(Name, NSEC3)],
) -> Proven {
    let set = hashed(nsec3s);
    if let Some(hit) = matches(&set, qname) {
        let types = hit.nsec3.type_set();
        if types.contains(qtype) || types.contains(RecordType::CNAME) {
            return Err(Bogus::new(
                DNSSEC_BOGUS,
                format!("the NSEC3 of {qname} says {qtype} exists"),
            ));
        }
        return Ok(format!("the NSEC3 of {qname} lists no {qtype}"));
    }
    if let Some((encloser, next)) = closest_encloser(zone, qname, &set) {
        if qtype == RecordType::DS && next.nsec3.opt_out() {
            return Ok(format!(
                "an opt-out NSEC3 spans {qname}: an unsigned delegation"
            ));
        }
        if let Ok(wildcard) = encloser.prepend_label("*")
            && let Some(hit) = matches(&set, &wildcard)
            && !hit.nsec3.type_set().contains(qtype)
        {
            return Ok(format!("the wildcard {wildcard} has no {qtype} (NSEC3)"));
        }
    }
    Err(missing(format!(
        "no NSEC3 of {zone} proves that {qname} has no {qtype}"
    )))
}

/// An unsigned delegation proven by NSEC3: the cut's NSEC3 has NS and no
/// DS, or an opt-out span covers it.
pub fn nsec3_no_ds(zone: &Name, cut: &Name, nsec3s: &[(Name, NSEC3)]) -> bool {
    let set = hashed(nsec3s);
    if let Some(hit) = matches(&set, cut) {
        let types = hit.nsec3.type_set();
        return types.contains(RecordType::NS) && !types.contains(RecordType::DS);
    }
    closest_encloser(zone, cut, &set).is_some_and(|(_, next)| next.nsec3.opt_out())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn n(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    fn nsec(owner: &str, next: &str, types: &[RecordType]) -> (Name, NSEC) {
        (n(owner), NSEC::new(n(next), types.iter().copied()))
    }

    #[test]
    fn nsec_proves_what_it_spans_and_nothing_else() {
        use RecordType::*;
        let zone = n("example.");
        let chain = [
            nsec("example.", "a.example.", &[SOA, NS, RRSIG, NSEC]),
            nsec("a.example.", "x.y.example.", &[A, RRSIG, NSEC]),
            nsec("x.y.example.", "example.", &[A, RRSIG, NSEC]),
        ];
        assert!(nsec_nxdomain(&zone, &n("b.example."), &chain).is_ok());
        assert!(nsec_nxdomain(&zone, &n("a.example."), &chain).is_err());
        assert!(nsec_nodata(&zone, &n("a.example."), MX, &chain).is_ok());
        assert!(nsec_nodata(&zone, &n("a.example."), A, &chain).is_err());
        // y.example. exists only because x.y.example. does.
        assert!(nsec_nodata(&zone, &n("y.example."), A, &chain).is_ok());
        assert!(nsec_nxdomain(&zone, &n("z.example."), &chain).is_ok());
    }
}
