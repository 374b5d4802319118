//! The `dnstrail` binary: parse the command line, run one role, and turn any
//! error into one line on stderr and a non-zero exit code.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use dnstrail::cli::{Cli, Command, NameServerArgs};
use dnstrail::listen::{bind_dns, parse_listen, shutdown_on_signal};
use dnstrail::nameserver::{self, NameServer};
use dnstrail::topology::{Role, Topology};
use dnstrail::zone::Zone;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("dnstrail: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG`; by default each role logs its
/// queries (`dnstrail::query`) and hickory only its warnings.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn,hickory_resolver=warn",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Root(args) => serve_zone_role(Role::Root, args).await,
        Command::Tld(args) => serve_zone_role(Role::Tld, args).await,
        Command::Auth(args) => serve_zone_role(Role::Auth, args).await,
        Command::Resolver(_) => not_built("resolver"),
        Command::Web(args) => dnstrail::web::command(args).await,
        Command::Browse(args) => dnstrail::browse::command(args).await,
        Command::Demo(_) => not_built("demo"),
    }
}

fn not_built(role: &str) -> anyhow::Result<ExitCode> {
    eprintln!("dnstrail: `{role}` is not built yet");
    Ok(ExitCode::from(2))
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
    nameserver::run(NameServer::new(zones), sockets, shutdown_on_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
