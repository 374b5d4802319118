//! The name-server half of the chain, asked as a resolver asks: with RD=0.

use std::net::Ipv4Addr;
use std::time::Duration;

use dnstrail::exchange::{Transport, exchange, make_query};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

use crate::support::*;

fn a_records(records: &[Record]) -> Vec<(String, Ipv4Addr)> {
    let mut out: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((r.name.to_string(), a.0)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn ns_targets(records: &[Record]) -> Vec<String> {
    let mut out: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn root_refers_to_com_with_glue() {
    let stack = start_name_servers().await;
    let response = ask(addr_of(&stack, "."), "www.example.com.", RecordType::A).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(
        !response.metadata.authoritative,
        "a referral is not authoritative"
    );
    assert!(response.answers.is_empty());
    assert_eq!(ns_targets(&response.authorities), ["a.gtld-servers.net."]);
    assert!(
        response
            .authorities
            .iter()
            .all(|r| r.name.to_string() == "com.")
    );
    assert_eq!(
        a_records(&response.additionals),
        [("a.gtld-servers.net.".into(), Ipv4Addr::new(127, 0, 0, 3))]
    );
    stack.stop().await;
}

#[tokio::test]
async fn com_refers_to_four_name_servers_for_two_days() {
    let stack = start_name_servers().await;
    let response = ask(addr_of(&stack, "com."), "www.example.com.", RecordType::A).await;
    assert!(!response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert_eq!(
        ns_targets(&response.authorities),
        [
            "ns-1.awsdns-01.com.",
            "ns-2.awsdns-02.com.",
            "ns-3.awsdns-03.com.",
            "ns-4.awsdns-04.com."
        ]
    );
    assert!(response.authorities.iter().all(|r| r.ttl == 172800));
    // The glue is what com.'s zone file says, for every server named.
    let com = stack.topology.zone("com.").unwrap();
    let mut expected: Vec<(String, Ipv4Addr)> = ns_targets(&response.authorities)
        .iter()
        .flat_map(|target| {
            let owner = hickory_proto::rr::LowerName::new(&name(target));
            com.rrset(&owner, RecordType::A)
                .map(|r| a_records(&r.records))
                .unwrap_or_default()
        })
        .collect();
    expected.sort();
    assert_eq!(a_records(&response.additionals), expected);
    stack.stop().await;
}

#[tokio::test]
async fn ns_question_at_the_parent_is_a_referral_with_every_glue_address() {
    let stack = start_name_servers().await;
    let response = ask(addr_of(&stack, "com."), "example.com.", RecordType::NS).await;
    assert!(!response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert_eq!(response.authorities.len(), 4);
    assert_eq!(a_records(&response.additionals).len(), 4);
    stack.stop().await;
}

#[tokio::test]
async fn hosted_zone_answers_with_authority() {
    let stack = start_name_servers().await;
    for host in stack.topology.find_servers("example.com.").unwrap() {
        let server = std::net::SocketAddr::new(host.addrs[0], stack.dns_port);
        let response = ask(server, "www.example.com.", RecordType::A).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(
            response.metadata.authoritative,
            "{} must answer with AA",
            host.name
        );
        assert!(!response.metadata.recursion_available);
        assert_eq!(
            a_records(&response.answers),
            [("www.example.com.".into(), Ipv4Addr::new(127, 0, 0, 44))]
        );
        assert_eq!(response.answers[0].ttl, 300);
    }
    stack.stop().await;
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let stack = start_name_servers().await;
    let server = addr_of(&stack, "example.com.");

    let nx = ask(server, "nope.example.com.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.metadata.authoritative);
    assert!(nx.answers.is_empty());
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    // min(SOA TTL 900, MINIMUM 86400), RFC 2308 §3.
    assert_eq!(nx.authorities[0].ttl, 900);

    let nodata = ask(server, "www.example.com.", RecordType::TXT).await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.metadata.authoritative);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    stack.stop().await;
}

#[tokio::test]
async fn cname_is_followed_inside_the_zone() {
    let stack = start_name_servers().await;
    let response = ask(
        addr_of(&stack, "example.com."),
        "blog.example.com.",
        RecordType::A,
    )
    .await;
    assert!(response.metadata.authoritative);
    assert_eq!(response.answers.len(), 2);
    assert_eq!(response.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(
        a_records(&response.answers),
        [("www.example.com.".into(), Ipv4Addr::new(127, 0, 0, 44))]
    );
    stack.stop().await;
}

#[tokio::test]
async fn the_same_over_tcp() {
    let stack = start_name_servers().await;
    let root = ask_with(
        addr_of(&stack, "."),
        "www.example.com.",
        RecordType::A,
        Transport::Tcp,
        false,
    )
    .await;
    assert!(!root.metadata.authoritative);
    assert_eq!(a_records(&root.additionals).len(), 1);
    let auth = ask_with(
        addr_of(&stack, "example.com."),
        "www.example.com.",
        RecordType::A,
        Transport::Tcp,
        true,
    )
    .await;
    assert!(auth.metadata.authoritative);
    assert_eq!(a_records(&auth.answers).len(), 1);
    let nx = ask_with(
        addr_of(&stack, "example.com."),
        "nope.example.com.",
        RecordType::A,
        Transport::Tcp,
        false,
    )
    .await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    stack.stop().await;
}

#[tokio::test]
async fn large_answers_are_truncated_over_udp_and_whole_over_tcp() {
    let stack = start_name_servers().await;
    let server = addr_of(&stack, "example.com.");
    let udp = ask_with(
        server,
        "big.example.com.",
        RecordType::TXT,
        Transport::Udp,
        false,
    )
    .await;
    assert!(udp.metadata.truncation, "a 512-byte client gets TC=1");
    let tcp = ask_with(
        server,
        "big.example.com.",
        RecordType::TXT,
        Transport::Tcp,
        false,
    )
    .await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 12);
    let edns = ask_with(
        server,
        "big.example.com.",
        RecordType::TXT,
        Transport::Udp,
        true,
    )
    .await;
    assert!(!edns.metadata.truncation, "fits in an EDNS buffer of 1232");
    assert_eq!(edns.answers.len(), 12);
    assert!(edns.edns.is_some(), "EDNS is answered with EDNS");
    stack.stop().await;
}

#[tokio::test]
async fn names_outside_every_served_zone_are_refused() {
    let stack = start_name_servers().await;
    let response = ask(
        addr_of(&stack, "example.com."),
        "www.example.org.",
        RecordType::A,
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    assert!(!response.metadata.authoritative);
    stack.stop().await;
}

#[tokio::test]
async fn unknown_opcodes_get_notimp() {
    let stack = start_name_servers().await;
    let mut query = make_query(&name("example.com."), RecordType::SOA, false, false);
    query.metadata.op_code = OpCode::Status;
    let response = exchange(
        addr_of(&stack, "example.com."),
        &query,
        Transport::Udp,
        Duration::from_secs(5),
    )
    .await
    .unwrap()
    .response;
    assert_eq!(response.metadata.response_code, ResponseCode::NotImp);
    stack.stop().await;
}

#[tokio::test]
async fn two_questions_in_one_message_get_formerr() {
    let stack = start_name_servers().await;
    let mut query = make_query(&name("www.example.com."), RecordType::A, false, false);
    query.add_query(hickory_proto::op::Query::query(
        name("example.com."),
        RecordType::A,
    ));
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&query.to_vec().unwrap(), addr_of(&stack, "example.com."))
        .await
        .unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let response = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
    stack.stop().await;
}

#[tokio::test]
async fn garbage_does_not_stop_the_server() {
    let stack = start_name_servers().await;
    let server = addr_of(&stack, "example.com.");
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Too short for a header; a header claiming records that are not there;
    // a compression pointer that points at itself.
    let garbage: [&[u8]; 4] = [
        b"\x00",
        b"\x12\x34\x01\x00\x00\x01\x00\x05\x00\x00\x00\x00",
        b"\x12\x35\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
        &[0xff; 300],
    ];
    for packet in garbage {
        socket.send_to(packet, server).await.unwrap();
    }
    // Any reply to the garbage must be a FORMERR, never a crash.
    let mut buf = [0u8; 1500];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await
    {
        let reply = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    }
    let response = ask(server, "www.example.com.", RecordType::A).await;
    assert!(response.metadata.authoritative);
    assert_eq!(response.answers.len(), 1);
    // TCP too: a connection that sends a bad frame and closes.
    let mut tcp = tokio::net::TcpStream::connect(server).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"\x00\x03abc")
        .await
        .unwrap();
    drop(tcp);
    let response = ask_with(
        server,
        "www.example.com.",
        RecordType::A,
        Transport::Tcp,
        false,
    )
    .await;
    assert_eq!(response.answers.len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn busy_address_is_named_in_the_error() {
    let stack = start_name_servers().await;
    let busy = addr_of(&stack, ".");
    let error = dnstrail::listen::bind_dns(busy)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&busy.to_string()), "{error}");
    assert!(error.contains("in use"), "{error}");
    stack.stop().await;
}

#[tokio::test]
async fn each_stack_gets_its_own_port() {
    let a = start_name_servers().await;
    let b = start_name_servers().await;
    assert_ne!(a.dns_port, b.dns_port);
    let answer = ask(
        addr_of(&b, "example.com."),
        "www.example.com.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer.answers.len(), 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn truncation_without_edns_leaves_no_partial_record() {
    let stack = start_name_servers().await;
    let query = make_query(&name("big.example.com."), RecordType::TXT, false, false);
    let raw = raw_udp_reply(addr_of(&stack, "example.com."), &query).await;
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let reply = assert_whole(&raw);
    assert!(reply.metadata.truncation);
    assert!(reply.metadata.authoritative);
    stack.stop().await;
}

#[tokio::test]
async fn zone_transfers_are_refused() {
    let stack = start_name_servers().await;
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        let response = ask_with(
            addr_of(&stack, "example.com."),
            "example.com.",
            rtype,
            Transport::Tcp,
            false,
        )
        .await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::Refused,
            "{rtype}"
        );
        assert!(response.answers.is_empty());
    }
    stack.stop().await;
}

/// A normal client asking `addr` `count` times over TCP, each answer
/// required within 2 s; the times it took, shortest first.
async fn normal_tcp_client(addr: std::net::SocketAddr, count: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..count {
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(2),
            ask_with(
                addr,
                "www.example.com.",
                RecordType::A,
                Transport::Tcp,
                false,
            ),
        )
        .await
        .expect("answered despite the hostile connections");
        assert!(response.metadata.authoritative);
        times.push(started.elapsed());
    }
    times.sort();
    times
}

/// example.com served over TCP alone (at `ALONE`), with these limits.
async fn serve_tcp_alone(
    limits: dnstrail::serve::TcpLimits,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    use dnstrail::nameserver::NameServer;
    use dnstrail::serve::{Pipeline, ServeOptions, tcp};
    use dnstrail::zone::Zone;

    let zone = Zone::load(zones_dir().join("example.com.zone")).unwrap();
    let listener = tokio::net::TcpListener::bind(ALONE).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let pipeline = std::sync::Arc::new(Pipeline::new(
        NameServer::new(vec![zone]),
        ServeOptions::default(),
    ));
    tokio::spawn(tcp::serve(pipeline, listener, limits, stop.clone()));
    (addr, stop)
}

#[tokio::test]
async fn tcp_connections_are_bounded_and_the_longest_idle_makes_room() {
    use tokio::io::AsyncReadExt;

    let (addr, stop) = serve_tcp_alone(dnstrail::serve::TcpLimits {
        max_connections: 2,
        idle: Duration::from_secs(30),
        ..Default::default()
    })
    .await;

    // Two clients that connect and say nothing take both places.
    let mut quiet = Vec::new();
    for _ in 0..2 {
        quiet.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // A third is let in at once: the longest idle is closed to make room.
    let response = tokio::time::timeout(
        Duration::from_secs(2),
        ask_with(
            addr,
            "www.example.com.",
            RecordType::A,
            Transport::Tcp,
            false,
        ),
    )
    .await
    .expect("answered at once, past the limit");
    assert!(response.metadata.authoritative);
    let mut oldest = quiet.remove(0);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), oldest.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "the longest idle connection was left open"
    );
    stop.cancel();
}

#[tokio::test]
async fn one_client_cannot_hold_every_tcp_connection() {
    let (addr, stop) = serve_tcp_alone(dnstrail::serve::TcpLimits {
        max_connections: 64,
        max_per_client: 4,
        idle: Duration::from_secs(30),
        ..Default::default()
    })
    .await;

    // A hostile client opens 200 connections from 127.0.0.77, some idle,
    // some stuck halfway through a message.
    let mut hostile = Vec::new();
    for i in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.77:0".parse().unwrap()).unwrap();
        let Ok(mut stream) = socket.connect(addr).await else {
            continue;
        };
        if i % 2 == 0 {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(&[0, 40, 1, 2]).await;
        }
        hostile.push(stream);
    }
    // A normal client from another address is answered, every time, fast.
    let times = normal_tcp_client(addr, 20).await;
    let slowest = *times.last().unwrap();
    assert!(slowest < Duration::from_millis(500), "slowest {slowest:?}");
    stop.cancel();
}

