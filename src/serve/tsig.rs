//! Transaction signatures (TSIG, RFC 8945): a query signed with a shared
//! key is answered only if the signature checks out, and the answer is
//! signed in turn.
//!
//! ```text
//!  signed query ──► key known? ──no──► NOTAUTH, TSIG error BADKEY (unsigned)
//!                      │yes
//!                      ▼
//!                 MAC right? ──no──► NOTAUTH, BADSIG (unsigned)
//!                      │yes
//!                      ▼
//!                 time within fudge? ──no──► NOTAUTH, BADTIME (signed, with our time)
//!                      │yes
//!                      ▼
//!                 answered by the role, the answer signed with the same key
//! ```
//!
//! Keys come from `--tsig NAME:ALGORITHM:SECRET` (or `NAME:SECRET` for
//! hmac-sha256), the secret in base64 as `tsig-keygen` and `nsupdate -y`
//! write it. A server with no keys answers any signed query with BADKEY, as
//! NSD does. The cryptography is hickory-proto's (`TSigner`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{
    TSIG, TsigAlgorithm, TsigError, make_tsig_record, signed_bitmessage_to_buf,
};
use hickory_proto::rr::{Name, Record, TSigResponseContext, TSigner};

/// How far apart the signer's clock and ours may be (RFC 8945 §10
/// recommends 300 s).
const FUDGE: u16 = 300;

/// The keys a server knows.
#[derive(Clone, Default)]
pub struct TsigKeys(Arc<Vec<TSigner>>);

impl std::fmt::Debug for TsigKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The names only: secrets are never printed.
        let names: Vec<String> = self.0.iter().map(|k| k.signer_name().to_string()).collect();
        f.debug_tuple("TsigKeys").field(&names).finish()
    }
}

/// One key, as the command line gives it. Shows its name, never its secret.
#[derive(Clone)]
pub struct TsigKey(pub TSigner);

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TsigKey({})", self.0.signer_name())
    }
}

/// Parse `NAME:ALGORITHM:SECRET`, `ALGORITHM:NAME:SECRET` (as `nsupdate -y`
/// writes it) or `NAME:SECRET` (hmac-sha256).
pub fn parse_key(text: &str) -> Result<TsigKey, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let algorithm_of = |name: &str| {
        TsigAlgorithm::from_name(Name::from_ascii(name).ok()?)
            .supported()
            .then(|| TsigAlgorithm::from_name(Name::from_ascii(name).expect("parsed above")))
    };
    let (name, algorithm, secret) = match parts[..] {
        [name, secret] => (name, TsigAlgorithm::HmacSha256, secret),
        [first, second, secret] => match (algorithm_of(second), algorithm_of(first)) {
            (Some(algorithm), _) => (first, algorithm, secret),
            (None, Some(algorithm)) => (second, algorithm, secret),
            (None, None) => {
                return Err(format!(
                    "--tsig {}: no algorithm this server knows (hmac-sha256, hmac-sha384, hmac-sha512)",
                    redact(text)
                ));
            }
        },
        _ => {
            return Err(format!(
                "--tsig {}: expected NAME:ALGORITHM:SECRET or NAME:SECRET",
                redact(text)
            ));
        }
    };
    let key = data_encoding::BASE64
        .decode(secret.as_bytes())
        .map_err(|_| format!("--tsig {}: the secret is not base64", redact(text)))?;
    let name = Name::from_ascii(name)
        .map_err(|_| format!("--tsig {}: `{name}` is not a key name", redact(text)))?;
    TSigner::new(key, algorithm, name, FUDGE)
        .map(TsigKey)
        .map_err(|e| format!("--tsig {}: {e}", redact(text)))
}

/// A key spec with its secret hidden, for messages.
fn redact(text: &str) -> String {
    match text.rsplit_once(':') {
        Some((rest, _)) => format!("{rest}:…"),
        None => "…".into(),
    }
}

/// What checking a signed query found.
pub enum Checked {
    /// The signature is good: answer, and sign the answer with this key.
    Verified {
        signer: TSigner,
        request_mac: Vec<u8>,
    },
    /// Refuse with NOTAUTH and this TSIG record (signed or not, as the RFC
    /// says for each error).
    Refused(Refusal),
}

/// A refused signed query: what went wrong, to be put in the answer's TSIG.
pub struct Refusal {
    pub error: TsigError,
    context: RefusalContext,
}

enum RefusalContext {
    UnknownKey(Name),
    BadSignature(TSigner),
    BadTime {
        signer: TSigner,
        request_mac: Vec<u8>,
    },
}

