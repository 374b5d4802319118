//! Signed zones, as the name servers serve them.
//!
//! ```text
//!  zones ──prepare──► each zone, online-signed: + DNSKEY RRset at the apex
//!   (from files)                                + DS of each child we hold keys for
//!                                               + an NSEC at every authoritative name
//!                     a zone signed by another tool (its own DNSKEY and RRSIGs): as it is
//!
//!  answer (RFC 1034 lookup) ──complete, DO=1──► + the RRSIG of every RRset
//!                                               + DS (or the NSEC that denies it) in referrals
//!                                               + NSECs proving NXDOMAIN, NODATA, wildcards
//! ```
//!
//! An RRset's RRSIG is made the first time a client with DO=1 needs it and
//! cached, shared by every server of the zone; [`Signing::renew`] makes it
//! again before it expires, so the path of a question signs only once per
//! RRset. Each renewal moves [`Signing::generation`] on, which tells the
//! UDP transport to forget the answers it replays.
//!
//! The DNSSEC faults (see [`crate::fault`]) bend what is added here, and
//! nothing else: `bad-signature` flips a byte of every signature,
//! `expired-signature` signs with a validity that ended a week ago,
//! `missing-ds` leaves out the DS a parent should send (its NSEC still says
//! the DS exists), `wrong-ds` sends a DS, properly signed, whose digest
//! names no key of the child.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hickory_proto::dnssec::rdata::{DNSSECRData, DS, NSEC, RRSIG, SigInput};
use hickory_proto::dnssec::{DigestType, PublicKey, TBS};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};

use super::keys::{Key, KeyStore, ZoneKeys};
use super::{INCEPTION_SKEW, RENEW_BEFORE, SIGNATURE_VALIDITY, unix_now};
use crate::fault::Fault;
use crate::nameserver::answer::{AnswerKind, ZoneAnswer};
use crate::zone::{Zone, zone_cut_above};

/// Every signed zone of a set of name servers.
pub struct Signing {
    zones: HashMap<LowerName, ZoneSigning>,
    generation: AtomicU64,
}

/// One zone's signing state.
pub struct ZoneSigning {
    apex: Name,
    /// Our keys; `None` for a zone signed by another tool, whose RRSIGs
    /// come from its file.
    keys: Option<ZoneKeys>,
    /// The owners of the zone's NSEC records, in canonical order.
    chain: Vec<Name>,
    /// RRSIGs by the RRset they cover.
    cache: RwLock<HashMap<(LowerName, RecordType), Signed>>,
}

#[derive(Clone)]
struct Signed {
    sigs: Arc<[Record]>,
    /// When to make them again (Unix seconds).
    renew_at: u32,
}

/// Whether a zone came signed from its file: a DNSKEY at the apex and
/// RRSIGs.
pub fn is_presigned(zone: &Zone) -> bool {
    zone.rrset(zone.lower_origin(), RecordType::DNSKEY)
        .is_some()
        && zone.rrset(zone.lower_origin(), RecordType::RRSIG).is_some()
}

impl Signing {
    /// Sign `zones` with keys from `store` (made now where missing): each
    /// zone gets its DNSKEY RRset, the DS of its children (derived from
    /// their keys, unless its file gives them) and an NSEC chain. Zones
    /// signed by another tool are served as they are. Returns the zones to
    /// serve, in the order given.
    pub fn prepare(zones: Vec<Zone>, store: &KeyStore) -> Result<(Vec<Zone>, Signing), String> {
        let mut keys: HashMap<LowerName, ZoneKeys> = HashMap::new();
        for zone in zones.iter().filter(|z| !is_presigned(z)) {
            let zone_keys = store
                .zone_keys(zone.origin())
                .map_err(|e| format!("keys of {}: {e}", zone.origin()))?;
            keys.insert(zone.lower_origin().clone(), zone_keys);
        }
        // A child's DS, as its parent publishes it: from our key, or from
        // the secure entry points a pre-signed child's file holds.
        let child_ds: HashMap<LowerName, Vec<DS>> = zones
            .iter()
            .map(|z| {
                let ds = match keys.get(z.lower_origin()) {
                    Some(k) => ds_of(&k.apex, std::slice::from_ref(&k.ksk)),
                    None => presigned_ds(z),
                };
                (z.lower_origin().clone(), ds)
            })
            .collect();
        let mut out = Vec::with_capacity(zones.len());
        let mut signing = Signing {
            zones: HashMap::new(),
            generation: AtomicU64::new(1),
        };
        for mut zone in zones {
            let apex = zone.lower_origin().clone();
            match keys.remove(&apex) {
                Some(zone_keys) => {
                    add_child_ds(&mut zone, &child_ds);
                    for key in [&zone_keys.ksk, &zone_keys.zsk] {
                        zone.insert(key.record(zone.origin()));
                    }
                    let chain = add_nsec_chain(&mut zone);
                    signing.zones.insert(
                        apex,
                        ZoneSigning::new(zone.origin().clone(), Some(zone_keys), chain),
                    );
                }
                None => {
                    signing.zones.insert(apex, ZoneSigning::presigned(&zone));
                }
            }
            out.push(zone);
        }
        Ok((out, signing))
    }

