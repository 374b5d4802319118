//! DNSSEC records as zone files write them (RFC 4034 §2.2, §3.2, §4.2,
//! §5.3; RFC 5155 §3.3, §4.3), for the records hickory's zone-file parser
//! refuses ("DS should be dynamically generated"): so that a parent's zone
//! file can hold its children's DS, and a zone signed by another tool
//! (`dnssec-signzone`, `ldns-signzone`) can be served as it is.

use hickory_proto::dnssec::rdata::{
    DNSKEY, DNSSECRData, DS, NSEC, NSEC3, NSEC3PARAM, RRSIG, SigInput,
};
use hickory_proto::dnssec::{Algorithm, DigestType, Nsec3HashAlgorithm, PublicKeyBuf};
use hickory_proto::rr::{Name, RData, RecordType, SerialNumber};

/// The record types read here.
pub fn is_dnssec_type(rtype: &str) -> bool {
    matches!(
        rtype,
        "DS" | "DNSKEY" | "RRSIG" | "NSEC" | "NSEC3" | "NSEC3PARAM"
    )
}

/// The data of a DNSSEC record of type `rtype` from its words.
pub fn rdata(
    rtype: &str,
    words: &[impl AsRef<str>],
    origin: Option<&Name>,
) -> Result<RData, String> {
    let mut words = words.iter().map(AsRef::as_ref);
    let mut next = |what: &str| {
        words
            .next()
            .ok_or_else(|| format!("{rtype}: the {what} is missing"))
    };
    let data = match rtype {
        "DS" => {
            let tag = number::<u16>(next("key tag")?, "key tag")?;
            let algorithm = algorithm(next("algorithm")?)?;
            let digest_type = DigestType::from(number::<u8>(next("digest type")?, "digest type")?);
            let digest = hex(&rest(&mut words))?;
            DNSSECRData::DS(DS::new(tag, algorithm, digest_type, digest))
        }
        "DNSKEY" => {
            let flags = number::<u16>(next("flags")?, "flags")?;
            if next("protocol")? != "3" {
                return Err(format!("{rtype}: the protocol field must be 3"));
            }
            let algorithm = algorithm(next("algorithm")?)?;
            let key = base64(&rest(&mut words))?;
            DNSSECRData::DNSKEY(DNSKEY::with_flags(flags, PublicKeyBuf::new(key, algorithm)))
        }
        "RRSIG" => {
            let covered = record_type(next("type covered")?)?;
            let algorithm = algorithm(next("algorithm")?)?;
            let num_labels = number::<u8>(next("labels")?, "labels")?;
            let original_ttl = number::<u32>(next("original TTL")?, "original TTL")?;
            let expiration = time(next("expiration")?)?;
            let inception = time(next("inception")?)?;
            let key_tag = number::<u16>(next("key tag")?, "key tag")?;
            let signer = name(next("signer")?, origin)?;
            let signature = base64(&rest(&mut words))?;
            DNSSECRData::RRSIG(RRSIG::from_sig(
                SigInput {
                    type_covered: covered,
                    algorithm,
                    num_labels,
                    original_ttl,
                    sig_expiration: SerialNumber::new(expiration),
                    sig_inception: SerialNumber::new(inception),
                    key_tag,
                    signer_name: signer,
                },
                signature,
            ))
        }
        "NSEC" => {
            let next_name = name(next("next name")?, origin)?;
            let types = rest(&mut words)
                .iter()
                .map(|t| record_type(t))
                .collect::<Result<Vec<_>, _>>()?;
            DNSSECRData::NSEC(NSEC::new(next_name, types))
        }
        "NSEC3" | "NSEC3PARAM" => {
            let hash = number::<u8>(next("hash algorithm")?, "hash algorithm")?;
            let hash = Nsec3HashAlgorithm::try_from(hash)
                .map_err(|_| format!("{rtype}: unknown hash algorithm {hash}"))?;
            let flags = number::<u8>(next("flags")?, "flags")?;
            let iterations = number::<u16>(next("iterations")?, "iterations")?;
            let salt = match next("salt")? {
                "-" => Vec::new(),
                text => hex(&[text])?,
            };
            if rtype == "NSEC3PARAM" {
                DNSSECRData::NSEC3PARAM(NSEC3PARAM::new(hash, flags & 1 == 1, iterations, salt))
            } else {
                let next_hash = data_encoding::BASE32_DNSSEC
                    .decode(next("next hashed owner")?.as_bytes())
                    .map_err(|e| format!("NSEC3: bad next hashed owner: {e}"))?;
                let types = rest(&mut words)
                    .iter()
                    .map(|t| record_type(t))
                    .collect::<Result<Vec<_>, _>>()?;
                DNSSECRData::NSEC3(NSEC3::new(
                    hash,
                    flags & 1 == 1,
                    iterations,
                    salt,
                    next_hash,
                    types,
                ))
            }
        }
        other => return Err(format!("{other} is not a DNSSEC type read here")),
    };
    Ok(RData::DNSSEC(data))
}

