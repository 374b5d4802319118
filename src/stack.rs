//! Starting any set of roles together: the name servers of a hierarchy (all
//! of them, or some), a resolver in front of them, a web server, and the
//! control endpoint. What `demo`, the role subcommands and the tests use.
//!
//! ```text
//!  StackConfig ──start──► bind every socket ──► serve ──► Stack
//!  (topology, which         (an error here       (nothing waits
//!   roles, faults)           names the address)   for readiness)
//! ```
//!
//! Everything is bound before anything serves, so whoever holds a started
//! stack can query it at once. Each name server host gets its own serving
//! pipeline, with its own fault switch (break and heal it while it runs)
//! and its own name for NSID.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use ipnet::IpNet;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::control::{self, Control, HostedZone, Visitor};
use crate::dnssec::{KeyStore, Signing};
use crate::fault::{Fault, FaultSwitch};
use crate::listen::{DnsSockets, bind_dns, bind_dns_on_all, bind_tcp};
use crate::nameserver::{self, LiveZone, NameServer, Replication, UpdatePolicy, replication};
use crate::resolver::{self, Resolver};
use crate::serve::ServeOptions;
use crate::topology::{Server, Topology};
use crate::trace::TraceSink;
use crate::web::{self, Website};
use crate::zone::Zone;
use hickory_proto::rr::RData;

/// Which roles to start, and how.
pub struct StackConfig {
    pub topology: Topology,
    /// The port every name server listens on and the resolver asks on (0:
    /// a port free on every address).
    pub dns_port: u16,
    /// The name servers to start, by name; `None` starts every one.
    pub servers: Option<Vec<String>>,
    /// The zones they serve, by apex; `None` serves all of each server's.
    pub zones: Option<Vec<String>>,
    /// Servers that misbehave from the start, by name.
    pub faults: HashMap<String, Fault>,
    /// What every name server's pipeline does besides answering (rate
    /// limits, EDNS size); `nsid` here means "give each its own name".
    pub name_server_options: ServeOptions,
    /// Answer NSID with each server's name (RFC 5001).
    pub nsid: bool,
    /// Who may change the zones with dynamic updates.
    pub updates: UpdatePolicy,
    /// Networks whose clients may transfer whole zones (AXFR over TCP),
    /// besides the zones' own secondaries.
    pub transfers_to: Vec<IpNet>,
    pub resolver: Option<ResolverSetup>,
    pub web: Option<WebSetup>,
    /// Where the control endpoint listens, if anywhere.
    pub control: Option<SocketAddr>,
    /// The token state changes through it must carry, if any.
    pub control_token: Option<std::sync::Arc<str>>,
    /// Where every role's events go: one clock for the whole stack.
    pub trace: TraceSink,
    /// Sign every zone with keys from this store (`--dnssec`, `--keys`).
    pub dnssec: Option<KeyStore>,
}

impl StackConfig {
    /// Every name server of `topology` on `dns_port`, nothing else.
    pub fn name_servers(topology: Topology, dns_port: u16) -> StackConfig {
        StackConfig {
            topology,
            dns_port,
            servers: None,
            zones: None,
            faults: HashMap::new(),
            name_server_options: ServeOptions::default(),
            nsid: false,
            updates: UpdatePolicy::default(),
            transfers_to: Vec::new(),
            resolver: None,
            web: None,
            control: None,
            control_token: None,
            trace: TraceSink::new(),
            dnssec: None,
        }
    }
}

/// The resolver of a stack.
pub struct ResolverSetup {
    pub addrs: Vec<SocketAddr>,
    pub config: resolver::Config,
    pub options: ServeOptions,
    pub clock: Clock,
}

/// The web server of a stack: an opened site and where it listens.
pub struct WebSetup {
    pub site: Website,
    pub addrs: Vec<SocketAddr>,
}

