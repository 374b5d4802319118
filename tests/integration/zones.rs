//! Zone files: the demo's load and agree with the topology; broken ones are
//! refused with the file, the line and the reason.

use std::net::IpAddr;

use dnstrail::topology::{Role, Topology};
use dnstrail::zone::Zone;
use hickory_proto::rr::{LowerName, RData, RecordType};

use crate::support::*;

#[test]
fn every_demo_zone_loads() {
    let topology = Topology::canonical(zones_dir());
    for service in &topology.services {
        let zone = Zone::load(&service.file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zone.origin().to_string(), service.zone);
    }
    let hints = Zone::load_records(&topology.root_hints).unwrap();
    assert!(hints.iter().any(|r| r.record_type() == RecordType::NS));
    assert!(hints.iter().any(|r| r.record_type() == RecordType::A));
}

fn addresses(zone: &Zone, host: &str) -> Vec<IpAddr> {
    zone.rrset(&LowerName::new(&name(host)), RecordType::A)
        .map(|rrset| {
            rrset
                .records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The topology's addresses are the zone files' glue, not a second truth.
#[test]
fn topology_matches_the_glue_in_the_zone_files() {
    let topology = Topology::canonical(zones_dir());
    let root = Zone::load(&topology.service(Role::Root).file).unwrap();
    let com = Zone::load(&topology.service(Role::Tld).file).unwrap();
    let example = Zone::load(&topology.service(Role::Auth).file).unwrap();
    for host in &topology.service(Role::Tld).hosts {
        assert_eq!(addresses(&root, &host.name), [host.ip], "{}", host.name);
    }
    for host in &topology.service(Role::Auth).hosts {
        assert_eq!(addresses(&com, &host.name), [host.ip], "{}", host.name);
    }
    assert_eq!(
        addresses(&example, &format!("{}.", topology.site)),
        [topology.web.ip()]
    );
    let hints = Zone::load_records(&topology.root_hints).unwrap();
    let root_host = &topology.service(Role::Root).hosts[0];
    assert!(
        hints
            .iter()
            .any(|r| matches!(&r.data, RData::A(a) if IpAddr::V4(a.0) == root_host.ip))
    );
}

#[test]
fn hosted_zone_is_a_route53_zone() {
    let zone = Zone::load(zones_dir().join("example.com.zone")).unwrap();
    let soa = zone.soa();
    assert_eq!(soa.ttl, 900);
    let RData::SOA(data) = &soa.data else {
        panic!()
    };
    assert_eq!(data.mname.to_string(), "ns-1.awsdns-01.com.");
    assert_eq!(data.rname.to_string(), "awsdns-hostmaster.amazon.com.");
    assert_eq!(
        (
            data.serial,
            data.refresh,
            data.retry,
            data.expire,
            data.minimum
        ),
        (1, 7200, 900, 1209600, 86400)
    );
    let ns = zone.rrset(zone.lower_origin(), RecordType::NS).unwrap();
    assert_eq!(ns.records.len(), 4);
    assert!(ns.records.iter().all(|r| r.ttl == 172800));
    for rtype in [RecordType::A, RecordType::MX, RecordType::TXT] {
        assert!(
            zone.rrset(zone.lower_origin(), rtype).is_some(),
            "apex {rtype}"
        );
    }
    let www = zone
        .rrset(&LowerName::new(&name("www.example.com.")), RecordType::A)
        .unwrap();
    assert_eq!(www.records[0].ttl, 300);
    let types: Vec<RecordType> = zone.names_and_types().into_iter().map(|(_, t)| t).collect();
    assert!(types.contains(&RecordType::CNAME));
    assert!(types.contains(&RecordType::AAAA));
}

/// Parse a broken zone and return its error, which must name the file.
fn error_of(text: &str) -> (Option<usize>, String) {
    let error = Zone::parse(text, "broken.zone").unwrap_err();
    let shown = error.to_string();
    assert!(shown.starts_with("broken.zone"), "{shown}");
    (error.line, shown)
}

const GOOD_HEAD: &str = "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 127.0.0.9\n";

#[test]
fn a_good_small_zone_loads() {
    let zone = Zone::parse(GOOD_HEAD, "ok.zone").unwrap();
    assert_eq!(zone.origin().to_string(), "example.test.");
    // The negative TTL is min(SOA TTL, MINIMUM): min(300, 5).
    assert_eq!(zone.negative_soa().ttl, 5);
}

#[test]
fn broken_zones_name_file_line_and_reason() {
    let cases: &[(&str, usize, &str)] = &[
        ("www IN A 300.1.2.3\n", 6, "cannot parse"),
        ("www IN BOGUS 1.2.3.4\n", 6, "cannot parse"),
        ("www 9999999999 IN A 1.2.3.4\n", 6, ""),
        (
            "alias IN CNAME www\nalias IN A 1.2.3.4\n",
            7,
            "CNAME beside other data",
        ),
        ("sub IN NS ns.sub\n", 6, "needs glue"),
        ("www.example.org. IN A 1.2.3.4\n", 6, "out-of-zone"),
        (
            "sub IN NS ns.other.test.\nhost.sub IN TXT \"hidden\"\n",
            7,
            "occluded",
        ),
        ("$INCLUDE other.zone\n", 6, "$INCLUDE"),
        ("www IN A (1.2.3.4\n", 6, "never closed"),
        ("@ IN SOA ns1 host 1 2 3 4 5\n", 6, "second SOA"),
    ];
    for (tail, line, reason) in cases {
        let (got_line, shown) = error_of(&format!("{GOOD_HEAD}{tail}"));
        assert_eq!(got_line, Some(*line), "{tail:?}: {shown}");
        assert!(shown.contains(reason), "{tail:?}: {shown}");
        assert!(shown.contains(&format!("broken.zone:{line}:")), "{shown}");
    }
}

#[test]
fn a_zone_without_soa_or_ns_is_refused() {
    let (_, shown) = error_of("$ORIGIN example.test.\nwww 300 IN A 1.2.3.4\n");
    assert!(shown.contains("no SOA"), "{shown}");
    let (line, shown) = error_of("$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n");
    assert_eq!(line, Some(3));
    assert!(shown.contains("no NS"), "{shown}");
}

#[test]
fn multi_line_records_and_blank_owners_are_read() {
    let text = "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host (\n 1 ; serial\n 2 3 4 5 )\n  IN NS ns1\nns1 IN A 127.0.0.9\n    IN AAAA ::1\n";
    let zone = Zone::parse(text, "multi.zone").unwrap();
    let ns1 = LowerName::new(&name("ns1.example.test."));
    assert!(zone.rrset(&ns1, RecordType::AAAA).is_some());
    assert!(zone.rrset(zone.lower_origin(), RecordType::NS).is_some());
}

#[test]
fn a_missing_file_is_named() {
    let error = Zone::load("/nonexistent/dir/x.zone")
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/dir/x.zone"), "{error}");
}

/// BIND's own checker accepts the demo zones, where it is installed.
#[test]
fn named_checkzone_accepts_the_demo_zones() {
    let topology = Topology::canonical(zones_dir());
    for service in &topology.services {
        let output = match std::process::Command::new("named-checkzone")
            .arg(&service.zone)
            .arg(&service.file)
            .output()
        {
            Ok(output) => output,
            Err(_) => {
                eprintln!("note: named-checkzone not installed; zones not cross-checked");
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {stdout}",
            service.file.display()
        );
        assert!(stdout.contains("OK"), "{stdout}");
    }
}