#[tokio::test]
async fn response_rate_limiting_drops_and_slips_past_the_rate() {
    use dnstrail::nameserver::NameServer;
    use dnstrail::zone::Zone;

    let zone = Zone::load(zones_dir().join("example.com.zone")).unwrap();
    let options = dnstrail::serve::ServeOptions {
        rate_limit: Some(dnstrail::serve::ratelimit::RateLimit::responses(5)),
        ..Default::default()
    };
    let (addr, stop) = serve_alone(NameServer::new(vec![zone]), options).await;

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for id in 0..20u16 {
        let mut query = make_query(&name("www.example.com."), RecordType::A, false, false);
        query.metadata.id = id;
        socket
            .send_to(&query.to_vec().unwrap(), addr)
            .await
            .unwrap();
    }
    let (mut full, mut slipped) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await
    {
        let reply = Message::from_vec(&buf[..n]).unwrap();
        if reply.metadata.truncation && reply.answers.is_empty() {
            slipped += 1;
        } else {
            assert_eq!(reply.answers.len(), 1);
            full += 1;
        }
    }
    assert_eq!(full, 5, "the rate's worth of answers");
    assert!(
        (6..=8).contains(&slipped),
        "every second limited answer slips: {slipped}"
    );
    // Over TCP, where sources cannot be forged, the client is answered.
    let tcp = ask_with(
        addr,
        "www.example.com.",
        RecordType::A,
        Transport::Tcp,
        false,
    )
    .await;
    assert_eq!(tcp.answers.len(), 1);
    stop.cancel();
}

