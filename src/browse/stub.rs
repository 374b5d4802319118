//! The browser's stub resolver: hickory's, asking one recursive resolver.
//!
//! A stub does no resolving of its own: it sends `www.example.com. A` and
//! `AAAA` with RD=1 to the resolver it was given, both at once as browsers
//! do (RFC 8305), and takes whatever comes back. This one reads no
//! /etc/hosts and no /etc/resolv.conf, appends no search domains, and keeps
//! no cache, so every visit's questions reach the resolver.
//!
//! hickory's UDP sockets are not connected, so they never hear the ICMP
//! "port unreachable" that says nothing listens at the resolver's address.
//! So a lookup with no answer after a moment ([`PROBE_AFTER`]) also sends an
//! empty datagram from a connected socket (a DNS server ignores it, being
//! shorter than a header): if the port is closed the kernel says so at once,
//! and the lookup fails then, as `dig` does, instead of waiting out its
//! timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

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
    /// ICMP port unreachable: nothing listens at the resolver's address.
    #[error("nothing listens there (port unreachable)")]
    PortClosed,
    #[error("{0}")]
    Other(String),
}

/// hickory's stub resolver, configured to ask `server` only.
#[derive(Clone)]
pub(super) struct StubResolver {
    resolver: TokioResolver,
    server: SocketAddr,
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
            server,
        })
    }

    /// The addresses of `host`: its A and AAAA records, asked for at once
    /// (IPv4 first in the result, the order curl and most browsers settle
    /// on when IPv4 works). NXDOMAIN if either answer says so; no address
    /// only if both are empty.
    pub async fn addresses_of(&self, host: &str) -> Result<Vec<IpAddr>, LookupFailure> {
        let (v4, v6) = tokio::join!(
            self.records(host, RecordType::A),
            self.records(host, RecordType::AAAA)
        );
        let mut found = Vec::new();
        for records in [&v4, &v6].into_iter().flatten() {
            found.extend(crate::dns::addresses(records));
        }
        if !found.is_empty() {
            return Ok(found);
        }
        match (v4, v6) {
            (Err(LookupFailure::NxDomain), _) | (_, Err(LookupFailure::NxDomain)) => {
                Err(LookupFailure::NxDomain)
            }
            (Ok(_) | Err(LookupFailure::NoAddress), Ok(_) | Err(LookupFailure::NoAddress)) => {
                Err(LookupFailure::NoAddress)
            }
            (Err(error), _) | (_, Err(error)) => Err(error),
        }
    }

    /// The answer records for `host`/`rtype` (a CNAME chain included).
    pub async fn records(
        &self,
        host: &str,
        rtype: RecordType,
    ) -> Result<Vec<Record>, LookupFailure> {
        let mut name =
            Name::from_ascii(host).map_err(|_| LookupFailure::BadName(host.to_string()))?;
        // Absolute: no search list or ndots rule can turn it into another name.
        name.set_fqdn(true);
        let lookup = self.resolver.lookup(name, rtype);
        let records = tokio::select! {
            found = lookup => found.map_err(failure)?.answers().to_vec(),
            closed = port_closed(self.server) => return Err(closed),
        };
        if !records.iter().any(|r| r.record_type() == rtype) {
            return Err(LookupFailure::NoAddress);
        }
        Ok(records)
    }
}

/// How long a lookup waits for an answer before checking that anything
/// listens at the resolver's address at all.
pub(super) const PROBE_AFTER: Duration = Duration::from_millis(50);

/// Resolves only if the kernel reports the resolver's UDP port closed.
async fn port_closed(server: SocketAddr) -> LookupFailure {
    tokio::time::sleep(PROBE_AFTER).await;
    let probe = async {
        let local: SocketAddr = if server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = tokio::net::UdpSocket::bind(local).await?;
        socket.connect(server).await?;
        socket.send(&[]).await?;
        socket.recv(&mut [0u8; 16]).await
    };
    match probe.await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => LookupFailure::PortClosed,
        // Anything else (an answer, or no way to tell): not our business.
        _ => std::future::pending().await,
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
