//! The authoritative name servers: the root, `.com`, and example.com's four.
//!
//! ```text
//!   resolver ──question──► name server ──► zone(s) loaded from zone files
//!            ◄─referral or answer──┘
//! ```
//!
//! One module serves every zone file; the `root`, `tld` and `auth`
//! subcommands are presets of it that differ only in the zone and the
//! addresses (see [`crate::topology`]). The root and `.com` mostly *refer*:
//! they do not know `www.example.com`, only who is closer to knowing. The
//! hosted zone's servers *answer*, with authority.
//!
//! [`crate::serve`] does the transport: UDP and TCP on every address
//! (RFC 7766), FORMERR for packets that do not parse, truncation with TC=1
//! when a UDP answer exceeds the client's buffer, answers replayed once
//! encoded, optional response-rate limiting. The answers come from
//! [`answer::answer_from`], ours: hickory's catalog gets referrals wrong (AA set,
//! glue missing; hickory issue 2810). With DNSSEC ([`crate::dnssec`]), a
//! question with DO=1 gets, after that lookup, the RRSIGs, DS and NSEC
//! records that let its asker check the answer.

pub mod answer;
pub mod dname;
pub mod live;
pub mod replication;
pub mod update;

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;

use crate::dns::Transport;
use crate::dnssec::Signing;
use crate::fault::FaultSwitch;
use crate::listen::DnsSockets;
use crate::serve::{ExtendedError, Reply, Request, Responder, ServeOptions};
use crate::zone::Zone;

pub use answer::{AnswerKind, answer_from};
pub use live::LiveZone;
pub use replication::Replication;

/// Who may change the zones with dynamic updates (RFC 2136).
#[derive(Debug, Clone, Default)]
pub struct UpdatePolicy {
    /// Networks allowed besides loopback.
    pub networks: Vec<IpNet>,
    /// Whether an update must be signed with a TSIG key we know (when keys
    /// were given).
    pub require_key: bool,
}

impl UpdatePolicy {
    /// A client signed with a key we know may, from anywhere (the key is
    /// the permission, as BIND's `allow-update { key ...; }`); an unsigned
    /// one only from this host (loopback or one of its own addresses, as
    /// BIND's `localhost` ACL) or an allowed network, and only when no key
    /// is required.
    fn allows(&self, client: IpAddr, signed: bool) -> bool {
        let near = client.is_loopback()
            || self.networks.iter().any(|n| n.contains(&client))
            || is_own_address(client);
        signed || (near && !self.require_key)
    }
}

/// Whether `ip` is an address of this host: one a socket can be bound to.
/// Asked only for updates, which are rare, so one syscall is cheap.
fn is_own_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// An authoritative server for one or more zones.
#[derive(Clone)]
pub struct NameServer {
    zones: Arc<[Arc<LiveZone>]>,
    /// Networks whose clients may transfer a whole zone (AXFR over TCP).
    transfers_to: Arc<[IpNet]>,
    updates: Arc<UpdatePolicy>,
    /// The signed zones among ours; `None`: DNSSEC is off the path.
    dnssec: Option<Arc<Signing>>,
    /// The server's fault switch, for the faults its signing bends.
    fault: FaultSwitch,
}

impl NameServer {
    /// A server of zones of its own; those that came signed from their
    /// files are served with their signatures.
    pub fn new(zones: Vec<Zone>) -> NameServer {
        NameServer::serving(zones.into_iter().map(LiveZone::new).collect())
    }

    /// A server of zones it may share with others in the process: a change
    /// to one is seen by every server of it at once.
    pub fn serving(zones: Vec<Arc<LiveZone>>) -> NameServer {
        // The zones as they are now, shared, not copied: a big zone would
        // be held twice while the server starts.
        let snapshots: Vec<Arc<Zone>> = zones.iter().map(|z| z.snapshot()).collect();
        NameServer {
            zones: zones.into(),
            transfers_to: Arc::new([]),
            updates: Arc::default(),
            dnssec: Signing::presigned(snapshots.iter().map(|z| &**z)).map(Arc::new),
            fault: FaultSwitch::default(),
        }
    }

