//! The `dnstrail` binary: parse the command line, run one role, and turn any
//! error into one line on stderr and a non-zero exit code.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use dnstrail::cli::{Cli, Command, NameServerArgs, ResolverArgs};
use dnstrail::clock::Clock;
use dnstrail::listen::{bind_dns, bind_tcp, parse_listen, shutdown_on_signal};
use dnstrail::nameserver::{self, NameServer};
use dnstrail::resolver::{self, Resolver};
use dnstrail::topology::{Role, Topology};
use dnstrail::zone::Zone;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's output is the story; its servers' logs would bury it.
    let quiet = matches!(cli.command, Command::Demo(_));
    init_logging(if quiet { "warn" } else { DEFAULT_LOG });
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // `dnstrail demo | head` is not an error worth a message.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dnstrail: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// By default each role logs its queries (`dnstrail::query`) and requests
/// (`dnstrail::http`), and hickory only its warnings.
const DEFAULT_LOG: &str =
    "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=warn";

/// Logs go to stderr, filtered by `RUST_LOG` when it is set.
fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_colour())
        .with_target(false)
        .init();
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Colour only on a terminal, and never with `NO_COLOR` set (no-color.org).
fn use_colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Root(args) => serve_zone_role(Role::Root, args).await,
        Command::Tld(args) => serve_zone_role(Role::Tld, args).await,
        Command::Auth(args) => serve_zone_role(Role::Auth, args).await,
        Command::Resolver(args) => serve_resolver(args).await,
        Command::Web(args) => dnstrail::web::command(args).await,
        Command::Browse(args) => dnstrail::browse::command(args).await,
        Command::Demo(args) => dnstrail::demo::command(args).await,
    }
}

/// `root`, `tld` and `auth`: one name server, preset from the topology.
async fn serve_zone_role(role: Role, args: NameServerArgs) -> anyhow::Result<ExitCode> {
    let topology = Topology::canonical(Topology::default_zones_dir());
    let preset = topology.service(role);
    let files = if args.zones.is_empty() {
        vec![preset.file.clone()]
    } else {
        args.zones
    };
    let zones = files
        .iter()
        .map(Zone::load)
        .collect::<Result<Vec<_>, _>>()
        .context("loading zones")?;
    let addrs: Vec<SocketAddr> = if args.listen.is_empty() {
        preset
            .hosts
            .iter()
            .map(|h| SocketAddr::new(h.ip, args.dns_port))
            .collect()
    } else {
        args.listen
            .iter()
            .map(|a| parse_listen(a, args.dns_port))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?
    };
    let mut sockets = Vec::with_capacity(addrs.len());
    for addr in &addrs {
        let bound = bind_dns(*addr)
            .await
            .with_context(|| format!("starting the {} name server", role.as_str()))?;
        sockets.push(bound);
    }
    let origins: Vec<String> = zones.iter().map(|z| z.origin().to_string()).collect();
    let listening: Vec<String> = sockets.iter().map(|s| s.local_addr().to_string()).collect();
    tracing::info!(
        "{} name server for {} on {} (UDP and TCP)",
        role.as_str(),
        origins.join(" "),
        listening.join(" ")
    );
    nameserver::run(
        NameServer::new(zones)
            .with_rrl(args.rrl)
            .with_transfers_to(networks("--allow-axfr", &args.allow_axfr)?),
        sockets,
        shutdown_on_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `resolver`: the caching recursive resolver, for stub clients.
async fn serve_resolver(args: ResolverArgs) -> anyhow::Result<ExitCode> {
    let hints_file = args
        .root_hints
        .unwrap_or_else(|| Topology::canonical(Topology::default_zones_dir()).root_hints);
    let hints = resolver::load_hints(&hints_file).context("loading root hints")?;
    let allow = networks("--allow", &args.allow)?;
    let config = resolver::Config {
        upstream_port: args.dns_port,
        qname_minimization: args.qname_minimization,
        allow,
        cache_size: args.cache_size,
        serve_stale: args.serve_stale,
        rate_limit: args.rate_limit,
        max_outstanding: args.max_outstanding,
    };
    let resolver = Resolver::new(config, hints, Clock::new());
    if args.json {
        resolver.trace().subscribe(|event| {
            if let Ok(line) = serde_json::to_string(event) {
                println!("{line}");
            }
        });
    }
    let addr = parse_listen(&args.listen, args.dns_port).map_err(anyhow::Error::msg)?;
    let sockets = bind_dns(addr).await.context("starting the resolver")?;
    let shutdown = shutdown_on_signal();
    if let Some(control) = args.control {
        anyhow::ensure!(
            control.ip().is_loopback(),
            "--control {control}: the control endpoint listens on loopback only"
        );
        let listener = bind_tcp(control)
            .await
            .context("starting the control endpoint")?;
        tracing::info!("control endpoint on http://{control}/ (cache, traces, metrics)");
        tokio::spawn(resolver::control::run(
            resolver.clone(),
            listener,
            shutdown.clone(),
        ));
    }
    tracing::info!(
        "resolver on {} (UDP and TCP), root hints from {}, upstream port {}",
        sockets.local_addr(),
        hints_file.display(),
        args.dns_port
    );
    resolver::run(resolver, vec![sockets], shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Networks given on the command line as CIDR (or a single address).
fn networks(flag: &str, given: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    given
        .iter()
        .map(|cidr| {
            cidr.parse::<ipnet::IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!("{flag} {cidr}: not a network (expected e.g. 192.0.2.0/24)")
                })
        })
        .collect()
}