#[tokio::test]
async fn allowed_clients_transfer_the_whole_zone_over_tcp_only() {
    use dnstrail::nameserver::NameServer;
    use dnstrail::zone::Zone;

    let zone = Zone::load(zones_dir().join("example.com.zone")).unwrap();
    let records = zone.records().count();
    let server =
        NameServer::new(vec![zone]).with_transfers_to(vec!["127.0.0.0/8".parse().unwrap()]);
    let (addr, stop) = serve_alone(server, Default::default()).await;

    let axfr = ask_with(
        addr,
        "example.com.",
        RecordType::AXFR,
        Transport::Tcp,
        false,
    )
    .await;
    assert_eq!(axfr.metadata.response_code, ResponseCode::NoError);
    assert!(axfr.metadata.authoritative);
    // SOA first and last, every record of the zone between.
    assert_eq!(axfr.answers.len(), records + 1);
    assert_eq!(axfr.answers.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(axfr.answers.last().unwrap().record_type(), RecordType::SOA);
    // Not over UDP, and not for a name inside the zone.
    let udp = ask_with(
        addr,
        "example.com.",
        RecordType::AXFR,
        Transport::Udp,
        false,
    )
    .await;
    assert_eq!(udp.metadata.response_code, ResponseCode::Refused);
    let inside = ask_with(
        addr,
        "www.example.com.",
        RecordType::AXFR,
        Transport::Tcp,
        false,
    )
    .await;
    assert_eq!(inside.metadata.response_code, ResponseCode::Refused);
    stop.cancel();
}

#[tokio::test]
async fn wildcards_answer_for_names_that_do_not_exist() {
    use dnstrail::nameserver::NameServer;
    use dnstrail::zone::Zone;

    let zone = Zone::parse(
        "$ORIGIN example.test.\n$TTL 60\n@ IN SOA ns h 1 2 3 4 5\n@ IN NS ns\nns IN A 127.0.0.9\n*.wild IN A 192.0.2.9\nreal.wild IN TXT \"here\"\n",
        "wild.zone",
    )
    .unwrap();
    let (addr, stop) = serve_alone(NameServer::new(vec![zone]), Default::default()).await;

    // Synthesised with the asked name as owner (RFC 4592), also two labels down.
    for qname in ["anything.wild.example.test.", "a.b.wild.example.test."] {
        let response = ask(addr, qname, RecordType::A).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{qname}"
        );
        assert_eq!(
            a_records(&response.answers),
            [(qname.to_string(), Ipv4Addr::new(192, 0, 2, 9))]
        );
    }
    // A name that exists is not covered by the wildcard: NODATA for A.
    let real = ask(addr, "real.wild.example.test.", RecordType::A).await;
    assert_eq!(real.metadata.response_code, ResponseCode::NoError);
    assert!(real.answers.is_empty());
    // Outside the wildcard's reach: NXDOMAIN.
    let nx = ask(addr, "elsewhere.example.test.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    stop.cancel();
}

/// Raise this process's open-file limit to what `needed` sockets take, as
/// far as the hard limit lets it.
fn allow_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= needed,
        "this test opens {needed} sockets; the hard limit on open files is {}",
        limit.rlim_max
    );
}

