//! Dynamic updates (RFC 2136) as operators send them: `nsupdate` changes a
//! record and every server of the zone answers the new data at once; a
//! change that would break the zone, or one from a client that may not, is
//! refused and nothing changes; an acknowledged change survives `kill -9`;
//! and a primary in one process tells a secondary in another (NOTIFY,
//! RFC 1996), which transfers the zone and answers the change.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use dnstrail::dns::addresses;
use dnstrail::exchange::{Transport, exchange};
use dnstrail::stack::{Stack, StackConfig};
use dnstrail::topology::Topology;
use hickory_proto::op::{Message, ResponseCode, update_message};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordSet, RecordType};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

async fn serial(server: SocketAddr, apex: &str) -> u32 {
    let reply = ask(server, apex, RecordType::SOA).await;
    reply
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{server} has no SOA for {apex}: {reply:?}"))
}

fn ips(reply: &Message) -> Vec<IpAddr> {
    addresses(&reply.answers)
}

/// Run `nsupdate` with `commands` against `server`, in example.com.
async fn nsupdate(tool: &Path, server: SocketAddr, commands: &str) -> (bool, String) {
    let script = format!(
        "server {} {}\nzone example.com.\n{commands}send\n",
        server.ip(),
        server.port()
    );
    run_nsupdate(tool, &script).await
}

/// Every address the servers of `apex` listen on, at the stack's port.
fn servers_of(stack: &Stack, apex: &str) -> Vec<SocketAddr> {
    stack
        .servers()
        .filter(|h| h.server.zones.iter().any(|z| z == apex))
        .map(|h| SocketAddr::new(h.server.addrs[0], stack.dns_port))
        .collect()
}

