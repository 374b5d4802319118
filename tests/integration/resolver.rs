//! The caching recursive resolver against the project's own name servers:
//! the story's cold walk, the cache, the clock, failures and forgeries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dnstrail::dns::addresses;
use dnstrail::exchange::Transport;
use dnstrail::trace::{CacheKind, ResponseKind, TraceEvent};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::support::*;

const WEB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 44));

fn count_upstream(events: &[TraceEvent]) -> usize {
    upstream_hops(events).len()
}

#[tokio::test]
async fn cold_resolution_walks_root_com_then_one_hosted_zone_server() {
    let chain = start_chain().await;
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.recursion_available);
    assert!(!response.metadata.authoritative);
    assert_eq!(addresses(&response.answers), [WEB]);

    let hops = upstream_hops(&events);
    assert_eq!(hops.len(), 3, "{hops:?}");
    assert_eq!(hops[0], (".".into(), "a.root-servers.net.".into()));
    assert_eq!(hops[1], ("com.".into(), "a.gtld-servers.net.".into()));
    assert_eq!(hops[2].0, "example.com.");
    let auth_names: Vec<String> = chain
        .stack
        .topology
        .find_servers("auth")
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert!(auth_names.contains(&hops[2].1), "{:?}", hops[2]);

    // The responses in order: two referrals, then the answer.
    let responses: Vec<&ResponseKind> = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::UpstreamResponse { response, .. } => Some(response),
            _ => None,
        })
        .collect();
    assert!(matches!(responses[0], ResponseKind::Referral { zone, glue: 1, .. } if zone == "com."));
    assert!(
        matches!(responses[1], ResponseKind::Referral { zone, servers, glue: 4 } if zone == "example.com." && servers.len() == 4)
    );
    assert!(
        matches!(responses[2], ResponseKind::Answer { records } if records[0].data == "127.0.0.44")
    );

    // The delegation is cached for two days, the answer for its 300 s.
    assert!(events.iter().any(|e| matches!(e,
        TraceEvent::Cached { kind: CacheKind::Delegation, name, ttl: 172800, .. } if name == "example.com.")));
    assert!(events.iter().any(|e| matches!(e,
        TraceEvent::Cached { kind: CacheKind::Answer, name, ttl: 300, .. } if name == "www.example.com.")));
    // The order of the story: question, miss, queries, answer returned.
    assert!(matches!(
        events.first(),
        Some(TraceEvent::QuestionReceived { .. })
    ));
    assert!(matches!(events[1], TraceEvent::CacheMiss { .. }));
    let last = events.last().unwrap();
    assert!(
        matches!(last, TraceEvent::AnswerReturned { rcode, upstream_queries: 3, .. } if *rcode == ResponseCode::NoError),
        "{last:?}"
    );
    chain.stop().await;
}

#[tokio::test]
async fn second_question_is_answered_from_cache_with_a_smaller_ttl() {
    let chain = start_chain().await;
    chain.ask("www.example.com.", RecordType::A).await;
    chain.resolver.clock().advance(Duration::from_secs(10));
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(count_upstream(&events), 0, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TraceEvent::CacheAnswerHit { .. }))
    );
    assert_eq!(addresses(&response.answers), [WEB]);
    assert!(
        response.answers[0].ttl <= 290,
        "TTL counts down: {}",
        response.answers[0].ttl
    );
    chain.stop().await;
}

#[tokio::test]
async fn after_the_answer_expires_only_the_hosted_zone_is_asked() {
    let chain = start_chain().await;
    chain.ask("www.example.com.", RecordType::A).await;
    chain.resolver.clock().advance(Duration::from_secs(301));
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(addresses(&response.answers), [WEB]);
    let hops = upstream_hops(&events);
    assert_eq!(hops.len(), 1, "{hops:?}");
    assert_eq!(hops[0].0, "example.com.");
    let skipped = events.iter().find_map(|e| match e {
        TraceEvent::CacheDelegationHit {
            zone, skipped, ttl, ..
        } if zone == "example.com." => Some((skipped.clone(), *ttl)),
        _ => None,
    });
    let (skipped, ttl) = skipped.expect("a delegation hit");
    assert_eq!(skipped, [".", "com."]);
    assert!(ttl < 172800 && ttl > 172000, "{ttl}");
    chain.stop().await;
}