fn rest<'a>(words: &mut impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    words.collect()
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("bad {what} `{text}`"))
}

/// An algorithm by number or mnemonic (RFC 4034 Appendix A.1).
pub fn algorithm(text: &str) -> Result<Algorithm, String> {
    if let Ok(n) = text.parse::<u8>() {
        return Ok(Algorithm::from_u8(n));
    }
    let n = match text.to_ascii_uppercase().as_str() {
        "RSASHA1" => 5,
        "RSASHA1-NSEC3-SHA1" | "NSEC3RSASHA1" => 7,
        "RSASHA256" => 8,
        "RSASHA512" => 10,
        "ECDSAP256SHA256" => 13,
        "ECDSAP384SHA384" => 14,
        "ED25519" => 15,
        "ED448" => 16,
        _ => return Err(format!("unknown algorithm `{text}`")),
    };
    Ok(Algorithm::from_u8(n))
}

fn record_type(text: &str) -> Result<RecordType, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE")
        && let Ok(n) = n.parse::<u16>()
    {
        return Ok(RecordType::from(n));
    }
    upper
        .parse()
        .map_err(|_| format!("unknown record type `{text}`"))
}

fn name(text: &str, origin: Option<&Name>) -> Result<Name, String> {
    if text == "@" {
        return origin
            .cloned()
            .ok_or_else(|| "@ but no $ORIGIN is set".into());
    }
    Name::parse(text, origin).map_err(|e| format!("bad name `{text}`: {e}"))
}

fn hex(words: &[&str]) -> Result<Vec<u8>, String> {
    let text: String = words.concat();
    data_encoding::HEXUPPER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|e| format!("bad hex `{text}`: {e}"))
}

fn base64(words: &[&str]) -> Result<Vec<u8>, String> {
    let text: String = words.concat();
    if text.is_empty() {
        return Err("the key or signature is missing".into());
    }
    data_encoding::BASE64
        .decode(text.as_bytes())
        .map_err(|e| format!("bad base64: {e}"))
}

/// An RRSIG time: `YYYYMMDDHHmmSS` (UTC) or seconds since 1970 (RFC 4034
/// §3.2).
pub fn time(text: &str) -> Result<u32, String> {
    let bad = || format!("bad signature time `{text}` (YYYYMMDDHHmmSS)");
    if text.len() != 14 {
        return text.parse().map_err(|_| bad());
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<i64>().map_err(|_| bad());
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    // RFC 4034 §3.1.5: times are serial numbers modulo 2^32.
    Ok(seconds.rem_euclid(1 << 32) as u32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn times_read_as_zone_files_write_them() {
        assert_eq!(time("19700101000000"), Ok(0));
        assert_eq!(time("20260101000000"), Ok(1_767_225_600));
        assert_eq!(time("1767225600"), Ok(1_767_225_600));
        assert!(time("20261301000000").is_err());
    }

    #[test]
    fn records_read_as_dig_prints_them() {
        let ds = rdata(
            "DS",
            &words("2371 13 2 C988EC423E3880EB8DD8A46E5F8B0E3F5C1C4E2B7D9A0E6F9C1B2A3D4E5F6071"),
            None,
        )
        .unwrap();
        assert!(ds.to_string().starts_with("2371 13 2 "), "{ds}");
        let nsec = rdata("NSEC", &words("b.example. A RRSIG NSEC TYPE65534"), None).unwrap();
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = nsec else {
            panic!("an NSEC")
        };
        assert!(nsec.type_set().contains(RecordType::Unknown(65534)));
        assert!(nsec.type_set().contains(RecordType::A));
        assert!(rdata("DNSKEY", &words("257 2 13 AAAA"), None).is_err());
    }
}
