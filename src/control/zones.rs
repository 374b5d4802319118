//! The hosted zones as the lab shows and changes them.
//!
//! ```text
//! curl -s 127.0.0.1:5380/zones                  # each zone, its serial on every server: INSYNC or PENDING
//! curl -s 127.0.0.1:5380/zones/example.com      # the same for one zone, with its records
//! curl -s -X POST '127.0.0.1:5380/zones/example.com/records?op=set&name=www&type=A&ttl=60&data=192.0.2.9'
//! curl -s '127.0.0.1:5380/zones/example.com/compare?name=www&type=A'
//! ```
//!
//! A change goes the way an `nsupdate` goes (see
//! [`crate::nameserver::update`]): checked as a loaded zone is, written to
//! the journal, put in place, the serial raised, secondaries in other
//! processes notified. The serials are asked of each server over DNS (its
//! SOA), as Route 53's change status is: every server at the new serial is
//! INSYNC, until then PENDING. `compare` puts what the name servers say
//! beside what the resolver's cache will keep saying, and for how long:
//! the question everyone who changed a record asks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use serde::Serialize;

use crate::exchange::{Transport, exchange, make_query};
use crate::nameserver::update::{Refused, apply_records};
use crate::nameserver::{LiveZone, answer_from, replication};
use crate::resolver::Resolver;
use crate::trace::{RecordView, rcode_name, rtype_name};
use crate::zone::Zone;

/// How long a server has to tell its serial before it is listed as silent.
const SERIAL_WAIT: Duration = Duration::from_millis(700);
/// The most records one zone listing carries.
const MAX_LISTED: usize = 2000;

/// A zone the endpoint may show and change, and where all its servers
/// listen (in this process or not).
#[derive(Clone)]
pub struct HostedZone {
    pub live: Arc<LiveZone>,
    pub servers: Vec<(String, SocketAddr)>,
}

impl HostedZone {
    /// Whether `apex` (`example.com`, `example.com.`, any case) names it.
    pub fn is(&self, apex: &str) -> bool {
        let apex = apex.trim_end_matches('.');
        self.live
            .snapshot()
            .origin()
            .to_ascii()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(apex)
    }
}

/// A zone, its serial here, and the serial every server of it tells.
#[derive(Debug, Serialize)]
pub struct ZoneStatus {
    pub apex: String,
    pub serial: u32,
    /// `INSYNC` when every server tells this serial, else `PENDING`.
    pub status: &'static str,
    pub servers: Vec<ServerSerial>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordView>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
pub struct ServerSerial {
    pub name: String,
    pub addr: SocketAddr,
    /// The serial its SOA carries; none when it did not answer.
    pub serial: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The zone now, each server asked for its serial at once.
pub async fn status(zone: &HostedZone, with_records: bool) -> ZoneStatus {
    let snapshot = zone.live.snapshot();
    let apex = snapshot.origin().clone();
    let asked = zone.servers.iter().map(|(name, addr)| {
        let apex = apex.clone();
        async move {
            let (serial, error) = match ask_serial(*addr, &apex).await {
                Ok(serial) => (Some(serial), None),
                Err(why) => (None, Some(why)),
            };
            ServerSerial {
                name: name.clone(),
                addr: *addr,
                serial,
                error,
            }
        }
    });
    let servers = futures_util::future::join_all(asked).await;
    let in_sync = servers.iter().all(|s| s.serial == Some(snapshot.serial()));
    let (records, truncated) = if with_records {
        let all: Vec<Record> = snapshot.records().collect();
        let truncated = all.len() > MAX_LISTED;
        (
            Some(all.iter().take(MAX_LISTED).map(RecordView::from).collect()),
            truncated,
        )
    } else {
        (None, false)
    };
    ZoneStatus {
        apex: apex.to_string(),
        serial: snapshot.serial(),
        status: if in_sync { "INSYNC" } else { "PENDING" },
        servers,
        records,
        truncated,
    }
}

async fn ask_serial(server: SocketAddr, apex: &Name) -> Result<u32, String> {
    let query = make_query(apex, RecordType::SOA, false, false);
    let reply = exchange(server, &query, Transport::Udp, SERIAL_WAIT)
        .await
        .map_err(|e| e.to_string())?
        .response;
    reply
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *apex => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| format!("answered {}", rcode_name(reply.metadata.response_code)))
}

/// One change asked for: replace an RRset, add a record, or delete an
/// RRset (or one record of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    /// Relative to the apex (`www`) or absolute (`www.example.com.`); `@`
    /// is the apex.
    pub name: String,
    pub rtype: RecordType,
    pub ttl: Option<u32>,
    /// Record data as in a zone file (`192.0.2.9`, `10 mail.example.com.`).
    pub data: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Add,
    Delete,
}

