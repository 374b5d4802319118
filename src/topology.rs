//! Who serves what, where: the one description of the demo stack.
//!
//! `demo`, the role presets (`root`, `tld`, `auth`), the tests and the README
//! all read [`Topology::canonical`]. Every name server has its own loopback
//! address and all of them share one DNS port, because glue records carry
//! addresses, not ports: a real resolver that learns `ns-1.awsdns-01.com` is at
//! 127.0.0.4 will ask 127.0.0.4, on the one port it uses for everything.
//!
//! ```text
//!  role        server name                        address
//!  root        a.root-servers.net                 127.0.0.2
//!  .com TLD    a.gtld-servers.net                 127.0.0.3
//!  example.com ns-1.awsdns-01.com … ns-4.awsdns-04.com  127.0.0.4 … 127.0.0.7
//!  resolver                                       127.0.0.1
//!  web         (www.example.com)                  127.0.0.44
//! ```
//!
//! The addresses are the ones the zone files in `demo-zones/` publish as glue
//! and as `www`'s A record; the topology does not invent them, and a test
//! checks that the two agree.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The DNS port every role uses unless told otherwise: unprivileged, so the
/// demo runs without root. `--dns-port 53` lets unmodified resolvers in.
pub const DEFAULT_DNS_PORT: u16 = 5300;
/// The web server's default port.
pub const DEFAULT_WEB_PORT: u16 = 8080;
/// The resolver's control endpoint (cache, traces, metrics), when asked for.
pub const DEFAULT_CONTROL_PORT: u16 = 5380;

/// The part a name server plays in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The root zone: refers every question to a top-level domain.
    Root,
    /// A top-level domain (`com.`): refers to a domain's own name servers.
    Tld,
    /// The hosted zone's name servers: answer with authority (AA=1).
    Auth,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Tld => "tld",
            Role::Auth => "auth",
        }
    }
}

/// One name server host: its name in the DNS and the address it listens on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Host {
    pub name: String,
    pub ip: IpAddr,
}

/// A zone and the hosts that serve it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ZoneService {
    pub role: Role,
    /// The zone's apex, as the zone file's SOA names it.
    pub zone: String,
    pub file: PathBuf,
    pub hosts: Vec<Host>,
}

/// The whole stack: name servers, resolver and web server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Topology {
    /// The port every name server listens on, and the resolver asks on.
    pub dns_port: u16,
    pub services: Vec<ZoneService>,
    pub root_hints: PathBuf,
    /// Where stub clients (the browser, dig) reach the resolver.
    pub resolver: SocketAddr,
    /// The name the browser visits, and where its web server listens.
    pub site: String,
    pub web: SocketAddr,
}

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, d))
}

impl Topology {
    /// The canonical demo stack, reading zones from `zones_dir`
    /// (normally `demo-zones/`).
    pub fn canonical(zones_dir: impl AsRef<Path>) -> Topology {
        let dir = zones_dir.as_ref();
        let host = |name: &str, d: u8| Host {
            name: name.to_string(),
            ip: v4(d),
        };
        Topology {
            dns_port: DEFAULT_DNS_PORT,
            services: vec![
                ZoneService {
                    role: Role::Root,
                    zone: ".".into(),
                    file: dir.join("root.zone"),
                    hosts: vec![host("a.root-servers.net.", 2)],
                },
                ZoneService {
                    role: Role::Tld,
                    zone: "com.".into(),
                    file: dir.join("com.zone"),
                    hosts: vec![host("a.gtld-servers.net.", 3)],
                },
                ZoneService {
                    role: Role::Auth,
                    zone: "example.com.".into(),
                    file: dir.join("example.com.zone"),
                    hosts: (1..=4)
                        .map(|i| host(&format!("ns-{i}.awsdns-0{i}.com."), 3 + i))
                        .collect(),
                },
            ],
            root_hints: dir.join("root.hints"),
            resolver: SocketAddr::new(v4(1), DEFAULT_DNS_PORT),
            site: "www.example.com".into(),
            web: SocketAddr::new(v4(44), DEFAULT_WEB_PORT),
        }
    }

    /// The default `demo-zones/` directory: beside the binary's source tree
    /// when run from a checkout, else the current directory's.
    pub fn default_zones_dir() -> PathBuf {
        let here = PathBuf::from("demo-zones");
        if here.is_dir() {
            return here;
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo-zones")
    }

    /// The service of one role.
    pub fn service(&self, role: Role) -> &ZoneService {
        self.services
            .iter()
            .find(|s| s.role == role)
            .expect("every topology has a root, a TLD and an auth service")
    }

    /// Every name server host with its role, in the order of the chain.
    pub fn hosts(&self) -> impl Iterator<Item = (Role, &Host)> {
        self.services
            .iter()
            .flat_map(|s| s.hosts.iter().map(move |h| (s.role, h)))
    }

    /// The name of the server at `ip`, if it is one of ours.
    pub fn host_name(&self, ip: IpAddr) -> Option<&str> {
        self.hosts()
            .find(|(_, h)| h.ip == ip)
            .map(|(_, h)| h.name.as_str())
    }

    /// The addresses of the name servers called `which`: a role (`root`,
    /// `tld`, `auth`), a server's name (`a.root-servers.net`), or the first
    /// label of one (`ns-2` for ns-2.awsdns-02.com).
    pub fn find_hosts(&self, which: &str) -> Result<Vec<IpAddr>, String> {
        let which = which.trim().trim_end_matches('.').to_ascii_lowercase();
        let found: Vec<IpAddr> = self
            .hosts()
            .filter(|(role, host)| {
                let name = host.name.trim_end_matches('.').to_ascii_lowercase();
                role.as_str() == which
                    || name == which
                    || name.split('.').next() == Some(which.as_str())
            })
            .map(|(_, host)| host.ip)
            .collect();
        if found.is_empty() {
            let known: Vec<&str> = self.hosts().map(|(_, h)| h.name.as_str()).collect();
            return Err(format!(
                "no name server called `{which}`: try root, tld, auth, or one of {}",
                known.join(", ")
            ));
        }
        Ok(found)
    }

    /// The URL the browser visits.
    pub fn site_url(&self) -> String {
        format!("http://{}:{}/", self.site, self.web.port())
    }
}
