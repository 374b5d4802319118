//! The implementations under test, each able to serve a hierarchy or to
//! resolve over one:
//!
//! ```text
//!   name servers (port 53 of the addresses the zones give them)
//!     dnstrail   one process per tier: `dnstrail root|tld|auth --zones DIR`
//!     NSD        one `nsd -d` per simulated server, serving that server's zones
//!     Knot DNS   one `knotd` per simulated server
//!   resolvers (their own addresses, port 53)
//!     dnstrail   `dnstrail resolver --root-hints FILE --control …`
//!     Unbound    `unbound -d`, the same root hints, `module-config: iterator`
//! ```
//!
//! One process per server, not one serving every zone: a server holding
//! the root, `com.` and `example.com.` together answers from the deepest
//! zone and never refers (NOTES-peers.md). Port 53, because Unbound asks
//! name servers nowhere else.
//!
//! A dnstrail role is ready when it prints `dnstrail: listening dns …`;
//! the others when each of their addresses answers a real question (the
//! SOA of a zone it serves, with authority; for Unbound, `localhost.`,
//! which it answers itself).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dnstrail::exchange::Transport;
use dnstrail::topology::{Server, Tier};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::process::Command;

use crate::ask::{Ask, ask};
use crate::hierarchy::Hierarchy;
use crate::process::{Process, dns_ports, require_free};
use crate::questions::Question;
use crate::report::{Report, find_tool};

/// The port every name server and resolver listens on.
pub const DNS_PORT: u16 = 53;
/// Where our resolver listens: where stub clients look by default, and what
/// the private `/etc/resolv.conf` of `make interop` names.
pub const OUR_RESOLVER: IpAddr = dnstrail::topology::DEFAULT_RESOLVER_IP;
/// Where Unbound listens: an address no zone gives a name server.
pub const UNBOUND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
/// Our resolver's control endpoint.
pub const CONTROL_PORT: u16 = dnstrail::topology::DEFAULT_CONTROL_PORT;
/// How long a server may take from launch to its first answer.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The dnstrail binary this test target was built with.
pub fn dnstrail() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dnstrail"))
}

/// An implementation of authoritative name servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameServers {
    Dnstrail,
    Nsd,
    Knot,
}

impl NameServers {
    pub const ALL: [NameServers; 3] = [NameServers::Dnstrail, NameServers::Nsd, NameServers::Knot];

