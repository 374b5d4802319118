//! The control endpoint of a running stack: break and heal name servers,
//! move the clock within bounds, and refuse what a page of another site
//! would ask through the user's browser.

use std::net::SocketAddr;

use dnstrail::trace::TraceEvent;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::*;

/// A chain with its control endpoint on a port of its own.
async fn chain_with_control() -> (Chain, SocketAddr) {
    with_control(start_chain().await).await
}

/// A chain serving a copy of the demo zones (changes write a journal
/// beside them), with its control endpoint.
async fn changeable_chain_with_control() -> (Chain, SocketAddr) {
    let dir = copy_of_demo_zones("control-zones");
    let topology = dnstrail::topology::Topology::load(&dir).unwrap();
    with_control(start_chain_on(topology, dnstrail::resolver::Config::default()).await).await
}

async fn with_control(chain: Chain) -> (Chain, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control = listener.local_addr().unwrap();
    tokio::spawn(dnstrail::control::run(
        chain.stack.control(),
        listener,
        tokio_util::sync::CancellationToken::new(),
    ));
    (chain, control)
}

#[tokio::test]
async fn a_server_is_broken_and_healed_while_the_stack_runs() {
    let (chain, control) = chain_with_control().await;
    let mut watch = chain.stack.trace.subscribe();
    let ns2 = chain.stack.server_addr("ns-2").unwrap();
    assert_eq!(
        ask(ns2, "www.example.com.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NoError
    );

    let (status, body) =
        http_request(control, "POST", "/servers/ns-2/fault?kind=servfail", &[]).await;
    assert!(status.contains("200"), "{status} {body}");
    assert_eq!(
        ask(ns2, "www.example.com.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    // The others are untouched.
    let ns1 = chain.stack.server_addr("ns-1").unwrap();
    assert_eq!(
        ask(ns1, "www.example.com.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NoError
    );
    let (_, servers) = http_request(control, "GET", "/servers", &[]).await;
    let servers: serde_json::Value = serde_json::from_str(&servers).unwrap();
    let listed = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ns-2.awsdns-02.com.")
        .unwrap();
    assert_eq!(listed["fault"], "servfail");

    let (status, _) = http_request(control, "POST", "/servers/ns-2/heal", &[]).await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        ask(ns2, "www.example.com.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NoError
    );
    // Both changes are told in the trace.
    let told: Vec<Option<String>> = std::iter::from_fn(|| watch.try_recv())
        .filter_map(|e| match &e.event {
            TraceEvent::FaultSet { fault, .. } => Some(fault.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(told, [Some("servfail".to_string()), None]);

    let (status, _) = http_request(control, "POST", "/servers/ns-9/fault?kind=drop", &[]).await;
    assert!(status.contains("404"), "{status}");
    let (status, _) = http_request(control, "POST", "/servers/ns-2/fault?kind=explode", &[]).await;
    assert!(status.contains("400"), "{status}");
    chain.stop().await;
}

#[tokio::test]
async fn the_clock_moves_only_forward_and_only_so_far() {
    let (chain, control) = chain_with_control().await;
    chain.ask("www.example.com.", RecordType::A).await;
    for bad in ["18446744073709551615", "0", "-5", "soon", "315360001"] {
        let (status, _) =
            http_request(control, "POST", &format!("/advance?seconds={bad}"), &[]).await;
        assert!(status.contains("400"), "{bad}: {status}");
    }
    assert_eq!(chain.resolver.clock().skew().as_secs(), 0);
    // The answer's TTL is still counting down from 300, not wrapped.
    let (cached, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert!(cached.answers[0].ttl <= 300);
    let (status, _) = http_request(control, "POST", "/advance?seconds=100", &[]).await;
    assert!(status.contains("200"));
    let (cached, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert!(cached.answers[0].ttl <= 200, "{}", cached.answers[0].ttl);
    chain.stop().await;
}

/// A page on another site cannot flush the cache or break servers through
/// the user's browser: cross-site requests are refused; GETs change nothing.
#[tokio::test]
async fn state_changes_from_another_site_are_refused() {
    let (chain, control) = chain_with_control().await;
    chain.ask("www.example.com.", RecordType::A).await;
    for headers in [
        &[("Origin", "http://evil.example")][..],
        &[("Origin", "null")][..],
        &[("Referer", "http://evil.example/page")][..],
        &[("Sec-Fetch-Site", "cross-site")][..],
    ] {
        for path in [
            "/flush",
            "/advance?seconds=10",
            "/servers/ns-2/fault?kind=drop",
        ] {
            let (status, _) = http_request(control, "POST", path, headers).await;
            assert!(status.contains("403"), "{path} {headers:?}: {status}");
        }
    }
    let (status, _) = http_request(control, "GET", "/flush", &[]).await;
    assert!(status.contains("405"), "{status}");
    assert!(!chain.resolver.cache().is_empty(), "nothing was flushed");
    assert!(chain.stack.server("ns-2").unwrap().fault.get().is_none());
    // The endpoint's own page may.
    let own = format!("http://{control}");
    let (status, _) = http_request(control, "POST", "/flush", &[("Origin", &own)]).await;
    assert!(status.contains("200"), "{status}");
    assert!(chain.resolver.cache().is_empty());
    chain.stop().await;
}

#[tokio::test]
async fn with_a_token_state_changes_need_it_and_views_do_not() {
    let chain = start_chain().await;
    let mut control = chain.stack.control();
    control.token = Some("s3cret-token".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dnstrail::control::run(
        control,
        listener,
        tokio_util::sync::CancellationToken::new(),
    ));
    chain.ask("www.example.com.", RecordType::A).await;
    for wrong in [&[][..], &[("Authorization", "Bearer wrong-token!")][..]] {
        let (status, _) = http_request(addr, "POST", "/flush", wrong).await;
        assert!(status.contains("401"), "{wrong:?}: {status}");
    }
    assert!(!chain.resolver.cache().is_empty());
    let (status, _) = http_request(addr, "GET", "/cache", &[]).await;
    assert!(status.contains("200"), "{status}");
    let (status, _) = http_request(
        addr,
        "POST",
        "/flush",
        &[("Authorization", "Bearer s3cret-token")],
    )
    .await;
    assert!(status.contains("200"), "{status}");
    assert!(chain.resolver.cache().is_empty());
    chain.stop().await;
}

/// Read Server-Sent Events until `count` trace events have come: their ids.
async fn read_event_ids(response: &mut reqwest::Response, count: usize) -> Vec<u64> {
    let mut text = String::new();
    let mut ids = Vec::new();
    while ids.len() < count {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk())
            .await
            .expect("events keep coming")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if block.contains("event: trace") {
                let id = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .expect("every event has an id");
                ids.push(id.parse().unwrap());
            }
        }
    }
    ids
}

/// The live stream: every event as it happens; a watcher that reconnects
/// with Last-Event-ID resumes without a gap or a duplicate.
#[tokio::test]
async fn the_event_stream_resumes_where_it_left_off() {
    let (chain, control) = chain_with_control().await;
    let client = reqwest::Client::new();
    let url = format!("http://{control}/events");
    let mut first = client.get(&url).send().await.unwrap();
    assert_eq!(first.headers()["content-type"], "text/event-stream");
    chain.ask("www.example.com.", RecordType::A).await;
    let seen = read_event_ids(&mut first, 5).await;
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    drop(first);

    // More happens while nobody watches.
    chain.ask("blog.example.com.", RecordType::A).await;
    let last = *seen.last().unwrap();
    let mut again = client
        .get(&url)
        .header("Last-Event-ID", last.to_string())
        .send()
        .await
        .unwrap();
    let resumed = read_event_ids(&mut again, 5).await;
    assert_eq!(resumed[0], last + 1, "no gap, no duplicate");
    assert!(resumed.windows(2).all(|w| w[1] == w[0] + 1));
    chain.stop().await;
}

async fn get_json(control: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_request(control, "GET", path, &[]).await;
    assert!(status.contains("200"), "{path}: {status} {body}");
    serde_json::from_str(&body).unwrap()
}

fn first_address(reply: &hickory_proto::op::Message) -> String {
    dnstrail::dns::addresses(&reply.answers)
        .first()
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_changed_record_is_answered_at_once_while_the_resolver_keeps_the_old_one_for_its_ttl() {
    let (chain, control) = changeable_chain_with_control().await;
    let mut watch = chain.stack.trace.subscribe();
    let (reply, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(first_address(&reply), "127.0.0.44");

    let zones = get_json(control, "/zones").await;
    let example = zones
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["apex"] == "example.com.")
        .unwrap();
    assert_eq!(example["status"], "INSYNC", "{example}");
    assert_eq!(example["servers"].as_array().unwrap().len(), 4);
    assert!(
        example["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["serial"] == 1)
    );

    // Change www's address and TTL from the lab.
    let (status, body) = http_request(
        control,
        "POST",
        "/zones/example.com/records?op=set&name=www&type=A&ttl=60&data=192.0.2.9",
        &[],
    )
    .await;
    assert!(status.contains("200"), "{status} {body}");
    let applied: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(applied["serial"], 2);
    assert_eq!(applied["added"][0]["data"], "192.0.2.9");
    assert_eq!(applied["added"][0]["ttl"], 60);

    // Every name server answers the new data, authoritatively, at once...
    for ns in ["ns-1", "ns-2", "ns-3", "ns-4"] {
        let reply = ask(
            chain.stack.server_addr(ns).unwrap(),
            "www.example.com.",
            RecordType::A,
        )
        .await;
        assert!(reply.metadata.authoritative);
        assert_eq!(first_address(&reply), "192.0.2.9", "{ns}");
    }
    let zone = get_json(control, "/zones/example.com").await;
    assert_eq!(zone["status"], "INSYNC");
    assert!(
        zone["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["serial"] == 2),
        "{zone}"
    );
    assert!(
        zone["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["data"] == "192.0.2.9")
    );

    // ...while the resolver keeps its cached answer until the TTL runs out.
    let (reply, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(first_address(&reply), "127.0.0.44");
    let compared = get_json(control, "/zones/example.com/compare?name=www&type=A").await;
    assert_eq!(compared["same"], false, "{compared}");
    assert_eq!(compared["name_servers"]["records"][0]["data"], "192.0.2.9");
    assert_eq!(compared["resolver"]["records"][0]["data"], "127.0.0.44");
    let remaining = compared["resolver"]["remaining"].as_u64().unwrap();
    assert!((1..=300).contains(&remaining), "{compared}");

    let (status, _) = http_request(
        control,
        "POST",
        &format!("/advance?seconds={}", remaining + 1),
        &[],
    )
    .await;
    assert!(status.contains("200"));
    let (reply, _) = chain.ask("www.example.com.", RecordType::A).await;
    assert_eq!(first_address(&reply), "192.0.2.9");
    let compared = get_json(control, "/zones/example.com/compare?name=www&type=A").await;
    assert_eq!(compared["same"], true, "{compared}");

    // The change is told in the trace, with what it deleted and added.
    let told = watch
        .wait_for(|e| matches!(e.event, TraceEvent::ZoneChanged { .. }))
        .await
        .expect("the change is told");
    match &told.event {
        TraceEvent::ZoneChanged {
            zone,
            serial,
            by,
            deleted,
            added,
        } => {
            assert_eq!(
                (zone.as_str(), *serial, by.as_str()),
                ("example.com.", 2, "lab")
            );
            assert_eq!(deleted[0].data, "127.0.0.44");
            assert_eq!(added[0].data, "192.0.2.9");
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_change_the_zone_would_break_on_is_refused_and_a_silent_server_is_pending() {
    let (chain, control) = changeable_chain_with_control().await;
    // A CNAME beside www's address: 409, with the reason, and no change.
    let (status, body) = http_request(
        control,
        "POST",
        "/zones/example.com/records?op=add&name=www&type=CNAME&data=example.net.",
        &[],
    )
    .await;
    assert!(status.contains("409"), "{status} {body}");
    let refused: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["refused"], "REFUSED");
    assert!(
        refused["why"].as_str().unwrap().contains("CNAME"),
        "{refused}"
    );
    // Nonsense is a 400, a zone not served a 404, a GET a 405.
    for (method, path, want) in [
        (
            "POST",
            "/zones/example.com/records?op=set&name=www&type=A&data=not-an-address",
            "400",
        ),
        (
            "POST",
            "/zones/example.com/records?op=swap&name=www&type=A&data=192.0.2.1",
            "400",
        ),
        (
            "POST",
            "/zones/example.org/records?op=set&name=www&type=A&data=192.0.2.1",
            "404",
        ),
        ("GET", "/zones/example.com/records", "405"),
    ] {
        let (status, body) = http_request(control, method, path, &[]).await;
        assert!(status.contains(want), "{method} {path}: {status} {body}");
    }
    let zone = get_json(control, "/zones/example.com").await;
    assert_eq!(zone["serial"], 1);

    // A server that does not answer cannot be in sync.
    chain
        .stack
        .set_fault("ns-3", Some(dnstrail::fault::Fault::Drop))
        .unwrap();
    let (status, _) = http_request(
        control,
        "POST",
        "/zones/example.com/records?op=add&name=lab&type=TXT&data=%22hello%22",
        &[],
    )
    .await;
    assert!(status.contains("200"));
    let zone = get_json(control, "/zones/example.com").await;
    assert_eq!(zone["status"], "PENDING", "{zone}");
    let ns3 = zone["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ns-3.awsdns-03.com.")
        .unwrap();
    assert!(ns3["serial"].is_null() && ns3["error"].is_string(), "{ns3}");
}
