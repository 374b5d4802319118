//! The command line: one subcommand per role, `demo` for all of them, and
//! `init` to write the built-in zones and site out for editing.
//!
//! Only clap's types and the parsers of their values live here; `main.rs`
//! turns them into running roles. Addresses are given the same way
//! everywhere: `IP` or `IP:PORT` (`[v6]:PORT`), the port defaulting to the
//! role's.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::fault::Fault;
use crate::topology::{DEFAULT_DNS_PORT, DEFAULT_URL};

/// How a name becomes a page: every server of the DNS chain, a web server
/// and a browser, on this machine's loopback interface.
#[derive(Debug, Parser)]
#[command(name = "dnstrail", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start every role and follow the browser through the chain, step by step
    Demo(DemoArgs),
    /// Serve the root zone: refers every question to a top-level domain
    Root(NameServerArgs),
    /// Serve the top-level domains (com.): refer to each domain's servers
    Tld(NameServerArgs),
    /// Serve the domains below (example.com.), each server on its own addresses
    Auth(NameServerArgs),
    /// Serve every zone of the hierarchy, each name server on its own addresses
    Nameservers(NameServerArgs),
    /// Run the caching recursive resolver (the ISP's)
    Resolver(ResolverArgs),
    /// Serve the web site
    Web(WebArgs),
    /// Visit a URL like a browser: resolve through our resolver, then fetch
    Browse(BrowseArgs),
    /// Write the built-in zones and site to a directory, to edit and use
    Init(InitArgs),
    /// A shell (or COMMAND) whose whole internet is the chain, on the standard ports (Linux)
    Shell(ShellArgs),
}

/// An address to listen on or to ask: `IP` or `IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl Endpoint {
    /// The address, with `default_port` when none was given.
    pub fn with_port(self, default_port: u16) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(default_port))
    }

    /// As [`Endpoint::with_port`], for callers that take an optional address.
    pub fn to_socket_addr(self, default_port: u16) -> Option<SocketAddr> {
        Some(self.with_port(default_port))
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Endpoint {
                ip: addr.ip(),
                port: Some(addr.port()),
            });
        }
        text.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map(|ip| Endpoint { ip, port: None })
            .map_err(|_| format!("`{text}` is not an address (expected IP or IP:PORT)"))
    }
}

/// A network given as CIDR, or a single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not a network (expected e.g. 192.0.2.0/24)"))
}

/// `200ms`, `1.5s`, `2` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (try 200ms, 1.5s or 2)");
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, ""), |i| text.split_at(i));
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" | "" => value,
        "min" => value * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

/// Who may change state through the control endpoint.
#[derive(Debug, Clone, Default, Args)]
pub struct ControlAuth {
    /// Require this token for every state change (Authorization: Bearer TOKEN)
    #[arg(long, value_name = "TOKEN", conflicts_with = "control_token_file")]
    pub control_token: Option<String>,
    /// Read the control token from this file (its first line)
    #[arg(long, value_name = "FILE")]
    pub control_token_file: Option<PathBuf>,
}

impl ControlAuth {
    /// The token, read from its file if need be.
    pub fn token(&self) -> Result<Option<std::sync::Arc<str>>, String> {
        if let Some(token) = &self.control_token {
            return Ok(Some(token.as_str().into()));
        }
        let Some(file) = &self.control_token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--control-token-file {}: {e}", file.display()))?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(format!(
                "--control-token-file {}: the file is empty",
                file.display()
            ));
        }
        Ok(Some(token.into()))
    }
}

