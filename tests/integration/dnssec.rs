//! DNSSEC from our own root: the name servers sign (`--dnssec`), the
//! resolver validates from the trust anchor they write, and each fault of
//! the chain of trust is a SERVFAIL with its Extended DNS Error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use dnstrail::dnssec::{KeyStore, Security, Signing};
use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::fault::Fault;
use dnstrail::nameserver::NameServer;
use dnstrail::resolver::Config;
use dnstrail::serve::ServeOptions;
use dnstrail::stack::StackConfig;
use dnstrail::topology::Topology;
use dnstrail::trace::{ChainStep, TraceEvent};
use dnstrail::zone::Zone;
use hickory_proto::dnssec::Algorithm;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

use crate::support::*;

fn store(dir: &Path) -> KeyStore {
    KeyStore::open(dir, Algorithm::ECDSAP256SHA256).expect("the key directory")
}

/// The demo's zones, signed with keys in `keys`, a validating resolver in
/// front, and these servers failing.
async fn signed_chain_on(topology: Topology, keys: &Path, faults: HashMap<String, Fault>) -> Chain {
    let mut config = StackConfig::name_servers(topology, 0);
    config.faults = faults;
    config.dnssec = Some(store(keys));
    let resolver = Config {
        seed: 1,
        ..Config::default()
    };
    start_chain_from(config, resolver, ServeOptions::default()).await
}

async fn signed_chain(faults: HashMap<String, Fault>) -> Chain {
    signed_chain_on(demo_topology(), &temp_dir("keys"), faults).await
}

/// The servers called `which` failing with `fault`.
fn failing(which: &str, fault: Fault) -> HashMap<String, Fault> {
    demo_topology()
        .find_servers(which)
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), fault))
        .collect()
}

/// Ask as a stub does (RD=1), with DO, CD and AD as given.
async fn ask_flags(
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
    dnssec_ok: bool,
    cd: bool,
    ad: bool,
) -> Message {
    let mut query = make_query(&name(qname), rtype, true, true);
    query.edns.as_mut().unwrap().set_dnssec_ok(dnssec_ok);
    query.metadata.checking_disabled = cd;
    query.metadata.authentic_data = ad;
    exchange(server, &query, Transport::Udp, Duration::from_secs(10))
        .await
        .expect("an answer")
        .response
}

/// Ask as a stub does (RD=1) with DO=1, CD and AD clear.
async fn ask_dnssec(server: SocketAddr, qname: &str, rtype: RecordType) -> Message {
    ask_flags(server, qname, rtype, true, false, false).await
}

/// Ask a name server (RD=0) with DO=1.
async fn ask_do(server: SocketAddr, qname: &str, rtype: RecordType) -> Message {
    let mut query = make_query(&name(qname), rtype, false, true);
    query.edns.as_mut().unwrap().set_dnssec_ok(true);
    exchange(server, &query, Transport::Udp, Duration::from_secs(5))
        .await
        .expect("an answer")
        .response
}

