//! Telling trace events as the story's numbered steps, one event at a time,
//! as they happen.
//!
//! The numbers are the seed story's: 1 the user types the name, 2 the
//! browser asks its resolver, 3 the root refers to the TLD, 4 the TLD refers
//! to the domain's own name servers, 5 the resolver picks one and asks, 6 it
//! answers with authority, 7 the resolver returns the address, 8 the browser
//! sends its HTTP request, 9 the page comes back. Steps the cache makes
//! unnecessary are said to be skipped, and why. In another hierarchy the
//! numbers follow the zone asked: the root is 3, a TLD 4, anything deeper 5.
//!
//! ```text
//!  event ──► Storyteller::tell ──► lines, at once (a line waits only for the
//!                                  "cached …" notes of the event it tells)
//! ```
//!
//! A browser asks for A and AAAA at once (RFC 8305). The first question of
//! a visit is told step by step; the other ("companion") is told in one
//! line when it ends, so the story stays readable. Which of the two walks
//! from the root is up to the scheduler: when the companion goes upstream
//! before the first question has, it is the one told step by step, and
//! the first question becomes the companion.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use serde::Serialize;

use std::io::Write;

use crate::style::Style;
use crate::trace::{
    CacheKind, Question, RecordView, ResponseKind, TraceEvent, TraceSubscriber, Traced, rcode_name,
};

/// One line of the story: a step number (none for notes), who acts, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub number: Option<u8>,
    pub who: String,
    pub text: String,
    /// When the event it tells happened (the trace's clock).
    pub at_us: u64,
}

impl Line {
    fn numbered(number: u8, who: impl Into<String>, text: impl Into<String>, at_us: u64) -> Line {
        Line {
            number: Some(number),
            who: who.into(),
            text: text.into(),
            at_us,
        }
    }

    fn note(text: impl Into<String>, at_us: u64) -> Line {
        Line {
            number: None,
            who: String::new(),
            text: text.into(),
            at_us,
        }
    }
}

