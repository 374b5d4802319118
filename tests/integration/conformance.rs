//! Where real name servers misbehave, the resolver does what the resolvers
//! operators trust do (Unbound, Knot Resolver); the name servers answer as
//! the RFCs say where zones are odd. One test per behaviour, each against
//! upstream servers scripted in-process (see `support::scripted`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dnstrail::clock::Clock;
use dnstrail::dns::addresses;
use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::listen::bind_dns_on_all;
use dnstrail::nameserver::{NameServer, dname};
use dnstrail::resolver::{Answered, Config, Resolver};
use dnstrail::serve::ServeOptions;
use dnstrail::trace::TraceEvent;
use dnstrail::zone::Zone;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio_util::sync::CancellationToken;

use crate::support::scripted::*;
use crate::support::{ask as ask_server, serve_alone, tool};

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 3, d))
}

/// An address on which nothing ever listens: the kernel refuses at once.
const NOBODY: u8 = 99;

fn v4(octets: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(octets))
}

fn with_ttl(mut record: Record, ttl: u32) -> Record {
    record.ttl = ttl;
    record
}

/// A script from a plain function of (server, query name, type, query).
fn script(
    f: impl Fn(IpAddr, &str, RecordType, &Message) -> Vec<Reply> + Send + Sync + 'static,
) -> Arc<Script> {
    Arc::new(move |server, query| {
        let (qname, qtype) = asked(query);
        f(server, &qname, qtype, query)
    })
}

fn has(answered: &Answered, wanted: impl Fn(&TraceEvent) -> bool) -> bool {
    events(answered).iter().any(wanted)
}

fn ede_code(answered: &Answered) -> Option<u16> {
    answered.extended_error.as_ref().map(|e| e.code)
}

/// What the cache holds for `name`, as the control endpoint shows it.
fn cached(resolver: &Resolver, kind: &str, name: &str) -> String {
    let entries = serde_json::to_value(resolver.cache().entries()).unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind && e["name"] == name)
        .map(|e| e.to_string())
        .collect()
}

// 1. Parent and child disagree about a zone's name servers.

#[tokio::test]
async fn parent_and_child_disagree_about_name_servers_and_any_working_server_answers() {
    // The parent (the root here) names ns1 and ns2; ns1 does not serve the
    // zone at all. The child names ns2 and ns3, which the parent never did.
    let ns2_broken = Arc::new(AtomicBool::new(false));
    let broken = ns2_broken.clone();
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![
                    ns("child.zz.", "ns1.child.zz."),
                    ns("child.zz.", "ns2.child.zz."),
                ],
                vec![glue("ns1.child.zz.", ip(2)), glue("ns2.child.zz.", ip(3))],
            ));
        }
        if server == ip(2) {
            return send(rcode(query, ResponseCode::Refused));
        }
        if server == ip(3) && broken.load(Ordering::SeqCst) {
            return send(rcode(query, ResponseCode::ServFail));
        }
        let mut m = answer(query, vec![a(qname, [192, 0, 2, 1])]);
        m.add_authorities(vec![
            ns("child.zz.", "ns2.child.zz."),
            ns("child.zz.", "ns3.child.zz."),
        ]);
        m.add_additionals(vec![
            glue("ns2.child.zz.", ip(3)),
            glue("ns3.child.zz.", ip(4)),
        ]);
        send(m)
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3), ip(4)], script).await;

    let first = resolve(&resolver, "www.child.zz.").await;
    assert_eq!(first.rcode, ResponseCode::NoError, "{:?}", first.failure);
    assert_eq!(addresses(&first.answers), [v4([192, 0, 2, 1])]);
    assert!(has(&first, |e| matches!(e,
        TraceEvent::DelegationUpdated { zone, servers, .. }
            if zone == "child.zz." && servers.contains(&"ns3.child.zz.".to_string()))));
    // RFC 2181 §5.4.1: the child's own NS set replaced the referral's.
    let delegation = cached(&resolver, "delegation", "child.zz.");
    assert!(delegation.contains("ns3.child.zz."), "{delegation}");
    assert!(!delegation.contains("ns1.child.zz."), "{delegation}");

    // ns2 breaks; ns3, which only the child named, answers.
    ns2_broken.store(true, Ordering::SeqCst);
    let second = resolve(&resolver, "mail.child.zz.").await;
    assert_eq!(second.rcode, ResponseCode::NoError, "{:?}", second.failure);
    let asked = asked_servers(&second);
    assert!(asked.contains(&ip(4)), "{asked:?}");
    assert!(!asked.contains(&ip(2)), "ns1 is not the child's: {asked:?}");
}

// 2. QNAME minimisation that meets broken servers.

