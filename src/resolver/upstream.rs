//! One question to one name server, with the resolver's defences and the
//! retries each of them may need.
//!
//! ```text
//!  www.example.com. A ──► wWw.eXamPLe.COm. A   (0x20: each letter's case at random)
//!                         + EDNS: DO when validating, NSID (empty), COOKIE
//!                         │ UDP, RD=0
//!                         ▼
//!   response ─ TC=1 ─────────────────────────────► again over TCP
//!            ─ FORMERR/NOTIMP to EDNS ───────────► again without EDNS (RFC 6891 §7)
//!            ─ BADCOOKIE ────────────────────────► again with the server cookie it sent,
//!                                                  then over TCP (RFC 7873 §5.3)
//!            ─ none, but answers in another case ─► again in the case asked; the
//!                                                  server is asked so for 15 min
//!            ─ none, but answers without the cookie
//!              it sent before ───────────────────► again over TCP (as BIND)
//!            ─ anything else ────────────────────► classified for the walk
//! ```
//!
//! The walk ([`super::walk`]) decides whom to ask; this decides how. The
//! forged-looking responses themselves are recognised in
//! [`crate::exchange`]: ignored, counted, told in the trace and the
//! metrics, and the real answer still awaited. A server that does not
//! echo case is taken to be one only when nothing but wrong-case answers
//! came before the timeout, so a forger cannot switch 0x20 off by being
//! quick: it would have to keep the server's own answer from arriving.

use std::net::IpAddr;
use std::time::Instant;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::{LowerName, Name, RecordType};

use super::classify::{
    Classified, apex_delegation, classify, describe, foreign_soa, unused_answers,
};
use super::failure::{Failure, FailureKind};
use super::servers::{CASE_BLIND_HOLD, ServerCookie};
use super::slots::Full;
use super::validation;
use super::walk::{Asked, MAX_UPSTREAM_QUERIES, MAX_WALL_TIME, Walk};
use crate::dns::Transport;
use crate::exchange::{Checks, ExchangeError, exchange_checked, make_query};
use crate::serve::cookies;
use crate::trace::{Question, RecordView, ResponseKind, ServerView, TraceEvent};

/// How a question to one server is being asked, as its retries change it.
struct Asking {
    transport: Transport,
    /// EDNS, unless the server has shown it does not understand it.
    edns: bool,
    /// 0x20, unless turned off or the server does not echo case.
    mixed_case: bool,
    /// BADCOOKIE answers so far.
    bad_cookies: u8,
}

