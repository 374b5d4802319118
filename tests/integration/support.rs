//! Shared helpers: starting stacks and asking questions, like `dig` would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dnstrail::clock::Clock;
use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::fault::Fault;
use dnstrail::resolver::{Config, Resolver};
use dnstrail::serve::ServeOptions;
use dnstrail::stack::{ResolverSetup, Stack, StackConfig};
use dnstrail::topology::Topology;
use dnstrail::trace::TraceEvent;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

pub fn zones_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo-zones")
}

/// The demo's hierarchy, read from `demo-zones/`.
pub fn demo_topology() -> Topology {
    Topology::load(&zones_dir()).expect("the demo zones load")
}

/// Every name server of the demo's hierarchy, on a DNS port of their own.
pub async fn start_name_servers() -> Stack {
    Stack::start(StackConfig::name_servers(demo_topology(), 0))
        .await
        .expect("name servers start")
}

/// The address of the first server of the zone `apex`.
pub fn addr_of(stack: &Stack, apex: &str) -> SocketAddr {
    let server = stack
        .servers()
        .find(|h| h.server.zones.iter().any(|z| z == apex))
        .unwrap_or_else(|| panic!("a server of {apex}"));
    SocketAddr::new(server.server.addrs[0], stack.dns_port)
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
    pub stack: Stack,
    pub resolver: Resolver,
    pub addr: SocketAddr,
}

/// The demo's chain, on ports of its own.
pub async fn start_chain() -> Chain {
    start_chain_on(demo_topology(), Config::default()).await
}

/// Any hierarchy: its name servers, and a resolver whose root hints are
/// the hierarchy's.
pub async fn start_chain_on(topology: Topology, config: Config) -> Chain {
    start_chain_with_faults(topology, config, HashMap::new()).await
}

/// A chain whose name servers (by name) misbehave.
pub async fn start_chain_with_faults(
    topology: Topology,
    config: Config,
    faults: HashMap<String, Fault>,
) -> Chain {
    start_chain_with(topology, config, faults, ServeOptions::default()).await
}

/// A chain with the resolver's serving options given too.
pub async fn start_chain_with(
    topology: Topology,
    config: Config,
    faults: HashMap<String, Fault>,
    options: ServeOptions,
) -> Chain {
    let mut stack_config = StackConfig::name_servers(topology, 0);
    stack_config.faults = faults;
    start_chain_from(stack_config, config, options).await
}