    /// Serving for the zones among `zones` that came signed, if any: what
    /// a name server does without `--dnssec`.
    pub fn presigned<'z>(zones: impl IntoIterator<Item = &'z Zone>) -> Option<Signing> {
        let zones: HashMap<LowerName, ZoneSigning> = zones
            .into_iter()
            .filter(|z| is_presigned(z))
            .map(|z| (z.lower_origin().clone(), ZoneSigning::presigned(z)))
            .collect();
        (!zones.is_empty()).then(|| Signing {
            zones,
            generation: AtomicU64::new(1),
        })
    }

    /// The signing state of the zone at `apex`.
    pub fn zone(&self, apex: &LowerName) -> Option<&ZoneSigning> {
        self.zones.get(apex)
    }

    /// The keys of the zone at `apex`, when we sign it.
    pub fn keys(&self, apex: &Name) -> Option<&ZoneKeys> {
        self.zones.get(&LowerName::new(apex))?.keys.as_ref()
    }

    /// Moves on whenever a signature is made again: answers encoded before
    /// carry old signatures.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Make again every cached signature with less than [`RENEW_BEFORE`]
    /// left; returns how many. A name server's own task calls this, so
    /// that answering never has to.
    pub fn renew(&self, zones: &[Arc<Zone>]) -> usize {
        let now = unix_now();
        let mut renewed = 0;
        for zone in zones {
            let Some(signing) = self.zones.get(zone.lower_origin()) else {
                continue;
            };
            let due: Vec<(LowerName, RecordType)> = signing
                .cache
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(_, s)| !super::serial_lt(now, s.renew_at))
                .map(|(k, _)| k.clone())
                .collect();
            for (owner, rtype) in due {
                signing
                    .cache
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(owner.clone(), rtype));
                signing.rrsigs(zone, &owner, rtype, now);
                renewed += 1;
            }
        }
        if renewed > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        renewed
    }
}

/// DS records (digest SHA-256) for `keys` of the zone at `apex`.
pub fn ds_of(apex: &Name, keys: &[Key]) -> Vec<DS> {
    keys.iter()
        .filter_map(|k| {
            let digest = k.dnskey().to_digest(apex, DigestType::SHA256).ok()?;
            Some(DS::new(
                k.tag,
                k.algorithm(),
                DigestType::SHA256,
                digest.as_ref().to_vec(),
            ))
        })
        .collect()
}

/// DS records for the secure entry points (flags 257) in a pre-signed
/// zone's DNSKEY RRset.
fn presigned_ds(zone: &Zone) -> Vec<DS> {
    let Some(rrset) = zone.rrset(zone.lower_origin(), RecordType::DNSKEY) else {
        return Vec::new();
    };
    rrset
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(key)) if key.secure_entry_point() => {
                let digest = key.to_digest(zone.origin(), DigestType::SHA256).ok()?;
                Some(DS::new(
                    key.calculate_key_tag().ok()?,
                    key.public_key().algorithm(),
                    DigestType::SHA256,
                    digest.as_ref().to_vec(),
                ))
            }
            _ => None,
        })
        .collect()
}

/// The DS of every delegated child whose keys we know, at its cut, unless
/// the zone file already gives one there (as a registrar would take it).
fn add_child_ds(zone: &mut Zone, child_ds: &HashMap<LowerName, Vec<DS>>) {
    let cuts: Vec<(Name, u32)> = zone
        .nodes()
        .filter(|(name, node)| name != zone.lower_origin() && node.get(RecordType::NS).is_some())
        .filter(|(_, node)| node.get(RecordType::DS).is_none())
        .map(|(_, node)| {
            let ns = &node.get(RecordType::NS).expect("filtered").records[0];
            (ns.name.clone(), ns.ttl)
        })
        .collect();
    for (cut, ttl) in cuts {
        for ds in child_ds.get(&LowerName::new(&cut)).into_iter().flatten() {
            zone.insert(Record::from_rdata(
                cut.clone(),
                ttl.min(86_400),
                RData::DNSSEC(DNSSECRData::DS(ds.clone())),
            ));
        }
    }
}

