//! `make multihost`: every role on a host of its own, as separate
//! `dnstrail` processes started with the README's flags only, on one
//! Ethernet segment of network namespaces (see [`network`]), port 53 everywhere:
//!
//! ```text
//!  10.53.0.2  root       dnstrail root --zones Z --dns-port 53
//!  10.53.0.3  tld        dnstrail tld --zones Z --dns-port 53
//!  10.53.0.4  ns-1 … 10.53.0.7 ns-4   dnstrail auth --zones Z --server ns-N --dns-port 53
//!  10.53.0.44 web        dnstrail web --site URL --listen 10.53.0.44
//!  10.53.0.8  resolver   dnstrail resolver --root-hints H --listen 10.53.0.8 --dns-port 53 [--allow 10.53.0.0/24]
//!                        (and --control 127.0.0.1 --json --seed N, to watch it)
//!  10.53.0.9  unbound    Unbound, the same root hints
//!  10.53.0.10 client     /etc/resolv.conf names 10.53.0.8: dig +trace, curl, getent, dnstrail browse
//! ```
//!
//! Z is `demo-zones/` with every 127.0.0.N written as 10.53.0.N, so the
//! glue says where each server is, as on real hosts; the network's own hosts
//! (resolver, Unbound, client) take the next free addresses. Each check is
//! bounded in time and prints one PASS line (or SKIPPED, with why); the
//! logs of every process are in `target/tmp/multihost/`. Needs root (and
//! iproute2); ignored by `make test`.

mod network;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dnstrail::exchange::{Transport, exchange, make_query};
use dnstrail::topology::{DEFAULT_URL, Tier, Topology};
use dnstrail::trace::{ResponseKind, TraceEvent, Traced};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::skip;
use crate::support::{tool, zones_dir};
use network::{Network, Role};

/// The network's addresses: BIND's system tests number their servers in it too.
const NETWORK: [u8; 3] = [10, 53, 0];
const PREFIX_LEN: u8 = 24;
/// What a dnstrail role prints once its DNS sockets are bound.
const LISTENING_DNS: &str = "dnstrail: listening dns";

/// One line of the run's report, past the harness's capture.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "multihost: {line}");
}

/// Run one check within `bound`; it returns its value and what it saw,
/// which is reported as a PASS line with its wall time.
async fn check<T>(what: &str, bound: Duration, run: impl Future<Output = (T, String)>) -> T {
    let started = Instant::now();
    let (value, saw) = tokio::time::timeout(bound, run)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {bound:?}"));
    say(&format!(
        "PASS {what}: {saw} ({} ms)",
        started.elapsed().as_millis()
    ));
    value
}

/// Start a role on its host, ready once it prints `ready` on stderr: a
/// PASS line with its command line.
async fn start_role(
    net: &mut Network,
    (name, host): (&str, &str),
    program: &Path,
    args: &[String],
    ready: &str,
) -> Role {
    let program_name = program.file_name().unwrap().to_string_lossy();
    let shown = format!("{program_name} {} (on {host})", args.join(" "));
    check(&format!("{name} started"), Duration::from_secs(15), async {
        (net.start(name, host, program, args, ready).await, shown)
    })
    .await
}

/// `demo-zones/` with the loopback addresses moved into the network's network.
fn write_zones(dir: &Path) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let net = format!("{}.{}.{}.", NETWORK[0], NETWORK[1], NETWORK[2]);
    for entry in std::fs::read_dir(zones_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            zones.join(path.file_name().unwrap()),
            text.replace("127.0.0.", &net),
        )
        .unwrap();
    }
    zones
}

/// A name server and the host it gets.
struct NameServerHost {
    /// Also what `--server` takes to choose it.
    host: String,
    /// The server's name.
    server: String,
    tier: Tier,
    ip: Ipv4Addr,
}

