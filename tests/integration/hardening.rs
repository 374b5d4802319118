//! The resolver's side of issue 13, "Hardening, round two": each attack
//! that got through, performed in small on loopback against scripted or
//! real name servers, and the figure that says it no longer does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::resolver::Resolver;
use dnstrail::serve::ServeOptions;
use dnstrail::trace::TraceEvent;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio_util::sync::CancellationToken;

use dnstrail::serve::cookies::CookieSecret;

use crate::support::scripted::*;
use crate::support::{name, start_chain};

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 14, d))
}

/// Serve `resolver` to stub clients on a loopback port of its own, as
/// `dnstrail resolver` does; stops when the token is dropped.
async fn serve(resolver: &Resolver) -> (SocketAddr, tokio_util::sync::DropGuard) {
    let sockets = dnstrail::listen::bind_dns("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = sockets.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(dnstrail::resolver::run(
        resolver.clone(),
        vec![sockets],
        ServeOptions::default(),
        stop.clone(),
    ));
    (addr, stop.drop_guard())
}

/// Ask a resolver as a stub does (RD=1, EDNS), over `transport`.
async fn stub(addr: SocketAddr, qname: &str, rtype: RecordType, transport: Transport) -> Message {
    let query = make_query(&name(qname), rtype, true, true);
    exchange(addr, &query, transport, Duration::from_secs(10))
        .await
        .expect("the resolver answers")
        .response
}

// Item 7: the smaller ones.

#[tokio::test]
async fn zone_transfers_asked_of_the_resolver_are_refused() {
    let chain = start_chain().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        for rtype in [RecordType::AXFR, RecordType::IXFR] {
            let response = stub(chain.addr, "example.com.", rtype, transport).await;
            assert_eq!(
                response.metadata.response_code,
                ResponseCode::Refused,
                "{rtype} over {transport}"
            );
        }
    }
    let refused = chain
        .resolver
        .recent()
        .into_iter()
        .rev()
        .find(|r| r.question.rtype == RecordType::AXFR)
        .expect("the refusal is recorded");
    let said = refused.events.iter().find_map(|t| match &t.event {
        TraceEvent::AnswerReturned {
            failure,
            upstream_queries,
            ..
        } => Some((failure.clone(), *upstream_queries)),
        _ => None,
    });
    let (why, upstream) = said.expect("an answer");
    assert_eq!(upstream, 0, "no server is asked for a transfer");
    assert!(
        why.is_some_and(|w| w.contains("does not transfer zones")),
        "the trace says why"
    );
    chain.stop().await;
}

/// An SOA with this TTL and MINIMUM.
fn soa_ttl(zone: &str, ttl: u32) -> Record {
    Record::from_rdata(
        n(zone),
        ttl,
        RData::SOA(SOA::new(
            n("ns.ttl.zz."),
            n("admin.ttl.zz."),
            1,
            2,
            3,
            4,
            ttl,
        )),
    )
}

#[tokio::test]
async fn the_largest_ttl_a_server_may_send_is_capped_on_the_first_answer_too() {
    const LARGEST: u32 = 0x7fff_ffff;
    let script: Arc<Script> = Arc::new(|server, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("ttl.zz.", "ns.ttl.zz.")],
                vec![glue("ns.ttl.zz.", ip(2))],
            ));
        }
        let (qname, _) = asked(query);
        if qname == "forever.ttl.zz." {
            send(answer(query, vec![a_ttl(&qname, [192, 0, 2, 7], LARGEST)]))
        } else {
            send(denial(query, true, vec![soa_ttl("ttl.zz.", LARGEST)]))
        }
    });
    let resolver = resolver_over(&[ip(1), ip(2)], script).await;
    let (addr, _stop) = serve(&resolver).await;
    // The first answer comes from the server, the second from the cache
    // (the message cache, on the receive path): both within the limits.
    for round in ["first", "second"] {
        let answer = stub(addr, "forever.ttl.zz.", RecordType::A, Transport::Udp).await;
        assert_eq!(answer.answers.len(), 1, "{round}");
        assert_eq!(answer.answers[0].ttl, 86_400, "{round}: --max-ttl");
        let denial = stub(addr, "never.ttl.zz.", RecordType::A, Transport::Udp).await;
        assert_eq!(denial.metadata.response_code, ResponseCode::NXDomain);
        let soa = &denial.authorities[0];
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert_eq!(
            soa.ttl,
            3 * 3600,
            "{round}: a denial is kept three hours at most"
        );
    }
}

