//! A hierarchy unlike the demo's: two TLDs (`test.`, `zz.`), other
//! addresses, a name server outside the zone it serves (no glue possible),
//! one server holding two zones, a CNAME that crosses zones, and an RRset
//! too large for UDP. The resolver must walk it with nothing demo-specific.

use std::net::{IpAddr, Ipv4Addr};

use dnstrail::dns::addresses;
use dnstrail::exchange::Transport;
use dnstrail::resolver::Config;
use dnstrail::topology::Topology;
use dnstrail::trace::{ResponseKind, TraceEvent};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::*;

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, d))
}

const ROOT: &str = "\
$ORIGIN .
$TTL 86400
@ IN SOA ns.root-servers.zz. admin.nic.zz. 1 1800 900 604800 3600
@ IN NS ns.root-servers.zz.
zz. IN NS ns.nic.zz.
test. IN NS ns.nic.test.
; glue, below the cuts
ns.root-servers.zz. IN A 127.0.1.1
ns.nic.zz. IN A 127.0.1.5
ns.nic.test. IN A 127.0.1.2
";

const ZZ: &str = "\
$ORIGIN zz.
$TTL 3600
@ IN SOA ns.nic.zz. admin.nic.zz. 1 1800 900 604800 600
@ IN NS ns.nic.zz.
ns.nic IN A 127.0.1.5
ns.root-servers IN A 127.0.1.1
hosting IN NS ns.hosting.zz.
ns.hosting IN A 127.0.1.4
";

const TEST: &str = "\
$ORIGIN test.
$TTL 3600
@ IN SOA ns.nic.test. admin.nic.test. 1 1800 900 604800 600
@ IN NS ns.nic.test.
ns.nic IN A 127.0.1.2
alpha IN NS ns1.alpha.test.
ns1.alpha IN A 127.0.1.3
; beta.test. is served by a host in another TLD: no glue can be given.
beta IN NS ns.hosting.zz.
";

const ALPHA: &str = "\
$ORIGIN alpha.test.
$TTL 120
@ IN SOA ns1.alpha.test. admin.alpha.test. 1 1800 900 604800 60
@ IN NS ns1.alpha.test.
ns1 IN A 127.0.1.3
www IN CNAME web.beta.test.
; one more level down
deep IN NS ns.deep.alpha.test.
ns.deep IN A 127.0.1.6
";

const DEEP: &str = "\
$ORIGIN deep.alpha.test.
$TTL 120
@ IN SOA ns.deep.alpha.test. admin.alpha.test. 1 1800 900 604800 60
@ IN NS ns.deep.alpha.test.
ns IN A 127.0.1.6
inner IN CNAME www.alpha.test.
";

const HOSTING: &str = "\
$ORIGIN hosting.zz.
$TTL 3600
@ IN SOA ns.hosting.zz. admin.hosting.zz. 1 1800 900 604800 600
@ IN NS ns.hosting.zz.
ns IN A 127.0.1.4
";

fn beta() -> String {
    let mut zone = String::from(
        "$ORIGIN beta.test.\n$TTL 60\n@ IN SOA ns.hosting.zz. admin.beta.test. 1 1800 900 604800 30\n@ IN NS ns.hosting.zz.\nweb IN A 127.0.1.80\n",
    );
    // 40 TXT records of ~100 bytes: over 4 kB, more than any UDP answer.
    for i in 0..40 {
        zone.push_str(&format!("big IN TXT \"{i:02} {}\"\n", "x".repeat(96)));
    }
    zone
}

