//! The browser's stub resolver: hickory's, asking one recursive resolver.
//!
//! A stub does no resolving of its own: it sends `www.example.com. A` with
//! RD=1 to the resolver it was given and takes whatever comes back. This one
//! reads no /etc/hosts and no /etc/resolv.conf, appends no search domains,
//! and keeps no cache, so every visit's question reaches the resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::timing::Clock;

/// Why a lookup found no address.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum LookupFailure {
    #[error("{0:?} is not a domain name")]
    BadName(String),
    #[error("NXDOMAIN")]
    NxDomain,
    /// The name exists, but with no A or AAAA record (NODATA).
    #[error("no A or AAAA record")]
    NoAddress,
    /// A name server's "ask them instead" reached the stub: whoever answered
    /// does not recurse.
    #[error("a referral to the name servers of {zone}")]
    Referral { zone: String },
    /// SERVFAIL, REFUSED and the other error codes.
    #[error("{0}")]
    Rcode(ResponseCode),
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Other(String),
}

/// hickory's stub resolver, configured to ask `server` only.
#[derive(Clone)]
pub(super) struct StubResolver {
    resolver: TokioResolver,
}

impl StubResolver {
    /// `timeout` bounds each question; the visit's own deadline is the same,
    /// so the stub never gives up (and asks again) before the visit does.
    pub fn new(server: SocketAddr, timeout: Duration) -> Result<StubResolver, NetError> {
        let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
        for connection in &mut name_server.connections {
            connection.port = server.port();
        }
        let config = ResolverConfig::from_parts(None, vec![], vec![name_server]);
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        let options = builder.options_mut();
        options.use_hosts_file = ResolveHosts::Never;
        // No cache: the resolver's cache is the one the story is about.
        options.cache_size = 0;
        options.timeout = timeout;
        Ok(StubResolver {
            resolver: builder.build()?,
        })
    }

    /// The addresses of `host`, an absolute name: its A records, or if it
    /// exists without any, its AAAA records (the order curl and most
    /// browsers settle on when IPv4 works).
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, LookupFailure> {
        let mut name =
            Name::from_ascii(host).map_err(|_| LookupFailure::BadName(host.to_string()))?;
        // Absolute: no search list or ndots rule can turn it into another name.
        name.set_fqdn(true);
        match self.addresses(&name, RecordType::A).await {
            Err(LookupFailure::NoAddress) => self.addresses(&name, RecordType::AAAA).await,
            found => found,
        }
    }

    async fn addresses(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Vec<IpAddr>, LookupFailure> {
        let lookup = self
            .resolver
            .lookup(name.clone(), rtype)
            .await
            .map_err(failure)?;
        // The answer may start with a CNAME chain; keep the addresses.
        let addresses: Vec<IpAddr> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect();
        if addresses.is_empty() {
            return Err(LookupFailure::NoAddress);
        }
        Ok(addresses)
    }
}

fn failure(error: NetError) -> LookupFailure {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            response_code: ResponseCode::NXDomain,
            ..
        })) => LookupFailure::NxDomain,
        NetError::Dns(DnsError::NoRecordsFound(NoRecords {
            soa: None,
            ns: Some(referral),
            ..
        })) => LookupFailure::Referral {
            zone: referral
                .first()
                .map_or_else(String::new, |ns| ns.ns.name.to_string()),
        },
        NetError::Dns(DnsError::NoRecordsFound(_)) => LookupFailure::NoAddress,
        NetError::Dns(DnsError::ResponseCode(code)) => LookupFailure::Rcode(code),
        NetError::Timeout => LookupFailure::Timeout,
        other => LookupFailure::Other(other.to_string()),
    }
}

/// The stub as reqwest's resolver for one visit: each lookup reports its
/// start, end and outcome to the visit's clock.
pub(super) struct VisitResolver {
    pub stub: StubResolver,
    pub clock: Arc<Clock>,
}

impl reqwest::dns::Resolve for VisitResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let stub = self.stub.clone();
        let clock = self.clock.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            clock.lookup_started();
            let found = stub.lookup(&host).await;
            clock.lookup_ended(found.clone());
            // Port 0: reqwest puts in the URL's port.
            let addrs: reqwest::dns::Addrs =
                Box::new(found?.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