impl Walk<'_> {
    /// One question to one server, retried as the response asks (see the
    /// module docs). `Err` only when the walk's budget is spent.
    pub(super) async fn query_server(
        &mut self,
        server: &ServerView,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
        minimised: bool,
    ) -> Result<Asked, Failure> {
        let ip = server.addr.ip();
        let mut asking = Asking {
            transport: Transport::Udp,
            edns: true,
            mixed_case: self.config.mixed_case && self.servers.echoes_case(ip),
            bad_cookies: 0,
        };
        loop {
            if Instant::now() >= self.trail.deadline {
                return Err(Failure::limit(format!("gave up after {MAX_WALL_TIME:?}")));
            }
            if self.trail.upstream_queries >= MAX_UPSTREAM_QUERIES {
                return Err(Failure::limit(format!(
                    "more than {MAX_UPSTREAM_QUERIES} upstream queries"
                )));
            }
            // A bounded number of upstream questions are in flight at once,
            // and a quarter of them at most to one zone: a flood of client
            // questions must not become a flood upstream, nor a dead zone
            // keep the others waiting.
            let _slot = match self
                .upstream_slots
                .acquire(&LowerName::new(zone), self.trail.deadline.into())
                .await
            {
                Ok(slot) => slot,
                Err(Full::Zone) => {
                    return Err(Failure::limit(format!(
                        "too many questions to the servers of {zone} in flight (at most {} at once)",
                        self.upstream_slots.per_zone()
                    )));
                }
                Err(Full::All) => {
                    return Err(Failure::limit("too many upstream queries in flight"));
                }
            };
            self.trail.upstream_queries += 1;
            self.metrics.upstream_query();
            // The trace tells the question as asked, never in mixed case.
            let question = Question::new(name, rtype);
            self.trail.emit(TraceEvent::UpstreamQuery {
                server: server.clone(),
                zone: zone.to_string(),
                question: question.clone(),
                transport: asking.transport,
            });
            let (query, checks) = self.dressed(name, rtype, ip, &asking);
            let timeout = self.servers.timeout_for(ip).min(
                self.trail
                    .deadline
                    .saturating_duration_since(Instant::now()),
            );
            let sent = Instant::now();
            let result = exchange_checked(
                None,
                server.addr,
                &query,
                asking.transport,
                timeout,
                &checks,
            )
            .await;
            let rtt_us = sent.elapsed().as_micros() as u64;
            let ignored = match &result {
                Ok(exchanged) => exchanged.ignored,
                Err(ExchangeError::Timeout { ignored, .. }) => *ignored,
                Err(_) => Default::default(),
            };
            if !ignored.is_empty() {
                self.metrics.responses_ignored(&ignored);
                self.trail.emit(TraceEvent::ResponsesIgnored {
                    server: server.clone(),
                    question: question.clone(),
                    ignored,
                });
            }
            let tell = |walk: &mut Self, response, nsid| {
                walk.trail.emit(TraceEvent::UpstreamResponse {
                    server: server.clone(),
                    question: question.clone(),
                    response,
                    rtt_us,
                    nsid,
                });
            };
            let again = |reason: String| ResponseKind::Failure { reason };
            let response = match result {
                Ok(exchanged) => {
                    let response = exchanged.response;
                    if checks.client_cookie.is_some()
                        && let Some(cookie) = cookies::option_data(&response)
                    {
                        // Checked in the exchange: ours, with its server cookie.
                        self.servers
                            .keep_server_cookie(ip, ServerCookie::new(&cookie[8..]));
                    }
                    let nsid = nsid_of(&response);
                    let rcode = response.metadata.response_code;
                    if response.metadata.truncation && asking.transport == Transport::Udp {
                        self.servers.record_rtt(ip, exchanged.rtt);
                        tell(self, ResponseKind::Truncated, nsid);
                        asking.transport = Transport::Tcp;
                        continue;
                    }
                    if asking.edns && matches!(rcode, ResponseCode::FormErr | ResponseCode::NotImp)
                    {
                        // A server from before EDNS: ask again without it
                        // (RFC 6891 §7).
                        self.servers.record_rtt(ip, exchanged.rtt);
                        let reason = format!(
                            "{} to a query with EDNS; asking again without",
                            crate::trace::rcode_name(rcode)
                        );
                        tell(self, again(reason), nsid);
                        asking.edns = false;
                        continue;
                    }
                    if rcode == ResponseCode::BADCOOKIE && asking.bad_cookies < 2 {
                        // RFC 7873 §5.3: the server wants a cookie of its own
                        // first. Once more with the one it just sent, then
                        // over TCP, where it has the connection instead.
                        self.servers.record_rtt(ip, exchanged.rtt);
                        asking.bad_cookies += 1;
                        let reason = if asking.bad_cookies == 1 {
                            "BADCOOKIE: asking again with the server cookie it sent (RFC 7873 §5.3)"
                        } else {
                            asking.transport = Transport::Tcp;
                            "BADCOOKIE again: asking over TCP (RFC 7873 §5.3)"
                        };
                        tell(self, again(reason.into()), nsid);
                        continue;
                    }
                    // A server that cannot answer now is held down; one
                    // that does not serve the zone (REFUSED) is lame for it.
                    // A minimised question proves neither: the server may
                    // only choke on the shorter name.
                    if rcode == ResponseCode::ServFail && !minimised {
                        self.servers.record_failure(ip, exchanged.rtt);
                    } else {
                        self.servers.record_rtt(ip, exchanged.rtt);
                    }
                    (response, nsid)
                }
                Err(ExchangeError::Timeout { ignored, .. })
                    if asking.mixed_case && ignored.wrong_case > 0 =>
                {
                    // It answered, but only ever in another case: a server
                    // that does not echo the question's case (Unbound's
                    // use-caps-for-id meets some), asked again as asked.
                    self.servers.mark_case_blind(ip);
                    let reason = format!(
                        "answered only with the name in another case than sent (0x20): asking again as asked, and so for {} s",
                        CASE_BLIND_HOLD.as_secs()
                    );
                    tell(self, again(reason), None);
                    asking.mixed_case = false;
                    continue;
                }
                Err(ExchangeError::Timeout { ignored, .. })
                    if ignored.missing_cookie > 0 && asking.transport == Transport::Udp =>
                {
                    // Answers without the cookie it sent before: forged, or
                    // a server that stopped sending cookies. TCP tells (as
                    // BIND does); the old server cookie is forgotten.
                    self.servers.keep_server_cookie(ip, None);
                    let reason = "answered only without the cookie it sent before: asking over TCP, where answers cannot be forged blind".to_string();
                    tell(self, again(reason), None);
                    asking.transport = Transport::Tcp;
                    continue;
                }
                Err(error) => {
                    // No response: the server is held down, whatever was asked.
                    self.servers.record_failure(ip, timeout);
                    let (kind, response, reason) = match error {
                        ExchangeError::Timeout { .. } => {
                            self.metrics.upstream_timeout();
                            (
                                FailureKind::NoReachableAuthority,
                                ResponseKind::Timeout,
                                format!("{} ({}) did not answer", server.name, server.addr),
                            )
                        }
                        ExchangeError::Malformed { .. } => {
                            let reason = error.to_string();
                            (FailureKind::InvalidData, again(reason.clone()), reason)
                        }
                        ExchangeError::Io { .. } => {
                            // Refused connections and ICMP errors: as good as dead.
                            let reason = error.to_string();
                            (FailureKind::NetworkError, again(reason.clone()), reason)
                        }
                    };
                    tell(self, response, None);
                    return Ok(Asked::Failed(kind, reason));
                }
            };
            let (response, nsid) = response;

            let mut classified = classify(&response, zone, name, rtype);
            if response.metadata.response_code == ResponseCode::Refused {
                classified = Classified::Lame("REFUSED: it does not serve the zone".into());
            }
            tell(self, describe(&classified), nsid);
            let ignored = unused_answers(&response, &classified);
            if !ignored.is_empty() {
                self.trail.emit(TraceEvent::RecordsIgnored {
                    server: server.clone(),
                    records: ignored.iter().map(RecordView::from).collect(),
                });
            }
            if let Some(soa) = foreign_soa(&response, &classified, zone) {
                self.trail.emit(TraceEvent::ForeignSoaIgnored {
                    server: server.clone(),
                    zone: zone.to_string(),
                    soa: RecordView::from(&soa),
                    nxdomain: response.metadata.response_code == ResponseCode::NXDomain,
                });
            }
            return Ok(match classified {
                Classified::Lame(reason) => Asked::Lame(reason),
                Classified::Failure(reason) => Asked::Failed(
                    FailureKind::NoReachableAuthority,
                    format!("{} ({}) answered {reason}", server.name, server.addr),
                ),
                usable => {
                    let apex = match &usable {
                        Classified::Answer { .. } | Classified::Negative { .. } => {
                            apex_delegation(&response, zone)
                        }
                        _ => None,
                    };
                    let signed = validation::signed_records(&response, zone);
                    Asked::Usable(Box::new((usable, signed)), apex)
                }
            });
        }
    }

    /// The query for `name`/`rtype` to the server at `ip`, dressed as
    /// `asking` says, and what its response must show to be taken.
    fn dressed(
        &self,
        name: &Name,
        rtype: RecordType,
        ip: IpAddr,
        asking: &Asking,
    ) -> (Message, Checks) {
        let mut checks = Checks::default();
        let mut sent = name.clone();
        if asking.mixed_case {
            sent.randomize_label_case();
            checks.asked_as = Some(name.clone());
        }
        let mut query = make_query(&sent, rtype, false, asking.edns);
        if let Some(opt) = query.edns.as_mut() {
            // Validating: ask for the signatures (RFC 3225, RFC 4035 §4.1).
            if self.config.trust_anchors.is_some() {
                opt.set_dnssec_ok(true);
            }
            // Which server answered, when several share an address (RFC 5001).
            if let Ok(empty) = NSIDPayload::new(Vec::new()) {
                opt.options_mut().insert(EdnsOption::NSID(empty));
            }
            let (client, server) = self.servers.cookies_for(ip);
            let server = server.as_ref().map(ServerCookie::as_bytes);
            opt.options_mut()
                .insert(cookies::query_option(&client, server));
            checks.client_cookie = Some(client);
            checks.expect_cookie = server.is_some();
        }
        (query, checks)
    }
}

