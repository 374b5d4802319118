//! Turning a visit's trace events into the numbered steps of the story.
//!
//! The numbers are the seed story's: 1 the user types the name, 2 the
//! browser asks its resolver, 3 the root refers to .com, 4 .com refers to the
//! hosted zone's four name servers, 5 the resolver picks one and asks, 6 it
//! answers with authority, 7 the resolver returns the address, 8 the browser
//! sends its HTTP request, 9 the page comes back. Steps the cache makes
//! unnecessary are said to be skipped, and why.

use serde::Serialize;

use crate::trace::{CacheKind, ResponseKind, TraceEvent, Traced};

/// One line of the story: a step number (none for notes), who acts, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub number: Option<u8>,
    pub who: String,
    pub text: String,
}

impl Step {
    fn numbered(number: u8, who: impl Into<String>, text: impl Into<String>) -> Step {
        Step {
            number: Some(number),
            who: who.into(),
            text: text.into(),
        }
    }

    fn note(text: impl Into<String>) -> Step {
        Step {
            number: None,
            who: String::new(),
            text: text.into(),
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
fn step_for_zone(zone: &str) -> u8 {
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

fn describe_response(response: &ResponseKind) -> String {
    match response {
        ResponseKind::Referral {
            zone,
            servers,
            glue,
        } => {
            let names = servers.join(", ");
            format!(
                "referral to {zone}: ask {names} ({glue} glue address{})",
                if *glue == 1 { "" } else { "es" }
            )
        }
        ResponseKind::Answer { records } => records
            .iter()
            .map(|r| format!("{} {} {} (TTL {})", r.name, r.rtype, r.data, r.ttl))
            .collect::<Vec<_>>()
            .join(", "),
        ResponseKind::NxDomain => "NXDOMAIN: no such name".into(),
        ResponseKind::NoData => "NODATA: the name has no such record".into(),
        ResponseKind::Truncated => "truncated (TC=1): retrying over TCP".into(),
        ResponseKind::Failure { reason } => format!("failed: {reason}"),
        ResponseKind::Timeout => "no response (timeout)".into(),
    }
}

/// The steps of one visit, from the browser's and the resolver's events.
pub fn steps(site: &str, events: &[Traced]) -> Vec<Step> {
    let mut out = vec![Step::numbered(
        1,
        "you",
        format!("type {site} into the browser"),
    )];
    let mut asked_upstream = false;
    let mut chooses_from = 0usize;
    let mut i = 0;
    while i < events.len() {
        match &events[i].event {
            TraceEvent::BrowserLookup { host, resolver, .. } => out.push(Step::numbered(
                2,
                "browser",
                format!("asks the resolver at {resolver}: where is {host}?"),
            )),
            TraceEvent::QuestionReceived { .. } => {}
            TraceEvent::CacheMiss { question } => out.push(Step::note(format!(
                "resolver: {question} is not in its cache"
            ))),
            TraceEvent::CacheAnswerHit { question, records } => {
                let ttl = records.first().map_or(0, |r| r.ttl);
                out.push(Step::note(format!(
                    "resolver: {question} is in its cache ({} s of TTL left): steps 3–6 skipped, no name server is asked",
                    ttl
                )));
            }
            TraceEvent::CacheNegativeHit {
                question,
                rcode,
                ttl,
            } => out.push(Step::note(format!(
                "resolver: {question} is cached as {rcode} ({ttl} s left): no name server is asked"
            ))),
            TraceEvent::CacheDelegationHit {
                zone,
                servers,
                ttl,
                skipped,
            } => {
                chooses_from = servers.len();
                let skipped_steps: Vec<String> = skipped
                    .iter()
                    .map(|z| step_for_zone(z).to_string())
                    .collect();
                out.push(Step::note(format!(
                    "resolver: the name servers of {zone} are cached ({ttl} s of the delegation's TTL left): steps {} skipped, {} not asked",
                    skipped_steps.join(" and "),
                    skipped
                        .iter()
                        .map(|z| zone_name(z))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )));
            }
            TraceEvent::UpstreamQuery {
                server,
                zone,
                question,
                transport,
            } => {
                asked_upstream = true;
                let number = step_for_zone(zone);
                let response = events[i + 1..].iter().find_map(|e| match &e.event {
                    TraceEvent::UpstreamResponse {
                        server: s,
                        response,
                        rtt_us,
                        ..
                    } if s == server => Some((response, *rtt_us)),
                    _ => None,
                });
                let chosen = if number == 5 && chooses_from > 1 {
                    format!(" (chosen of {chooses_from})")
                } else {
                    String::new()
                };
                let asked = format!(
                    "asks {}{chosen} at {} ({} server) over {transport}: {question}?",
                    server.name.trim_end_matches('.'),
                    server.addr,
                    zone_name(zone)
                );
                match (number, response) {
                    (5, Some((answer @ ResponseKind::Answer { .. }, rtt))) => {
                        out.push(Step::numbered(5, "resolver", asked));
                        out.push(Step::numbered(
                            6,
                            server.name.trim_end_matches('.'),
                            format!(
                                "answers with authority: {} [{}]",
                                describe_response(answer),
                                human_us(rtt)
                            ),
                        ));
                    }
                    (_, Some((response, rtt))) => {
                        if let ResponseKind::Referral { servers, .. } = response {
                            chooses_from = servers.len();
                        }
                        out.push(Step::numbered(
                            number,
                            "resolver",
                            format!(
                                "{asked} ⇒ {} [{}]",
                                describe_response(response),
                                human_us(rtt)
                            ),
                        ));
                    }
                    (_, None) => out.push(Step::numbered(number, "resolver", asked)),
                }
            }
            TraceEvent::UpstreamResponse { .. } => {}
            TraceEvent::JoinedInFlight {
                question,
                resolution,
            } => out.push(Step::note(format!(
                "resolver: {question} is already being resolved (resolution {resolution}): waiting for that answer"
            ))),
            TraceEvent::ServedStale {
                question,
                expired_for,
                ..
            } => out.push(Step::note(format!(
                "resolver: no server answered; serving the stale {question} that expired {expired_for} s ago (RFC 8767)"
            ))),
            TraceEvent::Cached {
                kind,
                name,
                rtype,
                ttl,
            } => {
                let what = match kind {
                    CacheKind::Answer => format!("{name} {}", rtype.as_deref().unwrap_or("")),
                    CacheKind::Delegation => format!("the name servers of {name}"),
                    CacheKind::Negative => {
                        format!("{name} {} (negative)", rtype.as_deref().unwrap_or(""))
                    }
                };
                if let Some(last) = out.last_mut() {
                    last.text
                        .push_str(&format!(" · cached {what} for {}", human_ttl(*ttl)));
                }
            }
            TraceEvent::AnswerReturned {
                question,
                rcode,
                records,
                upstream_queries,
                elapsed_us,
                ..
            } => {
                let answer = if records.is_empty() {
                    rcode.clone()
                } else {
                    records
                        .iter()
                        .map(|r| format!("{} (TTL {})", r.data, r.ttl))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let source = if asked_upstream {
                    format!(
                        "after {upstream_queries} upstream quer{}",
                        if *upstream_queries == 1 { "y" } else { "ies" }
                    )
                } else {
                    "from its cache".to_string()
                };
                out.push(Step::numbered(
                    7,
                    "resolver",
                    format!(
                        "returns {question} ⇒ {answer} to the browser, {source} [{}]",
                        human_us(*elapsed_us)
                    ),
                ));
            }
            TraceEvent::HttpRequest { method, url, addr } => out.push(Step::numbered(
                8,
                "browser",
                format!("connects to {addr} and sends {method} {url}"),
            )),
            TraceEvent::HttpResponse {
                status,
                title,
                bytes,
                elapsed_us,
            } => out.push(Step::numbered(
                9,
                "web server",
                format!(
                    "returns {status}: \"{}\" ({bytes} bytes) [{}]",
                    title.as_deref().unwrap_or("(no title)"),
                    human_us(*elapsed_us)
                ),
            )),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_map_to_the_story_steps() {
        assert_eq!(step_for_zone("."), 3);
        assert_eq!(step_for_zone("com."), 4);
        assert_eq!(step_for_zone("example.com."), 5);
    }

    #[test]
    fn ttls_read_as_people_say_them() {
        assert_eq!(human_ttl(172_800), "172800 s = 2 days");
        assert_eq!(human_ttl(300), "300 s = 5 min");
        assert_eq!(human_ttl(299), "299 s");
    }
}