#[tokio::test]
async fn after_two_days_the_root_is_asked_again() {
    let chain = start_chain().await;
    chain.ask("www.example.com.", RecordType::A).await;
    chain.resolver.clock().advance(Duration::from_secs(172_801));
    let (_, events) = chain.ask("www.example.com.", RecordType::A).await;
    let hops = upstream_hops(&events);
    assert_eq!(hops.first().map(|h| h.0.as_str()), Some("."), "{hops:?}");
    assert_eq!(hops.len(), 3);
    chain.stop().await;
}

#[tokio::test]
async fn nxdomain_is_cached_and_served_from_cache() {
    let chain = start_chain().await;
    let (first, events) = chain.ask("nope.example.com.", RecordType::A).await;
    assert_eq!(first.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(first.authorities[0].record_type(), RecordType::SOA);
    assert!(events.iter().any(|e| matches!(
        e,
        TraceEvent::Cached {
            kind: CacheKind::Negative,
            ttl: 900,
            ..
        }
    )));
    // NXDOMAIN covers every type at the name (RFC 2308 §5).
    let (second, events) = chain.ask("nope.example.com.", RecordType::AAAA).await;
    assert_eq!(second.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(count_upstream(&events), 0);
    assert!(events.iter().any(|e| matches!(e,
        TraceEvent::CacheNegativeHit { rcode, .. } if *rcode == ResponseCode::NXDomain)));
    assert!(second.authorities[0].ttl < 900);
    chain.stop().await;
}

#[tokio::test]
async fn nodata_is_cached_for_the_type_only() {
    let chain = start_chain().await;
    let (nodata, _) = chain.ask("www.example.com.", RecordType::TXT).await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    let (again, events) = chain.ask("www.example.com.", RecordType::TXT).await;
    assert!(again.answers.is_empty());
    assert_eq!(count_upstream(&events), 0);
    let (a, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(addresses(&a.answers), [WEB]);
    chain.stop().await;
}

#[tokio::test]
async fn cname_in_zone_is_followed_and_both_rrsets_cached() {
    let chain = start_chain().await;
    let (response, _) = chain.ask("blog.example.com.", RecordType::A).await;
    assert_eq!(response.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(addresses(&response.answers), [WEB]);
    let (cached, events) = chain.ask("blog.example.com.", RecordType::A).await;
    assert_eq!(count_upstream(&events), 0);
    assert_eq!(cached.answers.len(), 2);
    chain.stop().await;
}

#[tokio::test]
async fn large_answers_come_over_tcp() {
    let chain = start_chain().await;
    let (response, _) = chain
        .ask_over("big.example.com.", RecordType::TXT, Transport::Tcp)
        .await;
    assert_eq!(response.answers.len(), 12);
    chain.stop().await;
}

#[tokio::test]
async fn one_dead_name_server_is_survived_and_then_avoided() {
    let chain = start_chain().await;
    // ns-1 stops answering: its address swallows every query.
    let ns1 = chain.stack.topology.find_servers("auth").unwrap()[0].clone();
    let dead = ns1.addrs[0];
    chain
        .stack
        .set_fault(&ns1.name, Some(dnstrail::fault::Fault::Drop))
        .unwrap();

    let mut asked_dead = 0;
    for round in 0..8 {
        let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
        assert_eq!(addresses(&response.answers), [WEB], "round {round}");
        asked_dead += events
            .iter()
            .filter(|e| matches!(e, TraceEvent::UpstreamQuery { server, .. } if server.addr.ip() == dead))
            .count();
        chain.resolver.clock().advance(Duration::from_secs(301));
    }
    assert!(
        asked_dead <= 1,
        "the dead server was asked {asked_dead} times"
    );
    chain.stop().await;
}

#[tokio::test]
async fn all_four_dead_gives_servfail_within_the_bound() {
    let chain = start_chain().await;
    // Dead, but still holding their ports: a port given back could be
    // taken at once by another test's socket, and then something would
    // answer where nothing should.
    for server in chain.stack.topology.find_servers("auth").unwrap() {
        chain
            .stack
            .set_fault(&server.name, Some(dnstrail::fault::Fault::Drop))
            .unwrap();
    }
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    let elapsed = events.iter().find_map(|e| match e {
        TraceEvent::AnswerReturned {
            elapsed_us,
            failure,
            ..
        } => Some((*elapsed_us, failure.clone())),
        _ => None,
    });
    let (elapsed_us, failure) = elapsed.unwrap();
    assert!(elapsed_us < 4_000_000, "SERVFAIL after {elapsed_us} µs");
    assert!(failure.is_some());
    let timeouts = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TraceEvent::UpstreamResponse {
                    response: ResponseKind::Timeout,
                    ..
                }
            )
        })
        .count();
    assert!(timeouts >= 1);
    chain.stop().await;
}

#[tokio::test]
async fn qname_minimisation_shows_each_server_only_what_it_needs() {
    let topology = demo_topology();
    let config = dnstrail::resolver::Config {
        qname_minimization: true,
        ..Default::default()
    };
    let chain = start_chain_on(topology, config).await;
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(addresses(&response.answers), [WEB]);
    let questions: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::UpstreamQuery { question, .. } => Some(question.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        questions,
        ["com. A", "example.com. A", "www.example.com. A"],
        "the root sees only com., .com only example.com."
    );
    chain.stop().await;
}

#[tokio::test]
async fn non_loopback_clients_are_refused() {
    let chain = start_chain().await;
    let outsider: SocketAddr = "192.0.2.7:4444".parse().unwrap();
    let name = Name::from_ascii("www.example.com.").unwrap();
    let answered = chain
        .resolver
        .answer(outsider, Transport::Udp, &name, RecordType::A, true)
        .await;
    assert_eq!(answered.rcode, ResponseCode::Refused);
    assert!(answered.answers.is_empty());
    assert!(
        !answered
            .events
            .iter()
            .any(|e| matches!(e.event, TraceEvent::UpstreamQuery { .. }))
    );
    assert!(chain.resolver.is_allowed("127.0.0.1".parse().unwrap()));
    assert!(chain.resolver.is_allowed("::1".parse().unwrap()));
    chain.stop().await;
}

#[tokio::test]
async fn allowed_networks_widen_access() {
    let topology = demo_topology();
    let config = dnstrail::resolver::Config {
        allow: vec!["192.0.2.0/24".parse().unwrap()],
        ..Default::default()
    };
    let chain = start_chain_on(topology, config).await;
    let name = Name::from_ascii("www.example.com.").unwrap();
    let inside = chain
        .resolver
        .answer(
            "192.0.2.7:4444".parse().unwrap(),
            Transport::Udp,
            &name,
            RecordType::A,
            true,
        )
        .await;
    assert_eq!(inside.rcode, ResponseCode::NoError);
    let outside = chain
        .resolver
        .answer(
            "198.51.100.1:4444".parse().unwrap(),
            Transport::Udp,
            &name,
            RecordType::A,
            true,
        )
        .await;
    assert_eq!(outside.rcode, ResponseCode::Refused);
    chain.stop().await;
}

#[tokio::test]
async fn without_rd_only_the_cache_answers() {
    let chain = start_chain().await;
    let query =
        dnstrail::exchange::make_query(&name("www.example.com."), RecordType::A, false, true);
    let cold =
        dnstrail::exchange::exchange(chain.addr, &query, Transport::Udp, Duration::from_secs(5))
            .await
            .unwrap()
            .response;
    assert!(
        cold.answers.is_empty(),
        "nothing cached yet, nothing resolved"
    );
    assert!(
        cold.authorities
            .iter()
            .all(|r| r.record_type() == RecordType::NS)
    );
    chain.ask("www.example.com.", RecordType::A).await;
    let warm =
        dnstrail::exchange::exchange(chain.addr, &query, Transport::Udp, Duration::from_secs(5))
            .await
            .unwrap()
            .response;
    assert_eq!(addresses(&warm.answers), [WEB]);
    chain.stop().await;
}

/// GET a path from an HTTP server, returning status line and body.
async fn http_get(addr: SocketAddr, method: &str, path: &str) -> (String, String) {
    http_request(addr, method, path, &[]).await
}

#[tokio::test]
async fn control_endpoint_shows_cache_traces_and_metrics() {
    let chain = start_chain().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(dnstrail::control::run(
        chain.stack.control(),
        listener,
        stop.clone(),
    ));
    chain.ask("www.example.com.", RecordType::A).await;
    chain.ask("nope.example.com.", RecordType::A).await;

    let (status, body) = http_get(control, "GET", "/cache").await;
    assert!(status.contains("200"), "{status}");
    let cache: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = cache["entries"].as_array().unwrap();
    let find = |kind: &str, name: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == kind && e["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} entry for {name}: {body}"))
    };
    assert_eq!(find("answer", "www.example.com.")["ttl"], 300);
    assert_eq!(find("delegation", "example.com.")["ttl"], 172800);
    assert_eq!(find("delegation", "com.")["ttl"], 172800);
    assert_eq!(find("negative", "nope.example.com.")["nxdomain"], true);
    assert!(
        find("answer", "www.example.com.")["remaining"]
            .as_u64()
            .unwrap()
            <= 300
    );

    let (_, body) = http_get(control, "GET", "/traces").await;
    let traces: serde_json::Value = serde_json::from_str(&body).unwrap();
    let first = &traces.as_array().unwrap()[0];
    assert_eq!(first["question"]["name"], "www.example.com.");
    assert_eq!(first["events"][0]["event"], "question_received");

    let (_, metrics) = http_get(control, "GET", "/metrics").await;
    assert!(metrics.contains("dnstrail_queries_total 2"), "{metrics}");
    assert!(
        metrics.contains("dnstrail_upstream_queries_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dnstrail_responses_total{rcode=\"NXDOMAIN\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dnstrail_cache_hits_total{kind=\"delegation\"} 1"),
        "{metrics}"
    );

    let (status, _) = http_get(control, "POST", "/advance?seconds=301").await;
    assert!(status.contains("200"));
    let (_, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(upstream_hops(&events).len(), 1);

    let (status, _) = http_get(control, "POST", "/flush").await;
    assert!(status.contains("200"));
    assert!(chain.resolver.cache().is_empty());
    let (status, _) = http_get(control, "GET", "/nowhere").await;
    assert!(status.contains("404"));
    stop.cancel();
    chain.stop().await;
}

