//! Starting several roles together: what `demo` and the tests do.
//!
//! Everything is bound before anything serves, so whoever holds a started
//! stack can query it at once: there is no readiness to wait for.

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::fault::{Fault, Faulty};
use crate::listen::bind_dns_on_all;
use crate::nameserver::{self, NameServer};
use crate::topology::Topology;
use crate::zone::Zone;

/// The name servers of a topology, bound and serving.
pub struct NameServers {
    /// The topology, with `dns_port` set to the port actually bound.
    pub topology: Topology,
    pub shutdown: CancellationToken,
    /// Each host's own shutdown, a child of `shutdown`: stopping one host
    /// is how tests make a name server die.
    hosts: HashMap<IpAddr, CancellationToken>,
    /// What each host serves, to start it again after a stop.
    zones: HashMap<IpAddr, Vec<Zone>>,
    pub tasks: JoinSet<anyhow::Result<()>>,
}

impl NameServers {
    /// Load every zone, bind every name server address of `topology` on its
    /// DNS port (0: a port free on all of them), and start serving. A host
    /// listed under several zones serves all of them.
    pub async fn start(topology: Topology) -> anyhow::Result<NameServers> {
        NameServers::start_with_faults(topology, &HashMap::new()).await
    }

    /// Like [`NameServers::start`], with the hosts in `faults` misbehaving.
    pub async fn start_with_faults(
        mut topology: Topology,
        faults: &HashMap<IpAddr, Fault>,
    ) -> anyhow::Result<NameServers> {
        let mut zones_by_ip: Vec<(IpAddr, Vec<Zone>)> = Vec::new();
        for service in &topology.services {
            let zone = Zone::load(&service.file).context("loading zones")?;
            for host in &service.hosts {
                match zones_by_ip.iter_mut().find(|(ip, _)| *ip == host.ip) {
                    Some((_, zones)) => zones.push(zone.clone()),
                    None => zones_by_ip.push((host.ip, vec![zone.clone()])),
                }
            }
        }
        let ips: Vec<IpAddr> = zones_by_ip.iter().map(|(ip, _)| *ip).collect();
        let sockets = bind_dns_on_all(&ips, topology.dns_port)
            .await
            .context("starting the name servers")?;
        if let Some(first) = sockets.first() {
            topology.dns_port = first.local_addr().port();
        }

        let shutdown = CancellationToken::new();
        let mut hosts = HashMap::new();
        let mut tasks = JoinSet::new();
        let zones_of: HashMap<IpAddr, Vec<Zone>> = zones_by_ip.iter().cloned().collect();
        for ((ip, zones), socket) in zones_by_ip.into_iter().zip(sockets) {
            let host_shutdown = shutdown.child_token();
            hosts.insert(ip, host_shutdown.clone());
            let server = NameServer::new(zones);
            match faults.get(&ip) {
                None => tasks.spawn(nameserver::run(server, vec![socket], host_shutdown)),
                Some(&fault) => tasks.spawn(crate::serve::run(
                    Faulty {
                        inner: server,
                        fault,
                    },
                    vec![socket],
                    crate::serve::Answers::Fresh,
                    host_shutdown,
                )),
            };
        }
        Ok(NameServers {
            topology,
            shutdown,
            hosts,
            zones: zones_of,
            tasks,
        })
    }

    /// Stop the name server at `ip` and wait until its sockets are closed.
    pub async fn stop_host(&mut self, ip: IpAddr) {
        if let Some(token) = self.hosts.remove(&ip) {
            token.cancel();
            // hickory's server closes its sockets as its tasks end; wait for
            // the one that was serving this host.
            if let Some(result) = self.tasks.join_next().await {
                result.ok();
            }
        }
    }

    /// Start the name server at `ip` again, after [`NameServers::stop_host`].
    pub async fn restart_host(&mut self, ip: IpAddr) -> anyhow::Result<()> {
        anyhow::ensure!(!self.hosts.contains_key(&ip), "{ip} is already serving");
        let zones = self
            .zones
            .get(&ip)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("{ip} is not a host of this stack"))?;
        let socket = crate::listen::bind_dns(std::net::SocketAddr::new(ip, self.topology.dns_port))
            .await
            .context("restarting a name server")?;
        let host_shutdown = self.shutdown.child_token();
        self.hosts.insert(ip, host_shutdown.clone());
        self.tasks.spawn(nameserver::run(
            NameServer::new(zones),
            vec![socket],
            host_shutdown,
        ));
        Ok(())
    }

    /// Stop serving and wait for every server to close its sockets.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