#[tokio::test]
async fn a_denial_with_another_zones_soa_is_passed_on_without_it_and_says_why() {
    let script: Arc<Script> = Arc::new(|server, query| {
        if server == ip(3) {
            return send(referral(
                query,
                vec![ns("victim.zz.", "ns.victim.zz.")],
                vec![glue("ns.victim.zz.", ip(4))],
            ));
        }
        // An SOA for the root itself, with a TTL to keep the "denial" a day.
        send(denial(query, true, vec![soa_ttl(".", 86_400)]))
    });
    let resolver = resolver_over(&[ip(3), ip(4)], script).await;
    let answered = resolve(&resolver, "www.victim.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NXDomain);
    assert!(
        answered.authorities.is_empty(),
        "{:?}",
        answered.authorities
    );
    let why = events(&answered).into_iter().find_map(|e| match e {
        TraceEvent::ForeignSoaIgnored {
            zone,
            soa,
            nxdomain,
            ..
        } => Some((zone, soa.name, nxdomain)),
        _ => None,
    });
    assert_eq!(why, Some(("victim.zz.".into(), ".".into(), true)));
    // Not cached: the next question asks again.
    let again = resolve(&resolver, "www.victim.zz.").await;
    assert!(!asked_servers(&again).is_empty());
}

// Item 3: forged responses when the port is known. 0x20 first.

/// `name` with the case of every letter turned over.
fn case_flipped(name: &hickory_proto::rr::Name) -> hickory_proto::rr::Name {
    let flipped: String = name
        .to_ascii()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    hickory_proto::rr::Name::from_ascii(flipped).unwrap()
}

/// Why a resolution asked a server again: the reasons its upstream
/// responses were taken as failures.
fn failures_told(answered: &dnstrail::resolver::Answered) -> Vec<String> {
    events(answered)
        .into_iter()
        .filter_map(|e| match e {
            TraceEvent::UpstreamResponse {
                response: dnstrail::trace::ResponseKind::Failure { reason },
                ..
            } => Some(reason),
            _ => None,
        })
        .collect()
}

/// The responses a resolution ignored, as its trace counts them.
fn ignored_in(answered: &dnstrail::resolver::Answered) -> Option<dnstrail::exchange::Ignored> {
    events(answered).into_iter().find_map(|e| match e {
        TraceEvent::ResponsesIgnored { ignored, .. } => Some(ignored),
        _ => None,
    })
}

/// Every occurrence of `lower` in `text`, found without case, is in
/// lowercase: no mixed case leaked into it.
fn assert_lowercase_everywhere(text: &str, lower: &str, what: &str) {
    let folded = text.to_ascii_lowercase();
    let mut found = 0;
    for (at, _) in folded.match_indices(lower) {
        assert_eq!(&text[at..at + lower.len()], lower, "{what}: {text}");
        found += 1;
    }
    assert!(found > 0, "{what} never mentions {lower}");
}

/// A root that refers `zone` to a server at `server`, and echoes the case.
fn refer(query: &Message, zone: &str, server: IpAddr) -> Vec<Reply> {
    let host = format!("ns.{zone}");
    send(referral(
        query,
        vec![ns(zone, &host)],
        vec![glue(&host, server)],
    ))
}

/// The names the scripted servers were sent, by server, as sent.
type Received = Arc<std::sync::Mutex<Vec<(IpAddr, String)>>>;

/// Scripted servers that note every name they are sent, in the case sent:
/// `root` refers `zone` to `server`, which answers as `reply` says.
fn noting_names(
    root: IpAddr,
    zone: &'static str,
    server: IpAddr,
    reply: impl Fn(&Message) -> Message + Send + Sync + 'static,
) -> (Arc<Script>, Received) {
    let received = Received::default();
    let log = received.clone();
    let script: Arc<Script> = Arc::new(move |at, query| {
        log.lock()
            .unwrap()
            .push((at, query.queries[0].name().to_ascii()));
        if at == root {
            return refer(query, zone, server);
        }
        send(reply(query))
    });
    (script, received)
}

/// The names `server` was sent, as sent.
fn names_sent_to(received: &Received, server: IpAddr) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at == server)
        .map(|(_, name)| name.clone())
        .collect()
}