/// A duration in microseconds, as a person reads it.
pub fn human_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// A TTL in seconds, with its everyday name when it has one.
pub fn human_ttl(secs: u32) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => {
            let days = s / 86_400;
            format!("{s} s = {days} day{}", if days == 1 { "" } else { "s" })
        }
        s if s >= 3_600 && s % 3_600 == 0 => format!("{s} s = {} h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{s} s = {} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The story step of a question to a server of `zone`: the root is step 3,
/// a top-level domain step 4, anything deeper step 5 (and its answer 6).
pub fn step_for_zone(zone: &str) -> u8 {
    match zone
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .count()
    {
        0 => 3,
        1 => 4,
        _ => 5,
    }
}

/// A zone as the story names it: "the root", "com.", "example.com.".
fn zone_name(zone: &str) -> String {
    if zone == "." {
        "the root".to_string()
    } else {
        zone.to_string()
    }
}

pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Why responses were not taken, in words: "2 with the name in another
/// case than sent (0x20), 1 with another ID or question".
fn ignored_reasons(ignored: &crate::exchange::Ignored) -> String {
    [
        (
            ignored.wrong_case,
            "with the name in another case than sent (0x20)",
        ),
        (ignored.wrong_cookie, "with a cookie not its own (RFC 7873)"),
        (
            ignored.missing_cookie,
            "without the cookie the server sent before",
        ),
        (ignored.mismatched, "with another ID or question"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn describe_response(response: &ResponseKind) -> String {
    match response {
        ResponseKind::Referral {
            zone,
            servers,
            glue,
        } => format!(
            "referral to {zone}: ask {} ({})",
            servers
                .iter()
                .map(|s| s.trim_end_matches('.'))
                .collect::<Vec<_>>()
                .join(", "),
            plural(*glue, "glue address", "glue addresses")
        ),
        ResponseKind::Answer { records } => records_text(records),
        ResponseKind::NxDomain => "NXDOMAIN: no such name".into(),
        ResponseKind::NoData => "NODATA: the name has no such record".into(),
        ResponseKind::Truncated => "truncated (TC=1): asking again over TCP".into(),
        ResponseKind::Failure { reason } => format!("failed: {reason}"),
        ResponseKind::Timeout => "no response (timeout)".into(),
    }
}

/// The name RFC 8914 gives an Extended DNS Error code.
pub fn ede_name(code: u16) -> &'static str {
    match code {
        0 => "Other",
        3 => "Stale Answer",
        6 => "DNSSEC Bogus",
        7 => "Signature Expired",
        8 => "Signature Not Yet Valid",
        9 => "DNSKEY Missing",
        10 => "RRSIGs Missing",
        12 => "NSEC Missing",
        13 => "Cached Error",
        18 => "Prohibited",
        21 => "Not Supported",
        22 => "No Reachable Authority",
        23 => "Network Error",
        24 => "Invalid Data",
        _ => "Unknown",
    }
}

/// Whether a record is DNSSEC's own (signatures, denials): the story tells
/// those in its chain-of-trust lines, not among the data.
fn is_proof(record: &RecordView) -> bool {
    matches!(record.rtype.as_str(), "RRSIG" | "NSEC" | "NSEC3")
}

/// A record's data as the story shows it: keys and signatures are long, so
/// a DNSKEY is its flags and algorithm (257 is a key-signing key).
fn short_data(record: &RecordView) -> String {
    if record.rtype == "DNSKEY" {
        let mut words = record.data.split_whitespace();
        let (flags, _, algorithm) = (words.next(), words.next(), words.next());
        return format!(
            "{} alg {}{}",
            flags.unwrap_or("?"),
            algorithm.unwrap_or("?"),
            if flags == Some("257") { " (KSK)" } else { "" }
        );
    }
    record.data.clone()
}

fn records_text(records: &[RecordView]) -> String {
    records
        .iter()
        .filter(|r| !is_proof(r))
        .map(|r| format!("{} {} {} (TTL {})", r.name, r.rtype, short_data(r), r.ttl))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an answer said, briefly: the data, or the rcode.
fn answer_text(rcode: ResponseCode, records: &[RecordView]) -> String {
    match (rcode, records.is_empty()) {
        (ResponseCode::NoError, true) => "NODATA (no such record)".into(),
        (_, true) => rcode_name(rcode),
        _ => records
            .iter()
            .filter(|r| !is_proof(r))
            .map(|r| {
                if r.rtype == "CNAME" {
                    format!("CNAME {}", r.data)
                } else {
                    format!("{} (TTL {})", r.data, r.ttl)
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// What the story knows about one resolution while it runs.
#[derive(Default)]
struct Resolution {
    /// Told in one line when it ends, not step by step.
    companion: bool,
    asked_upstream: bool,
    /// How many servers the current zone has, for "chosen of N".
    chooses_from: usize,
    /// Servers asked so far, by name (for a companion's line).
    asked: Vec<String>,
    /// The line waiting for its "cached …" notes.
    pending: Option<Line>,
    /// The type asked.
    rtype: Option<hickory_proto::rr::RecordType>,
    /// A companion's lines, kept in case it is promoted (see the module
    /// docs).
    held: Vec<Line>,
}

/// Turns events into story lines as they come.
#[derive(Default)]
pub struct Storyteller {
    resolutions: HashMap<u64, Resolution>,
    /// Questions seen in this visit, by client: a second one is a retry.
    seen: HashSet<(SocketAddr, Question)>,
    /// The resolution told step by step in this visit, if it started.
    primary: Option<u64>,
    /// The type whose question is told step by step: the first the browser
    /// asks for (A; its AAAA is the companion).
    primary_type: Option<hickory_proto::rr::RecordType>,
    /// Whether the browser asks (so the resolver's answer goes "to the
    /// browser") or some other client does.
    browser: Option<SocketAddr>,
    /// Inside a visit; outside, each resolution is told on its own, with
    /// who asked.
    in_visit: bool,
}

impl Storyteller {
    pub fn new() -> Storyteller {
        Storyteller::default()
    }

    /// A new visit: step 1 (what the user does), and forget what the last
    /// visit asked.
    pub fn begin_visit(&mut self, doing: &str, at_us: u64) -> Vec<Line> {
        self.seen.clear();
        self.primary = None;
        self.primary_type = None;
        self.in_visit = true;
        vec![Line::numbered(1, "you", doing, at_us)]
    }

    /// The visit is over: what follows is told resolution by resolution.
    pub fn end_visit(&mut self) -> Vec<Line> {
        self.in_visit = false;
        self.browser = None;
        self.flush()
    }

    /// Lines still waiting for notes: call at the end of a visit.
    pub fn flush(&mut self) -> Vec<Line> {
        let mut ids: Vec<u64> = self.resolutions.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.resolutions.get_mut(&id)?.pending.take())
            .collect()
    }

    /// The lines `event` adds to the story, in order.
    pub fn tell(&mut self, traced: &Traced) -> Vec<Line> {
        let at = traced.at_us;
        let id = traced.resolution;
        let mut out = Vec::new();
        // A "cached" event adds to the line before it; anything else lets
        // that line go.
        if let TraceEvent::Cached {
            kind,
            name,
            rtype,
            nxdomain,
            ttl,
        } = &traced.event
        {
            let what = match kind {
                CacheKind::Answer => {
                    format!(
                        "{name} {}",
                        rtype.map(|t| t.to_string()).unwrap_or_default()
                    )
                }
                CacheKind::Delegation => format!("the name servers of {name}"),
                CacheKind::Negative if *nxdomain => format!("{name} (NXDOMAIN, every type)"),
                CacheKind::Negative => format!(
                    "{name} {} (NODATA)",
                    rtype.map(|t| t.to_string()).unwrap_or_default()
                ),
                CacheKind::Failure => format!(
                    "the failure of {name} {} (not tried again until then, RFC 9520)",
                    rtype.map(|t| t.to_string()).unwrap_or_default()
                ),
            };
            let note = format!(" · cached {what} for {}", human_ttl(*ttl));
            let state = self.resolutions.entry(id).or_default();
            match &mut state.pending {
                Some(line) => line.text.push_str(&note),
                None if !state.companion => {
                    out.push(Line::note(note.trim_start_matches(" · "), at))
                }
                None => {}
            }
            return out;
        }
        // Anything else lets every waiting line go, in the order their
        // events happened, so lines never come out of order.
        let mut waiting: Vec<Line> = self
            .resolutions
            .values_mut()
            .filter_map(|r| r.pending.take())
            .collect();
        waiting.sort_by_key(|line| line.at_us);
        out.extend(waiting);

        match &traced.event {
            TraceEvent::BrowserQuery {
                host,
                resolver,
                types,
            } => {
                self.browser = Some(*resolver);
                self.primary_type = types.first().copied();
                let types: Vec<String> = types.iter().map(ToString::to_string).collect();
                out.push(Line::numbered(
                    2,
                    "browser",
                    format!(
                        "asks the resolver at {resolver}: where is {host}? ({})",
                        types.join(" and ")
                    ),
                    at,
                ));
            }
            TraceEvent::BrowserLookup {
                host,
                error: Some(error),
                ..
            } => out.push(Line::note(format!("browser: no address for {host}: {error}"), at)),
            TraceEvent::BrowserLookup { .. } => {}
            TraceEvent::QuestionReceived {
                client,
                question,
                transport,
            } if !self.in_visit => {
                self.resolutions.insert(id, Resolution::default());
                out.push(Line::note(
                    format!("resolution {id}: {client} asks the resolver {question} over {transport}"),
                    at,
                ));
            }
            TraceEvent::QuestionReceived {
                client, question, ..
            } => {
                let retry = !self.seen.insert((*client, question.clone()));
                let primary = match self.primary_type {
                    Some(rtype) => question.rtype == rtype,
                    None => self.primary.is_none(),
                };
                let companion = !primary && !retry;
                if primary && self.primary.is_none() {
                    self.primary = Some(id);
                }
                self.resolutions.insert(
                    id,
                    Resolution {
                        companion,
                        rtype: Some(question.rtype),
                        ..Resolution::default()
                    },
                );
                if retry {
                    out.push(Line::note(
                        format!(
                            "the browser's stub resolver asks again ({question}): a retry, as stubs do when an answer is slow"
                        ),
                        at,
                    ));
                }
            }
            TraceEvent::ClockAdvanced { seconds, skew_secs } => out.push(Line::note(
                format!(
                    "the resolver's clock moves {} forward ({} ahead of real time): every TTL runs down by that much",
                    human_ttl(u32::try_from(*seconds).unwrap_or(u32::MAX)),
                    human_ttl(u32::try_from(*skew_secs).unwrap_or(u32::MAX))
                ),
                at,
            )),
            TraceEvent::CacheFlushed => {
                out.push(Line::note("the resolver's cache is emptied", at))
            }
            TraceEvent::FaultSet {
                server,
                fault: Some(fault),
            } => out.push(Line::note(
                format!("{} is set to fail: {fault}", server.trim_end_matches('.')),
                at,
            )),
            TraceEvent::FaultSet { server, fault: None } => out.push(Line::note(
                format!("{} is healed: it answers again", server.trim_end_matches('.')),
                at,
            )),
            TraceEvent::ZoneChanged {
                zone,
                serial,
                by,
                deleted,
                added,
            } => {
                let mut what: Vec<String> = deleted.iter().map(|r| format!("-{r}")).collect();
                what.extend(added.iter().map(|r| format!("+{r}")));
                let how = match by.as_str() {
                    "transfer" => "transferred from its primary",
                    "update" => "changed by a dynamic update",
                    _ => "changed",
                };
                out.push(Line::note(
                    format!(
                        "zone {zone} {how}, serial {serial}: its name servers answer the new data; \
                         resolvers keep what they cached until its TTL runs out{}",
                        if what.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", what.join(", "))
                        }
                    ),
                    at,
                ));
            }
            // The demo tells visits' beginnings and ends itself.
            TraceEvent::VisitStarted { .. } | TraceEvent::VisitEnded { .. } => {}
            _ => self.tell_resolution(traced, &mut out),
        }
        out
    }

    /// Events of the resolver's work on one question.
    fn tell_resolution(&mut self, traced: &Traced, out: &mut Vec<Line>) {
        let at = traced.at_us;
        let to_whom = if self.browser.is_some() {
            "the browser"
        } else {
            "the client"
        };
        if matches!(traced.event, TraceEvent::UpstreamQuery { .. }) {
            self.promote_if_first_upstream(traced.resolution, out);
        }
        let state = self.resolutions.entry(traced.resolution).or_default();
        let companion = state.companion;
        // Lines of a companion are not told one by one (see the module docs).
        let mut lines: Vec<Line> = Vec::new();
        let mut ended = false;
        match &traced.event {
            TraceEvent::CacheMiss { question } => lines.push(Line::note(
                format!("resolver: {question} is not in its cache"),
                at,
            )),
            TraceEvent::CacheAnswerHit { question, records } => {
                let ttl = records.first().map_or(0, |r| r.ttl);
                lines.push(Line::note(
                    format!(
                        "resolver: {question} is in its cache ({ttl} s of TTL left): steps 3–6 skipped, no name server is asked"
                    ),
                    at,
                ));
            }
            TraceEvent::CacheNegativeHit {
                question,
                rcode,
                ttl,
            } => lines.push(Line::note(
                format!(
                    "resolver: {question} is cached as {} ({ttl} s left): no name server is asked",
                    if *rcode == ResponseCode::NXDomain {
                        "NXDOMAIN"
                    } else {
                        "NODATA"
                    }
                ),
                at,
            )),
            TraceEvent::CacheFailureHit {
                question,
                reason,
                ttl,
            } => lines.push(Line::note(
                format!(
                    "resolver: {question} failed moments ago ({reason}); the failure is remembered for {ttl} s more, so no server is asked (RFC 9520)"
                ),
                at,
            )),
            TraceEvent::CacheDelegationHit {
                zone,
                servers,
                ttl,
                skipped,
            } => {
                state.chooses_from = servers.len();
                let steps: Vec<String> = skipped
                    .iter()
                    .map(|z| step_for_zone(z).to_string())
                    .collect();
                let zones: Vec<String> = skipped.iter().map(|z| zone_name(z)).collect();
                let skipped_text = if skipped.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": step{} {} skipped, {} not asked",
                        if steps.len() == 1 { "" } else { "s" },
                        steps.join(" and "),
                        zones.join(" and ")
                    )
                };
                lines.push(Line::note(
                    format!(
                        "resolver: the name servers of {zone} are cached ({ttl} s of the delegation's TTL left){skipped_text}"
                    ),
                    at,
                ));
            }
            TraceEvent::ServersHeldDown {
                zone,
                servers,
                for_ms,
            } => {
                let names: Vec<&str> = servers.iter().map(|s| s.name.trim_end_matches('.')).collect();
                lines.push(Line::note(
                    format!(
                        "resolver: {} of {} failed moments ago and {} not asked again for {} (RFC 9520)",
                        names.join(", "),
                        zone_name(zone),
                        if names.len() == 1 { "is" } else { "are" },
                        human_us(for_ms * 1000)
                    ),
                    at,
                ));
            }
            TraceEvent::UpstreamQuery {
                server,
                zone,
                question,
                transport,
            } => {
                state.asked_upstream = true;
                state.asked.push(server.name.trim_end_matches('.').to_string());
                let number = step_for_zone(zone);
                let chosen = if number == 5 && state.chooses_from > 1 {
                    format!(" (chosen of {})", state.chooses_from)
                } else {
                    String::new()
                };
                lines.push(Line::numbered(
                    number,
                    "resolver",
                    format!(
                        "asks {}{chosen} at {} ({} server) over {transport}: {question}?",
                        server.name.trim_end_matches('.'),
                        server.addr,
                        zone_name(zone)
                    ),
                    at,
                ));
            }
            TraceEvent::UpstreamResponse {
                server,
                response,
                rtt_us,
                nsid,
                ..
            } => {
                if let ResponseKind::Referral { servers, .. } = response {
                    state.chooses_from = servers.len();
                }
                // A companion's line says which servers failed it, too.
                if matches!(response, ResponseKind::Timeout | ResponseKind::Failure { .. })
                    && let Some(asked) = state.asked.last_mut()
                {
                    asked.push_str(&format!(" ({})", describe_response(response)));
                }
                let line = match response {
                    ResponseKind::Answer { .. } => Line::numbered(
                        6,
                        server.name.trim_end_matches('.'),
                        format!(
                            "answers with authority: {} [{}]{}",
                            describe_response(response),
                            human_us(*rtt_us),
                            nsid.as_ref()
                                .map(|nsid| format!(" [nsid {nsid}]"))
                                .unwrap_or_default()
                        ),
                        at,
                    ),
                    _ => Line::note(
                        format!(
                            "      ⇒ {} [{}]",
                            describe_response(response),
                            human_us(*rtt_us)
                        ),
                        at,
                    ),
                };
                if !companion {
                    state.pending = Some(line);
                }
            }
            TraceEvent::ResponsesIgnored {
                server,
                question,
                ignored,
            } => lines.push(Line::note(
                format!(
                    "resolver: ignores {} for {question} that came as if from {} ({}): {} — forged, or late",
                    plural(ignored.total() as usize, "response", "responses"),
                    server.name.trim_end_matches('.'),
                    server.addr,
                    ignored_reasons(ignored)
                ),
                at,
            )),
            TraceEvent::ServerLame {
                server,
                zone,
                reason,
                for_secs,
            } => lines.push(Line::note(
                format!(
                    "resolver: {} is lame for {} ({reason}): not asked about it again for {}",
                    server.name.trim_end_matches('.'),
                    zone_name(zone),
                    human_ttl(u32::try_from(*for_secs).unwrap_or(u32::MAX))
                ),
                at,
            )),
            TraceEvent::ServersSkipped {
                zone,
                servers,
                reason,
            } => {
                let names: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} ({})", s.name.trim_end_matches('.'), s.addr.ip()))
                    .collect();
                lines.push(Line::note(
                    format!(
                        "resolver: does not ask {} for {}: {reason}",
                        names.join(", "),
                        zone_name(zone)
                    ),
                    at,
                ));
            }
            TraceEvent::MinimisationAbandoned {
                zone,
                question,
                reason,
            } => lines.push(Line::note(
                format!(
                    "resolver: no server of {} answered the shorter {question} usefully ({reason}): asking the full question instead (RFC 9156)",
                    zone_name(zone)
                ),
                at,
            )),
            TraceEvent::OutOfBailiwickGlue {
                zone,
                from_zone,
                servers,
            } => {
                let names: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} at {}", s.name.trim_end_matches('.'), s.addr.ip()))
                    .collect();
                lines.push(Line::note(
                    format!(
                        "resolver: the name servers of {zone} can only be found through each other; as the only way in, it uses the addresses {} sent for them from outside its own zone: {}",
                        zone_name(from_zone),
                        names.join(", ")
                    ),
                    at,
                ));
            }
            TraceEvent::DelegationUpdated {
                zone,
                parent_servers,
                servers,
                ttl,
            } => lines.push(Line::note(
                format!(
                    "resolver: {zone} names its own servers ({}), not the referral's ({}): the zone's own list replaces it (RFC 2181 §5.4.1) for {}",
                    servers.join(", "),
                    parent_servers.join(", "),
                    human_ttl(*ttl)
                ),
                at,
            )),
            TraceEvent::DnameFollowed {
                name,
                owner,
                target,
                cached,
            } => lines.push(Line::note(
                format!(
                    "resolver: {owner} is renamed by a DNAME{}, so {name} becomes {target} (RFC 6672)",
                    if *cached { " it has cached" } else { "" }
                ),
                at,
            )),
            TraceEvent::RecordsIgnored { server, records } => lines.push(Line::note(
                format!(
                    "resolver: ignores {} from {} that answer{} nothing it asked: {}",
                    plural(records.len(), "record", "records"),
                    server.name.trim_end_matches('.'),
                    if records.len() == 1 { "s" } else { "" },
                    records
                        .iter()
                        .map(|r| format!("{} {}", r.name, r.rtype))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                at,
            )),
            TraceEvent::ForeignSoaIgnored {
                server,
                zone,
                soa,
                nxdomain,
            } => lines.push(Line::note(
                format!(
                    "resolver: {} sent its {} with the SOA of {}, outside {}: the SOA is dropped, and the denial passed on without one and not cached (its TTL comes from the SOA, RFC 2308 §5)",
                    server.name.trim_end_matches('.'),
                    if *nxdomain { "NXDOMAIN" } else { "NODATA" },
                    soa.name,
                    zone_name(zone)
                ),
                at,
            )),
            TraceEvent::JoinedInFlight {
                question,
                resolution,
            } => lines.push(Line::note(
                format!(
                    "resolver: {question} is already being resolved (resolution {resolution}): waiting for that answer"
                ),
                at,
            )),
            TraceEvent::ServedStale {
                question,
                expired_for,
                ..
            } => lines.push(Line::note(
                format!(
                    "resolver: no server answered; serving the stale {question} that expired {expired_for} s ago (RFC 8767)"
                ),
                at,
            )),
            TraceEvent::AnswerReturned {
                question,
                rcode,
                records,
                upstream_queries,
                failure,
                elapsed_us,
                authentic,
                ede,
            } => {
                let mut answer = answer_text(*rcode, records);
                if *authentic {
                    answer.push_str(", secure (AD)");
                }
                let source = if state.asked_upstream {
                    format!("after {}", plural(*upstream_queries, "upstream query", "upstream queries"))
                } else if *rcode == ResponseCode::ServFail {
                    "without asking any server".to_string()
                } else {
                    "from its cache".to_string()
                };
                let why = match (failure, ede) {
                    (Some(f), Some(code)) => format!(" (EDE {code} {}: {f})", ede_name(*code)),
                    (Some(f), None) => format!(" ({f})"),
                    _ => String::new(),
                };
                ended = true;
                if companion {
                    let asked = if state.asked.is_empty() {
                        "answered from its cache".to_string()
                    } else {
                        format!("asked {}", state.asked.join(" → "))
                    };
                    out.push(Line::note(
                        format!(
                            "resolver: meanwhile, {question}: {asked} ⇒ {answer}{why} [{}]",
                            human_us(*elapsed_us)
                        ),
                        at,
                    ));
                } else {
                    out.push(Line::numbered(
                        7,
                        "resolver",
                        format!(
                            "returns {question} ⇒ {answer}{why} to {to_whom}, {source} [{}]",
                            human_us(*elapsed_us)
                        ),
                        at,
                    ));
                }
            }
            TraceEvent::DnssecChecked {
                security, detail, ..
            } => {
                let mark = match security {
                    crate::dnssec::Security::Secure => "🔒",
                    crate::dnssec::Security::Bogus => "✗",
                    _ => "🔓",
                };
                lines.push(Line::note(
                    format!("      {mark} chain of trust: {detail} ⇒ {security}"),
                    at,
                ));
            }
            TraceEvent::HttpRequest { method, url, addr } => out.push(Line::numbered(
                8,
                "browser",
                format!("connects to {addr} and sends {method} {url}"),
                at,
            )),
            TraceEvent::HttpResponse {
                status,
                title,
                bytes,
                elapsed_us,
            } => out.push(Line::numbered(
                9,
                "web server",
                format!(
                    "returns {status}: \"{}\" ({bytes} bytes) [{}]",
                    title.as_deref().unwrap_or("(no title)"),
                    human_us(*elapsed_us)
                ),
                at,
            )),
            _ => {}
        }
        if !companion {
            out.extend(lines);
        } else if !ended {
            state.held.extend(lines);
        }
        if ended {
            self.resolutions.remove(&traced.resolution);
        }
    }

    /// A companion about to ask a server, while the first question has not
    /// gone upstream (or not even arrived): it is the walk worth telling,
    /// so it is told step by step from here (its lines so far first), and
    /// the first question becomes the companion.
    fn promote_if_first_upstream(&mut self, id: u64, out: &mut Vec<Line>) {
        let is_companion = self.resolutions.get(&id).is_some_and(|r| r.companion);
        let primary_walked = match self.primary {
            None => false,
            Some(primary) => self
                .resolutions
                .get(&primary)
                .is_none_or(|p| p.asked_upstream),
        };
        if !self.in_visit || !is_companion || primary_walked {
            return;
        }
        if let Some(previous) = self.primary.and_then(|p| self.resolutions.get_mut(&p)) {
            previous.companion = true;
        }
        let promoted = self.resolutions.get_mut(&id).expect("checked above");
        promoted.companion = false;
        out.append(&mut promoted.held);
        self.primary = Some(id);
        self.primary_type = promoted.rtype;
    }
}

/// The whole story of one visit's events at once (reports, the page);
/// `doing` is step 1.
pub fn tell_all(doing: &str, events: &[impl std::ops::Deref<Target = Traced>]) -> Vec<Line> {
    let mut teller = Storyteller::new();
    let mut lines = teller.begin_visit(doing, events.first().map_or(0, |e| e.at_us));
    for event in events {
        lines.extend(teller.tell(event));
    }
    lines.extend(teller.end_visit());
    lines
}

/// How events are printed.
pub enum Printing {
    /// As the story, with this styling.
    Story(Style),
    /// As JSON lines; with `visits`, each carries the number of the visit
    /// it belongs to (0 outside one).
    Json { visits: bool },
}

/// Print every event as it comes, until the stream ends or stdout is
/// closed (`| head`): then printing stops, and nothing else does. `printed`
/// says how far it has got (the last event's `seq`). Runs in a task of its
/// own, so a slow terminal never holds up a resolution.
pub async fn print(
    mut watch: TraceSubscriber,
    printing: Printing,
    printed: Option<tokio::sync::watch::Sender<u64>>,
) {
    let mut teller = Storyteller::new();
    let mut visit = 0u32;
    let mut out = std::io::stdout();
    while let Some(event) = watch.recv().await {
        let mut text = String::new();
        match &printing {
            Printing::Json { visits } => {
                if let TraceEvent::VisitStarted { visit: n, .. } = &event.event {
                    visit = *n;
                }
                let mut line = serde_json::to_value(&*event).unwrap_or_default();
                if *visits {
                    line["visit"] = serde_json::json!(visit);
                }
                text = format!("{line}\n");
                if let TraceEvent::VisitEnded { .. } = &event.event {
                    visit = 0;
                }
            }
            Printing::Story(style) => {
                let lines = match &event.event {
                    TraceEvent::VisitStarted { title, doing, .. } => {
                        text.push_str(&format!("\n{}\n", style.paint("1", title)));
                        teller.begin_visit(doing, event.at_us)
                    }
                    TraceEvent::VisitEnded { ok, summary, .. } => {
                        let mut lines = teller.end_visit();
                        let colour = if *ok { "32" } else { "31;1" };
                        lines.push(Line {
                            number: None,
                            who: String::new(),
                            text: style.paint(colour, &format!("→ {summary}")),
                            at_us: event.at_us,
                        });
                        lines
                    }
                    _ => teller.tell(&event),
                };
                for line in lines {
                    text.push_str(&style.line(&line));
                }
            }
        }
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
        if let Some(printed) = &printed {
            printed.send_replace(event.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_map_to_the_story_steps() {
        assert_eq!(step_for_zone("."), 3);
        assert_eq!(step_for_zone("com."), 4);
        assert_eq!(step_for_zone("example.com."), 5);
        assert_eq!(step_for_zone("a.b.example.com."), 5);
    }

    /// The AAAA question walks from the root before the A question has even
    /// arrived (the scheduler's choice): its walk is told step by step, and
    /// the A question, answered from what that walk cached, in one line.
    #[test]
    fn the_question_that_walks_first_is_told_step_by_step() {
        use hickory_proto::rr::RecordType;

        use crate::trace::ServerView;

        let browser: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let root = ServerView {
            name: "a.root-servers.net.".into(),
            addr: "127.0.0.2:53".parse().unwrap(),
        };
        let question = |rtype| Question::new(&"www.example.com.", rtype);
        let event = |resolution, event| Traced {
            seq: 0,
            resolution,
            at_us: 0,
            event,
        };
        let received = |rtype| TraceEvent::QuestionReceived {
            client: browser,
            question: question(rtype),
            transport: crate::dns::Transport::Udp,
        };
        let returned = |rtype| TraceEvent::AnswerReturned {
            question: question(rtype),
            rcode: ResponseCode::NoError,
            records: Vec::new(),
            upstream_queries: 0,
            failure: None,
            elapsed_us: 10,
            authentic: false,
            ede: None,
        };
        let events = [
            event(
                0,
                TraceEvent::BrowserQuery {
                    host: "www.example.com".into(),
                    resolver: "127.0.0.1:53".parse().unwrap(),
                    types: vec![RecordType::A, RecordType::AAAA],
                },
            ),
            event(2, received(RecordType::AAAA)),
            event(
                2,
                TraceEvent::CacheMiss {
                    question: question(RecordType::AAAA),
                },
            ),
            event(
                2,
                TraceEvent::UpstreamQuery {
                    server: root,
                    zone: ".".into(),
                    question: question(RecordType::AAAA),
                    transport: crate::dns::Transport::Udp,
                },
            ),
            event(2, returned(RecordType::AAAA)),
            event(1, received(RecordType::A)),
            event(1, returned(RecordType::A)),
        ];
        let events: Vec<Box<Traced>> = events.into_iter().map(Box::new).collect();
        let lines = tell_all("type www.example.com", &events);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("www.example.com. AAAA is not in its cache")),
            "{texts:#?}"
        );
        let step3 = lines.iter().find(|l| l.number == Some(3)).expect("step 3");
        assert!(step3.text.contains("AAAA?"), "{texts:#?}");
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("resolver: meanwhile, www.example.com. A:")),
            "{texts:#?}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.number == Some(7)).count(),
            1,
            "{texts:#?}"
        );
    }

    #[test]
    fn ttls_read_as_people_say_them() {
        assert_eq!(human_ttl(172_800), "172800 s = 2 days");
        assert_eq!(human_ttl(300), "300 s = 5 min");
        assert_eq!(human_ttl(299), "299 s");
    }
}
