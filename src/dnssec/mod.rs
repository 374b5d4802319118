//! DNSSEC on loopback: zones signed with keys we make, DS records in every
//! parent, a trust anchor written to a file, and the resolver's checks of
//! the chain of trust.
//!
//! ```text
//!  --keys DIR ──► keys: a key-signing key (KSK, flags 257) and a zone-signing
//!                 key (ZSK, 256) per zone, algorithm 13 by default, PKCS#8
//!                 files of mode 0600, made on first use and reused after
//!      │
//!      ├──► sign: each zone gets its DNSKEY RRset, an NSEC chain, and the DS
//!      │          of every child whose keys we hold; RRSIGs are made per
//!      │          RRset on first use, cached, and renewed before they expire
//!      │
//!      └──► anchor: root.key (DS, the form Unbound's trust-anchor-file and
//!                   our --trust-anchor read) and root.anchors (the
//!                   `trust-anchors { }` form `delv -a` reads)
//!
//!  resolver ──► validate: RRSIGs checked with the zone's DNSKEYs, DNSKEYs
//!               against the parent's DS (or the anchor), denials proven by
//!               NSEC or NSEC3; each check a trace event
//! ```
//!
//! Choices, and why:
//!
//! - **Two keys per zone**, as Route 53 has them: the KSK signs only the
//!   DNSKEY RRset and is what the parent's DS names; the ZSK signs the rest.
//!   So the story can tell both links: "com.'s DS names key N" and "com.'s
//!   DNSKEY, signed by key N, holds the key that signed the answer".
//! - **NSEC, a full chain** computed when the zone is loaded (zones are
//!   fixed once loaded, so the chain never changes): denials are what
//!   `dnssec-signzone` makes and `dig +dnssec` shows DNS engineers, a zone
//!   transfer passes `dnssec-verify`, and no signature is made for a denial
//!   at question time. The price is that the zone can be walked, as any
//!   NSEC-signed zone can; nothing in a lab zone is secret.
//! - **Signatures** are valid from an hour before they are made (clocks
//!   differ) for 14 days, and renewed when fewer than 7 days are left, by a
//!   task of the name server's own (and, should it fall behind, on use).
//!
//! hickory-proto does the cryptography (its signing keys, `TBS`, DNSKEY's
//! `Verifier`) and the record types; nothing here hashes or signs by hand.

pub mod anchor;
pub mod keys;
pub mod sign;
pub mod text;
pub mod validate;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use anchor::TrustAnchors;
pub use keys::{KeyStore, ZoneKeys};
pub use sign::Signing;

/// How long a signature is valid, from its inception.
pub const SIGNATURE_VALIDITY: Duration = Duration::from_secs(14 * 86_400);
/// How far back a signature's inception is put, for clocks that lag ours.
pub const INCEPTION_SKEW: Duration = Duration::from_secs(3600);
/// A signature with less than this left is made again.
pub const RENEW_BEFORE: Duration = Duration::from_secs(7 * 86_400);
/// The TTL of the DNSKEY RRset we publish.
pub const DNSKEY_TTL: u32 = 3600;

/// What a check of the chain of trust found (RFC 4035 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Signed all the way up to the trust anchor.
    Secure,
    /// Provably unsigned: a parent proved its child has no DS.
    Insecure,
    /// Signed, but something does not check out.
    Bogus,
    /// No trust anchor covers it.
    Indeterminate,
}

impl std::fmt::Display for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::Secure => "secure",
            Security::Insecure => "insecure",
            Security::Bogus => "bogus",
            Security::Indeterminate => "indeterminate",
        })
    }
}

/// Seconds since the Unix epoch, as RRSIG times count them.
pub fn unix_now() -> u32 {
    unix_time(SystemTime::now())
}

pub fn unix_time(at: SystemTime) -> u32 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Whether `a` is before `b` in RFC 1982 serial-number arithmetic, the way
/// RRSIG times compare (RFC 4034 §3.1.5): they wrap in 2106.
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}