#[tokio::test]
async fn questions_go_upstream_in_mixed_case_and_are_told_as_asked() {
    let (script, received) = noting_names(ip(10), "mixed-case.zz.", ip(11), |query| {
        // Owners and a CNAME's target written with the question's own
        // labels, in its case: the encoder points them at the question,
        // as NSD, Knot and BIND do.
        let sent = query.queries[0].name().clone();
        let target = hickory_proto::rr::Name::from_ascii("web")
            .unwrap()
            .append_domain(&sent.base_name())
            .unwrap();
        let alias = Record::from_rdata(
            sent,
            300,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(target.clone())),
        );
        let address = Record::from_rdata(
            target,
            300,
            RData::A(hickory_proto::rr::rdata::A::new(192, 0, 2, 8)),
        );
        answer(query, vec![alias, address])
    });
    let resolver = resolver_over(&[ip(10), ip(11)], script).await;
    let answered = resolve(&resolver, "www.mixed-case.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NoError);

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "{received:?}");
    for (_, sent) in &received {
        assert_eq!(sent.to_ascii_lowercase(), "www.mixed-case.zz.");
    }
    // 28 letters at random: all lowercase once in 268 million runs.
    assert!(
        received
            .iter()
            .any(|(_, sent)| sent.chars().any(|c| c.is_ascii_uppercase())),
        "sent in mixed case: {received:?}"
    );
    let records: Vec<(String, String)> = answered
        .answers
        .iter()
        .map(|r| (r.name.to_string(), r.data.to_string()))
        .collect();
    assert_eq!(
        records,
        [
            ("www.mixed-case.zz.".into(), "web.mixed-case.zz.".into()),
            ("web.mixed-case.zz.".into(), "192.0.2.8".into()),
        ],
        "as asked, compressed names included"
    );
    let trace = serde_json::to_string(&events(&answered)).unwrap();
    assert_lowercase_everywhere(&trace, "mixed-case.zz", "the trace");
    let story: Vec<String> = dnstrail::story::tell_all("asks", &answered.events)
        .into_iter()
        .map(|line| line.text)
        .collect();
    assert_lowercase_everywhere(&story.join("\n"), "mixed-case.zz", "the story");
    let cached = serde_json::to_string(&resolver.cache().entries()).unwrap();
    assert_lowercase_everywhere(&cached, "mixed-case.zz", "the cache");
}

#[tokio::test]
async fn an_answer_in_another_case_than_sent_is_ignored_as_forged() {
    let script: Arc<Script> = Arc::new(|server, query| {
        if server == ip(12) {
            return refer(query, "forged-case.zz.", ip(13));
        }
        let (qname, _) = asked(query);
        // Right ID, right port, right question but for its case: what a
        // forger who read the port from /proc sends.
        let mut forged = answer(query, vec![a(&qname, [6, 6, 6, 6])]);
        let flipped = case_flipped(query.queries[0].name());
        forged.queries[0].set_name(flipped);
        let genuine = answer(query, vec![a(&qname, [192, 0, 2, 9])]);
        [forged, genuine]
            .into_iter()
            .map(|message| Reply {
                message,
                from: None,
            })
            .collect()
    });
    let resolver = resolver_over(&[ip(12), ip(13)], script).await;
    let answered = resolve(&resolver, "www.forged-case.zz.").await;
    assert_eq!(
        dnstrail::dns::addresses(&answered.answers),
        [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))]
    );
    assert_eq!(
        ignored_in(&answered).map(|i| i.wrong_case),
        Some(1),
        "told in the trace"
    );
    assert_eq!(resolver.metrics().upstream_ignored().wrong_case, 1);
    assert!(
        resolver
            .metrics()
            .render(0)
            .contains("dnstrail_upstream_ignored_total{reason=\"wrong_case\"} 1")
    );
    assert_not_poisoned(&resolver);
}