#[tokio::test]
async fn qname_minimisation_falls_back_to_the_full_question_when_servers_break() {
    for broken in [
        "SERVFAIL",
        "REFUSED",
        "FORMERR",
        "NOTIMP",
        "no answer",
        "NXDOMAIN",
    ] {
        // zz. serves sub.zz. itself, but chokes on the shorter name.
        let script = script(move |server, qname, _, query| {
            if server == ip(1) {
                return send(referral(
                    query,
                    vec![ns("zz.", "ns.zz.")],
                    vec![glue("ns.zz.", ip(2))],
                ));
            }
            if qname == "www.sub.zz." {
                return send(answer(query, vec![a(qname, [192, 0, 2, 7])]));
            }
            send(match broken {
                "SERVFAIL" => rcode(query, ResponseCode::ServFail),
                "REFUSED" => rcode(query, ResponseCode::Refused),
                "FORMERR" => rcode(query, ResponseCode::FormErr),
                "NOTIMP" => rcode(query, ResponseCode::NotImp),
                // AA=0, nothing in any section: neither answer nor referral.
                "no answer" => response_to(query),
                _ => denial(query, true, vec![soa("zz.")]),
            })
        });
        let config = Config {
            qname_minimization: true,
            ..Config::default()
        };
        let resolver = resolver_with(&[ip(1), ip(2)], script, config).await;
        let answered = resolve(&resolver, "www.sub.zz.").await;
        assert_eq!(
            answered.rcode,
            ResponseCode::NoError,
            "{broken}: {:?}",
            answered.failure
        );
        assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 7])]);
        let questions: Vec<(String, RecordType)> = events(&answered)
            .iter()
            .filter_map(|e| match e {
                TraceEvent::UpstreamQuery { question, .. } => {
                    Some((question.name.clone(), question.rtype))
                }
                _ => None,
            })
            .collect();
        // The minimised steps ask for A (RFC 9156 §2.1): the root sees zz.
        assert_eq!(questions[0], ("zz.".to_string(), RecordType::A), "{broken}");
        assert!(
            questions.contains(&("sub.zz.".to_string(), RecordType::A)),
            "{broken}: {questions:?}"
        );
        assert!(
            has(&answered, |e| matches!(e,
                TraceEvent::MinimisationAbandoned { question, .. } if question.name == "sub.zz.")),
            "{broken}"
        );
    }
}

#[tokio::test]
async fn a_root_that_fails_minimised_questions_is_asked_the_full_question() {
    // "com. A" gets SERVFAIL from a server that only answers the full name.
    let script = script(|server, qname, _, query| {
        if server == ip(1) {
            if qname == "zz." {
                return send(rcode(query, ResponseCode::ServFail));
            }
            return send(referral(
                query,
                vec![ns("zz.", "ns.zz.")],
                vec![glue("ns.zz.", ip(2))],
            ));
        }
        send(answer(query, vec![a(qname, [192, 0, 2, 8])]))
    });
    let config = Config {
        qname_minimization: true,
        ..Config::default()
    };
    let resolver = resolver_with(&[ip(1), ip(2)], script, config).await;
    let answered = resolve(&resolver, "www.zz.").await;
    assert_eq!(
        answered.rcode,
        ResponseCode::NoError,
        "{:?}",
        answered.failure
    );
    assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 8])]);
}

// 3. NXDOMAIN and NODATA with more in the authority section; a domain sold.

#[tokio::test]
async fn nxdomain_and_nodata_pass_on_the_soa_and_the_zones_ns_set() {
    let script = script(|server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("zone.zz.", "ns.zone.zz.")],
                vec![glue("ns.zone.zz.", ip(2))],
            ));
        }
        let authority = vec![soa("zone.zz."), ns("zone.zz.", "ns.zone.zz.")];
        send(denial(query, qname == "nope.zone.zz.", authority))
    });
    let resolver = resolver_over(&[ip(1), ip(2)], script).await;
    for (name, rtype, rcode) in [
        ("nope.zone.zz.", RecordType::A, ResponseCode::NXDomain),
        ("www.zone.zz.", RecordType::MX, ResponseCode::NoError),
    ] {
        for round in ["from the server", "from the cache"] {
            let answered = ask(&resolver, name, rtype).await;
            assert_eq!(answered.rcode, rcode, "{name} {round}");
            assert!(answered.answers.is_empty());
            let types: Vec<RecordType> = answered
                .authorities
                .iter()
                .map(Record::record_type)
                .collect();
            assert_eq!(types, [RecordType::SOA, RecordType::NS], "{name} {round}");
        }
    }
}