/// An NSEC at every name with authoritative data or a delegation, in
/// canonical order, the last pointing back at the apex (RFC 4034 §4).
/// Returns the owners.
fn add_nsec_chain(zone: &mut Zone) -> Vec<Name> {
    let mut owners: BTreeMap<Name, Vec<RecordType>> = BTreeMap::new();
    for (name, node) in zone.nodes() {
        if node.is_empty_non_terminal() {
            continue;
        }
        let cut = zone_cut_above(zone, &name);
        // Below a cut there is only glue, which is not this zone's data.
        if cut.as_ref().is_some_and(|c| *c != name) {
            continue;
        }
        let mut types: Vec<RecordType> = node.rrsets.iter().map(|r| r.rtype).collect();
        types.extend([RecordType::RRSIG, RecordType::NSEC]);
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        owners.insert(Name::from(name), types);
    }
    let names: Vec<Name> = owners.keys().cloned().collect();
    let ttl = zone.negative_soa().ttl;
    for (i, (owner, types)) in owners.into_iter().enumerate() {
        let next = names.get(i + 1).unwrap_or(&names[0]).clone();
        zone.insert(Record::from_rdata(
            owner,
            ttl,
            RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(next, types))),
        ));
    }
    names
}

impl ZoneSigning {
    fn new(apex: Name, keys: Option<ZoneKeys>, chain: Vec<Name>) -> ZoneSigning {
        ZoneSigning {
            apex,
            keys,
            chain,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn presigned(zone: &Zone) -> ZoneSigning {
        let mut chain: Vec<Name> = zone
            .nodes()
            .filter(|(_, node)| node.get(RecordType::NSEC).is_some())
            .map(|(name, _)| Name::from(name))
            .collect();
        chain.sort();
        ZoneSigning::new(zone.origin().clone(), None, chain)
    }

    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The RRSIGs covering the RRset `owner`/`rtype` of `zone`, made (and
    /// cached) if need be.
    fn rrsigs(&self, zone: &Zone, owner: &LowerName, rtype: RecordType, now: u32) -> Arc<[Record]> {
        let key = (owner.clone(), rtype);
        if let Some(signed) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && super::serial_lt(now, signed.renew_at)
        {
            return signed.sigs.clone();
        }
        let sigs: Arc<[Record]> = match &self.keys {
            None => presigned_rrsigs(zone, owner, rtype).into(),
            Some(keys) => {
                let Some(rrset) = zone.rrset(owner, rtype) else {
                    return Arc::new([]);
                };
                let inception = now.wrapping_sub(INCEPTION_SKEW.as_secs() as u32);
                let expiration = now.wrapping_add(SIGNATURE_VALIDITY.as_secs() as u32);
                let key = self.key_for(keys, rtype);
                sign(key, &self.apex, &rrset.records, inception, expiration)
                    .into_iter()
                    .collect()
            }
        };
        let renew_at = match &self.keys {
            Some(_) => now.wrapping_add((SIGNATURE_VALIDITY - RENEW_BEFORE).as_secs() as u32),
            // Another tool's signatures are what they are.
            None => now.wrapping_add(u32::MAX / 4),
        };
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                Signed {
                    sigs: sigs.clone(),
                    renew_at,
                },
            );
        sigs
    }

    /// The KSK signs the DNSKEY RRset; the ZSK everything else.
    fn key_for<'k>(&self, keys: &'k ZoneKeys, rtype: RecordType) -> &'k Key {
        if rtype == RecordType::DNSKEY {
            &keys.ksk
        } else {
            &keys.zsk
        }
    }