#[tokio::test]
async fn a_server_that_does_not_echo_case_is_asked_as_asked_and_remembered() {
    let (script, received) = noting_names(ip(14), "case-blind-server.zz.", ip(15), |query| {
        // An old server that answers in lowercase whatever it was asked.
        let (qname, _) = asked(query);
        let mut message = answer(query, vec![a(&qname, [192, 0, 2, 10])]);
        message.queries[0].set_name(n(&qname));
        message
    });
    let resolver = resolver_over(&[ip(14), ip(15)], script).await;
    let first = resolve(&resolver, "www.case-blind-server.zz.").await;
    assert_eq!(first.rcode, ResponseCode::NoError);
    assert!(
        failures_told(&first).iter().any(|r| r.contains("0x20")),
        "the trace says why it asks again"
    );
    let asked_blind = names_sent_to(&received, ip(15));
    assert_eq!(asked_blind.len(), 2, "{asked_blind:?}");
    assert_eq!(asked_blind[1], "www.case-blind-server.zz.", "as asked");

    // Remembered: the next question goes as asked at once.
    let second = resolve(&resolver, "mail.case-blind-server.zz.").await;
    assert_eq!(second.rcode, ResponseCode::NoError);
    assert_eq!(asked_servers(&second), [ip(15)]);
    assert_eq!(
        names_sent_to(&received, ip(15))[2..],
        ["mail.case-blind-server.zz.".to_string()]
    );
}

#[tokio::test]
async fn without_0x20_names_go_upstream_as_asked() {
    let (script, received) = noting_names(ip(16), "plain-case.zz.", ip(17), |query| {
        let (qname, _) = asked(query);
        answer(query, vec![a(&qname, [192, 0, 2, 11])])
    });
    let config = dnstrail::resolver::Config {
        mixed_case: false,
        ..Default::default()
    };
    let resolver = resolver_with(&[ip(16), ip(17)], script, config).await;
    let answered = resolve(&resolver, "www.plain-case.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NoError);
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|(_, sent)| sent == "www.plain-case.zz.")
    );
}

// Item 3, continued: DNS cookies as a client (RFC 7873, RFC 9018).

/// The address the resolver's questions come from on loopback, which a
/// scripted server's cookies are made for.
const RESOLVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `message` with a COOKIE option: `client` and a fresh server cookie of
/// `secret`'s, as a name server answers.
fn with_cookie(mut message: Message, secret: &CookieSecret, client: &[u8; 8]) -> Message {
    let mut edns = hickory_proto::op::Edns::new();
    edns.options_mut()
        .insert(secret.answer_option(client, RESOLVER_IP));
    message.set_edns(edns);
    message
}

/// The client cookie of a query, if it carried one.
fn client_cookie(query: &Message) -> Option<[u8; 8]> {
    let data = dnstrail::serve::cookies::option_data(query)?;
    data.get(..8)?.try_into().ok()
}

#[tokio::test]
async fn the_resolver_sends_each_server_its_own_client_cookie_and_returns_its_server_cookie() {
    let secret = CookieSecret::default();
    // Each query's COOKIE option, by server, and whether its server cookie
    // was one the server made.
    type Sent = Vec<(IpAddr, Vec<u8>, bool)>;
    let cookies: Arc<std::sync::Mutex<Sent>> = Default::default();
    let log = cookies.clone();
    let script: Arc<Script> = Arc::new(move |server, query| {
        let data = dnstrail::serve::cookies::option_data(query)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let valid = matches!(
            secret.read(query, RESOLVER_IP),
            dnstrail::serve::cookies::Cookies::Present {
                server_valid: true,
                ..
            }
        );
        log.lock().unwrap().push((server, data, valid));
        if server == ip(20) {
            // The root does not do cookies at all.
            return refer(query, "cookies.zz.", ip(21));
        }
        let (qname, _) = asked(query);
        let client = client_cookie(query).expect("a client cookie");
        let reply = answer(query, vec![a(&qname, [192, 0, 2, 20])]);
        send(with_cookie(reply, &secret, &client))
    });
    let resolver = resolver_over(&[ip(20), ip(21)], script).await;
    for name in ["one.cookies.zz.", "two.cookies.zz."] {
        assert_eq!(resolve(&resolver, name).await.rcode, ResponseCode::NoError);
    }
    let cookies = cookies.lock().unwrap().clone();
    let sent: Vec<(IpAddr, usize, bool)> = cookies
        .iter()
        .map(|(server, data, valid)| (*server, data.len(), *valid))
        .collect();
    assert_eq!(
        sent,
        [
            (ip(20), 8, false),
            // A client cookie alone, then with the server cookie it got.
            (ip(21), 8, false),
            (ip(21), 24, true),
        ]
    );
    // The same client cookie to one server, another to the next.
    assert_eq!(cookies[1].1[..8], cookies[2].1[..8]);
    assert_ne!(cookies[0].1[..8], cookies[1].1[..8]);
}