impl Change {
    /// From the query string: `op`, `name`, `type`, `ttl`, `data`
    /// (repeatable).
    pub fn from_query(query: Option<&str>) -> Result<Change, String> {
        let pairs = super::decoded_params(query);
        let one = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim().to_string())
        };
        let op = match one("op").as_deref() {
            Some("set") | None => Op::Set,
            Some("add") => Op::Add,
            Some("delete") => Op::Delete,
            Some(other) => return Err(format!("op is set, add or delete, not `{other}`")),
        };
        let name = one("name")
            .filter(|n| !n.is_empty())
            .ok_or("name is missing")?;
        let rtype_text = one("type").ok_or("type is missing")?;
        let rtype: RecordType = rtype_text
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| format!("`{rtype_text}` is not a record type"))?;
        // Seconds, 0 to 2^31-1 (RFC 2181 §8).
        let ttl = match one("ttl").filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                t.trim_end_matches('s')
                    .parse::<u32>()
                    .ok()
                    .filter(|ttl| *ttl <= i32::MAX as u32)
                    .ok_or_else(|| {
                        format!("ttl `{t}` is not a number of seconds up to 2147483647")
                    })?,
            ),
        };
        let data: Vec<String> = pairs
            .iter()
            .filter(|(k, v)| k == "data" && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect();
        if op != Op::Delete && data.is_empty() {
            return Err("data is missing (the record's value, as in a zone file)".into());
        }
        Ok(Change {
            op,
            name,
            rtype,
            ttl,
            data,
        })
    }
}

/// What a change did.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub apex: String,
    pub serial: u32,
    pub deleted: Vec<RecordView>,
    pub added: Vec<RecordView>,
}

/// Make `change` to `zone`, as a dynamic update would.
pub fn apply(zone: &HostedZone, change: &Change) -> Result<Option<Applied>, Refused> {
    if let replication::Replication::Secondary { primaries, .. } = zone.live.replication() {
        let primaries: Vec<String> = primaries.iter().map(|p| p.to_string()).collect();
        return Err(Refused {
            rcode: ResponseCode::Refused,
            why: format!(
                "this process holds a secondary of the zone; change it at the primary, {}",
                primaries.join(" or ")
            ),
        });
    }
    // A signed zone's NSEC chain and signatures are made as it loads: a
    // change would leave them wrong (see `crate::dnssec::sign`).
    let now = zone.live.snapshot();
    if now
        .rrset(now.lower_origin(), hickory_proto::rr::RecordType::RRSIG)
        .is_some()
        || now
            .rrset(now.lower_origin(), hickory_proto::rr::RecordType::DNSKEY)
            .is_some()
    {
        return Err(Refused {
            rcode: ResponseCode::Refused,
            why: "the zone is signed (DNSSEC), and changes to a signed zone are not supported"
                .into(),
        });
    }
    let mut told = (Vec::new(), Vec::new());
    let changed = zone.live.change("lab", |now| {
        let (deleted, added) = records_of(now, change)?;
        let updated = apply_records(now, deleted, added)?;
        if let Some(updated) = &updated {
            told = (
                updated.deleted.iter().map(RecordView::from).collect(),
                updated.added.iter().map(RecordView::from).collect(),
            );
        }
        Ok(updated)
    })?;
    Ok(changed.map(|now| {
        replication::changed(&zone.live, &now);
        Applied {
            apex: now.origin().to_string(),
            serial: now.serial(),
            deleted: told.0,
            added: told.1,
        }
    }))
}

/// A name as the lab takes it: `@` for the apex, relative to the zone
/// (`www`), or absolute (`www.example.com.`).
fn owner_in(zone: &Zone, name: &str) -> Result<Name, String> {
    if name == "@" {
        return Ok(zone.origin().clone());
    }
    let parsed = Name::from_ascii(name).map_err(|e| format!("`{name}` is not a name: {e}"))?;
    if parsed.is_fqdn() {
        return Ok(parsed);
    }
    parsed
        .append_domain(zone.origin())
        .map_err(|e| format!("`{name}` is too long under {}: {e}", zone.origin()))
}

