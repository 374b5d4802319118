//! Keeping a zone's servers in step when they run as separate processes
//! (or hosts): the primary tells the others a zone changed (NOTIFY, RFC
//! 1996), and they fetch it whole (AXFR, RFC 5936) if its serial is newer.
//!
//! ```text
//!  nsupdate ─► primary (the SOA's MNAME) ─► journal, new serial ─► NOTIFY ─► secondary
//!                        ▲                                                │
//!                        └───────────── SOA? serial newer? AXFR ◄─────────┘
//! ```
//!
//! When every server of a zone runs in one process they share one live
//! copy (see [`super::live`]) and none of this is needed. A secondary also
//! checks the primary when it starts, and every refresh interval after
//! (the SOA's, at most an hour), so a NOTIFY lost is not a change lost.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use super::live::LiveZone;
use crate::dns::{read_tcp_message, tcp_frame};
use crate::exchange::{Transport, exchange_from, make_query};
use crate::zone::Zone;

/// A zone's place among its servers in other processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replication {
    /// Every server of the zone is in this process.
    #[default]
    Alone,
    /// This process holds the primary, at `me`: it tells these secondaries
    /// of changes.
    Primary {
        me: IpAddr,
        secondaries: Vec<SocketAddr>,
    },
    /// This process holds a secondary, at `me`: it follows these primaries.
    Secondary {
        me: IpAddr,
        primaries: Vec<SocketAddr>,
    },
}

/// How long one NOTIFY or SOA question waits, and how often it is tried.
const WAIT: Duration = Duration::from_secs(1);
const TRIES: usize = 3;

/// Tell every secondary that `zone` changed; each is asked up to three
/// times, until it answers (RFC 1996 §3.6).
pub async fn notify(zone: &Zone, me: IpAddr, secondaries: &[SocketAddr]) {
    for secondary in secondaries {
        let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
        message.metadata.authoritative = true;
        message.add_query(Query::query(zone.origin().clone(), RecordType::SOA));
        for _ in 0..TRIES {
            if exchange_from(Some(me), *secondary, &message, Transport::Udp, WAIT)
                .await
                .is_ok()
            {
                tracing::info!(target: "dnstrail::update", "told {secondary} that {} is at serial {}", zone.origin(), zone.serial());
                break;
            }
        }
    }
}

/// After a change to `live` (now `zone`): if this is the zone's primary,
/// tell its secondaries, in the background.
pub fn changed(live: &LiveZone, zone: &Arc<Zone>) {
    if let Replication::Primary { me, secondaries } = live.replication()
        && !secondaries.is_empty()
    {
        let zone = zone.clone();
        tokio::spawn(async move { notify(&zone, me, &secondaries).await });
    }
}

/// Fetch the zone from its primaries if theirs is newer; whether it was.
pub async fn refresh(
    live: &LiveZone,
    me: IpAddr,
    primaries: &[SocketAddr],
) -> Result<bool, String> {
    let ours = live.snapshot();
    let apex = ours.origin().clone();
    let mut last = format!("no primary of {apex} answered");
    for primary in primaries {
        match fetch_if_newer(&ours, &apex, me, *primary).await {
            Ok(Some(zone)) => {
                let serial = zone.serial();
                if !live.replace(zone) {
                    return Ok(false);
                }
                tracing::info!(target: "dnstrail::update", "{apex} transferred from {primary}: serial {serial}");
                return Ok(true);
            }
            Ok(None) => return Ok(false),
            Err(why) => last = why,
        }
    }
    Err(last)
}

async fn fetch_if_newer(
    ours: &Zone,
    apex: &Name,
    me: IpAddr,
    primary: SocketAddr,
) -> Result<Option<Zone>, String> {
    let soa_query = make_query(apex, RecordType::SOA, false, false);
    let soa = exchange_from(Some(me), primary, &soa_query, Transport::Udp, WAIT)
        .await
        .map_err(|e| e.to_string())?
        .response;
    let theirs = soa
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| format!("{primary} sent no SOA for {apex}"))?;
    if !super::update::serial_newer(theirs, ours.serial()) {
        return Ok(None);
    }
    let mut records = transfer(me, primary, apex).await?;
    // The SOA comes first and last (RFC 5936 §2.2): keep one.
    records.pop();
    Zone::from_records(records, ours.file())
        .map(Some)
        .map_err(|e| format!("the zone from {primary} does not load: {}", e.reason))
}

/// How long one message of a transfer may take to arrive, and the whole.
const MESSAGE_WAIT: Duration = Duration::from_secs(5);
const TRANSFER_WAIT: Duration = Duration::from_secs(120);

/// The whole zone `apex` from `primary`, asked from `me` over one TCP
/// connection: every message until the SOA comes round again, which ends
/// a transfer however many messages it took (RFC 5936 §2.2).
async fn transfer(me: IpAddr, primary: SocketAddr, apex: &Name) -> Result<Vec<Record>, String> {
    let failed = |e: std::io::Error| format!("transfer of {apex} from {primary}: {e}");
    let query = make_query(apex, RecordType::AXFR, false, false);
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let work = async {
        let socket = if me.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(failed)?;
        socket.bind(SocketAddr::new(me, 0)).map_err(failed)?;
        let mut stream = socket.connect(primary).await.map_err(failed)?;
        stream.write_all(&tcp_frame(&bytes)).await.map_err(failed)?;
        let mut records: Vec<Record> = Vec::new();
        loop {
            let raw = tokio::time::timeout(MESSAGE_WAIT, read_tcp_message(&mut stream))
                .await
                .map_err(|_| format!("{primary} stopped sending the transfer of {apex}"))?
                .map_err(failed)?;
            let message = Message::from_vec(&raw).map_err(|e| e.to_string())?;
            if message.metadata.id != query.metadata.id {
                return Err(format!("{primary} answered another transfer"));
            }
            if message.metadata.response_code != ResponseCode::NoError {
                return Err(format!(
                    "{primary} refused the transfer of {apex}: {}",
                    crate::trace::rcode_name(message.metadata.response_code)
                ));
            }
            if records.is_empty()
                && message.answers.first().map(|r| r.record_type()) != Some(RecordType::SOA)
            {
                return Err(format!(
                    "{primary}'s transfer of {apex} does not start with its SOA"
                ));
            }
            records.extend(message.answers);
            let ended = records.len() > 1
                && records.last().map(|r| r.record_type()) == Some(RecordType::SOA);
            if ended {
                return Ok(records);
            }
        }
    };
    tokio::time::timeout(TRANSFER_WAIT, work)
        .await
        .map_err(|_| format!("the transfer of {apex} from {primary} took over {TRANSFER_WAIT:?}"))?
}

/// A secondary's watch on its primaries: at start, then every refresh
/// interval, until `stop`.
pub async fn follow(
    live: Arc<LiveZone>,
    me: IpAddr,
    primaries: Vec<SocketAddr>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Err(why) = refresh(&live, me, &primaries).await {
            tracing::warn!(target: "dnstrail::update", "{why}");
        }
        let every = match &live.snapshot().soa().data {
            RData::SOA(soa) => {
                Duration::from_secs(u64::try_from(soa.refresh).unwrap_or(3600).clamp(5, 3600))
            }
            _ => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}
