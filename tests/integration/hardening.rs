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
