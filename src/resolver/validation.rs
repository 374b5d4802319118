//! Validation in the walk: the chain of trust from the trust anchor down
//! to each answer (RFC 4035 §5), fetched, checked and told as it goes.
//!
//! ```text
//!  answer from zone Z ──► keys of Z? ── cached, secure ──► check the RRSIGs ──► secure
//!                            │ no                                  └─ fail ──► bogus: SERVFAIL + EDE
//!                            ▼
//!        Z is the anchor's zone: Z DNSKEY, checked against the anchor
//!        else: Z DS from Z's parent P (an answer of P's, so checked with P's
//!              keys, the same way, up to the anchor), then Z DNSKEY against it
//!              · no DS, proven by P's NSEC: Z is insecure, and all below it
//! ```
//!
//! DNSKEY and DS RRsets are fetched and cached like any other question
//! (by their TTLs); each record carries what validation found in hickory's
//! `Proof` field, so a cache hit knows whether it was checked. Bogus data is
//! never cached as an answer: the failure is (RFC 9520), with its reason.
//! A client's CD=1 turns the checks off for its question, not the asking
//! for signatures: the records it gets come with their RRSIGs, unchecked.

use std::time::SystemTime;

use hickory_proto::dnssec::Proof;
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{LowerName, Name, Record, RecordType};

use super::cache::Negative;
use super::failure::{Failure, FailureKind};
use super::walk::{BoxFuture, Link, Walk};
use crate::dnssec::anchor::Anchor;
use crate::dnssec::validate::{self, Bogus};
use crate::dnssec::{Security, unix_time};
use crate::trace::{ChainStep, TraceEvent};

/// The DNSSEC records of a response, from inside the zone asked: RRSIG,
/// NSEC, NSEC3 and DS, from the answer and authority sections.
pub type Signed = Vec<Record>;

/// What the keys of a zone are worth.
enum Trust {
    /// Checked all the way up: these keys vouch for the zone's data.
    Secure(Vec<DNSKEY>),
    /// Provably unsigned (or under no anchor): its data is taken as it is.
    Insecure,
    Bogus(Failure),
}

/// What a zone's parent says of its DS.
enum DsFound {
    Secure(Vec<DS>),
    Insecure,
    Bogus(Failure),
}

/// The DNSSEC records of `response` inside `zone`.
pub fn signed_records(response: &Message, zone: &Name) -> Signed {
    let bailiwick = LowerName::new(zone);
    response
        .answers
        .iter()
        .chain(&response.authorities)
        .filter(|r| {
            matches!(
                r.record_type(),
                RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3 | RecordType::DS
            ) && bailiwick.zone_of(&LowerName::new(&r.name))
        })
        .cloned()
        .collect()
}

fn is_dnssec_record(record: &Record) -> bool {
    matches!(
        record.record_type(),
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
    )
}

/// Whether a client may be told an answer is authentic (AD=1): every
/// record of the answer, and of a denial its SOA and proof, validated as
/// secure.
pub fn authentic(rcode: ResponseCode, answers: &[Record], authorities: &[Record]) -> bool {
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return false;
    }
    let mut relevant = answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .chain(authorities.iter().filter(|r| {
            matches!(
                r.record_type(),
                RecordType::SOA | RecordType::NSEC | RecordType::NSEC3
            )
        }))
        .peekable();
    relevant.peek().is_some() && relevant.all(|r| r.proof == Proof::Secure)
}

/// Records a client that did not ask for DNSSEC (DO=0) should not see:
/// RRSIGs and NSECs it did not ask for (RFC 4035 §3.2.1).
pub fn strip_for_do0(records: &mut Vec<Record>, qtype: RecordType) {
    if qtype == RecordType::ANY {
        return;
    }
    records.retain(|r| !is_dnssec_record(r) || r.record_type() == qtype);
}

fn failure(bogus: &Bogus) -> Failure {
    Failure::new(
        FailureKind::from_dnssec_code(bogus.code),
        format!("DNSSEC: {}", bogus.reason),
    )
}

fn mark(records: &mut [Record], proof: Proof) {
    for record in records {
        record.proof = proof;
    }
}

fn tags(keys: &[&DNSKEY]) -> Vec<u16> {
    keys.iter()
        .filter_map(|k| k.calculate_key_tag().ok())
        .collect()
}

