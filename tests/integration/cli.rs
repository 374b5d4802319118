//! The `dnstrail` binary as a user runs it: roles as separate processes,
//! errors as one line, clean exit on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use dnstrail::dns::addresses;
use dnstrail::exchange::{Transport, exchange, make_query};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

#[tokio::test]
async fn a_bad_zone_file_stops_start_up_with_file_and_line() {
    let dir = temp_dir("cli-bad-zone");
    let file = dir.join("bad.zone");
    std::fs::write(
        &file,
        "$ORIGIN bad.test.\n$TTL 60\n@ IN SOA ns h 1 2 3 4 5\n@ IN NS ns\nns IN A 127.0.0.9\nwww IN AAAA 1.2.3.4\n",
    )
    .unwrap();
    let output = dnstrail()
        .args(["auth", "--zone"])
        .arg(&file)
        .args(["--listen", "127.0.0.9:0"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:6:", file.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("dnstrail: "), "{stderr}");
}

#[tokio::test]
async fn a_busy_address_is_named_with_what_to_do() {
    let busy = std::net::UdpSocket::bind("127.0.0.9:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let output = dnstrail()
        .args(["root", "--listen", &addr.to_string()])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
}

#[tokio::test]
async fn resolver_runs_alone_prints_json_trace_and_stops_on_sigterm() {
    let names = start_name_servers().await;
    let mut child = dnstrail()
        .args([
            "resolver",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--dns-port",
        ])
        .arg(names.dns_port.to_string())
        .arg("--zones")
        .arg(zones_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = listening(&mut stderr, "dns").await[0];

    let query = make_query(&name("www.example.com."), RecordType::A, true, true);
    let response = exchange(addr, &query, Transport::Udp, Duration::from_secs(10))
        .await
        .unwrap()
        .response;
    assert_eq!(
        addresses(&response.answers),
        ["127.0.0.44".parse::<std::net::IpAddr>().unwrap()]
    );

    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut kinds = Vec::new();
    while let Some(line) = stdout.next_line().await.unwrap() {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        let kind = event["event"].as_str().unwrap().to_string();
        kinds.push(kind.clone());
        if kind == "answer_returned" {
            break;
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("question_received"));
    assert_eq!(kinds.iter().filter(|k| *k == "upstream_query").count(), 3);

    stop_cleanly(&mut child, "dnstrail resolver").await;
    names.stop().await;
}

#[tokio::test]
async fn name_server_roles_run_alone_answer_and_stop_on_sigterm() {
    for (role, listen, zone, question) in [
        ("root", "127.0.77.2:0", ".", "www.example.com."),
        ("tld", "127.0.77.3:0", "com.", "www.example.com."),
        ("auth", "127.0.77.4:0", "example.com.", "www.example.com."),
    ] {
        let mut child = dnstrail()
            .args([role, "--listen", listen])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        wait_for_line(&mut stderr, &format!("{role} name server for {zone} on")).await;
        let addr = listening(&mut stderr, "dns").await[0];
        let response = ask(addr, question, RecordType::A).await;
        assert_eq!(response.metadata.authoritative, role == "auth", "{role}");
        assert!(
            !response.answers.is_empty() || !response.authorities.is_empty(),
            "{role} said nothing"
        );
        stop_cleanly(&mut child, role).await;
    }
}

#[tokio::test]
async fn web_runs_alone_serves_and_stops_on_sigterm() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut child = dnstrail()
        .args(["web", "--listen", "127.0.0.44:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = listening(&mut stderr, "http").await[0];
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    stop_cleanly(&mut child, "dnstrail web").await;
}

#[tokio::test]
async fn every_subcommand_has_help() {
    for role in [
        "demo",
        "root",
        "tld",
        "auth",
        "nameservers",
        "resolver",
        "web",
        "browse",
        "init",
    ] {
        let output = dnstrail().args([role, "--help"]).output().await.unwrap();
        assert!(output.status.success(), "{role} --help");
    }
}

/// A resolver role started as a user would, over the test's name servers.
fn resolver_process(names: &dnstrail::stack::Stack, print: &str) -> tokio::process::Child {
    dnstrail()
        .args(["resolver", "--listen", "127.0.0.1:0", print, "--dns-port"])
        .arg(names.dns_port.to_string())
        .arg("--zones")
        .arg(zones_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn resolve(addr: std::net::SocketAddr, qname: &str) -> hickory_proto::op::Message {
    let query = make_query(&name(qname), RecordType::A, true, true);
    exchange(addr, &query, Transport::Udp, Duration::from_secs(10))
        .await
        .unwrap()
        .response
}

#[tokio::test]
async fn the_standalone_resolver_tells_the_story_of_each_resolution() {
    let names = start_name_servers().await;
    let mut child = resolver_process(&names, "--story");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = listening(&mut stderr, "dns").await[0];
    resolve(addr, "www.example.com.").await;
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut told = Vec::new();
    let read = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let done = line.contains("7.  resolver");
            told.push(line);
            if done {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the story is told");
    let text = told.join("\n");
    for needle in [
        "asks the resolver www.example.com. A over UDP",
        "3.  resolver   asks a.root-servers.net",
        "referral to com.",
        "6.  ns-",
        "7.  resolver   returns www.example.com. A ⇒ 127.0.0.44",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    stop_cleanly(&mut child, "dnstrail resolver --story").await;
    names.stop().await;
}

/// `dnstrail resolver --json | head -c 10`: the reader goes away, and the
/// resolver goes on answering every question.
#[tokio::test]
async fn a_closed_json_pipe_does_not_stop_the_resolver() {
    let names = start_name_servers().await;
    let mut child = resolver_process(&names, "--json");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = listening(&mut stderr, "dns").await[0];
    drop(child.stdout.take());
    for i in 0..100 {
        let qname = if i % 2 == 0 {
            "www.example.com.".to_string()
        } else {
            format!("gone-{i}.example.com.")
        };
        let response = resolve(addr, &qname).await;
        assert!(
            matches!(
                response.metadata.response_code,
                hickory_proto::op::ResponseCode::NoError
                    | hickory_proto::op::ResponseCode::NXDomain
            ),
            "question {i}: {:?}",
            response.metadata.response_code
        );
    }
    stop_cleanly(&mut child, "dnstrail resolver --json").await;
    names.stop().await;
}

/// `dnstrail auth --fault servfail`: every server of the role fails so,
/// on the addresses the zones give them.
#[tokio::test]
async fn a_role_started_with_a_fault_misbehaves() {
    let mut child = dnstrail()
        .args(["auth", "--zones"])
        .arg(zones_dir())
        .args(["--dns-port", "0", "--fault", "servfail"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addrs = listening(&mut stderr, "dns").await;
    let servers = demo_topology().find_servers("example.com.").unwrap().len();
    assert_eq!(addrs.len(), servers, "{addrs:?}");
    for addr in addrs {
        let response = ask(addr, "www.example.com.", RecordType::A).await;
        assert_eq!(
            response.metadata.response_code,
            hickory_proto::op::ResponseCode::ServFail
        );
    }
    stop_cleanly(&mut child, "dnstrail auth --fault servfail").await;
}

/// The query log, on as the README starts a role: one line per question,
/// in the order asked, none lost, and the last ones written out before the
/// role exits on SIGTERM (the writer batches lines; it must not take a
/// batch down with it).
#[tokio::test]
async fn every_question_is_in_the_query_log_even_just_before_a_stop() {
    let mut child = dnstrail()
        .args(["auth", "--listen", "127.0.77.4:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = listening(&mut stderr, "dns").await[0];
    // Read stderr as it comes, so the writer never waits on a full pipe.
    let reader = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = stderr.next_line().await.unwrap() {
            lines.push(line);
        }
        lines
    });

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(addr).await.unwrap();
    let asked = 300;
    let mut buf = [0u8; 512];
    for i in 0..asked {
        let qtype = if i % 2 == 0 {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        let query = make_query(&name("www.example.com."), qtype, false, false);
        socket.send(&query.to_vec().unwrap()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
    }
    stop_cleanly(&mut child, "dnstrail auth").await;

    let client = socket.local_addr().unwrap().to_string();
    let logged: Vec<String> = reader
        .await
        .unwrap()
        .into_iter()
        .filter(|line| line.contains(&format!(" INFO {client} UDP www.example.com. ")))
        .collect();
    assert_eq!(logged.len(), asked, "{:?}", logged.last());
    for (i, line) in logged.iter().enumerate() {
        let expected = if i % 2 == 0 {
            "A -> NOERROR flags=[qr aa] answers=1"
        } else {
            "AAAA -> NOERROR flags=[qr aa] answers=0"
        };
        assert!(line.ends_with(expected), "line {i}: {line}");
    }
}
