//! The command line: one subcommand per role, plus `demo` for all of them.
//!
//! Only clap's types live here; `main.rs` turns them into running roles.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::topology::DEFAULT_DNS_PORT;

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
    /// Serve the root zone (a.root-servers.net): refers to the TLD servers
    Root(NameServerArgs),
    /// Serve the .com zone (a.gtld-servers.net): refers to example.com's servers
    Tld(NameServerArgs),
    /// Serve the example.com hosted zone on its four name servers' addresses
    Auth(NameServerArgs),
    /// Run the caching recursive resolver (the ISP's)
    Resolver(ResolverArgs),
    /// Serve the web site of www.example.com
    Web(WebArgs),
    /// Visit a URL like a browser: resolve through our resolver, then fetch
    Browse(BrowseArgs),
}

/// Options shared by `root`, `tld` and `auth`; each fills in its defaults from
/// the demo topology.
#[derive(Debug, Args)]
pub struct NameServerArgs {
    /// Zone file to serve (repeatable) [default: the role's file in demo-zones/]
    #[arg(long = "zone", value_name = "FILE")]
    pub zones: Vec<PathBuf>,
    /// Address to listen on, as IP or IP:PORT (repeatable) [default: the role's addresses]
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Port for addresses given without one
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_DNS_PORT)]
    pub dns_port: u16,
    /// Response-rate limiting: UDP answers per second per client network (/24, /56)
    #[arg(long, value_name = "QPS")]
    pub rrl: Option<u32>,
    /// Let clients in this network transfer whole zones, AXFR over TCP (repeatable)
    #[arg(long = "allow-axfr", value_name = "CIDR")]
    pub allow_axfr: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ResolverArgs {
    /// Address stub clients query, as IP or IP:PORT
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub listen: String,
    /// Where the root servers are [default: demo-zones/root.hints]
    #[arg(long, value_name = "FILE")]
    pub root_hints: Option<PathBuf>,
    /// Port of every upstream name server (glue carries addresses, not ports);
    /// also the listening port when --listen gives none
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_DNS_PORT)]
    pub dns_port: u16,
    /// Send each server only the labels it needs to see (RFC 9156)
    #[arg(long)]
    pub qname_minimization: bool,
    /// Also answer clients in this network (repeatable); loopback is always allowed
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Serve cache, traces and metrics over HTTP on this loopback address
    #[arg(long, value_name = "ADDR")]
    pub control: Option<SocketAddr>,
    /// Print each resolution's trace events as JSON lines on stdout
    #[arg(long)]
    pub json: bool,
    /// Most RRsets, delegations and negative answers kept in the cache
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub cache_size: usize,
    /// When every server fails, answer with an expired record, TTL 30 (RFC 8767)
    #[arg(long)]
    pub serve_stale: bool,
    /// Questions per second each client address may ask; more get REFUSED (0: no limit)
    #[arg(long, value_name = "QPS", default_value_t = 0)]
    pub rate_limit: u32,
    /// Upstream questions in flight at once, over all clients
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_outstanding: usize,
}

#[derive(Debug, Args)]
pub struct WebArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.44:8080")]
    pub listen: SocketAddr,
    /// Directory of the site [default: static/]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The virtual host served; other Host headers get 404
    #[arg(long, value_name = "NAME", default_value = "www.example.com")]
    pub host: String,
    /// Serve the site whatever the Host header says
    #[arg(long)]
    pub any_host: bool,
}

#[derive(Debug, Args)]
pub struct BrowseArgs {
    /// The page to visit
    #[arg(default_value = "http://www.example.com:8080/")]
    pub url: String,
    /// The recursive resolver to ask (and nothing else: no /etc/hosts)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5300")]
    pub resolver: SocketAddr,
    /// Print the visit as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Give up on the whole visit after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the zone files and root hints
    #[arg(long, value_name = "DIR")]
    pub zones: Option<PathBuf>,
    /// Directory of the web site
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// Port every name server listens on (0: any port free on all addresses)
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_DNS_PORT)]
    pub dns_port: u16,
    /// Port of the web server (0: any free port)
    #[arg(long, value_name = "PORT", default_value_t = crate::topology::DEFAULT_WEB_PORT)]
    pub web_port: u16,
    /// Write the trace events as JSON lines instead of the story
    #[arg(long)]
    pub json: bool,
    /// Leave the stack running after the three visits, until Ctrl-C
    #[arg(long)]
    pub keep_running: bool,
    /// Name servers that fail: root, tld, auth, or names such as ns-2 (comma-separated)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub fail: Vec<String>,
    /// How they fail: drop, servfail or delay=DURATION (e.g. delay=200ms)
    #[arg(long, value_name = "KIND", default_value = "drop")]
    pub fault: crate::fault::Fault,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
