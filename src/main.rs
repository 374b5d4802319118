//! The `dnstrail` binary: parse the command line, turn the arguments into a
//! role's configuration, run it, and turn any error into one line on stderr
//! and a non-zero exit code.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use dnstrail::browse;
use dnstrail::cli::{Cli, Command, DemoArgs, InitArgs, NameServerArgs, ResolverArgs, WebArgs};
use dnstrail::clock::Clock;
use dnstrail::control::{self, Control};
use dnstrail::demo::{self, Item};
use dnstrail::fault::FaultSwitch;
use dnstrail::listen::{bind_dns, bind_tcp, shutdown_on_signal};
use dnstrail::nameserver::{self, LiveZone, NameServer, UpdatePolicy};
use dnstrail::resolver::{self, Resolver};
use dnstrail::serve::ratelimit::RateLimit;
use dnstrail::serve::{ServeOptions, TsigKeys};
use dnstrail::stack::{Stack, StackConfig};
use dnstrail::story::{self, Printing};
use dnstrail::style::Style;
use dnstrail::topology::{DEFAULT_CONTROL_PORT, Tier, Topology};
use dnstrail::trace::TraceSink;
use dnstrail::web::{self, SiteSource, WebConfig, Website};
use dnstrail::zone::Zone;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // The demo's output is the story, the shell's a user's own session:
    // their servers' logs would bury it.
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Shell(_));
    init_logging(if quiet { "warn" } else { DEFAULT_LOG });
    let demo_items = matches
        .subcommand_matches("demo")
        .map(demo_items_in_order)
        .transpose();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = match demo_items {
        Ok(items) => runtime.block_on(run(cli, items.unwrap_or_default())),
        Err(error) => Err(error),
    };
    // Whatever is still running (a resolution waiting on a dead server)
    // does not hold up the exit.
    runtime.shutdown_timeout(Duration::from_millis(50));
    dnstrail::serve::querylog::finish();
    match result {
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

/// Logs go to stderr, filtered by `RUST_LOG` when it is set; the query log
/// has a writer of its own (see `serve::querylog`).
fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = Style::for_stderr().is_on();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
    dnstrail::serve::querylog::start(colour);
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `--visit` and `--ask` in the order they were given.
fn demo_items_in_order(matches: &clap::ArgMatches) -> anyhow::Result<Vec<Item>> {
    let mut items: Vec<(usize, Item)> = Vec::new();
    for (arg, make) in [
        (
            "visit",
            (|v: &str| Ok(Item::Visit(v.to_string()))) as fn(&str) -> Result<Item, String>,
        ),
        ("ask", Item::parse_ask),
    ] {
        let (Some(values), Some(indices)) =
            (matches.get_many::<String>(arg), matches.indices_of(arg))
        else {
            continue;
        };
        for (value, index) in values.zip(indices) {
            items.push((index, make(value).map_err(anyhow::Error::msg)?));
        }
    }
    items.sort_by_key(|(index, _)| *index);
    Ok(items.into_iter().map(|(_, item)| item).collect())
}

async fn run(cli: Cli, demo_items: Vec<Item>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Root(args) => serve_name_servers(Some(Tier::Root), args).await,
        Command::Tld(args) => serve_name_servers(Some(Tier::Tld), args).await,
        Command::Auth(args) => serve_name_servers(Some(Tier::Domain), args).await,
        Command::Nameservers(args) => serve_name_servers(None, args).await,
        Command::Resolver(args) => serve_resolver(args).await,
        Command::Web(args) => serve_web(args).await,
        Command::Browse(args) => browse::command(args).await,
        Command::Demo(args) => demo(args, demo_items).await,
        Command::Init(args) => init(args),
        Command::Shell(args) => dnstrail::shell::command(args).await,
    }
}

async fn demo(args: DemoArgs, items: Vec<Item>) -> anyhow::Result<ExitCode> {
    demo::command(args, items).await
}

