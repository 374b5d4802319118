//! The trust anchor: where validation starts (RFC 4035 §4.4). Written by
//! the name servers when they make the root's key, read by the resolver.
//!
//! ```text
//!  root.key       ; zone-file form: Unbound's trust-anchor-file, our --trust-anchor
//!  .  3600  IN  DS  12345 13 2 4B2C…
//!
//!  root.anchors   // named.conf form: delv -a, and our --trust-anchor
//!  trust-anchors { "." static-ds 12345 13 2 "4B2C…"; };
//! ```
//!
//! Unbound and delv want the anchor in two different syntaxes, so both
//! files are written side by side; ours reads either, with DS or DNSKEY
//! anchors (`static-key`, `initial-key`, `trusted-keys { }` too).

use std::path::{Path, PathBuf};

use hickory_proto::dnssec::DigestType;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::rr::{Name, RData};

use super::keys::{ZoneKeys, file_stem};

/// The keys validation starts from: per zone, DS records or DNSKEYs.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    pub anchors: Vec<Anchor>,
    /// Where they were read from, for messages.
    pub source: String,
}

/// One zone's anchor.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub zone: Name,
    pub ds: Vec<DS>,
    pub dnskeys: Vec<DNSKEY>,
}

impl Anchor {
    /// Whether `key` is this anchor (a DNSKEY given) or is named by it (a
    /// DS given, whose digest it matches).
    pub fn trusts(&self, key: &DNSKEY) -> bool {
        self.dnskeys
            .iter()
            .any(|k| k.public_key() == key.public_key())
            || self
                .ds
                .iter()
                .any(|ds| ds.covers(&self.zone, key).unwrap_or(false))
    }

    /// The key tags the anchor names.
    pub fn tags(&self) -> Vec<u16> {
        self.ds
            .iter()
            .map(DS::key_tag)
            .chain(
                self.dnskeys
                    .iter()
                    .filter_map(|k| k.calculate_key_tag().ok()),
            )
            .collect()
    }
}

impl TrustAnchors {
    /// The anchor for exactly `zone`.
    pub fn for_zone(&self, zone: &Name) -> Option<&Anchor> {
        self.anchors
            .iter()
            .find(|a| a.zone.eq_ignore_root(zone) || a.zone == *zone)
    }

    /// The closest anchor at or above `name`: the one its chain starts at.
    pub fn covering(&self, name: &Name) -> Option<&Anchor> {
        self.anchors
            .iter()
            .filter(|a| a.zone.zone_of(name))
            .max_by_key(|a| a.zone.num_labels())
    }

    /// Read a trust-anchor file: zone-file lines (DS or DNSKEY), or
    /// named.conf's `trust-anchors { }` / `trusted-keys { }`.
    pub fn read(path: &Path) -> Result<TrustAnchors, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut anchors =
            TrustAnchors::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        anchors.source = path.display().to_string();
        Ok(anchors)
    }

    pub fn parse(text: &str) -> Result<TrustAnchors, String> {
        let uncommented = strip_comments(text);
        let entries = if uncommented.contains('{') {
            named_conf_entries(&uncommented)?
        } else {
            zone_file_entries(&uncommented)?
        };
        let mut anchors = TrustAnchors::default();
        for (owner, rdata) in entries {
            let zone = Name::from_ascii(&owner).map_err(|e| format!("bad name {owner}: {e}"))?;
            let index = match anchors.anchors.iter().position(|a| a.zone == zone) {
                Some(i) => i,
                None => {
                    anchors.anchors.push(Anchor {
                        zone,
                        ds: Vec::new(),
                        dnskeys: Vec::new(),
                    });
                    anchors.anchors.len() - 1
                }
            };
            match rdata {
                RData::DNSSEC(DNSSECRData::DS(ds)) => anchors.anchors[index].ds.push(ds),
                RData::DNSSEC(DNSSECRData::DNSKEY(key)) => anchors.anchors[index].dnskeys.push(key),
                _ => {}
            }
        }
        if anchors.anchors.is_empty() {
            return Err("no trust anchor in it (a DS or DNSKEY line for a zone)".into());
        }
        Ok(anchors)
    }
}