    pub fn label(self) -> &'static str {
        match self {
            NameServers::Dnstrail => "dnstrail",
            NameServers::Nsd => "NSD",
            NameServers::Knot => "Knot DNS",
        }
    }

    /// The program it needs, if not ours.
    pub fn program(self) -> Option<&'static str> {
        match self {
            NameServers::Dnstrail => None,
            NameServers::Nsd => Some("nsd"),
            NameServers::Knot => Some("knotd"),
        }
    }

    /// Every name server of `hierarchy`, started and answering; one check
    /// line per process. An error if any did not start (the others are
    /// stopped).
    pub async fn serve(
        self,
        hierarchy: &Hierarchy,
        report: &mut Report,
    ) -> Result<Serving, String> {
        let addrs: Vec<SocketAddr> = hierarchy
            .server_addrs()
            .into_iter()
            .map(|ip| SocketAddr::new(ip, DNS_PORT))
            .collect();
        let check = format!("{} serves {}", self.label(), hierarchy.name);
        if let Err(why) = require_free(&dns_ports(addrs)) {
            report.fail(&check, &why);
            return Err(why);
        }
        let dir = report.subdir(&format!("{}/{}", slug(self.label()), "servers"));
        let mut processes = Vec::new();
        let mut failed = None;
        for (name, servers) in self.processes(hierarchy) {
            let started = match self {
                NameServers::Dnstrail => {
                    start_dnstrail_name_servers(&name, &servers, hierarchy, &dir).await
                }
                NameServers::Nsd => start_nsd(servers[0], hierarchy, &dir).await,
                NameServers::Knot => start_knot(servers[0], hierarchy, &dir).await,
            };
            let what = format!("{} {name} started", self.label());
            match started {
                Ok((process, detail)) => {
                    report.pass(what, detail);
                    processes.push(process);
                }
                Err(why) => {
                    report.fail(what, &why);
                    failed.get_or_insert(why);
                }
            }
        }
        match failed {
            Some(why) => Err(why),
            None => Ok(Serving {
                by: self,
                processes,
            }),
        }
    }

    /// How the servers are grouped into processes, each with its name:
    /// dnstrail by tier (as the README runs it), the others one per server.
    fn processes(self, hierarchy: &Hierarchy) -> Vec<(String, Vec<&Server>)> {
        let servers = &hierarchy.topology.servers;
        match self {
            NameServers::Dnstrail => {
                let tiers_of = |s: &Server| -> Vec<Tier> {
                    let mut tiers: Vec<Tier> = s
                        .zones
                        .iter()
                        .filter_map(|z| z.parse().ok())
                        .map(|apex| Tier::of(&apex))
                        .collect();
                    tiers.dedup();
                    tiers
                };
                // A server holding zones of two tiers cannot be split by
                // tier: then one process serves them all.
                if servers.iter().any(|s| tiers_of(s).len() > 1) {
                    return vec![("nameservers".to_string(), servers.iter().collect())];
                }
                let mut by_tier: BTreeMap<Tier, Vec<&Server>> = BTreeMap::new();
                for server in servers {
                    by_tier.entry(tiers_of(server)[0]).or_default().push(server);
                }
                by_tier
                    .into_iter()
                    .map(|(tier, servers)| (tier.command().to_string(), servers))
                    .collect()
            }
            NameServers::Nsd | NameServers::Knot => servers
                .iter()
                .map(|s| (format!("as {} ({})", s.name, s.zones.join(" ")), vec![s]))
                .collect(),
        }
    }
}

/// Name servers running; stopped on drop.
pub struct Serving {
    pub by: NameServers,
    processes: Vec<Process>,
}

impl Serving {
    /// SIGTERM to each process: how each stopped.
    pub async fn stop(self) -> Vec<(String, Result<std::process::ExitStatus, String>)> {
        let mut out = Vec::new();
        for process in self.processes {
            let name = process.name.clone();
            out.push((name, process.stop().await));
        }
        out
    }
}

/// A file-system friendly form of a label (`Knot DNS` → `knot-dns`).
pub fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

async fn start_dnstrail_name_servers(
    role: &str,
    servers: &[&Server],
    hierarchy: &Hierarchy,
    dir: &Path,
) -> Result<(Process, String), String> {
    let mut command = Command::new(dnstrail());
    command
        .arg(role)
        .arg("--zones")
        .arg(&hierarchy.dir)
        .args(["--dns-port", &DNS_PORT.to_string()]);
    let mut process = Process::start(
        &format!("dnstrail {role}"),
        command,
        &dir.join(format!("dnstrail-{role}.log")),
    )?;
    let bound = process.listening("dns").await?;
    let wanted: Vec<SocketAddr> = servers
        .iter()
        .flat_map(|s| s.addrs.iter().map(|ip| SocketAddr::new(*ip, DNS_PORT)))
        .collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|a| !bound.contains(a))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "dnstrail {role} listens on {bound:?}, not on {}",
            missing.join(" ")
        ));
    }
    let shown: Vec<String> = bound.iter().map(ToString::to_string).collect();
    Ok((process, format!("listening dns {}", shown.join(" "))))
}

/// The zone files a server serves, by apex.
fn files_of(server: &Server, hierarchy: &Hierarchy) -> Vec<(String, PathBuf)> {
    hierarchy
        .zone_files()
        .into_iter()
        .filter(|(apex, _)| server.zones.contains(apex))
        .collect()
}