/// Write the hierarchy's zone files into a directory of their own.
pub fn write_zones() -> std::path::PathBuf {
    let dir = temp_dir("hierarchy");
    let files = [
        ("root.zone", ROOT.to_string()),
        ("zz.zone", ZZ.to_string()),
        ("test.zone", TEST.to_string()),
        ("alpha.test.zone", ALPHA.to_string()),
        ("hosting.zz.zone", HOSTING.to_string()),
        ("beta.test.zone", beta()),
        ("deep.zone", DEEP.to_string()),
        (
            "root.hints",
            ".  3600000 NS ns.root-servers.zz.\nns.root-servers.zz. 3600000 A 127.0.1.1\n"
                .to_string(),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// The hierarchy, as dnstrail derives it from the files.
pub fn topology() -> Topology {
    Topology::load(&write_zones()).expect("the hierarchy loads")
}

#[test]
fn the_servers_and_their_addresses_come_from_the_zone_files() {
    let topology = topology();
    let apexes: Vec<String> = topology
        .zones
        .iter()
        .map(|z| z.origin().to_string())
        .collect();
    assert_eq!(
        apexes,
        [
            ".",
            "test.",
            "zz.",
            "alpha.test.",
            "beta.test.",
            "hosting.zz.",
            "deep.alpha.test."
        ]
    );
    let server = |name: &str| {
        topology
            .servers
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no server {name}"))
    };
    // Glue in the parent gives the address...
    assert_eq!(server("ns1.alpha.test.").addrs, [ip(3)]);
    // ...or, for a server named in another TLD, its own zone's A record.
    let hosting = server("ns.hosting.zz.");
    assert_eq!(hosting.addrs, [ip(4)]);
    assert_eq!(hosting.zones, ["beta.test.", "hosting.zz."]);
    let hints = topology.root_hints().unwrap();
    assert_eq!(dnstrail::dns::addresses(&hints.glue), [ip(1)]);
    // The site: www.alpha.test is a CNAME to web.beta.test, at 127.0.1.80.
    let placement = topology
        .place_site(&["http://www.alpha.test:8080/".to_string()], None)
        .unwrap();
    assert_eq!(placement.addrs, ["127.0.1.80:8080".parse().unwrap()]);
    assert_eq!(
        placement.hosts,
        ["inner.deep.alpha.test", "web.beta.test", "www.alpha.test"]
    );
}

#[tokio::test]
async fn cname_across_zones_through_a_server_without_glue() {
    let chain = start_chain_on(topology(), Config::default()).await;
    let (response, events) = chain.ask("www.alpha.test.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(addresses(&response.answers), [ip(80)]);

    let zones: Vec<String> = upstream_hops(&events).into_iter().map(|(z, _)| z).collect();
    // www.alpha.test: root, test., alpha.test.; then web.beta.test: test.
    // is cached, and refers to ns.hosting.zz, whose address must first be
    // found through the root and zz.
    assert_eq!(zones[..3], [".", "test.", "alpha.test."]);
    assert!(zones.contains(&"zz.".to_string()), "{zones:?}");
    assert!(zones.contains(&"hosting.zz.".to_string()), "{zones:?}");
    assert_eq!(zones.last().map(String::as_str), Some("beta.test."));
    chain.stop().await;
}

#[tokio::test]
async fn nxdomain_in_another_tld() {
    let chain = start_chain_on(topology(), Config::default()).await;
    let (response, _) = chain.ask("nothing.alpha.test.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    let (response, _) = chain.ask("nothing.zz.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.authorities[0].name.to_string() == "zz.");
    chain.stop().await;
}

#[tokio::test]
async fn truncated_upstream_answers_are_fetched_over_tcp() {
    let chain = start_chain_on(topology(), Config::default()).await;
    let (response, events) = chain
        .ask_over("big.beta.test.", RecordType::TXT, Transport::Tcp)
        .await;
    assert_eq!(response.answers.len(), 40);
    let truncated = events.iter().position(|e| {
        matches!(
            e,
            TraceEvent::UpstreamResponse {
                response: ResponseKind::Truncated,
                ..
            }
        )
    });
    let truncated = truncated.expect("the UDP answer was truncated");
    assert!(matches!(
        &events[truncated + 1],
        TraceEvent::UpstreamQuery {
            transport: Transport::Tcp,
            ..
        }
    ));
    // A UDP client gets TC=1 from the resolver, and can retry over TCP.
    let (udp, _) = chain.ask("big.beta.test.", RecordType::TXT).await;
    assert!(udp.metadata.truncation);
    chain.stop().await;
}