/// Options shared by `root`, `tld`, `auth` and `nameservers`.
#[derive(Debug, Args)]
pub struct NameServerArgs {
    /// Directory of zone files: the whole hierarchy, servers and addresses
    /// derived from it [default: the built-in demo zones]
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,
    /// A zone to serve, by name (`example.com.`) from --zones, or a zone
    /// file (repeatable) [default: the role's zones]
    #[arg(long = "zone", value_name = "ZONE|FILE")]
    pub zone: Vec<String>,
    /// Only the name server called NAME (`ns-2`, `ns-2.awsdns-02.com`) (repeatable)
    #[arg(long = "server", value_name = "NAME")]
    pub server: Vec<String>,
    /// Listen here instead of the servers' own addresses, IP or IP:PORT (repeatable)
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<Endpoint>,
    /// Port for addresses given without one
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_DNS_PORT)]
    pub dns_port: u16,
    /// Response-rate limiting: UDP answers per second per client network (/24, /56)
    #[arg(long, value_name = "QPS")]
    pub rrl: Option<u32>,
    /// Let clients in this network transfer whole zones, AXFR over TCP (repeatable)
    #[arg(long = "allow-axfr", value_name = "CIDR", value_parser = parse_network)]
    pub allow_axfr: Vec<IpNet>,
    /// Also accept dynamic updates (nsupdate, RFC 2136) from this network
    /// (repeatable); loopback always may. With --tsig, updates must be signed
    #[arg(long = "allow-update", value_name = "CIDR", value_parser = parse_network)]
    pub allow_update: Vec<IpNet>,
    /// Misbehave on purpose: drop, servfail, refused, lame, truncate, delay=DURATION,
    /// and with --dnssec bad-signature, expired-signature, missing-ds or wrong-ds
    #[arg(long, value_name = "KIND")]
    pub fault: Option<Fault>,
    /// Answer NSID (dig +nsid) with each server's name (RFC 5001)
    #[arg(long)]
    pub nsid: bool,
    /// Refuse version.bind and version.server instead of telling the version
    #[arg(long)]
    pub hide_version: bool,
    /// The UDP payload size to advertise in EDNS (RFC 6891 §6.2.3)
    #[arg(long, value_name = "BYTES", default_value_t = crate::serve::EDNS_PAYLOAD,
          value_parser = clap::value_parser!(u16).range(512..))]
    pub edns_size: u16,
    /// A TSIG key (RFC 8945), NAME:ALGORITHM:SECRET or NAME:SECRET (hmac-sha256,
    /// base64 secret); signed queries, transfers and updates are checked (repeatable)
    #[arg(long, value_name = "KEY", value_parser = crate::serve::tsig::parse_key)]
    pub tsig: Vec<crate::serve::tsig::TsigKey>,
    /// Serve the control endpoint (servers, faults) on this loopback address
    #[arg(long, value_name = "ADDR")]
    pub control: Option<Endpoint>,
    #[command(flatten)]
    pub control_auth: ControlAuth,
    #[command(flatten)]
    pub dnssec: DnssecArgs,
}

/// Signing the zones (`--dnssec`), for the name servers and the demo.
#[derive(Debug, Clone, Args)]
pub struct DnssecArgs {
    /// Sign every zone (a KSK and a ZSK each, NSEC), publish each child's DS
    /// in its parent, and write the root's trust anchor
    #[arg(long)]
    pub dnssec: bool,
    /// Where the zones' keys are kept, made on first use (mode 0600) [default:
    /// keys/ in the zone directory, or ~/.local/state/dnstrail/keys]
    #[arg(long, value_name = "DIR", requires = "dnssec")]
    pub keys: Option<PathBuf>,
    /// The algorithm of new keys: 13 (ECDSAP256SHA256), 14 or 15 (ED25519)
    #[arg(long, value_name = "ALG", default_value = "13", requires = "dnssec",
          value_parser = crate::dnssec::keys::parse_algorithm)]
    pub algorithm: hickory_proto::dnssec::Algorithm,
}

impl Default for DnssecArgs {
    fn default() -> DnssecArgs {
        DnssecArgs {
            dnssec: false,
            keys: None,
            algorithm: hickory_proto::dnssec::Algorithm::ECDSAP256SHA256,
        }
    }
}