/// A chain whose name servers are set up as `stack_config` says.
pub async fn start_chain_from(
    mut stack_config: StackConfig,
    config: Config,
    options: ServeOptions,
) -> Chain {
    stack_config.resolver = Some(ResolverSetup {
        addrs: vec!["127.0.0.1:0".parse().unwrap()],
        config,
        options,
        clock: Clock::new(),
    });
    let stack = Stack::start(stack_config).await.expect("the chain starts");
    Chain {
        resolver: stack.resolver.clone().expect("a resolver"),
        addr: stack.resolver_addr.expect("the resolver's address"),
        stack,
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
            .find(|r| r.question.name == qname && r.question.rtype == rtype)
            .expect("the resolution is recorded");
        let events = resolution.events.iter().map(|t| t.event.clone()).collect();
        (response, events)
    }

    pub async fn stop(self) {
        self.stack.stop().await;
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

/// A copy of the demo zones, so journals are written beside copies.
pub fn copy_of_demo_zones(tag: &str) -> PathBuf {
    let dir = temp_dir(tag);
    for entry in std::fs::read_dir(zones_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Run `nsupdate` (at `tool`) with `script` on its standard input: whether
/// it succeeded, and what it said.
pub async fn run_nsupdate(tool: &Path, script: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(tool)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .await
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("nsupdate finishes")
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
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

/// Where a server started alone listens (any port): an address no stack
/// of the zones uses, so a port a stack's server gives back (a test
/// stopping a server) is never taken by one of these meanwhile.
pub const ALONE: &str = "127.0.77.4:0";

/// One name server, on an address of its own, until the token is cancelled.
pub async fn serve_alone(
    server: dnstrail::nameserver::NameServer,
    options: ServeOptions,
) -> (SocketAddr, tokio_util::sync::CancellationToken) {
    let sockets = dnstrail::listen::bind_dns(ALONE.parse().unwrap())
        .await
        .unwrap();
    let addr = sockets.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(dnstrail::nameserver::run(
        server,
        vec![sockets],
        options,
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

/// The path of a tool a test needs, or `None` after saying the test is
/// skipped (on the terminal, past the test harness's capture). With
/// `DNSTRAIL_REQUIRE_TOOLS=1` (CI) a missing tool fails the test instead.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        skip(&format!("{name} is not installed"));
    }
    found
}

/// Say a test is skipped, past the harness's capture; with
/// `DNSTRAIL_REQUIRE_TOOLS=1` (CI) fail instead.
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var_os("DNSTRAIL_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{test}: {reason}, and DNSTRAIL_REQUIRE_TOOLS=1 requires it");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (DNSTRAIL_REQUIRE_TOOLS=1 makes this a failure)"
    );
}

/// One HTTP/1.1 request with extra headers, over a fresh connection: the
/// status line and the body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw.lines().next().unwrap_or("").to_string();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Scripted upstream name servers: a closure decides what each one sends
/// back, so a test can make them misbehave exactly as real ones do.
pub mod scripted {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::str::FromStr;
    use std::sync::Arc;

    use dnstrail::clock::Clock;
    use dnstrail::exchange::Transport;
    use dnstrail::listen::{DnsSockets, bind_dns_on_all};
    use dnstrail::resolver::cache::Delegation;
    use dnstrail::resolver::{Answered, Config, Resolver};
    use dnstrail::trace::TraceEvent;
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use tokio::net::UdpSocket;

    pub fn n(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    pub fn a(name: &str, addr: [u8; 4]) -> Record {
        a_ttl(name, addr, 300)
    }

    pub fn a_ttl(name: &str, addr: [u8; 4], ttl: u32) -> Record {
        Record::from_rdata(n(name), ttl, RData::A(A::from(Ipv4Addr::from(addr))))
    }

    /// An A record for a scripted server's address.
    pub fn glue(name: &str, ip: IpAddr) -> Record {
        let IpAddr::V4(v4) = ip else { unreachable!() };
        a(name, v4.octets())
    }

    pub fn ns(zone: &str, host: &str) -> Record {
        Record::from_rdata(n(zone), 3600, RData::NS(NS(n(host))))
    }

    pub fn cname(name: &str, target: &str) -> Record {
        Record::from_rdata(n(name), 300, RData::CNAME(CNAME(n(target))))
    }

    pub fn soa(zone: &str) -> Record {
        Record::from_rdata(
            n(zone),
            300,
            RData::SOA(SOA::new(n("ns.fake."), n("admin.fake."), 1, 2, 3, 4, 60)),
        )
    }

    /// What a scripted server sends for a query: each reply goes out from the
    /// server's own socket unless a `from` socket is given.
    pub struct Reply {
        pub message: Message,
        pub from: Option<Arc<UdpSocket>>,
    }

    /// The server at this address got this query: what goes back (nothing,
    /// for a server that does not answer).
    pub type Script = dyn Fn(IpAddr, &Message) -> Vec<Reply> + Send + Sync;

    /// Scripted name servers on `ips`, all on one port; returns the port.
    pub async fn scripted(ips: &[IpAddr], script: Arc<Script>) -> u16 {
        let sockets = bind_dns_on_all(ips, 0).await.unwrap();
        let port = sockets[0].local_addr().port();
        serve_script(sockets, script);
        port
    }

    /// Serve `script` on sockets already bound.
    pub fn serve_script(sockets: Vec<DnsSockets>, script: Arc<Script>) {
        for s in sockets {
            let ip = s.local_addr().ip();
            let udp = Arc::new(s.udp);
            let script = script.clone();
            tokio::spawn(async move {
                let _tcp = s.tcp; // held open, unused
                let mut buf = [0u8; 4096];
                while let Ok((len, client)) = udp.recv_from(&mut buf).await {
                    let Ok(query) = Message::from_vec(&buf[..len]) else {
                        continue;
                    };
                    for reply in script(ip, &query) {
                        let bytes = reply.message.to_vec().unwrap();
                        let socket = reply.from.unwrap_or_else(|| udp.clone());
                        let _ = socket.send_to(&bytes, client).await;
                    }
                }
            });
        }
    }

    /// A resolver whose root hints point at the scripted server on `ips[0]`.
    pub async fn resolver_over(ips: &[IpAddr], script: Arc<Script>) -> Resolver {
        resolver_with(ips, script, Config::default()).await
    }

    /// The same, with the resolver's configuration given.
    pub async fn resolver_with(ips: &[IpAddr], script: Arc<Script>, config: Config) -> Resolver {
        let port = scripted(ips, script).await;
        let config = Config {
            upstream_port: port,
            seed: 1,
            ..config
        };
        Resolver::new(config, hints("ns.fake.", ips[0]), Clock::new())
    }

    /// Ask `resolver` for an A record, as a loopback stub client would.
    pub async fn resolve(resolver: &Resolver, name: &str) -> Answered {
        ask(resolver, name, RecordType::A).await
    }

    pub async fn ask(resolver: &Resolver, name: &str, rtype: RecordType) -> Answered {
        let client: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        resolver
            .answer(client, Transport::Udp, &n(name), rtype, true)
            .await
    }

    pub fn response_to(query: &Message) -> Message {
        let mut m = Message::new(
            query.metadata.id,
            MessageType::Response,
            query.metadata.op_code,
        );
        m.add_queries(query.queries.clone());
        m
    }

    pub fn hints(host: &str, addr: IpAddr) -> Delegation {
        Delegation {
            zone: Name::root(),
            ns: vec![ns(".", host)],
            glue: vec![glue(host, addr)],
            learned_from: Vec::new(),
        }
    }

    /// One message, sent from the server's own socket.
    pub fn send(message: Message) -> Vec<Reply> {
        vec![Reply {
            message,
            from: None,
        }]
    }

    /// An authoritative answer (AA=1) with these records.
    pub fn answer(query: &Message, records: Vec<Record>) -> Message {
        let mut m = response_to(query);
        m.metadata.authoritative = true;
        m.add_answers(records);
        m
    }

    /// A referral (AA=0): the child's NS set and glue.
    pub fn referral(query: &Message, ns_set: Vec<Record>, glue: Vec<Record>) -> Message {
        let mut m = response_to(query);
        m.add_authorities(ns_set);
        m.add_additionals(glue);
        m
    }

    /// An authoritative NXDOMAIN or NODATA with these authority records.
    pub fn denial(query: &Message, nxdomain: bool, authorities: Vec<Record>) -> Message {
        let mut m = response_to(query);
        m.metadata.authoritative = true;
        if nxdomain {
            m.metadata.response_code = ResponseCode::NXDomain;
        }
        m.add_authorities(authorities);
        m
    }

    /// A bare response with this rcode.
    pub fn rcode(query: &Message, rcode: ResponseCode) -> Message {
        let mut m = response_to(query);
        m.metadata.response_code = rcode;
        m
    }

    /// The question a scripted server was asked: its name, lowercase, and type.
    pub fn asked(query: &Message) -> (String, RecordType) {
        let q = &query.queries[0];
        (q.name().to_ascii().to_lowercase(), q.query_type())
    }

    /// The events of a resolution.
    pub fn events(answered: &Answered) -> Vec<TraceEvent> {
        answered.events.iter().map(|t| t.event.clone()).collect()
    }

    /// The servers a resolution asked, by address, in order.
    pub fn asked_servers(answered: &Answered) -> Vec<IpAddr> {
        events(answered)
            .iter()
            .filter_map(|e| match e {
                TraceEvent::UpstreamQuery { server, .. } => Some(server.addr.ip()),
                _ => None,
            })
            .collect()
    }
}

/// The `dnstrail` binary, as a user runs it: plain output, info logs.
pub fn dnstrail() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dnstrail"));
    command
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Read stderr lines until one contains `needle`; return that line.
pub async fn wait_for_line(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    needle: &str,
) -> String {
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("stderr ended before `{needle}`");
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the role reports where it listens")
}

/// The addresses a role says it listens on, from its machine-readable
/// line (`dnstrail: listening dns 127.0.0.4:5300 …`), not from log wording.
pub async fn listening(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
    what: &str,
) -> Vec<std::net::SocketAddr> {
    let prefix = format!("dnstrail: listening {what} ");
    let line = wait_for_line(lines, &prefix).await;
    line[line.find(&prefix).unwrap() + prefix.len()..]
        .split_whitespace()
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("not an address in `{line}`"))
        })
        .collect()
}