    /// Signatures for an RRset as a fault wants them: made now with the
    /// validity a fault gives, never cached.
    fn rrsigs_with_fault(
        &self,
        zone: &Zone,
        records: &[Record],
        rtype: RecordType,
        now: u32,
        fault: Option<Fault>,
    ) -> Vec<Record> {
        let owner = LowerName::new(&records[0].name);
        let mut sigs: Vec<Record> = match (fault, &self.keys) {
            (Some(Fault::ExpiredSignature), Some(keys)) => {
                // A week ago: validators allow clocks a skew (Unbound up
                // to a day), and this must be expired for every one.
                let day = 86_400u32;
                sign(
                    self.key_for(keys, rtype),
                    &self.apex,
                    records,
                    now.wrapping_sub(21 * day),
                    now.wrapping_sub(7 * day),
                )
                .into_iter()
                .collect()
            }
            (Some(Fault::WrongDs), Some(keys)) if rtype == RecordType::DS => sign(
                self.key_for(keys, rtype),
                &self.apex,
                records,
                now.wrapping_sub(INCEPTION_SKEW.as_secs() as u32),
                now.wrapping_add(SIGNATURE_VALIDITY.as_secs() as u32),
            )
            .into_iter()
            .collect(),
            _ => self.rrsigs(zone, &owner, rtype, now).to_vec(),
        };
        if fault == Some(Fault::BadSignature) {
            for sig in &mut sigs {
                corrupt(sig);
            }
        }
        sigs
    }

    /// Add to `response` what a client that asked with DO=1 needs to check
    /// it: RRSIGs, DS or the proof there is none, NSEC denials.
    pub fn complete(
        &self,
        zone: &Zone,
        qname: &LowerName,
        qtype: RecordType,
        response: &mut ZoneAnswer,
        fault: Option<Fault>,
    ) {
        let now = unix_now();
        let mut proofs: Vec<Record> = Vec::new();

        // A DS the parent should have sent, and did not.
        if fault == Some(Fault::MissingDs)
            && qtype == RecordType::DS
            && !response.answers.is_empty()
        {
            response
                .answers
                .retain(|r| r.record_type() != RecordType::DS);
            if response.answers.is_empty() {
                response.kind = AnswerKind::NoData;
                response.authorities.push(zone.negative_soa().clone());
            }
        }
        if fault == Some(Fault::WrongDs) {
            for record in &mut response.answers {
                wrong_ds(record);
            }
        }

        let mut signed_answers = Vec::with_capacity(response.answers.len() * 2);
        let rrsets = group(&response.answers);
        for (i, records) in rrsets.iter().enumerate() {
            signed_answers.extend(records.iter().cloned());
            let rtype = records[0].record_type();
            let owner = LowerName::new(&records[0].name);
            if rtype == RecordType::RRSIG {
                continue;
            }
            if zone.rrset(&owner, rtype).is_some() {
                signed_answers.extend(self.rrsigs_with_fault(zone, records, rtype, now, fault));
            } else if rtype == RecordType::CNAME
                && i > 0
                && rrsets[i - 1][0].record_type() == RecordType::DNAME
            {
                // Synthesised from the DNAME before it: unsigned (RFC 6672 §5.3.1).
            } else if let Some(wildcard) = wildcard_of(zone, &owner) {
                // Expanded from a wildcard: its signature, under the name
                // asked (the Labels field tells), and proof that the name
                // itself does not exist (RFC 4035 §3.1.3.3).
                let expanded: Vec<Record> = zone
                    .rrset(&wildcard, rtype)
                    .map(|r| r.records.clone())
                    .unwrap_or_default();
                if !expanded.is_empty() {
                    for mut sig in self.rrsigs_with_fault(zone, &expanded, rtype, now, fault) {
                        sig.name = records[0].name.clone();
                        signed_answers.push(sig);
                    }
                }
                self.add_nsec(
                    zone,
                    &self.covering(&Name::from(&owner)),
                    &mut proofs,
                    now,
                    fault,
                );
            }
        }
        response.answers = signed_answers;

        let last = last_name(qname, &response.answers);
        match response.kind {
            AnswerKind::Referral => {
                let cut = response
                    .authorities
                    .iter()
                    .find(|r| r.record_type() == RecordType::NS)
                    .map(|r| r.name.clone());
                if let Some(cut) = cut {
                    let lower = LowerName::new(&cut);
                    match zone.rrset(&lower, RecordType::DS) {
                        Some(_) if fault == Some(Fault::MissingDs) => {}
                        Some(ds) => {
                            let mut records = ds.records.clone();
                            if fault == Some(Fault::WrongDs) {
                                records.iter_mut().for_each(wrong_ds);
                            }
                            let sigs =
                                self.rrsigs_with_fault(zone, &records, RecordType::DS, now, fault);
                            response.authorities.extend(records);
                            response.authorities.extend(sigs);
                        }
                        None => self.add_nsec(zone, &cut, &mut proofs, now, fault),
                    }
                }
            }
            AnswerKind::NxDomain => {
                self.sign_soa(zone, response, now, fault);
                self.add_nsec(
                    zone,
                    &self.covering(&Name::from(&last)),
                    &mut proofs,
                    now,
                    fault,
                );
                let encloser = closest_encloser(zone, &last);
                if let Ok(wildcard) = Name::from(&encloser).prepend_label("*") {
                    self.add_nsec(zone, &self.covering(&wildcard), &mut proofs, now, fault);
                }
            }
            AnswerKind::NoData => {
                self.sign_soa(zone, response, now, fault);
                let name = Name::from(&last);
                if self.chain.binary_search(&name).is_ok() {
                    self.add_nsec(zone, &name, &mut proofs, now, fault);
                } else {
                    // An empty non-terminal, or a wildcard without the type:
                    // the NSEC whose span holds the name, and the wildcard's.
                    self.add_nsec(zone, &self.covering(&name), &mut proofs, now, fault);
                    if let Some(wildcard) = wildcard_of(zone, &last) {
                        self.add_nsec(zone, &Name::from(&wildcard), &mut proofs, now, fault);
                    }
                }
            }
            AnswerKind::Answer => {}
        }
        for record in proofs {
            if !response.authorities.contains(&record) {
                response.authorities.push(record);
            }
        }
    }