/// The address a cookie server's genuine answers give.
const GENUINE: [u8; 4] = [192, 0, 2, 21];

/// Scripted servers for a forger's attempts: `root` refers `zone` to
/// `server`, which answers with cookies as a name server that does them.
/// For any name but `first.…`, the forgeries `forge` makes of the query
/// reach the resolver first, from the server's own address and port.
fn forged_before_genuine(
    root: IpAddr,
    zone: &'static str,
    server: IpAddr,
    forge: impl Fn(&Message, &str, &CookieSecret) -> Vec<Message> + Send + Sync + 'static,
) -> Arc<Script> {
    let secret = CookieSecret::default();
    Arc::new(move |at, query| {
        if at == root {
            return refer(query, zone, server);
        }
        let (qname, _) = asked(query);
        let client = client_cookie(query).expect("a client cookie");
        let genuine = with_cookie(answer(query, vec![a(&qname, GENUINE)]), &secret, &client);
        let mut messages = Vec::new();
        if !qname.starts_with("first.") {
            messages = forge(query, &qname, &secret);
        }
        messages.push(genuine);
        messages
            .into_iter()
            .map(|message| Reply {
                message,
                from: None,
            })
            .collect()
    })
}

/// Nothing a forger sent is in the resolver's cache: its answers all give
/// addresses in 6.6.6.0/24.
fn assert_not_poisoned(resolver: &Resolver) {
    let cached = serde_json::to_string(&resolver.cache().entries()).unwrap();
    assert!(!cached.contains("6.6.6."), "{cached}");
}

#[tokio::test]
async fn answers_with_a_cookie_not_ours_or_none_from_a_cookie_server_are_ignored() {
    let script = forged_before_genuine(
        ip(22),
        "cookie-forgery.zz.",
        ip(23),
        |query, qname, secret| {
            // The forger knows the port and sprays IDs, but not the cookie:
            // it guesses one, or leaves it out.
            let guessed = with_cookie(
                answer(query, vec![a(qname, [6, 6, 6, 6])]),
                secret,
                &[0x66; 8],
            );
            let without = answer(query, vec![a(qname, [6, 6, 6, 7])]);
            vec![guessed, without]
        },
    );
    let resolver = resolver_over(&[ip(22), ip(23)], script).await;
    let first = resolve(&resolver, "first.cookie-forgery.zz.").await;
    assert_eq!(first.rcode, ResponseCode::NoError);
    // Now the resolver has the server's cookie, and expects it back.
    let second = resolve(&resolver, "second.cookie-forgery.zz.").await;
    assert_eq!(
        dnstrail::dns::addresses(&second.answers),
        [IpAddr::from(GENUINE)]
    );
    let ignored = ignored_in(&second).expect("told in the trace");
    assert_eq!((ignored.wrong_cookie, ignored.missing_cookie), (1, 1));
    assert_not_poisoned(&resolver);
}