impl DnssecArgs {
    /// The key store, when signing; `zones` is the zone directory given.
    pub fn key_store(
        &self,
        zones: Option<&std::path::Path>,
    ) -> Result<Option<crate::dnssec::KeyStore>, String> {
        if !self.dnssec {
            return Ok(None);
        }
        let dir = match &self.keys {
            Some(dir) => dir.clone(),
            None => crate::dnssec::keys::default_dir(zones),
        };
        crate::dnssec::KeyStore::open(&dir, self.algorithm).map(Some)
    }
}

#[derive(Debug, Args)]
pub struct ResolverArgs {
    /// Address stub clients query, IP or IP:PORT (repeatable)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub listen: Vec<Endpoint>,
    /// Where the root servers are, as a root hints file [default: the root
    /// zone's NS and addresses, from --zones]
    #[arg(long, value_name = "FILE")]
    pub root_hints: Option<PathBuf>,
    /// Directory of zone files whose root zone gives the root hints
    /// [default: the built-in demo zones]
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,
    /// Port of every upstream name server (glue carries addresses, not ports);
    /// also the listening port when --listen gives none
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_DNS_PORT)]
    pub dns_port: u16,
    /// Send each server only the labels it needs to see (RFC 9156)
    #[arg(long)]
    pub qname_minimization: bool,
    /// Send names upstream in the case asked, not in random case checked
    /// against the answer (0x20, as Unbound's use-caps-for-id)
    #[arg(long = "no-0x20")]
    pub no_0x20: bool,
    /// Also answer clients in this network (repeatable); loopback is always allowed
    #[arg(long = "allow", value_name = "CIDR", value_parser = parse_network)]
    pub allow: Vec<IpNet>,
    /// Serve cache, traces and metrics over HTTP on this loopback address
    #[arg(long, value_name = "ADDR")]
    pub control: Option<Endpoint>,
    #[command(flatten)]
    pub control_auth: ControlAuth,
    /// Print each resolution's trace events as JSON lines on stdout
    #[arg(long, conflicts_with = "story")]
    pub json: bool,
    /// Tell each resolution on stdout as the demo tells it
    #[arg(long)]
    pub story: bool,
    /// Most RRsets, delegations and negative answers kept in the cache (a
    /// quarter of them at most negative, so a flood of names that do not
    /// exist cannot push out the answers in use)
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub cache_size: usize,
    /// When every server fails, answer with an expired record, TTL 30 (RFC 8767)
    #[arg(long)]
    pub serve_stale: bool,
    /// Cache answers and denials no longer than this, whatever their TTL (as
    /// Unbound's cache-max-ttl); delegations keep theirs, up to a week
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    pub max_ttl: u32,
    /// Cache answers at least this long; at 0, records with TTL 0 are answered but not cached
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub min_ttl: u32,
    /// Questions per second each client address may ask; more get REFUSED
    #[arg(long, value_name = "QPS")]
    pub rate_limit: Option<u32>,
    /// Upstream questions in flight at once, over all clients (a quarter of
    /// them at most to one zone's servers)
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_outstanding: usize,
    /// Draw the choices among a zone's servers from this seed, to repeat a run
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Validate DNSSEC from this trust anchor (a file of DS or DNSKEY lines, or
    /// named.conf's trust-anchors { }), as written by `--dnssec` name servers
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WebArgs {
    /// Directory of zone files that say where the site is [default: the built-in demo zones]
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,
    /// The site's URL: the server listens on the addresses the zones give its host
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    pub site: String,
    /// Listen here instead, IP or IP:PORT (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<Endpoint>,
    /// Directory of the site's files [default: the built-in site]
    #[arg(long = "static", alias = "root", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// A host name served (repeatable) [default: every name the zones point at the server]
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
    /// Serve the site whatever the Host header says
    #[arg(long)]
    pub any_host: bool,
}

#[derive(Debug, Args)]
pub struct BrowseArgs {
    /// The page to visit (`www.example.com` alone means http://)
    #[arg(default_value = DEFAULT_URL)]
    pub url: String,
    /// The recursive resolver to ask (and nothing else: no /etc/hosts), IP or IP:PORT
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub resolver: Endpoint,
    /// Print the visit as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Give up on the whole visit after this long (10, 10s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// What `demo` and `shell` start, the same way: the hierarchy, the site,
/// what fails, and DNSSEC.
#[derive(Debug, Clone, Default, Args)]
pub struct StackArgs {
    /// Directory of zone files: any hierarchy [default: the built-in demo zones]
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,
    /// Directory of the web site [default: the built-in site]
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Name servers that fail: root, tld, auth, a zone, or names such as ns-2 (comma-separated)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub fail: Vec<String>,
    /// How they fail: drop, servfail, refused, lame, truncate, delay=DURATION, and with
    /// --dnssec bad-signature, expired-signature, missing-ds, wrong-ds [default: drop]
    #[arg(long, value_name = "KIND")]
    pub fault: Option<Fault>,
    /// Draw the resolver's choices among servers from this seed, to repeat a run
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub dnssec: DnssecArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Visit this URL (repeatable, in order) [default: `http://www.example.com:8080/`]
    #[arg(long = "visit", value_name = "URL")]
    pub visit: Vec<String>,
    /// Ask the resolver NAME/TYPE (e.g. blog.example.com/AAAA), as dig would (repeatable)
    #[arg(long = "ask", value_name = "NAME/TYPE")]
    pub ask: Vec<String>,
    /// Port every name server listens on, and the resolver (0: any port free on all addresses)
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_DNS_PORT)]
    pub dns_port: u16,
    /// Port of the web server [default: the URL's]
    #[arg(long, value_name = "PORT")]
    pub web_port: Option<u16>,
    /// The control endpoint's address [default: 127.0.0.1:5380]
    #[arg(long, value_name = "ADDR")]
    pub control: Option<Endpoint>,
    #[command(flatten)]
    pub control_auth: ControlAuth,
    /// Write the trace events as JSON lines instead of the story
    #[arg(long)]
    pub json: bool,
    /// Leave the stack running after the visits, until Ctrl-C
    #[arg(long)]
    pub keep_running: bool,
}

