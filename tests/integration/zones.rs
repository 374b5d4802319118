//! Zone files: the demo's load and agree with the topology; broken ones are
//! refused with the file, the line and the reason.

use std::net::IpAddr;

use dnstrail::topology::Topology;
use dnstrail::zone::Zone;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::support::*;

#[test]
fn every_demo_zone_loads_and_the_built_in_copy_is_the_same() {
    let topology = demo_topology();
    assert!(!topology.zones.is_empty());
    let builtin = Topology::builtin();
    let apexes =
        |t: &Topology| -> Vec<String> { t.zones.iter().map(|z| z.origin().to_string()).collect() };
    assert_eq!(apexes(&topology), apexes(&builtin));
    assert_eq!(topology.servers, builtin.servers);
    // The hints file beside the zones agrees with the root zone.
    let hints = Zone::load_records(zones_dir().join("root.hints")).unwrap();
    let derived = topology.root_hints().unwrap();
    for record in derived.ns.iter().chain(&derived.glue) {
        assert!(
            hints
                .iter()
                .any(|h| h.name == record.name && h.data == record.data),
            "{record} is not in root.hints"
        );
    }
}

fn addresses(zone: &Zone, host: &str) -> Vec<IpAddr> {
    zone.rrset(&LowerName::new(&name(host)), RecordType::A)
        .map(|rrset| dnstrail::dns::addresses(&rrset.records))
        .unwrap_or_default()
}

/// Every server is at the address its parent's glue gives it, and serves
/// exactly the zones whose NS records name it.
#[test]
fn servers_come_from_the_ns_records_and_the_glue() {
    let topology = demo_topology();
    for zone in &topology.zones {
        let ns = zone.rrset(zone.lower_origin(), RecordType::NS).unwrap();
        for record in &ns.records {
            let RData::NS(target) = &record.data else {
                panic!()
            };
            let server = topology
                .servers
                .iter()
                .find(|s| s.name == target.0.to_string())
                .unwrap_or_else(|| panic!("no server {target}"));
            assert!(server.zones.contains(&zone.origin().to_string()));
            // Glue in the parent (or the zone itself for the root).
            let parent = topology
                .zones
                .iter()
                .filter(|p| p.contains(&LowerName::new(&target.0)))
                .max_by_key(|p| p.origin().num_labels())
                .unwrap();
            assert_eq!(addresses(parent, &target.0.to_string()), server.addrs);
        }
    }
    let placement = topology
        .place_site(&["http://www.example.com:8080/".to_string()], None)
        .unwrap();
    let example = topology.zone("example.com.").unwrap();
    assert_eq!(
        placement.addrs.iter().map(|a| a.ip()).collect::<Vec<_>>(),
        addresses(example, "www.example.com.")
    );
    assert!(placement.hosts.contains(&"blog.example.com".to_string()));
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
        // Records go into the zone as they are read, yet the mistakes
        // reported are those of the whole file, in the same order: a quote
        // never closed before a record that does not parse, a second SOA
        // before an earlier record outside the zone.
        ("www IN A 300.1.2.3\nx IN TXT \"open\n", 7, "not closed"),
        (
            "www.example.org. IN A 1.2.3.4\n@ IN SOA ns1 host 1 2 3 4 5\n",
            7,
            "second SOA",
        ),
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

/// The zone keeps its records compactly; what it hands out is what was
/// read: the data of every kind, addresses or not, each RRset with its
/// first TTL, the same data once; and owners spelled as they came (a zone
/// file's names are read in lower case, a transfer's as sent).
#[test]
fn records_come_back_as_they_were_read() {
    let head = "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\n";
    let lines = [
        "ns1 300 IN A 127.0.0.9",
        "www.mixed 600 IN A 192.0.2.2",
        "www.mixed 60 IN A 192.0.2.3",
        "www.mixed 300 IN A 192.0.2.2",
        "www.mixed 300 IN AAAA 2001:db8::1",
        "mail 300 IN MX 10 ns1",
        "alias 300 IN CNAME www.mixed",
        "text 300 IN TXT \"one\" \"two\"",
        "generic 300 IN TYPE65534 \\# 2 0102",
        "old 300 IN DNAME new.test.",
    ];
    let zone = Zone::parse(&format!("{head}{}\n", lines.join("\n")), "kept.zone").unwrap();
    let as_read = |line: &str| zone.parse_record(line).unwrap();
    let mut expected: Vec<Record> = vec![zone.soa().clone(), as_read("@ 300 IN NS ns1")];
    for (i, line) in lines.iter().enumerate() {
        let mut record = as_read(line);
        if i == 2 {
            record.ttl = 600; // the RRset's first TTL
        }
        if i != 3 {
            expected.push(record); // 3 repeats 1
        }
    }
    let key = |r: &Record| (r.to_string(), r.ttl, r.dns_class, r.data.clone());
    let sorted = |records: Vec<Record>| {
        let mut keys: Vec<_> = records.iter().map(key).collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    };
    assert_eq!(sorted(zone.records().collect()), sorted(expected));

    // A transfer's names keep their spelling.
    let spelled = |text: &str| Name::from_ascii(text).unwrap();
    let mut records: Vec<Record> = zone.records().collect();
    records.push(Record::from_rdata(
        spelled("Www.Mixed.Example.Test."),
        300,
        RData::TXT(TXT::new(vec!["spelled".into()])),
    ));
    let copy = Zone::from_records(records, "kept.zone").unwrap();
    let txt = copy
        .rrset(
            &LowerName::new(&spelled("www.mixed.example.test.")),
            RecordType::TXT,
        )
        .unwrap();
    assert_eq!(txt.records[0].name.to_ascii(), "Www.Mixed.Example.Test.");
    assert_eq!(copy.records().count(), zone.records().count() + 1);
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
    let Some(checker) = tool("named-checkzone") else {
        return;
    };
    for zone in &demo_topology().zones {
        let output = std::process::Command::new(&checker)
            .arg(zone.origin().to_string())
            .arg(zone.file())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {stdout}",
            zone.file().display()
        );
        assert!(stdout.contains("OK"), "{stdout}");
    }
}

/// A FIFO, or /dev/zero behind a symlink, given as a zone file: refused at
/// once with the file named, never read (reading would hang or never end).
#[tokio::test]
async fn a_zone_file_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = temp_dir("not-a-file");
    let fifo = dir.join("fifo.zone");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let link = dir.join("zero.zone");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let mut paths = vec![link];
    if made.is_ok_and(|s| s.success()) {
        paths.push(fifo);
    }
    for path in paths {
        let started = std::time::Instant::now();
        let error = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::task::spawn_blocking({
                let path = path.clone();
                move || Zone::load(&path).unwrap_err().to_string()
            }),
        )
        .await
        .expect("refused without reading")
        .unwrap();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("not a regular file"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    // And a whole directory of zones with one of them is refused too.
    let error = Topology::load(&dir).unwrap_err().to_string();
    assert!(
        error.contains("not a regular file") || error.contains("zero.zone"),
        "{error}"
    );
}

/// A zone file over the size cap is refused with its size and the cap.
#[test]
fn a_zone_file_too_big_is_refused() {
    let dir = temp_dir("too-big");
    let path = dir.join("big.zone");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(dnstrail::zone::MAX_ZONE_FILE_BYTES + 1)
        .unwrap();
    let error = Zone::load(&path).unwrap_err().to_string();
    assert!(error.contains("MiB a zone file may have"), "{error}");
}