fn key_names(keys: &[DNSKEY]) -> String {
    keys.iter()
        .map(|k| {
            let tag = k.calculate_key_tag().unwrap_or_default();
            if k.secure_entry_point() {
                format!("{tag} (KSK)")
            } else {
                format!("{tag}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A zone as the story names it.
fn zone_name(zone: &Name) -> String {
    if zone.is_root() {
        "the root".into()
    } else {
        zone.to_string()
    }
}

impl Walk<'_> {
    /// Whether this walk checks what it gets: a trust anchor is set and
    /// the client did not set CD.
    pub(super) fn validating(&self) -> bool {
        self.config.trust_anchors.is_some() && !self.checking_disabled
    }

    /// Now, as RRSIG times count it: the resolver's clock, which tests and
    /// the demo move forward, over the wall clock.
    fn unix_now(&self) -> u32 {
        unix_time(SystemTime::now()).wrapping_add(self.cache.clock().skew().as_secs() as u32)
    }

    #[allow(clippy::too_many_arguments)]
    fn tell(
        &mut self,
        step: ChainStep,
        zone: &Name,
        name: &Name,
        rtype: Option<RecordType>,
        key_tags: Vec<u16>,
        security: Security,
        detail: String,
        ede: Option<u16>,
    ) {
        self.trail.emit(TraceEvent::DnssecChecked {
            step,
            zone: zone.to_string(),
            name: name.to_string(),
            rtype,
            key_tags,
            security,
            detail,
            ede,
        });
    }

    /// A cached RRset as a validating walk may use it: as it is when it
    /// was checked (or need not be), checked now when it was cached
    /// unchecked; `None` when it does not check out, to be asked afresh.
    pub(super) async fn checked_hit(&mut self, mut records: Vec<Record>) -> Option<Vec<Record>> {
        let first = records.first()?.clone();
        let unchecked = records
            .iter()
            .any(|r| r.record_type() != RecordType::RRSIG && r.proof == Proof::Indeterminate);
        // A zone's own DNSKEY RRset is checked by the chain, not here.
        if !self.validating() || !unchecked || first.record_type() == RecordType::DNSKEY {
            return Some(records);
        }
        let signer = records
            .iter()
            .filter_map(validate::rrsig)
            .map(|s| s.input().signer_name.clone())
            .next()?;
        let mut rrsets = vec![records.clone()];
        rrsets[0].retain(|r| r.record_type() != RecordType::RRSIG);
        let sigs: Vec<Record> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .cloned()
            .collect();
        rrsets[0].extend(sigs);
        if self
            .check_rrsets(&signer, &mut rrsets, &sigs_of(&records))
            .await
            .is_err()
        {
            return None;
        }
        records = rrsets.remove(0);
        self.cache.put_answer(records.clone());
        Some(records)
    }

    /// Whether a cached denial may be used: it was checked (or need not be).
    pub(super) fn usable_denial(&self, negative: &Negative) -> bool {
        !self.validating()
            || negative
                .soa
                .as_ref()
                .is_some_and(|soa| soa.proof != Proof::Indeterminate)
    }

    /// A referral's DS RRset (with its RRSIGs), kept unchecked: the child's
    /// chain of trust needs it next, and it is checked when it is used.
    pub(super) fn keep_referral_ds(&mut self, child: &Name, signed: &Signed) {
        if self.config.trust_anchors.is_none() {
            return;
        }
        let ds: Vec<Record> = signed
            .iter()
            .filter(|r| r.record_type() == RecordType::DS && r.name.eq_ignore_root(child))
            .cloned()
            .collect();
        if ds.is_empty() {
            return;
        }
        let mut records = ds;
        records.extend(
            validate::covering_sigs(signed, child, RecordType::DS)
                .into_iter()
                .cloned(),
        );
        self.cache.put_answer(records);
    }

    /// Check the RRsets of an answer from a server of `zone`: their
    /// RRSIGs are attached (for clients that want them) and, when
    /// validating, checked with the zone's keys.
    pub(super) async fn validate_answer(
        &mut self,
        zone: &Name,
        rrsets: &mut [Vec<Record>],
        signed: &Signed,
    ) -> Result<(), Failure> {
        if self.config.trust_anchors.is_none() {
            return Ok(());
        }
        for rrset in rrsets.iter_mut() {
            let (owner, rtype) = (rrset[0].name.clone(), rrset[0].record_type());
            rrset.extend(
                validate::covering_sigs(signed, &owner, rtype)
                    .into_iter()
                    .cloned(),
            );
        }
        if !self.validating() {
            return Ok(());
        }
        // The zone's own DNSKEY RRset is what its chain of trust checks.
        if rrsets.len() == 1
            && rrsets[0][0].record_type() == RecordType::DNSKEY
            && rrsets[0][0].name.eq_ignore_root(zone)
        {
            return Ok(());
        }
        self.check_rrsets(zone, rrsets, signed).await
    }

    /// Check RRsets (each with its RRSIGs) signed by `zone`, marking each
    /// record with the verdict.
    fn check_rrsets<'a>(
        &'a mut self,
        zone: &'a Name,
        rrsets: &'a mut [Vec<Record>],
        signed: &'a [Record],
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let keys = match self.zone_trust(zone).await {
                Trust::Insecure => {
                    for rrset in rrsets.iter_mut() {
                        mark(rrset, Proof::Insecure);
                    }
                    return Ok(());
                }
                Trust::Bogus(failure) => return Err(failure),
                Trust::Secure(keys) => keys,
            };
            let now = self.unix_now();
            for i in 0..rrsets.len() {
                let (data, sigs): (Vec<Record>, Vec<Record>) = rrsets[i]
                    .iter()
                    .cloned()
                    .partition(|r| r.record_type() != RecordType::RRSIG);
                let Some(first) = data.first().cloned() else {
                    continue;
                };
                // The CNAME a DNAME implies is made here, not signed: it is
                // as good as the DNAME (RFC 6672 §5.3.1).
                if first.record_type() == RecordType::CNAME
                    && sigs.is_empty()
                    && i > 0
                    && rrsets[i - 1][0].record_type() == RecordType::DNAME
                {
                    let proof = rrsets[i - 1][0].proof;
                    mark(&mut rrsets[i], proof);
                    continue;
                }
                let sig_refs: Vec<&Record> = sigs.iter().collect();
                match validate::verify_rrset(&data, &sig_refs, zone, &keys, now) {
                    Ok(verified) => {
                        if let Some(wildcard) = &verified.wildcard {
                            let nsecs = validate::nsecs(signed);
                            let nsec3s = validate::nsec3s(signed);
                            if !validate::nsec_no_exact_match(&first.name, &nsecs)
                                && validate::nsec3_nxdomain(zone, &first.name, &nsec3s).is_err()
                            {
                                let bogus = Bogus::new(
                                    validate::NSEC_MISSING,
                                    format!(
                                        "{} was made from the wildcard {wildcard}, with no NSEC proving {} does not exist",
                                        first.name, first.name
                                    ),
                                );
                                self.tell_rrset(zone, &first, verified.key_tag, Err(&bogus));
                                return Err(failure(&bogus));
                            }
                        }
                        for record in rrsets[i].iter_mut() {
                            record.proof = Proof::Secure;
                            record.ttl = record.ttl.min(verified.ttl);
                        }
                        self.tell_rrset(zone, &first, verified.key_tag, Ok(()));
                    }
                    Err(bogus) => {
                        let tag = sigs
                            .iter()
                            .filter_map(validate::rrsig)
                            .map(|s| s.input().key_tag)
                            .next()
                            .unwrap_or_default();
                        self.tell_rrset(zone, &first, tag, Err(&bogus));
                        return Err(failure(&bogus));
                    }
                }
            }
            Ok(())
        })
    }

    fn tell_rrset(&mut self, zone: &Name, first: &Record, tag: u16, verdict: Result<(), &Bogus>) {
        let rtype = first.record_type();
        let step = if rtype == RecordType::DS {
            ChainStep::Ds
        } else {
            ChainStep::Rrset
        };
        let (security, detail, ede) = match verdict {
            Ok(()) if rtype == RecordType::DS => (
                Security::Secure,
                format!(
                    "{}'s DS is signed by {} (key {tag}): the parent vouches for its key",
                    first.name,
                    zone_name(zone)
                ),
                None,
            ),
            Ok(()) => (
                Security::Secure,
                format!(
                    "{} {rtype}: its RRSIG by {} key {tag} checks out",
                    first.name,
                    zone_name(zone)
                ),
                None,
            ),
            Err(bogus) => (Security::Bogus, bogus.reason.clone(), Some(bogus.code)),
        };
        self.tell(
            step,
            zone,
            &first.name,
            Some(rtype),
            vec![tag],
            security,
            detail,
            ede,
        );
    }

    /// Check a denial from a server of `zone` for `name`/`rtype`: its SOA
    /// and NSEC (or NSEC3) records signed, and proving what it says.
    /// Returns the proof records (marked), to pass on and cache with it.
    pub(super) async fn validate_denial(
        &mut self,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
        nxdomain: bool,
        soa: &mut Option<Record>,
        signed: &Signed,
    ) -> Result<Vec<Record>, Failure> {
        if self.config.trust_anchors.is_none() {
            return Ok(Vec::new());
        }
        let mut proof: Vec<Record> = signed
            .iter()
            .filter(|r| {
                matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3)
                    || validate::rrsig(r).is_some_and(|s| {
                        matches!(
                            s.input().type_covered,
                            RecordType::NSEC | RecordType::NSEC3 | RecordType::SOA
                        )
                    })
            })
            .cloned()
            .collect();
        if !self.validating() {
            return Ok(proof);
        }
        let what = if nxdomain {
            format!("{name} does not exist (NXDOMAIN)")
        } else {
            format!("{name} has no {rtype} (NODATA)")
        };
        let keys = match self.zone_trust(zone).await {
            Trust::Insecure => {
                mark(&mut proof, Proof::Insecure);
                if let Some(soa) = soa {
                    soa.proof = Proof::Insecure;
                }
                return Ok(proof);
            }
            Trust::Bogus(failure) => return Err(failure),
            Trust::Secure(keys) => keys,
        };
        let now = self.unix_now();
        let denied = |bogus: Bogus| bogus;
        let result: Result<String, Bogus> = (|| {
            let soa_record = soa.as_ref().ok_or_else(|| {
                Bogus::new(
                    validate::NSEC_MISSING,
                    format!("{what}, but no SOA came with it"),
                )
            })?;
            let soa_sigs = validate::covering_sigs(signed, &soa_record.name, RecordType::SOA);
            validate::verify_rrset(
                std::slice::from_ref(soa_record),
                &soa_sigs,
                zone,
                &keys,
                now,
            )
            .map_err(denied)?;
            for rtype in [RecordType::NSEC, RecordType::NSEC3] {
                let owners: Vec<Name> = signed
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.name.clone())
                    .collect();
                for owner in owners {
                    let rrset: Vec<Record> = signed
                        .iter()
                        .filter(|r| r.record_type() == rtype && r.name.eq_ignore_root(&owner))
                        .cloned()
                        .collect();
                    let sigs = validate::covering_sigs(signed, &owner, rtype);
                    validate::verify_rrset(&rrset, &sigs, zone, &keys, now)?;
                }
            }
            let nsecs = validate::nsecs(signed);
            let nsec3s = validate::nsec3s(signed);
            if !nsecs.is_empty() {
                if nxdomain {
                    validate::nsec_nxdomain(zone, name, &nsecs)
                } else {
                    validate::nsec_nodata(zone, name, rtype, &nsecs)
                }
            } else if !nsec3s.is_empty() {
                if validate::nsec3_too_costly(&nsec3s) {
                    return Ok(
                        "NSEC3 with too many iterations (RFC 9276): taken as insecure".into(),
                    );
                }
                if nxdomain {
                    validate::nsec3_nxdomain(zone, name, &nsec3s)
                } else {
                    validate::nsec3_nodata(zone, name, rtype, &nsec3s)
                }
            } else {
                Err(Bogus::new(
                    validate::NSEC_MISSING,
                    format!("{what}, but no NSEC or NSEC3 came to prove it"),
                ))
            }
        })();
        match result {
            Ok(how) => {
                let insecure = how.contains("insecure") || how.contains("opt-out");
                let proof_kind = if insecure {
                    Proof::Insecure
                } else {
                    Proof::Secure
                };
                mark(&mut proof, proof_kind);
                if let Some(soa) = soa {
                    soa.proof = proof_kind;
                }
                self.tell(
                    ChainStep::Denial,
                    zone,
                    name,
                    Some(rtype),
                    Vec::new(),
                    if insecure {
                        Security::Insecure
                    } else {
                        Security::Secure
                    },
                    format!("{what}: {how}"),
                    None,
                );
                Ok(proof)
            }
            Err(bogus) => {
                self.tell(
                    ChainStep::Denial,
                    zone,
                    name,
                    Some(rtype),
                    Vec::new(),
                    Security::Bogus,
                    format!("{what}? {}", bogus.reason),
                    Some(bogus.code),
                );
                Err(failure(&bogus))
            }
        }
    }

    /// The keys of `zone`, checked up the chain of trust.
    fn zone_trust<'a>(&'a mut self, zone: &'a Name) -> BoxFuture<'a, Trust> {
        Box::pin(async move {
            let Some(anchors) = self.config.trust_anchors.clone() else {
                return Trust::Insecure;
            };
            let Some(anchor) = anchors.covering(zone).cloned() else {
                return Trust::Insecure;
            };
            let lower = LowerName::new(zone);
            if let Some(hit) = self.cache.answer(&lower, RecordType::DNSKEY) {
                let data: Vec<&Record> = hit
                    .value
                    .iter()
                    .filter(|r| r.record_type() == RecordType::DNSKEY)
                    .collect();
                if !data.is_empty() && data.iter().all(|r| r.proof == Proof::Secure) {
                    return Trust::Secure(
                        data.iter()
                            .filter_map(|r| validate::dnskey(r))
                            .cloned()
                            .collect(),
                    );
                }
            }
            if self.trail.validating.iter().any(|z| z == zone) {
                return Trust::Bogus(Failure::new(
                    FailureKind::DnssecBogus,
                    format!("DNSSEC: the chain of trust of {zone} needs itself"),
                ));
            }
            self.trail.validating.push(zone.clone());
            let trust = if anchor.zone == *zone {
                self.keys_checked(zone, Vouch::Anchor(&anchor)).await
            } else {
                match self.ds_for(zone).await {
                    DsFound::Secure(ds) => self.keys_checked(zone, Vouch::Ds(&ds)).await,
                    DsFound::Insecure => Trust::Insecure,
                    DsFound::Bogus(failure) => Trust::Bogus(failure),
                }
            };
            self.trail.validating.pop();
            trust
        })
    }

    /// The DS set of `zone`, from its parent, as validation found it.
    async fn ds_for(&mut self, zone: &Name) -> DsFound {
        match self.one_name_boxed(zone, RecordType::DS).await {
            Link::Records(records) => {
                let data: Vec<&Record> = records
                    .iter()
                    .filter(|r| r.record_type() == RecordType::DS)
                    .collect();
                let ds: Vec<DS> = data
                    .iter()
                    .filter_map(|r| validate::ds(r))
                    .cloned()
                    .collect();
                if ds.is_empty() {
                    return DsFound::Bogus(Failure::new(
                        FailureKind::DnssecBogus,
                        format!("DNSSEC: the DS of {zone} did not come"),
                    ));
                }
                if data.iter().all(|r| r.proof == Proof::Secure) {
                    if validate::any_usable_ds(&ds) {
                        DsFound::Secure(ds)
                    } else {
                        DsFound::Insecure
                    }
                } else {
                    DsFound::Insecure
                }
            }
            Link::Negative { authorities, .. } => {
                let soa = authorities
                    .iter()
                    .find(|r| r.record_type() == RecordType::SOA);
                match soa.map(|r| r.proof) {
                    Some(Proof::Secure) => {
                        let parent = soa.map(|r| r.name.clone()).unwrap_or_default();
                        self.tell(
                            ChainStep::Ds,
                            &parent,
                            zone,
                            Some(RecordType::DS),
                            Vec::new(),
                            Security::Insecure,
                            format!(
                                "{zone} has no DS in {}, and the NSEC proves it: an unsigned delegation, insecure from here down",
                                zone_name(&parent)
                            ),
                            None,
                        );
                        DsFound::Insecure
                    }
                    Some(Proof::Insecure) => DsFound::Insecure,
                    _ => DsFound::Bogus(Failure::new(
                        FailureKind::NsecMissing,
                        format!("DNSSEC: the absence of {zone}'s DS is not proven"),
                    )),
                }
            }
            Link::Alias(..) => DsFound::Bogus(Failure::new(
                FailureKind::DnssecBogus,
                format!("DNSSEC: the DS of {zone} is an alias"),
            )),
            Link::Fail(failure) => DsFound::Bogus(failure),
        }
    }

    /// `zone`'s DNSKEY RRset, checked: one of its keys is the one the
    /// anchor (or the parent's DS) names, and that key signed the RRset.
    async fn keys_checked(&mut self, zone: &Name, vouch: Vouch<'_>) -> Trust {
        let step = match vouch {
            Vouch::Anchor(_) => ChainStep::Anchor,
            Vouch::Ds(_) => ChainStep::Dnskey,
        };
        let records = match self.one_name_boxed(zone, RecordType::DNSKEY).await {
            Link::Records(records) => records,
            Link::Fail(failure) => return Trust::Bogus(failure),
            _ => {
                let bogus = Bogus::new(
                    validate::DNSKEY_MISSING,
                    format!(
                        "{} has no DNSKEY, yet its chain of trust names one",
                        zone_name(zone)
                    ),
                );
                return self.keys_bogus(step, zone, Vec::new(), bogus);
            }
        };
        let mut data: Vec<Record> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY)
            .cloned()
            .collect();
        let sigs: Vec<&Record> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .collect();
        let keys: Vec<DNSKEY> = data.iter().filter_map(validate::dnskey).cloned().collect();
        let (trusted, named, source): (Vec<&DNSKEY>, Vec<u16>, String) = match vouch {
            Vouch::Anchor(anchor) => (
                keys.iter().filter(|k| anchor.trusts(k)).collect(),
                anchor.tags(),
                "the trust anchor".into(),
            ),
            Vouch::Ds(ds) => (
                validate::keys_named_by(zone, &keys, ds),
                ds.iter().map(DS::key_tag).collect(),
                "its DS".into(),
            ),
        };
        let named_text = named
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if trusted.is_empty() {
            let bogus = Bogus::new(
                validate::DNSKEY_MISSING,
                format!(
                    "{}'s DNSKEY ({}) has no key whose digest matches what {source} names (key {named_text})",
                    zone_name(zone),
                    key_names(&keys)
                ),
            );
            return self.keys_bogus(step, zone, named, bogus);
        }
        let trusted_keys: Vec<DNSKEY> = trusted.iter().map(|k| (*k).clone()).collect();
        let trusted_tags = tags(&trusted);
        match validate::verify_rrset(&data, &sigs, zone, &trusted_keys, self.unix_now()) {
            Ok(verified) => {
                let mut checked = records.clone();
                for record in checked.iter_mut() {
                    record.proof = Proof::Secure;
                    record.ttl = record.ttl.min(verified.ttl);
                }
                mark(&mut data, Proof::Secure);
                self.cache.put_answer(checked);
                self.tell(
                    step,
                    zone,
                    zone,
                    Some(RecordType::DNSKEY),
                    trusted_tags,
                    Security::Secure,
                    format!(
                        "{}'s DNSKEY ({}) holds key {named_text}, which {source} names, and that key signed it",
                        zone_name(zone),
                        key_names(&keys)
                    ),
                    None,
                );
                Trust::Secure(keys)
            }
            Err(bogus) => {
                let reason = format!("{}'s DNSKEY: {}", zone_name(zone), bogus.reason);
                self.keys_bogus(step, zone, trusted_tags, Bogus::new(bogus.code, reason))
            }
        }
    }

    /// `zone`'s keys do not check out: told, with the keys in question, and
    /// the failure the walk ends with.
    fn keys_bogus(
        &mut self,
        step: ChainStep,
        zone: &Name,
        key_tags: Vec<u16>,
        bogus: Bogus,
    ) -> Trust {
        self.tell(
            step,
            zone,
            zone,
            Some(RecordType::DNSKEY),
            key_tags,
            Security::Bogus,
            bogus.reason.clone(),
            Some(bogus.code),
        );
        Trust::Bogus(failure(&bogus))
    }
}

/// What vouches for a zone's keys.
#[derive(Clone, Copy)]
enum Vouch<'a> {
    Anchor(&'a Anchor),
    Ds(&'a [DS]),
}

fn sigs_of(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.record_type() == RecordType::RRSIG)
        .cloned()
        .collect()
}
