//! Which server answered: NSID (RFC 5001) and the CHAOS-class names of RFC
//! 4892, which people who run several servers for one zone rely on.
//!
//! ```text
//! dig +nsid @127.0.0.5 -p 5300 www.example.com   ; NSID: ns-2.awsdns-02.com
//! dig CH TXT id.server @127.0.0.5 -p 5300        ; "ns-2.awsdns-02.com"
//! dig CH TXT version.bind @127.0.0.5 -p 5300     ; "dnstrail 0.1.0" (or REFUSED)
//! ```
//!
//! `id.server.` and `hostname.bind.` say the same name NSID does;
//! `version.server.` and `version.bind.` the version, unless hidden.

use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::Reply;

/// This server's name and what it tells of itself.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub name: Option<Arc<str>>,
    pub nsid: bool,
    pub hide_version: bool,
}

/// What a CHAOS TXT question asks for.
enum Asked {
    Name,
    Version,
}

fn asked(name: &Name) -> Option<Asked> {
    let lower = LowerName::new(name).to_string();
    match lower.as_str() {
        "id.server." | "hostname.bind." => Some(Asked::Name),
        "version.server." | "version.bind." => Some(Asked::Version),
        _ => None,
    }
}

impl Identity {
    /// The NSID option for an answer to `query`, if it asked and we say.
    pub fn nsid_for(&self, query: &Message) -> Option<EdnsOption> {
        let asked = query
            .edns
            .as_ref()
            .is_some_and(|e| e.option(EdnsCode::NSID).is_some());
        let name = self.name.as_ref().filter(|_| self.nsid && asked)?;
        Some(EdnsOption::Unknown(
            u16::from(EdnsCode::NSID),
            name.as_bytes().to_vec(),
        ))
    }

    /// The answer to a CHAOS-class question about this server, if it is
    /// one (any other CHAOS question is refused by the mandatory checks).
    pub fn answer(&self, query: &Message) -> Option<Reply> {
        let [question] = &query.queries[..] else {
            return None;
        };
        if question.query_class() != DNSClass::CH
            || !matches!(question.query_type(), RecordType::TXT | RecordType::ANY)
        {
            return None;
        }
        let text = match asked(question.name())? {
            Asked::Name => self.name.as_deref()?.to_string(),
            Asked::Version if self.hide_version => {
                return Some(Reply::rcode(ResponseCode::Refused));
            }
            Asked::Version => format!("dnstrail {}", env!("CARGO_PKG_VERSION")),
        };
        let mut record =
            Record::from_rdata(question.name().clone(), 0, RData::TXT(TXT::new(vec![text])));
        record.dns_class = DNSClass::CH;
        Some(Reply {
            authoritative: true,
            answers: vec![record],
            ..Reply::default()
        })
    }
}