/// Seconds since the epoch, as TSIG counts time.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TsigKeys {
    pub fn new(keys: Vec<TsigKey>) -> TsigKeys {
        TsigKeys(Arc::new(keys.into_iter().map(|k| k.0).collect()))
    }

    /// Check the signature of `message` (whose bytes are `raw`), which has
    /// one. RFC 8945 §5.2: key, then MAC, then time.
    pub fn check(&self, raw: &[u8], message: &Message) -> Checked {
        let signature = message
            .signature
            .as_ref()
            .expect("called for signed messages");
        let known = self.0.iter().find(|k| {
            *k.signer_name() == signature.name && *k.algorithm() == signature.data.algorithm
        });
        let Some(signer) = known else {
            return Checked::Refused(Refusal {
                error: TsigError::BadKey,
                context: RefusalContext::UnknownKey(signature.name.clone()),
            });
        };
        // The MAC, over the message as signed (hickory rebuilds those bytes);
        // whole-length MACs only, as hickory's own verifier insists (a
        // truncated MAC is weaker, and fails to verify here).
        let verified = signed_bitmessage_to_buf(raw, None, true)
            .ok()
            .filter(|(tbv, record)| signer.verify(tbv, &record.data.mac).is_ok());
        let Some((_, record)) = verified else {
            return Checked::Refused(Refusal {
                error: TsigError::BadSig,
                context: RefusalContext::BadSignature(signer.clone()),
            });
        };
        // Then the time, with arithmetic that cannot wrap whatever a client
        // puts in the record.
        let signed = record.data.time;
        let fudge = u64::from(record.data.fudge);
        let request_mac = record.data.mac.clone();
        if !(signed.saturating_sub(fudge)..=signed.saturating_add(fudge)).contains(&now()) {
            return Checked::Refused(Refusal {
                error: TsigError::BadTime,
                context: RefusalContext::BadTime {
                    signer: signer.clone(),
                    request_mac,
                },
            });
        }
        Checked::Verified {
            signer: signer.clone(),
            request_mac,
        }
    }
}

/// The TSIG record for an answer to a verified query: its MAC covers the
/// query's MAC and the answer's bytes.
pub fn sign_answer(
    id: u16,
    signer: &TSigner,
    request_mac: &[u8],
    answer: &[u8],
) -> Option<Record<TSIG>> {
    TSigResponseContext::new(id, now(), signer.clone(), request_mac.to_vec(), None)
        .sign(answer)
        .ok()
        .map(|record| *record)
}

impl Refusal {
    /// The TSIG record for the NOTAUTH answer to a refused query. BADKEY and
    /// BADSIG go unsigned (the key is unknown, or the client's MAC cannot be
    /// trusted); BADTIME is signed and carries our time in "other data", so
    /// the client can see how far off its clock is.
    pub fn record(&self, id: u16, answer: &[u8]) -> Option<Record<TSIG>> {
        let time = now();
        match &self.context {
            RefusalContext::UnknownKey(name) => {
                TSigResponseContext::unknown_key(id, time, name.clone())
                    .sign(answer)
                    .ok()
                    .map(|r| *r)
            }
            RefusalContext::BadSignature(signer) => {
                TSigResponseContext::bad_signature(id, time, signer.clone())
                    .sign(answer)
                    .ok()
                    .map(|r| *r)
            }
            RefusalContext::BadTime {
                signer,
                request_mac,
            } => {
                let ours = time.to_be_bytes()[2..].to_vec();
                let stub = TSIG::new(
                    signer.algorithm().clone(),
                    time,
                    signer.fudge(),
                    Vec::new(),
                    id,
                    Some(TsigError::BadTime),
                    ours,
                );
                let tbs = signer
                    .encode_response_tbs(request_mac, answer, &stub)
                    .ok()?;
                let mac = signer.sign(&tbs).ok()?;
                Some(make_tsig_record(
                    signer.signer_name().clone(),
                    stub.set_mac(mac),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_in_every_order_people_write_them() {
        let secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
        for spec in [
            format!("lab-key:hmac-sha256:{secret}"),
            format!("hmac-sha256:lab-key:{secret}"),
            format!("lab-key:{secret}"),
        ] {
            let key = parse_key(&spec).unwrap().0;
            assert_eq!(key.signer_name().to_string(), "lab-key.");
            assert_eq!(*key.algorithm(), TsigAlgorithm::HmacSha256);
        }
        let error = parse_key("lab-key:hmac-md5:c2VjcmV0").err().unwrap();
        assert!(
            !error.contains("c2VjcmV0"),
            "the secret is not printed: {error}"
        );
        assert!(parse_key("lab-key:not base64!").is_err());
    }
}