#[tokio::test]
async fn nsupdate_adds_changes_and_deletes_and_every_server_answers_the_change() {
    let Some(tool) = tool("nsupdate") else { return };
    let dir = copy_of_demo_zones("updates-nsupdate");
    let stack = Stack::start(StackConfig::name_servers(Topology::load(&dir).unwrap(), 0))
        .await
        .unwrap();
    let servers = servers_of(&stack, "example.com.");
    assert_eq!(servers.len(), 4);
    let before = serial(servers[0], "example.com.").await;

    let (ok, said) = nsupdate(
        &tool,
        servers[0],
        "update add lab.example.com. 60 A 192.0.2.7\n",
    )
    .await;
    assert!(ok, "{said}");
    for server in &servers {
        let reply = ask(*server, "lab.example.com.", RecordType::A).await;
        assert!(reply.metadata.authoritative);
        assert_eq!(
            ips(&reply),
            ["192.0.2.7".parse::<IpAddr>().unwrap()],
            "{server}"
        );
        assert_eq!(
            serial(*server, "example.com.").await,
            before.wrapping_add(1)
        );
    }

    // A change, sent to another server of the zone (all four share it).
    let (ok, said) = nsupdate(
        &tool,
        servers[3],
        "update delete lab.example.com. A\nupdate add lab.example.com. 60 A 192.0.2.8\n",
    )
    .await;
    assert!(ok, "{said}");
    let reply = ask(servers[1], "lab.example.com.", RecordType::A).await;
    assert_eq!(ips(&reply), ["192.0.2.8".parse::<IpAddr>().unwrap()]);

    let (ok, said) = nsupdate(&tool, servers[0], "update delete lab.example.com.\n").await;
    assert!(ok, "{said}");
    let reply = ask(servers[2], "lab.example.com.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        serial(servers[2], "example.com.").await,
        before.wrapping_add(3)
    );

    // Written down before it was acknowledged: the journal holds three.
    let journal = std::fs::read_to_string(dir.join("example.com.zone.jnl")).unwrap();
    assert_eq!(
        journal.lines().filter(|l| l.starts_with("; ok")).count(),
        3,
        "{journal}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn nsupdate_that_would_break_the_zone_is_refused_and_nothing_changes() {
    let Some(tool) = tool("nsupdate") else { return };
    let dir = copy_of_demo_zones("updates-refused");
    let stack = Stack::start(StackConfig::name_servers(Topology::load(&dir).unwrap(), 0))
        .await
        .unwrap();
    let server = servers_of(&stack, "example.com.")[0];
    let before = serial(server, "example.com.").await;
    let www_before = ips(&ask(server, "www.example.com.", RecordType::A).await);

    // A CNAME beside the address records www already has (RFC 2181 §10.1).
    let (ok, said) = nsupdate(
        &tool,
        server,
        "update add www.example.com. 60 CNAME example.net.\n",
    )
    .await;
    assert!(!ok);
    assert!(said.contains("REFUSED"), "{said}");
    // A prerequisite that does not hold: NXRRSET, and the add is not made.
    let (ok, said) = nsupdate(
        &tool,
        server,
        "prereq yxrrset nothing.example.com. A\nupdate add www.example.com. 60 A 192.0.2.99\n",
    )
    .await;
    assert!(!ok);
    assert!(said.contains("NXRRSET"), "{said}");

    assert_eq!(
        ips(&ask(server, "www.example.com.", RecordType::A).await),
        www_before
    );
    assert_eq!(serial(server, "example.com.").await, before);
    assert!(!dir.join("example.com.zone.jnl").exists());
    stack.stop().await;
}

/// An update to example.com adding `lab.example.com A ip`.
fn add_address(ip: [u8; 4]) -> Message {
    let mut rrset = RecordSet::new(name("lab.example.com."), RecordType::A, 60);
    rrset.insert(
        Record::from_rdata(
            name("lab.example.com."),
            60,
            RData::A(A::from(std::net::Ipv4Addr::from(ip))),
        ),
        0,
    );
    update_message::append(rrset, name("example.com."), false, false)
}

async fn send(server: SocketAddr, message: &Message) -> Message {
    exchange(server, message, Transport::Udp, Duration::from_secs(5))
        .await
        .expect("the server answers")
        .response
}

#[tokio::test]
async fn with_a_key_required_an_unsigned_update_is_refused() {
    let dir = copy_of_demo_zones("updates-key");
    let mut config = StackConfig::name_servers(Topology::load(&dir).unwrap(), 0);
    config.updates.require_key = true;
    let stack = Stack::start(config).await.unwrap();
    let server = servers_of(&stack, "example.com.")[0];
    let reply = send(server, &add_address([192, 0, 2, 7])).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let reply = ask(server, "lab.example.com.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    stack.stop().await;
}

#[tokio::test]
async fn an_acknowledged_update_survives_kill_dash_9() {
    let dir = copy_of_demo_zones("updates-kill");
    let start = |port: u16| {
        let mut command = dnstrail();
        command
            .args(["auth", "--zones"])
            .arg(&dir)
            .args(["--server", "ns-1", "--dns-port", &port.to_string()])
            .stderr(Stdio::piped());
        command.spawn().unwrap()
    };
    let mut child = start(0);
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let server = listening(&mut stderr, "dns").await[0];
    let reply = send(server, &add_address([192, 0, 2, 9])).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);

    // No goodbye: SIGKILL, then the same zone files again.
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut child = start(server.port());
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let again = listening(&mut stderr, "dns").await[0];
    let reply = ask(again, "lab.example.com.", RecordType::A).await;
    assert_eq!(ips(&reply), ["192.0.2.9".parse::<IpAddr>().unwrap()]);
    stop_cleanly(&mut child, "auth").await;
}

#[tokio::test]
async fn a_primary_in_one_process_notifies_a_secondary_in_another() {
    let dir = copy_of_demo_zones("updates-notify");
    // ns-1 is the primary (the SOA names it); ns-2 runs apart, on the same
    // port, as a secondary.
    let mut primary = dnstrail()
        .args(["auth", "--zones"])
        .arg(&dir)
        .args(["--server", "ns-1", "--dns-port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut primary_log = BufReader::new(primary.stderr.take().unwrap()).lines();
    let at_primary = listening(&mut primary_log, "dns").await[0];
    let mut secondary = dnstrail()
        .args(["auth", "--zones"])
        .arg(&dir)
        .args([
            "--server",
            "ns-2",
            "--dns-port",
            &at_primary.port().to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut secondary_log = BufReader::new(secondary.stderr.take().unwrap()).lines();
    let at_secondary = listening(&mut secondary_log, "dns").await[0];
    assert_ne!(at_primary.ip(), at_secondary.ip());
    let before = serial(at_secondary, "example.com.").await;

    // The secondary sends updates to the primary instead of taking them.
    let reply = send(at_secondary, &add_address([192, 0, 2, 10])).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);

    let reply = send(at_primary, &add_address([192, 0, 2, 10])).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let line = wait_for_line(&mut secondary_log, "transferred from").await;
    assert!(line.contains(&at_primary.to_string()), "{line}");
    assert_eq!(
        serial(at_secondary, "example.com.").await,
        before.wrapping_add(1)
    );
    let reply = ask(at_secondary, "lab.example.com.", RecordType::A).await;
    assert!(reply.metadata.authoritative);
    assert_eq!(ips(&reply), ["192.0.2.10".parse::<IpAddr>().unwrap()]);

    stop_cleanly(&mut secondary, "secondary").await;
    stop_cleanly(&mut primary, "primary").await;
}