#[tokio::test]
async fn a_delegation_that_changes_while_cached_is_followed_once_it_expires() {
    // sold.zz. moves from the old server to the new one; the old one goes on
    // answering for it, with an NS set of its own that would keep it alive
    // for days if the resolver let it (the "ghost domain" attack).
    let sold = Arc::new(AtomicBool::new(false));
    let moved = sold.clone();
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            let (host, at) = if moved.load(Ordering::SeqCst) {
                ("ns.new.zz.", ip(3))
            } else {
                ("ns.old.zz.", ip(2))
            };
            return send(referral(
                query,
                vec![with_ttl(ns("sold.zz.", host), 100)],
                vec![glue(host, at)],
            ));
        }
        let mut m = answer(
            query,
            vec![a_ttl(
                qname,
                if server == ip(2) {
                    [192, 0, 2, 1]
                } else {
                    [192, 0, 2, 2]
                },
                10,
            )],
        );
        if server == ip(2) {
            m.add_authorities(vec![
                with_ttl(ns("sold.zz.", "ns.old.zz."), 100_000),
                with_ttl(ns("sold.zz.", "ns2.old.zz."), 100_000),
            ]);
        }
        send(m)
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3)], script).await;
    let old = resolve(&resolver, "www.sold.zz.").await;
    assert_eq!(addresses(&old.answers), [v4([192, 0, 2, 1])]);

    sold.store(true, Ordering::SeqCst);
    resolver.clock().advance(Duration::from_secs(20));
    let still = resolve(&resolver, "www.sold.zz.").await;
    assert_eq!(
        addresses(&still.answers),
        [v4([192, 0, 2, 1])],
        "the delegation is cached for 100 s"
    );

    resolver.clock().advance(Duration::from_secs(100));
    let new = resolve(&resolver, "www.sold.zz.").await;
    assert_eq!(
        addresses(&new.answers),
        [v4([192, 0, 2, 2])],
        "{:?}",
        events(&new)
    );
}

// 4. Duplicate records in an answer.

#[tokio::test]
async fn duplicate_records_in_an_answer_are_passed_on_once() {
    let script = script(|server, _, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("dup.zz.", "ns.dup.zz.")],
                vec![glue("ns.dup.zz.", ip(2))],
            ));
        }
        send(answer(
            query,
            vec![
                cname("alias.dup.zz.", "www.dup.zz."),
                cname("alias.dup.zz.", "www.dup.zz."),
                a("www.dup.zz.", [192, 0, 2, 4]),
                a("www.dup.zz.", [192, 0, 2, 4]),
            ],
        ))
    });
    let resolver = resolver_over(&[ip(1), ip(2)], script).await;
    let answered = resolve(&resolver, "alias.dup.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::NoError);
    let types: Vec<RecordType> = answered.answers.iter().map(Record::record_type).collect();
    assert_eq!(types, [RecordType::CNAME, RecordType::A], "{answered:?}");
    let cached = cached(&resolver, "answer", "alias.dup.zz.");
    assert_eq!(cached.matches("www.dup.zz.").count(), 1, "{cached}");
}

// 5. DNAME, in both roles.

#[tokio::test]
async fn the_resolver_returns_a_dname_its_cname_and_the_target_and_caches_the_dname() {
    let old_asked = Arc::new(AtomicUsize::new(0));
    let count = old_asked.clone();
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            let (zone, host, at) = if qname.ends_with("old.zz.") {
                ("old.zz.", "ns.old.zz.", ip(2))
            } else {
                ("new.zz.", "ns.new.zz.", ip(3))
            };
            return send(referral(query, vec![ns(zone, host)], vec![glue(host, at)]));
        }
        if server == ip(2) {
            count.fetch_add(1, Ordering::SeqCst);
            let renamed = qname.replace("old.zz.", "new.zz.");
            return send(answer(
                query,
                vec![
                    dname::record(n("old.zz."), 600, &n("new.zz.")).unwrap(),
                    cname(qname, &renamed),
                ],
            ));
        }
        send(answer(query, vec![a(qname, [192, 0, 2, 9])]))
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3)], script).await;

    for (name, cached) in [("www.old.zz.", false), ("mail.old.zz.", true)] {
        let answered = resolve(&resolver, name).await;
        assert_eq!(
            answered.rcode,
            ResponseCode::NoError,
            "{:?}",
            answered.failure
        );
        let types: Vec<RecordType> = answered.answers.iter().map(Record::record_type).collect();
        assert_eq!(
            types,
            [RecordType::DNAME, RecordType::CNAME, RecordType::A],
            "{name}"
        );
        assert_eq!(
            answered.answers[1].data,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(n(
                &name.replace("old.zz.", "new.zz.")
            )))
        );
        assert_eq!(
            answered.answers[1].ttl, answered.answers[0].ttl,
            "the CNAME has the DNAME's TTL"
        );
        if !cached {
            assert_eq!(answered.answers[1].ttl, 600);
        }
        assert!(has(&answered, |e| matches!(e,
            TraceEvent::DnameFollowed { owner, cached: c, .. } if owner == "old.zz." && *c == cached)));
    }
    assert_eq!(
        old_asked.load(Ordering::SeqCst),
        1,
        "the second name was renamed by the cached DNAME"
    );
}

const DNAME_ZONE: &str = "\
$ORIGIN old.zz.
$TTL 300
@       IN SOA ns.old.zz. admin.old.zz. 1 7200 3600 1209600 60
@       IN NS  ns.old.zz.
ns      IN A   192.0.2.53
www     IN A   192.0.2.1
moved   IN DNAME new.zz.
here    IN DNAME old.zz.
";