/// The name servers' serving options from their flags.
/// Who may send dynamic updates: loopback and `--allow-update`; signed,
/// when keys were given.
fn update_policy(args: &NameServerArgs) -> UpdatePolicy {
    UpdatePolicy {
        networks: args.allow_update.clone(),
        require_key: !args.tsig.is_empty(),
    }
}

fn name_server_options(args: &NameServerArgs) -> ServeOptions {
    ServeOptions {
        rate_limit: args.rrl.map(RateLimit::responses),
        fault: FaultSwitch::new(args.fault),
        edns_payload: args.edns_size,
        nsid: args.nsid,
        hide_version: args.hide_version,
        tsig: TsigKeys::new(args.tsig.clone()),
        ..ServeOptions::default()
    }
}

/// `root`, `tld`, `auth` and `nameservers`: the name servers of a tier (or
/// all), each on the addresses the zones give it; or, with `--listen`, the
/// zones chosen served on the addresses given.
async fn serve_name_servers(tier: Option<Tier>, args: NameServerArgs) -> anyhow::Result<ExitCode> {
    let stop = shutdown_on_signal();
    let (files, names): (Vec<&String>, Vec<&String>) =
        args.zone.iter().partition(|z| Path::new(z).is_file());
    let mut zones: Vec<Zone> = files
        .iter()
        .map(|f| Zone::load(f.as_str()))
        .collect::<Result<_, _>>()
        .context("loading zones")?;
    let from_files = !zones.is_empty();
    if !from_files || !names.is_empty() || args.zones.is_some() {
        let topology = Topology::load_or_builtin(args.zones.as_deref()).context("loading zones")?;
        for zone in topology.zones {
            if !zones
                .iter()
                .any(|z| z.lower_origin() == zone.lower_origin())
            {
                zones.push(zone);
            }
        }
    }
    let wanted: Vec<String> = {
        let mut wanted: Vec<String> = Vec::new();
        for name in &names {
            let apex = format!("{}.", name.trim_end_matches('.')).to_ascii_lowercase();
            anyhow::ensure!(
                zones
                    .iter()
                    .any(|z| z.origin().to_ascii().eq_ignore_ascii_case(&apex)),
                "--zone {name}: no such zone here (and no such file); the zones are {}",
                zones
                    .iter()
                    .map(|z| z.origin().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            wanted.push(apex);
        }
        for file_zone in zones.iter().take(files.len()) {
            wanted.push(file_zone.origin().to_ascii().to_ascii_lowercase());
        }
        if wanted.is_empty() {
            wanted = zones
                .iter()
                .filter(|z| tier.is_none_or(|t| Tier::of(z.origin()) == t))
                .map(|z| z.origin().to_ascii().to_ascii_lowercase())
                .collect();
        }
        wanted
    };
    anyhow::ensure!(!wanted.is_empty(), "no zone of this kind to serve here");
    let role = tier.map_or("nameservers", Tier::command);
    let mut options = name_server_options(&args);
    if let Some(fault) = args.fault
        && fault.is_dnssec()
        && !args.dnssec.dnssec
    {
        anyhow::bail!("--fault {fault} breaks signatures: give --dnssec too");
    }
    let keys = args
        .dnssec
        .key_store(args.zones.as_deref())
        .map_err(anyhow::Error::msg)?;

    if !args.listen.is_empty() {
        // The zones chosen, on the addresses given: no hierarchy needed.
        let chosen: Vec<Zone> = zones
            .into_iter()
            .filter(|z| wanted.contains(&z.origin().to_ascii().to_ascii_lowercase()))
            .collect();
        let mut sockets = Vec::new();
        for endpoint in &args.listen {
            let addr = endpoint.with_port(args.dns_port);
            sockets.push(
                bind_dns(addr)
                    .await
                    .with_context(|| format!("starting the {role} name server"))?,
            );
        }
        // One identity for the process: the first server named for its
        // first zone.
        options.identity = chosen
            .first()
            .and_then(|z| z.first_name_server())
            .map(|n| n.to_ascii().trim_end_matches('.').into());
        let listening: Vec<String> = sockets.iter().map(|s| s.local_addr().to_string()).collect();
        let origins: Vec<String> = chosen.iter().map(|z| z.origin().to_string()).collect();
        tracing::info!(
            "{role} name server for {} on {} (UDP and TCP)",
            origins.join(" "),
            listening.join(" ")
        );
        announce_bound("dns", sockets.iter().map(|s| s.local_addr()));
        let (chosen, signing) = match &keys {
            Some(store) => {
                let (zones, signing) = dnstrail::dnssec::Signing::prepare(chosen, store)
                    .map_err(anyhow::Error::msg)
                    .context("signing the zones")?;
                announce_anchor(&signing, store)?;
                (zones, Some(std::sync::Arc::new(signing)))
            }
            None => (chosen, None),
        };
        let live: Vec<std::sync::Arc<LiveZone>> = chosen.into_iter().map(LiveZone::new).collect();
        if let Some(control) = args.control {
            let server = dnstrail::topology::Server {
                name: origins.join(" "),
                addrs: sockets.iter().map(|s| s.local_addr().ip()).collect(),
                zones: origins.clone(),
            };
            spawn_control(
                Control {
                    resolver: None,
                    servers: vec![(server.clone(), options.fault.clone())],
                    trace: TraceSink::new(),
                    token: args.control_auth.token().map_err(anyhow::Error::msg)?,
                    visitor: None,
                    zones: live
                        .iter()
                        .map(|live| dnstrail::control::HostedZone {
                            live: live.clone(),
                            servers: sockets
                                .iter()
                                .map(|s| (server.name.clone(), s.local_addr()))
                                .collect(),
                        })
                        .collect(),
                },
                control.with_port(DEFAULT_CONTROL_PORT),
                stop.clone(),
            )
            .await?;
        }
        let mut server = NameServer::serving(live)
            .with_transfers_to(args.allow_axfr.clone())
            .with_updates(update_policy(&args))
            .with_fault(options.fault.clone());
        if let Some(signing) = signing {
            server = server.with_dnssec(signing);
        }
        nameserver::run(server, sockets, options, stop).await?;
        return Ok(ExitCode::SUCCESS);
    }

    let topology = Topology::from_zones(zones, "the zones given").context("loading zones")?;
    let mut servers: Vec<String> = topology
        .servers
        .iter()
        .filter(|s| {
            s.zones
                .iter()
                .any(|z| wanted.contains(&z.to_ascii_lowercase()))
        })
        .filter(|s| args.server.is_empty() || args.server.iter().any(|w| s.is_called(w)))
        .map(|s| s.name.clone())
        .collect();
    servers.dedup();
    anyhow::ensure!(
        !servers.is_empty(),
        "no name server of these zones is called {}",
        args.server.join(" or ")
    );
    let fault = args.fault;
    let mut config = StackConfig::name_servers(topology, args.dns_port);
    config.zones = Some(wanted);
    config.faults = servers
        .iter()
        .filter_map(|s| fault.map(|f| (s.clone(), f)))
        .collect();
    config.servers = Some(servers);
    config.name_server_options = ServeOptions {
        fault: FaultSwitch::default(),
        ..options
    };
    config.nsid = args.nsid;
    config.updates = update_policy(&args);
    config.transfers_to = args.allow_axfr.clone();
    config.control = args.control.map(|c| c.with_port(DEFAULT_CONTROL_PORT));
    config.control_token = args.control_auth.token().map_err(anyhow::Error::msg)?;
    config.dnssec = keys.clone();
    let stack = Stack::start(config)
        .await
        .with_context(|| format!("starting the {role} name servers"))?;
    if let Some(store) = &keys {
        tracing::info!(
            "zones signed with keys in {} (algorithm {})",
            store.dir().display(),
            store.algorithm()
        );
    }
    if let Some(anchor) = &stack.trust_anchor {
        eprintln!("dnstrail: trust anchor {}", anchor.display());
    }
    for host in stack.servers() {
        let addrs: Vec<String> = host
            .server
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, stack.dns_port).to_string())
            .collect();
        tracing::info!(
            "{} for {} on {} (UDP and TCP){}",
            host.server.name.trim_end_matches('.'),
            host.server.zones.join(" "),
            addrs.join(" "),
            host.fault
                .get()
                .map(|f| format!(", failing: {f}"))
                .unwrap_or_default()
        );
    }
    announce_bound(
        "dns",
        stack
            .servers()
            .flat_map(|h| {
                h.server
                    .addrs
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, stack.dns_port))
            })
            .collect::<Vec<_>>(),
    );
    if let Some(c) = stack.control_addr {
        tracing::info!("control endpoint on http://{c}/ (servers, faults)");
    }
    stop.cancelled().await;
    stack.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Write the root's trust anchor, if the root is among the zones signed,
