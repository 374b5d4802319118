//! Shared helpers: starting stacks and asking questions, like `dig` would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::stack::NameServers;
use dnstrail::topology::{Role, Topology};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

pub fn zones_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo-zones")
}

/// The canonical name servers on a DNS port of their own.
pub async fn start_name_servers() -> NameServers {
    let mut topology = Topology::canonical(zones_dir());
    topology.dns_port = 0;
    NameServers::start(topology)
        .await
        .expect("name servers start")
}

/// The address of the first host of a role.
pub fn addr_of(stack: &NameServers, role: Role) -> SocketAddr {
    let host = &stack.topology.service(role).hosts[0];
    SocketAddr::new(host.ip, stack.topology.dns_port)
}

pub fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid name")
}

/// Ask `server` one question without recursion (`dig +norec`), with EDNS.
pub async fn ask(server: SocketAddr, qname: &str, rtype: RecordType) -> Message {
    ask_with(server, qname, rtype, Transport::Udp, true).await
}

pub async fn ask_with(
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
    transport: Transport,
    edns: bool,
) -> Message {
    let query = make_query(&name(qname), rtype, false, edns);
    exchange(server, &query, transport, Duration::from_secs(5))
        .await
        .expect("server answers")
        .response
}