#[tokio::test]
async fn name_servers_answer_with_the_dname_and_the_cname_it_synthesises() {
    let zone = Zone::parse(DNAME_ZONE, "old.zz.zone").expect("a zone with DNAMEs loads");
    let (server, stop) = serve_alone(NameServer::new(vec![zone]), ServeOptions::default()).await;

    let renamed = ask_server(server, "www.moved.old.zz.", RecordType::A).await;
    assert!(renamed.metadata.authoritative);
    assert_eq!(renamed.metadata.response_code, ResponseCode::NoError);
    assert_eq!(renamed.answers.len(), 2, "{:?}", renamed.answers);
    assert_eq!(renamed.answers[0].record_type(), RecordType::DNAME);
    assert_eq!(dname::target(&renamed.answers[0]), Some(n("new.zz.")));
    assert_eq!(
        renamed.answers[1].data,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(n("www.new.zz.")))
    );

    // Renamed into the zone itself: the server follows the CNAME.
    let inside = ask_server(server, "www.here.old.zz.", RecordType::A).await;
    let types: Vec<RecordType> = inside.answers.iter().map(Record::record_type).collect();
    assert_eq!(types, [RecordType::DNAME, RecordType::CNAME, RecordType::A]);

    // The owner itself is not renamed, and its DNAME can be asked for.
    let owner = ask_server(server, "moved.old.zz.", RecordType::A).await;
    assert!(owner.answers.is_empty());
    assert_eq!(owner.metadata.response_code, ResponseCode::NoError);
    let itself = ask_server(server, "moved.old.zz.", RecordType::DNAME).await;
    assert_eq!(itself.answers.len(), 1);
    stop.cancel();
}

// 6. Cyclic and glueless delegations.

#[tokio::test]
async fn an_ns_cycle_with_glue_from_the_parent_resolves() {
    // a.zz.'s server is ns.b.zz.; b.zz.'s is ns.a.zz.; zz. gives the glue
    // for ns.b.zz. with the referral to a.zz. (a sibling's address).
    let script = script(|server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("zz.", "ns.zz.")],
                vec![glue("ns.zz.", ip(2))],
            ));
        }
        if server == ip(2) {
            if qname.ends_with("a.zz.") {
                return send(referral(
                    query,
                    vec![ns("a.zz.", "ns.b.zz.")],
                    vec![glue("ns.b.zz.", ip(3))],
                ));
            }
            return send(referral(query, vec![ns("b.zz.", "ns.a.zz.")], Vec::new()));
        }
        send(answer(query, vec![a(qname, [192, 0, 2, 10])]))
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3)], script).await;
    let answered = resolve(&resolver, "www.a.zz.").await;
    assert_eq!(
        answered.rcode,
        ResponseCode::NoError,
        "{:?}",
        answered.failure
    );
    assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 10])]);
}

/// one. delegates a.one. to ns.b.two.; two. delegates b.two. to ns.a.one.;
/// neither can give glue for the other's name inside its own zone. With
/// `foreign_glue`, one. sends ns.b.two.'s address anyway, from outside its
/// zone.
fn cycle(foreign_glue: bool) -> Arc<Script> {
    script(move |server, qname, _, query| {
        if server == ip(1) {
            let (zone, host, at) = if qname.ends_with("one.") {
                ("one.", "ns.one.", ip(2))
            } else {
                ("two.", "ns.two.", ip(4))
            };
            return send(referral(query, vec![ns(zone, host)], vec![glue(host, at)]));
        }
        if server == ip(2) {
            let glue = if foreign_glue {
                vec![glue("ns.b.two.", ip(3))]
            } else {
                Vec::new()
            };
            return send(referral(query, vec![ns("a.one.", "ns.b.two.")], glue));
        }
        if server == ip(4) {
            return send(referral(query, vec![ns("b.two.", "ns.a.one.")], Vec::new()));
        }
        let address = match qname {
            "ns.a.one." | "ns.b.two." => [127, 0, 3, 3],
            _ => [192, 0, 2, 11],
        };
        send(answer(query, vec![a(qname, address)]))
    })
}

#[tokio::test]
async fn out_of_bailiwick_glue_breaks_an_ns_cycle_when_it_is_the_only_way() {
    let resolver = resolver_over(&[ip(1), ip(2), ip(3), ip(4)], cycle(true)).await;
    let answered = resolve(&resolver, "www.a.one.").await;
    assert_eq!(
        answered.rcode,
        ResponseCode::NoError,
        "{:?}",
        answered.failure
    );
    assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 11])]);
    assert!(has(&answered, |e| matches!(e,
        TraceEvent::OutOfBailiwickGlue { zone, from_zone, .. }
            if zone == "a.one." && from_zone == "one.")));
    let story = dnstrail::story::tell_all("asks", &answered.events);
    assert!(
        story
            .iter()
            .any(|l| l.text.contains("from outside its own zone")),
        "{story:?}"
    );
    // The address stays with the delegation: the next question does not
    // meet the cycle again.
    let next = resolve(&resolver, "mail.a.one.").await;
    assert_eq!(next.rcode, ResponseCode::NoError, "{:?}", next.failure);
    assert_eq!(asked_servers(&next), [ip(3)]);
}