/// The attack of issue 13 in small: 2,000 hostile connections from 100
/// addresses, idle, trickling a byte now and then, or stuck halfway through
/// a message, against the default limits. A normal client is still
/// answered over TCP, every time.
#[tokio::test]
async fn two_thousand_hostile_connections_do_not_keep_a_normal_client_out() {
    use tokio::io::AsyncWriteExt;

    allow_open_files(6000);
    let (addr, stop) = serve_tcp_alone(dnstrail::serve::TcpLimits::default()).await;

    let mut hostile = Vec::new();
    for i in 0..2000u32 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        let source = std::net::Ipv4Addr::new(127, 0, 13, (i % 100) as u8 + 1);
        socket.bind((source, 0).into()).unwrap();
        let Ok(mut stream) = socket.connect(addr).await else {
            continue;
        };
        match i % 3 {
            0 => {}                                               // idle
            1 => drop(stream.write_all(&[0]).await),              // trickling
            _ => drop(stream.write_all(&[0, 40, 1, 2, 3]).await), // stuck mid-message
        }
        hostile.push(stream);
    }
    // A trickle of one more byte on a third of them, while the client asks.
    let trickle = tokio::spawn(async move {
        for (i, stream) in hostile.iter_mut().enumerate() {
            if i % 3 == 1 {
                let _ = stream.write_all(&[30]).await;
            }
        }
        hostile
    });

    let times = normal_tcp_client(addr, 100).await;
    let p99 = times[98];
    eprintln!(
        "TCP under 2,000 hostile connections: p50 {:?}, p99 {p99:?}",
        times[50]
    );
    // The target is 100 ms; a loaded test machine gets ten times that.
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    drop(trickle.await);
    stop.cancel();
}

