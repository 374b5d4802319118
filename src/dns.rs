//! Small things about DNS messages that every role shares: the transport a
//! message travels over, the two-byte length prefix of DNS over TCP, and
//! reading the address out of an A or AAAA record.

use std::net::IpAddr;

use hickory_proto::rr::{RData, Record};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// UDP or TCP: the two transports every DNS server speaks (RFC 7766 makes
/// TCP mandatory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

/// A message framed for TCP (RFC 1035 §4.2.2): its length in two bytes,
/// then the message. Messages are at most 65,535 bytes by construction.
pub fn tcp_frame(message: &[u8]) -> Vec<u8> {
    let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(&message[..usize::from(length)]);
    framed
}

/// Read one length-prefixed message from a TCP stream.
pub async fn read_tcp_message(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let length = stream.read_u16().await?;
    let mut message = vec![0u8; usize::from(length)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

/// The address an A or AAAA record holds.
pub fn address_of(record: &Record) -> Option<IpAddr> {
    match &record.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// Every address in a set of records, in order.
pub fn addresses(records: &[Record]) -> Vec<IpAddr> {
    records.iter().filter_map(address_of).collect()
}