#[tokio::test]
async fn a_real_ns_cycle_fails_quickly() {
    let resolver = resolver_over(&[ip(1), ip(2), ip(3), ip(4)], cycle(false)).await;
    let started = Instant::now();
    let answered = resolve(&resolver, "www.a.one.").await;
    assert_eq!(answered.rcode, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        asked_servers(&answered).len() <= 8,
        "{:?}",
        asked_servers(&answered)
    );
    assert_eq!(ede_code(&answered), Some(22));
    let failure = answered.failure.unwrap();
    assert!(failure.contains("through each other"), "{failure}");
}

// 7. Lame servers.

#[tokio::test]
async fn lame_servers_are_set_aside_and_all_lame_is_servfail_not_a_wrong_noerror() {
    let lame_asked = Arc::new(AtomicUsize::new(0));
    let count = lame_asked.clone();
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![
                    ns("lame.zz.", "ns1.lame.zz."),
                    ns("lame.zz.", "ns2.lame.zz."),
                    ns("lame.zz.", "ns3.lame.zz."),
                ],
                vec![
                    glue("ns1.lame.zz.", ip(2)),
                    glue("ns2.lame.zz.", ip(3)),
                    glue("ns3.lame.zz.", ip(4)),
                ],
            ));
        }
        count.fetch_add(1, Ordering::SeqCst);
        let mut m = response_to(query);
        if server == ip(2) {
            // A cache's NODATA: no AA, but an SOA.
            m.add_authority(soa("lame.zz."));
        } else if server == ip(3) {
            // A referral back up to the root.
            m.add_authority(ns(".", "ns.fake."));
        } else {
            // A cache's answer: the data, but no AA.
            m.add_answer(a(qname, [6, 6, 6, 6]));
        }
        send(m)
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3), ip(4)], script).await;
    let answered = resolve(&resolver, "www.lame.zz.").await;
    assert_eq!(answered.rcode, ResponseCode::ServFail);
    assert!(answered.answers.is_empty());
    assert_eq!(ede_code(&answered), Some(22), "No Reachable Authority");
    let marked = events(&answered)
        .iter()
        .filter(|e| matches!(e, TraceEvent::ServerLame { zone, .. } if zone == "lame.zz."))
        .count();
    assert_eq!(marked, 3);
    assert_eq!(lame_asked.load(Ordering::SeqCst), 3);
    let story = dnstrail::story::tell_all("asks", &answered.events);
    assert!(
        story
            .iter()
            .any(|l| l.text.contains("is lame for lame.zz.")),
        "{story:?}"
    );

    // Not asked again about the zone.
    let again = resolve(&resolver, "mail.lame.zz.").await;
    assert_eq!(again.rcode, ResponseCode::ServFail);
    assert_eq!(ede_code(&again), Some(22));
    assert_eq!(lame_asked.load(Ordering::SeqCst), 3);
    assert!(has(
        &again,
        |e| matches!(e, TraceEvent::ServersSkipped { servers, .. } if servers.len() == 3)
    ));
}

#[tokio::test]
async fn a_lame_server_is_not_asked_again_while_a_good_one_answers() {
    let lame_asked = Arc::new(AtomicUsize::new(0));
    let count = lame_asked.clone();
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![
                    ns("half.zz.", "ns1.half.zz."),
                    ns("half.zz.", "ns2.half.zz."),
                ],
                vec![glue("ns1.half.zz.", ip(2)), glue("ns2.half.zz.", ip(3))],
            ));
        }
        if server == ip(2) {
            count.fetch_add(1, Ordering::SeqCst);
            return send(response_to(query));
        }
        send(answer(query, vec![a(qname, [192, 0, 2, 12])]))
    });
    let resolver = resolver_over(&[ip(1), ip(2), ip(3)], script).await;
    for name in ["a.half.zz.", "b.half.zz.", "c.half.zz.", "d.half.zz."] {
        let answered = resolve(&resolver, name).await;
        assert_eq!(answered.rcode, ResponseCode::NoError, "{name}");
    }
    assert!(lame_asked.load(Ordering::SeqCst) <= 1);
}

// 8. Bad name-server addresses and bad glue.