/// Each name server of the zones on a host named after it: `root`, `tld`,
/// or the first label of a domain's server (`ns-1`, which `--server`
/// takes too, as long as no other server's name starts with it).
fn name_server_hosts(topology: &Topology) -> Vec<NameServerHost> {
    let mut hosts: Vec<NameServerHost> = Vec::new();
    for server in &topology.servers {
        let apex = Name::from_ascii(&server.zones[0]).unwrap();
        let tier = Tier::of(&apex);
        let base = match tier {
            Tier::Root => "root".to_string(),
            Tier::Tld => "tld".to_string(),
            Tier::Domain => server.name.split('.').next().unwrap().to_string(),
        };
        assert!(
            !hosts.iter().any(|h| h.host == base),
            "two servers would be host {base}: the net names hosts by tier or first label"
        );
        let host = base;
        let ip = match server.addrs[0] {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => panic!("{}: the network is IPv4 only ({ip})", server.name),
        };
        hosts.push(NameServerHost {
            host,
            server: server.name.trim_end_matches('.').to_string(),
            tier,
            ip,
        });
    }
    hosts
}

/// The first `n` addresses of the network's network from .8 up that the zones
/// do not use.
fn free_addresses(used: &[Ipv4Addr], n: usize) -> Vec<Ipv4Addr> {
    (8..=254)
        .map(|last| Ipv4Addr::new(NETWORK[0], NETWORK[1], NETWORK[2], last))
        .filter(|ip| !used.contains(ip))
        .take(n)
        .collect()
}

/// Ask `server` one question from `host` (a socket of that host), as a
/// stub (RD=1) or as a resolver would (RD=0).
async fn ask(
    net: &Network,
    host: &str,
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
) -> Result<Message, String> {
    ask_within(net, host, server, qname, rtype, Duration::from_secs(5)).await
}

/// Ask as a stub resolver does: a try every 2 s, three at most (Unbound
/// drops a reply once its client has waited 1.9 s, `discard-timeout`,
/// counting on the retry). The answer and the tries it took.
async fn ask_like_a_stub(
    net: &Network,
    host: &str,
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
) -> (Message, u32) {
    let mut last = String::new();
    for tries in 1..=3 {
        match ask_within(net, host, server, qname, rtype, Duration::from_secs(2)).await {
            Ok(answer) => return (answer, tries),
            Err(error) => last = error,
        }
    }
    panic!("{qname}: three tries, no answer from {server}: {last}");
}

/// [`ask`], waiting up to `timeout`.
async fn ask_within(
    net: &Network,
    host: &str,
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let qname = qname.to_string();
    net.on(host, move || async move {
        let query = make_query(&Name::from_ascii(&qname).unwrap(), rtype, true, true);
        exchange(server, &query, Transport::Udp, timeout)
            .await
            .map(|e| e.response)
            .map_err(|e| e.to_string())
    })
    .await
}

/// The serial of `apex`'s SOA at `server`, asked from `host`.
async fn serial_at(net: &Network, host: &str, server: SocketAddr, apex: &str) -> u32 {
    let answer = ask(net, host, server, apex, RecordType::SOA)
        .await
        .unwrap_or_else(|e| panic!("{server}: {e}"));
    answer
        .answers
        .iter()
        .find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{server} sent no SOA for {apex}: {answer:?}"))
}

/// An answer as a comparable set: rcode and (type, data) of each record.
fn answer_set(message: &Message) -> (ResponseCode, Vec<String>) {
    let mut records: Vec<String> = message
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    records.sort();
    (message.metadata.response_code, records)
}

/// The resolver's trace, from its `--json` lines on stdout.
struct Trace {
    events: tokio::sync::mpsc::UnboundedReceiver<Traced>,
    seen: Vec<Traced>,
}

impl Trace {
    fn follow(role: &mut Role, log: PathBuf) -> Trace {
        let stdout = role.stdout.take().expect("the resolver's stdout");
        let (send, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut log = tokio::fs::File::create(log).await.unwrap();
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log.write_all(format!("{line}\n").as_bytes()).await;
                if let Ok(event) = serde_json::from_str::<Traced>(&line) {
                    let _ = send.send(event);
                }
            }
        });
        Trace {
            events,
            seen: Vec::new(),
        }
    }

    /// The events of the resolution that answered `qname`, once its answer
    /// has been told (within 5 s).
    async fn resolution_of(&mut self, qname: &str) -> Vec<TraceEvent> {
        let wanted = format!("{}.", qname.trim_end_matches('.'));
        let answered = |e: &Traced| {
            matches!(&e.event, TraceEvent::AnswerReturned { question, .. }
                if question.name.eq_ignore_ascii_case(&wanted))
        };
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(done) = self.seen.iter().find(|e| answered(e)) {
                    return done.resolution;
                }
                let event = self.events.recv().await.expect("the resolver's trace");
                self.seen.push(event);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no trace of {qname} within 5 s"));
        self.seen
            .iter()
            .filter(|e| e.resolution == found)
            .map(|e| e.event.clone())
            .collect()
    }
}

