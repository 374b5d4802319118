//! Spoofing defences, against scripted upstream servers: forged responses
//! are ignored, and records outside a server's bailiwick are neither used
//! nor cached.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use dnstrail::dns::addresses;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, Record};
use tokio::net::UdpSocket;

use crate::support::scripted::*;

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 2, d))
}

#[tokio::test]
async fn forged_responses_are_ignored() {
    // Sockets the forger sends from: same address, other port; other address.
    let other_port = Arc::new(UdpSocket::bind(SocketAddr::new(ip(1), 0)).await.unwrap());
    let other_addr = Arc::new(UdpSocket::bind(SocketAddr::new(ip(9), 0)).await.unwrap());
    let script: Arc<Script> = Arc::new(move |_, query| {
        let forged = |id_delta: u16, addr: [u8; 4], from: Option<Arc<UdpSocket>>| {
            let mut m = response_to(query);
            m.metadata.id = query.metadata.id.wrapping_add(id_delta);
            m.metadata.authoritative = true;
            m.add_answer(a("www.example.zz.", addr));
            Reply { message: m, from }
        };
        let mut wrong_question = response_to(query);
        wrong_question.queries[0].set_name(n("other.example.zz."));
        wrong_question.metadata.authoritative = true;
        wrong_question.add_answer(a("other.example.zz.", [6, 6, 6, 9]));
        let mut genuine = response_to(query);
        genuine.metadata.authoritative = true;
        genuine.add_answer(a("www.example.zz.", [192, 0, 2, 1]));
        vec![
            forged(1, [6, 6, 6, 6], None),
            forged(0, [6, 6, 6, 7], Some(other_port.clone())),
            forged(0, [6, 6, 6, 8], Some(other_addr.clone())),
            Reply {
                message: wrong_question,
                from: None,
            },
            Reply {
                message: genuine,
                from: None,
            },
        ]
    });
    let resolver = resolver_over(&[ip(1)], script).await;
    let answered = resolve(&resolver, "www.example.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NoError);
    assert_eq!(
        addresses(&answered.answers),
        [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]
    );
    let cached = serde_json::to_string(&resolver.cache().entries()).unwrap();
    assert!(!cached.contains("6.6.6"), "{cached}");
}

#[tokio::test]
async fn out_of_bailiwick_records_are_neither_used_nor_cached() {
    let script: Arc<Script> = Arc::new(|server, query| {
        // Names come in mixed case (0x20): a name server compares without case.
        let (qname, _) = asked(query);
        let mut m = response_to(query);
        if server == ip(1) {
            // The root: test. is delegated; nothing else exists.
            if qname.ends_with("test.") {
                m.add_authority(ns("test.", "ns.nic.test."));
                m.add_additional(a("ns.nic.test.", [127, 0, 2, 2]));
            } else {
                m.metadata.response_code = ResponseCode::NXDomain;
                m.metadata.authoritative = true;
                m.add_authority(soa("."));
            }
        } else if server == ip(2) {
            // test.: a referral naming a second server outside test., with
            // "glue" for it that test.'s server has no authority to give.
            m.add_authority(ns("victim.test.", "ns.victim.test."));
            m.add_authority(ns("victim.test.", "ns.evil.zz."));
            m.add_additional(a("ns.victim.test.", [127, 0, 2, 3]));
            m.add_additional(a("ns.evil.zz.", [6, 6, 6, 6]));
        } else if qname == "alias.victim.test." {
            // An alias into another zone, with that zone's "answer" attached.
            m.metadata.authoritative = true;
            m.add_answer(Record::from_rdata(
                n("alias.victim.test."),
                300,
                RData::CNAME(hickory_proto::rr::rdata::CNAME(n("www.bank.zz."))),
            ));
            m.add_answer(a("www.bank.zz.", [6, 6, 6, 6]));
        } else {
            // victim.test.: the answer, plus an answer record for another zone.
            m.metadata.authoritative = true;
            m.add_answer(a("www.victim.test.", [192, 0, 2, 10]));
            m.add_answer(a("www.bank.zz.", [6, 6, 6, 6]));
        }
        vec![Reply {
            message: m,
            from: None,
        }]
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3)], script).await;

    let answered = resolve(&resolver, "www.victim.test.").await;
    assert_eq!(
        addresses(&answered.answers),
        [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))]
    );
    assert_eq!(answered.answers.len(), 1);

    let cached = serde_json::to_string(&resolver.cache().entries()).unwrap();
    assert!(!cached.contains("6.6.6.6"), "{cached}");
    assert!(cached.contains("victim.test."));

    // The alias's target is looked up where it belongs: it does not exist.
    let alias = resolve(&resolver, "alias.victim.test.").await;
    assert_eq!(alias.rcode, ResponseCode::NXDomain);
    assert_eq!(
        alias.answers.len(),
        1,
        "only the CNAME: {:?}",
        alias.answers
    );
    let cached = serde_json::to_string(&resolver.cache().entries()).unwrap();
    assert!(!cached.contains("6.6.6.6"), "{cached}");

    // Asked for the poisoned name, the resolver finds it does not exist.
    let bank = resolve(&resolver, "www.bank.zz.").await;
    assert_eq!(bank.rcode, ResponseCode::NXDomain);
}

#[tokio::test]
async fn a_server_that_rejects_edns_is_asked_again_without_it() {
    let script: Arc<Script> = Arc::new(|_, query| {
        let mut m = response_to(query);
        if query.edns.is_some() {
            m.metadata.response_code = ResponseCode::FormErr;
        } else {
            m.metadata.authoritative = true;
            m.add_answer(a("old.example.zz.", [192, 0, 2, 53]));
        }
        vec![Reply {
            message: m,
            from: None,
        }]
    });
    let resolver = resolver_over(&[ip(1)], script).await;
    let answered = resolve(&resolver, "old.example.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NoError);
    assert_eq!(
        addresses(&answered.answers),
        [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))]
    );
    let queries = answered
        .events
        .iter()
        .filter(|e| matches!(e.event, dnstrail::trace::TraceEvent::UpstreamQuery { .. }))
        .count();
    assert_eq!(queries, 2, "once with EDNS, once without");
}