/// One name server host, running.
pub struct RunningServer {
    pub server: Server,
    pub fault: FaultSwitch,
    zones: Vec<Arc<LiveZone>>,
    stop: Option<CancellationToken>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Every role started, bound and serving.
pub struct Stack {
    pub topology: Topology,
    /// The DNS port actually bound.
    pub dns_port: u16,
    pub trace: TraceSink,
    pub resolver: Option<Resolver>,
    /// Where the resolver listens (the first of its addresses).
    pub resolver_addr: Option<SocketAddr>,
    pub web_addrs: Vec<SocketAddr>,
    pub control_addr: Option<SocketAddr>,
    control_token: Option<std::sync::Arc<str>>,
    /// Visits told so far, by the demo and the page: each gets the next
    /// number.
    visits: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// What the web server shows at `/trace.json`, when someone publishes.
    pub trace_document: Option<crate::web::TraceDocument>,
    servers: Vec<RunningServer>,
    hosts: HostSetup,
    /// Where the trust anchor was written, when the root is signed here.
    pub trust_anchor: Option<std::path::PathBuf>,
    /// The zones served, each once, as they are changed.
    live: Vec<Arc<LiveZone>>,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Stack {
    /// Load nothing more, bind everything, then serve.
    pub async fn start(config: StackConfig) -> anyhow::Result<Stack> {
        let StackConfig {
            topology,
            dns_port,
            servers: wanted,
            zones: wanted_zones,
            faults,
            name_server_options,
            nsid,
            updates,
            transfers_to,
            resolver: resolver_setup,
            web: web_setup,
            control: control_addr,
            control_token,
            trace,
            dnssec,
        } = config;
        let mut topology = topology;
        let mut trust_anchor = None;
        let signing = match dnssec {
            Some(store) => {
                let (zones, signing) =
                    Signing::prepare(std::mem::take(&mut topology.zones), &store)
                        .map_err(anyhow::Error::msg)
                        .context("signing the zones")?;
                topology.zones = zones;
                if let Some(root) = signing.keys(&hickory_proto::rr::Name::root()) {
                    let (zone_form, _) = crate::dnssec::anchor::write(store.dir(), root)
                        .map_err(anyhow::Error::msg)
                        .context("writing the trust anchor")?;
                    trust_anchor = Some(zone_form);
                }
                Some(Arc::new(signing))
            }
            None => None,
        };

        let chosen: Vec<Server> = topology
            .servers
            .iter()
            .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.name)))
            .cloned()
            .collect();
        let ips: Vec<IpAddr> = chosen
            .iter()
            .flat_map(|s| s.addrs.iter().copied())
            .collect();
        let mut sockets = bind_dns_on_all(&ips, dns_port)
            .await
            .context("starting the name servers")?
            .into_iter();
        let dns_port = match ips.first() {
            Some(_) => sockets.as_slice()[0].local_addr().port(),
            None => dns_port,
        };

        // One live copy of each zone, shared by every server of it in this
        // process: an update seen by one is seen by all at once.
        let live: Vec<Arc<LiveZone>> = topology
            .zones
            .iter()
            .filter(|z| {
                wanted_zones.as_ref().is_none_or(|w| {
                    w.iter()
                        .any(|apex| apex.eq_ignore_ascii_case(&z.origin().to_ascii()))
                })
            })
            .map(|z| {
                let live = LiveZone::new(z.clone());
                live.tell_changes_to(trace.clone());
                live
            })
            .collect();
        let hosts = HostSetup {
            options: name_server_options,
            nsid,
            updates,
            transfers_to,
            signing,
        };
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let names: Vec<&str> = chosen.iter().map(|s| s.name.as_str()).collect();
        for zone in &live {
            let replication = replication_of(&topology, &zone.snapshot(), &names, dns_port);
            if let Replication::Secondary { me, primaries } = &replication {
                let follow =
                    replication::follow(zone.clone(), *me, primaries.clone(), shutdown.clone());
                tasks.spawn(async move {
                    follow.await;
                    Ok(())
                });
            }
            zone.set_replication(replication);
        }
        let mut running = Vec::new();
        for server in chosen {
            let host_sockets: Vec<DnsSockets> = sockets.by_ref().take(server.addrs.len()).collect();
            let zones: Vec<Arc<LiveZone>> = live
                .iter()
                .filter(|z| server.zones.contains(&z.snapshot().origin().to_string()))
                .cloned()
                .collect();
            let fault = FaultSwitch::new(faults.get(&server.name).copied());
            let mut host = RunningServer {
                server,
                fault,
                zones,
                stop: None,
                task: None,
            };
            spawn_host(&mut host, host_sockets, &hosts, &shutdown);
            running.push(host);
        }

        let mut resolver = None;
        let mut resolver_addr = None;
        if let Some(setup) = resolver_setup {
            for addr in &setup.addrs {
                topology
                    .check_free(*addr, "resolver", dns_port)
                    .map_err(anyhow::Error::from)?;
            }
            let hints = topology.root_hints().context("starting the resolver")?;
            let mut config = resolver::Config {
                upstream_port: dns_port,
                ..setup.config
            };
            // A stack that signs its root validates with the anchor it wrote.
            if config.trust_anchors.is_none()
                && let Some(path) = &trust_anchor
            {
                config.trust_anchors = Some(Arc::new(
                    crate::dnssec::TrustAnchors::read(path)
                        .map_err(anyhow::Error::msg)
                        .context("reading the trust anchor")?,
                ));
            }
            let started = Resolver::with_trace(config, hints, setup.clock, trace.clone());
            let mut bound = Vec::new();
            for addr in &setup.addrs {
                bound.push(bind_resolver(*addr, dns_port).await?);
            }
            resolver_addr = bound.first().map(DnsSockets::local_addr);
            tasks.spawn(resolver::run(
                started.clone(),
                bound,
                setup.options,
                shutdown.clone(),
            ));
            resolver = Some(started);
        }