/// The servers of `zone` asked in a resolution, with what each said.
fn asked_in(events: &[TraceEvent], zone: &str) -> Vec<(SocketAddr, ResponseKind, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::UpstreamResponse {
                server,
                response,
                rtt_us,
                ..
            } => Some((server, response, rtt_us)),
            _ => None,
        })
        .filter(|(server, _, _)| {
            events.iter().any(|q| {
                matches!(q, TraceEvent::UpstreamQuery { server: s, zone: z, .. }
                    if s.addr == server.addr && z.eq_ignore_ascii_case(zone))
            })
        })
        .map(|(server, response, rtt)| (server.addr, response.clone(), *rtt))
        .collect()
}

#[tokio::test]
#[ignore = "needs root and iproute2; run by `make multihost`"]
async fn every_role_on_a_host_of_its_own() {
    let started = Instant::now();
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("needs root: network namespaces, links and port 53");
        return;
    }
    if tool("ip").is_none() {
        return;
    }
    let dnstrail = PathBuf::from(env!("CARGO_BIN_EXE_dnstrail"));
    let run = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("multihost");
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let zones = write_zones(&run);
    let hints = zones.join("root.hints");
    let topology = Topology::load(&zones).expect("the network's zones load");

    // Where everything is, from the zones.
    let servers = name_server_hosts(&topology);
    let site = reqwest::Url::parse(DEFAULT_URL).unwrap();
    let site_host = site.host_str().unwrap().to_string();
    let site_url = format!("http://{site_host}/");
    let web_ip = match topology.resolve(&site_host).0.first() {
        Some(IpAddr::V4(ip)) => *ip,
        other => panic!("{site_host} has no IPv4 address in the zones: {other:?}"),
    };
    let domain = topology
        .zones
        .iter()
        .find(|z| Tier::of(z.origin()) == Tier::Domain)
        .expect("a domain below the TLDs")
        .origin()
        .to_ascii();
    let mut used: Vec<Ipv4Addr> = servers.iter().map(|s| s.ip).collect();
    used.push(web_ip);
    let [resolver_ip, unbound_ip, client_ip] = free_addresses(&used, 3)[..] else {
        panic!("no three free addresses in the network's network");
    };
    let subnet = format!(
        "{}.{}.{}.0/{PREFIX_LEN}",
        NETWORK[0], NETWORK[1], NETWORK[2]
    );

    let mut net = Network::new(&run).expect("the network's switch");
    let prefix = net.prefix().to_string();
    let mut hosts: Vec<(String, Ipv4Addr)> =
        servers.iter().map(|s| (s.host.clone(), s.ip)).collect();
    hosts.extend([
        ("web".to_string(), web_ip),
        ("resolver".to_string(), resolver_ip),
        ("unbound".to_string(), unbound_ip),
        ("client".to_string(), client_ip),
    ]);
    check("network", Duration::from_secs(20), async {
        for (name, ip) in &hosts {
            net.add_host(name, *ip).expect("a host of the network");
        }
        let list: Vec<String> = hosts.iter().map(|(n, ip)| format!("{n} {ip}")).collect();
        (
            (),
            format!(
                "{} hosts on one bridge, each in its own network namespace: {}",
                hosts.len(),
                list.join(", ")
            ),
        )
    })
    .await;

    // Latency per link: the domain's last server fast, the others far
    // slower (so one slow answer under load, which weighs 30 % in the
    // smoothed RTT, cannot reorder them): netem where the kernel has it,
    // else each server's own `--fault delay`.
    let domain_servers: Vec<&NameServerHost> =
        servers.iter().filter(|s| s.tier == Tier::Domain).collect();
    let delays: BTreeMap<String, Duration> = domain_servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let slower = (domain_servers.len() - 1 - i) as u64;
            let ms = if slower == 0 { 10 } else { 100 + 50 * slower };
            (s.host.clone(), Duration::from_millis(ms))
        })
        .collect();
    let netem: Result<(), String> = if tool_quietly("tc") {
        delays
            .iter()
            .try_for_each(|(host, delay)| net.add_latency(host, *delay))
    } else {
        Err("tc is not installed".into())
    };
    let latency_by = match &netem {
        Ok(()) => "tc netem on each server's link".to_string(),
        Err(why) => {
            say(&format!(
                "SKIPPED netem ({why}): latency comes from each server's --fault delay=… instead"
            ));
            "each server's --fault delay".to_string()
        }
    };

    // The roles, each a process of its own on its own host.
    let zones_arg = zones.display().to_string();
    let mut roles: Vec<Role> = Vec::new();
    for s in &servers {
        // The README's lines: `--server` only where a tier has several.
        let mut args: Vec<String> = [s.tier.command(), "--zones", &zones_arg, "--dns-port", "53"]
            .map(String::from)
            .to_vec();
        if servers.iter().filter(|o| o.tier == s.tier).count() > 1 {
            args.extend(["--server".into(), s.host.clone()]);
        }
        if let (Err(_), Some(delay)) = (&netem, delays.get(&s.host)) {
            args.extend(["--fault".into(), format!("delay={}ms", delay.as_millis())]);
        }
        let host = (s.host.as_str(), s.host.as_str());
        roles.push(start_role(&mut net, host, &dnstrail, &args, LISTENING_DNS).await);
    }
    let web_args: Vec<String> = ["web", "--site", &site_url, "--listen", &web_ip.to_string()]
        .map(String::from)
        .to_vec();
    let web = ("web", "web");
    roles.push(
        start_role(
            &mut net,
            web,
            &dnstrail,
            &web_args,
            "dnstrail: listening http",
        )
        .await,
    );
    let resolver_args = |allow: bool| -> Vec<String> {
        let mut args: Vec<String> = [
            "resolver",
            "--root-hints",
            &hints.display().to_string(),
            "--listen",
            &resolver_ip.to_string(),
            "--dns-port",
            "53",
            "--control",
            "127.0.0.1",
            "--json",
            "--seed",
            "53",
        ]
        .map(String::from)
        .to_vec();
        if allow {
            args.extend(["--allow".to_string(), subnet.clone()]);
        }
        args
    };
    let resolver_addr = SocketAddr::new(resolver_ip.into(), 53);

    // 1. A resolver answers only its own by default: a client on another
    //    host, a real foreign socket, is REFUSED.
    let args = resolver_args(false);
    let closed = ("resolver-closed", "resolver");
    let mut closed = start_role(&mut net, closed, &dnstrail, &args, LISTENING_DNS).await;
    let _drained = Trace::follow(&mut closed, run.join("resolver-closed.json"));
    check(
        "the resolver refuses a client on another host by default",
        Duration::from_secs(10),
        async {
            let answer = ask(&net, "client", resolver_addr, &site_host, RecordType::A)
                .await
                .expect("the resolver answers");
            let rcode = answer.metadata.response_code;
            assert_eq!(rcode, ResponseCode::Refused, "{answer:?}");
            ((), format!("{client_ip} → {resolver_addr}: {rcode}"))
        },
    )
    .await;

    // 2. The control endpoint listens on the resolver's loopback only,
    // unless bound beyond it with a token.
    check(
        "the control endpoint is the resolver host's alone",
        Duration::from_secs(20),
        async {
            let (status, _) = net
                .on("resolver", || async {
                    crate::support::http_request(
                        "127.0.0.1:5380".parse().unwrap(),
                        "GET",
                        "/metrics",
                        &[],
                    )
                    .await
                })
                .await;
            assert!(status.contains(" 200 "), "on the resolver's host: {status}");
            let from_client = net
                .on("client", move || async move {
                    tokio::time::timeout(
                        Duration::from_secs(3),
                        tokio::net::TcpStream::connect((resolver_ip, 5380)),
                    )
                    .await
                    .map(|c| c.map(|_| ()))
                })
                .await;
            let refused = matches!(&from_client, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused);
            assert!(refused, "from the client: {from_client:?}");
            let bad = [
                "resolver",
                "--listen",
                &format!("{resolver_ip}:5301"),
                "--control",
                &format!("{resolver_ip}:5380"),
            ];
            let output = net
                .run("resolver", &dnstrail, &bad, None, Duration::from_secs(10))
                .await;
            let said = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success() && said.contains("needs --control-token"),
                "{said}"
            );
            (
                (),
                format!(
                    "127.0.0.1:5380 on the resolver's host: {}; {resolver_ip}:5380 from the client: connection refused; --control {resolver_ip}:5380 refused: {}",
                    status.trim(),
                    said.lines().last().unwrap_or("").trim()
                ),
            )
        },
    )
    .await;
    closed.stop().await;

    // 3. With --allow, the network's hosts may use it.
    let args = resolver_args(true);
    let open = ("resolver", "resolver");
    let mut resolver = start_role(&mut net, open, &dnstrail, &args, LISTENING_DNS).await;
    let mut trace = Trace::follow(&mut resolver, run.join("resolver.json"));
    check(
        "the resolver answers the client with --allow",
        Duration::from_secs(10),
        async {
            let answer = ask(&net, "client", resolver_addr, &site_host, RecordType::A)
                .await
                .expect("the resolver answers");
            let (rcode, records) = answer_set(&answer);
            assert_eq!(rcode, ResponseCode::NoError, "{answer:?}");
            assert!(
                records.iter().any(|r| r.ends_with(&web_ip.to_string())),
                "{records:?}"
            );
            ((), format!("{rcode} {}", records.join(", ")))
        },
    )
    .await;

    // 4. Unmodified programs on the client host, through its resolv.conf.
    let etc = Some(resolver_ip);
    if let Some(dig) = tool("dig") {
        check(
            "dig +trace from the client",
            Duration::from_secs(30),
            async {
                let output = net
                    .run(
                        "client",
                        &dig,
                        &["+trace", "+time=2", "+tries=1", &site_host, "A"],
                        etc,
                        Duration::from_secs(25),
                    )
                    .await;
                let stdout = String::from_utf8_lossy(&output.stdout);
                // ";; Received 87 bytes from 10.53.0.2#53(a.root-servers.net) in 0 ms"
                let hops: Vec<&str> = stdout
                    .lines()
                    .filter_map(|l| l.split(" from ").nth(1))
                    .filter_map(|l| l.split(" in ").next())
                    .collect();
                let root = servers.iter().find(|s| s.tier == Tier::Root).unwrap();
                let tld = servers.iter().find(|s| s.tier == Tier::Tld).unwrap();
                assert!(
                    hops.len() >= 4,
                    "{stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert!(
                    hops[0].starts_with(&format!("{resolver_ip}#53")),
                    "{stdout}"
                );
                assert_eq!(
                    hops[1],
                    format!("{}#53({})", root.ip, root.server),
                    "{stdout}"
                );
                assert_eq!(
                    hops[2],
                    format!("{}#53({})", tld.ip, tld.server),
                    "{stdout}"
                );
                assert!(
                    domain_servers
                        .iter()
                        .any(|s| hops[3] == format!("{}#53({})", s.ip, s.server)),
                    "{stdout}"
                );
                let answer = stdout
                    .lines()
                    .find(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() == 5 && f[3] == "A" && f[4] == web_ip.to_string()
                    })
                    .unwrap_or_else(|| panic!("no A {web_ip} in:\n{stdout}"));
                (
                    (),
                    format!(
                        "{} ⇒ {}",
                        hops.join(" → "),
                        answer.split_whitespace().collect::<Vec<_>>().join(" ")
                    ),
                )
            },
        )
        .await;
    }
    if let Some(curl) = tool("curl") {
        check("curl from the client", Duration::from_secs(20), async {
            let output = net
                .run(
                    "client",
                    &curl,
                    &[
                        "-sS",
                        "--max-time",
                        "10",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code} %{remote_ip}:%{remote_port}",
                        &site_url,
                    ],
                    etc,
                    Duration::from_secs(15),
                )
                .await;
            let got = String::from_utf8_lossy(&output.stdout).to_string();
            assert_eq!(
                got,
                format!("200 {web_ip}:80"),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            ((), format!("{site_url} → {got}"))
        })
        .await;
    }
    if let Some(getent) = tool("getent") {
        check(
            "getent hosts from the client",
            Duration::from_secs(20),
            async {
                let output = net
                    .run(
                        "client",
                        &getent,
                        &["hosts", &site_host],
                        etc,
                        Duration::from_secs(15),
                    )
                    .await;
                let got = String::from_utf8_lossy(&output.stdout);
                assert_eq!(
                    got.split_whitespace().next(),
                    Some(web_ip.to_string().as_str()),
                    "{got}"
                );
                ((), got.split_whitespace().collect::<Vec<_>>().join(" "))
            },
        )
        .await;
    }
    check(
        "dnstrail browse from the client",
        Duration::from_secs(20),
        async {
            let output = net
                .run(
                    "client",
                    &dnstrail,
                    &[
                        "browse",
                        "--resolver",
                        &resolver_addr.to_string(),
                        "--json",
                        &site_url,
                    ],
                    None,
                    Duration::from_secs(15),
                )
                .await;
            let visit: serde_json::Value = serde_json::from_slice(&output.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
            assert_eq!(visit["status"], 200, "{visit}");
            assert_eq!(visit["addr"], format!("{web_ip}:80"), "{visit}");
            (
                (),
                format!(
                    "{} {} from {}",
                    visit["status"], visit["title"], visit["addr"]
                ),
            )
        },
    )
    .await;

    // 5. Unbound on a host of its own, over the same name servers: the same
    //    answers as ours.
    let unbound_addr = SocketAddr::new(unbound_ip.into(), 53);
    let questions: Vec<(String, RecordType)> = vec![
        (site_host.clone(), RecordType::A),
        (format!("blog.{domain}"), RecordType::A),
        (format!("mail.{domain}"), RecordType::AAAA),
        (domain.clone(), RecordType::MX),
        (domain.clone(), RecordType::TXT),
        (format!("nope.{domain}"), RecordType::A),
    ];
    let mut unbound = None;
    if let Some(program) = tool("unbound") {
        let config = run.join("unbound.conf");
        std::fs::write(
            &config,
            format!(
                "server:\n  verbosity: 1\n  interface: {unbound_ip}\n  port: 53\n  do-ip6: no\n  \
                 access-control: {subnet} allow\n  root-hints: \"{}\"\n  module-config: \"iterator\"\n  \
                 username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  logfile: \"\"\n  \
                 use-syslog: no\n  num-threads: 1\n  so-reuseport: no\nremote-control:\n  control-enable: no\n",
                hints.display(),
                run.display()
            ),
        )
        .unwrap();
        let args = ["-d", "-c", &config.display().to_string()].map(String::from);
        let host = ("unbound", "unbound");
        unbound = Some(start_role(&mut net, host, &program, &args, "start of service").await);
        check(
            "Unbound and our resolver agree, asked from the client",
            Duration::from_secs(30),
            async {
                for (name, rtype) in &questions {
                    let ours = ask(&net, "client", resolver_addr, name, *rtype)
                        .await
                        .unwrap();
                    let theirs = ask(&net, "client", unbound_addr, name, *rtype)
                        .await
                        .unwrap();
                    assert_eq!(
                        answer_set(&ours),
                        answer_set(&theirs),
                        "{name} {rtype}: ours, then Unbound's"
                    );
                }
                (
                    (),
                    format!("{} questions, the same rcode and records", questions.len()),
                )
            },
        )
        .await;
    }

    // 6. Server choice by round-trip time: with latency on each link, the
    //    resolver settles on the fastest of the domain's servers.
    let by_addr: BTreeMap<SocketAddr, &NameServerHost> = domain_servers
        .iter()
        .map(|s| (SocketAddr::new(s.ip.into(), 53), *s))
        .collect();
    let fastest = *domain_servers
        .iter()
        .min_by_key(|s| delays[&s.host])
        .unwrap();
    const QUESTIONS: usize = 32;
    const SETTLED: usize = 12;
    let favourite: String = check(
        "the resolver prefers the fastest server",
        Duration::from_secs(60),
        async {
            let mut chosen = Vec::new();
            let mut rtts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for i in 1..=QUESTIONS {
                let name = format!("rtt-{i}.{domain}");
                let answer = ask(&net, "client", resolver_addr, &name, RecordType::A)
                    .await
                    .unwrap();
                assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
                let events = trace.resolution_of(&name).await;
                let asked = asked_in(&events, &domain);
                let (addr, _, rtt) = asked.last().expect("a server of the domain was asked");
                let host = by_addr[addr].host.clone();
                rtts.entry(host.clone()).or_default().push(*rtt);
                chosen.push(host);
            }
            let settled = &chosen[QUESTIONS - SETTLED..];
            let on_fastest = settled.iter().filter(|h| **h == fastest.host).count();
            let per_server: Vec<String> = delays
                .iter()
                .map(|(host, delay)| {
                    let seen = rtts.get(host).map_or(&[][..], Vec::as_slice);
                    let median = {
                        let mut v = seen.to_vec();
                        v.sort();
                        v.get(v.len() / 2).map_or("-".into(), |us| format!("{:.1} ms", *us as f64 / 1000.0))
                    };
                    format!(
                        "{host} (+{} ms) asked {}×, median RTT {median}",
                        delay.as_millis(),
                        seen.len()
                    )
                })
                .collect();
            assert!(
                on_fastest * 3 >= SETTLED * 2,
                "the last {SETTLED} choices should be mostly {}: {chosen:?}",
                fastest.host
            );
            let favourite = domain_servers
                .iter()
                .max_by_key(|s| settled.iter().filter(|h| **h == s.host).count())
                .unwrap()
                .host
                .clone();
            (
                favourite,
                format!(
                    "latency by {latency_by}; {}; choices in order: {}; {on_fastest} of the last {SETTLED} to {}",
                    per_server.join(", "),
                    chosen.join(" "),
                    fastest.host
                ),
            )
        },
    )
    .await;

    // 6b. A change at the zone's primary (the server its SOA names) reaches
    //     every secondary, each a process on a host of its own: NOTIFY
    //     from the primary's address, then a transfer. An update from
    //     another host is refused; one from the primary's own host is not.
    let zone = topology
        .zones
        .iter()
        .find(|z| z.origin().to_ascii() == domain)
        .unwrap();
    let mname = match &zone.soa().data {
        hickory_proto::rr::RData::SOA(soa) => soa.mname.to_ascii(),
        _ => unreachable!("an SOA"),
    };
    let primary = *domain_servers
        .iter()
        .find(|s| format!("{}.", s.server).eq_ignore_ascii_case(&mname))
        .expect("the SOA names one of the zone's servers");
    check(
        "an update at the primary reaches every secondary (NOTIFY, AXFR)",
        Duration::from_secs(30),
        async {
            let domain = &domain;
            let at_primary = SocketAddr::new(primary.ip.into(), 53);
            let before = serial_at(&net, "client", at_primary, domain).await;
            let apex = domain.clone();
            let update = move || {
                let owner = Name::from_ascii(format!("changed.{apex}")).unwrap();
                let mut rrset = hickory_proto::rr::RecordSet::new(owner.clone(), RecordType::TXT, 60);
                rrset.insert(
                    hickory_proto::rr::Record::from_rdata(
                        owner,
                        60,
                        hickory_proto::rr::RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![
                            "changed at the primary".into(),
                        ])),
                    ),
                    0,
                );
                let zone = Name::from_ascii(&apex).unwrap();
                hickory_proto::op::update_message::append(rrset, zone, false, false)
            };
            let network = &net;
            let send = |host: String| {
                let message = update();
                async move {
                    network
                        .on(&host, move || async move {
                            exchange(at_primary, &message, Transport::Udp, Duration::from_secs(5))
                                .await
                                .map(|e| e.response.metadata.response_code)
                                .map_err(|e| e.to_string())
                        })
                        .await
                }
            };
            let from_client = send("client".into()).await;
            assert_eq!(from_client, Ok(ResponseCode::Refused), "from the client host");
            let from_primary = send(primary.host.clone()).await;
            assert_eq!(from_primary, Ok(ResponseCode::NoError), "from the primary's host");
            let want = before.wrapping_add(1);
            let mut caught_up = Vec::new();
            for secondary in domain_servers.iter().filter(|s| s.host != primary.host) {
                let at = SocketAddr::new(secondary.ip.into(), 53);
                let started = Instant::now();
                // The secondary is another process on another host: its
                // serial is polled over DNS, as an operator would, bounded.
                while serial_at(&net, "client", at, domain).await != want {
                    assert!(
                        started.elapsed() < Duration::from_secs(10),
                        "{} never reached serial {want}",
                        secondary.host
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                caught_up.push(format!("{} in {} ms", secondary.host, started.elapsed().as_millis()));
            }
            (
                (),
                format!(
                    "from the client: REFUSED; from {}'s host: NOERROR, serial {before} → {want}; at {want}: {}",
                    primary.host,
                    caught_up.join(", ")
                ),
            )
        },
    )
    .await;

    // 7. The favourite's link goes down mid-run: the resolver times out on
    //    it once (asked until its trace shows that), moves to another, and
    //    no client sees SERVFAIL.
    let down_host = *domain_servers.iter().find(|s| s.host == favourite).unwrap();
    net.set_link(&down_host.host, false).expect("link down");
    check(
        &format!("{}'s link down: the resolver moves on, no SERVFAIL", down_host.host),
        Duration::from_secs(90),
        async {
            let down = SocketAddr::new(down_host.ip.into(), 53);
            let mut met = 0;
            let mut answered_by: Vec<String> = Vec::new();
            let mut i = 0;
            // Until the dead server is met (the resolver explores another
            // now and then), then six more.
            let mut after = 6;
            while after > 0 {
                i += 1;
                assert!(i <= 24, "the resolver never met the dead server: {answered_by:?}");
                let name = format!("down-{i}.{domain}");
                let answer = ask(&net, "client", resolver_addr, &name, RecordType::A)
                    .await
                    .unwrap();
                let rcode = answer.metadata.response_code;
                assert_eq!(rcode, ResponseCode::NXDomain, "{name}: {answer:?}");
                let events = trace.resolution_of(&name).await;
                for (addr, response, _) in asked_in(&events, &domain) {
                    if addr == down {
                        // No answer: a timeout (or a local ICMP error).
                        assert!(
                            matches!(response, ResponseKind::Timeout | ResponseKind::Failure { .. }),
                            "{events:?}"
                        );
                        met += 1;
                    } else if response != ResponseKind::Timeout {
                        answered_by.push(by_addr[&addr].host.clone());
                    }
                }
                if met > 0 {
                    after -= 1;
                }
            }
            assert_eq!(answered_by.len(), i, "one live answer each: {answered_by:?}");
            let mut unbound_saw = String::new();
            if unbound.is_some() {
                let mut slowest = Duration::ZERO;
                let mut retried = 0;
                for i in 1..=8 {
                    let name = format!("unbound-down-{i}.{domain}");
                    let asked = Instant::now();
                    let (answer, tries) =
                        ask_like_a_stub(&net, "client", unbound_addr, &name, RecordType::A).await;
                    slowest = slowest.max(asked.elapsed());
                    retried += tries - 1;
                    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
                }
                unbound_saw = format!(
                    "; Unbound: 8 of 8 NXDOMAIN too (asked as a stub does, {retried} retries), the slowest in {} ms",
                    slowest.as_millis()
                );
            }
            (
                (),
                format!(
                    "{i} new names, {i} NXDOMAIN; {met} timeout(s) at {down}, answers from {}{unbound_saw}",
                    answered_by.join(" ")
                ),
            )
        },
    )
    .await;

    // Everything stops cleanly; the network leaves nothing behind.
    check("every role stops cleanly", Duration::from_secs(30), async {
        let count = roles.len() + 1;
        resolver.stop().await;
        for role in roles {
            role.stop().await;
        }
        if let Some(mut unbound) = unbound {
            let _ = unbound.child.start_kill();
            let _ = unbound.child.wait().await;
        }
        ((), format!("{count} dnstrail processes, SIGTERM, exit 0"))
    })
    .await;
    drop(net);
    let left = Network::leftovers(&prefix);
    assert!(left.is_empty(), "namespaces left: {left:?}");
    say(&format!(
        "done in {:.1} s; logs in {}",
        started.elapsed().as_secs_f64(),
        run.display()
    ));
}

/// Whether a program is on PATH, without saying SKIPPED (netem has its
/// own fallback and its own line).
fn tool_quietly(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}