#[tokio::test]
async fn unusable_name_server_addresses_are_skipped_and_real_ones_looked_up() {
    // The glue: 0.0.0.0, broadcast, the resolver's own address, an address
    // nobody answers on. ns.zero.zz.'s real address is ip(2).
    let own = ip(30);
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            let address = match qname {
                "ns.zero.zz." => Some(ip(2)),
                "ns.bcast.zz." => Some(v4([255, 255, 255, 255])),
                "ns.self.zz." => Some(own),
                _ => None,
            };
            if let Some(address) = address {
                return send(answer(query, vec![glue(qname, address)]));
            }
            return send(referral(
                query,
                vec![
                    ns("bad.zz.", "ns.dead.zz."),
                    ns("bad.zz.", "ns.bcast.zz."),
                    ns("bad.zz.", "ns.self.zz."),
                    ns("bad.zz.", "ns.zero.zz."),
                ],
                vec![
                    glue("ns.dead.zz.", ip(NOBODY)),
                    glue("ns.bcast.zz.", v4([255, 255, 255, 255])),
                    glue("ns.self.zz.", own),
                    glue("ns.zero.zz.", v4([0, 0, 0, 0])),
                ],
            ));
        }
        send(answer(query, vec![a(qname, [192, 0, 2, 13])]))
    });
    // The resolver serves on its own address, on the port every server has.
    let mut sockets = bind_dns_on_all(&[ip(1), ip(2), own], 0).await.unwrap();
    let port = sockets[0].local_addr().port();
    let own_socket = sockets.pop().unwrap();
    serve_script(sockets, script);
    let config = Config {
        upstream_port: port,
        seed: 1,
        ..Config::default()
    };
    let resolver = Resolver::new(config, hints("ns.fake.", ip(1)), Clock::new());
    let stop = CancellationToken::new();
    tokio::spawn(dnstrail::resolver::run(
        resolver.clone(),
        vec![own_socket],
        ServeOptions::default(),
        stop.clone(),
    ));

    let answered = resolve(&resolver, "www.bad.zz.").await;
    assert_eq!(
        answered.rcode,
        ResponseCode::NoError,
        "{:?}",
        answered.failure
    );
    assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 13])]);
    let asked = asked_servers(&answered);
    for bad in [v4([0, 0, 0, 0]), v4([255, 255, 255, 255]), own] {
        assert!(!asked.contains(&bad), "{bad} asked: {asked:?}");
    }
    assert!(asked.contains(&ip(2)), "the real address of ns.zero.zz.");
    let skipped: Vec<String> = events(&answered)
        .iter()
        .filter_map(|e| match e {
            TraceEvent::ServersSkipped { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    let skipped = skipped.join(" / ");
    for why in [
        "0.0.0.0 is unspecified",
        "is broadcast",
        "this resolver itself",
    ] {
        assert!(skipped.contains(why), "{why}: {skipped}");
    }
    stop.cancel();
}

// 9. Unexpected record types.

#[tokio::test]
async fn unexpected_records_in_an_answer_are_ignored() {
    let script = script(|server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("odd.zz.", "ns.odd.zz.")],
                vec![glue("ns.odd.zz.", ip(2))],
            ));
        }
        let txt = Record::from_rdata(
            n(qname),
            300,
            RData::TXT(hickory_proto::rr::rdata::TXT::new(vec!["not asked".into()])),
        );
        send(answer(
            query,
            vec![
                txt,
                a("unrelated.odd.zz.", [192, 0, 2, 66]),
                a(qname, [192, 0, 2, 14]),
                a("www.elsewhere.yy.", [6, 6, 6, 6]),
            ],
        ))
    });
    let resolver = resolver_over(&[ip(1), ip(2)], script).await;
    let answered = resolve(&resolver, "www.odd.zz.").await;
    assert_eq!(
        answered.rcode,
        ResponseCode::NoError,
        "{:?}",
        answered.failure
    );
    assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 14])]);
    assert_eq!(answered.answers.len(), 1);
    let ignored = events(&answered)
        .iter()
        .find_map(|e| match e {
            TraceEvent::RecordsIgnored { records, .. } => Some(records.len()),
            _ => None,
        })
        .expect("the ignored records are told");
    assert_eq!(ignored, 3);
    assert!(cached(&resolver, "answer", "unrelated.odd.zz.").is_empty());
}

// 10. TTLs.

fn ttl_script() -> Arc<Script> {
    script(|server, qname, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("ttl.zz.", "ns.ttl.zz.")],
                vec![glue("ns.ttl.zz.", ip(2))],
            ));
        }
        let ttl = match qname {
            "zero.ttl.zz." => 0,
            "huge.ttl.zz." => 1 << 31,
            "short.ttl.zz." => 10,
            _ => 1_000_000,
        };
        send(answer(query, vec![a_ttl(qname, [192, 0, 2, 15], ttl)]))
    })
}

#[tokio::test]
async fn ttls_of_zero_are_answered_not_cached_and_huge_ones_count_as_zero() {
    let resolver = resolver_over(&[ip(1), ip(2)], ttl_script()).await;
    for name in ["zero.ttl.zz.", "huge.ttl.zz."] {
        for round in 0..2 {
            let answered = resolve(&resolver, name).await;
            assert_eq!(addresses(&answered.answers), [v4([192, 0, 2, 15])]);
            assert_eq!(answered.answers[0].ttl, 0, "{name}");
            assert!(
                !asked_servers(&answered).is_empty(),
                "{name} {round}: not cached"
            );
        }
        assert!(cached(&resolver, "answer", name).is_empty());
    }
    // The default --max-ttl: one day.
    let long = resolve(&resolver, "long.ttl.zz.").await;
    assert_eq!(long.answers[0].ttl, 86_400);
    assert!(cached(&resolver, "answer", "long.ttl.zz.").contains("\"ttl\":86400"));
}