/// and say where: `dnstrail: trust anchor DIR/root.key`.
fn announce_anchor(
    signing: &dnstrail::dnssec::Signing,
    store: &dnstrail::dnssec::KeyStore,
) -> anyhow::Result<()> {
    if let Some(root) = signing.keys(&hickory_proto::rr::Name::root()) {
        let (path, _) = dnstrail::dnssec::anchor::write(store.dir(), root)
            .map_err(anyhow::Error::msg)
            .context("writing the trust anchor")?;
        eprintln!("dnstrail: trust anchor {}", path.display());
    }
    Ok(())
}

/// One line a program can read to learn where a role listens, whatever the
/// log says: `dnstrail: listening dns 127.0.0.2:5300 127.0.0.3:5300`.
fn announce_bound(what: &str, addrs: impl IntoIterator<Item = SocketAddr>) {
    let addrs: Vec<String> = addrs.into_iter().map(|a| a.to_string()).collect();
    eprintln!("dnstrail: listening {what} {}", addrs.join(" "));
}

async fn spawn_control(
    control: Control,
    addr: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<SocketAddr> {
    anyhow::ensure!(
        addr.ip().is_loopback() || control.token.is_some(),
        "--control {addr}: beyond loopback the control endpoint needs --control-token \
         (anyone who reached it could flush the cache and break servers)"
    );
    let listener = bind_tcp(addr)
        .await
        .context("starting the control endpoint")?;
    let bound = listener.local_addr()?;
    tracing::info!("control endpoint on http://{bound}/");
    announce_bound("control", [bound]);
    tokio::spawn(control::run(control, listener, stop));
    Ok(bound)
}

/// `resolver`: the caching recursive resolver, for stub clients.
async fn serve_resolver(args: ResolverArgs) -> anyhow::Result<ExitCode> {
    let stop = shutdown_on_signal();
    let (hints, hints_from) = match &args.root_hints {
        Some(file) => (
            resolver::load_hints(file).context("loading root hints")?,
            file.display().to_string(),
        ),
        None => {
            let topology =
                Topology::load_or_builtin(args.zones.as_deref()).context("loading zones")?;
            let hints = topology.root_hints().context("finding the root hints")?;
            (hints, format!("the root zone of {}", topology.source))
        }
    };
    let config = resolver::Config {
        upstream_port: args.dns_port,
        qname_minimization: args.qname_minimization,
        allow: args.allow.clone(),
        cache_size: args.cache_size,
        serve_stale: args.serve_stale,
        max_outstanding: args.max_outstanding,
        seed: args.seed.unwrap_or_else(rand::random),
        first_choice: Vec::new(),
        max_ttl: args.max_ttl,
        min_ttl: args.min_ttl,
        mixed_case: !args.no_0x20,
        trust_anchors: match &args.trust_anchor {
            Some(file) => Some(std::sync::Arc::new(
                dnstrail::dnssec::TrustAnchors::read(file)
                    .map_err(anyhow::Error::msg)
                    .context("reading the trust anchor")?,
            )),
            None => None,
        },
    };
    let validating = config
        .trust_anchors
        .as_ref()
        .map(|a| format!(", validating DNSSEC from {}", a.source))
        .unwrap_or_default();
    let seed = config.seed;
    let resolver = Resolver::new(config, hints, Clock::new());
    if args.json || args.story {
        let printing = if args.json {
            Printing::Json { visits: false }
        } else {
            Printing::Story(Style::for_stdout())
        };
        tokio::spawn(story::print(resolver.trace().subscribe(), printing, None));
    }
    let mut sockets = Vec::new();
    for endpoint in &args.listen {
        sockets.push(
            bind_dns(endpoint.with_port(args.dns_port))
                .await
                .context("starting the resolver")?,
        );
    }
    if let Some(control) = args.control {
        spawn_control(
            Control {
                resolver: Some(resolver.clone()),
                servers: Vec::new(),
                trace: resolver.trace().clone(),
                token: args.control_auth.token().map_err(anyhow::Error::msg)?,
                visitor: sockets.first().map(|s| dnstrail::control::Visitor {
                    resolver: s.local_addr(),
                    visits: Default::default(),
                }),
                zones: Vec::new(),
            },
            control.with_port(DEFAULT_CONTROL_PORT),
            stop.clone(),
        )
        .await?;
    }
    let listening: Vec<String> = sockets.iter().map(|s| s.local_addr().to_string()).collect();
    tracing::info!(
        "resolver on {} (UDP and TCP), root hints from {hints_from}, upstream port {}, seed {seed}{validating}",
        listening.join(" "),
        args.dns_port
    );
    announce_bound("dns", sockets.iter().map(|s| s.local_addr()));
    let options = ServeOptions {
        rate_limit: args.rate_limit.map(RateLimit::questions),
        ..ServeOptions::default()
    };
    resolver::run(resolver, sockets, options, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// `web`: the site, on the addresses the zones give its host.
async fn serve_web(args: WebArgs) -> anyhow::Result<ExitCode> {
    let stop = shutdown_on_signal();
    let topology = Topology::load_or_builtin(args.zones.as_deref()).context("loading zones")?;
    let placement = topology
        .place_site(std::slice::from_ref(&args.site), None)
        .map_err(anyhow::Error::msg)?;
    let port = reqwest::Url::parse(&args.site)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(80);
    let addrs: Vec<SocketAddr> = if args.listen.is_empty() {
        placement.addrs
    } else {
        args.listen.iter().map(|e| e.with_port(port)).collect()
    };
    let hosts = if args.hosts.is_empty() {
        placement.hosts
    } else {
        args.hosts.clone()
    };
    let source = match &args.static_dir {
        Some(dir) => SiteSource::Dir(dir.clone()),
        None => SiteSource::BuiltIn,
    };
    let mut config = WebConfig::new(source, hosts);
    config.any_host = args.any_host;
    let site = Website::open(config).await?;
    let mut listeners = Vec::new();
    for addr in addrs {
        listeners.push(bind_tcp(addr).await.context("starting the web server")?);
    }
    announce_bound("http", listeners.iter().filter_map(|l| l.local_addr().ok()));
    web::run(site, listeners, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// `init DIR`: the built-in zones and site, written out for editing.
fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let (zones, site) = dnstrail::builtin::write_out(&args.dir)?;
    println!(
        "Wrote the demo's zone files to {} and its site to {}.",
        zones.display(),
        site.display()
    );
    println!("Edit them, then:");
    println!(
        "  dnstrail demo --zones {} --static {}",
        zones.display(),
        site.display()
    );
    Ok(ExitCode::SUCCESS)
}
