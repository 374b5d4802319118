//! Starting several roles together: what `demo` and the tests do.
//!
//! Everything is bound before anything serves, so whoever holds a started
//! stack can query it at once: there is no readiness to wait for.

use std::net::IpAddr;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::listen::bind_dns_on_all;
use crate::nameserver::{self, NameServer};
use crate::topology::Topology;
use crate::zone::Zone;

/// The name servers of a topology, bound and serving.
pub struct NameServers {
    /// The topology, with `dns_port` set to the port actually bound.
    pub topology: Topology,
    pub shutdown: CancellationToken,
    pub tasks: JoinSet<anyhow::Result<()>>,
}

impl NameServers {
    /// Load every zone, bind every name server address of `topology` on its
    /// DNS port (0: a port free on all of them), and start serving.
    pub async fn start(mut topology: Topology) -> anyhow::Result<NameServers> {
        let mut loaded = Vec::with_capacity(topology.services.len());
        for service in &topology.services {
            loaded.push(Zone::load(&service.file).context("loading zones")?);
        }
        let ips: Vec<IpAddr> = topology.hosts().map(|(_, h)| h.ip).collect();
        let mut sockets = bind_dns_on_all(&ips, topology.dns_port)
            .await
            .context("starting the name servers")?
            .into_iter();
        if let Some(first) = sockets.as_slice().first() {
            topology.dns_port = first.local_addr().port();
        }

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for (service, zone) in topology.services.iter().zip(loaded) {
            let own: Vec<_> = sockets.by_ref().take(service.hosts.len()).collect();
            tasks.spawn(nameserver::run(
                NameServer::new(vec![zone]),
                own,
                shutdown.clone(),
            ));
        }
        Ok(NameServers {
            topology,
            shutdown,
            tasks,
        })
    }

    /// Stop serving and wait for every server to close its sockets.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