#[tokio::test]
async fn a_large_answer_to_a_client_without_edns_is_truncated_whole() {
    let chain = start_chain().await;
    let query =
        dnstrail::exchange::make_query(&name("big.example.com."), RecordType::TXT, true, false);
    let raw = raw_udp_reply(chain.addr, &query).await;
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let reply = assert_whole(&raw);
    assert!(reply.metadata.truncation);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.queries.len(), 1);
    chain.stop().await;
}

/// The hot path: a repeated question gets the reply kept whole, with the
/// new ID and the TTLs counted down by the resolver's clock; a flush or an
/// expired TTL sends it back down the full path; the trace still tells it.
#[tokio::test]
async fn repeated_questions_are_replayed_with_their_ttls_counted_down() {
    let chain = start_chain().await;
    let (first, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(chain.resolver.metrics().replayed_total(), 0);
    chain.resolver.clock().advance(Duration::from_secs(100));
    let (again, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(chain.resolver.metrics().replayed_total(), 1);
    assert_ne!(first.metadata.id, again.metadata.id);
    assert_eq!(again.answers, {
        let mut records = first.answers.clone();
        records[0].ttl -= 100;
        records
    });
    assert!(matches!(
        events[..],
        [
            TraceEvent::QuestionReceived { .. },
            TraceEvent::CacheAnswerHit { .. },
            TraceEvent::AnswerReturned { .. }
        ]
    ));
    // Negative answers too, over TCP as over UDP, each kept apart.
    chain.ask("nope.example.com.", RecordType::A).await;
    let (nope, _) = chain.ask("nope.example.com.", RecordType::A).await;
    assert_eq!(nope.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(chain.resolver.metrics().replayed_total(), 2);
    chain
        .ask_over("www.example.com.", RecordType::A, Transport::Tcp)
        .await;
    assert_eq!(
        chain.resolver.metrics().replayed_total(),
        2,
        "TCP kept apart"
    );

    // A flush empties it; past the TTL it is not replayed.
    chain.resolver.cache().clear();
    let (_, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TraceEvent::UpstreamQuery { .. }))
    );
    chain.resolver.clock().advance(Duration::from_secs(301));
    let (_, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TraceEvent::UpstreamQuery { .. }))
    );
    chain.stop().await;
}