    /// The SOA of a negative answer, signed.
    fn sign_soa(&self, zone: &Zone, response: &mut ZoneAnswer, now: u32, fault: Option<Fault>) {
        let soa = zone.negative_soa().clone();
        let mut sigs = self.rrsigs_with_fault(
            zone,
            std::slice::from_ref(&soa),
            RecordType::SOA,
            now,
            fault,
        );
        // The SOA of a denial carries the negative TTL, and so its RRSIG.
        for sig in &mut sigs {
            sig.ttl = soa.ttl;
        }
        response.authorities.extend(sigs);
    }

    /// The NSEC at `owner` and its RRSIGs, into `proofs`.
    fn add_nsec(
        &self,
        zone: &Zone,
        owner: &Name,
        proofs: &mut Vec<Record>,
        now: u32,
        fault: Option<Fault>,
    ) {
        let lower = LowerName::new(owner);
        let Some(nsec) = zone.rrset(&lower, RecordType::NSEC) else {
            return;
        };
        if proofs
            .iter()
            .any(|r| r.record_type() == RecordType::NSEC && LowerName::new(&r.name) == lower)
        {
            return;
        }
        let sigs = self.rrsigs_with_fault(zone, &nsec.records, RecordType::NSEC, now, fault);
        proofs.extend(nsec.records.iter().cloned());
        proofs.extend(sigs);
    }

    /// The owner of the NSEC whose span holds `name`: `name` itself if it
    /// has one, else the last owner before it in canonical order.
    fn covering(&self, name: &Name) -> Name {
        match self.chain.binary_search(name) {
            Ok(i) => self.chain[i].clone(),
            Err(0) => self
                .chain
                .last()
                .cloned()
                .unwrap_or_else(|| self.apex.clone()),
            Err(i) => self.chain[i - 1].clone(),
        }
    }

    /// Every record of the zone and the RRSIGs of every RRset it is
    /// authoritative for, SOA first and last: a signed zone transfer that
    /// `dnssec-verify` accepts.
    pub fn transfer(&self, zone: &Zone) -> Vec<Record> {
        let now = unix_now();
        let mut records = crate::nameserver::answer::transfer(zone);
        let soa = records.pop();
        let mut sigs = Vec::new();
        for (name, node) in zone.nodes() {
            let cut = zone_cut_above(zone, &name);
            for rrset in &node.rrsets {
                let delegation_only = cut.as_ref().is_some_and(|c| {
                    *c != name || !matches!(rrset.rtype, RecordType::DS | RecordType::NSEC)
                });
                if rrset.rtype == RecordType::RRSIG || delegation_only {
                    continue;
                }
                sigs.extend(self.rrsigs(zone, &name, rrset.rtype, now).iter().cloned());
            }
        }
        sigs.sort_by(|a, b| a.name.cmp(&b.name));
        records.extend(sigs);
        records.extend(soa);
        records
    }
}

