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
    /// A limit of the walk: too many referrals, queries or CNAMEs, or the
    /// time budget spent (§4.1, code 0 with text).
    Other,
}

impl FailureKind {
    /// The RFC 8914 INFO-CODE.
    pub fn code(self) -> u16 {
        match self {
            FailureKind::Other => 0,
            FailureKind::CachedError => 13,
            FailureKind::Prohibited => 18,
            FailureKind::NoReachableAuthority => 22,
            FailureKind::NetworkError => 23,
            FailureKind::InvalidData => 24,
        }
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

    /// The same failure, served from the failure cache.
    pub fn cached(&self) -> Failure {
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
