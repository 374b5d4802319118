//! Faults and limits: slow, broken and dead name servers, duplicate
//! questions, serve-stale, rate limits.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use dnstrail::dns::addresses;
use dnstrail::exchange::Transport;
use dnstrail::fault::Fault;
use dnstrail::resolver::Config;
use dnstrail::serve::ServeOptions;
use dnstrail::serve::ratelimit::RateLimit;
use dnstrail::topology::Topology;
use dnstrail::trace::{ResponseKind, TraceEvent};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

use crate::support::*;

fn canonical() -> Topology {
    demo_topology()
}

fn faulty(topology: &Topology, which: &str, fault: Fault) -> HashMap<String, Fault> {
    topology
        .find_servers(which)
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), fault))
        .collect()
}

#[tokio::test]
async fn duplicate_questions_in_flight_share_one_resolution() {
    let topology = canonical();
    // Slow hosted-zone servers keep the first resolution in flight.
    let faults = faulty(&topology, "auth", Fault::Delay(Duration::from_millis(150)));
    let chain = start_chain_with_faults(topology, Config::default(), faults).await;
    let name = Name::from_ascii("www.example.com.").unwrap();
    let asks = (0..10).map(|i| {
        let resolver = chain.resolver.clone();
        let name = name.clone();
        async move {
            let client: SocketAddr = format!("127.0.0.1:{}", 40000 + i).parse().unwrap();
            resolver
                .answer(client, Transport::Udp, &name, RecordType::A, true)
                .await
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    for answered in &answers {
        assert_eq!(answered.rcode, ResponseCode::NoError);
        assert_eq!(
            addresses(&answered.answers),
            ["127.0.0.44".parse::<IpAddr>().unwrap()]
        );
    }
    assert_eq!(
        chain.resolver.metrics().upstream_queries(),
        3,
        "one walk for ten clients"
    );
    let joined = answers
        .iter()
        .filter(|a| {
            a.events
                .iter()
                .any(|e| matches!(e.event, TraceEvent::JoinedInFlight { .. }))
        })
        .count();
    assert_eq!(joined, 9);
    chain.stop().await;
}

#[tokio::test]
async fn servfailing_and_slow_servers_are_passed_over() {
    let topology = canonical();
    let mut faults = faulty(&topology, "ns-1", Fault::ServFail);
    faults.extend(faulty(&topology, "ns-2", Fault::ServFail));
    faults.extend(faulty(
        &topology,
        "ns-3",
        Fault::Delay(Duration::from_secs(2)),
    ));
    let chain = start_chain_with_faults(topology, Config::default(), faults).await;
    for _ in 0..4 {
        let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
        assert_eq!(
            addresses(&response.answers),
            ["127.0.0.44".parse::<IpAddr>().unwrap()]
        );
        // Whatever was tried first, ns-4 gave the answer.
        let answered_by = events.iter().rev().find_map(|e| match e {
            TraceEvent::UpstreamResponse {
                server,
                response: ResponseKind::Answer { .. },
                ..
            } => Some(server.name.clone()),
            _ => None,
        });
        assert_eq!(answered_by.as_deref(), Some("ns-4.awsdns-04.com."));
        chain.resolver.clock().advance(Duration::from_secs(301));
    }
    chain.stop().await;
}

#[tokio::test]
async fn serve_stale_answers_when_every_server_is_gone() {
    let config = Config {
        serve_stale: true,
        ..Config::default()
    };
    let chain = start_chain_on(canonical(), config).await;
    chain.ask("www.example.com.", RecordType::A).await;
    chain.resolver.clock().advance(Duration::from_secs(400));
    // Every example.com server swallows every query.
    for server in chain.stack.topology.find_servers("auth").unwrap() {
        chain
            .stack
            .set_fault(&server.name, Some(dnstrail::fault::Fault::Drop))
            .unwrap();
    }
    let (response, events) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        addresses(&response.answers),
        ["127.0.0.44".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(response.answers[0].ttl, 30);
    let stale = events.iter().find_map(|e| match e {
        TraceEvent::ServedStale { expired_for, .. } => Some(*expired_for),
        _ => None,
    });
    assert!(stale.is_some_and(|s| (99..=101).contains(&s)), "{stale:?}");
    chain.stop().await;
}

/// Ask the resolver from a source address of our choosing.
async fn ask_from(source: &str, resolver: SocketAddr, qname: &str) -> ResponseCode {
    let socket = UdpSocket::bind(source).await.unwrap();
    socket.connect(resolver).await.unwrap();
    let query = dnstrail::exchange::make_query(&name(qname), RecordType::A, true, true);
    socket.send(&query.to_vec().unwrap()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    hickory_proto::op::Message::from_vec(&buf[..n])
        .unwrap()
        .metadata
        .response_code
}

#[tokio::test]
async fn rate_limited_clients_are_refused_and_others_are_not() {
    let options = ServeOptions {
        rate_limit: Some(RateLimit::questions(5)),
        ..ServeOptions::default()
    };
    let chain = start_chain_with(canonical(), Config::default(), HashMap::new(), options).await;
    let mut refused = 0;
    for _ in 0..20 {
        if ask_from("127.0.0.9:0", chain.addr, "www.example.com.").await == ResponseCode::Refused {
            refused += 1;
        }
    }
    assert!(refused >= 10, "only {refused} of 20 refused");
    let polite = ask_from("127.0.0.10:0", chain.addr, "www.example.com.").await;
    assert_eq!(polite, ResponseCode::NoError);
    chain.stop().await;
}

#[tokio::test]
async fn upstream_questions_in_flight_are_bounded() {
    let topology = canonical();
    let faults = faulty(&topology, "auth", Fault::Delay(Duration::from_millis(100)));
    let config = Config {
        max_outstanding: 1,
        ..Config::default()
    };
    let chain = start_chain_with_faults(topology, config, faults).await;
    // Different names, so nothing is coalesced: with one slot, the
    // resolutions' upstream questions go one at a time.
    let names = ["www", "blog", "mail", "example"].map(|n| {
        let n = if n == "example" {
            String::new()
        } else {
            format!("{n}.")
        };
        Name::from_ascii(format!("{n}example.com.")).unwrap()
    });
    let started = std::time::Instant::now();
    let asks = names.iter().map(|name| {
        let resolver = chain.resolver.clone();
        async move {
            resolver
                .answer(
                    "127.0.0.1:999".parse().unwrap(),
                    Transport::Udp,
                    name,
                    RecordType::A,
                    true,
                )
                .await
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    assert!(answers.iter().all(|a| a.rcode == ResponseCode::NoError));
    // Four 100 ms answers from the hosted zone, one at a time.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    chain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_server_stopped_and_restarted_under_load_costs_no_client_a_servfail() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const CLIENTS: usize = 8;
    // An upper bound; the load runs from before the stop until after the restart.
    const QUESTIONS_PER_CLIENT: usize = 5_000;
    let mut chain = start_chain().await;
    let (_, warm_up) = chain.ask("www.example.com.", RecordType::A).await;
    // The victim is the server the resolver prefers: the one it just used.
    let victim = warm_up
        .iter()
        .rev()
        .find_map(|e| match e {
            TraceEvent::UpstreamQuery { server, .. } => Some(server.addr.ip()),
            _ => None,
        })
        .unwrap();
    let resolver = chain.addr;
    let done = Arc::new(AtomicBool::new(false));

    // Each client alternates a cached name with a new missing one, which
    // always needs an example.com server.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for i in 0..QUESTIONS_PER_CLIENT {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    let qname = if i % 2 == 0 {
                        "www.example.com.".to_string()
                    } else {
                        format!("missing-{c}-{i}.example.com.")
                    };
                    let query =
                        dnstrail::exchange::make_query(&name(&qname), RecordType::A, true, true);
                    let started = std::time::Instant::now();
                    let response = dnstrail::exchange::exchange(
                        resolver,
                        &query,
                        Transport::Udp,
                        Duration::from_secs(5),
                    )
                    .await
                    .map(|e| e.response.metadata.response_code);
                    results.push((response.ok(), started.elapsed()));
                }
                results
            })
        })
        .collect();

    let port = chain.stack.dns_port;
    let mut watch = chain.resolver.trace().subscribe();
    let within = |what: &'static str| {
        move |waited: Result<_, _>| match waited {
            Ok(Some(event)) => event,
            _ => panic!("{what} did not happen within 10 s"),
        }
    };
    // The load is flowing: answers are being returned.
    for _ in 0..20 {
        within("answers under load")(
            tokio::time::timeout(
                Duration::from_secs(10),
                watch.wait_for(|e| matches!(e.event, TraceEvent::AnswerReturned { .. })),
            )
            .await,
        );
    }
    chain.stack.stop_server(victim).await;
    let blackhole = UdpSocket::bind(SocketAddr::new(victim, port))
        .await
        .unwrap();
    // A question meets the dead server and times out. Counted, not watched
    // for: under this load a watcher may fall behind and lose events.
    let timeouts = chain.resolver.metrics().upstream_timeouts();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while chain.resolver.metrics().upstream_timeouts() == timeouts {
        assert!(
            std::time::Instant::now() < deadline,
            "no question met the dead server within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(blackhole);
    chain.stack.restart_server(victim).await.unwrap();
    // The load goes on past the restart.
    for _ in 0..50 {
        within("answers after the restart")(
            tokio::time::timeout(
                Duration::from_secs(10),
                watch.wait_for(|e| matches!(e.event, TraceEvent::AnswerReturned { .. })),
            )
            .await,
        );
    }
    done.store(true, Ordering::Relaxed);

    let watchdog = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(watchdog);
    let mut results = Vec::new();
    for client in clients {
        tokio::select! {
            r = client => results.extend(r.unwrap()),
            _ = &mut watchdog => { done.store(true, Ordering::Relaxed); panic!("load did not finish in 30 s") }
        }
    }
    let count = |code: ResponseCode| results.iter().filter(|(r, _)| *r == Some(code)).count();
    let (noerror, nxdomain, servfail) = (
        count(ResponseCode::NoError),
        count(ResponseCode::NXDomain),
        count(ResponseCode::ServFail),
    );
    let lost = results.iter().filter(|(r, _)| r.is_none()).count();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "load: {} questions from {CLIENTS} clients; {noerror} NOERROR, {nxdomain} NXDOMAIN, {servfail} SERVFAIL, {lost} unanswered; p50 {p50:?}, p99 {p99:?}",
        results.len()
    );
    assert_eq!(servfail, 0, "a live server was left for every question");
    assert_eq!(lost, 0);
    assert_eq!(noerror + nxdomain, results.len());
    // After the restart the server answers again.
    let back = ask(
        SocketAddr::new(victim, port),
        "www.example.com.",
        RecordType::A,
    )
    .await;
    assert!(back.metadata.authoritative);
    chain.stop().await;
}