fn ede(response: &Message) -> Option<u16> {
    match response.edns.as_ref()?.option(EdnsCode::from(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => {
            Some(u16::from_be_bytes([data[0], data[1]]))
        }
        _ => None,
    }
}

fn types(records: &[hickory_proto::rr::Record]) -> Vec<RecordType> {
    records.iter().map(|r| r.record_type()).collect()
}

/// The chain-of-trust checks of a resolution: (step, name, security).
fn checks(chain: &Chain, qname: &str, rtype: RecordType) -> Vec<(ChainStep, String, Security)> {
    let resolution = chain
        .resolver
        .recent()
        .into_iter()
        .rev()
        .find(|r| r.question.name == qname && r.question.rtype == rtype)
        .expect("the resolution is recorded");
    resolution
        .events
        .iter()
        .filter_map(|t| match &t.event {
            TraceEvent::DnssecChecked {
                step,
                name,
                security,
                ..
            } => Some((*step, name.clone(), *security)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_signed_answer_is_validated_from_the_root_down_and_gets_ad() {
    let chain = signed_chain(HashMap::new()).await;
    let response = ask_dnssec(chain.addr, "www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authentic_data, "AD=1");
    assert_eq!(types(&response.answers), [RecordType::A, RecordType::RRSIG]);
    // The chain as the story tells it: the root's keys against the anchor,
    // com.'s DS signed by the root, com.'s keys against it, and so on down.
    let steps = checks(&chain, "www.example.com.", RecordType::A);
    let expected = [
        (ChainStep::Anchor, "."),
        (ChainStep::Ds, "com."),
        (ChainStep::Dnskey, "com."),
        (ChainStep::Ds, "example.com."),
        (ChainStep::Dnskey, "example.com."),
        (ChainStep::Rrset, "www.example.com."),
    ];
    assert_eq!(
        steps
            .iter()
            .map(|(s, n, _)| (*s, n.as_str()))
            .collect::<Vec<_>>(),
        expected
    );
    assert!(
        steps.iter().all(|(_, _, s)| *s == Security::Secure),
        "{steps:?}"
    );

    // DO=0: no signatures, and no AD unless the client asked with AD=1.
    let plain = ask_flags(
        chain.addr,
        "www.example.com.",
        RecordType::A,
        false,
        false,
        false,
    )
    .await;
    assert_eq!(types(&plain.answers), [RecordType::A]);
    assert!(!plain.metadata.authentic_data);
    let ad = ask_flags(
        chain.addr,
        "www.example.com.",
        RecordType::A,
        false,
        false,
        true,
    )
    .await;
    assert_eq!(types(&ad.answers), [RecordType::A]);
    assert!(
        ad.metadata.authentic_data,
        "AD=1 asked, AD=1 given (RFC 6840 §5.7)"
    );
    chain.stop().await;
}

#[tokio::test]
async fn a_missing_name_is_nxdomain_proven_by_nsec_with_ad() {
    let chain = signed_chain(HashMap::new()).await;
    let response = ask_dnssec(chain.addr, "nope.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.metadata.authentic_data);
    let authority = types(&response.authorities);
    assert!(
        authority.contains(&RecordType::SOA) && authority.contains(&RecordType::NSEC),
        "{authority:?}"
    );
    assert!(authority.contains(&RecordType::RRSIG));
    // NODATA, the same way, and from the cache too.
    for _ in 0..2 {
        let nodata = ask_dnssec(chain.addr, "www.example.com.", RecordType::AAAA).await;
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert!(nodata.metadata.authentic_data);
        assert!(types(&nodata.authorities).contains(&RecordType::NSEC));
    }
    let steps = checks(&chain, "nope.example.com.", RecordType::A);
    assert!(
        steps
            .iter()
            .any(|(s, _, sec)| *s == ChainStep::Denial && *sec == Security::Secure),
        "{steps:?}"
    );
    chain.stop().await;
}

#[tokio::test]
async fn each_fault_of_the_chain_is_servfail_with_its_extended_dns_error() {
    for (which, fault, code) in [
        ("example.com.", Fault::BadSignature, 6),
        ("example.com.", Fault::ExpiredSignature, 7),
        ("com.", Fault::WrongDs, 9),
        ("com.", Fault::MissingDs, 6),
        ("root", Fault::BadSignature, 6),
    ] {
        let chain = signed_chain(failing(which, fault)).await;
        let response = ask_dnssec(chain.addr, "www.example.com.", RecordType::A).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::ServFail,
            "{fault} on {which}"
        );
        assert_eq!(ede(&response), Some(code), "{fault} on {which}");
        assert!(!response.metadata.authentic_data);
        let steps = checks(&chain, "www.example.com.", RecordType::A);
        assert!(
            steps.iter().any(|(_, _, s)| *s == Security::Bogus),
            "{fault}: {steps:?}"
        );
        // Asked again, bogus stays bogus (never served from the cache as secure).
        let again = ask_dnssec(chain.addr, "www.example.com.", RecordType::A).await;
        assert_eq!(again.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(ede(&again), Some(code));
        // CD=1: the data, unchecked, with its signatures and without AD.
        let unchecked = ask_flags(
            chain.addr,
            "www.example.com.",
            RecordType::A,
            true,
            true,
            false,
        )
        .await;
        assert_eq!(
            unchecked.metadata.response_code,
            ResponseCode::NoError,
            "{fault} CD=1"
        );
        assert!(!unchecked.metadata.authentic_data);
        assert!(types(&unchecked.answers).contains(&RecordType::A));
        chain.stop().await;
    }
}

#[tokio::test]
async fn signatures_expire_as_the_resolvers_clock_moves_on() {
    let chain = signed_chain(HashMap::new()).await;
    let response = ask_dnssec(chain.addr, "www.example.com.", RecordType::A).await;
    assert!(response.metadata.authentic_data);
    // Fifteen days on, every signature made today has expired.
    chain
        .resolver
        .clock()
        .advance(Duration::from_secs(15 * 86_400));
    let later = ask_dnssec(chain.addr, "www.example.com.", RecordType::A).await;
    assert_eq!(later.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&later), Some(7), "Signature Expired");
    chain.stop().await;
}

#[tokio::test]
async fn an_unsigned_child_is_followed_as_insecure() {
    // com. delegates plain.com. to a server of its own, unsigned.
    let dir = temp_dir("insecure");
    for entry in std::fs::read_dir(zones_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let com = std::fs::read_to_string(dir.join("com.zone")).unwrap();
    std::fs::write(
        dir.join("com.zone"),
        format!("{com}\nplain 172800 IN NS ns.plain.com.\nns.plain 172800 IN A 127.0.0.8\n"),
    )
    .unwrap();
    let topology = Topology::load(&dir).unwrap();
    let chain = signed_chain_on(topology, &dir.join("keys"), HashMap::new()).await;
    let plain = Zone::parse(
        "$ORIGIN plain.com.\n@ 300 IN SOA ns.plain.com. admin.plain.com. 1 2 3 4 60\n@ 300 IN NS ns.plain.com.\nwww 300 IN A 127.0.0.44\n",
        "plain.com.zone",
    )
    .unwrap();
    let sockets = dnstrail::listen::bind_dns(SocketAddr::new(
        "127.0.0.8".parse().unwrap(),
        chain.stack.dns_port,
    ))
    .await
    .expect("127.0.0.8 on the chain's port");
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(dnstrail::nameserver::run(
        NameServer::new(vec![plain]),
        vec![sockets],
        ServeOptions::default(),
        stop.clone(),
    ));
    let response = ask_dnssec(chain.addr, "www.plain.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(!response.metadata.authentic_data, "insecure: no AD");
    assert_eq!(types(&response.answers), [RecordType::A]);
    let steps = checks(&chain, "www.plain.com.", RecordType::A);
    assert!(
        steps.contains(&(ChainStep::Ds, "plain.com.".into(), Security::Insecure)),
        "{steps:?}"
    );
    stop.cancel();
    chain.stop().await;
}

#[tokio::test]
async fn name_servers_answer_do_queries_as_dns_engineers_expect() {
    let chain = signed_chain(HashMap::new()).await;
    let com = addr_of(&chain.stack, "com.");
    let auth = addr_of(&chain.stack, "example.com.");
    // A referral from a signed parent: NS, and the DS with its RRSIG.
    let referral = ask_do(com, "www.example.com.", RecordType::A).await;
    assert!(!referral.metadata.authoritative);
    assert_eq!(
        types(&referral.authorities),
        [
            RecordType::NS,
            RecordType::NS,
            RecordType::NS,
            RecordType::NS,
            RecordType::DS,
            RecordType::RRSIG
        ]
    );
    // The answer: the RRset, then its RRSIG.
    let answer = ask_do(auth, "www.example.com.", RecordType::A).await;
    assert_eq!(types(&answer.answers), [RecordType::A, RecordType::RRSIG]);
    // DNSKEY at the apex: a KSK (257) and a ZSK (256), signed.
    let keys = ask_do(auth, "example.com.", RecordType::DNSKEY).await;
    assert_eq!(
        types(&keys.answers),
        [RecordType::DNSKEY, RecordType::DNSKEY, RecordType::RRSIG]
    );
    // NXDOMAIN: the SOA, the NSEC spanning the name and the wildcard's,
    // each with its RRSIG.
    let nx = ask_do(auth, "nope.example.com.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let authority = types(&nx.authorities);
    assert_eq!(
        authority.iter().filter(|t| **t == RecordType::NSEC).count(),
        2,
        "{authority:?}"
    );
    assert_eq!(
        authority
            .iter()
            .filter(|t| **t == RecordType::RRSIG)
            .count(),
        3,
        "{authority:?}"
    );
    // DO=0: the same answer without a signature.
    let plain = ask(auth, "www.example.com.", RecordType::A).await;
    assert_eq!(types(&plain.answers), [RecordType::A]);
    chain.stop().await;
}

#[tokio::test]
async fn keys_are_kept_private_and_reused_across_restarts() {
    let keys = temp_dir("restart");
    let first = signed_chain_on(demo_topology(), &keys, HashMap::new()).await;
    let anchor = std::fs::read_to_string(keys.join("root.key")).unwrap();
    let dnskey = |m: &Message| {
        m.answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY)
            .map(|r| r.data.to_string())
            .collect::<Vec<_>>()
    };
    let root = addr_of(&first.stack, ".");
    let before = dnskey(&ask_do(root, ".", RecordType::DNSKEY).await);
    first.stop().await;

    let second = signed_chain_on(demo_topology(), &keys, HashMap::new()).await;
    let root = addr_of(&second.stack, ".");
    assert_eq!(dnskey(&ask_do(root, ".", RecordType::DNSKEY).await), before);
    assert_eq!(
        std::fs::read_to_string(keys.join("root.key")).unwrap(),
        anchor
    );
    // The old anchor still validates the new run.
    let response = ask_dnssec(second.addr, "www.example.com.", RecordType::A).await;
    assert!(response.metadata.authentic_data);
    second.stop().await;

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&keys), 0o700);
    let private: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pk8"))
        .collect();
    assert_eq!(private.len(), 6, "a KSK and a ZSK for each of three zones");
    for path in private {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[tokio::test]
async fn a_signed_zone_transfer_passes_dnssec_verify() {
    let (Some(verify), Some(dig)) = (tool("dnssec-verify"), tool("dig")) else {
        return;
    };
    let keys = temp_dir("axfr");
    let (zones, signing) = Signing::prepare(demo_topology().zones, &store(&keys)).unwrap();
    let server = NameServer::new(zones.clone())
        .with_dnssec(std::sync::Arc::new(signing))
        .with_transfers_to(vec!["127.0.0.0/8".parse().unwrap()]);
    let (addr, stop) = serve_alone(server, ServeOptions::default()).await;
    for zone in &zones {
        let apex = zone.origin().to_string();
        // dig writes the transfer as BIND reads it (hickory's text of a
        // TXT record is not quoted).
        let transfer = tokio::process::Command::new(&dig)
            .args(["+noall", "+answer", "+onesoa", "-p"])
            .arg(addr.port().to_string())
            .arg(format!("@{}", addr.ip()))
            .arg(&apex)
            .arg("AXFR")
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&transfer.stdout).into_owned();
        assert!(text.contains("RRSIG"), "dig {apex} AXFR: {text}");
        let file = keys.join(format!("{}axfr", apex.trim_end_matches('.')));
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(&verify)
            .arg("-o")
            .arg(&apex)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dnssec-verify {apex}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.cancel();
}

#[test]
fn zone_files_may_hold_dnssec_records() {
    let zone = Zone::parse(
        "$ORIGIN example.\n\
         @ 300 IN SOA ns.example. admin.example. 1 2 3 4 60\n\
         @ 300 IN NS ns.example.\n\
         ns 300 IN A 192.0.2.1\n\
         child 300 IN NS ns.child.example.\n\
         child 300 IN DS 12345 13 2 ( 4B2C0E4C0C8A3BA32B1F1C6E7E1B2A1B\n 4B2C0E4C0C8A3BA32B1F1C6E7E1B2A1B )\n\
         ns.child 300 IN A 192.0.2.2\n",
        "example.zone",
    )
    .expect("a DS in the parent loads");
    let child = hickory_proto::rr::LowerName::new(&Name::from_ascii("child.example.").unwrap());
    assert!(zone.rrset(&child, RecordType::DS).is_some());
}