async fn start_nsd(
    server: &Server,
    hierarchy: &Hierarchy,
    dir: &Path,
) -> Result<(Process, String), String> {
    let nsd = find_tool("nsd").ok_or("nsd is not installed")?;
    let home = dir.join(format!("nsd-{}", slug(&server.name)));
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let mut conf = String::from(
        "# One NSD instance: one name server of the hierarchy (tests/interop)\nserver:\n",
    );
    for ip in &server.addrs {
        conf.push_str(&format!("    ip-address: {ip}\n"));
    }
    let home_s = home.display();
    conf.push_str(&format!(
        "    port: {DNS_PORT}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    reuseport: no
    username: \"\"
    chroot: \"\"
    zonesdir: \"{home_s}\"
    database: \"\"
    zonelistfile: \"{home_s}/zone.list\"
    xfrdfile: \"{home_s}/xfrd.state\"
    xfrdir: \"{home_s}\"
    pidfile: \"{home_s}/nsd.pid\"
    verbosity: 1
    hide-version: no
    identity: \"{name}\"
    # Every question gets its answer: no response rate limiting.
    rrl-ratelimit: 0
remote-control:
    control-enable: no
",
        name = server.name
    ));
    for (apex, file) in files_of(server, hierarchy) {
        conf.push_str(&format!(
            "zone:\n    name: \"{apex}\"\n    zonefile: \"{}\"\n",
            file.display()
        ));
    }
    let conf_path = home.join("nsd.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let mut command = Command::new(nsd);
    command.arg("-d").arg("-c").arg(&conf_path);
    let process = Process::start(
        &format!("nsd {}", server.name),
        command,
        &dir.join(format!("nsd-{}.log", slug(&server.name))),
    )?;
    ready_when_answering(process, server).await
}

async fn start_knot(
    server: &Server,
    hierarchy: &Hierarchy,
    dir: &Path,
) -> Result<(Process, String), String> {
    let knotd = find_tool("knotd").ok_or("knotd is not installed")?;
    let home = dir.join(format!("knot-{}", slug(&server.name)));
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let listen: Vec<String> = server
        .addrs
        .iter()
        .map(|ip| format!("{ip}@{DNS_PORT}"))
        .collect();
    let home_s = home.display();
    let mut conf = format!(
        "# One Knot DNS instance: one name server of the hierarchy (tests/interop)
server:
    rundir: \"{home_s}\"
    listen: [ {listen} ]
    identity: \"{name}\"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: \"{home_s}\"
template:
  - id: default
    storage: \"{home_s}\"
    # Serve the files as they are: no journal, no writing back.
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
",
        listen = listen.join(", "),
        name = server.name
    );
    for (apex, file) in files_of(server, hierarchy) {
        conf.push_str(&format!(
            "  - domain: \"{apex}\"\n    file: \"{}\"\n",
            file.display()
        ));
    }
    let conf_path = home.join("knot.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let mut command = Command::new(knotd);
    command.arg("-c").arg(&conf_path);
    let process = Process::start(
        &format!("knotd {}", server.name),
        command,
        &dir.join(format!("knot-{}.log", slug(&server.name))),
    )?;
    ready_when_answering(process, server).await
}

/// Poll each address of `server` with the SOA question of each zone it
/// serves until it answers with authority, within [`READY_WITHIN`].
async fn ready_when_answering(
    mut process: Process,
    server: &Server,
) -> Result<(Process, String), String> {
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    let started = std::time::Instant::now();
    let transcript = process.log.with_extension("readiness.txt");
    for ip in &server.addrs {
        for zone in &server.zones {
            let question = Ask::norec(&Question::parse(zone, RecordType::SOA), Transport::Udp);
            let addr = SocketAddr::new(*ip, DNS_PORT);
            loop {
                if let Some(status) = process.exited() {
                    return Err(format!(
                        "{} exited at start ({status}): {}",
                        process.name,
                        process.last_words()
                    ));
                }
                let answered = ask(addr, &question, &transcript).await;
                match answered {
                    Ok(reply)
                        if reply.message.metadata.response_code == ResponseCode::NoError
                            && reply.message.metadata.authoritative =>
                    {
                        break;
                    }
                    _ if tokio::time::Instant::now() >= deadline => {
                        return Err(format!(
                            "{} did not answer {zone} SOA on {addr} with authority within {} s (log: {}): {}",
                            process.name,
                            READY_WITHIN.as_secs(),
                            process.log.display(),
                            process.last_words()
                        ));
                    }
                    // Not up yet: ask again shortly (bounded by the deadline).
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }
    }
    let addrs: Vec<String> = server
        .addrs
        .iter()
        .map(|ip| SocketAddr::new(*ip, DNS_PORT).to_string())
        .collect();
    Ok((
        process,
        format!(
            "answering {} on {} after {} ms",
            server.zones.join(" "),
            addrs.join(" "),
            started.elapsed().as_millis()
        ),
    ))
}

/// An implementation of a caching recursive resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolvers {
    Dnstrail,
    Unbound,
}

impl Resolvers {
    pub fn label(self) -> &'static str {
        match self {
            Resolvers::Dnstrail => "dnstrail resolver",
            Resolvers::Unbound => "Unbound",
        }
    }

    pub fn program(self) -> Option<&'static str> {
        match self {
            Resolvers::Dnstrail => None,
            Resolvers::Unbound => Some("unbound"),
        }
    }

    pub fn addr(self) -> SocketAddr {
        match self {
            Resolvers::Dnstrail => SocketAddr::new(OUR_RESOLVER, DNS_PORT),
            Resolvers::Unbound => SocketAddr::new(UNBOUND, DNS_PORT),
        }
    }

    /// Start it over `hierarchy`'s root hints, with an empty cache.
    pub async fn start(self, hierarchy: &Hierarchy, dir: &Path) -> Result<Resolving, String> {
        let addr = self.addr();
        if let Some(server) = hierarchy.topology.server_at(addr.ip()) {
            return Err(format!(
                "{} is the address of name server {} in {}: the {} needs another",
                addr.ip(),
                server.name,
                hierarchy.name,
                self.label()
            ));
        }
        let control = SocketAddr::new(addr.ip(), CONTROL_PORT);
        let mut ports = dns_ports([addr]);
        if self == Resolvers::Dnstrail {
            ports.push((crate::process::Proto::Tcp, control));
        }
        require_free(&ports)?;
        match self {
            Resolvers::Dnstrail => {
                let mut command = Command::new(dnstrail());
                command
                    .arg("resolver")
                    .arg("--listen")
                    .arg(addr.to_string())
                    .args(["--dns-port", &DNS_PORT.to_string()])
                    .arg("--root-hints")
                    .arg(&hierarchy.hints)
                    .arg("--control")
                    .arg(control.to_string());
                let mut process = Process::start(
                    "dnstrail resolver",
                    command,
                    &dir.join("dnstrail-resolver.log"),
                )?;
                process.listening("dns").await?;
                Ok(Resolving {
                    by: self,
                    addr,
                    control: Some(control),
                    process,
                })
            }
            Resolvers::Unbound => {
                let unbound = find_tool("unbound").ok_or("unbound is not installed")?;
                let conf_path = dir.join("unbound.conf");
                std::fs::write(&conf_path, unbound_conf(hierarchy, addr.ip(), dir))
                    .map_err(|e| e.to_string())?;
                let mut command = Command::new(unbound);
                command.arg("-d").arg("-c").arg(&conf_path);
                let process = Process::start("unbound", command, &dir.join("unbound.log"))?;
                let resolving = Resolving {
                    by: self,
                    addr,
                    control: None,
                    process,
                };
                resolving.ready().await?;
                Ok(resolving)
            }
        }
    }
}

/// Unbound as an unmodified resolver over the hierarchy: no trust anchor
/// (the zones are unsigned), loopback name servers allowed, and the
/// special-use top-level domains it blocks by default (RFC 6761: `test.`,
/// `invalid.`…) let through where the hierarchy has them.
fn unbound_conf(hierarchy: &Hierarchy, ip: IpAddr, dir: &Path) -> String {
    const BLOCKED_BY_DEFAULT: [&str; 5] = ["test.", "invalid.", "localhost.", "onion.", "local."];
    let mut nodefault = String::new();
    for tld in hierarchy.tlds() {
        if BLOCKED_BY_DEFAULT.contains(&tld.as_str()) {
            nodefault.push_str(&format!("    local-zone: \"{tld}\" nodefault\n"));
        }
    }
    format!(
        "# Unbound over the hierarchy {name} (tests/interop)
server:
    verbosity: 1
    interface: {ip}
    port: {DNS_PORT}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    # The name servers live on loopback addresses.
    do-not-query-localhost: no
    root-hints: \"{hints}\"
    module-config: \"iterator\"
    username: \"\"
    chroot: \"\"
    directory: \"{dir}\"
    pidfile: \"{dir}/unbound.pid\"
    logfile: \"\"
    use-syslog: no
    num-threads: 1
    so-reuseport: no
{nodefault}remote-control:
    control-enable: no
",
        name = hierarchy.name,
        hints = hierarchy.hints.display(),
        dir = dir.display(),
    )
}

/// A resolver running; stopped on drop.
pub struct Resolving {
    pub by: Resolvers,
    pub addr: SocketAddr,
    /// dnstrail's control endpoint.
    pub control: Option<SocketAddr>,
    process: Process,
}

impl Resolving {
    /// Unbound answers `localhost.` itself: a question that needs none of
    /// the name servers.
    async fn ready(&self) -> Result<(), String> {
        let question = Ask::stub(&Question::parse("localhost.", RecordType::A));
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let transcript = self.process.log.with_extension("readiness.txt");
        loop {
            match ask(self.addr, &question, &transcript).await {
                Ok(_) => return Ok(()),
                Err(why) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "{} not answering on {} within {} s ({why}): {}",
                        self.by.label(),
                        self.addr,
                        READY_WITHIN.as_secs(),
                        self.process.last_words()
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    pub async fn stop(self) -> Result<std::process::ExitStatus, String> {
        self.process.stop().await
    }
}

/// `dnstrail web` for the hierarchy's site, where the zones put it.
pub async fn start_web(
    hierarchy: &Hierarchy,
    site: &str,
    dir: &Path,
) -> Result<(Process, Vec<SocketAddr>), String> {
    let placed = hierarchy
        .topology
        .place_site(&[site.to_string()], None)
        .map_err(|e| format!("the zones place no web server: {e}"))?;
    require_free(
        &placed
            .addrs
            .iter()
            .map(|a| (crate::process::Proto::Tcp, *a))
            .collect::<Vec<_>>(),
    )?;
    let mut command = Command::new(dnstrail());
    command
        .arg("web")
        .arg("--zones")
        .arg(&hierarchy.dir)
        .arg("--site")
        .arg(site);
    let mut process = Process::start("dnstrail web", command, &dir.join("dnstrail-web.log"))?;
    let addrs = process.listening("http").await?;
    Ok((process, addrs))
}

/// `NSD 4.6.1, Knot DNS 3.2.6, …`: the versions of the tools found.
pub async fn versions(dir: &Path) -> String {
    let mut found = Vec::new();
    for (tool, args, label) in [
        ("nsd", &["-v"][..], "NSD"),
        ("knotd", &["-V"][..], "Knot DNS"),
        ("unbound", &["-V"][..], "Unbound"),
        ("dig", &["-v"][..], "dig"),
        ("kdig", &["-V"][..], "kdig"),
        ("curl", &["-V"][..], "curl"),
        ("chromium", &["--version"][..], "Chromium"),
    ] {
        let Some(path) = find_tool(tool) else {
            found.push(format!("{label} missing"));
            continue;
        };
        let mut command = Command::new(path);
        command.args(args);
        let version = crate::process::run(
            command,
            Duration::from_secs(10),
            &dir.join(format!("version-{tool}.txt")),
        )
        .await
        .map(|o| {
            let text = format!("{}{}", o.stdout, o.stderr);
            text.split_whitespace()
                .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
                .unwrap_or("?")
                .trim_end_matches(',')
                .to_string()
        })
        .unwrap_or_else(|e| e);
        found.push(format!("{label} {version}"));
    }
    found.join(", ")
}
