//! Name servers that misbehave on purpose, so the resolver's retries and
//! server choice can be seen: `demo --fail ns-2 --fault drop`, `dnstrail
//! auth --fault servfail`, or at run time through the control endpoint.
//!
//! ```text
//!  drop          the query is read and never answered (a dead server)
//!  servfail      every answer is SERVFAIL (a broken server)
//!  refused       every answer is REFUSED (a server that was not told it
//!                serves the zone: a lame delegation, RFC 1912 §2.8)
//!  lame          NOERROR, not authoritative, nothing in it (lame, too)
//!  truncate      over UDP every answer is empty with TC=1; TCP works
//!  delay=200ms   every answer comes, late (a slow or distant server)
//!
//!  with --dnssec, faults of the chain of trust (answers to DO=1 only):
//!  bad-signature       every RRSIG it sends has a byte flipped
//!  expired-signature   every RRSIG it sends expired a week ago
//!  missing-ds          the DS of its children is left out (its NSEC
//!                      still says there is one)
//!  wrong-ds            the DS of its children names no key of theirs
//! ```
//!
//! A DS lives in the parent, so `--fail example.com. --fault wrong-ds`
//! breaks the servers of `com.` (see [`Fault::in_parent`]); the other
//! faults break the servers named.
//!
//! A fault is a layer of the serving pipeline ([`crate::serve`]), held in
//! a [`FaultSwitch`] that can be flipped while the server runs.

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::ResponseCode;

use crate::dns::Transport;
use crate::serve::Reply;

/// How a failing server fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Drop,
    ServFail,
    Refused,
    Lame,
    Truncate,
    Delay(Duration),
    BadSignature,
    ExpiredSignature,
    MissingDs,
    WrongDs,
}

/// Every fault's name, for help texts and errors.
pub const FAULT_KINDS: &str = "drop, servfail, refused, lame, truncate, delay=DURATION, bad-signature, expired-signature, missing-ds or wrong-ds";

impl Fault {
    /// The reply a faulty server gives instead of its real one, if it gives
    /// one at all; `None` lets the real answer through (after a delay, or
    /// over TCP when only UDP is truncated). Dropping happens before this.
    pub fn reply(self, transport: Transport) -> Option<Reply> {
        match self {
            Fault::Drop | Fault::Delay(_) => None,
            Fault::ServFail => Some(Reply::rcode(ResponseCode::ServFail)),
            Fault::Refused => Some(Reply::rcode(ResponseCode::Refused)),
            Fault::Lame => Some(Reply::rcode(ResponseCode::NoError)),
            Fault::Truncate if transport == Transport::Udp => Some(Reply {
                // An empty reply that cannot fit: the encoder sends TC=1.
                truncated: true,
                ..Reply::default()
            }),
            Fault::Truncate => None,
            // Bent by the name server's signing, not here.
            Fault::BadSignature | Fault::ExpiredSignature | Fault::MissingDs | Fault::WrongDs => {
                None
            }
        }
    }

    /// A fault of the chain of trust: only a signing name server has it.
    pub fn is_dnssec(self) -> bool {
        matches!(
            self,
            Fault::BadSignature | Fault::ExpiredSignature | Fault::MissingDs | Fault::WrongDs
        )
    }

    /// Whether `--fail ZONE` with this fault means the zone's parent: a
    /// zone's DS is served by the servers of the zone above it.
    pub fn in_parent(self) -> bool {
        matches!(self, Fault::MissingDs | Fault::WrongDs)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Drop => f.write_str("drop"),
            Fault::ServFail => f.write_str("servfail"),
            Fault::Refused => f.write_str("refused"),
            Fault::Lame => f.write_str("lame"),
            Fault::Truncate => f.write_str("truncate"),
            Fault::Delay(d) => write!(f, "delay={}ms", d.as_millis()),
            Fault::BadSignature => f.write_str("bad-signature"),
            Fault::ExpiredSignature => f.write_str("expired-signature"),
            Fault::MissingDs => f.write_str("missing-ds"),
            Fault::WrongDs => f.write_str("wrong-ds"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        match text {
            "drop" => Ok(Fault::Drop),
            "servfail" => Ok(Fault::ServFail),
            "refused" => Ok(Fault::Refused),
            "lame" => Ok(Fault::Lame),
            "truncate" => Ok(Fault::Truncate),
            "bad-signature" => Ok(Fault::BadSignature),
            "expired-signature" => Ok(Fault::ExpiredSignature),
            "missing-ds" => Ok(Fault::MissingDs),
            "wrong-ds" => Ok(Fault::WrongDs),
            _ => {
                let delay = text
                    .strip_prefix("delay=")
                    .ok_or_else(|| format!("unknown fault `{text}`: expected {FAULT_KINDS}"))?;
                crate::cli::parse_duration(delay)
                    .and_then(|d| {
                        if d > Duration::from_secs(60) {
                            Err(format!("`{delay}` is longer than a minute"))
                        } else {
                            Ok(d)
                        }
                    })
                    .map(Fault::Delay)
            }
        }
    }
}

/// The fault a server has now, if any: shared between the serving
/// pipeline, which reads it for every message, and whoever breaks and heals
/// the server.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<RwLock<Option<Fault>>>);

impl FaultSwitch {
    /// A switch already set to `fault`.
    pub fn new(fault: Option<Fault>) -> FaultSwitch {
        FaultSwitch(Arc::new(RwLock::new(fault)))
    }

    pub fn get(&self) -> Option<Fault> {
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Break the server (`Some`) or heal it (`None`).
    pub fn set(&self, fault: Option<Fault>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = fault;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_as_written_on_the_command_line() {
        for kind in [
            "drop",
            "servfail",
            "refused",
            "lame",
            "truncate",
            "bad-signature",
            "expired-signature",
            "missing-ds",
            "wrong-ds",
        ] {
            assert_eq!(kind.parse::<Fault>().unwrap().to_string(), kind);
        }
        assert_eq!(
            "delay=200ms".parse(),
            Ok(Fault::Delay(Duration::from_millis(200)))
        );
        assert_eq!(
            "delay=1.5s".parse(),
            Ok(Fault::Delay(Duration::from_millis(1500)))
        );
        assert!("delay=fast".parse::<Fault>().is_err());
        assert!("delay=2h".parse::<Fault>().is_err());
        assert!("explode".parse::<Fault>().is_err());
    }
}
