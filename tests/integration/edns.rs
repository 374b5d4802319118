//! The name servers follow EDNS and TSIG to the letter, and say who
//! answered: the DO bit copied, our own payload size advertised, NSID and
//! `CH TXT id.server.`, signed queries checked and answers signed.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::nameserver::NameServer;
use dnstrail::serve::ServeOptions;
use dnstrail::serve::tsig::parse_key;
use dnstrail::stack::{Stack, StackConfig};
use dnstrail::zone::Zone;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, RData, RecordType};
use tokio::net::UdpSocket;

use crate::support::*;

const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";

/// The hosted zone alone, served with `options`.
async fn hosted_zone(options: ServeOptions) -> (SocketAddr, tokio_util::sync::CancellationToken) {
    let zone = Zone::load(zones_dir().join("example.com.zone")).unwrap();
    serve_alone(NameServer::new(vec![zone]), options).await
}

/// Send raw bytes over UDP and return the raw reply.
async fn raw_exchange(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(bytes).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("a reply")
        .unwrap();
    buf.truncate(n);
    buf
}

fn query_with_edns(qname: &str, payload: u16, dnssec_ok: bool) -> Message {
    let mut message = make_query(&name(qname), RecordType::A, false, false);
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_dnssec_ok(dnssec_ok);
    message.set_edns(edns);
    message
}

#[tokio::test]
async fn the_do_bit_is_copied_and_our_payload_size_advertised() {
    let (server, stop) = hosted_zone(ServeOptions::default()).await;
    for (payload, dnssec_ok) in [(512, true), (1000, false), (4096, true)] {
        let query = query_with_edns("www.example.com.", payload, dnssec_ok);
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = exchange(server, &query, transport, Duration::from_secs(5))
                .await
                .unwrap()
                .response;
            let edns = reply.edns.as_ref().expect("EDNS answered with EDNS");
            assert_eq!(edns.max_payload(), 1232, "{payload} over {transport}");
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok, "RFC 3225 §3");
        }
    }
    stop.cancel();

    // A flag changes what is advertised.
    let (server, stop) = hosted_zone(ServeOptions {
        edns_payload: 4000,
        ..ServeOptions::default()
    })
    .await;
    let reply = exchange(
        server,
        &query_with_edns("www.example.com.", 512, false),
        Transport::Udp,
        Duration::from_secs(5),
    )
    .await
    .unwrap()
    .response;
    assert_eq!(reply.edns.unwrap().max_payload(), 4000);
    stop.cancel();
}

#[tokio::test]
async fn an_unknown_edns_version_gets_badvers() {
    let (server, stop) = hosted_zone(ServeOptions::default()).await;
    let mut query = query_with_edns("www.example.com.", 1232, false);
    query.edns.as_mut().unwrap().set_version(1);
    let reply = Message::from_vec(&raw_exchange(server, &query.to_vec().unwrap()).await).unwrap();
    // BADVERS is 16 (RFC 6891 §6.1.3), which hickory decodes as BADSIG,
    // the same number's other name.
    assert_eq!(u16::from(reply.metadata.response_code), 16);
    assert_eq!(reply.edns.unwrap().version(), 0);
    stop.cancel();
}

#[tokio::test]
async fn the_soa_of_a_negative_answer_is_compressed() {
    let (server, stop) = hosted_zone(ServeOptions::default()).await;
    let query = make_query(&name("nope.example.com."), RecordType::A, false, false);
    let bytes = query.to_vec().unwrap();
    let raw = raw_exchange(server, &bytes).await;
    // Right after the question, the authority SOA's owner (example.com.)
    // is a pointer into the question's name: two bytes, 0xC0…
    let owner = &raw[bytes.len()..bytes.len() + 2];
    assert_eq!(owner[0] & 0xC0, 0xC0, "{raw:02x?}");
    assert_whole(&raw);
    stop.cancel();
}

