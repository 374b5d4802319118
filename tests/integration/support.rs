//! Shared helpers: starting stacks and asking questions, like `dig` would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dnstrail::clock::Clock;
use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::listen::bind_dns;
use dnstrail::resolver::{Config, Resolver, load_hints};
use dnstrail::stack::NameServers;
use dnstrail::topology::{Role, Topology};
use dnstrail::trace::TraceEvent;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use tokio_util::sync::CancellationToken;

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

/// The name servers and a resolver in front of them, in-process.
pub struct Chain {
    pub names: NameServers,
    pub resolver: Resolver,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

/// The canonical chain, on ports of its own.
pub async fn start_chain() -> Chain {
    let mut topology = Topology::canonical(zones_dir());
    topology.dns_port = 0;
    start_chain_on(topology, Config::default()).await
}

/// Any hierarchy: name servers for `topology`, and a resolver whose root
/// hints are the topology's.
pub async fn start_chain_on(topology: Topology, config: Config) -> Chain {
    start_chain_with_faults(topology, config, &Default::default()).await
}

/// A chain whose name servers at some addresses misbehave.
pub async fn start_chain_with_faults(
    topology: Topology,
    config: Config,
    faults: &std::collections::HashMap<std::net::IpAddr, dnstrail::fault::Fault>,
) -> Chain {
    let names = NameServers::start_with_faults(topology, faults)
        .await
        .expect("name servers start");
    let hints = load_hints(&names.topology.root_hints).expect("root hints load");
    let config = Config {
        upstream_port: names.topology.dns_port,
        ..config
    };
    let resolver = Resolver::new(config, hints, Clock::new());
    let sockets = bind_dns("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = sockets.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(dnstrail::resolver::run(
        resolver.clone(),
        vec![sockets],
        shutdown.clone(),
    ));
    Chain {
        names,
        resolver,
        addr,
        shutdown,
    }
}

impl Chain {
    /// Ask the resolver as a stub does (RD=1, over UDP with EDNS), and return
    /// the response with the trace of that resolution.
    pub async fn ask(&self, qname: &str, rtype: RecordType) -> (Message, Vec<TraceEvent>) {
        self.ask_over(qname, rtype, Transport::Udp).await
    }

    pub async fn ask_over(
        &self,
        qname: &str,
        rtype: RecordType,
        transport: Transport,
    ) -> (Message, Vec<TraceEvent>) {
        let query = make_query(&name(qname), rtype, true, true);
        let response = exchange(self.addr, &query, transport, Duration::from_secs(10))
            .await
            .expect("resolver answers")
            .response;
        let resolution = self
            .resolver
            .recent()
            .into_iter()
            .rev()
            .find(|r| r.question.name == qname)
            .expect("the resolution is recorded");
        let events = resolution.events.iter().map(|t| t.event.clone()).collect();
        (response, events)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.names.stop().await;
    }
}

/// The zones whose servers were asked, in order, with the server names.
pub fn upstream_hops(events: &[TraceEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::UpstreamQuery { server, zone, .. } => {
                Some((zone.clone(), server.name.clone()))
            }
            _ => None,
        })
        .collect()
}

/// A directory of its own under the system's temp dir, for zone files.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dnstrail-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Ask a child process to stop, as `kill` or a service manager would.
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
}

/// Flip, drop, overwrite, splice or insert bytes: the mutations that break
/// parsers.
pub fn mutate(rng: &mut impl rand::Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let len = out.len();
        match rng.random_range(0..5) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => out.truncate(rng.random_range(0..len)),
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                out[i] = [0x00, 0xff, 0xc0, 0x3f, b'.', b'\n'][rng.random_range(0..6)];
            }
            3 if !other.is_empty() => {
                let from = rng.random_range(0..other.len());
                let at = rng.random_range(0..=len);
                let take = rng.random_range(0..=(other.len() - from).min(64));
                out.splice(at..at, other[from..from + take].iter().copied());
            }
            _ => {
                let at = rng.random_range(0..=len);
                out.insert(at, rng.random());
            }
        }
    }
    out
}

/// Send a query over UDP and return the raw bytes of the reply, so tests
/// can check the wire format itself (trailing bytes, sizes).
pub async fn raw_udp_reply(server: SocketAddr, query: &Message) -> Vec<u8> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(&query.to_vec().unwrap()).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("a reply")
        .unwrap();
    buf.truncate(n);
    buf
}

/// Assert a reply is well formed and ends where its last record ends: the
/// same message, encoded again, has exactly its length.
pub fn assert_whole(raw: &[u8]) -> Message {
    let message = Message::from_vec(raw).expect("the reply parses");
    let again = message.to_vec().unwrap();
    assert_eq!(again.len(), raw.len(), "bytes after the last record");
    message
}

/// One name server, on an address of its own, until the token is cancelled.
pub async fn serve_alone(
    server: dnstrail::nameserver::NameServer,
) -> (SocketAddr, CancellationToken) {
    let sockets = bind_dns("127.0.0.4:0".parse().unwrap()).await.unwrap();
    let addr = sockets.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(dnstrail::nameserver::run(
        server,
        vec![sockets],
        stop.clone(),
    ));
    (addr, stop)
}

/// Send SIGTERM and require a clean exit (status 0) within 10 s.
pub async fn stop_cleanly(child: &mut tokio::process::Child, what: &str) {
    sigterm(child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} did not stop within 10 s"))
        .unwrap();
    assert!(status.success(), "{what}: {status:?}");
}