/// A zone of `n` TXT records of 100 bytes each, far past one 64 KiB message.
fn big_zone(serial: u32, n: usize) -> dnstrail::zone::Zone {
    let mut text = format!(
        "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns hostmaster {serial} 3600 900 604800 300\n@ IN NS ns\nns IN A 127.0.0.4\n"
    );
    for i in 0..n {
        text.push_str(&format!("r{i} IN TXT \"{}\"\n", "x".repeat(100)));
    }
    dnstrail::zone::Zone::parse(&text, "big.test.zone").unwrap()
}

/// A transfer too big for one message goes as several, each whole, the
/// SOA first and last (RFC 5936 §2.2); dig reads it as one transfer, and a
/// secondary fetching it gets every record.
#[tokio::test]
async fn a_zone_too_big_for_one_message_is_transferred_in_several() {
    use dnstrail::nameserver::{LiveZone, NameServer, replication};
    use tokio::io::AsyncWriteExt;

    let zone = big_zone(2, 3000);
    let records = zone.records().count();
    let server =
        NameServer::new(vec![zone]).with_transfers_to(vec!["127.0.0.0/8".parse().unwrap()]);
    let (addr, stop) = serve_alone(server, Default::default()).await;

    // Read the messages as they come, on one connection.
    let query = dnstrail::exchange::make_query(&name("big.test."), RecordType::AXFR, false, false);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&dnstrail::dns::tcp_frame(&query.to_vec().unwrap()))
        .await
        .unwrap();
    let mut messages = 0;
    let mut got = Vec::new();
    while got.len() < 2
        || got
            .last()
            .map(|r: &hickory_proto::rr::Record| r.record_type())
            != Some(RecordType::SOA)
    {
        let raw = tokio::time::timeout(
            Duration::from_secs(5),
            dnstrail::dns::read_tcp_message(&mut stream),
        )
        .await
        .expect("the next message of the transfer")
        .unwrap();
        let message = assert_whole(&raw);
        assert_eq!(message.metadata.id, query.metadata.id);
        assert!(!message.metadata.truncation);
        assert!(message.metadata.authoritative);
        messages += 1;
        got.extend(message.answers);
    }
    assert!(messages > 4, "{messages} messages");
    assert_eq!(got.len(), records + 1);
    assert_eq!(got[0].record_type(), RecordType::SOA);

    if let Some(dig) = tool("dig") {
        let output = tokio::process::Command::new(dig)
            .args([
                "+noall",
                "+stats",
                "-p",
                &addr.port().to_string(),
                &format!("@{}", addr.ip()),
                "big.test.",
                "AXFR",
            ])
            .output()
            .await
            .unwrap();
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains(&format!(
                "XFR size: {} records (messages {messages},",
                records + 1
            )),
            "{said}"
        );
    }

    // A secondary at serial 1 fetches the whole zone, every message.
    let secondary = LiveZone::new(big_zone(1, 1));
    let fetched = replication::refresh(&secondary, "127.0.0.1".parse().unwrap(), &[addr])
        .await
        .unwrap();
    assert!(fetched);
    assert_eq!(secondary.snapshot().serial(), 2);
    assert_eq!(secondary.snapshot().records().count(), records);
    stop.cancel();
}