#[tokio::test]
async fn badcookie_is_answered_by_asking_again_with_the_new_server_cookie() {
    let secret = CookieSecret::default();
    let script: Arc<Script> = Arc::new(move |server, query| {
        if server == ip(24) {
            return refer(query, "badcookie.zz.", ip(25));
        }
        let client = client_cookie(query).expect("a client cookie");
        let valid = matches!(
            secret.read(query, RESOLVER_IP),
            dnstrail::serve::cookies::Cookies::Present {
                server_valid: true,
                ..
            }
        );
        // A server that answers only clients that bring its cookie back.
        let reply = if valid {
            let (qname, _) = asked(query);
            answer(query, vec![a(&qname, [192, 0, 2, 22])])
        } else {
            rcode(query, ResponseCode::BADCOOKIE)
        };
        send(with_cookie(reply, &secret, &client))
    });
    let resolver = resolver_over(&[ip(24), ip(25)], script).await;
    let answered = resolve(&resolver, "www.badcookie.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NoError);
    assert_eq!(asked_servers(&answered), [ip(24), ip(25), ip(25)]);
    assert!(
        failures_told(&answered)
            .iter()
            .any(|r| r.starts_with("BADCOOKIE")),
        "the trace says why it asked again"
    );
}

/// The attack of issue 13 item 3 in small: a forger who has read the
/// resolver's port, and even has its ID right, sprays answers. Without
/// the question's case and the client cookie it cannot be taken.
#[tokio::test]
async fn a_forger_who_knows_the_port_and_the_id_is_still_ignored() {
    const FORGERIES: usize = 100;
    let script = forged_before_genuine(
        ip(26),
        "a-rather-long-name-to-poison.zz.",
        ip(27),
        |query, qname, secret| {
            (0..FORGERIES)
                .map(|i| {
                    let forged = answer(query, vec![a(qname, [6, 6, 6, 6])]);
                    if i % 2 == 0 {
                        // A guess at the case, and no cookie.
                        let mut guess = n(qname);
                        guess.randomize_label_case();
                        let mut forged = forged;
                        forged.queries[0].set_name(guess);
                        forged
                    } else {
                        // The case right (as if guessed), a client cookie guessed.
                        with_cookie(forged, secret, &rand::random())
                    }
                })
                .collect()
        },
    );
    let resolver = resolver_over(&[ip(26), ip(27)], script).await;
    let first = resolve(&resolver, "first.a-rather-long-name-to-poison.zz.").await;
    assert_eq!(first.rcode, ResponseCode::NoError);
    let target = resolve(&resolver, "www.a-rather-long-name-to-poison.zz.").await;
    assert_eq!(
        dnstrail::dns::addresses(&target.answers),
        [IpAddr::from(GENUINE)],
        "not poisoned"
    );
    let ignored = resolver.metrics().upstream_ignored();
    eprintln!(
        "forgeries with the right port and ID: {FORGERIES} sent, {} ignored ({} in the wrong case, {} with a cookie not ours, {} without the cookie), 0 taken",
        ignored.total(),
        ignored.wrong_case,
        ignored.wrong_cookie,
        ignored.missing_cookie
    );
    assert_eq!(ignored.total() as usize, FORGERIES);
    assert_eq!(ignored.wrong_cookie as usize, FORGERIES / 2);
    assert_not_poisoned(&resolver);
}

// Issue 18's leftover: which server answered (NSID, RFC 5001).

#[tokio::test]
async fn the_trace_and_the_story_say_which_server_answered_by_its_nsid() {
    let mut servers =
        dnstrail::stack::StackConfig::name_servers(crate::support::demo_topology(), 0);
    servers.nsid = true;
    let chain = crate::support::start_chain_from(
        servers,
        dnstrail::resolver::Config::default(),
        ServeOptions::default(),
    )
    .await;
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    let named: Vec<(String, Option<String>)> = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::UpstreamResponse { server, nsid, .. } => {
                Some((server.name.trim_end_matches('.').to_string(), nsid.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(named.len(), 3, "{named:?}");
    for (server, nsid) in &named {
        assert_eq!(nsid.as_deref(), Some(server.as_str()));
    }
    let resolution = chain
        .resolver
        .recent()
        .into_iter()
        .rev()
        .find(|r| r.question.name == "www.example.com.")
        .unwrap();
    let story = dnstrail::story::tell_all("asks", &resolution.events);
    let answer = story
        .iter()
        .find(|line| line.number == Some(6))
        .expect("step 6");
    let (last, _) = named.last().unwrap();
    assert!(
        answer.text.contains(&format!("[nsid {last}]")),
        "{}",
        answer.text
    );
    // Only the answer's line says it.
    assert_eq!(story.iter().filter(|l| l.text.contains("[nsid")).count(), 1);
    chain.stop().await;
}

// Item 5: floods that hurt legitimate users.

/// p50 and p99 of some durations, for the figures the tests print.
fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (at(50), at(99))
}

/// A name server at `addr` that answers every question, but only after
/// `delay`: a tarpit, holding each question the resolver sends it that long.
async fn tarpit(addr: SocketAddr, delay: Duration) {
    let socket = Arc::new(tokio::net::UdpSocket::bind(addr).await.unwrap());
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((len, client)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let socket = socket.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let (qname, _) = asked(&query);
                let reply = answer(&query, vec![a(&qname, [192, 0, 2, 31])]);
                let _ = socket.send_to(&reply.to_vec().unwrap(), client).await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_whose_servers_never_answer_or_answer_late_do_not_starve_a_healthy_zone() {
    // Enough that, without a share per zone, the tarpit's questions alone
    // would keep every slot busy for twice the walks' deadline (3 s).
    const FLOOD: usize = 400;
    const HEALTHY_LOOKUPS: usize = 50;
    const SLOTS: usize = 8;
    let script: Arc<Script> = Arc::new(move |server, query| {
        let (qname, _) = asked(query);
        if server == ip(30) {
            let (zone, at) = match qname.rsplit('.').nth(2) {
                Some("dead") => ("dead.zz.", ip(31)),
                Some("tarpit") => ("tarpit.zz.", ip(33)),
                _ => ("healthy.zz.", ip(32)),
            };
            return refer(query, zone, at);
        }
        if server == ip(31) {
            // Never answers: every question waits out its timeout.
            return Vec::new();
        }
        send(answer(query, vec![a(&qname, [192, 0, 2, 30])]))
    });
    let config = dnstrail::resolver::Config {
        max_outstanding: SLOTS,
        ..Default::default()
    };
    let resolver = resolver_with(&[ip(30), ip(31), ip(32)], script, config).await;
    // The tarpit answers within the resolver's timeout, so it is never
    // held down: each question to it holds a slot for the whole delay.
    let port = resolver.config().upstream_port;
    tarpit(SocketAddr::new(ip(33), port), Duration::from_millis(250)).await;
    // Both zones' servers known: their questions go straight to them.
    for zone in ["healthy", "tarpit"] {
        let warm = resolve(&resolver, &format!("warm.{zone}.zz.")).await;
        assert_eq!(warm.rcode, ResponseCode::NoError, "{zone}");
    }

    // The flood: questions for names in both bad zones, all at once.
    let mut trace = resolver.trace().subscribe();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let resolver = resolver.clone();
            let zone = if i % 2 == 0 { "dead" } else { "tarpit" };
            tokio::spawn(async move { resolve(&resolver, &format!("n{i}.{zone}.zz.")).await })
        })
        .collect();
    // Every flood question has missed the cache: each is now out, or
    // waiting for a slot, ahead of the healthy zone's.
    let missed = async {
        for _ in 0..FLOOD {
            trace
                .wait_for(|t| matches!(&t.event, TraceEvent::CacheMiss { .. }))
                .await
                .expect("the trace goes on");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), missed)
        .await
        .expect("the flood is under way");
    assert_eq!(trace.dropped(), 0, "the count is whole");

    let healthy: Vec<_> = (0..HEALTHY_LOOKUPS)
        .map(|i| {
            let resolver = resolver.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let answered = resolve(&resolver, &format!("n{i}.healthy.zz.")).await;
                (answered.rcode, answered.failure, started.elapsed())
            })
        })
        .collect();
    let mut times = Vec::new();
    for lookup in healthy {
        let (rcode, failure, took) = lookup.await.unwrap();
        assert_eq!(rcode, ResponseCode::NoError, "{failure:?}");
        times.push(took);
    }
    let (p50, p99) = percentiles(times);
    let share = SLOTS / 4;
    eprintln!(
        "healthy-zone lookups beside {FLOOD} to a dead zone and a tarpit ({SLOTS} slots, {share} for one zone): {HEALTHY_LOOKUPS} of {HEALTHY_LOOKUPS} answered, p50 {p50:?}, p99 {p99:?}"
    );
    for lookup in flood {
        lookup.abort();
    }
}

/// The flood of issue 13 item 5 in small: 20,000 names that do not exist,
/// asked as fast as 32 clients can, against a resolver with room for only
/// 1,000 entries; meanwhile another client asks for the popular name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_nxdomain_names_keeps_a_popular_answer_cached_and_fast() {
    use std::sync::atomic::{AtomicBool, Ordering};

    const FLOOD: usize = 20_000;
    const LANES: usize = 32;
    let config = dnstrail::resolver::Config {
        cache_size: 1_000,
        ..Default::default()
    };
    let chain = crate::support::start_chain_on(crate::support::demo_topology(), config).await;
    let resolver_addr = chain.addr;
    // The popular answer: cached, and kept whole for the hot path. It
    // lives 300 s; every denial of the flood 900 s, so by expiry alone it
    // would be the first to go.
    let (first, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(first.answers.len(), 1);
    let replayed_before = chain.resolver.metrics().replayed_total();

    let flooding = Arc::new(AtomicBool::new(true));
    // The other client: a thread of its own with a plain socket, so that
    // what it measures is the resolver's answer, not its own turn on the
    // runtime the flood keeps busy.
    let popular = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(resolver_addr).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 1232];
            let mut times = Vec::new();
            let mut unanswered = 0;
            while flooding.load(Ordering::Relaxed) {
                let query = make_query(&name("www.example.com."), RecordType::A, true, true);
                let started = std::time::Instant::now();
                socket.send(&query.to_vec().unwrap()).unwrap();
                let Ok(len) = socket.recv(&mut buf) else {
                    unanswered += 1;
                    continue;
                };
                let took = started.elapsed();
                let answer = Message::from_vec(&buf[..len]).unwrap();
                assert_eq!(answer.metadata.id, query.metadata.id);
                assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
                assert_eq!(answer.answers.len(), 1);
                times.push(took);
                // A user's pace, not a second flood: the samples are plenty.
                std::thread::sleep(Duration::from_millis(1));
            }
            (times, unanswered)
        })
    };
    let started = std::time::Instant::now();
    let lanes: Vec<_> = (0..LANES)
        .map(|lane| {
            tokio::spawn(async move {
                let mut denied = 0;
                for i in (lane..FLOOD).step_by(LANES) {
                    let query = make_query(
                        &name(&format!("f{i}.example.com.")),
                        RecordType::A,
                        true,
                        true,
                    );
                    if let Ok(answer) = exchange(
                        resolver_addr,
                        &query,
                        Transport::Udp,
                        Duration::from_secs(5),
                    )
                    .await
                        && answer.response.metadata.response_code == ResponseCode::NXDomain
                    {
                        denied += 1;
                    }
                }
                denied
            })
        })
        .collect();
    let mut denied = 0;
    for lane in lanes {
        denied += lane.await.unwrap();
    }
    let flood_took = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let (times, unanswered) = popular.join().unwrap();

    let asked = times.len();
    let (p50, p99) = percentiles(times);
    eprintln!(
        "NXDOMAIN flood: {denied} of {FLOOD} names denied in {flood_took:?}; beside it the popular name was asked {} times: {asked} answered, {unanswered} unanswered, p50 {p50:?}, p99 {p99:?}",
        asked + unanswered
    );
    assert_eq!(unanswered, 0, "no cached answer timed out");
    assert!(asked > 0);
    // Every one answered on the hot path, from the message cache: the
    // flood never pushed it out.
    let replayed = chain.resolver.metrics().replayed_total() - replayed_before;
    assert_eq!(replayed as usize, asked, "all replayed");
    // Nor out of the cache itself, which stayed within its size.
    let www = hickory_proto::rr::LowerName::new(&name("www.example.com."));
    assert!(chain.resolver.cache().answer(&www, RecordType::A).is_some());
    assert!(chain.resolver.cache().len() <= 1_000);
    assert!(denied > FLOOD * 9 / 10, "the flood was answered: {denied}");
    chain.stop().await;
}