    /// Sign answers to DO=1 questions with `signing` (the zones must be
    /// the ones it prepared).
    pub fn with_dnssec(mut self, signing: Arc<Signing>) -> NameServer {
        self.dnssec = Some(signing);
        self
    }

    /// Read DNSSEC faults from `fault` (the pipeline reads the others).
    pub fn with_fault(mut self, fault: FaultSwitch) -> NameServer {
        self.fault = fault;
        self
    }

    pub fn signing(&self) -> Option<&Arc<Signing>> {
        self.dnssec.as_ref()
    }

    /// Let clients in these networks transfer whole zones (AXFR over TCP).
    pub fn with_transfers_to(mut self, networks: Vec<IpNet>) -> NameServer {
        self.transfers_to = networks.into();
        self
    }

    /// Who may send dynamic updates.
    pub fn with_updates(mut self, policy: UpdatePolicy) -> NameServer {
        self.updates = Arc::new(policy);
        self
    }

    /// The zones this server holds, as they are now.
    pub fn zones(&self) -> Vec<Arc<Zone>> {
        self.zones.iter().map(|z| z.snapshot()).collect()
    }

    /// The deepest zone containing `name`: a server holding both `com.` and
    /// `example.com.` answers `www.example.com` from the latter.
    pub fn zone_for(&self, name: &LowerName) -> Option<&Arc<LiveZone>> {
        self.zones
            .iter()
            .filter(|z| z.snapshot().contains(name))
            .max_by_key(|z| z.snapshot().origin().num_labels())
    }

    /// RFC 2136: change a zone, if the client may.
    fn update(&self, request: &Request<'_>) -> Reply {
        let zone_name = LowerName::new(request.query().name());
        let refuse = |rcode: ResponseCode, text: String| {
            tracing::info!(target: "dnstrail::update", "{} update of {zone_name}: {} ({text})", request.src, crate::trace::rcode_name(rcode));
            Reply {
                rcode,
                extended_error: Some(ExtendedError { code: 0, text }),
                ..Reply::default()
            }
        };
        if !self
            .updates
            .allows(request.src.ip(), request.signed_by.is_some())
        {
            return refuse(
                ResponseCode::Refused,
                format!("{} may not update zones here", request.src.ip()),
            );
        }
        let Some(live) = self
            .zones
            .iter()
            .find(|z| *z.snapshot().lower_origin() == zone_name)
        else {
            return refuse(
                ResponseCode::NotAuth,
                format!("{zone_name} is not a zone of this server"),
            );
        };
        // Its NSEC chain and signatures are made as it loads: a change would
        // leave them wrong.
        if self
            .dnssec
            .as_ref()
            .is_some_and(|s| s.zone(&zone_name).is_some())
        {
            return refuse(
                ResponseCode::Refused,
                format!(
                    "{zone_name} is signed (DNSSEC), and updates to a signed zone are not supported"
                ),
            );
        }
        if let Replication::Secondary { primaries, .. } = live.replication() {
            // RFC 2136 §6: a secondary may forward; we say where to go.
            let primaries: Vec<String> = primaries.iter().map(|p| p.to_string()).collect();
            return refuse(
                ResponseCode::Refused,
                format!(
                    "this server is a secondary of {zone_name}; send updates to its primary, {}",
                    primaries.join(" or ")
                ),
            );
        }
        match live.change("update", |zone| update::apply(zone, request.message)) {
            Ok(changed) => {
                if let Some(zone) = changed {
                    tracing::info!(target: "dnstrail::update", "{} updated {zone_name}: serial {}", request.src, zone.serial());
                    replication::changed(live, &zone);
                }
                Reply {
                    authoritative: true,
                    ..Reply::default()
                }
            }
            Err(refused) => refuse(refused.rcode, refused.why),
        }
    }
}