/// Every server of a stack says its own name, on every address it has.
#[tokio::test]
async fn nsid_and_id_server_say_which_server_answered() {
    let mut config = StackConfig::name_servers(demo_topology(), 0);
    config.nsid = true;
    let stack = Stack::start(config).await.unwrap();
    for host in stack.servers() {
        let expected = host.server.name.trim_end_matches('.');
        for ip in &host.server.addrs {
            let addr = SocketAddr::new(*ip, stack.dns_port);
            let mut query = query_with_edns("www.example.com.", 1232, false);
            query
                .edns
                .as_mut()
                .unwrap()
                .options_mut()
                .insert(EdnsOption::Unknown(u16::from(EdnsCode::NSID), Vec::new()));
            let reply = exchange(addr, &query, Transport::Udp, Duration::from_secs(5))
                .await
                .unwrap()
                .response;
            let nsid = reply
                .edns
                .as_ref()
                .and_then(|e| e.option(EdnsCode::NSID))
                .map(|o| Vec::<u8>::try_from(o).unwrap())
                .expect("an NSID option");
            assert_eq!(String::from_utf8(nsid).unwrap(), expected);

            for chaos in ["id.server.", "hostname.bind."] {
                let reply = ask_chaos(addr, chaos).await;
                assert_eq!(txt_of(&reply), [expected.to_string()], "{chaos}");
                assert_eq!(reply.answers[0].dns_class, DNSClass::CH);
            }
        }
    }
    // Without NSID asked for, none is sent.
    let plain = ask(addr_of(&stack, "."), "www.example.com.", RecordType::A).await;
    assert!(plain.edns.unwrap().option(EdnsCode::NSID).is_none());
    stack.stop().await;
}

async fn ask_chaos(server: SocketAddr, qname: &str) -> Message {
    let mut query = Message::new(7, MessageType::Query, OpCode::Query);
    let mut question = Query::query(name(qname), RecordType::TXT);
    question.set_query_class(DNSClass::CH);
    query.add_query(question);
    exchange(server, &query, Transport::Udp, Duration::from_secs(5))
        .await
        .unwrap()
        .response
}

