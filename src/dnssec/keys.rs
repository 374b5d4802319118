//! A zone's keys: made on first use into `--keys DIR`, read from there
//! after, so that a DS in a parent and the trust anchor stay valid across
//! restarts (and across processes sharing the directory).
//!
//! ```text
//!  DIR/                     mode 0700
//!    root-13-ksk.pk8        mode 0600: the root's key-signing key (PKCS#8 DER)
//!    root-13-zsk.pk8        the root's zone-signing key
//!    com-13-ksk.pk8 …       one pair per zone, named after the apex
//!    root.key               the trust anchor (see `anchor`)
//! ```
//!
//! The algorithm is in the name, so asking for another algorithm makes new
//! keys rather than misreading old ones. A key is written to a temporary
//! file and linked into place only if no other process got there first, in
//! which case that process's key is read and used: two name servers
//! started at once from one directory agree on their keys. Private keys are
//! never printed; only their public halves (DNSKEY) and key tags are.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{Algorithm, DnssecSigner, SigningKey};
use hickory_proto::rr::{Name, RData, Record};
use rustls_pki_types::PrivatePkcs8KeyDer;

use super::{DNSKEY_TTL, SIGNATURE_VALIDITY};

/// The algorithms keys can be made with: ECDSA P-256 (13, Route 53's and
/// the default), ECDSA P-384 (14), Ed25519 (15).
pub const ALGORITHMS: &str = "13 (ECDSAP256SHA256), 14 (ECDSAP384SHA384) or 15 (ED25519)";

/// Read `13`, `ECDSAP256SHA256`, … as an algorithm we can sign with.
pub fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    let algorithm = match text.to_ascii_uppercase().as_str() {
        "13" | "ECDSAP256SHA256" => Algorithm::ECDSAP256SHA256,
        "14" | "ECDSAP384SHA384" => Algorithm::ECDSAP384SHA384,
        "15" | "ED25519" => Algorithm::ED25519,
        _ => return Err(format!("`{text}`: expected {ALGORITHMS}")),
    };
    Ok(algorithm)
}

/// One key of a zone: what signs, and its public half.
pub struct Key {
    pub signer: DnssecSigner,
    pub tag: u16,
}

impl Key {
    pub fn dnskey(&self) -> &DNSKEY {
        self.signer.dnskey()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.signer.key().algorithm()
    }

    /// The DNSKEY record at `apex`.
    pub fn record(&self, apex: &Name) -> Record {
        Record::from_rdata(apex.clone(), DNSKEY_TTL, RData::from(self.dnskey().clone()))
    }
}

/// A zone's key-signing and zone-signing keys.
pub struct ZoneKeys {
    pub apex: Name,
    pub ksk: Key,
    pub zsk: Key,
}

impl std::fmt::Debug for ZoneKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private keys: only what is public.
        write!(
            f,
            "ZoneKeys({} ksk {} zsk {})",
            self.apex, self.ksk.tag, self.zsk.tag
        )
    }
}

/// Where keys live.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    algorithm: Algorithm,
}

impl KeyStore {
    /// The directory (made, mode 0700, if missing) and the algorithm of
    /// new keys.
    pub fn open(dir: &Path, algorithm: Algorithm) -> Result<KeyStore, String> {
        let problem = |e: std::io::Error| format!("--keys {}: {e}", dir.display());
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(problem)?;
        }
        // Only its owner may list or read the private keys.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(problem)?;
        Ok(KeyStore {
            dir: dir.to_path_buf(),
            algorithm,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The keys of the zone at `apex`, made now if they do not exist yet.
    pub fn zone_keys(&self, apex: &Name) -> Result<ZoneKeys, String> {
        Ok(ZoneKeys {
            apex: apex.clone(),
            ksk: self.key(apex, true)?,
            zsk: self.key(apex, false)?,
        })
    }

    /// Where a key of `apex` is kept.
    pub fn key_path(&self, apex: &Name, ksk: bool) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{}.pk8",
            file_stem(apex),
            u8::from(self.algorithm),
            if ksk { "ksk" } else { "zsk" }
        ))
    }

    fn key(&self, apex: &Name, ksk: bool) -> Result<Key, String> {
        let path = self.key_path(apex, ksk);
        let der = match fs::read(&path) {
            Ok(der) => der,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.make(&path)?,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let signing = signing_key(&der, self.algorithm).map_err(|e| {
            format!(
                "{}: not a key for algorithm {}: {e}",
                path.display(),
                self.algorithm
            )
        })?;
        let public = signing
            .to_public_key()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // 257: zone key and secure entry point (the KSK); 256: zone key.
        let dnskey = DNSKEY::with_flags(if ksk { 257 } else { 256 }, public);
        let tag = dnskey
            .calculate_key_tag()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Key {
            signer: DnssecSigner::new(dnskey, signing, apex.clone(), SIGNATURE_VALIDITY),
            tag,
        })
    }

    /// Make a key and put it at `path`, unless another process just did:
    /// then theirs is the key.
    fn make(&self, path: &Path) -> Result<Vec<u8>, String> {
        let der = generate(self.algorithm).map_err(|e| format!("making a key: {e}"))?;
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&der)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(format!("{}: {e}", temp.display()));
        }
        let linked = fs::hard_link(&temp, path);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(der),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// A file-name stem for a zone: `root`, `com`, `example.com`, with any
/// byte that does not belong in a file name written as `%XX`.
pub fn file_stem(apex: &Name) -> String {
    if apex.is_root() {
        return "root".into();
    }
    let text = apex.to_ascii().to_ascii_lowercase();
    let mut out = String::new();
    for b in text.trim_end_matches('.').bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn generate(algorithm: Algorithm) -> Result<Vec<u8>, String> {
    let der = match algorithm {
        Algorithm::ED25519 => Ed25519SigningKey::generate_pkcs8(),
        other => EcdsaSigningKey::generate_pkcs8(other),
    }
    .map_err(|e| e.to_string())?;
    Ok(der.secret_pkcs8_der().to_vec())
}

fn signing_key(der: &[u8], algorithm: Algorithm) -> Result<Box<dyn SigningKey>, String> {
    let der = PrivatePkcs8KeyDer::from(der.to_vec());
    match algorithm {
        Algorithm::ED25519 => Ed25519SigningKey::from_pkcs8(&der)
            .map(|k| Box::new(k) as Box<dyn SigningKey>)
            .map_err(|e| e.to_string()),
        other => EcdsaSigningKey::from_pkcs8(&der, other)
            .map(|k| Box::new(k) as Box<dyn SigningKey>)
            .map_err(|e| e.to_string()),
    }
}

/// Where keys go unless `--keys` says: `keys/` in the zone directory, or
/// for the built-in zones a state directory of the user's
/// (`$XDG_STATE_HOME/dnstrail/keys`, `~/.local/state/dnstrail/keys`).
pub fn default_dir(zones: Option<&Path>) -> PathBuf {
    if let Some(dir) = zones {
        return dir.join("keys");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("dnstrail").join("keys")
}