#[tokio::test]
async fn min_and_max_ttl_bound_what_is_cached() {
    let config = Config {
        min_ttl: 60,
        max_ttl: 300,
        ..Config::default()
    };
    let resolver = resolver_with(&[ip(1), ip(2)], ttl_script(), config).await;
    for (name, ttl) in [
        ("short.ttl.zz.", 60),
        ("long.ttl.zz.", 300),
        ("zero.ttl.zz.", 60),
    ] {
        let answered = resolve(&resolver, name).await;
        assert_eq!(answered.answers[0].ttl, ttl, "{name}");
        let again = resolve(&resolver, name).await;
        assert!(asked_servers(&again).is_empty(), "{name} is cached");
    }
}

// 11. Extended DNS Errors.

/// The EDE option of a response: its code and text.
fn ede(response: &Message) -> Option<(u16, String)> {
    match response.edns.as_ref()?.option(EdnsCode::from(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        )),
        _ => None,
    }
}

#[tokio::test]
async fn servfails_and_stale_answers_carry_extended_dns_errors() {
    let broken = Arc::new(AtomicBool::new(false));
    let breaks = broken.clone();
    let script = script(move |server, qname, _, query| {
        if server == ip(1) {
            let (zone, at) = match qname.split_once('.').map(|(_, z)| z) {
                Some("lame.zz.") => ("lame.zz.", ip(2)),
                Some("dead.zz.") => ("dead.zz.", ip(NOBODY)),
                _ => ("stale.zz.", ip(3)),
            };
            let host = format!("ns.{zone}");
            return send(referral(
                query,
                vec![ns(zone, &host)],
                vec![glue(&host, at)],
            ));
        }
        if server == ip(2) || breaks.load(Ordering::SeqCst) {
            return send(response_to(query));
        }
        send(answer(query, vec![a_ttl(qname, [192, 0, 2, 16], 10)]))
    });
    let sockets = bind_dns_on_all(&[ip(1), ip(2), ip(3), ip(31)], 0)
        .await
        .unwrap();
    let port = sockets[0].local_addr().port();
    let mut sockets = sockets;
    let front = sockets.pop().unwrap();
    serve_script(sockets, script);
    let config = Config {
        upstream_port: port,
        serve_stale: true,
        seed: 1,
        ..Config::default()
    };
    let resolver = Resolver::new(config, hints("ns.fake.", ip(1)), Clock::new());
    let addr = front.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(dnstrail::resolver::run(
        resolver.clone(),
        vec![front],
        ServeOptions::default(),
        stop.clone(),
    ));
    let dig = |name: &str| {
        let query = make_query(&n(name), RecordType::A, true, true);
        async move {
            exchange(addr, &query, Transport::Udp, Duration::from_secs(5))
                .await
                .unwrap()
                .response
        }
    };

    let lame = dig("www.lame.zz.").await;
    assert_eq!(lame.metadata.response_code, ResponseCode::ServFail);
    let (code, text) = ede(&lame).expect("an EDE");
    assert_eq!(code, 22, "No Reachable Authority: {text}");
    assert!(text.contains("lame"), "{text}");

    let remembered = dig("www.lame.zz.").await;
    assert_eq!(ede(&remembered).map(|e| e.0), Some(13), "Cached Error");

    let dead = dig("www.dead.zz.").await;
    assert_eq!(dead.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&dead).map(|e| e.0), Some(23), "Network Error");

    let fresh = dig("www.stale.zz.").await;
    assert_eq!(fresh.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ede(&fresh), None);
    broken.store(true, Ordering::SeqCst);
    resolver.clock().advance(Duration::from_secs(20));
    let stale = dig("www.stale.zz.").await;
    assert_eq!(stale.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&stale.answers), [v4([192, 0, 2, 16])]);
    assert_eq!(ede(&stale).map(|e| e.0), Some(3), "Stale Answer");

    // dig shows them.
    if let Some(dig) = tool("dig") {
        let out = tokio::process::Command::new(dig)
            .args([
                &format!("@{}", addr.ip()),
                "-p",
                &addr.port().to_string(),
                "www.lame.zz.",
            ])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("EDE: 22 (No Reachable Authority)"), "{text}");
    }
    stop.cancel();
}

// 12. Failures remembered (RFC 9520).