/// Sign `records` (one RRset) with `key` of the zone at `apex`.
fn sign(
    key: &Key,
    apex: &Name,
    records: &[Record],
    inception: u32,
    expiration: u32,
) -> Option<Record> {
    let first = records.first()?;
    let input = SigInput {
        type_covered: first.record_type(),
        algorithm: key.algorithm(),
        num_labels: first.name.num_labels(),
        original_ttl: first.ttl,
        sig_expiration: SerialNumber::new(expiration),
        sig_inception: SerialNumber::new(inception),
        key_tag: key.tag,
        signer_name: apex.clone(),
    };
    let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, records.iter()).ok()?;
    let signature = key.signer.sign(&tbs).ok()?;
    Some(Record::from_rdata(
        first.name.clone(),
        first.ttl,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, signature))),
    ))
}

/// The RRSIGs a pre-signed zone's file holds for `owner`/`rtype`.
fn presigned_rrsigs(zone: &Zone, owner: &LowerName, rtype: RecordType) -> Vec<Record> {
    zone.rrset(owner, RecordType::RRSIG)
        .map(|r| {
            r.records
                .iter()
                .filter(|sig| matches!(&sig.data, RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A signature no key made: its first byte flipped.
fn corrupt(record: &mut Record) {
    if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &record.data {
        let mut bytes = sig.sig().to_vec();
        if let Some(b) = bytes.first_mut() {
            *b ^= 0xff;
        }
        record.data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(
            sig.input().clone(),
            bytes,
        )));
    }
}

/// A DS whose digest names no key: its last byte flipped.
fn wrong_ds(record: &mut Record) {
    if let RData::DNSSEC(DNSSECRData::DS(ds)) = &record.data {
        let mut digest = ds.digest().to_vec();
        if let Some(b) = digest.last_mut() {
            *b ^= 0xff;
        }
        record.data = RData::DNSSEC(DNSSECRData::DS(DS::new(
            ds.key_tag(),
            ds.algorithm(),
            ds.digest_type(),
            digest,
        )));
    }
}

/// Records grouped into RRsets (same owner and type), in order.
fn group(records: &[Record]) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = Vec::new();
    for record in records {
        match out.iter_mut().find(|rs| {
            rs[0].record_type() == record.record_type() && rs[0].name.eq_ignore_root(&record.name)
        }) {
            Some(rrset) => rrset.push(record.clone()),
            None => out.push(vec![record.clone()]),
        }
    }
    out
}

/// The name a negative answer is about: the question's name, or the last
/// CNAME target in the answer.
fn last_name(qname: &LowerName, answers: &[Record]) -> LowerName {
    let mut name = qname.clone();
    for _ in 0..answers.len() {
        let next = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if LowerName::new(&r.name) == name => {
                Some(LowerName::new(&target.0))
            }
            _ => None,
        });
        match next {
            Some(next) if next != name => name = next,
            _ => break,
        }
    }
    name
}

/// The deepest existing ancestor of `name` in the zone (RFC 4592 §3.3.1).
fn closest_encloser(zone: &Zone, name: &LowerName) -> LowerName {
    let mut ancestor = name.clone();
    while ancestor != *zone.lower_origin() && !ancestor.is_root() {
        ancestor = ancestor.base_name();
        if zone.node(&ancestor).is_some() {
            return ancestor;
        }
    }
    zone.lower_origin().clone()
}

/// The wildcard that answers for `name`, which does not exist, if any.
fn wildcard_of(zone: &Zone, name: &LowerName) -> Option<LowerName> {
    if zone.node(name).is_some() {
        return None;
    }
    let encloser = closest_encloser(zone, name);
    let wildcard = LowerName::new(&Name::from(&encloser).prepend_label("*").ok()?);
    zone.node(&wildcard).map(|_| wildcard)
}

/// A name server's task that keeps signatures fresh: every ten minutes,
/// those with less than a week left are made again.
pub async fn keep_fresh(
    signing: Arc<Signing>,
    zones: Arc<[Arc<crate::nameserver::LiveZone>]>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let snapshots: Vec<Arc<Zone>> = zones.iter().map(|z| z.snapshot()).collect();
                let renewed = signing.renew(&snapshots);
                if renewed > 0 {
                    tracing::info!("renewed {renewed} RRSIGs before they expire");
                }
            }
            _ = shutdown.cancelled() => return,
        }
    }
}
