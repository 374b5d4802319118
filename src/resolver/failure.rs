//! Why a resolution failed, in the words of Extended DNS Errors (RFC 8914).
//!
//! ```text
//!  walk ──Failure { kind, reason }──► cache (RFC 9520) ──► Reply.extended_error
//!                                                          (EDNS option 15: dig's "EDE:")
//! ```
//!
//! A SERVFAIL alone tells the client nothing. Every failure the walk meets
//! carries a kind, chosen where it happens, and the words of the trace; the
//! kind maps to the RFC 8914 info code the client sees, the words become its
//! extra text.

use crate::serve::ExtendedError;

/// What went wrong, as far as the client should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Every server of a zone timed out, refused, failed, was lame or held
    /// down, or none had a usable address (RFC 8914 §4.23, code 22).
    NoReachableAuthority,
    /// Talking to the servers failed below DNS: connections refused, ICMP
    /// errors (§4.24, code 23).
    NetworkError,
    /// The servers answered with messages that do not parse (§4.25, 24).
    InvalidData,
    /// The same question failed a moment ago and the failure is remembered
    /// (RFC 9520; §4.14, code 13).
    CachedError,
    /// The client may not use this resolver (§4.19, code 18).
    Prohibited,
    /// A question a resolver does not answer: a zone transfer (§4.22,
    /// code 21).
    NotSupported,
    /// A limit of the walk: too many referrals, queries or CNAMEs, or the
    /// time budget spent (§4.1, code 0 with text).
    Other,
    /// DNSSEC: the data is signed, but a signature or a link of the chain
    /// of trust does not check out (§4.7, code 6).
    DnssecBogus,
    /// DNSSEC: every signature that would do has expired (§4.8, 7).
    SignatureExpired,
    /// DNSSEC: every signature that would do is not valid yet (§4.9, 8).
    SignatureNotYetValid,
    /// DNSSEC: no DNSKEY of the zone is the one its DS (or the trust
    /// anchor, or an RRSIG) names (§4.10, 9).
    DnskeyMissing,
    /// DNSSEC: a secure zone's data came without RRSIGs (§4.11, 10).
    RrsigsMissing,
    /// DNSSEC: a secure zone's denial came without the NSEC (or NSEC3)
    /// records that prove it, or a DS was left out (§4.13, 12).
    NsecMissing,
}

impl FailureKind {
    /// The RFC 8914 INFO-CODE.
    pub fn code(self) -> u16 {
        match self {
            FailureKind::Other => 0,
            FailureKind::CachedError => 13,
            FailureKind::Prohibited => 18,
            FailureKind::NotSupported => 21,
            FailureKind::NoReachableAuthority => 22,
            FailureKind::NetworkError => 23,
            FailureKind::InvalidData => 24,
            FailureKind::DnssecBogus => 6,
            FailureKind::SignatureExpired => 7,
            FailureKind::SignatureNotYetValid => 8,
            FailureKind::DnskeyMissing => 9,
            FailureKind::RrsigsMissing => 10,
            FailureKind::NsecMissing => 12,
        }
    }

    /// The kind for an EDE code from the DNSSEC checks.
    pub fn from_dnssec_code(code: u16) -> FailureKind {
        match code {
            7 => FailureKind::SignatureExpired,
            8 => FailureKind::SignatureNotYetValid,
            9 => FailureKind::DnskeyMissing,
            10 => FailureKind::RrsigsMissing,
            12 => FailureKind::NsecMissing,
            _ => FailureKind::DnssecBogus,
        }
    }

    /// A failure of validation: data that is there, but bogus.
    pub fn is_dnssec(self) -> bool {
        matches!(
            self,
            FailureKind::DnssecBogus
                | FailureKind::SignatureExpired
                | FailureKind::SignatureNotYetValid
                | FailureKind::DnskeyMissing
                | FailureKind::RrsigsMissing
                | FailureKind::NsecMissing
        )
    }
}

/// A failed resolution: its kind, and why in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
}

impl Failure {
    pub fn new(kind: FailureKind, reason: impl Into<String>) -> Failure {
        Failure {
            kind,
            reason: reason.into(),
        }
    }

    /// No server of a zone could be used.
    pub fn unreachable(reason: impl Into<String>) -> Failure {
        Failure::new(FailureKind::NoReachableAuthority, reason)
    }

    /// A limit of the walk was reached.
    pub fn limit(reason: impl Into<String>) -> Failure {
        Failure::new(FailureKind::Other, reason)
    }

    /// The same failure, served from the failure cache. Bogus data stays
    /// bogus: a client asking again is told the same DNSSEC reason, as
    /// Unbound does from its bogus cache.
    pub fn cached(&self) -> Failure {
        if self.kind.is_dnssec() {
            return self.clone();
        }
        Failure::new(FailureKind::CachedError, self.reason.clone())
    }

    /// What the client is told in the EDNS option.
    pub fn extended_error(&self) -> ExtendedError {
        ExtendedError {
            code: self.kind.code(),
            text: self.reason.clone(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// An answer served stale (RFC 8767) says so (RFC 8914 §4.4, code 3).
pub fn stale_answer(expired_for: u64) -> ExtendedError {
    ExtendedError {
        code: 3,
        text: format!("expired {expired_for} s ago; no server of the zone answered"),
    }
}