/// `;`, `#` and `//` comments out (never inside quotes, where none occur).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            let cut = [";", "#", "//"]
                .iter()
                .filter_map(|c| line.find(c))
                .min()
                .unwrap_or(line.len());
            &line[..cut]
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `. 3600 IN DS …` lines: owner, optional TTL and class, type, data.
fn zone_file_entries(text: &str) -> Result<Vec<(String, RData)>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<String> = line
            .split_whitespace()
            .flat_map(|w| w.split(['(', ')']))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let Some(owner) = words.first() else { continue };
        let at = words
            .iter()
            .position(|w| matches!(w.to_ascii_uppercase().as_str(), "DS" | "DNSKEY"))
            .ok_or_else(|| format!("`{}`: neither a DS nor a DNSKEY", line.trim()))?;
        let rtype = words[at].to_ascii_uppercase();
        out.push((
            owner.clone(),
            super::text::rdata(&rtype, &words[at + 1..], None)?,
        ));
    }
    Ok(out)
}

/// named.conf's anchors: `NAME static-key|initial-key FLAGS 3 ALG "KEY";`,
/// `NAME static-ds|initial-ds TAG ALG TYPE "HEX";`, and trusted-keys'
/// `NAME FLAGS 3 ALG "KEY";`.
fn named_conf_entries(text: &str) -> Result<Vec<(String, RData)>, String> {
    let mut out = Vec::new();
    let body: String = text
        .split('{')
        .skip(1)
        .map(|part| part.split('}').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(";");
    for statement in body.split(';') {
        let words: Vec<String> = statement
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_string())
            .filter(|w| !w.is_empty())
            .collect();
        let Some(owner) = words.first() else { continue };
        let (rtype, data) = match words.get(1).map(|w| w.to_ascii_lowercase()) {
            Some(kind) if kind.ends_with("-ds") => ("DS", &words[2..]),
            Some(kind) if kind.ends_with("-key") => ("DNSKEY", &words[2..]),
            Some(_) => ("DNSKEY", &words[1..]),
            None => continue,
        };
        out.push((owner.clone(), super::text::rdata(rtype, data, None)?));
    }
    Ok(out)
}

/// Write `zone`'s anchor (a DS of its KSK, digest SHA-256) into `dir`:
/// `<zone>.key` in zone-file form and `<zone>.anchors` in named.conf
/// form. Returns the two paths.
pub fn write(dir: &Path, keys: &ZoneKeys) -> Result<(PathBuf, PathBuf), String> {
    let ds = DS::new(
        keys.ksk.tag,
        keys.ksk.algorithm(),
        DigestType::SHA256,
        keys.ksk
            .dnskey()
            .to_digest(&keys.apex, DigestType::SHA256)
            .map_err(|e| e.to_string())?
            .as_ref()
            .to_vec(),
    );
    let owner = keys.apex.to_ascii();
    let hex = data_encoding::HEXUPPER.encode(ds.digest());
    let stem = file_stem(&keys.apex);
    let zone_form = dir.join(format!("{stem}.key"));
    let conf_form = dir.join(format!("{stem}.anchors"));
    let zone_text = format!(
        "; The trust anchor of {owner}: a DS of its key-signing key (tag {tag}), made by dnstrail.\n\
         ; Unbound: trust-anchor-file: \"{path}\"; dnstrail resolver --trust-anchor {path}\n\
         {owner} {ttl} IN DS {tag} {alg} 2 {hex}\n\
         ; its DNSKEY, for reading: {owner} IN DNSKEY {dnskey}\n",
        path = zone_form.display(),
        ttl = super::DNSKEY_TTL,
        tag = keys.ksk.tag,
        alg = u8::from(keys.ksk.algorithm()),
        dnskey = keys.ksk.dnskey(),
    );
    let conf_text = format!(
        "// The trust anchor of {owner} for delv -a (and named.conf), made by dnstrail.\n\
         trust-anchors {{\n    \"{owner}\" static-ds {tag} {alg} 2 \"{hex}\";\n}};\n",
        tag = keys.ksk.tag,
        alg = u8::from(keys.ksk.algorithm()),
    );
    for (path, text) in [(&zone_form, zone_text), (&conf_form, conf_text)] {
        write_if_changed(path, &text)?;
    }
    Ok((zone_form, conf_form))
}

/// Write `text` to `path` unless it already holds it, atomically (a
/// resolver reading it never sees half a file).
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_an_anchor_read_the_same() {
        let zone = TrustAnchors::parse(
            ". 3600 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
        )
        .unwrap();
        let conf = TrustAnchors::parse(
            "trust-anchors {\n \".\" static-ds 20326 8 2 \"E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\";\n};\n",
        )
        .unwrap();
        for anchors in [zone, conf] {
            assert_eq!(anchors.anchors.len(), 1);
            assert!(anchors.anchors[0].zone.is_root());
            assert_eq!(anchors.anchors[0].tags(), [20326]);
        }
    }
}