        let mut web_addrs = Vec::new();
        if let Some(setup) = web_setup {
            let mut listeners = Vec::new();
            for addr in &setup.addrs {
                let listener = bind_tcp(*addr).await.context("starting the web server")?;
                web_addrs.push(listener.local_addr()?);
                listeners.push(listener);
            }
            tasks.spawn(web::run(setup.site, listeners, shutdown.clone()));
        }

        let mut stack = Stack {
            topology,
            dns_port,
            trace,
            resolver,
            resolver_addr,
            web_addrs,
            control_addr: None,
            control_token,
            visits: Default::default(),
            trace_document: None,
            servers: running,
            hosts,
            trust_anchor,
            live,
            shutdown,
            tasks,
        };
        if let Some(addr) = control_addr {
            let listener = bind_tcp(addr)
                .await
                .context("starting the control endpoint")?;
            stack.control_addr = Some(listener.local_addr()?);
            let control = stack.control();
            stack
                .tasks
                .spawn(control::run(control, listener, stack.shutdown.clone()));
        }
        Ok(stack)
    }

    /// What the control endpoint may see and change.
    pub fn control(&self) -> Control {
        Control {
            resolver: self.resolver.clone(),
            servers: self
                .servers
                .iter()
                .map(|h| (h.server.clone(), h.fault.clone()))
                .collect(),
            trace: self.trace.clone(),
            token: self.control_token.clone(),
            visitor: self.resolver_addr.map(|resolver| Visitor {
                resolver,
                visits: self.visits.clone(),
            }),
            zones: self
                .live
                .iter()
                .map(|live| {
                    let apex = live.snapshot().origin().to_string();
                    HostedZone {
                        live: live.clone(),
                        // Every server of it, here or in another process.
                        servers: self
                            .topology
                            .servers
                            .iter()
                            .filter(|s| s.zones.contains(&apex))
                            .filter_map(|s| {
                                let ip = s.addrs.first()?;
                                Some((s.name.clone(), SocketAddr::new(*ip, self.dns_port)))
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    /// The number of the next visit told.
    pub fn next_visit(&self) -> u32 {
        self.visits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// The name servers running (or stopped by [`Stack::stop_server`]).
    pub fn servers(&self) -> impl Iterator<Item = &RunningServer> {
        self.servers.iter()
    }

    /// The host called `name` (see [`Server::is_called`]).
    pub fn server(&self, name: &str) -> Option<&RunningServer> {
        self.servers.iter().find(|h| h.server.is_called(name))
    }

    /// Where the server `name` listens, on the stack's DNS port.
    pub fn server_addr(&self, name: &str) -> Option<SocketAddr> {
        let host = self.server(name)?;
        Some(SocketAddr::new(*host.server.addrs.first()?, self.dns_port))
    }

    /// The zones served, each once, as they are now and as they change.
    pub fn live_zones(&self) -> &[Arc<LiveZone>] {
        &self.live
    }

    /// The server that listens at `ip`.
    pub fn server_at(&self, ip: IpAddr) -> Option<&RunningServer> {
        self.servers.iter().find(|h| h.server.addrs.contains(&ip))
    }

    /// Break (`Some`) or heal (`None`) the server called `name`, now.
    pub fn set_fault(&self, name: &str, fault: Option<Fault>) -> anyhow::Result<()> {
        let host = self
            .server(name)
            .ok_or_else(|| anyhow::anyhow!("no name server called {name}"))?;
        host.fault.set(fault);
        Ok(())
    }

    /// Stop the server at `ip` and wait until its sockets are closed: how
    /// tests make a name server die.
    pub async fn stop_server(&mut self, ip: IpAddr) {
        let Some(host) = self
            .servers
            .iter_mut()
            .find(|h| h.server.addrs.contains(&ip))
        else {
            return;
        };
        if let Some(stop) = host.stop.take() {
            stop.cancel();
        }
        if let Some(task) = host.task.take() {
            let _ = task.await;
        }
    }

    /// Start the server at `ip` again, after [`Stack::stop_server`].
    pub async fn restart_server(&mut self, ip: IpAddr) -> anyhow::Result<()> {
        let port = self.dns_port;
        let shutdown = self.shutdown.clone();
        let host = self
            .servers
            .iter_mut()
            .find(|h| h.server.addrs.contains(&ip))
            .ok_or_else(|| anyhow::anyhow!("{ip} is not a name server of this stack"))?;
        anyhow::ensure!(host.task.is_none(), "{ip} is already serving");
        let mut sockets = Vec::new();
        for addr in &host.server.addrs {
            sockets.push(
                bind_dns(SocketAddr::new(*addr, port))
                    .await
                    .context("restarting a name server")?,
            );
        }
        spawn_host(host, sockets, &self.hosts, &shutdown);
        Ok(())
    }

    /// Stop every role, letting answers in flight finish (up to 2 s).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        for host in &mut self.servers {
            if let Some(task) = host.task.take() {
                let _ = task.await;
            }
        }
    }

    /// Stop every role at once, dropping whatever is in flight: for Ctrl-C.
    pub async fn abort(mut self) {
        self.shutdown.cancel();
        self.tasks.shutdown().await;
        for host in &mut self.servers {
            if let Some(task) = host.task.take() {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// Bind the resolver at `addr`. Port 0 tries the name servers' port first,
/// so that one `-p` serves every `dig` of the story.
async fn bind_resolver(addr: SocketAddr, dns_port: u16) -> anyhow::Result<DnsSockets> {
    if addr.port() == 0
        && let Ok(sockets) = bind_dns(SocketAddr::new(addr.ip(), dns_port)).await
    {
        return Ok(sockets);
    }
    bind_dns(addr).await.context("starting the resolver")
}

/// A zone's place among its servers when only `here` run in this process:
/// alone if all do; the primary (the server its SOA names, else its first
/// NS) tells the others of changes; the others follow the primary.
fn replication_of(topology: &Topology, zone: &Zone, here: &[&str], port: u16) -> Replication {
    let apex = zone.origin().to_string();
    let servers: Vec<&Server> = topology
        .servers
        .iter()
        .filter(|s| s.zones.contains(&apex))
        .collect();
    let is_here = |s: &Server| here.contains(&s.name.as_str());
    let Some(me) = servers
        .iter()
        .find(|s| is_here(s))
        .and_then(|s| s.addrs.first().copied())
    else {
        return Replication::Alone;
    };
    if servers.iter().all(|s| is_here(s)) {
        return Replication::Alone;
    }
    let mname = match &zone.soa().data {
        RData::SOA(soa) => Some(soa.mname.to_string()),
        _ => None,
    };
    let first = zone.first_name_server().map(|n| n.to_string());
    let Some(primary) = servers
        .iter()
        .find(|s| {
            mname
                .as_ref()
                .is_some_and(|m| m.eq_ignore_ascii_case(&s.name))
        })
        .or_else(|| {
            servers.iter().find(|s| {
                first
                    .as_ref()
                    .is_some_and(|f| f.eq_ignore_ascii_case(&s.name))
            })
        })
    else {
        return Replication::Alone;
    };
    let at = |s: &&&Server| {
        s.addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect::<Vec<_>>()
    };
    if is_here(primary) {
        Replication::Primary {
            me,
            secondaries: servers
                .iter()
                .filter(|s| !is_here(s))
                .flat_map(|s| at(&s))
                .collect(),
        }
    } else {
        Replication::Secondary {
            me,
            primaries: at(&primary),
        }
    }
}

/// What every name server host of a stack is started with.
struct HostSetup {
    options: ServeOptions,
    nsid: bool,
    updates: UpdatePolicy,
    transfers_to: Vec<IpNet>,
    /// The signed zones, shared by every server that serves one.
    signing: Option<Arc<Signing>>,
}

/// Start serving one host's zones on its sockets.
fn spawn_host(
    host: &mut RunningServer,
    sockets: Vec<DnsSockets>,
    setup: &HostSetup,
    shutdown: &CancellationToken,
) {
    let stop = shutdown.child_token();
    let options = ServeOptions {
        fault: host.fault.clone(),
        identity: Some(host.server.name.trim_end_matches('.').into()),
        nsid: setup.nsid,
        ..setup.options.clone()
    };
    let mut server = NameServer::serving(host.zones.clone())
        .with_updates(setup.updates.clone())
        .with_transfers_to(setup.transfers_to.clone())
        .with_fault(host.fault.clone());
    if let Some(signing) = &setup.signing {
        server = server.with_dnssec(signing.clone());
    }
    host.task = Some(tokio::spawn(nameserver::run(
        server,
        sockets,
        options,
        stop.clone(),
    )));
    host.stop = Some(stop);
}