impl NameServer {
    /// RFC 1996: a primary says a zone changed; a secondary of it fetches
    /// the zone (in the background) and says it heard.
    fn notified(&self, request: &Request<'_>) -> Reply {
        let zone_name = LowerName::new(request.query().name());
        let live = self
            .zones
            .iter()
            .find(|z| *z.snapshot().lower_origin() == zone_name);
        match live.map(|l| (l.clone(), l.replication())) {
            Some((live, Replication::Secondary { me, primaries }))
                if primaries.iter().any(|p| p.ip() == request.src.ip()) =>
            {
                tokio::spawn(async move {
                    if let Err(why) = replication::refresh(&live, me, &primaries).await {
                        tracing::warn!(target: "dnstrail::update", "{why}");
                    }
                });
                Reply {
                    authoritative: true,
                    ..Reply::default()
                }
            }
            Some(_) => Reply::rcode(ResponseCode::Refused),
            None => Reply::rcode(ResponseCode::NotAuth),
        }
    }
}

/// Serve `server` on already-bound sockets until `shutdown` is cancelled.
/// Its answers depend only on the question (and the zones' version), so
/// each distinct one is encoded once and replayed (see
/// [`crate::serve::udp`]).
pub async fn run(
    server: NameServer,
    sockets: Vec<DnsSockets>,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(signing) = server.dnssec.clone() {
        tokio::spawn(crate::dnssec::sign::keep_fresh(
            signing,
            server.zones.clone(),
            shutdown.clone(),
        ));
    }
    crate::serve::run(server, sockets, options, shutdown).await
}

impl Responder for NameServer {
    async fn respond(&self, request: &Request<'_>) -> Reply {
        match request.message.metadata.op_code {
            OpCode::Update => return self.update(request),
            OpCode::Notify => return self.notified(request),
            _ => {}
        }
        let query = request.query();
        let name = LowerName::new(query.name());
        // Not one of our zones: a name server is not a resolver.
        let Some(live) = self.zone_for(&name) else {
            return Reply::rcode(ResponseCode::Refused);
        };
        let zone = live.snapshot();
        // A transfer: over TCP, of a whole zone, to a client in an allowed
        // network, one that signed the question with a key we know, or one
        // of the zone's secondaries.
        let allowed = self
            .transfers_to
            .iter()
            .any(|n| n.contains(&request.src.ip()))
            || request.signed_by.is_some()
            || matches!(live.replication(), Replication::Primary { secondaries, .. }
                if secondaries.iter().any(|s| s.ip() == request.src.ip()));
        if query.query_type() == RecordType::AXFR
            && name == *zone.lower_origin()
            && request.transport == Transport::Tcp
            && allowed
        {
            let signed = self
                .dnssec
                .as_ref()
                .and_then(|s| s.zone(zone.lower_origin()));
            return Reply {
                authoritative: true,
                answers: match signed {
                    Some(signed) => signed.transfer(&zone),
                    None => answer::transfer(&zone),
                },
                ..Reply::default()
            };
        }
        let mut answer = answer_from(&zone, &name, query.query_type());
        if request.dnssec_ok()
            && let Some(signed) = self
                .dnssec
                .as_ref()
                .and_then(|s| s.zone(zone.lower_origin()))
        {
            let fault = self.fault.get().filter(|f| f.is_dnssec());
            signed.complete(&zone, &name, query.query_type(), &mut answer, fault);
        }
        Reply {
            rcode: answer.rcode,
            authoritative: answer.authoritative,
            answers: answer.answers,
            authorities: answer.authorities,
            additionals: answer.additionals,
            ..Reply::default()
        }
    }

    fn replayable(&self) -> bool {
        true
    }

    /// The zones' versions, and the signatures' generation: either moving
    /// on means replayed answers are stale.
    fn version(&self) -> u64 {
        let zones: u64 = self.zones.iter().map(|z| z.version()).sum();
        zones + self.dnssec.as_ref().map_or(0, |s| s.generation())
    }

    fn accepts(&self, op_code: OpCode) -> bool {
        matches!(op_code, OpCode::Query | OpCode::Update | OpCode::Notify)
    }
}