/// The NSID a server sent (RFC 5001), as text when it is printable, else in
/// hex as `dig` shows it.
fn nsid_of(response: &Message) -> Option<String> {
    let payload = match response.edns.as_ref()?.option(EdnsCode::NSID)? {
        EdnsOption::NSID(payload) => payload.as_ref(),
        EdnsOption::Unknown(_, data) => &data[..],
        _ => return None,
    };
    if payload.is_empty() {
        return None;
    }
    if payload.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Some(String::from_utf8_lossy(payload).into_owned());
    }
    Some(payload.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Edns;

    use super::*;

    fn with_nsid(payload: &[u8]) -> Message {
        let mut message = Message::query();
        let mut edns = Edns::new();
        edns.options_mut().insert(EdnsOption::NSID(
            NSIDPayload::new(payload.to_vec()).unwrap(),
        ));
        message.set_edns(edns);
        message
    }

    #[test]
    fn an_nsid_is_told_as_text_or_in_hex() {
        assert_eq!(
            nsid_of(&with_nsid(b"ns-2.awsdns-02.com")).as_deref(),
            Some("ns-2.awsdns-02.com")
        );
        assert_eq!(nsid_of(&with_nsid(&[0, 0xab])).as_deref(), Some("00ab"));
        assert_eq!(nsid_of(&with_nsid(b"")), None);
        assert_eq!(nsid_of(&Message::query()), None);
    }
}