#[tokio::test]
async fn a_failed_resolution_is_remembered_and_backs_off() {
    let upstream = Arc::new(AtomicUsize::new(0));
    let count = upstream.clone();
    let script = script(move |server, _, _, query| {
        if server == ip(1) {
            return send(referral(
                query,
                vec![ns("broken.zz.", "ns.broken.zz.")],
                vec![glue("ns.broken.zz.", ip(2))],
            ));
        }
        count.fetch_add(1, Ordering::SeqCst);
        send(rcode(query, ResponseCode::ServFail))
    });
    let resolver = resolver_over(&[ip(1), ip(2)], script).await;
    let failure_ttl = |answered: &Answered| {
        events(answered).iter().find_map(|e| match e {
            TraceEvent::Cached {
                kind: dnstrail::trace::CacheKind::Failure,
                ttl,
                ..
            } => Some(*ttl),
            _ => None,
        })
    };

    let first = resolve(&resolver, "www.broken.zz.").await;
    assert_eq!(first.rcode, ResponseCode::ServFail);
    assert_eq!(failure_ttl(&first), Some(1));

    // A storm of the same question: answered from the failure cache.
    let storm: Vec<_> = (0..20)
        .map(|_| {
            let resolver = resolver.clone();
            tokio::spawn(async move { resolve(&resolver, "www.broken.zz.").await })
        })
        .collect();
    for question in storm {
        let answered = question.await.unwrap();
        assert_eq!(answered.rcode, ResponseCode::ServFail);
        assert_eq!(ede_code(&answered), Some(13));
    }
    assert_eq!(upstream.load(Ordering::SeqCst), 1, "one upstream question");

    // Each failure in a row doubles the hold, up to five minutes.
    let mut holds = Vec::new();
    for _ in 0..11 {
        resolver.clock().advance(Duration::from_secs(300));
        let again = resolve(&resolver, "www.broken.zz.").await;
        holds.push(failure_ttl(&again).expect("the failure is cached again"));
    }
    assert_eq!(holds, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
}

// 13. The name-server side.

#[tokio::test]
async fn a_cname_loop_in_a_zone_is_answered_with_each_record_once() {
    let text = "\
$ORIGIN loop.zz.
$TTL 300
@ IN SOA ns.loop.zz. admin.loop.zz. 1 7200 3600 1209600 60
@ IN NS ns.loop.zz.
ns IN A 192.0.2.53
a IN CNAME b.loop.zz.
b IN CNAME a.loop.zz.
";
    let zone = Zone::parse(text, "loop.zz.zone").unwrap();
    let (server, stop) = serve_alone(NameServer::new(vec![zone]), ServeOptions::default()).await;
    let response = ask_server(server, "a.loop.zz.", RecordType::A).await;
    let owners: Vec<String> = response
        .answers
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(owners, ["a.loop.zz.", "b.loop.zz."]);
    stop.cancel();
}

#[tokio::test]
async fn unknown_types_in_rfc_3597_form_load_and_are_served() {
    let text = "\
$ORIGIN gen.zz.
$TTL 300
@ IN SOA ns.gen.zz. admin.gen.zz. 1 7200 3600 1209600 60
@ IN NS ns.gen.zz.
ns IN A 192.0.2.53
x IN TYPE65534 \\# 2 0102
y 600 IN TYPE65533 \\# 3 ab cdef
z IN TYPE65532 \\# 0
";
    let zone = Zone::parse(text, "gen.zz.zone").expect("RFC 3597 records load");
    let (server, stop) = serve_alone(NameServer::new(vec![zone]), ServeOptions::default()).await;
    let response = ask_server(server, "x.gen.zz.", RecordType::Unknown(65534)).await;
    assert_eq!(response.answers.len(), 1, "{response:?}");
    match &response.answers[0].data {
        RData::Unknown { code, rdata } => {
            assert_eq!(*code, RecordType::Unknown(65534));
            assert_eq!(rdata.anything, [1, 2]);
        }
        other => panic!("{other:?}"),
    }
    let split = ask_server(server, "y.gen.zz.", RecordType::Unknown(65533)).await;
    assert_eq!(split.answers.len(), 1);
    assert_eq!(split.answers[0].ttl, 600);
    assert!(
        matches!(&split.answers[0].data, RData::Unknown { rdata, .. } if rdata.anything == [0xab, 0xcd, 0xef])
    );
    // (z's empty data loads too; hickory's own decoder, our `dig` here,
    // refuses records of length 0 outside updates, so it is not asked.)
    stop.cancel();
}

#[test]
fn out_of_range_ttls_are_called_bad_ttls() {
    let zone = |line: &str| {
        format!(
            "$ORIGIN t.zz.\n@ 300 IN SOA ns.t.zz. admin.t.zz. 1 2 3 4 60\n@ 300 IN NS ns.t.zz.\n{line}\n"
        )
    };
    for (line, says) in [
        (
            "ns 4294967296 IN A 192.0.2.1",
            "TTL 4294967296 is out of range",
        ),
        (
            "ns IN 4294967296 A 192.0.2.1",
            "TTL 4294967296 is out of range",
        ),
        ("ns -5 IN A 192.0.2.1", "TTL -5 is negative"),
        ("$TTL 4294967296", "TTL 4294967296 is out of range"),
    ] {
        let error = Zone::parse(&zone(line), "t.zz.zone")
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{line}: {error}");
        assert!(error.contains(":4:"), "the line: {error}");
        assert!(!error.contains("unknown"), "{error}");
    }
}

// 14. The control endpoint's /advance refuses huge values: see
// control::the_clock_moves_only_forward_and_only_so_far.