/// The records `change` deletes and adds, worked out from the zone as it is.
fn records_of(zone: &Zone, change: &Change) -> Result<(Vec<Record>, Vec<Record>), Refused> {
    let bad = |why: String| Refused {
        rcode: ResponseCode::FormErr,
        why,
    };
    let owner = owner_in(zone, &change.name).map_err(bad)?;
    let existing: Vec<Record> = zone
        .rrset(&LowerName::new(&owner), change.rtype)
        .map(|rrset| rrset.records.to_vec())
        .unwrap_or_default();
    // A new record takes the TTL asked for, else the RRset's (RFC 2181
    // §5.2: one TTL per RRset), else five minutes.
    let ttl = change
        .ttl
        .or_else(|| existing.first().map(|r| r.ttl))
        .unwrap_or(300);
    let new_records = change
        .data
        .iter()
        .map(|data| {
            let text = format!("{owner} {ttl} IN {} {data}", change.rtype);
            zone.parse_record(&text).map_err(bad)
        })
        .collect::<Result<Vec<Record>, Refused>>()?;
    if let Some(wrong) = new_records.iter().find(|r| r.record_type() != change.rtype) {
        return Err(bad(format!("`{wrong}` is not a {} record", change.rtype)));
    }
    Ok(match change.op {
        Op::Set => (existing, new_records),
        Op::Add if change.ttl.is_some() => {
            // The whole RRset moves to the new TTL with it.
            let mut added = existing.clone();
            added.iter_mut().for_each(|r| r.ttl = ttl);
            added.extend(new_records);
            (existing, added)
        }
        Op::Add => (Vec::new(), new_records),
        Op::Delete if change.data.is_empty() => (existing, Vec::new()),
        Op::Delete => (
            existing
                .into_iter()
                .filter(|r| new_records.iter().any(|n| n.data == r.data))
                .collect(),
            Vec::new(),
        ),
    })
}

/// What the name servers say for a question, beside what the resolver
/// has cached for it and for how much longer.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub name_servers: Said,
    /// None when the resolver has nothing cached for it: its next answer
    /// is the name servers'.
    pub resolver: Option<Said>,
    /// Whether the two agree.
    pub same: bool,
}

#[derive(Debug, Serialize)]
pub struct Said {
    /// NOERROR, NXDOMAIN, or NODATA (NOERROR with no answer).
    pub rcode: String,
    pub records: Vec<RecordView>,
    /// For the resolver: the seconds its cached answer still lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
}

impl Said {
    fn data(&self) -> Vec<(&str, &str)> {
        let mut data: Vec<(&str, &str)> = self
            .records
            .iter()
            .map(|r| (r.rtype.as_str(), r.data.as_str()))
            .collect();
        data.sort();
        data
    }
}

/// Compare for `name` (relative to the zone, or absolute) and `rtype`.
pub fn compare(
    zone: &HostedZone,
    resolver: Option<&Resolver>,
    name: &str,
    rtype: RecordType,
) -> Result<Comparison, String> {
    let snapshot = zone.live.snapshot();
    let owner = owner_in(&snapshot, name)?;
    let lower = LowerName::new(&owner);
    if !snapshot.contains(&lower) {
        return Err(format!("{owner} is not in {}", snapshot.origin()));
    }
    let answer = answer_from(&snapshot, &lower, rtype);
    let name_servers = Said {
        rcode: said_rcode(answer.rcode, answer.answers.is_empty()),
        records: answer.answers.iter().map(RecordView::from).collect(),
        remaining: None,
    };
    let resolver = resolver.and_then(|r| cached(r, &lower, rtype));
    let same = resolver
        .as_ref()
        .is_none_or(|r| r.rcode == name_servers.rcode && r.data() == name_servers.data());
    Ok(Comparison {
        name: owner.to_string(),
        rtype: rtype_name(rtype),
        name_servers,
        resolver,
        same,
    })
}

fn said_rcode(rcode: ResponseCode, empty: bool) -> String {
    match rcode {
        ResponseCode::NoError if empty => "NODATA".into(),
        other => rcode_name(other),
    }
}

/// What the resolver's cache holds for the question: the RRset (or the
/// CNAME in its place), or a negative answer.
fn cached(resolver: &Resolver, name: &LowerName, rtype: RecordType) -> Option<Said> {
    let cache = resolver.cache();
    if let Some(hit) = cache
        .answer(name, rtype)
        .or_else(|| cache.answer(name, RecordType::CNAME))
    {
        return Some(Said {
            rcode: "NOERROR".into(),
            records: hit
                .value
                .iter()
                .map(|r| {
                    let mut view = RecordView::from(r);
                    view.ttl = hit.remaining;
                    view
                })
                .collect(),
            remaining: Some(hit.remaining),
        });
    }
    cache.negative(name, rtype).map(|hit| Said {
        rcode: if hit.value.nxdomain {
            "NXDOMAIN".into()
        } else {
            "NODATA".into()
        },
        records: Vec::new(),
        remaining: Some(hit.remaining),
    })
}