fn txt_of(reply: &Message) -> Vec<String> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_version_is_told_unless_hidden() {
    let (server, stop) = hosted_zone(ServeOptions::default()).await;
    for qname in ["version.bind.", "version.server."] {
        let reply = ask_chaos(server, qname).await;
        assert_eq!(
            txt_of(&reply),
            [format!("dnstrail {}", env!("CARGO_PKG_VERSION"))]
        );
    }
    // Another CHAOS name is refused, as is CHAOS anything without a name.
    assert_eq!(
        ask_chaos(server, "authors.bind.")
            .await
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    stop.cancel();
    let (server, stop) = hosted_zone(ServeOptions {
        hide_version: true,
        ..ServeOptions::default()
    })
    .await;
    assert_eq!(
        ask_chaos(server, "version.bind.")
            .await
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    stop.cancel();
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A query signed with `key` at `time`; the verifier checks the answer.
fn signed_query(
    key: &str,
    time: u64,
    qtype: RecordType,
) -> (Vec<u8>, hickory_proto::rr::TSigVerifier) {
    let signer = parse_key(key).unwrap().0;
    let mut query = make_query(&name("example.com."), qtype, false, false);
    let (signature, verifier) = signer.sign_message(&query, time).unwrap();
    query.set_signature(signature);
    (query.to_vec().unwrap(), verifier.unwrap())
}

fn tsig_error(reply: &Message) -> Option<TsigError> {
    reply.signature.as_ref().and_then(|s| s.data.error)
}

#[tokio::test]
async fn tsig_signed_queries_are_checked_and_answers_signed() {
    let key = format!("lab-key:hmac-sha256:{SECRET}");
    let (server, stop) = hosted_zone(ServeOptions {
        tsig: dnstrail::serve::TsigKeys::new(vec![parse_key(&key).unwrap()]),
        ..ServeOptions::default()
    })
    .await;

    // Good: answered, and the answer's signature checks out.
    let (query, mut verifier) = signed_query(&key, unix_now(), RecordType::SOA);
    let raw = raw_exchange(server, &query).await;
    verifier
        .verify(&raw)
        .expect("the answer is signed with the key");
    let reply = Message::from_vec(&raw).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(tsig_error(&reply).is_none());

    // An unknown key: NOTAUTH, BADKEY, unsigned.
    let (query, _) = signed_query(
        &format!("other-key:hmac-sha256:{SECRET}"),
        unix_now(),
        RecordType::SOA,
    );
    let reply = Message::from_vec(&raw_exchange(server, &query).await).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(tsig_error(&reply), Some(TsigError::BadKey));
    assert!(reply.signature.unwrap().data.mac.is_empty());

    // The right name, the wrong secret: BADSIG, unsigned.
    let (query, _) = signed_query(
        "lab-key:hmac-sha256:d3JvbmdzZWNyZXR3cm9uZ3NlY3JldA==",
        unix_now(),
        RecordType::SOA,
    );
    let reply = Message::from_vec(&raw_exchange(server, &query).await).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(tsig_error(&reply), Some(TsigError::BadSig));

    // Signed twenty minutes ago: BADTIME, signed, with our time.
    let (query, _) = signed_query(&key, unix_now() - 1200, RecordType::SOA);
    let reply = Message::from_vec(&raw_exchange(server, &query).await).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    let signature = reply.signature.unwrap();
    assert_eq!(signature.data.error, Some(TsigError::BadTime));
    assert!(!signature.data.mac.is_empty());
    assert_eq!(signature.data.other.len(), 6);
    assert!(reply.answers.is_empty());

    // A time no clock could sign at does not upset the server.
    let (query, _) = signed_query(&key, 3, RecordType::SOA);
    let reply = Message::from_vec(&raw_exchange(server, &query).await).unwrap();
    assert_eq!(tsig_error(&reply), Some(TsigError::BadTime));
    stop.cancel();
}

#[tokio::test]
async fn a_server_without_keys_answers_signed_queries_with_badkey() {
    let (server, stop) = hosted_zone(ServeOptions::default()).await;
    let (query, _) = signed_query(&format!("lab-key:{SECRET}"), unix_now(), RecordType::A);
    let reply = Message::from_vec(&raw_exchange(server, &query).await).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(tsig_error(&reply), Some(TsigError::BadKey));
    assert!(reply.answers.is_empty());
    stop.cancel();
}

/// A key lets a client transfer the zone without being in --allow-axfr.
#[tokio::test]
async fn a_signed_transfer_is_allowed_and_signed() {
    let key = format!("xfr-key:{SECRET}");
    let (server, stop) = hosted_zone(ServeOptions {
        tsig: dnstrail::serve::TsigKeys::new(vec![parse_key(&key).unwrap()]),
        ..ServeOptions::default()
    })
    .await;
    let (query, mut verifier) = signed_query(&key, unix_now(), RecordType::AXFR);
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(&dnstrail::dns::tcp_frame(&query))
        .await
        .unwrap();
    let raw = dnstrail::dns::read_tcp_message(&mut stream).await.unwrap();
    verifier.verify(&raw).expect("the transfer is signed");
    let reply = Message::from_vec(&raw).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.len() > 2);
    assert_eq!(reply.answers[0].record_type(), RecordType::SOA);
    stop.cancel();
}

/// dig itself: +nsid, CH TXT id.server, a signed query (-y), where dig is
/// installed.
#[tokio::test]
async fn dig_sees_the_identity_and_verifies_the_signature() {
    let Some(dig) = tool("dig") else {
        return;
    };
    let key = format!("lab-key:hmac-sha256:{SECRET}");
    let (server, stop) = hosted_zone(ServeOptions {
        identity: Some("ns-test.example.".into()),
        nsid: true,
        tsig: dnstrail::serve::TsigKeys::new(vec![parse_key(&key).unwrap()]),
        ..ServeOptions::default()
    })
    .await;
    let run = |args: Vec<String>| {
        let dig = dig.clone();
        async move {
            let output = tokio::process::Command::new(dig)
                .args(args)
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    let at = [
        format!("@{}", server.ip()),
        "-p".into(),
        server.port().to_string(),
    ];
    let nsid = run([
        &at[..],
        &["+nsid".into(), "+dnssec".into(), "www.example.com".into()],
    ]
    .concat())
    .await;
    assert!(
        nsid.contains("NSID: ") && nsid.contains("(\"ns-test.example.\")"),
        "{nsid}"
    );
    assert!(nsid.contains("flags: do; udp: 1232"), "{nsid}");
    let chaos = run([
        &at[..],
        &[
            "CH".into(),
            "TXT".into(),
            "id.server".into(),
            "+short".into(),
        ],
    ]
    .concat())
    .await;
    assert_eq!(chaos.trim(), "\"ns-test.example.\"");
    let signed = run([
        &at[..],
        &[
            "-y".into(),
            format!("hmac-sha256:lab-key:{SECRET}"),
            "example.com".into(),
            "SOA".into(),
        ],
    ]
    .concat())
    .await;
    assert!(signed.contains("status: NOERROR"), "{signed}");
    assert!(signed.contains("TSIG PSEUDOSECTION"), "{signed}");
    assert!(!signed.contains("Couldn't verify"), "{signed}");
    stop.cancel();
}

fn cookie_query(cookie: Vec<u8>) -> Message {
    let mut query = query_with_edns("www.example.com.", 1232, false);
    query
        .edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::Unknown(10, cookie));
    query
}

fn cookie_of(reply: &Message) -> Option<Vec<u8>> {
    reply
        .edns
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Cookie))
        .map(|o| Vec::<u8>::try_from(o).unwrap())
}

/// DNS cookies (RFC 7873/9018): a client cookie gets a server cookie back;
/// a query bringing it back is answered even past the rate limit; a
/// malformed option is FORMERR.
#[tokio::test]
async fn cookies_are_answered_and_a_good_one_passes_the_rate_limit() {
    // A COOKIE option of the wrong length is FORMERR (RFC 7873 §5.2.2).
    let (plain, stop_plain) = hosted_zone(ServeOptions::default()).await;
    let malformed = cookie_query(vec![1; 5]).to_vec().unwrap();
    let reply = Message::from_vec(&raw_exchange(plain, &malformed).await).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    stop_plain.cancel();

    let (server, stop) = hosted_zone(ServeOptions {
        rate_limit: Some(dnstrail::serve::ratelimit::RateLimit::responses(1)),
        ..ServeOptions::default()
    })
    .await;
    let reply =
        Message::from_vec(&raw_exchange(server, &cookie_query(vec![9; 8]).to_vec().unwrap()).await)
            .unwrap();
    let cookie = cookie_of(&reply).expect("a COOKIE option back");
    assert_eq!(cookie.len(), 24);
    assert_eq!(cookie[..8], [9; 8]);
    assert_eq!(cookie[8], 1, "RFC 9018 version 1");

    // Far past one answer a second: with the server cookie, every query is
    // answered; without, most are dropped.
    let with = cookie_query(cookie.clone()).to_vec().unwrap();
    for _ in 0..10 {
        let reply = Message::from_vec(&raw_exchange(server, &with).await).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(!reply.metadata.truncation);
    }
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let without = make_query(&name("www.example.com."), RecordType::A, false, false)
        .to_vec()
        .unwrap();
    for _ in 0..10 {
        socket.send_to(&without, server).await.unwrap();
    }
    let mut answered = 0;
    let mut buf = [0u8; 512];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await
    {
        if !Message::from_vec(&buf[..n]).unwrap().metadata.truncation {
            answered += 1;
        }
    }
    assert!(answered < 5, "{answered} of 10 answered past the rate");

    stop.cancel();
}

fn query_named(qname: &str, cookie: Vec<u8>) -> Vec<u8> {
    let mut query = cookie_query(cookie);
    query.queries[0] = Query::query(name(qname), RecordType::A);
    query.to_vec().unwrap()
}

/// A name server answers a question asked before from the bytes it made
/// the first time (see `serve::replay`), patched for each asker: the
/// question exactly as asked, letters' case and all (0x20 resolvers check
/// it), the asker's client cookie, and a server cookie that is good for
/// the asker (it carries the asker past the rate limit).
#[tokio::test]
async fn a_remembered_answer_is_patched_for_each_askers_case_and_cookie() {
    let (server, stop) = hosted_zone(ServeOptions {
        rate_limit: Some(dnstrail::serve::ratelimit::RateLimit::responses(50)),
        ..ServeOptions::default()
    })
    .await;
    // Every serving task sees the question once and remembers its answer.
    let first = Message::from_vec(
        &raw_exchange(server, &query_named("www.example.com.", vec![1; 8])).await,
    )
    .unwrap();
    for _ in 0..4 {
        raw_exchange(server, &query_named("www.example.com.", vec![1; 8])).await;
    }

    for (i, spelling) in ["WWW.EXAMPLE.COM.", "wWw.ExAmPlE.cOm.", "www.example.COM."]
        .into_iter()
        .enumerate()
    {
        // Each asker from a network of its own: the rate limit counts per
        // network.
        let socket = UdpSocket::bind(format!("127.0.{}.1:0", 90 + i))
            .await
            .unwrap();
        let client = vec![10 + i as u8; 8];
        let asked = query_named(spelling, client.clone());
        socket.send_to(&asked, server).await.unwrap();
        let mut buf = [0u8; 1232];
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let raw = &buf[..n];
        let reply = assert_whole(raw);
        let question = 12..12 + "www.example.com.".len() + 1;
        assert_eq!(
            raw[question.clone()],
            asked[question],
            "{spelling}: the question as asked"
        );
        assert_eq!(reply.answers, first.answers, "{spelling}");
        assert!(reply.metadata.authoritative);
        let cookie = cookie_of(&reply).expect("a COOKIE option back");
        assert_eq!(
            cookie[..8],
            client[..],
            "{spelling}: the asker's client cookie"
        );
        assert_eq!(cookie[8], 1, "RFC 9018 version 1");

        // Brought back, the server cookie is ours for this asker: 60
        // questions at once, past the 50 a second without one, are all
        // answered in full.
        let with = query_named(spelling, cookie);
        for _ in 0..60 {
            socket.send_to(&with, server).await.unwrap();
        }
        for _ in 0..60 {
            let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
                .await
                .expect("every question answered")
                .unwrap();
            let reply = Message::from_vec(&buf[..n]).unwrap();
            assert!(
                !reply.metadata.truncation,
                "{spelling}: slipped, not exempt"
            );
        }
    }
    stop.cancel();
}
