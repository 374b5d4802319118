//! One DNS question and its response, over UDP or TCP.
//!
//! The resolver asks every upstream question through [`exchange`], and tests
//! use it as their `dig`. It carries the resolver's defences against forged
//! responses (RFC 5452):
//!
//! - a fresh UDP socket per question, so a random source port (the kernel's
//!   ephemeral port choice) as well as a random 16-bit ID;
//! - the socket is `connect`ed, so the kernel drops datagrams from any other
//!   address or port;
//! - a datagram whose ID or question differs is ignored (and counted), and
//!   the real answer is still awaited until the deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

pub use crate::dns::Transport;
use crate::dns::{read_tcp_message, tcp_frame};
use crate::serve::EDNS_PAYLOAD;

/// A response that matched its question.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub response: Message,
    pub rtt: Duration,
    pub transport: Transport,
    /// Datagrams that arrived on the socket but did not match (wrong ID or
    /// question): forgeries or stale answers, ignored.
    pub ignored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("no response from {server} within {timeout:?}")]
    Timeout {
        server: SocketAddr,
        timeout: Duration,
    },
    #[error("{server}: {source}")]
    Io {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error("{server} sent a response that does not parse: {reason}")]
    Malformed { server: SocketAddr, reason: String },
}

/// Build a query message for `name`/`rtype` with a random ID.
pub fn make_query(name: &Name, rtype: RecordType, recursion_desired: bool, edns: bool) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = recursion_desired;
    message.add_query(Query::query(name.clone(), rtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        message.set_edns(opt);
    }
    message
}

/// Send `query` to `server` and wait up to `timeout` for the matching response.
pub async fn exchange(
    server: SocketAddr,
    query: &Message,
    transport: Transport,
    timeout: Duration,
) -> Result<Exchange, ExchangeError> {
    exchange_from(None, server, query, transport, timeout).await
}

/// [`exchange`], sent from the address `source` (any port) when given: how
/// one name server speaks to another as itself, so the other can tell its
/// primary or secondary by address (BIND's `notify-source`).
pub async fn exchange_from(
    source: Option<IpAddr>,
    server: SocketAddr,
    query: &Message,
    transport: Transport,
    timeout: Duration,
) -> Result<Exchange, ExchangeError> {
    let io = |source| ExchangeError::Io { server, source };
    let bytes = query.to_vec().map_err(|e| ExchangeError::Malformed {
        server,
        reason: format!("cannot encode query: {e}"),
    })?;
    let started = Instant::now();
    let attempt = async {
        match transport {
            Transport::Udp => udp(source, server, query, &bytes).await.map_err(io),
            Transport::Tcp => tcp(source, server, query, &bytes).await.map_err(io),
        }
    };
    let (raw, ignored) = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ExchangeError::Timeout { server, timeout })??;
    let rtt = started.elapsed();
    let response = Message::from_vec(&raw).map_err(|e| ExchangeError::Malformed {
        server,
        reason: e.to_string(),
    })?;
    Ok(Exchange {
        response,
        rtt,
        transport,
        ignored,
    })
}

/// Whether raw bytes are a response to `query`: same ID, QR set, and the
/// same question (RFC 5452 §3). Decoding only the header and question keeps
/// a flood of forgeries cheap to reject.
fn matches(query: &Message, raw: &[u8]) -> bool {
    let Ok(response) = Message::from_vec(raw) else {
        // Undecodable but with the right ID: let the caller report it.
        return raw.len() >= 2 && u16::from_be_bytes([raw[0], raw[1]]) == query.metadata.id;
    };
    response.metadata.id == query.metadata.id
        && response.metadata.message_type == MessageType::Response
        && same_question(&response.queries, &query.queries)
}

fn same_question(a: &[Query], b: &[Query]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.query_type() == y.query_type()
                && x.query_class() == y.query_class()
                && x.name().eq_ignore_root(y.name())
        })
}

/// The local address to send from: `source` or any, port chosen by the kernel.
fn local_for(source: Option<IpAddr>, server: SocketAddr) -> SocketAddr {
    let any: IpAddr = if server.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(source.unwrap_or(any), 0)
}

async fn udp(
    source: Option<IpAddr>,
    server: SocketAddr,
    query: &Message,
    bytes: &[u8],
) -> std::io::Result<(Vec<u8>, usize)> {
    let socket = UdpSocket::bind(local_for(source, server)).await?;
    socket.connect(server).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    let mut ignored = 0;
    loop {
        let n = socket.recv(&mut buf).await?;
        if matches(query, &buf[..n]) {
            return Ok((buf[..n].to_vec(), ignored));
        }
        ignored += 1;
    }
}

async fn tcp(
    source: Option<IpAddr>,
    server: SocketAddr,
    query: &Message,
    bytes: &[u8],
) -> std::io::Result<(Vec<u8>, usize)> {
    let mut stream: TcpStream = match source {
        None => TcpStream::connect(server).await?,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(local_for(Some(ip), server))?;
            socket.connect(server).await?
        }
    };
    stream.set_nodelay(true)?;
    stream.write_all(&tcp_frame(bytes)).await?;
    let mut ignored = 0;
    loop {
        let buf = read_tcp_message(&mut stream).await?;
        if matches(query, &buf) {
            return Ok((buf, ignored));
        }
        ignored += 1;
    }
}