/// `dnstrail shell`: the chain in network and mount namespaces of its own,
/// where unmodified programs (`curl`, `dig +trace`, a browser) use it with no
/// flags. The options are `demo`'s, where they apply.
#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The site's URL: its host's addresses in the zones, its port
    /// [default: the demo's URL on port 80]
    #[arg(long, value_name = "URL")]
    pub site: Option<String>,
    /// Print how to enter from another terminal (nsenter), and keep running
    /// after COMMAND ends, until Ctrl-C
    #[arg(long)]
    pub keep: bool,
    /// What to run inside, after `--` [default: $SHELL]
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Set by `dnstrail shell` on the process it starts inside the namespaces
    #[arg(long, hide = true)]
    pub inside: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write `zones/` and `site/` (created if missing; existing files are kept)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn values_parse_as_people_write_them() {
        let e: Endpoint = "127.0.0.4".parse().unwrap();
        assert_eq!(e.with_port(53), "127.0.0.4:53".parse().unwrap());
        let e: Endpoint = "[::1]:5300".parse().unwrap();
        assert_eq!(e.with_port(53), "[::1]:5300".parse().unwrap());
        assert!("nope".parse::<Endpoint>().is_err());
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(
            parse_network("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
    }

    #[test]
    fn the_resolver_cache_ttls_default_to_a_day_and_zero() {
        use clap::Parser;
        let ttls = |args: &[&str]| match Cli::parse_from(args).command {
            Command::Resolver(r) => (r.min_ttl, r.max_ttl),
            _ => unreachable!(),
        };
        assert_eq!(ttls(&["dnstrail", "resolver"]), (0, 86_400));
        assert_eq!(
            ttls(&["dnstrail", "resolver", "--min-ttl", "5", "--max-ttl", "300"]),
            (5, 300)
        );
    }
}
